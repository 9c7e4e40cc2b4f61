/* dvmstream simulator — the payment seam over core/cashu (see pay.h).
 *
 * Everything Cashu here is core/cashu: the mint logic (cashu/mint.h) over
 * its in-memory store (cashu/mint_memstore.h), the wallet logic
 * (cashu/wallet.h), the provider payment policy (cashu/policy.h) and the
 * token codec (cashu/token.h). This file only keeps the simulator's books:
 * which customer holds which proofs, which tokens were handed out, what
 * each provider claimed. */
#include "pay.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cashu/crypto.h"
#include "cashu/keyset.h"
#include "cashu/mint.h"
#include "cashu/mint_memstore.h"
#include "cashu/policy.h"
#include "cashu/token.h"
#include "cashu/wallet.h"
#include "rng.h"

#define HONEST_URL "http://mint.sim.invalid"
#define EVIL_URL "http://untrusted-mint.sim.invalid"

/* A proof in compact form (a dvm_proof is ~700 bytes; wallets hold
 * millions of proofs in the large scenario). Secrets are the 64-hex
 * secrets the wallet logic makes. */
typedef struct cproof {
    uint64_t amount;
    char secret[65];
    uint8_t C[DVM_POINT_BYTES];
    uint8_t e[32], s[32], r[32];
    uint8_t has_dleq;
} cproof;

/* A coin: proofs that travel together (one micro-token, or loose change). */
typedef struct coin {
    uint64_t amount;
    uint8_t mint; /* 0 honest, 1 untrusted */
    uint16_t n;
    cproof *p;
} coin;

typedef struct wallet {
    coin *c;
    uint32_t n, cap;
} wallet;

typedef struct mockmint {
    dvm_mint *m;
    dvm_mint_memstore *store;
    dvm_mint_store vt;
    dvm_keyset ks; /* active keyset (copy) */
    const char *url;
} mockmint;

/* token registry: tokens of the honest mint handed out by wallets */
typedef struct reg_entry {
    uint64_t key;   /* 0 = empty slot */
    uint32_t off;   /* into reg_ys: records of (u64 amount, Y[33]) */
    uint16_t n;
    uint8_t returned;
} reg_entry;

struct sim_pay {
    dvm_cashu_ctx *ctx;
    sim_rng rng; /* mint-side randomness (quote ids, DLEQ nonces are deterministic) */
    dvm_rng drng;
    mockmint mint[2];
    wallet *wallets;
    size_t n_customers;
    dvm_pay_policy **policies;
    uint64_t *provider_sats;
    size_t n_providers;
    uint64_t now_ms;
    uint64_t minted, fees;
    reg_entry *reg;
    size_t reg_cap, reg_len;
    dvm_buf reg_ys;
    char reason[256];
    /* scratch */
    dvm_proof *tmp_proofs;
    size_t tmp_cap;
    dvm_buf enc;
};

static uint64_t str_key(const char *p, size_t n)
{
    uint8_t h[32];
    crypto_hash_sha256(h, (const unsigned char *)p, n);
    uint64_t k = 0;
    for (int i = 0; i < 8; i++)
        k = k << 8 | h[i];
    return k ? k : 1;
}

static dvm_err mint_init(sim_pay *p, mockmint *mm, uint64_t seed, uint64_t fee_ppk, const char *url)
{
    dvm_err e = dvm_mint_memstore_new(&mm->store, 0);
    if (e)
        return e;
    dvm_mint_memstore_vtable(mm->store, &mm->vt);
    dvm_mint_config cfg;
    memset(&cfg, 0, sizeof cfg);
    sim_rng r;
    sim_rng_seed_stream(&r, seed, 0x6d696e74ULL);
    sim_rng_fill(&r, cfg.seed, sizeof cfg.seed);
    cfg.n_keysets = 1;
    cfg.max_order = 40;
    cfg.input_fee_ppk = fee_ppk;
    e = dvm_mint_new(&mm->m, &cfg, &mm->vt, &p->drng);
    if (e)
        return e;
    const dvm_keyset *ks = dvm_mint_active_keyset(mm->m, "sat");
    if (!ks)
        return DVM_ERR_STATE;
    mm->ks = *ks;
    mm->url = url;
    return DVM_OK;
}

