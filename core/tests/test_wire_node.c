/* Byte compatibility of our encoder with the reference implementation's
 * JSON.stringify (node), seeds/streaming-guide-p2p-cashu.md "Wire Protocol".
 *
 * One node process (ci/interop/stringify.js) per test: it reads NDJSON
 * messages on stdin and writes JSON.stringify({type, id, ...fields in the
 * seed order}) + "\n" for each. We compare its bytes with ours:
 *   1. fixtures/wire/stringify.json: hand-picked tricky messages;
 *   2. a few thousand messages with pseudo-random strings (control
 *      characters, quotes, backslashes, every UTF-8 length, U+2028...),
 *      for which node re-stringifies our own line (a fixed point check).
 * node is killed by pid on any failure; every wait is bounded. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wire/codec.h"

#define NODE_DEADLINE_MS 30000

static pid_t g_node = -1;

static void kill_node(void)
{
    if (g_node > 0) {
        kill(g_node, SIGKILL);
        waitpid(g_node, NULL, 0);
        g_node = -1;
    }
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Run node on `in`, collect its stdout into *out. Bounded by
 * NODE_DEADLINE_MS; node is reaped (or killed) before returning. */
static void run_node(const dvm_buf *in, dvm_buf *out)
{
    int pin[2], pout[2];
    cr_assert_eq(pipe(pin), 0);
    cr_assert_eq(pipe(pout), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork failed");
    if (pid == 0) {
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        close(pin[0]);
        close(pin[1]);
        close(pout[0]);
        close(pout[1]);
        execlp("node", "node", "ci/interop/stringify.js", (char *)NULL);
        _exit(127);
    }
    g_node = pid;
    atexit(kill_node);
    close(pin[0]);
    close(pout[1]);
    fcntl(pin[1], F_SETFL, O_NONBLOCK);
    signal(SIGPIPE, SIG_IGN);

    size_t sent = 0;
    int wfd = pin[1], rfd = pout[0];
    if (in->len == 0) {
        close(wfd);
        wfd = -1;
    }
    long long deadline = mono_ms() + NODE_DEADLINE_MS;
    while (rfd >= 0) {
        long long left = deadline - mono_ms();
        if (left <= 0) {
            kill_node();
            cr_assert_fail("node did not finish within %d ms", NODE_DEADLINE_MS);
        }
        struct pollfd p[2];
        int n = 0;
        p[n].fd = rfd;
        p[n].events = POLLIN;
        n++;
        if (wfd >= 0) {
            p[n].fd = wfd;
            p[n].events = POLLOUT;
            n++;
        }
        int r = poll(p, (nfds_t)n, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        cr_assert(r >= 0, "poll failed");
        if (wfd >= 0 && (p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = write(wfd, in->data + sent, in->len - sent);
            if (w > 0)
                sent += (size_t)w;
            if (w < 0 && errno != EAGAIN) {
                kill_node();
                cr_assert_fail("writing to node failed: %s", strerror(errno));
            }
            if (sent == in->len) {
                close(wfd);
                wfd = -1;
            }
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            uint8_t tmp[65536];
            ssize_t got = read(rfd, tmp, sizeof tmp);
            if (got > 0) {
                cr_assert_eq(dvm_buf_append(out, tmp, (size_t)got), DVM_OK);
            } else if (got == 0) {
                close(rfd);
                rfd = -1;
            } else if (errno != EINTR && errno != EAGAIN) {
                kill_node();
                cr_assert_fail("reading from node failed");
            }
        }
    }
    if (wfd >= 0)
        close(wfd);
    /* stdout closed: node is exiting; reap it, bounded. */
    int status = 0;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            g_node = -1;
            break;
        }
        if (mono_ms() > deadline) {
            kill_node();
            cr_assert_fail("node did not exit");
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL); /* polling a child that closed stdout */
    }
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "node failed (is node installed? run ci/setup), status %d", status);
}

/* Compare two NDJSON blobs line by line for a readable failure. */
static void compare_lines(const dvm_buf *ours, const dvm_buf *node)
{
    size_t a = 0, b = 0, line = 1;
    while (a < ours->len && b < node->len) {
        const uint8_t *ea = memchr(ours->data + a, '\n', ours->len - a);
        const uint8_t *eb = memchr(node->data + b, '\n', node->len - b);
        cr_assert(ea && eb, "unterminated line %zu", line);
        size_t la = (size_t)(ea - ours->data) - a, lb = (size_t)(eb - node->data) - b;
        cr_assert(la == lb && memcmp(ours->data + a, node->data + b, la) == 0,
                  "line %zu differs:\n ours: %.*s\n node: %.*s", line, (int)la,
                  (const char *)ours->data + a, (int)lb, (const char *)node->data + b);
        a += la + 1;
        b += lb + 1;
        line++;
    }
    cr_assert(a == ours->len && b == node->len, "line counts differ");
    cr_assert_eq(ours->len, node->len);
    cr_assert(memcmp(ours->data, node->data, ours->len) == 0);
}

