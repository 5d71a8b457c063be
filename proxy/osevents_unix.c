/*
 * osevents_unix.c - osevents.h on Unix: signals, caught by libevent's
 * evsignal (its handler only wakes the loop) and mapped to requests.
 */
#include "osevents.h"

#include <signal.h>
#include <stdlib.h>

#include <event2/event.h>

#include "log.h"

#define NO_EVENT (-1)   /* the role leaves the signal's default action */

static const struct {
    int         sig;
    const char *name;
    int         master, worker;   /* enum proxy_osevent, or NO_EVENT */
} os_signals[] = {
    { SIGTERM, "SIGTERM", PROXY_OSEV_STOP_FAST,     PROXY_OSEV_STOP_FAST },
    { SIGINT,  "SIGINT",  PROXY_OSEV_STOP_FAST,     PROXY_OSEV_STOP_FAST },
    { SIGQUIT, "SIGQUIT", PROXY_OSEV_STOP_GRACEFUL, PROXY_OSEV_STOP_GRACEFUL },
    { SIGHUP,  "SIGHUP",  PROXY_OSEV_RELOAD,        PROXY_OSEV_IGNORED },
    { SIGUSR2, "SIGUSR2", PROXY_OSEV_RELOAD,        NO_EVENT },
};
#define NSIGNALS (sizeof(os_signals) / sizeof(os_signals[0]))

struct proxy_osevents;

struct os_watch {
    struct proxy_osevents *os;
    int                    ev;   /* enum proxy_osevent */
    const char            *name;
    struct event          *sigev;
};

struct proxy_osevents {
    proxy_osevents_cb *cb;
    void              *arg;
    struct os_watch    watch[NSIGNALS];
};

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct os_watch *w = arg;

    w->os->cb((enum proxy_osevent)w->ev, w->name, w->os->arg);
}

struct proxy_osevents *proxy_osevents_new(struct event_base *base, enum proxy_osevents_role role,
                                          proxy_osevents_cb *cb, void *arg)
{
    struct proxy_osevents *os = calloc(1, sizeof(*os));

    if (os == NULL) {
        proxy_log_error("OS events: out of memory");
        return NULL;
    }
    os->cb = cb;
    os->arg = arg;
    for (size_t i = 0; i < NSIGNALS; i++) {
        struct os_watch *w = &os->watch[i];

        w->os = os;
        w->name = os_signals[i].name;
        w->ev = role == PROXY_OSEV_MASTER ? os_signals[i].master : os_signals[i].worker;
        if (w->ev == NO_EVENT)
            continue;
        w->sigev = evsignal_new(base, os_signals[i].sig, signal_cb, w);
        if (w->sigev == NULL || event_add(w->sigev, NULL) != 0) {
            proxy_log_error("OS events: cannot watch %s", w->name);
            proxy_osevents_free(os);
            return NULL;
        }
    }
    return os;
}

void proxy_osevents_free(struct proxy_osevents *os)
{
    if (os == NULL)
        return;
    for (size_t i = 0; i < NSIGNALS; i++)
        if (os->watch[i].sigev != NULL)
            event_free(os->watch[i].sigev);
    free(os);
}
