/* Interop: our SecretStream (tools/live/conn.h over core/noise) against the
 * JavaScript @hyperswarm/secret-stream, over plain TCP on 127.0.0.1.
 *
 * This binary is the C peer; the JS peer is `node ci/interop/secretstream_peer.mjs`
 * spawned per test (killed by pid on every path: the suite's fini, and the
 * script exits when its stdin closes). Every wait is bounded. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "uv_wait.h"

#include "live/conn.h"
#include "live/identity.h"
#include "noise/secretstream.h"

#define PEER_SCRIPT "ci/interop/secretstream_peer.mjs"
#define NODE_MODULE "ci/interop/node_modules/@hyperswarm/secret-stream/package.json"
#define WAIT_MS 90000

/* ---- spawned JS peers ------------------------------------------------ */

#define MAX_PEERS 4
static pid_t g_pids[MAX_PEERS];

static void kill_all(void)
{
    for (int i = 0; i < MAX_PEERS; i++)
        if (g_pids[i] > 0) {
            kill(g_pids[i], SIGKILL);
            g_pids[i] = 0;
        }
}

static void suite_init(void)
{
    cr_assert(sodium_init() >= 0);
    struct stat st;
    cr_assert(stat(NODE_MODULE, &st) == 0,
              "%s is missing: run ci/setup (or `cd ci/interop && npm ci`) before the interop tests", NODE_MODULE);
    signal(SIGPIPE, SIG_IGN);
}

TestSuite(interop_secretstream, .init = suite_init, .fini = kill_all, .timeout = 240);

typedef struct jspeer {
    uv_process_t proc;
    uv_pipe_t in, out;
    bool exited;
    int64_t exit_status;
    char line[16384];
    size_t linelen;
    json_t *events; /* array of every event object */
    int slot;
} jspeer;

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    jspeer *j = p->data;
    (void)sig;
    j->exited = true;
    j->exit_status = status;
    if (j->slot >= 0)
        g_pids[j->slot] = 0;
}

static void js_alloc(uv_handle_t *h, size_t sug, uv_buf_t *b)
{
    (void)h;
    static char buf[65536];
    (void)sug;
    *b = uv_buf_init(buf, sizeof buf);
}

static void js_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    jspeer *j = s->data;
    if (n < 0) {
        uv_read_stop(s);
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        char ch = b->base[i];
        if (ch == '\n') {
            j->line[j->linelen] = '\0';
            json_t *ev = json_loads(j->line, 0, NULL);
            if (ev)
                json_array_append_new(j->events, ev);
            j->linelen = 0;
        } else if (j->linelen + 1 < sizeof j->line) {
            j->line[j->linelen++] = ch;
        }
    }
}

static void js_spawn(uv_loop_t *loop, jspeer *j, const char *role, const char *port, const char *mode,
                     const char *seed_hex)
{
    memset(j, 0, sizeof *j);
    j->events = json_array();
    j->slot = -1;
    uv_pipe_init(loop, &j->in, 0);
    uv_pipe_init(loop, &j->out, 0);
    j->in.data = j->out.data = j->proc.data = j;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&j->in},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&j->out},
        {.flags = UV_INHERIT_FD, .data.fd = 2},
    };
    char *args[] = {"node", PEER_SCRIPT, (char *)role, "127.0.0.1", (char *)port, (char *)mode, (char *)seed_hex, NULL};
    uv_process_options_t o = {
        .exit_cb = on_exit_cb, .file = "node", .args = args, .stdio_count = 3, .stdio = stdio};
    int rc = uv_spawn(loop, &j->proc, &o);
    cr_assert_eq(rc, 0, "cannot start node: %s", uv_strerror(rc));
    for (int i = 0; i < MAX_PEERS; i++)
        if (g_pids[i] == 0) {
            g_pids[i] = j->proc.pid;
            j->slot = i;
            break;
        }
    uv_read_start((uv_stream_t *)&j->out, js_alloc, js_read);
}

