/*
 * process_win.c - process.h on Windows: workers started with CreateProcessW
 * from the image the master holds (image_win.c), given one handle only.
 *
 * Windows has no exec: a process is started by path.  The path is the one
 * the image's handle has now (a renamed .exe is found where it went), and
 * it is pinned while the process starts: opened without sharing deletion,
 * so that the file cannot be renamed or replaced between the check that it
 * is still the image and CreateProcessW.
 */
#include "process.h"
#include "process_win.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image_win.h"
#include "utf16_win.h"

int proxy_process_self_exe(char *buf, size_t len)
{
    wchar_t path[PROXY_IMAGE_PATH_MAX];
    DWORD n = GetModuleFileNameW(NULL, path, PROXY_IMAGE_PATH_MAX);

    /* n == the size: cut short (the error code differs by version). */
    if (n == 0 || n >= PROXY_IMAGE_PATH_MAX)
        return -1;
    return proxy_utf8_from_utf16(path, buf, len);
}

/* GetFinalPathNameByHandleW's "\\?\C:\dir\x.exe" or "\\?\UNC\srv\share\x.exe"
 * as the plain path it stands for, when that is short enough to be one: the
 * child sees it as its own path, and passes it on as where baton is
 * installed. */
static void path_plain(wchar_t *p)
{
    size_t len = wcslen(p);

    if (wcsncmp(p, L"\\\\?\\UNC\\", 8) == 0 && len - 6 < MAX_PATH) {
        memmove(p + 2, p + 8, (len - 7) * sizeof(*p));
    } else if (len > 6 && wcsncmp(p, L"\\\\?\\", 4) == 0 && p[5] == L':' && len - 4 < MAX_PATH) {
        memmove(p, p + 4, (len - 3) * sizeof(*p));
    }
}

/* The image's file where it is now, pinned (see the top): *pin is to be
 * closed after CreateProcessW.  The path in wpath (PROXY_IMAGE_PATH_MAX). */
static int image_pin(const struct proxy_image *img, wchar_t *wpath, HANDLE *pin, char *why,
                     size_t n)
{
    char path[PROXY_IMAGE_PATH_MAX], idwhy[96];
    uint64_t dev, ino;
    DWORD len;

    len = GetFinalPathNameByHandleW(proxy_image_handle(img), wpath, PROXY_IMAGE_PATH_MAX,
                                    FILE_NAME_NORMALIZED | VOLUME_NAME_DOS);
    if (len == 0 || len >= PROXY_IMAGE_PATH_MAX) {
        snprintf(why, n, "cannot find the path of the image: error %lu", GetLastError());
        return -1;
    }
    path_plain(wpath);
    if (proxy_utf8_from_utf16(wpath, path, sizeof(path)) != 0)
        snprintf(path, sizeof(path), "(the image)");
    /* Reading data, so that the sharing mode counts. */
    *pin = CreateFileW(wpath, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING,
                       FILE_ATTRIBUTE_NORMAL, NULL);
    if (*pin == INVALID_HANDLE_VALUE) {
        DWORD err = GetLastError();

        snprintf(why, n, "cannot open %s to start it: error %lu%s", path, err,
                 err == ERROR_SHARING_VIOLATION ? " (being renamed or replaced now)" : "");
        return -1;
    }
    if (proxy_image_identity(*pin, &dev, &ino, idwhy, sizeof(idwhy)) != 0) {
        snprintf(why, n, "%s: %s", path, idwhy);
        CloseHandle(*pin);
        return -1;
    }
    if (dev != img->dev || ino != img->ino) {
        snprintf(why, n, "%s is no longer the image baton holds", path);
        CloseHandle(*pin);
        return -1;
    }
    return 0;
}

/* A handle a child may inherit: real (a console's pseudo handles of old
 * Windows versions fail here and reach the child through the console). */
static int handle_usable(HANDLE h, DWORD *flags)
{
    return h != NULL && h != INVALID_HANDLE_VALUE && GetHandleInformation(h, flags);
}

/* Handles made inheritable for the time of one CreateProcessW: only the
 * handle list's reach the child, but two spawns changing the same standard
 * handle's flag at once would undo each other. */
