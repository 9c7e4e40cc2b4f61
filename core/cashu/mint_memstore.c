#define _POSIX_C_SOURCE 200809L
#include "cashu/mint_memstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a small open-addressing set of 33-byte keys with a state byte ------ */

typedef struct {
    uint8_t key[DVM_POINT_BYTES];
    uint8_t used;
    uint8_t state;
} pt_slot;

typedef struct {
    pt_slot *slots;
    size_t cap; /* power of two or 0 */
    size_t n;
} pt_table;

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static pt_slot *pt_find(const pt_table *t, const uint8_t *key)
{
    if (!t->cap)
        return NULL;
    size_t i = (size_t)fnv(key, DVM_POINT_BYTES) & (t->cap - 1);
    for (size_t probe = 0; probe < t->cap; probe++) {
        pt_slot *s = &t->slots[i];
        if (!s->used)
            return NULL;
        if (memcmp(s->key, key, DVM_POINT_BYTES) == 0)
            return s;
        i = (i + 1) & (t->cap - 1);
    }
    return NULL;
}

static dvm_err pt_grow(pt_table *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 64;
    pt_slot *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return DVM_ERR_NOMEM;
    for (size_t j = 0; j < t->cap; j++) {
        if (!t->slots[j].used)
            continue;
        size_t i = (size_t)fnv(t->slots[j].key, DVM_POINT_BYTES) & (ncap - 1);
        while (ns[i].used)
            i = (i + 1) & (ncap - 1);
        ns[i] = t->slots[j];
    }
    free(t->slots);
    t->slots = ns;
    t->cap = ncap;
    return DVM_OK;
}

/* Reserve room for `extra` inserts (load factor <= 1/2). */
static dvm_err pt_reserve(pt_table *t, size_t extra, size_t max)
{
    if (t->n + extra > max)
        return DVM_ERR_LIMIT;
    while ((t->n + extra) * 2 > t->cap) {
        dvm_err e = pt_grow(t);
        if (e)
            return e;
    }
    return DVM_OK;
}

/* Set key's state, inserting it if new (room reserved by pt_reserve). */
static void pt_set(pt_table *t, const uint8_t *key, uint8_t state)
{
    size_t i = (size_t)fnv(key, DVM_POINT_BYTES) & (t->cap - 1);
    for (;;) {
        pt_slot *s = &t->slots[i];
        if (!s->used) {
            memcpy(s->key, key, DVM_POINT_BYTES);
            s->used = 1;
            s->state = state;
            t->n++;
            return;
        }
        if (memcmp(s->key, key, DVM_POINT_BYTES) == 0) {
            s->state = state;
            return;
        }
        i = (i + 1) & (t->cap - 1);
    }
}

/* ---- quotes ---------------------------------------------------------------- */

typedef struct {
    char id[DVM_QUOTE_ID_MAX + 1];
    uint8_t used;
    uint8_t kind; /* DVM_QUOTE_MINT / MELT */
    uint8_t state;
    char *request; /* owned */
    uint64_t amount, fee_reserve, expiry;
    char preimage[65];
} q_slot;

typedef struct {
    q_slot *slots;
    size_t cap, n;
} q_table;

static q_slot *q_find(const q_table *t, const char *id)
{
    if (!t->cap || !id)
        return NULL;
    size_t len = strnlen(id, DVM_QUOTE_ID_MAX + 1);
    if (len > DVM_QUOTE_ID_MAX)
        return NULL;
    size_t i = (size_t)fnv((const uint8_t *)id, len) & (t->cap - 1);
    for (size_t probe = 0; probe < t->cap; probe++) {
        q_slot *s = &t->slots[i];
        if (!s->used)
            return NULL;
        if (strcmp(s->id, id) == 0)
            return s;
        i = (i + 1) & (t->cap - 1);
    }
    return NULL;
}

static dvm_err q_insert(q_table *t, size_t max, const q_slot *v)
{
    if (t->n + 1 > max)
        return DVM_ERR_LIMIT;
    if (q_find(t, v->id))
        return DVM_ERR_EXISTS;
    if ((t->n + 1) * 2 > t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 64;
        q_slot *ns = calloc(ncap, sizeof *ns);
        if (!ns)
            return DVM_ERR_NOMEM;
        for (size_t j = 0; j < t->cap; j++) {
            if (!t->slots[j].used)
                continue;
            size_t i = (size_t)fnv((const uint8_t *)t->slots[j].id, strlen(t->slots[j].id)) &
                       (ncap - 1);
            while (ns[i].used)
                i = (i + 1) & (ncap - 1);
            ns[i] = t->slots[j];
        }
        free(t->slots);
        t->slots = ns;
        t->cap = ncap;
    }
    size_t i = (size_t)fnv((const uint8_t *)v->id, strlen(v->id)) & (t->cap - 1);
    while (t->slots[i].used)
        i = (i + 1) & (t->cap - 1);
    t->slots[i] = *v;
    t->slots[i].used = 1;
    t->n++;
    return DVM_OK;
}

