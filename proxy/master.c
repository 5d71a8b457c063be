/*
 * master.c - the master process (see master.h for the generation states).
 *
 * The master binds every listening socket itself and keeps its copy open
 * for as long as the address is configured, so a worker that crashes or is
 * replaced never takes the socket's accept queue with it: clients that
 * connect in between wait in the kernel and are accepted by the next
 * worker.
 */
#include "master.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include "port_net.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "channel.h"
#include "control.h"
#include "master_int.h"
#include "log.h"
#include "logsafe.h"
#include "message.h"
#include "netutil.h"
#include "notify.h"
#include "osevents.h"
#include "activation.h"
#include "process.h"
#include "testpeer.h"
#include "tls.h"

#include <openssl/crypto.h>
#include "transport.h"

#define RESPAWN_MAX_DELAY_MS  5000
#define STOP_KILL_AFTER_MS    10000

/* STATUS and SERVER_STATE carry every server and listener a configuration
 * can name: each takes a line of more than 8 bytes ("server=" NAME ADDR,
 * "[listener NAME]"). */
_Static_assert(CONF_TEXT_MAX / 8 <= HANDOFF_LIST_MAX,
               "a configuration can name more servers than a status list holds");

static void gen_flush(struct master_gen *g);

const char *proxy_master_gen_state_name(enum gen_state s)
{
    return s == GEN_STARTING ? "starting" : s == GEN_ACTIVE ? "active" : "draining";
}

void proxy_master_timer_add_ms(struct event *ev, uint64_t ms)
{
    if (proxy_timer_add_ms(ev, ms) != 0)
        proxy_log_error("master: cannot arm a timer");
}

/* ---- generations ----------------------------------------------------- */

static struct master_gen *gen_find_pid(struct master *m, pid_t pid)
{
    for (struct master_gen *g = m->gens; g != NULL; g = g->next)
        if (g->pid == pid)
            return g;
    return NULL;
}

static void gen_close_channel(struct master_gen *g)
{
    if (!g->ch_open)
        return;
    if (g->rev != NULL)
        event_del(g->rev);
    if (g->wev != NULL)
        event_del(g->wev);
    handoff_channel_close(&g->ch);
    g->ch_open = 0;
}

static void gen_status_free(struct handoff_status *st)
{
    if (st == NULL)
        return;
    handoff_status_free(st);
    free(st);
}

static void gen_free(struct master_gen *g)
{
    struct master_gen **pp;

    for (pp = &g->m->gens; *pp != NULL; pp = &(*pp)->next)
        if (*pp == g) {
            *pp = g->next;
            break;
        }
    gen_close_channel(g);
    if (g->rev != NULL)
        event_free(g->rev);
    if (g->wev != NULL)
        event_free(g->wev);
    if (g->timer != NULL)
        event_free(g->timer);
    gen_status_free(g->status);
    handoff_status_free(&g->status_in);
    free(g);
}

void proxy_master_gen_send(struct master_gen *g, struct handoff_msg *m)
{
    if (!g->ch_open || handoff_channel_send(&g->ch, m) != 0)
        proxy_log_error("worker %ld generation %u: cannot queue a message (%s)", (long)g->pid,
                        g->id, g->ch_open ? "out of memory or queue full" : "channel closed");
    handoff_msg_free(m);
    gen_flush(g);
}

void proxy_master_gen_send_empty(struct master_gen *g, uint16_t type)
{
    struct handoff_msg msg;

    if (handoff_encode_empty(&msg, type, g->ch.seq++) == 0)
        proxy_master_gen_send(g, &msg);
}

/* What the serving generation knows of its servers' health, for a new one. */
static void gen_send_server_state(struct master_gen *g)
{
    struct handoff_msg msg;

    for (struct master_gen *o = g->m->gens; o != NULL; o = o->next) {
        const struct handoff_server_state *st;

        if (o == g || o->state != GEN_ACTIVE || o->status == NULL)
            continue;
        st = &o->status->servers;
        for (uint32_t part = 0; part < handoff_server_state_parts(st, g->caps); part++) {
            if (handoff_encode_server_state(&msg, g->ch.seq++, st, part, g->caps) != 0) {
                proxy_log_error("worker generation %u: cannot encode the servers' health",
                                g->id);
                return;
            }
            proxy_master_gen_send(g, &msg);
        }
        return;
    }
}

