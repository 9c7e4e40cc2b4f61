#include "cashu/crypto.h"
#include "common/hex.h"

#include <secp256k1.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct dvm_cashu_ctx {
    secp256k1_context *secp;
};

dvm_err dvm_cashu_ctx_new(dvm_cashu_ctx **out, const dvm_rng *rng)
{
    *out = NULL;
    dvm_cashu_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return DVM_ERR_NOMEM;
    c->secp = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    if (!c->secp) {
        free(c);
        return DVM_ERR_NOMEM;
    }
    if (rng) {
        uint8_t seed[32];
        dvm_rng_fill(rng, seed, sizeof seed);
        if (!secp256k1_context_randomize(c->secp, seed)) {
            /* Randomisation only hardens; results are unaffected. */
        }
        sodium_memzero(seed, sizeof seed);
    }
    *out = c;
    return DVM_OK;
}

void dvm_cashu_ctx_free(dvm_cashu_ctx *ctx)
{
    if (!ctx)
        return;
    secp256k1_context_destroy(ctx->secp);
    free(ctx);
}

/* ---- hex ------------------------------------------------------------- */

void dvm_cashu_hex_encode(const uint8_t *in, size_t n, char *out) { dvm_hex_encode(in, n, out); }

dvm_err dvm_cashu_hex_decode(const char *hex, uint8_t *out, size_t n)
{
    if (!hex)
        return DVM_ERR_INVALID;
    size_t len = 0;
    while (len <= 2 * n && hex[len]) /* bounded: at most 2n+1 characters read */
        len++;
    return dvm_hex_decode(hex, len, out, n) ? DVM_OK : DVM_ERR_INVALID;
}

/* ---- points and scalars ---------------------------------------------- */

static int parse_point(const dvm_cashu_ctx *ctx, secp256k1_pubkey *pk, const uint8_t p[33])
{
    if (p[0] != 0x02 && p[0] != 0x03)
        return 0;
    return secp256k1_ec_pubkey_parse(ctx->secp, pk, p, 33);
}

static void ser_point(const dvm_cashu_ctx *ctx, const secp256k1_pubkey *pk, uint8_t out[33])
{
    size_t len = 33;
    (void)secp256k1_ec_pubkey_serialize(ctx->secp, out, &len, pk, SECP256K1_EC_COMPRESSED);
}

static void ser_point_u(const dvm_cashu_ctx *ctx, const secp256k1_pubkey *pk, uint8_t out[65])
{
    size_t len = 65;
    (void)secp256k1_ec_pubkey_serialize(ctx->secp, out, &len, pk, SECP256K1_EC_UNCOMPRESSED);
}

dvm_err dvm_cashu_point_check(const dvm_cashu_ctx *ctx, const uint8_t p[DVM_POINT_BYTES])
{
    secp256k1_pubkey pk;
    return parse_point(ctx, &pk, p) ? DVM_OK : DVM_ERR_CRYPTO;
}

dvm_err dvm_cashu_scalar_check(const dvm_cashu_ctx *ctx, const uint8_t k[DVM_SCALAR_BYTES])
{
    return secp256k1_ec_seckey_verify(ctx->secp, k) ? DVM_OK : DVM_ERR_CRYPTO;
}

dvm_err dvm_cashu_scalar_random(const dvm_cashu_ctx *ctx, const dvm_rng *rng,
                                uint8_t out[DVM_SCALAR_BYTES])
{
    for (int i = 0; i < 128; i++) {
        dvm_rng_fill(rng, out, DVM_SCALAR_BYTES);
        if (secp256k1_ec_seckey_verify(ctx->secp, out))
            return DVM_OK;
    }
    memset(out, 0, DVM_SCALAR_BYTES);
    return DVM_ERR_CRYPTO;
}

dvm_err dvm_cashu_pubkey(const dvm_cashu_ctx *ctx, const uint8_t k[DVM_SCALAR_BYTES],
                         uint8_t K[DVM_POINT_BYTES])
{
    secp256k1_pubkey pk;
    if (!secp256k1_ec_pubkey_create(ctx->secp, &pk, k))
        return DVM_ERR_CRYPTO;
    ser_point(ctx, &pk, K);
    return DVM_OK;
}

void dvm_cashu_secret_random(const dvm_rng *rng, char out[65])
{
    uint8_t b[32];
    dvm_rng_fill(rng, b, sizeof b);
    dvm_cashu_hex_encode(b, sizeof b, out);
}

/* ---- NUT-00 ------------------------------------------------------------ */

static const char H2C_DOMAIN[] = "Secp256k1_HashToCurve_Cashu_";

