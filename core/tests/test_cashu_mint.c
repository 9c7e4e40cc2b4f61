/* Mint and wallet logic together over the in-memory store: mint, swap into
 * micro-tokens, verify, double spend, DLEQ, tampering, keysets, balance,
 * duplicates, fees, melt, checkstate, limits, storage failure. */
#include "cashu_test_util.h"

#include "cashu/mint_json.h"
#include "cashu/nut_json.h"

static test_env env;

static void setup(void)
{
    test_env_init(&env, NULL, 1);
}

static void teardown(void)
{
    test_env_free(&env);
}

TestSuite(mint, .init = setup, .fini = teardown);

Test(mint, keysets_are_derived_deterministically)
{
    const dvm_keyset *ks = test_active(&env);
    cr_assert_eq(strlen(ks->id), 16);
    cr_assert_eq(strncmp(ks->id, "00", 2), 0);
    cr_assert_eq(dvm_keyset_check_id(ks), DVM_OK);
    cr_assert_eq(__builtin_popcountll(ks->present), 64);
    cr_assert(ks->active);
    /* Same seed -> same keyset; another seed -> another one. */
    dvm_mint_config cfg;
    memset(&cfg, 0, sizeof cfg);
    memset(cfg.seed, 0x42, 32);
    test_env e2;
    test_env_init(&e2, &cfg, 99);
    cr_assert_str_eq(test_active(&e2)->id, ks->id);
    cr_assert_eq(memcmp(test_active(&e2)->keys, ks->keys, sizeof ks->keys), 0);
    test_env_free(&e2);
    cfg.seed[0] ^= 1;
    cfg.id_version = 1;
    test_env_init(&e2, &cfg, 99);
    cr_assert_str_neq(test_active(&e2)->id, ks->id);
    cr_assert_eq(strlen(test_active(&e2)->id), 66);
    cr_assert_eq(dvm_keyset_check_id(test_active(&e2)), DVM_OK);
    test_env_free(&e2);
}

Test(mint, mint_quote_then_mint)
{
    dvm_mint_quote q, q2;
    dvm_mint_error err;
    cr_assert_eq(dvm_mint_create_mint_quote(env.mint, 100, "sat", env.now_ms, &q, &err), DVM_OK);
    cr_assert_eq(strlen(q.quote), 32);
    cr_assert_eq(q.state, DVM_MINT_QUOTE_PAID);
    cr_assert_eq(strncmp(q.request, "lnbc1000n1p", 11), 0);
    uint64_t sats;
    cr_assert_eq(dvm_bolt11_amount_sats(q.request, &sats), DVM_OK);
    cr_assert_eq(sats, 100);
    cr_assert_eq(q.expiry, env.now_ms / 1000 + 3600);
    cr_assert_eq(dvm_mint_get_mint_quote(env.mint, q.quote, &q2, &err), DVM_OK);
    cr_assert_str_eq(q2.request, q.request);

    uint64_t amounts[3] = {4, 32, 64};
    dvm_wallet_output outs[3];
    dvm_blinded_message msgs[3];
    dvm_blind_signature sigs[3];
    dvm_proof proofs[3];
    const dvm_keyset *ks = test_active(&env);
    cr_assert_eq(dvm_wallet_make_outputs(env.ctx, &env.rng, ks, amounts, 3, outs), DVM_OK);
    for (int i = 0; i < 3; i++)
        msgs[i] = outs[i].msg;
    cr_assert_eq(dvm_mint_mint(env.mint, q.quote, msgs, 3, env.now_ms, sigs, &err), DVM_OK, "%s",
                 err.detail);
    for (int i = 0; i < 3; i++)
        cr_assert(sigs[i].has_dleq);
    char reason[128];
    cr_assert_eq(dvm_wallet_unblind(env.ctx, ks, outs, sigs, 3, true, proofs, reason,
                                    sizeof reason),
                 DVM_OK, "%s", reason);
    for (int i = 0; i < 3; i++) {
        cr_assert(proofs[i].has_dleq && proofs[i].dleq.has_r);
        cr_assert_eq(dvm_cashu_dleq_verify_proof(env.ctx, dvm_keyset_key(ks, proofs[i].amount),
                                                 &proofs[i]),
                     DVM_OK);
    }
    cr_assert_eq(dvm_mint_verify_proofs(env.mint, proofs, 3, NULL, &err), DVM_OK, "%s",
                 err.detail);
    /* The quote is now ISSUED: a second mint is refused with 20002. */
    dvm_wallet_output outs2[3];
    cr_assert_eq(dvm_wallet_make_outputs(env.ctx, &env.rng, ks, amounts, 3, outs2), DVM_OK);
    for (int i = 0; i < 3; i++)
        msgs[i] = outs2[i].msg;
    cr_assert_eq(dvm_mint_mint(env.mint, q.quote, msgs, 3, env.now_ms, sigs, &err),
                 DVM_ERR_PROTO);
    cr_assert_eq(err.code, DVM_NUT_QUOTE_ISSUED);
    cr_assert_eq(dvm_mint_get_mint_quote(env.mint, q.quote, &q2, &err), DVM_OK);
    cr_assert_eq(q2.state, DVM_MINT_QUOTE_ISSUED);
    /* Unknown quote: 20000; mint amount != quote: 11005. */
    cr_assert_eq(dvm_mint_mint(env.mint, "nope", msgs, 3, env.now_ms, sigs, &err),
                 DVM_ERR_NOT_FOUND);
    cr_assert_eq(err.code, DVM_NUT_QUOTE_UNKNOWN);
    cr_assert_eq(dvm_mint_create_mint_quote(env.mint, 99, "sat", env.now_ms, &q, &err), DVM_OK);
    cr_assert_eq(dvm_mint_mint(env.mint, q.quote, msgs, 3, env.now_ms, sigs, &err),
                 DVM_ERR_PROTO);
    cr_assert_eq(err.code, DVM_NUT_UNBALANCED);
}

