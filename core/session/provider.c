#include "session/provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session/sref.h"
#include "wire/chunk_fast.h"
#include "wire/codec.h"
#include "wire/utf8.h"

/* Buffers an action string may point into. */
enum { W_NONE = 0, W_SCRATCH, W_OUTPUT, W_JOB, W_TOKENS };

#define MAX_ID_BYTES 1024 /* job id bytes kept */
#define MAX_ACTIONS ((size_t)1 << 20) /* sanity bound on an undrained queue */

enum { TOK_PENDING = 0, TOK_VERIFIED, TOK_CLAIMED, TOK_REJECTED };

typedef struct tok {
    size_t off, len; /* in p->tokens */
    uint64_t amount;
    uint8_t status;
} tok;

typedef struct pact {
    dvm_provider_action_type type;
    dvm_msg_type mtype; /* SEND */
    uint64_t n1, n2;    /* numbers, by type (see resolve) */
    dvm_sref s;         /* string, by type */
} pact;

struct dvm_provider {
    dvm_provider_config cfg;
    dvm_provider_state state;
    dvm_provider_end end;

    dvm_buf job; /* [0,id_len) job id, then [id_len, id_len+input_len) input */
    size_t id_len, input_len;
    uint64_t kind;

    dvm_buf output;  /* everything sent in chunks, for `result` */
    dvm_buf scratch; /* formatted messages of the current event */
    dvm_buf queue;   /* chunk bytes held while waiting for payment */
    size_t *qlens;   /* ring of queued chunk sizes, cfg.max_queued_chunks */
    size_t qhead, qcount, qoff;

    dvm_buf tokens;  /* every token string received */
    tok *toks;
    size_t ntoks, captoks;
    dvm_str *claim; /* built once when the job completes */
    size_t nclaim;
    uint64_t claim_sats;

    dvm_buf fixtmp, fixout; /* UTF-8 repair of processor output */
    dvm_buf chead;          /* dvm_msg_chunk_head of the job id, or empty */
    dvm_chunk_tail ctail;   /* tail of chunk ctail.seq (kept at chunks_sent + 1 by the fused path) */
    uint8_t part[4];        /* a sequence cut at the end of the last chunk */
    size_t npart;

    uint64_t earned, credit, carry, chunks_sent, pending;
    bool gen_started, gen_finished, gen_done;
    uint64_t deadline;

    pact *acts;
    size_t acap, ahead, acount;
};

void dvm_provider_config_default(dvm_provider_config *c)
{
    memset(c, 0, sizeof *c);
    c->sats_per_chunk = DVM_DEFAULT_SATS_PER_CHUNK;
    c->chunks_per_payment = DVM_DEFAULT_CHUNKS_PER_PAYMENT;
    c->payment_timeout_ms = DVM_DEFAULT_PAYMENT_TIMEOUT_MS;
    c->max_queued_chunks = 64;
    c->max_queued_bytes = (size_t)1 << 20;
    c->max_output_bytes = (size_t)512 << 10;
    c->max_payments = 4096;
    c->max_token_bytes = (size_t)4 << 20;
    c->max_input_bytes = (size_t)1 << 20;
    c->send_seq = true;
    c->fix_utf8 = true;
}

dvm_provider *dvm_provider_new(const dvm_provider_config *cfg)
{
    dvm_provider_config c;
    if (cfg)
        c = *cfg;
    else
        dvm_provider_config_default(&c);
    if (c.sats_per_chunk == 0 || c.chunks_per_payment == 0 ||
        c.sats_per_chunk > DVM_JSON_MAX_SAFE_INT / c.chunks_per_payment)
        return NULL;
    if (c.max_queued_chunks == 0)
        c.max_queued_chunks = 1;
    if (c.max_output_bytes == 0)
        c.max_output_bytes = (size_t)512 << 10;
    dvm_provider *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->cfg = c;
    p->qlens = calloc(c.max_queued_chunks, sizeof *p->qlens);
    p->acap = c.max_queued_chunks + 16;
    p->acts = calloc(p->acap, sizeof *p->acts);
    if (!p->qlens || !p->acts) {
        free(p->qlens);
        free(p->acts);
        free(p);
        return NULL;
    }
    dvm_buf_init(&p->job, MAX_ID_BYTES + c.max_input_bytes + 1);
    dvm_buf_init(&p->output, c.max_output_bytes);
    dvm_buf_init(&p->scratch, 0);
    dvm_buf_init(&p->queue, c.max_queued_bytes ? c.max_queued_bytes : 1);
    dvm_buf_init(&p->tokens, c.max_token_bytes ? c.max_token_bytes : 1);
    dvm_buf_init(&p->fixtmp, 0);
    dvm_buf_init(&p->fixout, 0);
    dvm_buf_init(&p->chead, 0);
    p->deadline = UINT64_MAX;
    return p;
}

