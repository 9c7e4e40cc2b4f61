/* The agent: jobs per (connection, job id), one shared capacity counter. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "session/agent.h"

static dvm_msg mk(dvm_msg_type t, const char *id)
{
    dvm_msg m;
    memset(&m, 0, sizeof m);
    m.type = t;
    m.id = dvm_str_c(id);
    return m;
}

static dvm_msg req(const char *id)
{
    dvm_msg m = mk(DVM_MSG_REQUEST, id);
    m.kind = 5100;
    m.input = dvm_str_c("prompt");
    m.budget = 50;
    return m;
}

static bool streq(dvm_str s, const char *c)
{
    return s.len == strlen(c) && (s.len == 0 || memcmp(s.ptr, c, s.len) == 0);
}

typedef struct seen {
    size_t sends, errors, offers, claims, dones, verifies, results;
    uint64_t claim_sats;
    char last_error[128];
    char last_error_id[64];
    uint64_t last_conn, last_job, verify_id;
} seen;

static seen drain(dvm_agent *a)
{
    seen s;
    memset(&s, 0, sizeof s);
    dvm_agent_action x;
    while (dvm_agent_next_action(a, &x)) {
        s.last_conn = x.conn;
        switch (x.act.type) {
        case DVM_PACT_SEND:
            s.sends++;
            if (x.act.msg.type == DVM_MSG_ERROR) {
                s.errors++;
                snprintf(s.last_error, sizeof s.last_error, "%.*s", (int)x.act.msg.message.len,
                         x.act.msg.message.ptr ? x.act.msg.message.ptr : "");
                snprintf(s.last_error_id, sizeof s.last_error_id, "%.*s", (int)x.act.msg.id.len,
                         x.act.msg.id.ptr ? x.act.msg.id.ptr : "");
            }
            if (x.act.msg.type == DVM_MSG_OFFER) {
                s.offers++;
                s.last_job = x.job;
            }
            if (x.act.msg.type == DVM_MSG_RESULT)
                s.results++;
            break;
        case DVM_PACT_VERIFY_TOKEN:
            s.verifies++;
            s.verify_id = x.act.verify_id;
            s.last_job = x.job;
            break;
        case DVM_PACT_CLAIM:
            s.claims++;
            s.claim_sats += x.act.claim_sats;
            break;
        case DVM_PACT_DONE: s.dones++; break;
        default: break;
        }
    }
    return s;
}

static dvm_agent *agent(size_t max_jobs)
{
    dvm_agent_config c;
    dvm_agent_config_default(&c);
    c.max_jobs = max_jobs;
    dvm_agent *a = dvm_agent_new(&c);
    cr_assert_not_null(a);
    return a;
}

Test(agent, no_capacity_message_is_exact)
{
    dvm_agent *a = agent(2);
    dvm_msg r1 = req("a"), r2 = req("b"), r3 = req("c");
    cr_assert_eq(dvm_agent_handle_msg(a, 1, &r1, 0), DVM_OK);
    cr_assert_eq(dvm_agent_handle_msg(a, 2, &r2, 0), DVM_OK);
    seen s = drain(a);
    cr_assert_eq(s.offers, 2);
    cr_assert_eq(dvm_agent_handle_msg(a, 3, &r3, 0), DVM_ERR_LIMIT);
    s = drain(a);
    cr_assert_eq(s.errors, 1);
    cr_assert_str_eq(s.last_error, "No capacity (2/2 slots used)");
    cr_assert_str_eq(s.last_error_id, "c");
    cr_assert_eq(s.last_conn, 3);
    cr_assert_eq(dvm_agent_active(a), 2);
    dvm_agent_free(a);
}

Test(agent, capacity_is_shared_with_other_channels)
{
    dvm_agent *a = agent(2);
    cr_assert_eq(dvm_agent_acquire(a), DVM_OK); /* e.g. an async platform job */
    dvm_msg r1 = req("a"), r2 = req("b");
    cr_assert_eq(dvm_agent_handle_msg(a, 1, &r1, 0), DVM_OK);
    cr_assert_eq(dvm_agent_acquire(a), DVM_ERR_LIMIT);
    cr_assert_eq(dvm_agent_handle_msg(a, 1, &r2, 0), DVM_ERR_LIMIT);
    seen s = drain(a);
    cr_assert_str_eq(s.last_error, "No capacity (2/2 slots used)");
    cr_assert_eq(dvm_agent_release(a), DVM_OK);
    cr_assert_eq(dvm_agent_release(a), DVM_ERR_STATE);
    cr_assert_eq(dvm_agent_handle_msg(a, 1, &r2, 0), DVM_OK);
    cr_assert_eq(dvm_agent_active(a), 2);
    dvm_agent_free(a);
}

