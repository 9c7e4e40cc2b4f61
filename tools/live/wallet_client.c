/* dvmstream — the HTTP Cashu wallet (see wallet_client.h). */
#include "live/wallet_client.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "cashu/crypto.h"
#include "cashu/nut_json.h"
#include "cashu/wallet.h"
#include "live/wallet_http.h"
#include "live/wallet_store.h"

#define CLAIM_BATCH 200
#define MAX_KEYSETS 32

struct dvm_wallet_client {
    dvm_mint_client *http;
    dvm_wallet_store *store;
    dvm_cashu_ctx *ctx;
    dvm_rng rng;
    dvm_keyset *keysets;
    size_t n_keysets;
    bool loaded;
    char last_error[256];
    long last_code;
    uint64_t rejected_sats; /* set by run_swap: inputs it marked REJECTED */
    size_t max_array;       /* inputs/outputs per request (NUT-06 max_array_length) */
    dvm_wallet_split_progress_fn progress;
    void *progress_ctx;
};

static void sodium_fill(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    randombytes_buf(buf, len);
}

static dvm_err set_err(dvm_wallet_client *w, dvm_err e, long code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static dvm_err set_err(dvm_wallet_client *w, dvm_err e, long code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->last_error, sizeof w->last_error, fmt, ap);
    va_end(ap);
    w->last_code = code;
    return e;
}

/* Record an HTTP failure. */
static dvm_err http_err(dvm_wallet_client *w, dvm_err e, const char *what,
                        const dvm_mint_http_error *he)
{
    return set_err(w, e, he->code, "%s: %s%s", what, he->detail,
                   e == DVM_ERR_AGAIN ? " (mint unreachable; retry later)" : "");
}

const char *dvm_wallet_client_last_error(const dvm_wallet_client *w)
{
    return w->last_error;
}

long dvm_wallet_client_last_code(const dvm_wallet_client *w)
{
    return w->last_code;
}

const char *dvm_wallet_client_mint_url(const dvm_wallet_client *w)
{
    return dvm_mint_client_url(w->http);
}

dvm_err dvm_wallet_client_open(const char *mint_url, const char *db_path, long timeout_ms,
                               dvm_wallet_client **out, char *err, size_t errlen)
{
    *out = NULL;
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return DVM_ERR_STATE;
    }
    dvm_wallet_client *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return DVM_ERR_NOMEM;
    }
    w->rng.fill = sodium_fill;
    w->max_array = DVM_WALLET_MAX_OUTPUTS;
    dvm_err e = dvm_mint_client_new(mint_url, timeout_ms, &w->http);
    if (e) {
        snprintf(err, errlen, "bad mint URL '%s'", mint_url ? mint_url : "");
        goto fail;
    }
    e = dvm_cashu_ctx_new(&w->ctx, &w->rng);
    if (e) {
        snprintf(err, errlen, "cannot create the crypto context");
        goto fail;
    }
    e = dvm_wallet_store_open(db_path, &w->store, err, errlen);
    if (e)
        goto fail;
    *out = w;
    return DVM_OK;
fail:
    dvm_wallet_client_close(w);
    return e;
}

void dvm_wallet_client_close(dvm_wallet_client *w)
{
    if (!w)
        return;
    dvm_mint_client_free(w->http);
    dvm_wallet_store_close(w->store);
    dvm_cashu_ctx_free(w->ctx);
    free(w->keysets);
    free(w);
}

/* ---- keysets ------------------------------------------------------------------ */

/* NUT-06 (optional top-level max_array_length, nuts#425): the most
 * inputs or outputs the mint takes in one request. Best effort: a mint
 * that does not publish it (or whose /v1/info fails) gets 1000, the
 * common default; values above DVM_WALLET_MAX_OUTPUTS are capped to it,
 * values below 64 (too few for a token and its change) are ignored. */
static void load_limits(dvm_wallet_client *w)
{
    dvm_mint_http_error he;
    json_t *r = NULL;
    size_t lim = DVM_WALLET_MAX_OUTPUTS;
    if (dvm_mint_client_get(w->http, "/v1/info", &r, &he) == DVM_OK) {
        json_t *m = json_object_get(r, "max_array_length");
        if (json_is_integer(m) && json_integer_value(m) >= 64 &&
            json_integer_value(m) < DVM_WALLET_MAX_OUTPUTS)
            lim = (size_t)json_integer_value(m);
    }
    json_decref(r);
    w->max_array = lim;
}

size_t dvm_wallet_client_max_array(const dvm_wallet_client *w)
{
    return w->max_array;
}

void dvm_wallet_client_on_split_progress(dvm_wallet_client *w, dvm_wallet_split_progress_fn fn,
                                         void *ctx)
{
    w->progress = fn;
    w->progress_ctx = ctx;
}

dvm_err dvm_wallet_client_set_sync(dvm_wallet_client *w, dvm_wallet_sync mode)
{
    if (mode != DVM_WALLET_SYNC_FULL && mode != DVM_WALLET_SYNC_NORMAL)
        return set_err(w, DVM_ERR_INVALID, 0, "unknown sync mode %d", (int)mode);
    dvm_err e = dvm_wallet_store_set_sync(w->store, mode == DVM_WALLET_SYNC_FULL);
    return e ? set_err(w, e, 0, "cannot set the database sync mode") : DVM_OK;
}

dvm_err dvm_wallet_client_load_keysets(dvm_wallet_client *w)
{
    dvm_mint_http_error he;
    json_t *r = NULL;
    dvm_err e = dvm_mint_client_get(w->http, "/v1/keysets", &r, &he);
    if (e)
        return http_err(w, e, "GET /v1/keysets", &he);
    json_t *arr = json_object_get(r, "keysets");
    if (!json_is_array(arr)) {
        json_decref(r);
        return set_err(w, DVM_ERR_INVALID, 0, "GET /v1/keysets: no 'keysets' array");
    }
    dvm_keyset *ks = calloc(MAX_KEYSETS, sizeof *ks);
    if (!ks) {
        json_decref(r);
        return DVM_ERR_NOMEM;
    }
    size_t n = 0;
    size_t i;
    json_t *item;
    json_array_foreach(arr, i, item) {
        json_t *id = json_object_get(item, "id"), *unit = json_object_get(item, "unit");
        if (!json_is_string(id) || !json_is_string(unit) ||
            strcmp(json_string_value(unit), "sat") != 0)
            continue;
        if (n == MAX_KEYSETS)
            break;
        char path[128];
        if (json_string_length(id) > DVM_KEYSET_ID_MAX)
            continue;
        snprintf(path, sizeof path, "/v1/keys/%s", json_string_value(id));
        json_t *kr = NULL;
        e = dvm_mint_client_get(w->http, path, &kr, &he);
        if (e) {
            free(ks);
            json_decref(r);
            return http_err(w, e, path, &he);
        }
        json_t *karr = json_object_get(kr, "keysets");
        char reason[200] = "";
        dvm_keyset *k = &ks[n];
        memset(k, 0, sizeof *k);
        e = json_is_array(karr) && json_array_size(karr) >= 1
                ? dvm_cashu_keyset_from_json(w->ctx, json_array_get(karr, 0), k, reason, sizeof reason)
                : DVM_ERR_INVALID;
        json_decref(kr);
        if (e || strcmp(k->id, json_string_value(id)) != 0) {
            free(ks);
            json_decref(r);
            return set_err(w, DVM_ERR_INVALID, 0, "%s: bad keyset: %s", path, reason);
        }
        json_t *active = json_object_get(item, "active");
        json_t *fee = json_object_get(item, "input_fee_ppk");
        k->active = json_is_boolean(active) ? json_is_true(active) : true;
        k->input_fee_ppk = json_is_integer(fee) && json_integer_value(fee) >= 0
                               ? (uint64_t)json_integer_value(fee)
                               : 0;
        n++;
    }
    json_decref(r);
    free(w->keysets);
    w->keysets = ks;
    w->n_keysets = n;
    w->loaded = true;
    load_limits(w);
    return DVM_OK;
}

