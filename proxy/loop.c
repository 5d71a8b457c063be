/*
 * loop.c - an event-loop thread of the worker.
 */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "conn_msg.h"
#include "connection.h"
#include "heap.h"
#include "fdlimit.h"
#include "link.h"
#include "log.h"
#include "netutil.h"
#include "tls.h"
#include "transport.h"
#include "wakeup.h"
#include "worker.h"

/* Splice pipes cost two descriptors each: give them at most a quarter of
 * the descriptor limit, shared between the loops. */
static unsigned proxy_loop_pipe_budget(unsigned nloops)
{
    uint64_t n = proxy_fdlimit_nofile();

    if (n == 0)
        return 1024;
    n = n / 8 / (nloops ? nloops : 1);
    return n > 65536 ? 65536 : (unsigned)n;
}

static void loop_resume_accepts(struct proxy_loop *loop)
{
    if (!loop->accepting || loop->draining)
        return;
    for (size_t i = 0; i < loop->naccepts; i++) {
        struct proxy_accept *a = &loop->accepts[i];

        a->paused = 0;
        proxy_accept_watch(a, 1);
    }
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_loop *loop = arg;

    loop->retry_armed = 0;
    loop_resume_accepts(loop);
}

void proxy_loop_pause_accepts(struct proxy_loop *loop, struct proxy_accept *only,
                              uint64_t retry_ms)
{
    for (size_t i = 0; i < loop->naccepts; i++) {
        struct proxy_accept *a = &loop->accepts[i];

        if (only != NULL && a != only)
            continue;
        a->paused = 1;
        proxy_accept_watch(a, 0);
    }
    /* Slots freed by another loop's connections are not announced here, so
     * look again after a while. */
    if (!loop->retry_armed) {
        if (proxy_timer_add_ms(&loop->retry_ev, retry_ms) == 0)
            loop->retry_armed = 1;
        else
            proxy_log_error("loop %u: cannot arm accept retry timer", loop->index);
    }
}

static int loop_any_paused(const struct proxy_loop *loop)
{
    for (size_t i = 0; i < loop->naccepts; i++)
        if (loop->accepts[i].paused)
            return 1;
    return 0;
}

/*
 * After a burst (thousands of handshakes, ~45 KB of OpenSSL state each)
 * the freed memory stays with the allocator.  So once a loop's connections
 * have fallen by a quarter of their peak, and by at least
 * LOOP_TRIM_MIN_DROP, it is given back a second later (the rest of the
 * burst closes meanwhile), and not more often than every
 * LOOP_TRIM_INTERVAL_MS.  Steady traffic, whose count does not fall that
 * far, never pays for a trim.
 */
#define LOOP_TRIM_MIN_DROP    256
#define LOOP_TRIM_DELAY_MS    1000
#define LOOP_TRIM_INTERVAL_MS 5000

static void trim_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_loop *loop = arg;
    uint64_t t0 = proxy_now_ms();

    loop->trim_armed = 0;
    proxy_heap_trim();
    loop->trim_ms = proxy_now_ms();
    proxy_log_debug("loop %u: connections fell from %lu to %lu: freed memory given back "
                    "(%lu ms)", loop->index, (unsigned long)loop->peak_conns,
                    (unsigned long)loop->nconns, (unsigned long)(loop->trim_ms - t0));
    loop->peak_conns = loop->nconns;
}

static void loop_trim_check(struct proxy_loop *loop)
{
    uint64_t drop = loop->peak_conns - loop->nconns, delay = LOOP_TRIM_DELAY_MS, since;

    if (loop->trim_armed || drop < LOOP_TRIM_MIN_DROP || drop < loop->peak_conns / 4)
        return;
    since = proxy_now_ms() - loop->trim_ms;
    if (loop->trim_ms != 0 && since + delay < LOOP_TRIM_INTERVAL_MS)
        delay = LOOP_TRIM_INTERVAL_MS - since;
    if (proxy_timer_add_ms(&loop->trim_ev, delay) == 0)
        loop->trim_armed = 1;
    else
        proxy_log_error("loop %u: cannot arm the heap trim timer", loop->index);
}