dvm_err sim_pay_new(sim_pay **out, uint64_t seed, uint64_t input_fee_ppk, size_t n_customers,
                    size_t n_providers, uint64_t max_unclaimed_sats)
{
    sim_pay *p = calloc(1, sizeof *p);
    if (!p)
        return DVM_ERR_NOMEM;
    *out = p;
    sim_rng_seed_stream(&p->rng, seed, 0x706179ULL);
    p->drng = sim_rng_as_dvm(&p->rng);
    dvm_buf_init(&p->reg_ys, (size_t)1 << 40);
    dvm_buf_init(&p->enc, 0);
    dvm_err e = dvm_cashu_ctx_new(&p->ctx, &p->drng);
    if (e)
        return e;
    if ((e = mint_init(p, &p->mint[0], seed, input_fee_ppk, HONEST_URL)) ||
        (e = mint_init(p, &p->mint[1], seed ^ 0xbadULL, input_fee_ppk, EVIL_URL)))
        return e;
    p->n_customers = n_customers;
    p->wallets = calloc(n_customers ? n_customers : 1, sizeof *p->wallets);
    p->n_providers = n_providers;
    p->policies = calloc(n_providers ? n_providers : 1, sizeof *p->policies);
    p->provider_sats = calloc(n_providers ? n_providers : 1, sizeof *p->provider_sats);
    if (!p->wallets || !p->policies || !p->provider_sats)
        return DVM_ERR_NOMEM;
    const char *trusted[1] = {HONEST_URL};
    dvm_pay_policy_config pc = {.trusted_mints = trusted, .n_trusted = 1,
                                .max_unclaimed_sats = max_unclaimed_sats, .replay_capacity = 4096};
    for (size_t i = 0; i < n_providers; i++) {
        /* one crypto context shared by every policy (10,000 in the large scenario) */
        if ((e = dvm_pay_policy_new_with_ctx(&p->policies[i], &pc, p->ctx)))
            return e;
        /* the provider fetched the mint's keys (NUT-01) at start */
        if ((e = dvm_pay_policy_add_keyset(p->policies[i], HONEST_URL, &p->mint[0].ks)))
            return e;
    }
    return DVM_OK;
}

static void wallet_free(wallet *w)
{
    for (uint32_t i = 0; i < w->n; i++)
        free(w->c[i].p);
    free(w->c);
}

void sim_pay_free(sim_pay *p)
{
    if (!p)
        return;
    if (p->wallets)
        for (size_t i = 0; i < p->n_customers; i++)
            wallet_free(&p->wallets[i]);
    free(p->wallets);
    if (p->policies)
        for (size_t i = 0; i < p->n_providers; i++)
            dvm_pay_policy_free(p->policies[i]);
    free(p->policies);
    free(p->provider_sats);
    for (int i = 0; i < 2; i++) {
        dvm_mint_free(p->mint[i].m);
        dvm_mint_memstore_free(p->mint[i].store);
    }
    dvm_cashu_ctx_free(p->ctx);
    free(p->reg);
    dvm_buf_free(&p->reg_ys);
    dvm_buf_free(&p->enc);
    free(p->tmp_proofs);
    free(p);
}

const char *sim_pay_mint_url(const sim_pay *p)
{
    (void)p;
    return HONEST_URL;
}

void sim_pay_set_now(sim_pay *p, uint64_t now_ms) { p->now_ms = now_ms; }

/* ---- conversions ---------------------------------------------------------- */

static void to_proof(const mockmint *mm, const cproof *c, dvm_proof *out)
{
    memset(out, 0, sizeof *out);
    out->amount = c->amount;
    memcpy(out->id, mm->ks.id, sizeof out->id);
    memcpy(out->secret, c->secret, 65);
    out->secret_len = strlen(c->secret);
    memcpy(out->C, c->C, DVM_POINT_BYTES);
    out->has_dleq = c->has_dleq;
    if (c->has_dleq) {
        memcpy(out->dleq.e, c->e, 32);
        memcpy(out->dleq.s, c->s, 32);
        memcpy(out->dleq.r, c->r, 32);
        out->dleq.has_r = true;
    }
}

