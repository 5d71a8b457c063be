/*
 * netutil_unix.c - the OS-specific socket helpers of netutil.h: descriptor
 * flags through fcntl, sockets and accepted sockets made non-blocking and
 * close-on-exec atomically (SOCK_NONBLOCK | SOCK_CLOEXEC, accept4).
 */
#include "netutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

int proxy_net_init(void)
{
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        proxy_log_error("cannot ignore SIGPIPE: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int proxy_socket(int family, int type, int protocol)
{
    return socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
}

int proxy_accept(int lfd, struct sockaddr *sa, socklen_t *len)
{
    return accept4(lfd, sa, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int proxy_sock_close(int fd)
{
    return close(fd);
}

int proxy_sock_listen_addr_opts(int fd, const char **opt)
{
    int one = 1;

    *opt = "SO_REUSEADDR";
    return setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
}

int proxy_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0)
        return -1;
    return fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int proxy_set_cloexec(int fd, int on)
{
    int fl = fcntl(fd, F_GETFD);

    if (fl < 0)
        return -1;
    return fcntl(fd, F_SETFD, on ? fl | FD_CLOEXEC : fl & ~FD_CLOEXEC);
}

int proxy_dup_cloexec(int fd)
{
    return fcntl(fd, F_DUPFD_CLOEXEC, 3);
}
