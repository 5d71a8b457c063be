/*
 * conn_transfer.c - freeze, thaw and adopt (conn_transfer.h).
 *
 * A frozen connection is plain data plus its sockets: byte counts, the
 * bytes not yet delivered in each direction, half-close state, times
 * (CLOCK_MONOTONIC is the machine's, so they mean the same in the next
 * process), and names instead of pointers into a configuration.
 */
#include "conn_transfer.h"

#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "clienthello.h"
#include "listener.h"
#include "log.h"
#include "loop.h"
#include "splice.h"
#include "tls_transfer.h"
#include "worker.h"
#include "xprt.h"

int proxy_conn_movable(const struct proxy_conn *c, int tls)
{
    if (c->xfer != PROXY_XFER_NONE)
        return 0;
    if (!tls && (c->client.tls != NULL || c->upstream.tls != NULL ||
                 c->state == PROXY_CONN_HANDSHAKE))
        return 0;
    /* A client side in its handshake, or kept on OpenSSL's records. */
    if (c->client.tls != NULL && !proxy_tls_movable(c->client.tls))
        return 0;
    switch (c->state) {
    case PROXY_CONN_RELAYING:
        return c->upstream.tls == NULL || proxy_tls_movable(c->upstream.tls);
    case PROXY_CONN_PROXY_HEADER:
    case PROXY_CONN_CLIENT_HELLO:
    case PROXY_CONN_UPSTREAM_HANDSHAKE:   /* starts over in the next generation */
        return 1;
    case PROXY_CONN_HANDSHAKE:
        /* Only before the first record is whole: nothing was answered. */
        return c->client.tls == NULL;
    case PROXY_CONN_CONNECTING:
        /* A TLS listener's connection connects once its handshake is done. */
        return c->listener != NULL &&
               (c->listener->conf->tls != CONF_TLS_ON || c->client.tls != NULL);
    default:
        return 0;
    }
}

int proxy_conn_handshaking(const struct proxy_conn *c)
{
    return c->xfer == PROXY_XFER_NONE && c->state == PROXY_CONN_HANDSHAKE && c->client.tls != NULL;
}

/* Splice mode keeps bytes in a kernel pipe: they move into the buffer so
 * that only the two sockets cross to the next process. */
static int pipe_unsplice(struct proxy_loop *loop, struct proxy_pipe *p)
{
    uint32_t got = 0;
    char *buf;

    if (p->pfd[0] < 0)
        return 0;
    if (p->inpipe > 0) {
        buf = malloc(p->inpipe);
        if (buf == NULL)
            return -1;
        while (got < p->inpipe) {
            ssize_t n = proxy_splice_pipe_read(p->pfd[0], buf + got, p->inpipe - got);

            if (n <= 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                proxy_log_error("emptying a splice pipe: %s", n == 0 ? "early EOF"
                                                                      : strerror(errno));
                free(buf);
                return -1;
            }
            got += (uint32_t)n;
        }
        p->buf = buf;
        p->off = 0;
        p->len = got;
        p->inpipe = 0;
    }
    proxy_splice_pipe_close(p->pfd);
    p->pfd[0] = p->pfd[1] = -1;
    loop->npipes--;
    return 0;
}

static void dir_freeze(const struct proxy_pipe *p, struct handoff_conn_dir *d)
{
    d->bytes = p->bytes;
    d->flags = (p->eof ? HANDOFF_DIR_EOF : 0) | (p->shut ? HANDOFF_DIR_SHUT : 0) |
               (p->bulk ? HANDOFF_DIR_BULK : 0);
    d->pending = p->buf != NULL ? (const uint8_t *)p->buf + p->off : NULL;
    d->npending = p->buf != NULL ? p->len - p->off : 0;
}

static uint32_t phase_of(enum proxy_conn_state s)
{
    switch (s) {
    case PROXY_CONN_PROXY_HEADER:
        return HANDOFF_PHASE_PROXY_HEADER;
    case PROXY_CONN_CLIENT_HELLO:
        return HANDOFF_PHASE_CLIENT_HELLO;
    case PROXY_CONN_CONNECTING:
        return HANDOFF_PHASE_CONNECTING;
    case PROXY_CONN_HANDSHAKE:
        return HANDOFF_PHASE_TLS_HELLO;
    case PROXY_CONN_UPSTREAM_HANDSHAKE:
        return HANDOFF_PHASE_CONNECT;
    default:
        return HANDOFF_PHASE_RELAYING;
    }
}

