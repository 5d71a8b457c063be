/*
 * worker.c - the worker process.
 *
 * Start-up is a fixed conversation with the master (blocking, bounded):
 *   worker -> HELLO; master -> CONFIG, LISTENER x n, START; worker -> READY
 * after which the worker's main thread only serves the channel and OS events
 * while the loop threads proxy.  A worker that cannot start says why in a
 * FAILED message and exits 1, so the master can log the reason.
 */
#include "worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <inttypes.h>

#include "accesslog.h"
#include "conn_msg.h"
#include "evmem.h"
#include "log.h"
#include "logsafe.h"
#include "message.h"
#include "netutil.h"
#include "osevents.h"
#include "port.h"
#include "health.h"
#include "testpeer.h"
#include "tls.h"
#include "tls_keylog.h"
#include "transport.h"
#include "wakeup.h"

#define WORKER_STARTUP_TIMEOUT_MS 30000

static void worker_flush(struct proxy_worker *w);

static void worker_send(struct proxy_worker *w, struct handoff_msg *m)
{
    if (handoff_channel_send(&w->ch, m) != 0)
        proxy_log_error("worker: cannot queue a message for the master");
    handoff_msg_free(m);
    worker_flush(w);
}

static int worker_fail(struct proxy_worker *w, const char *fmt, ...)
    PORT_PRINTF(2, 3);

static int worker_fail(struct proxy_worker *w, const char *fmt, ...)
{
    struct handoff_failed f;
    struct handoff_msg m;
    char why[256], safe[HANDOFF_REASON_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(f.reason, sizeof(f.reason), fmt, ap);
    va_end(ap);
    /* It can quote the configuration (values, paths); the master escapes
     * the reason it receives itself. */
    proxy_log_error("worker: %s", proxy_logsafe(safe, sizeof(safe), f.reason, PROXY_LOGSAFE_TEXT));
    if (handoff_encode_failed(&m, w->ch.seq++, &f) == 0) {
        if (handoff_channel_send_sync(&w->ch, &m, 2000, why, sizeof(why)) != 0)
            proxy_log_error("worker: cannot report failure to the master: %s", why);
        handoff_msg_free(&m);
    }
    return 1;
}

static void worker_start_drain(struct proxy_worker *w, const char *why)
{
    uint64_t ms = w->conf.global.drain_timeout_ms;

    if (w->draining)
        return;
    w->draining = 1;
    /* The next generation checks the servers now. */
    proxy_health_stop(w->health);
    w->health = NULL;
    proxy_log_info("worker generation %u: draining (%s), %lu connection(s) open",
                   w->generation, why, (unsigned long)atomic_load(&w->active));
    for (unsigned i = 0; i < w->nloops; i++)
        proxy_loop_command(&w->loops[i], PROXY_LOOP_DRAIN);
    /* The loops close their own duplicates; once ours go too, a socket the
     * master no longer holds (graceful stop) refuses new clients instead of
     * queueing them for nobody. */
    for (size_t i = 0; i < w->nlisteners; i++)
        proxy_listener_free(&w->listeners[i]);
    if (proxy_timer_add_ms(w->drain_timer, ms) != 0)
        proxy_log_error("worker: cannot arm drain timer");
}

static void worker_stop_now(struct proxy_worker *w, const char *why)
{
    proxy_log_info("worker generation %u: stopping now (%s)", w->generation, why);
    w->draining = 1;
    for (unsigned i = 0; i < w->nloops; i++)
        proxy_loop_command(&w->loops[i], PROXY_LOOP_EXIT);
}

static void drain_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_worker *w = arg;

    proxy_log_warn("worker generation %u: drain_timeout reached, closing %lu connection(s)",
                   w->generation, (unsigned long)atomic_load(&w->active));
    for (unsigned i = 0; i < w->nloops; i++)
        proxy_loop_command(&w->loops[i], PROXY_LOOP_DRAIN_TIMEOUT);
}

