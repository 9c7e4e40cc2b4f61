/* Test helpers on top of mint_proc.h: a minimal wallet built from the core
 * (cashu/wallet.h) that talks raw JSON to a running `dvm mint`, so tests can
 * craft exact requests (duplicate outputs, unbalanced swaps, ...). */
#ifndef DVM_TESTS_MINT_CLIENT_H
#define DVM_TESTS_MINT_CLIENT_H

#include <sodium.h>

#include "cashu/crypto.h"
#include "cashu/keyset.h"
#include "cashu/mint.h"
#include "cashu/nut_json.h"
#include "cashu/wallet.h"
#include "mint_proc.h"

struct mc {
    const char *url;
    dvm_cashu_ctx *ctx;
    dvm_rng rng;
    dvm_keyset ks; /* the active keyset */
};

static inline void mc_fill(void *ctx, uint8_t *b, size_t n)
{
    (void)ctx;
    randombytes_buf(b, n);
}

static inline void mc_init(struct mc *c, const char *url)
{
    memset(c, 0, sizeof *c);
    cr_assert(sodium_init() >= 0);
    c->url = url;
    c->rng.fill = mc_fill;
    cr_assert_eq(dvm_cashu_ctx_new(&c->ctx, NULL), DVM_OK);
    json_t *r = NULL;
    cr_assert_eq(mp_http(url, "/v1/keys", NULL, 0, &r), 200);
    json_t *arr = json_object_get(r, "keysets");
    cr_assert(json_is_array(arr) && json_array_size(arr) == 1);
    char reason[200];
    cr_assert_eq(dvm_cashu_keyset_from_json(c->ctx, json_array_get(arr, 0), &c->ks, reason,
                                            sizeof reason),
                 DVM_OK, "%s", reason);
    c->ks.active = true;
    json_decref(r);
}

static inline void mc_free(struct mc *c)
{
    dvm_cashu_ctx_free(c->ctx);
    c->ctx = NULL;
}

/* n outputs for amounts[] in the active keyset. */
static inline void mc_outputs(struct mc *c, const uint64_t *amounts, size_t n, dvm_wallet_output *outs)
{
    cr_assert_eq(dvm_wallet_make_outputs(c->ctx, &c->rng, &c->ks, amounts, n, outs), DVM_OK);
}

static inline json_t *mc_outputs_json(const dvm_wallet_output *outs, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, dvm_cashu_blinded_message_to_json(&outs[i].msg));
    return a;
}

/* Unblind {"signatures": [...]} for outs into proofs (DLEQ required). */
static inline void mc_unblind(struct mc *c, json_t *reply, const dvm_wallet_output *outs, size_t n,
                       dvm_proof *proofs)
{
    dvm_blind_signature *sigs = NULL;
    size_t ns = 0;
    char reason[200];
    cr_assert_eq(dvm_cashu_blind_signatures_from_json(c->ctx, json_object_get(reply, "signatures"),
                                                      n, "signatures", &sigs, &ns, reason,
                                                      sizeof reason),
                 DVM_OK, "%s", reason);
    cr_assert_eq(ns, n);
    for (size_t i = 0; i < n; i++)
        cr_assert(sigs[i].has_dleq, "signature %zu has no DLEQ (NUT-12)", i);
    cr_assert_eq(dvm_wallet_unblind(c->ctx, &c->ks, outs, sigs, n, true, proofs, reason,
                                    sizeof reason),
                 DVM_OK, "%s", reason);
    free(sigs);
}

/* Mint proofs worth the sum of amounts[0..n) (one proof per amount). */
static inline void mc_mint(struct mc *c, const uint64_t *amounts, size_t n, dvm_proof *proofs)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += amounts[i];
    json_t *q = NULL;
    json_t *req = json_pack("{s:I, s:s}", "amount", (json_int_t)total, "unit", "sat");
    cr_assert_eq(mp_post_json(c->url, "/v1/mint/quote/bolt11", req, &q), 200);
    json_decref(req);
    const char *quote = json_string_value(json_object_get(q, "quote"));
    cr_assert_not_null(quote);
    dvm_wallet_output *outs = calloc(n, sizeof *outs);
    mc_outputs(c, amounts, n, outs);
    req = json_pack("{s:s, s:o}", "quote", quote, "outputs", mc_outputs_json(outs, n));
    json_t *r = NULL;
    long st = mp_post_json(c->url, "/v1/mint/bolt11", req, &r);
    cr_assert_eq(st, 200, "mint failed: %ld", st);
    mc_unblind(c, r, outs, n, proofs);
    json_decref(req);
    json_decref(r);
    json_decref(q);
    free(outs);
}

/* A swap request of proofs ins[0..n_in) into outputs outs[0..n_out). */
static inline json_t *mc_swap_req(const dvm_proof *ins, size_t n_in, const dvm_wallet_output *outs,
                           size_t n_out)
{
    return json_pack("{s:o, s:o}", "inputs", dvm_cashu_proofs_to_json(ins, n_in), "outputs",
                     mc_outputs_json(outs, n_out));
}

#endif
