/* dvmstream — Cashu wallet logic, pure (NUT-00, 02, 03, 12).
 *
 * What a wallet computes without talking to a mint: choose proofs for an
 * amount, plan output amounts (micro-tokens of exactly N sats plus change),
 * build BlindedMessages while remembering their secrets and blinding
 * factors, and turn the mint's BlindSignatures back into Proofs (checking
 * the DLEQ and keeping it, with r, in the Proof so receivers can verify it
 * offline, NUT-12). The HTTP wallet (tools/live) sends the requests and
 * keeps proofs in SQLite; the simulator's customers call the same code.
 *
 * Secrets are 64 lowercase hex chars from 32 random bytes; blinding
 * factors are random valid scalars; both from the dvm_rng given. */
#ifndef DVM_CASHU_WALLET_H
#define DVM_CASHU_WALLET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cashu/crypto.h"
#include "cashu/keyset.h"
#include "cashu/proof.h"
#include "common/err.h"
#include "common/rng.h"

/* A prepared output: the BlindedMessage to send and what unblinds it. */
typedef struct dvm_wallet_output {
    dvm_blinded_message msg;
    char secret[65];          /* the secret x (64 hex + NUL) */
    uint8_t r[DVM_SCALAR_BYTES]; /* blinding factor */
} dvm_wallet_output;

/* Most outputs one planned swap may have (micro-tokens and change). */
#define DVM_WALLET_MAX_OUTPUTS 1000

/* Sum of proof amounts; DVM_ERR_LIMIT past DVM_CASHU_MAX_AMOUNT. */
dvm_err dvm_wallet_total(const dvm_proof *proofs, size_t n, uint64_t *sats);

/* Choose proofs from proofs[0..n) worth at least amount + the NUT-02 fee
 * of the chosen inputs (fee from keysets[0..n_keysets), by each proof's
 * id). Greedy: largest first until covered, then drops any chosen proof
 * that is not needed (smallest first). chosen[i] is set for picked proofs;
 * *sum gets their total and *fee their fee. DVM_ERR_LIMIT if the proofs
 * cannot cover it, DVM_ERR_NOT_FOUND if a needed proof's keyset is
 * unknown. */
dvm_err dvm_wallet_select(const dvm_proof *proofs, size_t n, uint64_t amount,
                          const dvm_keyset *keysets, size_t n_keysets, bool *chosen,
                          uint64_t *sum, uint64_t *fee);

/* Output amounts for `total` sats as n_tokens micro-tokens of token_sats
 * each, then change: amounts[0..n_tokens*per) are the tokens (each token
 * the binary split of token_sats, *per_token outputs each), then the
 * binary split of total - n_tokens*token_sats. *n gets the count.
 * DVM_ERR_LIMIT if total < n_tokens*token_sats (or overflow) or more than
 * cap outputs are needed; DVM_ERR_INVALID if n_tokens > 0 and
 * token_sats == 0. */
dvm_err dvm_wallet_plan(uint64_t total, uint64_t token_sats, size_t n_tokens,
                        uint64_t *amounts, size_t cap, size_t *n, size_t *per_token);

/* Build outputs for amounts[0..n) in keyset ks (which must have keys for
 * them: DVM_ERR_NOT_FOUND otherwise). */
dvm_err dvm_wallet_make_outputs(const dvm_cashu_ctx *ctx, const dvm_rng *rng,
                                const dvm_keyset *ks, const uint64_t *amounts, size_t n,
                                dvm_wallet_output *out);

/* Unblind sigs[i] for outs[i] (i < n) into proofs[i] with keyset ks:
 * amounts and ids must match (DVM_ERR_PROTO), C_ must be a point; a
 * present DLEQ must verify (DVM_ERR_CRYPTO) and is kept in the proof with
 * r; with require_dleq, a missing DLEQ is DVM_ERR_CRYPTO. Reason in
 * reason[0..rlen). Nothing is written to proofs on error. */
dvm_err dvm_wallet_unblind(const dvm_cashu_ctx *ctx, const dvm_keyset *ks,
                           const dvm_wallet_output *outs, const dvm_blind_signature *sigs,
                           size_t n, bool require_dleq, dvm_proof *proofs, char *reason,
                           size_t rlen);

/* A prepared NUT-03 swap: the request (inputs, messages) and what the
 * wallet remembers (outputs). Owns its arrays: free with
 * dvm_wallet_swap_free. */
typedef struct dvm_wallet_swap {
    dvm_proof *inputs;             /* copies of the inputs spent */
    size_t n_inputs;
    dvm_wallet_output *outputs;    /* n_outputs, in request order */
    dvm_blinded_message *messages; /* the same BlindedMessages, contiguous */
    size_t n_outputs;
    size_t n_tokens;               /* micro-tokens: outputs [i*per_token, (i+1)*per_token) */
    size_t per_token;
    uint64_t token_sats;
    uint64_t change;               /* sats in outputs [n_tokens*per_token, n_outputs) */
    uint64_t fee;                  /* NUT-02 input fee the mint will keep */
} dvm_wallet_swap;

/* Prepare a swap of ALL of inputs[0..n_inputs) into n_tokens micro-tokens
 * of token_sats each plus change, outputs in the active keyset `active`
 * (fees from keysets[0..n_keysets)). n_tokens 0 gives a plain "receive"
 * swap (everything, minus fee, as change). DVM_ERR_LIMIT if the inputs do
 * not cover tokens + fee, DVM_ERR_NOT_FOUND for an unknown input keyset.
 * Reason in reason[0..rlen). */
dvm_err dvm_wallet_swap_prepare(const dvm_cashu_ctx *ctx, const dvm_rng *rng,
                                const dvm_keyset *keysets, size_t n_keysets,
                                const dvm_keyset *active, const dvm_proof *inputs,
                                size_t n_inputs, uint64_t token_sats, size_t n_tokens,
                                dvm_wallet_swap *out, char *reason, size_t rlen);

/* Turn the mint's n_sigs signatures (must equal n_outputs) into proofs
 * (n_outputs; dvm_wallet_unblind with DLEQ required when
 * require_dleq). */
dvm_err dvm_wallet_swap_finish(const dvm_cashu_ctx *ctx, const dvm_keyset *active,
                               const dvm_wallet_swap *sw, const dvm_blind_signature *sigs,
                               size_t n_sigs, bool require_dleq, dvm_proof *proofs,
                               char *reason, size_t rlen);

/* Release a prepared swap's arrays and zero it (safe on a zeroed one). */
void dvm_wallet_swap_free(dvm_wallet_swap *sw);

/* A token (cashu/proof.h; encode it with cashu/token.h) of mint_url, unit
 * "sat", holding copies of proofs[0..n) (1..DVM_TOKEN_MAX_PROOFS), e.g. one
 * micro-token group of a swap. out owns its proofs: dvm_token_free.
 * version is set to 4. DVM_ERR_INVALID (bad url, n out of range),
 * DVM_ERR_NOMEM. */
dvm_err dvm_wallet_make_token(const char *mint_url, const dvm_proof *proofs, size_t n,
                              dvm_token *out);

#endif
