/*
 * test_ratelimit.c - the log rate limit: burst per one-second window, the
 * suppressed count reported once (with the next event allowed, or taken
 * after its window), and exact counts when threads share one limiter.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "ratelimit.h"
#include "testutil.h"

static void test_window(void)
{
    struct proxy_ratelimit rl = PROXY_RATELIMIT_INIT(3);
    uint64_t s = 99, t0 = 5000000;
    unsigned allowed = 0;

    for (int i = 0; i < 10; i++)
        allowed += (unsigned)proxy_ratelimit_allow(&rl, t0 + (uint64_t)i * 10, &s);
    CHECK_U64(allowed, 3);
    /* Nothing to take while the window lasts: the next event may report it. */
    CHECK_U64(proxy_ratelimit_take(&rl, t0 + 999, 0), 0);
    /* The next window: the first event carries the 7 suppressed. */
    CHECK(proxy_ratelimit_allow(&rl, t0 + 1000, &s));
    CHECK_U64(s, 7);
    CHECK(proxy_ratelimit_allow(&rl, t0 + 1001, &s));
    CHECK_U64(s, 0);
    CHECK(proxy_ratelimit_allow(&rl, t0 + 1002, &s));
    CHECK(!proxy_ratelimit_allow(&rl, t0 + 1003, &s));
    CHECK(!proxy_ratelimit_allow(&rl, t0 + 1004, &s));
    /* No event comes: the count is taken once the window is over, once. */
    CHECK_U64(proxy_ratelimit_take(&rl, t0 + 1999, 0), 0);
    CHECK_U64(proxy_ratelimit_take(&rl, t0 + 2000, 0), 2);
    CHECK_U64(proxy_ratelimit_take(&rl, t0 + 2000, 0), 0);
    CHECK(proxy_ratelimit_allow(&rl, t0 + 2500, &s));
    CHECK_U64(s, 0);
    /* At exit everything is taken, window or not. */
    for (int i = 0; i < 5; i++)
        (void)proxy_ratelimit_allow(&rl, t0 + 2600, &s);
    CHECK_U64(proxy_ratelimit_take(&rl, t0 + 2600, 0), 0);
    CHECK_U64(proxy_ratelimit_take(&rl, t0 + 2600, 1), 3);
    /* A clock that starts at 0 (window 0, the initial state) still allows. */
    {
        struct proxy_ratelimit z = PROXY_RATELIMIT_INIT(1);

        CHECK(proxy_ratelimit_allow(&z, 0, &s));
        CHECK(!proxy_ratelimit_allow(&z, 1, &s));
    }
}

#define THREADS 4
#define EVENTS  100000

static struct proxy_ratelimit shared = PROXY_RATELIMIT_INIT(10);
static _Atomic uint64_t shared_allowed, shared_reported;

static void *hammer(void *arg)
{
    uint64_t s, allowed = 0, reported = 0;

    (void)arg;
    /* Ten windows' worth of time, the same for every thread. */
    for (uint64_t i = 0; i < EVENTS; i++) {
        if (proxy_ratelimit_allow(&shared, 1000000 + i * 10000 / EVENTS, &s)) {
            allowed++;
            reported += s;
        }
    }
    atomic_fetch_add(&shared_allowed, allowed);
    atomic_fetch_add(&shared_reported, reported);
    return NULL;
}

static void test_threads(void)
{
    pthread_t t[THREADS];
    uint64_t allowed, reported;

    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, hammer, NULL) == 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    allowed = atomic_load(&shared_allowed);
    reported = atomic_load(&shared_reported) + proxy_ratelimit_take(&shared, 0, 1);
    /* Never more than the burst per window, and every event accounted for
     * exactly once: allowed, or counted and reported. */
    CHECK(allowed <= 10 * 10);
    CHECK(allowed >= 10);
    CHECK_U64(allowed + reported, (uint64_t)THREADS * EVENTS);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    test_window();
    test_threads();
    return test_summary("test_ratelimit");
}
