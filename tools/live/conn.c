/* SecretStream over TCP on libuv; see conn.h. */
#include "live/conn.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "noise/secretstream.h"

#define DEFAULT_HANDSHAKE_TIMEOUT_MS 10000
#define DEFAULT_HIGH_WATER ((size_t)1 << 20)
#define CLOSE_FLUSH_TIMEOUT_MS 5000
#define READ_CHUNK (256u * 1024u)
#define SPARE_MAX_BYTES ((size_t)4 << 20)

struct dvm_conn {
    uv_loop_t *loop;
    uv_tcp_t tcp;
    uv_timer_t timer;    /* handshake deadline, then idle timeout, then close flush deadline */
    uv_timer_t ka_timer; /* keep-alive */
    uv_getaddrinfo_t gai;
    uv_connect_t connect_req;
    uv_shutdown_t shutdown_req;
    uv_write_t wreq;
    dvm_secretstream ss;
    dvm_noise_keypair kp;
    dvm_conn_options opts;
    dvm_conn_callbacks cb;
    void *ud;
    void (*close_hook)(dvm_conn *, void *);
    void *close_owner;
    bool initiator, open, closing, closed, tcp_inited, reading, read_paused, over_high, writing, shutting;
    bool gai_pending;
    bool shut_done;   /* our FIN is out */
    bool peer_ended;  /* the peer's FIN arrived */
    int refs; /* libuv handles/requests that will still call back */
    dvm_buf pending;
    uint8_t *inflight;
    size_t inflight_len, inflight_cap;
    dvm_buf spare; /* the last written buffer, reused for the next batch */
    size_t hard_cap;
    dvm_err close_err;
    const char *close_reason;
    uint64_t last_send_ms;
    uint64_t msgs_in, msgs_out, bytes_in, bytes_out;
    uint16_t port;
    char peer[80];
};

/* One read buffer per thread, shared by every conn: libuv hands it to a
 * read callback which consumes it before the next read (SecretStream keeps
 * what it needs), so conns cost no idle read memory. */
static _Thread_local uint8_t g_rbuf[READ_CHUNK];

struct dvm_listener {
    uv_tcp_t tcp;
    uv_loop_t *loop;
    dvm_noise_keypair kp;
    dvm_conn_options opts;
    dvm_listener_accept_cb on_accept;
    void *ud;
    uint16_t port;
};

void dvm_live_rng_fill(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    randombytes_buf(buf, len);
}

void dvm_conn_options_default(dvm_conn_options *opts) { memset(opts, 0, sizeof *opts); }

static void normalise(dvm_conn_options *o)
{
    if (!o->handshake_timeout_ms)
        o->handshake_timeout_ms = DEFAULT_HANDSHAKE_TIMEOUT_MS;
    if (!o->write_high_water)
        o->write_high_water = DEFAULT_HIGH_WATER;
    if (!o->write_low_water || o->write_low_water > o->write_high_water)
        o->write_low_water = o->write_high_water / 4;
    if (!o->max_message || o->max_message > DVM_SECRETSTREAM_MAX_MESSAGE)
        o->max_message = DVM_SECRETSTREAM_MAX_MESSAGE;
}

/* ---- teardown ------------------------------------------------------------ */

static void finalize(dvm_conn *c)
{
    if (c->close_hook)
        c->close_hook(c, c->close_owner);
    if (c->cb.on_close)
        c->cb.on_close(c, c->close_err, c->close_reason ? c->close_reason : "closed", c->ud);
    dvm_secretstream_free(&c->ss);
    dvm_buf_free(&c->pending);
    dvm_buf_free(&c->spare);
    free(c->inflight);
    sodium_memzero(&c->kp, sizeof c->kp);
    free(c);
}

static void unref(dvm_conn *c)
{
    if (--c->refs == 0 && c->closed)
        finalize(c);
}

static void on_handle_closed(uv_handle_t *h) { unref(h->data); }

