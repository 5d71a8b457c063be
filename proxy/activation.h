/*
 * activation.h - listening sockets passed by a service manager (systemd
 * socket activation: LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES, descriptors
 * from 3 on).  Each is matched to a configured bind address; the master
 * uses it instead of binding one itself.
 */
#ifndef BATON_PROXY_ACTIVATION_H
#define BATON_PROXY_ACTIVATION_H

#include <stddef.h>
#include "port_net.h"

#include "conf.h"

#define PROXY_ACTIVATION_FIRST_FD 3

struct proxy_activated {
    int                     fd;
    struct sockaddr_storage ss;
    socklen_t               len;
    char                    name[64];   /* from LISTEN_FDNAMES, for logs */
    int                     used;
};

/* Collects the passed sockets meant for this process (and removes the
 * variables so workers do not see them).  *out is NULL when there are none. */
void proxy_activation_collect(struct proxy_activated **out, size_t *n);
/* The passed socket bound to addr, or -1. */
int  proxy_activation_take(struct proxy_activated *a, size_t n, const struct conf_addr *addr);
/* Closes (with a warning) the passed sockets no listener uses; frees. */
void proxy_activation_close_unused(struct proxy_activated **a, size_t *n);

#endif
