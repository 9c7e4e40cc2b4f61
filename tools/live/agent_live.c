/* dvmstream — the live provider agent (see agent_live.h). */
#include "live/agent_live.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cashu/policy.h"
#include "cashu/token.h"
#include "live/buyer.h"
#include "live/identity.h"
#include "live/processor.h"
#include "live/stream_socket.h"
#include "live/swarm.h"
#include "live/wallet_client.h"
#include "session/agent.h"
#include "session/pipeline.h"
#include "wire/codec.h"
#include "wire/frame.h"
#include "wire/topic.h"

#define MAX_MINTS (1 + DVM_CFG_MAX_LIST)
#define CLAIM_RETRY_MIN_MS 500
#define CLAIM_RETRY_MAX_MS 30000
#define SHUTDOWN_GRACE_MS 10000

struct claim_res {
    bool skipped; /* nothing owed at this mint */
    bool held_known; /* owed was read from the store (after the claim) */
    dvm_err e;
    uint64_t got, rejected, owed;
    char err[300];
};

struct lconn {
    struct lagent *a;
    uint64_t id;
    dvm_conn *conn;
    dvm_framer framer;
    dvm_msg_decoder dec;
    char peer[80];
    dvm_buf batch; /* lines encoded in this loop turn, sent as one message by flush_conns */
    struct lconn *next;
};

/* Lines for one connection produced in one loop turn (payment_ack, the
 * chunks it unlocks, pay_required, ...) go out as ONE SecretStream message
 * (one encryption, one write): receivers split NDJSON lines across and
 * within messages (ours: wire/frame.h; the reference: split('\n')). A
 * batch is sent before a line is added once it holds this much, so a
 * message stays under the 2 MiB cap (64 KiB + one line of at most 1 MiB). */
#define CONN_BATCH_BYTES (64u * 1024u)

struct ljob {
    uint64_t handle;
    uint64_t conn;
    char id[256];
    dvm_proc_job *pj;       /* the processor (pipeline: on the current batch) */
    dvm_pipeline *pl;       /* SUB_KIND pipeline, or NULL */
    dvm_buyer *sub;         /* the sub-task bought from --sub-peer */
    bool paused;            /* by the core: waiting for a payment */
    bool net_paused;        /* by us: the connection's write queue is full */
    struct lagent *a;
    struct ljob *next;
};

struct lagent {
    uv_loop_t *loop;
    const dvm_agent_cfg *cfg;
    const dvm_log *log;
    dvm_agent *core;
    dvm_swarm *swarm;
    dvm_noise_keypair kp;
    char pubhex[65];
    dvm_proc *proc;
    dvm_stream_pub *pub;
    dvm_pay_policy *policy;
    uv_mutex_t policy_mu;   /* the policy's state (replay set, unclaimed): loop (claims) and verifier pool */
    bool policy_mu_init;
    /* Claims (and the verifier's swap of a token without DLEQ) one at a
     * time, whichever thread runs them: a claim starts by recovering the
     * wallet's open operations, and another thread's swap in flight is
     * one - reverted there (the mint has not seen it yet), its proofs had
     * nowhere to go when the mint then executed it (lost). The SUB_KIND
     * pipeline's buyer takes it too around its split (and its top-up
     * mint), on the loop (dvm_buyer_opts.wallet_mu). */
    uv_mutex_t claim_mu;
    bool claim_mu_init;
    struct verifier *ver;   /* payments: verified (pool) and committed off the loop */
    dvm_wallet_client *wallets[MAX_MINTS];
    const char *mint_urls[MAX_MINTS];
    size_t n_wallets;
    struct lconn *conns;
    uint64_t next_conn;
    struct ljob *jobs;
    uv_timer_t timer, claim_timer, grace_timer;
    uv_signal_t sigint, sigterm;
    uint64_t claim_delay;
    bool shutting_down, stopped;
    bool batched; /* some connection holds a batch (flush_conns) */
    uv_check_t flush_check;     /* flush_conns after the I/O callbacks of a loop turn */
    uv_prepare_t flush_prepare; /* ... and after its timers, before the loop waits */
    /* claims run as a libuv work item on their own wallet connections */
    dvm_wallet_client *claimers[MAX_MINTS];
    struct claim_res claim_res[MAX_MINTS];
    uv_work_t claim_req;
    bool claim_running, claim_again;
    const char *claim_why, *claim_again_why;
    int exit_code;
};

/* ---------------------------------------------------------------------- */

int dvm_live_data_path(const char *name, char *out, size_t cap)
{
    const char *x = getenv("XDG_DATA_HOME");
    char dir[1024];
    if (x && *x)
        snprintf(dir, sizeof dir, "%s/dvm", x);
    else if ((x = getenv("HOME")) && *x)
        snprintf(dir, sizeof dir, "%s/.local/share/dvm", x);
    else
        return -1;
    /* create the parents best-effort (mkdir -p of at most a few levels) */
    for (char *p = dir + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(dir, 0700);
            *p = '/';
        }
    mkdir(dir, 0700);
    if ((size_t)snprintf(out, cap, "%s/%s", dir, name) >= cap)
        return -1;
    return 0;
}

static uint64_t now_ms(struct lagent *a) { return uv_now(a->loop); }

static struct lconn *conn_by_id(struct lagent *a, uint64_t id)
{
    for (struct lconn *c = a->conns; c; c = c->next)
        if (c->id == id)
            return c;
    return NULL;
}

static struct ljob *job_by_handle(struct lagent *a, uint64_t h)
{
    for (struct ljob *j = a->jobs; j; j = j->next)
        if (j->handle == h)
            return j;
    return NULL;
}

