/* Test helper: an HTTP proxy in front of a mint that orders two wallet
 * swaps against each other with events, not sleeps. Once armed it holds
 * the first POST /v1/swap (`holding`) until the test releases it - or
 * until a POST /v1/checkstate has gone through while it is held: then the
 * held swap goes on, and the NEXT swap waits until the held one has been
 * answered. So "a checkstate about an operation in flight, then that
 * operation's swap, then the asker's own swap" happens in that order
 * every time. Counts requests per path. Listens on 127.0.0.1 (port 0,
 * read back); one thread per client connection; requests (Content-Length
 * bodies, as the mint sends and libcurl posts) are forwarded one at a
 * time, each on a fresh upstream connection. Every wait is bounded: a
 * held request goes on by itself after HOLD_PROXY_MAX_HOLD_MS, sockets
 * time out after 10 s. */
#ifndef DVM_TESTS_HOLD_PROXY_H
#define DVM_TESTS_HOLD_PROXY_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define HOLD_PROXY_MAX_HOLD_MS 8000
#define HOLD_PROXY_BUF (1 << 20)

typedef struct hold_proxy {
    int lfd;
    uint16_t port, up_port;
    pthread_t th;
    atomic_bool stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool armed, first_taken, holding, released, first_done, hold_second;
    int seen_checkstate, seen_swap; /* requests answered, per path */
} hold_proxy;

static inline uint64_t hp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Read one HTTP message (head + Content-Length body) into buf; its length,
 * or -1 on EOF/error/too large. */
static inline long hp_read_msg(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    char *end = NULL;
    while (!(end = n ? strstr(buf, "\r\n\r\n") : NULL)) {
        if (n + 1 >= cap)
            return -1;
        ssize_t k = recv(fd, buf + n, cap - 1 - n, 0);
        if (k <= 0)
            return -1;
        n += (size_t)k;
        buf[n] = 0;
    }
    size_t head = (size_t)(end - buf) + 4, body = 0;
    for (char *l = strstr(buf, "\r\n"); l && l < end; l = strstr(l + 2, "\r\n"))
        if (strncasecmp(l + 2, "Content-Length:", 15) == 0)
            body = strtoul(l + 17, NULL, 10);
    if (head + body >= cap)
        return -1;
    while (n < head + body) {
        ssize_t k = recv(fd, buf + n, head + body - n, 0);
        if (k <= 0)
            return -1;
        n += (size_t)k;
    }
    return (long)(head + body);
}

static inline bool hp_send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

static inline void hp_timeouts(int fd)
{
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

struct hp_conn {
    hold_proxy *p;
    int fd;
};

/* Wait on p->cv (p->mu held) until *flag or HOLD_PROXY_MAX_HOLD_MS. */
static inline void hp_wait(hold_proxy *p, const bool *flag)
{
    uint64_t end = hp_now_ms() + HOLD_PROXY_MAX_HOLD_MS;
    while (!*flag && !atomic_load(&p->stop) && hp_now_ms() < end) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    }
}

static inline void *hp_conn_main(void *arg)
{
    struct hp_conn *c = arg;
    hold_proxy *p = c->p;
    char *req = malloc(HOLD_PROXY_BUF), *resp = malloc(HOLD_PROXY_BUF);
    hp_timeouts(c->fd);
    long n;
    while (req && resp && !atomic_load(&p->stop) && (n = hp_read_msg(c->fd, req, HOLD_PROXY_BUF)) > 0) {
        char path[128] = "";
        sscanf(req, "%*s %127s", path);
        bool is_swap = strcmp(path, "/v1/swap") == 0, is_cs = strcmp(path, "/v1/checkstate") == 0;
        bool held_me = false;
        pthread_mutex_lock(&p->mu);
        if (is_swap && p->armed && !p->first_taken) {
            p->first_taken = p->holding = held_me = true;
            pthread_cond_broadcast(&p->cv);
            hp_wait(p, &p->released);
        } else if (is_swap && p->hold_second) {
            p->hold_second = false;
            hp_wait(p, &p->first_done);
        }
        pthread_mutex_unlock(&p->mu);
        int up = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(p->up_port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        long m = -1;
        if (up >= 0) {
            hp_timeouts(up);
            if (connect(up, (struct sockaddr *)&a, sizeof a) == 0 && hp_send_all(up, req, (size_t)n))
                m = hp_read_msg(up, resp, HOLD_PROXY_BUF);
            close(up);
        }
        bool sent = m > 0 && hp_send_all(c->fd, resp, (size_t)m);
        pthread_mutex_lock(&p->mu);
        if (held_me) {
            p->holding = false;
            p->first_done = true;
        }
        if (is_cs) {
            p->seen_checkstate++;
            if (p->holding) { /* the held swap next, then the asker's */
                p->released = true;
                p->hold_second = true;
            }
        }
        p->seen_swap += is_swap;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        if (!sent)
            break;
    }
    free(req);
    free(resp);
    close(c->fd);
    free(c);
    return NULL;
}

static inline void *hp_accept_main(void *arg)
{
    hold_proxy *p = arg;
    while (!atomic_load(&p->stop)) {
        struct pollfd pf = {p->lfd, POLLIN, 0};
        if (poll(&pf, 1, 50) <= 0)
            continue;
        int fd = accept(p->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        struct hp_conn *c = malloc(sizeof *c);
        pthread_t t;
        if (!c) {
            close(fd);
            continue;
        }
        c->p = p;
        c->fd = fd;
        if (pthread_create(&t, NULL, hp_conn_main, c) != 0) {
            close(fd);
            free(c);
            continue;
        }
        pthread_detach(t);
    }
    return NULL;
}

/* Start a proxy to 127.0.0.1:up_port; its URL into url. */
static inline bool hold_proxy_start(hold_proxy *p, uint16_t up_port, char *url, size_t cap)
{
    memset(p, 0, sizeof *p);
    p->up_port = up_port;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(p->lfd, 64) != 0 ||
        getsockname(p->lfd, (struct sockaddr *)&a, &al) != 0)
        return false;
    p->port = ntohs(a.sin_port);
    snprintf(url, cap, "http://127.0.0.1:%u", p->port);
    return pthread_create(&p->th, NULL, hp_accept_main, p) == 0;
}

/* Hold the next POST /v1/swap (see the top). */
static inline void hold_proxy_arm(hold_proxy *p)
{
    pthread_mutex_lock(&p->mu);
    p->armed = true;
    pthread_mutex_unlock(&p->mu);
}

/* A consistent reading of the proxy's state (for a test's bounded waits). */
static inline void hold_proxy_state(hold_proxy *p, bool *holding, int *seen_checkstate, int *seen_swap)
{
    pthread_mutex_lock(&p->mu);
    *holding = p->holding;
    *seen_checkstate = p->seen_checkstate;
    *seen_swap = p->seen_swap;
    pthread_mutex_unlock(&p->mu);
}

/* Let the held request (if any, or the next one) go on. */
static inline void hold_proxy_release(hold_proxy *p)
{
    pthread_mutex_lock(&p->mu);
    p->released = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Stop accepting (connection threads end on their own within their
 * bounded waits; the test process outlives them or exits). */
static inline void hold_proxy_stop(hold_proxy *p)
{
    hold_proxy_release(p);
    atomic_store(&p->stop, true);
    pthread_join(p->th, NULL);
    close(p->lfd);
}

#endif
