#include "wire/codec.h"
#include "common/err.h"
#include "common/hex.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "wire/chunk_fast.h"
#include "wire/jscan.h"
#include "wire/utf8.h"

/* ---- the seed table ---------------------------------------------------- */

enum field_kind { F_STR, F_INT };

typedef struct field_spec {
    const char *name;
    size_t nlen; /* strlen(name) */
    enum field_kind kind;
    size_t off; /* offset of the dvm_str or uint64_t in dvm_msg */
} field_spec;

typedef struct type_spec {
    const char *tname; /* wire name, as dvm_msg_type_name */
    size_t tlen;       /* strlen(tname) */
    unsigned nfields;
    field_spec f[3];
} type_spec;

#define STR(n) {#n, sizeof #n - 1, F_STR, offsetof(dvm_msg, n)}
#define INT(n) {#n, sizeof #n - 1, F_INT, offsetof(dvm_msg, n)}
#define TYPE(name) name, sizeof name - 1

static const type_spec specs[] = {
    [DVM_MSG_NONE] = {TYPE(""), 0, {{0}}},
    [DVM_MSG_REQUEST] = {TYPE("request"), 3, {INT(kind), STR(input), INT(budget)}},
    [DVM_MSG_OFFER] = {TYPE("offer"), 2, {INT(sats_per_chunk), INT(chunks_per_payment)}},
    [DVM_MSG_PAYMENT] = {TYPE("payment"), 1, {STR(token)}},
    [DVM_MSG_PAYMENT_ACK] = {TYPE("payment_ack"), 1, {INT(amount)}},
    [DVM_MSG_ACCEPTED] = {TYPE("accepted"), 0, {{0}}},
    [DVM_MSG_CHUNK] = {TYPE("chunk"), 1, {STR(data)}}, /* + optional seq */
    [DVM_MSG_PAY_REQUIRED] = {TYPE("pay_required"), 2, {INT(earned), INT(next)}},
    [DVM_MSG_RESULT] = {TYPE("result"), 2, {STR(output), INT(total_sats)}},
    [DVM_MSG_STOP] = {TYPE("stop"), 0, {{0}}},
    [DVM_MSG_ERROR] = {TYPE("error"), 1, {STR(message)}},
};

#define NTYPES ((int)(sizeof specs / sizeof specs[0]))

static dvm_str *str_at(dvm_msg *m, size_t off) { return (dvm_str *)((char *)m + off); }
static uint64_t *int_at(dvm_msg *m, size_t off) { return (uint64_t *)((char *)m + off); }
static const dvm_str *cstr_at(const dvm_msg *m, size_t off)
{
    return (const dvm_str *)((const char *)m + off);
}
static const uint64_t *cint_at(const dvm_msg *m, size_t off)
{
    return (const uint64_t *)((const char *)m + off);
}

dvm_msg_type dvm_msg_type_from_name(const char *name, size_t n)
{
    for (int t = 1; t < NTYPES; t++)
        if (specs[t].tlen == n && memcmp(specs[t].tname, name, n) == 0)
            return (dvm_msg_type)t;
    return DVM_MSG_NONE;
}

/* ---- decoder object ---------------------------------------------------- */

void dvm_msg_decoder_init(dvm_msg_decoder *d, size_t max_len)
{
    d->max_len = max_len ? max_len : DVM_CODEC_DEFAULT_MAX_LEN;
    dvm_buf_init(&d->scratch, d->max_len + 1);
    d->fast_hits = 0;
    d->slow_hits = 0;
}

void dvm_msg_decoder_free(dvm_msg_decoder *d)
{
    dvm_buf_free(&d->scratch);
}

/* Empty the scratch and make room for every string of a `len`-byte line:
 * decoded strings are never longer than their JSON source, so one
 * reservation suffices and pointers into the scratch stay stable. */
static dvm_err scratch_prepare(dvm_msg_decoder *d, size_t len)
{
    dvm_buf_reset(&d->scratch);
    return dvm_buf_reserve(&d->scratch, len ? len : 1);
}

/* ---- reasons ------------------------------------------------------------ */

/* Printable-ASCII copy of peer bytes for a reason: at most 32 bytes, others
 * replaced by '?', "..." when cut. out must hold 36 bytes. */
static void sanitize(char out[36], const char *s, size_t n)
{
    size_t k = n > 32 ? 32 : n, i;
    for (i = 0; i < k; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = (c >= 0x20 && c < 0x7f && c != '\'') ? (char)c : '?';
    }
    if (n > 32) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
}

/* ---- jansson path ------------------------------------------------------- */