static int from_proof(const dvm_proof *in, cproof *c)
{
    if (in->secret_len > 64)
        return -1;
    memset(c, 0, sizeof *c);
    c->amount = in->amount;
    memcpy(c->secret, in->secret, in->secret_len);
    memcpy(c->C, in->C, DVM_POINT_BYTES);
    c->has_dleq = in->has_dleq && in->dleq.has_r;
    if (c->has_dleq) {
        memcpy(c->e, in->dleq.e, 32);
        memcpy(c->s, in->dleq.s, 32);
        memcpy(c->r, in->dleq.r, 32);
    }
    return 0;
}

static dvm_err tmp_reserve(sim_pay *p, size_t n)
{
    if (n <= p->tmp_cap)
        return DVM_OK;
    dvm_proof *t = realloc(p->tmp_proofs, n * sizeof *t);
    if (!t)
        return DVM_ERR_NOMEM;
    p->tmp_proofs = t;
    p->tmp_cap = n;
    return DVM_OK;
}

static dvm_err wallet_add(wallet *w, const dvm_proof *proofs, size_t n, uint8_t mint)
{
    if (w->n == w->cap) {
        uint32_t cap = w->cap ? w->cap * 2 : 4;
        coin *c = realloc(w->c, cap * sizeof *c);
        if (!c)
            return DVM_ERR_NOMEM;
        w->c = c;
        w->cap = cap;
    }
    coin *c = &w->c[w->n];
    c->p = calloc(n ? n : 1, sizeof *c->p);
    if (!c->p)
        return DVM_ERR_NOMEM;
    c->n = (uint16_t)n;
    c->mint = mint;
    c->amount = 0;
    for (size_t i = 0; i < n; i++) {
        if (from_proof(&proofs[i], &c->p[i])) {
            free(c->p);
            return DVM_ERR_INVALID;
        }
        c->amount += proofs[i].amount;
    }
    w->n++;
    return DVM_OK;
}

static void wallet_remove(wallet *w, uint32_t i)
{
    free(w->c[i].p);
    w->c[i] = w->c[--w->n]; /* order does not matter: choices scan all */
}

/* ---- customers ---------------------------------------------------------- */

dvm_err sim_pay_mint(sim_pay *p, size_t c, uint64_t amount, bool untrusted, const dvm_rng *rng)
{
    mockmint *mm = &p->mint[untrusted ? 1 : 0];
    dvm_mint_error me;
    dvm_mint_quote q;
    dvm_err e = dvm_mint_create_mint_quote(mm->m, amount, "sat", p->now_ms, &q, &me);
    if (e)
        return e;
    uint64_t amounts[64];
    size_t n = 0, per = 0;
    if ((e = dvm_wallet_plan(amount, 0, 0, amounts, 64, &n, &per)))
        return e;
    dvm_wallet_output outs[64];
    dvm_blinded_message msgs[64];
    dvm_blind_signature sigs[64];
    if ((e = dvm_wallet_make_outputs(p->ctx, rng, &mm->ks, amounts, n, outs)))
        return e;
    for (size_t i = 0; i < n; i++)
        msgs[i] = outs[i].msg;
    if ((e = dvm_mint_mint(mm->m, q.quote, msgs, n, p->now_ms, sigs, &me)))
        return e;
    if ((e = tmp_reserve(p, n)))
        return e;
    if ((e = dvm_wallet_unblind(p->ctx, &mm->ks, outs, sigs, n, true, p->tmp_proofs, p->reason,
                                sizeof p->reason)))
        return e;
    if ((e = wallet_add(&p->wallets[c], p->tmp_proofs, n, untrusted ? 1 : 0)))
        return e;
    if (!untrusted)
        p->minted += amount;
    return DVM_OK;
}

