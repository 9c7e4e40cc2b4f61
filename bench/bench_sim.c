/* dvm-bench sim — the simulator's speed and memory: events/s (events popped
 * from the virtual event queue per wall-clock second, one core) and peak RSS,
 * events/s counts CPU seconds of the run (user + system), so it is a
 * one-core figure even on a loaded machine; wall_events_per_s is beside it.
 * For the built-in default scenario and fixtures/scenarios/large.json (or the
 * scenario files named on the command line). Each run happens in a forked
 * child so its peak RSS is its own (wait4's rusage), not the bench process's.
 *
 * usage: dvm-bench sim [SCENARIO.json ...]   ("default" = built-in) */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "sim.h"

struct child_result {
    uint64_t events;
    uint64_t jobs_completed;
    double seconds;
    int ok;
};

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, 4096, f);
        len += n;
        if (n < 4096)
            break;
    }
    fclose(f);
    buf[len] = 0;
    return buf;
}

/* In the child: build and run the scenario, report through the pipe. */
static void child_run(const char *scenario, double scale, int fd)
{
    struct child_result r = {0};
    char err[256] = "";
    sim_scenario_builder *b = sim_scenario_builder_new();
    char *text = NULL;
    if (b && strcmp(scenario, "default") != 0) {
        text = read_text(scenario);
        if (!text || sim_scenario_merge_json(b, text, err, sizeof err) != DVM_OK)
            goto done;
    }
    if (b && scale < 1.0) {
        /* ci --quick: fewer jobs, same swarm size */
        char set[64];
        sim_scenario sc0;
        if (sim_scenario_build(b, &sc0, err, sizeof err) != DVM_OK)
            goto done;
        snprintf(set, sizeof set, "jobs=%llu",
                 (unsigned long long)((double)sc0.jobs * scale) + 1);
        if (sim_scenario_set(b, set, err, sizeof err) != DVM_OK)
            goto done;
    }
    sim_scenario sc;
    if (!b || sim_scenario_build(b, &sc, err, sizeof err) != DVM_OK)
        goto done;
    sim_summary *sum = calloc(1, sizeof *sum);
    if (!sum)
        goto done;
    double t0 = bench_now();
    dvm_err e = sim_run(&sc, NULL, sum, err, sizeof err);
    r.seconds = bench_now() - t0;
    r.events = sum->events;
    r.jobs_completed = sum->jobs_completed;
    r.ok = (e == DVM_OK && sum->n_violations == 0);
    free(sum);
done:
    if (!r.ok && err[0])
        fprintf(stderr, "bench sim: %s: %s\n", scenario, err);
    free(text);
    sim_scenario_builder_free(b);
    if (write(fd, &r, sizeof r) != (ssize_t)sizeof r)
        _exit(3);
    _exit(r.ok ? 0 : 1);
}

static int one_case(const bench_opts *o, const char *scenario)
{
    double rates[BENCH_MAX_RUNS], wall[BENCH_MAX_RUNS];
    long rss_max = 0;
    uint64_t events = 0;
    for (int run = 0; run < o->runs; run++) {
        int fds[2];
        if (pipe(fds) != 0)
            return 1;
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0)
            return 1;
        if (pid == 0) {
            close(fds[0]);
            child_run(scenario, o->scale, fds[1]);
        }
        close(fds[1]);
        struct child_result r = {0};
        ssize_t got = read(fds[0], &r, sizeof r);
        close(fds[0]);
        int status = 0;
        struct rusage ru;
        while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
        }
        if (got != (ssize_t)sizeof r || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || !r.ok) {
            fprintf(stderr, "bench sim: %s failed (status %d)\n", scenario, status);
            return 1;
        }
        /* One core: events per CPU second of the child (immune to other
         * load on a shared machine); wall-clock rate reported alongside. */
        double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
        rates[run] = (double)r.events / (cpu > 1e-6 ? cpu : 1e-6);
        wall[run] = (double)r.events / r.seconds;
        events = r.events;
        if (ru.ru_maxrss > rss_max)
            rss_max = ru.ru_maxrss;
    }
    double v[BENCH_MAX_RUNS], med, mn, mx;
    memcpy(v, rates, sizeof(double) * (size_t)o->runs);
    bench_stats(v, o->runs, &med, &mn, &mx);
    double wmed, wmn, wmx;
    bench_stats(wall, o->runs, &wmed, &wmn, &wmx);
    const char *name = strrchr(scenario, '/') ? strrchr(scenario, '/') + 1 : scenario;
    printf("{\"bench\":\"sim\",\"impl\":\"c\",\"scenario\":\"%s\",\"events\":%llu,"
           "\"events_per_s\":%.1f,\"wall_events_per_s\":%.1f,\"runs\":%d,\"min\":%.1f,"
           "\"max\":%.1f,\"peak_rss_kb\":%ld}\n",
           name, (unsigned long long)events, med, wmed, o->runs, mn, mx, rss_max);
    fflush(stdout);
    return 0;
}

int bench_sim(const bench_opts *o, int argc, char **argv)
{
    static const char *defaults[] = {"default", "fixtures/scenarios/large.json"};
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            if (one_case(o, argv[i]) != 0)
                return 1;
        return 0;
    }
    for (size_t i = 0; i < 2; i++)
        if (one_case(o, defaults[i]) != 0)
            return 1;
    return 0;
}
