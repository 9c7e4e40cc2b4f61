/* Interop with @cashu/cashu-ts (ci/interop/cashu_interop.mjs, node) against
 * a real `dvm mint` on 127.0.0.1: cashu-ts loads keys, mints, swaps, sends
 * and receives; its V4 and V3 tokens decode with `dvm token decode` and are
 * received by `dvm wallet receive`; tokens of `dvm wallet send` are received
 * by cashu-ts; a second receive fails with 11001; checkstate says SPENT;
 * DLEQ proofs verify on both sides; the mint restarts between steps. */
#include "cashu/token.h"
#include "mint_client.h"

static struct mint_proc M;
static char STATE[300], WDB[300], SCRIPT[600], ENV_URL[128];

static bool have_node(void)
{
    char p[700];
    const char *src = getenv("DVM_SOURCE");
    snprintf(SCRIPT, sizeof SCRIPT, "%s/ci/interop/cashu_interop.mjs", src ? src : ".");
    snprintf(p, sizeof p, "%s/ci/interop/node_modules/@cashu/cashu-ts/package.json", src ? src : ".");
    char out[64];
    const char *args[] = {"--version", NULL};
    return access(p, R_OK) == 0 && mp_exec("node", args, NULL, NULL, out, sizeof out) == 0;
}

static const char *const *EXTRA;

/* Start the mint from the test body, after the node check: a test that
 * fails for want of node starts nothing. (An interop test that skipped
 * would pass without testing anything.) */
static void start(void)
{
    if (!have_node())
        cr_assert_fail("node or ci/interop/node_modules missing (run ci/setup)");
    char db[300];
    mp_start(&M, mp_tmp(db, sizeof db, "mint.db"), EXTRA);
    mp_tmp(STATE, sizeof STATE, "cashu-ts.json");
    mp_tmp(WDB, sizeof WDB, "wallet.db");
    snprintf(ENV_URL, sizeof ENV_URL, "CASHU_MINT_URL=%s", M.url);
}

static void setup_with(const char *const *extra)
{
    EXTRA = extra;
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
    if (M.pid <= 0)
        return; /* skipped: nothing was started or created */
    mp_stop(&M, SIGTERM);
    mp_fini();
}

/* Run one cashu-ts step; returns its JSON reply (exit status in *rc). */
static json_t *ts_step(const char *step, const char *a1, const char *a2, int *rc)
{
    const char *args[] = {SCRIPT, step, M.url, STATE, a1, a2, NULL};
    static char out[1 << 20];
    *rc = mp_exec("node", args, NULL, NULL, out, sizeof out);
    json_t *j = json_loads(out, 0, NULL);
    cr_assert_not_null(j, "cashu-ts %s printed no JSON: %s", step, out);
    return j;
}

static json_t *ts_ok(const char *step, const char *a1, const char *a2)
{
    int rc;
    json_t *j = ts_step(step, a1, a2, &rc);
    cr_assert_eq(rc, 0, "cashu-ts %s failed: %s", step,
                 json_string_value(json_object_get(j, "error")));
    return j;
}

/* dvm wallet ARGS... with CASHU_MINT_URL set (no --mint flag). */
static int wallet(const char *cmd, const char *arg, char *out, size_t cap)
{
    const char *args[] = {"wallet", "--db", WDB, cmd, arg, NULL};
    const char *env[] = {ENV_URL, NULL};
    return mp_run(args, env, NULL, out, cap);
}

/* Verify every proof's DLEQ offline in C against the mint's keys. */
static void verify_dleq_c(const char *token)
{
    struct mc c;
    mc_init(&c, M.url);
    dvm_token t;
    char reason[200];
    cr_assert_eq(dvm_token_decode(token, strlen(token), &t, reason, sizeof reason), DVM_OK, "%s", reason);
    for (size_t i = 0; i < t.n_proofs; i++) {
        cr_assert(t.proofs[i].has_dleq && t.proofs[i].dleq.has_r, "proof %zu has a DLEQ with r", i);
        cr_assert_eq(dvm_cashu_dleq_verify_proof(c.ctx, dvm_keyset_key(&c.ks, t.proofs[i].amount),
                                                 &t.proofs[i]),
                     DVM_OK, "proof %zu: DLEQ verifies in C", i);
    }
    dvm_token_free(&t);
    mc_free(&c);
}

