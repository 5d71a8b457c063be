#include "image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netutil.h"

extern char **environ;

static int image_identify(struct proxy_image *img, const char *what, char *why, size_t n)
{
    struct stat st;

    if (fstat(img->fd, &st) != 0) {
        snprintf(why, n, "%s: fstat: %s", what, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, n, "%s is not a regular file", what);
        return -1;
    }
    img->dev = (uint64_t)st.st_dev;
    img->ino = (uint64_t)st.st_ino;
    return 0;
}

int proxy_image_open(struct proxy_image *img, const char *path, char *why, size_t n)
{
    struct proxy_image tmp = PROXY_IMAGE_NONE;

    tmp.fd = open(path, O_RDONLY | O_CLOEXEC);
    if (tmp.fd < 0) {
        snprintf(why, n, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (image_identify(&tmp, path, why, n) != 0) {
        close(tmp.fd);
        return -1;
    }
    *img = tmp;
    return 0;
}

int proxy_image_open_self(struct proxy_image *img, char *why, size_t n)
{
    return proxy_image_open(img, "/proc/self/exe", why, n);
}

int proxy_image_adopt(struct proxy_image *img, int fd, char *why, size_t n)
{
    struct proxy_image tmp = { .fd = fd };
    char what[48];

    snprintf(what, sizeof(what), "image descriptor %d", fd);
    if (proxy_set_cloexec(fd, 1) != 0) {
        snprintf(why, n, "%s: %s", what, strerror(errno));
        return -1;
    }
    if (image_identify(&tmp, what, why, n) != 0)
        return -1;
    *img = tmp;
    return 0;
}

int proxy_image_dup(struct proxy_image *dst, const struct proxy_image *src)
{
    int fd = fcntl(src->fd, F_DUPFD_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    *dst = *src;
    dst->fd = fd;
    return 0;
}

void proxy_image_close(struct proxy_image *img)
{
    if (img->fd >= 0)
        close(img->fd);
    img->fd = -1;
    img->dev = img->ino = 0;
}

/* An interpreter reads a script through /dev/fd/N after exec, so the
 * descriptor must survive it; a binary is mapped by the kernel first. */
static int image_is_script(int fd)
{
    char magic[2];

    return pread(fd, magic, sizeof(magic), 0) == (ssize_t)sizeof(magic) &&
           magic[0] == '#' && magic[1] == '!';
}

int proxy_image_exec(const struct proxy_image *img, char *const argv[], char *const envp[],
                     int keep_fd)
{
    int saved;

    if (img->fd < 0) {
        errno = EBADF;
        return -1;
    }
    if ((keep_fd || image_is_script(img->fd)) && proxy_set_cloexec(img->fd, 0) != 0)
        return -1;
    fexecve(img->fd, argv, envp != NULL ? envp : environ);
    saved = errno;
    (void)proxy_set_cloexec(img->fd, 1);
    errno = saved;
    return -1;
}
