/* Whole simulator runs on small scenarios: determinism, invariants, every
 * adversary caught, trace shape, and pcap output read back by tshark. */
#define _DEFAULT_SOURCE
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sodium.h>
#include <string.h>
#include <unistd.h>

#include "../../tools/tests/spawn_run.h"
#include "scenario.h"
#include "sim.h"
#include "sinks.h"

typedef struct mem_sink {
    dvm_buf trace;
    dvm_buf jobs_csv, providers_csv;
    size_t packets;
} mem_sink;

static void m_trace(void *ctx, const uint8_t *d, size_t n)
{
    mem_sink *m = ctx;
    cr_assert_eq(dvm_buf_append(&m->trace, d, n), DVM_OK);
}

static void m_packet(void *ctx, uint64_t t, const uint8_t *p, size_t n)
{
    (void)t;
    (void)p;
    (void)n;
    ((mem_sink *)ctx)->packets++;
}

static void m_csv(void *ctx, const char *table, const char *line, size_t n)
{
    mem_sink *m = ctx;
    dvm_buf *b = !strcmp(table, "jobs") ? &m->jobs_csv : &m->providers_csv;
    cr_assert_eq(dvm_buf_append(b, line, n), DVM_OK);
}

static void small(sim_scenario *sc, const char *const *sets)
{
    char err[256] = "";
    sim_scenario_builder *b = sim_scenario_builder_new();
    cr_assert_not_null(b);
    const char *base[] = {"providers.count=12", "customers.count=40", "jobs=24", "customers.arrival_rate_hz=20",
                          "providers.payment_timeout_ms=3000", "customers.timeout_ms=3000", NULL};
    for (int i = 0; base[i]; i++)
        cr_assert_eq(sim_scenario_set(b, base[i], err, sizeof err), DVM_OK, "%s", err);
    for (int i = 0; sets && sets[i]; i++)
        cr_assert_eq(sim_scenario_set(b, sets[i], err, sizeof err), DVM_OK, "%s", err);
    cr_assert_eq(sim_scenario_build(b, sc, err, sizeof err), DVM_OK, "%s", err);
    sim_scenario_builder_free(b);
}

static void run(const sim_scenario *sc, mem_sink *m, sim_summary *s)
{
    sim_sinks sinks = {m_trace, m_packet, m_csv, NULL, m};
    char err[256] = "";
    dvm_err e = sim_run(sc, m ? &sinks : NULL, s, err, sizeof err);
    cr_assert_eq(e, DVM_OK, "sim_run: %s", err);
}

static void mem_free(mem_sink *m)
{
    dvm_buf_free(&m->trace);
    dvm_buf_free(&m->jobs_csv);
    dvm_buf_free(&m->providers_csv);
}

static uint64_t failed(const sim_summary *s, const char *name)
{
    for (size_t i = 0; i < s->n_failed; i++)
        if (!strcmp(s->failed[i].name, name))
            return s->failed[i].count;
    return 0;
}

static void no_violations(const sim_summary *s)
{
    for (size_t i = 0; i < s->n_violations; i++)
        cr_log_error("violated %s: %s", s->violations[i].name, s->violations[i].detail);
    cr_assert_eq(s->n_violations, 0);
}

