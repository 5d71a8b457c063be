#include "clock.h"

#include <sys/time.h>
#include <time.h>

#include <event2/event.h>

#include "port_libc.h"

static uint64_t clock_us(clockid_t id)
{
    struct timespec ts;

    if (clock_gettime(id, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t proxy_now_us(void)
{
    return clock_us(CLOCK_MONOTONIC);
}

uint64_t proxy_now_ms(void)
{
    return proxy_now_us() / 1000u;
}

uint64_t proxy_thread_cpu_us(void)
{
    return clock_us(CLOCK_THREAD_CPUTIME_ID);
}

uint64_t proxy_coarse_now_ms(void)
{
    uint64_t us = clock_us(PORT_CLOCK_MONOTONIC_COARSE);

    return us != 0 ? us / 1000u : proxy_now_ms();
}

int proxy_timer_add_ms(struct event *ev, uint64_t ms)
{
    struct timeval tv = { .tv_sec = (time_t)(ms / 1000),
                          .tv_usec = (long)(ms % 1000) * 1000 };

    return evtimer_add(ev, &tv) == 0 ? 0 : -1;
}
