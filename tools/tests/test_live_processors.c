/* Processors (tools/live/processor.h): builtin, exec (real child processes),
 * ollama and http against a local libmicrohttpd server on 127.0.0.1 that
 * speaks Ollama's NDJSON and OpenAI's SSE, with the error cases. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "live/processor.h"
#include "stall_server.h"
#include "uv_wait.h"

/* ---------------------------------------------------------------------- */
/* a job runner with a bounded wait                                       */

struct run {
    uv_loop_t loop;
    dvm_proc *p;
    dvm_proc_job *job;
    char out[1 << 19];
    size_t out_len;
    int chunks;
    bool done, failed, timed_out, bad_utf8;
    char error[1024];
    int pause_at;   /* pause after this many chunks (0: never) */
    int resume_ms;  /* resume that many ms after the pause (0: 50) */
    uv_timer_t resume_timer;
    bool paused_seen_chunk;
    bool paused;
    int cancel_at;  /* cancel after this many chunks (0: never) */
};

static bool valid_utf8(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n); /* jansson validates UTF-8 */
    bool ok = j != NULL;
    json_decref(j);
    return ok;
}

static void on_resume(uv_timer_t *t)
{
    struct run *r = t->data;
    r->paused = false;
    dvm_proc_resume(r->job);
}

static void on_chunk(void *ud, const char *data, size_t len)
{
    struct run *r = ud;
    if (r->paused)
        r->paused_seen_chunk = true;
    cr_assert(len > 0 && len <= DVM_PROC_MAX_CHUNK);
    if (!valid_utf8(data, len))
        r->bad_utf8 = true;
    if (r->out_len + len < sizeof r->out) {
        memcpy(r->out + r->out_len, data, len);
        r->out_len += len;
        r->out[r->out_len] = 0;
    }
    r->chunks++;
    if (r->pause_at && r->chunks == r->pause_at) {
        dvm_proc_pause(r->job);
        r->paused = true;
        uv_timer_start(&r->resume_timer, on_resume, r->resume_ms ? (uint64_t)r->resume_ms : 50, 0);
    }
    if (r->cancel_at && r->chunks == r->cancel_at) {
        dvm_proc_cancel(r->job);
        r->job = NULL;
        uv_stop(&r->loop);
    }
}

static void on_done(void *ud)
{
    struct run *r = ud;
    r->done = true;
    uv_stop(&r->loop);
}

static void on_error(void *ud, const char *msg)
{
    struct run *r = ud;
    r->failed = true;
    snprintf(r->error, sizeof r->error, "%s", msg);
    uv_stop(&r->loop);
}

static void on_timeout(uv_timer_t *t)
{
    struct run *r = t->data;
    r->timed_out = true;
    uv_stop(&r->loop);
}

/* Run `input` through processor `spec`; waits at most 15 s. */
static void run_job(struct run *r, const char *spec, const dvm_proc_opts *o, const char *input)
{
    uv_loop_init(&r->loop);
    char err[256];
    int rc = dvm_proc_new(&r->loop, spec, o, &r->p, err, sizeof err);
    cr_assert_eq(rc, 0, "dvm_proc_new(%s): %s", spec, err);
    uv_timer_t to;
    uv_timer_init(&r->loop, &to);
    to.data = r;
    uv_timer_start(&to, on_timeout, 15000, 0);
    uv_timer_init(&r->loop, &r->resume_timer);
    r->resume_timer.data = r;
    dvm_proc_cbs cbs = {on_chunk, on_done, on_error, r};
    rc = dvm_proc_start(r->p, input, strlen(input), &cbs, &r->job, err, sizeof err);
    if (rc != 0) {
        r->failed = true;
        snprintf(r->error, sizeof r->error, "%s", err);
    } else
        uv_run(&r->loop, UV_RUN_DEFAULT);
    if (r->job && !r->done && !r->failed)
        dvm_proc_cancel(r->job);
    dvm_proc_free(r->p);
    /* let child processes be reaped and handles close (bounded) */
    uv_timer_stop(&to);
    uv_timer_stop(&r->resume_timer);
    uv_close((uv_handle_t *)&to, NULL);
    uv_close((uv_handle_t *)&r->resume_timer, NULL);
    for (int i = 0; i < 200 && uv_loop_alive(&r->loop); i++)
        uv_run(&r->loop, UV_RUN_ONCE);
    uv_walk(&r->loop, close_walk, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&r->loop), 0);
}

