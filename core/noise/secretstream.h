/* dvmstream — Hyperswarm SecretStream framing (pure, sans-I/O).
 *
 * Spec: @hyperswarm/secret-stream 6.x (the wire format its index.js and
 * lib/handshake.js produce), interoperable with it byte for byte:
 *   frame        = uint24le length || body (length 0 .. 2^24-1)
 *   1. handshake  Noise messages (noise.h; XX by default, or IK with the
 *                 responder's key known), empty prologue, empty payloads,
 *                 each in one frame
 *   2. header     one 56-byte frame: stream id (32) || secretstream header
 *                 (24), sent by each side as soon as its handshake is done.
 *                 stream id = BLAKE2b-256(key = handshake hash,
 *                 msg = NS_INITIATOR or NS_RESPONDER of the sender), where
 *                 NS_i = BLAKE2b-256(BLAKE2b-256("hyperswarm/secret-stream")
 *                 || byte i), i = 0 initiator, 1 responder
 *   3. messages   crypto_secretstream_xchacha20poly1305 (libsodium) with the
 *                 Noise split keys (tx pushes, rx pulls), TAG_MESSAGE, no
 *                 AD; one message per frame, body = 17 + plaintext bytes, so
 *                 a plaintext is at most 2^24-1-17 bytes. An empty plaintext
 *                 is a keep-alive.
 *
 * Usage: init, then start (the initiator's first handshake message goes
 * out), then feed every byte received from the peer to recv() at any split
 * point; bytes to write to the peer are appended to a caller dvm_buf;
 * decrypted messages and the handshake completion are delivered through
 * callbacks. send() appends one encrypted frame. Any bad frame (bad MAC,
 * bad length, bad header, garbage before the handshake completes) fails the
 * stream for good: recv returns the error and dvm_secretstream_error names
 * it. Callbacks must not free the stream. */
#ifndef DVM_NOISE_SECRETSTREAM_H
#define DVM_NOISE_SECRETSTREAM_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/rng.h"
#include "noise/noise.h"

#define DVM_SECRETSTREAM_LEN_BYTES 3
#define DVM_SECRETSTREAM_MAX_FRAME 0xFFFFFFu /* largest frame body (uint24) */
#define DVM_SECRETSTREAM_ABYTES 17u          /* crypto_secretstream ABYTES */
#define DVM_SECRETSTREAM_MAX_MESSAGE (DVM_SECRETSTREAM_MAX_FRAME - DVM_SECRETSTREAM_ABYTES)
#define DVM_SECRETSTREAM_HEADER_BYTES 56u /* stream id (32) + secretstream header (24) */
#define DVM_SECRETSTREAM_ID_BYTES 32u

/* Wire bytes one plaintext of `len` bytes takes: 3 + 17 + len. */
#define DVM_SECRETSTREAM_FRAME_SIZE(len) ((size_t)(len) + DVM_SECRETSTREAM_LEN_BYTES + DVM_SECRETSTREAM_ABYTES)

typedef struct dvm_secretstream_callbacks {
    /* The handshake completed: keys, handshake hash and remote public key
     * are available and send() works. Called once. May be NULL. */
    void (*on_handshake)(void *ctx);
    /* One decrypted message msg[0..len) (len may be 0: a keep-alive, unless
     * filter_empty is set). msg is valid only during the call. May be NULL. */
    void (*on_message)(void *ctx, const uint8_t *msg, size_t len);
} dvm_secretstream_callbacks;

typedef struct dvm_secretstream_options {
    dvm_noise_pattern pattern;         /* DVM_NOISE_XX (default) or DVM_NOISE_IK */
    const uint8_t *remote_public_key;  /* IK initiator: responder's static key */
    size_t max_message;                /* largest accepted plaintext; 0 = DVM_SECRETSTREAM_MAX_MESSAGE */
    bool filter_empty;                 /* drop empty (keep-alive) messages */
} dvm_secretstream_options;

enum dvm_secretstream_state {
    DVM_SS_HANDSHAKE = 0, /* Noise messages being exchanged */
    DVM_SS_AWAIT_HEADER,  /* handshake done, waiting for the peer's header */
    DVM_SS_OPEN,          /* messages flow both ways */
    DVM_SS_FAILED         /* a bad frame or API misuse ended the stream */
};

/* Fields are private; use the functions below. */
typedef struct dvm_secretstream {
    enum dvm_secretstream_state state;
    bool initiator;
    bool started;
    bool handshake_done; /* keys set; may send */
    dvm_noise_handshake hs;
    dvm_rng rng;
    dvm_secretstream_callbacks cb;
    void *ctx;
    size_t max_message;
    bool filter_empty;
    uint8_t public_key[DVM_NOISE_PUBLIC_KEY_BYTES];
    uint8_t remote_public_key[DVM_NOISE_PUBLIC_KEY_BYTES];
    uint8_t handshake_hash[DVM_NOISE_HASH_BYTES];
    uint8_t tx[DVM_NOISE_KEY_BYTES], rx[DVM_NOISE_KEY_BYTES];
    crypto_secretstream_xchacha20poly1305_state push;
    crypto_secretstream_xchacha20poly1305_state pull;
    /* frame reassembly */
    uint8_t lenbuf[3];
    unsigned lenhave;
    size_t frame_len;
    bool in_body;
    dvm_buf frame; /* partial frame body */
    dvm_buf plain; /* decryption output */
    dvm_err err;
    const char *reason;
    uint64_t messages_in, messages_out;
} dvm_secretstream;

