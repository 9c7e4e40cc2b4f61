/* fuzz_agent: the provider agent (several connections, several jobs, one
 * capacity counter) driven by messages, decode errors, verification
 * outcomes, processor events, timers, connection closes, other-channel slot
 * use and shutdown, all decoded from the input bytes.
 *
 * Input: byte 0 max_jobs (1..4); then ops, each an op byte and operands.
 * Job ids come from a small alphabet so duplicates and unknown ids happen.
 *
 * Invariants after every step (abort on violation):
 *   - slots in use never exceed max_jobs;
 *   - every reply the agent sends encodes (valid message);
 *   - each job handle gets at most one CLAIM and one DONE, and no action
 *     after its DONE;
 *   - chunk seq per job is 1, 2, 3, ...;
 *   - job handles are never reused. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "session/agent.h"
#include "wire/codec.h"
#include "fuzz_input.h"

#define MAXJ 256

typedef struct jinfo {
    bool claimed, done;
    uint64_t seq;
} jinfo;

typedef struct world {
    jinfo j[MAXJ + 1];
    uint64_t max_handle;
    uint64_t vjob[64], vid[64];
    size_t nv;
    uint64_t running[16];
    size_t nrun;
    size_t acquired;
} world;

static const char *const IDS[] = {"a", "b", "c", "d"};

static void check(dvm_agent *a, world *w)
{
    dvm_agent_action x;
    while (dvm_agent_next_action(a, &x)) {
        if (x.act.type == DVM_PACT_SEND) {
            dvm_buf b;
            dvm_buf_init(&b, 0);
            if (dvm_msg_encode(&x.act.msg, &b) != DVM_OK)
                abort();
            dvm_buf_free(&b);
        }
        if (x.job == 0) {
            if (x.act.type != DVM_PACT_SEND || x.act.msg.type != DVM_MSG_ERROR)
                abort();
            continue;
        }
        if (x.job > MAXJ)
            return; /* beyond what we track */
        if (x.job > w->max_handle)
            w->max_handle = x.job;
        jinfo *j = &w->j[x.job];
        if (j->done)
            abort(); /* nothing after DONE */
        switch (x.act.type) {
        case DVM_PACT_SEND:
            if (x.act.msg.type == DVM_MSG_CHUNK) {
                if (x.act.msg.seq != j->seq + 1)
                    abort();
                j->seq++;
            }
            break;
        case DVM_PACT_VERIFY_TOKEN:
            if (w->nv < 64) {
                w->vjob[w->nv] = x.job;
                w->vid[w->nv++] = x.act.verify_id;
            }
            break;
        case DVM_PACT_START_GENERATION:
            if (w->nrun < 16)
                w->running[w->nrun++] = x.job;
            break;
        case DVM_PACT_CLAIM:
            if (j->claimed)
                abort();
            j->claimed = true;
            break;
        case DVM_PACT_DONE: j->done = true; break;
        default: break;
        }
    }
    if (dvm_agent_active(a) > dvm_agent_max_jobs(a))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rd r = {data, size, 0};
    dvm_agent_config cfg;
    dvm_agent_config_default(&cfg);
    cfg.max_jobs = 1 + u8(&r) % 4;
    cfg.provider.payment_timeout_ms = 500;
    cfg.provider.max_queued_chunks = 2;
    cfg.provider.max_output_bytes = 2048;
    cfg.provider.max_payments = 16;
    dvm_agent *a = dvm_agent_new(&cfg);
    if (!a)
        return 0;
    world *w = calloc(1, sizeof *w);
    uint64_t now = 0;
    for (int steps = 0; steps < 2048 && r.i < r.n; steps++) {
        uint8_t op = u8(&r);
        uint64_t conn = 1 + (op >> 5) % 3;
        dvm_msg m;
        memset(&m, 0, sizeof m);
        m.id = dvm_str_c(IDS[u8(&r) % 4]);
        switch (op % 12) {
        case 0:
            m.type = DVM_MSG_REQUEST;
            m.kind = 5100;
            m.input = slice(&r, 16);
            dvm_agent_handle_msg(a, conn, &m, now);
            break;
        case 1:
            m.type = DVM_MSG_PAYMENT;
            m.token = slice(&r, 24);
            dvm_agent_handle_msg(a, conn, &m, now);
            break;
        case 2:
            m.type = DVM_MSG_STOP;
            dvm_agent_handle_msg(a, conn, &m, now);
            break;
        case 3: { /* verification outcome */
            uint8_t which = u8(&r), kind = u8(&r);
            if (w->nv) {
                size_t k = which % w->nv;
                dvm_verify_result res;
                memset(&res, 0, sizeof res);
                res.outcome = (dvm_verify_outcome)(kind % 5);
                res.amount = kind >> 3;
                res.reason = dvm_str_c("nope");
                dvm_agent_on_verify(a, w->vjob[k], w->vid[k], &res, now);
                if (res.outcome <= DVM_VERIFY_REJECTED) {
                    w->vjob[k] = w->vjob[w->nv - 1];
                    w->vid[k] = w->vid[--w->nv];
                }
            }
            break;
        }
        case 4: { /* processor chunk for a running job */
            uint8_t which = u8(&r);
            dvm_str s = slice(&r, 16);
            if (w->nrun)
                dvm_agent_on_chunk(a, w->running[which % w->nrun], s.ptr, s.len, now);
            break;
        }
        case 5: {
            uint8_t which = u8(&r);
            if (w->nrun) {
                size_t k = which % w->nrun;
                if (u8(&r) & 1)
                    dvm_agent_on_generation_done(a, w->running[k], now);
                else
                    dvm_agent_on_generation_error(a, w->running[k], "oops", 4, now);
                w->running[k] = w->running[--w->nrun];
            }
            break;
        }
        case 6:
            now += (uint64_t)u8(&r) * 8;
            dvm_agent_on_timer(a, now);
            break;
        case 7: dvm_agent_connection_closed(a, conn, now); break;
        case 8: {
            dvm_str reason = slice(&r, 24);
            dvm_agent_handle_decode_error(a, conn, m.id, reason, now);
            break;
        }
        case 9:
            if (u8(&r) & 1) {
                if (dvm_agent_acquire(a) == DVM_OK)
                    w->acquired++;
            } else if (w->acquired) {
                if (dvm_agent_release(a) != DVM_OK)
                    abort();
                w->acquired--;
            }
            break;
        case 10:
            if (u8(&r) == 0x5a)
                dvm_agent_shutdown(a, now);
            break;
        case 11: /* a type the agent should never get */
            m.type = (dvm_msg_type)(u8(&r) % 12);
            dvm_agent_handle_msg(a, conn, &m, now);
            break;
        }
        check(a, w);
    }
    dvm_agent_free(a);
    free(w);
    return 0;
}
