/* port_posix.c - port.h on Linux and other POSIX systems. */
#include "port.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <string.h>
#include <unistd.h>

unsigned port_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n < 1 ? 1 : (unsigned)n;
}

int port_open_read(const char *path)
{
    return open(path, O_RDONLY | O_CLOEXEC);
}

int port_group_id(const char *name, gid_t *gid, const char **err)
{
    struct group gr, *found = NULL;
    char buf[16384];
    int rc;

    do
        rc = getgrnam_r(name, &gr, buf, sizeof(buf), &found);
    while (rc == EINTR);
    if (rc != 0) {
        *err = strerror(rc);
        return -1;
    }
    if (found == NULL)
        return 1;
    *gid = gr.gr_gid;
    return 0;
}

pid_t port_parent_pid(void)
{
    return getppid();
}

int port_abspath(const char *path, char *buf, size_t len)
{
    char *abs = realpath(path, NULL);

    if (abs == NULL)
        return -1;
    if (strlen(abs) >= len) {
        free(abs);
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, abs, strlen(abs) + 1);
    free(abs);
    return 0;
}
