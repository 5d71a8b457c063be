/*
 * testlog.c - log.h for the Windows unit tests that link a few engine files
 * alone (test_process, test_control_pipe, test_osevents_win,
 * test_service_win) rather than the engine with its log.c and what that
 * pulls in: each line to stderr, flushed (Wine's console output is
 * block-buffered), where ctest shows it with a failed test.
 */
#include <stdarg.h>
#include <stdio.h>

#include "log.h"

static enum conf_log_level test_level = CONF_LOG_DEBUG;

void proxy_log_set_level(enum conf_log_level level)
{
    test_level = level;
}

int proxy_log_enabled(enum conf_log_level level)
{
    return level <= test_level;
}

void proxy_log(enum conf_log_level level, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "log[%d]: ", (int)level);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}

void proxy_log_text(enum conf_log_level level, const char *lead, const char *text)
{
    proxy_log(level, "%s%s", lead, text);
}
