/* dvmstream — encrypted TCP connections on a libuv loop (Hyperswarm
 * SecretStream over TCP, core/noise/secretstream.h).
 *
 * A dvm_conn is one TCP connection wrapped in SecretStream (Noise XX, Ed25519
 * static keys), interoperable with @hyperswarm/secret-stream over a plain
 * socket. Message boundaries are preserved: each dvm_conn_send() arrives as
 * one on_message() on the other side (and one 'data' event in JavaScript).
 *
 * Lifecycle: dvm_dial() or a dvm_listener's on_accept hands out a conn in
 * the handshaking phase; on_open fires once the handshake completed (and the
 * pinned remote key, if any, matched); on_message per message; on_close
 * fires exactly once, after which the conn is freed. dvm_conn_close() ends a
 * conn gracefully (queued messages are flushed first); any protocol error
 * (bad MAC, bad frame, handshake failure, timeout, peer reset) closes it
 * with an error code and reason.
 *
 * Backpressure: dvm_conn_send() queues; when the write queue holds more than
 * write_high_water bytes, dvm_conn_writable() turns false and the producer
 * should stop; on_drain fires when the queue falls to write_low_water. A
 * hard cap (4 x high water + one largest message) refuses further sends with
 * DVM_ERR_LIMIT so a producer that ignores the signal cannot exhaust memory.
 * Read side: dvm_conn_pause_reading()/dvm_conn_resume_reading().
 *
 * Single-threaded: every function must be called on the loop's thread. */
#ifndef DVM_LIVE_CONN_H
#define DVM_LIVE_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/err.h"
#include "noise/noise.h"

typedef struct dvm_conn dvm_conn;
typedef struct dvm_listener dvm_listener;

typedef struct dvm_conn_callbacks {
    /* Handshake done: remote key known, dvm_conn_send() works. */
    void (*on_open)(dvm_conn *c, void *ud);
    /* One message msg[0..len), valid during the call only. */
    void (*on_message)(dvm_conn *c, const uint8_t *msg, size_t len, void *ud);
    /* The write queue fell to write_low_water after being over high water. */
    void (*on_drain)(dvm_conn *c, void *ud);
    /* Exactly once. err == DVM_OK for a clean close (ours, or the peer's
     * end after the handshake); otherwise DVM_ERR_CRYPTO (bad MAC, failed
     * handshake, pinned key mismatch), DVM_ERR_PROTO / DVM_ERR_INVALID /
     * DVM_ERR_TOO_LARGE (bad frame or header, peer left mid-handshake),
     * DVM_ERR_LIMIT (a timeout), DVM_ERR_STATE (socket error: refused,
     * reset...), DVM_ERR_NOT_FOUND (name not resolved). reason is static
     * English text. The conn is freed right after this returns. */
    void (*on_close)(dvm_conn *c, dvm_err err, const char *reason, void *ud);
} dvm_conn_callbacks;

typedef struct dvm_conn_options {
    uint64_t handshake_timeout_ms; /* TCP connect + Noise handshake; 0 = 10000
                                      (on_close: DVM_ERR_LIMIT "handshake timed out") */
    uint64_t idle_timeout_ms;      /* close when nothing arrives this long; 0 = never
                                      (DVM_ERR_LIMIT "idle timeout: nothing received") */
    uint64_t keepalive_ms;         /* send an empty message when nothing was sent this long
                                      (and drop received empty messages); 0 = off */
    size_t write_high_water;       /* bytes; 0 = 1 MiB */
    size_t write_low_water;        /* bytes; 0 = high water / 4 */
    size_t max_message;            /* largest accepted message; 0 = 2^24-1-17 */
    bool pin_remote;               /* dialed conns: close with DVM_ERR_CRYPTO before on_open
                                      unless the peer's static key is remote_public_key */
    uint8_t remote_public_key[DVM_NOISE_PUBLIC_KEY_BYTES];
    bool plaintext;                /* DEBUGGING ONLY: no Noise handshake, no
                                      encryption, no authentication. Bytes go
                                      on the wire as given (NDJSON in the
                                      clear, so tcpdump/tshark and
                                      pcap2corpus can read a session) and
                                      on_message receives the bytes of each
                                      TCP read (not message boundaries: feed
                                      them to a framer). The conn opens as
                                      soon as TCP connects; the remote public
                                      key reads as 32 zero bytes; pinning is
                                      impossible (pin_remote is refused with
                                      DVM_ERR_INVALID). Both ends must agree. */
} dvm_conn_options;

/* Largest SecretStream message the agent and customer accept (bytes): a
 * message carries one NDJSON line or the lines of one loop turn batched up
 * to 64 KiB, and lines are limited to 1 MiB (wire/frame.h), so 2 MiB leaves
 * room and bounds per-connection buffering. */
#define DVM_LIVE_MAX_MESSAGE ((size_t)2 << 20)

/* Keep-alive interval of the agent's and customer's connections (ms): an
 * empty SecretStream message when nothing was sent this long, as HyperDHT
 * connections do by default (connectionKeepAlive 5000), so an idle timeout
 * on the other end only fires on a peer that is really gone or silent. */
