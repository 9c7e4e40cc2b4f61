/* The chunk line fast paths (core/wire/chunk_fast.h, wire/jscan.h) against
 * byte-by-byte reference rules written here from the specs: JSON.stringify's
 * string escaping (ECMA-262 QuoteJSONString) and RFC 3629 UTF-8, decoded by
 * code point. Each case puts one special byte sequence (escapes, control
 * bytes, non-ASCII, invalid UTF-8) at every position of spans of every
 * length 0..40 starting at every offset 0..40 from a 64-byte boundary (so
 * every alignment to 8- and 16-byte words), plus longer spans:
 *   - the scanners: dvm_jscan_plain, dvm_jscan_all_plain, dvm_jscan_eq;
 *   - the encoder: dvm_cf_encode_chunk, dvm_msg_encode_chunk_with_tail and
 *     dvm_msg_encode_chunk_with_head write head + the reference JSON string
 *     + tail, and refuse exactly invalid UTF-8;
 *   - the decoder: dvm_cf_decode_chunk_line / dvm_msg_decode_chunk_line take
 *     exactly the lines whose data needs no escape and is valid UTF-8, and
 *     then agree with dvm_msg_decode;
 *   - dvm_chunk_tail: set and next against snprintf.
 * test_wire_chunkfast_portable.c compiles this file again with
 * DVM_JSCAN_PORTABLE (the 8-byte word scanners instead of SSE2). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "wire/chunk_fast.h"
#include "wire/codec.h"
#include "wire/jscan.h"

#ifndef SUITE
#define SUITE wire_chunkfast
#endif
#if defined(DVM_JSCAN_PORTABLE) && defined(DVM_JSCAN_SSE2)
#error "DVM_JSCAN_PORTABLE must select the word scanners"
#endif

/* ---- reference rules, byte by byte ------------------------------------- */

/* JSON.stringify writes the byte unchanged and it is a whole UTF-8 sequence. */
static bool ref_plain(uint8_t c)
{
    return c >= 0x20 && c <= 0x7e ? c != '"' && c != '\\' : c == 0x7f;
}

/* Length of the valid UTF-8 sequence at s[0..n) (RFC 3629), decoding the
 * code point: 0 when none. */
static size_t ref_utf8(const uint8_t *s, size_t n)
{
    if (n == 0)
        return 0;
    uint8_t c = s[0];
    size_t len;
    uint32_t cp, min;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0) {
        len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

static size_t ref_first_not_plain(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n && ref_plain(s[i]))
        i++;
    return i;
}

/* JSON.stringify of the string s[0..n) without its quotes, appended to
 * out; false (out unchanged in length meaning) when s is not valid UTF-8. */
static bool ref_json_body(dvm_buf *out, const uint8_t *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        char e[8];
        size_t el = 0;
        if (c >= 0x80) {
            size_t k = ref_utf8(s + i, n - i);
            if (k == 0)
                return false;
            cr_assert_eq(dvm_buf_append(out, s + i, k), DVM_OK);
            i += k;
            continue;
        }
        switch (c) {
        case '"': el = 2, e[0] = '\\', e[1] = '"'; break;
        case '\\': el = 2, e[0] = '\\', e[1] = '\\'; break;
        case '\b': el = 2, e[0] = '\\', e[1] = 'b'; break;
        case '\f': el = 2, e[0] = '\\', e[1] = 'f'; break;
        case '\n': el = 2, e[0] = '\\', e[1] = 'n'; break;
        case '\r': el = 2, e[0] = '\\', e[1] = 'r'; break;
        case '\t': el = 2, e[0] = '\\', e[1] = 't'; break;
        default:
            if (c < 0x20) {
                el = 6;
                memcpy(e, "\\u00", 4);
                e[4] = hex[c >> 4];
                e[5] = hex[c & 15];
            } else {
                el = 1, e[0] = (char)c;
            }
        }
        cr_assert_eq(dvm_buf_append(out, e, el), DVM_OK);
        i++;
    }
    return true;
}

/* ---- the cases --------------------------------------------------------- */

typedef struct special {
    const char *bytes;
    size_t len;
} special;

