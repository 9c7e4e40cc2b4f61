/* dvmstream — job processors: the shared job machinery, builtin and exec
 * (see processor.h); the HTTP kinds are in processor_http.c. */
#include "live/proc_internal.h"
#include "common/err.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* small helpers                                                          */


/* ---------------------------------------------------------------------- */
/* argv splitting                                                         */

#define ARGV_MAX_WORDS 256
#define ARGV_MAX_BYTES (64u << 10)

void dvm_argv_free(char **argv)
{
    if (!argv)
        return;
    for (char **a = argv; *a; a++)
        free(*a);
    free(argv);
}

char **dvm_argv_split(const char *cmd, int *argc, char *err, size_t errlen)
{
    size_t n = strlen(cmd);
    if (n > ARGV_MAX_BYTES) {
        dvm_reasonf(err, errlen, "command longer than %u bytes", ARGV_MAX_BYTES);
        return NULL;
    }
    char **argv = calloc(ARGV_MAX_WORDS + 1, sizeof *argv);
    char *word = malloc(n + 1);
    if (!argv || !word) {
        free(argv);
        free(word);
        dvm_reasonf(err, errlen, "out of memory");
        return NULL;
    }
    int count = 0;
    size_t i = 0;
    const char *why = NULL;
    while (!why) {
        while (i < n && (cmd[i] == ' ' || cmd[i] == '\t' || cmd[i] == '\n' || cmd[i] == '\r'))
            i++;
        if (i >= n)
            break;
        size_t wl = 0;
        while (i < n && !why) {
            char c = cmd[i];
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
                break;
            if (c == '\'') {
                i++;
                while (i < n && cmd[i] != '\'')
                    word[wl++] = cmd[i++];
                if (i >= n)
                    why = "unterminated single quote";
                else
                    i++;
            } else if (c == '"') {
                i++;
                while (i < n && cmd[i] != '"') {
                    if (cmd[i] == '\\' && i + 1 < n &&
                        (cmd[i + 1] == '"' || cmd[i + 1] == '\\' || cmd[i + 1] == '$' || cmd[i + 1] == '`'))
                        i++;
                    word[wl++] = cmd[i++];
                }
                if (i >= n)
                    why = "unterminated double quote";
                else
                    i++;
            } else if (c == '\\') {
                if (i + 1 >= n)
                    why = "trailing backslash";
                else {
                    word[wl++] = cmd[i + 1];
                    i += 2;
                }
            } else {
                word[wl++] = c;
                i++;
            }
        }
        if (why)
            break;
        if (count >= ARGV_MAX_WORDS) {
            why = "more than 256 words";
            break;
        }
        word[wl] = 0;
        argv[count] = strdup(word);
        if (!argv[count]) {
            why = "out of memory";
            break;
        }
        count++;
    }
    free(word);
    if (!why && count == 0)
        why = "empty command";
    if (why) {
        dvm_reasonf(err, errlen, "%s", why);
        dvm_argv_free(argv);
        return NULL;
    }
    if (argc)
        *argc = count;
    return argv;
}

/* ---------------------------------------------------------------------- */
/* the builtin generator (pure)                                           */

static const char *const vocab[64] = {
    "stream", "chunk",   "peer",    "token",   "ecash",   "mint",    "swarm",   "topic",
    "river",  "signal",  "packet",  "ledger",  "proof",   "secret",  "budget",  "credit",
    "light",  "quiet",   "bright",  "small",   "steady",  "honest",  "simple",  "rapid",
    "flows",  "carries", "pays",    "answers", "waits",   "returns", "settles", "moves",
    "across", "between", "through", "beyond",  "within",  "toward",  "under",   "over",
    "the",    "a",       "each",    "every",   "one",     "some",    "many",    "no",
    "north",  "morning", "harbor",  "garden",  "engine",  "lantern", "bridge",  "window",
    "slowly", "gladly",  "again",   "always",  "softly",  "surely",  "early",   "late"};

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static bool ends_sentence(uint64_t seed, uint32_t k) { return splitmix64(seed ^ ((uint64_t)k << 1 | 1)) % 9 == 0; }

