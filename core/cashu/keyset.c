#include "cashu/keyset.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

bool dvm_cashu_amount_is_pow2(uint64_t a)
{
    return a != 0 && (a & (a - 1)) == 0;
}

int dvm_cashu_amount_order(uint64_t a)
{
    if (!dvm_cashu_amount_is_pow2(a))
        return -1;
    int o = 0;
    while (a > 1) {
        a >>= 1;
        o++;
    }
    return o;
}

void dvm_cashu_amount_split(uint64_t amount, uint64_t out[64], size_t *n)
{
    size_t k = 0;
    for (int i = 0; i < 64; i++)
        if (amount & ((uint64_t)1 << i))
            out[k++] = (uint64_t)1 << i;
    *n = k;
}

dvm_err dvm_cashu_amount_sum(const uint64_t *amounts, size_t n, uint64_t *sum)
{
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++) {
        if (amounts[i] > DVM_CASHU_MAX_AMOUNT || s > DVM_CASHU_MAX_AMOUNT - amounts[i])
            return DVM_ERR_LIMIT;
        s += amounts[i];
    }
    *sum = s;
    return DVM_OK;
}

uint64_t dvm_cashu_fee_from_ppk(uint64_t sum_ppk)
{
    if (sum_ppk > UINT64_MAX - 999)
        return UINT64_MAX / 1000 + 1;
    return (sum_ppk + 999) / 1000;
}

const uint8_t *dvm_keyset_key(const dvm_keyset *ks, uint64_t amount)
{
    int o = dvm_cashu_amount_order(amount);
    if (o < 0 || !(ks->present & ((uint64_t)1 << o)))
        return NULL;
    return ks->keys[o];
}

void dvm_keyset_id_v00(const dvm_keyset *ks, char out[17])
{
    crypto_hash_sha256_state st;
    uint8_t h[32];
    crypto_hash_sha256_init(&st);
    for (int i = 0; i < DVM_KEYSET_MAX_ORDERS; i++)
        if (ks->present & ((uint64_t)1 << i))
            crypto_hash_sha256_update(&st, ks->keys[i], DVM_POINT_BYTES);
    crypto_hash_sha256_final(&st, h);
    char hex[65];
    dvm_cashu_hex_encode(h, sizeof h, hex);
    out[0] = '0';
    out[1] = '0';
    memcpy(out + 2, hex, 14);
    out[16] = '\0';
}

void dvm_keyset_id_v01(const dvm_keyset *ks, char out[67])
{
    crypto_hash_sha256_state st;
    uint8_t h[32];
    char piece[128];
    int first = 1;
    crypto_hash_sha256_init(&st);
    for (int i = 0; i < DVM_KEYSET_MAX_ORDERS; i++) {
        if (!(ks->present & ((uint64_t)1 << i)))
            continue;
        char kh[67];
        dvm_cashu_hex_encode(ks->keys[i], DVM_POINT_BYTES, kh);
        int n = snprintf(piece, sizeof piece, "%s%llu:%s", first ? "" : ",",
                         (unsigned long long)((uint64_t)1 << i), kh);
        crypto_hash_sha256_update(&st, (const uint8_t *)piece, (size_t)n);
        first = 0;
    }
    int n = snprintf(piece, sizeof piece, "|unit:%s", ks->unit);
    crypto_hash_sha256_update(&st, (const uint8_t *)piece, (size_t)n);
    if (ks->input_fee_ppk) {
        n = snprintf(piece, sizeof piece, "|input_fee_ppk:%llu",
                     (unsigned long long)ks->input_fee_ppk);
        crypto_hash_sha256_update(&st, (const uint8_t *)piece, (size_t)n);
    }
    if (ks->final_expiry) {
        n = snprintf(piece, sizeof piece, "|final_expiry:%llu",
                     (unsigned long long)ks->final_expiry);
        crypto_hash_sha256_update(&st, (const uint8_t *)piece, (size_t)n);
    }
    crypto_hash_sha256_final(&st, h);
    out[0] = '0';
    out[1] = '1';
    dvm_cashu_hex_encode(h, sizeof h, out + 2);
}

