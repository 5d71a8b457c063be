/*
 * wire.h - the handoff wire format: what crosses between master and worker
 * (and, later, between an old and a new worker).
 *
 * Every message is a fixed 16-byte header followed by `len` payload bytes:
 *
 *   offset  size  field
 *   0       2     magic    0xBA70 ("baton")
 *   2       1     version  HANDOFF_WIRE_VERSION
 *   3       1     nfds     descriptors attached to this message (0..HANDOFF_MAX_FDS)
 *   4       2     type     enum handoff_type, or one this reader does not know
 *   6       2     flags    HANDOFF_HDR_MUST_UNDERSTAND; other bits reserved
 *   8       4     seq      sender's sequence number (for logs and replies)
 *   12      4     len      payload length (0..HANDOFF_MAX_PAYLOAD)
 *
 * All integers are big-endian.  Payload fields are read only through the
 * bounds-checked getters below (OpenBSD ibuf style): a getter that would
 * read past the end fails and marks the reader as failed, so a decoder can
 * run all its reads and check once.
 *
 * Framing does not depend on the type: a message of a type the reader does
 * not know is still a whole message (its payload and descriptors consumed),
 * so a newer peer's messages can be skipped.  A receiver skips such a
 * message unless HANDOFF_HDR_MUST_UNDERSTAND is set, which makes it a
 * refusal instead (the sender cannot go on without it).  Reserved flag bits
 * are sent as 0 and ignored by readers.  The first release (0.1.0) refused
 * any unknown type or nonzero flag and closed the channel, so nothing new
 * goes to a peer whose capabilities (message.h) do not include
 * HANDOFF_CAP_UNKNOWN_TYPES.
 */
#ifndef BATON_HANDOFF_WIRE_H
#define BATON_HANDOFF_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define HANDOFF_MAGIC        0xBA70u
#define HANDOFF_WIRE_VERSION 1u
#define HANDOFF_HDR_LEN      16u
#define HANDOFF_MAX_PAYLOAD  (2u << 20)   /* 2 MiB: a whole config file fits */
#define HANDOFF_MAX_FDS      16u
/* The most handles one send carries to a peer that reads batches
 * (HANDOFF_CAP_FD_BATCH, channel.h): the handles of several messages, each
 * message still at most HANDOFF_MAX_FDS.  Below Linux's SCM_MAX_FD (253). */
#define HANDOFF_BATCH_FDS    252u
/* The most handles one receive may bring, whatever the peer sends: room the
 * receiver keeps free before it reads. */
#define HANDOFF_RECV_FDS     256u
#define HANDOFF_STR_MAX      4096u        /* longest string field */

/* Header flags. */
#define HANDOFF_HDR_MUST_UNDERSTAND 0x0001u   /* an unknown type is refused, not skipped */
/* What a message's builder may set (handoff_msg_set_flags). */
#define HANDOFF_HDR_FLAGS_DEFINED   HANDOFF_HDR_MUST_UNDERSTAND
/* Set by the channel only (channel.h), on a message with handles to a peer
 * with HANDOFF_CAP_HANDLE_ACK: the sender holds its handles open until the
 * receiver answers with HANDLE_ACK. */
#define HANDOFF_HDR_ACK_HANDLES     0x0002u
/* Set by the channel only, to a peer with HANDOFF_CAP_FD_BATCH: this
 * message's first byte carried the handles of one send, its own and those
 * of the messages after it that declare some, up to the next message so
 * flagged.  A receiver that could not take all of a send's handles thus
 * refuses exactly the messages whose handles were in it. */
#define HANDOFF_HDR_HANDLES_FIRST   0x0004u

enum handoff_type {
    HANDOFF_HELLO = 1,       /* worker -> master: pid, version string */
    HANDOFF_CONFIG,          /* master -> worker: generation, config path + text */
    HANDOFF_LISTENER,        /* master -> worker: listener name, address; 1 fd */
    HANDOFF_START,           /* master -> worker: all listeners sent, start serving */
    HANDOFF_READY,           /* worker -> master: serving */
    HANDOFF_FAILED,          /* worker -> master: could not start; reason */
    HANDOFF_STOP_ACCEPTING,  /* master -> worker: close listeners, keep connections */
    HANDOFF_DRAIN,           /* master -> worker: stop accepting, finish connections, exit */
    HANDOFF_STATUS_REQ,      /* master -> worker: request id */
    HANDOFF_STATUS,          /* worker -> master: request id, counters */
    HANDOFF_RESUME_ACCEPTING,/* master -> worker: rollback, accept again */
    /* The master to itself across execve() of a new binary (same PID). */
    HANDOFF_MASTER_STATE = 16,
    HANDOFF_TICKET_KEYS,     /* master -> worker: TLS session ticket keys, newest first */
    HANDOFF_SERVER_STATE,    /* master -> worker: health of servers, carried over */
    /* Reserved for live connection handoff (worker -> worker). */
    /* Live connection handoff (conn_msg.h), worker -> worker but LINK. */
    HANDOFF_CONN = 32,       /* one connection: state + its sockets */
    HANDOFF_CONN_DONE,       /* all connections sent */
    HANDOFF_CONN_ACK,        /* credits and results */
    HANDOFF_LINK,            /* master -> worker: one end of a link; 1 fd */
    HANDOFF_CONN_RELEASE,    /* the giver let these connections go */
    /* The channel's own (channel.h), either direction; never seen by callers. */
    HANDOFF_HANDLE_ACK = 48, /* the receiver holds the handles of N more
                                HANDOFF_HDR_ACK_HANDLES messages */
    HANDOFF_TYPE_MAX
};

