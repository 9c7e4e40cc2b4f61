/* dvmstream — one provider job as a sans-I/O state machine.
 *
 * Spec: seeds/streaming-guide-p2p-cashu.md, "Message Flow", "Message Types",
 * "Cashu Payment Flow / Provider Side". Behaviour follows the reference
 * agent where the seed is silent (error texts, result after stop, lazy
 * pay_required), with two deliberate improvements: credit keeps the
 * remainder of a payment that is not a multiple of sats_per_chunk (no
 * fractional sat is lost), and every chunk carries the `seq` extension.
 *
 * Life of a job:
 *   request            -> SEND offer, SET_TIMER(now + payment_timeout_ms)
 *   payment            -> VERIFY_TOKEN(verify_id, token)   (driver verifies)
 *   on_verify(OK, n)   -> SEND payment_ack(n); first time credit > 0:
 *                         SEND accepted, START_GENERATION(kind, input)
 *   on_chunk(data)     -> credit > 0: SEND chunk(data, seq), credit -= 1
 *                         credit = 0: queue it, SEND pay_required(earned,
 *                         next), PAUSE_GENERATION, SET_TIMER
 *   on_verify(OK, n)   -> flush queued chunks, RESUME_GENERATION
 *   on_generation_done -> SEND result(output, total_sats), CLAIM, DONE
 *                         (CLAIM only when the job holds verified tokens;
 *                         CANCEL_TIMER wherever a timer was pending)
 *   stop               -> SEND result (output so far; "" before accepted),
 *                         CANCEL_GENERATION, CLAIM, DONE
 *   timer (1st payment)-> SEND error "Payment timeout after Nms", DONE
 *   timer (later)      -> SEND error "Payment timeout after Nms", SEND
 *                         result, CANCEL_GENERATION, CLAIM, DONE
 *   generation error   -> SEND error(message), SEND result, CLAIM, DONE
 *
 * pay_required is lazy, as in the reference: it is sent when the processor
 * delivers a chunk and no credit is left, never merely because credit hit
 * zero, so a job whose output ends exactly on a payment boundary finishes
 * with `result` and no pay_required.
 *
 * Credit accounting (all in sats unless noted), with spc = sats_per_chunk:
 *   earned                = sum of verified payment amounts (total_sats)
 *   credit (chunks)       = floor((carry + amount) / spc) added per payment
 *   carry (sats, < spc)   = (carry + amount) mod spc, kept for the next one
 *   invariant: chunks_sent * spc + credit * spc + carry == earned
 *
 * Memory and lifetimes: the job owns copies of everything it keeps (job id,
 * input, tokens, output). Strings in an action (msg fields, token, input,
 * claim tokens, message) stay valid until the next *event* call on the same
 * provider (handle_msg, on_verify, on_chunk, on_generation_*, on_timer,
 * abort, end) or dvm_provider_free; draining with next_action does not
 * invalidate earlier actions. Steady-state streaming does not call malloc
 * (buffers grow geometrically and are reused). Not thread-safe; one thread
 * at a time per provider. */
#ifndef DVM_SESSION_PROVIDER_H
#define DVM_SESSION_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/buf.h"
#include "wire/msg.h"

/* Defaults, named as the reference agent's environment variables. */
#define DVM_DEFAULT_SATS_PER_CHUNK 1        /* SATS_PER_CHUNK, sats */
#define DVM_DEFAULT_CHUNKS_PER_PAYMENT 10   /* CHUNKS_PER_PAYMENT, chunks */
#define DVM_DEFAULT_PAYMENT_TIMEOUT_MS 30000 /* PAYMENT_TIMEOUT, ms */