/* Asks the serving generation for its figures (answered as id 0). */
void proxy_master_poll_active_status(struct master *m)
{
    struct handoff_status_req req = { .id = 0 };
    struct handoff_msg msg;

    for (struct master_gen *g = m->gens; g != NULL; g = g->next)
        if (g->ch_open && g->state == GEN_ACTIVE &&
            handoff_encode_status_req(&msg, g->ch.seq++, &req) == 0)
            proxy_master_gen_send(g, &msg);
}

static void gen_send_setup(struct master_gen *g)
{
    struct master *m = g->m;
    const char *text = g->is_reload ? m->next_text : m->text;
    const struct conf *c = g->is_reload ? &m->next_conf : &m->conf;
    struct handoff_config cfg = { .generation = g->id };
    struct handoff_msg msg;

    snprintf(cfg.path, sizeof(cfg.path), "%s", c->path);
    cfg.text = (const uint8_t *)text;
    cfg.textlen = (uint32_t)strlen(text);
    if (handoff_encode_config(&msg, g->ch.seq++, &cfg) != 0) {
        proxy_log_error("worker generation %u: cannot encode configuration", g->id);
        return;
    }
    proxy_master_gen_send(g, &msg);
    if (handoff_encode_ticket_keys(&msg, g->ch.seq++, &m->tickets) == 0)
        proxy_master_gen_send(g, &msg);
    gen_send_server_state(g);
    for (size_t i = 0; i < m->nsocks; i++) {
        struct master_sock *s = &m->socks[i];
        struct handoff_listener hl;

        if (!(g->is_reload ? s->in_next : s->in_current) || s->fd < 0)
            continue;
        memset(&hl, 0, sizeof(hl));
        snprintf(hl.name, sizeof(hl.name), "%s", g->is_reload ? s->next_name : s->name);
        snprintf(hl.addr, sizeof(hl.addr), "%s", s->addr.text);
        hl.fd = s->fd;
        if (handoff_encode_listener(&msg, g->ch.seq++, &hl) == 0)
            proxy_master_gen_send(g, &msg);
    }
    /* What the test binary sends beyond the protocol (nothing in baton). */
    if (proxy_testpeer_message(&msg, &g->ch.seq, PROXY_TESTPEER_BEFORE_START, g->caps) == 1)
        proxy_master_gen_send(g, &msg);
    proxy_master_gen_send_empty(g, HANDOFF_START);
    if (proxy_testpeer_message(&msg, &g->ch.seq, PROXY_TESTPEER_AFTER_START, g->caps) == 1)
        proxy_master_gen_send(g, &msg);
}

static void gen_ready(struct master_gen *g)
{
    struct master *m = g->m;

    if (g->state != GEN_STARTING) {
        proxy_log_warn("worker %ld generation %u: READY while %s ignored", (long)g->pid, g->id,
                       proxy_master_gen_state_name(g->state));
        return;
    }
    g->state = GEN_ACTIVE;
    evtimer_del(g->timer);
    proxy_log_info("worker %ld generation %u ready", (long)g->pid, g->id);
    if (!m->ever_ready)
        proxy_notify("READY=1\nSTATUS=serving: generation %u (worker %ld)\nMAINPID=%ld", g->id,
                     (long)g->pid, (long)getpid());
    m->ever_ready = 1;
    if (m->state != MASTER_RUNNING) {
        /* A stop arrived while it started: it was already signalled. */
        return;
    }
    if (g->is_reload)
        proxy_master_reload_commit(m, g);
}

/* A STATUS part: the figures count once all parts arrived. */
static void gen_status(struct master_gen *g, struct handoff_in *in)
{
    struct handoff_status *st;
    char why[256];

    if (handoff_decode_status(in, &g->status_in, g->caps, why, sizeof(why)) != 0) {
        proxy_log_warn("worker %ld generation %u: bad STATUS: %s", (long)g->pid, g->id, why);
        return;
    }
    if (!handoff_status_complete(&g->status_in))
        return;
    st = malloc(sizeof(*st));
    if (st == NULL) {
        handoff_status_free(&g->status_in);
        return;
    }
    *st = g->status_in;   /* the lists move along */
    memset(&g->status_in, 0, sizeof(g->status_in));
    gen_status_free(g->status);
    g->status = st;
    /* Fresh health from the serving generation reaches a starting one too. */
    if (g->state == GEN_ACTIVE && g->m->upgrading != NULL && g->m->upgrading->version[0])
        gen_send_server_state(g->m->upgrading);
    for (struct master_ctl *c = g->m->ctls; c != NULL; c = c->next)
        if (c->state == CTL_WAITING && c->status_id == st->id && c->waiting > 0 &&
            --c->waiting == 0)
            proxy_master_status_reply(c);
}

