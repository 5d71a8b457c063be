/*
 * test_wire.c - handoff wire format: header, builder, getters and every
 * typed message, including hostile input (truncation, trailing bytes,
 * oversized fields, random garbage, wrong descriptor counts).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "port_net.h"

#include "codec.h"
#include "conn_msg.h"
#include "message.h"
#include "testutil.h"
#include "wire.h"

static int devnull(void)
{
    return test_null_fd();
}

/* Turns a built message into a received one, as the channel would: the
 * payload is copied and the attached descriptors are dup'ed. */
static int to_in(const struct handoff_msg *m, struct handoff_in *in)
{
    char why[256];
    unsigned i;

    memset(in, 0, sizeof(*in));
    for (i = 0; i < HANDOFF_MAX_FDS; i++)
        in->fds[i] = -1;
    if (handoff_hdr_decode(m->buf, &in->hdr, why, sizeof(why)) == -1)
        return -1;
    if (in->hdr.len > 0) {
        in->payload = malloc(in->hdr.len);
        if (in->payload == NULL)
            return -1;
        memcpy(in->payload, m->buf + HANDOFF_HDR_LEN, in->hdr.len);
    }
    for (i = 0; i < m->nfds; i++)
        in->fds[in->nfds++] = test_dup_fd(m->fds[i]);
    return 0;
}

/* A received message with an arbitrary payload and nfds /dev/null fds. */
static void make_in(struct handoff_in *in, uint16_t type, const void *p, size_t len,
                    unsigned nfds)
{
    unsigned i;

    memset(in, 0, sizeof(*in));
    for (i = 0; i < HANDOFF_MAX_FDS; i++)
        in->fds[i] = -1;
    in->hdr.magic = HANDOFF_MAGIC;
    in->hdr.version = HANDOFF_WIRE_VERSION;
    in->hdr.type = type;
    in->hdr.len = (uint32_t)len;
    in->hdr.nfds = (uint8_t)nfds;
    if (len > 0) {
        in->payload = malloc(len);
        memcpy(in->payload, p, len);
    }
    for (i = 0; i < nfds; i++)
        in->fds[in->nfds++] = devnull();
}

/* Runs the decoder for in's type (or `type` if nonzero); 0 or -1. */
static int decode_any(struct handoff_in *in, uint16_t type, char *why, size_t n)
{
    struct handoff_status st = { 0 };
    struct handoff_server_state ss = { 0 };
    struct handoff_hello h;
    struct handoff_config c;
    struct handoff_listener l;
    struct handoff_failed f;
    struct handoff_status_req sr;
    static struct handoff_conn cn;
    static struct handoff_conn_ack ack;
    static struct handoff_conn_release rel;
    struct handoff_conn_done done;
    struct handoff_link lk;
    int r;

    switch (type != 0 ? type : in->hdr.type) {
    case HANDOFF_LINK:
        r = handoff_decode_link(in, &lk, why, n);
        if (r == 0)
            test_close_fd(lk.fd);
        else if (lk.fd != -1)
            return -2;
        return r;
    case HANDOFF_CONN:
        r = handoff_decode_conn(in, &cn, why, n);
        if (r == 0) {
            test_close_fd(cn.client_fd);
            if (cn.server_fd >= 0)
                test_close_fd(cn.server_fd);
        } else if (cn.client_fd != -1 || cn.server_fd != -1) {
            return -2;
        }
        return r;
    case HANDOFF_CONN_ACK:
        return handoff_decode_conn_ack(in, &ack, why, n);
    case HANDOFF_CONN_RELEASE:
        return handoff_decode_conn_release(in, &rel, why, n);
    case HANDOFF_CONN_DONE:
        return handoff_decode_conn_done(in, &done, why, n);
    case HANDOFF_HELLO:
        return handoff_decode_hello(in, &h, why, n);
    case HANDOFF_CONFIG:
        return handoff_decode_config(in, &c, why, n);
    case HANDOFF_LISTENER:
        r = handoff_decode_listener(in, &l, why, n);
        if (r == 0)
            test_close_fd(l.fd);
        else if (l.fd != -1)
            return -2;   /* a failed decode must not hand out an fd */
        return r;
    case HANDOFF_FAILED:
        return handoff_decode_failed(in, &f, why, n);
    case HANDOFF_STATUS_REQ:
        return handoff_decode_status_req(in, &sr, why, n);
    case HANDOFF_STATUS:
        r = handoff_decode_status(in, &st, HANDOFF_CAPS_OURS, why, n);
        handoff_status_free(&st);
        return r;
    case HANDOFF_SERVER_STATE:
        r = handoff_decode_server_state(in, &ss, HANDOFF_CAPS_OURS, why, n);
        handoff_server_state_free(&ss);
        return r;
    default:
        return handoff_decode_empty(in, why, n);
    }
}

static const uint16_t all_types[] = {
    HANDOFF_HELLO, HANDOFF_CONFIG, HANDOFF_LISTENER, HANDOFF_START, HANDOFF_READY,
    HANDOFF_FAILED, HANDOFF_STOP_ACCEPTING, HANDOFF_DRAIN, HANDOFF_STATUS_REQ,
    HANDOFF_STATUS, HANDOFF_RESUME_ACCEPTING, HANDOFF_SERVER_STATE,
    HANDOFF_LINK, HANDOFF_CONN, HANDOFF_CONN_ACK, HANDOFF_CONN_RELEASE, HANDOFF_CONN_DONE,
};
#define NTYPES (sizeof(all_types) / sizeof(all_types[0]))

static unsigned type_nfds(uint16_t type)
{
    /* build()'s CONN is a relaying one: client and server. */
    return type == HANDOFF_LISTENER || type == HANDOFF_LINK ? 1 : type == HANDOFF_CONN ? 2 : 0;
}

/* Types whose payload may end in extensions (codec.h): three stray bytes
 * after them read as a truncated extension header. */
static int type_has_exts(uint16_t type)
{
    return type == HANDOFF_HELLO || type == HANDOFF_STATUS || type == HANDOFF_LINK ||
           type == HANDOFF_CONN || type == HANDOFF_CONN_ACK || type == HANDOFF_CONN_RELEASE ||
           type == HANDOFF_CONN_DONE;
}

static int build_is_empty(uint16_t type)
{
    return type == HANDOFF_START || type == HANDOFF_READY ||
           type == HANDOFF_STOP_ACCEPTING || type == HANDOFF_DRAIN ||
           type == HANDOFF_RESUME_ACCEPTING;
}

/* Header */

static void valid_hdr(struct handoff_hdr *h)
{
    h->magic = HANDOFF_MAGIC;
    h->version = HANDOFF_WIRE_VERSION;
    h->nfds = 2;
    h->type = HANDOFF_STATUS;
    h->flags = 0;
    h->seq = 0x01020304;
    h->len = 0x00010203;
}

static void test_hdr_roundtrip(void)
{
    static const uint8_t want[HANDOFF_HDR_LEN] = {
        0xba, 0x70, 0x01, 0x02, 0x00, 0x0a, 0x00, 0x00,
        0x01, 0x02, 0x03, 0x04, 0x00, 0x01, 0x02, 0x03,
    };
    struct handoff_hdr h, g;
    uint8_t buf[HANDOFF_HDR_LEN];
    char why[256] = "";

    valid_hdr(&h);
    handoff_hdr_encode(&h, buf);
    CHECK(memcmp(buf, want, sizeof(buf)) == 0);
    CHECK(handoff_hdr_decode(buf, &g, why, sizeof(why)) == 0);
    CHECK(g.magic == h.magic && g.version == h.version && g.nfds == h.nfds &&
          g.type == h.type && g.flags == h.flags && g.seq == h.seq && g.len == h.len);

    /* Limits themselves are accepted. */
    h.nfds = HANDOFF_MAX_FDS;
    h.len = HANDOFF_MAX_PAYLOAD;
    h.type = HANDOFF_CONN_DONE;
    h.seq = 0xffffffffu;
    handoff_hdr_encode(&h, buf);
    CHECK(handoff_hdr_decode(buf, &g, why, sizeof(why)) == 0);
    CHECK_U64(g.seq, 0xffffffffu);
    CHECK_U64(g.len, HANDOFF_MAX_PAYLOAD);
}

static void check_hdr_rejected(const struct handoff_hdr *h, const char *sub)
{
    struct handoff_hdr g;
    uint8_t buf[HANDOFF_HDR_LEN];
    char why[256] = "";

    handoff_hdr_encode(h, buf);
    CHECK(handoff_hdr_decode(buf, &g, why, sizeof(why)) == -1);
    CHECK_WHY(why, sub);
}

static void test_hdr_reject(void)
{
    struct handoff_hdr h;

    valid_hdr(&h);
    h.magic = 0x1234;
    check_hdr_rejected(&h, "bad magic 0x1234 (expected 0xba70)");

    valid_hdr(&h);
    h.version = 2;
    check_hdr_rejected(&h, "version 2");
    h.version = 0;
    check_hdr_rejected(&h, "version 0");

    valid_hdr(&h);
    h.nfds = HANDOFF_MAX_FDS + 1;
    check_hdr_rejected(&h, "STATUS: 17 descriptors");
    h.nfds = 255;
    check_hdr_rejected(&h, "255 descriptors");

    valid_hdr(&h);
    h.len = HANDOFF_MAX_PAYLOAD + 1;
    check_hdr_rejected(&h, "payload of 2097153 bytes");
    h.len = 0xffffffffu;
    check_hdr_rejected(&h, "max 2097152");

    /* A type of a newer release is still bound by the framing limits, and
     * named by its number. */
    valid_hdr(&h);
    h.type = 0x7e57;
    h.nfds = HANDOFF_MAX_FDS + 1;
    check_hdr_rejected(&h, "message type 32343: 17 descriptors attached (max 16)");
    h.nfds = 0;
    h.len = HANDOFF_MAX_PAYLOAD + 1;
    check_hdr_rejected(&h, "message type 32343: payload of 2097153 bytes");
}

/* Types this binary does not know and any flags are valid framing: a newer
 * peer's message can be skipped (or refused when it must be understood). */
static void test_hdr_unknown(void)
{
    static const uint16_t unknown_types[] = { 0, 12, 15, 19, 31, 37, 0x100, 0x7e57, 0xffff };
    static const uint16_t all_flags[] = { HANDOFF_HDR_MUST_UNDERSTAND, 0x0002, 0x8000, 0xffff };
    struct handoff_hdr h, g;
    uint8_t buf[HANDOFF_HDR_LEN];
    char why[256];
    size_t i;

    for (i = 0; i < sizeof(unknown_types) / sizeof(unknown_types[0]); i++) {
        valid_hdr(&h);
        h.type = unknown_types[i];
        h.nfds = 3;
        handoff_hdr_encode(&h, buf);
        why[0] = '\0';
        CHECK(handoff_hdr_decode(buf, &g, why, sizeof(why)) == 0);
        CHECK_U64(g.type, unknown_types[i]);
        CHECK_U64(g.nfds, 3);
        CHECK_U64(g.len, h.len);
        CHECK(!handoff_type_known(g.type));
        CHECK_STR(handoff_type_name(g.type), "UNKNOWN");
    }
    for (i = 0; i < sizeof(all_flags) / sizeof(all_flags[0]); i++) {
        valid_hdr(&h);
        h.flags = all_flags[i];
        handoff_hdr_encode(&h, buf);
        CHECK(handoff_hdr_decode(buf, &g, why, sizeof(why)) == 0);
        CHECK_U64(g.flags, all_flags[i]);
        h.type = 0x7e58;
        handoff_hdr_encode(&h, buf);
        CHECK(handoff_hdr_decode(buf, &g, why, sizeof(why)) == 0);
        CHECK_U64(g.flags, all_flags[i]);
        CHECK_U64(g.type, 0x7e58);
    }
    for (i = HANDOFF_HELLO; i <= HANDOFF_RESUME_ACCEPTING; i++)
        CHECK(handoff_type_known((uint16_t)i));
    CHECK(handoff_type_known(HANDOFF_MASTER_STATE) && handoff_type_known(HANDOFF_SERVER_STATE));
    CHECK(handoff_type_known(HANDOFF_CONN) && handoff_type_known(HANDOFF_CONN_DONE));
}

/* The builder keeps the must-understand flag through finish, drops
 * reserved bits, and sends 0 unless asked. */
static void test_builder_flags(void)
{
    struct handoff_msg m;
    struct handoff_hdr h;
    char why[256];

    CHECK(handoff_msg_init(&m, 0x7e58, 9) == 0);
    handoff_msg_put_u32(&m, 1);
    CHECK(handoff_msg_finish(&m) == 0);
    CHECK(handoff_hdr_decode(m.buf, &h, why, sizeof(why)) == 0);
    CHECK_U64(h.flags, 0);
    handoff_msg_set_flags(&m, 0xffff);
    handoff_msg_put_u32(&m, 2);
    CHECK(handoff_msg_finish(&m) == 0);
    CHECK(handoff_hdr_decode(m.buf, &h, why, sizeof(why)) == 0);
    CHECK_U64(h.flags, HANDOFF_HDR_MUST_UNDERSTAND);
    CHECK_U64(h.type, 0x7e58);
    CHECK_U64(h.seq, 9);
    CHECK_U64(h.len, 8);
    handoff_msg_free(&m);
}

