/*
 * transport.h - how bytes and descriptors move between two baton processes.
 * One implementation per OS, selected at link time:
 *   transport_unix.c  AF_UNIX stream socketpair, descriptors via SCM_RIGHTS
 *   transport_win.c   loopback TCP socket pair, handles as WSAPROTOCOL_INFOW
 *                     from WSADuplicateSocketW, in-band
 */
#ifndef BATON_HANDOFF_TRANSPORT_H
#define BATON_HANDOFF_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Two connected endpoints, both non-blocking and close-on-exec. */
int handoff_transport_pair(int fds[2]);

/* Sends up to len bytes; the nfds handles (each of its kind, enum
 * handoff_handle_kind in wire.h; at most handoff_transport_send_fds_max())
 * travel with the first byte.  Returns bytes sent (handles were sent iff
 * > 0), or -1 with errno (EAGAIN when it would block). */
ssize_t handoff_transport_send(int fd, pid_t peer_pid, const void *buf, size_t len,
                               const int *fds, const uint8_t *kinds, unsigned nfds);

/* The most handles one send takes: HANDOFF_MAX_FDS (one message's), or
 * HANDOFF_BATCH_FDS where the handles of several messages can ride on one
 * send, for a peer that reads them (HANDOFF_CAP_FD_BATCH). */
unsigned handoff_transport_send_fds_max(void);

/* What the channel does with handles, kept here so that it does no OS work
 * of its own: make a received or given handle non-blocking and
 * close-on-exec (0 or -1), duplicate one the caller keeps (close-on-exec;
 * -1 with errno), close one. */
int  handoff_transport_prepare(int h);
int  handoff_transport_dup(int h);
void handoff_transport_close(int h);
/* A channel's end as its process got it (inherited from the parent, by
 * number), prepared, as a handle this process can use fully: h itself, or
 * (Windows under Wine, whose inherited sockets can be read but not written)
 * a new handle of the same socket, h then closed.  -1 with errno (h is
 * still the caller's). */
int  handoff_transport_adopt(int h);

/* Receives up to len bytes; descriptors that arrive are appended to fds
 * (at most maxfds in total, and one call brings at most HANDOFF_RECV_FDS;
 * extra ones are closed and the call fails with EMSGSIZE).  Received descriptors are close-on-exec.  When the receiver
 * could not take the descriptors that came (out of descriptors), one
 * HANDOFF_FD_LOST is appended in their place.
 * Returns bytes (> 0), 0 on EOF, -1 with errno. */
#define HANDOFF_FD_LOST (-2)
ssize_t handoff_transport_recv(int fd, void *buf, size_t len,
                               int *fds, unsigned *nfds, unsigned maxfds);

/* Waits until fd is readable (for_write = 0) or writable; 1 ready,
 * 0 timeout, -1 error. */
int handoff_transport_wait(int fd, int for_write, int timeout_ms);

#endif
