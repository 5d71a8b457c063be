/*
 * relay.c - moving bytes for one direction of a connection.
 *
 * Bytes are read into the loop's shared scratch buffer and written to the
 * other side at once; only when the other side cannot take them all is a
 * per-connection buffer allocated for the rest, and the source is not read
 * again until it has drained.  An idle connection therefore holds no buffer,
 * and backpressure is one buffer deep (the high-water mark is buffer_size).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "connection.h"
#include "log.h"
#include "loop.h"
#include "netutil.h"
#include "worker.h"

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

static enum proxy_end side_end(const struct proxy_conn *c, const struct proxy_side *s)
{
    return s == &c->client ? PROXY_END_CLIENT_CLOSE : PROXY_END_SERVER_CLOSE;
}

/* Passes the FIN on once everything before it has been delivered; the
 * connection is over when both directions have done so. */
static int pipe_pass_eof(struct proxy_conn *c, struct proxy_side *dst, struct proxy_pipe *p)
{
    if (!p->eof || p->shut || p->buf != NULL)
        return 0;
    if (shutdown(dst->fd, SHUT_WR) != 0 && errno != ENOTCONN) {
        proxy_log_debug("shutdown(fd %d): %s", dst->fd, strerror(errno));
        proxy_conn_close(c, side_end(c, dst));
        return -1;
    }
    p->shut = 1;
    if (c->up.shut && c->down.shut) {
        proxy_conn_close(c, c->end);
        return -1;
    }
    return 0;
}

/* The destination failed: nothing more can be delivered either way. */
static int relay_fail(struct proxy_conn *c, struct proxy_side *s, const char *op)
{
    if (errno != EPIPE && errno != ECONNRESET)
        proxy_log_debug("%s(fd %d): %s", op, s->fd, strerror(errno));
    proxy_conn_close(c, c->end != PROXY_END_NONE ? c->end : side_end(c, s));
    return -1;
}

int proxy_relay_read(struct proxy_conn *c, struct proxy_side *src, struct proxy_side *dst,
                     struct proxy_pipe *p)
{
    struct proxy_loop *loop = c->loop;
    ssize_t n, w;

    n = recv(src->fd, loop->scratch, loop->scratch_len, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return 0;
        return relay_fail(c, src, "recv");
    }
    c->last_ms = proxy_coarse_now_ms();
    if (n == 0) {
        p->eof = 1;
        if (c->end == PROXY_END_NONE)
            c->end = side_end(c, src);
        proxy_side_watch_read(src, 0);
        return pipe_pass_eof(c, dst, p);
    }
    p->bytes += (uint64_t)n;
    w = send(dst->fd, loop->scratch, (size_t)n, MSG_NOSIGNAL);
    if (w < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return relay_fail(c, dst, "send");
        w = 0;
    }
    if (w == n)
        return 0;
    p->buf = malloc(loop->scratch_len);
    if (p->buf == NULL) {
        proxy_log_error("out of memory buffering %zd bytes", n - w);
        proxy_conn_close(c, PROXY_END_ERROR);
        return -1;
    }
    memcpy(p->buf, loop->scratch + w, (size_t)(n - w));
    p->off = 0;
    p->len = (uint32_t)(n - w);
    proxy_side_watch_read(src, 0);
    proxy_side_watch_write(dst, 1);
    return 0;
}

int proxy_relay_write(struct proxy_conn *c, struct proxy_side *src, struct proxy_side *dst,
                      struct proxy_pipe *p)
{
    ssize_t w;

    if (p->buf == NULL) {
        proxy_side_watch_write(dst, 0);
        return 0;
    }
    w = send(dst->fd, p->buf + p->off, p->len - p->off, MSG_NOSIGNAL);
    if (w < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return 0;
        return relay_fail(c, dst, "send");
    }
    c->last_ms = proxy_coarse_now_ms();
    p->off += (uint32_t)w;
    if (p->off < p->len)
        return 0;
    free(p->buf);
    p->buf = NULL;
    p->off = p->len = 0;
    proxy_side_watch_write(dst, 0);
    if (p->eof)
        return pipe_pass_eof(c, dst, p);
    proxy_side_watch_read(src, 1);
    return 0;
}