static SRWLOCK spawn_lock = SRWLOCK_INIT;

struct inherit_list {
    HANDLE h[3];
    DWORD  flags[3];
    int    n;
};

static void inherit_add(struct inherit_list *l, HANDLE h)
{
    DWORD flags;

    for (int i = 0; i < l->n; i++)
        if (l->h[i] == h)
            return;
    if (handle_usable(h, &flags)) {
        l->h[l->n] = h;
        l->flags[l->n++] = flags;
    }
}

static int inherit_set(struct inherit_list *l, int on)
{
    for (int i = 0; i < l->n; i++) {
        DWORD want = on ? HANDLE_FLAG_INHERIT : l->flags[i] & HANDLE_FLAG_INHERIT;

        if (!SetHandleInformation(l->h[i], HANDLE_FLAG_INHERIT, want) && on)
            return -1;
    }
    return 0;
}

/* CreateProcessW with the handle list, under the spawn lock. */
static int create_process(const wchar_t *wpath, wchar_t *cmdline, wchar_t *envblock,
                          HANDLE channel, PROCESS_INFORMATION *pi, char *why, size_t n)
{
    struct inherit_list inh = { .n = 0 };
    STARTUPINFOEXW si;
    LPPROC_THREAD_ATTRIBUTE_LIST attrs;
    SIZE_T size = 0;
    BOOL ok = FALSE;

    memset(&si, 0, sizeof(si));
    si.StartupInfo.cb = sizeof(si);
    si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
    si.StartupInfo.hStdOutput = GetStdHandle(STD_OUTPUT_HANDLE);
    si.StartupInfo.hStdError = GetStdHandle(STD_ERROR_HANDLE);
    inherit_add(&inh, channel);
    if (inh.n != 1 || inh.h[0] != channel) {
        snprintf(why, n, "handle %lld cannot be given to a child: error %lu",
                 (long long)(intptr_t)channel, GetLastError());
        return -1;
    }
    inherit_add(&inh, si.StartupInfo.hStdOutput);
    inherit_add(&inh, si.StartupInfo.hStdError);

    /* The first call only tells the size (and fails for that reason). */
    InitializeProcThreadAttributeList(NULL, 1, 0, &size);
    attrs = malloc(size);
    if (attrs == NULL) {
        snprintf(why, n, "out of memory");
        return -1;
    }
    if (!InitializeProcThreadAttributeList(attrs, 1, 0, &size)) {
        snprintf(why, n, "InitializeProcThreadAttributeList: error %lu", GetLastError());
        free(attrs);
        return -1;
    }
    si.lpAttributeList = attrs;
    if (!UpdateProcThreadAttribute(attrs, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, inh.h,
                                   (SIZE_T)inh.n * sizeof(HANDLE), NULL, NULL)) {
        snprintf(why, n, "UpdateProcThreadAttribute: error %lu", GetLastError());
        goto out;
    }
    AcquireSRWLockExclusive(&spawn_lock);
    if (inherit_set(&inh, 1) != 0)
        snprintf(why, n, "SetHandleInformation: error %lu", GetLastError());
    else if (!(ok = CreateProcessW(wpath, cmdline, NULL, NULL, TRUE,
                                   EXTENDED_STARTUPINFO_PRESENT | CREATE_UNICODE_ENVIRONMENT,
                                   envblock, NULL, &si.StartupInfo, pi)))
        snprintf(why, n, "CreateProcessW: error %lu", GetLastError());
    inherit_set(&inh, 0);
    ReleaseSRWLockExclusive(&spawn_lock);
out:
    DeleteProcThreadAttributeList(attrs);
    free(attrs);
    return ok ? 0 : -1;
}

/* Starts the image with argv, the handle `give` inherited as the same
 * value, env added to the environment (NULL: this one as it is). */