static int h2c(const dvm_cashu_ctx *ctx, const uint8_t *msg, size_t len, secp256k1_pubkey *Y)
{
    uint8_t msg_hash[32];
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const uint8_t *)H2C_DOMAIN, sizeof H2C_DOMAIN - 1);
    crypto_hash_sha256_update(&st, msg, len);
    crypto_hash_sha256_final(&st, msg_hash);
    uint8_t cand[33];
    cand[0] = 0x02;
    for (uint32_t ctr = 0; ctr < DVM_HASH_TO_CURVE_MAX_TRIES; ctr++) {
        uint8_t c_le[4] = {(uint8_t)ctr, (uint8_t)(ctr >> 8), (uint8_t)(ctr >> 16),
                           (uint8_t)(ctr >> 24)};
        crypto_hash_sha256_init(&st);
        crypto_hash_sha256_update(&st, msg_hash, sizeof msg_hash);
        crypto_hash_sha256_update(&st, c_le, sizeof c_le);
        crypto_hash_sha256_final(&st, cand + 1);
        if (secp256k1_ec_pubkey_parse(ctx->secp, Y, cand, sizeof cand))
            return 1;
    }
    return 0;
}

dvm_err dvm_cashu_hash_to_curve(const dvm_cashu_ctx *ctx, const uint8_t *msg, size_t len,
                                uint8_t Y[DVM_POINT_BYTES])
{
    secp256k1_pubkey pk;
    if (!h2c(ctx, msg, len, &pk))
        return DVM_ERR_CRYPTO;
    ser_point(ctx, &pk, Y);
    return DVM_OK;
}

/* out = a + b (points). */
static int padd(const dvm_cashu_ctx *ctx, secp256k1_pubkey *out, const secp256k1_pubkey *a,
                const secp256k1_pubkey *b)
{
    const secp256k1_pubkey *ins[2] = {a, b};
    return secp256k1_ec_pubkey_combine(ctx->secp, out, ins, 2);
}

dvm_err dvm_cashu_blind(const dvm_cashu_ctx *ctx, const uint8_t *secret, size_t secret_len,
                        const uint8_t r[DVM_SCALAR_BYTES], uint8_t B_[DVM_POINT_BYTES])
{
    secp256k1_pubkey Y, rG, B;
    if (!h2c(ctx, secret, secret_len, &Y))
        return DVM_ERR_CRYPTO;
    if (!secp256k1_ec_pubkey_create(ctx->secp, &rG, r))
        return DVM_ERR_CRYPTO;
    if (!padd(ctx, &B, &Y, &rG))
        return DVM_ERR_CRYPTO;
    ser_point(ctx, &B, B_);
    return DVM_OK;
}

dvm_err dvm_cashu_sign(const dvm_cashu_ctx *ctx, const uint8_t k[DVM_SCALAR_BYTES],
                       const uint8_t B_[DVM_POINT_BYTES], uint8_t C_[DVM_POINT_BYTES])
{
    secp256k1_pubkey P;
    if (!parse_point(ctx, &P, B_))
        return DVM_ERR_CRYPTO;
    if (!secp256k1_ec_pubkey_tweak_mul(ctx->secp, &P, k))
        return DVM_ERR_CRYPTO;
    ser_point(ctx, &P, C_);
    return DVM_OK;
}

dvm_err dvm_cashu_unblind(const dvm_cashu_ctx *ctx, const uint8_t C_[DVM_POINT_BYTES],
                          const uint8_t r[DVM_SCALAR_BYTES], const uint8_t K[DVM_POINT_BYTES],
                          uint8_t C[DVM_POINT_BYTES])
{
    secp256k1_pubkey Cb, rK, out;
    if (!parse_point(ctx, &Cb, C_) || !parse_point(ctx, &rK, K))
        return DVM_ERR_CRYPTO;
    if (!secp256k1_ec_pubkey_tweak_mul(ctx->secp, &rK, r))
        return DVM_ERR_CRYPTO;
    if (!secp256k1_ec_pubkey_negate(ctx->secp, &rK))
        return DVM_ERR_CRYPTO;
    if (!padd(ctx, &out, &Cb, &rK))
        return DVM_ERR_CRYPTO;
    ser_point(ctx, &out, C);
    return DVM_OK;
}

