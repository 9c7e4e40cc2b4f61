/* dvm demo: a mint, an agent and a customer on 127.0.0.1, one paid job
 * streamed to the terminal, then a summary; everything it started is
 * stopped by pid. */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "dvm/cli.h"
#include "live/rmtree.h"

#define DEMO_TIMEOUT_MS 60000
#define STOP_TIMEOUT_MS 15000

enum { P_MINT, P_AGENT, P_CUST, NPROC };
static const char *const pname[NPROC] = {"mint", "agent", "customer"};

struct proc {
    uv_process_t h;
    uv_pipe_t out; /* the stream we parse: mint stdout, agent/customer stderr */
    bool spawned, exited, out_open;
    int64_t status;
    int sig;
    char line[65536];
    size_t line_len;
    struct demo *d;
    int which;
};

struct demo {
    uv_loop_t loop;
    struct proc p[NPROC];
    uv_timer_t deadline;
    uv_signal_t sigint;
    char exe[4096];
    char dir[64];
    char mint_url[128];
    char agent_addr[128];
    bool json, failed, stopping;
    const char *why;
    uint64_t chunks, sats_paid, sats_claimed, total_sats, ms;
    bool cust_done, cust_eof;
    int64_t cust_status_code;
    char cust_status[64];
    uint64_t t0;
};

static void start_agent(struct demo *d);
static void check_progress(struct demo *d);
static void start_customer(struct demo *d);
static void stop_all(struct demo *d, const char *why);

static void p_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    (void)h;
    (void)sz;
    static char buf[65536];
    b->base = buf;
    b->len = sizeof buf;
}

static uint64_t jint(json_t *o, const char *k) { return (uint64_t)json_integer_value(json_object_get(o, k)); }

static void on_line(struct proc *p, const char *s, size_t n)
{
    struct demo *d = p->d;
    if (p->which == P_MINT) {
        const char *pre = "listening on ";
        if (!d->mint_url[0] && n > strlen(pre) && strncmp(s, pre, strlen(pre)) == 0) {
            snprintf(d->mint_url, sizeof d->mint_url, "%.*s", (int)(n - strlen(pre)), s + strlen(pre));
            if (!d->json)
                fprintf(stderr, "demo: mint     %s (temporary db in %s)\n", d->mint_url, d->dir);
            start_agent(d);
        }
        return;
    }
    json_t *o = json_loadb(s, n, 0, NULL);
    if (!json_is_object(o)) { /* not a log line: pass it on */
        fprintf(stderr, "%.*s\n", (int)n, s);
        json_decref(o);
        return;
    }
    const char *ev = json_string_value(json_object_get(o, "event"));
    ev = ev ? ev : "";
    if (p->which == P_AGENT) {
        if (!strcmp(ev, "listening") && !d->agent_addr[0]) {
            const char *a = json_string_value(json_object_get(o, "address"));
            snprintf(d->agent_addr, sizeof d->agent_addr, "%s", a ? a : "");
            if (!d->json)
                fprintf(stderr, "demo: agent    %s pubkey %.16s... (builtin processor)\n", d->agent_addr,
                        json_string_value(json_object_get(o, "pubkey")));
            start_customer(d);
        } else if (!strcmp(ev, "claimed")) {
            d->sats_claimed += jint(o, "sats");
            if (!d->json)
                fprintf(stderr, "\ndemo: agent claimed %llu sats at the mint\n", (unsigned long long)jint(o, "sats"));
            check_progress(d);
        } else if (!strcmp(ev, "startup_failed")) {
            fprintf(stderr, "demo: agent failed: %s\n", json_string_value(json_object_get(o, "reason")));
            stop_all(d, "agent failed to start");
        }
    } else if (p->which == P_CUST) {
        if (!strcmp(ev, "done")) {
            d->chunks = jint(o, "chunks");
            d->sats_paid = jint(o, "sats_paid");
            d->total_sats = jint(o, "total_sats");
            d->ms = jint(o, "ms");
            const char *st = json_string_value(json_object_get(o, "status"));
            snprintf(d->cust_status, sizeof d->cust_status, "%s", st ? st : "?");
        } else if (!d->json && (!strcmp(ev, "offer") || !strcmp(ev, "minted"))) {
            if (!strcmp(ev, "minted"))
                fprintf(stderr, "demo: customer minted %llu sats\n", (unsigned long long)jint(o, "sats"));
            else
                fprintf(stderr, "demo: offer    %llu sat/chunk, %llu chunks per payment\n\n",
                        (unsigned long long)jint(o, "sats_per_chunk"),
                        (unsigned long long)jint(o, "chunks_per_payment"));
        }
    }
    json_decref(o);
}

