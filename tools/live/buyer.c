/* dvmstream — buying one streamed job (see buyer.h). */
#include "live/buyer.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "cashu/token.h"
#include "live/identity.h"
#include "live/swarm.h"
#include "wire/codec.h"
#include "wire/frame.h"
#include "wire/topic.h"

struct btok {
    dvm_token t;
    char *enc;  /* encoded cashuB string */
    size_t enc_len;
    bool given; /* handed to the session */
    bool sent;  /* marked SENT in the wallet, then went out in a payment message */
};

/* Payments of one bpump turn wait here until their tokens are durably SENT
 * (see flush_payments); at most this many per commit. */
#define PAY_BATCH_MAX 64

struct dvm_buyer {
    uv_loop_t *loop;
    dvm_buyer_opts o;
    dvm_buyer_cbs cbs;
    char *input;
    size_t input_len;
    dvm_customer *core;
    dvm_swarm *swarm;
    dvm_conn *conn;
    dvm_framer framer;
    dvm_msg_decoder dec;
    struct btok *toks;
    size_t n_toks;
    size_t next_tok;            /* toks[0..next_tok) were handed out at least once */
    size_t given[PAY_BATCH_MAX + 8]; /* FIFO of tokens handed to the session, not yet sent or returned */
    size_t given_head, n_given;
    dvm_buf pay_out;            /* encoded payment lines waiting for their SENT commit */
    size_t pay_tok[PAY_BATCH_MAX];
    size_t n_pay;
    uint64_t tok_sats;
    char job_id[33];
    char provider[65];
    char reason[512];
    uv_timer_t timer, end_timer;
    int handles;
    dvm_buf buf;
    bool started, reached, finished, ended, cancelled, end_scheduled, freeing;
    dvm_customer_status status;
};

static uint64_t now_ms(dvm_buyer *b) { return uv_now(b->loop); }
static void bpump(dvm_buyer *b);
static void schedule_end(dvm_buyer *b);

static void handle_closed(uv_handle_t *h)
{
    dvm_buyer *b = h->data;
    if (--b->handles > 0)
        return;
    dvm_customer_free(b->core);
    dvm_framer_free(&b->framer);
    dvm_msg_decoder_free(&b->dec);
    dvm_buf_free(&b->buf);
    dvm_buf_free(&b->pay_out);
    free(b->input);
    free(b);
}

static void maybe_free(dvm_buyer *b)
{
    if (!b->ended || b->conn || b->freeing)
        return;
    b->freeing = true; /* both timers close; the second close frees */
    uv_close((uv_handle_t *)&b->timer, handle_closed);
    uv_close((uv_handle_t *)&b->end_timer, handle_closed);
}

static void release_tokens(dvm_buyer *b)
{
    uint64_t back = 0;
    for (size_t i = 0; i < b->n_toks; i++) {
        if (!b->toks[i].sent && b->toks[i].enc && dvm_wallet_client_release(b->o.wallet, &b->toks[i].t) == DVM_OK)
            back += b->tok_sats;
        dvm_token_free(&b->toks[i].t);
        free(b->toks[i].enc);
    }
    free(b->toks);
    b->toks = NULL;
    b->n_toks = 0;
    b->n_given = 0;
    b->n_pay = 0; /* queued payments were never written: released above */
    dvm_buf_reset(&b->pay_out);
    if (back)
        dvm_log_job(b->o.log, b->job_id, "tokens_kept", DVM_LU("sats", back));
}

