/* testutil_posix.c - testutil.h's descriptor helpers on Linux. */
#include "testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

int test_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

int test_null_fd(void)
{
    return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

int test_dup_fd(int fd)
{
    return fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

int test_fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

void test_close_fd(int fd)
{
    if (fd >= 0)
        (void)close(fd);
}
