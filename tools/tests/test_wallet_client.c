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
    /* 48 = 32 + 16: no proof is already a token of 8, so the split swaps. */
    cr_assert_eq(dvm_wallet_client_mint(W1, 48, 10000, NULL), DVM_OK);
    dvm_token *ts = NULL;
    cr_assert_eq(dvm_wallet_client_split(W1, 8, 4, &ts), DVM_OK);
    /* Token 1 forged (C tampered), token 2 double spent by the customer
     * before the provider claims it. */
    ts[1].proofs[0].C[7] ^= 0x01;
    cr_assert_eq(dvm_wallet_client_release(W1, &ts[2]), DVM_OK);
    uint64_t got = 0;
    cr_assert_eq(dvm_wallet_client_add_incoming(W2, &ts[2]), DVM_OK);
    dvm_token again;
    /* 20 = 16 + 4 is no shape the wallet holds (16 and 8): a swap at the
     * mint that spends the released proof of token 2. */
    cr_assert_eq(dvm_wallet_client_send(W1, 20, &again), DVM_OK, "%s",
                 dvm_wallet_client_last_error(W1));
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

/* dvm_wallet_client_claim_progress: what a claim did with a token that
 * is no longer INCOMING - swapped (SPENT), refused by the mint (neither),
 * or the input of a claim the mint never answered (PENDING, the operation
 * open for recover). */
Test(wallet_client, claim_progress_tells_swapped_refused_and_unfinished)
{
    cr_assert_eq(dvm_wallet_client_mint(W1, 48, 10000, NULL), DVM_OK);
    dvm_token *ts = NULL;
    cr_assert_eq(dvm_wallet_client_split(W1, 8, 4, &ts), DVM_OK);
    ts[1].proofs[0].C[7] ^= 0x01; /* forged */
    cr_assert_eq(dvm_wallet_client_add_incoming(W2, &ts[0]), DVM_OK);
    cr_assert_eq(dvm_wallet_client_add_incoming(W2, &ts[1]), DVM_OK);
    size_t spent = 9, pending = 9;
    cr_assert_eq(dvm_wallet_client_claim_progress(W2, &ts[0], &spent, &pending), DVM_OK);
    cr_assert(spent == 0 && pending == 0, "still INCOMING: %zu %zu", spent, pending);
    uint64_t claimed = 0, rejected = 0;
    cr_assert_eq(dvm_wallet_client_claim_incoming(W2, &claimed, &rejected), DVM_OK, "%s",
                 dvm_wallet_client_last_error(W2));
    cr_assert(claimed == 8 && rejected == 8);
    cr_assert_eq(dvm_wallet_client_claim_progress(W2, &ts[0], &spent, &pending), DVM_OK);
    cr_assert(spent == ts[0].n_proofs && pending == 0, "swapped: %zu %zu", spent, pending);
    cr_assert_eq(dvm_wallet_client_claim_progress(W2, &ts[1], &spent, &pending), DVM_OK);
    cr_assert(spent == 0 && pending == 0, "refused by the mint: %zu %zu", spent, pending);
    cr_assert_eq(dvm_wallet_client_reject_incoming(W2, &ts[1]), DVM_ERR_PROTO);
    /* keysets known: the next claim records its operation, then finds no mint */
    cr_assert_eq(dvm_wallet_client_add_incoming(W2, &ts[2]), DVM_OK);
    mp_stop(&M, SIGKILL);
    cr_assert_eq(dvm_wallet_client_claim_incoming(W2, &claimed, NULL), DVM_ERR_AGAIN);
    cr_assert_eq(dvm_wallet_client_claim_progress(W2, &ts[2], &spent, &pending), DVM_OK);
    cr_assert(spent == 0 && pending == ts[2].n_proofs, "in the open claim: %zu %zu", spent, pending);
    cr_assert_eq(dvm_wallet_client_reject_incoming(W2, &ts[2]), DVM_ERR_PROTO);
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

/* ---- split in several swaps ---------------------------------------------------- */

static uint64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static size_t progress_calls;
static void count_progress(void *ctx, size_t done, size_t n)
{
    (void)ctx;
    cr_assert(done > 0 && done <= n);
    progress_calls++;
}

/* Every token worth token_sats, no secret used twice. */
static void assert_tokens(const dvm_token *ts, size_t n, uint64_t token_sats)
{
    size_t np = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t a = 0;
        cr_assert_eq(dvm_token_amount(&ts[i], &a), DVM_OK);
        cr_assert_eq(a, token_sats, "token %zu: %llu sats", i, (unsigned long long)a);
        np += ts[i].n_proofs;
    }
    const char **sec = calloc(np, sizeof *sec);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < ts[i].n_proofs; j++)
            sec[k++] = ts[i].proofs[j].secret;
    for (size_t a = 0; a < np; a++)
        for (size_t b = a + 1; b < np; b++)
            cr_assert(strcmp(sec[a], sec[b]) != 0, "a proof in two tokens");
    free(sec);
}