/* Counts of rate-limited messages are reported even when the flood stops. */
static void log_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    proxy_log_flush_suppressed(0);
}

/* The count is the loop threads' (each adds itself before its poke). */
static void done_cb(void *arg)
{
    struct proxy_worker *w = arg;

    if (atomic_load(&w->loops_done) >= w->nloops)
        event_base_loopbreak(w->base);
}

static void osevent_cb(enum proxy_osevent ev, const char *what, void *arg)
{
    struct proxy_worker *w = arg;

    switch (ev) {
    case PROXY_OSEV_STOP_GRACEFUL:
        worker_start_drain(w, what);
        break;
    case PROXY_OSEV_STOP_FAST:
        worker_stop_now(w, what);
        break;
    case PROXY_OSEV_RELOAD:
    case PROXY_OSEV_IGNORED:
        proxy_log_info("worker: %s ignored (reloads are run by the master)", what);
        break;
    }
}

/* The lists of a STATUS: every listener and server of this generation. */
static int status_lists(struct proxy_worker *w, struct handoff_status *st)
{
    size_t nservers = 0;

    for (size_t i = 0; i < w->nbackends; i++)
        nservers += w->backends[i].nservers;
    st->listeners = calloc(w->nlisteners ? w->nlisteners : 1, sizeof(*st->listeners));
    st->servers.servers = calloc(nservers ? nservers : 1, sizeof(*st->servers.servers));
    if (st->listeners == NULL || st->servers.servers == NULL)
        return -1;
    for (size_t i = 0; i < w->nbackends; i++)
        for (size_t k = 0; k < w->backends[i].nservers; k++) {
            const struct proxy_server *sv = &w->backends[i].servers[k];
            struct handoff_server_health *h = &st->servers.servers[st->servers.nservers++];

            snprintf(h->backend, sizeof(h->backend), "%s", w->backends[i].conf->name);
            snprintf(h->server, sizeof(h->server), "%s", sv->conf->name);
            h->down = (uint32_t)atomic_load(&sv->down);
            h->active = atomic_load(&sv->active);
            h->total = atomic_load(&sv->total);
            h->failures = atomic_load(&sv->failures);
        }
    for (size_t i = 0; i < w->nlisteners; i++) {
        struct handoff_listener_stats *ls = &st->listeners[st->nlisteners++];

        snprintf(ls->name, sizeof(ls->name), "%s", w->listeners[i].conf->name);
        ls->active = atomic_load(&w->listeners[i].active);
        ls->total = atomic_load(&w->listeners[i].total);
    }
    return 0;
}

static void worker_send_status(struct proxy_worker *w, struct handoff_in *in)
{
    struct handoff_status_req req;
    struct handoff_status st = { 0 };
    struct handoff_msg m;
    char why[256];

    if (handoff_decode_status_req(in, &req, why, sizeof(why)) != 0) {
        proxy_log_warn("worker: bad STATUS_REQ from master: %s", why);
        return;
    }
    st.id = req.id;
    st.pid = (uint32_t)getpid();
    st.active = atomic_load(&w->active);
    st.total = atomic_load(&w->total);
    st.bytes_in = atomic_load(&w->bytes_in);
    st.bytes_out = atomic_load(&w->bytes_out);
    st.tls_failures = atomic_load(&w->tls_failures);
    st.adopted = atomic_load(&w->adopted);
    st.orphans = atomic_load(&w->orphans);
    st.handed_over = atomic_load(&w->handed_over);
    if (status_lists(w, &st) != 0) {
        proxy_log_error("worker: out of memory for a status");
    } else {
        for (uint32_t part = 0; part < handoff_status_parts(&st, w->caps); part++) {
            if (handoff_encode_status(&m, w->ch.seq++, &st, part, w->caps) != 0) {
                proxy_log_error("worker: cannot encode status part %u", (unsigned)part);
                break;
            }
            worker_send(w, &m);
        }
    }
    handoff_status_free(&st);
}

