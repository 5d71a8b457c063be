/*
 * relay.c - moving bytes for one direction of a connection, through the
 * transport of each side (xprt.h: plain TCP, TLS), which the relay does not
 * need to know.
 *
 * Copy mode: bytes are read into the loop's shared scratch buffer and
 * written to the other side at once; only when the other side cannot take
 * them all is a per-connection buffer allocated for the rest, and the
 * source is not read again until it has drained.  An idle connection holds
 * no buffer, and backpressure is one buffer deep (high-water = buffer_size).
 *
 * Splice mode (Linux, both sides plain TCP, i.e. both transports have
 * PROXY_XPRT_SPLICE): once a read fills the whole scratch buffer the
 * direction is carrying bulk data, and it switches to splice(2) through a
 * pipe of its own, so the payload never crosses into user space.  The same
 * rule holds: while the pipe holds bytes, the source is not read.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "port_net.h"
#include <unistd.h>

#include "connection.h"
#include "log.h"
#include "loop.h"
#include "netutil.h"
#include "splice.h"
#include "worker.h"
#include "xprt.h"

#define SPLICE_PIPE_SIZE (256u * 1024u)
/* Reads per wake-up before yielding to other connections.  Only a transport
 * with input of its own (TLS records already received) reads on; plain TCP
 * reads once, since the level-triggered poller reports what is left. */
#define READ_ROUNDS 32

void proxy_side_watch_read(struct proxy_side *s, int on)
{
    if (on && !s->reading) {
        if (event_add(&s->rev, NULL) == 0)
            s->reading = 1;
        else
            proxy_log_error("event_add(read) failed on fd %d", s->fd);
    } else if (!on && s->reading) {
        event_del(&s->rev);
        s->reading = 0;
    }
}

void proxy_side_watch_write(struct proxy_side *s, int on)
{
    if (on && !s->writing) {
        if (event_add(&s->wev, NULL) == 0)
            s->writing = 1;
        else
            proxy_log_error("event_add(write) failed on fd %d", s->fd);
    } else if (!on && s->writing) {
        event_del(&s->wev);
        s->writing = 0;
    }
}

void proxy_pipe_init(struct proxy_pipe *p)
{
    memset(p, 0, sizeof(*p));
    p->pfd[0] = p->pfd[1] = -1;
}

void proxy_pipe_free(struct proxy_loop *loop, struct proxy_pipe *p)
{
    free(p->buf);
    p->buf = NULL;
    if (p->pfd[0] >= 0) {
        proxy_splice_pipe_close(p->pfd);
        p->pfd[0] = p->pfd[1] = -1;
        loop->npipes--;
    }
}

/* Switches a bulk direction to splice mode when allowed; stays in copy
 * mode (which always works) when pipes are disabled, exhausted or fail. */
static void pipe_try_splice(struct proxy_loop *loop, struct proxy_pipe *p)
{
    p->bulk = 0;
    if (!loop->worker->conf.global.splice || !proxy_splice_supported() ||
        loop->npipes >= loop->max_pipes)
        return;
    if (proxy_splice_pipe_open(p->pfd, SPLICE_PIPE_SIZE) != 0) {
        proxy_log_debug("splice pipe: %s", strerror(errno));
        p->pfd[0] = p->pfd[1] = -1;
        return;
    }
    loop->npipes++;
}

static enum proxy_end side_end(const struct proxy_conn *c, const struct proxy_side *s)
{
    return s == &c->client ? PROXY_END_CLIENT_CLOSE : PROXY_END_SERVER_CLOSE;
}

/* Both sides carry the stream unchanged on their sockets: bytes may be
 * spliced, and the FIN seen with the last bytes can go out with them. */
static int kernel_path(const struct proxy_side *src, const struct proxy_side *dst)
{
    return (src->xprt->caps & dst->xprt->caps & PROXY_XPRT_SPLICE) != 0;
}

/*
 * The one rule for which events a direction needs, applied after every
 * change of its state: its source is read while nothing waits for the
 * destination and no EOF came; the destination is watched while bytes, a
 * transport's records or the end of the stream wait for it.  A frozen
 * connection (live handoff) is re-armed from the same rule.
 */
static void relay_want(const struct proxy_side *src, const struct proxy_side *dst,
                       const struct proxy_pipe *p, int *read, int *write)
{
    int waiting = proxy_pipe_pending(p) || dst->xprt->pending_out(dst);

    *read = !p->eof && !waiting;
    *write = waiting || (p->eof && !p->shut);
}

