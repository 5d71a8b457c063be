/*
 * test_ctl_command.c - the control protocol's command line: exactly one
 * command word per line, everything else refused with a safe message.
 */
#include <stdio.h>
#include <string.h>

#include "ctl_command.h"
#include "testutil.h"

static char why[512];
static enum proxy_ctl_cmd cmd;

static enum proxy_ctl_parse parse(const char *buf, size_t len, int at_eof)
{
    why[0] = '\0';
    cmd = (enum proxy_ctl_cmd)-1;
    return proxy_ctl_parse_command(buf, len, at_eof, &cmd, why, sizeof(why));
}

#define PARSE(lit, eof) parse((lit), sizeof(lit) - 1, (eof))

/* The line is refused, and why mentions want. */
#define REFUSED(lit, eof, want) refused((lit), sizeof(lit) - 1, (eof), (want), __LINE__)

static void refused(const char *buf, size_t len, int at_eof, const char *want, int line)
{
    test_check(parse(buf, len, at_eof) == PROXY_CTL_PARSE_BAD, __FILE__, line, "refused");
    test_check_contains(why, want, __FILE__, line);
}

static void test_commands(void)
{
    static const struct { const char *line; enum proxy_ctl_cmd cmd; } ok[] = {
        { "status\n", PROXY_CTL_STATUS }, { "stop\n", PROXY_CTL_STOP },
        { "quit\n", PROXY_CTL_QUIT },     { "reload\n", PROXY_CTL_RELOAD },
        { "status\r\n", PROXY_CTL_STATUS },
        /* bytes after the line are the next command's, never looked at */
        { "stop\nstatus\n", PROXY_CTL_STOP }, { "quit\n\xff\x00", PROXY_CTL_QUIT },
    };

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        size_t len = strlen(ok[i].line) + (strchr(ok[i].line, '\xff') != NULL);

        CHECK(parse(ok[i].line, len, 0) == PROXY_CTL_PARSE_OK);
        CHECK(cmd == ok[i].cmd);
        CHECK(parse(ok[i].line, len, 1) == PROXY_CTL_PARSE_OK);
    }
    CHECK_STR(proxy_ctl_command_name(PROXY_CTL_RELOAD), "reload");
    CHECK(proxy_ctl_command_from_name("quit", 4, &cmd) == 0 && cmd == PROXY_CTL_QUIT);
    CHECK(proxy_ctl_command_from_name("quit", 3, &cmd) == -1);
    CHECK(proxy_ctl_command_from_name("quits", 5, &cmd) == -1);
    CHECK(proxy_ctl_command_from_name("", 0, &cmd) == -1);
}

static void test_partial(void)
{
    CHECK(PARSE("", 0) == PROXY_CTL_PARSE_MORE);
    CHECK(PARSE("stat", 0) == PROXY_CTL_PARSE_MORE);
    CHECK(PARSE("status", 0) == PROXY_CTL_PARSE_MORE);
    CHECK(PARSE("status\r", 0) == PROXY_CTL_PARSE_MORE);
    /* no more bytes will come: a line without its newline is refused */
    REFUSED("status", 1, "command line not terminated by a newline");
    REFUSED("", 1, "no command before the end of input");
}

static void test_refused(void)
{
    REFUSED("status\0junk\n", 0, "command line 'status\\x00junk' contains a NUL byte at "
            "offset 6 (a command is the whole line; expected status, stop, quit or reload)");
    REFUSED("stop\0\n", 0, "NUL byte at offset 4");
    REFUSED("status junk\n", 0, "unknown command 'status junk' (a command is the whole line; "
            "expected status, stop, quit or reload)");
    REFUSED("statusx\n", 0, "unknown command 'statusx'");
    REFUSED(" status\n", 0, "unknown command ' status'");
    REFUSED("status \n", 0, "unknown command 'status '");
    REFUSED("STATUS\n", 0, "unknown command 'STATUS'");
    REFUSED("status\r\r\n", 0, "byte 0x0d at offset 6");
    REFUSED("\n", 0, "empty command line");
    REFUSED("\r\n", 0, "empty command line");
    /* not UTF-8, and not ASCII either */
    REFUSED("st\xff\xfetus\n", 0, "command line 'st\\xff\\xfetus' contains byte 0xff at "
            "offset 2 (a command is plain ASCII; expected status, stop, quit or reload)");
    REFUSED("r\xc3\xa9load\n", 0, "byte 0xc3 at offset 1");
    /* quotes and backslashes in the quoted bytes cannot end the quote */
    REFUSED("a'b\\c\n", 0, "'a\\x27b\\x5cc'");
}

static void test_lengths(void)
{
    char buf[PROXY_CTL_LINE_MAX + 8];

    memset(buf, 'x', sizeof(buf));
    /* a line of exactly the limit is judged (unknown), one byte more is too long */
    buf[PROXY_CTL_LINE_MAX] = '\n';
    refused(buf, PROXY_CTL_LINE_MAX + 1, 0, "unknown command 'xxxx", __LINE__);
    CHECK(strlen(why) < 200);   /* the quote is cut short */
    CHECK_WHY(why, "...'");
    buf[PROXY_CTL_LINE_MAX] = '\r';
    buf[PROXY_CTL_LINE_MAX + 1] = '\n';
    refused(buf, PROXY_CTL_LINE_MAX + 2, 0, "unknown command", __LINE__);
    memset(buf, 'x', sizeof(buf));
    buf[PROXY_CTL_LINE_MAX + 1] = '\n';
    refused(buf, PROXY_CTL_LINE_MAX + 2, 0, "command line too long (more than 256 bytes "
            "before a newline)", __LINE__);
    /* no newline yet: waits up to the limit (and a CR), then refuses */
    CHECK(parse(buf, PROXY_CTL_LINE_MAX + 1, 0) == PROXY_CTL_PARSE_MORE);
    refused(buf, PROXY_CTL_LINE_MAX + 2, 0, "too long", __LINE__);
    refused(buf, sizeof(buf), 1, "too long", __LINE__);
}

/* Whatever the bytes, the answer is one of the three, and a refusal says
 * why in printable ASCII only. */
static void test_random(void)
{
    char buf[300];

    test_seed(7);
    for (int round = 0; round < 20000; round++) {
        size_t len = test_rand() % sizeof(buf);
        enum proxy_ctl_parse r;

        for (size_t i = 0; i < len; i++)
            buf[i] = (char)(round % 3 == 0 ? "stopquitreload\n\r\0 x"[test_rand() % 20]
                                           : (char)test_rand());
        r = parse(buf, len, (int)(test_rand() & 1));
        CHECK(r == PROXY_CTL_PARSE_OK || r == PROXY_CTL_PARSE_MORE || r == PROXY_CTL_PARSE_BAD);
        if (r == PROXY_CTL_PARSE_BAD) {
            int clean = why[0] != '\0';

            for (const char *p = why; *p != '\0'; p++)
                clean &= *p >= 0x20 && *p < 0x7f;
            CHECK(clean);
        }
        if (r == PROXY_CTL_PARSE_OK)
            CHECK(cmd <= PROXY_CTL_RELOAD);
    }
}

int main(void)
{
    test_commands();
    test_partial();
    test_refused();
    test_lengths();
    test_random();
    return test_summary("test_ctl_command");
}
