/*
 * sockopt_linux.c - sockopt.h on Linux.
 */
#include "sockopt.h"

#include <errno.h>
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

int proxy_sockopt_connected(int fd)
{
    struct tcp_info info;
    socklen_t len = sizeof(info);

    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0)
        return -1;
    if (len < sizeof(info.tcpi_state)) {
        errno = ENOPROTOOPT;
        return -1;
    }
    return info.tcpi_state == TCP_ESTABLISHED;
}
