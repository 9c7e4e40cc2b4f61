/* Test helper: a model server that stalls. Listens on 127.0.0.1 (port 0,
 * read back), and for each connection reads the request head, answers
 * "200 OK" with a chunked body holding `first` (one NDJSON line or SSE
 * event), then sends nothing more until the client hangs up or the server
 * is stopped. Runs on its own thread; every wait is bounded (a connection
 * is held at most STALL_SERVER_HOLD_MS, accept waits are polled against
 * the stop pipe). Used by the processor and end-to-end stall tests. */
#ifndef DVM_TESTS_STALL_SERVER_H
#define DVM_TESTS_STALL_SERVER_H

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define STALL_SERVER_HOLD_MS 30000

typedef struct stall_server {
    int lfd;
    int stop[2]; /* write a byte to stop */
    uint16_t port;
    pthread_t th;
    const char *content_type;
    const char *first;
    atomic_int requests; /* requests answered */
    atomic_int hangups;  /* connections the client closed while held */
} stall_server;

static inline uint64_t stall_server_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline bool stall_server_head_done(const char *b, size_t n)
{
    for (size_t i = 0; i + 4 <= n; i++)
        if (memcmp(b + i, "\r\n\r\n", 4) == 0)
            return true;
    return false;
}

static inline void stall_server_serve(stall_server *s, int c)
{
    /* the request head (the small JSON body may follow; it is not needed) */
    char req[8192];
    size_t n = 0;
    uint64_t end = stall_server_now_ms() + 5000;
    while (n < sizeof req - 1 && !stall_server_head_done(req, n)) {
        int left = (int)(end - stall_server_now_ms());
        struct pollfd p = {c, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return;
        ssize_t r = read(c, req + n, sizeof req - 1 - n);
        if (r <= 0)
            return;
        n += (size_t)r;
    }
    char head[512];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n%zx\r\n%s\r\n",
                      s->content_type, strlen(s->first), s->first);
    if (write(c, head, (size_t)hl) != hl)
        return;
    s->requests++;
    /* stall: nothing more, until the client hangs up or we are stopped */
    end = stall_server_now_ms() + STALL_SERVER_HOLD_MS;
    for (;;) {
        int left = (int)(end - stall_server_now_ms());
        struct pollfd p[2] = {{c, POLLIN, 0}, {s->stop[0], POLLIN, 0}};
        if (left <= 0 || poll(p, 2, left) <= 0 || p[1].revents)
            return;
        char b[4096];
        ssize_t r = read(c, b, sizeof b);
        if (r <= 0) {
            s->hangups++;
            return;
        }
    }
}

static inline void *stall_server_main(void *arg)
{
    stall_server *s = arg;
    for (;;) {
        struct pollfd p[2] = {{s->lfd, POLLIN, 0}, {s->stop[0], POLLIN, 0}};
        if (poll(p, 2, 1000) < 0 || p[1].revents)
            return NULL;
        if (!p[0].revents)
            continue;
        int c = accept(s->lfd, NULL, NULL);
        if (c < 0)
            continue;
        stall_server_serve(s, c);
        close(c);
    }
}

/* Start; `content_type` and `first` are borrowed for the server's life. */
static inline void stall_server_start(stall_server *s, const char *content_type, const char *first)
{
    memset(s, 0, sizeof *s);
    s->content_type = content_type;
    s->first = first;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(s->lfd, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(s->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(s->lfd, 8), 0);
    socklen_t l = sizeof sa;
    cr_assert_eq(getsockname(s->lfd, (struct sockaddr *)&sa, &l), 0);
    s->port = ntohs(sa.sin_port);
    cr_assert_eq(pipe(s->stop), 0);
    cr_assert_eq(pthread_create(&s->th, NULL, stall_server_main, s), 0);
}

/* Wait (at most timeout_ms) until `count` held connections were closed by
 * the client; true if they were. */
static inline bool stall_server_wait_hangups(stall_server *s, int count, uint64_t timeout_ms)
{
    uint64_t end = stall_server_now_ms() + timeout_ms;
    while (s->hangups < count && stall_server_now_ms() < end) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return s->hangups >= count;
}

static inline void stall_server_stop(stall_server *s)
{
    if (write(s->stop[1], "x", 1) != 1)
        cr_log_warn("stall_server: cannot signal stop");
    pthread_join(s->th, NULL);
    close(s->lfd);
    close(s->stop[0]);
    close(s->stop[1]);
}

#endif
