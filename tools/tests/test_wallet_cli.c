/* `dvm wallet` and `dvm mint` command lines: help, usage errors, the
 * CASHU_MINT_URL default (the flag wins), exit codes, and the mint/send/
 * receive/check flow through processes. */
#include "live/wallet_client.h"
#include "mint_proc.h"

static struct mint_proc M;
static char DB[300], ENV_URL[128];

static void setup(void)
{
    char db[300];
    mp_start(&M, mp_tmp(db, sizeof db, "mint.db"), NULL);
    mp_tmp(DB, sizeof DB, "wallet.db");
    snprintf(ENV_URL, sizeof ENV_URL, "CASHU_MINT_URL=%s", M.url);
}

static void teardown(void)
{
    mp_stop(&M, SIGTERM);
    mp_fini();
}

TestSuite(wallet_cli, .init = setup, .fini = teardown, .timeout = 120);

static char OUT[1 << 16];

Test(wallet_cli, help_and_usage_errors)
{
    const char *h1[] = {"wallet", "--help", NULL};
    cr_assert_eq(mp_run(h1, NULL, NULL, OUT, sizeof OUT), 0);
    cr_assert(strstr(OUT, "CASHU_MINT_URL"));
    const char *h2[] = {"mint", "--help", NULL};
    cr_assert_eq(mp_run(h2, NULL, NULL, OUT, sizeof OUT), 0);
    cr_assert(strstr(OUT, "--listen"));
    const char *u1[] = {"wallet", "--db", DB, "balance", NULL}; /* no mint anywhere */
    const char *noenv[] = {"CASHU_MINT_URL=", NULL};
    cr_assert_eq(mp_run(u1, noenv, NULL, OUT, sizeof OUT), 2);
    const char *u2[] = {"wallet", "--db", DB, "frobnicate", NULL};
    cr_assert_eq(mp_run(u2, NULL, NULL, OUT, sizeof OUT), 2);
    const char *u3[] = {"wallet", "--mint", M.url, "--db", DB, "mint", "-5", NULL};
    cr_assert_eq(mp_run(u3, NULL, NULL, OUT, sizeof OUT), 2);
    const char *u4[] = {"mint", "--listen", ":0", "--db", DB, NULL}; /* host required */
    cr_assert_eq(mp_run(u4, NULL, NULL, OUT, sizeof OUT), 2);
    const char *u5[] = {"mint", "--db", DB, NULL};
    cr_assert_eq(mp_run(u5, NULL, NULL, OUT, sizeof OUT), 2);
    const char *u6[] = {"wallet", "--mint", M.url, "--db", DB, "receive", "cashuBnotatoken", NULL};
    cr_assert_eq(mp_run(u6, NULL, NULL, OUT, sizeof OUT), 1);
}

Test(wallet_cli, env_default_flag_wins_and_unreachable_exit_3)
{
    /* The env points at a dead port; the flag at the live mint. */
    const char *dead[] = {"CASHU_MINT_URL=http://127.0.0.1:9", NULL};
    const char *a1[] = {"wallet", "--db", DB, "--mint", M.url, "mint", "21", NULL};
    cr_assert_eq(mp_run(a1, dead, NULL, OUT, sizeof OUT), 0, "%s", OUT);
    cr_assert(strstr(OUT, "minted 21 sat"));
    const char *a2[] = {"wallet", "--db", DB, "--timeout", "3000", "mint", "1", NULL};
    cr_assert_eq(mp_run(a2, dead, NULL, OUT, sizeof OUT), 3, "unreachable mint: exit 3");
    const char *env[] = {ENV_URL, NULL};
    const char *a3[] = {"wallet", "--db", DB, "balance", NULL};
    cr_assert_eq(mp_run(a3, env, NULL, OUT, sizeof OUT), 0);
    cr_assert_eq(strtoull(OUT, NULL, 10), 21);
}

