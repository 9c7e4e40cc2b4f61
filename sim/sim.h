/* dvmstream simulator — one deterministic run of a scenario.
 *
 * sim_run builds the virtual swarm of a scenario (providers, customers, a
 * mock mint, links), runs it on the virtual clock until every job is over
 * or duration_s is reached, checks the invariants and fills a summary. It
 * drives the real core: provider and customer sessions (core/session), the
 * NDJSON framer and codec (core/wire), and Cashu mint, wallet and payment
 * policy logic (core/cashu, through sim/pay.h). Everything random comes
 * from xoshiro256** seeded by the scenario's seed (sim/rng.h); there is no
 * wall clock and no I/O except through the sinks passed in (sim/trace.h).
 *
 * Same scenario, same seed: the same trace bytes and trace_hash. */
#ifndef DVM_SIM_SIM_H
#define DVM_SIM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "scenario.h"
#include "trace.h"

#define SIM_MAX_REASONS 24
#define SIM_MAX_VIOLATIONS 8

typedef struct sim_percentiles {
    double p50_ms, p90_ms, p99_ms;
    uint64_t n; /* samples */
} sim_percentiles;

typedef struct sim_summary {
    uint64_t seed;
    uint64_t events;          /* events popped from the queue */
    double virtual_seconds;   /* virtual time at the end */
    uint64_t jobs_started;    /* customer jobs that arrived */
    uint64_t jobs_completed;  /* ended with a result */
    uint64_t jobs_failed;     /* all other ends (by reason below) */
    struct {
        char name[32];
        uint64_t count;
    } failed[SIM_MAX_REASONS];
    size_t n_failed;
    uint64_t attempts;        /* provider connections (retries included) */
    uint64_t chunks;          /* chunks received by customers */
    uint64_t messages;        /* wire messages sent */
    uint64_t wire_bytes;      /* NDJSON bytes sent */
    uint64_t sats_minted;
    uint64_t sats_paid;       /* in payment messages */
    uint64_t sats_earned;     /* credited by providers after verification */
    uint64_t sats_claimed;    /* received by providers at claim */
    uint64_t double_spends_detected; /* tokens refused at claim as spent */
    uint64_t payments_rejected;      /* refused by the payment policy */
    uint64_t provider_losses_sats;
    uint64_t customer_losses_sats;     /* paid, not delivered, job failed */
    uint64_t customer_unused_credit_sats; /* paid, not used, job completed
                                             (prepaid cycle granularity) */
    sim_percentiles first_chunk, job;
    uint64_t trace_bytes;
    char trace_hash[65];
    /* invariants: names of those violated, with a detail each */
    size_t n_violations;
    struct {
        char name[48];
        char detail[160];
    } violations[SIM_MAX_VIOLATIONS];
} sim_summary;

/* Run `sc`. sinks may be NULL (trace hashed, nothing written).
 * Returns DVM_OK when the run completed (check summary->n_violations for
 * invariants), DVM_ERR_NOMEM, or another error with a reason in err. */
dvm_err sim_run(const sim_scenario *sc, const sim_sinks *sinks, sim_summary *summary, char *err,
                size_t err_len);

/* The summary as one JSON object (compact, keys in a fixed order) + "\n",
 * appended to out. */
dvm_err sim_summary_json(const sim_summary *s, dvm_buf *out);

/* A human-readable summary (several lines) appended to out. */
dvm_err sim_summary_text(const sim_summary *s, dvm_buf *out);

#endif
