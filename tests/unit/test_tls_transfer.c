/*
 * test_tls_transfer.c - a TLS side frozen into a CONN message, through the
 * wire format, and adopted: the record state, the plaintext opened but not
 * read, the records received but not opened (a whole one and the start of
 * another) and the records sealed but not sent arrive exactly, so the
 * adopted side opens the peer's next records and seals byte for byte what
 * the old one would have.  Bad states are refused with a reason.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn_msg.h"
#include "testutil.h"
#include "tls.h"
#include "tls_record.h"
#include "tls_transfer.h"
#include "wire.h"

/* A TLS 1.3 pair: our server side and the peer's client side, keyed with
 * fixed secrets (the client's write secret is the server's read one). */
static void rec_pair(struct proxy_tlsrec *server, struct proxy_tlsrec *client, uint16_t suite)
{
    char why[256];

    memset(server, 0, sizeof(*server));
    memset(client, 0, sizeof(*client));
    server->version = client->version = 0x0304;
    server->suite = client->suite = suite;
    server->role = PROXY_TLSREC_SERVER;
    client->role = PROXY_TLSREC_CLIENT;
    server->max_frag = client->max_frag = PROXY_TLSREC_PT_MAX;
    memset(server->rd.secret, 0xc1, sizeof(server->rd.secret));
    memset(client->wr.secret, 0xc1, sizeof(client->wr.secret));
    memset(server->wr.secret, 0x5e, sizeof(server->wr.secret));
    memset(client->rd.secret, 0x5e, sizeof(client->rd.secret));
    server->rd.seq = client->wr.seq = 7;
    server->wr.seq = client->rd.seq = 2;
    CHECK(proxy_tlsrec_start(server, why, sizeof(why)) == 0);
    CHECK(proxy_tlsrec_start(client, why, sizeof(why)) == 0);
}

static size_t seal(struct proxy_tlsrec *r, const char *msg, uint8_t *out, size_t cap)
{
    char why[256];
    ssize_t n = proxy_tlsrec_write(r, (const uint8_t *)msg, strlen(msg), out, cap, why,
                                   sizeof(why));

    CHECK(n > 0);
    return n > 0 ? (size_t)n : 0;
}

/* Opens the next whole record of t as xprt_tlsrec does; 0 or -1. */
static int open_next(struct proxy_tls *t)
{
    uint8_t *rec, *pt, alert;
    size_t len, ptlen;
    char why[256];

    if (!proxy_tls_next_record(t, &rec, &len) ||
        proxy_tlsrec_read(t->rec, rec, len, &pt, &ptlen, &alert, why, sizeof(why)) !=
            PROXY_TLSREC_DATA)
        return -1;
    t->ptoff = (uint32_t)(pt - t->in);
    t->ptlen = (uint32_t)ptlen;
    return 0;
}

static void take_plain(struct proxy_tls *t, char *buf, size_t n)
{
    CHECK(t->ptlen >= n);
    memcpy(buf, t->in + t->ptoff, n);
    buf[n] = '\0';
    t->ptoff += (uint32_t)n;
    t->ptlen -= (uint32_t)n;
}

/* A CONN with a client TLS side, encoded and decoded as a link would. */
static int through_wire(const struct handoff_tls *h, struct handoff_conn *got,
                        struct handoff_in *in)
{
    struct handoff_conn *v = calloc(1, sizeof(*v));
    struct sockaddr_in peer = { .sin_family = AF_INET };
    struct handoff_msg m;
    char why[256];
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC), rc = -1;

    if (v == NULL || fd < 0)
        goto out;
    v->id = 9;
    v->phase = HANDOFF_PHASE_RELAYING;
    memcpy(v->peer, &peer, sizeof(peer));
    v->peerlen = sizeof(peer);
    snprintf(v->listener, sizeof(v->listener), "web");
    v->client_fd = v->server_fd = fd;
    v->has_client_tls = 1;
    v->client_tls = *h;
    if (handoff_encode_conn(&m, 1, v) != 0)
        goto out;
    memset(in, 0, sizeof(*in));
    for (unsigned i = 0; i < HANDOFF_MAX_FDS; i++)
        in->fds[i] = -1;
    if (handoff_hdr_decode(m.buf, &in->hdr, why, sizeof(why)) == 0 &&
        (in->payload = malloc(in->hdr.len)) != NULL) {
        memcpy(in->payload, m.buf + HANDOFF_HDR_LEN, in->hdr.len);
        for (unsigned i = 0; i < m.nfds; i++)
            in->fds[in->nfds++] = fcntl(m.fds[i], F_DUPFD_CLOEXEC, 0);
        rc = handoff_decode_conn(in, got, why, sizeof(why));
        if (rc != 0)
            fprintf(stderr, "    decode: %s\n", why);
    }
    handoff_msg_free(&m);
