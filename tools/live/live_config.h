/* dvmstream — configuration of the live agent and customer: command-line
 * flags with the reference implementation's environment variables as
 * defaults (seeds/streaming-guide-p2p-cashu.md, "Environment Variables").
 * Precedence: built-in default < environment variable < flag.
 *
 * One table per command describes every option (flag, environment
 * variable, type, bounds, default, the reference default, help); the parser,
 * `--help` and the README parity table all come from it. */
#ifndef DVM_LIVE_CONFIG_H
#define DVM_LIVE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define DVM_CFG_MAX_LIST 16 /* values of a repeatable option */

typedef struct dvm_cfg_list {
    const char *items[DVM_CFG_MAX_LIST]; /* into argv, or into store (env) */
    size_t n;
    char store[1024]; /* copy of a comma-separated environment value */
} dvm_cfg_list;

typedef enum dvm_opt_type {
    DVM_OPT_U64,    /* uint64_t in [min, max] */
    DVM_OPT_STR,    /* const char * (borrowed from argv / environ) */
    DVM_OPT_BOOL,   /* bool; flag without value, env "1"/"true"/"0"/"false" */
    DVM_OPT_DOUBLE, /* double in [min, max] */
    DVM_OPT_LIST    /* dvm_cfg_list; repeated flag, env comma-separated */
} dvm_opt_type;

typedef struct dvm_opt {
    const char *flag;     /* long flag without "--" */
    const char *env;      /* environment variable or NULL */
    dvm_opt_type type;
    size_t offset;        /* offsetof the field in the config struct */
    const char *def;      /* built-in default as text (NULL: unset) */
    uint64_t min, max;    /* bounds for U64 and DOUBLE */
    const char *ref_def;  /* the reference implementation's default, or NULL */
    const char *help;     /* one line */
} dvm_opt;

/* Fill `cfg` from defaults, then the environment (`env_get`, NULL = getenv),
 * then argv[1..argc) ("--flag=value", "--flag value", "--bool"; "--" ends
 * flags; "-" and words not starting with "--" are positional, stored in
 * pos[0..max_pos) with the count in *npos). Returns 0, or -1 with a one-line
 * reason naming the flag or variable (unknown flag, missing value, value out
 * of bounds or not a number, too many positionals or list values). */
int dvm_cfg_parse(const dvm_opt *table, size_t n, void *cfg, int argc, char **argv,
                  const char *(*env_get)(const char *name), const char **pos, size_t max_pos, size_t *npos,
                  char *err, size_t errlen);

/* Print the options of `table` as --help lines (flag, env var, default). */
void dvm_cfg_usage(FILE *out, const dvm_opt *table, size_t n);

/* Print the README parity table rows of `table`:
 * | `ENV` | `--flag` | default | reference default | */
void dvm_cfg_parity(FILE *out, const dvm_opt *table, size_t n);

/* ---- the agent ---------------------------------------------------------- */

typedef struct dvm_agent_cfg {
    uint64_t kind;               /* DVM_KIND */
    const char *processor;       /* builtin | exec:CMD | ollama[:MODEL] | http:URL */
    const char *model;           /* OLLAMA_MODEL */
    uint64_t stall_timeout;      /* DVM_STALL_TIMEOUT, ms (ollama, http processors) */
    const char *listen;          /* HOST:PORT */
    uint64_t max_jobs;           /* MAX_JOBS */
    uint64_t sats_per_chunk;     /* SATS_PER_CHUNK, sats */
    uint64_t chunks_per_payment; /* CHUNKS_PER_PAYMENT, chunks */
    uint64_t payment_timeout;    /* PAYMENT_TIMEOUT, ms */
    uint64_t idle_timeout;       /* DVM_IDLE_TIMEOUT, ms; 0 = never (encrypted connections) */
    const char *mint;            /* CASHU_MINT_URL */
    dvm_cfg_list trust_mint;     /* extra trusted mints */
    uint64_t max_unclaimed;      /* sats held unclaimed before a claim */
    const char *wallet;          /* SQLite wallet path */
    const char *identity;        /* identity key file */
    const char *sync;            /* "full" | "normal": wallet commit durability */
    uint64_t verify_threads;     /* payment verifier threads, 0 = the online CPUs (at most 16) */
    uint64_t sub_kind;           /* SUB_KIND, 0 = no pipeline */
    uint64_t sub_budget;         /* SUB_BUDGET, sats */
    const char *sub_peer;        /* HOST:PORT of the sub-provider */
    uint64_t sub_batch_size;     /* SUB_BATCH_SIZE, characters */
    uint64_t sub_max_sats_per_chunk; /* MAX_SATS_PER_CHUNK for the sub-task, sats */
    const char *stream_socket;   /* Unix socket path */
    uint64_t chunks;             /* builtin: chunks per job */
    double rate;                 /* builtin: chunks per second (0 = unthrottled) */
    bool log_json;
    bool insecure_plaintext;     /* debugging: no SecretStream (flag only) */
} dvm_agent_cfg;

extern const dvm_opt dvm_agent_opts[];
extern const size_t dvm_agent_nopts;

/* ---- the customer ------------------------------------------------------- */

typedef struct dvm_customer_cfg {
    uint64_t kind;               /* DVM_KIND */
    uint64_t budget;             /* BUDGET_SATS, sats */
    uint64_t max_sats_per_chunk; /* MAX_SATS_PER_CHUNK, sats */
    const char *peer;            /* HOST:PORT[@PUBKEY] */
    const char *mint;            /* CASHU_MINT_URL */
    const char *wallet;
    uint64_t prepay;             /* payments sent ahead (0 = on pay_required) */
    uint64_t timeout;            /* ms of provider silence before giving up */
    bool json;
    bool log_json;
    bool insecure_plaintext;     /* debugging: no SecretStream (flag only) */
} dvm_customer_cfg;

extern const dvm_opt dvm_customer_opts[];
extern const size_t dvm_customer_nopts;

#endif