static dvm_err take_str(dvm_msg_decoder *d, json_t *v, dvm_str *dst)
{
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    /* jansson validated the UTF-8 already; check again, it is cheap and the
     * contract of dvm_msg is ours. */
    if (!dvm_utf8_valid((const uint8_t *)s, n))
        return DVM_ERR_INVALID;
    if (n > d->scratch.cap - d->scratch.len)
        return DVM_ERR_INVALID; /* cannot happen: see scratch_prepare */
    uint8_t *p = d->scratch.data + d->scratch.len;
    if (n)
        memcpy(p, s, n);
    d->scratch.len += n;
    dst->ptr = (const char *)p;
    dst->len = n;
    return DVM_OK;
}

dvm_err dvm_msg_decode_json(dvm_msg_decoder *d, const void *line, size_t len,
                            dvm_msg *out, char *reason, size_t reason_cap)
{
    memset(out, 0, sizeof *out);
    if (reason && reason_cap)
        reason[0] = '\0';
    if (len > d->max_len) {
        dvm_reasonf(reason, reason_cap, "message too large");
        return DVM_ERR_TOO_LARGE;
    }
    d->slow_hits++;
    if (scratch_prepare(d, len) != DVM_OK) {
        dvm_reasonf(reason, reason_cap, "out of memory");
        return DVM_ERR_NOMEM;
    }

    json_error_t jerr;
    json_t *root = json_loadb(line ? (const char *)line : "", len, JSON_ALLOW_NUL, &jerr);
    if (!root) {
        char txt[36];
        const char *z = memchr(jerr.text, '\0', sizeof jerr.text);
        sanitize(txt, jerr.text, z ? (size_t)(z - jerr.text) : sizeof jerr.text);
        dvm_reasonf(reason, reason_cap, "invalid JSON: %s", txt);
        return DVM_ERR_INVALID;
    }

    dvm_err err = DVM_ERR_INVALID;
    dvm_msg m;
    memset(&m, 0, sizeof m);
    char shown[36];

    if (!json_is_object(root)) {
        dvm_reasonf(reason, reason_cap, "message is not a JSON object");
        goto done;
    }
    /* The job id first, so even a rejected message can be answered with an
     * `error` for its job. */
    json_t *jid = json_object_get(root, "id");
    bool id_ok = jid && json_is_string(jid) && take_str(d, jid, &m.id) == DVM_OK;
    json_t *jt = json_object_get(root, "type");
    if (!jt) {
        dvm_reasonf(reason, reason_cap, "missing field 'type'");
        goto done;
    }
    if (!json_is_string(jt)) {
        dvm_reasonf(reason, reason_cap, "field 'type' must be a string");
        goto done;
    }
    m.type = dvm_msg_type_from_name(json_string_value(jt), json_string_length(jt));
    if (m.type == DVM_MSG_NONE) {
        sanitize(shown, json_string_value(jt), json_string_length(jt));
        dvm_reasonf(reason, reason_cap, "unknown message type '%s'", shown);
        goto done;
    }
    const char *tname = dvm_msg_type_name(m.type);

    if (!jid) {
        dvm_reasonf(reason, reason_cap, "missing field 'id' in %s", tname);
        goto done;
    }
    if (!json_is_string(jid)) {
        dvm_reasonf(reason, reason_cap, "field 'id' in %s must be a string", tname);
        goto done;
    }
    if (!id_ok) {
        dvm_reasonf(reason, reason_cap, "field 'id' in %s is not valid UTF-8", tname);
        goto done;
    }

    const type_spec *ts = &specs[m.type];
    for (unsigned i = 0; i < ts->nfields; i++) {
        const field_spec *fs = &ts->f[i];
        json_t *v = json_object_get(root, fs->name);
        if (!v) {
            dvm_reasonf(reason, reason_cap, "missing field '%s' in %s", fs->name, tname);
            goto done;
        }
        if (fs->kind == F_STR) {
            if (!json_is_string(v)) {
                dvm_reasonf(reason, reason_cap, "field '%s' in %s must be a string", fs->name,
                           tname);
                goto done;
            }
            if (take_str(d, v, str_at(&m, fs->off)) != DVM_OK) {
                dvm_reasonf(reason, reason_cap, "field '%s' in %s is not valid UTF-8",
                           fs->name, tname);
                goto done;
            }
        } else {
            if (!json_is_integer(v) || json_integer_value(v) < 0) {
                dvm_reasonf(reason, reason_cap, "field '%s' in %s must be a non-negative integer",
                           fs->name, tname);
                goto done;
            }
            json_int_t iv = json_integer_value(v);
            if ((unsigned long long)iv > DVM_JSON_MAX_SAFE_INT) {
                dvm_reasonf(reason, reason_cap, "field '%s' in %s exceeds 2^53-1", fs->name,
                           tname);
                goto done;
            }
            *int_at(&m, fs->off) = (uint64_t)iv;
        }
    }
    if (m.type == DVM_MSG_CHUNK) {
        json_t *js = json_object_get(root, "seq");
        if (js) {
            if (!json_is_integer(js) || json_integer_value(js) < 1 ||
                (unsigned long long)json_integer_value(js) > DVM_JSON_MAX_SAFE_INT) {
                dvm_reasonf(reason, reason_cap,
                           "field 'seq' in chunk must be an integer from 1 to 2^53-1");
                goto done;
            }
            m.has_seq = true;
            m.seq = (uint64_t)json_integer_value(js);
        }
    }
    *out = m;
    err = DVM_OK;
done:
    if (err != DVM_OK)
        out->id = m.id; /* the job id of a rejected message, when known */
    json_decref(root);
    return err;
}

