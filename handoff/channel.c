/*
 * channel.c - framed, non-blocking message channel over a handoff transport.
 */
#include "channel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "transport.h"

#define OUT_MAX   ((size_t)64 << 20)   /* queued output bound */
#define READ_MIN  ((size_t)16 << 10)   /* grow rbuf below this much free room */
/* A complete message of maximum size plus one read's worth of the next. */
#define RBUF_MAX  ((size_t)HANDOFF_HDR_LEN + HANDOFF_MAX_PAYLOAD + ((size_t)64 << 10))
/* One batch: messages whose bytes go out in one send with their handles.
 * A larger message goes alone, as it would anyway take sends of its own. */
#define BATCH_BYTES ((size_t)64 << 10)

struct handoff_outmsg {
    struct handoff_outmsg *next;
    size_t   len;
    int      fds[HANDOFF_MAX_FDS];   /* our dups, closed once sent (or acked); or lent */
    uint8_t  kinds[HANDOFF_MAX_FDS];
    unsigned nfds;
    int      lent;                   /* fds are the caller's: never closed here */
    struct handoff_held *held;       /* flagged HANDOFF_HDR_ACK_HANDLES: where the
                                        fds wait once sent (allocated up front) */
    uint8_t  data[];
};

/* Sets a header flag of a queued message (big-endian at offset 6; every
 * flag the channel sets is in the low byte). */
static void out_flag(struct handoff_outmsg *o, uint16_t flag)
{
    o->data[7] |= (uint8_t)flag;
}

/* o's handles are the first of a send: a batching peer is told where each
 * send's handles start (HANDOFF_HDR_HANDLES_FIRST). */
static void out_first_handles(struct handoff_channel *ch, struct handoff_outmsg *o)
{
    if (ch->peer_batches && o->nfds > 0)
        out_flag(o, HANDOFF_HDR_HANDLES_FIRST);
}

static void close_fds(int *fds, unsigned n)
{
    unsigned i;

    for (i = 0; i < n; i++) {
        handoff_transport_close(fds[i]);
        fds[i] = -1;
    }
}

void handoff_channel_set_peer_caps(struct handoff_channel *ch, uint32_t caps)
{
    unsigned most = handoff_transport_send_fds_max();

    ch->peer_acks = (caps & HANDOFF_CAP_HANDLE_ACK) != 0;
    ch->peer_batches = (caps & HANDOFF_CAP_FD_BATCH) != 0;
    ch->batch_fds = (caps & HANDOFF_CAP_FD_BATCH) != 0 && most > HANDOFF_MAX_FDS ? most : 0;
}

int handoff_channel_init(struct handoff_channel *ch, int fd, pid_t peer_pid)
{
    memset(ch, 0, sizeof(*ch));
    ch->fd = -1;
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    /* On failure the caller still owns fd; the channel may own another
     * handle of the same socket (handoff_transport_adopt). */
    if ((fd = handoff_transport_adopt(fd)) == -1)
        return -1;
    ch->fd = fd;
    ch->peer_pid = peer_pid;
    ch->seq = 1;
    return 0;
}

static void out_pop(struct handoff_channel *ch)
{
    struct handoff_outmsg *o = ch->out_head;

    ch->out_head = o->next;
    if (ch->out_head == NULL)
        ch->out_tail = NULL;
    ch->out_bytes -= o->len - ch->out_off;
    ch->out_off = 0;
    if (o == ch->ack_out)
        ch->ack_out = NULL;
    if (!o->lent)
        close_fds(o->fds, o->nfds);
    free(o->held);
    handoff_cleanse(o->data, o->len);
    free(o);
}

/* Closes the handles of the oldest n held messages (n <= ch->nheld). */
static void held_release(struct handoff_channel *ch, unsigned n)
{
    struct handoff_held *h;

    while (n-- > 0 && (h = ch->held_head) != NULL) {
        ch->held_head = h->next;
        if (ch->held_head == NULL)
            ch->held_tail = NULL;
        ch->nheld--;
        close_fds(h->fds, h->nfds);
        free(h);
    }
}

