/*
 * image_win.c - image.h on Windows: the executable held by a file handle
 * (its value in img->fd, see image_win.h).
 *
 * The handle shares reading and deletion but not writing: while baton holds
 * an image, the file can be renamed (or replaced by a rename over its
 * path), never rewritten in place.  That is the worker binary upgrade on
 * Windows: rename the running .exe, copy the new one to the install path,
 * reload (docs/windows.md).  The identity is the volume serial number and
 * the file index, which a rename keeps.
 */
#include "image.h"
#include "image_win.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <windows.h>

#include "process.h"
#include "utf16_win.h"

HANDLE proxy_image_handle(const struct proxy_image *img)
{
    return img->fd < 0 ? INVALID_HANDLE_VALUE : (HANDLE)(intptr_t)img->fd;
}

int proxy_image_identity(HANDLE h, uint64_t *dev, uint64_t *ino, char *why, size_t n)
{
    BY_HANDLE_FILE_INFORMATION fi;

    if (!GetFileInformationByHandle(h, &fi)) {
        snprintf(why, n, "GetFileInformationByHandle: error %lu", GetLastError());
        return -1;
    }
    if (fi.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) {
        snprintf(why, n, "is a directory, not an executable file");
        return -1;
    }
    *dev = fi.dwVolumeSerialNumber;
    *ino = (uint64_t)fi.nFileIndexHigh << 32 | fi.nFileIndexLow;
    return 0;
}

/* Takes over h (closed on failure): identity, and the int that carries it. */
static int image_take(struct proxy_image *img, HANDLE h, const char *what, char *why, size_t n)
{
    char idwhy[96];
    struct proxy_image tmp;

    /* Handle values have 32 significant bits (documented for 32/64-bit
     * interoperation): the int carries them, and never looks like "none". */
    if ((intptr_t)h < 0 || (intptr_t)h > INT32_MAX) {
        snprintf(why, n, "%s: handle value %p does not fit baton's descriptors", what, h);
        CloseHandle(h);
        return -1;
    }
    tmp.fd = (int)(intptr_t)h;
    if (proxy_image_identity(h, &tmp.dev, &tmp.ino, idwhy, sizeof(idwhy)) != 0) {
        snprintf(why, n, "%s: %s", what, idwhy);
        CloseHandle(h);
        return -1;
    }
    *img = tmp;
    return 0;
}

int proxy_image_open(struct proxy_image *img, const char *path, char *why, size_t n)
{
    wchar_t *wpath = proxy_utf16_from_utf8(path);
    HANDLE h;

    if (wpath == NULL) {
        snprintf(why, n, "cannot open %s: not valid UTF-8 (or out of memory)", path);
        return -1;
    }
    /* No FILE_SHARE_WRITE: nobody rewrites the image while it is held.
     * FILE_SHARE_DELETE: it can still be renamed out of the way.  Not
     * inheritable (NULL security attributes). */
    h = CreateFileW(wpath, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_DELETE, NULL,
                    OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    free(wpath);
    if (h == INVALID_HANDLE_VALUE) {
        snprintf(why, n, "cannot open %s: error %lu", path, GetLastError());
        return -1;
    }
    return image_take(img, h, path, why, n);
}

int proxy_image_open_self(struct proxy_image *img, char *why, size_t n)
{
    char path[PROXY_IMAGE_PATH_MAX];

    if (proxy_process_self_exe(path, sizeof(path)) != 0) {
        snprintf(why, n, "cannot find the path of this executable");
        return -1;
    }
    return proxy_image_open(img, path, why, n);
}

int proxy_image_adopt(struct proxy_image *img, int fd, char *why, size_t n)
{
    HANDLE h = (HANDLE)(intptr_t)fd;
    char what[48];

    snprintf(what, sizeof(what), "image handle %d", fd);
    if (!SetHandleInformation(h, HANDLE_FLAG_INHERIT, 0)) {
        snprintf(why, n, "%s: error %lu", what, GetLastError());
        return -1;
    }
    return image_take(img, h, what, why, n);
}

int proxy_image_dup(struct proxy_image *dst, const struct proxy_image *src)
{
    HANDLE self = GetCurrentProcess(), h;

    if (src->fd < 0) {
        errno = EBADF;
        return -1;
    }
    if (!DuplicateHandle(self, proxy_image_handle(src), self, &h, 0, FALSE,
                         DUPLICATE_SAME_ACCESS)) {
        errno = EBADF;
        return -1;
    }
    *dst = *src;
    dst->fd = (int)(intptr_t)h;
    return 0;
}

void proxy_image_close(struct proxy_image *img)
{
    if (img->fd >= 0)
        CloseHandle(proxy_image_handle(img));
    img->fd = -1;
    img->dev = img->ino = 0;
}

int proxy_image_exec(const struct proxy_image *img, char *const argv[], char *const envp[],
                     int keep_fd)
{
    (void)img;
    (void)argv;
    (void)envp;
    (void)keep_fd;
    /* Windows cannot replace a process's image.  The only caller is the
     * master's in-place upgrade (master_exec.c), which is Linux's: on
     * Windows the master is upgraded by restarting the service, and workers
     * are started by path (process_win.c). */
    errno = ENOSYS;
    return -1;
}