dvm_err dvm_cashu_verify(const dvm_cashu_ctx *ctx, const uint8_t k[DVM_SCALAR_BYTES],
                         const uint8_t *secret, size_t secret_len,
                         const uint8_t C[DVM_POINT_BYTES])
{
    secp256k1_pubkey Y, Cp;
    if (!parse_point(ctx, &Cp, C))
        return DVM_ERR_CRYPTO;
    if (!h2c(ctx, secret, secret_len, &Y))
        return DVM_ERR_CRYPTO;
    if (!secp256k1_ec_pubkey_tweak_mul(ctx->secp, &Y, k))
        return DVM_ERR_CRYPTO;
    uint8_t a[33], b[33];
    ser_point(ctx, &Y, a);
    ser_point(ctx, &Cp, b);
    return sodium_memcmp(a, b, 33) == 0 ? DVM_OK : DVM_ERR_CRYPTO;
}

/* ---- NUT-12 ------------------------------------------------------------ */

static void hash_e_pk(const dvm_cashu_ctx *ctx, const secp256k1_pubkey *const *pts, size_t n,
                      uint8_t e[32])
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    for (size_t i = 0; i < n; i++) {
        uint8_t u[65];
        char hex[131];
        ser_point_u(ctx, pts[i], u);
        dvm_cashu_hex_encode(u, sizeof u, hex);
        crypto_hash_sha256_update(&st, (const uint8_t *)hex, 130);
    }
    crypto_hash_sha256_final(&st, e);
}

dvm_err dvm_cashu_hash_e(const dvm_cashu_ctx *ctx, const uint8_t (*points)[DVM_POINT_BYTES],
                         size_t n, uint8_t e[DVM_SCALAR_BYTES])
{
    if (n > 8)
        return DVM_ERR_INVALID;
    secp256k1_pubkey pk[8];
    const secp256k1_pubkey *pp[8];
    for (size_t i = 0; i < n; i++) {
        if (!parse_point(ctx, &pk[i], points[i]))
            return DVM_ERR_CRYPTO;
        pp[i] = &pk[i];
    }
    hash_e_pk(ctx, pp, n, e);
    return DVM_OK;
}

static const char DLEQ_NONCE_TAG[] = "Cashu_DLEQ_R_v1";

dvm_err dvm_cashu_dleq_prove(const dvm_cashu_ctx *ctx, const uint8_t a[DVM_SCALAR_BYTES],
                             const uint8_t B_[DVM_POINT_BYTES], const uint8_t C_[DVM_POINT_BYTES],
                             dvm_dleq *out)
{
    memset(out, 0, sizeof *out);
    secp256k1_pubkey A, Bp, Cp, R1, R2;
    if (!secp256k1_ec_pubkey_create(ctx->secp, &A, a))
        return DVM_ERR_CRYPTO;
    if (!parse_point(ctx, &Bp, B_) || !parse_point(ctx, &Cp, C_))
        return DVM_ERR_CRYPTO;
    uint8_t Au[65], Bu[65], Cu[65];
    ser_point_u(ctx, &A, Au);
    ser_point_u(ctx, &Bp, Bu);
    ser_point_u(ctx, &Cp, Cu);

    uint8_t r[32];
    int found = 0;
    for (unsigned ctr = 0; ctr < DVM_DLEQ_NONCE_MAX_TRIES && !found; ctr++) {
        crypto_auth_hmacsha256_state h;
        uint8_t c = (uint8_t)ctr;
        crypto_auth_hmacsha256_init(&h, a, 32);
        crypto_auth_hmacsha256_update(&h, (const uint8_t *)DLEQ_NONCE_TAG,
                                      sizeof DLEQ_NONCE_TAG - 1);
        crypto_auth_hmacsha256_update(&h, Au, 65);
        crypto_auth_hmacsha256_update(&h, Bu, 65);
        crypto_auth_hmacsha256_update(&h, Cu, 65);
        crypto_auth_hmacsha256_update(&h, &c, 1);
        crypto_auth_hmacsha256_final(&h, r);
        found = secp256k1_ec_seckey_verify(ctx->secp, r);
    }
    if (!found)
        return DVM_ERR_CRYPTO;

    dvm_err err = DVM_ERR_CRYPTO;
    if (!secp256k1_ec_pubkey_create(ctx->secp, &R1, r))
        goto done;
    R2 = Bp;
    if (!secp256k1_ec_pubkey_tweak_mul(ctx->secp, &R2, r))
        goto done;
    const secp256k1_pubkey *pts[4] = {&R1, &R2, &A, &Cp};
    uint8_t e[32], s[32];
    hash_e_pk(ctx, pts, 4, e);
    /* s = r + e*a mod n */
    memcpy(s, a, 32);
    if (!secp256k1_ec_seckey_tweak_mul(ctx->secp, s, e))
        goto done;
    if (!secp256k1_ec_seckey_tweak_add(ctx->secp, s, r))
        goto done;
    memcpy(out->e, e, 32);
    memcpy(out->s, s, 32);
    out->has_r = false;
    err = DVM_OK;
done:
    sodium_memzero(r, sizeof r);
    return err;
}

