/* dvm-bench payment — the payment hot path of a provider:
 * a `payment` message reaches the provider session -> VERIFY_TOKEN ->
 * token decode (cashuB) -> payment policy (trusted mint, keyset, NUT-12 DLEQ
 * verified offline for every proof, replay set, unclaimed bound) -> credit
 * (on_verify, payment_ack). Tokens of 1, 2 and 4 proofs, minted beforehand by
 * the core mint logic with real signatures. Also the mint's own costs: blind
 * signatures with DLEQ per second, and proof verifications (C == kY) per
 * second. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cashu_env.h"
#include "cashu/mint.h"
#include "cashu/mint_memstore.h"
#include "cashu/policy.h"
#include "cashu/token.h"
#include "cashu/wallet.h"
#include "session/provider.h"

#define MINT_URL BENCH_MINT_URL

/* One run: a provider job receives every token as a payment; returns
 * payments/s, or -1 when a payment was not credited in full. */
static double payment_run(bench_cashu_env *e, char **tokens, size_t n, uint64_t sats_each)
{
    const char *trusted[] = {MINT_URL};
    dvm_pay_policy_config pcfg = {.trusted_mints = trusted, .n_trusted = 1};
    dvm_pay_policy *pol = NULL;
    dvm_provider_config cfg;
    dvm_provider_config_default(&cfg);
    cfg.chunks_per_payment = 1u << 30;
    cfg.max_payments = n + 1;
    cfg.max_token_bytes = (size_t)1 << 30;
    dvm_provider *p = dvm_provider_new(&cfg);
    double rate = -1;
    if (!p || dvm_pay_policy_new(&pol, &pcfg) != DVM_OK ||
        dvm_pay_policy_add_keyset(pol, MINT_URL, bench_cashu_keyset(e)) != DVM_OK)
        goto out;
    dvm_msg req = {.type = DVM_MSG_REQUEST, .id = dvm_str_c("job"), .kind = 5100,
                   .input = dvm_str_c("x"), .budget = 1000000};
    dvm_provider_handle_msg(p, &req, 0);
    dvm_provider_action a;
    while (dvm_provider_next_action(p, &a)) {
    }
    uint64_t acked = 0;
    double t0 = bench_now();
    for (size_t i = 0; i < n; i++) {
        dvm_msg pay = {.type = DVM_MSG_PAYMENT, .id = dvm_str_c("job"), .token = dvm_str_c(tokens[i])};
        if (dvm_provider_handle_msg(p, &pay, 0) != DVM_OK)
            goto out;
        while (dvm_provider_next_action(p, &a)) {
            if (a.type == DVM_PACT_VERIFY_TOKEN) {
                dvm_token t;
                char reason[160];
                uint64_t amount = 0;
                dvm_verify_result r = {DVM_VERIFY_REJECTED, 0, {NULL, 0}};
                if (dvm_token_decode(a.token.ptr, a.token.len, &t, reason, sizeof reason) == DVM_OK) {
                    if (dvm_pay_policy_check(pol, &t, &amount, reason, sizeof reason) == DVM_PAY_ACCEPT) {
                        r.outcome = DVM_VERIFY_OK;
                        r.amount = amount;
                    }
                    dvm_token_free(&t);
                }
                if (dvm_provider_on_verify(p, a.verify_id, &r, 0) != DVM_OK)
                    goto out;
            } else if (a.type == DVM_PACT_SEND && a.msg.type == DVM_MSG_PAYMENT_ACK) {
                acked += a.msg.amount;
            }
        }
    }
    double dt = bench_now() - t0;
    if (acked == n * sats_each)
        rate = (double)n / dt;
    else
        fprintf(stderr, "bench payment: credited %llu of %llu sats\n", (unsigned long long)acked,
                (unsigned long long)(n * sats_each));
out:
    dvm_provider_free(p);
    dvm_pay_policy_free(pol);
    return rate;
}

