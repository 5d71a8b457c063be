/*
 * fdlimit.h - the per-process descriptor limit (not "limits.h": that name
 * would shadow the C library's for every file with proxy/ on its include
 * path).  One implementation per OS:
 *   fdlimit_unix.c  RLIMIT_NOFILE
 *   fdlimit_win.c   Windows has no per-process socket limit to read or
 *                  raise (sockets are kernel handles, bounded by memory)
 */
#ifndef BATON_PROXY_FDLIMIT_H
#define BATON_PROXY_FDLIMIT_H

#include <stddef.h>
#include <stdint.h>

/* The descriptors this process may hold now; 0 when there is no limit
 * (or it cannot be read). */
uint64_t proxy_fdlimit_nofile(void);

/* Raises the soft descriptor limit to the hard one, which child processes
 * inherit.  0 (also when there is nothing to raise), or -1 with why. */
int proxy_fdlimit_raise_nofile(char *why, size_t n);

#endif
