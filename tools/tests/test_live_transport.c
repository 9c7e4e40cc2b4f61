/* tools/live transport, C against C on 127.0.0.1: the direct swarm backend
 * (join, pinning, unreachable peers), timeouts, keep-alives, backpressure,
 * and the identity file. All waits are bounded. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "uv_wait.h"

#include "live/conn.h"
#include "live/identity.h"
#include "live/swarm.h"
#include "noise/secretstream.h"

static void suite_init(void)
{
    cr_assert(sodium_init() >= 0);
    signal(SIGPIPE, SIG_IGN);
}
TestSuite(live_transport, .init = suite_init, .timeout = 120);

static void teardown_loop(uv_loop_t *loop)
{
    for (int i = 0; i < 1000 && uv_run(loop, UV_RUN_NOWAIT); i++)
        ;
    uv_walk(loop, close_walk, NULL);
    for (int i = 0; i < 1000 && uv_run(loop, UV_RUN_NOWAIT); i++)
        ;
    cr_assert_eq(uv_loop_close(&*loop), 0, "handles left open");
}

static dvm_noise_keypair kp_of(uint8_t b)
{
    uint8_t seed[32];
    memset(seed, b, 32);
    dvm_noise_keypair kp;
    dvm_noise_keypair_from_seed(&kp, seed);
    return kp;
}

/* ---- swarm: direct backend ------------------------------------------------ */

typedef struct side {
    unsigned connections, messages, closes, peer_errors;
    dvm_err last_err;
    char last_msg[64];
    uint8_t remote[32];
    bool initiator;
    dvm_conn *conn;
} side;

static void side_message(dvm_conn *c, const uint8_t *m, size_t len, void *ud)
{
    side *s = ud;
    s->messages++;
    snprintf(s->last_msg, sizeof s->last_msg, "%.*s", (int)len, (const char *)m);
    if (len == 4 && memcmp(m, "ping", 4) == 0)
        dvm_conn_send(c, (const uint8_t *)"pong", 4);
}

static void side_close(dvm_conn *c, dvm_err err, const char *reason, void *ud)
{
    side *s = ud;
    (void)c;
    (void)reason;
    s->closes++;
    s->last_err = err;
    s->conn = NULL;
}

static const dvm_conn_callbacks SIDE_CBS = {NULL, side_message, NULL, side_close};

static void sw_connection(dvm_swarm *sw, dvm_conn *c, const dvm_swarm_peer_info *info, void *ud)
{
    side *s = ud;
    (void)sw;
    s->connections++;
    s->initiator = info->initiator;
    s->conn = c;
    memcpy(s->remote, info->remote_public_key, 32);
    dvm_conn_set_callbacks(c, &SIDE_CBS, s);
    if (info->initiator)
        dvm_conn_send(c, (const uint8_t *)"ping", 4);
}

static void sw_peer_error(dvm_swarm *sw, const char *peer, dvm_err err, const char *reason, void *ud)
{
    side *s = ud;
    (void)sw;
    (void)peer;
    (void)reason;
    s->peer_errors++;
    s->last_err = err;
}

static const dvm_swarm_callbacks SW_CBS = {sw_connection, sw_peer_error};

static bool got_pong(void *p) { return strcmp(((side *)p)->last_msg, "pong") == 0; }
static bool got_error(void *p) { return ((side *)p)->peer_errors > 0; }

static dvm_swarm *server_swarm(uv_loop_t *loop, const dvm_noise_keypair *kp, side *s, char addr[64])
{
    dvm_swarm_direct_config cfg = {.listen = "127.0.0.1:0"};
    dvm_err e;
    char why[256] = "";
    dvm_swarm *sw = dvm_swarm_direct_new(loop, kp, &cfg, &SW_CBS, s, &e, why, sizeof why);
    cr_assert_not_null(sw, "%s", why);
    cr_assert_str_eq(dvm_swarm_backend(sw), "direct");
    uint8_t topic[32] = {1};
    cr_assert_eq(dvm_swarm_join(sw, topic, DVM_SWARM_SERVER), DVM_OK);
    cr_assert_eq(dvm_swarm_join(sw, topic, DVM_SWARM_SERVER), DVM_ERR_EXISTS);
    cr_assert_eq(dvm_swarm_local_address(sw, addr, 64), DVM_OK);
    return sw;
}

