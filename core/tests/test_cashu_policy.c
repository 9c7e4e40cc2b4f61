/* The provider's payment policy over tokens minted by the real mint logic:
 * trusted mints, unit, keysets, DLEQ (valid, forged, absent), replay,
 * max_unclaimed, replay memory bound. */
#include "cashu_test_util.h"

#include "cashu/policy.h"
#include "cashu/token.h"
#include "common/buf.h"

#define MINT_URL "http://127.0.0.1:3338"

static test_env env;
static dvm_pay_policy *pol;

static void make_policy(uint64_t max_unclaimed, size_t replay_capacity)
{
    const char *trusted[] = {MINT_URL "/"};
    dvm_pay_policy_config cfg = {
        .trusted_mints = trusted,
        .n_trusted = 1,
        .max_unclaimed_sats = max_unclaimed,
        .replay_capacity = replay_capacity,
    };
    dvm_pay_policy_free(pol);
    cr_assert_eq(dvm_pay_policy_new(&pol, &cfg), DVM_OK);
    cr_assert_eq(dvm_pay_policy_add_keyset(pol, MINT_URL, test_active(&env)), DVM_OK);
}

static void setup(void)
{
    test_env_init(&env, NULL, 3);
    pol = NULL;
    make_policy(0, 0);
}

static void teardown(void)
{
    dvm_pay_policy_free(pol);
    test_env_free(&env);
}

/* A token of `amount` sats freshly minted, owned by the caller. */
static dvm_token token_of(uint64_t amount)
{
    dvm_token t;
    memset(&t, 0, sizeof t);
    t.version = 4;
    strcpy(t.mint, MINT_URL);
    strcpy(t.unit, "sat");
    t.proofs = calloc(64, sizeof *t.proofs);
    t.n_proofs = test_mint_proofs(&env, amount, t.proofs);
    return t;
}

static dvm_pay_verdict check(const dvm_token *t, uint64_t *amount)
{
    char reason[200];
    reason[0] = 0;
    dvm_pay_verdict v = dvm_pay_policy_check(pol, t, amount, reason, sizeof reason);
    cr_assert(strlen(reason) > 0, "a verdict always has a reason");
    return v;
}

TestSuite(policy, .init = setup, .fini = teardown);

Test(policy, accepts_a_valid_token_once)
{
    dvm_token t = token_of(21);
    uint64_t amount;
    cr_assert_eq(check(&t, &amount), DVM_PAY_ACCEPT);
    cr_assert_eq(amount, 21);
    cr_assert_eq(dvm_pay_policy_unclaimed(pol), 21);
    /* The same token again: replay. */
    cr_assert_eq(check(&t, &amount), DVM_PAY_REJECT_REPLAY);
    /* One of its proofs inside another token: replay too. */
    dvm_token t2 = token_of(8);
    t2.proofs[0] = t.proofs[1];
    cr_assert_eq(check(&t2, &amount), DVM_PAY_REJECT_REPLAY);
    cr_assert_eq(dvm_pay_policy_unclaimed(pol), 21);
    dvm_pay_policy_claimed(pol, 21);
    cr_assert_eq(dvm_pay_policy_unclaimed(pol), 0);
    dvm_token_free(&t);
    dvm_token_free(&t2);
}

Test(policy, proof_twice_in_one_token_is_a_replay)
{
    dvm_token t = token_of(3); /* 1 + 2 */
    t.proofs[1] = t.proofs[0];
    uint64_t amount;
    cr_assert_eq(check(&t, &amount), DVM_PAY_REJECT_REPLAY);
    dvm_token_free(&t);
}

