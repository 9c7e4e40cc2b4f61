/* dvm pipe: a SecretStream netcat, for debugging the transport. */
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "dvm/cli.h"
#include "live/identity.h"
#include "live/swarm.h"

#define LINE_MAX_BYTES (1u << 20)

static void usage(FILE *out)
{
    fprintf(out,
            "usage: dvm pipe (--listen HOST:PORT | --peer HOST:PORT[@PUBKEYHEX]) [--identity PATH]\n"
            "                [--timeout MS]\n"
            "\n"
            "Open one encrypted Hyperswarm SecretStream connection (the transport the\n"
            "agent and customer use) and join it to stdin/stdout: every stdin line\n"
            "(newline included) is sent as one message, every message received is\n"
            "written to stdout as is. With --listen, serve the first peer that\n"
            "connects; with --peer, dial it (and with @PUBKEYHEX refuse any other\n"
            "key). Status lines go to stderr: our public key, the listening address,\n"
            "the peer's public key. Ends when stdin ends (after sending everything)\n"
            "or the peer closes. --timeout ends with exit 1 when no connection opened\n"
            "within MS (default 30000). Exit 0 on a clean close, 1 on an error.\n");
}

typedef struct pipe_state {
    uv_loop_t *loop;
    dvm_swarm *sw;
    dvm_conn *conn;
    uv_pipe_t in;
    uv_tty_t tty;
    uv_stream_t *input;
    uv_timer_t deadline;
    char *line;
    size_t line_len;
    bool input_done, input_started, finished;
    int exit_code;
} pipe_state;

static void finish(pipe_state *p, int code)
{
    if (p->finished)
        return;
    p->finished = true;
    p->exit_code = code;
    if (p->input_started)
        uv_read_stop(p->input);
    if (p->input && !uv_is_closing((uv_handle_t *)p->input))
        uv_close((uv_handle_t *)p->input, NULL);
    uv_close((uv_handle_t *)&p->deadline, NULL);
    if (p->sw) {
        dvm_swarm_destroy(p->sw);
        p->sw = NULL;
    }
}

static void send_line(pipe_state *p)
{
    if (p->line_len && p->conn && dvm_conn_send(p->conn, (const uint8_t *)p->line, p->line_len) != DVM_OK)
        fprintf(stderr, "dvm pipe: cannot send a message\n");
    p->line_len = 0;
}

static void in_alloc(uv_handle_t *h, size_t sug, uv_buf_t *b)
{
    (void)h;
    (void)sug;
    static char buf[65536];
    *b = uv_buf_init(buf, sizeof buf);
}

static void in_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    pipe_state *p = s->data;
    if (n < 0) {
        send_line(p); /* a last line without newline */
        p->input_done = true;
        uv_read_stop(s);
        p->input_started = false;
        if (p->conn)
            dvm_conn_close(p->conn);
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (p->line_len < LINE_MAX_BYTES)
            p->line[p->line_len++] = b->base[i];
        if (b->base[i] == '\n' || p->line_len == LINE_MAX_BYTES)
            send_line(p);
    }
    if (p->conn && !dvm_conn_writable(p->conn)) {
        uv_read_stop(s); /* backpressure: resume on drain */
        p->input_started = false;
    }
}

static void start_input(pipe_state *p)
{
    if (p->input && !p->input_done && !p->input_started && !p->finished &&
        uv_read_start(p->input, in_alloc, in_read) == 0)
        p->input_started = true;
}

static void c_message(dvm_conn *c, const uint8_t *m, size_t len, void *ud)
{
    (void)c;
    (void)ud;
    if (len)
        fwrite(m, 1, len, stdout);
    fflush(stdout);
}

static void c_drain(dvm_conn *c, void *ud)
{
    (void)c;
    start_input(ud);
}

static void c_close(dvm_conn *c, dvm_err err, const char *reason, void *ud)
{
    pipe_state *p = ud;
    (void)c;
    p->conn = NULL;
    fprintf(stderr, "dvm pipe: connection closed: %s\n", reason);
    finish(p, err == DVM_OK ? 0 : 1);
}

static const dvm_conn_callbacks CONN_CBS = {NULL, c_message, c_drain, c_close};

static void on_connection(dvm_swarm *sw, dvm_conn *c, const dvm_swarm_peer_info *info, void *ud)
{
    pipe_state *p = ud;
    if (p->conn || p->finished) {
        dvm_conn_abort(c, DVM_ERR_LIMIT, "dvm pipe serves one peer");
        return;
    }
    char hex[65];
    dvm_identity_hex(info->remote_public_key, hex);
    fprintf(stderr, "dvm pipe: connected to %s at %s\n", hex, info->address);
    p->conn = c;
    dvm_conn_set_callbacks(c, &CONN_CBS, p);
    uv_timer_stop(&p->deadline);
    uint8_t topic[DVM_SWARM_TOPIC_BYTES] = {0};
    if (!info->initiator)
        dvm_swarm_leave(sw, topic); /* stop accepting */
    if (p->input_done)
        dvm_conn_close(c);
    else
        start_input(p);
}

