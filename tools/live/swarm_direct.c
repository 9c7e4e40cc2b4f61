/* The "direct" swarm backend: explicit listen address and peer list. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "live/swarm.h"

#define DEFAULT_RETRY_MS 1000
#define DEFAULT_MAX_CONNECTIONS 1024

typedef struct direct direct;

typedef struct peer_slot {
    direct *d;
    dvm_peer_addr addr;
    char text[300]; /* "HOST:PORT" */
    unsigned attempts;
    bool timer_inited;
    bool active; /* dialing or connected */
    uv_timer_t timer;
} peer_slot;

struct direct {
    dvm_swarm base;
    dvm_conn_options conn_opts;
    unsigned max_attempts;
    unsigned max_connections;
    uint64_t retry_ms;
    bool has_listen;
    dvm_peer_addr listen_addr;
    peer_slot *peers;
    size_t n_peers;
    dvm_listener *listener;
    uint8_t server_topic[DVM_SWARM_TOPIC_BYTES];
    uint8_t client_topic[DVM_SWARM_TOPIC_BYTES];
    bool client_joined;
    dvm_conn **conns;
    size_t n_conns, cap_conns;
    int refs;
    bool destroyed;
};

static void unref(direct *d)
{
    if (--d->refs == 0 && d->destroyed) {
        free(d->conns);
        free(d->peers);
        sodium_memzero(&d->base.keypair, sizeof d->base.keypair);
        free(d);
    }
}

/* Every conn we made is tracked until it closes, so destroy can end it. */
static void conn_gone(dvm_conn *c, void *owner)
{
    direct *d = owner;
    for (size_t i = 0; i < d->n_conns; i++)
        if (d->conns[i] == c) {
            d->conns[i] = d->conns[--d->n_conns];
            break;
        }
    unref(d);
}

static bool track(direct *d, dvm_conn *c)
{
    if (d->n_conns == d->cap_conns) {
        size_t cap = d->cap_conns ? 2 * d->cap_conns : 16;
        dvm_conn **p = realloc(d->conns, cap * sizeof *p);
        if (!p)
            return false;
        d->conns = p;
        d->cap_conns = cap;
    }
    d->conns[d->n_conns++] = c;
    d->refs++;
    dvm_conn_set_close_hook(c, conn_gone, d);
    return true;
}

static void report(direct *d, dvm_conn *c, const uint8_t *topic)
{
    dvm_swarm_peer_info info = {
        .remote_public_key = dvm_conn_remote_public_key(c),
        .topic = topic,
        .initiator = dvm_conn_is_initiator(c),
        .address = dvm_conn_peer_address(c),
    };
    if (d->base.cb.on_connection)
        d->base.cb.on_connection(&d->base, c, &info, d->base.ud);
}

/* ---- server side ----------------------------------------------------------- */

static void accepted_open(dvm_conn *c, void *ud)
{
    direct *d = ud;
    report(d, c, d->server_topic);
}

static const dvm_conn_callbacks ACCEPTED_CBS = {accepted_open, NULL, NULL, NULL};

static void on_accept(dvm_listener *l, dvm_conn *c, void *ud)
{
    direct *d = ud;
    (void)l;
    if (d->destroyed || d->n_conns >= d->max_connections || !track(d, c)) {
        dvm_conn_abort(c, DVM_ERR_LIMIT, "too many connections");
        return;
    }
    dvm_conn_set_callbacks(c, &ACCEPTED_CBS, d);
}

/* ---- client side ----------------------------------------------------------- */

static void dial(peer_slot *s);

static void dialed_open(dvm_conn *c, void *ud)
{
    peer_slot *s = ud;
    s->attempts = 0;
    report(s->d, c, s->d->client_topic);
}

static void on_retry(uv_timer_t *t)
{
    peer_slot *s = t->data;
    if (!s->d->destroyed && s->d->client_joined)
        dial(s);
}

/* Reached only when the conn closes while still carrying our callbacks:
 * before the handshake completed, or when the user never took it over. */