/* ---- chunk fast path ---------------------------------------------------- */


/* Value of the last k (1..8) bytes of the 8 at p when they are all ASCII
 * digits (false otherwise), eight digits at a time in one 64-bit word: the
 * bytes before them are replaced by '0' (leading zeros), the word is
 * checked to be all digits, then digit pairs, quads and the octet are
 * combined with multiplications (byte 0, the first digit, is the most
 * significant). Little-endian; a digit loop elsewhere. */
static inline bool digits8(const uint8_t *p, size_t k, uint64_t *out)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t zeros = 0x3030303030303030ULL, high = 0xF0F0F0F0F0F0F0F0ULL;
    uint64_t w;
    memcpy(&w, p, 8);
    uint64_t pad = k == 8 ? 0 : ((uint64_t)1 << (8 * (8 - k))) - 1; /* lanes before */
    w = (w & ~pad) | (zeros & pad);
    /* every lane 0x30..0x39: high nibble 3, and adding 6 keeps it 3 */
    if ((w & high) != zeros || ((w + 0x0606060606060606ULL) & high) != zeros)
        return false;
    w -= zeros;
    w = (w * 10 + (w >> 8)) & 0x00FF00FF00FF00FFULL;        /* 4 pairs */
    w = (w * 100 + (w >> 16)) & 0x0000FFFF0000FFFFULL;      /* 2 quads */
    *out = (w * 10000 + (w >> 32)) & 0xFFFFFFFFULL;         /* 1 octet */
    return true;
#else
    uint64_t v = 0;
    for (size_t i = 8 - k; i < 8; i++) {
        unsigned c = (unsigned)p[i] - '0';
        if (c > 9)
            return false;
        v = v * 10 + c;
    }
    *out = v;
    return true;
#endif
}

/* State of one fast decode: the scratch is reserved (line length, enough
 * for every decoded string of the line, which is never longer than its
 * source) only when a string has an escape and must be copied. */
typedef struct fast_state {
    dvm_msg_decoder *d;
    size_t line_len;
    bool scratch_ready;
} fast_state;

/* Slow part of fast_string: the string body started at s and p is at its
 * first backslash. Decodes the body into the scratch. Returns the position
 * after the closing quote, or NULL when unsure (the caller falls back to
 * jansson). */
static const uint8_t *fast_string_esc(fast_state *st, const uint8_t *s, const uint8_t *p,
                                      const uint8_t *end, dvm_str *out)
{
    dvm_buf *sc = &st->d->scratch;
    if (!st->scratch_ready) {
        if (dvm_buf_reserve(sc, st->line_len) != DVM_OK)
            return NULL;
        st->scratch_ready = true;
    }
    uint8_t *dst0 = sc->data + sc->len, *d = dst0;
    memcpy(d, s, (size_t)(p - s));
    d += p - s;
    for (;;) {
        uint8_t c = *p;
        if (c == '"') {
            out->ptr = (const char *)dst0;
            out->len = (size_t)(d - dst0);
            sc->len += out->len;
            return p + 1;
        }
        if (c == '\\') {
            if (end - p < 2)
                return NULL;
            switch (p[1]) {
            case '"': *d++ = '"'; break;
            case '\\': *d++ = '\\'; break;
            case '/': *d++ = '/'; break;
            case 'b': *d++ = '\b'; break;
            case 'f': *d++ = '\f'; break;
            case 'n': *d++ = '\n'; break;
            case 'r': *d++ = '\r'; break;
            case 't': *d++ = '\t'; break;
            case 'u': {
                if (end - p < 6)
                    return NULL;
                int h0 = dvm_hex_digit(p[2]), h1 = dvm_hex_digit(p[3]), h2 = dvm_hex_digit(p[4]), h3 = dvm_hex_digit(p[5]);
                if ((h0 | h1 | h2 | h3) < 0)
                    return NULL;
                unsigned cp = (unsigned)(h0 << 12 | h1 << 8 | h2 << 4 | h3);
                if (cp >= 0xD800 && cp <= 0xDFFF)
                    return NULL; /* surrogates: leave them to jansson */
                if (cp < 0x80) {
                    *d++ = (uint8_t)cp;
                } else if (cp < 0x800) {
                    *d++ = (uint8_t)(0xC0 | cp >> 6);
                    *d++ = (uint8_t)(0x80 | (cp & 0x3F));
                } else {
                    *d++ = (uint8_t)(0xE0 | cp >> 12);
                    *d++ = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
                    *d++ = (uint8_t)(0x80 | (cp & 0x3F));
                }
                p += 4;
                break;
            }
            default: return NULL;
            }
            p += 2;
        } else if (c < 0x20) {
            return NULL; /* raw control character: invalid JSON */
        } else {
            size_t n = dvm_jscan_utf8_seq(p, (size_t)(end - p));
            if (n == 0)
                return NULL;
            memcpy(d, p, n);
            d += n;
            p += n;
        }
        size_t run = dvm_jscan_plain(p, (size_t)(end - p));
        memcpy(d, p, run);
        d += run;
        p += run;
        if (p >= end)
            return NULL;
    }
}

