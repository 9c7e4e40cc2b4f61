#include "cashu/mint_json.h"
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dvm_err load(const char *body, size_t len, json_t **out, char *reason, size_t rlen)
{
    *out = NULL;
    if (len > DVM_MINT_MAX_BODY)
        return dvm_fail_reason(DVM_ERR_TOO_LARGE, reason, rlen, "body over %u bytes", DVM_MINT_MAX_BODY);
    json_error_t jerr;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        return dvm_fail_reason(DVM_ERR_INVALID, reason, rlen, "malformed JSON: %s (line %d)", jerr.text,
                   jerr.line);
    if (!json_is_object(j)) {
        json_decref(j);
        return dvm_fail_reason(DVM_ERR_INVALID, reason, rlen, "body is not a JSON object");
    }
    *out = j;
    return DVM_OK;
}

/* An array over its limit: DVM_ERR_LIMIT (so the caller can map it to
 * 11014/11015), checked before parsing the items. */
static dvm_err check_count(const json_t *arr, size_t max, const char *field, char *reason,
                           size_t rlen)
{
    if (json_is_array(arr) && json_array_size(arr) > max)
        return dvm_fail_reason(DVM_ERR_LIMIT, reason, rlen, "%s: more than %zu items", field, max);
    return DVM_OK;
}

static dvm_err get_quote_id(const json_t *j, char out[DVM_QUOTE_ID_MAX + 1], char *reason,
                            size_t rlen)
{
    const json_t *q = json_object_get(j, "quote");
    if (!json_is_string(q))
        return dvm_fail_reason(DVM_ERR_INVALID, reason, rlen, "quote: missing or not a string");
    size_t n = json_string_length(q);
    if (n == 0 || n > DVM_QUOTE_ID_MAX || strlen(json_string_value(q)) != n)
        return dvm_fail_reason(DVM_ERR_INVALID, reason, rlen, "quote: empty, too long or contains NUL");
    memcpy(out, json_string_value(q), n + 1);
    return DVM_OK;
}

dvm_err dvm_mint_parse_swap(const dvm_cashu_ctx *ctx, const char *body, size_t len,
                            size_t max_in, size_t max_out, dvm_swap_request *out, char *reason,
                            size_t rlen)
{
    memset(out, 0, sizeof *out);
    if (!max_in)
        max_in = DVM_MINT_DEFAULT_MAX_INPUTS;
    if (!max_out)
        max_out = DVM_MINT_DEFAULT_MAX_OUTPUTS;
    json_t *j;
    dvm_err e = load(body, len, &j, reason, rlen);
    if (e)
        return e;
    const json_t *ins = json_object_get(j, "inputs"), *outs = json_object_get(j, "outputs");
    if (!(e = check_count(ins, max_in, "inputs", reason, rlen)) &&
        !(e = check_count(outs, max_out, "outputs", reason, rlen)) &&
        !(e = dvm_cashu_proofs_from_json(ctx, ins, max_in, "inputs", &out->inputs,
                                         &out->n_inputs, reason, rlen)))
        e = dvm_cashu_blinded_messages_from_json(ctx, outs, max_out, "outputs", &out->outputs,
                                                 &out->n_outputs, reason, rlen);
    json_decref(j);
    if (e)
        dvm_swap_request_free(out);
    return e;
}

void dvm_swap_request_free(dvm_swap_request *r)
{
    free(r->inputs);
    free(r->outputs);
    memset(r, 0, sizeof *r);
}

dvm_err dvm_mint_parse_mint(const dvm_cashu_ctx *ctx, const char *body, size_t len,
                            size_t max_out, dvm_mint_request *out, char *reason, size_t rlen)
{
    memset(out, 0, sizeof *out);
    if (!max_out)
        max_out = DVM_MINT_DEFAULT_MAX_OUTPUTS;
    json_t *j;
    dvm_err e = load(body, len, &j, reason, rlen);
    if (e)
        return e;
    const json_t *outs = json_object_get(j, "outputs");
    if (!(e = get_quote_id(j, out->quote, reason, rlen)) &&
        !(e = check_count(outs, max_out, "outputs", reason, rlen)))
        e = dvm_cashu_blinded_messages_from_json(ctx, outs, max_out, "outputs", &out->outputs,
                                                 &out->n_outputs, reason, rlen);
    json_decref(j);
    if (e)
        dvm_mint_request_free(out);
    return e;
}