static void dialed_close(dvm_conn *c, dvm_err err, const char *reason, void *ud)
{
    peer_slot *s = ud;
    direct *d = s->d;
    bool was_open = dvm_conn_remote_public_key(c) != NULL && err == DVM_OK;
    s->active = false;
    if (d->destroyed || was_open)
        return;
    s->attempts++;
    bool final = err == DVM_ERR_CRYPTO || s->attempts >= d->max_attempts || !d->client_joined;
    if (!final) {
        uv_timer_start(&s->timer, on_retry, d->retry_ms, 0);
        return;
    }
    if (d->base.cb.on_peer_error)
        d->base.cb.on_peer_error(&d->base, s->text, err, reason, d->base.ud);
}

static const dvm_conn_callbacks DIALED_CBS = {dialed_open, NULL, NULL, dialed_close};

static void dial(peer_slot *s)
{
    direct *d = s->d;
    dvm_conn_options o = d->conn_opts;
    o.pin_remote = s->addr.pinned;
    if (s->addr.pinned)
        memcpy(o.remote_public_key, s->addr.public_key, sizeof o.remote_public_key);
    dvm_err e;
    dvm_conn *c = dvm_dial(d->base.loop, s->addr.host, s->addr.port, &d->base.keypair, &o, &DIALED_CBS, s, &e);
    if (!c) {
        if (d->base.cb.on_peer_error)
            d->base.cb.on_peer_error(&d->base, s->text, e, "cannot dial", d->base.ud);
        return;
    }
    s->active = true;
    if (!track(d, c))
        dvm_conn_abort(c, DVM_ERR_NOMEM, "out of memory");
}

/* ---- ops ------------------------------------------------------------------- */

static dvm_err direct_join(dvm_swarm *sw, const uint8_t topic[DVM_SWARM_TOPIC_BYTES], unsigned roles)
{
    direct *d = (direct *)sw;
    if (d->destroyed)
        return DVM_ERR_STATE;
    char *why = d->base.last_error;
    size_t whylen = sizeof d->base.last_error;
    if ((roles & DVM_SWARM_SERVER) && !d->has_listen) {
        snprintf(why, whylen, "no listen address configured (--listen HOST:PORT)");
        return DVM_ERR_INVALID;
    }
    if ((roles & DVM_SWARM_CLIENT) && !d->n_peers) {
        snprintf(why, whylen, "no peers configured (--peer HOST:PORT)");
        return DVM_ERR_INVALID;
    }
    if (((roles & DVM_SWARM_SERVER) && d->listener) || ((roles & DVM_SWARM_CLIENT) && d->client_joined)) {
        snprintf(why, whylen, "already joined");
        return DVM_ERR_EXISTS;
    }
    if (roles & DVM_SWARM_SERVER) {
        dvm_err e;
        d->listener = dvm_listen(d->base.loop, d->listen_addr.host, d->listen_addr.port, &d->base.keypair,
                                 &d->conn_opts, on_accept, d, &e, why, whylen);
        if (!d->listener)
            return e;
        memcpy(d->server_topic, topic, DVM_SWARM_TOPIC_BYTES);
    }
    if (roles & DVM_SWARM_CLIENT) {
        memcpy(d->client_topic, topic, DVM_SWARM_TOPIC_BYTES);
        d->client_joined = true;
        for (size_t i = 0; i < d->n_peers; i++) {
            peer_slot *s = &d->peers[i];
            if (!s->timer_inited) {
                uv_timer_init(d->base.loop, &s->timer);
                s->timer.data = s;
                s->timer_inited = true;
                d->refs++;
            }
            s->attempts = 0;
            if (!s->active)
                dial(s);
        }
    }
    return DVM_OK;
}

static dvm_err direct_leave(dvm_swarm *sw, const uint8_t topic[DVM_SWARM_TOPIC_BYTES])
{
    direct *d = (direct *)sw;
    bool any = false;
    if (d->listener && memcmp(topic, d->server_topic, DVM_SWARM_TOPIC_BYTES) == 0) {
        dvm_listener_close(d->listener);
        d->listener = NULL;
        any = true;
    }
    if (d->client_joined && memcmp(topic, d->client_topic, DVM_SWARM_TOPIC_BYTES) == 0) {
        d->client_joined = false;
        for (size_t i = 0; i < d->n_peers; i++)
            if (d->peers[i].timer_inited)
                uv_timer_stop(&d->peers[i].timer);
        any = true;
    }
    return any ? DVM_OK : DVM_ERR_NOT_FOUND;
}