Test(policy, untrusted_mint_unit_and_amount)
{
    dvm_token t = token_of(4);
    uint64_t amount;
    strcpy(t.mint, "https://evil.example");
    cr_assert_eq(check(&t, &amount), DVM_PAY_REJECT_UNTRUSTED_MINT);
    cr_assert(dvm_pay_verdict_is_reject(DVM_PAY_REJECT_UNTRUSTED_MINT));
    strcpy(t.mint, MINT_URL "/"); /* trailing slash is the same mint */
    strcpy(t.unit, "usd");
    cr_assert_eq(check(&t, &amount), DVM_PAY_REJECT_UNIT);
    strcpy(t.unit, "sat");
    t.proofs[0].amount = 0;
    cr_assert_eq(check(&t, &amount), DVM_PAY_REJECT_AMOUNT);
    t.proofs[0].amount = 4;
    t.n_proofs = 0;
    cr_assert_eq(check(&t, &amount), DVM_PAY_REJECT_MALFORMED);
    t.n_proofs = 1;
    /* None of the above recorded anything: the token is still good. */
    cr_assert_eq(check(&t, &amount), DVM_PAY_ACCEPT);
    dvm_token_free(&t);
}

Test(policy, unknown_keyset_asks_for_keys)
{
    dvm_token t = token_of(2);
    const char *trusted[] = {MINT_URL};
    /* This one borrows the test's crypto context. */
    dvm_pay_policy_config cfg = {.trusted_mints = trusted, .n_trusted = 1};
    dvm_pay_policy_free(pol);
    cr_assert_eq(dvm_pay_policy_new_with_ctx(&pol, &cfg, env.ctx), DVM_OK);
    uint64_t amount;
    cr_assert_eq(check(&t, &amount), DVM_PAY_NEED_KEYSET);
    cr_assert(!dvm_pay_verdict_is_reject(DVM_PAY_NEED_KEYSET));
    /* Keys for an untrusted mint are refused; a keyset whose id does not
     * match its keys too. */
    cr_assert_eq(dvm_pay_policy_add_keyset(pol, "https://evil.example", test_active(&env)),
                 DVM_ERR_PROTO);
    dvm_keyset bad = *test_active(&env);
    bad.keys[0][5] ^= 1;
    cr_assert_eq(dvm_pay_policy_add_keyset(pol, MINT_URL, &bad), DVM_ERR_INVALID);
    cr_assert_eq(dvm_pay_policy_add_keyset(pol, MINT_URL, test_active(&env)), DVM_OK);
    cr_assert_eq(check(&t, &amount), DVM_PAY_ACCEPT);
    dvm_token_free(&t);
}

Test(policy, without_dleq_swap_first)
{
    dvm_token t = token_of(12);
    t.proofs[1].has_dleq = false;
    uint64_t amount;
    cr_assert_eq(check(&t, &amount), DVM_PAY_SWAP_FIRST);
    cr_assert_eq(amount, 12);
    cr_assert_eq(dvm_pay_policy_unclaimed(pol), 0);
    /* Recorded: presenting it again is a replay. */
    cr_assert_eq(check(&t, &amount), DVM_PAY_REJECT_REPLAY);
    dvm_token_free(&t);
}

Test(policy, forged_tokens_fail_dleq)
{
    /* Tampered DLEQ. */
    dvm_token t = token_of(16);
    uint64_t amount;
    t.proofs[0].dleq.s[3] ^= 1;
    cr_assert_eq(check(&t, &amount), DVM_PAY_REJECT_DLEQ);
    dvm_token_free(&t);
    /* Tampered C. */
    t = token_of(16);
    dvm_token other = token_of(16);
    memcpy(t.proofs[0].C, other.proofs[0].C, 33);
    cr_assert_eq(check(&t, &amount), DVM_PAY_REJECT_DLEQ);
    dvm_token_free(&t);
    dvm_token_free(&other);
    /* Signed by another mint (another seed) under our keyset id: its DLEQ
     * is valid for ITS keys, not for the keys the policy knows. */
    dvm_mint_config cfg;
    memset(&cfg, 0, sizeof cfg);
    memset(cfg.seed, 0x66, 32);
    test_env rogue;
    test_env_init(&rogue, &cfg, 77);
    dvm_token f;
    memset(&f, 0, sizeof f);
    strcpy(f.mint, MINT_URL);
    strcpy(f.unit, "sat");
    f.proofs = calloc(64, sizeof *f.proofs);
    f.n_proofs = test_mint_proofs(&rogue, 32, f.proofs);
    for (size_t i = 0; i < f.n_proofs; i++)
        strcpy(f.proofs[i].id, test_active(&env)->id);
    cr_assert_eq(check(&f, &amount), DVM_PAY_REJECT_DLEQ);
    /* Nothing was credited. */
    cr_assert_eq(dvm_pay_policy_unclaimed(pol), 0);
    dvm_token_free(&f);
    test_env_free(&rogue);
}

