/*
 * connection_server.c - the server side of a connection: connecting
 * (another server after a failure, up to `retries`), the TLS handshake
 * with a TLS backend, the PROXY header ahead of the client's bytes, and
 * the start of the relay once the server is ready.
 */
#include "connection.h"

#include <errno.h>
#include "port_net.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "clock.h"
#include "connection_int.h"
#include "listener.h"
#include "log.h"
#include "logsafe.h"
#include "netutil.h"
#include "loop.h"
#include "proxyproto.h"
#include "sockopt.h"
#include "tls.h"
#include "worker.h"
#include "xprt.h"

static void set_nodelay(int fd)
{
    int one = 1;

    /* Latency of small request/response exchanges matters more than the
     * few packets Nagle would save; failure only costs latency. */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, (const void *)&one, sizeof(one)) != 0)
        proxy_log_debug("setsockopt(TCP_NODELAY, fd %d): %s", fd,
                        proxy_sock_strerror(proxy_sock_errno()));
}

void upstream_discard(struct proxy_conn *c)
{
    proxy_side_watch_read(&c->upstream, 0);
    proxy_side_watch_write(&c->upstream, 0);
    c->upstream.xprt->release(&c->upstream);
    if (c->upstream.fd >= 0 && proxy_sock_close(c->upstream.fd) != 0)
        proxy_log_debug("close(fd %d): %s", c->upstream.fd,
                        proxy_sock_strerror(errno));
    c->upstream.fd = -1;
    if (c->connected) {
        atomic_fetch_sub_explicit(&c->server->active, 1, memory_order_relaxed);
        c->connected = 0;
    }
}

void connect_failed(struct proxy_conn *c, const char *reason)
{
    char client[80], safe[PROXY_LOGSAFE_BUF];

    atomic_fetch_add_explicit(&c->server->failures, 1, memory_order_relaxed);
    proxy_server_failed(c->server);
    /* The reason can come from the server (its TLS alerts, certificate). */
    proxy_log_limited(PROXY_LOGK_CONNECT, "backend %s: connect to server %s (%s) failed: %s "
                      "(client %s)", c->backend->conf->name, c->server->conf->name,
                      c->server->conf->addr.text,
                      proxy_logsafe(safe, sizeof(safe), reason, PROXY_LOGSAFE_TEXT),
                      conn_client(c, client, sizeof(client)));
    upstream_discard(c);
    evtimer_del(&c->timer);
    conn_connect_next(c);
}

/* The PROXY protocol header for this client, into buf; returns its length. */
static size_t proxy_header(struct proxy_conn *c, uint8_t *buf, size_t n)
{
    struct proxy_pp_info pp;

    memset(&pp, 0, sizeof(pp));
    pp.src = c->peer;
    pp.srclen = c->peerlen;
    if (c->locallen == 0) {
        c->locallen = sizeof(c->local);
        if (getsockname(c->client.fd, (struct sockaddr *)&c->local, &c->locallen) != 0)
            c->locallen = 0;
    }
    pp.dst = c->local;
    pp.dstlen = c->locallen;
    pp.local = c->locallen == 0;
    if (c->sni != NULL)
        snprintf(pp.authority, sizeof(pp.authority), "%s", c->sni);
    if (c->alpn != NULL)
        snprintf(pp.alpn, sizeof(pp.alpn), "%s", c->alpn);
    if (c->client.tls != NULL) {
        pp.ssl = 1;
        snprintf(pp.ssl_version, sizeof(pp.ssl_version), "%s", proxy_tls_version(c->client.tls));
        snprintf(pp.ssl_cipher, sizeof(pp.ssl_cipher), "%s", proxy_tls_cipher(c->client.tls));
        pp.ssl_client_cert = SSL_get0_peer_certificate(c->client.tls->ssl) != NULL;
    }
    if (c->backend->conf->send_proxy == CONF_SEND_PROXY_V1)
        return proxy_pp_encode_v1(&pp, (char *)buf, n);
    return proxy_pp_encode_v2(&pp, buf, n);
}

/* Queues bytes for the server ahead of the client's: the PROXY header and
 * whatever the client sent before the relay started (never anything with
 * TLS to the client: its first bytes went into the TLS side).  Returns -1
 * on OOM. */