static void worker_apply_tickets(struct handoff_in *in)
{
    struct handoff_ticket_keys *k = malloc(sizeof(*k));
    char why[256];

    if (k == NULL)
        return;
    if (handoff_decode_ticket_keys(in, k, why, sizeof(why)) != 0)
        proxy_log_warn("worker: bad TICKET_KEYS from master: %s", why);
    else if (proxy_tls_set_ticket_keys(&k->keys[0][0], k->n) != 0)
        proxy_log_warn("worker: cannot install %u ticket keys", (unsigned)k->n);
    OPENSSL_cleanse(k, sizeof(*k));
    free(k);
}

/*
 * The server `server` of backend `backend`, looked for from just after the
 * previous find (*b, *k): entries come in the previous generation's
 * configuration order, so with an unchanged order each is found at once.
 */
static struct proxy_server *find_server(struct proxy_worker *w, const char *backend,
                                        const char *server, size_t *b, size_t *k)
{
    for (size_t j = 0; j < w->nbackends; j++) {
        size_t bi = (*b + j) % w->nbackends;
        struct proxy_backend *be = &w->backends[bi];

        if (strcmp(be->conf->name, backend) != 0)
            continue;
        for (size_t x = 0; x < be->nservers; x++) {
            size_t si = ((bi == *b ? *k : 0) + x) % be->nservers;

            if (strcmp(be->servers[si].conf->name, server) == 0) {
                *b = bi;
                *k = si + 1;
                return &be->servers[si];
            }
        }
        return NULL;   /* backend names are unique */
    }
    return NULL;
}

/* Health learnt by the previous generation (once all its parts arrived): a
 * server it found down stays down here until checks (or a probe
 * connection) bring it back. */
static void worker_apply_servers(struct proxy_worker *w)
{
    const struct handoff_server_state *st = &w->carried;
    struct proxy_server *sv;
    size_t b = 0, k = 0;

    for (uint32_t i = 0; i < st->nservers; i++)
        if (st->servers[i].down &&
            (sv = find_server(w, st->servers[i].backend, st->servers[i].server, &b, &k)) != NULL)
            proxy_server_set_down(sv, 1, "as the previous generation found it");
    handoff_server_state_free(&w->carried);
}

/* A SERVER_STATE part; the health is applied once whole, at start-up or
 * (when it completes later) at once. */
static void worker_carry_servers(struct proxy_worker *w, struct handoff_in *in, int started)
{
    char why[256];

    if (handoff_decode_server_state(in, &w->carried, w->caps, why, sizeof(why)) != 0)
        proxy_log_warn("worker: bad SERVER_STATE from master: %s", why);
    else if (started && handoff_server_state_complete(&w->carried))
        worker_apply_servers(w);
}

void proxy_worker_link_ended(struct proxy_worker *w, uint32_t role, uint64_t conns,
                             uint64_t cpu_us)
{
    struct proxy_handoff_tally *t = role == HANDOFF_LINK_GIVE ? &w->give : &w->take;
    uint64_t all = atomic_fetch_add(&t->conns, conns) + conns;
    uint64_t cpu = atomic_fetch_add(&t->cpu_us, cpu_us) + cpu_us;
    uint64_t ms = proxy_now_ms() - atomic_load(&t->started_ms);

    if (atomic_fetch_add(&t->ended, 1) + 1 != atomic_load(&t->links))
        return;
    /* CPU: of the loops while their links were open, relaying included. */
    if (role == HANDOFF_LINK_GIVE)
        proxy_log_info("worker generation %u: handoff: %" PRIu64 " connection(s) moved to "
                       "generation %u, %" PRIu64 " left to drain, in %" PRIu64 " ms, CPU %"
                       PRIu64 " ms", w->generation, all, t->peer,
                       (uint64_t)atomic_load(&w->active), ms, cpu / 1000);
    else
        proxy_log_info("worker generation %u: handoff: %" PRIu64 " connection(s) adopted from "
                       "generation %u in %" PRIu64 " ms, CPU %" PRIu64 " ms", w->generation,
                       all, t->peer, ms, cpu / 1000);
}

