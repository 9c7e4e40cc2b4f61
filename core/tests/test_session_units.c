/* Provider and customer sessions driven message by message. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "session/customer.h"
#include "session/provider.h"
#include "wire/codec.h"

static dvm_msg mk(dvm_msg_type t, const char *id)
{
    dvm_msg m;
    memset(&m, 0, sizeof m);
    m.type = t;
    m.id = dvm_str_c(id);
    return m;
}

static bool streq(dvm_str s, const char *c)
{
    return s.len == strlen(c) && (s.len == 0 || memcmp(s.ptr, c, s.len) == 0);
}

/* Pop every action; return how many of `type` there were, copying the last
 * SEND's type into *last (if not NULL). */
static size_t drain_p(dvm_provider *p, dvm_provider_action_type type, dvm_provider_action *last)
{
    size_t n = 0;
    dvm_provider_action a;
    while (dvm_provider_next_action(p, &a)) {
        if (a.type == type) {
            n++;
            if (last)
                *last = a;
        }
    }
    return n;
}

static dvm_provider *requested(const dvm_provider_config *cfg)
{
    dvm_provider *p = dvm_provider_new(cfg);
    cr_assert_not_null(p);
    dvm_msg r = mk(DVM_MSG_REQUEST, "j1");
    r.kind = 5100;
    r.input = dvm_str_c("hi");
    r.budget = 50;
    cr_assert_eq(dvm_provider_handle_msg(p, &r, 0), DVM_OK);
    return p;
}

static uint64_t pay(dvm_provider *p, const char *token)
{
    dvm_msg m = mk(DVM_MSG_PAYMENT, "j1");
    m.token = dvm_str_c(token);
    cr_assert_eq(dvm_provider_handle_msg(p, &m, 1), DVM_OK);
    dvm_provider_action a;
    cr_assert_eq(drain_p(p, DVM_PACT_VERIFY_TOKEN, &a), 1);
    cr_assert(streq(a.token, token));
    return a.verify_id;
}

static void ok(dvm_provider *p, uint64_t vid, uint64_t amount)
{
    dvm_verify_result r = {DVM_VERIFY_OK, amount, {NULL, 0}};
    cr_assert_eq(dvm_provider_on_verify(p, vid, &r, 2), DVM_OK);
}

Test(provider, offer_carries_configured_price)
{
    dvm_provider_config c;
    dvm_provider_config_default(&c);
    c.sats_per_chunk = 2;
    c.chunks_per_payment = 7;
    dvm_provider *p = dvm_provider_new(&c);
    dvm_msg r = mk(DVM_MSG_REQUEST, "abc");
    r.kind = 5100;
    cr_assert_eq(dvm_provider_handle_msg(p, &r, 100), DVM_OK);
    dvm_provider_action a;
    cr_assert(dvm_provider_next_action(p, &a));
    cr_assert_eq(a.type, DVM_PACT_SEND);
    cr_assert_eq(a.msg.type, DVM_MSG_OFFER);
    cr_assert(streq(a.msg.id, "abc"));
    cr_assert_eq(a.msg.sats_per_chunk, 2);
    cr_assert_eq(a.msg.chunks_per_payment, 7);
    cr_assert(dvm_provider_next_action(p, &a));
    cr_assert_eq(a.type, DVM_PACT_SET_TIMER);
    cr_assert_eq(a.deadline_ms, 100 + DVM_DEFAULT_PAYMENT_TIMEOUT_MS);
    cr_assert(!dvm_provider_next_action(p, &a));
    /* a second request on the same job is refused */
    cr_assert_eq(dvm_provider_handle_msg(p, &r, 100), DVM_ERR_STATE);
    dvm_provider_free(p);
}

Test(provider, payment_missing_token)
{
    dvm_provider *p = requested(NULL);
    drain_p(p, 0, NULL);
    dvm_msg m = mk(DVM_MSG_PAYMENT, "j1");
    cr_assert_eq(dvm_provider_handle_msg(p, &m, 5), DVM_ERR_INVALID);
    dvm_provider_action a;
    cr_assert(dvm_provider_next_action(p, &a));
    cr_assert_eq(a.msg.type, DVM_MSG_ERROR);
    cr_assert(streq(a.msg.message, "Payment missing token"));
    cr_assert(!dvm_provider_next_action(p, &a));
    dvm_provider_stats st;
    dvm_provider_get_stats(p, &st);
    cr_assert_eq(st.state, DVM_PROVIDER_OFFERED);
    cr_assert_eq(st.payments, 0);
    dvm_provider_free(p);
}

Test(provider, remainder_is_carried_to_next_payment)
{
    dvm_provider_config c;
    dvm_provider_config_default(&c);
    c.sats_per_chunk = 3;
    c.chunks_per_payment = 2;
    dvm_provider *p = requested(&c);
    drain_p(p, 0, NULL);
    ok(p, pay(p, "t4"), 4);
    dvm_provider_stats st;
    dvm_provider_get_stats(p, &st);
    cr_assert_eq(st.credit_chunks, 1);
    cr_assert_eq(st.carry_sats, 1);
    cr_assert_eq(st.state, DVM_PROVIDER_STREAMING);
    ok(p, pay(p, "t5"), 5);
    dvm_provider_get_stats(p, &st);
    cr_assert_eq(st.credit_chunks, 3); /* 1 + floor((1 + 5) / 3) */
    cr_assert_eq(st.carry_sats, 0);
    cr_assert_eq(st.earned_sats, 9);
    ok(p, pay(p, "t2"), 2);
    dvm_provider_get_stats(p, &st);
    cr_assert_eq(st.credit_chunks, 3); /* 3 + floor((0 + 2) / 3) */
    cr_assert_eq(st.carry_sats, 2);
    cr_assert_eq(st.earned_sats, 11);
    cr_assert_eq(st.chunks_sent * 3 + st.credit_chunks * 3 + st.carry_sats, st.earned_sats);
    dvm_provider_free(p);
}