Test(policy, max_unclaimed_asks_for_a_claim)
{
    make_policy(100, 0);
    dvm_token a = token_of(64), b = token_of(64);
    uint64_t amount;
    cr_assert_eq(check(&a, &amount), DVM_PAY_ACCEPT);
    cr_assert_eq(check(&b, &amount), DVM_PAY_CLAIM_FIRST);
    cr_assert_eq(dvm_pay_policy_unclaimed(pol), 64);
    dvm_pay_policy_claimed(pol, 64);
    cr_assert_eq(check(&b, &amount), DVM_PAY_ACCEPT, "not recorded by CLAIM_FIRST");
    cr_assert_eq(dvm_pay_policy_unclaimed(pol), 64);
    dvm_token_free(&a);
    dvm_token_free(&b);
}

Test(policy, unclaimed_total_can_be_set_from_the_store)
{
    make_policy(100, 0);
    dvm_token a = token_of(64), b = token_of(64);
    uint64_t amount;
    cr_assert_eq(check(&a, &amount), DVM_PAY_ACCEPT);
    cr_assert_eq(check(&b, &amount), DVM_PAY_CLAIM_FIRST);
    /* the store says only 20 sats are still held (a claim took the rest) */
    dvm_pay_policy_set_unclaimed(pol, 20);
    cr_assert_eq(dvm_pay_policy_unclaimed(pol), 20);
    cr_assert_eq(check(&b, &amount), DVM_PAY_ACCEPT);
    cr_assert_eq(dvm_pay_policy_unclaimed(pol), 84);
    dvm_pay_policy_set_unclaimed(pol, 0);
    cr_assert_eq(dvm_pay_policy_unclaimed(pol), 0);
    cr_assert_eq(check(&a, &amount), DVM_PAY_REJECT_REPLAY, "the replay memory is not touched");
    dvm_token_free(&a);
    dvm_token_free(&b);
}

Test(policy, replay_memory_is_bounded)
{
    make_policy(0, 4); /* two generations of 2 Ys */
    dvm_token first = token_of(1);
    uint64_t amount;
    cr_assert_eq(check(&first, &amount), DVM_PAY_ACCEPT);
    dvm_token more[4];
    for (int i = 0; i < 4; i++) {
        more[i] = token_of(2);
        cr_assert_eq(check(&more[i], &amount), DVM_PAY_ACCEPT);
    }
    /* The newest two are still remembered; the first is forgotten (the
     * mint catches that replay at claim time with 11001). */
    cr_assert_eq(check(&more[3], &amount), DVM_PAY_REJECT_REPLAY);
    cr_assert_eq(check(&more[2], &amount), DVM_PAY_REJECT_REPLAY);
    cr_assert_eq(check(&first, &amount), DVM_PAY_ACCEPT);
    dvm_token_free(&first);
    for (int i = 0; i < 4; i++)
        dvm_token_free(&more[i]);
}

Test(policy, verdict_names)
{
    cr_assert_str_eq(dvm_pay_verdict_name(DVM_PAY_ACCEPT), "accept");
    cr_assert_str_eq(dvm_pay_verdict_name(DVM_PAY_SWAP_FIRST), "swap_first");
    cr_assert_str_eq(dvm_pay_verdict_name(DVM_PAY_REJECT_REPLAY), "replay");
}

