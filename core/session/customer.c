#include "session/customer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session/sref.h"
#include "wire/chunk_fast.h"
#include "wire/utf8.h"

enum { W_NONE = 0, W_SCRATCH, W_JOB, W_REASON };

#define MAX_ID_BYTES 1024
#define MAX_INPUT_BYTES ((size_t)16 << 20)
#define MAX_PREPAY 64
#define MAX_ACTIONS ((size_t)1 << 16)

typedef enum cstate { C_INIT = 0, C_REQUESTED, C_PAYING, C_STOPPING, C_DONE } cstate;

typedef struct cact {
    dvm_customer_action_type type;
    dvm_msg_type mtype;
    uint64_t n1;
    dvm_sref s;
} cact;

struct dvm_customer {
    dvm_customer_config cfg;
    dvm_customer_callbacks cb;
    cstate state;
    dvm_customer_status status, stop_status;
    char reason[256];

    dvm_buf job; /* id, then input */
    size_t id_len, input_len;
    uint64_t kind, budget;

    uint64_t spc, spp;
    uint64_t committed, paid, acked, chunks, bytes, total_sats;
    bool has_result;
    dvm_buf result;

    uint64_t next_req;
    uint64_t reqs[MAX_PREPAY + 2]; /* outstanding NEED_TOKEN ids */
    size_t nreqs;

    uint64_t last_ms, deadline; /* idle timer */

    dvm_buf pull; /* [size_t len][bytes] records */
    size_t pull_off;

    dvm_buf scratch;
    dvm_buf head; /* dvm_msg_chunk_head of the job id (empty before start) */
    dvm_chunk_tail ctail; /* tail of the next chunk, seq chunks + 1 */
    cact *acts;
    size_t acap, ahead, acount;
};

void dvm_customer_config_default(dvm_customer_config *c)
{
    memset(c, 0, sizeof *c);
    c->max_sats_per_chunk = DVM_DEFAULT_MAX_SATS_PER_CHUNK;
    c->prepay_window = 0;
    c->idle_timeout_ms = 60000;
    c->max_buffered_bytes = (size_t)4 << 20;
    c->max_result_bytes = (size_t)1 << 20;
    c->max_token_bytes = (size_t)256 << 10;
}

dvm_customer *dvm_customer_new(const dvm_customer_config *cfg, const dvm_customer_callbacks *cb)
{
    dvm_customer *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (cfg)
        c->cfg = *cfg;
    else
        dvm_customer_config_default(&c->cfg);
    if (c->cfg.prepay_window > MAX_PREPAY)
        c->cfg.prepay_window = MAX_PREPAY;
    if (cb)
        c->cb = *cb;
    c->acap = 16;
    c->acts = calloc(c->acap, sizeof *c->acts);
    if (!c->acts) {
        free(c);
        return NULL;
    }
    dvm_buf_init(&c->job, MAX_ID_BYTES + MAX_INPUT_BYTES);
    dvm_buf_init(&c->result, c->cfg.max_result_bytes ? c->cfg.max_result_bytes : 1);
    dvm_buf_init(&c->pull, c->cfg.max_buffered_bytes ? c->cfg.max_buffered_bytes : 1);
    dvm_buf_init(&c->scratch, 0);
    dvm_buf_init(&c->head, 0);
    c->deadline = UINT64_MAX;
    return c;
}

void dvm_customer_free(dvm_customer *c)
{
    if (!c)
        return;
    dvm_buf_free(&c->job);
    dvm_buf_free(&c->result);
    dvm_buf_free(&c->pull);
    dvm_buf_free(&c->scratch);
    dvm_buf_free(&c->head);
    free(c->acts);
    free(c);
}

/* ---- queue ----------------------------------------------------------- */

static void compact_pull(dvm_customer *c)
{
    if (c->pull_off == 0)
        return;
    dvm_buf_consume(&c->pull, c->pull_off);
    c->pull_off = 0;
}

static void begin(dvm_customer *c)
{
    if (c->ahead == c->acount) {
        c->ahead = c->acount = 0;
        dvm_buf_reset(&c->scratch);
    }
    compact_pull(c);
}

