/*
 * transport_win.c - handoff transport on Winsock.
 *
 * The channel is a connected loopback TCP socket pair, not a pipe:
 * libevent's win32 backend waits on sockets only, so only a socket can be
 * watched by the loops that read the channel.
 *
 * A handle travels in-band as the WSAPROTOCOL_INFOW that
 * WSADuplicateSocketW made for the receiving process; the receiver makes
 * its own handle of the same socket with WSASocketW(FROM_PROTOCOL_INFO).
 * Under the channel's bytes this transport frames records:
 *
 *   offset  size  field
 *   0       2     magic     0xBA7E
 *   2       1     nhandles  0..HANDOFF_MAX_FDS
 *   3       1     reserved  0
 *   4       4     datalen   1..RECORD_DATA_MAX channel bytes (big-endian)
 *   8             nhandles x WSAPROTOCOL_INFOW, then datalen channel bytes
 *
 * One send makes at most one record, and one record holds at most what is
 * left of one channel message, so a message's handles come in the record
 * of its first byte, as SCM_RIGHTS brings them with the first byte on
 * Linux; the receiver queues them before it returns that byte.
 *
 * Once a record's handles are duplicated, its header and infos are
 * committed: if the socket takes only part of them, the rest waits in a
 * per-socket state and goes out before anything else, so a partial send
 * can neither split a handle nor lose one, nor duplicate it twice (the
 * channel retries the same message; the retry finds the record begun).
 * The receiver keeps a per-socket state the same way for a record that
 * arrives in pieces.  States exist only while a record is unfinished, in
 * a short list under one lock (each channel is used by one thread; the
 * lock guards the list).
 */
#include "transport.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>

#include "port_once.h"
#include "wire.h"

#define RECORD_MAGIC    0xBA7Eu
#define RECORD_HDR_LEN  8u
#define INFO_LEN        sizeof(WSAPROTOCOL_INFOW)
#define PREFIX_MAX      (RECORD_HDR_LEN + HANDOFF_MAX_FDS * INFO_LEN)
/* What is left of one channel message at most. */
#define RECORD_DATA_MAX (HANDOFF_HDR_LEN + HANDOFF_MAX_PAYLOAD)
/* Data copied behind its prefix to go in one send (small messages). */
#define COMBINED_DATA_MAX 4096u

/* An unfinished record, per socket and direction. */
struct xstate {
    struct xstate *next;
    SOCKET   s;
    /* Sending: the committed header and infos not written yet, then data. */
    size_t   out_len, out_off;
    size_t   out_data_left;
    int      out_handles;          /* the record carries the handles of the
                                      message the channel is still sending */
    /* Receiving: header and infos so far, then data. */
    size_t   in_have;
    unsigned in_nhandles;
    size_t   in_data_left;
    uint8_t  out_prefix[PREFIX_MAX];
    uint8_t  in_prefix[PREFIX_MAX];
};

static SRWLOCK states_lock = SRWLOCK_INIT;
static struct xstate *states;
static port_once_t wsa_once = PORT_ONCE_INIT;
static int wsa_started;

static SOCKET sock_of(int h)
{
    return (SOCKET)(intptr_t)h;
}

/* Handles stay int in baton's interfaces: a socket's value has 32
 * significant bits (as Windows documents for 32/64-bit interop). */
static int int_of(SOCKET s)
{
    return s <= (SOCKET)INT_MAX ? (int)(intptr_t)s : -1;
}

static void wsa_start(void)
{
    WSADATA d;

    wsa_started = WSAStartup(MAKEWORD(2, 2), &d) == 0;
}

/* Winsock is ready in this process (idempotent; the process's own
 * WSAStartup, if any, counts too). */
static int wsa_ready(void)
{
    if (port_once(&wsa_once, wsa_start) != 0 || !wsa_started) {
        errno = ENETDOWN;
        return 0;
    }
    return 1;
}