void dvm_provider_free(dvm_provider *p)
{
    if (!p)
        return;
    dvm_buf_free(&p->job);
    dvm_buf_free(&p->output);
    dvm_buf_free(&p->scratch);
    dvm_buf_free(&p->queue);
    dvm_buf_free(&p->tokens);
    dvm_buf_free(&p->fixtmp);
    dvm_buf_free(&p->fixout);
    dvm_buf_free(&p->chead);
    free(p->qlens);
    free(p->toks);
    free(p->claim);
    free(p->acts);
    free(p);
}

/* ---- action queue ---------------------------------------------------- */

/* Start of every event call: once the driver has drained the queue, the
 * scratch space of the previous event can be reused. */
static void begin(dvm_provider *p)
{
    if (p->ahead == p->acount) {
        p->ahead = p->acount = 0;
        dvm_buf_reset(&p->scratch);
    }
}

/* Grow the action queue (rare: kept out of line so push stays small). */
static __attribute__((noinline)) dvm_err grow_actions(dvm_provider *p)
{
    if (p->acap >= MAX_ACTIONS)
        return DVM_ERR_LIMIT;
    size_t ncap = p->acap * 2;
    pact *n = realloc(p->acts, ncap * sizeof *n);
    if (!n)
        return DVM_ERR_NOMEM;
    p->acts = n;
    p->acap = ncap;
    return DVM_OK;
}

static inline dvm_err push(dvm_provider *p, pact a)
{
    if (p->acount == p->acap) {
        dvm_err e = grow_actions(p);
        if (e)
            return e;
    }
    p->acts[p->acount++] = a;
    return DVM_OK;
}

static dvm_err act(dvm_provider *p, dvm_provider_action_type t)
{
    pact a = {0};
    a.type = t;
    return push(p, a);
}

static inline dvm_err send(dvm_provider *p, dvm_msg_type mt, uint64_t n1, uint64_t n2, dvm_sref s)
{
    pact a = {0};
    a.type = DVM_PACT_SEND;
    a.mtype = mt;
    a.n1 = n1;
    a.n2 = n2;
    a.s = s;
    return push(p, a);
}

static inline const dvm_buf *buf_of(const dvm_provider *p, uint8_t w)
{
    switch (w) {
    case W_SCRATCH: return &p->scratch;
    case W_OUTPUT: return &p->output;
    case W_JOB: return &p->job;
    case W_TOKENS: return &p->tokens;
    default: return NULL;
    }
}

static inline dvm_str str_of(const dvm_provider *p, dvm_sref r)
{
    return dvm_sref_resolve(buf_of(p, r.where), r);
}

/* *a = all zero. Two fixed-size copies of a zero constant: compilers turn
 * each into a few vector stores, while one memset/copy of the whole
 * ~280-byte struct becomes a `rep stos`, slow to start, once per chunk. */
static const dvm_provider_action k_zero_action;
static inline void zero_action(dvm_provider_action *a)
{
    const size_t h = sizeof *a / 2;
    memcpy(a, &k_zero_action, h);
    memcpy((char *)a + h, (const char *)&k_zero_action + h, sizeof *a - h);
}

bool dvm_provider_next_action(dvm_provider *p, dvm_provider_action *out)
{
    if (p->ahead >= p->acount)
        return false;
    const pact *a = &p->acts[p->ahead++];
    zero_action(out);
    out->type = a->type;
    if (a->type == DVM_PACT_SEND && a->mtype == DVM_MSG_CHUNK) { /* the hot path */
        dvm_msg *m = &out->msg;
        m->type = DVM_MSG_CHUNK;
        m->id = dvm_provider_job_id(p);
        m->data = dvm_sref_resolve(&p->output, a->s); /* chunks live in output */
        m->has_seq = p->cfg.send_seq;
        m->seq = a->n1;
        return true;
    }
    switch (a->type) {
    case DVM_PACT_SEND: {
        dvm_msg *m = &out->msg;
        m->type = a->mtype;
        m->id = dvm_provider_job_id(p);
        switch (a->mtype) {
        case DVM_MSG_OFFER:
            m->sats_per_chunk = a->n1;
            m->chunks_per_payment = a->n2;
            break;
        case DVM_MSG_PAYMENT_ACK: m->amount = a->n1; break;
        case DVM_MSG_CHUNK:
            m->data = str_of(p, a->s);
            m->has_seq = p->cfg.send_seq;
            m->seq = a->n1;
            break;
        case DVM_MSG_PAY_REQUIRED:
            m->earned = a->n1;
            m->next = a->n2;
            break;
        case DVM_MSG_RESULT:
            m->output = str_of(p, a->s);
            m->total_sats = a->n1;
            break;
        case DVM_MSG_ERROR: m->message = str_of(p, a->s); break;
        default: break;
        }
        break;
    }
    case DVM_PACT_VERIFY_TOKEN:
        out->verify_id = a->n1;
        out->token = str_of(p, a->s);
        break;
    case DVM_PACT_START_GENERATION:
        out->kind = p->kind;
        out->input.ptr = p->input_len ? (const char *)p->job.data + p->id_len : NULL;
        out->input.len = p->input_len;
        break;
    case DVM_PACT_SET_TIMER: out->deadline_ms = a->n1; break;
    case DVM_PACT_CLAIM:
        out->tokens = p->claim;
        out->n_tokens = p->nclaim;
        out->claim_sats = p->claim_sats;
        break;
    case DVM_PACT_DONE: out->end = (dvm_provider_end)a->n1; break;
    default: break;
    }
    return true;
}