static dvm_err push(dvm_customer *c, cact a)
{
    if (c->acount == c->acap) {
        if (c->acap >= MAX_ACTIONS)
            return DVM_ERR_LIMIT;
        cact *n = realloc(c->acts, c->acap * 2 * sizeof *n);
        if (!n)
            return DVM_ERR_NOMEM;
        c->acts = n;
        c->acap *= 2;
    }
    c->acts[c->acount++] = a;
    return DVM_OK;
}

static dvm_err send(dvm_customer *c, dvm_msg_type mt, dvm_sref s)
{
    cact a = {0};
    a.type = DVM_CACT_SEND;
    a.mtype = mt;
    a.s = s;
    return push(c, a);
}

static dvm_str str_of(const dvm_customer *c, dvm_sref r)
{
    if (r.where == W_REASON) {
        dvm_str s = {c->reason, strlen(c->reason)};
        return s;
    }
    const dvm_buf *b = r.where == W_SCRATCH ? &c->scratch : r.where == W_JOB ? &c->job : NULL;
    return dvm_sref_resolve(b, r);
}

bool dvm_customer_next_action(dvm_customer *c, dvm_customer_action *out)
{
    if (c->ahead >= c->acount)
        return false;
    const cact *a = &c->acts[c->ahead++];
    memset(out, 0, sizeof *out);
    out->type = a->type;
    switch (a->type) {
    case DVM_CACT_SEND: {
        dvm_msg *m = &out->msg;
        m->type = a->mtype;
        m->id.ptr = c->id_len ? (const char *)c->job.data : NULL;
        m->id.len = c->id_len;
        if (a->mtype == DVM_MSG_REQUEST) {
            m->kind = c->kind;
            m->input.ptr = c->input_len ? (const char *)c->job.data + c->id_len : NULL;
            m->input.len = c->input_len;
            m->budget = c->budget;
        } else if (a->mtype == DVM_MSG_PAYMENT) {
            m->token = str_of(c, a->s);
        }
        break;
    }
    case DVM_CACT_NEED_TOKEN:
        out->token_req = a->n1;
        out->amount = c->spp;
        break;
    case DVM_CACT_RETURN_TOKEN:
        out->token = str_of(c, a->s);
        out->amount = c->spp;
        break;
    case DVM_CACT_SET_TIMER: out->deadline_ms = a->n1; break;
    case DVM_CACT_DONE:
        out->status = (dvm_customer_status)a->n1;
        out->message = str_of(c, a->s);
        break;
    default: break;
    }
    return true;
}

/* ---- helpers --------------------------------------------------------- */

static dvm_err set_timer(dvm_customer *c, uint64_t now_ms)
{
    c->last_ms = now_ms;
    if (c->cfg.idle_timeout_ms == 0)
        return DVM_OK;
    uint64_t t = c->cfg.idle_timeout_ms;
    c->deadline = now_ms > UINT64_MAX - t - 1 ? UINT64_MAX - 1 : now_ms + t;
    cact a = {0};
    a.type = DVM_CACT_SET_TIMER;
    a.n1 = c->deadline;
    return push(c, a);
}

static dvm_err send_stop(dvm_customer *c)
{
    dvm_sref none = {0};
    return send(c, DVM_MSG_STOP, none);
}

/* End the job: DONE action, callbacks. */
static dvm_err finish(dvm_customer *c, dvm_customer_status st, const char *reason)
{
    dvm_err e;
    c->state = C_DONE;
    c->status = st;
    snprintf(c->reason, sizeof c->reason, "%s", reason ? reason : "");
    if (c->deadline != UINT64_MAX) {
        c->deadline = UINT64_MAX;
        cact t = {0};
        t.type = DVM_CACT_CANCEL_TIMER;
        if ((e = push(c, t)))
            return e;
    }
    cact a = {0};
    a.type = DVM_CACT_DONE;
    a.n1 = st;
    a.s.where = W_REASON;
    if ((e = push(c, a)))
        return e;
    if (st == DVM_CUSTOMER_OK || st == DVM_CUSTOMER_BUDGET_EXHAUSTED || st == DVM_CUSTOMER_STOPPED) {
        if (c->cb.on_done)
            c->cb.on_done(c->cb.ctx, st, c->result.len ? (const char *)c->result.data : "",
                          c->result.len, c->total_sats);
    } else if (c->cb.on_error) {
        c->cb.on_error(c->cb.ctx, st, c->reason);
    }
    return DVM_OK;
}

