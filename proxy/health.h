/*
 * health.h - active health checks of a worker's servers (`check = tcp`:
 * a connect succeeds; `check = tls`: a TLS handshake succeeds), run from
 * the worker's main thread every check_interval.  Results feed the same
 * rise/fall counters as client connections do (backend.c).
 */
#ifndef BATON_PROXY_HEALTH_H
#define BATON_PROXY_HEALTH_H

#include <event2/event.h>

struct proxy_worker;
struct proxy_health;

/* Starts probing every server of every backend with a check; NULL with no
 * checks configured (or out of memory, logged). */
struct proxy_health *proxy_health_start(struct proxy_worker *w, struct event_base *base);
void proxy_health_stop(struct proxy_health *h);

#endif