static void end_now(dvm_buyer *b)
{
    if (b->ended)
        return;
    b->ended = true;
    uv_timer_stop(&b->timer);
    release_tokens(b);
    if (!b->cancelled && b->cbs.on_end) {
        dvm_customer_stats st;
        memset(&st, 0, sizeof st);
        if (b->core)
            dvm_customer_get_stats(b->core, &st);
        dvm_buyer_result r;
        memset(&r, 0, sizeof r);
        r.reached = b->reached;
        r.status = b->finished ? b->status : DVM_CUSTOMER_RUNNING;
        r.reason = b->reason;
        r.job_id = b->job_id;
        r.provider = b->provider;
        r.output = b->core ? dvm_customer_result(b->core) : (dvm_str){NULL, 0};
        r.chunks = st.chunks;
        r.sats_paid = st.sats_paid;
        r.total_sats = st.total_sats;
        b->cbs.on_end(b->cbs.ud, &r);
    }
    if (b->swarm)
        dvm_swarm_destroy(b->swarm); /* aborts a remaining conn: its on_close clears b->conn */
    b->swarm = NULL;
    maybe_free(b);
}

static void end_timer_cb(uv_timer_t *t)
{
    dvm_buyer *b = t->data;
    end_now(b);
}

static void schedule_end(dvm_buyer *b)
{
    if (!b->end_scheduled && !b->ended) {
        b->end_scheduled = true;
        uv_timer_start(&b->end_timer, end_timer_cb, 0, 0);
    }
}

/* Get a micro-token of `amount` sats for request `req`. */
static void need_token(dvm_buyer *b, uint64_t req, uint64_t amount)
{
    if (!b->toks) {
        uint64_t n = b->o.budget / amount;
        if (n == 0) {
            dvm_customer_on_token_failed(b->core, req, "budget below one payment", now_ms(b));
            return;
        }
        if (n > 4096)
            n = 4096;
        dvm_token *ts = NULL;
        if (b->o.wallet_mu)
            uv_mutex_lock(b->o.wallet_mu); /* no recovery elsewhere reverts the split's swap in flight */
        dvm_err se = dvm_wallet_client_split(b->o.wallet, amount, (size_t)n, &ts);
        if (b->o.wallet_mu)
            uv_mutex_unlock(b->o.wallet_mu);
        if (se != DVM_OK) {
            char why[300];
            snprintf(why, sizeof why, "cannot split the budget: %s", dvm_wallet_client_last_error(b->o.wallet));
            dvm_customer_on_token_failed(b->core, req, why, now_ms(b));
            return;
        }
        b->toks = calloc((size_t)n, sizeof *b->toks);
        if (!b->toks) {
            dvm_wallet_tokens_free(ts, (size_t)n);
            dvm_customer_on_token_failed(b->core, req, "out of memory", now_ms(b));
            return;
        }
        b->n_toks = (size_t)n;
        b->tok_sats = amount;
        for (size_t i = 0; i < n; i++) {
            b->toks[i].t = ts[i]; /* the proofs now belong to b->toks */
            dvm_buf e;
            dvm_buf_init(&e, 0);
            if (dvm_token_encode(&ts[i], 4, &e) == DVM_OK && dvm_buf_putc(&e, 0) == DVM_OK) {
                b->toks[i].enc = (char *)e.data;
                b->toks[i].enc_len = e.len - 1;
            } else
                dvm_buf_free(&e);
        }
        free(ts);
        dvm_log_job(b->o.log, b->job_id, "split", DVM_LU("tokens", n), DVM_LU("sats_each", amount));
    }
    /* Tokens are handed out in order (a cursor: O(1) per payment); one
     * the session returned (RETURN_TOKEN, only after the job ended) is not
     * handed out again by the cursor, a scan finds it if ever needed. */
    while (b->next_tok < b->n_toks && (b->toks[b->next_tok].given || !b->toks[b->next_tok].enc))
        b->next_tok++;
    size_t i = b->next_tok;
    if (b->tok_sats == amount && i == b->n_toks)
        for (i = 0; i < b->n_toks && (b->toks[i].given || b->toks[i].sent || !b->toks[i].enc); i++)
            ;
    if (b->tok_sats == amount && i < b->n_toks && b->n_given < sizeof b->given / sizeof b->given[0]) {
        struct btok *t = &b->toks[i];
        t->given = true;
        b->given[(b->given_head + b->n_given++) % (sizeof b->given / sizeof b->given[0])] = i;
        dvm_customer_on_token(b->core, req, (dvm_str){t->enc, t->enc_len}, now_ms(b));
        return;
    }
    dvm_customer_on_token_failed(b->core, req, "no micro-token left", now_ms(b));
}