typedef struct dvm_provider_config {
    uint64_t sats_per_chunk;     /* sats, >= 1 (default 1) */
    uint64_t chunks_per_payment; /* chunks, >= 1 (default 10) */
    uint64_t payment_timeout_ms; /* ms to wait for a payment (default 30000) */
    /* Bound on chunks held while paused for payment (the processor may
     * deliver a few after PAUSE_GENERATION). on_chunk beyond either bound
     * returns DVM_ERR_LIMIT and does not take the chunk. Defaults 64 chunks
     * and 1 MiB. */
    size_t max_queued_chunks;
    size_t max_queued_bytes;
    /* The output kept for `result` (bytes). Exceeding it ends the job like a
     * generation error ("Output limit exceeded"). Default 512 KiB, so the
     * result line stays under the framer's default 1 MiB line limit for
     * ordinary text. */
    size_t max_output_bytes;
    size_t max_payments;     /* payments per job (default 4096) */
    size_t max_token_bytes;  /* bytes of all tokens of a job (default 4 MiB) */
    size_t max_input_bytes;  /* request input kept (default 1 MiB) */
    bool send_seq;           /* add `seq` to chunks (default true) */
    /* Repair processor output for the wire (default true): a UTF-8
     * sequence cut at the end of a chunk is held back and sent with the
     * next chunk (dropped if generation ends first); any other invalid
     * byte becomes U+FFFD. With false, chunks must already be valid UTF-8
     * (the codec refuses to encode anything else). */
    bool fix_utf8;
} dvm_provider_config;

/* Fill *cfg with the defaults above. */
void dvm_provider_config_default(dvm_provider_config *cfg);

/* Outcome of a VERIFY_TOKEN action, fed back with dvm_provider_on_verify.
 * The payment policy (core/cashu) decides; the session only acts on it. */
typedef enum dvm_verify_outcome {
    DVM_VERIFY_OK = 0,       /* accepted: credit `amount` sats; the token is
                                held unclaimed and goes into CLAIM */
    DVM_VERIFY_OK_CLAIMED,   /* accepted and already swapped into our wallet
                                (policy swapped first): credit, no CLAIM */
    DVM_VERIFY_REJECTED,     /* refused: `reason` goes to the customer as
                                error "Payment failed: <reason>" */
    DVM_VERIFY_SWAP_FIRST,   /* not final: the driver swaps the token at the
                                mint, then calls on_verify again (same id) */
    DVM_VERIFY_CLAIM_FIRST   /* not final: the driver claims held tokens to
                                get under its unclaimed bound, then calls
                                on_verify again (same id) */
} dvm_verify_outcome;

typedef struct dvm_verify_result {
    dvm_verify_outcome outcome;
    uint64_t amount;   /* sats; meaningful for OK / OK_CLAIMED */
    dvm_str reason;    /* REJECTED: short reason; borrowed for the call */
} dvm_verify_result;

typedef enum dvm_provider_state {
    DVM_PROVIDER_IDLE = 0,     /* no request yet */
    DVM_PROVIDER_OFFERED,      /* offer sent, waiting for the first payment */
    DVM_PROVIDER_STREAMING,    /* generating, credit available */
    DVM_PROVIDER_WAIT_PAYMENT, /* pay_required sent, generation paused */
    DVM_PROVIDER_CLOSING,      /* ended; waiting for pending verifications */
    DVM_PROVIDER_DONE          /* DONE action emitted; only free remains */
} dvm_provider_state;

typedef enum dvm_provider_end {
    DVM_PROVIDER_END_COMPLETED = 1,    /* processor finished, result sent */
    DVM_PROVIDER_END_STOPPED,          /* customer sent stop, result sent */
    DVM_PROVIDER_END_PAYMENT_TIMEOUT,  /* no payment in payment_timeout_ms */
    DVM_PROVIDER_END_GENERATION_ERROR, /* processor failed (or output limit) */
    DVM_PROVIDER_END_ABORTED,          /* dvm_provider_abort: peer gone */
    DVM_PROVIDER_END_SHUTDOWN          /* dvm_provider_end: agent shutting down */
} dvm_provider_end;