static json_t *js_event(jspeer *j, const char *name)
{
    size_t i;
    json_t *ev;
    json_array_foreach(j->events, i, ev)
    {
        const char *e = json_string_value(json_object_get(ev, "event"));
        if (e && strcmp(e, name) == 0)
            return ev;
    }
    return NULL;
}

static void js_close_handles(jspeer *j)
{
    if (!j->exited && j->proc.pid > 0)
        uv_process_kill(&j->proc, SIGKILL);
    if (!uv_is_closing((uv_handle_t *)&j->in))
        uv_close((uv_handle_t *)&j->in, NULL);
    if (!uv_is_closing((uv_handle_t *)&j->out))
        uv_close((uv_handle_t *)&j->out, NULL);
}

/* ---- bounded waiting --------------------------------------------------- */

/* Close every remaining handle and drain the loop (bounded). */
static void teardown_loop(uv_loop_t *loop)
{
    uv_walk(loop, close_walk, NULL);
    for (int i = 0; i < 1000 && uv_run(loop, UV_RUN_NOWAIT); i++)
        ;
    uv_loop_close(loop);
}

/* ---- the message exchange ------------------------------------------------- */

#define N_FIXED 4
static size_t msg_len(size_t i, size_t n_small, size_t big)
{
    static const size_t fixed[N_FIXED] = {0, 1, 1000, 0};
    (void)n_small;
    if (i < N_FIXED)
        return i == 3 ? big : fixed[i];
    return 1 + (i - N_FIXED) % 32;
}

static uint8_t msg_byte(size_t i, size_t k) { return (uint8_t)(i * 131 + k * 7 + (k >> 10)); }

typedef struct exchange {
    dvm_conn *conn;
    size_t total, big; /* messages to send; size of the big one */
    size_t sent, received;
    uint8_t *scratch;
    unsigned drains;
    size_t max_queued;
    bool opened, closed, failed;
    dvm_err close_err;
    char why[256];
    uint8_t remote_pk[32];
    uint8_t hash[64];
} exchange;

static void ex_fail(exchange *x, const char *why)
{
    if (!x->failed) {
        x->failed = true;
        snprintf(x->why, sizeof x->why, "%s", why);
    }
}

static void ex_pump(exchange *x)
{
    while (x->sent < x->total && dvm_conn_writable(x->conn)) {
        size_t len = msg_len(x->sent, x->total - N_FIXED, x->big);
        for (size_t k = 0; k < len; k++)
            x->scratch[k] = msg_byte(x->sent, k);
        dvm_err e = dvm_conn_send(x->conn, x->scratch, len);
        if (e) {
            ex_fail(x, dvm_strerror(e));
            return;
        }
        x->sent++;
        size_t q = dvm_conn_queued_bytes(x->conn);
        if (q > x->max_queued)
            x->max_queued = q;
    }
}

static void ex_open(dvm_conn *c, void *ud)
{
    exchange *x = ud;
    x->conn = c;
    x->opened = true;
    memcpy(x->remote_pk, dvm_conn_remote_public_key(c), 32);
    memcpy(x->hash, dvm_conn_handshake_hash(c), 64);
    ex_pump(x);
}

static void ex_message(dvm_conn *c, const uint8_t *m, size_t len, void *ud)
{
    exchange *x = ud;
    size_t i = x->received;
    if (i >= x->total) {
        ex_fail(x, "more messages than sent");
        return;
    }
    size_t want = msg_len(i, x->total - N_FIXED, x->big);
    if (len != want) {
        char why[128];
        snprintf(why, sizeof why, "message %zu: %zu bytes, want %zu", i, len, want);
        ex_fail(x, why);
        dvm_conn_close(c);
        return;
    }
    for (size_t k = 0; k < len; k++)
        if (m[k] != msg_byte(i, k)) {
            char why[128];
            snprintf(why, sizeof why, "message %zu byte %zu differs", i, k);
            ex_fail(x, why);
            dvm_conn_close(c);
            return;
        }
    x->received++;
    if (x->received == x->total)
        dvm_conn_close(c);
}

