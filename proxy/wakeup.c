/*
 * wakeup.c - a loop woken through a non-blocking socket pair: the write of
 * one byte is the only thing a poker does.
 */
#include "wakeup.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/util.h>

#include "log.h"
#include "port_net.h"

struct proxy_wakeup {
    evutil_socket_t   fd[2];
    struct event     *ev;
    proxy_wakeup_cb  *cb;
    void             *arg;
};

static void wakeup_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_wakeup *w = arg;
    char buf[64];

    (void)what;
    /* Drain before the callback: a poke during cb is then not lost. */
    while (recv(fd, buf, sizeof(buf), 0) > 0)
        ;
    w->cb(w->arg);
}

struct proxy_wakeup *proxy_wakeup_new(struct event_base *base, proxy_wakeup_cb *cb, void *arg)
{
    struct proxy_wakeup *w = calloc(1, sizeof(*w));

    if (w == NULL) {
        proxy_log_error("wakeup: out of memory");
        return NULL;
    }
    w->fd[0] = w->fd[1] = -1;
    w->cb = cb;
    w->arg = arg;
    if (evutil_socketpair(AF_UNIX, SOCK_STREAM, 0, w->fd) != 0) {
        proxy_log_error("wakeup: socket pair: %s",
                        evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        w->fd[0] = w->fd[1] = -1;
        goto fail;
    }
    for (int i = 0; i < 2; i++)
        if (evutil_make_socket_nonblocking(w->fd[i]) != 0 ||
            evutil_make_socket_closeonexec(w->fd[i]) != 0) {
            proxy_log_error("wakeup: cannot make the socket pair non-blocking");
            goto fail;
        }
    w->ev = event_new(base, w->fd[0], EV_READ | EV_PERSIST, wakeup_read_cb, w);
    if (w->ev == NULL || event_add(w->ev, NULL) != 0) {
        proxy_log_error("wakeup: cannot watch the socket pair");
        goto fail;
    }
    return w;
fail:
    proxy_wakeup_free(w);
    return NULL;
}

void proxy_wakeup_poke(struct proxy_wakeup *w)
{
    int saved = errno;   /* a signal handler must leave errno as it was */

    /* A full pair already holds a wake-up: the failure is harmless. */
    (void)!send(w->fd[1], "", 1, 0);
    errno = saved;
}

void proxy_wakeup_free(struct proxy_wakeup *w)
{
    if (w == NULL)
        return;
    if (w->ev != NULL)
        event_free(w->ev);
    for (int i = 0; i < 2; i++)
        if (w->fd[i] != -1)
            evutil_closesocket(w->fd[i]);
    free(w);
}
