/*
 * relay.c - moving bytes for one direction of a connection.
 *
 * Copy mode: bytes are read into the loop's shared scratch buffer and
 * written to the other side at once; only when the other side cannot take
 * them all is a per-connection buffer allocated for the rest, and the
 * source is not read again until it has drained.  An idle connection holds
 * no buffer, and backpressure is one buffer deep (high-water = buffer_size).
 *
 * Splice mode (Linux): once a read fills the whole scratch buffer the
 * direction is carrying bulk data, and it switches to splice(2) through a
 * pipe of its own, so the payload never crosses into user space.  The same
 * rule holds: while the pipe holds bytes, the source is not read.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connection.h"
#include "log.h"
#include "loop.h"
#include "netutil.h"
#include "tls.h"
#include "worker.h"

#define SPLICE_PIPE_SIZE (256u * 1024u)

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
        close(p->pfd[0]);
        close(p->pfd[1]);
        p->pfd[0] = p->pfd[1] = -1;
        loop->npipes--;
    }
}

static int pipe_pending(const struct proxy_pipe *p)
{
    return p->buf != NULL || p->inpipe > 0;
}

/* Switches a bulk direction to splice mode when allowed; stays in copy
 * mode (which always works) when pipes are disabled, exhausted or fail. */
static void pipe_try_splice(struct proxy_loop *loop, struct proxy_pipe *p)
{
    p->bulk = 0;
    if (!loop->worker->conf.global.splice || loop->npipes >= loop->max_pipes)
        return;
    if (pipe2(p->pfd, O_NONBLOCK | O_CLOEXEC) != 0) {
        proxy_log_debug("pipe2 for splice: %s", strerror(errno));
        p->pfd[0] = p->pfd[1] = -1;
        return;
    }
    /* A larger pipe moves more per splice call; the default size works too. */
    if (fcntl(p->pfd[1], F_SETPIPE_SZ, SPLICE_PIPE_SIZE) < 0)
        proxy_log_debug("F_SETPIPE_SZ: %s", strerror(errno));
    loop->npipes++;
}

static enum proxy_end side_end(const struct proxy_conn *c, const struct proxy_side *s)
{
    return s == &c->client ? PROXY_END_CLIENT_CLOSE : PROXY_END_SERVER_CLOSE;
}

/* Passes the FIN on once everything before it has been delivered; the
 * connection is over when both directions have done so. */
static int pipe_pass_eof(struct proxy_conn *c, struct proxy_side *dst, struct proxy_pipe *p)
{
    if (!p->eof || p->shut || pipe_pending(p))
        return 0;
    if (dst->tls != NULL) {
        int r;

        /* close_notify, then the FIN once it is out. */
        proxy_tls_close_notify(dst->tls);
        r = proxy_tls_flush(dst->tls, dst->fd);
        if (r < 0) {
            proxy_conn_close(c, side_end(c, dst));
            return -1;
        }
        if (r == 0) {
            proxy_side_watch_write(dst, 1);
            return 0;
        }
    }
    p->shut = 1;
    /* The last direction: closing the socket sends the FIN just the same
     * (its own EOF was read, so nothing unread can turn it into a reset). */
    if (c->up.shut && c->down.shut) {
        proxy_conn_close(c, c->end);
        return -1;
    }
    if (shutdown(dst->fd, SHUT_WR) != 0 && errno != ENOTCONN) {
        proxy_log_debug("shutdown(fd %d): %s", dst->fd, strerror(errno));
        proxy_conn_close(c, side_end(c, dst));
        return -1;
    }
    return 0;
}

/* A socket failed: nothing more can be delivered either way. */
static int relay_fail(struct proxy_conn *c, struct proxy_side *s, const char *op)
{
    if (errno != EPIPE && errno != ECONNRESET)
        proxy_log_debug("%s(fd %d): %s", op, s->fd, strerror(errno));
    proxy_conn_close(c, c->end != PROXY_END_NONE ? c->end : side_end(c, s));
    return -1;
}

