/* Agent and customer configuration (flags over the seed's environment
 * variables over defaults) and the job event log formats. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "live/joblog.h"
#include "live/live_config.h"

/* a fake environment */
static const char *const *fake_env;
static const char *fake_get(const char *name)
{
    for (const char *const *e = fake_env; e && *e; e += 2)
        if (strcmp(e[0], name) == 0)
            return e[1];
    return NULL;
}

static int parse_agent(dvm_agent_cfg *c, const char *const *env, int argc, char **argv, char *err, const char **pos,
                       size_t *np)
{
    fake_env = env;
    memset(c, 0, sizeof *c);
    return dvm_cfg_parse(dvm_agent_opts, dvm_agent_nopts, c, argc, argv, fake_get, pos, 4, np, err, 256);
}

Test(config, defaults_match_the_reference)
{
    dvm_agent_cfg c;
    char err[256];
    const char *pos[4];
    size_t np;
    char *argv[] = {"agent"};
    cr_assert_eq(parse_agent(&c, NULL, 1, argv, err, pos, &np), 0, "%s", err);
    cr_assert_eq(c.kind, 5100);
    cr_assert_eq(c.max_jobs, 3);
    cr_assert_eq(c.sats_per_chunk, 1);
    cr_assert_eq(c.chunks_per_payment, 10);
    cr_assert_eq(c.payment_timeout, 30000);
    cr_assert_eq(c.sub_kind, 0);
    cr_assert_eq(c.sub_budget, 50);
    cr_assert_eq(c.sub_batch_size, 500);
    cr_assert_str_eq(c.mint, "https://nofee.testnut.cashu.space");
    cr_assert_str_eq(c.model, "llama3.2");
    cr_assert_str_eq(c.processor, "builtin");
    cr_assert_null(c.stream_socket);
    cr_assert_not(c.log_json);
    cr_assert_str_eq(c.sync, "full", "wallet commits fsync'd unless asked otherwise");
    cr_assert_eq(np, 0);

    dvm_customer_cfg k;
    memset(&k, 0, sizeof k);
    fake_env = NULL;
    cr_assert_eq(dvm_cfg_parse(dvm_customer_opts, dvm_customer_nopts, &k, 1, argv, fake_get, pos, 1, &np, err,
                               sizeof err),
                 0);
    cr_assert_eq(k.budget, 100);
    cr_assert_eq(k.max_sats_per_chunk, 5);
    cr_assert_eq(k.kind, 5100);
}

Test(config, environment_then_flags_win)
{
    const char *env[] = {"DVM_KIND", "5302", "MAX_JOBS", "7", "SATS_PER_CHUNK", "2", "CHUNKS_PER_PAYMENT", "4",
                         "PAYMENT_TIMEOUT", "1500", "SUB_KIND", "5100", "SUB_BUDGET", "20", "SUB_BATCH_SIZE", "64",
                         "CASHU_MINT_URL", "http://127.0.0.1:3338", "OLLAMA_MODEL", "qwen2", "DVM_TRUST_MINTS",
                         "http://a, http://b", "DVM_SYNC", "normal", NULL};
    dvm_agent_cfg c;
    char err[256];
    const char *pos[4];
    size_t np;
    char *argv1[] = {"agent"};
    cr_assert_eq(parse_agent(&c, env, 1, argv1, err, pos, &np), 0, "%s", err);
    cr_assert_eq(c.kind, 5302);
    cr_assert_eq(c.max_jobs, 7);
    cr_assert_eq(c.sats_per_chunk, 2);
    cr_assert_eq(c.chunks_per_payment, 4);
    cr_assert_eq(c.payment_timeout, 1500);
    cr_assert_eq(c.sub_kind, 5100);
    cr_assert_eq(c.sub_budget, 20);
    cr_assert_eq(c.sub_batch_size, 64);
    cr_assert_str_eq(c.mint, "http://127.0.0.1:3338");
    cr_assert_str_eq(c.model, "qwen2");
    cr_assert_eq(c.trust_mint.n, 2);
    cr_assert_str_eq(c.trust_mint.items[0], "http://a");
    cr_assert_str_eq(c.trust_mint.items[1], "http://b");
    cr_assert_str_eq(c.sync, "normal");

    char *argv2[] = {"agent", "--kind=5100", "--max-jobs", "1", "--trust-mint=http://c", "--log-json",
                     "--rate=2.5", "--stream-socket", "/tmp/s.sock", "--trust-mint", "http://d"};
    cr_assert_eq(parse_agent(&c, env, 11, argv2, err, pos, &np), 0, "%s", err);
    cr_assert_eq(c.kind, 5100);
    cr_assert_eq(c.max_jobs, 1);
    cr_assert_eq(c.sats_per_chunk, 2, "unflagged values keep the environment's");
    cr_assert(c.log_json);
    cr_assert_float_eq(c.rate, 2.5, 1e-9);
    cr_assert_str_eq(c.stream_socket, "/tmp/s.sock");
    cr_assert_eq(c.trust_mint.n, 2, "flags replace the environment's list");
    cr_assert_str_eq(c.trust_mint.items[0], "http://c");
    cr_assert_str_eq(c.trust_mint.items[1], "http://d");
}

