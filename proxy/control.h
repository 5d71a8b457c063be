/*
 * control.h - the master's control socket (AF_UNIX stream, mode 0600, or
 * 0660 owned by `control_group`).
 *
 * Protocol: the client sends one command line ("status", "stop", "quit",
 * "reload"); the master answers "OK\n" followed by the reply text, or
 * "ERR message\n" (possibly several lines), then closes.
 *
 * Both ends check who is at the other end (peer credentials): the master
 * serves root, its own user and members of `control_group`; `baton -s`
 * talks only to a master run by root or by its own user.
 */
#ifndef BATON_PROXY_CONTROL_H
#define BATON_PROXY_CONTROL_H

#include <stddef.h>

#include "conf.h"
#include "peercred.h"

#define PROXY_CONTROL_TIMEOUT_MS 60000

/* Binds and listens at g->control.  A stale socket file (nobody listens
 * there) is replaced; a live one (another master), or anything that is not
 * a socket, is an error.  Returns the fd or -1 with why. */
int proxy_control_listen(const struct conf_global *g, char *why, size_t whylen);

/* Gives the bound socket file the mode and group g asks for (0600, or 0660
 * with control_group).  Returns 0 or -1 with why. */
int proxy_control_set_access(const struct conf_global *g, char *why, size_t whylen);

/* May the client connected on fd control the master?  Fills *cred; returns
 * 1 yes, 0 no (why is the one-line refusal), -1 if it cannot be told. */
int proxy_control_peer_allowed(int fd, const struct conf_global *g,
                               struct proxy_peer_cred *cred, char *why, size_t whylen);

/* What `-t` and start-up say about c's control path: an error (FILE:LINE
 * lines in err, returns -1) if something other than a socket is there, a
 * warning (in warn, "" if none) if its directory is writable by everyone. */
int proxy_control_check_path(const struct conf *c, char *err, size_t errlen, char *warn,
                             size_t warnlen);

/* Client side of `baton -s CMD`: prints the reply (stdout for OK, stderr
 * for ERR) and returns the process exit status (0 or 1). */
int proxy_control_request(const char *path, const char *cmd, int timeout_ms);

#endif