void dvm_mint_request_free(dvm_mint_request *r)
{
    free(r->outputs);
    memset(r, 0, sizeof *r);
}

dvm_err dvm_mint_parse_melt(const dvm_cashu_ctx *ctx, const char *body, size_t len,
                            size_t max_in, size_t max_out, dvm_melt_request *out, char *reason,
                            size_t rlen)
{
    memset(out, 0, sizeof *out);
    if (!max_in)
        max_in = DVM_MINT_DEFAULT_MAX_INPUTS;
    if (!max_out)
        max_out = DVM_MINT_DEFAULT_MAX_OUTPUTS;
    json_t *j;
    dvm_err e = load(body, len, &j, reason, rlen);
    if (e)
        return e;
    const json_t *ins = json_object_get(j, "inputs"), *outs = json_object_get(j, "outputs");
    if (!(e = get_quote_id(j, out->quote, reason, rlen)) &&
        !(e = check_count(ins, max_in, "inputs", reason, rlen)) &&
        !(e = dvm_cashu_proofs_from_json(ctx, ins, max_in, "inputs", &out->inputs,
                                         &out->n_inputs, reason, rlen)) &&
        outs && !json_is_null(outs) && !(e = check_count(outs, max_out, "outputs", reason, rlen)))
        e = dvm_cashu_blinded_messages_from_json(ctx, outs, max_out, "outputs", &out->outputs,
                                                 &out->n_outputs, reason, rlen);
    json_decref(j);
    if (e)
        dvm_melt_request_free(out);
    return e;
}

void dvm_melt_request_free(dvm_melt_request *r)
{
    free(r->inputs);
    free(r->outputs);
    memset(r, 0, sizeof *r);
}

dvm_err dvm_mint_parse_checkstate(const dvm_cashu_ctx *ctx, const char *body, size_t len,
                                  size_t max, dvm_checkstate_request *out, char *reason,
                                  size_t rlen)
{
    memset(out, 0, sizeof *out);
    if (!max)
        max = DVM_MINT_DEFAULT_MAX_INPUTS;
    json_t *j;
    dvm_err e = load(body, len, &j, reason, rlen);
    if (e)
        return e;
    const json_t *ys = json_object_get(j, "Ys");
    if (!json_is_array(ys)) {
        e = dvm_fail_reason(DVM_ERR_INVALID, reason, rlen, "Ys: missing or not an array");
    } else if ((e = check_count(ys, max, "Ys", reason, rlen))) {
        /* over the limit */
    } else if (json_array_size(ys) > 0) {
        size_t n = json_array_size(ys);
        out->Ys = malloc(n * DVM_POINT_BYTES);
        if (!out->Ys)
            e = DVM_ERR_NOMEM;
        for (size_t i = 0; i < n && !e; i++) {
            const json_t *y = json_array_get(ys, i);
            if (!json_is_string(y) || json_string_length(y) != 2 * DVM_POINT_BYTES ||
                dvm_cashu_hex_decode(json_string_value(y), out->Ys[i], DVM_POINT_BYTES) ||
                dvm_cashu_point_check(ctx, out->Ys[i]))
                e = dvm_fail_reason(DVM_ERR_INVALID, reason, rlen, "Ys[%zu]: not a compressed point in hex",
                        i);
        }
        out->n = n;
    }
    json_decref(j);
    if (e)
        dvm_checkstate_request_free(out);
    return e;
}

