/*
 * winsec_win.c - security descriptors and trust checks for baton's kernel
 * objects on Windows (winsec.h).
 */
#include "winsec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <aclapi.h>
#include <sddl.h>

const char *proxy_winsec_strerror(DWORD err, char *buf, size_t len)
{
    DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL,
                             err, 0, buf, (DWORD)len, NULL);

    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == '.'))
        buf[--n] = '\0';
    if (n == 0)
        snprintf(buf, len, "Windows error %lu", (unsigned long)err);
    return buf;
}

/* The TokenUser of token, malloc'd in buf (which the caller frees). */
static TOKEN_USER *token_user(HANDLE token, char *why, size_t whylen)
{
    DWORD need = 0;
    TOKEN_USER *tu;
    char err[160];

    (void)GetTokenInformation(token, TokenUser, NULL, 0, &need);
    if (need == 0 || (tu = malloc(need)) == NULL) {
        snprintf(why, whylen, "GetTokenInformation(TokenUser): %s",
                 proxy_winsec_strerror(GetLastError(), err, sizeof(err)));
        return NULL;
    }
    if (!GetTokenInformation(token, TokenUser, tu, need, &need)) {
        snprintf(why, whylen, "GetTokenInformation(TokenUser): %s",
                 proxy_winsec_strerror(GetLastError(), err, sizeof(err)));
        free(tu);
        return NULL;
    }
    return tu;
}

static TOKEN_USER *self_user(char *why, size_t whylen)
{
    HANDLE token;
    TOKEN_USER *tu;
    char err[160];

    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) {
        snprintf(why, whylen, "OpenProcessToken: %s",
                 proxy_winsec_strerror(GetLastError(), err, sizeof(err)));
        return NULL;
    }
    tu = token_user(token, why, whylen);
    CloseHandle(token);
    return tu;
}

PSECURITY_DESCRIPTOR proxy_winsec_private_sd(char *why, size_t whylen)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    TOKEN_USER *me = self_user(why, whylen);
    char *sid = NULL, sddl[384], err[160];

    if (me == NULL)
        return NULL;
    if (!ConvertSidToStringSidA(me->User.Sid, &sid)) {
        snprintf(why, whylen, "ConvertSidToStringSid: %s",
                 proxy_winsec_strerror(GetLastError(), err, sizeof(err)));
        free(me);
        return NULL;
    }
    /* O: this account owns it (Windows would make the token's default
     * owner the owner; Wine leaves an object without one).  P: protected,
     * nothing inherited from a parent's ACL.  GA: all access. */
    snprintf(sddl, sizeof(sddl), "O:%sD:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;%s)", sid, sid);
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorA(sddl, SDDL_REVISION_1, &sd,
                                                              NULL)) {
        snprintf(why, whylen, "security descriptor %s: %s", sddl,
                 proxy_winsec_strerror(GetLastError(), err, sizeof(err)));
        sd = NULL;
    }
    LocalFree(sid);
    free(me);
    return sd;
}

/* 1 if token's user is SYSTEM, in Administrators, or me; else 0; -1 why. */
static int token_trusted(HANDLE token, PSID user, PSID me, char *why, size_t whylen)
{
    BYTE admins[SECURITY_MAX_SID_SIZE];
    DWORD size = sizeof(admins);
    HANDLE imp;
    BOOL member = FALSE;
    char err[160];

    if (IsWellKnownSid(user, WinLocalSystemSid) || EqualSid(user, me))
        return 1;
    if (!CreateWellKnownSid(WinBuiltinAdministratorsSid, NULL, admins, &size)) {
        snprintf(why, whylen, "CreateWellKnownSid(Administrators): %s",
                 proxy_winsec_strerror(GetLastError(), err, sizeof(err)));
        return -1;
    }
    /* CheckTokenMembership wants an impersonation token. */
    if (!DuplicateToken(token, SecurityIdentification, &imp)) {
        snprintf(why, whylen, "DuplicateToken: %s",
                 proxy_winsec_strerror(GetLastError(), err, sizeof(err)));
        return -1;
    }
    if (!CheckTokenMembership(imp, admins, &member)) {
        snprintf(why, whylen, "CheckTokenMembership: %s",
                 proxy_winsec_strerror(GetLastError(), err, sizeof(err)));
        CloseHandle(imp);
        return -1;
    }
    CloseHandle(imp);
    return member ? 1 : 0;
}

int proxy_winsec_process_trusted(DWORD pid, char *who, size_t wholen, unsigned long *rid,
                                 char *why, size_t whylen)
{
    HANDLE proc, token = NULL;
    TOKEN_USER *tu = NULL, *me = NULL;
    char *sid = NULL, err[160];
    int rc = -1;

    snprintf(who, wholen, "?");
    *rid = (unsigned long)-1;
    proc = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
    if (proc == NULL) {
        snprintf(why, whylen, "OpenProcess(%lu): %s", (unsigned long)pid,
                 proxy_winsec_strerror(GetLastError(), err, sizeof(err)));
        return -1;
    }
    if (!OpenProcessToken(proc, TOKEN_QUERY | TOKEN_DUPLICATE, &token)) {
        snprintf(why, whylen, "OpenProcessToken(%lu): %s", (unsigned long)pid,
                 proxy_winsec_strerror(GetLastError(), err, sizeof(err)));
        goto out;
    }
    if ((tu = token_user(token, why, whylen)) == NULL || (me = self_user(why, whylen)) == NULL)
        goto out;
    if (ConvertSidToStringSidA(tu->User.Sid, &sid)) {
        snprintf(who, wholen, "%s", sid);
        LocalFree(sid);
    }
    if (*GetSidSubAuthorityCount(tu->User.Sid) > 0)
        *rid = *GetSidSubAuthority(tu->User.Sid, *GetSidSubAuthorityCount(tu->User.Sid) - 1u);
    rc = token_trusted(token, tu->User.Sid, me->User.Sid, why, whylen);
out:
    free(tu);
    free(me);
    if (token != NULL)
        CloseHandle(token);
    CloseHandle(proc);
    return rc;
}

int proxy_winsec_owner_trusted(PSID owner, char *why, size_t whylen)
{
    TOKEN_USER *me;
    int rc;

    if (owner == NULL || !IsValidSid(owner)) {
        snprintf(why, whylen, "no valid owner");
        return -1;
    }
    /* A member of Administrators who makes an object may make the group
     * its owner (the token's default owner), never another account. */
    if (IsWellKnownSid(owner, WinLocalSystemSid) ||
        IsWellKnownSid(owner, WinBuiltinAdministratorsSid))
        return 1;
    if ((me = self_user(why, whylen)) == NULL)
        return -1;
    rc = EqualSid(owner, me->User.Sid) ? 1 : 0;
    free(me);
    return rc;
}

int proxy_winsec_object_trusted(HANDLE h, char *why, size_t whylen)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    PSID owner = NULL;
    DWORD err;
    char text[160];
    int rc;

    err = GetSecurityInfo(h, SE_KERNEL_OBJECT, OWNER_SECURITY_INFORMATION, &owner, NULL, NULL,
                          NULL, &sd);
    if (err != ERROR_SUCCESS) {
        snprintf(why, whylen, "GetSecurityInfo(owner): %s",
                 proxy_winsec_strerror(err, text, sizeof(text)));
        return -1;
    }
    rc = proxy_winsec_owner_trusted(owner, why, whylen);
    LocalFree(sd);
    return rc;
}
