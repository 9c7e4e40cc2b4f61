#include "rng.h"

#include <math.h>
#include <string.h>

uint64_t sim_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void sim_rng_seed(sim_rng *r, uint64_t seed)
{
    uint64_t st = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = sim_splitmix64(&st);
}

void sim_rng_seed_stream(sim_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t st = seed ^ 0x5bd1e9955bd1e995ULL;
    uint64_t a = sim_splitmix64(&st);
    st = a ^ (stream * 0xd6e8feb86659fd93ULL);
    sim_rng_seed(r, sim_splitmix64(&st));
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t sim_rng_u64(sim_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t sim_rng_below(sim_rng *r, uint64_t n)
{
    if (n == 0)
        return 0;
    unsigned __int128 m = (unsigned __int128)sim_rng_u64(r) * n;
    uint64_t lo = (uint64_t)m;
    if (lo < n) {
        uint64_t thresh = (0 - n) % n;
        while (lo < thresh) {
            m = (unsigned __int128)sim_rng_u64(r) * n;
            lo = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

uint64_t sim_rng_range(sim_rng *r, uint64_t lo, uint64_t hi)
{
    if (hi <= lo)
        return lo;
    if (hi - lo == UINT64_MAX)
        return sim_rng_u64(r);
    return lo + sim_rng_below(r, hi - lo + 1);
}

double sim_rng_unit(sim_rng *r)
{
    return (double)(sim_rng_u64(r) >> 11) * 0x1.0p-53;
}

int sim_rng_chance(sim_rng *r, double p)
{
    if (p <= 0)
        return 0;
    if (p >= 1)
        return 1;
    return sim_rng_unit(r) < p;
}

uint64_t sim_rng_exp(sim_rng *r, double mean)
{
    if (!(mean > 0))
        return 0;
    double u = 1.0 - sim_rng_unit(r); /* (0, 1] */
    double v = -log(u) * mean;
    if (v > 9.0e18)
        return UINT64_C(9000000000000000000);
    return (uint64_t)llround(v);
}

double sim_rng_normal(sim_rng *r)
{
    double u1 = 1.0 - sim_rng_unit(r); /* (0, 1] */
    double u2 = sim_rng_unit(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void sim_rng_fill(sim_rng *r, uint8_t *buf, size_t len)
{
    while (len >= 8) {
        uint64_t v = sim_rng_u64(r);
        for (int i = 0; i < 8; i++)
            buf[i] = (uint8_t)(v >> (8 * i));
        buf += 8;
        len -= 8;
    }
    if (len) {
        uint64_t v = sim_rng_u64(r);
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)(v >> (8 * i));
    }
}

static void fill_cb(void *ctx, uint8_t *buf, size_t len) { sim_rng_fill(ctx, buf, len); }

dvm_rng sim_rng_as_dvm(sim_rng *r)
{
    dvm_rng d = {fill_cb, r};
    return d;
}
