/* Replay fixtures/transcripts/ (every .ndjson file) against the real framer + codec and
 * the session state machines, comparing the bytes we write with the file's
 * lines, byte for byte. Conventions: fixtures/transcripts/README.md. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session/agent.h"
#include "session/customer.h"
#include "wire/codec.h"
#include "wire/frame.h"

#define MAX_LINES 128
#define LINE_LIMIT 1024 /* framer limit for the transcripts (README) */

typedef struct tline {
    char *bytes; /* the line with its '\n' */
    size_t len;  /* including '\n' */
    bool decoded;
    dvm_msg_type type;
    bool from_customer;
    /* a few decoded fields kept (the decoder's scratch is reused) */
    char id[64];
    char text[512]; /* data / token / message / input */
    size_t text_len;
    uint64_t n1, n2;
    bool has_seq;
} tline;

typedef struct transcript {
    tline l[MAX_LINES];
    size_t n;
} transcript;

static void load(transcript *t, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "fixtures/transcripts/%s.ndjson", name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s (run from the repository root)", path);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    memset(t, 0, sizeof *t);
    dvm_msg_decoder d;
    dvm_msg_decoder_init(&d, 0);
    size_t s = 0;
    for (size_t i = 0; i < n; i++) {
        if (buf[i] != '\n')
            continue;
        cr_assert_lt(t->n, MAX_LINES);
        tline *x = &t->l[t->n++];
        x->len = i + 1 - s;
        x->bytes = malloc(x->len);
        memcpy(x->bytes, buf + s, x->len);
        dvm_msg m;
        x->decoded = x->len - 1 <= LINE_LIMIT &&
                     dvm_msg_decode(&d, x->bytes, x->len - 1, &m, NULL, 0) == DVM_OK;
        if (x->decoded) {
            x->type = m.type;
            x->from_customer = m.type == DVM_MSG_REQUEST || m.type == DVM_MSG_PAYMENT ||
                               m.type == DVM_MSG_STOP;
            snprintf(x->id, sizeof x->id, "%.*s", (int)m.id.len, m.id.ptr ? m.id.ptr : "");
            dvm_str s1 = m.type == DVM_MSG_CHUNK     ? m.data
                         : m.type == DVM_MSG_PAYMENT ? m.token
                         : m.type == DVM_MSG_ERROR   ? m.message
                         : m.type == DVM_MSG_REQUEST ? m.input
                                                     : (dvm_str){NULL, 0};
            cr_assert_lt(s1.len, sizeof x->text);
            if (s1.len)
                memcpy(x->text, s1.ptr, s1.len);
            x->text_len = s1.len;
            x->n1 = m.type == DVM_MSG_OFFER ? m.sats_per_chunk
                    : m.type == DVM_MSG_PAYMENT_ACK ? m.amount
                    : m.type == DVM_MSG_REQUEST ? m.kind : 0;
            x->n2 = m.type == DVM_MSG_OFFER ? m.chunks_per_payment
                    : m.type == DVM_MSG_REQUEST ? m.budget : 0;
            x->has_seq = m.type == DVM_MSG_CHUNK && m.has_seq;
        } else {
            x->from_customer = true; /* a malformed line always is */
        }
        s = i + 1;
    }
    cr_assert_eq(s, n, "%s: last line lacks its newline", name);
    dvm_msg_decoder_free(&d);
}

static void unload(transcript *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->l[i].bytes);
}

/* FIFO of encoded lines we sent. */
typedef struct outq {
    dvm_buf lines[MAX_LINES * 2];
    size_t head, tail;
} outq;

static void outq_put(outq *q, const dvm_msg *m)
{
    cr_assert_lt(q->tail, MAX_LINES * 2);
    dvm_buf *b = &q->lines[q->tail++];
    dvm_buf_init(b, 0);
    cr_assert_eq(dvm_msg_encode(m, b), DVM_OK, "encode %s", dvm_msg_type_name(m->type));
}

static void outq_free(outq *q)
{
    for (size_t i = 0; i < q->tail; i++)
        dvm_buf_free(&q->lines[i]);
}

