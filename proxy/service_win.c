/*
 * service_win.c - baton as a Windows service (service.h).
 *
 * `--service` (what `-k install` registers) runs the master in ServiceMain
 * under StartServiceCtrlDispatcherW.  The service reports START_PENDING
 * until the master says its first worker serves (RUNNING), STOP_PENDING
 * with a new checkpoint each time the master reports progress, and
 * STOPPED with the master's exit status.  The control handler answers the
 * service manager at once: it only records the request and wakes the
 * master's loop (osevents_win.c), which takes it with
 * proxy_service_take_request.
 *   STOP        graceful stop (drain)
 *   SHUTDOWN    fast stop (the system is going down)
 *   PARAMCHANGE, 128  reload
 * Start, stop, reload and failure also go to the event log (source: the
 * service's name).
 */
#include "notify.h"
#include "service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include <winsock2.h>   /* before windows.h, which would bring the old winsock.h */
#include <windows.h>
#include <shlobj.h>

#include "wakeup.h"
#include "winsec.h"

#define SERVICE_WAIT_HINT_MS  30000   /* what a start or a drain step may take */
#define SERVICE_CMD_WAIT_MS   60000   /* -k start/stop wait this long for the state */
#define SERVICE_POLL_MS       100

enum { REQ_FAST = 1, REQ_GRACEFUL = 2, REQ_RELOAD = 4 };

static struct {
    wchar_t                name[PROXY_SERVICE_NAME_MAX];
    proxy_service_main    *run;
    void                  *arg;
    int                    rc;
    int                    active;
    SERVICE_STATUS_HANDLE  handle;
    HANDLE                 eventlog;
    CRITICAL_SECTION       lock;      /* status, wake */
    SERVICE_STATUS         status;
    struct proxy_wakeup   *wake;
    volatile LONG          pending;   /* REQ_* */
    volatile LONG          reload_code;
} svc;

static const char *win_err(DWORD err, char *buf, size_t len)
{
    return proxy_winsec_strerror(err, buf, len);
}

static int to_wide(const char *s, wchar_t *out, size_t outlen)
{
    return MultiByteToWideChar(CP_ACP, 0, s, -1, out, (int)outlen) > 0 ? 0 : -1;
}

/* Sets the state (and what is accepted in it); under svc.lock. */
static void set_state(DWORD state, DWORD wait_hint)
{
    EnterCriticalSection(&svc.lock);
    if (svc.status.dwCurrentState != state)
        svc.status.dwCheckPoint = 0;
    else if (state == SERVICE_START_PENDING || state == SERVICE_STOP_PENDING)
        svc.status.dwCheckPoint++;
    svc.status.dwCurrentState = state;
    svc.status.dwWaitHint = wait_hint;
    svc.status.dwControlsAccepted = state == SERVICE_RUNNING
        ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN | SERVICE_ACCEPT_PARAMCHANGE
        : state == SERVICE_STOP_PENDING ? SERVICE_ACCEPT_SHUTDOWN : 0;
    if (svc.handle != NULL)
        (void)SetServiceStatus(svc.handle, &svc.status);
    LeaveCriticalSection(&svc.lock);
}

static void request(LONG what, DWORD code)
{
    if (what == REQ_RELOAD)
        InterlockedExchange(&svc.reload_code, (LONG)code);
    InterlockedOr(&svc.pending, what);
    EnterCriticalSection(&svc.lock);
    if (svc.wake != NULL)
        proxy_wakeup_poke(svc.wake);
    LeaveCriticalSection(&svc.lock);
}

static DWORD WINAPI service_handler(DWORD code, DWORD type, LPVOID data, LPVOID ctx)
{
    (void)type;
    (void)data;
    (void)ctx;
    switch (code) {
    case SERVICE_CONTROL_INTERROGATE:
        return NO_ERROR;
    case SERVICE_CONTROL_STOP:
        set_state(SERVICE_STOP_PENDING, SERVICE_WAIT_HINT_MS);
        request(REQ_GRACEFUL, code);
        return NO_ERROR;
    case SERVICE_CONTROL_SHUTDOWN:
        set_state(SERVICE_STOP_PENDING, SERVICE_WAIT_HINT_MS);
        request(REQ_FAST, code);
        return NO_ERROR;
    case SERVICE_CONTROL_PARAMCHANGE:
    case PROXY_SERVICE_CONTROL_RELOAD:
        request(REQ_RELOAD, code);
        return NO_ERROR;
    default:
        return ERROR_CALL_NOT_IMPLEMENTED;
    }
}