Test(policy, bad_config)
{
    dvm_pay_policy *p = NULL;
    dvm_pay_policy_config cfg = {0};
    cr_assert_eq(dvm_pay_policy_new(&p, &cfg), DVM_ERR_INVALID);
    const char *empty[] = {""};
    cfg.trusted_mints = empty;
    cfg.n_trusted = 1;
    cr_assert_eq(dvm_pay_policy_new(&p, &cfg), DVM_ERR_INVALID);
    cr_assert_null(p);
}

Test(policy, dleq_survives_the_token_codec)
{
    /* Wallet -> cashuB / cashuA text -> provider: the DLEQ (with r) rides
     * in the token and the policy verifies it offline. */
    for (int version = 3; version <= 4; version++) {
        dvm_token t = token_of(37);
        t.version = version;
        dvm_buf b;
        dvm_buf_init(&b, 0);
        cr_assert_eq(dvm_token_encode(&t, version, &b), DVM_OK);
        dvm_token back;
        char reason[200];
        cr_assert_eq(dvm_token_decode((const char *)b.data, b.len, &back, reason, sizeof reason),
                     DVM_OK, "%s", reason);
        uint64_t amount;
        cr_assert_eq(check(&back, &amount), DVM_PAY_ACCEPT, "v%d", version);
        cr_assert_eq(amount, 37);
        dvm_token_free(&back);
        dvm_buf_free(&b);
        dvm_token_free(&t);
    }
}

Test(policy, v01_short_keyset_ids_are_understood)
{
    dvm_mint_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.id_version = 1;
    test_env e1;
    test_env_init(&e1, &cfg, 17);
    const dvm_keyset *ks = test_active(&e1);
    cr_assert_eq(strlen(ks->id), 66);
    const char *trusted[] = {MINT_URL};
    dvm_pay_policy_config pc = {.trusted_mints = trusted, .n_trusted = 1};
    dvm_pay_policy *p1;
    cr_assert_eq(dvm_pay_policy_new(&p1, &pc), DVM_OK);
    cr_assert_eq(dvm_pay_policy_add_keyset(p1, MINT_URL, ks), DVM_OK);
    dvm_token t;
    memset(&t, 0, sizeof t);
    strcpy(t.mint, MINT_URL);
    strcpy(t.unit, "sat");
    t.proofs = calloc(64, sizeof *t.proofs);
    t.n_proofs = test_mint_proofs(&e1, 6, t.proofs);
    for (size_t i = 0; i < t.n_proofs; i++)
        t.proofs[i].id[16] = '\0'; /* the short id of a V4 token */
    uint64_t amount;
    char reason[160];
    cr_assert_eq(dvm_pay_policy_check(p1, &t, &amount, reason, sizeof reason), DVM_PAY_ACCEPT,
                 "%s", reason);
    cr_assert_eq(amount, 6);
    dvm_token_free(&t);
    dvm_pay_policy_free(p1);
    test_env_free(&e1);
}

Test(policy, locked_secrets_are_refused)
{
    dvm_token t = token_of(1);
    strcpy(t.proofs[0].secret, "[\"P2PK\",{\"nonce\":\"00\",\"data\":\"02aa\"}]");
    t.proofs[0].secret_len = strlen(t.proofs[0].secret);
    uint64_t amount;
    cr_assert_eq(check(&t, &amount), DVM_PAY_REJECT_MALFORMED);
    dvm_token_free(&t);
}

/* The two-step API (prepare + verify, then admit) decides like the one
 * call even when every token is prepared and verified BEFORE any of them is
 * admitted (as a pool of verifier threads does), in reverse order: the
 * stateless steps must not depend on what admitting earlier tokens records.
 * Verdict, amount, reason and the unclaimed total are compared token by
 * token with a second policy fed the one-call path in order. */