Test(wallet_cli, mint_send_receive_check_via_processes)
{
    const char *env[] = {ENV_URL, NULL};
    char db2[300];
    mp_tmp(db2, sizeof db2, "wallet2.db");
    const char *a1[] = {"wallet", "--db", DB, "mint", "50", NULL};
    cr_assert_eq(mp_run(a1, env, NULL, OUT, sizeof OUT), 0);
    const char *a2[] = {"wallet", "--db", DB, "send", "13", NULL};
    cr_assert_eq(mp_run(a2, env, NULL, OUT, sizeof OUT), 0);
    char tok[8192];
    snprintf(tok, sizeof tok, "%s", strtok(OUT, "\n"));
    cr_assert(strncmp(tok, "cashuB", 6) == 0);
    const char *a3[] = {"wallet", "--db", DB, "check", tok, NULL};
    cr_assert_eq(mp_run(a3, env, NULL, OUT, sizeof OUT), 0);
    cr_assert(strstr(OUT, "1 UNSPENT") && strstr(OUT, "4 UNSPENT") && strstr(OUT, "8 UNSPENT"), "%s", OUT);
    /* receive reads the token from stdin with '-'. */
    char in[8300];
    snprintf(in, sizeof in, "%s\n", tok);
    const char *a4[] = {"wallet", "--db", db2, "receive", "-", NULL};
    cr_assert_eq(mp_run(a4, env, in, OUT, sizeof OUT), 0);
    cr_assert(strstr(OUT, "received 13 sat"), "%s", OUT);
    cr_assert_eq(mp_run(a3, env, NULL, OUT, sizeof OUT), 0);
    cr_assert(!strstr(OUT, "UNSPENT") && strstr(OUT, "SPENT"), "%s", OUT);
    /* Without --mint or CASHU_MINT_URL, check uses the token's mint. */
    const char *noenv[] = {"CASHU_MINT_URL=", NULL};
    cr_assert_eq(mp_run(a3, noenv, NULL, OUT, sizeof OUT), 0);
    cr_assert(strstr(OUT, "8 SPENT"), "%s", OUT);
    /* Someone else trying the same token: 11001, exit 1. */
    char db3[300];
    mp_tmp(db3, sizeof db3, "wallet3.db");
    const char *a5[] = {"wallet", "--db", db3, "receive", tok, NULL};
    cr_assert_eq(mp_run(a5, env, NULL, OUT, sizeof OUT), 1);
    const char *a6[] = {"wallet", "--db", DB, "balance", NULL};
    cr_assert_eq(mp_run(a6, env, NULL, OUT, sizeof OUT), 0);
    cr_assert_eq(strtoull(OUT, NULL, 10), 37);
    const char *a7[] = {"wallet", "--db", db2, "balance", NULL};
    cr_assert_eq(mp_run(a7, env, NULL, OUT, sizeof OUT), 0);
    cr_assert_eq(strtoull(OUT, NULL, 10), 13);
}

/* One log line per request on stderr: METHOD PATH STATUS MSms; bad path
 * parameters are refused; SIGINT stops the mint with exit 0. */
Test(wallet_cli, mint_request_log_and_sigint)
{
    char log[300], db[300];
    mp_tmp(log, sizeof log, "mint.log");
    mp_stderr_path = log;
    mp_verbose = true;
    struct mint_proc m2;
    mp_start(&m2, mp_tmp(db, sizeof db, "logged.db"), NULL);
    json_t *r = NULL;
    cr_assert_eq(mp_http(m2.url, "/v1/keysets", NULL, 0, &r), 200);
    json_decref(r);
    cr_assert_eq(mp_http(m2.url, "/v1/keys/%ff%0a", NULL, 0, &r), 400);
    cr_assert_eq(mp_code(r), 10000);
    json_decref(r);
    cr_assert_eq(mp_http(m2.url, "/v1/swap", "{", 1, &r), 400);
    json_decref(r);
    int st = mp_stop(&m2, SIGINT);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGINT: clean exit 0");
    FILE *f = fopen(log, "r");
    cr_assert_not_null(f);
    char line[512];
    int seen = 0, keysets = 0, badparam = 0, swap = 0;
    /* Lines come in completion order (worker threads): match by content. */
    while (fgets(line, sizeof line, f)) {
        char method[16], path[256];
        int status;
        double ms;
        if (sscanf(line, "%15s %255s %d %lfms", method, path, &status, &ms) == 4) {
            seen++;
            cr_assert(ms >= 0);
            keysets += strcmp(method, "GET") == 0 && strcmp(path, "/v1/keysets") == 0 && status == 200;
            badparam += strcmp(method, "GET") == 0 && strncmp(path, "/v1/keys/", 9) == 0 && status == 400;
            swap += strcmp(method, "POST") == 0 && strcmp(path, "/v1/swap") == 0 && status == 400;
            cr_assert_null(strchr(path, '\n'));
        }
    }
    cr_assert(keysets == 1 && badparam == 1 && swap == 1);
    fclose(f);
    cr_assert_eq(seen, 3, "one line per request");
    mp_stderr_path = NULL;
    mp_verbose = false;
}

/* `recover` returns proofs a dead `send` had split off but never printed. */
Test(wallet_cli, recover_releases_reserved)
{
    char err[256];
    dvm_wallet_client *w;
    cr_assert_eq(dvm_wallet_client_open(M.url, DB, 10000, &w, err, sizeof err), DVM_OK);
    cr_assert_eq(dvm_wallet_client_mint(w, 10, 10000, NULL), DVM_OK);
    dvm_token *ts = NULL;
    cr_assert_eq(dvm_wallet_client_split(w, 1, 3, &ts), DVM_OK);
    dvm_wallet_tokens_free(ts, 3);
    dvm_wallet_client_close(w);
    const char *env[] = {ENV_URL, NULL};
    const char *a1[] = {"wallet", "--db", DB, "balance", NULL};
    cr_assert_eq(mp_run(a1, env, NULL, OUT, sizeof OUT), 0);
    cr_assert_eq(strtoull(OUT, NULL, 10), 7);
    const char *a2[] = {"wallet", "--db", DB, "recover", NULL};
    cr_assert_eq(mp_run(a2, env, NULL, OUT, sizeof OUT), 0);
    cr_assert(strstr(OUT, "released 3 reserved sat"), "%s", OUT);
    cr_assert_eq(mp_run(a1, env, NULL, OUT, sizeof OUT), 0);
    cr_assert_eq(strtoull(OUT, NULL, 10), 10);
}
