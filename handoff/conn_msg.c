/*
 * conn_msg.c - live connection handoff messages (conn_msg.h).
 *
 * Payload layouts (integers big-endian, str = u16 length + bytes, bytes =
 * u32 length + bytes; each message may end with extensions, codec.h):
 *
 *   LINK       u32 role, u32 peer generation, u32 index, u32 count; 1 fd
 *   CONN       u32 id, u32 phase, u32 armed, u32 flags, u32 handoffs,
 *              u32 idle_timeout_ms,
 *              u64 start_ms, u64 last_ms, u64 deadline_ms,
 *              bytes peer, bytes local (struct sockaddr as the OS lays it out:
 *              both ends run on the same machine),
 *              str listener, str backend, str server,
 *              u32 ntried, ntried x str server,
 *              str sni, str alpn,
 *              2 x direction (up, then down): u64 bytes, u32 flags, bytes pending,
 *              bytes prefix;
 *              1 fd (client) or 2 (client, server: flags say which)
 *   CONN_ACK   u32 credits, u32 n, n x (u32 id, u32 result)
 *   CONN_RELEASE u32 n, n x u32 id
 *   CONN_DONE  u32 sent
 */
#include "conn_msg.h"

#include <string.h>

#include "codec.h"


int handoff_encode_link(struct handoff_msg *m, uint32_t seq, const struct handoff_link *v)
{
    if (handoff_enc_begin(m, HANDOFF_LINK, seq) == -1)
        return -1;
    if (v->fd < 0 || (v->role != HANDOFF_LINK_GIVE && v->role != HANDOFF_LINK_TAKE))
        return handoff_enc_fail(m);
    handoff_msg_put_u32(m, v->role);
    handoff_msg_put_u32(m, v->peer_gen);
    handoff_msg_put_u32(m, v->index);
    handoff_msg_put_u32(m, v->count);
    handoff_msg_add_handle(m, v->fd, HANDOFF_H_CHANNEL);
    return handoff_enc_end(m);
}

int handoff_decode_link(struct handoff_in *in, struct handoff_link *v, char *why, size_t n)
{
    struct handoff_dec d;

    memset(v, 0, sizeof(*v));
    v->fd = -1;
    if (handoff_dec_begin(&d, in, HANDOFF_LINK, 1, why, n) == -1)
        return -1;
    handoff_dec_u32(&d, "role", &v->role);
    handoff_dec_u32(&d, "peer generation", &v->peer_gen);
    handoff_dec_u32(&d, "index", &v->index);
    handoff_dec_u32(&d, "count", &v->count);
    if (!d.err && v->role != HANDOFF_LINK_GIVE && v->role != HANDOFF_LINK_TAKE)
        handoff_dec_fail(&d, "role %u (expected %u give or %u take)", (unsigned)v->role,
                         HANDOFF_LINK_GIVE, HANDOFF_LINK_TAKE);
    if (!d.err && (v->count == 0 || v->count > 4096 || v->index >= v->count))
        handoff_dec_fail(&d, "link %u of %u (expected 1 to 4096 links)", (unsigned)v->index,
                         (unsigned)v->count);
    if (!d.err && in->fds[0] < 0)
        handoff_dec_fail(&d, "descriptor already taken");
    handoff_dec_exts(&d, NULL, NULL);
    if (handoff_dec_end(&d) == -1)
        return -1;
    v->fd = in->fds[0];
    in->fds[0] = -1;
    return 0;
}

static void put_dir(struct handoff_msg *m, const struct handoff_conn_dir *dir)
{
    handoff_msg_put_u64(m, dir->bytes);
    handoff_msg_put_u32(m, dir->flags);
    handoff_msg_put_bytes(m, dir->pending, dir->npending);
}

static int conn_strs_ok(const struct handoff_conn *v)
{
    if (!handoff_str_ok(v->listener, sizeof(v->listener)) ||
        !handoff_str_ok(v->backend, sizeof(v->backend)) ||
        !handoff_str_ok(v->server, sizeof(v->server)) ||
        !handoff_str_ok(v->sni, sizeof(v->sni)) || !handoff_str_ok(v->alpn, sizeof(v->alpn)) ||
        v->ntried > HANDOFF_CONN_TRIED_MAX)
        return 0;
    for (uint32_t i = 0; i < v->ntried; i++)
        if (!handoff_str_ok(v->tried[i], sizeof(v->tried[i])))
            return 0;
    return 1;
}

