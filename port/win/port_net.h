/*
 * port_net.h (Windows) - socket address types and conversions from Winsock
 * (AF_UNIX's sockaddr_un from afunix.h, Windows 10 1803 and later), and the
 * POSIX names the portable code uses for them.
 */
#ifndef BATON_PORT_NET_H
#define BATON_PORT_NET_H

#include <errno.h>
#include <winsock2.h>
#include <ws2tcpip.h>
#include <afunix.h>
#include <strings.h>
#include <sys/types.h>

/* Windows has no numeric groups; the type exists so that the configuration
 * keeps one layout (port_group_id() finds no group on Windows).  uid_t
 * likewise for peer credentials (peercred_win.c puts a SID's last part in
 * it). */
typedef unsigned int gid_t;
typedef unsigned int uid_t;
typedef unsigned short in_port_t;

/* Windows raises no signal for a write to a closed peer. */
#define PORT_SEND_NOSIGNAL 0
/* Winsock's names for shutdown()'s directions, and no per-call
 * non-blocking flag (baton's sockets are non-blocking anyway). */
#define SHUT_RD      SD_RECEIVE
#define SHUT_WR      SD_SEND
#define SHUT_RDWR    SD_BOTH
#define MSG_DONTWAIT 0
/* Winsock has no MSG_MORE: each send goes out as the stack sees fit. */
#define PORT_SEND_MORE 0

/* Winsock reports a socket call's error through WSAGetLastError(), never
 * errno, and in its own codes (WSAEWOULDBLOCK...).  These put it into errno
 * as the POSIX value the engine tests (WSAEWOULDBLOCK -> EAGAIN, or
 * EINPROGRESS after connect), and give text for those values, which the C
 * library's strerror() does not know (port_win.c). */
int         port_sock_errno(int wsa);
int         port_sock_connect_errno(int wsa);
const char *port_sock_strerror(int err);
#define PORT_SOCK_ERRNO()         ((void)(errno = port_sock_errno(WSAGetLastError())))
#define PORT_SOCK_CONNECT_ERRNO() ((void)(errno = port_sock_connect_errno(WSAGetLastError())))
#define PORT_SOCK_CODE(e)         port_sock_errno(e)
#define PORT_SOCK_STRERROR(e)     port_sock_strerror(e)

#endif