static void test_type_names(void)
{
    CHECK_STR(handoff_type_name(HANDOFF_HELLO), "HELLO");
    CHECK_STR(handoff_type_name(HANDOFF_STATUS_REQ), "STATUS_REQ");
    CHECK_STR(handoff_type_name(HANDOFF_RESUME_ACCEPTING), "RESUME_ACCEPTING");
    CHECK_STR(handoff_type_name(HANDOFF_CONN), "CONN");
    CHECK_STR(handoff_type_name(HANDOFF_CONN_DONE), "CONN_DONE");
    CHECK_STR(handoff_type_name(0), "UNKNOWN");
    CHECK_STR(handoff_type_name(20), "UNKNOWN");
    CHECK_STR(handoff_type_name(0xffff), "UNKNOWN");
}

/* Builder and getters */

static void test_builder_getters(void)
{
    static const uint8_t want[] = {
        0x7f,
        0xbe, 0xef,
        0xde, 0xad, 0xbe, 0xef,
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
        0x00, 0x00, 0x00, 0x03, 'a', 'b', 'c',
        0x00, 0x02, 'h', 'i',
        0x00, 0x00,
        0x00, 0x00, 0x00, 0x00,
    };
    struct handoff_reader r;
    struct handoff_msg m;
    struct handoff_hdr h;
    const uint8_t *p;
    char why[256], s[8];
    uint8_t u8;
    uint16_t u16;
    uint32_t u32, n;
    uint64_t u64;

    CHECK(handoff_msg_init(&m, HANDOFF_HELLO, 77) == 0);
    handoff_msg_put_u8(&m, 0x7f);
    handoff_msg_put_u16(&m, 0xbeef);
    handoff_msg_put_u32(&m, 0xdeadbeefu);
    handoff_msg_put_u64(&m, 0x0102030405060708ull);
    handoff_msg_put_bytes(&m, "abc", 3);
    handoff_msg_put_str(&m, "hi");
    handoff_msg_put_str(&m, "");
    handoff_msg_put_bytes(&m, NULL, 0);
    CHECK(handoff_msg_finish(&m) == 0);
    CHECK_U64(m.len, HANDOFF_HDR_LEN + sizeof(want));
    CHECK(memcmp(m.buf + HANDOFF_HDR_LEN, want, sizeof(want)) == 0);
    CHECK(handoff_hdr_decode(m.buf, &h, why, sizeof(why)) == 0);
    CHECK_U64(h.type, HANDOFF_HELLO);
    CHECK_U64(h.seq, 77);
    CHECK_U64(h.len, sizeof(want));
    CHECK_U64(h.nfds, 0);

    handoff_reader_init(&r, m.buf + HANDOFF_HDR_LEN, h.len);
    CHECK(handoff_get_u8(&r, &u8) == 0 && u8 == 0x7f);
    CHECK(handoff_get_u16(&r, &u16) == 0 && u16 == 0xbeef);
    CHECK(handoff_get_u32(&r, &u32) == 0 && u32 == 0xdeadbeefu);
    CHECK(handoff_get_u64(&r, &u64) == 0 && u64 == 0x0102030405060708ull);
    CHECK(handoff_get_bytes(&r, &p, &n, 16) == 0 && n == 3 && memcmp(p, "abc", 3) == 0);
    CHECK(handoff_reader_done(&r) == -1);   /* bytes left */
    CHECK(handoff_get_str(&r, s, sizeof(s)) == 0);
    CHECK_STR(s, "hi");
    CHECK(handoff_get_str(&r, s, sizeof(s)) == 0);
    CHECK_STR(s, "");
    CHECK(handoff_get_bytes(&r, &p, &n, 0) == 0 && n == 0);
    CHECK(handoff_reader_done(&r) == 0);
    /* Reading past the end fails and sticks. */
    CHECK(handoff_get_u8(&r, &u8) == -1);
    CHECK(r.failed);
    CHECK(handoff_reader_done(&r) == -1);
    handoff_msg_free(&m);

    /* Getter failures: each one marks the reader failed. */
    {
        static const uint8_t two[] = { 0x00, 0x05 };
        static const uint8_t nul[] = { 0x00, 0x03, 'a', 0, 'b' };
        static const uint8_t fits[] = { 0x00, 0x07, 'a', 'b', 'c', 'd', 'e', 'f', 'g' };
        static const uint8_t big[] = { 0x00, 0x00, 0x00, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 9 };

        handoff_reader_init(&r, two, sizeof(two));
        CHECK(handoff_get_u32(&r, &u32) == -1 && r.failed);
        CHECK(handoff_get_u8(&r, &u8) == -1);   /* sticky even though 2 bytes remain */

        handoff_reader_init(&r, two, sizeof(two));
        CHECK(handoff_get_str(&r, s, sizeof(s)) == -1 && r.failed);   /* truncated */

        handoff_reader_init(&r, nul, sizeof(nul));
        CHECK(handoff_get_str(&r, s, sizeof(s)) == -1 && r.failed);   /* embedded NUL */

        handoff_reader_init(&r, fits, sizeof(fits));
        CHECK(handoff_get_str(&r, s, sizeof(s)) == 0 && strcmp(s, "abcdefg") == 0);
        handoff_reader_init(&r, fits, sizeof(fits));
        CHECK(handoff_get_str(&r, s, 7) == -1 && r.failed);           /* no room for NUL */
        handoff_reader_init(&r, fits, sizeof(fits));
        CHECK(handoff_get_str(&r, s, 0) == -1);

        handoff_reader_init(&r, big, sizeof(big));
        CHECK(handoff_get_bytes(&r, &p, &n, 8) == -1 && r.failed && p == NULL && n == 0);
        handoff_reader_init(&r, big, sizeof(big));
        CHECK(handoff_get_bytes(&r, &p, &n, 9) == 0 && n == 9);
        handoff_reader_init(&r, big, sizeof(big) - 1);
        CHECK(handoff_get_bytes(&r, &p, &n, 100) == -1 && r.failed);

        handoff_reader_init(&r, NULL, 0);
        CHECK(handoff_reader_done(&r) == 0);
        CHECK(handoff_get_u8(&r, &u8) == -1);
    }

    /* A string over HANDOFF_STR_MAX is refused even with a large buffer. */
    {
        size_t len = HANDOFF_STR_MAX + 1;
        uint8_t *raw = malloc(len + 2);
        char *big = malloc(len + 1);

        raw[0] = (uint8_t)(len >> 8);
        raw[1] = (uint8_t)len;
        memset(raw + 2, 'x', len);
        handoff_reader_init(&r, raw, len + 2);
        CHECK(handoff_get_str(&r, big, len + 1) == -1 && r.failed);
        raw[0] = (uint8_t)((len - 1) >> 8);
        raw[1] = (uint8_t)(len - 1);
        handoff_reader_init(&r, raw, len + 1);
        CHECK(handoff_get_str(&r, big, len + 1) == 0 && strlen(big) == HANDOFF_STR_MAX);
        free(raw);
        free(big);
    }
}

static void test_builder_limits(void)
{
    struct handoff_msg m;
    char *s = malloc(HANDOFF_STR_MAX + 2);
    uint8_t *blob = calloc(1, HANDOFF_MAX_PAYLOAD + 1);
    unsigned i;

    memset(s, 'x', HANDOFF_STR_MAX + 1);
    s[HANDOFF_STR_MAX + 1] = '\0';

    CHECK(handoff_msg_init(&m, HANDOFF_FAILED, 1) == 0);
    handoff_msg_put_str(&m, s);   /* STR_MAX + 1 */
    CHECK(m.failed);
    CHECK(handoff_msg_finish(&m) == -1);
    handoff_msg_free(&m);

    s[HANDOFF_STR_MAX] = '\0';
    CHECK(handoff_msg_init(&m, HANDOFF_FAILED, 1) == 0);
    handoff_msg_put_str(&m, s);
    CHECK(!m.failed && handoff_msg_finish(&m) == 0);
    handoff_msg_free(&m);

    CHECK(handoff_msg_init(&m, HANDOFF_FAILED, 1) == 0);
    handoff_msg_put_str(&m, NULL);
    CHECK(m.failed);
    handoff_msg_free(&m);

    /* The payload limit counts the length prefix too. */
    CHECK(handoff_msg_init(&m, HANDOFF_CONFIG, 1) == 0);
    handoff_msg_put_bytes(&m, blob, HANDOFF_MAX_PAYLOAD - 4);
    CHECK(!m.failed && handoff_msg_finish(&m) == 0);
    CHECK_U64(m.len, HANDOFF_HDR_LEN + HANDOFF_MAX_PAYLOAD);
    handoff_msg_put_u8(&m, 0);
    CHECK(m.failed && handoff_msg_finish(&m) == -1);
    handoff_msg_free(&m);

    CHECK(handoff_msg_init(&m, HANDOFF_CONFIG, 1) == 0);
    handoff_msg_put_bytes(&m, blob, HANDOFF_MAX_PAYLOAD + 1);
    CHECK(m.failed);
    handoff_msg_free(&m);

    CHECK(handoff_msg_init(&m, HANDOFF_CONFIG, 1) == 0);
    handoff_msg_put_bytes(&m, blob, HANDOFF_MAX_PAYLOAD - 3);
    CHECK(m.failed);
    handoff_msg_free(&m);

    /* Many small appends cross the limit too. */
    CHECK(handoff_msg_init(&m, HANDOFF_CONFIG, 1) == 0);
    for (i = 0; i <= HANDOFF_MAX_PAYLOAD / 8; i++)
        handoff_msg_put_u64(&m, i);
    CHECK(m.failed);
    CHECK(m.len <= HANDOFF_HDR_LEN + HANDOFF_MAX_PAYLOAD);
    handoff_msg_free(&m);

    CHECK(handoff_msg_init(&m, HANDOFF_CONN, 1) == 0);
    for (i = 0; i < HANDOFF_MAX_FDS; i++)
        handoff_msg_add_fd(&m, 0);
    CHECK(!m.failed && m.nfds == HANDOFF_MAX_FDS);
    CHECK(handoff_msg_finish(&m) == 0 && m.buf[3] == HANDOFF_MAX_FDS);
    handoff_msg_add_fd(&m, 0);
    CHECK(m.failed && handoff_msg_finish(&m) == -1);
    handoff_msg_free(&m);

    CHECK(handoff_msg_init(&m, HANDOFF_CONN, 1) == 0);
    handoff_msg_add_fd(&m, -1);
    CHECK(m.failed);
    handoff_msg_free(&m);
    handoff_msg_free(&m);   /* idempotent */

    free(s);
    free(blob);
}

/* Typed messages */

static void fill_servers(struct handoff_server_state *v, uint32_t n, size_t namelen)
{
    memset(v, 0, sizeof(*v));
    v->servers = calloc(n ? n : 1, sizeof(*v->servers));
    v->nservers = n;
    for (uint32_t i = 0; i < n; i++) {
        struct handoff_server_health *h = &v->servers[i];

        /* names of namelen bytes (at least the number) */
        snprintf(h->backend, sizeof(h->backend), "b%u%0*u", (unsigned)(i % 7),
                 (int)(namelen > 2 ? namelen - 2 : 0), 0u);
        snprintf(h->server, sizeof(h->server), "%0*u", (int)namelen, (unsigned)i);
        h->down = i % 3 == 0;
        h->active = i;
        h->total = (uint64_t)i << 35;
        h->failures = ~(uint64_t)i;
    }
}

static void fill_status(struct handoff_status *st, uint32_t n, uint32_t nservers)
{
    uint32_t i;

    memset(st, 0, sizeof(*st));
    st->id = 42;
    st->pid = 4242;
    st->active = 1;
    st->total = 0xffffffffffffffffull;
    st->bytes_in = 1ull << 40;
    st->bytes_out = 12345678901ull;
    st->tls_failures = 77;
    st->listeners = calloc(n ? n : 1, sizeof(*st->listeners));
    st->nlisteners = n;
    for (i = 0; i < n; i++) {
        snprintf(st->listeners[i].name, sizeof(st->listeners[i].name), "listener-%u",
                 (unsigned)i);
        st->listeners[i].active = i;
        st->listeners[i].total = (uint64_t)i << 33;
    }
    fill_servers(&st->servers, nservers, 4);
}

static int same_servers(const struct handoff_server_state *a,
                        const struct handoff_server_state *b)
{
    if (a->nservers != b->nservers)
        return 0;
    for (uint32_t i = 0; i < a->nservers; i++) {
        const struct handoff_server_health *x = &a->servers[i], *y = &b->servers[i];

        if (strcmp(x->backend, y->backend) != 0 || strcmp(x->server, y->server) != 0 ||
            x->down != y->down || x->active != y->active || x->total != y->total ||
            x->failures != y->failures)
            return 0;
    }
    return 1;
}

