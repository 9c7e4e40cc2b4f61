/* dvmstream — internals shared by the processor kinds (tools/live/processor*.c).
 * Not a public interface: see processor.h. */
#ifndef DVM_LIVE_PROC_INTERNAL_H
#define DVM_LIVE_PROC_INTERNAL_H

#include <curl/curl.h>

#include "live/processor.h"
#include "live/uvcurl.h"
#include "wire/frame.h"

struct proc_qitem {
    struct proc_qitem *next;
    size_t len;
    char data[];
};

struct dvm_proc {
    uv_loop_t *loop;
    dvm_proc_kind kind;
    char *name;   /* for logs */
    char **argv;  /* exec */
    int argc;
    char *url;    /* ollama: base URL; http: full chat completions URL */
    char *model;
    char *api_key;
    uint32_t chunks;
    double rate;
    uint32_t connect_timeout_ms;
    uint32_t stall_timeout_ms; /* ollama, http: see dvm_proc_opts */
    dvm_uvcurl *curl; /* ollama, http */
};

struct dvm_proc_job;
typedef struct proc_job_ops {
    /* Stop (on=true) or restart (false) producing output. */
    void (*throttle)(struct dvm_proc_job *j, bool on);
    /* Release kind-specific resources; closes handles, each of which calls
     * proc_handle_closed when closed. */
    void (*teardown)(struct dvm_proc_job *j);
} proc_job_ops;

struct dvm_proc_job {
    dvm_proc *p;
    dvm_proc_cbs cbs;
    const proc_job_ops *ops;
    char *input;
    size_t input_len;

    bool paused, cancelled, dead, producer_done, throttled;
    char *error; /* first failure, delivered by the drain */

    struct proc_qitem *qhead, *qtail;
    size_t qbytes;
    uint8_t hold[4]; /* incomplete UTF-8 sequence carried to the next emit */
    size_t hold_len;

    uv_timer_t drain;
    int handles; /* open uv handles; the job is freed when it reaches 0 */

    /* builtin */
    uv_timer_t gen;
    uint32_t produced;

    /* exec */
    uv_process_t proc;
    uv_pipe_t in, out, errp;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    uv_buf_t wbuf;
    bool exited, out_eof, err_eof;
    int64_t exit_status;
    int term_signal;
    char errtail[DVM_PROC_STDERR_TAIL];
    size_t errtail_len;

    /* ollama, http */
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    dvm_framer lines;             /* NDJSON / SSE lines, DVM_PROC_MAX_LINE each */
    long http_status;
    bool saw_done, saw_finish, in_multi;
    char errbody[DVM_PROC_STDERR_TAIL];
    size_t errbody_len;
    size_t errbody_total; /* error body bytes read, at most DVM_PROC_MAX_ERROR_BODY */
    uv_timer_t stall;     /* fires when no byte came for stall_timeout_ms */
    bool stall_open;      /* stall timer initialised (closed by teardown) */
    uint64_t last_rx_ms;  /* uv_now of the last response byte (or start, resume) */
};

/* Allocate a job with the base fields set and its drain timer open. */
dvm_proc_job *proc_job_alloc(dvm_proc *p, const proc_job_ops *ops, const char *input, size_t len,
                             const dvm_proc_cbs *cbs);
/* Producer side: output bytes (any split, any validity), normal end, failure. */
void proc_emit(dvm_proc_job *j, const char *data, size_t len);
void proc_finish(dvm_proc_job *j);
void proc_fail(dvm_proc_job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Close callback for every handle a job owns (handle->data == job). */
void proc_handle_closed(uv_handle_t *h);
/* Release the base part (called by a kind's start on failure before any
 * handle other than the drain timer was opened). */
void proc_job_abort(dvm_proc_job *j);

/* http kinds (processor_http.c) */
int proc_http_start(dvm_proc_job *j, char *err, size_t errlen);

#endif
