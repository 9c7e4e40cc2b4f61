/* Test helper: run a short-lived program to completion with `input` on
 * stdin, capturing its exit code, stdout and stderr (unlinked temp files,
 * so no pipe can fill up). The wait is bounded: a program still running
 * after its timeout (SPAWN_RUN_TIMEOUT_MS unless given) is killed by pid
 * (SIGKILL, reaped) and the test fails. posix_spawn, never a shell: no
 * quoting, no system()/popen. Shared by every test that runs `dvm`, node
 * peers, tshark, sqlite3 or rm to completion. */
#ifndef DVM_TESTS_SPAWN_RUN_H
#define DVM_TESTS_SPAWN_RUN_H

#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#ifndef SPAWN_RUN_TIMEOUT_MS
#define SPAWN_RUN_TIMEOUT_MS 30000
#endif

typedef struct spawn_result {
    int code;  /* exit status, or 128 + signal */
    char *out; /* stdout, NUL-terminated, malloc'd */
    char *err; /* stderr, NUL-terminated, malloc'd */
} spawn_result;

static inline char *spawn_run_slurp(int fd)
{
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    cr_assert_not_null(b);
    lseek(fd, 0, SEEK_SET);
    ssize_t got;
    while ((got = read(fd, b + n, cap - n)) > 0) {
        n += (size_t)got;
        if (n == cap) {
            cap *= 2;
            b = realloc(b, cap + 1);
            cr_assert_not_null(b);
        }
    }
    b[n] = '\0';
    return b;
}

static inline int spawn_run_temp_fd(void)
{
    char path[] = "/tmp/dvm-test-run-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);
    return fd;
}

static inline uint64_t spawn_run_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Run argv (argv[0] looked up in PATH unless it contains '/') with stdin,
 * stdout and stderr on the given descriptors and the environment envp
 * (NULL: ours); wait at most timeout_ms. Returns the exit status, or 128 +
 * the signal that ended it. A child still running at the deadline is
 * killed and reaped, and the test fails naming it. */
static inline int spawn_run_fds(char *const argv[], char *const envp[], int in, int out, int err, int timeout_ms)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in, 0);
    posix_spawn_file_actions_adddup2(&fa, out, 1);
    posix_spawn_file_actions_adddup2(&fa, err, 2);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, envp ? envp : environ);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(rc, 0, "cannot run %s", argv[0]);
    /* Bounded wait for the exit (polling a child we started; no hoping). */
    uint64_t end = spawn_run_now_ms() + (uint64_t)timeout_ms;
    int st = 0;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 || spawn_run_now_ms() >= end) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            cr_assert_fail("%s did not exit within %d ms (killed)", argv[0], timeout_ms);
        }
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Run argv with `input` (NULL: empty) on stdin and env_extra ("NAME=VALUE"
 * entries, NULL-terminated, or NULL) added to our environment (replacing
 * variables of the same name), waiting at most timeout_ms (0:
 * SPAWN_RUN_TIMEOUT_MS); the exit code and output. */
static inline spawn_result spawn_run_env(const char *input, char *const argv[], const char *const *env_extra,
                                         int timeout_ms)
{
    int in = spawn_run_temp_fd(), out = spawn_run_temp_fd(), err = spawn_run_temp_fd();
    if (input)
        cr_assert_eq(write(in, input, strlen(input)), (ssize_t)strlen(input));
    lseek(in, 0, SEEK_SET);
    char **envp = NULL;
    if (env_extra) {
        size_t ne = 0, nx = 0;
        while (environ[ne])
            ne++;
        while (env_extra[nx])
            nx++;
        envp = calloc(ne + nx + 1, sizeof *envp);
        cr_assert_not_null(envp);
        size_t k = 0;
        for (size_t i = 0; i < ne; i++) {
            bool replaced = false;
            for (size_t x = 0; x < nx && !replaced; x++) {
                size_t nl = strcspn(env_extra[x], "=");
                replaced = strncmp(environ[i], env_extra[x], nl) == 0 && environ[i][nl] == '=';
            }
            if (!replaced)
                envp[k++] = environ[i];
        }
        for (size_t x = 0; x < nx; x++)
            envp[k++] = (char *)env_extra[x];
    }
    int code = spawn_run_fds(argv, envp, in, out, err, timeout_ms ? timeout_ms : SPAWN_RUN_TIMEOUT_MS);
    free(envp);
    spawn_result r = {code, spawn_run_slurp(out), spawn_run_slurp(err)};
    close(in);
    close(out);
    close(err);
    return r;
}

/* Run argv (argv[0] looked up in PATH unless it contains '/') with `input`
 * (NULL: empty) on stdin; the exit code and output. */
static inline spawn_result spawn_run(const char *input, char *const argv[])
{
    return spawn_run_env(input, argv, NULL, 0);
}

/* Run argv with stdin from /dev/null, stdout and stderr into the files
 * out_path and err_path (created or truncated, 0600), waiting at most
 * timeout_ms; the exit code. */
static inline int spawn_run_files(char *const argv[], const char *out_path, const char *err_path, int timeout_ms)
{
    int in = open("/dev/null", O_RDONLY);
    int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(in >= 0 && out >= 0 && err >= 0, "cannot open %s or %s", out_path, err_path);
    int code = spawn_run_fds(argv, NULL, in, out, err, timeout_ms);
    close(in);
    close(out);
    close(err);
    return code;
}

/* Remove a temporary directory tree (rm -rf, bounded to 30 s); true when
 * rm succeeded. Only for paths under /tmp that the test created. */
static inline bool spawn_rm_rf(const char *dir)
{
    if (!dir || strncmp(dir, "/tmp/", 5) != 0 || strstr(dir, ".."))
        return false;
    char *const argv[] = {"rm", "-rf", "--", (char *)dir, NULL};
    int in = open("/dev/null", O_RDONLY), out = open("/dev/null", O_WRONLY);
    int code = spawn_run_fds(argv, NULL, in, out, out, 30000);
    close(in);
    close(out);
    return code == 0;
}

static inline void spawn_result_free(spawn_result *r)
{
    free(r->out);
    free(r->err);
}

#endif