Test(provider, first_payment_smaller_than_a_chunk_does_not_start)
{
    dvm_provider_config c;
    dvm_provider_config_default(&c);
    c.sats_per_chunk = 5;
    dvm_provider *p = requested(&c);
    drain_p(p, 0, NULL);
    ok(p, pay(p, "t3"), 3);
    cr_assert_eq(drain_p(p, DVM_PACT_START_GENERATION, NULL), 0);
    ok(p, pay(p, "t2"), 2);
    cr_assert_eq(drain_p(p, DVM_PACT_START_GENERATION, NULL), 1);
    dvm_provider_free(p);
}

Test(provider, chunks_carry_seq_and_credit_gates_them)
{
    dvm_provider_config c;
    dvm_provider_config_default(&c);
    c.chunks_per_payment = 2;
    c.max_queued_chunks = 2;
    dvm_provider *p = requested(&c);
    drain_p(p, 0, NULL);
    ok(p, pay(p, "t"), 2);
    drain_p(p, 0, NULL);
    dvm_provider_action a;
    for (uint64_t i = 1; i <= 2; i++) {
        cr_assert_eq(dvm_provider_on_chunk(p, "ab", 2, 3), DVM_OK);
        cr_assert(dvm_provider_next_action(p, &a));
        cr_assert_eq(a.msg.type, DVM_MSG_CHUNK);
        cr_assert(a.msg.has_seq);
        cr_assert_eq(a.msg.seq, i);
        cr_assert(streq(a.msg.data, "ab"));
    }
    /* no credit: queued, pay_required, pause */
    cr_assert_eq(dvm_provider_on_chunk(p, "cd", 2, 4), DVM_OK);
    cr_assert(dvm_provider_next_action(p, &a));
    cr_assert_eq(a.msg.type, DVM_MSG_PAY_REQUIRED);
    cr_assert_eq(a.msg.earned, 2);
    cr_assert_eq(a.msg.next, 2);
    cr_assert(dvm_provider_next_action(p, &a));
    cr_assert_eq(a.type, DVM_PACT_SET_TIMER);
    cr_assert(dvm_provider_next_action(p, &a));
    cr_assert_eq(a.type, DVM_PACT_PAUSE_GENERATION);
    /* the queue is bounded */
    cr_assert_eq(dvm_provider_on_chunk(p, "ef", 2, 4), DVM_OK);
    cr_assert_eq(dvm_provider_on_chunk(p, "gh", 2, 4), DVM_ERR_LIMIT);
    dvm_provider_stats st;
    dvm_provider_get_stats(p, &st);
    cr_assert_eq(st.chunks_queued, 2);
    cr_assert_eq(st.chunks_sent, 2);
    /* paying one chunk's worth sends one queued chunk and asks again */
    ok(p, pay(p, "t1"), 1);
    cr_assert(dvm_provider_next_action(p, &a));
    cr_assert_eq(a.msg.type, DVM_MSG_PAYMENT_ACK);
    cr_assert(dvm_provider_next_action(p, &a));
    cr_assert_eq(a.msg.type, DVM_MSG_CHUNK);
    cr_assert(streq(a.msg.data, "cd"));
    cr_assert_eq(a.msg.seq, 3);
    cr_assert(dvm_provider_next_action(p, &a));
    cr_assert_eq(a.msg.type, DVM_MSG_PAY_REQUIRED);
    drain_p(p, 0, NULL);
    ok(p, pay(p, "t2"), 2);
    cr_assert_eq(drain_p(p, DVM_PACT_RESUME_GENERATION, NULL), 1);
    dvm_provider_get_stats(p, &st);
    cr_assert_eq(st.chunks_sent, 4);
    cr_assert_eq(st.credit_chunks, 1);
    cr_assert_eq(st.state, DVM_PROVIDER_STREAMING);
    dvm_provider_free(p);
}

Test(provider, stop_while_verification_pending_claims_after_outcome)
{
    dvm_provider *p = requested(NULL);
    drain_p(p, 0, NULL);
    ok(p, pay(p, "first"), 10);
    drain_p(p, 0, NULL);
    uint64_t vid = pay(p, "second");
    dvm_msg s = mk(DVM_MSG_STOP, "j1");
    cr_assert_eq(dvm_provider_handle_msg(p, &s, 9), DVM_OK);
    dvm_provider_action a;
    cr_assert_eq(drain_p(p, DVM_PACT_DONE, NULL), 0);
    dvm_provider_stats st;
    dvm_provider_get_stats(p, &st);
    cr_assert_eq(st.state, DVM_PROVIDER_CLOSING);
    /* payments after the end are refused */
    dvm_msg m = mk(DVM_MSG_PAYMENT, "j1");
    m.token = dvm_str_c("late");
    cr_assert_eq(dvm_provider_handle_msg(p, &m, 9), DVM_ERR_STATE);
    ok(p, vid, 10);
    cr_assert(dvm_provider_next_action(p, &a));
    cr_assert_eq(a.type, DVM_PACT_CLAIM);
    cr_assert_eq(a.n_tokens, 2);
    cr_assert_eq(a.claim_sats, 20);
    cr_assert(streq(a.tokens[0], "first"));
    cr_assert(streq(a.tokens[1], "second"));
    cr_assert(dvm_provider_next_action(p, &a));
    cr_assert_eq(a.type, DVM_PACT_DONE);
    cr_assert_eq(a.end, DVM_PROVIDER_END_STOPPED);
    dvm_provider_free(p);
}

