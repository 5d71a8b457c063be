/*
 * port.h - the few OS services that the portable libraries (conf/, handoff/'s
 * wire format, the protocol parsers, the TLS record layer) need.  One
 * implementation per OS, chosen by CMake: port_posix.c, port_win.c.
 * The OS's own headers for socket addresses, C library extras and one-time
 * initialisation come from port_net.h, port_libc.h and port_once.h, one
 * copy of each per OS under posix/ and win/ (CMake puts the right folder on
 * the include path).
 */
#ifndef BATON_PORT_H
#define BATON_PORT_H

#include <stddef.h>

#include "port_libc.h"
#include "port_net.h"

/* Processors online, at least 1. */
unsigned port_cpu_count(void);

/* Opens a file to read its bytes as they are (no text-mode translation),
 * not inherited by child processes.  A descriptor, or -1 with errno. */
int port_open_read(const char *path);

/* Looks up a group by name: 0 and *gid when found, 1 when no such group,
 * -1 when the lookup failed (*err says why). */
int port_group_id(const char *name, gid_t *gid, const char **err);

/* The absolute, normalised form of path (an existing file's, on POSIX
 * with links resolved) in buf.  0, or -1 with errno. */
int port_abspath(const char *path, char *buf, size_t len);

/* The process that started this one (a worker's master); 0 if unknown. */
pid_t port_parent_pid(void);

#endif
