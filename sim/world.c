/* dvmstream simulator — the virtual swarm: network, peers, jobs, mint ops,
 * invariants. See sim.h. */
#include <jansson.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventq.h"
#include "pay.h"
#include "pcapgen.h"
#include "rng.h"
#include "session/agent.h"
#include "session/customer.h"
#include "session/provider.h"
#include "sim.h"
#include "wire/codec.h"
#include "wire/frame.h"

/* ---- events ------------------------------------------------------------ */

enum {
    EV_ARRIVAL = 1, /* next customer job arrives */
    EV_CONNECTED,   /* a=job: TCP handshake done, customer may send */
    EV_DELIVER,     /* a=job, b=gen<<32 | dir<<31 | len */
    EV_CLOSE,       /* a=job, b=gen<<32 | dir: FIN reaches side 1-dir */
    EV_PTIMER,      /* a=provider: its agent's earliest timer */
    EV_CTIMER,      /* a=job, b=gen<<32: the customer session's timer */
    EV_CHUNK,       /* a=job, b=gen<<32 | processor gen */
    EV_OP,          /* a=op: a mint/wallet/policy operation completes */
    EV_PART_START,  /* a=window */
    EV_PART_END,    /* a=window */
    EV_DISCONNECT,  /* a=window */
    EV_OUTAGE,      /* a=window: mint outage starts (trace only) */
};

enum { DIR_C2P = 0, DIR_P2C = 1 };

enum { PB_HONEST = 0, PB_TAKE_AND_STOP, PB_EARLY_ASK, PB_STALL };
static const char *const pb_names[] = {"honest", "take_and_stop", "early_ask", "stall"};
enum { CB_HONEST = 0, CB_NEVER_PAY, CB_DOUBLE_SPEND, CB_FORGE, CB_UNTRUSTED, CB_REPLAY };
static const char *const cb_names[] = {"honest", "never_pay", "double_spend", "forge", "untrusted_mint",
                                       "replay"};

/* ---- state ------------------------------------------------------------- */

typedef struct provider_node {
    dvm_agent *ag; /* the core agent: jobs and the MAX_JOBS capacity counter */
    uint64_t timer_queued_us; /* the one queued EV_PTIMER (0 = none) */
    uint64_t sats_per_chunk;
    uint8_t behaviour;
    uint64_t jobs, chunks, earned, claimed, spent_refused, spent_sats, rejected;
    sim_rng rng; /* the core's randomness for this peer */
} provider_node;

typedef struct customer_node {
    uint8_t behaviour;
    sim_rng rng;
    /* double spender: tokens already sent, reused at another provider */
    dvm_buf spent_tokens; /* u32 len | u32 provider | u64 amount | bytes ... */
} customer_node;

/* One customer-level job (with its retries). */
typedef struct cjob {
    uint32_t customer;
    uint32_t attempts;
    uint64_t budget;
    uint64_t arrival_us, first_chunk_us, end_us;
    uint64_t chunks, sats_paid;
    uint32_t last_provider;
    uint8_t status;        /* dvm_customer_status, or SIM_ST_* below */
    uint8_t done;
} cjob;

enum { SIM_ST_NO_PROVIDER = 100, SIM_ST_MINT_FAILED, SIM_ST_UNFINISHED, SIM_ST_NO_CAPACITY };

typedef struct side {
    dvm_buf q;            /* bytes sent, not yet delivered */
    size_t rd;            /* delivered prefix of q */
    uint64_t tx_free_us;  /* link busy until (bandwidth) */
    uint64_t last_arr_us; /* in-order delivery */
    uint32_t isn;         /* TCP initial sequence number (pcap) */
    uint64_t sent, dlv;   /* bytes */
    dvm_framer fr;        /* receiver's framer for this direction */
} side;

/* One attempt: a connection between a customer and a provider carrying one
 * DVM job, with both sessions. */
typedef struct job {
    uint32_t gen;
    uint32_t cj;
    uint32_t cust, prov;
    uint32_t serial;
    uint8_t in_use, connected, closed, c_done, p_done, muted, early_asked, release_pending;
    uint8_t running, paused, scheduled, stalled;
    uint64_t ajob;         /* the agent's job handle (0 before the request) */
    dvm_customer *cs;
    uint64_t spc;          /* provider price at request time */
    uint64_t base_lat_us;
    side d[2];
    uint64_t chunks_total, chunks_made;
    uint32_t proc_gen;
    /* customer timer: the session's deadline (ms, 0 = none) and the one
     * queued EV_CTIMER (us, 0 = none). Deadlines only move later while
     * streaming (idle timeout), so one queued event re-armed when it fires
     * replaces an event per SET_TIMER. */
    uint64_t ctimer_deadline_ms, ctimer_queued_us;
    uint64_t acked_sats;   /* payment_ack amounts seen on the wire */
    uint64_t chunks_rcvd;
    uint64_t tokens_paid;  /* payments sent */
    dvm_buf first_token;   /* replay adversary */
    char id[24];
    uint32_t next_free;
} job;

enum { OP_MINT = 1, OP_TOKEN, OP_VERIFY, OP_CLAIM };

typedef struct op {
    uint8_t type;
    uint8_t rearmed; /* OP_TOKEN: second pass, after the swap's round trip */
    uint8_t reused;  /* OP_TOKEN: a token already given to another provider */
    uint32_t job, job_gen, cj;
    uint64_t req;       /* token_req / verify_id */
    uint64_t amount;
    dvm_buf data;       /* token / claim tokens (u32 len | bytes)* */
    uint32_t n_tokens;
    uint32_t prov;
    uint32_t next_free;
} op;

/* token accounting for the double-spend invariant */
typedef struct tok_entry {
    uint64_t key; /* 0 = empty */
    uint32_t accepted, claimed_ok, claimed_refused;
} tok_entry;

typedef struct world {
    const sim_scenario *sc;
    const sim_sinks *sinks;
    sim_eventq q;
    sim_rng rng;
    uint64_t now_us, limit_us;
    sim_trace tr;
    sim_pay *pay;

    provider_node *pv;
    customer_node *cu;
    uint64_t *part_until; /* per node: partitioned until (us), providers first */
    size_t n_nodes;

    cjob *cjobs;
    size_t n_cjobs, cap_cjobs;

    job *jobs;
    size_t n_jobs, cap_jobs;
    uint32_t free_job;
    uint32_t serial;

    op *ops;
    size_t n_ops, cap_ops;
    uint32_t free_op;

    tok_entry *tok;
    size_t tok_cap, tok_len;

    uint32_t *rel;        /* jobs that may be released after this event */
    size_t n_rel, cap_rel;

    dvm_msg_decoder dec;
    dvm_buf enc, tmp, chunkbuf;
    uint8_t pkt[SIM_PCAP_HDR + SIM_PCAP_MSS];
    uint16_t ip_id;

    sim_summary *sum;
    uint64_t *lat_first, *lat_job;
    size_t n_first, n_job;
    uint64_t arrivals;
    bool arrivals_done;
    size_t live_jobs, live_ops;
    bool faults, adversaries;
    uint64_t violations_credit, violations_budget;
    dvm_err fatal;
} world;

#define NOW_MS(w) ((w)->now_us / 1000)

static void violation(world *w, const char *name, const char *fmt, ...)
{
    sim_summary *s = w->sum;
    for (size_t i = 0; i < s->n_violations; i++)
        if (!strcmp(s->violations[i].name, name))
            return; /* first detail only */
    if (s->n_violations >= SIM_MAX_VIOLATIONS)
        return;
    snprintf(s->violations[s->n_violations].name, sizeof s->violations[0].name, "%s", name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->violations[s->n_violations].detail, sizeof s->violations[0].detail, fmt, ap);
    va_end(ap);
    s->n_violations++;
}

static void push(world *w, uint64_t t, uint32_t kind, uint32_t a, uint64_t b)
{
    if (sim_eventq_push(&w->q, t, kind, a, b) != DVM_OK)
        w->fatal = DVM_ERR_NOMEM;
}

/* ---- names and addresses --------------------------------------------- */

static uint32_t prov_node(uint32_t p) { return p; }
static uint32_t cust_node(const world *w, uint32_t c) { return (uint32_t)w->sc->providers.count + c; }
static uint32_t prov_ip(uint32_t p) { return 0x0a010000u + p; }       /* 10.1.0.0 + p */
static uint32_t cust_ip(uint32_t c) { return 0x0a800000u + c; }       /* 10.128.0.0 + c */

static size_t fmt_u64(char *out, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp, n;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    n = sizeof tmp - i;
    memcpy(out, tmp + i, n);
    return n;
}

static void trace_peer(world *w, const char *key, char kind, uint32_t idx)
{
    char name[24];
    name[0] = kind;
    size_t n = 1 + fmt_u64(name + 1, idx);
    sim_trace_str(&w->tr, key, name, n);
}

/* ---- latency ------------------------------------------------------------ */

/* Base one-way latency of the link between customer c and provider p:
 * a pure function of (seed, c, p), so every connection of the pair sees
 * the same path. */
static uint64_t link_latency_us(world *w, uint32_t c, uint32_t p)
{
    const sim_scenario *sc = w->sc;
    sim_rng r;
    sim_rng_seed_stream(&r, sc->seed ^ 0x6c696e6bULL, ((uint64_t)c << 32) | p);
    double ms;
    switch (sc->network.latency) {
    case SIM_LAT_FIXED: ms = sc->network.latency_ms; break;
    case SIM_LAT_UNIFORM:
        ms = sc->network.latency_ms + sim_rng_unit(&r) * (sc->network.latency_max_ms - sc->network.latency_ms);
        break;
    default:
        ms = sc->network.latency_ms * exp(sc->network.latency_sigma * sim_rng_normal(&r));
        if (ms > 60000)
            ms = 60000;
        break;
    }
    return (uint64_t)llround(ms * 1000.0);
}

/* ---- jobs ---------------------------------------------------------------- */

static job *job_get(world *w, uint32_t idx, uint32_t gen)
{
    if (idx >= w->n_jobs)
        return NULL;
    job *j = &w->jobs[idx];
    return (j->in_use && j->gen == gen) ? j : NULL;
}