Test(live_transport, direct_swarm_server_and_pinned_client)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    dvm_noise_keypair ks = kp_of(1), kc = kp_of(2);
    side ss = {0}, sc = {0};
    char addr[64];
    dvm_swarm *srv = server_swarm(&loop, &ks, &ss, addr);

    char hex[65], peers[200];
    dvm_identity_hex(ks.public_key, hex);
    snprintf(peers, sizeof peers, "%s@%s", addr, hex);
    dvm_swarm_direct_config cfg = {.peers = peers};
    dvm_err e;
    char why[256] = "";
    dvm_swarm *cli = dvm_swarm_direct_new(&loop, &kc, &cfg, &SW_CBS, &sc, &e, why, sizeof why);
    cr_assert_not_null(cli, "%s", why);
    uint8_t topic[32] = {1};
    cr_assert_eq(dvm_swarm_join(cli, topic, DVM_SWARM_SERVER), DVM_ERR_INVALID, "no --listen configured");
    cr_assert(strstr(dvm_swarm_last_error(cli), "--listen"), "%s", dvm_swarm_last_error(cli));
    cr_assert_eq(dvm_swarm_join(cli, topic, DVM_SWARM_CLIENT), DVM_OK);
    cr_assert(run_until(&loop, got_pong, &sc, 20000), "no pong");
    cr_assert_eq(sc.connections, 1);
    cr_assert_eq(ss.connections, 1);
    cr_assert(sc.initiator);
    cr_assert_not(ss.initiator);
    cr_assert_arr_eq(sc.remote, ks.public_key, 32);
    cr_assert_arr_eq(ss.remote, kc.public_key, 32);
    cr_assert_str_eq(ss.last_msg, "ping");
    /* Destroying the swarms closes their connections (each gets on_close). */
    dvm_swarm_destroy(cli);
    dvm_swarm_destroy(srv);
    teardown_loop(&loop);
    cr_assert_eq(sc.closes, 1);
    cr_assert_eq(ss.closes, 1);
}

Test(live_transport, direct_swarm_rejects_a_wrong_pin_and_reports_unreachable_peers)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    dvm_noise_keypair ks = kp_of(3), kc = kp_of(4);
    side ss = {0}, sc = {0};
    char addr[64];
    dvm_swarm *srv = server_swarm(&loop, &ks, &ss, addr);

    char peers[200], hex[65];
    dvm_identity_hex(kc.public_key, hex); /* pin the wrong key (our own) */
    snprintf(peers, sizeof peers, "%s@%s", addr, hex);
    dvm_swarm_direct_config cfg = {.peers = peers, .dial_attempts = 3, .dial_retry_ms = 10};
    dvm_err e;
    dvm_swarm *cli = dvm_swarm_direct_new(&loop, &kc, &cfg, &SW_CBS, &sc, &e, NULL, 0);
    cr_assert_not_null(cli);
    uint8_t topic[32] = {2};
    cr_assert_eq(dvm_swarm_join(cli, topic, DVM_SWARM_CLIENT), DVM_OK);
    cr_assert(run_until(&loop, got_error, &sc, 20000));
    cr_assert_eq(sc.connections, 0, "a peer with another key is never reported");
    cr_assert_eq(sc.last_err, DVM_ERR_CRYPTO);
    cr_assert_eq(sc.peer_errors, 1, "a key mismatch is not retried");
    dvm_swarm_destroy(cli);

    /* A port nobody listens on: grab one and close it. */
    uv_tcp_t t;
    uv_tcp_init(&loop, &t);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    cr_assert_eq(uv_tcp_bind(&t, (const struct sockaddr *)&a, 0), 0);
    struct sockaddr_in bound;
    int len = sizeof bound;
    uv_tcp_getsockname(&t, (struct sockaddr *)&bound, &len);
    snprintf(peers, sizeof peers, "127.0.0.1:%u", (unsigned)ntohs(bound.sin_port));
    uv_close((uv_handle_t *)&t, NULL);
    side sd = {0};
    dvm_swarm_direct_config cfg2 = {.peers = peers, .dial_attempts = 2, .dial_retry_ms = 10};
    dvm_swarm *dead = dvm_swarm_direct_new(&loop, &kc, &cfg2, &SW_CBS, &sd, &e, NULL, 0);
    cr_assert_eq(dvm_swarm_join(dead, topic, DVM_SWARM_CLIENT), DVM_OK);
    cr_assert(run_until(&loop, got_error, &sd, 20000));
    cr_assert_eq(sd.peer_errors, 1);
    cr_assert_eq(sd.connections, 0);
    dvm_swarm_destroy(dead);
    dvm_swarm_destroy(srv);
    teardown_loop(&loop);
}

