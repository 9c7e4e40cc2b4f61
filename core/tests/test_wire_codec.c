/* Message codec (core/wire/codec.h): exact encodings, round trips for every
 * type with edge values, rejections with their reasons, the chunk fast path
 * against the jansson path, and UTF-8 validation. */
#define _GNU_SOURCE /* memmem */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "wire/codec.h"
#include "wire/utf8.h"

#define S(lit) ((dvm_str){lit, sizeof(lit) - 1})

static dvm_msg mk(dvm_msg_type t, dvm_str id)
{
    dvm_msg m;
    memset(&m, 0, sizeof m);
    m.type = t;
    m.id = id;
    return m;
}

static void expect_encoding(const dvm_msg *m, const char *want)
{
    dvm_buf b;
    dvm_buf_init(&b, 0);
    cr_assert_eq(dvm_msg_encode(m, &b), DVM_OK);
    cr_assert(b.len == strlen(want) && memcmp(b.data, want, b.len) == 0,
              "encoding of %s:\n got: %.*s\nwant: %s", dvm_msg_type_name(m->type), (int)b.len,
              (const char *)b.data, want);
    dvm_buf_free(&b);
}

/* Expected bytes written by hand from ECMA-262 JSON.stringify (property
 * order = insertion order {type, id, ...seed fields}). */
Test(wire_codec, encodes_every_type_like_json_stringify)
{
    dvm_msg m = mk(DVM_MSG_REQUEST, S("j1"));
    m.kind = 5100;
    m.input = S("Explain quantum computing");
    m.budget = 50;
    expect_encoding(&m, "{\"type\":\"request\",\"id\":\"j1\",\"kind\":5100,"
                        "\"input\":\"Explain quantum computing\",\"budget\":50}\n");
    m = mk(DVM_MSG_OFFER, S("j1"));
    m.sats_per_chunk = 1;
    m.chunks_per_payment = 10;
    expect_encoding(&m, "{\"type\":\"offer\",\"id\":\"j1\",\"sats_per_chunk\":1,"
                        "\"chunks_per_payment\":10}\n");
    m = mk(DVM_MSG_PAYMENT, S("j1"));
    m.token = S("cashuBxyz");
    expect_encoding(&m, "{\"type\":\"payment\",\"id\":\"j1\",\"token\":\"cashuBxyz\"}\n");
    m = mk(DVM_MSG_PAYMENT_ACK, S("j1"));
    m.amount = 10;
    expect_encoding(&m, "{\"type\":\"payment_ack\",\"id\":\"j1\",\"amount\":10}\n");
    m = mk(DVM_MSG_ACCEPTED, S("j1"));
    expect_encoding(&m, "{\"type\":\"accepted\",\"id\":\"j1\"}\n");
    m = mk(DVM_MSG_CHUNK, S("j1"));
    m.data = S("Hi");
    expect_encoding(&m, "{\"type\":\"chunk\",\"id\":\"j1\",\"data\":\"Hi\"}\n");
    m.has_seq = true;
    m.seq = 7;
    expect_encoding(&m, "{\"type\":\"chunk\",\"id\":\"j1\",\"data\":\"Hi\",\"seq\":7}\n");
    m = mk(DVM_MSG_PAY_REQUIRED, S("j1"));
    m.earned = 10;
    m.next = 10;
    expect_encoding(&m, "{\"type\":\"pay_required\",\"id\":\"j1\",\"earned\":10,\"next\":10}\n");
    m = mk(DVM_MSG_RESULT, S("j1"));
    m.output = S("done");
    m.total_sats = 20;
    expect_encoding(&m,
                    "{\"type\":\"result\",\"id\":\"j1\",\"output\":\"done\",\"total_sats\":20}\n");
    m = mk(DVM_MSG_STOP, S("j1"));
    m.seq = 3; /* fields of other types are not written */
    m.has_seq = true;
    m.amount = 5;
    expect_encoding(&m, "{\"type\":\"stop\",\"id\":\"j1\"}\n");
    m = mk(DVM_MSG_ERROR, S("j1"));
    m.message = S("No capacity (3/3 slots used)");
    expect_encoding(&m,
                    "{\"type\":\"error\",\"id\":\"j1\",\"message\":\"No capacity (3/3 slots used)\"}\n");
}

Test(wire_codec, string_escaping_matches_json_stringify)
{
    dvm_msg m = mk(DVM_MSG_ERROR, S("\x00\x01\x1f\x7f"));
    m.message = S("\"\\/\b\f\n\r\t\x0b\xe2\x80\xa8\xf0\x9f\x98\x80\xc3\xa9");
    expect_encoding(&m, "{\"type\":\"error\",\"id\":\"\\u0000\\u0001\\u001f\x7f\","
                        "\"message\":\"\\\"\\\\/\\b\\f\\n\\r\\t\\u000b\xe2\x80\xa8"
                        "\xf0\x9f\x98\x80\xc3\xa9\"}\n");
}

