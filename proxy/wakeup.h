/*
 * wakeup.h - lets another thread (a console or service handler, a process
 * wait callback, a loop thread) or a signal handler wake an event loop,
 * which then runs cb in its own thread.  Portable: a socket pair made by
 * libevent (AF_UNIX on Linux, loopback TCP on Windows, whose libevent
 * backend waits on sockets only).
 */
#ifndef BATON_PROXY_WAKEUP_H
#define BATON_PROXY_WAKEUP_H

struct event_base;
struct proxy_wakeup;

typedef void proxy_wakeup_cb(void *arg);

/* NULL on failure (logged). */
struct proxy_wakeup *proxy_wakeup_new(struct event_base *base, proxy_wakeup_cb *cb, void *arg);
/* Thread-safe and async-signal-safe.  Pokes before cb runs may coalesce:
 * cb runs at least once after each poke, so the state it acts on is kept
 * by the poker (under its own lock or atomics), never in the poke. */
void proxy_wakeup_poke(struct proxy_wakeup *w);
void proxy_wakeup_free(struct proxy_wakeup *w);

#endif