Test(provider, claimed_first_tokens_are_not_claimed_again)
{
    dvm_provider *p = requested(NULL);
    drain_p(p, 0, NULL);
    uint64_t v = pay(p, "swapme");
    dvm_verify_result r = {DVM_VERIFY_SWAP_FIRST, 0, {NULL, 0}};
    cr_assert_eq(dvm_provider_on_verify(p, v, &r, 3), DVM_OK);
    cr_assert_eq(drain_p(p, DVM_PACT_SEND, NULL), 0);
    r.outcome = DVM_VERIFY_OK_CLAIMED;
    r.amount = 10;
    cr_assert_eq(dvm_provider_on_verify(p, v, &r, 4), DVM_OK);
    cr_assert_eq(dvm_provider_on_verify(p, v, &r, 4), DVM_ERR_NOT_FOUND);
    cr_assert_eq(drain_p(p, DVM_PACT_START_GENERATION, NULL), 1);
    cr_assert_eq(dvm_provider_on_generation_done(p, 5), DVM_OK);
    cr_assert_eq(drain_p(p, DVM_PACT_CLAIM, NULL), 0);
    dvm_provider_stats st;
    dvm_provider_get_stats(p, &st);
    cr_assert_eq(st.state, DVM_PROVIDER_DONE);
    cr_assert_eq(st.earned_sats, 10);
    dvm_provider_free(p);
}

Test(provider, abort_claims_without_sending)
{
    dvm_provider *p = requested(NULL);
    drain_p(p, 0, NULL);
    ok(p, pay(p, "tok"), 10);
    drain_p(p, 0, NULL);
    cr_assert_eq(dvm_provider_abort(p, 7), DVM_OK);
    cr_assert_eq(drain_p(p, DVM_PACT_SEND, NULL), 0);
    cr_assert_eq(dvm_provider_abort(p, 7), DVM_ERR_STATE);
    dvm_provider_free(p);
    p = requested(NULL);
    drain_p(p, 0, NULL);
    ok(p, pay(p, "tok"), 10);
    drain_p(p, 0, NULL);
    cr_assert_eq(dvm_provider_abort(p, 7), DVM_OK);
    dvm_provider_action a;
    cr_assert(dvm_provider_next_action(p, &a));
    cr_assert_eq(a.type, DVM_PACT_CANCEL_GENERATION);
    cr_assert(dvm_provider_next_action(p, &a));
    cr_assert_eq(a.type, DVM_PACT_CLAIM);
    cr_assert_eq(a.claim_sats, 10);
    cr_assert(dvm_provider_next_action(p, &a));
    cr_assert_eq(a.type, DVM_PACT_DONE);
    cr_assert_eq(a.end, DVM_PROVIDER_END_ABORTED);
    dvm_provider_free(p);
}

Test(provider, output_limit_ends_job)
{
    dvm_provider_config c;
    dvm_provider_config_default(&c);
    c.max_output_bytes = 5;
    dvm_provider *p = requested(&c);
    drain_p(p, 0, NULL);
    ok(p, pay(p, "tok"), 10);
    drain_p(p, 0, NULL);
    cr_assert_eq(dvm_provider_on_chunk(p, "abc", 3, 3), DVM_OK);
    cr_assert_eq(dvm_provider_on_chunk(p, "def", 3, 3), DVM_OK);
    dvm_provider_action a;
    cr_assert(dvm_provider_next_action(p, &a));
    cr_assert_eq(a.msg.type, DVM_MSG_CHUNK);
    cr_assert(dvm_provider_next_action(p, &a));
    cr_assert_eq(a.msg.type, DVM_MSG_ERROR);
    cr_assert(streq(a.msg.message, "Output limit exceeded (5 bytes)"));
    cr_assert(dvm_provider_next_action(p, &a));
    cr_assert_eq(a.msg.type, DVM_MSG_RESULT);
    cr_assert(streq(a.msg.output, "abc"));
    cr_assert_eq(drain_p(p, DVM_PACT_DONE, NULL), 1);
    dvm_provider_free(p);
}

Test(provider, rejects_messages_it_should_never_get)
{
    dvm_provider *p = dvm_provider_new(NULL);
    dvm_msg m = mk(DVM_MSG_PAYMENT, "j1");
    m.token = dvm_str_c("x");
    cr_assert_eq(dvm_provider_handle_msg(p, &m, 0), DVM_ERR_PROTO);
    m = mk(DVM_MSG_CHUNK, "j1");
    cr_assert_eq(dvm_provider_handle_msg(p, &m, 0), DVM_ERR_PROTO);
    cr_assert_eq(dvm_provider_on_chunk(p, "x", 1, 0), DVM_ERR_STATE);
    dvm_provider_action a;
    cr_assert(!dvm_provider_next_action(p, &a));
    dvm_provider_free(p);
    dvm_provider_config c;
    dvm_provider_config_default(&c);
    c.sats_per_chunk = 0;
    cr_assert_null(dvm_provider_new(&c));
}

/* ---- customer alone --------------------------------------------------- */

static dvm_customer *offered(const dvm_customer_config *cc, uint64_t budget, uint64_t spc,
                             uint64_t cpp)
{
    dvm_customer *c = dvm_customer_new(cc, NULL);
    cr_assert_eq(dvm_customer_start(c, dvm_str_c("j1"), 5100, dvm_str_c("x"), budget, 0), DVM_OK);
    dvm_msg o = mk(DVM_MSG_OFFER, "j1");
    o.sats_per_chunk = spc;
    o.chunks_per_payment = cpp;
    dvm_customer_handle_msg(c, &o, 1);
    return c;
}

