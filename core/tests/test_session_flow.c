/* Provider and customer sessions driven against each other in memory. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "session_driver.h"

static const char *const CHUNKS[] = {
    "c01 ", "c02 ", "c03 ", "c04 ", "c05 ", "c06 ", "c07 ", "c08 ", "c09 ", "c10 ",
    "c11 ", "c12 ", "c13 ", "c14 ", "c15 ", "c16 ", "c17 ", "c18 ", "c19 ", "c20 ",
    "c21 ", "c22 ", "c23 ", "c24 ", "c25 ", "c26 ", "c27 ", "c28 ", "c29 ", "c30 ",
    "c31 ", "c32 ", "c33 ", "c34 ", "c35 ", "c36 ", "c37 ", "c38 ", "c39 ", "c40 ",
    "c41 ", "c42 ", "c43 ", "c44 ", "c45 ", "c46 ", "c47 ", "c48 ", "c49 ", "c50 ",
};

static void cfgs(dvm_provider_config *pc, dvm_customer_config *cc)
{
    dvm_provider_config_default(pc);
    dvm_customer_config_default(cc);
}

static void append(char *dst, size_t cap, const char *s)
{
    size_t l = strlen(dst);
    snprintf(dst + l, cap - l, "%s%s", l ? " " : "", s);
}

static void append_n(char *dst, size_t cap, const char *s, int n)
{
    for (int i = 0; i < n; i++)
        append(dst, cap, s);
}

static void concat(char *dst, size_t cap, int n)
{
    dst[0] = 0;
    for (int i = 0; i < n; i++)
        strncat(dst, CHUNKS[i], cap - strlen(dst) - 1);
}

Test(session_flow, full_flow_seed_sequence)
{
    dvm_provider_config pc;
    dvm_customer_config cc;
    cfgs(&pc, &cc);
    drv *d = drv_new(&pc, &cc, NULL);
    d->chunks = CHUNKS;
    d->nchunks = 25;
    drv_start(d, "job1", "Explain quantum computing", 100);
    drv_run(d);

    char want[4096] = "";
    append(want, sizeof want, "request offer payment payment_ack accepted");
    append_n(want, sizeof want, "chunk", 10);
    append(want, sizeof want, "pay_required payment payment_ack");
    append_n(want, sizeof want, "chunk", 10);
    append(want, sizeof want, "pay_required payment payment_ack");
    append_n(want, sizeof want, "chunk", 5);
    append(want, sizeof want, "result");
    cr_assert_str_eq(d->log, want);

    cr_assert(d->p_done);
    cr_assert_eq(d->p_end, DVM_PROVIDER_END_COMPLETED);
    cr_assert(d->c_done);
    cr_assert_eq(d->c_status, DVM_CUSTOMER_OK, "status %s: %s", dvm_customer_status_name(d->c_status),
                 d->c_message);
    dvm_customer_stats cs;
    dvm_customer_get_stats(d->c, &cs);
    cr_assert_eq(cs.chunks, 25);
    cr_assert_eq(cs.sats_paid, 30);
    cr_assert_eq(cs.sats_acked, 30);
    cr_assert_eq(cs.total_sats, 30);
    char out[256];
    concat(out, sizeof out, 25);
    dvm_str r = dvm_customer_result(d->c);
    cr_assert_eq(r.len, strlen(out));
    cr_assert(memcmp(r.ptr, out, r.len) == 0);
    /* the provider claims every token it verified, in one batch */
    cr_assert_eq(d->claim_actions, 1);
    cr_assert_eq(d->claimed_tokens, 3);
    cr_assert_eq(d->claimed_sats, 30);
    cr_assert_eq(d->pauses, 2);
    cr_assert_eq(d->resumes, 2);
    cr_assert(!d->invariant_broken);
    drv_free(d);
}