Test(agent, duplicate_job_id_changes_nothing)
{
    dvm_agent *a = agent(3);
    dvm_msg r = req("dup");
    cr_assert_eq(dvm_agent_handle_msg(a, 1, &r, 0), DVM_OK);
    seen s = drain(a);
    uint64_t job = s.last_job;
    cr_assert_eq(dvm_agent_handle_msg(a, 1, &r, 0), DVM_ERR_EXISTS);
    s = drain(a);
    cr_assert_eq(s.sends, 1);
    cr_assert_str_eq(s.last_error, "Duplicate job id");
    cr_assert_eq(dvm_agent_active(a), 1);
    cr_assert_eq(dvm_agent_find(a, 1, dvm_str_c("dup")), job);
    /* the same id on another connection is another job */
    cr_assert_eq(dvm_agent_handle_msg(a, 2, &r, 0), DVM_OK);
    cr_assert_eq(dvm_agent_active(a), 2);
    dvm_agent_free(a);
}

Test(agent, payment_and_stop_for_unknown_job)
{
    dvm_agent *a = agent(3);
    dvm_msg r = req("known");
    dvm_agent_handle_msg(a, 1, &r, 0);
    drain(a);
    dvm_msg p = mk(DVM_MSG_PAYMENT, "ghost");
    p.token = dvm_str_c("cashuBxyz");
    cr_assert_eq(dvm_agent_handle_msg(a, 1, &p, 0), DVM_ERR_NOT_FOUND);
    seen s = drain(a);
    cr_assert_eq(s.sends, 1);
    cr_assert_eq(s.verifies, 0);
    cr_assert_str_eq(s.last_error, "Unknown job");
    cr_assert_str_eq(s.last_error_id, "ghost");
    /* a known job id on the wrong connection is unknown too */
    dvm_msg st = mk(DVM_MSG_STOP, "known");
    cr_assert_eq(dvm_agent_handle_msg(a, 2, &st, 0), DVM_ERR_NOT_FOUND);
    s = drain(a);
    cr_assert_str_eq(s.last_error, "Unknown job");
    cr_assert_eq(s.results, 0);
    dvm_provider_stats ps;
    dvm_provider_get_stats(dvm_agent_job(a, dvm_agent_find(a, 1, dvm_str_c("known"))), &ps);
    cr_assert_eq(ps.state, DVM_PROVIDER_OFFERED);
    dvm_agent_free(a);
}

Test(agent, decode_error_and_unexpected_type_get_error_replies)
{
    dvm_agent *a = agent(3);
    cr_assert_eq(dvm_agent_handle_decode_error(a, 4, dvm_str_c(""), dvm_str_c("invalid JSON"), 0),
                 DVM_OK);
    seen s = drain(a);
    cr_assert_eq(s.errors, 1);
    cr_assert_str_eq(s.last_error, "invalid JSON");
    cr_assert_str_eq(s.last_error_id, "");
    dvm_msg c = mk(DVM_MSG_CHUNK, "x");
    cr_assert_eq(dvm_agent_handle_msg(a, 4, &c, 0), DVM_ERR_PROTO);
    s = drain(a);
    cr_assert_str_eq(s.last_error, "Unexpected message type: chunk");
    cr_assert_eq(dvm_agent_active(a), 0);
    dvm_agent_free(a);
}

Test(agent, connection_close_claims_and_frees_slot)
{
    dvm_agent *a = agent(1);
    dvm_msg r = req("j");
    dvm_agent_handle_msg(a, 7, &r, 0);
    drain(a);
    dvm_msg p = mk(DVM_MSG_PAYMENT, "j");
    p.token = dvm_str_c("cashuBtok");
    dvm_agent_handle_msg(a, 7, &p, 1);
    seen s = drain(a);
    cr_assert_eq(s.verifies, 1);
    uint64_t job = s.last_job;
    dvm_verify_result ok = {DVM_VERIFY_OK, 10, {NULL, 0}};
    cr_assert_eq(dvm_agent_on_verify(a, job, s.verify_id, &ok, 2), DVM_OK);
    cr_assert_eq(dvm_agent_on_chunk(a, job, "hello", 5, 3), DVM_OK);
    drain(a);
    cr_assert_eq(dvm_agent_connection_closed(a, 7, 4), DVM_OK);
    s = drain(a);
    cr_assert_eq(s.sends, 0);
    cr_assert_eq(s.claims, 1);
    cr_assert_eq(s.claim_sats, 10);
    cr_assert_eq(s.dones, 1);
    cr_assert_eq(dvm_agent_active(a), 0);
    cr_assert_eq(dvm_agent_on_chunk(a, job, "x", 1, 5), DVM_ERR_NOT_FOUND);
    /* the slot is free again */
    dvm_msg r2 = req("k");
    cr_assert_eq(dvm_agent_handle_msg(a, 8, &r2, 6), DVM_OK);
    dvm_agent_free(a);
}