static int errno_of(int wsa, int sending)
{
    switch (wsa) {
    case WSAEWOULDBLOCK:
    case WSAEINPROGRESS:
        return EAGAIN;
    case WSAEINTR:
        return EINTR;
    case WSAECONNRESET:
    case WSAECONNABORTED:
    case WSAENETRESET:
    case WSAESHUTDOWN:
    case WSAENOTCONN:
        return sending ? EPIPE : ECONNRESET;
    case WSAENOTSOCK:
    case WSA_INVALID_HANDLE:
        return EBADF;
    case WSAEMFILE:
        return EMFILE;
    case WSAENOBUFS:
        return ENOBUFS;
    case WSA_NOT_ENOUGH_MEMORY:
        return ENOMEM;
    case WSAEMSGSIZE:
        return EMSGSIZE;
    case WSAEINVAL:
    case WSAEFAULT:
        return EINVAL;
    case WSAEACCES:
        return EACCES;
    case WSAEADDRINUSE:
        return EADDRINUSE;
    case WSAECONNREFUSED:
        return ECONNREFUSED;
    case WSAENETDOWN:
        return ENETDOWN;
    default:
        return EIO;
    }
}

static void set_errno_wsa(int sending)
{
    errno = errno_of(WSAGetLastError(), sending);
}

/* ---- per-socket state of unfinished records ----------------------------- */

static struct xstate *state_find(SOCKET s)
{
    struct xstate *x;

    AcquireSRWLockShared(&states_lock);
    for (x = states; x != NULL && x->s != s; x = x->next)
        ;
    ReleaseSRWLockShared(&states_lock);
    return x;
}

static struct xstate *state_get(SOCKET s)
{
    struct xstate *x = state_find(s);

    if (x != NULL)
        return x;
    /* The buffers are read only up to what the counters say: no zeroing. */
    if ((x = malloc(sizeof(*x))) == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    x->s = s;
    x->out_len = x->out_off = x->out_data_left = 0;
    x->out_handles = 0;
    x->in_have = x->in_data_left = 0;
    x->in_nhandles = 0;
    AcquireSRWLockExclusive(&states_lock);
    x->next = states;
    states = x;
    ReleaseSRWLockExclusive(&states_lock);
    return x;
}

static void state_drop(SOCKET s)
{
    struct xstate **pp, *x = NULL;

    AcquireSRWLockExclusive(&states_lock);
    for (pp = &states; *pp != NULL; pp = &(*pp)->next)
        if ((*pp)->s == s) {
            x = *pp;
            *pp = x->next;
            break;
        }
    ReleaseSRWLockExclusive(&states_lock);
    free(x);
}

/* Frees a state with nothing unfinished in either direction. */
static void state_settle(struct xstate *x)
{
    if (x != NULL && x->out_off == x->out_len && x->out_data_left == 0 && x->in_have == 0 &&
        x->in_data_left == 0)
        state_drop(x->s);
}

/* ---- handles ------------------------------------------------------------ */

static int nonblocking(SOCKET s)
{
    u_long on = 1;

    if (ioctlsocket(s, FIONBIO, &on) != 0) {
        set_errno_wsa(0);
        return -1;
    }
    return 0;
}

static int not_inherited(SOCKET s)
{
    if (!SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0)) {
        errno = EBADF;
        return -1;
    }
    return 0;
}

/* Our own handle of the socket an info describes: non-blocking, never
 * inherited.  INVALID_SOCKET on failure. */
static SOCKET from_info(WSAPROTOCOL_INFOW *info)
{
    SOCKET s = WSASocketW(FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, info, 0,
                          WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);

    if (s == INVALID_SOCKET) {
        set_errno_wsa(0);
        return INVALID_SOCKET;
    }
    if (int_of(s) < 0 || nonblocking(s) != 0) {
        if (int_of(s) < 0)
            errno = EMFILE;
        (void)closesocket(s);
        return INVALID_SOCKET;
    }
    return s;
}

int handoff_transport_prepare(int h)
{
    if (!wsa_ready())
        return -1;
    if (nonblocking(sock_of(h)) != 0)
        return -1;
    return not_inherited(sock_of(h));
}

