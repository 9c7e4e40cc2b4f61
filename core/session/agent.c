#include "session/agent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session/sref.h"

#define MAX_REASON 512

typedef struct ajob {
    uint64_t handle;
    uint64_t conn;
    dvm_provider *p;
    bool done; /* DONE queued: slot released, free once drained */
} ajob;

typedef struct aact {
    uint64_t conn;
    dvm_sref id, msg;
} aact;

struct dvm_agent {
    dvm_agent_config cfg;
    ajob *jobs;
    size_t njobs, capjobs;
    size_t running;  /* jobs not done */
    size_t external; /* slots taken by other channels */
    uint64_t next_handle;
    bool shutting_down;

    dvm_buf scratch;
    aact *acts;
    size_t nacts, capacts, ahead;
    size_t cursor; /* job being drained */
};

void dvm_agent_config_default(dvm_agent_config *c)
{
    memset(c, 0, sizeof *c);
    c->max_jobs = DVM_DEFAULT_MAX_JOBS;
    dvm_provider_config_default(&c->provider);
}

dvm_agent *dvm_agent_new(const dvm_agent_config *cfg)
{
    dvm_agent *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    if (cfg)
        a->cfg = *cfg;
    else
        dvm_agent_config_default(&a->cfg);
    /* Validate the provider config once. */
    dvm_provider *probe = dvm_provider_new(&a->cfg.provider);
    if (!probe) {
        free(a);
        return NULL;
    }
    dvm_provider_free(probe);
    dvm_buf_init(&a->scratch, 0);
    return a;
}

void dvm_agent_free(dvm_agent *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->njobs; i++)
        dvm_provider_free(a->jobs[i].p);
    free(a->jobs);
    free(a->acts);
    dvm_buf_free(&a->scratch);
    free(a);
}

/* ---- queue ----------------------------------------------------------- */

/* Start of each event call: release finished, drained jobs; reuse scratch. */
static void begin(dvm_agent *a)
{
    size_t w = 0;
    for (size_t i = 0; i < a->njobs; i++) {
        ajob *j = &a->jobs[i];
        if (j->done && dvm_provider_actions_pending(j->p) == 0) {
            dvm_provider_free(j->p);
            continue;
        }
        a->jobs[w++] = *j;
    }
    a->njobs = w;
    a->cursor = 0;
    if (a->ahead >= a->nacts) {
        a->ahead = a->nacts = 0;
        dvm_buf_reset(&a->scratch);
    }
}

static dvm_err reply_error(dvm_agent *a, uint64_t conn, dvm_str id, const char *msg, size_t len)
{
    if (a->nacts == a->capacts) {
        size_t ncap = a->capacts ? a->capacts * 2 : 8;
        if (ncap > ((size_t)1 << 20))
            return DVM_ERR_LIMIT;
        aact *n = realloc(a->acts, ncap * sizeof *n);
        if (!n)
            return DVM_ERR_NOMEM;
        a->acts = n;
        a->capacts = ncap;
    }
    aact x = {0};
    x.conn = conn;
    dvm_err e;
    size_t idl = id.len > 1024 ? 1024 : id.len;
    while (idl > 0 && idl < id.len && ((uint8_t)id.ptr[idl] & 0xC0) == 0x80)
        idl--;
    if ((e = dvm_sref_put_utf8(&a->scratch, 1, id.ptr, idl, &x.id)) ||
        (e = dvm_sref_put_utf8(&a->scratch, 1, msg, len, &x.msg)))
        return e;
    a->acts[a->nacts++] = x;
    return DVM_OK;
}

bool dvm_agent_next_action(dvm_agent *a, dvm_agent_action *out)
{
    memset(out, 0, sizeof *out);
    if (a->ahead < a->nacts) {
        const aact *x = &a->acts[a->ahead++];
        out->conn = x->conn;
        out->job = 0;
        out->act.type = DVM_PACT_SEND;
        out->act.msg.type = DVM_MSG_ERROR;
        out->act.msg.id = dvm_sref_resolve(&a->scratch, x->id);
        out->act.msg.message = dvm_sref_resolve(&a->scratch, x->msg);
        return true;
    }
    for (; a->cursor < a->njobs; a->cursor++) {
        ajob *j = &a->jobs[a->cursor];
        if (dvm_provider_next_action(j->p, &out->act)) {
            out->conn = j->conn;
            out->job = j->handle;
            return true;
        }
    }
    /* Another pass in case actions were queued on earlier jobs. */
    for (a->cursor = 0; a->cursor < a->njobs; a->cursor++) {
        ajob *j = &a->jobs[a->cursor];
        if (dvm_provider_next_action(j->p, &out->act)) {
            out->conn = j->conn;
            out->job = j->handle;
            return true;
        }
    }
    return false;
}