int proxy_service_take_request(enum proxy_osevent *ev, const char **what)
{
    LONG pending = InterlockedExchange(&svc.pending, 0), rest;

    if (pending == 0)
        return 0;
    if (pending & REQ_FAST) {
        *ev = PROXY_OSEV_STOP_FAST;
        *what = "service shutdown";
        rest = pending & ~REQ_FAST;
    } else if (pending & REQ_GRACEFUL) {
        *ev = PROXY_OSEV_STOP_GRACEFUL;
        *what = "service stop";
        rest = pending & ~REQ_GRACEFUL;
    } else {
        *ev = PROXY_OSEV_RELOAD;
        *what = svc.reload_code == SERVICE_CONTROL_PARAMCHANGE ? "service paramchange"
                                                                : "service control 128";
        rest = pending & ~REQ_RELOAD;
    }
    if (rest != 0)
        InterlockedOr(&svc.pending, rest);
    return 1;
}

void proxy_service_attach(struct proxy_wakeup *w)
{
    if (!svc.active)
        return;
    EnterCriticalSection(&svc.lock);
    svc.wake = w;
    /* Requests made before the loop was there are not lost. */
    if (w != NULL && svc.pending != 0)
        proxy_wakeup_poke(w);
    LeaveCriticalSection(&svc.lock);
}

int proxy_service_active(void)
{
    return svc.active;
}

void proxy_service_ready(void)
{
    if (!svc.active || svc.status.dwCurrentState != SERVICE_START_PENDING)
        return;
    set_state(SERVICE_RUNNING, 0);
    proxy_service_event(CONF_LOG_INFO, "baton started: the first worker serves");
}

void proxy_service_stopping(void)
{
    if (svc.active)
        set_state(SERVICE_STOP_PENDING, SERVICE_WAIT_HINT_MS);
}

void proxy_service_event(enum conf_log_level level, const char *msg)
{
    WORD type = level == CONF_LOG_ERROR ? EVENTLOG_ERROR_TYPE
              : level == CONF_LOG_WARN ? EVENTLOG_WARNING_TYPE : EVENTLOG_INFORMATION_TYPE;
    const char *strings[1] = { msg };

    if (svc.active && svc.eventlog != NULL)
        (void)ReportEventA(svc.eventlog, type, 0, 1, NULL, 1, 0, strings, NULL);
}

/* notify.h on Windows: what the master tells systemd on Linux becomes the
 * service's state, and the reloads and their results go to the event log. */
void proxy_notify_service(enum proxy_notify_state state, const char *status)
{
    char msg[512];

    switch (state) {
    case PROXY_NOTIFY_READY:
        proxy_service_ready();
        break;
    case PROXY_NOTIFY_STOPPING:
        proxy_service_stopping();
        break;
    case PROXY_NOTIFY_RELOADING:
        snprintf(msg, sizeof(msg), "baton reloading: %s", status);
        proxy_service_event(CONF_LOG_INFO, msg);
        break;
    case PROXY_NOTIFY_STATUS:
        break;
    }
}

static void WINAPI service_main(DWORD argc, LPWSTR *argv)
{
    char msg[128];

    (void)argc;
    (void)argv;
    svc.handle = RegisterServiceCtrlHandlerExW(svc.name, service_handler, NULL);
    if (svc.handle == NULL) {
        svc.rc = 1;
        return;
    }
    svc.eventlog = RegisterEventSourceW(NULL, svc.name);   /* NULL: no event log, still run */
    svc.status.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
    set_state(SERVICE_START_PENDING, SERVICE_WAIT_HINT_MS);
    svc.rc = svc.run(svc.arg);
    if (svc.rc != 0) {
        snprintf(msg, sizeof(msg), "baton stopped after a failure (exit status %d; see its "
                 "log)", svc.rc);
        proxy_service_event(CONF_LOG_ERROR, msg);
        svc.status.dwWin32ExitCode = ERROR_SERVICE_SPECIFIC_ERROR;
        svc.status.dwServiceSpecificExitCode = (DWORD)svc.rc;
    } else {
        proxy_service_event(CONF_LOG_INFO, "baton stopped");
    }
    if (svc.eventlog != NULL)
        DeregisterEventSource(svc.eventlog);
    set_state(SERVICE_STOPPED, 0);
}

