/* fuzz_secretstream: SecretStream handshake and frames from the remote side.
 *
 * Input: byte 0 = flags, byte 1 = split seed, then a program of ops:
 *   flags bit 0: our role (1 = initiator, 0 = responder)
 *   flags bit 1: 0 = "raw": every op's bytes go straight into our recv()
 *                    from the first byte (the handshake is fuzzed; the rng
 *                    and static keys are fixed, so a recorded transcript of
 *                    the honest peer is a valid seed to mutate);
 *                1 = "established": an honest C peer completes the handshake
 *                    first, then the ops run
 *   flags bit 2: filter empty messages
 *   flags bit 3: in-band IK instead of XX (the initiator knows the key)
 *   op = kind (1 byte), len (2 bytes LE), len bytes:
 *     0: raw bytes from the peer, fed at split points from the split seed
 *     1: the honest peer sends these bytes as one message (established)
 *     2: as 1, with the byte at position data[0] of the frame flipped
 *     3: we send these bytes (our send path)
 * Invariants checked (abort on violation): a stream that reported an error
 * stays failed and refuses data; every message we deliver while only honest
 * frames were fed equals what the honest peer sent, in order; a flipped
 * frame is never delivered. Deterministic: fixed keys, counter rng. */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "noise/secretstream.h"

typedef struct fz_rng {
    uint64_t ctr;
} fz_rng;

static void fz_fill(void *ctx, uint8_t *buf, size_t len)
{
    fz_rng *r = ctx;
    while (len) {
        uint8_t c[8], block[32];
        for (int i = 0; i < 8; i++)
            c[i] = (uint8_t)(r->ctr >> (8 * i));
        r->ctr++;
        crypto_generichash(block, sizeof block, c, sizeof c, NULL, 0);
        size_t n = len < 32 ? len : 32;
        memcpy(buf, block, n);
        buf += n;
        len -= n;
    }
}

#define MAX_EXPECT 256

typedef struct side {
    dvm_secretstream ss;
    dvm_buf out;
    fz_rng rng_state;
    /* what we expect to receive (honest messages), as offsets into a log */
    bool honest_only;
    size_t delivered;
    size_t n_expect;
    uint8_t *expect[MAX_EXPECT];
    size_t expect_len[MAX_EXPECT];
    bool filter_empty;
} side;

static void on_msg(void *ctx, const uint8_t *m, size_t len)
{
    side *s = ctx;
    if (s->honest_only) {
        /* skip expected empties that the filter drops */
        while (s->filter_empty && s->delivered < s->n_expect && s->expect_len[s->delivered] == 0)
            s->delivered++;
        if (s->delivered >= s->n_expect)
            abort(); /* a message nobody honest sent */
        if (s->expect_len[s->delivered] != len || (len && memcmp(s->expect[s->delivered], m, len) != 0))
            abort(); /* altered or reordered */
        if (len == 0 && s->filter_empty)
            abort(); /* filtered empties must not be delivered */
    }
    s->delivered++;
}

static const dvm_secretstream_callbacks CBS = {NULL, on_msg};

static void keypair(uint8_t b, dvm_noise_keypair *kp)
{
    uint8_t seed[32];
    memset(seed, b, sizeof seed);
    dvm_noise_keypair_from_seed(kp, seed);
}

static void side_init(side *s, bool initiator, uint64_t rng_seed, bool filter_empty, bool ik)
{
    memset(s, 0, sizeof *s);
    s->rng_state.ctr = rng_seed;
    dvm_rng rng = {fz_fill, &s->rng_state};
    dvm_noise_keypair kp;
    keypair(initiator ? 0x11 : 0x22, &kp);
    dvm_noise_keypair responder;
    keypair(0x22, &responder);
    dvm_secretstream_options o = {.filter_empty = filter_empty,
                                  .max_message = 1 << 20,
                                  .pattern = ik ? DVM_NOISE_IK : DVM_NOISE_XX,
                                  .remote_public_key = responder.public_key};
    dvm_buf_init(&s->out, 1 << 22);
    s->filter_empty = filter_empty;
    s->honest_only = true;
    if (dvm_secretstream_init(&s->ss, initiator, &kp, &rng, &o, &CBS, s) != DVM_OK)
        abort();
    if (dvm_secretstream_start(&s->ss, &s->out) != DVM_OK)
        abort();
}

