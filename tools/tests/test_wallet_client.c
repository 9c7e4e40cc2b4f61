/* The HTTP wallet (live/wallet_client.h) against a real `dvm mint`: mint,
 * split into micro-tokens, claim in batches, forged and spent tokens,
 * the mint down, interrupted operations recovered, fees, melt. */
#include "live/wallet_client.h"
#include "live/wallet_store.h"
#include "mint_client.h"

static struct mint_proc M;
static char DB1[300], DB2[300];
static dvm_wallet_client *W1, *W2; /* customer, provider */

static void open_wallets(void)
{
    char err[256];
    cr_assert_eq(dvm_wallet_client_open(M.url, DB1, 10000, &W1, err, sizeof err), DVM_OK, "%s", err);
    cr_assert_eq(dvm_wallet_client_open(M.url, DB2, 10000, &W2, err, sizeof err), DVM_OK, "%s", err);
}

static void setup_with(const char *const *extra)
{
    char db[300];
    mp_start(&M, mp_tmp(db, sizeof db, "mint.db"), extra);
    mp_tmp(DB1, sizeof DB1, "w1.db");
    mp_tmp(DB2, sizeof DB2, "w2.db");
    open_wallets();
}

static void setup(void)
{
    setup_with(NULL);
}

static void setup_fee(void)
{
    static const char *const extra[] = {"--input-fee-ppk", "100", NULL};
    setup_with(extra);
}

static void teardown(void)
{
    dvm_wallet_client_close(W1);
    dvm_wallet_client_close(W2);
    W1 = W2 = NULL;
    mp_stop(&M, SIGTERM);
    mp_fini();
}

static uint64_t unspent(dvm_wallet_client *w)
{
    dvm_wallet_balance b;
    cr_assert_eq(dvm_wallet_client_balance(w, &b), DVM_OK);
    return b.unspent;
}

static void restart_same_port(void)
{
    int port = M.port;
    char db[512];
    snprintf(db, sizeof db, "%s", M.db);
    mp_stop(&M, SIGTERM);
    mp_start_port(&M, db, port, NULL);
}

TestSuite(wallet_client, .init = setup, .fini = teardown, .timeout = 180);

Test(wallet_client, mint_split_send_release)
{
    uint64_t minted = 0;
    cr_assert_eq(dvm_wallet_client_mint(W1, 100, 10000, &minted), DVM_OK, "%s",
                 dvm_wallet_client_last_error(W1));
    cr_assert_eq(minted, 100);
    cr_assert_eq(unspent(W1), 100);

    dvm_token *ts = NULL;
    cr_assert_eq(dvm_wallet_client_split(W1, 3, 5, &ts), DVM_OK, "%s", dvm_wallet_client_last_error(W1));
    for (int i = 0; i < 5; i++) {
        uint64_t a = 0;
        cr_assert_eq(dvm_token_amount(&ts[i], &a), DVM_OK);
        cr_assert_eq(a, 3, "token %d is exactly 3 sats", i);
        cr_assert_str_eq(ts[i].mint, M.url);
        for (size_t k = 0; k < ts[i].n_proofs; k++)
            cr_assert(ts[i].proofs[k].has_dleq && ts[i].proofs[k].dleq.has_r);
    }
    dvm_wallet_balance b;
    dvm_wallet_client_balance(W1, &b);
    cr_assert_eq(b.unspent, 85);
    cr_assert_eq(b.reserved, 15);
    cr_assert_eq(dvm_wallet_client_mark_sent(W1, &ts[0]), DVM_OK);
    cr_assert_eq(dvm_wallet_client_mark_sent(W1, &ts[0]), DVM_ERR_PROTO, "already sent");
    cr_assert_eq(dvm_wallet_client_release(W1, &ts[1]), DVM_OK);
    uint64_t rel = 0;
    cr_assert_eq(dvm_wallet_client_release_reserved(W1, &rel), DVM_OK);
    cr_assert_eq(rel, 9);
    dvm_wallet_client_balance(W1, &b);
    cr_assert_eq(b.unspent, 97);
    cr_assert_eq(b.reserved, 0);

    /* Not enough money: LIMIT, nothing changes. */
    dvm_token *none = NULL;
    cr_assert_eq(dvm_wallet_client_split(W1, 50, 2, &none), DVM_ERR_LIMIT);
    cr_assert_null(none);
    cr_assert_eq(unspent(W1), 97);
    dvm_wallet_tokens_free(ts, 5);
}

