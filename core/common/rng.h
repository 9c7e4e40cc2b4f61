/* dvmstream — injected randomness.
 *
 * core/ never draws randomness itself (DESIGN.md, "The core is sans-I/O"):
 * every function that needs random bytes takes a dvm_rng. The live tools
 * fill it with libsodium's randombytes_buf; the simulator and the fuzzers
 * with a seeded PRNG, so runs are reproducible. */
#ifndef DVM_COMMON_RNG_H
#define DVM_COMMON_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct dvm_rng {
    /* Fill buf[0..len) with random bytes. Must not fail. */
    void (*fill)(void *ctx, uint8_t *buf, size_t len);
    void *ctx;
} dvm_rng;

/* Convenience: rng->fill(rng->ctx, buf, len). */
static inline void dvm_rng_fill(const dvm_rng *rng, uint8_t *buf, size_t len)
{
    rng->fill(rng->ctx, buf, len);
}

#endif
