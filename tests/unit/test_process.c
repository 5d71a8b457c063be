/*
 * test_process.c - process.h and image.h on Windows (process_win.c,
 * children_win.c, cmdline_win.c, image_win.c), run under Wine: workers are
 * process_child.exe, started as baton starts its own, and they report what
 * they were given over their channel socket.
 */
#include <winsock2.h>
#include <windows.h>
#include <shellapi.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/util.h>

#include "image.h"
#include "image_win.h"
#include "process.h"
#include "process_win.h"
#include "testutil.h"
#include "utf16_win.h"

#define DEADLINE_MS 20000
#define ARGV0 "C:\\Program Files\\baton dir\\baton.exe"

static char dir[MAX_PATH * 3];     /* where the test's executables are, with a '\' */
static char helper[MAX_PATH * 3];  /* process_child.exe */
static char self[MAX_PATH * 3];    /* test_process.exe */

/* ---- the exits the watch reports ---------------------------------------- */

struct exits {
    pid_t pid[8];
    int   status[8];
    int   n;
};

static void on_exit_cb(pid_t pid, int status, void *arg)
{
    struct exits *e = arg;

    if (e->n < 8) {
        e->pid[e->n] = pid;
        e->status[e->n++] = status;
    }
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(int *)arg = 1;
}

/* Runs the loop until the watch has reported pid (its status in *status),
 * or the deadline passed (0 then). */
static int wait_exit(struct event_base *base, struct exits *e, pid_t pid, int *status)
{
    struct timeval tv = { DEADLINE_MS / 1000, 0 };
    int late = 0;
    struct event *timer = evtimer_new(base, on_deadline, &late);

    if (timer == NULL || evtimer_add(timer, &tv) != 0)
        return 0;
    for (;;) {
        for (int i = 0; i < e->n; i++)
            if (e->pid[i] == pid) {
                *status = e->status[i];
                event_free(timer);
                return 1;
            }
        if (late || event_base_loop(base, EVLOOP_ONCE) != 0)
            break;
    }
    event_free(timer);
    return 0;
}

/* ---- talking to a child -------------------------------------------------- */

static int sock_timeout(SOCKET s)
{
    DWORD ms = DEADLINE_MS;

    return setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, (const char *)&ms, sizeof(ms));
}

static void hear(SOCKET s, char *buf, size_t len)
{
    size_t n = 0;

    while (n + 1 < len && recv(s, buf + n, 1, 0) == 1 && buf[n] != '\n')
        n++;
    buf[n] = '\0';
}

static void order(SOCKET s, const char *what)
{
    size_t n = strlen(what);

    CHECK(send(s, what, (int)n, 0) == (int)n && send(s, "\n", 1, 0) == 1);
}

struct worker {
    SOCKET master, given;   /* the channel: the master's end, the one given */
    pid_t  pid;
    char   report[1024];
};

/* A channel pair the way handoff_transport_pair makes it: neither end
 * inheritable. */
static int channel(struct worker *w)
{
    evutil_socket_t fds[2];

    if (evutil_socketpair(AF_INET, SOCK_STREAM, 0, fds) != 0)
        return -1;
    w->master = (SOCKET)fds[0];
    w->given = (SOCKET)fds[1];
    if (!SetHandleInformation((HANDLE)w->given, HANDLE_FLAG_INHERIT, 0) ||
        !SetHandleInformation((HANDLE)w->master, HANDLE_FLAG_INHERIT, 0))
        return -1;
    return sock_timeout(w->master);
}

/* Starts img as a worker and reads its report; 0 or -1. */
static int start(struct worker *w, const struct proxy_image *img, const char *env)
{
    char why[256] = "";

    if (channel(w) != 0) {
        CHECK(!"channel pair");
        return -1;
    }
    if (proxy_process_spawn_worker(img, ARGV0, (int)w->given, env, &w->pid, why,
                                   sizeof(why)) != 0) {
        fprintf(stderr, "spawn: %s\n", why);
        CHECK(!"spawn");
        return -1;
    }
    hear(w->master, w->report, sizeof(w->report));
    CHECK(strncmp(w->report, "argv0=", 6) == 0);
    return 0;
}

static void finish(struct worker *w)
{
    closesocket(w->master);
    closesocket(w->given);
}

/* ---- pure parts ---------------------------------------------------------- */

