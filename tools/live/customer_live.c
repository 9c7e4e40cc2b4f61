/* dvmstream — the live customer (see customer_live.h): fund the budget,
 * then one dvm_buyer job. */
#include "live/customer_live.h"

#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "live/agent_live.h"
#include "live/buyer.h"
#include "live/term.h"
#include "live/wallet_client.h"

struct lcust {
    const dvm_customer_cfg *cfg;
    FILE *out;
    dvm_buyer *buyer;
    uv_signal_t sigint, sigterm;
    bool ended;
    bool reached;
    dvm_customer_status status;
    char reason[512];
    char job_id[33];
    char provider[65];
    char *output;
    size_t output_len;
    uint64_t chunks, sats_paid, total_sats;
    bool last_nl;
    bool tty; /* out is a terminal: control characters neutralised (term.h) */
};

static void on_chunk(void *ud, const char *data, size_t len)
{
    struct lcust *c = ud;
    if (!c->cfg->json && len) {
        dvm_term_write(c->out, data, len, c->tty);
        fflush(c->out);
        c->last_nl = data[len - 1] == '\n';
    }
}

static void on_end(void *ud, const dvm_buyer_result *r)
{
    struct lcust *c = ud;
    c->ended = true;
    c->reached = r->reached;
    c->status = r->status;
    snprintf(c->reason, sizeof c->reason, "%s", r->reason ? r->reason : "");
    snprintf(c->job_id, sizeof c->job_id, "%s", r->job_id);
    snprintf(c->provider, sizeof c->provider, "%s", r->provider ? r->provider : "");
    c->output = malloc(r->output.len + 1);
    if (c->output) {
        if (r->output.len)
            memcpy(c->output, r->output.ptr, r->output.len);
        c->output[r->output.len] = 0;
        c->output_len = r->output.len;
    }
    c->chunks = r->chunks;
    c->sats_paid = r->sats_paid;
    c->total_sats = r->total_sats;
    c->buyer = NULL;
    uv_signal_stop(&c->sigint);
    uv_signal_stop(&c->sigterm);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    struct lcust *c = s->data;
    if (c->buyer)
        dvm_buyer_stop(c->buyer);
}

static int exit_for(const struct lcust *c)
{
    if (!c->reached)
        return DVM_CUSTOMER_EXIT_UNREACHABLE;
    switch (c->status) {
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
    struct lcust *c = calloc(1, sizeof *c);
    if (!c)
        return DVM_CUSTOMER_EXIT_FAILURE;
    c->cfg = cfg;
    c->out = out;
    c->tty = isatty(fileno(out));
    c->last_nl = true;
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_signal_init(&loop, &c->sigint);
    uv_signal_init(&loop, &c->sigterm);
    c->sigint.data = c->sigterm.data = c;
    uint64_t t0 = uv_hrtime();
    int rc = DVM_CUSTOMER_EXIT_FAILURE;
    char err[512];
    dvm_wallet_client *w = NULL;

    /* fund the budget */
    char wpath[1100];
    const char *wp = cfg->wallet;
    if (!wp) {
        if (dvm_live_data_path("customer-wallet.db", wpath, sizeof wpath) != 0) {
            snprintf(c->reason, sizeof c->reason, "no --wallet and no $HOME");
            goto out;
        }
        wp = wpath;
    }
    if (dvm_wallet_client_open(cfg->mint, wp, 10000, &w, err, sizeof err) != DVM_OK) {
        snprintf(c->reason, sizeof c->reason, "%s", err);
        w = NULL;
        goto out;
    }
    dvm_wallet_client_release_reserved(w, NULL); /* micro-tokens of a crashed run */
    dvm_wallet_client_recover(w, NULL);
    dvm_wallet_balance bal;
    if (dvm_wallet_client_balance(w, &bal) != DVM_OK) {
        snprintf(c->reason, sizeof c->reason, "%s", dvm_wallet_client_last_error(w));
        goto out;
    }
    if (bal.unspent < cfg->budget) {
        uint64_t need = cfg->budget - bal.unspent, minted = 0;
        if (dvm_wallet_client_mint(w, need, 30000, &minted) != DVM_OK) {
            snprintf(c->reason, sizeof c->reason, "cannot fund %llu sats at %s: %s", (unsigned long long)need,
                     cfg->mint, dvm_wallet_client_last_error(w));
            dvm_log_job(log, NULL, "payment_failed", DVM_LS("reason", c->reason));
            rc = DVM_CUSTOMER_EXIT_PAYMENT;
            goto out;
        }
        dvm_log_job(log, NULL, "minted", DVM_LU("sats", minted));
    }

    dvm_buyer_opts o = {cfg->kind, cfg->budget, cfg->max_sats_per_chunk, cfg->prepay, cfg->timeout, cfg->peer, w,
                        log, NULL, cfg->insecure_plaintext, NULL /* one process, one job: no claims */};
    dvm_buyer_cbs cb = {on_chunk, on_end, c};
    if (dvm_buyer_start(&loop, &o, input, input_len, &cb, &c->buyer, err, sizeof err) != 0) {
        snprintf(c->reason, sizeof c->reason, "%s", err);
        rc = DVM_CUSTOMER_EXIT_USAGE;
        goto out;
    }
    uv_signal_start(&c->sigint, on_signal, SIGINT);
    uv_signal_start(&c->sigterm, on_signal, SIGTERM);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (!c->ended)
        goto out;

    rc = exit_for(c);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    dvm_log_job(log, c->job_id, "done", DVM_LS("status", dvm_customer_status_name(c->status)),
                DVM_LU("chunks", c->chunks), DVM_LU("sats_paid", c->sats_paid), DVM_LU("total_sats", c->total_sats),
                DVM_LU("ms", ms), DVM_LU("exit", (uint64_t)rc), DVM_LS("reason", c->reason));
    if (cfg->json) {
        json_t *j = json_object();
        json_object_set_new(j, "job_id", json_string(c->job_id));
        json_object_set_new(j, "provider", json_string(c->provider));
        json_t *os = c->output ? json_stringn(c->output, c->output_len) : NULL;
        json_object_set_new(j, "output", os ? os : json_string(""));
        json_object_set_new(j, "chunks", json_integer((json_int_t)c->chunks));
        json_object_set_new(j, "sats_paid", json_integer((json_int_t)c->sats_paid));
        json_object_set_new(j, "total_sats", json_integer((json_int_t)c->total_sats));
        json_object_set_new(j, "ms", json_integer((json_int_t)ms));
        if (rc != 0) {
            json_object_set_new(j, "status", json_string(c->reached ? dvm_customer_status_name(c->status)
                                                                    : "unreachable"));
            json_object_set_new(j, "error", json_string(c->reason));
        }
        char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (s)
            fprintf(out, "%s\n", s);
        free(s);
        json_decref(j);
    } else if (!c->last_nl) {
        fputc('\n', out);
    }
    fflush(out);
out:
    if (rc != 0 && c->reason[0])
        fprintf(stderr, "dvm customer: %s\n", c->reason);
    uv_walk(&loop, close_walk, NULL);
    for (int i = 0; i < 100 && uv_run(&loop, UV_RUN_NOWAIT); i++)
        ;
    uv_loop_close(&loop);
    if (w)
        dvm_wallet_client_close(w);
    free(c->output);
    free(c);
    return rc;
}