void handoff_channel_close(struct handoff_channel *ch)
{
    while (ch->out_head != NULL)
        out_pop(ch);
    held_release(ch, ch->nheld);
    close_fds(ch->fdq, ch->nfdq);
    ch->nfdq = 0;
    if (ch->rbuf != NULL)
        handoff_cleanse(ch->rbuf, ch->rcap);
    free(ch->rbuf);
    ch->rbuf = NULL;
    free(ch->batch);   /* cleansed after each send */
    ch->batch = NULL;
    ch->roff = ch->rlen = ch->rcap = 0;
    if (ch->fd >= 0)
        handoff_transport_close(ch->fd);
    ch->fd = -1;
}

/* Output */

/* Accepts only what handoff_msg_finish produced, so a half-built message
 * cannot desynchronise the stream. */
static int msg_sendable(const struct handoff_msg *m)
{
    struct handoff_hdr h;
    char why[128];

    if (m->failed || m->buf == NULL || m->len < HANDOFF_HDR_LEN)
        return 0;
    if (handoff_hdr_decode(m->buf, &h, why, sizeof(why)) == -1)
        return 0;
    return h.len == m->len - HANDOFF_HDR_LEN && h.nfds == m->nfds;
}

static int channel_queue(struct handoff_channel *ch, struct handoff_msg *m, int lend)
{
    struct handoff_outmsg *o;
    unsigned i;

    if (!msg_sendable(m)) {
        errno = EINVAL;
        return -1;
    }
    if (m->len > OUT_MAX - ch->out_bytes) {
        errno = ENOBUFS;
        return -1;
    }
    if ((o = malloc(sizeof(*o) + m->len)) == NULL)
        return -1;
    o->next = NULL;
    o->len = m->len;
    o->nfds = 0;
    o->lent = lend;
    o->held = NULL;
    if (!lend && m->nfds > 0 && ch->peer_acks &&
        (o->held = malloc(sizeof(*o->held))) == NULL) {
        free(o);
        return -1;
    }
    memcpy(o->data, m->buf, m->len);
    if (o->held != NULL)
        out_flag(o, HANDOFF_HDR_ACK_HANDLES);
    /* Dup now: the caller may close its descriptors before we flush. */
    memcpy(o->kinds, m->kinds, sizeof(o->kinds));
    for (i = 0; i < m->nfds && lend; i++)
        o->fds[o->nfds++] = m->fds[i];
    for (i = 0; i < m->nfds && !lend; i++) {
        if ((o->fds[i] = handoff_transport_dup(m->fds[i])) == -1) {
            int saved = errno;

            close_fds(o->fds, o->nfds);
            free(o->held);
            free(o);
            errno = saved;
            return -1;
        }
        o->nfds++;
    }
    if (ch->out_tail != NULL)
        ch->out_tail->next = o;
    else
        ch->out_head = o;
    ch->out_tail = o;
    ch->out_bytes += o->len;
    return 0;
}

int handoff_channel_send(struct handoff_channel *ch, struct handoff_msg *m)
{
    return channel_queue(ch, m, 0);
}

int handoff_channel_send_lent(struct handoff_channel *ch, struct handoff_msg *m)
{
    return channel_queue(ch, m, 1);
}

/* A flagged message's handles went out: they wait for the peer's ack. */
static void held_add(struct handoff_channel *ch, struct handoff_outmsg *o)
{
    struct handoff_held *h = o->held;

    o->held = NULL;
    h->next = NULL;
    h->nfds = o->nfds;
    memcpy(h->fds, o->fds, sizeof(int) * o->nfds);
    if (ch->held_tail != NULL)
        ch->held_tail->next = h;
    else
        ch->held_head = h;
    ch->held_tail = h;
    ch->nheld++;
}

/* A message's first byte went out, and with it its handles: the channel's
 * own duplicates now wait for the peer's HANDLE_ACK, or close (SCM_RIGHTS
 * holds its own references in flight, for a peer that does not ack); lent
 * ones stay the caller's. */
