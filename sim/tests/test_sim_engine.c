/* Engine pieces of the simulator: the event queue, the PRNG, scenarios,
 * the trace hash and synthetic packets. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <sodium.h>
#include <string.h>

#include "eventq.h"
#include "pcapgen.h"
#include "rng.h"
#include "scenario.h"
#include "trace.h"

Test(sim_eventq, pops_in_time_order)
{
    sim_eventq q;
    sim_eventq_init(&q);
    sim_rng r;
    sim_rng_seed(&r, 42);
    enum { N = 20000 };
    for (uint32_t i = 0; i < N; i++)
        cr_assert_eq(sim_eventq_push(&q, sim_rng_below(&r, 1000), 0, i, 0), DVM_OK);
    sim_event prev = {0}, e;
    for (uint32_t i = 0; i < N; i++) {
        cr_assert_eq(sim_eventq_pop(&q, &e), DVM_OK);
        if (i) {
            cr_assert(e.t_us > prev.t_us || (e.t_us == prev.t_us && e.seq > prev.seq),
                      "event %u out of order", i);
        }
        prev = e;
    }
    cr_assert_eq(sim_eventq_pop(&q, &e), DVM_ERR_AGAIN);
    sim_eventq_free(&q);
}

Test(sim_eventq, equal_times_pop_in_insertion_order)
{
    sim_eventq q;
    sim_eventq_init(&q);
    /* interleave pushes and pops; ties must come out FIFO */
    for (uint32_t i = 0; i < 100; i++)
        sim_eventq_push(&q, 5, 1, i, 0);
    sim_eventq_push(&q, 3, 2, 0, 0);
    sim_event e;
    sim_eventq_pop(&q, &e);
    cr_assert_eq(e.kind, 2);
    for (uint32_t i = 100; i < 200; i++)
        sim_eventq_push(&q, 5, 1, i, 0);
    for (uint32_t i = 0; i < 200; i++) {
        cr_assert_eq(sim_eventq_pop(&q, &e), DVM_OK);
        cr_assert_eq(e.t_us, 5);
        cr_assert_eq(e.a, i, "tie %u popped as %u", i, e.a);
    }
    sim_eventq_free(&q);
}

Test(sim_rng, same_seed_same_stream_other_seed_differs)
{
    sim_rng a, b, c;
    sim_rng_seed(&a, 7);
    sim_rng_seed(&b, 7);
    sim_rng_seed(&c, 8);
    int differ = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = sim_rng_u64(&a), y = sim_rng_u64(&b), z = sim_rng_u64(&c);
        cr_assert_eq(x, y);
        differ += x != z;
    }
    cr_assert_gt(differ, 990);
}

Test(sim_rng, splitmix64_reference_value)
{
    /* splitmix64 from state 0: first output 0xe220a8397b1dcdaf (Vigna's
     * reference implementation). */
    uint64_t st = 0;
    cr_assert_eq(sim_splitmix64(&st), 0xe220a8397b1dcdafULL);
}

Test(sim_rng, xoshiro256ss_reference_values)
{
    /* xoshiro256** with state {1,2,3,4}: outputs 11520, 0, 1509978240,
     * 1215971899390074240 (reference implementation). */
    sim_rng r = {{1, 2, 3, 4}};
    cr_assert_eq(sim_rng_u64(&r), 11520ULL);
    cr_assert_eq(sim_rng_u64(&r), 0ULL);
    cr_assert_eq(sim_rng_u64(&r), 1509978240ULL);
    cr_assert_eq(sim_rng_u64(&r), 1215971899390074240ULL);
}

Test(sim_rng, below_is_in_range_and_covers_it)
{
    sim_rng r;
    sim_rng_seed(&r, 1);
    int seen[7] = {0};
    for (int i = 0; i < 7000; i++) {
        uint64_t v = sim_rng_below(&r, 7);
        cr_assert_lt(v, 7);
        seen[v]++;
    }
    for (int i = 0; i < 7; i++)
        cr_assert_gt(seen[i], 800);
    cr_assert_eq(sim_rng_below(&r, 0), 0);
    cr_assert_eq(sim_rng_range(&r, 5, 5), 5);
}

Test(sim_rng, exponential_mean_is_close)
{
    sim_rng r;
    sim_rng_seed(&r, 3);
    double sum = 0;
    for (int i = 0; i < 100000; i++)
        sum += (double)sim_rng_exp(&r, 1000.0);
    double mean = sum / 100000;
    cr_assert(mean > 980 && mean < 1020, "mean %f", mean);
}

Test(sim_rng, dvm_rng_adapter_draws_from_the_stream)
{
    sim_rng a, b;
    sim_rng_seed(&a, 9);
    sim_rng_seed(&b, 9);
    dvm_rng d = sim_rng_as_dvm(&a);
    uint8_t x[13], y[13];
    dvm_rng_fill(&d, x, sizeof x);
    sim_rng_fill(&b, y, sizeof y);
    cr_assert_arr_eq(x, y, sizeof x);
}

