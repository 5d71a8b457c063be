/*
 * xprt_tlsrec.c - TLS on one side once its handshake is over: every record
 * sealed and opened by baton's own record layer (tls_record.h), through
 * the input and output buffers the handshake used (tls_io.c).
 *
 * A side moves here from xprt_tls.c when OpenSSL's handshake completes on
 * a suite the layer carries; the SSL is freed then.  A connection that
 * arrives from the previous generation starts here.  Records are opened in
 * place in the input buffer, and their plaintext is read from there; what
 * the socket does not take of the records sealed is queued.
 */
#include "xprt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "connection.h"
#include "log.h"
#include "tls.h"
#include "tls_record.h"

/* Seals what the record layer owes the peer (a KeyUpdate answer, a
 * no_renegotiation warning) and sends it: 0, or -1 (errno set). */
static int control_out(struct proxy_side *s)
{
    struct proxy_tls *t = s->tls;
    size_t cap = proxy_tlsrec_write_bound(t->rec, 0);
    uint8_t *room = proxy_tls_out_room(t, cap);
    char why[256];
    ssize_t n;

    if (room == NULL) {
        errno = ENOMEM;
        return -1;
    }
    n = proxy_tlsrec_flush_control(t->rec, room, cap, why, sizeof(why));
    if (n < 0) {
        proxy_log_debug("TLS on fd %d: %s", s->fd, why);
        errno = EPROTO;
        return -1;
    }
    proxy_tls_out_commit(t, (size_t)n);
    if (proxy_tls_flush(t, s->fd) == 0)
        proxy_side_watch_write(s, 1);
    return 0;
}

/* Queues an alert (close_notify, or a fatal one): 0, or -1 (errno set). */
static int alert_queue(struct proxy_side *s, uint8_t level, uint8_t desc)
{
    struct proxy_tls *t = s->tls;
    size_t cap = proxy_tlsrec_write_bound(t->rec, 2);
    uint8_t *room = proxy_tls_out_room(t, cap);
    char why[256];
    ssize_t n;

    if (room == NULL) {
        errno = ENOMEM;
        return -1;
    }
    n = proxy_tlsrec_alert(t->rec, level, desc, room, cap, why, sizeof(why));
    if (n < 0) {
        proxy_log_debug("TLS alert %u on fd %d: %s", desc, s->fd, why);
        errno = EPROTO;
        return -1;
    }
    proxy_tls_out_commit(t, (size_t)n);
    return 0;
}

/* Opens one record: 1 plaintext to read, 0 nothing to read (a control
 * record or empty data), 2 close_notify, -1 fatal (errno set). */
static int open_record(struct proxy_side *s, uint8_t *rec, size_t len)
{
    struct proxy_tls *t = s->tls;
    uint8_t *pt, alert = 0;
    size_t ptlen;
    char why[256];

    switch (proxy_tlsrec_read(t->rec, rec, len, &pt, &ptlen, &alert, why, sizeof(why))) {
    case PROXY_TLSREC_DATA:
        t->ptoff = (uint32_t)(pt - t->in);
        t->ptlen = (uint32_t)ptlen;
        return ptlen > 0;
    case PROXY_TLSREC_CONTROL:
        if (t->rec->flags & (PROXY_TLSREC_F_KU_OWED | PROXY_TLSREC_F_NORENEG_OWED))
            return control_out(s);
        return 0;
    case PROXY_TLSREC_CLOSED:
        return 2;
    default:
        proxy_log_debug("TLS record on fd %d: %s", s->fd, why);
        /* Sent if the socket takes it now; the connection ends anyway. */
        if (alert != 0 && alert_queue(s, 2, alert) == 0)
            (void)proxy_tls_flush(t, s->fd);
        errno = EPROTO;
        return -1;
    }
}

