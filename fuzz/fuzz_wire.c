/* Fuzz harness: the NDJSON framer and the message decoder on a byte stream
 * from a peer, cut at split points taken from the input.
 *
 * Input layout: byte 0 picks the line limit (16, 64, 1024 bytes or the
 * 1 MiB default), bytes 1..2 seed the push sizes, the rest is the stream.
 * Invariants checked (abort on violation):
 *   - the framer yields the same lines and oversize errors whether the
 *     stream arrives in one push or in the seeded pieces;
 *   - every line is non-empty, within the limit, and holds no '\n';
 *   - the carry buffer never exceeds limit + 1 bytes;
 *   - every line that decodes re-encodes and decodes to the same message,
 *     and a rejected line always comes with a printable reason. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/codec.h"
#include "wire/frame.h"

#define CHECK(c)        \
    do {                \
        if (!(c))       \
            abort();    \
    } while (0)

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static void check_line(dvm_msg_decoder *d, dvm_msg_decoder *d2, dvm_buf *enc,
                       const uint8_t *line, size_t len)
{
    dvm_msg m, m2;
    char why[DVM_REASON_MAX];
    dvm_err e = dvm_msg_decode(d, line, len, &m, why, sizeof why);
    if (e != DVM_OK) {
        CHECK(e == DVM_ERR_INVALID || e == DVM_ERR_TOO_LARGE || e == DVM_ERR_NOMEM);
        CHECK(why[0] != '\0');
        for (const char *p = why; *p; p++)
            CHECK(*p >= 0x20 && *p < 0x7f);
        return;
    }
    dvm_buf_reset(enc);
    CHECK(dvm_msg_encode(&m, enc) == DVM_OK);
    CHECK(enc->len >= 2 && enc->data[enc->len - 1] == '\n');
    CHECK(dvm_msg_decode(d2, enc->data, enc->len - 1, &m2, why, sizeof why) == DVM_OK);
    CHECK(dvm_msg_equal(&m, &m2));
}

/* Frame `s` in pieces (one piece if seed == 0); returns a hash of the
 * event sequence. Decodes each line when dec is non-NULL. */
static uint64_t frame_all(const uint8_t *s, size_t n, size_t limit, uint32_t seed,
                          dvm_msg_decoder *dec, dvm_msg_decoder *dec2, dvm_buf *enc)
{
    dvm_framer f;
    dvm_framer_init(&f, limit);
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t at = 0;
    uint32_t x = seed | 1;
    while (at < n || at == 0) {
        size_t k = n - at;
        if (seed) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            size_t want = 1 + x % 67;
            if (want < k)
                k = want;
        }
        /* An exact copy of the piece so the sanitizers catch overreads. */
        uint8_t *piece = malloc(k ? k : 1);
        CHECK(piece);
        if (k)
            memcpy(piece, s + at, k);
        CHECK(dvm_framer_push(&f, piece, k) == DVM_OK);
        for (;;) {
            const uint8_t *line;
            size_t len;
            dvm_err e = dvm_framer_next(&f, &line, &len);
            if (e == DVM_ERR_AGAIN)
                break;
            if (e == DVM_ERR_TOO_LARGE) {
                h = fnv(h, "E", 1);
                continue;
            }
            CHECK(e == DVM_OK);
            CHECK(len > 0 && len <= f.max_line);
            CHECK(memchr(line, '\n', len) == NULL);
            h = fnv(h, &len, sizeof len);
            h = fnv(h, line, len);
            if (dec)
                check_line(dec, dec2, enc, line, len);
        }
        CHECK(f.carry.len <= f.max_line + 1);
        free(piece);
        at += k;
        if (n == 0)
            break;
    }
    h = fnv(h, "P", 1);
    size_t pend = dvm_framer_pending(&f);
    h = fnv(h, &pend, sizeof pend);
    dvm_framer_free(&f);
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    static const size_t limits[4] = {16, 64, 1024, 0};
    size_t limit = limits[data[0] & 3];
    uint32_t seed = (uint32_t)data[1] << 8 | data[2];
    const uint8_t *s = data + 3;
    size_t n = size - 3;

    dvm_msg_decoder dec, dec2;
    dvm_msg_decoder_init(&dec, 0);
    dvm_msg_decoder_init(&dec2, 0);
    dvm_buf enc;
    dvm_buf_init(&enc, 0);
    uint64_t whole = frame_all(s, n, limit, 0, NULL, NULL, NULL);
    uint64_t pieces = frame_all(s, n, limit, seed ? seed : 1, &dec, &dec2, &enc);
    CHECK(whole == pieces);
    dvm_buf_free(&enc);
    dvm_msg_decoder_free(&dec);
    dvm_msg_decoder_free(&dec2);
    return 0;
}