static dvm_err ensure_keysets(dvm_wallet_client *w)
{
    return w->loaded ? DVM_OK : dvm_wallet_client_load_keysets(w);
}

dvm_err dvm_wallet_client_keysets(dvm_wallet_client *w, const dvm_keyset **ks, size_t *n)
{
    dvm_err e = ensure_keysets(w);
    if (e)
        return e;
    *ks = w->keysets;
    *n = w->n_keysets;
    return DVM_OK;
}

/* The active keyset with the lowest input fee (as cashu-ts picks). */
static const dvm_keyset *active_keyset(dvm_wallet_client *w)
{
    const dvm_keyset *best = NULL;
    for (size_t i = 0; i < w->n_keysets; i++)
        if (w->keysets[i].active && (!best || w->keysets[i].input_fee_ppk < best->input_fee_ppk))
            best = &w->keysets[i];
    return best;
}

static dvm_err need_active(dvm_wallet_client *w, const dvm_keyset **ks)
{
    dvm_err e = ensure_keysets(w);
    if (e)
        return e;
    *ks = active_keyset(w);
    if (!*ks)
        return set_err(w, DVM_ERR_PROTO, 0, "the mint has no active keyset of unit sat");
    return DVM_OK;
}

dvm_err dvm_wallet_client_balance(dvm_wallet_client *w, dvm_wallet_balance *b)
{
    memset(b, 0, sizeof *b);
    const char *m = dvm_mint_client_url(w->http);
    dvm_err e = dvm_wallet_store_sum(w->store, m, DVM_WPROOF_UNSPENT, &b->unspent);
    if (!e)
        e = dvm_wallet_store_sum(w->store, m, DVM_WPROOF_RESERVED, &b->reserved);
    if (!e)
        e = dvm_wallet_store_sum(w->store, m, DVM_WPROOF_PENDING, &b->pending);
    if (!e)
        e = dvm_wallet_store_sum(w->store, m, DVM_WPROOF_INCOMING, &b->incoming);
    if (e)
        return set_err(w, e, 0, "cannot read the wallet database");
    return DVM_OK;
}

/* ---- signatures -> proofs ----------------------------------------------------------- */

/* Parse {"signatures": [...]} for n outputs and unblind them with their
 * keysets (each output's id) into proofs[0..n). */
static dvm_err unblind_reply(dvm_wallet_client *w, json_t *reply, const char *field,
                             const dvm_wallet_output *outs, size_t n, dvm_proof *proofs)
{
    json_t *arr = json_object_get(reply, field);
    dvm_blind_signature *sigs = NULL;
    size_t ns = 0;
    char reason[200] = "";
    if (!json_is_array(arr))
        return set_err(w, DVM_ERR_INVALID, 0, "mint reply has no '%s' array", field);
    dvm_err e = dvm_cashu_blind_signatures_from_json(w->ctx, arr, n, field, &sigs, &ns, reason,
                                                     sizeof reason);
    if (e)
        return set_err(w, DVM_ERR_INVALID, 0, "mint reply: %s", reason);
    if (ns != n) {
        free(sigs);
        return set_err(w, DVM_ERR_INVALID, 0, "mint returned %zu signatures for %zu outputs", ns, n);
    }
    for (size_t i = 0; i < n && e == DVM_OK; i++) {
        const dvm_keyset *ks = dvm_keyset_find(w->keysets, w->n_keysets, outs[i].msg.id);
        if (!ks) {
            e = set_err(w, DVM_ERR_INVALID, 0, "output keyset %s not loaded", outs[i].msg.id);
            break;
        }
        e = dvm_wallet_unblind(w->ctx, ks, &outs[i], &sigs[i], 1, true, &proofs[i], reason,
                               sizeof reason);
        if (e)
            set_err(w, e, 0, "mint signature %zu: %s", i, reason);
    }
    free(sigs);
    return e;
}

static json_t *outputs_json(const dvm_wallet_output *outs, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, dvm_cashu_blinded_message_to_json(&outs[i].msg));
    return a;
}

/* ---- swap core ------------------------------------------------------------------------- */

/* NUT codes that say a single input proof itself is bad (malformed,
 * forged, spent, duplicated, unknown keyset): such a proof can never be
 * claimed. */
static bool proof_fault(long code)
{
    return code == DVM_NUT_GENERIC || code == DVM_NUT_PROOF_VERIFICATION_FAILED ||
           code == DVM_NUT_PROOFS_SPENT || code == DVM_NUT_DUPLICATE_INPUTS ||
           code == DVM_NUT_KEYSET_UNKNOWN;
}

/* The mint refused swap `op` (nothing happened there). A single bad input
 * becomes REJECTED; with several inputs and 11001, the spent ones (asked
 * with checkstate) become REJECTED and the rest go back to `prev`;
 * otherwise every input goes back to `prev`. w->rejected_sats counts what
 * was rejected. */
static dvm_err swap_refused(dvm_wallet_client *w, int64_t op, const dvm_wallet_swap *sw,
                            dvm_wproof_state prev, long code)
{
    if (sw->n_inputs == 1 && proof_fault(code)) {
        w->rejected_sats += sw->inputs[0].amount;
        return dvm_wallet_store_op_finish(w->store, op, NULL, 0, NULL, DVM_WPROOF_REJECTED);
    }
    dvm_err e = dvm_wallet_store_op_revert(w->store, op, -1);
    if (e || code != DVM_NUT_PROOFS_SPENT)
        return e;
    dvm_proof_state *st = calloc(sw->n_inputs, sizeof *st);
    if (!st)
        return DVM_ERR_NOMEM;
    char keep_err[sizeof w->last_error];
    long keep_code = w->last_code;
    memcpy(keep_err, w->last_error, sizeof keep_err);
    if (dvm_wallet_client_check(w, sw->inputs, sw->n_inputs, st) == DVM_OK) {
        for (size_t i = 0; i < sw->n_inputs; i++)
            if (st[i] == DVM_PROOF_SPENT &&
                dvm_wallet_store_move(w->store, &sw->inputs[i], 1, prev, DVM_WPROOF_REJECTED) == DVM_OK)
                w->rejected_sats += sw->inputs[i].amount;
    }
    memcpy(w->last_error, keep_err, sizeof keep_err);
    w->last_code = keep_code;
    free(st);
    return DVM_OK;
}

/* Run a prepared swap already recorded as operation `op` (inputs were in
 * state `prev`). On success the new proofs are stored (token outputs
 * RESERVED if reserve_tokens) and *news (if non-NULL) gets a malloc'd copy
 * of them. */
static dvm_err run_swap(dvm_wallet_client *w, int64_t op, const dvm_wallet_swap *sw,
                        dvm_wproof_state prev, bool reserve_tokens, dvm_proof **news)
{
    if (news)
        *news = NULL;
    w->rejected_sats = 0;
    json_t *req = json_pack("{s:o, s:o}", "inputs", dvm_cashu_proofs_to_json(sw->inputs, sw->n_inputs),
                            "outputs", outputs_json(sw->outputs, sw->n_outputs));
    if (!req)
        return set_err(w, DVM_ERR_NOMEM, 0, "cannot build the swap request");
    json_t *reply = NULL;
    dvm_mint_http_error he;
    dvm_err e = dvm_mint_client_post(w->http, "/v1/swap", req, &reply, &he);
    json_decref(req);
    if (e == DVM_ERR_AGAIN)
        return http_err(w, e, "POST /v1/swap", &he); /* op stays open: recover */
    if (e) {
        http_err(w, e, "POST /v1/swap", &he);
        dvm_err e2 = swap_refused(w, op, sw, prev, he.code);
        return e2 ? e2 : e;
    }
    dvm_proof *proofs = calloc(sw->n_outputs ? sw->n_outputs : 1, sizeof *proofs);
    bool *reserved = calloc(sw->n_outputs ? sw->n_outputs : 1, sizeof *reserved);
    if (!proofs || !reserved) {
        json_decref(reply);
        free(proofs);
        free(reserved);
        return DVM_ERR_NOMEM;
    }
    e = unblind_reply(w, reply, "signatures", sw->outputs, sw->n_outputs, proofs);
    json_decref(reply);
    if (e) {
        /* The swap happened but the reply is unusable: leave the op open;
         * recover restores the signatures. */
        free(proofs);
        free(reserved);
        return e;
    }
    for (size_t i = 0; i < sw->n_outputs; i++)
        reserved[i] = reserve_tokens && i < sw->n_tokens * sw->per_token;
    e = dvm_wallet_store_op_finish(w->store, op, proofs, sw->n_outputs, reserved, DVM_WPROOF_SPENT);
    free(reserved);
    if (e) {
        free(proofs);
        return set_err(w, e, 0, "cannot store the new proofs");
    }
    if (news)
        *news = proofs;
    else
        free(proofs);
    return DVM_OK;
}