static int same_status(const struct handoff_status *a, const struct handoff_status *b)
{
    if (a->id != b->id || a->pid != b->pid || a->active != b->active || a->total != b->total ||
        a->bytes_in != b->bytes_in || a->bytes_out != b->bytes_out ||
        a->tls_failures != b->tls_failures || a->nlisteners != b->nlisteners)
        return 0;
    for (uint32_t i = 0; i < a->nlisteners; i++)
        if (strcmp(a->listeners[i].name, b->listeners[i].name) != 0 ||
            a->listeners[i].active != b->listeners[i].active ||
            a->listeners[i].total != b->listeners[i].total)
            return 0;
    return same_servers(&a->servers, &b->servers);
}

/* A relaying connection with every field set: bytes pending both ways, a
 * prefix, servers tried, both addresses (IPv6 client, IPv4 destination). */
static void fill_conn(struct handoff_conn *v, int client_fd, int server_fd)
{
    static const uint8_t up[] = "GET / HTTP/1.1\r\n\r\n";
    static const uint8_t down[] = { 0, 1, 2, 0xff, 0xfe, 0x80, 0 };
    static const uint8_t prefix[] = "PROXY TCP4 1.2.3.4";
    struct sockaddr_in6 peer;
    struct sockaddr_in local;

    memset(v, 0, sizeof(*v));
    v->id = 0xa1b2c3d4u;
    v->phase = HANDOFF_PHASE_RELAYING;
    v->armed = HANDOFF_ARMED_CLIENT_READ | HANDOFF_ARMED_SERVER_WRITE;
    v->flags = HANDOFF_CONN_F_CONNECTED | HANDOFF_CONN_F_SERVER_FIN;
    v->handoffs = 3;
    v->idle_timeout_ms = 300000;
    v->start_ms = 0x0102030405060708ull;
    v->last_ms = 0x1112131415161718ull;
    v->deadline_ms = 0xfffffffffffffffeull;
    memset(&peer, 0, sizeof(peer));
    peer.sin6_family = AF_INET6;
    peer.sin6_port = htons(54321);
    peer.sin6_addr.s6_addr[15] = 1;
    peer.sin6_scope_id = 7;
    memcpy(v->peer, &peer, sizeof(peer));
    v->peerlen = sizeof(peer);
    memset(&local, 0, sizeof(local));
    local.sin_family = AF_INET;
    local.sin_port = htons(443);
    local.sin_addr.s_addr = htonl(0x0a000001);
    memcpy(v->local, &local, sizeof(local));
    v->locallen = sizeof(local);
    snprintf(v->listener, sizeof(v->listener), "web");
    snprintf(v->backend, sizeof(v->backend), "app");
    memset(v->server, 's', sizeof(v->server) - 1);   /* longest name */
    v->ntried = 3;
    snprintf(v->tried[0], sizeof(v->tried[0]), "a1");
    snprintf(v->tried[1], sizeof(v->tried[1]), "a2");
    memcpy(v->tried[2], v->server, sizeof(v->server));
    snprintf(v->sni, sizeof(v->sni), "www.example.com");
    snprintf(v->alpn, sizeof(v->alpn), "h2");
    v->up.bytes = 1234567;
    v->up.flags = HANDOFF_DIR_BULK;
    v->up.pending = up;
    v->up.npending = sizeof(up) - 1;
    v->down.bytes = 1ull << 40;
    v->down.flags = HANDOFF_DIR_EOF | HANDOFF_DIR_SHUT;
    v->down.pending = down;
    v->down.npending = sizeof(down);
    v->prefix = prefix;
    v->prefixlen = sizeof(prefix) - 1;
    v->client_fd = client_fd;
    v->server_fd = server_fd;
}

/* Builds one valid message of each type (index into all_types). */
static int build(struct handoff_msg *m, uint16_t type, int fd)
{
    static const char text[] = "[global]\nworkers = 2\n";
    struct handoff_hello h = { .pid = 1234, .version = "0.1.0" };
    struct handoff_config c = { 7, "/etc/baton/baton.ini", (const uint8_t *)text,
                                sizeof(text) - 1 };
    struct handoff_listener l = { "web", "127.0.0.1:8080", fd };
    struct handoff_failed f = { "bind 127.0.0.1:80: Permission denied" };
    struct handoff_status_req sr = { 99 };
    int r;

    switch (type) {
    case HANDOFF_HELLO:
        return handoff_encode_hello(m, 1, &h);
    case HANDOFF_CONFIG:
        return handoff_encode_config(m, 2, &c);
    case HANDOFF_LISTENER:
        return handoff_encode_listener(m, 3, &l);
    case HANDOFF_FAILED:
        return handoff_encode_failed(m, 4, &f);
    case HANDOFF_STATUS_REQ:
        return handoff_encode_status_req(m, 5, &sr);
    case HANDOFF_STATUS: {
        struct handoff_status st;

        fill_status(&st, 3, 2);
        r = handoff_encode_status(m, 6, &st, 0, HANDOFF_CAPS_OURS);
        handoff_status_free(&st);
        return r;
    }
    case HANDOFF_SERVER_STATE: {
        struct handoff_server_state ss;

        fill_servers(&ss, 3, 5);
        r = handoff_encode_server_state(m, 8, &ss, 0, HANDOFF_CAPS_OURS);
        handoff_server_state_free(&ss);
        return r;
    }
    case HANDOFF_LINK: {
        struct handoff_link lk = { HANDOFF_LINK_GIVE, 8, 1, 2, fd, HANDOFF_CAPS_OURS, 0 };

        return handoff_encode_link(m, 9, &lk);
    }
    case HANDOFF_CONN: {
        static struct handoff_conn cn;

        fill_conn(&cn, fd, fd);
        return handoff_encode_conn(m, 10, &cn);
    }
    case HANDOFF_CONN_ACK: {
        static struct handoff_conn_ack ack;

        ack.credits = 64;
        ack.n = 3;
        for (uint32_t i = 0; i < ack.n; i++) {
            ack.results[i].id = 100 + i;
            ack.results[i].result = i == 1 ? HANDOFF_CONN_REFUSED : HANDOFF_CONN_ADOPTED;
        }
        return handoff_encode_conn_ack(m, 11, &ack);
    }
    case HANDOFF_CONN_RELEASE: {
        static struct handoff_conn_release rel;

        rel.n = 2;
        rel.ids[0] = 100;
        rel.ids[1] = 102;
        return handoff_encode_conn_release(m, 12, &rel);
    }
    case HANDOFF_CONN_DONE: {
        struct handoff_conn_done done = { 3 };

        return handoff_encode_conn_done(m, 13, &done);
    }
    default:
        return handoff_encode_empty(m, type, 7);
    }
}

/* Encodes every part of a status and decodes them in order. */
static void roundtrip_status(uint32_t nlisteners, uint32_t nservers)
{
    struct handoff_status in_st, out_st = { 0 };
    struct handoff_msg m;
    struct handoff_in in;
    char why[256] = "";
    uint32_t parts, want, ok = 0;

    fill_status(&in_st, nlisteners, nservers);
    parts = handoff_status_parts(&in_st, HANDOFF_CAPS_OURS);
    want = (nlisteners + HANDOFF_PART_LISTENERS - 1) / HANDOFF_PART_LISTENERS;
    if ((nservers + HANDOFF_PART_SERVERS - 1) / HANDOFF_PART_SERVERS > want)
        want = (nservers + HANDOFF_PART_SERVERS - 1) / HANDOFF_PART_SERVERS;
    CHECK_U64(parts, want ? want : 1);
    for (uint32_t p = 0; p < parts; p++) {
        CHECK(!handoff_status_complete(&out_st));
        if (handoff_encode_status(&m, 16 + p, &in_st, p, HANDOFF_CAPS_OURS) != 0 || to_in(&m, &in) != 0) {
            handoff_msg_free(&m);
            break;
        }
        CHECK(in.hdr.len <= HANDOFF_MAX_PAYLOAD);
        if (handoff_decode_status(&in, &out_st, HANDOFF_CAPS_OURS, why, sizeof(why)) == 0)
            ok++;
        else
            fprintf(stderr, "    status %u/%u part %u: %s\n", (unsigned)nlisteners,
                    (unsigned)nservers, (unsigned)p, why);
        handoff_in_free(&in);
        handoff_msg_free(&m);
    }
    CHECK_U64(ok, parts);
    CHECK(handoff_status_complete(&out_st));
    CHECK(same_status(&out_st, &in_st));
    /* no part past the last */
    CHECK(handoff_encode_status(&m, 1, &in_st, parts, HANDOFF_CAPS_OURS) == -1);
    handoff_msg_free(&m);
    handoff_status_free(&out_st);
    handoff_status_free(&in_st);
}

static void test_roundtrip(void)
{
    struct handoff_msg m;
    struct handoff_in in;
    char why[256] = "";
    int fd = devnull();
    uint32_t i;

    {
        struct handoff_hello v, g;

        memset(&v, 0, sizeof(v));
        v.pid = 0xfffffffeu;
        strcpy(v.version, "1.2.3-rc1");
        CHECK(handoff_encode_hello(&m, 11, &v) == 0);
        CHECK(to_in(&m, &in) == 0);
        CHECK_U64(in.hdr.seq, 11);
        CHECK(handoff_decode_hello(&in, &g, why, sizeof(why)) == 0);
        CHECK_U64(g.pid, v.pid);
        CHECK_STR(g.version, v.version);
        handoff_in_free(&in);
        handoff_msg_free(&m);
    }
    {
        static struct handoff_config v, g;
        size_t len = 100000;
        uint8_t *text = malloc(len);

        for (i = 0; i < len; i++)
            text[i] = (uint8_t)(1 + i % 255);
        v.generation = 3;
        memset(v.path, 'p', sizeof(v.path) - 1);   /* longest path that fits */
        v.text = text;
        v.textlen = (uint32_t)len;
        CHECK(handoff_encode_config(&m, 12, &v) == 0);
        CHECK(to_in(&m, &in) == 0);
        CHECK(handoff_decode_config(&in, &g, why, sizeof(why)) == 0);
        CHECK_U64(g.generation, 3);
        CHECK_STR(g.path, v.path);
        CHECK(g.textlen == len && memcmp(g.text, text, len) == 0);
        /* text points into the payload */
        CHECK(g.text >= in.payload && g.text < in.payload + in.hdr.len);
        handoff_in_free(&in);
        handoff_msg_free(&m);

        v.text = NULL;
        v.textlen = 0;
        v.path[0] = '\0';
        CHECK(handoff_encode_config(&m, 12, &v) == 0);
        CHECK(to_in(&m, &in) == 0);
        CHECK(handoff_decode_config(&in, &g, why, sizeof(why)) == 0);
        CHECK(g.textlen == 0 && g.path[0] == '\0');
        handoff_in_free(&in);
        handoff_msg_free(&m);
        free(text);
    }
    {
        struct handoff_listener v = { "api", "[::1]:443", fd }, g;

        CHECK(handoff_encode_listener(&m, 13, &v) == 0);
        CHECK_U64(m.nfds, 1);
        CHECK(to_in(&m, &in) == 0);
        CHECK_U64(in.hdr.nfds, 1);
        CHECK(handoff_decode_listener(&in, &g, why, sizeof(why)) == 0);
        CHECK_STR(g.name, "api");
        CHECK_STR(g.addr, "[::1]:443");
        CHECK(g.fd >= 0 && g.fd != fd && in.fds[0] == -1);
        CHECK(test_fd_is_open(g.fd));
        handoff_in_free(&in);
        CHECK(test_fd_is_open(g.fd));   /* taken, so not closed by in_free */
        test_close_fd(g.fd);
        handoff_msg_free(&m);
    }
    {
        struct handoff_failed v, g;

        memset(v.reason, 'r', sizeof(v.reason) - 1);
        v.reason[sizeof(v.reason) - 1] = '\0';
        CHECK(handoff_encode_failed(&m, 14, &v) == 0);
        CHECK(to_in(&m, &in) == 0);
        CHECK(handoff_decode_failed(&in, &g, why, sizeof(why)) == 0);
        CHECK_STR(g.reason, v.reason);
        handoff_in_free(&in);
        handoff_msg_free(&m);
    }
    {
        struct handoff_status_req v = { 0xabcdef01u }, g;

        CHECK(handoff_encode_status_req(&m, 15, &v) == 0);
        CHECK(to_in(&m, &in) == 0);
        CHECK(handoff_decode_status_req(&in, &g, why, sizeof(why)) == 0);
        CHECK_U64(g.id, v.id);
        handoff_in_free(&in);
        handoff_msg_free(&m);
    }
    {
        /* At, and past, what one message holds: the parts add up. */
        uint32_t counts[][2] = { { 0, 0 }, { 1, 1 }, { 5, 3 },
                                 { HANDOFF_PART_LISTENERS, HANDOFF_PART_SERVERS },
                                 { HANDOFF_PART_LISTENERS + 1, HANDOFF_PART_SERVERS + 1 },
                                 { 300, 1100 }, { 1000, 10 }, { 2, 5000 } };

        for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++)
            roundtrip_status(counts[k][0], counts[k][1]);
    }
    for (i = 0; i < NTYPES; i++) {
        uint16_t t = all_types[i];

        if (!build_is_empty(t)) {
            /* Only the payload-less types go through encode_empty. */
            CHECK(handoff_encode_empty(&m, t, 1) == -1);
            handoff_msg_free(&m);
            continue;
        }
        CHECK(handoff_encode_empty(&m, t, 17) == 0);
        CHECK_U64(m.len, HANDOFF_HDR_LEN);
        CHECK(to_in(&m, &in) == 0);
        CHECK(in.payload == NULL && in.hdr.type == t);
        CHECK(handoff_decode_empty(&in, why, sizeof(why)) == 0);
        handoff_in_free(&in);
        handoff_msg_free(&m);
    }
    CHECK(handoff_encode_empty(&m, HANDOFF_CONN_DONE, 1) == -1);
    handoff_msg_free(&m);
    test_close_fd(fd);
}

