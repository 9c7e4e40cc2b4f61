/* dvmstream — Cashu curve cryptography: BDHKE (NUT-00) and DLEQ (NUT-12).
 *
 * Points are SEC1 compressed (33 bytes), scalars 32-byte big-endian, as on
 * the wire. All curve arithmetic is libsecp256k1's public API; SHA-256 and
 * HMAC-SHA256 are libsodium's. Nothing here draws randomness except the
 * *_random helpers, which take a dvm_rng (core/common/rng.h).
 *
 * A dvm_cashu_ctx owns a libsecp256k1 context. Create one per owner (mint,
 * wallet, policy, test); once created, every function here only reads it,
 * so one context may be shared by threads. */
#ifndef DVM_CASHU_CRYPTO_H
#define DVM_CASHU_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cashu/proof.h"
#include "common/err.h"
#include "common/rng.h"

typedef struct dvm_cashu_ctx dvm_cashu_ctx;

/* NUT-00 BlindedMessage (an "output"): amount, keyset id, B_. */
typedef struct dvm_blinded_message {
    uint64_t amount;                /* sats, a power of two */
    char id[DVM_KEYSET_ID_MAX + 1]; /* keyset id */
    uint8_t B_[DVM_POINT_BYTES];
} dvm_blinded_message;

/* NUT-00 BlindSignature (a "promise"), with the NUT-12 dleq (e, s; no r). */
typedef struct dvm_blind_signature {
    uint64_t amount;
    char id[DVM_KEYSET_ID_MAX + 1];
    uint8_t C_[DVM_POINT_BYTES];
    bool has_dleq;
    dvm_dleq dleq;
} dvm_blind_signature;

/* NUT-00: the hash_to_curve counter loop gives up after this many tries
 * (each try succeeds with probability ~1/2, so 2^-65536 never happens). */
#define DVM_HASH_TO_CURVE_MAX_TRIES 65536u
/* NUT-12: deterministic nonce counter bound ("max 256 tries"). */
#define DVM_DLEQ_NONCE_MAX_TRIES 256u

/* Create a context. `rng` may be NULL; if given, 32 bytes from it blind the
 * context's precomputation (side-channel hardening, no effect on results).
 * DVM_ERR_NOMEM if allocation fails. Free with dvm_cashu_ctx_free. */
dvm_err dvm_cashu_ctx_new(dvm_cashu_ctx **out, const dvm_rng *rng);
/* Release a context (NULL is fine). */
void dvm_cashu_ctx_free(dvm_cashu_ctx *ctx);

/* ---- hex ------------------------------------------------------------- */

/* Lowercase hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void dvm_cashu_hex_encode(const uint8_t *in, size_t n, char *out);

/* Decode exactly n bytes from the NUL-terminated hex string `hex` (upper or
 * lower case). DVM_ERR_INVALID if it is not exactly 2n hex digits. */
dvm_err dvm_cashu_hex_decode(const char *hex, uint8_t *out, size_t n);

/* ---- points and scalars ---------------------------------------------- */

/* DVM_OK iff p is a valid compressed point on secp256k1 (prefix 02/03). */
dvm_err dvm_cashu_point_check(const dvm_cashu_ctx *ctx, const uint8_t p[DVM_POINT_BYTES]);

/* DVM_OK iff 0 < k < n (a valid secret key / blinding factor). */
dvm_err dvm_cashu_scalar_check(const dvm_cashu_ctx *ctx, const uint8_t k[DVM_SCALAR_BYTES]);

/* A uniformly random valid scalar from rng (rejection sampling, bounded by
 * 128 tries; DVM_ERR_CRYPTO if an rng returns only invalid scalars). */
dvm_err dvm_cashu_scalar_random(const dvm_cashu_ctx *ctx, const dvm_rng *rng,
                                uint8_t out[DVM_SCALAR_BYTES]);

/* K = k*G (compressed). DVM_ERR_CRYPTO if k is not a valid scalar. */
dvm_err dvm_cashu_pubkey(const dvm_cashu_ctx *ctx, const uint8_t k[DVM_SCALAR_BYTES],
                         uint8_t K[DVM_POINT_BYTES]);

/* A fresh NUT-00 secret: 32 random bytes as 64 lowercase hex chars plus a
 * NUL into out[65]. */
void dvm_cashu_secret_random(const dvm_rng *rng, char out[65]);

/* ---- NUT-00 BDHKE ------------------------------------------------------ */

/* Y = hash_to_curve(msg): Y = PublicKey(0x02 || SHA256(SHA256(
 * "Secp256k1_HashToCurve_Cashu_" || msg) || counter_le32)), counter from 0
 * until a valid point (bounded by DVM_HASH_TO_CURVE_MAX_TRIES).
 * For a Proof, msg is the secret's UTF-8 bytes. */
