#include "activation.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "logsafe.h"
#include "netutil.h"
#include "parse.h"

static long env_long(const char *name)
{
    const char *v = getenv(name);
    char *end;
    long n;

    if (v == NULL || *v == '\0')
        return -1;
    errno = 0;
    n = strtol(v, &end, 10);
    return errno != 0 || *end != '\0' || n < 0 ? -1 : n;
}

/* The name of passed socket i in "a:b:c", or "". */
static void fd_name(const char *names, long i, char *out, size_t n)
{
    out[0] = '\0';
    for (long k = 0; names != NULL && k < i; k++) {
        names = strchr(names, ':');
        if (names != NULL)
            names++;
    }
    if (names != NULL)
        snprintf(out, n, "%.*s", (int)strcspn(names, ":"), names);
}

void proxy_activation_collect(struct proxy_activated **out, size_t *n)
{
    long pid = env_long("LISTEN_PID"), count = env_long("LISTEN_FDS");
    const char *names = getenv("LISTEN_FDNAMES");
    struct proxy_activated *a;

    *out = NULL;
    *n = 0;
    if (count <= 0)
        return;
    if (pid != (long)getpid()) {
        /* Sockets passed to another process that we inherited: not ours to
         * use, and not to be handed on to the workers either. */
        for (long i = 0; i < count && i < 1024; i++)
            (void)proxy_set_cloexec(PROXY_ACTIVATION_FIRST_FD + (int)i, 1);
        return;
    }
    if (count > 1024) {
        proxy_log_warn("LISTEN_FDS=%ld is implausible; ignoring passed sockets", count);
        return;
    }
    a = calloc((size_t)count, sizeof(*a));
    if (a == NULL) {
        proxy_log_error("out of memory collecting passed sockets");
        return;
    }
    for (long i = 0; i < count; i++) {
        struct proxy_activated *s = &a[*n];
        int fd = PROXY_ACTIVATION_FIRST_FD + (int)i, listening = 0;
        socklen_t optlen = sizeof(listening);
        char safe[PROXY_LOGSAFE_BUF];

        s->len = sizeof(s->ss);
        fd_name(names, i, s->name, sizeof(s->name));
        if (getsockname(fd, (struct sockaddr *)&s->ss, &s->len) != 0 ||
            getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) != 0 || !listening ||
            (s->ss.ss_family != AF_INET && s->ss.ss_family != AF_INET6)) {
            proxy_log_warn("passed descriptor %d (%s) is not a listening TCP socket; closing it",
                           fd, s->name[0] ? proxy_logsafe(safe, sizeof(safe), s->name,
                                                          PROXY_LOGSAFE_TEXT) : "unnamed");
            close(fd);
            continue;
        }
        if (proxy_set_cloexec(fd, 1) != 0 || proxy_set_nonblock(fd) != 0)
            proxy_log_warn("passed descriptor %d: fcntl: %s", fd, strerror(errno));
        s->fd = fd;
        (*n)++;
    }
    *out = a;
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
}

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

int proxy_activation_take(struct proxy_activated *a, size_t n, const struct conf_addr *addr)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i].used || !same_addr(&a[i].ss, &addr->ss))
            continue;
        a[i].used = 1;
        return a[i].fd;
    }
    return -1;
}

void proxy_activation_close_unused(struct proxy_activated **a, size_t *n)
{
    for (size_t i = 0; *a != NULL && i < *n; i++) {
        char addr[80], safe[PROXY_LOGSAFE_BUF];

        if ((*a)[i].used)
            continue;
        conf_format_sockaddr(&(*a)[i].ss, (*a)[i].len, addr, sizeof(addr));
        proxy_log_warn("passed socket %s (%s) matches no configured bind; closing it", addr,
                       (*a)[i].name[0] ? proxy_logsafe(safe, sizeof(safe), (*a)[i].name,
                                                       PROXY_LOGSAFE_TEXT) : "unnamed");
        close((*a)[i].fd);
    }
    free(*a);
    *a = NULL;
    *n = 0;
}
