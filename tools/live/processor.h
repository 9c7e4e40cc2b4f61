/* dvmstream — job processors: what an agent runs to produce a job's output.
 *
 * One interface, four kinds (issue 6, "Processors"):
 *   builtin            deterministic text generator (no model needed)
 *   exec:CMD           runs CMD (argv split, no shell), input on stdin,
 *                      stdout streamed as chunks
 *   ollama[:MODEL]     POST $OLLAMA_HOST/api/generate, stream true (NDJSON)
 *   http:URL           OpenAI-compatible POST URL/v1/chat/completions,
 *                      stream true (server-sent events)
 *
 * Everything runs on one libuv loop; callbacks are called from that loop,
 * never from inside dvm_proc_start / dvm_proc_resume / dvm_proc_cancel.
 *
 * Chunks are valid UTF-8 (invalid bytes from a command become U+FFFD; a code
 * point is never split across chunks), non-empty, at most DVM_PROC_MAX_CHUNK
 * bytes. While a job is paused no callback is made; output produced
 * meanwhile is queued (bounded: the producer is stopped — timer stopped,
 * pipe read stopped, HTTP transfer paused — once DVM_PROC_QUEUE_BYTES are
 * queued) and delivered after dvm_proc_resume. `on_done` comes after the
 * last chunk; `on_error` may come at any time and drops queued chunks. After
 * on_done or on_error the job is gone: the handle must not be used again. */
#ifndef DVM_LIVE_PROCESSOR_H
#define DVM_LIVE_PROCESSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define DVM_PROC_MAX_CHUNK 4096          /* bytes per chunk, at most */
#define DVM_PROC_QUEUE_BYTES (64u << 10) /* queued output that stops the producer */
#define DVM_PROC_MAX_INPUT (1u << 20)    /* job input, bytes */
#define DVM_PROC_MAX_LINE (1u << 20)     /* one NDJSON / SSE line from a model server */
#define DVM_PROC_STDERR_TAIL 512         /* bytes of stderr quoted in an exec error */
#define DVM_PROC_MAX_ERROR_BODY (64u << 10) /* bytes of an HTTP error body read (its tail is quoted) */

typedef enum dvm_proc_kind {
    DVM_PROC_BUILTIN = 1,
    DVM_PROC_EXEC,
    DVM_PROC_OLLAMA,
    DVM_PROC_HTTP
} dvm_proc_kind;

typedef struct dvm_proc_opts {
    /* builtin: chunks per job (0 = DVM_BUILTIN_DEFAULT_CHUNKS) and rate in
     * chunks per second (0 = as fast as the loop goes). */
    uint32_t chunks;
    double rate;
    /* ollama: model when the spec has none (NULL = $OLLAMA_MODEL, then
     * "llama3.2"); base URL (NULL = $OLLAMA_HOST, then
     * http://127.0.0.1:11434). http: model name sent (NULL = "default"),
     * bearer key (NULL = $OPENAI_API_KEY, unset = no header). */
    const char *model;
    const char *ollama_host;
    const char *api_key;
    /* HTTP connect timeout in ms (0 = 10000). */
    uint32_t connect_timeout_ms;
    /* ollama, http: stall timeout in ms. A job whose model server sends no
     * response byte for this long while the job reads (from the request
     * on; time the transfer is paused because the customer has not paid
     * does not count) fails with "KIND: no data from URL for N ms (model
     * server stalled)". 0 = $DVM_STALL_TIMEOUT (ms, 100..3600000), then
     * DVM_PROC_DEFAULT_STALL_MS. There is no bound on a job's total time:
     * a model that keeps streaming is never cut off. */
    uint32_t stall_timeout_ms;
} dvm_proc_opts;

#define DVM_PROC_DEFAULT_STALL_MS 30000 /* below the customer's 60 s silence timeout */
#define DVM_PROC_MIN_STALL_MS 100
#define DVM_PROC_MAX_STALL_MS 3600000

#define DVM_BUILTIN_DEFAULT_CHUNKS 60

typedef struct dvm_proc dvm_proc;
typedef struct dvm_proc_job dvm_proc_job;

