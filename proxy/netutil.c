#include "netutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/util.h>

#include "parse.h"

/* The last socket error as text (errno on Unix, Winsock's on Windows). */
static const char *sock_error(void)
{
    return evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR());
}

int proxy_listen(const struct conf_addr *addr, unsigned backlog, char *why, size_t n)
{
    int fd, one = 1;
    const char *opt;

    fd = proxy_socket(addr->ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0) {
        snprintf(why, n, "socket: %s", sock_error());
        return -1;
    }
    if (proxy_sock_listen_addr_opts(fd, &opt) != 0) {
        snprintf(why, n, "setsockopt(%s): %s", opt, sock_error());
        goto fail;
    }
    /* "[::]:port" must not also claim the IPv4 port: an operator who wants
     * both writes both binds. */
    if (addr->ss.ss_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, (const void *)&one, sizeof(one)) != 0) {
        snprintf(why, n, "setsockopt(IPV6_V6ONLY): %s", sock_error());
        goto fail;
    }
    if (bind(fd, (const struct sockaddr *)&addr->ss, addr->len) != 0) {
        snprintf(why, n, "bind %s: %s", addr->text, sock_error());
        goto fail;
    }
    if (listen(fd, (int)backlog) != 0) {
        snprintf(why, n, "listen %s: %s", addr->text, sock_error());
        goto fail;
    }
    return fd;
fail:
    proxy_sock_close(fd);
    return -1;
}

void proxy_sockname(int fd, char *buf, size_t n)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        snprintf(buf, n, "?");
        return;
    }
    conf_format_sockaddr(&ss, len, buf, n);
}

char *proxy_memdup_str(const void *p, size_t n)
{
    char *s = malloc(n + 1);

    if (s == NULL)
        return NULL;
    if (n > 0)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}
