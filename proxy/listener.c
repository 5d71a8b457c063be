/*
 * listener.c - the accept path: connection limits are reserved before
 * accept(2), so neither the listener's nor the global max_connections can
 * be overshot by several loops accepting at once; at a limit (or out of
 * descriptors) the loop stops watching the socket and lets the kernel
 * queue new clients until a slot frees.
 */
#include "listener.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "port_net.h"
#include <unistd.h>

#include "connection.h"
#include "log.h"
#include "loop.h"
#include "netutil.h"
#include "sockopt.h"
#include "worker.h"

#define ACCEPT_BATCH       64   /* accepts per wake-up, then let others run */
#define ACCEPT_RETRY_MS    100  /* re-check a limit held by another loop */

enum slot { SLOT_OK, SLOT_GLOBAL_FULL, SLOT_LISTENER_FULL };

/* Set on the shared socket by each generation, off included: a reload
 * that turns one off takes it off. */
static void listener_first_bytes_opts(struct proxy_listener *l, int fd, const char *addr)
{
    const struct conf_listener *c = l->conf;

    if (proxy_sockopt_defer_accept(fd, (unsigned)(c->defer_accept_ms / 1000)) != 0 &&
        c->defer_accept_ms != 0)
        proxy_log_warn("listener %s (%s): defer_accept: %s", c->name, addr, strerror(errno));
    if (proxy_sockopt_fastopen(fd, c->tcp_fastopen) != 0 && c->tcp_fastopen != 0)
        proxy_log_warn("listener %s (%s): tcp_fastopen: %s", c->name, addr, strerror(errno));
}

int proxy_listener_add_fd(struct proxy_listener *l, int fd, const char *addr)
{
    int one = 1;

    /* Accepted sockets inherit TCP_NODELAY from the listening socket: set
     * once here (whoever bound it) instead of once per connection. */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, (const void *)&one, sizeof(one)) != 0)
        proxy_log_warn("listener %s: setsockopt(TCP_NODELAY): %s", l->conf->name,
                       proxy_sock_strerror(proxy_sock_errno()));
    listener_first_bytes_opts(l, fd, addr);
    int *fds = realloc(l->fds, (l->nfds + 1) * sizeof(*fds));
    char (*addrs)[80];

    if (fds == NULL)
        return -1;
    l->fds = fds;
    addrs = realloc(l->addrs, (l->nfds + 1) * sizeof(*addrs));
    if (addrs == NULL)
        return -1;
    l->addrs = addrs;
    l->fds[l->nfds] = fd;
    snprintf(l->addrs[l->nfds], sizeof(l->addrs[0]), "%s", addr);
    l->nfds++;
    return 0;
}

void proxy_listener_free(struct proxy_listener *l)
{
    for (size_t i = 0; i < l->nfds; i++)
        if (l->fds[i] >= 0 && proxy_sock_close(l->fds[i]) != 0)
            proxy_log_debug("close listener fd %d: %s", l->fds[i], strerror(errno));
    free(l->fds);
    free(l->addrs);
    l->fds = NULL;
    l->addrs = NULL;
    l->nfds = 0;
}

static enum slot slot_take(struct proxy_worker *w, struct proxy_listener *l)
{
    uint64_t lmax = l->conf->max_connections;

    if (atomic_fetch_add(&w->active, 1) >= w->conf.global.max_connections) {
        atomic_fetch_sub(&w->active, 1);
        return SLOT_GLOBAL_FULL;
    }
    if (atomic_fetch_add(&l->active, 1) >= lmax && lmax != 0) {
        atomic_fetch_sub(&l->active, 1);
        atomic_fetch_sub(&w->active, 1);
        return SLOT_LISTENER_FULL;
    }
    return SLOT_OK;
}

void proxy_listener_release(struct proxy_loop *loop, struct proxy_listener *l)
{
    atomic_fetch_sub(&l->active, 1);
    atomic_fetch_sub(&loop->worker->active, 1);
}

static int accept_error(struct proxy_accept *a, int err)
{
    struct proxy_loop *loop = a->loop;
    uint64_t now;

    switch (err) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
        return 1;
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
        return 0;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
        /* Out of descriptors or memory: stop accepting for a moment rather
         * than spin on a socket that stays readable; log at most once a second. */
        now = proxy_now_ms();
        if (now - loop->emfile_logged_ms >= 1000) {
            proxy_log_error("listener %s: accept: %s; pausing accepts for %d ms",
                            a->listener->conf->name, proxy_sock_strerror(err), ACCEPT_RETRY_MS);
            loop->emfile_logged_ms = now;
        }
        proxy_loop_pause_accepts(loop, NULL, ACCEPT_RETRY_MS);
        return 1;
    default:
        proxy_log_error("listener %s: accept: %s", a->listener->conf->name,
                        proxy_sock_strerror(err));
        proxy_loop_pause_accepts(loop, a, ACCEPT_RETRY_MS);
        return 1;
    }
}

static void accept_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_accept *a = arg;
    struct proxy_loop *loop = a->loop;
    struct proxy_worker *w = loop->worker;
    struct proxy_listener *l = a->listener;

    proxy_loop_worked(loop);
    for (int i = 0; i < ACCEPT_BATCH && a->watching; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        enum slot s = slot_take(w, l);
        int cfd;

        if (s != SLOT_OK) {
            proxy_loop_pause_accepts(loop, s == SLOT_GLOBAL_FULL ? NULL : a, ACCEPT_RETRY_MS);
            return;
        }
        cfd = proxy_accept(fd, (struct sockaddr *)&ss, &len);
        if (cfd < 0) {
            int err = errno;

            proxy_listener_release(loop, l);
            if (accept_error(a, err))
                return;
            continue;
        }
        atomic_fetch_add_explicit(&l->total, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&w->total, 1, memory_order_relaxed);
        proxy_conn_start(loop, l, cfd, &ss, len);
    }
}

int proxy_accept_init(struct proxy_accept *a, struct proxy_loop *loop,
                      struct proxy_listener *l, int fd)
{
    memset(a, 0, sizeof(*a));
    a->loop = loop;
    a->listener = l;
    a->fd = proxy_dup_cloexec(fd);
    if (a->fd < 0)
        return -1;
    if (event_assign(&a->ev, loop->base, a->fd, EV_READ | EV_PERSIST, accept_cb, a) != 0) {
        proxy_sock_close(a->fd);
        a->fd = -1;
        return -1;
    }
    return 0;
}

void proxy_accept_watch(struct proxy_accept *a, int on)
{
    if (a->fd < 0)
        return;
    if (on && !a->watching) {
        if (event_add(&a->ev, NULL) != 0) {
            proxy_log_error("listener %s: cannot watch socket", a->listener->conf->name);
            return;
        }
        a->watching = 1;
    } else if (!on && a->watching) {
        event_del(&a->ev);
        a->watching = 0;
    }
}

void proxy_accept_close(struct proxy_accept *a)
{
    proxy_accept_watch(a, 0);
    if (a->fd >= 0 && proxy_sock_close(a->fd) != 0)
        proxy_log_debug("close accept fd %d: %s", a->fd, strerror(errno));
    a->fd = -1;
}