static int *token_tags(const dvm_wallet_swap *sw)
{
    int *tags = calloc(sw->n_outputs ? sw->n_outputs : 1, sizeof *tags);
    if (!tags)
        return NULL;
    for (size_t i = 0; i < sw->n_outputs; i++)
        tags[i] = sw->per_token && i < sw->n_tokens * sw->per_token ? (int)(i / sw->per_token) : -1;
    return tags;
}

/* ---- mint ------------------------------------------------------------------------------------ */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Mint `amount` against a PAID quote; outputs recorded first. */
static dvm_err mint_with_quote(dvm_wallet_client *w, const char *quote, uint64_t amount,
                               const dvm_keyset *ks)
{
    uint64_t amounts[64];
    size_t n = 0, per = 0;
    dvm_err e = dvm_wallet_plan(amount, 0, 0, amounts, 64, &n, &per);
    if (e)
        return set_err(w, e, 0, "cannot split %llu sats", (unsigned long long)amount);
    dvm_wallet_output outs[64];
    e = dvm_wallet_make_outputs(w->ctx, &w->rng, ks, amounts, n, outs);
    if (e)
        return set_err(w, e, 0, "cannot build outputs");
    int64_t op;
    e = dvm_wallet_store_op_begin(w->store, DVM_WOP_MINT, dvm_mint_client_url(w->http), quote,
                                  NULL, 0, DVM_WPROOF_UNSPENT, false, outs, NULL, n, &op);
    if (e)
        return set_err(w, e, 0, "cannot record the mint operation");
    json_t *req = json_pack("{s:s, s:o}", "quote", quote, "outputs", outputs_json(outs, n));
    json_t *reply = NULL;
    dvm_mint_http_error he;
    e = req ? dvm_mint_client_post(w->http, "/v1/mint/bolt11", req, &reply, &he) : DVM_ERR_NOMEM;
    json_decref(req);
    if (e == DVM_ERR_AGAIN)
        return http_err(w, e, "POST /v1/mint/bolt11", &he);
    if (e) {
        http_err(w, e, "POST /v1/mint/bolt11", &he);
        dvm_wallet_store_op_revert(w->store, op, -1);
        return e;
    }
    dvm_proof proofs[64];
    e = unblind_reply(w, reply, "signatures", outs, n, proofs);
    json_decref(reply);
    if (e)
        return e;
    e = dvm_wallet_store_op_finish(w->store, op, proofs, n, NULL, DVM_WPROOF_SPENT);
    if (e)
        return set_err(w, e, 0, "cannot store the minted proofs");
    return DVM_OK;
}

dvm_err dvm_wallet_client_mint(dvm_wallet_client *w, uint64_t amount, uint64_t timeout_ms,
                               uint64_t *minted)
{
    if (minted)
        *minted = 0;
    if (amount == 0 || amount > DVM_CASHU_MAX_AMOUNT)
        return set_err(w, DVM_ERR_INVALID, 0, "amount must be in 1..2^53-1 sats");
    const dvm_keyset *ks;
    dvm_err e = need_active(w, &ks);
    if (e)
        return e;
    json_t *req = json_pack("{s:I, s:s}", "amount", (json_int_t)amount, "unit", "sat");
    json_t *q = NULL;
    dvm_mint_http_error he;
    e = dvm_mint_client_post(w->http, "/v1/mint/quote/bolt11", req, &q, &he);
    json_decref(req);
    if (e)
        return http_err(w, e, "POST /v1/mint/quote/bolt11", &he);
    char quote[DVM_QUOTE_ID_MAX + 1];
    json_t *jq = json_object_get(q, "quote"), *js = json_object_get(q, "state");
    if (!json_is_string(jq) || json_string_length(jq) > DVM_QUOTE_ID_MAX || !json_is_string(js)) {
        json_decref(q);
        return set_err(w, DVM_ERR_INVALID, 0, "mint quote reply lacks quote/state");
    }
    snprintf(quote, sizeof quote, "%s", json_string_value(jq));
    char state[16];
    snprintf(state, sizeof state, "%s", json_string_value(js));
    json_decref(q);
    /* Poll until PAID (bounded). */
    uint64_t deadline = mono_ms() + (timeout_ms ? timeout_ms : 30000);
    long backoff = 50;
    while (strcmp(state, "PAID") != 0) {
        if (strcmp(state, "ISSUED") == 0)
            return set_err(w, DVM_ERR_PROTO, DVM_NUT_QUOTE_ISSUED, "quote %s already issued", quote);
        if (mono_ms() >= deadline)
            return set_err(w, DVM_ERR_AGAIN, DVM_NUT_QUOTE_NOT_PAID,
                           "quote %s not paid within %llu ms", quote,
                           (unsigned long long)timeout_ms);
        sleep_ms(backoff);
        if (backoff < 1000)
            backoff *= 2;
        char path[160];
        snprintf(path, sizeof path, "/v1/mint/quote/bolt11/%s", quote);
        e = dvm_mint_client_get(w->http, path, &q, &he);
        if (e)
            return http_err(w, e, path, &he);
        js = json_object_get(q, "state");
        snprintf(state, sizeof state, "%s", json_is_string(js) ? json_string_value(js) : "?");
        json_decref(q);
    }
    e = mint_with_quote(w, quote, amount, ks);
    if (e == DVM_OK && minted)
        *minted = amount;
    return e;
}

/* ---- split / send ------------------------------------------------------------------------------- */

void dvm_wallet_tokens_free(dvm_token *tokens, size_t n)
{
    if (!tokens)
        return;
    for (size_t i = 0; i < n; i++)
        dvm_token_free(&tokens[i]);
    free(tokens);
}

static dvm_err make_token(dvm_wallet_client *w, const dvm_proof *p, size_t n, dvm_token *t)
{
    memset(t, 0, sizeof *t);
    t->version = 4;
    snprintf(t->mint, sizeof t->mint, "%s", dvm_mint_client_url(w->http));
    snprintf(t->unit, sizeof t->unit, "sat");
    t->has_unit = true;
    t->proofs = calloc(n ? n : 1, sizeof *t->proofs);
    if (!t->proofs)
        return DVM_ERR_NOMEM;
    memcpy(t->proofs, p, n * sizeof *p);
    t->n_proofs = n;
    return DVM_OK;
}

/* Put the proofs of ts[0..n) back from RESERVED to UNSPENT (a split that
 * failed part way). Keeps the last error. */
static void release_tokens(dvm_wallet_client *w, dvm_token *ts, size_t n)
{
    char keep[sizeof w->last_error];
    long code = w->last_code;
    memcpy(keep, w->last_error, sizeof keep);
    for (size_t i = 0; i < n; i++)
        dvm_wallet_store_move(w->store, ts[i].proofs, ts[i].n_proofs, DVM_WPROOF_RESERVED,
                              DVM_WPROOF_UNSPENT);
    memcpy(w->last_error, keep, sizeof keep);
    w->last_code = code;
}

