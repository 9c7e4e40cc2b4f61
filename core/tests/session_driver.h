/* Test driver: a provider job and a customer job wired together in memory.
 *
 * Every message goes through the real codec (encoded to its NDJSON line,
 * decoded again; a message that does not encode marks codec_failed), then
 * is deep-copied into FIFO "wires" (one per direction), so each
 * side only sees a message after the other side's event call returned, as
 * on a real connection. A fake verifier credits tokens of the form
 * "cashuTEST:<amount>:<n>" and rejects tokens starting with "bad"; a fake
 * token source hands out such tokens (or fails, or withholds them). A fake
 * processor delivers a fixed list of chunks, honouring PAUSE/RESUME/CANCEL.
 * Every message on the wire is logged as its type name, so tests can assert
 * the exact sequence. Header-only; included by the session tests. */
#ifndef DVM_TESTS_SESSION_DRIVER_H
#define DVM_TESTS_SESSION_DRIVER_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session/customer.h"
#include "session/provider.h"
#include "wire/codec.h"

#define DRV_MAXQ 4096

typedef struct drv_msg {
    dvm_msg m;
    char *id, *s1; /* owned copies */
} drv_msg;

typedef struct drv_wire {
    drv_msg q[DRV_MAXQ];
    size_t head, tail;
} drv_wire;

typedef struct drv {
    dvm_provider *p;
    dvm_customer *c;
    uint64_t now;
    drv_wire to_p, to_c;

    /* processor */
    const char *const *chunks;
    size_t nchunks, next;
    bool gen_running, paused, gen_started, gen_cancelled;
    long fail_at; /* chunk index at which the processor fails, -1 never */

    /* verifier */
    uint64_t verify_ids[256];
    char *verify_tokens[256];
    size_t nverify;
    bool hold_verify; /* do not answer verifications */
    uint64_t verified_sats;

    /* token source */
    uint64_t token_reqs[256];
    uint64_t token_amounts[256];
    size_t ntokreq;
    bool hold_tokens, fail_tokens;
    const char *token_override; /* e.g. "bad" for rejected tokens */
    unsigned tokens_made;
    uint64_t returned_sats;

    /* results */
    uint64_t p_timer, c_timer;
    bool p_done, c_done;
    dvm_provider_end p_end;
    dvm_customer_status c_status;
    char c_message[256];
    uint64_t claimed_sats;
    size_t claim_actions, claimed_tokens;
    char log[16384];
    unsigned pauses, resumes;
    uint64_t max_seen_chunks_without_credit;
    bool invariant_broken;
    uint64_t spc; /* provider's sats_per_chunk, for the credit invariant */
    dvm_msg_decoder dec;
    bool codec_failed;
    uint64_t wire_bytes;
} drv;

static inline char *drv_dup(dvm_str s)
{
    char *p = malloc(s.len + 1);
    if (s.len)
        memcpy(p, s.ptr, s.len);
    p[s.len] = 0;
    return p;
}

static inline void drv_wire_put(drv *d, drv_wire *w, const dvm_msg *orig)
{
    dvm_buf line;
    dvm_buf_init(&line, 0);
    dvm_msg dm;
    const dvm_msg *m = orig;
    if (dvm_msg_encode(orig, &line) != DVM_OK || line.len < 1 ||
        dvm_msg_decode(&d->dec, line.data, line.len - 1, &dm, NULL, 0) != DVM_OK)
        d->codec_failed = true;
    else
        m = &dm;
    d->wire_bytes += line.len;
    drv_msg *x = &w->q[w->tail++ % DRV_MAXQ];
    x->m = *m;
    x->id = drv_dup(m->id);
    x->m.id.ptr = x->id;
    dvm_str *s = NULL;
    switch (m->type) {
    case DVM_MSG_REQUEST: s = &x->m.input; break;
    case DVM_MSG_PAYMENT: s = &x->m.token; break;
    case DVM_MSG_CHUNK: s = &x->m.data; break;
    case DVM_MSG_RESULT: s = &x->m.output; break;
    case DVM_MSG_ERROR: s = &x->m.message; break;
    default: break;
    }
    x->s1 = NULL;
    if (s) {
        x->s1 = drv_dup(*s);
        s->ptr = x->s1;
    }
    /* decoded strings may point into `line` (zero-copy): free it only now */
    dvm_buf_free(&line);
    size_t l = strlen(d->log);
    snprintf(d->log + l, sizeof d->log - l, "%s%s", l ? " " : "", dvm_msg_type_name(m->type));
}

static inline bool drv_wire_get(drv_wire *w, drv_msg *out)
{
    if (w->head == w->tail)
        return false;
    *out = w->q[w->head++ % DRV_MAXQ];
    return true;
}

