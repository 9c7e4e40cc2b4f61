/* fuzz_provider: one provider job driven by a sequence of customer
 * messages, verification outcomes, processor events and timer firings
 * decoded from the input bytes.
 *
 * Input: byte 0..2 configure the job (sats_per_chunk 1..8, chunks_per_payment
 * 1..16, pause queue 1..8 chunks); then a stream of ops, each an op byte
 * followed by its operands (see the switch). Missing bytes read as 0.
 *
 * After every step, all actions are drained and these invariants checked
 * (abort on violation):
 *   - no chunk without credit: chunks_sent * sats_per_chunk <= earned sats,
 *     and credit * spc + carry + chunks_sent * spc <= earned (== while the
 *     job has not ended);
 *   - chunk messages carry seq 1, 2, 3, ... with no gap, and none is sent
 *     before `accepted`;
 *   - the carry stays below sats_per_chunk;
 *   - at most one CLAIM and one DONE; CLAIM sats <= earned;
 *   - every message sent encodes (valid UTF-8, integers in range), whatever
 *     bytes the processor or verifier supplied. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "session/provider.h"
#include "wire/codec.h"
#include "wire/utf8.h"
#include "fuzz_input.h"

typedef struct world {
    dvm_provider_config cfg;
    uint64_t verify_ids[64];
    size_t nverify;
    uint64_t seq;
    bool accepted, claimed, done;
    uint64_t claim_sats;
    bool gen_started;
} world;

static void check(dvm_provider *p, world *w)
{
    dvm_provider_action a;
    while (dvm_provider_next_action(p, &a)) {
        switch (a.type) {
        case DVM_PACT_SEND: {
            /* everything the provider sends must be encodable */
            dvm_buf b;
            dvm_buf_init(&b, 0);
            if (dvm_msg_encode(&a.msg, &b) != DVM_OK)
                abort();
            dvm_buf_free(&b);
        }
            if (a.msg.type == DVM_MSG_ACCEPTED)
                w->accepted = true;
            if (a.msg.type == DVM_MSG_CHUNK) {
                if (!w->accepted || !a.msg.has_seq || a.msg.seq != w->seq + 1)
                    abort();
                w->seq++;
                volatile uint8_t sink = 0;
                for (size_t i = 0; i < a.msg.data.len; i++)
                    sink ^= (uint8_t)a.msg.data.ptr[i];
                (void)sink;
            }
            if (a.msg.type == DVM_MSG_RESULT || a.msg.type == DVM_MSG_ERROR) {
                volatile uint8_t sink = 0;
                dvm_str s = a.msg.type == DVM_MSG_RESULT ? a.msg.output : a.msg.message;
                for (size_t i = 0; i < s.len; i++)
                    sink ^= (uint8_t)s.ptr[i];
                (void)sink;
            }
            break;
        case DVM_PACT_VERIFY_TOKEN:
            if (w->nverify < 64)
                w->verify_ids[w->nverify++] = a.verify_id;
            break;
        case DVM_PACT_START_GENERATION: w->gen_started = true; break;
        case DVM_PACT_CLAIM:
            if (w->claimed || a.n_tokens == 0)
                abort();
            w->claimed = true;
            w->claim_sats = a.claim_sats;
            for (size_t i = 0; i < a.n_tokens; i++)
                if (a.tokens[i].len == 0)
                    abort();
            break;
        case DVM_PACT_DONE:
            if (w->done)
                abort();
            w->done = true;
            break;
        default: break;
        }
    }
    dvm_provider_stats st;
    dvm_provider_get_stats(p, &st);
    uint64_t spc = w->cfg.sats_per_chunk;
    if (st.chunks_sent != w->seq)
        abort();
    if (st.carry_sats >= spc)
        abort();
    uint64_t accounted = st.chunks_sent * spc + st.credit_chunks * spc + st.carry_sats;
    if (accounted > st.earned_sats)
        abort();
    bool ended = st.state == DVM_PROVIDER_CLOSING || st.state == DVM_PROVIDER_DONE;
    if (!ended && accounted != st.earned_sats)
        abort();
    if (w->claimed && w->claim_sats > st.earned_sats)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rd r = {data, size, 0};
    world w;
    memset(&w, 0, sizeof w);
    dvm_provider_config_default(&w.cfg);
    w.cfg.sats_per_chunk = 1 + u8(&r) % 8;
    w.cfg.chunks_per_payment = 1 + u8(&r) % 16;
    w.cfg.max_queued_chunks = 1 + u8(&r) % 8;
    w.cfg.max_queued_bytes = 256;
    w.cfg.max_output_bytes = 4096;
    w.cfg.max_payments = 32;
    w.cfg.max_token_bytes = 1024;
    w.cfg.payment_timeout_ms = 1000;
    dvm_provider *p = dvm_provider_new(&w.cfg);
    if (!p)
        return 0;
    uint64_t now = 0;
    for (int steps = 0; steps < 4096 && r.i < r.n; steps++) {
        uint8_t op = u8(&r);
        dvm_msg m;
        memset(&m, 0, sizeof m);
        m.id = dvm_str_c("j");
        switch (op % 11) {
        case 0:
            m.type = DVM_MSG_REQUEST;
            m.kind = u16(&r);
            m.input = slice(&r, 64);
            m.budget = u16(&r);
            dvm_provider_handle_msg(p, &m, now);
            break;
        case 1:
            m.type = DVM_MSG_PAYMENT;
            m.token = slice(&r, 48);
            dvm_provider_handle_msg(p, &m, now);
            break;
        case 2:
            m.type = DVM_MSG_STOP;
            dvm_provider_handle_msg(p, &m, now);
            break;
        case 3: { /* verification outcome */
            uint8_t which = u8(&r), kind = u8(&r);
            uint64_t amount = u16(&r);
            if (kind & 0x80)
                amount = (amount << 37) | amount; /* large amounts too */
            uint64_t vid = w.nverify ? w.verify_ids[which % w.nverify] : which;
            dvm_verify_result res;
            memset(&res, 0, sizeof res);
            res.outcome = (dvm_verify_outcome)(kind % 6); /* 5 is invalid */
            res.amount = amount;
            res.reason = slice(&r, 40);
            dvm_provider_on_verify(p, vid, &res, now);
            break;
        }
        case 4: {
            dvm_str s = slice(&r, 80);
            if (op & 0x80) { /* the fused path: what it encodes is the chunk, unchanged */
                dvm_buf wire;
                dvm_buf_init(&wire, 0);
                dvm_provider_on_chunk_encode(p, s.ptr, s.len, now, &wire);
                if (wire.len) {
                    dvm_msg_decoder d;
                    dvm_msg_decoder_init(&d, 0);
                    dvm_msg cm;
                    if (wire.data[wire.len - 1] != '\n' ||
                        dvm_msg_decode(&d, wire.data, wire.len - 1, &cm, NULL, 0) != DVM_OK ||
                        cm.type != DVM_MSG_CHUNK || cm.data.len != s.len ||
                        memcmp(cm.data.ptr, s.ptr, s.len) != 0 || cm.id.len != 1 ||
                        !w.accepted || !cm.has_seq || cm.seq != w.seq + 1)
                        abort();
                    w.seq++; /* as check() counts the chunks of the action path */
                    dvm_msg_decoder_free(&d);
                }
                dvm_buf_free(&wire);
            } else {
                dvm_provider_on_chunk(p, s.ptr, s.len, now);
            }
            break;
        }
        case 5: dvm_provider_on_generation_done(p, now); break;
        case 6: {
            dvm_str s = slice(&r, 40);
            dvm_provider_on_generation_error(p, s.ptr ? s.ptr : "", s.len, now);
            break;
        }
        case 7:
            now += (uint64_t)u16(&r) * 4;
            dvm_provider_on_timer(p, now);
            break;
        case 8:
            if (u8(&r) & 1)
                dvm_provider_abort(p, now);
            else
                dvm_provider_end_job(p, now);
            break;
        case 9: /* a message a provider should never get */
            m.type = (dvm_msg_type)(u8(&r) % 12);
            m.data = slice(&r, 16);
            dvm_provider_handle_msg(p, &m, now);
            break;
        case 10: { /* drain only part of the queue, then continue */
            dvm_provider_action a;
            uint8_t k = u8(&r) % 4;
            for (uint8_t i = 0; i < k && dvm_provider_next_action(p, &a); i++) {
                if (a.type == DVM_PACT_SEND && a.msg.type == DVM_MSG_CHUNK) {
                    if (!w.accepted || a.msg.seq != w.seq + 1)
                        abort();
                    w.seq++;
                } else if (a.type == DVM_PACT_SEND && a.msg.type == DVM_MSG_ACCEPTED) {
                    w.accepted = true;
                } else if (a.type == DVM_PACT_VERIFY_TOKEN && w.nverify < 64) {
                    w.verify_ids[w.nverify++] = a.verify_id;
                } else if (a.type == DVM_PACT_CLAIM) {
                    if (w.claimed)
                        abort();
                    w.claimed = true;
                    w.claim_sats = a.claim_sats;
                } else if (a.type == DVM_PACT_DONE) {
                    if (w.done)
                        abort();
                    w.done = true;
                }
            }
            continue; /* no full check: the queue is intentionally not empty */
        }
        }
        check(p, &w);
    }
    check(p, &w);
    dvm_provider_free(p);
    return 0;
}