Test(wallet_client, split_600_tokens_takes_several_swaps_and_all_are_claimable)
{
    /* The bug: 500+ tokens of 10 sats (8 + 2: 2 outputs each) in ONE swap
     * passed the mint's 1000-output limit. */
    cr_assert_eq(dvm_wallet_client_mint(W1, 6100, 10000, NULL), DVM_OK);
    cr_assert_eq(dvm_wallet_client_max_array(W1), 1000, "dvm mint publishes no max_array_length");
    progress_calls = 0;
    dvm_wallet_client_on_split_progress(W1, count_progress, NULL);
    dvm_token *ts = NULL;
    uint64_t t0 = ms_now();
    cr_assert_eq(dvm_wallet_client_split(W1, 10, 600, &ts), DVM_OK, "%s",
                 dvm_wallet_client_last_error(W1));
    fprintf(stderr, "split of 600 tokens of 10 sats: %llu ms (%zu steps)\n",
            (unsigned long long)(ms_now() - t0), progress_calls);
    cr_assert_geq(progress_calls, 2, "1200 token outputs need two swaps at least");
    assert_tokens(ts, 600, 10);
    dvm_wallet_balance b;
    cr_assert_eq(dvm_wallet_client_balance(W1, &b), DVM_OK);
    cr_assert_eq(b.reserved, 6000);
    cr_assert_eq(b.unspent, 100);
    cr_assert_eq(b.pending, 0);
    size_t open = 1;
    cr_assert_eq(dvm_wallet_client_open_ops(W1, &open), DVM_OK);
    cr_assert_eq(open, 0);
    for (size_t i = 0; i < 600; i++)
        cr_assert_eq(dvm_wallet_client_mark_sent(W1, &ts[i]), DVM_OK);
    /* The provider commits them in one group and claims them. */
    dvm_err *res = calloc(600, sizeof *res);
    cr_assert_eq(dvm_wallet_client_add_incoming_many(W2, ts, 600, res), DVM_OK, "%s",
                 dvm_wallet_client_last_error(W2));
    for (size_t i = 0; i < 600; i++)
        cr_assert_eq(res[i], DVM_OK);
    free(res);
    uint64_t claimed = 0, rejected = 0;
    cr_assert_eq(dvm_wallet_client_claim_incoming(W2, &claimed, &rejected), DVM_OK, "%s",
                 dvm_wallet_client_last_error(W2));
    cr_assert_eq(claimed, 6000);
    cr_assert_eq(rejected, 0);
    dvm_wallet_tokens_free(ts, 600);
}

