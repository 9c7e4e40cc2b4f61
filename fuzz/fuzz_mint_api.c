/* Fuzz harness: mint API request bodies into cashu/mint_json.h parsers and
 * the pure mint logic (cashu/mint.h) over an in-memory store.
 *
 * Input: byte 0 selects the endpoint (mod 6): 0 swap, 1 mint, 2 melt,
 * 3 checkstate, 4 mint quote, 5 melt quote; the rest is the JSON body.
 * Each input gets a fresh mint (seed 32 x 0x11, keys for 2^0..2^15, fee 0)
 * whose deterministic rng makes the first mint quote id and the first melt
 * quote id (for invoice FUZZ_INVOICE) the same every run, so corpus files
 * can name them (the seed corpus in fixtures/corpus/fuzz_mint_api/ does).
 *
 * Invariants (abort on violation): a successful swap balances
 * (inputs - fee == outputs), its signatures carry DLEQ proofs that verify
 * against the keyset, and replaying it fails with 11001; a successful mint
 * balances with its quote; every error has a NUT code and a detail. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cashu/mint.h"
#include "cashu/mint_json.h"
#include "cashu/mint_memstore.h"
#include "fuzz_input.h"

#define FUZZ_INVOICE "lnbc1000n1pfuzz"

static void check_error(const dvm_mint_error *err)
{
#ifdef FUZZ_DEBUG
    fprintf(stderr, "error %d: %s\n", err->code, err->detail);
#endif
    if (err->code == 0 || err->detail[0] == '\0')
        abort();
    json_t *j = dvm_mint_error_json(err);
    if (!j)
        abort();
    json_decref(j);
}

static void check_sigs(const dvm_mint *m, const dvm_blinded_message *outs,
                       const dvm_blind_signature *sigs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const dvm_keyset *ks = dvm_mint_keyset_by_id(m, sigs[i].id);
        if (!ks || !sigs[i].has_dleq || sigs[i].amount != outs[i].amount)
            abort();
        if (dvm_cashu_dleq_verify_blind(dvm_mint_ctx(m), dvm_keyset_key(ks, sigs[i].amount),
                                        outs[i].B_, sigs[i].C_, sigs[i].dleq.e,
                                        sigs[i].dleq.s) != DVM_OK)
            abort();
    }
#ifdef FUZZ_DEBUG
    fprintf(stderr, "ok: %zu signatures\n", n);
#endif
    json_t *j = dvm_mint_signatures_json(sigs, n);
    if (!j)
        abort();
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    prng p = {.s = 2024};
    dvm_rng rng = {.fill = prng_fill, .ctx = &p};
    dvm_mint_memstore *ms;
    if (dvm_mint_memstore_new(&ms, 1 << 16))
        return 0;
    dvm_mint_store st;
    dvm_mint_memstore_vtable(ms, &st);
    dvm_mint_config cfg;
    memset(&cfg, 0, sizeof cfg);
    memset(cfg.seed, 0x11, sizeof cfg.seed);
    cfg.max_order = 16;
    cfg.max_inputs = 64;
    cfg.max_outputs = 64;
    dvm_mint *m;
    if (dvm_mint_new(&m, &cfg, &st, &rng)) {
        dvm_mint_memstore_free(ms);
        return 0;
    }
    const uint64_t now = 1700000000000ULL;
    dvm_mint_error err;
    dvm_mint_quote mq;
    dvm_melt_quote lq;
    if (dvm_mint_create_mint_quote(m, 100, "sat", now, &mq, &err) ||
        dvm_mint_create_melt_quote(m, FUZZ_INVOICE, "sat", now, &lq, &err))
        abort();
    const dvm_cashu_ctx *ctx = dvm_mint_ctx(m);
    char reason[256];
    dvm_err e;
    switch (data[0] % 6) {
    case 0: {
        dvm_swap_request r;
        e = dvm_mint_parse_swap(ctx, body, len, 64, 64, &r, reason, sizeof reason);
        if (e) {
            if (!reason[0])
                abort();
            break;
        }
        dvm_blind_signature *sigs = calloc(r.n_outputs + 1, sizeof *sigs);
        if (!sigs)
            abort();
        e = dvm_mint_swap(m, r.inputs, r.n_inputs, r.outputs, r.n_outputs, sigs, &err);
        if (e) {
            check_error(&err);
        } else {
            uint64_t in = 0, out = 0, fee = 0;
            for (size_t i = 0; i < r.n_inputs; i++)
                in += r.inputs[i].amount;
            for (size_t i = 0; i < r.n_outputs; i++)
                out += r.outputs[i].amount;
            if (dvm_mint_fee(m, r.inputs, r.n_inputs, &fee, &err) || in - fee != out)
                abort();
            check_sigs(m, r.outputs, sigs, r.n_outputs);
            /* A replay of the same request never succeeds. */
            e = dvm_mint_swap(m, r.inputs, r.n_inputs, r.outputs, r.n_outputs, sigs, &err);
            if (e != DVM_ERR_SPENT || err.code != DVM_NUT_PROOFS_SPENT)
                abort();
        }
        free(sigs);
        dvm_swap_request_free(&r);
        break;
    }
    case 1: {
        dvm_mint_request r;
        e = dvm_mint_parse_mint(ctx, body, len, 64, &r, reason, sizeof reason);
        if (e)
            break;
        dvm_blind_signature *sigs = calloc(r.n_outputs + 1, sizeof *sigs);
        if (!sigs)
            abort();
        e = dvm_mint_mint(m, r.quote, r.outputs, r.n_outputs, now, sigs, &err);
        if (e) {
            check_error(&err);
        } else {
            uint64_t out = 0;
            for (size_t i = 0; i < r.n_outputs; i++)
                out += r.outputs[i].amount;
            if (out != mq.amount || strcmp(r.quote, mq.quote) != 0)
                abort();
            check_sigs(m, r.outputs, sigs, r.n_outputs);
            if (dvm_mint_mint(m, r.quote, r.outputs, r.n_outputs, now, sigs, &err) !=
                    DVM_ERR_PROTO ||
                err.code != DVM_NUT_QUOTE_ISSUED)
                abort();
        }
        free(sigs);
        dvm_mint_request_free(&r);
        break;
    }
    case 2: {
        dvm_melt_request r;
        e = dvm_mint_parse_melt(ctx, body, len, 64, 64, &r, reason, sizeof reason);
        if (e)
            break;
        dvm_melt_quote out;
        dvm_blind_signature *change = calloc(r.n_outputs + 1, sizeof *change);
        size_t nc = 0;
        if (!change)
            abort();
        e = dvm_mint_melt_with_change(m, r.quote, r.inputs, r.n_inputs, r.outputs, r.n_outputs,
                                      now, &out, change, &nc, &err);
        if (e) {
            check_error(&err);
        } else {
            uint64_t in = 0, back = 0, fee = 0;
            for (size_t i = 0; i < r.n_inputs; i++)
                in += r.inputs[i].amount;
            for (size_t i = 0; i < nc; i++)
                back += change[i].amount;
            if (dvm_mint_fee(m, r.inputs, r.n_inputs, &fee, &err) || nc > r.n_outputs ||
                in - fee < out.amount + back)
                abort(); /* change never exceeds the excess */
            json_t *j = dvm_melt_response_json(&out, change, nc);
            if (!j || out.state != DVM_MELT_QUOTE_PAID)
                abort();
            json_decref(j);
        }
        free(change);
        dvm_melt_request_free(&r);
        break;
    }
    case 3: {
        dvm_checkstate_request r;
        e = dvm_mint_parse_checkstate(ctx, body, len, 64, &r, reason, sizeof reason);
        if (e)
            break;
        dvm_proof_state *s = calloc(r.n + 1, sizeof *s);
        if (!s)
            abort();
        e = dvm_mint_checkstate(m, (const uint8_t(*)[DVM_POINT_BYTES])r.Ys, r.n, s, &err);
        if (e) {
            check_error(&err);
        } else {
            for (size_t i = 0; i < r.n; i++)
                if (s[i] != DVM_PROOF_UNSPENT)
                    abort(); /* nothing was spent in this fresh mint */
            json_t *j = dvm_mint_states_json((const uint8_t(*)[DVM_POINT_BYTES])r.Ys, s, r.n);
            if (!j)
                abort();
            json_decref(j);
        }
        free(s);
        dvm_checkstate_request_free(&r);
        break;
    }
    case 4: {
        dvm_quote_request r;
        if (dvm_mint_parse_mint_quote(body, len, &r, reason, sizeof reason))
            break;
        dvm_mint_quote q;
        if (dvm_mint_create_mint_quote(m, r.amount, r.unit, now, &q, &err)) {
            check_error(&err);
        } else {
            json_t *j = dvm_mint_quote_json(&q);
            if (!j || q.amount != r.amount)
                abort();
            json_decref(j);
        }
        break;
    }
    default: {
        dvm_quote_request r;
        if (dvm_mint_parse_melt_quote(body, len, &r, reason, sizeof reason))
            break;
        dvm_melt_quote q;
        if (dvm_mint_create_melt_quote(m, r.request, r.unit, now, &q, &err)) {
            check_error(&err);
        } else {
            json_t *j = dvm_melt_quote_json(&q);
            if (!j)
                abort();
            json_decref(j);
        }
        break;
    }
    }
    dvm_mint_free(m);
    dvm_mint_memstore_free(ms);
    return 0;
}
