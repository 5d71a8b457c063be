/*
 * test_channel_os.h - what test_channel.c needs of the OS, one file per OS
 * (test_channel_posix.c, test_channel_win.c): sockets to hand over, a child
 * process that receives them, handle counts, and the tests that only make
 * sense on one OS.
 */
#ifndef BATON_TEST_CHANNEL_OS_H
#define BATON_TEST_CHANNEL_OS_H

#include <stddef.h>
#include <sys/types.h>

/* Once per process (Winsock). 0 or -1. */
int  tc_init(void);
/* Descriptors (Linux) or sockets (Windows) of this process; -1 if they
 * cannot be counted. */
int  tc_count_handles(void);
/* Whether h is an open socket, and whether a child would inherit it. */
int  tc_is_open_socket(int h);
int  tc_inheritable(int h);
/* A blocking TCP socket: listening on 127.0.0.1 (its port in *port), or
 * connected to 127.0.0.1:port; or accepted from a listener, whose reads and
 * writes fail after TC_IO_TIMEOUT_MS.  -1 on error. */
#define TC_IO_TIMEOUT_MS 10000
int  tc_listen(unsigned *port);
int  tc_connect(unsigned port);
int  tc_accept(int l);
/* Shrinks a socket's send buffer to the least the OS allows, so that
 * sends are partial.  0 or -1. */
int  tc_small_sndbuf(int h);
/* Makes a received socket blocking (the child uses them plainly).  0 or -1. */
int  tc_blocking(int h);
/* Whole writes and reads on a blocking socket: 0 or -1. */
int  tc_send_all(int s, const void *p, size_t n);
int  tc_recv_all(int s, void *p, size_t n);
/* This program again, as "PROG --child <channel>", the channel's end its
 * only inherited handle.  0 or -1. */
struct tc_child {
    pid_t pid;
    void *h;        /* the process (Windows) */
};
int  tc_spawn_child(const char *argv0, int channel, struct tc_child *c);
/* Its exit code, or -1 if it did not end within timeout_ms (it is killed). */
int  tc_wait_child(struct tc_child *c, int timeout_ms);
/* The tests only this OS can run. */
void tc_os_tests(void);

/* From test_channel.c, for those tests. */
struct handoff_channel;
struct handoff_in;
int  tc_open_pair(struct handoff_channel *a, struct handoff_channel *b);
int  tc_pump_next(struct handoff_channel *from, struct handoff_channel *to,
                  struct handoff_in *in, char *why, size_t whylen);
int  tc_same_pair(int wfd, int rfd);   /* two ends of one socket pair */
int  tc_send_conn(struct handoff_channel *a, unsigned id, int client_fd, int server_fd);
/* The same CONN queued with its descriptors lent, not flushed: queued ones
 * go out together to a batching peer.  0 or -1. */
int  tc_queue_conn(struct handoff_channel *a, unsigned id, int client_fd, int server_fd);

#endif