void dvm_checkstate_request_free(dvm_checkstate_request *r)
{
    free(r->Ys);
    memset(r, 0, sizeof *r);
}

static dvm_err get_unit(const json_t *j, char out[DVM_UNIT_MAX + 1], char *reason, size_t rlen)
{
    const json_t *u = json_object_get(j, "unit");
    if (!json_is_string(u))
        return dvm_fail_reason(DVM_ERR_INVALID, reason, rlen, "unit: missing or not a string");
    size_t n = json_string_length(u);
    if (n == 0 || n > DVM_UNIT_MAX || strlen(json_string_value(u)) != n)
        return dvm_fail_reason(DVM_ERR_INVALID, reason, rlen, "unit: empty or too long");
    memcpy(out, json_string_value(u), n + 1);
    return DVM_OK;
}

dvm_err dvm_mint_parse_mint_quote(const char *body, size_t len, dvm_quote_request *out,
                                  char *reason, size_t rlen)
{
    memset(out, 0, sizeof *out);
    json_t *j;
    dvm_err e = load(body, len, &j, reason, rlen);
    if (e)
        return e;
    const json_t *a = json_object_get(j, "amount");
    if (!json_is_integer(a) || json_integer_value(a) <= 0 ||
        (uint64_t)json_integer_value(a) > DVM_CASHU_MAX_AMOUNT)
        e = dvm_fail_reason(DVM_ERR_INVALID, reason, rlen, "amount: missing or not an integer in 1..2^53-1");
    else
        out->amount = (uint64_t)json_integer_value(a);
    if (!e)
        e = get_unit(j, out->unit, reason, rlen);
    json_decref(j);
    return e;
}

dvm_err dvm_mint_parse_melt_quote(const char *body, size_t len, dvm_quote_request *out,
                                  char *reason, size_t rlen)
{
    memset(out, 0, sizeof *out);
    json_t *j;
    dvm_err e = load(body, len, &j, reason, rlen);
    if (e)
        return e;
    const json_t *r = json_object_get(j, "request");
    if (!json_is_string(r))
        e = dvm_fail_reason(DVM_ERR_INVALID, reason, rlen, "request: missing or not a string");
    else if (json_string_length(r) == 0 || json_string_length(r) > DVM_BOLT11_MAX ||
             strlen(json_string_value(r)) != json_string_length(r))
        e = dvm_fail_reason(DVM_ERR_INVALID, reason, rlen, "request: empty or longer than %d bytes",
                DVM_BOLT11_MAX);
    else
        memcpy(out->request, json_string_value(r), json_string_length(r) + 1);
    if (!e)
        e = get_unit(j, out->unit, reason, rlen);
    json_decref(j);
    return e;
}

int dvm_mint_parse_error_code(dvm_err e, bool is_outputs)
{
    if (e == DVM_ERR_LIMIT)
        return is_outputs ? DVM_NUT_MAX_OUTPUTS : DVM_NUT_MAX_INPUTS;
    return DVM_NUT_GENERIC;
}

/* ---- responses ------------------------------------------------------------- */

json_t *dvm_mint_error_json(const dvm_mint_error *err)
{
    return json_pack("{s:s, s:i}", "detail",
                     err->detail[0] ? err->detail : dvm_nut_error_text(err->code), "code",
                     err->code);
}

json_t *dvm_mint_signatures_json(const dvm_blind_signature *sigs, size_t n)
{
    json_t *a = dvm_cashu_blind_signatures_to_json(sigs, n);
    return a ? json_pack("{s:o}", "signatures", a) : NULL;
}

json_t *dvm_mint_quote_json(const dvm_mint_quote *q)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:I}", "quote", q->quote, "request", q->request,
                     "amount", (json_int_t)q->amount, "unit", q->unit, "state",
                     dvm_mint_quote_state_name(q->state), "expiry", (json_int_t)q->expiry);
}