/* Every shorter payload of a valid message must be refused. */
/* The payload of build()'s STATUS without its extensions. */
static size_t status_base_len(void)
{
    struct handoff_status st;
    struct handoff_msg m;
    size_t n;

    fill_status(&st, 3, 2);
    CHECK(handoff_encode_status(&m, 6, &st, 0, HANDOFF_CAP_LIST_PARTS) == 0);
    n = m.len - HANDOFF_HDR_LEN;
    handoff_msg_free(&m);
    handoff_status_free(&st);
    return n;
}

static void test_truncated(void)
{
    struct handoff_msg m;
    struct handoff_in in;
    char why[256];
    size_t i, len, bad = 0, tried = 0;
    int fd = devnull();

    for (i = 0; i < NTYPES; i++) {
        uint16_t t = all_types[i];

        CHECK(build(&m, t, fd) == 0);
        len = m.len - HANDOFF_HDR_LEN;
        for (size_t cut = 0; cut < len; cut++) {
            /* STATUS ends in optional extensions: without them it is whole. */
            if (t == HANDOFF_STATUS && cut == status_base_len())
                continue;
            /* So does LINK (the other end's capabilities). */
            if (t == HANDOFF_LINK && cut == 16)
                continue;
            make_in(&in, t, m.buf + HANDOFF_HDR_LEN, cut, type_nfds(t));
            why[0] = '\0';
            if (decode_any(&in, 0, why, sizeof(why)) != -1 || why[0] == '\0') {
                bad++;
                fprintf(stderr, "    %s: prefix %zu of %zu accepted\n",
                        handoff_type_name(t), cut, len);
            }
            tried++;
            handoff_in_free(&in);
        }
        handoff_msg_free(&m);
    }
    CHECK(tried > 100);
    CHECK_U64(bad, 0);

    /* A sample of the reasons. */
    CHECK(build(&m, HANDOFF_HELLO, fd) == 0);
    make_in(&in, HANDOFF_HELLO, m.buf + HANDOFF_HDR_LEN, 2, 0);
    CHECK(decode_any(&in, 0, why, sizeof(why)) == -1);
    CHECK_WHY(why, "HELLO: pid missing");
    handoff_in_free(&in);
    make_in(&in, HANDOFF_HELLO, m.buf + HANDOFF_HDR_LEN, m.len - HANDOFF_HDR_LEN - 1, 0);
    CHECK(decode_any(&in, 0, why, sizeof(why)) == -1);
    CHECK_WHY(why, "HELLO: version truncated: declares 5 bytes, 4 present");
    handoff_in_free(&in);
    handoff_msg_free(&m);
    test_close_fd(fd);
}

static void test_trailing(void)
{
    struct handoff_msg m;
    struct handoff_in in;
    char why[256];
    size_t i, len;
    int fd = devnull();

    for (i = 0; i < NTYPES; i++) {
        uint16_t t = all_types[i];
        uint8_t *p;

        CHECK(build(&m, t, fd) == 0);
        len = m.len - HANDOFF_HDR_LEN;
        p = malloc(len + 3);
        memcpy(p, m.buf + HANDOFF_HDR_LEN, len);
        memcpy(p + len, "zzz", 3);
        make_in(&in, t, p, len + 3, type_nfds(t));
        why[0] = '\0';
        CHECK(decode_any(&in, 0, why, sizeof(why)) == -1);
        CHECK_WHY(why, handoff_type_name(t));
        /* Messages that may grow by extensions: 3 bytes are a truncated one. */
        CHECK_WHY(why, build_is_empty(t) ? "got 3 bytes"
                       : type_has_exts(t) ? "extension flags missing"
                                          : "3 unexpected bytes after");
        handoff_in_free(&in);
        free(p);
        handoff_msg_free(&m);
    }
    test_close_fd(fd);
}

/* Appends a u16-length string with `len` copies of c. */
static size_t raw_str(uint8_t *p, size_t len, char c)
{
    p[0] = (uint8_t)(len >> 8);
    p[1] = (uint8_t)len;
    memset(p + 2, c, len);
    return 2 + len;
}

static void test_bad_fields(void)
{
    static uint8_t raw[HANDOFF_STR_MAX * 3];
    struct handoff_in in;
    char why[256];
    size_t n;

    /* HELLO version: 63 bytes fit, 64 do not. */
    memset(raw, 0, 4);
    n = 4 + raw_str(raw + 4, HANDOFF_VERSION_MAX - 1, 'v');
    make_in(&in, HANDOFF_HELLO, raw, n, 0);
    CHECK(decode_any(&in, 0, why, sizeof(why)) == 0);
    handoff_in_free(&in);
    n = 4 + raw_str(raw + 4, HANDOFF_VERSION_MAX, 'v');
    make_in(&in, HANDOFF_HELLO, raw, n, 0);
    CHECK(decode_any(&in, 0, why, sizeof(why)) == -1);
    CHECK_WHY(why, "HELLO: version too long: 64 bytes (max 63)");
    handoff_in_free(&in);

    /* Beyond HANDOFF_STR_MAX. */
    n = raw_str(raw, HANDOFF_STR_MAX + 1, 'r');
    make_in(&in, HANDOFF_FAILED, raw, n, 0);
    CHECK(decode_any(&in, 0, why, sizeof(why)) == -1);
    CHECK_WHY(why, "FAILED: reason too long: 4097 bytes");
    handoff_in_free(&in);

    n = raw_str(raw, HANDOFF_REASON_MAX, 'r');
    make_in(&in, HANDOFF_FAILED, raw, n, 0);
    CHECK(decode_any(&in, 0, why, sizeof(why)) == -1);
    CHECK_WHY(why, "reason too long: 512 bytes (max 511)");
    handoff_in_free(&in);

    /* Embedded NUL. */
    n = raw_str(raw, 10, 'r');
    raw[5] = '\0';
    make_in(&in, HANDOFF_FAILED, raw, n, 0);
    CHECK(decode_any(&in, 0, why, sizeof(why)) == -1);
    CHECK_WHY(why, "FAILED: reason contains a NUL byte");
    handoff_in_free(&in);

    /* LISTENER name too long for its field. */
    n = raw_str(raw, HANDOFF_NAME_MAX, 'n');
    n += raw_str(raw + n, 4, 'a');
    make_in(&in, HANDOFF_LISTENER, raw, n, 1);
    CHECK(decode_any(&in, 0, why, sizeof(why)) == -1);
    CHECK_WHY(why, "LISTENER: name too long");
    CHECK(in.fds[0] >= 0);   /* not taken on failure */
    handoff_in_free(&in);

    /* CONFIG text with a NUL; CONFIG path too long. */
    memset(raw, 0, 4);
    n = 4 + raw_str(raw + 4, 3, 'p');
    raw[n++] = 0, raw[n++] = 0, raw[n++] = 0, raw[n++] = 5;
    memcpy(raw + n, "ab\0cd", 5);
    n += 5;
    make_in(&in, HANDOFF_CONFIG, raw, n, 0);
    CHECK(decode_any(&in, 0, why, sizeof(why)) == -1);
    CHECK_WHY(why, "CONFIG: text contains a NUL byte");
    handoff_in_free(&in);
    n = 4 + raw_str(raw + 4, 1024, 'p');
    raw[n++] = 0, raw[n++] = 0, raw[n++] = 0, raw[n++] = 0;
    make_in(&in, HANDOFF_CONFIG, raw, n, 0);
    CHECK(decode_any(&in, 0, why, sizeof(why)) == -1);
    CHECK_WHY(why, "CONFIG: path too long: 1024 bytes (max 1023)");
    handoff_in_free(&in);
    /* text length over the payload maximum */
    n = 4 + raw_str(raw + 4, 1, 'p');
    raw[n++] = 0, raw[n++] = 0x20, raw[n++] = 0, raw[n++] = 1;
    make_in(&in, HANDOFF_CONFIG, raw, n, 0);
    CHECK(decode_any(&in, 0, why, sizeof(why)) == -1);
    CHECK_WHY(why, "CONFIG: text too long: 2097153 bytes (max 2097152)");
    handoff_in_free(&in);

    /* STATUS with more listeners in one message than a part holds
     * (part, id, pid, 5 counters, then the listeners' total and count). */
    memset(raw, 0, 60);
    raw[54] = 0x01, raw[55] = 0x01;   /* total = 257 */
    raw[58] = 0x01, raw[59] = 0x01;   /* in this part: 257 */
    make_in(&in, HANDOFF_STATUS, raw, 60, 0);
    CHECK(decode_any(&in, 0, why, sizeof(why)) == -1);
    CHECK_WHY(why, "STATUS: part 0 holds 257 listeners, expected 256 of 257");
    handoff_in_free(&in);
    raw[54] = 0, raw[55] = 2, raw[58] = 0, raw[59] = 2;   /* claims 2, carries none */
    make_in(&in, HANDOFF_STATUS, raw, 60, 0);
    CHECK(decode_any(&in, 0, why, sizeof(why)) == -1);
    CHECK_WHY(why, "STATUS: listener name missing");
    handoff_in_free(&in);

    /* Empty messages must be empty. */
    make_in(&in, HANDOFF_DRAIN, "x", 1, 0);
    CHECK(decode_any(&in, 0, why, sizeof(why)) == -1);
    CHECK_WHY(why, "DRAIN: expected an empty payload, got 1 bytes");
    handoff_in_free(&in);

    /* Encoders refuse what decoders would refuse. */
    {
        struct handoff_msg m;
        struct handoff_hello h;
        struct handoff_config c;
        struct handoff_listener l;

        memset(&h, 'v', sizeof(h));   /* unterminated version */
        CHECK(handoff_encode_hello(&m, 1, &h) == -1);
        handoff_msg_free(&m);
        memset(&c, 0, sizeof(c));
        c.text = (const uint8_t *)"a\0b";
        c.textlen = 3;
        CHECK(handoff_encode_config(&m, 1, &c) == -1);
        handoff_msg_free(&m);
        c.text = NULL;
        CHECK(handoff_encode_config(&m, 1, &c) == -1);
        handoff_msg_free(&m);
        memset(&l, 0, sizeof(l));
        l.fd = -1;
        CHECK(handoff_encode_listener(&m, 1, &l) == -1);
        handoff_msg_free(&m);
        struct handoff_status st;
        struct handoff_server_state ss;

        fill_status(&st, 1, 1);
        st.servers.servers[0].server[0] = '\0';
        memset(st.servers.servers[0].backend, 'b', sizeof(st.servers.servers[0].backend));
        CHECK(handoff_encode_status(&m, 1, &st, 0, HANDOFF_CAPS_OURS) == -1);   /* unterminated name */
        handoff_msg_free(&m);
        handoff_status_free(&st);
        fill_servers(&ss, 2, 3);
        ss.nservers = HANDOFF_LIST_MAX + 1;   /* more than a list may hold */
        CHECK(handoff_encode_server_state(&m, 1, &ss, 0, HANDOFF_CAPS_OURS) == -1);
        handoff_msg_free(&m);
        free(ss.servers);
        ss.servers = NULL;
        ss.nservers = 1;                      /* entries missing */
        CHECK(handoff_encode_server_state(&m, 1, &ss, 0, HANDOFF_CAPS_OURS) == -1);
        handoff_msg_free(&m);
    }
}

/* Part `part` of ss as a received message. */
static void server_part(const struct handoff_server_state *ss, uint32_t part,
                        struct handoff_in *in)
{
    struct handoff_msg m;

    memset(in, 0, sizeof(*in));
    CHECK(handoff_encode_server_state(&m, part, ss, part, HANDOFF_CAPS_OURS) == 0);
    CHECK(to_in(&m, in) == 0);
    CHECK(in->hdr.len <= HANDOFF_MAX_PAYLOAD);
    handoff_msg_free(&m);
}

