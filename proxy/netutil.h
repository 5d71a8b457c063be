/*
 * netutil.h - small socket and clock helpers shared by master and worker.
 * The OS-specific ones have one implementation per OS: netutil_unix.c
 * (fcntl, SOCK_NONBLOCK | SOCK_CLOEXEC, accept4), netutil_win.c (Winsock:
 * WSA_FLAG_NO_HANDLE_INHERIT, ioctlsocket(FIONBIO), handle information).
 * Socket errors are read with EVUTIL_SOCKET_ERROR() (errno on Unix,
 * WSAGetLastError() on Windows).
 */
#ifndef BATON_PROXY_NETUTIL_H
#define BATON_PROXY_NETUTIL_H

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
 * -1 on failure (EVUTIL_SOCKET_ERROR() says why). */
int      proxy_socket(int family, int type, int protocol);
/* accept() whose socket is non-blocking and not inherited; -1 on failure,
 * with the reason in errno on every OS (the accept loop tells EAGAIN,
 * EMFILE... apart). */
int      proxy_accept(int lfd, struct sockaddr *sa, socklen_t *len);
/* Closes a socket (close on Unix, closesocket on Windows). */
int      proxy_sock_close(int fd);
/* Flags for every send() of the proxy: no SIGPIPE where the OS has it. */
#define  PROXY_SEND_FLAGS PORT_SEND_NOSIGNAL
/* Added when more bytes follow at once (0 where the OS has no such flag). */
#define  PROXY_SEND_MORE  PORT_SEND_MORE
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