Test(mint, mint_quote_rejects_bad_unit_and_amount)
{
    dvm_mint_quote q;
    dvm_mint_error err;
    cr_assert_eq(dvm_mint_create_mint_quote(env.mint, 10, "usd", env.now_ms, &q, &err),
                 DVM_ERR_UNSUPPORTED);
    cr_assert_eq(err.code, DVM_NUT_UNIT_UNSUPPORTED);
    cr_assert_eq(dvm_mint_create_mint_quote(env.mint, 0, "sat", env.now_ms, &q, &err),
                 DVM_ERR_LIMIT);
    cr_assert_eq(err.code, DVM_NUT_AMOUNT_OUT_OF_RANGE);
    cr_assert_eq(dvm_mint_create_mint_quote(env.mint, (1ULL << 40) + 1, "sat", env.now_ms, &q,
                                            &err),
                 DVM_ERR_LIMIT);
}

Test(mint, unpaid_quote_then_fake_payment)
{
    dvm_mint_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.mint_quotes_unpaid = true;
    test_env e;
    test_env_init(&e, &cfg, 7);
    dvm_mint_quote q;
    dvm_mint_error err;
    cr_assert_eq(dvm_mint_create_mint_quote(e.mint, 8, "sat", e.now_ms, &q, &err), DVM_OK);
    cr_assert_eq(q.state, DVM_MINT_QUOTE_UNPAID);
    uint64_t a = 8;
    dvm_wallet_output o;
    dvm_blind_signature s;
    cr_assert_eq(dvm_wallet_make_outputs(e.ctx, &e.rng, test_active(&e), &a, 1, &o), DVM_OK);
    cr_assert_eq(dvm_mint_mint(e.mint, q.quote, &o.msg, 1, e.now_ms, &s, &err), DVM_ERR_PROTO);
    cr_assert_eq(err.code, DVM_NUT_QUOTE_NOT_PAID);
    /* Expired and unpaid: 20007. */
    cr_assert_eq(dvm_mint_mint(e.mint, q.quote, &o.msg, 1, e.now_ms + 3601000, &s, &err),
                 DVM_ERR_PROTO);
    cr_assert_eq(err.code, DVM_NUT_QUOTE_EXPIRED);
    cr_assert_eq(dvm_mint_fake_pay_quote(e.mint, q.quote, &err), DVM_OK);
    cr_assert_eq(dvm_mint_mint(e.mint, q.quote, &o.msg, 1, e.now_ms, &s, &err), DVM_OK, "%s",
                 err.detail);
    test_env_free(&e);
}