static dvm_err fail(dvm_customer *c, dvm_customer_status st, const char *reason, bool stop)
{
    dvm_err e;
    if (stop && (e = send_stop(c)))
        return e;
    return finish(c, st, reason);
}

static bool can_commit(const dvm_customer *c)
{
    return c->spp > 0 && c->committed <= c->budget && c->spp <= c->budget - c->committed &&
           c->nreqs < sizeof c->reqs / sizeof c->reqs[0];
}

static dvm_err need_token(dvm_customer *c)
{
    c->committed += c->spp;
    c->reqs[c->nreqs++] = ++c->next_req;
    cact a = {0};
    a.type = DVM_CACT_NEED_TOKEN;
    a.n1 = c->next_req;
    return push(c, a);
}

/* Sats paid or committed that no chunk has used yet. */
static uint64_t unconsumed(const dvm_customer *c)
{
    uint64_t used = c->chunks > UINT64_MAX / (c->spc ? c->spc : 1) ? UINT64_MAX : c->chunks * c->spc;
    return c->committed > used ? c->committed - used : 0;
}

/* Prepay: keep more than prepay_window payments' worth in flight. */
static dvm_err top_up(dvm_customer *c)
{
    if (c->cfg.prepay_window == 0 || c->state != C_PAYING)
        return DVM_OK;
    uint64_t low = c->cfg.prepay_window * c->spp;
    while (unconsumed(c) <= low && can_commit(c)) {
        dvm_err e = need_token(c);
        if (e)
            return e;
    }
    return DVM_OK;
}

static bool take_req(dvm_customer *c, uint64_t id)
{
    for (size_t i = 0; i < c->nreqs; i++) {
        if (c->reqs[i] == id) {
            c->reqs[i] = c->reqs[--c->nreqs];
            return true;
        }
    }
    return false;
}

/* ---- events ---------------------------------------------------------- */

dvm_err dvm_customer_start(dvm_customer *c, dvm_str job_id, uint64_t kind, dvm_str input,
                           uint64_t budget, uint64_t now_ms)
{
    begin(c);
    if (c->state != C_INIT)
        return DVM_ERR_STATE;
    if (budget > DVM_JSON_MAX_SAFE_INT || kind > DVM_JSON_MAX_SAFE_INT)
        return DVM_ERR_INVALID;
    if (job_id.len > MAX_ID_BYTES || input.len > MAX_INPUT_BYTES)
        return DVM_ERR_TOO_LARGE;
    if (!dvm_utf8_valid((const uint8_t *)job_id.ptr, job_id.len) ||
        !dvm_utf8_valid((const uint8_t *)input.ptr, input.len))
        return DVM_ERR_INVALID;
    dvm_err e;
    if ((e = dvm_buf_append(&c->job, job_id.ptr, job_id.len)) ||
        (e = dvm_buf_append(&c->job, input.ptr, input.len)))
        return e;
    c->id_len = job_id.len;
    c->input_len = input.len;
    /* Only a shortcut for dvm_customer_handle_line: without it (no memory)
     * every line takes the general path. */
    if (dvm_msg_chunk_head(&c->head, job_id) != DVM_OK)
        dvm_buf_reset(&c->head);
    dvm_chunk_tail_set(&c->ctail, c->chunks + 1);
    c->kind = kind;
    c->budget = budget;
    c->state = C_REQUESTED;
    dvm_sref none = {0};
    if ((e = send(c, DVM_MSG_REQUEST, none)))
        return e;
    return set_timer(c, now_ms);
}

static dvm_err on_offer(dvm_customer *c, const dvm_msg *m)
{
    if (c->state != C_REQUESTED)
        return DVM_ERR_PROTO;
    char r[160];
    uint64_t spc = m->sats_per_chunk, cpp = m->chunks_per_payment;
    if (spc > c->cfg.max_sats_per_chunk) {
        snprintf(r, sizeof r, "Price too high: %llu sat/chunk > max %llu", (unsigned long long)spc,
                 (unsigned long long)c->cfg.max_sats_per_chunk);
        return fail(c, DVM_CUSTOMER_PRICE_TOO_HIGH, r, true);
    }
    if (spc == 0 || cpp == 0 || spc > DVM_JSON_MAX_SAFE_INT / cpp)
        return fail(c, DVM_CUSTOMER_BAD_OFFER, "Invalid offer: sats_per_payment = 0", true);
    c->spc = spc;
    c->spp = spc * cpp;
    if (c->budget < c->spp) {
        snprintf(r, sizeof r, "Budget too small for payment cycle (%llu < %llu sats)",
                 (unsigned long long)c->budget, (unsigned long long)c->spp);
        return fail(c, DVM_CUSTOMER_BUDGET_TOO_SMALL, r, true);
    }
    c->state = C_PAYING;
    for (uint64_t i = 0; i <= c->cfg.prepay_window && can_commit(c); i++) {
        dvm_err e = need_token(c);
        if (e)
            return e;
    }
    return DVM_OK;
}