void dvm_conn_abort(dvm_conn *c, dvm_err err, const char *reason)
{
    if (c->closed)
        return;
    c->closed = true;
    c->closing = true;
    c->open = false;
    c->close_err = err;
    c->close_reason = reason;
    if (c->tcp_inited && !uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->ka_timer, on_handle_closed);
    /* A pending getaddrinfo keeps its ref until its callback runs. */
    if (c->gai_pending)
        uv_cancel((uv_req_t *)&c->gai);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    dvm_conn *c = req->data;
    if (!c->closed) {
        if (status < 0)
            dvm_conn_abort(c, DVM_ERR_STATE, uv_strerror(status));
        else if ((c->shut_done = true) && c->peer_ended)
            dvm_conn_abort(c, DVM_OK, c->close_reason ? c->close_reason : "closed");
    }
    unref(c); /* the shutdown request's ref */
}

static void maybe_shutdown(dvm_conn *c)
{
    if (c->closed || !c->closing || c->shutting || c->writing || c->pending.len)
        return;
    c->shutting = true;
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        dvm_conn_abort(c, DVM_OK, "closed");
        return;
    }
    c->refs++;
}

static void on_close_deadline(uv_timer_t *t)
{
    dvm_conn *c = t->data;
    if (c->shut_done)
        dvm_conn_abort(c, DVM_OK, "closed (the peer did not end its side in time)");
    else
        dvm_conn_abort(c, DVM_ERR_LIMIT, "close timed out with data unsent");
}

/* Graceful end: flush, send FIN, keep reading until the peer's FIN. */
static void begin_close(dvm_conn *c, const char *reason)
{
    c->closing = true;
    c->close_reason = reason;
    c->open = false;
    uv_timer_stop(&c->ka_timer);
    uv_timer_start(&c->timer, on_close_deadline, CLOSE_FLUSH_TIMEOUT_MS, 0);
    maybe_shutdown(c);
}

void dvm_conn_close(dvm_conn *c)
{
    if (c->closed || c->closing)
        return;
    if (!c->open) {
        dvm_conn_abort(c, DVM_OK, "closed before the handshake completed");
        return;
    }
    begin_close(c, "closed");
}

/* ---- writing ------------------------------------------------------------- */

static void flush(dvm_conn *c);

static void on_write(uv_write_t *req, int status)
{
    dvm_conn *c = req->data;
    /* Keep the written buffer for reuse unless it is large. */
    if (!c->spare.data && c->inflight_cap <= SPARE_MAX_BYTES) {
        c->spare.data = c->inflight;
        c->spare.cap = c->inflight_cap;
        c->spare.len = 0;
    } else {
        free(c->inflight);
    }
    c->inflight = NULL;
    c->bytes_out += c->inflight_len;
    c->inflight_len = 0;
    c->writing = false;
    if (c->closed)
        return;
    if (status < 0) {
        dvm_conn_abort(c, DVM_ERR_STATE, uv_strerror(status));
        return;
    }
    flush(c);
    if (c->over_high && dvm_conn_queued_bytes(c) <= c->opts.write_low_water) {
        c->over_high = false;
        if (c->open && c->cb.on_drain)
            c->cb.on_drain(c, c->ud);
    }
    maybe_shutdown(c);
}

static void flush(dvm_conn *c)
{
    if (c->closed || c->writing || c->pending.len == 0 || !c->tcp_inited)
        return;
    c->inflight = c->pending.data;
    c->inflight_len = c->pending.len;
    c->inflight_cap = c->pending.cap;
    size_t max = c->pending.max;
    if (c->spare.data) {
        c->pending = c->spare;
        c->pending.max = max;
        dvm_buf_init(&c->spare, 0);
    } else {
        dvm_buf_init(&c->pending, max);
    }
    uv_buf_t b = uv_buf_init((char *)c->inflight, (unsigned)c->inflight_len);
    c->wreq.data = c;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc != 0) {
        free(c->inflight);
        c->inflight = NULL;
        c->inflight_len = 0;
        dvm_conn_abort(c, DVM_ERR_STATE, uv_strerror(rc));
        return;
    }
    c->writing = true;
}

