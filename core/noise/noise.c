/* Noise XX / IK with Hyperswarm's choices; see noise.h for the spec. */
#include "noise/noise.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

enum tok { T_E, T_S, T_EE, T_ES, T_SE, T_SS, T_END };

#define MAX_TOKENS 5
#define MAX_MESSAGES 3

typedef struct pattern_def {
    const char *name; /* full protocol name */
    bool premessage_rs; /* responder static is a pre-message (IK) */
    unsigned n_messages;
    enum tok msgs[MAX_MESSAGES][MAX_TOKENS];
} pattern_def;

static const pattern_def PATTERNS[] = {
    [DVM_NOISE_XX] = {"Noise_XX_Ed25519_ChaChaPoly_BLAKE2b", false, 3,
                      {{T_E, T_END}, {T_E, T_EE, T_S, T_ES, T_END}, {T_S, T_SE, T_END}}},
    [DVM_NOISE_IK] = {"Noise_IK_Ed25519_ChaChaPoly_BLAKE2b", true, 2,
                      {{T_E, T_ES, T_S, T_SS, T_END}, {T_E, T_EE, T_SE, T_END}, {T_END}}},
};

/* ---- hash, HMAC, HKDF ---------------------------------------------------- */

#define HASHLEN DVM_NOISE_HASH_BYTES
#define BLOCKLEN 128

static void mix_hash(dvm_noise_handshake *hs, const uint8_t *data, size_t len)
{
    crypto_generichash_blake2b_state st;
    crypto_generichash_blake2b_init(&st, NULL, 0, HASHLEN);
    crypto_generichash_blake2b_update(&st, hs->h, HASHLEN);
    if (len)
        crypto_generichash_blake2b_update(&st, data, len);
    crypto_generichash_blake2b_final(&st, hs->h, HASHLEN);
}

/* HMAC-BLAKE2b-512 over the concatenation of up to two parts. */
static void hmac(uint8_t out[HASHLEN], const uint8_t *key, size_t keylen, const uint8_t *a, size_t alen,
                 const uint8_t *b, size_t blen)
{
    uint8_t k[BLOCKLEN] = {0}, pad[BLOCKLEN], inner[HASHLEN];
    if (keylen > BLOCKLEN)
        crypto_generichash_blake2b(k, HASHLEN, key, keylen, NULL, 0);
    else if (keylen)
        memcpy(k, key, keylen);
    crypto_generichash_blake2b_state st;
    for (size_t i = 0; i < BLOCKLEN; i++)
        pad[i] = k[i] ^ 0x36;
    crypto_generichash_blake2b_init(&st, NULL, 0, HASHLEN);
    crypto_generichash_blake2b_update(&st, pad, BLOCKLEN);
    if (alen)
        crypto_generichash_blake2b_update(&st, a, alen);
    if (blen)
        crypto_generichash_blake2b_update(&st, b, blen);
    crypto_generichash_blake2b_final(&st, inner, HASHLEN);
    for (size_t i = 0; i < BLOCKLEN; i++)
        pad[i] = k[i] ^ 0x5c;
    crypto_generichash_blake2b_init(&st, NULL, 0, HASHLEN);
    crypto_generichash_blake2b_update(&st, pad, BLOCKLEN);
    crypto_generichash_blake2b_update(&st, inner, HASHLEN);
    crypto_generichash_blake2b_final(&st, out, HASHLEN);
    sodium_memzero(k, sizeof k);
    sodium_memzero(pad, sizeof pad);
    sodium_memzero(inner, sizeof inner);
}

/* HKDF with salt = chaining key, empty info, two 64-byte outputs. */
static void hkdf2(const uint8_t ck[HASHLEN], const uint8_t *ikm, size_t ikm_len, uint8_t out1[HASHLEN],
                  uint8_t out2[HASHLEN])
{
    uint8_t prk[HASHLEN], t1[HASHLEN];
    static const uint8_t one = 1, two = 2;
    hmac(prk, ck, HASHLEN, ikm, ikm_len, NULL, 0);
    hmac(t1, prk, HASHLEN, &one, 1, NULL, 0);
    hmac(out2, prk, HASHLEN, t1, HASHLEN, &two, 1);
    memcpy(out1, t1, HASHLEN);
    sodium_memzero(prk, sizeof prk);
    sodium_memzero(t1, sizeof t1);
}

/* ---- keys and DH --------------------------------------------------------- */

dvm_err dvm_noise_keypair_from_seed(dvm_noise_keypair *kp, const uint8_t seed[DVM_NOISE_SEED_BYTES])
{
    crypto_sign_ed25519_seed_keypair(kp->public_key, kp->secret_key, seed);
    return DVM_OK;
}

