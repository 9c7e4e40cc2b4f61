/* dvm-bench secretstream — Hyperswarm SecretStream (core/noise) throughput:
 * a connected initiator/responder pair in memory; each run seals N messages
 * of S bytes on one side (crypto_secretstream_xchacha20poly1305 + uint24
 * framing) and feeds the bytes to the other side in 64 KiB reads, which
 * reassembles, authenticates and decrypts them. Figures: messages/s and
 * plaintext MB/s through both halves, for S = 64, 1024 and 65536 bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "noise/secretstream.h"

#define READ_SIZE 65536

struct side {
    dvm_secretstream ss;
    dvm_buf out;
    uint64_t msgs, bytes;
    int ready;
};

static void on_handshake(void *ctx) { ((struct side *)ctx)->ready = 1; }
static void on_message(void *ctx, const uint8_t *msg, size_t len)
{
    struct side *s = ctx;
    (void)msg;
    s->msgs++;
    s->bytes += len;
}

static void fill_seq(void *ctx, uint8_t *buf, size_t len)
{
    uint64_t *x = ctx;
    for (size_t i = 0; i < len; i++) {
        *x = *x * 6364136223846793005ULL + 1442695040888963407ULL;
        buf[i] = (uint8_t)(*x >> 56);
    }
}

/* Move everything `from` has written into `to`, in READ_SIZE pieces. */
static int flow(struct side *from, struct side *to)
{
    for (size_t off = 0; off < from->out.len;) {
        size_t n = from->out.len - off < READ_SIZE ? from->out.len - off : READ_SIZE;
        if (dvm_secretstream_recv(&to->ss, from->out.data + off, n, &to->out) != DVM_OK)
            return -1;
        off += n;
    }
    dvm_buf_reset(&from->out);
    return 0;
}

static int connect_pair(struct side *a, struct side *b, uint64_t *rs)
{
    dvm_rng rng = {fill_seq, rs};
    dvm_noise_keypair ka, kb;
    dvm_secretstream_callbacks cb = {on_handshake, on_message};
    memset(a, 0, sizeof *a);
    memset(b, 0, sizeof *b);
    dvm_buf_init(&a->out, 0);
    dvm_buf_init(&b->out, 0);
    if (dvm_noise_keypair_generate(&ka, &rng) != DVM_OK || dvm_noise_keypair_generate(&kb, &rng) != DVM_OK ||
        dvm_secretstream_init(&a->ss, true, &ka, &rng, NULL, &cb, a) != DVM_OK ||
        dvm_secretstream_init(&b->ss, false, &kb, &rng, NULL, &cb, b) != DVM_OK ||
        dvm_secretstream_start(&a->ss, &a->out) != DVM_OK ||
        dvm_secretstream_start(&b->ss, &b->out) != DVM_OK)
        return -1;
    for (int i = 0; i < 8 && !(dvm_secretstream_state(&a->ss) == DVM_SS_OPEN &&
                               dvm_secretstream_state(&b->ss) == DVM_SS_OPEN); i++)
        if (flow(a, b) != 0 || flow(b, a) != 0)
            return -1;
    return dvm_secretstream_state(&a->ss) == DVM_SS_OPEN ? 0 : -1;
}

static double one_run(size_t size, uint64_t n, uint64_t seed)
{
    struct side a, b;
    double rate = -1;
    uint8_t *msg = malloc(size);
    if (!msg || connect_pair(&a, &b, &seed) != 0)
        goto out;
    memset(msg, 'm', size);
    /* Batch so the in-flight buffer stays around a few MiB. */
    uint64_t batch = (4u << 20) / (size + 20) + 1;
    double t0 = bench_now();
    for (uint64_t i = 0; i < n;) {
        for (uint64_t j = 0; j < batch && i < n; j++, i++)
            if (dvm_secretstream_send(&a.ss, msg, size, &a.out) != DVM_OK)
                goto out;
        if (flow(&a, &b) != 0)
            goto out;
    }
    double dt = bench_now() - t0;
    if (b.msgs == n && b.bytes == n * size)
        rate = (double)n / dt;
    else
        fprintf(stderr, "bench secretstream: %llu of %llu messages arrived\n",
                (unsigned long long)b.msgs, (unsigned long long)n);
out:
    free(msg);
    dvm_secretstream_free(&a.ss);
    dvm_secretstream_free(&b.ss);
    dvm_buf_free(&a.out);
    dvm_buf_free(&b.out);
    return rate;
}

int bench_secretstream(const bench_opts *o, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    static const size_t sizes[] = {64, 1024, 65536};
    for (size_t k = 0; k < 3; k++) {
        size_t s = sizes[k];
        uint64_t n = (uint64_t)((double)(256u << 20) / (double)(s + 64) * o->scale);
        if (n < 100)
            n = 100;
        if (n > 2000000)
            n = 2000000;
        double rates[BENCH_MAX_RUNS], tmp[BENCH_MAX_RUNS], med, mn, mx;
        for (int r = 0; r < o->runs; r++)
            if ((rates[r] = one_run(s, n, 1000 + (uint64_t)r)) < 0)
                return 1;
        memcpy(tmp, rates, sizeof(double) * (size_t)o->runs);
        bench_stats(tmp, o->runs, &med, &mn, &mx);
        char extra[96];
        snprintf(extra, sizeof extra, "\"impl\":\"c\",\"msg_bytes\":%zu,\"MBps\":%.1f", s,
                 med * (double)s / 1e6);
        bench_emit("secretstream", extra, "msgs_per_s", rates, o->runs);
    }
    return 0;
}
