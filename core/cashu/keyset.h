/* dvmstream — Cashu keysets, keyset ids, amounts and fees (NUT-01, NUT-02).
 *
 * A keyset holds one public key per amount 2^order, order 0..63 (NUT-01:
 * amounts are powers of two; the largest, 2^63, still fits in uint64).
 * `present` is a bitmask of the orders a keyset has keys for.
 *
 * Money arithmetic: sums of amounts are checked against
 * DVM_CASHU_MAX_AMOUNT (2^53-1, the largest integer every JSON peer reads
 * exactly) so no sum can overflow. */
#ifndef DVM_CASHU_KEYSET_H
#define DVM_CASHU_KEYSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cashu/crypto.h"
#include "cashu/proof.h"
#include "common/err.h"

#define DVM_KEYSET_MAX_ORDERS 64
#define DVM_CASHU_MAX_AMOUNT 9007199254740991ULL /* 2^53 - 1 sats */

/* Public keyset (what GET /v1/keys and /v1/keysets publish). */
typedef struct dvm_keyset {
    char id[DVM_KEYSET_ID_MAX + 1];   /* lowercase hex; "" until computed */
    char unit[DVM_UNIT_MAX + 1];      /* "sat" */
    bool active;                      /* NUT-02: new outputs only from active keysets */
    uint64_t input_fee_ppk;           /* NUT-02 fee per input, parts per thousand */
    uint64_t final_expiry;            /* unix seconds; 0 = none (NUT-02) */
    uint64_t present;                 /* bit i set: key for amount 2^i */
    uint8_t keys[DVM_KEYSET_MAX_ORDERS][DVM_POINT_BYTES]; /* keys[i] for 2^i */
} dvm_keyset;

/* ---- amounts ----------------------------------------------------------- */

/* true iff a is a power of two (1, 2, 4, ..., 2^63). */
bool dvm_cashu_amount_is_pow2(uint64_t a);

/* order of a power of two (log2), or -1 if a is not a power of two. */
int dvm_cashu_amount_order(uint64_t a);

/* Split `amount` sats into powers of two, ascending (the binary digits of
 * amount, NUT-00 "amounts"): at most 64 entries in out[]. *n gets the count
 * (0 for amount 0). */
void dvm_cashu_amount_split(uint64_t amount, uint64_t out[64], size_t *n);

/* Sum of n amounts into *sum; DVM_ERR_LIMIT if a partial sum would exceed
 * DVM_CASHU_MAX_AMOUNT. */
dvm_err dvm_cashu_amount_sum(const uint64_t *amounts, size_t n, uint64_t *sum);

/* NUT-02 fee for a transaction whose inputs' input_fee_ppk add up to
 * sum_ppk: ceil(sum_ppk / 1000) = (sum_ppk + 999) / 1000 (no overflow for
 * sum_ppk < 2^64 - 999; larger inputs saturate). */
uint64_t dvm_cashu_fee_from_ppk(uint64_t sum_ppk);

/* ---- keysets --------------------------------------------------------- */

/* Key for amount `amount` in ks, or NULL if amount is not a power of two
 * the keyset has a key for. */
const uint8_t *dvm_keyset_key(const dvm_keyset *ks, uint64_t amount);

/* NUT-02 keyset id version 00 (deprecated "V1" in the NUT text, still what
 * most mints and cashu-ts 2.x use): "00" || first 14 hex chars of
 * SHA256(concatenated compressed keys, ascending amount). out[17]. */
void dvm_keyset_id_v00(const dvm_keyset *ks, char out[17]);

/* NUT-02 keyset id version 01: "01" || hex SHA256("amount:keyhex,..." ||
 * "|unit:" unit [|| "|input_fee_ppk:" fee if non-zero] [|| "|final_expiry:"
 * t if non-zero]). out[67]. */
void dvm_keyset_id_v01(const dvm_keyset *ks, char out[67]);

/* DVM_OK iff ks->id equals the id computed from its keys by its own
 * version prefix (00 or 01); DVM_ERR_INVALID otherwise. */
dvm_err dvm_keyset_check_id(const dvm_keyset *ks);

/* Fee (sats) for spending the proofs ins[0..n) whose keysets are looked up
 * by id in keysets[0..n_keysets). DVM_ERR_NOT_FOUND if a proof's keyset is
 * not among them. */
dvm_err dvm_keyset_fee(const dvm_keyset *keysets, size_t n_keysets, const dvm_proof *ins,
                       size_t n, uint64_t *fee_sats);

/* Find a keyset by id among keysets[0..n); NULL if absent. */
const dvm_keyset *dvm_keyset_find(const dvm_keyset *keysets, size_t n, const char *id);

/* ---- deterministic keyset derivation (mint side) ----------------------- */

/* Private half of a keyset. Keep secret; zero with dvm_keyset_priv_wipe. */
typedef struct dvm_keyset_priv {
    dvm_keyset pub;
    uint8_t priv[DVM_KEYSET_MAX_ORDERS][DVM_SCALAR_BYTES];
} dvm_keyset_priv;

/* Derive keyset number `index` of a mint from its 32-byte seed, with keys
 * for amounts 2^0..2^(max_order-1) (1 <= max_order <= 64):
 *   k_i = HMAC-SHA256(key = seed, "dvmstream-cashu-keyset-v1" || unit ||
 *         0x00 || be32(index) || u8(i) || u8(ctr)),
 * ctr from 0 while k_i is not a valid scalar (bounded by 256 tries).
 * The id is version 00 (id_version 0) or 01 (id_version 1); unit,
 * input_fee_ppk and active are copied in. The same inputs always give the
 * same keyset, so a mint only has to keep its seed. DVM_ERR_INVALID on bad
 * arguments (unit too long, max_order out of range, id_version not 0/1). */
dvm_err dvm_keyset_derive(const dvm_cashu_ctx *ctx, const uint8_t seed[32], uint32_t index,
                          const char *unit, unsigned max_order, uint64_t input_fee_ppk,
                          bool active, int id_version, dvm_keyset_priv *out);

/* Zero the private keys. */
void dvm_keyset_priv_wipe(dvm_keyset_priv *kp);

#endif