#if defined(__GNUC__)
#define COLD __attribute__((noinline, cold))
#define NOINLINE __attribute__((noinline))
#else
#define COLD
#define NOINLINE
#endif

/* A chunk whose seq is not chunks + 1: the job fails. */
static COLD dvm_err chunk_seq_error(dvm_customer *c, uint64_t seq)
{
    char r[160];
    if (seq <= c->chunks)
        snprintf(r, sizeof r, "Duplicate chunk: seq %llu after %llu", (unsigned long long)seq,
                 (unsigned long long)c->chunks);
    else
        snprintf(r, sizeof r, "Chunk sequence gap: expected %llu, got %llu",
                 (unsigned long long)(c->chunks + 1), (unsigned long long)seq);
    dvm_err e = fail(c, DVM_CUSTOMER_PROTOCOL, r, c->state == C_PAYING);
    return e ? e : DVM_ERR_PROTO;
}

/* Without an on_chunk callback: keep the chunk for dvm_customer_pull. */
static NOINLINE dvm_err chunk_keep(dvm_customer *c, dvm_str data)
{
    size_t len = data.len;
    if (sizeof len + len > c->pull.max - c->pull.len) {
        dvm_err e = fail(c, DVM_CUSTOMER_OVERFLOW, "Chunk buffer full (not read)", true);
        return e ? e : DVM_ERR_LIMIT;
    }
    dvm_err e = dvm_buf_append(&c->pull, &len, sizeof len);
    if (!e)
        e = dvm_buf_append(&c->pull, data.ptr, len);
    return e;
}

#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline dvm_err on_chunk_data(dvm_customer *c, dvm_str data, bool has_seq, uint64_t seq)
{
    if (c->state != C_PAYING && c->state != C_STOPPING)
        return DVM_ERR_PROTO;
    if (has_seq && seq != c->chunks + 1)
        return chunk_seq_error(c, seq);
    if (!c->cb.on_chunk) {
        dvm_err e = chunk_keep(c, data);
        if (e)
            return e;
    }
    c->chunks++;
    dvm_chunk_tail_next(&c->ctail);
    c->bytes += data.len;
    if (c->cb.on_chunk)
        c->cb.on_chunk(c->cb.ctx, data.ptr ? data.ptr : "", data.len);
    return top_up(c);
}

static inline dvm_err on_chunk(dvm_customer *c, const dvm_msg *m)
{
    return on_chunk_data(c, m->data, m->has_seq, m->seq);
}

static dvm_err on_pay_required(dvm_customer *c)
{
    if (c->state == C_STOPPING)
        return DVM_OK; /* already stopping */
    if (c->state != C_PAYING)
        return DVM_ERR_PROTO;
    if (unconsumed(c) >= c->spc)
        return DVM_OK; /* a payment in flight already covers the next chunk */
    if (can_commit(c))
        return need_token(c);
    c->state = C_STOPPING;
    c->stop_status = DVM_CUSTOMER_BUDGET_EXHAUSTED;
    return send_stop(c);
}

static dvm_err on_result(dvm_customer *c, const dvm_msg *m)
{
    if (c->state == C_INIT)
        return DVM_ERR_PROTO;
    c->has_result = true;
    c->total_sats = m->total_sats;
    dvm_buf_reset(&c->result);
    if (dvm_buf_append(&c->result, m->output.ptr, m->output.len) != DVM_OK)
        dvm_buf_reset(&c->result); /* over max_result_bytes: not kept */
    dvm_customer_status st = c->state == C_STOPPING ? c->stop_status : DVM_CUSTOMER_OK;
    return finish(c, st, st == DVM_CUSTOMER_BUDGET_EXHAUSTED ? "Budget exhausted" : "");
}