static dvm_err reg_put(sim_pay *p, uint64_t key, const mockmint *mm, const cproof *ps, size_t n)
{
    if (p->reg_len * 2 >= p->reg_cap) {
        size_t cap = p->reg_cap ? p->reg_cap * 2 : 4096;
        reg_entry *t = calloc(cap, sizeof *t);
        if (!t)
            return DVM_ERR_NOMEM;
        for (size_t i = 0; i < p->reg_cap; i++) {
            if (!p->reg[i].key)
                continue;
            size_t k = p->reg[i].key & (cap - 1);
            while (t[k].key)
                k = (k + 1) & (cap - 1);
            t[k] = p->reg[i];
        }
        free(p->reg);
        p->reg = t;
        p->reg_cap = cap;
    }
    size_t k = key & (p->reg_cap - 1);
    while (p->reg[k].key && p->reg[k].key != key)
        k = (k + 1) & (p->reg_cap - 1);
    if (p->reg[k].key) {
        p->reg[k].returned = 0; /* handed out again */
        return DVM_OK;
    }
    reg_entry *r = &p->reg[k];
    r->key = key;
    r->off = (uint32_t)p->reg_ys.len;
    r->n = (uint16_t)n;
    p->reg_len++;
    for (size_t i = 0; i < n; i++) {
        dvm_proof pr;
        to_proof(mm, &ps[i], &pr);
        uint8_t Y[DVM_POINT_BYTES];
        dvm_err e = dvm_cashu_proof_Y(p->ctx, &pr, Y);
        if (e)
            return e;
        if ((e = dvm_buf_append(&p->reg_ys, &ps[i].amount, 8)) ||
            (e = dvm_buf_append(&p->reg_ys, Y, DVM_POINT_BYTES)))
            return e;
    }
    return DVM_OK;
}

static reg_entry *reg_get(sim_pay *p, uint64_t key)
{
    if (!p->reg_cap)
        return NULL;
    size_t k = key & (p->reg_cap - 1);
    while (p->reg[k].key && p->reg[k].key != key)
        k = (k + 1) & (p->reg_cap - 1);
    return p->reg[k].key ? &p->reg[k] : NULL;
}

static dvm_err encode_coin(sim_pay *p, const mockmint *mm, const cproof *ps, size_t n, dvm_buf *out)
{
    dvm_err e = tmp_reserve(p, n);
    if (e)
        return e;
    for (size_t i = 0; i < n; i++)
        to_proof(mm, &ps[i], &p->tmp_proofs[i]);
    dvm_token t;
    memset(&t, 0, sizeof t);
    t.version = 4;
    snprintf(t.mint, sizeof t.mint, "%s", mm->url);
    snprintf(t.unit, sizeof t.unit, "sat");
    t.proofs = p->tmp_proofs;
    t.n_proofs = n;
    dvm_buf_reset(out);
    return dvm_token_encode(&t, 4, out);
}

/* Micro-tokens made per swap: a job's next few payments (the seed's
 * splitTokens makes all of them at once; fewer outputs cost fewer
 * signatures when the job ends early). */
#define SPLIT_BATCH 4

static int cmp_coin_desc(const void *a, const void *b)
{
    const coin *x = a, *y = b;
    return x->amount > y->amount ? -1 : x->amount < y->amount;
}

/* Swap coins of `mint` in wallet w into up to SPLIT_BATCH micro-tokens of
 * `amount` plus change (NUT-03 through the mint logic and the wallet
 * logic). Coins are taken largest first until they cover the tokens and
 * the NUT-02 input fee. */
