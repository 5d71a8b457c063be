/*
 * netutil_win.c - the OS-specific socket helpers of netutil.h on Winsock.
 * Sockets are made with WSA_FLAG_NO_HANDLE_INHERIT: a socket a child
 * process inherited by accident would keep its connection open until that
 * child exits.  The only handle a worker inherits is its channel, named in
 * PROC_THREAD_ATTRIBUTE_HANDLE_LIST (process_win.c).
 */
#include "netutil.h"

#include <errno.h>
#include <stdint.h>

#include <windows.h>

#include "log.h"

int proxy_net_init(void)
{
    WSADATA wsa;
    int rc = WSAStartup(MAKEWORD(2, 2), &wsa);

    if (rc != 0) {
        proxy_log_error("cannot start Winsock 2.2: error %d", rc);
        return -1;
    }
    return 0;
}

static int sock_int(SOCKET s)
{
    /* A SOCKET is a handle: its value has 32 significant bits on both
     * 32- and 64-bit Windows, which is what lets baton keep `int`. */
    return s == INVALID_SOCKET ? -1 : (int)(intptr_t)s;
}

static SOCKET int_sock(int fd)
{
    return (SOCKET)(intptr_t)fd;
}

int proxy_socket(int family, int type, int protocol)
{
    SOCKET s = WSASocketW(family, type, protocol, NULL, 0,
                          WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    u_long on = 1;

    if (s == INVALID_SOCKET) {
        PORT_SOCK_ERRNO();
        return -1;
    }
    if (ioctlsocket(s, FIONBIO, &on) != 0) {
        PORT_SOCK_ERRNO();
        closesocket(s);
        return -1;
    }
    return sock_int(s);
}

/* Winsock's accept errors as the errno values the accept loop knows. */
static int accept_errno(int wsa)
{
    switch (wsa) {
    case WSAEWOULDBLOCK: return EAGAIN;
    case WSAEINTR:       return EINTR;
    case WSAECONNRESET:  return ECONNABORTED;
    case WSAEMFILE:      return EMFILE;
    case WSAENOBUFS:     return ENOBUFS;
    case WSAEINVAL:      return EINVAL;
    default:             return EIO;
    }
}

int proxy_accept(int lfd, struct sockaddr *sa, socklen_t *len)
{
    SOCKET s = accept(int_sock(lfd), sa, len);
    u_long on = 1;
    int fd;

    if (s == INVALID_SOCKET) {
        errno = accept_errno(WSAGetLastError());
        return -1;
    }
    /* An accepted socket inherits its listener's properties, not the
     * WSA_FLAG_NO_HANDLE_INHERIT it was made with: set both again. */
    fd = sock_int(s);
    if (ioctlsocket(s, FIONBIO, &on) != 0 || proxy_set_cloexec(fd, 1) != 0) {
        closesocket(s);
        errno = EIO;
        return -1;
    }
    return fd;
}

int proxy_sock_close(int fd)
{
    if (closesocket(int_sock(fd)) != 0) {
        PORT_SOCK_ERRNO();
        return -1;
    }
    return 0;
}

int proxy_sock_listen_addr_opts(int fd, const char **opt)
{
    BOOL one = TRUE;

    *opt = "SO_EXCLUSIVEADDRUSE";
    return setsockopt(int_sock(fd), SOL_SOCKET, SO_EXCLUSIVEADDRUSE, (const char *)&one,
                      sizeof(one)) == 0 ? 0 : -1;
}

int proxy_set_nonblock(int fd)
{
    u_long on = 1;

    if (ioctlsocket(int_sock(fd), FIONBIO, &on) != 0) {
        PORT_SOCK_ERRNO();
        return -1;
    }
    return 0;
}

int proxy_set_cloexec(int fd, int on)
{
    HANDLE h = (HANDLE)(intptr_t)fd;

    if (!SetHandleInformation(h, HANDLE_FLAG_INHERIT, on ? 0 : HANDLE_FLAG_INHERIT)) {
        errno = EBADF;
        return -1;
    }
    return 0;
}

/* A second descriptor of the same socket, for this process: the shared
 * socket machinery (WSADuplicateSocketW for our own pid) rather than
 * DuplicateHandle, which Winsock does not support for sockets. */
int proxy_dup_cloexec(int fd)
{
    WSAPROTOCOL_INFOW info;
    SOCKET s;

    if (WSADuplicateSocketW(int_sock(fd), GetCurrentProcessId(), &info) != 0) {
        PORT_SOCK_ERRNO();
        return -1;
    }
    s = WSASocketW(FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, &info, 0,
                   WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    if (s == INVALID_SOCKET)
        PORT_SOCK_ERRNO();
    return sock_int(s);
}