Test(policy, split_steps_in_any_order_decide_like_the_one_call)
{
    const char *trusted[] = {MINT_URL};
    dvm_pay_policy_config cfg = {.trusted_mints = trusted, .n_trusted = 1, .max_unclaimed_sats = 150};
    dvm_pay_policy *one = NULL, *two = NULL;
    cr_assert_eq(dvm_pay_policy_new(&one, &cfg), DVM_OK);
    cr_assert_eq(dvm_pay_policy_new(&two, &cfg), DVM_OK);
    cr_assert_eq(dvm_pay_policy_add_keyset(one, MINT_URL, test_active(&env)), DVM_OK);
    cr_assert_eq(dvm_pay_policy_add_keyset(two, MINT_URL, test_active(&env)), DVM_OK);

    enum { N = 16 };
    dvm_token own[N];
    memset(own, 0, sizeof own);
    const dvm_token *seq[N];
    size_t n = 0;
    own[0] = token_of(21); /* accept */
    seq[n++] = &own[0];
    seq[n++] = &own[0]; /* the same token: replay */
    own[1] = token_of(12);
    own[1].proofs[1] = own[0].proofs[2]; /* one proof of an accepted token */
    seq[n++] = &own[1];
    own[2] = token_of(16);
    own[2].proofs[0].dleq.s[3] ^= 1; /* forged: dleq */
    seq[n++] = &own[2];
    own[3] = token_of(5);
    own[3].proofs[1].dleq.s[0] ^= 1;
    own[3].proofs[0] = own[0].proofs[0]; /* forged AND a replay: replay wins */
    seq[n++] = &own[3];
    own[4] = token_of(12);
    own[4].proofs[0].has_dleq = false; /* swap first, recorded */
    seq[n++] = &own[4];
    seq[n++] = &own[4]; /* ... so again it is a replay */
    own[5] = token_of(3);
    own[5].proofs[1] = own[5].proofs[0]; /* a proof twice in the token */
    seq[n++] = &own[5];
    own[6] = token_of(6);
    own[6].proofs[1].secret_len = 0; /* malformed */
    seq[n++] = &own[6];
    own[7] = token_of(4);
    strcpy(own[7].mint, "https://evil.example"); /* untrusted */
    seq[n++] = &own[7];
    own[8] = token_of(8);
    strcpy(own[8].proofs[0].id, "00ffffffffffffff"); /* unknown keyset */
    seq[n++] = &own[8];
    own[9] = token_of(64);
    seq[n++] = &own[9]; /* 21 + 64 = 85 held */
    own[10] = token_of(64);
    seq[n++] = &own[10]; /* 149 held */
    own[11] = token_of(2);
    seq[n++] = &own[11]; /* 151 > 150: claim first, nothing recorded */
    seq[n++] = &own[11]; /* after the claim below: accept */
    cr_assert(n <= N);

    dvm_pay_check chk[N];
    dvm_pay_verdict pre[N];
    char pre_reason[N][200];
    for (size_t k = n; k-- > 0;) { /* stateless steps first, last token first */
        pre[k] = dvm_pay_policy_prepare(two, seq[k], &chk[k], pre_reason[k], sizeof pre_reason[k]);
        if (pre[k] == DVM_PAY_ACCEPT)
            for (size_t i = seq[k]->n_proofs; i-- > 0;) /* proofs in any order too */
                dvm_pay_policy_verify_dleq(two, seq[k], &chk[k], i);
    }
    const dvm_pay_verdict want[] = {
        DVM_PAY_ACCEPT, DVM_PAY_REJECT_REPLAY, DVM_PAY_REJECT_REPLAY, DVM_PAY_REJECT_DLEQ,
        DVM_PAY_REJECT_REPLAY, DVM_PAY_SWAP_FIRST, DVM_PAY_REJECT_REPLAY, DVM_PAY_REJECT_REPLAY,
        DVM_PAY_REJECT_MALFORMED, DVM_PAY_REJECT_UNTRUSTED_MINT, DVM_PAY_NEED_KEYSET, DVM_PAY_ACCEPT,
        DVM_PAY_ACCEPT, DVM_PAY_CLAIM_FIRST, DVM_PAY_ACCEPT};
    cr_assert_eq(sizeof want / sizeof want[0], n);
    for (size_t k = 0; k < n; k++) {
        if (k == n - 1) { /* the driver claimed what it held */
            dvm_pay_policy_claimed(one, 149);
            dvm_pay_policy_claimed(two, 149);
        }
        char r1[200] = "", r2[200] = "";
        uint64_t a1 = 7, a2 = 7;
        dvm_pay_verdict v1 = dvm_pay_policy_check(one, seq[k], &a1, r1, sizeof r1);
        dvm_pay_verdict v2 = pre[k];
        if (v2 == DVM_PAY_ACCEPT)
            v2 = dvm_pay_policy_admit(two, &chk[k], &a2, r2, sizeof r2);
        else {
            a2 = 0;
            memcpy(r2, pre_reason[k], sizeof r2);
        }
        cr_assert_eq(v1, want[k], "token %zu: one call says %s (%s), expected %s", k, dvm_pay_verdict_name(v1), r1,
                     dvm_pay_verdict_name(want[k]));
        cr_assert_eq(v2, v1, "token %zu: split says %s (%s), one call %s (%s)", k, dvm_pay_verdict_name(v2), r2,
                     dvm_pay_verdict_name(v1), r1);
        cr_assert_eq(a2, a1, "token %zu: amount", k);
        cr_assert_str_eq(r2, r1, "token %zu: reason", k);
        cr_assert_eq(dvm_pay_policy_unclaimed(two), dvm_pay_policy_unclaimed(one), "token %zu: unclaimed", k);
    }
    cr_assert_eq(dvm_pay_policy_unclaimed(one), 2);
    for (size_t k = 0; k < n; k++)
        dvm_pay_check_free(&chk[k]);
    for (int k = 0; k < N; k++)
        dvm_token_free(&own[k]);
    dvm_pay_policy_free(one);
    dvm_pay_policy_free(two);
}