Test(wire_codec, chunk_encoder_matches_general_encoder)
{
    static const char *const datas[] = {"", "x", "0123456789abcdef0123456789abcdef\"",
                                        "\x01\x02 tab\t \xe7\x99\xbe", "\\\\\\\\\\\\\\\\\\"};
    for (size_t i = 0; i < sizeof datas / sizeof datas[0]; i++)
        for (int s = 0; s < 2; s++) {
            dvm_msg m = mk(DVM_MSG_CHUNK, S("job \"7\""));
            m.data = dvm_str_c(datas[i]);
            m.has_seq = s;
            m.seq = s ? DVM_JSON_MAX_SAFE_INT : 0;
            dvm_buf a, b;
            dvm_buf_init(&a, 0);
            dvm_buf_init(&b, 0);
            cr_assert_eq(dvm_msg_encode(&m, &a), DVM_OK);
            cr_assert_eq(dvm_msg_encode_chunk(&b, m.id, m.data, m.has_seq, m.seq), DVM_OK);
            cr_assert(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
            dvm_buf_free(&a);
            dvm_buf_free(&b);
        }
}

/* ---- string scanning at every length and position ------------------------ */

/* Independent references: UTF-8 by decoding code points (RFC 3629), and
 * JSON.stringify's QuoteJSONString byte by byte. */
static bool ref_utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t k;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            k = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            k = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            k = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i < k)
            return false;
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += k;
    }
    return true;
}

