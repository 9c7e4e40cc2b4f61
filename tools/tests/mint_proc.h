/* Test helpers: start `dvm mint` as a real process on 127.0.0.1 (port 0,
 * port read from its "listening on" line), stop it by pid (SIGTERM or
 * SIGKILL) on every path, run `dvm` subcommands with captured output, and
 * small libcurl JSON requests. Every wait is bounded. Header-only: each
 * test binary includes it once. */
#ifndef DVM_TESTS_MINT_PROC_H
#define DVM_TESTS_MINT_PROC_H

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "spawn_run.h"

#define MP_MAX_PROCS 8

struct mint_proc {
    pid_t pid;
    int port;
    char url[64];
    char db[512];
};

/* Every process started here, killed by mp_kill_all (call it from .fini). */
static pid_t mp_pids[MP_MAX_PROCS];
/* If set, the next mints started write their stderr (request log) here;
 * mp_quiet false drops --quiet. */
static const char *mp_stderr_path;
static bool mp_verbose;

static inline const char *mp_dvm(void)
{
    static char path[512];
    const char *dir = getenv("DVM_BIN");
    snprintf(path, sizeof path, "%s/dvm", dir ? dir : "build/bin");
    return path;
}

static inline uint64_t mp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline void mp_track(pid_t pid)
{
    for (int i = 0; i < MP_MAX_PROCS; i++)
        if (mp_pids[i] == 0) {
            mp_pids[i] = pid;
            return;
        }
}

static inline void mp_untrack(pid_t pid)
{
    for (int i = 0; i < MP_MAX_PROCS; i++)
        if (mp_pids[i] == pid)
            mp_pids[i] = 0;
}

/* Wait for pid to exit within timeout_ms; returns its wait status or -1. */
static inline int mp_wait(pid_t pid, int timeout_ms)
{
    uint64_t end = mp_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        if (r < 0)
            return -1;
        if (mp_now_ms() >= end)
            return -1;
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static inline void mp_kill_all(void)
{
    for (int i = 0; i < MP_MAX_PROCS; i++)
        if (mp_pids[i] > 0) {
            kill(mp_pids[i], SIGKILL);
            mp_wait(mp_pids[i], 5000);
            mp_pids[i] = 0;
        }
}

/* One start of `dvm mint`; true when it listens, false when it exited
 * before (reaped). See mp_start_port. */
static inline bool mp_try_start(struct mint_proc *m, const char *db, int port, const char *const *extra)
{
    char dbcopy[sizeof m->db];
    snprintf(dbcopy, sizeof dbcopy, "%s", db); /* db may alias m->db */
    memset(m, 0, sizeof *m);
    snprintf(m->db, sizeof m->db, "%s", dbcopy);
    db = m->db;
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    const char *argv[32];
    int k = 0;
    argv[k++] = mp_dvm();
    argv[k++] = "mint";
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    argv[k++] = "--listen";
    argv[k++] = listen;
    argv[k++] = "--db";
    argv[k++] = db;
    if (!mp_verbose)
        argv[k++] = "--quiet";
    for (int i = 0; extra && extra[i] && k < 30; i++)
        argv[k++] = extra[i];
    argv[k] = NULL;
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        /* Die with the test process, even if it crashes before .fini. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1)
            _exit(127);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        if (mp_stderr_path) {
            int fd = open(mp_stderr_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
            if (fd >= 0) {
                dup2(fd, 2);
                close(fd);
            }
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    m->pid = pid;
    mp_track(pid);
    char buf[512] = {0};
    size_t n = 0;
    uint64_t end = mp_now_ms() + 10000;
    while (!strchr(buf, '\n') && n < sizeof buf - 1) {
        int left = (int)(end - mp_now_ms());
        cr_assert(left > 0, "dvm mint did not print its port within 10 s");
        struct pollfd p = {fds[0], POLLIN, 0};
        if (poll(&p, 1, left) <= 0)
            continue;
        ssize_t r = read(fds[0], buf + n, sizeof buf - 1 - n);
        if (r <= 0) { /* exited before listening (bind failed?) */
            close(fds[0]);
            int st = mp_wait(pid, 10000);
            cr_assert(st != -1, "dvm mint closed its stdout but did not exit");
            mp_untrack(pid);
            m->pid = 0;
            return false;
        }
        n += (size_t)r;
    }
    close(fds[0]);
    const char *pfx = "listening on http://127.0.0.1:";
    char *at = strstr(buf, pfx);
    cr_assert_not_null(at, "unexpected first line: %s", buf);
    m->port = atoi(at + strlen(pfx));
    cr_assert(m->port > 0 && m->port < 65536);
    snprintf(m->url, sizeof m->url, "http://127.0.0.1:%d", m->port);
    return true;
}

/* Retries of a mint restarted on a fixed port (see mp_start_port). */
#define MP_REBIND_MS 10000
#define MP_REBIND_PAUSE_MS 100

/* Start `dvm mint --listen 127.0.0.1:PORT --db DB --quiet [extra...]`
 * (extra NULL-terminated, may be NULL; port 0: any free port). Reads the
 * port within 10 s.
 *
 * port != 0 restarts a mint on the port it had, so the mint URL inside
 * tokens and wallets stays valid. The port can be briefly taken meanwhile:
 * Linux may hand it to another process's outgoing connection as its
 * ephemeral local port (other test binaries run in parallel), and such a
 * socket, bound without SO_REUSEADDR, makes the mint's bind fail with
 * EADDRINUSE. Those holders are short-lived, so a mint that exits before
 * listening on a fixed port is started again every MP_REBIND_PAUSE_MS for
 * at most MP_REBIND_MS; then the test fails naming the port. */
