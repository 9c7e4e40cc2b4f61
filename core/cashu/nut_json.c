#include "cashu/nut_json.h"
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dvm_err get_amount(const json_t *obj, const char *key, const char *path, uint64_t *out,
                          char *reason, size_t rlen)
{
    const json_t *v = json_object_get(obj, key);
    if (!v) {
        dvm_reasonf(reason, rlen, "%s%s: missing", path, key);
        return DVM_ERR_INVALID;
    }
    if (!json_is_integer(v)) {
        dvm_reasonf(reason, rlen, "%s%s: not an integer", path, key);
        return DVM_ERR_INVALID;
    }
    json_int_t a = json_integer_value(v);
    if (a <= 0 || (uint64_t)a > DVM_CASHU_MAX_AMOUNT || !dvm_cashu_amount_is_pow2((uint64_t)a)) {
        dvm_reasonf(reason, rlen, "%s%s: not a power of two in 1..2^52", path, key);
        return DVM_ERR_INVALID;
    }
    *out = (uint64_t)a;
    return DVM_OK;
}

static dvm_err get_str(const json_t *obj, const char *key, const char *path, size_t max,
                       const char **out, size_t *len, char *reason, size_t rlen)
{
    const json_t *v = json_object_get(obj, key);
    if (!v) {
        dvm_reasonf(reason, rlen, "%s%s: missing", path, key);
        return DVM_ERR_INVALID;
    }
    if (!json_is_string(v)) {
        dvm_reasonf(reason, rlen, "%s%s: not a string", path, key);
        return DVM_ERR_INVALID;
    }
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n > max) {
        dvm_reasonf(reason, rlen, "%s%s: longer than %zu bytes", path, key, max);
        return DVM_ERR_TOO_LARGE;
    }
    if (strlen(s) != n) {
        dvm_reasonf(reason, rlen, "%s%s: contains a NUL", path, key);
        return DVM_ERR_INVALID;
    }
    *out = s;
    if (len)
        *len = n;
    return DVM_OK;
}

static dvm_err get_id(const json_t *obj, const char *path, char out[DVM_KEYSET_ID_MAX + 1],
                      char *reason, size_t rlen)
{
    const char *s;
    size_t n;
    dvm_err e = get_str(obj, "id", path, DVM_KEYSET_ID_MAX, &s, &n, reason, rlen);
    if (e)
        return e;
    if (n < 2) {
        dvm_reasonf(reason, rlen, "%sid: too short", path);
        return DVM_ERR_INVALID;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            dvm_reasonf(reason, rlen, "%sid: not lowercase hex", path);
            return DVM_ERR_INVALID;
        }
    }
    memcpy(out, s, n + 1);
    return DVM_OK;
}

static dvm_err get_point(const dvm_cashu_ctx *ctx, const json_t *obj, const char *key,
                         const char *path, uint8_t out[DVM_POINT_BYTES], char *reason,
                         size_t rlen)
{
    const char *s;
    dvm_err e = get_str(obj, key, path, 2 * DVM_POINT_BYTES, &s, NULL, reason, rlen);
    if (e == DVM_ERR_TOO_LARGE)
        e = DVM_ERR_INVALID;
    if (e)
        return e;
    if (dvm_cashu_hex_decode(s, out, DVM_POINT_BYTES) != DVM_OK) {
        dvm_reasonf(reason, rlen, "%s%s: not 33 bytes of hex", path, key);
        return DVM_ERR_INVALID;
    }
    if (dvm_cashu_point_check(ctx, out) != DVM_OK) {
        dvm_reasonf(reason, rlen, "%s%s: not a valid compressed point", path, key);
        return DVM_ERR_INVALID;
    }
    return DVM_OK;
}

static dvm_err get_scalar(const json_t *obj, const char *key, const char *path,
                          uint8_t out[DVM_SCALAR_BYTES], char *reason, size_t rlen)
{
    const char *s;
    dvm_err e = get_str(obj, key, path, 2 * DVM_SCALAR_BYTES, &s, NULL, reason, rlen);
    if (e == DVM_ERR_TOO_LARGE)
        e = DVM_ERR_INVALID;
    if (e)
        return e;
    if (dvm_cashu_hex_decode(s, out, DVM_SCALAR_BYTES) != DVM_OK) {
        dvm_reasonf(reason, rlen, "%s%s: not 32 bytes of hex", path, key);
        return DVM_ERR_INVALID;
    }
    return DVM_OK;
}

