/* dvmstream — job event logs of the live agent and customer.
 *
 * One line per job event on a FILE (stderr): human readable by default,
 *   2026-11-21T04:35:52.123Z agent job=4f2a… payment amount=10 earned=20
 * or, with json set, one NDJSON object per line:
 *   {"ts":"2026-11-21T04:35:52.123Z","who":"agent","job":"4f2a…","event":"payment","amount":10,"earned":20}
 * String values with spaces, quotes or control characters are quoted (human
 * form) or JSON-escaped; each line is written with a single fwrite so lines
 * of concurrent writers do not interleave. */
#ifndef DVM_LIVE_JOBLOG_H
#define DVM_LIVE_JOBLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct dvm_log {
    FILE *out;       /* NULL: logging off */
    bool json;       /* NDJSON instead of human lines */
    const char *who; /* "agent", "customer", "demo", ... */
} dvm_log;

typedef struct dvm_log_field {
    const char *key;
    const char *s; /* string value, or NULL for a number */
    uint64_t u;
} dvm_log_field;

/* A string field `k`=`v` for dvm_log_event (both borrowed until the call
 * returns; NULL v logs ""). Use through DVM_LS. */
static inline dvm_log_field dvm_log_str(const char *k, const char *v)
{
    dvm_log_field f = {k, v ? v : "", 0};
    return f;
}

#define DVM_LS(k, v) dvm_log_str((k), (v)) /* a string field (NULL = "") */
#define DVM_LU(k, v) ((dvm_log_field){(k), NULL, (uint64_t)(v)}) /* a number */

/* Log `event` of job `job_id` (NULL: not about one job) with n fields. */
void dvm_log_event(const dvm_log *l, const char *job_id, const char *event, const dvm_log_field *f, size_t n);

/* dvm_log_job(l, job, event, DVM_LU("amount", 10), DVM_LS("peer", p)) */
#define dvm_log_job(l, job, ev, ...)                                                                                   \
    dvm_log_event((l), (job), (ev), (const dvm_log_field[]){__VA_ARGS__},                                            \
                  sizeof((const dvm_log_field[]){__VA_ARGS__}) / sizeof(dvm_log_field))

#endif
