/* dvmstream simulator — the canonical trace and the output sinks.
 *
 * The trace is NDJSON, one line per event and per message, each starting
 * with the virtual time in microseconds: {"t":1234,"ev":"send",...}. Its
 * bytes are a pure function of (scenario, seed). trace_hash is the SHA-256
 * of exactly those bytes, computed incrementally on every run whether or
 * not a sink writes the trace anywhere (OpenSSL's EVP SHA-256, which uses
 * the CPU's SHA extensions: hashing every byte of a 2-million-event trace
 * must not dominate the run).
 *
 * The simulator does no I/O itself: a caller (the CLI, a test) passes sinks,
 * plain callbacks that receive bytes, packets and CSV rows. sinks.h has
 * file-backed ones. */
#ifndef DVM_SIM_TRACE_H
#define DVM_SIM_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Output sinks. Any callback may be NULL (that output is not produced).
 * Callbacks must not fail the run: a sink that cannot write records the
 * error itself and the caller reports it afterwards. */
typedef struct sim_sinks {
    /* Trace bytes, whole lines, in order. */
    void (*trace)(void *ctx, const uint8_t *data, size_t len);
    /* One raw IPv4 packet (LINKTYPE_RAW) captured at virtual time t_us. */
    void (*packet)(void *ctx, uint64_t t_us, const uint8_t *pkt, size_t len);
    /* One CSV line (with '\n') of table "jobs" or "providers"; the first
     * line of each table is its header. */
    void (*csv)(void *ctx, const char *table, const char *line, size_t len);
    /* Progress: jobs finished so far of jobs in the scenario, virtual time
     * now (microseconds) and events so far; called at most once per 2^16
     * events. */
    void (*progress)(void *ctx, uint64_t jobs_done, uint64_t jobs_total, uint64_t now_us, uint64_t events);
    void *ctx;
} sim_sinks;

/* Trace writer: buffers lines, hashes them, hands them to the sink. */
typedef struct sim_trace {
    void *md;                       /* EVP_MD_CTX*, owned */
    int failed;                     /* the hash context could not be made */
    uint8_t buf[1 << 16];
    size_t len;
    uint64_t bytes;                 /* trace bytes so far */
    uint64_t lines;                 /* trace lines so far */
    const sim_sinks *sinks;         /* borrowed */
} sim_trace;

/* Start a trace (allocates the hash context; on failure t->failed is set
 * and sim_trace_finish reports an all-zero hash). */
void sim_trace_init(sim_trace *t, const sim_sinks *sinks);

/* Release the hash context without finishing (error paths). */
void sim_trace_free(sim_trace *t);

/* Line building: begin a line at virtual time t_us with event name ev
 * ({"t":T,"ev":"EV"), add fields, end it ("}\n"). Lines are at most
 * SIM_TRACE_LINE_MAX bytes plus an embedded message (which the caller
 * bounds); nothing is written if a line would overflow the internal
 * buffer (impossible for the bounded lines the simulator writes). */
void sim_trace_begin(sim_trace *t, uint64_t t_us, const char *ev);
void sim_trace_u64(sim_trace *t, const char *key, uint64_t v);
void sim_trace_i64(sim_trace *t, const char *key, int64_t v);
/* A JSON string field; value escaped (bytes < 0x20, '"' and '\\'). */
void sim_trace_str(sim_trace *t, const char *key, const char *v, size_t n);
/* A field whose value is already JSON (e.g. a wire message line without
 * its '\n'); copied verbatim. */
void sim_trace_raw(sim_trace *t, const char *key, const char *json, size_t n);
void sim_trace_end(sim_trace *t);

/* Flush buffered bytes to the hash and the sink. */
void sim_trace_flush(sim_trace *t);

/* Flush and produce the SHA-256 of every byte written (32 bytes) and its
 * lowercase hex (65 bytes with NUL); releases the hash context. The writer
 * must not be used after. */
void sim_trace_finish(sim_trace *t, uint8_t hash[32], char hex[65]);

#endif
