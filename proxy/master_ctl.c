/*
 * master_ctl.c - the master's side of the control socket: one command per
 * connection (status, stop, quit, reload), answered "OK\n..." or "ERR ...".
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/util.h>

#include "control.h"
#include "ctl_command.h"
#include "log.h"
#include "logsafe.h"
#include "master_int.h"
#include "netutil.h"

/* Whole-command and whole-answer deadlines, however the bytes trickle:
 * a client sending (or reading) one byte at a time cannot keep a slot. */
#define CTL_COMMAND_DEADLINE_MS 5000   /* from accept to the command's newline */
#define CTL_ANSWER_DEADLINE_MS  10000  /* from the answer queued to it all sent */
#define CTL_MAX_CLIENTS     64

void proxy_master_ctl_free(struct master_ctl *c)
{
    struct master_ctl **pp;

    for (pp = &c->m->ctls; *pp != NULL; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    if (c->m->reload_ctl == c)
        c->m->reload_ctl = NULL;
    if (c->timer != NULL)
        event_free(c->timer);
    if (c->deadline != NULL)
        event_free(c->deadline);
    bufferevent_free(c->bev);
    free(c);
}

void proxy_master_ctl_flush_now(struct master_ctl *c)
{
    struct evbuffer_iovec vec[4];
    int nvec;

    /* Best effort, without the loop: the bufferevent keeps its output
     * frozen, so the bytes are peeked and sent directly. */
    nvec = evbuffer_peek(bufferevent_get_output(c->bev), -1, NULL, vec, 4);
    proxy_control_endpoint_send_now(bufferevent_getfd(c->bev), vec, nvec < 4 ? nvec : 4);
}

/* The answer is queued: nothing more is read, and the client has
 * CTL_ANSWER_DEADLINE_MS to take all of it. */
static void ctl_answer_queued(struct master_ctl *c)
{
    c->state = CTL_REPLIED;
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_enable(c->bev, EV_WRITE);
    if (c->deadline != NULL)
        proxy_master_timer_add_ms(c->deadline, CTL_ANSWER_DEADLINE_MS);
}

void proxy_master_ctl_reply(struct master_ctl *c, int ok, const char *fmt, ...)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    va_list ap;

    evbuffer_add_printf(out, "%s", ok ? "OK\n" : "ERR ");
    va_start(ap, fmt);
    evbuffer_add_vprintf(out, fmt, ap);
    va_end(ap);
    ctl_answer_queued(c);
}

/*
 * A worker lists its servers and listeners in its configuration's order, so
 * an entry is looked for from `at`, its position in the master's: with the
 * same configuration each is found at once, and at worst all are scanned.
 */
static const struct handoff_server_health *status_server(const struct handoff_status *st,
                                                         const char *backend,
                                                         const char *server, size_t at)
{
    uint32_t n = st != NULL ? st->servers.nservers : 0;

    for (uint32_t k = 0; k < n; k++) {
        const struct handoff_server_health *h = &st->servers.servers[(at + k) % n];

        if (strcmp(h->server, server) == 0 && strcmp(h->backend, backend) == 0)
            return h;
    }
    return NULL;
}

static const struct handoff_listener_stats *status_listener(const struct handoff_status *st,
                                                            const char *name, size_t at)
{
    uint32_t n = st != NULL ? st->nlisteners : 0;

    for (uint32_t k = 0; k < n; k++) {
        const struct handoff_listener_stats *l = &st->listeners[(at + k) % n];

        if (strcmp(l->name, name) == 0)
            return l;
    }
    return NULL;
}

/* Servers as the newest serving generation sees them. */
static void status_servers(struct master *m, struct evbuffer *out)
{
    const struct handoff_status *st = NULL;
    size_t at = 0;

    for (struct master_gen *g = m->gens; g != NULL && st == NULL; g = g->next)
        if (g->state == GEN_ACTIVE && g->status != NULL)
            st = g->status;
    for (size_t b = 0; b < m->conf.nbackends; b++) {
        const struct conf_backend *cb = &m->conf.backends[b];

        for (size_t k = 0; k < cb->nservers; k++, at++) {
            const struct handoff_server_health *h =
                status_server(st, cb->name, cb->servers[k].name, at);

            evbuffer_add_printf(out, "server backend=%s name=%s address=%s state=%s "
                                "connections=%" PRIu64 " total=%" PRIu64 " failures=%" PRIu64
                                "\n", cb->name, cb->servers[k].name, cb->servers[k].addr.text,
                                h == NULL ? "unknown" : h->down ? "down" : "up",
                                h ? h->active : 0, h ? h->total : 0, h ? h->failures : 0);
        }
    }
}

