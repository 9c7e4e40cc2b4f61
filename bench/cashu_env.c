/* dvm-bench — an in-memory Cashu mint for the benchmarks (cashu_env.h). */
#include "cashu_env.h"

#include <stdlib.h>
#include <string.h>

#include "cashu/token.h"
#include "cashu/wallet.h"

static uint64_t prng_next(struct bench_prng *p) /* splitmix64 */
{
    uint64_t z = (p->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void prng_fill(void *ctx, uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = prng_next(ctx);
        for (size_t j = 0; j < 8 && i + j < len; j++)
            buf[i + j] = (uint8_t)(v >> (8 * j));
    }
}

int bench_cashu_env_init(bench_cashu_env *e)
{
    memset(e, 0, sizeof *e);
    e->prng.s = 0x5eed;
    e->rng.fill = prng_fill;
    e->rng.ctx = &e->prng;
    dvm_mint_config cfg;
    memset(&cfg, 0, sizeof cfg);
    memset(cfg.seed, 0x42, sizeof cfg.seed);
    if (dvm_mint_memstore_new(&e->ms, 0) != DVM_OK)
        return -1;
    dvm_mint_memstore_vtable(e->ms, &e->store);
    if (dvm_mint_new(&e->mint, &cfg, &e->store, &e->rng) != DVM_OK)
        return -1;
    return dvm_cashu_ctx_new(&e->ctx, NULL) == DVM_OK ? 0 : -1;
}

void bench_cashu_env_free(bench_cashu_env *e)
{
    dvm_mint_free(e->mint);
    dvm_mint_memstore_free(e->ms);
    dvm_cashu_ctx_free(e->ctx);
}

/* Mint one token of the given proof amounts, encoded as cashuB into out. */
int bench_cashu_make_token(bench_cashu_env *e, const uint64_t *amounts, size_t n, dvm_buf *out)
{
    uint64_t sum = 0;
    if (n == 0 || n > 8)
        return -1;
    for (size_t i = 0; i < n; i++)
        sum += amounts[i];
    dvm_mint_quote q;
    dvm_mint_error err;
    if (dvm_mint_create_mint_quote(e->mint, sum, "sat", 0, &q, &err) != DVM_OK)
        return -1;
    const dvm_keyset *ks = dvm_mint_active_keyset(e->mint, "sat");
    dvm_wallet_output outs[8];
    dvm_blinded_message msgs[8];
    dvm_blind_signature sigs[8];
    dvm_proof proofs[8];
    if (dvm_wallet_make_outputs(e->ctx, &e->rng, ks, amounts, n, outs) != DVM_OK)
        return -1;
    for (size_t i = 0; i < n; i++)
        msgs[i] = outs[i].msg;
    if (dvm_mint_mint(e->mint, q.quote, msgs, n, 0, sigs, &err) != DVM_OK)
        return -1;
    char reason[128];
    if (dvm_wallet_unblind(e->ctx, ks, outs, sigs, n, true, proofs, reason, sizeof reason) != DVM_OK)
        return -1;
    dvm_token t;
    memset(&t, 0, sizeof t);
    t.version = 4;
    strcpy(t.mint, BENCH_MINT_URL);
    strcpy(t.unit, "sat");
    t.has_unit = true;
    t.proofs = proofs;
    t.n_proofs = n;
    return dvm_token_encode(&t, 4, out) == DVM_OK ? 0 : -1;
}

const dvm_keyset *bench_cashu_keyset(bench_cashu_env *e) { return dvm_mint_active_keyset(e->mint, "sat"); }
