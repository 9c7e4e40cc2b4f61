/* dvmstream — JSON over HTTP to a Cashu mint (libcurl easy interface).
 *
 * The transport of the HTTP wallet (wallet.h): GET/POST JSON to a mint's
 * /v1 API (NUT-01..07, 09, 12), with bounded response sizes and timeouts,
 * and the NUT error shape decoded: HTTP 400 {"detail", "code"}.
 *
 * A client is one libcurl handle plus the mint's base URL; use one client per
 * thread. */
#ifndef DVM_LIVE_WALLET_HTTP_H
#define DVM_LIVE_WALLET_HTTP_H

#include <stddef.h>

#include <jansson.h>

#include "common/err.h"

#define DVM_MINT_RESPONSE_MAX (8u << 20) /* bytes of a mint reply */

/* What went wrong on a failed call. */
typedef struct dvm_mint_http_error {
    int http_status;  /* 0 when no HTTP reply arrived (transport failure) */
    long code;        /* NUT error code from {"code"}, 0 if none */
    char detail[256]; /* the mint's "detail", or a transport reason */
} dvm_mint_http_error;

typedef struct dvm_mint_client dvm_mint_client;

/* New client for base URL `mint_url` ("http://127.0.0.1:3338", a trailing
 * '/' is ignored; at most 512 bytes). timeout_ms bounds every request
 * (0 = 30000). DVM_ERR_INVALID for an empty or overlong URL, NOMEM. */
dvm_err dvm_mint_client_new(const char *mint_url, long timeout_ms, dvm_mint_client **out);
void dvm_mint_client_free(dvm_mint_client *c);

/* The base URL (without trailing '/'). */
const char *dvm_mint_client_url(const dvm_mint_client *c);

/* GET base+path, or POST base+path with the JSON `body` (borrowed). On
 * success *resp is a new reference to the reply's JSON.
 * Errors (err filled when non-NULL):
 *   DVM_ERR_AGAIN    no reply (connection refused, timeout, reset): the
 *                    request may or may not have been executed;
 *   DVM_ERR_SPENT    the mint said 11001 (proofs already spent);
 *   DVM_ERR_PROTO    any other error reply (err->code, err->detail);
 *   DVM_ERR_INVALID  a 2xx reply that is not JSON;
 *   DVM_ERR_TOO_LARGE a reply over DVM_MINT_RESPONSE_MAX. */
dvm_err dvm_mint_client_get(dvm_mint_client *c, const char *path, json_t **resp,
                            dvm_mint_http_error *err);
dvm_err dvm_mint_client_post(dvm_mint_client *c, const char *path, const json_t *body,
                             json_t **resp, dvm_mint_http_error *err);

#endif
