/*
 * fdlimit_unix.c - fdlimit.h on Unix: RLIMIT_NOFILE.
 */
#include "fdlimit.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

uint64_t proxy_fdlimit_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return 0;
    return (uint64_t)rl.rlim_cur;
}

int proxy_fdlimit_raise_nofile(char *why, size_t n)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        snprintf(why, n, "getrlimit: %s", strerror(errno));
        return -1;
    }
    if (rl.rlim_cur >= rl.rlim_max)
        return 0;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        snprintf(why, n, "%s", strerror(errno));
        return -1;
    }
    return 0;
}