/* Parse a JSON string body starting after its opening quote. Without
 * escapes (the common case) *out points into the line itself: no copy.
 * Returns the position after the closing quote, or NULL when unsure. */
DVM_JSCAN_INLINE const uint8_t *fast_string(fast_state *st, const uint8_t *p, const uint8_t *end,
                                             dvm_str *out)
{
    const uint8_t *s = p;
    for (;;) {
        p += dvm_jscan_plain(p, (size_t)(end - p));
        if (p >= end)
            return NULL;
        uint8_t c = *p;
        if (c == '"') {
            out->ptr = (const char *)s;
            out->len = (size_t)(p - s);
            return p + 1;
        }
        if (c == '\\')
            return fast_string_esc(st, s, p, end, out);
        if (c < 0x20)
            return NULL; /* raw control character: invalid JSON */
        size_t n = dvm_jscan_utf8_seq(p, (size_t)(end - p));
        if (n == 0)
            return NULL;
        p += n;
    }
}

static const char k_prefix[] = "{\"type\":\"chunk\",\"id\":\"";
static const char k_data[] = ",\"data\":\"";
static const char k_seq[] = ",\"seq\":";

/* A dvm_msg with every field zero. Copied in two fixed-size halves:
 * compilers emit a few vector moves for each, where one memset of the
 * whole struct becomes a `rep stos` that is slow to start. */
static const dvm_msg k_zero_msg;
static inline void zero_msg(dvm_msg *m)
{
    const size_t h = sizeof *m / 2;
    memcpy(m, &k_zero_msg, h);
    memcpy((char *)m + h, (const char *)&k_zero_msg + h, sizeof *m - h);
}

/* The tail of a fast chunk decode: p is the first byte of the data string
 * (after `"data":"`) of a line [line, end) that starts with the chunk
 * prefix and a whole id, so at least 32 bytes come before p. Decodes the
 * data string, the optional ,"seq":N and the closing brace. */
DVM_JSCAN_INLINE dvm_err decode_tail(fast_state *st, const uint8_t *p, const uint8_t *end,
                                     dvm_str *data, bool *has_seq_out, uint64_t *seq_out)
{
    const size_t ns = sizeof k_seq - 1;
    p = fast_string(st, p, end, data);
    if (!p || p >= end)
        return DVM_ERR_AGAIN;
    bool has_seq = false;
    uint64_t seq = 0;
    if (*p == ',') {
        /* ,"seq":N} with N = 1..2^53-1, no leading zero, 1..16 digits */
        if ((size_t)(end - p) < ns + 2 || memcmp(p, k_seq, ns) != 0 || end[-1] != '}')
            return DVM_ERR_AGAIN;
        p += ns;
        size_t digits = (size_t)(end - 1 - p);
        if (digits > 16 || *p < '1' || *p > '9')
            return DVM_ERR_AGAIN;
        /* The digits end at end-1 and the line starts at least 37 bytes
         * before them, so the 16 bytes before end-1 are all in the line. */
        uint64_t lo, hi;
        if (digits <= 8) {
            if (!digits8(end - 9, digits, &lo))
                return DVM_ERR_AGAIN;
            seq = lo;
        } else {
            if (!digits8(end - 9, 8, &lo) || !digits8(end - 17, digits - 8, &hi))
                return DVM_ERR_AGAIN;
            seq = hi * 100000000u + lo;
        }
        if (seq > DVM_JSON_MAX_SAFE_INT)
            return DVM_ERR_AGAIN;
        has_seq = true;
        p = end - 1;
    }
    if (end - p != 1 || *p != '}')
        return DVM_ERR_AGAIN;
    *has_seq_out = has_seq;
    *seq_out = seq;
    return DVM_OK;
}