static int mint_ops(const bench_opts *o, bench_cashu_env *e)
{
    size_t n = (size_t)(2000 * o->scale) + 100;
    uint8_t k[32], (*B)[DVM_POINT_BYTES] = malloc(n * DVM_POINT_BYTES);
    uint8_t (*C)[DVM_POINT_BYTES] = malloc(n * DVM_POINT_BYTES);
    char (*secret)[65] = malloc(n * 65);
    double sign[BENCH_MAX_RUNS], verify[BENCH_MAX_RUNS];
    int rc = -1;
    if (!B || !C || !secret || dvm_cashu_scalar_random(e->ctx, &e->rng, k) != DVM_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        uint8_t r[32];
        dvm_cashu_secret_random(&e->rng, secret[i]);
        if (dvm_cashu_scalar_random(e->ctx, &e->rng, r) != DVM_OK ||
            dvm_cashu_blind(e->ctx, (const uint8_t *)secret[i], 64, r, B[i]) != DVM_OK)
            goto out;
    }
    for (int run = 0; run < o->runs; run++) {
        double t0 = bench_now();
        for (size_t i = 0; i < n; i++) {
            dvm_dleq d;
            if (dvm_cashu_sign(e->ctx, k, B[i], C[i]) != DVM_OK ||
                dvm_cashu_dleq_prove(e->ctx, k, B[i], C[i], &d) != DVM_OK)
                goto out;
        }
        sign[run] = (double)n / (bench_now() - t0);
        /* C == k*Y for unblinded proofs: sign Y directly (r = 0). */
        for (size_t i = 0; i < n; i++) {
            uint8_t Y[DVM_POINT_BYTES];
            if (dvm_cashu_hash_to_curve(e->ctx, (const uint8_t *)secret[i], 64, Y) != DVM_OK ||
                dvm_cashu_sign(e->ctx, k, Y, C[i]) != DVM_OK)
                goto out;
        }
        t0 = bench_now();
        for (size_t i = 0; i < n; i++)
            if (dvm_cashu_verify(e->ctx, k, (const uint8_t *)secret[i], 64, C[i]) != DVM_OK)
                goto out;
        verify[run] = (double)n / (bench_now() - t0);
    }
    bench_emit("mint_sign", "\"impl\":\"c\",\"dleq\":true", "sigs_per_s", sign, o->runs);
    bench_emit("mint_verify", "\"impl\":\"c\"", "proofs_per_s", verify, o->runs);
    rc = 0;
out:
    free(B);
    free(C);
    free(secret);
    return rc;
}

int bench_payment(const bench_opts *o, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    bench_cashu_env e;
    if (bench_cashu_env_init(&e) != 0) {
        fprintf(stderr, "bench payment: mint setup failed\n");
        return 1;
    }
    static const uint64_t amounts[3][4] = {{8}, {8, 2}, {8, 4, 2, 1}};
    static const size_t nproofs[3] = {1, 2, 4};
    int rc = 1;
    size_t n = (size_t)(1000 * o->scale) + 50;
    char **tokens = calloc(n, sizeof *tokens);
    if (!tokens)
        goto out;
    for (size_t c = 0; c < 3; c++) {
        uint64_t sats = 0;
        for (size_t j = 0; j < nproofs[c]; j++)
            sats += amounts[c][j];
        for (size_t i = 0; i < n; i++) {
            dvm_buf b;
            dvm_buf_init(&b, 0);
            if (bench_cashu_make_token(&e, amounts[c], nproofs[c], &b) != 0 || dvm_buf_putc(&b, 0) != DVM_OK) {
                fprintf(stderr, "bench payment: minting failed\n");
                dvm_buf_free(&b);
                goto out;
            }
            free(tokens[i]);
            tokens[i] = (char *)b.data; /* ownership moves to tokens[] */
        }
        double rates[BENCH_MAX_RUNS];
        for (int r = 0; r < o->runs; r++)
            if ((rates[r] = payment_run(&e, tokens, n, sats)) < 0)
                goto out;
        char extra[96];
        snprintf(extra, sizeof extra, "\"impl\":\"c\",\"proofs\":%zu,\"dleq\":true", nproofs[c]);
        bench_emit("payment", extra, "payments_per_s", rates, o->runs);
    }
    rc = mint_ops(o, &e) == 0 ? 0 : 1;
out:
    if (tokens)
        for (size_t i = 0; i < n; i++)
            free(tokens[i]);
    free(tokens);
    bench_cashu_env_free(&e);
    return rc;
}
