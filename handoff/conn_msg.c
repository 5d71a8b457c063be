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
 *
 * Extensions:
 *   LINK  1  u32 the other end's capabilities, 2  u32 the other end's pid
 *            (Windows duplicates each socket for one process: without it
 *            a giver cannot send a connection)
 *   CONN  1 (must understand)  the client side's TLS, 2 (must understand)
 *            the server side's: u32 version, u32 suite, u32 role, u32 flags,
 *            u32 max_frag, u64 ku_after, 2 x direction (read, then write):
 *            bytes secret (48), bytes key (32), bytes iv (12), u64 seq,
 *            u64 nonce; bytes hs, bytes plain_in, bytes raw_in, bytes
 *            raw_out, u64 raw bytes in, str version, str cipher, u32
 *            resumed, str subject
 */
#include "conn_msg.h"

#include <string.h>

#include "codec.h"

#define LINK_EXT_PEER_CAPS  1
#define LINK_EXT_PEER_PID   2
#define CONN_EXT_CLIENT_TLS 1
#define CONN_EXT_SERVER_TLS 2

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
    /* A worker of the first live-handoff release skips it. */
    if (v->peer_caps != 0) {
        size_t body = handoff_ext_begin(m, LINK_EXT_PEER_CAPS, 0);

        handoff_msg_put_u32(m, v->peer_caps);
        handoff_ext_end(m, body);
    }
    if (v->peer_pid > 0) {
        size_t body = handoff_ext_begin(m, LINK_EXT_PEER_PID, 0);

        handoff_msg_put_u32(m, (uint32_t)v->peer_pid);
        handoff_ext_end(m, body);
    }
    return handoff_enc_end(m);
}

