/* NDJSON framer (core/wire/frame.h): split-point independence, CRLF,
 * empty lines, oversize lines and recovery, zero-copy hot path.
 *
 * The expected events come from a separate, obvious implementation
 * (ref_frame: split the whole input on '\n' at once), and the framer must
 * produce exactly the same event sequence whatever the push boundaries. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire/frame.h"

/* An event log: "L<len>:<bytes>" for a line, "E" for an oversize error. */
typedef struct evlog {
    dvm_buf b;
    size_t lines, errors;
} evlog;

static void ev_line(evlog *l, const uint8_t *p, size_t n)
{
    char hdr[32];
    snprintf(hdr, sizeof hdr, "L%zu:", n);
    dvm_buf_append(&l->b, hdr, strlen(hdr));
    dvm_buf_append(&l->b, p, n);
    l->lines++;
}

static void ev_err(evlog *l)
{
    dvm_buf_append(&l->b, "E", 1);
    l->errors++;
}

/* Reference semantics, whole input at once. Returns the pending length. */
static size_t ref_frame(const uint8_t *s, size_t n, size_t max_line, evlog *out)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\n')
            continue;
        size_t len = i - start;
        if (len && s[start + len - 1] == '\r')
            len--;
        if (len > max_line)
            ev_err(out);
        else if (len)
            ev_line(out, s + start, len);
        start = i + 1;
    }
    size_t rest = n - start;
    if (rest > max_line + 1) { /* already known to be too long */
        ev_err(out);
        return 0;
    }
    return rest;
}

static void drain(dvm_framer *f, evlog *out)
{
    for (;;) {
        const uint8_t *line;
        size_t len;
        dvm_err e = dvm_framer_next(f, &line, &len);
        if (e == DVM_ERR_AGAIN)
            return;
        if (e == DVM_ERR_TOO_LARGE) {
            ev_err(out);
            continue;
        }
        cr_assert_eq(e, DVM_OK, "framer error %d", e);
        cr_assert(len > 0 && len <= f->max_line);
        ev_line(out, line, len);
    }
}

/* Feed s in pieces ending at cuts[0..ncuts) (increasing), then the rest. */
static size_t feed(const uint8_t *s, size_t n, size_t max_line, const size_t *cuts,
                   size_t ncuts, evlog *out)
{
    dvm_framer f;
    dvm_framer_init(&f, max_line);
    size_t at = 0;
    for (size_t k = 0; k <= ncuts; k++) {
        size_t to = k < ncuts ? cuts[k] : n;
        /* exact-size heap copy so ASan catches reads past the piece */
        uint8_t *piece = malloc(to - at ? to - at : 1);
        memcpy(piece, s + at, to - at);
        cr_assert_eq(dvm_framer_push(&f, piece, to - at), DVM_OK);
        drain(&f, out);
        free(piece);
        at = to;
    }
    size_t pending = dvm_framer_pending(&f);
    cr_assert(f.carry.len <= max_line + 1, "carry bounded");
    dvm_framer_free(&f);
    return pending;
}

static void expect_same(const evlog *want, const evlog *got, const char *what, size_t a,
                        size_t b)
{
    cr_assert(want->b.len == got->b.len && memcmp(want->b.data, got->b.data, want->b.len) == 0,
              "%s: events differ for cuts %zu,%zu (want %zu lines %zu errors, got %zu/%zu)",
              what, a, b, want->lines, want->errors, got->lines, got->errors);
}

/* Every 2-piece split, every 3-piece split for short inputs, byte by byte,
 * and seeded random chunkings. */
