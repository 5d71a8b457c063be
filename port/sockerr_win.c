/*
 * sockerr_win.c - Winsock's error codes as the errno values the engine
 * tests, and text for them (port_net.h: PORT_SOCK_ERRNO...).  The engine
 * reads errno after a socket call on every OS; on Windows the wrappers of
 * netutil.h put the translated WSAGetLastError() there first.
 */
#include "port.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct sockerr {
    int         wsa;
    int         err;
    const char *text;
};

/* The C library's strerror() knows the classic errno values only, not the
 * POSIX supplement (ECONNRESET...) mingw numbers above 100: the text is
 * here, worded as glibc words it, so logs read the same on both OSes. */
static const struct sockerr sockerrs[] = {
    { WSAEWOULDBLOCK,     EAGAIN,       "Resource temporarily unavailable" },
    { WSAEINPROGRESS,     EINPROGRESS,  "Operation now in progress" },
    { WSAEALREADY,        EALREADY,     "Operation already in progress" },
    { WSAEINTR,           EINTR,        "Interrupted system call" },
    { WSAEBADF,           EBADF,        "Bad file descriptor" },
    { WSAENOTSOCK,        ENOTSOCK,     "Socket operation on non-socket" },
    { WSAEACCES,          EACCES,       "Permission denied" },
    { WSAEFAULT,          EFAULT,       "Bad address" },
    { WSAEINVAL,          EINVAL,       "Invalid argument" },
    { WSAEMFILE,          EMFILE,       "Too many open files" },
    { WSAENOBUFS,         ENOBUFS,      "No buffer space available" },
    { WSAEMSGSIZE,        EMSGSIZE,     "Message too long" },
    { WSAENOPROTOOPT,     ENOPROTOOPT,  "Protocol not available" },
    { WSAEOPNOTSUPP,      EOPNOTSUPP,   "Operation not supported" },
    { WSAEAFNOSUPPORT,    EAFNOSUPPORT, "Address family not supported by protocol" },
    { WSAEADDRINUSE,      EADDRINUSE,   "Address already in use" },
    { WSAEADDRNOTAVAIL,   EADDRNOTAVAIL, "Cannot assign requested address" },
    { WSAENETDOWN,        ENETDOWN,     "Network is down" },
    { WSAENETUNREACH,     ENETUNREACH,  "Network is unreachable" },
    { WSAENETRESET,       ENETRESET,    "Network dropped connection on reset" },
    { WSAECONNABORTED,    ECONNABORTED, "Software caused connection abort" },
    { WSAECONNRESET,      ECONNRESET,   "Connection reset by peer" },
    { WSAEISCONN,         EISCONN,      "Transport endpoint is already connected" },
    { WSAENOTCONN,        ENOTCONN,     "Transport endpoint is not connected" },
    /* A send after shutdown(SD_SEND): POSIX says EPIPE. */
    { WSAESHUTDOWN,       EPIPE,        "Broken pipe" },
    { WSAETIMEDOUT,       ETIMEDOUT,    "Connection timed out" },
    { WSAECONNREFUSED,    ECONNREFUSED, "Connection refused" },
    { WSAEHOSTUNREACH,    EHOSTUNREACH, "No route to host" },
    { WSAEHOSTDOWN,       EHOSTUNREACH, "No route to host" },
};

#define NSOCKERRS (sizeof(sockerrs) / sizeof(sockerrs[0]))

int port_sock_errno(int wsa)
{
    for (size_t i = 0; i < NSOCKERRS; i++)
        if (sockerrs[i].wsa == wsa)
            return sockerrs[i].err;
    /* Not a Winsock code (a C library call's errno, 0): as it is. */
    return wsa >= WSABASEERR ? EIO : wsa;
}

int port_sock_connect_errno(int wsa)
{
    /* A non-blocking connect() under way says WSAEWOULDBLOCK on Windows,
     * EINPROGRESS on POSIX. */
    return wsa == WSAEWOULDBLOCK ? EINPROGRESS : port_sock_errno(wsa);
}

const char *port_sock_strerror(int err)
{
    for (size_t i = 0; i < NSOCKERRS; i++)
        if (sockerrs[i].err == err)
            return sockerrs[i].text;
    return strerror(err);
}