static unsigned popcount64(uint64_t v)
{
    unsigned c = 0;
    for (; v; v &= v - 1)
        c++;
    return c;
}

/* Reuse UNSPENT proofs already shaped as tokens: a proof worth exactly
 * token_sats, then groups of proofs that are exactly token_sats's binary
 * split (e.g. 8 + 2 for 10, as a released token). They move to RESERVED in
 * one transaction; ts[*done ..) get the tokens. Only proofs of loaded
 * keysets are used. */
static dvm_err reuse_shaped(dvm_wallet_client *w, uint64_t token_sats, size_t n_tokens,
                            dvm_token *ts, size_t *done)
{
    dvm_proof *all = NULL;
    size_t n_all = 0;
    dvm_err e = dvm_wallet_store_list(w->store, dvm_mint_client_url(w->http), DVM_WPROOF_UNSPENT,
                                      &all, &n_all);
    if (e)
        return set_err(w, e, 0, "cannot read the wallet database");
    size_t per = popcount64(token_sats);
    /* pick[] lists the chosen proofs token by token; grp_len[t] is token
     * t's proof count. */
    size_t *pick = calloc(n_all ? n_all : 1, sizeof *pick);
    size_t *grp_len = calloc(n_tokens, sizeof *grp_len);
    bool *used = calloc(n_all ? n_all : 1, sizeof *used);
    size_t n_pick = 0, k = 0;
    if (!pick || !grp_len || !used) {
        e = DVM_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < n_all && k < n_tokens; i++)
        if (all[i].amount == token_sats && dvm_keyset_find(w->keysets, w->n_keysets, all[i].id)) {
            used[i] = true;
            pick[n_pick++] = i;
            grp_len[k++] = 1;
        }
    if (per > 1) {
        /* Cursor per bit: next unused proof of that amount. */
        size_t cur[64] = {0};
        while (k < n_tokens) {
            size_t start = n_pick;
            bool ok = true;
            for (unsigned bit = 0; bit < 64 && ok; bit++) {
                uint64_t a = (uint64_t)1 << bit;
                if (!(token_sats & a))
                    continue;
                while (cur[bit] < n_all &&
                       (used[cur[bit]] || all[cur[bit]].amount != a ||
                        !dvm_keyset_find(w->keysets, w->n_keysets, all[cur[bit]].id)))
                    cur[bit]++;
                if (cur[bit] == n_all) {
                    ok = false;
                    break;
                }
                pick[n_pick++] = cur[bit]++;
            }
            if (!ok) {
                n_pick = start;
                break;
            }
            for (size_t j = start; j < n_pick; j++)
                used[pick[j]] = true;
            grp_len[k++] = per;
        }
    }
    if (k == 0)
        goto done;
    dvm_proof *sel = calloc(n_pick, sizeof *sel);
    if (!sel) {
        e = DVM_ERR_NOMEM;
        goto done;
    }
    for (size_t j = 0; j < n_pick; j++)
        sel[j] = all[pick[j]];
    e = dvm_wallet_store_move(w->store, sel, n_pick, DVM_WPROOF_UNSPENT, DVM_WPROOF_RESERVED);
    if (e) {
        free(sel);
        e = set_err(w, e, 0, "cannot reserve proofs");
        goto done;
    }
    size_t off = 0, made = 0;
    for (; made < k && e == DVM_OK; made++) {
        e = make_token(w, sel + off, grp_len[made], &ts[*done + made]);
        off += grp_len[made];
    }
    if (e) {
        /* Out of memory: nothing handed out, all back to UNSPENT. */
        dvm_wallet_store_move(w->store, sel, n_pick, DVM_WPROOF_RESERVED, DVM_WPROOF_UNSPENT);
        for (size_t t = 0; t < made; t++)
            dvm_token_free(&ts[*done + t]);
    } else {
        *done += k;
    }
    free(sel);
done:
    free(all);
    free(pick);
    free(grp_len);
    free(used);
    return e;
}

/* One durable NUT-03 swap of `n_in` UNSPENT inputs into k micro-tokens (k
 * may be 0: a consolidation, everything as change); the tokens go to
 * ts[*done ..). */
static dvm_err split_swap(dvm_wallet_client *w, const dvm_keyset *ks, const dvm_proof *ins,
                          size_t n_in, uint64_t token_sats, size_t k, dvm_token *ts, size_t *done)
{
    dvm_wallet_swap sw;
    memset(&sw, 0, sizeof sw);
    int *tags = NULL;
    dvm_proof *news = NULL;
    char reason[200];
    dvm_err e = dvm_wallet_swap_prepare(w->ctx, &w->rng, w->keysets, w->n_keysets, ks, ins, n_in,
                                        token_sats, k, &sw, reason, sizeof reason);
    if (e) {
        e = set_err(w, e, 0, "cannot plan the swap: %s", reason);
        goto done;
    }
    if (!(tags = token_tags(&sw))) {
        e = DVM_ERR_NOMEM;
        goto done;
    }
    int64_t op;
    e = dvm_wallet_store_op_begin(w->store, DVM_WOP_SWAP, dvm_mint_client_url(w->http), NULL,
                                  sw.inputs, sw.n_inputs, DVM_WPROOF_UNSPENT, false, sw.outputs,
                                  tags, sw.n_outputs, &op);
    if (e) {
        e = set_err(w, e, 0, "cannot record the swap");
        goto done;
    }
    if ((e = run_swap(w, op, &sw, DVM_WPROOF_UNSPENT, true, &news)))
        goto done;
    size_t made = 0;
    for (; made < k && e == DVM_OK; made++)
        e = make_token(w, news + made * sw.per_token, sw.per_token, &ts[*done + made]);
    if (e) {
        /* Out of memory after the swap: the tokens' proofs are stored
         * (RESERVED); give them back to the balance. */
        for (size_t i = 0; i < k; i++)
            dvm_wallet_store_move(w->store, news + i * sw.per_token, sw.per_token,
                                  DVM_WPROOF_RESERVED, DVM_WPROOF_UNSPENT);
        for (size_t i = 0; i < made; i++)
            dvm_token_free(&ts[*done + i]);
        goto done;
    }
    *done += k;
done:
    free(tags);
    free(news);
    dvm_wallet_swap_free(&sw);
    return e;
}

/* Plan and run the next swap of a split: up to `want` tokens, as many as
 * fit the mint's per-request limit on inputs and outputs. When the
 * inputs needed for even one token exceed the limit (a wallet of many
 * small proofs), first consolidates the smallest ones (a swap of `limit`
 * inputs into their binary split). */
