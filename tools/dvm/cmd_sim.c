/* dvm sim [SCENARIO] [flags]: run the deterministic swarm simulator. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dvm/cli.h"
#include "sim.h"
#include "sinks.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: dvm sim [SCENARIO.json] [--json] [--seed N] [--providers N]\n"
            "               [--customers N] [--jobs N] [--duration SECONDS]\n"
            "               [--set PATH=VALUE]... [--trace FILE] [--pcap FILE]\n"
            "               [--metrics DIR] [--print-scenario]\n"
            "\n"
            "Run a virtual swarm of providers and customers with a mock Cashu mint\n"
            "on a virtual clock, deterministically: the same scenario and seed give\n"
            "the same trace, byte for byte. The real core drives every peer: the\n"
            "provider and customer sessions, the NDJSON codec, and the Cashu mint,\n"
            "wallet and payment policy logic.\n"
            "\n"
            "SCENARIO is a JSON file (see fixtures/scenarios/); fields it leaves out\n"
            "take the built-in defaults (fixtures/scenarios/default.json: 200\n"
            "providers, 1000 customers, 500 jobs). Flags override the file:\n"
            "  --seed N            scenario seed (xoshiro256** seeded by splitmix64)\n"
            "  --providers N       providers.count\n"
            "  --customers N       customers.count\n"
            "  --jobs N            jobs (customer job arrivals in total)\n"
            "  --duration SECONDS  duration_s (virtual time limit)\n"
            "  --set PATH=VALUE    any scenario field, e.g. --set customers.double_spend=0.2;\n"
            "                      VALUE is JSON (number, string, array); unknown PATH is an error\n"
            "Outputs:\n"
            "  --json              one summary JSON object on stdout (else a readable summary)\n"
            "  --trace FILE        every message and event as NDJSON with virtual time (us)\n"
            "  --pcap FILE         the virtual TCP traffic (libpcap, raw IPv4) for tshark\n"
            "  --metrics DIR       DIR/jobs.csv and DIR/providers.csv\n"
            "  --print-scenario    print the effective scenario as JSON and exit\n"
            "A progress bar is drawn on stderr when it is a terminal.\n"
            "\n"
            "Exit status: 0 when every invariant holds, 1 when one is violated (its\n"
            "name is printed on stderr), 2 on a usage or scenario error.\n");
}

static char *read_file(const char *path, char *err, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, n, "cannot open %s", path);
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (len < cap)
            break;
        if (cap >= (1u << 20)) {
            snprintf(err, n, "%s: scenario larger than 1 MiB", path);
            free(buf);
            buf = NULL;
            break;
        }
        char *nb = realloc(buf, cap * 2 + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    if (buf && ferror(f)) {
        snprintf(err, n, "error reading %s", path);
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf)
        buf[len] = 0;
    else if (!err[0])
        snprintf(err, n, "out of memory");
    return buf;
}

int dvm_cmd_sim(int argc, char **argv)
{
    enum { O_SEED = 1000, O_PROV, O_CUST, O_JOBS, O_DUR, O_SET, O_TRACE, O_PCAP, O_METRICS, O_JSON, O_PRINT };
    static const struct option opts[] = {
        {"seed", required_argument, NULL, O_SEED},
        {"providers", required_argument, NULL, O_PROV},
        {"customers", required_argument, NULL, O_CUST},
        {"jobs", required_argument, NULL, O_JOBS},
        {"duration", required_argument, NULL, O_DUR},
        {"set", required_argument, NULL, O_SET},
        {"trace", required_argument, NULL, O_TRACE},
        {"pcap", required_argument, NULL, O_PCAP},
        {"metrics", required_argument, NULL, O_METRICS},
        {"json", no_argument, NULL, O_JSON},
        {"print-scenario", no_argument, NULL, O_PRINT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    /* overrides are applied in order after the file: collect them first */
    char **sets = calloc((size_t)argc + 1, sizeof *sets);
    char (*flag_sets)[96] = calloc((size_t)argc + 1, sizeof *flag_sets);
    if (!sets || !flag_sets) {
        free(sets);
        free(flag_sets);
        fprintf(stderr, "dvm sim: out of memory\n");
        return 2;
    }
    size_t n_sets = 0;
    const char *trace = NULL, *pcap = NULL, *metrics = NULL;
    bool json = false, print = false;
    int c, rc = 2;
    optind = 1;
    opterr = 0; /* dvm_bad_option reports, in one line */
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        const char *path = NULL;
        switch (c) {
        case O_SEED: path = "seed"; break;
        case O_PROV: path = "providers.count"; break;
        case O_CUST: path = "customers.count"; break;
        case O_JOBS: path = "jobs"; break;
        case O_DUR: path = "duration_s"; break;
        case O_SET: sets[n_sets++] = optarg; break;
        case O_TRACE: trace = optarg; break;
        case O_PCAP: pcap = optarg; break;
        case O_METRICS: metrics = optarg; break;
        case O_JSON: json = true; break;
        case O_PRINT: print = true; break;
        case 'h':
            usage(stdout);
            rc = 0;
            goto out;
        default: dvm_bad_option("sim", argc, argv); goto out;
        }
        if (path) {
            uint64_t v;
            double d;
            char *end;
            if (c == O_DUR) {
                d = strtod(optarg, &end);
                if (*optarg == 0 || *end || !(d > 0)) {
                    fprintf(stderr, "dvm sim: --duration wants positive seconds, got '%s'\n", optarg);
                    goto out;
                }
            } else if (!dvm_parse_u64(optarg, 9007199254740991ULL, &v)) {
                fprintf(stderr, "dvm sim: --%s wants a non-negative integer, got '%s'\n",
                        opts[c - O_SEED].name, optarg);
                goto out;
            }
            snprintf(flag_sets[n_sets], sizeof flag_sets[0], "%s=%s", path, optarg);
            sets[n_sets] = flag_sets[n_sets];
            n_sets++;
        }
    }
    if (argc - optind > 1) {
        fprintf(stderr, "dvm sim: one scenario file at most, got '%s'\n", argv[optind + 1]);
        goto out;
    }

    char err[512] = "";
    sim_scenario_builder *b = sim_scenario_builder_new();
    if (!b) {
        fprintf(stderr, "dvm sim: out of memory\n");
        goto out;
    }
    if (optind < argc) {
        char *text = read_file(argv[optind], err, sizeof err);
        if (!text || sim_scenario_merge_json(b, text, err, sizeof err) != DVM_OK) {
            fprintf(stderr, "dvm sim: %s%s%s\n", text ? argv[optind] : "", text ? ": " : "", err);
            free(text);
            sim_scenario_builder_free(b);
            goto out;
        }
        free(text);
    }
    for (size_t i = 0; i < n_sets; i++) {
        if (sim_scenario_set(b, sets[i], err, sizeof err) != DVM_OK) {
            fprintf(stderr, "dvm sim: %s\n", err);
            sim_scenario_builder_free(b);
            goto out;
        }
    }
    sim_scenario sc;
    if (sim_scenario_build(b, &sc, err, sizeof err) != DVM_OK) {
        fprintf(stderr, "dvm sim: %s\n", err);
        sim_scenario_builder_free(b);
        goto out;
    }
    if (print) {
        char *dump = sim_scenario_builder_dump(b);
        if (dump)
            printf("%s\n", dump);
        free(dump);
        sim_scenario_builder_free(b);
        rc = dump ? 0 : 2;
        goto out;
    }
    sim_scenario_builder_free(b);

    /* a bar only for a terminal and a run that is not tiny */
    bool progress = isatty(STDERR_FILENO) && sc.jobs >= 5000;
    sim_file_sinks fs;
    if (sim_file_sinks_open(&fs, trace, pcap, metrics, progress) != DVM_OK) {
        fprintf(stderr, "dvm sim: %s\n", fs.error);
        sim_file_sinks_close(&fs);
        goto out;
    }
    sim_sinks sinks = sim_file_sinks_get(&fs);
    sim_summary *sum = malloc(sizeof *sum);
    if (!sum) {
        sim_file_sinks_close(&fs);
        fprintf(stderr, "dvm sim: out of memory\n");
        goto out;
    }
    dvm_err e = sim_run(&sc, &sinks, sum, err, sizeof err);
    int close_rc = sim_file_sinks_close(&fs);
    if (e) {
        fprintf(stderr, "dvm sim: %s\n", err[0] ? err : dvm_strerror(e));
        free(sum);
        rc = 1;
        goto out;
    }
    if (close_rc) {
        fprintf(stderr, "dvm sim: writing output: %s\n", fs.error);
        free(sum);
        rc = 1;
        goto out;
    }
    dvm_buf ob;
    dvm_buf_init(&ob, 0);
    if ((json ? sim_summary_json(sum, &ob) : sim_summary_text(sum, &ob)) == DVM_OK)
        fwrite(ob.data, 1, ob.len, stdout);
    dvm_buf_free(&ob);
    for (size_t i = 0; i < sum->n_violations; i++)
        fprintf(stderr, "dvm sim: invariant violated: %s: %s\n", sum->violations[i].name,
                sum->violations[i].detail);
    rc = sum->n_violations ? 1 : 0;
    free(sum);
out:
    free(sets);
    free(flag_sets);
    return rc;
}