/* A SERVER_STATE part written field by field: u32 part, total, n; n entries. */
static void raw_server_part(uint32_t part, uint32_t total, uint32_t n, struct handoff_in *in)
{
    struct handoff_msg m;

    CHECK(handoff_msg_init(&m, HANDOFF_SERVER_STATE, 1) == 0);
    handoff_msg_put_u32(&m, part);
    handoff_msg_put_u32(&m, total);
    handoff_msg_put_u32(&m, n);
    for (uint32_t i = 0; i < n; i++) {
        handoff_msg_put_str(&m, "app");
        handoff_msg_put_str(&m, "s");
        handoff_msg_put_u32(&m, 1);
        handoff_msg_put_u64(&m, 0);
        handoff_msg_put_u64(&m, 0);
        handoff_msg_put_u64(&m, 0);
    }
    CHECK(handoff_msg_finish(&m) == 0);
    CHECK(to_in(&m, in) == 0);
    handoff_msg_free(&m);
}

/* Decodes a raw_server_part into v; 0 or -1. */
static int raw_decode(uint32_t part, uint32_t total, uint32_t n,
                      struct handoff_server_state *v, char *why, size_t whylen)
{
    struct handoff_in in;
    int rc;

    raw_server_part(part, total, n, &in);
    rc = handoff_decode_server_state(&in, v, HANDOFF_CAPS_OURS, why, whylen);
    handoff_in_free(&in);
    return rc;
}

/* Feeds parts (indexes into ss's parts) to v; returns how many decoded. */
static unsigned feed_parts(const struct handoff_server_state *ss, const uint32_t *parts,
                           size_t n, struct handoff_server_state *v, char *why, size_t whylen)
{
    struct handoff_in in;
    unsigned ok = 0;

    for (size_t i = 0; i < n; i++) {
        server_part(ss, parts[i], &in);
        why[0] = '\0';
        if (handoff_decode_server_state(&in, v, HANDOFF_CAPS_OURS, why, whylen) == 0)
            ok++;
        handoff_in_free(&in);
    }
    return ok;
}

static void test_parts(void)
{
    struct handoff_server_state ss, v = { 0 };
    struct handoff_status st, sv = { 0 };
    struct handoff_msg m;
    struct handoff_in in;
    char why[256];
    size_t whole = 0;

    /* Longest names: the whole list is larger than any one message. */
    fill_servers(&ss, 20000, HANDOFF_NAME_MAX - 1);
    CHECK_U64(strlen(ss.servers[0].server), HANDOFF_NAME_MAX - 1);
    CHECK_U64(handoff_server_state_parts(&ss, HANDOFF_CAPS_OURS), (20000 + HANDOFF_PART_SERVERS - 1) /
                                                HANDOFF_PART_SERVERS);
    for (uint32_t p = 0; p < handoff_server_state_parts(&ss, HANDOFF_CAPS_OURS); p++) {
        server_part(&ss, p, &in);
        whole += in.hdr.len;
        CHECK(handoff_decode_server_state(&in, &v, HANDOFF_CAPS_OURS, why, sizeof(why)) == 0);
        CHECK(handoff_server_state_complete(&v) == (p + 1 == handoff_server_state_parts(&ss, HANDOFF_CAPS_OURS)));
        handoff_in_free(&in);
    }
    CHECK(whole > HANDOFF_MAX_PAYLOAD);
    CHECK(same_servers(&v, &ss));
    handoff_server_state_free(&v);
    CHECK(v.servers == NULL && v.nservers == 0 && !handoff_server_state_complete(&v));
    handoff_server_state_free(&ss);

    fill_servers(&ss, 2 * HANDOFF_PART_SERVERS + 5, 3);   /* three parts */
    {
        /* A part out of order empties the list. */
        uint32_t order[] = { 0, 2 };

        CHECK_U64(feed_parts(&ss, order, 2, &v, why, sizeof(why)), 1);
        CHECK_WHY(why, "SERVER_STATE: part 2 where part 1 was expected");
        CHECK(v.nservers == 0 && !handoff_server_state_complete(&v));
    }
    {
        /* Parts of a list whose start was never seen are skipped, until a
         * part 0 starts one (after a master's re-exec). */
        uint32_t order[] = { 1, 2, 0, 1, 2 };

        CHECK_U64(feed_parts(&ss, order, 2, &v, why, sizeof(why)), 2);
        CHECK(v.nservers == 0 && v.parts == 0 && !handoff_server_state_complete(&v));
        CHECK_U64(feed_parts(&ss, order + 2, 3, &v, why, sizeof(why)), 3);
        CHECK(handoff_server_state_complete(&v) && same_servers(&v, &ss));
        handoff_server_state_free(&v);
    }
    {
        /* A part 0 starts the list afresh, even half-way through one. */
        uint32_t order[] = { 0, 1, 0, 1, 2 };

        CHECK_U64(feed_parts(&ss, order, 5, &v, why, sizeof(why)), 5);
        CHECK(handoff_server_state_complete(&v) && same_servers(&v, &ss));
        handoff_server_state_free(&v);
    }
    handoff_server_state_free(&ss);

    /* A part holds exactly its share of the list. */
    CHECK(raw_decode(0, 2000, 5, &v, why, sizeof(why)) == -1);
    CHECK_WHY(why, "SERVER_STATE: part 0 holds 5 servers, expected 1024 of 2000");
    CHECK(raw_decode(0, 0, 1, &v, why, sizeof(why)) == -1);
    CHECK_WHY(why, "part 0 holds 1 servers, expected 0 of 0");
    CHECK(raw_decode(0, HANDOFF_LIST_MAX + 1, 0, &v, why, sizeof(why)) == -1);
    CHECK_WHY(why, "SERVER_STATE: 1048577 servers (max 1048576)");
    /* every part keeps the list's length; the last one holds the rest */
    CHECK(raw_decode(0, 1030, HANDOFF_PART_SERVERS, &v, why, sizeof(why)) == 0);
    CHECK(raw_decode(1, 1031, 7, &v, why, sizeof(why)) == -1);
    CHECK_WHY(why, "part 1 lists 1031 servers, the parts before 1030");
    CHECK(v.nservers == 0);
    CHECK(raw_decode(0, 1030, HANDOFF_PART_SERVERS, &v, why, sizeof(why)) == 0);
    CHECK(raw_decode(1, 1030, 7, &v, why, sizeof(why)) == -1);
    CHECK_WHY(why, "part 1 holds 7 servers, expected 6 of 1030");
    CHECK(raw_decode(0, 1030, HANDOFF_PART_SERVERS, &v, why, sizeof(why)) == 0);
    CHECK(!handoff_server_state_complete(&v));
    CHECK(raw_decode(1, 1030, 6, &v, why, sizeof(why)) == 0);
    CHECK(handoff_server_state_complete(&v) && v.nservers == 1030);
    handoff_server_state_free(&v);

    /* STATUS: the parts of one answer belong together. */
    fill_status(&st, 2 * HANDOFF_PART_LISTENERS, 10);
    CHECK_U64(handoff_status_parts(&st, HANDOFF_CAPS_OURS), 2);
    CHECK(handoff_encode_status(&m, 1, &st, 0, HANDOFF_CAPS_OURS) == 0);
    CHECK(to_in(&m, &in) == 0);
    CHECK(handoff_decode_status(&in, &sv, HANDOFF_CAPS_OURS, why, sizeof(why)) == 0);
    CHECK(!handoff_status_complete(&sv) && sv.nlisteners == HANDOFF_PART_LISTENERS);
    handoff_in_free(&in);
    handoff_msg_free(&m);
    st.id = 43;
    CHECK(handoff_encode_status(&m, 2, &st, 1, HANDOFF_CAPS_OURS) == 0);
    CHECK(to_in(&m, &in) == 0);
    CHECK(handoff_decode_status(&in, &sv, HANDOFF_CAPS_OURS, why, sizeof(why)) == -1);
    CHECK_WHY(why, "STATUS: part 1 of request 43 continues request 42");
    CHECK(sv.nlisteners == 0 && sv.listeners == NULL && !handoff_status_complete(&sv));
    handoff_in_free(&in);
    handoff_msg_free(&m);
    handoff_status_free(&st);
}

static void test_wrong_fds_and_types(void)
{
    struct handoff_msg m;
    struct handoff_in in;
    char why[256];
    int fd = devnull();
    size_t i;

    CHECK(build(&m, HANDOFF_LISTENER, fd) == 0);
    make_in(&in, HANDOFF_LISTENER, m.buf + HANDOFF_HDR_LEN, m.len - HANDOFF_HDR_LEN, 0);
    CHECK(decode_any(&in, 0, why, sizeof(why)) == -1);
    CHECK_WHY(why, "LISTENER: expected 1 descriptor, got 0");
    handoff_in_free(&in);
    make_in(&in, HANDOFF_LISTENER, m.buf + HANDOFF_HDR_LEN, m.len - HANDOFF_HDR_LEN, 2);
    CHECK(decode_any(&in, 0, why, sizeof(why)) == -1);
    CHECK_WHY(why, "LISTENER: expected 1 descriptor, got 2");
    handoff_in_free(&in);
    handoff_msg_free(&m);

    for (i = 0; i < NTYPES; i++) {
        uint16_t t = all_types[i];

        if (type_nfds(t) != 0)
            continue;
        CHECK(build(&m, t, fd) == 0);
        make_in(&in, t, m.buf + HANDOFF_HDR_LEN, m.len - HANDOFF_HDR_LEN, 1);
        why[0] = '\0';
        CHECK(decode_any(&in, 0, why, sizeof(why)) == -1);
        CHECK_WHY(why, "expected 0 descriptors, got 1");
        handoff_in_free(&in);
        handoff_msg_free(&m);
    }

    /* Each decoder insists on its own type. */
    CHECK(build(&m, HANDOFF_CONFIG, fd) == 0);
    CHECK(to_in(&m, &in) == 0);
    CHECK(decode_any(&in, HANDOFF_HELLO, why, sizeof(why)) == -1);
    CHECK_WHY(why, "HELLO: expected a HELLO message, got CONFIG");
    CHECK(decode_any(&in, HANDOFF_START, why, sizeof(why)) == -1);
    CHECK_WHY(why, "got CONFIG");
    handoff_in_free(&in);
    handoff_msg_free(&m);

    make_in(&in, HANDOFF_CONN, NULL, 0, 0);
    CHECK(decode_any(&in, HANDOFF_START, why, sizeof(why)) == -1);
    CHECK_WHY(why, "got CONN");
    handoff_in_free(&in);
    test_close_fd(fd);
}

/* Random input must never crash, leak, or succeed without filling why on
 * failure. */
static void test_garbage(void)
{
    static uint8_t buf[600];
    struct handoff_hdr h;
    struct handoff_msg m;
    struct handoff_in in;
    char why[256];
    unsigned iter, ok = 0, fail = 0, odd = 0, k;
    size_t i, len;
    int fd = devnull();

    for (iter = 0; iter < 5000; iter++) {
        for (i = 0; i < HANDOFF_HDR_LEN; i++)
            buf[i] = (uint8_t)test_rand();
        /* Half the time start from a valid prefix to reach later checks. */
        if (iter & 1) {
            buf[0] = 0xba, buf[1] = 0x70, buf[2] = 1;
            if (iter & 2) {
                buf[3] %= 20;                        /* nfds around the limit */
                buf[4] = 0, buf[5] %= 40;            /* types around the valid ones */
                buf[6] = buf[7] = 0;
                buf[12] = 0, buf[13] %= 0x30;        /* len around the limit */
            }
        }
        why[0] = '\0';
        if (handoff_hdr_decode(buf, &h, why, sizeof(why)) == 0)
            ok++;
        else if (why[0] != '\0')
            fail++;
        else
            odd++;
    }
    CHECK(ok > 0 && fail > 0);
    CHECK_U64(odd, 0);

    ok = fail = 0;
    for (iter = 0; iter < 4000; iter++) {
        for (k = 0; k < NTYPES; k++) {
            uint16_t t = all_types[k];
            int r;

            len = test_rand() % (iter < 2000 ? 64 : sizeof(buf));
            for (i = 0; i < len; i++)
                buf[i] = (uint8_t)test_rand();
            /* Short lengths make field-length prefixes plausible. */
            if (len > 6 && (iter & 1))
                buf[0] = buf[4] = 0, buf[1] = (uint8_t)(test_rand() % 8), buf[5] = buf[1];
            make_in(&in, t, buf, len, test_rand() % 4 == 0 ? test_rand() % 3 : type_nfds(t));
            why[0] = '\0';
            r = decode_any(&in, 0, why, sizeof(why));
            if (r == 0)
                ok++;
            else if (r == -1 && why[0] != '\0')
                fail++;
            else
                odd++;
            handoff_in_free(&in);
        }
    }
    CHECK(fail > 0);
    CHECK_U64(odd, 0);

    /* Mutations of valid messages get deeper into each decoder. */
    ok = fail = 0;
    for (iter = 0; iter < 3000; iter++) {
        uint16_t t = all_types[iter % NTYPES];
        uint8_t *p;
        int r;

        CHECK(build(&m, t, fd) == 0);
        len = m.len - HANDOFF_HDR_LEN;
        p = malloc(len + 8);
        memcpy(p, m.buf + HANDOFF_HDR_LEN, len);
        for (k = test_rand() % 4 + 1; len > 0 && k > 0; k--)
            p[test_rand() % len] = (uint8_t)(test_rand() % 3 == 0 ? test_rand() : test_rand() % 4);
        if (test_rand() % 4 == 0)
            len += test_rand() % 8;   /* tail of stale bytes */
        make_in(&in, t, p, len, type_nfds(t));
        why[0] = '\0';
        r = decode_any(&in, 0, why, sizeof(why));
        if (r == 0)
            ok++;
        else if (r == -1 && why[0] != '\0')
            fail++;
        else
            odd++;
        handoff_in_free(&in);
        free(p);
        handoff_msg_free(&m);
    }
    CHECK(ok > 0 && fail > 0);
    CHECK_U64(odd, 0);
    test_close_fd(fd);
}


