#include "cashu/policy.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cashu/crypto.h"

/* A fixed-capacity set of Ys (open addressing, no deletion). */
typedef struct {
    uint8_t (*keys)[DVM_POINT_BYTES];
    uint8_t *used;
    size_t cap, n, max;
} yset;

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static dvm_err yset_init(yset *s, size_t max)
{
    size_t cap = 16;
    while (cap < max * 2)
        cap *= 2;
    s->keys = calloc(cap, DVM_POINT_BYTES);
    s->used = calloc(cap, 1);
    if (!s->keys || !s->used)
        return DVM_ERR_NOMEM;
    s->cap = cap;
    s->n = 0;
    s->max = max;
    return DVM_OK;
}

static void yset_free(yset *s)
{
    free(s->keys);
    free(s->used);
}

static void yset_clear(yset *s)
{
    memset(s->used, 0, s->cap);
    s->n = 0;
}

static bool yset_has(const yset *s, const uint8_t *y)
{
    size_t i = (size_t)fnv(y, DVM_POINT_BYTES) & (s->cap - 1);
    while (s->used[i]) {
        if (memcmp(s->keys[i], y, DVM_POINT_BYTES) == 0)
            return true;
        i = (i + 1) & (s->cap - 1);
    }
    return false;
}

static void yset_add(yset *s, const uint8_t *y)
{
    size_t i = (size_t)fnv(y, DVM_POINT_BYTES) & (s->cap - 1);
    while (s->used[i]) {
        if (memcmp(s->keys[i], y, DVM_POINT_BYTES) == 0)
            return;
        i = (i + 1) & (s->cap - 1);
    }
    memcpy(s->keys[i], y, DVM_POINT_BYTES);
    s->used[i] = 1;
    s->n++;
}

typedef struct {
    char url[DVM_MINT_URL_MAX + 1];
} mint_entry;

typedef struct {
    int mint; /* index into mints */
    dvm_keyset ks;
} ks_entry;

struct dvm_pay_policy {
    dvm_cashu_ctx *ctx;
    mint_entry mints[DVM_PAY_POLICY_MAX_MINTS];
    size_t n_mints;
    ks_entry *keysets; /* DVM_PAY_POLICY_MAX_KEYSETS */
    size_t n_keysets;
    uint64_t max_unclaimed, unclaimed;
    yset gen[2]; /* gen[cur] is filled; the other is the older generation */
    int cur;
};

bool dvm_pay_verdict_is_reject(dvm_pay_verdict v)
{
    return v >= DVM_PAY_REJECT_UNTRUSTED_MINT;
}

const char *dvm_pay_verdict_name(dvm_pay_verdict v)
{
    switch (v) {
    case DVM_PAY_ACCEPT: return "accept";
    case DVM_PAY_SWAP_FIRST: return "swap_first";
    case DVM_PAY_CLAIM_FIRST: return "claim_first";
    case DVM_PAY_NEED_KEYSET: return "need_keyset";
    case DVM_PAY_REJECT_UNTRUSTED_MINT: return "untrusted_mint";
    case DVM_PAY_REJECT_UNIT: return "unit";
    case DVM_PAY_REJECT_AMOUNT: return "amount";
    case DVM_PAY_REJECT_REPLAY: return "replay";
    case DVM_PAY_REJECT_DLEQ: return "dleq";
    default: return "malformed";
    }
}

/* Length of url without trailing slashes. */
static size_t url_len(const char *u)
{
    size_t n = strlen(u);
    while (n > 0 && u[n - 1] == '/')
        n--;
    return n;
}

static int find_mint(const dvm_pay_policy *p, const char *url)
{
    size_t n = url_len(url);
    for (size_t i = 0; i < p->n_mints; i++)
        if (strlen(p->mints[i].url) == n && memcmp(p->mints[i].url, url, n) == 0)
            return (int)i;
    return -1;
}

void dvm_pay_policy_free(dvm_pay_policy *p)
{
    if (!p)
        return;
    dvm_cashu_ctx_free(p->ctx);
    free(p->keysets);
    yset_free(&p->gen[0]);
    yset_free(&p->gen[1]);
    free(p);
}

