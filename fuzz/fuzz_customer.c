/* fuzz_customer: one customer job driven by a sequence of provider
 * messages, token-source answers, timer firings and embedder calls decoded
 * from the input bytes.
 *
 * Input: bytes 0..3 configure the job (budget 0..65535 sats, prepay window
 * 0..3, max_sats_per_chunk 0..15, pull or callback mode); then ops, each an
 * op byte and its operands (see the switch). Missing bytes read as 0.
 *
 * Invariants after every step (abort on violation):
 *   - budget never exceeded: sats_paid <= sats_committed <= budget, and the
 *     sum of payment messages sent == sats_paid;
 *   - every NEED_TOKEN asks for exactly sats_per_payment > 0;
 *   - sats_paid never decreases; at most one DONE. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "session/customer.h"
#include "wire/codec.h"
#include "fuzz_input.h"

typedef struct world {
    uint64_t reqs[128];
    size_t nreqs;
    uint64_t sent_sats, last_paid;
    bool done;
    size_t chunks_cb;
} world;

static void on_chunk(void *ctx, const char *d, size_t len)
{
    volatile uint8_t s = 0;
    for (size_t i = 0; i < len; i++)
        s ^= (uint8_t)d[i];
    (void)s;
    ((world *)ctx)->chunks_cb++;
}

static void check(dvm_customer *c, world *w)
{
    dvm_customer_action a;
    dvm_customer_stats st;
    dvm_customer_get_stats(c, &st);
    while (dvm_customer_next_action(c, &a)) {
        switch (a.type) {
        case DVM_CACT_SEND: {
            dvm_buf b;
            dvm_buf_init(&b, 0);
            if (dvm_msg_encode(&a.msg, &b) != DVM_OK)
                abort();
            dvm_buf_free(&b);
        }
            if (a.msg.type == DVM_MSG_PAYMENT) {
                if (a.msg.token.len == 0)
                    abort();
                w->sent_sats += st.sats_per_payment;
            }
            break;
        case DVM_CACT_NEED_TOKEN:
            if (a.amount == 0 || a.amount != st.sats_per_payment)
                abort();
            if (w->nreqs < 128)
                w->reqs[w->nreqs++] = a.token_req;
            break;
        case DVM_CACT_DONE:
            if (w->done)
                abort();
            w->done = true;
            break;
        default: break;
        }
    }
    dvm_customer_get_stats(c, &st);
    if (st.sats_paid > st.sats_committed || st.sats_committed > st.budget)
        abort();
    if (st.sats_paid < w->last_paid || w->sent_sats != st.sats_paid)
        abort();
    w->last_paid = st.sats_paid;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rd r = {data, size, 0};
    world w;
    memset(&w, 0, sizeof w);
    dvm_customer_config cfg;
    dvm_customer_config_default(&cfg);
    uint64_t budget = u16(&r);
    cfg.prepay_window = u8(&r) % 4;
    cfg.max_sats_per_chunk = u8(&r) % 16;
    cfg.idle_timeout_ms = 1000;
    cfg.max_buffered_bytes = 512;
    cfg.max_result_bytes = 256;
    dvm_customer_callbacks cb = {on_chunk, NULL, NULL, &w};
    bool pull = u8(&r) & 1;
    dvm_customer *c = dvm_customer_new(&cfg, pull ? NULL : &cb);
    if (!c)
        return 0;
    uint64_t now = 0;
    dvm_customer_start(c, dvm_str_c("j"), 5100, dvm_str_c("prompt"), budget, now);
    check(c, &w);
    for (int steps = 0; steps < 4096 && r.i < r.n; steps++) {
        uint8_t op = u8(&r);
        dvm_msg m;
        memset(&m, 0, sizeof m);
        m.id = dvm_str_c("j");
        switch (op % 13) {
        case 0:
            m.type = DVM_MSG_OFFER;
            m.sats_per_chunk = u8(&r) % 8;
            m.chunks_per_payment = u8(&r) % 20;
            if (m.sats_per_chunk == 7)
                m.sats_per_chunk = 9007199254740991ULL; /* overflow attempt */
            dvm_customer_handle_msg(c, &m, now);
            break;
        case 1:
            m.type = DVM_MSG_PAYMENT_ACK;
            m.amount = u16(&r);
            dvm_customer_handle_msg(c, &m, now);
            break;
        case 2:
            m.type = DVM_MSG_ACCEPTED;
            dvm_customer_handle_msg(c, &m, now);
            break;
        case 3: {
            m.type = DVM_MSG_CHUNK;
            uint8_t s = u8(&r);
            m.has_seq = s & 1;
            m.seq = s >> 1;
            m.data = slice(&r, 64);
            if (op & 0xC0) { /* as a line, through the fused decode + handle */
                dvm_buf line;
                dvm_buf_init(&line, 0);
                dvm_err ee = DVM_OK;
                if (op & 0x80) { /* our own encoding of the message */
                    ee = dvm_msg_encode(&m, &line);
                    if (ee == DVM_OK)
                        line.len--;
                } else { /* this job's chunk head, then raw bytes */
                    ee = dvm_buf_append(&line, "{\"type\":\"chunk\",\"id\":\"j\",\"data\":\"", 33);
                    if (ee == DVM_OK && m.data.len)
                        ee = dvm_buf_append(&line, m.data.ptr, m.data.len);
                }
                if (ee == DVM_OK) {
                    dvm_msg_decoder d;
                    dvm_msg_decoder_init(&d, 0);
                    dvm_err de = DVM_ERR_AGAIN;
                    char why[DVM_REASON_MAX];
                    dvm_customer_handle_line(c, &d, line.data, line.len, now, why, sizeof why, &de);
                    if ((op & 0x80) && de != DVM_OK)
                        abort(); /* our own line always decodes */
                    dvm_msg_decoder_free(&d);
                } else {
                    dvm_customer_handle_msg(c, &m, now);
                }
                dvm_buf_free(&line);
            } else {
                dvm_customer_handle_msg(c, &m, now);
            }
            break;
        }
        case 4:
            m.type = DVM_MSG_PAY_REQUIRED;
            m.earned = u16(&r);
            m.next = u16(&r);
            dvm_customer_handle_msg(c, &m, now);
            break;
        case 5:
            m.type = DVM_MSG_RESULT;
            m.output = slice(&r, 64);
            m.total_sats = u16(&r);
            dvm_customer_handle_msg(c, &m, now);
            break;
        case 6:
            m.type = DVM_MSG_ERROR;
            m.message = slice(&r, 64);
            dvm_customer_handle_msg(c, &m, now);
            break;
        case 7: { /* the token source answers (or fails) */
            uint8_t which = u8(&r), how = u8(&r);
            uint64_t id = w.nreqs ? w.reqs[which % w.nreqs] : which;
            if (how % 4 == 0)
                dvm_customer_on_token_failed(c, id, "fuzz", now);
            else
                dvm_customer_on_token(c, id, how % 4 == 1 ? dvm_str_c("") : dvm_str_c("cashuBfuzz"),
                                      now);
            break;
        }
        case 8:
            now += u16(&r);
            dvm_customer_on_timer(c, now);
            break;
        case 9:
            if (u8(&r) & 1)
                dvm_customer_stop(c, now);
            else
                dvm_customer_close(c, now);
            break;
        case 10: {
            dvm_str s;
            uint8_t k = u8(&r) % 8;
            for (uint8_t i = 0; i < k && dvm_customer_read(c, &s) == DVM_OK; i++) {
                volatile uint8_t x = 0;
                for (size_t j = 0; j < s.len; j++)
                    x ^= (uint8_t)s.ptr[j];
                (void)x;
            }
            break;
        }
        case 11: /* another job's message, or a provider-bound type */
            m.type = (dvm_msg_type)(u8(&r) % 12);
            if (u8(&r) & 1)
                m.id = dvm_str_c("other");
            dvm_customer_handle_msg(c, &m, now);
            break;
        case 12:
            dvm_customer_start(c, dvm_str_c("again"), 1, dvm_str_c(""), budget, now);
            break;
        }
        check(c, &w);
    }
    dvm_customer_free(c);
    return 0;
}