json_t *dvm_melt_quote_json(const dvm_melt_quote *q)
{
    json_t *pre = q->payment_preimage[0] ? json_string(q->payment_preimage) : json_null();
    return json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:I, s:o}", "quote", q->quote, "request",
                     q->request, "amount", (json_int_t)q->amount, "fee_reserve",
                     (json_int_t)q->fee_reserve, "unit", q->unit, "state",
                     dvm_melt_quote_state_name(q->state), "expiry", (json_int_t)q->expiry,
                     "payment_preimage", pre);
}

json_t *dvm_melt_response_json(const dvm_melt_quote *q, const dvm_blind_signature *change,
                               size_t n_change)
{
    json_t *o = dvm_melt_quote_json(q);
    if (o && n_change) {
        json_t *a = dvm_cashu_blind_signatures_to_json(change, n_change);
        if (!a || json_object_set_new(o, "change", a)) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

json_t *dvm_mint_states_json(const uint8_t (*Ys)[DVM_POINT_BYTES], const dvm_proof_state *st,
                             size_t n)
{
    json_t *a = json_array();
    if (!a)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char h[2 * DVM_POINT_BYTES + 1];
        dvm_cashu_hex_encode(Ys[i], DVM_POINT_BYTES, h);
        if (json_array_append_new(a, json_pack("{s:s, s:s, s:n}", "Y", h, "state",
                                               dvm_proof_state_name(st[i]), "witness"))) {
            json_decref(a);
            return NULL;
        }
    }
    return json_pack("{s:o}", "states", a);
}

json_t *dvm_mint_keys_json(const dvm_mint *m, const char *id)
{
    json_t *a = json_array();
    if (!a)
        return NULL;
    for (size_t i = 0; i < dvm_mint_keyset_count(m); i++) {
        const dvm_keyset *ks = dvm_mint_keyset(m, i);
        if (id ? strcmp(ks->id, id) != 0 : !ks->active)
            continue;
        if (json_array_append_new(a, dvm_cashu_keyset_to_json(ks))) {
            json_decref(a);
            return NULL;
        }
    }
    if (id && json_array_size(a) == 0) {
        json_decref(a);
        return NULL;
    }
    return json_pack("{s:o}", "keysets", a);
}

json_t *dvm_mint_keysets_json(const dvm_mint *m)
{
    json_t *a = json_array();
    if (!a)
        return NULL;
    for (size_t i = 0; i < dvm_mint_keyset_count(m); i++) {
        if (json_array_append_new(a, dvm_cashu_keyset_info_to_json(dvm_mint_keyset(m, i)))) {
            json_decref(a);
            return NULL;
        }
    }
    return json_pack("{s:o}", "keysets", a);
}

json_t *dvm_mint_info_json(const dvm_mint *m, const char *name, const char *version,
                           const char *description)
{
    (void)m;
    char ver[96];
    snprintf(ver, sizeof ver, "dvmstream/%.80s", version ? version : "0");
    return json_pack(
        "{s:s, s:s, s:s, s:{s:{s:[{s:s, s:s}], s:b}, s:{s:[{s:s, s:s}], s:b}, s:{s:b}, "
        "s:{s:b}, s:{s:b}}}",
        "name", name ? name : "dvmstream mint", "version", ver, "description",
        description ? description : "dvmstream test mint (fake Lightning backend)", "nuts", "4",
        "methods", "method", "bolt11", "unit", "sat", "disabled", 0, "5", "methods", "method",
        "bolt11", "unit", "sat", "disabled", 0, "7", "supported", 1, "8", "supported", 1, "12",
        "supported", 1);
}

/* ---- client side ------------------------------------------------------------ */

static dvm_err copy_str(const json_t *obj, const char *key, char *out, size_t cap, bool required,
                        char *reason, size_t rlen)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required)
            return dvm_fail_reason(DVM_ERR_INVALID, reason, rlen, "%s: missing", key);
        out[0] = '\0';
        return DVM_OK;
    }
    if (!json_is_string(v) || json_string_length(v) >= cap ||
        strlen(json_string_value(v)) != json_string_length(v))
        return dvm_fail_reason(DVM_ERR_INVALID, reason, rlen, "%s: not a string of at most %zu bytes", key,
                   cap - 1);
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return DVM_OK;
}