Test(live_transport, peer_address_parsing)
{
    dvm_peer_addr a;
    char why[200];
    cr_assert_eq(dvm_peer_addr_parse("127.0.0.1:8080", false, &a, why, sizeof why), DVM_OK);
    cr_assert_str_eq(a.host, "127.0.0.1");
    cr_assert_eq(a.port, 8080);
    cr_assert_not(a.pinned);
    cr_assert_eq(dvm_peer_addr_parse("[::1]:9", false, &a, why, sizeof why), DVM_OK);
    cr_assert_str_eq(a.host, "::1");
    char pinned[200];
    snprintf(pinned, sizeof pinned, "localhost:1@%s", "AB" "00000000000000000000000000000000000000000000000000000000000000");
    cr_assert_eq(dvm_peer_addr_parse(pinned, false, &a, why, sizeof why), DVM_OK);
    cr_assert(a.pinned);
    cr_assert_eq(a.public_key[0], 0xab);
    const char *bad[] = {"", "host", "host:", ":80", "h:0", "h:65536", "h:12x", "::1:80", "h:1@abc", "h:1@" "zz00000000000000000000000000000000000000000000000000000000000000", "[::1]80"};
    for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(dvm_peer_addr_parse(bad[i], false, &a, why, sizeof why), DVM_ERR_INVALID, "accepted '%s'", bad[i]);
    cr_assert_eq(dvm_peer_addr_parse("0.0.0.0:0", true, &a, why, sizeof why), DVM_OK);
    dvm_peer_addr list[3];
    size_t n;
    cr_assert_eq(dvm_peer_addr_parse_list("1.2.3.4:5,6.7.8.9:10", list, 3, &n, why, sizeof why), DVM_OK);
    cr_assert_eq(n, 2);
    cr_assert_eq(list[1].port, 10);
    cr_assert_eq(dvm_peer_addr_parse_list("a:1,b:2,c:3,d:4", list, 3, &n, why, sizeof why), DVM_ERR_LIMIT);
    cr_assert_eq(dvm_peer_addr_parse_list("a:1,,b:2", list, 3, &n, why, sizeof why), DVM_ERR_INVALID);
}

/* ---- timeouts, keep-alive, backpressure ------------------------------------- */

typedef struct watch {
    bool opened, closed;
    dvm_err err;
    const char *reason;
    unsigned messages, drains;
    dvm_conn *conn;
} watch;

