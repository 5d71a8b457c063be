#include "ctl_command.h"

#include <stdio.h>
#include <string.h>

#define QUOTE_MAX 40    /* client bytes quoted in a message */

static const char *const names[] = { "status", "stop", "quit", "reload" };

#define NNAMES (sizeof(names) / sizeof(names[0]))

const char *proxy_ctl_command_name(enum proxy_ctl_cmd cmd)
{
    return (size_t)cmd < NNAMES ? names[cmd] : "?";
}

int proxy_ctl_command_from_name(const char *name, size_t len, enum proxy_ctl_cmd *cmd)
{
    for (size_t i = 0; i < NNAMES; i++)
        if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0) {
            *cmd = (enum proxy_ctl_cmd)i;
            return 0;
        }
    return -1;
}

static int printable(unsigned char ch)
{
    return ch >= 0x20 && ch < 0x7f;
}

/* The first QUOTE_MAX bytes of s[0..n), unprintable ones as \xNN. */
static void quote(const char *s, size_t n, char *out, size_t outlen)
{
    size_t used = 0;

    for (size_t i = 0; i < n && i < QUOTE_MAX && used + 5 < outlen; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (printable(ch) && ch != '\\' && ch != '\'')
            out[used++] = (char)ch;
        else
            used += (size_t)snprintf(out + used, outlen - used, "\\x%02x", ch);
    }
    if (n > QUOTE_MAX && used + 4 < outlen) {
        memcpy(out + used, "...", 3);
        used += 3;
    }
    out[used < outlen ? used : outlen - 1] = '\0';
}

/* Why line[0..n) (the newline cut off) is not a command. */
static enum proxy_ctl_parse refuse_line(const char *line, size_t n, char *why, size_t whylen)
{
    char q[QUOTE_MAX * 4 + 8];

    quote(line, n, q, sizeof(q));
    if (n == 0)
        snprintf(why, whylen, "empty command line (" PROXY_CTL_EXPECTED ")");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)line[i];

        if (ch == '\0') {
            snprintf(why, whylen, "command line '%s' contains a NUL byte at offset %zu "
                     "(a command is the whole line; " PROXY_CTL_EXPECTED ")", q, i);
            return PROXY_CTL_PARSE_BAD;
        }
        if (!printable(ch)) {
            snprintf(why, whylen, "command line '%s' contains byte 0x%02x at offset %zu "
                     "(a command is plain ASCII; " PROXY_CTL_EXPECTED ")", q, ch, i);
            return PROXY_CTL_PARSE_BAD;
        }
    }
    if (n > 0)
        snprintf(why, whylen, "unknown command '%s' (a command is the whole line; "
                 PROXY_CTL_EXPECTED ")", q);
    return PROXY_CTL_PARSE_BAD;
}

enum proxy_ctl_parse proxy_ctl_parse_command(const char *buf, size_t len, int at_eof,
                                             enum proxy_ctl_cmd *cmd, char *why,
                                             size_t whylen)
{
    size_t scan = len < PROXY_CTL_LINE_MAX + 2 ? len : PROXY_CTL_LINE_MAX + 2;
    const char *nl = memchr(buf, '\n', scan);
    size_t n;

    if (nl == NULL) {
        if (len > PROXY_CTL_LINE_MAX + 1) {
            snprintf(why, whylen, "command line too long (more than %d bytes before a "
                     "newline)", PROXY_CTL_LINE_MAX);
            return PROXY_CTL_PARSE_BAD;
        }
        if (!at_eof)
            return PROXY_CTL_PARSE_MORE;
        if (len == 0) {
            snprintf(why, whylen, "no command before the end of input");
            return PROXY_CTL_PARSE_BAD;
        }
        snprintf(why, whylen, "command line not terminated by a newline");
        return PROXY_CTL_PARSE_BAD;
    }
    n = (size_t)(nl - buf);
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    if (n > PROXY_CTL_LINE_MAX) {
        snprintf(why, whylen, "command line too long (more than %d bytes before a newline)",
                 PROXY_CTL_LINE_MAX);
        return PROXY_CTL_PARSE_BAD;
    }
    if (proxy_ctl_command_from_name(buf, n, cmd) == 0)
        return PROXY_CTL_PARSE_OK;
    return refuse_line(buf, n, why, whylen);
}
