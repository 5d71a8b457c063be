/*
 * logsafe.h - values from outside (SNI, ALPN, PROXY header fields, client
 * certificate subjects, strings other processes send, configuration values
 * echoed in errors) made fit for a log line or the `status` output: only
 * printable ASCII, nothing that could end a line or drive a terminal, and
 * a bounded length.
 *
 * Every byte outside 0x21..0x7e becomes \xHH (lower-case hex), so a
 * newline, CR, NUL, DEL, an escape sequence, a C1 control or a broken
 * UTF-8 sequence all show as what they were.  A backslash becomes \\ and a
 * double quote \" so the escaped form reads back without ambiguity.  What
 * does not fit in the output ends with "..." (never inside an escape).
 */
#ifndef BATON_PROXY_LOGSAFE_H
#define BATON_PROXY_LOGSAFE_H

#include <stddef.h>

/* Room for one escaped value in a log line: longer values are cut. */
#define PROXY_LOGSAFE_BUF 256

enum proxy_logsafe_mode {
    PROXY_LOGSAFE_TEXT = 0,   /* prose (a reason): spaces are kept */
    PROXY_LOGSAFE_FIELD,      /* a key=value field: a space is \x20 too */
    PROXY_LOGSAFE_LINES,      /* several lines (configuration errors): '\n' is kept */
    PROXY_LOGSAFE_FILTER,     /* a finished line, the last resort: only bytes outside
                                 0x20..0x7e are escaped, so escaped values stay as they are */
    PROXY_LOGSAFE_TERMINAL    /* lines for a person at a terminal (baton's own stderr):
                                 as LINES, but '\\' and '"' are kept, so that a Windows
                                 path reads as written */
};

/* Escapes n bytes at p into out (outlen > 0 bytes, NUL-terminated);
 * returns the length written. */
size_t proxy_logsafe_mem(char *out, size_t outlen, const void *p, size_t n,
                         enum proxy_logsafe_mode mode);
/* The same for a C string (NULL gives "-"); returns out, for printf args. */
const char *proxy_logsafe(char *out, size_t outlen, const char *s, enum proxy_logsafe_mode mode);

#endif