static void expect_line(const char *name, outq *q, const tline *want, size_t k)
{
    cr_assert_lt(q->head, q->tail, "%s line %zu: we sent nothing, file has %.*s", name, k + 1,
                 (int)want->len - 1, want->bytes);
    dvm_buf *b = &q->lines[q->head++];
    cr_assert(b->len == want->len && memcmp(b->data, want->bytes, b->len) == 0,
              "%s line %zu:\n want %.*s\n  got %.*s", name, k + 1, (int)want->len - 1, want->bytes,
              (int)b->len - 1, (const char *)b->data);
}

/* ---- provider side ---------------------------------------------------- */

typedef struct pstate {
    dvm_agent *a;
    outq q;
    uint64_t job;      /* job whose processor runs */
    uint64_t deadline; /* earliest timer */
    uint64_t vjob[32], vid[32];
    size_t nv;
} pstate;

static void pdrain(pstate *s)
{
    dvm_agent_action x;
    while (dvm_agent_next_action(s->a, &x)) {
        switch (x.act.type) {
        case DVM_PACT_SEND: outq_put(&s->q, &x.act.msg); break;
        case DVM_PACT_VERIFY_TOKEN:
            s->vjob[s->nv] = x.job;
            s->vid[s->nv++] = x.act.verify_id;
            break;
        case DVM_PACT_START_GENERATION: s->job = x.job; break;
        default: break;
        }
    }
}

/* The fake verifier: the outcome the file shows next. */
static void answer_verifies(pstate *s, const transcript *t, size_t k, uint64_t now)
{
    for (size_t i = 0; i < s->nv; i++) {
        dvm_verify_result r;
        memset(&r, 0, sizeof r);
        r.outcome = DVM_VERIFY_REJECTED;
        r.reason = dvm_str_c("no payment_ack in the transcript");
        for (size_t j = k + 1; j < t->n; j++) {
            const tline *x = &t->l[j];
            if (x->decoded && x->type == DVM_MSG_PAYMENT_ACK) {
                r.outcome = DVM_VERIFY_OK;
                r.amount = x->n1;
                break;
            }
            if (x->decoded && x->type == DVM_MSG_ERROR && x->text_len > 16 &&
                memcmp(x->text, "Payment failed: ", 16) == 0) {
                r.reason.ptr = x->text + 16;
                r.reason.len = x->text_len - 16;
                break;
            }
        }
        cr_assert_eq(dvm_agent_on_verify(s->a, s->vjob[i], s->vid[i], &r, now), DVM_OK);
    }
    s->nv = 0;
    pdrain(s);
}