int proxy_service_run(const char *name, proxy_service_main *run, void *arg)
{
    SERVICE_TABLE_ENTRYW table[2];
    char err[160];

    if (to_wide(name, svc.name, PROXY_SERVICE_NAME_MAX) != 0) {
        fprintf(stderr, "baton: --service: bad service name '%s'\n", name);
        return 2;
    }
    InitializeCriticalSection(&svc.lock);
    svc.run = run;
    svc.arg = arg;
    svc.active = 1;
    table[0].lpServiceName = svc.name;
    table[0].lpServiceProc = service_main;
    table[1].lpServiceName = NULL;
    table[1].lpServiceProc = NULL;
    if (!StartServiceCtrlDispatcherW(table)) {
        DWORD e = GetLastError();

        svc.active = 0;
        if (e == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT)
            fprintf(stderr, "baton: --service: not started by the service manager (run "
                    "`baton -c FILE` in a console, or `baton -k start -n %s`)\n", name);
        else
            fprintf(stderr, "baton: --service: StartServiceCtrlDispatcher: %s\n",
                    win_err(e, err, sizeof(err)));
        return 1;
    }
    return svc.rc;
}

int proxy_service_default_config(char *out, size_t outlen, char *why, size_t whylen)
{
    PWSTR dir = NULL;
    char base[MAX_PATH * 2];
    HRESULT hr = SHGetKnownFolderPath(&FOLDERID_ProgramData, 0, NULL, &dir);
    int n;

    if (FAILED(hr)) {
        snprintf(why, whylen, "cannot find %%ProgramData%% (SHGetKnownFolderPath: 0x%08lx)",
                 (unsigned long)hr);
        return -1;
    }
    n = WideCharToMultiByte(CP_ACP, 0, dir, -1, base, sizeof(base), NULL, NULL);
    CoTaskMemFree(dir);
    if (n <= 0 || snprintf(out, outlen, "%s\\baton\\baton.ini", base) >= (int)outlen) {
        snprintf(why, whylen, "the default configuration path does not fit");
        return -1;
    }
    return 0;
}

/* ---- -k: the service manager's side ---- */

static SC_HANDLE open_service(SC_HANDLE scm, const char *name, DWORD access)
{
    wchar_t wname[PROXY_SERVICE_NAME_MAX];
    SC_HANDLE s;
    char err[160];

    if (to_wide(name, wname, PROXY_SERVICE_NAME_MAX) != 0)
        return NULL;
    s = OpenServiceW(scm, wname, access);
    if (s == NULL)
        fprintf(stderr, "baton: service %s: %s\n", name,
                GetLastError() == ERROR_SERVICE_DOES_NOT_EXIST
                ? "no such service (install it with -k install)"
                : win_err(GetLastError(), err, sizeof(err)));
    return s;
}

/* Waits (at most SERVICE_CMD_WAIT_MS) for the service to leave pending;
 * 0 if it reached want, else -1 (said why). */
static int wait_state(SC_HANDLE s, const char *name, DWORD want)
{
    SERVICE_STATUS_PROCESS st;
    DWORD need, waited = 0;
    char err[160];

    for (;;) {
        if (!QueryServiceStatusEx(s, SC_STATUS_PROCESS_INFO, (LPBYTE)&st, sizeof(st), &need)) {
            fprintf(stderr, "baton: service %s: QueryServiceStatusEx: %s\n", name,
                    win_err(GetLastError(), err, sizeof(err)));
            return -1;
        }
        if (st.dwCurrentState == want)
            return 0;
        if (st.dwCurrentState != SERVICE_START_PENDING &&
            st.dwCurrentState != SERVICE_STOP_PENDING) {
            fprintf(stderr, "baton: service %s: state %lu, exit code %lu (service-specific "
                    "%lu); see the event log and baton's log\n", name,
                    (unsigned long)st.dwCurrentState, (unsigned long)st.dwWin32ExitCode,
                    (unsigned long)st.dwServiceSpecificExitCode);
            return -1;
        }
        if (waited >= SERVICE_CMD_WAIT_MS) {
            fprintf(stderr, "baton: service %s: still pending after %d s (checkpoint %lu)\n",
                    name, SERVICE_CMD_WAIT_MS / 1000, (unsigned long)st.dwCheckPoint);
            return -1;
        }
        Sleep(SERVICE_POLL_MS);
        waited += SERVICE_POLL_MS;
    }
}

