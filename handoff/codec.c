/*
 * codec.c - building blocks of handoff message encoders and decoders
 * (codec.h).
 */
#include "codec.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


void handoff_dec_fail(struct handoff_dec *d, const char *fmt, ...)
{
    char detail[256];
    va_list ap;

    if (d->err)
        return;
    d->err = 1;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    if (d->whylen > 0)
        snprintf(d->why, d->whylen, "%s: %s", d->msg, detail);
}

size_t handoff_dec_left(const struct handoff_dec *d)
{
    return d->r.off <= d->r.len ? d->r.len - d->r.off : 0;
}

/* Checks type and descriptor count, then starts reading the payload. */
int handoff_dec_begin(struct handoff_dec *d, const struct handoff_in *in, uint16_t type,
                     unsigned nfds, char *why, size_t whylen)
{
    memset(d, 0, sizeof(*d));
    d->msg = handoff_type_name(type);
    d->why = why;
    d->whylen = whylen;
    if (in->hdr.type != type)
        handoff_dec_fail(d, "expected a %s message, got %s (type %u)", d->msg,
                 handoff_type_name(in->hdr.type), (unsigned)in->hdr.type);
    else if (in->nfds != nfds)
        handoff_dec_fail(d, "expected %u descriptor%s, got %u", nfds, nfds == 1 ? "" : "s",
                 in->nfds);
    else if (in->hdr.len > HANDOFF_MAX_PAYLOAD)
        handoff_dec_fail(d, "payload of %u bytes (max %u)", (unsigned)in->hdr.len,
                 HANDOFF_MAX_PAYLOAD);
    else if (in->payload == NULL && in->hdr.len > 0)
        handoff_dec_fail(d, "payload of %u bytes is missing", (unsigned)in->hdr.len);
    handoff_reader_init(&d->r, in->payload, in->hdr.len);
    return d->err ? -1 : 0;
}

void handoff_dec_u32(struct handoff_dec *d, const char *field, uint32_t *v)
{
    *v = 0;
    if (!d->err && handoff_get_u32(&d->r, v) == -1)
        handoff_dec_fail(d, "%s missing (payload truncated)", field);
}

void handoff_dec_u16(struct handoff_dec *d, const char *field, uint16_t *v)
{
    *v = 0;
    if (!d->err && handoff_get_u16(&d->r, v) == -1)
        handoff_dec_fail(d, "%s missing (payload truncated)", field);
}

void handoff_dec_u64(struct handoff_dec *d, const char *field, uint64_t *v)
{
    *v = 0;
    if (!d->err && handoff_get_u64(&d->r, v) == -1)
        handoff_dec_fail(d, "%s missing (payload truncated)", field);
}

/* Explains why handoff_get_str refused the string at the current offset. */
static void handoff_dec_str_why(struct handoff_dec *d, const char *field, size_t size)
{
    const uint8_t *p = d->r.p + d->r.off;
    size_t left = handoff_dec_left(d), len;

    if (left < 2) {
        handoff_dec_fail(d, "%s missing (payload truncated)", field);
        return;
    }
    len = (size_t)p[0] << 8 | p[1];
    if (len > HANDOFF_STR_MAX || len >= size)
        handoff_dec_fail(d, "%s too long: %zu bytes (max %zu)", field, len,
                 size - 1 < HANDOFF_STR_MAX ? size - 1 : (size_t)HANDOFF_STR_MAX);
    else if (len > left - 2)
        handoff_dec_fail(d, "%s truncated: declares %zu bytes, %zu present", field, len,
                 left - 2);
    else
        handoff_dec_fail(d, "%s contains a NUL byte", field);
}

void handoff_dec_str(struct handoff_dec *d, const char *field, char *buf, size_t size)
{
    struct handoff_reader saved = d->r;

    buf[0] = '\0';
    if (d->err)
        return;
    if (handoff_get_str(&d->r, buf, size) == -1) {
        d->r = saved;
        handoff_dec_str_why(d, field, size);
    }
}

