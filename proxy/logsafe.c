/*
 * logsafe.c - the one escaping rule for outside values in logs and status
 * output (see logsafe.h).
 */
#include "logsafe.h"

#include <string.h>

static const char hexdigits[] = "0123456789abcdef";
static const char cut_marker[] = "...";
#define CUT_LEN (sizeof(cut_marker) - 1)

/* The escaped form of byte c, into e; returns its length (1, 2 or 4). */
static size_t escape_byte(unsigned char c, enum proxy_logsafe_mode mode, char e[4])
{
    if (c == '\n' && (mode == PROXY_LOGSAFE_LINES || mode == PROXY_LOGSAFE_TERMINAL)) {
        e[0] = '\n';
        return 1;
    }
    if (c < 0x20 || c > 0x7e || (c == ' ' && mode == PROXY_LOGSAFE_FIELD)) {
        e[0] = '\\';
        e[1] = 'x';
        e[2] = hexdigits[c >> 4];
        e[3] = hexdigits[c & 0x0f];
        return 4;
    }
    /* The filter runs over lines whose values were escaped already: their
     * backslashes must not be doubled again. */
    if ((c == '\\' || c == '"') && mode != PROXY_LOGSAFE_FILTER && mode != PROXY_LOGSAFE_TERMINAL) {
        e[0] = '\\';
        e[1] = (char)c;
        return 2;
    }
    e[0] = (char)c;
    return 1;
}

size_t proxy_logsafe_mem(char *out, size_t outlen, const void *p, size_t n,
                         enum proxy_logsafe_mode mode)
{
    const unsigned char *s = p;
    size_t room, used = 0, fits_marker = 0, i;
    char e[4];

    if (outlen == 0)
        return 0;
    room = outlen - 1;
    for (i = 0; i < n; i++) {
        size_t k = escape_byte(s[i], mode, e);

        if (used + k > room)
            break;
        memcpy(out + used, e, k);
        used += k;
        /* The last whole escape after which the marker still fits. */
        if (used + CUT_LEN <= room)
            fits_marker = used;
    }
    if (i < n) {
        size_t m = room < CUT_LEN ? room : CUT_LEN;

        used = fits_marker;
        memcpy(out + used, cut_marker, m);
        used += m;
    }
    out[used] = '\0';
    return used;
}

const char *proxy_logsafe(char *out, size_t outlen, const char *s, enum proxy_logsafe_mode mode)
{
    if (s == NULL)
        s = "-";
    proxy_logsafe_mem(out, outlen, s, strlen(s), mode);
    return out;
}