DVM_JSCAN_INLINE dvm_err decode_fast(dvm_msg_decoder *d, const void *line, size_t len,
                                     dvm_msg *out)
{
    const uint8_t *p = line, *end = p + len;
    const size_t np = sizeof k_prefix - 1, nd = sizeof k_data - 1;
    if (!line || len > d->max_len || len < np || memcmp(p, k_prefix, np) != 0)
        return DVM_ERR_AGAIN;
    dvm_buf_reset(&d->scratch);
    fast_state st = {d, len, false};
    dvm_str id, data;
    p = fast_string(&st, p + np, end, &id);
    if (!p || (size_t)(end - p) < nd || memcmp(p, k_data, nd) != 0)
        return DVM_ERR_AGAIN;
    bool has_seq;
    uint64_t seq;
    if (decode_tail(&st, p + nd, end, &data, &has_seq, &seq) != DVM_OK)
        return DVM_ERR_AGAIN;

    zero_msg(out);
    out->type = DVM_MSG_CHUNK;
    out->id = id;
    out->data = data;
    out->has_seq = has_seq;
    out->seq = seq;
    d->fast_hits++;
    return DVM_OK;
}

dvm_err dvm_msg_decode_chunk_tail(dvm_msg_decoder *d, const void *line, size_t len,
                                  size_t head_len, dvm_str *data, bool *has_seq,
                                  uint64_t *seq)
{
    const size_t min_head = sizeof k_prefix - 1 + 1 + sizeof k_data - 1;
    if (!line || len > d->max_len || head_len < min_head || head_len > len)
        return DVM_ERR_AGAIN;
    dvm_buf_reset(&d->scratch);
    fast_state st = {d, len, false};
    const uint8_t *p = line;
    if (decode_tail(&st, p + head_len, p + len, data, has_seq, seq) != DVM_OK)
        return DVM_ERR_AGAIN;
    d->fast_hits++;
    return DVM_OK;
}


dvm_err dvm_msg_decode_fast(dvm_msg_decoder *d, const void *line, size_t len,
                            dvm_msg *out)
{
    return decode_fast(d, line, len, out);
}

dvm_err dvm_msg_decode(dvm_msg_decoder *d, const void *line, size_t len, dvm_msg *out,
                       char *reason, size_t reason_cap)
{
    if (decode_fast(d, line, len, out) == DVM_OK) {
        if (reason && reason_cap)
            reason[0] = '\0';
        return DVM_OK;
    }
    return dvm_msg_decode_json(d, line, len, out, reason, reason_cap);
}

/* ---- encoder ------------------------------------------------------------ */

/* Extra bytes JSON.stringify writes for an ASCII byte that is not plain
 * (see wire/jscan.h): '"', '\\' and the short escapes \b \f \n \r \t take
 * one more byte, other control bytes \u00xx five more. */
static inline size_t escape_extra(uint8_t c)
{
    switch (c) {
    case '"': case '\\': case '\b': case '\f': case '\n': case '\r': case '\t': return 1;
    default: return 5;
    }
}

static const char k_digits2[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                "8081828384858687888990919293949596979899";

/* Decimal digits of v, written right-aligned into tmp[0..20); returns the
 * index of the first digit (the number is tmp[i..20)). */
static inline size_t fmt_u64(uint8_t tmp[20], uint64_t v)
{
    size_t i = 20;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        i -= 2;
        memcpy(tmp + i, k_digits2 + 2 * r, 2);
    }
    if (v >= 10) {
        i -= 2;
        memcpy(tmp + i, k_digits2 + 2 * v, 2);
    } else {
        tmp[--i] = (uint8_t)('0' + v);
    }
    return i;
}

/* Bytes JSON.stringify writes for s[0..n) including both quotes, checking
 * in the same pass that s is valid UTF-8; 0 when it is not (a valid result
 * is always >= 2). */
static size_t json_str_len(const uint8_t *s, size_t n)
{
    if (n == 0)
        return 2; /* s may be NULL: no arithmetic on it */
    if (!s)
        return 0;
    size_t len = n + 2, i = 0;
    for (;;) {
        i += dvm_jscan_plain(s + i, n - i);
        if (i >= n)
            return len;
        uint8_t c = s[i];
        if (c < 0x80) {
            len += escape_extra(c);
            i++;
        } else {
            size_t k = dvm_jscan_utf8_seq(s + i, n - i);
            if (k == 0)
                return 0;
            i += k;
        }
    }
}

/* Write the JSON string of s[0..n) whose json_str_len is `jlen` (so s is
 * valid UTF-8). Without escapes (jlen == n + 2) it is one copy. */
