#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int proxy_log_level = CONF_LOG_INFO;

static const char *const proxy_log_names[] = { "error", "warn", "info", "debug" };

void proxy_log_set_level(enum conf_log_level level)
{
    proxy_log_level = (int)level;
}

int proxy_log_enabled(enum conf_log_level level)
{
    return (int)level <= proxy_log_level;
}

size_t proxy_log_prefix(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    int n;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || gmtime_r(&ts.tv_sec, &tm) == NULL)
        memset(&tm, 0, sizeof(tm)), ts.tv_nsec = 0;
    n = snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ baton[%ld] ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec, ts.tv_nsec / 1000000, (long)getpid());
    if (n < 0)
        return 0;
    return (size_t)n < len ? (size_t)n : len - 1;
}

void proxy_log(enum conf_log_level level, const char *fmt, ...)
{
    char line[2048];
    size_t n;
    va_list ap;
    int saved = errno, m;

    if (!proxy_log_enabled(level))
        return;
    n = proxy_log_prefix(line, sizeof(line));
    m = snprintf(line + n, sizeof(line) - n, "%s: ", proxy_log_names[level]);
    if (m > 0)
        n += (size_t)m;
    va_start(ap, fmt);
    m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (m > 0)
        n += (size_t)m < sizeof(line) - n ? (size_t)m : sizeof(line) - n - 1;
    line[n++] = '\n';
    /* Nothing sensible can be done if stderr is gone. */
    if (write(STDERR_FILENO, line, n) < 0)
        (void)0;
    errno = saved;
}