static void tally_start(struct proxy_handoff_tally *t, const struct handoff_link *hl)
{
    atomic_store(&t->links, hl->count);
    atomic_store(&t->ended, 0);
    atomic_store(&t->conns, 0);
    atomic_store(&t->cpu_us, 0);
    atomic_store(&t->started_ms, proxy_now_ms());
    t->peer = hl->peer_gen;
}

/* A link of a live handoff: to the loop that runs it.  A giver's link i
 * belongs to its loop i; a taker spreads links over its loops, which need
 * not be as many. */
static void worker_link(struct proxy_worker *w, struct handoff_in *in)
{
    struct handoff_link hl;
    char why[256];

    if (handoff_decode_link(in, &hl, why, sizeof(why)) != 0) {
        proxy_log_warn("worker: bad LINK from master: %s", why);
        return;
    }
    if (hl.index == 0)
        tally_start(hl.role == HANDOFF_LINK_GIVE ? &w->give : &w->take, &hl);
    if (hl.role == HANDOFF_LINK_GIVE) {
        if (hl.index == 0) {
            proxy_log_info("worker generation %u: handing %lu connection(s) over to "
                           "generation %u", w->generation, (unsigned long)atomic_load(&w->active),
                           hl.peer_gen);
        }
        if (hl.index >= w->nloops) {
            handoff_transport_close(hl.fd);
            proxy_worker_link_ended(w, hl.role, 0, 0);
            return;
        }
    }
    proxy_loop_add_link(&w->loops[hl.index % w->nloops], &hl);
}

/*
 * A message type this worker does not know comes from a newer master, which
 * sends one only to a worker with HANDOFF_CAP_UNKNOWN_TYPES: skipped (0),
 * or -1 with why when flagged must-understand (the master cannot go on
 * without it, and this worker cannot serve it).
 */
static int worker_unknown(struct proxy_worker *w, const struct handoff_in *in, char *why,
                          size_t n)
{
    unsigned type = in->hdr.type;

    if (in->hdr.flags & HANDOFF_HDR_MUST_UNDERSTAND) {
        snprintf(why, n, "master %ld sent message type %u flagged must-understand, unknown "
                 "to this worker (baton %s)", (long)w->ch.peer_pid, type, BATON_VERSION);
        return -1;
    }
    proxy_log_limited(PROXY_LOGK_HANDOFF_UNKNOWN, "worker generation %u: skipped message type "
                      "%u (%u bytes) from master %ld, unknown to this worker (baton %s)",
                      w->generation, type, (unsigned)in->hdr.len, (long)w->ch.peer_pid,
                      BATON_VERSION);
    return 0;
}

static void worker_handle(struct proxy_worker *w, struct handoff_in *in)
{
    char why[256];

    switch (in->hdr.type) {
    case HANDOFF_LINK:
        worker_link(w, in);
        return;
    case HANDOFF_STATUS_REQ:
        worker_send_status(w, in);
        return;
    case HANDOFF_TICKET_KEYS:
        worker_apply_tickets(in);
        return;
    case HANDOFF_SERVER_STATE:
        worker_carry_servers(w, in, 1);
        return;
    case HANDOFF_STOP_ACCEPTING:
    case HANDOFF_RESUME_ACCEPTING:
    case HANDOFF_DRAIN:
        if (handoff_decode_empty(in, why, sizeof(why)) != 0) {
            proxy_log_warn("worker: bad %s from master: %s", handoff_type_name(in->hdr.type), why);
            return;
        }
        break;
    default:
        if (handoff_type_known(in->hdr.type))
            proxy_log_limited(PROXY_LOGK_HANDOFF_UNKNOWN, "worker: unexpected %s message "
                              "from master ignored", handoff_type_name(in->hdr.type));
        else if (worker_unknown(w, in, why, sizeof(why)) != 0) {
            proxy_log_error("worker generation %u: %s; exiting", w->generation, why);
            w->refused = 1;
            worker_stop_now(w, "protocol refused");
        }
        return;
    }
    if (in->hdr.type == HANDOFF_DRAIN) {
        worker_start_drain(w, "asked by master");
        return;
    }
    for (unsigned i = 0; i < w->nloops; i++)
        proxy_loop_command(&w->loops[i], in->hdr.type == HANDOFF_STOP_ACCEPTING
                                             ? PROXY_LOOP_STOP_ACCEPTING
                                             : PROXY_LOOP_RESUME_ACCEPTING);
}