Test(mint, swap_into_micro_tokens_then_double_spend)
{
    dvm_proof in[64];
    size_t n_in = test_mint_proofs(&env, 100, in);
    cr_assert_eq(n_in, 3); /* 4 + 32 + 64 */
    const dvm_keyset *ks = test_active(&env);
    dvm_wallet_swap sw;
    char reason[160];
    cr_assert_eq(dvm_wallet_swap_prepare(env.ctx, &env.rng, ks, 1, ks, in, n_in, 7, 10, &sw,
                                         reason, sizeof reason),
                 DVM_OK, "%s", reason);
    cr_assert_eq(sw.per_token, 3); /* 7 = 1 + 2 + 4 */
    cr_assert_eq(sw.change, 30);
    cr_assert_eq(sw.fee, 0);
    cr_assert_eq(sw.n_outputs, 10 * 3 + 4); /* 30 = 2 + 4 + 8 + 16 */
    dvm_blind_signature *sigs = calloc(sw.n_outputs, sizeof *sigs);
    dvm_proof *out = calloc(sw.n_outputs, sizeof *out);
    dvm_mint_error err;
    cr_assert_eq(dvm_mint_swap(env.mint, sw.inputs, sw.n_inputs, sw.messages, sw.n_outputs, sigs,
                               &err),
                 DVM_OK, "%s", err.detail);
    cr_assert_eq(dvm_wallet_swap_finish(env.ctx, ks, &sw, sigs, sw.n_outputs, true, out, reason,
                                        sizeof reason),
                 DVM_OK, "%s", reason);
    for (size_t t = 0; t < 10; t++) {
        uint64_t sum;
        cr_assert_eq(dvm_wallet_total(out + t * sw.per_token, sw.per_token, &sum), DVM_OK);
        cr_assert_eq(sum, 7, "token %zu", t);
    }
    uint64_t total;
    cr_assert_eq(dvm_wallet_total(out, sw.n_outputs, &total), DVM_OK);
    cr_assert_eq(total, 100);
    cr_assert_eq(dvm_mint_verify_proofs(env.mint, out, sw.n_outputs, NULL, &err), DVM_OK);

    /* Checkstate: inputs SPENT, new proofs UNSPENT. */
    uint8_t Ys[4][33];
    dvm_proof_state st[4];
    cr_assert_eq(dvm_cashu_proof_Y(env.ctx, &in[0], Ys[0]), DVM_OK);
    cr_assert_eq(dvm_cashu_proof_Y(env.ctx, &in[2], Ys[1]), DVM_OK);
    cr_assert_eq(dvm_cashu_proof_Y(env.ctx, &out[0], Ys[2]), DVM_OK);
    cr_assert_eq(dvm_cashu_proof_Y(env.ctx, &out[sw.n_outputs - 1], Ys[3]), DVM_OK);
    cr_assert_eq(dvm_mint_checkstate(env.mint, (const uint8_t(*)[33])Ys, 4, st, &err), DVM_OK);
    cr_assert_eq(st[0], DVM_PROOF_SPENT);
    cr_assert_eq(st[1], DVM_PROOF_SPENT);
    cr_assert_eq(st[2], DVM_PROOF_UNSPENT);
    cr_assert_eq(st[3], DVM_PROOF_UNSPENT);
    cr_assert_str_eq(dvm_proof_state_name(st[0]), "SPENT");

    /* Double spend: the same inputs with fresh outputs -> 11001. */
    dvm_wallet_swap sw2;
    cr_assert_eq(dvm_wallet_swap_prepare(env.ctx, &env.rng, ks, 1, ks, in, n_in, 0, 0, &sw2,
                                         reason, sizeof reason),
                 DVM_OK);
    dvm_blind_signature sigs2[8];
    cr_assert_eq(dvm_mint_swap(env.mint, sw2.inputs, sw2.n_inputs, sw2.messages, sw2.n_outputs,
                               sigs2, &err),
                 DVM_ERR_SPENT);
    cr_assert_eq(err.code, DVM_NUT_PROOFS_SPENT);
    cr_assert_str_eq(dvm_nut_error_text(err.code), "Proofs already spent");

    /* Outputs signed before: fresh inputs, reused outputs -> 11003. */
    dvm_proof in3[64];
    size_t n3 = test_mint_proofs(&env, 100, in3);
    cr_assert_eq(dvm_mint_swap(env.mint, in3, n3, sw.messages + sw.n_outputs - 4, 4, sigs2,
                               &err),
                 DVM_ERR_PROTO);
    cr_assert_eq(err.code, DVM_NUT_UNBALANCED); /* 30 != 100 */
    uint64_t want[3] = {4, 32, 64};
    dvm_blinded_message reused[3];
    size_t k = 0;
    for (size_t i = 0; i < sw.n_outputs && k < 3; i++)
        if (sw.messages[i].amount == want[k])
            reused[k++] = sw.messages[i];
    cr_assert_eq(k, 1); /* only amount 4 exists among the old outputs */
    dvm_wallet_output fresh[2];
    cr_assert_eq(dvm_wallet_make_outputs(env.ctx, &env.rng, ks, want + 1, 2, fresh), DVM_OK);
    reused[1] = fresh[0].msg;
    reused[2] = fresh[1].msg;
    cr_assert_eq(dvm_mint_swap(env.mint, in3, n3, reused, 3, sigs2, &err), DVM_ERR_EXISTS);
    cr_assert_eq(err.code, DVM_NUT_OUTPUTS_SIGNED);
    /* ...and the failed swap spent nothing: the same inputs still swap. */
    cr_assert_eq(dvm_wallet_make_outputs(env.ctx, &env.rng, ks, want, 1, fresh), DVM_OK);
    reused[0] = fresh[0].msg;
    cr_assert_eq(dvm_mint_swap(env.mint, in3, n3, reused, 3, sigs2, &err), DVM_OK, "%s",
                 err.detail);
    dvm_wallet_swap_free(&sw);
    dvm_wallet_swap_free(&sw2);
    free(sigs);
    free(out);
}

/* A one-output swap request spending `in` into outputs worth `amounts`. */
static dvm_err try_swap(const dvm_proof *in, size_t n_in, const uint64_t *amounts, size_t n_out,
                        dvm_mint_error *err)
{
    dvm_wallet_output outs[16];
    dvm_blinded_message msgs[16];
    dvm_blind_signature sigs[16];
    cr_assert_eq(dvm_wallet_make_outputs(env.ctx, &env.rng, test_active(&env), amounts, n_out,
                                         outs),
                 DVM_OK);
    for (size_t i = 0; i < n_out; i++)
        msgs[i] = outs[i].msg;
    return dvm_mint_swap(env.mint, in, n_in, msgs, n_out, sigs, err);
}

