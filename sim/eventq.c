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

static inline int before(const sim_event *x, const sim_event *y)
{
    return x->t_us < y->t_us || (x->t_us == y->t_us && x->seq < y->seq);
}

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
        size_t end = c + 4 < n ? c + 4 : n;
        for (size_t k = c + 1; k < end; k++)
            if (before(&h[k], &h[best]))
                best = k;
        if (!before(&h[best], &last))
            break;
        h[i] = h[best];
        i = best;
    }
    h[i] = last;
    return DVM_OK;
}
