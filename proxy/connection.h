/*
 * connection.h - one proxied client connection: a plain struct with an
 * explicit state, two sockets and one pipe per direction.  Everything here
 * is plain data so a later generation can receive it (live handoff).
 */
#ifndef BATON_PROXY_CONNECTION_H
#define BATON_PROXY_CONNECTION_H

#include <stdint.h>
#include "port_net.h"

#include <event2/event.h>
#include <event2/event_struct.h>

#define PROXY_MAX_ATTEMPTS 17   /* first try + retries (<= 16) */

enum proxy_conn_state {
    PROXY_CONN_PROXY_HEADER = 0, /* accept_proxy: reading the client's PROXY header */
    PROXY_CONN_CLIENT_HELLO,     /* tls = passthrough: reading the ClientHello to route */
    PROXY_CONN_HANDSHAKE,        /* tls = on: TLS handshake with the client */
    PROXY_CONN_CONNECTING,       /* connecting to a server */
    PROXY_CONN_UPSTREAM_HANDSHAKE, /* backend tls = on: TLS handshake with the server */
    PROXY_CONN_RELAYING,         /* bytes flow both ways until both are shut */
    PROXY_CONN_CLOSED
};

enum proxy_end {
    PROXY_END_NONE = 0,
    PROXY_END_CLIENT_CLOSE,
    PROXY_END_SERVER_CLOSE,
    PROXY_END_IDLE_TIMEOUT,
    PROXY_END_CONNECT_FAILED,
    PROXY_END_DRAIN_TIMEOUT,
    PROXY_END_SHUTDOWN,
    PROXY_END_ERROR,
    PROXY_END_HANDSHAKE_FAILED,  /* TLS handshake with the client failed or timed out */
    PROXY_END_BAD_REQUEST        /* bad PROXY header or ClientHello */
};

struct proxy_tls;
struct proxy_hello_reader;
struct proxy_link;
struct proxy_xprt;

struct proxy_side {
    int          fd;
    const struct proxy_xprt *xprt; /* how the stream crosses fd (xprt.h) */
    struct proxy_tls *tls;     /* the TLS transport's state, else NULL */
    struct event rev;          /* readable */
    struct event wev;          /* writable (or connected) */
    unsigned     reading:1;    /* rev added */
    unsigned     writing:1;    /* wev added */
    unsigned     fin_seen:1;   /* the poller saw the peer's FIN (EPOLLRDHUP) */
};

/*
 * One direction: bytes read from `src` that `dst` has not taken yet.  They
 * sit either in `buf` (copy mode) or in a kernel pipe (splice mode, Linux:
 * a direction that fills whole buffers is moved socket -> pipe -> socket
 * without copying through user space).
 */
struct proxy_pipe {
    char        *buf;          /* allocated only while bytes are pending */
    uint32_t     off, len;     /* pending bytes are buf[off..len) */
    uint64_t     bytes;        /* relayed so far */
    int          pfd[2];       /* splice pipe, -1 when in copy mode */
    uint32_t     inpipe;       /* bytes in the splice pipe */
    unsigned     eof:1;        /* src sent FIN */
    unsigned     shut:1;       /* FIN passed on to dst */
    unsigned     bulk:1;       /* a read filled the whole buffer */
};

struct proxy_loop;
struct proxy_listener;
struct proxy_server;
struct proxy_backend;

struct proxy_conn {
    struct proxy_conn       *prev, *next;
    struct proxy_loop       *loop;
    struct proxy_listener   *listener;
    struct proxy_backend    *backend;    /* chosen by the listener's routes */
    struct proxy_server     *server;     /* current or last attempted */
    enum proxy_conn_state    state;
    enum proxy_end           end;

    struct proxy_side        client, upstream;
    struct proxy_pipe        up;         /* client -> server */
    struct proxy_pipe        down;       /* server -> client */
    struct event             timer;      /* connect timeout, then idle timeout */

    uint64_t                 start_ms, last_ms;
    struct sockaddr_storage  peer;
    socklen_t                peerlen;
    struct proxy_server     *tried[PROXY_MAX_ATTEMPTS];
    unsigned                 ntried;
    int                      connected;  /* counted in server->active */

    uint8_t                 *prefix;     /* client bytes read before relaying */
    uint32_t                 prefixlen, prefixcap;
    struct proxy_hello_reader *hello;    /* CLIENT_HELLO: how far prefix was parsed */
    char                    *sni;        /* from the ClientHello or handshake */
    char                    *alpn;
    struct sockaddr_storage  local;      /* the client's destination (PROXY headers) */
    socklen_t                locallen;