/*
 * A message this master does not handle.  A type it does not know at all
 * comes from a newer worker, which sends one only to a master with
 * HANDOFF_CAP_UNKNOWN_TYPES: skipped, unless flagged must-understand (the
 * worker cannot go on without it); that worker is then stopped like one
 * that broke the protocol, and a reload waiting for it is told why.
 */
static void gen_unknown(struct master_gen *g, const struct handoff_in *in)
{
    unsigned type = in->hdr.type;

    if (handoff_type_known(in->hdr.type)) {
        proxy_log_limited(PROXY_LOGK_HANDOFF_UNKNOWN, "worker %ld generation %u: unexpected "
                          "%s message ignored", (long)g->pid, g->id,
                          handoff_type_name(in->hdr.type));
        return;
    }
    if (!(in->hdr.flags & HANDOFF_HDR_MUST_UNDERSTAND)) {
        proxy_log_limited(PROXY_LOGK_HANDOFF_UNKNOWN, "worker %ld generation %u: skipped "
                          "message type %u (%u bytes), unknown to this master (baton %s)",
                          (long)g->pid, g->id, type, (unsigned)in->hdr.len, BATON_VERSION);
        return;
    }
    snprintf(g->failure, sizeof(g->failure), "it sent message type %u flagged "
             "must-understand, unknown to this master (baton %s)", type, BATON_VERSION);
    proxy_log_error("worker %ld generation %u: %s; stopping it", (long)g->pid, g->id,
                    g->failure);
    gen_close_channel(g);
    proxy_process_stop(g->pid, PROXY_PROCESS_KILL);
}

static void gen_handle(struct master_gen *g, struct handoff_in *in)
{
    struct handoff_hello hello;
    struct handoff_failed failed;
    char why[256];

    switch (in->hdr.type) {
    case HANDOFF_HELLO:
        if (g->m->state != MASTER_RUNNING) {
            /* Stopping: its sockets may be closed already; it is not needed. */
            proxy_process_stop(g->pid, PROXY_PROCESS_STOP);
            return;
        }
        if (handoff_decode_hello(in, &hello, why, sizeof(why)) != 0) {
            proxy_log_error("worker %ld generation %u: bad HELLO: %s", (long)g->pid, g->id, why);
            proxy_process_stop(g->pid, PROXY_PROCESS_KILL);
            return;
        }
        /* Shown by `status` as a field: escaped as one, whatever it sent. */
        proxy_logsafe(g->version, sizeof(g->version), hello.version, PROXY_LOGSAFE_FIELD);
        /* A worker that predates capabilities answers no offer. */
        g->caps = hello.has_caps ? hello.caps & HANDOFF_CAPS_OURS : 0;
        handoff_channel_set_peer_caps(&g->ch, g->caps);
        if (hello.unknown_exts > 0)
            proxy_log_limited(PROXY_LOGK_HANDOFF_UNKNOWN, "worker %ld generation %u: skipped "
                              "%u HELLO extension(s) unknown to this master (the first: tag "
                              "%u)", (long)g->pid, g->id, (unsigned)hello.unknown_exts,
                              (unsigned)hello.unknown_tag);
        gen_send_setup(g);
        return;
    case HANDOFF_READY:
        if (handoff_decode_empty(in, why, sizeof(why)) == 0)
            gen_ready(g);
        else
            proxy_log_warn("worker %ld generation %u: bad READY: %s", (long)g->pid, g->id, why);
        return;
    case HANDOFF_FAILED:
        if (handoff_decode_failed(in, &failed, why, sizeof(why)) != 0)
            snprintf(failed.reason, sizeof(failed.reason), "(unreadable reason: %s)", why);
        /* Logged and told to the reload client: escaped once, here. */
        proxy_logsafe(g->failure, sizeof(g->failure), failed.reason, PROXY_LOGSAFE_TEXT);
        proxy_log_error("worker %ld generation %u failed to start: %s", (long)g->pid, g->id,
                        g->failure);
        return;
    case HANDOFF_STATUS:
        gen_status(g, in);
        return;
    default:
        gen_unknown(g, in);
        return;
    }
}