Test(mint, tampered_proofs_and_keysets_are_rejected)
{
    dvm_proof in[64];
    size_t n = test_mint_proofs(&env, 12, in); /* 4 + 8 */
    cr_assert_eq(n, 2);
    uint64_t out_amounts[2] = {4, 8};
    dvm_mint_error err;
    /* Tampered C: another valid point (the other proof's C). */
    dvm_proof bad[2] = {in[0], in[1]};
    memcpy(bad[0].C, in[1].C, 33);
    cr_assert_eq(try_swap(bad, 2, out_amounts, 2, &err), DVM_ERR_CRYPTO);
    cr_assert_eq(err.code, DVM_NUT_PROOF_VERIFICATION_FAILED);
    /* Tampered secret. */
    bad[0] = in[0];
    bad[0].secret[0] = bad[0].secret[0] == 'a' ? 'b' : 'a';
    cr_assert_eq(try_swap(bad, 2, out_amounts, 2, &err), DVM_ERR_CRYPTO);
    cr_assert_eq(err.code, DVM_NUT_PROOF_VERIFICATION_FAILED);
    /* Tampered amount (claims 8 for a 4 proof). */
    bad[0] = in[0];
    bad[0].amount = 8;
    uint64_t sixteen[1] = {16};
    cr_assert_eq(try_swap(bad, 2, sixteen, 1, &err), DVM_ERR_CRYPTO);
    cr_assert_eq(err.code, DVM_NUT_PROOF_VERIFICATION_FAILED);
    /* Unknown keyset on an input. */
    bad[0] = in[0];
    strcpy(bad[0].id, "00ffffffffffffff");
    cr_assert_eq(try_swap(bad, 2, out_amounts, 2, &err), DVM_ERR_NOT_FOUND);
    cr_assert_eq(err.code, DVM_NUT_KEYSET_UNKNOWN);
    /* Unknown keyset on an output. */
    dvm_wallet_output o;
    dvm_blind_signature s;
    uint64_t twelve_parts[2] = {4, 8};
    cr_assert_eq(dvm_wallet_make_outputs(env.ctx, &env.rng, test_active(&env), twelve_parts, 1,
                                         &o),
                 DVM_OK);
    strcpy(o.msg.id, "00ffffffffffffff");
    cr_assert_eq(dvm_mint_swap(env.mint, in, 1, &o.msg, 1, &s, &err), DVM_ERR_NOT_FOUND);
    cr_assert_eq(err.code, DVM_NUT_KEYSET_UNKNOWN);
    /* Nothing above spent anything. */
    cr_assert_eq(try_swap(in, 2, out_amounts, 2, &err), DVM_OK, "%s", err.detail);
}

Test(mint, inactive_keyset_cannot_sign_but_can_be_spent)
{
    dvm_mint_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.n_keysets = 2;
    test_env e;
    test_env_init(&e, &cfg, 5);
    cr_assert_eq(dvm_mint_keyset_count(e.mint), 2);
    const dvm_keyset *old = dvm_mint_keyset(e.mint, 0);
    const dvm_keyset *cur = dvm_mint_keyset(e.mint, 1);
    cr_assert(!old->active && cur->active);
    cr_assert_str_neq(old->id, cur->id);
    dvm_proof in[64];
    size_t n = test_mint_proofs(&e, 8, in);
    uint64_t a = 8;
    dvm_wallet_output o;
    dvm_blind_signature s;
    dvm_mint_error err;
    cr_assert_eq(dvm_wallet_make_outputs(e.ctx, &e.rng, old, &a, 1, &o), DVM_OK);
    cr_assert_eq(dvm_mint_swap(e.mint, in, n, &o.msg, 1, &s, &err), DVM_ERR_PROTO);
    cr_assert_eq(err.code, DVM_NUT_KEYSET_INACTIVE);
    test_env_free(&e);
}

Test(mint, unbalanced_and_duplicates)
{
    dvm_proof in[64];
    size_t n = test_mint_proofs(&env, 12, in);
    dvm_mint_error err;
    uint64_t more[2] = {8, 8};
    cr_assert_eq(try_swap(in, n, more, 2, &err), DVM_ERR_PROTO);
    cr_assert_eq(err.code, DVM_NUT_UNBALANCED);
    uint64_t less[1] = {8};
    cr_assert_eq(try_swap(in, n, less, 1, &err), DVM_ERR_PROTO);
    cr_assert_eq(err.code, DVM_NUT_UNBALANCED);
    /* Duplicate inputs. */
    dvm_proof dup[3] = {in[0], in[1], in[0]};
    uint64_t sixteen[1] = {16};
    cr_assert_eq(try_swap(dup, 3, sixteen, 1, &err), DVM_ERR_EXISTS);
    cr_assert_eq(err.code, DVM_NUT_DUPLICATE_INPUTS);
    /* Duplicate outputs. */
    dvm_wallet_output o[2];
    dvm_blinded_message msgs[2];
    dvm_blind_signature sigs[2];
    uint64_t sixes[2] = {4, 8};
    cr_assert_eq(dvm_wallet_make_outputs(env.ctx, &env.rng, test_active(&env), sixes, 1, o),
                 DVM_OK);
    msgs[0] = o[0].msg;
    msgs[1] = o[0].msg;
    msgs[1].amount = 8;
    cr_assert_eq(dvm_mint_swap(env.mint, in, n, msgs, 2, sigs, &err), DVM_ERR_EXISTS);
    cr_assert_eq(err.code, DVM_NUT_DUPLICATE_OUTPUTS);
    /* Output amount that is not a power of two. */
    msgs[0] = o[0].msg;
    msgs[0].amount = 12;
    cr_assert_eq(dvm_mint_swap(env.mint, in, n, msgs, 1, sigs, &err), DVM_ERR_LIMIT);
    cr_assert_eq(err.code, DVM_NUT_AMOUNT_OUT_OF_RANGE);
}