static size_t chunk_with_seed(uint64_t seed, uint32_t k, bool last, char *out, size_t outlen)
{
    const char *w = vocab[splitmix64(seed + k) % 64];
    bool cap = k == 0 || ends_sentence(seed, k - 1);
    bool end = last || ends_sentence(seed, k);
    char tmp[32];
    size_t n = strlen(w);
    memcpy(tmp, w, n);
    if (cap && tmp[0] >= 'a' && tmp[0] <= 'z')
        tmp[0] = (char)(tmp[0] - 'a' + 'A');
    if (end)
        tmp[n++] = '.';
    tmp[n++] = last ? '\n' : ' ';
    tmp[n] = 0;
    if (outlen) {
        size_t c = n < outlen - 1 ? n : outlen - 1;
        memcpy(out, tmp, c);
        out[c] = 0;
    }
    return n;
}

size_t dvm_builtin_chunk(const char *input, size_t input_len, uint32_t k, char *out, size_t outlen)
{
    /* Without knowing the job's chunk count, chunk k is rendered as not last. */
    return chunk_with_seed(fnv1a(input, input_len), k, false, out, outlen);
}

size_t dvm_builtin_text(const char *input, size_t input_len, uint32_t chunks, char *out, size_t outlen)
{
    uint64_t seed = fnv1a(input, input_len);
    size_t total = 0;
    if (outlen)
        out[0] = 0;
    for (uint32_t k = 0; k < chunks; k++) {
        char w[32];
        size_t n = chunk_with_seed(seed, k, k + 1 == chunks, w, sizeof w);
        if (outlen && total + n < outlen)
            memcpy(out + total, w, n + 1);
        else if (outlen && total < outlen) {
            memcpy(out + total, w, outlen - 1 - total);
            out[outlen - 1] = 0;
        }
        total += n;
    }
    return total;
}

/* ---------------------------------------------------------------------- */
/* the job machinery                                                      */

static void drain_cb(uv_timer_t *t);

static void free_queue(dvm_proc_job *j)
{
    struct proc_qitem *q = j->qhead;
    while (q) {
        struct proc_qitem *n = q->next;
        free(q);
        q = n;
    }
    j->qhead = j->qtail = NULL;
    j->qbytes = 0;
}

static void job_free(dvm_proc_job *j)
{
    free_queue(j);
    free(j->input);
    free(j->error);
    dvm_framer_free(&j->lines);
    free(j->body);
    free(j->wbuf.base);
    if (j->headers)
        curl_slist_free_all(j->headers);
    if (j->easy)
        curl_easy_cleanup(j->easy);
    free(j);
}

void proc_handle_closed(uv_handle_t *h)
{
    dvm_proc_job *j = h->data;
    if (--j->handles == 0)
        job_free(j);
}

dvm_proc_job *proc_job_alloc(dvm_proc *p, const proc_job_ops *ops, const char *input, size_t len,
                             const dvm_proc_cbs *cbs)
{
    dvm_proc_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    dvm_framer_init(&j->lines, DVM_PROC_MAX_LINE); /* allocates nothing yet */
    j->input = malloc(len + 1);
    if (!j->input) {
        free(j);
        return NULL;
    }
    memcpy(j->input, input, len);
    j->input[len] = 0;
    j->input_len = len;
    j->p = p;
    j->ops = ops;
    j->cbs = *cbs;
    uv_timer_init(p->loop, &j->drain);
    j->drain.data = j;
    j->handles = 1;
    return j;
}

void proc_job_abort(dvm_proc_job *j)
{
    j->dead = true;
    uv_close((uv_handle_t *)&j->drain, proc_handle_closed);
}

static void schedule_drain(dvm_proc_job *j)
{
    if (!j->dead)
        uv_timer_start(&j->drain, drain_cb, 0, 0);
}

/* Kill the job: the kind closes its handles, the base its drain timer. */
static void job_kill(dvm_proc_job *j)
{
    if (j->dead)
        return;
    j->dead = true;
    uv_timer_stop(&j->drain);
    j->ops->teardown(j);
    uv_close((uv_handle_t *)&j->drain, proc_handle_closed);
}

static void enqueue(dvm_proc_job *j, const char *data, size_t len)
{
    struct proc_qitem *q = malloc(sizeof *q + len);
    if (!q) {
        proc_fail(j, "out of memory");
        return;
    }
    q->next = NULL;
    q->len = len;
    memcpy(q->data, data, len);
    if (j->qtail)
        j->qtail->next = q;
    else
        j->qhead = q;
    j->qtail = q;
    j->qbytes += len;
}

/* Length of the UTF-8 sequence starting at s[0..n): >0 valid length, 0 when
 * incomplete (n too short but still possibly valid), -1 invalid. */
