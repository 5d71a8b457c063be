/*
 * sockopt_linux.c - sockopt.h on Linux.
 */
#include "sockopt.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static int set_int(int fd, int opt, int v)
{
    return setsockopt(fd, IPPROTO_TCP, opt, &v, sizeof(v));
}

int proxy_sockopt_defer_accept(int fd, unsigned secs)
{
    return set_int(fd, TCP_DEFER_ACCEPT, (int)secs);
}

int proxy_sockopt_fastopen(int fd, unsigned qlen)
{
    return set_int(fd, TCP_FASTOPEN, (int)qlen);
}

int proxy_sockopt_fastopen_connect(int fd)
{
    return set_int(fd, TCP_FASTOPEN_CONNECT, 1);
}
