/* utf16_win.c - UTF-8 <-> UTF-16 for Windows' wide APIs. */
#include "utf16_win.h"

#include <limits.h>
#include <stdlib.h>
#include <windows.h>

wchar_t *proxy_utf16_from_utf8(const char *s)
{
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0);
    wchar_t *w;

    if (n <= 0)
        return NULL;
    w = malloc((size_t)n * sizeof(*w));
    if (w == NULL)
        return NULL;
    if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, w, n) != n) {
        free(w);
        return NULL;
    }
    return w;
}

int proxy_utf8_from_utf16(const wchar_t *w, char *buf, size_t len)
{
    int cap = len > INT_MAX ? INT_MAX : (int)len;

    if (cap < 1)
        return -1;
    /* With the terminator counted (-1): a result that does not fit fails. */
    return WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, w, -1, buf, cap, NULL, NULL) > 0
               ? 0 : -1;
}
