/* Test helper: hold a 127.0.0.1 TCP port for a moment, the way another
 * process's outgoing connection holds the ephemeral port it was given (a
 * socket bound without SO_REUSEADDR, not listening), so that a server
 * restarted on that port meets EADDRINUSE until the hold ends. The hold
 * ends on its own after hold_ms (a thread closes the socket). */
#ifndef DVM_TESTS_PORT_HOLD_H
#define DVM_TESTS_PORT_HOLD_H

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct port_hold {
    int fd;
    int hold_ms;
    pthread_t th;
} port_hold;

static inline void *port_hold_main(void *arg)
{
    port_hold *h = arg;
    /* the holder's lifetime, not a wait for a result */
    struct timespec ts = {h->hold_ms / 1000, (long)(h->hold_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    close(h->fd);
    return NULL;
}

/* Bind `port` now and release it after hold_ms. Asserts that the hold is
 * real: a listener with SO_REUSEADDR (as dvm mint's) cannot bind it. */
static inline void port_hold_start(port_hold *h, int port, int hold_ms)
{
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    h->hold_ms = hold_ms;
    h->fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_eq(bind(h->fd, (struct sockaddr *)&sa, sizeof sa), 0, "port %d is free", port);
    int probe = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = bind(probe, (struct sockaddr *)&sa, sizeof sa);
    int err = errno;
    close(probe);
    cr_assert(rc == -1 && err == EADDRINUSE, "the hold on port %d is not effective", port);
    cr_assert_eq(pthread_create(&h->th, NULL, port_hold_main, h), 0);
}

/* Wait for the hold to end (at most hold_ms after the start). */
static inline void port_hold_join(port_hold *h) { pthread_join(h->th, NULL); }

#endif