Test(session_flow, output_ending_on_payment_boundary_has_no_pay_required)
{
    drv *d = drv_new(NULL, NULL, NULL);
    d->chunks = CHUNKS;
    d->nchunks = 10;
    drv_start(d, "j", "x", 100);
    drv_run(d);
    cr_assert_eq(drv_count(d, "pay_required"), 0);
    cr_assert_eq(drv_count(d, "chunk"), 10);
    cr_assert_eq(d->c_status, DVM_CUSTOMER_OK);
    cr_assert_eq(d->claimed_sats, 10);
    drv_free(d);
}

Test(session_flow, early_stop_by_customer)
{
    drv *d = drv_new(NULL, NULL, NULL);
    d->chunks = CHUNKS;
    d->nchunks = 50;
    drv_start(d, "job2", "long", 100);
    dvm_customer_stats cs;
    for (int i = 0; i < 10000; i++) {
        drv_step(d);
        d->now++;
        dvm_customer_get_stats(d->c, &cs);
        if (cs.chunks >= 5)
            break;
    }
    cr_assert_eq(dvm_customer_stop(d->c, d->now), DVM_OK);
    drv_run(d);
    cr_assert(d->c_done);
    cr_assert_eq(d->c_status, DVM_CUSTOMER_STOPPED);
    cr_assert_eq(d->p_end, DVM_PROVIDER_END_STOPPED);
    cr_assert(d->gen_cancelled);
    dvm_provider_stats ps;
    dvm_provider_get_stats(d->p, &ps);
    /* the result holds exactly what was sent before the stop arrived */
    dvm_str r = dvm_customer_result(d->c);
    cr_assert_eq(r.len, ps.output_bytes);
    cr_assert_eq(d->claimed_sats, 10);
    cr_assert_eq(drv_count(d, "stop"), 1);
    cr_assert_eq(drv_count(d, "result"), 1);
    drv_free(d);
}

Test(session_flow, first_payment_timeout)
{
    drv *d = drv_new(NULL, NULL, NULL);
    d->chunks = CHUNKS;
    d->nchunks = 5;
    d->hold_tokens = true; /* the customer's wallet never answers */
    drv_start(d, "job3", "x", 100);
    drv_run(d);
    cr_assert_str_eq(d->log, "request offer");
    cr_assert(drv_fire_timer(d));
    drv_run(d);
    cr_assert_str_eq(d->log, "request offer error");
    cr_assert(d->p_done);
    cr_assert_eq(d->p_end, DVM_PROVIDER_END_PAYMENT_TIMEOUT);
    cr_assert_eq(d->claim_actions, 0);
    cr_assert_eq(d->c_status, DVM_CUSTOMER_PROVIDER_ERROR);
    cr_assert_str_eq(d->c_message, "Payment timeout after 30000ms");
    cr_assert(!d->gen_started);
    drv_free(d);
}

Test(session_flow, payment_timeout_mid_stream_sends_error_and_result)
{
    drv *d = drv_new(NULL, NULL, NULL);
    d->chunks = CHUNKS;
    d->nchunks = 30;
    drv_start(d, "job4", "x", 100);
    /* let the first payment through, then starve the provider */
    for (int i = 0; i < 1000 && drv_count(d, "accepted") == 0; i++)
        drv_step(d);
    d->hold_tokens = true;
    drv_run(d);
    cr_assert_eq(drv_count(d, "pay_required"), 1);
    cr_assert(drv_fire_timer(d));
    drv_run(d);
    cr_assert_eq(d->p_end, DVM_PROVIDER_END_PAYMENT_TIMEOUT);
    cr_assert_eq(drv_count(d, "error"), 1);
    cr_assert_eq(drv_count(d, "result"), 1);
    cr_assert_eq(drv_count(d, "chunk"), 10);
    cr_assert_eq(d->claimed_sats, 10);
    cr_assert_eq(d->c_status, DVM_CUSTOMER_PROVIDER_ERROR);
    drv_free(d);
}

