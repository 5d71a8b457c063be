/*
 * sockopt_none.c - an OS without deferred accept or TCP Fast Open as baton
 * uses them (Windows): "off" is what the system does anyway; anything else
 * is refused with ENOPROTOOPT, which the caller logs with the listener's or
 * server's name.
 */
#include "sockopt.h"

#include <errno.h>

int proxy_sockopt_defer_accept(int fd, unsigned secs)
{
    (void)fd;
    if (secs == 0)
        return 0;
    errno = ENOPROTOOPT;
    return -1;
}

int proxy_sockopt_fastopen(int fd, unsigned qlen)
{
    (void)fd;
    if (qlen == 0)
        return 0;
    errno = ENOPROTOOPT;
    return -1;
}

int proxy_sockopt_fastopen_connect(int fd)
{
    (void)fd;
    errno = ENOPROTOOPT;
    return -1;
}
