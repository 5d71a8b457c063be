/*
 * wire.c - handoff header encoding, the message builder and the
 * bounds-checked payload getters.
 */
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes of header plus payload a message may hold. */
#define MSG_LIMIT ((size_t)HANDOFF_HDR_LEN + HANDOFF_MAX_PAYLOAD)

static const char *const type_names[] = {
    [HANDOFF_HELLO] = "HELLO",
    [HANDOFF_CONFIG] = "CONFIG",
    [HANDOFF_LISTENER] = "LISTENER",
    [HANDOFF_START] = "START",
    [HANDOFF_READY] = "READY",
    [HANDOFF_FAILED] = "FAILED",
    [HANDOFF_STOP_ACCEPTING] = "STOP_ACCEPTING",
    [HANDOFF_DRAIN] = "DRAIN",
    [HANDOFF_STATUS_REQ] = "STATUS_REQ",
    [HANDOFF_STATUS] = "STATUS",
    [HANDOFF_RESUME_ACCEPTING] = "RESUME_ACCEPTING",
    [HANDOFF_MASTER_STATE] = "MASTER_STATE",
    [HANDOFF_TICKET_KEYS] = "TICKET_KEYS",
    [HANDOFF_SERVER_STATE] = "SERVER_STATE",
    [HANDOFF_CONN] = "CONN",
    [HANDOFF_CONN_DONE] = "CONN_DONE",
    [HANDOFF_CONN_ACK] = "CONN_ACK",
    [HANDOFF_LINK] = "LINK",
    [HANDOFF_CONN_RELEASE] = "CONN_RELEASE",
    [HANDOFF_HANDLE_ACK] = "HANDLE_ACK",
};

