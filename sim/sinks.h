/* dvmstream simulator — file-backed output sinks (used by `dvm sim` and
 * the tests; the engine itself never touches files).
 *
 *   trace   -> FILE (NDJSON)
 *   packet  -> libpcap savefile, LINKTYPE_RAW (pcap_open_dead + pcap_dump)
 *   csv     -> DIR/jobs.csv and DIR/providers.csv
 *   progress-> a one-line bar on stderr (only if enabled) */
#ifndef DVM_SIM_SINKS_H
#define DVM_SIM_SINKS_H

#include <stdbool.h>
#include <stdio.h>

#include "trace.h"

typedef struct sim_file_sinks {
    FILE *trace;          /* owned */
    void *pcap;           /* pcap_t*, owned */
    void *dumper;         /* pcap_dumper_t*, owned */
    FILE *jobs_csv;       /* owned */
    FILE *providers_csv;  /* owned */
    bool progress;        /* draw a progress bar on stderr */
    bool failed;          /* a write failed */
    char error[256];      /* first failure, for the caller to report */
    unsigned last_pct;
} sim_file_sinks;

/* Open the requested outputs (NULL path = not wanted). DVM_ERR_INVALID with
 * fs->error set when a file cannot be created; what was opened is closed by
 * sim_file_sinks_close either way. */
int sim_file_sinks_open(sim_file_sinks *fs, const char *trace_path, const char *pcap_path,
                        const char *metrics_dir, bool progress);

/* The sim_sinks that write into fs. */
sim_sinks sim_file_sinks_get(sim_file_sinks *fs);

/* Flush and close everything; returns 0, or -1 if any write failed
 * (fs->error says which). */
int sim_file_sinks_close(sim_file_sinks *fs);

#endif
