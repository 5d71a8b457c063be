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
 *
 * This file holds the lifecycle: start, close, timers and the event
 * callbacks, which hand each event to the phase the connection is in:
 * the client's phases in connection_front.c, the server's in
 * connection_server.c, the relay in relay.c.
 */
#include "connection.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "port_net.h"
#include <unistd.h>

#include "accesslog.h"
#include "connection_int.h"
#include "listener.h"
#include "log.h"
#include "loop.h"
#include "netutil.h"
#include "parse.h"
#include "tls.h"
#include "worker.h"
#include "xprt.h"

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

void timer_arm(struct proxy_conn *c, uint64_t ms)
{
    /* Kept as a time of its own: a live handoff carries it. */
    c->deadline_ms = proxy_now_ms() + ms;
    if (proxy_timer_add_ms(&c->timer, ms) != 0)
        proxy_log_error("evtimer_add failed for client connection");
}

const char *conn_client(const struct proxy_conn *c, char *buf, size_t n)
{
    conf_format_sockaddr(&c->peer, c->peerlen, buf, n);
    return buf;
}

/* Receives raw bytes for a TLS side; 1 fed, 0 nothing there, -1 EOF or
 * error (why set). */
int tls_receive(struct proxy_conn *c, struct proxy_side *s, char *why, size_t n)
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
int side_flush(struct proxy_side *s)
{
    int r = s->xprt->flush(s);

    proxy_side_watch_write(s, r == 0);
    return r;
}

static void client_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_conn *c = arg;

    proxy_loop_worked(c->loop);

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

void upstream_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_conn *c = arg;

    proxy_loop_worked(c->loop);

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

    proxy_loop_worked(c->loop);

    if (c->state != PROXY_CONN_RELAYING) {
        /* Handshake records still on their way to the client. */
        if (side_flush(&c->client) < 0)
            proxy_conn_close(c, PROXY_END_CLIENT_CLOSE);
        return;
    }
    (void)proxy_relay_write(c, &c->upstream, &c->client, &c->down);
}

void upstream_write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_conn *c = arg;
    int err;

    proxy_loop_worked(c->loop);

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
    err = proxy_sock_error(fd);
    if (err != 0) {
        connect_failed(c, proxy_sock_strerror(err));
        return;
    }
    conn_established(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_conn *c = arg;
    uint64_t idle, limit = c->idle_timeout_ms, now;

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

void proxy_conn_start(struct proxy_loop *loop, struct proxy_listener *l, int cfd,
                      const struct sockaddr_storage *peer, socklen_t peerlen)
{
    struct proxy_conn *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        proxy_log_error("listener %s: out of memory for a new connection", l->conf->name);
        if (proxy_sock_close(cfd) != 0)
            proxy_log_debug("close: %s", strerror(errno));
        proxy_listener_release(loop, l);
        proxy_loop_conn_closed(loop);
        return;
    }
    /* TCP_NODELAY came with the listening socket (listener.c). */
    c->loop = loop;
    c->listener = l;
    c->idle_timeout_ms = l->conf->idle_timeout_ms;
    c->client.fd = cfd;
    c->upstream.fd = -1;
    proxy_xprt_raw_attach(&c->client);
    proxy_xprt_raw_attach(&c->upstream);
    proxy_pipe_init(&c->up);
    proxy_pipe_init(&c->down);
    c->peer = *peer;
    c->peerlen = peerlen;
    c->start_ms = c->last_ms = proxy_now_ms();
    proxy_conn_bind_events(c);
    proxy_conn_link(loop, c);
    if (l->conf->accept_proxy) {
        c->state = PROXY_CONN_PROXY_HEADER;
        timer_arm(c, l->conf->proxy_timeout_ms);
        proxy_side_watch_read(&c->client, 1);
        return;
    }
    conn_begin(c);
}