static void channel_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_worker *w = arg;
    struct handoff_in in;
    char why[256];
    ssize_t n = handoff_channel_read(&w->ch);
    int rc;

    if (n == -2)
        return;
    while ((rc = handoff_channel_next(&w->ch, &in, why, sizeof(why))) == 1) {
        worker_handle(w, &in);
        handoff_in_free(&in);
    }
    if (rc < 0) {
        proxy_log_error("worker: malformed message from master: %s", why);
        n = 0;
    }
    if (n <= 0) {
        /* Without a master nobody can restart or upgrade us: finish what is
         * open and go. */
        event_del(w->ch_read_ev);
        worker_start_drain(w, n == 0 ? "master channel closed" : "master channel error");
        return;
    }
    worker_flush(w);   /* the HANDLE_ACKs handoff_channel_next queued */
}

static void channel_write_cb(evutil_socket_t fd, short what, void *arg)
{
    worker_flush(arg);
}

static void worker_flush(struct proxy_worker *w)
{
    int rc = handoff_channel_flush(&w->ch);

    if (rc == 0 && w->ch_write_ev != NULL)
        event_add(w->ch_write_ev, NULL);
    else if (w->ch_write_ev != NULL)
        event_del(w->ch_write_ev);
    if (rc < 0)
        proxy_log_error("worker: writing to master: %s", strerror(errno));
}

/* The next message of the start-up conversation, skipping types this
 * worker does not know: 1, or -1 with why. */
static int worker_recv_setup(struct proxy_worker *w, struct handoff_in *in, char *why, size_t n)
{
    for (;;) {
        if (handoff_channel_recv_sync(&w->ch, in, WORKER_STARTUP_TIMEOUT_MS, why, n) != 1)
            return -1;
        if (handoff_type_known(in->hdr.type))
            return 1;
        if (worker_unknown(w, in, why, n) != 0) {
            handoff_in_free(in);
            return -1;
        }
        handoff_in_free(in);
    }
}