Test(config, bad_values_are_named)
{
    dvm_agent_cfg c;
    char err[256];
    const char *pos[4];
    size_t np;
    const char *env[] = {"MAX_JOBS", "lots", NULL};
    char *argv[] = {"agent"};
    cr_assert_eq(parse_agent(&c, env, 1, argv, err, pos, &np), -1);
    cr_assert(strstr(err, "MAX_JOBS"), "%s", err);

    struct {
        int argc;
        char *argv[3];
        const char *want;
    } cases[] = {
        {2, {"agent", "--max-jobs=0"}, "--max-jobs"},
        {2, {"agent", "--kind=-1"}, "--kind"},
        {2, {"agent", "--kind=99999999999999999999999"}, "--kind"},
        {2, {"agent", "--sats-per-chunk="}, "--sats-per-chunk"},
        {2, {"agent", "--bogus=1"}, "unknown option"},
        {2, {"agent", "-x"}, "unknown option"},
        {2, {"agent", "--listen"}, "needs a value"},
        {2, {"agent", "--rate=fast"}, "--rate"},
        {2, {"agent", "--log-json=maybe"}, "--log-json"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_eq(parse_agent(&c, NULL, cases[i].argc, cases[i].argv, err, pos, &np), -1, "case %zu", i);
        cr_assert(strstr(err, cases[i].want), "case %zu: %s", i, err);
    }
}

Test(config, positionals_and_stdin_dash)
{
    dvm_customer_cfg k;
    char err[256];
    const char *pos[1];
    size_t np;
    fake_env = NULL;
    char *argv[] = {"customer", "--budget=50", "-", "--json"};
    memset(&k, 0, sizeof k);
    cr_assert_eq(dvm_cfg_parse(dvm_customer_opts, dvm_customer_nopts, &k, 4, argv, fake_get, pos, 1, &np, err,
                               sizeof err),
                 0, "%s", err);
    cr_assert_eq(np, 1);
    cr_assert_str_eq(pos[0], "-");
    cr_assert(k.json);
    cr_assert_eq(k.budget, 50);
    char *argv2[] = {"customer", "one", "two"};
    cr_assert_eq(dvm_cfg_parse(dvm_customer_opts, dvm_customer_nopts, &k, 3, argv2, fake_get, pos, 1, &np, err,
                               sizeof err),
                 -1);
    cr_assert(strstr(err, "two"), "%s", err);
    char *argv3[] = {"customer", "--", "--not-a-flag"};
    cr_assert_eq(dvm_cfg_parse(dvm_customer_opts, dvm_customer_nopts, &k, 3, argv3, fake_get, pos, 1, &np, err,
                               sizeof err),
                 0, "%s", err);
    cr_assert_str_eq(pos[0], "--not-a-flag");
}

Test(config, parity_rows_name_every_seed_variable)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    dvm_cfg_parity(f, dvm_agent_opts, dvm_agent_nopts);
    dvm_cfg_parity(f, dvm_customer_opts, dvm_customer_nopts);
    fclose(f);
    const char *seed[] = {"DVM_KIND",  "MAX_JOBS",   "SATS_PER_CHUNK", "CHUNKS_PER_PAYMENT", "PAYMENT_TIMEOUT",
                          "SUB_KIND",  "SUB_BUDGET", "SUB_BATCH_SIZE", "MAX_SATS_PER_CHUNK", "BUDGET_SATS",
                          "CASHU_MINT_URL", "OLLAMA_MODEL"};
    for (size_t i = 0; i < sizeof seed / sizeof seed[0]; i++) {
        char want[64];
        snprintf(want, sizeof want, "| `%s` |", seed[i]);
        cr_assert(strstr(buf, want), "%s missing from:\n%s", seed[i], buf);
    }
    free(buf);
}

