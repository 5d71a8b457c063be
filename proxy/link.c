/*
 * link.c - the two ends of a live handoff link (link.h, conn_msg.h).
 *
 * Giving: wait for credits, then freeze movable connections one by one and
 * send each as a CONN while credits last; CONN_ACK answers say which were
 * adopted (forgotten here, and released to the taker) and which were
 * refused (thawed: they drain here).  When nothing movable is left, send
 * CONN_DONE and end.  An error, EOF, or no answer for PROXY_LINK_STALL_MS
 * takes every connection in flight back.
 *
 * Taking: grant PROXY_LINK_WINDOW credits, adopt each CONN unarmed, answer
 * with CONN_ACK (and as many new credits as CONN came), arm a connection
 * when its CONN_RELEASE comes.  At EOF, connections never released are
 * forgotten: the giver has them.
 */
#include "link.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "conn_transfer.h"
#include "connection.h"
#include "log.h"
#include "loop.h"
#include "netutil.h"
#include "transport.h"
#include "worker.h"

static void link_end(struct proxy_link *k);

/*
 * Every callback ends here: queued output goes out, and a link that failed,
 * or is closing and has nothing left to send, ends.  Nothing below a
 * callback frees a link, so none of them has to check whether it still
 * exists.
 */
static void link_settle(struct proxy_link *k)
{
    int rc = k->failed ? -1 : handoff_channel_flush(&k->ch);

    if (rc < 0 && !k->failed)
        proxy_log_warn("handoff link %u with generation %u: write: %s", k->index, k->peer_gen,
                       strerror(errno));
    if (rc < 0 || (rc == 1 && k->closing)) {
        link_end(k);
        return;
    }
    if (rc == 0 && !k->writing && event_add(&k->wev, NULL) == 0)
        k->writing = 1;
    else if (rc == 1 && k->writing) {
        event_del(&k->wev);
        k->writing = 0;
    }
}

static int link_send(struct proxy_link *k, struct handoff_msg *m, int encoded)
{
    int rc = encoded == 0 ? handoff_channel_send(&k->ch, m) : -1;

    handoff_msg_free(m);
    return rc;
}

/* ---- giving ----------------------------------------------------------- */

static void give_watchdog(struct proxy_link *k)
{
    if (proxy_timer_add_ms(&k->timer, PROXY_LINK_STALL_MS) != 0)
        proxy_log_error("handoff link %u: cannot arm its timer", k->index);
}

/* Everything in flight comes back and runs on here. */
static void give_take_back(struct proxy_link *k, const char *why)
{
    if (k->ninflight > 0 || !k->done_sent)
        proxy_log_warn("handoff to generation %u (link %u) failed: %s; %u connection(s) in "
                       "flight stay here and drain", k->peer_gen, k->index, why,
                       (unsigned)k->ninflight);
    for (uint32_t i = 0; i < k->infl_span; i++) {
        struct proxy_conn *c = k->inflight[(k->infl_head + i) % PROXY_LINK_WINDOW];

        if (c != NULL) {
            proxy_conn_thaw(c);
            k->refused++;
        }
    }
    k->ninflight = k->infl_head = k->infl_span = 0;
    k->done_sent = 1;
}

static struct proxy_conn *scan_from(struct proxy_link *k, struct proxy_conn *c)
{
    struct proxy_loop *loop = k->loop;

    for (; c != NULL; c = c->next)
        if (proxy_conn_movable(c, k->tls)) {
            loop->xfer_scan = c->next;
            return c;
        }
    loop->xfer_scan = NULL;
    return NULL;
}

/* The next movable connection.  The scan goes on from where it stopped, so
 * a window of frozen connections is not looked at again for each one sent;
 * at the end of the list it starts over once, for connections that became
 * movable behind it (arrivals released meanwhile). */
static struct proxy_conn *give_next(struct proxy_link *k)
{
    struct proxy_loop *loop = k->loop;
    struct proxy_conn *c = loop->xfer_scan != NULL ? scan_from(k, loop->xfer_scan) : NULL;

    return c != NULL ? c : scan_from(k, loop->conns);
}

/* TLS handshakes with clients still running: each may move once done, if
 * it is done within the grace (a second pass); the others drain here. */
static int give_waiting_handshakes(struct proxy_link *k)
{
    if (!k->tls || proxy_now_ms() >= k->grace_until)
        return 0;
    for (struct proxy_conn *c = k->loop->conns; c != NULL; c = c->next)
        if (proxy_conn_handshaking(c))
            return 1;
    return 0;
}

