/*
 * splice_linux.c - splice.h on Linux: splice(2) through a pipe of its own.
 */
#include "splice.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

int proxy_splice_supported(void)
{
    return 1;
}

int proxy_splice_pipe_open(int pfd[2], size_t size)
{
    if (pipe2(pfd, O_NONBLOCK | O_CLOEXEC) != 0)
        return -1;
    /* A larger pipe moves more per splice call; the default size works too. */
    if (fcntl(pfd[1], F_SETPIPE_SZ, (int)size) < 0)
        proxy_log_debug("F_SETPIPE_SZ: %s", strerror(errno));
    return 0;
}

void proxy_splice_pipe_close(int pfd[2])
{
    close(pfd[0]);
    close(pfd[1]);
}

ssize_t proxy_splice_in(int sock, int pipe_wr, size_t max)
{
    return splice(sock, NULL, pipe_wr, NULL, max, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
}

ssize_t proxy_splice_out(int pipe_rd, int sock, size_t n)
{
    return splice(pipe_rd, NULL, sock, NULL, n, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
}

ssize_t proxy_splice_pipe_read(int pipe_rd, void *buf, size_t n)
{
    return read(pipe_rd, buf, n);
}