    uint64_t                 deadline_ms; /* when the timer fires (CLOCK_MONOTONIC) */
    uint32_t                 idle_timeout_ms; /* the listener's, kept: it may outlive it */
    uint32_t                 handoffs;   /* generations it moved through before this one */
    uint32_t                 xfer_id;    /* live handoff: its id on the link */
    uint8_t                  xfer;       /* enum proxy_xfer */
    struct proxy_link       *xfer_link;  /* ADOPTED: the link it came by */
    struct proxy_conn_orphan *orphan;    /* adopted: names this configuration lacks */
};

/* Live handoff (conn_transfer.c): where a connection is in a transfer. */
enum proxy_xfer {
    PROXY_XFER_NONE = 0,
    PROXY_XFER_FROZEN,     /* sent to the next generation, waiting for its answer */
    PROXY_XFER_STAYS,      /* cannot move (TLS) or was refused: drains here */
    PROXY_XFER_ADOPTED     /* taken from the previous generation, not armed yet */
};

/* What an adopted connection's listener, backend or server were called in
 * the generation it came from, when this configuration no longer has them
 * (it keeps running, counted as an orphan, and logs these names). */
struct proxy_conn_orphan {
    char listener[64], backend[64], server[64];
};

/* Takes ownership of cfd (already counted against the listener limits). */
void proxy_conn_start(struct proxy_loop *loop, struct proxy_listener *l, int cfd,
                      const struct sockaddr_storage *peer, socklen_t peerlen);
/* Puts a new or adopted connection on its loop's list (counted there). */
void proxy_conn_link(struct proxy_loop *loop, struct proxy_conn *c);
/* Sets the libevent events of c's sockets and timer up (not armed). */
void proxy_conn_bind_events(struct proxy_conn *c);
/* The events c's state and buffers call for (PROXY_WANT_*); only for the
 * states a live handoff moves. */
#define PROXY_WANT_CLIENT_READ  0x1u
#define PROXY_WANT_CLIENT_WRITE 0x2u
#define PROXY_WANT_SERVER_READ  0x4u
#define PROXY_WANT_SERVER_WRITE 0x8u
unsigned proxy_conn_wanted(const struct proxy_conn *c);
unsigned proxy_conn_armed(const struct proxy_conn *c);   /* what is added now */
/* Arms exactly what proxy_conn_wanted says, and the timer at deadline_ms
 * (or the idle timeout from last_ms), then goes on with a setup phase from
 * the bytes already read (an adopted PROXY header or ClientHello). */
void proxy_conn_resume(struct proxy_conn *c);
/* Deletes every event of c (frozen: nothing may touch its sockets now). */
void proxy_conn_disarm(struct proxy_conn *c);
/* Frees c without a log line or a shutdown: another generation has its
 * sockets now; only this process's descriptors are closed. */
void proxy_conn_forget(struct proxy_conn *c);
const char *proxy_conn_listener_name(const struct proxy_conn *c);
const char *proxy_conn_backend_name(const struct proxy_conn *c);
const char *proxy_conn_server_name(const struct proxy_conn *c);
/* Ends a connection now with the given reason (drain timeout, shutdown). */
void proxy_conn_close(struct proxy_conn *c, enum proxy_end why);
const char *proxy_end_name(enum proxy_end e);

/* relay.c: arm what a relaying connection's state and buffers call for
 * (both directions), or say what that is (PROXY_WANT_*). */
void proxy_relay_arm(struct proxy_conn *c);
unsigned proxy_relay_wanted(const struct proxy_conn *c);
/* relay.c: move bytes for one direction; return -1 when the connection
 * was closed as a result. */
int proxy_relay_read(struct proxy_conn *c, struct proxy_side *src, struct proxy_side *dst,
                     struct proxy_pipe *p);
int proxy_relay_write(struct proxy_conn *c, struct proxy_side *src, struct proxy_side *dst,
                      struct proxy_pipe *p);
void proxy_side_watch_read(struct proxy_side *s, int on);
void proxy_pipe_init(struct proxy_pipe *p);
static inline int proxy_pipe_pending(const struct proxy_pipe *p)
{
    return p->buf != NULL || p->inpipe > 0;
}
void proxy_pipe_free(struct proxy_loop *loop, struct proxy_pipe *p);
void proxy_side_watch_write(struct proxy_side *s, int on);
/* Whole TLS records already in baton's buffer are not announced by the
 * socket again: runs the read callback for them (if s is being read). */
void proxy_side_wake_if_buffered(struct proxy_side *s);

#endif