static void job_remove(struct lagent *a, struct ljob *j)
{
    for (struct ljob **pp = &a->jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    if (j->pj)
        dvm_proc_cancel(j->pj);
    if (j->sub)
        dvm_buyer_cancel(j->sub);
    dvm_pipeline_free(j->pl);
    free(j);
}

static void pump(struct lagent *a);
static void grace_cb(uv_timer_t *t);

/* ---- wallet and payments ----------------------------------------------- */

static size_t url_len(const char *u)
{
    size_t n = strlen(u);
    while (n && u[n - 1] == '/')
        n--;
    return n;
}

static void claim_timer_cb(uv_timer_t *t);

/* One mint's claim: recover interrupted operations, then swap every
 * INCOMING proof into our own (wallet calls only: runs on any thread). */

static void claim_one(dvm_wallet_client *w, struct claim_res *r)
{
    memset(r, 0, sizeof *r);
    dvm_wallet_balance before, after;
    size_t open_ops = 0;
    bool known = dvm_wallet_client_balance(w, &before) == DVM_OK;
    if (!known)
        memset(&before, 0, sizeof before);
    dvm_wallet_client_open_ops(w, &open_ops);
    if (before.incoming == 0 && open_ops == 0) {
        r->skipped = true;
        r->held_known = known && before.pending == 0;
        r->owed = before.pending;
        return;
    }
    dvm_err e = DVM_OK;
    if (open_ops) /* a claim interrupted earlier (mint down, crash) */
        e = dvm_wallet_client_recover(w, NULL);
    if (e == DVM_OK && dvm_wallet_client_balance(w, &after) == DVM_OK && after.incoming)
        e = dvm_wallet_client_claim_incoming(w, NULL, &r->rejected);
    if (dvm_wallet_client_balance(w, &after) != DVM_OK)
        after = before;
    else
        r->held_known = true;
    r->e = e;
    r->got = after.unspent > before.unspent ? after.unspent - before.unspent : 0;
    r->owed = after.incoming + after.pending;
    if (e != DVM_OK)
        snprintf(r->err, sizeof r->err, "%s", dvm_wallet_client_last_error(w));
}

/* After claims (any thread): the policy's unclaimed total becomes what the
 * store still holds unclaimed (INCOMING + pending), when every mint's
 * balance could be read; else it is lowered by what the claims took. Read
 * back rather than subtracted because the store also holds payments
 * committed early and not yet admitted by the policy (the verifier pool's
 * store thread): a claim may take those too, and subtracting them would
 * let the total drift (up, for ever, after the later admit) - an agent
 * that would end up refusing every payment as over --max-unclaimed. The
 * read-back count is off by at most the payments in flight at that moment
 * (counted early, or admitted and not yet committed) and is exact again
 * after the next claim. */
static void claim_apply(struct lagent *a, const struct claim_res *res)
{
    bool known = true;
    uint64_t held = 0;
    for (size_t i = 0; i < a->n_wallets; i++) {
        known &= res[i].held_known;
        held += res[i].owed;
    }
    uv_mutex_lock(&a->policy_mu);
    if (known)
        dvm_pay_policy_set_unclaimed(a->policy, held);
    else
        for (size_t i = 0; i < a->n_wallets; i++)
            if (!res[i].skipped && res[i].e == DVM_OK)
                dvm_pay_policy_claimed(a->policy, res[i].got + res[i].rejected);
    uv_mutex_unlock(&a->policy_mu);
}

/* Log the outcome of claims already applied to the policy, and schedule a
 * retry (backoff) if a mint did not answer. True when all mints did. Loop
 * thread only. */
static bool claim_log(struct lagent *a, const struct claim_res *res, const char *why)
{
    bool all_ok = true;
    for (size_t i = 0; i < a->n_wallets; i++) {
        const struct claim_res *r = &res[i];
        if (r->skipped)
            continue;
        if (r->e == DVM_OK) {
            dvm_log_job(a->log, NULL, "claimed", DVM_LS("mint", a->mint_urls[i]), DVM_LU("sats", r->got),
                        DVM_LU("rejected_sats", r->rejected), DVM_LS("why", why));
        } else {
            all_ok = false;
            dvm_log_job(a->log, NULL, "claim_deferred", DVM_LS("mint", a->mint_urls[i]), DVM_LS("reason", r->err),
                        DVM_LU("owed_sats", r->owed), DVM_LS("why", why));
        }
    }
    if (all_ok) {
        a->claim_delay = CLAIM_RETRY_MIN_MS;
        uv_timer_stop(&a->claim_timer);
    } else if (!a->stopped) {
        uv_timer_start(&a->claim_timer, claim_timer_cb, a->claim_delay, 0);
        a->claim_delay = a->claim_delay * 2 > CLAIM_RETRY_MAX_MS ? CLAIM_RETRY_MAX_MS : a->claim_delay * 2;
    }
    return all_ok;
}

static bool claim_report(struct lagent *a, const struct claim_res *res, const char *why)
{
    claim_apply(a, res);
    return claim_log(a, res, why);
}

/* Synchronous claim on the loop thread (fallback when no work item can be
 * queued). */
static bool claim_sync(struct lagent *a, const char *why)
{
    struct claim_res res[MAX_MINTS];
    uv_mutex_lock(&a->claim_mu);
    for (size_t i = 0; i < a->n_wallets; i++)
        claim_one(a->wallets[i], &res[i]);
    uv_mutex_unlock(&a->claim_mu);
    return claim_report(a, res, why);
}

/* Claims off the loop: one libuv work item at a time, with its own wallet
 * connections (SQLite serialises them with the loop's), so streaming to
 * other customers never waits for the mint. */
static void claim_work(uv_work_t *w)
{
    struct lagent *a = w->data;
    uv_mutex_lock(&a->claim_mu);
    for (size_t i = 0; i < a->n_wallets; i++)
        claim_one(a->claimers[i], &a->claim_res[i]);
    uv_mutex_unlock(&a->claim_mu);
}

static void claim_async(struct lagent *a, const char *why);

static void claim_after(uv_work_t *w, int status)
{
    struct lagent *a = w->data;
    a->claim_running = false;
    if (status == 0)
        claim_report(a, a->claim_res, a->claim_why);
    if (a->claim_again) {
        a->claim_again = false;
        claim_async(a, a->claim_again_why);
    }
}

static void claim_async(struct lagent *a, const char *why)
{
    if (a->claim_running) {
        a->claim_again = true;
        a->claim_again_why = why;
        return;
    }
    a->claim_running = true;
    a->claim_why = why;
    a->claim_req.data = a;
    if (uv_queue_work(a->loop, &a->claim_req, claim_work, claim_after) != 0) {
        a->claim_running = false;
        claim_sync(a, why);
    }
}

static void claim_timer_cb(uv_timer_t *t)
{
    struct lagent *a = t->data;
    claim_async(a, "retry");
}

/* ---- payments: the verifier pool ----------------------------------------
 * Every `payment` is verified and committed off the loop, by a pool of
 * --verify-threads threads (default: the online CPUs, at most
 * VERIFY_THREADS_MAX):
 *   loop: VERIFY_TOKEN -> queue (FIFO) -> pool:
 *   stateless step, on any thread, several tokens at once and the proofs of
 *   one token in parallel: token decode, dvm_pay_policy_prepare (under the
 *   keyset lock, read side) and one dvm_pay_policy_verify_dleq per proof
 *   (NUT-12 DLEQ, the expensive part; needs no shared state);
 *   stateful step, on one thread at a time (whichever finds the queue's
 *   head verified), strictly in arrival order: dvm_pay_policy_admit under
 *   policy_mu (replay set, unclaimed bound: a proof in two concurrent
 *   payments is accepted once), the mint round trips a payment may need
 *   (keysets, swap of a token without DLEQ, claim at the unclaimed bound),
 *   then ONE SQLite transaction for every payment accepted in the batch
 *   (group commit: dvm_wallet_client_add_incoming_many) -> results queue
 *   -> uv_async -> loop: log, dvm_agent_on_verify (credit and payment_ack:
 *   only after the commit returned).
 * The stateful step takes the longest prefix of verified payments (at most
 * VERIFY_BATCH_MAX) and the results queue is FIFO, so a job's payments
 * (and all jobs' payments) are decided and acknowledged in the order they
 * arrived. Payments that arrive or finish verifying while a batch is being
 * committed form the next batch. */

#define VERIFY_BATCH_MAX 64
#define VERIFY_THREADS_MAX 16

enum { VS_NEW, VS_DECODING, VS_PROOFS, VS_VERIFIED };

struct vitem {
    struct vitem *next;  /* arrival order (v->in, then v->out) */
    struct vitem *wnext; /* v->fresh or v->proofq */
    uint64_t job, vid;
    char *tok; /* the token string as received (owned) */
    size_t tok_len;
    dvm_verify_result r; /* the verdict; r.reason set on the loop */
    char rbuf[300];
    struct claim_res *claims; /* claims made first (unclaimed bound), logged on the loop */
    /* the stateless step's results; stage and the proof counters under v->mu */
    int stage;
    size_t next_proof, proofs_done;
    bool decoded;          /* t holds the decoded token (owned) */
    dvm_token t;
    dvm_pay_verdict pre;   /* dvm_pay_policy_prepare's verdict (ACCEPT: chk filled) */
    dvm_pay_check chk;
    char reason[256];      /* of a failed decode or a final `pre` */
    /* the early commit (store thread), under v->mu: */
    bool store_done;       /* considered by the store thread (the stateful step waits for it) */
    int spec;              /* SPEC_*: what the early commit did */
    bool over_bound;       /* refused only as over --max-unclaimed (stateful step) */
};

/* The early commit: a payment that passed the stateless checks so far
 * (trusted mint, keys known, every proof with a DLEQ, no Y twice) is
 * committed INCOMING by the store thread while its DLEQ proofs are still
 * being checked, so the fsync overlaps the curve math instead of following
 * it. In arrival order (a proof in two payments is stored for the first;
 * the later one finds it EXISTS, as the policy finds it a replay). The
 * stateful step then decides as before: accepted and stored -> credited
 * with no further commit; refused after all (forged DLEQ, replay in the
 * policy's memory, unclaimed bound not reachable) -> its rows are moved
 * INCOMING -> REJECTED, so they are never claimed. A crash between the two
 * leaves the token INCOMING: claimed at the next start (the mint refuses a
 * forged one), as a token committed and not yet acknowledged is today. */
enum { SPEC_NONE, SPEC_STORED, SPEC_EXISTS, SPEC_FAILED };

struct vpend { /* accepted, waiting for the batch's commit */
    struct vitem *it;
    dvm_token t;
    uint64_t amount;
    size_t mint;
};

struct verifier {
    struct lagent *a;
    uv_thread_t threads[VERIFY_THREADS_MAX];
    size_t n_threads;
    uv_mutex_t mu; /* guards the queues, items' stage and counters, committing, quit */
    uv_cond_t cv;
    uv_rwlock_t keys_rw; /* the policy's keysets: prepare reads, the stateful step adds */
    bool locks_init;
    struct vitem *in, **in_tail;        /* submitted, not yet decided (arrival order) */
    struct vitem *fresh, **fresh_tail;  /* not yet decoded */
    struct vitem *proofq, **proofq_tail; /* decoded, with proofs not yet claimed */
    struct vitem *out, **out_tail;      /* decided, for the loop */
    bool committing, quit;
    struct vitem *store_next;           /* the next item (arrival order) the store thread considers */
    uv_thread_t store_thread;
    bool store_started;
    dvm_wallet_client *swallets[MAX_MINTS]; /* the store thread's connections */
    dvm_token stoks[VERIFY_BATCH_MAX];
    dvm_err sres[VERIFY_BATCH_MAX];
    struct vitem *sitems[VERIFY_BATCH_MAX];
    uv_async_t async;
    /* the stateful step's (one thread at a time): wallet connections and
     * scratch for a group commit */
    dvm_wallet_client *wallets[MAX_MINTS];
    struct vpend pend[VERIFY_BATCH_MAX];
    size_t npend;
    dvm_token toks[VERIFY_BATCH_MAX];
    dvm_err res[VERIFY_BATCH_MAX];
    size_t who[VERIFY_BATCH_MAX];
};

static int mint_index(struct lagent *a, const char *mint)
{
    size_t n = url_len(mint);
    for (size_t i = 0; i < a->n_wallets; i++)
        if (url_len(a->mint_urls[i]) == n && strncmp(a->mint_urls[i], mint, n) == 0)
            return (int)i;
    return -1;
}

static void policy_claimed_locked(struct lagent *a, uint64_t sats)
{
    uv_mutex_lock(&a->policy_mu);
    dvm_pay_policy_claimed(a->policy, sats);
    uv_mutex_unlock(&a->policy_mu);
}

/* Stateful step: commit every pending accepted token, one transaction per
 * mint. */
static void ver_commit(struct verifier *v)
{
    struct lagent *a = v->a;
    for (size_t m = 0; m < a->n_wallets && v->npend; m++) {
        size_t k = 0;
        for (size_t i = 0; i < v->npend; i++)
            if (v->pend[i].mint == m) {
                v->toks[k] = v->pend[i].t; /* shallow: the proofs stay owned by pend */
                v->who[k++] = i;
            }
        if (!k)
            continue;
        dvm_wallet_client_add_incoming_many(v->wallets[m], v->toks, k, v->res);
        for (size_t i = 0; i < k; i++) {
            struct vpend *p = &v->pend[v->who[i]];
            if (v->res[i] == DVM_OK) {
                p->it->r.outcome = DVM_VERIFY_OK;
                p->it->r.amount = p->amount;
            } else {
                policy_claimed_locked(a, p->amount); /* not stored: do not count it as held */
                snprintf(p->it->rbuf, sizeof p->it->rbuf, "%s",
                         v->res[i] == DVM_ERR_EXISTS ? "token already received (replay)" : "cannot store the token");
            }
        }
    }
    for (size_t i = 0; i < v->npend; i++)
        dvm_token_free(&v->pend[i].t);
    v->npend = 0;
}

/* Stateful step: claim everything held (the policy's unclaimed bound). */
static bool ver_claim(struct verifier *v, struct vitem *it)
{
    struct lagent *a = v->a;
    if (!it->claims) {
        if (!(it->claims = calloc(MAX_MINTS, sizeof *it->claims)))
            return false;
        for (size_t m = 0; m < MAX_MINTS; m++)
            it->claims[m].skipped = true; /* nothing claimed yet */
    }
    bool all_ok = true;
    struct claim_res now[MAX_MINTS];
    uv_mutex_lock(&a->claim_mu); /* waits for a claim of the loop's in flight */
    for (size_t m = 0; m < a->n_wallets; m++) {
        claim_one(v->wallets[m], &now[m]);
        all_ok &= now[m].skipped || now[m].e == DVM_OK;
    }
    uv_mutex_unlock(&a->claim_mu);
    claim_apply(a, now);
    /* it->claims is what the loop logs for this payment, which may claim
     * in several rounds: keep the sats of every round (a later round that
     * found nothing must not hide what an earlier one claimed). */
    for (size_t m = 0; m < a->n_wallets; m++) {
        struct claim_res *c = &it->claims[m];
        if (now[m].skipped)
            continue;
        if (!c->skipped) {
            now[m].got += c->got;
            now[m].rejected += c->rejected;
        }
        *c = now[m];
    }
    return all_ok;
}

/* Stateless step, first part (any thread): decode and prepare. */
static void ver_prepare(struct verifier *v, struct vitem *it)
{
    struct lagent *a = v->a;
    it->reason[0] = 0;
    if (dvm_token_decode(it->tok, it->tok_len, &it->t, it->reason, sizeof it->reason) != DVM_OK)
        return;
    it->decoded = true;
    uv_rwlock_rdlock(&v->keys_rw);
    it->pre = dvm_pay_policy_prepare(a->policy, &it->t, &it->chk, it->reason, sizeof it->reason);
    uv_rwlock_rdunlock(&v->keys_rw);
}

/* Stateful step for one item, in arrival order: admit (and the wallet
 * steps the verdict asks for). An accepted token joins the batch's pending
 * commit; any other verdict is final here (reason in it->rbuf). */
static void ver_decide_inner(struct verifier *v, struct vitem *it)
{
    struct lagent *a = v->a;
    memset(&it->r, 0, sizeof it->r);
    it->r.outcome = DVM_VERIFY_REJECTED;
    char *rbuf = it->rbuf;
    size_t rlen = sizeof it->rbuf;
    if (!it->decoded) {
        snprintf(rbuf, rlen, "invalid token: %s", it->reason);
        return;
    }
    dvm_token *t = &it->t;
    char reason[256];
    for (int round = 0; round < 4; round++) {
        uint64_t amount = 0, held = 0;
        dvm_pay_verdict vd = it->pre;
        snprintf(reason, sizeof reason, "%s", it->reason);
        if (vd == DVM_PAY_ACCEPT) {
            uv_mutex_lock(&a->policy_mu);
            vd = dvm_pay_policy_admit(a->policy, &it->chk, &amount, reason, sizeof reason);
            held = dvm_pay_policy_unclaimed(a->policy);
            uv_mutex_unlock(&a->policy_mu);
        }
        int m = mint_index(a, t->mint);
        dvm_wallet_client *w = m >= 0 ? v->wallets[m] : NULL;
        if (vd == DVM_PAY_ACCEPT && it->spec == SPEC_STORED) { /* committed already */
            it->r.outcome = DVM_VERIFY_OK;
            it->r.amount = amount;
            return;
        }
        if (vd == DVM_PAY_ACCEPT && it->spec == SPEC_EXISTS) { /* the store holds a proof of it */
            policy_claimed_locked(a, amount);
            snprintf(rbuf, rlen, "token already received (replay)");
            return;
        }
        if (vd == DVM_PAY_ACCEPT) {
            if (!w || v->npend >= VERIFY_BATCH_MAX) {
                policy_claimed_locked(a, amount);
                snprintf(rbuf, rlen, "cannot store the token");
                return;
            }
            struct vpend *p = &v->pend[v->npend++];
            p->it = it;
            p->t = *t; /* the proofs now belong to the pending commit */
            p->amount = amount;
            p->mint = (size_t)m;
            it->decoded = false;
            memset(t, 0, sizeof *t);
            return;
        }
        if (vd == DVM_PAY_SWAP_FIRST && w) {
            uint64_t got = 0;
            uv_mutex_lock(&a->claim_mu); /* a swap: an open operation while in flight */
            dvm_err e = dvm_wallet_client_receive(w, t, &got);
            uv_mutex_unlock(&a->claim_mu);
            if (e == DVM_OK) {
                it->r.outcome = DVM_VERIFY_OK_CLAIMED;
                it->r.amount = amount;
            } else
                snprintf(rbuf, rlen, "%s", e == DVM_ERR_SPENT ? "token already spent"
                                           : e == DVM_ERR_AGAIN ? "mint unreachable, try again"
                                                                : dvm_wallet_client_last_error(w));
            return;
        }
        if (vd == DVM_PAY_CLAIM_FIRST) {
            ver_commit(v); /* what this batch accepted so far is claimed too */
            if (round == 3 || !ver_claim(v, it)) {
                it->over_bound = true; /* refused for the bound only (ver_decide) */
                snprintf(rbuf, rlen, "payment of %llu sats over the unclaimed limit (%llu sats held, limit %llu)",
                         (unsigned long long)amount, (unsigned long long)held,
                         (unsigned long long)a->cfg->max_unclaimed);
                return;
            }
            continue; /* admit the same verified check again */
        }
        if (vd == DVM_PAY_NEED_KEYSET && w) {
            const dvm_keyset *ks;
            size_t n;
            if (dvm_wallet_client_load_keysets(w) != DVM_OK || dvm_wallet_client_keysets(w, &ks, &n) != DVM_OK) {
                snprintf(rbuf, rlen, "mint unreachable, try again");
                return;
            }
            uv_rwlock_wrlock(&v->keys_rw);
            for (size_t i = 0; i < n; i++)
                dvm_pay_policy_add_keyset(a->policy, dvm_wallet_client_mint_url(w), &ks[i]);
            uv_rwlock_wrunlock(&v->keys_rw);
            /* the stateless step again, here, with the keys now known (rare) */
            dvm_pay_check_free(&it->chk);
            uv_rwlock_rdlock(&v->keys_rw);
            it->pre = dvm_pay_policy_prepare(a->policy, t, &it->chk, it->reason, sizeof it->reason);
            uv_rwlock_rdunlock(&v->keys_rw);
            if (it->pre == DVM_PAY_ACCEPT)
                dvm_pay_policy_verify(a->policy, t, &it->chk);
            continue;
        }
        snprintf(rbuf, rlen, "%s", reason[0] ? reason : dvm_pay_verdict_name(vd));
        return;
    }
}

/* The stateful step for one item; a token committed early and refused
 * after all is moved out of INCOMING (never claimed). */
static void ver_decide(struct verifier *v, struct vitem *it)
{
    ver_decide_inner(v, it);
    if (it->spec == SPEC_STORED && it->r.outcome == DVM_VERIFY_REJECTED && it->decoded) {
        int m = mint_index(v->a, it->t.mint);
        /* DVM_ERR_PROTO: a claim took the rows meanwhile. The mint refuses
         * a forged token there (its rows end REJECTED: refused, right).
         * But the claim can be ours taking a good token - the verifier's
         * own claim at the unclaimed bound takes every INCOMING row, this
         * payment's included - and refusing it then would take a
         * customer's token for nothing:
         *  - every proof SPENT here: the claim swapped it into our wallet
         *    (a payment worth more than --max-unclaimed, refused after its
         *    rounds): we hold the money, so it is credited, as claimed;
         *  - refused at the bound only (checks passed, DLEQ verified) and
         *    every proof PENDING: inputs of a claim of ours not finished
         *    (the mint did not answer: the operation stays open and
         *    dvm_wallet_client_recover completes it later; no claim is in
         *    flight meanwhile, claim_mu). The token is ours as durably as
         *    any early-committed payment: it is credited, as stored.
         * Not for a DLEQ or replay refusal: a forged token may be PENDING
         * too, until the mint refuses it. Its rows stay in the store, so a
         * replay of a credited token is still refused (EXISTS, or the
         * mint's "spent" on the swap path). */
        size_t spent = 0, pending = 0;
        uv_mutex_lock(&v->a->claim_mu); /* no claim in flight: PENDING is an open operation */
        if (m >= 0 && dvm_wallet_client_reject_incoming(v->wallets[m], &it->t) == DVM_ERR_PROTO &&
            dvm_wallet_client_claim_progress(v->wallets[m], &it->t, &spent, &pending) == DVM_OK) {
            if (spent == it->t.n_proofs || (it->over_bound && pending == it->t.n_proofs)) {
                it->r.outcome = spent == it->t.n_proofs ? DVM_VERIFY_OK_CLAIMED : DVM_VERIFY_OK;
                it->r.amount = it->chk.amount;
                it->rbuf[0] = 0;
            }
        }
        uv_mutex_unlock(&v->a->claim_mu);
    }
}

/* Store thread: may `it` (prepared) be committed before its DLEQ proofs
 * are checked? Only what the stateful step will accept unless a DLEQ
 * proof fails or the policy's replay memory or unclaimed bound says no. */
static bool ver_spec_eligible(struct lagent *a, const struct vitem *it)
{
    return it->decoded && it->pre == DVM_PAY_ACCEPT && it->chk.all_dleq && !it->chk.dup &&
           it->chk.n_ys == it->chk.n_proofs && mint_index(a, it->t.mint) >= 0;
}

/* The store thread: early commits, in arrival order, one transaction per
 * mint for every prepared payment it finds in a row. */
static void store_main(void *arg)
{
    struct verifier *v = arg;
    struct lagent *a = v->a;
    uv_mutex_lock(&v->mu);
    for (;;) {
        struct vitem *it = v->store_next;
        if (it && (it->stage == VS_PROOFS || it->stage == VS_VERIFIED)) {
            size_t n = 0;
            while (it && (it->stage == VS_PROOFS || it->stage == VS_VERIFIED) && n < VERIFY_BATCH_MAX) {
                v->sitems[n++] = it;
                it = it->next;
            }
            v->store_next = it;
            uv_mutex_unlock(&v->mu);
            for (size_t m = 0; m < a->n_wallets; m++) {
                size_t k = 0;
                size_t who[VERIFY_BATCH_MAX];
                for (size_t i = 0; i < n; i++)
                    if (ver_spec_eligible(a, v->sitems[i]) && mint_index(a, v->sitems[i]->t.mint) == (int)m) {
                        v->stoks[k] = v->sitems[i]->t; /* shallow: read only */
                        who[k++] = i;
                    }
                if (!k)
                    continue;
                dvm_wallet_client_add_incoming_many(v->swallets[m], v->stoks, k, v->sres);
                for (size_t i = 0; i < k; i++)
                    v->sitems[who[i]]->spec = v->sres[i] == DVM_OK             ? SPEC_STORED
                                              : v->sres[i] == DVM_ERR_EXISTS ? SPEC_EXISTS
                                                                             : SPEC_FAILED;
            }
            uv_mutex_lock(&v->mu);
            for (size_t i = 0; i < n; i++)
                v->sitems[i]->store_done = true;
            uv_cond_broadcast(&v->cv);
            continue;
        }
        if (v->quit && !it)
            break;
        uv_cond_wait(&v->cv, &v->mu);
    }
    uv_mutex_unlock(&v->mu);
}

/* After the stateless step of `it` (decode + prepare) under v->mu: its
 * proofs become work for the pool, or it is verified already. */
static void ver_prepared_locked(struct verifier *v, struct vitem *it)
{
    if (it->decoded && it->pre == DVM_PAY_ACCEPT && it->chk.n_proofs > 0) {
        it->stage = VS_PROOFS;
        it->next_proof = it->proofs_done = 0;
        it->wnext = NULL;
        *v->proofq_tail = it;
        v->proofq_tail = &it->wnext;
    } else
        it->stage = VS_VERIFIED;
    uv_cond_broadcast(&v->cv);
}

static void ver_main(void *arg)
{
    struct verifier *v = arg;
    struct lagent *a = v->a;
    uv_mutex_lock(&v->mu);
    for (;;) {
        /* the stateful step: the verified prefix of the queue, in order */
        if (!v->committing && v->in && v->in->stage == VS_VERIFIED && v->in->store_done) {
            v->committing = true;
            struct vitem *batch = v->in, **bt = &batch;
            size_t n = 0;
            while (*bt && (*bt)->stage == VS_VERIFIED && (*bt)->store_done && n < VERIFY_BATCH_MAX) {
                bt = &(*bt)->next;
                n++;
            }
            v->in = *bt;
            if (!v->in)
                v->in_tail = &v->in;
            *bt = NULL;
            uv_mutex_unlock(&v->mu);
            for (struct vitem *it = batch; it; it = it->next)
                ver_decide(v, it);
            ver_commit(v); /* one transaction (one fsync) per mint for the batch */
            uv_mutex_lock(&v->mu);
            *v->out_tail = batch;
            v->out_tail = bt;
            v->committing = false;
            uv_cond_broadcast(&v->cv); /* the next prefix may be verified already */
            uv_mutex_unlock(&v->mu);
            uv_async_send(&v->async);
            uv_mutex_lock(&v->mu);
            continue;
        }
        /* the stateless step: a proof of a token being verified, oldest
         * first, else the next token to decode */
        if (v->proofq) {
            struct vitem *it = v->proofq;
            size_t i = it->next_proof++;
            if (it->next_proof == it->chk.n_proofs) {
                v->proofq = it->wnext;
                if (!v->proofq)
                    v->proofq_tail = &v->proofq;
            }
            uv_mutex_unlock(&v->mu);
            dvm_pay_policy_verify_dleq(a->policy, &it->t, &it->chk, i);
            uv_mutex_lock(&v->mu);
            if (++it->proofs_done == it->chk.n_proofs) {
                it->stage = VS_VERIFIED;
                uv_cond_broadcast(&v->cv);
            }
            continue;
        }
        if (v->fresh) {
            struct vitem *it = v->fresh;
            v->fresh = it->wnext;
            if (!v->fresh)
                v->fresh_tail = &v->fresh;
            it->stage = VS_DECODING;
            uv_mutex_unlock(&v->mu);
            ver_prepare(v, it);
            uv_mutex_lock(&v->mu);
            ver_prepared_locked(v, it);
            continue;
        }
        if (v->quit && !v->in && !v->committing)
            break; /* everything queued is decided and committed */
        uv_cond_wait(&v->cv, &v->mu);
    }
    uv_cond_broadcast(&v->cv); /* the other threads see the same and end */
    uv_mutex_unlock(&v->mu);
}

static void vitem_free(struct vitem *it)
{
    if (it->decoded)
        dvm_token_free(&it->t);
    dvm_pay_check_free(&it->chk);
    free(it->tok);
    free(it->claims);
    free(it);
}

/* Loop: results of the pool, in order; credit (payment_ack) only now. */
static void ver_done(uv_async_t *h)
{
    struct verifier *v = h->data;
    struct lagent *a = v->a;
    uv_mutex_lock(&v->mu);
    struct vitem *list = v->out;
    v->out = NULL;
    v->out_tail = &v->out;
    uv_mutex_unlock(&v->mu);
    while (list) {
        struct vitem *it = list;
        list = it->next;
        if (!a->stopped) {
            if (it->claims)
                claim_log(a, it->claims, "unclaimed bound");
            struct ljob *j = job_by_handle(a, it->job);
            const char *jid = j ? j->id : NULL;
            if (it->r.outcome == DVM_VERIFY_REJECTED) {
                if (!it->rbuf[0])
                    snprintf(it->rbuf, sizeof it->rbuf, "payment not accepted");
                dvm_log_job(a->log, jid, "payment_rejected", DVM_LS("reason", it->rbuf));
            } else
                dvm_log_job(a->log, jid, "payment", DVM_LU("amount", it->r.amount),
                            DVM_LS("stored", it->r.outcome == DVM_VERIFY_OK ? "incoming" : "claimed"));
            it->r.reason = dvm_str_c(it->rbuf);
            dvm_err e = dvm_agent_on_verify(a->core, it->job, it->vid, &it->r, now_ms(a));
            if (e == DVM_ERR_NOT_FOUND && it->r.outcome == DVM_VERIFY_OK)
                claim_async(a, "late payment"); /* its job is gone: claim it now */
        } else if (it->r.outcome == DVM_VERIFY_OK)
            claim_async(a, "late payment"); /* stopping: claimed before the loop ends */
        vitem_free(it);
    }
    if (!a->stopped)
        pump(a);
}

/* Loop: hand VERIFY_TOKEN to the pool (the token string is copied). */
static void ver_submit(struct lagent *a, uint64_t job, uint64_t vid, dvm_str tok)
{
    struct verifier *v = a->ver;
    struct vitem *it = calloc(1, sizeof *it);
    if (it && (it->tok = malloc(tok.len + 1))) {
        memcpy(it->tok, tok.ptr ? tok.ptr : "", tok.len);
        it->tok[tok.len] = 0;
        it->tok_len = tok.len;
        it->job = job;
        it->vid = vid;
        it->stage = VS_NEW;
        uv_mutex_lock(&v->mu);
        *v->in_tail = it;
        v->in_tail = &it->next;
        *v->fresh_tail = it;
        v->fresh_tail = &it->wnext;
        if (!v->store_next)
            v->store_next = it;
        uv_cond_broadcast(&v->cv); /* the pool and the store thread share the condition */
        uv_mutex_unlock(&v->mu);
        return;
    }
    free(it);
    dvm_verify_result r = {.outcome = DVM_VERIFY_REJECTED, .reason = dvm_str_c("out of memory")};
    dvm_agent_on_verify(a->core, job, vid, &r, now_ms(a));
}

/* Threads for `requested` (0: the online CPUs), within 1..VERIFY_THREADS_MAX. */
static size_t ver_threads(uint64_t requested)
{
    uint64_t n = requested;
    if (n == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (uint64_t)c : 1;
    }
    return n > VERIFY_THREADS_MAX ? VERIFY_THREADS_MAX : (size_t)n;
}

/* Start the pool with its own wallet connections (sync mode `sync`). */
static int ver_start(struct lagent *a, const char *wallet_path, dvm_wallet_sync sync, char *err, size_t errlen)
{
    struct verifier *v = calloc(1, sizeof *v);
    if (!v) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    a->ver = v;
    v->a = a;
    v->in_tail = &v->in;
    v->fresh_tail = &v->fresh;
    v->proofq_tail = &v->proofq;
    v->out_tail = &v->out;
    for (size_t i = 0; i < a->n_wallets; i++) {
        if (dvm_wallet_client_open(a->mint_urls[i], wallet_path, 5000, &v->wallets[i], err, errlen) != DVM_OK)
            return -1;
        if (dvm_wallet_client_set_sync(v->wallets[i], sync) != DVM_OK) {
            snprintf(err, errlen, "%s", dvm_wallet_client_last_error(v->wallets[i]));
            return -1;
        }
        if (dvm_wallet_client_open(a->mint_urls[i], wallet_path, 5000, &v->swallets[i], err, errlen) != DVM_OK)
            return -1;
        if (dvm_wallet_client_set_sync(v->swallets[i], sync) != DVM_OK) {
            snprintf(err, errlen, "%s", dvm_wallet_client_last_error(v->swallets[i]));
            return -1;
        }
    }
    if (uv_mutex_init(&v->mu) != 0)
        goto lock_failed;
    if (uv_cond_init(&v->cv) != 0) {
        uv_mutex_destroy(&v->mu);
        goto lock_failed;
    }
    if (uv_rwlock_init(&v->keys_rw) != 0) {
        uv_cond_destroy(&v->cv);
        uv_mutex_destroy(&v->mu);
        goto lock_failed;
    }
    v->locks_init = true;
    if (uv_async_init(a->loop, &v->async, ver_done) != 0) {
        snprintf(err, errlen, "cannot create the verifier's wakeup");
        return -1;
    }
    v->async.data = v;
    uv_unref((uv_handle_t *)&v->async); /* the loop ends without waiting for it */
    size_t want = ver_threads(a->cfg->verify_threads);
    while (v->n_threads < want && uv_thread_create(&v->threads[v->n_threads], ver_main, v) == 0)
        v->n_threads++;
    if (v->n_threads == 0 || uv_thread_create(&v->store_thread, store_main, v) != 0) {
        snprintf(err, errlen, "cannot start the verifier threads");
        return -1;
    }
    v->store_started = true;
    return 0;
lock_failed:
    snprintf(err, errlen, "cannot create the verifier's locks");
    return -1;
}

/* Stop the pool after it decided and committed everything queued (tokens
 * whose results the loop no longer takes stay INCOMING: claimed right
 * here, or at the next start), then release it. Call before the loop's
 * handles are closed. */
static void ver_stop(struct lagent *a)
{
    struct verifier *v = a->ver;
    if (!v)
        return;
    if (v->n_threads) {
        uv_mutex_lock(&v->mu);
        v->quit = true;
        uv_cond_broadcast(&v->cv);
        uv_mutex_unlock(&v->mu);
        for (size_t i = 0; i < v->n_threads; i++)
            uv_thread_join(&v->threads[i]);
        v->n_threads = 0;
        if (v->store_started)
            uv_thread_join(&v->store_thread);
        v->store_started = false;
        bool owed = false;
        while (v->out) {
            struct vitem *it = v->out;
            v->out = it->next;
            owed |= it->r.outcome == DVM_VERIFY_OK;
            vitem_free(it);
        }
        /* payments committed after the loop stopped listening: claim them
         * now rather than at the next start */
        for (size_t m = 0; owed && m < a->n_wallets; m++) {
            struct claim_res r;
            uv_mutex_lock(&a->claim_mu);
            claim_one(v->wallets[m], &r);
            uv_mutex_unlock(&a->claim_mu);
            if (r.skipped)
                continue;
            if (r.e == DVM_OK)
                dvm_log_job(a->log, NULL, "claimed", DVM_LS("mint", a->mint_urls[m]), DVM_LU("sats", r.got),
                            DVM_LU("rejected_sats", r.rejected), DVM_LS("why", "exit"));
            else
                dvm_log_job(a->log, NULL, "claim_deferred", DVM_LS("mint", a->mint_urls[m]),
                            DVM_LS("reason", r.err), DVM_LU("owed_sats", r.owed), DVM_LS("why", "exit"));
        }
    }
    if (v->locks_init) {
        uv_rwlock_destroy(&v->keys_rw);
        uv_cond_destroy(&v->cv);
        uv_mutex_destroy(&v->mu);
        v->locks_init = false;
    }
    for (size_t i = 0; i < MAX_MINTS; i++) {
        if (v->wallets[i])
            dvm_wallet_client_close(v->wallets[i]);
        if (v->swallets[i])
            dvm_wallet_client_close(v->swallets[i]);
        v->wallets[i] = v->swallets[i] = NULL;
    }
}

/* ---- processor callbacks ----------------------------------------------- */

static void proc_chunk(void *ud, const char *data, size_t len)
{
    struct ljob *j = ud;
    struct lagent *a = j->a;
    dvm_err e = dvm_agent_on_chunk(a->core, j->handle, data, len, now_ms(a));
    if (e == DVM_ERR_LIMIT && j->pj)
        dvm_proc_pause(j->pj); /* queue full: hold the producer */
    pump(a);
}

static void proc_done(void *ud)
{
    struct ljob *j = ud;
    struct lagent *a = j->a;
    j->pj = NULL;
    dvm_agent_on_generation_done(a->core, j->handle, now_ms(a));
    pump(a);
}

static void proc_error(void *ud, const char *msg)
{
    struct ljob *j = ud;
    struct lagent *a = j->a;
    j->pj = NULL;
    dvm_log_job(a->log, j->id, "processor_error", DVM_LS("message", msg));
    dvm_agent_on_generation_error(a->core, j->handle, msg, strlen(msg), now_ms(a));
    pump(a);
}

/* ---- the SUB_KIND pipeline ---------------------------------------------- */
/* seeds/streaming-guide-p2p-cashu.md "Sub-task Delegation": buy the
 * sub-task from --sub-peer, batch its chunks (core/session/pipeline.h), run
 * our processor on each batch, stream the output on to our customer. */

static void pl_pump(struct ljob *j);

static void batch_chunk(void *ud, const char *data, size_t len)
{
    struct ljob *j = ud;
    dvm_pipeline_on_processor_chunk(j->pl, data, len);
    pl_pump(j);
}

static void batch_done(void *ud)
{
    struct ljob *j = ud;
    j->pj = NULL;
    dvm_pipeline_on_processor_done(j->pl);
    pl_pump(j);
}

static void batch_error(void *ud, const char *msg)
{
    struct ljob *j = ud;
    j->pj = NULL;
    dvm_pipeline_on_processor_error(j->pl, msg, strlen(msg));
    pl_pump(j);
}

static void sub_chunk(void *ud, const char *data, size_t len)
{
    struct ljob *j = ud;
    if (dvm_pipeline_on_sub_chunk(j->pl, data, len) == DVM_ERR_LIMIT) {
        const char *m = "pipeline backlog over its bound";
        dvm_pipeline_on_sub_error(j->pl, m, strlen(m));
        if (j->sub)
            dvm_buyer_stop(j->sub);
    }
    pl_pump(j);
}

static void sub_end(void *ud, const dvm_buyer_result *r)
{
    struct ljob *j = ud;
    struct lagent *a = j->a;
    j->sub = NULL;
    dvm_log_job(a->log, j->id, "sub_done", DVM_LS("sub_job", r->job_id),
                DVM_LS("status", dvm_customer_status_name(r->status)), DVM_LU("chunks", r->chunks),
                DVM_LU("sats_paid", r->sats_paid), DVM_LS("reason", r->reason));
    if (r->status == DVM_CUSTOMER_OK || r->status == DVM_CUSTOMER_BUDGET_EXHAUSTED ||
        r->status == DVM_CUSTOMER_STOPPED)
        dvm_pipeline_on_sub_done(j->pl);
    else {
        char m[600];
        snprintf(m, sizeof m, "sub-task failed: %s", r->reason[0] ? r->reason : dvm_customer_status_name(r->status));
        dvm_pipeline_on_sub_error(j->pl, m, strlen(m));
    }
    pl_pump(j);
}

static void pl_pump(struct ljob *j)
{
    struct lagent *a = j->a;
    dvm_pipeline_action x;
    uint64_t h = j->handle;
    while (j->pl && dvm_pipeline_next_action(j->pl, &x)) {
        switch (x.type) {
        case DVM_PLACT_PROCESS_BATCH: {
            dvm_proc_cbs cbs = {batch_chunk, batch_done, batch_error, j};
            char err[256];
            dvm_log_job(a->log, j->id, "batch", DVM_LU("n", x.batch), DVM_LU("chars", x.chars));
            if (dvm_proc_start(a->proc, x.text.ptr ? x.text.ptr : "", x.text.len, &cbs, &j->pj, err, sizeof err) !=
                0) {
                j->pj = NULL;
                dvm_pipeline_on_processor_error(j->pl, err, strlen(err));
            } else if (j->paused || j->net_paused)
                dvm_proc_pause(j->pj);
            break;
        }
        case DVM_PLACT_OUTPUT:
            if (dvm_agent_on_chunk(a->core, h, x.text.ptr, x.text.len, now_ms(a)) == DVM_ERR_LIMIT && j->pj)
                dvm_proc_pause(j->pj);
            break;
        case DVM_PLACT_ERROR:
            dvm_agent_on_generation_error(a->core, h, x.text.ptr, x.text.len, now_ms(a));
            break;
        case DVM_PLACT_DONE: dvm_agent_on_generation_done(a->core, h, now_ms(a)); break;
        }
        /* the job may have ended (DONE popped by pump below frees it): stop
         * touching it once the core no longer knows it */
        if (!dvm_agent_job(a->core, h))
            break;
    }
    pump(a);
}

static void start_pipeline(struct lagent *a, struct ljob *j, dvm_str input)
{
    const dvm_agent_cfg *cfg = a->cfg;
    dvm_pipeline_config pc;
    dvm_pipeline_config_default(&pc);
    pc.batch_chars = (size_t)cfg->sub_batch_size;
    j->pl = dvm_pipeline_new(&pc);
    char err[300] = "out of memory";
    dvm_wallet_client *w = a->wallets[0];
    dvm_wallet_balance bal;
    if (j->pl && dvm_wallet_client_balance(w, &bal) == DVM_OK && bal.unspent < cfg->sub_budget) {
        uint64_t minted = 0; /* fund the sub-task budget at our mint */
        uv_mutex_lock(&a->claim_mu); /* a mint: an open operation while in flight (see below) */
        dvm_err me = dvm_wallet_client_mint(w, cfg->sub_budget - bal.unspent, 30000, &minted);
        uv_mutex_unlock(&a->claim_mu);
        if (me != DVM_OK) {
            snprintf(err, sizeof err, "cannot fund the sub-task: %s", dvm_wallet_client_last_error(w));
            dvm_agent_on_generation_error(a->core, j->handle, err, strlen(err), now_ms(a));
            return;
        }
    }
    /* The buyer's split swaps on this wallet file, here on the loop: under
     * claim_mu, as every claim (whose recovery would revert a swap in
     * flight: the sub-budget lost). The loop waits at most for one claim
     * (bounded by the claim clients' HTTP timeouts); no claim_mu holder
     * waits on the loop (claims and the verifier only talk to the mint and
     * the store), so this cannot deadlock. */
    dvm_buyer_opts o = {cfg->sub_kind, cfg->sub_budget, cfg->sub_max_sats_per_chunk, 0, 60000, cfg->sub_peer, w,
                        a->log, "sub", false, &a->claim_mu};
    dvm_buyer_cbs cb = {sub_chunk, sub_end, j};
    if (!j->pl || dvm_buyer_start(a->loop, &o, input.ptr ? input.ptr : "", input.len, &cb, &j->sub, err,
                                  sizeof err) != 0) {
        j->sub = NULL;
        char m[400];
        snprintf(m, sizeof m, "sub-task failed: %s", err);
        dvm_agent_on_generation_error(a->core, j->handle, m, strlen(m), now_ms(a));
        return;
    }
    dvm_log_job(a->log, j->id, "sub_request", DVM_LS("sub_job", dvm_buyer_job_id(j->sub)),
                DVM_LU("kind", cfg->sub_kind), DVM_LU("budget", cfg->sub_budget), DVM_LS("peer", cfg->sub_peer));
}

/* ---- executing the core's actions --------------------------------------- */

/* Send c's batch (one message). */
static void flush_conn(struct lagent *a, struct lconn *c)
{
    if (!c->batch.len)
        return;
    dvm_err e = dvm_conn_send(c->conn, c->batch.data, c->batch.len);
    dvm_buf_reset(&c->batch);
    if (e != DVM_OK && e != DVM_ERR_STATE)
        dvm_log_job(a->log, NULL, "send_failed", DVM_LS("peer", c->peer), DVM_LS("error", dvm_strerror(e)));
    if (!dvm_conn_writable(c->conn)) /* backpressure: hold this connection's producers */
        for (struct ljob *j = a->jobs; j; j = j->next)
            if (j->conn == c->id && !j->net_paused) {
                j->net_paused = true;
                if (j->pj)
                    dvm_proc_pause(j->pj);
            }
}

/* End of a loop turn's work (the check and prepare handles, so lines
 * from all callbacks of the turn, e.g. a burst of processor chunks, share
 * one message): every connection's batch goes out. */
static void flush_conns(struct lagent *a)
{
    if (!a->batched)
        return;
    a->batched = false;
    for (struct lconn *c = a->conns; c; c = c->next)
        flush_conn(a, c);
}

static void flush_check_cb(uv_check_t *h) { flush_conns(h->data); }
static void flush_prepare_cb(uv_prepare_t *h) { flush_conns(h->data); }

static void send_msg(struct lagent *a, uint64_t conn, const dvm_msg *m)
{
    struct lconn *c = conn_by_id(a, conn);
    if (!c)
        return; /* connection gone */
    if (c->batch.len >= CONN_BATCH_BYTES) /* bounded: at most this plus one line per message */
        flush_conn(a, c);
    if (dvm_msg_encode(m, &c->batch) == DVM_OK)
        a->batched = true;
}

static void conn_drain(dvm_conn *conn, void *ud)
{
    (void)conn;
    struct lconn *c = ud;
    struct lagent *a = c->a;
    for (struct ljob *j = a->jobs; j; j = j->next)
        if (j->conn == c->id && j->net_paused) {
            j->net_paused = false;
            if (j->pj && !j->paused)
                dvm_proc_resume(j->pj);
        }
}

static void log_send(struct lagent *a, const char *job, const dvm_msg *m)
{
    switch (m->type) {
    case DVM_MSG_OFFER:
        dvm_log_job(a->log, job, "offer", DVM_LU("sats_per_chunk", m->sats_per_chunk),
                    DVM_LU("chunks_per_payment", m->chunks_per_payment));
        break;
    case DVM_MSG_PAYMENT_ACK: dvm_log_job(a->log, job, "payment_ack", DVM_LU("amount", m->amount)); break;
    case DVM_MSG_ACCEPTED: dvm_log_event(a->log, job, "accepted", NULL, 0); break;
    case DVM_MSG_PAY_REQUIRED:
        dvm_log_job(a->log, job, "pay_required", DVM_LU("earned", m->earned), DVM_LU("next", m->next));
        break;
    case DVM_MSG_RESULT:
        dvm_log_job(a->log, job, "result", DVM_LU("total_sats", m->total_sats), DVM_LU("bytes", m->output.len));
        break;
    case DVM_MSG_ERROR: {
        char msg[600];
        snprintf(msg, sizeof msg, "%.*s", (int)(m->message.len > 512 ? 512 : m->message.len),
                 m->message.ptr ? m->message.ptr : "");
        dvm_log_job(a->log, job, "error", DVM_LS("message", msg));
        break;
    }
    default: break;
    }
}

static void exec_action(struct lagent *a, const dvm_agent_action *x)
{
    const dvm_provider_action *p = &x->act;
    struct ljob *j = x->job ? job_by_handle(a, x->job) : NULL;
    if (x->job && !j && p->type != DVM_PACT_DONE) {
        /* first action of a new job: remember it */
        j = calloc(1, sizeof *j);
        if (!j)
            return;
        j->handle = x->job;
        j->conn = x->conn;
        j->a = a;
        const dvm_provider *pv = dvm_agent_job(a->core, x->job);
        dvm_str id = pv ? dvm_provider_job_id(pv) : (dvm_str){NULL, 0};
        snprintf(j->id, sizeof j->id, "%.*s", (int)(id.len < 255 ? id.len : 255), id.ptr ? id.ptr : "");
        j->next = a->jobs;
        a->jobs = j;
        struct lconn *c = conn_by_id(a, x->conn);
        dvm_log_job(a->log, j->id, "request", DVM_LS("peer", c ? c->peer : "?"),
                    DVM_LU("active", dvm_agent_active(a->core)), DVM_LU("max_jobs", dvm_agent_max_jobs(a->core)));
    }
    const char *jid = j ? j->id : NULL;
    switch (p->type) {
    case DVM_PACT_SEND:
        if (p->msg.type == DVM_MSG_CHUNK) {
            if (a->pub)
                dvm_stream_pub_publish(a->pub, a->pubhex, jid ? jid : "", p->msg.data.ptr, p->msg.data.len);
        } else if (x->job)
            log_send(a, jid, &p->msg);
        else if (p->msg.type == DVM_MSG_ERROR) {
            char msg[600], id[128];
            snprintf(msg, sizeof msg, "%.*s", (int)(p->msg.message.len > 512 ? 512 : p->msg.message.len),
                     p->msg.message.ptr ? p->msg.message.ptr : "");
            snprintf(id, sizeof id, "%.*s", (int)(p->msg.id.len > 100 ? 100 : p->msg.id.len),
                     p->msg.id.ptr ? p->msg.id.ptr : "");
            dvm_log_job(a->log, id, "refused", DVM_LS("message", msg));
        }
        send_msg(a, x->conn, &p->msg);
        break;
    case DVM_PACT_VERIFY_TOKEN:
        /* verified and committed on the verifier thread; on_verify (and so
         * payment_ack) follows from ver_done once the token is durable */
        ver_submit(a, x->job, p->verify_id, p->token);
        break;
    case DVM_PACT_START_GENERATION: {
        if (!j)
            break;
        if (a->cfg->sub_kind) {
            start_pipeline(a, j, p->input);
            break;
        }
        dvm_proc_cbs cbs = {proc_chunk, proc_done, proc_error, j};
        char err[256];
        if (dvm_proc_start(a->proc, p->input.ptr ? p->input.ptr : "", p->input.len, &cbs, &j->pj, err,
                           sizeof err) != 0) {
            j->pj = NULL;
            dvm_agent_on_generation_error(a->core, j->handle, err, strlen(err), now_ms(a));
        }
        break;
    }
    case DVM_PACT_PAUSE_GENERATION:
        if (j)
            j->paused = true;
        if (j && j->pj)
            dvm_proc_pause(j->pj);
        break;
    case DVM_PACT_RESUME_GENERATION:
        if (j)
            j->paused = false;
        if (j && j->pj && !j->net_paused)
            dvm_proc_resume(j->pj);
        break;
    case DVM_PACT_CANCEL_GENERATION:
        if (j && j->pj) {
            dvm_proc_cancel(j->pj);
            j->pj = NULL;
        }
        if (j && j->pl)
            dvm_pipeline_cancel(j->pl);
        if (j && j->sub)
            dvm_buyer_stop(j->sub); /* the sub-provider ends with a result and claims */
        break;
    case DVM_PACT_SET_TIMER:
    case DVM_PACT_CANCEL_TIMER: break; /* one loop timer at dvm_agent_deadline */
    case DVM_PACT_CLAIM:
        dvm_log_job(a->log, jid, "claim", DVM_LU("tokens", p->n_tokens), DVM_LU("sats", p->claim_sats));
        claim_async(a, "job ended");
        break;
    case DVM_PACT_DONE:
        dvm_log_job(a->log, jid, "done", DVM_LS("end", dvm_provider_end_name(p->end)),
                    DVM_LU("active", dvm_agent_active(a->core)));
        if (j)
            job_remove(a, j);
        break;
    }
}

static void timer_cb(uv_timer_t *t)
{
    struct lagent *a = t->data;
    dvm_agent_on_timer(a->core, now_ms(a));
    pump(a);
}

static void pump(struct lagent *a)
{
    dvm_agent_action x;
    /* Execute until quiet: executing may feed events (verify, errors) that
     * queue more actions. Bounded by the work the peers caused. */
    while (dvm_agent_next_action(a->core, &x))
        exec_action(a, &x);
    if (a->stopped)
        return;
    uint64_t d = dvm_agent_deadline(a->core);
    if (d == UINT64_MAX)
        uv_timer_stop(&a->timer);
    else {
        uint64_t n = now_ms(a);
        uv_timer_start(&a->timer, timer_cb, d > n ? d - n : 0, 0);
    }
}

/* ---- connections --------------------------------------------------------- */

static void conn_message(dvm_conn *conn, const uint8_t *msg, size_t len, void *ud)
{
    (void)conn;
    struct lconn *c = ud;
    struct lagent *a = c->a;
    if (dvm_framer_push(&c->framer, msg, len) != DVM_OK)
        return;
    for (;;) {
        const uint8_t *line;
        size_t n;
        dvm_err e = dvm_framer_next(&c->framer, &line, &n);
        if (e == DVM_ERR_AGAIN)
            break;
        uint64_t t = now_ms(a);
        if (e == DVM_ERR_TOO_LARGE) {
            dvm_str reason = dvm_str_c("message too large");
            dvm_agent_handle_decode_error(a->core, c->id, (dvm_str){NULL, 0}, reason, t);
            continue;
        }
        if (e != DVM_OK)
            break;
        dvm_msg m;
        char reason[DVM_REASON_MAX];
        e = dvm_msg_decode(&c->dec, line, n, &m, reason, sizeof reason);
        if (e != DVM_OK)
            dvm_agent_handle_decode_error(a->core, c->id, m.id, dvm_str_c(reason), t);
        else if (m.type == DVM_MSG_REQUEST && m.kind != a->cfg->kind) {
            /* the topic is per kind, but a direct peer can ask anything */
            char why[128];
            snprintf(why, sizeof why, "Unsupported kind %llu (this agent serves %llu)", (unsigned long long)m.kind,
                     (unsigned long long)a->cfg->kind);
            dvm_msg err = {.type = DVM_MSG_ERROR, .id = m.id, .message = dvm_str_c(why)};
            char id[128];
            snprintf(id, sizeof id, "%.*s", (int)(m.id.len > 100 ? 100 : m.id.len), m.id.ptr ? m.id.ptr : "");
            dvm_log_job(a->log, id, "refused", DVM_LS("message", why));
            send_msg(a, c->id, &err);
        } else
            dvm_agent_handle_msg(a->core, c->id, &m, t);
        pump(a);
    }
    pump(a);
}

static void conn_close(dvm_conn *conn, dvm_err err, const char *reason, void *ud)
{
    (void)conn;
    struct lconn *c = ud;
    struct lagent *a = c->a;
    dvm_log_job(a->log, NULL, "disconnected", DVM_LS("peer", c->peer), DVM_LS("reason", reason ? reason : ""),
                DVM_LU("error", err == DVM_OK ? 0 : 1));
    for (struct lconn **pp = &a->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    dvm_agent_connection_closed(a->core, c->id, now_ms(a));
    dvm_framer_free(&c->framer);
    dvm_msg_decoder_free(&c->dec);
    dvm_buf_free(&c->batch);
    free(c);
    pump(a);
    if (a->shutting_down && !a->conns && !a->stopped) /* finish outside the callback */
        uv_timer_start(&a->grace_timer, grace_cb, 0, 0);
}

static void on_connection(dvm_swarm *sw, dvm_conn *conn, const dvm_swarm_peer_info *info, void *ud)
{
    (void)sw;
    struct lagent *a = ud;
    if (a->shutting_down) {
        dvm_conn_close(conn);
        return;
    }
    struct lconn *c = calloc(1, sizeof *c);
    if (!c) {
        dvm_conn_close(conn);
        return;
    }
    c->a = a;
    c->id = ++a->next_conn;
    c->conn = conn;
    dvm_framer_init(&c->framer, 0);
    dvm_msg_decoder_init(&c->dec, 0);
    snprintf(c->peer, sizeof c->peer, "%s", info->address ? info->address : "");
    c->next = a->conns;
    a->conns = c;
    dvm_conn_callbacks cb = {NULL, conn_message, conn_drain, conn_close};
    dvm_conn_set_callbacks(conn, &cb, c);
    char hex[65];
    dvm_identity_hex(info->remote_public_key, hex);
    dvm_log_job(a->log, NULL, "connected", DVM_LS("peer", c->peer), DVM_LS("pubkey", hex));
}

static void on_peer_error(dvm_swarm *sw, const char *peer, dvm_err err, const char *reason, void *ud)
{
    (void)sw;
    (void)err;
    struct lagent *a = ud;
    dvm_log_job(a->log, NULL, "peer_error", DVM_LS("peer", peer), DVM_LS("reason", reason));
}

/* ---- shutdown ------------------------------------------------------------ */

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void finish(struct lagent *a)
{
    if (a->stopped)
        return;
    a->stopped = true;
    uv_timer_stop(&a->timer);
    uv_timer_stop(&a->claim_timer);
    uv_timer_stop(&a->grace_timer);
    flush_conns(a);
    uv_check_stop(&a->flush_check);
    uv_prepare_stop(&a->flush_prepare);
    uv_signal_stop(&a->sigint);
    uv_signal_stop(&a->sigterm);
    if (a->swarm)
        dvm_swarm_destroy(a->swarm);
    a->swarm = NULL;
    if (a->pub)
        dvm_stream_pub_close(a->pub);
    a->pub = NULL;
}

static void grace_cb(uv_timer_t *t)
{
    struct lagent *a = t->data;
    size_t n = 0;
    for (struct lconn *c = a->conns; c; c = c->next)
        n++;
    if (n)
        dvm_log_job(a->log, NULL, "shutdown_forced", DVM_LU("connections", n));
    finish(a);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct lagent *a = s->data;
    if (a->shutting_down) {
        finish(a); /* a second signal: stop now */
        return;
    }
    a->shutting_down = true;
    dvm_log_job(a->log, NULL, "shutdown", DVM_LU("signal", signum), DVM_LU("active", dvm_agent_active(a->core)));
    dvm_agent_shutdown(a->core, now_ms(a));
    pump(a); /* results sent, claims made */
    claim_async(a, "shutdown");
    /* close connections gracefully (batched lines, then queued results,
     * are flushed first) */
    flush_conns(a);
    for (struct lconn *c = a->conns; c; c = c->next)
        dvm_conn_close(c->conn);
    if (!a->conns)
        finish(a);
    else
        uv_timer_start(&a->grace_timer, grace_cb, SHUTDOWN_GRACE_MS, 0);
}


/* ---- run ----------------------------------------------------------------- */

int dvm_agent_live_run(const dvm_agent_cfg *cfg, const dvm_log *log)
{
    signal(SIGPIPE, SIG_IGN);
    struct lagent *a = calloc(1, sizeof *a);
    if (!a)
        return 1;
    uv_loop_t loop;
    uv_loop_init(&loop);
    a->loop = &loop;
    a->cfg = cfg;
    a->log = log;
    a->claim_delay = CLAIM_RETRY_MIN_MS;
    if (uv_mutex_init(&a->policy_mu) != 0) {
        uv_loop_close(&loop);
        free(a);
        return 1;
    }
    a->policy_mu_init = true;
    if (uv_mutex_init(&a->claim_mu) != 0) {
        uv_mutex_destroy(&a->policy_mu);
        uv_loop_close(&loop);
        free(a);
        return 1;
    }
    a->claim_mu_init = true;
    char err[512];
    int rc = 1;

    /* identity */
    char idpath[1100];
    const char *ip = cfg->identity;
    if (!ip) {
        if (dvm_live_data_path("identity", idpath, sizeof idpath) != 0) {
            dvm_log_job(log, NULL, "startup_failed", DVM_LS("reason", "no --identity and no $HOME"));
            goto out;
        }
        ip = idpath;
    }
    bool created;
    if (dvm_identity_load_or_create(ip, &a->kp, &created, err, sizeof err) != DVM_OK) {
        dvm_log_job(log, NULL, "startup_failed", DVM_LS("reason", err));
        goto out;
    }
    dvm_identity_hex(a->kp.public_key, a->pubhex);

    /* processor */
    dvm_proc_opts po = {0};
    po.chunks = (uint32_t)cfg->chunks;
    po.rate = cfg->rate;
    po.model = cfg->model;
    po.stall_timeout_ms = (uint32_t)cfg->stall_timeout; /* flag > $DVM_STALL_TIMEOUT > default, resolved by live_config */
    if (dvm_proc_new(&loop, cfg->processor, &po, &a->proc, err, sizeof err) != 0) {
        dvm_log_job(log, NULL, "startup_failed", DVM_LS("reason", err));
        goto out;
    }

    /* wallets: the claiming mint and every other trusted mint */
    char wpath[1100];
    const char *wp = cfg->wallet;
    if (!wp) {
        if (dvm_live_data_path("agent-wallet.db", wpath, sizeof wpath) != 0) {
            dvm_log_job(log, NULL, "startup_failed", DVM_LS("reason", "no --wallet and no $HOME"));
            goto out;
        }
        wp = wpath;
    }
    a->mint_urls[a->n_wallets++] = cfg->mint;
    for (size_t i = 0; i < cfg->trust_mint.n && a->n_wallets < MAX_MINTS; i++) {
        const char *u = cfg->trust_mint.items[i];
        bool dup = false;
        for (size_t k = 0; k < a->n_wallets; k++)
            dup |= url_len(a->mint_urls[k]) == url_len(u) && strncmp(a->mint_urls[k], u, url_len(u)) == 0;
        if (!dup)
            a->mint_urls[a->n_wallets++] = u;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT); /* before the claim thread uses libcurl */
    for (size_t i = 0; i < a->n_wallets; i++)
        if (dvm_wallet_client_open(a->mint_urls[i], wp, 5000, &a->wallets[i], err, sizeof err) != DVM_OK ||
            dvm_wallet_client_open(a->mint_urls[i], wp, 5000, &a->claimers[i], err, sizeof err) != DVM_OK) {
            dvm_log_job(log, NULL, "startup_failed", DVM_LS("reason", err));
            if (a->wallets[i])
                dvm_wallet_client_close(a->wallets[i]);
            a->wallets[i] = NULL;
            a->n_wallets = i;
            goto out;
        }
    dvm_wallet_sync sync = DVM_WALLET_SYNC_FULL;
    if (cfg->sync && strcmp(cfg->sync, "normal") == 0)
        sync = DVM_WALLET_SYNC_NORMAL;
    else if (cfg->sync && strcmp(cfg->sync, "full") != 0) {
        dvm_log_job(log, NULL, "startup_failed", DVM_LS("reason", "--sync: expected full or normal"));
        goto out;
    }
    for (size_t i = 0; i < a->n_wallets; i++)
        if (dvm_wallet_client_set_sync(a->wallets[i], sync) != DVM_OK ||
            dvm_wallet_client_set_sync(a->claimers[i], sync) != DVM_OK) {
            dvm_log_job(log, NULL, "startup_failed", DVM_LS("reason", dvm_wallet_client_last_error(a->wallets[i])));
            goto out;
        }
    dvm_pay_policy_config pc = {.trusted_mints = a->mint_urls, .n_trusted = a->n_wallets,
                                .max_unclaimed_sats = cfg->max_unclaimed, .replay_capacity = 0};
    if (dvm_pay_policy_new(&a->policy, &pc) != DVM_OK) {
        dvm_log_job(log, NULL, "startup_failed", DVM_LS("reason", "bad trusted mint list"));
        goto out;
    }
    if (ver_start(a, wp, sync, err, sizeof err) != 0) {
        dvm_log_job(log, NULL, "startup_failed", DVM_LS("reason", err));
        goto out;
    }

    /* the core agent */
    dvm_agent_config ac;
    dvm_agent_config_default(&ac);
    ac.max_jobs = (size_t)cfg->max_jobs;
    ac.provider.sats_per_chunk = cfg->sats_per_chunk;
    ac.provider.chunks_per_payment = cfg->chunks_per_payment;
    ac.provider.payment_timeout_ms = cfg->payment_timeout;
    a->core = dvm_agent_new(&ac);
    if (!a->core) {
        dvm_log_job(log, NULL, "startup_failed", DVM_LS("reason", "invalid price settings"));
        goto out;
    }

    uv_timer_init(&loop, &a->timer);
    uv_timer_init(&loop, &a->claim_timer);
    uv_timer_init(&loop, &a->grace_timer);
    a->timer.data = a->claim_timer.data = a->grace_timer.data = a;
    uv_check_init(&loop, &a->flush_check);
    uv_prepare_init(&loop, &a->flush_prepare);
    a->flush_check.data = a->flush_prepare.data = a;
    uv_check_start(&a->flush_check, flush_check_cb);
    uv_prepare_start(&a->flush_prepare, flush_prepare_cb);
    uv_unref((uv_handle_t *)&a->flush_check);
    uv_unref((uv_handle_t *)&a->flush_prepare);
    uv_signal_init(&loop, &a->sigint);
    uv_signal_init(&loop, &a->sigterm);
    a->sigint.data = a->sigterm.data = a;
    uv_signal_start(&a->sigint, on_signal, SIGINT);
    uv_signal_start(&a->sigterm, on_signal, SIGTERM);

    /* pipeline: hold the sub-task budgets of max_jobs jobs up front, so a
     * job does not wait for a mint quote (topped up per job if short) */
    if (cfg->sub_kind) {
        dvm_wallet_balance bal;
        uint64_t want = cfg->sub_budget * cfg->max_jobs, minted = 0;
        if (dvm_wallet_client_balance(a->wallets[0], &bal) == DVM_OK && bal.unspent < want) {
            if (dvm_wallet_client_mint(a->wallets[0], want - bal.unspent, 30000, &minted) == DVM_OK)
                dvm_log_job(log, NULL, "sub_funded", DVM_LU("sats", minted));
            else
                dvm_log_job(log, NULL, "sub_funding_failed",
                            DVM_LS("reason", dvm_wallet_client_last_error(a->wallets[0])));
        }
    }

    /* stream socket */
    if (cfg->stream_socket && dvm_stream_pub_open(&loop, cfg->stream_socket, &a->pub, err, sizeof err) != 0) {
        dvm_log_job(log, NULL, "startup_failed", DVM_LS("reason", err));
        goto out;
    }

    /* transport: listen on the kind's topic */
    dvm_swarm_direct_config sc;
    memset(&sc, 0, sizeof sc);
    sc.listen = cfg->listen;
    dvm_conn_options_default(&sc.conn);
    sc.conn.plaintext = cfg->insecure_plaintext;
    /* One NDJSON line per message: nothing legitimate exceeds the 1 MiB line
     * limit, so cap what a peer can make us buffer per connection. */
    sc.conn.max_message = DVM_LIVE_MAX_MESSAGE;
    /* Keep-alives both ways (the customer sends them too): a connection that
     * stays silent for --idle-timeout is a peer that is gone or only holding
     * a slot, and is closed. Plaintext has no empty-message keep-alive, so no
     * idle timeout there (debugging only). */
    sc.conn.keepalive_ms = DVM_LIVE_KEEPALIVE_MS;
    sc.conn.idle_timeout_ms = cfg->insecure_plaintext ? 0 : cfg->idle_timeout;
    if (cfg->insecure_plaintext)
        dvm_log_job(log, NULL, "warning",
                    DVM_LS("message", "--insecure-plaintext: connections are NOT encrypted or authenticated"));
    dvm_swarm_callbacks scb = {on_connection, on_peer_error};
    dvm_err e;
    a->swarm = dvm_swarm_direct_new(&loop, &a->kp, &sc, &scb, a, &e, err, sizeof err);
    uint8_t topic[DVM_TOPIC_BYTES];
    if (!a->swarm || dvm_topic(cfg->kind, topic) != DVM_OK ||
        dvm_swarm_join(a->swarm, topic, DVM_SWARM_SERVER) != DVM_OK) {
        dvm_log_job(log, NULL, "startup_failed", DVM_LS("reason", a->swarm ? "cannot listen" : err),
                    DVM_LS("listen", cfg->listen));
        goto out;
    }
    /* money owed from earlier runs: finish open operations, claim. Only
     * once startup succeeded: the error path below closes the wallets and
     * must not race a claim running on the thread pool. */
    claim_async(a, "startup"); /* recovers interrupted claims first */

    char addr[300] = "";
    dvm_swarm_local_address(a->swarm, addr, sizeof addr);
    char topichex[2 * DVM_TOPIC_BYTES + 1];
    dvm_topic_hex(cfg->kind, topichex);
    dvm_log_job(log, NULL, "listening", DVM_LS("address", addr), DVM_LS("pubkey", a->pubhex),
                DVM_LU("kind", cfg->kind), DVM_LS("topic", topichex), DVM_LS("processor", dvm_proc_name(a->proc)),
                DVM_LU("max_jobs", cfg->max_jobs), DVM_LU("sats_per_chunk", cfg->sats_per_chunk),
                DVM_LU("chunks_per_payment", cfg->chunks_per_payment), DVM_LS("mint", cfg->mint),
                DVM_LS("sync", sync == DVM_WALLET_SYNC_FULL ? "full" : "normal"),
                DVM_LU("verify_threads", a->ver->n_threads),
                DVM_LS("stream_socket", cfg->stream_socket ? cfg->stream_socket : ""));

    uv_run(&loop, UV_RUN_DEFAULT);
    rc = 0;
    dvm_log_job(log, NULL, "stopped", DVM_LU("exit", 0));
out:
    if (!a->stopped && a->core) {
        a->stopped = true;
        if (a->swarm)
            dvm_swarm_destroy(a->swarm);
        if (a->pub)
            dvm_stream_pub_close(a->pub);
    }
    while (a->conns) {
        struct lconn *c = a->conns;
        a->conns = c->next;
        dvm_framer_free(&c->framer);
        dvm_msg_decoder_free(&c->dec);
        dvm_buf_free(&c->batch);
        free(c);
    }
    while (a->jobs)
        job_remove(a, a->jobs);
    dvm_proc_free(a->proc);
    ver_stop(a); /* commits what is queued; before its async handle is closed */
    uv_walk(&loop, close_walk, NULL);
    for (int i = 0; i < 100 && uv_run(&loop, UV_RUN_NOWAIT); i++)
        ;
    uv_loop_close(&loop);
    dvm_agent_free(a->core);
    dvm_pay_policy_free(a->policy);
    for (size_t i = 0; i < a->n_wallets; i++) {
        dvm_wallet_client_close(a->wallets[i]);
        dvm_wallet_client_close(a->claimers[i]);
    }
    curl_global_cleanup();
    free(a->ver);
    if (a->policy_mu_init)
        uv_mutex_destroy(&a->policy_mu);
    if (a->claim_mu_init)
        uv_mutex_destroy(&a->claim_mu);
    free(a);
    return rc;
}
