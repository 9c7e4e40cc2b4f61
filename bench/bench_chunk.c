/* dvm-bench chunk — the chunk hot path through the real core:
 * provider session emits chunk messages -> codec encodes them (JSON.stringify
 * bytes) -> bytes handed over in 64 KiB reads -> NDJSON framer -> decoder
 * (fast path, jansson fallback) -> customer session accounts each chunk.
 * One long job per run with credit for every chunk (a single payment), so the
 * figure is the per-chunk cost; the node baseline ci/interop/bench_chunk.mjs
 * does the reference's equivalent (JSON.stringify, split, JSON.parse, credit).
 *
 * This measures the fastest correct path a driver can use: the provider's
 * fused dvm_provider_on_chunk_encode (equivalent to on_chunk + popping the
 * SEND action + dvm_msg_encode, same bytes; anything off the common case
 * still goes through the action queue, drained after every chunk), the
 * framer and the customer's fused dvm_customer_handle_line (equivalent to
 * dvm_msg_decode + dvm_customer_handle_msg: a line starting with the job's
 * own chunk head has its data, seq and brace decoded by the validating fast
 * path, then the sequence check and accounting run). Nothing is skipped:
 * every chunk is UTF-8-checked by the encoder and again by the decoder,
 * copied into the provider's `result` output, framed, decoded and
 * accounted.
 *
 * The process keeps freed memory (mallopt: no trimming, no mmap for big
 * blocks), as a long-running agent's warm heap does: the warm-up run faults
 * the pages in and the measured runs reuse them, so the figure is the
 * per-chunk work rather than first-touch page faults of the ~20 MB output
 * buffer each fresh job grows into (~15-20% of CPU at 64 B otherwise). */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "session/customer.h"
#include "session/provider.h"
#include "wire/codec.h"
#include "wire/frame.h"

#define READ_SIZE 65536

struct pair {
    dvm_provider *p;
    dvm_customer *c;
    dvm_buf to_c, to_p;       /* encoded bytes in flight */
    dvm_framer fc, fp;        /* framers on each side */
    dvm_msg_decoder dc, dp;   /* decoders on each side */
    uint64_t chunks, bytes;   /* counted by the customer's on_chunk */
    int failed;
};

static void on_chunk(void *ctx, const char *data, size_t len)
{
    struct pair *x = ctx;
    (void)data;
    x->chunks++;
    x->bytes += len;
}

static void deliver(struct pair *x, dvm_buf *b, dvm_framer *f, dvm_msg_decoder *d, int to_provider)
{
    size_t off = 0;
    while (off < b->len) {
        size_t n = b->len - off < READ_SIZE ? b->len - off : READ_SIZE;
        if (dvm_framer_push(f, b->data + off, n) != DVM_OK) {
            x->failed = 1;
            return;
        }
        off += n;
        const uint8_t *line;
        size_t len;
        dvm_err e;
        while ((e = dvm_framer_next(f, &line, &len)) == DVM_OK) {
            char reason[DVM_REASON_MAX];
            dvm_err de, he;
            if (to_provider) {
                dvm_msg m;
                de = dvm_msg_decode(d, line, len, &m, reason, sizeof reason);
                he = de ? de : dvm_provider_handle_msg(x->p, &m, 0);
            } else { /* decode + handle_msg, fused for this job's chunks */
                he = dvm_customer_handle_line(x->c, d, line, len, 0, reason, sizeof reason, &de);
            }
            if (de != DVM_OK) {
                fprintf(stderr, "bench chunk: decode failed: %s\n", reason);
                x->failed = 1;
                return;
            }
            if (he != DVM_OK) {
                x->failed = 1;
                return;
            }
        }
        if (e != DVM_ERR_AGAIN) {
            x->failed = 1;
            return;
        }
    }
    dvm_buf_reset(b);
}

/* Drain both sessions' actions, encoding messages into the in-flight
 * buffers; answers VERIFY_TOKEN with OK and NEED_TOKEN with a dummy token.
 * Returns when no action is pending. */
static void pump(struct pair *x, uint64_t pay_amount)
{
    for (int progress = 1; progress && !x->failed;) {
        progress = 0;
        dvm_provider_action pa;
        while (dvm_provider_next_action(x->p, &pa)) {
            progress = 1;
            if (pa.type == DVM_PACT_SEND) {
                if (dvm_msg_encode(&pa.msg, &x->to_c) != DVM_OK)
                    x->failed = 1;
            } else if (pa.type == DVM_PACT_VERIFY_TOKEN) {
                dvm_verify_result r = {DVM_VERIFY_OK, pay_amount, {NULL, 0}};
                dvm_provider_on_verify(x->p, pa.verify_id, &r, 0);
            }
        }
        if (x->to_c.len >= READ_SIZE || (x->to_c.len && !progress))
            deliver(x, &x->to_c, &x->fc, &x->dc, 0);
        dvm_customer_action ca;
        while (dvm_customer_next_action(x->c, &ca)) {
            progress = 1;
            if (ca.type == DVM_CACT_SEND) {
                if (dvm_msg_encode(&ca.msg, &x->to_p) != DVM_OK)
                    x->failed = 1;
            } else if (ca.type == DVM_CACT_NEED_TOKEN) {
                dvm_customer_on_token(x->c, ca.token_req, dvm_str_c("cashuBbench"), 0);
            }
        }
        if (x->to_p.len)
            deliver(x, &x->to_p, &x->fp, &x->dp, 1);
    }
}

/* One job of n chunks of chunk_bytes; returns chunks/s (wall time), or -1
 * on failure; *cpu_rate gets chunks per second of process CPU time. */