static void w_open(dvm_conn *c, void *ud)
{
    watch *w = ud;
    w->opened = true;
    w->conn = c;
}
static void w_message(dvm_conn *c, const uint8_t *m, size_t len, void *ud)
{
    (void)c;
    (void)m;
    (void)len;
    ((watch *)ud)->messages++;
}
static void w_drain(dvm_conn *c, void *ud)
{
    (void)c;
    ((watch *)ud)->drains++;
}
static void w_close(dvm_conn *c, dvm_err err, const char *reason, void *ud)
{
    watch *w = ud;
    (void)c;
    w->closed = true;
    w->err = err;
    w->reason = reason;
    w->conn = NULL;
}
static const dvm_conn_callbacks W_CBS = {w_open, w_message, w_drain, w_close};
static bool w_closed(void *p) { return ((watch *)p)->closed; }
static bool w_opened_pred(void *p) { return ((watch *)p)->opened || ((watch *)p)->closed; }

/* A TCP server that accepts and never speaks. */
static void silent_accept(uv_stream_t *s, int status)
{
    if (status < 0)
        return;
    uv_tcp_t *c = malloc(sizeof *c);
    uv_tcp_init(s->loop, c);
    uv_accept(s, (uv_stream_t *)c);
    s->data = c; /* closed by the loop teardown walk; freed below */
}

Test(live_transport, handshake_timeout_against_a_silent_server)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_tcp_t srv;
    uv_tcp_init(&loop, &srv);
    srv.data = NULL;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_bind(&srv, (const struct sockaddr *)&a, 0);
    cr_assert_eq(uv_listen((uv_stream_t *)&srv, 4, silent_accept), 0);
    struct sockaddr_in bound;
    int len = sizeof bound;
    uv_tcp_getsockname(&srv, (struct sockaddr *)&bound, &len);
    dvm_noise_keypair k = kp_of(9);
    dvm_conn_options o;
    dvm_conn_options_default(&o);
    o.handshake_timeout_ms = 200;
    watch w = {0};
    dvm_err e;
    cr_assert_not_null(dvm_dial(&loop, "127.0.0.1", ntohs(bound.sin_port), &k, &o, &W_CBS, &w, &e));
    cr_assert(run_until(&loop, w_closed, &w, 20000));
    cr_assert_not(w.opened);
    cr_assert_eq(w.err, DVM_ERR_LIMIT);
    cr_assert_str_eq(w.reason, "handshake timed out");
    void *accepted = srv.data;
    teardown_loop(&loop);
    free(accepted);
}

typedef struct pair {
    dvm_listener *l;
    watch server, client;
    dvm_conn_options sopts;
} pair;

static void pair_accept(dvm_listener *l, dvm_conn *c, void *ud)
{
    pair *p = ud;
    (void)l;
    dvm_conn_set_callbacks(c, &W_CBS, &p->server);
}

static bool pair_open(void *ud)
{
    pair *p = ud;
    return (p->server.opened && p->client.opened) || p->server.closed || p->client.closed;
}

static void pair_start(uv_loop_t *loop, pair *p, const dvm_conn_options *server_opts,
                       const dvm_conn_options *client_opts)
{
    memset(p, 0, sizeof *p);
    dvm_noise_keypair ks = kp_of(10), kc = kp_of(11);
    dvm_err e;
    p->l = dvm_listen(loop, "127.0.0.1", 0, &ks, server_opts, pair_accept, p, &e, NULL, 0);
    cr_assert_not_null(p->l);
    cr_assert_not_null(dvm_dial(loop, "127.0.0.1", dvm_listener_port(p->l), &kc, client_opts, &W_CBS, &p->client, &e));
    cr_assert(run_until(loop, pair_open, p, 20000));
    cr_assert(p->server.opened && p->client.opened);
}

