/* Property tests over seeded random inputs: amounts split and recombine,
 * micro-token plans, proof selection covers amount + fee, random swaps
 * conserve value, JSON round trips. */
#include "cashu_test_util.h"

#include "cashu/nut_json.h"

#define ROUNDS 2000

Test(props, split_and_recombine)
{
    test_prng p = {.s = 12345};
    for (int round = 0; round < ROUNDS; round++) {
        uint64_t a = test_prng_next(&p);
        if (round % 3 == 0)
            a &= 0xffff; /* plenty of small amounts too */
        uint64_t parts[64];
        size_t n;
        dvm_cashu_amount_split(a, parts, &n);
        cr_assert_eq(n, (size_t)__builtin_popcountll(a));
        uint64_t sum = 0;
        for (size_t i = 0; i < n; i++) {
            cr_assert(dvm_cashu_amount_is_pow2(parts[i]));
            if (i)
                cr_assert_gt(parts[i], parts[i - 1], "ascending and distinct");
            sum += parts[i];
        }
        cr_assert_eq(sum, a);
    }
    uint64_t parts[64];
    size_t n;
    dvm_cashu_amount_split(0, parts, &n);
    cr_assert_eq(n, 0);
    cr_assert_eq(dvm_cashu_amount_order(1), 0);
    cr_assert_eq(dvm_cashu_amount_order(1ULL << 63), 63);
    cr_assert_eq(dvm_cashu_amount_order(3), -1);
    cr_assert_eq(dvm_cashu_amount_order(0), -1);
}

Test(props, plans_make_exact_tokens)
{
    test_prng p = {.s = 777};
    uint64_t amounts[DVM_WALLET_MAX_OUTPUTS];
    for (int round = 0; round < ROUNDS; round++) {
        uint64_t token = 1 + test_prng_next(&p) % 1000;
        size_t k = (size_t)(test_prng_next(&p) % 50);
        uint64_t total = token * k + test_prng_next(&p) % 100000;
        size_t n, per;
        cr_assert_eq(dvm_wallet_plan(total, token, k, amounts, DVM_WALLET_MAX_OUTPUTS, &n, &per),
                     DVM_OK);
        for (size_t t = 0; t < k; t++) {
            uint64_t s = 0;
            for (size_t i = 0; i < per; i++)
                s += amounts[t * per + i];
            cr_assert_eq(s, token);
        }
        uint64_t s = 0;
        for (size_t i = 0; i < n; i++) {
            cr_assert(dvm_cashu_amount_is_pow2(amounts[i]));
            s += amounts[i];
        }
        cr_assert_eq(s, total);
        if (k)
            cr_assert_eq(dvm_wallet_plan(token * k - 1, token, k, amounts,
                                         DVM_WALLET_MAX_OUTPUTS, &n, &per),
                         DVM_ERR_LIMIT);
    }
    size_t n, per;
    cr_assert_eq(dvm_wallet_plan(100, 0, 3, amounts, 10, &n, &per), DVM_ERR_INVALID);
    cr_assert_eq(dvm_wallet_plan(1000, 255, 3, amounts, 10, &n, &per), DVM_ERR_LIMIT,
                 "24 outputs do not fit in 10");
}

