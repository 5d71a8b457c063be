/*
 * tls_transfer.h - a TLS side in a live handoff: what conn_transfer.c
 * writes into a CONN message for it and rebuilds from one.  Only sides on
 * baton's own record layer move; a side still in its handshake, or kept on
 * OpenSSL's records (a suite the layer does not carry), drains.
 */
#ifndef BATON_PROXY_TLS_TRANSFER_H
#define BATON_PROXY_TLS_TRANSFER_H

#include <stddef.h>

#include "conn_msg.h"

struct proxy_tls;

/* 1 if t can move (it is on baton's record layer). */
int proxy_tls_movable(const struct proxy_tls *t);
/* Describes t in h, whose pointers point into t's buffers (valid while the
 * connection is frozen).  0, or -1 if t cannot move. */
int proxy_tls_freeze(const struct proxy_tls *t, struct handoff_tls *h);
/* Rebuilds a TLS side from h (keyed, buffers filled, facts set).  NULL with
 * why if h is not a valid state or memory runs out. */
struct proxy_tls *proxy_tls_adopt(const struct handoff_tls *h, char *why, size_t n);

#endif