static uint32_t job_alloc(world *w)
{
    uint32_t idx;
    if (w->free_job != UINT32_MAX) {
        idx = w->free_job;
        w->free_job = w->jobs[idx].next_free;
    } else {
        if (w->n_jobs == w->cap_jobs) {
            size_t cap = w->cap_jobs ? w->cap_jobs * 2 : 1024;
            job *p = realloc(w->jobs, cap * sizeof *p);
            if (!p) {
                w->fatal = DVM_ERR_NOMEM;
                return UINT32_MAX;
            }
            w->jobs = p;
            w->cap_jobs = cap;
        }
        idx = (uint32_t)w->n_jobs++;
        memset(&w->jobs[idx], 0, sizeof(job));
        dvm_buf_init(&w->jobs[idx].d[0].q, 0);
        dvm_buf_init(&w->jobs[idx].d[1].q, 0);
        dvm_buf_init(&w->jobs[idx].first_token, 0);
    }
    job *j = &w->jobs[idx];
    uint32_t gen = j->gen + 1;
    dvm_buf q0 = j->d[0].q, q1 = j->d[1].q, ft = j->first_token;
    memset(j, 0, sizeof *j);
    j->gen = gen;
    j->d[0].q = q0;
    j->d[1].q = q1;
    j->first_token = ft;
    dvm_buf_reset(&j->d[0].q);
    dvm_buf_reset(&j->d[1].q);
    dvm_buf_reset(&j->first_token);
    dvm_framer_init(&j->d[0].fr, 0);
    dvm_framer_init(&j->d[1].fr, 0);
    j->in_use = 1;
    j->next_free = UINT32_MAX;
    w->live_jobs++;
    return idx;
}

static void job_release(world *w, uint32_t idx)
{
    job *j = &w->jobs[idx];
    dvm_framer_free(&j->d[0].fr);
    dvm_framer_free(&j->d[1].fr);
    dvm_customer_free(j->cs);
    j->cs = NULL;
    j->in_use = 0;
    w->live_jobs--;
    j->next_free = w->free_job;
    w->free_job = idx;
}

/* Jobs are released between events only (never while a handler may still
 * hold the job's framer or session): mark here, release in flush_release. */
static void job_maybe_release(world *w, uint32_t idx)
{
    job *j = &w->jobs[idx];
    if (!j->in_use || j->release_pending || !(j->c_done && j->p_done && j->closed))
        return;
    if (w->n_rel == w->cap_rel) {
        size_t cap = w->cap_rel ? w->cap_rel * 2 : 256;
        uint32_t *r = realloc(w->rel, cap * sizeof *r);
        if (!r) {
            w->fatal = DVM_ERR_NOMEM;
            return;
        }
        w->rel = r;
        w->cap_rel = cap;
    }
    j->release_pending = 1;
    w->rel[w->n_rel++] = idx;
}

static void flush_release(world *w)
{
    for (size_t i = 0; i < w->n_rel; i++)
        job_release(w, w->rel[i]);
    w->n_rel = 0;
}

/* ---- ops ------------------------------------------------------------------ */

static uint32_t op_alloc(world *w, uint8_t type)
{
    uint32_t idx;
    if (w->free_op != UINT32_MAX) {
        idx = w->free_op;
        w->free_op = w->ops[idx].next_free;
    } else {
        if (w->n_ops == w->cap_ops) {
            size_t cap = w->cap_ops ? w->cap_ops * 2 : 1024;
            op *p = realloc(w->ops, cap * sizeof *p);
            if (!p) {
                w->fatal = DVM_ERR_NOMEM;
                return UINT32_MAX;
            }
            w->ops = p;
            w->cap_ops = cap;
        }
        idx = (uint32_t)w->n_ops++;
        memset(&w->ops[idx], 0, sizeof(op));
        dvm_buf_init(&w->ops[idx].data, 0);
    }
    op *o = &w->ops[idx];
    dvm_buf d = o->data;
    memset(o, 0, sizeof *o);
    o->data = d;
    dvm_buf_reset(&o->data);
    o->type = type;
    o->next_free = UINT32_MAX;
    w->live_ops++;
    return idx;
}

static void op_free(world *w, uint32_t idx)
{
    w->ops[idx].next_free = w->free_op;
    w->free_op = idx;
    w->live_ops--;
}

static bool mint_down(const world *w, uint64_t t_us, uint64_t *until)
{
    for (size_t i = 0; i < w->sc->mint.n_outages; i++) {
        const sim_window *o = &w->sc->mint.outages[i];
        uint64_t a = (uint64_t)llround(o->at_s * 1e6), b = a + (uint64_t)llround(o->duration_s * 1e6);
        if (t_us >= a && t_us < b) {
            if (until)
                *until = b;
            return true;
        }
    }
    return false;
}

static uint64_t mint_latency_us(const world *w) { return (uint64_t)llround(w->sc->mint.latency_ms * 1000.0); }

/* ---- token accounting (double-spend invariant) ------------------------- */

static uint64_t tok_key(dvm_str t)
{
    uint8_t h[32];
    crypto_hash_sha256(h, (const unsigned char *)t.ptr, t.len);
    uint64_t k = 0;
    for (int i = 0; i < 8; i++)
        k = k << 8 | h[i];
    return k ? k : 1;
}

static tok_entry *tok_find(world *w, uint64_t key)
{
    if (w->tok_len * 2 >= w->tok_cap) {
        size_t cap = w->tok_cap ? w->tok_cap * 2 : 4096;
        tok_entry *t = calloc(cap, sizeof *t);
        if (!t) {
            w->fatal = DVM_ERR_NOMEM;
            return NULL;
        }
        for (size_t i = 0; i < w->tok_cap; i++) {
            if (!w->tok[i].key)
                continue;
            size_t k = w->tok[i].key & (cap - 1);
            while (t[k].key)
                k = (k + 1) & (cap - 1);
            t[k] = w->tok[i];
        }
        free(w->tok);
        w->tok = t;
        w->tok_cap = cap;
    }
    size_t k = key & (w->tok_cap - 1);
    while (w->tok[k].key && w->tok[k].key != key)
        k = (k + 1) & (w->tok_cap - 1);
    if (!w->tok[k].key) {
        w->tok[k].key = key;
        w->tok_len++;
    }
    return &w->tok[k];
}

/* ---- network ------------------------------------------------------------ */

static void pcap_emit(world *w, const job *j, int dir, uint8_t flags, uint32_t seq, uint32_t ack,
                      const uint8_t *data, size_t len, uint64_t t_us)
{
    if (!w->sinks || !w->sinks->packet)
        return;
    sim_tcp_tuple tp;
    uint16_t cport = (uint16_t)(20000 + j->serial % 40000);
    if (dir == DIR_C2P) {
        tp = (sim_tcp_tuple){cust_ip(j->cust), prov_ip(j->prov), cport, 7100};
    } else {
        tp = (sim_tcp_tuple){prov_ip(j->prov), cust_ip(j->cust), 7100, cport};
    }
    do {
        size_t n = len > SIM_PCAP_MSS ? SIM_PCAP_MSS : len;
        size_t plen = sim_pcap_segment(w->pkt, &tp, seq, ack, flags, w->ip_id++, data, n);
        w->sinks->packet(w->sinks->ctx, t_us, w->pkt, plen);
        seq += (uint32_t)n;
        data += n;
        len -= n;
    } while (len);
}

static uint64_t node_blocked_until(const world *w, const job *j)
{
    uint64_t a = w->part_until[prov_node(j->prov)], b = w->part_until[cust_node(w, j->cust)];
    uint64_t m = a > b ? a : b;
    return m > w->now_us ? m : 0;
}

/* Send bytes (whole NDJSON lines) from side `dir` of job idx. */
static void net_send(world *w, uint32_t idx, int dir, const uint8_t *data, size_t len)
{
    job *j = &w->jobs[idx];
    if (j->closed || !len)
        return;
    const sim_scenario *sc = w->sc;
    side *s = &j->d[dir];
    if (dvm_buf_append(&s->q, data, len) != DVM_OK) {
        w->fatal = DVM_ERR_NOMEM;
        return;
    }
    w->sum->messages++;
    w->sum->wire_bytes += len;
    uint64_t ser = 0;
    if (sc->network.bandwidth_kbps > 0)
        ser = (uint64_t)llround((double)len * 8000.0 / sc->network.bandwidth_kbps);
    s->tx_free_us = (s->tx_free_us > w->now_us ? s->tx_free_us : w->now_us) + ser;
    uint64_t lat = j->base_lat_us;
    if (sc->network.jitter_ms > 0)
        lat += sim_rng_below(&w->rng, (uint64_t)llround(sc->network.jitter_ms * 1000.0) + 1);
    if (sc->network.loss > 0) {
        size_t segs = (len + SIM_PCAP_MSS - 1) / SIM_PCAP_MSS;
        uint64_t rto = (uint64_t)llround(sc->network.rto_ms * 1000.0);
        for (size_t i = 0; i < segs; i++)
            for (int k = 0; k < 8 && sim_rng_chance(&w->rng, sc->network.loss); k++)
                lat += rto << k; /* exponential backoff per retransmission */
    }
    uint64_t arr = s->tx_free_us + lat;
    uint64_t blocked = node_blocked_until(w, j);
    if (blocked && arr < blocked + j->base_lat_us)
        arr = blocked + j->base_lat_us;
    if (arr < s->last_arr_us)
        arr = s->last_arr_us;
    s->last_arr_us = arr;
    push(w, arr, EV_DELIVER, idx, ((uint64_t)j->gen << 32) | ((uint64_t)dir << 31) | (uint64_t)len);
    pcap_emit(w, j, dir, SIM_TCP_ACK | SIM_TCP_PSH, s->isn + 1 + (uint32_t)s->sent,
              j->d[1 - dir].isn + 1 + (uint32_t)j->d[1 - dir].dlv, data, len, w->now_us);
    s->sent += len;
}

static void send_msg(world *w, uint32_t idx, int dir, const dvm_msg *m)
{
    job *j = &w->jobs[idx];
    dvm_buf_reset(&w->enc);
    dvm_err e = dvm_msg_encode(m, &w->enc);
    if (e) {
        w->fatal = e;
        return;
    }
    sim_trace *t = &w->tr;
    sim_trace_begin(t, w->now_us, "send");
    sim_trace_u64(t, "job", idx);
    if (dir == DIR_C2P) {
        trace_peer(w, "from", 'c', j->cust);
        trace_peer(w, "to", 'p', j->prov);
    } else {
        trace_peer(w, "from", 'p', j->prov);
        trace_peer(w, "to", 'c', j->cust);
    }
    /* the message itself, as the JSON object it is on the wire */
    size_t n = w->enc.len - 1;
    if (n > 60000)
        sim_trace_u64(t, "msg_bytes", n);
    else
        sim_trace_raw(t, "msg", (const char *)w->enc.data, n);
    sim_trace_end(t);
    net_send(w, idx, dir, w->enc.data, w->enc.len);
}