dvm_err dvm_cashu_hash_to_curve(const dvm_cashu_ctx *ctx, const uint8_t *msg, size_t len,
                                uint8_t Y[DVM_POINT_BYTES]);

/* Blinding: B_ = Y + r*G with Y = hash_to_curve(secret).
 * DVM_ERR_CRYPTO if r is not a valid scalar (or B_ is infinity). */
dvm_err dvm_cashu_blind(const dvm_cashu_ctx *ctx, const uint8_t *secret, size_t secret_len,
                        const uint8_t r[DVM_SCALAR_BYTES], uint8_t B_[DVM_POINT_BYTES]);

/* Blind signing (mint): C_ = k*B_. DVM_ERR_CRYPTO on a bad k or B_. */
dvm_err dvm_cashu_sign(const dvm_cashu_ctx *ctx, const uint8_t k[DVM_SCALAR_BYTES],
                       const uint8_t B_[DVM_POINT_BYTES], uint8_t C_[DVM_POINT_BYTES]);

/* Unblinding (wallet): C = C_ - r*K. DVM_ERR_CRYPTO on bad inputs. */
dvm_err dvm_cashu_unblind(const dvm_cashu_ctx *ctx, const uint8_t C_[DVM_POINT_BYTES],
                          const uint8_t r[DVM_SCALAR_BYTES], const uint8_t K[DVM_POINT_BYTES],
                          uint8_t C[DVM_POINT_BYTES]);

/* Verification (mint): DVM_OK iff C == k*hash_to_curve(secret);
 * DVM_ERR_CRYPTO otherwise (including a C that is not a point). */
dvm_err dvm_cashu_verify(const dvm_cashu_ctx *ctx, const uint8_t k[DVM_SCALAR_BYTES],
                         const uint8_t *secret, size_t secret_len,
                         const uint8_t C[DVM_POINT_BYTES]);

/* ---- NUT-12 DLEQ ------------------------------------------------------- */

/* hash_e: SHA256 of the concatenated lowercase hex of the UNCOMPRESSED
 * (65-byte) serialisations of the n points. DVM_ERR_CRYPTO on a bad point. */
dvm_err dvm_cashu_hash_e(const dvm_cashu_ctx *ctx, const uint8_t (*points)[DVM_POINT_BYTES],
                         size_t n, uint8_t e[DVM_SCALAR_BYTES]);

/* Mint side: a DLEQ proof (e, s) that log_G(A) == log_B_(C_) with A = a*G,
 * C_ = a*B_. The nonce is NUT-12's deterministic one:
 * r = HMAC-SHA256(key=a, "Cashu_DLEQ_R_v1" || A || B_ || C_ || ctr) with the
 * three points uncompressed (65 bytes) and ctr one byte from 0, retried while
 * r is 0 or >= n (at most DVM_DLEQ_NONCE_MAX_TRIES). s = r + e*a mod n.
 * Writes e, s into out (has_r = false). */
dvm_err dvm_cashu_dleq_prove(const dvm_cashu_ctx *ctx, const uint8_t a[DVM_SCALAR_BYTES],
                             const uint8_t B_[DVM_POINT_BYTES], const uint8_t C_[DVM_POINT_BYTES],
                             dvm_dleq *out);

/* Wallet side (Alice): verify (e, s) on a BlindSignature C_ for B_ under
 * the mint's public key A: R1 = s*G - e*A, R2 = s*B_ - e*C_,
 * e == hash_e(R1, R2, A, C_). DVM_OK or DVM_ERR_CRYPTO. */
dvm_err dvm_cashu_dleq_verify_blind(const dvm_cashu_ctx *ctx, const uint8_t A[DVM_POINT_BYTES],
                                    const uint8_t B_[DVM_POINT_BYTES],
                                    const uint8_t C_[DVM_POINT_BYTES],
                                    const uint8_t e[DVM_SCALAR_BYTES],
                                    const uint8_t s[DVM_SCALAR_BYTES]);

/* Receiver side (Carol): verify a Proof's dleq (e, s, r) offline against
 * the mint's key A for its amount: Y = hash_to_curve(secret), C_ = C + r*A,
 * B_ = Y + r*G, then as dvm_cashu_dleq_verify_blind.
 * DVM_ERR_INVALID if the proof has no dleq or no r; DVM_ERR_CRYPTO if the
 * proof does not verify. */
dvm_err dvm_cashu_dleq_verify_proof(const dvm_cashu_ctx *ctx, const uint8_t A[DVM_POINT_BYTES],
                                    const dvm_proof *proof);

/* Y of a Proof (hash_to_curve of its secret), the key of the spent set
 * (NUT-07). */
dvm_err dvm_cashu_proof_Y(const dvm_cashu_ctx *ctx, const dvm_proof *proof,
                          uint8_t Y[DVM_POINT_BYTES]);

#endif