out:
    if (fd >= 0)
        close(fd);
    free(v);
    return rc;
}

static void test_round_trip(uint16_t suite)
{
    struct proxy_tlsrec server, peer;
    struct proxy_tls *t0 = calloc(1, sizeof(*t0)), *t1;
    struct handoff_conn *got = calloc(1, sizeof(*got));
    struct handoff_tls h;
    struct handoff_in in;
    uint8_t wire[4096], out0[512], out1[512], *room;
    size_t n1, n2, n;
    char buf[64], why[256];

    if (t0 == NULL || got == NULL)
        return;
    rec_pair(&server, &peer, suite);
    t0->wfd = -1;
    t0->handshake_done = 1;
    t0->rec = malloc(sizeof(*t0->rec));
    *t0->rec = server;
    snprintf(t0->facts.version, sizeof(t0->facts.version), "TLSv1.3");
    snprintf(t0->facts.cipher, sizeof(t0->facts.cipher), "TLS_AES_128_GCM_SHA256");
    t0->facts.resumed = 1;
    t0->facts.subject = strdup("CN=client,O=baton");

    /* From the peer: one record read in part, one whole, one begun. */
    n1 = seal(&peer, "hello there", wire, sizeof(wire));
    n2 = seal(&peer, "second", wire + n1, sizeof(wire) - n1);
    n = seal(&peer, "third record", wire + n1 + n2, sizeof(wire) - n1 - n2);
    CHECK(proxy_tls_feed(t0, wire, n1 + n2 + 9, why, sizeof(why)) == PROXY_TLS_OK);
    CHECK(open_next(t0) == 0);
    take_plain(t0, buf, 6);
    CHECK_STR(buf, "hello ");
    /* Sealed, not sent: goes out first from the new process. */
    room = proxy_tls_out_room(t0, 256);
    CHECK(room != NULL);
    proxy_tls_out_commit(t0, seal(t0->rec, "queued", room, 256));

    CHECK(proxy_tls_freeze(t0, &h) == 0);
    CHECK(through_wire(&h, got, &in) == 0);
    CHECK(got->has_client_tls && !got->has_server_tls);
    t1 = proxy_tls_adopt(&got->client_tls, why, sizeof(why));
    CHECK(t1 != NULL);
    if (t1 == NULL)
        goto out;
    CHECK_STR(t1->facts.version, "TLSv1.3");
    CHECK_STR(t1->facts.cipher, "TLS_AES_128_GCM_SHA256");
    CHECK(t1->facts.resumed == 1 && t1->handshake_done);
    CHECK_STR(t1->facts.subject, "CN=client,O=baton");
    /* The rest of the first record, then the second, then the third. */
    take_plain(t1, buf, 5);
    CHECK_STR(buf, "there");
    CHECK(t1->ptlen == 0 && open_next(t1) == 0);
    take_plain(t1, buf, 6);
    CHECK_STR(buf, "second");
    CHECK(open_next(t1) == -1);   /* the third is not whole yet */
    CHECK(proxy_tls_feed(t1, wire + n1 + n2 + 9, n - 9, why, sizeof(why)) == PROXY_TLS_OK);
    CHECK(open_next(t1) == 0);
    take_plain(t1, buf, 12);
    CHECK_STR(buf, "third record");
    /* The queued record, byte for byte, and the next ones sealed alike. */
    CHECK_U64(t1->outlen - t1->outoff, t0->outlen - t0->outoff);
    CHECK(memcmp(t1->out + t1->outoff, t0->out + t0->outoff, t0->outlen - t0->outoff) == 0);
    n1 = seal(t0->rec, "after the move", out0, sizeof(out0));
    n2 = seal(t1->rec, "after the move", out1, sizeof(out1));
    CHECK(n1 == n2 && memcmp(out0, out1, n1) == 0);
    proxy_tls_free(t1);
    free(t1);

    /* A state no sender could have left is refused, with the reason. */
    got->client_tls.suite = 0x9999;
    CHECK(proxy_tls_adopt(&got->client_tls, why, sizeof(why)) == NULL);
    CHECK_WHY(why, "suite 0x9999 is not carried");
    got->client_tls.suite = suite;
    got->client_tls.raw_in = (const uint8_t *)"\x99\x03\x03\x00\x05hello";
    got->client_tls.nraw_in = 10;
    CHECK(proxy_tls_adopt(&got->client_tls, why, sizeof(why)) == NULL);
    CHECK_WHY(why, "malformed TLS record");
    got->client_tls.nraw_in = 0;
    got->client_tls.nplain_in = PROXY_TLSREC_PT_MAX + 1;
    CHECK(proxy_tls_adopt(&got->client_tls, why, sizeof(why)) == NULL);
    CHECK_WHY(why, "opened plaintext");
    handoff_in_free(&in);
    if (got->client_fd >= 0)
        close(got->client_fd);
    if (got->server_fd >= 0)
        close(got->server_fd);
out:
    proxy_tls_free(t0);
    free(t0);
    proxy_tlsrec_free(&peer);
    free(got);
}

