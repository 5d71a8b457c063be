/*
 * logfile_win.c - logfile.h on Windows: a handle with FILE_APPEND_DATA and
 * no FILE_WRITE_DATA, on which every WriteFile appends at the end of the
 * file whatever its file pointer says, shared for reading, writing and
 * deleting (a log rotated or read meanwhile), not inheritable, and then
 * given a C library descriptor without _O_APPEND (which would only add a
 * useless seek before each write).
 */
#include "logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <stdlib.h>

#include <windows.h>

static int win_errno(DWORD err)
{
    switch (err) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_INVALID_DRIVE:
        return ENOENT;
    case ERROR_ACCESS_DENIED:
    case ERROR_SHARING_VIOLATION:
    case ERROR_LOCK_VIOLATION:
        return EACCES;
    case ERROR_INVALID_NAME:
    case ERROR_BAD_PATHNAME:
        return EINVAL;
    case ERROR_FILENAME_EXCED_RANGE:
        return ENAMETOOLONG;
    case ERROR_DISK_FULL:
        return ENOSPC;
    default:
        return EIO;
    }
}

/* The path as UTF-16 (configuration files are UTF-8); NULL with errno. */
static wchar_t *path_utf16(const char *path)
{
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, NULL, 0);
    wchar_t *w;

    if (n <= 0) {
        errno = EINVAL;
        return NULL;
    }
    w = malloc((size_t)n * sizeof(*w));
    if (w == NULL)
        return NULL;
    if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, w, n) != n) {
        free(w);
        errno = EINVAL;
        return NULL;
    }
    return w;
}

int proxy_logfile_open(const char *path, unsigned mode, unsigned flags)
{
    SECURITY_ATTRIBUTES sa = { .nLength = sizeof(sa), .bInheritHandle = FALSE };
    wchar_t *wpath = path_utf16(path);
    HANDLE h;
    int fd;

    if (wpath == NULL)
        return -1;
    h = CreateFileW(wpath, FILE_APPEND_DATA | SYNCHRONIZE,
                    FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, &sa, OPEN_ALWAYS,
                    FILE_ATTRIBUTE_NORMAL, NULL);
    free(wpath);
    if (h == INVALID_HANDLE_VALUE) {
        errno = win_errno(GetLastError());
        return -1;
    }
    fd = _open_osfhandle((intptr_t)h, _O_WRONLY | _O_BINARY);
    if (fd < 0) {
        CloseHandle(h);
        errno = EMFILE;
        return -1;
    }
    return fd;
}