/* a[0..n) == b[0..n); inline 8 bytes at a time for ids up to 64 bytes
 * (every chunk checks its job id), memcmp otherwise. */
static inline bool same_bytes(const void *a, const void *b, size_t n)
{
    if (n < 8 || n > 64)
        return n == 0 || memcmp(a, b, n) == 0;
    const char *x = a, *y = b;
    uint64_t diff = 0, u, v;
    for (size_t i = 0; i + 8 < n; i += 8) {
        memcpy(&u, x + i, 8);
        memcpy(&v, y + i, 8);
        diff |= u ^ v;
    }
    memcpy(&u, x + n - 8, 8); /* the last 8, overlapping the loop's */
    memcpy(&v, y + n - 8, 8);
    return (diff | (u ^ v)) == 0;
}

/* A decoded chunk line of this job (both line paths): the decode
 * succeeded, so clear the decode error and reason, then account the chunk
 * as dvm_customer_handle_msg does. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline dvm_err line_chunk(dvm_customer *c, dvm_str data, bool has_seq, uint64_t seq, uint64_t now_ms,
                                 char *reason, size_t reason_cap, dvm_err *decode_err)
{
    if (decode_err)
        *decode_err = DVM_OK;
    if (reason && reason_cap)
        reason[0] = '\0';
    begin(c);
    if (c->state == C_DONE)
        return DVM_ERR_STATE;
    if (c->state == C_INIT)
        return DVM_ERR_PROTO;
    c->last_ms = now_ms;
    return on_chunk_data(c, data, has_seq, seq);
}

/* The fused line path (see customer.h). A line that starts with this
 * job's own chunk head (the bytes dvm_msg_encode writes for its id) would
 * decode, in dvm_msg_decode's fast path, to a chunk with exactly this id,
 * whose data/seq are what dvm_msg_decode_chunk_tail gives; handle_msg
 * would then pass the id check and call on_chunk. So for such lines the
 * same checks and accounting run without materialising a dvm_msg. The
 * common case, a line that also ends with the tail of the expected seq
 * (c->ctail, kept at chunks + 1 by on_chunk_data) around data that needs
 * no escape, is recognised by dvm_cf_decode_chunk_line without parsing
 * seq; other tails go through dvm_msg_decode_chunk_tail; any other line
 * (or a tail the fast path is unsure of) takes the general path. */
static NOINLINE dvm_err handle_line_general(dvm_customer *c, dvm_msg_decoder *d,
                                            const void *line, size_t len, uint64_t now_ms,
                                            char *reason, size_t reason_cap,
                                            dvm_err *decode_err);

dvm_err dvm_customer_handle_line(dvm_customer *c, dvm_msg_decoder *d, const void *line,
                                 size_t len, uint64_t now_ms, char *reason, size_t reason_cap,
                                 dvm_err *decode_err)
{
    /* This job's chunk with the expected seq (chunks + 1), head and tail
     * kept: the common case, inline (wire/chunk_fast.h). */
    size_t hl = c->head.len;
    dvm_str data;
    if (hl && c->ctail.seq == c->chunks + 1 &&
        dvm_cf_decode_chunk_line(d, line, len, c->head.data, hl, &c->ctail, &data)) {
        return line_chunk(c, data, true, c->ctail.seq, now_ms, reason, reason_cap, decode_err);
    }
    return handle_line_general(c, d, line, len, now_ms, reason, reason_cap, decode_err);
}

/* Any other line: this job's chunk head with another tail (no or another
 * seq, escapes: dvm_msg_decode_chunk_tail), else dvm_msg_decode +
 * dvm_customer_handle_msg. */
static NOINLINE dvm_err handle_line_general(dvm_customer *c, dvm_msg_decoder *d,
                                            const void *line, size_t len, uint64_t now_ms,
                                            char *reason, size_t reason_cap,
                                            dvm_err *decode_err)
{
    size_t hl = c->head.len;
    dvm_str data;
    if (hl && line && len > hl && memcmp(line, c->head.data, hl) == 0) {
        bool has_seq;
        uint64_t seq;
        if (dvm_msg_decode_chunk_tail(d, line, len, hl, &data, &has_seq, &seq) == DVM_OK) {
            return line_chunk(c, data, has_seq, seq, now_ms, reason, reason_cap, decode_err);
        }
    }
    dvm_msg m;
    dvm_err e = dvm_msg_decode(d, line, len, &m, reason, reason_cap);
    if (decode_err)
        *decode_err = e;
    if (e)
        return e;
    return dvm_customer_handle_msg(c, &m, now_ms);
}

