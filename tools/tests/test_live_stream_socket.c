/* The local stream socket (tools/live/stream_socket.h) and `dvm tail`:
 * lines reach clients, no client means dropped, a stuck client is bounded,
 * stale / busy paths, and the real `dvm tail` process printing chunks and
 * reconnecting when the publisher (the agent) restarts. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "live/stream_socket.h"
#include "spawn_run.h"

static pid_t child_pid; /* killed by the fini on every path */

static void kill_child(void)
{
    if (child_pid > 0) {
        kill(child_pid, SIGKILL);
        waitpid(child_pid, NULL, 0);
        child_pid = 0;
    }
}

static char dir[256];

static void mkdir_tmp(void)
{
    snprintf(dir, sizeof dir, "/tmp/dvm-sock-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void cleanup(void)
{
    kill_child();
    if (dir[0])
        cr_assert(spawn_rm_rf(dir), "could not remove %s", dir);
}

static void sock_path(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

/* Run the loop until pred(arg) or timeout_ms pass; a 5 ms tick keeps the
 * loop waking so predicates over external state are re-checked. */
static void tick_cb(uv_timer_t *t) { (void)t; }
static bool wait_until(uv_loop_t *loop, bool (*pred)(void *), void *arg, uint64_t timeout_ms)
{
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, tick_cb, 5, 5);
    uv_update_time(loop);
    uint64_t end = uv_now(loop) + timeout_ms;
    bool ok;
    while (!(ok = pred(arg)) && uv_now(loop) < end)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

static void drain_loop(uv_loop_t *loop)
{
    for (int i = 0; i < 100 && uv_loop_alive(loop); i++)
        uv_run(loop, UV_RUN_NOWAIT);
    cr_assert_eq(uv_loop_close(loop), 0, "every handle closed");
}

struct pubwait {
    dvm_stream_pub *s;
    size_t clients;
};
static bool has_clients(void *a)
{
    struct pubwait *w = a;
    return dvm_stream_pub_stats(w->s).clients >= w->clients;
}

TestSuite(stream, .init = mkdir_tmp, .fini = cleanup);

Test(stream, no_client_means_dropped_silently)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char path[300];
    sock_path(path, sizeof path, "a.sock");
    dvm_stream_pub *s;
    char err[256];
    cr_assert_eq(dvm_stream_pub_open(&loop, path, &s, err, sizeof err), 0, "%s", err);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert(S_ISSOCK(st.st_mode));
    cr_assert_eq(st.st_mode & 0777, 0600);
    for (int i = 0; i < 100; i++)
        dvm_stream_pub_publish(s, "ab", "job", "x", 1);
    dvm_stream_stats ss = dvm_stream_pub_stats(s);
    cr_assert_eq(ss.published, 100);
    cr_assert_eq(ss.sent, 0);
    dvm_stream_pub_close(s);
    drain_loop(&loop);
    cr_assert_neq(stat(path, &st), 0, "the socket file is removed on close");
}

/* an in-loop reader */
struct reader {
    uv_pipe_t pipe;
    uv_connect_t req;
    char buf[1 << 16];
    size_t len;
    bool connected;
};
static void r_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    (void)sz;
    struct reader *r = h->data;
    b->base = r->buf + r->len;
    b->len = sizeof r->buf - r->len - 1;
}
static void r_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    struct reader *r = st->data;
    if (n > 0) {
        r->len += (size_t)n;
        r->buf[r->len] = 0;
    }
}
static void r_conn(uv_connect_t *req, int status)
{
    struct reader *r = req->data;
    cr_assert_eq(status, 0);
    r->connected = true;
    uv_read_start((uv_stream_t *)&r->pipe, r_alloc, r_read);
}
static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}
struct linewait {
    struct reader *r;
    int lines;
};
static bool has_lines(void *a)
{
    struct linewait *w = a;
    return count_lines(w->r->buf) >= w->lines;
}

