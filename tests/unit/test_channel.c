/*
 * test_channel.c - the handoff channel over a real transport pair: messages
 * with and without descriptors, large messages through partial writes,
 * many messages per read, malformed and truncated streams, EOF, a receiver
 * out of descriptors, and no descriptor leaks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"
#include "conn_msg.h"
#include "message.h"
#include "testutil.h"
#include "transport.h"
#include "wire.h"


/* Two connected channels: a (say, the master) and b (the worker). */
static int open_pair(struct handoff_channel *a, struct handoff_channel *b)
{
    int sv[2];

    if (handoff_transport_pair(sv) == -1)
        return -1;
    if (handoff_channel_init(a, sv[0], 0) == -1 || handoff_channel_init(b, sv[1], 0) == -1) {
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    return 0;
}

/* Moves everything queued on `from` into `to` and takes the next message,
 * alternating flush and read so neither side's buffer has to hold it all. */
static int pump_next(struct handoff_channel *from, struct handoff_channel *to,
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
        if (n == 0 || (n == -2 && !handoff_channel_pending(from))) {
            snprintf(why, whylen, "stalled (n = %zd)", n);
            return -1;
        }
    }
    snprintf(why, whylen, "no progress");
    return -1;
}

/* Checks that fd a and fd b are two ends of one pipe (either way round). */
static int same_pipe(int wfd, int rfd)
{
    char c = 0;

    if (write(wfd, "q", 1) != 1)
        return 0;
    if (read(rfd, &c, 1) != 1)
        return 0;
    return c == 'q';
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
    for (i = 0; i < 4; i++)
        CHECK(pipe2(pipes[i], O_CLOEXEC) == 0);

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
        close(i % 2 == 0 ? pipes[i][0] : pipes[i][1]);

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
        CHECK(fcntl(l.fd, F_GETFD) == FD_CLOEXEC);
        if (i % 2 == 0)
            CHECK(same_pipe(pipes[i][1], l.fd));
        else
            CHECK(same_pipe(l.fd, pipes[i][0]));
        close(l.fd);
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
        close(i % 2 == 0 ? pipes[i][1] : pipes[i][0]);
    handoff_channel_close(&a);
    handoff_channel_close(&b);
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
    CHECK(pipe2(p, O_CLOEXEC) == 0);

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

    /* The socket buffer cannot take it all: the first flush must stop. */
    CHECK(handoff_channel_flush(&a) == 0);
    CHECK(handoff_channel_pending(&a));
    n = handoff_channel_read(&b);
    CHECK(n > 0 && (size_t)n < len);
    CHECK(handoff_channel_next(&b, &in, why, sizeof(why)) == 0);

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

    close(p[0]);
    close(p[1]);
    free(text);
    free(blob);
    handoff_channel_close(&a);
    handoff_channel_close(&b);
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
    CHECK(write(a.fd, all, off) == (ssize_t)off);
    CHECK_U64(handoff_channel_read(&b), off);
    CHECK_U64(drain_status_reqs(&b, &ordered), big);
    CHECK(ordered);
    CHECK_U64(b.rlen, 0);
    free(all);
    handoff_channel_close(&a);
    handoff_channel_close(&b);
}

/* Writes raw bytes into a's socket, bypassing the channel. */
static void raw_write(struct handoff_channel *a, const void *p, size_t n)
{
    CHECK(write(a->fd, p, n) == (ssize_t)n);
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
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    fds_before = test_count_fds();
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
    CHECK_U64(test_count_fds(), fds_before);
    close(p[0]);
    close(p[1]);
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

    /* Writing to a closed peer fails with EPIPE, without SIGPIPE. */
    CHECK(open_pair(&a, &b) == 0);
    handoff_channel_close(&b);
    CHECK(handoff_encode_hello(&m, 1, &hello) == 0);
    CHECK(handoff_channel_send(&a, &m) == 0);
    handoff_msg_free(&m);
    errno = 0;
    CHECK(handoff_channel_flush(&a) == -1);
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

/* The transport refuses descriptors the caller has no room for and closes
 * them rather than leaking them. */
static void test_transport_fd_limit(void)
{
    int sv[2], fds[8], got[8], p[2], before;
    unsigned ngot = 0;
    char buf[16];

    CHECK(handoff_transport_pair(sv) == 0);
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    fds[0] = p[0], fds[1] = p[1], fds[2] = p[0];
    before = test_count_fds();
    CHECK(handoff_transport_send(sv[0], 0, "abc", 3, fds, NULL, 3) == 3);
    CHECK(handoff_transport_recv(sv[1], buf, sizeof(buf), got, &ngot, 2) == -1);
    CHECK(errno == EMSGSIZE);
    CHECK_U64(ngot, 0);
    CHECK_U64(test_count_fds(), before);

    /* Data without descriptors is fine; descriptors without data are refused. */
    CHECK(handoff_transport_send(sv[0], 0, "d", 1, NULL, NULL, 0) == 1);
    CHECK(handoff_transport_recv(sv[1], buf, sizeof(buf), got, &ngot, 2) == 1);
    CHECK(handoff_transport_send(sv[0], 0, "", 0, fds, NULL, 1) == -1 && errno == EINVAL);
    CHECK(handoff_transport_recv(sv[1], buf, sizeof(buf), got, &ngot, 2) == -1);
    CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
    CHECK(handoff_transport_wait(sv[1], 0, 10) == 0);
    CHECK(handoff_transport_wait(sv[0], 1, 10) == 1);
    close(p[0]);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
}

/* A relaying CONN carrying client and server (here: the two ends of a pipe). */
static int send_conn(struct handoff_channel *a, uint32_t id, int client_fd, int server_fd)
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
    r = handoff_channel_send(a, &m);
    handoff_msg_free(&m);
    if (r == 0 && handoff_channel_flush(a) != 1)
        r = -1;   /* a small message leaves in one write */
    return r;
}

