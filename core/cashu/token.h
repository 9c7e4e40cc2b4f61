/* dvmstream — Cashu token codec: V3 `cashuA` (JSON) and V4 `cashuB` (CBOR).
 *
 * Specs: NUT-00 "Serialization of tokens" (V3 and V4 formats, the binary
 * `crawB` form), NUT-12 (the `dleq` {e, s, r} of a Proof inside a token).
 * Pure: no I/O; allocation only through malloc (jansson, libcbor).
 *
 * Decoding is strict about what it keeps and lenient where the NUT asks:
 *  - base64: the URL-safe alphabet with or without `=` padding (NUT-00 says
 *    clients must decode both); the standard alphabet (`+`, `/`) is accepted
 *    too, as @cashu/cashu-ts does. Whitespace is not accepted. An optional
 *    `cashu:` URI prefix is stripped.
 *  - V3: one or more "token" entries; entries must all name the same mint
 *    (several mints -> DVM_ERR_UNSUPPORTED); their proofs are concatenated in
 *    order. "unit" defaults to "sat" when absent (has_unit tells which).
 *    Duplicate JSON keys are rejected.
 *  - V4: several "t" entries (keysets) are supported; "i" keyset ids are
 *    bytes (1..33, short or full form), stored as lowercase hex. A short id
 *    is kept as given: resolving it to the full id (NUT-00 "Short keyset
 *    ID") needs the mint's keysets and is the wallet's job. Integers in any
 *    width and indefinite-length items are accepted.
 *  - Keyset ids in V3 must be lowercase or uppercase hex of even length up to
 *    DVM_KEYSET_ID_MAX (stored lowercase); legacy base64 ids are rejected.
 *  - Unknown fields are ignored (NUT-00: forward compatibility). The NUT-11/14
 *    witness ("witness" in V3, "w" in V4) is ignored and NOT kept: a
 *    re-encoded token carries no witness.
 *  - Rejected with a reason: wrong prefix, unknown version letter, bad base64,
 *    bad JSON/CBOR, trailing bytes, CBOR tags, nesting deeper than 16, wrong
 *    types, zero/negative/fractional amounts or amounts over 2^53-1, a total
 *    over 2^53-1, missing or empty proofs, C not 33 bytes starting 02/03 (the
 *    curve check belongs to the crypto layer), dleq e/s/r not 32 bytes,
 *    empty secret or mint, strings with NUL bytes or bad UTF-8, and anything
 *    over the limits of cashu/proof.h (DVM_TOKEN_MAX_BYTES of text,
 *    DVM_TOKEN_MAX_PROOFS proofs, DVM_SECRET_MAX, DVM_MINT_URL_MAX,
 *    DVM_UNIT_MAX, DVM_MEMO_MAX, DVM_KEYSET_ID_MAX).
 *
 * Encoding is canonical and deterministic: V3 JSON is compact with keys in
 * the NUT-00 example order ({"token":[{"mint","proofs":[{amount,id,secret,C,
 * dleq}]}],"unit","memo"}), base64url without padding; V4 CBOR uses
 * definite lengths, shortest integer forms and key order t, d, m, u (as in
 * the NUT-00 vectors), proof keys a, s, c, d and dleq keys e, s, r,
 * base64url without padding. V4 emits one "t" entry per run of consecutive
 * proofs sharing a keyset id, so proof order survives a round trip. */
#ifndef DVM_CASHU_TOKEN_H
#define DVM_CASHU_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cashu/proof.h"
#include "common/buf.h"
#include "common/err.h"

#define DVM_TOKEN_CBOR_MAX_DEPTH 16 /* nesting levels accepted in V4 CBOR */

/* Decode a serialized token `s` (len bytes, "cashuA..." or "cashuB...",
 * optionally prefixed "cashu:"; need not be NUL-terminated) into *out.
 *
 * On success returns DVM_OK and *out owns a proofs array (release with
 * dvm_token_free); out->version is 3 or 4. On error *out is zeroed (nothing
 * to free) and, when reason is non-NULL, a one-line English reason is
 * written (NUL-terminated, truncated to reason_len). Errors:
 * DVM_ERR_INVALID (malformed: prefix, base64, JSON/CBOR, types, values),
 * DVM_ERR_TOO_LARGE (len > DVM_TOKEN_MAX_BYTES, too many proofs, a field over
 * its limit), DVM_ERR_UNSUPPORTED (a version letter other than A/B, a V3
 * token with several mints), DVM_ERR_NOMEM. */
dvm_err dvm_token_decode(const char *s, size_t len, dvm_token *out, char *reason,
                         size_t reason_len);

/* Decode the NUT-00 binary form of a V4 token: "craw" "B" followed by the
 * CBOR token object. Same results and errors as dvm_token_decode (the raw
 * bytes are also limited to DVM_TOKEN_MAX_BYTES); out->version is 4. */
dvm_err dvm_token_decode_raw(const uint8_t *b, size_t len, dvm_token *out, char *reason,
                             size_t reason_len);

/* Serialize t as a V3 (`version` 3, "cashuA...") or V4 (4, "cashuB...")
 * token string and append its ASCII characters to `out` (no NUL appended).
 * t->version is ignored. V3 writes "unit" when t->has_unit or when the unit
 * is not "sat", and "memo" when t->has_memo. Before writing anything, t is
 * checked against the same rules the decoder enforces, so what encodes
 * decodes again to an equal token (dvm_token_equal). Errors: DVM_ERR_UNSUPPORTED (version not
 * 3 or 4), DVM_ERR_INVALID (t breaks a rule: no proofs, empty mint/unit/
 * secret, bad keyset id, C prefix, amount 0 or over 2^53-1, NUL or bad
 * UTF-8 in a string), DVM_ERR_TOO_LARGE (a field over its limit, or the
 * token string over DVM_TOKEN_MAX_BYTES or out->max), DVM_ERR_NOMEM. On
 * error out->len is unchanged. */
dvm_err dvm_token_encode(const dvm_token *t, int version, dvm_buf *out);

/* Check an in-memory token against the rules dvm_token_encode applies (the
 * decoder's rules); DVM_OK or the error dvm_token_encode would return, with
 * a one-line reason (reason may be NULL). */
dvm_err dvm_token_validate(const dvm_token *t, char *reason, size_t reason_len);

/* Append the NUT-00 binary V4 form ("crawB" + CBOR) of t to out. Errors as
 * dvm_token_encode. */
dvm_err dvm_token_encode_raw(const dvm_token *t, dvm_buf *out);

/* True if a and b hold the same mint, unit, has_memo and memo (when
 * has_memo) and the same proofs in the same order (amount, id, secret, C,
 * has_dleq and dleq e/s/r when present). Neither the version nor has_unit
 * (whether the serialized form named the unit) is compared. */
bool dvm_token_equal(const dvm_token *a, const dvm_token *b);

/* The NUT-00 / NUT-12 JSON object of one Proof: {"amount", "id", "secret",
 * "C" (hex), "dleq": {"e", "s", "r"} (hex, when has_dleq; "r" when has_r)}.
 * Returns a new reference (caller json_decref's) or NULL on NOMEM or a
 * string that is not valid UTF-8. */
json_t *dvm_token_proof_to_json(const dvm_proof *p);

/* Parse a NUT-00 Proof JSON object into *p under the decoder's rules (see
 * above; unknown fields and "witness" ignored). Returns DVM_OK,
 * DVM_ERR_INVALID or DVM_ERR_TOO_LARGE with a reason (may be NULL). */
dvm_err dvm_token_proof_from_json(const json_t *obj, dvm_proof *p, char *reason,
                                  size_t reason_len);

#endif