Test(mint, count_limits)
{
    dvm_mint_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_inputs = 2;
    cfg.max_outputs = 3;
    test_env e;
    test_env_init(&e, &cfg, 11);
    dvm_proof in[64];
    size_t n = test_mint_proofs(&e, 7, in); /* 3 proofs */
    cr_assert_eq(n, 3);
    dvm_wallet_output o[4];
    dvm_blinded_message msgs[4];
    dvm_blind_signature sigs[4];
    uint64_t amounts[4] = {1, 2, 4, 1};
    cr_assert_eq(dvm_wallet_make_outputs(e.ctx, &e.rng, test_active(&e), amounts, 4, o), DVM_OK);
    for (int i = 0; i < 4; i++)
        msgs[i] = o[i].msg;
    dvm_mint_error err;
    cr_assert_eq(dvm_mint_swap(e.mint, in, 3, msgs, 3, sigs, &err), DVM_ERR_LIMIT);
    cr_assert_eq(err.code, DVM_NUT_MAX_INPUTS);
    cr_assert_eq(dvm_mint_swap(e.mint, in, 2, msgs, 4, sigs, &err), DVM_ERR_LIMIT);
    cr_assert_eq(err.code, DVM_NUT_MAX_OUTPUTS);
    test_env_free(&e);
}

Test(mint, fees_with_input_fee_ppk)
{
    cr_assert_eq(dvm_cashu_fee_from_ppk(0), 0);
    cr_assert_eq(dvm_cashu_fee_from_ppk(1), 1);
    cr_assert_eq(dvm_cashu_fee_from_ppk(300), 1);
    cr_assert_eq(dvm_cashu_fee_from_ppk(1000), 1);
    cr_assert_eq(dvm_cashu_fee_from_ppk(1001), 2);
    dvm_mint_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.input_fee_ppk = 100;
    test_env e;
    test_env_init(&e, &cfg, 13);
    const dvm_keyset *ks = test_active(&e);
    cr_assert_eq(ks->input_fee_ppk, 100);
    dvm_proof in[64];
    size_t n = test_mint_proofs(&e, 100, in); /* 3 proofs: fee ceil(0.3) = 1 */
    uint64_t fee;
    dvm_mint_error err;
    cr_assert_eq(dvm_mint_fee(e.mint, in, n, &fee, &err), DVM_OK);
    cr_assert_eq(fee, 1);
    /* Balanced without the fee: refused. */
    dvm_wallet_output o[8];
    dvm_blinded_message msgs[8];
    dvm_blind_signature sigs[8];
    uint64_t full[3] = {4, 32, 64};
    cr_assert_eq(dvm_wallet_make_outputs(e.ctx, &e.rng, ks, full, 3, o), DVM_OK);
    for (int i = 0; i < 3; i++)
        msgs[i] = o[i].msg;
    cr_assert_eq(dvm_mint_swap(e.mint, in, n, msgs, 3, sigs, &err), DVM_ERR_PROTO);
    cr_assert_eq(err.code, DVM_NUT_UNBALANCED);
    /* The wallet plans inputs - fee: 99 in micro-tokens of 9 sats. */
    dvm_wallet_swap sw;
    char reason[160];
    cr_assert_eq(dvm_wallet_swap_prepare(e.ctx, &e.rng, ks, 1, ks, in, n, 9, 11, &sw, reason,
                                         sizeof reason),
                 DVM_OK, "%s", reason);
    cr_assert_eq(sw.fee, 1);
    cr_assert_eq(sw.change, 0);
    dvm_blind_signature *s2 = calloc(sw.n_outputs, sizeof *s2);
    dvm_proof *out = calloc(sw.n_outputs, sizeof *out);
    cr_assert_eq(dvm_mint_swap(e.mint, sw.inputs, sw.n_inputs, sw.messages, sw.n_outputs, s2,
                               &err),
                 DVM_OK, "%s", err.detail);
    cr_assert_eq(dvm_wallet_swap_finish(e.ctx, ks, &sw, s2, sw.n_outputs, true, out, reason,
                                        sizeof reason),
                 DVM_OK);
    /* 11 tokens x 2 proofs (8 + 1) = 22 inputs: fee ceil(2.2) = 3. */
    cr_assert_eq(dvm_mint_fee(e.mint, out, sw.n_outputs, &fee, &err), DVM_OK);
    cr_assert_eq(sw.n_outputs, 22);
    cr_assert_eq(fee, 3);
    /* Too little for 12 tokens of 9 after the fee. */
    dvm_wallet_swap sw3;
    cr_assert_eq(dvm_wallet_swap_prepare(e.ctx, &e.rng, ks, 1, ks, out, sw.n_outputs, 9, 11,
                                         &sw3, reason, sizeof reason),
                 DVM_ERR_LIMIT);
    cr_assert(strlen(reason) > 0);
    dvm_wallet_swap_free(&sw);
    free(s2);
    free(out);
    test_env_free(&e);
}

