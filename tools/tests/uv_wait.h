/* Test helpers: bounded waiting on a libuv loop, and closing what is left.
 * Header-only, for tools/tests. */
#ifndef DVM_TESTS_UV_WAIT_H
#define DVM_TESTS_UV_WAIT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

static inline void uvw_on_deadline(uv_timer_t *t) { *(bool *)t->data = true; }

/* Run the loop until pred(ctx) holds or timeout_ms pass; true if it held. */
static inline bool run_until(uv_loop_t *loop, bool (*pred)(void *), void *ctx, uint64_t timeout_ms)
{
    bool timed_out = false;
    uv_timer_t t;
    uv_timer_init(loop, &t);
    t.data = &timed_out;
    uv_timer_start(&t, uvw_on_deadline, timeout_ms, 0);
    while (!pred(ctx) && !timed_out)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return pred(ctx);
}

/* uv_walk callback: close every handle not already closing. */
static inline void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

#endif