static dvm_err split_step(dvm_wallet_client *w, const dvm_keyset *ks, uint64_t token_sats,
                          size_t want, dvm_token *ts, size_t *done)
{
    size_t lim = w->max_array, per = popcount64(token_sats);
    dvm_proof *all = NULL;
    size_t n_all = 0;
    dvm_err e = dvm_wallet_store_list(w->store, dvm_mint_client_url(w->http), DVM_WPROOF_UNSPENT,
                                      &all, &n_all);
    if (e)
        return set_err(w, e, 0, "cannot read the wallet database");
    bool *chosen = calloc(n_all ? n_all : 1, sizeof *chosen);
    dvm_proof *ins = calloc(n_all ? n_all : 1, sizeof *ins);
    if (!chosen || !ins) {
        e = DVM_ERR_NOMEM;
        goto done;
    }
    if (per > lim) {
        e = set_err(w, DVM_ERR_LIMIT, 0, "a token of %llu sats needs %zu outputs; the mint takes %zu",
                    (unsigned long long)token_sats, per, lim);
        goto done;
    }
    size_t k = want < lim / per ? want : lim / per;
    /* Each round lowers k or returns: bounded. */
    while (k > 0) {
        uint64_t sum = 0, fee = 0;
        memset(chosen, 0, n_all * sizeof *chosen);
        e = dvm_wallet_select(all, n_all, token_sats * k, w->keysets, w->n_keysets, chosen, &sum,
                              &fee);
        if (e) {
            uint64_t have = 0;
            dvm_wallet_total(all, n_all, &have);
            e = set_err(w, DVM_ERR_LIMIT, 0, "balance %llu sat does not cover %llu sat plus fees",
                        (unsigned long long)have, (unsigned long long)(token_sats * k));
            goto done;
        }
        size_t n_in = 0;
        for (size_t i = 0; i < n_all; i++)
            if (chosen[i])
                ins[n_in++] = all[i];
        if (n_in > lim) {
            if (k > 1) {
                k /= 2;
                continue;
            }
            /* Even one token needs too many inputs: consolidate the
             * smallest `lim` proofs (select kept the largest). */
            size_t m = 0;
            for (size_t i = n_in - lim; i < n_in; i++)
                ins[m++] = ins[i];
            e = split_swap(w, ks, ins, m, token_sats, 0, ts, done);
            goto done;
        }
        uint64_t change = sum - fee - token_sats * k;
        size_t outs = k * per + popcount64(change);
        if (outs > lim) {
            size_t over = (outs - lim + per - 1) / per;
            k = over < k ? k - over : 0;
            continue;
        }
        e = split_swap(w, ks, ins, n_in, token_sats, k, ts, done);
        goto done;
    }
    e = set_err(w, DVM_ERR_LIMIT, 0, "cannot fit a token of %llu sats and its change in %zu outputs",
                (unsigned long long)token_sats, lim);
done:
    free(all);
    free(chosen);
    free(ins);
    return e;
}

dvm_err dvm_wallet_client_split(dvm_wallet_client *w, uint64_t token_sats, size_t n_tokens,
                                dvm_token **tokens)
{
    *tokens = NULL;
    if (token_sats == 0 || n_tokens == 0 || token_sats > DVM_CASHU_MAX_AMOUNT / n_tokens)
        return set_err(w, DVM_ERR_INVALID, 0, "bad split: %zu tokens of %llu sats", n_tokens,
                       (unsigned long long)token_sats);
    const dvm_keyset *ks;
    dvm_err e = need_active(w, &ks);
    if (e)
        return e;
    uint64_t need = token_sats * n_tokens, have = 0;
    if ((e = dvm_wallet_store_sum(w->store, dvm_mint_client_url(w->http), DVM_WPROOF_UNSPENT,
                                  &have)))
        return set_err(w, e, 0, "cannot read the wallet database");
    if (have < need) /* before allocating n_tokens tokens */
        return set_err(w, DVM_ERR_LIMIT, 0, "balance %llu sat does not cover %llu sat plus fees",
                       (unsigned long long)have, (unsigned long long)need);
    dvm_token *ts = calloc(n_tokens, sizeof *ts);
    if (!ts)
        return DVM_ERR_NOMEM;
    size_t done = 0;
    e = reuse_shaped(w, token_sats, n_tokens, ts, &done);
    /* Every step makes at least one token, or consolidates max_array
     * proofs into at most 53, or fails; a run of consolidations is capped
     * anyway. */
    size_t idle = 0;
    while (e == DVM_OK && done < n_tokens) {
        size_t before = done;
        e = split_step(w, ks, token_sats, n_tokens - done, ts, &done);
        if (e == DVM_OK && done > before) {
            idle = 0;
            if (w->progress)
                w->progress(w->progress_ctx, done, n_tokens);
        } else if (e == DVM_OK && ++idle > 1000) {
            e = set_err(w, DVM_ERR_LIMIT, 0, "wallet too fragmented to split");
        }
    }
    if (e) {
        release_tokens(w, ts, done);
        dvm_wallet_tokens_free(ts, done);
        return e;
    }
    *tokens = ts;
    return DVM_OK;
}

dvm_err dvm_wallet_client_mark_sent(dvm_wallet_client *w, const dvm_token *t)
{
    dvm_err e = dvm_wallet_store_move(w->store, t->proofs, t->n_proofs, DVM_WPROOF_RESERVED,
                                      DVM_WPROOF_SENT);
    return e ? set_err(w, e, 0, "token proofs are not reserved in this wallet") : DVM_OK;
}

dvm_err dvm_wallet_client_reject_incoming(dvm_wallet_client *w, const dvm_token *t)
{
    dvm_err e = dvm_wallet_store_move(w->store, t->proofs, t->n_proofs, DVM_WPROOF_INCOMING,
                                      DVM_WPROOF_REJECTED);
    return e ? set_err(w, e, 0, "token proofs are not incoming in this wallet") : DVM_OK;
}

dvm_err dvm_wallet_client_claim_progress(dvm_wallet_client *w, const dvm_token *t, size_t *spent,
                                         size_t *pending)
{
    *spent = *pending = 0;
    dvm_err e = dvm_wallet_store_count_in(w->store, t->proofs, t->n_proofs, DVM_WPROOF_SPENT, spent);
    if (!e)
        e = dvm_wallet_store_count_in(w->store, t->proofs, t->n_proofs, DVM_WPROOF_PENDING, pending);
    return e ? set_err(w, e, 0, "cannot read the wallet database") : DVM_OK;
}

dvm_err dvm_wallet_client_release(dvm_wallet_client *w, const dvm_token *t)
{
    dvm_err e = dvm_wallet_store_move(w->store, t->proofs, t->n_proofs, DVM_WPROOF_RESERVED,
                                      DVM_WPROOF_UNSPENT);
    return e ? set_err(w, e, 0, "token proofs are not reserved in this wallet") : DVM_OK;
}

dvm_err dvm_wallet_client_release_reserved(dvm_wallet_client *w, uint64_t *sats)
{
    dvm_proof *p = NULL;
    size_t n = 0;
    if (sats)
        *sats = 0;
    dvm_err e = dvm_wallet_store_list(w->store, dvm_mint_client_url(w->http), DVM_WPROOF_RESERVED,
                                      &p, &n);
    if (!e && n)
        e = dvm_wallet_store_move(w->store, p, n, DVM_WPROOF_RESERVED, DVM_WPROOF_UNSPENT);
    if (!e && sats)
        dvm_wallet_total(p, n, sats);
    free(p);
    return e ? set_err(w, e, 0, "cannot release reserved proofs") : DVM_OK;
}

dvm_err dvm_wallet_client_send(dvm_wallet_client *w, uint64_t amount, dvm_token *out)
{
    memset(out, 0, sizeof *out);
    dvm_token *ts = NULL;
    dvm_err e = dvm_wallet_client_split(w, amount, 1, &ts);
    if (e)
        return e;
    e = dvm_wallet_client_mark_sent(w, &ts[0]);
    if (e) {
        dvm_wallet_tokens_free(ts, 1);
        return e;
    }
    *out = ts[0];
    free(ts);
    return DVM_OK;
}

/* ---- receive / claim ----------------------------------------------------------------------------- */

static bool same_mint(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    while (la && a[la - 1] == '/')
        la--;
    while (lb && b[lb - 1] == '/')
        lb--;
    return la == lb && memcmp(a, b, la) == 0;
}

static dvm_err check_token(dvm_wallet_client *w, const dvm_token *t)
{
    if (!same_mint(t->mint, dvm_mint_client_url(w->http)))
        return set_err(w, DVM_ERR_INVALID, 0, "token is from mint %s, this wallet uses %s", t->mint,
                       dvm_mint_client_url(w->http));
    if (strcmp(t->unit, "sat") != 0)
        return set_err(w, DVM_ERR_INVALID, 0, "token unit '%s' is not sat", t->unit);
    if (t->n_proofs == 0)
        return set_err(w, DVM_ERR_INVALID, 0, "token has no proofs");
    return DVM_OK;
}