static int utf8_seq(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    if (c < 0x80)
        return 1;
    int len;
    uint32_t min;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        min = 0x10000;
    } else
        return -1;
    uint32_t cp = c & (0x7f >> len);
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n)
            return 0;
        if ((s[i] & 0xc0) != 0x80)
            return -1;
        cp = cp << 6 | (s[i] & 0x3f);
        /* reject overlongs and out-of-range early, as soon as decidable */
        if (i == 1 && len == 3 && c == 0xe0 && s[1] < 0xa0)
            return -1;
        if (i == 1 && len == 3 && c == 0xed && s[1] >= 0xa0)
            return -1;
        if (i == 1 && len == 4 && c == 0xf0 && s[1] < 0x90)
            return -1;
        if (i == 1 && len == 4 && c == 0xf4 && s[1] >= 0x90)
            return -1;
    }
    if (cp < min)
        return -1;
    return len;
}

/* Append bytes, sanitised to UTF-8, cut into chunks of at most
 * DVM_PROC_MAX_CHUNK at code point boundaries; an incomplete trailing
 * sequence is held for the next call (or replaced at the end). */
static void emit_bytes(dvm_proc_job *j, const uint8_t *s, size_t n, bool final)
{
    char chunk[DVM_PROC_MAX_CHUNK];
    size_t cl = 0;
    size_t i = 0;
    while (i < n) {
        int l = utf8_seq(s + i, n - i);
        const uint8_t *src = s + i;
        size_t take;
        if (l == 0) {
            if (!final) {
                memcpy(j->hold, s + i, n - i);
                j->hold_len = n - i;
                break;
            }
            l = -1;
        }
        static const uint8_t repl[3] = {0xef, 0xbf, 0xbd};
        if (l < 0) {
            src = repl;
            take = 3;
            i += 1;
        } else {
            take = (size_t)l;
            i += (size_t)l;
        }
        if (cl + take > sizeof chunk) {
            enqueue(j, chunk, cl);
            cl = 0;
        }
        memcpy(chunk + cl, src, take);
        cl += take;
    }
    if (cl)
        enqueue(j, chunk, cl);
}

void proc_emit(dvm_proc_job *j, const char *data, size_t len)
{
    if (j->dead || j->error || j->producer_done || len == 0)
        return;
    if (j->hold_len) {
        uint8_t *tmp = malloc(j->hold_len + len);
        if (!tmp) {
            proc_fail(j, "out of memory");
            return;
        }
        size_t h = j->hold_len;
        memcpy(tmp, j->hold, h);
        memcpy(tmp + h, data, len);
        j->hold_len = 0;
        emit_bytes(j, tmp, h + len, false);
        free(tmp);
    } else
        emit_bytes(j, (const uint8_t *)data, len, false);
    if (j->qbytes >= DVM_PROC_QUEUE_BYTES && !j->throttled) {
        j->throttled = true;
        j->ops->throttle(j, true);
    }
    schedule_drain(j);
}

void proc_finish(dvm_proc_job *j)
{
    if (j->dead || j->error || j->producer_done)
        return;
    if (j->hold_len) {
        uint8_t tmp[4];
        size_t h = j->hold_len;
        memcpy(tmp, j->hold, h);
        j->hold_len = 0;
        emit_bytes(j, tmp, h, true);
    }
    j->producer_done = true;
    schedule_drain(j);
}

void proc_fail(dvm_proc_job *j, const char *fmt, ...)
{
    if (j->dead || j->error)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *c = msg; *c; c++) /* one line */
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    j->error = strdup(msg);
    if (!j->error)
        j->error = strdup("error");
    schedule_drain(j);
}

static void drain_cb(uv_timer_t *t)
{
    dvm_proc_job *j = t->data;
    if (j->dead)
        return;
    if (j->error) {
        free_queue(j);
        job_kill(j);
        if (j->cbs.on_error)
            j->cbs.on_error(j->cbs.ud, j->error);
        return;
    }
    while (!j->paused && !j->dead && j->qhead) {
        struct proc_qitem *q = j->qhead;
        j->qhead = q->next;
        if (!j->qhead)
            j->qtail = NULL;
        j->qbytes -= q->len;
        if (j->cbs.on_chunk)
            j->cbs.on_chunk(j->cbs.ud, q->data, q->len);
        free(q);
        if (j->error && !j->dead) { /* failure reported meanwhile */
            schedule_drain(j);
            return;
        }
    }
    if (j->dead)
        return;
    if (j->throttled && j->qbytes < DVM_PROC_QUEUE_BYTES / 2) {
        j->throttled = false;
        j->ops->throttle(j, false);
    }
    if (j->producer_done && !j->qhead && !j->error) {
        job_kill(j);
        if (j->cbs.on_done)
            j->cbs.on_done(j->cbs.ud);
    }
}

