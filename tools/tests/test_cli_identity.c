/* `dvm identity` and `dvm pipe` argument handling, through the real binary
 * (DVM_BIN). The pipe's data path is covered by test_interop_secretstream. */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spawn_run.h"

static char g_dir[64];

/* Run `dvm ARGS...` (bounded: spawn_run.h) with env_extra ("NAME=VALUE",
 * NULL-terminated, or NULL); stdout into out (cap bytes), stderr dropped;
 * the exit status. */
#define DVM(env, out, cap, ...) dvm_run((env), (out), (cap), (const char *[]){__VA_ARGS__, NULL})
static int dvm_run(const char *const *env, char *out, size_t cap, const char **args)
{
    char bin[512];
    snprintf(bin, sizeof bin, "%s/dvm", getenv("DVM_BIN"));
    const char *argv[16] = {bin};
    int n = 1;
    for (int i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    spawn_result r = spawn_run_env(NULL, (char *const *)argv, env, 0);
    snprintf(out, cap, "%s", r.out);
    int code = r.code;
    spawn_result_free(&r);
    return code;
}

static void setup(void)
{
    cr_assert(getenv("DVM_BIN"), "DVM_BIN must point at build/bin");
    strcpy(g_dir, "/tmp/dvm-cli-id-XXXXXX");
    cr_assert_not_null(mkdtemp(g_dir));
}

static void teardown(void)
{
    cr_assert(spawn_rm_rf(g_dir), "could not remove %s", g_dir);
}

TestSuite(cli_identity, .init = setup, .fini = teardown, .timeout = 60);

Test(cli_identity, creates_then_reloads_the_same_key)
{
    char id[128], a[256], b[256];
    snprintf(id, sizeof id, "%s/id", g_dir);
    cr_assert_eq(DVM(NULL, a, sizeof a, "identity", "--identity", id), 0);
    cr_assert_eq(strlen(a), 65, "64 hex characters and a newline: '%s'", a);
    cr_assert_eq(strspn(a, "0123456789abcdef"), 64);
    cr_assert_eq(DVM(NULL, b, sizeof b, "identity", "--identity", id), 0);
    cr_assert_str_eq(a, b);
    char path[128];
    snprintf(path, sizeof path, "%s/id", g_dir);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    /* The default location follows XDG_DATA_HOME. */
    char xdg[128];
    snprintf(xdg, sizeof xdg, "XDG_DATA_HOME=%s/xdg", g_dir);
    const char *env[] = {xdg, NULL};
    cr_assert_eq(DVM(env, b, sizeof b, "identity"), 0);
    snprintf(path, sizeof path, "%s/xdg/dvm/identity", g_dir);
    cr_assert_eq(stat(path, &st), 0, "identity created under $XDG_DATA_HOME/dvm");
    cr_assert_str_neq(a, b);
}

Test(cli_identity, refuses_an_open_or_broken_file)
{
    char out[256], path[128];
    snprintf(path, sizeof path, "%s/id", g_dir);
    FILE *f = fopen(path, "w");
    fputs("0101010101010101010101010101010101010101010101010101010101010101\n", f);
    fclose(f);
    chmod(path, 0644);
    cr_assert_eq(DVM(NULL, out, sizeof out, "identity", "--identity", path), 1);
    cr_assert_str_eq(out, "");
    chmod(path, 0600);
    cr_assert_eq(DVM(NULL, out, sizeof out, "identity", "--identity", path), 0);
    /* seed 0x01 * 32 -> its Ed25519 public key, computed here with libsodium */
    uint8_t seed[32], pk[32], sk[64];
    memset(seed, 1, 32);
    crypto_sign_seed_keypair(pk, sk, seed);
    char want[66];
    sodium_bin2hex(want, 65, pk, 32);
    strcat(want, "\n");
    cr_assert_str_eq(out, want);
    f = fopen(path, "w");
    fputs("nothex\n", f);
    fclose(f);
    cr_assert_eq(DVM(NULL, out, sizeof out, "identity", "--identity", path), 1);
}

Test(cli_identity, pipe_usage_errors)
{
    char out[256], id[128];
    snprintf(id, sizeof id, "%s/id", g_dir);
    const char *bad[][5] = {{NULL},
                            {"--listen", "127.0.0.1:0", "--peer", "127.0.0.1:1", NULL},
                            {"--peer", "nope", NULL},
                            {"--peer", "127.0.0.1:1@abcd", NULL},
                            {"--listen", "127.0.0.1:0", "--timeout", "0", NULL},
                            {"extra", NULL}};
    for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *args[8] = {"pipe", "--identity", id};
        int n = 3;
        for (int k = 0; bad[i][k]; k++)
            args[n++] = bad[i][k];
        args[n] = NULL;
        cr_assert_eq(dvm_run(NULL, out, sizeof out, args), 2, "case %u accepted", i);
    }
    cr_assert_eq(DVM(NULL, out, sizeof out, "pipe", "--help"), 0);
    cr_assert(strstr(out, "usage: dvm pipe"));
}