/* out = s*P1 - e*P2, where P1 = NULL means G. */
static int s_minus_e(const dvm_cashu_ctx *ctx, secp256k1_pubkey *out, const secp256k1_pubkey *P1,
                     const secp256k1_pubkey *P2, const uint8_t s[32], const uint8_t e[32])
{
    secp256k1_pubkey sP, eP;
    if (P1) {
        sP = *P1;
        if (!secp256k1_ec_pubkey_tweak_mul(ctx->secp, &sP, s))
            return 0;
    } else if (!secp256k1_ec_pubkey_create(ctx->secp, &sP, s)) {
        return 0;
    }
    eP = *P2;
    if (!secp256k1_ec_pubkey_tweak_mul(ctx->secp, &eP, e))
        return 0;
    if (!secp256k1_ec_pubkey_negate(ctx->secp, &eP))
        return 0;
    return padd(ctx, out, &sP, &eP);
}

static dvm_err dleq_verify_pk(const dvm_cashu_ctx *ctx, const secp256k1_pubkey *A,
                              const secp256k1_pubkey *Bp, const secp256k1_pubkey *Cp,
                              const uint8_t e[32], const uint8_t s[32])
{
    secp256k1_pubkey R1, R2;
    if (!s_minus_e(ctx, &R1, NULL, A, s, e))
        return DVM_ERR_CRYPTO;
    if (!s_minus_e(ctx, &R2, Bp, Cp, s, e))
        return DVM_ERR_CRYPTO;
    const secp256k1_pubkey *pts[4] = {&R1, &R2, A, Cp};
    uint8_t e2[32];
    hash_e_pk(ctx, pts, 4, e2);
    return sodium_memcmp(e, e2, 32) == 0 ? DVM_OK : DVM_ERR_CRYPTO;
}

dvm_err dvm_cashu_dleq_verify_blind(const dvm_cashu_ctx *ctx, const uint8_t A[DVM_POINT_BYTES],
                                    const uint8_t B_[DVM_POINT_BYTES],
                                    const uint8_t C_[DVM_POINT_BYTES],
                                    const uint8_t e[DVM_SCALAR_BYTES],
                                    const uint8_t s[DVM_SCALAR_BYTES])
{
    secp256k1_pubkey Ap, Bp, Cp;
    if (!parse_point(ctx, &Ap, A) || !parse_point(ctx, &Bp, B_) || !parse_point(ctx, &Cp, C_))
        return DVM_ERR_CRYPTO;
    return dleq_verify_pk(ctx, &Ap, &Bp, &Cp, e, s);
}

dvm_err dvm_cashu_dleq_verify_proof(const dvm_cashu_ctx *ctx, const uint8_t A[DVM_POINT_BYTES],
                                    const dvm_proof *proof)
{
    if (!proof->has_dleq || !proof->dleq.has_r)
        return DVM_ERR_INVALID;
    secp256k1_pubkey Ap, C, Y, rA, rG, Bp, Cp;
    if (!parse_point(ctx, &Ap, A) || !parse_point(ctx, &C, proof->C))
        return DVM_ERR_CRYPTO;
    if (!h2c(ctx, (const uint8_t *)proof->secret, proof->secret_len, &Y))
        return DVM_ERR_CRYPTO;
    const uint8_t *r = proof->dleq.r;
    rA = Ap;
    if (!secp256k1_ec_pubkey_tweak_mul(ctx->secp, &rA, r))
        return DVM_ERR_CRYPTO;
    if (!padd(ctx, &Cp, &C, &rA))
        return DVM_ERR_CRYPTO;
    if (!secp256k1_ec_pubkey_create(ctx->secp, &rG, r))
        return DVM_ERR_CRYPTO;
    if (!padd(ctx, &Bp, &Y, &rG))
        return DVM_ERR_CRYPTO;
    return dleq_verify_pk(ctx, &Ap, &Bp, &Cp, proof->dleq.e, proof->dleq.s);
}

dvm_err dvm_cashu_proof_Y(const dvm_cashu_ctx *ctx, const dvm_proof *proof,
                          uint8_t Y[DVM_POINT_BYTES])
{
    return dvm_cashu_hash_to_curve(ctx, (const uint8_t *)proof->secret, proof->secret_len, Y);
}
