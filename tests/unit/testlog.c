/*
 * testlog.c - log.h's proxy_log for unit tests that link engine files
 * without log.c (Windows, until log.c builds there): each line on stderr,
 * where ctest shows it with a failed test.
 */
#include <stdarg.h>
#include <stdio.h>

#include "log.h"

void proxy_log(enum conf_log_level level, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "log[%d]: ", (int)level);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