static size_t drain_c(dvm_customer *c, dvm_customer_action_type t, dvm_customer_action *last)
{
    size_t n = 0;
    dvm_customer_action a = {0};
    while (dvm_customer_next_action(c, &a))
        if (a.type == t) {
            n++;
            if (last)
                *last = a;
        }
    return n;
}

Test(customer, request_carries_kind_input_budget)
{
    dvm_customer *c = dvm_customer_new(NULL, NULL);
    cr_assert_eq(dvm_customer_start(c, dvm_str_c("id9"), 5302, dvm_str_c("Translate"), 77, 0),
                 DVM_OK);
    dvm_customer_action a = {0};
    cr_assert(dvm_customer_next_action(c, &a));
    cr_assert_eq(a.type, DVM_CACT_SEND);
    cr_assert_eq(a.msg.type, DVM_MSG_REQUEST);
    cr_assert(streq(a.msg.id, "id9"));
    cr_assert(streq(a.msg.input, "Translate"));
    cr_assert_eq(a.msg.kind, 5302);
    cr_assert_eq(a.msg.budget, 77);
    dvm_customer_free(c);
}

Test(customer, bad_offer_zero_payment)
{
    dvm_customer *c = offered(NULL, 100, 1, 0);
    dvm_customer_action a = {0};
    cr_assert_eq(drain_c(c, DVM_CACT_SEND, &a), 2);
    cr_assert_eq(a.msg.type, DVM_MSG_STOP);
    cr_assert_eq(dvm_customer_status_of(c), DVM_CUSTOMER_BAD_OFFER);
    cr_assert_str_eq(dvm_customer_reason(c), "Invalid offer: sats_per_payment = 0");
    dvm_customer_free(c);
}

Test(customer, asks_for_exactly_one_payment)
{
    dvm_customer *c = offered(NULL, 100, 3, 4);
    dvm_customer_action a = {0};
    cr_assert_eq(drain_c(c, DVM_CACT_NEED_TOKEN, &a), 1);
    cr_assert_eq(a.amount, 12);
    dvm_customer_stats st;
    dvm_customer_get_stats(c, &st);
    cr_assert_eq(st.sats_committed, 12);
    cr_assert_eq(st.sats_paid, 0);
    cr_assert_eq(dvm_customer_on_token(c, a.token_req, dvm_str_c("tokA"), 2), DVM_OK);
    cr_assert_eq(dvm_customer_on_token(c, a.token_req, dvm_str_c("tokA"), 2), DVM_ERR_NOT_FOUND);
    dvm_customer_action s = {0};
    cr_assert_eq(drain_c(c, DVM_CACT_SEND, &s), 1);
    cr_assert_eq(s.msg.type, DVM_MSG_PAYMENT);
    cr_assert(streq(s.msg.token, "tokA"));
    dvm_customer_get_stats(c, &st);
    cr_assert_eq(st.sats_paid, 12);
    dvm_customer_free(c);
}

static void feed_chunk(dvm_customer *c, uint64_t seq, bool has, dvm_err want)
{
    dvm_msg m = mk(DVM_MSG_CHUNK, "j1");
    m.data = dvm_str_c("x");
    m.has_seq = has;
    m.seq = seq;
    cr_assert_eq(dvm_customer_handle_msg(c, &m, 3), want, "seq %llu", (unsigned long long)seq);
}

/* Messages are matched to the job by id, compared 8 bytes at a time: an id
 * of any length that differs in any one byte is another job's. */
Test(customer, other_job_ids_are_not_found)
{
    char id[48], other[48];
    for (size_t n = 1; n < sizeof id; n++) {
        for (size_t i = 0; i < n; i++)
            id[i] = (char)('a' + (i * 7) % 26);
        id[n] = 0;
        dvm_customer *c = dvm_customer_new(NULL, NULL);
        cr_assert_eq(dvm_customer_start(c, dvm_str_c(id), 5100, dvm_str_c("x"), 10, 0), DVM_OK);
        for (size_t k = 0; k < n; k++) {
            memcpy(other, id, n + 1);
            other[k] = (char)(other[k] == 'z' ? 'y' : other[k] + 1);
            dvm_msg o = mk(DVM_MSG_OFFER, other);
            o.sats_per_chunk = 1;
            o.chunks_per_payment = 10;
            cr_assert_eq(dvm_customer_handle_msg(c, &o, 1), DVM_ERR_NOT_FOUND, "len %zu at %zu", n, k);
        }
        dvm_msg shorter = mk(DVM_MSG_OFFER, "");
        shorter.id.ptr = id;
        shorter.id.len = n - 1;
        shorter.sats_per_chunk = 1;
        shorter.chunks_per_payment = 10;
        cr_assert_eq(dvm_customer_handle_msg(c, &shorter, 1), DVM_ERR_NOT_FOUND);
        dvm_msg o = mk(DVM_MSG_OFFER, id);
        o.sats_per_chunk = 1;
        o.chunks_per_payment = 10;
        cr_assert_eq(dvm_customer_handle_msg(c, &o, 1), DVM_OK, "len %zu", n);
        dvm_customer_free(c);
    }
}

Test(customer, seq_gap_is_an_error)
{
    dvm_customer *c = offered(NULL, 100, 1, 10);
    dvm_customer_action a = {0};
    drain_c(c, DVM_CACT_NEED_TOKEN, &a);
    dvm_customer_on_token(c, a.token_req, dvm_str_c("t"), 2);
    feed_chunk(c, 1, true, DVM_OK);
    feed_chunk(c, 0, false, DVM_OK); /* no seq: not checked, counted */
    feed_chunk(c, 4, true, DVM_ERR_PROTO);
    cr_assert_eq(dvm_customer_status_of(c), DVM_CUSTOMER_PROTOCOL);
    cr_assert_str_eq(dvm_customer_reason(c), "Chunk sequence gap: expected 3, got 4");
    dvm_customer_action s = {0};
    drain_c(c, DVM_CACT_SEND, &s);
    cr_assert_eq(s.msg.type, DVM_MSG_STOP);
    feed_chunk(c, 5, true, DVM_ERR_STATE);
    dvm_customer_free(c);
}