static void out_started(struct handoff_channel *ch, struct handoff_outmsg *o)
{
    if (o == ch->ack_out)
        ch->ack_out = NULL;   /* on its way: no more counts added to it */
    if (o->held != NULL)
        held_add(ch, o);
    else if (!o->lent)
        close_fds(o->fds, o->nfds);
    o->nfds = 0;
}

/* n bytes of the queue went out. */
static void out_advance(struct handoff_channel *ch, size_t n)
{
    while (n > 0) {
        struct handoff_outmsg *o = ch->out_head;
        size_t take = o->len - ch->out_off < n ? o->len - ch->out_off : n;

        ch->out_off += take;
        ch->out_bytes -= take;
        n -= take;
        if (ch->out_off == o->len)
            out_pop(ch);
    }
}

/*
 * The messages at the head of the queue, gathered into ch->batch with all
 * their handles, as long as they fit one batch.  How many (0: the head
 * goes out alone, from its own bytes).
 */
static unsigned batch_gather(struct handoff_channel *ch, size_t *len, int *fds, uint8_t *kinds,
                             unsigned *nfds)
{
    struct handoff_outmsg *o = ch->out_head;
    unsigned nmsg = 0;

    if (ch->batch_fds == 0 || ch->out_off != 0 || o->next == NULL ||
        o->len + o->next->len > BATCH_BYTES)
        return 0;
    if (ch->batch == NULL && (ch->batch = malloc(BATCH_BYTES)) == NULL)
        return 0;   /* one at a time then */
    *len = 0;
    *nfds = 0;
    for (; o != NULL && *len + o->len <= BATCH_BYTES && *nfds + o->nfds <= ch->batch_fds;
         o = o->next, nmsg++) {
        /* The head may be a message whose handles went with an earlier,
         * partial send: the first one with handles of its own starts this
         * send's. */
        if (*nfds == 0)
            out_first_handles(ch, o);
        memcpy(ch->batch + *len, o->data, o->len);
        *len += o->len;
        memcpy(fds + *nfds, o->fds, sizeof(int) * o->nfds);
        memcpy(kinds + *nfds, o->kinds, o->nfds);
        *nfds += o->nfds;
    }
    return nmsg;
}

/* Sends one batch; as handoff_transport_send. */
static ssize_t batch_send(struct handoff_channel *ch, unsigned nmsg, size_t len, const int *fds,
                          const uint8_t *kinds, unsigned nfds)
{
    ssize_t n = handoff_transport_send(ch->fd, ch->peer_pid, ch->batch, len, fds, kinds, nfds);
    struct handoff_outmsg *o = ch->out_head;

    handoff_cleanse(ch->batch, len);   /* CONN messages carry TLS secrets */
    if (n <= 0)
        return n;
    /* Every handle of the batch rode on its first byte. */
    for (unsigned i = 0; i < nmsg; i++, o = o->next)
        out_started(ch, o);
    return n;
}

int handoff_channel_flush(struct handoff_channel *ch)
{
    int fds[HANDOFF_BATCH_FDS];
    uint8_t kinds[HANDOFF_BATCH_FDS];
    struct handoff_outmsg *o;
    unsigned nmsg, nfds;
    size_t len;
    ssize_t n;

    while ((o = ch->out_head) != NULL) {
        if ((nmsg = batch_gather(ch, &len, fds, kinds, &nfds)) > 0) {
            n = batch_send(ch, nmsg, len, fds, kinds, nfds);
        } else {
            /* Descriptors ride on a message's first byte only. */
            int first = ch->out_off == 0;

            if (first)
                out_first_handles(ch, o);
            n = handoff_transport_send(ch->fd, ch->peer_pid, o->data + ch->out_off,
                                       o->len - ch->out_off, first ? o->fds : NULL,
                                       o->kinds, first ? o->nfds : 0);
            if (n > 0 && first)
                out_started(ch, o);
        }
        if (n == -1)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        if (n == 0)
            return 0;
        out_advance(ch, (size_t)n);
    }
    return 1;
}

