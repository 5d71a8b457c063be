#include "control.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "netutil.h"

static int control_addr(const char *path, struct sockaddr_un *sun, char *why, size_t whylen)
{
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun->sun_path)) {
        snprintf(why, whylen, "control socket path too long (max %zu bytes): %s",
                 sizeof(sun->sun_path) - 1, path);
        return -1;
    }
    memcpy(sun->sun_path, path, strlen(path) + 1);
    return 0;
}

static int control_connect(const char *path, char *why, size_t whylen)
{
    struct sockaddr_un sun;
    int fd;

    if (control_addr(path, &sun, why, whylen) != 0)
        return -1;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, whylen, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        snprintf(why, whylen, "cannot connect to control socket %s: %s (is baton running?)",
                 path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int proxy_control_listen(const char *path, char *why, size_t whylen)
{
    struct sockaddr_un sun;
    mode_t old;
    int fd, probe;

    if (control_addr(path, &sun, why, whylen) != 0)
        return -1;
    probe = control_connect(path, why, whylen);
    if (probe >= 0) {
        close(probe);
        snprintf(why, whylen, "another baton master is running on control socket %s", path);
        return -1;
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        snprintf(why, whylen, "cannot remove stale control socket %s: %s", path, strerror(errno));
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, whylen, "socket: %s", strerror(errno));
        return -1;
    }
    /* Created 0600 from the start: no window in which others could connect. */
    old = umask(0177);
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        umask(old);
        snprintf(why, whylen, "cannot bind control socket %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    umask(old);
    if (listen(fd, 16) != 0) {
        snprintf(why, whylen, "listen on control socket %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    return fd;
}

static int control_wait(int fd, short events, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = events };
    int rc;

    do
        rc = poll(&p, 1, timeout_ms);
    while (rc < 0 && errno == EINTR);
    return rc;
}

int proxy_control_request(const char *path, const char *cmd, int timeout_ms)
{
    char why[512], line[256], *reply = NULL, *body;
    size_t len = 0, cap = 0;
    int fd, ok, cmdlen;

    fd = control_connect(path, why, sizeof(why));
    if (fd < 0) {
        fprintf(stderr, "baton: %s\n", why);
        return 1;
    }
    cmdlen = snprintf(line, sizeof(line), "%s\n", cmd);
    if (cmdlen < 0 || (size_t)cmdlen >= sizeof(line)) {
        fprintf(stderr, "baton: command '%.40s...' too long\n", cmd);
        close(fd);
        return 1;
    }
    /* A master that refuses the connection (too many clients) answers and
     * closes at once: a failed send still leaves its answer to read. */
    if (send(fd, line, (size_t)cmdlen, MSG_NOSIGNAL) != cmdlen && errno != EPIPE &&
        errno != ECONNRESET) {
        fprintf(stderr, "baton: sending '%s' to %s: %s\n", cmd, path, strerror(errno));
        close(fd);
        return 1;
    }
    for (;;) {
        ssize_t n;

        if (control_wait(fd, POLLIN, timeout_ms) <= 0) {
            fprintf(stderr, "baton: no answer from the master on %s within %d ms\n", path,
                    timeout_ms);
            free(reply);
            close(fd);
            return 1;
        }
        if (len + 4096 + 1 > cap) {
            char *p = realloc(reply, cap = cap ? cap * 2 : 8192);

            if (p == NULL) {
                fprintf(stderr, "baton: out of memory\n");
                free(reply);
                close(fd);
                return 1;
            }
            reply = p;
        }
        n = read(fd, reply + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "baton: reading from %s: %s\n", path, strerror(errno));
            free(reply);
            close(fd);
            return 1;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (reply == NULL || len == 0) {
        fprintf(stderr, "baton: the master closed the control connection without an answer\n");
        free(reply);
        return 1;
    }
    reply[len] = '\0';
    ok = strncmp(reply, "OK\n", 3) == 0;
    if (!ok && strncmp(reply, "ERR ", 4) != 0) {
        fprintf(stderr, "baton: unexpected answer from the master: %.80s\n", reply);
        free(reply);
        return 1;
    }
    body = reply + (ok ? 3 : 4);
    fputs(body, ok ? stdout : stderr);
    free(reply);
    return ok ? 0 : 1;
}
