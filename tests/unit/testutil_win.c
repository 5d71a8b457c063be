/* testutil_win.c - testutil.h's descriptor helpers on Windows (C runtime
 * descriptors, as the portable code under test uses them). */
#include "testutil.h"

#include <fcntl.h>
#include <io.h>
#include <stdint.h>

/* msvcrt's descriptor table holds at most 2048 entries. */
#define CRT_FDS_MAX 2048

int test_count_fds(void)
{
    int fd, n = 0;

    for (fd = 0; fd < CRT_FDS_MAX; fd++)
        n += test_fd_is_open(fd);
    return n;
}

int test_null_fd(void)
{
    return _open("NUL", _O_RDONLY | _O_BINARY | _O_NOINHERIT);
}

int test_dup_fd(int fd)
{
    /* _dup's copy is inheritable, which no test here can observe: the
     * tests start no processes. */
    return _dup(fd);
}

int test_fd_is_open(int fd)
{
    return _get_osfhandle(fd) != (intptr_t)-1;
}