static dvm_err wallet_split(sim_pay *p, wallet *w, uint8_t mint, uint64_t amount, const dvm_rng *rng)
{
    mockmint *mm = &p->mint[mint];
    uint64_t have = 0;
    for (uint32_t i = 0; i < w->n; i++)
        if (w->c[i].mint == mint)
            have += w->c[i].amount;
    uint64_t want_tok = have / amount < SPLIT_BATCH ? have / amount : SPLIT_BATCH;
    if (!want_tok)
        return DVM_ERR_LIMIT;
    /* coins largest first (sorted in place: wallet order carries no meaning) */
    qsort(w->c, w->n, sizeof *w->c, cmp_coin_desc);
    size_t n_in = 0;
    uint64_t total = 0;
    for (uint32_t i = 0; i < w->n; i++) {
        if (w->c[i].mint != mint)
            continue;
        uint64_t fee = dvm_cashu_fee_from_ppk(mm->ks.input_fee_ppk * n_in);
        if (n_in && total >= want_tok * amount + fee)
            break;
        w->c[i].mint |= 0x80; /* chosen */
        n_in += w->c[i].n;
        total += w->c[i].amount;
    }
    dvm_proof *ins = calloc(n_in, sizeof *ins);
    if (!ins)
        return DVM_ERR_NOMEM;
    size_t k = 0;
    for (uint32_t i = 0; i < w->n; i++)
        if (w->c[i].mint == (mint | 0x80))
            for (uint16_t j = 0; j < w->c[i].n; j++)
                to_proof(mm, &w->c[i].p[j], &ins[k++]);
    uint64_t fee = dvm_cashu_fee_from_ppk(mm->ks.input_fee_ppk * n_in);
    uint64_t per = (uint64_t)__builtin_popcountll(amount);
    uint64_t n_tok = total > fee ? (total - fee) / amount : 0;
    uint64_t max_tok = (DVM_WALLET_MAX_OUTPUTS - 64) / (per ? per : 1);
    if (n_tok > max_tok)
        n_tok = max_tok;
    if (n_tok > want_tok)
        n_tok = want_tok;
    dvm_err e = DVM_ERR_LIMIT;
    dvm_wallet_swap sw;
    memset(&sw, 0, sizeof sw);
    dvm_blind_signature *sigs = NULL;
    dvm_proof *outp = NULL;
    dvm_mint_error me;
    if (!n_tok)
        goto done;
    e = dvm_wallet_swap_prepare(p->ctx, rng, &mm->ks, 1, &mm->ks, ins, n_in, amount, (size_t)n_tok, &sw,
                                p->reason, sizeof p->reason);
    if (e)
        goto done;
    sigs = calloc(sw.n_outputs, sizeof *sigs);
    outp = calloc(sw.n_outputs, sizeof *outp);
    if (!sigs || !outp) {
        e = DVM_ERR_NOMEM;
        goto done;
    }
    e = dvm_mint_swap(mm->m, sw.inputs, sw.n_inputs, sw.messages, sw.n_outputs, sigs, &me);
    if (e) {
        snprintf(p->reason, sizeof p->reason, "swap: %s", me.detail);
        goto done;
    }
    e = dvm_wallet_swap_finish(p->ctx, &mm->ks, &sw, sigs, sw.n_outputs, true, outp, p->reason,
                               sizeof p->reason);
    if (e)
        goto done;
    if (mint == 0)
        p->fees += sw.fee;
    /* the inputs are spent: drop those coins, add the new ones */
    for (uint32_t i = w->n; i-- > 0;)
        if (w->c[i].mint == (mint | 0x80))
            wallet_remove(w, i);
    for (size_t t = 0; t < sw.n_tokens && !e; t++)
        e = wallet_add(w, outp + t * sw.per_token, sw.per_token, mint);
    size_t done_out = sw.n_tokens * sw.per_token;
    if (!e && done_out < sw.n_outputs)
        e = wallet_add(w, outp + done_out, sw.n_outputs - done_out, mint);
done:
    for (uint32_t i = 0; i < w->n; i++)
        w->c[i].mint &= 0x7f; /* unchosen (on error nothing was spent) */
    free(ins);
    free(sigs);
    free(outp);
    dvm_wallet_swap_free(&sw);
    return e;
}

/* A forged token: proofs of the right amounts and keyset with random
 * secrets and a C that no mint signed (a random point), with a made-up
 * DLEQ. */
