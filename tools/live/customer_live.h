/* dvmstream — the live customer: core/session's dvm_customer driven on a
 * libuv loop over the swarm transport, paying with micro-tokens from the
 * HTTP wallet (tools/live/wallet_client.h).
 *
 * Flow: fund the budget from the wallet (minting the shortfall at the mint),
 * dial the provider, send the request; after an acceptable offer split the
 * budget into micro-tokens of sats_per_chunk x chunks_per_payment sats; pay
 * one on each pay_required (or ahead with --prepay); send stop when the
 * budget is spent. Tokens not handed over go back to the wallet's spendable
 * balance (unspent proofs stay in the wallet). */
#ifndef DVM_LIVE_CUSTOMER_LIVE_H
#define DVM_LIVE_CUSTOMER_LIVE_H

#include <stdio.h>

#include "live/joblog.h"
#include "live/live_config.h"

/* Exit codes of `dvm customer`. */
enum {
    DVM_CUSTOMER_EXIT_OK = 0,            /* result received (also after the budget ran out) */
    DVM_CUSTOMER_EXIT_FAILURE = 1,       /* local failure: wallet file, identity, out of memory */
    DVM_CUSTOMER_EXIT_USAGE = 2,         /* bad flags or environment */
    DVM_CUSTOMER_EXIT_UNREACHABLE = 3,   /* no provider reachable (dial or handshake failed, closed before the offer) */
    DVM_CUSTOMER_EXIT_PRICE = 4,         /* price too high, bad offer, or budget below one payment */
    DVM_CUSTOMER_EXIT_PAYMENT = 5,       /* payment failed: funding at the mint or splitting tokens */
    DVM_CUSTOMER_EXIT_PROVIDER = 6,      /* the provider sent `error`, broke the protocol or hung up mid-job */
    DVM_CUSTOMER_EXIT_TIMEOUT = 7        /* the provider went silent (--timeout) */
};

/* Run one job: `input` (input_len bytes) to the provider of cfg->peer.
 * Text goes to `out` as it streams (or, with cfg->json, one JSON summary
 * {"job_id","provider","output","chunks","sats_paid","total_sats","ms"} at
 * the end); status lines to `log`. When `out` is a terminal, control
 * characters in the provider's text other than newline and tab (C0, DEL,
 * C1) are written as U+FFFD; to a pipe or file the text is exact. Returns
 * an exit code above. */
int dvm_customer_live_run(const dvm_customer_cfg *cfg, const char *input, size_t input_len, FILE *out,
                          const dvm_log *log);

#endif
