/*
 * fuzz_conn.c - the decoders of live connection handoff (handoff/conn_msg.c):
 * LINK, CONN, CONN_ACK, CONN_RELEASE, CONN_DONE.  What a worker receives
 * from the other generation's worker on a link (and the master's LINK).
 *
 * Input: [decoder][descriptors][payload]
 *   decoder      which decoder runs (index mod 5, in the order above)
 *   descriptors  low 2 bits: how many descriptors the message carries;
 *                bit 7: the first one was already taken (its slot is -1);
 *                bit 6: they never arrived (fds_lost, every slot -1), as
 *                the channel delivers a message whose receiver was out of
 *                descriptors
 *   payload      the rest
 *
 * Properties: a refusal says why and hands out no descriptor; an accepted
 * message keeps every limit the taker relies on (phase and descriptor
 * count agree, names terminated, lists and pending bytes within their
 * maximum, pointers inside the payload), takes exactly its descriptors,
 * and its fields encode back to the start of the payload (the rest being
 * extensions the decoder skipped), which decodes to the same fields.  No
 * descriptor is leaked.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn_msg.h"
#include "fuzz.h"

enum { DEC_LINK, DEC_CONN, DEC_ACK, DEC_RELEASE, DEC_DONE, NDEC };

static const uint16_t dec_type[NDEC] = { HANDOFF_LINK, HANDOFF_CONN, HANDOFF_CONN_ACK,
                                         HANDOFF_CONN_RELEASE, HANDOFF_CONN_DONE };

/* Everything a decoder may fill: big (ACK and RELEASE lists), so static. */
struct decoded {
    struct handoff_link         link;
    struct handoff_conn         conn;
    struct handoff_conn_ack     ack;
    struct handoff_conn_release rel;
    struct handoff_conn_done    done;
};

static struct decoded first, again, base;

static int decode(unsigned dec, struct handoff_in *in, struct decoded *v, char *why, size_t n)
{
    switch (dec) {
    case DEC_LINK:
        return handoff_decode_link(in, &v->link, why, n);
    case DEC_CONN:
        return handoff_decode_conn(in, &v->conn, why, n);
    case DEC_ACK:
        return handoff_decode_conn_ack(in, &v->ack, why, n);
    case DEC_RELEASE:
        return handoff_decode_conn_release(in, &v->rel, why, n);
    default:
        return handoff_decode_conn_done(in, &v->done, why, n);
    }
}

static int encode(unsigned dec, struct handoff_msg *m, const struct decoded *v)
{
    switch (dec) {
    case DEC_LINK:
        return handoff_encode_link(m, 1, &v->link);
    case DEC_CONN:
        return handoff_encode_conn(m, 1, &v->conn);
    case DEC_ACK:
        return handoff_encode_conn_ack(m, 1, &v->ack);
    case DEC_RELEASE:
        return handoff_encode_conn_release(m, 1, &v->rel);
    default:
        return handoff_encode_conn_done(m, 1, &v->done);
    }
}

/* The descriptors a decoder handed out (-1: none). */
static void taken_fds(unsigned dec, const struct decoded *v, int fds[2])
{
    fds[0] = dec == DEC_LINK ? v->link.fd : dec == DEC_CONN ? v->conn.client_fd : -1;
    fds[1] = dec == DEC_CONN ? v->conn.server_fd : -1;
}

static int terminated(const char *s, size_t size)
{
    return strnlen(s, size) < size;
}

static void check_inside(const uint8_t *p, uint32_t n, const struct handoff_in *in)
{
    if (n == 0)
        return;
    FUZZ_ASSERT(p != NULL && in->payload != NULL);
    FUZZ_ASSERT(p >= in->payload && n <= in->hdr.len &&
                (size_t)(p - in->payload) <= in->hdr.len - n);
}

