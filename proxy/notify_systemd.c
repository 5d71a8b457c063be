#include "notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "logsafe.h"

static char notify_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

void proxy_notify_init(void)
{
    const char *p = getenv("NOTIFY_SOCKET");

    if (p == NULL || p[0] == '\0')
        return;
    if ((p[0] != '/' && p[0] != '@') || strlen(p) >= sizeof(notify_path)) {
        char safe[PROXY_LOGSAFE_BUF];

        proxy_log_warn("NOTIFY_SOCKET '%s' is not a usable socket path; not notifying",
                       proxy_logsafe(safe, sizeof(safe), p, PROXY_LOGSAFE_TEXT));
        return;
    }
    memcpy(notify_path, p, strlen(p) + 1);
    if (unsetenv("NOTIFY_SOCKET") != 0)
        proxy_log_warn("unsetenv(NOTIFY_SOCKET): %s", strerror(errno));
}

void proxy_notify_restore_env(void)
{
    if (notify_path[0] != '\0' && setenv("NOTIFY_SOCKET", notify_path, 1) != 0)
        proxy_log_warn("setenv(NOTIFY_SOCKET): %s", strerror(errno));
}

void proxy_notify(const char *fmt, ...)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    socklen_t len;
    char msg[1024];
    va_list ap;
    int fd, n;

    if (notify_path[0] == '\0')
        return;
    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(msg))
        return;
    memcpy(sun.sun_path, notify_path, strlen(notify_path));
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(notify_path));
    if (sun.sun_path[0] == '@')
        sun.sun_path[0] = '\0';     /* abstract namespace */
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        proxy_log_warn("notify: socket: %s", strerror(errno));
        return;
    }
    if (sendto(fd, msg, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&sun, len) < 0)
        proxy_log_warn("notify: sendto %s: %s", notify_path, strerror(errno));
    close(fd);
}

void proxy_notify_reloading(const char *status)
{
    proxy_notify("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=%s",
                 (unsigned long long)proxy_now_us(), status);
}
