/* Cashu token codec (NUT-00 V3/V4, NUT-12 dleq). See cashu/token.h. */
#include "cashu/token.h"
#include "common/hex.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <sodium.h>

#define MAX_SAFE_AMOUNT 9007199254740991ULL /* 2^53 - 1 */
#define KEYSET_ID_MAX_BYTES (DVM_KEYSET_ID_MAX / 2)
#define PREFIX "cashu"
#define PREFIX_LEN 5
#define URI_PREFIX "cashu:"
#define URI_PREFIX_LEN 6
#define RAW_PREFIX "crawB"
#define RAW_PREFIX_LEN 5

/* ---------------------------------------------------------------------- */
/* reasons                                                                */

typedef struct reason_sink {
    char *buf;
    size_t len;
} reason_sink;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static dvm_err fail(reason_sink *r, dvm_err e, const char *fmt, ...)
{
    if (r && r->buf && r->len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->buf, r->len, fmt, ap);
        va_end(ap);
    }
    return e;
}

/* ---------------------------------------------------------------------- */
/* small validators                                                       */


/* Well-formed UTF-8 (RFC 3629: no overlongs, surrogates or > U+10FFFF) and
 * no NUL byte. */
static bool utf8_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i - 1 < need)
            return false;
        for (size_t k = 1; k <= need; k++) {
            uint8_t cc = s[i + k];
            if ((cc & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (cc & 0x3f);
        }
        if ((need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (need == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return false;
        i += need + 1;
    }
    return true;
}

/* A NUL-terminated string held in a char[cap]: terminated within cap, valid
 * UTF-8. Returns its length or SIZE_MAX. */
static size_t bounded_str(const char *s, size_t cap)
{
    const char *nul = memchr(s, '\0', cap);
    if (!nul)
        return SIZE_MAX;
    size_t n = (size_t)(nul - s);
    return utf8_ok((const uint8_t *)s, n) ? n : SIZE_MAX;
}

static bool keyset_id_ok(const char *id, size_t n)
{
    if (n < 2 || n > DVM_KEYSET_ID_MAX || n % 2)
        return false;
    for (size_t i = 0; i < n; i++)
        if (dvm_hex_digit((unsigned char)id[i]) < 0)
            return false;
    return true;
}

/* The checks an in-memory Proof must pass to be encoded (and that every
 * decoded Proof passes). */
static dvm_err check_proof(const dvm_proof *p, size_t idx, reason_sink *r)
{
    if (p->amount == 0 || p->amount > MAX_SAFE_AMOUNT)
        return fail(r, DVM_ERR_INVALID, "proof %zu: amount must be in 1..2^53-1", idx);
    size_t idn = bounded_str(p->id, sizeof p->id);
    if (idn == SIZE_MAX || !keyset_id_ok(p->id, idn))
        return fail(r, DVM_ERR_INVALID, "proof %zu: keyset id must be 2..%d hex digits, even", idx,
                    DVM_KEYSET_ID_MAX);
    for (size_t i = 0; i < idn; i++)
        if (p->id[i] >= 'A' && p->id[i] <= 'F')
            return fail(r, DVM_ERR_INVALID, "proof %zu: keyset id must be lowercase hex", idx);
    if (p->secret_len == 0)
        return fail(r, DVM_ERR_INVALID, "proof %zu: empty secret", idx);
    if (p->secret_len > DVM_SECRET_MAX)
        return fail(r, DVM_ERR_TOO_LARGE, "proof %zu: secret over %d bytes", idx, DVM_SECRET_MAX);
    if (p->secret[p->secret_len] != '\0' || !utf8_ok((const uint8_t *)p->secret, p->secret_len))
        return fail(r, DVM_ERR_INVALID, "proof %zu: secret is not NUL-free UTF-8 of secret_len bytes",
                    idx);
    if (p->C[0] != 0x02 && p->C[0] != 0x03)
        return fail(r, DVM_ERR_INVALID, "proof %zu: C is not a compressed point (02/03 prefix)", idx);
    return DVM_OK;
}

static dvm_err check_token(const dvm_token *t, reason_sink *r)
{
    size_t n = bounded_str(t->mint, sizeof t->mint);
    if (n == SIZE_MAX)
        return fail(r, DVM_ERR_INVALID, "mint is not NUL-terminated UTF-8");
    if (n == 0)
        return fail(r, DVM_ERR_INVALID, "empty mint url");
    n = bounded_str(t->unit, sizeof t->unit);
    if (n == SIZE_MAX)
        return fail(r, DVM_ERR_INVALID, "unit is not NUL-terminated UTF-8");
    if (n == 0)
        return fail(r, DVM_ERR_INVALID, "empty unit");
    if (t->has_memo && bounded_str(t->memo, sizeof t->memo) == SIZE_MAX)
        return fail(r, DVM_ERR_INVALID, "memo is not NUL-terminated UTF-8");
    if (t->n_proofs == 0 || !t->proofs)
        return fail(r, DVM_ERR_INVALID, "token has no proofs");
    if (t->n_proofs > DVM_TOKEN_MAX_PROOFS)
        return fail(r, DVM_ERR_TOO_LARGE, "token has %zu proofs, over %d", t->n_proofs,
                    DVM_TOKEN_MAX_PROOFS);
    for (size_t i = 0; i < t->n_proofs; i++) {
        dvm_err e = check_proof(&t->proofs[i], i, r);
        if (e)
            return e;
    }
    uint64_t total;
    if (dvm_token_amount(t, &total) != DVM_OK)
        return fail(r, DVM_ERR_INVALID, "token amount over 2^53-1");
    return DVM_OK;
}

/* Copy a decoded UTF-8 string field into dst[cap] (cap includes the NUL). */
static dvm_err put_str(char *dst, size_t cap, const uint8_t *s, size_t n, const char *what,
                       reason_sink *r)
{
    if (n >= cap)
        return fail(r, DVM_ERR_TOO_LARGE, "%s: over %zu bytes", what, cap - 1);
    if (!utf8_ok(s, n))
        return fail(r, DVM_ERR_INVALID, "%s: not UTF-8 or contains NUL", what);
    memcpy(dst, s, n);
    dst[n] = '\0';
    return DVM_OK;
}

/* ---------------------------------------------------------------------- */
/* base64                                                                 */

/* Decode base64url (or standard) text, padding optional, into a new malloc'd
 * buffer. */
static dvm_err b64_decode(const char *s, size_t n, uint8_t **out, size_t *out_len, reason_sink *r)
{
    size_t pad = 0;
    while (n > 0 && s[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    if (n == 0)
        return fail(r, DVM_ERR_INVALID, "empty token payload");
    if ((pad && (n + pad) % 4 != 0) || n % 4 == 1)
        return fail(r, DVM_ERR_INVALID, "bad base64: wrong length or padding");
    char *tmp = malloc(n);
    uint8_t *bin = malloc(n / 4 * 3 + 3);
    if (!tmp || !bin) {
        free(tmp);
        free(bin);
        return fail(r, DVM_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        tmp[i] = s[i] == '+' ? '-' : s[i] == '/' ? '_' : s[i];
    size_t bl = 0;
    const char *end = NULL;
    int rc = sodium_base642bin(bin, n / 4 * 3 + 3, tmp, n, NULL, &bl, &end,
                               sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    bool whole = end == tmp + n;
    free(tmp);
    if (rc != 0 || !whole) {
        free(bin);
        return fail(r, DVM_ERR_INVALID, "bad base64");
    }
    *out = bin;
    *out_len = bl;
    return DVM_OK;
}

static dvm_err b64_append(const uint8_t *bin, size_t n, dvm_buf *out, size_t start_len)
{
    size_t enc = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    if (enc - 1 > DVM_TOKEN_MAX_BYTES - (out->len - start_len))
        return DVM_ERR_TOO_LARGE;
    dvm_err e = dvm_buf_reserve(out, enc);
    if (e)
        return e;
    sodium_bin2base64((char *)out->data + out->len, enc, bin, n,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    out->len += enc - 1; /* drop the NUL */
    return DVM_OK;
}

/* ---------------------------------------------------------------------- */
/* V3: JSON                                                               */

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "value";
}

static dvm_err json_hex_field(const json_t *obj, const char *key, uint8_t *out, size_t n,
                              bool required, bool *present, const char *what, reason_sink *r)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (present)
            *present = false;
        if (required)
            return fail(r, DVM_ERR_INVALID, "missing \"%s%s\"", what, key);
        return DVM_OK;
    }
    if (!json_is_string(v))
        return fail(r, DVM_ERR_INVALID, "\"%s%s\" must be a hex string, got %s", what, key,
                    json_kind(v));
    if (!dvm_hex_decode(json_string_value(v), json_string_length(v), out, n))
        return fail(r, DVM_ERR_INVALID, "\"%s%s\" must be %zu hex digits", what, key, 2 * n);
    if (present)
        *present = true;
    return DVM_OK;
}

dvm_err dvm_token_proof_from_json(const json_t *obj, dvm_proof *p, char *reason, size_t reason_len)
{
    reason_sink rs = {reason, reason_len}, *r = &rs;
    memset(p, 0, sizeof *p);
    if (!json_is_object(obj))
        return fail(r, DVM_ERR_INVALID, "proof must be an object, got %s", json_kind(obj));

    const json_t *a = json_object_get(obj, "amount");
    if (!a)
        return fail(r, DVM_ERR_INVALID, "missing \"amount\"");
    if (!json_is_integer(a))
        return fail(r, DVM_ERR_INVALID, "amount must be an integer, got %s", json_kind(a));
    json_int_t av = json_integer_value(a);
    if (av <= 0 || (unsigned long long)av > MAX_SAFE_AMOUNT)
        return fail(r, DVM_ERR_INVALID, "amount %lld not in 1..2^53-1", (long long)av);
    p->amount = (uint64_t)av;

    const json_t *id = json_object_get(obj, "id");
    if (!id)
        return fail(r, DVM_ERR_INVALID, "missing \"id\"");
    if (!json_is_string(id))
        return fail(r, DVM_ERR_INVALID, "id must be a string, got %s", json_kind(id));
    size_t idn = json_string_length(id);
    const char *ids = json_string_value(id);
    if (idn > DVM_KEYSET_ID_MAX)
        return fail(r, DVM_ERR_TOO_LARGE, "keyset id over %d characters", DVM_KEYSET_ID_MAX);
    if (!keyset_id_ok(ids, idn))
        return fail(r, DVM_ERR_INVALID, "keyset id must be an even number of hex digits");
    for (size_t i = 0; i < idn; i++)
        p->id[i] = (char)(ids[i] >= 'A' && ids[i] <= 'F' ? ids[i] - 'A' + 'a' : ids[i]);
    p->id[idn] = '\0';

    const json_t *sec = json_object_get(obj, "secret");
    if (!sec)
        return fail(r, DVM_ERR_INVALID, "missing \"secret\"");
    if (!json_is_string(sec))
        return fail(r, DVM_ERR_INVALID, "secret must be a string, got %s", json_kind(sec));
    size_t sn = json_string_length(sec);
    if (sn == 0)
        return fail(r, DVM_ERR_INVALID, "empty secret");
    dvm_err e = put_str(p->secret, sizeof p->secret, (const uint8_t *)json_string_value(sec), sn,
                        "secret", r);
    if (e)
        return e;
    p->secret_len = sn;

    e = json_hex_field(obj, "C", p->C, DVM_POINT_BYTES, true, NULL, "", r);
    if (e)
        return e;
    if (p->C[0] != 0x02 && p->C[0] != 0x03)
        return fail(r, DVM_ERR_INVALID, "C is not a compressed point (02/03 prefix)");

    const json_t *d = json_object_get(obj, "dleq");
    if (d && !json_is_null(d)) {
        if (!json_is_object(d))
            return fail(r, DVM_ERR_INVALID, "dleq must be an object, got %s", json_kind(d));
        if ((e = json_hex_field(d, "e", p->dleq.e, DVM_SCALAR_BYTES, true, NULL, "dleq.", r)) ||
            (e = json_hex_field(d, "s", p->dleq.s, DVM_SCALAR_BYTES, true, NULL, "dleq.", r)) ||
            (e = json_hex_field(d, "r", p->dleq.r, DVM_SCALAR_BYTES, false, &p->dleq.has_r,
                                "dleq.", r)))
            return e;
        p->has_dleq = true;
    }
    return DVM_OK;
}

static json_t *hex_json(const uint8_t *b, size_t n)
{
    char hex[2 * DVM_POINT_BYTES + 1];
    dvm_hex_encode(b, n, hex);
    return json_string(hex);
}

json_t *dvm_token_proof_to_json(const dvm_proof *p)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = json_object_set_new(o, "amount", json_integer((json_int_t)p->amount));
    bad |= json_object_set_new(o, "id", json_string(p->id));
    bad |= json_object_set_new(o, "secret", json_stringn(p->secret, p->secret_len));
    bad |= json_object_set_new(o, "C", hex_json(p->C, DVM_POINT_BYTES));
    if (p->has_dleq) {
        json_t *d = json_object();
        bad |= json_object_set_new(o, "dleq", d);
        if (d) {
            bad |= json_object_set_new(d, "e", hex_json(p->dleq.e, DVM_SCALAR_BYTES));
            bad |= json_object_set_new(d, "s", hex_json(p->dleq.s, DVM_SCALAR_BYTES));
            if (p->dleq.has_r)
                bad |= json_object_set_new(d, "r", hex_json(p->dleq.r, DVM_SCALAR_BYTES));
        }
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static dvm_err optional_json_str(const json_t *root, const char *key, char *dst, size_t cap,
                                 bool *present, reason_sink *r)
{
    const json_t *v = json_object_get(root, key);
    *present = false;
    if (!v || json_is_null(v))
        return DVM_OK;
    if (!json_is_string(v))
        return fail(r, DVM_ERR_INVALID, "\"%s\" must be a string, got %s", key, json_kind(v));
    dvm_err e = put_str(dst, cap, (const uint8_t *)json_string_value(v), json_string_length(v),
                        key, r);
    if (e)
        return e;
    *present = true;
    return DVM_OK;
}

static dvm_err decode_v3(const uint8_t *js, size_t n, dvm_token *t, reason_sink *r)
{
    json_error_t jerr;
    json_t *root = json_loadb((const char *)js, n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return fail(r, DVM_ERR_INVALID, "bad V3 JSON: %s", jerr.text);
    dvm_err e = DVM_OK;
    if (!json_is_object(root)) {
        e = fail(r, DVM_ERR_INVALID, "V3 token must be a JSON object, got %s", json_kind(root));
        goto out;
    }
    const json_t *entries = json_object_get(root, "token");
    if (!entries) {
        e = fail(r, DVM_ERR_INVALID, "V3 token: missing \"token\"");
        goto out;
    }
    if (!json_is_array(entries) || json_array_size(entries) == 0) {
        e = fail(r, DVM_ERR_INVALID, "V3 token: \"token\" must be a non-empty array");
        goto out;
    }
    /* First pass: shapes, mint, proof count. */
    size_t total = 0;
    const char *mint0 = NULL;
    size_t mint0_len = 0;
    for (size_t i = 0; i < json_array_size(entries); i++) {
        const json_t *ent = json_array_get(entries, i);
        if (!json_is_object(ent)) {
            e = fail(r, DVM_ERR_INVALID, "V3 token entry %zu must be an object", i);
            goto out;
        }
        const json_t *m = json_object_get(ent, "mint"), *ps = json_object_get(ent, "proofs");
        if (!m || !json_is_string(m) || json_string_length(m) == 0) {
            e = fail(r, DVM_ERR_INVALID, "V3 token entry %zu: \"mint\" must be a non-empty string", i);
            goto out;
        }
        if (!ps || !json_is_array(ps) || json_array_size(ps) == 0) {
            e = fail(r, DVM_ERR_INVALID, "V3 token entry %zu: \"proofs\" must be a non-empty array",
                     i);
            goto out;
        }
        if (!mint0) {
            mint0 = json_string_value(m);
            mint0_len = json_string_length(m);
        } else if (json_string_length(m) != mint0_len ||
                   memcmp(json_string_value(m), mint0, mint0_len) != 0) {
            e = fail(r, DVM_ERR_UNSUPPORTED, "V3 token names several mints; only one is supported");
            goto out;
        }
        if (json_array_size(ps) > DVM_TOKEN_MAX_PROOFS - total) {
            e = fail(r, DVM_ERR_TOO_LARGE, "token has more than %d proofs", DVM_TOKEN_MAX_PROOFS);
            goto out;
        }
        total += json_array_size(ps);
    }
    if ((e = put_str(t->mint, sizeof t->mint, (const uint8_t *)mint0, mint0_len, "mint", r)))
        goto out;
    if ((e = optional_json_str(root, "unit", t->unit, sizeof t->unit, &t->has_unit, r)))
        goto out;
    if (!t->has_unit)
        strcpy(t->unit, "sat");
    else if (t->unit[0] == '\0') {
        e = fail(r, DVM_ERR_INVALID, "empty unit");
        goto out;
    }
    if ((e = optional_json_str(root, "memo", t->memo, sizeof t->memo, &t->has_memo, r)))
        goto out;

    t->proofs = calloc(total, sizeof *t->proofs);
    if (!t->proofs) {
        e = fail(r, DVM_ERR_NOMEM, "out of memory");
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < json_array_size(entries); i++) {
        const json_t *ps = json_object_get(json_array_get(entries, i), "proofs");
        for (size_t j = 0; j < json_array_size(ps); j++, k++) {
            char why[160];
            e = dvm_token_proof_from_json(json_array_get(ps, j), &t->proofs[k], why, sizeof why);
            if (e) {
                e = fail(r, e, "proof %zu: %s", k, why);
                goto out;
            }
        }
    }
    t->n_proofs = total;
    t->version = 3;
out:
    json_decref(root);
    return e;
}

static dvm_err encode_v3(const dvm_token *t, dvm_buf *out, size_t start)
{
    dvm_err e = DVM_ERR_NOMEM;
    json_t *root = json_object(), *entries = json_array(), *ent = json_object(),
           *proofs = json_array();
    char *text = NULL;
    if (!root || !entries || !ent || !proofs) {
        json_decref(root);
        json_decref(entries);
        json_decref(ent);
        json_decref(proofs);
        return DVM_ERR_NOMEM;
    }
    int bad = json_object_set_new(root, "token", entries);
    bad |= json_array_append_new(entries, ent);
    bad |= json_object_set_new(ent, "mint", json_string(t->mint));
    bad |= json_object_set_new(ent, "proofs", proofs);
    for (size_t i = 0; i < t->n_proofs && !bad; i++)
        bad |= json_array_append_new(proofs, dvm_token_proof_to_json(&t->proofs[i]));
    if (t->has_unit || strcmp(t->unit, "sat") != 0)
        bad |= json_object_set_new(root, "unit", json_string(t->unit));
    if (t->has_memo)
        bad |= json_object_set_new(root, "memo", json_string(t->memo));
    if (bad)
        goto done;
    text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text)
        goto done;
    if ((e = dvm_buf_append(out, "cashuA", 6)))
        goto done;
    e = b64_append((const uint8_t *)text, strlen(text), out, start);
done:
    free(text);
    json_decref(root);
    return e;
}

/* ---------------------------------------------------------------------- */
/* V4: CBOR                                                               */

/* Structural pre-scan with libcbor's streaming decoder, before cbor_load
 * builds a tree: no tags, nesting at most DVM_TOKEN_CBOR_MAX_DEPTH, declared
 * array/map sizes no larger than the bytes left (so cbor_load never
 * allocates for items that cannot be there), exactly one top-level item
 * spanning the whole input. */
enum scan_ev {
    EV_NONE,
    EV_SCALAR,
    EV_DEF_OPEN,   /* definite array/map with n slots */
    EV_INDEF_OPEN, /* indefinite array, map or string */
    EV_BREAK,
    EV_TAG,
};

struct scan_ctx {
    enum scan_ev ev;
    uint64_t slots;
    bool overflow;
};

static void sc_u8(void *c, uint8_t v) { (void)v; ((struct scan_ctx *)c)->ev = EV_SCALAR; }
static void sc_u16(void *c, uint16_t v) { (void)v; ((struct scan_ctx *)c)->ev = EV_SCALAR; }
static void sc_u32(void *c, uint32_t v) { (void)v; ((struct scan_ctx *)c)->ev = EV_SCALAR; }
static void sc_u64(void *c, uint64_t v) { (void)v; ((struct scan_ctx *)c)->ev = EV_SCALAR; }
static void sc_simple(void *c) { ((struct scan_ctx *)c)->ev = EV_SCALAR; }
static void sc_str(void *c, cbor_data d, size_t n)
{
    (void)d;
    (void)n;
    ((struct scan_ctx *)c)->ev = EV_SCALAR;
}
static void sc_flt(void *c, float v) { (void)v; ((struct scan_ctx *)c)->ev = EV_SCALAR; }
static void sc_dbl(void *c, double v) { (void)v; ((struct scan_ctx *)c)->ev = EV_SCALAR; }
static void sc_bool(void *c, bool v) { (void)v; ((struct scan_ctx *)c)->ev = EV_SCALAR; }
static void sc_indef(void *c) { ((struct scan_ctx *)c)->ev = EV_INDEF_OPEN; }
static void sc_break(void *c) { ((struct scan_ctx *)c)->ev = EV_BREAK; }
static void sc_tag(void *c, uint64_t v) { (void)v; ((struct scan_ctx *)c)->ev = EV_TAG; }
static void sc_array(void *c, size_t n)
{
    struct scan_ctx *s = c;
    s->ev = EV_DEF_OPEN;
    s->slots = n;
}
static void sc_map(void *c, size_t n)
{
    struct scan_ctx *s = c;
    s->ev = EV_DEF_OPEN;
    s->overflow = n > SIZE_MAX / 2;
    s->slots = (uint64_t)n * 2;
}

static const struct cbor_callbacks scan_callbacks = {
    .uint8 = sc_u8,
    .uint16 = sc_u16,
    .uint32 = sc_u32,
    .uint64 = sc_u64,
    .negint8 = sc_u8,
    .negint16 = sc_u16,
    .negint32 = sc_u32,
    .negint64 = sc_u64,
    .byte_string_start = sc_indef,
    .byte_string = sc_str,
    .string = sc_str,
    .string_start = sc_indef,
    .indef_array_start = sc_indef,
    .array_start = sc_array,
    .indef_map_start = sc_indef,
    .map_start = sc_map,
    .tag = sc_tag,
    .float2 = sc_flt,
    .float4 = sc_flt,
    .float8 = sc_dbl,
    .undefined = sc_simple,
    .null = sc_simple,
    .boolean = sc_bool,
    .indef_break = sc_break,
};

static dvm_err cbor_prescan(const uint8_t *b, size_t n, reason_sink *r)
{
    struct frame {
        uint64_t left;
        bool indef;
    } st[DVM_TOKEN_CBOR_MAX_DEPTH];
    size_t depth = 0, off = 0;
    bool done = false;
    while (!done) {
        if (off >= n)
            return fail(r, DVM_ERR_INVALID, "bad V4 CBOR: truncated");
        struct scan_ctx c = {EV_NONE, 0, false};
        struct cbor_decoder_result res = cbor_stream_decode(b + off, n - off, &scan_callbacks, &c);
        if (res.status == CBOR_DECODER_NEDATA)
            return fail(r, DVM_ERR_INVALID, "bad V4 CBOR: truncated");
        if (res.status != CBOR_DECODER_FINISHED || res.read == 0 || c.ev == EV_NONE)
            return fail(r, DVM_ERR_INVALID, "bad V4 CBOR: malformed item at byte %zu", off);
        off += res.read;
        bool completed = false;
        switch (c.ev) {
        case EV_TAG:
            return fail(r, DVM_ERR_INVALID, "bad V4 CBOR: tags are not accepted");
        case EV_SCALAR:
            completed = true;
            break;
        case EV_DEF_OPEN:
            if (c.overflow || c.slots > n - off)
                return fail(r, DVM_ERR_INVALID, "bad V4 CBOR: collection larger than the input");
            if (c.slots == 0) {
                completed = true;
                break;
            }
            /* fall through */
        case EV_INDEF_OPEN:
            if (depth == DVM_TOKEN_CBOR_MAX_DEPTH)
                return fail(r, DVM_ERR_INVALID, "bad V4 CBOR: nested deeper than %d",
                            DVM_TOKEN_CBOR_MAX_DEPTH);
            st[depth].indef = c.ev == EV_INDEF_OPEN;
            st[depth].left = c.slots;
            depth++;
            break;
        case EV_BREAK:
            if (depth == 0 || !st[depth - 1].indef)
                return fail(r, DVM_ERR_INVALID, "bad V4 CBOR: unexpected break");
            depth--;
            completed = true;
            break;
        case EV_NONE:
            break;
        }
        while (completed) {
            completed = false;
            if (depth == 0) {
                done = true;
            } else if (!st[depth - 1].indef && --st[depth - 1].left == 0) {
                depth--;
                completed = true;
            }
        }
    }
    if (off != n)
        return fail(r, DVM_ERR_INVALID, "bad V4 CBOR: %zu trailing bytes", n - off);
    return DVM_OK;
}

/* Text (definite or chunked) into dst[cap]; cap includes the NUL. */
static dvm_err cbor_text(const cbor_item_t *it, char *dst, size_t cap, size_t *len,
                         const char *what, size_t idx, reason_sink *r)
{
    if (!cbor_isa_string(it))
        return fail(r, DVM_ERR_INVALID, "%s %zu: must be a text string", what, idx);
    size_t n = 0;
    if (cbor_string_is_definite(it)) {
        n = cbor_string_length(it);
        if (n >= cap)
            return fail(r, DVM_ERR_TOO_LARGE, "%s %zu: over %zu bytes", what, idx, cap - 1);
        memcpy(dst, cbor_string_handle(it), n);
    } else {
        cbor_item_t **ch = cbor_string_chunks_handle(it);
        for (size_t i = 0; i < cbor_string_chunk_count(it); i++) {
            size_t cn = cbor_string_length(ch[i]);
            if (cn >= cap - n)
                return fail(r, DVM_ERR_TOO_LARGE, "%s %zu: over %zu bytes", what, idx, cap - 1);
            memcpy(dst + n, cbor_string_handle(ch[i]), cn);
            n += cn;
        }
    }
    dst[n] = '\0';
    if (!utf8_ok((const uint8_t *)dst, n))
        return fail(r, DVM_ERR_INVALID, "%s %zu: not UTF-8 or contains NUL", what, idx);
    if (len)
        *len = n;
    return DVM_OK;
}

/* Byte string (definite or chunked) of lo..hi bytes into dst. */
static dvm_err cbor_bytes(const cbor_item_t *it, uint8_t *dst, size_t lo, size_t hi, size_t *len,
                          const char *what, size_t idx, reason_sink *r)
{
    if (!cbor_isa_bytestring(it))
        return fail(r, DVM_ERR_INVALID, "%s %zu: must be a byte string", what, idx);
    size_t n = 0;
    if (cbor_bytestring_is_definite(it)) {
        n = cbor_bytestring_length(it);
        if (n < lo || n > hi)
            goto bad_len;
        memcpy(dst, cbor_bytestring_handle(it), n);
    } else {
        cbor_item_t **ch = cbor_bytestring_chunks_handle(it);
        for (size_t i = 0; i < cbor_bytestring_chunk_count(it); i++) {
            size_t cn = cbor_bytestring_length(ch[i]);
            if (cn > hi - n)
                goto bad_len;
            memcpy(dst + n, cbor_bytestring_handle(ch[i]), cn);
            n += cn;
        }
        if (n < lo)
            goto bad_len;
    }
    if (len)
        *len = n;
    return DVM_OK;
bad_len:
    if (lo == hi)
        return fail(r, DVM_ERR_INVALID, "%s %zu: must be %zu bytes", what, idx, lo);
    return fail(r, DVM_ERR_INVALID, "%s %zu: must be %zu..%zu bytes", what, idx, lo, hi);
}

/* The value of a single-character text key; 0 for any other key. */
static char cbor_key(const cbor_item_t *k)
{
    if (!cbor_isa_string(k) || !cbor_string_is_definite(k) || cbor_string_length(k) != 1)
        return 0;
    return (char)cbor_string_handle(k)[0];
}

/* Look up the one-character keys listed in `keys` in map m: vals[i] is the
 * value of keys[i] or NULL (CBOR null counts as absent). Rejects a
 * duplicate listed key; other keys are ignored. */
static dvm_err cbor_fields(const cbor_item_t *m, const char *keys, const cbor_item_t **vals,
                           const char *what, size_t idx, reason_sink *r)
{
    if (!cbor_isa_map(m))
        return fail(r, DVM_ERR_INVALID, "%s %zu: must be a map", what, idx);
    size_t nk = strlen(keys);
    bool seen[8] = {false};
    for (size_t i = 0; i < nk; i++)
        vals[i] = NULL;
    struct cbor_pair *pairs = cbor_map_handle(m);
    for (size_t i = 0; i < cbor_map_size(m); i++) {
        char k = cbor_key(pairs[i].key);
        const char *hit = k ? strchr(keys, k) : NULL;
        if (!hit)
            continue;
        size_t j = (size_t)(hit - keys);
        if (seen[j])
            return fail(r, DVM_ERR_INVALID, "%s %zu: duplicate key \"%c\"", what, idx, k);
        seen[j] = true;
        const cbor_item_t *v = pairs[i].value;
        /* (cbor_is_null asserts on floats: check the width first) */
        if (!(cbor_isa_float_ctrl(v) && cbor_float_ctrl_is_ctrl(v) && cbor_is_null(v)))
            vals[j] = v;
    }
    return DVM_OK;
}

static dvm_err cbor_proof(const cbor_item_t *pm, const char *id, dvm_proof *p, size_t idx,
                          reason_sink *r)
{
    const cbor_item_t *v[4]; /* a, s, c, d */
    dvm_err e = cbor_fields(pm, "ascd", v, "proof", idx, r);
    if (e)
        return e;
    if (!v[0] || !v[1] || !v[2])
        return fail(r, DVM_ERR_INVALID, "proof %zu: missing \"%s\"", idx,
                    !v[0] ? "a" : !v[1] ? "s" : "c");
    if (cbor_isa_negint(v[0]))
        return fail(r, DVM_ERR_INVALID, "proof %zu: negative amount", idx);
    if (!cbor_isa_uint(v[0]))
        return fail(r, DVM_ERR_INVALID, "proof %zu: amount must be an unsigned integer", idx);
    uint64_t a = cbor_get_int(v[0]);
    if (a == 0 || a > MAX_SAFE_AMOUNT)
        return fail(r, DVM_ERR_INVALID, "proof %zu: amount not in 1..2^53-1", idx);
    p->amount = a;
    strcpy(p->id, id);
    if ((e = cbor_text(v[1], p->secret, sizeof p->secret, &p->secret_len, "proof secret", idx, r)))
        return e;
    if (p->secret_len == 0)
        return fail(r, DVM_ERR_INVALID, "proof %zu: empty secret", idx);
    if ((e = cbor_bytes(v[2], p->C, DVM_POINT_BYTES, DVM_POINT_BYTES, NULL, "proof C", idx, r)))
        return e;
    if (p->C[0] != 0x02 && p->C[0] != 0x03)
        return fail(r, DVM_ERR_INVALID, "proof %zu: C is not a compressed point (02/03 prefix)",
                    idx);
    if (v[3]) {
        const cbor_item_t *d[3]; /* e, s, r */
        if ((e = cbor_fields(v[3], "esr", d, "proof dleq", idx, r)))
            return e;
        if (!d[0] || !d[1])
            return fail(r, DVM_ERR_INVALID, "proof dleq %zu: missing \"%s\"", idx,
                        !d[0] ? "e" : "s");
        if ((e = cbor_bytes(d[0], p->dleq.e, 32, 32, NULL, "proof dleq e", idx, r)) ||
            (e = cbor_bytes(d[1], p->dleq.s, 32, 32, NULL, "proof dleq s", idx, r)))
            return e;
        if (d[2]) {
            if ((e = cbor_bytes(d[2], p->dleq.r, 32, 32, NULL, "proof dleq r", idx, r)))
                return e;
            p->dleq.has_r = true;
        }
        p->has_dleq = true;
    }
    return DVM_OK;
}

static dvm_err decode_cbor(const uint8_t *b, size_t n, dvm_token *t, reason_sink *r)
{
    dvm_err e = cbor_prescan(b, n, r);
    if (e)
        return e;
    struct cbor_load_result lr;
    cbor_item_t *root = cbor_load(b, n, &lr);
    if (!root) {
        if (lr.error.code == CBOR_ERR_MEMERROR)
            return fail(r, DVM_ERR_NOMEM, "out of memory");
        return fail(r, DVM_ERR_INVALID, "bad V4 CBOR (libcbor error %d at byte %zu)",
                    (int)lr.error.code, lr.error.position);
    }
    if (lr.read != n) {
        e = fail(r, DVM_ERR_INVALID, "bad V4 CBOR: trailing bytes");
        goto out;
    }
    const cbor_item_t *f[4]; /* t, d, m, u */
    if ((e = cbor_fields(root, "tdmu", f, "V4 token", 0, r)))
        goto out;
    if (!f[2] || !f[3] || !f[0]) {
        e = fail(r, DVM_ERR_INVALID, "V4 token: missing \"%s\"", !f[2] ? "m" : !f[3] ? "u" : "t");
        goto out;
    }
    size_t len;
    if ((e = cbor_text(f[2], t->mint, sizeof t->mint, &len, "mint", 0, r)))
        goto out;
    if (len == 0) {
        e = fail(r, DVM_ERR_INVALID, "empty mint url");
        goto out;
    }
    if ((e = cbor_text(f[3], t->unit, sizeof t->unit, &len, "unit", 0, r)))
        goto out;
    if (len == 0) {
        e = fail(r, DVM_ERR_INVALID, "empty unit");
        goto out;
    }
    t->has_unit = true;
    if (f[1]) {
        if ((e = cbor_text(f[1], t->memo, sizeof t->memo, NULL, "memo", 0, r)))
            goto out;
        t->has_memo = true;
    }
    if (!cbor_isa_array(f[0]) || cbor_array_size(f[0]) == 0) {
        e = fail(r, DVM_ERR_INVALID, "V4 token: \"t\" must be a non-empty array");
        goto out;
    }
    /* First pass: shapes and proof count. */
    cbor_item_t **ents = cbor_array_handle(f[0]);
    size_t nents = cbor_array_size(f[0]), total = 0;
    for (size_t i = 0; i < nents; i++) {
        const cbor_item_t *ev[2]; /* i, p */
        if ((e = cbor_fields(ents[i], "ip", ev, "keyset entry", i, r)))
            goto out;
        if (!ev[0] || !ev[1]) {
            e = fail(r, DVM_ERR_INVALID, "keyset entry %zu: missing \"%s\"", i,
                     !ev[0] ? "i" : "p");
            goto out;
        }
        if (!cbor_isa_array(ev[1]) || cbor_array_size(ev[1]) == 0) {
            e = fail(r, DVM_ERR_INVALID, "keyset entry %zu: \"p\" must be a non-empty array", i);
            goto out;
        }
        if (cbor_array_size(ev[1]) > DVM_TOKEN_MAX_PROOFS - total) {
            e = fail(r, DVM_ERR_TOO_LARGE, "token has more than %d proofs", DVM_TOKEN_MAX_PROOFS);
            goto out;
        }
        total += cbor_array_size(ev[1]);
    }
    t->proofs = calloc(total, sizeof *t->proofs);
    if (!t->proofs) {
        e = fail(r, DVM_ERR_NOMEM, "out of memory");
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < nents; i++) {
        const cbor_item_t *ev[2];
        cbor_fields(ents[i], "ip", ev, "keyset entry", i, r); /* checked above */
        uint8_t idb[KEYSET_ID_MAX_BYTES];
        size_t idn;
        if ((e = cbor_bytes(ev[0], idb, 1, KEYSET_ID_MAX_BYTES, &idn, "keyset id", i, r)))
            goto out;
        char id[DVM_KEYSET_ID_MAX + 1];
        dvm_hex_encode(idb, idn, id);
        cbor_item_t **ps = cbor_array_handle(ev[1]);
        for (size_t j = 0; j < cbor_array_size(ev[1]); j++, k++)
            if ((e = cbor_proof(ps[j], id, &t->proofs[k], k, r)))
                goto out;
    }
    t->n_proofs = total;
    t->version = 4;
out:
    cbor_decref(&root);
    return e;
}

/* CBOR writers on a dvm_buf (definite lengths, shortest forms). */
typedef size_t (*cbor_head_fn)(size_t, unsigned char *, size_t);

static dvm_err put_head(dvm_buf *b, cbor_head_fn fn, size_t n)
{
    dvm_err e = dvm_buf_reserve(b, 9);
    if (e)
        return e;
    size_t w = fn(n, b->data + b->len, 9);
    if (w == 0)
        return DVM_ERR_INVALID;
    b->len += w;
    return DVM_OK;
}

static dvm_err put_uint(dvm_buf *b, uint64_t v)
{
    dvm_err e = dvm_buf_reserve(b, 9);
    if (e)
        return e;
    b->len += cbor_encode_uint(v, b->data + b->len, 9);
    return DVM_OK;
}

static dvm_err put_text(dvm_buf *b, const char *s, size_t n)
{
    dvm_err e = put_head(b, cbor_encode_string_start, n);
    return e ? e : dvm_buf_append(b, s, n);
}

static dvm_err put_bytes(dvm_buf *b, const uint8_t *s, size_t n)
{
    dvm_err e = put_head(b, cbor_encode_bytestring_start, n);
    return e ? e : dvm_buf_append(b, s, n);
}

static dvm_err put_key(dvm_buf *b, const char *k) { return put_text(b, k, 1); }

static size_t run_end(const dvm_token *t, size_t i)
{
    size_t j = i + 1;
    while (j < t->n_proofs && strcmp(t->proofs[j].id, t->proofs[i].id) == 0)
        j++;
    return j;
}

static dvm_err encode_cbor(const dvm_token *t, dvm_buf *c)
{
    dvm_err e;
    size_t runs = 0;
    for (size_t i = 0; i < t->n_proofs; i = run_end(t, i))
        runs++;
    if ((e = put_head(c, cbor_encode_map_start, t->has_memo ? 4 : 3)) || (e = put_key(c, "t")) ||
        (e = put_head(c, cbor_encode_array_start, runs)))
        return e;
    for (size_t i = 0; i < t->n_proofs;) {
        size_t end = run_end(t, i);
        uint8_t idb[KEYSET_ID_MAX_BYTES];
        size_t idn = strlen(t->proofs[i].id) / 2;
        dvm_hex_decode(t->proofs[i].id, 2 * idn, idb, idn); /* checked by check_proof */
        if ((e = put_head(c, cbor_encode_map_start, 2)) || (e = put_key(c, "i")) ||
            (e = put_bytes(c, idb, idn)) || (e = put_key(c, "p")) ||
            (e = put_head(c, cbor_encode_array_start, end - i)))
            return e;
        for (; i < end; i++) {
            const dvm_proof *p = &t->proofs[i];
            if ((e = put_head(c, cbor_encode_map_start, p->has_dleq ? 4 : 3)) ||
                (e = put_key(c, "a")) || (e = put_uint(c, p->amount)) || (e = put_key(c, "s")) ||
                (e = put_text(c, p->secret, p->secret_len)) || (e = put_key(c, "c")) ||
                (e = put_bytes(c, p->C, DVM_POINT_BYTES)))
                return e;
            if (p->has_dleq) {
                if ((e = put_key(c, "d")) ||
                    (e = put_head(c, cbor_encode_map_start, p->dleq.has_r ? 3 : 2)) ||
                    (e = put_key(c, "e")) || (e = put_bytes(c, p->dleq.e, DVM_SCALAR_BYTES)) ||
                    (e = put_key(c, "s")) || (e = put_bytes(c, p->dleq.s, DVM_SCALAR_BYTES)))
                    return e;
                if (p->dleq.has_r &&
                    ((e = put_key(c, "r")) || (e = put_bytes(c, p->dleq.r, DVM_SCALAR_BYTES))))
                    return e;
            }
        }
    }
    if (t->has_memo && ((e = put_key(c, "d")) || (e = put_text(c, t->memo, strlen(t->memo)))))
        return e;
    if ((e = put_key(c, "m")) || (e = put_text(c, t->mint, strlen(t->mint))) ||
        (e = put_key(c, "u")) || (e = put_text(c, t->unit, strlen(t->unit))))
        return e;
    return DVM_OK;
}

/* ---------------------------------------------------------------------- */
/* public entry points                                                    */

dvm_err dvm_token_decode(const char *s, size_t len, dvm_token *out, char *reason,
                         size_t reason_len)
{
    reason_sink rs = {reason, reason_len}, *r = &rs;
    memset(out, 0, sizeof *out);
    if (reason && reason_len)
        reason[0] = '\0';
    if (len > DVM_TOKEN_MAX_BYTES)
        return fail(r, DVM_ERR_TOO_LARGE, "token is %zu bytes, over %u", len, DVM_TOKEN_MAX_BYTES);
    if (len >= URI_PREFIX_LEN && memcmp(s, URI_PREFIX, URI_PREFIX_LEN) == 0) {
        s += URI_PREFIX_LEN;
        len -= URI_PREFIX_LEN;
    }
    if (len < PREFIX_LEN + 1 || memcmp(s, PREFIX, PREFIX_LEN) != 0)
        return fail(r, DVM_ERR_INVALID, "not a Cashu token (no \"cashu\" prefix)");
    char v = s[PREFIX_LEN];
    if (v != 'A' && v != 'B')
        return fail(r, DVM_ERR_UNSUPPORTED, "unsupported token version '%c' (want A or B)",
                    v >= 0x21 && v < 0x7f ? v : '?');
    uint8_t *bin = NULL;
    size_t bn = 0;
    dvm_err e = b64_decode(s + PREFIX_LEN + 1, len - PREFIX_LEN - 1, &bin, &bn, r);
    if (e)
        return e;
    e = v == 'A' ? decode_v3(bin, bn, out, r) : decode_cbor(bin, bn, out, r);
    free(bin);
    if (!e)
        e = check_token(out, r);
    if (e)
        dvm_token_free(out);
    return e;
}

dvm_err dvm_token_decode_raw(const uint8_t *b, size_t len, dvm_token *out, char *reason,
                             size_t reason_len)
{
    reason_sink rs = {reason, reason_len}, *r = &rs;
    memset(out, 0, sizeof *out);
    if (reason && reason_len)
        reason[0] = '\0';
    if (len > DVM_TOKEN_MAX_BYTES)
        return fail(r, DVM_ERR_TOO_LARGE, "raw token is %zu bytes, over %u", len,
                    DVM_TOKEN_MAX_BYTES);
    if (len < 4 || memcmp(b, "craw", 4) != 0)
        return fail(r, DVM_ERR_INVALID, "not a raw Cashu token (no \"craw\" prefix)");
    if (len < RAW_PREFIX_LEN || b[4] != 'B')
        return fail(r, DVM_ERR_UNSUPPORTED, "unsupported raw token version (want B)");
    dvm_err e = decode_cbor(b + RAW_PREFIX_LEN, len - RAW_PREFIX_LEN, out, r);
    if (!e)
        e = check_token(out, r);
    if (e)
        dvm_token_free(out);
    return e;
}

dvm_err dvm_token_validate(const dvm_token *t, char *reason, size_t reason_len)
{
    reason_sink rs = {reason, reason_len};
    if (reason && reason_len)
        reason[0] = '\0';
    return check_token(t, &rs);
}

dvm_err dvm_token_encode(const dvm_token *t, int version, dvm_buf *out)
{
    if (version != 3 && version != 4)
        return DVM_ERR_UNSUPPORTED;
    dvm_err e = check_token(t, NULL);
    if (e)
        return e;
    size_t start = out->len;
    if (version == 3) {
        e = encode_v3(t, out, start);
    } else {
        dvm_buf c;
        dvm_buf_init(&c, DVM_TOKEN_MAX_BYTES);
        e = encode_cbor(t, &c);
        if (!e)
            e = dvm_buf_append(out, "cashuB", 6);
        if (!e)
            e = b64_append(c.data, c.len, out, start);
        dvm_buf_free(&c);
    }
    if (e)
        out->len = start;
    return e;
}

dvm_err dvm_token_encode_raw(const dvm_token *t, dvm_buf *out)
{
    dvm_err e = check_token(t, NULL);
    if (e)
        return e;
    size_t start = out->len;
    e = dvm_buf_append(out, RAW_PREFIX, RAW_PREFIX_LEN);
    if (!e)
        e = encode_cbor(t, out);
    if (!e && out->len - start > DVM_TOKEN_MAX_BYTES)
        e = DVM_ERR_TOO_LARGE;
    if (e)
        out->len = start;
    return e;
}

static bool proof_equal(const dvm_proof *a, const dvm_proof *b)
{
    if (a->amount != b->amount || strcmp(a->id, b->id) != 0 || a->secret_len != b->secret_len ||
        memcmp(a->secret, b->secret, a->secret_len) != 0 ||
        memcmp(a->C, b->C, DVM_POINT_BYTES) != 0 || a->has_dleq != b->has_dleq)
        return false;
    if (!a->has_dleq)
        return true;
    if (memcmp(a->dleq.e, b->dleq.e, DVM_SCALAR_BYTES) != 0 ||
        memcmp(a->dleq.s, b->dleq.s, DVM_SCALAR_BYTES) != 0 || a->dleq.has_r != b->dleq.has_r)
        return false;
    return !a->dleq.has_r || memcmp(a->dleq.r, b->dleq.r, DVM_SCALAR_BYTES) == 0;
}

bool dvm_token_equal(const dvm_token *a, const dvm_token *b)
{
    if (strcmp(a->mint, b->mint) != 0 || strcmp(a->unit, b->unit) != 0 ||
        a->has_memo != b->has_memo ||
        (a->has_memo && strcmp(a->memo, b->memo) != 0) || a->n_proofs != b->n_proofs)
        return false;
    for (size_t i = 0; i < a->n_proofs; i++)
        if (!proof_equal(&a->proofs[i], &b->proofs[i]))
            return false;
    return true;
}