static dvm_err get_dleq(const json_t *obj, const char *path, bool want_r, bool *has,
                        dvm_dleq *d, char *reason, size_t rlen)
{
    const json_t *v = json_object_get(obj, "dleq");
    memset(d, 0, sizeof *d);
    *has = false;
    if (!v || json_is_null(v))
        return DVM_OK;
    if (!json_is_object(v)) {
        dvm_reasonf(reason, rlen, "%sdleq: not an object", path);
        return DVM_ERR_INVALID;
    }
    char p2[96];
    snprintf(p2, sizeof p2, "%sdleq.", path);
    dvm_err e;
    if ((e = get_scalar(v, "e", p2, d->e, reason, rlen)) ||
        (e = get_scalar(v, "s", p2, d->s, reason, rlen)))
        return e;
    if (want_r && json_object_get(v, "r")) {
        if ((e = get_scalar(v, "r", p2, d->r, reason, rlen)))
            return e;
        d->has_r = true;
    }
    *has = true;
    return DVM_OK;
}

static dvm_err need_object(const json_t *obj, const char *path, char *reason, size_t rlen)
{
    if (!json_is_object(obj)) {
        dvm_reasonf(reason, rlen, "%s: not an object", path[0] ? path : "value");
        return DVM_ERR_INVALID;
    }
    return DVM_OK;
}

/* ---- keysets ----------------------------------------------------------- */

static int parse_amount_key(const char *k, uint64_t *out)
{
    if (!*k || strlen(k) > 20)
        return 0;
    uint64_t v = 0;
    for (const char *p = k; *p; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    if (k[0] == '0')
        return 0; /* no leading zeros, no "0" */
    *out = v;
    return 1;
}

dvm_err dvm_cashu_keys_from_json(const dvm_cashu_ctx *ctx, const json_t *keys, dvm_keyset *ks,
                                 char *reason, size_t rlen)
{
    if (!json_is_object(keys)) {
        dvm_reasonf(reason, rlen, "keys: not an object");
        return DVM_ERR_INVALID;
    }
    if (json_object_size(keys) == 0 || json_object_size(keys) > DVM_KEYSET_MAX_ORDERS) {
        dvm_reasonf(reason, rlen, "keys: needs 1..64 entries");
        return DVM_ERR_INVALID;
    }
    ks->present = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)keys, k, v) {
        uint64_t amount;
        if (!parse_amount_key(k, &amount) || !dvm_cashu_amount_is_pow2(amount)) {
            dvm_reasonf(reason, rlen, "keys: amount \"%.24s\" is not a power of two", k);
            return DVM_ERR_INVALID;
        }
        int o = dvm_cashu_amount_order(amount);
        if (!json_is_string(v) || json_string_length(v) != 2 * DVM_POINT_BYTES ||
            dvm_cashu_hex_decode(json_string_value(v), ks->keys[o], DVM_POINT_BYTES) != DVM_OK) {
            dvm_reasonf(reason, rlen, "keys[\"%s\"]: not a 33-byte compressed key in hex", k);
            return DVM_ERR_INVALID;
        }
        if (dvm_cashu_point_check(ctx, ks->keys[o]) != DVM_OK) {
            dvm_reasonf(reason, rlen, "keys[\"%s\"]: not a valid point", k);
            return DVM_ERR_INVALID;
        }
        ks->present |= (uint64_t)1 << o;
    }
    return DVM_OK;
}

