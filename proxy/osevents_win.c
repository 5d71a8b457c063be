/*
 * osevents_win.c - what Windows asks of a baton process (osevents.h).
 *
 * Master: the console (Ctrl-C and Ctrl-Break: the first asks for a
 * graceful stop, any later one for a fast stop; closing the console, and
 * logoff or shutdown outside a service: fast) and the service control
 * handler's requests (service.h).  Worker: the console is ignored (the
 * master decides; every process of a console gets its Ctrl-C), and the two
 * named events its master sets (PROXY_OSEV_WIN_EVENT_FMT, made by the
 * worker with a DACL for SYSTEM, Administrators and its own account).
 *
 * The console handler and the wait callbacks run in threads of their own:
 * they only record what happened (interlocked flags) and poke the loop's
 * wakeup; the loop calls cb.
 */
#include "osevents.h"

#include <stdio.h>
#include <stdlib.h>

#include <winsock2.h>   /* before windows.h, which would bring the old winsock.h */
#include <windows.h>

#include "log.h"
#include "service.h"
#include "wakeup.h"
#include "winsec.h"

#define CONSOLE_CLOSE_GRACE_MS 4500   /* Windows ends the process 5 s after a close */

enum {
    PEND_FAST = 1,
    PEND_GRACEFUL = 2,
    PEND_IGNORED = 4
};

struct proxy_osevents;

/* A wait callback's context: whose event, and what it asks. */
struct worker_wait {
    struct proxy_osevents *os;
    LONG                   what;
};

struct proxy_osevents {
    enum proxy_osevents_role role;
    proxy_osevents_cb       *cb;
    void                    *arg;
    struct proxy_wakeup     *wake;
    volatile LONG            pending;      /* PEND_* */
    volatile LONG            console_name; /* CTRL_*_EVENT of the last console event */
    volatile LONG            ctrl_c_seen;  /* master: Ctrl-C/Ctrl-Break so far */
    HANDLE                   ev[2];        /* worker: drain, stop */
    HANDLE                   wait[2];
    struct worker_wait       ctx[2];
};

/* One console handler per process, for the osevents that exists now. */
static CRITICAL_SECTION console_lock;
static INIT_ONCE console_once = INIT_ONCE_STATIC_INIT;
static struct proxy_osevents *console_owner;
static HANDLE console_done;   /* set when the owner is freed: a close may end */

static const char *console_event_name(DWORD type)
{
    switch (type) {
    case CTRL_C_EVENT:
        return "Ctrl-C";
    case CTRL_BREAK_EVENT:
        return "Ctrl-Break";
    case CTRL_CLOSE_EVENT:
        return "console close";
    case CTRL_LOGOFF_EVENT:
        return "logoff";
    case CTRL_SHUTDOWN_EVENT:
        return "system shutdown";
    default:
        return "console event";
    }
}

static void post(struct proxy_osevents *os, LONG what)
{
    InterlockedOr(&os->pending, what);
    proxy_wakeup_poke(os->wake);
}

/* What the master makes of a console event (PEND_*, or 0: not ours). */
static LONG master_console(struct proxy_osevents *os, DWORD type)
{
    switch (type) {
    case CTRL_C_EVENT:
    case CTRL_BREAK_EVENT:
        return InterlockedIncrement(&os->ctrl_c_seen) == 1 ? PEND_GRACEFUL : PEND_FAST;
    case CTRL_CLOSE_EVENT:
        return PEND_FAST;
    default:
        /* A service gets logoff events of every user, and its shutdown
         * from the service manager. */
        return proxy_service_active() ? 0 : PEND_FAST;
    }
}

static BOOL WINAPI console_handler(DWORD type)
{
    struct proxy_osevents *os;
    LONG what;

    EnterCriticalSection(&console_lock);
    os = console_owner;
    if (os == NULL) {
        LeaveCriticalSection(&console_lock);
        return FALSE;
    }
    what = os->role == PROXY_OSEV_WORKER ? PEND_IGNORED : master_console(os, type);
    if (what != 0) {
        InterlockedExchange(&os->console_name, (LONG)type);
        post(os, what);
    }
    LeaveCriticalSection(&console_lock);
    /* After a close, logoff or shutdown Windows ends the process when the
     * handler returns: give the loop its time to stop. */
    if (what == PEND_FAST && type != CTRL_C_EVENT && type != CTRL_BREAK_EVENT)
        WaitForSingleObject(console_done, CONSOLE_CLOSE_GRACE_MS);
    return TRUE;
}

static BOOL CALLBACK console_init(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
    InitializeCriticalSection(&console_lock);
    console_done = CreateEventA(NULL, TRUE, FALSE, NULL);
    return console_done != NULL;
}

