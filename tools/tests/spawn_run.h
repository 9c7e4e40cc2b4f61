/* Test helper: run a short-lived program to completion with `input` on
 * stdin, capturing its exit code, stdout and stderr (unlinked temp files,
 * so no pipe can fill up). The wait is bounded: a program still running
 * after SPAWN_RUN_TIMEOUT_MS is killed by pid (SIGKILL, reaped) and the
 * test fails. Shared by the CLI tests that run `dvm` and node peers. */
#ifndef DVM_TESTS_SPAWN_RUN_H
#define DVM_TESTS_SPAWN_RUN_H

#include <criterion/criterion.h>
#include <signal.h>
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

typedef struct run {
    int code;  /* exit status, or 128 + signal */
    char *out; /* stdout, NUL-terminated, malloc'd */
    char *err; /* stderr, NUL-terminated, malloc'd */
} run;

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

/* Run argv (argv[0] looked up in PATH unless it contains '/') with `input`
 * (NULL: empty) on stdin; the exit code and output. */
static inline run spawn_run(const char *input, char *const argv[])
{
    int in = spawn_run_temp_fd(), out = spawn_run_temp_fd(), err = spawn_run_temp_fd();
    if (input)
        cr_assert_eq(write(in, input, strlen(input)), (ssize_t)strlen(input));
    lseek(in, 0, SEEK_SET);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in, 0);
    posix_spawn_file_actions_adddup2(&fa, out, 1);
    posix_spawn_file_actions_adddup2(&fa, err, 2);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(rc, 0, "cannot run %s", argv[0]);
    /* Bounded wait for the exit (polling a child we started; no hoping). */
    uint64_t end = spawn_run_now_ms() + SPAWN_RUN_TIMEOUT_MS;
    int st = 0;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 || spawn_run_now_ms() >= end) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            close(in);
            close(out);
            close(err);
            cr_assert_fail("%s did not exit within %d ms (killed)", argv[0], SPAWN_RUN_TIMEOUT_MS);
        }
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    run r = {WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), spawn_run_slurp(out), spawn_run_slurp(err)};
    close(in);
    close(out);
    close(err);
    return r;
}

static inline void run_free(run *r)
{
    free(r->out);
    free(r->err);
}

#endif