/* Connections arriving from a previous generation must be released to us
 * before they can move on. */
static int give_waiting_arrivals(struct proxy_loop *loop)
{
    for (struct proxy_conn *c = loop->conns; c != NULL; c = c->next)
        if (c->xfer == PROXY_XFER_ADOPTED)
            return 1;
    return 0;
}

static int give_one(struct proxy_link *k, struct proxy_conn *c)
{
    struct handoff_conn *st = k->st;
    struct handoff_msg m;
    int rc, encoded;

    c->xfer_id = ++k->next_id;
    if (proxy_conn_freeze(c, st) != 0) {
        c->xfer = PROXY_XFER_STAYS;
        return 0;
    }
    /* Lent, not duplicated: the frozen connection keeps its sockets open
     * until the taker answers, and a link that fails closes its channel
     * before any of them could be closed. */
    encoded = handoff_encode_conn(&m, k->ch.seq, st);
    rc = encoded == 0 ? handoff_channel_send_lent(&k->ch, &m) : 0;
    handoff_msg_free(&m);
    handoff_cleanse(st, sizeof(*st));   /* TLS secrets */
    if (encoded != 0) {
        /* Too large for one message (megabytes pending both ways): it drains. */
        proxy_conn_thaw(c);
        return 0;
    }
    k->ch.seq++;
    if (rc != 0) {
        proxy_conn_thaw(c);
        return -1;
    }
    k->inflight[(k->infl_head + k->infl_span++) % PROXY_LINK_WINDOW] = c;
    k->ninflight++;
    k->credits--;
    return 0;
}

static void give_pump(struct proxy_link *k)
{
    struct proxy_loop *loop = k->loop;
    struct proxy_conn *c = NULL;
    struct handoff_msg m;
    struct handoff_conn_done done = { 0 };

    k->polling = 0;
    while (!k->done_sent && k->credits > 0 && k->infl_span < PROXY_LINK_WINDOW &&
           (c = give_next(k)) != NULL) {
        if (give_one(k, c) != 0) {
            give_take_back(k, "cannot queue a connection");
            break;
        }
        /* The taker starts on this step while the next one freezes. */
        if (k->infl_span % PROXY_LINK_STEP == 0 && handoff_channel_flush(&k->ch) < 0) {
            k->failed = 1;
            return;   /* link_settle ends the link: everything in flight comes back */
        }
    }
    if (!k->done_sent && c == NULL && k->ninflight == 0 && !give_waiting_arrivals(loop) &&
        give_waiting_handshakes(k)) {
        /* Looked at again shortly, until the grace ends. */
        k->polling = 1;
        if (proxy_timer_add_ms(&k->timer, PROXY_LINK_POLL_MS) != 0)
            k->polling = 0;
        return;
    }
    if (!k->done_sent && c == NULL && k->ninflight == 0 && !give_waiting_arrivals(loop)) {
        done.sent = k->next_id;
        k->done_sent = 1;
        k->closing = 1;
        if (link_send(k, &m, handoff_encode_conn_done(&m, k->ch.seq++, &done)) != 0)
            k->failed = 1;
    }
    if (k->ninflight > 0)
        give_watchdog(k);
    else
        evtimer_del(&k->timer);
}

static struct proxy_conn *give_inflight_take(struct proxy_link *k, uint32_t id)
{
    for (uint32_t i = 0; i < k->infl_span; i++) {
        struct proxy_conn **slot = &k->inflight[(k->infl_head + i) % PROXY_LINK_WINDOW];
        struct proxy_conn *c = *slot;

        if (c == NULL || c->xfer_id != id)
            continue;
        *slot = NULL;
        k->ninflight--;
        while (k->infl_span > 0 && k->inflight[k->infl_head] == NULL) {
            k->infl_head = (k->infl_head + 1) % PROXY_LINK_WINDOW;
            k->infl_span--;
        }
        return c;
    }
    return NULL;
}