static void replay_provider(const char *name)
{
    transcript *t = malloc(sizeof *t);
    load(t, name);
    dvm_agent_config cfg;
    dvm_agent_config_default(&cfg);
    cfg.max_jobs = 1;
    cfg.provider.send_seq = false;
    for (size_t i = 0; i < t->n; i++) {
        if (t->l[i].decoded && t->l[i].type == DVM_MSG_OFFER) {
            cfg.provider.sats_per_chunk = t->l[i].n1;
            cfg.provider.chunks_per_payment = t->l[i].n2;
        }
        if (t->l[i].has_seq)
            cfg.provider.send_seq = true;
    }
    pstate *s = calloc(1, sizeof *s);
    s->a = dvm_agent_new(&cfg);
    cr_assert_not_null(s->a);
    dvm_framer fr;
    dvm_framer_init(&fr, LINE_LIMIT);
    dvm_msg_decoder dec;
    dvm_msg_decoder_init(&dec, LINE_LIMIT);
    uint64_t now = 1000;
    for (size_t k = 0; k < t->n; k++, now += 10) {
        const tline *x = &t->l[k];
        if (x->from_customer) {
            cr_assert_eq(dvm_framer_push(&fr, x->bytes, x->len), DVM_OK);
            for (;;) {
                const uint8_t *line;
                size_t len;
                dvm_err e = dvm_framer_next(&fr, &line, &len);
                if (e == DVM_ERR_AGAIN)
                    break;
                if (e == DVM_ERR_TOO_LARGE) {
                    dvm_agent_handle_decode_error(s->a, 1, dvm_str_c(""),
                                                  dvm_str_c(DVM_FRAME_TOO_LARGE_REASON), now);
                    continue;
                }
                cr_assert_eq(e, DVM_OK);
                dvm_msg m;
                char reason[DVM_REASON_MAX];
                if (dvm_msg_decode(&dec, line, len, &m, reason, sizeof reason) == DVM_OK)
                    dvm_agent_handle_msg(s->a, 1, &m, now);
                else /* the decoder keeps the id of a JSON object it refused */
                    dvm_agent_handle_decode_error(s->a, 1, m.id, dvm_str_c(reason), now);
            }
            pdrain(s);
            answer_verifies(s, t, k, now);
            continue;
        }
        /* A provider line: make the agent produce it if it has not yet. */
        for (int tries = 0; tries < 2 && s->q.head == s->q.tail; tries++) {
            switch (x->type) {
            case DVM_MSG_CHUNK:
                dvm_agent_on_chunk(s->a, s->job, x->text, x->text_len, now);
                break;
            case DVM_MSG_PAY_REQUIRED: {
                /* the processor's next chunk is what the provider holds;
                 * the file shows it after the payment (or never) */
                const char *d = "(never sent)";
                size_t dl = 12;
                for (size_t j = k + 1; j < t->n; j++)
                    if (t->l[j].decoded && t->l[j].type == DVM_MSG_CHUNK) {
                        d = t->l[j].text;
                        dl = t->l[j].text_len;
                        break;
                    }
                dvm_agent_on_chunk(s->a, s->job, d, dl, now);
                break;
            }
            case DVM_MSG_RESULT: dvm_agent_on_generation_done(s->a, s->job, now); break;
            case DVM_MSG_ERROR:
                if (dvm_agent_deadline(s->a) != UINT64_MAX) {
                    now = dvm_agent_deadline(s->a);
                    dvm_agent_on_timer(s->a, now);
                }
                break;
            default: break;
            }
            pdrain(s);
        }
        expect_line(name, &s->q, x, k);
    }
    cr_assert_eq(s->q.head, s->q.tail, "%s: we sent more than the file has", name);
    dvm_framer_free(&fr);
    dvm_msg_decoder_free(&dec);
    outq_free(&s->q);
    dvm_agent_free(s->a);
    free(s);
    unload(t);
    free(t);
}

Test(transcripts, provider_full_flow) { replay_provider("full_flow"); }
Test(transcripts, provider_early_stop) { replay_provider("early_stop"); }
Test(transcripts, provider_first_payment_timeout) { replay_provider("first_payment_timeout"); }
Test(transcripts, provider_budget_exhausted) { replay_provider("budget_exhausted"); }
Test(transcripts, provider_price_too_high) { replay_provider("price_too_high"); }
Test(transcripts, provider_no_capacity) { replay_provider("no_capacity"); }
Test(transcripts, provider_bad_json_midstream) { replay_provider("bad_json_midstream"); }
Test(transcripts, provider_oversize_line) { replay_provider("oversize_line"); }
Test(transcripts, provider_unknown_type) { replay_provider("unknown_type"); }
Test(transcripts, provider_payment_missing_token) { replay_provider("payment_missing_token"); }

/* ---- customer side ---------------------------------------------------- */

