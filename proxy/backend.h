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
#include "port_net.h"

#include "conf.h"

struct proxy_tls_client;

struct proxy_server {
    const struct conf_server *conf;
    const struct conf_backend *backend;
    _Atomic uint64_t          active;    /* connections using it now (leastconn) */
    _Atomic uint64_t          total;     /* connections established to it */
    _Atomic uint64_t          failures;  /* failed connects */
    /* Health: passive (client connects) and active (checks) both count. */
    _Atomic int               down;
    _Atomic unsigned          fails;     /* consecutive failures */
    _Atomic unsigned          oks;       /* consecutive successful checks */
    _Atomic uint64_t          down_since_ms;
    /* Connects in a row whose first bytes found the connection not yet up
     * (connection_server.c stops trying early sends after a few). */
    _Atomic unsigned          early_misses;
};

struct proxy_backend {
    const struct conf_backend *conf;
    struct proxy_server       *servers;
    size_t                     nservers;
    size_t                     index;     /* position in the worker's array */
    struct proxy_tls_client   *tls;       /* tls = on: how to connect */
};

/* Per event loop, per backend. */
struct proxy_balance {
    int64_t  *current;    /* smooth weighted round-robin (nginx's algorithm) */
    uint64_t  rng;        /* xorshift state for random */
};

/* Health bookkeeping: a connection (or check) to s failed / succeeded. */
void proxy_server_failed(struct proxy_server *s);
void proxy_server_succeeded(struct proxy_server *s);
/* An active check result: `rise` successes bring a down server back. */
void proxy_server_check_ok(struct proxy_server *s);
void proxy_server_set_down(struct proxy_server *s, int down, const char *why);
int  proxy_backend_all_down(const struct proxy_backend *b);

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