static int queue_upstream_prefix(struct proxy_conn *c, const uint8_t *hdr, size_t hlen)
{
    size_t n = hlen + c->prefixlen;
    char *buf;

    if (n == 0)
        return 0;
    buf = malloc(n);
    if (buf == NULL)
        return -1;
    if (hlen > 0)
        memcpy(buf, hdr, hlen);
    if (c->prefixlen > 0) {
        memcpy(buf + hlen, c->prefix, c->prefixlen);
        c->up.bytes += c->prefixlen;
        prefix_drop(c, c->prefixlen);
    }
    c->up.buf = buf;
    c->up.off = 0;
    c->up.len = (uint32_t)n;
    return 0;
}

void upstream_handshake(struct proxy_conn *c)
{
    char why[256];
    int r = tls_receive(c, &c->upstream, why, sizeof(why));

    if (r < 0) {
        connect_failed(c, why);
        return;
    }
    switch (proxy_tls_handshake(c->upstream.tls, why, sizeof(why))) {
    case PROXY_TLS_WANT:
        if (side_flush(&c->upstream) < 0)
            connect_failed(c, "send failed during TLS handshake");
        return;
    case PROXY_TLS_OK:
        if (side_flush(&c->upstream) < 0) {
            connect_failed(c, "send failed during TLS handshake");
            return;
        }
        if (proxy_xprt_tlsrec_take(&c->upstream) < 0) {
            connect_failed(c, "cannot take the connection over from OpenSSL");
            return;
        }
        proxy_server_succeeded(c->server);
        conn_relay_start(c);
        return;
    default:
        connect_failed(c, why);
        return;
    }
}

static void conn_mark_established(struct proxy_conn *c)
{
    struct proxy_server *s = c->server;

    c->connected = 1;
    atomic_fetch_add_explicit(&s->active, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->total, 1, memory_order_relaxed);
    /* A TLS server counts as good only once its handshake is done: one
     * that accepts TCP but fails every handshake must still go DOWN. */
    if (c->backend->tls == NULL)
        proxy_server_succeeded(s);
    proxy_side_watch_write(&c->upstream, 0);
}

void conn_established(struct proxy_conn *c)
{
    struct proxy_server *s = c->server;
    uint8_t hdr[PROXY_PP_MAX];
    size_t hlen = 0;

    if (c->up.buf != NULL && c->backend->tls == NULL) {
        /* Bytes already queued are the first bytes, header included: the
         * usual path below would queue them a second time. */
        conn_mark_established(c);
        conn_relay_start(c);
        return;
    }
    conn_mark_established(c);
    if (c->backend->conf->send_proxy != CONF_SEND_PROXY_OFF &&
        (hlen = proxy_header(c, hdr, sizeof(hdr))) == 0) {
        proxy_conn_close(c, PROXY_END_ERROR);
        return;
    }
    if (c->backend->tls == NULL) {
        if (queue_upstream_prefix(c, hdr, hlen) != 0) {
            proxy_conn_close(c, PROXY_END_ERROR);
            return;
        }
        conn_relay_start(c);
        return;
    }
    /* The PROXY header travels in the clear, ahead of the ClientHello. */
    if (proxy_xprt_tls_attach(&c->upstream,
                              proxy_tls_client_ssl(c->backend->tls, s->conf->name)) != 0 ||
        (hlen > 0 && proxy_tls_feed_out(c->upstream.tls, hdr, hlen) != 0)) {
        proxy_conn_close(c, PROXY_END_ERROR);
        return;
    }
    c->state = PROXY_CONN_UPSTREAM_HANDSHAKE;
    timer_arm(c, c->backend->conf->connect_timeout_ms);
    proxy_side_watch_read(&c->upstream, 1);
    upstream_handshake(c);
}

