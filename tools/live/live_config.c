/* dvmstream — flags with environment defaults (see live_config.h). */
#include "live/live_config.h"
#include "common/err.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *std_getenv(const char *n) { return getenv(n); }

/* Set one option from text. `src` names where it came from, for errors.
 * `append` adds to a list (flags) instead of replacing it (env, default). */
static int set_value(const dvm_opt *o, void *cfg, const char *v, const char *src, bool append, char *err,
                     size_t errlen)
{
    char *field = (char *)cfg + o->offset;
    switch (o->type) {
    case DVM_OPT_U64: {
        if (!v || !*v || *v == '-' || *v == '+' || *v == ' ') {
            dvm_reasonf(err, errlen, "%s: expected a number in %llu..%llu, got '%s'", src, (unsigned long long)o->min,
                   (unsigned long long)o->max, v ? v : "");
            return -1;
        }
        errno = 0;
        char *end;
        unsigned long long x = strtoull(v, &end, 10);
        if (errno || *end || x < o->min || x > o->max) {
            dvm_reasonf(err, errlen, "%s: expected a number in %llu..%llu, got '%s'", src, (unsigned long long)o->min,
                   (unsigned long long)o->max, v);
            return -1;
        }
        *(uint64_t *)field = x;
        return 0;
    }
    case DVM_OPT_DOUBLE: {
        char *end;
        errno = 0;
        double x = v && *v ? strtod(v, &end) : NAN;
        if (!v || !*v || errno || *end || !isfinite(x) || x < (double)o->min || x > (double)o->max) {
            dvm_reasonf(err, errlen, "%s: expected a number in %llu..%llu, got '%s'", src, (unsigned long long)o->min,
                   (unsigned long long)o->max, v ? v : "");
            return -1;
        }
        *(double *)field = x;
        return 0;
    }
    case DVM_OPT_BOOL:
        if (!v || !strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes"))
            *(bool *)field = true;
        else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no") || !*v)
            *(bool *)field = false;
        else {
            dvm_reasonf(err, errlen, "%s: expected true or false, got '%s'", src, v);
            return -1;
        }
        return 0;
    case DVM_OPT_STR:
        *(const char **)field = v && *v ? v : NULL;
        return 0;
    case DVM_OPT_LIST: {
        dvm_cfg_list *l = (dvm_cfg_list *)field;
        if (!append) {
            /* environment / default: comma-separated, replaces */
            l->n = 0;
            size_t len = strlen(v);
            if (len + 1 > sizeof l->store) {
                dvm_reasonf(err, errlen, "%s: value longer than %zu bytes", src, sizeof l->store - 1);
                return -1;
            }
            memcpy(l->store, v, len + 1);
            char *save = NULL;
            for (char *tok = strtok_r(l->store, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                while (*tok == ' ')
                    tok++;
                if (!*tok)
                    continue;
                if (l->n >= DVM_CFG_MAX_LIST) {
                    dvm_reasonf(err, errlen, "%s: more than %d values", src, DVM_CFG_MAX_LIST);
                    return -1;
                }
                l->items[l->n++] = tok;
            }
            return 0;
        }
        if (l->n >= DVM_CFG_MAX_LIST) {
            dvm_reasonf(err, errlen, "%s: more than %d values", src, DVM_CFG_MAX_LIST);
            return -1;
        }
        l->items[l->n++] = v;
        return 0;
    }
    }
    return -1;
}

int dvm_cfg_parse(const dvm_opt *table, size_t n, void *cfg, int argc, char **argv,
                  const char *(*env_get)(const char *name), const char **pos, size_t max_pos, size_t *npos,
                  char *err, size_t errlen)
{
    if (!env_get)
        env_get = std_getenv;
    size_t np = 0;
    bool flags_from_cli[64] = {false};
    for (size_t i = 0; i < n; i++) {
        if (table[i].def && set_value(&table[i], cfg, table[i].def, table[i].flag, false, err, errlen) != 0)
            return -1;
        if (table[i].type == DVM_OPT_LIST && !table[i].def)
            ((dvm_cfg_list *)((char *)cfg + table[i].offset))->n = 0;
    }
    for (size_t i = 0; i < n; i++) {
        const char *v = table[i].env ? env_get(table[i].env) : NULL;
        if (v && *v) {
            char src[96];
            snprintf(src, sizeof src, "environment variable %s", table[i].env);
            if (set_value(&table[i], cfg, v, src, false, err, errlen) != 0)
                return -1;
        }
    }
    bool only_pos = false;
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (only_pos || strncmp(arg, "--", 2) != 0 || strcmp(arg, "-") == 0) {
            if (!only_pos && arg[0] == '-' && arg[1] && strcmp(arg, "-") != 0) {
                dvm_reasonf(err, errlen, "unknown option '%s'", arg);
                return -1;
            }
            if (np >= max_pos) {
                dvm_reasonf(err, errlen, "unexpected argument '%s'", arg);
                return -1;
            }
            pos[np++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_pos = true;
            continue;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        const dvm_opt *o = NULL;
        size_t idx = 0;
        for (size_t i = 0; i < n; i++)
            if (strlen(table[i].flag) == nl && strncmp(table[i].flag, name, nl) == 0) {
                o = &table[i];
                idx = i;
            }
        if (!o) {
            dvm_reasonf(err, errlen, "unknown option '--%.*s'", (int)nl, name);
            return -1;
        }
        const char *v;
        if (eq)
            v = eq + 1;
        else if (o->type == DVM_OPT_BOOL)
            v = NULL;
        else if (a + 1 < argc)
            v = argv[++a];
        else {
            dvm_reasonf(err, errlen, "option '--%s' needs a value", o->flag);
            return -1;
        }
        char src[96];
        snprintf(src, sizeof src, "--%s", o->flag);
        /* the first --flag of a list replaces env/default values */
        if (o->type == DVM_OPT_LIST && idx < 64 && !flags_from_cli[idx])
            ((dvm_cfg_list *)((char *)cfg + o->offset))->n = 0;
        if (idx < 64)
            flags_from_cli[idx] = true;
        if (set_value(o, cfg, v, src, true, err, errlen) != 0)
            return -1;
    }
    if (npos)
        *npos = np;
    return 0;
}

void dvm_cfg_usage(FILE *out, const dvm_opt *table, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const dvm_opt *o = &table[i];
        char flag[64];
        snprintf(flag, sizeof flag, "--%s%s", o->flag,
                 o->type == DVM_OPT_BOOL ? "" : o->type == DVM_OPT_LIST ? "=V ..." : "=V");
        fprintf(out, "  %-26s %s", flag, o->help);
        if (o->env || o->def) {
            fprintf(out, " [");
            if (o->env)
                fprintf(out, "$%s", o->env);
            if (o->def)
                fprintf(out, "%sdefault %s", o->env ? ", " : "", o->def);
            fprintf(out, "]");
        }
        fputc('\n', out);
    }
}

void dvm_cfg_parity(FILE *out, const dvm_opt *table, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const dvm_opt *o = &table[i];
        if (!o->env)
            continue;
        fprintf(out, "| `%s` | `--%s` | %s | %s |\n", o->env, o->flag, o->def ? o->def : "(none)",
                o->ref_def ? o->ref_def : "(none)");
    }
}

/* ---- tables ----------------------------------------------------------- */

#define U64(f, e, st, fld, d, lo, hi, r, h) {f, e, DVM_OPT_U64, offsetof(st, fld), d, lo, hi, r, h}
#define STR(f, e, st, fld, d, r, h) {f, e, DVM_OPT_STR, offsetof(st, fld), d, 0, 0, r, h}
#define BOOL(f, e, st, fld, h) {f, e, DVM_OPT_BOOL, offsetof(st, fld), NULL, 0, 0, NULL, h}

#define TESTNUT "https://nofee.testnut.cashu.space"

const dvm_opt dvm_agent_opts[] = {
    U64("kind", "DVM_KIND", dvm_agent_cfg, kind, "5100", 0, 65535, "5100", "job kind served"),
    STR("processor", "DVM_PROCESSOR", dvm_agent_cfg, processor, "builtin", NULL,
        "builtin | exec:CMD | ollama[:MODEL] | http:URL"),
    STR("model", "OLLAMA_MODEL", dvm_agent_cfg, model, "llama3.2", "llama3.2", "model for ollama (and http)"),
    U64("stall-timeout", "DVM_STALL_TIMEOUT", dvm_agent_cfg, stall_timeout, "30000", 100, 3600000, NULL,
        "ms without a byte from the ollama/http model server before the job fails"),
    STR("listen", "DVM_LISTEN", dvm_agent_cfg, listen, "127.0.0.1:0", NULL, "HOST:PORT to accept customers on"),
    U64("max-jobs", "MAX_JOBS", dvm_agent_cfg, max_jobs, "3", 1, 10000, "3", "concurrent jobs (one counter)"),
    U64("sats-per-chunk", "SATS_PER_CHUNK", dvm_agent_cfg, sats_per_chunk, "1", 1, 1000000, "1",
        "price per output chunk, sats"),
    U64("chunks-per-payment", "CHUNKS_PER_PAYMENT", dvm_agent_cfg, chunks_per_payment, "10", 1, 1000000, "10",
        "chunks unlocked per payment"),
    U64("payment-timeout", "PAYMENT_TIMEOUT", dvm_agent_cfg, payment_timeout, "30000", 100, 3600000, "30000",
        "ms to wait for a payment"),
    U64("idle-timeout", "DVM_IDLE_TIMEOUT", dvm_agent_cfg, idle_timeout, "60000", 0, 86400000, NULL,
        "ms a customer connection may stay silent (keep-alives count) before it is closed; 0 = never"),
    STR("mint", "CASHU_MINT_URL", dvm_agent_cfg, mint, TESTNUT, TESTNUT, "Cashu mint to claim at (trusted)"),
    {"trust-mint", "DVM_TRUST_MINTS", DVM_OPT_LIST, offsetof(dvm_agent_cfg, trust_mint), NULL, 0, 0, NULL,
     "another mint whose tokens are accepted (repeatable)"},
    U64("max-unclaimed", "DVM_MAX_UNCLAIMED", dvm_agent_cfg, max_unclaimed, "1000", 1, 100000000, NULL,
        "sats held unclaimed before claiming early"),
    STR("wallet", "DVM_WALLET", dvm_agent_cfg, wallet, NULL, NULL, "SQLite wallet path"),
    STR("identity", "DVM_IDENTITY", dvm_agent_cfg, identity, NULL, NULL, "identity key file"),
    STR("sync", "DVM_SYNC", dvm_agent_cfg, sync, "full", NULL,
        "wallet commit durability: full (fsync each, survives power loss) | normal (survives kill -9)"),
    U64("verify-threads", "DVM_VERIFY_THREADS", dvm_agent_cfg, verify_threads, "0", 0, 16, NULL,
        "payment verifier threads (DLEQ checks in parallel; 0: one per online CPU)"),
    U64("sub-kind", "SUB_KIND", dvm_agent_cfg, sub_kind, "0", 0, 65535, NULL,
        "kind of the sub-task to buy (0: no pipeline)"),
    U64("sub-budget", "SUB_BUDGET", dvm_agent_cfg, sub_budget, "50", 1, 100000000, "50", "sats for a sub-task"),
    STR("sub-peer", "SUB_PEER", dvm_agent_cfg, sub_peer, NULL, NULL, "HOST:PORT of the sub-provider"),
    U64("sub-batch-size", "SUB_BATCH_SIZE", dvm_agent_cfg, sub_batch_size, "500", 1, 1000000, "500",
        "characters per pipeline batch"),
    U64("sub-max-sats-per-chunk", "MAX_SATS_PER_CHUNK", dvm_agent_cfg, sub_max_sats_per_chunk, "5", 1, 1000000, "5",
        "highest price per chunk paid for a sub-task, sats"),
    STR("stream-socket", "DVM_STREAM_SOCKET", dvm_agent_cfg, stream_socket, NULL, NULL,
        "also publish chunks on this Unix socket"),
    U64("chunks", "DVM_BUILTIN_CHUNKS", dvm_agent_cfg, chunks, "60", 1, 10000000, NULL, "builtin: chunks per job"),
    {"rate", "DVM_BUILTIN_RATE", DVM_OPT_DOUBLE, offsetof(dvm_agent_cfg, rate), "0", 0, 1000000, NULL,
     "builtin: chunks per second (0: unthrottled)"},
    BOOL("log-json", "DVM_LOG_JSON", dvm_agent_cfg, log_json, "NDJSON logs on stderr"),
    BOOL("insecure-plaintext", NULL, dvm_agent_cfg, insecure_plaintext,
         "DEBUGGING ONLY: no encryption, NDJSON in the clear (for tcpdump and pcap2corpus)"),
};
const size_t dvm_agent_nopts = sizeof dvm_agent_opts / sizeof dvm_agent_opts[0];

const dvm_opt dvm_customer_opts[] = {
    U64("kind", "DVM_KIND", dvm_customer_cfg, kind, "5100", 0, 65535, "5100", "job kind requested"),
    U64("budget", "BUDGET_SATS", dvm_customer_cfg, budget, "100", 1, 100000000, "100", "total budget, sats"),
    U64("max-sats-per-chunk", "MAX_SATS_PER_CHUNK", dvm_customer_cfg, max_sats_per_chunk, "5", 1, 1000000, "5",
        "highest acceptable price per chunk, sats"),
    STR("peer", "DVM_PEER", dvm_customer_cfg, peer, NULL, NULL, "HOST:PORT[@PUBKEY] of the provider"),
    STR("mint", "CASHU_MINT_URL", dvm_customer_cfg, mint, TESTNUT, TESTNUT, "Cashu mint to fund the budget at"),
    STR("wallet", "DVM_WALLET", dvm_customer_cfg, wallet, NULL, NULL, "SQLite wallet path"),
    U64("prepay", "DVM_PREPAY", dvm_customer_cfg, prepay, "0", 0, 1000, NULL, "payments sent ahead of need"),
    U64("timeout", "DVM_TIMEOUT", dvm_customer_cfg, timeout, "60000", 100, 3600000, NULL,
        "ms of provider silence before giving up"),
    BOOL("json", NULL, dvm_customer_cfg, json, "one JSON summary on stdout instead of the text"),
    BOOL("log-json", "DVM_LOG_JSON", dvm_customer_cfg, log_json, "NDJSON logs on stderr"),
    BOOL("insecure-plaintext", NULL, dvm_customer_cfg, insecure_plaintext,
         "DEBUGGING ONLY: talk to an agent run with --insecure-plaintext"),
};
const size_t dvm_customer_nopts = sizeof dvm_customer_opts / sizeof dvm_customer_opts[0];