dvm_err dvm_customer_handle_msg(dvm_customer *c, const dvm_msg *m, uint64_t now_ms)
{
    begin(c);
    if (c->state == C_DONE)
        return DVM_ERR_STATE;
    if (c->state == C_INIT)
        return DVM_ERR_PROTO;
    if (m->id.len != c->id_len || !same_bytes(m->id.ptr, c->job.data, c->id_len))
        return DVM_ERR_NOT_FOUND;
    c->last_ms = now_ms;
    switch (m->type) {
    case DVM_MSG_OFFER: return on_offer(c, m);
    case DVM_MSG_PAYMENT_ACK:
        if (c->state != C_PAYING && c->state != C_STOPPING)
            return DVM_ERR_PROTO;
        if (m->amount <= UINT64_MAX - c->acked)
            c->acked += m->amount;
        return DVM_OK;
    case DVM_MSG_ACCEPTED:
        return c->state == C_PAYING || c->state == C_STOPPING ? DVM_OK : DVM_ERR_PROTO;
    case DVM_MSG_CHUNK: return on_chunk(c, m);
    case DVM_MSG_PAY_REQUIRED: return on_pay_required(c);
    case DVM_MSG_RESULT: return on_result(c, m);
    case DVM_MSG_ERROR: {
        char r[256];
        size_t n = m->message.len < sizeof r - 1 ? m->message.len : sizeof r - 1;
        while (n > 0 && n < m->message.len && ((uint8_t)m->message.ptr[n] & 0xC0) == 0x80)
            n--;
        if (n)
            memcpy(r, m->message.ptr, n);
        r[n] = 0;
        return finish(c, DVM_CUSTOMER_PROVIDER_ERROR, r);
    }
    default: return DVM_ERR_PROTO;
    }
}

dvm_err dvm_customer_on_token(dvm_customer *c, uint64_t token_req, dvm_str token, uint64_t now_ms)
{
    begin(c);
    if (!take_req(c, token_req))
        return DVM_ERR_NOT_FOUND;
    if (token.len == 0 || token.len > c->cfg.max_token_bytes ||
        !dvm_utf8_valid((const uint8_t *)token.ptr, token.len)) {
        c->committed -= c->spp;
        if (c->state == C_PAYING || c->state == C_REQUESTED) {
            dvm_err e = fail(c, DVM_CUSTOMER_PAYMENT_FAILED, "Token source gave an invalid token", true);
            if (e)
                return e;
        }
        return DVM_ERR_INVALID;
    }
    dvm_sref s = {0};
    dvm_err e = dvm_sref_put(&c->scratch, W_SCRATCH, token.ptr, token.len, &s);
    if (e)
        return e;
    if (c->state != C_PAYING) {
        /* Ended or stopping: never send it; the wallet keeps it. */
        c->committed -= c->spp;
        cact a = {0};
        a.type = DVM_CACT_RETURN_TOKEN;
        a.s = s;
        return push(c, a);
    }
    c->paid += c->spp;
    (void)now_ms;
    return send(c, DVM_MSG_PAYMENT, s);
}

dvm_err dvm_customer_on_token_failed(dvm_customer *c, uint64_t token_req, const char *reason,
                                     uint64_t now_ms)
{
    (void)now_ms;
    begin(c);
    if (!take_req(c, token_req))
        return DVM_ERR_NOT_FOUND;
    c->committed -= c->spp;
    if (c->state != C_PAYING)
        return DVM_OK;
    char r[200];
    snprintf(r, sizeof r, "Payment failed: %s", reason ? reason : "token source failed");
    return fail(c, DVM_CUSTOMER_PAYMENT_FAILED, r, true);
}