dvm_err dvm_noise_keypair_generate(dvm_noise_keypair *kp, const dvm_rng *rng)
{
    uint8_t seed[DVM_NOISE_SEED_BYTES];
    dvm_rng_fill(rng, seed, sizeof seed);
    dvm_noise_keypair_from_seed(kp, seed);
    sodium_memzero(seed, sizeof seed);
    return DVM_OK;
}

dvm_err dvm_noise_dh(uint8_t out[DVM_NOISE_PUBLIC_KEY_BYTES], const dvm_noise_keypair *local,
                     const uint8_t remote[DVM_NOISE_PUBLIC_KEY_BYTES])
{
    uint8_t digest[64];
    crypto_hash_sha512(digest, local->secret_key, 32);
    digest[0] &= 248;
    digest[31] &= 127;
    digest[31] |= 64;
    int rc = crypto_scalarmult_ed25519_noclamp(out, digest, remote);
    sodium_memzero(digest, sizeof digest);
    if (rc != 0) {
        memset(out, 0, DVM_NOISE_PUBLIC_KEY_BYTES);
        return DVM_ERR_CRYPTO;
    }
    return DVM_OK;
}

/* ---- symmetric state ----------------------------------------------------- */

static void nonce_of(uint64_t n, uint8_t nonce[12])
{
    memset(nonce, 0, 4);
    for (int i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(n >> (8 * i));
}

static dvm_err mix_key(dvm_noise_handshake *hs, const dvm_noise_keypair *local, const uint8_t *remote)
{
    uint8_t dh[32], out1[HASHLEN], out2[HASHLEN];
    dvm_err e = dvm_noise_dh(dh, local, remote);
    if (e)
        return e;
    hkdf2(hs->ck, dh, sizeof dh, out1, out2);
    memcpy(hs->ck, out1, HASHLEN);
    memcpy(hs->k, out2, DVM_NOISE_KEY_BYTES);
    hs->has_k = true;
    hs->n = 0;
    sodium_memzero(dh, sizeof dh);
    sodium_memzero(out1, sizeof out1);
    sodium_memzero(out2, sizeof out2);
    return DVM_OK;
}

/* out must hold len + 16 bytes (len when no key yet). Returns bytes written. */
static size_t encrypt_and_hash(dvm_noise_handshake *hs, const uint8_t *pt, size_t len, uint8_t *out)
{
    size_t clen = len;
    if (hs->has_k) {
        uint8_t nonce[12];
        unsigned long long cl = 0;
        nonce_of(hs->n, nonce);
        crypto_aead_chacha20poly1305_ietf_encrypt(out, &cl, pt, len, hs->h, HASHLEN, NULL, nonce, hs->k);
        clen = (size_t)cl;
        hs->n++;
    } else if (len) {
        memmove(out, pt, len);
    }
    mix_hash(hs, out, clen);
    return clen;
}

/* ct[0..clen) -> out (clen - 16 bytes, or clen when no key). */
static dvm_err decrypt_and_hash(dvm_noise_handshake *hs, const uint8_t *ct, size_t clen, uint8_t *out)
{
    if (hs->has_k) {
        if (clen < DVM_NOISE_MAC_BYTES)
            return DVM_ERR_INVALID;
        uint8_t nonce[12];
        unsigned long long ml = 0;
        nonce_of(hs->n, nonce);
        if (crypto_aead_chacha20poly1305_ietf_decrypt(out, &ml, NULL, ct, clen, hs->h, HASHLEN, nonce, hs->k) != 0)
            return DVM_ERR_CRYPTO;
        hs->n++;
    } else if (clen) {
        memcpy(out, ct, clen);
    }
    mix_hash(hs, ct, clen);
    return DVM_OK;
}

static void split(dvm_noise_handshake *hs)
{
    uint8_t k1[HASHLEN], k2[HASHLEN];
    hkdf2(hs->ck, NULL, 0, k1, k2);
    memcpy(hs->initiator ? hs->tx : hs->rx, k1, DVM_NOISE_KEY_BYTES);
    memcpy(hs->initiator ? hs->rx : hs->tx, k2, DVM_NOISE_KEY_BYTES);
    memcpy(hs->hash, hs->h, HASHLEN);
    hs->complete = true;
    sodium_memzero(k1, sizeof k1);
    sodium_memzero(k2, sizeof k2);
    /* The ephemeral secrets, chaining key and cipher key are no longer needed. */
    sodium_memzero(&hs->e, sizeof hs->e);
    sodium_memzero(hs->ck, sizeof hs->ck);
    sodium_memzero(hs->k, sizeof hs->k);
    hs->has_k = false;
}

/* ---- handshake ----------------------------------------------------------- */

dvm_err dvm_noise_init(dvm_noise_handshake *hs, dvm_noise_pattern pattern, bool initiator,
                       const dvm_noise_keypair *s, const uint8_t *prologue, size_t prologue_len,
                       const uint8_t *remote_static)
{
    if (!hs || !s || (unsigned)pattern > DVM_NOISE_IK || (prologue_len && !prologue))
        return DVM_ERR_INVALID;
    const pattern_def *p = &PATTERNS[pattern];
    if (p->premessage_rs && initiator && !remote_static)
        return DVM_ERR_INVALID;
    memset(hs, 0, sizeof *hs);
    hs->pattern = pattern;
    hs->initiator = initiator;
    hs->s = *s;
    size_t nl = strlen(p->name);
    /* Names up to HASHLEN bytes are zero-padded into h; all ours are. */
    memcpy(hs->h, p->name, nl);
    memcpy(hs->ck, hs->h, HASHLEN);
    mix_hash(hs, prologue, prologue_len);
    if (p->premessage_rs) {
        if (initiator) {
            memcpy(hs->rs, remote_static, DVM_NOISE_PUBLIC_KEY_BYTES);
            hs->has_rs = true;
            mix_hash(hs, hs->rs, DVM_NOISE_PUBLIC_KEY_BYTES);
        } else {
            mix_hash(hs, hs->s.public_key, DVM_NOISE_PUBLIC_KEY_BYTES);
        }
    }
    return DVM_OK;
}

bool dvm_noise_wants_write(const dvm_noise_handshake *hs)
{
    if (hs->complete || hs->failed)
        return false;
    /* Even messages are the initiator's. */
    return ((hs->step % 2) == 0) == hs->initiator;
}

bool dvm_noise_is_complete(const dvm_noise_handshake *hs) { return hs->complete && !hs->failed; }

/* Resolve a DH token into (local key pair, remote public key). */
static dvm_err dh_token(dvm_noise_handshake *hs, enum tok t)
{
    bool local_static = false, remote_static = false;
    switch (t) {
    case T_EE: break;
    case T_ES: local_static = !hs->initiator; remote_static = hs->initiator; break;
    case T_SE: local_static = hs->initiator; remote_static = !hs->initiator; break;
    case T_SS: local_static = remote_static = true; break;
    default: return DVM_ERR_STATE;
    }
    if (!local_static && !hs->has_e)
        return DVM_ERR_STATE;
    if (remote_static ? !hs->has_rs : !hs->has_re)
        return DVM_ERR_STATE;
    return mix_key(hs, local_static ? &hs->s : &hs->e, remote_static ? hs->rs : hs->re);
}

/* Bytes our next message takes for its tokens (not the payload). */
static size_t tokens_len(const dvm_noise_handshake *hs, const enum tok *toks)
{
    size_t len = 0;
    bool has_k = hs->has_k;
    for (; *toks != T_END; toks++) {
        if (*toks == T_E)
            len += DVM_NOISE_PUBLIC_KEY_BYTES;
        else if (*toks == T_S)
            len += DVM_NOISE_PUBLIC_KEY_BYTES + (has_k ? DVM_NOISE_MAC_BYTES : 0);
        else
            has_k = true; /* every DH token sets a key */
    }
    return len + (has_k ? DVM_NOISE_MAC_BYTES : 0);
}

dvm_err dvm_noise_write_message(dvm_noise_handshake *hs, const dvm_rng *rng, const uint8_t *payload,
                                size_t payload_len, uint8_t *out, size_t out_cap, size_t *out_len)
{
    if (!hs || !out_len || !dvm_noise_wants_write(hs) || (payload_len && !payload))
        return DVM_ERR_STATE;
    const pattern_def *p = &PATTERNS[hs->pattern];
    const enum tok *toks = p->msgs[hs->step];
    size_t need = tokens_len(hs, toks);
    if (payload_len > DVM_NOISE_MAX_MESSAGE || need + payload_len > DVM_NOISE_MAX_MESSAGE ||
        need + payload_len > out_cap)
        return DVM_ERR_TOO_LARGE;
    size_t off = 0;
    dvm_err e = DVM_OK;
    for (; *toks != T_END && !e; toks++) {
        switch (*toks) {
        case T_E:
            if (!rng) {
                e = DVM_ERR_INVALID;
                break;
            }
            dvm_noise_keypair_generate(&hs->e, rng);
            hs->has_e = true;
            mix_hash(hs, hs->e.public_key, DVM_NOISE_PUBLIC_KEY_BYTES);
            memcpy(out + off, hs->e.public_key, DVM_NOISE_PUBLIC_KEY_BYTES);
            off += DVM_NOISE_PUBLIC_KEY_BYTES;
            break;
        case T_S:
            off += encrypt_and_hash(hs, hs->s.public_key, DVM_NOISE_PUBLIC_KEY_BYTES, out + off);
            break;
        default:
            e = dh_token(hs, *toks);
            break;
        }
    }
    if (e) {
        hs->failed = true;
        return e;
    }
    off += encrypt_and_hash(hs, payload, payload_len, out + off);
    *out_len = off;
    hs->step++;
    if (hs->step == p->n_messages)
        split(hs);
    return DVM_OK;
}

dvm_err dvm_noise_read_message(dvm_noise_handshake *hs, const uint8_t *msg, size_t len,
                               uint8_t *payload_out, size_t payload_cap, size_t *payload_len)
{
    if (!hs || hs->complete || hs->failed || dvm_noise_wants_write(hs) || (len && !msg))
        return DVM_ERR_STATE;
    dvm_err e = DVM_OK;
    uint8_t *scratch = NULL;
    size_t plen = 0;
    if (len > DVM_NOISE_MAX_MESSAGE) {
        e = DVM_ERR_TOO_LARGE;
        goto out;
    }
    const pattern_def *p = &PATTERNS[hs->pattern];
    size_t off = 0;
    for (const enum tok *toks = p->msgs[hs->step]; *toks != T_END && !e; toks++) {
        switch (*toks) {
        case T_E:
            if (len - off < DVM_NOISE_PUBLIC_KEY_BYTES) {
                e = DVM_ERR_INVALID;
                break;
            }
            memcpy(hs->re, msg + off, DVM_NOISE_PUBLIC_KEY_BYTES);
            hs->has_re = true;
            mix_hash(hs, hs->re, DVM_NOISE_PUBLIC_KEY_BYTES);
            off += DVM_NOISE_PUBLIC_KEY_BYTES;
            break;
        case T_S: {
            size_t kl = DVM_NOISE_PUBLIC_KEY_BYTES + (hs->has_k ? DVM_NOISE_MAC_BYTES : 0);
            if (len - off < kl) {
                e = DVM_ERR_INVALID;
                break;
            }
            e = decrypt_and_hash(hs, msg + off, kl, hs->rs);
            if (!e)
                hs->has_rs = true;
            off += kl;
            break;
        }
        default:
            e = dh_token(hs, *toks);
            break;
        }
    }
    if (e)
        goto out;
    size_t clen = len - off;
    if (hs->has_k && clen < DVM_NOISE_MAC_BYTES) {
        e = DVM_ERR_INVALID;
        goto out;
    }
    plen = hs->has_k ? clen - DVM_NOISE_MAC_BYTES : clen;
    uint8_t *dst = payload_out;
    if (!dst) {
        scratch = malloc(plen ? plen : 1);
        if (!scratch) {
            e = DVM_ERR_NOMEM;
            goto out;
        }
        dst = scratch;
    } else if (plen > payload_cap) {
        e = DVM_ERR_TOO_LARGE;
        goto out;
    }
    e = decrypt_and_hash(hs, msg + off, clen, dst);
    if (e)
        goto out;
    if (payload_len)
        *payload_len = payload_out ? plen : 0;
    hs->step++;
    if (hs->step == p->n_messages)
        split(hs);
out:
    if (scratch) {
        sodium_memzero(scratch, plen ? plen : 1);
        free(scratch);
    }
    if (e)
        hs->failed = true;
    return e;
}

const uint8_t *dvm_noise_tx(const dvm_noise_handshake *hs) { return dvm_noise_is_complete(hs) ? hs->tx : NULL; }
const uint8_t *dvm_noise_rx(const dvm_noise_handshake *hs) { return dvm_noise_is_complete(hs) ? hs->rx : NULL; }
const uint8_t *dvm_noise_handshake_hash(const dvm_noise_handshake *hs)
{
    return dvm_noise_is_complete(hs) ? hs->hash : NULL;
}
const uint8_t *dvm_noise_remote_static(const dvm_noise_handshake *hs)
{
    return dvm_noise_is_complete(hs) && hs->has_rs ? hs->rs : NULL;
}

void dvm_noise_wipe(dvm_noise_handshake *hs) { sodium_memzero(hs, sizeof *hs); }
