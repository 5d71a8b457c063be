/*
 * children_win.c - the processes a Windows master started: their exits
 * reported in the loop (process.h's watch) and the master's way to stop
 * them (proxy_process_stop).
 *
 * Each child's process handle is kept until its exit has been reported:
 * Windows reuses a pid once no handle to the process is left, so while a
 * child is listed here its pid cannot name another process.  The exit is
 * noticed by a wait of the thread pool (RegisterWaitForSingleObject), whose
 * callback only marks the child and pokes the loop; the loop's thread
 * reads the exit code, closes the handles and calls the watch's callback.
 */
#include "process.h"
#include "process_win.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "osevents.h"
#include "wakeup.h"
#include "winsec.h"

struct proxy_process_watch {
    struct proxy_wakeup   *wakeup;
    proxy_process_exit_cb *cb;
    void                  *arg;
};

struct child {
    struct child                *next;
    HANDLE                       proc;
    DWORD                        pid;
    HANDLE                       wait;       /* the pool's wait, NULL when not watched */
    struct proxy_process_watch  *watch;      /* whom the wait pokes */
    HANDLE                       events[2];  /* "drain", "stop" (osevents.h), once set */
    volatile LONG                exited;     /* set by the pool's callback */
};

/* The list and the one watch; the pool's callback takes no lock. */
static SRWLOCK children_lock = SRWLOCK_INIT;
static struct child *children;
static struct proxy_process_watch *children_watch;

static VOID CALLBACK child_exited(PVOID ctx, BOOLEAN timed_out)
{
    struct child *c = ctx;

    (void)timed_out;   /* INFINITE: never */
    InterlockedExchange(&c->exited, 1);
    proxy_wakeup_poke(c->watch->wakeup);
}

/* Called with the lock held. */
static int child_watch(struct child *c, struct proxy_process_watch *w)
{
    c->watch = w;
    if (!RegisterWaitForSingleObject(&c->wait, c->proc, child_exited, c, INFINITE,
                                     WT_EXECUTEONLYONCE)) {
        c->wait = NULL;
        c->watch = NULL;
        return -1;
    }
    return 0;
}

/* Called with the lock held.  Returns once the callback can no longer run. */
static void child_unwatch(struct child *c)
{
    if (c->wait != NULL && !UnregisterWaitEx(c->wait, INVALID_HANDLE_VALUE))
        proxy_log_error("worker %lu: cannot stop watching its exit: error %lu", c->pid,
                        GetLastError());
    c->wait = NULL;
    c->watch = NULL;
}

int proxy_win_children_add(HANDLE proc, DWORD pid, char *why, size_t n)
{
    struct child *c = calloc(1, sizeof(*c));
    int rc = 0;

    if (c == NULL) {
        snprintf(why, n, "out of memory");
        return -1;
    }
    c->proc = proc;
    c->pid = pid;
    AcquireSRWLockExclusive(&children_lock);
    if (children_watch != NULL && child_watch(c, children_watch) != 0) {
        snprintf(why, n, "RegisterWaitForSingleObject: error %lu", GetLastError());
        rc = -1;
    } else {
        c->next = children;
        children = c;
    }
    ReleaseSRWLockExclusive(&children_lock);
    if (rc != 0)
        free(c);
    return rc;
}

static struct child *child_find(DWORD pid)
{
    for (struct child *c = children; c != NULL; c = c->next)
        if (c->pid == pid)
            return c;
    return NULL;
}

/* Takes the first child whose exit was seen off the list, or NULL. */
static struct child *child_take_exited(void)
{
    struct child *c = NULL, **pp;

    AcquireSRWLockExclusive(&children_lock);
    for (pp = &children; *pp != NULL; pp = &(*pp)->next)
        if (InterlockedCompareExchange(&(*pp)->exited, 0, 0) != 0) {
            c = *pp;
            *pp = c->next;
            break;
        }
    if (c != NULL)
        child_unwatch(c);
    ReleaseSRWLockExclusive(&children_lock);
    return c;
}

/* The exit code as a status, the child's handles closed. */
static int child_finish(struct child *c)
{
    DWORD code;

    if (!GetExitCodeProcess(c->proc, &code)) {
        proxy_log_error("worker %lu: cannot read its exit code: error %lu", c->pid,
                        GetLastError());
        code = (DWORD)-1;
    }
    for (int i = 0; i < 2; i++)
        if (c->events[i] != NULL)
            CloseHandle(c->events[i]);
    CloseHandle(c->proc);
    free(c);
    return (int)code;
}

static void watch_reap(void *arg)
{
    struct proxy_process_watch *w = arg;
    struct child *c;

    while ((c = child_take_exited()) != NULL) {
        pid_t pid = (pid_t)c->pid;
        int status = child_finish(c);

        w->cb(pid, status, w->arg);
    }
}