/* ---- jobs ------------------------------------------------------------ */

static ajob *by_handle(dvm_agent *a, uint64_t h)
{
    for (size_t i = 0; i < a->njobs; i++)
        if (a->jobs[i].handle == h && !a->jobs[i].done)
            return &a->jobs[i];
    return NULL;
}

static bool id_eq(dvm_str x, dvm_str y)
{
    return x.len == y.len && (x.len == 0 || memcmp(x.ptr, y.ptr, x.len) == 0);
}

static ajob *by_key(dvm_agent *a, uint64_t conn, dvm_str id)
{
    for (size_t i = 0; i < a->njobs; i++) {
        ajob *j = &a->jobs[i];
        if (!j->done && j->conn == conn && id_eq(dvm_provider_job_id(j->p), id))
            return j;
    }
    return NULL;
}

uint64_t dvm_agent_find(const dvm_agent *a, uint64_t conn, dvm_str id)
{
    ajob *j = by_key((dvm_agent *)a, conn, id);
    return j ? j->handle : 0;
}

const dvm_provider *dvm_agent_job(const dvm_agent *a, uint64_t job)
{
    for (size_t i = 0; i < a->njobs; i++)
        if (a->jobs[i].handle == job)
            return a->jobs[i].p;
    return NULL;
}

/* After any provider call: notice the job ending, release its slot. */
static dvm_err after(dvm_agent *a, ajob *j, dvm_err e)
{
    dvm_provider_stats st;
    dvm_provider_get_stats(j->p, &st);
    if (st.state == DVM_PROVIDER_DONE && !j->done) {
        j->done = true;
        a->running--;
    }
    return e;
}

size_t dvm_agent_active(const dvm_agent *a) { return a->running + a->external; }

size_t dvm_agent_max_jobs(const dvm_agent *a) { return a->cfg.max_jobs; }

dvm_err dvm_agent_acquire(dvm_agent *a)
{
    if (dvm_agent_active(a) >= a->cfg.max_jobs)
        return DVM_ERR_LIMIT;
    a->external++;
    return DVM_OK;
}

dvm_err dvm_agent_release(dvm_agent *a)
{
    if (a->external == 0)
        return DVM_ERR_STATE;
    a->external--;
    return DVM_OK;
}

static dvm_err on_request(dvm_agent *a, uint64_t conn, const dvm_msg *m, uint64_t now_ms)
{
    dvm_err e;
    if (a->shutting_down) {
        e = reply_error(a, conn, m->id, "Agent shutting down", 19);
        return e ? e : DVM_ERR_STATE;
    }
    if (by_key(a, conn, m->id)) {
        e = reply_error(a, conn, m->id, "Duplicate job id", 16);
        return e ? e : DVM_ERR_EXISTS;
    }
    if (dvm_agent_active(a) >= a->cfg.max_jobs) {
        char tmp[96];
        int n = snprintf(tmp, sizeof tmp, "No capacity (%zu/%zu slots used)", dvm_agent_active(a),
                         a->cfg.max_jobs);
        e = reply_error(a, conn, m->id, tmp, (size_t)(n > 0 ? n : 0));
        return e ? e : DVM_ERR_LIMIT;
    }
    if (a->njobs == a->capjobs) {
        size_t ncap = a->capjobs ? a->capjobs * 2 : 4;
        ajob *n = realloc(a->jobs, ncap * sizeof *n);
        if (!n)
            return DVM_ERR_NOMEM;
        a->jobs = n;
        a->capjobs = ncap;
    }
    dvm_provider *p = dvm_provider_new(&a->cfg.provider);
    if (!p)
        return DVM_ERR_NOMEM;
    ajob *j = &a->jobs[a->njobs++];
    j->handle = ++a->next_handle;
    j->conn = conn;
    j->p = p;
    j->done = false;
    a->running++;
    return after(a, j, dvm_provider_handle_msg(p, m, now_ms));
}

dvm_err dvm_agent_handle_msg(dvm_agent *a, uint64_t conn, const dvm_msg *m, uint64_t now_ms)
{
    begin(a);
    dvm_err e;
    switch (m->type) {
    case DVM_MSG_REQUEST: return on_request(a, conn, m, now_ms);
    case DVM_MSG_PAYMENT:
    case DVM_MSG_STOP: {
        ajob *j = by_key(a, conn, m->id);
        if (!j) {
            e = reply_error(a, conn, m->id, "Unknown job", 11);
            return e ? e : DVM_ERR_NOT_FOUND;
        }
        return after(a, j, dvm_provider_handle_msg(j->p, m, now_ms));
    }
    default: {
        char tmp[64];
        int n = snprintf(tmp, sizeof tmp, "Unexpected message type: %s", dvm_msg_type_name(m->type));
        e = reply_error(a, conn, m->id, tmp, (size_t)(n > 0 ? n : 0));
        return e ? e : DVM_ERR_PROTO;
    }
    }
}