static double one_run(size_t chunk_bytes, uint64_t n, double *cpu_rate)
{
    struct pair x;
    memset(&x, 0, sizeof x);
    dvm_provider_config pc;
    dvm_provider_config_default(&pc);
    pc.sats_per_chunk = 1;
    pc.chunks_per_payment = n; /* one payment buys the whole job */
    pc.max_output_bytes = (size_t)(n * chunk_bytes) + 1;
    dvm_customer_config cc;
    dvm_customer_config_default(&cc);
    cc.max_result_bytes = pc.max_output_bytes;
    dvm_customer_callbacks cb = {.on_chunk = on_chunk, .ctx = &x};
    x.p = dvm_provider_new(&pc);
    x.c = dvm_customer_new(&cc, &cb);
    dvm_buf_init(&x.to_c, 0);
    dvm_buf_init(&x.to_p, 0);
    dvm_framer_init(&x.fc, 0);
    dvm_framer_init(&x.fp, 0);
    dvm_msg_decoder_init(&x.dc, 0);
    dvm_msg_decoder_init(&x.dp, 0);
    char *data = malloc(chunk_bytes);
    memset(data, 'x', chunk_bytes);
    double rate = -1;
    if (!x.p || !x.c || !data)
        goto out;
    dvm_customer_start(x.c, dvm_str_c("job-0123456789abcdef"), 5100, dvm_str_c("bench"), n, 0);
    pump(&x, n);
    double t0 = bench_now(), c0 = bench_cpu_now();
    for (uint64_t i = 0; i < n && !x.failed; i++) {
        if (dvm_provider_on_chunk_encode(x.p, data, chunk_bytes, 0, &x.to_c) != DVM_OK) {
            x.failed = 1;
            break;
        }
        dvm_provider_action pa;
        while (dvm_provider_next_action(x.p, &pa))
            if (pa.type == DVM_PACT_SEND && dvm_msg_encode(&pa.msg, &x.to_c) != DVM_OK)
                x.failed = 1;
        if (x.to_c.len >= READ_SIZE)
            deliver(&x, &x.to_c, &x.fc, &x.dc, 0);
    }
    deliver(&x, &x.to_c, &x.fc, &x.dc, 0);
    double dt = bench_now() - t0, dc = bench_cpu_now() - c0;
    /* The chunk stream is what is measured: check every chunk arrived and was
     * accounted, then end the job without a (huge) result line. */
    if (!x.failed && x.chunks == n && x.bytes == n * chunk_bytes &&
        dvm_customer_status_of(x.c) == DVM_CUSTOMER_RUNNING) {
        rate = (double)n / dt;
        *cpu_rate = dc > 0 ? (double)n / dc : rate;
    } else {
        fprintf(stderr, "bench chunk: miscount: %llu/%llu chunks, status %s\n",
                (unsigned long long)x.chunks, (unsigned long long)n,
                dvm_customer_status_name(dvm_customer_status_of(x.c)));
    }
out:
    free(data);
    dvm_provider_free(x.p);
    dvm_customer_free(x.c);
    dvm_buf_free(&x.to_c);
    dvm_buf_free(&x.to_p);
    dvm_framer_free(&x.fc);
    dvm_framer_free(&x.fp);
    dvm_msg_decoder_free(&x.dc);
    dvm_msg_decoder_free(&x.dp);
    return rate;
}

/* dvm-bench chunk [BYTES...]: the chunk sizes to run (default 16 64 1024;
 * each 1..65536), e.g. `dvm-bench --runs 1 --scale 0.05 chunk 64` under
 * callgrind for the instruction count of one size. */
int bench_chunk(const bench_opts *o, int argc, char **argv)
{
    size_t sizes[16] = {16, 64, 1024}, nsizes = 3;
    mallopt(M_MMAP_MAX, 0); /* see the header comment */
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    if (argc > 1) {
        nsizes = 0;
        for (int i = 1; i < argc; i++) {
            char *end;
            unsigned long v = strtoul(argv[i], &end, 10);
            if (*end || v < 1 || v > 65536 || nsizes == sizeof sizes / sizeof sizes[0]) {
                fprintf(stderr, "dvm-bench chunk: bad chunk size '%s' (1..65536, at most 16)\n",
                        argv[i]);
                return 2;
            }
            sizes[nsizes++] = v;
        }
    }
    for (size_t k = 0; k < nsizes; k++) {
        size_t cb = sizes[k];
        uint64_t n = (uint64_t)((cb >= 1024 ? 100000 : 1000000) * o->scale);
        if (n < 1000)
            n = 1000;
        double rates[BENCH_MAX_RUNS], mb[BENCH_MAX_RUNS], cpu[BENCH_MAX_RUNS], cmed, cmn, cmx;
        if (one_run(cb, n / 10 + 1, &cpu[0]) < 0) /* warm-up */
            return 1;
        for (int r = 0; r < o->runs; r++) {
            rates[r] = one_run(cb, n, &cpu[r]);
            if (rates[r] < 0)
                return 1;
        }
        char extra[192];
        double med, mn, mx;
        memcpy(mb, rates, sizeof(double) * (size_t)o->runs);
        bench_stats(mb, o->runs, &med, &mn, &mx);
        bench_stats(cpu, o->runs, &cmed, &cmn, &cmx);
        snprintf(extra, sizeof extra,
                 "\"impl\":\"c\",\"chunk_bytes\":%zu,\"MBps\":%.1f,\"cpu_msgs_per_s\":%.0f", cb,
                 med * (double)cb / 1e6, cmed);
        bench_emit("chunk", extra, "msgs_per_s", rates, o->runs);
    }
    return 0;
}
