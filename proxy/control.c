/*
 * control.c - the client side of the control protocol (`baton -s CMD`):
 * one command line out, the master's whole answer back, printed.  How the
 * bytes travel is the endpoint's (control_endpoint.h).
 */
#include "control.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_endpoint.h"

int proxy_control_request(const char *name, const char *cmd, int timeout_ms)
{
    char why[1024], line[256], *reply, *body;
    size_t len;
    int ok, cmdlen;

    cmdlen = snprintf(line, sizeof(line), "%s\n", cmd);
    if (cmdlen < 0 || (size_t)cmdlen >= sizeof(line)) {
        fprintf(stderr, "baton: command '%.40s...' too long\n", cmd);
        return 1;
    }
    if (proxy_control_endpoint_exchange(name, line, (size_t)cmdlen, timeout_ms, &reply, &len,
                                        why, sizeof(why)) != 0) {
        fprintf(stderr, "baton: %s\n", why);
        return 1;
    }
    if (reply == NULL || len == 0) {
        fprintf(stderr, "baton: the master closed the control connection without an answer\n");
        free(reply);
        return 1;
    }
    ok = strncmp(reply, "OK\n", 3) == 0;
    if (!ok && strncmp(reply, "ERR ", 4) != 0) {
        fprintf(stderr, "baton: unexpected answer from the master: %.80s\n", reply);
        free(reply);
        return 1;
    }
    body = reply + (ok ? 3 : 4);
    fputs(body, ok ? stdout : stderr);
    free(reply);
    return ok ? 0 : 1;
}
