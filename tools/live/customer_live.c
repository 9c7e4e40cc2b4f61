/* dvmstream — the live customer (see customer_live.h). */
#include "live/customer_live.h"

#include <jansson.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "cashu/token.h"
#include "live/agent_live.h"
#include "live/identity.h"
#include "live/swarm.h"
#include "live/wallet_client.h"
#include "session/customer.h"
#include "wire/codec.h"
#include "wire/frame.h"
#include "wire/topic.h"

struct ctok {
    dvm_token t;
    char *enc;  /* encoded cashuB string */
    bool given; /* handed to the session (on_token) */
    bool sent;  /* went out in a payment message (mark_sent done) */
};

struct lcust {
    uv_loop_t *loop;
    const dvm_customer_cfg *cfg;
    const dvm_log *log;
    FILE *out;
    dvm_customer *core;
    dvm_swarm *swarm;
    dvm_conn *conn;
    dvm_framer framer;
    dvm_msg_decoder dec;
    dvm_wallet_client *wallet;
    struct ctok *toks;
    size_t n_toks;
    uint64_t tok_sats;
    char job_id[33];
    char provider[65];
    const char *input;
    size_t input_len;
    uv_timer_t timer;
    uv_signal_t sigint, sigterm;
    dvm_buf buf;
    uint64_t t0;
    bool started, finished, reached;
    dvm_customer_status status;
    char reason[512];
    int exit_code;
};

static uint64_t now_ms(struct lcust *c) { return uv_now(c->loop); }

static void cpump(struct lcust *c);

static void release_tokens(struct lcust *c)
{
    uint64_t back = 0;
    for (size_t i = 0; i < c->n_toks; i++) {
        if (!c->toks[i].sent && c->toks[i].enc) {
            if (dvm_wallet_client_release(c->wallet, &c->toks[i].t) == DVM_OK)
                back += c->tok_sats;
        }
        dvm_token_free(&c->toks[i].t);
        free(c->toks[i].enc);
        c->toks[i].enc = NULL;
    }
    free(c->toks);
    c->toks = NULL;
    c->n_toks = 0;
    if (back)
        dvm_log_job(c->log, c->job_id, "tokens_kept", DVM_LU("sats", back));
}

static void stop_all(struct lcust *c)
{
    uv_timer_stop(&c->timer);
    uv_signal_stop(&c->sigint);
    uv_signal_stop(&c->sigterm);
    if (c->swarm)
        dvm_swarm_destroy(c->swarm);
    c->swarm = NULL;
    c->conn = NULL;
}

static int exit_for(dvm_customer_status s)
{
    switch (s) {
    case DVM_CUSTOMER_OK:
    case DVM_CUSTOMER_BUDGET_EXHAUSTED:
    case DVM_CUSTOMER_STOPPED: return DVM_CUSTOMER_EXIT_OK;
    case DVM_CUSTOMER_PRICE_TOO_HIGH:
    case DVM_CUSTOMER_BAD_OFFER:
    case DVM_CUSTOMER_BUDGET_TOO_SMALL: return DVM_CUSTOMER_EXIT_PRICE;
    case DVM_CUSTOMER_PAYMENT_FAILED: return DVM_CUSTOMER_EXIT_PAYMENT;
    case DVM_CUSTOMER_TIMEOUT: return DVM_CUSTOMER_EXIT_TIMEOUT;
    default: return DVM_CUSTOMER_EXIT_PROVIDER;
    }
}