void proxy_loop_conn_opened(struct proxy_loop *loop)
{
    loop->nconns++;
    if (loop->nconns > loop->peak_conns)
        loop->peak_conns = loop->nconns;
}

void proxy_loop_check_done(struct proxy_loop *loop)
{
    if (loop->draining && loop->nconns == 0 && loop->links == NULL)
        event_base_loopbreak(loop->base);
}

void proxy_loop_conn_closed(struct proxy_loop *loop)
{
    if (loop->draining) {
        proxy_loop_check_done(loop);
        return;
    }
    loop_trim_check(loop);
    if (loop_any_paused(loop))
        loop_resume_accepts(loop);
}

static void loop_close_accepts(struct proxy_loop *loop)
{
    for (size_t i = 0; i < loop->naccepts; i++)
        proxy_accept_close(&loop->accepts[i]);
}

static void loop_close_conns(struct proxy_loop *loop, enum proxy_end why)
{
    while (loop->conns != NULL)
        proxy_conn_close(loop->conns, why);
}

/* Takes the links the main thread queued; with stop, closes them instead
 * (the loop is ending: the other side sees EOF and keeps what it has). */
static void loop_take_links(struct proxy_loop *loop, int stop)
{
    struct handoff_link *links;
    size_t n;

    pthread_mutex_lock(&loop->pending_mu);
    links = loop->pending;
    n = loop->npending;
    loop->pending = NULL;
    loop->npending = 0;
    if (stop)
        loop->finished = 1;
    pthread_mutex_unlock(&loop->pending_mu);
    for (size_t i = 0; i < n; i++) {
        if (stop) {
            handoff_transport_close(links[i].fd);
            proxy_worker_link_ended(loop->worker, links[i].role, 0, 0);
            continue;
        }
        if (links[i].role == HANDOFF_LINK_GIVE) {
            /* A giving loop stops accepting before it freezes anything. */
            loop->draining = 1;
            loop_close_accepts(loop);
        }
        proxy_link_start(loop, &links[i]);
    }
    free(links);
}

int proxy_loop_add_link(struct proxy_loop *loop, const struct handoff_link *hl)
{
    struct handoff_link *grown;
    int finished;

    pthread_mutex_lock(&loop->pending_mu);
    finished = loop->finished;
    grown = finished ? NULL : realloc(loop->pending, (loop->npending + 1) * sizeof(*grown));
    if (grown != NULL) {
        loop->pending = grown;
        loop->pending[loop->npending++] = *hl;
    }
    pthread_mutex_unlock(&loop->pending_mu);
    if (grown == NULL) {
        handoff_transport_close(hl->fd);
        proxy_worker_link_ended(loop->worker, hl->role, 0, 0);
        return -1;
    }
    return proxy_loop_command(loop, PROXY_LOOP_LINKS);
}

static void loop_handle(struct proxy_loop *loop, enum proxy_loop_cmd cmd)
{
    switch (cmd) {
    case PROXY_LOOP_STOP_ACCEPTING:
        loop->accepting = 0;
        for (size_t i = 0; i < loop->naccepts; i++)
            proxy_accept_watch(&loop->accepts[i], 0);
        break;
    case PROXY_LOOP_RESUME_ACCEPTING:
        loop->accepting = 1;
        loop_resume_accepts(loop);
        break;
    case PROXY_LOOP_DRAIN:
        loop->draining = 1;
        loop_close_accepts(loop);
        proxy_loop_check_done(loop);
        break;
    case PROXY_LOOP_LINKS:
        loop_take_links(loop, 0);
        break;
    case PROXY_LOOP_DRAIN_TIMEOUT:
        loop->draining = 1;
        loop_close_accepts(loop);
        proxy_link_stop_all(loop);
        loop_close_conns(loop, PROXY_END_DRAIN_TIMEOUT);
        event_base_loopbreak(loop->base);
        break;
    case PROXY_LOOP_EXIT:
        loop->draining = 1;
        loop_close_accepts(loop);
        proxy_link_stop_all(loop);
        loop_close_conns(loop, PROXY_END_SHUTDOWN);
        event_base_loopbreak(loop->base);
        break;
    default:
        proxy_log_error("loop %u: unknown command %d", loop->index, (int)cmd);
        break;
    }
}

