/* dvmstream — JSON forms of the Cashu models (NUT-00, 01, 02, 12), jansson.
 *
 * Shared by the HTTP mint (tools/mint), the HTTP wallet (tools/live) and
 * the fuzzers. Parsers are strict: every field has its JSON type and a size
 * limit, points must be valid compressed secp256k1 points, amounts must be
 * powers of two no larger than DVM_CASHU_MAX_AMOUNT; anything else is
 * rejected with DVM_ERR_INVALID (DVM_ERR_TOO_LARGE for a limit) and a
 * one-line reason naming the field, e.g. "inputs[3].C: not a valid point".
 * Reasons are written into reason[0..rlen) (NUL-terminated, truncated);
 * reason may be NULL.
 *
 * Builders return a new jansson reference (caller json_decref's it), or
 * NULL if allocation fails. */
#ifndef DVM_CASHU_NUT_JSON_H
#define DVM_CASHU_NUT_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "cashu/crypto.h"
#include "cashu/keyset.h"
#include "cashu/proof.h"
#include "common/err.h"

/* ---- keysets (NUT-01, NUT-02) ----------------------------------------- */

/* Parse a NUT-01 keys object {"1": "02..", "2": "03..", ...} into
 * ks->keys/present (other fields untouched). Amount strings must be
 * decimal powers of two up to 2^63, keys 33-byte compressed valid points
 * (a missing byte, an uncompressed key or a non-point is rejected). */
dvm_err dvm_cashu_keys_from_json(const dvm_cashu_ctx *ctx, const json_t *keys, dvm_keyset *ks,
                                 char *reason, size_t rlen);

/* Parse one keyset of GET /v1/keys: {"id", "unit", "keys", optional
 * "active", "input_fee_ppk", "final_expiry"}; the id must match the keys
 * (NUT-02, version 00 or 01), else DVM_ERR_INVALID. */
dvm_err dvm_cashu_keyset_from_json(const dvm_cashu_ctx *ctx, const json_t *obj, dvm_keyset *ks,
                                   char *reason, size_t rlen);

/* {"1": "02..", ...} (amounts ascending). */
json_t *dvm_cashu_keys_to_json(const dvm_keyset *ks);
/* {"id", "unit", "keys"}: an entry of GET /v1/keys (NUT-01), plus
 * "input_fee_ppk" and "final_expiry" when non-zero (they are part of a
 * version-01 id). */
json_t *dvm_cashu_keyset_to_json(const dvm_keyset *ks);
/* {"id", "unit", "active", "input_fee_ppk"}: an entry of GET /v1/keysets
 * (NUT-02). */
json_t *dvm_cashu_keyset_info_to_json(const dvm_keyset *ks);

/* ---- Proofs, BlindedMessages, BlindSignatures ------------------------- */

/* Proof {"amount", "id", "secret", "C", optional "dleq": {"e","s"[,"r"]},
 * optional "witness" (ignored)}. */
dvm_err dvm_cashu_proof_from_json(const dvm_cashu_ctx *ctx, const json_t *obj, dvm_proof *out,
                                  char *reason, size_t rlen);
/* As dvm_cashu_proof_from_json, with `path` (e.g. "proofs[2].") prefixed to
 * field names in reasons. */
dvm_err dvm_cashu_proof_from_json_at(const dvm_cashu_ctx *ctx, const json_t *obj,
                                     const char *path, dvm_proof *out, char *reason, size_t rlen);
/* Proof with "dleq" (e, s, r) when has_dleq. */
json_t *dvm_cashu_proof_to_json(const dvm_proof *p);

/* BlindedMessage {"amount", "id", "B_"}. */
dvm_err dvm_cashu_blinded_message_from_json(const dvm_cashu_ctx *ctx, const json_t *obj,
                                            dvm_blinded_message *out, char *reason, size_t rlen);
/* {"amount", "id", "B_"}. */
json_t *dvm_cashu_blinded_message_to_json(const dvm_blinded_message *m);

/* BlindSignature {"amount", "id", "C_", optional "dleq": {"e","s"}}. */
dvm_err dvm_cashu_blind_signature_from_json(const dvm_cashu_ctx *ctx, const json_t *obj,
                                            dvm_blind_signature *out, char *reason, size_t rlen);
/* {"amount", "id", "C_", "dleq": {"e", "s"} when has_dleq}. */
json_t *dvm_cashu_blind_signature_to_json(const dvm_blind_signature *s);

/* Arrays: parse a JSON array of at most `max` items into a new malloc'd
 * array (*out, *n; *out is NULL when n == 0; free() it). `field` names the
 * array in reasons ("inputs", "outputs", "signatures", "proofs").
 * DVM_ERR_TOO_LARGE over max, DVM_ERR_INVALID on a bad item,
 * DVM_ERR_NOMEM. On error nothing is allocated. */
dvm_err dvm_cashu_proofs_from_json(const dvm_cashu_ctx *ctx, const json_t *arr, size_t max,
                                   const char *field, dvm_proof **out, size_t *n, char *reason,
                                   size_t rlen);
dvm_err dvm_cashu_blinded_messages_from_json(const dvm_cashu_ctx *ctx, const json_t *arr,
                                             size_t max, const char *field,
                                             dvm_blinded_message **out, size_t *n, char *reason,
                                             size_t rlen);
dvm_err dvm_cashu_blind_signatures_from_json(const dvm_cashu_ctx *ctx, const json_t *arr,
                                             size_t max, const char *field,
                                             dvm_blind_signature **out, size_t *n, char *reason,
                                             size_t rlen);
/* JSON arrays of the models above, in order. */
json_t *dvm_cashu_proofs_to_json(const dvm_proof *p, size_t n);
json_t *dvm_cashu_blinded_messages_to_json(const dvm_blinded_message *m, size_t n);
json_t *dvm_cashu_blind_signatures_to_json(const dvm_blind_signature *s, size_t n);

#endif