/* ---- helpers --------------------------------------------------------- */

static dvm_err set_timer(dvm_provider *p, uint64_t now_ms)
{
    uint64_t t = p->cfg.payment_timeout_ms;
    p->deadline = now_ms > UINT64_MAX - t ? UINT64_MAX - 1 : now_ms + t;
    pact a = {0};
    a.type = DVM_PACT_SET_TIMER;
    a.n1 = p->deadline;
    return push(p, a);
}

static dvm_err cancel_timer(dvm_provider *p)
{
    if (p->deadline == UINT64_MAX)
        return DVM_OK;
    p->deadline = UINT64_MAX;
    return act(p, DVM_PACT_CANCEL_TIMER);
}

/* Error texts may come from a processor or a verifier: make them valid
 * UTF-8 (invalid bytes become U+FFFD) so the codec can always encode them. */
static dvm_err send_error(dvm_provider *p, const char *text, size_t len)
{
    dvm_sref s = {0};
    dvm_err e = dvm_sref_put_utf8(&p->scratch, W_SCRATCH, text, len, &s);
    if (e)
        return e;
    return send(p, DVM_MSG_ERROR, 0, 0, s);
}

static dvm_err send_errorf(dvm_provider *p, const char *fmt, unsigned long long v)
{
    char tmp[128];
    int n = snprintf(tmp, sizeof tmp, fmt, v);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof tmp)
        n = sizeof tmp - 1;
    return send_error(p, tmp, (size_t)n);
}

static dvm_err send_result(dvm_provider *p)
{
    dvm_sref s = {W_OUTPUT, 0, p->output.len};
    return send(p, DVM_MSG_RESULT, p->earned, 0, s);
}

/* All verifications answered: hand the tokens to claim, and finish. */
static dvm_err complete(dvm_provider *p)
{
    size_t n = 0;
    uint64_t sats = 0;
    for (size_t i = 0; i < p->ntoks; i++)
        if (p->toks[i].status == TOK_VERIFIED)
            n++;
    if (n) {
        p->claim = calloc(n, sizeof *p->claim);
        if (!p->claim)
            return DVM_ERR_NOMEM;
        size_t j = 0;
        for (size_t i = 0; i < p->ntoks; i++) {
            if (p->toks[i].status != TOK_VERIFIED)
                continue;
            p->claim[j].ptr = (const char *)p->tokens.data + p->toks[i].off;
            p->claim[j].len = p->toks[i].len;
            sats += p->toks[i].amount;
            j++;
        }
        p->nclaim = n;
        p->claim_sats = sats;
        dvm_err e = act(p, DVM_PACT_CLAIM);
        if (e)
            return e;
    }
    p->state = DVM_PROVIDER_DONE;
    pact a = {0};
    a.type = DVM_PACT_DONE;
    a.n1 = p->end;
    return push(p, a);
}

static dvm_err finish(dvm_provider *p, dvm_provider_end end)
{
    dvm_err e;
    if (p->gen_started && !p->gen_finished) {
        p->gen_finished = true;
        if ((e = act(p, DVM_PACT_CANCEL_GENERATION)))
            return e;
    }
    if ((e = cancel_timer(p)))
        return e;
    p->end = end;
    /* Queued chunks were never sent (nor paid for): drop them. */
    p->qcount = p->qhead = p->qoff = 0;
    dvm_buf_reset(&p->queue);
    if (p->pending) {
        p->state = DVM_PROVIDER_CLOSING;
        return DVM_OK;
    }
    return complete(p);
}

static dvm_err gen_error(dvm_provider *p, const char *msg, size_t len)
{
    dvm_err e;
    p->gen_finished = true; /* the processor is gone: no CANCEL needed */
    if ((e = send_error(p, msg, len)) || (e = send_result(p)))
        return e;
    return finish(p, DVM_PROVIDER_END_GENERATION_ERROR);
}