dvm_err dvm_cashu_keyset_from_json(const dvm_cashu_ctx *ctx, const json_t *obj, dvm_keyset *ks,
                                   char *reason, size_t rlen)
{
    memset(ks, 0, sizeof *ks);
    dvm_err e;
    if ((e = need_object(obj, "keyset", reason, rlen)))
        return e;
    if ((e = get_id(obj, "", ks->id, reason, rlen)))
        return e;
    const char *unit;
    size_t ulen;
    if ((e = get_str(obj, "unit", "", DVM_UNIT_MAX, &unit, &ulen, reason, rlen)))
        return e;
    memcpy(ks->unit, unit, ulen + 1);
    ks->active = true;
    const json_t *a = json_object_get(obj, "active");
    if (a && json_is_boolean(a))
        ks->active = json_is_true(a);
    const json_t *f = json_object_get(obj, "input_fee_ppk");
    if (f && json_is_integer(f) && json_integer_value(f) >= 0)
        ks->input_fee_ppk = (uint64_t)json_integer_value(f);
    const json_t *x = json_object_get(obj, "final_expiry");
    if (x && json_is_integer(x) && json_integer_value(x) >= 0)
        ks->final_expiry = (uint64_t)json_integer_value(x);
    if ((e = dvm_cashu_keys_from_json(ctx, json_object_get(obj, "keys"), ks, reason, rlen)))
        return e;
    if (dvm_keyset_check_id(ks) != DVM_OK) {
        dvm_reasonf(reason, rlen, "keyset %s: id does not match its keys", ks->id);
        return DVM_ERR_INVALID;
    }
    return DVM_OK;
}

static json_t *hex_json(const uint8_t *b, size_t n)
{
    char h[2 * 65 + 1];
    dvm_cashu_hex_encode(b, n, h);
    return json_string(h);
}