static void p_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct proc *p = st->data;
    if (n < 0) {
        uv_read_stop(st);
        if (p->which == P_CUST) {
            p->d->cust_eof = true;
            check_progress(p->d);
        }
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (b->base[i] == '\n') {
            on_line(p, p->line, p->line_len);
            p->line_len = 0;
        } else if (p->line_len < sizeof p->line)
            p->line[p->line_len++] = b->base[i];
    }
}

static void p_exit(uv_process_t *h, int64_t status, int sig)
{
    struct proc *p = h->data;
    struct demo *d = p->d;
    p->exited = true;
    p->status = status;
    p->sig = sig;
    uv_close((uv_handle_t *)h, NULL);
    if (p->which == P_CUST) {
        d->cust_done = true;
        d->cust_status_code = status;
        check_progress(d);
    } else if (!d->stopping) {
        fprintf(stderr, "demo: %s exited early (status %lld, signal %d)\n", pname[p->which], (long long)status, sig);
        stop_all(d, "a process exited early");
    }
}

/* The customer has exited and its log is read: stop once the agent has
 * claimed what it was paid (or at once on failure). */
static void check_progress(struct demo *d)
{
    if (!d->cust_done || !d->cust_eof || d->stopping)
        return;
    if (d->cust_status_code != 0) {
        fprintf(stderr, "demo: customer exited with status %lld\n", (long long)d->cust_status_code);
        stop_all(d, "customer failed");
    } else if (d->sats_paid > 0 && d->sats_claimed >= d->sats_paid)
        stop_all(d, NULL);
    /* else: wait for the agent's claim (bounded by the deadline) */
}

