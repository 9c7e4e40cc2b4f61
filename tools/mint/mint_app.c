/* dvmstream — the HTTP Cashu mint's endpoints (see mint_app.h). */
#include "mint/mint_app.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <sodium.h>

#include "cashu/mint.h"
#include "cashu/nut_json.h"
#include "mint/mint_sqlite.h"

struct dvm_mint_app {
    pthread_mutex_t mu; /* dvm_mint is not thread-safe: one call at a time */
    dvm_mint_sqlite *db;
    dvm_mint_store vt;
    dvm_rng rng;
    dvm_mint *mint;
    size_t max_inputs;
    size_t max_outputs;
    char name[128];
    char pubkey[67];
};

static void sodium_fill(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    randombytes_buf(buf, len);
}

static uint64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

dvm_err dvm_mint_app_open(const dvm_mint_app_config *cfg, dvm_mint_app **out, char *err,
                          size_t errlen)
{
    *out = NULL;
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return DVM_ERR_STATE;
    }
    dvm_mint_app *app = calloc(1, sizeof *app);
    if (!app)
        return DVM_ERR_NOMEM;
    pthread_mutex_init(&app->mu, NULL);
    app->rng.fill = sodium_fill;
    app->rng.ctx = NULL;
    snprintf(app->name, sizeof app->name, "%s", cfg->name ? cfg->name : "dvmstream mint");
    dvm_err e = dvm_mint_sqlite_open(cfg->db_path, &app->db, err, errlen);
    if (e)
        goto fail;
    uint8_t fresh[32], seed[32];
    if (cfg->seed)
        memcpy(fresh, cfg->seed, 32);
    else
        randombytes_buf(fresh, sizeof fresh);
    e = dvm_mint_sqlite_seed(app->db, fresh, cfg->seed != NULL, seed);
    sodium_memzero(fresh, sizeof fresh);
    if (e == DVM_ERR_EXISTS) {
        snprintf(err, errlen, "the seed file does not match the seed stored in %s", cfg->db_path);
        goto fail;
    }
    if (e) {
        snprintf(err, errlen, "cannot read or store the keyset seed in %s", cfg->db_path);
        goto fail;
    }
    dvm_mint_sqlite_vtable(app->db, &app->vt);
    dvm_mint_config mc;
    memset(&mc, 0, sizeof mc);
    memcpy(mc.seed, seed, 32);
    sodium_memzero(seed, sizeof seed);
    mc.n_keysets = 1;
    mc.input_fee_ppk = cfg->input_fee_ppk;
    mc.max_inputs = cfg->max_inputs ? cfg->max_inputs : DVM_MINT_DEFAULT_MAX_INPUTS;
    mc.max_outputs = cfg->max_outputs ? cfg->max_outputs : DVM_MINT_DEFAULT_MAX_OUTPUTS;
    app->max_inputs = mc.max_inputs;
    app->max_outputs = mc.max_outputs;
    e = dvm_mint_new(&app->mint, &mc, &app->vt, &app->rng);
    sodium_memzero(&mc, sizeof mc);
    if (e) {
        snprintf(err, errlen, "cannot derive the keysets: %s", dvm_strerror(e));
        goto fail;
    }
    /* A melt interrupted by a crash between its two commits: the fake
     * backend never reported it paid, so release its inputs (the wallet's
     * recovery then sees them UNSPENT) and put the quote back to UNPAID. */
    dvm_pending_melt *pm = NULL;
    size_t n_pm = 0;
    if (dvm_mint_sqlite_pending_melts(app->db, &pm, &n_pm) == DVM_OK) {
        for (size_t i = 0; i < n_pm; i++) {
            dvm_mint_error me = {0};
            dvm_err se = dvm_mint_melt_settle(app->mint, pm[i].quote,
                                              (const uint8_t (*)[DVM_POINT_BYTES])pm[i].Ys,
                                              pm[i].n_Ys, false, NULL, &me);
            fprintf(stderr, "dvm mint: interrupted melt %s: %s (%zu inputs released)\n",
                    pm[i].quote, se ? me.detail : "released", se ? (size_t)0 : pm[i].n_Ys);
        }
        dvm_mint_sqlite_pending_melts_free(pm, n_pm);
    }
    /* NUT-06 "pubkey": the active keyset's key for amount 1. */
    const dvm_keyset *ks = dvm_mint_active_keyset(app->mint, "sat");
    const uint8_t *k1 = ks ? dvm_keyset_key(ks, 1) : NULL;
    if (k1)
        dvm_cashu_hex_encode(k1, DVM_POINT_BYTES, app->pubkey);
    *out = app;
    return DVM_OK;