Test(wallet_client, split_of_one_and_of_exactly_the_balance_and_reuse_without_the_mint)
{
    cr_assert_eq(dvm_wallet_client_mint(W1, 100, 10000, NULL), DVM_OK); /* 64 32 4 */
    dvm_token *ts = NULL;
    cr_assert_eq(dvm_wallet_client_split(W1, 1, 1, &ts), DVM_OK, "%s",
                 dvm_wallet_client_last_error(W1));
    assert_tokens(ts, 1, 1);
    cr_assert_eq(dvm_wallet_client_release(W1, &ts[0]), DVM_OK);
    dvm_wallet_tokens_free(ts, 1);
    /* Exactly the balance, in 100 tokens of 1 sat. */
    cr_assert_eq(dvm_wallet_client_split(W1, 1, 100, &ts), DVM_OK, "%s",
                 dvm_wallet_client_last_error(W1));
    assert_tokens(ts, 100, 1);
    dvm_wallet_balance b;
    dvm_wallet_client_balance(W1, &b);
    cr_assert_eq(b.reserved, 100);
    cr_assert_eq(b.unspent, 0);
    dvm_token *none = NULL;
    cr_assert_eq(dvm_wallet_client_split(W1, 1, 1, &none), DVM_ERR_LIMIT);
    cr_assert_null(none);
    dvm_wallet_tokens_free(ts, 100);
    uint64_t rel = 0;
    cr_assert_eq(dvm_wallet_client_release_reserved(W1, &rel), DVM_OK);
    cr_assert_eq(rel, 100);

    /* Every proof is now a 1-sat token already: splitting again needs no
     * swap, so it works with the mint down (keysets are loaded). */
    int port = M.port;
    mp_stop(&M, SIGTERM);
    cr_assert_eq(dvm_wallet_client_split(W1, 1, 100, &ts), DVM_OK, "%s",
                 dvm_wallet_client_last_error(W1));
    assert_tokens(ts, 100, 1);
    dvm_wallet_tokens_free(ts, 100);
    cr_assert_eq(dvm_wallet_client_release_reserved(W1, &rel), DVM_OK);
    /* A shape it does not hold needs the mint: AGAIN, nothing reserved,
     * the balance whole (unspent + pending). */
    cr_assert_eq(dvm_wallet_client_split(W1, 10, 10, &ts), DVM_ERR_AGAIN);
    cr_assert_null(ts);
    dvm_wallet_client_balance(W1, &b);
    cr_assert_eq(b.reserved, 0);
    cr_assert_eq(b.unspent + b.pending, 100);
    mp_start_port(&M, M.db, port, NULL);
    size_t done = 0;
    cr_assert_eq(dvm_wallet_client_recover(W1, &done), DVM_OK, "%s", dvm_wallet_client_last_error(W1));
    /* Exactly the balance in one token: 100 sats of 1-sat proofs. */
    cr_assert_eq(dvm_wallet_client_split(W1, 100, 1, &ts), DVM_OK, "%s",
                 dvm_wallet_client_last_error(W1));
    assert_tokens(ts, 1, 100);
    cr_assert_eq(ts[0].n_proofs, 3, "64 + 32 + 4");
    dvm_wallet_client_balance(W1, &b);
    cr_assert_eq(b.unspent, 0);
    cr_assert_eq(b.reserved, 100);
    dvm_wallet_tokens_free(ts, 1);
}

/* Progress hook that kills the mint after the first swap of a split. */
static void kill_mint_after_first(void *ctx, size_t done, size_t n)
{
    size_t *calls = ctx;
    if ((*calls)++ == 0 && done < n)
        mp_stop(&M, SIGKILL);
}

Test(wallet_client, split_interrupted_between_swaps_loses_nothing)
{
    cr_assert_eq(dvm_wallet_client_mint(W1, 6100, 10000, NULL), DVM_OK);
    size_t calls = 0;
    dvm_wallet_client_on_split_progress(W1, kill_mint_after_first, &calls);
    int port = M.port;
    dvm_token *ts = NULL;
    dvm_err e = dvm_wallet_client_split(W1, 10, 600, &ts);
    cr_assert_eq(e, DVM_ERR_AGAIN, "got %d: %s", (int)e, dvm_wallet_client_last_error(W1));
    cr_assert_eq(calls, 1);
    cr_assert_null(ts);
    dvm_wallet_balance b;
    dvm_wallet_client_balance(W1, &b);
    cr_assert_eq(b.reserved, 0, "the first swap's tokens are back in the balance");
    cr_assert_eq(b.unspent + b.pending, 6100);
    cr_assert_gt(b.pending, 0, "the second swap was recorded before its request");
    size_t open = 0;
    cr_assert_eq(dvm_wallet_client_open_ops(W1, &open), DVM_OK);
    cr_assert_eq(open, 1);

    mp_start_port(&M, M.db, port, NULL);
    size_t done = 0;
    cr_assert_eq(dvm_wallet_client_recover(W1, &done), DVM_OK, "%s", dvm_wallet_client_last_error(W1));
    cr_assert_eq(done, 1);
    dvm_wallet_client_balance(W1, &b);
    cr_assert_eq(b.pending, 0);
    cr_assert_eq(b.unspent, 6100, "balance conserved");
    cr_assert_eq(dvm_wallet_client_open_ops(W1, &open), DVM_OK);
    cr_assert_eq(open, 0);

    /* The split now succeeds (reusing the first swap's 8+2 groups) and
     * every token is real: the provider claims all of them. */
    dvm_wallet_client_on_split_progress(W1, NULL, NULL);
    cr_assert_eq(dvm_wallet_client_split(W1, 10, 600, &ts), DVM_OK, "%s",
                 dvm_wallet_client_last_error(W1));
    assert_tokens(ts, 600, 10);
    cr_assert_eq(dvm_wallet_client_add_incoming_many(W2, ts, 600, NULL), DVM_OK);
    uint64_t claimed = 0, rejected = 0;
    cr_assert_eq(dvm_wallet_client_claim_incoming(W2, &claimed, &rejected), DVM_OK, "%s",
                 dvm_wallet_client_last_error(W2));
    cr_assert_eq(claimed, 6000);
    cr_assert_eq(rejected, 0);
    dvm_wallet_client_balance(W1, &b);
    cr_assert_eq(b.unspent, 100);
    dvm_wallet_tokens_free(ts, 600);
}