void dvm_proc_pause(dvm_proc_job *j)
{
    if (j && !j->dead)
        j->paused = true;
}

void dvm_proc_resume(dvm_proc_job *j)
{
    if (!j || j->dead || !j->paused)
        return;
    j->paused = false;
    schedule_drain(j);
}

void dvm_proc_cancel(dvm_proc_job *j)
{
    if (!j || j->dead)
        return;
    j->cancelled = true;
    free_queue(j);
    job_kill(j);
}

/* ---------------------------------------------------------------------- */
/* builtin                                                                */

static void gen_tick(uv_timer_t *t)
{
    dvm_proc_job *j = t->data;
    dvm_proc *p = j->p;
    uint64_t seed = fnv1a(j->input, j->input_len);
    /* rate 0: bursts of 16 chunks per loop turn; otherwise one per tick. */
    int burst = p->rate > 0 ? 1 : 16;
    for (int b = 0; b < burst && j->produced < p->chunks && !j->throttled && !j->dead; b++) {
        char w[32];
        size_t n = chunk_with_seed(seed, j->produced, j->produced + 1 == p->chunks, w, sizeof w);
        j->produced++;
        proc_emit(j, w, n);
    }
    if (j->dead)
        return;
    if (j->produced >= p->chunks) {
        uv_timer_stop(&j->gen);
        proc_finish(j);
    } else if (p->rate <= 0 && !j->throttled)
        uv_timer_start(&j->gen, gen_tick, 0, 0);
}

static void gen_arm(dvm_proc_job *j)
{
    dvm_proc *p = j->p;
    if (p->rate > 0) {
        double ms = 1000.0 / p->rate;
        uint64_t iv = ms < 1 ? 1 : (uint64_t)(ms + 0.5);
        uv_timer_start(&j->gen, gen_tick, iv, iv);
    } else
        uv_timer_start(&j->gen, gen_tick, 0, 0);
}

static void builtin_throttle(dvm_proc_job *j, bool on)
{
    if (on)
        uv_timer_stop(&j->gen);
    else if (j->produced < j->p->chunks)
        gen_arm(j);
}

static void builtin_teardown(dvm_proc_job *j)
{
    uv_timer_stop(&j->gen);
    uv_close((uv_handle_t *)&j->gen, proc_handle_closed);
}

static const proc_job_ops builtin_ops = {builtin_throttle, builtin_teardown};

static int builtin_start(dvm_proc_job *j)
{
    uv_timer_init(j->p->loop, &j->gen);
    j->gen.data = j;
    j->handles++;
    gen_arm(j);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* exec                                                                   */

static void exec_maybe_end(dvm_proc_job *j)
{
    if (!j->exited || !j->out_eof || !j->err_eof || j->dead)
        return;
    if (j->term_signal) {
        proc_fail(j, "exec: %s killed by signal %d%s%.*s", j->p->argv[0], j->term_signal,
                  j->errtail_len ? ": " : "", (int)j->errtail_len, j->errtail);
    } else if (j->exit_status != 0) {
        proc_fail(j, "exec: %s exited with status %lld%s%.*s", j->p->argv[0], (long long)j->exit_status,
                  j->errtail_len ? ": " : "", (int)j->errtail_len, j->errtail);
    } else
        proc_finish(j);
}

static void exec_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    /* Every read is consumed (copied) inside its read callback before the
     * loop reads again, so one buffer serves every pipe of every job. */
    static char slab[16384];
    buf->base = slab;
    buf->len = sizeof slab;
}

static void exec_read_out(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    dvm_proc_job *j = s->data;
    if (n > 0) {
        proc_emit(j, buf->base, (size_t)n);
    } else if (n < 0) {
        uv_read_stop(s);
        j->out_eof = true;
        exec_maybe_end(j);
    }
}

