/*
 * test_service_win.c - Windows (under Wine in CI, in the pre-started Wine
 * session whose services.exe is the service manager): service_win.c and
 * the master role of osevents_win.c.  The test installs itself as a
 * service with `-k install`'s code, starts it, sends control 128 (reload)
 * as `-k restart` does, stops and uninstalls it, checking the states the
 * service manager reports and, in the file the service writes, that each
 * request reached the service's loop.  Run with `--service -n NAME -c
 * FILE` (what install registered), it is that service.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <winsock2.h>
#include <windows.h>

#include <event2/event.h>

#include "osevents.h"
#include "service.h"
#include "testutil.h"

#define DEADLINE_MS 20000

/* ---- the service ---- */

struct svc_state {
    struct event_base *base;
    FILE              *out;
};

static void svc_cb(enum proxy_osevent ev, const char *what, void *arg)
{
    struct svc_state *st = arg;

    fprintf(st->out, "%s %s\n", ev == PROXY_OSEV_RELOAD ? "reload"
            : ev == PROXY_OSEV_STOP_GRACEFUL ? "stop" : ev == PROXY_OSEV_STOP_FAST ? "fast"
            : "ignored", what);
    fflush(st->out);
    if (ev == PROXY_OSEV_STOP_GRACEFUL || ev == PROXY_OSEV_STOP_FAST) {
        proxy_service_stopping();
        event_base_loopbreak(st->base);
    }
}

static int svc_run(void *arg)
{
    const char *path = arg;
    struct svc_state st;
    struct proxy_osevents *os;
    WSADATA wsa;

    if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0 || (st.out = fopen(path, "a")) == NULL)
        return 3;
    st.base = event_base_new();
    os = st.base != NULL ? proxy_osevents_new(st.base, PROXY_OSEV_MASTER, svc_cb, &st) : NULL;
    if (os == NULL)
        return 4;
    fprintf(st.out, "running as a service: %d\n", proxy_service_active());
    fflush(st.out);
    proxy_service_ready();
    event_base_dispatch(st.base);
    proxy_osevents_free(os);
    event_base_free(st.base);
    fclose(st.out);
    return 0;
}

/* ---- the driver ---- */

static DWORD service_state(const char *name, DWORD *exit_code)
{
    SC_HANDLE scm = OpenSCManagerA(NULL, NULL, SC_MANAGER_CONNECT), s;
    SERVICE_STATUS st = { 0 };

    s = scm != NULL ? OpenServiceA(scm, name, SERVICE_QUERY_STATUS) : NULL;
    if (s == NULL || !QueryServiceStatus(s, &st))
        st.dwCurrentState = 0;
    if (exit_code != NULL)
        *exit_code = st.dwWin32ExitCode;
    if (s != NULL)
        CloseServiceHandle(s);
    if (scm != NULL)
        CloseServiceHandle(scm);
    return st.dwCurrentState;
}

/* Whether the service's file gets line within the deadline. */
static int wait_line(const char *path, const char *line)
{
    DWORD start = GetTickCount();

    do {
        char *text = test_read_file(path);
        int found = text != NULL && strstr(text, line) != NULL;

        free(text);
        if (found)
            return 1;
        Sleep(50);
    } while (GetTickCount() - start < DEADLINE_MS);
    fprintf(stderr, "no '%s' in %s\n", line, path);
    return 0;
}

int main(int argc, char **argv)
{
    char name[64], path[MAX_PATH], tmp[MAX_PATH];
    DWORD code;

    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 6 && strcmp(argv[1], "--service") == 0)
        return proxy_service_run(argv[3], svc_run, argv[5]);

    snprintf(name, sizeof(name), "baton-test-%lu", (unsigned long)GetCurrentProcessId());
    CHECK(GetTempPathA(sizeof(tmp), tmp) > 0);
    snprintf(path, sizeof(path), "%s%s.out", tmp, name);
    DeleteFileA(path);

    CHECK(proxy_service_command(PROXY_SERVICE_INSTALL, name, path) == 0);
    CHECK(service_state(name, NULL) == SERVICE_STOPPED);
    /* A second install of the same name is refused. */
    CHECK(proxy_service_command(PROXY_SERVICE_INSTALL, name, path) == 1);

    CHECK(proxy_service_command(PROXY_SERVICE_START, name, NULL) == 0);
    CHECK(service_state(name, NULL) == SERVICE_RUNNING);
    CHECK(wait_line(path, "running as a service: 1"));

    CHECK(proxy_service_command(PROXY_SERVICE_RESTART, name, NULL) == 0);
    CHECK(wait_line(path, "reload service control 128"));
    CHECK(service_state(name, NULL) == SERVICE_RUNNING);

    CHECK(proxy_service_command(PROXY_SERVICE_STOP, name, NULL) == 0);
    CHECK(service_state(name, &code) == SERVICE_STOPPED);
    CHECK(code == NO_ERROR);
    CHECK(wait_line(path, "stop service stop"));

    CHECK(proxy_service_command(PROXY_SERVICE_UNINSTALL, name, NULL) == 0);
    CHECK(service_state(name, NULL) == 0);
    /* Gone: the commands say so. */
    CHECK(proxy_service_command(PROXY_SERVICE_START, name, NULL) == 1);
    DeleteFileA(path);
    return test_summary("service_win");
}