/* ---- group commit and durability ------------------------------------------------ */

Test(wallet_client, add_incoming_many_commits_each_token_on_its_own)
{
    cr_assert_eq(dvm_wallet_client_mint(W1, 64, 10000, NULL), DVM_OK);
    dvm_token *ts = NULL;
    cr_assert_eq(dvm_wallet_client_split(W1, 4, 6, &ts), DVM_OK);
    cr_assert_eq(dvm_wallet_client_add_incoming(W2, &ts[0]), DVM_OK);
    dvm_token batch[5];
    batch[0] = ts[1];
    batch[1] = ts[0]; /* already stored */
    batch[2] = ts[2];
    batch[3] = ts[2]; /* twice in the same call */
    batch[4] = ts[3];
    snprintf(batch[4].mint, sizeof batch[4].mint, "http://127.0.0.1:1"); /* other mint */
    dvm_err res[5];
    cr_assert_eq(dvm_wallet_client_add_incoming_many(W2, batch, 5, res), DVM_ERR_EXISTS);
    cr_assert_eq(res[0], DVM_OK);
    cr_assert_eq(res[1], DVM_ERR_EXISTS);
    cr_assert_eq(res[2], DVM_OK);
    cr_assert_eq(res[3], DVM_ERR_EXISTS);
    cr_assert_eq(res[4], DVM_ERR_INVALID);
    dvm_wallet_balance b;
    dvm_wallet_client_balance(W2, &b);
    cr_assert_eq(b.incoming, 12, "tokens 0, 1, 2");
    cr_assert_eq(dvm_wallet_client_add_incoming_many(W2, &ts[4], 2, res), DVM_OK);
    cr_assert_eq(dvm_wallet_client_add_incoming_many(W2, NULL, 0, NULL), DVM_OK);
    dvm_wallet_client_balance(W2, &b);
    cr_assert_eq(b.incoming, 20);
    dvm_wallet_tokens_free(ts, 6);
}

static double commit_ms(const char *db, dvm_wallet_sync mode, const dvm_token *ts, size_t n)
{
    dvm_wallet_client *w;
    char err[256];
    cr_assert_eq(dvm_wallet_client_open(M.url, db, 10000, &w, err, sizeof err), DVM_OK, "%s", err);
    cr_assert_eq(dvm_wallet_client_set_sync(w, mode), DVM_OK);
    struct timespec a, z;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(dvm_wallet_client_add_incoming(w, &ts[i]), DVM_OK);
    clock_gettime(CLOCK_MONOTONIC, &z);
    dvm_wallet_client_close(w);
    return ((double)(z.tv_sec - a.tv_sec) * 1e3 + (double)(z.tv_nsec - a.tv_nsec) / 1e6) / (double)n;
}

