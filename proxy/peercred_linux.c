/*
 * peercred_linux.c - peer credentials of a Unix socket on Linux.
 *
 * Supplementary groups come from SO_PEERGROUPS (Linux 4.13), like
 * SO_PEERCRED a snapshot the kernel took at connect(): no race with the
 * peer exiting and its pid being reused (as reading /proc/PID/status would
 * have), and no user-database lookup in the master's event loop (as
 * getgrouplist would need, which would also answer with the groups the
 * database gives the user rather than those the process really holds).
 */
#include "peercred.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define GROUPS_GUESS 64

int proxy_peer_cred_get(int fd, struct proxy_peer_cred *out, char *why, size_t whylen)
{
    struct ucred uc;
    socklen_t len = sizeof(uc);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0) {
        snprintf(why, whylen, "getsockopt(SO_PEERCRED): %s", strerror(errno));
        return -1;
    }
    if (len != sizeof(uc)) {
        snprintf(why, whylen, "getsockopt(SO_PEERCRED): short answer (%u bytes)",
                 (unsigned)len);
        return -1;
    }
    out->pid = uc.pid;
    out->uid = uc.uid;
    out->gid = uc.gid;
    return 0;
}

static int in_list(const gid_t *groups, size_t n, gid_t gid)
{
    for (size_t i = 0; i < n; i++)
        if (groups[i] == gid)
            return 1;
    return 0;
}

int proxy_peer_in_group(int fd, const struct proxy_peer_cred *cred, gid_t gid, char *why,
                        size_t whylen)
{
    gid_t small[GROUPS_GUESS], *groups = small;
    socklen_t len = sizeof(small);
    int found;

    if (cred->gid == gid)
        return 1;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) != 0) {
        if (errno != ERANGE) {
            snprintf(why, whylen, "getsockopt(SO_PEERGROUPS): %s", strerror(errno));
            return -1;
        }
        /* len now says how much the whole list needs. */
        groups = malloc(len);
        if (groups == NULL) {
            snprintf(why, whylen, "out of memory for %u bytes of peer groups", (unsigned)len);
            return -1;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) != 0) {
            snprintf(why, whylen, "getsockopt(SO_PEERGROUPS): %s", strerror(errno));
            free(groups);
            return -1;
        }
    }
    found = in_list(groups, len / sizeof(gid_t), gid);
    if (groups != small)
        free(groups);
    return found;
}