void conn_relay_start(struct proxy_conn *c)
{
    /* Client bytes read before relaying go first, through upstream TLS if any
     * (the plain path queued them with the PROXY header already). */
    if (c->up.buf == NULL && c->prefixlen > 0 && queue_upstream_prefix(c, NULL, 0) != 0) {
        proxy_conn_close(c, PROXY_END_ERROR);
        return;
    }
    c->state = PROXY_CONN_RELAYING;
    c->client.xprt->relaying(&c->client);
    c->upstream.xprt->relaying(&c->upstream);
    evtimer_del(&c->timer);
    c->deadline_ms = 0;
    c->last_ms = proxy_now_ms();
    if (c->idle_timeout_ms > 0)
        timer_arm(c, c->idle_timeout_ms);
    /* Header and early bytes first.  The socket has just been found
     * writable, so they go out now rather than after a poll round; the
     * client is read again once they are all out (relay.c's rule). */
    if (c->up.buf != NULL && proxy_relay_write(c, &c->client, &c->upstream, &c->up) < 0)
        return;
    proxy_relay_arm(c);
    /* Application data that came with either side's Finished. */
    proxy_side_wake_if_buffered(&c->upstream);
    proxy_side_wake_if_buffered(&c->client);
}

/*
 * Connected at once?  To a local server the handshake usually completes
 * inside connect() (loopback runs it before the call returns), though
 * connect() still says EINPROGRESS.  With bytes ready for a plain server
 * (the client's first bytes, a PROXY header), sending them finds out: if
 * they go, the poll round, the writability watch (two epoll_ctl) and the
 * SO_ERROR check of the usual path are saved.  A server that is never up
 * that fast (a remote one) stops being tried after a few misses, and once
 * every EARLY_RETRY connections.
 */
#define EARLY_MAX_MISSES 4
#define EARLY_RETRY      64

static int early_bytes(const struct proxy_conn *c)
{
    return c->backend->tls == NULL && (c->prefixlen > 0 || c->up.buf != NULL ||
                                       c->backend->conf->send_proxy != CONF_SEND_PROXY_OFF);
}

static int early_worth_trying(struct proxy_conn *c)
{
    struct proxy_server *s = c->server;
    unsigned misses;

    if (!early_bytes(c))
        return 0;
    misses = atomic_load_explicit(&s->early_misses, memory_order_relaxed);
    return misses < EARLY_MAX_MISSES ||
           atomic_load_explicit(&s->total, memory_order_relaxed) % EARLY_RETRY == 0;
}

/* The first bytes as they would be queued at establishment (PROXY header,
 * then the client's bytes), in the loop's scratch buffer: a miss must leave
 * the connection exactly as the usual path expects it (and as a worker of
 * an older release would take it over while it connects).  Their length,
 * 0 if they do not fit, or -1 if c was closed. */
static ssize_t early_first_bytes(struct proxy_conn *c, uint8_t *hdr, size_t *hlen)
{
    char *out = c->loop->scratch;

    *hlen = 0;
    if (c->backend->conf->send_proxy != CONF_SEND_PROXY_OFF &&
        (*hlen = proxy_header(c, hdr, PROXY_PP_MAX)) == 0) {
        proxy_conn_close(c, PROXY_END_ERROR);
        return -1;
    }
    if (*hlen + c->prefixlen > c->loop->scratch_len)
        return 0;
    memcpy(out, hdr, *hlen);
    if (c->prefixlen > 0)
        memcpy(out + *hlen, c->prefix, c->prefixlen);
    return (ssize_t)(*hlen + c->prefixlen);
}

/* Returns 1 if the connection turned out to be up (it goes on relaying),
 * 0 if not yet (watch for writability), -1 if c was closed or moved on to
 * another server. */
static int conn_send_early(struct proxy_conn *c)
{
    uint8_t hdr[PROXY_PP_MAX];
    size_t hlen = 0;
    const char *out;
    ssize_t n, w;

    if (c->up.buf != NULL) {
        out = c->up.buf + c->up.off;
        n = (ssize_t)(c->up.len - c->up.off);
    } else {
        out = c->loop->scratch;
        if ((n = early_first_bytes(c, hdr, &hlen)) <= 0)
            return n < 0 ? -1 : 0;
    }
    w = proxy_send(c->upstream.fd, out, (size_t)n, PROXY_SEND_FLAGS);
    if (w < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINPROGRESS ||
            errno == EINTR) {
            atomic_fetch_add_explicit(&c->server->early_misses, 1, memory_order_relaxed);
            return 0;
        }
        connect_failed(c, proxy_sock_strerror(errno));
        return -1;
    }
    atomic_store_explicit(&c->server->early_misses, 0, memory_order_relaxed);
    /* Sent: what is left is queued as the usual path would have queued
     * it, less what went. */
    if (c->up.buf == NULL && queue_upstream_prefix(c, hdr, hlen) != 0) {
        proxy_conn_close(c, PROXY_END_ERROR);
        return -1;
    }
    c->up.off += (uint32_t)w;
    if (c->up.buf != NULL && c->up.off == c->up.len) {
        free(c->up.buf);
        c->up.buf = NULL;
        c->up.off = c->up.len = 0;
    }
    conn_mark_established(c);
    conn_relay_start(c);
    return 1;
}