Test(live_transport, idle_timeout_and_keepalive)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    /* The server closes after 2 s of silence; the client keeps it alive
     * with keep-alives every 50 ms, which are never delivered as messages.
     * Once the client stops (closes), the server sees the end. */
    dvm_conn_options so, co;
    dvm_conn_options_default(&so);
    dvm_conn_options_default(&co);
    so.idle_timeout_ms = 2000;
    so.keepalive_ms = 1000000; /* turns on keep-alive filtering on the server */
    co.keepalive_ms = 50;
    pair p;
    pair_start(&loop, &p, &so, &co);
    /* Stay connected for well over the idle timeout (bounded window). */
    uint64_t start = uv_now(&loop);
    while (uv_now(&loop) - start < 3000 && !p.server.closed) {
        uv_run(&loop, UV_RUN_ONCE);
        uv_update_time(&loop);
    }
    cr_assert_not(p.server.closed, "keep-alives did not keep the connection: %s", p.server.reason);
    cr_assert_eq(p.server.messages, 0, "keep-alives are filtered, not delivered");
    /* Now a client without keep-alive: the server's idle timeout fires. */
    dvm_conn_close(p.client.conn);
    cr_assert(run_until(&loop, w_closed, &p.server, 20000));
    cr_assert_eq(p.server.err, DVM_OK, "the client's close is clean: %s", p.server.reason);
    dvm_listener_close(p.l);
    teardown_loop(&loop);

    uv_loop_init(&loop);
    dvm_conn_options_default(&co);
    pair_start(&loop, &p, &so, &co);
    cr_assert(run_until(&loop, w_closed, &p.server, 20000));
    cr_assert_eq(p.server.err, DVM_ERR_LIMIT);
    cr_assert_str_eq(p.server.reason, "idle timeout: nothing received");
    cr_assert(run_until(&loop, w_closed, &p.client, 20000));
    dvm_listener_close(p.l);
    teardown_loop(&loop);
}

Test(live_transport, backpressure_signals_and_hard_cap)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    dvm_conn_options co;
    dvm_conn_options_default(&co);
    co.write_high_water = 64 * 1024;
    co.write_low_water = 16 * 1024;
    pair p;
    pair_start(&loop, &p, NULL, &co);
    dvm_conn *c = p.client.conn;
    /* The server stops reading: our queue can only grow. */
    dvm_conn_pause_reading(p.server.conn);
    static uint8_t chunk[16 * 1024];
    cr_assert(dvm_conn_writable(c));
    unsigned sent = 0;
    dvm_err e = DVM_OK;
    /* Without running the loop nothing is written out: the queue fills. */
    while (dvm_conn_writable(c)) {
        cr_assert_eq(dvm_conn_send(c, chunk, sizeof chunk), DVM_OK);
        sent++;
    }
    cr_assert_gt(dvm_conn_queued_bytes(c), co.write_high_water);
    /* A producer ignoring the signal hits the hard cap, bounded memory. */
    for (unsigned i = 0; i < 100000 && (e = dvm_conn_send(c, chunk, sizeof chunk)) == DVM_OK; i++)
        sent++;
    cr_assert_eq(e, DVM_ERR_LIMIT);
    cr_assert_leq(dvm_conn_queued_bytes(c), 4 * co.write_high_water + DVM_SECRETSTREAM_MAX_FRAME + 3);
    cr_assert_eq(dvm_conn_send(c, NULL, DVM_SECRETSTREAM_MAX_MESSAGE + 1), DVM_ERR_TOO_LARGE);
    /* The reader resumes: the queue drains, on_drain fires, all arrive. */
    dvm_conn_resume_reading(p.server.conn);
    uint64_t start = uv_now(&loop);
    while (p.server.messages < sent && uv_now(&loop) - start < 20000) {
        uv_run(&loop, UV_RUN_ONCE);
        uv_update_time(&loop);
    }
    cr_assert_eq(p.server.messages, sent);
    cr_assert_geq(p.client.drains, 1);
    cr_assert(dvm_conn_writable(c));
    dvm_conn_close(c);
    cr_assert(run_until(&loop, w_closed, &p.server, 20000));
    dvm_listener_close(p.l);
    teardown_loop(&loop);
}