static void osevents_wake_cb(void *arg)
{
    struct proxy_osevents *os = arg;
    LONG pending = InterlockedExchange(&os->pending, 0);
    const char *console = console_event_name((DWORD)os->console_name);
    enum proxy_osevent ev;
    const char *what;

    if (os->role == PROXY_OSEV_WORKER) {
        if (pending & PEND_FAST)
            os->cb(PROXY_OSEV_STOP_FAST, "stop event", os->arg);
        else if (pending & PEND_GRACEFUL)
            os->cb(PROXY_OSEV_STOP_GRACEFUL, "drain event", os->arg);
        if (pending & PEND_IGNORED)
            os->cb(PROXY_OSEV_IGNORED, console, os->arg);
        return;
    }
    if (pending & PEND_FAST)
        os->cb(PROXY_OSEV_STOP_FAST, console, os->arg);
    else if (pending & PEND_GRACEFUL)
        os->cb(PROXY_OSEV_STOP_GRACEFUL, console, os->arg);
    while (proxy_service_take_request(&ev, &what))
        os->cb(ev, what, os->arg);
}

static VOID CALLBACK worker_event_cb(PVOID arg, BOOLEAN timed_out)
{
    struct worker_wait *w = arg;

    (void)timed_out;
    post(w->os, w->what);
}

static int worker_events(struct proxy_osevents *os)
{
    static const char *const kinds[2] = { "drain", "stop" };
    PSECURITY_DESCRIPTOR sd;
    SECURITY_ATTRIBUTES sa = { sizeof(sa), NULL, FALSE };
    char name[96], why[256], err[160];
    int rc = -1;

    sd = proxy_winsec_private_sd(why, sizeof(why));
    if (sd == NULL) {
        proxy_log_error("worker: stop events: %s", why);
        return -1;
    }
    sa.lpSecurityDescriptor = sd;
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof(name), PROXY_OSEV_WIN_EVENT_FMT,
                 (unsigned long)GetCurrentProcessId(), kinds[i]);
        os->ev[i] = CreateEventA(&sa, FALSE, FALSE, name);
        if (os->ev[i] == NULL) {
            proxy_log_error("worker: cannot create event %s: %s", name,
                            proxy_winsec_strerror(GetLastError(), err, sizeof(err)));
            goto out;
        }
        /* Made before us: by our master when it stopped us while we
         * started (children_win.c; the event may be set already, and the
         * wait below sees it), or by someone else, who could then stop us:
         * accepted only from an owner trusted as the master is. */
        if (GetLastError() == ERROR_ALREADY_EXISTS) {
            int trusted = proxy_winsec_object_trusted(os->ev[i], why, sizeof(why));

            if (trusted != 1) {
                proxy_log_error("worker: event %s already exists and its owner is %s; "
                                "refusing it", name,
                                trusted == 0 ? "not SYSTEM, Administrators or this account"
                                             : why);
                goto out;
            }
        }
    }
    for (int i = 0; i < 2; i++) {
        os->ctx[i].os = os;
        os->ctx[i].what = i == 0 ? PEND_GRACEFUL : PEND_FAST;
        if (!RegisterWaitForSingleObject(&os->wait[i], os->ev[i], worker_event_cb,
                                         &os->ctx[i], INFINITE, WT_EXECUTEDEFAULT)) {
            os->wait[i] = NULL;
            proxy_log_error("worker: cannot wait on its %s event: %s", kinds[i],
                            proxy_winsec_strerror(GetLastError(), err, sizeof(err)));
            goto out;
        }
    }
    rc = 0;
out:
    LocalFree(sd);
    return rc;
}

struct proxy_osevents *proxy_osevents_new(struct event_base *base, enum proxy_osevents_role role,
                                          proxy_osevents_cb *cb, void *arg)
{
    struct proxy_osevents *os;

    if (!InitOnceExecuteOnce(&console_once, console_init, NULL, NULL)) {
        proxy_log_error("os events: cannot set up the console handler's state");
        return NULL;
    }
    os = calloc(1, sizeof(*os));
    if (os == NULL) {
        proxy_log_error("os events: out of memory");
        return NULL;
    }
    os->role = role;
    os->cb = cb;
    os->arg = arg;
    os->wake = proxy_wakeup_new(base, osevents_wake_cb, os);
    if (os->wake == NULL || (role == PROXY_OSEV_WORKER && worker_events(os) != 0))
        goto fail;
    EnterCriticalSection(&console_lock);
    console_owner = os;
    ResetEvent(console_done);
    LeaveCriticalSection(&console_lock);
    if (!SetConsoleCtrlHandler(console_handler, TRUE)) {
        proxy_log_error("os events: SetConsoleCtrlHandler failed (%lu)",
                        (unsigned long)GetLastError());
        goto fail;
    }
    if (role == PROXY_OSEV_MASTER)
        proxy_service_attach(os->wake);
    return os;
fail:
    proxy_osevents_free(os);
    return NULL;
}

void proxy_osevents_free(struct proxy_osevents *os)
{
    if (os == NULL)
        return;
    if (os->role == PROXY_OSEV_MASTER)
        proxy_service_attach(NULL);
    EnterCriticalSection(&console_lock);
    if (console_owner == os) {
        console_owner = NULL;
        SetEvent(console_done);
    }
    LeaveCriticalSection(&console_lock);
    for (int i = 0; i < 2; i++) {
        /* INVALID_HANDLE_VALUE: returns once a running callback is done. */
        if (os->wait[i] != NULL)
            (void)UnregisterWaitEx(os->wait[i], INVALID_HANDLE_VALUE);
        if (os->ev[i] != NULL)
            CloseHandle(os->ev[i]);
    }
    proxy_wakeup_free(os->wake);
    free(os);
}