static void conn_await_connect(struct proxy_conn *c)
{
    proxy_side_watch_write(&c->upstream, 1);
    timer_arm(c, c->backend->conf->connect_timeout_ms);
}

static int conn_connect(struct proxy_conn *c, struct proxy_server *s)
{
    const struct conf_addr *a = &s->conf->addr;
    struct event_base *base = c->loop->base;
    int fd, rc, fastopen = 0;

    fd = proxy_socket(a->ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0) {
        proxy_log_error("backend %s: socket for server %s: %s", c->backend->conf->name,
                        s->conf->name, proxy_sock_strerror(errno));
        return -1;
    }
    set_nodelay(fd);
    /* Fast Open: connect() only records the address, and the first send
     * carries the SYN (with those bytes if the kernel has the server's
     * cookie).  Only with bytes to send: without, no SYN would leave. */
    if (c->backend->conf->tcp_fastopen && early_bytes(c)) {
        if (proxy_sockopt_fastopen_connect(fd) == 0)
            fastopen = 1;
        else
            proxy_log_limited(PROXY_LOGK_CONNECT, "backend %s: tcp_fastopen for server %s: %s",
                              c->backend->conf->name, s->conf->name, strerror(errno));
    }
    c->upstream.fd = fd;
    event_assign(&c->upstream.rev, base, fd, EV_READ | EV_CLOSED | EV_PERSIST, upstream_read_cb, c);
    event_assign(&c->upstream.wev, base, fd, EV_WRITE | EV_PERSIST, upstream_write_cb, c);
    c->state = PROXY_CONN_CONNECTING;
    rc = proxy_connect(fd, (const struct sockaddr *)&a->ss, a->len);
    if (rc == 0 && fastopen) {
        if (conn_send_early(c) == 0)
            conn_await_connect(c);
        return 0;
    }
    if (rc == 0) {
        conn_established(c);
        return 0;
    }
    if (errno != EINPROGRESS) {
        int e = errno;

        if (e == EADDRNOTAVAIL || e == ENOBUFS || e == ENOMEM || e == EAGAIN) {
            /* Out of local ports or kernel memory: no fault of the server,
             * whose health must not suffer for it. */
            proxy_log_limited(PROXY_LOGK_LOCAL_LIMIT, "backend %s: connect to server %s (%s): "
                              "%s (a local limit, not counted against the server)",
                              c->backend->conf->name, s->conf->name, a->text,
                              proxy_sock_strerror(e));
            upstream_discard(c);
            return -1;
        }
        connect_failed(c, proxy_sock_strerror(e));
        return 1;
    }
    if (early_worth_trying(c) && conn_send_early(c) != 0)
        return 0;
    conn_await_connect(c);
    return 0;
}

void conn_connect_next(struct proxy_conn *c)
{
    struct proxy_backend *b = c->backend;
    struct proxy_server *s;
    char client[80];

    if (c->ntried <= b->conf->retries && c->ntried < PROXY_MAX_ATTEMPTS) {
        s = proxy_backend_pick(b, &c->loop->balance[b->index], (struct sockaddr *)&c->peer,
                               c->tried, c->ntried);
        if (s != NULL) {
            c->tried[c->ntried++] = s;
            c->server = s;
            /* conn_connect reports an immediate failure by recursing here. */
            if (conn_connect(c, s) < 0)
                conn_connect_next(c);
            return;
        }
    }
    proxy_log_limited(PROXY_LOGK_NO_SERVER, "listener %s: no server of backend %s could be "
                      "connected after %u attempt(s)%s; closing client %s",
                      c->listener->conf->name, b->conf->name, c->ntried,
                      proxy_backend_all_down(b) ? " (all servers are down)" : "",
                      conn_client(c, client, sizeof(client)));
    proxy_conn_close(c, PROXY_END_CONNECT_FAILED);
}