Test(customer, seq_duplicate_is_an_error)
{
    dvm_customer *c = offered(NULL, 100, 1, 10);
    dvm_customer_action a = {0};
    drain_c(c, DVM_CACT_NEED_TOKEN, &a);
    dvm_customer_on_token(c, a.token_req, dvm_str_c("t"), 2);
    feed_chunk(c, 1, true, DVM_OK);
    feed_chunk(c, 2, true, DVM_OK);
    feed_chunk(c, 2, true, DVM_ERR_PROTO);
    cr_assert_eq(dvm_customer_status_of(c), DVM_CUSTOMER_PROTOCOL);
    cr_assert_str_eq(dvm_customer_reason(c), "Duplicate chunk: seq 2 after 2");
    dvm_customer_free(c);
}

Test(customer, silent_provider_times_out)
{
    dvm_customer_config cc;
    dvm_customer_config_default(&cc);
    cc.idle_timeout_ms = 500;
    dvm_customer *c = dvm_customer_new(&cc, NULL);
    dvm_customer_start(c, dvm_str_c("j1"), 5100, dvm_str_c("x"), 10, 1000);
    cr_assert_eq(dvm_customer_deadline(c), 1500);
    drain_c(c, 0, NULL);
    cr_assert_eq(dvm_customer_on_timer(c, 1499), DVM_OK);
    cr_assert_eq(dvm_customer_status_of(c), DVM_CUSTOMER_RUNNING);
    /* activity moves the deadline: the timer re-arms instead of firing */
    dvm_msg o = mk(DVM_MSG_OFFER, "j1");
    o.sats_per_chunk = 1;
    o.chunks_per_payment = 10;
    dvm_customer_handle_msg(c, &o, 1400);
    drain_c(c, 0, NULL);
    cr_assert_eq(dvm_customer_on_timer(c, 1500), DVM_OK);
    dvm_customer_action a = {0};
    cr_assert_eq(drain_c(c, DVM_CACT_SET_TIMER, &a), 1);
    cr_assert_eq(a.deadline_ms, 1900);
    cr_assert_eq(dvm_customer_on_timer(c, 1900), DVM_OK);
    cr_assert_eq(dvm_customer_status_of(c), DVM_CUSTOMER_TIMEOUT);
    dvm_customer_free(c);
}

Test(customer, token_arriving_after_end_is_returned)
{
    dvm_customer *c = offered(NULL, 100, 1, 10);
    dvm_customer_action a = {0};
    drain_c(c, DVM_CACT_NEED_TOKEN, &a);
    dvm_msg e = mk(DVM_MSG_ERROR, "j1");
    e.message = dvm_str_c("boom");
    dvm_customer_handle_msg(c, &e, 2);
    cr_assert_eq(dvm_customer_status_of(c), DVM_CUSTOMER_PROVIDER_ERROR);
    drain_c(c, 0, NULL);
    cr_assert_eq(dvm_customer_on_token(c, a.token_req, dvm_str_c("keepme"), 3), DVM_OK);
    dvm_customer_action r = {0};
    cr_assert_eq(drain_c(c, DVM_CACT_RETURN_TOKEN, &r), 1);
    cr_assert(streq(r.token, "keepme"));
    cr_assert_eq(r.amount, 10);
    dvm_customer_stats st;
    dvm_customer_get_stats(c, &st);
    cr_assert_eq(st.sats_paid, 0);
    cr_assert_eq(st.sats_committed, 0);
    dvm_customer_free(c);
}

Test(customer, other_job_ids_are_ignored)
{
    dvm_customer *c = offered(NULL, 100, 1, 10);
    dvm_msg m = mk(DVM_MSG_RESULT, "other");
    cr_assert_eq(dvm_customer_handle_msg(c, &m, 2), DVM_ERR_NOT_FOUND);
    cr_assert_eq(dvm_customer_status_of(c), DVM_CUSTOMER_RUNNING);
    dvm_customer_free(c);
}

Test(customer, early_pay_required_is_not_paid_twice)
{
    dvm_customer *c = offered(NULL, 100, 1, 10);
    dvm_customer_action a = {0};
    drain_c(c, DVM_CACT_NEED_TOKEN, &a);
    dvm_customer_on_token(c, a.token_req, dvm_str_c("t"), 2);
    for (uint64_t i = 1; i <= 5; i++)
        feed_chunk(c, i, true, DVM_OK);
    drain_c(c, 0, NULL);
    dvm_msg pr = mk(DVM_MSG_PAY_REQUIRED, "j1");
    pr.earned = 10;
    pr.next = 10;
    cr_assert_eq(dvm_customer_handle_msg(c, &pr, 3), DVM_OK);
    cr_assert_eq(drain_c(c, DVM_CACT_NEED_TOKEN, NULL), 0);
    for (uint64_t i = 6; i <= 10; i++)
        feed_chunk(c, i, true, DVM_OK);
    cr_assert_eq(dvm_customer_handle_msg(c, &pr, 3), DVM_OK);
    cr_assert_eq(drain_c(c, DVM_CACT_NEED_TOKEN, NULL), 1);
    dvm_customer_free(c);
}