/* Receives CONFIG, LISTENERs and START. */
static int worker_receive_setup(struct proxy_worker *w)
{
    struct handoff_config cfg;
    struct handoff_in in;
    char why[512], err[CONF_ERR_MAX * 4];
    char *text;

    if (worker_recv_setup(w, &in, why, sizeof(why)) != 1)
        return worker_fail(w, "waiting for configuration: %s", why);
    if (in.hdr.type != HANDOFF_CONFIG || handoff_decode_config(&in, &cfg, why, sizeof(why)) != 0) {
        if (in.hdr.type != HANDOFF_CONFIG)
            snprintf(why, sizeof(why), "expected CONFIG, got %s", handoff_type_name(in.hdr.type));
        handoff_in_free(&in);
        return worker_fail(w, "bad configuration message: %s", why);
    }
    text = proxy_memdup_str(cfg.text, cfg.textlen);
    w->generation = cfg.generation;
    if (text == NULL || conf_load_text(cfg.path, text, &w->conf, err, sizeof(err)) != 0) {
        free(text);
        handoff_in_free(&in);
        err[strcspn(err, "\n")] = '\0';
        return worker_fail(w, "configuration rejected: %s", err);
    }
    free(text);
    handoff_in_free(&in);
    proxy_log_set_level(w->conf.global.log_level);

    w->nlisteners = w->conf.nlisteners;
    w->listeners = calloc(w->nlisteners, sizeof(*w->listeners));
    if (w->listeners == NULL)
        return worker_fail(w, "out of memory");
    for (size_t i = 0; i < w->nlisteners; i++)
        w->listeners[i].conf = &w->conf.listeners[i];
    for (;;) {
        struct handoff_listener hl;
        struct proxy_listener *l = NULL;
        char actual[80];

        if (worker_recv_setup(w, &in, why, sizeof(why)) != 1)
            return worker_fail(w, "waiting for listeners: %s", why);
        if (in.hdr.type == HANDOFF_START) {
            handoff_in_free(&in);
            break;
        }
        if (in.hdr.type == HANDOFF_TICKET_KEYS) {
            worker_apply_tickets(&in);
            handoff_in_free(&in);
            continue;
        }
        if (in.hdr.type == HANDOFF_SERVER_STATE) {
            worker_carry_servers(w, &in, 0);
            handoff_in_free(&in);
            continue;
        }
        if (in.hdr.type != HANDOFF_LISTENER ||
            handoff_decode_listener(&in, &hl, why, sizeof(why)) != 0) {
            if (in.hdr.type != HANDOFF_LISTENER)
                snprintf(why, sizeof(why), "expected LISTENER or START, got %s",
                         handoff_type_name(in.hdr.type));
            handoff_in_free(&in);
            return worker_fail(w, "bad listener message: %s", why);
        }
        handoff_in_free(&in);
        for (size_t i = 0; i < w->nlisteners; i++)
            if (strcmp(w->listeners[i].conf->name, hl.name) == 0)
                l = &w->listeners[i];
        proxy_sockname(hl.fd, actual, sizeof(actual));
        if (l == NULL || proxy_listener_add_fd(l, hl.fd, actual) != 0) {
            handoff_transport_close(hl.fd);
            return worker_fail(w, l == NULL ? "socket for unknown listener '%s'"
                                            : "out of memory adding listener '%s'", hl.name);
        }
    }
    for (size_t i = 0; i < w->nlisteners; i++)
        if (w->listeners[i].nfds == 0)
            return worker_fail(w, "no socket received for listener '%s'",
                               w->listeners[i].conf->name);
    return 0;
}

static int worker_build(struct proxy_worker *w)
{
    char why[1024];

    w->access_fd = proxy_accesslog_open(w->conf.global.access_log, why, sizeof(why));
    if (w->access_fd == -2)
        return worker_fail(w, "%s", why);
    if (proxy_tls_keylog_open(w->conf.global.tls_keylog_file, why, sizeof(why)) != 0)
        return worker_fail(w, "%s:%d: tls_keylog_file %s: %s", w->conf.path,
                           w->conf.global.tls_keylog_file_line, w->conf.global.tls_keylog_file,
                           why);
    w->nbackends = w->conf.nbackends;
    w->backends = calloc(w->nbackends, sizeof(*w->backends));
    if (w->backends == NULL)
        return worker_fail(w, "out of memory");
    for (size_t i = 0; i < w->nbackends; i++)
        if (proxy_backend_init(&w->backends[i], &w->conf.backends[i], i) != 0)
            return worker_fail(w, "out of memory");
    for (size_t i = 0; i < w->nbackends; i++)
        if (w->conf.backends[i].tls &&
            (w->backends[i].tls = proxy_tls_client_new(&w->conf.backends[i], why,
                                                       sizeof(why))) == NULL)
            return worker_fail(w, "%s", why);
    for (size_t i = 0; i < w->nlisteners; i++) {
        const struct conf_backend *cb = w->listeners[i].conf->backend;

        w->listeners[i].backend = &w->backends[cb - w->conf.backends];
        if (w->listeners[i].conf->tls == CONF_TLS_ON &&
            (w->listeners[i].tls = proxy_tls_server_new(w->listeners[i].conf, &w->conf.global,
                                                        why, sizeof(why))) == NULL)
            return worker_fail(w, "%s", why);
    }
    w->nloops = w->conf.global.threads;
    w->loops = calloc(w->nloops, sizeof(*w->loops));
    if (w->loops == NULL)
        return worker_fail(w, "out of memory");
    for (unsigned i = 0; i < w->nloops; i++)
        if (proxy_loop_init(&w->loops[i], w, i) != 0)
            return worker_fail(w, "cannot set up event loop %u: %s", i, strerror(errno));
    return 0;
}