fail:
    dvm_mint_app_close(app);
    return e ? e : DVM_ERR_STATE;
}

void dvm_mint_app_close(dvm_mint_app *app)
{
    if (!app)
        return;
    dvm_mint_free(app->mint);
    dvm_mint_sqlite_close(app->db);
    pthread_mutex_destroy(&app->mu);
    free(app);
}

const char *dvm_mint_app_active_keyset(const dvm_mint_app *app)
{
    const dvm_keyset *ks = dvm_mint_active_keyset(app->mint, "sat");
    return ks ? ks->id : "";
}

/* ---- helpers ------------------------------------------------------------- */

/* Reply with the mint logic's error: 400 {"detail","code"}, or 500 for a
 * storage/internal failure the client cannot interpret. */
static void reply_mint_error(dvm_http_reply *out, dvm_err e, const dvm_mint_error *me)
{
    if (me->code && e != DVM_ERR_STATE && e != DVM_ERR_NOMEM) {
        dvm_http_reply_error(out, me->code, "%s", me->detail[0] ? me->detail
                                                                : dvm_nut_error_text(me->code));
        return;
    }
    dvm_http_reply_json(out, 500, json_pack("{s:s, s:i}", "detail",
                                            me->detail[0] ? me->detail : "internal error", "code",
                                            DVM_NUT_GENERIC));
}

/* Parse a request body as a JSON object; replies 400 and returns NULL on
 * failure. */
static json_t *parse_body(const char *body, size_t len, dvm_http_reply *out)
{
    if (!body || len == 0) {
        dvm_http_reply_error(out, DVM_NUT_GENERIC, "request body is empty (expected a JSON object)");
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        dvm_http_reply_error(out, DVM_NUT_GENERIC, "malformed JSON at line %d column %d: %s",
                             je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        dvm_http_reply_error(out, DVM_NUT_GENERIC, "request body must be a JSON object");
        return NULL;
    }
    return j;
}

/* The array field `name` of obj; replies 400 and returns NULL if missing
 * or not an array (unless optional, then returns NULL without a reply). */
static json_t *get_array(json_t *obj, const char *name, bool optional, dvm_http_reply *out)
{
    json_t *a = json_object_get(obj, name);
    if (!a || json_is_null(a)) {
        if (!optional)
            dvm_http_reply_error(out, DVM_NUT_GENERIC, "missing field '%s' (an array)", name);
        return NULL;
    }
    if (!json_is_array(a)) {
        dvm_http_reply_error(out, DVM_NUT_GENERIC, "field '%s' must be an array", name);
        return NULL;
    }
    return a;
}

/* A string field; replies 400 and returns NULL if missing or not a string
 * of at most max bytes. */
static const char *get_string(json_t *obj, const char *name, size_t max, dvm_http_reply *out)
{
    json_t *v = json_object_get(obj, name);
    if (!v) {
        dvm_http_reply_error(out, DVM_NUT_GENERIC, "missing field '%s' (a string)", name);
        return NULL;
    }
    if (!json_is_string(v)) {
        dvm_http_reply_error(out, DVM_NUT_GENERIC, "field '%s' must be a string", name);
        return NULL;
    }
    if (json_string_length(v) > max || strlen(json_string_value(v)) != json_string_length(v)) {
        dvm_http_reply_error(out, DVM_NUT_GENERIC, "field '%s' is too long or contains NUL", name);
        return NULL;
    }
    return json_string_value(v);
}

/* Parse a JSON array of proofs, mapping a count over the limit to 11014. */
static bool parse_proofs(dvm_mint_app *app, json_t *arr, const char *field, dvm_proof **ps,
                         size_t *n, dvm_http_reply *out)
{
    char reason[200];
    if (json_array_size(arr) > app->max_inputs) {
        dvm_http_reply_error(out, DVM_NUT_MAX_INPUTS, "too many %s: %zu (at most %zu)", field,
                             json_array_size(arr), app->max_inputs);
        return false;
    }
    dvm_err e = dvm_cashu_proofs_from_json(dvm_mint_ctx(app->mint), arr, app->max_inputs, field,
                                           ps, n, reason, sizeof reason);
    if (e) {
        dvm_http_reply_error(out, e == DVM_ERR_TOO_LARGE ? DVM_NUT_MAX_INPUTS : DVM_NUT_GENERIC,
                             "%s", reason);
        return false;
    }
    return true;
}

static bool parse_outputs(dvm_mint_app *app, json_t *arr, dvm_blinded_message **ms, size_t *n,
                          dvm_http_reply *out)
{
    char reason[200];
    if (json_array_size(arr) > app->max_outputs) {
        dvm_http_reply_error(out, DVM_NUT_MAX_OUTPUTS, "too many outputs: %zu (at most %zu)",
                             json_array_size(arr), app->max_outputs);
        return false;
    }
    dvm_err e = dvm_cashu_blinded_messages_from_json(dvm_mint_ctx(app->mint), arr, app->max_outputs,
                                                     "outputs", ms, n, reason, sizeof reason);
    if (e) {
        dvm_http_reply_error(out, e == DVM_ERR_TOO_LARGE ? DVM_NUT_MAX_OUTPUTS : DVM_NUT_GENERIC,
                             "%s", reason);
        return false;
    }
    return true;
}

static json_t *mint_quote_json(const dvm_mint_quote *q)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:I}", "quote", q->quote, "request", q->request,
                     "amount", (json_int_t)q->amount, "unit", q->unit, "state",
                     dvm_mint_quote_state_name(q->state), "expiry", (json_int_t)q->expiry);
}