/* ---- identity file -------------------------------------------------------- */

Test(live_transport, identity_file_is_created_0600_and_reloaded)
{
    char dir[] = "/tmp/dvm-identity-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/sub/identity", dir);
    dvm_noise_keypair a, b;
    bool created = false;
    char why[300] = "";
    cr_assert_eq(dvm_identity_load_or_create(path, &a, &created, why, sizeof why), DVM_OK, "%s", why);
    cr_assert(created);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_eq(dvm_identity_load_or_create(path, &b, &created, why, sizeof why), DVM_OK, "%s", why);
    cr_assert_not(created);
    cr_assert_arr_eq(a.public_key, b.public_key, 32);
    cr_assert_arr_eq(a.secret_key, b.secret_key, 64);
    /* Too open: refused. */
    chmod(path, 0644);
    cr_assert_eq(dvm_identity_load_or_create(path, &b, NULL, why, sizeof why), DVM_ERR_CRYPTO);
    cr_assert(strstr(why, "chmod 600"));
    /* Malformed. */
    chmod(path, 0600);
    FILE *f = fopen(path, "w");
    fputs("# comment\nnot hex\n", f);
    fclose(f);
    cr_assert_eq(dvm_identity_load_or_create(path, &b, NULL, why, sizeof why), DVM_ERR_INVALID);
    /* A known seed gives the known public key. */
    f = fopen(path, "w");
    fputs("0101010101010101010101010101010101010101010101010101010101010101\n", f);
    fclose(f);
    cr_assert_eq(dvm_identity_load_or_create(path, &b, NULL, why, sizeof why), DVM_OK, "%s", why);
    dvm_noise_keypair want = kp_of(1);
    cr_assert_arr_eq(b.public_key, want.public_key, 32);
    /* The default path follows XDG_DATA_HOME, then HOME. */
    char def[512];
    setenv("XDG_DATA_HOME", dir, 1);
    cr_assert_eq(dvm_identity_default_path(def, sizeof def), DVM_OK);
    char expect[512];
    snprintf(expect, sizeof expect, "%s/dvm/identity", dir);
    cr_assert_str_eq(def, expect);
    unsetenv("XDG_DATA_HOME");
    setenv("HOME", "/home/someone", 1);
    cr_assert_eq(dvm_identity_default_path(def, sizeof def), DVM_OK);
    cr_assert_str_eq(def, "/home/someone/.local/share/dvm/identity");
    unlink(path);
    snprintf(path, sizeof path, "%s/sub", dir);
    rmdir(path);
    rmdir(dir);
}

/* ---- graceful close is a half-close ----------------------------------------- */

typedef struct echo_side {
    watch w;
    bool echo;
} echo_side;

static void e_message(dvm_conn *c, const uint8_t *m, size_t len, void *ud)
{
    echo_side *e = ud;
    e->w.messages++;
    if (e->echo)
        cr_assert_eq(dvm_conn_send(c, m, len), DVM_OK);
}
static void e_open(dvm_conn *c, void *ud) { w_open(c, &((echo_side *)ud)->w); }
static void e_close(dvm_conn *c, dvm_err err, const char *reason, void *ud)
{
    w_close(c, err, reason, &((echo_side *)ud)->w);
}
static const dvm_conn_callbacks E_CBS = {e_open, e_message, NULL, e_close};

static void e_accept(dvm_listener *l, dvm_conn *c, void *ud)
{
    (void)l;
    dvm_conn_set_callbacks(c, &E_CBS, ud);
}

static bool e_both_closed(void *p)
{
    echo_side *e = p;
    return e[0].w.closed && e[1].w.closed;
}