/* Send one chunk (credit must be > 0). */
static dvm_err send_chunk(dvm_provider *p, const char *data, size_t len)
{
    size_t off = p->output.len;
    dvm_err e = DVM_OK;
    /* Hot path: the room is allocated already and within the buffer's
     * max (max_output_bytes): copy without calling into the buffer code. */
    if (len && off <= p->output.max && len <= p->output.cap - off &&
        len <= p->output.max - off) {
        memcpy(p->output.data + off, data, len);
        p->output.len = off + len;
    } else {
        e = dvm_buf_append(&p->output, data, len);
    }
    if (e == DVM_ERR_TOO_LARGE) {
        char tmp[96];
        int n = snprintf(tmp, sizeof tmp, "Output limit exceeded (%zu bytes)", p->cfg.max_output_bytes);
        dvm_err e2 = send_error(p, tmp, (size_t)(n > 0 ? n : 0));
        if (!e2)
            e2 = send_result(p);
        if (!e2)
            e2 = finish(p, DVM_PROVIDER_END_GENERATION_ERROR);
        return e2 ? e2 : DVM_ERR_TOO_LARGE;
    }
    if (e)
        return e;
    p->credit--;
    p->chunks_sent++;
    dvm_sref s = {W_OUTPUT, off, len};
    return send(p, DVM_MSG_CHUNK, p->chunks_sent, 0, s);
}

static dvm_err send_pay_required(dvm_provider *p, uint64_t now_ms)
{
    dvm_sref none = {0};
    dvm_err e = send(p, DVM_MSG_PAY_REQUIRED, p->earned,
                     p->cfg.sats_per_chunk * p->cfg.chunks_per_payment, none);
    if (e)
        return e;
    return set_timer(p, now_ms);
}

/* Credit arrived while waiting: send what is queued, then resume or finish. */
static dvm_err flush(dvm_provider *p, uint64_t now_ms)
{
    dvm_err e = DVM_OK;
    while (p->credit > 0 && p->qcount > 0) {
        size_t len = p->qlens[p->qhead];
        const char *data = len ? (const char *)p->queue.data + p->qoff : "";
        p->qhead = (p->qhead + 1) % p->cfg.max_queued_chunks;
        p->qcount--;
        p->qoff += len;
        e = send_chunk(p, data, len);
        if (e || p->state != DVM_PROVIDER_WAIT_PAYMENT)
            return e == DVM_ERR_TOO_LARGE ? DVM_OK : e;
    }
    dvm_buf_consume(&p->queue, p->qoff);
    p->qoff = 0;
    if (p->qcount > 0) /* still short: ask again */
        return send_pay_required(p, now_ms);
    if (p->gen_done) {
        p->gen_finished = true;
        if ((e = send_result(p)))
            return e;
        return finish(p, DVM_PROVIDER_END_COMPLETED);
    }
    p->state = DVM_PROVIDER_STREAMING;
    if ((e = cancel_timer(p)))
        return e;
    return act(p, DVM_PACT_RESUME_GENERATION);
}

static bool ended(const dvm_provider *p)
{
    return p->state == DVM_PROVIDER_CLOSING || p->state == DVM_PROVIDER_DONE;
}

/* ---- events ---------------------------------------------------------- */

static dvm_err on_request(dvm_provider *p, const dvm_msg *m, uint64_t now_ms)
{
    if (p->state != DVM_PROVIDER_IDLE)
        return DVM_ERR_STATE;
    size_t idl = m->id.len > MAX_ID_BYTES ? MAX_ID_BYTES : m->id.len;
    dvm_err e = dvm_buf_append(&p->job, m->id.ptr, idl);
    if (e)
        return e;
    p->id_len = idl;
    p->kind = m->kind;
    if (m->id.len > MAX_ID_BYTES || m->input.len > p->cfg.max_input_bytes) {
        if ((e = send_errorf(p, "Request too large (limit %llu bytes)",
                             (unsigned long long)p->cfg.max_input_bytes)))
            return e;
        p->state = DVM_PROVIDER_OFFERED; /* so finish/complete apply */
        e = finish(p, DVM_PROVIDER_END_GENERATION_ERROR);
        return e ? e : DVM_ERR_TOO_LARGE;
    }
    if ((e = dvm_buf_append(&p->job, m->input.ptr, m->input.len)))
        return e;
    p->input_len = m->input.len;
    /* Only a shortcut for dvm_provider_on_chunk_encode: without it (no
     * memory) every chunk takes the action path. */
    if (dvm_msg_chunk_head(&p->chead, dvm_provider_job_id(p)) != DVM_OK)
        dvm_buf_reset(&p->chead);
    p->state = DVM_PROVIDER_OFFERED;
    dvm_sref none = {0};
    if ((e = send(p, DVM_MSG_OFFER, p->cfg.sats_per_chunk, p->cfg.chunks_per_payment, none)))
        return e;
    return set_timer(p, now_ms);
}