Test(wallet_client, sync_normal_commits_survive_kill_9)
{
    cr_assert_eq(dvm_wallet_client_mint(W1, 256, 10000, NULL), DVM_OK);
    dvm_token *ts = NULL;
    cr_assert_eq(dvm_wallet_client_split(W1, 8, 30, &ts), DVM_OK);
    cr_assert_eq(dvm_wallet_client_set_sync(W2, (dvm_wallet_sync)7), DVM_ERR_INVALID);

    char db3[300];
    mp_tmp(db3, sizeof db3, "w3.db");
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        /* The provider: NORMAL, commits 10 tokens one by one and 10 as a
         * group, says so, then waits to be killed. */
        close(fds[0]);
        dvm_wallet_client *w;
        char err[256];
        if (dvm_wallet_client_open(M.url, db3, 10000, &w, err, sizeof err) ||
            dvm_wallet_client_set_sync(w, DVM_WALLET_SYNC_NORMAL))
            _exit(2);
        for (int i = 0; i < 10; i++)
            if (dvm_wallet_client_add_incoming(w, &ts[i]))
                _exit(3);
        if (dvm_wallet_client_add_incoming_many(w, &ts[10], 10, NULL))
            _exit(4);
        if (write(fds[1], "k", 1) != 1)
            _exit(5);
        for (;;)
            pause();
    }
    mp_track(pid);
    close(fds[1]);
    char c = 0;
    struct pollfd p = {fds[0], POLLIN, 0};
    cr_assert_eq(poll(&p, 1, 20000), 1, "the child did not commit within 20 s");
    ssize_t r = read(fds[0], &c, 1);
    close(fds[0]);
    kill(pid, SIGKILL);
    int st = mp_wait(pid, 10000);
    mp_untrack(pid);
    cr_assert_eq(r, 1, "the child failed (status %d)", st);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "status %d", st);

    dvm_wallet_client *w3;
    char err[256];
    cr_assert_eq(dvm_wallet_client_open(M.url, db3, 10000, &w3, err, sizeof err), DVM_OK, "%s", err);
    dvm_wallet_balance b;
    cr_assert_eq(dvm_wallet_client_balance(w3, &b), DVM_OK);
    cr_assert_eq(b.incoming, 160, "all 20 tokens committed before the kill are there");
    /* And they are claimable. */
    uint64_t claimed = 0;
    cr_assert_eq(dvm_wallet_client_claim_incoming(w3, &claimed, NULL), DVM_OK, "%s",
                 dvm_wallet_client_last_error(w3));
    cr_assert_eq(claimed, 160);
    dvm_wallet_client_close(w3);

    /* The cost per commit, FULL vs NORMAL (printed, not asserted). */
    char d4[300], d5[300];
    mp_tmp(d4, sizeof d4, "full.db");
    mp_tmp(d5, sizeof d5, "normal.db");
    double full = commit_ms(d4, DVM_WALLET_SYNC_FULL, &ts[20], 5);
    double normal = commit_ms(d5, DVM_WALLET_SYNC_NORMAL, &ts[25], 5);
    fprintf(stderr, "add_incoming per commit: FULL %.3f ms, NORMAL %.3f ms\n", full, normal);
    dvm_wallet_tokens_free(ts, 30);
}

Test(wallet_client, fragmented_wallet_consolidates_before_a_split)
{
    /* 1100 proofs of 1 sat: one token of 1100 needs more inputs than the
     * mint takes in one request (1000), so the wallet first swaps its
     * smallest proofs into few, then splits. */
    cr_assert_eq(dvm_wallet_client_mint(W1, 1100, 10000, NULL), DVM_OK);
    dvm_token *ts = NULL;
    cr_assert_eq(dvm_wallet_client_split(W1, 1, 1100, &ts), DVM_OK, "%s",
                 dvm_wallet_client_last_error(W1));
    dvm_wallet_tokens_free(ts, 1100);
    uint64_t rel = 0;
    cr_assert_eq(dvm_wallet_client_release_reserved(W1, &rel), DVM_OK);
    cr_assert_eq(rel, 1100);
    dvm_token t;
    cr_assert_eq(dvm_wallet_client_send(W1, 1100, &t), DVM_OK, "%s", dvm_wallet_client_last_error(W1));
    cr_assert_leq(t.n_proofs, 11, "1100 = 1024 + 64 + 8 + 4, one proof per bit");
    dvm_wallet_balance b;
    dvm_wallet_client_balance(W1, &b);
    cr_assert_eq(b.unspent + b.reserved + b.pending, 0);
    uint64_t got = 0;
    cr_assert_eq(dvm_wallet_client_receive(W2, &t, &got), DVM_OK, "%s", dvm_wallet_client_last_error(W2));
    cr_assert_eq(got, 1100);
    dvm_token_free(&t);
}