static size_t ref_quote(const uint8_t *s, size_t n, char *out)
{
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        const char *e = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\b' ? "\\b"
                      : c == '\f' ? "\\f" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                      : c == '\t' ? "\\t" : NULL;
        if (e) {
            memcpy(out + o, e, 2);
            o += 2;
        } else if (c < 0x20) {
            o += (size_t)sprintf(out + o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    return o;
}

/* The chunk encoder has two paths (one pass when the buffer has room for
 * the worst case, else measure + exact reservation) and the scanners have
 * 16-byte, 8-byte and tail cases: put each special byte sequence at every
 * position of plain strings of every length up to 70, in id and in data,
 * and compare both paths and the decoder with the references. */
Test(wire_codec, string_scanning_every_length_and_position)
{
    static const struct {
        const char *b;
        size_t n;
    } sp[] = {
        {"\"", 1}, {"\\", 1}, {"\n", 1}, {"\x01", 1}, {"\x1f", 1}, {"\0", 1}, {"\x7f", 1},
        {"/", 1}, {"\xc3\xa9", 2}, {"\xe2\x80\xa8", 3}, {"\xf0\x9f\x98\x80", 4},
        {"\xc3", 1}, {"\x80", 1}, {"\xed\xa0\x80", 3}, {"\xc0\xaf", 2}, {"\xf4\x90\x80\x80", 4},
        {"\xe2\x80", 2}, {"\xff", 1},
    };
    static uint8_t str[96];
    static char want[1024], wref[700];
    dvm_msg_decoder dec;
    dvm_msg_decoder_init(&dec, 0);
    size_t checked = 0;
    for (size_t L = 0; L <= 70; L++)
        for (size_t k = 0; k <= L; k++)
            for (size_t t = 0; t < sizeof sp / sizeof sp[0]; t++)
                for (int in_id = 0; in_id < 2; in_id++) {
                    for (size_t i = 0; i < L; i++)
                        str[i] = (uint8_t)('a' + (i % 26));
                    size_t n = L;
                    if (k < L) { /* insert the special at k */
                        memmove(str + k + sp[t].n, str + k, L - k);
                        memcpy(str + k, sp[t].b, sp[t].n);
                        n = L + sp[t].n;
                    } else if (t > 0) {
                        continue; /* the plain string once per length */
                    }
                    bool valid = ref_utf8_valid(str, n);
                    cr_assert_eq(dvm_utf8_valid(str, n), valid, "utf8 L=%zu k=%zu t=%zu", L, k, t);
                    dvm_str s = {(const char *)str, n}, other = S("job-0123456789abcdef");
                    dvm_str id = in_id ? s : other, data = in_id ? other : s;
                    /* reference line */
                    size_t w = (size_t)sprintf(want, "{\"type\":\"chunk\",\"id\":");
                    w += ref_quote((const uint8_t *)id.ptr, id.len, want + w);
                    w += (size_t)sprintf(want + w, ",\"data\":");
                    w += ref_quote((const uint8_t *)data.ptr, data.len, want + w);
                    w += (size_t)sprintf(want + w, ",\"seq\":%zu}\n", 100 + L);
                    dvm_buf exact, roomy;
                    dvm_buf_init(&exact, 0);
                    dvm_buf_init(&roomy, 0);
                    cr_assert_eq(dvm_buf_reserve(&roomy, 8 * n + 256), DVM_OK);
                    dvm_err e1 = dvm_msg_encode_chunk(&exact, id, data, true, 100 + L);
                    dvm_err e2 = dvm_msg_encode_chunk(&roomy, id, data, true, 100 + L);
                    cr_assert_eq(e1, valid ? DVM_OK : DVM_ERR_INVALID, "L=%zu k=%zu t=%zu", L, k, t);
                    cr_assert_eq(e2, e1, "one-pass path: L=%zu k=%zu t=%zu", L, k, t);
                    if (valid) {
                        cr_assert(exact.len == w && memcmp(exact.data, want, w) == 0,
                                  "exact path L=%zu k=%zu t=%zu id=%d: %.*s", L, k, t, in_id,
                                  (int)exact.len, (const char *)exact.data);
                        cr_assert(roomy.len == w && memcmp(roomy.data, want, w) == 0,
                                  "one-pass path L=%zu k=%zu t=%zu id=%d: %.*s", L, k, t, in_id,
                                  (int)roomy.len, (const char *)roomy.data);
                        /* the fast decoder gives the strings back */
                        dvm_msg m;
                        cr_assert_eq(dvm_msg_decode_fast(&dec, roomy.data, roomy.len - 1, &m), DVM_OK);
                        cr_assert(m.id.len == id.len && memcmp(m.id.ptr, id.ptr, id.len) == 0);
                        cr_assert(m.data.len == data.len &&
                                  (data.len == 0 || memcmp(m.data.ptr, data.ptr, data.len) == 0));
                        cr_assert_eq(m.seq, 100 + L);
                        /* without escapes the view points into the line */
                        size_t q = ref_quote((const uint8_t *)s.ptr, s.len, wref);
                        const char *sv = in_id ? m.id.ptr : m.data.ptr;
                        bool in_line = sv >= (const char *)roomy.data &&
                                       sv < (const char *)roomy.data + roomy.len;
                        cr_assert_eq(in_line, q == s.len + 2, "zero copy L=%zu k=%zu t=%zu", L, k, t);
                    } else {
                        cr_assert_eq(exact.len, 0);
                        cr_assert_eq(roomy.len, 0);
                    }
                    dvm_buf_free(&exact);
                    dvm_buf_free(&roomy);
                    checked++;
                }
    cr_assert_gt(checked, 80000);
    dvm_msg_decoder_free(&dec);
}

/* seq of every length: the fast path reads 1..16 digits (8 at a time) and
 * leaves anything else to jansson. */
Test(wire_codec, fast_path_seq_every_length)
{
    dvm_msg_decoder d;
    dvm_msg_decoder_init(&d, 0);
    char line[128], digits[24];
    uint64_t v = 0;
    for (int n = 1; n <= 17; n++) {
        v = v * 10 + (uint64_t)(n % 9 + 1); /* 1, 12, 123, ... no zero digit */
        snprintf(digits, sizeof digits, "%llu", (unsigned long long)v);
        snprintf(line, sizeof line, "{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"x\",\"seq\":%s}", digits);
        dvm_msg m;
        dvm_err e = dvm_msg_decode_fast(&d, line, strlen(line), &m);
        if (n <= 15 || (n == 16 && v <= DVM_JSON_MAX_SAFE_INT)) {
            cr_assert_eq(e, DVM_OK, "%d digits", n);
            cr_assert(m.has_seq && m.seq == v, "%d digits: %llu", n, (unsigned long long)m.seq);
        } else {
            cr_assert_eq(e, DVM_ERR_AGAIN, "%d digits", n);
        }
        /* a non-digit at any position, or a leading zero: not the fast path */
        size_t at = strlen(line) - 1 - (size_t)n;
        for (int k = 0; k < n; k++) {
            static const char bad[] = {'/', ':', 'a', ' ', '.', '-'};
            for (size_t b = 0; b < sizeof bad; b++) {
                char c = line[at + (size_t)k];
                line[at + (size_t)k] = bad[b];
                cr_assert_eq(dvm_msg_decode_fast(&d, line, strlen(line), &m), DVM_ERR_AGAIN,
                             "%d digits, '%c' at %d", n, bad[b], k);
                line[at + (size_t)k] = c;
            }
        }
        char c = line[at];
        line[at] = '0';
        cr_assert_eq(dvm_msg_decode_fast(&d, line, strlen(line), &m), DVM_ERR_AGAIN);
        line[at] = c;
    }
    const char *max = "{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"x\",\"seq\":9007199254740991}";
    const char *over = "{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"x\",\"seq\":9007199254740992}";
    dvm_msg m;
    cr_assert_eq(dvm_msg_decode_fast(&d, max, strlen(max), &m), DVM_OK);
    cr_assert_eq(m.seq, DVM_JSON_MAX_SAFE_INT);
    cr_assert_eq(dvm_msg_decode_fast(&d, over, strlen(over), &m), DVM_ERR_AGAIN);
    dvm_msg_decoder_free(&d);
}

/* ---- round trips --------------------------------------------------------- */

static const dvm_str k_strings[] = {
    {"", 0},
    {"a", 1},
    {"\0nul\0", 5},
    {"\"quoted\" \\ back / slash", 23},
    {"\xe7\x99\xbe\xe5\xb9\xb4\xe5\xad\xa4\xe7\x8b\xac", 12},
    {"\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7", 18},
    {"\x01\x02\x03\x1e\x1f\x7f\xe2\x80\xa8\xe2\x80\xa9\xef\xbb\xbf\xf4\x8f\xbf\xbf", 19},
    {"line1\nline2\r\n\ttabbed\b\f", 23},
};
static const uint64_t k_ints[] = {0, 1, 10, 5100, 4294967296ULL, DVM_JSON_MAX_SAFE_INT};

static void roundtrip(const dvm_msg *m)
{
    dvm_buf b, b2;
    dvm_buf_init(&b, 0);
    dvm_buf_init(&b2, 0);
    cr_assert_eq(dvm_msg_encode(m, &b), DVM_OK);
    cr_assert(b.len > 0 && b.data[b.len - 1] == '\n');
    cr_assert_null(memchr(b.data, '\n', b.len - 1), "one line only");
    dvm_msg_decoder d;
    dvm_msg_decoder_init(&d, 0);
    char why[DVM_REASON_MAX];
    dvm_msg out;
    /* the dispatching decoder, then the jansson path alone */
    cr_assert_eq(dvm_msg_decode(&d, b.data, b.len - 1, &out, why, sizeof why), DVM_OK, "%s", why);
    cr_assert(dvm_msg_equal(m, &out), "decode(encode(m)) != m for %s", dvm_msg_type_name(m->type));
    cr_assert_eq(dvm_msg_encode(&out, &b2), DVM_OK);
    cr_assert(b.len == b2.len && memcmp(b.data, b2.data, b.len) == 0);
    cr_assert_eq(dvm_msg_decode_json(&d, b.data, b.len - 1, &out, why, sizeof why), DVM_OK);
    cr_assert(dvm_msg_equal(m, &out));
    dvm_msg_decoder_free(&d);
    dvm_buf_free(&b);
    dvm_buf_free(&b2);
}

Test(wire_codec, roundtrip_every_type_with_edge_values)
{
    size_t ns = sizeof k_strings / sizeof k_strings[0], ni = sizeof k_ints / sizeof k_ints[0];
    int count = 0;
    for (int t = DVM_MSG_REQUEST; t <= DVM_MSG_ERROR; t++)
        for (size_t i = 0; i < ns; i++)
            for (size_t j = 0; j < ni; j++) {
                dvm_msg m = mk((dvm_msg_type)t, k_strings[(i + j) % ns]);
                m.kind = k_ints[j];
                m.budget = k_ints[(j + 1) % ni];
                m.sats_per_chunk = k_ints[j];
                m.chunks_per_payment = k_ints[(j + 2) % ni];
                m.amount = m.earned = m.total_sats = k_ints[j];
                m.next = k_ints[(j + 3) % ni];
                m.input = m.token = m.data = m.output = m.message = k_strings[i];
                m.has_seq = j % 2;
                m.seq = m.has_seq ? (k_ints[j] ? k_ints[j] : 1) : 0;
                roundtrip(&m);
                count++;
            }
    cr_assert_eq(count, 10 * 8 * 6);
}

/* ---- rejections -------------------------------------------------------- */

typedef struct reject_case {
    const char *line;
    dvm_err err;
    const char *reason; /* exact */
} reject_case;

static const reject_case k_rejects[] = {
    {"", DVM_ERR_INVALID, NULL},
    {"{", DVM_ERR_INVALID, NULL},
    {"not json", DVM_ERR_INVALID, NULL},
    {"{\"type\":\"stop\",\"id\":\"j\"} trailing", DVM_ERR_INVALID, NULL},
    {"[1,2]", DVM_ERR_INVALID, "message is not a JSON object"},
    {"{}", DVM_ERR_INVALID, "missing field 'type'"},
    {"{\"id\":\"j\"}", DVM_ERR_INVALID, "missing field 'type'"},
    {"{\"type\":5,\"id\":\"j\"}", DVM_ERR_INVALID, "field 'type' must be a string"},
    {"{\"type\":null,\"id\":\"j\"}", DVM_ERR_INVALID, "field 'type' must be a string"},
    {"{\"type\":\"foo\",\"id\":\"j\"}", DVM_ERR_INVALID, "unknown message type 'foo'"},
    {"{\"type\":\"Chunk\",\"id\":\"j\",\"data\":\"\"}", DVM_ERR_INVALID,
     "unknown message type 'Chunk'"},
    {"{\"type\":\"a'b\\n\\u0000c\",\"id\":\"j\"}", DVM_ERR_INVALID,
     "unknown message type 'a?b??c'"},
    {"{\"type\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}", DVM_ERR_INVALID,
     "unknown message type 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...'"},
    {"{\"type\":\"stop\"}", DVM_ERR_INVALID, "missing field 'id' in stop"},
    {"{\"type\":\"stop\",\"id\":7}", DVM_ERR_INVALID, "field 'id' in stop must be a string"},
    {"{\"type\":\"payment\",\"id\":\"j\"}", DVM_ERR_INVALID, "missing field 'token' in payment"},
    {"{\"type\":\"payment\",\"id\":\"j\",\"token\":null}", DVM_ERR_INVALID,
     "field 'token' in payment must be a string"},
    {"{\"type\":\"request\",\"id\":\"j\",\"kind\":5100,\"input\":\"x\"}", DVM_ERR_INVALID,
     "missing field 'budget' in request"},
    {"{\"type\":\"request\",\"id\":\"j\",\"kind\":\"5100\",\"input\":\"x\",\"budget\":1}",
     DVM_ERR_INVALID, "field 'kind' in request must be a non-negative integer"},
    {"{\"type\":\"request\",\"id\":\"j\",\"kind\":5100,\"input\":[],\"budget\":1}",
     DVM_ERR_INVALID, "field 'input' in request must be a string"},
    {"{\"type\":\"payment_ack\",\"id\":\"j\",\"amount\":1.5}", DVM_ERR_INVALID,
     "field 'amount' in payment_ack must be a non-negative integer"},
    {"{\"type\":\"payment_ack\",\"id\":\"j\",\"amount\":1.0}", DVM_ERR_INVALID,
     "field 'amount' in payment_ack must be a non-negative integer"},
    {"{\"type\":\"payment_ack\",\"id\":\"j\",\"amount\":1e3}", DVM_ERR_INVALID,
     "field 'amount' in payment_ack must be a non-negative integer"},
    {"{\"type\":\"payment_ack\",\"id\":\"j\",\"amount\":-1}", DVM_ERR_INVALID,
     "field 'amount' in payment_ack must be a non-negative integer"},
    {"{\"type\":\"payment_ack\",\"id\":\"j\",\"amount\":true}", DVM_ERR_INVALID,
     "field 'amount' in payment_ack must be a non-negative integer"},
    {"{\"type\":\"payment_ack\",\"id\":\"j\",\"amount\":9007199254740992}", DVM_ERR_INVALID,
     "field 'amount' in payment_ack exceeds 2^53-1"},
    {"{\"type\":\"payment_ack\",\"id\":\"j\",\"amount\":99999999999999999999}",
     DVM_ERR_INVALID, NULL},
    {"{\"type\":\"offer\",\"id\":\"j\",\"sats_per_chunk\":1}", DVM_ERR_INVALID,
     "missing field 'chunks_per_payment' in offer"},
    {"{\"type\":\"pay_required\",\"id\":\"j\",\"earned\":1}", DVM_ERR_INVALID,
     "missing field 'next' in pay_required"},
    {"{\"type\":\"result\",\"id\":\"j\",\"output\":\"o\"}", DVM_ERR_INVALID,
     "missing field 'total_sats' in result"},
    {"{\"type\":\"error\",\"id\":\"j\"}", DVM_ERR_INVALID, "missing field 'message' in error"},
    {"{\"type\":\"chunk\",\"id\":\"j\"}", DVM_ERR_INVALID, "missing field 'data' in chunk"},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"x\",\"seq\":0}", DVM_ERR_INVALID,
     "field 'seq' in chunk must be an integer from 1 to 2^53-1"},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"x\",\"seq\":-3}", DVM_ERR_INVALID,
     "field 'seq' in chunk must be an integer from 1 to 2^53-1"},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"x\",\"seq\":\"1\"}", DVM_ERR_INVALID,
     "field 'seq' in chunk must be an integer from 1 to 2^53-1"},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"x\",\"seq\":9007199254740992}",
     DVM_ERR_INVALID, "field 'seq' in chunk must be an integer from 1 to 2^53-1"},
    /* invalid UTF-8 and lone surrogates: rejected by the parser */
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"\xff\"}", DVM_ERR_INVALID, NULL},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"\xc0\xaf\"}", DVM_ERR_INVALID, NULL},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"\xed\xa0\x80\"}", DVM_ERR_INVALID, NULL},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"\\ud800\"}", DVM_ERR_INVALID, NULL},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"\\udc00x\"}", DVM_ERR_INVALID, NULL},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"raw\ttab\"}", DVM_ERR_INVALID, NULL},
};