static void give_ack(struct proxy_link *k, struct handoff_in *in)
{
    struct handoff_conn_ack *ack = malloc(sizeof(*ack));
    struct handoff_conn_release *rel = malloc(sizeof(*rel));
    struct handoff_msg m;
    char why[256];

    if (ack == NULL || rel == NULL || handoff_decode_conn_ack(in, ack, why, sizeof(why)) != 0) {
        give_take_back(k, ack == NULL || rel == NULL ? "out of memory" : why);
        k->failed = 1;
        goto out;
    }
    rel->n = 0;
    for (uint32_t i = 0; i < ack->n; i++) {
        struct proxy_conn *c = give_inflight_take(k, ack->results[i].id);

        if (c == NULL)
            continue;   /* not ours, or taken back already */
        if (ack->results[i].result == HANDOFF_CONN_ADOPTED) {
            rel->ids[rel->n++] = c->xfer_id;
            atomic_fetch_add_explicit(&k->loop->worker->handed_over, 1, memory_order_relaxed);
            k->moved++;
            proxy_conn_forget(c);
        } else {
            k->refused++;
            proxy_conn_thaw(c);
        }
    }
    k->credits += ack->credits;
    if (rel->n > 0 &&
        link_send(k, &m, handoff_encode_conn_release(&m, k->ch.seq++, rel)) != 0) {
        proxy_log_error("handoff link %u: cannot queue a release", k->index);
        k->failed = 1;
        goto out;
    }
    give_pump(k);
out:
    free(ack);
    free(rel);
}

/* ---- taking ------------------------------------------------------------- */

static int take_grant(struct proxy_link *k, uint32_t credits)
{
    struct handoff_msg m;

    k->ack->credits = credits;
    if (link_send(k, &m, handoff_encode_conn_ack(&m, k->ch.seq++, k->ack)) != 0)
        return -1;
    k->ack->n = 0;
    k->received = 0;
    return 0;
}

static int take_pend(struct proxy_link *k, struct proxy_conn *c)
{
    if (k->npend == k->pend_cap) {
        uint32_t cap = k->pend_cap ? k->pend_cap * 2 : PROXY_LINK_WINDOW;
        struct proxy_conn **p = realloc(k->pend, cap * sizeof(*p));

        if (p == NULL)
            return -1;
        k->pend = p;
        k->pend_cap = cap;
    }
    k->pend[k->npend++] = c;
    return 0;
}

static void take_result(struct proxy_link *k, uint32_t id, uint32_t result)
{
    k->ack->results[k->ack->n].id = id;
    k->ack->results[k->ack->n].result = result;
    k->ack->n++;
}

static void take_conn(struct proxy_link *k, struct handoff_in *in)
{
    struct handoff_conn *st = k->st;
    struct proxy_conn *c;
    struct handoff_reader r;
    char why[256];
    uint32_t id = 0;

    k->received++;
    /* The id comes first: even a CONN that cannot be decoded is answered. */
    handoff_reader_init(&r, in->payload, in->hdr.len);
    (void)handoff_get_u32(&r, &id);
    if (handoff_decode_conn(in, st, why, sizeof(why)) != 0) {
        proxy_log_warn("handoff from generation %u: connection %u refused: %s", k->peer_gen,
                       (unsigned)id, why);
        take_result(k, id, HANDOFF_CONN_REFUSED);
        handoff_cleanse(st, sizeof(*st));   /* TLS secrets */
        return;
    }
    c = proxy_conn_adopt(k->loop, st, why, sizeof(why));
    if (c == NULL) {
        proxy_log_warn("handoff from generation %u: connection %u refused: %s", k->peer_gen,
                       (unsigned)id, why);
        proxy_sock_close(st->client_fd);
        if (st->server_fd >= 0)
            proxy_sock_close(st->server_fd);
        take_result(k, id, HANDOFF_CONN_REFUSED);
    } else if (take_pend(k, c) != 0) {
        /* Without a place to wait for its release, it is the giver's. */
        atomic_fetch_sub_explicit(&k->loop->worker->adopted, 1, memory_order_relaxed);
        proxy_conn_forget(c);
        take_result(k, id, HANDOFF_CONN_REFUSED);
    } else {
        c->xfer_id = st->id;
        c->xfer_link = k;
        take_result(k, st->id, HANDOFF_CONN_ADOPTED);
    }
    handoff_cleanse(st, sizeof(*st));
}

/* Adopted connections wait for their release unarmed, in k->pend in the
 * order they came; the giver releases them in the same order, so the one
 * named is nearly always the first. */