static void check_all_splits(const uint8_t *s, size_t n, size_t max_line, const char *what)
{
    evlog want = {0};
    size_t want_pending = ref_frame(s, n, max_line, &want);

    /* Two pieces: every cut for inputs up to 16 KiB; for larger ones (an
     * oversize-line transcript) the cuts around every '\n', both ends, and
     * a seeded sample, at most a few hundred. */
    uint64_t rs = 0x2545f4914f6cdd1dULL ^ n;
    for (size_t a = 0; a <= n; a++) {
        if (n > 16384) {
            bool near_nl = false;
            for (size_t k = a >= 2 ? a - 2 : 0; k <= a + 2 && k < n; k++)
                near_nl |= s[k] == '\n';
            rs ^= rs << 13;
            rs ^= rs >> 7;
            rs ^= rs << 17;
            bool keep = a < 64 || n - a < 64 || (near_nl && rs % 4 == 0) || rs % (n / 128) == 0;
            if (!keep)
                continue;
        }
        evlog got = {0};
        size_t pend = feed(s, n, max_line, &a, 1, &got);
        expect_same(&want, &got, what, a, a);
        cr_assert_eq(pend, want_pending, "%s: pending after cut %zu", what, a);
        dvm_buf_free(&got.b);
    }
    if (n <= 200) {
        for (size_t a = 0; a <= n; a++)
            for (size_t b = a; b <= n; b++) {
                size_t cuts[2] = {a, b};
                evlog got = {0};
                size_t pend = feed(s, n, max_line, cuts, 2, &got);
                expect_same(&want, &got, what, a, b);
                cr_assert_eq(pend, want_pending);
                dvm_buf_free(&got.b);
            }
    }
    /* byte by byte */
    size_t *cuts = malloc((n + 1) * sizeof *cuts);
    for (size_t i = 0; i < n; i++)
        cuts[i] = i + 1;
    evlog got = {0};
    size_t pend = feed(s, n, max_line, cuts, n, &got);
    expect_same(&want, &got, what, 1, 1);
    cr_assert_eq(pend, want_pending);
    dvm_buf_free(&got.b);
    /* random chunkings */
    uint64_t seed = 88172645463325252ULL + n;
    for (int r = 0; r < (n > 16384 ? 3 : 20); r++) {
        size_t nc = 0, at = 0;
        while (at < n) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            at += 1 + seed % 97;
            if (at > n)
                at = n;
            cuts[nc++] = at;
        }
        evlog g2 = {0};
        pend = feed(s, n, max_line, cuts, nc, &g2);
        expect_same(&want, &g2, what, (size_t)r, nc);
        cr_assert_eq(pend, want_pending);
        dvm_buf_free(&g2.b);
    }
    free(cuts);
    dvm_buf_free(&want.b);
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "open %s", path);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(sz > 0 ? (size_t)sz : 1);
    *n = fread(b, 1, (size_t)sz, f);
    fclose(f);
    return b;
}

/* Every *.ndjson under dir, at the default limit and at a small one (so
 * real transcripts also exercise oversize recovery). Returns files seen. */
static int check_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 7 || strcmp(e->d_name + l - 7, ".ndjson") != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t n;
        uint8_t *s = slurp(path, &n);
        cr_assert_leq(n, (size_t)8 << 20, "%s: fixture unexpectedly large", path);
        check_all_splits(s, n, DVM_FRAME_DEFAULT_MAX_LINE, path);
        check_all_splits(s, n, 40, path);
        cr_log_info("framed %s (%zu bytes) at many split points", path, n);
        free(s);
        count++;
    }
    closedir(d);
    return count;
}

Test(wire_frame, own_fixtures_at_every_split_point, .timeout = 120)
{
    cr_assert_geq(check_dir("fixtures/wire"), 3, "fixtures/wire/*.ndjson missing");
}

Test(wire_frame, transcripts_at_every_split_point, .timeout = 300)
{
    /* fixtures/transcripts/ is written by the session work; every file
     * that exists is checked. */
    check_dir("fixtures/transcripts");
}

Test(wire_frame, crlf_and_empty_lines)
{
    const char *s = "\n\r\n{\"a\":1}\r\n\n\n{\"b\":2}\nx\ry\r\r\n\r";
    dvm_framer f;
    dvm_framer_init(&f, 0);
    cr_assert_eq(dvm_framer_push(&f, s, strlen(s)), DVM_OK);
    const uint8_t *line;
    size_t len;
    cr_assert_eq(dvm_framer_next(&f, &line, &len), DVM_OK);
    cr_assert(len == 7 && memcmp(line, "{\"a\":1}", 7) == 0);
    cr_assert_eq(dvm_framer_next(&f, &line, &len), DVM_OK);
    cr_assert(len == 7 && memcmp(line, "{\"b\":2}", 7) == 0);
    /* only one trailing '\r' is stripped; an inner '\r' stays */
    cr_assert_eq(dvm_framer_next(&f, &line, &len), DVM_OK);
    cr_assert(len == 4 && memcmp(line, "x\ry\r", 4) == 0);
    cr_assert_eq(dvm_framer_next(&f, &line, &len), DVM_ERR_AGAIN);
    cr_assert_eq(dvm_framer_pending(&f), 1); /* the final "\r" waits */
    cr_assert_eq(f.lines, 3);
    dvm_framer_free(&f);
}