static dvm_err forge(sim_pay *p, uint64_t amount, const dvm_rng *rng, dvm_buf *out)
{
    cproof ps[64];
    size_t n = 0;
    for (int b = 0; b < 64 && n < 64; b++) {
        if (!(amount >> b & 1))
            continue;
        cproof *c = &ps[n++];
        memset(c, 0, sizeof *c);
        c->amount = 1ULL << b;
        dvm_cashu_secret_random(rng, c->secret);
        uint8_t k[32];
        dvm_err e = dvm_cashu_scalar_random(p->ctx, rng, k);
        if (!e)
            e = dvm_cashu_pubkey(p->ctx, k, c->C);
        if (e)
            return e;
        dvm_rng_fill(rng, c->e, 32);
        dvm_rng_fill(rng, c->s, 32);
        dvm_rng_fill(rng, c->r, 32);
        c->has_dleq = 1;
    }
    return encode_coin(p, &p->mint[0], ps, n, out);
}

dvm_err sim_pay_token(sim_pay *p, size_t c, uint64_t amount, sim_token_kind kind, dvm_buf *out,
                      bool *swapped, const dvm_rng *rng)
{
    *swapped = false;
    if (!amount)
        return DVM_ERR_INVALID;
    if (kind == SIM_TOKEN_FORGED)
        return forge(p, amount, rng, out);
    uint8_t mint = kind == SIM_TOKEN_UNTRUSTED ? 1 : 0;
    wallet *w = &p->wallets[c];
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < w->n; i++) {
            coin *co = &w->c[i];
            if (co->mint != mint || co->amount != amount)
                continue;
            dvm_err e = encode_coin(p, &p->mint[mint], co->p, co->n, out);
            if (!e && mint == 0)
                e = reg_put(p, str_key((const char *)out->data, out->len), &p->mint[0], co->p, co->n);
            if (e)
                return e;
            wallet_remove(w, i);
            return DVM_OK;
        }
        if (pass == 0) {
            /* splitTokens(bigToken, amount): swap into micro-tokens */
            dvm_err e = wallet_split(p, w, mint, amount, rng);
            if (e)
                return e;
            *swapped = true;
        }
    }
    return DVM_ERR_LIMIT;
}

dvm_err sim_pay_return(sim_pay *p, size_t c, dvm_str token)
{
    dvm_token t;
    dvm_err e = dvm_token_decode(token.ptr, token.len, &t, p->reason, sizeof p->reason);
    if (e)
        return e;
    uint8_t mint = strcmp(t.mint, HONEST_URL) == 0 ? 0 : 1;
    if (mint == 0) {
        reg_entry *r = reg_get(p, str_key(token.ptr, token.len));
        if (r)
            r->returned = 1;
    }
    e = wallet_add(&p->wallets[c], t.proofs, t.n_proofs, mint);
    dvm_token_free(&t);
    return e;
}

/* ---- providers ------------------------------------------------------------ */

dvm_err sim_pay_verify(sim_pay *p, size_t pv, dvm_str token, dvm_verify_result *r)
{
    memset(r, 0, sizeof *r);
    dvm_token t;
    dvm_err e = dvm_token_decode(token.ptr, token.len, &t, p->reason, sizeof p->reason);
    if (e) {
        r->outcome = DVM_VERIFY_REJECTED;
        r->reason = dvm_str_c(p->reason);
        return DVM_OK;
    }
    uint64_t amount = 0;
    dvm_pay_verdict v = dvm_pay_policy_check(p->policies[pv], &t, &amount, p->reason, sizeof p->reason);
    dvm_token_free(&t);
    switch (v) {
    case DVM_PAY_ACCEPT:
        r->outcome = DVM_VERIFY_OK;
        r->amount = amount;
        break;
    case DVM_PAY_SWAP_FIRST:
        /* our wallets always keep the DLEQ, so this means a token without
         * one: the simulated provider does not swap on receipt */
        r->outcome = DVM_VERIFY_REJECTED;
        r->reason = dvm_str_c("token without DLEQ proof");
        break;
    case DVM_PAY_CLAIM_FIRST:
        /* held value over max_unclaimed_sats: the simulated agent claims per
         * job at the job's end only, so it refuses the payment instead */
        r->outcome = DVM_VERIFY_REJECTED;
        r->reason = dvm_str_c("over the unclaimed bound");
        break;
    default:
        r->outcome = DVM_VERIFY_REJECTED;
        r->reason = dvm_str_c(p->reason[0] ? p->reason : dvm_pay_verdict_name(v));
        break;
    }
    return DVM_OK;
}

