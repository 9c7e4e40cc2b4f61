/* End to end on 127.0.0.1 with real processes: `dvm mint`, `dvm agent`,
 * `dvm customer` (and `dvm demo`). Payments verified and claimed, customer
 * and provider crashes, the mint down at the end of a job, capacity. */
#include "live_proc.h"

#include "cashu/proof.h"
#include "live/processor.h"
#include "live/wallet_client.h"
#include "live/wallet_store.h"

static char dir[128];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/dvm-e2e-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    lp_kill_all();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (dir[0] && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(e2e, .init = setup, .fini = teardown, .timeout = 120);

/* Sum and NUT-07 states of the proofs a customer wallet handed over. */
static uint64_t sent_sats(const char *db, const char *mint, bool require_spent)
{
    dvm_wallet_store *st;
    char err[256];
    cr_assert_eq(dvm_wallet_store_open(db, &st, err, sizeof err), DVM_OK, "%s", err);
    dvm_proof *p = NULL;
    size_t n = 0;
    cr_assert_eq(dvm_wallet_store_list(st, mint, DVM_WPROOF_SENT, &p, &n), DVM_OK);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += p[i].amount;
    dvm_wallet_store_close(st);
    if (require_spent && n) {
        dvm_wallet_client *w;
        cr_assert_eq(dvm_wallet_client_open(mint, db, 5000, &w, err, sizeof err), DVM_OK, "%s", err);
        dvm_proof_state *s = calloc(n, sizeof *s);
        cr_assert_eq(dvm_wallet_client_check(w, p, n, s), DVM_OK, "%s", dvm_wallet_client_last_error(w));
        for (size_t i = 0; i < n; i++)
            cr_assert_eq(s[i], DVM_PROOF_SPENT, "proof %zu of the payments is SPENT after the claim", i);
        free(s);
        dvm_wallet_client_close(w);
    }
    free(p);
    return sum;
}

static uint64_t unspent_sats(const char *db, const char *mint)
{
    dvm_wallet_store *st;
    char err[256];
    cr_assert_eq(dvm_wallet_store_open(db, &st, err, sizeof err), DVM_OK, "%s", err);
    uint64_t s = 0;
    cr_assert_eq(dvm_wallet_store_sum(st, mint, DVM_WPROOF_UNSPENT, &s), DVM_OK);
    dvm_wallet_store_close(st);
    return s;
}

static json_t *last_json_line(const char *out)
{
    const char *last = NULL;
    for (const char *s = out; *s;) {
        const char *nl = strchr(s, '\n');
        if (!nl)
            break;
        if (nl > s)
            last = s;
        s = nl + 1;
    }
    cr_assert_not_null(last, "no line on stdout: %s", out);
    return json_loadb(last, strcspn(last, "\n"), 0, NULL);
}

/* Sum the `amount` of every event `ev` until `until` appears (consumed). */
static uint64_t sum_events_until(lp *p, const char *ev, const char *until, uint64_t timeout_ms, json_t **until_out)
{
    uint64_t sum = 0, end = lp_now_ms() + timeout_ms;
    *until_out = NULL;
    while (lp_now_ms() < end) {
        char *nl;
        while ((nl = memchr(p->err, '\n', p->err_len))) {
            size_t n = (size_t)(nl - p->err);
            json_t *o = json_loadb(p->err, n, 0, NULL);
            memmove(p->err, nl + 1, p->err_len - n - 1);
            p->err_len -= n + 1;
            const char *e = o ? json_string_value(json_object_get(o, "event")) : NULL;
            if (e && !strcmp(e, ev))
                sum += (uint64_t)json_integer_value(json_object_get(o, "amount"));
            if (e && !strcmp(e, until)) {
                *until_out = o;
                return sum;
            }
            json_decref(o);
        }
        lp_pump(p, 50);
    }
    return sum;
}

Test(e2e, seed_flow_paid_verified_and_claimed)
{
    char url[256], addr[128], wallet[400], mintf[300], peer[200], cdb[256];
    lp *mint = lp_start_mint(dir, 0, url, sizeof url);
    lp *agent = lp_start_agent(dir, url, addr, sizeof addr, "--chunks=25", "--max-jobs=3");
    snprintf(cdb, sizeof cdb, "%s/customer.db", dir);
    snprintf(wallet, sizeof wallet, "--wallet=%s", cdb);
    snprintf(mintf, sizeof mintf, "--mint=%s", url);
    snprintf(peer, sizeof peer, "--peer=%s", addr);
    const char *prompt = "Explain quantum computing";
    lp *c = lp_start("customer", "customer", peer, mintf, wallet, "--budget=50", "--json", "--log-json", prompt, NULL);
    cr_assert_eq(lp_wait_exit(c, 30000), 0, "customer: %s", c->errlog);
    json_t *sum = last_json_line(c->out);
    cr_assert_not_null(sum, "summary: %s", c->out);
    char want[4096];
    dvm_builtin_text(prompt, strlen(prompt), 25, want, sizeof want);
    cr_assert_str_eq(json_string_value(json_object_get(sum, "output")), want);
    cr_assert_eq(json_integer_value(json_object_get(sum, "chunks")), 25);
    cr_assert_eq(json_integer_value(json_object_get(sum, "sats_paid")), 30, "3 payments of 10 sats for 25 chunks");
    cr_assert_eq(json_integer_value(json_object_get(sum, "total_sats")), 30);
    cr_assert_eq(strlen(json_string_value(json_object_get(sum, "job_id"))), 32);
    cr_assert_eq(strlen(json_string_value(json_object_get(sum, "provider"))), 64);
    cr_assert(json_integer_value(json_object_get(sum, "ms")) >= 0);
    json_decref(sum);

    json_t *cl = lp_wait_event(agent, "claimed", 15000);
    cr_assert_not_null(cl, "agent claims: %s", agent->errlog);
    cr_assert_eq(json_integer_value(json_object_get(cl, "sats")), 30);
    json_decref(cl);
    cr_assert_eq(sent_sats(cdb, url, true), 30, "what the customer paid is SPENT at the mint");
    cr_assert_eq(unspent_sats(cdb, url), 20, "unspent proofs stay in the customer's wallet");
    char adb[256];
    snprintf(adb, sizeof adb, "%s/agent.db", dir);
    cr_assert_eq(unspent_sats(adb, url), 30, "the provider's wallet holds what it claimed");

    lp_signal(agent, SIGTERM);
    cr_assert_eq(lp_wait_exit(agent, 15000), 0, "agent exits 0 on SIGTERM");
    lp_signal(mint, SIGTERM);
    cr_assert_neq(lp_wait_exit(mint, 10000), -1);
}

Test(e2e, customer_disconnects_provider_claims_what_it_got)
{
    char url[256], addr[128], wallet[400], mintf[300], peer[200], cdb[256];
    lp_start_mint(dir, 0, url, sizeof url);
    lp *agent = lp_start_agent(dir, url, addr, sizeof addr, "--chunks=400", "--rate=100");
    snprintf(cdb, sizeof cdb, "%s/customer.db", dir);
    snprintf(wallet, sizeof wallet, "--wallet=%s", cdb);
    snprintf(mintf, sizeof mintf, "--mint=%s", url);
    snprintf(peer, sizeof peer, "--peer=%s", addr);
    lp *c = lp_start("customer", "customer", peer, mintf, wallet, "--budget=200", "--log-json", "go on", NULL);
    cr_assert(lp_wait_stdout(c, 200, 20000), "customer streamed: %s", c->errlog);
    lp_signal(c, SIGKILL);
    lp_wait_exit(c, 5000);
    json_t *done = NULL;
    uint64_t paid = sum_events_until(agent, "payment", "claimed", 20000, &done);
    cr_assert_not_null(done, "agent claimed after the disconnect: %s", agent->errlog);
    uint64_t claimed = (uint64_t)json_integer_value(json_object_get(done, "sats"));
    json_decref(done);
    cr_assert_gt(paid, 0);
    cr_assert_eq(claimed, paid, "everything the agent accepted is claimed");
    uint64_t sent = sent_sats(cdb, url, false);
    cr_assert_geq(sent, claimed);
    cr_assert_leq(sent - claimed, 10, "at most one payment in flight lost");
}

Test(e2e, provider_killed_and_restarted_claims_on_restart)
{
    char url[256], addr[128], wallet[400], mintf[300], peer[200], cdb[256];
    lp_start_mint(dir, 0, url, sizeof url);
    lp *agent = lp_start_agent(dir, url, addr, sizeof addr, "--chunks=500", "--rate=60");
    snprintf(cdb, sizeof cdb, "%s/customer.db", dir);
    snprintf(wallet, sizeof wallet, "--wallet=%s", cdb);
    snprintf(mintf, sizeof mintf, "--mint=%s", url);
    snprintf(peer, sizeof peer, "--peer=%s", addr);
    lp *c = lp_start("customer", "customer", peer, mintf, wallet, "--budget=200", "--log-json", "--timeout=5000",
                     "keep going", NULL);
    /* two payments acknowledged, then SIGKILL mid-stream */
    uint64_t acked = 0;
    for (int i = 0; i < 2; i++) {
        json_t *o = lp_wait_event(agent, "payment_ack", 20000);
        cr_assert_not_null(o, "payment_ack %d: %s", i, agent->errlog);
        acked += (uint64_t)json_integer_value(json_object_get(o, "amount"));
        json_decref(o);
    }
    lp_signal(agent, SIGKILL);
    cr_assert_eq(lp_wait_exit(agent, 5000), 128 + SIGKILL);
    int cst = lp_wait_exit(c, 20000);
    cr_assert(cst == 6 || cst == 7, "customer reports the provider gone (exit %d): %s", cst, c->errlog);

    /* restart with the same wallet: the owed tokens are claimed */
    char addr2[128];
    lp *again = lp_start_agent(dir, url, addr2, sizeof addr2, "--chunks=10");
    json_t *cl = lp_find_event(again, "claimed"); /* at startup, before "listening" */
    cr_assert_not_null(cl, "restart claims: %s", again->errlog);
    uint64_t claimed = (uint64_t)json_integer_value(json_object_get(cl, "sats"));
    json_decref(cl);
    cr_assert_geq(claimed, acked, "every acknowledged payment is claimed");
    uint64_t sent = sent_sats(cdb, url, false);
    cr_assert_leq(sent - claimed, 10, "the customer lost at most one payment cycle (sent %llu, claimed %llu)",
                  (unsigned long long)sent, (unsigned long long)claimed);
}

Test(e2e, mint_down_when_the_job_ends_claim_is_retried)
{
    char url[256], addr[128], wallet[400], mintf[300], peer[200], cdb[256];
    lp *mint = lp_start_mint(dir, 0, url, sizeof url);
    const char *port_s = strrchr(url, ':') + 1;
    uint16_t port = (uint16_t)atoi(port_s);
    lp *agent = lp_start_agent(dir, url, addr, sizeof addr, "--chunks=60", "--rate=40");
    snprintf(cdb, sizeof cdb, "%s/customer.db", dir);
    snprintf(wallet, sizeof wallet, "--wallet=%s", cdb);
    snprintf(mintf, sizeof mintf, "--mint=%s", url);
    snprintf(peer, sizeof peer, "--peer=%s", addr);
    lp *c = lp_start("customer", "customer", peer, mintf, wallet, "--budget=100", "--json", "--log-json", "x", NULL);
    json_t *o = lp_wait_event(agent, "payment", 20000);
    cr_assert_not_null(o, "first payment: %s", agent->errlog);
    json_decref(o);
    lp_signal(mint, SIGKILL); /* the customer already holds its micro-tokens */
    lp_wait_exit(mint, 5000);
    cr_assert_eq(lp_wait_exit(c, 30000), 0, "the job completes without the mint: %s", c->errlog);
    json_t *sum = last_json_line(c->out);
    uint64_t paid = (uint64_t)json_integer_value(json_object_get(sum, "sats_paid"));
    json_decref(sum);
    cr_assert_eq(paid, 60);
    o = lp_wait_event(agent, "claim_deferred", 20000);
    cr_assert_not_null(o, "the claim fails while the mint is down: %s", agent->errlog);
    json_decref(o);
    /* the mint comes back (same port, same database): the retry claims */
    lp_start_mint(dir, port, url, sizeof url);
    o = lp_wait_event(agent, "claimed", 40000);
    cr_assert_not_null(o, "the retry claims: %s", agent->errlog);
    cr_assert_eq(json_integer_value(json_object_get(o, "sats")), 60);
    json_decref(o);
    cr_assert_eq(sent_sats(cdb, url, true), 60);
}

Test(e2e, max_jobs_plus_one_exactly_one_no_capacity)
{
    char url[256], addr[128], mintf[300], peer[200];
    lp_start_mint(dir, 0, url, sizeof url);
    lp_start_agent(dir, url, addr, sizeof addr, "--chunks=60", "--rate=30", "--max-jobs=2");
    snprintf(mintf, sizeof mintf, "--mint=%s", url);
    snprintf(peer, sizeof peer, "--peer=%s", addr);
    lp *c[3];
    char wallet[3][256];
    /* fund the three wallets first so the three requests arrive together */
    for (int i = 0; i < 3; i++) {
        snprintf(wallet[i], sizeof wallet[i], "--db=%s/c%d.db", dir, i);
        lp *w = lp_start("wallet", "wallet", mintf, wallet[i], "mint", "100", NULL);
        cr_assert_eq(lp_wait_exit(w, 20000), 0, "fund %d: %s", i, w->errlog);
        snprintf(wallet[i], sizeof wallet[i], "--wallet=%s/c%d.db", dir, i);
    }
    for (int i = 0; i < 3; i++)
        c[i] = lp_start("customer", "customer", peer, mintf, wallet[i], "--budget=100", "--json", "--log-json",
                        "capacity", NULL);
    int ok = 0, busy = 0;
    for (int i = 0; i < 3; i++) {
        int st = lp_wait_exit(c[i], 40000);
        if (st == 0)
            ok++;
        else {
            cr_assert_eq(st, 6, "exit %d: %s", st, c[i]->errlog);
            cr_assert(strstr(c[i]->errlog, "No capacity (2/2 slots used)"), "%s", c[i]->errlog);
            busy++;
        }
    }
    cr_assert_eq(ok, 2);
    cr_assert_eq(busy, 1);
}

Test(e2e, demo_runs_and_reports)
{
    lp *d = lp_start("demo", "demo", "--json", NULL);
    cr_assert_eq(lp_wait_exit(d, 60000), 0, "demo: %s", d->errlog);
    json_t *o = last_json_line(d->out);
    cr_assert_not_null(o, "%s", d->out);
    uint64_t chunks = (uint64_t)json_integer_value(json_object_get(o, "chunks"));
    uint64_t paid = (uint64_t)json_integer_value(json_object_get(o, "sats_paid"));
    uint64_t claimed = (uint64_t)json_integer_value(json_object_get(o, "sats_claimed"));
    cr_assert_gt(chunks, 0);
    cr_assert_gt(paid, 0);
    cr_assert_eq(claimed, paid, "the provider claimed what it was paid");
    cr_assert(json_is_integer(json_object_get(o, "ms")));
    json_decref(o);
}