static int worker_events(struct proxy_worker *w)
{
    /* With one loop, the main thread runs it and everything shares its base. */
    w->base = w->nloops == 1 ? w->loops[0].base : event_base_new();
    if (w->base == NULL || (w->done_wake = proxy_wakeup_new(w->base, done_cb, w)) == NULL)
        return worker_fail(w, "cannot create event base");
    w->ch_read_ev = event_new(w->base, w->ch.fd, EV_READ | EV_PERSIST, channel_read_cb, w);
    w->ch_write_ev = event_new(w->base, w->ch.fd, EV_WRITE, channel_write_cb, w);
    w->os = proxy_osevents_new(w->base, PROXY_OSEV_WORKER, osevent_cb, w);
    w->drain_timer = evtimer_new(w->base, drain_timer_cb, w);
    w->log_flush_ev = event_new(w->base, -1, EV_PERSIST, log_flush_cb, w);
    if (!w->ch_read_ev || !w->ch_write_ev || !w->os || !w->drain_timer || !w->log_flush_ev ||
        event_add(w->ch_read_ev, NULL) ||
        event_add(w->log_flush_ev, &(struct timeval){ .tv_sec = 1 }))
        return worker_fail(w, "cannot set up events");
    return 0;
}

static void worker_free(struct proxy_worker *w)
{
    struct event *evs[] = { w->ch_read_ev, w->ch_write_ev, w->drain_timer, w->log_flush_ev };

    int shared = w->loops != NULL && w->nloops == 1 && w->base == w->loops[0].base;

    for (unsigned i = 0; w->loops != NULL && i < w->nloops; i++)
        proxy_loop_join(&w->loops[i]);
    proxy_log_flush_suppressed(1);   /* the loops are done: nothing counted is left out */
    proxy_health_stop(w->health);
    w->health = NULL;
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        if (evs[i] != NULL)
            event_free(evs[i]);
    proxy_osevents_free(w->os);
    proxy_wakeup_free(w->done_wake);
    if (w->base != NULL && !shared)
        event_base_free(w->base);
    for (unsigned i = 0; w->loops != NULL && i < w->nloops; i++)
        proxy_loop_free(&w->loops[i]);
    free(w->loops);
    proxy_tls_release_cache();   /* this thread's: health checks, one loop */
    for (size_t i = 0; w->listeners != NULL && i < w->nlisteners; i++) {
        proxy_listener_free(&w->listeners[i]);
        proxy_tls_server_free(w->listeners[i].tls);
    }
    free(w->listeners);
    for (size_t i = 0; w->backends != NULL && i < w->nbackends; i++) {
        proxy_tls_client_free(w->backends[i].tls);
        proxy_backend_free(&w->backends[i]);
    }
    free(w->backends);
    if (w->access_fd > STDERR_FILENO)
        close(w->access_fd);
    proxy_tls_keylog_close();
    handoff_server_state_free(&w->carried);
    handoff_channel_close(&w->ch);
    conf_free(&w->conf);
}

/* The capabilities the master offered in the environment, if any (an older
 * master offers none and gets the first release's layouts).  1 if offered. */
