/*
 * logfile_unix.c - logfile.h on Unix: O_APPEND makes each write(2) one
 * atomic append.
 */
#include "logfile.h"

#include <fcntl.h>

int proxy_logfile_open(const char *path, unsigned mode, unsigned flags)
{
    int oflags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC;

    if (flags & PROXY_LOGFILE_NONBLOCK)
        oflags |= O_NOCTTY | O_NONBLOCK;
    return open(path, oflags, (mode_t)mode);
}