#define SP(lit) {lit, sizeof(lit) - 1}
static const special k_specials[] = {
    SP("\""), SP("\\"), SP("\x00"), SP("\x01"), SP("\x1f"), SP("\n"), SP("\t"),
    SP(" "), SP("\x7f"), SP("/"), SP("\x80"), SP("\xff"), SP("\xc2\xa9"),
    SP("\xe7\x99\xbe"), SP("\xf0\x9f\x98\x80"), SP("\xe2\x80\xa8"), SP("\xc3"),
    SP("\xc0\xaf"), SP("\xe0\x80\x80"), SP("\xed\xa0\x80"), SP("\xf4\x90\x80\x80"),
    SP("\xe7\x99"), SP("\xf5\x80\x80\x80"),
};
#define NSPECIALS (sizeof k_specials / sizeof k_specials[0])

#define MAXOFF 40
#define MAXLEN 40
static const size_t k_long[] = {63, 64, 65, 100, 255, 256, 257, 300};

/* Fill s[0..n) with plain letters, then put special sp at pos (when pos is
 * n, no special). Returns false when it does not fit. */
static bool make(uint8_t *s, size_t n, size_t pos, const special *sp)
{
    for (size_t i = 0; i < n; i++)
        s[i] = (uint8_t)('a' + (i * 7 + n) % 26);
    if (pos == n)
        return true;
    if (pos + sp->len > n)
        return false;
    memcpy(s + pos, sp->bytes, sp->len);
    return true;
}

/* Calls f(s, n) for every case: offsets 0..MAXOFF, lengths 0..MAXLEN and
 * the long ones, every position (or none), every special. */
static size_t for_each_case(void (*f)(const uint8_t *s, size_t n, void *ctx), void *ctx,
                            size_t max_off)
{
    static _Alignas(64) uint8_t buf[64 + MAXOFF + 512];
    size_t cases = 0;
    for (size_t off = 0; off <= max_off; off++) {
        for (size_t li = 0; li <= MAXLEN + sizeof k_long / sizeof k_long[0]; li++) {
            size_t n = li <= MAXLEN ? li : k_long[li - MAXLEN - 1];
            uint8_t *s = buf + off;
            for (size_t pos = 0; pos <= n; pos++) {
                if (n > MAXLEN && pos != n && pos % 16 > 2 && pos % 16 < 14 && pos + 4 < n)
                    continue; /* long spans: positions near block edges and the end */
                for (size_t k = 0; k < (pos == n ? 1 : NSPECIALS); k++) {
                    if (!make(s, n, pos, &k_specials[k]))
                        continue;
                    /* a guard byte after the span that is never plain */
                    s[n] = '"';
                    f(s, n, ctx);
                    cases++;
                }
            }
        }
    }
    return cases;
}

static void check_scanners(const uint8_t *s, size_t n, void *ctx)
{
    (void)ctx;
    size_t want = ref_first_not_plain(s, n);
    cr_assert_eq(dvm_jscan_plain(s, n), want, "plain n=%zu", n);
    cr_assert_eq(dvm_jscan_all_plain(s, n) != 0, want == n, "all_plain n=%zu", n);
    uint8_t copy[600];
    memcpy(copy, s, n);
    cr_assert(dvm_jscan_eq(s, copy, n), "eq n=%zu", n);
    for (size_t i = 0; i < n; i++) {
        copy[i] ^= (uint8_t)(1u << (i % 8));
        cr_assert(!dvm_jscan_eq(s, copy, n), "eq n=%zu diff at %zu", n, i);
        copy[i] = s[i];
    }
}

Test(SUITE, scanners_match_the_byte_rule)
{
    size_t cases = for_each_case(check_scanners, NULL, MAXOFF);
    cr_assert_gt(cases, 100000);
    cr_assert(dvm_jscan_all_plain(NULL, 0));
    cr_assert(dvm_jscan_eq(NULL, NULL, 0));
}

/* ---- encoder and decoder ---------------------------------------------- */

typedef struct coder_ctx {
    dvm_buf head;       /* dvm_msg_chunk_head of the id */
    dvm_chunk_tail tail;
    dvm_msg_decoder dec;
    size_t valid, invalid, taken, escaped;
} coder_ctx;

