/* dvmstream simulator — the event queue.
 *
 * A 4-ary min-heap of small POD events in one flat array, ordered by
 * (virtual time, insertion sequence): events at the same microsecond pop in
 * the order they were pushed (stable tie-break), so a run never depends on
 * heap internals. Pushing never allocates per event: the array grows by
 * doubling (amortised), and is freed once by sim_eventq_free. */
#ifndef DVM_SIM_EVENTQ_H
#define DVM_SIM_EVENTQ_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct sim_event {
    uint64_t t_us; /* virtual time, microseconds since the start */
    uint64_t seq;  /* insertion sequence (set by sim_eventq_push) */
    uint32_t kind; /* caller-defined event kind */
    uint32_t a;    /* caller-defined operand (an index) */
    uint64_t b;    /* caller-defined operand (an index, length or generation) */
} sim_event;

typedef struct sim_eventq {
    sim_event *ev; /* owned heap array */
    size_t len;
    size_t cap;
    uint64_t next_seq;
} sim_eventq;

/* Initialise an empty queue (allocates nothing). */
void sim_eventq_init(sim_eventq *q);

/* Release the array. */
void sim_eventq_free(sim_eventq *q);

/* Push an event at t_us; its seq is assigned here. DVM_ERR_NOMEM if the
 * array cannot grow. */
dvm_err sim_eventq_push(sim_eventq *q, uint64_t t_us, uint32_t kind, uint32_t a, uint64_t b);

/* Pop the earliest event (smallest (t_us, seq)) into *out; DVM_ERR_AGAIN
 * when the queue is empty. */
dvm_err sim_eventq_pop(sim_eventq *q, sim_event *out);

/* The earliest event without removing it, or NULL when empty. */
static inline const sim_event *sim_eventq_peek(const sim_eventq *q)
{
    return q->len ? &q->ev[0] : NULL;
}

#endif
