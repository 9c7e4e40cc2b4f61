/* dvmstream — libcurl multi_socket driven by libuv (see uvcurl.h). */
#include "live/uvcurl.h"

#include <stdlib.h>

struct dvm_uvcurl {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
};

struct xfer {
    dvm_uvcurl_done_cb done;
    void *ud;
};

struct sockctx {
    uv_poll_t poll;
    curl_socket_t fd;
    dvm_uvcurl *m;
};

static void check_done(dvm_uvcurl *m)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode res = msg->data.result;
        struct xfer *x = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(m->multi, easy);
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        if (x) {
            dvm_uvcurl_done_cb done = x->done;
            void *ud = x->ud;
            free(x);
            done(ud, easy, res);
        }
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sockctx *s = h->data;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    dvm_uvcurl *m = s->m;
    curl_multi_socket_action(m->multi, s->fd, flags, &running);
    check_done(m);
}

static void on_timer(uv_timer_t *t)
{
    dvm_uvcurl *m = t->data;
    int running;
    curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(m);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    dvm_uvcurl *m = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&m->timer);
    else
        uv_timer_start(&m->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static void sock_closed(uv_handle_t *h) { free(h->data); }

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    dvm_uvcurl *m = userp;
    struct sockctx *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, sock_closed);
            curl_multi_assign(m->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return -1;
        s->fd = fd;
        s->m = m;
        if (uv_poll_init_socket(m->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        curl_multi_assign(m->multi, fd, s);
    }
    int ev = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        ev |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        ev |= UV_WRITABLE;
    uv_poll_start(&s->poll, ev, on_poll);
    return 0;
}

dvm_uvcurl *dvm_uvcurl_new(uv_loop_t *loop)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return NULL;
    dvm_uvcurl *m = calloc(1, sizeof *m);
    if (!m) {
        curl_global_cleanup();
        return NULL;
    }
    m->loop = loop;
    m->multi = curl_multi_init();
    if (!m->multi) {
        free(m);
        curl_global_cleanup();
        return NULL;
    }
    uv_timer_init(loop, &m->timer);
    m->timer.data = m;
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
    return m;
}

int dvm_uvcurl_add(dvm_uvcurl *m, CURL *easy, dvm_uvcurl_done_cb done, void *ud)
{
    struct xfer *x = malloc(sizeof *x);
    if (!x)
        return -1;
    x->done = done;
    x->ud = ud;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
    if (curl_multi_add_handle(m->multi, easy) != CURLM_OK) {
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        free(x);
        return -1;
    }
    return 0;
}

void dvm_uvcurl_remove(dvm_uvcurl *m, CURL *easy)
{
    struct xfer *x = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
    curl_multi_remove_handle(m->multi, easy);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
    free(x);
}

static void timer_closed(uv_handle_t *h)
{
    free(h->data);
    curl_global_cleanup();
}

void dvm_uvcurl_free(dvm_uvcurl *m)
{
    if (!m)
        return;
    curl_multi_cleanup(m->multi);
    m->multi = NULL;
    uv_close((uv_handle_t *)&m->timer, timer_closed);
}
