/* Differential fuzz harness for the message codec (issue 8, issue 9):
 * the whole input is one line.
 *   - the chunk fast path, when it takes a line, agrees with the jansson
 *     path (same message); the dispatching decoder always gives the jansson
 *     path's answer (same error code and reason, or same message);
 *   - decode -> encode -> decode gives the same message, and encoding is a
 *     fixed point (encode(decode(encode(m))) == encode(m));
 *   - our own chunk lines always take the fast path, and the hot-path chunk
 *     encoder writes the same bytes as the general encoder;
 *   - the input bytes as chunk strings: the chunk encoder's one-pass and
 *     exact paths agree and accept exactly valid UTF-8, and both decoders
 *     read the strings back;
 *   - the kept-head chunk path (issue 9): dvm_msg_chunk_head +
 *     dvm_msg_encode_chunk_with_head write the chunk encoder's bytes, and
 *     dvm_msg_decode_chunk_tail on the head followed by the rest of the
 *     input, when it takes the line, agrees with jansson on it;
 *   - the kept-tail chunk path (issue 9): dvm_chunk_tail (set, next) +
 *     dvm_msg_encode_chunk_with_tail write the chunk encoder's bytes;
 *     dvm_msg_decode_chunk_line takes our own line exactly when its data
 *     needs no escape, and the head + the rest of the input + the tail,
 *     when it takes it, agrees with jansson.
 * Aborts only on a violated invariant; never leaks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/codec.h"
#include "wire/utf8.h"

#define CHECK(c)        \
    do {                \
        if (!(c))       \
            abort();    \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dvm_msg_decoder dj, df, dd, d2;
    dvm_msg_decoder_init(&dj, 0);
    dvm_msg_decoder_init(&df, 0);
    dvm_msg_decoder_init(&dd, 0);
    dvm_msg_decoder_init(&d2, 0);
    dvm_buf e1, e2;
    dvm_buf_init(&e1, 0);
    dvm_buf_init(&e2, 0);
    dvm_msg mj, mf, md, m2;
    char wj[DVM_REASON_MAX], wd[DVM_REASON_MAX];

    dvm_err ej = dvm_msg_decode_json(&dj, data, size, &mj, wj, sizeof wj);
    dvm_err ef = dvm_msg_decode_fast(&df, data, size, &mf);
    dvm_err ed = dvm_msg_decode(&dd, data, size, &md, wd, sizeof wd);
    CHECK(ef == DVM_OK || ef == DVM_ERR_AGAIN);
    if (ef == DVM_OK) {
        CHECK(ej == DVM_OK);
        CHECK(dvm_msg_equal(&mf, &mj));
    }
    CHECK(ed == ej);
    if (ej != DVM_OK) {
        CHECK(strcmp(wj, wd) == 0);
        CHECK(mj.type == DVM_MSG_NONE && md.type == DVM_MSG_NONE);
        CHECK(mj.id.len == md.id.len &&
              (mj.id.len == 0 || memcmp(mj.id.ptr, md.id.ptr, mj.id.len) == 0));
        goto out;
    }
    CHECK(dvm_msg_equal(&md, &mj));

    CHECK(dvm_msg_encode(&mj, &e1) == DVM_OK);
    CHECK(e1.len >= 2 && e1.data[e1.len - 1] == '\n');
    CHECK(memchr(e1.data, '\n', e1.len - 1) == NULL);
    CHECK(dvm_msg_decode_json(&d2, e1.data, e1.len - 1, &m2, wj, sizeof wj) == DVM_OK);
    CHECK(dvm_msg_equal(&m2, &mj));
    CHECK(dvm_msg_encode(&m2, &e2) == DVM_OK);
    CHECK(e1.len == e2.len && memcmp(e1.data, e2.data, e1.len) == 0);
    if (mj.type == DVM_MSG_CHUNK) {
        CHECK(dvm_msg_decode_fast(&df, e1.data, e1.len - 1, &mf) == DVM_OK);
        CHECK(dvm_msg_equal(&mf, &mj));
        dvm_buf_reset(&e2);
        CHECK(dvm_msg_encode_chunk(&e2, mj.id, mj.data, mj.has_seq, mj.seq) == DVM_OK);
        CHECK(e1.len == e2.len && memcmp(e1.data, e2.data, e1.len) == 0);
    }
out:
    /* The input bytes as the strings of a chunk (a prefix as the id, the
     * rest as data): the chunk encoder's one-pass path (buffer with room
     * for the worst case) and its exact path (fresh buffer) agree, accept
     * exactly valid UTF-8, and jansson and the fast decoder read the
     * strings back. */
    {
        size_t k = size ? data[0] % (size + 1) : 0;
        dvm_str sid = {(const char *)data, k}, sdata = {(const char *)data + k, size - k};
        bool valid = dvm_utf8_valid(data, k) && dvm_utf8_valid(data + k, size - k);
        dvm_buf x, y;
        dvm_buf_init(&x, 0);
        dvm_buf_init(&y, 0);
        CHECK(dvm_buf_reserve(&y, 6 * size + 64) == DVM_OK);
        dvm_err ex = dvm_msg_encode_chunk(&x, sid, sdata, true, 1 + size);
        dvm_err ey = dvm_msg_encode_chunk(&y, sid, sdata, true, 1 + size);
        CHECK(ex == ey);
        CHECK((ex == DVM_OK) == valid);
        if (ex == DVM_OK) {
            CHECK(x.len == y.len && memcmp(x.data, y.data, x.len) == 0);
            dvm_msg a, b;
            CHECK(dvm_msg_decode_json(&dj, y.data, y.len - 1, &a, wj, sizeof wj) == DVM_OK);
            CHECK(dvm_msg_decode_fast(&df, y.data, y.len - 1, &b) == DVM_OK);
            CHECK(dvm_msg_equal(&a, &b));
            CHECK(a.id.len == k && (k == 0 || memcmp(a.id.ptr, data, k) == 0));
            CHECK(a.data.len == size - k &&
                  (size == k || memcmp(a.data.ptr, data + k, size - k) == 0));
            CHECK(a.has_seq && a.seq == 1 + size);
        } else {
            CHECK(x.len == 0 && y.len == 0);
        }
        dvm_buf h, z, line;
        dvm_buf_init(&h, 0);
        dvm_buf_init(&z, 0);
        dvm_buf_init(&line, 0);
        if (dvm_msg_chunk_head(&h, sid) == DVM_OK) {
            CHECK(dvm_utf8_valid(data, k));
            dvm_str hs = {(const char *)h.data, h.len};
            dvm_err ez = dvm_msg_encode_chunk_with_head(&z, hs, sdata, true, 1 + size);
            CHECK(ez == ex);
            CHECK(ez != DVM_OK || (z.len == x.len && memcmp(z.data, x.data, x.len) == 0));
            if (ex == DVM_OK) {
                dvm_str td;
                bool ths;
                uint64_t tseq;
                CHECK(dvm_msg_decode_chunk_tail(&df, y.data, y.len - 1, h.len, &td, &ths,
                                                &tseq) == DVM_OK);
                CHECK(td.len == size - k && (size == k || memcmp(td.ptr, data + k, size - k) == 0));
                CHECK(ths && tseq == 1 + size);
            }
            /* the kept tail: same bytes as the chunk encoder; our own line
             * is taken exactly when its data needs no escape */
            dvm_chunk_tail t, t0;
            dvm_chunk_tail_set(&t, 1 + size);
            dvm_chunk_tail_set(&t0, size); /* none when size is 0 */
            dvm_chunk_tail_next(&t0);
            CHECK(t.seq == 1 + size);
            CHECK(size == 0 ? t0.seq == 0 && t0.len == 0
                            : t0.seq == t.seq && t0.len == t.len &&
                                  memcmp(t0.text, t.text, t.len) == 0);
            dvm_buf tw;
            dvm_buf_init(&tw, 0);
            dvm_err et = dvm_msg_encode_chunk_with_tail(&tw, hs, sdata, &t);
            CHECK(et == ex);
            CHECK(et != DVM_OK || (tw.len == x.len && memcmp(tw.data, x.data, x.len) == 0));
            if (ex == DVM_OK) {
                dvm_str ld;
                bool taken = dvm_msg_decode_chunk_line(&df, y.data, y.len - 1, hs, &t, &ld);
                CHECK(taken == (y.len == h.len + (size - k) + t.len));
                CHECK(!taken || (ld.len == size - k &&
                                 (size == k || memcmp(ld.ptr, data + k, size - k) == 0)));
            }
            dvm_buf_reset(&tw);
            CHECK(dvm_buf_append(&tw, h.data, h.len) == DVM_OK);
            CHECK(dvm_buf_append(&tw, data + k, size - k) == DVM_OK);
            CHECK(dvm_buf_append(&tw, t.text, t.len - 1) == DVM_OK);
            dvm_str ld;
            if (dvm_msg_decode_chunk_line(&df, tw.data, tw.len, hs, &t, &ld)) {
                dvm_msg a;
                CHECK(dvm_msg_decode_json(&dj, tw.data, tw.len, &a, wj, sizeof wj) == DVM_OK);
                CHECK(a.type == DVM_MSG_CHUNK && a.id.len == k &&
                      (k == 0 || memcmp(a.id.ptr, data, k) == 0));
                CHECK(a.data.len == ld.len && (ld.len == 0 || memcmp(a.data.ptr, ld.ptr, ld.len) == 0));
                CHECK(a.has_seq && a.seq == t.seq);
                CHECK(ld.len == size - k);
            }
            dvm_buf_free(&tw);
            /* the head, then the rest of the input as the line's tail */
            CHECK(dvm_buf_append(&line, h.data, h.len) == DVM_OK);
            CHECK(dvm_buf_append(&line, data + k, size - k) == DVM_OK);
            dvm_str td;
            bool ths;
            uint64_t tseq;
            if (dvm_msg_decode_chunk_tail(&df, line.data, line.len, h.len, &td, &ths, &tseq) ==
                DVM_OK) {
                dvm_msg a;
                CHECK(dvm_msg_decode_json(&dj, line.data, line.len, &a, wj, sizeof wj) == DVM_OK);
                CHECK(a.type == DVM_MSG_CHUNK && a.id.len == k &&
                      (k == 0 || memcmp(a.id.ptr, data, k) == 0));
                CHECK(a.data.len == td.len && (td.len == 0 || memcmp(a.data.ptr, td.ptr, td.len) == 0));
                CHECK(a.has_seq == ths && a.seq == tseq);
            }
        } else {
            CHECK(!dvm_utf8_valid(data, k) && h.len == 0);
        }
        dvm_buf_free(&h);
        dvm_buf_free(&z);
        dvm_buf_free(&line);
        dvm_buf_free(&x);
        dvm_buf_free(&y);
    }
    dvm_buf_free(&e1);
    dvm_buf_free(&e2);
    dvm_msg_decoder_free(&dj);
    dvm_msg_decoder_free(&df);
    dvm_msg_decoder_free(&dd);
    dvm_msg_decoder_free(&d2);
    return 0;
}