typedef enum dvm_provider_action_type {
    DVM_PACT_SEND = 1,          /* send `msg` to the customer */
    DVM_PACT_VERIFY_TOKEN,      /* verify `token`; answer with on_verify(verify_id) */
    DVM_PACT_START_GENERATION,  /* start the processor on `kind`, `input` */
    DVM_PACT_PAUSE_GENERATION,  /* stop pulling from the processor */
    DVM_PACT_RESUME_GENERATION, /* pull again */
    DVM_PACT_CANCEL_GENERATION, /* stop and discard the processor */
    DVM_PACT_SET_TIMER,         /* call on_timer at `deadline_ms` (replaces
                                   the previous deadline) */
    DVM_PACT_CANCEL_TIMER,      /* no timer needed any more */
    DVM_PACT_CLAIM,             /* claim `tokens[0..n_tokens)` (claim_sats in
                                   total) at the mint in one batch; emitted
                                   once per job, only when n_tokens > 0 */
    DVM_PACT_DONE               /* the job is over (`end`); free it */
} dvm_provider_action_type;

typedef struct dvm_provider_action {
    dvm_provider_action_type type;
    dvm_msg msg;          /* SEND: offer, payment_ack, accepted, chunk,
                             pay_required, result or error; msg.id = job id */
    uint64_t verify_id;   /* VERIFY_TOKEN: 1, 2, ... per job */
    dvm_str token;        /* VERIFY_TOKEN: the token string as received */
    uint64_t kind;        /* START_GENERATION */
    dvm_str input;        /* START_GENERATION */
    uint64_t deadline_ms; /* SET_TIMER: absolute, same clock as now_ms */
    const dvm_str *tokens;/* CLAIM: verified, unclaimed tokens of the job */
    size_t n_tokens;      /* CLAIM */
    uint64_t claim_sats;  /* CLAIM: sum of their verified amounts */
    dvm_provider_end end; /* DONE */
} dvm_provider_action;

typedef struct dvm_provider dvm_provider;

/* Allocate a provider job with `cfg` (NULL = defaults). Returns NULL on
 * allocation failure or an invalid config (sats_per_chunk or
 * chunks_per_payment 0, or their product over 2^53-1). Free with
 * dvm_provider_free. */
dvm_provider *dvm_provider_new(const dvm_provider_config *cfg);

/* Release everything the job owns (NULL is fine). Strings handed out in
 * actions become invalid. Tokens not yet claimed are NOT claimed: drain
 * the actions (or call dvm_provider_abort and drain) first. */
void dvm_provider_free(dvm_provider *p);

/* Feed a decoded message from the customer. Accepted: `request` (IDLE
 * only), `payment`, `stop`. Errors (nothing else changes):
 *   DVM_ERR_STATE   request when not IDLE, or any message when DONE
 *   DVM_ERR_NOT_FOUND payment/stop whose id is not this job's (ignored)
 *   DVM_ERR_PROTO   a provider->customer type, or payment/stop before the
 *                   request; no action is emitted
 *   DVM_ERR_LIMIT   payment over max_payments/max_token_bytes (an `error`
 *                   "Too many payments" is sent)
 *   DVM_ERR_INVALID payment with an empty token (an `error` "Payment missing
 *                   token" is sent, as the reference does)
 *   DVM_ERR_TOO_LARGE request input or id over the limits (error sent, job
 *                   DONE)
 *   DVM_ERR_NOMEM */
dvm_err dvm_provider_handle_msg(dvm_provider *p, const dvm_msg *m, uint64_t now_ms);

/* Outcome of VERIFY_TOKEN `verify_id`. DVM_ERR_NOT_FOUND for an unknown or
 * already finished id. OK credits the job and sends payment_ack(amount); a
 * driver that must persist the token (DESIGN.md "Money is never lost")
 * commits it before calling this. A verification that completes after the
 * job ended is still counted in earned and claimed, but no message is sent. */
dvm_err dvm_provider_on_verify(dvm_provider *p, uint64_t verify_id,
                               const dvm_verify_result *r, uint64_t now_ms);

/* One chunk of output from the processor (`len` bytes, copied; any bytes
 * with fix_utf8, else valid UTF-8). A chunk that holds only the start of a
 * character sends nothing yet. DVM_ERR_STATE before START_GENERATION or
 * after the job ended (the chunk is dropped); DVM_ERR_LIMIT when the pause
 * queue is full or the chunk is over max_queued_bytes (the chunk is NOT
 * taken; honour PAUSE_GENERATION). */
