#include "health.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "port_net.h"
#include <unistd.h>

#include <event2/event_struct.h>

#include "backend.h"
#include "log.h"
#include "logsafe.h"
#include "netutil.h"
#include "proxyproto.h"
#include "tls.h"
#include "worker.h"

enum probe_state { PROBE_IDLE, PROBE_CONNECTING, PROBE_HANDSHAKE };

struct probe {
    struct proxy_backend *b;
    struct proxy_server  *s;
    struct event_base    *base;
    struct event          timer;    /* next probe */
    struct event          io;       /* the probe in flight (with its timeout) */
    enum probe_state      state;
    int                   fd;
    struct proxy_tls     *tls;
    uint64_t              deadline_ms;
};

struct proxy_health {
    struct probe *probes;
    size_t        n;
};

static void probe_io_cb(evutil_socket_t fd, short what, void *arg);

static void tv_ms(struct timeval *tv, uint64_t ms)
{
    tv->tv_sec = (time_t)(ms / 1000);
    tv->tv_usec = (long)(ms % 1000) * 1000;
}

static void probe_reset(struct probe *p)
{
    event_del(&p->io);
    if (p->tls != NULL) {
        proxy_tls_free(p->tls);
        free(p->tls);
        p->tls = NULL;
    }
    if (p->fd >= 0)
        proxy_sock_close(p->fd);
    p->fd = -1;
    p->state = PROBE_IDLE;
}

static void probe_done(struct probe *p, int ok, const char *why)
{
    struct timeval tv;

    probe_reset(p);
    if (ok) {
        proxy_server_check_ok(p->s);
    } else {
        char safe[PROXY_LOGSAFE_BUF];

        /* The reason can come from the server (its TLS alerts). */
        proxy_log_debug("backend %s: check of server %s failed: %s", p->b->conf->name,
                        p->s->conf->name, proxy_logsafe(safe, sizeof(safe), why,
                                                        PROXY_LOGSAFE_TEXT));
        proxy_server_failed(p->s);
    }
    tv_ms(&tv, p->b->conf->check_interval_ms);
    if (evtimer_add(&p->timer, &tv) != 0)
        proxy_log_error("backend %s: cannot schedule checks", p->b->conf->name);
}

/* Waits for fd events with what is left of the check timeout. */
static void probe_wait(struct probe *p, short what)
{
    struct timeval tv;
    uint64_t now = proxy_now_ms();

    event_del(&p->io);
    event_assign(&p->io, p->base, p->fd, what, probe_io_cb, p);
    tv_ms(&tv, p->deadline_ms > now ? p->deadline_ms - now : 1);
    if (event_add(&p->io, &tv) != 0)
        probe_done(p, 0, "cannot watch the socket");
}

static void probe_handshake(struct probe *p)
{
    char why[256], buf[4096];
    ssize_t r;
    int flushed;

    r = proxy_recv(p->fd, buf, sizeof(buf), 0);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        probe_done(p, 0, r == 0 ? "closed during the TLS handshake"
                                  : proxy_sock_strerror(errno));
        return;
    }
    if (r > 0 && proxy_tls_feed(p->tls, (const uint8_t *)buf, (size_t)r, why, sizeof(why)) !=
                     PROXY_TLS_OK) {
        probe_done(p, 0, why);
        return;
    }
    switch (proxy_tls_handshake(p->tls, why, sizeof(why))) {
    case PROXY_TLS_OK:
        probe_done(p, 1, NULL);
        return;
    case PROXY_TLS_WANT:
        break;
    default:
        probe_done(p, 0, why);
        return;
    }
    flushed = proxy_tls_flush(p->tls, p->fd);
    if (flushed < 0) {
        probe_done(p, 0, proxy_sock_strerror(errno));
        return;
    }
    probe_wait(p, (short)(EV_READ | (flushed == 0 ? EV_WRITE : 0)));
}

static size_t probe_proxy_header(const struct probe *p, uint8_t *buf, size_t n)
{
    struct proxy_pp_info pp = { .local = 1 };

    switch (p->b->conf->send_proxy) {
    case CONF_SEND_PROXY_V1:
        return proxy_pp_encode_v1(&pp, (char *)buf, n);
    case CONF_SEND_PROXY_V2:
        return proxy_pp_encode_v2(&pp, buf, n);
    default:
        return 0;
    }
}