Test(live_transport, close_flushes_and_still_receives_until_the_peer_ends)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    echo_side e[2] = {{.echo = true}, {.echo = false}}; /* server, client */
    dvm_noise_keypair ks = kp_of(12), kc = kp_of(13);
    dvm_err err;
    dvm_listener *l = dvm_listen(&loop, "127.0.0.1", 0, &ks, NULL, e_accept, &e[0], &err, NULL, 0);
    cr_assert_not_null(l);
    cr_assert_not_null(dvm_dial(&loop, "127.0.0.1", dvm_listener_port(l), &kc, NULL, &E_CBS, &e[1], &err));
    cr_assert(run_until(&loop, w_opened_pred, &e[1].w, 20000));
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(dvm_conn_send(e[1].w.conn, (const uint8_t *)"0123456789", 10), DVM_OK);
    dvm_conn_close(e[1].w.conn);
    cr_assert_eq(dvm_conn_send(e[1].w.conn, (const uint8_t *)"x", 1), DVM_ERR_STATE, "no sends after close");
    cr_assert(run_until(&loop, e_both_closed, e, 20000));
    cr_assert_eq(e[0].w.messages, 1000, "everything queued before close was delivered");
    cr_assert_eq(e[1].w.messages, 1000, "echoes sent after our FIN still arrived");
    cr_assert_eq(e[0].w.err, DVM_OK, "%s", e[0].w.reason);
    cr_assert_eq(e[1].w.err, DVM_OK, "%s", e[1].w.reason);
    cr_assert_str_eq(e[0].w.reason, "peer closed the connection");
    dvm_listener_close(l);
    teardown_loop(&loop);
}

/* ---- connection limit ---------------------------------------------------------- */

typedef struct counter {
    unsigned connections, closed, limit_closes;
} counter;

static void cnt_connection(dvm_swarm *sw, dvm_conn *c, const dvm_swarm_peer_info *info, void *ud)
{
    (void)sw;
    (void)c;
    (void)info;
    ((counter *)ud)->connections++;
}
static const dvm_swarm_callbacks CNT_CBS = {cnt_connection, NULL};

static void lim_close(dvm_conn *c, dvm_err err, const char *reason, void *ud)
{
    counter *k = ud;
    (void)c;
    (void)reason;
    k->closed++;
    if (err == DVM_ERR_PROTO || err == DVM_OK)
        k->limit_closes++; /* the server hung up before/after the handshake */
}
static void lim_open(dvm_conn *c, void *ud)
{
    (void)c;
    (void)ud;
}
static const dvm_conn_callbacks LIM_CBS = {lim_open, NULL, NULL, lim_close};

static bool k_all_settled(void *p)
{
    counter **k = p;
    return k[0]->connections == 2 && k[1]->closed >= 1;
}

Test(live_transport, server_caps_concurrent_connections)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    dvm_noise_keypair ks = kp_of(20), kc = kp_of(21);
    counter srv = {0}, cli = {0};
    dvm_swarm_direct_config cfg = {.listen = "127.0.0.1:0", .max_connections = 2};
    dvm_err e;
    dvm_swarm *sw = dvm_swarm_direct_new(&loop, &ks, &cfg, &CNT_CBS, &srv, &e, NULL, 0);
    uint8_t topic[32] = {9};
    cr_assert_eq(dvm_swarm_join(sw, topic, DVM_SWARM_SERVER), DVM_OK);
    char addr[64];
    dvm_swarm_local_address(sw, addr, sizeof addr);
    uint16_t port = (uint16_t)atoi(strrchr(addr, ':') + 1);
    for (int i = 0; i < 3; i++)
        cr_assert_not_null(dvm_dial(&loop, "127.0.0.1", port, &kc, NULL, &LIM_CBS, &cli, &e));
    counter *both[2] = {&srv, &cli};
    cr_assert(run_until(&loop, k_all_settled, both, 20000), "server saw %u, client closes %u", srv.connections,
              cli.closed);
    cr_assert_eq(srv.connections, 2, "only two connections are served");
    cr_assert_eq(cli.closed, 1, "the third one was closed by the server");
    dvm_swarm_destroy(sw);
    teardown_loop(&loop);
}