size_t dvm_conn_queued_bytes(const dvm_conn *c) { return c->inflight_len + c->pending.len; }

bool dvm_conn_writable(const dvm_conn *c) { return c->open && !c->over_high; }

dvm_err dvm_conn_send(dvm_conn *c, const uint8_t *msg, size_t len)
{
    if (!c->open || c->closing)
        return DVM_ERR_STATE;
    if (len > DVM_SECRETSTREAM_MAX_MESSAGE)
        return DVM_ERR_TOO_LARGE;
    size_t frame = c->opts.plaintext ? len : DVM_SECRETSTREAM_FRAME_SIZE(len);
    if (dvm_conn_queued_bytes(c) + frame > c->hard_cap)
        return DVM_ERR_LIMIT;
    dvm_err e = c->opts.plaintext ? dvm_buf_append(&c->pending, msg, len)
                                  : dvm_secretstream_send(&c->ss, msg, len, &c->pending);
    if (e)
        return e;
    c->msgs_out++;
    c->last_send_ms = uv_now(c->loop);
    if (dvm_conn_queued_bytes(c) > c->opts.write_high_water)
        c->over_high = true;
    flush(c);
    return DVM_OK;
}

/* ---- timers -------------------------------------------------------------- */

static void on_handshake_deadline(uv_timer_t *t)
{
    dvm_conn *c = t->data;
    dvm_conn_abort(c, DVM_ERR_LIMIT, c->tcp_inited ? "handshake timed out" : "connect timed out");
}

static void on_idle(uv_timer_t *t)
{
    dvm_conn *c = t->data;
    dvm_conn_abort(c, DVM_ERR_LIMIT, "idle timeout: nothing received");
}

static void on_keepalive(uv_timer_t *t)
{
    dvm_conn *c = t->data;
    if (c->open && uv_now(c->loop) - c->last_send_ms >= c->opts.keepalive_ms)
        (void)dvm_conn_send(c, NULL, 0);
}

/* ---- reading ------------------------------------------------------------- */

/* The conn is usable: handshake done (or, in plaintext mode, TCP up). */
static void mark_open(dvm_conn *c)
{
    c->open = true;
    uv_timer_stop(&c->timer);
    if (c->opts.idle_timeout_ms)
        uv_timer_start(&c->timer, on_idle, c->opts.idle_timeout_ms, 0);
    c->last_send_ms = uv_now(c->loop);
    /* plaintext has no empty-message keep-alive: an empty write is nothing */
    if (c->opts.keepalive_ms && !c->opts.plaintext)
        uv_timer_start(&c->ka_timer, on_keepalive, c->opts.keepalive_ms, c->opts.keepalive_ms);
    if (c->cb.on_open)
        c->cb.on_open(c, c->ud);
}

static void ss_on_handshake(void *ctx)
{
    dvm_conn *c = ctx;
    if (c->closed)
        return;
    if (c->opts.pin_remote && c->initiator &&
        sodium_memcmp(dvm_secretstream_remote_public_key(&c->ss), c->opts.remote_public_key,
                      DVM_NOISE_PUBLIC_KEY_BYTES) != 0) {
        dvm_conn_abort(c, DVM_ERR_CRYPTO, "remote public key does not match the pinned key");
        return;
    }
    mark_open(c);
}

