/* Shared helpers for the core/noise tests: a deterministic rng that first
 * hands out fixed bytes (ephemeral seeds from the JavaScript vectors), then
 * a BLAKE2b counter stream; hex and JSON fixture loading. */
#ifndef DVM_TEST_NOISE_UTIL_H
#define DVM_TEST_NOISE_UTIL_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"

typedef struct test_rng {
    uint8_t fixed[256];
    size_t fixed_len, pos;
    uint64_t ctr;
} test_rng;

static inline void test_rng_fill(void *ctx, uint8_t *buf, size_t len)
{
    test_rng *r = ctx;
    while (len) {
        if (r->pos < r->fixed_len) {
            *buf++ = r->fixed[r->pos++];
            len--;
            continue;
        }
        uint8_t block[32], c[8];
        for (int i = 0; i < 8; i++)
            c[i] = (uint8_t)(r->ctr >> (8 * i));
        r->ctr++;
        crypto_generichash(block, sizeof block, c, sizeof c, NULL, 0);
        size_t n = len < sizeof block ? len : sizeof block;
        memcpy(buf, block, n);
        buf += n;
        len -= n;
    }
}

/* Seed: the counter stream starts at `seed`; no fixed bytes. */
static inline dvm_rng test_rng_make(test_rng *r, uint64_t seed)
{
    memset(r, 0, sizeof *r);
    r->ctr = seed << 32;
    return (dvm_rng){test_rng_fill, r};
}

static inline void test_rng_push(test_rng *r, const uint8_t *p, size_t n)
{
    cr_assert(r->fixed_len + n <= sizeof r->fixed);
    memcpy(r->fixed + r->fixed_len, p, n);
    r->fixed_len += n;
}

/* Decode hex into a malloc'd buffer (free it); *len receives its length. */
static inline uint8_t *unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex) / 2;
    uint8_t *out = malloc(n ? n : 1);
    size_t got = 0;
    cr_assert(out);
    cr_assert_eq(sodium_hex2bin(out, n ? n : 1, hex, strlen(hex), NULL, &got, NULL), 0, "bad hex %s", hex);
    cr_assert_eq(got, n);
    *len = n;
    return out;
}

/* Decode hex of exactly n bytes into out. */
static inline void unhex_into(const char *hex, uint8_t *out, size_t n)
{
    size_t len;
    uint8_t *p = unhex(hex, &len);
    cr_assert_eq(len, n, "want %zu bytes, hex has %zu", n, len);
    memcpy(out, p, n);
    free(p);
}

static inline json_t *load_fixture(const char *path)
{
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    cr_assert(j, "cannot load %s: %s (run from the repository root)", path, jerr.text);
    return j;
}

static inline const char *jstr(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    cr_assert(s, "fixture field %s missing", key);
    return s;
}

#endif