/* Close the connection from side `dir`: FIN to the other side after the
 * bytes in flight. */
static void net_close(world *w, uint32_t idx, int dir)
{
    job *j = &w->jobs[idx];
    if (j->closed)
        return;
    j->closed = 1;
    side *s = &j->d[dir];
    uint64_t arr = w->now_us + j->base_lat_us;
    if (arr < s->last_arr_us)
        arr = s->last_arr_us;
    push(w, arr, EV_CLOSE, idx, ((uint64_t)j->gen << 32) | (uint64_t)dir);
    pcap_emit(w, j, dir, SIM_TCP_ACK | SIM_TCP_FIN, s->isn + 1 + (uint32_t)s->sent,
              j->d[1 - dir].isn + 1 + (uint32_t)j->d[1 - dir].dlv, NULL, 0, w->now_us);
    sim_trace_begin(&w->tr, w->now_us, "close");
    sim_trace_u64(&w->tr, "job", idx);
    sim_trace_str(&w->tr, "by", dir == DIR_C2P ? "customer" : "provider", dir == DIR_C2P ? 8 : 8);
    sim_trace_end(&w->tr);
}

/* ---- provider side ------------------------------------------------------- */

static uint64_t conn_id(const job *j, uint32_t idx) { return ((uint64_t)j->gen << 32) | idx; }

static void proc_schedule(world *w, uint32_t idx)
{
    job *j = &w->jobs[idx];
    if (j->scheduled || !j->running || j->paused || j->stalled || j->chunks_made >= j->chunks_total)
        return;
    uint64_t dt = (uint64_t)llround(1e6 / w->sc->providers.chunk_rate_hz);
    j->scheduled = 1;
    push(w, w->now_us + dt, EV_CHUNK, idx, ((uint64_t)j->gen << 32) | j->proc_gen);
}

static void claim_tokens(world *w, uint32_t prov, const dvm_str *tokens, size_t n)
{
    uint32_t oi = op_alloc(w, OP_CLAIM);
    if (oi == UINT32_MAX)
        return;
    op *o = &w->ops[oi];
    o->prov = prov;
    o->n_tokens = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        uint32_t len = (uint32_t)tokens[i].len;
        if (dvm_buf_append(&o->data, &len, 4) || dvm_buf_append(&o->data, tokens[i].ptr, len))
            w->fatal = DVM_ERR_NOMEM;
    }
    push(w, w->now_us + mint_latency_us(w), EV_OP, oi, 0);
}

static void provider_done(world *w, uint32_t prov, uint64_t ajob, job *j, uint32_t idx, dvm_provider_end end)
{
    provider_node *pv = &w->pv[prov];
    const dvm_provider *ps = dvm_agent_job(pv->ag, ajob);
    dvm_provider_stats st;
    memset(&st, 0, sizeof st);
    if (ps)
        dvm_provider_get_stats(ps, &st);
    pv->chunks += st.chunks_sent;
    pv->earned += st.earned_sats;
    w->sum->sats_earned += st.earned_sats;
    /* credit rule: an honest provider never sends a chunk it was not paid
     * for (the protocol gives no credit before payment) */
    if (pv->behaviour == PB_HONEST && st.chunks_sent * pv->sats_per_chunk > st.earned_sats) {
        w->violations_credit++;
        violation(w, "honest_provider_credit", "job %u: %llu chunks at %llu sats but %llu sats earned", idx,
                  (unsigned long long)st.chunks_sent, (unsigned long long)pv->sats_per_chunk,
                  (unsigned long long)st.earned_sats);
    }
    sim_trace_begin(&w->tr, w->now_us, "provider_done");
    sim_trace_u64(&w->tr, "job", idx);
    const char *en = dvm_provider_end_name(end);
    sim_trace_str(&w->tr, "end", en, strlen(en));
    sim_trace_u64(&w->tr, "chunks", st.chunks_sent);
    sim_trace_u64(&w->tr, "earned", st.earned_sats);
    sim_trace_end(&w->tr);
    if (j) {
        j->p_done = 1;
        j->running = 0;
        job_maybe_release(w, idx);
    }
}

/* Execute every queued action of provider `prov`'s agent. */
static void drain_agent(world *w, uint32_t prov)
{
    provider_node *pv = &w->pv[prov];
    dvm_agent_action aa;
    while (dvm_agent_next_action(pv->ag, &aa)) {
        const dvm_provider_action *a = &aa.act;
        uint32_t idx = (uint32_t)aa.conn;
        job *j = job_get(w, idx, (uint32_t)(aa.conn >> 32));
        if (aa.job == 0) {
            /* the agent's own reply (no capacity, unknown job, ...) */
            if (j && a->type == DVM_PACT_SEND) {
                send_msg(w, idx, DIR_P2C, &a->msg);
                if (!j->ajob) {
                    j->p_done = 1;
                    job_maybe_release(w, idx);
                }
            }
            continue;
        }
        if (a->type == DVM_PACT_CLAIM) {
            claim_tokens(w, prov, a->tokens, a->n_tokens);
            continue;
        }
        if (a->type == DVM_PACT_SET_TIMER) {
            if (!pv->timer_queued_us || a->deadline_ms * 1000 < pv->timer_queued_us) {
                pv->timer_queued_us = a->deadline_ms * 1000;
                push(w, pv->timer_queued_us, EV_PTIMER, prov, 0);
            }
            continue;
        }
        if (a->type == DVM_PACT_DONE) {
            provider_done(w, prov, aa.job, (j && j->ajob == aa.job) ? j : NULL, idx, a->end);
            continue;
        }
        if (!j)
            continue; /* the connection is gone */
        if (!j->ajob) {
            /* first action of a new job: the request was taken */
            j->ajob = aa.job;
            pv->jobs++;
            j->chunks_total = sim_rng_range(&w->rng, w->sc->providers.chunks_min, w->sc->providers.chunks_max);
        }
        switch (a->type) {
        case DVM_PACT_SEND:
            if (j->muted)
                break;
            send_msg(w, idx, DIR_P2C, &a->msg);
            if (a->msg.type == DVM_MSG_PAYMENT_ACK && pv->behaviour == PB_TAKE_AND_STOP) {
                /* takes the payment, acknowledges it, and never sends again */
                j->muted = 1;
                j->stalled = 1;
            }
            if (a->msg.type == DVM_MSG_CHUNK && pv->behaviour == PB_EARLY_ASK && !j->early_asked) {
                /* asks for the next payment long before the credit is used */
                dvm_msg m;
                memset(&m, 0, sizeof m);
                m.type = DVM_MSG_PAY_REQUIRED;
                m.id = a->msg.id;
                dvm_provider_stats st;
                dvm_provider_get_stats(dvm_agent_job(pv->ag, aa.job), &st);
                m.earned = st.earned_sats;
                m.next = pv->sats_per_chunk * w->sc->providers.chunks_per_payment;
                j->early_asked = 1;
                send_msg(w, idx, DIR_P2C, &m);
            }
            break;
        case DVM_PACT_VERIFY_TOKEN: {
            uint32_t oi = op_alloc(w, OP_VERIFY);
            if (oi == UINT32_MAX)
                return;
            op *o = &w->ops[oi];
            o->job = idx;
            o->job_gen = j->gen;
            o->prov = prov;
            o->req = a->verify_id;
            o->amount = aa.job;
            if (dvm_buf_append(&o->data, a->token.ptr, a->token.len))
                w->fatal = DVM_ERR_NOMEM;
            push(w, w->now_us, EV_OP, oi, 0); /* offline check: no latency */
            break;
        }
        case DVM_PACT_START_GENERATION:
            j->running = 1;
            j->paused = 0;
            proc_schedule(w, idx);
            break;
        case DVM_PACT_PAUSE_GENERATION: j->paused = 1; break;
        case DVM_PACT_RESUME_GENERATION:
            j->paused = 0;
            proc_schedule(w, idx);
            break;
        case DVM_PACT_CANCEL_GENERATION:
            j->running = 0;
            j->proc_gen++;
            j->scheduled = 0;
            break;
        default: break;
        }
    }
}

static void provider_handle(world *w, uint32_t idx, const dvm_msg *m)
{
    job *j = &w->jobs[idx];
    if (j->p_done)
        return;
    uint32_t prov = j->prov;
    dvm_agent_handle_msg(w->pv[prov].ag, conn_id(j, idx), m, NOW_MS(w));
    drain_agent(w, prov);
}

static void on_chunk_event(world *w, uint32_t idx)
{
    job *j = &w->jobs[idx];
    j->scheduled = 0;
    if (!j->running || j->paused || j->stalled || j->p_done)
        return;
    uint32_t prov = j->prov;
    /* synthetic processor output: printable, deterministic */
    uint64_t n = w->sc->providers.chunk_bytes;
    dvm_buf_reset(&w->chunkbuf);
    char head[64];
    size_t idl = strlen(j->id), hl = 0;
    head[hl++] = '[';
    memcpy(head + hl, j->id, idl);
    hl += idl;
    head[hl++] = '#';
    hl += fmt_u64(head + hl, j->chunks_made + 1);
    head[hl++] = ']';
    head[hl++] = ' ';
    for (uint64_t i = 0; i < n; i++) {
        uint8_t c = i < hl ? (uint8_t)head[i] : (uint8_t)('a' + (i + j->chunks_made) % 26);
        if (dvm_buf_putc(&w->chunkbuf, c)) {
            w->fatal = DVM_ERR_NOMEM;
            return;
        }
    }
    dvm_err e = dvm_agent_on_chunk(w->pv[prov].ag, j->ajob, (const char *)w->chunkbuf.data, w->chunkbuf.len,
                                   NOW_MS(w));
    if (e == DVM_ERR_LIMIT) {
        j->paused = 1; /* queue full: wait for RESUME */
        drain_agent(w, prov);
        return;
    }
    if (e == DVM_OK)
        j->chunks_made++;
    drain_agent(w, prov);
    j = &w->jobs[idx];
    if (!j->p_done && j->running && j->chunks_made >= j->chunks_total) {
        dvm_agent_on_generation_done(w->pv[prov].ag, j->ajob, NOW_MS(w));
        drain_agent(w, prov);
        return;
    }
    if (w->pv[prov].behaviour == PB_STALL && j->chunks_made * 2 >= j->chunks_total)
        j->stalled = 1; /* stops producing, keeps the connection */
    proc_schedule(w, idx);
}

