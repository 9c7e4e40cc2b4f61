#include "cashu/wallet.h"
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

dvm_err dvm_wallet_total(const dvm_proof *proofs, size_t n, uint64_t *sats)
{
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++) {
        if (proofs[i].amount > DVM_CASHU_MAX_AMOUNT || s > DVM_CASHU_MAX_AMOUNT - proofs[i].amount)
            return DVM_ERR_LIMIT;
        s += proofs[i].amount;
    }
    *sats = s;
    return DVM_OK;
}

static uint64_t ppk_of(const dvm_keyset *keysets, size_t n_keysets, const dvm_proof *p, bool *ok)
{
    const dvm_keyset *ks = dvm_keyset_find(keysets, n_keysets, p->id);
    *ok = ks != NULL;
    return ks ? ks->input_fee_ppk : 0;
}

dvm_err dvm_wallet_select(const dvm_proof *proofs, size_t n, uint64_t amount,
                          const dvm_keyset *keysets, size_t n_keysets, bool *chosen,
                          uint64_t *sum, uint64_t *fee)
{
    for (size_t i = 0; i < n; i++)
        chosen[i] = false;
    uint64_t s = 0, ppk = 0;
    bool covered = false;
    /* Greedy, largest first (O(n^2) without allocation; wallets hold few
     * hundred proofs). */
    for (size_t round = 0; round < n && !covered; round++) {
        size_t best = n;
        for (size_t i = 0; i < n; i++)
            if (!chosen[i] && proofs[i].amount <= DVM_CASHU_MAX_AMOUNT &&
                (best == n || proofs[i].amount > proofs[best].amount))
                best = i;
        if (best == n)
            break;
        bool ok;
        uint64_t p = ppk_of(keysets, n_keysets, &proofs[best], &ok);
        if (!ok)
            return DVM_ERR_NOT_FOUND;
        if (s > DVM_CASHU_MAX_AMOUNT - proofs[best].amount)
            break;
        chosen[best] = true;
        s += proofs[best].amount;
        ppk += p;
        covered = s >= amount && s - amount >= dvm_cashu_fee_from_ppk(ppk);
    }
    if (!covered) {
        for (size_t i = 0; i < n; i++)
            chosen[i] = false;
        return DVM_ERR_LIMIT;
    }
    /* Drop chosen proofs that are not needed, smallest first. */
    for (size_t round = 0; round < n; round++) {
        size_t drop = n;
        for (size_t i = 0; i < n; i++) {
            if (!chosen[i])
                continue;
            bool ok;
            uint64_t p = ppk_of(keysets, n_keysets, &proofs[i], &ok);
            uint64_t s2 = s - proofs[i].amount, ppk2 = ppk - p;
            if (s2 >= amount && s2 - amount >= dvm_cashu_fee_from_ppk(ppk2) &&
                (drop == n || proofs[i].amount < proofs[drop].amount))
                drop = i;
        }
        if (drop == n)
            break;
        bool ok;
        chosen[drop] = false;
        s -= proofs[drop].amount;
        ppk -= ppk_of(keysets, n_keysets, &proofs[drop], &ok);
    }
    *sum = s;
    *fee = dvm_cashu_fee_from_ppk(ppk);
    return DVM_OK;
}

dvm_err dvm_wallet_plan(uint64_t total, uint64_t token_sats, size_t n_tokens,
                        uint64_t *amounts, size_t cap, size_t *n, size_t *per_token)
{
    *n = 0;
    *per_token = 0;
    if (n_tokens > 0 && token_sats == 0)
        return DVM_ERR_INVALID;
    if (n_tokens > 0 && token_sats > DVM_CASHU_MAX_AMOUNT / n_tokens)
        return DVM_ERR_LIMIT;
    uint64_t spend = token_sats * n_tokens;
    if (spend > total)
        return DVM_ERR_LIMIT;
    uint64_t split[64];
    size_t per = 0, k = 0;
    if (n_tokens) {
        dvm_cashu_amount_split(token_sats, split, &per);
        if (per > cap / n_tokens)
            return DVM_ERR_LIMIT;
        for (size_t t = 0; t < n_tokens; t++)
            for (size_t i = 0; i < per; i++)
                amounts[k++] = split[i];
    }
    size_t nc;
    dvm_cashu_amount_split(total - spend, split, &nc);
    if (nc > cap - k)
        return DVM_ERR_LIMIT;
    for (size_t i = 0; i < nc; i++)
        amounts[k++] = split[i];
    *n = k;
    *per_token = per;
    return DVM_OK;
}