static void check_coders(const uint8_t *s, size_t n, void *vctx)
{
    coder_ctx *x = vctx;
    dvm_str head = {(const char *)x->head.data, x->head.len};
    dvm_str data = {(const char *)s, n};
    /* the expected line: head + reference body + `"` + tail text */
    dvm_buf want;
    dvm_buf_init(&want, 0);
    cr_assert_eq(dvm_buf_append(&want, x->head.data, x->head.len), DVM_OK);
    bool valid = ref_json_body(&want, s, n);
    cr_assert_eq(dvm_buf_append(&want, x->tail.text, x->tail.len), DVM_OK);
    bool noesc = valid && want.len == x->head.len + n + x->tail.len;

    /* inline one-pass encoder, room for the worst case */
    dvm_buf w;
    dvm_buf_init(&w, 0);
    cr_assert_eq(dvm_buf_reserve(&w, x->head.len + x->tail.len + 6 * n), DVM_OK);
    uint8_t *end = dvm_cf_encode_chunk(&w, x->head.data, x->head.len, s, n, &x->tail);
    if (valid) {
        cr_assert_not_null(end, "n=%zu", n);
        w.len = (size_t)(end - w.data);
        cr_assert(w.len == want.len && memcmp(w.data, want.data, want.len) == 0,
                  "n=%zu:\n got %.*s\nwant %.*s", n, (int)w.len, (const char *)w.data,
                  (int)want.len, (const char *)want.data);
    } else {
        cr_assert_null(end, "n=%zu accepted invalid UTF-8", n);
    }
    /* the public encoders, one-pass (after "pre") and exact (tight max) */
    for (int mode = 0; mode < 2; mode++) {
        dvm_buf a, b;
        dvm_buf_init(&a, mode ? want.len + 3 : 0);
        dvm_buf_init(&b, 0);
        cr_assert_eq(dvm_buf_append(&a, "pre", 3), DVM_OK);
        dvm_err ea = dvm_msg_encode_chunk_with_tail(&a, head, data, &x->tail);
        dvm_err eb = dvm_msg_encode_chunk_with_head(&b, head, data, true, x->tail.seq);
        cr_assert_eq(ea, valid ? DVM_OK : DVM_ERR_INVALID, "n=%zu mode %d", n, mode);
        cr_assert_eq(eb, ea);
        if (valid) {
            cr_assert(a.len == want.len + 3 && memcmp(a.data + 3, want.data, want.len) == 0);
            cr_assert(b.len == want.len && memcmp(b.data, want.data, want.len) == 0);
        } else {
            cr_assert_eq(a.len, 3);
            cr_assert_eq(b.len, 0);
        }
        dvm_buf_free(&a);
        dvm_buf_free(&b);
    }

    /* decoder: the encoded line (without its newline) */
    if (valid) {
        x->valid++;
        dvm_str got = {NULL, 0};
        bool taken = dvm_cf_decode_chunk_line(&x->dec, want.data, want.len - 1, x->head.data,
                                              x->head.len, &x->tail, &got);
        dvm_str got2 = {NULL, 0};
        cr_assert_eq(dvm_msg_decode_chunk_line(&x->dec, want.data, want.len - 1, head, &x->tail,
                                               &got2),
                     taken);
        cr_assert_eq(taken, noesc, "n=%zu: taken %d, needs no escape %d", n, taken, noesc);
        dvm_msg m;
        char reason[DVM_REASON_MAX];
        cr_assert_eq(dvm_msg_decode(&x->dec, want.data, want.len - 1, &m, reason, sizeof reason),
                     DVM_OK, "%s", reason);
        cr_assert(m.type == DVM_MSG_CHUNK && m.has_seq && m.seq == x->tail.seq);
        cr_assert(m.data.len == n && (n == 0 || memcmp(m.data.ptr, s, n) == 0));
        if (taken) {
            x->taken++;
            cr_assert(got.len == n && got.ptr == (const char *)want.data + x->head.len);
            cr_assert(got2.len == n && got2.ptr == got.ptr);
        } else {
            x->escaped++;
        }
    } else {
        x->invalid++;
    }
    /* decoder: the raw bytes between head and tail (not encoded): taken
     * exactly when they need no escape and are valid UTF-8, and then what
     * dvm_msg_decode reads */
    dvm_buf raw;
    dvm_buf_init(&raw, 0);
    cr_assert_eq(dvm_buf_append(&raw, x->head.data, x->head.len), DVM_OK);
    cr_assert_eq(dvm_buf_append(&raw, s, n), DVM_OK);
    cr_assert_eq(dvm_buf_append(&raw, x->tail.text, x->tail.len - 1), DVM_OK);
    dvm_str got = {NULL, 0};
    bool taken = dvm_cf_decode_chunk_line(&x->dec, raw.data, raw.len, x->head.data, x->head.len,
                                          &x->tail, &got);
    cr_assert_eq(taken, noesc, "raw n=%zu", n);
    if (taken) {
        dvm_msg m;
        cr_assert_eq(dvm_msg_decode(&x->dec, raw.data, raw.len, &m, NULL, 0), DVM_OK);
        cr_assert(m.type == DVM_MSG_CHUNK && m.has_seq && m.seq == x->tail.seq);
        cr_assert(m.data.len == got.len && (n == 0 || memcmp(m.data.ptr, got.ptr, n) == 0));
    }
    dvm_buf_free(&raw);
    dvm_buf_free(&w);
    dvm_buf_free(&want);
}