static int dec_link_ext(struct handoff_dec *e, uint16_t tag, void *arg)
{
    struct handoff_link *v = arg;
    uint32_t pid;

    if (tag == LINK_EXT_PEER_CAPS) {
        handoff_dec_u32(e, "peer capabilities", &v->peer_caps);
        return 1;
    }
    if (tag != LINK_EXT_PEER_PID)
        return 0;
    pid = 0;
    handoff_dec_u32(e, "peer pid", &pid);
    if (!e->err && (pid == 0 || pid > INT32_MAX))
        handoff_dec_fail(e, "peer pid %lu (expected 1 to %ld)", (unsigned long)pid,
                         (long)INT32_MAX);
    v->peer_pid = (pid_t)pid;
    return 1;
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
    handoff_dec_exts(&d, dec_link_ext, v);
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

static void put_tls_dir(struct handoff_msg *m, const struct handoff_tls_dir *d)
{
    handoff_msg_put_bytes(m, d->secret, sizeof(d->secret));
    handoff_msg_put_bytes(m, d->key, sizeof(d->key));
    handoff_msg_put_bytes(m, d->iv, sizeof(d->iv));
    handoff_msg_put_u64(m, d->seq);
    handoff_msg_put_u64(m, d->nonce);
}

static int tls_ok(const struct handoff_tls *t)
{
    return handoff_str_ok(t->version_name, sizeof(t->version_name)) &&
           handoff_str_ok(t->cipher, sizeof(t->cipher)) &&
           handoff_str_ok(t->subject, sizeof(t->subject)) && t->hslen <= HANDOFF_TLS_HS_MAX &&
           t->nplain_in <= HANDOFF_PENDING_MAX && t->nraw_in <= HANDOFF_PENDING_MAX &&
           t->nraw_out <= HANDOFF_PENDING_MAX;
}

static void put_tls(struct handoff_msg *m, uint16_t tag, const struct handoff_tls *t)
{
    size_t body = handoff_ext_begin(m, tag, HANDOFF_EXT_MUST_UNDERSTAND);

    handoff_msg_put_u32(m, t->version);
    handoff_msg_put_u32(m, t->suite);
    handoff_msg_put_u32(m, t->role);
    handoff_msg_put_u32(m, t->flags);
    handoff_msg_put_u32(m, t->max_frag);
    handoff_msg_put_u64(m, t->ku_after);
    put_tls_dir(m, &t->rd);
    put_tls_dir(m, &t->wr);
    handoff_msg_put_bytes(m, t->hs, t->hslen);
    handoff_msg_put_bytes(m, t->plain_in, t->nplain_in);
    handoff_msg_put_bytes(m, t->raw_in, t->nraw_in);
    handoff_msg_put_bytes(m, t->raw_out, t->nraw_out);
    handoff_msg_put_u64(m, t->raw_bytes_in);
    handoff_msg_put_str(m, t->version_name);
    handoff_msg_put_str(m, t->cipher);
    handoff_msg_put_u32(m, t->resumed);
    handoff_msg_put_str(m, t->subject);
    handoff_ext_end(m, body);
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
        v->down.npending > HANDOFF_PENDING_MAX || v->prefixlen > HANDOFF_PENDING_MAX ||
        (v->has_client_tls && !tls_ok(&v->client_tls)) ||
        (v->has_server_tls && !tls_ok(&v->server_tls)))
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
    if (v->has_client_tls)
        put_tls(m, CONN_EXT_CLIENT_TLS, &v->client_tls);
    if (v->has_server_tls)
        put_tls(m, CONN_EXT_SERVER_TLS, &v->server_tls);
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

/* A fixed-size field sent whole. */
static void dec_fixed(struct handoff_dec *d, const char *field, uint8_t *out, uint32_t size)
{
    const uint8_t *p;
    uint32_t len = 0;

    handoff_dec_bytes(d, field, &p, &len, size);
    if (!d->err && len != size)
        handoff_dec_fail(d, "%s: %u bytes (expected %u)", field, (unsigned)len, (unsigned)size);
    if (!d->err)
        memcpy(out, p, size);
}

static void dec_tls_dir(struct handoff_dec *d, struct handoff_tls_dir *dir)
{
    dec_fixed(d, "TLS secret", dir->secret, sizeof(dir->secret));
    dec_fixed(d, "TLS key", dir->key, sizeof(dir->key));
    dec_fixed(d, "TLS iv", dir->iv, sizeof(dir->iv));
    handoff_dec_u64(d, "TLS sequence number", &dir->seq);
    handoff_dec_u64(d, "TLS nonce", &dir->nonce);
}

static void dec_tls(struct handoff_dec *d, struct handoff_tls *t)
{
    handoff_dec_u32(d, "TLS version", &t->version);
    handoff_dec_u32(d, "TLS suite", &t->suite);
    handoff_dec_u32(d, "TLS role", &t->role);
    handoff_dec_u32(d, "TLS flags", &t->flags);
    handoff_dec_u32(d, "TLS max_frag", &t->max_frag);
    handoff_dec_u64(d, "TLS ku_after", &t->ku_after);
    dec_tls_dir(d, &t->rd);
    dec_tls_dir(d, &t->wr);
    handoff_dec_bytes(d, "TLS handshake message", &t->hs, &t->hslen, HANDOFF_TLS_HS_MAX);
    handoff_dec_bytes(d, "TLS plaintext in", &t->plain_in, &t->nplain_in, HANDOFF_PENDING_MAX);
    handoff_dec_bytes(d, "TLS records in", &t->raw_in, &t->nraw_in, HANDOFF_PENDING_MAX);
    handoff_dec_bytes(d, "TLS records out", &t->raw_out, &t->nraw_out, HANDOFF_PENDING_MAX);
    handoff_dec_u64(d, "TLS bytes in", &t->raw_bytes_in);
    handoff_dec_str(d, "TLS version name", t->version_name, sizeof(t->version_name));
    handoff_dec_str(d, "TLS cipher", t->cipher, sizeof(t->cipher));
    handoff_dec_u32(d, "TLS resumed", &t->resumed);
    handoff_dec_str(d, "TLS subject", t->subject, sizeof(t->subject));
}

static int dec_conn_ext(struct handoff_dec *e, uint16_t tag, void *arg)
{
    struct handoff_conn *v = arg;

    switch (tag) {
    case CONN_EXT_CLIENT_TLS:
        dec_tls(e, &v->client_tls);
        v->has_client_tls = 1;
        return 1;
    case CONN_EXT_SERVER_TLS:
        dec_tls(e, &v->server_tls);
        v->has_server_tls = 1;
        return 1;
    default:
        return 0;
    }
}

/* Descriptors each phase comes with: the client's, and the server's once
 * there is a server socket. */
static unsigned phase_fds(uint32_t phase)
{
    return phase == HANDOFF_PHASE_RELAYING || phase == HANDOFF_PHASE_CONNECTING ? 2u : 1u;
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
    if (!d.err && (v->phase < HANDOFF_PHASE_RELAYING || v->phase > HANDOFF_PHASE_MAX))
        handoff_dec_fail(&d, "unknown phase %u", (unsigned)v->phase);
    if (!d.err && phase_fds(v->phase) != nfds)
        handoff_dec_fail(&d, "phase %u with %u descriptor(s)", (unsigned)v->phase, nfds);
    if (!d.err && in->fds_lost)
        handoff_dec_fail(&d, "its sockets did not arrive (out of file descriptors)");
    if (!d.err && (in->fds[0] < 0 || (nfds == 2 && in->fds[1] < 0)))
        handoff_dec_fail(&d, "descriptor already taken");
    if (!d.err && v->peerlen == 0)
        handoff_dec_fail(&d, "no client address");
    handoff_dec_exts(&d, dec_conn_ext, v);
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