/* Two tokens sharing a proof, both prepared and verified before either is
 * admitted (two verifier threads at once): the first admitted is accepted,
 * the other is a replay, whichever order they are admitted in. */
Test(policy, a_proof_in_two_concurrently_verified_tokens_is_accepted_once)
{
    for (int order = 0; order < 2; order++) {
        make_policy(0, 0);
        dvm_token x = token_of(3), y = token_of(5); /* 1+2, 1+4 */
        dvm_proof keep = y.proofs[0];
        y.proofs[0] = x.proofs[0];
        dvm_pay_check cx, cy;
        char r[200];
        cr_assert_eq(dvm_pay_policy_prepare(pol, &x, &cx, r, sizeof r), DVM_PAY_ACCEPT, "%s", r);
        cr_assert_eq(dvm_pay_policy_prepare(pol, &y, &cy, r, sizeof r), DVM_PAY_ACCEPT, "%s", r);
        dvm_pay_policy_verify(pol, &y, &cy);
        dvm_pay_policy_verify(pol, &x, &cx);
        uint64_t a = 0;
        dvm_pay_check *first = order ? &cy : &cx, *second = order ? &cx : &cy;
        cr_assert_eq(dvm_pay_policy_admit(pol, first, &a, r, sizeof r), DVM_PAY_ACCEPT, "%s", r);
        cr_assert_eq(a, order ? 5 : 3);
        cr_assert_eq(dvm_pay_policy_admit(pol, second, &a, r, sizeof r), DVM_PAY_REJECT_REPLAY, "%s", r);
        cr_assert_eq(a, 0);
        cr_assert_eq(dvm_pay_policy_unclaimed(pol), order ? 5 : 3);
        dvm_pay_check_free(&cx);
        dvm_pay_check_free(&cy);
        y.proofs[0] = keep;
        dvm_token_free(&x);
        dvm_token_free(&y);
    }
}
