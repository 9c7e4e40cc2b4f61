/* dvmstream — the local stream socket: publisher and `dvm tail` client
 * (see stream_socket.h; seeds/local-unix-socket-streaming.md). */
#include "live/stream_socket.h"
#include "common/err.h"
#include "live/term.h"
#include "wire/frame.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* ---------------------------------------------------------------------- */
/* publisher                                                              */

struct client {
    uv_pipe_t pipe;
    dvm_stream_pub *s;
    struct client *next;
};

struct dvm_stream_pub {
    uv_loop_t *loop;
    uv_pipe_t server;
    char *path;
    struct client *clients;
    dvm_stream_stats st;
    int handles; /* open handles: server + clients */
    bool closing;
};

struct wreq {
    uv_write_t req;
    struct client *c;
    size_t len;
    char data[];
};

static void pub_maybe_free(dvm_stream_pub *s)
{
    if (s->closing && s->handles == 0) {
        free(s->path);
        free(s);
    }
}

static void client_closed(uv_handle_t *h)
{
    struct client *c = h->data;
    dvm_stream_pub *s = c->s;
    free(c);
    s->handles--;
    pub_maybe_free(s);
}

static void client_drop(struct client *c)
{
    dvm_stream_pub *s = c->s;
    for (struct client **pp = &s->clients; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            s->st.clients--;
            break;
        }
    if (!uv_is_closing((uv_handle_t *)&c->pipe))
        uv_close((uv_handle_t *)&c->pipe, client_closed);
}

static void client_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    (void)h;
    (void)sz;
    static char sink[256]; /* whatever a client sends is discarded */
    b->base = sink;
    b->len = sizeof sink;
}

static void client_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    if (n < 0)
        client_drop(st->data);
}

static void on_connection(uv_stream_t *server, int status)
{
    dvm_stream_pub *s = server->data;
    if (status < 0 || s->closing)
        return;
    struct client *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->s = s;
    uv_pipe_init(s->loop, &c->pipe, 0);
    c->pipe.data = c;
    s->handles++;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0 || s->st.clients >= DVM_STREAM_MAX_CLIENTS) {
        uv_close((uv_handle_t *)&c->pipe, client_closed);
        return;
    }
    c->next = s->clients;
    s->clients = c;
    s->st.clients++;
    uv_read_start((uv_stream_t *)&c->pipe, client_alloc, client_read);
}

static void server_closed(uv_handle_t *h)
{
    dvm_stream_pub *s = h->data;
    s->handles--;
    pub_maybe_free(s);
}

/* Is something listening on the Unix socket at path? */
static bool socket_alive(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path));
    bool alive = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return alive;
}

int dvm_stream_pub_open(uv_loop_t *loop, const char *path, dvm_stream_pub **out, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    if (!path || !*path || strlen(path) >= sizeof sa.sun_path) {
        dvm_reasonf(err, errlen, "stream socket path must be 1..%zu bytes", sizeof sa.sun_path - 1);
        return -1;
    }
    struct stat stt;
    if (lstat(path, &stt) == 0) {
        if (!S_ISSOCK(stt.st_mode)) {
            dvm_reasonf(err, errlen, "%s exists and is not a socket", path);
            return -1;
        }
        if (socket_alive(path)) {
            dvm_reasonf(err, errlen, "%s is in use by another process", path);
            return -1;
        }
        unlink(path); /* stale socket of an agent that died */
    }
    dvm_stream_pub *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        dvm_reasonf(err, errlen, "out of memory");
        return -1;
    }
    s->loop = loop;
    uv_pipe_init(loop, &s->server, 0);
    s->server.data = s;
    s->handles = 1;
    int rc = uv_pipe_bind(&s->server, path);
    if (rc == 0) {
        chmod(path, 0600);
        rc = uv_listen((uv_stream_t *)&s->server, 16, on_connection);
    }
    if (rc != 0) {
        dvm_reasonf(err, errlen, "cannot listen on %s: %s", path, uv_strerror(rc));
        s->closing = true; /* freed when the server handle has closed */
        uv_close((uv_handle_t *)&s->server, server_closed);
        return -1;
    }
    *out = s;
    return 0;
}