static struct run *new_run(void)
{
    struct run *r = calloc(1, sizeof *r);
    cr_assert_not_null(r);
    return r;
}

/* ---------------------------------------------------------------------- */
/* builtin                                                                */

Test(builtin, streams_exactly_n_deterministic_chunks)
{
    dvm_proc_opts o = {.chunks = 25};
    struct run *a = new_run(), *b = new_run(), *c = new_run();
    run_job(a, "builtin", &o, "Explain quantum computing");
    run_job(b, "builtin", &o, "Explain quantum computing");
    run_job(c, "builtin", &o, "Write a poem");
    cr_assert(a->done && !a->failed && !a->timed_out);
    cr_assert_eq(a->chunks, 25);
    cr_assert_str_eq(a->out, b->out, "same input, same output");
    cr_assert_str_neq(a->out, c->out, "different input, different output");
    char want[4096];
    size_t n = dvm_builtin_text("Explain quantum computing", 25, 25, want, sizeof want);
    cr_assert_eq(n, a->out_len);
    cr_assert_str_eq(a->out, want);
    cr_assert_eq(a->out[a->out_len - 1], '\n', "the text ends with a newline");
    /* every chunk is one word: 25 chunks, 25 words */
    int words = 0;
    for (size_t i = 0; i < a->out_len; i++)
        if (a->out[i] == ' ' || a->out[i] == '\n')
            words++;
    cr_assert_eq(words, 25);
    free(a);
    free(b);
    free(c);
}

Test(builtin, pause_holds_chunks_until_resume)
{
    dvm_proc_opts o = {.chunks = 30, .rate = 500};
    struct run *r = new_run();
    r->pause_at = 10;
    run_job(r, "builtin", &o, "pause me");
    cr_assert(r->done);
    cr_assert_eq(r->chunks, 30);
    cr_assert_not(r->paused_seen_chunk, "no chunk is delivered while paused");
    free(r);
}

Test(builtin, cancel_stops_callbacks)
{
    dvm_proc_opts o = {.chunks = 1000, .rate = 1000};
    struct run *r = new_run();
    r->cancel_at = 5;
    run_job(r, "builtin", &o, "cancel me");
    cr_assert_eq(r->chunks, 5);
    cr_assert_not(r->done);
    cr_assert_not(r->failed);
    free(r);
}

/* ---------------------------------------------------------------------- */
/* argv splitting and exec                                                */

Test(argv, splits_like_a_shell_without_one)
{
    int argc;
    char err[128];
    char **v = dvm_argv_split("  tr  'a b'  \"c \\\"d\\\" $x\" e\\ f  ", &argc, err, sizeof err);
    cr_assert_not_null(v, "%s", err);
    cr_assert_eq(argc, 4);
    cr_assert_str_eq(v[0], "tr");
    cr_assert_str_eq(v[1], "a b");
    cr_assert_str_eq(v[2], "c \"d\" $x");
    cr_assert_str_eq(v[3], "e f");
    cr_assert_null(v[4]);
    dvm_argv_free(v);
    v = dvm_argv_split("x''y \"\"", &argc, err, sizeof err);
    cr_assert_not_null(v);
    cr_assert_eq(argc, 2);
    cr_assert_str_eq(v[0], "xy");
    cr_assert_str_eq(v[1], "");
    dvm_argv_free(v);
    cr_assert_null(dvm_argv_split("echo 'open", &argc, err, sizeof err));
    cr_assert(strstr(err, "single quote"));
    cr_assert_null(dvm_argv_split("echo \"open", &argc, err, sizeof err));
    cr_assert(strstr(err, "double quote"));
    cr_assert_null(dvm_argv_split("echo \\", &argc, err, sizeof err));
    cr_assert(strstr(err, "backslash"));
    cr_assert_null(dvm_argv_split("   ", &argc, err, sizeof err));
    cr_assert(strstr(err, "empty"));
}

Test(exec, stdin_to_stdout_streams)
{
    struct run *r = new_run();
    run_job(r, "exec:/usr/bin/tr a-z A-Z", NULL, "hello streaming world");
    cr_assert(r->done, "error: %s", r->error);
    cr_assert_str_eq(r->out, "HELLO STREAMING WORLD");
    free(r);
}