static int service_install(SC_HANDLE scm, const char *name, const char *conf_path)
{
    wchar_t exe[MAX_PATH], conf[MAX_PATH], wname[PROXY_SERVICE_NAME_MAX], cmd[3 * MAX_PATH];
    wchar_t wconf[MAX_PATH];
    SERVICE_DESCRIPTIONW desc = { L"baton: hot-restart TCP/TLS reverse proxy" };
    SC_HANDLE s;
    DWORD n;
    char err[160];

    n = GetModuleFileNameW(NULL, exe, MAX_PATH);
    if (n == 0 || n >= MAX_PATH || to_wide(conf_path, wconf, MAX_PATH) != 0 ||
        to_wide(name, wname, PROXY_SERVICE_NAME_MAX) != 0) {
        fprintf(stderr, "baton: -k install: cannot name this executable or %s\n", conf_path);
        return 1;
    }
    n = GetFullPathNameW(wconf, MAX_PATH, conf, NULL);
    if (n == 0 || n >= MAX_PATH) {
        fprintf(stderr, "baton: -k install: cannot make %s absolute\n", conf_path);
        return 1;
    }
    if (swprintf(cmd, sizeof(cmd) / sizeof(cmd[0]), L"\"%ls\" --service -n %ls -c \"%ls\"", exe,
                 wname, conf) < 0) {
        fprintf(stderr, "baton: -k install: command line too long\n");
        return 1;
    }
    s = CreateServiceW(scm, wname, wname, SERVICE_ALL_ACCESS, SERVICE_WIN32_OWN_PROCESS,
                       SERVICE_AUTO_START, SERVICE_ERROR_NORMAL, cmd, NULL, NULL, NULL, NULL,
                       NULL);
    if (s == NULL) {
        fprintf(stderr, "baton: -k install: service %s: %s\n", name,
                GetLastError() == ERROR_SERVICE_EXISTS ? "already installed"
                : win_err(GetLastError(), err, sizeof(err)));
        return 1;
    }
    if (!ChangeServiceConfig2W(s, SERVICE_CONFIG_DESCRIPTION, &desc))
        fprintf(stderr, "baton: -k install: service %s: no description set: %s\n", name,
                win_err(GetLastError(), err, sizeof(err)));
    CloseServiceHandle(s);
    printf("baton: service %s installed (configuration %ls, starts with Windows)\n", name, conf);
    return 0;
}

static int service_control(SC_HANDLE scm, enum proxy_service_cmd cmd, const char *name)
{
    static const DWORD access[] = {
        [PROXY_SERVICE_UNINSTALL] = DELETE | SERVICE_QUERY_STATUS,
        [PROXY_SERVICE_START] = SERVICE_START | SERVICE_QUERY_STATUS,
        [PROXY_SERVICE_STOP] = SERVICE_STOP | SERVICE_QUERY_STATUS,
        [PROXY_SERVICE_RESTART] = SERVICE_USER_DEFINED_CONTROL | SERVICE_QUERY_STATUS,
    };
    SERVICE_STATUS st;
    SC_HANDLE s = open_service(scm, name, access[cmd]);
    char err[160];
    int rc = 1;
    BOOL ok;

    if (s == NULL)
        return 1;
    switch (cmd) {
    case PROXY_SERVICE_UNINSTALL:
        ok = DeleteService(s);
        break;
    case PROXY_SERVICE_START:
        ok = StartServiceW(s, 0, NULL);
        break;
    case PROXY_SERVICE_STOP:
        ok = ControlService(s, SERVICE_CONTROL_STOP, &st);
        break;
    default:
        /* sc.exe of Wine cannot send user codes; this can. */
        ok = ControlService(s, PROXY_SERVICE_CONTROL_RELOAD, &st);
        break;
    }
    if (!ok) {
        fprintf(stderr, "baton: -k: service %s: %s\n", name,
                win_err(GetLastError(), err, sizeof(err)));
        goto out;
    }
    if ((cmd == PROXY_SERVICE_START && wait_state(s, name, SERVICE_RUNNING) != 0) ||
        (cmd == PROXY_SERVICE_STOP && wait_state(s, name, SERVICE_STOPPED) != 0))
        goto out;
    printf("baton: service %s %s\n", name,
           cmd == PROXY_SERVICE_UNINSTALL ? "uninstalled"
           : cmd == PROXY_SERVICE_START ? "running"
           : cmd == PROXY_SERVICE_STOP ? "stopped" : "asked to reload (control 128)");
    rc = 0;
out:
    CloseServiceHandle(s);
    return rc;
}

int proxy_service_command(enum proxy_service_cmd cmd, const char *name, const char *conf_path)
{
    SC_HANDLE scm;
    char err[160];
    int rc;

    scm = OpenSCManagerW(NULL, NULL, cmd == PROXY_SERVICE_INSTALL ? SC_MANAGER_CREATE_SERVICE
                                                                   : SC_MANAGER_CONNECT);
    if (scm == NULL) {
        fprintf(stderr, "baton: -k: cannot open the service manager: %s\n",
                win_err(GetLastError(), err, sizeof(err)));
        return 1;
    }
    rc = cmd == PROXY_SERVICE_INSTALL ? service_install(scm, name, conf_path)
                                      : service_control(scm, cmd, name);
    CloseServiceHandle(scm);
    return rc;
}