int handoff_transport_adopt(int h)
{
    WSAPROTOCOL_INFOW info;
    SOCKET s = sock_of(h), own;
    int type, len = sizeof(type);

    if (!wsa_ready())
        return -1;
    if (getsockopt(s, SOL_SOCKET, SO_TYPE, (char *)&type, &len) == 0)
        return handoff_transport_prepare(h) == 0 ? h : -1;
    /* Wine (8) gives a child an inherited socket it can read but not send
     * on, poll or query; a handle of its own made from it is whole.  On
     * Windows getsockopt works and the inherited handle is kept. */
    if (WSADuplicateSocketW(s, GetCurrentProcessId(), &info) != 0) {
        set_errno_wsa(0);
        return -1;
    }
    if ((own = from_info(&info)) == INVALID_SOCKET)
        return -1;
    if (closesocket(s) != 0 && !CloseHandle((HANDLE)s)) {
        (void)closesocket(own);
        errno = EBADF;
        return -1;
    }
    return int_of(own);
}

int handoff_transport_dup(int h)
{
    WSAPROTOCOL_INFOW info;
    SOCKET s;

    if (!wsa_ready())
        return -1;
    if (WSADuplicateSocketW(sock_of(h), GetCurrentProcessId(), &info) != 0) {
        set_errno_wsa(0);
        return -1;
    }
    if ((s = from_info(&info)) == INVALID_SOCKET)
        return -1;
    return int_of(s);
}

void handoff_transport_close(int h)
{
    if (h < 0)
        return;
    state_drop(sock_of(h));
    /* closesocket, never shutdown: a handed socket is shared, and shutdown
     * would end it for the receiver too. */
    (void)closesocket(sock_of(h));
}

/* ---- the pair ----------------------------------------------------------- */

static SOCKET tcp_socket(void)
{
    SOCKET s = WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0,
                          WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);

    if (s == INVALID_SOCKET)
        set_errno_wsa(0);
    else if (int_of(s) < 0) {
        (void)closesocket(s);
        errno = EMFILE;
        s = INVALID_SOCKET;
    }
    return s;
}

static int same_addr(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
    return a->sin_family == b->sin_family && a->sin_port == b->sin_port &&
           a->sin_addr.s_addr == b->sin_addr.s_addr;
}

/* Connects c to a one-shot listener on 127.0.0.1 and accepts it; the
 * accepted end must be c itself (another local process could connect to
 * the listener first).  INVALID_SOCKET on failure. */
static SOCKET pair_accept(SOCKET c)
{
    struct sockaddr_in la, ca, pa;
    int len = sizeof(la), one = 1;
    SOCKET l = tcp_socket(), a = INVALID_SOCKET;

    if (l == INVALID_SOCKET)
        return INVALID_SOCKET;
    memset(&la, 0, sizeof(la));
    la.sin_family = AF_INET;
    la.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Nobody may bind the port beside us meanwhile. */
    if (setsockopt(l, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, (const char *)&one, sizeof(one)) != 0 ||
        bind(l, (struct sockaddr *)&la, sizeof(la)) != 0 || listen(l, 1) != 0 ||
        getsockname(l, (struct sockaddr *)&la, &len) != 0 ||
        connect(c, (struct sockaddr *)&la, sizeof(la)) != 0) {
        set_errno_wsa(0);
        goto out;
    }
    len = sizeof(pa);
    if ((a = accept(l, (struct sockaddr *)&pa, &len)) == INVALID_SOCKET) {
        set_errno_wsa(0);
        goto out;
    }
    len = sizeof(ca);
    if (getsockname(c, (struct sockaddr *)&ca, &len) != 0) {
        set_errno_wsa(0);
        goto fail;
    }
    if (!same_addr(&ca, &pa)) {
        errno = ECONNABORTED;
        goto fail;
    }
    if (int_of(a) < 0) {
        errno = EMFILE;
        goto fail;
    }
    goto out;
fail:
    (void)closesocket(a);
    a = INVALID_SOCKET;
out:
    (void)closesocket(l);
    return a;
}

/* Channel messages are small and answered: no Nagle delay. */
static int channel_end(SOCKET s)
{
    int one = 1;

    if (setsockopt(s, IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof(one)) != 0) {
        set_errno_wsa(0);
        return -1;
    }
    if (nonblocking(s) != 0)
        return -1;
    return not_inherited(s);
}

