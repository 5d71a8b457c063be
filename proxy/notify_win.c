/*
 * notify_win.c - notify.h on Windows: the sd_notify-style assignments the
 * master sends become the service status, reported by the service glue
 * (proxy_notify_service, service_win.c).  Only the assignments baton
 * itself sends are read; the rest (MONOTONIC_USEC...) mean nothing to the
 * Service Control Manager.
 */
#include "notify.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void proxy_notify_init(void)
{
}

void proxy_notify_restore_env(void)
{
}

/* The value of "key=" in the newline-separated assignments, cut at its
 * line's end in place; NULL when absent. */
static char *assignment(char *msg, const char *key)
{
    size_t klen = strlen(key);

    for (char *line = msg; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');

        if (strncmp(line, key, klen) == 0 && line[klen] == '=') {
            if (nl != NULL)
                *nl = '\0';
            return line + klen + 1;
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    return NULL;
}

void proxy_notify(const char *fmt, ...)
{
    char msg[1024], copy[sizeof(msg)];
    enum proxy_notify_state state = PROXY_NOTIFY_STATUS;
    const char *status;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(msg))
        return;
    /* Each look-up cuts a line: each reads a fresh copy. */
    memcpy(copy, msg, (size_t)n + 1);
    if (assignment(copy, "READY") != NULL)
        state = PROXY_NOTIFY_READY;
    memcpy(copy, msg, (size_t)n + 1);
    if (assignment(copy, "RELOADING") != NULL)
        state = PROXY_NOTIFY_RELOADING;
    memcpy(copy, msg, (size_t)n + 1);
    if (assignment(copy, "STOPPING") != NULL)
        state = PROXY_NOTIFY_STOPPING;
    status = assignment(msg, "STATUS");
    proxy_notify_service(state, status != NULL ? status : "");
}

void proxy_notify_reloading(const char *status)
{
    proxy_notify("RELOADING=1\nSTATUS=%s", status);
}
