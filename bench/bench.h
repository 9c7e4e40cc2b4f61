/* dvm-bench — shared helpers: timing, repeated runs, JSON-line output.
 *
 * Every benchmark runs its case `runs` times, reports the median as the
 * headline figure with min and max, and the process's peak RSS. Output is
 * one JSON object per case on stdout (see bench_emit). */
#ifndef DVM_BENCH_H
#define DVM_BENCH_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_MAX_RUNS 64

typedef struct bench_opts {
    int runs;        /* repetitions per case (default 5) */
    double scale;    /* work multiplier (default 1.0; ci uses < 1 for speed) */
} bench_opts;

/* Monotonic time in seconds (CLOCK_MONOTONIC). */
double bench_now(void);

/* CPU time of this process (all threads, user + system) in seconds
 * (CLOCK_PROCESS_CPUTIME_ID). On a shared machine wall time also counts the
 * time other processes held the CPU; CPU time does not. */
double bench_cpu_now(void);

/* Peak resident set size of this process so far, in KiB (getrusage). */
long bench_peak_rss_kb(void);

/* Median, min, max of v[0..n) (n >= 1); v is sorted in place. */
void bench_stats(double *v, int n, double *median, double *min, double *max);

/* Print one JSON line: {"bench":NAME, <extra>, "<metric>":median,
 * "runs":n, "min":..., "max":..., "peak_rss_kb":...}. `extra` is a
 * preformatted list of "key":value pairs without braces (may be ""). The
 * values v[0..n) are rates (units/s) of one run each; v is sorted. */
void bench_emit(const char *name, const char *extra, const char *metric, double *v, int n);

/* Benchmarks: each returns 0 on success, non-zero on failure (message on
 * stderr). argc/argv are the arguments after the subcommand name. */
typedef int (*bench_fn)(const bench_opts *o, int argc, char **argv);

#endif
