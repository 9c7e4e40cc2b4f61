#include "wire/codec.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "wire/utf8.h"

/* ---- the seed table ---------------------------------------------------- */

enum field_kind { F_STR, F_INT };

typedef struct field_spec {
    const char *name;
    enum field_kind kind;
    size_t off; /* offset of the dvm_str or uint64_t in dvm_msg */
} field_spec;

typedef struct type_spec {
    unsigned nfields;
    field_spec f[3];
} type_spec;

#define STR(n) {#n, F_STR, offsetof(dvm_msg, n)}
#define INT(n) {#n, F_INT, offsetof(dvm_msg, n)}

static const type_spec specs[] = {
    [DVM_MSG_NONE] = {0, {{0}}},
    [DVM_MSG_REQUEST] = {3, {INT(kind), STR(input), INT(budget)}},
    [DVM_MSG_OFFER] = {2, {INT(sats_per_chunk), INT(chunks_per_payment)}},
    [DVM_MSG_PAYMENT] = {1, {STR(token)}},
    [DVM_MSG_PAYMENT_ACK] = {1, {INT(amount)}},
    [DVM_MSG_ACCEPTED] = {0, {{0}}},
    [DVM_MSG_CHUNK] = {1, {STR(data)}}, /* + optional seq */
    [DVM_MSG_PAY_REQUIRED] = {2, {INT(earned), INT(next)}},
    [DVM_MSG_RESULT] = {2, {STR(output), INT(total_sats)}},
    [DVM_MSG_STOP] = {0, {{0}}},
    [DVM_MSG_ERROR] = {1, {STR(message)}},
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
    for (int t = 1; t < NTYPES; t++) {
        const char *tn = dvm_msg_type_name((dvm_msg_type)t);
        if (strlen(tn) == n && memcmp(tn, name, n) == 0)
            return (dvm_msg_type)t;
    }
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

__attribute__((format(printf, 3, 4))) static void set_reason(char *reason, size_t cap,
                                                              const char *fmt, ...)
{
    if (!reason || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, cap, fmt, ap);
    va_end(ap);
}

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
        set_reason(reason, reason_cap, "message too large");
        return DVM_ERR_TOO_LARGE;
    }
    d->slow_hits++;
    if (scratch_prepare(d, len) != DVM_OK) {
        set_reason(reason, reason_cap, "out of memory");
        return DVM_ERR_NOMEM;
    }

    json_error_t jerr;
    json_t *root = json_loadb(line ? (const char *)line : "", len, JSON_ALLOW_NUL, &jerr);
    if (!root) {
        char txt[36];
        const char *z = memchr(jerr.text, '\0', sizeof jerr.text);
        sanitize(txt, jerr.text, z ? (size_t)(z - jerr.text) : sizeof jerr.text);
        set_reason(reason, reason_cap, "invalid JSON: %s", txt);
        return DVM_ERR_INVALID;
    }

    dvm_err err = DVM_ERR_INVALID;
    dvm_msg m;
    memset(&m, 0, sizeof m);
    char shown[36];

    if (!json_is_object(root)) {
        set_reason(reason, reason_cap, "message is not a JSON object");
        goto done;
    }
    /* The job id first, so even a rejected message can be answered with an
     * `error` for its job. */
    json_t *jid = json_object_get(root, "id");
    bool id_ok = jid && json_is_string(jid) && take_str(d, jid, &m.id) == DVM_OK;
    json_t *jt = json_object_get(root, "type");
    if (!jt) {
        set_reason(reason, reason_cap, "missing field 'type'");
        goto done;
    }
    if (!json_is_string(jt)) {
        set_reason(reason, reason_cap, "field 'type' must be a string");
        goto done;
    }
    m.type = dvm_msg_type_from_name(json_string_value(jt), json_string_length(jt));
    if (m.type == DVM_MSG_NONE) {
        sanitize(shown, json_string_value(jt), json_string_length(jt));
        set_reason(reason, reason_cap, "unknown message type '%s'", shown);
        goto done;
    }
    const char *tname = dvm_msg_type_name(m.type);

    if (!jid) {
        set_reason(reason, reason_cap, "missing field 'id' in %s", tname);
        goto done;
    }
    if (!json_is_string(jid)) {
        set_reason(reason, reason_cap, "field 'id' in %s must be a string", tname);
        goto done;
    }
    if (!id_ok) {
        set_reason(reason, reason_cap, "field 'id' in %s is not valid UTF-8", tname);
        goto done;
    }

    const type_spec *ts = &specs[m.type];
    for (unsigned i = 0; i < ts->nfields; i++) {
        const field_spec *fs = &ts->f[i];
        json_t *v = json_object_get(root, fs->name);
        if (!v) {
            set_reason(reason, reason_cap, "missing field '%s' in %s", fs->name, tname);
            goto done;
        }
        if (fs->kind == F_STR) {
            if (!json_is_string(v)) {
                set_reason(reason, reason_cap, "field '%s' in %s must be a string", fs->name,
                           tname);
                goto done;
            }
            if (take_str(d, v, str_at(&m, fs->off)) != DVM_OK) {
                set_reason(reason, reason_cap, "field '%s' in %s is not valid UTF-8",
                           fs->name, tname);
                goto done;
            }
        } else {
            if (!json_is_integer(v) || json_integer_value(v) < 0) {
                set_reason(reason, reason_cap, "field '%s' in %s must be a non-negative integer",
                           fs->name, tname);
                goto done;
            }
            json_int_t iv = json_integer_value(v);
            if ((unsigned long long)iv > DVM_JSON_MAX_SAFE_INT) {
                set_reason(reason, reason_cap, "field '%s' in %s exceeds 2^53-1", fs->name,
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
                set_reason(reason, reason_cap,
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

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

static inline uint64_t has_zero8(uint64_t v) { return (v - ONES) & ~v & HIGHS; }

/* Nonzero when one of the 8 bytes of w is < 0x20, '"' or '\\' (the bytes
 * JSON.stringify escapes). Exact as a boolean. */
static inline uint64_t need_escape8(uint64_t w)
{
    return ((w - ONES * 0x20) & ~w & HIGHS) | has_zero8(w ^ (ONES * '"')) |
           has_zero8(w ^ (ONES * '\\'));
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Parse a JSON string body starting after its opening quote; decoded bytes
 * go to dst. Returns the position after the closing quote, or NULL when
 * unsure (the caller falls back to jansson). */
static const uint8_t *fast_string(const uint8_t *p, const uint8_t *end, uint8_t *dst,
                                  size_t *outlen)
{
    uint8_t *d = dst;
    for (;;) {
        const uint8_t *run = p;
        while (end - p >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            if (need_escape8(w) | (w & HIGHS))
                break;
            p += 8;
        }
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        if (p > run) {
            memcpy(d, run, (size_t)(p - run));
            d += p - run;
        }
        if (p >= end)
            return NULL;
        uint8_t c = *p;
        if (c == '"') {
            *outlen = (size_t)(d - dst);
            return p + 1;
        }
        if (c == '\\') {
            if (end - p < 2)
                return NULL;
            uint8_t e = p[1];
            switch (e) {
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
                int h0 = hexval(p[2]), h1 = hexval(p[3]), h2 = hexval(p[4]), h3 = hexval(p[5]);
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
            continue;
        }
        if (c < 0x20)
            return NULL; /* raw control character: invalid JSON */
        size_t n = dvm_utf8_seq_len(p, (size_t)(end - p));
        if (n == 0)
            return NULL;
        memcpy(d, p, n);
        d += n;
        p += n;
    }
}

static const char k_prefix[] = "{\"type\":\"chunk\",\"id\":\"";
static const char k_data[] = ",\"data\":\"";
static const char k_seq[] = ",\"seq\":";

dvm_err dvm_msg_decode_fast(dvm_msg_decoder *d, const void *line, size_t len,
                            dvm_msg *out)
{
    const uint8_t *p = line, *end = p + len;
    const size_t np = sizeof k_prefix - 1, nd = sizeof k_data - 1, ns = sizeof k_seq - 1;
    if (!line || len > d->max_len || len < np || memcmp(p, k_prefix, np) != 0)
        return DVM_ERR_AGAIN;
    if (scratch_prepare(d, len) != DVM_OK)
        return DVM_ERR_AGAIN;
    uint8_t *s = d->scratch.data;
    size_t idlen, datalen;
    p = fast_string(p + np, end, s, &idlen);
    if (!p || (size_t)(end - p) < nd || memcmp(p, k_data, nd) != 0)
        return DVM_ERR_AGAIN;
    p = fast_string(p + nd, end, s + idlen, &datalen);
    if (!p || p >= end)
        return DVM_ERR_AGAIN;
    bool has_seq = false;
    uint64_t seq = 0;
    if (*p == ',') {
        if ((size_t)(end - p) < ns || memcmp(p, k_seq, ns) != 0)
            return DVM_ERR_AGAIN;
        p += ns;
        if (p >= end || *p < '1' || *p > '9')
            return DVM_ERR_AGAIN;
        unsigned digits = 0;
        while (p < end && *p >= '0' && *p <= '9') {
            if (++digits > 16)
                return DVM_ERR_AGAIN;
            seq = seq * 10 + (uint64_t)(*p - '0');
            p++;
        }
        if (seq > DVM_JSON_MAX_SAFE_INT)
            return DVM_ERR_AGAIN;
        has_seq = true;
    }
    if (end - p != 1 || *p != '}')
        return DVM_ERR_AGAIN;

    memset(out, 0, sizeof *out);
    out->type = DVM_MSG_CHUNK;
    out->id.ptr = (const char *)s;
    out->id.len = idlen;
    out->data.ptr = (const char *)s + idlen;
    out->data.len = datalen;
    out->has_seq = has_seq;
    out->seq = seq;
    d->scratch.len = idlen + datalen;
    d->fast_hits++;
    return DVM_OK;
}

dvm_err dvm_msg_decode(dvm_msg_decoder *d, const void *line, size_t len, dvm_msg *out,
                       char *reason, size_t reason_cap)
{
    if (dvm_msg_decode_fast(d, line, len, out) == DVM_OK) {
        if (reason && reason_cap)
            reason[0] = '\0';
        return DVM_OK;
    }
    return dvm_msg_decode_json(d, line, len, out, reason, reason_cap);
}

/* ---- encoder ------------------------------------------------------------ */

static const char k_hex[] = "0123456789abcdef";

/* Bytes JSON.stringify writes for string s including both quotes; 0 when s
 * is not valid UTF-8 (a valid result is always >= 2). */
static size_t json_str_len(dvm_str s)
{
    const uint8_t *p = (const uint8_t *)s.ptr;
    if (s.len && !p)
        return 0;
    if (!dvm_utf8_valid(p, s.len))
        return 0;
    size_t n = s.len + 2, i = 0;
    while (i < s.len) {
        if (s.len - i >= 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (!need_escape8(w)) {
                i += 8;
                continue;
            }
        }
        uint8_t c = p[i++];
        if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' ||
            c == '\t')
            n += 1;
        else if (c < 0x20)
            n += 5;
    }
    return n;
}

static uint8_t *put_json_str(uint8_t *d, dvm_str s)
{
    *d++ = '"';
    if (s.len == 0) { /* s.ptr may be NULL: no arithmetic on it */
        *d++ = '"';
        return d;
    }
    const uint8_t *p = (const uint8_t *)s.ptr, *end = p + s.len;
    while (p < end) {
        const uint8_t *run = p;
        while (end - p >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            if (need_escape8(w))
                break;
            p += 8;
        }
        while (p < end && *p >= 0x20 && *p != '"' && *p != '\\')
            p++;
        if (p > run) {
            memcpy(d, run, (size_t)(p - run));
            d += p - run;
        }
        if (p >= end)
            break;
        uint8_t c = *p++;
        *d++ = '\\';
        switch (c) {
        case '"': *d++ = '"'; break;
        case '\\': *d++ = '\\'; break;
        case '\b': *d++ = 'b'; break;
        case '\f': *d++ = 'f'; break;
        case '\n': *d++ = 'n'; break;
        case '\r': *d++ = 'r'; break;
        case '\t': *d++ = 't'; break;
        default:
            *d++ = 'u';
            *d++ = '0';
            *d++ = '0';
            *d++ = (uint8_t)k_hex[c >> 4];
            *d++ = (uint8_t)k_hex[c & 15];
        }
    }
    *d++ = '"';
    return d;
}

static size_t u64_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

static uint8_t *put_u64(uint8_t *d, uint64_t v)
{
    size_t n = u64_len(v);
    for (size_t i = n; i > 0; i--) {
        d[i - 1] = (uint8_t)('0' + v % 10);
        v /= 10;
    }
    return d + n;
}

static uint8_t *put_lit(uint8_t *d, const char *s, size_t n)
{
    memcpy(d, s, n);
    return d + n;
}

/* `,"name":` */
static uint8_t *put_key(uint8_t *d, const char *name, size_t n)
{
    *d++ = ',';
    *d++ = '"';
    d = put_lit(d, name, n);
    *d++ = '"';
    *d++ = ':';
    return d;
}

dvm_err dvm_msg_encode(const dvm_msg *m, dvm_buf *out)
{
    if ((int)m->type <= DVM_MSG_NONE || (int)m->type >= NTYPES)
        return DVM_ERR_INVALID;
    const type_spec *ts = &specs[m->type];
    const char *tname = dvm_msg_type_name(m->type);
    size_t tlen = strlen(tname);
    size_t flen[4];

    /* {"type":"NAME","id":ID ... }\n */
    size_t idl = json_str_len(m->id);
    if (!idl)
        return DVM_ERR_INVALID;
    size_t total = 9 + tlen + 7 + idl + 2;
    for (unsigned i = 0; i < ts->nfields; i++) {
        const field_spec *fs = &ts->f[i];
        if (fs->kind == F_STR) {
            flen[i] = json_str_len(*cstr_at(m, fs->off));
            if (!flen[i])
                return DVM_ERR_INVALID;
        } else {
            uint64_t v = *cint_at(m, fs->off);
            if (v > DVM_JSON_MAX_SAFE_INT)
                return DVM_ERR_INVALID;
            flen[i] = u64_len(v);
        }
        total += strlen(fs->name) + 4 + flen[i];
    }
    bool seq = m->type == DVM_MSG_CHUNK && m->has_seq;
    if (seq) {
        if (m->seq < 1 || m->seq > DVM_JSON_MAX_SAFE_INT)
            return DVM_ERR_INVALID;
        total += 7 + u64_len(m->seq);
    }
    dvm_err e = dvm_buf_reserve(out, total);
    if (e)
        return e;

    uint8_t *d = out->data + out->len;
    d = put_lit(d, "{\"type\":\"", 9);
    d = put_lit(d, tname, tlen);
    d = put_lit(d, "\",\"id\":", 7);
    d = put_json_str(d, m->id);
    for (unsigned i = 0; i < ts->nfields; i++) {
        const field_spec *fs = &ts->f[i];
        d = put_key(d, fs->name, strlen(fs->name));
        if (fs->kind == F_STR)
            d = put_json_str(d, *cstr_at(m, fs->off));
        else
            d = put_u64(d, *cint_at(m, fs->off));
    }
    if (seq) {
        d = put_key(d, "seq", 3);
        d = put_u64(d, m->seq);
    }
    *d++ = '}';
    *d++ = '\n';
    out->len = (size_t)(d - out->data);
    return DVM_OK;
}

dvm_err dvm_msg_encode_chunk(dvm_buf *out, dvm_str id, dvm_str data, bool has_seq,
                             uint64_t seq)
{
    size_t idl = json_str_len(id), dl = json_str_len(data);
    if (!idl || !dl)
        return DVM_ERR_INVALID;
    /* {"type":"chunk","id":ID,"data":DATA[,"seq":N]}\n */
    size_t total = sizeof k_prefix - 2 + idl + 8 + dl + 2;
    if (has_seq) {
        if (seq < 1 || seq > DVM_JSON_MAX_SAFE_INT)
            return DVM_ERR_INVALID;
        total += 7 + u64_len(seq);
    }
    dvm_err e = dvm_buf_reserve(out, total);
    if (e)
        return e;
    uint8_t *d = out->data + out->len;
    d = put_lit(d, k_prefix, sizeof k_prefix - 2); /* without the id's quote */
    d = put_json_str(d, id);
    d = put_lit(d, ",\"data\":", 8);
    d = put_json_str(d, data);
    if (has_seq) {
        d = put_lit(d, k_seq, sizeof k_seq - 1);
        d = put_u64(d, seq);
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