Test(provider, messages_for_another_job_id_are_ignored)
{
    dvm_provider *p = requested(NULL);
    drain_p(p, 0, NULL);
    dvm_msg m = mk(DVM_MSG_STOP, "other");
    cr_assert_eq(dvm_provider_handle_msg(p, &m, 1), DVM_ERR_NOT_FOUND);
    dvm_provider_action a;
    cr_assert(!dvm_provider_next_action(p, &a));
    dvm_provider_stats st;
    dvm_provider_get_stats(p, &st);
    cr_assert_eq(st.state, DVM_PROVIDER_OFFERED);
    dvm_provider_free(p);
}

Test(provider, processor_bytes_are_repaired_for_the_wire)
{
    dvm_provider *p = requested(NULL);
    drain_p(p, 0, NULL);
    ok(p, pay(p, "tok"), 10);
    drain_p(p, 0, NULL);
    const char *s = "a\xe5\xad\xa4z"; /* "a孤z" cut inside 孤 */
    dvm_provider_action a;
    cr_assert_eq(dvm_provider_on_chunk(p, s, 2, 3), DVM_OK);
    cr_assert(dvm_provider_next_action(p, &a));
    cr_assert(streq(a.msg.data, "a"));
    cr_assert_eq(dvm_provider_on_chunk(p, s + 2, 1, 3), DVM_OK); /* still partial */
    cr_assert(!dvm_provider_next_action(p, &a));
    cr_assert_eq(dvm_provider_on_chunk(p, s + 3, 2, 3), DVM_OK);
    cr_assert(dvm_provider_next_action(p, &a));
    cr_assert(streq(a.msg.data, "\xe5\xad\xa4z"));
    cr_assert_eq(a.msg.seq, 2);
    /* invalid bytes become U+FFFD */
    cr_assert_eq(dvm_provider_on_chunk(p, "\xff" "b\x80", 3, 3), DVM_OK);
    cr_assert(dvm_provider_next_action(p, &a));
    cr_assert(streq(a.msg.data, "\xef\xbf\xbd" "b\xef\xbf\xbd"));
    dvm_provider_free(p);
}

/* ---- the fused chunk path ------------------------------------------- */

/* Drain every action: SEND messages are encoded onto *wire and logged
 * with the encoder's result (chunks only when encoding fails: the wire
 * shows them), everything else is logged by type and its numbers. */
static void drain_encode(dvm_provider *p, dvm_buf *wire, dvm_buf *log)
{
    dvm_provider_action a;
    while (dvm_provider_next_action(p, &a)) {
        char line[96];
        int n;
        if (a.type == DVM_PACT_SEND) {
            dvm_err e = dvm_msg_encode(&a.msg, wire);
            if (a.msg.type == DVM_MSG_CHUNK && e == DVM_OK)
                continue; /* compared on the wire (the fused path has no action) */
            n = snprintf(line, sizeof line, "send %d -> %d\n", (int)a.msg.type, (int)e);
        } else {
            n = snprintf(line, sizeof line, "act %d %llu %llu %llu %d\n", (int)a.type,
                         (unsigned long long)a.verify_id, (unsigned long long)a.deadline_ms,
                         (unsigned long long)a.claim_sats, (int)a.end);
        }
        cr_assert_eq(dvm_buf_append(log, line, (size_t)n), DVM_OK);
    }
}

/* Random chunks (valid and invalid UTF-8, characters cut across chunks,
 * escapes, empty ones), payments that run out, a small output limit: the
 * fused dvm_provider_on_chunk_encode gives the same return codes, wire
 * bytes, actions and counters as on_chunk + next_action + dvm_msg_encode,
 * and both of its branches are taken. */