static void load(sim_scenario *sc, const char *json, const char *set, dvm_err want)
{
    char err[256] = "";
    sim_scenario_builder *b = sim_scenario_builder_new();
    cr_assert_not_null(b);
    dvm_err e = DVM_OK;
    if (json)
        e = sim_scenario_merge_json(b, json, err, sizeof err);
    if (!e && set)
        e = sim_scenario_set(b, set, err, sizeof err);
    if (!e)
        e = sim_scenario_build(b, sc, err, sizeof err);
    cr_assert_eq(e, want, "got %d (%s)", e, err);
    if (want)
        cr_assert_neq(err[0], 0, "an error must say why");
    sim_scenario_builder_free(b);
}

Test(sim_scenario, defaults_build)
{
    sim_scenario sc;
    load(&sc, NULL, NULL, DVM_OK);
    cr_assert_eq(sc.providers.count, 200);
    cr_assert_eq(sc.customers.count, 1000);
    cr_assert_eq(sc.customers.choice, SIM_CHOICE_RANDOM);
    cr_assert_eq(sc.network.latency, SIM_LAT_LOGNORMAL);
}

Test(sim_scenario, fixture_default_equals_builtin)
{
    FILE *f = fopen("fixtures/scenarios/default.json", "rb");
    cr_assert_not_null(f, "fixtures/scenarios/default.json (run from the repo root)");
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    sim_scenario a, b;
    load(&a, NULL, NULL, DVM_OK);
    load(&b, buf, NULL, DVM_OK);
    cr_assert_eq(memcmp(&a, &b, sizeof a), 0, "default.json differs from the built-in default");
}

Test(sim_scenario, set_overrides_and_rejects_unknown_paths)
{
    sim_scenario sc;
    load(&sc, NULL, "customers.double_spend=0.2", DVM_OK);
    cr_assert_float_eq(sc.customers.double_spend, 0.2, 1e-12);
    load(&sc, NULL, "customers.choice=cheapest", DVM_OK);
    cr_assert_eq(sc.customers.choice, SIM_CHOICE_CHEAPEST);
    load(&sc, NULL, "network.partitions=[{\"at_s\":1,\"duration_s\":2,\"fraction\":0.5}]", DVM_OK);
    cr_assert_eq(sc.network.n_partitions, 1);
    cr_assert_float_eq(sc.network.partitions[0].fraction, 0.5, 1e-12);
    load(&sc, NULL, "customers.double_spnd=0.2", DVM_ERR_NOT_FOUND);
    load(&sc, NULL, "nosuch.field=1", DVM_ERR_NOT_FOUND);
    load(&sc, NULL, "customers=1", DVM_ERR_INVALID);
    load(&sc, NULL, "customers.count=many", DVM_ERR_INVALID);
    load(&sc, NULL, "customers.forge=1.5", DVM_ERR_INVALID);
    load(&sc, NULL, "providers.count=0", DVM_ERR_INVALID);
    load(&sc, NULL, "customers.choice=smartest", DVM_ERR_INVALID);
    load(&sc, "{\"providers\":{\"colour\":1}}", NULL, DVM_ERR_NOT_FOUND);
    load(&sc, "{\"providers\":", NULL, DVM_ERR_INVALID);
    load(&sc, "[1]", NULL, DVM_ERR_INVALID);
    load(&sc, "{\"network\":{\"disconnects\":[{\"at_s\":1,\"duration_s\":2}]}}", NULL, DVM_ERR_NOT_FOUND);
}

Test(sim_trace, hash_is_sha256_of_the_bytes)
{
    sim_trace t;
    sim_trace_init(&t, NULL);
    sim_trace_begin(&t, 12, "x");
    sim_trace_u64(&t, "n", 7);
    sim_trace_str(&t, "s", "a\"b\n", 4);
    sim_trace_i64(&t, "m", -3);
    sim_trace_end(&t);
    uint8_t h[32], want[32];
    char hex[65];
    sim_trace_finish(&t, h, hex);
    const char *line = "{\"t\":12,\"ev\":\"x\",\"n\":7,\"s\":\"a\\\"b\\u000a\",\"m\":-3}\n";
    crypto_hash_sha256(want, (const unsigned char *)line, strlen(line));
    cr_assert_arr_eq(h, want, 32);
    cr_assert_eq(strlen(hex), 64);
}

Test(sim_pcap, segment_headers_and_checksums)
{
    uint8_t pkt[SIM_PCAP_HDR + SIM_PCAP_MSS];
    sim_tcp_tuple tp = {0x0a000001, 0x0a000002, 40000, 7000};
    size_t n = sim_pcap_segment(pkt, &tp, 1000, 2000, SIM_TCP_ACK | SIM_TCP_PSH, 1,
                                (const uint8_t *)"hello\n", 6);
    cr_assert_eq(n, 46);
    cr_assert_eq(pkt[0], 0x45);
    cr_assert_eq(pkt[9], 6);
    /* IPv4 header checksum verifies to 0 */
    uint32_t s = 0;
    for (int i = 0; i < 20; i += 2)
        s += (uint32_t)pkt[i] << 8 | pkt[i + 1];
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    cr_assert_eq(s, 0xffff);
    cr_assert_eq(memcmp(pkt + 40, "hello\n", 6), 0);
    cr_assert_eq(pkt[20 + 13], SIM_TCP_ACK | SIM_TCP_PSH);
}