/* Get a micro-token of `amount` sats for request `req`. */
static void need_token(struct lcust *c, uint64_t req, uint64_t amount)
{
    if (!c->toks) {
        /* first payment: split the budget into micro-tokens */
        uint64_t n = c->cfg->budget / amount;
        if (n == 0) {
            dvm_customer_on_token_failed(c->core, req, "budget below one payment", now_ms(c));
            return;
        }
        if (n > 4096)
            n = 4096;
        dvm_token *ts = NULL;
        dvm_err e = dvm_wallet_client_split(c->wallet, amount, (size_t)n, &ts);
        if (e != DVM_OK) {
            char why[300];
            snprintf(why, sizeof why, "cannot split the budget: %s", dvm_wallet_client_last_error(c->wallet));
            dvm_customer_on_token_failed(c->core, req, why, now_ms(c));
            return;
        }
        c->toks = calloc((size_t)n, sizeof *c->toks);
        if (!c->toks) {
            dvm_wallet_tokens_free(ts, (size_t)n);
            dvm_customer_on_token_failed(c->core, req, "out of memory", now_ms(c));
            return;
        }
        c->n_toks = (size_t)n;
        c->tok_sats = amount;
        for (size_t i = 0; i < n; i++) {
            c->toks[i].t = ts[i]; /* take ownership of the proofs */
            dvm_buf b;
            dvm_buf_init(&b, 0);
            if (dvm_token_encode(&ts[i], 4, &b) == DVM_OK && dvm_buf_putc(&b, 0) == DVM_OK)
                c->toks[i].enc = (char *)b.data;
            else
                dvm_buf_free(&b);
        }
        free(ts); /* the array only; proofs now belong to c->toks */
        dvm_log_job(c->log, c->job_id, "split", DVM_LU("tokens", n), DVM_LU("sats_each", amount));
    }
    for (size_t i = 0; i < c->n_toks; i++) {
        struct ctok *t = &c->toks[i];
        if (t->given || !t->enc)
            continue;
        if (c->tok_sats != amount)
            break;
        t->given = true;
        dvm_customer_on_token(c->core, req, dvm_str_c(t->enc), now_ms(c));
        return;
    }
    dvm_customer_on_token_failed(c->core, req, "no micro-token left", now_ms(c));
}

static void mark_sent(struct lcust *c, dvm_str tok)
{
    for (size_t i = 0; i < c->n_toks; i++) {
        struct ctok *t = &c->toks[i];
        if (t->enc && !t->sent && strlen(t->enc) == tok.len && memcmp(t->enc, tok.ptr, tok.len) == 0) {
            t->sent = true;
            dvm_wallet_client_mark_sent(c->wallet, &t->t);
            return;
        }
    }
}

static void return_token(struct lcust *c, dvm_str tok)
{
    for (size_t i = 0; i < c->n_toks; i++) {
        struct ctok *t = &c->toks[i];
        if (t->enc && !t->sent && strlen(t->enc) == tok.len && memcmp(t->enc, tok.ptr, tok.len) == 0)
            t->given = false; /* released with the rest at the end */
    }
}

static void send_msg(struct lcust *c, const dvm_msg *m)
{
    if (!c->conn)
        return;
    dvm_buf_reset(&c->buf);
    if (dvm_msg_encode(m, &c->buf) != DVM_OK)
        return;
    if (dvm_conn_send(c->conn, c->buf.data, c->buf.len) == DVM_OK && m->type == DVM_MSG_PAYMENT)
        mark_sent(c, m->token);
}

static void timer_cb(uv_timer_t *t)
{
    struct lcust *c = t->data;
    dvm_customer_on_timer(c->core, now_ms(c));
    cpump(c);
}

static void cpump(struct lcust *c)
{
    dvm_customer_action x;
    while (c->core && dvm_customer_next_action(c->core, &x)) {
        switch (x.type) {
        case DVM_CACT_SEND:
            if (x.msg.type == DVM_MSG_PAYMENT)
                dvm_log_job(c->log, c->job_id, "pay", DVM_LU("sats", c->tok_sats));
            else if (x.msg.type == DVM_MSG_STOP)
                dvm_log_event(c->log, c->job_id, "stop", NULL, 0);
            send_msg(c, &x.msg);
            break;
        case DVM_CACT_NEED_TOKEN: need_token(c, x.token_req, x.amount); break;
        case DVM_CACT_RETURN_TOKEN: return_token(c, x.token); break;
        case DVM_CACT_SET_TIMER:
        case DVM_CACT_CANCEL_TIMER: break;
        case DVM_CACT_DONE:
            c->finished = true;
            c->status = x.status;
            snprintf(c->reason, sizeof c->reason, "%.*s", (int)(x.message.len > 500 ? 500 : x.message.len),
                     x.message.ptr ? x.message.ptr : "");
            break;
        }
    }
    if (c->finished) {
        if (c->conn)
            dvm_conn_close(c->conn); /* flushes a queued stop first */
        uv_timer_stop(&c->timer);
        return;
    }
    uint64_t d = c->core ? dvm_customer_deadline(c->core) : UINT64_MAX;
    if (d == UINT64_MAX)
        uv_timer_stop(&c->timer);
    else {
        uint64_t n = now_ms(c);
        uv_timer_start(&c->timer, timer_cb, d > n ? d - n : 0, 0);
    }
}