static void test_describe(void)
{
    char buf[128];

    CHECK(proxy_process_status_ok(0));
    CHECK(!proxy_process_status_ok(1));
    proxy_process_describe_status(3, buf, sizeof(buf));
    CHECK_STR(buf, "exited with status 3");
    proxy_process_describe_status((int)0xC0000005UL, buf, sizeof(buf));
    CHECK_STR(buf, "crashed: access violation (0xC0000005)");
    proxy_process_describe_status((int)0xC00000FDUL, buf, sizeof(buf));
    CHECK_STR(buf, "crashed: stack overflow (0xC00000FD)");
    proxy_process_describe_status((int)0xC0001234UL, buf, sizeof(buf));
    CHECK_STR(buf, "ended with status 0xC0001234");
    proxy_process_describe_status((int)PROXY_PROCESS_WIN_KILLED, buf, sizeof(buf));
    CHECK_STR(buf, "killed by the master (TerminateProcess)");
    CHECK(!proxy_process_status_ok((int)PROXY_PROCESS_WIN_KILLED));
}

/* The command line splits back into the same strings. */
static void check_cmdline(const char *const argv[])
{
    char why[128], got[256];
    wchar_t *line = proxy_win_cmdline(argv, why, sizeof(why));
    wchar_t **back;
    int argc = 0, n = 0;

    CHECK(line != NULL);
    if (line == NULL)
        return;
    back = CommandLineToArgvW(line, &argc);
    while (argv[n] != NULL)
        n++;
    CHECK(back != NULL && argc == n);
    for (int i = 0; back != NULL && i < argc && i < n; i++) {
        CHECK(proxy_utf8_from_utf16(back[i], got, sizeof(got)) == 0);
        CHECK_STR(got, argv[i]);
    }
    LocalFree(back);
    free(line);
}

static void test_cmdline(void)
{
    static const char *const plain[] = { "baton", "--worker", "123", NULL };
    static const char *const hard[] = {
        ARGV0, "", "a b", "a\"b", "a\\\\b", "a\\\"b", "trail\\", "trail two\\\\",
        "tab\there", "\"", "\\", "caf\xc3\xa9", NULL
    };
    static const char *const slashes[] = { "C:\\dir\\", "x", NULL };
    static const char *const quoted[] = { "a\"b.exe", NULL };
    char why[128] = "";

    check_cmdline(plain);
    check_cmdline(hard);
    check_cmdline(slashes);
    CHECK(proxy_win_cmdline(quoted, why, sizeof(why)) == NULL);
    CHECK_WHY(why, "double quote");
}

/* The entry replaces any of the same name in any case. */
static void test_env(void)
{
    wchar_t *cur = GetEnvironmentStringsW(), *block, *p;
    int before = 0, after = 0, named = 0;
    char why[128] = "";

    CHECK(SetEnvironmentVariableW(L"baton_test_env", L"old"));
    FreeEnvironmentStringsW(cur);
    cur = GetEnvironmentStringsW();
    for (p = cur; *p != L'\0'; p += wcslen(p) + 1)
        before++;
    block = proxy_win_env_with("BATON_TEST_ENV=new value", why, sizeof(why));
    CHECK(block != NULL);
    for (p = block; block != NULL && *p != L'\0'; p += wcslen(p) + 1) {
        after++;
        if (_wcsnicmp(p, L"BATON_TEST_ENV=", 15) == 0) {
            named++;
            CHECK(wcscmp(p, L"BATON_TEST_ENV=new value") == 0);
        }
    }
    CHECK(named == 1);
    CHECK(after == before);
    free(block);
    FreeEnvironmentStringsW(cur);
    CHECK(SetEnvironmentVariableW(L"baton_test_env", NULL));

    block = proxy_win_env_with("NO_EQUALS_SIGN", why, sizeof(why));
    CHECK(block == NULL);
    CHECK_WHY(why, "expected NAME=value");
}

static void test_self_exe(void)
{
    char path[MAX_PATH * 3];
    size_t n;

    CHECK(proxy_process_self_exe(path, sizeof(path)) == 0);
    n = strlen(path);
    CHECK(n > 16 && _stricmp(path + n - 16, "test_process.exe") == 0);
    CHECK(path[1] == ':' && path[2] == '\\');
    CHECK(proxy_process_self_exe(path, 8) != 0);
}

/* ---- images -------------------------------------------------------------- */

