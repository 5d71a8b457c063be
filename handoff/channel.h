/*
 * channel.h - an ordered, framed, non-blocking message channel between two
 * baton processes.  OS-independent: framing, the output queue and the
 * received-descriptor queue live here; moving bytes and descriptors is the
 * transport's job (transport.h; transport_unix.c now, transport_win.c later).
 *
 * Received descriptors are queued in arrival order and handed to messages
 * by their header's nfds count, as OpenBSD imsg does, so the channel never
 * depends on how the OS splits a stream into reads.
 *
 * The handoff order: a handle given to the peer is closed here only once
 * the peer holds its own.  With a peer that acknowledges handles
 * (HANDOFF_CAP_HANDLE_ACK, handoff_channel_set_peer_caps), a message with
 * the channel's own duplicates goes out flagged HANDOFF_HDR_ACK_HANDLES and
 * those duplicates stay open until the peer's channel answers HANDLE_ACK,
 * which it queues when it hands that message to its reader (its handles
 * were created by then).  So a caller may close its own handle as soon as
 * the message is queued: on Windows a socket whose last handle closes
 * before the receiver's WSASocketW is gone, while SCM_RIGHTS holds its own
 * reference in flight (an older peer, Linux only, gets no flag and the
 * duplicates close once sent, as before).  Lent handles (send_lent) are
 * the caller's to keep until its own protocol says the peer has them
 * (conn_msg.h: CONN_ACK).  The giver never calls shutdown() on a handed
 * socket: that acts on the socket both processes share.
 *
 * To a peer that reads batches (HANDOFF_CAP_FD_BATCH), over a transport
 * that sends them, the messages queued at the head go out together in one
 * send with all their handles (up to HANDOFF_BATCH_FDS): moving thousands
 * of connections then costs one system call per batch on each side, not
 * one per connection.  Only the grouping of bytes into sends changes; the
 * stream is the same.
 */
#ifndef BATON_HANDOFF_CHANNEL_H
#define BATON_HANDOFF_CHANNEL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "message.h"
#include "wire.h"

/* The handles of a batch whose messages are not all read yet, and room for
 * the next receive (HANDOFF_RECV_FDS). */
#define HANDOFF_FDQ_MAX (HANDOFF_RECV_FDS * 2)

struct handoff_outmsg;

/* Handles of one sent message, open until the peer's HANDLE_ACK. */
struct handoff_held {
    struct handoff_held *next;
    unsigned nfds;
    int      fds[HANDOFF_MAX_FDS];
};

struct handoff_channel {
    int       fd;            /* transport handle, non-blocking */
    pid_t     peer_pid;      /* needed by transports that duplicate per process */
    uint32_t  seq;           /* next sequence number to send */

    uint8_t  *rbuf;          /* received bytes: rlen not yet parsed from roff */
    size_t    roff, rlen, rcap;
    int       fdq[HANDOFF_FDQ_MAX];
    unsigned  nfdq;

    struct handoff_outmsg *out_head, *out_tail;
    size_t    out_off;       /* bytes of out_head already sent */
    size_t    out_bytes;     /* total queued bytes, bounded */
    int       eof;

    int       peer_acks;     /* the peer answers HANDOFF_HDR_ACK_HANDLES */
    unsigned  batch_fds;     /* > 0: handles one send may carry for several
                                messages (the peer reads batches) */
    uint8_t  *batch;         /* where a batch is gathered (allocated on use) */
    int       peer_batches;  /* HANDOFF_CAP_FD_BATCH: sends are flagged
                                HANDOFF_HDR_HANDLES_FIRST both ways */
    int       send_lost;     /* receiving: handles of the current send were lost */
    struct handoff_held *held_head, *held_tail;   /* sent, awaiting HANDLE_ACK */
    unsigned  nheld;         /* messages in the held list */
    struct handoff_outmsg *ack_out;   /* our HANDLE_ACK queued, not started */
};

/* Takes ownership of fd (sets it non-blocking, close-on-exec; ch->fd may be
 * another handle of the same socket: handoff_transport_adopt). */
int  handoff_channel_init(struct handoff_channel *ch, int fd, pid_t peer_pid);
/* Closes the fd, queued fds and frees buffers. */
void handoff_channel_close(struct handoff_channel *ch);
/* What the peer can do (HANDOFF_CAP_*, as negotiated): with
 * HANDOFF_CAP_HANDLE_ACK the handles of later messages are held until it
 * acknowledges them; with HANDOFF_CAP_FD_BATCH queued messages go out in
 * batches where the transport can send them so. */
void handoff_channel_set_peer_caps(struct handoff_channel *ch, uint32_t caps);

/* Queues a finished message.  Descriptors attached to it are dup'ed, so the
 * caller keeps its own.  The message itself is freed by the caller.
 * Returns 0, or -1 (out of memory, or more than 64 MiB queued). */
int  handoff_channel_send(struct handoff_channel *ch, struct handoff_msg *m);
/* The same without a duplicate of each descriptor: they are lent, and the
 * caller keeps them open until the message is sent or the channel closed
 * (a process near its descriptor limit can still send what it holds). */
int  handoff_channel_send_lent(struct handoff_channel *ch, struct handoff_msg *m);
/* Writes queued output.  Returns 1 when the queue is empty, 0 when the
 * transport would block, -1 on error (errno set).  A reader flushes after
 * taking messages too: handoff_channel_next may queue a HANDLE_ACK. */
int  handoff_channel_flush(struct handoff_channel *ch);
/* 1 while output is queued.  Handles awaiting the peer's HANDLE_ACK do not
 * count (ch->nheld): a peer that is stopped would hold up a master's
 * re-execution, which closes them with its image, safely on Linux where
 * SCM_RIGHTS holds its own references (Windows has no re-execution). */
int  handoff_channel_pending(const struct handoff_channel *ch);

/* Reads what the transport has.  Returns bytes read (> 0), 0 on EOF,
 * -1 on error, -2 when nothing is available (would block). */
ssize_t handoff_channel_read(struct handoff_channel *ch);

/* Extracts the next complete message.  Returns 1 with *in filled (free it
 * with handoff_in_free), 0 if more bytes are needed, -1 if the stream is
 * malformed (bad header, missing descriptors, a bad HANDLE_ACK); `why` says
 * what was wrong and the channel must then be closed: framing cannot be
 * recovered.  The channel's own HANDLE_ACK is
 * taken here (the handles it acknowledges are closed) and never returned;
 * a message flagged HANDOFF_HDR_ACK_HANDLES queues one. */
int  handoff_channel_next(struct handoff_channel *ch, struct handoff_in *in,
                          char *why, size_t whylen);

/* Adds bytes to the input as if just received (on a fresh channel): a master
 * that re-executes itself carries unparsed input across exec.  0 or -1. */
int  handoff_channel_inject(struct handoff_channel *ch, const void *p, size_t n);

/* Blocking helpers for start-up code that has no event loop yet: send and
 * flush, or wait for the next message; bounded by timeout_ms.
 * Return 0 / 1 on success, -1 on error or timeout (why set). */
int  handoff_channel_send_sync(struct handoff_channel *ch, struct handoff_msg *m,
                               int timeout_ms, char *why, size_t whylen);
int  handoff_channel_recv_sync(struct handoff_channel *ch, struct handoff_in *in,
                               int timeout_ms, char *why, size_t whylen);

#endif