Test(exec, arguments_are_not_shell_expanded)
{
    struct run *r = new_run();
    run_job(r, "exec:/bin/echo '$HOME *' \"a  b\"", NULL, "");
    cr_assert(r->done, "error: %s", r->error);
    cr_assert_str_eq(r->out, "$HOME * a  b\n");
    free(r);
}

Test(exec, output_arrives_in_chunks_before_exit)
{
    /* three writes 100 ms apart: each arrives as its own chunk(s) */
    struct run *r = new_run();
    run_job(r, "exec:/bin/sh -c 'printf one; sleep 0.1; printf two; sleep 0.1; printf three'", NULL, "");
    cr_assert(r->done, "error: %s", r->error);
    cr_assert_str_eq(r->out, "onetwothree");
    cr_assert_geq(r->chunks, 3);
    free(r);
}

Test(exec, large_output_is_chunked_and_utf8_safe)
{
    /* 20000 two-byte characters: chunks never split one */
    struct run *r = new_run();
    run_job(r, "exec:/bin/sh -c 'i=0; while [ $i -lt 2000 ]; do printf \"\\303\\251\\303\\251\\303\\251\\303\\251\\303\\251\\303\\251\\303\\251\\303\\251\\303\\251\\303\\251\"; i=$((i+1)); done'",
            NULL, "");
    cr_assert(r->done, "error: %s", r->error);
    cr_assert_eq(r->out_len, 40000);
    cr_assert_not(r->bad_utf8);
    free(r);
}

Test(exec, invalid_utf8_becomes_replacement_character)
{
    struct run *r = new_run();
    run_job(r, "exec:/usr/bin/printf 'a\\377b\\303'", NULL, "");
    cr_assert(r->done, "error: %s", r->error);
    cr_assert_str_eq(r->out, "a\xef\xbf\xbd" "b\xef\xbf\xbd");
    cr_assert_not(r->bad_utf8);
    free(r);
}

Test(exec, nonzero_exit_is_an_error_with_stderr)
{
    struct run *r = new_run();
    run_job(r, "exec:/bin/sh -c 'echo partial; echo boom happened >&2; exit 3'", NULL, "");
    cr_assert(r->failed);
    cr_assert(strstr(r->error, "status 3"), "%s", r->error);
    cr_assert(strstr(r->error, "boom happened"), "%s", r->error);
    cr_assert_null(strchr(r->error, '\n'));
    free(r);
}

Test(exec, missing_command_fails_to_start)
{
    struct run *r = new_run();
    run_job(r, "exec:/nonexistent/dvm-no-such-command", NULL, "x");
    cr_assert(r->failed);
    cr_assert(strstr(r->error, "cannot start"), "%s", r->error);
    free(r);
}

Test(exec, cancel_kills_the_child)
{
    struct run *r = new_run();
    r->cancel_at = 1;
    run_job(r, "exec:/bin/sh -c 'echo first; exec sleep 30'", NULL, "");
    cr_assert_eq(r->chunks, 1);
    /* run_job returned: the loop closed, so the child was reaped */
    free(r);
}

Test(exec, bad_specs_are_refused)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    dvm_proc *p;
    char err[256];
    cr_assert_eq(dvm_proc_new(&loop, "exec:", NULL, &p, err, sizeof err), -1);
    cr_assert_eq(dvm_proc_new(&loop, "exec:'x", NULL, &p, err, sizeof err), -1);
    cr_assert_eq(dvm_proc_new(&loop, "gpt", NULL, &p, err, sizeof err), -1);
    cr_assert(strstr(err, "unknown processor"));
    cr_assert_eq(dvm_proc_new(&loop, "http:ftp://x", NULL, &p, err, sizeof err), -1);
    uv_loop_close(&loop);
}

/* ---------------------------------------------------------------------- */
/* a model server: Ollama /api/generate and OpenAI /v1/chat/completions   */

enum mode { MODE_OK, MODE_500, MODE_MALFORMED, MODE_NO_DONE, MODE_ERROR_LINE, MODE_BIG, MODE_500_ENDLESS };

struct server {
    struct MHD_Daemon *d;
    uint16_t port;
    enum mode mode;
    char last_body[8192];
};

struct conn {
    char body[8192];
    size_t len;
};