dvm_err dvm_customer_on_timer(dvm_customer *c, uint64_t now_ms)
{
    begin(c);
    if (c->deadline == UINT64_MAX || now_ms < c->deadline)
        return DVM_OK;
    uint64_t t = c->cfg.idle_timeout_ms;
    if (c->last_ms <= UINT64_MAX - t && now_ms < c->last_ms + t) {
        /* Activity since the timer was set: re-arm lazily. */
        c->deadline = c->last_ms + t;
        cact a = {0};
        a.type = DVM_CACT_SET_TIMER;
        a.n1 = c->deadline;
        return push(c, a);
    }
    c->deadline = UINT64_MAX;
    char r[96];
    snprintf(r, sizeof r, "Provider silent for %llu ms", (unsigned long long)t);
    return fail(c, DVM_CUSTOMER_TIMEOUT, r, true);
}

dvm_err dvm_customer_stop(dvm_customer *c, uint64_t now_ms)
{
    (void)now_ms;
    begin(c);
    if (c->state != C_PAYING && c->state != C_REQUESTED)
        return DVM_ERR_STATE;
    c->state = C_STOPPING;
    c->stop_status = DVM_CUSTOMER_STOPPED;
    return send_stop(c);
}

dvm_err dvm_customer_close(dvm_customer *c, uint64_t now_ms)
{
    (void)now_ms;
    begin(c);
    if (c->state == C_DONE)
        return DVM_ERR_STATE;
    if (c->state == C_STOPPING && c->stop_status == DVM_CUSTOMER_BUDGET_EXHAUSTED)
        return finish(c, DVM_CUSTOMER_BUDGET_EXHAUSTED, "Budget exhausted");
    return finish(c, DVM_CUSTOMER_CLOSED, "Connection closed");
}

dvm_err dvm_customer_read(dvm_customer *c, dvm_str *out)
{
    compact_pull(c);
    size_t len;
    if (c->pull.len < sizeof len) {
        out->ptr = NULL;
        out->len = 0;
        return c->state == C_DONE ? DVM_ERR_STATE : DVM_ERR_AGAIN;
    }
    memcpy(&len, c->pull.data, sizeof len);
    out->ptr = (const char *)c->pull.data + sizeof len;
    out->len = len;
    c->pull_off = sizeof len + len;
    return DVM_OK;
}

void dvm_customer_get_stats(const dvm_customer *c, dvm_customer_stats *o)
{
    memset(o, 0, sizeof *o);
    o->status = c->state == C_DONE ? c->status : DVM_CUSTOMER_RUNNING;
    o->budget = c->budget;
    o->sats_committed = c->committed;
    o->sats_paid = c->paid;
    o->sats_acked = c->acked;
    o->chunks = c->chunks;
    o->bytes = c->bytes;
    o->sats_per_chunk = c->spc;
    o->sats_per_payment = c->spp;
    o->total_sats = c->total_sats;
    o->has_result = c->has_result;
}

dvm_customer_status dvm_customer_status_of(const dvm_customer *c)
{
    return c->state == C_DONE ? c->status : DVM_CUSTOMER_RUNNING;
}

dvm_str dvm_customer_result(const dvm_customer *c)
{
    dvm_str s = {c->result.len ? (const char *)c->result.data : NULL, c->result.len};
    return s;
}

const char *dvm_customer_reason(const dvm_customer *c) { return c->reason; }

uint64_t dvm_customer_deadline(const dvm_customer *c) { return c->deadline; }

const char *dvm_customer_status_name(dvm_customer_status s)
{
    switch (s) {
    case DVM_CUSTOMER_RUNNING: return "running";
    case DVM_CUSTOMER_OK: return "ok";
    case DVM_CUSTOMER_BUDGET_EXHAUSTED: return "budget_exhausted";
    case DVM_CUSTOMER_STOPPED: return "stopped";
    case DVM_CUSTOMER_PRICE_TOO_HIGH: return "price_too_high";
    case DVM_CUSTOMER_BAD_OFFER: return "bad_offer";
    case DVM_CUSTOMER_BUDGET_TOO_SMALL: return "budget_too_small";
    case DVM_CUSTOMER_PAYMENT_FAILED: return "payment_failed";
    case DVM_CUSTOMER_PROVIDER_ERROR: return "provider_error";
    case DVM_CUSTOMER_TIMEOUT: return "timeout";
    case DVM_CUSTOMER_PROTOCOL: return "protocol";
    case DVM_CUSTOMER_CLOSED: return "closed";
    case DVM_CUSTOMER_OVERFLOW: return "overflow";
    }
    return "?";
}