static int spawn(struct demo *d, int which, char **args, bool parse_stdout)
{
    struct proc *p = &d->p[which];
    p->d = d;
    p->which = which;
    uv_pipe_init(&d->loop, &p->out, 0);
    p->out.data = p;
    p->out_open = true;
    p->h.data = p;
    uv_stdio_container_t io[3];
    io[0].flags = UV_IGNORE;
    if (parse_stdout) {
        io[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
        io[1].data.stream = (uv_stream_t *)&p->out;
        io[2].flags = UV_IGNORE; /* the mint's request log would clutter the demo */
    } else {
        io[1].flags = UV_INHERIT_FD; /* the customer's text goes straight to our stdout */
        io[1].data.fd = 1;
        io[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
        io[2].data.stream = (uv_stream_t *)&p->out;
    }
    uv_process_options_t o;
    memset(&o, 0, sizeof o);
    o.file = d->exe;
    o.args = args;
    o.exit_cb = p_exit;
    o.stdio = io;
    o.stdio_count = 3;
    int rc = uv_spawn(&d->loop, &p->h, &o);
    if (rc != 0) {
        fprintf(stderr, "demo: cannot start %s: %s\n", pname[which], uv_strerror(rc));
        uv_close((uv_handle_t *)&p->h, NULL);
        p->exited = true;
        return -1;
    }
    p->spawned = true;
    uv_read_start((uv_stream_t *)&p->out, p_alloc, p_read);
    return 0;
}

static void start_agent(struct demo *d)
{
    char mint[200], wallet[128], ident[128];
    snprintf(mint, sizeof mint, "--mint=%s", d->mint_url);
    snprintf(wallet, sizeof wallet, "--wallet=%s/agent.db", d->dir);
    snprintf(ident, sizeof ident, "--identity=%s/agent.key", d->dir);
    char *args[] = {d->exe,     "agent",       "--listen=127.0.0.1:0", mint, wallet, ident, "--chunks=60",
                    "--rate=50", "--log-json", NULL};
    if (spawn(d, P_AGENT, args, false) != 0)
        stop_all(d, "cannot start the agent");
}

static void start_customer(struct demo *d)
{
    char peer[200], mint[200], wallet[128];
    snprintf(peer, sizeof peer, "--peer=%s", d->agent_addr);
    snprintf(mint, sizeof mint, "--mint=%s", d->mint_url);
    snprintf(wallet, sizeof wallet, "--wallet=%s/customer.db", d->dir);
    d->t0 = uv_now(&d->loop);
    char *args[] = {d->exe, "customer", peer, mint, wallet, "--budget=100", "--log-json",
                    "Tell me about streaming payments", NULL};
    if (spawn(d, P_CUST, args, false) != 0)
        stop_all(d, "cannot start the customer");
}

static void deadline_cb(uv_timer_t *t)
{
    struct demo *d = t->data;
    if (!d->stopping)
        stop_all(d, "timed out");
    else /* processes did not stop on SIGTERM */
        for (int i = NPROC - 1; i >= 0; i--)
            if (d->p[i].spawned && !d->p[i].exited)
                uv_process_kill(&d->p[i].h, SIGKILL);
}

static void close_pipes_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Stop everything we started, by pid: customer, agent (it claims on
 * SIGTERM), then the mint. */
static void stop_all(struct demo *d, const char *why)
{
    if (d->stopping)
        return;
    d->stopping = true;
    if (why) {
        d->failed = true;
        d->why = why;
    }
    for (int i = NPROC - 1; i >= 0; i--)
        if (d->p[i].spawned && !d->p[i].exited)
            uv_process_kill(&d->p[i].h, SIGTERM);
    uv_timer_start(&d->deadline, deadline_cb, STOP_TIMEOUT_MS, 0);
}

static void on_sigint(uv_signal_t *s, int signum)
{
    (void)signum;
    stop_all(s->data, "interrupted");
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: dvm demo [--json]\n"
            "\n"
            "On 127.0.0.1 only: start a mint (temporary database), an agent (builtin\n"
            "processor) and a customer with a budget, stream one paid job to the\n"
            "terminal, then print a summary: chunks, sats paid, sats claimed by the\n"
            "provider at the mint, time. Stops everything it started; exit 0 when\n"
            "the job streamed and the provider claimed its pay.\n"
            "\n"
            "  --json   the last line on stdout is\n"
            "           {\"chunks\",\"sats_paid\",\"sats_claimed\",\"ms\"}\n");
}

int dvm_cmd_demo(int argc, char **argv)
{
    struct demo *d = calloc(1, sizeof *d);
    if (!d)
        return 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            d->json = true;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            free(d);
            return 0;
        } else {
            fprintf(stderr, "dvm demo: unexpected argument '%s'\n", argv[i]);
            free(d);
            return 2;
        }
    }
    size_t sz = sizeof d->exe;
    if (uv_exepath(d->exe, &sz) != 0) {
        fprintf(stderr, "dvm demo: cannot find my own executable\n");
        free(d);
        return 1;
    }
    snprintf(d->dir, sizeof d->dir, "/tmp/dvm-demo-XXXXXX");
    if (!mkdtemp(d->dir)) {
        fprintf(stderr, "dvm demo: cannot create a temporary directory\n");
        free(d);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&d->loop);
    uv_timer_init(&d->loop, &d->deadline);
    d->deadline.data = d;
    uv_timer_start(&d->deadline, deadline_cb, DEMO_TIMEOUT_MS, 0);
    uv_signal_init(&d->loop, &d->sigint);
    d->sigint.data = d;
    uv_signal_start(&d->sigint, on_sigint, SIGINT);
    uint64_t t_start = uv_hrtime();

    char db[128];
    snprintf(db, sizeof db, "--db=%s/mint.db", d->dir);
    char *margs[] = {d->exe, "mint", "--listen=127.0.0.1:0", db, NULL};
    if (spawn(d, P_MINT, margs, true) != 0)
        stop_all(d, "cannot start the mint");

    /* run until every process we started has exited */
    while (uv_run(&d->loop, UV_RUN_ONCE)) {
        bool alive = false;
        for (int i = 0; i < NPROC; i++)
            alive |= d->p[i].spawned && !d->p[i].exited;
        if (!alive && d->stopping)
            break;
    }
    uv_timer_stop(&d->deadline);
    uv_signal_stop(&d->sigint);
    uv_walk(&d->loop, close_pipes_walk, NULL);
    uv_run(&d->loop, UV_RUN_DEFAULT);
    uv_loop_close(&d->loop);

    /* remove the temporary directory (depth first, links not followed; no shell) */
    if (dvm_remove_tree(d->dir) != 0)
        fprintf(stderr, "demo: could not remove %s\n", d->dir);

    uint64_t total_ms = (uv_hrtime() - t_start) / 1000000;
    bool ok = !d->failed && d->chunks > 0 && d->sats_claimed > 0;
    double rate = d->ms ? (double)d->chunks * 1000.0 / (double)d->ms : 0;
    if (!d->json) {
        printf("\n");
        printf("demo: %llu chunks streamed in %llu ms (%.1f chunks/s), %llu sats paid, %llu sats claimed by the "
               "provider (job status %s; %llu ms in all)\n",
               (unsigned long long)d->chunks, (unsigned long long)d->ms, rate, (unsigned long long)d->sats_paid,
               (unsigned long long)d->sats_claimed, d->cust_status[0] ? d->cust_status : "none",
               (unsigned long long)total_ms);
    } else
        printf("\n{\"chunks\":%llu,\"sats_paid\":%llu,\"sats_claimed\":%llu,\"ms\":%llu}\n",
               (unsigned long long)d->chunks, (unsigned long long)d->sats_paid, (unsigned long long)d->sats_claimed,
               (unsigned long long)d->ms);
    if (!ok)
        fprintf(stderr, "demo: FAILED: %s\n", d->why ? d->why : "no chunks streamed or nothing claimed");
    free(d);
    return ok ? 0 : 1;
}
