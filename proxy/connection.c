/*
 * connection.c - life of one proxied connection:
 *
 *   accept -> [PROXY_HEADER] -> [CLIENT_HELLO | HANDSHAKE] -> CONNECTING
 *          -> [UPSTREAM_HANDSHAKE] -> RELAYING -> CLOSED
 *
 * The optional stages depend on the listener (accept_proxy, tls =
 * passthrough / on) and the backend (tls = on).  A failed connect or
 * upstream handshake tries another server while nothing of the client's
 * has been sent; after relaying both directions to their end the
 * connection is logged and freed.
 */
#include "connection.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "accesslog.h"
#include "backend.h"
#include "clienthello.h"
#include "listener.h"
#include "log.h"
#include "logsafe.h"
#include "loop.h"
#include "netutil.h"
#include "parse.h"
#include "proxyproto.h"
#include "tls.h"
#include "worker.h"
#include "xprt.h"

static void conn_connect_next(struct proxy_conn *c);
static void conn_begin(struct proxy_conn *c);

static const char *const proxy_end_names[] = {
    [PROXY_END_NONE] = "none",
    [PROXY_END_CLIENT_CLOSE] = "client_close",
    [PROXY_END_SERVER_CLOSE] = "server_close",
    [PROXY_END_IDLE_TIMEOUT] = "idle_timeout",
    [PROXY_END_CONNECT_FAILED] = "connect_failed",
    [PROXY_END_DRAIN_TIMEOUT] = "drain_timeout",
    [PROXY_END_SHUTDOWN] = "shutdown",
    [PROXY_END_ERROR] = "error",
    [PROXY_END_HANDSHAKE_FAILED] = "handshake_failed",
    [PROXY_END_BAD_REQUEST] = "bad_request",
};

const char *proxy_end_name(enum proxy_end e)
{
    if ((unsigned)e >= sizeof(proxy_end_names) / sizeof(proxy_end_names[0]))
        return "?";
    return proxy_end_names[e];
}

static void set_nodelay(int fd)
{
    int one = 1;

    /* Latency of small request/response exchanges matters more than the
     * few packets Nagle would save; failure only costs latency. */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
        proxy_log_debug("setsockopt(TCP_NODELAY, fd %d): %s", fd, strerror(errno));
}

static void timer_arm(struct proxy_conn *c, uint64_t ms)
{
    if (proxy_timer_add_ms(&c->timer, ms) != 0)
        proxy_log_error("evtimer_add failed for client connection");
}

static const char *conn_client(const struct proxy_conn *c, char *buf, size_t n)
{
    conf_format_sockaddr(&c->peer, c->peerlen, buf, n);
    return buf;
}

/* ---- the client's first bytes ------------------------------------------ */

/* Reads what the client sent into c->prefix (bounded).  Returns bytes read,
 * 0 on EOF, -1 on error, -2 when nothing is there yet. */
static ssize_t prefix_read(struct proxy_conn *c, size_t max)
{
    size_t cap = c->prefixcap;
    uint8_t *p;
    ssize_t n;

    if (c->prefixlen >= max)
        return -1;
    /* Grown as bytes arrive: a client that sends a few bytes and waits must
     * not cost the largest ClientHello's worth of memory. */
    if (c->prefixlen == cap) {
        cap = cap == 0 ? 1024 : cap * 2;
        if (cap > max)
            cap = max;
        p = realloc(c->prefix, cap);
        if (p == NULL)
            return -1;
        c->prefix = p;
        c->prefixcap = (uint32_t)cap;
    }
    n = recv(c->client.fd, c->prefix + c->prefixlen, cap - c->prefixlen, 0);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -2 : -1;
    c->prefixlen += (uint32_t)n;
    return n;
}

static void prefix_drop(struct proxy_conn *c, size_t n)
{
    memmove(c->prefix, c->prefix + n, c->prefixlen - n);
    c->prefixlen -= (uint32_t)n;
    if (c->prefixlen == 0) {
        free(c->prefix);
        c->prefix = NULL;
        c->prefixcap = 0;
    }
}

/* A refused client: one line per kind of refusal, rate-limited (a flood
 * of bad clients must not flood the log).  The reason can quote what the
 * client sent (OpenSSL's, the parsers'), so it is escaped. */
