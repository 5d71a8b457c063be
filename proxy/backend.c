#include "backend.h"

#include "port_net.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "netutil.h"

int proxy_backend_init(struct proxy_backend *b, const struct conf_backend *cb, size_t index)
{
    memset(b, 0, sizeof(*b));
    b->servers = calloc(cb->nservers, sizeof(*b->servers));
    if (b->servers == NULL)
        return -1;
    for (size_t i = 0; i < cb->nservers; i++) {
        b->servers[i].conf = &cb->servers[i];
        b->servers[i].backend = cb;
    }
    b->conf = cb;
    b->nservers = cb->nservers;
    b->index = index;
    return 0;
}

void proxy_backend_free(struct proxy_backend *b)
{
    free(b->servers);
    memset(b, 0, sizeof(*b));
}

int proxy_balance_init(struct proxy_balance *st, const struct proxy_backend *b, uint64_t seed)
{
    st->current = calloc(b->nservers, sizeof(*st->current));
    if (st->current == NULL)
        return -1;
    st->rng = seed | 1;
    return 0;
}

void proxy_balance_free(struct proxy_balance *st)
{
    free(st->current);
    st->current = NULL;
}

void proxy_server_set_down(struct proxy_server *s, int down, const char *why)
{
    int was;

    /* Stamped before the flag: another loop that sees `down` must not pair
     * it with an old time and try the server again at once. */
    if (down)
        atomic_store(&s->down_since_ms, proxy_now_ms());
    was = atomic_exchange(&s->down, down);
    if (was == down)
        return;
    if (down) {
        proxy_log_warn("backend %s: server %s (%s) is DOWN: %s", s->backend->name,
                       s->conf->name, s->conf->addr.text, why);
    } else {
        proxy_log_info("backend %s: server %s (%s) is UP: %s", s->backend->name, s->conf->name,
                       s->conf->addr.text, why);
    }
}

void proxy_server_failed(struct proxy_server *s)
{
    unsigned n = atomic_fetch_add(&s->fails, 1) + 1;

    atomic_store(&s->oks, 0);
    if (n >= s->backend->check_fall && !atomic_load(&s->down)) {
        char why[64];

        snprintf(why, sizeof(why), "%u consecutive failures", n);
        proxy_server_set_down(s, 1, why);
    } else if (atomic_load(&s->down)) {
        /* A failed probe of a down server restarts its wait. */
        atomic_store(&s->down_since_ms, proxy_now_ms());
    }
}

void proxy_server_succeeded(struct proxy_server *s)
{
    atomic_store(&s->fails, 0);
    /* Without active checks a client connection is the only probe there is. */
    if (s->backend->check == CONF_CHECK_OFF)
        proxy_server_set_down(s, 0, "a connection succeeded");
}

void proxy_server_check_ok(struct proxy_server *s)
{
    unsigned n = atomic_fetch_add(&s->oks, 1) + 1;

    atomic_store(&s->fails, 0);
    if (n >= s->backend->check_rise && atomic_load(&s->down)) {
        char why[64];

        snprintf(why, sizeof(why), "%u consecutive successful checks", n);
        proxy_server_set_down(s, 0, why);
    }
}

/* Down servers are skipped; without active checks, one is tried again
 * (by a client connection) once check_interval has passed. */
static int server_usable(const struct proxy_server *s)
{
    uint64_t since, now;

    if (!atomic_load(&s->down))
        return 1;
    since = atomic_load(&s->down_since_ms);
    now = proxy_now_ms();
    return s->backend->check == CONF_CHECK_OFF && now >= since &&
           now - since >= s->backend->check_interval_ms;
}

int proxy_backend_all_down(const struct proxy_backend *b)
{
    for (size_t i = 0; i < b->nservers; i++)
        if (!atomic_load(&b->servers[i].down))
            return 0;
    return 1;
}

