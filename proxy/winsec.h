/*
 * winsec.h - Windows only: who may touch baton's kernel objects (the
 * control pipe, a worker's stop events) and whom baton trusts at the other
 * end of its control pipe.  The Windows counterpart of "root and baton's
 * own user": SYSTEM, the Administrators group and the account this
 * process runs as (for a service, its service account).
 */
#ifndef BATON_PROXY_WINSEC_H
#define BATON_PROXY_WINSEC_H

#include <stddef.h>

#include <winsock2.h>   /* before windows.h, which would bring the old winsock.h */
#include <windows.h>

/* A security descriptor owned by this process's user, whose DACL grants
 * full access to SYSTEM, Administrators and that user, and to nobody else
 * (protected: nothing inherited).  Free with LocalFree.  NULL with why. */
PSECURITY_DESCRIPTOR proxy_winsec_private_sd(char *why, size_t whylen);

/* Is the user of process pid one baton trusts (SYSTEM, a member of
 * Administrators, or this process's user)?  Fills who with its SID
 * ("S-1-5-18") and *rid with the SID's last part.  1 yes, 0 no, -1 with
 * why. */
int proxy_winsec_process_trusted(DWORD pid, char *who, size_t wholen, unsigned long *rid,
                                 char *why, size_t whylen);

/* Is owner (an object's owner SID) one baton trusts: SYSTEM, the
 * Administrators group or this process's user?  1 yes, 0 no, -1 with why. */
int proxy_winsec_owner_trusted(PSID owner, char *why, size_t whylen);
/* The same for the owner of the kernel object h (an event made before this
 * process opened it: a worker's stop events, which its master may make
 * first). */
int proxy_winsec_object_trusted(HANDLE h, char *why, size_t whylen);

/* FormatMessage's text for a Win32 error, trimmed, into buf. */
const char *proxy_winsec_strerror(DWORD err, char *buf, size_t len);

#endif
