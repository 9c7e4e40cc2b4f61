/* `dvm sim` from the outside: flags, outputs, exit codes, and the same
 * trace_hash from the optimised build (build/, -O2) and the sanitized
 * debug build (build-san/, -O0). */
#define _DEFAULT_SOURCE
#include <criterion/criterion.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spawn_run.h"

static char tmpdir[64];

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dvm-sim-cli-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void teardown(void)
{
    if (!spawn_rm_rf(tmpdir))
        cr_log_warn("could not remove %s", tmpdir);
}

static const char *bin(void)
{
    const char *b = getenv("DVM_BIN");
    return b ? b : "build/bin";
}

/* Run `dvm sim ARGS` (from the repo root; ARGS split at spaces, no
 * quoting), stdout to OUT, stderr to ERR; the exit status. Bounded
 * (spawn_run.h): a run past 240 s is killed and fails the test. */
static int dvm_at(const char *dvm, const char *args, const char *out, const char *err)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", args);
    char *argv[64] = {(char *)dvm, "sim"};
    int n = 2;
    char *save = NULL;
    for (char *w = strtok_r(buf, " ", &save); w && n < 63; w = strtok_r(NULL, " ", &save))
        argv[n++] = w;
    argv[n] = NULL;
    int rc = spawn_run_files(argv, out, err, 240000);
    cr_assert(rc < 128, "dvm sim %s was killed by signal %d", args, rc - 128);
    return rc;
}

static int dvm(const char *args, char *out, char *err)
{
    char path[512];
    snprintf(path, sizeof path, "%s/dvm", bin());
    sprintf(out, "%s/out.txt", tmpdir);
    sprintf(err, "%s/err.txt", tmpdir);
    return dvm_at(path, args, out, err);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    cr_assert_not_null(b);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    b[n] = 0;
    if (len)
        *len = (size_t)n;
    return b;
}

#define SMALL "--providers 8 --customers 20 --jobs 10 --set customers.arrival_rate_hz=20"

TestSuite(sim_cli, .init = setup, .fini = teardown, .timeout = 300);

Test(sim_cli, help_lists_the_flags)
{
    char out[512], err[512];
    cr_assert_eq(dvm("--help", out, err), 0);
    char *t = slurp(out, NULL);
    cr_assert_not_null(strstr(t, "--set PATH=VALUE"));
    cr_assert_not_null(strstr(t, "--pcap FILE"));
    free(t);
}

Test(sim_cli, bad_flags_and_paths_are_usage_errors)
{
    char out[512], err[512];
    cr_assert_eq(dvm("--set customers.double_spnd=0.2", out, err), 2);
    char *t = slurp(err, NULL);
    cr_assert_not_null(strstr(t, "unknown scenario field 'customers.double_spnd'"), "%s", t);
    free(t);
    cr_assert_eq(dvm("--set customers.forge=2", out, err), 2);
    cr_assert_eq(dvm("--jobs many", out, err), 2);
    cr_assert_eq(dvm("--duration -1", out, err), 2);
    cr_assert_eq(dvm("fixtures/scenarios/no-such-scenario.json", out, err), 2);
    cr_assert_eq(dvm("--no-such-flag", out, err), 2);
}

Test(sim_cli, print_scenario_applies_overrides_in_order)
{
    char out[512], err[512];
    cr_assert_eq(dvm("fixtures/scenarios/double-spend.json --seed 7 --set customers.double_spend=0.5 --print-scenario",
                     out, err),
                 0);
    char *t = slurp(out, NULL);
    json_error_t je;
    json_t *o = json_loads(t, 0, &je);
    cr_assert_not_null(o, "%s", je.text);
    cr_assert_eq(json_integer_value(json_object_get(o, "seed")), 7);
    cr_assert_float_eq(json_number_value(json_object_get(json_object_get(o, "customers"), "double_spend")), 0.5,
                       1e-12);
    json_decref(o);
    free(t);
}