static dvm_err get_u64(const json_t *obj, const char *key, uint64_t *out, char *reason,
                       size_t rlen)
{
    const json_t *v = json_object_get(obj, key);
    *out = 0;
    if (!v || json_is_null(v))
        return DVM_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return dvm_fail_reason(DVM_ERR_INVALID, reason, rlen, "%s: not a non-negative integer", key);
    *out = (uint64_t)json_integer_value(v);
    return DVM_OK;
}

/* NUT-04/05 quote states by name, indexed by their enum value (UNPAID = 0). */
static const char *const MINT_QUOTE_STATES[3] = {"UNPAID", "PAID", "ISSUED"};
static const char *const MELT_QUOTE_STATES[3] = {"UNPAID", "PENDING", "PAID"};

/* A quote's "state" (one of names[0..3), *out = its index), or, from mints
 * older than the state field, the boolean "paid" (*out = paid_state or 0,
 * UNPAID). DVM_ERR_INVALID for an unknown or missing state. */
static dvm_err get_quote_state(const json_t *obj, const char *const names[3], int paid_state, int *out,
                               char *reason, size_t rlen)
{
    const json_t *st = json_object_get(obj, "state");
    if (json_is_string(st)) {
        const char *v = json_string_value(st);
        for (int i = 0; i < 3; i++)
            if (strcmp(v, names[i]) == 0) {
                *out = i;
                return DVM_OK;
            }
        return dvm_fail_reason(DVM_ERR_INVALID, reason, rlen, "state: unknown \"%.16s\"", v);
    }
    const json_t *paid = json_object_get(obj, "paid");
    if (json_is_boolean(paid)) {
        *out = json_is_true(paid) ? paid_state : 0;
        return DVM_OK;
    }
    return dvm_fail_reason(DVM_ERR_INVALID, reason, rlen, "state: missing");
}

dvm_err dvm_mint_quote_from_json(const json_t *obj, dvm_mint_quote *q, char *reason,
                                 size_t rlen)
{
    memset(q, 0, sizeof *q);
    if (!json_is_object(obj))
        return dvm_fail_reason(DVM_ERR_INVALID, reason, rlen, "quote response is not an object");
    dvm_err e;
    if ((e = copy_str(obj, "quote", q->quote, sizeof q->quote, true, reason, rlen)) ||
        (e = copy_str(obj, "request", q->request, sizeof q->request, true, reason, rlen)) ||
        (e = copy_str(obj, "unit", q->unit, sizeof q->unit, false, reason, rlen)) ||
        (e = get_u64(obj, "amount", &q->amount, reason, rlen)) ||
        (e = get_u64(obj, "expiry", &q->expiry, reason, rlen)))
        return e;
    if (!q->unit[0])
        strcpy(q->unit, "sat");
    int state;
    if ((e = get_quote_state(obj, MINT_QUOTE_STATES, DVM_MINT_QUOTE_PAID, &state, reason, rlen)))
        return e;
    q->state = (dvm_mint_quote_state)state;
    return DVM_OK;
}

