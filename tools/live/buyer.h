/* dvmstream — buying one streamed job on a libuv loop: core/session's
 * dvm_customer over a direct swarm connection, paid with micro-tokens from
 * an HTTP wallet. Used by `dvm customer` and by the agent's SUB_KIND
 * pipeline (the agent buys its sub-task from another agent).
 *
 * After an acceptable offer the budget is split into micro-tokens of
 * sats_per_chunk x chunks_per_payment (dvm_wallet_client_split; the wallet
 * must already hold the budget); one is paid per pay_required (or ahead,
 * prepay); stop is sent when the budget is spent. Tokens never handed over
 * are released back to the wallet's spendable balance at the end. */
#ifndef DVM_LIVE_BUYER_H
#define DVM_LIVE_BUYER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "live/joblog.h"
#include "live/wallet_client.h"
#include "session/customer.h"

typedef struct dvm_buyer dvm_buyer;

typedef struct dvm_buyer_opts {
    uint64_t kind;               /* job kind requested */
    uint64_t budget;             /* sats */
    uint64_t max_sats_per_chunk; /* sats */
    uint64_t prepay;             /* payments ahead (0 = on pay_required) */
    uint64_t timeout_ms;         /* provider silence that ends the job */
    const char *peer;            /* HOST:PORT[@PUBKEYHEX] */
    dvm_wallet_client *wallet;   /* borrowed; must outlive the buyer */
    const dvm_log *log;          /* borrowed */
    const char *who;             /* log prefix for sub-jobs ("sub"), or NULL */
    bool plaintext;              /* debugging: no SecretStream (dvm_conn_options.plaintext) */
    /* Optional (NULL: none), borrowed: held around the budget's split
     * (dvm_wallet_client_split: swaps, each an open operation while in
     * flight). A process where another thread may run
     * dvm_wallet_client_recover on the same wallet file (the agent's
     * claims) passes the mutex those take, so no recovery reverts the
     * split's swap in flight (its new proofs would then have nowhere to
     * go: lost). Taken on the loop thread, which waits while another
     * holder runs: a holder must never wait on this loop. */
    uv_mutex_t *wallet_mu;
} dvm_buyer_opts;

/* How a job ended. Pointers are valid during on_end only. */
typedef struct dvm_buyer_result {
    bool reached;                /* a provider connection was made */
    dvm_customer_status status;  /* DVM_CUSTOMER_RUNNING if never started */
    const char *reason;          /* "" when OK */
    const char *job_id;          /* 32 hex */
    const char *provider;        /* 64 hex, "" if unreached */
    dvm_str output;              /* the result's output (may be empty) */
    uint64_t chunks, sats_paid, total_sats;
} dvm_buyer_result;

typedef struct dvm_buyer_cbs {
    void (*on_chunk)(void *ud, const char *data, size_t len);
    /* Exactly once (unless cancelled); the buyer frees itself afterwards. */
    void (*on_end)(void *ud, const dvm_buyer_result *r);
    void *ud;
} dvm_buyer_cbs;

/* Dial opts->peer and buy a job on input[0..len) (copied). 0, or -1 with a
 * reason (bad peer address, out of memory); then no callback is made. */
int dvm_buyer_start(uv_loop_t *loop, const dvm_buyer_opts *opts, const char *input, size_t len,
                    const dvm_buyer_cbs *cbs, dvm_buyer **out, char *err, size_t errlen);

/* Ask the provider to stop (the job ends with its result; on_end follows). */
void dvm_buyer_stop(dvm_buyer *b);

/* Abandon: close now, no callback after this; freed asynchronously. */
void dvm_buyer_cancel(dvm_buyer *b);

/* The job id (32 hex). */
const char *dvm_buyer_job_id(const dvm_buyer *b);

#endif