/* The token the session sends (or returns) next: the session answers every
 * on_token with exactly one SEND payment or RETURN_TOKEN, in order, so it
 * is the oldest handed out (O(1)); checked by content, with a scan as the
 * fallback should that ever not hold. */
static struct btok *tok_of(dvm_buyer *b, dvm_str s)
{
    const size_t cap = sizeof b->given / sizeof b->given[0];
    if (b->n_given) {
        struct btok *t = &b->toks[b->given[b->given_head]];
        if (t->enc_len == s.len && memcmp(t->enc, s.ptr, s.len) == 0) {
            b->given_head = (b->given_head + 1) % cap;
            b->n_given--;
            return t;
        }
    }
    for (size_t i = 0; i < b->n_toks; i++) {
        struct btok *t = &b->toks[i];
        if (t->enc && !t->sent && t->enc_len == s.len && memcmp(t->enc, s.ptr, s.len) == 0) {
            for (size_t k = 0; k < b->n_given; k++) /* drop it from the FIFO too */
                if (b->given[(b->given_head + k) % cap] == i) {
                    for (; k + 1 < b->n_given; k++)
                        b->given[(b->given_head + k) % cap] = b->given[(b->given_head + k + 1) % cap];
                    b->n_given--;
                    break;
                }
            return t;
        }
    }
    return NULL;
}

/* Send the payments queued in this turn. Money safety: a token must never
 * be both kept and sent. So its proofs are moved RESERVED -> SENT, durably
 * (one SQLite commit, fsync'd under the wallet's sync mode), BEFORE its
 * bytes are handed to the connection: a crash after the commit and before
 * the write loses at most these tokens' value to nobody (the proofs stay
 * unspent at the mint, the wallet no longer counts them), but a token can
 * never come back as UNSPENT (release_reserved at the next start) while the
 * provider holds it, as it could when the commit came after the write.
 * The cost of that order is the commit on the payment's path; it is paid
 * once per turn for all payments the turn produced (the prepay burst, or a
 * pay_required answered together with prepaid ones): one transaction for
 * all their proofs and one write (one SecretStream message carrying their
 * NDJSON lines) for all their lines. If the commit fails nothing is sent
 * (the tokens stay RESERVED and are released at the end) and the job is
 * ended by closing the connection. */
static void flush_payments(dvm_buyer *b)
{
    if (!b->n_pay || !b->toks)
        return;
    size_t np = 0;
    for (size_t i = 0; i < b->n_pay; i++)
        np += b->toks[b->pay_tok[i]].t.n_proofs;
    dvm_proof *ps = malloc((np ? np : 1) * sizeof *ps);
    dvm_err e = DVM_ERR_NOMEM;
    if (ps && b->conn) {
        np = 0;
        for (size_t i = 0; i < b->n_pay; i++) {
            const dvm_token *t = &b->toks[b->pay_tok[i]].t;
            memcpy(ps + np, t->proofs, t->n_proofs * sizeof *ps);
            np += t->n_proofs;
        }
        dvm_token all = b->toks[b->pay_tok[0]].t;
        all.proofs = ps;
        all.n_proofs = np;
        e = dvm_wallet_client_mark_sent(b->o.wallet, &all);
    }
    free(ps);
    if (e == DVM_OK) {
        for (size_t i = 0; i < b->n_pay; i++)
            b->toks[b->pay_tok[i]].sent = true;
        if (dvm_conn_send(b->conn, b->pay_out.data, b->pay_out.len) != DVM_OK)
            dvm_log_job(b->o.log, b->job_id, "pay_send_failed", DVM_LU("payments", b->n_pay));
    } else if (b->conn) {
        dvm_log_job(b->o.log, b->job_id, "pay_failed",
                    DVM_LS("reason", dvm_wallet_client_last_error(b->o.wallet)));
        snprintf(b->reason, sizeof b->reason, "cannot record the payment in the wallet: %s",
                 dvm_wallet_client_last_error(b->o.wallet));
        dvm_conn_close(b->conn);
    }
    dvm_buf_reset(&b->pay_out);
    b->n_pay = 0;
}

