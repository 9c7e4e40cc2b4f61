/* dvmstream — a small JSON-over-HTTP server on libmicrohttpd.
 *
 * The transport half of `dvm mint`: a routing table of (method, path)
 * entries, request bodies collected up to a size limit, JSON replies, the
 * Cashu error shape (NUT-00 "Errors": HTTP 400 with {"detail", "code"}), and
 * one log line per request on stderr: `METHOD PATH STATUS MSms`.
 *
 * Handlers run on libmicrohttpd's worker threads (a thread pool), so they
 * must be thread-safe; the app pointer given to dvm_http_server_start is
 * passed to every handler unchanged. */
#ifndef DVM_MINT_HTTP_H
#define DVM_MINT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/err.h"

#define DVM_HTTP_DEFAULT_MAX_BODY (256u * 1024u) /* bytes of a request body */
#define DVM_HTTP_MAX_PARAM 128                    /* bytes of a {param} path segment */

/* A reply: HTTP status and a JSON body (owned reference, may be NULL for an
 * empty body). */
typedef struct dvm_http_reply {
    int status;
    json_t *body;
} dvm_http_reply;

/* A route handler. `param` is the trailing path segment for routes with
 * has_param (URL-decoded by libmicrohttpd, 1..DVM_HTTP_MAX_PARAM bytes of
 * [A-Za-z0-9_-]; anything else is answered 400 before the handler runs),
 * "" otherwise. `body` is the request body (len bytes, plus a NUL
 * terminator not counted) or NULL when empty. The handler fills *out. */
typedef void (*dvm_http_handler)(void *app, const char *param, const char *body, size_t len,
                                 dvm_http_reply *out);

typedef struct dvm_http_route {
    const char *method; /* "GET" or "POST" */
    const char *path;   /* exact path, or the prefix before {param} ("/v1/keys/") */
    bool has_param;     /* path is a prefix followed by exactly one segment */
    dvm_http_handler fn;
} dvm_http_route;

typedef struct dvm_http_server dvm_http_server;

typedef struct dvm_http_config {
    const char *host;  /* explicit numeric address or name ("127.0.0.1", "::1") */
    uint16_t port;     /* 0 picks a free port (read back with dvm_http_server_port) */
    size_t max_body;   /* bytes; 0 = DVM_HTTP_DEFAULT_MAX_BODY */
    unsigned threads;  /* worker threads; 0 = 4 */
    bool log;          /* one line per request on stderr */
} dvm_http_config;

/* Start serving `routes` (n entries, borrowed: must outlive the server) on
 * cfg->host:cfg->port. DVM_ERR_INVALID for a host that does not resolve,
 * DVM_ERR_STATE if the daemon cannot start (port in use, ...); a reason is
 * written to err (errlen bytes). */
dvm_err dvm_http_server_start(const dvm_http_config *cfg, const dvm_http_route *routes,
                              size_t n, void *app, dvm_http_server **out, char *err,
                              size_t errlen);

/* The TCP port actually bound. */
uint16_t dvm_http_server_port(const dvm_http_server *s);

/* Stop accepting, finish running requests, free the server. NULL is a no-op. */
void dvm_http_server_stop(dvm_http_server *s);

/* Fill out with a JSON reply (steals the reference to body). */
void dvm_http_reply_json(dvm_http_reply *out, int status, json_t *body);

/* Fill out with a Cashu error: HTTP 400, {"detail": printf(fmt...),
 * "code": code}. */
void dvm_http_reply_error(dvm_http_reply *out, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Split "HOST:PORT" or "[V6HOST]:PORT" into host (hostlen bytes) and port.
 * The host must be non-empty (an explicit address); the port 0..65535.
 * DVM_ERR_INVALID otherwise. */
dvm_err dvm_http_parse_listen(const char *s, char *host, size_t hostlen, uint16_t *port);

#endif
