/*
 * service.h - baton run by the operating system's service manager, and the
 * `-k` commands that register and drive it.  One implementation per OS:
 *   service_win.c   the Windows Service Control Manager: `--service` runs
 *                   the master under StartServiceCtrlDispatcherW (chosen by
 *                   that flag, never by probing: under Wine the probe takes
 *                   10 s to fail), states START_PENDING/RUNNING/
 *                   STOP_PENDING/STOPPED, controls STOP, SHUTDOWN,
 *                   PARAMCHANGE and 128 (reload), the event log
 *   service_none.c  no such manager (on Linux systemd plays this part,
 *                   through notify.c): `-k` and `--service` are refused
 */
#ifndef BATON_PROXY_SERVICE_H
#define BATON_PROXY_SERVICE_H

#include <stddef.h>

#include "conf.h"
#include "osevents.h"

#define PROXY_SERVICE_NAME_DEFAULT "baton"
#define PROXY_SERVICE_NAME_MAX     256     /* the SCM's limit for a service name */
#define PROXY_SERVICE_CONTROL_RELOAD 128   /* user-defined control code: reload */

enum proxy_service_cmd {
    PROXY_SERVICE_INSTALL,
    PROXY_SERVICE_UNINSTALL,
    PROXY_SERVICE_START,
    PROXY_SERVICE_STOP,
    PROXY_SERVICE_RESTART        /* control 128: the running master reloads */
};

/* `-k CMD -n NAME`: INSTALL registers this executable as service name run
 * with `--service -n NAME -c CONF_PATH` (made absolute).  Prints what was
 * done (stdout) or why not (stderr); returns the exit status: 0, 1 (the
 * service manager refused), 2 (no service manager on this OS). */
int proxy_service_command(enum proxy_service_cmd cmd, const char *name, const char *conf_path);

/* `--service -n NAME`: this process was started by the service manager;
 * runs run(arg) (the master) as the service and returns the process exit
 * status.  run's status becomes the service's exit code. */
typedef int proxy_service_main(void *arg);
int proxy_service_run(const char *name, proxy_service_main *run, void *arg);

/* Whether this process runs as a service (proxy_service_run). */
int proxy_service_active(void);

/* The master's progress, told to the service manager; nothing outside a
 * service.  ready: the first worker serves (RUNNING).  stopping: the
 * master is stopping (STOP_PENDING; each call is a new checkpoint, so a
 * long drain keeps the manager's wait hint alive). */
void proxy_service_ready(void);
void proxy_service_stopping(void);

/* Writes msg to the OS's event log as the service (start, stop, reload,
 * failure), besides the log file the caller writes.  Nothing outside a
 * service. */
void proxy_service_event(enum conf_log_level level, const char *msg);

/* The default configuration file (Windows %ProgramData%\baton\baton.ini,
 * elsewhere CONF_DEFAULT_PATH).  0, or -1 with why. */
int proxy_service_default_config(char *out, size_t outlen, char *why, size_t whylen);

/* osevents_win.c's master role: the service manager's requests wake w,
 * whose callback takes them with proxy_service_take_request (the control
 * handler only records and pokes: the SCM wants its answer at once).
 * NULL detaches. */
struct proxy_wakeup;
void proxy_service_attach(struct proxy_wakeup *w);
/* The most pressing request not taken yet: 1 with *ev and *what, or 0. */
int proxy_service_take_request(enum proxy_osevent *ev, const char **what);

#endif