dvm_err dvm_pay_policy_new(dvm_pay_policy **out, const dvm_pay_policy_config *cfg)
{
    *out = NULL;
    if (!cfg || cfg->n_trusted == 0 || cfg->n_trusted > DVM_PAY_POLICY_MAX_MINTS ||
        !cfg->trusted_mints)
        return DVM_ERR_INVALID;
    dvm_pay_policy *p = calloc(1, sizeof *p);
    if (!p)
        return DVM_ERR_NOMEM;
    for (size_t i = 0; i < cfg->n_trusted; i++) {
        const char *u = cfg->trusted_mints[i];
        size_t n = u ? url_len(u) : 0;
        if (n == 0 || n > DVM_MINT_URL_MAX) {
            dvm_pay_policy_free(p);
            return DVM_ERR_INVALID;
        }
        memcpy(p->mints[p->n_mints].url, u, n);
        p->mints[p->n_mints++].url[n] = '\0';
    }
    size_t cap = cfg->replay_capacity ? cfg->replay_capacity : 65536;
    size_t half = cap / 2 ? cap / 2 : 1;
    p->max_unclaimed = cfg->max_unclaimed_sats;
    p->keysets = calloc(DVM_PAY_POLICY_MAX_KEYSETS, sizeof *p->keysets);
    dvm_err e = p->keysets ? dvm_cashu_ctx_new(&p->ctx, NULL) : DVM_ERR_NOMEM;
    if (!e)
        e = yset_init(&p->gen[0], half);
    if (!e)
        e = yset_init(&p->gen[1], half);
    if (e) {
        dvm_pay_policy_free(p);
        return e;
    }
    *out = p;
    return DVM_OK;
}

dvm_err dvm_pay_policy_add_keyset(dvm_pay_policy *p, const char *mint_url, const dvm_keyset *ks)
{
    int m = find_mint(p, mint_url);
    if (m < 0)
        return DVM_ERR_PROTO;
    if (dvm_keyset_check_id(ks) != DVM_OK)
        return DVM_ERR_INVALID;
    for (size_t i = 0; i < p->n_keysets; i++)
        if (p->keysets[i].mint == m && strcmp(p->keysets[i].ks.id, ks->id) == 0) {
            p->keysets[i].ks = *ks;
            return DVM_OK;
        }
    if (p->n_keysets >= DVM_PAY_POLICY_MAX_KEYSETS)
        return DVM_ERR_LIMIT;
    p->keysets[p->n_keysets].mint = m;
    p->keysets[p->n_keysets].ks = *ks;
    p->n_keysets++;
    return DVM_OK;
}

static const dvm_keyset *find_keyset(const dvm_pay_policy *p, int mint, const char *id)
{
    for (size_t i = 0; i < p->n_keysets; i++)
        if (p->keysets[i].mint == mint && strcmp(p->keysets[i].ks.id, id) == 0)
            return &p->keysets[i].ks;
    return NULL;
}

static dvm_pay_verdict say(dvm_pay_verdict v, char *reason, size_t rlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static dvm_pay_verdict say(dvm_pay_verdict v, char *reason, size_t rlen, const char *fmt, ...)
{
    if (reason && rlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, rlen, fmt, ap);
        va_end(ap);
    }
    return v;
}

static bool seen(const dvm_pay_policy *p, const uint8_t *y)
{
    return yset_has(&p->gen[0], y) || yset_has(&p->gen[1], y);
}

static void remember(dvm_pay_policy *p, const uint8_t *y)
{
    if (seen(p, y))
        return;
    yset *cur = &p->gen[p->cur];
    if (cur->n >= cur->max) {
        p->cur ^= 1;
        cur = &p->gen[p->cur];
        yset_clear(cur);
    }
    yset_add(cur, y);
}

static int cmp33(const void *a, const void *b)
{
    return memcmp(a, b, DVM_POINT_BYTES);
}