int handoff_encode_conn(struct handoff_msg *m, uint32_t seq, const struct handoff_conn *v)
{
    if (handoff_enc_begin(m, HANDOFF_CONN, seq) == -1)
        return -1;
    if (!conn_strs_ok(v) || v->client_fd < 0 || v->peerlen > sizeof(v->peer) ||
        v->locallen > sizeof(v->local) || v->up.npending > HANDOFF_PENDING_MAX ||
        v->down.npending > HANDOFF_PENDING_MAX || v->prefixlen > HANDOFF_PENDING_MAX)
        return handoff_enc_fail(m);
    handoff_msg_put_u32(m, v->id);
    handoff_msg_put_u32(m, v->phase);
    handoff_msg_put_u32(m, v->armed);
    handoff_msg_put_u32(m, v->flags);
    handoff_msg_put_u32(m, v->handoffs);
    handoff_msg_put_u32(m, v->idle_timeout_ms);
    handoff_msg_put_u64(m, v->start_ms);
    handoff_msg_put_u64(m, v->last_ms);
    handoff_msg_put_u64(m, v->deadline_ms);
    handoff_msg_put_bytes(m, v->peer, v->peerlen);
    handoff_msg_put_bytes(m, v->local, v->locallen);
    handoff_msg_put_str(m, v->listener);
    handoff_msg_put_str(m, v->backend);
    handoff_msg_put_str(m, v->server);
    handoff_msg_put_u32(m, v->ntried);
    for (uint32_t i = 0; i < v->ntried; i++)
        handoff_msg_put_str(m, v->tried[i]);
    handoff_msg_put_str(m, v->sni);
    handoff_msg_put_str(m, v->alpn);
    put_dir(m, &v->up);
    put_dir(m, &v->down);
    handoff_msg_put_bytes(m, v->prefix, v->prefixlen);
    handoff_msg_add_fd(m, v->client_fd);
    if (v->server_fd >= 0)
        handoff_msg_add_fd(m, v->server_fd);
    return handoff_enc_end(m);
}

static void dec_dir(struct handoff_dec *d, const char *name, struct handoff_conn_dir *dir)
{
    handoff_dec_u64(d, name, &dir->bytes);
    handoff_dec_u32(d, name, &dir->flags);
    handoff_dec_bytes(d, name, &dir->pending, &dir->npending, HANDOFF_PENDING_MAX);
}

static void dec_sockaddr(struct handoff_dec *d, const char *field, uint8_t *out, uint32_t *len)
{
    const uint8_t *p;

    handoff_dec_bytes(d, field, &p, len, HANDOFF_SOCKADDR_MAX);
    if (!d->err && *len > 0)
        memcpy(out, p, *len);
}

static void dec_conn_fields(struct handoff_dec *d, struct handoff_conn *v)
{
    handoff_dec_u32(d, "id", &v->id);
    handoff_dec_u32(d, "phase", &v->phase);
    handoff_dec_u32(d, "armed", &v->armed);
    handoff_dec_u32(d, "flags", &v->flags);
    handoff_dec_u32(d, "handoffs", &v->handoffs);
    handoff_dec_u32(d, "idle_timeout_ms", &v->idle_timeout_ms);
    handoff_dec_u64(d, "start_ms", &v->start_ms);
    handoff_dec_u64(d, "last_ms", &v->last_ms);
    handoff_dec_u64(d, "deadline_ms", &v->deadline_ms);
    dec_sockaddr(d, "peer", v->peer, &v->peerlen);
    dec_sockaddr(d, "local", v->local, &v->locallen);
    handoff_dec_str(d, "listener", v->listener, sizeof(v->listener));
    handoff_dec_str(d, "backend", v->backend, sizeof(v->backend));
    handoff_dec_str(d, "server", v->server, sizeof(v->server));
    handoff_dec_u32(d, "tried servers", &v->ntried);
    if (!d->err && v->ntried > HANDOFF_CONN_TRIED_MAX)
        handoff_dec_fail(d, "%u tried servers (max %u)", (unsigned)v->ntried,
                         HANDOFF_CONN_TRIED_MAX);
    for (uint32_t i = 0; !d->err && i < v->ntried; i++)
        handoff_dec_str(d, "tried server", v->tried[i], sizeof(v->tried[i]));
    handoff_dec_str(d, "sni", v->sni, sizeof(v->sni));
    handoff_dec_str(d, "alpn", v->alpn, sizeof(v->alpn));
    dec_dir(d, "client-to-server direction", &v->up);
    dec_dir(d, "server-to-client direction", &v->down);
    handoff_dec_bytes(d, "prefix", &v->prefix, &v->prefixlen, HANDOFF_PENDING_MAX);
}

int handoff_decode_conn(struct handoff_in *in, struct handoff_conn *v, char *why, size_t n)
{
    struct handoff_dec d;
    unsigned nfds = in->nfds == 2 ? 2u : 1u;

    memset(v, 0, sizeof(*v));
    v->client_fd = v->server_fd = -1;
    if (handoff_dec_begin(&d, in, HANDOFF_CONN, nfds, why, n) == -1)
        return -1;
    dec_conn_fields(&d, v);
    if (!d.err && (v->phase < HANDOFF_PHASE_RELAYING || v->phase > HANDOFF_PHASE_CONNECTING))
        handoff_dec_fail(&d, "unknown phase %u", (unsigned)v->phase);
    if (!d.err && (v->phase == HANDOFF_PHASE_RELAYING || v->phase == HANDOFF_PHASE_CONNECTING) !=
                  (nfds == 2))
        handoff_dec_fail(&d, "phase %u with %u descriptor(s)", (unsigned)v->phase, nfds);
    if (!d.err && in->fds_lost)
        handoff_dec_fail(&d, "its sockets did not arrive (out of file descriptors)");
    if (!d.err && (in->fds[0] < 0 || (nfds == 2 && in->fds[1] < 0)))
        handoff_dec_fail(&d, "descriptor already taken");
    if (!d.err && v->peerlen == 0)
        handoff_dec_fail(&d, "no client address");
    handoff_dec_exts(&d, NULL, NULL);
    if (handoff_dec_end(&d) == -1)
        return -1;
    v->client_fd = in->fds[0];
    in->fds[0] = -1;
    if (nfds == 2) {
        v->server_fd = in->fds[1];
        in->fds[1] = -1;
    }
    return 0;
}

