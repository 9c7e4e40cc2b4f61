/* dvm-bench — a Cashu mint in memory (the core mint logic, real
 * signatures with DLEQ) for the payment and e2e benchmarks: mint tokens of
 * given proof amounts, encoded as cashuB. */
#ifndef DVM_BENCH_CASHU_ENV_H
#define DVM_BENCH_CASHU_ENV_H

#include <stddef.h>
#include <stdint.h>

#include "cashu/crypto.h"
#include "cashu/keyset.h"
#include "cashu/mint.h"
#include "cashu/mint_memstore.h"
#include "common/buf.h"
#include "common/rng.h"

/* The mint URL the tokens name. */
#define BENCH_MINT_URL "http://127.0.0.1:3338"

struct bench_prng {
    uint64_t s;
};

typedef struct bench_cashu_env {
    struct bench_prng prng; /* splitmix64, fixed seed: deterministic tokens */
    dvm_rng rng;
    dvm_mint_memstore *ms;
    dvm_mint_store store;
    dvm_mint *mint;
    dvm_cashu_ctx *ctx;
} bench_cashu_env;

/* 0, or -1 when the mint cannot be set up. Free with bench_cashu_env_free
 * either way. */
int bench_cashu_env_init(bench_cashu_env *e);
void bench_cashu_env_free(bench_cashu_env *e);

/* The mint's active sat keyset (public keys). */
const dvm_keyset *bench_cashu_keyset(bench_cashu_env *e);

/* Mint one token of proofs with amounts[0..n) (n <= 8; quote, blind
 * signatures with DLEQ, unblinded with r kept) and append it, encoded as
 * cashuB, to out. 0 or -1. */
int bench_cashu_make_token(bench_cashu_env *e, const uint64_t *amounts, size_t n, dvm_buf *out);

#endif