static void ex_drain(dvm_conn *c, void *ud)
{
    exchange *x = ud;
    (void)c;
    x->drains++;
    ex_pump(x);
}

static void ex_close(dvm_conn *c, dvm_err err, const char *reason, void *ud)
{
    exchange *x = ud;
    (void)c;
    x->closed = true;
    x->close_err = err;
    x->conn = NULL;
    if (err)
        ex_fail(x, reason);
}

static const dvm_conn_callbacks EX_CBS = {ex_open, ex_message, ex_drain, ex_close};

static void ex_init(exchange *x, size_t n_small, size_t big)
{
    memset(x, 0, sizeof *x);
    x->total = N_FIXED + n_small;
    x->big = big;
    x->scratch = malloc(big > 64 ? big : 64);
    cr_assert(x->scratch);
}

static bool ex_done(void *p)
{
    exchange *x = p;
    return x->closed;
}

/* JS side's "open" event agrees with ours. */
static void check_js_open(jspeer *j, const dvm_noise_keypair *ours, const exchange *x)
{
    json_t *ev = js_event(j, "open");
    cr_assert(ev, "the JS peer reported no handshake");
    char ourhex[65], theirs[65], hash[129];
    dvm_identity_hex(ours->public_key, ourhex);
    dvm_identity_hex(x->remote_pk, theirs);
    sodium_bin2hex(hash, sizeof hash, x->hash, 64);
    cr_assert_str_eq(json_string_value(json_object_get(ev, "remotePublicKey")), ourhex, "JS saw another key");
    cr_assert_str_eq(json_string_value(json_object_get(ev, "publicKey")), theirs, "we saw another key");
    cr_assert_str_eq(json_string_value(json_object_get(ev, "handshakeHash")), hash);
}

/* finished: the wait for the exchange returned before its deadline. */
static void check_exchange(exchange *x, bool finished)
{
    cr_assert(finished, "timed out: sent %zu, received %zu of %zu", x->sent, x->received, x->total);
    cr_assert_not(x->failed, "exchange failed: %s", x->why);
    cr_assert(x->opened);
    cr_assert_eq(x->received, x->total, "received %zu of %zu", x->received, x->total);
    cr_assert_eq(x->close_err, DVM_OK);
}

static bool js_closed(void *p) { return js_event(p, "closed") != NULL && ((jspeer *)p)->exited; }
static bool js_listening(void *p) { return js_event(p, "listening") != NULL || ((jspeer *)p)->exited; }

#define BIG DVM_SECRETSTREAM_MAX_MESSAGE /* a 16 MiB - 1 frame: the largest message */
#define SMALL 100000

static void seed_keypair(uint8_t byte, dvm_noise_keypair *kp, char seed_hex[65])
{
    uint8_t seed[32];
    memset(seed, byte, 32);
    dvm_noise_keypair_from_seed(kp, seed);
    sodium_bin2hex(seed_hex, 65, seed, 32);
}