void proxy_master_status_reply(struct master_ctl *c)
{
    struct master *m = c->m;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char path[CONF_PATH_MAX], exe[PATH_MAX];

    if (c->timer != NULL)
        evtimer_del(c->timer);
    evbuffer_add_printf(out, "OK\nbaton version=%s\n", BATON_VERSION);
    /* Paths are fields here: a space or a newline in one must not make
     * another field or line.  Worker versions were escaped on arrival. */
    evbuffer_add_printf(out, "master pid=%ld uptime=%" PRIu64 "s config=%s binary=%s\n",
                        (long)getpid(), (proxy_now_ms() - m->start_ms) / 1000,
                        proxy_logsafe(path, sizeof(path), m->conf.path, PROXY_LOGSAFE_FIELD),
                        proxy_logsafe(exe, sizeof(exe), m->exe, PROXY_LOGSAFE_FIELD));
    for (struct master_gen *g = m->gens; g != NULL; g = g->next) {
        const struct handoff_status *st = g->status;

        evbuffer_add_printf(out, "worker generation=%u pid=%ld state=%s connections=%" PRIu64
                            " total=%" PRIu64 " version=%s uptime=%" PRIu64 "s"
                            " tls_failures=%" PRIu64 " adopted=%" PRIu64 " orphans=%" PRIu64
                            " handed_over=%" PRIu64 "\n",
                            g->id, (long)g->pid, proxy_master_gen_state_name(g->state),
                            st ? st->active : 0, st ? st->total : 0,
                            g->version[0] ? g->version : "-",
                            (proxy_now_ms() - g->started_ms) / 1000, st ? st->tls_failures : 0,
                            st ? st->adopted : 0, st ? st->orphans : 0,
                            st ? st->handed_over : 0);
    }
    status_servers(m, out);
    for (size_t i = 0; i < m->conf.nlisteners; i++) {
        const char *name = m->conf.listeners[i].name;
        uint64_t active = 0, total = 0;
        int first = 1;

        for (struct master_gen *g = m->gens; g != NULL; g = g->next) {
            const struct handoff_listener_stats *l = status_listener(g->status, name, i);

            if (l != NULL) {
                active += l->active;
                total += l->total;
            }
        }
        evbuffer_add_printf(out, "listener name=%s address=", name);
        for (size_t s = 0; s < m->nsocks; s++) {
            if (!m->socks[s].in_current || strcmp(m->socks[s].name, name) != 0)
                continue;
            evbuffer_add_printf(out, "%s%s", first ? "" : ",", m->socks[s].actual);
            first = 0;
        }
        evbuffer_add_printf(out, " connections=%" PRIu64 " total=%" PRIu64 "\n", active, total);
    }
    ctl_answer_queued(c);
}

static void ctl_status_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct master_ctl *c = arg;

    /* Report what arrived; a worker too busy to answer shows its last figures. */
    if (c->state == CTL_WAITING)
        proxy_master_status_reply(c);
}

static void ctl_status(struct master_ctl *c)
{
    struct master *m = c->m;
    struct handoff_status_req req = { .id = ++m->status_seq };
    struct handoff_msg msg;

    c->status_id = req.id;
    c->waiting = 0;
    c->state = CTL_WAITING;
    for (struct master_gen *g = m->gens; g != NULL; g = g->next) {
        if (!g->ch_open || g->state == GEN_STARTING)
            continue;
        if (handoff_encode_status_req(&msg, g->ch.seq++, &req) != 0)
            continue;
        proxy_master_gen_send(g, &msg);
        c->waiting++;
    }
    if (c->waiting == 0) {
        proxy_master_status_reply(c);
        return;
    }
    c->timer = evtimer_new(m->base, ctl_status_timeout_cb, c);
    if (c->timer == NULL) {
        proxy_master_status_reply(c);
        return;
    }
    proxy_master_timer_add_ms(c->timer, STATUS_TIMEOUT_MS);
}

static void ctl_command(struct master_ctl *c, enum proxy_ctl_cmd cmd)
{
    struct master *m = c->m;
    char why[CONF_ERR_MAX * 8];

    if (cmd != PROXY_CTL_STATUS)
        proxy_log_info("control socket: %s from pid %ld uid %ld", proxy_ctl_command_name(cmd),
                       (long)c->cred.pid, (long)c->cred.uid);
    switch (cmd) {
    case PROXY_CTL_STATUS:
        ctl_status(c);
        break;
    case PROXY_CTL_STOP:
        proxy_master_ctl_reply(c, 1, "stopping\n");
        proxy_master_stop(m, 0);
        break;
    case PROXY_CTL_QUIT:
        proxy_master_ctl_reply(c, 1, "quitting: draining connections\n");
        proxy_master_stop(m, 1);
        break;
    case PROXY_CTL_RELOAD:
        if (proxy_master_reload(m, why, sizeof(why)) != 0) {
            proxy_log_text(CONF_LOG_ERROR, "reload refused: ", why);
            proxy_master_ctl_reply(c, 0, "reload refused: %s\n", why);
        } else {
            c->state = CTL_WAITING;
            m->reload_ctl = c;
        }
        break;
    }
}