/* The queue is taken whole, then run without the lock: a command may
 * queue another (or the main thread may, meanwhile), which a new poke
 * brings. */
static void cmd_cb(void *arg)
{
    struct proxy_loop *loop = arg;
    char cmds[PROXY_LOOP_CMDS_MAX];
    unsigned n;

    pthread_mutex_lock(&loop->pending_mu);
    n = loop->ncmds;
    memcpy(cmds, loop->cmds, n);
    loop->ncmds = 0;
    pthread_mutex_unlock(&loop->pending_mu);
    for (unsigned i = 0; i < n; i++)
        loop_handle(loop, (enum proxy_loop_cmd)cmds[i]);
}

int proxy_loop_command(struct proxy_loop *loop, enum proxy_loop_cmd cmd)
{
    int queued;

    pthread_mutex_lock(&loop->pending_mu);
    queued = loop->ncmds < sizeof(loop->cmds);
    if (queued)
        loop->cmds[loop->ncmds++] = (char)cmd;
    pthread_mutex_unlock(&loop->pending_mu);
    if (!queued) {
        proxy_log_error("loop %u: cannot send command '%c': %u commands already waiting",
                        loop->index, (char)cmd, (unsigned)PROXY_LOOP_CMDS_MAX);
        return -1;
    }
    proxy_wakeup_poke(loop->cmd_wake);
    return 0;
}

int proxy_loop_init(struct proxy_loop *loop, struct proxy_worker *w, unsigned index)
{
    struct event_config *cfg;
    size_t n = 0;

    memset(loop, 0, sizeof(*loop));
    if (pthread_mutex_init(&loop->pending_mu, NULL) != 0)
        return -1;
    loop->worker = w;
    loop->index = index;
    loop->accepting = 1;
    /* Only this loop's thread touches its base. */
    cfg = event_config_new();
    if (cfg == NULL || event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK) != 0)
        goto fail_cfg;
    loop->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (loop->base == NULL)
        return -1;
    loop->cmd_wake = proxy_wakeup_new(loop->base, cmd_cb, loop);
    if (loop->cmd_wake == NULL)
        return -1;
    if (evtimer_assign(&loop->retry_ev, loop->base, retry_cb, loop) != 0 ||
        evtimer_assign(&loop->trim_ev, loop->base, trim_cb, loop) != 0)
        return -1;
    loop->scratch_len = (size_t)w->conf.global.buffer_size;
    loop->max_pipes = proxy_loop_pipe_budget(w->nloops);
    loop->scratch = malloc(loop->scratch_len);
    if (loop->scratch == NULL)
        return -1;
    loop->balance = calloc(w->nbackends, sizeof(*loop->balance));
    if (w->nbackends > 0 && loop->balance == NULL)
        return -1;
    for (size_t i = 0; i < w->nbackends; i++)
        if (proxy_balance_init(&loop->balance[i], &w->backends[i],
                               proxy_now_ms() * 2654435761u + index + i + 1) != 0)
            return -1;
    for (size_t i = 0; i < w->nlisteners; i++)
        n += w->listeners[i].nfds;
    loop->accepts = calloc(n ? n : 1, sizeof(*loop->accepts));
    if (loop->accepts == NULL)
        return -1;
    for (size_t i = 0; i < w->nlisteners; i++) {
        struct proxy_listener *l = &w->listeners[i];

        for (size_t j = 0; j < l->nfds; j++) {
            if (proxy_accept_init(&loop->accepts[loop->naccepts], loop, l, l->fds[j]) != 0)
                return -1;
            loop->naccepts++;
        }
    }
    return 0;
