/*
 * splice.h - moving bytes socket -> kernel pipe -> socket without copying
 * them through user space.  One implementation per OS:
 *   splice_linux.c  splice(2) through a pipe2(2) pipe
 *   splice_none.c   no such mechanism: proxy_splice_supported() is 0 and
 *                   the relay stays in copy mode, the path every TLS side
 *                   and `splice = off` already take
 */
#ifndef BATON_PROXY_SPLICE_H
#define BATON_PROXY_SPLICE_H

#include <stddef.h>
#include <sys/types.h>

/* 1 when the functions below can work on this OS. */
int     proxy_splice_supported(void);
/* A non-blocking, non-inherited pipe of about `size` bytes (a smaller one
 * is kept if the size cannot be set).  0, or -1 with errno. */
int     proxy_splice_pipe_open(int pfd[2], size_t size);
void    proxy_splice_pipe_close(int pfd[2]);
/* socket -> pipe (at most max bytes), pipe -> socket (at most n): bytes
 * moved, or -1 with errno (EAGAIN: nothing can move now). */
ssize_t proxy_splice_in(int sock, int pipe_wr, size_t max);
ssize_t proxy_splice_out(int pipe_rd, int sock, size_t n);
/* Takes bytes out of the pipe into memory (a connection handed over
 * carries its bytes, not its pipe): as read(2). */
ssize_t proxy_splice_pipe_read(int pipe_rd, void *buf, size_t n);

#endif
