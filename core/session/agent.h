/* dvmstream — the provider agent: many jobs, one capacity counter.
 *
 * Spec: seeds/streaming-guide-p2p-cashu.md, "Overview" (both channels share
 * a single capacity counter), "Wire Protocol", env MAX_JOBS. Sans-I/O: the
 * driver feeds decoded messages per connection and processor/verifier/timer
 * events per job, and executes the actions.
 *
 * Jobs are keyed by (connection id, job id). Replies to the peer:
 *   request over capacity        -> error "No capacity (n/m slots used)"
 *   request with a job id already running on that connection
 *                                -> error "Duplicate job id"
 *   payment/stop for no such job -> error "Unknown job"
 *   a customer-bound type        -> error "Unexpected message type: <type>"
 *   a line the decoder refused   -> error <decoder's reason>, id = the
 *                                   out->id dvm_msg_decode leaves on error
 *                                   ("" when it could not read one)
 *   during shutdown, a request   -> error "Agent shutting down"
 * and nothing else changes. Every other message goes to the job's
 * dvm_provider (see provider.h for the job's own actions).
 *
 * Capacity: max_jobs slots are shared by P2P jobs and by any other channel
 * (the async platform channel of the seed) through dvm_agent_acquire /
 * dvm_agent_release. A job holds its slot until its DONE action is queued.
 *
 * Money: a job's CLAIM action (all verified, unclaimed tokens of the job in
 * one batch) is emitted when the job ends for any reason, including the
 * connection closing (dvm_agent_connection_closed) and shutdown.
 *
 * Lifetimes: an action's strings stay valid until the next event call on
 * the agent (anything but next_action and the read-only getters). A job's
 * memory is released at the first event call after its DONE action was
 * popped. Not thread-safe. */
#ifndef DVM_SESSION_AGENT_H
#define DVM_SESSION_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "session/provider.h"
#include "wire/msg.h"

#define DVM_DEFAULT_MAX_JOBS 3 /* MAX_JOBS */

typedef struct dvm_agent_config {
    size_t max_jobs;             /* slots shared by every channel (default 3) */
    dvm_provider_config provider;/* per-job settings (price, timeout, bounds) */
} dvm_agent_config;

/* Defaults: max_jobs 3 and dvm_provider_config_default. */
void dvm_agent_config_default(dvm_agent_config *cfg);

/* One action: a provider action of job `job` on connection `conn`.
 * job == 0 for the agent's own replies (act.type == DVM_PACT_SEND, an
 * `error` message). For DONE the driver drops its per-job state (timer,
 * processor); the capacity slot is already released. */
typedef struct dvm_agent_action {
    uint64_t conn;
    uint64_t job;            /* job handle, 1, 2, ... (never reused) */
    dvm_provider_action act;
} dvm_agent_action;

typedef struct dvm_agent dvm_agent;

/* Allocate an agent (cfg NULL = defaults). NULL on allocation failure or a
 * provider config dvm_provider_new refuses. */
dvm_agent *dvm_agent_new(const dvm_agent_config *cfg);

/* Free the agent and every job (no CLAIM is emitted: shut down and drain
 * first if tokens may be held). NULL is fine. */
void dvm_agent_free(dvm_agent *a);

/* A decoded message from connection `conn`. Returns DVM_OK or the reason a
 * reply `error` was queued: DVM_ERR_LIMIT (no capacity), DVM_ERR_EXISTS
 * (duplicate job id), DVM_ERR_NOT_FOUND (unknown job), DVM_ERR_PROTO
 * (unexpected type), DVM_ERR_STATE (shutting down), or the job's own
 * error (see dvm_provider_handle_msg). */
dvm_err dvm_agent_handle_msg(dvm_agent *a, uint64_t conn, const dvm_msg *m, uint64_t now_ms);

/* The framer or decoder refused a line from `conn`: reply error{id,
 * message: reason}. `id` is the job id if the decoder could read one
 * (else empty), `reason` the decoder's message (copied, cut at 512 bytes). */
dvm_err dvm_agent_handle_decode_error(dvm_agent *a, uint64_t conn, dvm_str id, dvm_str reason,
                                      uint64_t now_ms);

/* Per-job events; DVM_ERR_NOT_FOUND for an unknown or finished job handle,
 * otherwise as the dvm_provider_* function of the same name. */
dvm_err dvm_agent_on_verify(dvm_agent *a, uint64_t job, uint64_t verify_id,
                            const dvm_verify_result *r, uint64_t now_ms);
dvm_err dvm_agent_on_chunk(dvm_agent *a, uint64_t job, const char *data, size_t len,
                           uint64_t now_ms);
dvm_err dvm_agent_on_generation_done(dvm_agent *a, uint64_t job, uint64_t now_ms);
dvm_err dvm_agent_on_generation_error(dvm_agent *a, uint64_t job, const char *msg, size_t len,
                                      uint64_t now_ms);

/* Fire every job timer due at now_ms. Call at dvm_agent_deadline(a) (or at
 * any job's SET_TIMER deadline; early calls are harmless). */
dvm_err dvm_agent_on_timer(dvm_agent *a, uint64_t now_ms);

/* Earliest timer deadline of all jobs (ms), UINT64_MAX if none. */
uint64_t dvm_agent_deadline(const dvm_agent *a);

/* Connection `conn` is gone: every job on it ends without messages
 * (CANCEL_GENERATION, CLAIM of its tokens, DONE). */
dvm_err dvm_agent_connection_closed(dvm_agent *a, uint64_t conn, uint64_t now_ms);

/* Stop taking jobs; end every running job with a result (stop semantics),
 * claim, DONE. Later requests get "Agent shutting down". */
dvm_err dvm_agent_shutdown(dvm_agent *a, uint64_t now_ms);

/* Take a capacity slot for another channel: DVM_OK, or DVM_ERR_LIMIT when
 * all max_jobs slots are used. */
dvm_err dvm_agent_acquire(dvm_agent *a);

/* Give back a slot taken with dvm_agent_acquire (DVM_ERR_STATE if none). */
dvm_err dvm_agent_release(dvm_agent *a);

/* Slots in use (P2P jobs not yet DONE + acquired), and the limit. */
size_t dvm_agent_active(const dvm_agent *a);
size_t dvm_agent_max_jobs(const dvm_agent *a);

/* Pop the next action; false when none is left. */
bool dvm_agent_next_action(dvm_agent *a, dvm_agent_action *out);

/* The job's provider (read-only use: stats, id) or NULL. Valid until the
 * job is released (see Lifetimes). */
const dvm_provider *dvm_agent_job(const dvm_agent *a, uint64_t job);

/* The handle of the running job (conn, id), or 0. */
uint64_t dvm_agent_find(const dvm_agent *a, uint64_t conn, dvm_str id);

#endif
