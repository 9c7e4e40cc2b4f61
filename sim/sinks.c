#define _DEFAULT_SOURCE
#include "sinks.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"

static void fail(sim_file_sinks *fs, const char *what)
{
    if (!fs->failed)
        snprintf(fs->error, sizeof fs->error, "%s: %s", what, strerror(errno));
    fs->failed = true;
}

static void w_trace(void *ctx, const uint8_t *d, size_t n)
{
    sim_file_sinks *fs = ctx;
    if (fs->trace && fwrite(d, 1, n, fs->trace) != n)
        fail(fs, "trace");
}

static void w_packet(void *ctx, uint64_t t_us, const uint8_t *pkt, size_t len)
{
    sim_file_sinks *fs = ctx;
    if (!fs->dumper)
        return;
    struct pcap_pkthdr h;
    memset(&h, 0, sizeof h);
    /* virtual time, offset to a fixed epoch (2026-01-01) so tools show a
     * plausible date; deterministic */
    h.ts.tv_sec = (time_t)(1767225600ULL + t_us / 1000000);
    h.ts.tv_usec = (suseconds_t)(t_us % 1000000);
    h.caplen = h.len = (bpf_u_int32)len;
    pcap_dump((u_char *)fs->dumper, &h, pkt);
}

static void w_csv(void *ctx, const char *table, const char *line, size_t len)
{
    sim_file_sinks *fs = ctx;
    FILE *f = !strcmp(table, "jobs") ? fs->jobs_csv : !strcmp(table, "providers") ? fs->providers_csv : NULL;
    if (f && fwrite(line, 1, len, f) != len)
        fail(fs, table);
}

static void w_progress(void *ctx, uint64_t done, uint64_t total, uint64_t now_us, uint64_t events)
{
    sim_file_sinks *fs = ctx;
    if (!fs->progress || !total)
        return;
    unsigned pct = (unsigned)(done >= total ? 100 : done * 100 / total);
    if (pct == fs->last_pct)
        return;
    fs->last_pct = pct;
    char bar[41];
    unsigned fill = pct * 40 / 100;
    for (unsigned i = 0; i < 40; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[40] = 0;
    fprintf(stderr, "\r[%s] %3u%%  %llu/%llu jobs  t=%.1fs  %llu events", bar, pct, (unsigned long long)done,
            (unsigned long long)total, (double)now_us / 1e6, (unsigned long long)events);
}

int sim_file_sinks_open(sim_file_sinks *fs, const char *trace_path, const char *pcap_path,
                        const char *metrics_dir, bool progress)
{
    memset(fs, 0, sizeof *fs);
    fs->progress = progress;
    fs->last_pct = 101;
    if (trace_path) {
        fs->trace = fopen(trace_path, "wb");
        if (!fs->trace) {
            fail(fs, trace_path);
            return DVM_ERR_INVALID;
        }
    }
    if (pcap_path) {
        pcap_t *p = pcap_open_dead(DLT_RAW, 65535);
        if (!p) {
            snprintf(fs->error, sizeof fs->error, "pcap_open_dead failed");
            fs->failed = true;
            return DVM_ERR_INVALID;
        }
        fs->pcap = p;
        fs->dumper = pcap_dump_open(p, pcap_path);
        if (!fs->dumper) {
            snprintf(fs->error, sizeof fs->error, "%s: %s", pcap_path, pcap_geterr(p));
            fs->failed = true;
            return DVM_ERR_INVALID;
        }
    }
    if (metrics_dir) {
        if (mkdir(metrics_dir, 0777) != 0 && errno != EEXIST) {
            fail(fs, metrics_dir);
            return DVM_ERR_INVALID;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/jobs.csv", metrics_dir);
        fs->jobs_csv = fopen(path, "w");
        if (!fs->jobs_csv) {
            fail(fs, path);
            return DVM_ERR_INVALID;
        }
        snprintf(path, sizeof path, "%s/providers.csv", metrics_dir);
        fs->providers_csv = fopen(path, "w");
        if (!fs->providers_csv) {
            fail(fs, path);
            return DVM_ERR_INVALID;
        }
    }
    return DVM_OK;
}

sim_sinks sim_file_sinks_get(sim_file_sinks *fs)
{
    sim_sinks s = {
        .trace = fs->trace ? w_trace : NULL,
        .packet = fs->dumper ? w_packet : NULL,
        .csv = (fs->jobs_csv || fs->providers_csv) ? w_csv : NULL,
        .progress = fs->progress ? w_progress : NULL,
        .ctx = fs,
    };
    return s;
}

int sim_file_sinks_close(sim_file_sinks *fs)
{
    if (fs->trace && fclose(fs->trace) != 0)
        fail(fs, "trace");
    if (fs->dumper) {
        if (pcap_dump_flush(fs->dumper) != 0)
            fail(fs, "pcap");
        pcap_dump_close(fs->dumper);
    }
    if (fs->pcap)
        pcap_close(fs->pcap);
    if (fs->jobs_csv && fclose(fs->jobs_csv) != 0)
        fail(fs, "jobs.csv");
    if (fs->providers_csv && fclose(fs->providers_csv) != 0)
        fail(fs, "providers.csv");
    if (fs->progress && fs->last_pct != 101)
        fputc('\n', stderr);
    fs->trace = NULL;
    fs->dumper = fs->pcap = NULL;
    fs->jobs_csv = fs->providers_csv = NULL;
    return fs->failed ? -1 : 0;
}