/* ---- customer side ------------------------------------------------------- */

static void cjob_finish(world *w, uint32_t cji, uint8_t status)
{
    cjob *cj = &w->cjobs[cji];
    if (cj->done)
        return;
    cj->done = 1;
    cj->status = status;
    cj->end_us = w->now_us;
    bool ok = status == DVM_CUSTOMER_OK || status == DVM_CUSTOMER_BUDGET_EXHAUSTED;
    const char *name = status == SIM_ST_NO_PROVIDER   ? "no_provider"
                       : status == SIM_ST_MINT_FAILED ? "mint_failed"
                       : status == SIM_ST_UNFINISHED  ? "unfinished"
                       : status == SIM_ST_NO_CAPACITY ? "no_capacity"
                                                      : dvm_customer_status_name(status);
    if (ok) {
        w->sum->jobs_completed++;
        w->lat_job[w->n_job++] = cj->end_us - cj->arrival_us;
    } else {
        w->sum->jobs_failed++;
        size_t i;
        for (i = 0; i < w->sum->n_failed; i++)
            if (!strcmp(w->sum->failed[i].name, name))
                break;
        if (i == w->sum->n_failed && i < SIM_MAX_REASONS) {
            snprintf(w->sum->failed[i].name, sizeof w->sum->failed[i].name, "%s", name);
            w->sum->n_failed++;
        }
        if (i < SIM_MAX_REASONS)
            w->sum->failed[i].count++;
    }
    if (w->sinks && w->sinks->csv) {
        char line[256];
        int n = snprintf(line, sizeof line, "%u,%u,%s,%u,%u,%llu,%llu,%llu,%llu,%llu,%llu,%s\n", cji,
                         cj->customer, cb_names[w->cu[cj->customer].behaviour], cj->last_provider,
                         cj->attempts, (unsigned long long)cj->budget, (unsigned long long)cj->arrival_us,
                         (unsigned long long)(cj->first_chunk_us ? cj->first_chunk_us - cj->arrival_us : 0),
                         (unsigned long long)(cj->end_us - cj->arrival_us), (unsigned long long)cj->chunks,
                         (unsigned long long)cj->sats_paid,
                         name);
        w->sinks->csv(w->sinks->ctx, "jobs", line, (size_t)n);
    }
}

static void start_attempt(world *w, uint32_t cji);

static void customer_done(world *w, uint32_t idx, dvm_customer_status st)
{
    job *j = &w->jobs[idx];
    cjob *cj = &w->cjobs[j->cj];
    customer_node *cu = &w->cu[j->cust];
    dvm_customer_stats cs;
    dvm_customer_get_stats(j->cs, &cs);
    j->c_done = 1;
    cj->chunks += cs.chunks;
    cj->sats_paid += cs.sats_paid;
    w->sum->sats_paid += cs.sats_paid;
    if (cu->behaviour == CB_HONEST) {
        if (cs.sats_paid > cs.budget || cs.sats_committed > cs.budget) {
            w->violations_budget++;
            violation(w, "honest_customer_budget", "job %u: paid %llu of budget %llu", idx,
                      (unsigned long long)cs.sats_paid, (unsigned long long)cs.budget);
        }
        /* sats paid for chunks that never came: a loss when the job failed,
         * the protocol's prepaid granularity when it completed */
        uint64_t got = cs.chunks * cs.sats_per_chunk;
        bool ok = st == DVM_CUSTOMER_OK || st == DVM_CUSTOMER_BUDGET_EXHAUSTED;
        if (cs.sats_paid > got) {
            if (ok)
                w->sum->customer_unused_credit_sats += cs.sats_paid - got;
            else
                w->sum->customer_losses_sats += cs.sats_paid - got;
        }
    }
    sim_trace_begin(&w->tr, w->now_us, "customer_done");
    sim_trace_u64(&w->tr, "job", idx);
    const char *sn = dvm_customer_status_name(st);
    sim_trace_str(&w->tr, "status", sn, strlen(sn));
    sim_trace_u64(&w->tr, "chunks", cs.chunks);
    sim_trace_u64(&w->tr, "paid", cs.sats_paid);
    sim_trace_end(&w->tr);
    net_close(w, idx, DIR_C2P);
    job_maybe_release(w, idx);
    /* a refusal before any payment: try another provider */
    bool refused = st == DVM_CUSTOMER_PROVIDER_ERROR && cs.sats_paid == 0 && cs.chunks == 0 &&
                   cu->behaviour == CB_HONEST;
    if (refused && cj->attempts <= w->sc->customers.retries && w->now_us < w->limit_us) {
        start_attempt(w, j->cj);
        return;
    }
    /* every provider tried was full: a load outcome, told apart from other
     * provider errors */
    if (st == DVM_CUSTOMER_PROVIDER_ERROR && !strncmp(dvm_customer_reason(j->cs), "No capacity", 11))
        cjob_finish(w, j->cj, SIM_ST_NO_CAPACITY);
    else
        cjob_finish(w, j->cj, (uint8_t)st);
}

static void drain_customer(world *w, uint32_t idx)
{
    job *j = &w->jobs[idx];
    dvm_customer_action a;
    while (j->cs && !j->c_done && dvm_customer_next_action(j->cs, &a)) {
        switch (a.type) {
        case DVM_CACT_SEND:
            if (a.msg.type == DVM_MSG_PAYMENT)
                j->tokens_paid++;
            send_msg(w, idx, DIR_C2P, &a.msg);
            break;
        case DVM_CACT_NEED_TOKEN: {
            if (w->cu[j->cust].behaviour == CB_NEVER_PAY)
                break; /* never answers: the provider times out */
            uint32_t oi = op_alloc(w, OP_TOKEN);
            if (oi == UINT32_MAX)
                return;
            op *o = &w->ops[oi];
            o->job = idx;
            o->job_gen = j->gen;
            o->req = a.token_req;
            o->amount = a.amount;
            push(w, w->now_us, EV_OP, oi, 0);
            break;
        }
        case DVM_CACT_RETURN_TOKEN:
            sim_pay_return(w->pay, j->cust, a.token);
            break;
        case DVM_CACT_SET_TIMER:
            j->ctimer_deadline_ms = a.deadline_ms;
            if (!j->ctimer_queued_us || a.deadline_ms * 1000 < j->ctimer_queued_us) {
                j->ctimer_queued_us = a.deadline_ms * 1000;
                push(w, j->ctimer_queued_us, EV_CTIMER, idx, (uint64_t)j->gen << 32);
            }
            break;
        case DVM_CACT_CANCEL_TIMER: j->ctimer_deadline_ms = 0; break;
        case DVM_CACT_DONE: customer_done(w, idx, a.status); return;
        }
    }
}

static void customer_handle(world *w, uint32_t idx, const dvm_msg *m)
{
    job *j = &w->jobs[idx];
    if (j->c_done || !j->cs)
        return;
    if (m->type == DVM_MSG_CHUNK) {
        cjob *cj = &w->cjobs[j->cj];
        j->chunks_rcvd++;
        w->sum->chunks++;
        if (!cj->first_chunk_us) {
            cj->first_chunk_us = w->now_us;
            w->lat_first[w->n_first++] = w->now_us - cj->arrival_us;
        }
    } else if (m->type == DVM_MSG_PAYMENT_ACK) {
        j->acked_sats += m->amount;
    }
    dvm_customer_handle_msg(j->cs, m, NOW_MS(w));
    drain_customer(w, idx);
}

/* ---- provider choice and arrivals ---------------------------------------- */

static uint32_t choose_provider(world *w, uint32_t avoid)
{
    const sim_scenario *sc = w->sc;
    uint64_t P = sc->providers.count;
    if (sc->customers.choice == SIM_CHOICE_RANDOM || P == 1) {
        uint32_t p = (uint32_t)sim_rng_below(&w->rng, P);
        if (p == avoid && P > 1)
            p = (uint32_t)((p + 1 + sim_rng_below(&w->rng, P - 1)) % P);
        return p;
    }
    /* look at choice_sample providers on the topic (power of d choices) */
    bool all = sc->customers.choice_sample >= P; /* sees every provider */
    uint64_t k = all ? P : sc->customers.choice_sample;
    uint64_t start = sim_rng_below(&w->rng, P); /* ties go to a random one */
    uint32_t best = UINT32_MAX;
    for (uint64_t i = 0; i < k; i++) {
        uint32_t p = all ? (uint32_t)((start + i) % P) : (uint32_t)sim_rng_below(&w->rng, P);
        if (p == avoid && P > 1)
            continue;
        if (best == UINT32_MAX)
            best = p;
        else if (sc->customers.choice == SIM_CHOICE_CHEAPEST) {
            if (w->pv[p].sats_per_chunk < w->pv[best].sats_per_chunk)
                best = p;
        } else if (dvm_agent_active(w->pv[p].ag) < dvm_agent_active(w->pv[best].ag)) {
            best = p;
        }
    }
    return best == UINT32_MAX ? (uint32_t)sim_rng_below(&w->rng, P) : best;
}