static void names_freeze(const struct proxy_conn *c, struct handoff_conn *st)
{
    snprintf(st->listener, sizeof(st->listener), "%s", proxy_conn_listener_name(c));
    if (c->backend != NULL || (c->orphan != NULL && c->orphan->backend[0]))
        snprintf(st->backend, sizeof(st->backend), "%s", proxy_conn_backend_name(c));
    if (c->server != NULL)
        snprintf(st->server, sizeof(st->server), "%s", c->server->conf->name);
    else if (c->orphan != NULL)
        snprintf(st->server, sizeof(st->server), "%s", c->orphan->server);
    /* An upstream handshake that starts over is not an attempt that failed. */
    unsigned ntried = c->state == PROXY_CONN_UPSTREAM_HANDSHAKE && c->ntried > 0 ? c->ntried - 1
                                                                                 : c->ntried;

    for (unsigned i = 0; i < ntried && i < HANDOFF_CONN_TRIED_MAX; i++)
        snprintf(st->tried[st->ntried++], sizeof(st->tried[0]), "%s", c->tried[i]->conf->name);
    snprintf(st->sni, sizeof(st->sni), "%s", c->sni != NULL ? c->sni : "");
    snprintf(st->alpn, sizeof(st->alpn), "%s", c->alpn != NULL ? c->alpn : "");
}

int proxy_conn_freeze(struct proxy_conn *c, struct handoff_conn *st)
{
    int restart;

    /* What relay.c armed must be what the state calls for: thaw and the
     * next generation re-arm from the state alone. */
    assert(proxy_conn_armed(c) == proxy_conn_wanted(c));
    if (pipe_unsplice(c->loop, &c->up) != 0 || pipe_unsplice(c->loop, &c->down) != 0)
        return -1;
    memset(st, 0, sizeof(*st));
    if ((c->client.tls != NULL && proxy_tls_freeze(c->client.tls, &st->client_tls) != 0) ||
        (c->state == PROXY_CONN_RELAYING && c->upstream.tls != NULL &&
         proxy_tls_freeze(c->upstream.tls, &st->server_tls) != 0))
        return -1;
    st->has_client_tls = c->client.tls != NULL;
    st->has_server_tls = c->state == PROXY_CONN_RELAYING && c->upstream.tls != NULL;
    st->armed = proxy_conn_armed(c);
    proxy_conn_disarm(c);
    st->id = c->xfer_id;
    st->phase = phase_of(c->state);
    restart = c->state == PROXY_CONN_UPSTREAM_HANDSHAKE;
    st->flags = (c->connected && !restart ? HANDOFF_CONN_F_CONNECTED : 0) |
                (c->client.fin_seen ? HANDOFF_CONN_F_CLIENT_FIN : 0) |
                (c->upstream.fin_seen ? HANDOFF_CONN_F_SERVER_FIN : 0);
    st->handoffs = c->handoffs;
    st->idle_timeout_ms = c->idle_timeout_ms;
    st->start_ms = c->start_ms;
    st->last_ms = c->last_ms;
    st->deadline_ms = c->state == PROXY_CONN_RELAYING || restart ? 0 : c->deadline_ms;
    memcpy(st->peer, &c->peer, c->peerlen);
    st->peerlen = c->peerlen;
    memcpy(st->local, &c->local, c->locallen);
    st->locallen = c->locallen;
    names_freeze(c, st);
    dir_freeze(&c->up, &st->up);
    dir_freeze(&c->down, &st->down);
    st->prefix = c->prefix;
    st->prefixlen = c->prefixlen;
    st->client_fd = c->client.fd;
    st->server_fd = restart ? -1 : c->upstream.fd;
    if (restart)
        st->server[0] = '\0';
    c->xfer = PROXY_XFER_FROZEN;
    return 0;
}

void proxy_conn_thaw(struct proxy_conn *c)
{
    /* Nothing was sent or received while it was frozen: the same state
     * calls for the same events. */
    c->xfer = PROXY_XFER_STAYS;
    proxy_conn_resume(c);
}

/* ---- the receiving side ------------------------------------------------- */

static struct proxy_listener *find_listener(struct proxy_worker *w, const char *name)
{
    for (size_t i = 0; i < w->nlisteners; i++)
        if (strcmp(w->listeners[i].conf->name, name) == 0)
            return &w->listeners[i];
    return NULL;
}

static struct proxy_backend *find_backend(struct proxy_worker *w, const char *name)
{
    for (size_t i = 0; name[0] != '\0' && i < w->nbackends; i++)
        if (strcmp(w->backends[i].conf->name, name) == 0)
            return &w->backends[i];
    return NULL;
}

static struct proxy_server *find_server(struct proxy_backend *b, const char *name)
{
    for (size_t i = 0; b != NULL && name[0] != '\0' && i < b->nservers; i++)
        if (strcmp(b->servers[i].conf->name, name) == 0)
            return &b->servers[i];
    return NULL;
}

/* Whether this configuration can carry the connection on from its phase;
 * names why not.  Relaying needs nothing of it (a missing listener,
 * backend or server makes an orphan); a setup phase needs its listener as
 * it was, and a connect its server. */