static void be16_put(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint16_t be16_get(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t be32_get(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

const char *handoff_type_name(uint16_t type)
{
    if (type < sizeof(type_names) / sizeof(type_names[0]) && type_names[type] != NULL)
        return type_names[type];
    return "UNKNOWN";
}

int handoff_type_known(uint16_t type)
{
    return (type >= HANDOFF_HELLO && type <= HANDOFF_RESUME_ACCEPTING) ||
           (type >= HANDOFF_MASTER_STATE && type <= HANDOFF_SERVER_STATE) ||
           (type >= HANDOFF_CONN && type <= HANDOFF_CONN_RELEASE) ||
           type == HANDOFF_HANDLE_ACK;
}

void handoff_hdr_encode(const struct handoff_hdr *h, uint8_t out[HANDOFF_HDR_LEN])
{
    be16_put(out, h->magic);
    out[2] = h->version;
    out[3] = h->nfds;
    be16_put(out + 4, h->type);
    be16_put(out + 6, h->flags);
    be32_put(out + 8, h->seq);
    be32_put(out + 12, h->len);
}

/* A type's name, or its number when this binary does not know it. */
static const char *type_label(uint16_t type, char *buf, size_t n)
{
    if (handoff_type_known(type))
        return handoff_type_name(type);
    snprintf(buf, n, "message type %u", (unsigned)type);
    return buf;
}

int handoff_hdr_decode(const uint8_t in[HANDOFF_HDR_LEN], struct handoff_hdr *h,
                       char *why, size_t whylen)
{
    char label[32];

    h->magic = be16_get(in);
    h->version = in[2];
    h->nfds = in[3];
    h->type = be16_get(in + 4);
    h->flags = be16_get(in + 6);
    h->seq = be32_get(in + 8);
    h->len = be32_get(in + 12);

    if (h->magic != HANDOFF_MAGIC)
        snprintf(why, whylen, "bad magic 0x%04x (expected 0x%04x)",
                 (unsigned)h->magic, HANDOFF_MAGIC);
    else if (h->version != HANDOFF_WIRE_VERSION)
        snprintf(why, whylen, "unsupported wire version %u (expected %u)",
                 (unsigned)h->version, HANDOFF_WIRE_VERSION);
    else if (h->nfds > HANDOFF_MAX_FDS)
        snprintf(why, whylen, "%s: %u descriptors attached (max %u)",
                 type_label(h->type, label, sizeof(label)), (unsigned)h->nfds,
                 HANDOFF_MAX_FDS);
    else if (h->len > HANDOFF_MAX_PAYLOAD)
        snprintf(why, whylen, "%s: payload of %u bytes (max %u)",
                 type_label(h->type, label, sizeof(label)), (unsigned)h->len,
                 HANDOFF_MAX_PAYLOAD);
    else
        return 0;
    return -1;
}

/* Building */

int handoff_msg_init(struct handoff_msg *m, uint16_t type, uint32_t seq)
{
    struct handoff_hdr h = { HANDOFF_MAGIC, HANDOFF_WIRE_VERSION, 0, type, 0, seq, 0 };
    unsigned i;

    memset(m, 0, sizeof(*m));
    for (i = 0; i < HANDOFF_MAX_FDS; i++)
        m->fds[i] = -1;
    m->cap = 256;
    if ((m->buf = malloc(m->cap)) == NULL) {
        m->cap = 0;
        m->failed = 1;
        return -1;
    }
    /* The header is written now so finish() can recover type and seq. */
    handoff_hdr_encode(&h, m->buf);
    m->len = HANDOFF_HDR_LEN;
    return 0;
}

void handoff_msg_set_flags(struct handoff_msg *m, uint16_t flags)
{
    if (m->buf == NULL || m->len < HANDOFF_HDR_LEN)
        return;
    flags &= HANDOFF_HDR_FLAGS_DEFINED;
    be16_put(m->buf + 6, flags);
}

/* Makes room for n more bytes; on failure marks the message failed. */
static uint8_t *msg_reserve(struct handoff_msg *m, size_t n)
{
    uint8_t *p;
    size_t cap;

    if (m->failed || m->buf == NULL)
        goto fail;
    if (n > MSG_LIMIT - m->len)
        goto fail;
    if (n > m->cap - m->len) {
        cap = m->cap;
        while (cap - m->len < n)
            cap = cap > MSG_LIMIT / 2 ? MSG_LIMIT : cap * 2;
        if ((p = handoff_resize(m->buf, m->len, cap)) == NULL)
            goto fail;
        m->buf = p;
        m->cap = cap;
    }
    p = m->buf + m->len;
    m->len += n;
    return p;
fail:
    m->failed = 1;
    return NULL;
}

void handoff_msg_put_u8(struct handoff_msg *m, uint8_t v)
{
    uint8_t *p = msg_reserve(m, 1);

    if (p != NULL)
        p[0] = v;
}

void handoff_msg_put_u16(struct handoff_msg *m, uint16_t v)
{
    uint8_t *p = msg_reserve(m, 2);

    if (p != NULL)
        be16_put(p, v);
}

void handoff_msg_put_u32(struct handoff_msg *m, uint32_t v)
{
    uint8_t *p = msg_reserve(m, 4);

    if (p != NULL)
        be32_put(p, v);
}

void handoff_msg_put_u64(struct handoff_msg *m, uint64_t v)
{
    uint8_t *p = msg_reserve(m, 8);

    if (p != NULL) {
        be32_put(p, (uint32_t)(v >> 32));
        be32_put(p + 4, (uint32_t)v);
    }
}

void handoff_msg_put_bytes(struct handoff_msg *m, const void *src, size_t n)
{
    uint8_t *p;

    if (m->failed)
        return;
    if (n > HANDOFF_MAX_PAYLOAD || (src == NULL && n > 0)) {
        m->failed = 1;
        return;
    }
    handoff_msg_put_u32(m, (uint32_t)n);
    /* memcpy from NULL is undefined even for 0 bytes. */
    if (n > 0 && (p = msg_reserve(m, n)) != NULL)
        memcpy(p, src, n);
}

void handoff_msg_put_str(struct handoff_msg *m, const char *s)
{
    uint8_t *p;
    size_t n;

    /* A failed message's strings may be the reason: don't read them. */
    if (m->failed)
        return;
    if (s == NULL || (n = strnlen(s, HANDOFF_STR_MAX + 1)) > HANDOFF_STR_MAX) {
        m->failed = 1;
        return;
    }
    handoff_msg_put_u16(m, (uint16_t)n);
    if (n > 0 && (p = msg_reserve(m, n)) != NULL)
        memcpy(p, s, n);
}

void handoff_msg_add_handle(struct handoff_msg *m, int fd, enum handoff_handle_kind kind)
{
    if (fd < 0 || m->nfds >= HANDOFF_MAX_FDS) {
        m->failed = 1;
        return;
    }
    m->kinds[m->nfds] = (uint8_t)kind;
    m->fds[m->nfds++] = fd;
}

void handoff_msg_add_fd(struct handoff_msg *m, int fd)
{
    handoff_msg_add_handle(m, fd, HANDOFF_H_SOCKET);
}

int handoff_msg_finish(struct handoff_msg *m)
{
    struct handoff_hdr h;

    if (m->failed || m->buf == NULL || m->len < HANDOFF_HDR_LEN || m->len > MSG_LIMIT ||
        m->nfds > HANDOFF_MAX_FDS)
        return -1;
    h.magic = HANDOFF_MAGIC;
    h.version = HANDOFF_WIRE_VERSION;
    h.nfds = (uint8_t)m->nfds;
    h.type = be16_get(m->buf + 4);
    h.flags = be16_get(m->buf + 6);
    h.seq = be32_get(m->buf + 8);
    h.len = (uint32_t)(m->len - HANDOFF_HDR_LEN);
    handoff_hdr_encode(&h, m->buf);
    return 0;
}

void handoff_cleanse(void *p, size_t n)
{
    if (n == 0)
        return;
    memset(p, 0, n);
    /* The barrier makes the compiler assume the zeros are read, so the
     * memset is not dropped as a dead store before free(); a byte loop
     * through a volatile pointer would cost a cycle per byte on every
     * message of a handoff. */
    __asm__ __volatile__("" : : "r"(p) : "memory");
}

void *handoff_resize(void *p, size_t oldlen, size_t newlen)
{
    void *q = malloc(newlen);

    if (q == NULL)
        return NULL;
    if (p != NULL) {
        memcpy(q, p, oldlen < newlen ? oldlen : newlen);
        handoff_cleanse(p, oldlen);
        free(p);
    }
    return q;
}

void handoff_msg_free(struct handoff_msg *m)
{
    if (m->buf != NULL)
        handoff_cleanse(m->buf, m->len);
    free(m->buf);
    m->buf = NULL;
    m->len = m->cap = 0;
    m->nfds = 0;
}

/* Reading */

void handoff_reader_init(struct handoff_reader *r, const void *p, size_t len)
{
    /* Never NULL, so getters can form pointers without null arithmetic. */
    static const uint8_t empty[1];

    r->p = p != NULL ? p : empty;
    r->len = p != NULL ? len : 0;
    r->off = 0;
    r->failed = 0;
}

/* Returns the next n bytes and advances, or NULL (and marks failure). */
static const uint8_t *reader_take(struct handoff_reader *r, size_t n)
{
    const uint8_t *p;

    if (r->failed || r->off > r->len || n > r->len - r->off) {
        r->failed = 1;
        return NULL;
    }
    p = r->p + r->off;
    r->off += n;
    return p;
}

int handoff_get_u8(struct handoff_reader *r, uint8_t *v)
{
    const uint8_t *p = reader_take(r, 1);

    *v = p != NULL ? p[0] : 0;
    return p != NULL ? 0 : -1;
}

int handoff_get_u16(struct handoff_reader *r, uint16_t *v)
{
    const uint8_t *p = reader_take(r, 2);

    *v = p != NULL ? be16_get(p) : 0;
    return p != NULL ? 0 : -1;
}

int handoff_get_u32(struct handoff_reader *r, uint32_t *v)
{
    const uint8_t *p = reader_take(r, 4);

    *v = p != NULL ? be32_get(p) : 0;
    return p != NULL ? 0 : -1;
}

int handoff_get_u64(struct handoff_reader *r, uint64_t *v)
{
    const uint8_t *p = reader_take(r, 8);

    *v = p != NULL ? (uint64_t)be32_get(p) << 32 | be32_get(p + 4) : 0;
    return p != NULL ? 0 : -1;
}

int handoff_get_bytes(struct handoff_reader *r, const uint8_t **p, uint32_t *n, uint32_t max)
{
    uint32_t len;

    *p = NULL;
    *n = 0;
    if (handoff_get_u32(r, &len) == -1)
        return -1;
    if (len > max) {
        r->failed = 1;
        return -1;
    }
    if ((*p = reader_take(r, len)) == NULL)
        return -1;
    *n = len;
    return 0;
}

int handoff_get_str(struct handoff_reader *r, char *buf, size_t buflen)
{
    const uint8_t *p;
    uint16_t len;

    if (buflen > 0)
        buf[0] = '\0';
    if (handoff_get_u16(r, &len) == -1)
        return -1;
    if (len > HANDOFF_STR_MAX || (size_t)len >= buflen) {
        r->failed = 1;
        return -1;
    }
    if ((p = reader_take(r, len)) == NULL)
        return -1;
    if (memchr(p, '\0', len) != NULL) {
        r->failed = 1;
        return -1;
    }
    memcpy(buf, p, len);
    buf[len] = '\0';
    return 0;
}

int handoff_reader_done(const struct handoff_reader *r)
{
    return !r->failed && r->off == r->len ? 0 : -1;
}