static ssize_t rec_recv(struct proxy_side *s, char *buf, size_t n, int *may_recv)
{
    struct proxy_tls *t = s->tls;
    char why[256];
    uint8_t *rec;
    size_t len;
    ssize_t r;

    for (int received = 0;;) {
        if (t->ptlen > 0) {
            size_t take = t->ptlen < n ? t->ptlen : n;

            memcpy(buf, t->in + t->ptoff, take);
            t->ptoff += (uint32_t)take;
            t->ptlen -= (uint32_t)take;
            proxy_tls_in_release_if_empty(t);
            return (ssize_t)take;
        }
        if (t->rec->flags & PROXY_TLSREC_F_PEER_CLOSED)
            return 0;
        if (proxy_tls_next_record(t, &rec, &len)) {
            r = open_record(s, rec, len);
            if (r < 0)
                return -1;
            continue;
        }
        proxy_tls_in_release_if_empty(t);
        /* One recv per call: the caller decides whether to read on. */
        if (received || !*may_recv)
            return -2;
        received = 1;
        r = proxy_tls_recv(t, s->fd, why, sizeof(why));
        if (t->rx_short)
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

/* Takes all n bytes (sealed into records) or fails. */
static ssize_t rec_send(struct proxy_side *s, const char *buf, size_t n, int more)
{
    struct proxy_tls *t = s->tls;
    size_t cap = proxy_tlsrec_write_bound(t->rec, n);
    uint8_t *out = proxy_tls_seal_buffer(cap);
    char why[256];
    ssize_t w;

    (void)more;
    if (out == NULL) {
        errno = ENOMEM;
        return -1;
    }
    w = proxy_tlsrec_write(t->rec, (const uint8_t *)buf, n, out, cap, why, sizeof(why));
    if (w < 0) {
        proxy_log_debug("TLS write on fd %d: %s", s->fd, why);
        errno = EPROTO;
        return -1;
    }
    if (proxy_tls_send_records(t, s->fd, out, (size_t)w) != 0) {
        errno = ENOMEM;
        return -1;
    }
    return proxy_tls_flush(t, s->fd) < 0 ? -1 : (ssize_t)n;
}

/* close_notify, then the FIN once it is out. */
static int rec_shutw(struct proxy_side *s, int fin)
{
    struct proxy_tls *t = s->tls;
    int r;

    if (!(t->rec->flags & PROXY_TLSREC_F_CLOSE_SENT) &&
        alert_queue(s, 1, PROXY_TLS_ALERT_CLOSE_NOTIFY) != 0)
        return -1;
    r = proxy_tls_flush(t, s->fd);
    if (r <= 0)
        return r;
    return proxy_xprt_raw.shutw(s, fin);
}

static void rec_relaying(struct proxy_side *s)
{
    (void)s;   /* records always go straight out when nothing is queued */
}

const struct proxy_xprt proxy_xprt_tlsrec = {
    .name = "tlsrec",
    .caps = 0,
    .recv = rec_recv,
    .send = rec_send,
    .flush = proxy_xprt_tls_flush,
    .pending_out = proxy_xprt_tls_pending_out,
    .pending_in = proxy_xprt_tls_pending_in,
    .shutw = rec_shutw,
    .relaying = rec_relaying,
    .release = proxy_xprt_tls_release,
    .splice_in = NULL,
    .splice_out = NULL,
};

int proxy_xprt_tlsrec_take(struct proxy_side *s)
{
    char why[256];
    int r = proxy_tls_take_over(s->tls, why, sizeof(why));

    if (r == 0)
        proxy_log_debug("TLS on fd %d stays on OpenSSL's record layer (it drains at "
                        "upgrades): %s", s->fd, why);
    if (r != 1)
        return r;
    s->xprt = &proxy_xprt_tlsrec;
    /* A KeyUpdate OpenSSL still owed goes out now. */
    if (s->tls->rec->flags & PROXY_TLSREC_F_KU_OWED)
        return control_out(s) == 0 ? 1 : -1;
    return 1;
}

void proxy_xprt_tlsrec_attach(struct proxy_side *s, struct proxy_tls *t)
{
    s->tls = t;
    s->xprt = &proxy_xprt_tlsrec;
}