/* A worker that exits closes its channel, possibly with messages of ours
 * unread (a reset) or while we write (a broken pipe): that is its exit,
 * reported by the exit watch, and a worker that has handed its connections
 * over exits within milliseconds of being told to drain.  Anything else
 * is worth a warning. */
static void gen_channel_lost(struct master_gen *g, const char *op)
{
    if (errno == EPIPE || errno == ECONNRESET)
        proxy_log_debug("worker %ld generation %u: %s: %s (it exited)", (long)g->pid, g->id,
                        op, strerror(errno));
    else
        proxy_log_warn("worker %ld generation %u: %s: %s", (long)g->pid, g->id, op,
                       strerror(errno));
}

static void gen_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct master_gen *g = arg;
    struct handoff_in in;
    char why[256];
    ssize_t n = handoff_channel_read(&g->ch);
    int rc;

    if (n == -2)
        return;
    while (g->ch_open && (rc = handoff_channel_next(&g->ch, &in, why, sizeof(why))) == 1) {
        gen_handle(g, &in);
        handoff_in_free(&in);
    }
    if (g->ch_open && rc < 0) {
        proxy_log_error("worker %ld generation %u: malformed message: %s; stopping it",
                        (long)g->pid, g->id, why);
        gen_close_channel(g);
        proxy_process_stop(g->pid, PROXY_PROCESS_KILL);
        return;
    }
    if (n <= 0) {
        if (n < 0)
            gen_channel_lost(g, "channel");
        gen_close_channel(g);   /* its exit is seen by the exit watch */
        return;
    }
    gen_flush(g);   /* the HANDLE_ACKs handoff_channel_next queued */
}

static void gen_write_cb(evutil_socket_t fd, short what, void *arg)
{
    gen_flush(arg);
}

static void gen_flush(struct master_gen *g)
{
    int rc;

    if (!g->ch_open)
        return;
    rc = handoff_channel_flush(&g->ch);
    if (rc == 0)
        event_add(g->wev, NULL);
    else
        event_del(g->wev);
    if (rc < 0) {
        gen_channel_lost(g, "channel write");
        gen_close_channel(g);
    }
}

static void gen_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct master_gen *g = arg;

    if (g->state == GEN_DRAINING) {
        /* The worker ends its own drain at drain_timeout; one that has not
         * exited well after that is wedged. */
        proxy_log_error("worker %ld generation %u still running %" PRIu64 " ms after it "
                        "was told to drain; killing it", (long)g->pid, g->id, g->timeout_ms);
        proxy_process_stop(g->pid, PROXY_PROCESS_KILL);
        return;
    }
    if (g->state != GEN_STARTING)
        return;
    snprintf(g->failure, sizeof(g->failure), "not ready within %" PRIu64 " ms",
             g->timeout_ms);
    proxy_log_error("worker %ld generation %u %s; killing it", (long)g->pid, g->id, g->failure);
    proxy_process_stop(g->pid, PROXY_PROCESS_KILL);
}

void proxy_master_gen_drain_deadline(struct master_gen *g, uint64_t drain_timeout_ms,
                                     uint64_t at_ms)
{
    uint64_t now = proxy_now_ms();

    /* For the log line: how long it was told to drain for by then. */
    g->timeout_ms = drain_timeout_ms + DRAIN_GRACE_MS;
    if (at_ms == 0)
        at_ms = now + g->timeout_ms;
    g->drain_deadline_ms = at_ms;
    proxy_master_timer_add_ms(g->timer, at_ms > now ? at_ms - now : 0);
}

/* Wraps a worker process and its channel end (fd) into a generation. */
struct master_gen *proxy_master_gen_adopt(struct master *m, unsigned id, pid_t pid, int fd,
                                          enum gen_state state)
{
    struct master_gen *g = calloc(1, sizeof(*g));

    if (g == NULL)
        return NULL;
    g->m = m;
    g->id = id;
    g->pid = pid;
    g->state = state;
    g->ch.fd = -1;
    if (fd >= 0 && handoff_channel_init(&g->ch, fd, pid) != 0) {
        proxy_log_error("worker %ld generation %u: channel: %s", (long)pid, id, strerror(errno));
        free(g);
        return NULL;
    }
    g->ch_open = fd >= 0;
    g->next = m->gens;
    m->gens = g;
    g->timer = evtimer_new(m->base, gen_timeout_cb, g);
    if (fd >= 0) {
        g->rev = event_new(m->base, fd, EV_READ | EV_PERSIST, gen_read_cb, g);
        g->wev = event_new(m->base, fd, EV_WRITE, gen_write_cb, g);
    }
    if (g->timer == NULL ||
        (fd >= 0 && (g->rev == NULL || g->wev == NULL || event_add(g->rev, NULL) != 0))) {
        proxy_log_error("worker %ld generation %u: cannot watch its channel", (long)pid, id);
        /* Closing the channel leaves the fd to the caller. */
        g->ch.fd = -1;
        gen_free(g);
        return NULL;
    }
    g->started_ms = proxy_now_ms();
    return g;
}

