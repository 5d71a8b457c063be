/*
 * control.h - the master's control channel.
 *
 * Protocol: the client sends one command line ("status", "stop", "quit",
 * "reload"); the master answers "OK\n" followed by the reply text, or
 * "ERR message\n" (possibly several lines), then closes.
 *
 * Both ends check who is at the other end: the master serves root (on
 * Windows SYSTEM and administrators), its own user and (Unix) members of
 * `control_group`; `baton -s` talks only to a master run by one of those
 * or by its own user.  Where the channel lives and how those checks are
 * made is the endpoint's (control_endpoint.h: an AF_UNIX socket, or a
 * named pipe on Windows).
 */
#ifndef BATON_PROXY_CONTROL_H
#define BATON_PROXY_CONTROL_H

#include "control_endpoint.h"

#define PROXY_CONTROL_TIMEOUT_MS 60000

/* Client side of `baton -s CMD`, to the endpoint called name
 * (proxy_control_endpoint_name): prints the reply (stdout for OK, stderr
 * for ERR) and returns the process exit status (0 or 1). */
int proxy_control_request(const char *name, const char *cmd, int timeout_ms);

#endif