Test(sim_run, same_seed_same_trace_other_seed_differs, .timeout = 120)
{
    sim_scenario sc;
    small(&sc, NULL);
    mem_sink a = {0}, b = {0}, c = {0};
    sim_summary sa, sb, sc2;
    run(&sc, &a, &sa);
    run(&sc, &b, &sb);
    cr_assert_gt(a.trace.len, 1000);
    cr_assert_eq(a.trace.len, b.trace.len);
    cr_assert_eq(memcmp(a.trace.data, b.trace.data, a.trace.len), 0, "traces differ");
    cr_assert_str_eq(sa.trace_hash, sb.trace_hash);
    /* the hash is the SHA-256 of exactly the trace bytes */
    uint8_t h[32];
    char hex[65];
    crypto_hash_sha256(h, a.trace.data, a.trace.len);
    for (int i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", h[i]);
    cr_assert_str_eq(sa.trace_hash, hex);
    cr_assert_eq(sa.trace_bytes, a.trace.len);
    /* without a sink the hash is the same */
    sim_summary sn;
    run(&sc, NULL, &sn);
    cr_assert_str_eq(sn.trace_hash, sa.trace_hash);

    sc.seed = 2;
    run(&sc, &c, &sc2);
    cr_assert_str_neq(sc2.trace_hash, sa.trace_hash);
    mem_free(&a);
    mem_free(&b);
    mem_free(&c);
}

Test(sim_run, honest_swarm_completes_every_job_and_keeps_the_invariants, .timeout = 120)
{
    sim_scenario sc;
    small(&sc, NULL);
    mem_sink m = {0};
    sim_summary s;
    run(&sc, &m, &s);
    no_violations(&s);
    cr_assert_eq(s.jobs_started, 24);
    cr_assert_eq(s.jobs_completed, 24);
    cr_assert_eq(s.jobs_failed, 0);
    cr_assert_gt(s.chunks, 24 * 20 - 1);
    cr_assert_gt(s.sats_minted, 0);
    cr_assert_eq(s.sats_paid, s.sats_earned);
    cr_assert_eq(s.sats_claimed, s.sats_earned); /* no fee, every token claimed */
    cr_assert_eq(s.double_spends_detected, 0);
    cr_assert_eq(s.provider_losses_sats, 0);
    cr_assert_eq(s.customer_losses_sats, 0);
    cr_assert_gt(s.first_chunk.p50_ms, 0);
    cr_assert_geq(s.job.p99_ms, s.job.p50_ms);
    cr_assert_eq(s.first_chunk.n, 24);
    /* CSV: a header and one line per job / provider */
    size_t lines = 0;
    for (size_t i = 0; i < m.jobs_csv.len; i++)
        lines += m.jobs_csv.data[i] == '\n';
    cr_assert_eq(lines, 25);
    lines = 0;
    for (size_t i = 0; i < m.providers_csv.len; i++)
        lines += m.providers_csv.data[i] == '\n';
    cr_assert_eq(lines, 13);
    cr_assert_gt(m.packets, 0);
    mem_free(&m);
}

Test(sim_run, trace_lines_are_json_with_the_wire_messages, .timeout = 120)
{
    sim_scenario sc;
    small(&sc, NULL);
    mem_sink m = {0};
    sim_summary s;
    run(&sc, &m, &s);
    cr_assert_eq(dvm_buf_putc(&m.trace, 0), DVM_OK);
    char *p = (char *)m.trace.data;
    int seen[16] = {0};
    const char *types[] = {"request", "offer", "payment", "payment_ack", "accepted", "chunk", "pay_required", "result"};
    uint64_t last_t = 0;
    size_t n = 0;
    while (*p) {
        char *nl = strchr(p, '\n');
        cr_assert_not_null(nl);
        json_error_t je;
        json_t *o = json_loadb(p, (size_t)(nl - p), 0, &je);
        cr_assert_not_null(o, "trace line %zu is not JSON: %s", n, je.text);
        uint64_t t = (uint64_t)json_integer_value(json_object_get(o, "t"));
        cr_assert_geq(t, last_t, "virtual time goes backwards at line %zu", n);
        last_t = t;
        json_t *msg = json_object_get(o, "msg");
        if (msg) {
            const char *ty = json_string_value(json_object_get(msg, "type"));
            for (int i = 0; i < 8; i++)
                if (ty && !strcmp(ty, types[i]))
                    seen[i]++;
        }
        json_decref(o);
        p = nl + 1;
        n++;
    }
    for (int i = 0; i < 8; i++)
        cr_assert_gt(seen[i], 0, "no %s message in the trace", types[i]);
    cr_assert_eq((uint64_t)seen[5], s.chunks);
    mem_free(&m);
}

Test(sim_run, double_spend_is_caught_at_claim, .timeout = 120)
{
    sim_scenario sc;
    const char *sets[] = {"customers.double_spend=1", NULL};
    small(&sc, sets);
    sim_summary s;
    run(&sc, NULL, &s);
    no_violations(&s);
    cr_assert_gt(s.double_spends_detected, 0);
    cr_assert_gt(s.provider_losses_sats, 0);
    cr_assert_lt(s.sats_claimed, s.sats_earned);
}

Test(sim_run, forged_tokens_are_refused, .timeout = 120)
{
    sim_scenario sc;
    const char *sets[] = {"customers.forge=1", NULL};
    small(&sc, sets);
    sim_summary s;
    run(&sc, NULL, &s);
    no_violations(&s);
    cr_assert_gt(s.payments_rejected, 0);
    cr_assert_eq(s.sats_earned, 0);
    cr_assert_eq(s.chunks, 0);
    cr_assert_eq(s.jobs_completed, 0);
}

Test(sim_run, untrusted_mint_tokens_are_refused, .timeout = 120)
{
    sim_scenario sc;
    const char *sets[] = {"customers.untrusted_mint=1", NULL};
    small(&sc, sets);
    sim_summary s;
    run(&sc, NULL, &s);
    no_violations(&s);
    cr_assert_gt(s.payments_rejected, 0);
    cr_assert_eq(s.sats_earned, 0);
    cr_assert_eq(s.sats_minted, 0); /* nothing minted at the trusted mint */
    cr_assert_eq(s.chunks, 0);
}

Test(sim_run, replayed_tokens_are_refused, .timeout = 120)
{
    sim_scenario sc;
    const char *sets[] = {"customers.replay=1", NULL};
    small(&sc, sets);
    mem_sink m = {0};
    sim_summary s;
    run(&sc, &m, &s);
    no_violations(&s);
    cr_assert_gt(s.payments_rejected, 0);
    cr_assert_eq(s.double_spends_detected, 0, "replays are caught by the policy before claim");
    cr_assert_eq(dvm_buf_putc(&m.trace, 0), DVM_OK);
    cr_assert_not_null(strstr((char *)m.trace.data, "already received"));
    mem_free(&m);
}

Test(sim_run, customers_that_never_pay_get_nothing, .timeout = 120)
{
    sim_scenario sc;
    /* enough providers that nobody is turned away for capacity; the
     * customer waits longer than the provider's PAYMENT_TIMEOUT */
    const char *sets[] = {"customers.never_pay=1", "providers.count=40", "customers.timeout_ms=10000", NULL};
    small(&sc, sets);
    mem_sink m = {0};
    sim_summary s;
    run(&sc, &m, &s);
    no_violations(&s);
    cr_assert_eq(s.sats_paid, 0);
    cr_assert_eq(s.chunks, 0);
    cr_assert_eq(s.jobs_completed, 0);
    cr_assert_eq(failed(&s, "provider_error"), s.jobs_started, "payment timeout errors expected");
    cr_assert_eq(dvm_buf_putc(&m.trace, 0), DVM_OK);
    cr_assert_not_null(strstr((char *)m.trace.data, "Payment timeout"));
    mem_free(&m);
}

Test(sim_run, provider_that_takes_a_payment_and_stops_costs_one_cycle, .timeout = 120)
{
    sim_scenario sc;
    const char *sets[] = {"providers.take_and_stop=1", NULL};
    small(&sc, sets);
    sim_summary s;
    run(&sc, NULL, &s);
    no_violations(&s);
    cr_assert_eq(s.jobs_completed, 0);
    cr_assert_eq(failed(&s, "timeout"), s.jobs_started);
    cr_assert_gt(s.customer_losses_sats, 0);
    /* at most one payment per job is lost */
    cr_assert_leq(s.customer_losses_sats, s.jobs_started * 3 * 10);
}

Test(sim_run, early_ask_gets_no_extra_payment, .timeout = 120)
{
    sim_scenario sc;
    const char *sets[] = {"providers.early_ask=1", NULL};
    small(&sc, sets);
    sim_summary s;
    run(&sc, NULL, &s);
    no_violations(&s);
    cr_assert_eq(s.jobs_completed, s.jobs_started);
    cr_assert_eq(s.customer_losses_sats, 0);
}

Test(sim_run, stalled_provider_times_out, .timeout = 120)
{
    sim_scenario sc;
    const char *sets[] = {"providers.stall=1", NULL};
    small(&sc, sets);
    sim_summary s;
    run(&sc, NULL, &s);
    no_violations(&s);
    cr_assert_eq(s.jobs_completed, 0);
    cr_assert_eq(failed(&s, "timeout"), s.jobs_started);
}

Test(sim_run, faults_network_and_mint_keep_money_conserved, .timeout = 120)
{
    sim_scenario sc;
    const char *sets[] = {"network.loss=0.05",
                          "network.partitions=[{\"at_s\":0.5,\"duration_s\":2,\"fraction\":0.3}]",
                          "network.disconnects=[{\"at_s\":1,\"fraction\":0.3}]",
                          "mint.outages=[{\"at_s\":1.2,\"duration_s\":1}]",
                          "network.latency=uniform",
                          NULL};
    small(&sc, sets);
    sim_summary s;
    run(&sc, NULL, &s);
    no_violations(&s); /* conservation holds; completion is not required with faults */
    cr_assert_eq(s.jobs_completed + s.jobs_failed, s.jobs_started);
}

Test(sim_run, fee_is_accounted, .timeout = 120)
{
    sim_scenario sc;
    const char *sets[] = {"mint.input_fee_ppk=100", NULL};
    small(&sc, sets);
    sim_summary s;
    run(&sc, NULL, &s);
    no_violations(&s);
    cr_assert_lt(s.sats_claimed, s.sats_earned, "claims pay input fees");
}

static char *file_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

Test(sim_run, scenario_fixtures_load)
{
    const char *names[] = {"default", "large", "double-spend", "forged", "never-pay", "untrusted-mint",
                           "replay", "provider-stop", "early-ask", "stall", "faults", "throughput"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[256], err[256] = "";
        snprintf(path, sizeof path, "fixtures/scenarios/%s.json", names[i]);
        sim_scenario_builder *b = sim_scenario_builder_new();
        cr_assert_eq(sim_scenario_merge_json(b, file_text(path), err, sizeof err), DVM_OK, "%s: %s", path, err);
        sim_scenario sc;
        cr_assert_eq(sim_scenario_build(b, &sc, err, sizeof err), DVM_OK, "%s: %s", path, err);
        sim_scenario_builder_free(b);
    }
}

Test(sim_run, pcap_is_read_by_tshark, .timeout = 120)
{
    sim_scenario sc;
    const char *sets[] = {"jobs=3", NULL};
    small(&sc, sets);
    char dir[] = "/tmp/dvm-sim-pcap-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char pcap[256];
    snprintf(pcap, sizeof pcap, "%s/sim.pcap", dir);
    sim_file_sinks fs;
    cr_assert_eq(sim_file_sinks_open(&fs, NULL, pcap, NULL, false), DVM_OK, "%s", fs.error);
    sim_sinks sinks = sim_file_sinks_get(&fs);
    sim_summary s;
    char err[256];
    cr_assert_eq(sim_run(&sc, &sinks, &s, err, sizeof err), DVM_OK, "%s", err);
    cr_assert_eq(sim_file_sinks_close(&fs), 0, "%s", fs.error);
    /* tshark must parse it: hosts, ports and the NDJSON payloads */
    /* bounded (spawn_run.h: killed after 30 s), no shell */
    char *const fields[] = {"tshark", "-r", pcap, "-Y", "tcp.len > 0", "-T", "fields", "-e", "ip.src", "-e",
                            "ip.dst", "-e", "tcp.srcport", "-e", "tcp.payload", NULL};
    spawn_result r = spawn_run(NULL, fields);
    cr_assert_eq(r.code, 0, "tshark failed (is it installed? ci/setup installs it): %s", r.err);
    const char *txt = r.out;
    cr_assert_not_null(strstr(txt, "10.128."), "customer addresses missing: %.300s", txt);
    cr_assert_not_null(strstr(txt, "10.1.0."), "provider addresses missing");
    /* hex of {"type":"request" */
    cr_assert_not_null(strstr(txt, "7b2274797065223a2272657175657374"), "no request payload");
    /* hex of {"type":"chunk" */
    cr_assert_not_null(strstr(txt, "7b2274797065223a226368756e6b22"), "no chunk payload");
    /* tshark's TCP analysis finds no sequence problems in our streams */
    char *const analysis[] = {"tshark", "-r", pcap, "-Y", "tcp.analysis.flags && !tcp.analysis.window_update", NULL};
    spawn_result an = spawn_run(NULL, analysis);
    cr_assert_eq(an.code, 0, "%s", an.err);
    cr_assert_eq(strlen(an.out), 0, "tshark reports TCP problems: %.400s", an.out);
    spawn_result_free(&r);
    spawn_result_free(&an);
    unlink(pcap);
    rmdir(dir);
}

Test(sim_run, cheapest_choice_picks_the_lowest_price, .timeout = 120)
{
    sim_scenario sc;
    /* every customer sees all 12 providers: each job goes to a cheapest one */
    const char *sets[] = {"customers.choice=cheapest", "customers.choice_sample=1000", "providers.max_jobs=100",
                          "providers.sats_per_chunk_min=1", "providers.sats_per_chunk_max=3", NULL};
    small(&sc, sets);
    mem_sink m = {0};
    sim_summary s;
    run(&sc, &m, &s);
    no_violations(&s);
    cr_assert_eq(dvm_buf_putc(&m.providers_csv, 0), DVM_OK);
    /* provider,behaviour,sats_per_chunk,jobs,... */
    char *line = strchr((char *)m.providers_csv.data, '\n') + 1;
    unsigned min_price = 99, busy_max_price = 0, busy = 0;
    while (*line) {
        unsigned id, price;
        unsigned long long jobs;
        char beh[32];
        cr_assert_eq(sscanf(line, "%u,%31[^,],%u,%llu,", &id, beh, &price, &jobs), 4);
        if (price < min_price)
            min_price = price;
        if (jobs) {
            busy++;
            if (price > busy_max_price)
                busy_max_price = price;
        }
        line = strchr(line, '\n') + 1;
    }
    cr_assert_gt(busy, 0);
    cr_assert_eq(busy_max_price, min_price, "a job went to a provider dearer than the cheapest");
    mem_free(&m);
}

Test(sim_run, invariant_checker_reports_jobs_that_do_not_complete, .timeout = 120)
{
    /* providers that refuse every payment (held-value bound of 1 sat, and
     * this simulator's agents claim only when a job ends): honest peers, no
     * faults, yet no job completes — the checker must say so */
    sim_scenario sc;
    const char *sets[] = {"providers.max_unclaimed_sats=1", NULL};
    small(&sc, sets);
    sim_summary s;
    run(&sc, NULL, &s);
    cr_assert_eq(s.jobs_completed, 0);
    cr_assert_eq(s.n_violations, 1);
    cr_assert_str_eq(s.violations[0].name, "all_jobs_complete");
}

Test(sim_run, capacity_refusals_are_told_apart, .timeout = 120)
{
    /* one slot per provider, two providers, many customers at once */
    sim_scenario sc;
    const char *sets[] = {"providers.count=2", "providers.max_jobs=1", "customers.arrival_rate_hz=1000",
                          "customers.retries=1", NULL};
    small(&sc, sets);
    sim_summary s;
    run(&sc, NULL, &s);
    no_violations(&s); /* refusals for capacity do not break all_jobs_complete */
    cr_assert_gt(failed(&s, "no_capacity"), 0);
    cr_assert_eq(s.jobs_completed + failed(&s, "no_capacity"), s.jobs_started);
}