#define DVM_LIVE_KEEPALIVE_MS 5000

/* Fill opts with the defaults (all zero = defaults; no pinning). */
void dvm_conn_options_default(dvm_conn_options *opts);

/* Dial host:port (numeric IPv4/IPv6 or a name resolved with getaddrinfo)
 * as the SecretStream initiator with static key pair `kp` (copied).
 * Returns the conn (never NULL unless out of memory or bad arguments, then
 * *err is set); failures to connect are reported through on_close. */
dvm_conn *dvm_dial(uv_loop_t *loop, const char *host, uint16_t port, const dvm_noise_keypair *kp,
                   const dvm_conn_options *opts, const dvm_conn_callbacks *cb, void *ud, dvm_err *err);

/* Called for each accepted TCP connection, before its handshake. Set the
 * conn's callbacks here (dvm_conn_set_callbacks): a conn without callbacks
 * runs its handshake, drops its messages and is freed silently when it
 * closes. dvm_conn_abort() here refuses the connection. */
typedef void (*dvm_listener_accept_cb)(dvm_listener *l, dvm_conn *c, void *ud);

/* Listen on host:port (numeric address; port 0 = any, read it back with
 * dvm_listener_port). Accepted conns are SecretStream responders with key
 * pair `kp` and options `opts` (pinning is ignored for accepted conns).
 * NULL with *err (DVM_ERR_INVALID bad address, DVM_ERR_STATE bind/listen
 * failed: reason in errbuf) on failure. */
dvm_listener *dvm_listen(uv_loop_t *loop, const char *host, uint16_t port, const dvm_noise_keypair *kp,
                         const dvm_conn_options *opts, dvm_listener_accept_cb on_accept, void *ud, dvm_err *err,
                         char *errbuf, size_t errlen);

/* The bound port. */
uint16_t dvm_listener_port(const dvm_listener *l);

/* Stop listening; the listener is freed once libuv closed it. Conns already
 * accepted live on. */
void dvm_listener_close(dvm_listener *l);

/* Replace the callbacks and their user data. */
void dvm_conn_set_callbacks(dvm_conn *c, const dvm_conn_callbacks *cb, void *ud);

/* Queue msg[0..len) (len <= 2^24-1-17; 0 is allowed) for sending.
 * DVM_ERR_STATE before on_open or once closing, DVM_ERR_TOO_LARGE over the
 * message limit, DVM_ERR_LIMIT when the queue is at its hard cap (nothing
 * queued), DVM_ERR_NOMEM. */
dvm_err dvm_conn_send(dvm_conn *c, const uint8_t *msg, size_t len);

/* False while the write queue is over write_high_water: stop producing and
 * wait for on_drain. */
bool dvm_conn_writable(const dvm_conn *c);

/* Bytes queued for the socket (encrypted frames not yet written). */
size_t dvm_conn_queued_bytes(const dvm_conn *c);

/* Stop / resume reading from the socket (read-side backpressure). */
void dvm_conn_pause_reading(dvm_conn *c);
void dvm_conn_resume_reading(dvm_conn *c);

/* Close gracefully (like a stream's end()): no more sends; queued messages
 * are written, our side is shut down (FIN), and messages the peer still
 * sends before its own end are delivered; on_close(DVM_OK, "closed") fires
 * when the peer ended too, or 5 s after our FIN at the latest (still
 * DVM_OK; DVM_ERR_LIMIT if our data could not be written by then).
 * When the peer ends first, the conn does the same by itself: on_close
 * reason "peer closed the connection". Idempotent. */
void dvm_conn_close(dvm_conn *c);

/* Close now with an error code and static reason (on_close gets them). */
void dvm_conn_abort(dvm_conn *c, dvm_err err, const char *reason);

/* True once on_open fired and before closing. */
bool dvm_conn_is_open(const dvm_conn *c);
bool dvm_conn_is_initiator(const dvm_conn *c);

/* Static keys (32 bytes) and handshake hash (64); NULL before on_open. */
const uint8_t *dvm_conn_remote_public_key(const dvm_conn *c);
const uint8_t *dvm_conn_public_key(const dvm_conn *c);
const uint8_t *dvm_conn_handshake_hash(const dvm_conn *c);

/* "HOST:PORT" of the peer (numeric), or "" when unknown. */
const char *dvm_conn_peer_address(const dvm_conn *c);

/* Messages and bytes (wire) counted in each direction. */
void dvm_conn_stats(const dvm_conn *c, uint64_t *msgs_in, uint64_t *msgs_out, uint64_t *bytes_in,
                    uint64_t *bytes_out);

/* Internal hook for owners (the swarm): called just before on_close. */
void dvm_conn_set_close_hook(dvm_conn *c, void (*hook)(dvm_conn *c, void *owner), void *owner);

/* The libuv-facing rng: libsodium randombytes_buf (for dvm_rng users). */
void dvm_live_rng_fill(void *ctx, uint8_t *buf, size_t len);

#endif