static inline void drv_msg_free(drv_msg *x)
{
    free(x->id);
    free(x->s1);
}

static inline void drv_init(drv *d, const dvm_provider_config *pc, const dvm_customer_config *cc,
                            const dvm_customer_callbacks *cb)
{
    memset(d, 0, sizeof *d);
    d->p = dvm_provider_new(pc);
    d->spc = pc ? pc->sats_per_chunk : DVM_DEFAULT_SATS_PER_CHUNK;
    d->c = dvm_customer_new(cc, cb);
    d->now = 1000;
    d->fail_at = -1;
    d->p_timer = d->c_timer = UINT64_MAX;
    dvm_msg_decoder_init(&d->dec, 0);
}

static inline drv *drv_new(const dvm_provider_config *pc, const dvm_customer_config *cc,
                           const dvm_customer_callbacks *cb)
{
    drv *d = malloc(sizeof *d);
    drv_init(d, pc, cc, cb);
    return d;
}

static inline void drv_free(drv *d)
{
    cr_expect(!d->codec_failed, "a session emitted a message the codec cannot encode");
    drv_msg x;
    while (drv_wire_get(&d->to_p, &x))
        drv_msg_free(&x);
    while (drv_wire_get(&d->to_c, &x))
        drv_msg_free(&x);
    for (size_t i = 0; i < d->nverify; i++)
        free(d->verify_tokens[i]);
    dvm_provider_free(d->p);
    dvm_customer_free(d->c);
    dvm_msg_decoder_free(&d->dec);
    free(d);
}

static inline uint64_t drv_token_amount(const char *tok)
{
    unsigned long long a = 0;
    if (sscanf(tok, "cashuTEST:%llu:", &a) != 1)
        return 0;
    return a;
}

static inline void drv_check(drv *d)
{
    dvm_provider_stats ps;
    dvm_provider_get_stats(d->p, &ps);
    /* provider: every chunk sent was paid for; no sat lost in the carry */
    if (d->spc && (ps.chunks_sent * d->spc + ps.credit_chunks * d->spc + ps.carry_sats !=
                   ps.earned_sats))
        d->invariant_broken = true;
    dvm_customer_stats cs;
    dvm_customer_get_stats(d->c, &cs);
    if (cs.sats_paid > cs.budget || cs.sats_committed > cs.budget || d->codec_failed)
        d->invariant_broken = true;
}

/* Drain both action queues once. Returns true if anything happened. */
static inline bool drv_drain(drv *d)
{
    bool any = false;
    dvm_provider_action a;
    while (dvm_provider_next_action(d->p, &a)) {
        any = true;
        switch (a.type) {
        case DVM_PACT_SEND: drv_wire_put(d, &d->to_c, &a.msg); break;
        case DVM_PACT_VERIFY_TOKEN:
            d->verify_ids[d->nverify] = a.verify_id;
            d->verify_tokens[d->nverify] = drv_dup(a.token);
            d->nverify++;
            break;
        case DVM_PACT_START_GENERATION:
            d->gen_running = d->gen_started = true;
            break;
        case DVM_PACT_PAUSE_GENERATION: d->paused = true; d->pauses++; break;
        case DVM_PACT_RESUME_GENERATION: d->paused = false; d->resumes++; break;
        case DVM_PACT_CANCEL_GENERATION: d->gen_running = false; d->gen_cancelled = true; break;
        case DVM_PACT_SET_TIMER: d->p_timer = a.deadline_ms; break;
        case DVM_PACT_CANCEL_TIMER: d->p_timer = UINT64_MAX; break;
        case DVM_PACT_CLAIM:
            d->claim_actions++;
            d->claimed_tokens += a.n_tokens;
            for (size_t i = 0; i < a.n_tokens; i++) {
                char *t = drv_dup(a.tokens[i]);
                d->claimed_sats += drv_token_amount(t);
                free(t);
            }
            break;
        case DVM_PACT_DONE: d->p_done = true; d->p_end = a.end; break;
        }
    }
    dvm_customer_action ca;
    while (dvm_customer_next_action(d->c, &ca)) {
        any = true;
        switch (ca.type) {
        case DVM_CACT_SEND: drv_wire_put(d, &d->to_p, &ca.msg); break;
        case DVM_CACT_NEED_TOKEN:
            d->token_reqs[d->ntokreq] = ca.token_req;
            d->token_amounts[d->ntokreq] = ca.amount;
            d->ntokreq++;
            break;
        case DVM_CACT_RETURN_TOKEN: {
            char *t = drv_dup(ca.token);
            d->returned_sats += drv_token_amount(t);
            free(t);
            break;
        }
        case DVM_CACT_SET_TIMER: d->c_timer = ca.deadline_ms; break;
        case DVM_CACT_CANCEL_TIMER: d->c_timer = UINT64_MAX; break;
        case DVM_CACT_DONE:
            d->c_done = true;
            d->c_status = ca.status;
            snprintf(d->c_message, sizeof d->c_message, "%.*s", (int)ca.message.len,
                     ca.message.ptr ? ca.message.ptr : "");
            break;
        }
    }
    drv_check(d);
    return any;
}