Test(agent, timers_fire_per_job)
{
    dvm_agent *a = agent(3);
    dvm_msg r1 = req("a"), r2 = req("b");
    dvm_agent_handle_msg(a, 1, &r1, 0);
    dvm_agent_handle_msg(a, 1, &r2, 100);
    drain(a);
    cr_assert_eq(dvm_agent_deadline(a), DVM_DEFAULT_PAYMENT_TIMEOUT_MS);
    cr_assert_eq(dvm_agent_on_timer(a, DVM_DEFAULT_PAYMENT_TIMEOUT_MS), DVM_OK);
    seen s = drain(a);
    cr_assert_eq(s.errors, 1);
    cr_assert_str_eq(s.last_error, "Payment timeout after 30000ms");
    cr_assert_str_eq(s.last_error_id, "a");
    cr_assert_eq(dvm_agent_active(a), 1);
    cr_assert_eq(dvm_agent_deadline(a), 100 + DVM_DEFAULT_PAYMENT_TIMEOUT_MS);
    dvm_agent_free(a);
}

Test(agent, shutdown_ends_jobs_with_result_and_refuses_new_ones)
{
    dvm_agent *a = agent(3);
    dvm_msg r = req("j");
    dvm_agent_handle_msg(a, 1, &r, 0);
    dvm_msg p = mk(DVM_MSG_PAYMENT, "j");
    p.token = dvm_str_c("tok");
    dvm_agent_handle_msg(a, 1, &p, 0);
    seen s = drain(a);
    dvm_verify_result ok = {DVM_VERIFY_OK, 10, {NULL, 0}};
    dvm_agent_on_verify(a, s.last_job, s.verify_id, &ok, 1);
    drain(a);
    cr_assert_eq(dvm_agent_shutdown(a, 2), DVM_OK);
    s = drain(a);
    cr_assert_eq(s.results, 1);
    cr_assert_eq(s.claims, 1);
    cr_assert_eq(s.dones, 1);
    dvm_msg r2 = req("k");
    cr_assert_eq(dvm_agent_handle_msg(a, 1, &r2, 3), DVM_ERR_STATE);
    s = drain(a);
    cr_assert_str_eq(s.last_error, "Agent shutting down");
    dvm_agent_free(a);
}

Test(agent, payment_missing_token_through_agent)
{
    dvm_agent *a = agent(3);
    dvm_msg r = req("j");
    dvm_agent_handle_msg(a, 1, &r, 0);
    drain(a);
    dvm_msg p = mk(DVM_MSG_PAYMENT, "j");
    cr_assert_eq(dvm_agent_handle_msg(a, 1, &p, 0), DVM_ERR_INVALID);
    seen s = drain(a);
    cr_assert_str_eq(s.last_error, "Payment missing token");
    cr_assert_eq(s.verifies, 0);
    cr_assert_eq(dvm_agent_active(a), 1);
    dvm_agent_free(a);
}

Test(agent, strings_survive_draining_many_actions)
{
    /* many agent-level errors in one batch: every string must stay valid */
    dvm_agent *a = agent(1);
    dvm_msg r = req("j");
    dvm_agent_handle_msg(a, 1, &r, 0);
    dvm_agent_action x;
    while (dvm_agent_next_action(a, &x)) {
    }
    char ids[40][16];
    for (int i = 0; i < 40; i++) {
        snprintf(ids[i], sizeof ids[i], "id%d", i);
        dvm_msg q = req(ids[i]);
        dvm_agent_handle_msg(a, 1, &q, 0);
    }
    /* only the last event's replies are guaranteed; but none were drained,
     * so all 40 are queued and valid */
    int n = 0;
    while (dvm_agent_next_action(a, &x)) {
        cr_assert(streq(x.act.msg.id, ids[n]));
        cr_assert(streq(x.act.msg.message, "No capacity (1/1 slots used)"));
        n++;
    }
    cr_assert_eq(n, 40);
    dvm_agent_free(a);
}