Test(session_flow, budget_exhausted_sends_stop)
{
    drv *d = drv_new(NULL, NULL, NULL);
    d->chunks = CHUNKS;
    d->nchunks = 50;
    drv_start(d, "job5", "x", 25); /* two payments of 10 fit, a third not */
    drv_run(d);
    cr_assert(d->c_done);
    cr_assert_eq(d->c_status, DVM_CUSTOMER_BUDGET_EXHAUSTED);
    dvm_customer_stats cs;
    dvm_customer_get_stats(d->c, &cs);
    cr_assert_eq(cs.sats_paid, 20);
    cr_assert_eq(cs.chunks, 20);
    cr_assert(cs.sats_paid <= cs.budget);
    cr_assert_eq(drv_count(d, "stop"), 1);
    cr_assert_eq(d->p_end, DVM_PROVIDER_END_STOPPED);
    cr_assert_eq(d->claimed_sats, 20);
    char out[256];
    concat(out, sizeof out, 20);
    dvm_str r = dvm_customer_result(d->c);
    cr_assert_eq(r.len, strlen(out));
    cr_assert(!d->invariant_broken);
    drv_free(d);
}

Test(session_flow, price_too_high_is_rejected_with_stop)
{
    dvm_provider_config pc;
    dvm_customer_config cc;
    cfgs(&pc, &cc);
    pc.sats_per_chunk = 6;
    drv *d = drv_new(&pc, &cc, NULL);
    d->chunks = CHUNKS;
    d->nchunks = 5;
    drv_start(d, "job6", "x", 100);
    drv_run(d);
    cr_assert_eq(d->c_status, DVM_CUSTOMER_PRICE_TOO_HIGH);
    cr_assert_str_eq(d->c_message, "Price too high: 6 sat/chunk > max 5");
    cr_assert_str_eq(d->log, "request offer stop result");
    dvm_customer_stats cs;
    dvm_customer_get_stats(d->c, &cs);
    cr_assert_eq(cs.sats_paid, 0);
    cr_assert_eq(cs.sats_committed, 0);
    cr_assert_eq(d->p_end, DVM_PROVIDER_END_STOPPED);
    cr_assert(!d->gen_started);
    drv_free(d);
}

Test(session_flow, budget_too_small_for_one_payment)
{
    drv *d = drv_new(NULL, NULL, NULL);
    drv_start(d, "job7", "x", 9);
    drv_run(d);
    cr_assert_eq(d->c_status, DVM_CUSTOMER_BUDGET_TOO_SMALL);
    cr_assert_str_eq(d->log, "request offer stop result");
    drv_free(d);
}

Test(session_flow, rejected_token_gets_error_and_no_credit)
{
    drv *d = drv_new(NULL, NULL, NULL);
    d->chunks = CHUNKS;
    d->nchunks = 5;
    d->token_override = "bad";
    drv_start(d, "job8", "x", 100);
    drv_run(d);
    cr_assert_str_eq(d->log, "request offer payment error");
    cr_assert_eq(d->c_status, DVM_CUSTOMER_PROVIDER_ERROR);
    cr_assert_str_eq(d->c_message, "Payment failed: signature invalid");
    dvm_provider_stats ps;
    dvm_provider_get_stats(d->p, &ps);
    cr_assert_eq(ps.state, DVM_PROVIDER_OFFERED);
    cr_assert_eq(ps.credit_chunks, 0);
    cr_assert_eq(ps.earned_sats, 0);
    cr_assert(!d->gen_started);
    /* the provider still times out normally, and has nothing to claim */
    cr_assert(drv_fire_timer(d));
    drv_run(d);
    cr_assert_eq(d->p_end, DVM_PROVIDER_END_PAYMENT_TIMEOUT);
    cr_assert_eq(d->claim_actions, 0);
    drv_free(d);
}

