/*
 * osevents.h - what the operating system asks of a process, delivered to
 * its event loop as one of four requests.  One implementation per OS:
 *   osevents_unix.c  signals through libevent's evsignal (SIGTERM, SIGINT:
 *                    stop fast; SIGQUIT: stop gracefully; SIGHUP, SIGUSR2:
 *                    reload, master only; SIGPIPE is ignored by
 *                    proxy_net_init, netutil.h)
 *   osevents_win.c   the console (Ctrl-C/Ctrl-Break: first graceful, then
 *                    fast; ignored by workers, whose master decides), the
 *                    service control handler (service_win.c: stop,
 *                    shutdown, code 128 = reload), and for workers the two
 *                    named events a master sets to stop them
 *                    (PROXY_OSEV_WIN_EVENT_FMT)
 * Handlers of the OS (signal handlers, console and service threads) never
 * touch the proxy: they only wake the loop, which calls cb in its thread.
 */
#ifndef BATON_PROXY_OSEVENTS_H
#define BATON_PROXY_OSEVENTS_H

struct event_base;

enum proxy_osevent {
    PROXY_OSEV_STOP_FAST,       /* close everything now */
    PROXY_OSEV_STOP_GRACEFUL,   /* stop accepting, drain, then exit */
    PROXY_OSEV_RELOAD,          /* master: reload configuration and binary */
    PROXY_OSEV_IGNORED          /* seen and logged by name only (a worker's SIGHUP) */
};

enum proxy_osevents_role {
    PROXY_OSEV_MASTER,
    PROXY_OSEV_WORKER
};

/* what: the name an operator would recognise in a log line ("SIGTERM",
 * "Ctrl-C", "service stop", "service control 128"). */
typedef void proxy_osevents_cb(enum proxy_osevent ev, const char *what, void *arg);

struct proxy_osevents;

/* Starts delivering to cb.  NULL on failure (logged). */
struct proxy_osevents *proxy_osevents_new(struct event_base *base, enum proxy_osevents_role role,
                                          proxy_osevents_cb *cb, void *arg);
void proxy_osevents_free(struct proxy_osevents *os);

/* Windows: the names of the two events a worker (pid) creates and waits on
 * and its master sets (process_win.c proxy_process_stop): "drain" for a
 * graceful stop, "stop" for a fast one.  Session-local, so a worker of one
 * service instance is never stopped by another session's master. */
#define PROXY_OSEV_WIN_EVENT_FMT "Local\\baton-worker-%lu-%s"

#endif
