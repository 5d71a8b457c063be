/*
 * test_osevents_win.c - Windows (under Wine in CI): a worker's stop events
 * (osevents_win.c).  The worker role creates "Local\baton-worker-PID-drain"
 * and "-stop"; setting them from another thread, as a master's
 * proxy_process_stop does from its process, reaches the loop's callback as
 * a graceful and then a fast stop.  An event of that name made by someone
 * else first is refused.
 */
#include <stdio.h>
#include <string.h>

#include <winsock2.h>
#include <windows.h>

#include <event2/event.h>

#include "osevents.h"
#include "testutil.h"

#define DEADLINE_MS 10000

struct seen {
    int                n;
    enum proxy_osevent ev[4];
    char               what[4][32];
};

static void cb(enum proxy_osevent ev, const char *what, void *arg)
{
    struct seen *s = arg;

    if (s->n < 4) {
        s->ev[s->n] = ev;
        snprintf(s->what[s->n], sizeof(s->what[0]), "%s", what);
    }
    s->n++;
}

static int set_event(const char *kind)
{
    char name[96];
    HANDLE h;
    BOOL ok;

    snprintf(name, sizeof(name), PROXY_OSEV_WIN_EVENT_FMT, (unsigned long)GetCurrentProcessId(),
             kind);
    h = OpenEventA(EVENT_MODIFY_STATE, FALSE, name);
    if (h == NULL)
        return -1;
    ok = SetEvent(h);
    CloseHandle(h);
    return ok ? 0 : -1;
}

/* Runs the loop until n events were seen (or the deadline). */
static void loop_until(struct event_base *base, struct seen *s, int n)
{
    DWORD start = GetTickCount();
    struct timeval tick = { 0, 20000 };

    while (s->n < n && GetTickCount() - start < DEADLINE_MS) {
        event_base_loopexit(base, &tick);
        event_base_dispatch(base);
    }
}

int main(int argc, char **argv)
{
    WSADATA wsa;
    struct event_base *base;
    struct proxy_osevents *os;
    struct seen s = { 0 };
    char name[96];
    HANDLE squat;

    CHECK(WSAStartup(MAKEWORD(2, 2), &wsa) == 0);
    base = event_base_new();
    CHECK(base != NULL);
    os = proxy_osevents_new(base, PROXY_OSEV_WORKER, cb, &s);
    CHECK(os != NULL);
    if (os == NULL)
        return test_summary("osevents_win");

    CHECK(set_event("drain") == 0);
    loop_until(base, &s, 1);
    CHECK(s.n == 1);
    CHECK(s.ev[0] == PROXY_OSEV_STOP_GRACEFUL);
    CHECK_STR(s.what[0], "drain event");

    CHECK(set_event("stop") == 0);
    loop_until(base, &s, 2);
    CHECK(s.n == 2);
    CHECK(s.ev[1] == PROXY_OSEV_STOP_FAST);
    CHECK_STR(s.what[1], "stop event");
    proxy_osevents_free(os);

    /* Freed: the names are gone with the events. */
    CHECK(set_event("drain") == -1);

    /* Someone who made the event first could stop the worker: refused. */
    snprintf(name, sizeof(name), PROXY_OSEV_WIN_EVENT_FMT, (unsigned long)GetCurrentProcessId(),
             "stop");
    squat = CreateEventA(NULL, FALSE, FALSE, name);
    CHECK(squat != NULL);
    os = proxy_osevents_new(base, PROXY_OSEV_WORKER, cb, &s);
    CHECK(os == NULL);
    proxy_osevents_free(os);
    CloseHandle(squat);

    event_base_free(base);
    WSACleanup();
    return test_summary("osevents_win");
}