static void test_image_identity(void)
{
    struct proxy_image a = PROXY_IMAGE_NONE, b = PROXY_IMAGE_NONE, s = PROXY_IMAGE_NONE;
    struct proxy_image d = PROXY_IMAGE_NONE;
    char why[256] = "";

    CHECK(proxy_image_open(&a, helper, why, sizeof(why)) == 0);
    CHECK(a.fd >= 0 && a.ino != 0);
    CHECK(proxy_image_dup(&d, &a) == 0);
    CHECK(d.fd >= 0 && d.fd != a.fd);
    CHECK(proxy_image_same(&a, &d));
    CHECK(proxy_image_open_self(&s, why, sizeof(why)) == 0);
    CHECK(!proxy_image_same(&a, &s));
    CHECK(proxy_image_open(&b, self, why, sizeof(why)) == 0);
    CHECK(proxy_image_same(&b, &s));
    proxy_image_move(&b, &a);
    CHECK(a.fd == -1 && proxy_image_same(&b, &d));
    proxy_image_close(&b);
    proxy_image_close(&d);
    proxy_image_close(&s);
    CHECK(b.fd == -1 && !proxy_image_same(&b, &b));

    CHECK(proxy_image_open(&a, "C:\\no\\such\\baton.exe", why, sizeof(why)) != 0);
    CHECK_WHY(why, "cannot open C:\\no\\such\\baton.exe");
    CHECK(proxy_image_open(&a, dir, why, sizeof(why)) != 0);
    CHECK_WHY(why, "cannot open");
    errno = 0;
    CHECK(proxy_image_exec(&s, NULL, NULL, 0) == -1 && errno == ENOSYS);
}

static int under_wine(void)
{
    HMODULE ntdll = GetModuleHandleA("ntdll.dll");

    return ntdll != NULL && GetProcAddress(ntdll, "wine_get_version") != NULL;
}

/* ---- workers ------------------------------------------------------------- */

static void wide_path(const char *utf8, wchar_t *w)
{
    if (MultiByteToWideChar(CP_UTF8, 0, utf8, -1, w, MAX_PATH) <= 0)
        w[0] = L'\0';
}

/* The child has the channel and nothing else: a second socket, inheritable
 * in this process, is neither usable there nor kept open by it. */
static void test_spawn(struct event_base *base, struct exits *e, const struct proxy_image *img)
{
    struct worker w;
    evutil_socket_t leak[2];
    char env[64], want[256], eof;
    DWORD flags = 0;
    int status = -1;

    CHECK(evutil_socketpair(AF_INET, SOCK_STREAM, 0, leak) == 0);
    CHECK(SetHandleInformation((HANDLE)leak[0], HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT));
    CHECK(sock_timeout((SOCKET)leak[1]) == 0);
    snprintf(env, sizeof(env), "BATON_TEST_LEAK=%llu", (unsigned long long)leak[0]);
    CHECK(SetEnvironmentVariableA("baton_test_leak", "old"));
    if (start(&w, img, env) != 0)
        return;
    CHECK(SetEnvironmentVariableA("baton_test_leak", NULL));
    snprintf(want, sizeof(want), "argv0=%s exe=%s env=1:%llu leak=closed", ARGV0, helper,
             (unsigned long long)leak[0]);
    CHECK_STR(w.report, want);
    /* Inheritable only while the child was made. */
    CHECK(GetHandleInformation((HANDLE)w.given, &flags) && !(flags & HANDLE_FLAG_INHERIT));
    /* Closed here and not held by the child: the peer sees the end. */
    closesocket((SOCKET)leak[0]);
    CHECK(recv((SOCKET)leak[1], &eof, 1, 0) == 0);
    closesocket((SOCKET)leak[1]);

    order(w.master, "exit 7");
    CHECK(wait_exit(base, e, w.pid, &status));
    CHECK(status == 7);
    CHECK(!proxy_process_status_ok(status));
    /* Reported, so no longer ours. */
    errno = 0;
    CHECK(proxy_process_stop(w.pid, PROXY_PROCESS_STOP) == -1 && errno == ESRCH);
    finish(&w);
}

/* A stop asked for while the worker waits, and one asked for before the
 * worker made its events (it finds it set). */