Test(mint, melt_with_fake_backend)
{
    dvm_proof in[64];
    size_t n = test_mint_proofs(&env, 100, in);
    dvm_mint_quote mq;
    dvm_mint_error err;
    cr_assert_eq(dvm_mint_create_mint_quote(env.mint, 60, "sat", env.now_ms, &mq, &err), DVM_OK);
    dvm_melt_quote q, paid;
    cr_assert_eq(dvm_mint_create_melt_quote(env.mint, mq.request, "sat", env.now_ms, &q, &err),
                 DVM_OK, "%s", err.detail);
    cr_assert_eq(q.amount, 60);
    cr_assert_eq(q.state, DVM_MELT_QUOTE_UNPAID);
    /* 4 + 32 < 60: not enough. */
    cr_assert_eq(dvm_mint_melt(env.mint, q.quote, in, 2, env.now_ms, &paid, &err),
                 DVM_ERR_PROTO);
    cr_assert_eq(err.code, DVM_NUT_UNBALANCED);
    cr_assert_eq(dvm_mint_melt(env.mint, q.quote, in, n, env.now_ms, &paid, &err), DVM_OK, "%s",
                 err.detail);
    cr_assert_eq(paid.state, DVM_MELT_QUOTE_PAID);
    cr_assert_eq(strlen(paid.payment_preimage), 64);
    dvm_melt_quote got;
    cr_assert_eq(dvm_mint_get_melt_quote(env.mint, q.quote, &got, &err), DVM_OK);
    cr_assert_eq(got.state, DVM_MELT_QUOTE_PAID);
    cr_assert_str_eq(got.payment_preimage, paid.payment_preimage);
    /* Spent; a second melt is refused. */
    uint8_t Y[1][33];
    dvm_proof_state st;
    cr_assert_eq(dvm_cashu_proof_Y(env.ctx, &in[0], Y[0]), DVM_OK);
    cr_assert_eq(dvm_mint_checkstate(env.mint, (const uint8_t(*)[33])Y, 1, &st, &err), DVM_OK);
    cr_assert_eq(st, DVM_PROOF_SPENT);
    cr_assert_eq(dvm_mint_melt(env.mint, q.quote, in, n, env.now_ms, &paid, &err),
                 DVM_ERR_PROTO);
    cr_assert_eq(err.code, DVM_NUT_INVOICE_PAID);
    /* Amountless and garbage invoices. */
    cr_assert_eq(dvm_mint_create_melt_quote(env.mint, "lnbc1pvjluezpp5qqqsyq", "sat",
                                            env.now_ms, &q, &err),
                 DVM_ERR_UNSUPPORTED);
    cr_assert_eq(err.code, DVM_NUT_AMOUNTLESS_INVOICE);
    cr_assert_eq(dvm_mint_create_melt_quote(env.mint, "hello", "sat", env.now_ms, &q, &err),
                 DVM_ERR_INVALID);
}

Test(mint, melt_of_spent_proofs_is_refused_and_releases_nothing)
{
    dvm_proof in[64];
    size_t n = test_mint_proofs(&env, 8, in);
    dvm_mint_error err;
    uint64_t eight = 8;
    cr_assert_eq(try_swap(in, n, &eight, 1, &err), DVM_OK);
    dvm_melt_quote q, paid;
    cr_assert_eq(dvm_mint_create_melt_quote(env.mint, "lnbc80n1pxyz", "sat", env.now_ms, &q,
                                            &err),
                 DVM_OK, "%s", err.detail);
    cr_assert_eq(q.amount, 8);
    cr_assert_eq(dvm_mint_melt(env.mint, q.quote, in, n, env.now_ms, &paid, &err),
                 DVM_ERR_SPENT);
    cr_assert_eq(err.code, DVM_NUT_PROOFS_SPENT);
    dvm_melt_quote got;
    cr_assert_eq(dvm_mint_get_melt_quote(env.mint, q.quote, &got, &err), DVM_OK);
    cr_assert_eq(got.state, DVM_MELT_QUOTE_UNPAID);
}

Test(mint, storage_failure_loses_nothing)
{
    dvm_proof in[64];
    size_t n = test_mint_proofs(&env, 12, in);
    uint64_t out_amounts[2] = {4, 8};
    dvm_mint_error err;
    dvm_mint_memstore_fail_next(env.ms, 0, 1);
    cr_assert_eq(try_swap(in, n, out_amounts, 2, &err), DVM_ERR_AGAIN);
    cr_assert_eq(err.code, DVM_NUT_GENERIC);
    cr_assert_eq(try_swap(in, n, out_amounts, 2, &err), DVM_OK, "%s", err.detail);
    dvm_mint_memstore_stats st;
    dvm_mint_memstore_stats_get(env.ms, &st);
    cr_assert_eq(st.spent, 2);
    cr_assert_eq(st.pending, 0);
}

