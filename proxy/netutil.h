/*
 * netutil.h - small socket and clock helpers shared by master and worker.
 */
#ifndef BATON_PROXY_NETUTIL_H
#define BATON_PROXY_NETUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "clock.h"   /* most users of these helpers also read the clock */
#include "conf.h"

int      proxy_set_nonblock(int fd);
int      proxy_set_cloexec(int fd, int on);
/* Creates, binds and listens; returns the fd or -1 with `why` set. */
int      proxy_listen(const struct conf_addr *addr, unsigned backlog, char *why, size_t n);
/* The address a socket is actually bound to (resolves port 0). */
void     proxy_sockname(int fd, char *buf, size_t n);
int      proxy_dup_cloexec(int fd);
/* A NUL-terminated copy of n bytes that need not be terminated themselves
 * (strndup would look for a NUL past them). */
char    *proxy_memdup_str(const void *p, size_t n);

#endif
