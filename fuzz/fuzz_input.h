/* dvmstream fuzz harnesses: reading operations from the fuzzer's input, and
 * a deterministic dvm_rng fill for harnesses that need randomness (a fuzz
 * run must be replayable byte for byte). Header-only, harness use only. */
#ifndef DVM_FUZZ_INPUT_H
#define DVM_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include "wire/msg.h" /* dvm_str */

/* A cursor over the input; reads past the end give zeros / empty slices. */
typedef struct rd {
    const uint8_t *p;
    size_t n, i;
} rd;

static inline uint8_t u8(rd *r) { return r->i < r->n ? r->p[r->i++] : 0; }

/* Two bytes, little-endian. */
static inline uint16_t u16(rd *r)
{
    uint16_t a = u8(r);
    return (uint16_t)(a | (uint16_t)u8(r) << 8);
}

/* A borrowed slice of up to `max` input bytes (length from one byte). */
static inline dvm_str slice(rd *r, size_t max)
{
    size_t len = u8(r) % (max + 1);
    if (len > r->n - r->i)
        len = r->n - r->i;
    dvm_str s = {(const char *)r->p + r->i, len};
    r->i += len;
    return s;
}

/* splitmix64 state for prng_fill (a dvm_rng fill: ctx is a prng *). */
typedef struct {
    uint64_t s;
} prng;

static inline void prng_fill(void *ctx, uint8_t *buf, size_t len)
{
    prng *p = ctx;
    for (size_t i = 0; i < len; i++) {
        uint64_t z = (p->s += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        buf[i] = (uint8_t)(z ^ (z >> 31));
    }
}

#endif
