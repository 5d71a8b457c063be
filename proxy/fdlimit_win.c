/*
 * fdlimit_win.c - fdlimit.h on Windows: sockets are kernel handles with no
 * per-process count to read or raise (the C runtime's descriptor table,
 * which has one, holds no socket of baton's).
 */
#include "fdlimit.h"

uint64_t proxy_fdlimit_nofile(void)
{
    return 0;
}

int proxy_fdlimit_raise_nofile(char *why, size_t n)
{
    return 0;
}