void proxy_master_spawn(struct master *m, int is_reload)
{
    struct master_gen *g;
    char why[256], caps_env[64];
    pid_t pid;
    int fds[2];

    /* The offer of capabilities: the only way to reach a worker before
     * either side has sent a message an older peer might refuse. */
    snprintf(caps_env, sizeof(caps_env), "%s=%u", HANDOFF_CAPS_ENV, (unsigned)HANDOFF_CAPS_OURS);
    if (handoff_transport_pair(fds) != 0) {
        proxy_log_error("master: cannot start a worker: socketpair: %s", strerror(errno));
        goto fail;
    }
    /* A reload tries the binary it opened; a replacement runs what the
     * serving generation runs, never a file installed since. */
    if (proxy_process_spawn_worker(is_reload ? &m->next_image : &m->serving, m->exe, fds[1],
                                   caps_env, &pid, why, sizeof(why)) != 0) {
        proxy_log_error("master: cannot start a worker: %s", why);
        handoff_transport_close(fds[0]);
        handoff_transport_close(fds[1]);
        goto fail;
    }
    handoff_transport_close(fds[1]);
    g = proxy_master_gen_adopt(m, ++m->last_gen, pid, fds[0], GEN_STARTING);
    if (g == NULL) {
        handoff_transport_close(fds[0]);
        proxy_process_stop(pid, PROXY_PROCESS_KILL);   /* reaped by the exit watch; no generation */
        goto fail;
    }
    g->is_reload = is_reload;
    g->timeout_ms = is_reload ? m->next_conf.global.upgrade_timeout_ms
                              : m->conf.global.upgrade_timeout_ms;
    m->last_spawn_ms = g->started_ms;
    proxy_master_timer_add_ms(g->timer, g->timeout_ms);
    if (is_reload)
        m->upgrading = g;
    proxy_log_info("worker %ld generation %u starting", (long)g->pid, g->id);
    return;
fail:
    if (is_reload)
        proxy_master_reload_abort(m, "cannot start a worker");
    else if (m->respawn_timer != NULL)
        proxy_master_timer_add_ms(m->respawn_timer, 1000);
}

static int master_has_serving_gen(const struct master *m)
{
    for (const struct master_gen *g = m->gens; g != NULL; g = g->next)
        if (g->state == GEN_ACTIVE || (g->state == GEN_STARTING && !g->is_reload))
            return 1;
    return 0;
}

static void respawn_cb(evutil_socket_t fd, short what, void *arg)
{
    struct master *m = arg;

    /* A reload that completed during the back-off already serves: a
     * second worker would be a second active generation. */
    if (m->state == MASTER_RUNNING && !master_has_serving_gen(m))
        proxy_master_spawn(m, 0);
}