Test(wallet_client, provider_commits_then_claims_a_batch)
{
    cr_assert_eq(dvm_wallet_client_mint(W1, 64, 10000, NULL), DVM_OK);
    dvm_token *ts = NULL;
    cr_assert_eq(dvm_wallet_client_split(W1, 10, 5, &ts), DVM_OK);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(dvm_wallet_client_mark_sent(W1, &ts[i]), DVM_OK);
        cr_assert_eq(dvm_wallet_client_add_incoming(W2, &ts[i]), DVM_OK);
    }
    cr_assert_eq(dvm_wallet_client_add_incoming(W2, &ts[0]), DVM_ERR_EXISTS);
    dvm_wallet_balance b;
    dvm_wallet_client_balance(W2, &b);
    cr_assert_eq(b.incoming, 50);
    cr_assert_eq(b.unspent, 0);
    uint64_t claimed = 0, rejected = 0;
    cr_assert_eq(dvm_wallet_client_claim_incoming(W2, &claimed, &rejected), DVM_OK, "%s",
                 dvm_wallet_client_last_error(W2));
    cr_assert_eq(claimed, 50);
    cr_assert_eq(rejected, 0);
    dvm_wallet_client_balance(W2, &b);
    cr_assert_eq(b.incoming, 0);
    cr_assert_eq(b.unspent, 50);
    /* checkstate: the customer's tokens are SPENT now. */
    dvm_proof_state st[16];
    cr_assert_eq(dvm_wallet_client_check(W1, ts[2].proofs, ts[2].n_proofs, st), DVM_OK);
    for (size_t k = 0; k < ts[2].n_proofs; k++)
        cr_assert_eq(st[k], DVM_PROOF_SPENT);
    /* The keysets the provider loaded feed a payment policy. */
    const dvm_keyset *ks;
    size_t nks;
    cr_assert_eq(dvm_wallet_client_keysets(W2, &ks, &nks), DVM_OK);
    cr_assert_eq(nks, 1);
    cr_assert_eq(dvm_keyset_check_id(&ks[0]), DVM_OK);
    dvm_wallet_tokens_free(ts, 5);
}

Test(wallet_client, forged_and_double_spent_tokens_are_rejected_others_claimed)
{
    cr_assert_eq(dvm_wallet_client_mint(W1, 40, 10000, NULL), DVM_OK);
    dvm_token *ts = NULL;
    cr_assert_eq(dvm_wallet_client_split(W1, 8, 4, &ts), DVM_OK);
    /* Token 1 forged (C tampered), token 2 double spent by the customer
     * before the provider claims it. */
    ts[1].proofs[0].C[7] ^= 0x01;
    cr_assert_eq(dvm_wallet_client_release(W1, &ts[2]), DVM_OK);
    uint64_t got = 0;
    cr_assert_eq(dvm_wallet_client_add_incoming(W2, &ts[2]), DVM_OK);
    dvm_token again;
    cr_assert_eq(dvm_wallet_client_send(W1, 40 - 8 * 4 + 8, &again), DVM_OK, "%s",
                 dvm_wallet_client_last_error(W1)); /* spends the released proofs */
    dvm_token_free(&again);
    for (int i = 0; i < 4; i++)
        if (i != 2)
            cr_assert_eq(dvm_wallet_client_add_incoming(W2, &ts[i]), DVM_OK);
    uint64_t claimed = 0, rejected = 0;
    cr_assert_eq(dvm_wallet_client_claim_incoming(W2, &claimed, &rejected), DVM_OK, "%s",
                 dvm_wallet_client_last_error(W2));
    cr_assert_eq(claimed, 16, "tokens 0 and 3 claimed");
    cr_assert_eq(rejected, 16, "tokens 1 (forged) and 2 (spent) rejected");
    cr_assert_eq(unspent(W2), 16);
    /* Receiving a spent token directly: 11001. */
    cr_assert_eq(dvm_wallet_client_receive(W2, &ts[0], &got), DVM_ERR_SPENT);
    cr_assert_eq(dvm_wallet_client_last_code(W2), 11001);
    dvm_wallet_tokens_free(ts, 4);
}

