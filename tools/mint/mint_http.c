/* dvmstream — JSON-over-HTTP server on libmicrohttpd (see mint_http.h). */
#include "mint/mint_http.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

struct dvm_http_server {
    struct MHD_Daemon *daemon;
    const dvm_http_route *routes;
    size_t n_routes;
    void *app;
    size_t max_body;
    bool log;
    uint16_t port;
};

/* Per-request state, kept in *con_cls across the access-handler calls. */
struct req {
    uint64_t start_us;
    char *body;
    size_t len;
    size_t cap;
    bool too_large;
    int status;
    char method[8];
    char path[160];
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void dvm_http_reply_json(dvm_http_reply *out, int status, json_t *body)
{
    if (out->body)
        json_decref(out->body);
    out->status = status;
    out->body = body;
}

void dvm_http_reply_error(dvm_http_reply *out, int code, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    dvm_http_reply_json(out, 400, json_pack("{s:s, s:i}", "detail", detail, "code", code));
}

static enum MHD_Result send_reply(struct MHD_Connection *c, struct req *r, dvm_http_reply *rep)
{
    char *text = NULL;
    if (rep->body) {
        text = json_dumps(rep->body, JSON_COMPACT);
        json_decref(rep->body);
        rep->body = NULL;
    }
    if (!text && rep->status != 204) {
        /* json_dumps failed (NOMEM) or handler gave no body. */
        text = strdup("{\"detail\":\"internal error\",\"code\":0}");
        if (rep->status < 400)
            rep->status = 500;
    }
    size_t n = text ? strlen(text) : 0;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(n, text ? text : (void *)"", text ? MHD_RESPMEM_MUST_FREE
                                                                           : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
    r->status = rep->status;
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)rep->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void dispatch(struct dvm_http_server *s, const char *url, const char *method,
                     struct req *r, dvm_http_reply *rep)
{
    bool path_known = false;
    for (size_t i = 0; i < s->n_routes; i++) {
        const dvm_http_route *rt = &s->routes[i];
        const char *param = "";
        if (rt->has_param) {
            size_t pl = strlen(rt->path);
            if (strncmp(url, rt->path, pl) != 0)
                continue;
            param = url + pl;
            if (*param == '\0' || strchr(param, '/') || strlen(param) > DVM_HTTP_MAX_PARAM)
                continue;
        } else if (strcmp(url, rt->path) != 0) {
            continue;
        }
        path_known = true;
        if (strcmp(method, rt->method) != 0)
            continue;
        for (const char *c = param; *c; c++) {
            bool ok = (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') ||
                      (*c >= 'A' && *c <= 'Z') || *c == '-' || *c == '_';
            if (!ok) {
                dvm_http_reply_error(rep, 10000, "bad path parameter (expected [A-Za-z0-9_-])");
                return;
            }
        }
        rt->fn(s->app, param, r->len ? r->body : NULL, r->len, rep);
        return;
    }
    if (path_known) {
        dvm_http_reply_json(rep, 405, json_pack("{s:s, s:i}", "detail", "method not allowed",
                                                "code", 0));
        return;
    }
    dvm_http_reply_json(rep, 404, json_pack("{s:s, s:i}", "detail", "not found", "code", 0));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    struct dvm_http_server *s = cls;
    struct req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->start_us = now_us();
        snprintf(r->method, sizeof r->method, "%s", method);
        snprintf(r->path, sizeof r->path, "%s", url);
        for (char *c = r->path; *c; c++) /* printable log lines only */
            if ((unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e)
                *c = '?';
        for (char *c = r->method; *c; c++)
            if ((unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e)
                *c = '?';
        *con_cls = r;
        /* Refuse a declared oversize body before reading it. */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl) {
            char *end = NULL;
            unsigned long long v = strtoull(cl, &end, 10);
            if (end == cl || *end != '\0' || v > s->max_body)
                r->too_large = true;
        }
        if (r->too_large) {
            dvm_http_reply rep = {0};
            dvm_http_reply_error(&rep, 0, "request body too large (limit %zu bytes)", s->max_body);
            return send_reply(c, r, &rep);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->too_large || n > s->max_body - r->len) {
            r->too_large = true;
            return MHD_YES;
        }
        if (r->len + n + 1 > r->cap) {
            size_t cap = r->cap ? r->cap : 1024;
            while (cap < r->len + n + 1)
                cap *= 2;
            char *nb = realloc(r->body, cap);
            if (!nb)
                return MHD_NO;
            r->body = nb;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        r->body[r->len] = '\0';
        return MHD_YES;
    }
    dvm_http_reply rep = {0};
    if (r->too_large)
        dvm_http_reply_error(&rep, 0, "request body too large (limit %zu bytes)", s->max_body);
    else
        dispatch(s, url, method, r, &rep);
    return send_reply(c, r, &rep);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    struct dvm_http_server *s = cls;
    struct req *r = *con_cls;
    if (!r)
        return;
    if (s->log) {
        uint64_t us = now_us() - r->start_us;
        if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK || r->status)
            fprintf(stderr, "%s %s %d %.1fms\n", r->method, r->path, r->status, (double)us / 1000.0);
        else
            fprintf(stderr, "%s %s aborted %.1fms\n", r->method, r->path, (double)us / 1000.0);
    }
    free(r->body);
    free(r);
    *con_cls = NULL;
}

dvm_err dvm_http_parse_listen(const char *s, char *host, size_t hostlen, uint16_t *port)
{
    if (!s || !*s)
        return DVM_ERR_INVALID;
    const char *colon;
    const char *h = s;
    size_t hl;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return DVM_ERR_INVALID;
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return DVM_ERR_INVALID;
        hl = (size_t)(colon - s);
        if (memchr(s, ':', hl))
            return DVM_ERR_INVALID; /* bare IPv6 needs brackets */
    }
    if (hl == 0 || hl + 1 > hostlen)
        return DVM_ERR_INVALID;
    const char *p = colon + 1;
    if (*p == '\0' || strlen(p) > 5)
        return DVM_ERR_INVALID;
    unsigned long v = 0;
    for (const char *q = p; *q; q++) {
        if (*q < '0' || *q > '9')
            return DVM_ERR_INVALID;
        v = v * 10 + (unsigned long)(*q - '0');
    }
    if (v > 65535)
        return DVM_ERR_INVALID;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (uint16_t)v;
    return DVM_OK;
}

dvm_err dvm_http_server_start(const dvm_http_config *cfg, const dvm_http_route *routes,
                              size_t n, void *app, dvm_http_server **out, char *err,
                              size_t errlen)
{
    *out = NULL;
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%u", cfg->port);
    if (!cfg->host || !*cfg->host) {
        snprintf(err, errlen, "an explicit listen host is required");
        return DVM_ERR_INVALID;
    }
    int gai = getaddrinfo(cfg->host, portstr, &hints, &ai);
    if (gai != 0 || !ai) {
        snprintf(err, errlen, "cannot resolve listen host '%s': %s", cfg->host, gai_strerror(gai));
        return DVM_ERR_INVALID;
    }
    struct dvm_http_server *s = calloc(1, sizeof *s);
    if (!s) {
        freeaddrinfo(ai);
        return DVM_ERR_NOMEM;
    }
    s->routes = routes;
    s->n_routes = n;
    s->app = app;
    s->max_body = cfg->max_body ? cfg->max_body : DVM_HTTP_DEFAULT_MAX_BODY;
    s->log = cfg->log;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
#if MHD_VERSION >= 0x00095400
    flags |= MHD_USE_POLL;
#endif
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    unsigned threads = cfg->threads ? cfg->threads : 4;
    s->daemon = MHD_start_daemon(flags, cfg->port, NULL, NULL, on_request, s,
                                 MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                                 MHD_OPTION_THREAD_POOL_SIZE, threads,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)256,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                 MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->daemon) {
        snprintf(err, errlen, "cannot listen on %s:%u (address in use or not local?)", cfg->host,
                 cfg->port);
        free(s);
        return DVM_ERR_STATE;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : cfg->port;
    *out = s;
    return DVM_OK;
}

uint16_t dvm_http_server_port(const dvm_http_server *s)
{
    return s->port;
}

void dvm_http_server_stop(dvm_http_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->daemon);
    free(s);
}