static void master_reaped(struct master *m, struct master_gen *g, int status)
{
    char desc[128], reason[HANDOFF_REASON_MAX + 256];
    enum gen_state was = g->state;
    int clean = proxy_process_status_ok(status), was_reload;
    uint64_t lived, delay;

    proxy_process_describe_status(status, desc, sizeof(desc));
    if (clean && (was == GEN_DRAINING || m->state != MASTER_RUNNING))
        proxy_log_info("worker %ld generation %u %s", (long)g->pid, g->id, desc);
    else
        proxy_log_error("worker %ld generation %u %s", (long)g->pid, g->id, desc);
    snprintf(reason, sizeof(reason), "new worker %ld generation %u %s%s%s", (long)g->pid, g->id,
             desc, g->failure[0] ? ": " : "", g->failure);
    lived = proxy_now_ms() - g->started_ms;
    was_reload = m->upgrading == g;
    gen_free(g);
    if (was_reload)
        proxy_master_reload_abort(m, m->state == MASTER_RUNNING ? reason : "the master is stopping");
    if (m->state != MASTER_RUNNING) {
        if (m->gens == NULL)
            event_base_loopbreak(m->base);
        return;
    }
    /* A failed reload leaves the running generation as it was. */
    if (was == GEN_DRAINING || was_reload)
        return;
    if (!m->ever_ready) {
        proxy_log_error("master: the first worker could not start; exiting");
        m->exit_code = 1;
        event_base_loopbreak(m->base);
        return;
    }
    if (master_has_serving_gen(m))
        return;
    /* A worker that keeps dying at once must not turn into a fork loop. */
    m->fast_crashes = lived < 1000 ? m->fast_crashes + 1 : 0;
    delay = m->fast_crashes == 0 ? 0 : 100u << (m->fast_crashes < 6 ? m->fast_crashes : 6);
    if (delay > RESPAWN_MAX_DELAY_MS)
        delay = RESPAWN_MAX_DELAY_MS;
    if (delay == 0) {
        proxy_log_info("master: starting a new worker");
        proxy_master_spawn(m, 0);
    } else {
        proxy_log_warn("master: starting a new worker in %" PRIu64 " ms", delay);
        proxy_master_timer_add_ms(m->respawn_timer, delay);
    }
}

static void child_exit_cb(pid_t pid, int status, void *arg)
{
    struct master *m = arg;
    struct master_gen *g = gen_find_pid(m, pid);

    if (g != NULL)
        master_reaped(m, g, status);
}

/* ---- stop, quit, reload --------------------------------------------- */

static void kill_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct master *m = arg;

    for (struct master_gen *g = m->gens; g != NULL; g = g->next) {
        proxy_log_warn("worker %ld generation %u did not exit in time; killing it",
                       (long)g->pid, g->id);
        proxy_process_stop(g->pid, PROXY_PROCESS_KILL);
    }
}

void proxy_master_stop(struct master *m, int graceful)
{
    if (m->state != MASTER_RUNNING) {
        /* A second fast stop during a graceful one hurries it up. */
        if (!graceful && m->state == MASTER_QUITTING) {
            proxy_log_info("master: fast stop: the draining workers close their connections now");
            m->state = MASTER_STOPPING;
            for (struct master_gen *g = m->gens; g != NULL; g = g->next)
                proxy_process_stop(g->pid, PROXY_PROCESS_STOP);
        }
        return;
    }
    m->state = graceful ? MASTER_QUITTING : MASTER_STOPPING;
    proxy_notify("STOPPING=1\nSTATUS=%s", graceful ? "draining" : "stopping");
    proxy_log_info("master: %s", graceful ? "graceful stop: draining workers"
                                          : "fast stop");
    if (graceful) {
        /* New clients are refused from now on rather than queued for
         * nobody: the master's copy of each socket goes first. */
        for (size_t i = 0; i < m->nsocks; i++)
            proxy_master_sock_close(&m->socks[i]);
    }
    /* A starting worker has nothing to drain (and no drain handler yet). */
    for (struct master_gen *g = m->gens; g != NULL; g = g->next)
        proxy_process_stop(g->pid, graceful && g->state != GEN_STARTING ? PROXY_PROCESS_DRAIN
                                                                        : PROXY_PROCESS_STOP);
    proxy_master_timer_add_ms(m->kill_timer, graceful ? m->conf.global.drain_timeout_ms + STOP_KILL_AFTER_MS
                                         : STOP_KILL_AFTER_MS);
    evtimer_del(m->respawn_timer);
    if (m->gens == NULL)
        event_base_loopbreak(m->base);
}

static void osevent_cb(enum proxy_osevent ev, const char *what, void *arg)
{
    struct master *m = arg;
    char why[CONF_ERR_MAX * 8];

    switch (ev) {
    case PROXY_OSEV_STOP_FAST:
        proxy_master_stop(m, 0);
        break;
    case PROXY_OSEV_STOP_GRACEFUL:
        proxy_master_stop(m, 1);
        break;
    case PROXY_OSEV_RELOAD:
        proxy_log_info("master: %s: reloading", what);
        if (proxy_master_reload(m, why, sizeof(why)) != 0)
            proxy_log_text(CONF_LOG_ERROR, "reload refused: ", why);
        break;
    case PROXY_OSEV_IGNORED:
        proxy_log_info("master: %s ignored", what);
        break;
    }
}

/* ---- main ------------------------------------------------------------- */

