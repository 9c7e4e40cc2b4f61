/* dvmstream — the swarm adapter: how the live agent and customer find and
 * reach peers, independent of the discovery mechanism.
 *
 * Shape (Hyperswarm's): join(topic, server|client); every connection that
 * completes its SecretStream handshake is reported with the remote public
 * key; the caller then sends/receives/closes through the dvm_conn API
 * (conn.h). A backend is a vtable (dvm_swarm_ops); callers only use the
 * functions below, so the HyperDHT backend of the next stage slots in
 * without changing them.
 *
 * Backends:
 *   "direct"  (dvm_swarm_direct_new) no discovery: a server listens on a
 *             configured HOST:PORT, a client dials a configured list of
 *             HOST:PORT[@PUBKEYHEX] peers; a peer pinned with @PUBKEYHEX
 *             whose static key differs is rejected (the connection is
 *             closed and on_peer_error reports it). The topic is recorded
 *             but not sent anywhere.
 *   "hyperdht" (next stage) announce/lookup on the DHT, UDX + holepunching.
 *
 * Lifetime: dvm_swarm_destroy() closes the listener and every connection
 * (each gets on_close) and frees the swarm once libuv released its handles;
 * keep running the loop until it returns. Single-threaded (loop thread).
 *
 * Typical use (a provider; a customer passes .peers and DVM_SWARM_CLIENT):
 *
 *     dvm_noise_keypair kp;                      // live/identity.h
 *     dvm_identity_load_or_create(path, &kp, NULL, why, sizeof why);
 *     dvm_swarm_direct_config cfg = {.listen = "127.0.0.1:7000"};
 *     cfg.conn.keepalive_ms = 5000;              // as hyperswarm; filters empties
 *     dvm_swarm_callbacks cbs = {on_connection, on_peer_error};
 *     dvm_swarm *sw = dvm_swarm_direct_new(loop, &kp, &cfg, &cbs, app, &err, why, sizeof why);
 *     uint8_t topic[32]; dvm_topic(5100, topic); // wire/topic.h
 *     dvm_swarm_join(sw, topic, DVM_SWARM_SERVER);
 *
 *     static void on_connection(dvm_swarm *sw, dvm_conn *c, const dvm_swarm_peer_info *info, void *app) {
 *         session *s = session_new(app, info->remote_public_key);
 *         dvm_conn_set_callbacks(c, &SESSION_CBS, s);  // on_message / on_drain / on_close
 *     }
 *     // sending: dvm_conn_send(c, line, len); stop producing while
 *     // !dvm_conn_writable(c) and resume in on_drain; end with dvm_conn_close(c);
 *     // free the session in on_close (always called once). */
#ifndef DVM_LIVE_SWARM_H
#define DVM_LIVE_SWARM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/err.h"
#include "live/conn.h"
#include "noise/noise.h"

#define DVM_SWARM_TOPIC_BYTES 32
#define DVM_SWARM_MAX_PEERS 64

enum dvm_swarm_role { DVM_SWARM_SERVER = 1, DVM_SWARM_CLIENT = 2 };

typedef struct dvm_swarm dvm_swarm;

/* What is known about a new connection. Pointers valid during the call. */
typedef struct dvm_swarm_peer_info {
    const uint8_t *remote_public_key; /* 32 bytes */
    const uint8_t *topic;             /* 32 bytes: the topic this connection serves */
    bool initiator;                   /* we dialed (client side) */
    const char *address;              /* "HOST:PORT" */
} dvm_swarm_peer_info;

typedef struct dvm_swarm_callbacks {
    /* A connection completed its handshake (pinned keys checked). Call
     * dvm_conn_set_callbacks() here to receive its messages and close; the
     * swarm keeps no other claim on it (dvm_conn_close ends it). */
    void (*on_connection)(dvm_swarm *sw, dvm_conn *conn, const dvm_swarm_peer_info *info, void *ud);
    /* A configured peer could not be reached or was rejected, after any
     * retries: `peer` is its "HOST:PORT" text, reason static English. */
    void (*on_peer_error)(dvm_swarm *sw, const char *peer, dvm_err err, const char *reason, void *ud);
} dvm_swarm_callbacks;

