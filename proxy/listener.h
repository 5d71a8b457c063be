/*
 * listener.h - a configured listener (one name, one or more bound sockets)
 * and the accept path of an event loop.
 */
#ifndef BATON_PROXY_LISTENER_H
#define BATON_PROXY_LISTENER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "conf.h"

struct proxy_backend;
struct proxy_loop;
struct proxy_tls_server;

struct proxy_listener {
    const struct conf_listener *conf;
    struct proxy_backend       *backend;
    struct proxy_tls_server    *tls;        /* tls = on */
    int                        *fds;        /* handed over by the master */
    char                      (*addrs)[80]; /* actual bound address per fd */
    size_t                      nfds;
    _Atomic uint64_t            active;     /* open client connections */
    _Atomic uint64_t            total;      /* accepted since this worker started */
};

/* One listening socket watched by one event loop (each loop has its own
 * duplicate of the descriptor, so it can stop watching and close it without
 * racing the other loops). */
struct proxy_accept {
    struct proxy_loop     *loop;
    struct proxy_listener *listener;
    int                    fd;
    int                    watching;   /* event added */
    int                    paused;     /* at a connection limit or out of fds */
    struct event           ev;
};

int  proxy_listener_add_fd(struct proxy_listener *l, int fd, const char *addr);
void proxy_listener_free(struct proxy_listener *l);

int  proxy_accept_init(struct proxy_accept *a, struct proxy_loop *loop,
                       struct proxy_listener *l, int fd);
void proxy_accept_watch(struct proxy_accept *a, int on);
void proxy_accept_close(struct proxy_accept *a);

/* Releases the connection slots taken when a client was accepted. */
void proxy_listener_release(struct proxy_loop *loop, struct proxy_listener *l);

#endif