static void ticket_rotate_cb(evutil_socket_t fd, short what, void *arg)
{
    struct master *m = arg;
    struct handoff_msg msg;
    uint32_t n = m->tickets.n < HANDOFF_TICKET_KEYS_MAX ? m->tickets.n + 1 : m->tickets.n;
    uint8_t key[HANDOFF_TICKET_KEY_LEN];

    proxy_master_timer_add_ms(m->ticket_timer, m->conf.global.tls_ticket_rotate_ms);
    if (proxy_tls_new_ticket_key(key) != 0)
        return;   /* the keys in use stay; logged */
    /* The new key encrypts from now on; the older ones still decrypt. */
    memmove(m->tickets.keys[1], m->tickets.keys[0], (size_t)(n - 1) * HANDOFF_TICKET_KEY_LEN);
    memcpy(m->tickets.keys[0], key, sizeof(key));
    OPENSSL_cleanse(key, sizeof(key));
    m->tickets.n = n;
    /* A worker that has not said HELLO yet expects its configuration
     * first; it gets the current keys with it (gen_send_setup). */
    for (struct master_gen *g = m->gens; g != NULL; g = g->next)
        if (g->ch_open && g->version[0] != '\0' &&
            handoff_encode_ticket_keys(&msg, g->ch.seq++, &m->tickets) == 0)
            proxy_master_gen_send(g, &msg);
    proxy_log_info("master: TLS session ticket keys rotated");
}

/* Keeps the serving generation's health figures fresh for the next one. */
static void poll_cb(evutil_socket_t fd, short what, void *arg)
{
    struct master *m = arg;

    proxy_master_poll_active_status(m);
    /* Counts of rate-limited messages (a worker's unknown messages). */
    proxy_log_flush_suppressed(0);
    proxy_master_timer_add_ms(m->poll_timer, 1000);
}

static void reexec_cb(evutil_socket_t fd, short what, void *arg)
{
    proxy_master_reexec(arg);
}

static int master_setup_events(struct master *m)
{
    m->children = proxy_process_watch_new(m->base, child_exit_cb, m);
    m->os = proxy_osevents_new(m->base, PROXY_OSEV_MASTER, osevent_cb, m);
    if (m->children == NULL || m->os == NULL)
        return -1;
    m->respawn_timer = evtimer_new(m->base, respawn_cb, m);
    m->kill_timer = evtimer_new(m->base, kill_timer_cb, m);
    m->reexec_timer = evtimer_new(m->base, reexec_cb, m);
    m->ticket_timer = evtimer_new(m->base, ticket_rotate_cb, m);
    m->poll_timer = evtimer_new(m->base, poll_cb, m);
    if (m->tickets.n == 0 && proxy_tls_new_ticket_key(m->tickets.keys[0]) == 0)
        m->tickets.n = 1;   /* else no tickets until a rotation succeeds */
    if (m->ticket_timer != NULL)
        proxy_master_timer_add_ms(m->ticket_timer, m->conf.global.tls_ticket_rotate_ms);
    if (m->poll_timer != NULL)
        proxy_master_timer_add_ms(m->poll_timer, 1000);
    if (m->respawn_timer == NULL || m->kill_timer == NULL ||
        m->reexec_timer == NULL || m->ticket_timer == NULL || m->poll_timer == NULL ||
        proxy_control_endpoint_start(m->ctl_ep, m->base, &m->conf.global,
                                     proxy_master_ctl_client_cb, m) != 0)
        return -1;
    return 0;
}

static void master_free(struct master *m)
{
    while (m->ctls != NULL) {
        if (m->ctls->state != CTL_REPLIED)
            proxy_master_ctl_reply(m->ctls, 0, "the master is exiting\n");
        /* The loop is over: a `stop` with no worker left ends it at once. */
        proxy_master_ctl_flush_now(m->ctls);
        proxy_master_ctl_free(m->ctls);
    }
    while (m->gens != NULL)
        gen_free(m->gens);
    proxy_osevents_free(m->os);
    proxy_process_watch_free(m->children);
    if (m->respawn_timer != NULL)
        event_free(m->respawn_timer);
    if (m->kill_timer != NULL)
        event_free(m->kill_timer);
    if (m->reexec_timer != NULL)
        event_free(m->reexec_timer);
    if (m->ticket_timer != NULL)
        event_free(m->ticket_timer);
    if (m->poll_timer != NULL)
        event_free(m->poll_timer);
    OPENSSL_cleanse(&m->tickets, sizeof(m->tickets));
    proxy_control_endpoint_close(m->ctl_ep);
    for (size_t i = 0; i < m->nsocks; i++)
        proxy_master_sock_close(&m->socks[i]);
    free(m->socks);
    if (m->base != NULL)
        event_base_free(m->base);
    conf_free(&m->conf);
    conf_free(&m->next_conf);
    free(m->text);
    free(m->next_text);
    proxy_image_close(&m->image);
    proxy_image_close(&m->serving);
    proxy_image_close(&m->next_image);
}

