/*
 * peercred.h - who is at the other end of a connected Unix socket, as the
 * kernel recorded it when the connection was made (not as the peer claims).
 * One implementation per OS: peercred_linux.c (SO_PEERCRED, SO_PEERGROUPS).
 */
#ifndef BATON_PROXY_PEERCRED_H
#define BATON_PROXY_PEERCRED_H

#include <stddef.h>
#include <sys/types.h>

#include "port_net.h"   /* uid_t, gid_t on Windows */

struct proxy_peer_cred {
    pid_t pid;
    uid_t uid;      /* effective ids of the peer when it connected */
    gid_t gid;
};

/* Returns 0 with *out filled, or -1 with why. */
int proxy_peer_cred_get(int fd, struct proxy_peer_cred *out, char *why, size_t whylen);

/* Is gid the peer's group: its effective gid or one of its supplementary
 * groups, as they were when it connected?  1 yes, 0 no, -1 with why. */
int proxy_peer_in_group(int fd, const struct proxy_peer_cred *cred, gid_t gid, char *why,
                        size_t whylen);

#endif