static int spawn_image(const struct proxy_image *img, const char *const argv[], int give,
                       const char *env, PROCESS_INFORMATION *pi, char *why, size_t n)
{
    wchar_t *wpath = NULL, *cmdline = NULL, *envblock = NULL;
    HANDLE pin = INVALID_HANDLE_VALUE;
    int rc = -1;

    if (img->fd < 0) {
        snprintf(why, n, "no image to start");
        return -1;
    }
    wpath = malloc(PROXY_IMAGE_PATH_MAX * sizeof(*wpath));
    if (wpath == NULL) {
        snprintf(why, n, "out of memory");
        return -1;
    }
    cmdline = proxy_win_cmdline(argv, why, n);
    if (cmdline == NULL)
        goto out;
    if (env != NULL && (envblock = proxy_win_env_with(env, why, n)) == NULL)
        goto out;
    if (image_pin(img, wpath, &pin, why, n) != 0)
        goto out;
    rc = create_process(wpath, cmdline, envblock, (HANDLE)(intptr_t)give, pi, why, n);
    CloseHandle(pin);
out:
    free(envblock);
    free(cmdline);
    free(wpath);
    return rc;
}

int proxy_process_spawn_worker(const struct proxy_image *img, const char *argv0,
                               int channel_fd, const char *env, pid_t *pid,
                               char *why, size_t whylen)
{
    char fdarg[16];
    const char *const argv[] = { argv0, "--worker", fdarg, NULL };
    PROCESS_INFORMATION pi;

    snprintf(fdarg, sizeof(fdarg), "%d", channel_fd);
    if (spawn_image(img, argv, channel_fd, env, &pi, why, whylen) != 0)
        return -1;
    CloseHandle(pi.hThread);
    if (proxy_win_children_add(pi.hProcess, pi.dwProcessId, why, whylen) != 0) {
        /* Nobody would ever hear of its exit: it must not run. */
        TerminateProcess(pi.hProcess, PROXY_PROCESS_WIN_KILLED);
        CloseHandle(pi.hProcess);
        return -1;
    }
    *pid = (pid_t)pi.dwProcessId;
    return 0;
}

/* Exit codes that are NTSTATUS values of a process that crashed, or was
 * ended by the system, by the name an operator searches for. */
static const struct {
    DWORD       code;
    const char *name;
} ntstatus_names[] = {
    { 0x80000002UL, "datatype misalignment" },
    { 0x80000003UL, "breakpoint" },
    { 0xC0000005UL, "access violation" },
    { 0xC0000006UL, "in-page error" },
    { 0xC000000DUL, "invalid parameter" },
    { 0xC0000017UL, "out of memory" },
    { 0xC000001DUL, "illegal instruction" },
    { 0xC000008CUL, "array bounds exceeded" },
    { 0xC000008EUL, "floating-point division by zero" },
    { 0xC0000094UL, "integer division by zero" },
    { 0xC0000095UL, "integer overflow" },
    { 0xC0000096UL, "privileged instruction" },
    { 0xC00000FDUL, "stack overflow" },
    { 0xC0000135UL, "DLL not found" },
    { 0xC0000139UL, "entry point not found" },
    { 0xC000013AUL, "Ctrl-C" },
    { 0xC0000142UL, "DLL initialization failed" },
    { 0xC0000374UL, "heap corruption" },
    { 0xC0000409UL, "stack buffer overrun (fail fast)" },
};

void proxy_process_describe_status(int status, char *buf, size_t len)
{
    DWORD code = (DWORD)status;

    if (code == PROXY_PROCESS_WIN_KILLED) {
        snprintf(buf, len, "killed by the master (TerminateProcess)");
        return;
    }
    for (size_t i = 0; i < sizeof(ntstatus_names) / sizeof(ntstatus_names[0]); i++)
        if (ntstatus_names[i].code == code) {
            snprintf(buf, len, "crashed: %s (0x%08lX)", ntstatus_names[i].name, code);
            return;
        }
    /* Error severity: an NTSTATUS (or an exit(-N) that looks like one). */
    if ((code & 0xC0000000UL) == 0xC0000000UL)
        snprintf(buf, len, "ended with status 0x%08lX", code);
    else
        snprintf(buf, len, "exited with status %lu", code);
}

int proxy_process_status_ok(int status)
{
    return status == 0;
}
