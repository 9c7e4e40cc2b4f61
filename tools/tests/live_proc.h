/* Test helpers: start `dvm` subcommands as real processes on 127.0.0.1,
 * read their NDJSON logs (stderr, --log-json) and stdout with bounded
 * waits, and kill them by pid on every path (lp_kill_all in a fini). */
#ifndef DVM_TESTS_LIVE_PROC_H
#define DVM_TESTS_LIVE_PROC_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define LP_MAX 16

typedef struct lp {
    pid_t pid;
    int out_fd, err_fd;
    int in_fd; /* write end of the child's stdin pipe, or -1 */
    char out[1 << 18];
    size_t out_len;
    char err[1 << 18]; /* unconsumed stderr bytes */
    size_t err_len;
    char errlog[1 << 16]; /* everything seen on stderr (tail), for messages */
    size_t errlog_len;
    bool exited;
    int status;
    const char *name;
} lp;

static lp *lp_all[LP_MAX];

static inline uint64_t lp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline const char *lp_bin(void)
{
    static char path[1024];
    const char *b = getenv("DVM_BIN");
    cr_assert_not_null(b, "DVM_BIN is set by ctest");
    snprintf(path, sizeof path, "%s/dvm", b);
    return path;
}

static inline lp *lp_spawn(const char *name, const char **args, bool stdin_pipe);

/* Start `dvm ARGS...` (NULL-terminated). */
static inline lp *lp_start(const char *name, ...)
{
    const char *args[64];
    int n = 0;
    args[n++] = lp_bin();
    va_list ap;
    va_start(ap, name);
    const char *a;
    while ((a = va_arg(ap, const char *)) && n < 63)
        args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    return lp_spawn(name, args, false);
}

/* Start args[0] (found on PATH) with args; stdin a pipe we keep open (the
 * child sees EOF when the test process dies) or /dev/null. */
static inline lp *lp_spawn(const char *name, const char **args, bool stdin_pipe)
{
    lp *p = calloc(1, sizeof *p);
    cr_assert_not_null(p);
    p->name = name;
    int o[2], e[2];
    cr_assert_eq(pipe(o), 0);
    cr_assert_eq(pipe(e), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    int in[2] = {-1, -1};
    if (stdin_pipe) {
        cr_assert_eq(pipe(in), 0);
        fcntl(in[1], F_SETFD, FD_CLOEXEC);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    } else
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, o[1], 1);
    posix_spawn_file_actions_adddup2(&fa, e[1], 2);
    posix_spawn_file_actions_addclose(&fa, o[0]);
    posix_spawn_file_actions_addclose(&fa, e[0]);
    int rc = posix_spawnp(&p->pid, args[0], &fa, NULL, (char *const *)args, environ);
    if (stdin_pipe)
        close(in[0]); /* in[1] stays open (close-on-exec) until lp_kill_all */
    p->in_fd = in[1];
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(rc, 0, "spawn %s", args[0]);
    close(o[1]);
    close(e[1]);
    p->out_fd = o[0];
    p->err_fd = e[0];
    fcntl(p->out_fd, F_SETFL, O_NONBLOCK);
    fcntl(p->err_fd, F_SETFL, O_NONBLOCK);
    for (int i = 0; i < LP_MAX; i++)
        if (!lp_all[i]) {
            lp_all[i] = p;
            break;
        }
    return p;
}

