/*
 * backend.h - a pool of servers and the balance methods that pick one.
 *
 * Server counters are shared by all event-loop threads (atomics); the
 * round-robin and random state is per loop, so picking a server takes no
 * lock.
 */
#ifndef BATON_PROXY_BACKEND_H
#define BATON_PROXY_BACKEND_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf.h"

struct proxy_server {
    const struct conf_server *conf;
    _Atomic uint64_t          active;    /* connections using it now (leastconn) */
    _Atomic uint64_t          total;     /* connections established to it */
    _Atomic uint64_t          failures;  /* failed connects */
};

struct proxy_backend {
    const struct conf_backend *conf;
    struct proxy_server       *servers;
    size_t                     nservers;
    size_t                     index;     /* position in the worker's array */
};

/* Per event loop, per backend. */
struct proxy_balance {
    int64_t  *current;    /* smooth weighted round-robin (nginx's algorithm) */
    uint64_t  rng;        /* xorshift state for random */
};

int  proxy_backend_init(struct proxy_backend *b, const struct conf_backend *cb, size_t index);
void proxy_backend_free(struct proxy_backend *b);

int  proxy_balance_init(struct proxy_balance *st, const struct proxy_backend *b, uint64_t seed);
void proxy_balance_free(struct proxy_balance *st);

/* Picks a server for a client, skipping the `ntried` servers in `tried`
 * (earlier failed attempts).  NULL when every server has been tried. */
struct proxy_server *proxy_backend_pick(struct proxy_backend *b, struct proxy_balance *st,
                                        const struct sockaddr *client,
                                        struct proxy_server *const *tried, size_t ntried);

#endif
