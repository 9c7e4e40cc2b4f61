#include "cashu/policy.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cashu/crypto.h"

/* A growable set of Ys (open addressing, linear probing, no deletion):
 * memory follows use, so thousands of simulated providers stay cheap. */
typedef struct {
    uint8_t (*keys)[DVM_POINT_BYTES];
    uint8_t *used;
    size_t cap, n, max; /* max: entries before the generation flips */
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

static void yset_free(yset *s)
{
    free(s->keys);
    free(s->used);
    s->keys = NULL;
    s->used = NULL;
    s->cap = s->n = 0;
}

static void yset_clear(yset *s)
{
    if (s->cap)
        memset(s->used, 0, s->cap);
    s->n = 0;
}

static bool yset_has(const yset *s, const uint8_t *y)
{
    if (!s->cap)
        return false;
    size_t i = (size_t)fnv(y, DVM_POINT_BYTES) & (s->cap - 1);
    while (s->used[i]) {
        if (memcmp(s->keys[i], y, DVM_POINT_BYTES) == 0)
            return true;
        i = (i + 1) & (s->cap - 1);
    }
    return false;
}

/* Insert without growing (room reserved). */
static void yset_put(uint8_t (*keys)[DVM_POINT_BYTES], uint8_t *used, size_t cap,
                     const uint8_t *y, size_t *n)
{
    size_t i = (size_t)fnv(y, DVM_POINT_BYTES) & (cap - 1);
    while (used[i]) {
        if (memcmp(keys[i], y, DVM_POINT_BYTES) == 0)
            return;
        i = (i + 1) & (cap - 1);
    }
    memcpy(keys[i], y, DVM_POINT_BYTES);
    used[i] = 1;
    (*n)++;
}

/* Room for `extra` more entries at load <= 1/2. */
static dvm_err yset_reserve(yset *s, size_t extra)
{
    size_t need = (s->n + extra) * 2;
    if (need <= s->cap)
        return DVM_OK;
    size_t cap = s->cap ? s->cap : 16;
    while (cap < need)
        cap *= 2;
    uint8_t (*keys)[DVM_POINT_BYTES] = malloc(cap * DVM_POINT_BYTES);
    uint8_t *used = calloc(cap, 1);
    if (!keys || !used) {
        free(keys);
        free(used);
        return DVM_ERR_NOMEM;
    }
    size_t n = 0;
    for (size_t i = 0; i < s->cap; i++)
        if (s->used[i])
            yset_put(keys, used, cap, s->keys[i], &n);
    free(s->keys);
    free(s->used);
    s->keys = keys;
    s->used = used;
    s->cap = cap;
    return DVM_OK;
}

typedef struct {
    int mint; /* index into urls */
    dvm_keyset ks;
} ks_entry;

struct dvm_pay_policy {
    dvm_cashu_ctx *own_ctx;    /* NULL when the config lent one */
    const dvm_cashu_ctx *ctx;
    char *urls[DVM_PAY_POLICY_MAX_MINTS]; /* owned, without trailing '/' */
    size_t n_mints;
    ks_entry *keysets; /* grows up to DVM_PAY_POLICY_MAX_KEYSETS */
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
        if (strlen(p->urls[i]) == n && memcmp(p->urls[i], url, n) == 0)
            return (int)i;
    return -1;
}

void dvm_pay_policy_free(dvm_pay_policy *p)
{
    if (!p)
        return;
    dvm_cashu_ctx_free(p->own_ctx);
    for (size_t i = 0; i < p->n_mints; i++)
        free(p->urls[i]);
    free(p->keysets);
    yset_free(&p->gen[0]);
    yset_free(&p->gen[1]);
    free(p);
}

dvm_err dvm_pay_policy_new(dvm_pay_policy **out, const dvm_pay_policy_config *cfg)
{
    return dvm_pay_policy_new_with_ctx(out, cfg, NULL);
}

dvm_err dvm_pay_policy_new_with_ctx(dvm_pay_policy **out, const dvm_pay_policy_config *cfg,
                                    const dvm_cashu_ctx *ctx)
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
        dvm_err e = n == 0 || n > DVM_MINT_URL_MAX ? DVM_ERR_INVALID : DVM_OK;
        if (!e && !(p->urls[p->n_mints] = malloc(n + 1)))
            e = DVM_ERR_NOMEM;
        if (e) {
            dvm_pay_policy_free(p);
            return e;
        }
        memcpy(p->urls[p->n_mints], u, n);
        p->urls[p->n_mints++][n] = '\0';
    }
    size_t cap = cfg->replay_capacity ? cfg->replay_capacity : 65536;
    size_t half = cap / 2 ? cap / 2 : 1;
    p->gen[0].max = p->gen[1].max = half;
    p->max_unclaimed = cfg->max_unclaimed_sats;
    if (ctx) {
        p->ctx = ctx;
    } else {
        dvm_err e = dvm_cashu_ctx_new(&p->own_ctx, NULL);
        if (e) {
            dvm_pay_policy_free(p);
            return e;
        }
        p->ctx = p->own_ctx;
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
    ks_entry *grown = realloc(p->keysets, (p->n_keysets + 1) * sizeof *grown);
    if (!grown)
        return DVM_ERR_NOMEM;
    p->keysets = grown;
    p->keysets[p->n_keysets].mint = m;
    p->keysets[p->n_keysets].ks = *ks;
    p->n_keysets++;
    return DVM_OK;
}