static json_t *melt_quote_json(const dvm_melt_quote *q)
{
    json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:I}", "quote", q->quote, "request",
                          q->request, "amount", (json_int_t)q->amount, "fee_reserve",
                          (json_int_t)q->fee_reserve, "unit", q->unit, "state",
                          dvm_melt_quote_state_name(q->state), "expiry", (json_int_t)q->expiry);
    if (j)
        json_object_set_new(j, "payment_preimage",
                            q->payment_preimage[0] ? json_string(q->payment_preimage) : json_null());
    return j;
}

/* ---- GET /v1/info (NUT-06) --------------------------------------------------- */

static void h_info(void *ctx, const char *param, const char *body, size_t len,
                   dvm_http_reply *out)
{
    (void)param, (void)body, (void)len;
    dvm_mint_app *app = ctx;
    json_t *method4 = json_pack("{s:s, s:s, s:I, s:I, s:b}", "method", "bolt11", "unit", "sat",
                                "min_amount", (json_int_t)1, "max_amount",
                                (json_int_t)1099511627776LL, "description", 0);
    json_t *method5 = json_pack("{s:s, s:s, s:I, s:I}", "method", "bolt11", "unit", "sat",
                                "min_amount", (json_int_t)1, "max_amount",
                                (json_int_t)1099511627776LL);
    json_t *nuts = json_pack("{s:{s:[o], s:b}, s:{s:[o], s:b}, s:{s:b}, s:{s:b}, s:{s:b},"
                             " s:{s:b}, s:{s:b}, s:{s:b}}",
                             "4", "methods", method4, "disabled", 0,
                             "5", "methods", method5, "disabled", 0,
                             "7", "supported", 1, "8", "supported", 0, "9", "supported", 1,
                             "10", "supported", 0, "11", "supported", 0, "12", "supported", 1);
    char version[64];
    snprintf(version, sizeof version, "dvmstream/%s", DVM_VERSION);
    json_t *info = json_pack("{s:s, s:s, s:s, s:s, s:s, s:[], s:s, s:I, s:o}", "name", app->name,
                             "pubkey", app->pubkey, "version", version, "description",
                             "dvmstream Cashu mint with a fake Lightning backend (quotes are paid at once)",
                             "description_long",
                             "For local swarms and tests: never use with real money.", "contact",
                             "motd", "", "time", (json_int_t)(now_ms() / 1000u), "nuts", nuts);
    dvm_http_reply_json(out, info ? 200 : 500, info);
}