Test(wire_codec, rejections_with_reasons)
{
    dvm_msg_decoder d;
    dvm_msg_decoder_init(&d, 0);
    for (size_t i = 0; i < sizeof k_rejects / sizeof k_rejects[0]; i++) {
        const reject_case *c = &k_rejects[i];
        dvm_msg m;
        char why[DVM_REASON_MAX];
        memset(why, 'Z', sizeof why);
        dvm_err e = dvm_msg_decode(&d, c->line, strlen(c->line), &m, why, sizeof why);
        cr_assert_eq(e, c->err, "case %zu (%s): err %d", i, c->line, e);
        cr_assert_eq(m.type, DVM_MSG_NONE, "case %zu: no type on error", i);
        cr_assert(memchr(why, '\0', sizeof why), "case %zu: reason terminated", i);
        cr_assert(why[0] != '\0', "case %zu: a reason is given", i);
        for (const char *p = why; *p; p++)
            cr_assert(*p >= 0x20 && *p < 0x7f, "case %zu: printable reason", i);
        if (c->reason)
            cr_assert_str_eq(why, c->reason, "case %zu: %s", i, why);
        else
            cr_assert(strncmp(why, "invalid JSON: ", 14) == 0, "case %zu: %s", i, why);
    }
    dvm_msg_decoder_free(&d);
}