/* Parses what has arrived; runs the command once its line is complete. */
static void ctl_take_line(struct master_ctl *c, int at_eof)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t len = evbuffer_get_length(in);
    enum proxy_ctl_cmd cmd;
    char why[512];
    const char *buf;

    if (len > PROXY_CTL_LINE_MAX + 2)
        len = PROXY_CTL_LINE_MAX + 2;   /* enough to see the newline, or that it is late */
    buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
    if (buf == NULL && len > 0) {
        proxy_log_error("control socket: out of memory reading a command");
        proxy_master_ctl_free(c);
        return;
    }
    switch (proxy_ctl_parse_command(buf, len, at_eof, &cmd, why, sizeof(why))) {
    case PROXY_CTL_PARSE_MORE:
        return;
    case PROXY_CTL_PARSE_BAD:
        proxy_log_warn("control socket: client pid %ld uid %ld: %s; nothing run",
                       (long)c->cred.pid, (long)c->cred.uid, why);
        proxy_master_ctl_reply(c, 0, "%s\n", why);
        return;
    case PROXY_CTL_PARSE_OK:
        break;
    }
    /* One command per connection: nothing more is read, so a client that
     * keeps sending cannot grow the master's memory while a reload runs,
     * and one that half-closes after its command still gets the answer.
     * Waiting for a status or reload outcome is bounded by those. */
    bufferevent_disable(c->bev, EV_READ);
    if (c->deadline != NULL)
        evtimer_del(c->deadline);
    ctl_command(c, cmd);
}

static void ctl_read_cb(struct bufferevent *bev, void *arg)
{
    struct master_ctl *c = arg;

    if (c->state == CTL_READING)
        ctl_take_line(c, 0);
}

static void ctl_write_cb(struct bufferevent *bev, void *arg)
{
    struct master_ctl *c = arg;

    if (c->state == CTL_REPLIED && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        proxy_master_ctl_free(c);
}

static void ctl_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct master_ctl *c = arg;

    /* A client that half-closed after part of a line is told why nothing
     * ran; one that went away (or sent nothing) is just forgotten.  A
     * reload it started still completes. */
    if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) && c->state == CTL_READING &&
        evbuffer_get_length(bufferevent_get_input(bev)) > 0) {
        ctl_take_line(c, 1);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        proxy_master_ctl_free(c);
}

static void ctl_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct master_ctl *c = arg;

    if (c->state == CTL_READING) {
        proxy_log_warn("control socket: client pid %ld uid %ld sent no complete command "
                       "within %d ms; closed", (long)c->cred.pid, (long)c->cred.uid,
                       CTL_COMMAND_DEADLINE_MS);
        proxy_master_ctl_reply(c, 0, "no complete command line within %d ms\n",
                               CTL_COMMAND_DEADLINE_MS);
        return;
    }
    proxy_log_warn("control socket: client pid %ld uid %ld did not take its answer within "
                   "%d ms; closed", (long)c->cred.pid, (long)c->cred.uid,
                   CTL_ANSWER_DEADLINE_MS);
    proxy_master_ctl_free(c);
}

/* Serves a connected control client on fd (taken over); who it is comes
 * with it, or (cred NULL: a client carried across a binary upgrade) is
 * asked of the socket. */
struct master_ctl *proxy_master_ctl_adopt(struct master *m, int fd,
                                          const struct proxy_peer_cred *cred)
{
    struct master_ctl *c = calloc(1, sizeof(*c));
    char why[256];

    if (c == NULL || (c->bev = bufferevent_socket_new(m->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL ||
        (c->deadline = evtimer_new(m->base, ctl_deadline_cb, c)) == NULL) {
        proxy_log_error("control socket: out of memory");
        if (c != NULL && c->bev != NULL)
            bufferevent_free(c->bev);
        else
            evutil_closesocket(fd);
        free(c);
        return NULL;
    }
    if (cred != NULL) {
        c->cred = *cred;
    } else if (proxy_peer_cred_get(fd, &c->cred, why, sizeof(why)) != 0) {
        /* Only for log lines: access was decided at accept. */
        c->cred.pid = -1;
        c->cred.uid = (uid_t)-1;
    }
    c->m = m;
    c->state = CTL_READING;
    c->next = m->ctls;
    m->ctls = c;
    bufferevent_setcb(c->bev, ctl_read_cb, ctl_write_cb, ctl_event_cb, c);
    proxy_master_timer_add_ms(c->deadline, CTL_COMMAND_DEADLINE_MS);
    bufferevent_enable(c->bev, EV_READ);
    return c;
}

void proxy_master_ctl_client_cb(int fd, const struct proxy_peer_cred *cred, void *arg)
{
    struct master *m = arg;
    size_t n = 0;

    for (const struct master_ctl *c = m->ctls; c != NULL; c = c->next)
        n++;
    if (n >= CTL_MAX_CLIENTS) {
        proxy_log_warn("control socket: %zu clients connected; refusing one more", n);
        proxy_control_endpoint_refuse(fd, "too many control clients; try again");
        return;
    }
    (void)proxy_master_ctl_adopt(m, fd, cred);
}
