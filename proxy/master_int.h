/*
 * master_int.h - the master's internal state, shared by master.c
 * (generations, sockets, signals, reload), master_ctl.c (control socket
 * commands) and master_exec.c (re-executing a new binary in place).
 */
#ifndef BATON_PROXY_MASTER_INT_H
#define BATON_PROXY_MASTER_INT_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "channel.h"
#include "conf.h"
#include "port_libc.h"
#include "message.h"
#include "activation.h"
#include "image.h"
#include "master_upgrade.h"
#include "peercred.h"

#define STATUS_TIMEOUT_MS     2000

enum gen_state { GEN_STARTING, GEN_ACTIVE, GEN_DRAINING };
enum master_state { MASTER_RUNNING, MASTER_STOPPING, MASTER_QUITTING };

struct master;

struct master_gen {
    struct master          *m;
    struct master_gen             *next;
    unsigned                id;
    pid_t                   pid;
    enum gen_state          state;
    int                     is_reload;   /* runs the configuration being loaded */
    struct handoff_channel  ch;
    int                     ch_open;
    struct event           *rev, *wev, *timer;
    uint64_t                started_ms;
    char                    version[HANDOFF_VERSION_MAX];
    char                    failure[HANDOFF_REASON_MAX];
    struct handoff_status  *status;      /* last whole STATUS received */
    struct handoff_status   status_in;   /* the STATUS parts arriving */
    uint64_t                timeout_ms;  /* to become ready, or to exit once draining */
    uint64_t                drain_deadline_ms; /* monotonic; kept across re-exec */
    uint32_t                caps;        /* handoff capabilities both sides have */
};

/* A listening socket.  During a reload a socket can belong to the running
 * configuration, to the one being loaded, or to both. */
struct master_sock {
    char             name[CONF_NAME_MAX];       /* listener in the running config */
    char             next_name[CONF_NAME_MAX];  /* listener in the config being loaded */
    struct conf_addr addr;
    char             actual[80];
    int              fd;
    int              in_current, in_next;
};

enum ctl_state { CTL_READING, CTL_WAITING, CTL_REPLIED };

struct master_ctl {
    struct master      *m;
    struct master_ctl         *next;
    struct bufferevent *bev;
    enum ctl_state      state;
    uint32_t            status_id;
    unsigned            waiting;     /* STATUS replies still expected */
    struct event       *timer;
    struct event       *deadline;    /* for the whole command, then the whole answer */
    struct proxy_peer_cred cred;     /* who connected (pid/uid -1 if unknown) */
};

struct master {
    char               exe[PATH_MAX];
    struct conf        conf;         /* running configuration */
    char              *text;
    struct conf        next_conf;    /* being loaded by a reload */
    char              *next_text;
    struct event_base *base;
    struct master_sock      *socks;
    size_t             nsocks;
    struct master_gen        *gens;
    unsigned           last_gen;
    struct master_gen        *upgrading;    /* the STARTING generation of a reload */
    struct master_ctl        *reload_ctl;   /* who waits for the reload outcome */
    struct proxy_control_endpoint *ctl_ep;
    struct master_ctl        *ctls;
    struct proxy_osevents *os;          /* stop, reload asked by the OS */
    struct proxy_process_watch *children; /* worker exits */
    struct event      *respawn_timer, *kill_timer;
    enum master_state  state;
    int                ever_ready;
    int                exit_code;
    uint64_t           start_ms, last_spawn_ms;
    unsigned           fast_crashes;
    uint32_t           status_seq;
    /* Executables, held open: what this master runs, what the serving
     * generation runs (crash replacements start from it; a binary upgrade
     * re-executes the master from it), and what a reload is trying. */
    struct proxy_image image, serving, next_image;
    int                reexec_pending; /* a new binary is ready: exec it once the channels drain */
    struct event      *reexec_timer;
    char               reexec_reply[HANDOFF_REASON_MAX]; /* for the reload client */
    int                resumed;      /* this image was exec'ed by a previous one */
    struct handoff_ticket_keys tickets; /* TLS session ticket keys, newest first */
    struct event      *ticket_timer;  /* rotates them */
    struct event      *poll_timer;    /* refreshes the active generation's status */
    struct proxy_activated *activated; /* sockets passed by the service manager */
    size_t             nactivated;
};

/* master.c */
const char *proxy_master_gen_state_name(enum gen_state s);
void proxy_master_timer_add_ms(struct event *ev, uint64_t ms);
void proxy_master_gen_send(struct master_gen *g, struct handoff_msg *m);
/* A draining generation not gone DRAIN_GRACE_MS after drain_timeout is killed. */
#define DRAIN_GRACE_MS 10000u
/* at_ms: the deadline as a monotonic time (carried across re-exec), or 0
 * for drain_timeout + DRAIN_GRACE_MS from now. */
void proxy_master_gen_drain_deadline(struct master_gen *g, uint64_t drain_timeout_ms,
                                     uint64_t at_ms);
struct master_gen *proxy_master_gen_adopt(struct master *m, unsigned id, pid_t pid, int fd,
                                          enum gen_state state);
void proxy_master_stop(struct master *m, int graceful);
void proxy_master_gen_send_empty(struct master_gen *g, uint16_t type);
/* Starts a generation: for the reload being loaded, or to replace one. */
void proxy_master_spawn(struct master *m, int is_reload);
/* Asks the active generation for fresh figures (the reload's new one gets
 * its servers' health from them). */
void proxy_master_poll_active_status(struct master *m);

/* master_reload.c: the reload's new generation is ready (commit: the old
 * ones retire and hand their connections over) or failed (abort: the
 * running generation was never told to stop). */
void proxy_master_reload_commit(struct master *m, struct master_gen *g);
void proxy_master_reload_abort(struct master *m, const char *reason);
int  proxy_master_reload(struct master *m, char *why, size_t n);

/* master_handoff.c: after a reload committed, links from every loop of
 * `from` (which runs `loops` of them) to `to` when the configuration asks
 * for live handoff and both workers can; returns the links sent. */
int  proxy_master_handoff(struct master *m, struct master_gen *from, struct master_gen *to,
                          unsigned loops);

/* master_socks.c */
void proxy_master_sock_close(struct master_sock *s);
/* Drops sockets that belong to neither configuration. */
void proxy_master_socks_compact(struct master *m);
/* Marks the sockets configuration c needs (the one being loaded if next),
 * binding new addresses; -1 with why if a bind fails. */
int  proxy_master_socks_prepare(struct master *m, const struct conf *c, int next, char *why,
                                size_t n);

/* master_ctl.c */
void proxy_master_ctl_client_cb(int fd, const struct proxy_peer_cred *cred, void *arg);
struct master_ctl *proxy_master_ctl_adopt(struct master *m, int fd,
                                          const struct proxy_peer_cred *cred);
void proxy_master_ctl_reply(struct master_ctl *c, int ok, const char *fmt, ...)
    PORT_PRINTF(3, 4);
void proxy_master_ctl_free(struct master_ctl *c);
/* Sends what is queued for c now, outside the event loop (at exit). */
void proxy_master_ctl_flush_now(struct master_ctl *c);
void proxy_master_status_reply(struct master_ctl *c);

#endif