Test(wire_codec, reason_is_truncated_to_the_buffer)
{
    dvm_msg_decoder d;
    dvm_msg_decoder_init(&d, 0);
    dvm_msg m;
    char why[8];
    const char *l = "{\"type\":\"payment\",\"id\":\"j\"}";
    cr_assert_eq(dvm_msg_decode(&d, l, strlen(l), &m, why, sizeof why), DVM_ERR_INVALID);
    cr_assert_str_eq(why, "missing");
    cr_assert_eq(dvm_msg_decode(&d, l, strlen(l), &m, NULL, 0), DVM_ERR_INVALID);
    dvm_msg_decoder_free(&d);
}

Test(wire_codec, accepted_quirks)
{
    dvm_msg_decoder d;
    dvm_msg_decoder_init(&d, 0);
    dvm_msg m;
    char why[DVM_REASON_MAX];
    /* whitespace, other key order, unknown fields, duplicate keys (last
     * wins, as JSON.parse), -0 as 0, \u escapes and NUL */
    const char *l = " { \"extra\" : {\"deep\":[1,2,{}]}, \"amount\" : 3 , \"id\":\"x\",\"amount\":-0,"
                    "\"type\" : \"payment_ack\" , \"id\" : \"j\\u0000\\u00e9\\ud83d\\ude00\" } ";
    cr_assert_eq(dvm_msg_decode(&d, l, strlen(l), &m, why, sizeof why), DVM_OK, "%s", why);
    cr_assert_eq(m.type, DVM_MSG_PAYMENT_ACK);
    cr_assert_eq(m.amount, 0);
    cr_assert_eq(m.id.len, 8);
    cr_assert(memcmp(m.id.ptr, "j\0\xc3\xa9\xf0\x9f\x98\x80", 8) == 0);
    /* largest value */
    l = "{\"type\":\"pay_required\",\"id\":\"\",\"earned\":9007199254740991,\"next\":0}";
    cr_assert_eq(dvm_msg_decode(&d, l, strlen(l), &m, why, sizeof why), DVM_OK, "%s", why);
    cr_assert_eq(m.earned, DVM_JSON_MAX_SAFE_INT);
    cr_assert_eq(m.id.len, 0);
    dvm_msg_decoder_free(&d);
}