int handoff_transport_pair(int fds[2])
{
    SOCKET c, a;
    int saved;

    if (!wsa_ready())
        return -1;
    if ((c = tcp_socket()) == INVALID_SOCKET)
        return -1;
    if ((a = pair_accept(c)) == INVALID_SOCKET) {
        saved = errno;
        (void)closesocket(c);
        errno = saved;
        return -1;
    }
    if (channel_end(c) != 0 || channel_end(a) != 0) {
        saved = errno;
        (void)closesocket(c);
        (void)closesocket(a);
        errno = saved;
        return -1;
    }
    fds[0] = int_of(c);
    fds[1] = int_of(a);
    return 0;
}

/* ---- sending ------------------------------------------------------------ */

static void be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Header and infos of a record of len bytes with the handles duplicated
 * for peer; its length, or 0 with errno (nothing duplicated then stays:
 * WSADuplicateSocketW makes nothing the caller must undo). */
static size_t record_prefix(uint8_t *out, DWORD peer, size_t len, const int *fds,
                            const uint8_t *kinds, unsigned nfds)
{
    unsigned i;

    out[0] = (uint8_t)(RECORD_MAGIC >> 8);
    out[1] = (uint8_t)RECORD_MAGIC;
    out[2] = (uint8_t)nfds;
    out[3] = 0;
    be32_put(out + 4, (uint32_t)len);
    for (i = 0; i < nfds; i++) {
        WSAPROTOCOL_INFOW info;

        /* Channel ends are sockets here too: every kind duplicates alike. */
        if (kinds != NULL && kinds[i] != HANDOFF_H_SOCKET && kinds[i] != HANDOFF_H_CHANNEL) {
            errno = EINVAL;
            return 0;
        }
        if (WSADuplicateSocketW(sock_of(fds[i]), peer, &info) != 0) {
            set_errno_wsa(0);
            return 0;
        }
        memcpy(out + RECORD_HDR_LEN + i * INFO_LEN, &info, INFO_LEN);
    }
    return RECORD_HDR_LEN + nfds * INFO_LEN;
}

/* Writes what is left of the committed prefix: 1 done, 0 would block, -1. */
static int prefix_flush(struct xstate *x)
{
    int n;

    while (x->out_off < x->out_len) {
        n = send(x->s, (const char *)x->out_prefix + x->out_off,
                 (int)(x->out_len - x->out_off), 0);
        if (n == SOCKET_ERROR) {
            set_errno_wsa(1);
            return errno == EAGAIN ? 0 : -1;
        }
        x->out_off += (size_t)n;
    }
    return 1;
}

/* Data bytes of the record under way. */
static ssize_t data_send(struct xstate *x, const void *buf, size_t len)
{
    size_t want = len < x->out_data_left ? len : x->out_data_left;
    int n = send(x->s, buf, (int)want, 0);

    if (n == SOCKET_ERROR) {
        set_errno_wsa(1);
        return -1;
    }
    x->out_data_left -= (size_t)n;
    if (n > 0)
        x->out_handles = 0;   /* the channel counts them sent now */
    return n;
}

/* The record is under way: its prefix first, then its data. */
static ssize_t record_continue(struct xstate *x, const void *buf, size_t len, unsigned nfds)
{
    ssize_t n;
    int r;

    /* Handles may only come again as the retry of the record that has them. */
    if (nfds > 0 && !x->out_handles) {
        errno = EINVAL;
        return -1;
    }
    if ((r = prefix_flush(x)) != 1) {
        if (r == 0)
            errno = EAGAIN;
        return -1;
    }
    n = data_send(x, buf, len);
    state_settle(x);
    return n;
}

/*
 * Writes a new record: one send of prefix and data copied together when
 * small, else the prefix and then the data (plain send: Wine refuses
 * WSASend on a socket a process inherited).  Bytes written (0 when the
 * socket would block), or -1.
 */
