/* `dvm identity` and `dvm pipe` argument handling, through the real binary
 * (DVM_BIN). The pipe's data path is covered by test_interop_secretstream. */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Run a shell command line (our own fixed strings and temp paths only);
 * stdout into out, returns the exit status. */
static int run(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    cr_assert(p, "popen %s", cmd);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char g_dir[64];

static void setup(void)
{
    cr_assert(getenv("DVM_BIN"), "DVM_BIN must point at build/bin");
    strcpy(g_dir, "/tmp/dvm-cli-id-XXXXXX");
    cr_assert_not_null(mkdtemp(g_dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(cli_identity, .init = setup, .fini = teardown, .timeout = 60);

Test(cli_identity, creates_then_reloads_the_same_key)
{
    char cmd[512], a[256], b[256];
    snprintf(cmd, sizeof cmd, "'%s/dvm' identity --identity '%s/id' 2>/dev/null", getenv("DVM_BIN"), g_dir);
    cr_assert_eq(run(cmd, a, sizeof a), 0);
    cr_assert_eq(strlen(a), 65, "64 hex characters and a newline: '%s'", a);
    cr_assert_eq(strspn(a, "0123456789abcdef"), 64);
    cr_assert_eq(run(cmd, b, sizeof b), 0);
    cr_assert_str_eq(a, b);
    char path[128];
    snprintf(path, sizeof path, "%s/id", g_dir);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    /* The default location follows XDG_DATA_HOME. */
    snprintf(cmd, sizeof cmd, "XDG_DATA_HOME='%s/xdg' '%s/dvm' identity 2>/dev/null", g_dir, getenv("DVM_BIN"));
    cr_assert_eq(run(cmd, b, sizeof b), 0);
    snprintf(path, sizeof path, "%s/xdg/dvm/identity", g_dir);
    cr_assert_eq(stat(path, &st), 0, "identity created under $XDG_DATA_HOME/dvm");
    cr_assert_str_neq(a, b);
}

Test(cli_identity, refuses_an_open_or_broken_file)
{
    char cmd[512], out[256], path[128];
    snprintf(path, sizeof path, "%s/id", g_dir);
    FILE *f = fopen(path, "w");
    fputs("0101010101010101010101010101010101010101010101010101010101010101\n", f);
    fclose(f);
    chmod(path, 0644);
    snprintf(cmd, sizeof cmd, "'%s/dvm' identity --identity '%s' 2>/dev/null", getenv("DVM_BIN"), path);
    cr_assert_eq(run(cmd, out, sizeof out), 1);
    cr_assert_str_eq(out, "");
    chmod(path, 0600);
    cr_assert_eq(run(cmd, out, sizeof out), 0);
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
    cr_assert_eq(run(cmd, out, sizeof out), 1);
}

Test(cli_identity, pipe_usage_errors)
{
    char cmd[512], out[256];
    const char *bad[] = {"", "--listen 127.0.0.1:0 --peer 127.0.0.1:1", "--peer nope", "--peer 127.0.0.1:1@abcd",
                         "--listen 127.0.0.1:0 --timeout 0", "extra"};
    for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(cmd, sizeof cmd, "'%s/dvm' pipe --identity '%s/id' %s </dev/null 2>/dev/null", getenv("DVM_BIN"),
                 g_dir, bad[i]);
        cr_assert_eq(run(cmd, out, sizeof out), 2, "'%s' accepted", bad[i]);
    }
    snprintf(cmd, sizeof cmd, "'%s/dvm' pipe --help", getenv("DVM_BIN"));
    cr_assert_eq(run(cmd, out, sizeof out), 0);
    cr_assert(strstr(out, "usage: dvm pipe"));
}
