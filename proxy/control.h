/*
 * control.h - the master's control socket (AF_UNIX stream, mode 0600).
 *
 * Protocol: the client sends one command line ("status", "stop", "quit",
 * "reload"); the master answers "OK\n" followed by the reply text, or
 * "ERR message\n" (possibly several lines), then closes.
 */
#ifndef BATON_PROXY_CONTROL_H
#define BATON_PROXY_CONTROL_H

#include <stddef.h>

#define PROXY_CONTROL_TIMEOUT_MS 60000

/* Binds and listens at path; a stale socket file is replaced, a live one
 * (another master answers) is an error.  Returns the fd or -1 with why. */
int proxy_control_listen(const char *path, char *why, size_t whylen);

/* Client side of `baton -s CMD`: prints the reply (stdout for OK, stderr
 * for ERR) and returns the process exit status (0 or 1). */
int proxy_control_request(const char *path, const char *cmd, int timeout_ms);

#endif