dvm_err dvm_wallet_make_outputs(const dvm_cashu_ctx *ctx, const dvm_rng *rng,
                                const dvm_keyset *ks, const uint64_t *amounts, size_t n,
                                dvm_wallet_output *out)
{
    for (size_t i = 0; i < n; i++) {
        if (!dvm_keyset_key(ks, amounts[i]))
            return DVM_ERR_NOT_FOUND;
        dvm_wallet_output *o = &out[i];
        memset(o, 0, sizeof *o);
        dvm_cashu_secret_random(rng, o->secret);
        dvm_err e = dvm_cashu_scalar_random(ctx, rng, o->r);
        if (!e)
            e = dvm_cashu_blind(ctx, (const uint8_t *)o->secret, 64, o->r, o->msg.B_);
        if (e)
            return e;
        o->msg.amount = amounts[i];
        memcpy(o->msg.id, ks->id, sizeof o->msg.id);
    }
    return DVM_OK;
}

dvm_err dvm_wallet_unblind(const dvm_cashu_ctx *ctx, const dvm_keyset *ks,
                           const dvm_wallet_output *outs, const dvm_blind_signature *sigs,
                           size_t n, bool require_dleq, dvm_proof *proofs, char *reason,
                           size_t rlen)
{
    /* Check everything first so nothing is written on error. */
    for (size_t i = 0; i < n; i++) {
        const dvm_blind_signature *s = &sigs[i];
        if (s->amount != outs[i].msg.amount || strcmp(s->id, outs[i].msg.id) != 0 ||
            strcmp(s->id, ks->id) != 0)
            return dvm_fail_reason(DVM_ERR_PROTO, reason, rlen,
                       "signatures[%zu]: amount or keyset differs from output", i);
        const uint8_t *K = dvm_keyset_key(ks, s->amount);
        if (!K)
            return dvm_fail_reason(DVM_ERR_PROTO, reason, rlen, "signatures[%zu]: no key for amount", i);
        if (!s->has_dleq) {
            if (require_dleq)
                return dvm_fail_reason(DVM_ERR_CRYPTO, reason, rlen, "signatures[%zu]: no DLEQ proof", i);
        } else if (dvm_cashu_dleq_verify_blind(ctx, K, outs[i].msg.B_, s->C_, s->dleq.e,
                                               s->dleq.s) != DVM_OK) {
            return dvm_fail_reason(DVM_ERR_CRYPTO, reason, rlen, "signatures[%zu]: DLEQ does not verify",
                       i);
        }
        uint8_t C[DVM_POINT_BYTES];
        if (dvm_cashu_unblind(ctx, s->C_, outs[i].r, K, C) != DVM_OK)
            return dvm_fail_reason(DVM_ERR_CRYPTO, reason, rlen, "signatures[%zu]: bad C_", i);
    }
    for (size_t i = 0; i < n; i++) {
        const dvm_blind_signature *s = &sigs[i];
        dvm_proof *p = &proofs[i];
        memset(p, 0, sizeof *p);
        p->amount = s->amount;
        memcpy(p->id, s->id, sizeof p->id);
        memcpy(p->secret, outs[i].secret, 65);
        p->secret_len = 64;
        (void)dvm_cashu_unblind(ctx, s->C_, outs[i].r, dvm_keyset_key(ks, s->amount), p->C);
        if (s->has_dleq) {
            p->has_dleq = true;
            memcpy(p->dleq.e, s->dleq.e, 32);
            memcpy(p->dleq.s, s->dleq.s, 32);
            memcpy(p->dleq.r, outs[i].r, 32);
            p->dleq.has_r = true;
        }
    }
    return DVM_OK;
}

void dvm_wallet_swap_free(dvm_wallet_swap *sw)
{
    free(sw->inputs);
    free(sw->outputs);
    free(sw->messages);
    memset(sw, 0, sizeof *sw);
}