/* A KeyUpdate owed at the moment of the handoff (the peer asked for one
 * and the old process had not answered yet) is sent by the new process
 * before anything else, and the peer follows it. */
static void test_ku_owed(void)
{
    struct proxy_tlsrec server, peer;
    struct proxy_tls *t0 = calloc(1, sizeof(*t0)), *t1;
    struct handoff_conn *got = calloc(1, sizeof(*got));
    struct handoff_tls h;
    struct handoff_in in;
    uint8_t wire[1024], *pt, alert, out[256];
    size_t ptlen, n;
    ssize_t w;
    char why[256];

    if (t0 == NULL || got == NULL)
        return;
    rec_pair(&server, &peer, 0x1301);
    t0->wfd = -1;
    t0->handshake_done = 1;
    t0->rec = malloc(sizeof(*t0->rec));
    *t0->rec = server;
    /* The peer rekeys (the record layer only sends update_not_requested):
     * the old side follows it, and is then left owing a KeyUpdate as if the
     * peer had asked for one and the handoff came before the answer. */
    peer.flags |= PROXY_TLSREC_F_KU_OWED;
    n = (size_t)proxy_tlsrec_flush_control(&peer, wire, sizeof(wire), why, sizeof(why));
    CHECK(n > 0 && !(peer.flags & PROXY_TLSREC_F_KU_OWED));
    CHECK(proxy_tlsrec_read(t0->rec, wire, n, &pt, &ptlen, &alert, why, sizeof(why)) ==
          PROXY_TLSREC_CONTROL);
    CHECK(t0->rec->rd.seq == 0);
    t0->rec->flags |= PROXY_TLSREC_F_KU_OWED;
    CHECK(proxy_tls_freeze(t0, &h) == 0);
    CHECK(h.flags & PROXY_TLSREC_F_KU_OWED);
    CHECK(through_wire(&h, got, &in) == 0);
    t1 = proxy_tls_adopt(&got->client_tls, why, sizeof(why));
    CHECK(t1 != NULL);
    if (t1 != NULL) {
        /* The new side's first record is the KeyUpdate, then data under
         * the new key: the peer follows and reads it. */
        w = proxy_tlsrec_write(t1->rec, (const uint8_t *)"after", 5, out, sizeof(out), why,
                               sizeof(why));
        CHECK(w > 0 && !(t1->rec->flags & PROXY_TLSREC_F_KU_OWED));
        n = PROXY_TLSREC_HDR + ((size_t)out[3] << 8 | out[4]);
        CHECK(n < (size_t)w);
        CHECK(proxy_tlsrec_read(&peer, out, n, &pt, &ptlen, &alert, why, sizeof(why)) ==
              PROXY_TLSREC_CONTROL);
        CHECK(peer.rd.seq == 0);   /* followed: a new read key */
        CHECK(proxy_tlsrec_read(&peer, out + n, (size_t)w - n, &pt, &ptlen, &alert, why,
                                sizeof(why)) == PROXY_TLSREC_DATA &&
              ptlen == 5 && memcmp(pt, "after", 5) == 0);
        proxy_tls_free(t1);
        free(t1);
    }
    handoff_in_free(&in);
    if (got->client_fd >= 0)
        close(got->client_fd);
    if (got->server_fd >= 0)
        close(got->server_fd);
    proxy_tls_free(t0);
    free(t0);
    proxy_tlsrec_free(&peer);
    free(got);
}

int main(void)
{
    test_ku_owed();
    test_round_trip(0x1301);
    test_round_trip(0x1302);
    test_round_trip(0x1303);
    return test_summary("tls_transfer");
}