Test(stream, lines_reach_a_client_as_ndjson)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char path[300];
    sock_path(path, sizeof path, "b.sock");
    dvm_stream_pub *s;
    char err[256];
    cr_assert_eq(dvm_stream_pub_open(&loop, path, &s, err, sizeof err), 0, "%s", err);
    struct reader *r = calloc(1, sizeof *r);
    uv_pipe_init(&loop, &r->pipe, 0);
    r->pipe.data = r;
    r->req.data = r;
    uv_pipe_connect(&r->req, &r->pipe, path, r_conn);
    struct pubwait pw = {s, 1};
    cr_assert(wait_until(&loop, has_clients, &pw, 5000));
    dvm_stream_pub_publish(s, "00ff", "job-1", "Hello", 5);
    dvm_stream_pub_publish(s, "00ff", "job-1", " wörld\n\"quoted\"", strlen(" wörld\n\"quoted\""));
    dvm_stream_pub_publish(s, "00ff", "job-2", "\xff bad utf8", 10); /* not encodable: dropped */
    dvm_stream_pub_publish(s, "00ff", "job-2", "second job", 10);
    struct linewait lw = {r, 3};
    cr_assert(wait_until(&loop, has_lines, &lw, 5000), "got: %s", r->buf);
    const char *want_data[3] = {"Hello", " wörld\n\"quoted\"", "second job"};
    const char *want_conv[3] = {"job-1", "job-1", "job-2"};
    char *line = r->buf;
    for (int i = 0; i < 3; i++) {
        char *nl = strchr(line, '\n');
        json_t *o = json_loadb(line, (size_t)(nl - line), 0, NULL);
        cr_assert_not_null(o, "line %d is JSON", i);
        cr_assert_str_eq(json_string_value(json_object_get(o, "agent_pubkey")), "00ff");
        cr_assert_str_eq(json_string_value(json_object_get(o, "conversation_id")), want_conv[i]);
        cr_assert_str_eq(json_string_value(json_object_get(o, "data")), want_data[i]);
        cr_assert_eq(json_object_size(o), 3);
        json_decref(o);
        line = nl + 1;
    }
    cr_assert_eq(count_lines(r->buf), 3);
    dvm_stream_pub_close(s);
    uv_close((uv_handle_t *)&r->pipe, NULL);
    drain_loop(&loop);
    free(r);
}

Test(stream, a_client_that_never_reads_is_bounded)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char path[300];
    sock_path(path, sizeof path, "c.sock");
    dvm_stream_pub *s;
    char err[256];
    cr_assert_eq(dvm_stream_pub_open(&loop, path, &s, err, sizeof err), 0, "%s", err);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {0};
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, path);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct pubwait pw = {s, 1};
    cr_assert(wait_until(&loop, has_clients, &pw, 5000));
    static char data[4000];
    memset(data, 'z', sizeof data);
    for (int i = 0; i < 5000; i++) /* 20 MB offered, nobody reading */
        dvm_stream_pub_publish(s, "aa", "j", data, sizeof data);
    dvm_stream_stats ss = dvm_stream_pub_stats(s);
    cr_assert_eq(ss.published, 5000);
    cr_assert_gt(ss.dropped, 0);
    cr_assert_eq(ss.sent + ss.dropped, 5000);
    /* queued bytes <= the bound; the rest sits in the kernel's buffers */
    cr_assert_lt(ss.sent * 4050, DVM_STREAM_CLIENT_QUEUE + (8u << 20));
    close(fd);
    dvm_stream_pub_close(s);
    drain_loop(&loop);
}

