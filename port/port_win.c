/* port_win.c - port.h on Windows. */
#include "port.h"

#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <stdint.h>
#include <windows.h>

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