Test(provider, fused_chunk_encode_equals_the_action_path)
{
    static const uint8_t alphabet[] = {'a', 'b', '"', '\\', '\n', 0x01, 0xE5, 0xAD, 0xA4, 0xFF, 0x80, 'z'};
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    size_t fused_hits = 0, fallbacks = 0;
    for (int round = 0; round < 40; round++) {
        dvm_provider_config cfg;
        dvm_provider_config_default(&cfg);
        cfg.chunks_per_payment = 1 + (uint64_t)(round % 5);
        cfg.max_queued_chunks = 3;
        cfg.max_output_bytes = round % 3 == 0 ? 300 : 4096;
        cfg.fix_utf8 = round % 4 != 3;
        cfg.send_seq = round % 7 != 6;
        dvm_provider *pa = requested(&cfg), *pb = requested(&cfg);
        dvm_buf wa, wb, la, lb;
        dvm_buf_init(&wa, 0);
        dvm_buf_init(&wb, round % 6 == 5 ? 700 : 0); /* a wire buffer that fills up */
        dvm_buf_init(&la, 0);
        dvm_buf_init(&lb, 0);
        wa.max = wb.max;
        drain_encode(pa, &wa, &la);
        drain_encode(pb, &wb, &lb);
        ok(pa, pay(pa, "tok"), 2);
        ok(pb, pay(pb, "tok"), 2);
        for (int step = 0; step < 200; step++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            unsigned r = (unsigned)(rng >> 33);
            if (r % 11 == 0) { /* pay for a few more chunks */
                uint64_t va = 0, vb = 0;
                dvm_msg m = mk(DVM_MSG_PAYMENT, "j1");
                m.token = dvm_str_c("tok");
                dvm_err ea = dvm_provider_handle_msg(pa, &m, 5), eb = dvm_provider_handle_msg(pb, &m, 5);
                cr_assert_eq(ea, eb);
                dvm_provider_action a;
                while (dvm_provider_next_action(pa, &a))
                    if (a.type == DVM_PACT_VERIFY_TOKEN)
                        va = a.verify_id;
                while (dvm_provider_next_action(pb, &a))
                    if (a.type == DVM_PACT_VERIFY_TOKEN)
                        vb = a.verify_id;
                cr_assert_eq(va, vb);
                if (va) {
                    dvm_verify_result vr = {DVM_VERIFY_OK, 1 + r % 4, {NULL, 0}};
                    cr_assert_eq(dvm_provider_on_verify(pa, va, &vr, 6),
                                 dvm_provider_on_verify(pb, vb, &vr, 6));
                }
            } else {
                uint8_t chunk[24];
                size_t len = (r >> 4) % (sizeof chunk + 1);
                for (size_t i = 0; i < len; i++) {
                    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
                    unsigned c = (unsigned)(rng >> 40);
                    chunk[i] = c % 4 ? (uint8_t)('a' + c % 26) : alphabet[(c >> 8) % sizeof alphabet];
                }
                size_t before = wb.len;
                dvm_err ea = dvm_provider_on_chunk(pa, (const char *)chunk, len, 7);
                dvm_err eb = dvm_provider_on_chunk_encode(pb, (const char *)chunk, len, 7, &wb);
                cr_assert_eq(ea, eb, "round %d step %d: %d vs %d", round, step, (int)ea, (int)eb);
                if (wb.len > before)
                    fused_hits++;
                else
                    fallbacks++;
            }
            drain_encode(pa, &wa, &la);
            drain_encode(pb, &wb, &lb);
            cr_assert_eq(wa.len, wb.len, "round %d step %d", round, step);
            cr_assert(wa.len == 0 || memcmp(wa.data, wb.data, wa.len) == 0);
            dvm_provider_stats sa, sb;
            dvm_provider_get_stats(pa, &sa);
            dvm_provider_get_stats(pb, &sb);
            cr_assert(memcmp(&sa, &sb, sizeof sa) == 0, "round %d step %d", round, step);
        }
        cr_assert_eq(dvm_provider_on_generation_done(pa, 9), dvm_provider_on_generation_done(pb, 9));
        drain_encode(pa, &wa, &la);
        drain_encode(pb, &wb, &lb);
        cr_assert_eq(wa.len, wb.len);
        cr_assert(wa.len == 0 || memcmp(wa.data, wb.data, wa.len) == 0);
        cr_assert_eq(la.len, lb.len);
        cr_assert(la.len == 0 || memcmp(la.data, lb.data, la.len) == 0);
        dvm_buf_free(&wa);
        dvm_buf_free(&wb);
        dvm_buf_free(&la);
        dvm_buf_free(&lb);
        dvm_provider_free(pa);
        dvm_provider_free(pb);
    }
    cr_assert_gt(fused_hits, 100);
    cr_assert_gt(fallbacks, 100);
}

/* ---- the fused customer line path ------------------------------------ */

typedef struct seen {
    dvm_buf data, log;
} seen;

static void seen_chunk(void *ctx, const char *data, size_t len)
{
    seen *s = ctx;
    cr_assert_eq(dvm_buf_append(&s->data, data, len), DVM_OK);
    cr_assert_eq(dvm_buf_append(&s->data, "|", 1), DVM_OK);
}

static void seen_error(void *ctx, dvm_customer_status st, const char *message)
{
    seen *s = ctx;
    char line[320];
    int n = snprintf(line, sizeof line, "error %d %s\n", (int)st, message);
    cr_assert_eq(dvm_buf_append(&s->log, line, (size_t)n), DVM_OK);
}

/* A customer of job `id` that has paid (in PAYING, chunks accepted). */
static dvm_customer *paying(dvm_str id, seen *s, uint64_t cpp, uint64_t now)
{
    dvm_customer_callbacks cb = {.on_chunk = seen_chunk, .on_error = seen_error, .ctx = s};
    dvm_customer *c = dvm_customer_new(NULL, &cb);
    cr_assert_eq(dvm_customer_start(c, id, 5100, dvm_str_c("x"), 1000, now), DVM_OK);
    dvm_msg o = {0};
    o.type = DVM_MSG_OFFER;
    o.id = id;
    o.sats_per_chunk = 1;
    o.chunks_per_payment = cpp;
    cr_assert_eq(dvm_customer_handle_msg(c, &o, now), DVM_OK);
    dvm_customer_action a;
    cr_assert_eq(drain_c(c, DVM_CACT_NEED_TOKEN, &a), 1);
    cr_assert_eq(dvm_customer_on_token(c, a.token_req, dvm_str_c("tok"), now), DVM_OK);
    drain_c(c, 0, NULL);
    return c;
}

static void log_actions(dvm_customer *c, dvm_buf *log)
{
    dvm_customer_action a;
    while (dvm_customer_next_action(c, &a)) {
        char line[96];
        int n = snprintf(line, sizeof line, "act %d %d %llu\n", (int)a.type,
                         a.type == DVM_CACT_SEND ? (int)a.msg.type : -1,
                         (unsigned long long)a.token_req);
        cr_assert_eq(dvm_buf_append(log, line, (size_t)n), DVM_OK);
    }
}

/* Lines of this job's chunks (with right, wrong and no seq, escapes in the
 * data), other jobs' chunks, the same id spelt with other escapes, other
 * types, and random corruptions and truncations of all of them: the fused
 * dvm_customer_handle_line gives the same return codes, decode results and
 * reasons, chunks, actions, errors and counters as dvm_msg_decode +
 * dvm_customer_handle_msg, and its fused branch is taken. */