Test(wallet_client, mint_down_then_claim_later)
{
    cr_assert_eq(dvm_wallet_client_mint(W1, 20, 10000, NULL), DVM_OK);
    dvm_token t;
    cr_assert_eq(dvm_wallet_client_send(W1, 12, &t), DVM_OK);
    cr_assert_eq(dvm_wallet_client_add_incoming(W2, &t), DVM_OK);
    int port = M.port;
    char db[512];
    snprintf(db, sizeof db, "%s", M.db);
    mp_stop(&M, SIGKILL);
    uint64_t claimed = 99;
    cr_assert_eq(dvm_wallet_client_claim_incoming(W2, &claimed, NULL), DVM_ERR_AGAIN);
    cr_assert_eq(claimed, 0);
    dvm_wallet_balance b;
    dvm_wallet_client_balance(W2, &b);
    cr_assert_eq(b.incoming, 12, "nothing lost while the mint is down");
    mp_start_port(&M, db, port, NULL);
    cr_assert_eq(dvm_wallet_client_claim_incoming(W2, &claimed, NULL), DVM_OK, "%s",
                 dvm_wallet_client_last_error(W2));
    cr_assert_eq(claimed, 12);
    cr_assert_eq(unspent(W2), 12);
    dvm_token_free(&t);
}

/* An operation interrupted after the mint executed it (reply lost): the
 * wallet's outputs were recorded first, so recover restores the proofs
 * (NUT-09). And one interrupted before the mint saw it: recover reverts. */
Test(wallet_client, recover_interrupted_swaps)
{
    cr_assert_eq(dvm_wallet_client_mint(W1, 30, 10000, NULL), DVM_OK);
    dvm_wallet_client_close(W1);
    W1 = NULL;
    struct mc c;
    mc_init(&c, M.url);
    char err[256];
    dvm_wallet_store *st;
    cr_assert_eq(dvm_wallet_store_open(DB1, &st, err, sizeof err), DVM_OK);
    dvm_proof *ps = NULL;
    size_t n = 0;
    cr_assert_eq(dvm_wallet_store_list(st, M.url, DVM_WPROOF_UNSPENT, &ps, &n), DVM_OK);
    cr_assert_eq(n, 4); /* 16 8 4 2, in some order */
    uint64_t a_sats = ps[0].amount + ps[1].amount, b_sats = ps[2].amount, rest = ps[3].amount;

    /* (a) executed at the mint, reply lost: proofs 0..1 (24 sats). */
    dvm_wallet_swap sw;
    char reason[200];
    cr_assert_eq(dvm_wallet_swap_prepare(c.ctx, &c.rng, &c.ks, 1, &c.ks, ps, 2, 0, 0, &sw, reason,
                                         sizeof reason),
                 DVM_OK, "%s", reason);
    int64_t op;
    cr_assert_eq(dvm_wallet_store_op_begin(st, DVM_WOP_SWAP, M.url, NULL, sw.inputs, sw.n_inputs,
                                           DVM_WPROOF_UNSPENT, false, sw.outputs, NULL,
                                           sw.n_outputs, &op),
                 DVM_OK);
    json_t *req = json_pack("{s:o, s:o}", "inputs", dvm_cashu_proofs_to_json(sw.inputs, sw.n_inputs),
                            "outputs", mc_outputs_json(sw.outputs, sw.n_outputs));
    json_t *r = NULL;
    cr_assert_eq(mp_post_json(M.url, "/v1/swap", req, &r), 200);
    json_decref(r);
    json_decref(req);
    dvm_wallet_swap_free(&sw);

    /* (b) recorded but never sent: proof 2 (4 sats). */
    cr_assert_eq(dvm_wallet_swap_prepare(c.ctx, &c.rng, &c.ks, 1, &c.ks, ps + 2, 1, 0, 0, &sw,
                                         reason, sizeof reason),
                 DVM_OK);
    cr_assert_eq(dvm_wallet_store_op_begin(st, DVM_WOP_SWAP, M.url, NULL, sw.inputs, sw.n_inputs,
                                           DVM_WPROOF_UNSPENT, false, sw.outputs, NULL,
                                           sw.n_outputs, &op),
                 DVM_OK);
    dvm_wallet_swap_free(&sw);
    dvm_wallet_store_close(st);
    free(ps);
    mc_free(&c);

    cr_assert_eq(dvm_wallet_client_open(M.url, DB1, 10000, &W1, err, sizeof err), DVM_OK);
    dvm_wallet_balance b;
    dvm_wallet_client_balance(W1, &b);
    cr_assert_eq(b.unspent, rest);
    cr_assert_eq(b.pending, a_sats + b_sats);
    size_t open = 0, done = 0;
    cr_assert_eq(dvm_wallet_client_open_ops(W1, &open), DVM_OK);
    cr_assert_eq(open, 2);
    restart_same_port(); /* and the mint restarted in between */
    cr_assert_eq(dvm_wallet_client_recover(W1, &done), DVM_OK, "%s", dvm_wallet_client_last_error(W1));
    cr_assert_eq(done, 2);
    dvm_wallet_client_balance(W1, &b);
    cr_assert_eq(b.pending, 0);
    cr_assert_eq(b.unspent, 30, "restored + reverted + untouched");
    cr_assert_eq(dvm_wallet_client_open_ops(W1, &open), DVM_OK);
    cr_assert_eq(open, 0);
    /* The recovered proofs are real: spend them all. */
    dvm_token t;
    cr_assert_eq(dvm_wallet_client_send(W1, 30, &t), DVM_OK, "%s", dvm_wallet_client_last_error(W1));
    uint64_t got = 0;
    cr_assert_eq(dvm_wallet_client_receive(W2, &t, &got), DVM_OK, "%s", dvm_wallet_client_last_error(W2));
    cr_assert_eq(got, 30);
    dvm_token_free(&t);
}

