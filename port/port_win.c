/* port_win.c - port.h on Windows. */
#include "port.h"

#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <stdint.h>
#include <windows.h>
#include <tlhelp32.h>

#include "port_libc.h"

void *reallocarray(void *p, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, n * size);
}

unsigned port_cpu_count(void)
{
    DWORD n = GetActiveProcessorCount(ALL_PROCESSOR_GROUPS);

    return n < 1 ? 1 : (unsigned)n;
}

int port_open_read(const char *path)
{
    return _open(path, _O_RDONLY | _O_BINARY | _O_NOINHERIT);
}

int port_group_id(const char *name, gid_t *gid, const char **err)
{
    (void)name;
    (void)gid;
    /* Access to the control channel is an ACL on Windows, not a group id. */
    *err = "groups by name are not supported on Windows";
    return -1;
}

int unsetenv(const char *name)
{
    /* An empty value removes the variable (msvcrt's putenv rule). */
    if (_putenv_s(name, "") != 0) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

/* Windows keeps no parent link but the id recorded at creation, which a
 * snapshot of the process list shows (the id may be reused once the
 * parent has exited; a worker's master outlives it). */
pid_t port_parent_pid(void)
{
    PROCESSENTRY32W pe = { .dwSize = sizeof(pe) };
    DWORD self = GetCurrentProcessId();
    HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
    pid_t parent = 0;

    if (snap == INVALID_HANDLE_VALUE)
        return 0;
    for (BOOL ok = Process32FirstW(snap, &pe); ok; ok = Process32NextW(snap, &pe))
        if (pe.th32ProcessID == self) {
            parent = (pid_t)pe.th32ParentProcessID;
            break;
        }
    CloseHandle(snap);
    return parent;
}

int port_abspath(const char *path, char *buf, size_t len)
{
    /* Windows paths may be given with either slash; _fullpath also folds
     * "." and ".." the way the system will. */
    if (len > INT_MAX || _fullpath(buf, path, len) == NULL) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}
