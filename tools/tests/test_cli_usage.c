/* Every `dvm` subcommand answers a usage error (unknown option, option
 * without its value, missing or stray argument, malformed number or
 * address) with exit code 2 and exactly one line on stderr, naming the
 * command, and touches nothing: no mint, file or socket is needed, and the
 * mint URL given refuses connections (127.0.0.1:9). The processes run
 * with a bounded wait and are killed by pid on every path. */
#include "live_proc.h"
#include "spawn_run.h"

static char dir[128];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/dvm-usage-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    lp_kill_all();
    if (dir[0] && !spawn_rm_rf(dir))
        fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(cli_usage, .init = setup, .fini = teardown, .timeout = 120);

#define MAXARGS 6

static const char *const CASES[][MAXARGS] = {
    {"--bogus"},
    {"nosuch"},
    {"token"},
    {"token", "--bogus"},
    {"token", "decode"},
    {"wallet"},
    {"wallet", "--bogus"},
    {"wallet", "--mint"},
    {"wallet", "--mint", "http://127.0.0.1:9", "send"},
    {"mint"},
    {"mint", "--bogus"},
    {"mint", "--listen"},
    {"mint", "--listen", "nohost", "--db", "x.db"},
    {"mint", "--listen", "127.0.0.1:0", "--db", "x.db", "--input-fee-ppk"},
    {"agent", "--bogus"},
    {"agent", "--kind=abc"},
    {"agent", "--max-jobs=0"},
    {"agent", "--listen=garbage", "--mint=http://127.0.0.1:9"},
    {"agent", "--sub-kind=5100", "--mint=http://127.0.0.1:9"},
    {"customer", "--bogus"},
    {"customer", "--budget=-1", "hi"},
    {"customer", "--mint=http://127.0.0.1:9", "hi"},
    {"customer", "--peer=nohost", "--mint=http://127.0.0.1:9", "hi"},
    {"sim", "--bogus"},
    {"sim", "--seed=abc"},
    {"identity", "--bogus"},
    {"identity", "one", "two"},
    {"tail"},
    {"tail", "--bogus"},
    {"topic", "--kind"},
    {"topic", "--kind=abc"},
    {"topic", "-x"},
    {"pipe"},
    {"pipe", "--bogus"},
    {"pipe", "--listen=garbage"},
    {"pipe", "--peer=127.0.0.1:0"},
    {"demo", "--bogus"},
};

Test(cli_usage, usage_errors_exit_2_with_one_line)
{
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        const char *args[MAXARGS + 2] = {lp_bin()};
        char shown[256] = "dvm";
        size_t n = 1;
        for (size_t k = 0; k < MAXARGS && CASES[i][k]; k++) {
            args[n++] = CASES[i][k];
            size_t l = strlen(shown);
            snprintf(shown + l, sizeof shown - l, " %s", CASES[i][k]);
        }
        args[n] = NULL;
        lp *p = lp_spawn("dvm", args, false);
        int code = lp_wait_exit(p, 15000);
        cr_assert_eq(code, 2, "`%s`: exit %d, stderr: %s", shown, code, p->errlog);
        const char *nl = strchr(p->errlog, '\n');
        cr_assert(nl && nl[1] == '\0', "`%s`: not one line on stderr: %s", shown, p->errlog);
        cr_assert(strncmp(p->errlog, "dvm", 3) == 0, "`%s`: the line names the command: %s", shown, p->errlog);
        lp_kill_all(); /* reaped and freed; keeps the table of pids small */
    }
}

Test(cli_usage, bad_option_names_the_word)
{
    const char *args[] = {lp_bin(), "topic", "--no-such-flag", NULL};
    lp *p = lp_spawn("dvm", args, false);
    cr_assert_eq(lp_wait_exit(p, 15000), 2);
    cr_assert(strstr(p->errlog, "'--no-such-flag'"), "%s", p->errlog);
    cr_assert(strstr(p->errlog, "dvm topic --help"), "%s", p->errlog);
}