static void ss_on_message(void *ctx, const uint8_t *msg, size_t len)
{
    dvm_conn *c = ctx;
    if (c->closed)
        return;
    c->msgs_in++;
    if (c->cb.on_message)
        c->cb.on_message(c, msg, len, c->ud);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init((char *)g_rbuf, sizeof g_rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    dvm_conn *c = s->data;
    if (c->closed)
        return;
    if (nread < 0) {
        if (nread == UV_EOF) {
            c->peer_ended = true;
            if (c->closing) {
                if (c->shut_done)
                    dvm_conn_abort(c, DVM_OK, c->close_reason ? c->close_reason : "closed");
            } else if (c->open) {
                /* the peer ended its side: flush ours, then close */
                uv_read_stop((uv_stream_t *)&c->tcp);
                c->reading = false;
                begin_close(c, "peer closed the connection");
            } else {
                dvm_conn_abort(c, DVM_ERR_PROTO, "peer closed the connection during the handshake");
            }
        } else {
            dvm_conn_abort(c, DVM_ERR_STATE, uv_strerror((int)nread));
        }
        return;
    }
    if (nread == 0)
        return;
    c->bytes_in += (uint64_t)nread;
    if (c->open && c->opts.idle_timeout_ms)
        uv_timer_start(&c->timer, on_idle, c->opts.idle_timeout_ms, 0);
    if (c->opts.plaintext) {
        ss_on_message(c, (const uint8_t *)buf->base, (size_t)nread);
        return;
    }
    dvm_err e = dvm_secretstream_recv(&c->ss, (const uint8_t *)buf->base, (size_t)nread, &c->pending);
    if (c->closed)
        return;
    if (e) {
        const char *why = dvm_secretstream_error(&c->ss);
        dvm_conn_abort(c, e, why ? why : dvm_strerror(e));
        return;
    }
    flush(c);
}

static void start_reading(dvm_conn *c)
{
    if (c->closed || c->reading || c->read_paused)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = true;
}

void dvm_conn_pause_reading(dvm_conn *c)
{
    c->read_paused = true;
    if (c->reading && !c->closed) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

void dvm_conn_resume_reading(dvm_conn *c)
{
    c->read_paused = false;
    if (c->tcp_inited && !c->closed)
        start_reading(c);
}

/* ---- creation ------------------------------------------------------------ */

static const dvm_secretstream_callbacks SS_CBS = {ss_on_handshake, ss_on_message};

static dvm_conn *conn_new(uv_loop_t *loop, bool initiator, const dvm_noise_keypair *kp, const dvm_conn_options *opts,
                          dvm_err *err)
{
    dvm_conn *c = calloc(1, sizeof *c);
    if (!c) {
        *err = DVM_ERR_NOMEM;
        return NULL;
    }
    c->loop = loop;
    c->initiator = initiator;
    c->kp = *kp;
    if (opts)
        c->opts = *opts;
    normalise(&c->opts);
    c->hard_cap = 4 * c->opts.write_high_water + DVM_SECRETSTREAM_FRAME_SIZE(DVM_SECRETSTREAM_MAX_MESSAGE);
    dvm_buf_init(&c->pending, c->hard_cap + DVM_SECRETSTREAM_FRAME_SIZE(DVM_NOISE_MAX_MESSAGE) + 64);
    dvm_rng rng = {dvm_live_rng_fill, NULL};
    dvm_secretstream_options so = {.pattern = DVM_NOISE_XX,
                                   .max_message = c->opts.max_message,
                                   .filter_empty = c->opts.keepalive_ms != 0};
    dvm_err e = dvm_secretstream_init(&c->ss, initiator, kp, &rng, &so, &SS_CBS, c);
    if (e) {
        free(c);
        *err = e;
        return NULL;
    }
    uv_timer_init(loop, &c->timer);
    uv_timer_init(loop, &c->ka_timer);
    c->timer.data = c->ka_timer.data = c;
    c->refs = 2;
    uv_timer_start(&c->timer, on_handshake_deadline, c->opts.handshake_timeout_ms, 0);
    *err = DVM_OK;
    return c;
}

static void record_peer(dvm_conn *c)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0)
        return;
    char ip[64] = "";
    unsigned port = 0;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        uv_ip4_name(a, ip, sizeof ip);
        port = ntohs(a->sin_port);
        snprintf(c->peer, sizeof c->peer, "%s:%u", ip, port);
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        uv_ip6_name(a, ip, sizeof ip);
        port = ntohs(a->sin6_port);
        snprintf(c->peer, sizeof c->peer, "[%s]:%u", ip, port);
    }
}

