/*
 * clock.h - the monotonic clock and libevent timers in milliseconds: one
 * place for the conversions every module needs.
 */
#ifndef BATON_PROXY_CLOCK_H
#define BATON_PROXY_CLOCK_H

#include <stdint.h>

struct event;

uint64_t proxy_now_ms(void);        /* CLOCK_MONOTONIC */
uint64_t proxy_now_us(void);        /* CLOCK_MONOTONIC, microseconds */
uint64_t proxy_coarse_now_ms(void); /* monotonic, cheap, a few ms resolution */
uint64_t proxy_thread_cpu_us(void); /* CPU time of the calling thread, microseconds */
/* Arms (or re-arms) a timer event to fire in ms.  0, or -1 if libevent
 * refused (the caller says which timer). */
int      proxy_timer_add_ms(struct event *ev, uint64_t ms);

#endif