Test(interop_secretstream, c_initiator_js_responder)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    dvm_noise_keypair me;
    char seedhex[65];
    seed_keypair(0x01, &me, seedhex);

    jspeer js;
    js_spawn(&loop, &js, "responder", "0", "echo", NULL);
    cr_assert(run_until(&loop, js_listening, &js, WAIT_MS), "JS responder did not start listening");
    json_t *l = js_event(&js, "listening");
    cr_assert(l, "JS responder exited before listening");
    uint16_t port = (uint16_t)json_integer_value(json_object_get(l, "port"));
    cr_assert_gt(port, 0);

    /* Dial pinned to the key the JS peer printed. */
    dvm_conn_options o;
    dvm_conn_options_default(&o);
    o.pin_remote = true;
    cr_assert(dvm_identity_parse_hex(json_string_value(json_object_get(l, "publicKey")), o.remote_public_key));
    exchange x;
    ex_init(&x, SMALL, BIG);
    dvm_err e;
    cr_assert_not_null(dvm_dial(&loop, "127.0.0.1", port, &me, &o, &EX_CBS, &x, &e));
    check_exchange(&x, run_until(&loop, ex_done, &x, WAIT_MS));
    cr_assert_arr_eq(x.remote_pk, o.remote_public_key, 32);
    cr_assert_geq(x.drains, 1, "the 16 MiB message must have engaged write backpressure");
    cr_assert_leq(x.max_queued, 4 * (1u << 20) + DVM_SECRETSTREAM_FRAME_SIZE(BIG));
    cr_assert(run_until(&loop, js_closed, &js, WAIT_MS), "JS peer did not close");
    check_js_open(&js, &me, &x);
    cr_assert_eq(json_integer_value(json_object_get(js_event(&js, "closed"), "messages")), (json_int_t)x.total);
    js_close_handles(&js);
    json_decref(js.events);
    free(x.scratch);
    teardown_loop(&loop);
}

/* ---- C responder ----------------------------------------------------------- */

typedef struct server {
    exchange *ex[2];
    uint8_t pk[2][32]; /* which exchange serves which remote key */
    unsigned accepted;
} server;

static void srv_open(dvm_conn *c, void *ud)
{
    server *s = ud;
    for (int i = 0; i < 2; i++)
        if (s->ex[i] && memcmp(dvm_conn_remote_public_key(c), s->pk[i], 32) == 0) {
            dvm_conn_set_callbacks(c, &EX_CBS, s->ex[i]);
            ex_open(c, s->ex[i]);
            return;
        }
    dvm_conn_abort(c, DVM_ERR_CRYPTO, "unexpected peer");
}

static void srv_close(dvm_conn *c, dvm_err err, const char *reason, void *ud)
{
    /* closed before its handshake completed: attribute it by elimination */
    server *s = ud;
    (void)c;
    (void)err;
    (void)reason;
    (void)s;
}

static const dvm_conn_callbacks SRV_CBS = {srv_open, NULL, NULL, srv_close};

static void srv_accept(dvm_listener *l, dvm_conn *c, void *ud)
{
    server *s = ud;
    (void)l;
    s->accepted++;
    dvm_conn_set_callbacks(c, &SRV_CBS, s);
}

Test(interop_secretstream, js_initiator_c_responder)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    dvm_noise_keypair me, them;
    char myseed[65], theirseed[65];
    seed_keypair(0x02, &me, myseed);
    seed_keypair(0x03, &them, theirseed);

    exchange x;
    ex_init(&x, SMALL, BIG);
    server s = {.ex = {&x, NULL}};
    memcpy(s.pk[0], them.public_key, 32);
    dvm_err e;
    char why[256];
    dvm_listener *l = dvm_listen(&loop, "127.0.0.1", 0, &me, NULL, srv_accept, &s, &e, why, sizeof why);
    cr_assert_not_null(l, "%s", why);
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)dvm_listener_port(l));

    jspeer js;
    js_spawn(&loop, &js, "initiator", port, "echo", theirseed);
    check_exchange(&x, run_until(&loop, ex_done, &x, WAIT_MS));
    cr_assert_arr_eq(x.remote_pk, them.public_key, 32);
    cr_assert_eq(s.accepted, 1);
    cr_assert(run_until(&loop, js_closed, &js, WAIT_MS), "JS peer did not close");
    check_js_open(&js, &me, &x);
    cr_assert_eq(json_integer_value(json_object_get(js_event(&js, "closed"), "messages")), (json_int_t)x.total);
    dvm_listener_close(l);
    js_close_handles(&js);
    json_decref(js.events);
    free(x.scratch);
    teardown_loop(&loop);
}

/* ---- garbage after the handshake ------------------------------------------- */

static bool both_done(void *p)
{
    exchange **x = p;
    return x[0]->closed && x[1]->closed;
}