/* What the taker relies on without checking again. */
static void check_limits(unsigned dec, const struct decoded *v, const struct handoff_in *in)
{
    const struct handoff_conn *c = &v->conn;

    switch (dec) {
    case DEC_LINK:
        FUZZ_ASSERT(v->link.role == HANDOFF_LINK_GIVE || v->link.role == HANDOFF_LINK_TAKE);
        FUZZ_ASSERT(v->link.count >= 1 && v->link.count <= 4096 &&
                    v->link.index < v->link.count);
        break;
    case DEC_CONN:
        FUZZ_ASSERT(c->phase >= HANDOFF_PHASE_RELAYING && c->phase <= HANDOFF_PHASE_MAX);
        FUZZ_ASSERT((c->server_fd >= 0) == (c->phase == HANDOFF_PHASE_RELAYING ||
                                            c->phase == HANDOFF_PHASE_CONNECTING));
        FUZZ_ASSERT(c->peerlen > 0 && c->peerlen <= HANDOFF_SOCKADDR_MAX);
        FUZZ_ASSERT(c->locallen <= HANDOFF_SOCKADDR_MAX);
        FUZZ_ASSERT(c->ntried <= HANDOFF_CONN_TRIED_MAX);
        FUZZ_ASSERT(terminated(c->listener, sizeof(c->listener)) &&
                    terminated(c->backend, sizeof(c->backend)) &&
                    terminated(c->server, sizeof(c->server)) &&
                    terminated(c->sni, sizeof(c->sni)) && terminated(c->alpn, sizeof(c->alpn)));
        for (uint32_t i = 0; i < c->ntried; i++)
            FUZZ_ASSERT(terminated(c->tried[i], sizeof(c->tried[i])));
        FUZZ_ASSERT(c->up.npending <= HANDOFF_PENDING_MAX &&
                    c->down.npending <= HANDOFF_PENDING_MAX &&
                    c->prefixlen <= HANDOFF_PENDING_MAX);
        check_inside(c->up.pending, c->up.npending, in);
        check_inside(c->down.pending, c->down.npending, in);
        check_inside(c->prefix, c->prefixlen, in);
        for (int side = 0; side < 2; side++) {
            const struct handoff_tls *t = side ? &c->server_tls : &c->client_tls;

            if (!(side ? c->has_server_tls : c->has_client_tls))
                continue;
            FUZZ_ASSERT(t->hslen <= HANDOFF_TLS_HS_MAX && t->nplain_in <= HANDOFF_PENDING_MAX &&
                        t->nraw_in <= HANDOFF_PENDING_MAX && t->nraw_out <= HANDOFF_PENDING_MAX);
            FUZZ_ASSERT(terminated(t->version_name, sizeof(t->version_name)) &&
                        terminated(t->cipher, sizeof(t->cipher)) &&
                        terminated(t->subject, sizeof(t->subject)));
            check_inside(t->hs, t->hslen, in);
            check_inside(t->plain_in, t->nplain_in, in);
            check_inside(t->raw_in, t->nraw_in, in);
            check_inside(t->raw_out, t->nraw_out, in);
        }
        break;
    case DEC_ACK:
        FUZZ_ASSERT(v->ack.n <= HANDOFF_ACK_MAX);
        for (uint32_t i = 0; i < v->ack.n; i++)
            FUZZ_ASSERT(v->ack.results[i].result <= HANDOFF_CONN_REFUSED);
        break;
    case DEC_RELEASE:
        FUZZ_ASSERT(v->rel.n <= HANDOFF_ACK_MAX);
        break;
    default:
        break;
    }
}

static int same_dir(const struct handoff_conn_dir *a, const struct handoff_conn_dir *b)
{
    return a->bytes == b->bytes && a->flags == b->flags && a->npending == b->npending &&
           (a->npending == 0 || memcmp(a->pending, b->pending, a->npending) == 0);
}

static int same_bytes(const uint8_t *a, uint32_t na, const uint8_t *b, uint32_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, na) == 0);
}

