/* port_libc.h (POSIX) - C library extras beyond C11: glibc has them all. */
#ifndef BATON_PORT_LIBC_H
#define BATON_PORT_LIBC_H

#include <stdlib.h>

/* printf-like functions, checked as the C library's printf. */
#define PORT_PRINTF(fmt, first) __attribute__((format(printf, fmt, first)))

/* A monotonic clock that is cheap to read (tick resolution is enough). */
#define PORT_CLOCK_MONOTONIC_COARSE CLOCK_MONOTONIC_COARSE

#endif
