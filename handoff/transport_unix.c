/*
 * transport_unix.c - handoff transport over an AF_UNIX stream socketpair;
 * descriptors travel as SCM_RIGHTS control messages.
 */
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "wire.h"

int handoff_transport_pair(int fds[2])
{
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds);
}

int handoff_transport_prepare(int h)
{
    int fl;

    if ((fl = fcntl(h, F_GETFL)) == -1)
        return -1;
    if (!(fl & O_NONBLOCK) && fcntl(h, F_SETFL, fl | O_NONBLOCK) == -1)
        return -1;
    if ((fl = fcntl(h, F_GETFD)) == -1)
        return -1;
    if (!(fl & FD_CLOEXEC) && fcntl(h, F_SETFD, fl | FD_CLOEXEC) == -1)
        return -1;
    return 0;
}

int handoff_transport_adopt(int h)
{
    return handoff_transport_prepare(h) == 0 ? h : -1;
}

int handoff_transport_dup(int h)
{
    return fcntl(h, F_DUPFD_CLOEXEC, 0);
}

void handoff_transport_close(int h)
{
    if (h >= 0)
        (void)close(h);
}

unsigned handoff_transport_send_fds_max(void)
{
    return HANDOFF_BATCH_FDS;
}

/* Every kind of descriptor passes alike over SCM_RIGHTS: kinds is unused. */
ssize_t handoff_transport_send(int fd, pid_t peer_pid, const void *buf, size_t len,
                               const int *fds, const uint8_t *kinds, unsigned nfds)
{
    union {
        struct cmsghdr hdr;
        char           buf[CMSG_SPACE(sizeof(int) * HANDOFF_BATCH_FDS)];
    } cbuf;
    struct msghdr msg;
    struct cmsghdr *cmsg;
    struct iovec iov;
    ssize_t n;

    (void)peer_pid;
    (void)kinds;
    if (nfds > HANDOFF_BATCH_FDS || (nfds > 0 && fds == NULL)) {
        errno = EINVAL;
        return -1;
    }
    /* A stream socket drops descriptors that come with no data. */
    if (len == 0) {
        if (nfds > 0) {
            errno = EINVAL;
            return -1;
        }
        return 0;
    }
    memset(&msg, 0, sizeof(msg));
    iov.iov_base = (void *)buf;
    iov.iov_len = len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (nfds > 0) {
        memset(cbuf.buf, 0, CMSG_SPACE(sizeof(int) * nfds));
        msg.msg_control = cbuf.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        cmsg = CMSG_FIRSTHDR(&msg);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
    }
    do {
        n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    } while (n == -1 && errno == EINTR);
    return n;
}

static void close_fds(const int *fds, unsigned n)
{
    unsigned i;

    for (i = 0; i < n; i++)
        (void)close(fds[i]);
}

ssize_t handoff_transport_recv(int fd, void *buf, size_t len,
                               int *fds, unsigned *nfds, unsigned maxfds)
{
    /* Linux delivers the descriptors of one sendmsg() per recvmsg(), at
     * most SCM_MAX_FD (253); a batch (HANDOFF_BATCH_FDS) stays below that.
     * So with room for HANDOFF_RECV_FDS a truncation means the peer
     * misbehaved or this process is out of descriptors. */
    union {
        struct cmsghdr hdr;
        char           buf[CMSG_SPACE(sizeof(int) * HANDOFF_RECV_FDS)];
    } cbuf;
    int got[HANDOFF_RECV_FDS];
    unsigned ngot = 0, k, i;
    struct msghdr msg;
    struct cmsghdr *cmsg;
    struct iovec iov;
    ssize_t n;
    int truncated;

    memset(&msg, 0, sizeof(msg));
    iov.iov_base = buf;
    iov.iov_len = len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.buf;
    msg.msg_controllen = sizeof(cbuf.buf);
    do {
        n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    } while (n == -1 && errno == EINTR);
    if (n == -1)
        return -1;

    truncated = (msg.msg_flags & MSG_CTRUNC) != 0;
    for (cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
        if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
            continue;
        k = (unsigned)((cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (i = 0; i < k; i++) {
            int d;

            /* CMSG_DATA need not be int-aligned. */
            memcpy(&d, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
            if (ngot < HANDOFF_RECV_FDS)
                got[ngot++] = d;
            else
                (void)close(d);
        }
    }
    /*
     * Descriptors that do not fit the caller's queue would break the pairing
     * of descriptors with messages: fail the read.  When the kernel could not
     * install all that came (the receiver is out of them: MSG_CTRUNC), the
     * ones it did install come first and one HANDOFF_FD_LOST stands for the
     * rest: the channel refuses the messages whose descriptors were lost
     * (those of one message, or of the rest of a batch) and the stream goes
     * on.
     */
    if (*nfds > maxfds || ngot + (truncated ? 1u : 0u) > maxfds - *nfds) {
        close_fds(got, ngot);
        errno = EMSGSIZE;
        return -1;
    }
    if (ngot > 0)
        memcpy(fds + *nfds, got, sizeof(int) * ngot);
    *nfds += ngot;
    if (truncated)
        fds[(*nfds)++] = HANDOFF_FD_LOST;
    return n;
}

static long long now_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
        return 0;
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int handoff_transport_wait(int fd, int for_write, int timeout_ms)
{
    struct pollfd pfd;
    long long deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : -1;
    int left = timeout_ms, r;

    for (;;) {
        pfd.fd = fd;
        pfd.events = for_write ? POLLOUT : POLLIN;
        pfd.revents = 0;
        r = poll(&pfd, 1, left);
        if (r == -1 && errno == EINTR) {
            /* Resume with what is left so signals cannot stretch the wait. */
            if (deadline >= 0) {
                long long rem = deadline - now_ms();

                left = rem > 0 ? (int)rem : 0;
            }
            continue;
        }
        if (r <= 0)
            return r;
        if (pfd.revents & POLLNVAL) {
            errno = EBADF;
            return -1;
        }
        /* POLLERR/POLLHUP count as ready: the next send/recv reports them. */
        return 1;
    }
}