static dvm_err on_payment(dvm_provider *p, const dvm_msg *m)
{
    if (p->state == DVM_PROVIDER_IDLE)
        return DVM_ERR_PROTO;
    if (ended(p))
        return DVM_ERR_STATE;
    dvm_err e;
    if (m->token.len == 0) {
        if ((e = send_error(p, "Payment missing token", 21)))
            return e;
        return DVM_ERR_INVALID;
    }
    if (p->ntoks >= p->cfg.max_payments ||
        m->token.len > p->cfg.max_token_bytes - p->tokens.len) {
        if ((e = send_error(p, "Too many payments", 17)))
            return e;
        return DVM_ERR_LIMIT;
    }
    if (p->ntoks == p->captoks) {
        size_t ncap = p->captoks ? p->captoks * 2 : 8;
        tok *n = realloc(p->toks, ncap * sizeof *n);
        if (!n)
            return DVM_ERR_NOMEM;
        p->toks = n;
        p->captoks = ncap;
    }
    dvm_sref s = {0};
    if ((e = dvm_sref_put(&p->tokens, W_TOKENS, m->token.ptr, m->token.len, &s)))
        return e;
    tok *t = &p->toks[p->ntoks++];
    t->off = s.off;
    t->len = s.len;
    t->amount = 0;
    t->status = TOK_PENDING;
    p->pending++;
    pact a = {0};
    a.type = DVM_PACT_VERIFY_TOKEN;
    a.n1 = p->ntoks; /* verify_id = index + 1 */
    a.s = s;
    return push(p, a);
}

static dvm_err on_stop(dvm_provider *p)
{
    if (p->state == DVM_PROVIDER_IDLE)
        return DVM_ERR_PROTO;
    if (ended(p))
        return DVM_ERR_STATE;
    dvm_err e = send_result(p);
    if (e)
        return e;
    return finish(p, DVM_PROVIDER_END_STOPPED);
}

dvm_err dvm_provider_handle_msg(dvm_provider *p, const dvm_msg *m, uint64_t now_ms)
{
    begin(p);
    if (p->state == DVM_PROVIDER_DONE)
        return DVM_ERR_STATE;
    if (p->state != DVM_PROVIDER_IDLE && m->type != DVM_MSG_REQUEST) {
        dvm_str id = dvm_provider_job_id(p);
        if (m->id.len != id.len || (id.len && memcmp(m->id.ptr, id.ptr, id.len) != 0))
            return DVM_ERR_NOT_FOUND;
    }
    switch (m->type) {
    case DVM_MSG_REQUEST: return on_request(p, m, now_ms);
    case DVM_MSG_PAYMENT: return on_payment(p, m);
    case DVM_MSG_STOP: return on_stop(p);
    default: return DVM_ERR_PROTO;
    }
}

dvm_err dvm_provider_on_verify(dvm_provider *p, uint64_t verify_id, const dvm_verify_result *r,
                               uint64_t now_ms)
{
    begin(p);
    if (verify_id == 0 || verify_id > p->ntoks)
        return DVM_ERR_NOT_FOUND;
    tok *t = &p->toks[verify_id - 1];
    if (t->status != TOK_PENDING || p->state == DVM_PROVIDER_DONE)
        return DVM_ERR_NOT_FOUND;
    dvm_err e = DVM_OK;
    switch (r->outcome) {
    case DVM_VERIFY_SWAP_FIRST:
    case DVM_VERIFY_CLAIM_FIRST:
        return DVM_OK; /* still pending; a final outcome follows */
    case DVM_VERIFY_REJECTED:
        t->status = TOK_REJECTED;
        p->pending--;
        if (p->state == DVM_PROVIDER_CLOSING)
            return p->pending ? DVM_OK : complete(p);
        {
            char tmp[256];
            size_t rl = r->reason.len > 200 ? 200 : r->reason.len;
            memcpy(tmp, "Payment failed: ", 16);
            if (rl)
                memcpy(tmp + 16, r->reason.ptr, rl);
            /* never cut a UTF-8 sequence in half */
            while (rl > 0 && rl < r->reason.len && ((uint8_t)r->reason.ptr[rl] & 0xC0) == 0x80)
                rl--;
            return send_error(p, tmp, 16 + rl);
        }
    case DVM_VERIFY_OK:
    case DVM_VERIFY_OK_CLAIMED:
        break;
    default:
        return DVM_ERR_INVALID;
    }
    if (r->amount > DVM_JSON_MAX_SAFE_INT - p->earned)
        return DVM_ERR_INVALID;
    t->status = r->outcome == DVM_VERIFY_OK ? TOK_VERIFIED : TOK_CLAIMED;
    t->amount = r->amount;
    p->pending--;
    p->earned += r->amount;
    if (p->state == DVM_PROVIDER_CLOSING)
        return p->pending ? DVM_OK : complete(p);

    uint64_t total = p->carry + r->amount;
    p->credit += total / p->cfg.sats_per_chunk;
    p->carry = total % p->cfg.sats_per_chunk;
    dvm_sref none = {0};
    if ((e = send(p, DVM_MSG_PAYMENT_ACK, r->amount, 0, none)))
        return e;
    if (p->state == DVM_PROVIDER_OFFERED && p->credit > 0) {
        if ((e = cancel_timer(p)) || (e = send(p, DVM_MSG_ACCEPTED, 0, 0, none)))
            return e;
        p->state = DVM_PROVIDER_STREAMING;
        p->gen_started = true;
        return act(p, DVM_PACT_START_GENERATION);
    }
    if (p->state == DVM_PROVIDER_WAIT_PAYMENT && p->credit > 0)
        return flush(p, now_ms);
    return DVM_OK;
}