Test(sim_cli, json_summary_trace_file_and_metrics)
{
    char out[512], err[512], args[1024];
    snprintf(args, sizeof args, SMALL " --json --trace %s/t.ndjson --metrics %s/m --pcap %s/p.pcap", tmpdir,
             tmpdir, tmpdir);
    cr_assert_eq(dvm(args, out, err), 0, "%s", slurp(err, NULL));
    char *t = slurp(out, NULL);
    json_error_t je;
    json_t *o = json_loads(t, 0, &je);
    cr_assert_not_null(o, "stdout is not one JSON object: %s", je.text);
    const char *keys[] = {"seed", "events", "virtual_seconds", "jobs_started", "jobs_completed", "jobs_failed",
                          "chunks", "sats_minted", "sats_paid", "sats_earned", "sats_claimed",
                          "double_spends_detected", "provider_losses_sats", "customer_losses_sats",
                          "latency_first_chunk", "latency_job", "trace_hash"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_assert_not_null(json_object_get(o, keys[i]), "summary lacks %s", keys[i]);
    cr_assert_eq(json_integer_value(json_object_get(o, "jobs_completed")), 10);
    cr_assert_not_null(json_object_get(json_object_get(o, "latency_job"), "p99_ms"));
    /* trace_hash is the SHA-256 of the trace file */
    size_t n;
    char path[512];
    snprintf(path, sizeof path, "%s/t.ndjson", tmpdir);
    char *tr = slurp(path, &n);
    uint8_t h[32];
    char hex[65];
    crypto_hash_sha256(h, (const unsigned char *)tr, n);
    for (int i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", h[i]);
    cr_assert_str_eq(json_string_value(json_object_get(o, "trace_hash")), hex);
    free(tr);
    snprintf(path, sizeof path, "%s/m/jobs.csv", tmpdir);
    char *csv = slurp(path, NULL);
    cr_assert_eq(strncmp(csv, "cjob,customer,", 14), 0);
    free(csv);
    snprintf(path, sizeof path, "%s/m/providers.csv", tmpdir);
    csv = slurp(path, NULL);
    cr_assert_eq(strncmp(csv, "provider,behaviour,", 19), 0);
    free(csv);
    struct stat st;
    snprintf(path, sizeof path, "%s/p.pcap", tmpdir);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_gt(st.st_size, 24);
    json_decref(o);
    free(t);
}

Test(sim_cli, a_violated_invariant_exits_1_and_names_it)
{
    char out[512], err[512];
    cr_assert_eq(dvm(SMALL " --set providers.max_unclaimed_sats=1", out, err), 1);
    char *t = slurp(err, NULL);
    cr_assert_not_null(strstr(t, "invariant violated: all_jobs_complete"), "%s", t);
    free(t);
}

static char *hash_of(const char *dvm_path, const char *args)
{
    char out[512], err[512];
    sprintf(out, "%s/o-%d.txt", tmpdir, (int)strlen(dvm_path));
    sprintf(err, "%s/e-%d.txt", tmpdir, (int)strlen(dvm_path));
    cr_assert_eq(dvm_at(dvm_path, args, out, err), 0, "%s failed", dvm_path);
    char *t = slurp(out, NULL);
    json_t *o = json_loads(t, 0, NULL);
    cr_assert_not_null(o);
    char *h = strdup(json_string_value(json_object_get(o, "trace_hash")));
    json_decref(o);
    free(t);
    return h;
}

Test(sim_cli, same_hash_from_the_O2_and_the_O0_sanitized_builds)
{
    const char *src = getenv("DVM_SOURCE");
    if (!src)
        src = ".";
    char opt[512], dbg[512];
    snprintf(opt, sizeof opt, "%s/build/bin/dvm", src);
    snprintf(dbg, sizeof dbg, "%s/build-san/bin/dvm", src);
    if (access(opt, X_OK) != 0 || access(dbg, X_OK) != 0)
        cr_skip_test("needs both %s and %s (ci/build both builds them)", opt, dbg);
    /* a scenario with every kind of randomness: log-normal latency, loss,
     * adversaries */
    const char *args = SMALL " --json --set network.loss=0.02 --set customers.double_spend=0.2"
                             " --set providers.stall=0.1";
    char *a = hash_of(opt, args);
    char *b = hash_of(dbg, args);
    cr_assert_str_eq(a, b, "-O2 and -O0 builds disagree");
    free(a);
    free(b);
}
