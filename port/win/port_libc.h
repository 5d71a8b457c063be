/*
 * port_libc.h (Windows) - C library extras beyond C11 that mingw-w64 lacks
 * (defined in port_win.c), and printf checking that matches the printf
 * actually used: mingw's C99 one (__USE_MINGW_ANSI_STDIO), where gcc's
 * "printf" would check msvcrt's, which has no %zu.
 */
#ifndef BATON_PORT_LIBC_H
#define BATON_PORT_LIBC_H

#include <stdlib.h>

#define PORT_PRINTF(fmt, first) __attribute__((format(gnu_printf, fmt, first)))

/* winpthreads' clock_gettime has no coarse clock; its monotonic one reads
 * QueryPerformanceCounter, cheap enough. */
#define PORT_CLOCK_MONOTONIC_COARSE CLOCK_MONOTONIC

/* realloc(p, n * size), failing with ENOMEM when that overflows. */
void *reallocarray(void *p, size_t n, size_t size);

/* Removes NAME from the environment: 0, or -1 with errno. */
int unsetenv(const char *name);

#endif