static void conn_reject(struct proxy_conn *c, enum proxy_end why, enum proxy_log_kind kind,
                        const char *what, const char *reason)
{
    char client[80], safe[PROXY_LOGSAFE_BUF];

    proxy_log_limited(kind, "listener %s: %s from %s: %s", c->listener->conf->name, what,
                      conn_client(c, client, sizeof(client)),
                      proxy_logsafe(safe, sizeof(safe), reason, PROXY_LOGSAFE_TEXT));
    proxy_conn_close(c, why);
}

static void read_proxy_header(struct proxy_conn *c)
{
    struct proxy_pp_info pp;
    char why[256];
    size_t used = 0;
    ssize_t n = prefix_read(c, PROXY_PP_MAX);

    if (n == -2)
        return;
    if (n <= 0) {
        conn_reject(c, PROXY_END_BAD_REQUEST, PROXY_LOGK_PROXY_HEADER, "PROXY header",
                    n == 0 ? "connection closed before a complete header" : "read failed or "
                    "header too long");
        return;
    }
    switch (proxy_pp_parse(c->prefix, c->prefixlen, &pp, &used, why, sizeof(why))) {
    case PROXY_PP_NEED_MORE:
        return;
    case PROXY_PP_INVALID:
        conn_reject(c, PROXY_END_BAD_REQUEST, PROXY_LOGK_PROXY_HEADER, "bad PROXY header", why);
        return;
    case PROXY_PP_OK:
        break;
    }
    if (!pp.local) {
        c->peer = pp.src;
        c->peerlen = pp.srclen;
        c->local = pp.dst;
        c->locallen = pp.dstlen;
    }
    prefix_drop(c, used);
    evtimer_del(&c->timer);
    conn_begin(c);
}

/* SNI routes (exact names first, then wildcards), then ALPN routes, then
 * the listener's backend. */
static struct proxy_backend *conn_route(struct proxy_conn *c)
{
    const struct conf_listener *l = c->listener->conf;
    struct proxy_worker *w = c->loop->worker;
    const struct conf_route *hit = NULL;

    for (size_t i = 0; c->sni != NULL && hit == NULL && i < l->nroutes; i++)
        if (l->routes[i].pattern[0] != '*' && conf_route_match(l->routes[i].pattern, c->sni))
            hit = &l->routes[i];
    for (size_t i = 0; c->sni != NULL && hit == NULL && i < l->nroutes; i++)
        if (l->routes[i].pattern[0] == '*' && conf_route_match(l->routes[i].pattern, c->sni))
            hit = &l->routes[i];
    for (size_t i = 0; c->alpn != NULL && hit == NULL && i < l->nalpn_routes; i++)
        if (strcmp(l->alpn_routes[i].pattern, c->alpn) == 0)
            hit = &l->alpn_routes[i];
    if (hit == NULL)
        return c->listener->backend;
    return &w->backends[hit->backend - w->conf.backends];
}

static void route_and_connect(struct proxy_conn *c)
{
    evtimer_del(&c->timer);
    proxy_side_watch_read(&c->client, 0);
    c->backend = conn_route(c);
    conn_connect_next(c);
}

static void hello_reader_free(struct proxy_conn *c)
{
    if (c->hello == NULL)
        return;
    proxy_clienthello_release(c->hello);
    free(c->hello);
    c->hello = NULL;
}

/* Routes once the bytes so far hold a whole ClientHello.  The reader goes
 * on from where the previous read left it, so each byte is looked at once. */
static void parse_client_hello(struct proxy_conn *c)
{
    struct proxy_hello *h = NULL;
    char why[256];
    enum proxy_hello_result res;

    res = proxy_clienthello_feed(c->hello, c->prefix, c->prefixlen, why, sizeof(why));
    if (res == PROXY_HELLO_NEED_MORE)
        return;
    if (res == PROXY_HELLO_OK && (h = malloc(sizeof(*h))) == NULL) {
        proxy_conn_close(c, PROXY_END_ERROR);
        return;
    }
    if (res == PROXY_HELLO_OK)
        res = proxy_clienthello_decode(c->hello, c->prefix, h, why, sizeof(why));
    hello_reader_free(c);
    if (res != PROXY_HELLO_OK) {
        free(h);
        conn_reject(c, PROXY_END_BAD_REQUEST, PROXY_LOGK_CLIENT_HELLO, "not a TLS ClientHello",
                    why);
        return;
    }
    if (h->has_sni)
        c->sni = strdup(h->sni);
    if (h->nalpn > 0)
        c->alpn = strdup(h->alpn[0]);
    free(h);
    route_and_connect(c);
}