static void start_attempt(world *w, uint32_t cji)
{
    cjob *cj = &w->cjobs[cji];
    uint32_t idx = job_alloc(w);
    if (idx == UINT32_MAX)
        return;
    job *j = &w->jobs[idx];
    cj->attempts++;
    w->sum->attempts++;
    j->cj = cji;
    j->cust = cj->customer;
    j->prov = choose_provider(w, cj->attempts > 1 ? cj->last_provider : UINT32_MAX);
    cj->last_provider = j->prov;
    j->serial = w->serial++;
    j->base_lat_us = link_latency_us(w, j->cust, j->prov);
    j->d[0].isn = (uint32_t)sim_rng_u64(&w->rng);
    j->d[1].isn = (uint32_t)sim_rng_u64(&w->rng);
    snprintf(j->id, sizeof j->id, "j%u-%u", cji, cj->attempts);
    /* TCP handshake: SYN, SYN-ACK, ACK; connect_rtts round trips */
    uint64_t rtt = 2 * j->base_lat_us;
    uint64_t t_est = w->now_us + w->sc->network.connect_rtts * rtt;
    uint64_t blocked = node_blocked_until(w, j);
    if (blocked && t_est < blocked + rtt)
        t_est = blocked + rtt;
    pcap_emit(w, j, DIR_C2P, SIM_TCP_SYN, j->d[0].isn, 0, NULL, 0, w->now_us);
    pcap_emit(w, j, DIR_P2C, SIM_TCP_SYN | SIM_TCP_ACK, j->d[1].isn, j->d[0].isn + 1, NULL, 0,
              w->now_us + j->base_lat_us);
    pcap_emit(w, j, DIR_C2P, SIM_TCP_ACK, j->d[0].isn + 1, j->d[1].isn + 1, NULL, 0, w->now_us + rtt);
    sim_trace_begin(&w->tr, w->now_us, "connect");
    sim_trace_u64(&w->tr, "job", idx);
    sim_trace_u64(&w->tr, "cjob", cji);
    trace_peer(w, "customer", 'c', j->cust);
    trace_peer(w, "provider", 'p', j->prov);
    sim_trace_u64(&w->tr, "latency_us", j->base_lat_us);
    sim_trace_end(&w->tr);
    push(w, t_est, EV_CONNECTED, idx, (uint64_t)j->gen << 32);
}

static void on_connected(world *w, uint32_t idx)
{
    job *j = &w->jobs[idx];
    cjob *cj = &w->cjobs[j->cj];
    j->connected = 1;
    dvm_customer_config cfg;
    dvm_customer_config_default(&cfg);
    cfg.max_sats_per_chunk = w->sc->customers.max_sats_per_chunk;
    cfg.prepay_window = w->sc->customers.prepay_window;
    cfg.idle_timeout_ms = w->sc->customers.timeout_ms;
    j->cs = dvm_customer_new(&cfg, NULL);
    if (!j->cs) {
        w->fatal = DVM_ERR_NOMEM;
        return;
    }
    char input[64];
    int n = snprintf(input, sizeof input, "simulated prompt %u", j->cj);
    dvm_customer_start(j->cs, dvm_str_c(j->id), w->sc->kind, (dvm_str){input, (size_t)n}, cj->budget,
                       NOW_MS(w));
    drain_customer(w, idx);
}

static void on_arrival(world *w)
{
    const sim_scenario *sc = w->sc;
    if (w->arrivals >= sc->jobs || w->now_us >= w->limit_us) {
        w->arrivals_done = true;
        return;
    }
    w->arrivals++;
    uint32_t cji = (uint32_t)w->n_cjobs++;
    cjob *cj = &w->cjobs[cji];
    memset(cj, 0, sizeof *cj);
    cj->customer = (uint32_t)sim_rng_below(&w->rng, sc->customers.count);
    cj->budget = sim_rng_range(&w->rng, sc->customers.budget_min, sc->customers.budget_max);
    cj->arrival_us = w->now_us;
    w->sum->jobs_started++;
    sim_trace_begin(&w->tr, w->now_us, "arrive");
    sim_trace_u64(&w->tr, "cjob", cji);
    trace_peer(w, "customer", 'c', cj->customer);
    sim_trace_u64(&w->tr, "budget", cj->budget);
    sim_trace_end(&w->tr);
    /* mintTokens(budget) first (seed "Customer Side" 1), then connect */
    uint32_t oi = op_alloc(w, OP_MINT);
    if (oi != UINT32_MAX) {
        w->ops[oi].cj = cji;
        w->ops[oi].amount = cj->budget;
        push(w, w->now_us + mint_latency_us(w), EV_OP, oi, 0);
    }
    if (w->arrivals < sc->jobs)
        push(w, w->now_us + sim_rng_exp(&w->rng, 1e6 / sc->customers.arrival_rate_hz), EV_ARRIVAL, 0, 0);
    else
        w->arrivals_done = true;
}

/* ---- ops ------------------------------------------------------------------ */

static sim_token_kind token_kind(uint8_t behaviour)
{
    return behaviour == CB_FORGE ? SIM_TOKEN_FORGED : behaviour == CB_UNTRUSTED ? SIM_TOKEN_UNTRUSTED
                                                                              : SIM_TOKEN_HONEST;
}

/* The double spender answers with a token it already gave another
 * provider when it has one of the right amount. */
static bool reuse_token(world *w, job *j, uint64_t amount, dvm_buf *out)
{
    customer_node *cu = &w->cu[j->cust];
    size_t off = 0;
    while (off + 16 <= cu->spent_tokens.len) {
        uint32_t len, prov;
        uint64_t amt;
        memcpy(&len, cu->spent_tokens.data + off, 4);
        memcpy(&prov, cu->spent_tokens.data + off + 4, 4);
        memcpy(&amt, cu->spent_tokens.data + off + 8, 8);
        if (prov != j->prov && amt == amount) {
            dvm_buf_reset(out);
            if (dvm_buf_append(out, cu->spent_tokens.data + off + 16, len))
                return false;
            /* used twice now: drop it from the list */
            size_t rec = 16 + (size_t)len;
            memmove(cu->spent_tokens.data + off, cu->spent_tokens.data + off + rec,
                    cu->spent_tokens.len - off - rec);
            cu->spent_tokens.len -= rec;
            return true;
        }
        off += 16 + (size_t)len;
    }
    return false;
}

/* Returns true when the op was queued again (it must not be freed). */
static bool op_token(world *w, op *o)
{
    job *j = job_get(w, o->job, o->job_gen);
    if (!j || j->c_done || !j->cs)
        return false;
    customer_node *cu = &w->cu[j->cust];
    uint64_t until;
    if (!o->rearmed) {
        /* first pass: produce the token (maybe after a swap at the mint) */
        bool swapped = false;
        dvm_err e = DVM_OK;
        if (cu->behaviour == CB_REPLAY && j->first_token.len) {
            dvm_buf_reset(&o->data);
            e = dvm_buf_append(&o->data, j->first_token.data, j->first_token.len);
        } else if (cu->behaviour == CB_DOUBLE_SPEND && reuse_token(w, j, o->amount, &o->data)) {
            o->reused = 1; /* o->data holds the reused token */
        } else {
            if (mint_down(w, w->now_us, &until))
                e = DVM_ERR_AGAIN;
            else {
                dvm_rng r = sim_rng_as_dvm(&cu->rng);
                e = sim_pay_token(w->pay, j->cust, o->amount, token_kind(cu->behaviour), &o->data, &swapped, &r);
            }
        }
        if (e) {
            dvm_customer_on_token_failed(j->cs, o->req, e == DVM_ERR_AGAIN ? "mint unavailable" : dvm_strerror(e),
                                         NOW_MS(w));
            drain_customer(w, o->job);
            return false;
        }
        if (swapped) {
            /* come back when the swap's round trip is over */
            o->rearmed = 1;
            push(w, w->now_us + mint_latency_us(w), EV_OP, (uint32_t)(o - w->ops), 0);
            return true;
        }
    }
    dvm_str tok = {(const char *)o->data.data, o->data.len};
    if (cu->behaviour == CB_REPLAY && !j->first_token.len)
        dvm_buf_append(&j->first_token, tok.ptr, tok.len);
    if (cu->behaviour == CB_DOUBLE_SPEND && !o->reused) {
        uint32_t len = (uint32_t)tok.len, prov = j->prov;
        uint64_t amt = o->amount;
        if (dvm_buf_append(&cu->spent_tokens, &len, 4) || dvm_buf_append(&cu->spent_tokens, &prov, 4) ||
            dvm_buf_append(&cu->spent_tokens, &amt, 8) || dvm_buf_append(&cu->spent_tokens, tok.ptr, tok.len))
            w->fatal = DVM_ERR_NOMEM;
    }
    dvm_customer_on_token(j->cs, o->req, tok, NOW_MS(w));
    drain_customer(w, o->job);
    return false;
}

static void op_verify(world *w, op *o)
{
    job *j = job_get(w, o->job, o->job_gen);
    if (!j || !j->ajob)
        return;
    dvm_str tok = {(const char *)o->data.data, o->data.len};
    dvm_verify_result r;
    dvm_err e = sim_pay_verify(w->pay, o->prov, tok, &r);
    if (e) {
        r.outcome = DVM_VERIFY_REJECTED;
        r.amount = 0;
        r.reason = dvm_str_c(dvm_strerror(e));
    }
    if (r.outcome == DVM_VERIFY_OK || r.outcome == DVM_VERIFY_OK_CLAIMED) {
        tok_entry *te = tok_find(w, tok_key(tok));
        if (te)
            te->accepted++;
    } else if (r.outcome == DVM_VERIFY_REJECTED) {
        w->pv[o->prov].rejected++;
        w->sum->payments_rejected++;
    }
    sim_trace_begin(&w->tr, w->now_us, "verify");
    sim_trace_u64(&w->tr, "job", o->job);
    sim_trace_u64(&w->tr, "outcome", (uint64_t)r.outcome);
    sim_trace_u64(&w->tr, "amount", r.amount);
    if (r.outcome == DVM_VERIFY_REJECTED)
        sim_trace_str(&w->tr, "reason", r.reason.ptr, r.reason.len);
    sim_trace_end(&w->tr);
    uint32_t prov = o->prov;
    dvm_agent_on_verify(w->pv[prov].ag, o->amount, o->req, &r, NOW_MS(w));
    drain_agent(w, prov);
}