static void exec_read_err(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    dvm_proc_job *j = s->data;
    if (n > 0) {
        /* keep the last DVM_PROC_STDERR_TAIL bytes, printable only */
        for (ssize_t i = 0; i < n; i++) {
            char c = buf->base[i];
            if (c == '\n' || c == '\r' || c == '\t')
                c = ' ';
            if ((unsigned char)c < 0x20 || c == 0x7f)
                continue;
            if (j->errtail_len == sizeof j->errtail) {
                memmove(j->errtail, j->errtail + 1, sizeof j->errtail - 1);
                j->errtail_len--;
            }
            j->errtail[j->errtail_len++] = c;
        }
    } else if (n < 0) {
        uv_read_stop(s);
        j->err_eof = true;
        exec_maybe_end(j);
    }
}

static void exec_exit(uv_process_t *pr, int64_t status, int sig)
{
    dvm_proc_job *j = pr->data;
    j->exited = true;
    j->exit_status = status;
    j->term_signal = sig;
    if (j->dead) { /* cancelled earlier: the process handle was kept until now */
        uv_timer_stop(&j->gen);
        uv_close((uv_handle_t *)&j->gen, proc_handle_closed);
        uv_close((uv_handle_t *)pr, proc_handle_closed);
        return;
    }
    exec_maybe_end(j);
}

static void exec_throttle(dvm_proc_job *j, bool on)
{
    if (j->out_eof)
        return;
    if (on)
        uv_read_stop((uv_stream_t *)&j->out);
    else
        uv_read_start((uv_stream_t *)&j->out, exec_alloc, exec_read_out);
}

static void close_if_open(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, proc_handle_closed);
}

static void exec_kill_timer(uv_timer_t *t)
{
    dvm_proc_job *j = t->data;
    if (!j->exited)
        uv_process_kill(&j->proc, SIGKILL);
}

static void exec_teardown(dvm_proc_job *j)
{
    close_if_open((uv_handle_t *)&j->in);
    close_if_open((uv_handle_t *)&j->out);
    close_if_open((uv_handle_t *)&j->errp);
    if (j->exited) {
        close_if_open((uv_handle_t *)&j->gen);
        close_if_open((uv_handle_t *)&j->proc);
    } else {
        /* SIGTERM now, SIGKILL after 2 s; the process handle (and the
         * timer) close in exec_exit so the child is always reaped. */
        uv_process_kill(&j->proc, SIGTERM);
        uv_timer_start(&j->gen, exec_kill_timer, 2000, 0);
    }
}

static const proc_job_ops exec_ops = {exec_throttle, exec_teardown};

static void exec_write_done(uv_write_t *w, int status)
{
    (void)status; /* EPIPE when the command does not read its stdin: fine */
    dvm_proc_job *j = w->data;
    if (!uv_is_closing((uv_handle_t *)&j->in))
        uv_close((uv_handle_t *)&j->in, proc_handle_closed);
}