static void read_client_hello(struct proxy_conn *c)
{
    ssize_t n = prefix_read(c, PROXY_HELLO_MAX_BYTES);

    if (n == -2)
        return;
    if (n <= 0) {
        conn_reject(c, PROXY_END_BAD_REQUEST, PROXY_LOGK_CLIENT_HELLO, "ClientHello",
                    n == 0 ? "connection closed before a complete ClientHello"
                           : "read failed or ClientHello too long");
        return;
    }
    parse_client_hello(c);
}

/* ---- TLS with the client ------------------------------------------------ */

static void handshake_failed(struct proxy_conn *c, const char *reason)
{
    atomic_fetch_add_explicit(&c->loop->worker->tls_failures, 1, memory_order_relaxed);
    conn_reject(c, PROXY_END_HANDSHAKE_FAILED, PROXY_LOGK_HANDSHAKE, "TLS handshake", reason);
}

/* Receives raw bytes for a TLS side; 1 fed, 0 nothing there, -1 EOF or
 * error (why set). */
static int tls_receive(struct proxy_conn *c, struct proxy_side *s, char *why, size_t n)
{
    ssize_t r = proxy_tls_recv(s->tls, s->fd, why, n);

    if (r == -2)
        return 0;
    if (r == 0) {
        snprintf(why, n, "connection closed by peer");
        return -1;
    }
    return r > 0 ? 1 : -1;
}

/* Sends what the handshake produced; watches for writability if needed. */
static int side_flush(struct proxy_side *s)
{
    int r = s->xprt->flush(s);

    proxy_side_watch_write(s, r == 0);
    return r;
}

static void client_handshake(struct proxy_conn *c);

/*
 * Until a whole first record has come, the client's bytes wait in
 * c->prefix and no SSL object exists: a client that connects and sends
 * nothing, or trickles a few bytes, holds no OpenSSL state (9 KB, and 30 KB
 * more once a handshake starts).  Returns 1 once the TLS side is set up with
 * the bytes so far, 0 to wait for more, -1 if the connection was closed.
 */
static int client_tls_begin(struct proxy_conn *c)
{
    char why[256];
    ssize_t rec = proxy_tls_record_size(c->prefix, c->prefixlen, why, sizeof(why));

    if (rec < 0) {
        handshake_failed(c, why);
        return -1;
    }
    if (rec == 0)
        return 0;
    if (proxy_xprt_tls_attach(&c->client, proxy_tls_server_ssl(c->listener->tls)) != 0) {
        proxy_conn_close(c, PROXY_END_ERROR);
        return -1;
    }
    if (proxy_tls_feed(c->client.tls, c->prefix, c->prefixlen, why, sizeof(why)) !=
        PROXY_TLS_OK) {
        handshake_failed(c, why);
        return -1;
    }
    prefix_drop(c, c->prefixlen);
    return 1;
}

/* Reads the client's first bytes until they hold a whole record. */
static void client_first_record(struct proxy_conn *c)
{
    ssize_t n = prefix_read(c, PROXY_TLS_RECORD_MAX);
    const char *why;
    char client[80], safe[PROXY_LOGSAFE_BUF];

    if (n == -2)
        return;
    why = n == 0 ? "connection closed by peer" : strerror(errno);
    if (n <= 0 && c->prefixlen == 0) {
        /* Closed without sending a byte (a load balancer's TCP check, a
         * port scan): no handshake was attempted, so no warning or count. */
        proxy_log_debug("listener %s: %s closed before a ClientHello (%s)",
                        c->listener->conf->name, conn_client(c, client, sizeof(client)),
                        proxy_logsafe(safe, sizeof(safe), why, PROXY_LOGSAFE_TEXT));
        proxy_conn_close(c, PROXY_END_HANDSHAKE_FAILED);
        return;
    }
    if (n <= 0) {
        handshake_failed(c, why);
        return;
    }
    if (client_tls_begin(c) == 1)
        client_handshake(c);
}