Test(mint, bolt11_amounts)
{
    uint64_t s;
    cr_assert_eq(dvm_bolt11_amount_sats("lnbc2500u1pvjluez", &s), DVM_OK);
    cr_assert_eq(s, 250000);
    cr_assert_eq(dvm_bolt11_amount_sats("lnbc20m1pvjluez", &s), DVM_OK);
    cr_assert_eq(s, 2000000);
    cr_assert_eq(dvm_bolt11_amount_sats("lntb10n1abc", &s), DVM_OK);
    cr_assert_eq(s, 1);
    cr_assert_eq(dvm_bolt11_amount_sats("lnbcrt10000p1abc", &s), DVM_OK);
    cr_assert_eq(s, 1);
    cr_assert_eq(dvm_bolt11_amount_sats("lnbc1p1abc", &s), DVM_ERR_LIMIT); /* sub-satoshi */
    cr_assert_eq(dvm_bolt11_amount_sats("lnbc1pvjluezpp5", &s), DVM_ERR_NOT_FOUND);
    cr_assert_eq(dvm_bolt11_amount_sats("lnbc99999999999999999999m1x", &s), DVM_ERR_LIMIT);
    cr_assert_eq(dvm_bolt11_amount_sats("xx", &s), DVM_ERR_INVALID);
    cr_assert_eq(dvm_bolt11_amount_sats("lnbc10x1abc", &s), DVM_ERR_INVALID);
}

Test(mint, signatures_serialise_and_parse_back)
{
    dvm_proof in[64];
    size_t n = test_mint_proofs(&env, 5, in);
    json_t *arr = dvm_cashu_proofs_to_json(in, n);
    cr_assert_not_null(arr);
    dvm_proof *back;
    size_t nb;
    char reason[128];
    cr_assert_eq(dvm_cashu_proofs_from_json(env.ctx, arr, 10, "proofs", &back, &nb, reason,
                                            sizeof reason),
                 DVM_OK, "%s", reason);
    cr_assert_eq(nb, n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(back[i].amount, in[i].amount);
        cr_assert_str_eq(back[i].secret, in[i].secret);
        cr_assert_eq(memcmp(back[i].C, in[i].C, 33), 0);
        cr_assert_eq(memcmp(&back[i].dleq, &in[i].dleq, sizeof in[i].dleq), 0);
    }
    /* Over the limit. */
    dvm_proof *none;
    cr_assert_eq(dvm_cashu_proofs_from_json(env.ctx, arr, 1, "proofs", &none, &nb, reason,
                                            sizeof reason),
                 DVM_ERR_TOO_LARGE);
    cr_assert_null(none);
    free(back);
    json_decref(arr);
}

Test(mint, melt_interrupted_between_commits_is_recovered)
{
    dvm_proof in[64];
    size_t n = test_mint_proofs(&env, 16, in);
    dvm_mint_error err;
    dvm_melt_quote q, out;
    cr_assert_eq(dvm_mint_create_melt_quote(env.mint, "lnbc160n1pxyz", "sat", env.now_ms, &q,
                                            &err),
                 DVM_OK);
    /* The first commit (inputs PENDING) goes through, the second fails. */
    dvm_mint_memstore_fail_next(env.ms, 1, 1);
    cr_assert_eq(dvm_mint_melt(env.mint, q.quote, in, n, env.now_ms, &out, &err), DVM_ERR_AGAIN);
    uint8_t Y[1][33];
    dvm_proof_state st;
    cr_assert_eq(dvm_cashu_proof_Y(env.ctx, &in[0], Y[0]), DVM_OK);
    cr_assert_eq(dvm_mint_checkstate(env.mint, (const uint8_t(*)[33])Y, 1, &st, &err), DVM_OK);
    cr_assert_eq(st, DVM_PROOF_PENDING);
    /* Pending inputs cannot be swapped (11002) nor melted again (20005). */
    uint64_t sixteen = 16;
    cr_assert_eq(try_swap(in, n, &sixteen, 1, &err), DVM_ERR_PROTO);
    cr_assert_eq(err.code, DVM_NUT_PROOFS_PENDING);
    cr_assert_eq(dvm_mint_melt(env.mint, q.quote, in, n, env.now_ms, &out, &err), DVM_ERR_PROTO);
    cr_assert_eq(err.code, DVM_NUT_QUOTE_PENDING);
    /* Recovery: the payment failed -> inputs released, quote UNPAID. */
    cr_assert_eq(dvm_mint_melt_settle(env.mint, q.quote, (const uint8_t(*)[33])Y, 1, false, NULL,
                                      &err),
                 DVM_OK, "%s", err.detail);
    cr_assert_eq(dvm_mint_checkstate(env.mint, (const uint8_t(*)[33])Y, 1, &st, &err), DVM_OK);
    cr_assert_eq(st, DVM_PROOF_UNSPENT);
    dvm_melt_quote got;
    cr_assert_eq(dvm_mint_get_melt_quote(env.mint, q.quote, &got, &err), DVM_OK);
    cr_assert_eq(got.state, DVM_MELT_QUOTE_UNPAID);
    /* Settling again is refused: nothing is pending. */
    cr_assert_eq(dvm_mint_melt_settle(env.mint, q.quote, (const uint8_t(*)[33])Y, 1, false, NULL,
                                      &err),
                 DVM_ERR_STATE);
    /* And the melt now goes through. */
    cr_assert_eq(dvm_mint_melt(env.mint, q.quote, in, n, env.now_ms, &out, &err), DVM_OK, "%s",
                 err.detail);
    cr_assert_eq(out.state, DVM_MELT_QUOTE_PAID);
}