Test(wire_node, fixtures_match_json_stringify, .timeout = 60)
{
    json_error_t jerr;
    json_t *arr = json_load_file("fixtures/wire/stringify.json", JSON_ALLOW_NUL, &jerr);
    cr_assert_not_null(arr, "fixtures/wire/stringify.json: %s", jerr.text);
    cr_assert(json_is_array(arr) && json_array_size(arr) >= 20);

    dvm_buf in, ours, node;
    dvm_buf_init(&in, 0);
    dvm_buf_init(&ours, 0);
    dvm_buf_init(&node, 0);
    dvm_msg_decoder dec;
    dvm_msg_decoder_init(&dec, 0);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        /* node gets the fixture as written (ASCII with \u escapes) ... */
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
        cr_assert_not_null(s);
        dvm_buf_append(&in, s, strlen(s));
        dvm_buf_putc(&in, '\n');
        /* ... we decode the same text and encode it ourselves. */
        dvm_msg m;
        char why[DVM_REASON_MAX];
        cr_assert_eq(dvm_msg_decode_json(&dec, s, strlen(s), &m, why, sizeof why), DVM_OK,
                     "fixture %zu: %s", i, why);
        cr_assert_eq(dvm_msg_encode(&m, &ours), DVM_OK, "fixture %zu", i);
        free(s);
    }
    json_decref(arr);
    run_node(&in, &node);
    compare_lines(&ours, &node);
    dvm_msg_decoder_free(&dec);
    dvm_buf_free(&in);
    dvm_buf_free(&ours);
    dvm_buf_free(&node);
}

/* xorshift64*: deterministic test data. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/* Append one random code point as UTF-8, biased toward the characters
 * JSON.stringify treats specially. */
static size_t put_cp(uint8_t *d, uint64_t *s)
{
    static const uint32_t special[] = {'"', '\\', '/', 0x7f, 0x2028, 0x2029, 0xfeff,
                                       0xfffd, 0xffff, 0x1f600, 0x10ffff, 0xd7ff, 0xe000,
                                       0x80, 0x7ff, 0x800, 0x10000, 0x85, 0xa0, '\''};
    uint32_t cp;
    switch (rnd(s) % 5) {
    case 0: cp = (uint32_t)(rnd(s) % 0x20); break;
    case 1: cp = special[rnd(s) % (sizeof special / sizeof special[0])]; break;
    case 2: cp = 0x20 + (uint32_t)(rnd(s) % 0x5f); break;
    case 3: cp = (uint32_t)(rnd(s) % 0x800); break;
    default:
        do
            cp = (uint32_t)(rnd(s) % 0x110000);
        while (cp >= 0xd800 && cp <= 0xdfff);
    }
    if (cp < 0x80) {
        d[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (uint8_t)(0xc0 | cp >> 6);
        d[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (uint8_t)(0xe0 | cp >> 12);
        d[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        d[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    d[0] = (uint8_t)(0xf0 | cp >> 18);
    d[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    d[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    d[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

Test(wire_node, random_strings_are_a_fixed_point_of_json_stringify, .timeout = 60)
{
    enum { N = 3000 };
    static uint8_t pool[N][2][64 * 4];
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    dvm_buf ours, node;
    dvm_buf_init(&ours, 0);
    dvm_buf_init(&node, 0);
    for (int i = 0; i < N; i++) {
        size_t len[2];
        for (int k = 0; k < 2; k++) {
            size_t n = rnd(&seed) % 40, o = 0;
            for (size_t j = 0; j < n; j++)
                o += put_cp(pool[i][k] + o, &seed);
            len[k] = o;
        }
        dvm_msg m;
        memset(&m, 0, sizeof m);
        m.type = (dvm_msg_type)(1 + i % 10);
        m.id = (dvm_str){(const char *)pool[i][0], len[0]};
        dvm_str s = {(const char *)pool[i][1], len[1]};
        uint64_t big = rnd(&seed) % (DVM_JSON_MAX_SAFE_INT + 1);
        m.kind = big;
        m.budget = i;
        m.sats_per_chunk = big;
        m.chunks_per_payment = 0;
        m.amount = big;
        m.earned = big;
        m.next = i;
        m.total_sats = big;
        m.input = m.token = m.data = m.output = m.message = s;
        m.has_seq = (i % 3) != 0;
        m.seq = 1 + big % DVM_JSON_MAX_SAFE_INT;
        if (m.type == DVM_MSG_CHUNK && i % 2)
            cr_assert_eq(dvm_msg_encode_chunk(&ours, m.id, m.data, m.has_seq, m.seq), DVM_OK);
        else
            cr_assert_eq(dvm_msg_encode(&m, &ours), DVM_OK, "message %d", i);
    }
    run_node(&ours, &node);
    compare_lines(&ours, &node);
    dvm_buf_free(&ours);
    dvm_buf_free(&node);
}