static void relay_arm(struct proxy_side *src, struct proxy_side *dst, const struct proxy_pipe *p)
{
    int read, write;

    relay_want(src, dst, p, &read, &write);
    proxy_side_watch_read(src, read);
    proxy_side_watch_write(dst, write);
}

void proxy_relay_arm(struct proxy_conn *c)
{
    relay_arm(&c->client, &c->upstream, &c->up);
    relay_arm(&c->upstream, &c->client, &c->down);
}

unsigned proxy_relay_wanted(const struct proxy_conn *c)
{
    int cr, uw, ur, cw;

    relay_want(&c->client, &c->upstream, &c->up, &cr, &uw);
    relay_want(&c->upstream, &c->client, &c->down, &ur, &cw);
    return (cr ? PROXY_WANT_CLIENT_READ : 0) | (cw ? PROXY_WANT_CLIENT_WRITE : 0) |
           (ur ? PROXY_WANT_SERVER_READ : 0) | (uw ? PROXY_WANT_SERVER_WRITE : 0);
}

/* Passes the end of the stream on once everything before it has been
 * delivered; the connection is over when both directions have done so. */
static int pipe_pass_eof(struct proxy_conn *c, struct proxy_side *dst, struct proxy_pipe *p)
{
    int last, r;

    if (!p->eof || p->shut || proxy_pipe_pending(p))
        return 0;
    /* The last direction: closing the socket sends the FIN just the same
     * (its own EOF was read, so nothing unread can turn it into a reset). */
    last = (p == &c->up ? c->down.shut : c->up.shut);
    r = dst->xprt->shutw(dst, !last);
    if (r < 0) {
        proxy_log_debug("%s shutdown(fd %d): %s", dst->xprt->name, dst->fd,
                        proxy_sock_strerror(errno));
        proxy_conn_close(c, side_end(c, dst));
        return -1;
    }
    if (r == 0)
        return 0;   /* the transport flushes first: relay_arm watches dst */
    p->shut = 1;
    if (last) {
        proxy_conn_close(c, c->end);
        return -1;
    }
    return 0;
}

/* A socket failed: nothing more can be delivered either way.  Its side
 * ended the connection even if the other side's FIN came first: a server
 * that resets a request after the client's half-close (as the kernel does
 * for a handshake that completed into a full accept queue) is the cause,
 * not the client's orderly SHUT_WR. */
static int relay_fail(struct proxy_conn *c, struct proxy_side *s, const char *op)
{
    if (errno != EPIPE && errno != ECONNRESET)
        proxy_log_debug("%s %s(fd %d): %s", s->xprt->name, op, s->fd,
                        proxy_sock_strerror(errno));
    proxy_conn_close(c, side_end(c, s));
    return -1;
}

static int relay_eof(struct proxy_conn *c, struct proxy_side *src, struct proxy_side *dst,
                     struct proxy_pipe *p)
{
    p->eof = 1;
    if (c->end == PROXY_END_NONE)
        c->end = side_end(c, src);
    if (pipe_pass_eof(c, dst, p) < 0)
        return -1;
    relay_arm(src, dst, p);
    return 0;
}

/* Keeps the n bytes dst did not take, and stops reading src until they
 * are out.  The buffer is always buffer_size (n is at most that). */
static int pipe_keep(struct proxy_conn *c, struct proxy_side *src, struct proxy_side *dst,
                     struct proxy_pipe *p, const char *bytes, size_t n)
{
    p->buf = malloc(c->loop->scratch_len);
    if (p->buf == NULL) {
        proxy_log_error("out of memory buffering %zu bytes", n);
        proxy_conn_close(c, PROXY_END_ERROR);
        return -1;
    }
    memcpy(p->buf, bytes, n);
    p->off = 0;
    p->len = (uint32_t)n;
    relay_arm(src, dst, p);
    return 0;
}

static int splice_out(struct proxy_conn *c, struct proxy_side *dst, struct proxy_pipe *p)
{
    ssize_t w = dst->xprt->splice_out(dst, p->pfd[0], p->inpipe);

    if (w == -2)
        return 0;
    if (w < 0)
        return relay_fail(c, dst, "splice");
    p->inpipe -= (uint32_t)w;
    return 0;
}

static int splice_read(struct proxy_conn *c, struct proxy_side *src, struct proxy_side *dst,
                       struct proxy_pipe *p)
{
    ssize_t n = src->xprt->splice_in(src, p->pfd[1], SPLICE_PIPE_SIZE);

