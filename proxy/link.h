/*
 * link.h - one link of a live handoff, run by one event loop: the giving
 * side (an old worker's loop freezes its connections and sends them under
 * the receiver's credits) or the taking side (a new worker's loop adopts
 * them).  The protocol is in handoff/conn_msg.h.
 */
#ifndef BATON_PROXY_LINK_H
#define BATON_PROXY_LINK_H

#include <stdint.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "channel.h"
#include "conn_msg.h"

struct proxy_loop;
struct proxy_conn;

#define PROXY_LINK_WINDOW     1024    /* CONN messages in flight per link */
#define PROXY_LINK_STALL_MS   5000    /* no answer this long: the giver takes back */
/* TLS handshakes with clients running at the handoff move if done within
 * this long; the giver looks every PROXY_LINK_POLL_MS. */
#define PROXY_LINK_HANDSHAKE_GRACE_MS 2000
#define PROXY_LINK_POLL_MS    10
/* The giver sends what it froze every PROXY_LINK_STEP connections, and
 * the taker answers every PROXY_LINK_STEP it adopted, so both work at once
 * on different steps of the window instead of taking turns over all of
 * it.  About one batch of a channel's send (HANDOFF_BATCH_FDS / 2). */
#define PROXY_LINK_STEP       120

struct proxy_link {
    struct proxy_loop      *loop;
    struct proxy_link      *next;       /* the loop's links */
    uint32_t                role;       /* enum handoff_link_role */
    uint32_t                peer_gen;
    uint32_t                index;
    struct handoff_channel  ch;
    struct event            rev, wev, timer;
    int                     writing;
    int                     closing;    /* ends once the output is flushed */
    int                     failed;     /* ends at the end of the callback */
    /* One connection's state at a time, frozen or decoded: allocated once
     * (a few KB) rather than per connection; cleansed after each use. */
    struct handoff_conn    *st;
    uint64_t                cpu_start_us;   /* the loop's CPU time when it began */
    /* Giving. */
    int                     tls;        /* the taker takes TLS state (HANDOFF_CAP_TLS) */
    int                     polling;    /* the timer looks for finished handshakes */
    uint64_t                grace_until;
    uint32_t                credits, next_id;
    /* Sent, not answered yet, in the order sent (answers come in that
     * order): a ring of infl_span slots from infl_head, holes NULL. */
    struct proxy_conn      *inflight[PROXY_LINK_WINDOW];
    uint32_t                ninflight, infl_head, infl_span;
    uint64_t                moved, refused;
    int                     done_sent;
    /* Taking. */
    struct handoff_conn_ack *ack;       /* results not sent yet */
    uint32_t                received;   /* CONN since the last CONN_ACK */
    uint64_t                adopted;
    int                     peer_done;
    struct proxy_conn     **pend;       /* adopted, waiting for their release */
    uint32_t                npend, pend_head, pend_cap;
};

/* A LINK the worker received for this loop; 0, or -1 (fd closed). */
int  proxy_link_start(struct proxy_loop *loop, const struct handoff_link *hl);
/* The loop stops (exit, drain timeout): links end, frozen connections are
 * thawed and connections not yet released are forgotten. */
void proxy_link_stop_all(struct proxy_loop *loop);
/* A connection arrived in this loop was released: a giving link of the
 * same loop may now send it on (consecutive reloads). */
void proxy_link_kick(struct proxy_loop *loop);

#endif