Test(props, selection_covers_amount_and_fee)
{
    test_prng p = {.s = 4242};
    dvm_keyset ks[2];
    memset(ks, 0, sizeof ks);
    strcpy(ks[0].id, "00aaaaaaaaaaaaaa");
    strcpy(ks[1].id, "00bbbbbbbbbbbbbb");
    ks[0].input_fee_ppk = 0;
    ks[1].input_fee_ppk = 400;
    dvm_proof proofs[40];
    bool chosen[40];
    for (int round = 0; round < 500; round++) {
        size_t n = 1 + test_prng_next(&p) % 40;
        uint64_t total = 0;
        memset(proofs, 0, sizeof proofs);
        for (size_t i = 0; i < n; i++) {
            proofs[i].amount = 1ULL << (test_prng_next(&p) % 12);
            strcpy(proofs[i].id, ks[test_prng_next(&p) % 2].id);
            total += proofs[i].amount;
        }
        uint64_t want = test_prng_next(&p) % (total + 10);
        uint64_t sum, fee;
        dvm_err e = dvm_wallet_select(proofs, n, want, ks, 2, chosen, &sum, &fee);
        if (e == DVM_OK) {
            uint64_t s = 0, ppk = 0;
            for (size_t i = 0; i < n; i++)
                if (chosen[i]) {
                    s += proofs[i].amount;
                    ppk += dvm_keyset_find(ks, 2, proofs[i].id)->input_fee_ppk;
                }
            cr_assert_eq(s, sum);
            cr_assert_eq(fee, dvm_cashu_fee_from_ppk(ppk));
            cr_assert_geq(sum, want + fee);
        } else {
            cr_assert_eq(e, DVM_ERR_LIMIT);
            /* Even all proofs cannot pay want + their fee. */
            uint64_t ppk = 0;
            for (size_t i = 0; i < n; i++)
                ppk += dvm_keyset_find(ks, 2, proofs[i].id)->input_fee_ppk;
            cr_assert_lt(total, want + dvm_cashu_fee_from_ppk(ppk));
        }
    }
}

Test(props, random_swaps_conserve_value)
{
    dvm_mint_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.input_fee_ppk = 250;
    test_env env;
    test_env_init(&env, &cfg, 31337);
    const dvm_keyset *ks = test_active(&env);
    dvm_proof *wallet = calloc(2000, sizeof *wallet);
    size_t n = test_mint_proofs(&env, 5000, wallet);
    uint64_t fees = 0;
    test_prng p = {.s = 99};
    for (int round = 0; round < 20; round++) {
        uint64_t token = 1 + test_prng_next(&p) % 20;
        size_t k = 1 + (size_t)(test_prng_next(&p) % 10);
        bool *chosen = calloc(n, sizeof *chosen);
        uint64_t sum, fee;
        cr_assert_eq(dvm_wallet_select(wallet, n, token * k, ks, 1, chosen, &sum, &fee), DVM_OK);
        dvm_proof *in = calloc(n, sizeof *in);
        size_t n_in = 0, keep = 0;
        for (size_t i = 0; i < n; i++) {
            if (chosen[i])
                in[n_in++] = wallet[i];
            else
                wallet[keep++] = wallet[i];
        }
        dvm_wallet_swap sw;
        char reason[160];
        cr_assert_eq(dvm_wallet_swap_prepare(env.ctx, &env.rng, ks, 1, ks, in, n_in, token, k,
                                             &sw, reason, sizeof reason),
                     DVM_OK, "%s", reason);
        cr_assert_eq(sw.fee, fee);
        dvm_blind_signature *sigs = calloc(sw.n_outputs, sizeof *sigs);
        dvm_mint_error err;
        cr_assert_eq(dvm_mint_swap(env.mint, sw.inputs, sw.n_inputs, sw.messages, sw.n_outputs,
                                   sigs, &err),
                     DVM_OK, "%s", err.detail);
        cr_assert_lt(keep + sw.n_outputs, 2000);
        cr_assert_eq(dvm_wallet_swap_finish(env.ctx, ks, &sw, sigs, sw.n_outputs, true,
                                            wallet + keep, reason, sizeof reason),
                     DVM_OK, "%s", reason);
        n = keep + sw.n_outputs;
        fees += sw.fee;
        dvm_wallet_swap_free(&sw);
        free(sigs);
        free(in);
        free(chosen);
        uint64_t total;
        cr_assert_eq(dvm_wallet_total(wallet, n, &total), DVM_OK);
        cr_assert_eq(total + fees, 5000, "value is conserved up to fees");
    }
    cr_assert_eq(dvm_mint_verify_proofs(env.mint, wallet, n, NULL, NULL), DVM_OK);
    free(wallet);
    test_env_free(&env);
}