static ssize_t record_write(SOCKET s, const uint8_t *prefix, size_t plen, const void *buf,
                            size_t len)
{
    uint8_t joined[PREFIX_MAX + COMBINED_DATA_MAX];
    int n, k;

    if (len <= COMBINED_DATA_MAX) {
        memcpy(joined, prefix, plen);
        memcpy(joined + plen, buf, len);
        n = send(s, (const char *)joined, (int)(plen + len), 0);
        handoff_cleanse(joined, plen + len);   /* it may hold TLS secrets */
    } else if ((n = send(s, (const char *)prefix, (int)plen, 0)) == (int)plen) {
        k = send(s, buf, (int)(len > INT_MAX ? INT_MAX : len), 0);
        /* An error other than blocking comes again with the next write. */
        return (ssize_t)plen + (k > 0 ? k : 0);
    }
    if (n == SOCKET_ERROR) {
        set_errno_wsa(1);
        return errno == EAGAIN ? 0 : -1;
    }
    return n;
}

/* A record holds one message's handles (see the top of this file). */
unsigned handoff_transport_send_fds_max(void)
{
    return HANDOFF_MAX_FDS;
}

ssize_t handoff_transport_send(int fd, pid_t peer_pid, const void *buf, size_t len,
                               const int *fds, const uint8_t *kinds, unsigned nfds)
{
    SOCKET s = sock_of(fd);
    struct xstate *x;
    ssize_t w;
    size_t sent, plen;
    uint8_t prefix[PREFIX_MAX];

    if (nfds > HANDOFF_MAX_FDS || (nfds > 0 && fds == NULL) || len > RECORD_DATA_MAX ||
        (len == 0 && nfds > 0)) {
        errno = EINVAL;
        return -1;
    }
    if (len == 0)
        return 0;
    if ((x = state_find(s)) != NULL && (x->out_off < x->out_len || x->out_data_left > 0))
        return record_continue(x, buf, len, nfds);
    if ((plen = record_prefix(prefix, (DWORD)peer_pid, len, fds, kinds, nfds)) == 0)
        return -1;
    if ((w = record_write(s, prefix, plen, buf, len)) == -1)
        return -1;
    if (w == 0 && nfds == 0) {
        errno = EAGAIN;
        return -1;
    }
    /* Any of it written, or handles duplicated: the record is committed. */
    sent = (size_t)w;
    if (sent >= plen + len)
        return (ssize_t)len;
    /* Part of it: the rest is this socket's to finish first. */
    if ((x = state_get(s)) == NULL)
        return -1;
    if (sent < plen) {
        memcpy(x->out_prefix, prefix, plen);
        x->out_len = plen;
        x->out_off = sent;
    }
    x->out_data_left = len - (sent > plen ? sent - plen : 0);
    x->out_handles = nfds > 0 && sent <= plen;
    if (sent > plen)
        return (ssize_t)(sent - plen);
    errno = EAGAIN;
    return -1;
}

/* ---- receiving ---------------------------------------------------------- */

/* Reads up to want more bytes of the prefix: 1 when it has them, 0 would
 * block, -1 error, -2 EOF. */
static int prefix_read(struct xstate *x, size_t want)
{
    int n;

    while (x->in_have < want) {
        n = recv(x->s, (char *)x->in_prefix + x->in_have, (int)(want - x->in_have), 0);
        if (n == 0)
            return -2;
        if (n == SOCKET_ERROR) {
            set_errno_wsa(0);
            return errno == EAGAIN ? 0 : -1;
        }
        x->in_have += (size_t)n;
    }
    return 1;
}

