/*
 * channel.h - an ordered, framed, non-blocking message channel between two
 * baton processes.  OS-independent: framing, the output queue and the
 * received-descriptor queue live here; moving bytes and descriptors is the
 * transport's job (transport.h; transport_unix.c now, transport_win.c later).
 *
 * Received descriptors are queued in arrival order and handed to messages
 * by their header's nfds count, as OpenBSD imsg does, so the channel never
 * depends on how the OS splits a stream into reads.
 */
#ifndef BATON_HANDOFF_CHANNEL_H
#define BATON_HANDOFF_CHANNEL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "message.h"
#include "wire.h"

#define HANDOFF_FDQ_MAX (HANDOFF_MAX_FDS * 8)

struct handoff_outmsg;

struct handoff_channel {
    int       fd;            /* transport handle, non-blocking */
    pid_t     peer_pid;      /* needed by transports that duplicate per process */
    uint32_t  seq;           /* next sequence number to send */

    uint8_t  *rbuf;          /* received, not yet parsed bytes */
    size_t    rlen, rcap;
    int       fdq[HANDOFF_FDQ_MAX];
    unsigned  nfdq;

    struct handoff_outmsg *out_head, *out_tail;
    size_t    out_off;       /* bytes of out_head already sent */
    size_t    out_bytes;     /* total queued bytes, bounded */
    int       eof;
};

/* Takes ownership of fd (sets it non-blocking, close-on-exec). */
int  handoff_channel_init(struct handoff_channel *ch, int fd, pid_t peer_pid);
/* Closes the fd, queued fds and frees buffers. */
void handoff_channel_close(struct handoff_channel *ch);

/* Queues a finished message.  Descriptors attached to it are dup'ed, so the
 * caller keeps its own.  The message itself is freed by the caller.
 * Returns 0, or -1 (out of memory, or more than 64 MiB queued). */
int  handoff_channel_send(struct handoff_channel *ch, struct handoff_msg *m);
/* The same without a duplicate of each descriptor: they are lent, and the
 * caller keeps them open until the message is sent or the channel closed
 * (a process near its descriptor limit can still send what it holds). */
int  handoff_channel_send_lent(struct handoff_channel *ch, struct handoff_msg *m);
/* Writes queued output.  Returns 1 when the queue is empty, 0 when the
 * transport would block, -1 on error (errno set). */
int  handoff_channel_flush(struct handoff_channel *ch);
int  handoff_channel_pending(const struct handoff_channel *ch);

/* Reads what the transport has.  Returns bytes read (> 0), 0 on EOF,
 * -1 on error, -2 when nothing is available (would block). */
ssize_t handoff_channel_read(struct handoff_channel *ch);

/* Extracts the next complete message.  Returns 1 with *in filled (free it
 * with handoff_in_free), 0 if more bytes are needed, -1 if the stream is
 * malformed (bad header, missing descriptors); `why` says what was wrong
 * and the channel must then be closed: framing cannot be recovered. */
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