/* ---- the store ------------------------------------------------------------- */

struct dvm_mint_memstore {
    pt_table ys;      /* Y -> dvm_proof_state */
    pt_table outputs; /* B_ -> 1 */
    q_table quotes;
    size_t max;
    size_t spent, pending;
    unsigned fail_skip, fail_next;
};

dvm_err dvm_mint_memstore_new(dvm_mint_memstore **out, size_t max_entries)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return DVM_ERR_NOMEM;
    (*out)->max = max_entries ? max_entries : ((size_t)1 << 24);
    return DVM_OK;
}

void dvm_mint_memstore_free(dvm_mint_memstore *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->quotes.cap; i++)
        free(s->quotes.slots[i].request);
    free(s->quotes.slots);
    free(s->ys.slots);
    free(s->outputs.slots);
    free(s);
}

static dvm_err ms_commit(void *ctx, const dvm_mint_commit *c, dvm_mint_conflict *conflict,
                         size_t *conflict_index, int *found_state)
{
    dvm_mint_memstore *s = ctx;
    *conflict = DVM_CONFLICT_NONE;
    *conflict_index = 0;
    *found_state = -1;
    if (s->fail_skip) {
        s->fail_skip--;
    } else if (s->fail_next) {
        s->fail_next--;
        return DVM_ERR_AGAIN;
    }
    /* 1. check every precondition */
    for (size_t i = 0; i < c->n_Ys; i++) {
        const pt_slot *p = pt_find(&s->ys, c->Ys[i]);
        uint8_t st = p ? p->state : DVM_PROOF_UNSPENT;
        if (c->settle) {
            if (st != DVM_PROOF_PENDING) {
                *conflict = DVM_CONFLICT_NOT_PENDING;
                *conflict_index = i;
                return DVM_ERR_EXISTS;
            }
        } else if (st != DVM_PROOF_UNSPENT) {
            *conflict = st == DVM_PROOF_SPENT ? DVM_CONFLICT_SPENT : DVM_CONFLICT_PENDING;
            *conflict_index = i;
            return DVM_ERR_EXISTS;
        }
    }
    for (size_t i = 0; i < c->n_B_s; i++) {
        if (pt_find(&s->outputs, c->B_s[i])) {
            *conflict = DVM_CONFLICT_OUTPUT_SIGNED;
            *conflict_index = i;
            return DVM_ERR_EXISTS;
        }
    }
    q_slot *q = NULL;
    if (c->quote_kind != DVM_QUOTE_NONE) {
        q = q_find(&s->quotes, c->quote_id);
        if (!q || q->kind != c->quote_kind || q->state != c->quote_from) {
            *conflict = DVM_CONFLICT_QUOTE_STATE;
            *found_state = (q && q->kind == c->quote_kind) ? q->state : -1;
            return DVM_ERR_EXISTS;
        }
    }
    /* 2. make room (may fail: nothing changed yet) */
    dvm_err e;
    if ((e = pt_reserve(&s->ys, c->settle ? 0 : c->n_Ys, s->max)) ||
        (e = pt_reserve(&s->outputs, c->n_B_s, s->max)))
        return e;
    /* 3. apply */
    for (size_t i = 0; i < c->n_Ys; i++) {
        if (c->settle)
            s->pending--;
        if (c->Ys_state == DVM_PROOF_SPENT)
            s->spent++;
        else if (c->Ys_state == DVM_PROOF_PENDING)
            s->pending++;
        pt_set(&s->ys, c->Ys[i], (uint8_t)c->Ys_state);
    }
    for (size_t i = 0; i < c->n_B_s; i++)
        pt_set(&s->outputs, c->B_s[i], 1);
    if (q) {
        q->state = (uint8_t)c->quote_to;
        if (c->payment_preimage)
            snprintf(q->preimage, sizeof q->preimage, "%s", c->payment_preimage);
    }
    return DVM_OK;
}