static void probe_io_cb(evutil_socket_t fd, short what, void *arg)
{
    struct probe *p = arg;
    uint8_t hdr[64];
    size_t hlen;
    int err;

    if (what & EV_TIMEOUT) {
        probe_done(p, 0, "timeout");
        return;
    }
    if (p->state == PROBE_HANDSHAKE) {
        probe_handshake(p);
        return;
    }
    err = proxy_sock_error(fd);
    if (err != 0) {
        probe_done(p, 0, proxy_sock_strerror(err));
        return;
    }
    hlen = probe_proxy_header(p, hdr, sizeof(hdr));
    if (p->b->conf->check != CONF_CHECK_TLS) {
        /* A server that expects a PROXY header gets one (LOCAL: no client). */
        if (hlen > 0 &&
            proxy_send(p->fd, (const void *)hdr, hlen, PROXY_SEND_FLAGS) != (ssize_t)hlen) {
            probe_done(p, 0, "cannot send the PROXY header");
            return;
        }
        probe_done(p, 1, NULL);
        return;
    }
    p->tls = calloc(1, sizeof(*p->tls));
    if (p->tls == NULL || proxy_tls_init(p->tls, proxy_tls_client_ssl(p->b->tls,
                                                                      p->s->conf->name)) != 0 ||
        (hlen > 0 && proxy_tls_feed_out(p->tls, hdr, hlen) != 0)) {
        if (p->tls != NULL && p->tls->ssl != NULL)
            proxy_tls_free(p->tls);
        free(p->tls);
        p->tls = NULL;
        probe_done(p, 0, "cannot create a TLS session");
        return;
    }
    p->state = PROBE_HANDSHAKE;
    probe_handshake(p);
}

static void probe_start_cb(evutil_socket_t unused, short what, void *arg)
{
    struct probe *p = arg;
    const struct conf_addr *a = &p->s->conf->addr;

    p->deadline_ms = proxy_now_ms() + p->b->conf->check_timeout_ms;
    p->fd = proxy_socket(a->ss.ss_family, SOCK_STREAM, 0);
    if (p->fd < 0) {
        probe_done(p, 0, proxy_sock_strerror(errno));
        return;
    }
    p->state = PROBE_CONNECTING;
    if (proxy_connect(p->fd, (const struct sockaddr *)&a->ss, a->len) != 0 && errno != EINPROGRESS) {
        probe_done(p, 0, proxy_sock_strerror(errno));
        return;
    }
    probe_wait(p, EV_WRITE);
}

struct proxy_health *proxy_health_start(struct proxy_worker *w, struct event_base *base)
{
    struct proxy_health *h;
    size_t n = 0;

    for (size_t i = 0; i < w->nbackends; i++)
        if (w->backends[i].conf->check != CONF_CHECK_OFF)
            n += w->backends[i].nservers;
    if (n == 0)
        return NULL;
    h = calloc(1, sizeof(*h));
    if (h == NULL || (h->probes = calloc(n, sizeof(*h->probes))) == NULL) {
        free(h);
        proxy_log_error("out of memory for health checks");
        return NULL;
    }
    for (size_t i = 0; i < w->nbackends; i++) {
        struct proxy_backend *b = &w->backends[i];

        if (b->conf->check == CONF_CHECK_OFF)
            continue;
        for (size_t k = 0; k < b->nservers; k++) {
            struct probe *p = &h->probes[h->n++];

            p->b = b;
            p->s = &b->servers[k];
            p->base = base;
            p->fd = -1;
            evtimer_assign(&p->timer, base, probe_start_cb, p);
            event_assign(&p->io, base, -1, 0, probe_io_cb, p);
            /* The first round right away: a server that is down at start
             * should not wait a whole interval to be noticed. */
            event_active(&p->timer, EV_TIMEOUT, 0);
        }
    }
    return h;
}

void proxy_health_stop(struct proxy_health *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->n; i++) {
        probe_reset(&h->probes[i]);
        event_del(&h->probes[i].timer);
    }
    free(h->probes);
    free(h);
}