/* ---- keys (NUT-01, NUT-02) --------------------------------------------------- */

static void h_keys(void *ctx, const char *param, const char *body, size_t len,
                   dvm_http_reply *out)
{
    (void)param, (void)body, (void)len;
    dvm_mint_app *app = ctx;
    json_t *arr = json_array();
    for (size_t i = 0; i < dvm_mint_keyset_count(app->mint); i++) {
        const dvm_keyset *ks = dvm_mint_keyset(app->mint, i);
        if (ks->active)
            json_array_append_new(arr, dvm_cashu_keyset_to_json(ks));
    }
    dvm_http_reply_json(out, 200, json_pack("{s:o}", "keysets", arr));
}

static void h_keys_id(void *ctx, const char *param, const char *body, size_t len,
                      dvm_http_reply *out)
{
    (void)body, (void)len;
    dvm_mint_app *app = ctx;
    /* cashu-ts sends base64 ids url-safe; ours are hex. */
    const dvm_keyset *ks = dvm_mint_keyset_by_id(app->mint, param);
    if (!ks) {
        dvm_http_reply_error(out, DVM_NUT_KEYSET_UNKNOWN, "keyset %.70s is not known", param);
        return;
    }
    dvm_http_reply_json(out, 200, json_pack("{s:[o]}", "keysets", dvm_cashu_keyset_to_json(ks)));
}

static void h_keysets(void *ctx, const char *param, const char *body, size_t len,
                      dvm_http_reply *out)
{
    (void)param, (void)body, (void)len;
    dvm_mint_app *app = ctx;
    json_t *arr = json_array();
    for (size_t i = 0; i < dvm_mint_keyset_count(app->mint); i++)
        json_array_append_new(arr, dvm_cashu_keyset_info_to_json(dvm_mint_keyset(app->mint, i)));
    dvm_http_reply_json(out, 200, json_pack("{s:o}", "keysets", arr));
}

/* ---- POST /v1/swap (NUT-03) ---------------------------------------------------- */

static void h_swap(void *ctx, const char *param, const char *body, size_t len,
                   dvm_http_reply *out)
{
    (void)param;
    dvm_mint_app *app = ctx;
    json_t *req = parse_body(body, len, out);
    if (!req)
        return;
    dvm_proof *ins = NULL;
    dvm_blinded_message *outs = NULL;
    dvm_blind_signature *sigs = NULL;
    size_t n_in = 0, n_out = 0;
    json_t *ja = get_array(req, "inputs", false, out);
    json_t *jb = ja ? get_array(req, "outputs", false, out) : NULL;
    if (!ja || !jb)
        goto done;
    if (!parse_proofs(app, ja, "inputs", &ins, &n_in, out) ||
        !parse_outputs(app, jb, &outs, &n_out, out))
        goto done;
    sigs = calloc(n_out ? n_out : 1, sizeof *sigs);
    if (!sigs) {
        dvm_http_reply_json(out, 500, NULL);
        goto done;
    }
    dvm_mint_error me = {0};
    pthread_mutex_lock(&app->mu);
    dvm_err e = dvm_mint_swap(app->mint, ins, n_in, outs, n_out, sigs, &me);
    pthread_mutex_unlock(&app->mu);
    if (e) {
        reply_mint_error(out, e, &me);
        goto done;
    }
    dvm_http_reply_json(out, 200, json_pack("{s:o}", "signatures",
                                            dvm_cashu_blind_signatures_to_json(sigs, n_out)));
done:
    free(ins);
    free(outs);
    free(sigs);
    json_decref(req);
}

/* ---- NUT-04 ---------------------------------------------------------------------- */