dvm_err dvm_wallet_client_add_incoming(dvm_wallet_client *w, const dvm_token *t)
{
    dvm_err e = check_token(w, t);
    if (e)
        return e;
    e = dvm_wallet_store_add(w->store, dvm_mint_client_url(w->http), t->proofs, t->n_proofs,
                             DVM_WPROOF_INCOMING);
    if (e == DVM_ERR_EXISTS)
        return set_err(w, e, 0, "a proof of this token is already in the wallet");
    return e ? set_err(w, e, 0, "cannot store the token") : DVM_OK;
}

dvm_err dvm_wallet_client_add_incoming_many(dvm_wallet_client *w, const dvm_token *tokens,
                                            size_t n, dvm_err *results)
{
    if (n == 0)
        return DVM_OK;
    const dvm_proof **groups = calloc(n, sizeof *groups);
    size_t *counts = calloc(n, sizeof *counts);
    size_t *idx = calloc(n, sizeof *idx);
    dvm_err *res = calloc(n, sizeof *res);
    dvm_err *valid = calloc(n, sizeof *valid);
    if (!groups || !counts || !idx || !res || !valid) {
        free(groups), free(counts), free(idx), free(res), free(valid);
        return DVM_ERR_NOMEM;
    }
    size_t m = 0;
    dvm_err first_bad = DVM_OK;
    for (size_t i = 0; i < n; i++) {
        valid[i] = check_token(w, &tokens[i]);
        if (valid[i]) {
            if (!first_bad)
                first_bad = valid[i];
            continue;
        }
        groups[m] = tokens[i].proofs;
        counts[m] = tokens[i].n_proofs;
        idx[m++] = i;
    }
    dvm_err e = dvm_wallet_store_add_groups(w->store, dvm_mint_client_url(w->http), groups, counts,
                                            m, DVM_WPROOF_INCOMING, res);
    for (size_t j = 0; j < m; j++)
        valid[idx[j]] = res[j];
    size_t dup = 0;
    for (size_t j = 0; j < m; j++)
        dup += res[j] == DVM_ERR_EXISTS;
    if (results)
        memcpy(results, valid, n * sizeof *results);
    free(groups), free(counts), free(idx), free(res), free(valid);
    if (e)
        return set_err(w, e, 0, "cannot store the tokens");
    if (dup)
        return set_err(w, DVM_ERR_EXISTS, 0, "%zu of %zu tokens have a proof already in the wallet",
                       dup, n);
    return first_bad; /* its reason is in last_error */
}

/* Claim proofs that are INCOMING in the store (one swap). *credited gets
 * the sats of the new proofs. */
static dvm_err claim_batch(dvm_wallet_client *w, const dvm_proof *ins, size_t n,
                           uint64_t *credited)
{
    *credited = 0;
    w->rejected_sats = 0;
    const dvm_keyset *ks;
    dvm_err e = need_active(w, &ks);
    if (e)
        return e;
    dvm_wallet_swap sw;
    char reason[200];
    e = dvm_wallet_swap_prepare(w->ctx, &w->rng, w->keysets, w->n_keysets, ks, ins, n, 0, 0, &sw,
                                reason, sizeof reason);
    if (e == DVM_ERR_NOT_FOUND) {
        /* A keyset we do not know: refresh once. */
        if ((e = dvm_wallet_client_load_keysets(w)))
            return e;
        if (!(ks = active_keyset(w)))
            return set_err(w, DVM_ERR_PROTO, 0, "no active keyset");
        e = dvm_wallet_swap_prepare(w->ctx, &w->rng, w->keysets, w->n_keysets, ks, ins, n, 0, 0,
                                    &sw, reason, sizeof reason);
    }
    if (e)
        return set_err(w, e, 0, "cannot plan the claim: %s", reason);
    int64_t op;
    e = dvm_wallet_store_op_begin(w->store, DVM_WOP_RECEIVE, dvm_mint_client_url(w->http), NULL,
                                  sw.inputs, sw.n_inputs, DVM_WPROOF_INCOMING, false, sw.outputs,
                                  NULL, sw.n_outputs, &op);
    if (e) {
        dvm_wallet_swap_free(&sw);
        return set_err(w, e, 0, "cannot record the claim");
    }
    e = run_swap(w, op, &sw, DVM_WPROOF_INCOMING, false, NULL);
    if (e == DVM_OK)
        *credited = sw.change;
    dvm_wallet_swap_free(&sw);
    return e;
}

dvm_err dvm_wallet_client_claim_incoming(dvm_wallet_client *w, uint64_t *claimed,
                                         uint64_t *rejected)
{
    uint64_t got = 0, lost = 0;
    dvm_err e = DVM_OK;
    /* Each round claims or rejects at least one proof, or stops. */
    for (int round = 0; round < 100000; round++) {
        dvm_proof *all = NULL;
        size_t n = 0;
        if ((e = dvm_wallet_store_list(w->store, dvm_mint_client_url(w->http), DVM_WPROOF_INCOMING,
                                       &all, &n))) {
            set_err(w, e, 0, "cannot read the wallet database");
            break;
        }
        if (n == 0) {
            free(all);
            break;
        }
        size_t batch = CLAIM_BATCH < w->max_array ? CLAIM_BATCH : w->max_array;
        size_t take = n < batch ? n : batch;
        uint64_t c = 0;
        e = claim_batch(w, all, take, &c);
        got += c;
        lost += w->rejected_sats;
        if (e == DVM_OK || (e == DVM_ERR_SPENT && w->rejected_sats > 0)) {
            e = DVM_OK;
            free(all);
            continue;
        }
        if ((e != DVM_ERR_SPENT && e != DVM_ERR_PROTO) || w->last_code == 0 || take == 1) {
            free(all);
            break; /* unreachable mint, storage, or a refusal not about a proof */
        }
        /* The batch was refused as a whole (a forged proof inside): claim
         * proof by proof so the good ones are still claimed. */
        for (size_t i = 0; i < take; i++) {
            uint64_t c1 = 0;
            dvm_err e1 = claim_batch(w, &all[i], 1, &c1);
            got += c1;
            lost += w->rejected_sats;
            if (e1 != DVM_OK && w->rejected_sats == 0) {
                e = e1;
                free(all);
                goto out;
            }
        }
        e = DVM_OK;
        free(all);
    }
out:
    if (claimed)
        *claimed = got;
    if (rejected)
        *rejected = lost;
    return e;
}

static dvm_err y_of(dvm_wallet_client *w, const dvm_proof *p, size_t n,
                    uint8_t (**Ys)[DVM_POINT_BYTES])
{
    *Ys = calloc(n ? n : 1, sizeof **Ys);
    if (!*Ys)
        return DVM_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        dvm_err e = dvm_cashu_proof_Y(w->ctx, &p[i], (*Ys)[i]);
        if (e) {
            free(*Ys);
            *Ys = NULL;
            return set_err(w, DVM_ERR_INVALID, 0, "proof %zu: cannot hash its secret to the curve", i);
        }
    }
    return DVM_OK;
}