Test(interop_secretstream, garbage_peer_is_dropped_without_harming_another)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    dvm_noise_keypair me, good, bad;
    char myseed[65], goodseed[65], badseed[65];
    seed_keypair(0x04, &me, myseed);
    seed_keypair(0x05, &good, goodseed);
    seed_keypair(0x06, &bad, badseed);

    exchange xg, xb;
    ex_init(&xg, 20000, 1u << 20);
    ex_init(&xb, 20000, 1u << 20);
    server s = {.ex = {&xg, &xb}};
    memcpy(s.pk[0], good.public_key, 32);
    memcpy(s.pk[1], bad.public_key, 32);
    dvm_err e;
    char why[256];
    dvm_listener *l = dvm_listen(&loop, "127.0.0.1", 0, &me, NULL, srv_accept, &s, &e, why, sizeof why);
    cr_assert_not_null(l, "%s", why);
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)dvm_listener_port(l));

    jspeer jg, jb;
    js_spawn(&loop, &jg, "initiator", port, "echo", goodseed);
    js_spawn(&loop, &jb, "initiator", port, "garbage", badseed);
    exchange *both[2] = {&xg, &xb};
    cr_assert(run_until(&loop, both_done, both, WAIT_MS), "connections did not finish: good %zu/%zu, bad closed %d",
              xg.received, xg.total, xb.closed);
    /* The garbage connection ended with an authentication error... */
    cr_assert(xb.opened);
    cr_assert(xb.failed);
    cr_assert_eq(xb.close_err, DVM_ERR_CRYPTO, "bad peer closed with %d (%s)", xb.close_err, xb.why);
    cr_assert_lt(xb.received, xb.total);
    /* ...and the other one completed intact. */
    check_exchange(&xg, true); /* both_done held, asserted above */
    cr_assert_arr_eq(xg.remote_pk, good.public_key, 32);
    cr_assert(run_until(&loop, js_closed, &jb, WAIT_MS), "garbage JS peer was not disconnected");
    cr_assert(run_until(&loop, js_closed, &jg, WAIT_MS));
    cr_assert_eq(json_integer_value(json_object_get(js_event(&jg, "closed"), "messages")), (json_int_t)xg.total);
    dvm_listener_close(l);
    js_close_handles(&jg);
    js_close_handles(&jb);
    json_decref(jg.events);
    json_decref(jb.events);
    free(xg.scratch);
    free(xb.scratch);
    teardown_loop(&loop);
}

/* ---- pinning ---------------------------------------------------------------- */

Test(interop_secretstream, pinned_dial_rejects_another_key)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    dvm_noise_keypair me;
    char seedhex[65];
    seed_keypair(0x07, &me, seedhex);
    jspeer js;
    js_spawn(&loop, &js, "responder", "0", "echo", NULL);
    cr_assert(run_until(&loop, js_listening, &js, WAIT_MS));
    json_t *l = js_event(&js, "listening");
    cr_assert(l);
    uint16_t port = (uint16_t)json_integer_value(json_object_get(l, "port"));
    dvm_conn_options o;
    dvm_conn_options_default(&o);
    o.pin_remote = true;
    memset(o.remote_public_key, 0x42, 32); /* not the JS peer's key */
    exchange x;
    ex_init(&x, 0, 1);
    dvm_err e;
    cr_assert_not_null(dvm_dial(&loop, "127.0.0.1", port, &me, &o, &EX_CBS, &x, &e));
    cr_assert(run_until(&loop, ex_done, &x, WAIT_MS));
    cr_assert_not(x.opened, "a peer with another key must never be reported open");
    cr_assert_eq(x.close_err, DVM_ERR_CRYPTO);
    cr_assert(run_until(&loop, js_closed, &js, WAIT_MS));
    js_close_handles(&js);
    json_decref(js.events);
    free(x.scratch);
    teardown_loop(&loop);
}

/* ---- the `dvm pipe` CLI against the JS echo peer ----------------------------- */

