/*
 * xprt.h - the transport of one side of a connection: how its stream's
 * bytes cross its socket (plain TCP, TLS records).
 *
 * Each struct proxy_side points to the operations of its transport, chosen
 * per side (a TLS client may talk to a plain server and the other way
 * round), and the relay moves bytes through them without knowing which one
 * it has.  A transport is one file with one table; a new one (another
 * record layer) needs nothing else but its set-up call below.
 */
#ifndef BATON_PROXY_XPRT_H
#define BATON_PROXY_XPRT_H

#include <stddef.h>
#include <sys/types.h>

struct proxy_side;
struct ssl_st;

/* The stream's bytes are the socket's bytes, unchanged: they can be moved
 * by splice(2) between two such sides, and the socket's FIN is the
 * stream's end.  Only plain TCP has it. */
#define PROXY_XPRT_SPLICE 0x1u

struct proxy_xprt {
    const char *name;
    unsigned    caps;        /* PROXY_XPRT_* */

    /* Stream bytes into buf: > 0 bytes, 0 the end of the stream, -1 failed
     * (errno set), -2 nothing more now (the poller says when).  The relay
     * calls it again while bytes come (up to a bound per wake-up).
     * *may_recv starts at 1 for each wake-up; a transport clears it once
     * the socket should not be asked again before the next one (plain TCP:
     * after one recv, as the level-triggered poller reports the rest; TLS:
     * after a short one), and then returns only what it holds already. */
    ssize_t (*recv)(struct proxy_side *s, char *buf, size_t n, int *may_recv);
    /* Takes bytes of the stream: how many (0 when the socket is full), or
     * -1 failed (errno set).  `more`: more bytes (or the FIN) follow at
     * once, a hint to coalesce them. */
    ssize_t (*send)(struct proxy_side *s, const char *buf, size_t n, int more);
    /* Sends what the transport queued itself: 1 nothing left, 0 some left
     * (wait until writable), -1 failed (errno set). */
    int     (*flush)(struct proxy_side *s);
    /* Bytes queued by the transport, not sent yet. */
    int     (*pending_out)(const struct proxy_side *s);
    /* Stream bytes already received into the transport: the socket will
     * not announce them again. */
    int     (*pending_in)(const struct proxy_side *s);
    /* Ends the stream towards the peer (TLS: close_notify) and, if fin,
     * sends the FIN: 1 done, 0 waiting until writable (call again), -1
     * failed (errno set). */
    int     (*shutw)(struct proxy_side *s, int fin);
    /* The connection relays from now on (the handshake is over). */
    void    (*relaying)(struct proxy_side *s);
    /* Frees the transport's state; the side is plain TCP afterwards. */
    void    (*release)(struct proxy_side *s);

    /* PROXY_XPRT_SPLICE only: socket -> pipe (up to max bytes) and pipe ->
     * socket (up to n).  Bytes moved, or -1 (errno set; EAGAIN: none now). */
    ssize_t (*splice_in)(struct proxy_side *s, int pipe_wr, size_t max);
    ssize_t (*splice_out)(struct proxy_side *s, int pipe_rd, size_t n);
};

extern const struct proxy_xprt proxy_xprt_raw;   /* xprt_raw.c */
extern const struct proxy_xprt proxy_xprt_tls;   /* xprt_tls.c: OpenSSL's records */
extern const struct proxy_xprt proxy_xprt_tlsrec; /* xprt_tlsrec.c: baton's records */

/* A side starts as plain TCP on its socket. */
void proxy_xprt_raw_attach(struct proxy_side *s);
/* Puts TLS on a side, taking ssl (freed on failure too): 0, or -1 out of
 * memory (the side stays plain). */
int  proxy_xprt_tls_attach(struct proxy_side *s, struct ssl_st *ssl);
/* Once its handshake is done: the side goes over to baton's record layer
 * (the SSL is freed) if the suite allows it.  1 moved, 0 it stays on
 * OpenSSL (and drains at upgrades), -1 failed (errno set). */
int  proxy_xprt_tlsrec_take(struct proxy_side *s);
/* The operations both TLS transports share (their buffers are tls_io.c's). */
int  proxy_xprt_tls_flush(struct proxy_side *s);
int  proxy_xprt_tls_pending_out(const struct proxy_side *s);
int  proxy_xprt_tls_pending_in(const struct proxy_side *s);
void proxy_xprt_tls_release(struct proxy_side *s);
/* Puts an adopted connection's TLS state (with its record layer) on s. */
struct proxy_tls;
void proxy_xprt_tlsrec_attach(struct proxy_side *s, struct proxy_tls *t);

#endif