static int adopt_check(const struct proxy_conn *c, const struct handoff_conn *st, char *why,
                       size_t n)
{
    const struct proxy_listener *l = c->listener;

    switch (st->phase) {
    case HANDOFF_PHASE_RELAYING:
        return 0;
    case HANDOFF_PHASE_PROXY_HEADER:
        if (l != NULL && l->conf->accept_proxy)
            return 0;
        snprintf(why, n, "listener %s does not take PROXY headers here", st->listener);
        return -1;
    case HANDOFF_PHASE_CLIENT_HELLO:
        if (l != NULL && l->conf->tls == CONF_TLS_PASSTHROUGH)
            return 0;
        snprintf(why, n, "listener %s is not a passthrough listener here", st->listener);
        return -1;
    case HANDOFF_PHASE_TLS_HELLO:
        if (l != NULL && l->conf->tls == CONF_TLS_ON && !st->has_client_tls)
            return 0;
        snprintf(why, n, "listener %s does not terminate TLS here", st->listener);
        return -1;
    case HANDOFF_PHASE_CONNECT:
        if (l != NULL && c->backend != NULL && st->server_fd < 0 && !st->has_server_tls)
            return 0;
        snprintf(why, n, "backend %s (listener %s) is not here", st->backend, st->listener);
        return -1;
    default:
        if (l != NULL && (l->conf->tls != CONF_TLS_ON || st->has_client_tls) && c->server != NULL)
            return 0;
        snprintf(why, n, "server %s of backend %s (listener %s) is not here", st->server,
                 st->backend, st->listener);
        return -1;
    }
}

static enum proxy_conn_state state_of(uint32_t phase)
{
    switch (phase) {
    case HANDOFF_PHASE_PROXY_HEADER:
        return PROXY_CONN_PROXY_HEADER;
    case HANDOFF_PHASE_CLIENT_HELLO:
        return PROXY_CONN_CLIENT_HELLO;
    case HANDOFF_PHASE_CONNECTING:
    case HANDOFF_PHASE_CONNECT:        /* no server socket yet: resume connects */
        return PROXY_CONN_CONNECTING;
    case HANDOFF_PHASE_TLS_HELLO:
        return PROXY_CONN_HANDSHAKE;
    default:
        return PROXY_CONN_RELAYING;
    }
}

/* A side arrives on baton's record layer, or as plain TCP. */
static int side_adopt(struct proxy_side *s, int has_tls, const struct handoff_tls *h, char *why,
                      size_t n)
{
    struct proxy_tls *t;

    if (!has_tls) {
        proxy_xprt_raw_attach(s);
        return 0;
    }
    if ((t = proxy_tls_adopt(h, why, n)) == NULL)
        return -1;
    proxy_xprt_tlsrec_attach(s, t);
    return 0;
}

static int dir_adopt(struct proxy_pipe *p, const struct handoff_conn_dir *d)
{
    proxy_pipe_init(p);
    p->bytes = d->bytes;
    p->eof = (d->flags & HANDOFF_DIR_EOF) != 0;
    p->shut = (d->flags & HANDOFF_DIR_SHUT) != 0;
    p->bulk = (d->flags & HANDOFF_DIR_BULK) != 0;
    if (d->npending == 0)
        return 0;
    p->buf = malloc(d->npending);
    if (p->buf == NULL)
        return -1;
    memcpy(p->buf, d->pending, d->npending);
    p->len = d->npending;
    return 0;
}

static char *strdup_or_null(const char *s, int *failed)
{
    char *d;

    if (s[0] == '\0')
        return NULL;
    if ((d = strdup(s)) == NULL)
        *failed = 1;
    return d;
}

/* Names this configuration lacks are kept for the log; counts as an orphan. */
static int adopt_names(struct proxy_conn *c, const struct handoff_conn *st)
{
    struct proxy_worker *w = c->loop->worker;

    for (uint32_t i = 0; i < st->ntried && c->ntried < PROXY_MAX_ATTEMPTS; i++) {
        struct proxy_server *s = find_server(c->backend, st->tried[i]);

        if (s != NULL)
            c->tried[c->ntried++] = s;
    }
    if (c->listener != NULL && (st->backend[0] == '\0' || c->backend != NULL) &&
        (st->server[0] == '\0' || c->server != NULL))
        return 0;
    c->orphan = calloc(1, sizeof(*c->orphan));
    if (c->orphan == NULL)
        return -1;
    snprintf(c->orphan->listener, sizeof(c->orphan->listener), "%s", st->listener);
    snprintf(c->orphan->backend, sizeof(c->orphan->backend), "%s", st->backend);
    snprintf(c->orphan->server, sizeof(c->orphan->server), "%s", st->server);
    atomic_fetch_add_explicit(&w->orphans, 1, memory_order_relaxed);
    return 0;
}