static int same_tls(const struct handoff_tls *a, const struct handoff_tls *b)
{
    return a->version == b->version && a->suite == b->suite && a->role == b->role &&
           a->flags == b->flags && a->max_frag == b->max_frag && a->ku_after == b->ku_after &&
           memcmp(&a->rd, &b->rd, sizeof(a->rd)) == 0 &&
           memcmp(&a->wr, &b->wr, sizeof(a->wr)) == 0 &&
           same_bytes(a->hs, a->hslen, b->hs, b->hslen) &&
           same_bytes(a->plain_in, a->nplain_in, b->plain_in, b->nplain_in) &&
           same_bytes(a->raw_in, a->nraw_in, b->raw_in, b->nraw_in) &&
           same_bytes(a->raw_out, a->nraw_out, b->raw_out, b->nraw_out) &&
           a->raw_bytes_in == b->raw_bytes_in && a->resumed == b->resumed &&
           strcmp(a->version_name, b->version_name) == 0 && strcmp(a->cipher, b->cipher) == 0 &&
           strcmp(a->subject, b->subject) == 0;
}

/* The fields of two decodes, descriptors aside. */
static int same(unsigned dec, const struct decoded *a, const struct decoded *b)
{
    const struct handoff_conn *x = &a->conn, *y = &b->conn;

    switch (dec) {
    case DEC_LINK:
        return a->link.role == b->link.role && a->link.peer_gen == b->link.peer_gen &&
               a->link.index == b->link.index && a->link.count == b->link.count &&
               a->link.peer_caps == b->link.peer_caps && a->link.peer_pid == b->link.peer_pid;
    case DEC_CONN:
        if (x->id != y->id || x->phase != y->phase || x->armed != y->armed ||
            x->flags != y->flags || x->handoffs != y->handoffs ||
            x->idle_timeout_ms != y->idle_timeout_ms || x->start_ms != y->start_ms ||
            x->last_ms != y->last_ms || x->deadline_ms != y->deadline_ms ||
            x->peerlen != y->peerlen || memcmp(x->peer, y->peer, x->peerlen) != 0 ||
            x->locallen != y->locallen || memcmp(x->local, y->local, x->locallen) != 0 ||
            strcmp(x->listener, y->listener) != 0 || strcmp(x->backend, y->backend) != 0 ||
            strcmp(x->server, y->server) != 0 || x->ntried != y->ntried ||
            strcmp(x->sni, y->sni) != 0 || strcmp(x->alpn, y->alpn) != 0 ||
            !same_dir(&x->up, &y->up) || !same_dir(&x->down, &y->down) ||
            x->prefixlen != y->prefixlen ||
            (x->prefixlen > 0 && memcmp(x->prefix, y->prefix, x->prefixlen) != 0))
            return 0;
        for (uint32_t i = 0; i < x->ntried; i++)
            if (strcmp(x->tried[i], y->tried[i]) != 0)
                return 0;
        return x->has_client_tls == y->has_client_tls && x->has_server_tls == y->has_server_tls &&
               (!x->has_client_tls || same_tls(&x->client_tls, &y->client_tls)) &&
               (!x->has_server_tls || same_tls(&x->server_tls, &y->server_tls));
    case DEC_ACK:
        return a->ack.credits == b->ack.credits && a->ack.n == b->ack.n &&
               memcmp(a->ack.results, b->ack.results, a->ack.n * sizeof(a->ack.results[0])) == 0;
    case DEC_RELEASE:
        return a->rel.n == b->rel.n &&
               memcmp(a->rel.ids, b->rel.ids, a->rel.n * sizeof(a->rel.ids[0])) == 0;
    default:
        return a->done.sent == b->done.sent;
    }
}

