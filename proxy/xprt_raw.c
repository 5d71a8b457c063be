/*
 * xprt_raw.c - plain TCP: the stream's bytes are the socket's bytes.
 *
 * Every operation is the system call itself, so the plain copy path costs
 * one recv and one send per chunk, as without a transport layer.  Only
 * this transport can splice: the kernel moves the bytes socket -> pipe ->
 * socket and never shows them to baton, which a record layer would have
 * to see.
 */
#include "xprt.h"

#include <errno.h>
#include "port_net.h"

#include "connection.h"
#include "netutil.h"
#include "splice.h"

static int would_block(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

static ssize_t raw_recv(struct proxy_side *s, char *buf, size_t n, int *may_recv)
{
    ssize_t r;

    if (!*may_recv)
        return -2;
    /* Level-triggered polling reports whatever is left after this read, so
     * one recv per wake-up is enough (and fair to the other connections). */
    *may_recv = 0;
    r = proxy_recv(s->fd, buf, n, 0);
    if (r < 0 && would_block())
        return -2;
    return r;
}

static ssize_t raw_send(struct proxy_side *s, const char *buf, size_t n, int more)
{
    ssize_t w = proxy_send(s->fd, buf, n, PROXY_SEND_FLAGS | (more ? PROXY_SEND_MORE : 0));

    if (w < 0)
        return would_block() ? 0 : -1;
    return w;
}

static int raw_flush(struct proxy_side *s)
{
    return 1;   /* nothing is ever queued here */
}

static int raw_pending(const struct proxy_side *s)
{
    return 0;
}

static int raw_shutw(struct proxy_side *s, int fin)
{
    /* ENOTCONN: the peer is gone already, and so is the need for a FIN. */
    if (fin && proxy_shutdown(s->fd, SHUT_WR) != 0 && errno != ENOTCONN)
        return -1;
    return 1;
}

static void raw_nothing(struct proxy_side *s)
{
}

static ssize_t raw_splice_in(struct proxy_side *s, int pipe_wr, size_t max)
{
    ssize_t n = proxy_splice_in(s->fd, pipe_wr, max);

    return n < 0 && would_block() ? -2 : n;
}

static ssize_t raw_splice_out(struct proxy_side *s, int pipe_rd, size_t n)
{
    ssize_t w = proxy_splice_out(pipe_rd, s->fd, n);

    return w < 0 && would_block() ? -2 : w;
}

const struct proxy_xprt proxy_xprt_raw = {
    .name = "tcp",
    .caps = PROXY_XPRT_SPLICE,
    .recv = raw_recv,
    .send = raw_send,
    .flush = raw_flush,
    .pending_out = raw_pending,
    .pending_in = raw_pending,
    .shutw = raw_shutw,
    .relaying = raw_nothing,
    .release = raw_nothing,
    .splice_in = raw_splice_in,
    .splice_out = raw_splice_out,
};

void proxy_xprt_raw_attach(struct proxy_side *s)
{
    s->xprt = &proxy_xprt_raw;
    s->tls = NULL;
}