Test(session_flow, generation_error_sends_error_then_result)
{
    drv *d = drv_new(NULL, NULL, NULL);
    d->chunks = CHUNKS;
    d->nchunks = 20;
    d->fail_at = 3;
    drv_start(d, "job9", "x", 100);
    drv_run(d);
    cr_assert_eq(d->p_end, DVM_PROVIDER_END_GENERATION_ERROR);
    cr_assert_eq(drv_count(d, "chunk"), 3);
    cr_assert_eq(drv_count(d, "error"), 1);
    cr_assert_eq(drv_count(d, "result"), 1);
    cr_assert(strstr(d->log, "error result") != NULL);
    cr_assert_eq(d->c_status, DVM_CUSTOMER_PROVIDER_ERROR);
    cr_assert_str_eq(d->c_message, "model crashed");
    cr_assert_eq(d->claimed_sats, 10);
    drv_free(d);
}

Test(session_flow, prepay_window_avoids_pay_required)
{
    dvm_provider_config pc;
    dvm_customer_config cc;
    cfgs(&pc, &cc);
    cc.prepay_window = 1;
    drv *d = drv_new(&pc, &cc, NULL);
    d->chunks = CHUNKS;
    d->nchunks = 25;
    drv_start(d, "job10", "x", 100);
    drv_run(d);
    cr_assert_eq(d->c_status, DVM_CUSTOMER_OK);
    cr_assert_eq(drv_count(d, "pay_required"), 0);
    cr_assert_eq(d->pauses, 0);
    dvm_customer_stats cs;
    dvm_customer_get_stats(d->c, &cs);
    cr_assert_eq(cs.chunks, 25);
    /* two payments up front, one more each time unconsumed sats fall to one
     * payment's worth (after chunks 10 and 20) */
    cr_assert_eq(cs.sats_paid, 40);
    cr_assert_eq(cs.total_sats, 40);
    cr_assert_eq(d->claimed_sats, 40);
    cr_assert(!d->invariant_broken);
    drv_free(d);
}

Test(session_flow, prepay_window_never_exceeds_budget)
{
    dvm_provider_config pc;
    dvm_customer_config cc;
    cfgs(&pc, &cc);
    cc.prepay_window = 5;
    drv *d = drv_new(&pc, &cc, NULL);
    d->chunks = CHUNKS;
    d->nchunks = 50;
    drv_start(d, "job11", "x", 35);
    drv_run(d);
    dvm_customer_stats cs;
    dvm_customer_get_stats(d->c, &cs);
    cr_assert_eq(cs.sats_paid, 30);
    cr_assert_eq(cs.chunks, 30);
    cr_assert_eq(d->c_status, DVM_CUSTOMER_BUDGET_EXHAUSTED);
    cr_assert(!d->invariant_broken);
    drv_free(d);
}

Test(session_flow, token_source_failure)
{
    drv *d = drv_new(NULL, NULL, NULL);
    d->fail_tokens = true;
    drv_start(d, "job12", "x", 100);
    drv_run(d);
    cr_assert_eq(d->c_status, DVM_CUSTOMER_PAYMENT_FAILED);
    cr_assert_str_eq(d->c_message, "Payment failed: mint unreachable");
    cr_assert_str_eq(d->log, "request offer stop result");
    drv_free(d);
}

/* ---- pull and callback consumption ------------------------------------ */

Test(session_flow, pull_consumption_reads_every_chunk_in_order)
{
    drv *d = drv_new(NULL, NULL, NULL);
    d->chunks = CHUNKS;
    d->nchunks = 23;
    drv_start(d, "job13", "x", 100);
    char got[512] = "";
    size_t reads = 0;
    for (int i = 0; i < 100000; i++) {
        bool moved = drv_step(d);
        dvm_str s;
        dvm_err e;
        while ((e = dvm_customer_read(d->c, &s)) == DVM_OK) {
            strncat(got, s.ptr, s.len);
            reads++;
        }
        if (e == DVM_ERR_STATE)
            break;
        cr_assert_eq(e, DVM_ERR_AGAIN);
        if (!moved)
            break;
    }
    char want[512];
    concat(want, sizeof want, 23);
    cr_assert_str_eq(got, want);
    cr_assert_eq(reads, 23);
    cr_assert_eq(dvm_customer_status_of(d->c), DVM_CUSTOMER_OK);
    dvm_str s;
    cr_assert_eq(dvm_customer_read(d->c, &s), DVM_ERR_STATE);
    drv_free(d);
}