/* Could s[0..n) be the start of a valid sequence cut short? */
static bool utf8_prefix(const uint8_t *s, size_t n)
{
    uint8_t b = s[0];
    size_t want = (b >= 0xC2 && b <= 0xDF) ? 2 : (b >= 0xE0 && b <= 0xEF) ? 3
                  : (b >= 0xF0 && b <= 0xF4) ? 4 : 0;
    if (want == 0 || n >= want)
        return false;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return false;
    return true;
}

/* Make the processor's bytes valid UTF-8 for the wire: a sequence cut at
 * the end of a chunk is held (*npart bytes into part) and completed by the
 * next one; any other invalid byte becomes U+FFFD. */
static dvm_err utf8_fix(dvm_buf *tmp, dvm_buf *out, const uint8_t *part, size_t npart,
                        const char *data, size_t len, uint8_t newpart[4], size_t *nnew)
{
    dvm_err e;
    dvm_buf_reset(tmp);
    dvm_buf_reset(out);
    *nnew = 0;
    if ((e = dvm_buf_append(tmp, part, npart)) || (e = dvm_buf_append(tmp, data, len)))
        return e;
    const uint8_t *s = tmp->data;
    size_t n = tmp->len, i = 0;
    while (i < n) {
        size_t k = dvm_utf8_seq_len(s + i, n - i);
        if (k) { /* a run of valid sequences: one append */
            size_t j = i + k;
            while (j < n && (k = dvm_utf8_seq_len(s + j, n - j)) != 0)
                j += k;
            if ((e = dvm_buf_append(out, s + i, j - i)))
                return e;
            i = j;
        } else if (utf8_prefix(s + i, n - i)) {
            *nnew = n - i;
            memcpy(newpart, s + i, n - i);
            break;
        } else {
            if ((e = dvm_buf_append(out, "\xEF\xBF\xBD", 3)))
                return e;
            i++;
        }
    }
    return DVM_OK;
}

dvm_err dvm_provider_on_chunk(dvm_provider *p, const char *data, size_t len, uint64_t now_ms)
{
    begin(p);
    if (p->state != DVM_PROVIDER_STREAMING && p->state != DVM_PROVIDER_WAIT_PAYMENT)
        return DVM_ERR_STATE;
    uint8_t newpart[4];
    size_t nnew = 0;
    /* Common case: nothing held from the previous chunk and this one is
     * whole, valid UTF-8: use it as is (no copy). */
    if (p->cfg.fix_utf8 && !(p->npart == 0 && dvm_utf8_valid((const uint8_t *)data, len))) {
        dvm_err e = utf8_fix(&p->fixtmp, &p->fixout, p->part, p->npart, data, len, newpart, &nnew);
        if (e)
            return e;
        /* Commit the held bytes only once the chunk is surely taken. */
        bool fits = (p->state == DVM_PROVIDER_STREAMING && p->credit > 0) ||
                    (p->qcount < p->cfg.max_queued_chunks &&
                     p->fixout.len <= p->cfg.max_queued_bytes - p->queue.len);
        if (!fits && p->fixout.len > 0)
            return DVM_ERR_LIMIT;
        memcpy(p->part, newpart, nnew);
        p->npart = nnew;
        if (p->fixout.len == 0)
            return DVM_OK; /* only part of a character so far */
        data = (const char *)p->fixout.data;
        len = p->fixout.len;
    }
    if (p->state == DVM_PROVIDER_STREAMING && p->credit > 0) {
        dvm_err e = send_chunk(p, data, len);
        return e == DVM_ERR_TOO_LARGE ? DVM_OK : e;
    }
    if (p->gen_done)
        return DVM_ERR_STATE;
    if (p->qcount >= p->cfg.max_queued_chunks)
        return DVM_ERR_LIMIT;
    dvm_err e = dvm_buf_append(&p->queue, data, len);
    if (e == DVM_ERR_TOO_LARGE)
        return DVM_ERR_LIMIT;
    if (e)
        return e;
    p->qlens[(p->qhead + p->qcount) % p->cfg.max_queued_chunks] = len;
    p->qcount++;
    if (p->state == DVM_PROVIDER_STREAMING) {
        p->state = DVM_PROVIDER_WAIT_PAYMENT;
        if ((e = send_pay_required(p, now_ms)))
            return e;
        return act(p, DVM_PACT_PAUSE_GENERATION);
    }
    return DVM_OK;
}