static void test_stop_events(struct event_base *base, struct exits *e,
                             const struct proxy_image *img)
{
    struct worker w;
    char line[64];
    int status = -1;

    if (start(&w, img, "BATON_TEST=drain") != 0)
        return;
    order(w.master, "wait");
    hear(w.master, line, sizeof(line));
    CHECK_STR(line, "waiting");
    CHECK(proxy_process_stop(w.pid, PROXY_PROCESS_DRAIN) == 0);
    hear(w.master, line, sizeof(line));
    CHECK_STR(line, "fired drain");
    CHECK(wait_exit(base, e, w.pid, &status) && status == 21);
    finish(&w);

    if (start(&w, img, "BATON_TEST=stop") != 0)
        return;
    CHECK(proxy_process_stop(w.pid, PROXY_PROCESS_STOP) == 0);
    order(w.master, "wait");
    hear(w.master, line, sizeof(line));
    CHECK_STR(line, "waiting");
    hear(w.master, line, sizeof(line));
    CHECK_STR(line, "fired stop");
    CHECK(wait_exit(base, e, w.pid, &status) && status == 22);
    finish(&w);
}

static void test_kill(struct event_base *base, struct exits *e, const struct proxy_image *img)
{
    struct worker w;
    char desc[128];
    int status = -1;

    if (start(&w, img, "BATON_TEST=kill") != 0)
        return;
    order(w.master, "hold");
    CHECK(proxy_process_stop(w.pid, PROXY_PROCESS_KILL) == 0);
    CHECK(wait_exit(base, e, w.pid, &status));
    proxy_process_describe_status(status, desc, sizeof(desc));
    CHECK_STR(desc, "killed by the master (TerminateProcess)");
    CHECK(!proxy_process_status_ok(status));
    errno = 0;
    CHECK(proxy_process_stop(w.pid, PROXY_PROCESS_KILL) == -1 && errno == ESRCH);
    finish(&w);

    /* Not a child of ours. */
    errno = 0;
    CHECK(proxy_process_stop((pid_t)GetCurrentProcessId(), PROXY_PROCESS_DRAIN) == -1 &&
          errno == ESRCH);
}

/* A worker that ended before the watch existed is reported by it. */
static void test_exit_before_watch(struct event_base *base, const struct proxy_image *img)
{
    struct exits e = { .n = 0 };
    struct proxy_process_watch *watch, *second;
    struct worker w;
    HANDLE h;
    int status = -1;

    if (start(&w, img, "BATON_TEST=early") != 0)
        return;
    order(w.master, "exit 0");
    h = OpenProcess(SYNCHRONIZE, FALSE, (DWORD)w.pid);
    CHECK(h != NULL && WaitForSingleObject(h, DEADLINE_MS) == WAIT_OBJECT_0);
    if (h != NULL)
        CloseHandle(h);
    watch = proxy_process_watch_new(base, on_exit_cb, &e);
    CHECK(watch != NULL);
    second = proxy_process_watch_new(base, on_exit_cb, &e);
    CHECK(second == NULL);
    CHECK(wait_exit(base, &e, w.pid, &status) && status == 0);
    CHECK(proxy_process_status_ok(status));
    proxy_process_watch_free(watch);
    finish(&w);
}

static void test_spawn_refused(const struct proxy_image *img)
{
    struct proxy_image none = PROXY_IMAGE_NONE;
    char why[256] = "";
    pid_t pid = 0;

    CHECK(proxy_process_spawn_worker(img, "a\"b", 0, "A=b", &pid, why, sizeof(why)) != 0);
    CHECK_WHY(why, "double quote");
    CHECK(proxy_process_spawn_worker(img, ARGV0, -1, "A=b", &pid, why, sizeof(why)) != 0);
    CHECK_WHY(why, "cannot be given to a child");
    CHECK(proxy_process_spawn_worker(&none, ARGV0, 0, "A=b", &pid, why, sizeof(why)) != 0);
    CHECK_WHY(why, "no image");
}

/* The held file can be renamed, not rewritten; a worker is started from it
 * where it went, not from what is at its old path now. */
