/* dvmstream — JSON bodies of the mint's HTTP API (NUT-01..07, 12) mapped
 * to the structs of cashu/mint.h, for tools/mint (server side), the HTTP
 * wallet (client side, through cashu/nut_json.h) and the fuzzers.
 *
 * Parsers take the raw request body (at most DVM_MINT_MAX_BODY bytes, else
 * DVM_ERR_TOO_LARGE), require a JSON object with exactly-typed fields,
 * apply count limits, and answer DVM_ERR_INVALID / DVM_ERR_TOO_LARGE with a
 * one-line reason. A count over the limit is DVM_ERR_LIMIT so the caller
 * can answer 11014/11015 (see dvm_mint_parse_error_code). Request structs
 * own their arrays: free them with the matching *_free.
 *
 * Builders return a new jansson object (json_decref it), NULL on
 * allocation failure. */
#ifndef DVM_CASHU_MINT_JSON_H
#define DVM_CASHU_MINT_JSON_H

#include <jansson.h>

#include "cashu/mint.h"
#include "cashu/nut_json.h"

#define DVM_MINT_MAX_BODY (1u << 20) /* 1 MiB per request body */

/* POST /v1/swap {"inputs": [Proof], "outputs": [BlindedMessage]}. */
typedef struct dvm_swap_request {
    dvm_proof *inputs;
    size_t n_inputs;
    dvm_blinded_message *outputs;
    size_t n_outputs;
} dvm_swap_request;

/* POST /v1/mint/bolt11 {"quote": str, "outputs": [BlindedMessage]}. */
typedef struct dvm_mint_request {
    char quote[DVM_QUOTE_ID_MAX + 1];
    dvm_blinded_message *outputs;
    size_t n_outputs;
} dvm_mint_request;

/* POST /v1/melt/bolt11 {"quote": str, "inputs": [Proof], optional
 * "outputs" (NUT-08 blank outputs: parsed, not used by the fake backend)}. */
typedef struct dvm_melt_request {
    char quote[DVM_QUOTE_ID_MAX + 1];
    dvm_proof *inputs;
    size_t n_inputs;
    dvm_blinded_message *outputs;
    size_t n_outputs;
} dvm_melt_request;

/* POST /v1/checkstate {"Ys": [hex point]}. */
typedef struct dvm_checkstate_request {
    uint8_t (*Ys)[DVM_POINT_BYTES];
    size_t n;
} dvm_checkstate_request;

/* POST /v1/mint/quote/bolt11 {"amount": int, "unit": str} and
 * POST /v1/melt/quote/bolt11 {"request": str, "unit": str}. */
typedef struct dvm_quote_request {
    uint64_t amount;                  /* mint quote */
    char request[DVM_BOLT11_MAX + 1]; /* melt quote */
    char unit[DVM_UNIT_MAX + 1];
} dvm_quote_request;

/* max_in / max_out: count limits (use the mint's config values; 0 means
 * DVM_MINT_DEFAULT_MAX_INPUTS / _OUTPUTS). */
dvm_err dvm_mint_parse_swap(const dvm_cashu_ctx *ctx, const char *body, size_t len,
                            size_t max_in, size_t max_out, dvm_swap_request *out, char *reason,
                            size_t rlen);
/* Release the arrays and zero *r (safe on a zeroed or failed request). */
void dvm_swap_request_free(dvm_swap_request *r);

/* {"quote", "outputs"}; outputs over max_out: DVM_ERR_LIMIT. */
dvm_err dvm_mint_parse_mint(const dvm_cashu_ctx *ctx, const char *body, size_t len,
                            size_t max_out, dvm_mint_request *out, char *reason, size_t rlen);
/* As dvm_swap_request_free. */
void dvm_mint_request_free(dvm_mint_request *r);

/* {"quote", "inputs", optional "outputs" (NUT-08 blank outputs)}. */
dvm_err dvm_mint_parse_melt(const dvm_cashu_ctx *ctx, const char *body, size_t len,
                            size_t max_in, size_t max_out, dvm_melt_request *out, char *reason,
                            size_t rlen);
/* As dvm_swap_request_free. */
void dvm_melt_request_free(dvm_melt_request *r);

/* {"Ys": [...]}: every Y a valid compressed point; more than max:
 * DVM_ERR_LIMIT. */
dvm_err dvm_mint_parse_checkstate(const dvm_cashu_ctx *ctx, const char *body, size_t len,
                                  size_t max, dvm_checkstate_request *out, char *reason,
                                  size_t rlen);