dvm_err dvm_wallet_client_check(dvm_wallet_client *w, const dvm_proof *p, size_t n,
                                dvm_proof_state *states)
{
    uint8_t (*Ys)[DVM_POINT_BYTES] = NULL;
    dvm_err e = y_of(w, p, n, &Ys);
    if (e)
        return e;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        char hex[2 * DVM_POINT_BYTES + 1];
        dvm_cashu_hex_encode(Ys[i], DVM_POINT_BYTES, hex);
        json_array_append_new(arr, json_string(hex));
    }
    json_t *req = json_pack("{s:o}", "Ys", arr);
    json_t *reply = NULL;
    dvm_mint_http_error he;
    e = req ? dvm_mint_client_post(w->http, "/v1/checkstate", req, &reply, &he) : DVM_ERR_NOMEM;
    json_decref(req);
    if (e) {
        free(Ys);
        return http_err(w, e, "POST /v1/checkstate", &he);
    }
    json_t *sts = json_object_get(reply, "states");
    if (!json_is_array(sts) || json_array_size(sts) != n) {
        e = set_err(w, DVM_ERR_INVALID, 0, "checkstate reply: expected %zu states", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *it = json_array_get(sts, i);
        json_t *y = json_object_get(it, "Y"), *s = json_object_get(it, "state");
        uint8_t yb[DVM_POINT_BYTES];
        if (!json_is_string(y) || !json_is_string(s) ||
            dvm_cashu_hex_decode(json_string_value(y), yb, DVM_POINT_BYTES) ||
            memcmp(yb, Ys[i], DVM_POINT_BYTES) != 0) {
            e = set_err(w, DVM_ERR_INVALID, 0, "checkstate reply: bad entry %zu", i);
            goto done;
        }
        const char *sv = json_string_value(s);
        states[i] = strcmp(sv, "SPENT") == 0     ? DVM_PROOF_SPENT
                    : strcmp(sv, "PENDING") == 0 ? DVM_PROOF_PENDING
                                                 : DVM_PROOF_UNSPENT;
    }
done:
    json_decref(reply);
    free(Ys);
    return e;
}

dvm_err dvm_wallet_client_receive(dvm_wallet_client *w, const dvm_token *t, uint64_t *received)
{
    if (received)
        *received = 0;
    dvm_err e = dvm_wallet_client_add_incoming(w, t);
    if (e == DVM_ERR_EXISTS) {
        /* Known proofs: the token was received (or sent) before. Ask the
         * mint rather than guess. */
        dvm_proof_state *st = calloc(t->n_proofs, sizeof *st);
        if (!st)
            return DVM_ERR_NOMEM;
        e = dvm_wallet_client_check(w, t->proofs, t->n_proofs, st);
        bool spent = false;
        for (size_t i = 0; e == DVM_OK && i < t->n_proofs; i++)
            spent |= st[i] == DVM_PROOF_SPENT;
        free(st);
        if (e)
            return e;
        if (spent)
            return set_err(w, DVM_ERR_SPENT, DVM_NUT_PROOFS_SPENT,
                           "Proofs already spent (this token was already received)");
        return set_err(w, DVM_ERR_EXISTS, 0, "this token's proofs are already in the wallet");
    }
    if (e)
        return e;
    uint64_t got = 0;
    e = claim_batch(w, t->proofs, t->n_proofs, &got);
    if (e == DVM_OK && received)
        *received = got;
    return e;
}

/* ---- melt ----------------------------------------------------------------------------------------- */

dvm_err dvm_wallet_client_melt(dvm_wallet_client *w, const char *invoice, uint64_t *paid)
{
    if (paid)
        *paid = 0;
    const dvm_keyset *ks;
    dvm_err e = need_active(w, &ks);
    if (e)
        return e;
    json_t *req = json_pack("{s:s, s:s}", "request", invoice, "unit", "sat");
    json_t *q = NULL;
    dvm_mint_http_error he;
    e = req ? dvm_mint_client_post(w->http, "/v1/melt/quote/bolt11", req, &q, &he) : DVM_ERR_NOMEM;
    json_decref(req);
    if (e)
        return http_err(w, e, "POST /v1/melt/quote/bolt11", &he);
    json_t *jq = json_object_get(q, "quote"), *ja = json_object_get(q, "amount"),
           *jf = json_object_get(q, "fee_reserve");
    if (!json_is_string(jq) || json_string_length(jq) > DVM_QUOTE_ID_MAX || !json_is_integer(ja) ||
        json_integer_value(ja) <= 0) {
        json_decref(q);
        return set_err(w, DVM_ERR_INVALID, 0, "melt quote reply lacks quote/amount");
    }
    char quote[DVM_QUOTE_ID_MAX + 1];
    snprintf(quote, sizeof quote, "%s", json_string_value(jq));
    uint64_t amount = (uint64_t)json_integer_value(ja);
    uint64_t reserve = json_is_integer(jf) && json_integer_value(jf) > 0 ? (uint64_t)json_integer_value(jf) : 0;
    json_decref(q);
    /* Exact inputs: split amount + reserve + the fee of spending that token
     * (its proof count times the keyset's ppk), found by iterating. */
    uint64_t target = amount + reserve, fee = 0;
    for (int it = 0; it < 8; it++) {
        uint64_t amounts[64];
        size_t n = 0, per = 0;
        if (dvm_wallet_plan(target + fee, 0, 0, amounts, 64, &n, &per))
            return set_err(w, DVM_ERR_LIMIT, 0, "amount too large");
        uint64_t f = dvm_cashu_fee_from_ppk(ks->input_fee_ppk * n);
        if (f == fee)
            break;
        fee = f;
    }
    dvm_token *ts = NULL;
    if ((e = dvm_wallet_client_split(w, target + fee, 1, &ts)))
        return e;
    int64_t op;
    e = dvm_wallet_store_op_begin(w->store, DVM_WOP_MELT, dvm_mint_client_url(w->http), quote,
                                  ts[0].proofs, ts[0].n_proofs, DVM_WPROOF_RESERVED, false, NULL,
                                  NULL, 0, &op);
    if (e) {
        dvm_wallet_client_release(w, &ts[0]);
        dvm_wallet_tokens_free(ts, 1);
        return set_err(w, e, 0, "cannot record the melt");
    }
    req = json_pack("{s:s, s:o}", "quote", quote, "inputs",
                    dvm_cashu_proofs_to_json(ts[0].proofs, ts[0].n_proofs));
    dvm_wallet_tokens_free(ts, 1);
    json_t *reply = NULL;
    e = req ? dvm_mint_client_post(w->http, "/v1/melt/bolt11", req, &reply, &he) : DVM_ERR_NOMEM;
    json_decref(req);
    if (e == DVM_ERR_AGAIN)
        return http_err(w, e, "POST /v1/melt/bolt11", &he);
    if (e) {
        http_err(w, e, "POST /v1/melt/bolt11", &he);
        dvm_wallet_store_op_revert(w->store, op, DVM_WPROOF_UNSPENT);
        return e;
    }
    json_t *js = json_object_get(reply, "state");
    bool ok = json_is_string(js) && strcmp(json_string_value(js), "PAID") == 0;
    json_decref(reply);
    if (!ok)
        return set_err(w, DVM_ERR_AGAIN, 0, "melt not paid yet; run recover later");
    e = dvm_wallet_store_op_finish(w->store, op, NULL, 0, NULL, DVM_WPROOF_SPENT);
    if (e)
        return set_err(w, e, 0, "cannot record the melt result");
    if (paid)
        *paid = amount;
    return DVM_OK;
}

/* ---- recovery ---------------------------------------------------------------------------------------- */

/* NUT-09: fetch the signatures the mint holds for our outputs; unblind the
 * ones found. *news (malloc'd) / *n_news get the proofs. */
