/*
 * test_channel.c - the handoff channel over the real transport of the OS
 * (test_channel_os.h: one file per OS), on Linux and on Windows (under
 * Wine in CI): messages with and without handles, large messages through
 * partial writes, many messages per read, malformed and truncated streams,
 * EOF, no handle leaks, and the handoff order: a handle given is closed
 * only after the peer's HANDLE_ACK, checked in one process and across two
 * (a child receives a listener with a connection in its backlog and a live
 * connection with unread bytes).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channel.h"
#include "conn_msg.h"
#include "message.h"
#include "port_net.h"
#include "test_channel_os.h"
#include "testutil.h"
#include "transport.h"
#include "wire.h"

/* Two connected channels: a (say, the master) and b (the worker), in this
 * process (a Windows transport duplicates handles for the peer's pid). */
int tc_open_pair(struct handoff_channel *a, struct handoff_channel *b)
{
    int sv[2];

    if (handoff_transport_pair(sv) == -1)
        return -1;
    if (handoff_channel_init(a, sv[0], (pid_t)getpid()) == -1 ||
        handoff_channel_init(b, sv[1], (pid_t)getpid()) == -1) {
        handoff_transport_close(sv[0]);
        handoff_transport_close(sv[1]);
        return -1;
    }
    return 0;
}

#define open_pair tc_open_pair
#define pump_next tc_pump_next
#define same_pipe tc_same_pair
#define send_conn tc_send_conn

/* Moves everything queued on `from` into `to` and takes the next message,
 * alternating flush and read so neither side's buffer has to hold it all. */
int tc_pump_next(struct handoff_channel *from, struct handoff_channel *to,
                 struct handoff_in *in, char *why, size_t whylen)
{
    int r, spins;
    ssize_t n;

    for (spins = 0; spins < 100000; spins++) {
        if ((r = handoff_channel_next(to, in, why, whylen)) != 0)
            return r;
        if (handoff_channel_flush(from) == -1) {
            snprintf(why, whylen, "flush: %s", strerror(errno));
            return -1;
        }
        n = handoff_channel_read(to);
        if (n == -1) {
            snprintf(why, whylen, "read: %s", strerror(errno));
            return -1;
        }
        /* Nothing more to send: what was sent may still be on its way
         * (TCP on Windows), but not for long. */
        if (n == 0 || (n == -2 && from->out_head == NULL &&
                       handoff_transport_wait(to->fd, 0, 2000) != 1)) {
            snprintf(why, whylen, "stalled (n = %zd)", n);
            return -1;
        }
    }
    snprintf(why, whylen, "no progress");
    return -1;
}

/* Checks that wfd and rfd are the two ends of one socket pair (non-blocking
 * ones, from handoff_transport_pair). */
int tc_same_pair(int wfd, int rfd)
{
    char c = 0;
    int n;

    if (send(wfd, "q", 1, 0) != 1)
        return 0;
    if (handoff_transport_wait(rfd, 0, 2000) != 1)
        return 0;
    n = (int)recv(rfd, &c, 1, 0);
    return n == 1 && c == 'q';
}

/* Whole writes and reads on a blocking socket (the same calls on both OSes:
 * SIGPIPE is ignored where it exists). */