static void write_done(uv_write_t *r, int status)
{
    struct wreq *w = (struct wreq *)r;
    if (status < 0 && status != UV_ECANCELED)
        client_drop(w->c);
    free(w);
}

void dvm_stream_pub_publish(dvm_stream_pub *s, const char *agent_pubkey, const char *conversation_id, const char *data,
                            size_t len)
{
    if (!s || s->closing)
        return;
    s->st.published++;
    if (!s->clients)
        return;
    json_t *o = json_object();
    json_t *d = json_stringn(data, len);
    if (!o || !d) {
        json_decref(o);
        json_decref(d);
        return;
    }
    json_object_set_new(o, "agent_pubkey", json_string(agent_pubkey ? agent_pubkey : ""));
    json_object_set_new(o, "conversation_id", json_string(conversation_id ? conversation_id : ""));
    json_object_set_new(o, "data", d);
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!line)
        return;
    size_t n = strlen(line);
    for (struct client *c = s->clients, *next; c; c = next) {
        next = c->next;
        if (uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) + n + 1 > DVM_STREAM_CLIENT_QUEUE) {
            s->st.dropped++;
            continue;
        }
        struct wreq *w = malloc(sizeof *w + n + 1);
        if (!w) {
            s->st.dropped++;
            continue;
        }
        memcpy(w->data, line, n);
        w->data[n] = '\n';
        w->len = n + 1;
        w->c = c;
        uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
        if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, write_done) != 0) {
            free(w);
            s->st.dropped++;
            client_drop(c);
            continue;
        }
        s->st.sent++;
    }
    free(line);
}

dvm_stream_stats dvm_stream_pub_stats(const dvm_stream_pub *s) { return s->st; }

void dvm_stream_pub_close(dvm_stream_pub *s)
{
    if (!s || s->closing)
        return;
    s->closing = true;
    unlink(s->path);
    while (s->clients)
        client_drop(s->clients);
    uv_close((uv_handle_t *)&s->server, server_closed);
}

/* ---------------------------------------------------------------------- */
/* tail                                                                   */

struct tail {
    uv_loop_t loop;
    uv_pipe_t pipe;
    uv_connect_t creq;
    uv_timer_t retry;
    uv_signal_t sigint, sigterm;
    const char *path;
    dvm_tail_opts o;
    FILE *out, *log;
    bool tty; /* out is a terminal: control characters neutralised (term.h) */
    uint32_t delay;
    bool pipe_open, connected, stopping, said_waiting;
    dvm_framer lines; /* NDJSON lines, DVM_STREAM_MAX_LINE each */
};

static void tail_log(struct tail *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tail_log(struct tail *t, const char *fmt, ...)
{
    if (!t->log)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(t->log, "dvm tail: ");
    vfprintf(t->log, fmt, ap);
    fputc('\n', t->log);
    fflush(t->log);
    va_end(ap);
}

static void tail_connect(struct tail *t);

static void retry_cb(uv_timer_t *tm)
{
    struct tail *t = tm->data;
    if (!t->stopping)
        tail_connect(t);
}

static void pipe_closed(uv_handle_t *h)
{
    struct tail *t = h->data;
    t->pipe_open = false;
    if (t->stopping)
        return;
    uv_timer_start(&t->retry, retry_cb, t->delay, 0);
    t->delay = t->delay * 2 > t->o.backoff_max_ms ? t->o.backoff_max_ms : t->delay * 2;
}

static void tail_disconnect(struct tail *t)
{
    if (t->pipe_open && !uv_is_closing((uv_handle_t *)&t->pipe))
        uv_close((uv_handle_t *)&t->pipe, pipe_closed);
}

static void emit_line(struct tail *t, const char *s, size_t n)
{
    if (n && s[n - 1] == '\r')
        n--;
    if (n == 0)
        return;
    if (!t->o.text_only) {
        dvm_term_write(t->out, s, n, t->tty);
        fputc('\n', t->out);
        fflush(t->out);
        return;
    }
    json_t *o = json_loadb(s, n, 0, NULL);
    json_t *d = json_is_object(o) ? json_object_get(o, "data") : NULL;
    if (json_is_object(d)) { /* an AI SDK chunk: its text, if any */
        json_t *tx = json_object_get(d, "textDelta");
        if (!tx)
            tx = json_object_get(d, "text");
        d = tx;
    }
    if (json_is_string(d)) {
        dvm_term_write(t->out, json_string_value(d), json_string_length(d), t->tty);
        fflush(t->out);
    }
    json_decref(o);
}

static void tail_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    (void)h;
    (void)sz;
    static char buf[65536];
    b->base = buf;
    b->len = sizeof buf;
}

