/* dvmstream — the model-server processors over libcurl multi on libuv:
 *   ollama  POST {host}/api/generate {"model","prompt","stream":true};
 *           the response is NDJSON, each line's "response" a chunk, a line
 *           with "done":true ends the job, "error" fails it (Ollama API docs,
 *           "Generate a completion").
 *   http    POST URL/v1/chat/completions {"model","messages","stream":true};
 *           the response is server-sent events, each "data:" line a JSON
 *           chunk whose choices[0].delta.content is a chunk, "data: [DONE]"
 *           ends the job (OpenAI chat completions streaming).
 * Both: a server that sends nothing for the stall timeout (while the job
 * reads) fails the job (see dvm_proc_opts.stall_timeout_ms). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "live/proc_internal.h"

static const char *kind_name(const dvm_proc_job *j) { return j->p->kind == DVM_PROC_OLLAMA ? "ollama" : "http"; }

static void handle_ollama_line(dvm_proc_job *j, const char *line, size_t n)
{
    json_error_t e;
    json_t *o = json_loadb(line, n, 0, &e);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        proc_fail(j, "ollama: malformed stream line (%s)", o ? "not an object" : e.text);
        return;
    }
    json_t *err = json_object_get(o, "error");
    if (err) {
        proc_fail(j, "ollama: %s", json_is_string(err) ? json_string_value(err) : "error");
    } else {
        json_t *r = json_object_get(o, "response");
        if (r && !json_is_string(r))
            proc_fail(j, "ollama: malformed stream line (response is not a string)");
        else if (r)
            proc_emit(j, json_string_value(r), json_string_length(r));
        if (json_is_true(json_object_get(o, "done")))
            j->saw_done = true;
    }
    json_decref(o);
}

static void handle_sse_line(dvm_proc_job *j, const char *line, size_t n)
{
    if (n == 0 || line[0] == ':')
        return; /* event separator, comment */
    if (n < 5 || memcmp(line, "data:", 5) != 0)
        return; /* event:, id:, retry: — not used by chat completions */
    line += 5;
    n -= 5;
    if (n && line[0] == ' ') {
        line++;
        n--;
    }
    if (n == 6 && memcmp(line, "[DONE]", 6) == 0) {
        j->saw_done = true;
        return;
    }
    json_error_t e;
    json_t *o = json_loadb(line, n, 0, &e);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        proc_fail(j, "http: malformed event (%s)", o ? "not an object" : e.text);
        return;
    }
    json_t *err = json_object_get(o, "error");
    if (err) {
        json_t *m = json_is_object(err) ? json_object_get(err, "message") : err;
        proc_fail(j, "http: %s", json_is_string(m) ? json_string_value(m) : "error");
        json_decref(o);
        return;
    }
    json_t *choices = json_object_get(o, "choices");
    json_t *c0 = json_is_array(choices) ? json_array_get(choices, 0) : NULL;
    if (c0) {
        json_t *delta = json_object_get(c0, "delta");
        json_t *content = json_is_object(delta) ? json_object_get(delta, "content") : NULL;
        if (json_is_string(content))
            proc_emit(j, json_string_value(content), json_string_length(content));
        json_t *fin = json_object_get(c0, "finish_reason");
        if (json_is_string(fin))
            j->saw_finish = true;
    } else if (choices && !json_is_array(choices)) {
        proc_fail(j, "http: malformed event (choices is not an array)");
    }
    json_decref(o);
}

/* Feed bytes of the response stream to the line framer (core/wire/frame.h:
 * bounded lines, '\r' stripped, empty lines dropped — SSE event separators
 * carry nothing chat completions need) and handle every complete line.
 * false when the job failed (or a line was over DVM_PROC_MAX_LINE). */
static bool feed_lines(dvm_proc_job *j, const char *data, size_t n)
{
    if (dvm_framer_push(&j->lines, data, n) != DVM_OK) {
        proc_fail(j, "%s: internal framing error", kind_name(j));
        return false;
    }
    for (;;) {
        const uint8_t *line;
        size_t len;
        dvm_err e = dvm_framer_next(&j->lines, &line, &len);
        if (e == DVM_ERR_AGAIN)
            return true;
        if (e != DVM_OK) {
            proc_fail(j, "%s: stream line over %u bytes", kind_name(j), DVM_PROC_MAX_LINE);
            return false;
        }
        if (j->p->kind == DVM_PROC_OLLAMA)
            handle_ollama_line(j, (const char *)line, len);
        else
            handle_sse_line(j, (const char *)line, len);
        if (j->error || j->saw_done)
            return !j->error; /* nothing after done is read (see http_write) */
    }
}

/* The stall timer: armed for stall_timeout_ms from the start, checked
 * against last_rx_ms (set by every response byte, so the hot path does no
 * timer work) and re-armed for what is left. While the transfer is paused
 * because the customer owes a payment (throttled) nothing is expected from
 * the server, so that time does not count. */
static void stall_check(uv_timer_t *t)
{
    dvm_proc_job *j = t->data;
    if (j->dead || j->error || !j->in_multi)
        return;
    uint64_t now = uv_now(j->p->loop), lim = j->p->stall_timeout_ms;
    if (j->throttled)
        j->last_rx_ms = now;
    uint64_t idle = now - j->last_rx_ms;
    if (idle < lim) {
        uv_timer_start(&j->stall, stall_check, lim - idle, 0);
        return;
    }
    dvm_uvcurl_remove(j->p->curl, j->easy);
    j->in_multi = false;
    proc_fail(j, "%s: no data from %s for %u ms (model server stalled)", kind_name(j), j->p->url,
              j->p->stall_timeout_ms);
}