Test(wire_codec, decoder_limit)
{
    dvm_msg_decoder d;
    dvm_msg_decoder_init(&d, 40);
    dvm_msg m;
    char why[DVM_REASON_MAX];
    const char *ok = "{\"type\":\"stop\",\"id\":\"j\"}";
    const char *big = "{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"0123456789\"}";
    cr_assert_eq(dvm_msg_decode(&d, ok, strlen(ok), &m, why, sizeof why), DVM_OK);
    cr_assert_eq(dvm_msg_decode(&d, big, strlen(big), &m, why, sizeof why), DVM_ERR_TOO_LARGE);
    cr_assert_str_eq(why, "message too large");
    cr_assert_leq(d.scratch.cap, 64); /* dvm_buf allocates at least 64 */
    dvm_msg_decoder_free(&d);
}

Test(wire_codec, encoder_validates_and_leaves_output_unchanged)
{
    dvm_buf b;
    dvm_buf_init(&b, 0);
    dvm_buf_append(&b, "prefix", 6);
    dvm_msg m = mk(DVM_MSG_CHUNK, S("j"));
    m.data = S("bad \xff utf8");
    cr_assert_eq(dvm_msg_encode(&m, &b), DVM_ERR_INVALID);
    m.data = S("surrogate \xed\xa0\x80");
    cr_assert_eq(dvm_msg_encode(&m, &b), DVM_ERR_INVALID);
    m.data = S("ok");
    m.id = S("\xc3");
    cr_assert_eq(dvm_msg_encode(&m, &b), DVM_ERR_INVALID);
    cr_assert_eq(dvm_msg_encode_chunk(&b, m.id, m.data, false, 0), DVM_ERR_INVALID);
    m.id = S("j");
    m.has_seq = true;
    m.seq = 0;
    cr_assert_eq(dvm_msg_encode(&m, &b), DVM_ERR_INVALID);
    cr_assert_eq(dvm_msg_encode_chunk(&b, m.id, m.data, true, 0), DVM_ERR_INVALID);
    m.seq = DVM_JSON_MAX_SAFE_INT + 1;
    cr_assert_eq(dvm_msg_encode(&m, &b), DVM_ERR_INVALID);
    m = mk(DVM_MSG_OFFER, S("j"));
    m.chunks_per_payment = DVM_JSON_MAX_SAFE_INT + 1;
    cr_assert_eq(dvm_msg_encode(&m, &b), DVM_ERR_INVALID);
    m = mk(DVM_MSG_NONE, S("j"));
    cr_assert_eq(dvm_msg_encode(&m, &b), DVM_ERR_INVALID);
    m.type = (dvm_msg_type)99;
    cr_assert_eq(dvm_msg_encode(&m, &b), DVM_ERR_INVALID);
    cr_assert(b.len == 6 && memcmp(b.data, "prefix", 6) == 0);
    /* a full output buffer */
    dvm_buf small;
    dvm_buf_init(&small, 20);
    m = mk(DVM_MSG_STOP, S("job-with-long-id"));
    cr_assert_eq(dvm_msg_encode(&m, &small), DVM_ERR_TOO_LARGE);
    cr_assert_eq(small.len, 0);
    dvm_buf_free(&small);
    dvm_buf_free(&b);
}

/* ---- fast path vs jansson ------------------------------------------------ */

typedef struct fast_case {
    const char *line;
    size_t len; /* 0: strlen */
    bool fast;  /* the fast path is expected to handle it */
} fast_case;

static const fast_case k_fast[] = {
    {"{\"type\":\"chunk\",\"id\":\"j1\",\"data\":\"hello\"}", 0, true},
    {"{\"type\":\"chunk\",\"id\":\"j1\",\"data\":\"hello\",\"seq\":1}", 0, true},
    {"{\"type\":\"chunk\",\"id\":\"j1\",\"data\":\"hello\",\"seq\":9007199254740991}", 0, true},
    {"{\"type\":\"chunk\",\"id\":\"\",\"data\":\"\"}", 0, true},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\u001f\"}", 0,
     true},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"\\u00e9\\u00E9\\u2028\\uffff\\u0800\"}", 0, true},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"\xe7\x99\xbe \xf0\x9f\x98\x80 \x7f\"}", 0, true},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"a longer run of plain ascii text, 0123456789\"}",
     0, true},
    /* fall back: jansson decides (some accept, some reject) */
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"\\ud83d\\ude00\"}", 0, false},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"\\ud83d\"}", 0, false},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"x\",\"seq\":0}", 0, false},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"x\",\"seq\":01}", 0, false},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"x\",\"seq\":1.0}", 0, false},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"x\",\"seq\":-1}", 0, false},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"x\",\"seq\":9007199254740992}", 0, false},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"x\",\"seq\":12345678901234567}", 0, false},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"x\",\"seq\":1,\"extra\":2}", 0, false},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"x\",\"extra\":2}", 0, false},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"x\",\"data\":\"y\"}", 0, false},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"x\"} ", 0, false},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"x\"}}", 0, false},
    {"{\"type\":\"chunk\",\"id\":\"j\", \"data\":\"x\"}", 0, false},
    {"{\"type\":\"chunk\",\"data\":\"x\",\"id\":\"j\"}", 0, false},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"x", 0, false},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"x\\", 0, false},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"x\\u12", 0, false},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"x\\u12g4\"}", 0, false},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"x\\a\"}", 0, false},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"x\ty\"}", 0, false},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"\xff\"}", 0, false},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"\xe7\x99\"}", 0, false},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"\xed\xa0\x80\"}", 0, false},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"\xf4\x90\x80\x80\"}", 0, false},
    {"{\"type\":\"chunk\",\"id\":7,\"data\":\"x\"}", 0, false},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":null}", 0, false},
    {"{\"type\":\"chunk\",\"id\":\"j\"}", 0, false},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"a\0b\"}", 37, false},
    {"{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"x\"}\n", 0, false},
    {"{\"type\":\"chunks\",\"id\":\"j\",\"data\":\"x\"}", 0, false},
    {"{\"type\":\"stop\",\"id\":\"j\"}", 0, false},
    {"{\"type\":\"chunk\"", 0, false},
    {"", 0, false},
};