static struct proxy_conn *take_find(struct proxy_link *k, uint32_t id)
{
    for (uint32_t i = k->pend_head; i < k->npend; i++) {
        struct proxy_conn *c = k->pend[i];

        if (c == NULL || c->xfer_id != id)
            continue;
        k->pend[i] = NULL;
        while (k->pend_head < k->npend && k->pend[k->pend_head] == NULL)
            k->pend_head++;
        if (k->pend_head == k->npend)
            k->pend_head = k->npend = 0;
        return c;
    }
    return NULL;
}

static void take_release(struct proxy_link *k, struct handoff_in *in)
{
    struct handoff_conn_release *rel = malloc(sizeof(*rel));
    char why[256];

    if (rel == NULL || handoff_decode_conn_release(in, rel, why, sizeof(why)) != 0) {
        proxy_log_warn("handoff from generation %u: %s", k->peer_gen,
                       rel == NULL ? "out of memory" : why);
        free(rel);
        return;
    }
    for (uint32_t i = 0; i < rel->n; i++) {
        struct proxy_conn *c = take_find(k, rel->ids[i]);

        if (c == NULL)
            continue;
        c->xfer = PROXY_XFER_NONE;
        c->xfer_link = NULL;
        k->adopted++;
        proxy_conn_resume(c);
    }
    free(rel);
    proxy_link_kick(k->loop);
}

/* At the end of a taking link: what was never released is the giver's. */
static void take_forget_unreleased(struct proxy_link *k)
{
    for (uint32_t i = k->pend_head; i < k->npend; i++)
        if (k->pend[i] != NULL) {
            atomic_fetch_sub_explicit(&k->loop->worker->adopted, 1, memory_order_relaxed);
            proxy_conn_forget(k->pend[i]);
        }
    k->pend_head = k->npend = 0;
}

/* ---- both --------------------------------------------------------------- */

/* A giver reads CONN_ACK only; a taker CONN, CONN_RELEASE and CONN_DONE. */
static void link_handle(struct proxy_link *k, struct handoff_in *in)
{
    char why[256];
    struct handoff_conn_done done;
    uint16_t type = in->hdr.type;

    if (k->role == HANDOFF_LINK_GIVE && type == HANDOFF_CONN_ACK) {
        give_ack(k, in);
    } else if (k->role == HANDOFF_LINK_TAKE && type == HANDOFF_CONN) {
        take_conn(k, in);
    } else if (k->role == HANDOFF_LINK_TAKE && type == HANDOFF_CONN_RELEASE) {
        take_release(k, in);
    } else if (k->role == HANDOFF_LINK_TAKE && type == HANDOFF_CONN_DONE) {
        if (handoff_decode_conn_done(in, &done, why, sizeof(why)) != 0)
            proxy_log_warn("handoff from generation %u: %s", k->peer_gen, why);
        k->peer_done = 1;
    } else {
        proxy_log_warn("handoff link %u with generation %u: unexpected %s message ignored",
                       k->index, k->peer_gen, handoff_type_name(type));
    }
}

#define LINK_READS_PER_WAKEUP 64   /* each read brings one send's sockets: one CONN or a batch */

static void link_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_link *k = arg;
    struct handoff_in in;
    char why[256];
    ssize_t n = 1;
    int rc = 0, reads = 0;

    /* A CONN's descriptors end a read (the kernel does not merge messages
     * that carry some): read on while there is more, so that one CONN_ACK
     * answers a batch instead of one round trip per connection. */
    while (!k->failed && rc >= 0 && reads++ < LINK_READS_PER_WAKEUP) {
        n = handoff_channel_read(&k->ch);
        if (n == -2 || n == 0 || n == -1)
            break;
        while (!k->failed && (rc = handoff_channel_next(&k->ch, &in, why, sizeof(why))) == 1) {
            link_handle(k, &in);
            handoff_in_free(&in);
        }
        /* A step's answer goes now: the giver forgets and freezes on
         * while the next step is adopted here. */
        if (rc >= 0 && k->role == HANDOFF_LINK_TAKE && k->ack->n >= PROXY_LINK_STEP) {
            if (take_grant(k, k->received) != 0 || handoff_channel_flush(&k->ch) < 0) {
                snprintf(why, sizeof(why), "cannot send an acknowledgement");
                rc = -1;
            }
        }
    }
    if (n == -2 && reads == 1)
        return;
    if (n == -2)
        n = 1;
    if (k->role == HANDOFF_LINK_TAKE && k->ack->n > 0 && take_grant(k, k->received) != 0) {
        snprintf(why, sizeof(why), "cannot queue an acknowledgement");
        rc = -1;
    }
    if (rc < 0 || n <= 0) {
        int expected = k->role == HANDOFF_LINK_GIVE ? k->done_sent : k->peer_done;

        if (rc < 0 || n < 0 || !expected)
            proxy_log_info("handoff link %u with generation %u: %s", k->index, k->peer_gen,
                           rc < 0 ? why : n == 0 ? "closed by the other side" : strerror(errno));
        k->failed = 1;
    }
    if (k->role == HANDOFF_LINK_TAKE && k->peer_done)
        k->closing = 1;
    link_settle(k);
}

