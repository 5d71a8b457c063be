/*
 * fuzz_ctl_command.c - the control socket's command line parser
 * (proxy/ctl_command.c), driven as the master drives it: called again with
 * everything received so far each time more bytes arrive, and once more at
 * end of input.
 *
 * Properties: a line is run only if it is exactly one command word (then
 * "\n" or "\r\n"); once a prefix is decided (run or refused) every longer
 * one is decided the same way; the parser waits for more only while there
 * is no newline and the line is still short enough; at end of input it
 * never waits; a refusal says why in printable ASCII (it is sent to the
 * client and logged).
 */
#include <stdlib.h>
#include <string.h>

#include "ctl_command.h"
#include "fuzz.h"

static void check_why(const char *why)
{
    FUZZ_ASSERT(why[0] != '\0');
    for (const char *p = why; *p != '\0'; p++)
        FUZZ_ASSERT(*p >= 0x20 && *p < 0x7f);
}

/* The command the first line names exactly, or -1. */
static int line_command(const char *buf, size_t len, enum proxy_ctl_cmd *cmd)
{
    const char *nl = memchr(buf, '\n', len);
    size_t n;

    if (nl == NULL)
        return -1;
    n = (size_t)(nl - buf);
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    return proxy_ctl_command_from_name(buf, n, cmd);
}

static enum proxy_ctl_parse parse(const uint8_t *data, size_t len, int at_eof,
                                  enum proxy_ctl_cmd *cmd)
{
    /* Each prefix from its own exactly sized buffer, so ASan sees overreads. */
    char *buf = (char *)fuzz_dup(data, len), why[512];
    enum proxy_ctl_parse r;

    why[0] = '\0';
    r = proxy_ctl_parse_command(buf, len, at_eof, cmd, why, sizeof(why));
    FUZZ_ASSERT(r == PROXY_CTL_PARSE_OK || r == PROXY_CTL_PARSE_MORE ||
                r == PROXY_CTL_PARSE_BAD);
    if (r == PROXY_CTL_PARSE_BAD)
        check_why(why);
    if (r == PROXY_CTL_PARSE_MORE) {
        FUZZ_ASSERT(!at_eof);
        FUZZ_ASSERT(memchr(buf, '\n', len) == NULL && len <= PROXY_CTL_LINE_MAX + 1);
    }
    if (r == PROXY_CTL_PARSE_OK) {
        enum proxy_ctl_cmd named;

        FUZZ_ASSERT(line_command(buf, len, &named) == 0 && named == *cmd);
    }
    free(buf);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum proxy_ctl_parse first = PROXY_CTL_PARSE_MORE, r;
    enum proxy_ctl_cmd cmd, first_cmd = PROXY_CTL_STATUS;
    enum proxy_ctl_cmd named;
    size_t len;

    if (size > PROXY_CTL_LINE_MAX * 3)
        size = PROXY_CTL_LINE_MAX * 3;
    for (len = 0; len <= size; len++) {
        r = parse(data, len, 0, &cmd);
        if (first == PROXY_CTL_PARSE_MORE) {
            first = r;
            first_cmd = cmd;
        } else {
            FUZZ_ASSERT(r == first);
            FUZZ_ASSERT(r != PROXY_CTL_PARSE_OK || cmd == first_cmd);
        }
    }
    r = parse(data, size, 1, &cmd);
    FUZZ_ASSERT(first == PROXY_CTL_PARSE_MORE || r == first);
    /* A whole line that is exactly a command word always runs. */
    if (line_command((const char *)data, size, &named) == 0) {
        const char *nl = memchr(data, '\n', size);
        size_t n = (size_t)(nl - (const char *)data);

        if (n <= PROXY_CTL_LINE_MAX)
            FUZZ_ASSERT(r == PROXY_CTL_PARSE_OK && cmd == named);
    }
    return 0;
}