static int would_block(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

static int relay_eof(struct proxy_conn *c, struct proxy_side *src, struct proxy_side *dst,
                     struct proxy_pipe *p)
{
    p->eof = 1;
    if (c->end == PROXY_END_NONE)
        c->end = side_end(c, src);
    proxy_side_watch_read(src, 0);
    return pipe_pass_eof(c, dst, p);
}

/* Bytes are pending for dst: wait for it before reading src again. */
static void relay_backpressure(struct proxy_side *src, struct proxy_side *dst)
{
    proxy_side_watch_read(src, 0);
    proxy_side_watch_write(dst, 1);
}

static int splice_out(struct proxy_conn *c, struct proxy_side *dst, struct proxy_pipe *p)
{
    ssize_t w = splice(p->pfd[0], NULL, dst->fd, NULL, p->inpipe,
                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK);

    if (w < 0) {
        if (!would_block())
            return relay_fail(c, dst, "splice");
        return 0;
    }
    p->inpipe -= (uint32_t)w;
    return 0;
}

static int splice_read(struct proxy_conn *c, struct proxy_side *src, struct proxy_side *dst,
                       struct proxy_pipe *p)
{
    ssize_t n = splice(src->fd, NULL, p->pfd[1], NULL, SPLICE_PIPE_SIZE,
                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK);

    if (n < 0) {
        if (would_block())
            return 0;
        return relay_fail(c, src, "splice");
    }
    c->last_ms = proxy_coarse_now_ms();
    if (n == 0)
        return relay_eof(c, src, dst, p);
    p->bytes += (uint64_t)n;
    p->inpipe += (uint32_t)n;
    if (splice_out(c, dst, p) < 0)
        return -1;
    if (p->inpipe > 0)
        relay_backpressure(src, dst);
    return 0;
}

/* ---- TLS on either side -------------------------------------------------- */

#define TLS_READ_ROUNDS 32   /* records decrypted per wake-up before yielding */

/* Plaintext from src: > 0 bytes, 0 EOF, -1 failed (connection closed),
 * -2 nothing available now.  *may_recv is cleared once a recv came back
 * short: the socket is empty then, and asking again would only cost an
 * EAGAIN (level-triggered polling reports what arrives later). */
static ssize_t side_read(struct proxy_conn *c, struct proxy_side *src, char *buf, size_t n,
                         int *may_recv)
{
    char why[256];
    size_t got = 0;
    ssize_t r;

    if (src->tls == NULL) {
        r = recv(src->fd, buf, n, 0);
        if (r < 0)
            return would_block() ? -2 : relay_fail(c, src, "recv");
        return r;
    }
    for (int received = 0;; received = 1) {
        switch (proxy_tls_read(src->tls, buf, n, &got, why, sizeof(why))) {
        case PROXY_TLS_OK:
            return (ssize_t)got;
        case PROXY_TLS_EOF:
            return 0;
        case PROXY_TLS_WANT:
            break;
        default:
            proxy_log_debug("TLS read on fd %d: %s", src->fd, why);
            errno = EPROTO;
            return relay_fail(c, src, "TLS read");
        }
        /* Reading may have produced records of its own (key update). */
        if (proxy_tls_pending_out(src->tls) && proxy_tls_flush(src->tls, src->fd) == 0)
            proxy_side_watch_write(src, 1);
        if (received || !*may_recv)
            return -2;
        r = proxy_tls_recv(src->tls, src->fd, why, sizeof(why));
        if (src->tls->rx_short)
            *may_recv = 0;
        if (r == -2)
            return -2;
        if (r == -1)
            return relay_fail(c, src, "recv");
        if (r == 0)
            return 0;   /* FIN without close_notify: the peer is done all the same */
        if (r < 0) {
            proxy_log_debug("fd %d: %s", src->fd, why);
            errno = EPROTO;
            return relay_fail(c, src, "TLS");
        }
    }
}

/* Hands plaintext to dst: bytes taken (TLS takes all), -1 failed. */
static ssize_t side_write(struct proxy_conn *c, struct proxy_side *dst, const char *buf,
                          size_t n)
{
    char why[256];
    ssize_t w;

    if (dst->tls == NULL) {
        w = send(dst->fd, buf, n, MSG_NOSIGNAL);
        if (w < 0)
            return would_block() ? 0 : relay_fail(c, dst, "send");
        return w;
    }
    if (proxy_tls_write(dst->tls, buf, n, why, sizeof(why)) != PROXY_TLS_OK) {
        proxy_log_debug("TLS write on fd %d: %s", dst->fd, why);
        errno = EPROTO;
        return relay_fail(c, dst, "TLS write");
    }
    if (proxy_tls_flush(dst->tls, dst->fd) < 0)
        return relay_fail(c, dst, "send");
    return (ssize_t)n;
}

static int dst_blocked(const struct proxy_side *dst)
{
    return dst->tls != NULL && proxy_tls_pending_out(dst->tls);
}

static int relay_read_tls(struct proxy_conn *c, struct proxy_side *src, struct proxy_side *dst,
                          struct proxy_pipe *p)
{
    struct proxy_loop *loop = c->loop;
    int may_recv = 1;

    for (int round = 0; round < TLS_READ_ROUNDS; round++) {
        ssize_t n = side_read(c, src, loop->scratch, loop->scratch_len, &may_recv), w;

        if (n == -2)
            return 0;
        if (n < 0)
            return -1;
        c->last_ms = proxy_coarse_now_ms();
        if (n == 0)
            return relay_eof(c, src, dst, p);
        p->bytes += (uint64_t)n;
        w = side_write(c, dst, loop->scratch, (size_t)n);
        if (w < 0)
            return -1;
        if (w < n) {
            p->buf = malloc((size_t)(n - w));
            if (p->buf == NULL) {
                proxy_conn_close(c, PROXY_END_ERROR);
                return -1;
            }
            memcpy(p->buf, loop->scratch + w, (size_t)(n - w));
            p->off = 0;
            p->len = (uint32_t)(n - w);
            relay_backpressure(src, dst);
            return 0;
        }
        if (dst_blocked(dst)) {
            relay_backpressure(src, dst);
            return 0;
        }
        if (src->tls == NULL)
            return 0;   /* level-triggered: the socket says when there is more */
    }
    /* Records may still be waiting inside baton's buffer: come back soon,
     * after other connections had their turn. */
    if (src->reading)
        event_active(&src->rev, EV_READ, 0);
    return 0;
}

/* A short read ends at the FIN, or at an urgent mark with more bytes
 * behind it (SIOCINQ counts only up to the mark): the stream is over only
 * if a peek finds the EOF itself. */
static int src_drained(const struct proxy_side *src)
{
    char b;

    return recv(src->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

int proxy_relay_read(struct proxy_conn *c, struct proxy_side *src, struct proxy_side *dst,
                     struct proxy_pipe *p)
{
    struct proxy_loop *loop = c->loop;
    ssize_t n, w;
    int fin;

    /* Never read past bytes still waiting for dst: order would break. */
    if (pipe_pending(p) || dst_blocked(dst)) {
        relay_backpressure(src, dst);
        return 0;
    }
    if (src->tls != NULL || dst->tls != NULL)
        return relay_read_tls(c, src, dst, p);
    if (p->bulk && p->pfd[0] < 0)
        pipe_try_splice(loop, p);
    if (p->pfd[0] >= 0)
        return splice_read(c, src, dst, p);
    n = recv(src->fd, loop->scratch, loop->scratch_len, 0);
    if (n < 0) {
        if (would_block())
            return 0;
        return relay_fail(c, src, "recv");
    }
    c->last_ms = proxy_coarse_now_ms();
    if (n == 0)
        return relay_eof(c, src, dst, p);
    p->bytes += (uint64_t)n;
    if ((size_t)n == loop->scratch_len)
        p->bulk = 1;
    /* The peer's FIN came behind these bytes: pass it on now, in the same
     * segment as the bytes (MSG_MORE holds them until the shutdown),
     * instead of after one more poll round and read. */
    fin = src->fin_seen && (size_t)n < loop->scratch_len;
    w = send(dst->fd, loop->scratch, (size_t)n, MSG_NOSIGNAL | (fin ? MSG_MORE : 0));
    if (w < 0) {
        if (!would_block())
            return relay_fail(c, dst, "send");
        w = 0;
    }
    if (w == n)
        return fin && src_drained(src) ? relay_eof(c, src, dst, p) : 0;
    p->buf = malloc(loop->scratch_len);
    if (p->buf == NULL) {
        proxy_log_error("out of memory buffering %zd bytes", n - w);
        proxy_conn_close(c, PROXY_END_ERROR);
        return -1;
    }
    memcpy(p->buf, loop->scratch + w, (size_t)(n - w));
    p->off = 0;
    p->len = (uint32_t)(n - w);
    relay_backpressure(src, dst);
    return 0;
}

void proxy_side_wake_if_buffered(struct proxy_side *s)
{
    /* Only an added event may be activated: the connection's close
     * deletes added events, so a queued callback never outlives it. */
    if (s->reading && s->tls != NULL && proxy_tls_pending_in(s->tls))
        event_active(&s->rev, EV_READ, 0);
}

static int relay_drained(struct proxy_conn *c, struct proxy_side *src, struct proxy_side *dst,
                         struct proxy_pipe *p)
{
    proxy_side_watch_write(dst, 0);
    if (p->eof)
        return pipe_pass_eof(c, dst, p);
    proxy_side_watch_read(src, 1);
    proxy_side_wake_if_buffered(src);
    return 0;
}

int proxy_relay_write(struct proxy_conn *c, struct proxy_side *src, struct proxy_side *dst,
                      struct proxy_pipe *p)
{
    ssize_t w;

    if (dst->tls != NULL) {
        int r = proxy_tls_flush(dst->tls, dst->fd);

        if (r < 0)
            return relay_fail(c, dst, "send");
        if (r == 0)
            return 0;
    }
    if (p->inpipe > 0) {
        if (splice_out(c, dst, p) < 0)
            return -1;
        c->last_ms = proxy_coarse_now_ms();
        return p->inpipe > 0 ? 0 : relay_drained(c, src, dst, p);
    }
    if (p->buf == NULL)
        return relay_drained(c, src, dst, p);
    w = side_write(c, dst, p->buf + p->off, p->len - p->off);
    if (w < 0)
        return -1;
    c->last_ms = proxy_coarse_now_ms();
    p->off += (uint32_t)w;
    if (p->off < p->len || dst_blocked(dst))
        return 0;
    free(p->buf);
    p->buf = NULL;
    p->off = p->len = 0;
    return relay_drained(c, src, dst, p);
}