int handoff_channel_pending(const struct handoff_channel *ch)
{
    return ch->out_head != NULL;
}

/* Input */

/* The unparsed bytes to the front: once per read, rather than a move of
 * everything behind each message taken (a batch brings a hundred). */
static void rbuf_compact(struct handoff_channel *ch)
{
    if (ch->roff == 0)
        return;
    memmove(ch->rbuf, ch->rbuf + ch->roff, ch->rlen);
    handoff_cleanse(ch->rbuf + ch->rlen, ch->roff);
    ch->roff = 0;
}

int handoff_channel_inject(struct handoff_channel *ch, const void *p, size_t n)
{
    uint8_t *buf;

    if (n == 0)
        return 0;
    rbuf_compact(ch);
    if (ch->rlen + n > ch->rcap) {
        buf = handoff_resize(ch->rbuf, ch->rlen, ch->rlen + n);
        if (buf == NULL)
            return -1;
        ch->rbuf = buf;
        ch->rcap = ch->rlen + n;
    }
    memcpy(ch->rbuf + ch->rlen, p, n);
    ch->rlen += n;
    return 0;
}

static int rbuf_grow(struct handoff_channel *ch)
{
    size_t cap;
    uint8_t *p;

    rbuf_compact(ch);
    if (ch->rcap - ch->rlen >= READ_MIN)
        return 0;
    if (ch->rcap >= RBUF_MAX) {
        /* Full only if the caller reads without draining messages. */
        if (ch->rlen < ch->rcap)
            return 0;
        errno = ENOBUFS;
        return -1;
    }
    cap = ch->rcap == 0 ? (size_t)64 << 10 : ch->rcap * 2;
    if (cap > RBUF_MAX)
        cap = RBUF_MAX;
    if ((p = handoff_resize(ch->rbuf, ch->rlen, cap)) == NULL)
        return -1;
    ch->rbuf = p;
    ch->rcap = cap;
    return 0;
}

ssize_t handoff_channel_read(struct handoff_channel *ch)
{
    ssize_t n;

    if (rbuf_grow(ch) == -1)
        return -1;
    /* Leave room for what one receive can deliver so none get dropped. */
    if (ch->nfdq + HANDOFF_RECV_FDS > HANDOFF_FDQ_MAX) {
        errno = ENOBUFS;
        return -1;
    }
    n = handoff_transport_recv(ch->fd, ch->rbuf + ch->rlen, ch->rcap - ch->rlen,
                               ch->fdq, &ch->nfdq, HANDOFF_FDQ_MAX);
    if (n == -1)
        return errno == EAGAIN || errno == EWOULDBLOCK ? -2 : -1;
    if (n == 0)
        ch->eof = 1;
    ch->rlen += (size_t)n;
    return n;
}

static void fdq_drop(struct handoff_channel *ch, unsigned n)
{
    ch->nfdq -= n;
    memmove(ch->fdq, ch->fdq + n, sizeof(int) * ch->nfdq);
}

/*
 * A message's descriptors, from the queue into in->fds; or in->fds_lost,
 * for its reader to refuse it, where the transport lost them (a
 * HANDOFF_FD_LOST where the first lost one would be: those before it are
 * closed).  From a batching peer the rest of that send's are lost too:
 * every later message up to the next one flagged HANDOFF_HDR_HANDLES_FIRST.
 * -1 with why when fewer arrived than the message declares.
 */
static int fds_take(struct handoff_channel *ch, const struct handoff_hdr *h,
                    struct handoff_in *in, char *why, size_t whylen)
{
    unsigned k = 0;