Test(wire_codec, fast_path_agrees_with_jansson)
{
    dvm_msg_decoder fd, jd;
    dvm_msg_decoder_init(&fd, 0);
    dvm_msg_decoder_init(&jd, 0);
    for (size_t i = 0; i < sizeof k_fast / sizeof k_fast[0]; i++) {
        const fast_case *c = &k_fast[i];
        size_t len = c->len ? c->len : strlen(c->line);
        dvm_msg fm, jm, dm;
        char why[DVM_REASON_MAX], why2[DVM_REASON_MAX];
        dvm_err fe = dvm_msg_decode_fast(&fd, c->line, len, &fm);
        dvm_err je = dvm_msg_decode_json(&jd, c->line, len, &jm, why, sizeof why);
        cr_assert_eq(fe == DVM_OK, c->fast, "case %zu: fast path %s: %s", i,
                     fe == DVM_OK ? "took" : "declined", c->line);
        if (fe == DVM_OK) {
            cr_assert_eq(je, DVM_OK, "case %zu: jansson rejects what fast accepts: %s", i, why);
            cr_assert(dvm_msg_equal(&fm, &jm), "case %zu: messages differ", i);
        } else {
            cr_assert_eq(fe, DVM_ERR_AGAIN, "case %zu", i);
        }
        /* the dispatcher gives the jansson answer in every case */
        dvm_err de = dvm_msg_decode(&fd, c->line, len, &dm, why2, sizeof why2);
        cr_assert_eq(de, je, "case %zu", i);
        if (de == DVM_OK)
            cr_assert(dvm_msg_equal(&dm, &jm), "case %zu", i);
        else
            cr_assert_str_eq(why2, why, "case %zu", i);
    }
    cr_assert_geq(fd.fast_hits, 8);
    dvm_msg_decoder_free(&fd);
    dvm_msg_decoder_free(&jd);
}

/* ---- UTF-8 --------------------------------------------------------------- */

