/*
 * connection.c - life of one proxied connection: connect to a server of the
 * listener's backend (trying others on failure), relay until both
 * directions are shut, then log it and free it.
 */
#include "connection.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "accesslog.h"
#include "backend.h"
#include "listener.h"
#include "log.h"
#include "loop.h"
#include "netutil.h"
#include "parse.h"
#include "worker.h"

static void conn_connect_next(struct proxy_conn *c);

static const char *const proxy_end_names[] = {
    [PROXY_END_NONE] = "none",
    [PROXY_END_CLIENT_CLOSE] = "client_close",
    [PROXY_END_SERVER_CLOSE] = "server_close",
    [PROXY_END_IDLE_TIMEOUT] = "idle_timeout",
    [PROXY_END_CONNECT_FAILED] = "connect_failed",
    [PROXY_END_DRAIN_TIMEOUT] = "drain_timeout",
    [PROXY_END_SHUTDOWN] = "shutdown",
    [PROXY_END_ERROR] = "error",
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

static void client_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_conn *c = arg;

    (void)proxy_relay_read(c, &c->client, &c->upstream, &c->up);
}

static void upstream_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_conn *c = arg;

    (void)proxy_relay_read(c, &c->upstream, &c->client, &c->down);
}

static void client_write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_conn *c = arg;

    (void)proxy_relay_write(c, &c->upstream, &c->client, &c->down);
}

static void timer_arm(struct proxy_conn *c, uint64_t ms)
{
    struct timeval tv = { .tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000 };

    if (evtimer_add(&c->timer, &tv) != 0)
        proxy_log_error("evtimer_add failed for client connection");
}

static void conn_established(struct proxy_conn *c)
{
    struct proxy_server *s = c->server;

    c->state = PROXY_CONN_RELAYING;
    c->connected = 1;
    atomic_fetch_add_explicit(&s->active, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->total, 1, memory_order_relaxed);
    evtimer_del(&c->timer);
    proxy_side_watch_write(&c->upstream, 0);
    proxy_side_watch_read(&c->client, 1);
    proxy_side_watch_read(&c->upstream, 1);
    c->last_ms = proxy_now_ms();
    if (c->listener->conf->idle_timeout_ms > 0)
        timer_arm(c, c->listener->conf->idle_timeout_ms);
}

static void upstream_discard(struct proxy_conn *c)
{
    proxy_side_watch_read(&c->upstream, 0);
    proxy_side_watch_write(&c->upstream, 0);
    if (c->upstream.fd >= 0 && close(c->upstream.fd) != 0)
        proxy_log_debug("close(fd %d): %s", c->upstream.fd, strerror(errno));
    c->upstream.fd = -1;
}

static void connect_failed(struct proxy_conn *c, const char *reason)
{
    char client[80];

    atomic_fetch_add_explicit(&c->server->failures, 1, memory_order_relaxed);
    conf_format_sockaddr(&c->peer, c->peerlen, client, sizeof(client));
    proxy_log_warn("backend %s: connect to server %s (%s) failed: %s (client %s)",
                   c->listener->backend->conf->name, c->server->conf->name,
                   c->server->conf->addr.text, reason, client);
    upstream_discard(c);
    evtimer_del(&c->timer);
    conn_connect_next(c);
}

static void upstream_write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_conn *c = arg;
    int err = 0;
    socklen_t len = sizeof(err);

    if (c->state == PROXY_CONN_RELAYING) {
        (void)proxy_relay_write(c, &c->client, &c->upstream, &c->up);
        return;
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

    if (c->state == PROXY_CONN_CONNECTING) {
        connect_failed(c, "connect timeout");
        return;
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

static int conn_connect(struct proxy_conn *c, struct proxy_server *s)
{
    const struct conf_addr *a = &s->conf->addr;
    struct event_base *base = c->loop->base;
    int fd;

    fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        proxy_log_error("backend %s: socket for server %s: %s",
                        c->listener->backend->conf->name, s->conf->name, strerror(errno));
        return -1;
    }
    set_nodelay(fd);
    c->upstream.fd = fd;
    event_assign(&c->upstream.rev, base, fd, EV_READ | EV_PERSIST, upstream_read_cb, c);
    event_assign(&c->upstream.wev, base, fd, EV_WRITE | EV_PERSIST, upstream_write_cb, c);
    if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == 0) {
        conn_established(c);
        return 0;
    }
    if (errno != EINPROGRESS) {
        connect_failed(c, strerror(errno));
        return 1;
    }
    c->state = PROXY_CONN_CONNECTING;
    proxy_side_watch_write(&c->upstream, 1);
    timer_arm(c, c->listener->backend->conf->connect_timeout_ms);
    return 0;
}

static void conn_connect_next(struct proxy_conn *c)
{
    struct proxy_backend *b = c->listener->backend;
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
    conf_format_sockaddr(&c->peer, c->peerlen, client, sizeof(client));
    proxy_log_warn("listener %s: no server of backend %s could be connected after %u "
                   "attempt(s); closing client %s", c->listener->conf->name, b->conf->name,
                   c->ntried, client);
    proxy_conn_close(c, PROXY_END_CONNECT_FAILED);
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
    set_nodelay(cfd);
    c->loop = loop;
    c->listener = l;
    c->client.fd = cfd;
    c->upstream.fd = -1;
    proxy_pipe_init(&c->up);
    proxy_pipe_init(&c->down);
    c->peer = *peer;
    c->peerlen = peerlen;
    c->start_ms = c->last_ms = proxy_now_ms();
    event_assign(&c->client.rev, loop->base, cfd, EV_READ | EV_PERSIST, client_read_cb, c);
    event_assign(&c->client.wev, loop->base, cfd, EV_WRITE | EV_PERSIST, client_write_cb, c);
    evtimer_assign(&c->timer, loop->base, timer_cb, c);
    c->next = loop->conns;
    if (loop->conns != NULL)
        loop->conns->prev = c;
    loop->conns = c;
    loop->nconns++;
    conn_connect_next(c);
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
    if (close(c->client.fd) != 0)
        proxy_log_debug("close(fd %d): %s", c->client.fd, strerror(errno));
    upstream_discard(c);
    proxy_pipe_free(loop, &c->up);
    proxy_pipe_free(loop, &c->down);
    if (c->connected)
        atomic_fetch_sub_explicit(&c->server->active, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->bytes_in, c->up.bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->bytes_out, c->down.bytes, memory_order_relaxed);
    proxy_accesslog_write(w, c, proxy_now_ms());
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
