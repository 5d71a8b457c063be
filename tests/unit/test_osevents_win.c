/*
 * test_osevents_win.c - Windows (under Wine in CI): a worker's stop events
 * (osevents_win.c).  The worker role creates "Local\baton-worker-PID-drain"
 * and "-stop"; setting them from another thread, as a master's
 * proxy_process_stop does from its process, reaches the loop's callback as
 * a graceful and then a fast stop.  An event of that name made first by
 * the master (same account; a stop asked for while the worker starts) is
 * accepted and its stop delivered; one whose owner is another account is
 * refused.
 */
#include <stdio.h>
#include <string.h>

#include <winsock2.h>
#include <windows.h>

#include <event2/event.h>

#include <sddl.h>

#include "osevents.h"
#include "testutil.h"
#include "winsec.h"

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

    /* The master made the event first and set it (children_win.c: a stop
     * asked for while the worker starts): accepted, and not lost. */
    snprintf(name, sizeof(name), PROXY_OSEV_WIN_EVENT_FMT, (unsigned long)GetCurrentProcessId(),
             "stop");
    {
        SECURITY_ATTRIBUTES sa = { sizeof(sa), NULL, FALSE };
        char why[256];

        sa.lpSecurityDescriptor = proxy_winsec_private_sd(why, sizeof(why));
        CHECK(sa.lpSecurityDescriptor != NULL);
        squat = CreateEventA(&sa, FALSE, FALSE, name);
        LocalFree(sa.lpSecurityDescriptor);
    }
    CHECK(squat != NULL);
    CHECK(SetEvent(squat));
    os = proxy_osevents_new(base, PROXY_OSEV_WORKER, cb, &s);
    CHECK(os != NULL);
    loop_until(base, &s, 3);
    CHECK(s.n == 3);
    CHECK(s.ev[2] == PROXY_OSEV_STOP_FAST);
    proxy_osevents_free(os);
    CloseHandle(squat);

    /* Owners: SYSTEM, Administrators and this account are trusted, anyone
     * else (here: Everyone) is not. */
    {
        BYTE sid[SECURITY_MAX_SID_SIZE];
        DWORD size = sizeof(sid);
        char why[256];

        CHECK(CreateWellKnownSid(WinWorldSid, NULL, sid, &size));
        CHECK(proxy_winsec_owner_trusted(sid, why, sizeof(why)) == 0);
        size = sizeof(sid);
        CHECK(CreateWellKnownSid(WinLocalSystemSid, NULL, sid, &size));
        CHECK(proxy_winsec_owner_trusted(sid, why, sizeof(why)) == 1);
        size = sizeof(sid);
        CHECK(CreateWellKnownSid(WinBuiltinAdministratorsSid, NULL, sid, &size));
        CHECK(proxy_winsec_owner_trusted(sid, why, sizeof(why)) == 1);
    }

    /* Someone else who made the event first could stop the worker: refused.
     * Windows lets only a privileged process give an object another owner;
     * Wine does not check, which lets the test make one. */
    {
        SECURITY_ATTRIBUTES sa = { sizeof(sa), NULL, FALSE };

        CHECK(ConvertStringSecurityDescriptorToSecurityDescriptorA(
            "O:WDD:(A;;GA;;;WD)", SDDL_REVISION_1, &sa.lpSecurityDescriptor, NULL));
        squat = CreateEventA(&sa, FALSE, FALSE, name);
        LocalFree(sa.lpSecurityDescriptor);
        if (squat != NULL) {
            char why[256];

            if (proxy_winsec_object_trusted(squat, why, sizeof(why)) == 0) {
                os = proxy_osevents_new(base, PROXY_OSEV_WORKER, cb, &s);
                CHECK(os == NULL);
                proxy_osevents_free(os);
            } else {
                printf("# the event's owner did not take (%s): refusal not exercised\n",
                       why);
            }
            CloseHandle(squat);
        } else {
            printf("# no event with another owner (error %lu): refusal not exercised\n",
                   (unsigned long)GetLastError());
        }
    }

    event_base_free(base);
    WSACleanup();
    return test_summary("osevents_win");
}