/* Swap the proofs of tokens[idx[0..n)] at the mint into the provider's
 * wallet. DVM_OK, or the mint's error (me filled) with nothing changed. */
static dvm_err claim_batch(sim_pay *p, size_t pv, const dvm_token *toks, const size_t *idx, size_t n,
                           uint64_t *claimed, dvm_mint_error *me, const dvm_rng *rng)
{
    mockmint *mm = &p->mint[0];
    size_t n_in = 0;
    for (size_t i = 0; i < n; i++)
        n_in += toks[idx[i]].n_proofs;
    dvm_proof *ins = calloc(n_in ? n_in : 1, sizeof *ins);
    if (!ins)
        return DVM_ERR_NOMEM;
    size_t k = 0;
    uint64_t accepted = 0;
    for (size_t i = 0; i < n; i++) {
        const dvm_token *t = &toks[idx[i]];
        for (size_t j = 0; j < t->n_proofs; j++) {
            ins[k++] = t->proofs[j];
            accepted += t->proofs[j].amount;
        }
    }
    dvm_wallet_swap sw;
    memset(&sw, 0, sizeof sw);
    dvm_blind_signature *sigs = NULL;
    dvm_proof *outp = NULL;
    memset(me, 0, sizeof *me);
    dvm_err e = dvm_wallet_swap_prepare(p->ctx, rng, &mm->ks, 1, &mm->ks, ins, n_in, 0, 0, &sw, p->reason,
                                        sizeof p->reason);
    if (e) {
        me->code = DVM_NUT_GENERIC;
        goto done;
    }
    sigs = calloc(sw.n_outputs ? sw.n_outputs : 1, sizeof *sigs);
    outp = calloc(sw.n_outputs ? sw.n_outputs : 1, sizeof *outp);
    if (!sigs || !outp) {
        e = DVM_ERR_NOMEM;
        goto done;
    }
    e = dvm_mint_swap(mm->m, sw.inputs, sw.n_inputs, sw.messages, sw.n_outputs, sigs, me);
    if (e)
        goto done;
    e = dvm_wallet_swap_finish(p->ctx, &mm->ks, &sw, sigs, sw.n_outputs, true, outp, p->reason,
                               sizeof p->reason);
    if (e)
        goto done;
    uint64_t got = 0;
    for (size_t i = 0; i < sw.n_outputs; i++)
        got += outp[i].amount;
    p->provider_sats[pv] += got;
    p->fees += sw.fee;
    *claimed += got;
    dvm_pay_policy_claimed(p->policies[pv], accepted);
done:
    free(ins);
    free(sigs);
    free(outp);
    dvm_wallet_swap_free(&sw);
    return e;
}

