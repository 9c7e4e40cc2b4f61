/* dvmstream — the live provider agent: core/session's dvm_agent driven on a
 * libuv loop over the swarm transport (tools/live/swarm.h), paid through
 * core/cashu's payment policy and the HTTP wallet (tools/live/wallet_client.h),
 * output from a processor (tools/live/processor.h).
 *
 * Money (DESIGN.md "Money is never lost"):
 *  - a payment's token is decoded and checked by the policy (trusted mint,
 *    unit sat, DLEQ, replay, unclaimed bound); an accepted token is
 *    committed to the SQLite wallet as INCOMING before payment_ack is sent;
 *    a token without DLEQ is swapped at the mint before it is credited;
 *  - when a job ends (result, stop, error, payment timeout, customer gone,
 *    shutdown) its tokens are claimed in one batch; a claim that fails (mint
 *    down) stays INCOMING in the store and is retried with backoff, and at
 *    every start (open operations are recovered first).
 *
 * Runs until SIGINT/SIGTERM: then stops taking jobs, ends running jobs with
 * a result, claims, closes connections and returns 0. */
#ifndef DVM_LIVE_AGENT_LIVE_H
#define DVM_LIVE_AGENT_LIVE_H

#include "live/joblog.h"
#include "live/live_config.h"

/* Run the agent with `cfg` (see live_config.h) logging to `log`. Returns
 * the process exit code: 0 after a signal-initiated shutdown, 1 when
 * startup failed (reason logged). */
int dvm_agent_live_run(const dvm_agent_cfg *cfg, const dvm_log *log);

/* Default data file: $XDG_DATA_HOME/dvm/NAME, else ~/.local/share/dvm/NAME,
 * the directory created 0700. 0, or -1 when neither variable is set. */
int dvm_live_data_path(const char *name, char *out, size_t cap);

#endif