static void restart_mint(void)
{
    int port = M.port;
    char db[512];
    snprintf(db, sizeof db, "%s", M.db);
    int st = mp_stop(&M, SIGTERM);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* Same port, so the mint URL inside tokens and wallets stays valid. */
    mp_start_port(&M, db, port, NULL);
    cr_assert_eq(M.port, port);
}

TestSuite(interop_cashu, .init = setup, .fini = teardown, .timeout = 240);

Test(interop_cashu, cashu_ts_and_dvm_wallet)
{
    start();
    char out[1 << 16];

    /* cashu-ts loads the mint, mints 64 (quote PAID -> ISSUED), checks DLEQ. */
    json_t *j = ts_ok("mint", "64", NULL);
    cr_assert_eq(json_integer_value(json_object_get(j, "minted")), 64);
    cr_assert_str_eq(json_string_value(json_object_get(j, "quote_state")), "ISSUED");
    cr_assert(json_is_true(json_object_get(j, "dleq_ok")));
    json_decref(j);

    /* cashu-ts swaps and sends a V4 token of 10. */
    j = ts_ok("send", "10", "4");
    char t4[8192];
    snprintf(t4, sizeof t4, "%s", json_string_value(json_object_get(j, "token")));
    cr_assert_eq(json_integer_value(json_object_get(j, "balance")), 54);
    json_decref(j);
    cr_assert(strncmp(t4, "cashuB", 6) == 0);
    const char *dec[] = {"token", "decode", t4, NULL};
    cr_assert_eq(mp_run(dec, NULL, NULL, out, sizeof out), 0);
    json_t *d = json_loads(out, 0, NULL);
    cr_assert_eq(json_integer_value(json_object_get(d, "version")), 4);
    cr_assert_eq(json_integer_value(json_object_get(d, "amount")), 10);
    cr_assert_str_eq(json_string_value(json_object_get(d, "mint")), M.url);
    json_decref(d);
    verify_dleq_c(t4);

    /* Restart the mint between steps: state survives. */
    restart_mint();

    cr_assert_eq(wallet("receive", t4, out, sizeof out), 0);
    cr_assert(strstr(out, "received 10 sat"), "%s", out);

    /* A V3 token of 7 from cashu-ts. */
    j = ts_ok("send", "7", "3");
    char t3[8192];
    snprintf(t3, sizeof t3, "%s", json_string_value(json_object_get(j, "token")));
    json_decref(j);
    cr_assert(strncmp(t3, "cashuA", 6) == 0);
    const char *dec3[] = {"token", "decode", t3, NULL};
    cr_assert_eq(mp_run(dec3, NULL, NULL, out, sizeof out), 0);
    d = json_loads(out, 0, NULL);
    cr_assert_eq(json_integer_value(json_object_get(d, "version")), 3);
    cr_assert_eq(json_integer_value(json_object_get(d, "amount")), 7);
    json_decref(d);
    cr_assert_eq(wallet("receive", t3, out, sizeof out), 0);
    cr_assert_eq(wallet("balance", NULL, out, sizeof out), 0);
    cr_assert_eq(strtoull(out, NULL, 10), 17, "balance %s", out);

    /* A second receive of a claimed token: 11001, in dvm and in cashu-ts. */
    cr_assert_eq(wallet("receive", t4, out, sizeof out), 1);
    int rc;
    j = ts_step("receive", t3, NULL, &rc);
    cr_assert_eq(rc, 1);
    cr_assert_eq(json_integer_value(json_object_get(j, "code")), 11001);
    json_decref(j);

    /* dvm wallet send -> cashu-ts receive (with DLEQ required). */
    cr_assert_eq(wallet("send", "5", out, sizeof out), 0);
    char d5[8192];
    snprintf(d5, sizeof d5, "%s", strtok(out, "\n"));
    cr_assert(strncmp(d5, "cashuB", 6) == 0);
    verify_dleq_c(d5);
    cr_assert_eq(wallet("check", d5, out, sizeof out), 0);
    cr_assert(strstr(out, "UNSPENT") && !strstr(out, " SPENT"), "%s", out);
    restart_mint();
    j = ts_ok("receive", d5, NULL);
    cr_assert_eq(json_integer_value(json_object_get(j, "received")), 5);
    cr_assert(json_is_true(json_object_get(j, "had_dleq")));
    json_decref(j);
    /* ... and a V3 one. */
    const char *v3args[] = {"wallet", "--db", WDB, "--mint", M.url, "send", "3", "--v3", NULL};
    cr_assert_eq(mp_run(v3args, NULL, NULL, out, sizeof out), 0);
    char d3[8192];
    snprintf(d3, sizeof d3, "%s", strtok(out, "\n"));
    cr_assert(strncmp(d3, "cashuA", 6) == 0);
    j = ts_ok("receive", d3, NULL);
    cr_assert_eq(json_integer_value(json_object_get(j, "received")), 3);
    json_decref(j);
    j = ts_step("receive", d5, NULL, &rc);
    cr_assert_eq(rc, 1);
    cr_assert_eq(json_integer_value(json_object_get(j, "code")), 11001);
    json_decref(j);

    /* checkstate: SPENT after the claims, seen by both. */
    cr_assert_eq(wallet("check", d5, out, sizeof out), 0);
    cr_assert(strstr(out, "SPENT") && !strstr(out, "UNSPENT"), "%s", out);
    j = ts_ok("check", t4, NULL);
    json_t *sts = json_object_get(j, "states");
    cr_assert(json_array_size(sts) > 0);
    for (size_t i = 0; i < json_array_size(sts); i++)
        cr_assert_str_eq(json_string_value(json_array_get(sts, i)), "SPENT");
    json_decref(j);

    j = ts_ok("balance", NULL, NULL);
    cr_assert_eq(json_integer_value(json_object_get(j, "balance")), 64 - 10 - 7 + 5 + 3);
    json_decref(j);
    cr_assert_eq(wallet("balance", NULL, out, sizeof out), 0);
    cr_assert_eq(strtoull(out, NULL, 10), 17 - 5 - 3, "balance %s", out);
}

