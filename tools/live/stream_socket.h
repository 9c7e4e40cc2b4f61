/* dvmstream — the local stream socket (seeds/local-unix-socket-streaming.md).
 *
 * An agent started with --stream-socket=PATH publishes every chunk it sends
 * to a customer also as one NDJSON line on a Unix socket:
 *   {"agent_pubkey":"<hex>","conversation_id":"<job id>","data":"<chunk text>"}
 * Fire-and-forget: with no client connected the line is dropped; a client
 * that does not read has at most DVM_STREAM_CLIENT_QUEUE bytes queued, lines
 * beyond that are dropped for that client (counted), so a stuck reader never
 * slows the agent or grows its memory. At most DVM_STREAM_MAX_CLIENTS
 * clients (the seed's model is one; a few are allowed for debugging).
 *
 * `dvm tail PATH` is the reading side (dvm_stream_tail_run): it prints the
 * lines and reconnects with bounded backoff when the agent restarts. */
#ifndef DVM_LIVE_STREAM_SOCKET_H
#define DVM_LIVE_STREAM_SOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#define DVM_STREAM_MAX_CLIENTS 8
#define DVM_STREAM_CLIENT_QUEUE (1u << 20) /* bytes queued per client, at most */
#define DVM_STREAM_MAX_LINE (1u << 20)     /* a line the tail accepts, bytes */

typedef struct dvm_stream_pub dvm_stream_pub;

typedef struct dvm_stream_stats {
    uint64_t published; /* lines offered by the agent */
    uint64_t sent;      /* line copies queued to a client */
    uint64_t dropped;   /* line copies dropped for a client over its queue bound */
    size_t clients;     /* clients connected now */
} dvm_stream_stats;

/* Listen on Unix socket `path` (mode 0600). A stale socket file (nobody
 * listening) is replaced; a path in use by a live listener, or an existing
 * non-socket file, is an error. Returns 0, or -1 with a reason in err. */
int dvm_stream_pub_open(uv_loop_t *loop, const char *path, dvm_stream_pub **out, char *err, size_t errlen);

/* Publish one chunk: `data` (len bytes, UTF-8) of job `conversation_id`
 * from agent `agent_pubkey` (hex). Never blocks, never fails: lines that
 * cannot be encoded (invalid UTF-8) or queued are dropped. */
void dvm_stream_pub_publish(dvm_stream_pub *s, const char *agent_pubkey, const char *conversation_id, const char *data,
                            size_t len);

/* Counters (see dvm_stream_stats). */
dvm_stream_stats dvm_stream_pub_stats(const dvm_stream_pub *s);

/* Stop listening, disconnect clients, remove the socket file. Memory is
 * released as the loop closes the handles. NULL is ignored. */
void dvm_stream_pub_close(dvm_stream_pub *s);

typedef struct dvm_tail_opts {
    bool text_only;          /* print only the data text, not the JSON lines */
    uint32_t backoff_min_ms; /* first reconnect delay (0 = 100) */
    uint32_t backoff_max_ms; /* reconnect delay cap (0 = 2000) */
} dvm_tail_opts;

/* Connect to `path` and copy lines to `out` until SIGINT/SIGTERM; reconnects
 * (delay doubling from backoff_min to backoff_max) whenever the socket is
 * missing or the agent goes away. Status lines go to `log` (may be NULL).
 * Lines over DVM_STREAM_MAX_LINE and, with text_only, lines that are not
 * the expected JSON are skipped. When `out` is a terminal, control
 * characters in what is printed are written as U+FFFD (live/term.h).
 * Returns the exit code (0). */
int dvm_stream_tail_run(const char *path, const dvm_tail_opts *opts, FILE *out, FILE *log);

#endif
