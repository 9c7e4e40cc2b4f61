/* Helpers shared by the Cashu test binaries (header-only, static). */
#ifndef DVM_TESTS_CASHU_TEST_UTIL_H
#define DVM_TESTS_CASHU_TEST_UTIL_H

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "cashu/mint.h"
#include "cashu/mint_memstore.h"
#include "cashu/wallet.h"

/* splitmix64: a seeded deterministic rng for tests. */
typedef struct {
    uint64_t s;
} test_prng;

static inline uint64_t test_prng_next(test_prng *p)
{
    uint64_t z = (p->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline void test_prng_fill(void *ctx, uint8_t *buf, size_t len)
{
    test_prng *p = ctx;
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = test_prng_next(p);
        for (size_t j = 0; j < 8 && i + j < len; j++)
            buf[i + j] = (uint8_t)(v >> (8 * j));
    }
}

/* A mint over an in-memory store plus a wallet context. */
typedef struct {
    test_prng prng;
    dvm_rng rng;
    dvm_mint_memstore *ms;
    dvm_mint_store store;
    dvm_mint *mint;
    dvm_cashu_ctx *ctx;
    uint64_t now_ms;
} test_env;

static inline void test_env_init(test_env *env, const dvm_mint_config *cfg_in, uint64_t seed)
{
    memset(env, 0, sizeof *env);
    env->prng.s = seed;
    env->rng.fill = test_prng_fill;
    env->rng.ctx = &env->prng;
    env->now_ms = 1700000000000ULL;
    cr_assert_eq(dvm_mint_memstore_new(&env->ms, 0), DVM_OK);
    dvm_mint_memstore_vtable(env->ms, &env->store);
    dvm_mint_config cfg;
    if (cfg_in) {
        cfg = *cfg_in;
    } else {
        memset(&cfg, 0, sizeof cfg);
        memset(cfg.seed, 0x42, sizeof cfg.seed);
    }
    cr_assert_eq(dvm_mint_new(&env->mint, &cfg, &env->store, &env->rng), DVM_OK);
    cr_assert_eq(dvm_cashu_ctx_new(&env->ctx, NULL), DVM_OK);
}

static inline void test_env_free(test_env *env)
{
    dvm_mint_free(env->mint);
    dvm_mint_memstore_free(env->ms);
    dvm_cashu_ctx_free(env->ctx);
}

static inline const dvm_keyset *test_active(test_env *env)
{
    const dvm_keyset *ks = dvm_mint_active_keyset(env->mint, "sat");
    cr_assert_not_null(ks);
    return ks;
}

/* Mint `amount` sats (quote -> paid -> mint) into proofs[] (binary split);
 * returns the count. DLEQ required and kept. */
static inline size_t test_mint_proofs(test_env *env, uint64_t amount, dvm_proof *proofs)
{
    dvm_mint_quote q;
    dvm_mint_error err;
    cr_assert_eq(dvm_mint_create_mint_quote(env->mint, amount, "sat", env->now_ms, &q, &err),
                 DVM_OK, "%s", err.detail);
    uint64_t amounts[64];
    size_t n;
    dvm_cashu_amount_split(amount, amounts, &n);
    dvm_wallet_output outs[64];
    dvm_blinded_message msgs[64];
    dvm_blind_signature sigs[64];
    const dvm_keyset *ks = test_active(env);
    cr_assert_eq(dvm_wallet_make_outputs(env->ctx, &env->rng, ks, amounts, n, outs), DVM_OK);
    for (size_t i = 0; i < n; i++)
        msgs[i] = outs[i].msg;
    cr_assert_eq(dvm_mint_mint(env->mint, q.quote, msgs, n, env->now_ms, sigs, &err), DVM_OK,
                 "%s", err.detail);
    char reason[128];
    cr_assert_eq(dvm_wallet_unblind(env->ctx, ks, outs, sigs, n, true, proofs, reason,
                                    sizeof reason),
                 DVM_OK, "%s", reason);
    return n;
}

#endif
