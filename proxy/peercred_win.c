/*
 * peercred_win.c - who is at the other end of the control pipe on Windows
 * (peercred.h): the client's process id as the pipe recorded it, and its
 * account (uid holds the last part of the account's SID: 18 for SYSTEM,
 * 500 for the built-in Administrator).  Windows has no numeric groups: the
 * pipe's DACL and winsec.h decide who may connect, not control_group.
 */
#include "peercred.h"

#include <stdint.h>
#include <stdio.h>

#include <winsock2.h>   /* before windows.h, which would bring the old winsock.h */
#include <windows.h>

#include "winsec.h"

int proxy_peer_cred_get(int fd, struct proxy_peer_cred *out, char *why, size_t whylen)
{
    HANDLE pipe = (HANDLE)(intptr_t)fd;
    ULONG pid = 0;
    unsigned long rid;
    char who[128], err[160];

    if (!GetNamedPipeClientProcessId(pipe, &pid)) {
        snprintf(why, whylen, "GetNamedPipeClientProcessId: %s",
                 proxy_winsec_strerror(GetLastError(), err, sizeof(err)));
        return -1;
    }
    out->pid = (pid_t)pid;
    out->gid = 0;
    /* Only the account is wanted here; whether it is trusted is the
     * endpoint's question. */
    if (proxy_winsec_process_trusted(pid, who, sizeof(who), &rid, why, whylen) < 0)
        return -1;
    out->uid = (uid_t)rid;
    return 0;
}

int proxy_peer_in_group(int fd, const struct proxy_peer_cred *cred, gid_t gid, char *why,
                        size_t whylen)
{
    (void)fd;
    (void)cred;
    snprintf(why, whylen, "Windows has no numeric groups (control_group); the control pipe's "
             "DACL admits SYSTEM, Administrators and baton's own account");
    return -1;
}