typedef struct cbctx {
    char got[512];
    int chunks, done, errors;
    char output[512];
    uint64_t total;
} cbctx;

static void cb_chunk(void *ctx, const char *data, size_t len)
{
    cbctx *c = ctx;
    strncat(c->got, data, len);
    c->chunks++;
}

static void cb_done(void *ctx, dvm_customer_status st, const char *out, size_t len, uint64_t total)
{
    cbctx *c = ctx;
    (void)st;
    c->done++;
    snprintf(c->output, sizeof c->output, "%.*s", (int)len, out);
    c->total = total;
}

static void cb_error(void *ctx, dvm_customer_status st, const char *msg)
{
    (void)st;
    (void)msg;
    ((cbctx *)ctx)->errors++;
}

Test(session_flow, callback_consumption)
{
    cbctx ctx;
    memset(&ctx, 0, sizeof ctx);
    dvm_customer_callbacks cb = {cb_chunk, cb_done, cb_error, &ctx};
    drv *d = drv_new(NULL, NULL, &cb);
    d->chunks = CHUNKS;
    d->nchunks = 12;
    drv_start(d, "job14", "x", 100);
    drv_run(d);
    char want[512];
    concat(want, sizeof want, 12);
    cr_assert_str_eq(ctx.got, want);
    cr_assert_eq(ctx.chunks, 12);
    cr_assert_eq(ctx.done, 1);
    cr_assert_eq(ctx.errors, 0);
    cr_assert_str_eq(ctx.output, want);
    cr_assert_eq(ctx.total, 20);
    /* nothing was buffered for pulling */
    dvm_str s;
    cr_assert_eq(dvm_customer_read(d->c, &s), DVM_ERR_STATE);
    drv_free(d);
}

Test(session_flow, callback_on_error)
{
    cbctx ctx;
    memset(&ctx, 0, sizeof ctx);
    dvm_customer_callbacks cb = {cb_chunk, cb_done, cb_error, &ctx};
    dvm_provider_config pc;
    dvm_customer_config cc;
    cfgs(&pc, &cc);
    pc.sats_per_chunk = 9;
    drv *d = drv_new(&pc, &cc, &cb);
    drv_start(d, "job15", "x", 100);
    drv_run(d);
    cr_assert_eq(ctx.errors, 1);
    cr_assert_eq(ctx.done, 0);
    drv_free(d);
}

Test(session_flow, processor_splitting_a_character_still_streams_valid_utf8)
{
    static const char *const split[] = {"a\xe7", "\x99", "\xbe" "b", "\xff"};
    drv *d = drv_new(NULL, NULL, NULL);
    d->chunks = split;
    d->nchunks = 4;
    drv_start(d, "job16", "x", 100);
    char got[64] = "";
    for (int i = 0; i < 10000; i++) {
        bool moved = drv_step(d);
        dvm_str s;
        while (dvm_customer_read(d->c, &s) == DVM_OK)
            strncat(got, s.ptr, s.len);
        if (!moved)
            break;
    }
    cr_assert_eq(d->c_status, DVM_CUSTOMER_OK);
    cr_assert_str_eq(got, "a\xe7\x99\xbe" "b\xef\xbf\xbd"); /* a百b U+FFFD */
    cr_assert_eq(drv_count(d, "chunk"), 3);
    cr_assert(!d->codec_failed);
    drv_free(d);
}