struct handoff_hdr {
    uint16_t magic;
    uint8_t  version;
    uint8_t  nfds;
    uint16_t type;
    uint16_t flags;
    uint32_t seq;
    uint32_t len;
};

/*
 * What a descriptor attached to a message is.  A POSIX transport passes any
 * descriptor alike; a Windows one must duplicate a socket for the receiving
 * process (WSADuplicateSocket) and any other handle otherwise, so the kind
 * travels with the handle down to the transport.
 */
enum handoff_handle_kind {
    HANDOFF_H_SOCKET = 0,    /* a TCP socket: listening or connected */
    HANDOFF_H_CHANNEL        /* an end of a channel between two baton processes */
};

/* A growable message being built. */
struct handoff_msg {
    uint8_t *buf;        /* header + payload */
    size_t   len;        /* bytes used, >= HANDOFF_HDR_LEN */
    size_t   cap;
    int      fds[HANDOFF_MAX_FDS];
    uint8_t  kinds[HANDOFF_MAX_FDS];   /* enum handoff_handle_kind, per fd */
    unsigned nfds;
    int      failed;     /* an append ran out of memory or over a limit */
};

/* A read-only view of a received payload. */
struct handoff_reader {
    const uint8_t *p;
    size_t         len;
    size_t         off;
    int            failed;
};

const char *handoff_type_name(uint16_t type);
/* 1 if this binary knows the type (it may still be unexpected where it
 * arrives: a receiver handles only its own direction's types). */
int handoff_type_known(uint16_t type);

/* Header encode/decode.  decode returns 0, or -1 with `why` set when the
 * header cannot be framed (bad magic, version, nfds, or len); any type and
 * any flags are valid framing. */
void handoff_hdr_encode(const struct handoff_hdr *h, uint8_t out[HANDOFF_HDR_LEN]);
int  handoff_hdr_decode(const uint8_t in[HANDOFF_HDR_LEN], struct handoff_hdr *h,
                        char *why, size_t whylen);

/* Building.  init returns -1 on allocation failure.  Appends set
 * msg->failed instead of returning errors; check it (or handoff_msg_finish's
 * return) once at the end. */
int  handoff_msg_init(struct handoff_msg *m, uint16_t type, uint32_t seq);
/* Header flags (HANDOFF_HDR_*; undefined bits are dropped), kept by
 * handoff_msg_finish.  Only for a peer with HANDOFF_CAP_UNKNOWN_TYPES. */
void handoff_msg_set_flags(struct handoff_msg *m, uint16_t flags);
void handoff_msg_put_u8(struct handoff_msg *m, uint8_t v);
void handoff_msg_put_u16(struct handoff_msg *m, uint16_t v);
void handoff_msg_put_u32(struct handoff_msg *m, uint32_t v);
void handoff_msg_put_u64(struct handoff_msg *m, uint64_t v);
void handoff_msg_put_bytes(struct handoff_msg *m, const void *p, size_t n); /* u32 length + bytes */
void handoff_msg_put_str(struct handoff_msg *m, const char *s);            /* u16 length + bytes */
/* The handle is not owned by the message. */
void handoff_msg_add_handle(struct handoff_msg *m, int fd, enum handoff_handle_kind kind);
void handoff_msg_add_fd(struct handoff_msg *m, int fd);  /* a socket */
int  handoff_msg_finish(struct handoff_msg *m);          /* writes header; 0 or -1 */
void handoff_msg_free(struct handoff_msg *m);   /* cleanses what it frees */

/* Messages may carry TLS secrets (conn_msg.h): every buffer that held one
 * is wiped before it is freed or moved.  handoff_resize is realloc that
 * wipes the old block. */
void  handoff_cleanse(void *p, size_t n);
void *handoff_resize(void *p, size_t oldlen, size_t newlen);

/* Reading. */
void handoff_reader_init(struct handoff_reader *r, const void *p, size_t len);
int  handoff_get_u8(struct handoff_reader *r, uint8_t *v);
int  handoff_get_u16(struct handoff_reader *r, uint16_t *v);
int  handoff_get_u32(struct handoff_reader *r, uint32_t *v);
int  handoff_get_u64(struct handoff_reader *r, uint64_t *v);
/* Points into the payload; no copy.  Length limited by `max`. */
int  handoff_get_bytes(struct handoff_reader *r, const uint8_t **p, uint32_t *n, uint32_t max);
/* Copies into buf (NUL-terminated); fails if it does not fit, is longer than
 * HANDOFF_STR_MAX, or contains a NUL byte. */
int  handoff_get_str(struct handoff_reader *r, char *buf, size_t buflen);
/* 0 if every byte was consumed and no getter failed. */
int  handoff_reader_done(const struct handoff_reader *r);

#endif
