/*
 * test_channel_posix.c - test_channel's OS part on Linux: fork + exec of the
 * test itself for the child, /proc/self/fd counts, and the tests of a
 * receiver out of descriptors (RLIMIT_NOFILE) and of SCM_RIGHTS limits.
 */
#include "test_channel_os.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "channel.h"
#include "conn_msg.h"
#include "testutil.h"
#include "transport.h"

int tc_init(void)
{
    /* A write to a closed peer must fail with EPIPE, not kill the test. */
    return signal(SIGPIPE, SIG_IGN) == SIG_ERR ? -1 : 0;
}

int tc_count_handles(void)
{
    return test_count_fds();
}

int tc_is_open_socket(int h)
{
    int type;
    socklen_t len = sizeof(type);

    return getsockopt(h, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
}

int tc_inheritable(int h)
{
    int fl = fcntl(h, F_GETFD);

    return fl != -1 && !(fl & FD_CLOEXEC);
}

int tc_small_sndbuf(int h)
{
    int v = 1;   /* the kernel raises it to its minimum */

    return setsockopt(h, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
}

static void loopback(struct sockaddr_in *sa, unsigned port)
{
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa->sin_port = htons((uint16_t)port);
}

int tc_listen(unsigned *port)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    loopback(&sa, 0);
    if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(l, 16) != 0 ||
        getsockname(l, (struct sockaddr *)&sa, &len) != 0) {
        if (l >= 0)
            close(l);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return l;
}

/* A peer that never answers fails the test instead of hanging it. */
static int bounded(int s)
{
    struct timeval tv = { TC_IO_TIMEOUT_MS / 1000, 0 };

    if (s >= 0 && (setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
                   setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)) {
        close(s);
        return -1;
    }
    return s;
}

int tc_connect(unsigned port)
{
    struct sockaddr_in sa;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    loopback(&sa, port);
    if (s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(s);
        s = -1;
    }
    return bounded(s);
}

int tc_accept(int l)
{
    return bounded(accept4(l, NULL, NULL, SOCK_CLOEXEC));
}

int tc_blocking(int h)
{
    int fl = fcntl(h, F_GETFL);

    return fl == -1 || fcntl(h, F_SETFL, fl & ~O_NONBLOCK) == -1 ? -1 : 0;
}

int tc_spawn_child(const char *argv0, int channel, struct tc_child *c)
{
    char arg[16];

    (void)argv0;
    snprintf(arg, sizeof(arg), "%d", channel);
    c->h = NULL;
    c->pid = fork();
    if (c->pid < 0)
        return -1;
    if (c->pid == 0) {
        /* Only the channel crosses exec: every other descriptor is
         * close-on-exec, as in baton. */
        if (fcntl(channel, F_SETFD, 0) == 0)
            execl("/proc/self/exe", "test_channel", "--child", arg, (char *)NULL);
        _exit(127);
    }
    return 0;
}

int tc_wait_child(struct tc_child *c, int timeout_ms)
{
    int st, waited;
    pid_t r;

    for (waited = 0; waited <= timeout_ms; waited += 10) {
        if ((r = waitpid(c->pid, &st, WNOHANG)) == c->pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0)
            return -1;
        (void)poll(NULL, 0, 10);
    }
    kill(c->pid, SIGKILL);
    (void)waitpid(c->pid, &st, 0);
    return -1;
}

/* The transport refuses descriptors the caller has no room for and closes
 * them rather than leaking them. */
static void test_transport_fd_limit(void)
{
    int sv[2], fds[8], got[8], p[2], before;
    unsigned ngot = 0;
    char buf[16];

    CHECK(handoff_transport_pair(sv) == 0);
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    fds[0] = p[0], fds[1] = p[1], fds[2] = p[0];
    before = test_count_fds();
    CHECK(handoff_transport_send(sv[0], 0, "abc", 3, fds, NULL, 3) == 3);
    CHECK(handoff_transport_recv(sv[1], buf, sizeof(buf), got, &ngot, 2) == -1);
    CHECK(errno == EMSGSIZE);
    CHECK_U64(ngot, 0);
    CHECK_U64(test_count_fds(), before);

    /* Data without descriptors is fine; descriptors without data are refused. */
    CHECK(handoff_transport_send(sv[0], 0, "d", 1, NULL, NULL, 0) == 1);
    CHECK(handoff_transport_recv(sv[1], buf, sizeof(buf), got, &ngot, 2) == 1);
    CHECK(handoff_transport_send(sv[0], 0, "", 0, fds, NULL, 1) == -1 && errno == EINVAL);
    CHECK(handoff_transport_recv(sv[1], buf, sizeof(buf), got, &ngot, 2) == -1);
    CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
    CHECK(handoff_transport_wait(sv[1], 0, 10) == 0);
    CHECK(handoff_transport_wait(sv[0], 1, 10) == 1);
    close(p[0]);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
}

/* The descriptor the next open would get: every one below it is in use. */
static int lowest_free_fd(void)
{
    int fd = fcntl(0, F_DUPFD, 0);

    if (fd >= 0)
        close(fd);
    return fd;
}

/* Receives the next message on b while this process may hold no descriptor
 * numbered `limit` or above (lowest_free_fd(): no new one at all), then
 * lifts the limit again. */
static int next_with_fd_limit(struct handoff_channel *a, struct handoff_channel *b,
                              rlim_t limit, struct handoff_in *in, char *why, size_t whylen)
{
    struct rlimit saved, low;
    int r;

    if (getrlimit(RLIMIT_NOFILE, &saved) != 0)
        return -1;
    low = saved;
    low.rlim_cur = limit;
    if (setrlimit(RLIMIT_NOFILE, &low) != 0)
        return -1;
    r = tc_pump_next(a, b, in, why, whylen);
    if (setrlimit(RLIMIT_NOFILE, &saved) != 0)
        return -1;
    return r;
}

/*
 * A receiver out of descriptors (EMFILE inside recvmsg: the kernel drops
 * what it cannot install and says MSG_CTRUNC) gets the message without its
 * descriptors, marked fds_lost, and its decoder refuses that one
 * connection; the next message still gets its own descriptors.
 */
static void test_fds_lost(void)
{
    struct handoff_channel a, b;
    struct handoff_conn v;
    struct handoff_in in;
    char why[256] = "";
    int p1[2], p2[2], p3[2], before, r, lim;

    CHECK(tc_open_pair(&a, &b) == 0);
    CHECK(handoff_transport_pair(p1) == 0 && handoff_transport_pair(p2) == 0 &&
          handoff_transport_pair(p3) == 0);
    before = test_count_fds();

    /* No descriptor can be installed: none arrives. */
    CHECK(tc_send_conn(&a, 1, p1[0], p1[1]) == 0);
    lim = lowest_free_fd();
    CHECK(lim > 0);
    r = next_with_fd_limit(&a, &b, (rlim_t)lim, &in, why, sizeof(why));
    CHECK(r == 1);
    if (r != 1)
        fprintf(stderr, "    %s\n", why);
    CHECK_U64(in.hdr.type, HANDOFF_CONN);
    CHECK(in.fds_lost);
    CHECK_U64(in.nfds, 2);
    CHECK(in.fds[0] == -1 && in.fds[1] == -1);
    CHECK_U64(b.nfdq, 0);
    CHECK_U64(test_count_fds(), before);
    CHECK(handoff_decode_conn(&in, &v, why, sizeof(why)) == -1);
    CHECK_WHY(why, "CONN: its sockets did not arrive (out of file descriptors)");
    CHECK(v.client_fd == -1 && v.server_fd == -1);
    handoff_in_free(&in);

    /* Room for one of the two: the one installed is closed, not paired
     * with a later message. */
    CHECK(tc_send_conn(&a, 2, p2[0], p2[1]) == 0);
    lim = lowest_free_fd();
    r = next_with_fd_limit(&a, &b, (rlim_t)lim + 1, &in, why, sizeof(why));
    CHECK(r == 1);
    CHECK(in.fds_lost && in.fds[0] == -1 && in.fds[1] == -1);
    CHECK_U64(b.nfdq, 0);
    CHECK_U64(test_count_fds(), before);
    handoff_in_free(&in);

    /* The limit lifted, the next message has its own descriptors. */
    CHECK(tc_send_conn(&a, 3, p3[0], p3[1]) == 0);
    r = tc_pump_next(&a, &b, &in, why, sizeof(why));
    CHECK(r == 1);
    CHECK(!in.fds_lost);
    CHECK(handoff_decode_conn(&in, &v, why, sizeof(why)) == 0);
    CHECK_U64(v.id, 3);
    CHECK(v.client_fd >= 0 && v.server_fd >= 0);
    if (v.client_fd >= 0 && v.server_fd >= 0) {
        CHECK(tc_same_pair(p3[1], v.client_fd));
        CHECK(tc_same_pair(v.server_fd, p3[0]));
        close(v.client_fd);
        close(v.server_fd);
    }
    handoff_in_free(&in);
    CHECK_U64(b.nfdq, 0);
    CHECK_U64(test_count_fds(), before);

    for (int i = 0; i < 2; i++) {
        close(p1[i]);
        close(p2[i]);
        close(p3[i]);
    }
    handoff_channel_close(&a);
    handoff_channel_close(&b);
}

/*
 * The same out of descriptors with a batching peer: one send brings the
 * descriptors of five connections and the receiver can install five of ten.
 * The first two connections arrive whole; the third (one of its two
 * installed, and closed), fourth and fifth are refused; a later send starts
 * afresh, and nothing leaks.
 */
static void test_fds_lost_batch(void)
{
    struct handoff_channel a, b;
    struct handoff_conn v;
    struct handoff_in in;
    char why[256] = "";
    int p[7][2], before, r, lim;
    unsigned i;

    CHECK(tc_open_pair(&a, &b) == 0);
    handoff_channel_set_peer_caps(&a, HANDOFF_CAP_FD_BATCH);
    handoff_channel_set_peer_caps(&b, HANDOFF_CAP_FD_BATCH);
    for (i = 0; i < 7; i++)
        CHECK(handoff_transport_pair(p[i]) == 0);
    before = test_count_fds();
    for (i = 0; i < 5; i++)
        CHECK(tc_queue_conn(&a, i + 1, p[i][0], p[i][1]) == 0);
    lim = lowest_free_fd();
    CHECK(lim > 0);
    r = next_with_fd_limit(&a, &b, (rlim_t)lim + 5, &in, why, sizeof(why));
    CHECK(r == 1);
    if (r != 1)
        fprintf(stderr, "    %s\n", why);
    CHECK(!handoff_channel_pending(&a));   /* all five went in one send */
    for (i = 0; i < 5 && r == 1; i++) {
        if (i > 0)
            CHECK(tc_pump_next(&a, &b, &in, why, sizeof(why)) == 1);
        if (i < 2) {
            CHECK(!in.fds_lost);
            CHECK(handoff_decode_conn(&in, &v, why, sizeof(why)) == 0);
            CHECK_U64(v.id, i + 1);
            CHECK(v.client_fd >= 0 && tc_same_pair(p[i][1], v.client_fd));
            CHECK(v.server_fd >= 0 && tc_same_pair(v.server_fd, p[i][0]));
            close(v.client_fd);
            close(v.server_fd);
        } else {
            CHECK(in.fds_lost);
            CHECK(in.fds[0] == -1 && in.fds[1] == -1);
            CHECK(handoff_decode_conn(&in, &v, why, sizeof(why)) == -1);
        }
        handoff_in_free(&in);
    }
    CHECK_U64(b.nfdq, 0);
    CHECK_U64(test_count_fds(), before);

    /* The limit lifted, the next send's connections have their own. */
    CHECK(tc_queue_conn(&a, 6, p[5][0], p[5][1]) == 0 && tc_queue_conn(&a, 7, p[6][0], p[6][1]) == 0);
    for (i = 5; i < 7; i++) {
        CHECK(tc_pump_next(&a, &b, &in, why, sizeof(why)) == 1);
        CHECK(!in.fds_lost);
        CHECK(handoff_decode_conn(&in, &v, why, sizeof(why)) == 0);
        CHECK_U64(v.id, i + 1);
        CHECK(v.client_fd >= 0 && tc_same_pair(p[i][1], v.client_fd));
        close(v.client_fd);
        close(v.server_fd);
        handoff_in_free(&in);
    }
    CHECK_U64(b.nfdq, 0);
    CHECK_U64(test_count_fds(), before);
    for (i = 0; i < 7; i++) {
        close(p[i][0]);
        close(p[i][1]);
    }
    handoff_channel_close(&a);
    handoff_channel_close(&b);
}

void tc_os_tests(void)
{
    test_transport_fd_limit();
    test_fds_lost_batch();
    test_fds_lost();
}