/* Every option of `dvm agent` and `dvm customer` that has an environment
 * variable is in README's parity table (a row starting with the variable,
 * naming the flag), so a new option cannot ship undocumented. */
Test(config, readme_documents_every_variable_and_flag)
{
    FILE *f = fopen("README.md", "rb"); /* ctest runs from the source root */
    cr_assert_not_null(f, "README.md not found from %s", getenv("PWD") ? getenv("PWD") : ".");
    static char readme[1 << 20];
    size_t n = fread(readme, 1, sizeof readme - 1, f);
    fclose(f);
    readme[n] = 0;
    const dvm_opt *tables[2] = {dvm_agent_opts, dvm_customer_opts};
    size_t counts[2] = {dvm_agent_nopts, dvm_customer_nopts};
    for (int t = 0; t < 2; t++)
        for (size_t i = 0; i < counts[t]; i++) {
            const dvm_opt *o = &tables[t][i];
            if (!o->env)
                continue;
            char row[160];
            snprintf(row, sizeof row, "| `%s`", o->env);
            const char *at = strstr(readme, row);
            cr_assert_not_null(at, "README has no parity row for %s", o->env);
            char flag[80];
            snprintf(flag, sizeof flag, "`--%s`", o->flag);
            bool found = false;
            for (const char *r = at; r && !found; r = strstr(r + 1, row)) {
                const char *fl = strstr(r, flag);
                found = fl && fl < r + strcspn(r, "\n");
            }
            cr_assert(found, "README's row for %s does not name %s", o->env, flag);
        }
}

Test(log, human_and_json_lines)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    dvm_log l = {f, false, "agent"};
    dvm_log_job(&l, "job-1", "payment", DVM_LU("amount", 10), DVM_LS("note", "two words"));
    dvm_log_event(&l, NULL, "listening", NULL, 0);
    l.json = true;
    dvm_log_job(&l, "job-1", "chunk", DVM_LU("seq", 3), DVM_LS("peer", "ab\"cd"));
    fclose(f);
    char *l1 = buf, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
    cr_assert(strstr(l1, " agent job=job-1 payment amount=10 note=\"two words\"\n") != NULL, "%s", l1);
    cr_assert(strncmp(l2 + 24, " agent listening\n", 17) == 0, "%s", l2);
    json_t *o = json_loads(l3, 0, NULL);
    cr_assert_not_null(o, "%s", l3);
    cr_assert_str_eq(json_string_value(json_object_get(o, "who")), "agent");
    cr_assert_str_eq(json_string_value(json_object_get(o, "job")), "job-1");
    cr_assert_str_eq(json_string_value(json_object_get(o, "event")), "chunk");
    cr_assert_eq(json_integer_value(json_object_get(o, "seq")), 3);
    cr_assert_str_eq(json_string_value(json_object_get(o, "peer")), "ab\"cd");
    cr_assert_eq(strlen(json_string_value(json_object_get(o, "ts"))), 24);
    json_decref(o);
    free(buf);
}