static void coder_init(coder_ctx *x, dvm_str id, uint64_t seq)
{
    memset(x, 0, sizeof *x);
    dvm_buf_init(&x->head, 0);
    cr_assert_eq(dvm_msg_chunk_head(&x->head, id), DVM_OK);
    dvm_chunk_tail_set(&x->tail, seq);
    cr_assert_eq(x->tail.seq, seq);
    dvm_msg_decoder_init(&x->dec, 0);
}

static void coder_free(coder_ctx *x)
{
    dvm_buf_free(&x->head);
    dvm_msg_decoder_free(&x->dec);
}

Test(SUITE, encoder_and_line_decoder_match_the_reference, .timeout = 120)
{
    static const struct {
        dvm_str id;
        uint64_t seq;
    } ids[] = {{{"job-0123456789abcdef", 20}, 1234567},
               {{"", 0}, DVM_JSON_MAX_SAFE_INT},
               {{"j \"1\"\xc3\xa9\x01", 9}, 9}};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        coder_ctx x;
        coder_init(&x, ids[i].id, ids[i].seq);
        size_t cases = for_each_case(check_coders, &x, i == 0 ? MAXOFF : 8);
        cr_assert_gt(cases, 10000);
        /* every branch was seen */
        cr_assert_gt(x.valid, 1000);
        cr_assert_gt(x.invalid, 1000);
        cr_assert_gt(x.taken, 1000);
        cr_assert_gt(x.escaped, 1000);
        coder_free(&x);
    }
}

/* Lines the decoder must not take: another head, another seq, a missing
 * or extra byte, a tail that is none, a line over the decoder's max. */