static inline uint8_t *put_json_str(uint8_t *d, const uint8_t *s, size_t n, size_t jlen)
{
    *d++ = '"';
    if (jlen == n + 2) {
        if (n)
            memcpy(d, s, n);
        d += n;
        *d++ = '"';
        return d;
    }
    size_t i = 0;
    for (;;) {
        size_t run = dvm_jscan_plain(s + i, n - i);
        memcpy(d, s + i, run);
        d += run;
        i += run;
        if (i >= n)
            break;
        uint8_t c = s[i++];
        if (c >= 0x80) { /* part of a (validated) UTF-8 sequence: raw */
            *d++ = c;
            continue;
        }
        d = dvm_cf_put_escape(d, c);
    }
    *d++ = '"';
    return d;
}

static inline uint8_t *put_lit(uint8_t *d, const void *s, size_t n)
{
    memcpy(d, s, n);
    return d + n;
}

/* `,"name":` */
static inline uint8_t *put_key(uint8_t *d, const char *name, size_t n)
{
    *d++ = ',';
    *d++ = '"';
    d = put_lit(d, name, n);
    *d++ = '"';
    *d++ = ':';
    return d;
}

DVM_JSCAN_INLINE dvm_err encode_chunk(dvm_buf *out, const dvm_str *idp, const dvm_str *datap,
                                      bool has_seq, uint64_t seq)
{
    const dvm_str id = *idp, data = *datap;
    /* {"type":"chunk","id":ID,"data":DATA[,"seq":N]}\n */
    uint8_t num[20];
    size_t ns = 20;
    if (has_seq) {
        if (seq < 1 || seq > DVM_JSON_MAX_SAFE_INT)
            return DVM_ERR_INVALID;
        ns = fmt_u64(num, seq);
    }
    /* One pass when the buffer already has room for the worst case (every
     * byte escaped to 6): scan, check and copy together, no reallocation.
     * Otherwise (or when the worst case would pass out->max) measure first
     * and reserve exactly, so errors and growth are those of the exact
     * path. */
    const size_t fixed = sizeof k_prefix - 2 + 2 + 8 + 2 + 2 + (has_seq ? sizeof k_seq - 1 + (20 - ns) : 0);
    if (id.len < ((size_t)1 << 24) && data.len < ((size_t)1 << 24) && (id.ptr || !id.len) &&
        (data.ptr || !data.len)) {
        size_t worst = fixed + 6 * (id.len + data.len);
        size_t max = out->max ? out->max : DVM_BUF_DEFAULT_MAX;
        if (out->cap - out->len >= worst && out->len <= max && worst <= max - out->len) {
            uint8_t *d = out->data + out->len;
            d = put_lit(d, k_prefix, sizeof k_prefix - 2);
            d = dvm_cf_put_str_1pass(d, (const uint8_t *)id.ptr, id.len);
            if (!d)
                return DVM_ERR_INVALID;
            d = put_lit(d, ",\"data\":", 8);
            d = dvm_cf_put_str_1pass(d, (const uint8_t *)data.ptr, data.len);
            if (!d)
                return DVM_ERR_INVALID;
            if (has_seq) {
                d = put_lit(d, k_seq, sizeof k_seq - 1);
                dvm_jscan_copy_short(d, num + ns, 20 - ns);
                d += 20 - ns;
            }
            *d++ = '}';
            *d++ = '\n';
            out->len = (size_t)(d - out->data);
            return DVM_OK;
        }
    }
    size_t idl = json_str_len((const uint8_t *)id.ptr, id.len);
    size_t dl = json_str_len((const uint8_t *)data.ptr, data.len);
    if (!idl || !dl)
        return DVM_ERR_INVALID;
    size_t total = fixed - 4 + idl + dl;
    dvm_err e = dvm_buf_reserve(out, total);
    if (e)
        return e;
    uint8_t *d = out->data + out->len;
    d = put_lit(d, k_prefix, sizeof k_prefix - 2); /* without the id's quote */
    d = put_json_str(d, (const uint8_t *)id.ptr, id.len, idl);
    d = put_lit(d, ",\"data\":", 8);
    d = put_json_str(d, (const uint8_t *)data.ptr, data.len, dl);
    if (has_seq) {
        d = put_lit(d, k_seq, sizeof k_seq - 1);
        d = put_lit(d, num + ns, 20 - ns);
    }
    *d++ = '}';
    *d++ = '\n';
    out->len = (size_t)(d - out->data);
    return DVM_OK;
}

dvm_err dvm_msg_encode_chunk(dvm_buf *out, dvm_str id, dvm_str data, bool has_seq,
                             uint64_t seq)
{
    return encode_chunk(out, &id, &data, has_seq, seq);
}