Test(props, json_round_trips_of_random_models)
{
    test_prng p = {.s = 5};
    dvm_rng rng = {.fill = test_prng_fill, .ctx = &p};
    dvm_cashu_ctx *ctx;
    cr_assert_eq(dvm_cashu_ctx_new(&ctx, &rng), DVM_OK);
    for (int round = 0; round < 200; round++) {
        dvm_proof pr;
        memset(&pr, 0, sizeof pr);
        pr.amount = 1ULL << (test_prng_next(&p) % 53);
        strcpy(pr.id, "009a1f293253e41e");
        dvm_cashu_secret_random(&rng, pr.secret);
        pr.secret_len = 64;
        uint8_t k[32];
        cr_assert_eq(dvm_cashu_scalar_random(ctx, &rng, k), DVM_OK);
        cr_assert_eq(dvm_cashu_pubkey(ctx, k, pr.C), DVM_OK);
        pr.has_dleq = round % 2;
        if (pr.has_dleq) {
            test_prng_fill(&p, pr.dleq.e, 32);
            test_prng_fill(&p, pr.dleq.s, 32);
            test_prng_fill(&p, pr.dleq.r, 32);
            pr.dleq.has_r = true;
        }
        json_t *j = dvm_cashu_proof_to_json(&pr);
        char *txt = json_dumps(j, 0);
        json_t *j2 = json_loads(txt, 0, NULL);
        dvm_proof back;
        char reason[128];
        cr_assert_eq(dvm_cashu_proof_from_json(ctx, j2, &back, reason, sizeof reason), DVM_OK,
                     "%s", reason);
        cr_assert_eq(memcmp(&back, &pr, sizeof pr), 0);
        free(txt);
        json_decref(j);
        json_decref(j2);
    }
    dvm_cashu_ctx_free(ctx);
}

Test(props, parsers_reject_bad_fields_with_reasons)
{
    dvm_cashu_ctx *ctx;
    cr_assert_eq(dvm_cashu_ctx_new(&ctx, NULL), DVM_OK);
    const char *bad[] = {
        "{\"amount\":3,\"id\":\"009a1f293253e41e\",\"B_\":\"02a9acc1e48c25eeeb9289b5031cc57da9fe72f3fe2861d264bdc074209b107ba2\"}",
        "{\"amount\":4,\"id\":\"009A1F293253E41E\",\"B_\":\"02a9acc1e48c25eeeb9289b5031cc57da9fe72f3fe2861d264bdc074209b107ba2\"}",
        "{\"amount\":4,\"id\":\"009a1f293253e41e\",\"B_\":\"05a9acc1e48c25eeeb9289b5031cc57da9fe72f3fe2861d264bdc074209b107ba2\"}",
        "{\"amount\":4,\"id\":\"009a1f293253e41e\",\"B_\":\"02a9acc1\"}",
        "{\"amount\":\"4\",\"id\":\"009a1f293253e41e\",\"B_\":\"02a9acc1e48c25eeeb9289b5031cc57da9fe72f3fe2861d264bdc074209b107ba2\"}",
        "{\"amount\":-4,\"id\":\"009a1f293253e41e\",\"B_\":\"02a9acc1e48c25eeeb9289b5031cc57da9fe72f3fe2861d264bdc074209b107ba2\"}",
        "{\"id\":\"009a1f293253e41e\",\"B_\":\"02a9acc1e48c25eeeb9289b5031cc57da9fe72f3fe2861d264bdc074209b107ba2\"}",
        "[]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *j = json_loads(bad[i], 0, NULL);
        cr_assert_not_null(j);
        dvm_blinded_message m;
        char reason[128] = "";
        cr_assert_eq(dvm_cashu_blinded_message_from_json(ctx, j, &m, reason, sizeof reason),
                     DVM_ERR_INVALID, "case %zu accepted", i);
        cr_assert(strlen(reason) > 0);
        json_decref(j);
    }
    dvm_cashu_ctx_free(ctx);
}