static void h_mint_quote(void *ctx, const char *param, const char *body, size_t len,
                         dvm_http_reply *out)
{
    (void)param;
    dvm_mint_app *app = ctx;
    json_t *req = parse_body(body, len, out);
    if (!req)
        return;
    json_t *amount = json_object_get(req, "amount");
    const char *unit = NULL;
    if (!json_is_integer(amount) || json_integer_value(amount) <= 0) {
        dvm_http_reply_error(out, DVM_NUT_GENERIC, "field 'amount' must be a positive integer");
        goto done;
    }
    if (!(unit = get_string(req, "unit", DVM_UNIT_MAX, out)))
        goto done;
    dvm_mint_quote q;
    dvm_mint_error me = {0};
    pthread_mutex_lock(&app->mu);
    dvm_err e = dvm_mint_create_mint_quote(app->mint, (uint64_t)json_integer_value(amount), unit,
                                           now_ms(), &q, &me);
    pthread_mutex_unlock(&app->mu);
    if (e)
        reply_mint_error(out, e, &me);
    else
        dvm_http_reply_json(out, 200, mint_quote_json(&q));
done:
    json_decref(req);
}

static void h_mint_quote_get(void *ctx, const char *param, const char *body, size_t len,
                             dvm_http_reply *out)
{
    (void)body, (void)len;
    dvm_mint_app *app = ctx;
    dvm_mint_quote q;
    dvm_mint_error me = {0};
    pthread_mutex_lock(&app->mu);
    dvm_err e = dvm_mint_get_mint_quote(app->mint, param, &q, &me);
    pthread_mutex_unlock(&app->mu);
    if (e)
        reply_mint_error(out, e, &me);
    else
        dvm_http_reply_json(out, 200, mint_quote_json(&q));
}

static void h_mint(void *ctx, const char *param, const char *body, size_t len,
                   dvm_http_reply *out)
{
    (void)param;
    dvm_mint_app *app = ctx;
    json_t *req = parse_body(body, len, out);
    if (!req)
        return;
    dvm_blinded_message *outs = NULL;
    dvm_blind_signature *sigs = NULL;
    size_t n_out = 0;
    const char *quote = get_string(req, "quote", DVM_QUOTE_ID_MAX, out);
    json_t *jb = quote ? get_array(req, "outputs", false, out) : NULL;
    if (!jb || !parse_outputs(app, jb, &outs, &n_out, out))
        goto done;
    sigs = calloc(n_out ? n_out : 1, sizeof *sigs);
    if (!sigs) {
        dvm_http_reply_json(out, 500, NULL);
        goto done;
    }
    dvm_mint_error me = {0};
    pthread_mutex_lock(&app->mu);
    dvm_err e = dvm_mint_mint(app->mint, quote, outs, n_out, now_ms(), sigs, &me);
    pthread_mutex_unlock(&app->mu);
    if (e) {
        reply_mint_error(out, e, &me);
        goto done;
    }
    dvm_http_reply_json(out, 200, json_pack("{s:o}", "signatures",
                                            dvm_cashu_blind_signatures_to_json(sigs, n_out)));
done:
    free(outs);
    free(sigs);
    json_decref(req);
}

/* ---- NUT-05 ---------------------------------------------------------------------- */

static void h_melt_quote(void *ctx, const char *param, const char *body, size_t len,
                         dvm_http_reply *out)
{
    (void)param;
    dvm_mint_app *app = ctx;
    json_t *req = parse_body(body, len, out);
    if (!req)
        return;
    const char *request = get_string(req, "request", DVM_BOLT11_MAX, out);
    const char *unit = request ? get_string(req, "unit", DVM_UNIT_MAX, out) : NULL;
    if (!unit)
        goto done;
    dvm_melt_quote q;
    dvm_mint_error me = {0};
    pthread_mutex_lock(&app->mu);
    dvm_err e = dvm_mint_create_melt_quote(app->mint, request, unit, now_ms(), &q, &me);
    pthread_mutex_unlock(&app->mu);
    if (e)
        reply_mint_error(out, e, &me);
    else
        dvm_http_reply_json(out, 200, melt_quote_json(&q));
done:
    json_decref(req);
}