static inline void mp_start_port(struct mint_proc *m, const char *db, int port, const char *const *extra)
{
    uint64_t give_up = mp_now_ms() + MP_REBIND_MS;
    for (int attempt = 1;; attempt++) {
        if (mp_try_start(m, db, port, extra))
            return;
        cr_assert(port != 0 && mp_now_ms() < give_up,
                  "dvm mint exited before listening (attempt %d, port %d; stderr: %s)", attempt, port,
                  mp_stderr_path ? mp_stderr_path : "not captured");
        struct timespec ts = {0, MP_REBIND_PAUSE_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static inline void mp_start(struct mint_proc *m, const char *db, const char *const *extra)
{
    mp_start_port(m, db, 0, extra);
}

/* Stop with sig (SIGTERM: clean; SIGKILL: crash); returns the wait status. */
static inline int mp_stop(struct mint_proc *m, int sig)
{
    if (m->pid <= 0)
        return -1;
    kill(m->pid, sig);
    int st = mp_wait(m->pid, 10000);
    if (st == -1) {
        kill(m->pid, SIGKILL);
        st = mp_wait(m->pid, 5000);
    }
    mp_untrack(m->pid);
    m->pid = 0;
    return st;
}

/* A fresh temporary directory path + name, e.g. mp_tmp("mint.db"). */
static inline const char *mp_tmpdir(void)
{
    static char dir[256];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/dvmtest-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
    }
    return dir;
}

static inline char *mp_tmp(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", mp_tmpdir(), name);
    return out;
}

/* ---- HTTP ---------------------------------------------------------------- */

struct mp_sink {
    char *d;
    size_t n;
};

static inline size_t mp_write(char *p, size_t s, size_t nm, void *ud)
{
    struct mp_sink *k = ud;
    size_t n = s * nm;
    char *nd = realloc(k->d, k->n + n + 1);
    if (!nd)
        return 0;
    k->d = nd;
    memcpy(k->d + k->n, p, n);
    k->n += n;
    k->d[k->n] = '\0';
    return n;
}

/* GET (body NULL) or POST body to url+path; returns the HTTP status (0 on
 * transport failure) and the reply parsed as JSON in *out (NULL if not
 * JSON). */
static inline long mp_http(const char *url, const char *path, const char *body, size_t body_len,
                    json_t **out)
{
    CURL *h = curl_easy_init();
    char full[512];
    snprintf(full, sizeof full, "%s%s", url, path);
    struct mp_sink k = {0};
    curl_easy_setopt(h, CURLOPT_URL, full);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, mp_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &k);
    struct curl_slist *hd = NULL;
    if (body) {
        hd = curl_slist_append(hd, "Content-Type: application/json");
        hd = curl_slist_append(hd, "Expect:");
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    if (out)
        *out = k.d ? json_loads(k.d, 0, NULL) : NULL;
    free(k.d);
    return status;
}

static inline long mp_post_json(const char *url, const char *path, json_t *req, json_t **out)
{
    char *s = json_dumps(req, JSON_COMPACT);
    long st = mp_http(url, path, s, strlen(s), out);
    free(s);
    return st;
}

/* The NUT error code of a 400 reply, or -1. */
static inline long mp_code(json_t *reply)
{
    json_t *c = json_object_get(reply, "code");
    return json_is_integer(c) ? (long)json_integer_value(c) : -1;
}

/* ---- running dvm --------------------------------------------------------- */

/* Run prog with args (NULL-terminated, without the program), env extra
 * "NAME=VALUE" entries (NULL-terminated or NULL), stdin from `in` (may be
 * NULL); capture stdout into out (cap bytes; stderr is passed on to ours).
 * Returns the exit code, -1 when a signal ended it. Bounded by 60 s
 * (spawn_run.h: killed, and the test fails). */
static inline int mp_exec(const char *prog, const char *const *args, const char *const *env,
                          const char *in, char *out, size_t cap)
{
    const char *argv[32];
    int k = 0;
    argv[k++] = prog;
    for (int i = 0; args[i] && k < 31; i++)
        argv[k++] = args[i];
    argv[k] = NULL;
    spawn_result r = spawn_run_env(in, (char *const *)argv, env, 60000);
    snprintf(out, cap, "%s", r.out);
    fputs(r.err, stderr);
    int code = r.code >= 128 ? -1 : r.code;
    spawn_result_free(&r);
    return code;
}

static inline int mp_run(const char *const *args, const char *const *env, const char *in,
                         char *out, size_t cap)
{
    return mp_exec(mp_dvm(), args, env, in, out, cap);
}

/* Kill what is left and remove the temporary directory (call from .fini). */
static inline void mp_fini(void)
{
    mp_kill_all();
    const char *d = mp_tmpdir();
    if (strncmp(d, "/tmp/dvmtest-", 13) == 0) {
        if (!spawn_rm_rf(d))
            fprintf(stderr, "could not remove %s\n", d);
    }
}

#endif