static void replay_customer(const char *name, dvm_customer_status want_status)
{
    transcript *t = malloc(sizeof *t);
    load(t, name);
    cr_assert(t->l[0].decoded && t->l[0].type == DVM_MSG_REQUEST);
    dvm_customer *c = dvm_customer_new(NULL, NULL);
    outq *q = calloc(1, sizeof *q);
    uint64_t now = 1000, token_req = 0;
    dvm_msg_decoder dec;
    dvm_msg_decoder_init(&dec, 0);
    cr_assert_eq(dvm_customer_start(c, dvm_str_c(t->l[0].id), t->l[0].n1,
                                    (dvm_str){t->l[0].text, t->l[0].text_len}, t->l[0].n2, now),
                 DVM_OK);
    for (size_t k = 0; k < t->n; k++, now += 10) {
        const tline *x = &t->l[k];
        dvm_customer_action a;
        if (x->from_customer) {
            if (q->head == q->tail) {
                if (x->type == DVM_MSG_PAYMENT && token_req)
                    dvm_customer_on_token(c, token_req, (dvm_str){x->text, x->text_len}, now);
                else if (x->type == DVM_MSG_STOP)
                    dvm_customer_stop(c, now); /* the embedder stops */
                token_req = x->type == DVM_MSG_PAYMENT ? 0 : token_req;
            }
            while (dvm_customer_next_action(c, &a)) {
                if (a.type == DVM_CACT_SEND)
                    outq_put(q, &a.msg);
                if (a.type == DVM_CACT_NEED_TOKEN)
                    token_req = a.token_req;
            }
            expect_line(name, q, x, k);
            continue;
        }
        dvm_msg m;
        cr_assert_eq(dvm_msg_decode(&dec, x->bytes, x->len - 1, &m, NULL, 0), DVM_OK);
        dvm_customer_handle_msg(c, &m, now);
        while (dvm_customer_next_action(c, &a)) {
            if (a.type == DVM_CACT_SEND)
                outq_put(q, &a.msg);
            if (a.type == DVM_CACT_NEED_TOKEN)
                token_req = a.token_req;
        }
    }
    cr_assert_eq(q->head, q->tail, "%s: the customer sent more than the file has", name);
    cr_assert_eq(dvm_customer_status_of(c), want_status, "%s: status %s (%s)", name,
                 dvm_customer_status_name(dvm_customer_status_of(c)), dvm_customer_reason(c));
    dvm_msg_decoder_free(&dec);
    outq_free(q);
    free(q);
    dvm_customer_free(c);
    unload(t);
    free(t);
}

Test(transcripts, customer_full_flow) { replay_customer("full_flow", DVM_CUSTOMER_OK); }
Test(transcripts, customer_early_stop) { replay_customer("early_stop", DVM_CUSTOMER_STOPPED); }
Test(transcripts, customer_first_payment_timeout)
{
    replay_customer("first_payment_timeout", DVM_CUSTOMER_PROVIDER_ERROR);
}
Test(transcripts, customer_budget_exhausted)
{
    replay_customer("budget_exhausted", DVM_CUSTOMER_BUDGET_EXHAUSTED);
}
Test(transcripts, customer_price_too_high)
{
    replay_customer("price_too_high", DVM_CUSTOMER_PRICE_TOO_HIGH);
}

/* The in-memory pair, encoded through the codec, reproduces full_flow's
 * customer and provider bytes end to end is covered by the two replays
 * above; here: every transcript line we can decode re-encodes to itself. */
Test(transcripts, every_decodable_line_reencodes_byte_for_byte)
{
    const char *names[] = {"full_flow", "early_stop", "first_payment_timeout", "budget_exhausted",
                           "price_too_high", "no_capacity", "bad_json_midstream", "oversize_line",
                           "unknown_type", "payment_missing_token"};
    dvm_msg_decoder dec;
    dvm_msg_decoder_init(&dec, 0);
    for (size_t f = 0; f < sizeof names / sizeof names[0]; f++) {
        transcript *t = malloc(sizeof *t);
        load(t, names[f]);
        size_t decoded = 0;
        for (size_t k = 0; k < t->n; k++) {
            dvm_msg m;
            if (dvm_msg_decode(&dec, t->l[k].bytes, t->l[k].len - 1, &m, NULL, 0) != DVM_OK)
                continue;
            decoded++;
            dvm_buf b;
            dvm_buf_init(&b, 0);
            cr_assert_eq(dvm_msg_encode(&m, &b), DVM_OK);
            cr_assert(b.len == t->l[k].len && memcmp(b.data, t->l[k].bytes, b.len) == 0,
                      "%s line %zu", names[f], k + 1);
            dvm_buf_free(&b);
        }
        cr_assert_gt(decoded, 2);
        unload(t);
        free(t);
    }
    dvm_msg_decoder_free(&dec);
}
