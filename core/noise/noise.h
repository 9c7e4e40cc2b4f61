/* dvmstream — Noise handshakes as Hyperswarm does them (pure, sans-I/O).
 *
 * Spec: the Noise Protocol Framework (revision 34) with the choices of the
 * JavaScript `noise-handshake` package and its `noise-curve-ed` curve, which
 * @hyperswarm/secret-stream and hyperdht use:
 *   - protocol name  "Noise_<XX|IK>_Ed25519_ChaChaPoly_BLAKE2b"
 *   - DH             Ed25519 points: the local scalar is the clamped first
 *                    half of SHA-512(seed) (the libsodium Ed25519 secret key
 *                    stores seed||public key), the shared secret is
 *                    crypto_scalarmult_ed25519_noclamp(scalar, remote point);
 *                    static and ephemeral keys are Ed25519 key pairs.
 *   - cipher         ChaCha20-Poly1305 (IETF), nonce = 4 zero bytes then the
 *                    64-bit little-endian counter, AD = handshake hash h
 *   - hash           BLAKE2b-512; HKDF (RFC 5869) over HMAC-BLAKE2b
 *                    (block 128 bytes), empty info
 *   - messages       at most 65535 bytes (Noise's limit)
 * Patterns: XX (standalone SecretStream) and IK (HyperDHT connect; the
 * responder's static key is the pre-message). No PSK.
 *
 * Randomness comes in as a dvm_rng (ephemeral key seeds); no I/O. */
#ifndef DVM_NOISE_NOISE_H
#define DVM_NOISE_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/rng.h"

#define DVM_NOISE_PUBLIC_KEY_BYTES 32
#define DVM_NOISE_SECRET_KEY_BYTES 64 /* libsodium Ed25519: seed || public key */
#define DVM_NOISE_SEED_BYTES 32
#define DVM_NOISE_HASH_BYTES 64 /* BLAKE2b-512 */
#define DVM_NOISE_KEY_BYTES 32  /* ChaCha20-Poly1305 / transport keys */
#define DVM_NOISE_MAC_BYTES 16
#define DVM_NOISE_MAX_MESSAGE 65535u

typedef enum dvm_noise_pattern {
    DVM_NOISE_XX = 0, /* -> e; <- e, ee, s, es; -> s, se */
    DVM_NOISE_IK = 1  /* <- s ...; -> e, es, s, ss; <- e, ee, se */
} dvm_noise_pattern;

/* An Ed25519 key pair in libsodium's layout. */
typedef struct dvm_noise_keypair {
    uint8_t public_key[DVM_NOISE_PUBLIC_KEY_BYTES];
    uint8_t secret_key[DVM_NOISE_SECRET_KEY_BYTES];
} dvm_noise_keypair;

/* Handshake state (Noise HandshakeState + SymmetricState + CipherState).
 * Plain data, no heap: copy-free init, dvm_noise_wipe to erase secrets.
 * Fields are private; use the functions below. */
typedef struct dvm_noise_handshake {
    dvm_noise_pattern pattern;
    bool initiator;
    bool complete;
    bool failed;
    unsigned step; /* index of the next handshake message */
    uint8_t h[DVM_NOISE_HASH_BYTES];
    uint8_t ck[DVM_NOISE_HASH_BYTES];
    uint8_t k[DVM_NOISE_KEY_BYTES];
    bool has_k;
    uint64_t n;
    dvm_noise_keypair s, e;
    bool has_e;
    uint8_t re[DVM_NOISE_PUBLIC_KEY_BYTES];
    uint8_t rs[DVM_NOISE_PUBLIC_KEY_BYTES];
    bool has_re, has_rs;
    /* results, valid once complete */
    uint8_t tx[DVM_NOISE_KEY_BYTES];
    uint8_t rx[DVM_NOISE_KEY_BYTES];
    uint8_t hash[DVM_NOISE_HASH_BYTES];
} dvm_noise_handshake;

/* Derive the Ed25519 key pair of a 32-byte seed (crypto_sign_seed_keypair).
 * Always DVM_OK. */