dvm_err dvm_msg_chunk_head(dvm_buf *out, dvm_str id)
{
    /* The chunk line with empty data and no seq, less its last 3 bytes
     * (`"}` and the newline): what encode_chunk writes before any data. */
    dvm_str none = {NULL, 0};
    dvm_err e = encode_chunk(out, &id, &none, false, 0);
    if (e)
        return e;
    out->len -= 3;
    return DVM_OK;
}

dvm_err dvm_msg_encode_chunk_with_head(dvm_buf *out, dvm_str head, dvm_str data, bool has_seq,
                                       uint64_t seq)
{
    /* head = encode_chunk's bytes up to the data string's opening quote;
     * the rest is written exactly as encode_chunk writes it. */
    const size_t min_head = sizeof k_prefix - 1 + 1 + sizeof k_data - 1;
    if (head.len < min_head || !head.ptr || head.ptr[head.len - 1] != '"')
        return DVM_ERR_INVALID;
    uint8_t num[20];
    size_t ns = 20;
    if (has_seq) {
        if (seq < 1 || seq > DVM_JSON_MAX_SAFE_INT)
            return DVM_ERR_INVALID;
        ns = fmt_u64(num, seq);
    }
    if (!data.ptr && data.len)
        return DVM_ERR_INVALID;
    const size_t hl = head.len - 1; /* put_json_str* write the quote */
    const size_t fixed = hl + 2 + 2 + (has_seq ? sizeof k_seq - 1 + (20 - ns) : 0);
    size_t max = out->max ? out->max : DVM_BUF_DEFAULT_MAX;
    uint8_t *d;
    if (head.len < ((size_t)1 << 24) && data.len < ((size_t)1 << 24) &&
        out->cap - out->len >= fixed + 6 * data.len && out->len <= max &&
        fixed + 6 * data.len <= max - out->len) {
        d = put_lit(out->data + out->len, head.ptr, hl);
        d = dvm_cf_put_str_1pass(d, (const uint8_t *)data.ptr, data.len);
        if (!d)
            return DVM_ERR_INVALID;
    } else {
        size_t dl = json_str_len((const uint8_t *)data.ptr, data.len);
        if (!dl)
            return DVM_ERR_INVALID;
        dvm_err e = dvm_buf_reserve(out, fixed - 2 + dl);
        if (e)
            return e;
        d = put_lit(out->data + out->len, head.ptr, hl);
        d = put_json_str(d, (const uint8_t *)data.ptr, data.len, dl);
    }
    if (has_seq) {
        d = put_lit(d, k_seq, sizeof k_seq - 1);
        dvm_jscan_copy_short(d, num + ns, 20 - ns);
        d += 20 - ns;
    }
    *d++ = '}';
    *d++ = '\n';
    out->len = (size_t)(d - out->data);
    return DVM_OK;
}

void dvm_chunk_tail_set(dvm_chunk_tail *t, uint64_t seq)
{
    if (seq < 1 || seq > DVM_JSON_MAX_SAFE_INT) {
        t->seq = 0;
        t->len = 0;
        return;
    }
    uint8_t num[20];
    size_t ns = fmt_u64(num, seq), nd = 20 - ns;
    memcpy(t->text, "\",\"seq\":", 8);
    memcpy(t->text + 8, num + ns, nd);
    t->text[8 + nd] = '}';
    t->text[9 + nd] = '\n';
    t->seq = seq;
    t->len = 10 + nd;
}

void dvm_chunk_tail_advance(dvm_chunk_tail *t)
{
    if (t->seq - 1 >= DVM_JSON_MAX_SAFE_INT - 1) { /* none, or the last */
        dvm_chunk_tail_set(t, t->seq ? t->seq + 1 : 0);
        return;
    }
    t->seq++;
    /* digits are text[8 .. len-2); text[7] is ':' */
    uint8_t *d = t->text + t->len - 3;
    while (*d == '9')
        *d-- = '0';
    if (*d == ':') /* all nines: one digit more */
        dvm_chunk_tail_set(t, t->seq);
    else
        (*d)++;
}

dvm_err dvm_msg_encode_chunk_with_tail(dvm_buf *out, dvm_str head, dvm_str data,
                                       const dvm_chunk_tail *t)
{
    /* head + the data string (both quotes) + t's text after its quote */
    _Static_assert(DVM_CF_MIN_HEAD == sizeof k_prefix - 1 + 1 + sizeof k_data - 1,
                   "smallest chunk head");
    const size_t tl = t->len;
    if (tl < 11 || tl > sizeof t->text || head.len < DVM_CF_MIN_HEAD || !head.ptr ||
        head.ptr[head.len - 1] != '"' || (!data.ptr && data.len))
        return DVM_ERR_INVALID;
    /* One pass when there is room for the worst case; otherwise (or when
     * the pass stopped at invalid UTF-8) measure exactly first, so errors
     * and growth are those of the exact path. */
    uint8_t *d = dvm_cf_encode_chunk(out, (const uint8_t *)head.ptr, head.len,
                                     (const uint8_t *)data.ptr, data.len, t);
    if (d) {
        out->len = (size_t)(d - out->data);
        return DVM_OK;
    }
    const size_t hl = head.len - 1; /* put_json_str writes the quote */
    size_t dl = json_str_len((const uint8_t *)data.ptr, data.len);
    if (!dl)
        return DVM_ERR_INVALID;
    dvm_err e = dvm_buf_reserve(out, hl + dl + tl - 1);
    if (e)
        return e;
    d = put_lit(out->data + out->len, head.ptr, hl);
    d = put_json_str(d, (const uint8_t *)data.ptr, data.len, dl);
    dvm_cf_copy_upto32(d, t->text + 1, tl - 1);
    out->len = (size_t)(d + tl - 1 - out->data);
    return DVM_OK;
}