/* Read what is available (waiting at most ms). */
static inline void lp_pump(lp *p, int ms)
{
    struct pollfd fds[2] = {{p->out_fd, POLLIN, 0}, {p->err_fd, POLLIN, 0}};
    if (poll(fds, 2, ms) <= 0)
        return;
    if (p->out_fd >= 0 && (fds[0].revents & (POLLIN | POLLHUP))) {
        ssize_t n = read(p->out_fd, p->out + p->out_len, sizeof p->out - 1 - p->out_len);
        if (n > 0) {
            p->out_len += (size_t)n;
            p->out[p->out_len] = 0;
        } else if (n == 0) {
            close(p->out_fd);
            p->out_fd = -1;
        }
    }
    if (p->err_fd >= 0 && (fds[1].revents & (POLLIN | POLLHUP))) {
        char buf[8192];
        ssize_t n = read(p->err_fd, buf, sizeof buf);
        if (n > 0) {
            size_t k = (size_t)n;
            if (p->err_len + k < sizeof p->err) {
                memcpy(p->err + p->err_len, buf, k);
                p->err_len += k;
            }
            if (p->errlog_len + k >= sizeof p->errlog) {
                size_t drop = p->errlog_len + k - sizeof p->errlog + 1;
                if (drop > p->errlog_len)
                    drop = p->errlog_len;
                memmove(p->errlog, p->errlog + drop, p->errlog_len - drop);
                p->errlog_len -= drop;
            }
            size_t c = k < sizeof p->errlog - 1 - p->errlog_len ? k : sizeof p->errlog - 1 - p->errlog_len;
            memcpy(p->errlog + p->errlog_len, buf, c);
            p->errlog_len += c;
            p->errlog[p->errlog_len] = 0;
        } else if (n == 0) {
            close(p->err_fd);
            p->err_fd = -1;
        }
    }
}

/* Next NDJSON log line with "event" == ev (earlier lines are consumed),
 * waiting at most timeout_ms; NULL on timeout or EOF. Caller decrefs. */
static inline json_t *lp_wait_event(lp *p, const char *ev, uint64_t timeout_ms)
{
    uint64_t end = lp_now_ms() + timeout_ms;
    for (;;) {
        char *nl;
        while ((nl = memchr(p->err, '\n', p->err_len))) {
            size_t n = (size_t)(nl - p->err);
            json_t *o = json_loadb(p->err, n, 0, NULL);
            memmove(p->err, nl + 1, p->err_len - n - 1);
            p->err_len -= n + 1;
            const char *e = o ? json_string_value(json_object_get(o, "event")) : NULL;
            if (e && strcmp(e, ev) == 0)
                return o;
            json_decref(o);
        }
        uint64_t now = lp_now_ms();
        if (now >= end || (p->err_fd < 0 && p->out_fd < 0))
            return NULL;
        lp_pump(p, (int)(end - now > 100 ? 100 : end - now));
    }
}

/* The first event `ev` anywhere in what stderr showed so far (also lines
 * lp_wait_event already consumed); NULL if none. Caller decrefs. */
static inline json_t *lp_find_event(lp *p, const char *ev)
{
    lp_pump(p, 0);
    for (const char *s = p->errlog; *s;) {
        size_t n = strcspn(s, "\n");
        json_t *o = json_loadb(s, n, 0, NULL);
        const char *e = o ? json_string_value(json_object_get(o, "event")) : NULL;
        if (e && !strcmp(e, ev))
            return o;
        json_decref(o);
        s += n;
        if (*s)
            s++;
    }
    return NULL;
}

/* Like lp_find_event, waiting up to timeout_ms for the event to appear. */
static inline json_t *lp_wait_find(lp *p, const char *ev, uint64_t timeout_ms)
{
    uint64_t end = lp_now_ms() + timeout_ms;
    json_t *o;
    while (!(o = lp_find_event(p, ev)) && lp_now_ms() < end)
        lp_pump(p, 50);
    return o;
}

/* Wait until stdout holds at least n bytes (or EOF/timeout). */
static inline bool lp_wait_stdout(lp *p, size_t n, uint64_t timeout_ms)
{
    uint64_t end = lp_now_ms() + timeout_ms;
    while (p->out_len < n && lp_now_ms() < end && (p->out_fd >= 0 || p->err_fd >= 0))
        lp_pump(p, 50);
    return p->out_len >= n;
}

/* Wait for exit (reading output meanwhile); -1 on timeout, else the exit
 * status (128+signal when killed). */
static inline int lp_wait_exit(lp *p, uint64_t timeout_ms)
{
    uint64_t end = lp_now_ms() + timeout_ms;
    while (!p->exited) {
        int st;
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid) {
            p->exited = true;
            p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        if (lp_now_ms() >= end)
            return -1;
        lp_pump(p, 20);
    }
    for (int i = 0; i < 20 && (p->out_fd >= 0 || p->err_fd >= 0); i++)
        lp_pump(p, 20);
    return p->status;
}

static inline void lp_signal(lp *p, int sig)
{
    if (!p->exited)
        kill(p->pid, sig);
}

