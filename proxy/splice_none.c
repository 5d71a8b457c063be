/*
 * splice_none.c - splice.h where the OS has no splice (Windows): nothing
 * is ever spliced, so no pipe is ever opened; the functions that move
 * bytes exist for the linker and fail as an unsupported call would.
 */
#include "splice.h"

#include <errno.h>

int proxy_splice_supported(void)
{
    return 0;
}

int proxy_splice_pipe_open(int pfd[2], size_t size)
{
    pfd[0] = pfd[1] = -1;
    errno = ENOSYS;
    return -1;
}

void proxy_splice_pipe_close(int pfd[2])
{
}

ssize_t proxy_splice_in(int sock, int pipe_wr, size_t max)
{
    errno = ENOSYS;
    return -1;
}

ssize_t proxy_splice_out(int pipe_rd, int sock, size_t n)
{
    errno = ENOSYS;
    return -1;
}

ssize_t proxy_splice_pipe_read(int pipe_rd, void *buf, size_t n)
{
    errno = ENOSYS;
    return -1;
}