/* ---- live connection handoff messages (conn_msg.h) -------------------- */

static int same_dir(const struct handoff_conn_dir *a, const struct handoff_conn_dir *b)
{
    return a->bytes == b->bytes && a->flags == b->flags && a->npending == b->npending &&
           (a->npending == 0 || memcmp(a->pending, b->pending, a->npending) == 0);
}

/* Every field of two CONN descriptions but the descriptors. */
static int same_conn(const struct handoff_conn *a, const struct handoff_conn *b)
{
    if (a->id != b->id || a->phase != b->phase || a->armed != b->armed ||
        a->flags != b->flags || a->handoffs != b->handoffs ||
        a->idle_timeout_ms != b->idle_timeout_ms || a->start_ms != b->start_ms ||
        a->last_ms != b->last_ms || a->deadline_ms != b->deadline_ms ||
        a->peerlen != b->peerlen || memcmp(a->peer, b->peer, a->peerlen) != 0 ||
        a->locallen != b->locallen || memcmp(a->local, b->local, a->locallen) != 0 ||
        strcmp(a->listener, b->listener) != 0 || strcmp(a->backend, b->backend) != 0 ||
        strcmp(a->server, b->server) != 0 || a->ntried != b->ntried ||
        strcmp(a->sni, b->sni) != 0 || strcmp(a->alpn, b->alpn) != 0 ||
        !same_dir(&a->up, &b->up) || !same_dir(&a->down, &b->down) ||
        a->prefixlen != b->prefixlen ||
        (a->prefixlen > 0 && memcmp(a->prefix, b->prefix, a->prefixlen) != 0))
        return 0;
    for (uint32_t i = 0; i < a->ntried; i++)
        if (strcmp(a->tried[i], b->tried[i]) != 0)
            return 0;
    return 1;
}

/* Encodes v, decodes it as received and checks it came back field for
 * field (while g's pointers still point into the received payload); 0 or
 * -1 (why set).  g keeps the descriptors. */
static int conn_roundtrip(const struct handoff_conn *v, struct handoff_conn *g, char *why,
                          size_t n)
{
    struct handoff_msg m;
    struct handoff_in in;
    int r;

    memset(g, 0, sizeof(*g));
    g->client_fd = g->server_fd = -1;
    if (handoff_encode_conn(&m, 21, v) != 0) {
        snprintf(why, n, "encoder refused");
        return -1;
    }
    CHECK(to_in(&m, &in) == 0);
    r = handoff_decode_conn(&in, g, why, n);
    CHECK(r != 0 || same_conn(v, g));
    handoff_in_free(&in);
    g->up.pending = g->down.pending = g->prefix = NULL;   /* freed with the payload */
    handoff_msg_free(&m);
    return r;
}

/* Takes a decoded CONN's descriptors: each must be a live descriptor. */
static int close_conn_fds(struct handoff_conn *g)
{
    int ok = g->client_fd >= 0 && test_fd_is_open(g->client_fd);

    if (g->client_fd >= 0)
        test_close_fd(g->client_fd);
    if (g->server_fd >= 0) {
        ok = ok && test_fd_is_open(g->server_fd);
        test_close_fd(g->server_fd);
    }
    g->client_fd = g->server_fd = -1;
    return ok;
}

static void test_conn_roundtrip(void)
{
    static struct handoff_conn v, g;
    char why[256] = "";
    int fd = devnull(), fd2 = devnull();

    /* Relaying: client and server sockets, every field. */
    fill_conn(&v, fd, fd2);
    CHECK(conn_roundtrip(&v, &g, why, sizeof(why)) == 0);
    CHECK(g.client_fd >= 0 && g.server_fd >= 0 && g.client_fd != g.server_fd);
    CHECK(close_conn_fds(&g));
    CHECK_STR(g.tried[2], v.server);
    CHECK_U64(g.deadline_ms, 0xfffffffffffffffeull);
    CHECK_U64(((const struct sockaddr_in6 *)(const void *)g.peer)->sin6_port, htons(54321));

    /* Connecting: two descriptors as well, no prefix, nothing pending. */
    v.phase = HANDOFF_PHASE_CONNECTING;
    v.flags = 0;
    v.prefix = NULL;
    v.prefixlen = 0;
    v.up.pending = v.down.pending = NULL;
    v.up.npending = v.down.npending = 0;
    v.locallen = 0;
    v.ntried = HANDOFF_CONN_TRIED_MAX;   /* the most that can be tried */
    for (uint32_t i = 0; i < v.ntried; i++)
        snprintf(v.tried[i], sizeof(v.tried[i]), "server-%u", (unsigned)i);
    CHECK(conn_roundtrip(&v, &g, why, sizeof(why)) == 0);
    CHECK(g.up.npending == 0 && g.down.npending == 0 && g.prefixlen == 0 && g.locallen == 0);
    CHECK(close_conn_fds(&g));

    /* A setup phase before any server: the client socket alone. */
    fill_conn(&v, fd, -1);
    v.phase = HANDOFF_PHASE_PROXY_HEADER;
    v.server[0] = v.backend[0] = '\0';
    v.ntried = 0;
    v.down.npending = 0;
    CHECK(conn_roundtrip(&v, &g, why, sizeof(why)) == 0);
    CHECK(g.client_fd >= 0 && g.server_fd == -1);
    CHECK(close_conn_fds(&g));
    v.phase = HANDOFF_PHASE_CLIENT_HELLO;
    v.up.npending = HANDOFF_PENDING_MAX;   /* the largest pending */
    v.up.pending = calloc(1, HANDOFF_PENDING_MAX);
    CHECK(conn_roundtrip(&v, &g, why, sizeof(why)) == 0);
    CHECK(close_conn_fds(&g));
    free((void *)v.up.pending);

    test_close_fd(fd);
    test_close_fd(fd2);
}

/* Encodes v as given (the encoder does not check the phase) and decodes it
 * with `nfds` descriptors; returns the decoder's result. */
static int conn_decode_with(const struct handoff_conn *v, unsigned nfds, int lost, char *why,
                            size_t n)
{
    static struct handoff_conn g;
    struct handoff_msg m;
    struct handoff_in in;
    int r;

    if (handoff_encode_conn(&m, 1, v) != 0) {
        snprintf(why, n, "encoder refused");
        return -3;
    }
    make_in(&in, HANDOFF_CONN, m.buf + HANDOFF_HDR_LEN, m.len - HANDOFF_HDR_LEN, nfds);
    in.fds_lost = lost;
    if (lost)
        for (unsigned i = 0; i < in.nfds; i++) {
            test_close_fd(in.fds[i]);
            in.fds[i] = -1;
        }
    why[0] = '\0';
    r = handoff_decode_conn(&in, &g, why, n);
    if (r == 0) {
        CHECK(close_conn_fds(&g));
    } else {
        /* A refused CONN hands out nothing and leaves its descriptors to be closed. */
        CHECK(g.client_fd == -1 && g.server_fd == -1);
        for (unsigned i = 0; !lost && i < nfds; i++)
            CHECK(in.fds[i] >= 0);
    }
    handoff_in_free(&in);
    handoff_msg_free(&m);
    return r;
}

static void test_conn_refused(void)
{
    static struct handoff_conn v;
    struct handoff_msg m;
    char why[256];
    int fd = devnull();

    fill_conn(&v, fd, fd);
    CHECK(conn_decode_with(&v, 2, 0, why, sizeof(why)) == 0);

    /* Descriptor count against the phase. */
    CHECK(conn_decode_with(&v, 1, 0, why, sizeof(why)) == -1);
    CHECK_WHY(why, "CONN: phase 1 with 1 descriptor(s)");
    v.phase = HANDOFF_PHASE_CONNECTING;
    CHECK(conn_decode_with(&v, 1, 0, why, sizeof(why)) == -1);
    CHECK_WHY(why, "CONN: phase 4 with 1 descriptor(s)");
    v.phase = HANDOFF_PHASE_PROXY_HEADER;
    CHECK(conn_decode_with(&v, 2, 0, why, sizeof(why)) == -1);
    CHECK_WHY(why, "CONN: phase 2 with 2 descriptor(s)");
    CHECK(conn_decode_with(&v, 1, 0, why, sizeof(why)) == 0);
    v.phase = HANDOFF_PHASE_CLIENT_HELLO;
    CHECK(conn_decode_with(&v, 2, 0, why, sizeof(why)) == -1);
    CHECK_WHY(why, "CONN: phase 3 with 2 descriptor(s)");
    CHECK(conn_decode_with(&v, 1, 0, why, sizeof(why)) == 0);
    CHECK(conn_decode_with(&v, 0, 0, why, sizeof(why)) == -1);
    CHECK_WHY(why, "CONN: expected 1 descriptor, got 0");
    CHECK(conn_decode_with(&v, 3, 0, why, sizeof(why)) == -1);
    CHECK_WHY(why, "CONN: expected 1 descriptor, got 3");

    /* Unknown phases. */
    v.phase = 0;
    CHECK(conn_decode_with(&v, 2, 0, why, sizeof(why)) == -1);
    CHECK_WHY(why, "CONN: unknown phase 0");
    v.phase = HANDOFF_PHASE_MAX + 1;
    CHECK(conn_decode_with(&v, 1, 0, why, sizeof(why)) == -1);
    CHECK_WHY(why, "CONN: unknown phase 7");
    v.phase = 0xffffffffu;
    CHECK(conn_decode_with(&v, 2, 0, why, sizeof(why)) == -1);
    CHECK_WHY(why, "unknown phase 4294967295");

    /* Sockets that did not arrive; no client address. */
    fill_conn(&v, fd, fd);
    CHECK(conn_decode_with(&v, 2, 1, why, sizeof(why)) == -1);
    CHECK_WHY(why, "CONN: its sockets did not arrive (out of file descriptors)");
    v.peerlen = 0;
    CHECK(conn_decode_with(&v, 2, 0, why, sizeof(why)) == -1);
    CHECK_WHY(why, "CONN: no client address");

    /* Too many servers tried: the encoder refuses, and so does the decoder. */
    fill_conn(&v, fd, fd);
    v.ntried = HANDOFF_CONN_TRIED_MAX + 1;
    CHECK(handoff_encode_conn(&m, 1, &v) == -1);
    handoff_msg_free(&m);
    {
        /* The valid message with its u32 ntried (after the fixed fields,
         * sockaddrs and three names) patched to 18. */
        size_t off = 6 * 4 + 3 * 8 + 4 + v.peerlen + 4 + v.locallen +
                     2 + strlen(v.listener) + 2 + strlen(v.backend) + 2 + strlen(v.server);
        struct handoff_in in;
        static struct handoff_conn g;

        v.ntried = 3;
        CHECK(handoff_encode_conn(&m, 1, &v) == 0);
        CHECK_U64(m.buf[HANDOFF_HDR_LEN + off + 3], 3);
        m.buf[HANDOFF_HDR_LEN + off + 3] = HANDOFF_CONN_TRIED_MAX + 1;
        make_in(&in, HANDOFF_CONN, m.buf + HANDOFF_HDR_LEN, m.len - HANDOFF_HDR_LEN, 2);
        CHECK(handoff_decode_conn(&in, &g, why, sizeof(why)) == -1);
        CHECK_WHY(why, "CONN: 18 tried servers (max 17)");
        handoff_in_free(&in);
        handoff_msg_free(&m);
    }

    /* The encoder refuses what no receiver takes. */
    fill_conn(&v, -1, fd);
    CHECK(handoff_encode_conn(&m, 1, &v) == -1);
    handoff_msg_free(&m);
    fill_conn(&v, fd, fd);
    v.peerlen = HANDOFF_SOCKADDR_MAX + 1;
    CHECK(handoff_encode_conn(&m, 1, &v) == -1);
    handoff_msg_free(&m);
    fill_conn(&v, fd, fd);
    v.down.npending = HANDOFF_PENDING_MAX + 1;
    CHECK(handoff_encode_conn(&m, 1, &v) == -1);
    handoff_msg_free(&m);
    fill_conn(&v, fd, fd);
    memset(v.sni, 'x', sizeof(v.sni));   /* unterminated */
    CHECK(handoff_encode_conn(&m, 1, &v) == -1);
    handoff_msg_free(&m);
    fill_conn(&v, fd, fd);
    memset(v.tried[1], 'x', sizeof(v.tried[1]));
    CHECK(handoff_encode_conn(&m, 1, &v) == -1);
    handoff_msg_free(&m);

    /* Truncations name the field. */
    fill_conn(&v, fd, fd);
    CHECK(handoff_encode_conn(&m, 1, &v) == 0);
    {
        struct handoff_in in;
        static struct handoff_conn g;

        make_in(&in, HANDOFF_CONN, m.buf + HANDOFF_HDR_LEN, 3, 2);
        CHECK(handoff_decode_conn(&in, &g, why, sizeof(why)) == -1);
        CHECK_WHY(why, "CONN: id missing (payload truncated)");
        handoff_in_free(&in);
        make_in(&in, HANDOFF_CONN, m.buf + HANDOFF_HDR_LEN, m.len - HANDOFF_HDR_LEN - 1, 2);
        CHECK(handoff_decode_conn(&in, &g, why, sizeof(why)) == -1);
        CHECK_WHY(why, "CONN: prefix truncated: declares 18 bytes, 17 present");
        handoff_in_free(&in);
    }
    handoff_msg_free(&m);
    test_close_fd(fd);
}