/* The fused chunk path (see provider.h). Taken only when on_chunk would
 * emit exactly one action, SEND chunk(data, chunks_sent + 1), with the
 * bytes unchanged: no action pending (so order is kept), STREAMING with
 * credit, nothing held by the UTF-8 repair, room in `output` without
 * growth, the job's chunk head kept (see on_request). The encoder checks that data is valid UTF-8 with the same
 * sequence rule as dvm_utf8_valid (wire/jscan.h dvm_jscan_utf8_seq), so
 * its success proves on_chunk would have sent the chunk as is (fix_utf8
 * or not); one validation instead of two. Anything else (including any
 * encoder error) goes through dvm_provider_on_chunk unchanged: the action
 * is queued and the driver drains and encodes it as usual. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static dvm_err on_chunk_encode_general(dvm_provider *p, const char *data, size_t len,
                                       uint64_t now_ms, dvm_buf *wire);

dvm_err dvm_provider_on_chunk_encode(dvm_provider *p, const char *data, size_t len,
                                     uint64_t now_ms, dvm_buf *wire)
{
    /* The common case, inline (wire/chunk_fast.h): the checks of
     * on_chunk_encode_general, seq on and its tail kept; the general
     * function (without its own prologue here) does everything else. */
    size_t off = p->output.len;
    if (p->ahead == p->acount && p->state == DVM_PROVIDER_STREAMING && p->credit > 0 &&
        p->npart == 0 && len && data && off <= p->output.max && len <= p->output.cap - off &&
        len <= p->output.max - off && p->cfg.send_seq && p->ctail.seq == p->chunks_sent + 1) {
        uint8_t *end = dvm_cf_encode_chunk(wire, p->chead.data, p->chead.len,
                                           (const uint8_t *)data, len, &p->ctail);
        if (end) {
            wire->len = (size_t)(end - wire->data);
            begin(p);
            dvm_cf_copy(p->output.data + off, (const uint8_t *)data, len);
            p->output.len = off + len;
            p->credit--;
            p->chunks_sent++;
            dvm_chunk_tail_next(&p->ctail);
            return DVM_OK;
        }
    }
    return on_chunk_encode_general(p, data, len, now_ms, wire);
}

static dvm_err on_chunk_encode_general(dvm_provider *p, const char *data, size_t len,
                                       uint64_t now_ms, dvm_buf *wire)
{
    size_t off = p->output.len;
    if (p->ahead == p->acount && p->state == DVM_PROVIDER_STREAMING && p->credit > 0 &&
        p->npart == 0 && len && data && off <= p->output.max && len <= p->output.cap - off &&
        len <= p->output.max - off) {
        size_t wlen = wire->len;
        dvm_str d = {data, len}, head = {(const char *)p->chead.data, p->chead.len};
        dvm_err e;
        if (!p->chead.len) {
            e = DVM_ERR_INVALID;
        } else if (p->cfg.send_seq) {
            if (p->ctail.seq != p->chunks_sent + 1)
                dvm_chunk_tail_set(&p->ctail, p->chunks_sent + 1);
            e = dvm_msg_encode_chunk_with_tail(wire, head, d, &p->ctail);
        } else {
            e = dvm_msg_encode_chunk_with_head(wire, head, d, false, 0);
        }
        if (e == DVM_OK) {
            begin(p);
            memcpy(p->output.data + off, data, len);
            p->output.len = off + len;
            p->credit--;
            p->chunks_sent++;
            if (p->cfg.send_seq)
                dvm_chunk_tail_next(&p->ctail);
            return DVM_OK;
        }
        wire->len = wlen; /* nothing of a failed encode is counted */
    }
    return dvm_provider_on_chunk(p, data, len, now_ms);
}

dvm_err dvm_provider_on_generation_done(dvm_provider *p, uint64_t now_ms)
{
    (void)now_ms;
    begin(p);
    if (!p->gen_started || p->gen_done || ended(p))
        return DVM_ERR_STATE;
    p->gen_done = true;
    p->gen_finished = true; /* nothing left to cancel */
    if (p->state == DVM_PROVIDER_WAIT_PAYMENT)
        return DVM_OK; /* finishes once the queue is paid and sent */
    dvm_err e = send_result(p);
    if (e)
        return e;
    return finish(p, DVM_PROVIDER_END_COMPLETED);
}

