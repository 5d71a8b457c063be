/*
 * notify.h - service manager readiness notification, in the words of
 * systemd's sd_notify protocol (READY=1, RELOADING=1, STOPPING=1,
 * STATUS=...) whatever the OS.  Does nothing when not run by one.  One
 * implementation per OS:
 *   notify_systemd.c  the sd_notify datagram, implemented directly
 *   notify_win.c      the Service Control Manager's status: the state and
 *                     STATUS text go to proxy_notify_service, which the
 *                     service glue (service_win.c) provides
 */
#ifndef BATON_PROXY_NOTIFY_H
#define BATON_PROXY_NOTIFY_H

#include "port_libc.h"

/* Reads (and removes from the environment, so workers do not inherit it)
 * NOTIFY_SOCKET.  Call once, early, in the master. */
void proxy_notify_init(void);
/* Puts NOTIFY_SOCKET back before the master re-executes itself. */
void proxy_notify_restore_env(void);
/* Sends one datagram of newline-separated assignments. */
void proxy_notify(const char *fmt, ...) PORT_PRINTF(1, 2);
/* "RELOADING=1\nMONOTONIC_USEC=..." as systemd's Type=notify-reload wants. */
void proxy_notify_reloading(const char *status);

/* Windows: what notify_win.c hands to the service glue.  Called in the
 * master's loop thread; the service glue maps it to SERVICE_RUNNING,
 * SERVICE_STOP_PENDING (with a wait hint), or keeps the state and only
 * records the text (STATUS alone; RELOADING, which has no SCM state: a
 * service that reloads stays RUNNING).  status is "" when none was given. */
enum proxy_notify_state {
    PROXY_NOTIFY_READY,
    PROXY_NOTIFY_RELOADING,
    PROXY_NOTIFY_STOPPING,
    PROXY_NOTIFY_STATUS
};
void proxy_notify_service(enum proxy_notify_state state, const char *status);

#endif