/* Ollama and OpenAI replies for prompt P: the words of P, one per line. */
static char *reply_for(struct server *s, const char *path, const char *body, int *status)
{
    json_t *req = json_loads(body, 0, NULL);
    const char *prompt = "";
    bool ollama = strcmp(path, "/api/generate") == 0;
    if (req && ollama)
        prompt = json_string_value(json_object_get(req, "prompt"));
    else if (req) {
        json_t *m0 = json_array_get(json_object_get(req, "messages"), 0);
        prompt = json_string_value(json_object_get(m0, "content"));
    }
    if (!prompt)
        prompt = "";
    *status = 200;
    char *out = calloc(1, 1 << 20);
    size_t n = 0;
    if (s->mode == MODE_BIG) { /* 200 responses of 2000 bytes: "k:" + filler */
        for (int k = 0; k < 200; k++) {
            char word[2100];
            int w = snprintf(word, sizeof word, "%03d:", k);
            memset(word + w, 'a' + k % 26, (size_t)(2000 - w));
            word[2000] = 0;
            n += (size_t)sprintf(out + n, "{\"response\":\"%s\",\"done\":false}\n", word);
        }
        n += (size_t)sprintf(out + n, "{\"response\":\"\",\"done\":true}\n");
    } else if (s->mode == MODE_500) {
        *status = 500;
        n += (size_t)sprintf(out, "{\"error\":\"model exploded\"}");
    } else if (s->mode == MODE_MALFORMED) {
        n += (size_t)sprintf(out, ollama ? "{\"response\":\"ok\",\"done\":false}\n{not json\n"
                                         : "data: {\"choices\":[{\"delta\":{\"content\":\"ok\"}}]}\n\ndata: {nope\n\n");
    } else if (s->mode == MODE_ERROR_LINE) {
        n += (size_t)sprintf(out, ollama ? "{\"error\":\"model not found\"}\n"
                                         : "data: {\"error\":{\"message\":\"rate limited\"}}\n\n");
    } else {
        if (!ollama)
            n += (size_t)sprintf(out + n, ": keep-alive comment\n\n");
        char word[256];
        const char *p = prompt;
        while (*p) {
            size_t w = strcspn(p, " ");
            snprintf(word, sizeof word, "%.*s%s", (int)w, p, p[w] ? " " : "");
            json_t *js = json_string(word);
            char *enc = json_dumps(js, JSON_ENCODE_ANY);
            if (ollama)
                n += (size_t)sprintf(out + n, "{\"model\":\"m\",\"response\":%s,\"done\":false}\n", enc);
            else
                n += (size_t)sprintf(out + n, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":%s}}]}\r\n\r\n",
                                     enc);
            free(enc);
            json_decref(js);
            p += w;
            while (*p == ' ')
                p++;
        }
        if (s->mode == MODE_OK) {
            if (ollama)
                n += (size_t)sprintf(out + n, "{\"model\":\"m\",\"response\":\"\",\"done\":true}\n");
            else
                n += (size_t)sprintf(out + n,
                                     "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
                                     "data: [DONE]\n\n");
        }
    }
    (void)n;
    json_decref(req);
    return out;
}

static ssize_t endless(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    (void)pos;
    memset(buf, 'e', max);
    return (ssize_t)max;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **ptr)
{
    (void)version;
    struct server *s = cls;
    struct conn *st = *ptr;
    if (!st) {
        st = calloc(1, sizeof *st);
        *ptr = st;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t k = *upload_size;
        if (st->len + k < sizeof st->body) {
            memcpy(st->body + st->len, upload, k);
            st->len += k;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "POST") != 0)
        return MHD_NO;
    snprintf(s->last_body, sizeof s->last_body, "%s", st->body);
    if (s->mode == MODE_500_ENDLESS) { /* an error body that never ends */
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, endless, NULL, NULL);
        enum MHD_Result rc = MHD_queue_response(c, 500, resp);
        MHD_destroy_response(resp);
        return rc;
    }
    int status;
    char *body = reply_for(s, url, st->body, &status);
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static void completed(void *cls, struct MHD_Connection *c, void **ptr, enum MHD_RequestTerminationCode t)
{
    (void)cls;
    (void)c;
    (void)t;
    free(*ptr);
    *ptr = NULL;
}