Test(wallet_client, melt_pays_an_invoice)
{
    cr_assert_eq(dvm_wallet_client_mint(W1, 100, 10000, NULL), DVM_OK);
    uint64_t paid = 0;
    cr_assert_eq(dvm_wallet_client_melt(W1, "lnbc200n1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypq", &paid),
                 DVM_OK, "%s", dvm_wallet_client_last_error(W1));
    cr_assert_eq(paid, 20);
    cr_assert_eq(unspent(W1), 80);
    dvm_wallet_balance b;
    dvm_wallet_client_balance(W1, &b);
    cr_assert_eq(b.pending + b.reserved, 0);
}

TestSuite(wallet_fee, .init = setup_fee, .fini = teardown, .timeout = 180);

Test(wallet_fee, input_fees_are_paid_and_counted)
{
    const dvm_keyset *ks;
    size_t n;
    cr_assert_eq(dvm_wallet_client_keysets(W1, &ks, &n), DVM_OK);
    cr_assert_eq(ks[0].input_fee_ppk, 100);
    cr_assert_eq(dvm_wallet_client_mint(W1, 63, 10000, NULL), DVM_OK); /* 6 proofs */
    dvm_token *ts = NULL;
    cr_assert_eq(dvm_wallet_client_split(W1, 7, 3, &ts), DVM_OK, "%s", dvm_wallet_client_last_error(W1));
    /* 6 inputs -> fee ceil(600/1000) = 1; 21 in tokens, 41 change. */
    cr_assert_eq(unspent(W1), 41);
    uint64_t got = 0;
    /* A 7-sat token is 3 proofs: fee ceil(300/1000) = 1. */
    cr_assert_eq(ts[0].n_proofs, 3);
    cr_assert_eq(dvm_wallet_client_receive(W2, &ts[0], &got), DVM_OK, "%s", dvm_wallet_client_last_error(W2));
    cr_assert_eq(got, 6);
    cr_assert_eq(unspent(W2), 6);
    dvm_wallet_tokens_free(ts, 3);
}

/* A claim recorded but never sent (crash), while the customer double spent
 * one of the tokens: recover must not count the other token as spent. */