void handoff_dec_bytes(struct handoff_dec *d, const char *field, const uint8_t **p, uint32_t *n,
                      uint32_t max)
{
    struct handoff_reader saved = d->r;
    uint32_t len;

    *p = NULL;
    *n = 0;
    if (d->err)
        return;
    if (handoff_get_bytes(&d->r, p, n, max) == 0)
        return;
    d->r = saved;
    if (handoff_get_u32(&d->r, &len) == -1)
        handoff_dec_fail(d, "%s missing (payload truncated)", field);
    else if (len > max)
        handoff_dec_fail(d, "%s too long: %u bytes (max %u)", field, (unsigned)len, (unsigned)max);
    else
        handoff_dec_fail(d, "%s truncated: declares %u bytes, %zu present", field,
                 (unsigned)len, handoff_dec_left(d));
}

/* Ends decoding: the payload must hold exactly the message. */
int handoff_dec_end(struct handoff_dec *d)
{
    if (!d->err && handoff_reader_done(&d->r) == -1)
        handoff_dec_fail(d, "%zu unexpected bytes after the message", handoff_dec_left(d));
    return d->err ? -1 : 0;
}

/* A fixed-size char array field must be NUL-terminated to be encodable. */
int handoff_str_ok(const char *s, size_t size)
{
    return strnlen(s, size) < size;
}

int handoff_enc_end(struct handoff_msg *m)
{
    if (handoff_msg_finish(m) == 0)
        return 0;
    handoff_msg_free(m);
    return -1;
}

/* Refuses to encode what the receiver would reject (or what cannot even be
 * read safely, like an unterminated string field). */
int handoff_enc_fail(struct handoff_msg *m)
{
    handoff_msg_free(m);
    m->failed = 1;
    return -1;
}

int handoff_enc_begin(struct handoff_msg *m, uint16_t type, uint32_t seq)
{
    if (handoff_msg_init(m, type, seq) == -1) {
        handoff_msg_free(m);
        return -1;
    }
    return 0;
}

/* Encoders: on failure the message is already freed; freeing it again is harmless. */

/*
 * Extensions, after a message's fixed fields: u16 tag, u16 flags, bytes
 * body, up to the end of the payload.  A reader skips a tag it does not
 * know unless its flags say it must be understood; a known tag's body never
 * changes layout (a new field gets a new tag).  This is how a message grows
 * without breaking a reader of another release.
 */

/* Writes tag and flags and a length placeholder; returns where the body
 * starts, for handoff_ext_end to fill in its length. */
size_t handoff_ext_begin(struct handoff_msg *m, uint16_t tag, uint16_t flags)
{
    handoff_msg_put_u16(m, tag);
    handoff_msg_put_u16(m, flags);
    handoff_msg_put_u32(m, 0);
    return m->len;
}

void handoff_ext_end(struct handoff_msg *m, size_t body)
{
    size_t n = m->len - body;

    if (m->failed || body < 4 || n > UINT32_MAX)
        return;
    for (int i = 0; i < 4; i++)
        m->buf[body - 4 + (size_t)i] = (uint8_t)(n >> (24 - 8 * i));
}

/* Reads extensions to the end of the payload; fn decodes a known tag's body
 * from e and returns 1, or returns 0 for a tag it does not know. */
void handoff_dec_exts(struct handoff_dec *d,
                      int (*fn)(struct handoff_dec *e, uint16_t tag, void *arg), void *arg)
{
    while (!d->err && handoff_dec_left(d) > 0) {
        uint16_t tag = 0, flags = 0;
        const uint8_t *body;
        uint32_t len;
        struct handoff_dec e;

        handoff_dec_u16(d, "extension tag", &tag);
        handoff_dec_u16(d, "extension flags", &flags);
        handoff_dec_bytes(d, "extension body", &body, &len, HANDOFF_MAX_PAYLOAD);
        if (d->err)
            return;
        e = *d;
        handoff_reader_init(&e.r, body, len);
        /* fn NULL: a message that has no extensions yet skips them all. */
        if (fn == NULL || !fn(&e, tag, arg)) {
            if (flags & HANDOFF_EXT_MUST_UNDERSTAND)
                handoff_dec_fail(d, "extension %u must be understood, and this binary does "
                                 "not know it", (unsigned)tag);
            continue;
        }
        if (!e.err && handoff_reader_done(&e.r) == -1)
            handoff_dec_fail(&e, "extension %u: %zu unexpected bytes", (unsigned)tag,
                             handoff_dec_left(&e));
        d->err = e.err;
    }
}