Test(stream, busy_stale_and_foreign_paths)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char path[300], err[256];
    sock_path(path, sizeof path, "d.sock");
    dvm_stream_pub *a, *b;
    cr_assert_eq(dvm_stream_pub_open(&loop, path, &a, err, sizeof err), 0, "%s", err);
    cr_assert_eq(dvm_stream_pub_open(&loop, path, &b, err, sizeof err), -1);
    cr_assert(strstr(err, "in use"), "%s", err);
    dvm_stream_pub_close(a);

    /* a socket file left by a dead agent is replaced */
    char stale[300];
    sock_path(stale, sizeof stale, "stale.sock");
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {0};
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, stale);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    close(fd);
    cr_assert_eq(dvm_stream_pub_open(&loop, stale, &b, err, sizeof err), 0, "%s", err);
    dvm_stream_pub_close(b);

    char file[300];
    sock_path(file, sizeof file, "regular");
    FILE *f = fopen(file, "w");
    fputs("keep me", f);
    fclose(f);
    cr_assert_eq(dvm_stream_pub_open(&loop, file, &b, err, sizeof err), -1);
    cr_assert(strstr(err, "not a socket"), "%s", err);
    struct stat st;
    cr_assert_eq(stat(file, &st), 0, "a foreign file is left alone");
    char longp[200];
    memset(longp, 'x', sizeof longp - 1);
    longp[sizeof longp - 1] = 0;
    cr_assert_eq(dvm_stream_pub_open(&loop, longp, &b, err, sizeof err), -1);
    drain_loop(&loop);
}

/* ---------------------------------------------------------------------- */
/* the real `dvm tail` process                                            */

struct tailproc {
    uv_process_t proc;
    uv_pipe_t out;
    char buf[1 << 16];
    size_t len;
    bool exited;
    int64_t status;
    int sig;
};
static void t_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    (void)sz;
    struct tailproc *t = h->data;
    b->base = t->buf + t->len;
    b->len = sizeof t->buf - t->len - 1;
}
static void t_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    struct tailproc *t = st->data;
    if (n > 0) {
        t->len += (size_t)n;
        t->buf[t->len] = 0;
    } else if (n < 0)
        uv_read_stop(st);
}
static void t_exit(uv_process_t *p, int64_t status, int sig)
{
    struct tailproc *t = p->data;
    t->exited = true;
    t->status = status;
    t->sig = sig;
    child_pid = 0;
}
static void spawn_tail(uv_loop_t *loop, struct tailproc *t, const char *path, bool text)
{
    const char *bin = getenv("DVM_BIN");
    cr_assert_not_null(bin, "DVM_BIN is set by ctest");
    char exe[512];
    snprintf(exe, sizeof exe, "%s/dvm", bin);
    char *args[6];
    int n = 0;
    args[n++] = exe;
    args[n++] = "tail";
    if (text)
        args[n++] = "--text";
    args[n++] = "--backoff-max-ms=200";
    args[n++] = (char *)path;
    args[n] = NULL;
    uv_pipe_init(loop, &t->out, 0);
    t->out.data = t;
    t->proc.data = t;
    uv_stdio_container_t io[3];
    io[0].flags = UV_IGNORE;
    io[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    io[1].data.stream = (uv_stream_t *)&t->out;
    io[2].flags = UV_INHERIT_FD;
    io[2].data.fd = 2;
    uv_process_options_t o = {0};
    o.file = exe;
    o.args = args;
    o.exit_cb = t_exit;
    o.stdio = io;
    o.stdio_count = 3;
    cr_assert_eq(uv_spawn(loop, &t->proc, &o), 0);
    child_pid = t->proc.pid;
    uv_read_start((uv_stream_t *)&t->out, t_alloc, t_read);
}
struct outwait {
    struct tailproc *t;
    const char *want;
};
static bool out_has(void *a)
{
    struct outwait *w = a;
    return strstr(w->t->buf, w->want) != NULL;
}
static bool exited(void *a) { return ((struct tailproc *)a)->exited; }

static void stop_tail(uv_loop_t *loop, struct tailproc *t)
{
    cr_assert_eq(uv_process_kill(&t->proc, SIGTERM), 0);
    cr_assert(wait_until(loop, exited, t, 5000), "tail exits on SIGTERM");
    cr_assert_eq(t->status, 0);
    cr_assert_eq(t->sig, 0);
    uv_close((uv_handle_t *)&t->proc, NULL);
    uv_close((uv_handle_t *)&t->out, NULL);
}

Test(stream, dvm_tail_prints_and_reconnects_after_agent_restart)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char path[300], err[256];
    sock_path(path, sizeof path, "agent.sock");
    struct tailproc *t = calloc(1, sizeof *t);
    spawn_tail(&loop, t, path, false); /* before the agent exists: it waits */

    dvm_stream_pub *s;
    cr_assert_eq(dvm_stream_pub_open(&loop, path, &s, err, sizeof err), 0, "%s", err);
    struct pubwait pw = {s, 1};
    cr_assert(wait_until(&loop, has_clients, &pw, 10000), "tail connects");
    dvm_stream_pub_publish(s, "beef", "job-a", "first run", 9);
    struct outwait ow = {t, "first run"};
    cr_assert(wait_until(&loop, out_has, &ow, 5000), "tail output: %s", t->buf);
    json_t *o = json_loads(t->buf, JSON_DISABLE_EOF_CHECK, NULL);
    cr_assert_not_null(o);
    cr_assert_str_eq(json_string_value(json_object_get(o, "conversation_id")), "job-a");
    cr_assert_str_eq(json_string_value(json_object_get(o, "agent_pubkey")), "beef");
    json_decref(o);

    /* the agent restarts: the socket disappears and comes back */
    dvm_stream_pub_close(s);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(dvm_stream_pub_open(&loop, path, &s, err, sizeof err), 0, "%s", err);
    pw.s = s;
    cr_assert(wait_until(&loop, has_clients, &pw, 10000), "tail reconnects");
    dvm_stream_pub_publish(s, "beef", "job-b", "second run", 10);
    ow.want = "second run";
    cr_assert(wait_until(&loop, out_has, &ow, 5000), "tail output: %s", t->buf);
    cr_assert_eq(count_lines(t->buf), 2);

    stop_tail(&loop, t);
    dvm_stream_pub_close(s);
    drain_loop(&loop);
    free(t);
}