/* ---- plaintext debugging mode -------------------------------------------- */

typedef struct pt_side {
    char got[256];
    size_t len;
    bool open;
    const uint8_t *remote;
} pt_side;

static void pt_open(dvm_conn *c, void *ud)
{
    pt_side *s = ud;
    s->open = true;
    s->remote = dvm_conn_remote_public_key(c);
}

static void pt_message(dvm_conn *c, const uint8_t *m, size_t len, void *ud)
{
    pt_side *s = ud;
    (void)c;
    if (s->len + len < sizeof s->got) {
        memcpy(s->got + s->len, m, len);
        s->len += len;
        s->got[s->len] = 0;
    }
}

static void pt_close(dvm_conn *c, dvm_err err, const char *reason, void *ud)
{
    (void)c;
    (void)err;
    (void)reason;
    (void)ud;
}

static const dvm_conn_callbacks PT_CBS = {pt_open, pt_message, NULL, pt_close};

static void pt_accept(dvm_listener *l, dvm_conn *c, void *ud)
{
    (void)l;
    dvm_conn_set_callbacks(c, &PT_CBS, ud);
}

static bool pt_got_line(void *p) { return strchr(((pt_side *)p)->got, '\n') != NULL; }
static bool pt_is_open(void *p) { return ((pt_side *)p)->open; }

/* plaintext: bytes go on the wire as given (a raw TCP client sees the NDJSON
 * line itself, no handshake), the conn opens at TCP connect, the remote key
 * reads as zeros, and pinning is refused. */
Test(live_transport, plaintext_debug_mode_sends_bytes_in_the_clear)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    dvm_noise_keypair ks = kp_of(7), kc = kp_of(8);
    dvm_conn_options o;
    dvm_conn_options_default(&o);
    o.plaintext = true;
    pt_side srv = {0}, cli = {0};
    dvm_err e;
    dvm_listener *l = dvm_listen(&loop, "127.0.0.1", 0, &ks, &o, pt_accept, &srv, &e, NULL, 0);
    cr_assert_not_null(l);
    uint16_t port = dvm_listener_port(l);

    /* 1. a raw socket (no Noise) talks to the plaintext listener */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    const char *line = "{\"type\":\"stop\",\"id\":\"j1\"}\n";
    cr_assert_eq(write(fd, line, strlen(line)), (ssize_t)strlen(line));
    cr_assert(run_until(&loop, pt_got_line, &srv, 10000), "server got: '%s'", srv.got);
    cr_assert_str_eq(srv.got, line);
    cr_assert(srv.open);
    static const uint8_t zeros[32];
    cr_assert_not_null(srv.remote);
    cr_assert_arr_eq(srv.remote, zeros, 32);
    close(fd);

    /* 2. a plaintext dialer reaches it too */
    dvm_conn *c = dvm_dial(&loop, "127.0.0.1", port, &kc, &o, &PT_CBS, &cli, &e);
    cr_assert_not_null(c);
    memset(&srv, 0, sizeof srv);
    /* the client opens at TCP connect, with no handshake */
    cr_assert(run_until(&loop, pt_is_open, &cli, 10000));
    cr_assert_eq(dvm_conn_send(c, (const uint8_t *)line, strlen(line)), DVM_OK);
    cr_assert(run_until(&loop, pt_got_line, &srv, 10000));
    cr_assert_str_eq(srv.got, line);

    /* 3. pinning cannot work without a handshake: refused */
    o.pin_remote = true;
    cr_assert_null(dvm_dial(&loop, "127.0.0.1", port, &kc, &o, &PT_CBS, &cli, &e));
    cr_assert_eq(e, DVM_ERR_INVALID);

    dvm_conn_abort(c, DVM_OK, "done");
    dvm_listener_close(l);
    teardown_loop(&loop);
}