Test(customer, fused_handle_line_equals_decode_and_handle_msg)
{
    const dvm_str id = {"j \"1\"\xc3\xa9\x01", 9};
    static const char *const datas[] = {"x", "", "0123456789abcdef0123456789abcdef!",
                                        "tab\there \"q\" \\ \xe7\x99\xbe\x01", "\n",
                                        "caf\xc3\xa9 \xe7\x99\xbe 0123456789abcdef \xf0\x9f\x98\x80"};
    const char *fixed_lines[] = {
        "{\"type\":\"chunk\",\"id\":\"j \\\"1\\\"\\u00e9\\u0001\",\"data\":\"v\",\"seq\":1}",
        "{\"type\":\"chunk\",\"id\":\"j \\\"1\\\"\xc3\xa9\\u0001\",\"data\":\"v\",\"seq\":01}",
        "{\"type\":\"chunk\",\"id\":\"j \\\"1\\\"\xc3\xa9\\u0001\",\"data\":\"v\",\"seq\":1} ",
        "{\"type\":\"chunk\",\"id\":\"j \\\"1\\\"\xc3\xa9\\u0001x\",\"data\":\"v\",\"seq\":1}",
        "{\"type\":\"chunk\",\"id\":\"j \\\"1\\\"\xc3\xa9\\u0001\",\"data\":\"\\ud83d\\ude00\",\"seq\":1}",
        "{\"type\":\"chunk\",\"id\":\"j \\\"1\\\"\xc3\xa9\\u0001\",\"data\":\"v\",\"seq\":1,\"x\":2}",
        "{\"type\":\"payment_ack\",\"id\":\"j \\\"1\\\"\xc3\xa9\\u0001\",\"amount\":5}",
        "{\"type\":\"pay_required\",\"id\":\"j \\\"1\\\"\xc3\xa9\\u0001\",\"earned\":5,\"next\":5}",
        "not json",
        "",
    };
    uint64_t rng = 0x2545F4914F6CDD1DULL;
    size_t fused = 0;
    for (int round = 0; round < 30; round++) {
        seen sa, sb;
        dvm_buf_init(&sa.data, 0);
        dvm_buf_init(&sa.log, 0);
        dvm_buf_init(&sb.data, 0);
        dvm_buf_init(&sb.log, 0);
        dvm_customer *ca = paying(id, &sa, 1000, 1), *cb = paying(id, &sb, 1000, 1);
        dvm_msg_decoder da, db;
        dvm_msg_decoder_init(&da, round % 5 == 4 ? 60 : 0);
        dvm_msg_decoder_init(&db, da.max_len);
        dvm_buf line;
        dvm_buf_init(&line, 0);
        uint64_t seq = 1;
        for (int step = 0; step < 120; step++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            unsigned r = (unsigned)(rng >> 33);
            dvm_buf_reset(&line);
            if (r % 4 != 0) { /* a chunk line, usually this job's, seq usually right */
                dvm_str jid = r % 9 == 1 ? dvm_str_c("j1") : id;
                uint64_t s = r % 13 == 2 ? seq + 1 : r % 17 == 3 ? seq - 1 : seq;
                cr_assert_eq(dvm_msg_encode_chunk(&line, jid, dvm_str_c(datas[(r >> 4) % 6]),
                                                  r % 11 != 5, s ? s : 1),
                             DVM_OK);
                line.len--; /* without the newline */
            } else {
                const char *f = fixed_lines[(r >> 4) % (sizeof fixed_lines / sizeof fixed_lines[0])];
                cr_assert_eq(dvm_buf_append(&line, f, strlen(f)), DVM_OK);
            }
            if (r % 7 == 0 && line.len) { /* corrupt one byte */
                rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
                line.data[(rng >> 20) % line.len] = (uint8_t)(rng >> 50);
            } else if (r % 19 == 0 && line.len) { /* truncate */
                line.len = (size_t)(rng >> 24) % line.len;
            }
            char ra[DVM_REASON_MAX] = "unset", rb[DVM_REASON_MAX] = "unset";
            dvm_msg m;
            dvm_err dea = dvm_msg_decode(&da, line.data, line.len, &m, ra, sizeof ra);
            dvm_err ea = dea ? dea : dvm_customer_handle_msg(ca, &m, 7);
            dvm_err deb = DVM_ERR_AGAIN;
            uint64_t hits = db.fast_hits;
            dvm_err eb = dvm_customer_handle_line(cb, &db, line.data, line.len, 7, rb, sizeof rb, &deb);
            cr_assert_eq(ea, eb, "round %d step %d: %d vs %d", round, step, (int)ea, (int)eb);
            cr_assert_eq(dea, deb);
            cr_assert_str_eq(ra, rb);
            if (db.fast_hits > hits)
                fused++;
            if (ea == DVM_OK && dea == DVM_OK && m.type == DVM_MSG_CHUNK)
                seq++;
            log_actions(ca, &sa.log);
            log_actions(cb, &sb.log);
            dvm_customer_stats xa, xb;
            dvm_customer_get_stats(ca, &xa);
            dvm_customer_get_stats(cb, &xb);
            cr_assert(memcmp(&xa, &xb, sizeof xa) == 0, "round %d step %d", round, step);
        }
        cr_assert_eq(sa.data.len, sb.data.len);
        cr_assert(sa.data.len == 0 || memcmp(sa.data.data, sb.data.data, sa.data.len) == 0);
        cr_assert_eq(sa.log.len, sb.log.len);
        cr_assert(sa.log.len == 0 || memcmp(sa.log.data, sb.log.data, sa.log.len) == 0);
        dvm_buf_free(&line);
        dvm_msg_decoder_free(&da);
        dvm_msg_decoder_free(&db);
        dvm_customer_free(ca);
        dvm_customer_free(cb);
        dvm_buf_free(&sa.data);
        dvm_buf_free(&sa.log);
        dvm_buf_free(&sb.data);
        dvm_buf_free(&sb.log);
    }
    cr_assert_gt(fused, 200);
}