/* Prepare a stream that runs its own Noise handshake. `s` is our static
 * Ed25519 key pair (copied), `rng` the source of ephemeral keys and of the
 * secretstream header (copied; its
 * ctx must outlive the stream), `opts` may be NULL (XX, defaults). Callbacks
 * (copied; may be NULL) receive `ctx`. Allocates nothing until data flows.
 * DVM_ERR_INVALID on bad arguments (IK initiator without a remote key). */
dvm_err dvm_secretstream_init(dvm_secretstream *ss, bool initiator, const dvm_noise_keypair *s,
                              const dvm_rng *rng, const dvm_secretstream_options *opts,
                              const dvm_secretstream_callbacks *cb, void *ctx);

/* Prepare a stream whose handshake was done elsewhere (HyperDHT's IK over
 * the DHT): tx/rx keys (32 bytes), handshake hash (64), our and the remote
 * public keys (32), `rng` for the secretstream header (copied). start()
 * then only sends our header. */
dvm_err dvm_secretstream_init_from_handshake(dvm_secretstream *ss, bool initiator, const uint8_t *tx,
                                             const uint8_t *rx, const uint8_t *handshake_hash,
                                             const uint8_t *public_key, const uint8_t *remote_public_key,
                                             const dvm_rng *rng, const dvm_secretstream_options *opts,
                                             const dvm_secretstream_callbacks *cb, void *ctx);

/* Begin: the initiator appends its first handshake frame to `out` (a
 * pre-handshaken stream appends its header and reports on_handshake).
 * Call exactly once, before recv(). DVM_ERR_STATE if called twice,
 * buffer errors from `out`. */
dvm_err dvm_secretstream_start(dvm_secretstream *ss, dvm_buf *out);

/* Feed data[0..len) received from the peer (any split). Handshake replies
 * and our header are appended to `out`; messages go to on_message.
 * Errors (the stream is then failed): DVM_ERR_PROTO (bad header, stream id
 * mismatch), DVM_ERR_TOO_LARGE (a frame over the limit for its phase),
 * DVM_ERR_INVALID (frame too short), DVM_ERR_CRYPTO (bad MAC, bad key),
 * DVM_ERR_NOMEM; DVM_ERR_STATE when already failed or not started. */
dvm_err dvm_secretstream_recv(dvm_secretstream *ss, const uint8_t *data, size_t len, dvm_buf *out);

/* Encrypt msg[0..len) (len may be 0: keep-alive) and append its frame to
 * `out`. DVM_ERR_STATE before the handshake completed or after failure,
 * DVM_ERR_TOO_LARGE when len > DVM_SECRETSTREAM_MAX_MESSAGE, buffer errors. */
dvm_err dvm_secretstream_send(dvm_secretstream *ss, const uint8_t *msg, size_t len, dvm_buf *out);

/* Same as send() into a caller buffer of exactly
 * DVM_SECRETSTREAM_FRAME_SIZE(len) bytes (no allocation). msg and out must
 * not overlap. Errors as send(). */
dvm_err dvm_secretstream_seal(dvm_secretstream *ss, const uint8_t *msg, size_t len, uint8_t *out);

/* True once the handshake completed (send works; remote key known). */
bool dvm_secretstream_is_ready(const dvm_secretstream *ss);

/* Current phase (enum dvm_secretstream_state). */
enum dvm_secretstream_state dvm_secretstream_state(const dvm_secretstream *ss);

/* Our / the remote static public key (32 bytes) and the handshake hash
 * (64 bytes); NULL before the handshake completed. */
const uint8_t *dvm_secretstream_public_key(const dvm_secretstream *ss);
const uint8_t *dvm_secretstream_remote_public_key(const dvm_secretstream *ss);
const uint8_t *dvm_secretstream_handshake_hash(const dvm_secretstream *ss);

/* Why the stream failed (static English text), or NULL while healthy. */
const char *dvm_secretstream_error(const dvm_secretstream *ss);

/* The 32-byte stream id a side sends in its header: BLAKE2b-256 keyed with
 * the handshake hash over the initiator's or responder's namespace. */
void dvm_secretstream_id(const uint8_t handshake_hash[DVM_NOISE_HASH_BYTES], bool initiator,
                         uint8_t out[DVM_SECRETSTREAM_ID_BYTES]);

/* Free buffers and erase keys. The stream must be re-initialised to reuse. */
void dvm_secretstream_free(dvm_secretstream *ss);

#endif
