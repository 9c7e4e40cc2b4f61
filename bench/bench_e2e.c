/* dvm-bench e2e — end to end on 127.0.0.1 through real processes: a `dvm
 * mint`, a `dvm agent` (builtin processor, unthrottled) and a `dvm customer`,
 * over TCP with SecretStream encryption, every payment a real Cashu token
 * whose DLEQ proofs the agent verifies before crediting, claimed at the mint
 * when the job ends. The customer's wallet is funded beforehand (`dvm wallet
 * mint`); the figure is chunks per second of the streaming phase, from the
 * customer's first payment to its `done` (its --log-json timestamps), so the
 * one-off funding and splitting are not in it (they are reported as
 * split_ms). Cases: chunks_per_payment 10 and 1000.
 * The baseline is ci/interop/bench_e2e.mjs (two JavaScript hyperswarm peers).
 *
 * The ceiling: each case also reports verify_ceiling_chunks_per_s, what the
 * agent's verifier pool can check at most: payments per second for this
 * token shape (chunks_per_payment sats, 1 sat per chunk, as the binary
 * split of proofs the customer pays with: 10 = 8+2, 1000 = 6 proofs) run
 * in-process as the agent's pool runs it (token decode +
 * dvm_pay_policy_prepare + the DLEQ check of every proof, NUT-12) on
 * verify_threads threads (the count the agent is started with: one per
 * online CPU, at most 16), times chunks_per_payment; and of_ceiling, the
 * end-to-end figure over it. No pipeline that verifies every payment can
 * pass the ceiling on this machine; it is measured in the same session
 * (the same load), median of the same number of runs.
 *
 * usage: dvm-bench e2e [--chunks N]   (needs build/bin/dvm beside dvm-bench) */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>

#include "bench.h"
#include "live/rmtree.h"
#include "cashu/policy.h"
#include "cashu/token.h"
#include "cashu_env.h"

extern char **environ;

struct procs {
    pid_t mint, agent;
    char dir[64];
    char dvm[PATH_MAX];
    char mint_url[128];
    char agent_addr[128];
};

static pid_t spawn_to(const char *const argv[], const char *out_path)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid = -1;
    if (posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ) != 0)
        pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

/* Poll file `path` (up to ~15 s) for `marker` and copy the token after it
 * (up to whitespace) into out. */
