#include "eventq.h"

#include <stdlib.h>

void sim_eventq_init(sim_eventq *q)
{
    q->ev = NULL;
    q->len = q->cap = 0;
    q->next_seq = 0;
}

void sim_eventq_free(sim_eventq *q)
{
    free(q->ev);
    sim_eventq_init(q);
}

/* (t_us, seq) as one 128-bit key: one wide compare, no branch on ties */
static inline unsigned __int128 key(const sim_event *e)
{
    return ((unsigned __int128)e->t_us << 64) | e->seq;
}

static inline int before(const sim_event *x, const sim_event *y) { return key(x) < key(y); }

dvm_err sim_eventq_push(sim_eventq *q, uint64_t t_us, uint32_t kind, uint32_t a, uint64_t b)
{
    if (q->len == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 1024;
        sim_event *p = realloc(q->ev, cap * sizeof *p);
        if (!p)
            return DVM_ERR_NOMEM;
        q->ev = p;
        q->cap = cap;
    }
    sim_event e = {t_us, q->next_seq++, kind, a, b};
    size_t i = q->len++;
    sim_event *h = q->ev;
    while (i > 0) {
        size_t parent = (i - 1) / 4;
        if (!before(&e, &h[parent]))
            break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = e;
    return DVM_OK;
}

dvm_err sim_eventq_pop(sim_eventq *q, sim_event *out)
{
    if (q->len == 0)
        return DVM_ERR_AGAIN;
    sim_event *h = q->ev;
    *out = h[0];
    sim_event last = h[--q->len];
    size_t n = q->len, i = 0;
    if (n == 0)
        return DVM_OK;
    for (;;) {
        size_t c = 4 * i + 1;
        if (c >= n)
            break;
        size_t best = c;
        unsigned __int128 bk = key(&h[c]);
        size_t end = c + 4 < n ? c + 4 : n;
        for (size_t k = c + 1; k < end; k++) {
            unsigned __int128 kk = key(&h[k]);
            if (kk < bk) {
                bk = kk;
                best = k;
            }
        }
        if (!(bk < key(&last)))
            break;
        h[i] = h[best];
        i = best;
    }
    h[i] = last;
    return DVM_OK;
}
