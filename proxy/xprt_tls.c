/*
 * xprt_tls.c - TLS on one side: plaintext in and out of the records that
 * tls_io.c moves between baton's buffers, OpenSSL and the socket.
 *
 * Unlike plain TCP this transport holds bytes of its own both ways: whole
 * records received but not decrypted yet (pending_in: the socket will not
 * announce them again) and records produced that the socket did not take
 * (pending_out).  It never splices: every byte has to go through OpenSSL.
 */
#include "xprt.h"

#include <errno.h>
#include <stdlib.h>

#include "connection.h"
#include "log.h"
#include "tls.h"

static ssize_t tls_recv(struct proxy_side *s, char *buf, size_t n, int *may_recv)
{
    char why[256];
    size_t got = 0;
    ssize_t r;

    for (int received = 0;; received = 1) {
        switch (proxy_tls_read(s->tls, buf, n, &got, why, sizeof(why))) {
        case PROXY_TLS_OK:
            return (ssize_t)got;
        case PROXY_TLS_EOF:
            return 0;
        case PROXY_TLS_WANT:
            break;
        default:
            proxy_log_debug("TLS read on fd %d: %s", s->fd, why);
            errno = EPROTO;
            return -1;
        }
        /* Reading may have produced records of its own (key update). */
        if (proxy_tls_pending_out(s->tls) && proxy_tls_flush(s->tls, s->fd) == 0)
            proxy_side_watch_write(s, 1);
        /* One recv per call: the caller decides whether to read on. */
        if (received || !*may_recv)
            return -2;
        r = proxy_tls_recv(s->tls, s->fd, why, sizeof(why));
        if (s->tls->rx_short)
            *may_recv = 0;
        if (r == -2 || r == -1 || r == 0)
            return r;   /* 0: a FIN without close_notify ends the stream all the same */
        if (r < 0) {
            proxy_log_debug("TLS on fd %d: %s", s->fd, why);
            errno = EPROTO;
            return -1;
        }
    }
}

/* Takes all n bytes (encrypted into records) or fails. */
static ssize_t tls_send(struct proxy_side *s, const char *buf, size_t n, int more)
{
    char why[256];

    if (proxy_tls_write(s->tls, buf, n, why, sizeof(why)) != PROXY_TLS_OK) {
        proxy_log_debug("TLS write on fd %d: %s", s->fd, why);
        errno = EPROTO;
        return -1;
    }
    return proxy_tls_flush(s->tls, s->fd) < 0 ? -1 : (ssize_t)n;
}

/* The buffers are tls_io.c's whichever record layer fills them: these
 * serve both TLS transports (xprt_tlsrec.c too). */
int proxy_xprt_tls_flush(struct proxy_side *s)
{
    return proxy_tls_flush(s->tls, s->fd);
}

int proxy_xprt_tls_pending_out(const struct proxy_side *s)
{
    return proxy_tls_pending_out(s->tls);
}

int proxy_xprt_tls_pending_in(const struct proxy_side *s)
{
    return proxy_tls_pending_in(s->tls);
}

/* close_notify, then the FIN once it is out. */
static int tls_shutw(struct proxy_side *s, int fin)
{
    int r;

    proxy_tls_close_notify(s->tls);
    r = proxy_tls_flush(s->tls, s->fd);
    if (r <= 0)
        return r;
    return proxy_xprt_raw.shutw(s, fin);
}

static void tls_relaying(struct proxy_side *s)
{
    proxy_tls_write_through(s->tls, s->fd);
}

void proxy_xprt_tls_release(struct proxy_side *s)
{
    proxy_tls_free(s->tls);
    free(s->tls);
    proxy_xprt_raw_attach(s);
}

const struct proxy_xprt proxy_xprt_tls = {
    .name = "tls",
    .caps = 0,
    .recv = tls_recv,
    .send = tls_send,
    .flush = proxy_xprt_tls_flush,
    .pending_out = proxy_xprt_tls_pending_out,
    .pending_in = proxy_xprt_tls_pending_in,
    .shutw = tls_shutw,
    .relaying = tls_relaying,
    .release = proxy_xprt_tls_release,
    .splice_in = NULL,
    .splice_out = NULL,
};

int proxy_xprt_tls_attach(struct proxy_side *s, SSL *ssl)
{
    struct proxy_tls *t = calloc(1, sizeof(*t));

    if (t == NULL) {
        SSL_free(ssl);
        return -1;
    }
    if (proxy_tls_init(t, ssl) != 0) {   /* frees ssl */
        free(t);
        return -1;
    }
    s->tls = t;
    s->xprt = &proxy_xprt_tls;
    return 0;
}