dvm_err dvm_provider_on_generation_error(dvm_provider *p, const char *message, size_t len,
                                         uint64_t now_ms)
{
    (void)now_ms;
    begin(p);
    if (!p->gen_started || p->gen_done || ended(p))
        return DVM_ERR_STATE;
    size_t orig = len;
    if (len > 1024)
        len = 1024;
    while (len > 0 && len < orig && ((uint8_t)message[len] & 0xC0) == 0x80)
        len--;
    return gen_error(p, message, len);
}

dvm_err dvm_provider_on_timer(dvm_provider *p, uint64_t now_ms)
{
    begin(p);
    if (p->deadline == UINT64_MAX || now_ms < p->deadline)
        return DVM_OK;
    p->deadline = UINT64_MAX;
    dvm_err e;
    if (p->state == DVM_PROVIDER_OFFERED) {
        if ((e = send_errorf(p, "Payment timeout after %llums",
                             (unsigned long long)p->cfg.payment_timeout_ms)))
            return e;
        return finish(p, DVM_PROVIDER_END_PAYMENT_TIMEOUT);
    }
    if (p->state == DVM_PROVIDER_WAIT_PAYMENT) {
        if ((e = send_errorf(p, "Payment timeout after %llums",
                             (unsigned long long)p->cfg.payment_timeout_ms)) ||
            (e = send_result(p)))
            return e;
        return finish(p, DVM_PROVIDER_END_PAYMENT_TIMEOUT);
    }
    return DVM_OK;
}

dvm_err dvm_provider_abort(dvm_provider *p, uint64_t now_ms)
{
    (void)now_ms;
    begin(p);
    if (ended(p))
        return DVM_ERR_STATE;
    if (p->state == DVM_PROVIDER_IDLE)
        p->state = DVM_PROVIDER_OFFERED;
    return finish(p, DVM_PROVIDER_END_ABORTED);
}

dvm_err dvm_provider_end_job(dvm_provider *p, uint64_t now_ms)
{
    (void)now_ms;
    begin(p);
    if (ended(p))
        return DVM_ERR_STATE;
    if (p->state == DVM_PROVIDER_STREAMING || p->state == DVM_PROVIDER_WAIT_PAYMENT) {
        dvm_err e = send_result(p);
        if (e)
            return e;
    }
    if (p->state == DVM_PROVIDER_IDLE)
        p->state = DVM_PROVIDER_OFFERED;
    return finish(p, DVM_PROVIDER_END_SHUTDOWN);
}

uint64_t dvm_provider_deadline(const dvm_provider *p) { return p->deadline; }

size_t dvm_provider_actions_pending(const dvm_provider *p) { return p->acount - p->ahead; }

void dvm_provider_get_stats(const dvm_provider *p, dvm_provider_stats *o)
{
    memset(o, 0, sizeof *o);
    o->state = p->state;
    o->earned_sats = p->earned;
    o->credit_chunks = p->credit;
    o->carry_sats = p->carry;
    o->chunks_sent = p->chunks_sent;
    o->chunks_queued = p->qcount;
    o->payments = p->ntoks;
    o->payments_pending = p->pending;
    o->output_bytes = p->output.len;
}

dvm_str dvm_provider_job_id(const dvm_provider *p)
{
    dvm_str s = {p->id_len ? (const char *)p->job.data : NULL, p->id_len};
    return s;
}

const char *dvm_provider_state_name(dvm_provider_state s)
{
    switch (s) {
    case DVM_PROVIDER_IDLE: return "idle";
    case DVM_PROVIDER_OFFERED: return "offered";
    case DVM_PROVIDER_STREAMING: return "streaming";
    case DVM_PROVIDER_WAIT_PAYMENT: return "wait_payment";
    case DVM_PROVIDER_CLOSING: return "closing";
    case DVM_PROVIDER_DONE: return "done";
    }
    return "?";
}

const char *dvm_provider_end_name(dvm_provider_end e)
{
    switch (e) {
    case DVM_PROVIDER_END_COMPLETED: return "completed";
    case DVM_PROVIDER_END_STOPPED: return "stopped";
    case DVM_PROVIDER_END_PAYMENT_TIMEOUT: return "payment_timeout";
    case DVM_PROVIDER_END_GENERATION_ERROR: return "generation_error";
    case DVM_PROVIDER_END_ABORTED: return "aborted";
    case DVM_PROVIDER_END_SHUTDOWN: return "shutdown";
    }
    return "?";
}