int handoff_encode_conn_ack(struct handoff_msg *m, uint32_t seq, const struct handoff_conn_ack *v)
{
    if (handoff_enc_begin(m, HANDOFF_CONN_ACK, seq) == -1)
        return -1;
    if (v->n > HANDOFF_ACK_MAX)
        return handoff_enc_fail(m);
    handoff_msg_put_u32(m, v->credits);
    handoff_msg_put_u32(m, v->n);
    for (uint32_t i = 0; i < v->n; i++) {
        handoff_msg_put_u32(m, v->results[i].id);
        handoff_msg_put_u32(m, v->results[i].result);
    }
    return handoff_enc_end(m);
}

int handoff_decode_conn_ack(struct handoff_in *in, struct handoff_conn_ack *v, char *why,
                            size_t n)
{
    struct handoff_dec d;

    v->credits = v->n = 0;
    if (handoff_dec_begin(&d, in, HANDOFF_CONN_ACK, 0, why, n) == -1)
        return -1;
    handoff_dec_u32(&d, "credits", &v->credits);
    handoff_dec_u32(&d, "results", &v->n);
    if (!d.err && v->n > HANDOFF_ACK_MAX)
        handoff_dec_fail(&d, "%u results (max %u)", (unsigned)v->n, HANDOFF_ACK_MAX);
    for (uint32_t i = 0; !d.err && i < v->n; i++) {
        handoff_dec_u32(&d, "result id", &v->results[i].id);
        handoff_dec_u32(&d, "result", &v->results[i].result);
        if (!d.err && v->results[i].result > HANDOFF_CONN_REFUSED)
            handoff_dec_fail(&d, "result %u for connection %u", (unsigned)v->results[i].result,
                             (unsigned)v->results[i].id);
    }
    handoff_dec_exts(&d, NULL, NULL);
    if (handoff_dec_end(&d) == -1) {
        v->n = 0;
        return -1;
    }
    return 0;
}

int handoff_encode_conn_release(struct handoff_msg *m, uint32_t seq,
                                const struct handoff_conn_release *v)
{
    if (handoff_enc_begin(m, HANDOFF_CONN_RELEASE, seq) == -1)
        return -1;
    if (v->n > HANDOFF_ACK_MAX)
        return handoff_enc_fail(m);
    handoff_msg_put_u32(m, v->n);
    for (uint32_t i = 0; i < v->n; i++)
        handoff_msg_put_u32(m, v->ids[i]);
    return handoff_enc_end(m);
}

int handoff_decode_conn_release(struct handoff_in *in, struct handoff_conn_release *v,
                                char *why, size_t n)
{
    struct handoff_dec d;

    v->n = 0;
    if (handoff_dec_begin(&d, in, HANDOFF_CONN_RELEASE, 0, why, n) == -1)
        return -1;
    handoff_dec_u32(&d, "ids", &v->n);
    if (!d.err && v->n > HANDOFF_ACK_MAX)
        handoff_dec_fail(&d, "%u ids (max %u)", (unsigned)v->n, HANDOFF_ACK_MAX);
    for (uint32_t i = 0; !d.err && i < v->n; i++)
        handoff_dec_u32(&d, "id", &v->ids[i]);
    handoff_dec_exts(&d, NULL, NULL);
    if (handoff_dec_end(&d) == -1) {
        v->n = 0;
        return -1;
    }
    return 0;
}

int handoff_encode_conn_done(struct handoff_msg *m, uint32_t seq,
                             const struct handoff_conn_done *v)
{
    if (handoff_enc_begin(m, HANDOFF_CONN_DONE, seq) == -1)
        return -1;
    handoff_msg_put_u32(m, v->sent);
    return handoff_enc_end(m);
}

int handoff_decode_conn_done(struct handoff_in *in, struct handoff_conn_done *v, char *why,
                             size_t n)
{
    struct handoff_dec d;

    if (handoff_dec_begin(&d, in, HANDOFF_CONN_DONE, 0, why, n) == -1)
        return -1;
    handoff_dec_u32(&d, "sent", &v->sent);
    handoff_dec_exts(&d, NULL, NULL);
    return handoff_dec_end(&d);
}