typedef struct dvm_proc_cbs {
    /* One chunk: `len` (1..DVM_PROC_MAX_CHUNK) bytes of UTF-8, borrowed for
     * the duration of the call. */
    void (*on_chunk)(void *ud, const char *data, size_t len);
    /* The job finished normally after its last chunk. */
    void (*on_done)(void *ud);
    /* The job failed; `message` is one line fit for an `error` message. */
    void (*on_error)(void *ud, const char *message);
    void *ud;
} dvm_proc_cbs;

/* Parse a processor spec ("builtin", "exec:CMD", "ollama", "ollama:MODEL",
 * "http:URL") and build a processor bound to `loop`. `opts` may be NULL
 * (defaults) and is copied (strings too). Returns 0, or -1 with a one-line
 * reason in err[0..errlen) for an unknown kind, an empty or badly quoted
 * command, a URL that is not http(s), or (http kinds) a stall timeout out
 * of DVM_PROC_MIN_STALL_MS..DVM_PROC_MAX_STALL_MS or a $DVM_STALL_TIMEOUT
 * that is not such a number. Free with dvm_proc_free after all
 * its jobs ended or were cancelled. */
int dvm_proc_new(uv_loop_t *loop, const char *spec, const dvm_proc_opts *opts,
                 dvm_proc **out, char *err, size_t errlen);

/* Kind of a processor, and a short name for logs ("builtin",
 * "exec:/bin/cat", "ollama:llama3.2", "http:URL"); static to the processor. */
dvm_proc_kind dvm_proc_get_kind(const dvm_proc *p);
const char *dvm_proc_name(const dvm_proc *p);

/* Start a job on `input` (input_len <= DVM_PROC_MAX_INPUT bytes, copied).
 * Callbacks in `cbs` (copied) come later from the loop. Returns 0 and the
 * job handle, or -1 with a reason (input too large, spawn failed, out of
 * memory) — then no callback will ever be made. */
int dvm_proc_start(dvm_proc *p, const char *input, size_t input_len,
                   const dvm_proc_cbs *cbs, dvm_proc_job **out, char *err, size_t errlen);

/* Pause / resume delivery (and, when the queue fills, production). Pausing a
 * paused job or resuming a running one does nothing. */
void dvm_proc_pause(dvm_proc_job *j);
void dvm_proc_resume(dvm_proc_job *j);

/* Cancel a job: no callback is made after this call; the child is sent
 * SIGTERM (exec), the HTTP transfer aborted; resources are released
 * asynchronously by the loop. May be called from inside a callback. */
void dvm_proc_cancel(dvm_proc_job *j);

/* Free a processor. Running jobs must have been cancelled or finished; the
 * loop must run once more to close its handles (http kinds). */
void dvm_proc_free(dvm_proc *p);

/* The builtin generator, pure: the full text the builtin processor streams
 * for `input` in `chunks` chunks, written NUL-terminated into out[0..outlen)
 * (truncated if too small). Chunk k (0-based) is word k followed by a space
 * or a newline; the same input always gives the same words. Returns the
 * length of the full text. */
size_t dvm_builtin_text(const char *input, size_t input_len, uint32_t chunks, char *out, size_t outlen);

/* Chunk k (0-based) of the builtin generator for `input`, NUL-terminated
 * into out (>= 32 bytes); returns its length. */
size_t dvm_builtin_chunk(const char *input, size_t input_len, uint32_t k, char *out, size_t outlen);

/* Split a command line into argv without a shell: whitespace separates
 * words; '...' is literal; "..." keeps spaces and honours \" \\ \$ \`; a
 * backslash outside quotes escapes the next character. Returns a
 * NULL-terminated malloc'd array of malloc'd strings (free with
 * dvm_argv_free) and the count in *argc, or NULL with a reason (empty
 * command, unterminated quote, trailing backslash, over 256 words or 64 KiB). */
char **dvm_argv_split(const char *cmd, int *argc, char *err, size_t errlen);
void dvm_argv_free(char **argv);

#endif