static int worker_offered_caps(uint32_t *caps)
{
    const char *v = getenv(HANDOFF_CAPS_ENV);
    unsigned long n;
    char *end;
    int ok;

    if (v == NULL)
        return 0;
    errno = 0;
    n = strtoul(v, &end, 10);
    ok = errno == 0 && end != v && *end == '\0' && n <= UINT32_MAX;
    if (!ok)
        proxy_log_warn("worker: ignoring %s: expected a number", HANDOFF_CAPS_ENV);
    *caps = ok ? (uint32_t)n : 0;
    /* Nothing this worker starts should see it. */
    if (unsetenv(HANDOFF_CAPS_ENV) != 0)
        proxy_log_warn("worker: unsetenv %s: %s", HANDOFF_CAPS_ENV, strerror(errno));
    return ok;
}

int proxy_worker_main(int channel_fd)
{
    struct proxy_worker *w = calloc(1, sizeof(*w));
    struct handoff_hello hello = { .pid = (uint32_t)getpid() };
    struct handoff_msg m;
    char why[256];
    int rc = 1;

    if (w == NULL)
        return 1;
    proxy_evmem_install();
    w->access_fd = -1;
    if (proxy_net_init() != 0) {
        free(w);
        return 1;
    }
    if (handoff_channel_init(&w->ch, channel_fd, port_parent_pid()) != 0) {
        proxy_log_error("worker: bad channel descriptor %d: %s", channel_fd, strerror(errno));
        free(w);
        return 1;
    }
    snprintf(hello.version, sizeof(hello.version), "%s", BATON_VERSION);
    hello.has_caps = worker_offered_caps(&w->caps);
    hello.caps = HANDOFF_CAPS_OURS;
    w->caps &= HANDOFF_CAPS_OURS;
    /* The master batches to us when it offered FD_BATCH: so we read. */
    handoff_channel_set_peer_caps(&w->ch, w->caps);
    if (handoff_encode_hello(&m, w->ch.seq++, &hello) != 0 ||
        proxy_testpeer_hello(&m, hello.has_caps) != 0 ||
        handoff_channel_send_sync(&w->ch, &m, WORKER_STARTUP_TIMEOUT_MS, why, sizeof(why)) != 0) {
        proxy_log_error("worker: cannot greet the master: %s", why);
        handoff_msg_free(&m);
        goto out;
    }
    handoff_msg_free(&m);
    /* What the test binary sends beyond the protocol (nothing in baton). */
    if (proxy_testpeer_message(&m, &w->ch.seq, PROXY_TESTPEER_AFTER_HELLO, w->caps) == 1)
        worker_send(w, &m);
    if (worker_receive_setup(w) != 0 || worker_build(w) != 0 || worker_events(w) != 0)
        goto out;
    if (handoff_server_state_complete(&w->carried))
        worker_apply_servers(w);
    w->health = proxy_health_start(w, w->base);
    if (w->nloops == 1)
        proxy_loop_prepare(&w->loops[0]);
    for (unsigned i = 0; w->nloops > 1 && i < w->nloops; i++)
        if (proxy_loop_start(&w->loops[i]) != 0) {
            worker_fail(w, "cannot start thread %u: %s", i, strerror(errno));
            worker_stop_now(w, "start-up failed");
            goto out;
        }
    if (handoff_encode_empty(&m, HANDOFF_READY, w->ch.seq++) != 0)
        goto out;
    worker_send(w, &m);
    if (proxy_testpeer_message(&m, &w->ch.seq, PROXY_TESTPEER_AFTER_READY, w->caps) == 1)
        worker_send(w, &m);
    if ((w->nloops == 1 ? proxy_loop_dispatch(&w->loops[0], w->base)
                        : event_base_dispatch(w->base)) < 0)
        proxy_log_error("worker: event loop failed");
    if (w->nloops == 1)
        proxy_loop_finish(&w->loops[0]);
    rc = w->refused;
    proxy_log_info("worker generation %u exiting", w->generation);
out:
    if (w->loops != NULL && rc != 0)
        for (unsigned i = 0; i < w->nloops; i++)
            if (w->loops[i].started)
                proxy_loop_command(&w->loops[i], PROXY_LOOP_EXIT);
    worker_free(w);
    free(w);
    return rc;
}