Test(wire_codec, utf8_validation)
{
    static const struct {
        const char *s;
        size_t n;
        bool ok;
    } v[] = {
        {"", 0, true},
        {"plain ascii text longer than eight", 34, true},
        {"\0", 1, true},
        {"\xc2\x80", 2, true},
        {"\xdf\xbf", 2, true},
        {"\xe0\xa0\x80", 3, true},
        {"\xed\x9f\xbf", 3, true},
        {"\xee\x80\x80", 3, true},
        {"\xef\xbf\xbf", 3, true},
        {"\xf0\x90\x80\x80", 4, true},
        {"\xf4\x8f\xbf\xbf", 4, true},
        {"\x80", 1, false},
        {"\xbf", 1, false},
        {"\xc0\x80", 2, false},
        {"\xc1\xbf", 2, false},
        {"\xc2", 1, false},
        {"\xc2\x41", 2, false},
        {"\xe0\x9f\xbf", 3, false},
        {"\xed\xa0\x80", 3, false},
        {"\xed\xbf\xbf", 3, false},
        {"\xe2\x82", 2, false},
        {"\xf0\x8f\xbf\xbf", 4, false},
        {"\xf4\x90\x80\x80", 4, false},
        {"\xf5\x80\x80\x80", 4, false},
        {"\xff", 1, false},
        {"abcdefgh\xc3", 9, false},
        {"abcdefgh\xc3\xa9", 10, true},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        cr_assert_eq(dvm_utf8_valid((const uint8_t *)v[i].s, v[i].n), v[i].ok, "case %zu", i);
}

Test(wire_codec, type_names_round_trip)
{
    for (int t = DVM_MSG_REQUEST; t <= DVM_MSG_ERROR; t++) {
        const char *n = dvm_msg_type_name((dvm_msg_type)t);
        cr_assert_eq((int)dvm_msg_type_from_name(n, strlen(n)), t);
    }
    cr_assert_eq(dvm_msg_type_from_name("", 0), DVM_MSG_NONE);
    cr_assert_eq(dvm_msg_type_from_name("chunk\0", 6), DVM_MSG_NONE);
}

Test(wire_codec, rejected_message_keeps_its_job_id)
{
    dvm_msg_decoder d;
    dvm_msg_decoder_init(&d, 0);
    dvm_msg m;
    char why[DVM_REASON_MAX];
    static const struct {
        const char *line;
        const char *id;
    } v[] = {
        {"{\"type\":\"payment\",\"id\":\"job-9\"}", "job-9"},
        {"{\"id\":\"job-8\",\"type\":\"nope\"}", "job-8"},
        {"{\"id\":\"job-7\"}", "job-7"},
        {"{\"type\":\"chunk\",\"id\":\"job-6\",\"data\":\"x\",\"seq\":0}", "job-6"},
        {"{\"type\":\"stop\",\"id\":6}", ""},
        {"{\"type\":\"stop\",\"id\":\"j\"", ""},
        {"[\"id\"]", ""},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        cr_assert_eq(dvm_msg_decode(&d, v[i].line, strlen(v[i].line), &m, why, sizeof why),
                     DVM_ERR_INVALID, "case %zu", i);
        cr_assert_eq(m.type, DVM_MSG_NONE);
        cr_assert(m.id.len == strlen(v[i].id) && memcmp(m.id.ptr ? m.id.ptr : "", v[i].id,
                                                        m.id.len) == 0,
                  "case %zu: id '%.*s'", i, (int)m.id.len, m.id.ptr ? m.id.ptr : "");
        cr_assert_eq(m.data.len, 0);
    }
    dvm_msg_decoder_free(&d);
}

Test(wire_codec, null_empty_strings_encode_as_empty)
{
    dvm_msg m;
    memset(&m, 0, sizeof m); /* every dvm_str {NULL, 0} */
    for (int t = DVM_MSG_REQUEST; t <= DVM_MSG_ERROR; t++) {
        m.type = (dvm_msg_type)t;
        dvm_buf b;
        dvm_buf_init(&b, 0);
        cr_assert_eq(dvm_msg_encode(&m, &b), DVM_OK);
        cr_assert_not_null(memmem(b.data, b.len, "\"id\":\"\"", 7));
        dvm_buf_free(&b);
    }
    dvm_buf b;
    dvm_buf_init(&b, 0);
    cr_assert_eq(dvm_msg_encode_chunk(&b, (dvm_str){NULL, 0}, (dvm_str){NULL, 0}, false, 0),
                 DVM_OK);
    const char *want = "{\"type\":\"chunk\",\"id\":\"\",\"data\":\"\"}\n";
    cr_assert(b.len == strlen(want) && memcmp(b.data, want, b.len) == 0);
    dvm_buf_free(&b);
}

/* The kept chunk head: dvm_msg_chunk_head + dvm_msg_encode_chunk_with_head
 * give dvm_msg_encode_chunk's bytes (ids and data with escapes, unicode,
 * control bytes, empty), the same errors with the output unchanged, and the
 * head is exactly the line's start up to the data's opening quote. */
Test(wire_codec, chunk_head_encoding_matches_chunk_encoder)
{
    for (size_t i = 0; i < sizeof k_strings / sizeof k_strings[0]; i++)
        for (size_t j = 0; j < sizeof k_strings / sizeof k_strings[0]; j++)
            for (int s = 0; s < 3; s++) {
                dvm_buf head, a, b;
                dvm_buf_init(&head, 0);
                dvm_buf_init(&a, 0);
                dvm_buf_init(&b, s == 2 ? 200 : 0);
                bool has = s != 0;
                uint64_t seq = s == 1 ? 1 : DVM_JSON_MAX_SAFE_INT;
                cr_assert_eq(dvm_msg_chunk_head(&head, k_strings[i]), DVM_OK);
                dvm_str h = {(const char *)head.data, head.len};
                dvm_err ea = dvm_msg_encode_chunk(&a, k_strings[i], k_strings[j], has, seq);
                cr_assert_eq(ea, DVM_OK);
                cr_assert(head.len < a.len && memcmp(head.data, a.data, head.len) == 0);
                cr_assert_eq(a.data[head.len - 1], '"');
                cr_assert_eq(dvm_buf_append(&b, "pre", 3), DVM_OK);
                cr_assert_eq(dvm_msg_encode_chunk_with_head(&b, h, k_strings[j], has, seq), DVM_OK);
                cr_assert(b.len == a.len + 3 && memcmp(b.data + 3, a.data, a.len) == 0);
                /* errors: bad UTF-8, seq 0, over the output's max */
                size_t before = b.len;
                cr_assert_eq(dvm_msg_encode_chunk_with_head(&b, h, S("a\xff"), has, seq),
                             DVM_ERR_INVALID);
                cr_assert_eq(dvm_msg_encode_chunk_with_head(&b, h, k_strings[j], true, 0),
                             DVM_ERR_INVALID);
                b.max = b.len + a.len - 1;
                cr_assert_eq(dvm_msg_encode_chunk_with_head(&b, h, k_strings[j], has, seq),
                             DVM_ERR_TOO_LARGE);
                cr_assert_eq(b.len, before);
                dvm_buf_free(&head);
                dvm_buf_free(&a);
                dvm_buf_free(&b);
            }
    dvm_buf out;
    dvm_buf_init(&out, 0);
    cr_assert_eq(dvm_msg_chunk_head(&out, S("bad\xc3")), DVM_ERR_INVALID);
    cr_assert_eq(out.len, 0);
    cr_assert_eq(dvm_msg_encode_chunk_with_head(&out, S("{\"short\""), S("x"), false, 0),
                 DVM_ERR_INVALID);
    dvm_buf_free(&out);
}