static void on_peer_error(dvm_swarm *sw, const char *peer, dvm_err err, const char *reason, void *ud)
{
    (void)sw;
    (void)err;
    fprintf(stderr, "dvm pipe: %s: %s\n", peer, reason);
    finish(ud, 1);
}

static void on_deadline(uv_timer_t *t)
{
    fprintf(stderr, "dvm pipe: no connection within the timeout\n");
    finish(t->data, 1);
}

int dvm_cmd_pipe(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},   {"peer", required_argument, NULL, 'p'},
        {"identity", required_argument, NULL, 'i'}, {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    const char *listen = NULL, *peer = NULL, *identity = NULL;
    uint64_t timeout_ms = 30000;
    int c;
    optind = 1;
    opterr = 0; /* dvm_bad_option reports, in one line */
    while ((c = getopt_long(argc, argv, "l:p:i:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'l': listen = optarg; break;
        case 'p': peer = optarg; break;
        case 'i': identity = optarg; break;
        case 't':
            if (!dvm_parse_u64(optarg, 86400000, &timeout_ms) || timeout_ms == 0) {
                fprintf(stderr, "dvm pipe: --timeout must be 1..86400000 ms\n");
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: return dvm_bad_option("pipe", argc, argv);
        }
    }
    if (optind != argc || (!listen) == (!peer)) {
        fprintf(stderr, "dvm pipe: give exactly one of --listen HOST:PORT or --peer HOST:PORT[@PUBKEYHEX]\n");
        return 2;
    }
    {
        /* Address syntax first: a usage error touches no identity file. */
        dvm_peer_addr pa[DVM_SWARM_MAX_PEERS];
        size_t npa;
        char bad[300];
        if ((listen && dvm_peer_addr_parse(listen, true, &pa[0], bad, sizeof bad) != DVM_OK) ||
            (peer && dvm_peer_addr_parse_list(peer, pa, DVM_SWARM_MAX_PEERS, &npa, bad, sizeof bad) != DVM_OK)) {
            fprintf(stderr, "dvm pipe: %s: %s\n", listen ? "--listen" : "--peer", bad);
            return 2;
        }
    }
    if (sodium_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    dvm_noise_keypair kp;
    char why[512];
    bool created;
    if (dvm_identity_load_or_create(identity, &kp, &created, why, sizeof why) != DVM_OK) {
        fprintf(stderr, "dvm pipe: %s\n", why);
        return 1;
    }
    char hex[65];
    dvm_identity_hex(kp.public_key, hex);
    fprintf(stderr, "dvm pipe: public key %s\n", hex);

    uv_loop_t loop;
    uv_loop_init(&loop);
    pipe_state p = {.loop = &loop};
    p.line = malloc(LINE_MAX_BYTES);
    if (!p.line)
        return 1;
    uv_timer_init(&loop, &p.deadline);
    p.deadline.data = &p;
    dvm_swarm_direct_config cfg = {.listen = listen, .peers = peer};
    dvm_swarm_callbacks cbs = {on_connection, on_peer_error};
    dvm_err e;
    why[0] = '\0';
    p.sw = dvm_swarm_direct_new(&loop, &kp, &cfg, &cbs, &p, &e, why, sizeof why);
    sodium_memzero(&kp, sizeof kp);
    if (!p.sw) {
        fprintf(stderr, "dvm pipe: %s\n", why);
        uv_close((uv_handle_t *)&p.deadline, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        free(p.line);
        return 2;
    }
    uint8_t topic[DVM_SWARM_TOPIC_BYTES] = {0};
    e = dvm_swarm_join(p.sw, topic, listen ? DVM_SWARM_SERVER : DVM_SWARM_CLIENT);
    if (e) {
        fprintf(stderr, "dvm pipe: %s\n", dvm_swarm_last_error(p.sw)[0] ? dvm_swarm_last_error(p.sw) : dvm_strerror(e));
        dvm_swarm_destroy(p.sw);
        uv_close((uv_handle_t *)&p.deadline, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        free(p.line);
        return 1;
    }
    if (listen) {
        char addr[300];
        if (dvm_swarm_local_address(p.sw, addr, sizeof addr) == DVM_OK)
            fprintf(stderr, "dvm pipe: listening on %s\n", addr);
    }
    uv_timer_start(&p.deadline, on_deadline, timeout_ms, 0);
    /* stdin: a pipe or a terminal (regular files: use `cat FILE |`). */
    uv_handle_type t = uv_guess_handle(0);
    if (t == UV_TTY && uv_tty_init(&loop, &p.tty, 0, 1) == 0) {
        p.input = (uv_stream_t *)&p.tty;
    } else if ((t == UV_NAMED_PIPE || t == UV_TCP) && uv_pipe_init(&loop, &p.in, 0) == 0) {
        if (uv_pipe_open(&p.in, 0) == 0)
            p.input = (uv_stream_t *)&p.in;
        else
            uv_close((uv_handle_t *)&p.in, NULL);
    }
    if (p.input)
        p.input->data = &p;
    else
        p.input_done = true; /* no usable stdin: receive only */
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(p.line);
    return p.exit_code;
}