/* A raw CONN_ACK (with results) or CONN_RELEASE payload of n entries. */
static void raw_list(struct handoff_in *in, uint16_t type, uint32_t n, uint32_t result)
{
    struct handoff_msg m;

    CHECK(handoff_msg_init(&m, type, 1) == 0);
    if (type == HANDOFF_CONN_ACK)
        handoff_msg_put_u32(&m, 5);   /* credits */
    handoff_msg_put_u32(&m, n);
    for (uint32_t i = 0; i < n; i++) {
        handoff_msg_put_u32(&m, i);
        if (type == HANDOFF_CONN_ACK)
            handoff_msg_put_u32(&m, i + 1 == n ? result : HANDOFF_CONN_ADOPTED);
    }
    CHECK(handoff_msg_finish(&m) == 0);
    CHECK(to_in(&m, in) == 0);
    handoff_msg_free(&m);
}

static void test_conn_lists(void)
{
    static struct handoff_conn_ack ack, ga;
    static struct handoff_conn_release rel, gr;
    struct handoff_conn_done done = { 0xfedcba98u }, gd;
    struct handoff_msg m;
    struct handoff_in in;
    char why[256];

    /* The most entries one message holds come back in order. */
    ack.credits = 0xffffffffu;
    ack.n = HANDOFF_ACK_MAX;
    rel.n = HANDOFF_ACK_MAX;
    for (uint32_t i = 0; i < HANDOFF_ACK_MAX; i++) {
        ack.results[i].id = 0x10000u + i;
        ack.results[i].result = i % 3 == 0 ? HANDOFF_CONN_REFUSED : HANDOFF_CONN_ADOPTED;
        rel.ids[i] = 0xffffffffu - i;
    }
    CHECK(handoff_encode_conn_ack(&m, 1, &ack) == 0);
    CHECK(to_in(&m, &in) == 0);
    CHECK(handoff_decode_conn_ack(&in, &ga, why, sizeof(why)) == 0);
    CHECK_U64(ga.credits, 0xffffffffu);
    CHECK_U64(ga.n, HANDOFF_ACK_MAX);
    CHECK(memcmp(ga.results, ack.results, sizeof(ack.results)) == 0);
    handoff_in_free(&in);
    handoff_msg_free(&m);
    CHECK(handoff_encode_conn_release(&m, 1, &rel) == 0);
    CHECK(to_in(&m, &in) == 0);
    CHECK(handoff_decode_conn_release(&in, &gr, why, sizeof(why)) == 0);
    CHECK_U64(gr.n, HANDOFF_ACK_MAX);
    CHECK(memcmp(gr.ids, rel.ids, sizeof(rel.ids)) == 0);
    handoff_in_free(&in);
    handoff_msg_free(&m);
    CHECK(handoff_encode_conn_done(&m, 1, &done) == 0);
    CHECK(to_in(&m, &in) == 0);
    CHECK(handoff_decode_conn_done(&in, &gd, why, sizeof(why)) == 0);
    CHECK_U64(gd.sent, 0xfedcba98u);
    handoff_in_free(&in);
    handoff_msg_free(&m);

    /* One more is refused both ways. */
    ack.n = rel.n = HANDOFF_ACK_MAX + 1;
    CHECK(handoff_encode_conn_ack(&m, 1, &ack) == -1);
    handoff_msg_free(&m);
    CHECK(handoff_encode_conn_release(&m, 1, &rel) == -1);
    handoff_msg_free(&m);
    raw_list(&in, HANDOFF_CONN_ACK, HANDOFF_ACK_MAX + 1, HANDOFF_CONN_ADOPTED);
    CHECK(handoff_decode_conn_ack(&in, &ga, why, sizeof(why)) == -1);
    CHECK_WHY(why, "CONN_ACK: 4097 results (max 4096)");
    CHECK_U64(ga.n, 0);
    handoff_in_free(&in);
    raw_list(&in, HANDOFF_CONN_RELEASE, HANDOFF_ACK_MAX + 1, 0);
    CHECK(handoff_decode_conn_release(&in, &gr, why, sizeof(why)) == -1);
    CHECK_WHY(why, "CONN_RELEASE: 4097 ids (max 4096)");
    CHECK_U64(gr.n, 0);
    handoff_in_free(&in);

    /* A result the taker cannot have given. */
    raw_list(&in, HANDOFF_CONN_ACK, 4, HANDOFF_CONN_REFUSED);
    CHECK(handoff_decode_conn_ack(&in, &ga, why, sizeof(why)) == 0);
    CHECK_U64(ga.n, 4);
    CHECK_U64(ga.results[3].result, HANDOFF_CONN_REFUSED);
    handoff_in_free(&in);
    raw_list(&in, HANDOFF_CONN_ACK, 4, HANDOFF_CONN_REFUSED + 1);
    CHECK(handoff_decode_conn_ack(&in, &ga, why, sizeof(why)) == -1);
    CHECK_WHY(why, "CONN_ACK: result 2 for connection 3");
    CHECK_U64(ga.n, 0);
    handoff_in_free(&in);
    raw_list(&in, HANDOFF_CONN_ACK, 1, 0xffffffffu);
    CHECK(handoff_decode_conn_ack(&in, &ga, why, sizeof(why)) == -1);
    CHECK_WHY(why, "result 4294967295 for connection 0");
    handoff_in_free(&in);

    /* Entries announced but missing. */
    raw_list(&in, HANDOFF_CONN_RELEASE, 3, 0);
    in.hdr.len -= 4;
    CHECK(handoff_decode_conn_release(&in, &gr, why, sizeof(why)) == -1);
    CHECK_WHY(why, "CONN_RELEASE: id missing (payload truncated)");
    handoff_in_free(&in);
}

/* A LINK payload: role, peer generation, index, count. */
static void raw_link(struct handoff_in *in, uint32_t role, uint32_t index, uint32_t count)
{
    uint8_t p[16];
    uint32_t f[4] = { role, 5, index, count };

    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 4; k++)
            p[4 * i + k] = (uint8_t)(f[i] >> (24 - 8 * k));
    make_in(in, HANDOFF_LINK, p, sizeof(p), 1);
}

static void test_link(void)
{
    struct handoff_link v = { HANDOFF_LINK_TAKE, 0xfffffff0u, 4095, 4096, -1, HANDOFF_CAP_TLS, 0 },
                            g;
    struct handoff_msg m;
    struct handoff_in in;
    char why[256];
    int fd = devnull();

    v.fd = fd;
    v.peer_pid = 4242;
    CHECK(handoff_encode_link(&m, 1, &v) == 0);
    CHECK(to_in(&m, &in) == 0);
    CHECK(handoff_decode_link(&in, &g, why, sizeof(why)) == 0);
    CHECK(g.role == v.role && g.peer_gen == v.peer_gen && g.index == 4095 && g.count == 4096);
    CHECK(g.peer_caps == HANDOFF_CAP_TLS);
    /* Windows' transport duplicates the connections for this pid. */
    CHECK(g.peer_pid == 4242);
    CHECK(g.fd >= 0 && g.fd != fd && in.fds[0] == -1);
    test_close_fd(g.fd);
    handoff_in_free(&in);
    handoff_msg_free(&m);

    /* A LINK from the first live-handoff release has no capabilities. */
    raw_link(&in, HANDOFF_LINK_GIVE, 0, 1);
    CHECK(handoff_decode_link(&in, &g, why, sizeof(why)) == 0);
    CHECK(g.peer_caps == 0 && g.peer_pid == 0);
    test_close_fd(g.fd);
    handoff_in_free(&in);
    raw_link(&in, HANDOFF_LINK_GIVE, 3, 3);
    CHECK(handoff_decode_link(&in, &g, why, sizeof(why)) == -1);
    CHECK_WHY(why, "LINK: link 3 of 3 (expected 1 to 4096 links)");
    CHECK(g.fd == -1 && in.fds[0] >= 0);
    handoff_in_free(&in);
    raw_link(&in, HANDOFF_LINK_GIVE, 0xffffffffu, 2);
    CHECK(handoff_decode_link(&in, &g, why, sizeof(why)) == -1);
    CHECK_WHY(why, "link 4294967295 of 2");
    handoff_in_free(&in);
    raw_link(&in, HANDOFF_LINK_TAKE, 0, 0);
    CHECK(handoff_decode_link(&in, &g, why, sizeof(why)) == -1);
    CHECK_WHY(why, "link 0 of 0");
    handoff_in_free(&in);
    raw_link(&in, HANDOFF_LINK_TAKE, 0, 4097);
    CHECK(handoff_decode_link(&in, &g, why, sizeof(why)) == -1);
    CHECK_WHY(why, "link 0 of 4097");
    handoff_in_free(&in);
    raw_link(&in, 3, 0, 1);
    CHECK(handoff_decode_link(&in, &g, why, sizeof(why)) == -1);
    CHECK_WHY(why, "LINK: role 3 (expected 1 give or 2 take)");
    handoff_in_free(&in);
    raw_link(&in, HANDOFF_LINK_GIVE, 0, 1);
    in.nfds = 0;   /* make_in's descriptor, not counted: closed here */
    test_close_fd(in.fds[0]);
    in.fds[0] = -1;
    CHECK(handoff_decode_link(&in, &g, why, sizeof(why)) == -1);
    CHECK_WHY(why, "LINK: expected 1 descriptor, got 0");
    handoff_in_free(&in);

    v.role = 0;
    CHECK(handoff_encode_link(&m, 1, &v) == -1);
    handoff_msg_free(&m);
    v.role = HANDOFF_LINK_GIVE;
    v.fd = -1;
    CHECK(handoff_encode_link(&m, 1, &v) == -1);
    handoff_msg_free(&m);
    test_close_fd(fd);
}

/* Each message of the handoff may end in extensions: an unknown one is
 * skipped, one that must be understood is refused. */
static void test_conn_extensions(void)
{
    static const uint16_t types[] = { HANDOFF_LINK, HANDOFF_CONN, HANDOFF_CONN_ACK,
                                      HANDOFF_CONN_RELEASE, HANDOFF_CONN_DONE };
    struct handoff_msg m, x;
    struct handoff_in in;
    char why[256];
    int fd = devnull();

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        uint16_t t = types[i];
        size_t len, body;

        for (int must = 0; must < 2; must++) {
            /* The valid message, then two extensions: a known-to-nobody
             * one that may be skipped, then tag 999 (flags per `must`). */
            CHECK(build(&m, t, fd) == 0);
            len = m.len - HANDOFF_HDR_LEN;
            CHECK(handoff_msg_init(&x, t, 1) == 0);
            for (size_t k = 0; k < len; k++)
                handoff_msg_put_u8(&x, m.buf[HANDOFF_HDR_LEN + k]);
            body = handoff_ext_begin(&x, 0x7777, 0);
            handoff_msg_put_u64(&x, 42);
            handoff_ext_end(&x, body);
            body = handoff_ext_begin(&x, 999, must ? HANDOFF_EXT_MUST_UNDERSTAND : 0x8000);
            handoff_msg_put_str(&x, "later");
            handoff_ext_end(&x, body);
            CHECK(handoff_msg_finish(&x) == 0);
            make_in(&in, t, x.buf + HANDOFF_HDR_LEN, x.len - HANDOFF_HDR_LEN, type_nfds(t));
            why[0] = '\0';
            if (must) {
                CHECK(decode_any(&in, 0, why, sizeof(why)) == -1);
                CHECK_WHY(why, handoff_type_name(t));
                CHECK_WHY(why, "extension 999 must be understood");
            } else {
                CHECK(decode_any(&in, 0, why, sizeof(why)) == 0);
                if (why[0] != '\0')
                    fprintf(stderr, "    %s\n", why);
            }
            handoff_in_free(&in);
            handoff_msg_free(&x);
            handoff_msg_free(&m);
        }
    }
    test_close_fd(fd);
}

/* ---- MASTER_STATE and its extensions ---------------------------------- */

static struct handoff_master_state ms_in, ms_out;