/* Forget an exited process: close its pipes, free its slot. */
static inline void lp_forget(lp *p)
{
    for (int i = 0; i < LP_MAX; i++)
        if (lp_all[i] == p)
            lp_all[i] = NULL;
    if (p->out_fd >= 0)
        close(p->out_fd);
    if (p->err_fd >= 0)
        close(p->err_fd);
    if (p->in_fd >= 0)
        close(p->in_fd);
    free(p);
}

/* Kill every process still running (SIGKILL, by pid) and reap it. */
static inline void lp_kill_all(void)
{
    for (int i = 0; i < LP_MAX; i++) {
        lp *p = lp_all[i];
        if (!p)
            continue;
        if (!p->exited) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, NULL, 0);
        }
        lp_forget(p);
    }
}

/* Retries of a mint restarted on a fixed port (see lp_start_mint). */
#define LP_REBIND_MS 10000
#define LP_REBIND_PAUSE_MS 100

/* A mint on 127.0.0.1 (port 0 unless `port`), db in dir. URL into url.
 *
 * `port` != 0 restarts a mint on the port it had, so the mint URL inside
 * tokens and wallets stays valid. The port can be briefly taken meanwhile:
 * Linux may hand it to another process's outgoing connection as its
 * ephemeral local port (other test binaries run in parallel), and such a
 * socket, bound without SO_REUSEADDR, makes the mint's bind fail with
 * EADDRINUSE. Those holders are short-lived, so when the mint exits before
 * listening on a fixed port the start is retried every LP_REBIND_PAUSE_MS
 * for at most LP_REBIND_MS, then the test fails naming the port. */
static inline lp *lp_start_mint(const char *dir, uint16_t port, char *url, size_t cap)
{
    char db[512], listen[64];
    snprintf(db, sizeof db, "--db=%s/mint.db", dir);
    snprintf(listen, sizeof listen, "--listen=127.0.0.1:%u", port);
    uint64_t give_up = lp_now_ms() + LP_REBIND_MS;
    for (int attempt = 1;; attempt++) {
        lp *m = lp_start("mint", "mint", listen, db, NULL);
        uint64_t end = lp_now_ms() + 10000;
        const char *pre = "listening on ";
        while (lp_now_ms() < end) {
            lp_pump(m, 50);
            char *s = strstr(m->out, pre);
            if (s && strchr(s, '\n')) {
                s += strlen(pre);
                size_t n = strcspn(s, "\n");
                snprintf(url, cap, "%.*s", (int)n, s);
                return m;
            }
            if (lp_wait_exit(m, 0) != -1)
                break; /* exited before listening */
        }
        cr_assert(m->exited, "mint did not start within 10 s: %s", m->errlog);
        cr_assert(port != 0 && lp_now_ms() < give_up, "mint did not start (attempt %d, port %u): %s", attempt,
                  port, m->errlog);
        lp_forget(m);
        struct timespec ts = {0, LP_REBIND_PAUSE_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* An agent with --log-json; extra flags after dir; its address into addr. */
#define lp_start_agent(dir, mint_url, addr, cap, ...)                                                                \
    lp_start_agent_((dir), (mint_url), (addr), (cap), (const char *[]){__VA_ARGS__, NULL})
static inline lp *lp_start_agent_(const char *dir, const char *mint_url, char *addr, size_t cap, const char **extra)
{
    char mint[512], wallet[512], ident[512];
    snprintf(mint, sizeof mint, "--mint=%s", mint_url);
    snprintf(wallet, sizeof wallet, "--wallet=%s/agent.db", dir);
    snprintf(ident, sizeof ident, "--identity=%s/agent.key", dir);
    const char *a[24] = {"--listen=127.0.0.1:0", mint, wallet, ident, "--log-json"};
    int n = 5;
    for (int i = 0; extra[i] && n < 23; i++)
        a[n++] = extra[i];
    a[n] = NULL;
    lp *p = lp_start("agent", "agent", a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11],
                     a[12], a[13], a[14], a[15], a[16], a[17], a[18], a[19], a[20], a[21], a[22], NULL);
    json_t *o = lp_wait_event(p, "listening", 10000);
    cr_assert_not_null(o, "agent did not start: %s", p->errlog);
    snprintf(addr, cap, "%s", json_string_value(json_object_get(o, "address")));
    json_decref(o);
    return p;
}

#endif