static void link_write_cb(evutil_socket_t fd, short what, void *arg)
{
    link_settle(arg);
}

static void link_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_link *k = arg;

    if (k->polling) {
        give_pump(k);
        link_settle(k);
        return;
    }
    give_take_back(k, "no answer from the new generation");
    k->failed = 1;
    link_settle(k);
}

static void link_end(struct proxy_link *k)
{
    struct proxy_loop *loop = k->loop;
    struct proxy_link **pp;

    if (k->role == HANDOFF_LINK_GIVE)
        give_take_back(k, "the link closed");
    else
        take_forget_unreleased(k);
    event_del(&k->rev);
    event_del(&k->wev);
    evtimer_del(&k->timer);
    handoff_channel_close(&k->ch);
    for (pp = &loop->links; *pp != NULL; pp = &(*pp)->next)
        if (*pp == k) {
            *pp = k->next;
            break;
        }
    proxy_worker_link_ended(loop->worker, k->role,
                            k->role == HANDOFF_LINK_GIVE ? k->moved : k->adopted,
                            proxy_thread_cpu_us() - k->cpu_start_us);
    free(k->ack);
    free(k->pend);
    free(k->st);
    free(k);
    proxy_loop_check_done(loop);
}

int proxy_link_start(struct proxy_loop *loop, const struct handoff_link *hl)
{
    struct proxy_link *k = calloc(1, sizeof(*k));

    if (k == NULL || (hl->role == HANDOFF_LINK_TAKE && (k->ack = malloc(sizeof(*k->ack))) == NULL)
        || (k->st = malloc(sizeof(*k->st))) == NULL
        || handoff_channel_init(&k->ch, hl->fd, hl->peer_pid) != 0) {
        proxy_log_error("handoff link %u: cannot set up: %s", hl->index, strerror(errno));
        if (k != NULL) {
            free(k->ack);
            free(k->st);
        }
        free(k);
        handoff_transport_close(hl->fd);
        return -1;
    }
    k->loop = loop;
    k->role = hl->role;
    k->peer_gen = hl->peer_gen;
    k->index = hl->index;
    k->tls = (hl->peer_caps & HANDOFF_CAP_TLS) != 0;
    /* CONN messages then go out in batches (HANDOFF_CAP_FD_BATCH). */
    handoff_channel_set_peer_caps(&k->ch, hl->peer_caps);
    k->grace_until = proxy_now_ms() + PROXY_LINK_HANDSHAKE_GRACE_MS;
    k->cpu_start_us = proxy_thread_cpu_us();
    event_assign(&k->rev, loop->base, k->ch.fd, EV_READ | EV_PERSIST, link_read_cb, k);
    event_assign(&k->wev, loop->base, k->ch.fd, EV_WRITE | EV_PERSIST, link_write_cb, k);
    evtimer_assign(&k->timer, loop->base, link_timer_cb, k);
    k->next = loop->links;
    loop->links = k;
    if (event_add(&k->rev, NULL) != 0)
        k->failed = 1;
    else if (k->role == HANDOFF_LINK_GIVE)
        give_watchdog(k);   /* for the first credits */
    else if ((k->ack->n = 0) == 0 && take_grant(k, PROXY_LINK_WINDOW) != 0)
        k->failed = 1;
    link_settle(k);
    return 0;
}

void proxy_link_stop_all(struct proxy_loop *loop)
{
    while (loop->links != NULL)
        link_end(loop->links);
}

void proxy_link_kick(struct proxy_loop *loop)
{
    for (struct proxy_link *k = loop->links; k != NULL; k = k->next)
        if (k->role == HANDOFF_LINK_GIVE && !k->done_sent) {
            give_pump(k);
            link_settle(k);
            return;
        }
}