    if (h->nfds == 0)
        return 0;
    if (!ch->peer_batches || (h->flags & HANDOFF_HDR_HANDLES_FIRST))
        ch->send_lost = 0;   /* its handles came in a send of their own */
    if (ch->send_lost) {
        in->fds_lost = 1;
        return 0;
    }
    while (k < ch->nfdq && k < h->nfds && ch->fdq[k] != HANDOFF_FD_LOST)
        k++;
    if (k < ch->nfdq && k < h->nfds) {
        for (unsigned i = 0; i < k; i++)
            handoff_transport_close(ch->fdq[i]);
        fdq_drop(ch, k + 1);
        in->fds_lost = 1;
        ch->send_lost = ch->peer_batches;
        return 0;
    }
    if (ch->nfdq < h->nfds) {
        snprintf(why, whylen, "%s message declares %u descriptor%s but only %u arrived",
                 handoff_type_name(h->type), (unsigned)h->nfds, h->nfds == 1 ? "" : "s",
                 ch->nfdq);
        return -1;
    }
    memcpy(in->fds, ch->fdq, sizeof(int) * h->nfds);
    fdq_drop(ch, h->nfds);
    return 0;
}

static int next_one(struct handoff_channel *ch, struct handoff_in *in, char *why,
                    size_t whylen)
{
    struct handoff_hdr h;
    size_t total;
    unsigned i;

    memset(in, 0, sizeof(*in));
    for (i = 0; i < HANDOFF_MAX_FDS; i++)
        in->fds[i] = -1;

    if (ch->rlen < HANDOFF_HDR_LEN) {
        if (ch->eof && ch->rlen > 0) {
            snprintf(why, whylen, "peer closed the channel inside a message header "
                     "(%zu of %u bytes)", ch->rlen, HANDOFF_HDR_LEN);
            return -1;
        }
        return 0;
    }
    if (handoff_hdr_decode(ch->rbuf + ch->roff, &h, why, whylen) == -1)
        return -1;
    total = HANDOFF_HDR_LEN + (size_t)h.len;
    if (ch->rlen < total) {
        if (ch->eof) {
            snprintf(why, whylen, "peer closed the channel inside a %s message "
                     "(%zu of %zu bytes)", handoff_type_name(h.type), ch->rlen, total);
            return -1;
        }
        return 0;
    }
    if (fds_take(ch, &h, in, why, whylen) != 0)
        return -1;
    if (h.len > 0) {
        if ((in->payload = malloc(h.len)) == NULL) {
            snprintf(why, whylen, "out of memory for a %u-byte %s payload",
                     (unsigned)h.len, handoff_type_name(h.type));
            for (i = 0; i < h.nfds; i++)
                handoff_transport_close(in->fds[i]);
            return -1;
        }
        memcpy(in->payload, ch->rbuf + ch->roff + HANDOFF_HDR_LEN, h.len);
    }
    in->hdr = h;
    in->nfds = h.nfds;
    handoff_cleanse(ch->rbuf + ch->roff, total);
    ch->rlen -= total;
    ch->roff = ch->rlen > 0 ? ch->roff + total : 0;
    return 1;
}

/* One more flagged message taken: counted into the HANDLE_ACK not sent yet,
 * or a new one.  0 or -1. */
static int ack_queue(struct handoff_channel *ch)
{
    struct handoff_handle_ack v = { 1 };
    struct handoff_msg m;
    uint8_t *p;
    uint32_t n;
    int r;

    if (ch->ack_out != NULL) {
        p = ch->ack_out->data + HANDOFF_HDR_LEN;
        n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (n < UINT32_MAX) {
            n++;
            p[0] = (uint8_t)(n >> 24), p[1] = (uint8_t)(n >> 16);
            p[2] = (uint8_t)(n >> 8), p[3] = (uint8_t)n;
            return 0;
        }
    }
    if (handoff_encode_handle_ack(&m, ch->seq, &v) != 0)
        return -1;
    r = channel_queue(ch, &m, 0);
    handoff_msg_free(&m);
    if (r != 0)
        return -1;
    ch->seq++;
    ch->ack_out = ch->out_tail;
    return 0;
}

/* The peer holds its own handles of that many more messages: ours close.
 * More than are held is no error: a master that re-executed itself (Linux)
 * left its held duplicates behind with its image, and the peer's answers
 * to them may still come. */
static int ack_take(struct handoff_channel *ch, struct handoff_in *in, char *why,
                    size_t whylen)
{
    struct handoff_handle_ack v;

    if (handoff_decode_handle_ack(in, &v, why, whylen) != 0)
        return -1;
    held_release(ch, v.messages < ch->nheld ? v.messages : ch->nheld);
    return 0;
}