static void send_msg(dvm_buyer *b, const dvm_msg *m)
{
    if (m->type == DVM_MSG_PAYMENT) {
        struct btok *t = tok_of(b, m->token);
        if (!t || !b->conn) /* not one of ours, or no connection: never sent, kept */
            return;
        if (b->n_pay == PAY_BATCH_MAX)
            flush_payments(b);
        if (dvm_msg_encode(m, &b->pay_out) != DVM_OK)
            return;
        b->pay_tok[b->n_pay++] = (size_t)(t - b->toks);
        return;
    }
    flush_payments(b); /* keep the order of messages */
    if (!b->conn)
        return;
    dvm_buf_reset(&b->buf);
    if (dvm_msg_encode(m, &b->buf) != DVM_OK)
        return;
    dvm_conn_send(b->conn, b->buf.data, b->buf.len);
}

static void timer_cb(uv_timer_t *t)
{
    dvm_buyer *b = t->data;
    dvm_customer_on_timer(b->core, now_ms(b));
    bpump(b);
}

static void bpump(dvm_buyer *b)
{
    dvm_customer_action x;
    while (dvm_customer_next_action(b->core, &x)) {
        switch (x.type) {
        case DVM_CACT_SEND:
            if (x.msg.type == DVM_MSG_PAYMENT)
                dvm_log_job(b->o.log, b->job_id, "pay", DVM_LU("sats", b->tok_sats));
            else if (x.msg.type == DVM_MSG_STOP)
                dvm_log_event(b->o.log, b->job_id, "stop", NULL, 0);
            send_msg(b, &x.msg);
            break;
        case DVM_CACT_NEED_TOKEN: need_token(b, x.token_req, x.amount); break;
        case DVM_CACT_RETURN_TOKEN: {
            struct btok *t = tok_of(b, x.token);
            if (t)
                t->given = false; /* released with the rest at the end */
            break;
        }
        case DVM_CACT_SET_TIMER:
        case DVM_CACT_CANCEL_TIMER: break;
        case DVM_CACT_DONE:
            flush_payments(b);
            b->finished = true;
            b->status = x.status;
            snprintf(b->reason, sizeof b->reason, "%.*s", (int)(x.message.len > 500 ? 500 : x.message.len),
                     x.message.ptr ? x.message.ptr : "");
            break;
        }
    }
    flush_payments(b);
    if (b->finished) {
        uv_timer_stop(&b->timer);
        if (b->conn)
            dvm_conn_close(b->conn); /* a queued stop is flushed first */
        else
            schedule_end(b);
        return;
    }
    uint64_t d = dvm_customer_deadline(b->core);
    if (d == UINT64_MAX)
        uv_timer_stop(&b->timer);
    else {
        uint64_t n = now_ms(b);
        uv_timer_start(&b->timer, timer_cb, d > n ? d - n : 0, 0);
    }
}

static void on_chunk(void *ctx, const char *data, size_t len)
{
    dvm_buyer *b = ctx;
    if (!b->cancelled && b->cbs.on_chunk)
        b->cbs.on_chunk(b->cbs.ud, data, len);
}