static dvm_err restore_outputs(dvm_wallet_client *w, const dvm_wallet_output *outs, size_t n,
                               const int *tags, dvm_proof **news, bool **reserved, size_t *n_news)
{
    *news = NULL;
    *reserved = NULL;
    *n_news = 0;
    json_t *req = json_pack("{s:o}", "outputs", outputs_json(outs, n));
    json_t *reply = NULL;
    dvm_mint_http_error he;
    dvm_err e = req ? dvm_mint_client_post(w->http, "/v1/restore", req, &reply, &he) : DVM_ERR_NOMEM;
    json_decref(req);
    if (e)
        return http_err(w, e, "POST /v1/restore", &he);
    json_t *ro = json_object_get(reply, "outputs");
    json_t *rs = json_object_get(reply, "signatures");
    if (!rs)
        rs = json_object_get(reply, "promises");
    if (!json_is_array(ro) || !json_is_array(rs) || json_array_size(ro) != json_array_size(rs) ||
        json_array_size(ro) > n) {
        json_decref(reply);
        return set_err(w, DVM_ERR_INVALID, 0, "restore reply: bad outputs/signatures");
    }
    size_t k = json_array_size(ro);
    dvm_wallet_output *match = calloc(k ? k : 1, sizeof *match);
    *news = calloc(k ? k : 1, sizeof **news);
    *reserved = calloc(k ? k : 1, sizeof **reserved);
    if (!match || !*news || !*reserved) {
        e = DVM_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < k; i++) {
        dvm_blinded_message m;
        char reason[200];
        if (dvm_cashu_blinded_message_from_json(w->ctx, json_array_get(ro, i), &m, reason,
                                                sizeof reason)) {
            e = set_err(w, DVM_ERR_INVALID, 0, "restore reply: %s", reason);
            goto done;
        }
        size_t j = 0;
        while (j < n && memcmp(outs[j].msg.B_, m.B_, DVM_POINT_BYTES) != 0)
            j++;
        if (j == n) {
            e = set_err(w, DVM_ERR_INVALID, 0, "restore reply: unknown output");
            goto done;
        }
        match[i] = outs[j];
        (*reserved)[i] = tags && tags[j] >= 0;
    }
    json_t *wrap = json_pack("{s:O}", "signatures", rs);
    e = wrap ? unblind_reply(w, wrap, "signatures", match, k, *news) : DVM_ERR_NOMEM;
    json_decref(wrap);
    if (e == DVM_OK)
        *n_news = k;
done:
    free(match);
    json_decref(reply);
    if (e) {
        free(*news);
        free(*reserved);
        *news = NULL;
        *reserved = NULL;
    }
    return e;
}

static dvm_err recover_one(dvm_wallet_client *w, const dvm_wallet_op *op, bool *closed)
{
    *closed = false;
    dvm_proof *ins = NULL, *news = NULL;
    dvm_wallet_output *outs = NULL;
    int *tags = NULL;
    bool *reserved = NULL;
    size_t n_in = 0, n_out = 0, n_new = 0;
    dvm_proof_state *st = NULL;
    dvm_err e = ensure_keysets(w); /* to unblind what the mint returns */
    if (e)
        return e;
    e = dvm_wallet_store_op_inputs(w->store, op->op, &ins, &n_in);
    if (!e)
        e = dvm_wallet_store_op_outputs(w->store, op->op, &outs, &tags, &n_out);
    if (e) {
        e = set_err(w, e, 0, "cannot read operation %lld", (long long)op->op);
        goto done;
    }
    bool executed = false;
    if (op->kind == DVM_WOP_MINT) {
        char path[160];
        snprintf(path, sizeof path, "/v1/mint/quote/bolt11/%s", op->quote);
        json_t *q = NULL;
        dvm_mint_http_error he;
        e = dvm_mint_client_get(w->http, path, &q, &he);
        if (e) {
            if (e == DVM_ERR_PROTO) {
                /* The mint does not know the quote: nothing to finish. */
                e = dvm_wallet_store_op_revert(w->store, op->op, -1);
                *closed = e == DVM_OK;
            } else {
                http_err(w, e, path, &he);
            }
            goto done;
        }
        json_t *js = json_object_get(q, "state");
        executed = json_is_string(js) && strcmp(json_string_value(js), "ISSUED") == 0;
        bool paid = json_is_string(js) && strcmp(json_string_value(js), "PAID") == 0;
        json_decref(q);
        if (paid) {
            /* Not minted yet: redo the mint with the recorded outputs. */
            json_t *req = json_pack("{s:s, s:o}", "quote", op->quote, "outputs",
                                    outputs_json(outs, n_out));
            json_t *reply = NULL;
            e = req ? dvm_mint_client_post(w->http, "/v1/mint/bolt11", req, &reply, &he) : DVM_ERR_NOMEM;
            json_decref(req);
            if (e) {
                http_err(w, e, "POST /v1/mint/bolt11", &he);
                goto done;
            }
            news = calloc(n_out ? n_out : 1, sizeof *news);
            e = news ? unblind_reply(w, reply, "signatures", outs, n_out, news) : DVM_ERR_NOMEM;
            json_decref(reply);
            if (e)
                goto done;
            e = dvm_wallet_store_op_finish(w->store, op->op, news, n_out, NULL, DVM_WPROOF_SPENT);
            *closed = e == DVM_OK;
            goto done;
        }
        if (!executed)
            goto done; /* UNPAID: leave it open */
    } else if (n_in) {
        st = calloc(n_in, sizeof *st);
        if (!st) {
            e = DVM_ERR_NOMEM;
            goto done;
        }
        if ((e = dvm_wallet_client_check(w, ins, n_in, st)))
            goto done;
        size_t spent = 0, pending = 0;
        for (size_t i = 0; i < n_in; i++) {
            spent += st[i] == DVM_PROOF_SPENT;
            pending += st[i] == DVM_PROOF_PENDING;
        }
        if (pending) {
            e = set_err(w, DVM_ERR_AGAIN, DVM_NUT_PROOFS_PENDING, "operation %lld: inputs pending",
                        (long long)op->op);
            goto done;
        }
        if (spent == 0) {
            /* The mint never executed it. A melt's inputs (split off for
             * it) go back to the balance. */
            e = dvm_wallet_store_op_revert(w->store, op->op,
                                           op->kind == DVM_WOP_MELT ? (int)DVM_WPROOF_UNSPENT : -1);
            *closed = e == DVM_OK;
            goto done;
        }
        executed = true;
    }
    if (executed && n_out) {
        if ((e = ensure_keysets(w)))
            goto done;
        if ((e = restore_outputs(w, outs, n_out, op->kind == DVM_WOP_SWAP ? tags : NULL, &news,
                                 &reserved, &n_new)))
            goto done;
    }
    if (executed && n_out && n_new == 0 && op->kind != DVM_WOP_MINT && st) {
        /* Some inputs are spent but the mint signed none of our outputs:
         * our swap never ran; those inputs were spent by someone else.
         * Put the op back and set only the spent inputs aside. */
        dvm_wproof_state prev = op->input_prev;
        if ((e = dvm_wallet_store_op_revert(w->store, op->op, -1)))
            goto done;
        *closed = true;
        for (size_t i = 0; i < n_in; i++)
            if (st[i] == DVM_PROOF_SPENT)
                dvm_wallet_store_move(w->store, &ins[i], 1, prev, DVM_WPROOF_REJECTED);
        goto done;
    }
    dvm_wproof_state to = DVM_WPROOF_SPENT;
    /* Reserved token outputs come back as UNSPENT after a crash: the caller
     * that split them is gone. */
    e = dvm_wallet_store_op_finish(w->store, op->op, news, n_new, NULL, to);
    *closed = e == DVM_OK;
done:
    free(ins);
    free(outs);
    free(tags);
    free(news);
    free(reserved);
    free(st);
    return e;
}

dvm_err dvm_wallet_client_recover(dvm_wallet_client *w, size_t *finished)
{
    if (finished)
        *finished = 0;
    dvm_wallet_op *ops = NULL;
    size_t n = 0;
    dvm_err e = dvm_wallet_store_ops_open(w->store, &ops, &n);
    if (e)
        return set_err(w, e, 0, "cannot read open operations");
    dvm_err first = DVM_OK;
    for (size_t i = 0; i < n; i++) {
        if (!same_mint(ops[i].mint, dvm_mint_client_url(w->http)))
            continue;
        bool closed = false;
        e = recover_one(w, &ops[i], &closed);
        if (closed && finished)
            (*finished)++;
        if (e && !first)
            first = e;
    }
    free(ops);
    return first;
}

dvm_err dvm_wallet_client_open_ops(dvm_wallet_client *w, size_t *n)
{
    dvm_wallet_op *ops = NULL;
    dvm_err e = dvm_wallet_store_ops_open(w->store, &ops, n);
    free(ops);
    return e;
}
