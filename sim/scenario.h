/* dvmstream simulator — scenarios.
 *
 * A scenario is a JSON object (files in fixtures/scenarios/). Every field has a
 * built-in default (sim_scenario_default_json(), the same values as
 * fixtures/scenarios/default.json); a file gives only what it changes.
 * Unknown fields, in a file or in a `--set PATH=VALUE` override, are an
 * error, as is a value of the wrong JSON type or out of range.
 *
 * Layout (units in the names: _s seconds, _ms milliseconds, _hz per second,
 * fractions in [0, 1]):
 *   seed, duration_s, jobs, kind
 *   providers.{count, max_jobs, sats_per_chunk_min, sats_per_chunk_max,
 *     chunks_per_payment, payment_timeout_ms, chunks_min, chunks_max,
 *     chunk_bytes, chunk_rate_hz, max_unclaimed_sats,
 *     take_and_stop, early_ask, stall}
 *   customers.{count, arrival_rate_hz, budget_min, budget_max,
 *     max_sats_per_chunk, prepay_window, choice, choice_sample, timeout_ms,
 *     retries, never_pay, double_spend, forge, untrusted_mint, replay}
 *   network.{latency, latency_ms, latency_max_ms, latency_sigma, jitter_ms,
 *     loss, rto_ms, bandwidth_kbps, connect_rtts, partitions[], disconnects[]}
 *     partitions[i] = {at_s, duration_s, fraction}
 *     disconnects[i] = {at_s, fraction}
 *   mint.{latency_ms, input_fee_ppk, outages[]}   outages[i] = {at_s, duration_s} */
#ifndef DVM_SIM_SCENARIO_H
#define DVM_SIM_SCENARIO_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define SIM_MAX_WINDOWS 64 /* partitions, disconnects, outages: each */

typedef enum { SIM_LAT_FIXED, SIM_LAT_UNIFORM, SIM_LAT_LOGNORMAL } sim_latency_model;
typedef enum { SIM_CHOICE_RANDOM, SIM_CHOICE_CHEAPEST, SIM_CHOICE_LEAST_LOADED } sim_choice;

typedef struct sim_window {
    double at_s;       /* start, virtual seconds */
    double duration_s; /* length (0 for a disconnect: instantaneous) */
    double fraction;   /* share of nodes affected */
} sim_window;

typedef struct sim_scenario {
    uint64_t seed;
    double duration_s; /* virtual time limit of the run */
    uint64_t jobs;     /* job arrivals in total */
    uint64_t kind;     /* DVM kind requested */

    struct {
        uint64_t count, max_jobs;
        uint64_t sats_per_chunk_min, sats_per_chunk_max; /* sats */
        uint64_t chunks_per_payment;
        uint64_t payment_timeout_ms;
        uint64_t chunks_min, chunks_max; /* chunks per job output */
        uint64_t chunk_bytes;            /* bytes of `data` per chunk */
        double chunk_rate_hz;            /* chunks per second per job */
        uint64_t max_unclaimed_sats;
        double take_and_stop, early_ask, stall; /* adversary fractions */
    } providers;

    struct {
        uint64_t count;
        double arrival_rate_hz;          /* Poisson job arrivals, all customers */
        uint64_t budget_min, budget_max; /* sats per job */
        uint64_t max_sats_per_chunk;
        uint64_t prepay_window;          /* payments sent ahead (0 = off) */
        sim_choice choice;
        uint64_t choice_sample;          /* providers looked at per choice */
        uint64_t timeout_ms;             /* silent-provider timeout */
        uint64_t retries;                /* other providers tried after a refusal */
        double never_pay, double_spend, forge, untrusted_mint, replay;
    } customers;

    struct {
        sim_latency_model latency;
        double latency_ms, latency_max_ms, latency_sigma, jitter_ms;
        double loss;    /* per-segment loss probability (costs one RTO) */
        double rto_ms;  /* retransmission timeout added per lost segment */
        double bandwidth_kbps; /* per link direction; 0 = unlimited */
        uint64_t connect_rtts; /* round trips before a connection is usable */
        sim_window partitions[SIM_MAX_WINDOWS];
        size_t n_partitions;
        sim_window disconnects[SIM_MAX_WINDOWS];
        size_t n_disconnects;
    } network;

    struct {
        double latency_ms;
        uint64_t input_fee_ppk;
        sim_window outages[SIM_MAX_WINDOWS];
        size_t n_outages;
    } mint;
} sim_scenario;

/* The built-in default scenario as JSON text (static storage). */
const char *sim_scenario_default_json(void);

/* Opaque builder: defaults, then a file, then overrides, then sim_scenario. */
typedef struct sim_scenario_builder sim_scenario_builder;

/* New builder holding the defaults. NULL on allocation failure. */
sim_scenario_builder *sim_scenario_builder_new(void);
/* Release the builder and its JSON (NULL is fine). */
void sim_scenario_builder_free(sim_scenario_builder *b);

/* Merge a scenario JSON text (NUL-terminated, at most 1 MiB) over the
 * current values. DVM_ERR_INVALID with a reason in err (err_len bytes,
 * NUL-terminated) for bad JSON, an unknown field or a wrong type. */
dvm_err sim_scenario_merge_json(sim_scenario_builder *b, const char *text, char *err, size_t err_len);

/* Apply one override "PATH=VALUE": PATH is dotted (customers.double_spend),
 * VALUE is JSON (a number, true/false, an array ...) or else taken as a
 * string. DVM_ERR_NOT_FOUND for an unknown path, DVM_ERR_INVALID for a bad
 * value; reason in err. */
dvm_err sim_scenario_set(sim_scenario_builder *b, const char *assignment, char *err, size_t err_len);

/* Validate and convert into *out. DVM_ERR_INVALID with a reason for a value
 * out of range (a fraction outside [0,1], min > max, zero counts ...). */
dvm_err sim_scenario_build(const sim_scenario_builder *b, sim_scenario *out, char *err, size_t err_len);

/* The current values as compact JSON with sorted keys (malloc'd string,
 * caller frees); NULL on allocation failure. */
char *sim_scenario_builder_dump(const sim_scenario_builder *b);

#endif