static bool op_claim(world *w, op *o)
{
    uint64_t until;
    if (mint_down(w, w->now_us, &until)) {
        /* retry when the mint is back (the live agent retries from its store) */
        push(w, until + mint_latency_us(w), EV_OP, (uint32_t)(o - w->ops), 0);
        return true;
    }
    size_t n = o->n_tokens;
    dvm_str *toks = calloc(n ? n : 1, sizeof *toks);
    bool *spent = calloc(n ? n : 1, sizeof *spent);
    if (!toks || !spent) {
        free(toks);
        free(spent);
        w->fatal = DVM_ERR_NOMEM;
        return false;
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t len;
        memcpy(&len, o->data.data + off, 4);
        toks[i].ptr = (const char *)o->data.data + off + 4;
        toks[i].len = len;
        off += 4 + (size_t)len;
    }
    provider_node *pv = &w->pv[o->prov];
    uint64_t claimed = 0, spent_sats = 0;
    dvm_rng r = sim_rng_as_dvm(&pv->rng);
    dvm_err e = sim_pay_claim(w->pay, o->prov, toks, n, spent, &claimed, &spent_sats, &r);
    if (e) {
        w->fatal = e;
    } else {
        uint64_t refused = 0;
        for (size_t i = 0; i < n; i++) {
            tok_entry *te = tok_find(w, tok_key(toks[i]));
            if (!te)
                break;
            if (spent[i]) {
                te->claimed_refused++;
                refused++;
            } else {
                te->claimed_ok++;
            }
        }
        pv->claimed += claimed;
        pv->spent_refused += refused;
        pv->spent_sats += spent_sats;
        w->sum->sats_claimed += claimed;
        w->sum->double_spends_detected += refused;
        w->sum->provider_losses_sats += spent_sats;
        sim_trace_begin(&w->tr, w->now_us, "claim");
        trace_peer(w, "provider", 'p', o->prov);
        sim_trace_u64(&w->tr, "tokens", n);
        sim_trace_u64(&w->tr, "claimed", claimed);
        sim_trace_u64(&w->tr, "refused", refused);
        sim_trace_end(&w->tr);
    }
    free(toks);
    free(spent);
    return false;
}

static void op_mint(world *w, op *o)
{
    cjob *cj = &w->cjobs[o->cj];
    customer_node *cu = &w->cu[cj->customer];
    dvm_err e;
    if (mint_down(w, w->now_us, NULL)) {
        e = DVM_ERR_AGAIN;
    } else {
        dvm_rng r = sim_rng_as_dvm(&cu->rng);
        e = sim_pay_mint(w->pay, cj->customer, o->amount, cu->behaviour == CB_UNTRUSTED, &r);
    }
    sim_trace_begin(&w->tr, w->now_us, "mint");
    sim_trace_u64(&w->tr, "cjob", o->cj);
    sim_trace_u64(&w->tr, "amount", o->amount);
    sim_trace_u64(&w->tr, "ok", e == DVM_OK);
    sim_trace_end(&w->tr);
    if (e) {
        cjob_finish(w, o->cj, SIM_ST_MINT_FAILED);
        return;
    }
    if (cu->behaviour != CB_UNTRUSTED)
        w->sum->sats_minted += o->amount;
    start_attempt(w, o->cj);
    if (cu->behaviour == CB_DOUBLE_SPEND) {
        /* pays a second provider with the very same tokens, in parallel */
        start_attempt(w, o->cj);
    }
}

static void on_op(world *w, uint32_t oi)
{
    op *o = &w->ops[oi];
    bool again = false;
    switch (o->type) {
    case OP_MINT: op_mint(w, o); break;
    case OP_TOKEN: again = op_token(w, o); break;
    case OP_VERIFY: op_verify(w, o); break;
    case OP_CLAIM: again = op_claim(w, o); break;
    }
    if (!again)
        op_free(w, oi);
}

/* ---- delivery, close, timers ------------------------------------------- */

static void on_deliver(world *w, uint32_t idx, uint64_t b)
{
    job *j = job_get(w, idx, (uint32_t)(b >> 32));
    if (!j)
        return;
    int dir = (int)((b >> 31) & 1);
    size_t len = (size_t)(b & 0x7fffffffu);
    side *s = &j->d[dir];
    if (s->rd + len > s->q.len)
        return; /* dropped by a disconnect */
    const uint8_t *data = s->q.data + s->rd;
    s->rd += len;
    s->dlv += len;
    sim_trace_begin(&w->tr, w->now_us, "recv");
    sim_trace_u64(&w->tr, "job", idx);
    sim_trace_u64(&w->tr, "dir", (uint64_t)dir);
    sim_trace_u64(&w->tr, "bytes", len);
    sim_trace_end(&w->tr);
    dvm_framer_push(&s->fr, data, len);
    for (;;) {
        j = &w->jobs[idx]; /* the job array may move while handling */
        const uint8_t *line;
        size_t n;
        dvm_err e = dvm_framer_next(&j->d[dir].fr, &line, &n);
        if (e == DVM_ERR_AGAIN)
            break;
        if (e)
            continue;
        dvm_msg m;
        char reason[DVM_REASON_MAX];
        if (dvm_msg_decode(&w->dec, line, n, &m, reason, sizeof reason) != DVM_OK) {
            sim_trace_begin(&w->tr, w->now_us, "bad_line");
            sim_trace_u64(&w->tr, "job", idx);
            sim_trace_str(&w->tr, "reason", reason, strlen(reason));
            sim_trace_end(&w->tr);
            if (dir == DIR_C2P && !j->p_done) {
                uint32_t prov = j->prov;
                dvm_agent_handle_decode_error(w->pv[prov].ag, conn_id(j, idx), (dvm_str){NULL, 0},
                                              dvm_str_c(reason), NOW_MS(w));
                drain_agent(w, prov);
            }
            continue;
        }
        if (dir == DIR_C2P)
            provider_handle(w, idx, &m);
        else
            customer_handle(w, idx, &m);
    }
    j = &w->jobs[idx];
    side *sd = &j->d[dir];
    if (j->in_use && sd->rd == sd->q.len) {
        dvm_buf_reset(&sd->q);
        sd->rd = 0;
    } else if (j->in_use && sd->rd >= 4096 && sd->rd * 2 >= sd->q.len) {
        /* a stream that never drains (bytes always in flight): keep the
         * buffer at about twice what is in flight */
        dvm_buf_consume(&sd->q, sd->rd);
        sd->rd = 0;
    }
    job_maybe_release(w, idx);
}

/* The connection is gone for both sides (FIN arrived, or a disconnect). */
static void conn_gone(world *w, uint32_t idx)
{
    job *j = &w->jobs[idx];
    j->closed = 1;
    if (!j->p_done) {
        uint32_t prov = j->prov;
        dvm_agent_connection_closed(w->pv[prov].ag, conn_id(j, idx), NOW_MS(w));
        drain_agent(w, prov);
    }
    j = &w->jobs[idx];
    if (!j->ajob)
        j->p_done = 1;
    if (j->cs && !j->c_done) {
        dvm_customer_close(j->cs, NOW_MS(w));
        drain_customer(w, idx);
    } else if (!j->cs && !j->c_done) {
        j->c_done = 1;
        cjob_finish(w, j->cj, DVM_CUSTOMER_CLOSED);
    }
    job_maybe_release(w, idx);
}

static void on_close(world *w, uint32_t idx, uint64_t b)
{
    job *j = job_get(w, idx, (uint32_t)(b >> 32));
    if (!j)
        return;
    int dir = (int)(b & 1);
    pcap_emit(w, j, 1 - dir, SIM_TCP_ACK | SIM_TCP_FIN, j->d[1 - dir].isn + 1 + (uint32_t)j->d[1 - dir].sent,
              j->d[dir].isn + 2 + (uint32_t)j->d[dir].dlv, NULL, 0, w->now_us);
    conn_gone(w, idx);
}

static void on_ptimer(world *w, uint32_t prov)
{
    provider_node *pv = &w->pv[prov];
    if (w->now_us != pv->timer_queued_us)
        return; /* superseded by an earlier one */
    pv->timer_queued_us = 0;
    uint64_t d = dvm_agent_deadline(pv->ag);
    if (d != UINT64_MAX && d * 1000 <= w->now_us) {
        sim_trace_begin(&w->tr, w->now_us, "timer");
        trace_peer(w, "provider", 'p', prov);
        sim_trace_end(&w->tr);
        dvm_agent_on_timer(pv->ag, NOW_MS(w));
        drain_agent(w, prov);
        d = dvm_agent_deadline(pv->ag);
    }
    /* re-arm for the next deadline of any job of this agent */
    if (d != UINT64_MAX && (!pv->timer_queued_us || d * 1000 < pv->timer_queued_us)) {
        pv->timer_queued_us = d * 1000 > w->now_us ? d * 1000 : w->now_us + 1000;
        push(w, pv->timer_queued_us, EV_PTIMER, prov, 0);
    }
}

static void on_ctimer(world *w, uint32_t idx, uint64_t b)
{
    job *j = job_get(w, idx, (uint32_t)(b >> 32));
    if (!j || w->now_us != j->ctimer_queued_us)
        return;
    j->ctimer_queued_us = 0;
    if (!j->cs || j->c_done || !j->ctimer_deadline_ms)
        return;
    if (j->ctimer_deadline_ms * 1000 > w->now_us) {
        /* the deadline moved later since this was queued */
        j->ctimer_queued_us = j->ctimer_deadline_ms * 1000;
        push(w, j->ctimer_queued_us, EV_CTIMER, idx, (uint64_t)j->gen << 32);
        return;
    }
    sim_trace_begin(&w->tr, w->now_us, "timer");
    sim_trace_u64(&w->tr, "job", idx);
    sim_trace_str(&w->tr, "side", "customer", 8);
    sim_trace_end(&w->tr);
    dvm_customer_on_timer(j->cs, NOW_MS(w));
    drain_customer(w, idx);
    job_maybe_release(w, idx);
}

static void on_connected_ev(world *w, uint32_t idx, uint64_t b)
{
    job *j = job_get(w, idx, (uint32_t)(b >> 32));
    if (!j || j->closed)
        return;
    on_connected(w, idx);
    job_maybe_release(w, idx);
}

/* ---- faults ---------------------------------------------------------------- */

static void on_partition(world *w, uint32_t wi, bool start)
{
    const sim_window *pw = &w->sc->network.partitions[wi];
    sim_trace_begin(&w->tr, w->now_us, start ? "partition_start" : "partition_end");
    sim_trace_u64(&w->tr, "window", wi);
    if (start) {
        uint64_t until = w->now_us + (uint64_t)llround(pw->duration_s * 1e6);
        uint64_t cut = 0;
        for (size_t n = 0; n < w->n_nodes; n++)
            if (sim_rng_chance(&w->rng, pw->fraction)) {
                if (w->part_until[n] < until)
                    w->part_until[n] = until;
                cut++;
            }
        sim_trace_u64(&w->tr, "nodes", cut);
    }
    sim_trace_end(&w->tr);
}

