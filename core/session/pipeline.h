/* dvmstream — sub-task delegation batching (SUB_KIND pipeline), sans-I/O.
 *
 * Spec: seeds/streaming-guide-p2p-cashu.md, "Sub-task Delegation
 * (Pipeline)": chunks streamed in from a sub-provider accumulate into
 * batches of SUB_BATCH_SIZE characters; each full batch goes to the local
 * processor; the processor's output streams on to our customer; the
 * remainder is flushed at the end. One batch is processed at a time, in
 * order; later batches wait (bounded) while the processor works.
 *
 * Characters are Unicode code points (the reference counts UTF-16 units;
 * the two agree for text in the Basic Multilingual Plane). A code point is
 * never split across batches, even when the sub-provider's bytes arrive
 * split inside one (an incomplete sequence is held until its rest arrives;
 * bytes that are not valid UTF-8 count as one character each).
 *
 * Cutting (batch_chars = N):
 *   split_exact = false (default, as the reference): a batch is sealed after
 *     the chunk that brings it to >= N characters, so batches end on chunk
 *     boundaries and may be longer than N;
 *   split_exact = true: a batch is sealed at exactly N characters, inside a
 *     chunk if need be (never inside a code point).
 *   Either way a batch never exceeds max_batch_bytes: it is then sealed at
 *   the last code point boundary that fits (memory bound).
 *
 * Actions: PROCESS_BATCH(text) -> run the processor on text; OUTPUT(data) ->
 * one chunk of the processor's output for our customer (feed it to the
 * provider job's on_chunk); ERROR(message) -> the pipeline failed (feed it
 * to on_generation_error); DONE -> all output delivered (on_generation_done).
 *
 * Lifetimes: a PROCESS_BATCH text stays valid until on_processor_done /
 * on_processor_error; other strings until the next event call. No
 * allocation per chunk once buffers have grown. */
#ifndef DVM_SESSION_PIPELINE_H
#define DVM_SESSION_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "wire/msg.h"

#define DVM_DEFAULT_SUB_BATCH_SIZE 500 /* SUB_BATCH_SIZE, characters */

typedef struct dvm_pipeline_config {
    size_t batch_chars;       /* code points per batch, >= 1 (default 500) */
    size_t max_batch_bytes;   /* bytes per batch, >= 4 (default 64 KiB) */
    size_t max_pending_bytes; /* sealed + accumulating bytes waiting for the
                                 processor (default 1 MiB); beyond it
                                 on_sub_chunk returns DVM_ERR_LIMIT */
    bool split_exact;         /* see "Cutting" (default false) */
} dvm_pipeline_config;

/* Fill *cfg with the defaults: batch_chars 500 (SUB_BATCH_SIZE),
 * max_batch_bytes 64 KiB, max_pending_bytes 1 MiB, split_exact false. */
void dvm_pipeline_config_default(dvm_pipeline_config *cfg);

typedef enum dvm_pipeline_action_type {
    DVM_PLACT_PROCESS_BATCH = 1, /* text: run the local processor on it */
    DVM_PLACT_OUTPUT,            /* text: a processor output chunk */
    DVM_PLACT_ERROR,             /* text: why the pipeline failed */
    DVM_PLACT_DONE               /* everything was processed and output */
} dvm_pipeline_action_type;

typedef struct dvm_pipeline_action {
    dvm_pipeline_action_type type;
    dvm_str text;
    uint64_t batch; /* PROCESS_BATCH: 1, 2, ... */
    size_t chars;   /* PROCESS_BATCH: code points in text */
} dvm_pipeline_action;

typedef struct dvm_pipeline dvm_pipeline;

/* New pipeline; cfg NULL means the defaults; max_pending_bytes below
 * max_batch_bytes is raised to it. Free with dvm_pipeline_free (NULL is
 * fine). NULL on allocation failure or batch_chars 0 / max_batch_bytes < 4. */
dvm_pipeline *dvm_pipeline_new(const dvm_pipeline_config *cfg);
void dvm_pipeline_free(dvm_pipeline *pl);

/* Bytes of sub-provider output (copied). DVM_ERR_LIMIT when pending bytes
 * would exceed max_pending_bytes (nothing taken: retry after the processor
 * made progress); DVM_ERR_STATE after sub_done or failure. */
dvm_err dvm_pipeline_on_sub_chunk(dvm_pipeline *pl, const char *data, size_t len);

/* The sub-provider finished: flush the remainder as a last batch (an
 * incomplete UTF-8 sequence at the very end is dropped). */
dvm_err dvm_pipeline_on_sub_done(dvm_pipeline *pl);

/* The sub-task failed: ERROR(message); pending batches are dropped. */
dvm_err dvm_pipeline_on_sub_error(dvm_pipeline *pl, const char *msg, size_t len);

/* The processor's output for the current batch: OUTPUT(data).
 * DVM_ERR_STATE when no batch is being processed. */
dvm_err dvm_pipeline_on_processor_chunk(dvm_pipeline *pl, const char *data, size_t len);

/* The current batch is done: next PROCESS_BATCH, or DONE at the end. */
dvm_err dvm_pipeline_on_processor_done(dvm_pipeline *pl);

/* The processor failed: ERROR(message). */
dvm_err dvm_pipeline_on_processor_error(dvm_pipeline *pl, const char *msg, size_t len);

/* Abandon the pipeline (our customer stopped): no more actions. */
void dvm_pipeline_cancel(dvm_pipeline *pl);

/* Pop the next queued action into *out; false when none is left. out->text
 * is borrowed (lifetimes above). Drain after every event call. */
bool dvm_pipeline_next_action(dvm_pipeline *pl, dvm_pipeline_action *out);

/* Bytes accepted and not yet handed to the processor. */
size_t dvm_pipeline_pending_bytes(const dvm_pipeline *pl);

/* Count the characters of s as the pipeline does: one per complete UTF-8
 * sequence; in broken input, one per byte of a sequence that is cut short
 * or stray. */
size_t dvm_utf8_count(const char *s, size_t len);

#endif