static void fill_master_state(struct handoff_master_state *st, int with_exts)
{
    static const char text[] = "[global]\n";

    memset(st, 0, sizeof(*st));
    st->start_ms = 12345;
    st->last_gen = 7;
    st->ctl_fd = 3;
    st->reply_fd = -1;
    snprintf(st->path, sizeof(st->path), "/etc/baton/baton.ini");
    st->text = (const uint8_t *)text;
    st->textlen = (uint32_t)strlen(text);
    st->ngens = 2;
    st->gens[0].id = 7;
    st->gens[0].pid = 100;
    st->gens[0].fd = 5;
    st->gens[1].id = 6;
    st->gens[1].pid = 99;
    st->gens[1].state = 2;
    st->gens[1].fd = 6;
    st->image_fd = -1;
    if (with_exts) {
        snprintf(st->exe, sizeof(st->exe), "/usr/sbin/baton");
        st->image_fd = 9;
        st->gens[1].drain_deadline_ms = 987654321;
    }
}

/* Decodes m's payload followed by `extra` bytes as a MASTER_STATE. */
static int decode_state_plus(const struct handoff_msg *m, const uint8_t *extra, size_t nextra,
                             char *why, size_t n)
{
    size_t len = m->len - HANDOFF_HDR_LEN;
    uint8_t *p = malloc(len + nextra + 1);
    struct handoff_in in;
    int r;

    memcpy(p, m->buf + HANDOFF_HDR_LEN, len);
    if (nextra > 0)
        memcpy(p + len, extra, nextra);
    make_in(&in, HANDOFF_MASTER_STATE, p, len + nextra, 0);
    r = handoff_decode_master_state(&in, &ms_out, why, n);
    handoff_in_free(&in);
    free(p);
    return r;
}

static void test_master_state(void)
{
    /* tag 999, flags 0 (may be skipped), 3-byte body */
    static const uint8_t unknown[] = { 0x03, 0xe7, 0, 0, 0, 0, 0, 3, 'x', 'y', 'z' };
    /* tag 999 that must be understood */
    static const uint8_t critical[] = { 0x03, 0xe7, 0, 1, 0, 0, 0, 0 };
    /* a known tag (image fd) with a byte too many */
    static const uint8_t long_fd[] = { 0, 2, 0, 0, 0, 0, 0, 5, 0, 0, 0, 4, 0 };
    /* drain deadline for a generation that is not carried */
    static const uint8_t stray[] = { 0, 3, 0, 0, 0, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0, 42,
                                     0, 0, 0, 0, 0, 0, 0, 1 };
    struct handoff_msg m;
    char why[256];

    /* Everything carried, extensions included. */
    fill_master_state(&ms_in, 1);
    CHECK(handoff_encode_master_state(&m, 1, &ms_in) == 0);
    CHECK(decode_state_plus(&m, NULL, 0, why, sizeof(why)) == 0);
    CHECK_STR(ms_out.exe, "/usr/sbin/baton");
    CHECK_U64(ms_out.image_fd, 9);
    CHECK_U64(ms_out.ngens, 2);
    CHECK_U64(ms_out.gens[0].drain_deadline_ms, 0);
    CHECK_U64(ms_out.gens[1].drain_deadline_ms, 987654321);
    CHECK_STR(ms_out.path, "/etc/baton/baton.ini");
    /* A newer sender's extension this reader does not know is skipped... */
    CHECK(decode_state_plus(&m, unknown, sizeof(unknown), why, sizeof(why)) == 0);
    CHECK_U64(ms_out.image_fd, 9);
    /* ...unless it must be understood. */
    CHECK(decode_state_plus(&m, critical, sizeof(critical), why, sizeof(why)) == -1);
    CHECK_WHY(why, "extension 999 must be understood");
    /* A truncated extension header. */
    CHECK(decode_state_plus(&m, critical, 3, why, sizeof(why)) == -1);
    CHECK_WHY(why, "extension flags missing");
    handoff_msg_free(&m);

    /* A state from a release without extensions: nothing carried. */
    fill_master_state(&ms_in, 0);
    CHECK(handoff_encode_master_state(&m, 1, &ms_in) == 0);
    CHECK(decode_state_plus(&m, NULL, 0, why, sizeof(why)) == 0);
    CHECK_STR(ms_out.exe, "");
    CHECK_U64(ms_out.image_fd, (uint64_t)(int64_t)-1);
    CHECK_U64(ms_out.gens[1].drain_deadline_ms, 0);
    /* A known extension keeps its layout: extra bytes inside it are refused. */
    CHECK(decode_state_plus(&m, long_fd, sizeof(long_fd), why, sizeof(why)) == -1);
    CHECK_WHY(why, "extension 2: 1 unexpected bytes");
    CHECK(decode_state_plus(&m, stray, sizeof(stray), why, sizeof(why)) == -1);
    CHECK_WHY(why, "generation 42, which is not carried");
    handoff_msg_free(&m);
}

/* ---- capabilities: what an older peer gets and sends ------------------- */

/* STATUS exactly as the first release encoded it (no capabilities). */
static void legacy_status(struct handoff_msg *m, const struct handoff_status *st)
{
    handoff_msg_init(m, HANDOFF_STATUS, 9);
    handoff_msg_put_u32(m, st->id);
    handoff_msg_put_u32(m, st->pid);
    handoff_msg_put_u64(m, st->active);
    handoff_msg_put_u64(m, st->total);
    handoff_msg_put_u64(m, st->bytes_in);
    handoff_msg_put_u64(m, st->bytes_out);
    handoff_msg_put_u32(m, st->nlisteners);
    for (uint32_t i = 0; i < st->nlisteners; i++) {
        handoff_msg_put_str(m, st->listeners[i].name);
        handoff_msg_put_u64(m, st->listeners[i].active);
        handoff_msg_put_u64(m, st->listeners[i].total);
    }
    handoff_msg_put_u64(m, st->tls_failures);
    handoff_msg_put_u32(m, st->servers.nservers);
    for (uint32_t i = 0; i < st->servers.nservers; i++) {
        const struct handoff_server_health *h = &st->servers.servers[i];

        handoff_msg_put_str(m, h->backend);
        handoff_msg_put_str(m, h->server);
        handoff_msg_put_u32(m, h->down);
        handoff_msg_put_u64(m, h->active);
        handoff_msg_put_u64(m, h->total);
        handoff_msg_put_u64(m, h->failures);
    }
    handoff_msg_finish(m);
}

static void test_capabilities(void)
{
    static struct handoff_status st, got;
    struct handoff_hello h = { .pid = 7, .version = "0.2.0" }, hg;
    struct handoff_msg m, legacy;
    struct handoff_in in;
    char why[256];

    /* HELLO without an offer is the first release's HELLO, byte for byte. */
    CHECK(handoff_encode_hello(&m, 1, &h) == 0);
    CHECK_U64(m.len, HANDOFF_HDR_LEN + 4 + 2 + strlen("0.2.0"));
    CHECK(to_in(&m, &in) == 0);
    CHECK(handoff_decode_hello(&in, &hg, why, sizeof(why)) == 0);
    CHECK(!hg.has_caps);
    handoff_in_free(&in);
    handoff_msg_free(&m);
    /* Answering an offer, it carries the worker's capabilities. */
    h.has_caps = 1;
    h.caps = HANDOFF_CAPS_OURS | 0x80000000u;
    CHECK(handoff_encode_hello(&m, 1, &h) == 0);
    CHECK(to_in(&m, &in) == 0);
    CHECK(handoff_decode_hello(&in, &hg, why, sizeof(why)) == 0);
    CHECK(hg.has_caps);
    CHECK_U64(hg.caps, HANDOFF_CAPS_OURS | 0x80000000u);
    CHECK_STR(hg.version, "0.2.0");
    CHECK_U64(hg.unknown_exts, 0);
    handoff_in_free(&in);
    handoff_msg_free(&m);
    /* A newer worker's extensions are skipped and counted (the receiver
     * says so); one it must understand is refused. */
    CHECK(handoff_encode_hello(&m, 1, &h) == 0);
    for (uint16_t tag = 0x7e57; tag < 0x7e5a; tag++) {
        handoff_msg_put_u16(&m, tag);
        handoff_msg_put_u16(&m, 0x8000);   /* reserved extension flag */
        handoff_msg_put_bytes(&m, "newer", 5);
    }
    CHECK(handoff_msg_finish(&m) == 0);
    CHECK(to_in(&m, &in) == 0);
    CHECK(handoff_decode_hello(&in, &hg, why, sizeof(why)) == 0);
    CHECK(hg.has_caps);
    CHECK_U64(hg.unknown_exts, 3);
    CHECK_U64(hg.unknown_tag, 0x7e57);
    handoff_in_free(&in);
    handoff_msg_put_u16(&m, 0x7e60);
    handoff_msg_put_u16(&m, 0x0001);       /* must be understood */
    handoff_msg_put_bytes(&m, "", 0);
    CHECK(handoff_msg_finish(&m) == 0);
    CHECK(to_in(&m, &in) == 0);
    CHECK(handoff_decode_hello(&in, &hg, why, sizeof(why)) == -1);
    CHECK_WHY(why, "extension 32352 must be understood");
    handoff_in_free(&in);
    handoff_msg_free(&m);

    /* Without capabilities STATUS is the first release's layout... */
    fill_status(&st, 3, 5);
    legacy_status(&legacy, &st);
    CHECK(handoff_status_parts(&st, 0) == 1);
    CHECK(handoff_encode_status(&m, 9, &st, 0, 0) == 0);
    CHECK_U64(m.len, legacy.len);
    CHECK(m.len == legacy.len && memcmp(m.buf, legacy.buf, m.len) == 0);
    handoff_msg_free(&m);
    /* ...and what a first-release worker sends is read whole. */
    CHECK(to_in(&legacy, &in) == 0);
    CHECK(handoff_decode_status(&in, &got, 0, why, sizeof(why)) == 0);
    CHECK(handoff_status_complete(&got));
    CHECK_U64(got.nlisteners, 3);
    CHECK_U64(got.servers.nservers, 5);
    CHECK_U64(got.tls_failures, 77);
    CHECK_STR(got.listeners[2].name, "listener-2");
    handoff_in_free(&in);
    handoff_msg_free(&legacy);
    handoff_status_free(&got);
    handoff_status_free(&st);

    /* An older peer gets as much as it can hold: the first 256 listeners
     * and 1,024 servers, in one message it accepts. */
    fill_status(&st, 300, 1100);
    CHECK(handoff_status_parts(&st, 0) == 1);
    CHECK(handoff_encode_status(&m, 9, &st, 0, 0) == 0);
    CHECK(to_in(&m, &in) == 0);
    CHECK(handoff_decode_status(&in, &got, 0, why, sizeof(why)) == 0);
    CHECK(handoff_status_complete(&got));
    CHECK_U64(got.nlisteners, HANDOFF_LEGACY_LISTENERS);
    CHECK_U64(got.servers.nservers, HANDOFF_LEGACY_SERVERS);
    handoff_in_free(&in);
    handoff_msg_free(&m);
    handoff_status_free(&got);
    CHECK(handoff_server_state_parts(&st.servers, 0) == 1);
    CHECK(handoff_encode_server_state(&m, 3, &st.servers, 0, 0) == 0);
    CHECK_U64(m.len > HANDOFF_HDR_LEN + 4 ? (m.buf[HANDOFF_HDR_LEN + 2] << 8 |
                                             m.buf[HANDOFF_HDR_LEN + 3]) : 0,
              HANDOFF_LEGACY_SERVERS);
    CHECK(to_in(&m, &in) == 0);
    CHECK(handoff_decode_server_state(&in, &got.servers, 0, why, sizeof(why)) == 0);
    CHECK(handoff_server_state_complete(&got.servers));
    CHECK_U64(got.servers.nservers, HANDOFF_LEGACY_SERVERS);
    handoff_in_free(&in);
    handoff_msg_free(&m);
    handoff_status_free(&got);
    /* More than it could hold is refused by an older reader, as before. */
    legacy_status(&legacy, &st);
    CHECK(to_in(&legacy, &in) == 0);
    CHECK(handoff_decode_status(&in, &got, 0, why, sizeof(why)) == -1);
    CHECK_WHY(why, "300 listeners (max 256)");
    handoff_in_free(&in);
    handoff_msg_free(&legacy);
    handoff_status_free(&st);
}

int main(int argc, char **argv)
{
    int fds_before = test_count_fds();

    test_hdr_roundtrip();
    test_hdr_reject();
    test_hdr_unknown();
    test_builder_flags();
    test_type_names();
    test_builder_getters();
    test_builder_limits();
    test_roundtrip();
    test_truncated();
    test_trailing();
    test_bad_fields();
    test_parts();
    test_wrong_fds_and_types();
    test_garbage();
    test_conn_roundtrip();
    test_conn_refused();
    test_conn_lists();
    test_link();
    test_conn_extensions();
    test_master_state();
    test_capabilities();

    CHECK(fds_before >= 0);   /* counted (Windows: sockets, none yet) */
    CHECK_U64(test_count_fds(), fds_before);
    return test_summary("test_wire");
}