int handoff_channel_next(struct handoff_channel *ch, struct handoff_in *in,
                         char *why, size_t whylen)
{
    int r;

    while ((r = next_one(ch, in, why, whylen)) == 1 && in->hdr.type == HANDOFF_HANDLE_ACK) {
        r = ack_take(ch, in, why, whylen);
        handoff_in_free(in);
        if (r != 0)
            return -1;
    }
    if (r != 1 || !(in->hdr.flags & HANDOFF_HDR_ACK_HANDLES) || in->nfds == 0)
        return r;
    /* Its handles exist here now (or never will: fds_lost); the giver may
     * close its own. */
    if (ack_queue(ch) != 0) {
        snprintf(why, whylen, "cannot queue the HANDLE_ACK of a %s message: %s",
                 handoff_type_name(in->hdr.type), strerror(errno));
        handoff_in_free(in);
        return -1;
    }
    return 1;
}

/* Blocking helpers.  A negative timeout_ms waits without limit; the
 * deadline is on the monotonic clock so wall-clock steps cannot cut a
 * start-up handshake short or stretch it. */

static long long now_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
        return 0;
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left before deadline (-1: none); 0 once it has passed. */
static int time_left(long long deadline)
{
    long long rem;

    if (deadline < 0)
        return -1;
    rem = deadline - now_ms();
    if (rem <= 0)
        return 0;
    return rem > 0x7fffffff ? 0x7fffffff : (int)rem;
}

static int wait_ready(struct handoff_channel *ch, int for_write, long long deadline,
                      int timeout_ms, const char *what, char *why, size_t whylen)
{
    int r = handoff_transport_wait(ch->fd, for_write, time_left(deadline));

    if (r == 0)
        snprintf(why, whylen, "timed out after %d ms %s", timeout_ms, what);
    else if (r == -1)
        snprintf(why, whylen, "waiting to %s: %s", for_write ? "send" : "receive",
                 strerror(errno));
    return r == 1 ? 0 : -1;
}

int handoff_channel_send_sync(struct handoff_channel *ch, struct handoff_msg *m,
                              int timeout_ms, char *why, size_t whylen)
{
    long long deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : -1;
    int r;

    if (handoff_channel_send(ch, m) == -1) {
        snprintf(why, whylen, "cannot queue %s message: %s",
                 m->buf != NULL && m->len >= HANDOFF_HDR_LEN ?
                 handoff_type_name((uint16_t)(m->buf[4] << 8 | m->buf[5])) : "unbuilt",
                 strerror(errno));
        return -1;
    }
    while ((r = handoff_channel_flush(ch)) != 1) {
        if (r == -1) {
            snprintf(why, whylen, "send: %s", strerror(errno));
            return -1;
        }
        if (wait_ready(ch, 1, deadline, timeout_ms, "sending", why, whylen) == -1)
            return -1;
    }
    return 0;
}

int handoff_channel_recv_sync(struct handoff_channel *ch, struct handoff_in *in,
                              int timeout_ms, char *why, size_t whylen)
{
    long long deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : -1;
    ssize_t n;
    int r;

    for (;;) {
        if ((r = handoff_channel_next(ch, in, why, whylen)) != 0)
            return r;
        if (ch->eof) {
            snprintf(why, whylen, "peer closed the channel");
            return -1;
        }
        /* Acknowledgements of what came so far go out meanwhile. */
        if (ch->out_head != NULL && handoff_channel_flush(ch) == -1) {
            snprintf(why, whylen, "send: %s", strerror(errno));
            return -1;
        }
        n = handoff_channel_read(ch);
        if (n >= 0)
            continue;
        if (n == -1) {
            snprintf(why, whylen, "receive: %s", strerror(errno));
            return -1;
        }
        if (wait_ready(ch, 0, deadline, timeout_ms, "waiting for a message", why,
                       whylen) == -1)
            return -1;
    }
}