static void test_image_rename(struct event_base *base, struct exits *e)
{
    wchar_t wtmp[MAX_PATH], wdir[MAX_PATH], wexe[MAX_PATH], wold[MAX_PATH], whelper[MAX_PATH];
    wchar_t wself[MAX_PATH];
    char exe[MAX_PATH * 3], old[MAX_PATH * 3], want[MAX_PATH * 3 + 64], why[256] = "";
    struct proxy_image img = PROXY_IMAGE_NONE, now = PROXY_IMAGE_NONE;
    struct worker w;
    HANDLE h;
    int status = -1;

    CHECK(GetTempPathW(MAX_PATH, wtmp) > 0);
    swprintf(wdir, MAX_PATH, L"%lsbaton-test-process-%lu", wtmp, GetCurrentProcessId());
    swprintf(wexe, MAX_PATH, L"%ls\\baton.exe", wdir);
    swprintf(wold, MAX_PATH, L"%ls\\baton.old.exe", wdir);
    wide_path(helper, whelper);
    wide_path(self, wself);
    CHECK(CreateDirectoryW(wdir, NULL));
    CHECK(CopyFileW(whelper, wexe, TRUE));
    CHECK(proxy_utf8_from_utf16(wexe, exe, sizeof(exe)) == 0);
    CHECK(proxy_utf8_from_utf16(wold, old, sizeof(old)) == 0);
    CHECK(proxy_image_open(&img, exe, why, sizeof(why)) == 0);

    h = CreateFileW(wexe, GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                    NULL, OPEN_EXISTING, 0, NULL);
    CHECK(h == INVALID_HANDLE_VALUE && GetLastError() == ERROR_SHARING_VIOLATION);
    if (h != INVALID_HANDLE_VALUE)
        CloseHandle(h);
    CHECK(!CopyFileW(wself, wexe, FALSE));   /* no overwrite in place */
    CHECK(MoveFileW(wexe, wold));
    CHECK(CopyFileW(wself, wexe, TRUE));     /* the "new" binary at the path */
    CHECK(proxy_image_open(&now, exe, why, sizeof(why)) == 0);
    CHECK(!proxy_image_same(&img, &now));
    proxy_image_close(&now);

    /* Windows finds the file by its handle where it went.  Wine names a
     * handle by the path it was opened with: the identity check then
     * refuses, and what is at the old path now is never started. */
    if (under_wine()) {
        CHECK(channel(&w) == 0);
        CHECK(proxy_process_spawn_worker(&img, ARGV0, (int)w.given, "BATON_TEST=renamed",
                                         &w.pid, why, sizeof(why)) != 0);
        CHECK_WHY(why, "is no longer the image baton holds");
        finish(&w);
    } else if (start(&w, &img, "BATON_TEST=renamed") == 0) {
        snprintf(want, sizeof(want), "exe=%s ", old);
        CHECK(strstr(w.report, want) != NULL);
        order(w.master, "exit 0");
        CHECK(wait_exit(base, e, w.pid, &status) && status == 0);
        finish(&w);
    }
    proxy_image_close(&img);
    CHECK(DeleteFileW(wexe));
    CHECK(DeleteFileW(wold));
    CHECK(RemoveDirectoryW(wdir));
}

static int find_paths(void)
{
    char *slash;

    if (proxy_process_self_exe(self, sizeof(self)) != 0)
        return -1;
    snprintf(dir, sizeof(dir), "%s", self);
    slash = strrchr(dir, '\\');
    if (slash == NULL)
        return -1;
    slash[1] = '\0';
    snprintf(helper, sizeof(helper), "%sprocess_child.exe", dir);
    return 0;
}

int main(void)
{
    struct proxy_image img = PROXY_IMAGE_NONE;
    struct proxy_process_watch *watch;
    struct exits e = { .n = 0 };
    struct event_base *base;
    WSADATA wsa;
    char why[256] = "";

    setvbuf(stdout, NULL, _IONBF, 0);
    if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0 || find_paths() != 0 ||
        (base = event_base_new()) == NULL) {
        fprintf(stderr, "test_process: cannot set up\n");
        return 1;
    }
    test_describe();
    test_cmdline();
    test_env();
    test_self_exe();
    test_image_identity();
    CHECK(proxy_image_open(&img, helper, why, sizeof(why)) == 0);
    test_spawn_refused(&img);
    test_exit_before_watch(base, &img);

    watch = proxy_process_watch_new(base, on_exit_cb, &e);
    CHECK(watch != NULL);
    if (watch != NULL) {
        test_spawn(base, &e, &img);
        test_stop_events(base, &e, &img);
        test_kill(base, &e, &img);
        test_image_rename(base, &e);
        proxy_process_watch_free(watch);
    }
    proxy_image_close(&img);
    event_base_free(base);
    WSACleanup();
    return test_summary("process");
}