static void server_start(struct server *s, enum mode mode)
{
    s->mode = mode;
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler, s, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
    cr_assert_not_null(s->d);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info->port;
    cr_assert(s->port != 0);
}

static char *spec_for(const char *kind, struct server *s)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "%s:http://127.0.0.1:%u", kind, s->port);
    return buf;
}

Test(ollama, streams_response_lines_until_done)
{
    struct server s = {0};
    server_start(&s, MODE_OK);
    char host[64];
    snprintf(host, sizeof host, "http://127.0.0.1:%u", s.port);
    dvm_proc_opts o = {.ollama_host = host};
    struct run *r = new_run();
    run_job(r, "ollama:tinyllama", &o, "why is the sky blue ✓");
    MHD_stop_daemon(s.d);
    cr_assert(r->done, "error: %s", r->error);
    cr_assert_str_eq(r->out, "why is the sky blue ✓");
    cr_assert_eq(r->chunks, 6);
    json_t *req = json_loads(s.last_body, 0, NULL);
    cr_assert_not_null(req, "request body: %s", s.last_body);
    cr_assert_str_eq(json_string_value(json_object_get(req, "model")), "tinyllama");
    cr_assert_str_eq(json_string_value(json_object_get(req, "prompt")), "why is the sky blue ✓");
    cr_assert(json_is_true(json_object_get(req, "stream")));
    json_decref(req);
    free(r);
}

Test(ollama, http_500_is_an_error)
{
    struct server s = {0};
    server_start(&s, MODE_500);
    char host[64];
    snprintf(host, sizeof host, "127.0.0.1:%u", s.port); /* no scheme, as OLLAMA_HOST allows */
    dvm_proc_opts o = {.ollama_host = host};
    struct run *r = new_run();
    run_job(r, "ollama", &o, "hi");
    MHD_stop_daemon(s.d);
    cr_assert(r->failed);
    cr_assert(strstr(r->error, "HTTP 500"), "%s", r->error);
    cr_assert(strstr(r->error, "model exploded"), "%s", r->error);
    free(r);
}

Test(ollama, malformed_line_and_error_line_and_missing_done)
{
    enum mode modes[3] = {MODE_MALFORMED, MODE_ERROR_LINE, MODE_NO_DONE};
    const char *want[3] = {"malformed", "model not found", "ended before done"};
    for (int i = 0; i < 3; i++) {
        struct server s = {0};
        server_start(&s, modes[i]);
        char host[64];
        snprintf(host, sizeof host, "http://127.0.0.1:%u", s.port);
        dvm_proc_opts o = {.ollama_host = host};
        struct run *r = new_run();
        run_job(r, "ollama", &o, "a b c");
        MHD_stop_daemon(s.d);
        cr_assert(r->failed, "mode %d", i);
        cr_assert(strstr(r->error, want[i]), "mode %d: %s", i, r->error);
        free(r);
    }
}

static uint16_t closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t l = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &l);
    close(fd); /* bound, never listened: connecting is refused */
    return ntohs(sa.sin_port);
}

Test(ollama, connection_refused_is_an_error)
{
    char host[64];
    snprintf(host, sizeof host, "http://127.0.0.1:%u", closed_port());
    dvm_proc_opts o = {.ollama_host = host};
    struct run *r = new_run();
    run_job(r, "ollama", &o, "hi");
    cr_assert(r->failed);
    cr_assert(strstr(r->error, "ollama:"), "%s", r->error);
    cr_assert_eq(r->chunks, 0);
    free(r);
}

Test(http, streams_sse_deltas_until_done)
{
    struct server s = {0};
    server_start(&s, MODE_OK);
    dvm_proc_opts o = {.model = "gpt-test", .api_key = "sk-test"};
    struct run *r = new_run();
    run_job(r, spec_for("http", &s), &o, "stream these five words");
    MHD_stop_daemon(s.d);
    cr_assert(r->done, "error: %s", r->error);
    cr_assert_str_eq(r->out, "stream these five words");
    cr_assert_eq(r->chunks, 4);
    json_t *req = json_loads(s.last_body, 0, NULL);
    cr_assert_not_null(req);
    cr_assert_str_eq(json_string_value(json_object_get(req, "model")), "gpt-test");
    json_t *m0 = json_array_get(json_object_get(req, "messages"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(m0, "role")), "user");
    cr_assert_str_eq(json_string_value(json_object_get(m0, "content")), "stream these five words");
    json_decref(req);
    free(r);
}