dvm_err sim_pay_claim(sim_pay *p, size_t pv, const dvm_str *tokens, size_t n, bool *spent,
                      uint64_t *claimed_sats, uint64_t *spent_sats, const dvm_rng *rng)
{
    *claimed_sats = 0;
    *spent_sats = 0;
    if (!n)
        return DVM_OK;
    dvm_token *toks = calloc(n, sizeof *toks);
    size_t *idx = calloc(n, sizeof *idx);
    if (!toks || !idx) {
        free(toks);
        free(idx);
        return DVM_ERR_NOMEM;
    }
    size_t m = 0;
    dvm_err e = DVM_OK;
    for (size_t i = 0; i < n; i++) {
        spent[i] = false;
        if (dvm_token_decode(tokens[i].ptr, tokens[i].len, &toks[i], p->reason, sizeof p->reason) == DVM_OK)
            idx[m++] = i;
        else
            spent[i] = true; /* cannot happen: the policy decoded it */
    }
    dvm_mint_error me;
    e = claim_batch(p, pv, toks, idx, m, claimed_sats, &me, rng);
    if (e && e != DVM_ERR_NOMEM && m > 1) {
        /* the mint refused the batch (a proof already spent, or the same
         * proof twice): claim token by token */
        e = DVM_OK;
        for (size_t i = 0; i < m && !e; i++) {
            dvm_err e1 = claim_batch(p, pv, toks, &idx[i], 1, claimed_sats, &me, rng);
            if (e1 == DVM_ERR_NOMEM)
                e = e1;
            else if (e1) {
                spent[idx[i]] = true;
                uint64_t a = 0;
                dvm_token_amount(&toks[idx[i]], &a);
                *spent_sats += a;
            }
        }
    } else if (e && e != DVM_ERR_NOMEM) {
        e = DVM_OK;
        spent[idx[0]] = true;
        uint64_t a = 0;
        dvm_token_amount(&toks[idx[0]], &a);
        *spent_sats += a;
    }
    for (size_t i = 0; i < n; i++)
        dvm_token_free(&toks[i]);
    free(toks);
    free(idx);
    return e;
}

/* ---- audit ------------------------------------------------------------------ */

dvm_err sim_pay_audit_run(sim_pay *p, sim_pay_audit *a)
{
    memset(a, 0, sizeof *a);
    a->minted_sats = p->minted;
    a->fees_sats = p->fees;
    for (size_t c = 0; c < p->n_customers; c++)
        for (uint32_t i = 0; i < p->wallets[c].n; i++)
            if (p->wallets[c].c[i].mint == 0)
                a->customer_sats += p->wallets[c].c[i].amount;
    for (size_t i = 0; i < p->n_providers; i++)
        a->provider_sats += p->provider_sats[i];
    /* tokens handed out and not returned: their proofs still unspent at the
     * mint are value in flight or held unclaimed; each Y once */
    size_t n_ys = 0;
    for (size_t i = 0; i < p->reg_cap; i++)
        if (p->reg[i].key && !p->reg[i].returned)
            n_ys += p->reg[i].n;
    size_t cap = 16;
    while (cap < n_ys * 2)
        cap *= 2;
    uint64_t *seen = calloc(cap, sizeof *seen);
    uint8_t(*Ys)[DVM_POINT_BYTES] = calloc(n_ys ? n_ys : 1, DVM_POINT_BYTES);
    uint64_t *amts = calloc(n_ys ? n_ys : 1, sizeof *amts);
    dvm_proof_state *st = calloc(n_ys ? n_ys : 1, sizeof *st);
    dvm_err e = DVM_OK;
    if (!seen || !Ys || !amts || !st) {
        e = DVM_ERR_NOMEM;
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < p->reg_cap; i++) {
        reg_entry *r = &p->reg[i];
        if (!r->key || r->returned)
            continue;
        for (uint16_t j = 0; j < r->n; j++) {
            const uint8_t *rec = p->reg_ys.data + r->off + (size_t)j * (8 + DVM_POINT_BYTES);
            uint64_t key = str_key((const char *)rec + 8, DVM_POINT_BYTES);
            size_t h = key & (cap - 1);
            while (seen[h] && seen[h] != key)
                h = (h + 1) & (cap - 1);
            if (seen[h])
                continue;
            seen[h] = key;
            memcpy(&amts[k], rec, 8);
            memcpy(Ys[k], rec + 8, DVM_POINT_BYTES);
            k++;
        }
    }
    for (size_t off = 0; off < k && !e; off += 1000) {
        size_t n = k - off < 1000 ? k - off : 1000;
        dvm_mint_error me;
        e = dvm_mint_checkstate(p->mint[0].m, (const uint8_t(*)[DVM_POINT_BYTES])(Ys + off), n, st + off, &me);
    }
    for (size_t i = 0; i < k && !e; i++)
        if (st[i] == DVM_PROOF_UNSPENT)
            a->unclaimed_sats += amts[i];
out:
    free(seen);
    free(Ys);
    free(amts);
    free(st);
    return e;
}