static dvm_err direct_local_address(const dvm_swarm *sw, char *out, size_t cap)
{
    const direct *d = (const direct *)sw;
    if (!d->listener)
        return DVM_ERR_STATE;
    bool v6 = strchr(d->listen_addr.host, ':') != NULL;
    int n = snprintf(out, cap, v6 ? "[%s]:%u" : "%s:%u", d->listen_addr.host,
                     (unsigned)dvm_listener_port(d->listener));
    return n < 0 || (size_t)n >= cap ? DVM_ERR_TOO_LARGE : DVM_OK;
}

static void slot_timer_closed(uv_handle_t *h)
{
    peer_slot *s = h->data;
    unref(s->d);
}

static void direct_destroy(dvm_swarm *sw)
{
    direct *d = (direct *)sw;
    if (d->destroyed)
        return;
    d->destroyed = true;
    d->client_joined = false;
    if (d->listener) {
        dvm_listener_close(d->listener);
        d->listener = NULL;
    }
    for (size_t i = 0; i < d->n_peers; i++)
        if (d->peers[i].timer_inited)
            uv_close((uv_handle_t *)&d->peers[i].timer, slot_timer_closed);
    for (size_t i = 0; i < d->n_conns; i++)
        dvm_conn_abort(d->conns[i], DVM_OK, "swarm destroyed");
    unref(d); /* the creation reference */
}

static const dvm_swarm_ops DIRECT_OPS = {"direct", direct_join, direct_leave, direct_local_address, direct_destroy};

dvm_swarm *dvm_swarm_direct_new(uv_loop_t *loop, const dvm_noise_keypair *kp, const dvm_swarm_direct_config *cfg,
                                const dvm_swarm_callbacks *cb, void *ud, dvm_err *err, char *errbuf, size_t errlen)
{
    dvm_err dummy;
    if (!err)
        err = &dummy;
    if (!loop || !kp || !cfg) {
        *err = DVM_ERR_INVALID;
        return NULL;
    }
    direct *d = calloc(1, sizeof *d);
    if (!d) {
        *err = DVM_ERR_NOMEM;
        return NULL;
    }
    d->base.ops = &DIRECT_OPS;
    d->base.loop = loop;
    d->base.keypair = *kp;
    if (cb)
        d->base.cb = *cb;
    d->base.ud = ud;
    d->conn_opts = cfg->conn;
    d->max_attempts = cfg->dial_attempts ? cfg->dial_attempts : 1;
    d->max_connections = cfg->max_connections ? cfg->max_connections : DEFAULT_MAX_CONNECTIONS;
    d->retry_ms = cfg->dial_retry_ms ? cfg->dial_retry_ms : DEFAULT_RETRY_MS;
    d->refs = 1;
    dvm_err e = DVM_OK;
    if (cfg->listen) {
        e = dvm_peer_addr_parse(cfg->listen, true, &d->listen_addr, errbuf, errlen);
        if (!e && d->listen_addr.pinned) {
            if (errbuf)
                snprintf(errbuf, errlen, "a listen address takes no @PUBKEY");
            e = DVM_ERR_INVALID;
        }
        d->has_listen = e == DVM_OK;
    }
    if (!e && cfg->peers) {
        dvm_peer_addr tmp[DVM_SWARM_MAX_PEERS];
        size_t n = 0;
        e = dvm_peer_addr_parse_list(cfg->peers, tmp, DVM_SWARM_MAX_PEERS, &n, errbuf, errlen);
        if (!e) {
            d->peers = calloc(n, sizeof *d->peers);
            if (!d->peers)
                e = DVM_ERR_NOMEM;
        }
        for (size_t i = 0; !e && i < n; i++) {
            peer_slot *s = &d->peers[i];
            s->d = d;
            s->addr = tmp[i];
            bool v6 = strchr(tmp[i].host, ':') != NULL;
            snprintf(s->text, sizeof s->text, v6 ? "[%s]:%u" : "%s:%u", tmp[i].host, (unsigned)tmp[i].port);
            d->n_peers = i + 1;
        }
    }
    if (e) {
        free(d->peers);
        free(d);
        *err = e;
        return NULL;
    }
    *err = DVM_OK;
    return &d->base;
}