    if (n == -2)
        return 0;
    if (n < 0)
        return relay_fail(c, src, "splice");
    c->last_ms = proxy_coarse_now_ms();
    if (n == 0)
        return relay_eof(c, src, dst, p);
    p->bytes += (uint64_t)n;
    p->inpipe += (uint32_t)n;
    if (splice_out(c, dst, p) < 0)
        return -1;
    if (p->inpipe > 0)
        relay_arm(src, dst, p);
    return 0;
}

/* A short read ends at the FIN, or at an urgent mark with more bytes
 * behind it (SIOCINQ counts only up to the mark): the stream is over only
 * if a peek finds the EOF itself.  Plain TCP only (kernel_path). */
static int src_drained(const struct proxy_side *src)
{
    char b;

    return proxy_recv(src->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

int proxy_relay_read(struct proxy_conn *c, struct proxy_side *src, struct proxy_side *dst,
                     struct proxy_pipe *p)
{
    struct proxy_loop *loop = c->loop;
    int kernel = kernel_path(src, dst), may_recv = 1;

    /* Never read past bytes still waiting for dst: order would break. */
    if (proxy_pipe_pending(p) || dst->xprt->pending_out(dst)) {
        relay_arm(src, dst, p);
        return 0;
    }
    if (kernel && p->bulk && p->pfd[0] < 0)
        pipe_try_splice(loop, p);
    if (p->pfd[0] >= 0)
        return splice_read(c, src, dst, p);
    for (int round = 0; round < READ_ROUNDS; round++) {
        ssize_t n = src->xprt->recv(src, loop->scratch, loop->scratch_len, &may_recv), w;
        int fin = 0;

        if (n == -2)
            return 0;
        if (n < 0)
            return relay_fail(c, src, "recv");
        c->last_ms = proxy_coarse_now_ms();
        if (n == 0)
            return relay_eof(c, src, dst, p);
        p->bytes += (uint64_t)n;
        if (kernel) {
            if ((size_t)n == loop->scratch_len)
                p->bulk = 1;
            /* The peer's FIN came behind these bytes: pass it on now, in
             * the same segment as the bytes (the hint holds them until the
             * shutdown), instead of after one more poll round and read. */
            fin = src->fin_seen && (size_t)n < loop->scratch_len;
        }
        w = dst->xprt->send(dst, loop->scratch, (size_t)n, fin);
        if (w < 0)
            return relay_fail(c, dst, "send");
        if (w < n)
            return pipe_keep(c, src, dst, p, loop->scratch + w, (size_t)(n - w));
        if (fin && src_drained(src))
            return relay_eof(c, src, dst, p);
        if (dst->xprt->pending_out(dst)) {
            relay_arm(src, dst, p);
            return 0;
        }
    }
    /* Records may still be waiting inside the transport's buffer: come
     * back soon, after other connections had their turn. */
    if (src->reading)
        event_active(&src->rev, EV_READ, 0);
    return 0;
}

void proxy_side_wake_if_buffered(struct proxy_side *s)
{
    /* Only an added event may be activated: the connection's close
     * deletes added events, so a queued callback never outlives it. */
    if (s->reading && s->xprt->pending_in(s))
        event_active(&s->rev, EV_READ, 0);
}

static int relay_drained(struct proxy_conn *c, struct proxy_side *src, struct proxy_side *dst,
                         struct proxy_pipe *p)
{
    if (pipe_pass_eof(c, dst, p) < 0)
        return -1;
    relay_arm(src, dst, p);
    proxy_side_wake_if_buffered(src);
    return 0;
}

int proxy_relay_write(struct proxy_conn *c, struct proxy_side *src, struct proxy_side *dst,
                      struct proxy_pipe *p)
{
    int r = dst->xprt->flush(dst);
    ssize_t w;

    if (r < 0)
        return relay_fail(c, dst, "send");
    if (r == 0)
        return 0;
    if (p->inpipe > 0) {
        if (splice_out(c, dst, p) < 0)
            return -1;
        c->last_ms = proxy_coarse_now_ms();
        return p->inpipe > 0 ? 0 : relay_drained(c, src, dst, p);
    }
    if (p->buf == NULL)
        return relay_drained(c, src, dst, p);
    w = dst->xprt->send(dst, p->buf + p->off, p->len - p->off, 0);
    if (w < 0)
        return relay_fail(c, dst, "send");
    c->last_ms = proxy_coarse_now_ms();
    p->off += (uint32_t)w;
    if (p->off < p->len || dst->xprt->pending_out(dst))
        return 0;
    free(p->buf);
    p->buf = NULL;
    p->off = p->len = 0;
    return relay_drained(c, src, dst, p);
}