static int wait_for(const char *path, const char *marker, char *out, size_t outlen)
{
    for (int i = 0; i < 1500; i++) {
        FILE *f = fopen(path, "r");
        if (f) {
            char line[1024];
            while (fgets(line, sizeof line, f)) {
                char *p = strstr(line, marker);
                if (p) {
                    p += strlen(marker);
                    size_t n = strcspn(p, " \t\r\n\"");
                    if (n >= outlen)
                        n = outlen - 1;
                    memcpy(out, p, n);
                    out[n] = 0;
                    fclose(f);
                    return 0;
                }
            }
            fclose(f);
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

static int run_wait(const char *const argv[], const char *out_path, int timeout_s)
{
    pid_t pid = spawn_to(argv, out_path);
    if (pid < 0)
        return -1;
    for (int i = 0; i < timeout_s * 100; i++) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fprintf(stderr, "bench e2e: %s timed out\n", argv[0]);
    return -1;
}

static void stop(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGTERM);
        for (int i = 0; i < 1000; i++) {
            if (waitpid(pid, NULL, WNOHANG) == pid)
                return;
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
}

/* ---- the verification ceiling --------------------------------------------- */

struct ceil_job {
    const dvm_pay_policy *pol;
    char **tokens;
    size_t n, first, step;
    int failed;
};

/* One verifier thread: the stateless work the agent's pool does per
 * payment (decode, prepare, DLEQ of every proof), on tokens first, first +
 * step, ... */
static void *ceil_thread(void *arg)
{
    struct ceil_job *j = arg;
    for (size_t i = j->first; i < j->n; i += j->step) {
        dvm_token t;
        char reason[200];
        dvm_pay_check c;
        if (dvm_token_decode(j->tokens[i], strlen(j->tokens[i]), &t, reason, sizeof reason) != DVM_OK) {
            j->failed = 1;
            continue;
        }
        if (dvm_pay_policy_prepare(j->pol, &t, &c, reason, sizeof reason) != DVM_PAY_ACCEPT)
            j->failed = 1;
        else {
            dvm_pay_policy_verify(j->pol, &t, &c);
            for (size_t k = 0; k < c.n_proofs; k++)
                j->failed |= c.dleq_failed[k];
        }
        dvm_pay_check_free(&c);
        dvm_token_free(&t);
    }
    return NULL;
}

/* Payments per second `threads` threads verify, for tokens of `sats`
 * (binary split), one figure per run into rates[]. 0 or -1. */
static int verify_ceiling(const bench_opts *o, uint64_t sats, size_t threads, double *rates)
{
    bench_cashu_env e;
    uint64_t amounts[8];
    size_t na = 0;
    for (int b = 62; b >= 0 && na < 8; b--)
        if (sats & ((uint64_t)1 << b))
            amounts[na++] = (uint64_t)1 << b;
    size_t n = (size_t)(128 * threads * o->scale);
    if (n < 32 * threads) /* enough per thread that starting threads does not count */
        n = 32 * threads;
    char **tokens = calloc(n, sizeof *tokens);
    dvm_pay_policy *pol = NULL;
    const char *trusted[] = {BENCH_MINT_URL};
    dvm_pay_policy_config pc = {.trusted_mints = trusted, .n_trusted = 1};
    int rc = -1;
    if (!tokens || bench_cashu_env_init(&e) != 0 || dvm_pay_policy_new(&pol, &pc) != DVM_OK ||
        dvm_pay_policy_add_keyset(pol, BENCH_MINT_URL, bench_cashu_keyset(&e)) != DVM_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        dvm_buf b;
        dvm_buf_init(&b, 0);
        if (bench_cashu_make_token(&e, amounts, na, &b) != 0 || dvm_buf_putc(&b, 0) != DVM_OK) {
            dvm_buf_free(&b);
            goto out;
        }
        tokens[i] = (char *)b.data;
    }
    for (int r = 0; r < o->runs; r++) {
        struct ceil_job jobs[16];
        pthread_t th[16];
        double t0 = bench_now();
        size_t started = 0;
        for (size_t k = 0; k < threads; k++) {
            jobs[k] = (struct ceil_job){pol, tokens, n, k, threads, 0};
            if (pthread_create(&th[k], NULL, ceil_thread, &jobs[k]) != 0)
                break;
            started++;
        }
        for (size_t k = 0; k < started; k++)
            pthread_join(th[k], NULL);
        rates[r] = (double)n / (bench_now() - t0);
        for (size_t k = 0; k < started; k++)
            if (jobs[k].failed) {
                fprintf(stderr, "bench e2e: a ceiling token did not verify\n");
                goto out;
            }
        if (started != threads)
            goto out;
    }
    rc = 0;
out:
    if (tokens)
        for (size_t i = 0; i < n; i++)
            free(tokens[i]);
    free(tokens);
    dvm_pay_policy_free(pol);
    bench_cashu_env_free(&e);
    return rc;
}

/* "2026-11-21T05:24:14.598Z" -> milliseconds since midnight. */
static long ts_ms(const char *line)
{
    const char *p = strstr(line, "\"ts\":\"");
    int h, m, s, ms;
    if (!p || sscanf(p + 6, "%*d-%*d-%*dT%d:%d:%d.%dZ", &h, &m, &s, &ms) != 4)
        return -1;
    return ((long)h * 3600 + m * 60 + s) * 1000 + ms;
}

static int start_stack(struct procs *p, uint64_t chunks, uint64_t cpp, size_t threads)
{
    char path[128], db[128], wallet[128], id[128], chunks_s[32], cpp_s[32], threads_s[32];
    snprintf(p->dir, sizeof p->dir, "/tmp/dvm-bench-e2e-XXXXXX");
    if (!mkdtemp(p->dir))
        return -1;
    snprintf(db, sizeof db, "%s/mint.db", p->dir);
    snprintf(path, sizeof path, "%s/mint.log", p->dir);
    const char *margv[] = {p->dvm, "mint", "--listen", "127.0.0.1:0", "--db", db, NULL};
    if ((p->mint = spawn_to(margv, path)) < 0 || wait_for(path, "http://", p->mint_url + 7, sizeof p->mint_url - 7) != 0) {
        fprintf(stderr, "bench e2e: the mint did not start (%s)\n", path);
        return -1;
    }
    memcpy(p->mint_url, "http://", 7);
    snprintf(wallet, sizeof wallet, "%s/agent.db", p->dir);
    snprintf(id, sizeof id, "%s/id", p->dir);
    snprintf(path, sizeof path, "%s/agent.log", p->dir);
    snprintf(chunks_s, sizeof chunks_s, "%llu", (unsigned long long)chunks);
    snprintf(cpp_s, sizeof cpp_s, "%llu", (unsigned long long)cpp);
    snprintf(threads_s, sizeof threads_s, "%zu", threads);
    const char *aargv[] = {p->dvm, "agent", "--listen", "127.0.0.1:0", "--mint", p->mint_url,
                           "--wallet", wallet, "--identity", id, "--chunks", chunks_s,
                           "--chunks-per-payment", cpp_s, "--max-unclaimed", "100000000",
                           "--max-jobs", "1", "--verify-threads", threads_s, NULL};
    if ((p->agent = spawn_to(aargv, path)) < 0 || wait_for(path, "address=", p->agent_addr, sizeof p->agent_addr) != 0) {
        fprintf(stderr, "bench e2e: the agent did not start (%s)\n", path);
        return -1;
    }
    return 0;
}

static void stop_stack(struct procs *p)
{
    stop(p->agent);
    stop(p->mint);
    if (p->dir[0] && !getenv("DVM_BENCH_KEEP")) {
        if (dvm_remove_tree(p->dir) != 0)
            fprintf(stderr, "bench e2e: could not remove %s\n", p->dir);
    }
}

/* One customer job; returns streaming chunks/s or -1. */
static double one_job(struct procs *p, uint64_t chunks, uint64_t cpp, int run, unsigned prepay,
                      double *split_ms)
{
    /* The budget buys whole payments (1 sat per chunk): ceil(chunks / cpp)
     * of them; a smaller one makes the customer stop early, as it must. */
    uint64_t budget_sats = (chunks + cpp - 1) / cpp * cpp;
    char wallet[128], out[128], log[128], budget[32], fund[32], prepay_s[16];
    snprintf(prepay_s, sizeof prepay_s, "%u", prepay);
    snprintf(wallet, sizeof wallet, "%s/customer-%d.db", p->dir, run);
    snprintf(out, sizeof out, "%s/customer-%d.json", p->dir, run);
    snprintf(log, sizeof log, "%s/customer-%d.log", p->dir, run);
    snprintf(budget, sizeof budget, "%llu", (unsigned long long)budget_sats);
    snprintf(fund, sizeof fund, "%llu", (unsigned long long)budget_sats + 64);
    const char *wargv[] = {p->dvm, "wallet", "--mint", p->mint_url, "--db", wallet, "mint", fund, NULL};
    if (run_wait(wargv, log, 120) != 0) {
        fprintf(stderr, "bench e2e: funding the customer wallet failed (%s)\n", log);
        return -1;
    }
    const char *cargv[] = {p->dvm, "customer", "--peer", p->agent_addr, "--mint", p->mint_url,
                           "--wallet", wallet, "--budget", budget, "--prepay", prepay_s, "--json",
                           "--log-json", "bench", NULL};
    /* stdout and stderr both go to the log; --json's object is its last line */
    int st = run_wait(cargv, log, 600);
    if (st != 0) {
        fprintf(stderr, "bench e2e: dvm customer exited with %d (%s)\n", st, log);
        return -1;
    }
    FILE *f = fopen(log, "r");
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    long t_offer = -1, t_pay = -1, t_done = -1;
    unsigned long long got = 0;
    while (getline(&line, &cap, f) > 0) {
        if (strstr(line, "\"event\":\"offer\"") && t_offer < 0)
            t_offer = ts_ms(line);
        else if (strstr(line, "\"event\":\"pay\"") && t_pay < 0)
            t_pay = ts_ms(line);
        else if (strstr(line, "\"event\":\"done\""))
            t_done = ts_ms(line);
        const char *c = strstr(line, "\"chunks\":");
        if (c && strstr(line, "\"job_id\""))
            got = strtoull(c + 9, NULL, 10);
    }
    free(line);
    fclose(f);
    if (got != chunks || t_pay < 0 || t_done <= t_pay) {
        fprintf(stderr, "bench e2e: job delivered %llu of %llu chunks (log %s)\n", got,
                (unsigned long long)chunks, log);
        return -1;
    }
    *split_ms = (double)(t_pay - t_offer);
    return (double)chunks / ((double)(t_done - t_pay) / 1000.0);
}

int bench_e2e(const bench_opts *o, int argc, char **argv)
{
    uint64_t chunks = (uint64_t)(4000 * o->scale); /* <= 400 payments: one split swap */
    if (argc > 2 && strcmp(argv[1], "--chunks") == 0)
        chunks = strtoull(argv[2], NULL, 10);
    if (chunks < 100)
        chunks = 100;
    struct procs p;
    memset(&p, 0, sizeof p);
    ssize_t n = readlink("/proc/self/exe", p.dvm, sizeof p.dvm - 8);
    if (n <= 0)
        return 1;
    p.dvm[n] = 0;
    char *slash = strrchr(p.dvm, '/');
    strcpy(slash + 1, "dvm");
    /* chunks_per_payment 10 and 1000 as the reference pays (on
     * pay_required), and 10 with the customer paying 4 payments ahead. */
    static const uint64_t cpps[] = {10, 1000, 10};
    static const unsigned prepays[] = {0, 0, 4};
    /* the agent inherits the environment: DVM_SYNC=normal measures its
     * wallet commits without fsync per commit (see dvm agent --sync) */
    const char *sync = getenv("DVM_SYNC");
    if (!sync || (strcmp(sync, "normal") != 0 && strcmp(sync, "full") != 0))
        sync = "full";
    /* the agent's default pool size (dvm agent --verify-threads 0) */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t threads = cpus < 1 ? 1 : cpus > 16 ? 16 : (size_t)cpus;
    int rc = 0;
    for (size_t k = 0; k < 3 && rc == 0; k++) {
        double ceil_rates[BENCH_MAX_RUNS], ceil_med, ceil_min, ceil_max;
        if (verify_ceiling(o, cpps[k], threads, ceil_rates) != 0) {
            fprintf(stderr, "bench e2e: the verification ceiling could not be measured\n");
            return 1;
        }
        bench_stats(ceil_rates, o->runs, &ceil_med, &ceil_min, &ceil_max);
        p.mint = p.agent = 0;
        p.dir[0] = 0;
        if (start_stack(&p, chunks, cpps[k], threads) != 0) {
            fprintf(stderr, "bench e2e: could not start the mint and agent\n");
            stop_stack(&p);
            return 1;
        }
        double rates[BENCH_MAX_RUNS], split = 0;
        for (int r = 0; r < o->runs; r++)
            if ((rates[r] = one_job(&p, chunks, cpps[k], r, prepays[k], &split)) < 0) {
                rc = 1;
                break;
            }
        if (rc == 0) {
            char extra[400];
            double sorted[BENCH_MAX_RUNS], med, mn, mx;
            memcpy(sorted, rates, sizeof(double) * (size_t)o->runs);
            bench_stats(sorted, o->runs, &med, &mn, &mx);
            double ceil_chunks = ceil_med * (double)cpps[k];
            snprintf(extra, sizeof extra,
                     "\"impl\":\"c\",\"chunks_per_payment\":%llu,\"chunks\":%llu,"
                     "\"prepay\":%u,\"verified_payments\":%llu,\"split_ms\":%.0f,\"sync\":\"%s\","
                     "\"verify_threads\":%zu,\"verify_ceiling_chunks_per_s\":%.0f,"
                     "\"verify_ceiling_min\":%.0f,\"verify_ceiling_max\":%.0f,\"of_ceiling\":%.3f",
                     (unsigned long long)cpps[k], (unsigned long long)chunks, prepays[k],
                     (unsigned long long)((chunks + cpps[k] - 1) / cpps[k]), split, sync, threads, ceil_chunks,
                     ceil_min * (double)cpps[k], ceil_max * (double)cpps[k],
                     ceil_chunks > 0 ? med / ceil_chunks : 0.0);
            bench_emit("e2e", extra, "chunks_per_s", rates, o->runs);
        }
        stop_stack(&p);
    }
    return rc;
}