/* By full id, or (NUT-02) by the 8-byte short form "01" + 14 hex that V4
 * tokens may carry for a version-01 keyset. */
static const dvm_keyset *find_keyset(const dvm_pay_policy *p, int mint, const char *id)
{
    for (size_t i = 0; i < p->n_keysets; i++)
        if (p->keysets[i].mint == mint && strcmp(p->keysets[i].ks.id, id) == 0)
            return &p->keysets[i].ks;
    if (strlen(id) == 16 && strncmp(id, "01", 2) == 0)
        for (size_t i = 0; i < p->n_keysets; i++)
            if (p->keysets[i].mint == mint && strncmp(p->keysets[i].ks.id, id, 16) == 0)
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

/* Record n Ys (none seen before, all distinct): flips the generation first
 * if they do not fit in the current one. DVM_ERR_NOMEM records nothing. */
static dvm_err remember(dvm_pay_policy *p, const uint8_t (*Ys)[DVM_POINT_BYTES], size_t n)
{
    yset *cur = &p->gen[p->cur];
    if (cur->n > 0 && cur->n + n > cur->max) {
        p->cur ^= 1;
        cur = &p->gen[p->cur];
        yset_clear(cur);
    }
    dvm_err e = yset_reserve(cur, n);
    if (e)
        return e;
    for (size_t i = 0; i < n; i++)
        yset_put(cur->keys, cur->used, cur->cap, Ys[i], &cur->n);
    return DVM_OK;
}

static int cmp33(const void *a, const void *b)
{
    return memcmp(a, b, DVM_POINT_BYTES);
}

void dvm_pay_check_free(dvm_pay_check *c)
{
    if (!c)
        return;
    free(c->ys);
    free(c->keys);
    free(c->dleq_failed);
    memset(c, 0, sizeof *c);
}

dvm_pay_verdict dvm_pay_policy_prepare(const dvm_pay_policy *p, const dvm_token *t, dvm_pay_check *c,
                                       char *reason, size_t rlen)
{
    memset(c, 0, sizeof *c);
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
    size_t n = t->n_proofs;
    c->ys = malloc(n * DVM_POINT_BYTES);
    c->keys = malloc(n * DVM_POINT_BYTES);
    c->dleq_failed = calloc(n, 1);
    if (!c->ys || !c->keys || !c->dleq_failed) {
        dvm_pay_check_free(c);
        return say(DVM_PAY_REJECT_MALFORMED, reason, rlen, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        const dvm_proof *pr = &t->proofs[i];
        const dvm_keyset *ks = find_keyset(p, m, pr->id);
        const uint8_t *key = ks ? dvm_keyset_key(ks, pr->amount) : NULL;
        dvm_pay_verdict v = DVM_PAY_ACCEPT;
        if (!ks)
            v = say(DVM_PAY_NEED_KEYSET, reason, rlen, "keyset %s of mint %.200s is not known",
                    pr->id, t->mint);
        else if (!key)
            v = say(DVM_PAY_REJECT_AMOUNT, reason, rlen,
                    "proofs[%zu]: amount %llu has no key in keyset %s", i,
                    (unsigned long long)pr->amount, pr->id);
        else if (pr->secret_len == 0 || pr->secret_len > DVM_SECRET_MAX)
            v = say(DVM_PAY_REJECT_MALFORMED, reason, rlen, "proofs[%zu]: bad secret", i);
        else if (pr->secret[0] == '[')
            v = say(DVM_PAY_REJECT_MALFORMED, reason, rlen,
                    "proofs[%zu]: locked proofs (NUT-10 spending conditions) are not supported",
                    i);
        else if (dvm_cashu_point_check(p->ctx, pr->C) != DVM_OK)
            v = say(DVM_PAY_REJECT_MALFORMED, reason, rlen, "proofs[%zu]: C is not a point", i);
        if (v != DVM_PAY_ACCEPT) {
            dvm_pay_check_free(c);
            return v;
        }
        memcpy(c->keys[i], key, DVM_POINT_BYTES);
    }
    c->mint = m;
    c->amount = amount;
    c->n_proofs = n;
    /* Ys up to the first secret without a point; which of them were seen
     * before is step 3's business (it reports a replay before a bad
     * secret further on, as a sequential check does). */
    while (c->n_ys < n && dvm_cashu_proof_Y(p->ctx, &t->proofs[c->n_ys], c->ys[c->n_ys]) == DVM_OK)
        c->n_ys++;
    if (c->n_ys == n) {
        uint8_t (*sorted)[DVM_POINT_BYTES] = malloc(n * DVM_POINT_BYTES);
        if (!sorted) {
            dvm_pay_check_free(c);
            return say(DVM_PAY_REJECT_MALFORMED, reason, rlen, "out of memory");
        }
        memcpy(sorted, c->ys, n * DVM_POINT_BYTES);
        qsort(sorted, n, DVM_POINT_BYTES, cmp33);
        for (size_t i = 1; i < n && !c->dup; i++)
            c->dup = memcmp(sorted[i - 1], sorted[i], DVM_POINT_BYTES) == 0;
        free(sorted);
    }
    c->all_dleq = true;
    for (size_t i = 0; i < n; i++)
        c->all_dleq &= t->proofs[i].has_dleq && t->proofs[i].dleq.has_r;
    return say(DVM_PAY_ACCEPT, reason, rlen, "prepared");
}

void dvm_pay_policy_verify_dleq(const dvm_pay_policy *p, const dvm_token *t, dvm_pay_check *c, size_t i)
{
    if (i >= c->n_proofs || c->n_ys < c->n_proofs || c->dup)
        return; /* step 3 refuses the token before looking at DLEQs */
    const dvm_proof *pr = &t->proofs[i];
    if (!pr->has_dleq || !pr->dleq.has_r)
        return;
    if (dvm_cashu_dleq_verify_proof(p->ctx, c->keys[i], pr) != DVM_OK)
        c->dleq_failed[i] = 1;
}

void dvm_pay_policy_verify(const dvm_pay_policy *p, const dvm_token *t, dvm_pay_check *c)
{
    for (size_t i = 0; i < c->n_proofs; i++)
        dvm_pay_policy_verify_dleq(p, t, c, i);
}

dvm_pay_verdict dvm_pay_policy_admit(dvm_pay_policy *p, const dvm_pay_check *c, uint64_t *amount_sats,
                                     char *reason, size_t rlen)
{
    *amount_sats = 0;
    if (!c->ys || c->n_proofs == 0)
        return say(DVM_PAY_REJECT_MALFORMED, reason, rlen, "token has no proofs");
    for (size_t i = 0; i < c->n_ys; i++)
        if (seen(p, c->ys[i]))
            return say(DVM_PAY_REJECT_REPLAY, reason, rlen, "proofs[%zu]: already received", i);
    if (c->n_ys < c->n_proofs)
        return say(DVM_PAY_REJECT_MALFORMED, reason, rlen, "proofs[%zu]: bad secret", c->n_ys);
    if (c->dup)
        return say(DVM_PAY_REJECT_REPLAY, reason, rlen, "a proof appears twice in the token");
    for (size_t i = 0; i < c->n_proofs; i++)
        if (c->dleq_failed[i])
            return say(DVM_PAY_REJECT_DLEQ, reason, rlen,
                       "proofs[%zu]: DLEQ proof does not verify (not signed by the mint)", i);
    const uint8_t (*ys)[DVM_POINT_BYTES] = (const uint8_t(*)[DVM_POINT_BYTES])c->ys;
    uint64_t amount = c->amount;
    if (!c->all_dleq) {
        if (remember(p, ys, c->n_proofs) != DVM_OK)
            return say(DVM_PAY_REJECT_MALFORMED, reason, rlen, "out of memory");
        *amount_sats = amount;
        return say(DVM_PAY_SWAP_FIRST, reason, rlen,
                   "token has proofs without DLEQ: swap at the mint before crediting");
    }
    if (p->max_unclaimed && (amount > p->max_unclaimed - (p->unclaimed < p->max_unclaimed
                                                               ? p->unclaimed
                                                               : p->max_unclaimed))) {
        *amount_sats = amount;
        return say(DVM_PAY_CLAIM_FIRST, reason, rlen,
                   "unclaimed %llu + %llu sats would exceed %llu: claim first",
                   (unsigned long long)p->unclaimed, (unsigned long long)amount,
                   (unsigned long long)p->max_unclaimed);
    }
    if (remember(p, ys, c->n_proofs) != DVM_OK)
        return say(DVM_PAY_REJECT_MALFORMED, reason, rlen, "out of memory");
    p->unclaimed += amount;
    *amount_sats = amount;
    return say(DVM_PAY_ACCEPT, reason, rlen, "accepted %llu sats", (unsigned long long)amount);
}

dvm_pay_verdict dvm_pay_policy_check(dvm_pay_policy *p, const dvm_token *t,
                                     uint64_t *amount_sats, char *reason, size_t rlen)
{
    *amount_sats = 0;
    dvm_pay_check c;
    dvm_pay_verdict v = dvm_pay_policy_prepare(p, t, &c, reason, rlen);
    if (v != DVM_PAY_ACCEPT)
        return v;
    dvm_pay_policy_verify(p, t, &c);
    v = dvm_pay_policy_admit(p, &c, amount_sats, reason, rlen);
    dvm_pay_check_free(&c);
    return v;
}

void dvm_pay_policy_claimed(dvm_pay_policy *p, uint64_t sats)
{
    p->unclaimed = sats > p->unclaimed ? 0 : p->unclaimed - sats;
}

void dvm_pay_policy_set_unclaimed(dvm_pay_policy *p, uint64_t sats)
{
    p->unclaimed = sats;
}

uint64_t dvm_pay_policy_unclaimed(const dvm_pay_policy *p)
{
    return p->unclaimed;
}