dvm_err dvm_wallet_swap_prepare(const dvm_cashu_ctx *ctx, const dvm_rng *rng,
                                const dvm_keyset *keysets, size_t n_keysets,
                                const dvm_keyset *active, const dvm_proof *inputs,
                                size_t n_inputs, uint64_t token_sats, size_t n_tokens,
                                dvm_wallet_swap *out, char *reason, size_t rlen)
{
    memset(out, 0, sizeof *out);
    if (n_inputs == 0)
        return dvm_fail_reason(DVM_ERR_INVALID, reason, rlen, "no inputs");
    uint64_t total, fee;
    if (dvm_wallet_total(inputs, n_inputs, &total) != DVM_OK)
        return dvm_fail_reason(DVM_ERR_LIMIT, reason, rlen, "inputs total over 2^53-1");
    if (dvm_keyset_fee(keysets, n_keysets, inputs, n_inputs, &fee) != DVM_OK)
        return dvm_fail_reason(DVM_ERR_NOT_FOUND, reason, rlen, "an input's keyset is not known");
    if (fee > total)
        return dvm_fail_reason(DVM_ERR_LIMIT, reason, rlen, "inputs %llu do not cover the fee %llu",
                   (unsigned long long)total, (unsigned long long)fee);
    uint64_t *amounts = malloc(DVM_WALLET_MAX_OUTPUTS * sizeof *amounts);
    if (!amounts)
        return DVM_ERR_NOMEM;
    size_t n = 0, per = 0;
    dvm_err e = dvm_wallet_plan(total - fee, token_sats, n_tokens, amounts,
                                DVM_WALLET_MAX_OUTPUTS, &n, &per);
    if (e) {
        free(amounts);
        return dvm_fail_reason(e, reason, rlen,
                   "inputs %llu - fee %llu cannot make %zu tokens of %llu sats (or too many "
                   "outputs)",
                   (unsigned long long)total, (unsigned long long)fee, n_tokens,
                   (unsigned long long)token_sats);
    }
    out->inputs = malloc(n_inputs * sizeof *out->inputs);
    out->outputs = n ? calloc(n, sizeof *out->outputs) : NULL;
    out->messages = n ? calloc(n, sizeof *out->messages) : NULL;
    if (!out->inputs || (n && (!out->outputs || !out->messages))) {
        free(amounts);
        dvm_wallet_swap_free(out);
        return DVM_ERR_NOMEM;
    }
    memcpy(out->inputs, inputs, n_inputs * sizeof *inputs);
    out->n_inputs = n_inputs;
    e = dvm_wallet_make_outputs(ctx, rng, active, amounts, n, out->outputs);
    free(amounts);
    if (e) {
        dvm_wallet_swap_free(out);
        return dvm_fail_reason(e, reason, rlen, "cannot build outputs in keyset %s", active->id);
    }
    for (size_t i = 0; i < n; i++)
        out->messages[i] = out->outputs[i].msg;
    out->n_outputs = n;
    out->n_tokens = n_tokens;
    out->per_token = per;
    out->token_sats = token_sats;
    out->change = total - fee - token_sats * n_tokens;
    out->fee = fee;
    return DVM_OK;
}

dvm_err dvm_wallet_swap_finish(const dvm_cashu_ctx *ctx, const dvm_keyset *active,
                               const dvm_wallet_swap *sw, const dvm_blind_signature *sigs,
                               size_t n_sigs, bool require_dleq, dvm_proof *proofs,
                               char *reason, size_t rlen)
{
    if (n_sigs != sw->n_outputs)
        return dvm_fail_reason(DVM_ERR_PROTO, reason, rlen, "%zu signatures for %zu outputs", n_sigs,
                   sw->n_outputs);
    return dvm_wallet_unblind(ctx, active, sw->outputs, sigs, n_sigs, require_dleq, proofs,
                              reason, rlen);
}

dvm_err dvm_wallet_make_token(const char *mint_url, const dvm_proof *proofs, size_t n,
                              dvm_token *out)
{
    memset(out, 0, sizeof *out);
    size_t ulen = mint_url ? strlen(mint_url) : 0;
    if (ulen == 0 || ulen > DVM_MINT_URL_MAX || n == 0 || n > DVM_TOKEN_MAX_PROOFS)
        return DVM_ERR_INVALID;
    out->proofs = malloc(n * sizeof *proofs);
    if (!out->proofs)
        return DVM_ERR_NOMEM;
    memcpy(out->proofs, proofs, n * sizeof *proofs);
    out->n_proofs = n;
    out->version = 4;
    memcpy(out->mint, mint_url, ulen + 1);
    strcpy(out->unit, "sat");
    out->has_unit = true;
    return DVM_OK;
}