static void on_connect(uv_connect_t *req, int status)
{
    dvm_conn *c = req->data;
    if (c->closed)
        return;
    if (status < 0) {
        dvm_conn_abort(c, DVM_ERR_STATE, uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    record_peer(c);
    start_reading(c);
    if (c->opts.plaintext) {
        mark_open(c);
        return;
    }
    dvm_err e = dvm_secretstream_start(&c->ss, &c->pending);
    if (e) {
        dvm_conn_abort(c, e, "cannot start the handshake");
        return;
    }
    flush(c);
}

static void connect_to(dvm_conn *c, const struct sockaddr *addr)
{
    if (uv_tcp_init(c->loop, &c->tcp) != 0) {
        dvm_conn_abort(c, DVM_ERR_STATE, "cannot create a TCP handle");
        return;
    }
    c->tcp.data = c;
    c->tcp_inited = true;
    c->refs++;
    c->connect_req.data = c;
    int rc = uv_tcp_connect(&c->connect_req, &c->tcp, addr, on_connect);
    if (rc != 0)
        dvm_conn_abort(c, DVM_ERR_STATE, uv_strerror(rc));
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    dvm_conn *c = req->data;
    c->gai_pending = false;
    if (!c->closed) {
        if (status < 0 || !res)
            dvm_conn_abort(c, DVM_ERR_NOT_FOUND, status < 0 ? uv_strerror(status) : "no address");
        else
            connect_to(c, res->ai_addr);
    }
    if (res)
        uv_freeaddrinfo(res);
    unref(c);
}

dvm_conn *dvm_dial(uv_loop_t *loop, const char *host, uint16_t port, const dvm_noise_keypair *kp,
                   const dvm_conn_options *opts, const dvm_conn_callbacks *cb, void *ud, dvm_err *err)
{
    dvm_err dummy;
    if (!err)
        err = &dummy;
    if (!loop || !host || !kp || port == 0 || (opts && opts->plaintext && opts->pin_remote)) {
        *err = DVM_ERR_INVALID;
        return NULL;
    }
    dvm_conn *c = conn_new(loop, true, kp, opts, err);
    if (!c)
        return NULL;
    if (cb)
        c->cb = *cb;
    c->ud = ud;
    c->port = port;
    struct sockaddr_storage sa;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&sa) == 0 ||
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa) == 0) {
        connect_to(c, (const struct sockaddr *)&sa);
        return c;
    }
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%u", (unsigned)port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    c->gai.data = c;
    int rc = uv_getaddrinfo(loop, &c->gai, on_resolved, host, portstr, &hints);
    if (rc != 0) {
        dvm_conn_abort(c, DVM_ERR_NOT_FOUND, uv_strerror(rc));
        return c;
    }
    c->gai_pending = true;
    c->refs++;
    return c;
}

static void free_handle(uv_handle_t *h) { free(h); }

static void on_connection(uv_stream_t *server, int status)
{
    dvm_listener *l = server->data;
    if (status < 0)
        return;
    dvm_err e;
    dvm_conn *c = conn_new(l->loop, false, &l->kp, &l->opts, &e);
    if (!c) {
        /* Out of memory: accept and drop it, or libuv stops accepting. */
        uv_tcp_t *t = malloc(sizeof *t);
        if (t && uv_tcp_init(l->loop, t) == 0) {
            (void)uv_accept(server, (uv_stream_t *)t);
            uv_close((uv_handle_t *)t, free_handle);
        } else {
            free(t);
        }
        return;
    }
    c->opts.pin_remote = false;
    if (uv_tcp_init(l->loop, &c->tcp) != 0) {
        dvm_conn_abort(c, DVM_ERR_STATE, "cannot create a TCP handle");
        return;
    }
    c->tcp.data = c;
    c->tcp_inited = true;
    c->refs++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        dvm_conn_abort(c, DVM_ERR_STATE, "accept failed");
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    record_peer(c);
    if (dvm_secretstream_start(&c->ss, &c->pending) != DVM_OK) {
        dvm_conn_abort(c, DVM_ERR_STATE, "cannot start the handshake");
        return;
    }
    if (l->on_accept)
        l->on_accept(l, c, l->ud);
    if (c->closed)
        return;
    start_reading(c);
    if (c->opts.plaintext)
        mark_open(c);
}

