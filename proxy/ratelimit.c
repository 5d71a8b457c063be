/*
 * ratelimit.c - a fixed-window rate limit on one atomic word, so the loop
 * threads of a worker share it without a lock: the window number and the
 * events allowed in it change together, by compare-and-swap.
 */
#include "ratelimit.h"

static uint32_t window_of(uint64_t now_ms)
{
    return (uint32_t)(now_ms / PROXY_RATELIMIT_WINDOW_MS);
}

int proxy_ratelimit_allow(struct proxy_ratelimit *rl, uint64_t now_ms, uint64_t *suppressed)
{
    uint32_t window = window_of(now_ms);
    uint64_t old = atomic_load_explicit(&rl->state, memory_order_relaxed), next;

    *suppressed = 0;
    for (;;) {
        /* A thread that read the clock a little earlier never takes the
         * limit back to an older window (which would open it again). */
        if (window > (uint32_t)(old >> 32))
            next = (uint64_t)window << 32 | 1u;     /* a new window: this is its first */
        else if ((uint32_t)old < rl->burst)
            next = old + 1;
        else {
            atomic_fetch_add_explicit(&rl->suppressed, 1, memory_order_relaxed);
            return 0;
        }
        if (atomic_compare_exchange_weak_explicit(&rl->state, &old, next, memory_order_relaxed,
                                                  memory_order_relaxed))
            break;
    }
    /* Whoever exchanges the count reports it: it is never told twice, and
     * one refused while this runs waits for the next report. */
    *suppressed = atomic_exchange_explicit(&rl->suppressed, 0, memory_order_relaxed);
    return 1;
}

uint64_t proxy_ratelimit_take(struct proxy_ratelimit *rl, uint64_t now_ms, int all)
{
    uint64_t state = atomic_load_explicit(&rl->state, memory_order_relaxed);

    if (atomic_load_explicit(&rl->suppressed, memory_order_relaxed) == 0)
        return 0;
    /* While the window lasts, the next event allowed may still report it. */
    if (!all && window_of(now_ms) <= (uint32_t)(state >> 32))
        return 0;
    return atomic_exchange_explicit(&rl->suppressed, 0, memory_order_relaxed);
}