dvm_err dvm_noise_keypair_from_seed(dvm_noise_keypair *kp, const uint8_t seed[DVM_NOISE_SEED_BYTES]);

/* A fresh key pair from 32 bytes of `rng`. Always DVM_OK. */
dvm_err dvm_noise_keypair_generate(dvm_noise_keypair *kp, const dvm_rng *rng);

/* The Noise DH of the spec above: out = clamp(SHA-512(local seed)) * remote.
 * DVM_ERR_CRYPTO when `remote` is not a canonical, prime-order-subgroup point
 * or the result is the identity (libsodium rejects it); out is then zeroed. */
dvm_err dvm_noise_dh(uint8_t out[DVM_NOISE_PUBLIC_KEY_BYTES], const dvm_noise_keypair *local,
                     const uint8_t remote[DVM_NOISE_PUBLIC_KEY_BYTES]);

/* Start a handshake. `s` is our static key pair (copied). `prologue` (may be
 * NULL when prologue_len is 0) is mixed into h; secret-stream uses an empty
 * prologue, hyperdht a 32-byte namespace. For IK the initiator must pass the
 * responder's static public key in `remote_static` (the responder passes
 * NULL); XX ignores it. DVM_ERR_INVALID on a missing/extra argument. */
dvm_err dvm_noise_init(dvm_noise_handshake *hs, dvm_noise_pattern pattern, bool initiator,
                       const dvm_noise_keypair *s, const uint8_t *prologue, size_t prologue_len,
                       const uint8_t *remote_static);

/* True when it is our turn to write the next handshake message. */
bool dvm_noise_wants_write(const dvm_noise_handshake *hs);

/* True once the last message was written or read; tx/rx/hash/remote key are
 * then available. */
bool dvm_noise_is_complete(const dvm_noise_handshake *hs);

/* Write our next handshake message carrying `payload` (may be empty) into
 * out[0..out_cap); *out_len receives its length (the message is at most
 * DVM_NOISE_MAX_MESSAGE bytes). Ephemeral keys are drawn from `rng`.
 * Errors: DVM_ERR_STATE (not our turn, complete or failed),
 * DVM_ERR_TOO_LARGE (message over 65535 bytes or over out_cap: nothing is
 * consumed and the state is unchanged), DVM_ERR_CRYPTO (a DH failed; the
 * handshake is then failed for good). */
dvm_err dvm_noise_write_message(dvm_noise_handshake *hs, const dvm_rng *rng, const uint8_t *payload,
                                size_t payload_len, uint8_t *out, size_t out_cap, size_t *out_len);

/* Read the peer's next handshake message msg[0..len). Its decrypted payload
 * goes to payload_out[0..payload_cap) with its length in *payload_len;
 * payload_out may be NULL to authenticate and discard the payload.
 * Errors (the handshake is failed for good after any of them):
 * DVM_ERR_STATE (not the peer's turn, complete or failed), DVM_ERR_TOO_LARGE
 * (len > 65535 or payload over payload_cap), DVM_ERR_INVALID (message too
 * short), DVM_ERR_CRYPTO (bad MAC, bad point), DVM_ERR_NOMEM. */
dvm_err dvm_noise_read_message(dvm_noise_handshake *hs, const uint8_t *msg, size_t len,
                               uint8_t *payload_out, size_t payload_cap, size_t *payload_len);

/* After completion: our transmit and receive keys (32 bytes each; the
 * initiator's tx is the first HKDF output of Split()), the handshake hash
 * (64 bytes) and the remote static public key (32 bytes). NULL before. */
const uint8_t *dvm_noise_tx(const dvm_noise_handshake *hs);
const uint8_t *dvm_noise_rx(const dvm_noise_handshake *hs);
const uint8_t *dvm_noise_handshake_hash(const dvm_noise_handshake *hs);
const uint8_t *dvm_noise_remote_static(const dvm_noise_handshake *hs);

/* Erase every secret in hs (sodium_memzero); hs must be re-initialised
 * before reuse. */
void dvm_noise_wipe(dvm_noise_handshake *hs);

#endif
