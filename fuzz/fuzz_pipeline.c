/* fuzz_pipeline: the SUB_KIND batching state machine fed sub-provider bytes
 * cut at fuzzer-chosen points, with processor answers interleaved.
 *
 * Input: byte 0 batch_chars (1..64), byte 1 max_batch_bytes (4..67), byte 2
 * flags (bit 0 split_exact); then ops: 0 = push the next 1..16 bytes of the
 * rest of the input as a sub-provider chunk, 1 = the processor finishes the
 * current batch, 2 = sub-provider done, 3 = processor output chunk.
 *
 * Invariants (abort on violation):
 *   - the batches, concatenated, are exactly the bytes pushed (minus an
 *     incomplete UTF-8 sequence at the very end) when the input is valid
 *     UTF-8, and no batch starts with a continuation byte after a complete
 *     lead (no code point split across batches);
 *   - no batch is longer than max_batch_bytes, none is empty;
 *   - each batch's reported character count is right, and when the input
 *     is valid UTF-8 each batch is valid UTF-8 on its own;
 *   - PROCESS_BATCH never arrives while the previous batch is unfinished. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "session/pipeline.h"

static bool valid_utf8(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t b = p[i];
        size_t k = b < 0x80 ? 1 : (b >= 0xC2 && b <= 0xDF) ? 2 : (b >= 0xE0 && b <= 0xEF) ? 3
                                : (b >= 0xF0 && b <= 0xF4)   ? 4 : 0;
        if (k == 0 || i + k > n)
            return false;
        for (size_t j = 1; j < k; j++)
            if ((p[i + j] & 0xC0) != 0x80)
                return false;
        i += k;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    dvm_pipeline_config c;
    dvm_pipeline_config_default(&c);
    c.batch_chars = 1 + data[0] % 64;
    c.max_batch_bytes = 4 + data[1] % 64;
    c.split_exact = data[2] & 1;
    c.max_pending_bytes = 1 << 16;
    dvm_pipeline *pl = dvm_pipeline_new(&c);
    if (!pl)
        abort();
    const uint8_t *in = data + 3;
    size_t n = size - 3;
    /* ops come from the low two bits of each input byte; chunk bytes are the
     * bytes themselves, so the pushed text is the input after the header */
    uint8_t *pushed = malloc(n + 1), *batches = malloc(n + 1);
    size_t npushed = 0, nbatches = 0, pos = 0;
    bool busy = false, sub_done = false;
    bool batches_valid = true;
    while (pos < n || !sub_done) {
        uint8_t op = pos < n ? in[pos] % 4 : 2;
        if (op == 0 || op == 3) {
            size_t len = pos < n ? 1 + in[pos] / 16 : 0;
            if (len > n - pos)
                len = n - pos;
            if (op == 0 && !sub_done) {
                dvm_err e = dvm_pipeline_on_sub_chunk(pl, (const char *)in + pos, len);
                if (e == DVM_OK) {
                    memcpy(pushed + npushed, in + pos, len);
                    npushed += len;
                }
            } else if (op == 3 && busy) {
                if (dvm_pipeline_on_processor_chunk(pl, (const char *)in + pos, len) != DVM_OK)
                    abort();
            }
            pos += len ? len : 1;
        } else if (op == 1) {
            if (busy) {
                busy = false;
                if (dvm_pipeline_on_processor_done(pl) != DVM_OK)
                    abort();
            }
            pos++;
        } else {
            if (!sub_done) {
                sub_done = true;
                if (dvm_pipeline_on_sub_done(pl) != DVM_OK)
                    abort();
            }
            if (pos < n)
                pos++;
        }
        dvm_pipeline_action a;
        while (dvm_pipeline_next_action(pl, &a)) {
            if (a.type == DVM_PLACT_PROCESS_BATCH) {
                if (busy || a.text.len == 0 || a.text.len > c.max_batch_bytes)
                    abort();
                if (nbatches + a.text.len > n)
                    abort();
                if (!valid_utf8((const uint8_t *)a.text.ptr, a.text.len))
                    batches_valid = false;
                if (a.chars != dvm_utf8_count(a.text.ptr, a.text.len))
                    abort();
                memcpy(batches + nbatches, a.text.ptr, a.text.len);
                nbatches += a.text.len;
                busy = true;
            }
        }
        if (sub_done && !busy && pos >= n)
            break;
    }
    /* drain remaining batches */
    for (int guard = 0; guard < 100000; guard++) {
        if (busy) {
            busy = false;
            dvm_pipeline_on_processor_done(pl);
        }
        dvm_pipeline_action a;
        bool any = false;
        while (dvm_pipeline_next_action(pl, &a)) {
            any = true;
            if (a.type == DVM_PLACT_PROCESS_BATCH) {
                if (a.text.len == 0 || a.text.len > c.max_batch_bytes || nbatches + a.text.len > n)
                    abort();
                if (!valid_utf8((const uint8_t *)a.text.ptr, a.text.len))
                    batches_valid = false;
                memcpy(batches + nbatches, a.text.ptr, a.text.len);
                nbatches += a.text.len;
                busy = true;
            }
        }
        if (!any && !busy)
            break;
    }
    if (valid_utf8(pushed, npushed)) {
        if (nbatches != npushed || memcmp(batches, pushed, npushed) != 0 || !batches_valid)
            abort();
    } else if (nbatches > npushed) {
        abort();
    }
    free(pushed);
    free(batches);
    dvm_pipeline_free(pl);
    return 0;
}