static void on_disconnect(world *w, uint32_t wi)
{
    const sim_window *dw = &w->sc->network.disconnects[wi];
    uint64_t cut = 0;
    for (uint32_t idx = 0; idx < w->n_jobs; idx++) {
        job *j = &w->jobs[idx];
        if (!j->in_use || j->closed || !sim_rng_chance(&w->rng, dw->fraction))
            continue;
        /* in-flight bytes are lost; both ends see the connection drop */
        j->d[0].rd = j->d[0].q.len;
        j->d[1].rd = j->d[1].q.len;
        cut++;
        pcap_emit(w, j, DIR_P2C, SIM_TCP_RST, j->d[1].isn + 1 + (uint32_t)j->d[1].sent, 0, NULL, 0, w->now_us);
        conn_gone(w, idx);
    }
    sim_trace_begin(&w->tr, w->now_us, "disconnect");
    sim_trace_u64(&w->tr, "window", wi);
    sim_trace_u64(&w->tr, "connections", cut);
    sim_trace_end(&w->tr);
}

/* ---- results ---------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void percentiles(uint64_t *v, size_t n, sim_percentiles *out)
{
    memset(out, 0, sizeof *out);
    out->n = n;
    if (!n)
        return;
    qsort(v, n, sizeof *v, cmp_u64);
    /* nearest rank */
    size_t i50 = (n * 50 + 99) / 100, i90 = (n * 90 + 99) / 100, i99 = (n * 99 + 99) / 100;
    out->p50_ms = (double)v[i50 ? i50 - 1 : 0] / 1000.0;
    out->p90_ms = (double)v[i90 ? i90 - 1 : 0] / 1000.0;
    out->p99_ms = (double)v[i99 ? i99 - 1 : 0] / 1000.0;
}

static void check_invariants(world *w, bool drained)
{
    sim_summary *s = w->sum;
    /* conservation of money */
    {
        sim_pay_audit a;
        if (sim_pay_audit_run(w->pay, &a) == DVM_OK) {
            uint64_t held = a.customer_sats + a.provider_sats + a.unclaimed_sats + a.fees_sats;
            if (a.minted_sats != held || a.minted_sats != s->sats_minted)
                violation(w, "conservation",
                          "minted %llu (driver %llu) != customers %llu + providers %llu + unclaimed %llu + fees %llu",
                          (unsigned long long)a.minted_sats, (unsigned long long)s->sats_minted,
                          (unsigned long long)a.customer_sats, (unsigned long long)a.provider_sats,
                          (unsigned long long)a.unclaimed_sats, (unsigned long long)a.fees_sats);
        } else {
            violation(w, "conservation", "audit failed");
        }
    }
    /* every double spend caught at claim: no token claimed twice, and every
     * accepted copy went to a claim (after a full drain) */
    for (size_t i = 0; i < w->tok_cap; i++) {
        tok_entry *t = &w->tok[i];
        if (!t->key)
            continue;
        if (t->claimed_ok > 1)
            violation(w, "double_spend_caught", "a token was claimed %u times", t->claimed_ok);
        if (drained && t->claimed_ok + t->claimed_refused < t->accepted)
            violation(w, "double_spend_caught", "a token accepted %u times went to claim %u times",
                      t->accepted, t->claimed_ok + t->claimed_refused);
    }
    /* no adversaries, no faults: every job completes, except those the
     * swarm's size or the customer's own offer checks explain (all
     * providers tried were full; price over MAX_SATS_PER_CHUNK; budget below
     * one payment) */
    uint64_t explained = 0;
    for (size_t i = 0; i < s->n_failed; i++)
        if (!strcmp(s->failed[i].name, "no_capacity") || !strcmp(s->failed[i].name, "price_too_high") ||
            !strcmp(s->failed[i].name, "budget_too_small"))
            explained += s->failed[i].count;
    if (!w->adversaries && !w->faults && drained && s->jobs_completed + explained != s->jobs_started)
        violation(w, "all_jobs_complete", "%llu of %llu jobs completed (%llu refused for capacity, price or budget)",
                  (unsigned long long)s->jobs_completed, (unsigned long long)s->jobs_started,
                  (unsigned long long)explained);
}

static void provider_csv(world *w)
{
    if (!w->sinks || !w->sinks->csv)
        return;
    static const char hdr[] =
        "provider,behaviour,sats_per_chunk,jobs,chunks,earned_sats,claimed_sats,refused_tokens,refused_sats,rejected_payments\n";
    w->sinks->csv(w->sinks->ctx, "providers", hdr, sizeof hdr - 1);
    for (size_t p = 0; p < w->sc->providers.count; p++) {
        provider_node *pv = &w->pv[p];
        char line[256];
        int n = snprintf(line, sizeof line, "%zu,%s,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu\n", p,
                         pb_names[pv->behaviour], (unsigned long long)pv->sats_per_chunk,
                         (unsigned long long)pv->jobs, (unsigned long long)pv->chunks,
                         (unsigned long long)pv->earned, (unsigned long long)pv->claimed,
                         (unsigned long long)pv->spent_refused, (unsigned long long)pv->spent_sats,
                         (unsigned long long)pv->rejected);
        w->sinks->csv(w->sinks->ctx, "providers", line, (size_t)n);
    }
}

/* ---- the run ---------------------------------------------------------------- */

static uint8_t pick_behaviour(sim_rng *r, const double *fr, size_t n)
{
    double u = sim_rng_unit(r), acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc += fr[i];
        if (u < acc)
            return (uint8_t)(i + 1);
    }
    return 0;
}

static void world_free(world *w)
{
    for (size_t i = 0; i < w->n_jobs; i++) {
        job *j = &w->jobs[i];
        if (j->in_use) {
            dvm_framer_free(&j->d[0].fr);
            dvm_framer_free(&j->d[1].fr);
            dvm_customer_free(j->cs);
        }
        dvm_buf_free(&j->d[0].q);
        dvm_buf_free(&j->d[1].q);
        dvm_buf_free(&j->first_token);
    }
    free(w->jobs);
    for (size_t i = 0; i < w->n_ops; i++)
        dvm_buf_free(&w->ops[i].data);
    free(w->ops);
    if (w->cu)
        for (size_t i = 0; i < w->sc->customers.count; i++)
            dvm_buf_free(&w->cu[i].spent_tokens);
    free(w->cu);
    if (w->pv)
        for (size_t i = 0; i < w->sc->providers.count; i++)
            dvm_agent_free(w->pv[i].ag);
    free(w->pv);
    free(w->rel);
    free(w->part_until);
    free(w->cjobs);
    free(w->tok);
    free(w->lat_first);
    free(w->lat_job);
    sim_pay_free(w->pay);
    sim_trace_free(&w->tr);
    sim_eventq_free(&w->q);
    dvm_msg_decoder_free(&w->dec);
    dvm_buf_free(&w->enc);
    dvm_buf_free(&w->tmp);
    dvm_buf_free(&w->chunkbuf);
}

