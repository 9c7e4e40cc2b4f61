/* dvm-bench — benchmarks of the chunk and payment hot paths.
 * Usage: dvm-bench [--runs N] [--scale X] BENCH [ARGS]; prints JSON lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define BENCH(name, summary) int bench_##name(const bench_opts *o, int argc, char **argv);
#include "benches.def"
#undef BENCH

static const struct {
    const char *name;
    const char *summary;
    bench_fn fn;
} benches[] = {
#define BENCH(name, summary) {#name, summary, bench_##name},
#include "benches.def"
#undef BENCH
};

static void usage(FILE *out)
{
    fprintf(out, "usage: dvm-bench [--runs N] [--scale X] BENCH [ARGS]\n\n"
                 "Each case runs N times (default 5); the median is the figure, with\n"
                 "min, max and peak RSS. --scale multiplies the work per run (ci uses\n"
                 "less). One JSON line per case on stdout.\n\nbenchmarks:\n");
    for (size_t i = 0; i < sizeof benches / sizeof benches[0]; i++)
        fprintf(out, "  %-13s %s\n", benches[i].name, benches[i].summary);
}

int main(int argc, char **argv)
{
    bench_opts o = {.runs = 5, .scale = 1.0};
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            o.runs = atoi(argv[++i]);
            if (o.runs < 1 || o.runs > BENCH_MAX_RUNS) {
                fprintf(stderr, "dvm-bench: --runs must be 1..%d\n", BENCH_MAX_RUNS);
                return 2;
            }
        } else if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc) {
            o.scale = atof(argv[++i]);
            if (!(o.scale > 0 && o.scale <= 100)) {
                fprintf(stderr, "dvm-bench: --scale must be in (0, 100]\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            break;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    for (size_t k = 0; k < sizeof benches / sizeof benches[0]; k++)
        if (strcmp(argv[i], benches[k].name) == 0)
            return benches[k].fn(&o, argc - i, argv + i);
    fprintf(stderr, "dvm-bench: unknown benchmark '%s'\n", argv[i]);
    return 2;
}