/* The backend vtable. */
typedef struct dvm_swarm_ops {
    const char *name;
    dvm_err (*join)(dvm_swarm *sw, const uint8_t topic[DVM_SWARM_TOPIC_BYTES], unsigned roles);
    dvm_err (*leave)(dvm_swarm *sw, const uint8_t topic[DVM_SWARM_TOPIC_BYTES]);
    /* "HOST:PORT" we listen on, or DVM_ERR_STATE when not listening. */
    dvm_err (*local_address)(const dvm_swarm *sw, char *out, size_t cap);
    void (*destroy)(dvm_swarm *sw);
} dvm_swarm_ops;

/* Common head of every backend's state. */
struct dvm_swarm {
    const dvm_swarm_ops *ops;
    uv_loop_t *loop;
    dvm_noise_keypair keypair;
    dvm_swarm_callbacks cb;
    void *ud;
    char last_error[256]; /* why the last join failed ("" if none) */
};

/* Join `topic` as a server (accept connections), a client (connect to
 * peers), or both (roles = DVM_SWARM_SERVER | DVM_SWARM_CLIENT).
 * DVM_ERR_INVALID when the backend lacks what the role needs (direct: no
 * listen address for a server, no peers for a client), DVM_ERR_STATE when
 * listening failed, DVM_ERR_EXISTS when already joined with that role. */
dvm_err dvm_swarm_join(dvm_swarm *sw, const uint8_t topic[DVM_SWARM_TOPIC_BYTES], unsigned roles);

/* Why the last dvm_swarm_join failed, in English ("" if it did not). */
const char *dvm_swarm_last_error(const dvm_swarm *sw);

/* Stop serving/looking up `topic`; open connections stay open. */
dvm_err dvm_swarm_leave(dvm_swarm *sw, const uint8_t topic[DVM_SWARM_TOPIC_BYTES]);

/* Our listening address (for port 0 configurations). */
dvm_err dvm_swarm_local_address(const dvm_swarm *sw, char *out, size_t cap);

/* The backend's name ("direct"). */
const char *dvm_swarm_backend(const dvm_swarm *sw);

/* Close everything and free the swarm (asynchronously; see above). */
void dvm_swarm_destroy(dvm_swarm *sw);

/* ---- the direct backend ------------------------------------------------- */

/* One configured peer: HOST:PORT[@PUBKEYHEX]. */
typedef struct dvm_peer_addr {
    char host[256];
    uint16_t port;
    bool pinned;
    uint8_t public_key[DVM_NOISE_PUBLIC_KEY_BYTES];
} dvm_peer_addr;

/* Parse "HOST:PORT" or "[V6]:PORT", optionally followed by "@" and 64 hex
 * characters. allow_port0 accepts port 0 (listen addresses). DVM_ERR_INVALID
 * with a reason in errbuf on anything else. */
dvm_err dvm_peer_addr_parse(const char *s, bool allow_port0, dvm_peer_addr *out, char *errbuf, size_t errlen);

/* Parse a comma-separated list into out[0..max); *n receives the count.
 * DVM_ERR_LIMIT over max entries, DVM_ERR_INVALID on a bad entry or empty
 * list. */
dvm_err dvm_peer_addr_parse_list(const char *s, dvm_peer_addr *out, size_t max, size_t *n, char *errbuf,
                                 size_t errlen);

typedef struct dvm_swarm_direct_config {
    const char *listen;             /* "HOST:PORT" for servers, or NULL */
    const char *peers;              /* "HOST:PORT[@HEX][,...]" for clients, or NULL */
    dvm_conn_options conn;          /* timeouts, backpressure, limits for every conn */
    unsigned max_connections;       /* accepted + dialed conns alive at once; 0 = 1024;
                                       accepted conns beyond it are closed at once */
    unsigned dial_attempts;         /* per peer; 0 = 1 */
    uint64_t dial_retry_ms;         /* delay between attempts; 0 = 1000 */
} dvm_swarm_direct_config;

/* Create a direct swarm with static key pair `kp` (copied). Addresses are
 * parsed now: NULL with *err = DVM_ERR_INVALID and a reason in errbuf on a
 * bad address. */
dvm_swarm *dvm_swarm_direct_new(uv_loop_t *loop, const dvm_noise_keypair *kp, const dvm_swarm_direct_config *cfg,
                                const dvm_swarm_callbacks *cb, void *ud, dvm_err *err, char *errbuf, size_t errlen);

#endif