/* One step of the world; true if anything happened. */
static inline bool drv_step(drv *d)
{
    bool any = drv_drain(d);
    /* token source */
    if (!d->hold_tokens && d->ntokreq) {
        for (size_t i = 0; i < d->ntokreq; i++) {
            if (d->fail_tokens) {
                dvm_customer_on_token_failed(d->c, d->token_reqs[i], "mint unreachable", d->now);
            } else {
                char tok[128];
                if (d->token_override)
                    snprintf(tok, sizeof tok, "%s:%llu:%u", d->token_override,
                             (unsigned long long)d->token_amounts[i], ++d->tokens_made);
                else
                    snprintf(tok, sizeof tok, "cashuTEST:%llu:%u",
                             (unsigned long long)d->token_amounts[i], ++d->tokens_made);
                dvm_customer_on_token(d->c, d->token_reqs[i], dvm_str_c(tok), d->now);
            }
        }
        d->ntokreq = 0;
        any = true;
    }
    /* verifier */
    if (!d->hold_verify && d->nverify) {
        for (size_t i = 0; i < d->nverify; i++) {
            dvm_verify_result r = {0};
            if (strncmp(d->verify_tokens[i], "bad", 3) == 0) {
                r.outcome = DVM_VERIFY_REJECTED;
                r.reason = dvm_str_c("signature invalid");
            } else {
                r.outcome = DVM_VERIFY_OK;
                r.amount = drv_token_amount(d->verify_tokens[i]);
                d->verified_sats += r.amount;
            }
            dvm_provider_on_verify(d->p, d->verify_ids[i], &r, d->now);
            free(d->verify_tokens[i]);
        }
        d->nverify = 0;
        any = true;
    }
    drv_drain(d);
    /* one message each way */
    drv_msg x;
    if (drv_wire_get(&d->to_p, &x)) {
        dvm_provider_handle_msg(d->p, &x.m, d->now);
        drv_msg_free(&x);
        any = true;
    }
    if (drv_wire_get(&d->to_c, &x)) {
        dvm_customer_handle_msg(d->c, &x.m, d->now);
        drv_msg_free(&x);
        any = true;
    }
    drv_drain(d);
    /* processor: one chunk per step while running and not paused */
    if (d->gen_running && !d->paused) {
        if (d->fail_at >= 0 && d->next == (size_t)d->fail_at) {
            d->gen_running = false;
            dvm_provider_on_generation_error(d->p, "model crashed", 13, d->now);
        } else if (d->next < d->nchunks) {
            const char *ch = d->chunks[d->next];
            if (dvm_provider_on_chunk(d->p, ch, strlen(ch), d->now) == DVM_OK)
                d->next++;
        } else {
            d->gen_running = false;
            dvm_provider_on_generation_done(d->p, d->now);
        }
        any = true;
    }
    return any;
}

/* Run until nothing moves (bounded). */
static inline void drv_run(drv *d)
{
    for (int i = 0; i < 100000 && drv_step(d); i++)
        d->now += 1;
}

/* Advance the clock to the earliest pending timer and fire it. */
static inline bool drv_fire_timer(drv *d)
{
    uint64_t t = d->p_timer < d->c_timer ? d->p_timer : d->c_timer;
    if (t == UINT64_MAX)
        return false;
    if (t > d->now)
        d->now = t;
    if (d->p_timer <= d->now) {
        d->p_timer = UINT64_MAX;
        dvm_provider_on_timer(d->p, d->now);
    }
    if (d->c_timer <= d->now) {
        d->c_timer = UINT64_MAX;
        dvm_customer_on_timer(d->c, d->now);
    }
    return true;
}

static inline void drv_start(drv *d, const char *id, const char *input, uint64_t budget)
{
    dvm_customer_start(d->c, dvm_str_c(id), 5100, dvm_str_c(input), budget, d->now);
}

static inline size_t drv_count(const drv *d, const char *type)
{
    size_t n = 0, tl = strlen(type);
    const char *s = d->log;
    while ((s = strstr(s, type)) != NULL) {
        bool start = s == d->log || s[-1] == ' ';
        bool end = s[tl] == ' ' || s[tl] == 0;
        if (start && end)
            n++;
        s += tl;
    }
    return n;
}

#endif