static void client_handshake(struct proxy_conn *c)
{
    char why[256], alpn[256];
    int r;

    if (c->client.tls == NULL) {
        client_first_record(c);
        return;
    }
    r = tls_receive(c, &c->client, why, sizeof(why));
    if (r < 0) {
        handshake_failed(c, why);
        return;
    }
    switch (proxy_tls_handshake(c->client.tls, why, sizeof(why))) {
    case PROXY_TLS_WANT:
        if (side_flush(&c->client) < 0)
            handshake_failed(c, "send failed");
        return;
    case PROXY_TLS_OK:
        break;
    default:
        (void)side_flush(&c->client);   /* the alert, if it fits */
        handshake_failed(c, why);
        return;
    }
    if (side_flush(&c->client) < 0) {
        handshake_failed(c, "send failed");
        return;
    }
    if (proxy_tls_sni(c->client.tls)[0] != '\0')
        c->sni = strdup(proxy_tls_sni(c->client.tls));
    proxy_tls_alpn(c->client.tls, alpn, sizeof(alpn));
    if (alpn[0] != '\0')
        c->alpn = strdup(alpn);
    route_and_connect(c);
}

/* ---- event callbacks ---------------------------------------------------------- */

static void upstream_handshake(struct proxy_conn *c);
static void conn_relay_start(struct proxy_conn *c);

static void client_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_conn *c = arg;

    switch (c->state) {
    case PROXY_CONN_PROXY_HEADER:
        read_proxy_header(c);
        break;
    case PROXY_CONN_CLIENT_HELLO:
        read_client_hello(c);
        break;
    case PROXY_CONN_HANDSHAKE:
        client_handshake(c);
        break;
    case PROXY_CONN_RELAYING:
        c->client.fin_seen = (what & EV_CLOSED) != 0;
        (void)proxy_relay_read(c, &c->client, &c->upstream, &c->up);
        break;
    default:
        /* Not interested until a server is connected. */
        proxy_side_watch_read(&c->client, 0);
        break;
    }
}

static void upstream_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_conn *c = arg;

    if (c->state == PROXY_CONN_UPSTREAM_HANDSHAKE) {
        upstream_handshake(c);
        return;
    }
    c->upstream.fin_seen = (what & EV_CLOSED) != 0;
    (void)proxy_relay_read(c, &c->upstream, &c->client, &c->down);
}

static void client_write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_conn *c = arg;

    if (c->state != PROXY_CONN_RELAYING) {
        /* Handshake records still on their way to the client. */
        if (side_flush(&c->client) < 0)
            proxy_conn_close(c, PROXY_END_CLIENT_CLOSE);
        return;
    }
    (void)proxy_relay_write(c, &c->upstream, &c->client, &c->down);
}

/* ---- servers -------------------------------------------------------------------- */

static void upstream_discard(struct proxy_conn *c)
{
    proxy_side_watch_read(&c->upstream, 0);
    proxy_side_watch_write(&c->upstream, 0);
    c->upstream.xprt->release(&c->upstream);
    if (c->upstream.fd >= 0 && close(c->upstream.fd) != 0)
        proxy_log_debug("close(fd %d): %s", c->upstream.fd, strerror(errno));
    c->upstream.fd = -1;
    if (c->connected) {
        atomic_fetch_sub_explicit(&c->server->active, 1, memory_order_relaxed);
        c->connected = 0;
    }
}

static void connect_failed(struct proxy_conn *c, const char *reason)
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

static void upstream_handshake(struct proxy_conn *c)
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
        proxy_server_succeeded(c->server);
        conn_relay_start(c);
        return;
    default:
        connect_failed(c, why);
        return;
    }
}