static void on_chunk(void *ctx, const char *data, size_t len)
{
    struct lcust *c = ctx;
    if (!c->cfg->json) {
        fwrite(data, 1, len, c->out);
        fflush(c->out);
    }
}

static void conn_message(dvm_conn *conn, const uint8_t *msg, size_t len, void *ud)
{
    (void)conn;
    struct lcust *c = ud;
    if (dvm_framer_push(&c->framer, msg, len) != DVM_OK)
        return;
    for (;;) {
        const uint8_t *line;
        size_t n;
        dvm_err e = dvm_framer_next(&c->framer, &line, &n);
        if (e == DVM_ERR_AGAIN)
            break;
        if (e != DVM_OK)
            continue; /* oversize line: skipped */
        dvm_msg m;
        char reason[DVM_REASON_MAX];
        if (dvm_msg_decode(&c->dec, line, n, &m, reason, sizeof reason) != DVM_OK) {
            dvm_log_job(c->log, c->job_id, "bad_message", DVM_LS("reason", reason));
            continue;
        }
        if (m.type == DVM_MSG_OFFER)
            dvm_log_job(c->log, c->job_id, "offer", DVM_LU("sats_per_chunk", m.sats_per_chunk),
                        DVM_LU("chunks_per_payment", m.chunks_per_payment));
        else if (m.type == DVM_MSG_PAY_REQUIRED)
            dvm_log_job(c->log, c->job_id, "pay_required", DVM_LU("earned", m.earned), DVM_LU("next", m.next));
        else if (m.type == DVM_MSG_ERROR) {
            char em[520];
            snprintf(em, sizeof em, "%.*s", (int)(m.message.len > 512 ? 512 : m.message.len),
                     m.message.ptr ? m.message.ptr : "");
            dvm_log_job(c->log, c->job_id, "provider_error", DVM_LS("message", em));
        }
        dvm_customer_handle_msg(c->core, &m, now_ms(c));
        cpump(c);
    }
}

static void conn_close(dvm_conn *conn, dvm_err err, const char *reason, void *ud)
{
    (void)conn;
    (void)err;
    struct lcust *c = ud;
    c->conn = NULL;
    if (!c->finished && c->core) {
        dvm_log_job(c->log, c->job_id, "disconnected", DVM_LS("reason", reason ? reason : ""));
        dvm_customer_close(c->core, now_ms(c));
        cpump(c);
    }
    stop_all(c);
}

static void on_connection(dvm_swarm *sw, dvm_conn *conn, const dvm_swarm_peer_info *info, void *ud)
{
    (void)sw;
    struct lcust *c = ud;
    if (c->conn || c->started) {
        dvm_conn_close(conn);
        return;
    }
    c->conn = conn;
    c->reached = true;
    dvm_identity_hex(info->remote_public_key, c->provider);
    dvm_conn_callbacks cb = {NULL, conn_message, NULL, conn_close};
    dvm_conn_set_callbacks(conn, &cb, c);
    dvm_log_job(c->log, c->job_id, "connected", DVM_LS("peer", info->address ? info->address : ""),
                DVM_LS("pubkey", c->provider));
    c->started = true;
    dvm_customer_start(c->core, dvm_str_c(c->job_id), c->cfg->kind, (dvm_str){c->input, c->input_len},
                       c->cfg->budget, now_ms(c));
    cpump(c);
}