/* As dvm_swap_request_free. */
void dvm_checkstate_request_free(dvm_checkstate_request *r);

/* Mint quote request: amount 1..2^53-1, unit string. */
dvm_err dvm_mint_parse_mint_quote(const char *body, size_t len, dvm_quote_request *out,
                                  char *reason, size_t rlen);
/* Melt quote request: request (bolt11, <= DVM_BOLT11_MAX), unit. */
dvm_err dvm_mint_parse_melt_quote(const char *body, size_t len, dvm_quote_request *out,
                                  char *reason, size_t rlen);

/* NUT error code for a parse failure: DVM_ERR_LIMIT from inputs ->
 * 11014, from outputs -> 11015 (is_outputs tells which); anything else
 * 10000 (generic; HTTP 400 either way). */
int dvm_mint_parse_error_code(dvm_err e, bool is_outputs);

/* ---- responses ------------------------------------------------------------- */

/* {"detail": err->detail, "code": err->code} (NUT-00 error response). */
json_t *dvm_mint_error_json(const dvm_mint_error *err);
/* {"signatures": [BlindSignature with dleq]} (swap and mint responses). */
json_t *dvm_mint_signatures_json(const dvm_blind_signature *sigs, size_t n);
/* NUT-04 {"quote","request","amount","unit","state","expiry"}. */
json_t *dvm_mint_quote_json(const dvm_mint_quote *q);
/* NUT-05 {"quote","request","amount","fee_reserve","unit","state","expiry",
 * "payment_preimage" (string or null)}. */
json_t *dvm_melt_quote_json(const dvm_melt_quote *q);
/* Melt response: dvm_melt_quote_json plus "change": [BlindSignature]
 * (NUT-08) when n_change > 0. */
json_t *dvm_melt_response_json(const dvm_melt_quote *q, const dvm_blind_signature *change,
                               size_t n_change);
/* NUT-07 {"states": [{"Y","state","witness": null}]}. */
json_t *dvm_mint_states_json(const uint8_t (*Ys)[DVM_POINT_BYTES], const dvm_proof_state *st,
                             size_t n);
/* NUT-01 {"keysets": [{"id","unit","keys"}]}: the active keysets when id is
 * NULL, else the keyset `id` (active or not); NULL if id is unknown. */
json_t *dvm_mint_keys_json(const dvm_mint *m, const char *id);
/* NUT-02 {"keysets": [{"id","unit","active","input_fee_ppk"}]}. */
json_t *dvm_mint_keysets_json(const dvm_mint *m);
/* NUT-06 info: name, version "dvmstream/<version>", description, and the
 * nuts supported: 4 and 5 (bolt11, sat), 7, 8 and 12. */
json_t *dvm_mint_info_json(const dvm_mint *m, const char *name, const char *version,
                           const char *description);

/* ---- client side (the HTTP wallet reads the mint's answers) -------------- */

/* NUT-04 quote response -> q: "quote" and "request" required; "amount"
 * (0 if absent), "unit" ("sat" if absent), "state" (UNPAID/PAID/ISSUED; an
 * old "paid" boolean is understood), "expiry" (0 if absent or null). */
dvm_err dvm_mint_quote_from_json(const json_t *obj, dvm_mint_quote *q, char *reason,
                                 size_t rlen);

/* NUT-05 quote/melt response -> q, and its NUT-08 "change" (if any) into a
 * new array *change (*n_change items, at most max_change; free() it; NULL
 * when none). change may be NULL to ignore it. */
dvm_err dvm_melt_quote_from_json(const dvm_cashu_ctx *ctx, const json_t *obj,
                                 dvm_melt_quote *q, size_t max_change,
                                 dvm_blind_signature **change, size_t *n_change, char *reason,
                                 size_t rlen);

/* NUT-07 response {"states": [{"Y", "state"}]} -> states[i] for Ys[i]
 * (i < n), matched by Y (order-independent). DVM_ERR_PROTO if a Y asked
 * for is missing or a state is unknown. */
dvm_err dvm_mint_states_from_json(const json_t *obj, const uint8_t (*Ys)[DVM_POINT_BYTES],
                                  size_t n, dvm_proof_state *states, char *reason, size_t rlen);

/* An error response {"detail": str, "code": int} -> err; DVM_ERR_INVALID if
 * obj is not one (code 0 or missing detail are accepted: code 0, the
 * detail or ""). */
dvm_err dvm_mint_error_from_json(const json_t *obj, dvm_mint_error *err);

#endif