static void h_melt_quote_get(void *ctx, const char *param, const char *body, size_t len,
                             dvm_http_reply *out)
{
    (void)body, (void)len;
    dvm_mint_app *app = ctx;
    dvm_melt_quote q;
    dvm_mint_error me = {0};
    pthread_mutex_lock(&app->mu);
    dvm_err e = dvm_mint_get_melt_quote(app->mint, param, &q, &me);
    pthread_mutex_unlock(&app->mu);
    if (e)
        reply_mint_error(out, e, &me);
    else
        dvm_http_reply_json(out, 200, melt_quote_json(&q));
}

static void h_melt(void *ctx, const char *param, const char *body, size_t len,
                   dvm_http_reply *out)
{
    (void)param;
    dvm_mint_app *app = ctx;
    json_t *req = parse_body(body, len, out);
    if (!req)
        return;
    dvm_proof *ins = NULL;
    size_t n_in = 0;
    const char *quote = get_string(req, "quote", DVM_QUOTE_ID_MAX, out);
    json_t *ja = quote ? get_array(req, "inputs", false, out) : NULL;
    if (!ja || !parse_proofs(app, ja, "inputs", &ins, &n_in, out))
        goto done;
    /* NUT-08: optional blank outputs for the change. */
    dvm_blinded_message *outs = NULL;
    dvm_blind_signature *change = NULL;
    size_t n_out = 0, n_change = 0;
    json_t *jb = get_array(req, "outputs", true, out);
    if (!jb && out->body)
        goto done;
    if (jb && !parse_outputs(app, jb, &outs, &n_out, out))
        goto done;
    change = calloc(n_out ? n_out : 1, sizeof *change);
    if (!change) {
        free(outs);
        dvm_http_reply_json(out, 500, NULL);
        goto done;
    }
    dvm_melt_quote q;
    dvm_mint_error me = {0};
    pthread_mutex_lock(&app->mu);
    dvm_err e = dvm_mint_melt_with_change(app->mint, quote, ins, n_in, outs, n_out, now_ms(), &q,
                                          change, &n_change, &me);
    pthread_mutex_unlock(&app->mu);
    free(outs);
    if (e) {
        free(change);
        reply_mint_error(out, e, &me);
        goto done;
    }
    json_t *j = melt_quote_json(&q);
    if (j)
        json_object_set_new(j, "change", dvm_cashu_blind_signatures_to_json(change, n_change));
    free(change);
    dvm_http_reply_json(out, 200, j);
done:
    free(ins);
    json_decref(req);
}

/* ---- POST /v1/checkstate (NUT-07) ------------------------------------------------ */

static void h_checkstate(void *ctx, const char *param, const char *body, size_t len,
                         dvm_http_reply *out)
{
    (void)param;
    dvm_mint_app *app = ctx;
    json_t *req = parse_body(body, len, out);
    if (!req)
        return;
    uint8_t (*Ys)[DVM_POINT_BYTES] = NULL;
    dvm_proof_state *states = NULL;
    json_t *arr = get_array(req, "Ys", false, out);
    if (!arr)
        goto done;
    size_t n = json_array_size(arr);
    if (n > app->max_inputs) {
        dvm_http_reply_error(out, DVM_NUT_MAX_INPUTS, "too many Ys: %zu (at most %zu)", n,
                             app->max_inputs);
        goto done;
    }
    Ys = calloc(n ? n : 1, sizeof *Ys);
    states = calloc(n ? n : 1, sizeof *states);
    if (!Ys || !states) {
        dvm_http_reply_json(out, 500, NULL);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *y = json_array_get(arr, i);
        if (!json_is_string(y) ||
            dvm_cashu_hex_decode(json_string_value(y), Ys[i], DVM_POINT_BYTES) != DVM_OK ||
            dvm_cashu_point_check(dvm_mint_ctx(app->mint), Ys[i]) != DVM_OK) {
            dvm_http_reply_error(out, DVM_NUT_GENERIC, "Ys[%zu]: not a valid point (66 hex chars)", i);
            goto done;
        }
    }
    dvm_mint_error me = {0};
    pthread_mutex_lock(&app->mu);
    dvm_err e = dvm_mint_checkstate(app->mint, (const uint8_t (*)[DVM_POINT_BYTES])Ys, n, states, &me);
    pthread_mutex_unlock(&app->mu);
    if (e) {
        reply_mint_error(out, e, &me);
        goto done;
    }
    json_t *ja = json_array();
    for (size_t i = 0; i < n; i++) {
        char hex[2 * DVM_POINT_BYTES + 1];
        dvm_cashu_hex_encode(Ys[i], DVM_POINT_BYTES, hex);
        json_array_append_new(ja, json_pack("{s:s, s:s, s:n}", "Y", hex, "state",
                                            dvm_proof_state_name(states[i]), "witness"));
    }
    dvm_http_reply_json(out, 200, json_pack("{s:o}", "states", ja));
done:
    free(Ys);
    free(states);
    json_decref(req);
}

