/*
 * connection_int.h - what the three files of a connection's life share:
 * connection.c (start, close, timers, event callbacks), connection_front.c
 * (the client's phases: PROXY header, ClientHello, TLS handshake) and
 * connection_server.c (connecting, retries, the server's TLS handshake and
 * PROXY header, the start of the relay).  Internal to those files: the
 * names are the ones they had as static functions of connection.c.
 */
#ifndef BATON_PROXY_CONNECTION_INT_H
#define BATON_PROXY_CONNECTION_INT_H

#include <stddef.h>
#include <stdint.h>

#include <event2/util.h>

#include "connection.h"
#include "log.h"

/* connection.c: shared helpers, and the server socket's callbacks */
void timer_arm(struct proxy_conn *c, uint64_t ms);
const char *conn_client(const struct proxy_conn *c, char *buf, size_t n);
int tls_receive(struct proxy_conn *c, struct proxy_side *s, char *why, size_t n);
int side_flush(struct proxy_side *s);
void upstream_read_cb(evutil_socket_t fd, short what, void *arg);
void upstream_write_cb(evutil_socket_t fd, short what, void *arg);

/* connection_front.c */
void prefix_drop(struct proxy_conn *c, size_t n);
void conn_reject(struct proxy_conn *c, enum proxy_end why, enum proxy_log_kind kind,
                 const char *what, const char *reason);
void read_proxy_header(struct proxy_conn *c);
/* The PROXY header or ClientHello in c->prefix so far (read here, or by the
 * previous generation of an adopted connection). */
void parse_proxy_header(struct proxy_conn *c);
void parse_client_hello(struct proxy_conn *c);
void hello_reader_free(struct proxy_conn *c);
void read_client_hello(struct proxy_conn *c);
void handshake_failed(struct proxy_conn *c, const char *reason);
void client_handshake(struct proxy_conn *c);
void conn_begin(struct proxy_conn *c);

/* connection_server.c */
void upstream_discard(struct proxy_conn *c);
void connect_failed(struct proxy_conn *c, const char *reason);
void upstream_handshake(struct proxy_conn *c);
void conn_established(struct proxy_conn *c);
void conn_relay_start(struct proxy_conn *c);
void conn_connect_next(struct proxy_conn *c);

#endif