typedef struct proc_io {
    uv_process_t proc;
    uv_pipe_t in, out;
    uv_write_t w;
    bool exited;
    int64_t status;
    char out_buf[4096];
    size_t out_len;
} proc_io;

static void pio_exit(uv_process_t *p, int64_t status, int sig)
{
    proc_io *io = p->data;
    (void)sig;
    io->exited = true;
    io->status = status;
    for (int i = 0; i < MAX_PEERS; i++)
        if (g_pids[i] == p->pid)
            g_pids[i] = 0;
}

static void pio_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    proc_io *io = s->data;
    if (n < 0) {
        uv_read_stop(s);
        return;
    }
    size_t room = sizeof io->out_buf - 1 - io->out_len;
    size_t take = (size_t)n < room ? (size_t)n : room;
    memcpy(io->out_buf + io->out_len, b->base, take);
    io->out_len += take;
    io->out_buf[io->out_len] = '\0';
}

static void pio_written(uv_write_t *w, int status)
{
    (void)status;
    uv_close((uv_handle_t *)w->handle, NULL); /* close stdin: end of input */
}

static bool pio_done(void *p) { return ((proc_io *)p)->exited; }

Test(interop_secretstream, dvm_pipe_talks_to_the_js_peer)
{
    const char *bin = getenv("DVM_BIN");
    cr_assert(bin, "DVM_BIN must point at build/bin");
    uv_loop_t loop;
    uv_loop_init(&loop);
    jspeer js;
    js_spawn(&loop, &js, "responder", "0", "echo", NULL);
    cr_assert(run_until(&loop, js_listening, &js, WAIT_MS));
    json_t *l = js_event(&js, "listening");
    cr_assert(l);
    char peer[200], dvm[512], idpath[] = "/tmp/dvm-pipe-id-XXXXXX";
    int fd = mkstemp(idpath);
    cr_assert_geq(fd, 0);
    close(fd);
    unlink(idpath); /* dvm creates it */
    snprintf(peer, sizeof peer, "127.0.0.1:%lld@%s", (long long)json_integer_value(json_object_get(l, "port")),
             json_string_value(json_object_get(l, "publicKey")));
    snprintf(dvm, sizeof dvm, "%s/dvm", bin);

    proc_io io;
    memset(&io, 0, sizeof io);
    uv_pipe_init(&loop, &io.in, 0);
    uv_pipe_init(&loop, &io.out, 0);
    io.in.data = io.out.data = io.proc.data = &io;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&io.in},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&io.out},
        {.flags = UV_INHERIT_FD, .data.fd = 2},
    };
    char *args[] = {dvm, "pipe", "--peer", peer, "--identity", idpath, "--timeout", "20000", NULL};
    uv_process_options_t o = {.exit_cb = pio_exit, .file = dvm, .args = args, .stdio_count = 3, .stdio = stdio};
    cr_assert_eq(uv_spawn(&loop, &io.proc, &o), 0);
    for (int i = 0; i < MAX_PEERS; i++)
        if (g_pids[i] == 0) {
            g_pids[i] = io.proc.pid;
            break;
        }
    uv_read_start((uv_stream_t *)&io.out, js_alloc, pio_read);
    static char input[] = "{\"type\":\"request\",\"job_id\":\"j1\"}\nsecond line\n";
    uv_buf_t b = uv_buf_init(input, sizeof input - 1);
    uv_write(&io.w, (uv_stream_t *)&io.in, &b, 1, pio_written);
    cr_assert(run_until(&loop, pio_done, &io, WAIT_MS), "dvm pipe did not finish");
    cr_assert_eq(io.status, 0);
    /* stdin's end half-closes: the echoes still arrive before the JS end. */
    cr_assert_str_eq(io.out_buf, input);
    cr_assert(run_until(&loop, js_closed, &js, WAIT_MS));
    cr_assert_eq(json_integer_value(json_object_get(js_event(&js, "closed"), "messages")), 2);
    unlink(idpath);
    js_close_handles(&js);
    json_decref(js.events);
    teardown_loop(&loop);
}
