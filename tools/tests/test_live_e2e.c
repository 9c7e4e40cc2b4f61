/* End to end on 127.0.0.1 with real processes: `dvm mint`, `dvm agent`,
 * `dvm customer` (and `dvm demo`). Payments verified and claimed, customer
 * and provider crashes, the mint down at the end of a job, capacity. */
#include "hold_proxy.h"
#include "live_proc.h"
#include "spawn_run.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "cashu/proof.h"
#include "live/buyer.h"
#include "live/processor.h"
#include "live/wallet_client.h"
#include "live/wallet_store.h"
#include "port_hold.h"
#include "stall_server.h"

static char dir[128];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/dvm-e2e-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    lp_kill_all();
    if (dir[0] && !spawn_rm_rf(dir))
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

/* Payments prepaid ahead arrive while earlier ones are being verified and
 * committed on the agent's verifier thread: every one is acknowledged,
 * credited once, committed and claimed (the group commit loses none). */
Test(e2e, prepaid_payments_in_flight_are_all_acked_and_claimed)
{
    char url[256], addr[128], wallet[400], mintf[300], peer[200], cdb[256];
    lp_start_mint(dir, 0, url, sizeof url);
    lp *agent = lp_start_agent(dir, url, addr, sizeof addr, "--chunks=60", "--chunks-per-payment=2", "--sync=normal");
    snprintf(cdb, sizeof cdb, "%s/customer.db", dir);
    snprintf(wallet, sizeof wallet, "--wallet=%s", cdb);
    snprintf(mintf, sizeof mintf, "--mint=%s", url);
    snprintf(peer, sizeof peer, "--peer=%s", addr);
    lp *c = lp_start("customer", "customer", peer, mintf, wallet, "--budget=60", "--prepay=8", "--json", "--log-json",
                     "many payments", NULL);
    cr_assert_eq(lp_wait_exit(c, 30000), 0, "customer: %s", c->errlog);
    json_t *sum = last_json_line(c->out);
    cr_assert_not_null(sum, "summary: %s", c->out);
    cr_assert_eq(json_integer_value(json_object_get(sum, "chunks")), 60);
    uint64_t paid = (uint64_t)json_integer_value(json_object_get(sum, "sats_paid"));
    json_decref(sum);
    cr_assert_geq(paid, 60, "30 payments of 2 sats at least");
    json_t *done = NULL;
    uint64_t accepted = sum_events_until(agent, "payment", "claimed", 20000, &done);
    cr_assert_not_null(done, "agent claims: %s", agent->errlog);
    uint64_t claimed = (uint64_t)json_integer_value(json_object_get(done, "sats"));
    json_decref(done);
    cr_assert_eq(accepted, paid, "every payment the customer sent was accepted once");
    cr_assert_eq(claimed, paid, "and claimed");
    cr_assert_null(lp_find_event(agent, "payment_rejected"), "%s", agent->errlog);
    cr_assert_eq(sent_sats(cdb, url, true), paid, "what the customer paid is SPENT at the mint");
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

/* A provider (wallet commits under `sync`) SIGKILLed after two payment_acks
 * and restarted on the same wallet claims every acknowledged token. */
static void killed_and_restarted(const char *sync)
{
    char url[256], addr[128], wallet[400], mintf[300], peer[200], cdb[256];
    lp_start_mint(dir, 0, url, sizeof url);
    lp *agent = lp_start_agent(dir, url, addr, sizeof addr, "--chunks=500", "--rate=60", sync);
    json_t *ls = lp_wait_find(agent, "listening", 1000);
    cr_assert_not_null(ls);
    cr_assert_str_eq(json_string_value(json_object_get(ls, "sync")), strchr(sync, '=') + 1);
    json_decref(ls);
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
    json_t *cl = lp_wait_find(again, "claimed", 15000); /* at startup */
    cr_assert_not_null(cl, "restart claims: %s", again->errlog);
    uint64_t claimed = (uint64_t)json_integer_value(json_object_get(cl, "sats"));
    json_decref(cl);
    cr_assert_geq(claimed, acked, "every acknowledged payment is claimed");
    uint64_t sent = sent_sats(cdb, url, false);
    cr_assert_leq(sent - claimed, 10, "the customer lost at most one payment cycle (sent %llu, claimed %llu)",
                  (unsigned long long)sent, (unsigned long long)claimed);
}

Test(e2e, provider_killed_and_restarted_claims_on_restart)
{
    killed_and_restarted("--sync=full");
}

Test(e2e, provider_with_sync_normal_killed_and_restarted_claims_on_restart)
{
    killed_and_restarted("--sync=normal");
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

Test(e2e, demo_removes_its_temporary_directory)
{
    lp *d = lp_start("demo", "demo", NULL);
    cr_assert_eq(lp_wait_exit(d, 60000), 0, "demo: %s", d->errlog);
    const char *pre = "temporary db in ";
    const char *at = strstr(d->errlog, pre);
    cr_assert_not_null(at, "the demo names its directory: %s", d->errlog);
    at += strlen(pre);
    char path[256];
    snprintf(path, sizeof path, "%.*s", (int)strcspn(at, ")\n"), at);
    cr_assert_eq(strncmp(path, "/tmp/dvm-demo-", 14), 0, "%s", path);
    struct stat st;
    cr_assert_neq(stat(path, &st), 0, "%s is gone after the demo", path);
}

Test(e2e, two_agent_pipeline_both_legs_stream_and_are_paid)
{
    char url[256], baddr[128], aaddr[128], mintf[300], peer[200], subpeer[200], wallet[400], bdir[200];
    lp_start_mint(dir, 0, url, sizeof url);
    snprintf(bdir, sizeof bdir, "%s/b", dir);
    cr_assert_eq(mkdir(bdir, 0700), 0);
    lp *b = lp_start_agent(bdir, url, baddr, sizeof baddr, "--chunks=30", "--rate=200");
    snprintf(subpeer, sizeof subpeer, "--sub-peer=%s", baddr);
    lp *a = lp_start_agent(dir, url, aaddr, sizeof aaddr, "--kind=5302", "--sub-kind=5100", subpeer,
                           "--sub-budget=50", "--sub-batch-size=40", "--processor=exec:/usr/bin/tr a-z A-Z");
    snprintf(mintf, sizeof mintf, "--mint=%s", url);
    snprintf(peer, sizeof peer, "--peer=%s", aaddr);
    snprintf(wallet, sizeof wallet, "--wallet=%s/customer.db", dir);
    const char *prompt = "translate this";
    lp *c = lp_start("customer", "customer", "--kind=5302", peer, mintf, wallet, "--budget=100", "--json",
                     "--log-json", prompt, NULL);
    cr_assert_eq(lp_wait_exit(c, 40000), 0, "customer: %s\nagent A: %s", c->errlog, a->errlog);
    json_t *sum = last_json_line(c->out);
    char want[4096];
    dvm_builtin_text(prompt, strlen(prompt), 30, want, sizeof want);
    for (char *p = want; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
    cr_assert_str_eq(json_string_value(json_object_get(sum, "output")), want,
                     "agent B's text, batched and upper-cased by agent A");
    cr_assert_gt(json_integer_value(json_object_get(sum, "sats_paid")), 0);
    json_decref(sum);
    json_t *o = lp_wait_event(a, "sub_done", 10000);
    cr_assert_not_null(o);
    cr_assert_str_eq(json_string_value(json_object_get(o, "status")), "ok");
    cr_assert_eq(json_integer_value(json_object_get(o, "chunks")), 30, "the sub-task streamed all its chunks");
    cr_assert_eq(json_integer_value(json_object_get(o, "sats_paid")), 30, "agent A paid agent B per chunk");
    json_decref(o);
    o = lp_wait_event(a, "claimed", 10000);
    cr_assert_not_null(o, "agent A claims its pay");
    json_decref(o);
    o = lp_wait_event(b, "claimed", 10000);
    cr_assert_not_null(o, "agent B claims its pay");
    cr_assert_eq(json_integer_value(json_object_get(o, "sats")), 30);
    json_decref(o);
}

Test(e2e, exit_codes_unreachable_and_price_too_high)
{
    char url[256], addr[128], mintf[300], peer[200], wallet[400];
    lp_start_mint(dir, 0, url, sizeof url);
    snprintf(mintf, sizeof mintf, "--mint=%s", url);
    snprintf(wallet, sizeof wallet, "--wallet=%s/customer.db", dir);
    /* nobody listens on the port of a socket we bound and closed */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd);
    snprintf(peer, sizeof peer, "--peer=127.0.0.1:%u", ntohs(sa.sin_port));
    lp *c = lp_start("customer", "customer", peer, mintf, wallet, "--budget=20", "--json", "hi", NULL);
    cr_assert_eq(lp_wait_exit(c, 30000), 3, "no provider reachable: %s", c->errlog);
    json_t *o = last_json_line(c->out);
    cr_assert_str_eq(json_string_value(json_object_get(o, "status")), "unreachable");
    json_decref(o);

    lp_start_agent(dir, url, addr, sizeof addr, "--sats-per-chunk=10");
    snprintf(peer, sizeof peer, "--peer=%s", addr);
    c = lp_start("customer", "customer", peer, mintf, wallet, "--kind=5101", "--budget=200", "hi", NULL);
    cr_assert_eq(lp_wait_exit(c, 30000), 6, "another kind is refused: %s", c->errlog);
    cr_assert(strstr(c->errlog, "Unsupported kind 5101"), "%s", c->errlog);
    c = lp_start("customer", "customer", peer, mintf, wallet, "--budget=200", "--max-sats-per-chunk=5", "hi", NULL);
    cr_assert_eq(lp_wait_exit(c, 30000), 4, "price too high: %s", c->errlog);
    cr_assert_eq(unspent_sats(wallet + strlen("--wallet="), url), 200, "nothing spent: the proofs stay in the wallet");
}

Test(e2e, stream_socket_publishes_what_the_customer_gets)
{
    char url[256], addr[128], mintf[300], peer[200], wallet[400], sock[300], sockf[320];
    lp_start_mint(dir, 0, url, sizeof url);
    snprintf(sock, sizeof sock, "%s/agent.sock", dir);
    snprintf(sockf, sizeof sockf, "--stream-socket=%s", sock);
    lp *t = lp_start("tail", "tail", "--text", sock, NULL); /* waits for the agent */
    lp_start_agent(dir, url, addr, sizeof addr, "--chunks=20", sockf);
    /* the tail connects within its backoff; a chunk published before it
     * does is dropped (fire-and-forget), so wait for it to connect */
    uint64_t end = lp_now_ms() + 10000;
    while (!strstr(t->errlog, "connected") && lp_now_ms() < end)
        lp_pump(t, 50);
    cr_assert(strstr(t->errlog, "connected"), "tail: %s", t->errlog);
    snprintf(mintf, sizeof mintf, "--mint=%s", url);
    snprintf(peer, sizeof peer, "--peer=%s", addr);
    snprintf(wallet, sizeof wallet, "--wallet=%s/customer.db", dir);
    lp *c = lp_start("customer", "customer", peer, mintf, wallet, "--budget=50", "tail me", NULL);
    cr_assert_eq(lp_wait_exit(c, 30000), 0, "%s", c->errlog);
    char want[2048];
    dvm_builtin_text("tail me", 7, 20, want, sizeof want);
    cr_assert_str_eq(c->out, want);
    cr_assert(lp_wait_stdout(t, strlen(want), 10000), "tail printed: %s", t->out);
    cr_assert_str_eq(t->out, want, "dvm tail shows exactly what the customer received");
    lp_signal(t, SIGTERM);
    cr_assert_eq(lp_wait_exit(t, 5000), 0);
}

/* A malformed address is a usage error: exit 2 with one line, before any
 * file, socket or mint is touched (the mint URL here would refuse). */
Test(e2e, bad_addresses_are_usage_errors)
{
    const char *cases[][4] = {
        {"agent", "--listen=garbage", "--mint=http://127.0.0.1:9", NULL},
        {"agent", "--listen=127.0.0.1:99999", "--mint=http://127.0.0.1:9", NULL},
        {"agent", "--sub-kind=5100", "--sub-peer=nohost", "--mint=http://127.0.0.1:9"},
        {"customer", "--peer=127.0.0.1", "--mint=http://127.0.0.1:9", "hi"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lp *p = lp_start(cases[i][0], cases[i][0], cases[i][1], cases[i][2], cases[i][3], NULL);
        cr_assert_eq(lp_wait_exit(p, 15000), 2, "case %zu: %s", i, p->errlog);
        cr_assert(strstr(p->errlog, "dvm "), "%s", p->errlog);
        const char *nl = strchr(p->errlog, '\n');
        cr_assert(nl && nl[1] == '\0', "one line: %s", p->errlog);
    }
}

/* A startup failure after the wallets opened (here: a --stream-socket path
 * longer than sun_path) exits 1 cleanly. Regression: the startup claim ran
 * on the thread pool while the error path closed the wallets (a crash or a
 * hang at exit). Several runs, as the race was timing-dependent. */
Test(e2e, late_startup_failure_exits_cleanly)
{
    char wallet[400], ident[400], sock[400];
    snprintf(wallet, sizeof wallet, "--wallet=%s/agent.db", dir);
    snprintf(ident, sizeof ident, "--identity=%s/agent.id", dir);
    snprintf(sock, sizeof sock, "--stream-socket=%s/%0200d", dir, 0);
    for (int i = 0; i < 5; i++) {
        lp *a = lp_start("agent", "agent", "--listen=127.0.0.1:0", "--mint=http://127.0.0.1:9", wallet, ident, sock,
                         "--log-json", NULL);
        cr_assert_eq(lp_wait_exit(a, 15000), 1, "run %d: exit 1: %s", i, a->errlog);
        cr_assert(strstr(a->errlog, "startup_failed"), "%s", a->errlog);
        cr_assert_null(strstr(a->errlog, "Sanitizer"), "%s", a->errlog);
    }
}

Test(e2e, sigterm_ends_running_jobs_with_a_result_claims_and_exits_0)
{
    char url[256], addr[128], mintf[300], peer[200], wallet[400], cdb[256];
    lp_start_mint(dir, 0, url, sizeof url);
    lp *agent = lp_start_agent(dir, url, addr, sizeof addr, "--chunks=1000", "--rate=50");
    snprintf(mintf, sizeof mintf, "--mint=%s", url);
    snprintf(peer, sizeof peer, "--peer=%s", addr);
    snprintf(cdb, sizeof cdb, "%s/customer.db", dir);
    snprintf(wallet, sizeof wallet, "--wallet=%s", cdb);
    lp *c = lp_start("customer", "customer", peer, mintf, wallet, "--budget=500", "--json", "--log-json", "long job",
                     NULL);
    json_t *o = lp_wait_event(agent, "payment_ack", 20000);
    cr_assert_not_null(o, "%s", agent->errlog);
    json_decref(o);
    o = lp_wait_event(agent, "payment_ack", 20000);
    cr_assert_not_null(o);
    json_decref(o);
    lp_signal(agent, SIGTERM);
    /* A bounded wait on the exit event, not a timed assertion. */
    cr_assert_eq(lp_wait_exit(agent, 15000), 0, "agent exits 0 within 15 s: %s", agent->errlog);
    json_t *cl = lp_find_event(agent, "claimed"); /* the agent has exited: all of its log is read */
    cr_assert_not_null(cl, "claimed before exiting: %s", agent->errlog);
    uint64_t claimed = (uint64_t)json_integer_value(json_object_get(cl, "sats"));
    json_decref(cl);
    cr_assert_eq(lp_wait_exit(c, 15000), 0, "the customer got a result: %s", c->errlog);
    json_t *sum = last_json_line(c->out);
    uint64_t chunks = (uint64_t)json_integer_value(json_object_get(sum, "chunks"));
    uint64_t total = (uint64_t)json_integer_value(json_object_get(sum, "total_sats"));
    cr_assert_gt(chunks, 10);
    cr_assert_lt(chunks, 1000, "the job was cut short");
    cr_assert_gt(strlen(json_string_value(json_object_get(sum, "output"))), 0, "the result carries the output so far");
    cr_assert_eq(total, claimed, "the result's total_sats is what was claimed");
    json_decref(sum);
    cr_assert_eq(sent_sats(cdb, url, true), claimed);
}

Test(e2e, prompt_from_stdin)
{
    char url[256], addr[128], mintf[300], peer[200], wallet[400];
    lp_start_mint(dir, 0, url, sizeof url);
    lp_start_agent(dir, url, addr, sizeof addr, "--chunks=12");
    snprintf(mintf, sizeof mintf, "--mint=%s", url);
    snprintf(peer, sizeof peer, "--peer=%s", addr);
    snprintf(wallet, sizeof wallet, "--wallet=%s/customer.db", dir);
    const char *args[] = {lp_bin(), "customer", peer, mintf, wallet, "--budget=20", "--json", "-", NULL};
    lp *c = lp_spawn("customer", args, true);
    const char *prompt = "a prompt\nfrom stdin";
    cr_assert_eq(write(c->in_fd, prompt, strlen(prompt)), (ssize_t)strlen(prompt));
    close(c->in_fd);
    c->in_fd = -1;
    cr_assert_eq(lp_wait_exit(c, 30000), 0, "%s", c->errlog);
    json_t *o = last_json_line(c->out);
    char want[1024];
    dvm_builtin_text(prompt, strlen(prompt), 12, want, sizeof want);
    cr_assert_str_eq(json_string_value(json_object_get(o, "output")), want, "the job ran on stdin's prompt");
    json_decref(o);
}

/* --insecure-plaintext (debugging): the agent speaks NDJSON in the clear
 * (a raw TCP client gets its `offer` as a readable line, so tcpdump and
 * pcap2corpus can use a capture), a plaintext customer completes a paid job,
 * and a pinned peer is refused as a usage error. */
Test(e2e, insecure_plaintext_debug_mode)
{
    char url[256], addr[128], wallet[400], mintf[300], peer[200];
    lp *mint = lp_start_mint(dir, 0, url, sizeof url);
    lp *agent = lp_start_agent(dir, url, addr, sizeof addr, "--chunks=12", "--insecure-plaintext");
    json_t *w = lp_wait_find(agent, "warning", 5000);
    cr_assert_not_null(w, "the agent warns: %s", agent->errlog);
    json_decref(w);

    char host[64];
    unsigned port = 0;
    cr_assert_eq(sscanf(addr, "%63[^:]:%u", host, &port), 2, "%s", addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const char *req = "{\"type\":\"request\",\"id\":\"raw1\",\"kind\":5100,\"input\":\"hi\",\"budget\":10}\n";
    cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    char buf[512] = "";
    size_t got = 0;
    while (got < sizeof buf - 1 && !strchr(buf, '\n')) {
        ssize_t n = read(fd, buf + got, sizeof buf - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = 0;
    }
    close(fd);
    cr_assert_str_eq(buf, "{\"type\":\"offer\",\"id\":\"raw1\",\"sats_per_chunk\":1,\"chunks_per_payment\":10}\n");

    snprintf(wallet, sizeof wallet, "--wallet=%s/customer.db", dir);
    snprintf(mintf, sizeof mintf, "--mint=%s", url);
    snprintf(peer, sizeof peer, "--peer=%s", addr);
    lp *c = lp_start("customer", "customer", peer, mintf, wallet, "--budget=20", "--json", "--insecure-plaintext",
                     "hello", NULL);
    cr_assert_eq(lp_wait_exit(c, 30000), 0, "customer: %s", c->errlog);
    json_t *sum = last_json_line(c->out);
    cr_assert_not_null(sum, "summary: %s", c->out);
    cr_assert_eq(json_integer_value(json_object_get(sum, "chunks")), 12);
    cr_assert_eq(json_integer_value(json_object_get(sum, "sats_paid")), 20);
    json_decref(sum);

    char pinned[300];
    snprintf(pinned, sizeof pinned, "--peer=%s@%064d", addr, 0);
    lp *bad = lp_start("customer", "customer", pinned, mintf, wallet, "--insecure-plaintext", "x", NULL);
    cr_assert_eq(lp_wait_exit(bad, 10000), 2, "pinning without a handshake is a usage error: %s", bad->errlog);

    lp_signal(agent, SIGTERM);
    cr_assert_eq(lp_wait_exit(agent, 15000), 0);
    lp_signal(mint, SIGTERM);
    cr_assert_neq(lp_wait_exit(mint, 10000), -1);
}

/* A model server that answers, streams one event and then stalls: with
 * --stall-timeout the agent ends the job with an `error` naming the stall
 * (instead of holding the customer until its own silence timeout), the
 * customer exits 6 with that message, and the agent stays up. */
Test(e2e, stalled_model_server_ends_the_job_with_an_error)
{
    stall_server s;
    stall_server_start(&s, "text/event-stream",
                       "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"first \"}}]}\n\n");
    char url[256], addr[128], mintf[300], peer[200], wallet[400], proc[128];
    lp_start_mint(dir, 0, url, sizeof url);
    snprintf(proc, sizeof proc, "--processor=http:http://127.0.0.1:%u", s.port);
    lp *agent = lp_start_agent(dir, url, addr, sizeof addr, proc, "--stall-timeout=500");
    snprintf(mintf, sizeof mintf, "--mint=%s", url);
    snprintf(peer, sizeof peer, "--peer=%s", addr);
    snprintf(wallet, sizeof wallet, "--wallet=%s/customer.db", dir);
    lp *c = lp_start("customer", "customer", peer, mintf, wallet, "--budget=20", "--json", "hi", NULL);
    cr_assert_eq(lp_wait_exit(c, 30000), 6, "the customer gets the provider's error: %s", c->errlog);
    json_t *o = last_json_line(c->out);
    cr_assert_not_null(o, "summary: %s", c->out);
    const char *e = json_string_value(json_object_get(o, "error"));
    cr_assert(e && strstr(e, "no data from http://127.0.0.1:") && strstr(e, "for 500 ms (model server stalled)"),
              "error: %s", e ? e : c->out);
    json_decref(o);
    json_t *pe = lp_wait_find(agent, "processor_error", 5000);
    cr_assert_not_null(pe, "the agent logs the stall: %s", agent->errlog);
    json_decref(pe);
    cr_assert(stall_server_wait_hangups(&s, 1, 5000), "the agent closed the stalled connection");
    /* the flag is checked like every other */
    lp *bad = lp_start("agent", "agent", "--stall-timeout=5", NULL);
    cr_assert_eq(lp_wait_exit(bad, 10000), 2, "%s", bad->errlog);
    cr_assert(strstr(bad->errlog, "--stall-timeout: expected a number in 100..3600000"), "%s", bad->errlog);
    stall_server_stop(&s);
}

/* Run `dvm customer ARGS` with stdout on a pseudo-terminal; what the
 * terminal shows into out (cap bytes). Bounded: killed after 30 s. Returns
 * the exit status (-1 when it had to be killed). */
static int customer_on_a_tty(const char **args, char *out, size_t cap)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    cr_assert_geq(m, 0);
    cr_assert_eq(grantpt(m), 0);
    cr_assert_eq(unlockpt(m), 0);
    int sl = open(ptsname(m), O_RDWR | O_NOCTTY);
    cr_assert_geq(sl, 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, sl, 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addclose(&fa, m);
    pid_t pid;
    int rc = posix_spawn(&pid, args[0], &fa, NULL, (char *const *)args, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(sl);
    cr_assert_eq(rc, 0);
    size_t n = 0;
    int st = 0;
    bool exited = false;
    uint64_t end = lp_now_ms() + 30000;
    for (;;) {
        struct pollfd p = {m, POLLIN, 0};
        if (poll(&p, 1, 50) > 0) {
            char b[4096];
            ssize_t r = read(m, b, sizeof b);
            if (r > 0) {
                size_t c = (size_t)r < cap - 1 - n ? (size_t)r : cap - 1 - n;
                memcpy(out + n, b, c);
                n += c;
                continue;
            }
            if (exited)
                break; /* EIO: the terminal is closed and drained */
        } else if (exited)
            break;
        if (!exited && waitpid(pid, &st, WNOHANG) == pid)
            exited = true;
        if (!exited && lp_now_ms() >= end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            close(m);
            out[n] = 0;
            return -1;
        }
    }
    close(m);
    out[n] = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A provider's text with escape sequences (OSC 52 clipboard write, clear
 * screen, a C1 CSI): on a terminal the customer shows U+FFFD for each
 * control character; into a pipe the text is passed on exactly. */
Test(e2e, provider_control_characters_are_neutralised_on_a_terminal)
{
    char url[256], addr[128], mintf[300], peer[200], wallet[400];
    lp_start_mint(dir, 0, url, sizeof url);
    lp_start_agent(dir, url, addr, sizeof addr,
                   "--processor=exec:/usr/bin/printf 'a\\033]52;c;aGk=\\007b\\033[2Jc\\302\\233d\\n'");
    snprintf(mintf, sizeof mintf, "--mint=%s", url);
    snprintf(peer, sizeof peer, "--peer=%s", addr);
    snprintf(wallet, sizeof wallet, "--wallet=%s/customer.db", dir);
    lp *c = lp_start("customer", "customer", peer, mintf, wallet, "--budget=20", "hi", NULL);
    cr_assert_eq(lp_wait_exit(c, 30000), 0, "%s", c->errlog);
    cr_assert_str_eq(c->out, "a\033]52;c;aGk=\007b\033[2Jc\302\233d\n", "a pipe gets the exact text");
    const char *args[] = {lp_bin(), "customer", peer, mintf, wallet, "--budget=20", "hi", NULL};
    char tty[4096];
    cr_assert_eq(customer_on_a_tty(args, tty, sizeof tty), 0, "customer on a tty: %s", tty);
    cr_assert_null(strchr(tty, '\033'), "no ESC reaches the terminal: %s", tty);
    cr_assert_null(strchr(tty, '\007'), "no BEL reaches the terminal");
    cr_assert_null(strstr(tty, "\302\233"), "no C1 CSI reaches the terminal");
    cr_assert_not_null(strstr(tty, "a\357\277\275]52;c;aGk=\357\277\275b\357\277\275[2Jc\357\277\275d"),
                       "each control character shows as U+FFFD: %s", tty);
}

/* lp_start_mint's rebind (live_proc.h): a mint restarted on its port while
 * another socket holds it for a moment starts once the port is free. */
Test(e2e, mint_restart_on_a_port_held_for_a_moment_retries_the_bind)
{
    char url[256], again[256];
    lp *mint = lp_start_mint(dir, 0, url, sizeof url);
    unsigned port = 0;
    cr_assert_eq(sscanf(url, "http://127.0.0.1:%u", &port), 1, "%s", url);
    lp_signal(mint, SIGTERM);
    cr_assert_eq(lp_wait_exit(mint, 10000), 0);
    port_hold h;
    port_hold_start(&h, (int)port, 400);
    lp_start_mint(dir, (uint16_t)port, again, sizeof again);
    port_hold_join(&h);
    cr_assert_str_eq(again, url);
}

/* A claim of the agent's, modelled: another thread, its own wallet client
 * on the buyer's wallet file, that runs dvm_wallet_client_recover under
 * the lock the agent passes the buyer (claim_mu) once the buyer's split
 * swap is in flight (held by the proxy). If the lock is busy then (the
 * split holds it: the fix), the held swap is let go and the claim waits
 * for the lock. */
struct split_claimer {
    hold_proxy *hp;
    uv_mutex_t *mu;
    dvm_wallet_client *w;
    atomic_bool stop;
    bool saw_swap, lock_busy, ran;
    size_t closed; /* operations the recovery completed or reverted */
    dvm_err e;
};

static void *split_claimer_main(void *arg)
{
    struct split_claimer *c = arg;
    for (uint64_t end = lp_now_ms() + 15000; !atomic_load(&c->stop) && lp_now_ms() < end;) {
        bool h;
        int cs, sw;
        hold_proxy_state(c->hp, &h, &cs, &sw);
        if (h) {
            c->saw_swap = true;
            break;
        }
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL); /* polls the proxy's state; the order comes from the proxy */
    }
    if (!c->saw_swap)
        return NULL;
    if (uv_mutex_trylock(c->mu) != 0) {
        c->lock_busy = true;
        hold_proxy_release(c->hp);
        uv_mutex_lock(c->mu);
    }
    c->e = dvm_wallet_client_recover(c->w, &c->closed);
    c->ran = true;
    uv_mutex_unlock(c->mu);
    return NULL;
}

struct split_buy {
    bool ended;
    dvm_customer_status status;
    uint64_t sats_paid;
    char reason[300];
};

static void split_buy_end(void *ud, const dvm_buyer_result *r)
{
    struct split_buy *sb = ud;
    sb->ended = true;
    sb->status = r->status;
    sb->sats_paid = r->sats_paid;
    snprintf(sb->reason, sizeof sb->reason, "%s", r->reason);
}

static void split_guard(uv_timer_t *t) { (void)t; }

/* The agent's SUB_KIND pipeline buys its sub-task with the agent's own
 * wallet, splitting the sub-budget (a swap) on the loop, while a claim on
 * another thread starts by recovering the wallet's open operations. The
 * split's swap in flight is one: a claim that ran then asked the mint
 * (inputs unspent: the swap had not arrived), reverted it, and the swap
 * then went through with nowhere to store its proofs - the split failed,
 * the sub-task was not bought and its budget was lost (spent at the mint,
 * UNSPENT in the wallet). The buyer takes dvm_buyer_opts.wallet_mu (the
 * agent passes claim_mu) around the split: the claim waits, recovers
 * nothing, the sub-task is paid. Here the buyer runs in this process with a
 * claim modelled on a thread (split_claimer), and a proxy in front of the
 * mint holds the split's swap until that claim's checkstate (or until the
 * claim finds the lock busy). */
Test(e2e, a_claim_never_reverts_the_sub_task_split_in_flight)
{
    static hold_proxy hp;
    char murl[256], url[256], baddr[128], db[300], err[256];
    lp_start_mint(dir, 0, murl, sizeof murl);
    const char *colon = strrchr(murl, ':');
    cr_assert_not_null(colon);
    cr_assert(hold_proxy_start(&hp, (uint16_t)atoi(colon + 1), url, sizeof url));
    lp *b = lp_start_agent(dir, url, baddr, sizeof baddr, "--chunks=20");
    snprintf(db, sizeof db, "%s/buyer.db", dir);
    dvm_wallet_client *w = NULL, *cw = NULL;
    cr_assert_eq(dvm_wallet_client_open(url, db, 10000, &w, err, sizeof err), DVM_OK, "%s", err);
    cr_assert_eq(dvm_wallet_client_open(url, db, 10000, &cw, err, sizeof err), DVM_OK, "%s", err);
    uint64_t minted = 0;
    cr_assert_eq(dvm_wallet_client_mint(w, 50, 10000, &minted), DVM_OK, "%s", dvm_wallet_client_last_error(w));
    cr_assert_eq(minted, 50);

    uv_mutex_t mu;
    cr_assert_eq(uv_mutex_init(&mu), 0);
    static struct split_claimer c;
    memset(&c, 0, sizeof c);
    c.hp = &hp;
    c.mu = &mu;
    c.w = cw;
    hold_proxy_arm(&hp); /* the next swap: the split's (32+16+2 cannot make tokens of 10) */
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, split_claimer_main, &c), 0);

    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    uv_timer_t guard;
    uv_timer_init(&loop, &guard);
    uv_timer_start(&guard, split_guard, 200, 200); /* wakes the loop for the bounded wait below */
    dvm_log log = {NULL, false, "test"};
    dvm_buyer_opts o = {5100, 50, 5, 0, 10000, baddr, w, &log, "sub", false, &mu};
    struct split_buy sb;
    memset(&sb, 0, sizeof sb);
    dvm_buyer_cbs cb = {NULL, split_buy_end, &sb};
    dvm_buyer *buyer = NULL;
    cr_assert_eq(dvm_buyer_start(&loop, &o, "translate this", 14, &cb, &buyer, err, sizeof err), 0, "%s", err);
    for (uint64_t end = lp_now_ms() + 40000; !sb.ended && lp_now_ms() < end;)
        uv_run(&loop, UV_RUN_ONCE);
    if (!sb.ended)
        dvm_buyer_cancel(buyer);
    atomic_store(&c.stop, true);
    pthread_join(th, NULL);
    uv_close((uv_handle_t *)&guard, NULL);
    for (uint64_t end = lp_now_ms() + 5000; uv_loop_alive(&loop) && lp_now_ms() < end;)
        uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
    hold_proxy_stop(&hp);
    lp_signal(b, SIGTERM);
    cr_assert_eq(lp_wait_exit(b, 15000), 0);

    cr_assert(c.saw_swap, "the split's swap reached the proxy");
    cr_assert(c.ran, "the claim ran while the split's swap was in flight");
    cr_assert(sb.ended, "the sub-task ended");
    /* no sat lost: every UNSPENT proof in the wallet is unspent at the mint,
     * and with the ones paid they make the 50 sats minted */
    dvm_wallet_store *st = NULL;
    cr_assert_eq(dvm_wallet_store_open(db, &st, err, sizeof err), DVM_OK, "%s", err);
    dvm_proof *p = NULL;
    size_t n = 0;
    uint64_t sent = 0, unspent = 0;
    cr_assert_eq(dvm_wallet_store_sum(st, url, DVM_WPROOF_SENT, &sent), DVM_OK);
    cr_assert_eq(dvm_wallet_store_list(st, url, DVM_WPROOF_UNSPENT, &p, &n), DVM_OK);
    dvm_wallet_store_close(st);
    dvm_wallet_client_close(cw);
    dvm_wallet_client_close(w);
    cr_assert_eq(dvm_wallet_client_open(murl, db, 5000, &w, err, sizeof err), DVM_OK, "%s", err);
    dvm_proof_state *s = calloc(n ? n : 1, sizeof *s);
    cr_assert(n == 0 || dvm_wallet_client_check(w, p, n, s) == DVM_OK, "%s", dvm_wallet_client_last_error(w));
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(s[i], DVM_PROOF_UNSPENT, "UNSPENT proof %zu (%llu sats) is unspent at the mint", i,
                     (unsigned long long)p[i].amount);
        unspent += p[i].amount;
    }
    free(s);
    free(p);
    dvm_wallet_client_close(w);
    cr_assert_eq(unspent + sent, 50, "%llu unspent + %llu sent", (unsigned long long)unspent,
                 (unsigned long long)sent);
    cr_assert_eq(c.closed, 0, "the claim's recovery found no operation of the split's open");
    cr_assert_eq(sb.status, DVM_CUSTOMER_OK, "the sub-task was bought: %s", sb.reason);
    cr_assert_eq(sb.sats_paid, 20);
    cr_assert(c.lock_busy, "the split holds the lock while its swap is in flight");
    uv_mutex_destroy(&mu);
}