static void side_free(side *s)
{
    for (size_t i = 0; i < s->n_expect; i++)
        free(s->expect[i]);
    dvm_secretstream_free(&s->ss);
    dvm_buf_free(&s->out);
}

/* Feed bytes into `to` at pseudo-random split points; returns the first error. */
static dvm_err feed(side *to, const uint8_t *p, size_t n, uint8_t *split)
{
    dvm_err first = DVM_OK;
    size_t off = 0;
    while (off < n) {
        size_t step = 1 + (*split % 97u) * (*split & 1u ? 1u : 13u);
        *split = (uint8_t)(*split * 33u + 7u);
        if (step > n - off)
            step = n - off;
        bool was_failed = dvm_secretstream_state(&to->ss) == DVM_SS_FAILED;
        dvm_err e = dvm_secretstream_recv(&to->ss, p + off, step, &to->out);
        if (was_failed && e == DVM_OK)
            abort(); /* a failed stream must refuse data */
        if (e && dvm_secretstream_state(&to->ss) != DVM_SS_FAILED && e != DVM_ERR_STATE)
            abort(); /* an error must fail the stream */
        if (e && !first)
            first = e;
        off += step;
    }
    return first;
}

/* Move everything a wrote into b (honest bytes). */
static void pump(side *a, side *b, uint8_t *split)
{
    dvm_buf in = a->out;
    dvm_buf_init(&a->out, 1 << 22);
    feed(b, in.data, in.len, split);
    dvm_buf_free(&in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (sodium_init() < 0)
        abort();
    if (size < 2)
        return 0;
    bool initiator = data[0] & 1, established = data[0] & 2, filter = data[0] & 4, ik = data[0] & 8;
    uint8_t split = data[1];
    side us, peer;
    side_init(&us, initiator, 1000, filter, ik);
    side_init(&peer, !initiator, 2000, false, ik);
    peer.honest_only = false; /* the peer checks nothing; we are under test */
    if (established) {
        for (int i = 0; i < 4; i++) {
            pump(&us, &peer, &split);
            pump(&peer, &us, &split);
        }
        if (!dvm_secretstream_is_ready(&us.ss) || !dvm_secretstream_is_ready(&peer.ss))
            abort(); /* an honest handshake must complete */
    } else {
        dvm_buf_reset(&us.out);
    }
    size_t off = 2;
    unsigned ops = 0;
    while (off + 3 <= size && ops++ < 1000) {
        uint8_t kind = data[off] & 3;
        size_t len = (size_t)data[off + 1] | (size_t)data[off + 2] << 8;
        off += 3;
        if (len > size - off)
            len = size - off;
        const uint8_t *p = data + off;
        off += len;
        if (kind == 0 || !established) {
            us.honest_only = false;
            feed(&us, p, len, &split);
        } else if (kind == 1 || kind == 2) {
            dvm_buf_reset(&peer.out);
            if (dvm_secretstream_send(&peer.ss, p, len, &peer.out) != DVM_OK)
                continue;
            if (kind == 2 && peer.out.len) {
                size_t at = len ? p[0] % peer.out.len : 0;
                peer.out.data[at] ^= 0x20;
                size_t before = us.delivered;
                bool ok_before = dvm_secretstream_state(&us.ss) != DVM_SS_FAILED;
                dvm_err e = feed(&us, peer.out.data, peer.out.len, &split);
                dvm_buf_reset(&peer.out);
                if (ok_before && us.honest_only && e == DVM_OK && us.delivered != before) {
                    /* a flipped length byte may leave the frame incomplete,
                     * but nothing forged may ever be delivered */
                    abort();
                }
                us.honest_only = false;
                continue;
            }
            if (us.honest_only && us.n_expect < MAX_EXPECT) {
                us.expect[us.n_expect] = malloc(len ? len : 1);
                if (!us.expect[us.n_expect])
                    abort();
                if (len)
                    memcpy(us.expect[us.n_expect], p, len);
                us.expect_len[us.n_expect++] = len;
            } else {
                us.honest_only = false;
            }
            pump(&peer, &us, &split);
        } else {
            dvm_buf_reset(&us.out);
            dvm_err e = dvm_secretstream_send(&us.ss, p, len, &us.out);
            if (e == DVM_OK && us.out.len != DVM_SECRETSTREAM_FRAME_SIZE(len))
                abort();
            if (e == DVM_OK) {
                pump(&us, &peer, &split);
            }
        }
    }
    side_free(&us);
    side_free(&peer);
    return 0;
}

#ifdef FUZZ_SECRETSTREAM_GEN_MAIN
/* Seed corpus generator: cc -DFUZZ_SECRETSTREAM_GEN_MAIN ... -o gen; ./gen DIR
 * writes honest transcripts (raw mode, both roles) and op programs. */
static void put(const char *dir, const char *name, const uint8_t *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n)
        abort();
    fclose(f);
}

