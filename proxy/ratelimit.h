/*
 * ratelimit.h - at most `burst` events per one-second window, shared by
 * every thread of a process without a lock: what is refused is counted,
 * and the count is handed out once, to the next event allowed or to a
 * periodic flush after its window ended.
 */
#ifndef BATON_PROXY_RATELIMIT_H
#define BATON_PROXY_RATELIMIT_H

#include <stdatomic.h>
#include <stdint.h>

#define PROXY_RATELIMIT_WINDOW_MS 1000

struct proxy_ratelimit {
    unsigned          burst;       /* events allowed per window */
    _Atomic uint64_t  state;       /* window number << 32 | events allowed in it */
    _Atomic uint64_t  suppressed;  /* refused, not yet reported */
};

#define PROXY_RATELIMIT_INIT(n) { .burst = (n) }

/* 1 if an event at now_ms (monotonic) may be reported; then *suppressed
 * holds the count refused before it (reported with it, and reset).  0 if
 * it is to be suppressed (counted). */
int proxy_ratelimit_allow(struct proxy_ratelimit *rl, uint64_t now_ms, uint64_t *suppressed);

/* The suppressed count to report now (reset), once the window in which
 * events were refused is over; 0 while it lasts.  `all`: regardless of the
 * window (at exit). */
uint64_t proxy_ratelimit_take(struct proxy_ratelimit *rl, uint64_t now_ms, int all);

#endif
