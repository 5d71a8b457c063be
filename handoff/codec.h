/*
 * codec.h - the helpers every handoff message encoder and decoder is built
 * from (internal to handoff/): a decoder lists its fields in order and
 * checks once at the end, while `why` still names the field that was wrong;
 * extensions let a message grow without breaking a reader of another release.
 */
#ifndef BATON_HANDOFF_CODEC_H
#define BATON_HANDOFF_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "message.h"
#include "port_libc.h"
#include "wire.h"

/*
 * Decoding state: the reader plus the first error, so a decoder can list its
 * fields in order and check once at the end, while `why` still names the
 * field that was wrong rather than just "malformed".
 */
struct handoff_dec {
    struct handoff_reader r;
    const char *msg;          /* message type name, prefixes every why */
    char       *why;
    size_t      whylen;
    int         err;
};

/*
 * Extensions, after a message's fixed fields: u16 tag, u16 flags, bytes
 * body, up to the end of the payload.  A reader skips a tag it does not
 * know unless its flags say it must be understood; a known tag's body never
 * changes layout (a new field gets a new tag).
 */
#define HANDOFF_EXT_MUST_UNDERSTAND 0x0001u

void handoff_dec_fail(struct handoff_dec *d, const char *fmt, ...)
    PORT_PRINTF(2, 3);
size_t handoff_dec_left(const struct handoff_dec *d);
/* Checks type and descriptor count, then starts reading the payload. */
int handoff_dec_begin(struct handoff_dec *d, const struct handoff_in *in, uint16_t type,
                      unsigned nfds, char *why, size_t whylen);
void handoff_dec_u32(struct handoff_dec *d, const char *field, uint32_t *v);
void handoff_dec_u16(struct handoff_dec *d, const char *field, uint16_t *v);
void handoff_dec_u64(struct handoff_dec *d, const char *field, uint64_t *v);
void handoff_dec_str(struct handoff_dec *d, const char *field, char *buf, size_t size);
void handoff_dec_bytes(struct handoff_dec *d, const char *field, const uint8_t **p, uint32_t *n,
                       uint32_t max);
/* Ends decoding: the payload must hold exactly the message. */
int handoff_dec_end(struct handoff_dec *d);
/* A fixed-size char array field must be NUL-terminated to be encodable. */
int handoff_str_ok(const char *s, size_t size);
int handoff_enc_end(struct handoff_msg *m);
/* Refuses to encode what the receiver would reject; frees the message. */
int handoff_enc_fail(struct handoff_msg *m);
int handoff_enc_begin(struct handoff_msg *m, uint16_t type, uint32_t seq);
size_t handoff_ext_begin(struct handoff_msg *m, uint16_t tag, uint16_t flags);
void handoff_ext_end(struct handoff_msg *m, size_t body);
/* Reads extensions to the end of the payload; fn decodes a known tag's body
 * from e and returns 1, or returns 0 for a tag it does not know (NULL: knows
 * none). */
void handoff_dec_exts(struct handoff_dec *d,
                      int (*fn)(struct handoff_dec *e, uint16_t tag, void *arg), void *arg);

#endif