Test(SUITE, line_decoder_refuses_other_lines)
{
    coder_ctx x;
    coder_init(&x, (dvm_str){"job-1", 5}, 77);
    dvm_buf line;
    dvm_buf_init(&line, 0);
    dvm_str head = {(const char *)x.head.data, x.head.len}, got;
    const char *data = "0123456789abcdef0123456789abcdef";
    cr_assert_eq(dvm_msg_encode_chunk_with_tail(&line, head, dvm_str_c(data), &x.tail), DVM_OK);
    line.len--;
    cr_assert(dvm_msg_decode_chunk_line(&x.dec, line.data, line.len, head, &x.tail, &got));
    cr_assert(got.len == strlen(data) && memcmp(got.ptr, data, got.len) == 0);
    /* every single-byte change in the head or the tail */
    for (size_t i = 0; i < line.len; i++) {
        if (i >= x.head.len && i < line.len - (x.tail.len - 1))
            continue; /* data bytes: covered above */
        uint8_t keep = line.data[i];
        line.data[i] = keep == '7' ? '8' : (uint8_t)(keep ^ 0x20);
        cr_assert(!dvm_msg_decode_chunk_line(&x.dec, line.data, line.len, head, &x.tail, &got),
                  "changed byte %zu", i);
        line.data[i] = keep;
    }
    cr_assert(!dvm_msg_decode_chunk_line(&x.dec, line.data, line.len - 1, head, &x.tail, &got));
    cr_assert(!dvm_msg_decode_chunk_line(&x.dec, line.data + 1, line.len - 1, head, &x.tail, &got));
    dvm_chunk_tail other;
    dvm_chunk_tail_set(&other, 78);
    cr_assert(!dvm_msg_decode_chunk_line(&x.dec, line.data, line.len, head, &other, &got));
    dvm_chunk_tail_set(&other, 7);
    cr_assert(!dvm_msg_decode_chunk_line(&x.dec, line.data, line.len, head, &other, &got));
    dvm_chunk_tail_set(&other, 0);
    cr_assert(!dvm_msg_decode_chunk_line(&x.dec, line.data, line.len, head, &other, &got));
    cr_assert_eq(dvm_msg_encode_chunk_with_tail(&line, head, dvm_str_c("x"), &other),
                 DVM_ERR_INVALID);
    dvm_msg_decoder small;
    dvm_msg_decoder_init(&small, line.len - 1);
    cr_assert(!dvm_msg_decode_chunk_line(&small, line.data, line.len, head, &x.tail, &got));
    dvm_msg_decoder_free(&small);
    /* a line without seq (`"}`) is not this tail's */
    dvm_buf noseq;
    dvm_buf_init(&noseq, 0);
    cr_assert_eq(dvm_msg_encode_chunk_with_head(&noseq, head, dvm_str_c(data), false, 0), DVM_OK);
    cr_assert(!dvm_msg_decode_chunk_line(&x.dec, noseq.data, noseq.len - 1, head, &x.tail, &got));
    dvm_buf_free(&noseq);
    dvm_buf_free(&line);
    coder_free(&x);
}

/* ---- dvm_chunk_tail ---------------------------------------------------- */

static void expect_tail(const dvm_chunk_tail *t, uint64_t seq)
{
    char want[40];
    int n = snprintf(want, sizeof want, "\",\"seq\":%llu}\n", (unsigned long long)seq);
    cr_assert_eq(t->seq, seq);
    cr_assert(t->len == (size_t)n && memcmp(t->text, want, (size_t)n) == 0,
              "seq %llu: got %.*s", (unsigned long long)seq, (int)t->len, (const char *)t->text);
}

Test(SUITE, chunk_tail_set_and_next_match_snprintf)
{
    dvm_chunk_tail t;
    dvm_chunk_tail_set(&t, 1);
    for (uint64_t seq = 1; seq <= 200000; seq++) {
        expect_tail(&t, seq);
        dvm_chunk_tail_next(&t);
    }
    /* every carry into a new digit, and numbers around it */
    uint64_t p10 = 10;
    for (int k = 1; k <= 15; k++, p10 *= 10) {
        dvm_chunk_tail_set(&t, p10 - 3);
        for (uint64_t seq = p10 - 3; seq <= p10 + 3; seq++) {
            expect_tail(&t, seq);
            dvm_chunk_tail u;
            dvm_chunk_tail_set(&u, seq);
            expect_tail(&u, seq);
            dvm_chunk_tail_next(&t);
        }
    }
    /* the end of the range: 2^53-1 is the last, then none, and none stays */
    dvm_chunk_tail_set(&t, DVM_JSON_MAX_SAFE_INT - 2);
    expect_tail(&t, DVM_JSON_MAX_SAFE_INT - 2);
    dvm_chunk_tail_next(&t);
    expect_tail(&t, DVM_JSON_MAX_SAFE_INT - 1);
    dvm_chunk_tail_next(&t);
    expect_tail(&t, DVM_JSON_MAX_SAFE_INT);
    dvm_chunk_tail_next(&t);
    cr_assert(t.seq == 0 && t.len == 0);
    dvm_chunk_tail_next(&t);
    cr_assert(t.seq == 0 && t.len == 0);
    dvm_chunk_tail_set(&t, 0);
    cr_assert(t.seq == 0 && t.len == 0);
    dvm_chunk_tail_set(&t, DVM_JSON_MAX_SAFE_INT + 1);
    cr_assert(t.seq == 0 && t.len == 0);
    dvm_chunk_tail_advance(&t);
    cr_assert(t.seq == 0 && t.len == 0);
}