bool dvm_msg_decode_chunk_line(dvm_msg_decoder *d, const void *line, size_t len, dvm_str head,
                               const dvm_chunk_tail *t, dvm_str *data)
{
    return dvm_cf_decode_chunk_line(d, line, len, (const uint8_t *)head.ptr, head.len, t, data);
}

dvm_err dvm_msg_encode(const dvm_msg *m, dvm_buf *out)
{
    if ((int)m->type <= DVM_MSG_NONE || (int)m->type >= NTYPES)
        return DVM_ERR_INVALID;
    if (m->type == DVM_MSG_CHUNK) /* the hot path; same bytes */
        return encode_chunk(out, &m->id, &m->data, m->has_seq, m->seq);
    const type_spec *ts = &specs[m->type];
    const char *tname = ts->tname;
    size_t tlen = ts->tlen;
    size_t flen[3];
    uint8_t num[3][20];
    size_t nstart[3];

    /* {"type":"NAME","id":ID ... }\n */
    size_t idl = json_str_len((const uint8_t *)m->id.ptr, m->id.len);
    if (!idl)
        return DVM_ERR_INVALID;
    size_t total = 9 + tlen + 7 + idl + 2;
    for (unsigned i = 0; i < ts->nfields; i++) {
        const field_spec *fs = &ts->f[i];
        if (fs->kind == F_STR) {
            const dvm_str *s = cstr_at(m, fs->off);
            flen[i] = json_str_len((const uint8_t *)s->ptr, s->len);
            if (!flen[i])
                return DVM_ERR_INVALID;
        } else {
            uint64_t v = *cint_at(m, fs->off);
            if (v > DVM_JSON_MAX_SAFE_INT)
                return DVM_ERR_INVALID;
            nstart[i] = fmt_u64(num[i], v);
            flen[i] = 20 - nstart[i];
        }
        total += fs->nlen + 4 + flen[i];
    }
    dvm_err e = dvm_buf_reserve(out, total);
    if (e)
        return e;

    uint8_t *d = out->data + out->len;
    d = put_lit(d, "{\"type\":\"", 9);
    d = put_lit(d, tname, tlen);
    d = put_lit(d, "\",\"id\":", 7);
    d = put_json_str(d, (const uint8_t *)m->id.ptr, m->id.len, idl);
    for (unsigned i = 0; i < ts->nfields; i++) {
        const field_spec *fs = &ts->f[i];
        d = put_key(d, fs->name, fs->nlen);
        if (fs->kind == F_STR) {
            const dvm_str *s = cstr_at(m, fs->off);
            d = put_json_str(d, (const uint8_t *)s->ptr, s->len, flen[i]);
        } else {
            d = put_lit(d, num[i] + nstart[i], flen[i]);
        }
    }
    *d++ = '}';
    *d++ = '\n';
    out->len = (size_t)(d - out->data);
    return DVM_OK;
}

static bool str_eq(dvm_str a, dvm_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool dvm_msg_equal(const dvm_msg *a, const dvm_msg *b)
{
    if (a->type != b->type || (int)a->type <= DVM_MSG_NONE || (int)a->type >= NTYPES)
        return a->type == b->type && ((int)a->type <= DVM_MSG_NONE || (int)a->type >= NTYPES);
    if (!str_eq(a->id, b->id))
        return false;
    const type_spec *ts = &specs[a->type];
    for (unsigned i = 0; i < ts->nfields; i++) {
        const field_spec *fs = &ts->f[i];
        if (fs->kind == F_STR) {
            if (!str_eq(*cstr_at(a, fs->off), *cstr_at(b, fs->off)))
                return false;
        } else if (*cint_at(a, fs->off) != *cint_at(b, fs->off)) {
            return false;
        }
    }
    if (a->type == DVM_MSG_CHUNK &&
        (a->has_seq != b->has_seq || (a->has_seq && a->seq != b->seq)))
        return false;
    return true;
}