dvm_pay_verdict dvm_pay_policy_check(dvm_pay_policy *p, const dvm_token *t,
                                     uint64_t *amount_sats, char *reason, size_t rlen)
{
    *amount_sats = 0;
    if (!t || !t->proofs || t->n_proofs == 0)
        return say(DVM_PAY_REJECT_MALFORMED, reason, rlen, "token has no proofs");
    if (t->n_proofs > DVM_TOKEN_MAX_PROOFS)
        return say(DVM_PAY_REJECT_MALFORMED, reason, rlen, "token has more than %d proofs",
                   DVM_TOKEN_MAX_PROOFS);
    int m = find_mint(p, t->mint);
    if (m < 0)
        return say(DVM_PAY_REJECT_UNTRUSTED_MINT, reason, rlen, "mint %.200s is not trusted",
                   t->mint);
    if (strcmp(t->unit, "sat") != 0)
        return say(DVM_PAY_REJECT_UNIT, reason, rlen, "unit %.16s is not sat", t->unit);
    uint64_t amount = 0;
    if (dvm_token_amount(t, &amount) != DVM_OK)
        return say(DVM_PAY_REJECT_AMOUNT, reason, rlen, "token amount over 2^53-1");
    if (amount == 0)
        return say(DVM_PAY_REJECT_AMOUNT, reason, rlen, "token amount is 0");
    for (size_t i = 0; i < t->n_proofs; i++) {
        const dvm_proof *pr = &t->proofs[i];
        const dvm_keyset *ks = find_keyset(p, m, pr->id);
        if (!ks)
            return say(DVM_PAY_NEED_KEYSET, reason, rlen, "keyset %s of mint %.200s is not known",
                       pr->id, t->mint);
        if (!dvm_keyset_key(ks, pr->amount))
            return say(DVM_PAY_REJECT_AMOUNT, reason, rlen,
                       "proofs[%zu]: amount %llu has no key in keyset %s", i,
                       (unsigned long long)pr->amount, pr->id);
        if (pr->secret_len == 0 || pr->secret_len > DVM_SECRET_MAX)
            return say(DVM_PAY_REJECT_MALFORMED, reason, rlen, "proofs[%zu]: bad secret", i);
        if (dvm_cashu_point_check(p->ctx, pr->C) != DVM_OK)
            return say(DVM_PAY_REJECT_MALFORMED, reason, rlen, "proofs[%zu]: C is not a point",
                       i);
    }
    uint8_t (*Ys)[DVM_POINT_BYTES] = malloc(t->n_proofs * DVM_POINT_BYTES);
    if (!Ys)
        return say(DVM_PAY_REJECT_MALFORMED, reason, rlen, "out of memory");
    dvm_pay_verdict v = DVM_PAY_ACCEPT;
    for (size_t i = 0; i < t->n_proofs; i++) {
        if (dvm_cashu_proof_Y(p->ctx, &t->proofs[i], Ys[i]) != DVM_OK) {
            v = say(DVM_PAY_REJECT_MALFORMED, reason, rlen, "proofs[%zu]: bad secret", i);
            goto done;
        }
        if (seen(p, Ys[i])) {
            v = say(DVM_PAY_REJECT_REPLAY, reason, rlen, "proofs[%zu]: already received", i);
            goto done;
        }
    }
    {
        uint8_t (*sorted)[DVM_POINT_BYTES] = malloc(t->n_proofs * DVM_POINT_BYTES);
        if (!sorted) {
            v = say(DVM_PAY_REJECT_MALFORMED, reason, rlen, "out of memory");
            goto done;
        }
        memcpy(sorted, Ys, t->n_proofs * DVM_POINT_BYTES);
        qsort(sorted, t->n_proofs, DVM_POINT_BYTES, cmp33);
        bool dup = false;
        for (size_t i = 1; i < t->n_proofs && !dup; i++)
            dup = memcmp(sorted[i - 1], sorted[i], DVM_POINT_BYTES) == 0;
        free(sorted);
        if (dup) {
            v = say(DVM_PAY_REJECT_REPLAY, reason, rlen, "a proof appears twice in the token");
            goto done;
        }
    }
    bool all_dleq = true;
    for (size_t i = 0; i < t->n_proofs; i++) {
        const dvm_proof *pr = &t->proofs[i];
        if (!pr->has_dleq || !pr->dleq.has_r) {
            all_dleq = false;
            continue;
        }
        const dvm_keyset *ks = find_keyset(p, m, pr->id);
        if (dvm_cashu_dleq_verify_proof(p->ctx, dvm_keyset_key(ks, pr->amount), pr) != DVM_OK) {
            v = say(DVM_PAY_REJECT_DLEQ, reason, rlen,
                    "proofs[%zu]: DLEQ proof does not verify (not signed by the mint)", i);
            goto done;
        }
    }
    if (!all_dleq) {
        for (size_t i = 0; i < t->n_proofs; i++)
            remember(p, Ys[i]);
        *amount_sats = amount;
        v = say(DVM_PAY_SWAP_FIRST, reason, rlen,
                "token has proofs without DLEQ: swap at the mint before crediting");
        goto done;
    }
    if (p->max_unclaimed && (amount > p->max_unclaimed - (p->unclaimed < p->max_unclaimed
                                                               ? p->unclaimed
                                                               : p->max_unclaimed))) {
        *amount_sats = amount;
        v = say(DVM_PAY_CLAIM_FIRST, reason, rlen,
                "unclaimed %llu + %llu sats would exceed %llu: claim first",
                (unsigned long long)p->unclaimed, (unsigned long long)amount,
                (unsigned long long)p->max_unclaimed);
        goto done;
    }
    for (size_t i = 0; i < t->n_proofs; i++)
        remember(p, Ys[i]);
    p->unclaimed += amount;
    *amount_sats = amount;
    v = say(DVM_PAY_ACCEPT, reason, rlen, "accepted %llu sats", (unsigned long long)amount);
done:
    free(Ys);
    return v;
}

void dvm_pay_policy_claimed(dvm_pay_policy *p, uint64_t sats)
{
    p->unclaimed = sats > p->unclaimed ? 0 : p->unclaimed - sats;
}

uint64_t dvm_pay_policy_unclaimed(const dvm_pay_policy *p)
{
    return p->unclaimed;
}
