/*
 * worker.h - the worker process: receives its configuration and listening
 * sockets from the master over the handoff channel, runs `threads` event
 * loops that do all proxying, and answers the master's commands.
 */
#ifndef BATON_PROXY_WORKER_H
#define BATON_PROXY_WORKER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "backend.h"
#include "channel.h"
#include "conf.h"
#include "listener.h"
#include "loop.h"

struct proxy_health;

/* One side of a live handoff in this worker: its links (one per loop of
 * the giver), how many ended, the connections they moved and the CPU time
 * of the loops while they were open. */
struct proxy_handoff_tally {
    _Atomic unsigned        links, ended;
    _Atomic uint64_t        conns, cpu_us, started_ms;
    unsigned                peer;        /* the other generation */
};

struct proxy_worker {
    struct conf             conf;
    unsigned                generation;
    uint32_t                caps;         /* handoff capabilities both sides have */

    struct proxy_listener  *listeners;
    size_t                  nlisteners;
    struct proxy_backend   *backends;
    size_t                  nbackends;
    struct proxy_loop      *loops;
    unsigned                nloops;

    _Atomic uint64_t        active;      /* open client connections */
    _Atomic uint64_t        total;
    _Atomic uint64_t        bytes_in;    /* client -> server, closed connections */
    _Atomic uint64_t        bytes_out;
    _Atomic uint64_t        tls_failures; /* failed client handshakes */
    /* Live handoff: connections taken from the previous generation (of them,
     * orphans: their listener, backend or server is gone) and given to the
     * next. */
    _Atomic uint64_t        adopted, orphans, handed_over;
    /* The links of the current handoff, giving to the next generation and
     * taking from the previous one, and what they did. */
    struct proxy_handoff_tally give, take;

    int                     access_fd;   /* -1 = access log off */

    /* Main thread: channel to the master, OS events, loop completion. */
    struct event_base      *base;
    struct handoff_channel  ch;
    struct event           *ch_read_ev, *ch_write_ev;
    struct proxy_osevents  *os;          /* stop, drain asked by the OS */
    struct event           *drain_timer;
    struct proxy_wakeup    *done_wake;   /* poked by each loop thread when it finishes */
    struct event           *log_flush_ev; /* reports counts of rate-limited messages */
    _Atomic unsigned        loops_done;  /* loop threads finished */
    int                     draining;
    int                     refused;     /* the master sent what it must not: exit 1 */
    struct proxy_health    *health;      /* active checks, NULL without */
    struct handoff_server_state carried; /* health from the previous generation */
};

/* A link ended (any loop's thread; role: enum handoff_link_role) after
 * moving `conns` connections, its loop having used cpu_us meanwhile.  The
 * last one of a side logs the handoff's line. */
void proxy_worker_link_ended(struct proxy_worker *w, uint32_t role, uint64_t conns,
                             uint64_t cpu_us);

/* Entry point of `baton --worker FD`; returns the process exit status. */
int proxy_worker_main(int channel_fd);

#endif