Test(http, errors)
{
    enum mode modes[4] = {MODE_500, MODE_MALFORMED, MODE_ERROR_LINE, MODE_NO_DONE};
    const char *want[4] = {"HTTP 500", "malformed", "rate limited", "ended before done"};
    for (int i = 0; i < 4; i++) {
        struct server s = {0};
        server_start(&s, modes[i]);
        struct run *r = new_run();
        run_job(r, spec_for("http", &s), NULL, "a b");
        MHD_stop_daemon(s.d);
        cr_assert(r->failed, "mode %d", i);
        cr_assert(strstr(r->error, want[i]), "mode %d: %s", i, r->error);
        free(r);
    }
    char spec[128];
    snprintf(spec, sizeof spec, "http:http://127.0.0.1:%u/", closed_port());
    struct run *r = new_run();
    run_job(r, spec, NULL, "hi");
    cr_assert(r->failed);
    cr_assert(strstr(r->error, "http:"), "%s", r->error);
    free(r);
}

Test(http, an_endless_error_body_is_cut_off)
{
    /* HTTP 500 whose body never ends: only DVM_PROC_MAX_ERROR_BODY bytes
     * are read, then the job fails with the status and the body's tail
     * (not "Failed writing received data") instead of reading forever. */
    struct server s = {0};
    server_start(&s, MODE_500_ENDLESS);
    struct run *r = new_run();
    run_job(r, spec_for("http", &s), NULL, "hi");
    MHD_stop_daemon(s.d);
    cr_assert_not(r->timed_out, "the job did not end within 15 s");
    cr_assert(r->failed);
    cr_assert(strstr(r->error, "HTTP 500"), "%s", r->error);
    cr_assert(strstr(r->error, "eeeeeeee"), "%s", r->error);
    cr_assert(strstr(r->error, "error body cut off"), "%s", r->error);
    free(r);
}

Test(ollama, pause_holds_a_large_stream_and_resume_completes_it)
{
    /* 400 KB of responses while the job is paused after its first chunk:
     * the queue passes its 64 KiB bound, the transfer is paused
     * (CURL_WRITEFUNC_PAUSE) and resumed; nothing is lost or reordered */
    struct server s = {0};
    server_start(&s, MODE_BIG);
    char host[64];
    snprintf(host, sizeof host, "http://127.0.0.1:%u", s.port);
    dvm_proc_opts o = {.ollama_host = host};
    struct run *r = new_run();
    r->pause_at = 1;
    run_job(r, "ollama", &o, "big");
    MHD_stop_daemon(s.d);
    cr_assert(r->done, "error: %s", r->error);
    cr_assert_not(r->paused_seen_chunk);
    cr_assert_eq(r->out_len, 200 * 2000);
    for (int k = 0; k < 200; k++) {
        char tag[8];
        snprintf(tag, sizeof tag, "%03d:", k);
        cr_assert_eq(memcmp(r->out + (size_t)k * 2000, tag, 4), 0, "response %d in place", k);
    }
    free(r);
}

/* ---------------------------------------------------------------------- */
/* a model server that accepts, answers, then stalls                      */

Test(stall, a_stalled_stream_fails_the_job_with_a_clear_error)
{
    /* Headers and a first line, then nothing: the job gets the first chunk
     * and then fails after the stall timeout (1 s here: long enough for the
     * first line to arrive on a loaded machine), instead of waiting
     * forever; the connection to the server is closed. Both kinds. */
    const char *kinds[2] = {"ollama", "http"};
    const char *types[2] = {"application/x-ndjson", "text/event-stream"};
    const char *firsts[2] = {"{\"model\":\"m\",\"response\":\"first \",\"done\":false}\n",
                             "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"first \"}}]}\n\n"};
    for (int i = 0; i < 2; i++) {
        stall_server s;
        stall_server_start(&s, types[i], firsts[i]);
        char host[64], spec[128];
        snprintf(host, sizeof host, "http://127.0.0.1:%u", s.port);
        snprintf(spec, sizeof spec, "http:%s", host);
        dvm_proc_opts o = {.ollama_host = host, .stall_timeout_ms = 1000};
        struct run *r = new_run();
        run_job(r, i == 0 ? "ollama" : spec, &o, "hi");
        cr_assert_not(r->timed_out, "%s: the job did not end within 15 s", kinds[i]);
        cr_assert(r->failed, "%s: the job must fail (done=%d)", kinds[i], r->done);
        cr_assert_str_eq(r->out, "first ", "%s: the chunk before the stall is delivered", kinds[i]);
        char want[256];
        snprintf(want, sizeof want, "%s: no data from %s", kinds[i], host);
        cr_assert(strstr(r->error, want), "%s", r->error);
        cr_assert(strstr(r->error, "for 1000 ms (model server stalled)"), "%s", r->error);
        cr_assert_eq(s.requests, 1);
        cr_assert(stall_server_wait_hangups(&s, 1, 5000), "%s: the stalled connection is closed", kinds[i]);
        stall_server_stop(&s);
        free(r);
    }
}