struct proxy_process_watch *proxy_process_watch_new(struct event_base *base,
                                                    proxy_process_exit_cb *cb, void *arg)
{
    struct proxy_process_watch *w = calloc(1, sizeof(*w));
    int rc = 0;

    if (w == NULL) {
        proxy_log_error("process watch: out of memory");
        return NULL;
    }
    w->cb = cb;
    w->arg = arg;
    w->wakeup = proxy_wakeup_new(base, watch_reap, w);
    if (w->wakeup == NULL) {
        free(w);
        return NULL;
    }
    AcquireSRWLockExclusive(&children_lock);
    if (children_watch != NULL) {
        proxy_log_error("process watch: this process already has one");
        rc = -1;
    }
    for (struct child *c = children; rc == 0 && c != NULL; c = c->next)
        if (child_watch(c, w) != 0) {
            proxy_log_error("process watch: worker %lu: RegisterWaitForSingleObject: "
                            "error %lu", c->pid, GetLastError());
            rc = -1;
        }
    if (rc == 0)
        children_watch = w;
    else
        for (struct child *c = children; c != NULL; c = c->next)
            if (c->watch == w)
                child_unwatch(c);
    ReleaseSRWLockExclusive(&children_lock);
    if (rc != 0) {
        proxy_wakeup_free(w->wakeup);
        free(w);
        return NULL;
    }
    return w;
}

void proxy_process_watch_free(struct proxy_process_watch *w)
{
    if (w == NULL)
        return;
    /* Children stay listed, unwatched: a later watch reports them. */
    AcquireSRWLockExclusive(&children_lock);
    for (struct child *c = children; c != NULL; c = c->next)
        if (c->watch == w)
            child_unwatch(c);
    if (children_watch == w)
        children_watch = NULL;
    ReleaseSRWLockExclusive(&children_lock);
    proxy_wakeup_free(w->wakeup);
    free(w);
}

static int errno_of(DWORD err)
{
    return err == ERROR_ACCESS_DENIED ? EPERM : EINVAL;
}

/* Sets the child's "drain" or "stop" event.  The master creates the event
 * if the worker has not yet (it opens the same one later and finds it
 * set: a stop asked for while a worker starts is not lost), and keeps its
 * handle until the child's exit is reported, so the event lives as long as
 * either side needs it.  Called with the lock held. */
static int child_set_event(struct child *c, int which)
{
    static const char *const names[2] = { "drain", "stop" };
    SECURITY_ATTRIBUTES sa = { sizeof(sa), NULL, FALSE };
    char name[64], why[256];

    if (c->events[which] == NULL) {
        snprintf(name, sizeof(name), PROXY_OSEV_WIN_EVENT_FMT, (unsigned long)c->pid,
                 names[which]);
        /* Owned by this account with the worker's own DACL: the worker
         * accepts an event made first only from an owner it trusts
         * (osevents_win.c). */
        if ((sa.lpSecurityDescriptor = proxy_winsec_private_sd(why, sizeof(why))) == NULL) {
            proxy_log_error("worker %lu: %s event: %s", (unsigned long)c->pid, names[which], why);
            errno = EPERM;
            return -1;
        }
        /* Auto-reset: the worker's one wait consumes it. */
        c->events[which] = CreateEventA(&sa, FALSE, FALSE, name);
        LocalFree(sa.lpSecurityDescriptor);
        if (c->events[which] == NULL) {
            errno = errno_of(GetLastError());
            return -1;
        }
    }
    if (!SetEvent(c->events[which])) {
        errno = errno_of(GetLastError());
        return -1;
    }
    return 0;
}

int proxy_process_stop(pid_t pid, enum proxy_process_stop how)
{
    struct child *c;
    int rc = 0;

    AcquireSRWLockExclusive(&children_lock);
    /* Only our own children: any other pid may name anyone by now. */
    c = pid > 0 && pid <= (pid_t)MAXDWORD ? child_find((DWORD)pid) : NULL;
    if (c == NULL || WaitForSingleObject(c->proc, 0) == WAIT_OBJECT_0) {
        errno = ESRCH;
        rc = -1;
    } else if (how == PROXY_PROCESS_KILL) {
        if (!TerminateProcess(c->proc, PROXY_PROCESS_WIN_KILLED)) {
            /* Refused to a process that is already ending. */
            errno = WaitForSingleObject(c->proc, 0) == WAIT_OBJECT_0
                        ? ESRCH : errno_of(GetLastError());
            rc = -1;
        }
    } else {
        rc = child_set_event(c, how == PROXY_PROCESS_DRAIN ? 0 : 1);
    }
    ReleaseSRWLockExclusive(&children_lock);
    return rc;
}