json_t *dvm_cashu_keys_to_json(const dvm_keyset *ks)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    for (int i = 0; i < DVM_KEYSET_MAX_ORDERS; i++) {
        if (!(ks->present & ((uint64_t)1 << i)))
            continue;
        char k[24];
        snprintf(k, sizeof k, "%llu", (unsigned long long)((uint64_t)1 << i));
        if (json_object_set_new(o, k, hex_json(ks->keys[i], DVM_POINT_BYTES))) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

json_t *dvm_cashu_keyset_to_json(const dvm_keyset *ks)
{
    json_t *keys = dvm_cashu_keys_to_json(ks);
    if (!keys)
        return NULL;
    json_t *o = json_pack("{s:s, s:s, s:o}", "id", ks->id, "unit", ks->unit, "keys", keys);
    /* Version-01 ids cover the fee and the expiry: publish them when set. */
    if (o && ks->input_fee_ppk &&
        json_object_set_new(o, "input_fee_ppk", json_integer((json_int_t)ks->input_fee_ppk))) {
        json_decref(o);
        return NULL;
    }
    if (o && ks->final_expiry &&
        json_object_set_new(o, "final_expiry", json_integer((json_int_t)ks->final_expiry))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *dvm_cashu_keyset_info_to_json(const dvm_keyset *ks)
{
    return json_pack("{s:s, s:s, s:b, s:I}", "id", ks->id, "unit", ks->unit, "active",
                     ks->active ? 1 : 0, "input_fee_ppk", (json_int_t)ks->input_fee_ppk);
}

/* ---- Proofs, BlindedMessages, BlindSignatures ------------------------- */

dvm_err dvm_cashu_proof_from_json(const dvm_cashu_ctx *ctx, const json_t *obj, dvm_proof *out,
                                  char *reason, size_t rlen)
{
    return dvm_cashu_proof_from_json_at(ctx, obj, "", out, reason, rlen);
}

dvm_err dvm_cashu_proof_from_json_at(const dvm_cashu_ctx *ctx, const json_t *obj,
                                     const char *path, dvm_proof *out, char *reason, size_t rlen)
{
    memset(out, 0, sizeof *out);
    dvm_err e;
    if ((e = need_object(obj, path, reason, rlen)) ||
        (e = get_amount(obj, "amount", path, &out->amount, reason, rlen)) ||
        (e = get_id(obj, path, out->id, reason, rlen)))
        return e;
    const char *sec;
    size_t slen;
    if ((e = get_str(obj, "secret", path, DVM_SECRET_MAX, &sec, &slen, reason, rlen)))
        return e;
    memcpy(out->secret, sec, slen + 1);
    out->secret_len = slen;
    if ((e = get_point(ctx, obj, "C", path, out->C, reason, rlen)) ||
        (e = get_dleq(obj, path, true, &out->has_dleq, &out->dleq, reason, rlen)))
        return e;
    return DVM_OK;
}

static json_t *dleq_json(const dvm_dleq *d, bool with_r)
{
    json_t *o = json_pack("{s:o, s:o}", "e", hex_json(d->e, 32), "s", hex_json(d->s, 32));
    if (o && with_r && d->has_r && json_object_set_new(o, "r", hex_json(d->r, 32))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *dvm_cashu_proof_to_json(const dvm_proof *p)
{
    json_t *o = json_pack("{s:I, s:s, s:s%, s:o}", "amount", (json_int_t)p->amount, "id", p->id,
                          "secret", p->secret, p->secret_len, "C", hex_json(p->C, 33));
    if (o && p->has_dleq && json_object_set_new(o, "dleq", dleq_json(&p->dleq, true))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static dvm_err bm_from_json_at(const dvm_cashu_ctx *ctx, const json_t *obj, const char *path,
                               dvm_blinded_message *out, char *reason, size_t rlen)
{
    memset(out, 0, sizeof *out);
    dvm_err e;
    if ((e = need_object(obj, path, reason, rlen)) ||
        (e = get_amount(obj, "amount", path, &out->amount, reason, rlen)) ||
        (e = get_id(obj, path, out->id, reason, rlen)) ||
        (e = get_point(ctx, obj, "B_", path, out->B_, reason, rlen)))
        return e;
    return DVM_OK;
}

dvm_err dvm_cashu_blinded_message_from_json(const dvm_cashu_ctx *ctx, const json_t *obj,
                                            dvm_blinded_message *out, char *reason, size_t rlen)
{
    return bm_from_json_at(ctx, obj, "", out, reason, rlen);
}

json_t *dvm_cashu_blinded_message_to_json(const dvm_blinded_message *m)
{
    return json_pack("{s:I, s:s, s:o}", "amount", (json_int_t)m->amount, "id", m->id, "B_",
                     hex_json(m->B_, 33));
}

static dvm_err bs_from_json_at(const dvm_cashu_ctx *ctx, const json_t *obj, const char *path,
                               dvm_blind_signature *out, char *reason, size_t rlen)
{
    memset(out, 0, sizeof *out);
    dvm_err e;
    if ((e = need_object(obj, path, reason, rlen)) ||
        (e = get_amount(obj, "amount", path, &out->amount, reason, rlen)) ||
        (e = get_id(obj, path, out->id, reason, rlen)) ||
        (e = get_point(ctx, obj, "C_", path, out->C_, reason, rlen)) ||
        (e = get_dleq(obj, path, false, &out->has_dleq, &out->dleq, reason, rlen)))
        return e;
    return DVM_OK;
}

dvm_err dvm_cashu_blind_signature_from_json(const dvm_cashu_ctx *ctx, const json_t *obj,
                                            dvm_blind_signature *out, char *reason, size_t rlen)
{
    return bs_from_json_at(ctx, obj, "", out, reason, rlen);
}

json_t *dvm_cashu_blind_signature_to_json(const dvm_blind_signature *s)
{
    json_t *o = json_pack("{s:I, s:s, s:o}", "amount", (json_int_t)s->amount, "id", s->id, "C_",
                          hex_json(s->C_, 33));
    if (o && s->has_dleq && json_object_set_new(o, "dleq", dleq_json(&s->dleq, false))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Generic array parse. */
typedef dvm_err (*item_fn)(const dvm_cashu_ctx *, const json_t *, const char *, void *, char *,
                           size_t);

static dvm_err proof_item(const dvm_cashu_ctx *c, const json_t *o, const char *p, void *out,
                          char *r, size_t rl)
{
    return dvm_cashu_proof_from_json_at(c, o, p, out, r, rl);
}
static dvm_err bm_item(const dvm_cashu_ctx *c, const json_t *o, const char *p, void *out,
                       char *r, size_t rl)
{
    return bm_from_json_at(c, o, p, out, r, rl);
}
static dvm_err bs_item(const dvm_cashu_ctx *c, const json_t *o, const char *p, void *out,
                       char *r, size_t rl)
{
    return bs_from_json_at(c, o, p, out, r, rl);
}

static dvm_err parse_array(const dvm_cashu_ctx *ctx, const json_t *arr, size_t max,
                           const char *field, size_t item_size, item_fn fn, void **out,
                           size_t *n, char *reason, size_t rlen)
{
    *out = NULL;
    *n = 0;
    if (!arr) {
        dvm_reasonf(reason, rlen, "%s: missing", field);
        return DVM_ERR_INVALID;
    }
    if (!json_is_array(arr)) {
        dvm_reasonf(reason, rlen, "%s: not an array", field);
        return DVM_ERR_INVALID;
    }
    size_t len = json_array_size(arr);
    if (len > max) {
        dvm_reasonf(reason, rlen, "%s: more than %zu items", field, max);
        return DVM_ERR_TOO_LARGE;
    }
    if (len == 0)
        return DVM_OK;
    uint8_t *items = calloc(len, item_size);
    if (!items)
        return DVM_ERR_NOMEM;
    for (size_t i = 0; i < len; i++) {
        char path[64];
        snprintf(path, sizeof path, "%.24s[%zu].", field, i);
        dvm_err e = fn(ctx, json_array_get(arr, i), path, items + i * item_size, reason, rlen);
        if (e) {
            free(items);
            return e;
        }
    }
    *out = items;
    *n = len;
    return DVM_OK;
}

dvm_err dvm_cashu_proofs_from_json(const dvm_cashu_ctx *ctx, const json_t *arr, size_t max,
                                   const char *field, dvm_proof **out, size_t *n, char *reason,
                                   size_t rlen)
{
    void *p;
    dvm_err e = parse_array(ctx, arr, max, field, sizeof(dvm_proof), proof_item, &p, n, reason,
                            rlen);
    *out = p;
    return e;
}

dvm_err dvm_cashu_blinded_messages_from_json(const dvm_cashu_ctx *ctx, const json_t *arr,
                                             size_t max, const char *field,
                                             dvm_blinded_message **out, size_t *n, char *reason,
                                             size_t rlen)
{
    void *p;
    dvm_err e = parse_array(ctx, arr, max, field, sizeof(dvm_blinded_message), bm_item, &p, n,
                            reason, rlen);
    *out = p;
    return e;
}

dvm_err dvm_cashu_blind_signatures_from_json(const dvm_cashu_ctx *ctx, const json_t *arr,
                                             size_t max, const char *field,
                                             dvm_blind_signature **out, size_t *n, char *reason,
                                             size_t rlen)
{
    void *p;
    dvm_err e = parse_array(ctx, arr, max, field, sizeof(dvm_blind_signature), bs_item, &p, n,
                            reason, rlen);
    *out = p;
    return e;
}

#define TO_ARRAY(fn, arr, n)                                                                     \
    do {                                                                                         \
        json_t *a = json_array();                                                                \
        if (!a)                                                                                  \
            return NULL;                                                                         \
        for (size_t i = 0; i < (n); i++) {                                                       \
            if (json_array_append_new(a, fn(&(arr)[i]))) {                                       \
                json_decref(a);                                                                  \
                return NULL;                                                                     \
            }                                                                                    \
        }                                                                                        \
        return a;                                                                                \
    } while (0)

json_t *dvm_cashu_proofs_to_json(const dvm_proof *p, size_t n)
{
    TO_ARRAY(dvm_cashu_proof_to_json, p, n);
}

json_t *dvm_cashu_blinded_messages_to_json(const dvm_blinded_message *m, size_t n)
{
    TO_ARRAY(dvm_cashu_blinded_message_to_json, m, n);
}

json_t *dvm_cashu_blind_signatures_to_json(const dvm_blind_signature *s, size_t n)
{
    TO_ARRAY(dvm_cashu_blind_signature_to_json, s, n);
}