static int server_excluded(const struct proxy_server *s, struct proxy_server *const *tried,
                        size_t ntried)
{
    if (!server_usable(s))
        return 1;
    for (size_t i = 0; i < ntried; i++)
        if (tried[i] == s)
            return 1;
    return 0;
}

static uint64_t balance_random(struct proxy_balance *st)
{
    uint64_t x = st->rng;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    st->rng = x;
    return x;
}

/* Smooth weighted round-robin: spreads a 1:3 pool as b a b b, not a b b b. */
static struct proxy_server *pick_roundrobin(struct proxy_backend *b, struct proxy_balance *st,
                                            struct proxy_server *const *tried, size_t ntried)
{
    struct proxy_server *best = NULL;
    int64_t total = 0;
    size_t besti = 0;

    for (size_t i = 0; i < b->nservers; i++) {
        if (server_excluded(&b->servers[i], tried, ntried))
            continue;
        st->current[i] += b->servers[i].conf->weight;
        total += b->servers[i].conf->weight;
        if (best == NULL || st->current[i] > st->current[besti]) {
            best = &b->servers[i];
            besti = i;
        }
    }
    if (best != NULL)
        st->current[besti] -= total;
    return best;
}

static struct proxy_server *pick_leastconn(struct proxy_backend *b, struct proxy_balance *st,
                                           struct proxy_server *const *tried, size_t ntried)
{
    struct proxy_server *best = NULL;
    uint64_t best_load = 0;
    size_t start;

    if (b->nservers == 0)
        return NULL;
    /* Start at a rotating position so ties do not all go to the first server. */
    start = (size_t)(balance_random(st) % b->nservers);
    for (size_t k = 0; k < b->nservers; k++) {
        struct proxy_server *s = &b->servers[(start + k) % b->nservers];
        /* active/weight compared without division: scale by 256 / weight. */
        uint64_t load = atomic_load_explicit(&s->active, memory_order_relaxed) * 256u /
                        s->conf->weight;

        if (server_excluded(s, tried, ntried))
            continue;
        if (best == NULL || load < best_load) {
            best = s;
            best_load = load;
        }
    }
    return best;
}

/* Weighted choice among untried servers driven by `r`. */
static struct proxy_server *pick_weighted(struct proxy_backend *b, uint64_t r,
                                          struct proxy_server *const *tried, size_t ntried)
{
    uint64_t total = 0;

    for (size_t i = 0; i < b->nservers; i++)
        if (!server_excluded(&b->servers[i], tried, ntried))
            total += b->servers[i].conf->weight;
    if (total == 0)
        return NULL;
    r %= total;
    for (size_t i = 0; i < b->nservers; i++) {
        if (server_excluded(&b->servers[i], tried, ntried))
            continue;
        if (r < b->servers[i].conf->weight)
            return &b->servers[i];
        r -= b->servers[i].conf->weight;
    }
    return NULL;
}

/* FNV-1a over the client's IP (not its port), so a client sticks to one server. */
static uint64_t hash_client(const struct sockaddr *sa)
{
    const uint8_t *p = NULL;
    size_t n = 0;
    uint64_t h = 1469598103934665603ull;

    if (sa != NULL && sa->sa_family == AF_INET) {
        p = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
        n = 4;
    } else if (sa != NULL && sa->sa_family == AF_INET6) {
        p = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
        n = 16;
    }
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

struct proxy_server *proxy_backend_pick(struct proxy_backend *b, struct proxy_balance *st,
                                        const struct sockaddr *client,
                                        struct proxy_server *const *tried, size_t ntried)
{
    switch (b->conf->balance) {
    case CONF_BALANCE_LEASTCONN:
        return pick_leastconn(b, st, tried, ntried);
    case CONF_BALANCE_RANDOM:
        return pick_weighted(b, balance_random(st), tried, ntried);
    case CONF_BALANCE_SOURCE:
        return pick_weighted(b, hash_client(client), tried, ntried);
    case CONF_BALANCE_ROUNDROBIN:
    default:
        return pick_roundrobin(b, st, tried, ntried);
    }
}
