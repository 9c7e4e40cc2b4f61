/* dvmstream — one customer job as a sans-I/O state machine.
 *
 * Spec: seeds/streaming-guide-p2p-cashu.md, "Message Flow", "Cashu Payment
 * Flow / Customer Side"; checks as the reference customer: price
 * (sats_per_chunk <= max_sats_per_chunk), sats_per_payment =
 * sats_per_chunk * chunks_per_payment > 0, budget >= one payment.
 *
 * Life of a job:
 *   dvm_customer_start       -> SEND request{id, kind, input, budget}, SET_TIMER
 *   offer (acceptable)       -> NEED_TOKEN(req_id, sats_per_payment) x (1 +
 *                               prepay_window, within budget)
 *   offer (not acceptable)   -> SEND stop, DONE(PRICE_TOO_HIGH | BAD_OFFER |
 *                               BUDGET_TOO_SMALL)
 *   on_token(req_id, token)  -> SEND payment{token}
 *   chunk                    -> deliver (callback or pull buffer); `seq`
 *                               checked when present: a gap or duplicate ends
 *                               the job (SEND stop, DONE(PROTOCOL))
 *   pay_required             -> NEED_TOKEN if the budget allows and no payment
 *                               already in flight covers the next chunk;
 *                               otherwise SEND stop (budget exhausted) and
 *                               wait for `result`
 *   result                   -> DONE(OK or BUDGET_EXHAUSTED or STOPPED)
 *   error                    -> DONE(PROVIDER_ERROR, message)
 *   timer (provider silent)  -> SEND stop, DONE(TIMEOUT)
 *
 * Money: the customer never asks for a token that would make the sats it
 * committed (tokens requested, paid or not) exceed the budget:
 *   invariant: sats_paid <= sats_committed <= budget.
 * A token that arrives after the job ended is handed back with
 * RETURN_TOKEN so the wallet keeps it (unspent proofs stay in the wallet).
 *
 * prepay_window N (default 0 = the reference behaviour, pay only on
 * pay_required): after the offer up to 1 + N payments are made, and while
 * streaming another one is made whenever the paid-but-unconsumed sats
 * (sats_paid - chunks * sats_per_chunk) fall to N * sats_per_payment or
 * below, so the provider never runs out of credit when the network keeps
 * up. A pay_required that arrives while a payment already in flight covers
 * the next chunk is not paid twice.
 *
 * Consuming the stream (both work on the same session):
 *   - callbacks: set on_chunk (and on_done / on_error); chunks are handed
 *     over during dvm_customer_handle_msg and not buffered;
 *   - pull: leave on_chunk NULL; chunks are buffered (bounded by
 *     max_buffered_bytes) and read with dvm_customer_read.
 *
 * Lifetimes: strings in actions stay valid until the next event call
 * (start, handle_msg, on_token, on_token_failed, on_timer, stop, close) or
 * free; a string from dvm_customer_read until the next read or event call.
 * Not thread-safe. */
#ifndef DVM_SESSION_CUSTOMER_H
#define DVM_SESSION_CUSTOMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "wire/codec.h"
#include "wire/msg.h"

#define DVM_DEFAULT_MAX_SATS_PER_CHUNK 5 /* MAX_SATS_PER_CHUNK, sats */

typedef enum dvm_customer_status {
    DVM_CUSTOMER_RUNNING = 0,
    DVM_CUSTOMER_OK,               /* result received */
    DVM_CUSTOMER_BUDGET_EXHAUSTED, /* we sent stop for lack of budget; the
                                      result (if any) is kept */
    DVM_CUSTOMER_STOPPED,          /* dvm_customer_stop by the embedder */
    DVM_CUSTOMER_PRICE_TOO_HIGH,   /* sats_per_chunk > max_sats_per_chunk */
    DVM_CUSTOMER_BAD_OFFER,        /* sats_per_payment 0 or overflowing */
    DVM_CUSTOMER_BUDGET_TOO_SMALL, /* budget < sats_per_payment */
    DVM_CUSTOMER_PAYMENT_FAILED,   /* the token source failed */
    DVM_CUSTOMER_PROVIDER_ERROR,   /* provider sent `error` */
    DVM_CUSTOMER_TIMEOUT,          /* provider silent for idle_timeout_ms */
    DVM_CUSTOMER_PROTOCOL,         /* seq gap/duplicate, message out of order */
    DVM_CUSTOMER_CLOSED,           /* connection lost (dvm_customer_close) */
    DVM_CUSTOMER_OVERFLOW          /* pull buffer over max_buffered_bytes */
} dvm_customer_status;