dvm_err dvm_keyset_check_id(const dvm_keyset *ks)
{
    char id[67];
    if (strncmp(ks->id, "00", 2) == 0)
        dvm_keyset_id_v00(ks, id);
    else if (strncmp(ks->id, "01", 2) == 0)
        dvm_keyset_id_v01(ks, id);
    else
        return DVM_ERR_INVALID;
    return strcmp(id, ks->id) == 0 ? DVM_OK : DVM_ERR_INVALID;
}

const dvm_keyset *dvm_keyset_find(const dvm_keyset *keysets, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keysets[i].id, id) == 0)
            return &keysets[i];
    return NULL;
}

dvm_err dvm_keyset_fee(const dvm_keyset *keysets, size_t n_keysets, const dvm_proof *ins,
                       size_t n, uint64_t *fee_sats)
{
    uint64_t ppk = 0;
    for (size_t i = 0; i < n; i++) {
        const dvm_keyset *ks = dvm_keyset_find(keysets, n_keysets, ins[i].id);
        if (!ks)
            return DVM_ERR_NOT_FOUND;
        ppk = ppk > UINT64_MAX - ks->input_fee_ppk ? UINT64_MAX : ppk + ks->input_fee_ppk;
    }
    *fee_sats = dvm_cashu_fee_from_ppk(ppk);
    return DVM_OK;
}

static const char DERIVE_TAG[] = "dvmstream-cashu-keyset-v1";

dvm_err dvm_keyset_derive(const dvm_cashu_ctx *ctx, const uint8_t seed[32], uint32_t index,
                          const char *unit, unsigned max_order, uint64_t input_fee_ppk,
                          bool active, int id_version, dvm_keyset_priv *out)
{
    memset(out, 0, sizeof *out);
    size_t ulen = unit ? strlen(unit) : 0;
    if (!unit || ulen == 0 || ulen > DVM_UNIT_MAX || max_order < 1 ||
        max_order > DVM_KEYSET_MAX_ORDERS || (id_version != 0 && id_version != 1))
        return DVM_ERR_INVALID;
    memcpy(out->pub.unit, unit, ulen + 1);
    out->pub.active = active;
    out->pub.input_fee_ppk = input_fee_ppk;
    uint8_t idx_be[4] = {(uint8_t)(index >> 24), (uint8_t)(index >> 16), (uint8_t)(index >> 8),
                         (uint8_t)index};
    for (unsigned i = 0; i < max_order; i++) {
        int ok = 0;
        for (unsigned ctr = 0; ctr < 256 && !ok; ctr++) {
            crypto_auth_hmacsha256_state h;
            uint8_t tail[3] = {0, (uint8_t)i, (uint8_t)ctr};
            crypto_auth_hmacsha256_init(&h, seed, 32);
            crypto_auth_hmacsha256_update(&h, (const uint8_t *)DERIVE_TAG, sizeof DERIVE_TAG - 1);
            crypto_auth_hmacsha256_update(&h, (const uint8_t *)unit, ulen);
            crypto_auth_hmacsha256_update(&h, tail, 1);
            crypto_auth_hmacsha256_update(&h, idx_be, 4);
            crypto_auth_hmacsha256_update(&h, tail + 1, 2);
            crypto_auth_hmacsha256_final(&h, out->priv[i]);
            ok = dvm_cashu_scalar_check(ctx, out->priv[i]) == DVM_OK;
        }
        if (!ok || dvm_cashu_pubkey(ctx, out->priv[i], out->pub.keys[i]) != DVM_OK) {
            dvm_keyset_priv_wipe(out);
            return DVM_ERR_CRYPTO;
        }
        out->pub.present |= (uint64_t)1 << i;
    }
    if (id_version == 0)
        dvm_keyset_id_v00(&out->pub, out->pub.id);
    else
        dvm_keyset_id_v01(&out->pub, out->pub.id);
    return DVM_OK;
}

void dvm_keyset_priv_wipe(dvm_keyset_priv *kp)
{
    sodium_memzero(kp->priv, sizeof kp->priv);
}
