/*
 * master_socks.c - the master's listening sockets: bound once and kept open
 * across reloads and re-executions.  During a reload a socket can belong to
 * the running configuration, to the one being loaded, or to both; an address
 * in both keeps its socket, so its accept queue is never dropped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "activation.h"
#include "log.h"
#include "master_int.h"
#include "netutil.h"

void proxy_master_sock_close(struct master_sock *s)
{
    if (s->fd >= 0 && proxy_sock_close(s->fd) != 0)
        proxy_log_warn("close listener %s: %s", s->actual, strerror(errno));
    s->fd = -1;
}

static int addr_equal(const struct conf_addr *a, const struct conf_addr *b)
{
    return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* Drops sockets that belong to neither configuration. */
void proxy_master_socks_compact(struct master *m)
{
    size_t j = 0;

    for (size_t i = 0; i < m->nsocks; i++) {
        if (!m->socks[i].in_current && !m->socks[i].in_next) {
            proxy_log_info("listener %s on %s closed", m->socks[i].name, m->socks[i].actual);
            proxy_master_sock_close(&m->socks[i]);
            continue;
        }
        m->socks[j++] = m->socks[i];
    }
    m->nsocks = j;
}

/*
 * Marks, for configuration c, the sockets it needs: an address that is
 * already bound is reused (never closed and re-bound, so its accept queue
 * survives); new addresses are bound now.  Returns -1 with why if a bind
 * fails; nothing already running is affected either way.
 */
int proxy_master_socks_prepare(struct master *m, const struct conf *c, int next, char *why,
                               size_t n)
{
    for (size_t i = 0; i < c->nlisteners; i++) {
        const struct conf_listener *l = &c->listeners[i];

        for (size_t b = 0; b < l->nbinds; b++) {
            struct master_sock *s = NULL, *grown;
            char reason[256];
            int fd;

            for (size_t k = 0; k < m->nsocks && s == NULL; k++)
                if (addr_equal(&m->socks[k].addr, &l->binds[b]) &&
                    !(next ? m->socks[k].in_next : m->socks[k].in_current))
                    s = &m->socks[k];
            if (s == NULL) {
                fd = proxy_activation_take(m->activated, m->nactivated, &l->binds[b]);
                if (fd >= 0)
                    proxy_log_info("listener %s: using the socket for %s passed by the "
                                   "service manager", l->name, l->binds[b].text);
                else
                    fd = proxy_listen(&l->binds[b], l->backlog, reason, sizeof(reason));
                if (fd < 0) {
                    snprintf(why, n, "listener %s: %s", l->name, reason);
                    return -1;
                }
                grown = realloc(m->socks, (m->nsocks + 1) * sizeof(*m->socks));
                if (grown == NULL) {
                    proxy_sock_close(fd);
                    snprintf(why, n, "out of memory");
                    return -1;
                }
                m->socks = grown;
                s = &m->socks[m->nsocks++];
                memset(s, 0, sizeof(*s));
                s->fd = fd;
                s->addr = l->binds[b];
                proxy_sockname(fd, s->actual, sizeof(s->actual));
                proxy_log_info("listener %s bound to %s", l->name, s->actual);
            }
            if (next) {
                s->in_next = 1;
                snprintf(s->next_name, sizeof(s->next_name), "%s", l->name);
            } else {
                s->in_current = 1;
                snprintf(s->name, sizeof(s->name), "%s", l->name);
            }
        }
    }
    return 0;
}