Test(wire_frame, zero_copy_when_line_inside_chunk)
{
    const char *s = "{\"type\":\"chunk\"}\n{\"type\":\"stop\"}\n{\"par";
    dvm_framer f;
    dvm_framer_init(&f, 0);
    dvm_framer_push(&f, s, strlen(s));
    const uint8_t *line;
    size_t len;
    cr_assert_eq(dvm_framer_next(&f, &line, &len), DVM_OK);
    cr_assert_eq((const char *)line, s);
    cr_assert_eq(dvm_framer_next(&f, &line, &len), DVM_OK);
    cr_assert_eq((const char *)line, s + 17);
    cr_assert_eq(dvm_framer_next(&f, &line, &len), DVM_ERR_AGAIN);
    cr_assert_eq(dvm_framer_pending(&f), 5);
    /* the partial line is completed from the carry */
    static const char rest[] = "t\":1}\n";
    dvm_framer_push(&f, rest, 6);
    cr_assert_eq(dvm_framer_next(&f, &line, &len), DVM_OK);
    cr_assert_eq(len, 10);
    cr_assert(memcmp(line, "{\"part\":1}", 10) == 0);
    cr_assert(line < (const uint8_t *)rest || line >= (const uint8_t *)rest + 6);
    cr_assert_eq(dvm_framer_next(&f, &line, &len), DVM_ERR_AGAIN);
    cr_assert_eq(dvm_framer_pending(&f), 0);
    dvm_framer_free(&f);
}

Test(wire_frame, push_before_drain_is_a_state_error)
{
    dvm_framer f;
    dvm_framer_init(&f, 0);
    dvm_framer_push(&f, "a\nb\n", 4);
    const uint8_t *line;
    size_t len;
    cr_assert_eq(dvm_framer_next(&f, &line, &len), DVM_OK);
    cr_assert_eq(dvm_framer_push(&f, "c\n", 2), DVM_ERR_STATE);
    cr_assert_eq(dvm_framer_next(&f, &line, &len), DVM_OK);
    cr_assert(len == 1 && line[0] == 'b');
    cr_assert_eq(dvm_framer_next(&f, &line, &len), DVM_ERR_AGAIN);
    cr_assert_eq(dvm_framer_push(&f, "c\n", 2), DVM_OK);
    dvm_framer_free(&f);
}

/* One oversize line between good ones, at the limit and one over, whole
 * and spread over many pushes: one error each, the next line survives. */
Test(wire_frame, oversize_line_reported_once_then_recovers)
{
    enum { LIM = 1000 };
    size_t n = 0;
    uint8_t *s = malloc(10 * LIM);
    memcpy(s + n, "ok1\n", 4), n += 4;
    memset(s + n, 'a', LIM), n += LIM; /* exactly the limit: accepted */
    s[n++] = '\n';
    memset(s + n, 'b', LIM), n += LIM; /* limit + '\r': accepted */
    s[n++] = '\r';
    s[n++] = '\n';
    memset(s + n, 'c', LIM + 1), n += LIM + 1; /* one over: rejected */
    s[n++] = '\n';
    memset(s + n, 'd', 5 * LIM), n += 5 * LIM; /* far over: rejected once */
    s[n++] = '\n';
    memcpy(s + n, "ok2\n", 4), n += 4;

    for (size_t piece = 1; piece <= 3 * LIM; piece = piece * 3 + 1) {
        dvm_framer f;
        dvm_framer_init(&f, LIM);
        evlog got = {0};
        for (size_t at = 0; at < n; at += piece) {
            size_t k = n - at < piece ? n - at : piece;
            dvm_framer_push(&f, s + at, k);
            drain(&f, &got);
        }
        cr_assert_eq(got.errors, 2, "piece %zu", piece);
        cr_assert_eq(got.lines, 4, "piece %zu", piece);
        cr_assert_eq(f.oversize, 2);
        cr_assert_leq(f.carry.cap, LIM + 1, "memory bounded by the limit");
        const char *tail = "L3:ok2";
        cr_assert(memcmp(got.b.data + got.b.len - 6, tail, 6) == 0);
        dvm_buf_free(&got.b);
        dvm_framer_free(&f);
    }
    check_all_splits(s, 2 * LIM + 20, LIM, "oversize prefix");
    free(s);
}

Test(wire_frame, default_limit_is_one_mib)
{
    dvm_framer f;
    dvm_framer_init(&f, 0);
    cr_assert_eq(f.max_line, (size_t)1 << 20);
    size_t n = ((size_t)1 << 20) + 2;
    uint8_t *s = malloc(n);
    memset(s, 'x', n);
    s[n - 1] = '\n'; /* 1 MiB + 1 byte line */
    dvm_framer_push(&f, s, n);
    const uint8_t *line;
    size_t len;
    cr_assert_eq(dvm_framer_next(&f, &line, &len), DVM_ERR_TOO_LARGE);
    cr_assert_eq(dvm_framer_next(&f, &line, &len), DVM_ERR_AGAIN);
    s[n - 2] = '\n'; /* exactly 1 MiB, then an empty line */
    dvm_framer_push(&f, s, n);
    cr_assert_eq(dvm_framer_next(&f, &line, &len), DVM_OK);
    cr_assert_eq(len, (size_t)1 << 20);
    cr_assert_eq(dvm_framer_next(&f, &line, &len), DVM_ERR_AGAIN);
    free(s);
    dvm_framer_free(&f);
}