typedef struct dvm_customer_callbacks {
    /* A chunk's data (borrowed for the call). */
    void (*on_chunk)(void *ctx, const char *data, size_t len);
    /* The job ended with OK, BUDGET_EXHAUSTED or STOPPED; `output` is the
     * result's output (borrowed; empty when no result arrived). */
    void (*on_done)(void *ctx, dvm_customer_status st, const char *output, size_t len,
                    uint64_t total_sats);
    /* The job failed with any other status; `message` is NUL-terminated. */
    void (*on_error)(void *ctx, dvm_customer_status st, const char *message);
    void *ctx;
} dvm_customer_callbacks;

typedef struct dvm_customer_config {
    uint64_t max_sats_per_chunk; /* sats (default 5) */
    uint64_t prepay_window;      /* payments ahead (default 0) */
    uint64_t idle_timeout_ms;    /* provider silence that ends the job
                                    (default 60000); 0 = never. The clock
                                    also runs while the driver is getting a
                                    token (NEED_TOKEN), so keep the wallet
                                    faster than this. */
    size_t max_buffered_bytes;   /* pull buffer (default 4 MiB) */
    size_t max_result_bytes;     /* result output kept (default 1 MiB) */
    size_t max_token_bytes;      /* one token string (default 256 KiB) */
} dvm_customer_config;

/* Fill *cfg with the defaults. */
void dvm_customer_config_default(dvm_customer_config *cfg);

typedef enum dvm_customer_action_type {
    DVM_CACT_SEND = 1,    /* send `msg` to the provider */
    DVM_CACT_NEED_TOKEN,  /* get a token of exactly `amount` sats; answer
                             with on_token / on_token_failed (token_req) */
    DVM_CACT_RETURN_TOKEN,/* a token we got but never sent: keep it */
    DVM_CACT_SET_TIMER,   /* call on_timer at `deadline_ms` */
    DVM_CACT_CANCEL_TIMER,
    DVM_CACT_DONE         /* the job is over: `status`, `message` */
} dvm_customer_action_type;

typedef struct dvm_customer_action {
    dvm_customer_action_type type;
    dvm_msg msg;          /* SEND: request, payment or stop */
    uint64_t token_req;   /* NEED_TOKEN: 1, 2, ... */
    uint64_t amount;      /* NEED_TOKEN / RETURN_TOKEN: sats */
    dvm_str token;        /* RETURN_TOKEN */
    uint64_t deadline_ms; /* SET_TIMER */
    dvm_customer_status status; /* DONE */
    dvm_str message;      /* DONE: reason (empty for OK) */
} dvm_customer_action;

typedef struct dvm_customer dvm_customer;

/* Allocate a customer job (cfg NULL = defaults; cb NULL = pull mode, no
 * callbacks; the struct is copied). NULL on allocation failure. */
dvm_customer *dvm_customer_new(const dvm_customer_config *cfg, const dvm_customer_callbacks *cb);

/* Free (NULL is fine). Tokens not yet returned are the driver's: it saw them
 * in on_token. */
void dvm_customer_free(dvm_customer *c);

/* Begin the job: SEND request{id, kind, input, budget (sats)}, SET_TIMER.
 * Strings are copied. DVM_ERR_STATE if already started; DVM_ERR_INVALID if
 * budget or kind is over 2^53-1 or id/input is not valid UTF-8;
 * DVM_ERR_TOO_LARGE for an id over 1 KiB or an input over 16 MiB. */
dvm_err dvm_customer_start(dvm_customer *c, dvm_str job_id, uint64_t kind, dvm_str input,
                           uint64_t budget, uint64_t now_ms);

/* Feed a decoded message from the provider. Messages for another job id
 * return DVM_ERR_NOT_FOUND and change nothing; provider-bound types
 * (request, payment, stop) DVM_ERR_PROTO; anything after the end
 * DVM_ERR_STATE (ignored). A message that ends the job with a protocol
 * error returns DVM_ERR_PROTO after queuing stop + DONE. */
dvm_err dvm_customer_handle_msg(dvm_customer *c, const dvm_msg *m, uint64_t now_ms);

