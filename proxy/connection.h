/*
 * connection.h - one proxied client connection: a plain struct with an
 * explicit state, two sockets and one pipe per direction.  Everything here
 * is plain data so a later generation can receive it (live handoff).
 */
#ifndef BATON_PROXY_CONNECTION_H
#define BATON_PROXY_CONNECTION_H

#include <stdint.h>
#include <sys/socket.h>

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
};

/* Takes ownership of cfd (already counted against the listener limits). */
void proxy_conn_start(struct proxy_loop *loop, struct proxy_listener *l, int cfd,
                      const struct sockaddr_storage *peer, socklen_t peerlen);
/* Ends a connection now with the given reason (drain timeout, shutdown). */
void proxy_conn_close(struct proxy_conn *c, enum proxy_end why);
const char *proxy_end_name(enum proxy_end e);

/* relay.c: move bytes for one direction; return -1 when the connection
 * was closed as a result. */
int proxy_relay_read(struct proxy_conn *c, struct proxy_side *src, struct proxy_side *dst,
                     struct proxy_pipe *p);
int proxy_relay_write(struct proxy_conn *c, struct proxy_side *src, struct proxy_side *dst,
                      struct proxy_pipe *p);
void proxy_side_watch_read(struct proxy_side *s, int on);
void proxy_pipe_init(struct proxy_pipe *p);
void proxy_pipe_free(struct proxy_loop *loop, struct proxy_pipe *p);
void proxy_side_watch_write(struct proxy_side *s, int on);
/* Whole TLS records already in baton's buffer are not announced by the
 * socket again: runs the read callback for them (if s is being read). */
void proxy_side_wake_if_buffered(struct proxy_side *s);

#endif