Test(stream, dvm_tail_text_prints_only_the_text)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char path[300], err[256];
    sock_path(path, sizeof path, "text.sock");
    dvm_stream_pub *s;
    cr_assert_eq(dvm_stream_pub_open(&loop, path, &s, err, sizeof err), 0, "%s", err);
    struct tailproc *t = calloc(1, sizeof *t);
    spawn_tail(&loop, t, path, true);
    struct pubwait pw = {s, 1};
    cr_assert(wait_until(&loop, has_clients, &pw, 10000), "tail connects");
    const char *words[] = {"Streaming ", "is ", "fün", "\n", "done."};
    for (int i = 0; i < 5; i++)
        dvm_stream_pub_publish(s, "01", "j", words[i], strlen(words[i]));
    struct outwait ow = {t, "done."};
    cr_assert(wait_until(&loop, out_has, &ow, 5000), "tail output: %s", t->buf);
    cr_assert_str_eq(t->buf, "Streaming is fün\ndone.");
    stop_tail(&loop, t);
    dvm_stream_pub_close(s);
    drain_loop(&loop);
    free(t);
}

Test(stream, dvm_tail_usage_errors)
{
    const char *bin = getenv("DVM_BIN");
    cr_assert_not_null(bin);
    char dvm[600];
    snprintf(dvm, sizeof dvm, "%s/dvm", bin);
    char *none[] = {dvm, "tail", NULL};
    char *bad[] = {dvm, "tail", "--backoff-max-ms=5", "/tmp/x", NULL};
    char *help[] = {dvm, "tail", "--help", NULL};
    char *const *usage_errors[] = {none, bad};
    for (int i = 0; i < 2; i++) {
        spawn_result r = spawn_run(NULL, usage_errors[i]);
        cr_assert_eq(r.code, 2, "%s", r.err);
        const char *nl = strchr(r.err, '\n');
        cr_assert(nl && nl[1] == '\0', "one line: %s", r.err);
        spawn_result_free(&r);
    }
    spawn_result r = spawn_run(NULL, help);
    cr_assert_eq(r.code, 0);
    cr_assert(strstr(r.out, "dvm tail"), "%s", r.out);
    spawn_result_free(&r);
}
