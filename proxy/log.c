#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "logsafe.h"
#include "netutil.h"
#include "ratelimit.h"

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

/* Writes "TIMESTAMP baton[PID] LEVEL: " into buf; returns its length. */
static size_t log_prefix(char *buf, size_t len, const char *level)
{
    struct timespec ts;
    struct tm tm;
    int n;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || gmtime_r(&ts.tv_sec, &tm) == NULL)
        memset(&tm, 0, sizeof(tm)), ts.tv_nsec = 0;
    n = snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ baton[%ld] %s: ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec, ts.tv_nsec / 1000000, (long)getpid(), level);
    if (n < 0)
        return 0;
    return (size_t)n < len ? (size_t)n : len - 1;
}

int proxy_log_write(int fd, const char *level, const char *msg)
{
    char line[PROXY_LOG_LINE_MAX];
    size_t n = log_prefix(line, sizeof(line) - 1, level);

    /* Room is kept for the newline: a line is never left without it. */
    n += proxy_logsafe_mem(line + n, sizeof(line) - n - 1, msg, strlen(msg),
                           PROXY_LOGSAFE_FILTER);
    line[n++] = '\n';
    return write(fd, line, n) < 0 ? -1 : 0;
}

static void log_va(enum conf_log_level level, const char *suffix, const char *fmt, va_list ap)
{
    char msg[PROXY_LOG_LINE_MAX];
    int saved = errno, m;

    m = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (m >= 0 && suffix != NULL && (size_t)m < sizeof(msg))
        snprintf(msg + m, sizeof(msg) - (size_t)m, "%s", suffix);
    /* Nothing sensible can be done if stderr is gone. */
    (void)proxy_log_write(STDERR_FILENO, proxy_log_names[level], msg);
    errno = saved;
}

void proxy_log(enum conf_log_level level, const char *fmt, ...)
{
    va_list ap;

    if (!proxy_log_enabled(level))
        return;
    va_start(ap, fmt);
    log_va(level, NULL, fmt, ap);
    va_end(ap);
}

void proxy_log_text(enum conf_log_level level, const char *lead, const char *text)
{
    while (*text != '\0') {
        size_t n = strcspn(text, "\n");

        proxy_log(level, "%s%.*s", lead, (int)n, text);
        text += n;
        if (*text == '\n')
            text++;
    }
}

/* ---- rate-limited messages ---------------------------------------------- */

#define LOG_KIND(lvl, w) { (lvl), (w), PROXY_RATELIMIT_INIT(PROXY_LOG_BURST) }

static struct {
    enum conf_log_level    level;
    const char            *what;   /* names the kind in a count reported alone */
    struct proxy_ratelimit rl;
} log_kinds[PROXY_LOGK_COUNT] = {
    [PROXY_LOGK_PROXY_HEADER] = LOG_KIND(CONF_LOG_WARN, "bad PROXY headers"),
    [PROXY_LOGK_CLIENT_HELLO] = LOG_KIND(CONF_LOG_WARN, "bad ClientHellos"),
    [PROXY_LOGK_HANDSHAKE]    = LOG_KIND(CONF_LOG_WARN, "failed TLS handshakes"),
    [PROXY_LOGK_CONNECT]      = LOG_KIND(CONF_LOG_WARN, "failed connects to servers"),
    [PROXY_LOGK_NO_SERVER]    = LOG_KIND(CONF_LOG_WARN, "clients closed with no server connected"),
    [PROXY_LOGK_LOCAL_LIMIT]  = LOG_KIND(CONF_LOG_ERROR, "connects refused by a local limit"),
    [PROXY_LOGK_HANDOFF_UNKNOWN] = LOG_KIND(CONF_LOG_WARN, "handoff messages skipped as unknown"),
};

void proxy_log_limited(enum proxy_log_kind kind, const char *fmt, ...)
{
    char suffix[64];
    uint64_t suppressed;
    va_list ap;

    if (!proxy_log_enabled(log_kinds[kind].level) ||
        !proxy_ratelimit_allow(&log_kinds[kind].rl, proxy_coarse_now_ms(), &suppressed))
        return;
    suffix[0] = '\0';
    if (suppressed > 0)
        snprintf(suffix, sizeof(suffix), " (%" PRIu64 " similar messages suppressed)",
                 suppressed);
    va_start(ap, fmt);
    log_va(log_kinds[kind].level, suffix, fmt, ap);
    va_end(ap);
}

void proxy_log_flush_suppressed(int all)
{
    uint64_t now = proxy_coarse_now_ms(), n;

    for (size_t k = 0; k < PROXY_LOGK_COUNT; k++)
        if ((n = proxy_ratelimit_take(&log_kinds[k].rl, now, all)) > 0)
            proxy_log(log_kinds[k].level, "rate limit: %s: %" PRIu64 " similar messages "
                      "suppressed", log_kinds[k].what, n);
}
