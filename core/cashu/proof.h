/* dvmstream — Cashu Proofs and tokens (shared types).
 *
 * Specs: NUT-00 (Proof, tokens V3 `cashuA` and V4 `cashuB`), NUT-02 (keyset
 * ids), NUT-12 (the `dleq` field of a Proof: e, s, r).
 *
 * All storage is inline or owned by the struct: a dvm_token owns its proofs
 * array (free with dvm_token_free). Strings are NUL-terminated and bounded by
 * the limits below; decoders reject anything longer with DVM_ERR_TOO_LARGE. */
#ifndef DVM_CASHU_PROOF_H
#define DVM_CASHU_PROOF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define DVM_KEYSET_ID_MAX 66   /* hex chars: v00 ids are 16, v01 ids 66 */
#define DVM_SECRET_MAX 512     /* bytes of a Proof secret (NUT-00 / NUT-10) */
#define DVM_MINT_URL_MAX 512   /* bytes of a mint URL */
#define DVM_UNIT_MAX 16        /* bytes of a unit ("sat") */
#define DVM_MEMO_MAX 1024      /* bytes of a token memo */
#define DVM_TOKEN_MAX_PROOFS 256  /* proofs per token */
#define DVM_TOKEN_MAX_BYTES (256u * 1024u) /* serialized token string */
#define DVM_POINT_BYTES 33     /* compressed secp256k1 point */
#define DVM_SCALAR_BYTES 32

/* NUT-12 DLEQ proof attached to a Proof (or a BlindSignature, without r). */
typedef struct dvm_dleq {
    uint8_t e[DVM_SCALAR_BYTES];
    uint8_t s[DVM_SCALAR_BYTES];
    uint8_t r[DVM_SCALAR_BYTES]; /* blinding factor; meaningful iff has_r */
    bool has_r;
} dvm_dleq;

/* NUT-00 Proof: an unblinded signature C on secret x by the key for
 * `amount` in keyset `id`. */
typedef struct dvm_proof {
    uint64_t amount;                  /* sats (a power of two in practice) */
    char id[DVM_KEYSET_ID_MAX + 1];   /* keyset id, lowercase hex */
    char secret[DVM_SECRET_MAX + 1];  /* the secret x, as a UTF-8 string */
    size_t secret_len;                /* bytes in secret (no NUL counted) */
    uint8_t C[DVM_POINT_BYTES];       /* compressed point */
    bool has_dleq;
    dvm_dleq dleq;
} dvm_proof;

/* A token: proofs of one mint in one unit (V3 tokens naming several mints
 * are rejected as unsupported). */
typedef struct dvm_token {
    int version;                      /* 3 (cashuA) or 4 (cashuB) */
    char mint[DVM_MINT_URL_MAX + 1];
    char unit[DVM_UNIT_MAX + 1];      /* "sat" when the token omits it (V3) */
    bool has_unit;                    /* the token named its unit (always in V4) */
    char memo[DVM_MEMO_MAX + 1];      /* "" when absent */
    bool has_memo;
    dvm_proof *proofs;                /* owned, n_proofs entries */
    size_t n_proofs;
} dvm_token;

/* Sum of the proofs' amounts; DVM_ERR_INVALID on overflow past 2^53-1. */
dvm_err dvm_token_amount(const dvm_token *t, uint64_t *out_sats);

/* Release t->proofs and zero the token. Safe on a zeroed token. */
void dvm_token_free(dvm_token *t);

#endif