static void conn_established(struct proxy_conn *c)
{
    struct proxy_server *s = c->server;
    uint8_t hdr[PROXY_PP_MAX];
    size_t hlen = 0;

    c->connected = 1;
    atomic_fetch_add_explicit(&s->active, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->total, 1, memory_order_relaxed);
    /* A TLS server counts as good only once its handshake is done: one
     * that accepts TCP but fails every handshake must still go DOWN. */
    if (c->backend->tls == NULL)
        proxy_server_succeeded(s);
    proxy_side_watch_write(&c->upstream, 0);
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

static void upstream_write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_conn *c = arg;
    int err = 0;
    socklen_t len = sizeof(err);

    switch (c->state) {
    case PROXY_CONN_RELAYING:
        (void)proxy_relay_write(c, &c->client, &c->upstream, &c->up);
        return;
    case PROXY_CONN_UPSTREAM_HANDSHAKE:
        if (side_flush(&c->upstream) < 0)
            connect_failed(c, "send failed during TLS handshake");
        return;
    default:
        break;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err != 0) {
        connect_failed(c, strerror(err));
        return;
    }
    conn_established(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_conn *c = arg;
    uint64_t idle, limit = c->listener->conf->idle_timeout_ms, now;

    switch (c->state) {
    case PROXY_CONN_CONNECTING:
        connect_failed(c, "connect timeout");
        return;
    case PROXY_CONN_UPSTREAM_HANDSHAKE:
        connect_failed(c, "TLS handshake timeout");
        return;
    case PROXY_CONN_HANDSHAKE:
        handshake_failed(c, "handshake timeout");
        return;
    case PROXY_CONN_PROXY_HEADER:
        conn_reject(c, PROXY_END_BAD_REQUEST, PROXY_LOGK_PROXY_HEADER, "PROXY header", "timeout");
        return;
    case PROXY_CONN_CLIENT_HELLO:
        conn_reject(c, PROXY_END_BAD_REQUEST, PROXY_LOGK_CLIENT_HELLO, "ClientHello", "timeout");
        return;
    default:
        break;
    }
    /* The relay only stamps last_ms; the timer checks it here instead of
     * being re-armed on every read. */
    now = proxy_now_ms();
    idle = now > c->last_ms ? now - c->last_ms : 0;
    if (idle + 5 >= limit) {
        proxy_conn_close(c, PROXY_END_IDLE_TIMEOUT);
        return;
    }
    timer_arm(c, limit - idle);
}

static void conn_relay_start(struct proxy_conn *c)
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
    c->last_ms = proxy_now_ms();
    if (c->listener->conf->idle_timeout_ms > 0)
        timer_arm(c, c->listener->conf->idle_timeout_ms);
    proxy_side_watch_read(&c->upstream, 1);
    proxy_side_wake_if_buffered(&c->upstream);
    if (c->up.buf != NULL) {
        /* Header and early bytes first.  The socket has just been found
         * writable, so they go out now rather than after a poll round;
         * the client is read again once they are all out. */
        if (proxy_relay_write(c, &c->client, &c->upstream, &c->up) < 0)
            return;
        if (c->up.buf != NULL)
            proxy_side_watch_write(&c->upstream, 1);
        return;
    }
    proxy_side_watch_read(&c->client, 1);
    /* Application data that came with either side's Finished. */
    proxy_side_wake_if_buffered(&c->client);
}

static int conn_connect(struct proxy_conn *c, struct proxy_server *s)
{
    const struct conf_addr *a = &s->conf->addr;
    struct event_base *base = c->loop->base;
    int fd;

    fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        proxy_log_error("backend %s: socket for server %s: %s", c->backend->conf->name,
                        s->conf->name, strerror(errno));
        return -1;
    }
    set_nodelay(fd);
    c->upstream.fd = fd;
    event_assign(&c->upstream.rev, base, fd, EV_READ | EV_CLOSED | EV_PERSIST, upstream_read_cb, c);
    event_assign(&c->upstream.wev, base, fd, EV_WRITE | EV_PERSIST, upstream_write_cb, c);
    c->state = PROXY_CONN_CONNECTING;
    if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == 0) {
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
                              c->backend->conf->name, s->conf->name, a->text, strerror(e));
            upstream_discard(c);
            return -1;
        }
        connect_failed(c, strerror(e));
        return 1;
    }
    proxy_side_watch_write(&c->upstream, 1);
    timer_arm(c, c->backend->conf->connect_timeout_ms);
    return 0;
}

static void conn_connect_next(struct proxy_conn *c)
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

/*
 * A client usually sends its first bytes right behind the handshake, so
 * they are often there at accept: taking them now lets them go out the
 * moment the server connection is up, instead of a poll round later.
 * Returns -1 when the client is already gone (connection closed).
 */
static int read_early(struct proxy_conn *c)
{
    struct proxy_loop *loop = c->loop;
    ssize_t n = recv(c->client.fd, loop->scratch, loop->scratch_len, 0);

    if (n > 0) {
        /* Only bytes that came are kept: an idle client costs no buffer. */
        c->prefix = malloc((size_t)n);
        if (c->prefix == NULL) {
            proxy_conn_close(c, PROXY_END_ERROR);
            return -1;
        }
        memcpy(c->prefix, loop->scratch, (size_t)n);
        c->prefixlen = c->prefixcap = (uint32_t)n;
        return 0;
    }
    /* EOF stays readable and is relayed as usual (the client may still
     * want the server's answer); a reset ends the connection now. */
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        proxy_conn_close(c, PROXY_END_CLIENT_CLOSE);
        return -1;
    }
    return 0;
}