static void tail_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct tail *t = st->data;
    if (n < 0) {
        tail_log(t, "%s: agent went away; reconnecting", t->path);
        t->connected = false;
        /* a partial line from the old connection is dropped */
        dvm_framer_free(&t->lines);
        dvm_framer_init(&t->lines, DVM_STREAM_MAX_LINE);
        tail_disconnect(t);
        return;
    }
    if (dvm_framer_push(&t->lines, b->base, (size_t)n) != DVM_OK)
        return; /* cannot happen: every push is drained below */
    for (;;) {
        const uint8_t *line;
        size_t len;
        dvm_err e = dvm_framer_next(&t->lines, &line, &len);
        if (e == DVM_ERR_AGAIN)
            break;
        if (e == DVM_OK)
            emit_line(t, (const char *)line, len);
        else
            tail_log(t, "skipping a line over %u bytes", DVM_STREAM_MAX_LINE);
    }
}

static void on_connect(uv_connect_t *r, int status)
{
    struct tail *t = r->data;
    if (status < 0) {
        if (!t->said_waiting)
            tail_log(t, "waiting for %s (%s)", t->path, uv_strerror(status));
        t->said_waiting = true;
        tail_disconnect(t);
        return;
    }
    if (t->stopping)
        return;
    t->connected = true;
    t->said_waiting = false;
    t->delay = t->o.backoff_min_ms;
    tail_log(t, "connected to %s", t->path);
    uv_read_start((uv_stream_t *)&t->pipe, tail_alloc, tail_read);
}

static void tail_connect(struct tail *t)
{
    uv_pipe_init(&t->loop, &t->pipe, 0);
    t->pipe.data = t;
    t->pipe_open = true;
    t->creq.data = t;
    uv_pipe_connect(&t->creq, &t->pipe, t->path, on_connect);
}

static void on_signal(uv_signal_t *sg, int signum)
{
    (void)signum;
    struct tail *t = sg->data;
    t->stopping = true;
    uv_timer_stop(&t->retry);
    uv_close((uv_handle_t *)&t->retry, NULL);
    uv_close((uv_handle_t *)&t->sigint, NULL);
    uv_close((uv_handle_t *)&t->sigterm, NULL);
    tail_disconnect(t);
}

int dvm_stream_tail_run(const char *path, const dvm_tail_opts *opts, FILE *out, FILE *log)
{
    struct tail *t = calloc(1, sizeof *t);
    if (!t)
        return 1;
    dvm_framer_init(&t->lines, DVM_STREAM_MAX_LINE);
    if (opts)
        t->o = *opts;
    if (!t->o.backoff_min_ms)
        t->o.backoff_min_ms = 100;
    if (!t->o.backoff_max_ms)
        t->o.backoff_max_ms = 2000;
    if (t->o.backoff_max_ms < t->o.backoff_min_ms)
        t->o.backoff_max_ms = t->o.backoff_min_ms;
    t->delay = t->o.backoff_min_ms;
    t->path = path;
    t->out = out;
    t->tty = isatty(fileno(out));
    t->log = log;
    uv_loop_init(&t->loop);
    uv_timer_init(&t->loop, &t->retry);
    t->retry.data = t;
    uv_signal_init(&t->loop, &t->sigint);
    uv_signal_init(&t->loop, &t->sigterm);
    t->sigint.data = t->sigterm.data = t;
    uv_signal_start(&t->sigint, on_signal, SIGINT);
    uv_signal_start(&t->sigterm, on_signal, SIGTERM);
    tail_connect(t);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    uv_loop_close(&t->loop);
    dvm_framer_free(&t->lines);
    free(t);
    return 0;
}