static void conn_message(dvm_conn *conn, const uint8_t *msg, size_t len, void *ud)
{
    (void)conn;
    dvm_buyer *b = ud;
    if (b->ended || dvm_framer_push(&b->framer, msg, len) != DVM_OK)
        return;
    for (;;) {
        const uint8_t *line;
        size_t n;
        dvm_err e = dvm_framer_next(&b->framer, &line, &n);
        if (e == DVM_ERR_AGAIN)
            break;
        if (e != DVM_OK)
            continue; /* oversize line: skipped */
        dvm_msg m;
        char reason[DVM_REASON_MAX];
        if (dvm_msg_decode(&b->dec, line, n, &m, reason, sizeof reason) != DVM_OK) {
            dvm_log_job(b->o.log, b->job_id, "bad_message", DVM_LS("reason", reason));
            continue;
        }
        if (m.type == DVM_MSG_OFFER)
            dvm_log_job(b->o.log, b->job_id, "offer", DVM_LU("sats_per_chunk", m.sats_per_chunk),
                        DVM_LU("chunks_per_payment", m.chunks_per_payment));
        else if (m.type == DVM_MSG_PAY_REQUIRED)
            dvm_log_job(b->o.log, b->job_id, "pay_required", DVM_LU("earned", m.earned), DVM_LU("next", m.next));
        else if (m.type == DVM_MSG_ERROR) {
            char em[520];
            snprintf(em, sizeof em, "%.*s", (int)(m.message.len > 512 ? 512 : m.message.len),
                     m.message.ptr ? m.message.ptr : "");
            dvm_log_job(b->o.log, b->job_id, "provider_error", DVM_LS("message", em));
        }
        dvm_customer_handle_msg(b->core, &m, now_ms(b));
        bpump(b);
        if (b->ended)
            return;
    }
}

static void conn_close(dvm_conn *conn, dvm_err err, const char *reason, void *ud)
{
    (void)conn;
    (void)err;
    dvm_buyer *b = ud;
    b->conn = NULL;
    if (!b->finished && !b->ended) {
        dvm_log_job(b->o.log, b->job_id, "disconnected", DVM_LS("reason", reason ? reason : ""));
        dvm_customer_close(b->core, now_ms(b));
        bpump(b);
    }
    if (b->ended)
        maybe_free(b);
    else
        schedule_end(b);
}

static void on_connection(dvm_swarm *sw, dvm_conn *conn, const dvm_swarm_peer_info *info, void *ud)
{
    (void)sw;
    dvm_buyer *b = ud;
    if (b->conn || b->started || b->ended) {
        dvm_conn_close(conn);
        return;
    }
    b->conn = conn;
    b->reached = true;
    dvm_identity_hex(info->remote_public_key, b->provider);
    dvm_conn_callbacks cb = {NULL, conn_message, NULL, conn_close};
    dvm_conn_set_callbacks(conn, &cb, b);
    dvm_log_job(b->o.log, b->job_id, "connected", DVM_LS("peer", info->address ? info->address : ""),
                DVM_LS("pubkey", b->provider));
    b->started = true;
    dvm_customer_start(b->core, dvm_str_c(b->job_id), b->o.kind, (dvm_str){b->input, b->input_len}, b->o.budget,
                       now_ms(b));
    bpump(b);
}

static void on_peer_error(dvm_swarm *sw, const char *peer, dvm_err err, const char *reason, void *ud)
{
    (void)sw;
    (void)err;
    dvm_buyer *b = ud;
    if (b->ended)
        return;
    dvm_log_job(b->o.log, b->job_id, "unreachable", DVM_LS("peer", peer), DVM_LS("reason", reason));
    if (!b->started) {
        snprintf(b->reason, sizeof b->reason, "no provider reachable at %s: %s", peer, reason);
        schedule_end(b);
    }
}

static void rng_fill(void *ctx, uint8_t *buf, size_t n)
{
    (void)ctx;
    randombytes_buf(buf, n);
}