int tc_send_all(int s, const void *p, size_t n)
{
    const char *c = p;
    long k;

    while (n > 0) {
        if ((k = (long)send(s, c, (int)(n > 65536 ? 65536 : n), 0)) <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

int tc_recv_all(int s, void *p, size_t n)
{
    char *c = p;
    long k;

    while (n > 0) {
        if ((k = (long)recv(s, c, (int)(n > 65536 ? 65536 : n), 0)) <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Several socket pairs, each end non-blocking and not inherited. */
static int socket_pairs(int (*p)[2], unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (handoff_transport_pair(p[i]) != 0)
            return -1;
    return 0;
}


static void test_fds_interleaved(void)
{
    struct handoff_channel a, b;
    struct handoff_msg m;
    struct handoff_in in;
    struct handoff_listener l;
    char why[256] = "";
    int pipes[4][2], i, r;

    CHECK(open_pair(&a, &b) == 0);
    CHECK(socket_pairs(pipes, 4) == 0);

    for (i = 0; i < 4; i++) {
        struct handoff_hello h = { .pid = (uint32_t)(100 + i), .version = "x" };
        struct handoff_listener v = { "", "127.0.0.1:0", -1 };

        snprintf(v.name, sizeof(v.name), "l%d", i);
        /* Alternate read and write ends so both directions are exercised. */
        v.fd = i % 2 == 0 ? pipes[i][0] : pipes[i][1];
        CHECK(handoff_encode_listener(&m, a.seq++, &v) == 0);
        CHECK(handoff_channel_send(&a, &m) == 0);
        handoff_msg_free(&m);
        CHECK(handoff_encode_hello(&m, a.seq++, &h) == 0);
        CHECK(handoff_channel_send(&a, &m) == 0);
        handoff_msg_free(&m);
    }
    /* One message with several descriptors. */
    CHECK(handoff_msg_init(&m, HANDOFF_CONN, a.seq++) == 0);
    handoff_msg_put_u32(&m, 0xc0ffee);
    handoff_msg_add_fd(&m, pipes[0][0]);
    handoff_msg_add_fd(&m, pipes[1][1]);
    handoff_msg_add_fd(&m, pipes[2][0]);
    CHECK(handoff_msg_finish(&m) == 0);
    CHECK(handoff_channel_send(&a, &m) == 0);
    handoff_msg_free(&m);
    CHECK(handoff_encode_empty(&m, HANDOFF_START, a.seq++) == 0);
    CHECK(handoff_channel_send(&a, &m) == 0);
    handoff_msg_free(&m);
    CHECK(handoff_channel_pending(&a));

    /* Queued messages hold their own duplicates. */
    for (i = 0; i < 4; i++)
        handoff_transport_close(i % 2 == 0 ? pipes[i][0] : pipes[i][1]);

    for (i = 0; i < 4; i++) {
        struct handoff_hello h;

        r = pump_next(&a, &b, &in, why, sizeof(why));
        CHECK(r == 1);
        if (r != 1) {
            fprintf(stderr, "    %s\n", why);
            break;
        }
        CHECK_U64(in.hdr.type, HANDOFF_LISTENER);
        CHECK(handoff_decode_listener(&in, &l, why, sizeof(why)) == 0);
        CHECK(l.fd >= 0);
        CHECK(!tc_inheritable(l.fd));
        if (i % 2 == 0)
            CHECK(same_pipe(pipes[i][1], l.fd));
        else
            CHECK(same_pipe(l.fd, pipes[i][0]));
        handoff_transport_close(l.fd);
        handoff_in_free(&in);

        CHECK(pump_next(&a, &b, &in, why, sizeof(why)) == 1);
        CHECK(handoff_decode_hello(&in, &h, why, sizeof(why)) == 0);
        CHECK_U64(h.pid, 100 + i);
        handoff_in_free(&in);
    }
    CHECK(pump_next(&a, &b, &in, why, sizeof(why)) == 1);
    CHECK_U64(in.hdr.type, HANDOFF_CONN);
    CHECK_U64(in.nfds, 3);
    /* Those ends were closed here and in the LISTENER copies received
     * above; only the queue's duplicates kept them open. */
    CHECK(same_pipe(pipes[0][1], in.fds[0]));
    CHECK(same_pipe(in.fds[1], pipes[1][0]));
    CHECK(same_pipe(pipes[2][1], in.fds[2]));
    handoff_in_free(&in);   /* closes the three */
    CHECK(pump_next(&a, &b, &in, why, sizeof(why)) == 1);
    CHECK(handoff_decode_empty(&in, why, sizeof(why)) == 0);
    CHECK_U64(in.hdr.type, HANDOFF_START);
    handoff_in_free(&in);
    CHECK(!handoff_channel_pending(&a));
    CHECK_U64(b.nfdq, 0);

    for (i = 0; i < 4; i++)
        handoff_transport_close(i % 2 == 0 ? pipes[i][1] : pipes[i][0]);
    handoff_channel_close(&a);
    handoff_channel_close(&b);
}

#define BATCH_MSGS  150   /* 2 handles each: more than one batch */
#define BATCH_LARGE 70    /* this one is too large for a batch */

/* Message i of test_batches: its number, two handles of pair i (every
 * tenth none), and for BATCH_LARGE more bytes than one batch holds. */
static void batch_queue(struct handoff_channel *a, int (*pairs)[2], unsigned i)
{
    struct handoff_msg m;
    size_t n = i == BATCH_LARGE ? (size_t)100 << 10 : 40 + i % 7;
    uint8_t *body = calloc(1, n);

    CHECK(body != NULL && handoff_msg_init(&m, HANDOFF_CONN, a->seq++) == 0);
    handoff_msg_put_u32(&m, i);
    handoff_msg_put_bytes(&m, body, n);
    if (i % 10 != 9) {
        handoff_msg_add_fd(&m, pairs[i][0]);
        handoff_msg_add_fd(&m, pairs[i][0]);
    }
    CHECK(handoff_msg_finish(&m) == 0);
    CHECK(handoff_channel_send_lent(a, &m) == 0);
    handoff_msg_free(&m);
    free(body);
}

/*
 * To a peer that reads batches, queued messages go out with all their
 * handles in one send where the transport can (Linux: up to
 * HANDOFF_BATCH_FDS; a Windows record holds one message's); to a peer that
 * does not (caps 0: an older release), one message's handles per send.
 * Either way, through partial sends of a small socket buffer and a message
 * too large for a batch among the others, every message arrives in order
 * with its own handles, and none leaks.
 */
static void batch_round(uint32_t caps, int small)
{
    struct handoff_channel a, b;
    struct handoff_in in;
    int (*pairs)[2] = calloc(BATCH_MSGS, sizeof(*pairs));
    char why[256] = "";
    unsigned i, first_fds = 0, got = 0, in_order = 1, handles_ok = 1;
    int before = tc_count_handles();
    ssize_t n = -2;

    CHECK(pairs != NULL && open_pair(&a, &b) == 0);
    CHECK(socket_pairs(pairs, BATCH_MSGS) == 0);
    handoff_channel_set_peer_caps(&a, caps);
    CHECK_U64(a.batch_fds, (caps & HANDOFF_CAP_FD_BATCH) &&
                           handoff_transport_send_fds_max() > HANDOFF_MAX_FDS
                           ? HANDOFF_BATCH_FDS : 0);
    if (small)
        CHECK(tc_small_sndbuf(a.fd) == 0);
    for (i = 0; i < BATCH_MSGS; i++)
        batch_queue(&a, pairs, i);
    if (!small) {
        /* What the first read brings: a batch's handles, or one message's. */
        CHECK(handoff_channel_flush(&a) >= 0);
        for (int t = 0; t < 100 && (n = handoff_channel_read(&b)) == -2; t++)
            handoff_transport_wait(b.fd, 0, 20);
        CHECK(n > 0);
        first_fds = b.nfdq;
        if (a.batch_fds > 0)
            CHECK(first_fds > HANDOFF_MAX_FDS);
        else if (handoff_transport_send_fds_max() > HANDOFF_MAX_FDS)
            CHECK_U64(first_fds, 2);   /* SCM_RIGHTS: one sendmsg's per recvmsg */
    }
    while (got < BATCH_MSGS) {
        struct handoff_reader r;
        uint32_t id = 0;

        if (pump_next(&a, &b, &in, why, sizeof(why)) != 1) {
            fprintf(stderr, "    batch_round(caps %u, small %d): message %u: %s\n",
                    (unsigned)caps, small, got, why);
            CHECK(0);
            break;
        }
        handoff_reader_init(&r, in.payload, in.hdr.len);
        CHECK(handoff_get_u32(&r, &id) == 0);
        in_order &= id == got;
        if (id < BATCH_MSGS && id % 10 != 9)
            handles_ok &= in.nfds == 2 && same_pipe(in.fds[0], pairs[id][1]) &&
                          same_pipe(in.fds[1], pairs[id][1]);
        else
            handles_ok &= in.nfds == 0;
        handoff_in_free(&in);
        got++;
    }
    CHECK(in_order);
    CHECK(handles_ok);
    CHECK(!handoff_channel_pending(&a));
    CHECK_U64(b.nfdq, 0);
    handoff_channel_close(&a);
    handoff_channel_close(&b);
    for (i = 0; i < BATCH_MSGS; i++) {
        /* Lent: still the caller's. */
        CHECK(tc_is_open_socket(pairs[i][0]));
        handoff_transport_close(pairs[i][0]);
        handoff_transport_close(pairs[i][1]);
    }
    free(pairs);
    CHECK_U64(tc_count_handles(), before);
}

static void test_batches(void)
{
    batch_round(HANDOFF_CAP_FD_BATCH, 0);
    batch_round(HANDOFF_CAP_FD_BATCH, 1);
    batch_round(0, 0);
    batch_round(0, 1);
}

static uint8_t *pattern(size_t len, unsigned seed)
{
    uint8_t *p = malloc(len);
    size_t i;

    for (i = 0; i < len; i++)
        p[i] = (uint8_t)('!' + (i * 7 + seed + i / 1000) % 90);
    return p;
}

static void test_large(void)
{
    static struct handoff_config c, g;
    struct handoff_channel a, b;
    struct handoff_msg m;
    struct handoff_in in;
    size_t len = 1536 * 1024;
    uint8_t *text = pattern(len, 1), *blob = pattern(len - 100, 2);
    char why[256] = "";
    int p[2], r;
    ssize_t n;

    CHECK(open_pair(&a, &b) == 0);
    CHECK(handoff_transport_pair(p) == 0);

    c.generation = 9;
    strcpy(c.path, "/etc/baton.ini");
    c.text = text;
    c.textlen = (uint32_t)len;
    CHECK(handoff_encode_config(&m, 1, &c) == 0);
    CHECK(handoff_channel_send(&a, &m) == 0);
    handoff_msg_free(&m);

    /* A big message with descriptors: its first write is partial, so the
     * remaining writes must not repeat the descriptors. */
    CHECK(handoff_msg_init(&m, HANDOFF_CONN, 2) == 0);
    handoff_msg_put_bytes(&m, blob, len - 100);
    handoff_msg_add_fd(&m, p[0]);
    handoff_msg_add_fd(&m, p[1]);
    CHECK(handoff_msg_finish(&m) == 0);
    CHECK(handoff_channel_send(&a, &m) == 0);
    handoff_msg_free(&m);
    CHECK(handoff_encode_empty(&m, HANDOFF_READY, 3) == 0);
    CHECK(handoff_channel_send(&a, &m) == 0);
    handoff_msg_free(&m);

    /* The socket buffer cannot take it all (an AF_UNIX pair's cannot; TCP's
     * on Windows may grow to): the first flush stops. */
    r = handoff_channel_flush(&a);
    CHECK(r == 0 || r == 1);
    if (r == 0) {
        CHECK(handoff_channel_pending(&a));
        n = handoff_channel_read(&b);
        CHECK(n > 0 && (size_t)n < len);
        CHECK(handoff_channel_next(&b, &in, why, sizeof(why)) == 0);
    }

    r = pump_next(&a, &b, &in, why, sizeof(why));
    CHECK(r == 1);
    if (r != 1)
        fprintf(stderr, "    %s\n", why);
    CHECK(handoff_decode_config(&in, &g, why, sizeof(why)) == 0);
    CHECK_U64(g.generation, 9);
    CHECK_STR(g.path, "/etc/baton.ini");
    CHECK(g.textlen == len && memcmp(g.text, text, len) == 0);
    handoff_in_free(&in);

    r = pump_next(&a, &b, &in, why, sizeof(why));
    CHECK(r == 1);
    if (r == 1) {
        struct handoff_reader rd;
        const uint8_t *bp;
        uint32_t bn;

        CHECK_U64(in.hdr.type, HANDOFF_CONN);
        CHECK_U64(in.nfds, 2);
        handoff_reader_init(&rd, in.payload, in.hdr.len);
        CHECK(handoff_get_bytes(&rd, &bp, &bn, HANDOFF_MAX_PAYLOAD) == 0);
        CHECK(handoff_reader_done(&rd) == 0);
        CHECK(bn == len - 100 && memcmp(bp, blob, bn) == 0);
        CHECK(same_pipe(in.fds[1], in.fds[0]));
        CHECK(same_pipe(p[1], in.fds[0]));
        handoff_in_free(&in);
    }
    CHECK(pump_next(&a, &b, &in, why, sizeof(why)) == 1);
    CHECK_U64(in.hdr.type, HANDOFF_READY);
    handoff_in_free(&in);
    /* No stray descriptors arrived with the later parts. */
    CHECK_U64(b.nfdq, 0);

    handoff_transport_close(p[0]);
    handoff_transport_close(p[1]);
    free(text);
    free(blob);
    handoff_channel_close(&a);
    handoff_channel_close(&b);
}

/* Writes raw bytes into a's transport, bypassing the channel's framing. */
static void raw_write(struct handoff_channel *a, const void *p, size_t n)
{
    const uint8_t *c = p;
    ssize_t k;

    while (n > 0) {
        k = handoff_transport_send(a->fd, a->peer_pid, c, n, NULL, NULL, 0);
        if (k == -1 && errno == EAGAIN && handoff_transport_wait(a->fd, 1, 2000) == 1)
            continue;
        CHECK(k > 0);
        if (k <= 0)
            return;
        c += k;
        n -= (size_t)k;
    }
}

/* Takes every complete STATUS_REQ from b; checks ids count up from 0. */
static unsigned drain_status_reqs(struct handoff_channel *b, int *ordered)
{
    struct handoff_status_req sr;
    struct handoff_in in;
    char why[256];
    unsigned got = 0;

    while (handoff_channel_next(b, &in, why, sizeof(why)) == 1) {
        if (handoff_decode_status_req(&in, &sr, why, sizeof(why)) == -1 || sr.id != got ||
            in.hdr.seq != got + 1)
            *ordered = 0;
        got++;
        handoff_in_free(&in);
    }
    return got;
}

static void test_many_small(void)
{
    struct handoff_channel a, b;
    struct handoff_msg m;
    struct handoff_status_req sr;
    unsigned i, count = 64, big = 2000;
    uint8_t *all = malloc(big * (HANDOFF_HDR_LEN + 4));
    size_t off = 0;
    int ordered = 1;

    /* Through the channel: one sendmsg per message, still one read.  (The
     * kernel charges each small send a whole skb, so keep the count modest.) */
    CHECK(open_pair(&a, &b) == 0);
    for (i = 0; i < count; i++) {
        sr.id = i;
        CHECK(handoff_encode_status_req(&m, a.seq++, &sr) == 0);
        CHECK(handoff_channel_send(&a, &m) == 0);
        handoff_msg_free(&m);
    }
    CHECK(handoff_channel_flush(&a) == 1);
    CHECK(!handoff_channel_pending(&a));
    CHECK_U64(handoff_channel_read(&b), count * (HANDOFF_HDR_LEN + 4));
    CHECK_U64(drain_status_reqs(&b, &ordered), count);
    CHECK(ordered);
    CHECK_U64(b.rlen, 0);
    CHECK_U64(handoff_channel_read(&b), (uint64_t)-2);   /* nothing left: would block */

    /* Many messages in a single write, and so in a single read. */
    for (i = 0; i < big; i++) {
        sr.id = i;
        CHECK(handoff_encode_status_req(&m, i + 1, &sr) == 0);
        memcpy(all + off, m.buf, m.len);
        off += m.len;
        handoff_msg_free(&m);
    }
    raw_write(&a, all, off);
    while (b.rlen < off && handoff_transport_wait(b.fd, 0, 2000) == 1 &&
           handoff_channel_read(&b) > 0)
        ;
    CHECK_U64(b.rlen, off);
    CHECK_U64(drain_status_reqs(&b, &ordered), big);
    CHECK(ordered);
    CHECK_U64(b.rlen, 0);
    free(all);
    handoff_channel_close(&a);
    handoff_channel_close(&b);
}


static void test_garbage(void)
{
    static const char http[] = "GET / HTTP/1.0\r\nHost: example\r\n\r\n";
    struct handoff_channel a, b;
    struct handoff_in in;
    struct handoff_hdr h = { HANDOFF_MAGIC, HANDOFF_WIRE_VERSION, 0, HANDOFF_HELLO, 0, 1, 0 };
    uint8_t hdr[HANDOFF_HDR_LEN];
    char why[256] = "";

    CHECK(open_pair(&a, &b) == 0);
    raw_write(&a, http, sizeof(http) - 1);
    CHECK(handoff_channel_read(&b) > 0);
    CHECK(handoff_channel_next(&b, &in, why, sizeof(why)) == -1);
    CHECK_WHY(why, "bad magic 0x4745 (expected 0xba70)");
    handoff_channel_close(&a);
    handoff_channel_close(&b);

    /* A valid magic but an unknown type: framed like any message. */
    CHECK(open_pair(&a, &b) == 0);
    h.type = 200;
    handoff_hdr_encode(&h, hdr);
    raw_write(&a, hdr, sizeof(hdr));
    CHECK(handoff_channel_read(&b) > 0);
    CHECK(handoff_channel_next(&b, &in, why, sizeof(why)) == 1);
    CHECK_U64(in.hdr.type, 200);
    handoff_in_free(&in);
    handoff_channel_close(&a);
    handoff_channel_close(&b);

    /* A header promising a descriptor that never came. */
    CHECK(open_pair(&a, &b) == 0);
    h.type = HANDOFF_LISTENER;
    h.nfds = 1;
    h.len = 2;
    handoff_hdr_encode(&h, hdr);
    raw_write(&a, hdr, sizeof(hdr));
    CHECK(handoff_channel_read(&b) > 0);
    CHECK(handoff_channel_next(&b, &in, why, sizeof(why)) == 0);   /* payload pending */
    raw_write(&a, "\0\0", 2);
    CHECK(handoff_channel_read(&b) > 0);
    CHECK(handoff_channel_next(&b, &in, why, sizeof(why)) == -1);
    CHECK_WHY(why, "LISTENER message declares 1 descriptor but only 0 arrived");
    handoff_channel_close(&a);
    handoff_channel_close(&b);
}

/* A newer peer's message (a type this binary does not know, flags, a
 * payload, descriptors) is consumed whole: its descriptors are handed to
 * it and closed with it, and the messages after it arrive intact. */
static void test_unknown_type(void)
{
    struct handoff_channel a, b;
    struct handoff_msg m;
    struct handoff_in in;
    struct handoff_hello hg, h = { .pid = 42, .version = "after" };
    char why[256] = "";
    int p[2], fds_before, r;

    CHECK(open_pair(&a, &b) == 0);
    CHECK(handoff_transport_pair(p) == 0);
    fds_before = tc_count_handles();
    for (uint16_t flags = 0; flags <= HANDOFF_HDR_MUST_UNDERSTAND; flags++) {
        CHECK(handoff_msg_init(&m, 0x7e57, a.seq++) == 0);
        handoff_msg_set_flags(&m, flags);
        handoff_msg_put_str(&m, "from a newer release");
        handoff_msg_put_bytes(&m, "0123456789", 10);
        handoff_msg_add_fd(&m, p[0]);
        handoff_msg_add_fd(&m, p[1]);
        CHECK(handoff_msg_finish(&m) == 0);
        CHECK(handoff_channel_send(&a, &m) == 0);
        handoff_msg_free(&m);
    }
    CHECK(handoff_encode_hello(&m, a.seq++, &h) == 0);
    CHECK(handoff_channel_send(&a, &m) == 0);
    handoff_msg_free(&m);
    for (uint16_t flags = 0; flags <= HANDOFF_HDR_MUST_UNDERSTAND; flags++) {
        r = pump_next(&a, &b, &in, why, sizeof(why));
        CHECK(r == 1);
        if (r != 1) {
            fprintf(stderr, "    %s\n", why);
            break;
        }
        CHECK_U64(in.hdr.type, 0x7e57);
        CHECK_U64(in.hdr.flags, flags);
        CHECK_U64(in.hdr.len, 2 + 20 + 4 + 10);
        CHECK_U64(in.nfds, 2);
        CHECK(same_pipe(in.fds[1], in.fds[0]));
        handoff_in_free(&in);
    }
    CHECK(pump_next(&a, &b, &in, why, sizeof(why)) == 1);
    CHECK(handoff_decode_hello(&in, &hg, why, sizeof(why)) == 0);
    CHECK_U64(hg.pid, 42);
    CHECK_STR(hg.version, "after");
    handoff_in_free(&in);
    CHECK_U64(b.nfdq, 0);
    CHECK_U64(tc_count_handles(), fds_before);
    handoff_transport_close(p[0]);
    handoff_transport_close(p[1]);
    handoff_channel_close(&a);
    handoff_channel_close(&b);
}

static void test_eof_truncated(void)
{
    struct handoff_channel a, b;
    struct handoff_msg m;
    struct handoff_in in;
    struct handoff_hello hello = { .pid = 5, .version = "v" };
    char why[256] = "";

    /* Clean EOF: the pending message is still delivered, then EOF. */
    CHECK(open_pair(&a, &b) == 0);
    CHECK(handoff_encode_hello(&m, 1, &hello) == 0);
    CHECK(handoff_channel_send_sync(&a, &m, 1000, why, sizeof(why)) == 0);
    handoff_msg_free(&m);
    handoff_channel_close(&a);
    CHECK(handoff_channel_recv_sync(&b, &in, 1000, why, sizeof(why)) == 1);
    CHECK_U64(in.hdr.type, HANDOFF_HELLO);
    handoff_in_free(&in);
    CHECK(handoff_channel_read(&b) == 0);
    CHECK(b.eof);
    CHECK(handoff_channel_next(&b, &in, why, sizeof(why)) == 0);
    CHECK(handoff_channel_recv_sync(&b, &in, 1000, why, sizeof(why)) == -1);
    CHECK_WHY(why, "peer closed the channel");
    handoff_channel_close(&b);

    /* Header only, then close. */
    CHECK(open_pair(&a, &b) == 0);
    CHECK(handoff_encode_hello(&m, 1, &hello) == 0);
    raw_write(&a, m.buf, HANDOFF_HDR_LEN);
    handoff_msg_free(&m);
    CHECK(handoff_channel_read(&b) == HANDOFF_HDR_LEN);
    CHECK(handoff_channel_next(&b, &in, why, sizeof(why)) == 0);
    handoff_channel_close(&a);
    CHECK(handoff_channel_read(&b) == 0);
    CHECK(handoff_channel_next(&b, &in, why, sizeof(why)) == -1);
    CHECK_WHY(why, "peer closed the channel inside a HELLO message (16 of 23 bytes)");
    handoff_channel_close(&b);

    /* Half a header, then close; recv_sync reports it too. */
    CHECK(open_pair(&a, &b) == 0);
    CHECK(handoff_encode_hello(&m, 1, &hello) == 0);
    raw_write(&a, m.buf, 5);
    handoff_msg_free(&m);
    handoff_channel_close(&a);
    CHECK(handoff_channel_recv_sync(&b, &in, 1000, why, sizeof(why)) == -1);
    CHECK_WHY(why, "inside a message header (5 of 16 bytes)");
    handoff_channel_close(&b);

    /* Writing to a closed peer fails with EPIPE, without SIGPIPE (over TCP,
     * once the peer's reset came back: the first write may still go). */
    CHECK(open_pair(&a, &b) == 0);
    handoff_channel_close(&b);
    CHECK(handoff_encode_hello(&m, 1, &hello) == 0);
    errno = 0;
    for (int i = 0; i < 50; i++) {
        CHECK(handoff_channel_send(&a, &m) == 0);
        if (handoff_channel_flush(&a) == -1)
            break;
        (void)handoff_transport_wait(a.fd, 0, 100);
    }
    handoff_msg_free(&m);
    CHECK(errno == EPIPE);
    handoff_channel_close(&a);
}

static void test_sync(void)
{
    struct handoff_channel a, b;
    struct handoff_msg m;
    struct handoff_in in;
    struct handoff_failed f = { "nope" }, g;
    char why[256] = "";

    CHECK(open_pair(&a, &b) == 0);
    CHECK(handoff_encode_failed(&m, 3, &f) == 0);
    CHECK(handoff_channel_send_sync(&a, &m, 1000, why, sizeof(why)) == 0);
    handoff_msg_free(&m);
    CHECK(handoff_channel_recv_sync(&b, &in, 1000, why, sizeof(why)) == 1);
    CHECK(handoff_decode_failed(&in, &g, why, sizeof(why)) == 0);
    CHECK_STR(g.reason, "nope");
    handoff_in_free(&in);

    /* Nothing to receive: times out. */
    why[0] = '\0';
    CHECK(handoff_channel_recv_sync(&b, &in, 50, why, sizeof(why)) == -1);
    CHECK_WHY(why, "timed out after 50 ms");

    /* A message that cannot be sent before the peer reads: times out. */
    {
        uint8_t *text = pattern(HANDOFF_MAX_PAYLOAD - 100, 3);
        struct handoff_config c;

        memset(&c, 0, sizeof(c));
        c.text = text;
        c.textlen = HANDOFF_MAX_PAYLOAD - 100;
        CHECK(handoff_encode_config(&m, 4, &c) == 0);
        /* More than any socket buffer holds (TCP's grow to megabytes). */
        for (int i = 0; i < 8; i++)
            CHECK(handoff_channel_send(&a, &m) == 0);
        why[0] = '\0';
        CHECK(handoff_channel_send_sync(&a, &m, 50, why, sizeof(why)) == -1);
        CHECK_WHY(why, "timed out after 50 ms sending");
        handoff_msg_free(&m);
        free(text);
    }

    /* Unfinished messages are refused. */
    CHECK(handoff_msg_init(&m, HANDOFF_HELLO, 1) == 0);
    handoff_msg_put_u32(&m, 1);
    CHECK(handoff_channel_send(&a, &m) == -1);
    handoff_msg_free(&m);
    handoff_channel_close(&a);
    handoff_channel_close(&b);
}

static void test_queue_bound(void)
{
    struct handoff_channel a, b;
    struct handoff_msg m;
    uint8_t *blob = calloc(1, HANDOFF_MAX_PAYLOAD - 4);
    unsigned i, queued = 0;

    CHECK(open_pair(&a, &b) == 0);
    CHECK(handoff_msg_init(&m, HANDOFF_CONN, 1) == 0);
    handoff_msg_put_bytes(&m, blob, HANDOFF_MAX_PAYLOAD - 4);
    CHECK(handoff_msg_finish(&m) == 0);
    for (i = 0; i < 40; i++) {
        if (handoff_channel_send(&a, &m) == -1)
            break;
        queued++;
    }
    /* 64 MiB holds 31 messages of 2 MiB plus header. */
    CHECK_U64(queued, 31);
    CHECK(errno == ENOBUFS);
    CHECK(a.out_bytes <= (size_t)64 << 20);
    handoff_msg_free(&m);
    free(blob);
    handoff_channel_close(&a);
    handoff_channel_close(&b);
}

/* A relaying CONN carrying client and server (here: two ends of a socket pair). */
static int conn_queue(struct handoff_channel *a, unsigned id, int client_fd, int server_fd,
                      int lend)
{
    static struct handoff_conn v;
    struct handoff_msg m;
    int r;

    memset(&v, 0, sizeof(v));
    v.id = id;
    v.phase = HANDOFF_PHASE_RELAYING;
    v.peerlen = 16;
    v.peer[0] = 2;
    snprintf(v.listener, sizeof(v.listener), "web");
    v.client_fd = client_fd;
    v.server_fd = server_fd;
    if (handoff_encode_conn(&m, a->seq++, &v) != 0)
        return -1;
    r = lend ? handoff_channel_send_lent(a, &m) : handoff_channel_send(a, &m);
    handoff_msg_free(&m);
    return r;
}

int tc_queue_conn(struct handoff_channel *a, unsigned id, int client_fd, int server_fd)
{
    return conn_queue(a, id, client_fd, server_fd, 1);
}

int tc_send_conn(struct handoff_channel *a, unsigned id, int client_fd, int server_fd)
{
    int r = conn_queue(a, id, client_fd, server_fd, 0);

    if (r == 0 && handoff_channel_flush(a) != 1)
        r = -1;   /* a small message leaves in one write */
    return r;
}

/* Reads b (and flushes what it queued) until a has no handle awaiting an
 * acknowledgement; 0, or -1 after 5 s. */
static int settle_acks(struct handoff_channel *a, struct handoff_channel *b)
{
    struct handoff_in in;
    char why[256];

    for (int i = 0; i < 500 && a->nheld > 0; i++) {
        while (handoff_channel_next(b, &in, why, sizeof(why)) == 1)
            handoff_in_free(&in);
        if (handoff_channel_flush(b) == -1 || handoff_channel_flush(a) == -1)
            return -1;
        (void)handoff_transport_wait(a->fd, 0, 10);
        (void)handoff_channel_read(a);
        (void)handoff_channel_read(b);
        if (handoff_channel_next(a, &in, why, sizeof(why)) == 1) {
            handoff_in_free(&in);
            return -1;   /* nothing but HANDLE_ACK goes from b to a here */
        }
    }
    return a->nheld == 0 ? 0 : -1;
}

/*
 * The handoff order, in one process: the caller closes its own handle as
 * soon as the message is queued (as the master does with a link's ends);
 * the channel's duplicate stays open after the send until the peer's
 * channel acknowledges, which it does when it hands the message to its
 * reader; then it is closed.  Acknowledgements of several messages add up
 * into one HANDLE_ACK; a peer without the capability gets no flag (and the
 * duplicates close once sent); an acknowledgement of more than was given
 * is refused.
 */
static void test_acks(void)
{
    struct handoff_channel a, b;
    struct handoff_listener v = { "l", "127.0.0.1:0", -1 }, got;
    struct handoff_msg m;
    struct handoff_in in;
    char why[256] = "";
    int p[3][2], before, held;

    CHECK(open_pair(&a, &b) == 0);
    CHECK(socket_pairs(p, 3) == 0);
    handoff_channel_set_peer_caps(&a, HANDOFF_CAPS_OURS);
    before = tc_count_handles();
    for (int i = 0; i < 3; i++) {
        v.fd = p[i][0];
        CHECK(handoff_encode_listener(&m, a.seq++, &v) == 0);
        CHECK(handoff_channel_send(&a, &m) == 0);
        handoff_msg_free(&m);
        handoff_transport_close(p[i][0]);
    }
    CHECK(handoff_channel_flush(&a) == 1);
    /* Sent, and still held: three duplicates are open, nothing else. */
    CHECK_U64(a.nheld, 3);
    CHECK_U64(tc_count_handles(), before);
    held = a.held_head != NULL ? a.held_head->fds[0] : -1;
    CHECK(held >= 0 && tc_is_open_socket(held));
    CHECK(!handoff_channel_pending(&a));   /* nothing queued, only held */

    /* b takes two: one HANDLE_ACK for both, queued, not sent yet. */
    for (int i = 0; i < 2; i++) {
        CHECK(pump_next(&a, &b, &in, why, sizeof(why)) == 1);
        CHECK(in.hdr.flags & HANDOFF_HDR_ACK_HANDLES);
        CHECK(handoff_decode_listener(&in, &got, why, sizeof(why)) == 0);
        CHECK(same_pipe(p[i][1], got.fd));
        handoff_transport_close(got.fd);
        handoff_in_free(&in);
    }
    CHECK(b.out_head != NULL && b.out_head == b.out_tail);
    CHECK_U64(a.nheld, 3);
    CHECK(handoff_channel_flush(&b) == 1);
    for (int i = 0; i < 100 && a.nheld == 3; i++) {
        CHECK(handoff_transport_wait(a.fd, 0, 2000) == 1);
        CHECK(handoff_channel_read(&a) > 0);
        CHECK(handoff_channel_next(&a, &in, why, sizeof(why)) == 0);
    }
    /* The two acknowledged are closed, in order; the third still held (and
     * maybe received already: Windows reads several records at once). */
    CHECK_U64(a.nheld, 1);
    CHECK_U64(tc_count_handles(), before - 2 + (int)b.nfdq);
    CHECK(settle_acks(&a, &b) == 0);
    CHECK_U64(tc_count_handles(), before - 3);

    /* A peer that does not acknowledge: no flag, closed once sent. */
    handoff_channel_set_peer_caps(&a, HANDOFF_CAPS_OURS & ~HANDOFF_CAP_HANDLE_ACK);
    v.fd = p[0][1];
    CHECK(handoff_encode_listener(&m, a.seq++, &v) == 0);
    CHECK(handoff_channel_send(&a, &m) == 0);
    handoff_msg_free(&m);
    CHECK(handoff_channel_flush(&a) == 1);
    CHECK_U64(a.nheld, 0);
    CHECK_U64(tc_count_handles(), before - 3);
    CHECK(pump_next(&a, &b, &in, why, sizeof(why)) == 1);
    CHECK(!(in.hdr.flags & HANDOFF_HDR_ACK_HANDLES));
    handoff_in_free(&in);
    CHECK(b.out_head == NULL);

    /* An acknowledgement of more than is held (answers to what a master
     * held before it re-executed itself) is taken and changes nothing; one
     * of nothing is malformed. */
    {
        struct handoff_handle_ack ack = { 5 };
        static const uint8_t zero[HANDOFF_HDR_LEN + 4] = {
            0xba, 0x70, HANDOFF_WIRE_VERSION, 0, 0, HANDOFF_HANDLE_ACK, 0, 0,
            0, 0, 0, 1, 0, 0, 0, 4 };

        CHECK(handoff_encode_handle_ack(&m, 9, &ack) == 0);
        CHECK(handoff_channel_send(&b, &m) == 0);
        handoff_msg_free(&m);
        CHECK(handoff_encode_empty(&m, HANDOFF_READY, 10) == 0);
        CHECK(handoff_channel_send(&b, &m) == 0);
        handoff_msg_free(&m);
        CHECK(pump_next(&b, &a, &in, why, sizeof(why)) == 1);
        CHECK_U64(in.hdr.type, HANDOFF_READY);
        handoff_in_free(&in);
        CHECK_U64(a.nheld, 0);
        raw_write(&b, zero, sizeof(zero));
        CHECK(pump_next(&b, &a, &in, why, sizeof(why)) == -1);
        CHECK_WHY(why, "acknowledges no message");
    }
    for (int i = 0; i < 3; i++)
        handoff_transport_close(p[i][1]);
    handoff_channel_close(&a);
    handoff_channel_close(&b);
}

/* ---- across two processes ------------------------------------------------ */

#define CHILD_TIMEOUT_MS 20000
#define QUEUED_LEN       1000     /* bytes the backlogged client sent */
#define LIVE_LEN         32768    /* bytes the live connection holds unread */

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* Reads n bytes from s and answers with their hash (8 bytes). */
static int child_echo_hash(int s, size_t n)
{
    uint8_t *buf = malloc(n), out[8];
    uint64_t h;
    int r = -1;

    if (buf != NULL && tc_recv_all(s, buf, n) == 0) {
        h = fnv(buf, n);
        for (int i = 0; i < 8; i++)
            out[i] = (uint8_t)(h >> (56 - 8 * i));
        r = tc_send_all(s, out, 8);
    }
    free(buf);
    return r;
}

static int expect_hash(int s, const uint8_t *sent, size_t n)
{
    uint8_t in[8];
    uint64_t h = fnv(sent, n), got = 0;

    if (tc_recv_all(s, in, 8) != 0)
        return 0;
    for (int i = 0; i < 8; i++)
        got = got << 8 | in[i];
    return got == h;
}

/*
 * The child: takes the listener and the live connection, which its channel
 * acknowledges; once the parent says it closed its own handles (START),
 * serves the client waiting in the backlog, the live connection's unread
 * bytes, and a client that connects after the handoff.  Exit code: 0, or
 * the step that failed.
 */
static int child_fail(int step, const char *why)
{
    fprintf(stderr, "test_channel child: step %d failed: %s\n", step, why);
    fflush(stderr);
    return step;
}

static int child_main(int channel)
{
    struct handoff_channel ch;
    struct handoff_listener l, live;
    struct handoff_in in;
    struct handoff_msg m;
    char why[256] = "";
    int a, d;

    if (handoff_channel_init(&ch, channel, 0) != 0)
        return child_fail(10, strerror(errno));
    if (handoff_channel_recv_sync(&ch, &in, CHILD_TIMEOUT_MS, why, sizeof(why)) != 1 ||
        handoff_decode_listener(&in, &l, why, sizeof(why)) != 0)
        return child_fail(11, why);
    handoff_in_free(&in);
    if (handoff_channel_recv_sync(&ch, &in, CHILD_TIMEOUT_MS, why, sizeof(why)) != 1 ||
        handoff_decode_listener(&in, &live, why, sizeof(why)) != 0)
        return child_fail(12, why);
    handoff_in_free(&in);
    /* Both taken: the acknowledgement goes (recv_sync sends what is queued
     * while it waits; the parent sends START only once it has it). */
    if (handoff_channel_recv_sync(&ch, &in, CHILD_TIMEOUT_MS, why, sizeof(why)) != 1 ||
        in.hdr.type != HANDOFF_START)
        return child_fail(13, why);
    handoff_in_free(&in);
    if (tc_blocking(l.fd) != 0 || tc_blocking(live.fd) != 0)
        return child_fail(14, "cannot make the sockets blocking");
    if ((a = tc_accept(l.fd)) < 0 || tc_blocking(a) != 0 || child_echo_hash(a, QUEUED_LEN) != 0)
        return child_fail(15, "the client waiting in the backlog");
    if (child_echo_hash(live.fd, LIVE_LEN) != 0)
        return child_fail(16, "the live connection");
    if ((d = tc_accept(l.fd)) < 0 || tc_blocking(d) != 0 || child_echo_hash(d, 5) != 0)
        return child_fail(17, "a client after the handoff");
    if (handoff_encode_empty(&m, HANDOFF_READY, ch.seq++) != 0 ||
        handoff_channel_send_sync(&ch, &m, CHILD_TIMEOUT_MS, why, sizeof(why)) != 0)
        return child_fail(18, why);
    handoff_msg_free(&m);
    handoff_transport_close(a);
    handoff_transport_close(d);
    handoff_transport_close(l.fd);
    handoff_transport_close(live.fd);
    handoff_channel_close(&ch);
    return 0;
}

static int send_listener(struct handoff_channel *a, const char *name, int fd)
{
    struct handoff_listener v = { "", "127.0.0.1:0", fd };
    struct handoff_msg m;
    int r;

    snprintf(v.name, sizeof(v.name), "%s", name);
    if (handoff_encode_listener(&m, a->seq++, &v) != 0)
        return -1;
    r = handoff_channel_send(a, &m);
    handoff_msg_free(&m);
    return r;
}

/* Flushes a until its queue is empty; 0 or -1 (5 s at most). */
static int flush_all(struct handoff_channel *a)
{
    int r;

    for (int i = 0; i < 500; i++) {
        if ((r = handoff_channel_flush(a)) != 0)
            return r == 1 ? 0 : -1;
        (void)handoff_transport_wait(a->fd, 1, 10);
    }
    return -1;
}

/*
 * The handoff order across processes.  The parent gives a child a listener
 * with a client waiting in its backlog and a live connection whose client
 * sent bytes nobody read yet, and closes its own handles at once; the
 * channel's duplicates stay open until the child's HANDLE_ACK, and only
 * then close.  After that the child serves the waiting client, the unread
 * bytes and a new client (bytes checked by hash): closing after the
 * acknowledgement cut nothing.
 */
static void test_child_handoff(const char *argv0)
{
    struct handoff_channel a;
    struct handoff_in in;
    struct tc_child child;
    uint8_t *queued = pattern(QUEUED_LEN, 7), *live = pattern(LIVE_LEN, 8);
    char why[256] = "";
    unsigned port;
    int ch[2], l, cl_live, srv_live, cl_queued, cl_new, before, r;

    CHECK(handoff_transport_pair(ch) == 0);
    CHECK(tc_spawn_child(argv0, ch[1], &child) == 0);
    handoff_transport_close(ch[1]);
    CHECK(handoff_channel_init(&a, ch[0], child.pid) == 0);
    handoff_channel_set_peer_caps(&a, HANDOFF_CAPS_OURS);

    CHECK((l = tc_listen(&port)) >= 0);
    /* The live one: accepted here, its bytes left unread. */
    CHECK((cl_live = tc_connect(port)) >= 0);
    CHECK((srv_live = tc_accept(l)) >= 0);
    CHECK(tc_send_all(cl_live, live, LIVE_LEN) == 0);
    /* The waiting one: in the backlog, with its bytes. */
    CHECK((cl_queued = tc_connect(port)) >= 0);
    CHECK(tc_send_all(cl_queued, queued, QUEUED_LEN) == 0);
    CHECK(handoff_transport_wait(l, 0, 2000) == 1);
    CHECK(handoff_transport_wait(srv_live, 0, 2000) == 1);

    before = tc_count_handles();
    CHECK(send_listener(&a, "listener", l) == 0);
    CHECK(send_listener(&a, "live", srv_live) == 0);
    /* Ours go at once: the channel's duplicates are what keeps them. */
    handoff_transport_close(l);
    handoff_transport_close(srv_live);
    CHECK(flush_all(&a) == 0);
    CHECK_U64(a.nheld, 2);
    CHECK_U64(tc_count_handles(), before);
    for (struct handoff_held *h = a.held_head; h != NULL; h = h->next)
        CHECK(tc_is_open_socket(h->fds[0]));

    /* The child's acknowledgement closes them. */
    for (int i = 0; i < 2000 && a.nheld > 0; i++) {
        if (handoff_transport_wait(a.fd, 0, 10) != 1)
            continue;
        if (handoff_channel_read(&a) == 0)
            break;
        r = handoff_channel_next(&a, &in, why, sizeof(why));
        CHECK(r == 0);
        if (r != 0)
            break;
    }
    CHECK_U64(a.nheld, 0);
    CHECK_U64(tc_count_handles(), before - 2);

    /* Now the child serves; nothing of ours is left open. */
    {
        struct handoff_msg m;

        CHECK(handoff_encode_empty(&m, HANDOFF_START, a.seq++) == 0);
        CHECK(handoff_channel_send_sync(&a, &m, CHILD_TIMEOUT_MS, why, sizeof(why)) == 0);
        handoff_msg_free(&m);
    }
    CHECK(expect_hash(cl_queued, queued, QUEUED_LEN));
    CHECK(expect_hash(cl_live, live, LIVE_LEN));
    CHECK((cl_new = tc_connect(port)) >= 0);
    CHECK(tc_send_all(cl_new, "after", 5) == 0);
    CHECK(expect_hash(cl_new, (const uint8_t *)"after", 5));
    r = handoff_channel_recv_sync(&a, &in, CHILD_TIMEOUT_MS, why, sizeof(why));
    CHECK(r == 1 && in.hdr.type == HANDOFF_READY);
    if (r == 1)
        handoff_in_free(&in);
    else
        fprintf(stderr, "    %s\n", why);
    CHECK_U64(tc_wait_child(&child, CHILD_TIMEOUT_MS), 0);

    handoff_transport_close(cl_live);
    handoff_transport_close(cl_queued);
    handoff_transport_close(cl_new);
    handoff_channel_close(&a);
    free(queued);
    free(live);
}

int main(int argc, char **argv)
{
    int fds_before;

    if (tc_init() != 0) {
        fprintf(stderr, "test_channel: cannot set up sockets\n");
        return 1;
    }
    if (argc == 3 && strcmp(argv[1], "--child") == 0)
        return child_main(atoi(argv[2]));
    fds_before = tc_count_handles();
    test_fds_interleaved();
    test_large();
    test_many_small();
    test_batches();
    test_garbage();
    test_unknown_type();
    test_eof_truncated();
    test_sync();
    test_queue_bound();
    test_acks();
    test_child_handoff(argv[0]);
    tc_os_tests();

    CHECK(fds_before >= 0);   /* counted (Windows: sockets, none yet) */
    CHECK_U64(tc_count_handles(), fds_before);
    return test_summary("test_channel");
}