static size_t http_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    dvm_proc_job *j = ud;
    size_t n = size * nmemb;
    if (j->dead || j->error)
        return 0; /* abort the transfer */
    j->last_rx_ms = uv_now(j->p->loop);
    if (!j->http_status)
        curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &j->http_status);
    if (j->http_status >= 300) { /* keep the tail of the error body */
        if (n > DVM_PROC_MAX_ERROR_BODY - j->errbody_total) {
            j->errbody_total = DVM_PROC_MAX_ERROR_BODY + 1; /* cut off: http_done reports the status */
            return 0;
        }
        j->errbody_total += n;
        for (size_t i = 0; i < n; i++) {
            char c = ptr[i];
            if (c == '\n' || c == '\r' || c == '\t')
                c = ' ';
            if ((unsigned char)c < 0x20)
                continue;
            if (j->errbody_len == sizeof j->errbody) {
                memmove(j->errbody, j->errbody + 1, sizeof j->errbody - 1);
                j->errbody_len--;
            }
            j->errbody[j->errbody_len++] = c;
        }
        return n;
    }
    if (j->throttled)
        return CURL_WRITEFUNC_PAUSE;
    if (!feed_lines(j, ptr, n))
        return 0;
    /* At done the job is complete: end the transfer now (curl reports a
     * write error, http_done finishes the job) instead of waiting for the
     * server to close; what follows done is not read. */
    return j->saw_done ? 0 : n;
}

static void http_done(void *ud, CURL *easy, CURLcode res)
{
    (void)easy;
    dvm_proc_job *j = ud;
    j->in_multi = false;
    if (j->stall_open)
        uv_timer_stop(&j->stall);
    if (j->dead || j->error)
        return;
    long status = 0;
    curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
    if (j->saw_done) { /* ended by http_write at done (see there) */
        proc_finish(j);
        return;
    }
    bool cut = j->errbody_total > DVM_PROC_MAX_ERROR_BODY;
    if (res != CURLE_OK && !cut) {
        proc_fail(j, "%s: %s (%s)", kind_name(j), curl_easy_strerror(res), j->p->url);
        return;
    }
    if (status >= 300 || status < 200) {
        proc_fail(j, "%s: HTTP %ld from %s%s%.*s%s", kind_name(j), status, j->p->url, j->errbody_len ? ": " : "",
                  (int)j->errbody_len, j->errbody, cut ? " (error body cut off after 64 KiB)" : "");
        return;
    }
    if (dvm_framer_pending(&j->lines)) /* last line without a newline */
        (void)feed_lines(j, "\n", 1);
    if (j->error)
        return;
    if (j->saw_done || (j->p->kind == DVM_PROC_HTTP && j->saw_finish))
        proc_finish(j);
    else
        proc_fail(j, "%s: stream ended before done", kind_name(j));
}

static void http_throttle(dvm_proc_job *j, bool on)
{
    if (!on && j->in_multi) {
        j->last_rx_ms = uv_now(j->p->loop); /* the stall clock restarts */
        curl_easy_pause(j->easy, CURLPAUSE_CONT);
    }
}

static void http_teardown(dvm_proc_job *j)
{
    if (j->in_multi) {
        dvm_uvcurl_remove(j->p->curl, j->easy);
        j->in_multi = false;
    }
    if (j->stall_open) {
        j->stall_open = false;
        uv_timer_stop(&j->stall);
        uv_close((uv_handle_t *)&j->stall, proc_handle_closed);
    }
}

static const proc_job_ops http_ops = {http_throttle, http_teardown};

int proc_http_start(dvm_proc_job *j, char *err, size_t errlen)
{
    dvm_proc *p = j->p;
    j->ops = &http_ops;
    json_t *req;
    if (p->kind == DVM_PROC_OLLAMA)
        req = json_pack("{s:s, s:s%, s:b}", "model", p->model, "prompt", j->input, j->input_len, "stream", 1);
    else
        req = json_pack("{s:s, s:[{s:s, s:s%}], s:b}", "model", p->model, "messages", "role", "user", "content",
                        j->input, j->input_len, "stream", 1);
    j->body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    j->easy = curl_easy_init();
    if (!j->body || !j->easy) {
        snprintf(err, errlen, "%s: cannot build the request (input not UTF-8?)", kind_name(j));
        proc_job_abort(j);
        return -1;
    }
    j->headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (p->kind == DVM_PROC_HTTP) {
        j->headers = curl_slist_append(j->headers, "Accept: text/event-stream");
        if (p->api_key) {
            char h[1024];
            snprintf(h, sizeof h, "Authorization: Bearer %s", p->api_key);
            j->headers = curl_slist_append(j->headers, h);
        }
    }
    CURL *e = j->easy;
    curl_easy_setopt(e, CURLOPT_URL, p->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->headers);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)p->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "dvmstream");
    if (dvm_uvcurl_add(p->curl, e, http_done, j) != 0) {
        snprintf(err, errlen, "%s: cannot start the transfer", kind_name(j));
        proc_job_abort(j);
        return -1;
    }
    j->in_multi = true;
    uv_timer_init(p->loop, &j->stall);
    j->stall.data = j;
    j->handles++;
    j->stall_open = true;
    j->last_rx_ms = uv_now(p->loop);
    uv_timer_start(&j->stall, stall_check, p->stall_timeout_ms, 0);
    return 0;
}