dvm_err dvm_melt_quote_from_json(const dvm_cashu_ctx *ctx, const json_t *obj,
                                 dvm_melt_quote *q, size_t max_change,
                                 dvm_blind_signature **change, size_t *n_change, char *reason,
                                 size_t rlen)
{
    memset(q, 0, sizeof *q);
    if (change)
        *change = NULL;
    if (n_change)
        *n_change = 0;
    if (!json_is_object(obj))
        return dvm_fail_reason(DVM_ERR_INVALID, reason, rlen, "quote response is not an object");
    dvm_err e;
    if ((e = copy_str(obj, "quote", q->quote, sizeof q->quote, true, reason, rlen)) ||
        (e = copy_str(obj, "request", q->request, sizeof q->request, false, reason, rlen)) ||
        (e = copy_str(obj, "unit", q->unit, sizeof q->unit, false, reason, rlen)) ||
        (e = copy_str(obj, "payment_preimage", q->payment_preimage, sizeof q->payment_preimage,
                      false, reason, rlen)) ||
        (e = get_u64(obj, "amount", &q->amount, reason, rlen)) ||
        (e = get_u64(obj, "fee_reserve", &q->fee_reserve, reason, rlen)) ||
        (e = get_u64(obj, "expiry", &q->expiry, reason, rlen)))
        return e;
    if (!q->unit[0])
        strcpy(q->unit, "sat");
    int state;
    if ((e = get_quote_state(obj, MELT_QUOTE_STATES, DVM_MELT_QUOTE_PAID, &state, reason, rlen)))
        return e;
    q->state = (dvm_melt_quote_state)state;
    const json_t *ch = json_object_get(obj, "change");
    if (change && ch && !json_is_null(ch))
        return dvm_cashu_blind_signatures_from_json(ctx, ch, max_change, "change", change,
                                                    n_change, reason, rlen);
    return DVM_OK;
}

dvm_err dvm_mint_states_from_json(const json_t *obj, const uint8_t (*Ys)[DVM_POINT_BYTES],
                                  size_t n, dvm_proof_state *states, char *reason, size_t rlen)
{
    const json_t *arr = json_object_get(obj, "states");
    if (!json_is_array(arr))
        return dvm_fail_reason(DVM_ERR_INVALID, reason, rlen, "states: missing or not an array");
    if (json_array_size(arr) > 4 * (n + 16))
        return dvm_fail_reason(DVM_ERR_TOO_LARGE, reason, rlen, "states: far more entries than asked");
    for (size_t i = 0; i < n; i++) {
        char want[2 * DVM_POINT_BYTES + 1];
        dvm_cashu_hex_encode(Ys[i], DVM_POINT_BYTES, want);
        bool found = false;
        for (size_t k = 0; k < json_array_size(arr) && !found; k++) {
            const json_t *e = json_array_get(arr, k);
            const char *y = json_string_value(json_object_get(e, "Y"));
            const char *st = json_string_value(json_object_get(e, "state"));
            if (!y || !st || strlen(y) != 2 * DVM_POINT_BYTES)
                continue;
            bool same = true;
            for (size_t c = 0; c < 2 * DVM_POINT_BYTES && same; c++)
                same = (y[c] | 0x20) == want[c];
            if (!same)
                continue;
            if (strcmp(st, "UNSPENT") == 0)
                states[i] = DVM_PROOF_UNSPENT;
            else if (strcmp(st, "PENDING") == 0)
                states[i] = DVM_PROOF_PENDING;
            else if (strcmp(st, "SPENT") == 0)
                states[i] = DVM_PROOF_SPENT;
            else
                return dvm_fail_reason(DVM_ERR_PROTO, reason, rlen, "states: unknown state \"%.16s\"", st);
            found = true;
        }
        if (!found)
            return dvm_fail_reason(DVM_ERR_PROTO, reason, rlen, "states: no answer for Y %s", want);
    }
    return DVM_OK;
}

dvm_err dvm_mint_error_from_json(const json_t *obj, dvm_mint_error *err)
{
    memset(err, 0, sizeof *err);
    const json_t *d = json_object_get(obj, "detail");
    const json_t *c = json_object_get(obj, "code");
    if (!json_is_object(obj) || (!json_is_string(d) && !json_is_integer(c)))
        return DVM_ERR_INVALID;
    if (json_is_integer(c) && json_integer_value(c) > 0 && json_integer_value(c) < 1000000)
        err->code = (int)json_integer_value(c);
    if (json_is_string(d))
        snprintf(err->detail, sizeof err->detail, "%s", json_string_value(d));
    return DVM_OK;
}