/* What both a fresh start and a resumed image need first. */
static struct master *master_new(void)
{
    struct master *m = calloc(1, sizeof(*m));

    if (m == NULL)
        return NULL;
    m->image = m->serving = m->next_image = (struct proxy_image)PROXY_IMAGE_NONE;
    if (proxy_net_init() != 0) {
        free(m);
        return NULL;
    }
    proxy_notify_init();
    if (proxy_process_self_exe(m->exe, sizeof(m->exe)) != 0) {
        proxy_log_error("master: cannot find its own executable: %s", strerror(errno));
        free(m);
        return NULL;
    }
    m->base = event_base_new();
    if (m->base == NULL) {
        proxy_log_error("master: cannot create event base");
        free(m);
        return NULL;
    }
    return m;
}

static int master_run(struct master *m)
{
    int rc = 1;

    if (event_base_dispatch(m->base) < 0)
        proxy_log_error("master: event loop failed");
    else
        rc = m->exit_code;
    master_free(m);
    free(m);
    proxy_log_info("master exiting");
    return rc;
}

int proxy_master_main(struct conf *conf, char *conf_text)
{
    struct master *m = master_new();
    char why[512];

    if (m == NULL) {
        conf_free(conf);
        free(conf_text);
        return 1;
    }
    m->conf = *conf;
    memset(conf, 0, sizeof(*conf));
    m->text = conf_text;
    m->start_ms = proxy_now_ms();
    if (proxy_image_open_self(&m->image, why, sizeof(why)) != 0 ||
        proxy_image_dup(&m->serving, &m->image) != 0) {
        proxy_log_error("master: cannot hold its own executable open: %s", why);
        goto fail;
    }
    proxy_log_set_level(m->conf.global.log_level);
    m->ctl_ep = proxy_control_endpoint_open(&m->conf, why, sizeof(why));
    if (m->ctl_ep == NULL) {
        proxy_log_error("master: %s", why);
        goto fail;
    }
    proxy_activation_collect(&m->activated, &m->nactivated);
    if (proxy_master_socks_prepare(m, &m->conf, 0, why, sizeof(why)) != 0) {
        proxy_log_error("master: %s", why);
        goto fail;
    }
    proxy_activation_close_unused(&m->activated, &m->nactivated);
    if (master_setup_events(m) != 0) {
        proxy_log_error("master: cannot set up events");
        goto fail;
    }
    proxy_log_info("master %ld started (baton %s, config %s)", (long)getpid(), BATON_VERSION,
                   m->conf.path);
    proxy_master_spawn(m, 0);
    if (m->gens == NULL)
        goto fail;
    return master_run(m);
fail:
    master_free(m);
    free(m);
    proxy_log_info("master exiting");
    return 1;
}

int proxy_master_resume(int state_fd)
{
    struct master *m = master_new();
    unsigned ngens = 0;
    char why[512];

    if (m == NULL)
        return 1;
    m->resumed = 1;
    if (proxy_master_restore(m, state_fd, why, sizeof(why)) != 0 ||
        master_setup_events(m) != 0) {
        proxy_log_error("master: cannot resume after re-executing: %s", why);
        master_free(m);
        free(m);
        return 1;
    }
    proxy_log_set_level(m->conf.global.log_level);
    for (const struct master_gen *g = m->gens; g != NULL; g = g->next)
        ngens++;
    proxy_log_info("master %ld resumed as baton %s (%s), %u worker generation(s), the newest %u",
                   (long)getpid(), BATON_VERSION, m->exe, ngens, m->last_gen);
    proxy_notify("READY=1\nSTATUS=serving: master re-executed as baton %s", BATON_VERSION);
    /* Signals held across exec are delivered now; workers that ended
     * while no handler was installed are reaped in the loop's first round
     * (proxy_process_watch_new). */
    proxy_master_unblock_signals();
    return master_run(m);
}