void proxy_conn_link(struct proxy_loop *loop, struct proxy_conn *c)
{
    c->next = loop->conns;
    if (loop->conns != NULL)
        loop->conns->prev = c;
    loop->conns = c;
    proxy_loop_conn_opened(loop);
}

/* Whether it ends here (close) or goes on elsewhere (forget): this
 * process's descriptors and memory go, it leaves the loop's list and
 * releases its slots. */
static void conn_release(struct proxy_conn *c)
{
    struct proxy_loop *loop = c->loop;

    c->client.xprt->release(&c->client);
    if (proxy_sock_close(c->client.fd) != 0)
        proxy_log_debug("close(fd %d): %s", c->client.fd, strerror(errno));
    upstream_discard(c);
    proxy_pipe_free(loop, &c->up);
    proxy_pipe_free(loop, &c->down);
    hello_reader_free(c);
    free(c->prefix);
    free(c->sni);
    free(c->alpn);

    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        loop->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    if (loop->xfer_scan == c)
        loop->xfer_scan = c->next;
    loop->nconns--;
    if (c->listener != NULL)
        proxy_listener_release(loop, c->listener);
    else
        atomic_fetch_sub(&loop->worker->active, 1);   /* an orphan: only the worker's count */
    free(c->orphan);
    free(c);
    proxy_loop_conn_closed(loop);
}

void proxy_conn_bind_events(struct proxy_conn *c)
{
    struct event_base *base = c->loop->base;

    /* EV_CLOSED: a FIN that came with the last bytes is known at once. */
    event_assign(&c->client.rev, base, c->client.fd, EV_READ | EV_CLOSED | EV_PERSIST,
                 client_read_cb, c);
    event_assign(&c->client.wev, base, c->client.fd, EV_WRITE | EV_PERSIST, client_write_cb, c);
    if (c->upstream.fd >= 0) {
        event_assign(&c->upstream.rev, base, c->upstream.fd, EV_READ | EV_CLOSED | EV_PERSIST,
                     upstream_read_cb, c);
        event_assign(&c->upstream.wev, base, c->upstream.fd, EV_WRITE | EV_PERSIST,
                     upstream_write_cb, c);
    }
    evtimer_assign(&c->timer, base, timer_cb, c);
}

/*
 * Which events a connection's state calls for: relaying, relay.c's one
 * rule (it arms by it after every change); a connect waits for
 * writability; a setup phase reads the client.  The handshakes keep what
 * they armed.
 */
unsigned proxy_conn_wanted(const struct proxy_conn *c)
{
    switch (c->state) {
    case PROXY_CONN_PROXY_HEADER:
    case PROXY_CONN_CLIENT_HELLO:
        return PROXY_WANT_CLIENT_READ;
    case PROXY_CONN_HANDSHAKE:
        /* Before the first whole record: no TLS yet, only the client's bytes. */
        return c->client.tls == NULL ? PROXY_WANT_CLIENT_READ : proxy_conn_armed(c);
    case PROXY_CONN_CONNECTING:
        return c->upstream.fd >= 0 ? PROXY_WANT_SERVER_WRITE : 0;
    case PROXY_CONN_RELAYING:
        return proxy_relay_wanted(c);
    default:
        return proxy_conn_armed(c);
    }
}

unsigned proxy_conn_armed(const struct proxy_conn *c)
{
    return (c->client.reading ? PROXY_WANT_CLIENT_READ : 0) |
           (c->client.writing ? PROXY_WANT_CLIENT_WRITE : 0) |
           (c->upstream.reading ? PROXY_WANT_SERVER_READ : 0) |
           (c->upstream.writing ? PROXY_WANT_SERVER_WRITE : 0);
}

void proxy_conn_disarm(struct proxy_conn *c)
{
    evtimer_del(&c->timer);
    proxy_side_watch_read(&c->client, 0);
    proxy_side_watch_write(&c->client, 0);
    if (c->upstream.fd >= 0) {
        proxy_side_watch_read(&c->upstream, 0);
        proxy_side_watch_write(&c->upstream, 0);
    }
}