dvm_listener *dvm_listen(uv_loop_t *loop, const char *host, uint16_t port, const dvm_noise_keypair *kp,
                         const dvm_conn_options *opts, dvm_listener_accept_cb on_accept, void *ud, dvm_err *err,
                         char *errbuf, size_t errlen)
{
    dvm_err dummy;
    if (!err)
        err = &dummy;
    struct sockaddr_storage sa;
    if (!loop || !host || !kp ||
        (uv_ip4_addr(host, port, (struct sockaddr_in *)&sa) != 0 &&
         uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa) != 0)) {
        if (errbuf)
            snprintf(errbuf, errlen, "listen address '%s' is not a numeric IPv4/IPv6 address", host ? host : "");
        *err = DVM_ERR_INVALID;
        return NULL;
    }
    dvm_listener *l = calloc(1, sizeof *l);
    if (!l) {
        *err = DVM_ERR_NOMEM;
        return NULL;
    }
    l->loop = loop;
    l->kp = *kp;
    if (opts)
        l->opts = *opts;
    l->on_accept = on_accept;
    l->ud = ud;
    uv_tcp_init(loop, &l->tcp);
    l->tcp.data = l;
    int rc = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, 128, on_connection);
    if (rc != 0) {
        if (errbuf)
            snprintf(errbuf, errlen, "cannot listen on %s:%u: %s", host, (unsigned)port, uv_strerror(rc));
        *err = DVM_ERR_STATE;
        dvm_listener_close(l);
        return NULL;
    }
    struct sockaddr_storage bound;
    int len = sizeof bound;
    uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&bound, &len);
    l->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    *err = DVM_OK;
    return l;
}

uint16_t dvm_listener_port(const dvm_listener *l) { return l->port; }

static void on_listener_closed(uv_handle_t *h)
{
    dvm_listener *l = h->data;
    sodium_memzero(&l->kp, sizeof l->kp);
    free(l);
}

void dvm_listener_close(dvm_listener *l)
{
    if (l && !uv_is_closing((uv_handle_t *)&l->tcp))
        uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
}

/* ---- accessors ----------------------------------------------------------- */

void dvm_conn_set_callbacks(dvm_conn *c, const dvm_conn_callbacks *cb, void *ud)
{
    if (cb)
        c->cb = *cb;
    else
        memset(&c->cb, 0, sizeof c->cb);
    c->ud = ud;
}

void dvm_conn_set_close_hook(dvm_conn *c, void (*hook)(dvm_conn *c, void *owner), void *owner)
{
    c->close_hook = hook;
    c->close_owner = owner;
}

bool dvm_conn_is_open(const dvm_conn *c) { return c->open && !c->closing; }
bool dvm_conn_is_initiator(const dvm_conn *c) { return c->initiator; }
const uint8_t *dvm_conn_remote_public_key(const dvm_conn *c)
{
    static const uint8_t none[DVM_NOISE_PUBLIC_KEY_BYTES];
    if (c->opts.plaintext)
        return c->open ? none : NULL;
    return dvm_secretstream_remote_public_key(&c->ss);
}
const uint8_t *dvm_conn_public_key(const dvm_conn *c) { return dvm_secretstream_public_key(&c->ss); }
const uint8_t *dvm_conn_handshake_hash(const dvm_conn *c) { return dvm_secretstream_handshake_hash(&c->ss); }
const char *dvm_conn_peer_address(const dvm_conn *c) { return c->peer; }

void dvm_conn_stats(const dvm_conn *c, uint64_t *msgs_in, uint64_t *msgs_out, uint64_t *bytes_in, uint64_t *bytes_out)
{
    if (msgs_in)
        *msgs_in = c->msgs_in;
    if (msgs_out)
        *msgs_out = c->msgs_out;
    if (bytes_in)
        *bytes_in = c->bytes_in;
    if (bytes_out)
        *bytes_out = c->bytes_out;
}