dvm_err dvm_provider_on_chunk(dvm_provider *p, const char *data, size_t len, uint64_t now_ms);

/* The fused chunk hot path for drivers that encode with wire/codec.h:
 * exactly equivalent to dvm_provider_on_chunk(p, data, len, now_ms)
 * followed, when that queues nothing but the SEND chunk action, by popping
 * it and dvm_msg_encode'ing it onto `wire` (same bytes, appended). In that
 * common case (STREAMING with credit, no action pending, valid UTF-8 with
 * nothing held from a previous chunk, room in the output buffer) the chunk
 * is encoded straight into `wire` and no action is materialised. In every
 * other case (including a failing encode: bad UTF-8, `wire` over its max,
 * out of memory) it is dvm_provider_on_chunk itself and `wire` is left as
 * it was: drain actions with dvm_provider_next_action as always (a driver
 * must keep doing so after every call). Returns what on_chunk returns
 * (DVM_OK when the chunk went straight to `wire`). `wire` is the caller's,
 * only appended to; the session keeps no pointer into it. */
dvm_err dvm_provider_on_chunk_encode(dvm_provider *p, const char *data, size_t len,
                                     uint64_t now_ms, dvm_buf *wire);

/* The processor finished. Ends the job with `result` once queued chunks are
 * sent. DVM_ERR_STATE if generation was not started or the job ended. */
dvm_err dvm_provider_on_generation_done(dvm_provider *p, uint64_t now_ms);

/* The processor failed with `message` (copied): error(message) + result.
 * DVM_ERR_STATE as above. */
dvm_err dvm_provider_on_generation_error(dvm_provider *p, const char *message, size_t len,
                                         uint64_t now_ms);

/* A timer set by SET_TIMER is due. Calls before the deadline are harmless
 * (DVM_OK, nothing happens). */
dvm_err dvm_provider_on_timer(dvm_provider *p, uint64_t now_ms);

/* The customer's connection is gone: end without sending anything
 * (CANCEL_GENERATION, CLAIM, DONE). DVM_ERR_STATE if already ended. */
dvm_err dvm_provider_abort(dvm_provider *p, uint64_t now_ms);

/* Agent shutdown: end like a `stop` (result with the output so far).
 * A job still waiting for its first payment ends without a result.
 * DVM_ERR_STATE if already ended. */
dvm_err dvm_provider_end_job(dvm_provider *p, uint64_t now_ms);

/* Pop the next action into *out; false when none is left. */
bool dvm_provider_next_action(dvm_provider *p, dvm_provider_action *out);

/* Number of actions queued and not yet popped. */
size_t dvm_provider_actions_pending(const dvm_provider *p);

/* The pending timer deadline (ms), or UINT64_MAX when none. */
uint64_t dvm_provider_deadline(const dvm_provider *p);

/* Counters for drivers, logs and invariants. */
typedef struct dvm_provider_stats {
    dvm_provider_state state;
    uint64_t earned_sats;    /* verified sats (what result's total_sats says) */
    uint64_t credit_chunks;  /* chunks paid for and not yet sent */
    uint64_t carry_sats;     /* remainder below sats_per_chunk */
    uint64_t chunks_sent;    /* chunk messages emitted (== last seq) */
    uint64_t chunks_queued;  /* held while waiting for payment */
    uint64_t payments;       /* payment messages taken for verification */
    uint64_t payments_pending; /* verifications not yet answered */
    uint64_t output_bytes;   /* bytes of output sent */
} dvm_provider_stats;

/* Fill *out with the current counters. */
void dvm_provider_get_stats(const dvm_provider *p, dvm_provider_stats *out);

/* The job id (empty before the request). Valid while the provider lives. */
dvm_str dvm_provider_job_id(const dvm_provider *p);

/* Static name of a state / end reason, for logs. */
const char *dvm_provider_state_name(dvm_provider_state s);
const char *dvm_provider_end_name(dvm_provider_end e);

#endif