fail_cfg:
    if (cfg != NULL)
        event_config_free(cfg);
    return -1;
}

void proxy_loop_prepare(struct proxy_loop *loop)
{
    for (size_t i = 0; i < loop->naccepts; i++)
        proxy_accept_watch(&loop->accepts[i], 1);
}

void proxy_loop_finish(struct proxy_loop *loop)
{
    /* Whatever made the loop stop, nothing of it may outlive it. */
    loop_close_accepts(loop);
    loop_take_links(loop, 1);
    proxy_link_stop_all(loop);
    loop_close_conns(loop, PROXY_END_SHUTDOWN);
    proxy_tls_release_cache();
}

/* One turn: 1 if the loop must stop, -1 on failure, else 0. */
static int loop_turn(struct event_base *base, int flags)
{
    int rc = event_base_loop(base, EVLOOP_ONCE | flags);

    if (rc < 0)
        return -1;
    /* 1: nothing left to wait for, as event_base_dispatch would return. */
    return rc == 1 || event_base_got_break(base) || event_base_got_exit(base);
}

int proxy_loop_dispatch(struct proxy_loop *loop, struct event_base *base)
{
    uint64_t spin = loop->worker->conf.global.busy_poll_us, last = 0;
    int rc;

    if (spin == 0)
        return event_base_dispatch(base);
    for (;;) {
        uint64_t worked = loop->worked;
        /* Polling only while the last work is recent: an idle loop sleeps. */
        int sleep_ok = proxy_now_us() - last >= spin;

        rc = loop_turn(base, sleep_ok ? 0 : EVLOOP_NONBLOCK);
        if (rc != 0)
            return rc < 0 ? -1 : 0;
        if (loop->worked != worked)
            last = proxy_now_us();
    }
}

static void *loop_thread(void *arg)
{
    struct proxy_loop *loop = arg;

    proxy_loop_prepare(loop);
    if (proxy_loop_dispatch(loop, loop->base) < 0)
        proxy_log_error("loop %u: event loop failed", loop->index);
    proxy_loop_finish(loop);
    atomic_fetch_add(&loop->worker->loops_done, 1);
    proxy_wakeup_poke(loop->worker->done_wake);
    return NULL;
}

int proxy_loop_start(struct proxy_loop *loop)
{
    int rc = pthread_create(&loop->thread, NULL, loop_thread, loop);

    if (rc != 0) {
        errno = rc;
        return -1;
    }
    loop->started = 1;
    return 0;
}

void proxy_loop_join(struct proxy_loop *loop)
{
    if (loop->started) {
        int rc = pthread_join(loop->thread, NULL);

        if (rc != 0)
            proxy_log_error("loop %u: pthread_join: %s", loop->index, strerror(rc));
        loop->started = 0;
    }
}

void proxy_loop_free(struct proxy_loop *loop)
{
    loop_close_accepts(loop);
    if (loop->worker != NULL) {
        loop_take_links(loop, 1);
        proxy_link_stop_all(loop);
        pthread_mutex_destroy(&loop->pending_mu);
    }
    loop_close_conns(loop, PROXY_END_SHUTDOWN);
    proxy_wakeup_free(loop->cmd_wake);
    if (loop->base != NULL) {
        event_del(&loop->retry_ev);
        event_del(&loop->trim_ev);
    }
    for (size_t i = 0; loop->balance != NULL && i < loop->worker->nbackends; i++)
        proxy_balance_free(&loop->balance[i]);
    free(loop->balance);
    free(loop->accepts);
    free(loop->scratch);
    if (loop->base != NULL)
        event_base_free(loop->base);
    memset(loop, 0, sizeof(*loop));
}
