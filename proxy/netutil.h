/*
 * netutil.h - small socket and clock helpers shared by master and worker.
 * The OS-specific ones have one implementation per OS: netutil_unix.c
 * (fcntl, SOCK_NONBLOCK | SOCK_CLOEXEC, accept4), netutil_win.c (Winsock:
 * WSA_FLAG_NO_HANDLE_INHERIT, ioctlsocket(FIONBIO), handle information).
 * The engine's socket I/O goes through proxy_recv, proxy_send,
 * proxy_connect, proxy_shutdown: on failure errno holds the reason on
 * every OS (Winsock's WSAGetLastError() translated by port_net.h's
 * PORT_SOCK_ERRNO; on POSIX they are the plain calls, inlined, at no cost).
 * read()/write() do not work on Windows sockets: never use them on one.
 */
#ifndef BATON_PROXY_NETUTIL_H
#define BATON_PROXY_NETUTIL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include "port_net.h"

#include "clock.h"   /* most users of these helpers also read the clock */
#include "conf.h"

/* Once per process, before any socket: Unix ignores SIGPIPE (a peer that
 * went away must be an error return, never a signal), Windows starts
 * Winsock.  0, or -1 (logged). */
int      proxy_net_init(void);
/* A socket that is non-blocking and not inherited by child processes;
 * -1 on failure, with the reason in errno. */
int      proxy_socket(int family, int type, int protocol);
/* accept() whose socket is non-blocking and not inherited; -1 on failure,
 * with the reason in errno on every OS (the accept loop tells EAGAIN,
 * EMFILE... apart). */
int      proxy_accept(int lfd, struct sockaddr *sa, socklen_t *len);
/* Closes a socket (close on Unix, closesocket on Windows). */
int      proxy_sock_close(int fd);
/* Before bind() of a listener: a port in TIME_WAIT may be bound again, a
 * port another socket listens on may not (Unix: SO_REUSEADDR; Windows:
 * SO_EXCLUSIVEADDRUSE, since its SO_REUSEADDR would let a second process
 * take over a port in use).  0, or -1 with the option's name in *opt. */
int      proxy_sock_listen_addr_opts(int fd, const char **opt);
/* Flags for every send() of the proxy: no SIGPIPE where the OS has it. */
#define  PROXY_SEND_FLAGS PORT_SEND_NOSIGNAL
/* Added when more bytes follow at once (0 where the OS has no such flag). */
#define  PROXY_SEND_MORE  PORT_SEND_MORE

/* recv()/send()/shutdown(): -1 with errno set on failure (EAGAIN when the
 * socket would block, on every OS). */
static inline ssize_t proxy_recv(int fd, void *buf, size_t n, int flags)
{
    ssize_t r = recv(fd, buf, n, flags);

    if (r < 0)
        PORT_SOCK_ERRNO();
    return r;
}

static inline ssize_t proxy_send(int fd, const void *buf, size_t n, int flags)
{
    ssize_t w = send(fd, buf, n, flags);

    if (w < 0)
        PORT_SOCK_ERRNO();
    return w;
}

static inline int proxy_shutdown(int fd, int how)
{
    int rc = shutdown(fd, how);

    if (rc != 0)
        PORT_SOCK_ERRNO();
    return rc;
}

/* connect() of a non-blocking socket: 0, or -1 with errno EINPROGRESS
 * while it is under way (Winsock's WSAEWOULDBLOCK), or the failure. */
static inline int proxy_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    int rc = connect(fd, sa, len);

    if (rc != 0)
        PORT_SOCK_CONNECT_ERRNO();
    return rc;
}

/* The reason of the socket call that just failed, as an errno value, for
 * the calls without a wrapper (setsockopt, getsockname...). */
static inline int proxy_sock_errno(void)
{
    PORT_SOCK_ERRNO();
    return errno;
}

/* The socket's pending error (SO_ERROR: how a non-blocking connect ended)
 * as an errno value; 0 if none. */
static inline int proxy_sock_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, (void *)&err, &len) != 0)
        return proxy_sock_errno();
    return PORT_SOCK_CODE(err);
}

/* Text for an errno value a socket call gave (strerror() on POSIX; on
 * Windows also the values the C library has no text for). */
static inline const char *proxy_sock_strerror(int err)
{
    return PORT_SOCK_STRERROR(err);
}

int      proxy_set_nonblock(int fd);
int      proxy_set_cloexec(int fd, int on);
/* Creates, binds and listens; returns the fd or -1 with `why` set. */
int      proxy_listen(const struct conf_addr *addr, unsigned backlog, char *why, size_t n);
/* The address a socket is actually bound to (resolves port 0). */
void     proxy_sockname(int fd, char *buf, size_t n);
int      proxy_dup_cloexec(int fd);
/* A NUL-terminated copy of n bytes that need not be terminated themselves
 * (strndup would look for a NUL past them). */
char    *proxy_memdup_str(const void *p, size_t n);

#endif