/* MAX_JOBS + 1 customer sessions against one agent, in memory: exactly one
 * is refused with "No capacity", the others complete and are claimed. */
#include "session/customer.h"

Test(agent, max_jobs_plus_one_customers)
{
    enum { N = 4 };
    dvm_agent *a = agent(N - 1);
    dvm_customer *c[N];
    char ids[N][8];
    uint64_t job_of[N] = {0};
    size_t produced[N] = {0};
    for (int i = 0; i < N; i++) {
        c[i] = dvm_customer_new(NULL, NULL);
        snprintf(ids[i], sizeof ids[i], "job%d", i);
        /* each customer on its own connection i+1 */
        cr_assert_eq(dvm_customer_start(c[i], dvm_str_c(ids[i]), 5100, dvm_str_c("p"), 50, 0),
                     DVM_OK);
    }
    uint64_t claimed = 0;
    size_t dones = 0;
    for (int round = 0; round < 2000; round++) {
        bool moved = false;
        for (int i = 0; i < N; i++) {
            dvm_customer_action ca;
            while (dvm_customer_next_action(c[i], &ca)) {
                moved = true;
                if (ca.type == DVM_CACT_SEND)
                    dvm_agent_handle_msg(a, (uint64_t)i + 1, &ca.msg, round);
                else if (ca.type == DVM_CACT_NEED_TOKEN) {
                    char tok[32];
                    snprintf(tok, sizeof tok, "tok-%d-%llu", i, (unsigned long long)ca.token_req);
                    dvm_customer_on_token(c[i], ca.token_req, dvm_str_c(tok), round);
                }
            }
        }
        dvm_agent_action x;
        while (dvm_agent_next_action(a, &x)) {
            moved = true;
            int i = (int)x.conn - 1;
            cr_assert(i >= 0 && i < N);
            switch (x.act.type) {
            case DVM_PACT_SEND: {
                /* the customer copies what it keeps; deliver right away */
                dvm_msg m = x.act.msg;
                dvm_customer_handle_msg(c[i], &m, round);
                break;
            }
            case DVM_PACT_VERIFY_TOKEN: {
                dvm_verify_result r = {DVM_VERIFY_OK, 10, {NULL, 0}};
                dvm_agent_on_verify(a, x.job, x.act.verify_id, &r, round);
                break;
            }
            case DVM_PACT_START_GENERATION: job_of[i] = x.job; break;
            case DVM_PACT_CLAIM: claimed += x.act.claim_sats; break;
            case DVM_PACT_DONE: dones++; break;
            default: break;
            }
        }
        /* processors: 15 chunks each, one per round */
        for (int i = 0; i < N; i++) {
            if (!job_of[i])
                continue;
            if (produced[i] < 15) {
                if (dvm_agent_on_chunk(a, job_of[i], "w ", 2, round) == DVM_OK)
                    produced[i]++;
                moved = true;
            } else if (produced[i] == 15) {
                dvm_agent_on_generation_done(a, job_of[i], round);
                produced[i]++;
                moved = true;
            }
        }
        if (!moved)
            break;
    }
    int refused = 0, ok = 0;
    for (int i = 0; i < N; i++) {
        dvm_customer_status st = dvm_customer_status_of(c[i]);
        if (st == DVM_CUSTOMER_PROVIDER_ERROR) {
            refused++;
            cr_assert_str_eq(dvm_customer_reason(c[i]), "No capacity (3/3 slots used)");
        } else {
            cr_assert_eq(st, DVM_CUSTOMER_OK, "customer %d: %s", i, dvm_customer_reason(c[i]));
            ok++;
            dvm_customer_stats cs;
            dvm_customer_get_stats(c[i], &cs);
            cr_assert_eq(cs.chunks, 15);
            cr_assert_eq(cs.sats_paid, 20);
        }
        dvm_customer_free(c[i]);
    }
    cr_assert_eq(refused, 1);
    cr_assert_eq(ok, 3);
    cr_assert_eq(claimed, 60);
    cr_assert_eq(dones, 3);
    cr_assert_eq(dvm_agent_active(a), 0);
    dvm_agent_free(a);
}
