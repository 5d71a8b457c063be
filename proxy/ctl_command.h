/*
 * ctl_command.h - the control protocol's command line, parsed by a pure
 * function (no master needed: unit tests and fuzzers call it directly).
 *
 * A command is a whole line: exactly one of the command words, then "\n"
 * (or "\r\n").  Anything else on the line - a NUL, a space and more words,
 * a longer word, bytes that are not printable ASCII - refuses the line, and
 * nothing is run.
 */
#ifndef BATON_PROXY_CTL_COMMAND_H
#define BATON_PROXY_CTL_COMMAND_H

#include <stddef.h>

#define PROXY_CTL_LINE_MAX  256   /* longest command line, newline excluded */
#define PROXY_CTL_EXPECTED  "expected status, stop, quit or reload"

enum proxy_ctl_cmd {
    PROXY_CTL_STATUS = 0,
    PROXY_CTL_STOP,
    PROXY_CTL_QUIT,
    PROXY_CTL_RELOAD
};

enum proxy_ctl_parse {
    PROXY_CTL_PARSE_OK = 0,   /* *cmd set */
    PROXY_CTL_PARSE_MORE,     /* no newline yet, and still short enough */
    PROXY_CTL_PARSE_BAD       /* refused; why says what was wrong */
};

/* Parses the first line of buf[0..len).  at_eof: no more bytes will come,
 * so a line without its newline is refused rather than waited for.  Bytes
 * after the newline are not looked at.  `why` quotes the client's bytes
 * with anything unprintable escaped (\xNN), so it is safe to log and send. */
enum proxy_ctl_parse proxy_ctl_parse_command(const char *buf, size_t len, int at_eof,
                                             enum proxy_ctl_cmd *cmd, char *why,
                                             size_t whylen);

/* The command word name[0..len) names (exactly), or -1. */
int proxy_ctl_command_from_name(const char *name, size_t len, enum proxy_ctl_cmd *cmd);
const char *proxy_ctl_command_name(enum proxy_ctl_cmd cmd);

#endif