Test(mint, micro_tokens_become_tokens)
{
    dvm_proof in[64];
    size_t n = test_mint_proofs(&env, 3, in);
    dvm_token t;
    cr_assert_eq(dvm_wallet_make_token("http://127.0.0.1:3338", in, n, &t), DVM_OK);
    uint64_t amount;
    cr_assert_eq(dvm_token_amount(&t, &amount), DVM_OK);
    cr_assert_eq(amount, 3);
    cr_assert_str_eq(t.unit, "sat");
    cr_assert_eq(memcmp(t.proofs, in, n * sizeof *in), 0);
    dvm_token_free(&t);
    cr_assert_eq(dvm_wallet_make_token("", in, n, &t), DVM_ERR_INVALID);
    cr_assert_eq(dvm_wallet_make_token("http://x", in, 0, &t), DVM_ERR_INVALID);
}

Test(mint, melt_returns_nut08_change)
{
    dvm_proof in[64];
    size_t n = test_mint_proofs(&env, 100, in); /* 4 + 32 + 64 */
    dvm_mint_error err;
    dvm_melt_quote q, out;
    cr_assert_eq(dvm_mint_create_melt_quote(env.mint, "lnbc600n1pxyz", "sat", env.now_ms, &q,
                                            &err),
                 DVM_OK);
    cr_assert_eq(q.amount, 60);
    /* Excess 40 = 32 + 8; blank outputs as cashu-ts makes them (amount 1). */
    const dvm_keyset *ks = test_active(&env);
    uint64_t ones[6] = {1, 1, 1, 1, 1, 1};
    dvm_wallet_output blank[6];
    dvm_blinded_message msgs[6];
    cr_assert_eq(dvm_wallet_make_outputs(env.ctx, &env.rng, ks, ones, 6, blank), DVM_OK);
    for (int i = 0; i < 6; i++)
        msgs[i] = blank[i].msg;
    dvm_blind_signature change[6];
    size_t nc = 99;
    cr_assert_eq(dvm_mint_melt_with_change(env.mint, q.quote, in, n, msgs, 6, env.now_ms, &out,
                                           change, &nc, &err),
                 DVM_OK, "%s", err.detail);
    cr_assert_eq(nc, 2);
    cr_assert_eq(change[0].amount, 32);
    cr_assert_eq(change[1].amount, 8);
    /* The wallet unblinds the change with the amounts the mint assigned. */
    blank[0].msg.amount = 32;
    blank[1].msg.amount = 8;
    dvm_proof got[2];
    char reason[128];
    cr_assert_eq(dvm_wallet_unblind(env.ctx, ks, blank, change, 2, true, got, reason,
                                    sizeof reason),
                 DVM_OK, "%s", reason);
    cr_assert_eq(dvm_mint_verify_proofs(env.mint, got, 2, NULL, &err), DVM_OK);
    uint64_t forty[2] = {32, 8};
    cr_assert_eq(try_swap(got, 2, forty, 2, &err), DVM_OK, "%s", err.detail);
    json_t *j = dvm_melt_response_json(&out, change, nc);
    cr_assert_eq(json_array_size(json_object_get(j, "change")), 2);
    cr_assert_str_eq(json_string_value(json_object_get(j, "state")), "PAID");
    json_decref(j);
}

Test(mint, nut10_locked_secrets_are_refused)
{
    /* A proof whose secret is a NUT-10 well-known secret, validly signed
     * (the mint signs any B_): spending it must not ignore its lock. */
    const char *secret = "[\"P2PK\",{\"nonce\":\"00\",\"data\":\"02aa\"}]";
    const dvm_keyset *ks = test_active(&env);
    dvm_mint_quote q;
    dvm_mint_error err;
    cr_assert_eq(dvm_mint_create_mint_quote(env.mint, 4, "sat", env.now_ms, &q, &err), DVM_OK);
    dvm_wallet_output o;
    memset(&o, 0, sizeof o);
    cr_assert_eq(dvm_cashu_scalar_random(env.ctx, &env.rng, o.r), DVM_OK);
    cr_assert_eq(dvm_cashu_blind(env.ctx, (const uint8_t *)secret, strlen(secret), o.r, o.msg.B_),
                 DVM_OK);
    o.msg.amount = 4;
    strcpy(o.msg.id, ks->id);
    dvm_blind_signature s;
    cr_assert_eq(dvm_mint_mint(env.mint, q.quote, &o.msg, 1, env.now_ms, &s, &err), DVM_OK);
    dvm_proof p;
    memset(&p, 0, sizeof p);
    p.amount = 4;
    strcpy(p.id, ks->id);
    strcpy(p.secret, secret);
    p.secret_len = strlen(secret);
    cr_assert_eq(dvm_cashu_unblind(env.ctx, s.C_, o.r, dvm_keyset_key(ks, 4), p.C), DVM_OK);
    uint64_t four = 4;
    cr_assert_eq(try_swap(&p, 1, &four, 1, &err), DVM_ERR_UNSUPPORTED);
    cr_assert_eq(err.code, DVM_NUT_PROOF_VERIFICATION_FAILED);
    cr_assert(strstr(err.detail, "NUT-10"));
}