static void op(dvm_buf *b, uint8_t kind, const void *p, size_t n)
{
    uint8_t h[3] = {kind, (uint8_t)n, (uint8_t)(n >> 8)};
    dvm_buf_append(b, h, 3);
    dvm_buf_append(b, p, n);
}

int main(int argc, char **argv)
{
    if (argc != 2 || sodium_init() < 0)
        return 2;
    const char *dir = argv[1];
    for (int role = 0; role < 4; role++) {
        bool ik = role & 2;
        /* Record the honest peer's bytes as seen by `us` (role), raw mode. */
        side us, peer;
        uint8_t split = 0;
        side_init(&us, role & 1, 1000, false, ik);
        side_init(&peer, !(role & 1), 2000, false, ik);
        dvm_buf rec;
        dvm_buf_init(&rec, 0);
        uint8_t hdr[2] = {(uint8_t)((role & 1) | (ik ? 8 : 0)), 0xff};
        dvm_buf_append(&rec, hdr, 2);
        for (int i = 0; i < 4; i++) {
            dvm_buf a = us.out;
            dvm_buf_init(&us.out, 1 << 22);
            feed(&peer, a.data, a.len, &split);
            dvm_buf_free(&a);
            if (peer.out.len)
                op(&rec, 0, peer.out.data, peer.out.len);
            pump(&peer, &us, &split);
        }
        dvm_buf_reset(&peer.out);
        const char *msgs[] = {"hello", "", "{\"type\":\"chunk\",\"data\":\"x\"}\n"};
        for (int i = 0; i < 3; i++) {
            dvm_secretstream_send(&peer.ss, (const uint8_t *)msgs[i], strlen(msgs[i]), &peer.out);
            op(&rec, 0, peer.out.data, peer.out.len);
            dvm_buf_reset(&peer.out);
        }
        char name[64];
        snprintf(name, sizeof name, "transcript-%s%s", ik ? "ik-" : "", role & 1 ? "initiator" : "responder");
        put(dir, name, rec.data, rec.len);
        dvm_buf_free(&rec);
        side_free(&us);
        side_free(&peer);

        /* Established-mode programs. */
        dvm_buf prog;
        dvm_buf_init(&prog, 0);
        uint8_t h2[2] = {(uint8_t)(role | 2 | (ik ? 8 : 0)), 0x11};
        dvm_buf_append(&prog, h2, 2);
        op(&prog, 1, "ping", 4);
        op(&prog, 1, "", 0);
        op(&prog, 3, "pong", 4);
        op(&prog, 1, "{\"type\":\"offer\"}\n", 17);
        snprintf(name, sizeof name, "established-%d", role);
        put(dir, name, prog.data, prog.len);
        dvm_buf_reset(&prog);
        uint8_t h3[2] = {(uint8_t)(role | 2 | 4 | (ik ? 8 : 0)), 0x42};
        dvm_buf_append(&prog, h3, 2);
        op(&prog, 1, "a", 1);
        op(&prog, 2, "\x05xyz", 4);
        op(&prog, 0, "\x10\x00\x00garbagegarbage!!", 19);
        snprintf(name, sizeof name, "tamper-%d", role);
        put(dir, name, prog.data, prog.len);
        dvm_buf_free(&prog);
    }
    static const uint8_t tiny[][8] = {{0, 0}, {1, 3, 0, 3, 0, 0xff, 0xff, 0xff}, {0, 1, 0, 3, 0, 0, 0, 0}};
    put(dir, "short-0", tiny[0], 2);
    put(dir, "huge-len", tiny[1], 8);
    put(dir, "zero-frame", tiny[2], 8);
    return 0;
}
#endif
