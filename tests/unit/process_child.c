/*
 * process_child.c - the worker test_process starts (Windows).  It splits
 * its command line with CommandLineToArgvW, the rules the quoting must
 * meet, and takes orders over the socket it was given.
 *
 *   process_child --worker SOCKET
 *     takes the socket (adopt()) and sends
 *             "argv0=A exe=E env=N:V leak=none|closed|usable\n"
 *             (E: its module path; N: how many entries are named
 *             BATON_TEST_LEAK, any case; V: the value; leak: whether the
 *             socket whose value V names can be used here)
 *     then reads one order:
 *       "wait"    creates its drain and stop events as a worker does
 *                 (osevents.h), sends "waiting", and on one of them sends
 *                 "fired drain" or "fired stop" and exits 21 or 22
 *       "exit N"  exits N
 *       "hold"    sleeps until it is killed
 *   process_child --check-master-state HANDLE
 *     reads the handle to its end: "ok" exits 0, "hang" sleeps until it
 *     is killed, anything else exits 7
 *
 * Every wait is bounded (HOLD_MS): a test that fails never leaves it behind.
 */
#include <winsock2.h>
#include <windows.h>
#include <shellapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "osevents.h"

#define HOLD_MS 60000

static SOCKET chan = INVALID_SOCKET;

static void say(const char *line)
{
    size_t n = strlen(line);

    if (send(chan, line, (int)n, 0) != (int)n || send(chan, "\n", 1, 0) != 1)
        exit(90);
}

static void hear(char *buf, size_t len)
{
    size_t n = 0;

    while (n + 1 < len && recv(chan, buf + n, 1, 0) == 1 && buf[n] != '\n')
        n++;
    buf[n] = '\0';
}

static void utf8(const wchar_t *w, char *buf, int len)
{
    if (WideCharToMultiByte(CP_UTF8, 0, w, -1, buf, len, NULL, NULL) <= 0)
        snprintf(buf, (size_t)len, "(unconvertible)");
}

/* Counts the entries named BATON_TEST_LEAK, whatever their case. */
static int count_leak_entries(void)
{
    static const wchar_t name[] = L"BATON_TEST_LEAK=";
    wchar_t *env = GetEnvironmentStringsW(), *p;
    int n = 0;

    if (env == NULL)
        return -1;
    for (p = env; *p != L'\0'; p += wcslen(p) + 1)
        n += _wcsnicmp(p, name, wcslen(name)) == 0;
    FreeEnvironmentStringsW(env);
    return n;
}

/* A socket this process can use, from a handle it was given: duplicated
 * for itself through Winsock, as a worker takes its channel (Wine's Winsock
 * knows no socket it did not make or receive that way, and on Windows it
 * is the way that works whatever providers are installed).
 * INVALID_SOCKET if the handle names no socket here. */
static SOCKET adopt(SOCKET given)
{
    WSAPROTOCOL_INFOW info;
    SOCKET s;
    int type, typelen = sizeof(type);

    if (WSADuplicateSocketW(given, GetCurrentProcessId(), &info) != 0)
        return INVALID_SOCKET;
    s = WSASocketW(FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, &info, 0,
                   WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    if (s != INVALID_SOCKET &&
        getsockopt(s, SOL_SOCKET, SO_TYPE, (char *)&type, &typelen) != 0) {
        closesocket(s);
        s = INVALID_SOCKET;
    }
    return s;
}

/* Checked before the channel is taken: then the only socket this process
 * can have at that value is one it inherited. */
static const char *leak_state(const char *value)
{
    SOCKET s;

    if (value[0] == '\0')
        return "none";
    s = adopt((SOCKET)_strtoui64(value, NULL, 10));
    if (s == INVALID_SOCKET)
        return "closed";
    closesocket(s);
    return "usable";
}

static void report(const wchar_t *argv0, const char *value, const char *leak)
{
    char line[3 * MAX_PATH + 256], a0[MAX_PATH * 3], exe[MAX_PATH * 3];
    wchar_t wexe[MAX_PATH];

    utf8(argv0, a0, sizeof(a0));
    if (GetModuleFileNameW(NULL, wexe, MAX_PATH) == 0)
        wexe[0] = L'\0';
    utf8(wexe, exe, sizeof(exe));
    snprintf(line, sizeof(line), "argv0=%s exe=%s env=%d:%s leak=%s", a0, exe,
             count_leak_entries(), value, leak);
    say(line);
}

static int wait_for_events(void)
{
    static const char *const names[2] = { "drain", "stop" };
    HANDLE ev[2];
    char name[64];
    DWORD r;

    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof(name), PROXY_OSEV_WIN_EVENT_FMT, GetCurrentProcessId(), names[i]);
        ev[i] = CreateEventA(NULL, FALSE, FALSE, name);
        if (ev[i] == NULL)
            return 91;
    }
    say("waiting");
    r = WaitForMultipleObjects(2, ev, FALSE, HOLD_MS);
    if (r == WAIT_OBJECT_0) {
        say("fired drain");
        return 21;
    }
    if (r == WAIT_OBJECT_0 + 1) {
        say("fired stop");
        return 22;
    }
    return 99;
}

static int worker(const wchar_t *argv0, const wchar_t *handle)
{
    WSADATA wsa;
    u_long blocking = 0;
    char order[64], value[32] = "";
    const char *leak;
    SOCKET given;

    if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0)
        return 92;
    if (GetEnvironmentVariableA("BATON_TEST_LEAK", value, sizeof(value)) >= sizeof(value))
        value[0] = '\0';
    leak = leak_state(value);
    given = (SOCKET)_wcstoui64(handle, NULL, 10);
    chan = adopt(given);
    if (chan == INVALID_SOCKET || ioctlsocket(chan, FIONBIO, &blocking) != 0)
        return 93;
    if (closesocket(given) != 0)
        CloseHandle((HANDLE)given);
    report(argv0, value, leak);
    hear(order, sizeof(order));
    if (strcmp(order, "wait") == 0)
        return wait_for_events();
    if (strncmp(order, "exit ", 5) == 0)
        return atoi(order + 5);
    if (strcmp(order, "hold") == 0) {
        Sleep(HOLD_MS);
        return 98;
    }
    return 94;
}

int main(void)
{
    int argc;
    wchar_t **argv = CommandLineToArgvW(GetCommandLineW(), &argc);

    if (argv == NULL || argc != 3)
        return 95;
    if (wcscmp(argv[1], L"--worker") == 0)
        return worker(argv[0], argv[2]);
    return 96;
}