static dvm_err ms_states(void *ctx, const uint8_t (*Ys)[DVM_POINT_BYTES], size_t n,
                         dvm_proof_state *states)
{
    dvm_mint_memstore *s = ctx;
    for (size_t i = 0; i < n; i++) {
        const pt_slot *p = pt_find(&s->ys, Ys[i]);
        states[i] = p ? (dvm_proof_state)p->state : DVM_PROOF_UNSPENT;
    }
    return DVM_OK;
}

static dvm_err put_quote(dvm_mint_memstore *s, const char *id, int kind, int state,
                         const char *request, uint64_t amount, uint64_t fee_reserve,
                         uint64_t expiry)
{
    q_slot v;
    memset(&v, 0, sizeof v);
    size_t idlen = strnlen(id, DVM_QUOTE_ID_MAX + 1);
    if (idlen == 0 || idlen > DVM_QUOTE_ID_MAX)
        return DVM_ERR_INVALID;
    memcpy(v.id, id, idlen + 1);
    v.kind = (uint8_t)kind;
    v.state = (uint8_t)state;
    v.amount = amount;
    v.fee_reserve = fee_reserve;
    v.expiry = expiry;
    size_t rlen = strnlen(request, DVM_BOLT11_MAX + 1);
    if (rlen > DVM_BOLT11_MAX)
        return DVM_ERR_TOO_LARGE;
    v.request = malloc(rlen + 1);
    if (!v.request)
        return DVM_ERR_NOMEM;
    memcpy(v.request, request, rlen + 1);
    dvm_err e = q_insert(&s->quotes, s->max, &v);
    if (e)
        free(v.request);
    return e;
}

static dvm_err ms_put_mint_quote(void *ctx, const dvm_mint_quote *q)
{
    return put_quote(ctx, q->quote, DVM_QUOTE_MINT, q->state, q->request, q->amount, 0,
                     q->expiry);
}

static dvm_err ms_put_melt_quote(void *ctx, const dvm_melt_quote *q)
{
    return put_quote(ctx, q->quote, DVM_QUOTE_MELT, q->state, q->request, q->amount,
                     q->fee_reserve, q->expiry);
}

static dvm_err ms_get_mint_quote(void *ctx, const char *id, dvm_mint_quote *out)
{
    dvm_mint_memstore *s = ctx;
    const q_slot *q = q_find(&s->quotes, id);
    if (!q || q->kind != DVM_QUOTE_MINT)
        return DVM_ERR_NOT_FOUND;
    memset(out, 0, sizeof *out);
    memcpy(out->quote, q->id, sizeof out->quote);
    snprintf(out->request, sizeof out->request, "%s", q->request);
    out->amount = q->amount;
    strcpy(out->unit, "sat");
    out->state = (dvm_mint_quote_state)q->state;
    out->expiry = q->expiry;
    return DVM_OK;
}

static dvm_err ms_get_melt_quote(void *ctx, const char *id, dvm_melt_quote *out)
{
    dvm_mint_memstore *s = ctx;
    const q_slot *q = q_find(&s->quotes, id);
    if (!q || q->kind != DVM_QUOTE_MELT)
        return DVM_ERR_NOT_FOUND;
    memset(out, 0, sizeof *out);
    memcpy(out->quote, q->id, sizeof out->quote);
    snprintf(out->request, sizeof out->request, "%s", q->request);
    out->amount = q->amount;
    out->fee_reserve = q->fee_reserve;
    strcpy(out->unit, "sat");
    out->state = (dvm_melt_quote_state)q->state;
    out->expiry = q->expiry;
    memcpy(out->payment_preimage, q->preimage, sizeof out->payment_preimage);
    return DVM_OK;
}

void dvm_mint_memstore_vtable(dvm_mint_memstore *s, dvm_mint_store *vt)
{
    vt->ctx = s;
    vt->commit = ms_commit;
    vt->proof_states = ms_states;
    vt->put_mint_quote = ms_put_mint_quote;
    vt->put_melt_quote = ms_put_melt_quote;
    vt->get_mint_quote = ms_get_mint_quote;
    vt->get_melt_quote = ms_get_melt_quote;
}

void dvm_mint_memstore_stats_get(const dvm_mint_memstore *s, dvm_mint_memstore_stats *out)
{
    out->spent = s->spent;
    out->pending = s->pending;
    out->outputs = s->outputs.n;
    out->quotes = s->quotes.n;
}

void dvm_mint_memstore_fail_next(dvm_mint_memstore *s, unsigned skip, unsigned n)
{
    s->fail_skip = skip;
    s->fail_next = n;
}
