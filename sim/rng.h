/* dvmstream simulator — the seeded PRNG.
 *
 * Algorithm: xoshiro256** (Blackman and Vigna, 2018) with its 256-bit state
 * seeded from one 64-bit seed through splitmix64, as its authors recommend.
 * Every draw in the simulator comes from a sim_rng, so a run is a pure
 * function of (scenario, seed). Derived streams (one per virtual peer, for
 * the core's key and secret generation) are seeded with splitmix64 of
 * (parent seed, stream number), so adding draws in one peer never shifts
 * another's.
 *
 * Floating point is used only to shape distributions (exponential,
 * log-normal); results are rounded to integer microseconds at once, and the
 * code is built with ISO C floating-point contraction off, so -O0 and -O2
 * builds produce the same numbers. */
#ifndef DVM_SIM_RNG_H
#define DVM_SIM_RNG_H

#include <stdint.h>

#include "common/rng.h"

typedef struct sim_rng {
    uint64_t s[4];
} sim_rng;

/* splitmix64 step: advances *state and returns the next output. */
uint64_t sim_splitmix64(uint64_t *state);

/* Seed the xoshiro256** state from `seed` (splitmix64 fills the 4 words). */
void sim_rng_seed(sim_rng *r, uint64_t seed);

/* Seed a derived stream: sim_rng_seed(r, mix(seed, stream)). */
void sim_rng_seed_stream(sim_rng *r, uint64_t seed, uint64_t stream);

/* Next 64 random bits (xoshiro256**). */
uint64_t sim_rng_u64(sim_rng *r);

/* Uniform integer in [0, n) without modulo bias (Lemire's method); 0 when
 * n == 0. */
uint64_t sim_rng_below(sim_rng *r, uint64_t n);

/* Uniform integer in [lo, hi] (inclusive); lo when hi <= lo. */
uint64_t sim_rng_range(sim_rng *r, uint64_t lo, uint64_t hi);

/* Uniform double in [0, 1) with 53 random bits. */
double sim_rng_unit(sim_rng *r);

/* True with probability p (p <= 0: never, p >= 1: always). */
int sim_rng_chance(sim_rng *r, double p);

/* Exponential variate with the given mean, rounded to an integer
 * (microseconds in practice); 0 when mean <= 0. */
uint64_t sim_rng_exp(sim_rng *r, double mean);

/* Standard normal variate (Box-Muller, one of the pair used). */
double sim_rng_normal(sim_rng *r);

/* Fill buf with random bytes (little-endian words of sim_rng_u64). */
void sim_rng_fill(sim_rng *r, uint8_t *buf, size_t len);

/* A dvm_rng (core/common/rng.h) drawing from r; r must outlive it. */
dvm_rng sim_rng_as_dvm(sim_rng *r);

#endif