Test(wallet_client, recover_claim_after_customer_double_spend)
{
    cr_assert_eq(dvm_wallet_client_mint(W1, 16, 10000, NULL), DVM_OK);
    dvm_token *ts = NULL;
    cr_assert_eq(dvm_wallet_client_split(W1, 4, 2, &ts), DVM_OK);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(dvm_wallet_client_add_incoming(W2, &ts[i]), DVM_OK);
    /* The provider's claim of both tokens is recorded, then it "crashes". */
    struct mc c;
    mc_init(&c, M.url);
    char err[256], reason[200];
    dvm_wallet_store *st;
    cr_assert_eq(dvm_wallet_store_open(DB2, &st, err, sizeof err), DVM_OK);
    dvm_proof ins[8];
    size_t n = 0;
    for (int i = 0; i < 2; i++)
        for (size_t k = 0; k < ts[i].n_proofs; k++)
            ins[n++] = ts[i].proofs[k];
    dvm_wallet_swap sw;
    cr_assert_eq(dvm_wallet_swap_prepare(c.ctx, &c.rng, &c.ks, 1, &c.ks, ins, n, 0, 0, &sw, reason,
                                         sizeof reason),
                 DVM_OK);
    int64_t op;
    cr_assert_eq(dvm_wallet_store_op_begin(st, DVM_WOP_RECEIVE, M.url, NULL, sw.inputs, sw.n_inputs,
                                           DVM_WPROOF_INCOMING, false, sw.outputs, NULL,
                                           sw.n_outputs, &op),
                 DVM_OK);
    dvm_wallet_swap_free(&sw);
    dvm_wallet_store_close(st);
    mc_free(&c);
    /* The customer spends token 0 again elsewhere. */
    uint64_t got = 0;
    char db3[300];
    dvm_wallet_client *w3;
    cr_assert_eq(dvm_wallet_client_open(M.url, mp_tmp(db3, sizeof db3, "w3.db"), 10000, &w3, err,
                                        sizeof err),
                 DVM_OK);
    cr_assert_eq(dvm_wallet_client_receive(w3, &ts[0], &got), DVM_OK);
    dvm_wallet_client_close(w3);
    /* Recover: token 0 set aside, token 1 back to incoming, then claimed. */
    size_t done = 0;
    cr_assert_eq(dvm_wallet_client_recover(W2, &done), DVM_OK, "%s", dvm_wallet_client_last_error(W2));
    cr_assert_eq(done, 1);
    dvm_wallet_balance b;
    dvm_wallet_client_balance(W2, &b);
    cr_assert_eq(b.incoming, 4);
    cr_assert_eq(b.pending, 0);
    uint64_t claimed = 0;
    cr_assert_eq(dvm_wallet_client_claim_incoming(W2, &claimed, NULL), DVM_OK);
    cr_assert_eq(claimed, 4);
    cr_assert_eq(unspent(W2), 4);
    dvm_wallet_tokens_free(ts, 2);
}

/* Mint operations interrupted by a crash, recovered by a fresh client:
 * (a) recorded, never sent (quote PAID): recover mints with the recorded
 * outputs; (b) executed, reply lost (quote ISSUED): recover restores. */
Test(wallet_client, recover_interrupted_mints)
{
    struct mc c;
    mc_init(&c, M.url);
    char err[256];
    dvm_wallet_store *st;
    cr_assert_eq(dvm_wallet_store_open(DB1, &st, err, sizeof err), DVM_OK);
    const uint64_t amounts[][2] = {{8, 2}, {16, 1}};
    for (int k = 0; k < 2; k++) {
        json_t *q = NULL, *req = json_pack("{s:I, s:s}", "amount",
                                           (json_int_t)(amounts[k][0] + amounts[k][1]), "unit", "sat");
        cr_assert_eq(mp_post_json(M.url, "/v1/mint/quote/bolt11", req, &q), 200);
        json_decref(req);
        const char *quote = json_string_value(json_object_get(q, "quote"));
        dvm_wallet_output outs[2];
        mc_outputs(&c, amounts[k], 2, outs);
        int64_t op;
        cr_assert_eq(dvm_wallet_store_op_begin(st, DVM_WOP_MINT, M.url, quote, NULL, 0,
                                               DVM_WPROOF_UNSPENT, false, outs, NULL, 2, &op),
                     DVM_OK);
        if (k == 1) {
            json_t *r = NULL;
            req = json_pack("{s:s, s:o}", "quote", quote, "outputs", mc_outputs_json(outs, 2));
            cr_assert_eq(mp_post_json(M.url, "/v1/mint/bolt11", req, &r), 200);
            json_decref(r);
            json_decref(req);
        }
        json_decref(q);
    }
    dvm_wallet_store_close(st);
    mc_free(&c);
    dvm_wallet_client_close(W1);
    cr_assert_eq(dvm_wallet_client_open(M.url, DB1, 10000, &W1, err, sizeof err), DVM_OK);
    size_t done = 0;
    cr_assert_eq(dvm_wallet_client_recover(W1, &done), DVM_OK, "%s", dvm_wallet_client_last_error(W1));
    cr_assert_eq(done, 2);
    cr_assert_eq(unspent(W1), 27);
    dvm_token t;
    cr_assert_eq(dvm_wallet_client_send(W1, 27, &t), DVM_OK);
    uint64_t got = 0;
    cr_assert_eq(dvm_wallet_client_receive(W2, &t, &got), DVM_OK, "%s", dvm_wallet_client_last_error(W2));
    cr_assert_eq(got, 27);
    dvm_token_free(&t);
}
