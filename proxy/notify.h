/*
 * notify.h - service manager readiness notification (systemd's sd_notify
 * datagram protocol, implemented directly: READY=1, RELOADING=1,
 * STOPPING=1, STATUS=...).  Does nothing when not run by one.
 */
#ifndef BATON_PROXY_NOTIFY_H
#define BATON_PROXY_NOTIFY_H

/* Reads (and removes from the environment, so workers do not inherit it)
 * NOTIFY_SOCKET.  Call once, early, in the master. */
void proxy_notify_init(void);
/* Puts NOTIFY_SOCKET back before the master re-executes itself. */
void proxy_notify_restore_env(void);
/* Sends one datagram of newline-separated assignments. */
void proxy_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "RELOADING=1\nMONOTONIC_USEC=..." as systemd's Type=notify-reload wants. */
void proxy_notify_reloading(const char *status);

#endif