static void on_peer_error(dvm_swarm *sw, const char *peer, dvm_err err, const char *reason, void *ud)
{
    (void)sw;
    (void)err;
    struct lcust *c = ud;
    dvm_log_job(c->log, c->job_id, "unreachable", DVM_LS("peer", peer), DVM_LS("reason", reason));
    if (!c->started) {
        snprintf(c->reason, sizeof c->reason, "no provider reachable at %s: %s", peer, reason);
        c->exit_code = DVM_CUSTOMER_EXIT_UNREACHABLE;
        stop_all(c);
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    struct lcust *c = s->data;
    if (c->started && !c->finished) {
        dvm_customer_stop(c->core, now_ms(c));
        cpump(c);
    } else {
        snprintf(c->reason, sizeof c->reason, "interrupted");
        c->exit_code = DVM_CUSTOMER_EXIT_FAILURE;
        stop_all(c);
    }
}

static void rng_fill(void *ctx, uint8_t *b, size_t n)
{
    (void)ctx;
    randombytes_buf(b, n);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int dvm_customer_live_run(const dvm_customer_cfg *cfg, const char *input, size_t input_len, FILE *out,
                          const dvm_log *log)
{
    signal(SIGPIPE, SIG_IGN);
    if (sodium_init() < 0)
        return DVM_CUSTOMER_EXIT_FAILURE;
    struct lcust *c = calloc(1, sizeof *c);
    if (!c)
        return DVM_CUSTOMER_EXIT_FAILURE;
    uv_loop_t loop;
    uv_loop_init(&loop);
    c->loop = &loop;
    c->cfg = cfg;
    c->log = log;
    c->out = out;
    c->input = input;
    c->input_len = input_len;
    c->exit_code = -1;
    c->t0 = uv_hrtime();
    uv_timer_init(&loop, &c->timer);
    c->timer.data = c;
    uv_signal_init(&loop, &c->sigint);
    uv_signal_init(&loop, &c->sigterm);
    c->sigint.data = c->sigterm.data = c;
    uv_signal_start(&c->sigint, on_signal, SIGINT);
    uv_signal_start(&c->sigterm, on_signal, SIGTERM);
    dvm_buf_init(&c->buf, 0);
    dvm_framer_init(&c->framer, 0);
    dvm_msg_decoder_init(&c->dec, 0);
    uint8_t rid[16];
    randombytes_buf(rid, sizeof rid);
    for (int i = 0; i < 16; i++)
        snprintf(c->job_id + 2 * i, 3, "%02x", rid[i]);
    char err[512];
    int rc = DVM_CUSTOMER_EXIT_FAILURE;
    dvm_log_job(log, c->job_id, "start", DVM_LU("kind", cfg->kind), DVM_LU("budget", cfg->budget),
                DVM_LS("peer", cfg->peer ? cfg->peer : ""), DVM_LS("mint", cfg->mint));

    /* fund the budget */
    char wpath[1100];
    const char *wp = cfg->wallet;
    if (!wp) {
        if (dvm_live_data_path("customer-wallet.db", wpath, sizeof wpath) != 0) {
            fprintf(stderr, "dvm customer: no --wallet and no $HOME\n");
            goto out;
        }
        wp = wpath;
    }
    if (dvm_wallet_client_open(cfg->mint, wp, 10000, &c->wallet, err, sizeof err) != DVM_OK) {
        dvm_log_job(log, c->job_id, "failed", DVM_LS("reason", err));
        goto out;
    }
    uint64_t released = 0;
    dvm_wallet_client_release_reserved(c->wallet, &released);
    dvm_wallet_client_recover(c->wallet, NULL);
    dvm_wallet_balance bal;
    if (dvm_wallet_client_balance(c->wallet, &bal) != DVM_OK) {
        dvm_log_job(log, c->job_id, "failed", DVM_LS("reason", dvm_wallet_client_last_error(c->wallet)));
        goto out;
    }
    if (bal.unspent < cfg->budget) {
        uint64_t need = cfg->budget - bal.unspent, minted = 0;
        dvm_err e = dvm_wallet_client_mint(c->wallet, need, 30000, &minted);
        if (e != DVM_OK) {
            snprintf(c->reason, sizeof c->reason, "cannot fund %llu sats at %s: %s", (unsigned long long)need,
                     cfg->mint, dvm_wallet_client_last_error(c->wallet));
            dvm_log_job(log, c->job_id, "payment_failed", DVM_LS("reason", c->reason));
            rc = DVM_CUSTOMER_EXIT_PAYMENT;
            goto out;
        }
        dvm_log_job(log, c->job_id, "minted", DVM_LU("sats", minted));
    }

    /* the session */
    dvm_customer_config cc;
    dvm_customer_config_default(&cc);
    cc.max_sats_per_chunk = cfg->max_sats_per_chunk;
    cc.prepay_window = cfg->prepay;
    cc.idle_timeout_ms = cfg->timeout;
    dvm_customer_callbacks cb = {on_chunk, NULL, NULL, c};
    c->core = dvm_customer_new(&cc, &cb);
    if (!c->core)
        goto out;

    /* dial */
    dvm_rng rng = {rng_fill, NULL};
    dvm_noise_keypair kp;
    dvm_noise_keypair_generate(&kp, &rng);
    dvm_swarm_direct_config sc;
    memset(&sc, 0, sizeof sc);
    sc.peers = cfg->peer;
    dvm_conn_options_default(&sc.conn);
    sc.dial_attempts = 3;
    sc.dial_retry_ms = 300;
    dvm_swarm_callbacks scb = {on_connection, on_peer_error};
    dvm_err e;
    c->swarm = dvm_swarm_direct_new(&loop, &kp, &sc, &scb, c, &e, err, sizeof err);
    uint8_t topic[DVM_TOPIC_BYTES];
    if (!c->swarm || dvm_topic(cfg->kind, topic) != DVM_OK || dvm_swarm_join(c->swarm, topic, DVM_SWARM_CLIENT)) {
        snprintf(c->reason, sizeof c->reason, "%s", c->swarm ? "cannot join" : err);
        dvm_log_job(log, c->job_id, "failed", DVM_LS("reason", c->reason));
        rc = DVM_CUSTOMER_EXIT_USAGE;
        goto out;
    }
    uv_run(&loop, UV_RUN_DEFAULT);

    /* the outcome */
    if (c->finished) {
        rc = exit_for(c->status);
        if (rc == DVM_CUSTOMER_EXIT_PROVIDER && c->status == DVM_CUSTOMER_CLOSED && !c->reached)
            rc = DVM_CUSTOMER_EXIT_UNREACHABLE;
    } else if (c->exit_code >= 0)
        rc = c->exit_code;
    else
        rc = DVM_CUSTOMER_EXIT_UNREACHABLE;
    dvm_customer_stats st;
    dvm_customer_get_stats(c->core, &st);
    uint64_t ms = (uv_hrtime() - c->t0) / 1000000;
    dvm_log_job(log, c->job_id, "done", DVM_LS("status", c->finished ? dvm_customer_status_name(c->status) : "none"),
                DVM_LU("chunks", st.chunks), DVM_LU("sats_paid", st.sats_paid), DVM_LU("total_sats", st.total_sats),
                DVM_LU("ms", ms), DVM_LU("exit", (uint64_t)rc), DVM_LS("reason", c->reason));
    if (cfg->json) {
        dvm_str res = dvm_customer_result(c->core);
        json_t *o = json_object();
        json_object_set_new(o, "job_id", json_string(c->job_id));
        json_object_set_new(o, "provider", json_string(c->provider));
        json_t *os = json_stringn(res.ptr ? res.ptr : "", res.len);
        json_object_set_new(o, "output", os ? os : json_string(""));
        json_object_set_new(o, "chunks", json_integer((json_int_t)st.chunks));
        json_object_set_new(o, "sats_paid", json_integer((json_int_t)st.sats_paid));
        json_object_set_new(o, "total_sats", json_integer((json_int_t)st.total_sats));
        json_object_set_new(o, "ms", json_integer((json_int_t)ms));
        if (rc != 0) {
            json_object_set_new(o, "status", json_string(c->finished ? dvm_customer_status_name(c->status) : "unreachable"));
            json_object_set_new(o, "error", json_string(c->reason));
        }
        char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (s)
            fprintf(out, "%s\n", s);
        free(s);
        json_decref(o);
    } else if (st.chunks)
        fflush(out);
    if (rc != 0 && c->reason[0])
        fprintf(stderr, "dvm customer: %s\n", c->reason);
out:
    if (c->wallet)
        release_tokens(c);
    stop_all(c);
    uv_walk(&loop, close_walk, NULL);
    for (int i = 0; i < 100 && uv_run(&loop, UV_RUN_NOWAIT); i++)
        ;
    uv_loop_close(&loop);
    dvm_customer_free(c->core);
    if (c->wallet)
        dvm_wallet_client_close(c->wallet);
    dvm_framer_free(&c->framer);
    dvm_msg_decoder_free(&c->dec);
    dvm_buf_free(&c->buf);
    free(c);
    return rc;
}
