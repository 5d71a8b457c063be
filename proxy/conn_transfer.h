/*
 * conn_transfer.h - a connection leaving one generation and arriving in
 * the next (live handoff): freeze it into plain data, thaw it back if the
 * transfer fails, forget it once the next generation has it, adopt it from
 * the data on the other side.  No event loop runs here: these functions are
 * unit-tested on connections built by hand.
 */
#ifndef BATON_PROXY_CONN_TRANSFER_H
#define BATON_PROXY_CONN_TRANSFER_H

#include <stddef.h>

#include "conn_msg.h"
#include "connection.h"

struct proxy_loop;

/* 1 if c can move now: relaying, connecting, or waiting for its PROXY
 * header, ClientHello or first TLS record; with tls (the taker has
 * HANDOFF_CAP_TLS) also TLS that baton terminates or originates once on
 * baton's record layer, and an upstream TLS handshake (which starts over
 * there).  A handshake with the client in progress waits
 * (proxy_conn_handshaking); TLS kept on OpenSSL's records drains. */
int  proxy_conn_movable(const struct proxy_conn *c, int tls);
/* 1 while c's TLS handshake with the client runs: it may move once done. */
int  proxy_conn_handshaking(const struct proxy_conn *c);

/* Stops every event of c and describes it in st (whose pointers point into
 * c's buffers, valid while c is frozen).  Bytes in a splice pipe move into
 * c's buffer first: only sockets cross processes.  0, or -1 (out of
 * memory: c is left as it was). */
int  proxy_conn_freeze(struct proxy_conn *c, struct handoff_conn *st);
/* The transfer failed: c runs on here exactly as before it was frozen. */
void proxy_conn_thaw(struct proxy_conn *c);

/* Builds a connection in loop from st, resolving its listener, backend and
 * servers by name in this generation's configuration, and takes st's
 * descriptors.  Not armed (proxy_conn_resume does that).  NULL with why
 * when it cannot be taken (st's descriptors are then still the caller's). */
struct proxy_conn *proxy_conn_adopt(struct proxy_loop *loop, struct handoff_conn *st,
                                    char *why, size_t n);

#endif