/* The descriptor the next open would get: every one below it is in use. */
static int lowest_free_fd(void)
{
    int fd = fcntl(0, F_DUPFD, 0);

    if (fd >= 0)
        close(fd);
    return fd;
}

/* Receives the next message on b while this process may hold no descriptor
 * numbered `limit` or above (lowest_free_fd(): no new one at all), then
 * lifts the limit again. */
static int next_with_fd_limit(struct handoff_channel *a, struct handoff_channel *b,
                              rlim_t limit, struct handoff_in *in, char *why, size_t whylen)
{
    struct rlimit saved, low;
    int r;

    if (getrlimit(RLIMIT_NOFILE, &saved) != 0)
        return -1;
    low = saved;
    low.rlim_cur = limit;
    if (setrlimit(RLIMIT_NOFILE, &low) != 0)
        return -1;
    r = pump_next(a, b, in, why, whylen);
    if (setrlimit(RLIMIT_NOFILE, &saved) != 0)
        return -1;
    return r;
}

/*
 * A receiver out of descriptors (EMFILE inside recvmsg: the kernel drops
 * what it cannot install and says MSG_CTRUNC) gets the message without its
 * descriptors, marked fds_lost, and its decoder refuses that one
 * connection; the next message still gets its own descriptors.
 */
static void test_fds_lost(void)
{
    struct handoff_channel a, b;
    struct handoff_conn v;
    struct handoff_in in;
    char why[256] = "";
    int p1[2], p2[2], p3[2], before, r, lim;

    CHECK(open_pair(&a, &b) == 0);
    CHECK(pipe2(p1, O_CLOEXEC) == 0 && pipe2(p2, O_CLOEXEC) == 0 && pipe2(p3, O_CLOEXEC) == 0);
    before = test_count_fds();

    /* No descriptor can be installed: none arrives. */
    CHECK(send_conn(&a, 1, p1[0], p1[1]) == 0);
    lim = lowest_free_fd();
    CHECK(lim > 0);
    r = next_with_fd_limit(&a, &b, (rlim_t)lim, &in, why, sizeof(why));
    CHECK(r == 1);
    if (r != 1)
        fprintf(stderr, "    %s\n", why);
    CHECK_U64(in.hdr.type, HANDOFF_CONN);
    CHECK(in.fds_lost);
    CHECK_U64(in.nfds, 2);
    CHECK(in.fds[0] == -1 && in.fds[1] == -1);
    CHECK_U64(b.nfdq, 0);
    CHECK_U64(test_count_fds(), before);
    CHECK(handoff_decode_conn(&in, &v, why, sizeof(why)) == -1);
    CHECK_WHY(why, "CONN: its sockets did not arrive (out of file descriptors)");
    CHECK(v.client_fd == -1 && v.server_fd == -1);
    handoff_in_free(&in);

    /* Room for one of the two: the one installed is closed, not paired
     * with a later message. */
    CHECK(send_conn(&a, 2, p2[0], p2[1]) == 0);
    lim = lowest_free_fd();
    r = next_with_fd_limit(&a, &b, (rlim_t)lim + 1, &in, why, sizeof(why));
    CHECK(r == 1);
    CHECK(in.fds_lost && in.fds[0] == -1 && in.fds[1] == -1);
    CHECK_U64(b.nfdq, 0);
    CHECK_U64(test_count_fds(), before);
    handoff_in_free(&in);

    /* The limit lifted, the next message has its own descriptors. */
    CHECK(send_conn(&a, 3, p3[0], p3[1]) == 0);
    r = pump_next(&a, &b, &in, why, sizeof(why));
    CHECK(r == 1);
    CHECK(!in.fds_lost);
    CHECK(handoff_decode_conn(&in, &v, why, sizeof(why)) == 0);
    CHECK_U64(v.id, 3);
    CHECK(v.client_fd >= 0 && v.server_fd >= 0);
    if (v.client_fd >= 0 && v.server_fd >= 0) {
        CHECK(same_pipe(p3[1], v.client_fd));
        CHECK(same_pipe(v.server_fd, p3[0]));
        close(v.client_fd);
        close(v.server_fd);
    }
    handoff_in_free(&in);
    CHECK_U64(b.nfdq, 0);
    CHECK_U64(test_count_fds(), before);

    for (int i = 0; i < 2; i++) {
        close(p1[i]);
        close(p2[i]);
        close(p3[i]);
    }
    handoff_channel_close(&a);
    handoff_channel_close(&b);
}

int main(int argc, char **argv)
{
    int fds_before = test_count_fds();

    test_fds_interleaved();
    test_large();
    test_many_small();
    test_garbage();
    test_unknown_type();
    test_eof_truncated();
    test_sync();
    test_queue_bound();
    test_transport_fd_limit();
    test_fds_lost();

    CHECK(fds_before > 0);
    CHECK_U64(test_count_fds(), fds_before);
    return test_summary("test_channel");
}