dvm_err dvm_agent_handle_decode_error(dvm_agent *a, uint64_t conn, dvm_str id, dvm_str reason,
                                      uint64_t now_ms)
{
    (void)now_ms;
    begin(a);
    size_t n = reason.len > MAX_REASON ? MAX_REASON : reason.len;
    while (n > 0 && n < reason.len && ((uint8_t)reason.ptr[n] & 0xC0) == 0x80)
        n--;
    return reply_error(a, conn, id, reason.ptr, n);
}

dvm_err dvm_agent_on_verify(dvm_agent *a, uint64_t job, uint64_t verify_id,
                            const dvm_verify_result *r, uint64_t now_ms)
{
    begin(a);
    /* A job that ended while verifications were pending is CLOSING, not
     * done: it still takes the outcome. */
    ajob *j = by_handle(a, job);
    if (!j)
        return DVM_ERR_NOT_FOUND;
    return after(a, j, dvm_provider_on_verify(j->p, verify_id, r, now_ms));
}

dvm_err dvm_agent_on_chunk(dvm_agent *a, uint64_t job, const char *data, size_t len,
                           uint64_t now_ms)
{
    begin(a);
    ajob *j = by_handle(a, job);
    if (!j)
        return DVM_ERR_NOT_FOUND;
    return after(a, j, dvm_provider_on_chunk(j->p, data, len, now_ms));
}

dvm_err dvm_agent_on_generation_done(dvm_agent *a, uint64_t job, uint64_t now_ms)
{
    begin(a);
    ajob *j = by_handle(a, job);
    if (!j)
        return DVM_ERR_NOT_FOUND;
    return after(a, j, dvm_provider_on_generation_done(j->p, now_ms));
}

dvm_err dvm_agent_on_generation_error(dvm_agent *a, uint64_t job, const char *msg, size_t len,
                                      uint64_t now_ms)
{
    begin(a);
    ajob *j = by_handle(a, job);
    if (!j)
        return DVM_ERR_NOT_FOUND;
    return after(a, j, dvm_provider_on_generation_error(j->p, msg, len, now_ms));
}

dvm_err dvm_agent_on_timer(dvm_agent *a, uint64_t now_ms)
{
    begin(a);
    dvm_err first = DVM_OK;
    for (size_t i = 0; i < a->njobs; i++) {
        ajob *j = &a->jobs[i];
        if (j->done || dvm_provider_deadline(j->p) > now_ms)
            continue;
        dvm_err e = after(a, j, dvm_provider_on_timer(j->p, now_ms));
        if (e && !first)
            first = e;
    }
    return first;
}

uint64_t dvm_agent_deadline(const dvm_agent *a)
{
    uint64_t d = UINT64_MAX;
    for (size_t i = 0; i < a->njobs; i++) {
        if (a->jobs[i].done)
            continue;
        uint64_t x = dvm_provider_deadline(a->jobs[i].p);
        if (x < d)
            d = x;
    }
    return d;
}

dvm_err dvm_agent_connection_closed(dvm_agent *a, uint64_t conn, uint64_t now_ms)
{
    begin(a);
    dvm_err first = DVM_OK;
    for (size_t i = 0; i < a->njobs; i++) {
        ajob *j = &a->jobs[i];
        if (j->done || j->conn != conn)
            continue;
        dvm_provider_stats st;
        dvm_provider_get_stats(j->p, &st);
        if (st.state == DVM_PROVIDER_CLOSING)
            continue; /* already ended; waiting for verifications */
        dvm_err e = after(a, j, dvm_provider_abort(j->p, now_ms));
        if (e && !first)
            first = e;
    }
    return first;
}

dvm_err dvm_agent_shutdown(dvm_agent *a, uint64_t now_ms)
{
    begin(a);
    a->shutting_down = true;
    dvm_err first = DVM_OK;
    for (size_t i = 0; i < a->njobs; i++) {
        ajob *j = &a->jobs[i];
        if (j->done)
            continue;
        dvm_provider_stats st;
        dvm_provider_get_stats(j->p, &st);
        if (st.state == DVM_PROVIDER_CLOSING)
            continue;
        dvm_err e = after(a, j, dvm_provider_end_job(j->p, now_ms));
        if (e && !first)
            first = e;
    }
    return first;
}