static uint32_t header_len(const uint8_t *p)
{
    return (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
}

/* Checks a record header; its handle count, or -1 (errno EPROTO: not this
 * transport's stream). */
static int header_check(const uint8_t *p)
{
    uint32_t len = header_len(p);

    if ((unsigned)(p[0] << 8 | p[1]) != RECORD_MAGIC || p[2] > HANDOFF_MAX_FDS || p[3] != 0 ||
        len == 0 || len > RECORD_DATA_MAX) {
        errno = EPROTO;
        return -1;
    }
    return p[2];
}

/* The handles of a whole prefix become ours, appended to fds: each one, or
 * one HANDOFF_FD_LOST for them all when any could not be made. */
static void handles_take(struct xstate *x, int *fds, unsigned *nfds)
{
    SOCKET got[HANDOFF_MAX_FDS];
    unsigned i, k;

    for (i = 0; i < x->in_nhandles; i++) {
        WSAPROTOCOL_INFOW info;

        memcpy(&info, x->in_prefix + RECORD_HDR_LEN + i * INFO_LEN, INFO_LEN);
        if ((got[i] = from_info(&info)) == INVALID_SOCKET)
            break;
    }
    if (i < x->in_nhandles) {
        for (k = 0; k < i; k++)
            (void)closesocket(got[k]);
        fds[(*nfds)++] = HANDOFF_FD_LOST;
        return;
    }
    for (i = 0; i < x->in_nhandles; i++)
        fds[(*nfds)++] = int_of(got[i]);
}

/*
 * The next record's header and handles.  1 when its data can be read, 0 when
 * it would block, -1 on error, -2 at EOF, -3 when its handles do not fit in
 * fds (nothing taken).
 */
static int record_begin(struct xstate *x, int *fds, unsigned *nfds, unsigned maxfds)
{
    int r, nh;

    if ((r = prefix_read(x, RECORD_HDR_LEN)) != 1)
        return r;
    if ((nh = header_check(x->in_prefix)) < 0)
        return -1;
    x->in_nhandles = (unsigned)nh;
    if (nh > 0 && (*nfds > maxfds || (unsigned)nh > maxfds - *nfds))
        return -3;
    if ((r = prefix_read(x, RECORD_HDR_LEN + (size_t)nh * INFO_LEN)) != 1)
        return r;
    handles_take(x, fds, nfds);
    x->in_data_left = header_len(x->in_prefix);
    x->in_have = 0;
    x->in_nhandles = 0;
    return 1;
}

/*
 * Reads records' data into buf while it has room and bytes are there: many
 * small messages are one call, as on Linux.  Handles of a record are
 * appended before any byte of it is returned.
 */
ssize_t handoff_transport_recv(int fd, void *buf, size_t len,
                               int *fds, unsigned *nfds, unsigned maxfds)
{
    struct xstate *x;
    size_t got = 0, want;
    int n, r;

    if ((x = state_get(sock_of(fd))) == NULL)
        return -1;
    while (got < len) {
        if (x->in_data_left == 0) {
            r = record_begin(x, fds, nfds, maxfds);
            if (r == -3 && got == 0)
                errno = EMSGSIZE;
            if (r == -3 || (r == 0 && got > 0) || (r == -2 && got > 0))
                break;   /* what came so far first; the rest at the next call */
            if (r != 1) {
                if (r == 0)
                    errno = EAGAIN;
                state_settle(x);
                return r == -2 ? 0 : -1;
            }
        }
        want = len - got < x->in_data_left ? len - got : x->in_data_left;
        n = recv(x->s, (char *)buf + got, (int)(want > INT_MAX ? INT_MAX : want), 0);
        if (n == 0 || n == SOCKET_ERROR) {
            if (n == SOCKET_ERROR)
                set_errno_wsa(0);
            if (got > 0)
                break;   /* EOF or the error again at the next call */
            state_settle(x);
            return n == 0 ? 0 : -1;
        }
        got += (size_t)n;
        x->in_data_left -= (size_t)n;
    }
    state_settle(x);
    if (got == 0) {
        errno = len == 0 ? EINVAL : EMSGSIZE;   /* the only way out with nothing */
        return -1;
    }
    return (ssize_t)got;
}

/* ---- waiting ------------------------------------------------------------ */

int handoff_transport_wait(int fd, int for_write, int timeout_ms)
{
    WSAPOLLFD p;
    int r;

    /* Bytes of a record begun but not finished are not the channel's to
     * wait for: a send with a committed prefix waits for room like any. */
    p.fd = sock_of(fd);
    p.events = for_write ? POLLWRNORM : POLLRDNORM;
    p.revents = 0;
    r = WSAPoll(&p, 1, timeout_ms < 0 ? -1 : timeout_ms);
    if (r == SOCKET_ERROR) {
        set_errno_wsa(0);
        return -1;
    }
    if (r == 0)
        return 0;
    if (p.revents & POLLNVAL) {
        errno = EBADF;
        return -1;
    }
    /* POLLERR/POLLHUP count as ready: the next send/recv reports them. */
    return 1;
}