TestSuite(interop_cashu_fee, .init = setup_fee, .fini = teardown, .timeout = 240);

/* NUT-02 input fees computed the same way on both sides. */
Test(interop_cashu_fee, fees_agree)
{
    start();
    char out[1 << 16];
    json_t *j = ts_ok("mint", "64", NULL);
    json_decref(j);
    /* cashu-ts swaps 64 (one proof, fee 1) into 10 + change 53. */
    j = ts_ok("send", "10", "4");
    char t[8192];
    snprintf(t, sizeof t, "%s", json_string_value(json_object_get(j, "token")));
    cr_assert_eq(json_integer_value(json_object_get(j, "balance")), 53);
    json_decref(j);
    /* 10 = 8 + 2: two inputs, fee ceil(200/1000) = 1. */
    cr_assert_eq(wallet("receive", t, out, sizeof out), 0);
    cr_assert(strstr(out, "received 9 sat"), "%s", out);
    cr_assert_eq(wallet("mint", "20", out, sizeof out), 0);
    /* The wallet holds 8 + 1 and 16 + 4. 6 = 4 + 2 is no shape it holds
     * (5 = 4 + 1 would be sent as is, no swap), so dvm swaps the 16 for
     * exactly 6 (fee 1 paid from its change); cashu-ts pays the fee of the
     * 2 inputs (4 + 2) when it claims. */
    cr_assert_eq(wallet("send", "6", out, sizeof out), 0);
    char d[8192];
    snprintf(d, sizeof d, "%s", strtok(out, "\n"));
    j = ts_ok("receive", d, NULL);
    cr_assert_eq(json_integer_value(json_object_get(j, "received")), 5);
    json_decref(j);
    cr_assert_eq(wallet("balance", NULL, out, sizeof out), 0);
    /* 9 + 20 = 29; the send's swap of one input: fee 1. */
    cr_assert_eq(strtoull(out, NULL, 10), 29 - 6 - 1, "balance %s", out);
}