/* Decodes m (as received, with descriptors of its own) into `again`. */
static void check_reencoded(unsigned dec, const struct handoff_msg *m)
{
    struct handoff_in in;
    char why[512] = "";
    int fds[2];

    memset(&in, 0, sizeof(in));
    for (unsigned i = 0; i < HANDOFF_MAX_FDS; i++)
        in.fds[i] = -1;
    in.hdr.magic = HANDOFF_MAGIC;
    in.hdr.version = HANDOFF_WIRE_VERSION;
    in.hdr.type = dec_type[dec];
    in.hdr.len = (uint32_t)(m->len - HANDOFF_HDR_LEN);
    in.payload = in.hdr.len > 0 ? fuzz_dup(m->buf + HANDOFF_HDR_LEN, in.hdr.len) : NULL;
    in.nfds = m->nfds;
    in.hdr.nfds = (uint8_t)m->nfds;
    for (unsigned i = 0; i < in.nfds; i++)
        in.fds[i] = fuzz_fd();
    FUZZ_ASSERT(decode(dec, &in, &again, why, sizeof(why)) == 0);
    FUZZ_ASSERT(same(dec, &first, &again));
    taken_fds(dec, &again, fds);
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    handoff_in_free(&in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct handoff_in in;
    struct handoff_msg m;
    char why[512] = "";
    unsigned dec, i, given;
    int lowest, rc, fds[2];

    if (size < 2)
        return 0;
    dec = data[0] % NDEC;
    lowest = fuzz_lowest_free_fd();

    memset(&in, 0, sizeof(in));
    in.hdr.magic = HANDOFF_MAGIC;
    in.hdr.version = HANDOFF_WIRE_VERSION;
    in.hdr.type = dec_type[dec];
    in.hdr.seq = 1;
    in.hdr.len = (uint32_t)(size - 2);
    in.payload = size > 2 ? fuzz_dup(data + 2, size - 2) : NULL;
    in.nfds = data[1] & 3;
    in.hdr.nfds = (uint8_t)in.nfds;
    in.fds_lost = (data[1] & 0x40) != 0 && in.nfds > 0;
    for (i = 0; i < HANDOFF_MAX_FDS; i++)
        in.fds[i] = i < in.nfds && !in.fds_lost ? fuzz_fd() : -1;
    if ((data[1] & 0x80) && in.nfds > 0 && in.fds[0] >= 0) {
        close(in.fds[0]);
        in.fds[0] = -1;
    }
    given = in.fds[0] >= 0 ? (unsigned)in.fds[0] : 0;

    rc = decode(dec, &in, &first, why, sizeof(why));
    taken_fds(dec, &first, fds);
    if (rc != 0) {
        FUZZ_ASSERT(rc == -1 && why[0] != '\0');
        FUZZ_ASSERT(fds[0] == -1 && fds[1] == -1);
    } else {
        check_limits(dec, &first, &in);
        FUZZ_ASSERT(!in.fds_lost);
        /* The descriptors it takes are the message's, in order. */
        if (dec == DEC_LINK || dec == DEC_CONN) {
            FUZZ_ASSERT(fds[0] >= 0 && (unsigned)fds[0] == given && in.fds[0] == -1);
            FUZZ_ASSERT(in.nfds == (fds[1] >= 0 ? 2u : 1u));
            FUZZ_ASSERT(fds[1] == -1 || in.fds[1] == -1);
            FUZZ_ASSERT(fcntl(fds[0], F_GETFD) != -1);
        } else {
            FUZZ_ASSERT(in.nfds == 0);
        }
        /* Its fixed fields are the start of the payload; the rest were
         * extensions (known ones are compared once decoded again). */
        base = first;
        base.link.peer_caps = 0;
        base.link.peer_pid = 0;
        base.conn.has_client_tls = base.conn.has_server_tls = 0;
        FUZZ_ASSERT(encode(dec, &m, &base) == 0);
        FUZZ_ASSERT(m.nfds == in.nfds);
        FUZZ_ASSERT(m.len - HANDOFF_HDR_LEN <= in.hdr.len);
        FUZZ_ASSERT(m.len == HANDOFF_HDR_LEN ||
                    memcmp(m.buf + HANDOFF_HDR_LEN, in.payload, m.len - HANDOFF_HDR_LEN) == 0);
        handoff_msg_free(&m);
        FUZZ_ASSERT(encode(dec, &m, &first) == 0);
        check_reencoded(dec, &m);
        handoff_msg_free(&m);
        for (i = 0; i < 2; i++)
            if (fds[i] >= 0)
                close(fds[i]);
    }
    handoff_in_free(&in);
    FUZZ_ASSERT(fuzz_lowest_free_fd() == lowest);
    return 0;
}