dvm_err sim_run(const sim_scenario *sc, const sim_sinks *sinks, sim_summary *summary, char *err,
                size_t err_len)
{
    world W, *w = &W;
    memset(w, 0, sizeof *w);
    memset(summary, 0, sizeof *summary);
    w->sc = sc;
    w->sinks = sinks;
    w->sum = summary;
    summary->seed = sc->seed;
    sim_eventq_init(&w->q);
    sim_rng_seed(&w->rng, sc->seed);
    sim_trace_init(&w->tr, sinks);
    dvm_msg_decoder_init(&w->dec, 0);
    dvm_buf_init(&w->enc, 0);
    dvm_buf_init(&w->tmp, 0);
    dvm_buf_init(&w->chunkbuf, 0);
    w->free_job = w->free_op = UINT32_MAX;
    w->limit_us = (uint64_t)llround(sc->duration_s * 1e6);

    size_t P = sc->providers.count, C = sc->customers.count;
    w->n_nodes = P + C;
    w->pv = calloc(P, sizeof *w->pv);
    w->cu = calloc(C, sizeof *w->cu);
    w->part_until = calloc(w->n_nodes, sizeof *w->part_until);
    w->cjobs = calloc(sc->jobs ? sc->jobs : 1, sizeof *w->cjobs);
    w->lat_first = calloc(sc->jobs ? sc->jobs : 1, sizeof *w->lat_first);
    w->lat_job = calloc(sc->jobs ? sc->jobs : 1, sizeof *w->lat_job);
    if (!w->pv || !w->cu || !w->part_until || !w->cjobs || !w->lat_first || !w->lat_job) {
        world_free(w);
        return DVM_ERR_NOMEM;
    }
    dvm_err e = sim_pay_new(&w->pay, sc->seed, sc->mint.input_fee_ppk, C, P, sc->providers.max_unclaimed_sats);
    if (e) {
        snprintf(err, err_len, "mock mint: %s", dvm_strerror(e));
        world_free(w);
        return e;
    }
    const double pfr[3] = {sc->providers.take_and_stop, sc->providers.early_ask, sc->providers.stall};
    const double cfr[5] = {sc->customers.never_pay, sc->customers.double_spend, sc->customers.forge,
                           sc->customers.untrusted_mint, sc->customers.replay};
    for (size_t p = 0; p < P; p++) {
        w->pv[p].sats_per_chunk = sim_rng_range(&w->rng, sc->providers.sats_per_chunk_min, sc->providers.sats_per_chunk_max);
        w->pv[p].behaviour = pick_behaviour(&w->rng, pfr, 3);
        dvm_agent_config acfg;
        dvm_agent_config_default(&acfg);
        acfg.max_jobs = sc->providers.max_jobs;
        acfg.provider.sats_per_chunk = w->pv[p].sats_per_chunk;
        acfg.provider.chunks_per_payment = sc->providers.chunks_per_payment;
        acfg.provider.payment_timeout_ms = sc->providers.payment_timeout_ms;
        w->pv[p].ag = dvm_agent_new(&acfg);
        if (!w->pv[p].ag) {
            snprintf(err, err_len, "provider %zu: agent config refused", p);
            world_free(w);
            return DVM_ERR_INVALID;
        }
        sim_rng_seed_stream(&w->pv[p].rng, sc->seed, 1 + p);
    }
    for (size_t c = 0; c < C; c++) {
        w->cu[c].behaviour = pick_behaviour(&w->rng, cfr, 5);
        sim_rng_seed_stream(&w->cu[c].rng, sc->seed, 1 + P + c);
        dvm_buf_init(&w->cu[c].spent_tokens, 0);
    }
    for (int i = 0; i < 3; i++)
        w->adversaries |= pfr[i] > 0;
    for (int i = 0; i < 5; i++)
        w->adversaries |= cfr[i] > 0;
    w->faults = sc->network.loss > 0 || sc->network.n_partitions || sc->network.n_disconnects || sc->mint.n_outages;

    if (sinks && sinks->csv) {
        static const char hdr[] = "cjob,customer,behaviour,provider,attempts,budget_sats,arrival_us,"
                                  "first_chunk_us,job_us,chunks,sats_paid,status\n";
        sinks->csv(sinks->ctx, "jobs", hdr, sizeof hdr - 1);
    }
    sim_trace_begin(&w->tr, 0, "start");
    sim_trace_u64(&w->tr, "seed", sc->seed);
    sim_trace_u64(&w->tr, "providers", P);
    sim_trace_u64(&w->tr, "customers", C);
    sim_trace_u64(&w->tr, "jobs", sc->jobs);
    sim_trace_end(&w->tr);

    for (size_t i = 0; i < sc->network.n_partitions; i++) {
        uint64_t a = (uint64_t)llround(sc->network.partitions[i].at_s * 1e6);
        push(w, a, EV_PART_START, (uint32_t)i, 0);
        push(w, a + (uint64_t)llround(sc->network.partitions[i].duration_s * 1e6), EV_PART_END, (uint32_t)i, 0);
    }
    for (size_t i = 0; i < sc->network.n_disconnects; i++)
        push(w, (uint64_t)llround(sc->network.disconnects[i].at_s * 1e6), EV_DISCONNECT, (uint32_t)i, 0);
    for (size_t i = 0; i < sc->mint.n_outages; i++)
        push(w, (uint64_t)llround(sc->mint.outages[i].at_s * 1e6), EV_OUTAGE, (uint32_t)i, 0);
    if (!sc->jobs)
        w->arrivals_done = true;
    else
        push(w, sim_rng_exp(&w->rng, 1e6 / sc->customers.arrival_rate_hz), EV_ARRIVAL, 0, 0);

    sim_event ev;
    bool drained = true;
    while (!w->fatal && sim_eventq_pop(&w->q, &ev) == DVM_OK) {
        if (ev.t_us > w->limit_us) {
            drained = false;
            break;
        }
        w->now_us = ev.t_us;
        sim_pay_set_now(w->pay, NOW_MS(w));
        summary->events++;
        if (sinks && sinks->progress && !(summary->events & 0xffff))
            sinks->progress(sinks->ctx, summary->jobs_completed + summary->jobs_failed, sc->jobs, w->now_us,
                            summary->events);
        switch (ev.kind) {
        case EV_ARRIVAL: on_arrival(w); break;
        case EV_CONNECTED: on_connected_ev(w, ev.a, ev.b); break;
        case EV_DELIVER: on_deliver(w, ev.a, ev.b); break;
        case EV_CLOSE: on_close(w, ev.a, ev.b); break;
        case EV_PTIMER: on_ptimer(w, ev.a); break;
        case EV_CTIMER: on_ctimer(w, ev.a, ev.b); break;
        case EV_CHUNK: {
            job *j = job_get(w, ev.a, (uint32_t)(ev.b >> 32));
            if (j && (uint32_t)ev.b == j->proc_gen)
                on_chunk_event(w, ev.a);
            if (j)
                job_maybe_release(w, ev.a);
            break;
        }
        case EV_OP: on_op(w, ev.a); break;
        case EV_PART_START: on_partition(w, ev.a, true); break;
        case EV_PART_END: on_partition(w, ev.a, false); break;
        case EV_DISCONNECT: on_disconnect(w, ev.a); break;
        case EV_OUTAGE:
            sim_trace_begin(&w->tr, w->now_us, "mint_outage");
            sim_trace_u64(&w->tr, "window", ev.a);
            sim_trace_end(&w->tr);
            break;
        }
        flush_release(w);
        /* every job and every mint operation is over: what is left in the
         * queue are stale timers */
        if (w->arrivals_done && !w->live_jobs && !w->live_ops)
            break;
    }
    if (w->fatal) {
        snprintf(err, err_len, "simulation stopped: %s", dvm_strerror(w->fatal));
        e = w->fatal;
        world_free(w);
        return e;
    }
    if (!drained) {
        /* time is up: jobs still running count as unfinished */
        for (size_t i = 0; i < w->n_cjobs; i++)
            if (!w->cjobs[i].done)
                cjob_finish(w, (uint32_t)i, SIM_ST_UNFINISHED);
    }
    summary->virtual_seconds = (double)w->now_us / 1e6;
    check_invariants(w, drained);
    provider_csv(w);
    percentiles(w->lat_first, w->n_first, &summary->first_chunk);
    percentiles(w->lat_job, w->n_job, &summary->job);
    sim_trace_begin(&w->tr, w->now_us, "end");
    sim_trace_u64(&w->tr, "events", summary->events);
    sim_trace_u64(&w->tr, "jobs_completed", summary->jobs_completed);
    sim_trace_u64(&w->tr, "jobs_failed", summary->jobs_failed);
    sim_trace_end(&w->tr);
    uint8_t h[32];
    sim_trace_finish(&w->tr, h, summary->trace_hash);
    summary->trace_bytes = w->tr.bytes;
    world_free(w);
    return DVM_OK;
}

/* ---- summary output ------------------------------------------------------------ */

static json_t *pct_json(const sim_percentiles *p)
{
    return json_pack("{s:f,s:f,s:f,s:I}", "p50_ms", p->p50_ms, "p90_ms", p->p90_ms, "p99_ms", p->p99_ms, "n",
                     (json_int_t)p->n);
}

dvm_err sim_summary_json(const sim_summary *s, dvm_buf *out)
{
    json_t *o = json_object();
    json_t *failed = json_object();
    json_t *inv = json_array();
    if (!o || !failed || !inv) {
        json_decref(o);
        json_decref(failed);
        json_decref(inv);
        return DVM_ERR_NOMEM;
    }
    for (size_t i = 0; i < s->n_failed; i++)
        json_object_set_new(failed, s->failed[i].name, json_integer((json_int_t)s->failed[i].count));
    for (size_t i = 0; i < s->n_violations; i++)
        json_array_append_new(inv, json_pack("{s:s,s:s}", "name", s->violations[i].name, "detail",
                                             s->violations[i].detail));
#define I(k, v) json_object_set_new(o, k, json_integer((json_int_t)(v)))
    I("seed", s->seed);
    I("events", s->events);
    json_object_set_new(o, "virtual_seconds", json_real(s->virtual_seconds));
    I("jobs_started", s->jobs_started);
    I("jobs_completed", s->jobs_completed);
    json_object_set_new(o, "jobs_failed", failed);
    I("attempts", s->attempts);
    I("chunks", s->chunks);
    I("messages", s->messages);
    I("wire_bytes", s->wire_bytes);
    I("sats_minted", s->sats_minted);
    I("sats_paid", s->sats_paid);
    I("sats_earned", s->sats_earned);
    I("sats_claimed", s->sats_claimed);
    I("double_spends_detected", s->double_spends_detected);
    I("payments_rejected", s->payments_rejected);
    I("provider_losses_sats", s->provider_losses_sats);
    I("customer_losses_sats", s->customer_losses_sats);
    I("customer_unused_credit_sats", s->customer_unused_credit_sats);
    json_object_set_new(o, "latency_first_chunk", pct_json(&s->first_chunk));
    json_object_set_new(o, "latency_job", pct_json(&s->job));
    I("trace_bytes", s->trace_bytes);
    json_object_set_new(o, "trace_hash", json_string(s->trace_hash));
    json_object_set_new(o, "invariants_violated", inv);
#undef I
    char *txt = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
    json_decref(o);
    if (!txt)
        return DVM_ERR_NOMEM;
    dvm_err e = dvm_buf_append(out, txt, strlen(txt));
    if (!e)
        e = dvm_buf_putc(out, '\n');
    free(txt);
    return e;
}

dvm_err sim_summary_text(const sim_summary *s, dvm_buf *out)
{
    char t[4096];
    int n = snprintf(t, sizeof t,
                     "seed %llu: %llu events, %.3f virtual seconds\n"
                     "jobs: %llu started, %llu completed, %llu failed (%llu provider connections)\n",
                     (unsigned long long)s->seed, (unsigned long long)s->events, s->virtual_seconds,
                     (unsigned long long)s->jobs_started, (unsigned long long)s->jobs_completed,
                     (unsigned long long)s->jobs_failed, (unsigned long long)s->attempts);
    for (size_t i = 0; i < s->n_failed && n < (int)sizeof t - 128; i++)
        n += snprintf(t + n, sizeof t - (size_t)n, "  failed %-20s %llu\n", s->failed[i].name,
                      (unsigned long long)s->failed[i].count);
    n += snprintf(t + n, sizeof t - (size_t)n,
                  "chunks %llu, messages %llu (%llu bytes)\n"
                  "sats: minted %llu, paid %llu, earned %llu, claimed %llu\n"
                  "double spends detected %llu, payments rejected %llu\n"
                  "losses: providers %llu sats, customers %llu sats (unused prepaid credit %llu sats)\n"
                  "latency first chunk p50/p90/p99: %.1f / %.1f / %.1f ms\n"
                  "latency whole job   p50/p90/p99: %.1f / %.1f / %.1f ms\n"
                  "trace %llu bytes, sha256 %s\n",
                  (unsigned long long)s->chunks, (unsigned long long)s->messages,
                  (unsigned long long)s->wire_bytes, (unsigned long long)s->sats_minted,
                  (unsigned long long)s->sats_paid, (unsigned long long)s->sats_earned,
                  (unsigned long long)s->sats_claimed, (unsigned long long)s->double_spends_detected,
                  (unsigned long long)s->payments_rejected, (unsigned long long)s->provider_losses_sats,
                  (unsigned long long)s->customer_losses_sats,
                  (unsigned long long)s->customer_unused_credit_sats, s->first_chunk.p50_ms, s->first_chunk.p90_ms,
                  s->first_chunk.p99_ms, s->job.p50_ms, s->job.p90_ms, s->job.p99_ms,
                  (unsigned long long)s->trace_bytes, s->trace_hash);
    if (!s->n_violations)
        n += snprintf(t + n, sizeof t - (size_t)n, "invariants: all hold\n");
    for (size_t i = 0; i < s->n_violations && n < (int)sizeof t - 256; i++)
        n += snprintf(t + n, sizeof t - (size_t)n, "INVARIANT VIOLATED: %s: %s\n", s->violations[i].name,
                      s->violations[i].detail);
    return dvm_buf_append(out, t, (size_t)n);
}