/* One NDJSON line from the provider (without its newline), decoded and
 * handled: exactly dvm_msg_decode(d, line, len, &m, reason, reason_cap)
 * and, when that succeeds, dvm_customer_handle_msg(c, &m, now_ms). The
 * chunk lines of this job (they start with the bytes dvm_msg_encode writes
 * for its id) are decoded and accounted in one step without building a
 * dvm_msg; everything else goes the general way. *decode_err (if not NULL)
 * gets the decode result (DVM_OK, or its error with `reason` filled as
 * dvm_msg_decode does); the return value is that decode error, or else
 * what dvm_customer_handle_msg returns. Chunk data handed to on_chunk
 * points into `line` or d's scratch, as with dvm_msg_decode. */
dvm_err dvm_customer_handle_line(dvm_customer *c, dvm_msg_decoder *d, const void *line,
                                 size_t len, uint64_t now_ms, char *reason, size_t reason_cap,
                                 dvm_err *decode_err);

/* The token for NEED_TOKEN `token_req` (copied): SEND payment. After the
 * end it comes back as RETURN_TOKEN. DVM_ERR_NOT_FOUND for an unknown or
 * answered request; DVM_ERR_INVALID for an empty, oversize (max_token_bytes)
 * or non-UTF-8 token (treated as a failure of the token source). */
dvm_err dvm_customer_on_token(dvm_customer *c, uint64_t token_req, dvm_str token, uint64_t now_ms);

/* The token source failed for `token_req` (reason NUL-terminated, copied):
 * SEND stop, DONE(PAYMENT_FAILED). */
dvm_err dvm_customer_on_token_failed(dvm_customer *c, uint64_t token_req, const char *reason,
                                     uint64_t now_ms);

/* A SET_TIMER deadline passed (early calls are harmless). */
dvm_err dvm_customer_on_timer(dvm_customer *c, uint64_t now_ms);

/* The embedder wants to stop: SEND stop, then wait for the result
 * (DONE(STOPPED)). DVM_ERR_STATE if not running. */
dvm_err dvm_customer_stop(dvm_customer *c, uint64_t now_ms);

/* The connection is gone: DONE(CLOSED) unless already done. */
dvm_err dvm_customer_close(dvm_customer *c, uint64_t now_ms);

/* The pending timer deadline (ms), or UINT64_MAX when none. */
uint64_t dvm_customer_deadline(const dvm_customer *c);

/* Pop the next action; false when none is left. */
bool dvm_customer_next_action(dvm_customer *c, dvm_customer_action *out);

/* Pull mode: DVM_OK with the next chunk in *out (valid until the next read
 * or event call); DVM_ERR_AGAIN when no chunk is buffered and the job is
 * running; DVM_ERR_STATE when no chunk is buffered and the job is done
 * (see dvm_customer_status_of). */
dvm_err dvm_customer_read(dvm_customer *c, dvm_str *out);

typedef struct dvm_customer_stats {
    dvm_customer_status status;
    uint64_t budget;          /* sats */
    uint64_t sats_committed;  /* sats of tokens requested (paid or pending) */
    uint64_t sats_paid;       /* sats sent in payment messages */
    uint64_t sats_acked;      /* sum of payment_ack amounts */
    uint64_t chunks;          /* chunks received */
    uint64_t bytes;           /* chunk bytes received */
    uint64_t sats_per_chunk;  /* from the offer (0 before) */
    uint64_t sats_per_payment;/* from the offer (0 before) */
    uint64_t total_sats;      /* result's total_sats (0 before) */
    bool has_result;
} dvm_customer_stats;

/* Snapshot of the job's accounting into *out (all amounts in sats, bytes
 * of chunk payload); status is DVM_CUSTOMER_RUNNING until DONE is queued.
 * No errors, no allocation. */
void dvm_customer_get_stats(const dvm_customer *c, dvm_customer_stats *out);

/* The job's status; DVM_CUSTOMER_RUNNING until DONE is queued. */
dvm_customer_status dvm_customer_status_of(const dvm_customer *c);

/* The result's output (empty before); valid while the customer lives. */
dvm_str dvm_customer_result(const dvm_customer *c);

/* The reason of the end (NUL-terminated, "" while running or OK). */
const char *dvm_customer_reason(const dvm_customer *c);

/* Static name of a status ("ok", "price_too_high", ...). */
const char *dvm_customer_status_name(dvm_customer_status s);

#endif
