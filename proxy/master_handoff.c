/*
 * master_handoff.c - the master's part of a live handoff: after a reload
 * commits, one fresh socketpair per event loop of the old generation, one
 * end to each side in a LINK message.  Connection state then flows worker
 * to worker; the master only reads the outcome in their logs and status.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn_msg.h"
#include "log.h"
#include "master_int.h"
#include "transport.h"

static void close_pairs(int (*pairs)[2], unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        handoff_transport_close(pairs[i][0]);
        handoff_transport_close(pairs[i][1]);
    }
    free(pairs);
}

static int send_link(struct master_gen *g, const struct handoff_link *hl)
{
    struct handoff_msg m;

    if (handoff_encode_link(&m, g->ch.seq++, hl) != 0)
        return -1;
    /* The channel keeps its own duplicate of the descriptor. */
    proxy_master_gen_send(g, &m);
    return 0;
}

int proxy_master_handoff(struct master *m, struct master_gen *from, struct master_gen *to,
                         unsigned loops)
{
    uint32_t both = from->caps & to->caps;
    unsigned sent = 0;
    int (*pairs)[2];
    unsigned made = 0;

    if (m->next_conf.global.handoff != CONF_HANDOFF_LIVE)
        return 0;
    if (!(both & HANDOFF_CAP_CONNS)) {
        proxy_log_info("reload: generation %u (%s) cannot hand connections to generation %u "
                       "(%s); they drain", from->id, from->version[0] ? from->version : "?",
                       to->id, to->version[0] ? to->version : "?");
        return 0;
    }
    /* All pairs first: a giver counts on every link it is told of. */
    pairs = calloc(loops, sizeof(*pairs));

    while (pairs != NULL && made < loops && handoff_transport_pair(pairs[made]) == 0)
        made++;
    if (made < loops) {
        proxy_log_error("reload: cannot set up %u handoff link(s): %s; the connections of "
                        "generation %u drain", loops, pairs == NULL ? "out of memory"
                                                                    : strerror(errno), from->id);
        close_pairs(pairs, made);
        return 0;
    }
    for (unsigned i = 0; i < loops; i++) {
        /* Each end learns what the other can take (TLS state or not). */
        struct handoff_link give = { HANDOFF_LINK_GIVE, to->id, i, loops, pairs[i][0], to->caps,
                                     to->pid };
        struct handoff_link take = { HANDOFF_LINK_TAKE, from->id, i, loops, pairs[i][1],
                                     from->caps, from->pid };

        /* The taker first: it grants the credits the giver waits for.  A
         * link whose end could not be queued closes: its giver keeps its
         * connections (they drain). */
        if (send_link(to, &take) == 0 && send_link(from, &give) == 0)
            sent++;
    }
    close_pairs(pairs, made);
    proxy_log_info("reload: generation %u hands its connections to generation %u over %u "
                   "link(s)", from->id, to->id, sent);
    return (int)sent;
}
