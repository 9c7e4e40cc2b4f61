/* Bad payments against a real `dvm agent` (and `dvm mint`s) on 127.0.0.1,
 * sent by a raw protocol client over SecretStream (tools/live/conn.h):
 * a forged token (DLEQ tampered), a token of an untrusted mint and a
 * replayed token are refused with an `error` and no credit; a good payment
 * on the same connection and a normal customer are not affected. */
#include "hold_proxy.h"
#include "live_proc.h"
#include "spawn_run.h"

#include <sodium.h>
#include <sys/stat.h>

#include "cashu/token.h"
#include "live/conn.h"
#include "live/wallet_store.h"

static char dir[128];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/dvm-pay-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    cr_assert(sodium_init() >= 0);
    signal(SIGPIPE, SIG_IGN);
}

static void teardown(void)
{
    lp_kill_all();
    if (dir[0] && !spawn_rm_rf(dir))
        fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(payments, .init = setup, .fini = teardown, .timeout = 120);

/* A token of `sats` from `mint_url` via `dvm wallet send` (wallet db name). */
static char *wallet_token(const char *mint_url, const char *db_name, uint64_t sats)
{
    char mintf[300], db[300], amt[32];
    snprintf(mintf, sizeof mintf, "--mint=%s", mint_url);
    snprintf(db, sizeof db, "--db=%s/%s", dir, db_name);
    snprintf(amt, sizeof amt, "%llu", (unsigned long long)sats);
    lp *w = lp_start("wallet", "wallet", mintf, db, "mint", amt, NULL);
    cr_assert_eq(lp_wait_exit(w, 20000), 0, "%s", w->errlog);
    w = lp_start("wallet", "wallet", mintf, db, "send", amt, NULL);
    cr_assert_eq(lp_wait_exit(w, 20000), 0, "%s", w->errlog);
    char *tok = strndup(w->out, strcspn(w->out, "\n"));
    cr_assert(strncmp(tok, "cashuB", 6) == 0, "token: %s", tok);
    return tok;
}

/* The same token with one proof's DLEQ `s` altered: a forgery. */
static char *forge(const char *tok)
{
    dvm_token t;
    char reason[200];
    cr_assert_eq(dvm_token_decode(tok, strlen(tok), &t, reason, sizeof reason), DVM_OK, "%s", reason);
    cr_assert(t.n_proofs > 0 && t.proofs[0].has_dleq, "the mint attaches DLEQ proofs");
    t.proofs[0].dleq.s[5] ^= 0x40;
    dvm_buf b;
    dvm_buf_init(&b, 0);
    cr_assert_eq(dvm_token_encode(&t, 4, &b), DVM_OK);
    char *s = strndup((const char *)b.data, b.len);
    dvm_buf_free(&b);
    dvm_token_free(&t);
    return s;
}

/* ---- a raw protocol client ---------------------------------------------- */

struct raw {
    uv_loop_t loop;
    dvm_conn *c;
    bool open, closed;
    char in[1 << 18];
    size_t in_len;
};

static void r_open(dvm_conn *c, void *ud)
{
    (void)c;
    ((struct raw *)ud)->open = true;
}
static void r_msg(dvm_conn *c, const uint8_t *m, size_t n, void *ud)
{
    (void)c;
    struct raw *r = ud;
    if (r->in_len + n < sizeof r->in) {
        memcpy(r->in + r->in_len, m, n);
        r->in_len += n;
        r->in[r->in_len] = 0;
    }
}
static void r_close(dvm_conn *c, dvm_err e, const char *why, void *ud)
{
    (void)c;
    (void)e;
    (void)why;
    struct raw *r = ud;
    r->closed = true;
    r->c = NULL;
}

static void tick(uv_timer_t *t) { (void)t; }

/* Run the loop until the input holds a line of `type` for job `id`
 * (optionally containing `needle`); returns it (malloc'd) or NULL. */
static char *r_wait(struct raw *r, const char *type, const char *id, const char *needle, uint64_t timeout_ms)
{
    uv_timer_t t;
    uv_timer_init(&r->loop, &t);
    uv_timer_start(&t, tick, 10, 10);
    uint64_t end = lp_now_ms() + timeout_ms;
    char *found = NULL;
    char want_t[64], want_id[128];
    snprintf(want_t, sizeof want_t, "\"type\":\"%s\"", type);
    snprintf(want_id, sizeof want_id, "\"id\":\"%s\"", id);
    while (!found && lp_now_ms() < end) {
        for (char *s = r->in; *s;) {
            size_t n = strcspn(s, "\n");
            char *line = strndup(s, n);
            if (strstr(line, want_t) && strstr(line, want_id) && (!needle || strstr(line, needle))) {
                found = line;
                break;
            }
            free(line);
            s += n;
            if (*s)
                s++;
        }
        if (!found)
            uv_run(&r->loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&r->loop, UV_RUN_NOWAIT);
    return found;
}

static void r_send(struct raw *r, const char *fmt, ...)
{
    char line[1 << 16];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    line[n++] = '\n';
    cr_assert_eq(dvm_conn_send(r->c, (const uint8_t *)line, (size_t)n), DVM_OK);
}

/* Request job `id` (input "job i", budget 100), wait for its offer, pay it
 * with token `tok`; returns the payment_ack line (malloc'd) or NULL. */
static char *r_request_and_pay(struct raw *r, const char *id, int i, const char *tok)
{
    r_send(r, "{\"type\":\"request\",\"id\":\"%s\",\"kind\":5100,\"input\":\"job %d\",\"budget\":100}", id, i);
    char *offer = r_wait(r, "offer", id, NULL, 10000);
    cr_assert_not_null(offer, "offer for %s: %s", id, r->in);
    free(offer);
    r_send(r, "{\"type\":\"payment\",\"id\":\"%s\",\"token\":\"%s\"}", id, tok);
    return r_wait(r, "payment_ack", id, NULL, 10000);
}

static void rng_fill(void *ctx, uint8_t *b, size_t n)
{
    (void)ctx;
    randombytes_buf(b, n);
}

static int count_events(lp *p, const char *ev)
{
    int n = 0;
    char want[64];
    snprintf(want, sizeof want, "\"event\":\"%s\"", ev);
    for (const char *s = p->errlog; (s = strstr(s, want)); s++)
        n++;
    return n;
}

/* A raw client connected (handshake done) to the agent at addr, sending
 * keep-alives every keepalive_ms when it has nothing to send (0 = never). */
static struct raw *r_connect_ka(const char *addr, uint64_t keepalive_ms)
{
    struct raw *r = calloc(1, sizeof *r);
    cr_assert_not_null(r);
    uv_loop_init(&r->loop);
    dvm_rng rng = {rng_fill, NULL};
    dvm_noise_keypair kp;
    dvm_noise_keypair_generate(&kp, &rng);
    dvm_conn_options co;
    dvm_conn_options_default(&co);
    co.keepalive_ms = keepalive_ms;
    dvm_conn_callbacks cb = {r_open, r_msg, NULL, r_close};
    char host[64];
    uint16_t port = (uint16_t)atoi(strrchr(addr, ':') + 1);
    snprintf(host, sizeof host, "%.*s", (int)(strrchr(addr, ':') - addr), addr);
    dvm_err e;
    r->c = dvm_dial(&r->loop, host, port, &kp, &co, &cb, r, &e);
    cr_assert_not_null(r->c);
    uint64_t end = lp_now_ms() + 10000;
    while (!r->open && !r->closed && lp_now_ms() < end)
        uv_run(&r->loop, UV_RUN_ONCE);
    cr_assert(r->open, "handshake with the agent");
    return r;
}

static struct raw *r_connect(const char *addr) { return r_connect_ka(addr, 0); }

/* Run r's loop for ms milliseconds, or until the agent closes r. */
static void r_run(struct raw *r, uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(&r->loop, &t);
    uv_timer_start(&t, tick, 10, 10);
    uint64_t end = lp_now_ms() + ms;
    while (!r->closed && lp_now_ms() < end)
        uv_run(&r->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&r->loop, UV_RUN_NOWAIT);
}

static void r_free(struct raw *r)
{
    if (r->c)
        dvm_conn_close(r->c);
    uint64_t end = lp_now_ms() + 5000;
    while (!r->closed && lp_now_ms() < end)
        uv_run(&r->loop, UV_RUN_ONCE);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_loop_close(&r->loop);
    free(r);
}

static int count_in(const char *s, const char *needle)
{
    int n = 0;
    for (; (s = strstr(s, needle)); s++)
        n++;
    return n;
}

/* Three payments carrying the same proof (token X, a token Y holding one
 * of X's proofs, X again), for three jobs, sent in ONE SecretStream message
 * so they reach the verifier pool (4 threads) together and are decoded and
 * DLEQ-checked concurrently: exactly one is credited (the first to arrive:
 * decisions are serialised in arrival order), the other two are refused
 * as replays with no credit and no output. */
Test(payments, the_same_proof_racing_through_the_verifier_pool_is_credited_once)
{
    char url[256], addr[128];
    lp_start_mint(dir, 0, url, sizeof url);
    lp *agent = lp_start_agent(dir, url, addr, sizeof addr, "--chunks=40", "--max-jobs=10", "--verify-threads=4");
    cr_assert(strstr(agent->errlog, "\"verify_threads\":4"), "%s", agent->errlog);
    char *x = wallet_token(url, "x.db", 3);
    char *y0 = wallet_token(url, "y.db", 5);
    dvm_token tx, ty;
    char reason[200];
    cr_assert_eq(dvm_token_decode(x, strlen(x), &tx, reason, sizeof reason), DVM_OK, "%s", reason);
    cr_assert_eq(dvm_token_decode(y0, strlen(y0), &ty, reason, sizeof reason), DVM_OK, "%s", reason);
    cr_assert(tx.n_proofs >= 2 && ty.n_proofs >= 2);
    ty.proofs[0] = tx.proofs[0]; /* Y carries one of X's proofs */
    dvm_buf yb;
    dvm_buf_init(&yb, 0);
    cr_assert_eq(dvm_token_encode(&ty, 4, &yb), DVM_OK);
    char *y = strndup((const char *)yb.data, yb.len);

    struct raw *r = r_connect(addr);
    const char *ids[3] = {"race-a", "race-b", "race-c"};
    const char *toks[3] = {x, y, x};
    for (int i = 0; i < 3; i++) {
        r_send(r, "{\"type\":\"request\",\"id\":\"%s\",\"kind\":5100,\"input\":\"job %d\",\"budget\":100}", ids[i], i);
        char *offer = r_wait(r, "offer", ids[i], NULL, 10000);
        cr_assert_not_null(offer, "offer for %s: %s", ids[i], r->in);
        free(offer);
    }
    size_t cap = strlen(x) * 2 + strlen(y) + 512, len = 0;
    char *burst = malloc(cap);
    for (int i = 0; i < 3; i++)
        len += (size_t)snprintf(burst + len, cap - len, "{\"type\":\"payment\",\"id\":\"%s\",\"token\":\"%s\"}\n", ids[i],
                                toks[i]);
    cr_assert_eq(dvm_conn_send(r->c, (const uint8_t *)burst, len), DVM_OK);
    char *ack = r_wait(r, "payment_ack", "race-a", NULL, 10000);
    cr_assert_not_null(ack, "the first payment is credited: %s\nagent: %s", r->in, agent->errlog);
    free(ack);
    for (int i = 1; i < 3; i++) {
        char *err = r_wait(r, "error", ids[i], "Payment failed", 10000);
        cr_assert_not_null(err, "%s is refused: %s\nagent: %s", ids[i], r->in, agent->errlog);
        free(err);
    }
    /* the credited job streams its 3 paid chunks, then asks for more */
    char *pr = r_wait(r, "pay_required", "race-a", NULL, 10000);
    cr_assert_not_null(pr, "%s", r->in);
    free(pr);
    cr_assert_eq(count_in(r->in, "\"type\":\"payment_ack\""), 1, "one credit only: %s", r->in);
    cr_assert_eq(count_in(r->in, "\"type\":\"chunk\",\"id\":\"race-b\""), 0);
    cr_assert_eq(count_in(r->in, "\"type\":\"chunk\",\"id\":\"race-c\""), 0);
    r_free(r);
    lp_signal(agent, SIGTERM);
    cr_assert_eq(lp_wait_exit(agent, 15000), 0);
    cr_assert_eq(count_events(agent, "payment"), 1, "%s", agent->errlog);
    cr_assert_eq(count_events(agent, "payment_rejected"), 2, "%s", agent->errlog);
    cr_assert(strstr(agent->errlog, "already received"), "refused as replays: %s", agent->errlog);
    dvm_buf_free(&yb);
    dvm_token_free(&tx);
    dvm_token_free(&ty);
    free(burst);
    free(x);
    free(y0);
    free(y);
}

/* --idle-timeout: a connection that sends nothing (no keep-alives) is closed
 * by the agent after the timeout; one that sends keep-alives (as our
 * customer and HyperDHT connections do) outlives several timeouts and
 * still gets an offer. */
Test(payments, silent_connections_are_closed_and_keep_alives_keep_them_open)
{
    char url[256], addr[128];
    lp_start_mint(dir, 0, url, sizeof url);
    lp *agent = lp_start_agent(dir, url, addr, sizeof addr, "--idle-timeout=400");
    struct raw *silent = r_connect_ka(addr, 0);
    r_run(silent, 10000);
    cr_assert(silent->closed, "the silent connection is closed by the agent");
    struct raw *alive = r_connect_ka(addr, 100); /* each raw client has its own loop: one at a time */
    r_run(alive, 1500); /* > 3 idle timeouts, with keep-alives */
    cr_assert_not(alive->closed, "keep-alives keep the connection open");
    r_send(alive, "{\"type\":\"request\",\"id\":\"ka-1\",\"kind\":5100,\"input\":\"hi\",\"budget\":10}");
    char *offer = r_wait(alive, "offer", "ka-1", NULL, 10000);
    cr_assert_not_null(offer, "%s\nagent: %s", alive->in, agent->errlog);
    free(offer);
    r_free(alive);
    r_free(silent);
    lp_signal(agent, SIGTERM);
    cr_assert_eq(lp_wait_exit(agent, 15000), 0);
}

Test(payments, forged_untrusted_and_replayed_tokens_are_refused)
{
    char url[256], url_b[256], addr[128], bdir[200];
    lp_start_mint(dir, 0, url, sizeof url);
    snprintf(bdir, sizeof bdir, "%s/b", dir);
    cr_assert_eq(mkdir(bdir, 0700), 0);
    lp_start_mint(bdir, 0, url_b, sizeof url_b); /* a mint the agent does not trust */
    lp *agent = lp_start_agent(dir, url, addr, sizeof addr, "--chunks=40", "--max-jobs=10", "--rate=200");

    char *good = wallet_token(url, "payer.db", 10);
    char *other = wallet_token(url, "payer2.db", 10);
    char *forged = forge(other);
    char *other2 = wallet_token(url, "payer3.db", 10);
    char *forged2 = forge(other2); /* sent once the keyset is known: committed early */
    char *untrusted = wallet_token(url_b, "payer_b.db", 10);

    struct raw *r = r_connect(addr);

    const char *ids[5] = {"forged", "untrusted", "good", "replay", "forged2"};
    const char *toks[5] = {forged, untrusted, good, good, forged2};
    for (int i = 0; i < 5; i++) {
        r_send(r, "{\"type\":\"request\",\"id\":\"%s\",\"kind\":5100,\"input\":\"job %d\",\"budget\":100}", ids[i], i);
        char *offer = r_wait(r, "offer", ids[i], NULL, 10000);
        cr_assert_not_null(offer, "offer for %s: %s", ids[i], r->in);
        free(offer);
        r_send(r, "{\"type\":\"payment\",\"id\":\"%s\",\"token\":\"%s\"}", ids[i], toks[i]);
        if (i == 2) {
            char *ack = r_wait(r, "payment_ack", "good", "\"amount\":10", 10000);
            cr_assert_not_null(ack, "the good payment is acknowledged: %s", r->in);
            free(ack);
        } else {
            char *err = r_wait(r, "error", ids[i], "Payment failed", 10000);
            cr_assert_not_null(err, "%s is refused with an error: %s\nagent: %s", ids[i], r->in, agent->errlog);
            free(err);
            char ack_id[64];
            snprintf(ack_id, sizeof ack_id, "\"type\":\"payment_ack\",\"id\":\"%s\"", ids[i]);
            cr_assert_null(strstr(r->in, ack_id), "no credit for %s", ids[i]);
            snprintf(ack_id, sizeof ack_id, "\"type\":\"chunk\",\"id\":\"%s\"", ids[i]);
            cr_assert_null(strstr(r->in, ack_id), "no output for %s", ids[i]);
        }
    }
    /* the good job streams its 10 paid chunks, then asks for more */
    char *pr = r_wait(r, "pay_required", "good", NULL, 10000);
    cr_assert_not_null(pr, "the good job streamed: %s", r->in);
    free(pr);
    r_send(r, "{\"type\":\"stop\",\"id\":\"good\"}");
    char *res = r_wait(r, "result", "good", "\"total_sats\":10", 10000);
    cr_assert_not_null(res, "%s", r->in);
    free(res);

    /* a normal customer alongside is unaffected */
    char mintf[300], peer[200], wallet[400];
    snprintf(mintf, sizeof mintf, "--mint=%s", url);
    snprintf(peer, sizeof peer, "--peer=%s", addr);
    snprintf(wallet, sizeof wallet, "--wallet=%s/customer.db", dir);
    lp *c = lp_start("customer", "customer", peer, mintf, wallet, "--budget=40", "--json", "normal", NULL);
    cr_assert_eq(lp_wait_exit(c, 30000), 0, "%s", c->errlog);

    r_free(r);
    lp_signal(agent, SIGTERM);
    cr_assert_eq(lp_wait_exit(agent, 15000), 0);
    cr_assert_eq(count_events(agent, "payment_rejected"), 4, "%s", agent->errlog);
    cr_assert_eq(count_events(agent, "payment"), 1 + 4, "one good raw payment + the customer's four");
    /* forged2 (the keyset known by then) was committed early, while its
     * DLEQ proofs were checked, and then moved to REJECTED: no claim ever
     * presented it to the mint, and its proofs are the only REJECTED rows
     * (the first forged token waited for the keyset: never stored). */
    for (const char *s = agent->errlog; (s = strstr(s, "\"rejected_sats\":")); s++)
        cr_assert_eq(strtoull(s + 16, NULL, 10), 0, "no claim carried the forged token: %s", agent->errlog);
    char adb[200], err[256];
    snprintf(adb, sizeof adb, "%s/agent.db", dir);
    dvm_wallet_store *st;
    cr_assert_eq(dvm_wallet_store_open(adb, &st, err, sizeof err), DVM_OK, "%s", err);
    dvm_proof *rej = NULL, *inc = NULL;
    size_t nrej = 0, ninc = 0;
    cr_assert_eq(dvm_wallet_store_list(st, url, DVM_WPROOF_REJECTED, &rej, &nrej), DVM_OK);
    cr_assert_eq(dvm_wallet_store_list(st, url, DVM_WPROOF_INCOMING, &inc, &ninc), DVM_OK);
    dvm_token ft;
    char reason[200];
    cr_assert_eq(dvm_token_decode(forged2, strlen(forged2), &ft, reason, sizeof reason), DVM_OK, "%s", reason);
    cr_assert_eq(nrej, ft.n_proofs, "the forged token's proofs are REJECTED (%zu rows)", nrej);
    for (size_t i = 0; i < nrej; i++) {
        bool found = false;
        for (size_t k = 0; k < ft.n_proofs; k++)
            found |= strcmp(rej[i].secret, ft.proofs[k].secret) == 0;
        cr_assert(found, "REJECTED proof %zu is one of the forged token's", i);
    }
    cr_assert_eq(ninc, 0, "everything accepted was claimed at exit");
    dvm_token_free(&ft);
    free(rej);
    free(inc);
    dvm_wallet_store_close(st);
    free(good);
    free(other);
    free(forged);
    free(forged2);
    free(other2);
    free(untrusted);
}


/* The unclaimed bound, reached again and again in one job: with
 * --max-unclaimed 25 and 10-sat payments every third payment makes the
 * verifier claim what is held first (the policy's total is then read back
 * from the store, which also holds payments committed early), and every
 * payment is still accepted: the job runs to its end, nothing refused. */
Test(payments, the_unclaimed_bound_claims_and_never_refuses_a_good_payment)
{
    char url[256], addr[128];
    lp_start_mint(dir, 0, url, sizeof url);
    lp *agent = lp_start_agent(dir, url, addr, sizeof addr, "--chunks=100", "--max-unclaimed=25");
    char mintf[300], peer[200], wallet[400];
    snprintf(mintf, sizeof mintf, "--mint=%s", url);
    snprintf(peer, sizeof peer, "--peer=%s", addr);
    snprintf(wallet, sizeof wallet, "--wallet=%s/bound.db", dir);
    lp *c = lp_start("customer", "customer", peer, mintf, wallet, "--budget=100", "--prepay=2", "--json", "bound",
                     NULL);
    cr_assert_eq(lp_wait_exit(c, 60000), 0, "%s\nagent: %s", c->errlog, agent->errlog);
    cr_assert(strstr(c->out, "\"chunks\":100"), "all chunks delivered: %s", c->out);
    lp_signal(agent, SIGTERM);
    cr_assert_eq(lp_wait_exit(agent, 15000), 0);
    cr_assert_eq(count_events(agent, "payment"), 10, "%s", agent->errlog);
    cr_assert_eq(count_events(agent, "payment_rejected"), 0, "%s", agent->errlog);
    cr_assert_geq(count_in(agent->errlog, "\"why\":\"unclaimed bound\""), 2, "claims at the bound: %s",
                  agent->errlog);
}

/* A payment worth more than --max-unclaimed (10 sats, bound 5): the
 * verifier claims first, and that claim takes every INCOMING row - the
 * payment's own, committed early by the store thread (the keyset is known:
 * a 3-sat payment came first) - and swaps it into the agent's wallet.
 * Claiming again cannot make 10 sats fit under 5, so the payment used to
 * be refused after its rounds although the agent had redeemed it: the
 * customer's token gone, no chunk for it. A payment the agent redeemed is
 * credited. */
Test(payments, a_payment_over_the_bound_that_the_claim_redeemed_is_credited)
{
    char url[256], addr[128];
    lp_start_mint(dir, 0, url, sizeof url);
    lp *agent = lp_start_agent(dir, url, addr, sizeof addr, "--chunks=40", "--max-unclaimed=5");
    char *small = wallet_token(url, "s.db", 3);
    char *big = wallet_token(url, "b.db", 10);
    struct raw *r = r_connect(addr);
    const char *ids[2] = {"warm", "over"};
    const char *toks[2] = {small, big};
    char *acked[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        acked[i] = r_request_and_pay(r, ids[i], i, toks[i]);
        if (!acked[i])
            break;
    }
    lp_signal(agent, SIGTERM);
    cr_assert_eq(lp_wait_exit(agent, 15000), 0);
    for (int i = 0; i < 2; i++) {
        cr_assert_not_null(acked[i], "%s is credited: %s\nagent: %s", ids[i], r->in, agent->errlog);
        free(acked[i]);
    }
    r_free(r);
    cr_assert_eq(count_events(agent, "payment"), 2, "%s", agent->errlog);
    cr_assert_eq(count_events(agent, "payment_rejected"), 0, "%s", agent->errlog);
    cr_assert_geq(count_in(agent->errlog, "\"why\":\"unclaimed bound\""), 1, "claimed at the bound: %s",
                  agent->errlog);
    free(small);
    free(big);
}

/* The mint down when a payment reaches the bound (3 + 10 sats held, bound
 * 12): the verifier's claim takes every INCOMING row - the payment's own
 * too, committed early - into a swap the mint never answers, an operation
 * left open for recovery with those rows PENDING. The payment used to be
 * refused ("over the unclaimed limit") while its rows stayed in that
 * operation, which the next recovery completes: the agent would claim
 * the customer's 10 sats for nothing. A payment whose rows are inputs of
 * our own open claim is held as durably as any early-committed one: it is
 * credited. */
Test(payments, a_payment_at_the_bound_with_the_mint_down_is_not_taken_for_nothing)
{
    char url[256], addr[128];
    lp *mint = lp_start_mint(dir, 0, url, sizeof url);
    lp *agent = lp_start_agent(dir, url, addr, sizeof addr, "--chunks=40", "--max-unclaimed=12");
    char *small = wallet_token(url, "s.db", 3);
    char *big = wallet_token(url, "b.db", 10);
    struct raw *r = r_connect(addr);
    const char *ids[2] = {"warm", "down"};
    const char *toks[2] = {small, big};
    char *acked[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        if (i == 1) { /* the keysets are known (the warm payment): the mint goes away */
            lp_signal(mint, SIGTERM);
            cr_assert_neq(lp_wait_exit(mint, 10000), -1, "the mint stops");
        }
        acked[i] = r_request_and_pay(r, ids[i], i, toks[i]);
        if (!acked[i])
            break;
    }
    lp_signal(agent, SIGTERM);
    cr_assert_eq(lp_wait_exit(agent, 15000), 0);
    for (int i = 0; i < 2; i++) {
        cr_assert_not_null(acked[i], "%s is credited: %s\nagent: %s", ids[i], r->in, agent->errlog);
        free(acked[i]);
    }
    r_free(r);
    cr_assert_eq(count_events(agent, "payment_rejected"), 0, "%s", agent->errlog);
    cr_assert(strstr(agent->errlog, "\"event\":\"claim_deferred\""), "the claim at the bound found no mint: %s",
              agent->errlog);
    free(small);
    free(big);
}

static bool proxy_holding(hold_proxy *p)
{
    bool h;
    int cs, sw;
    hold_proxy_state(p, &h, &cs, &sw);
    return h;
}

static int proxy_checkstates(hold_proxy *p)
{
    bool h;
    int cs, sw;
    hold_proxy_state(p, &h, &cs, &sw);
    return cs;
}

/* Two claims at once, on the agent's two wallet connections: the loop's
 * (a job ended: 3 sats) has its swap in flight (held by a proxy in front
 * of the mint) when a payment reaches the bound (3 + 10 > 12) and the
 * verifier claims too. The verifier's claim began by "recovering" open
 * operations - the loop's, in flight - asked the mint (inputs unspent: the
 * swap had not arrived), reverted it, and the loop's swap then went
 * through with no open operation to store its proofs in: the 3 sats it
 * claimed were lost (its inputs REJECTED as spent by the next swap). The
 * proxy makes that order certain (checkstate, the held swap, the
 * verifier's swap). Claims run one at a time: the agent ends with all 13
 * sats. */
Test(payments, a_claim_never_reverts_another_claim_in_flight)
{
    static hold_proxy hp;
    char murl[256], url[256], addr[128];
    lp_start_mint(dir, 0, murl, sizeof murl);
    const char *colon = strrchr(murl, ':');
    cr_assert_not_null(colon);
    cr_assert(hold_proxy_start(&hp, (uint16_t)atoi(colon + 1), url, sizeof url));
    lp *agent = lp_start_agent(dir, url, addr, sizeof addr, "--chunks=40", "--max-unclaimed=12");
    char *small = wallet_token(url, "s.db", 3);
    char *big = wallet_token(url, "b.db", 10);
    struct raw *r = r_connect(addr);
    r_send(r, "{\"type\":\"request\",\"id\":\"warm\",\"kind\":5100,\"input\":\"job\",\"budget\":100}");
    free(r_wait(r, "offer", "warm", NULL, 10000));
    r_send(r, "{\"type\":\"payment\",\"id\":\"warm\",\"token\":\"%s\"}", small);
    char *ack = r_wait(r, "payment_ack", "warm", NULL, 10000);
    cr_assert_not_null(ack, "%s\nagent: %s", r->in, agent->errlog);
    free(ack);
    /* the job ends: the loop claims its 3 sats, the swap is held */
    hold_proxy_arm(&hp);
    r_send(r, "{\"type\":\"stop\",\"id\":\"warm\"}");
    for (uint64_t end = lp_now_ms() + 10000; !proxy_holding(&hp) && lp_now_ms() < end;)
        r_run(r, 20);
    cr_assert(proxy_holding(&hp), "the job-end claim's swap reaches the proxy: %s", agent->errlog);
    /* a payment at the bound: the verifier claims while that swap is in flight */
    r_send(r, "{\"type\":\"request\",\"id\":\"bound\",\"kind\":5100,\"input\":\"job\",\"budget\":100}");
    free(r_wait(r, "offer", "bound", NULL, 10000));
    r_send(r, "{\"type\":\"payment\",\"id\":\"bound\",\"token\":\"%s\"}", big);
    /* a verifier that recovers the loop's operation asks the mint first
     * (the proxy then lets the held swap go); one that waits for the
     * loop's claim asks nothing: the swap is let go after 2 s */
    for (uint64_t end = lp_now_ms() + 2000; proxy_checkstates(&hp) == 0 && lp_now_ms() < end;)
        r_run(r, 20);
    hold_proxy_release(&hp);
    ack = r_wait(r, "payment_ack", "bound", NULL, 15000);
    r_free(r);
    lp_signal(agent, SIGTERM);
    cr_assert_eq(lp_wait_exit(agent, 15000), 0);
    hold_proxy_stop(&hp);
    cr_assert_not_null(ack, "the payment at the bound is credited: %s", agent->errlog);
    free(ack);
    char adb[300], err[256];
    snprintf(adb, sizeof adb, "%s/agent.db", dir);
    dvm_wallet_store *st = NULL;
    cr_assert_eq(dvm_wallet_store_open(adb, &st, err, sizeof err), DVM_OK, "%s", err);
    uint64_t unspent = 0, rejected = 0;
    cr_assert_eq(dvm_wallet_store_sum(st, url, DVM_WPROOF_UNSPENT, &unspent), DVM_OK);
    cr_assert_eq(dvm_wallet_store_sum(st, url, DVM_WPROOF_REJECTED, &rejected), DVM_OK);
    dvm_wallet_store_close(st);
    cr_assert_eq(unspent, 13, "every claimed sat kept (%llu unspent, %llu rejected): %s",
                 (unsigned long long)unspent, (unsigned long long)rejected, agent->errlog);
    free(small);
    free(big);
}
