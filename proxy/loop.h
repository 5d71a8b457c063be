/*
 * loop.h - one event-loop thread of the worker.  Each loop owns its
 * connections outright; other threads talk to it only through its command
 * queue and wake-up (wakeup.h), so libevent runs without locks.
 */
#ifndef BATON_PROXY_LOOP_H
#define BATON_PROXY_LOOP_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "backend.h"
#include "listener.h"

/* Commands queued for a loop and not yet run: a few in any real sequence
 * (stop, resume, drain, links...). */
#define PROXY_LOOP_CMDS_MAX 64

struct proxy_worker;
struct proxy_wakeup;
struct proxy_conn;
struct proxy_link;
struct handoff_link;

enum proxy_loop_cmd {
    PROXY_LOOP_STOP_ACCEPTING = 'S',
    PROXY_LOOP_RESUME_ACCEPTING = 'R',
    PROXY_LOOP_DRAIN = 'D',          /* close listeners, exit once idle */
    PROXY_LOOP_DRAIN_TIMEOUT = 'T',  /* close what is left (drain_timeout), exit */
    PROXY_LOOP_EXIT = 'X',           /* fast stop: close everything now */
    PROXY_LOOP_LINKS = 'L'           /* live handoff links are waiting (proxy_loop_add_link) */
};

struct proxy_loop {
    struct proxy_worker  *worker;
    unsigned              index;
    struct event_base    *base;
    pthread_t             thread;
    int                   started;

    struct proxy_accept  *accepts;
    size_t                naccepts;
    int                   accepting;     /* not told to stop accepting */
    int                   draining;
    struct event          retry_ev;      /* resumes paused accepts */
    int                   retry_armed;
    uint64_t              emfile_logged_ms;

    struct proxy_wakeup  *cmd_wake;      /* runs the queued commands in the loop */

    struct proxy_conn    *conns;         /* doubly linked, for drain/stop */
    uint64_t              nconns;
    uint64_t              peak_conns;    /* most at once since the last heap trim */
    struct event          trim_ev;       /* gives freed memory back after a drop */
    int                   trim_armed;
    uint64_t              trim_ms;       /* when the last trim ended (0: none yet) */
    struct proxy_balance *balance;       /* one per backend */
    char                 *scratch;       /* read buffer shared by this loop's conns */
    size_t                scratch_len;
    unsigned              npipes;        /* splice pipes in use (2 fds each) */
    unsigned              max_pipes;

    struct proxy_link    *links;         /* live handoff links this loop runs */
    struct proxy_conn    *xfer_scan;     /* where a giving link looks next */
    pthread_mutex_t       pending_mu;    /* guards the four below (main thread -> loop) */
    struct handoff_link  *pending;       /* links received, not started yet */
    size_t                npending;
    char                  cmds[PROXY_LOOP_CMDS_MAX]; /* enum proxy_loop_cmd, in order */
    unsigned              ncmds;
    int                   finished;      /* the loop ran its last iteration */
    uint64_t              worked;        /* callbacks that did I/O (busy_poll's signal) */
};

int  proxy_loop_init(struct proxy_loop *loop, struct proxy_worker *w, unsigned index);
/* Runs base (the loop's own, or the worker's when it has one loop) until
 * it is told to stop.  With [global] busy_poll, after a turn that did I/O
 * the loop keeps polling without sleeping for that long before it sleeps:
 * waking a sleeping process costs the process that wakes it (the client,
 * the server), and on a VM more than the polls cost (docs/benchmarks.md). */
int  proxy_loop_dispatch(struct proxy_loop *loop, struct event_base *base);
/* A callback of the loop read, wrote, accepted or connected. */
static inline void proxy_loop_worked(struct proxy_loop *loop)
{
    loop->worked++;
}
int  proxy_loop_start(struct proxy_loop *loop);
/* A single loop runs on the worker's main thread instead (no threads at
 * all: glibc then skips the cancellation bookkeeping around every recv and
 * send).  prepare before dispatching its base, finish after. */
void proxy_loop_prepare(struct proxy_loop *loop);
void proxy_loop_finish(struct proxy_loop *loop);
void proxy_loop_join(struct proxy_loop *loop);
void proxy_loop_free(struct proxy_loop *loop);
int  proxy_loop_command(struct proxy_loop *loop, enum proxy_loop_cmd cmd);

/* Hands a live handoff link to the loop (main thread); a loop that has
 * finished closes it at once.  0, or -1 (the link was closed). */
int  proxy_loop_add_link(struct proxy_loop *loop, const struct handoff_link *hl);
/* A draining loop ends once it has no connection and no link left. */
void proxy_loop_check_done(struct proxy_loop *loop);

/* Accept path helpers used by listener.c and connection.c. */
void proxy_loop_pause_accepts(struct proxy_loop *loop, struct proxy_accept *only,
                              uint64_t retry_ms);
void proxy_loop_conn_opened(struct proxy_loop *loop);
void proxy_loop_conn_closed(struct proxy_loop *loop);

#endif