/* ---- POST /v1/restore (NUT-09) ----------------------------------------------------- */

static void h_restore(void *ctx, const char *param, const char *body, size_t len,
                      dvm_http_reply *out)
{
    (void)param;
    dvm_mint_app *app = ctx;
    json_t *req = parse_body(body, len, out);
    if (!req)
        return;
    dvm_blinded_message *outs = NULL;
    dvm_blind_signature *sigs = NULL;
    uint8_t (*B_s)[DVM_POINT_BYTES] = NULL;
    bool *found = NULL;
    size_t n = 0;
    json_t *jb = get_array(req, "outputs", false, out);
    if (!jb || !parse_outputs(app, jb, &outs, &n, out))
        goto done;
    sigs = calloc(n ? n : 1, sizeof *sigs);
    B_s = calloc(n ? n : 1, sizeof *B_s);
    found = calloc(n ? n : 1, sizeof *found);
    if (!sigs || !B_s || !found) {
        dvm_http_reply_json(out, 500, NULL);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        memcpy(B_s[i], outs[i].B_, DVM_POINT_BYTES);
    if (dvm_mint_sqlite_restore(app->db, (const uint8_t (*)[DVM_POINT_BYTES])B_s, n, found, sigs)) {
        dvm_http_reply_json(out, 500, json_pack("{s:s, s:i}", "detail", "storage failure", "code",
                                                DVM_NUT_GENERIC));
        goto done;
    }
    json_t *jo = json_array(), *js = json_array();
    for (size_t i = 0; i < n; i++) {
        if (!found[i])
            continue;
        json_array_append_new(jo, dvm_cashu_blinded_message_to_json(&outs[i]));
        json_array_append_new(js, dvm_cashu_blind_signature_to_json(&sigs[i]));
    }
    dvm_http_reply_json(out, 200, json_pack("{s:o, s:O, s:o}", "outputs", jo, "signatures", js,
                                            "promises", js));
done:
    free(outs);
    free(sigs);
    free(B_s);
    free(found);
    json_decref(req);
}

static const dvm_http_route ROUTES[] = {
    {"GET", "/v1/info", false, h_info},
    {"GET", "/v1/keys", false, h_keys},
    {"GET", "/v1/keys/", true, h_keys_id},
    {"GET", "/v1/keysets", false, h_keysets},
    {"POST", "/v1/swap", false, h_swap},
    {"POST", "/v1/mint/quote/bolt11", false, h_mint_quote},
    {"GET", "/v1/mint/quote/bolt11/", true, h_mint_quote_get},
    {"POST", "/v1/mint/bolt11", false, h_mint},
    {"POST", "/v1/melt/quote/bolt11", false, h_melt_quote},
    {"GET", "/v1/melt/quote/bolt11/", true, h_melt_quote_get},
    {"POST", "/v1/melt/bolt11", false, h_melt},
    {"POST", "/v1/checkstate", false, h_checkstate},
    {"POST", "/v1/restore", false, h_restore},
};

const dvm_http_route *dvm_mint_app_routes(size_t *n)
{
    *n = sizeof ROUTES / sizeof ROUTES[0];
    return ROUTES;
}