int dvm_buyer_start(uv_loop_t *loop, const dvm_buyer_opts *opts, const char *input, size_t len,
                    const dvm_buyer_cbs *cbs, dvm_buyer **out, char *err, size_t errlen)
{
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return -1;
    }
    dvm_buyer *b = calloc(1, sizeof *b);
    if (!b || !(b->input = malloc(len + 1))) {
        free(b);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(b->input, input, len);
    b->input[len] = 0;
    b->input_len = len;
    b->loop = loop;
    b->o = *opts;
    b->cbs = *cbs;
    uint8_t rid[16];
    randombytes_buf(rid, sizeof rid);
    for (int i = 0; i < 16; i++)
        snprintf(b->job_id + 2 * i, 3, "%02x", rid[i]);
    dvm_buf_init(&b->buf, 0);
    dvm_buf_init(&b->pay_out, 0);
    dvm_framer_init(&b->framer, 0);
    dvm_msg_decoder_init(&b->dec, 0);
    uv_timer_init(loop, &b->timer);
    uv_timer_init(loop, &b->end_timer);
    b->timer.data = b->end_timer.data = b;
    b->handles = 2;

    dvm_customer_config cc;
    dvm_customer_config_default(&cc);
    cc.max_sats_per_chunk = opts->max_sats_per_chunk;
    cc.prepay_window = opts->prepay;
    cc.idle_timeout_ms = opts->timeout_ms;
    dvm_customer_callbacks ccb = {on_chunk, NULL, NULL, b};
    b->core = dvm_customer_new(&cc, &ccb);

    dvm_rng rng = {rng_fill, NULL};
    dvm_noise_keypair kp;
    dvm_noise_keypair_generate(&kp, &rng);
    dvm_swarm_direct_config sc;
    memset(&sc, 0, sizeof sc);
    sc.peers = opts->peer;
    dvm_conn_options_default(&sc.conn);
    sc.conn.plaintext = opts->plaintext;
    sc.conn.max_message = DVM_LIVE_MAX_MESSAGE; /* see conn.h */
    sc.conn.keepalive_ms = DVM_LIVE_KEEPALIVE_MS; /* the agent closes silent connections (--idle-timeout) */
    sc.dial_attempts = 3;
    sc.dial_retry_ms = 300;
    dvm_swarm_callbacks scb = {on_connection, on_peer_error};
    dvm_err e;
    uint8_t topic[DVM_TOPIC_BYTES];
    if (b->core)
        b->swarm = dvm_swarm_direct_new(loop, &kp, &sc, &scb, b, &e, err, errlen);
    if (!b->core || !b->swarm || dvm_topic(opts->kind, topic) != DVM_OK ||
        dvm_swarm_join(b->swarm, topic, DVM_SWARM_CLIENT) != DVM_OK) {
        if (!b->core)
            snprintf(err, errlen, "out of memory");
        else if (b->swarm)
            snprintf(err, errlen, "cannot dial %s", opts->peer ? opts->peer : "(no peer)");
        b->cancelled = true;
        end_now(b);
        return -1;
    }
    dvm_log_job(opts->log, b->job_id, "start", DVM_LU("kind", opts->kind), DVM_LU("budget", opts->budget),
                DVM_LS("peer", opts->peer));
    *out = b;
    return 0;
}

void dvm_buyer_stop(dvm_buyer *b)
{
    if (!b || b->ended)
        return;
    if (b->started && !b->finished) {
        dvm_customer_stop(b->core, now_ms(b));
        bpump(b);
    } else if (!b->started) {
        snprintf(b->reason, sizeof b->reason, "stopped before a provider was reached");
        schedule_end(b);
    }
}

void dvm_buyer_cancel(dvm_buyer *b)
{
    if (!b || b->ended)
        return;
    b->cancelled = true;
    if (b->conn)
        dvm_conn_abort(b->conn, DVM_OK, "cancelled");
    end_now(b);
}

const char *dvm_buyer_job_id(const dvm_buyer *b) { return b->job_id; }