static int exec_start(dvm_proc_job *j, char *err, size_t errlen)
{
    dvm_proc *p = j->p;
    uv_loop_t *loop = p->loop;
    uv_pipe_init(loop, &j->in, 0);
    uv_pipe_init(loop, &j->out, 0);
    uv_pipe_init(loop, &j->errp, 0);
    uv_timer_init(loop, &j->gen);
    j->in.data = j->out.data = j->errp.data = j->gen.data = j->proc.data = j;
    j->handles += 4;

    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    stdio[0].data.stream = (uv_stream_t *)&j->in;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&j->out;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&j->errp;
    uv_process_options_t o;
    memset(&o, 0, sizeof o);
    o.file = p->argv[0];
    o.args = p->argv;
    o.exit_cb = exec_exit;
    o.stdio_count = 3;
    o.stdio = stdio;
    int rc = uv_spawn(loop, &j->proc, &o);
    if (rc != 0) {
        dvm_reasonf(err, errlen, "exec: cannot start %s: %s", p->argv[0], uv_strerror(rc));
        /* uv_spawn failure leaves the process handle closable; close all. */
        j->exited = true;
        j->handles++;
        j->dead = true;
        uv_close((uv_handle_t *)&j->proc, proc_handle_closed);
        uv_close((uv_handle_t *)&j->in, proc_handle_closed);
        uv_close((uv_handle_t *)&j->out, proc_handle_closed);
        uv_close((uv_handle_t *)&j->errp, proc_handle_closed);
        uv_close((uv_handle_t *)&j->gen, proc_handle_closed);
        uv_close((uv_handle_t *)&j->drain, proc_handle_closed);
        return -1;
    }
    j->handles++; /* the process handle */
    uv_read_start((uv_stream_t *)&j->out, exec_alloc, exec_read_out);
    uv_read_start((uv_stream_t *)&j->errp, exec_alloc, exec_read_err);
    if (j->input_len) {
        j->wbuf = uv_buf_init(malloc(j->input_len), (unsigned)j->input_len);
        if (!j->wbuf.base) {
            uv_close((uv_handle_t *)&j->in, proc_handle_closed);
            proc_fail(j, "out of memory");
            return 0;
        }
        memcpy(j->wbuf.base, j->input, j->input_len);
        j->wreq.data = j;
        if (uv_write(&j->wreq, (uv_stream_t *)&j->in, &j->wbuf, 1, exec_write_done) != 0)
            uv_close((uv_handle_t *)&j->in, proc_handle_closed);
    } else
        uv_close((uv_handle_t *)&j->in, proc_handle_closed);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* the factory                                                            */

static bool is_http_url(const char *u)
{
    return (strncmp(u, "http://", 7) == 0 && u[7]) || (strncmp(u, "https://", 8) == 0 && u[8]);
}

int dvm_proc_new(uv_loop_t *loop, const char *spec, const dvm_proc_opts *opts, dvm_proc **out, char *err,
                 size_t errlen)
{
    static const dvm_proc_opts defaults;
    if (!opts)
        opts = &defaults;
    if (!spec || !*spec)
        spec = "builtin";
    dvm_proc *p = calloc(1, sizeof *p);
    if (!p) {
        dvm_reasonf(err, errlen, "out of memory");
        return -1;
    }
    p->loop = loop;
    p->chunks = opts->chunks ? opts->chunks : DVM_BUILTIN_DEFAULT_CHUNKS;
    p->rate = opts->rate > 0 ? opts->rate : 0;
    p->connect_timeout_ms = opts->connect_timeout_ms ? opts->connect_timeout_ms : 10000;
    p->stall_timeout_ms = opts->stall_timeout_ms;
    char name[512];
    if (strcmp(spec, "builtin") == 0) {
        p->kind = DVM_PROC_BUILTIN;
        snprintf(name, sizeof name, "builtin");
    } else if (strncmp(spec, "exec:", 5) == 0) {
        p->kind = DVM_PROC_EXEC;
        p->argv = dvm_argv_split(spec + 5, &p->argc, err, errlen);
        if (!p->argv)
            goto fail;
        snprintf(name, sizeof name, "exec:%s", p->argv[0]);
        signal(SIGPIPE, SIG_IGN); /* a child that closes its stdin early */
    } else if (strcmp(spec, "ollama") == 0 || strncmp(spec, "ollama:", 7) == 0) {
        p->kind = DVM_PROC_OLLAMA;
        const char *m = spec[6] == ':' && spec[7] ? spec + 7 : opts->model;
        if (!m)
            m = getenv("OLLAMA_MODEL");
        if (!m || !*m)
            m = "llama3.2";
        const char *host = opts->ollama_host ? opts->ollama_host : getenv("OLLAMA_HOST");
        if (!host || !*host)
            host = "http://127.0.0.1:11434";
        char url[2048];
        /* Ollama accepts OLLAMA_HOST without a scheme ("127.0.0.1:11434"). */
        snprintf(url, sizeof url, "%s%s", strstr(host, "://") ? "" : "http://", host);
        size_t ul = strlen(url);
        while (ul && url[ul - 1] == '/')
            url[--ul] = 0;
        if (!is_http_url(url)) {
            dvm_reasonf(err, errlen, "ollama: OLLAMA_HOST '%s' is not an http(s) URL", host);
            goto fail;
        }
        strncat(url, "/api/generate", sizeof url - strlen(url) - 1);
        p->url = strdup(url);
        p->model = strdup(m);
        snprintf(name, sizeof name, "ollama:%s", m);
    } else if (strncmp(spec, "http:", 5) == 0 && (strncmp(spec + 5, "http://", 7) == 0 || strncmp(spec + 5, "https://", 8) == 0)) {
        p->kind = DVM_PROC_HTTP;
        const char *base = spec + 5;
        if (!is_http_url(base)) {
            dvm_reasonf(err, errlen, "http: '%s' is not an http(s) URL", base);
            goto fail;
        }
        char url[2048];
        snprintf(url, sizeof url, "%s", base);
        size_t ul = strlen(url);
        while (ul && url[ul - 1] == '/')
            url[--ul] = 0;
        if (ul < 20 || strcmp(url + ul - 20, "/v1/chat/completions") != 0)
            strncat(url, "/v1/chat/completions", sizeof url - strlen(url) - 1);
        p->url = strdup(url);
        p->model = strdup(opts->model ? opts->model : "default");
        const char *key = opts->api_key ? opts->api_key : getenv("OPENAI_API_KEY");
        p->api_key = key && *key ? strdup(key) : NULL;
        snprintf(name, sizeof name, "http:%s", base);
    } else {
        dvm_reasonf(err, errlen, "unknown processor '%s' (builtin, exec:CMD, ollama[:MODEL], http:URL)", spec);
        goto fail;
    }
    if (p->kind == DVM_PROC_OLLAMA || p->kind == DVM_PROC_HTTP) {
        if (!p->stall_timeout_ms) {
            const char *v = getenv("DVM_STALL_TIMEOUT");
            if (v && *v) {
                char *end;
                errno = 0;
                unsigned long long x = strtoull(v, &end, 10);
                if (*v < '0' || *v > '9' || errno || *end || x < DVM_PROC_MIN_STALL_MS || x > DVM_PROC_MAX_STALL_MS) {
                    dvm_reasonf(err, errlen, "environment variable DVM_STALL_TIMEOUT: expected ms in %u..%u, got '%s'",
                           DVM_PROC_MIN_STALL_MS, DVM_PROC_MAX_STALL_MS, v);
                    goto fail;
                }
                p->stall_timeout_ms = (uint32_t)x;
            } else
                p->stall_timeout_ms = DVM_PROC_DEFAULT_STALL_MS;
        } else if (p->stall_timeout_ms < DVM_PROC_MIN_STALL_MS || p->stall_timeout_ms > DVM_PROC_MAX_STALL_MS) {
            dvm_reasonf(err, errlen, "stall timeout %u ms out of %u..%u", p->stall_timeout_ms, DVM_PROC_MIN_STALL_MS,
                   DVM_PROC_MAX_STALL_MS);
            goto fail;
        }
        if (!p->url || !p->model) {
            dvm_reasonf(err, errlen, "out of memory");
            goto fail;
        }
        p->curl = dvm_uvcurl_new(loop);
        if (!p->curl) {
            dvm_reasonf(err, errlen, "cannot initialise libcurl");
            goto fail;
        }
    }
    p->name = strdup(name);
    if (!p->name) {
        dvm_reasonf(err, errlen, "out of memory");
        goto fail;
    }
    *out = p;
    return 0;
fail:
    dvm_proc_free(p);
    return -1;
}

dvm_proc_kind dvm_proc_get_kind(const dvm_proc *p) { return p->kind; }
const char *dvm_proc_name(const dvm_proc *p) { return p->name; }

int dvm_proc_start(dvm_proc *p, const char *input, size_t input_len, const dvm_proc_cbs *cbs, dvm_proc_job **out,
                   char *err, size_t errlen)
{
    if (input_len > DVM_PROC_MAX_INPUT) {
        dvm_reasonf(err, errlen, "input of %zu bytes over the %u byte limit", input_len, DVM_PROC_MAX_INPUT);
        return -1;
    }
    static const proc_job_ops http_ops_placeholder = {NULL, NULL};
    const proc_job_ops *ops = p->kind == DVM_PROC_BUILTIN ? &builtin_ops
                              : p->kind == DVM_PROC_EXEC  ? &exec_ops
                                                          : &http_ops_placeholder;
    dvm_proc_job *j = proc_job_alloc(p, ops, input ? input : "", input ? input_len : 0, cbs);
    if (!j) {
        dvm_reasonf(err, errlen, "out of memory");
        return -1;
    }
    int rc;
    switch (p->kind) {
    case DVM_PROC_BUILTIN: rc = builtin_start(j); break;
    case DVM_PROC_EXEC: rc = exec_start(j, err, errlen); break;
    default: rc = proc_http_start(j, err, errlen); break;
    }
    if (rc != 0)
        return -1;
    *out = j;
    return 0;
}

void dvm_proc_free(dvm_proc *p)
{
    if (!p)
        return;
    dvm_argv_free(p->argv);
    free(p->name);
    free(p->url);
    free(p->model);
    free(p->api_key);
    dvm_uvcurl_free(p->curl);
    free(p);
}