Test(stall, done_ends_the_job_even_if_the_server_keeps_the_stream_open)
{
    /* The last line (done / [DONE]) comes, then the server neither sends
     * nor closes: the job is complete at done and finishes at once, not
     * after the stall timeout (which would make it an error). */
    const char *types[2] = {"application/x-ndjson", "text/event-stream"};
    const char *firsts[2] = {"{\"response\":\"all \",\"done\":false}\n{\"response\":\"here\",\"done\":true}\n",
                             "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"all here\"}}]}\n\n"
                             "data: [DONE]\n\n"};
    for (int i = 0; i < 2; i++) {
        stall_server s;
        stall_server_start(&s, types[i], firsts[i]);
        char host[64], spec[128];
        snprintf(host, sizeof host, "http://127.0.0.1:%u", s.port);
        snprintf(spec, sizeof spec, "http:%s", host);
        dvm_proc_opts o = {.ollama_host = host, .stall_timeout_ms = 10000};
        struct run *r = new_run();
        run_job(r, i == 0 ? "ollama" : spec, &o, "hi");
        cr_assert(r->done, "kind %d: %s", i, r->failed ? r->error : "timed out");
        cr_assert_str_eq(r->out, "all here");
        cr_assert(stall_server_wait_hangups(&s, 1, 5000), "the connection is closed at done");
        stall_server_stop(&s);
        free(r);
    }
}

Test(stall, a_transfer_paused_for_payment_longer_than_the_timeout_is_not_a_stall)
{
    /* The customer pauses after the first chunk for 2.5 s while 400 KB
     * wait: the transfer is paused (queue full) and the server sends
     * nothing meanwhile, which must not count against a 1 s stall
     * timeout; after the resume the job completes. */
    struct server s = {0};
    server_start(&s, MODE_BIG);
    char host[64];
    snprintf(host, sizeof host, "http://127.0.0.1:%u", s.port);
    dvm_proc_opts o = {.ollama_host = host, .stall_timeout_ms = 1000};
    struct run *r = new_run();
    r->pause_at = 1;
    r->resume_ms = 2500;
    run_job(r, "ollama", &o, "big");
    MHD_stop_daemon(s.d);
    cr_assert(r->done, "error: %s", r->error);
    cr_assert_eq(r->out_len, 200 * 2000);
    free(r);
}

Test(stall, timeout_bounds_and_environment)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    dvm_proc *p = NULL;
    char err[256];
    dvm_proc_opts o = {.stall_timeout_ms = 99};
    cr_assert_eq(dvm_proc_new(&loop, "ollama", &o, &p, err, sizeof err), -1);
    cr_assert(strstr(err, "stall timeout 99 ms out of 100..3600000"), "%s", err);
    setenv("DVM_STALL_TIMEOUT", "soon", 1);
    cr_assert_eq(dvm_proc_new(&loop, "http:http://127.0.0.1:1", NULL, &p, err, sizeof err), -1);
    cr_assert(strstr(err, "DVM_STALL_TIMEOUT: expected ms in 100..3600000, got 'soon'"), "%s", err);
    /* the builtin and exec kinds have no model server: the variable is not read */
    cr_assert_eq(dvm_proc_new(&loop, "builtin", NULL, &p, err, sizeof err), 0, "%s", err);
    dvm_proc_free(p);
    unsetenv("DVM_STALL_TIMEOUT");
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0);
}