static int adopt_fields(struct proxy_conn *c, const struct handoff_conn *st)
{
    int failed = 0;

    c->state = state_of(st->phase);
    c->handoffs = st->handoffs + 1;
    c->start_ms = st->start_ms;
    c->last_ms = st->last_ms;
    c->deadline_ms = st->deadline_ms;
    if (st->peerlen > sizeof(c->peer) || st->locallen > sizeof(c->local))
        return -1;
    memcpy(&c->peer, st->peer, st->peerlen);
    c->peerlen = st->peerlen;
    memcpy(&c->local, st->local, st->locallen);
    c->locallen = st->locallen;
    c->client.fin_seen = (st->flags & HANDOFF_CONN_F_CLIENT_FIN) != 0;
    c->upstream.fin_seen = (st->flags & HANDOFF_CONN_F_SERVER_FIN) != 0;
    c->sni = strdup_or_null(st->sni, &failed);
    c->alpn = strdup_or_null(st->alpn, &failed);
    if (st->prefixlen > 0) {
        c->prefix = malloc(st->prefixlen);
        if (c->prefix == NULL)
            return -1;
        memcpy(c->prefix, st->prefix, st->prefixlen);
        c->prefixlen = c->prefixcap = st->prefixlen;
    }
    if (c->state == PROXY_CONN_CLIENT_HELLO) {
        /* The ClientHello is read again from its first byte. */
        c->hello = malloc(sizeof(*c->hello));
        if (c->hello == NULL)
            return -1;
        proxy_clienthello_init(c->hello);
    }
    if (failed || dir_adopt(&c->up, &st->up) != 0 || dir_adopt(&c->down, &st->down) != 0)
        return -1;
    return adopt_names(c, st);
}

/* Frees what adopt_fields allocated; the descriptors stay the caller's. */
static void adopt_undo(struct proxy_conn *c)
{
    free(c->up.buf);
    free(c->down.buf);
    free(c->prefix);
    free(c->sni);
    free(c->alpn);
    if (c->hello != NULL) {
        proxy_clienthello_release(c->hello);
        free(c->hello);
    }
    free(c->orphan);
    free(c);
}

/* Slots as an accepted connection takes them, past the limits if need be:
 * the connection exists already; accepting waits instead. */
static void adopt_count(struct proxy_conn *c)
{
    struct proxy_worker *w = c->loop->worker;

    if (c->listener != NULL)
        atomic_fetch_add(&c->listener->active, 1);
    atomic_fetch_add(&w->active, 1);
    atomic_fetch_add_explicit(&w->adopted, 1, memory_order_relaxed);
    if (c->connected)
        atomic_fetch_add_explicit(&c->server->active, 1, memory_order_relaxed);
}

struct proxy_conn *proxy_conn_adopt(struct proxy_loop *loop, struct handoff_conn *st,
                                    char *why, size_t n)
{
    struct proxy_conn *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        snprintf(why, n, "out of memory");
        return NULL;
    }
    c->loop = loop;
    c->listener = find_listener(loop->worker, st->listener);
    c->backend = find_backend(loop->worker, st->backend);
    c->server = find_server(c->backend, st->server);
    if (adopt_check(c, st, why, n) != 0) {
        free(c);
        return NULL;
    }
    if (adopt_fields(c, st) != 0) {
        if (c->orphan != NULL)
            atomic_fetch_sub_explicit(&loop->worker->orphans, 1, memory_order_relaxed);
        adopt_undo(c);
        snprintf(why, n, "out of memory");
        return NULL;
    }
    /* The listener's timeout as configured now; an orphan keeps its own. */
    c->idle_timeout_ms = c->listener != NULL ? c->listener->conf->idle_timeout_ms
                                             : st->idle_timeout_ms;
    c->connected = (st->flags & HANDOFF_CONN_F_CONNECTED) != 0 && c->server != NULL;
    if (side_adopt(&c->client, st->has_client_tls, &st->client_tls, why, n) != 0 ||
        side_adopt(&c->upstream, st->has_server_tls, &st->server_tls, why, n) != 0) {
        if (c->client.tls != NULL)
            c->client.xprt->release(&c->client);
        if (c->orphan != NULL)
            atomic_fetch_sub_explicit(&loop->worker->orphans, 1, memory_order_relaxed);
        adopt_undo(c);
        return NULL;
    }
    c->client.fd = st->client_fd;
    c->upstream.fd = st->server_fd;
    st->client_fd = st->server_fd = -1;
    c->xfer = PROXY_XFER_ADOPTED;
    proxy_conn_bind_events(c);
    proxy_conn_link(loop, c);
    adopt_count(c);
    return c;
}