/* After the PROXY header (if any): the listener's TLS stage, or connect. */
static void conn_begin(struct proxy_conn *c)
{
    const struct conf_listener *l = c->listener->conf;

    switch (l->tls) {
    case CONF_TLS_PASSTHROUGH:
        c->hello = malloc(sizeof(*c->hello));
        if (c->hello == NULL) {
            proxy_conn_close(c, PROXY_END_ERROR);
            return;
        }
        proxy_clienthello_init(c->hello);
        c->state = PROXY_CONN_CLIENT_HELLO;
        timer_arm(c, l->handshake_timeout_ms);
        proxy_side_watch_read(&c->client, 1);
        /* A ClientHello that came with the PROXY header needs no more reads. */
        if (c->prefixlen > 0)
            parse_client_hello(c);
        return;
    case CONF_TLS_ON:
        c->state = PROXY_CONN_HANDSHAKE;
        timer_arm(c, l->handshake_timeout_ms);
        proxy_side_watch_read(&c->client, 1);
        /* Bytes that followed a PROXY header are the start of the ClientHello. */
        if (c->prefixlen > 0 && client_tls_begin(c) == 1)
            client_handshake(c);
        return;
    case CONF_TLS_OFF:
    default:
        /* Nothing more is read from the client until a server is connected
         * and whatever was read so far has been passed on. */
        proxy_side_watch_read(&c->client, 0);
        if (c->prefix == NULL && read_early(c) < 0)
            return;
        c->backend = c->listener->backend;
        conn_connect_next(c);
        return;
    }
}

void proxy_conn_start(struct proxy_loop *loop, struct proxy_listener *l, int cfd,
                      const struct sockaddr_storage *peer, socklen_t peerlen)
{
    struct proxy_conn *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        proxy_log_error("listener %s: out of memory for a new connection", l->conf->name);
        if (close(cfd) != 0)
            proxy_log_debug("close: %s", strerror(errno));
        proxy_listener_release(loop, l);
        proxy_loop_conn_closed(loop);
        return;
    }
    /* TCP_NODELAY came with the listening socket (listener.c). */
    c->loop = loop;
    c->listener = l;
    c->client.fd = cfd;
    c->upstream.fd = -1;
    proxy_xprt_raw_attach(&c->client);
    proxy_xprt_raw_attach(&c->upstream);
    proxy_pipe_init(&c->up);
    proxy_pipe_init(&c->down);
    c->peer = *peer;
    c->peerlen = peerlen;
    c->start_ms = c->last_ms = proxy_now_ms();
    /* EV_CLOSED: a FIN that came with the last bytes is known at once. */
    event_assign(&c->client.rev, loop->base, cfd, EV_READ | EV_CLOSED | EV_PERSIST,
                 client_read_cb, c);
    event_assign(&c->client.wev, loop->base, cfd, EV_WRITE | EV_PERSIST, client_write_cb, c);
    evtimer_assign(&c->timer, loop->base, timer_cb, c);
    c->next = loop->conns;
    if (loop->conns != NULL)
        loop->conns->prev = c;
    loop->conns = c;
    proxy_loop_conn_opened(loop);
    if (l->conf->accept_proxy) {
        c->state = PROXY_CONN_PROXY_HEADER;
        timer_arm(c, l->conf->proxy_timeout_ms);
        proxy_side_watch_read(&c->client, 1);
        return;
    }
    conn_begin(c);
}

void proxy_conn_close(struct proxy_conn *c, enum proxy_end why)
{
    struct proxy_loop *loop = c->loop;
    struct proxy_worker *w = loop->worker;

    if (c->state == PROXY_CONN_CLOSED)
        return;
    c->state = PROXY_CONN_CLOSED;
    c->end = why != PROXY_END_NONE ? why : PROXY_END_ERROR;
    evtimer_del(&c->timer);
    proxy_side_watch_read(&c->client, 0);
    proxy_side_watch_write(&c->client, 0);
    proxy_accesslog_write(w, c, proxy_now_ms());
    c->client.xprt->release(&c->client);
    if (close(c->client.fd) != 0)
        proxy_log_debug("close(fd %d): %s", c->client.fd, strerror(errno));
    upstream_discard(c);
    proxy_pipe_free(loop, &c->up);
    proxy_pipe_free(loop, &c->down);
    hello_reader_free(c);
    free(c->prefix);
    free(c->sni);
    free(c->alpn);
    atomic_fetch_add_explicit(&w->bytes_in, c->up.bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->bytes_out, c->down.bytes, memory_order_relaxed);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        loop->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    loop->nconns--;
    proxy_listener_release(loop, c->listener);
    free(c);
    proxy_loop_conn_closed(loop);
}