static void conn_resume_timer(struct proxy_conn *c)
{
    uint64_t now = proxy_now_ms();

    if (c->state == PROXY_CONN_RELAYING) {
        uint64_t idle = now > c->last_ms ? now - c->last_ms : 0;

        /* timer_cb measures the idle time again when it fires. */
        if (c->idle_timeout_ms > 0)
            timer_arm(c, idle < c->idle_timeout_ms ? c->idle_timeout_ms - idle : 0);
        return;
    }
    if (c->deadline_ms > 0)
        timer_arm(c, c->deadline_ms > now ? c->deadline_ms - now : 0);
}

void proxy_conn_resume(struct proxy_conn *c)
{
    unsigned want = proxy_conn_wanted(c);

    if (c->state == PROXY_CONN_RELAYING) {
        proxy_relay_arm(c);
        conn_resume_timer(c);
        /* Records that came with the connection are not announced by
         * the socket again. */
        proxy_side_wake_if_buffered(&c->client);
        proxy_side_wake_if_buffered(&c->upstream);
        return;
    }
    if (c->state == PROXY_CONN_CONNECTING && c->upstream.fd < 0) {
        /* An upstream TLS handshake starts over here: the client's bytes
         * wait in c->up, as they did there.  (May close c.) */
        proxy_side_watch_read(&c->client, 0);
        conn_connect_next(c);
        return;
    }
    proxy_side_watch_read(&c->client, (want & PROXY_WANT_CLIENT_READ) != 0);
    proxy_side_watch_write(&c->client, (want & PROXY_WANT_CLIENT_WRITE) != 0);
    if (c->upstream.fd >= 0) {
        proxy_side_watch_read(&c->upstream, (want & PROXY_WANT_SERVER_READ) != 0);
        proxy_side_watch_write(&c->upstream, (want & PROXY_WANT_SERVER_WRITE) != 0);
    }
    conn_resume_timer(c);
    /* Setup bytes read by the previous generation are parsed here, with
     * this configuration. */
    if (c->prefixlen == 0)
        return;
    if (c->state == PROXY_CONN_PROXY_HEADER)
        parse_proxy_header(c);
    else if (c->state == PROXY_CONN_CLIENT_HELLO)
        parse_client_hello(c);
}

void proxy_conn_forget(struct proxy_conn *c)
{
    proxy_conn_disarm(c);
    conn_release(c);
}

const char *proxy_conn_listener_name(const struct proxy_conn *c)
{
    return c->listener != NULL ? c->listener->conf->name : c->orphan->listener;
}

const char *proxy_conn_backend_name(const struct proxy_conn *c)
{
    if (c->backend != NULL)
        return c->backend->conf->name;
    if (c->orphan != NULL)
        return c->orphan->backend[0] ? c->orphan->backend : "-";
    return c->listener->backend->conf->name;
}

const char *proxy_conn_server_name(const struct proxy_conn *c)
{
    if (c->connected && c->server != NULL)
        return c->server->conf->name;
    return c->orphan != NULL && c->orphan->server[0] ? c->orphan->server : "-";
}

void proxy_conn_close(struct proxy_conn *c, enum proxy_end why)
{
    struct proxy_loop *loop = c->loop;
    struct proxy_worker *w = loop->worker;

    if (c->state == PROXY_CONN_CLOSED)
        return;
    c->state = PROXY_CONN_CLOSED;
    c->end = why != PROXY_END_NONE ? why : PROXY_END_ERROR;
    proxy_conn_disarm(c);
    proxy_accesslog_write(w, c, proxy_now_ms());
    atomic_fetch_add_explicit(&w->bytes_in, c->up.bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->bytes_out, c->down.bytes, memory_order_relaxed);
    conn_release(c);
}
