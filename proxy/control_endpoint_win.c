/*
 * control_endpoint_win.c - the control endpoint on Windows
 * (control_endpoint.h): a named pipe \\.\pipe\baton-<hash>, the hash being
 * FNV-1a 64 of the configuration file's absolute path in lower case (the
 * same file names the same pipe however it is spelled), created with a
 * DACL for SYSTEM, Administrators and the master's account only
 * (winsec.h).  FILE_FLAG_FIRST_PIPE_INSTANCE makes a second master of the
 * same configuration fail instead of sharing the name.
 *
 * libevent's win32 backend waits on sockets only, so a thread serves the
 * pipe: it waits for each client (overlapped ConnectNamedPipe, so that
 * close can stop it), checks who it is, and starts a relay thread that
 * bridges the pipe to one end of a loopback socket pair; the other end is
 * queued for the loop, woken through proxy_wakeup, which hands it to the
 * master like an accepted Unix client.  The master's command handling
 * (master_ctl.c: deadlines, one command per connection) is thus the same
 * on both systems.
 */
#include "control_endpoint.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <winsock2.h>
#include <windows.h>

#include <event2/buffer.h>
#include <event2/util.h>

#include "log.h"
#include "wakeup.h"
#include "winsec.h"

#define PIPE_PREFIX      "\\\\.\\pipe\\baton-"
#define PIPE_BUF_SIZE    4096
#define RELAY_MAX        64      /* relay threads at once (master_ctl.c serves 64) */
#define RELAY_WRITE_MS   10000   /* a client that does not read its answer */
#define QUEUE_MAX        RELAY_MAX

struct endpoint_client {
    evutil_socket_t        fd;
    struct proxy_peer_cred cred;
};

struct proxy_control_endpoint {
    char                     name[CONF_PATH_MAX];
    PSECURITY_DESCRIPTOR     sd;
    HANDLE                   first;     /* the instance created by open */
    HANDLE                   stop;      /* manual-reset: close was called */
    HANDLE                   thread;
    struct proxy_wakeup     *wake;
    proxy_control_client_cb *cb;
    void                    *arg;
    CRITICAL_SECTION         lock;      /* queue, nqueue, relays */
    struct endpoint_client   queue[QUEUE_MAX];
    size_t                   nqueue;
    LONG                     relays;
    HANDLE                   relays_done;   /* set when relays falls to 0 */
};

struct relay {
    struct proxy_control_endpoint *ep;
    HANDLE                         pipe;
};

static const char *win_err(char *buf, size_t len)
{
    return proxy_winsec_strerror(GetLastError(), buf, len);
}

int proxy_control_endpoint_name(const char *conf_path, const char *control, char *out,
                                size_t outlen, char *why, size_t whylen)
{
    char full[MAX_PATH * 2], err[160];
    uint64_t h = 0xcbf29ce484222325ULL;
    DWORD n;

    (void)control;
    n = GetFullPathNameA(conf_path, sizeof(full), full, NULL);
    if (n == 0 || n >= sizeof(full)) {
        snprintf(why, whylen, "cannot make %s absolute: %s", conf_path,
                 n == 0 ? win_err(err, sizeof(err)) : "path too long");
        return -1;
    }
    for (const char *p = full; *p != '\0'; p++) {
        unsigned char ch = (unsigned char)*p;

        if (ch == '/')
            ch = '\\';
        else if (ch >= 'A' && ch <= 'Z')
            ch = (unsigned char)(ch - 'A' + 'a');
        h = (h ^ ch) * 0x100000001b3ULL;
    }
    if (snprintf(out, outlen, PIPE_PREFIX "%016llx", (unsigned long long)h) >= (int)outlen) {
        snprintf(why, whylen, "control pipe name too long");
        return -1;
    }
    return 0;
}

static HANDLE pipe_instance(struct proxy_control_endpoint *ep, DWORD first, char *why,
                            size_t whylen)
{
    SECURITY_ATTRIBUTES sa = { sizeof(sa), ep->sd, FALSE };
    char err[160];
    HANDLE h;

    /* Remote clients are refused: the control channel is local only. */
    h = CreateNamedPipeA(ep->name, PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | first,
                         PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT |
                         PIPE_REJECT_REMOTE_CLIENTS, PIPE_UNLIMITED_INSTANCES, PIPE_BUF_SIZE,
                         PIPE_BUF_SIZE, 0, &sa);
    if (h == INVALID_HANDLE_VALUE) {
        if (first != 0 && (GetLastError() == ERROR_ACCESS_DENIED ||
                           GetLastError() == ERROR_PIPE_BUSY))
            snprintf(why, whylen, "another baton master is running on control pipe %s "
                     "(the same configuration file)", ep->name);
        else
            snprintf(why, whylen, "cannot create control pipe %s: %s", ep->name,
                     win_err(err, sizeof(err)));
        return NULL;
    }
    return h;
}

struct proxy_control_endpoint *proxy_control_endpoint_open(const struct conf *c, char *why,
                                                           size_t whylen)
{
    struct proxy_control_endpoint *ep = calloc(1, sizeof(*ep));
    char err[160];

    if (ep == NULL) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    InitializeCriticalSection(&ep->lock);
    if (proxy_control_endpoint_name(c->path, c->global.control, ep->name, sizeof(ep->name),
                                    why, whylen) != 0 ||
        (ep->sd = proxy_winsec_private_sd(why, whylen)) == NULL)
        goto fail;
    ep->stop = CreateEventA(NULL, TRUE, FALSE, NULL);
    ep->relays_done = CreateEventA(NULL, TRUE, TRUE, NULL);
    if (ep->stop == NULL || ep->relays_done == NULL) {
        snprintf(why, whylen, "CreateEvent: %s", win_err(err, sizeof(err)));
        goto fail;
    }
    /* FILE_FLAG_FIRST_PIPE_INSTANCE refuses a name in use; Wine does not
     * enforce it, so a live pipe (one answering a wait) is refused first. */
    if (WaitNamedPipeA(ep->name, 1) || GetLastError() == ERROR_SEM_TIMEOUT) {
        snprintf(why, whylen, "another baton master is running on control pipe %s (the "
                 "same configuration file)", ep->name);
        goto fail;
    }
    ep->first = pipe_instance(ep, FILE_FLAG_FIRST_PIPE_INSTANCE, why, whylen);
    if (ep->first == NULL)
        goto fail;
    return ep;
fail:
    proxy_control_endpoint_close(ep);
    return NULL;
}

struct proxy_control_endpoint *proxy_control_endpoint_adopt(int fd, const struct conf *c,
                                                            char *why, size_t whylen)
{
    (void)fd;
    (void)c;
    snprintf(why, whylen, "a control pipe cannot be handed over on Windows (the master is "
             "upgraded by restarting the service)");
    return NULL;
}

int proxy_control_endpoint_fd(const struct proxy_control_endpoint *ep)
{
    (void)ep;
    return -1;
}

/* Writes all of buf to the pipe, waiting at most RELAY_WRITE_MS.  0 or -1. */
static int pipe_write_all(HANDLE pipe, HANDLE ev, const char *buf, size_t len)
{
    while (len > 0) {
        OVERLAPPED ov = { .hEvent = ev };
        DWORD n = 0;

        if (!WriteFile(pipe, buf, (DWORD)len, &n, &ov)) {
            if (GetLastError() != ERROR_IO_PENDING)
                return -1;
            if (WaitForSingleObject(ev, RELAY_WRITE_MS) != WAIT_OBJECT_0) {
                CancelIo(pipe);
                (void)GetOverlappedResult(pipe, &ov, &n, TRUE);
                return -1;
            }
            if (!GetOverlappedResult(pipe, &ov, &n, FALSE))
                return -1;
        }
        buf += n;
        len -= n;
    }
    return 0;
}

static void refuse_on_pipe(HANDLE pipe, const char *why)
{
    char line[600];
    int n = snprintf(line, sizeof(line), "ERR %s\n", why);
    HANDLE ev = CreateEventA(NULL, TRUE, FALSE, NULL);

    if (ev != NULL && n > 0)
        (void)pipe_write_all(pipe, ev, line, (size_t)n < sizeof(line) ? (size_t)n :
                             sizeof(line) - 1);
    if (ev != NULL)
        CloseHandle(ev);
}

static void relay_done(struct proxy_control_endpoint *ep)
{
    EnterCriticalSection(&ep->lock);
    if (--ep->relays == 0)
        SetEvent(ep->relays_done);
    LeaveCriticalSection(&ep->lock);
}

/* Queues the loop's end for the loop; 0, or -1 if the queue is full. */
static int queue_client(struct proxy_control_endpoint *ep, evutil_socket_t fd,
                        const struct proxy_peer_cred *cred)
{
    int rc = -1;

    EnterCriticalSection(&ep->lock);
    if (ep->nqueue < QUEUE_MAX) {
        ep->queue[ep->nqueue].fd = fd;
        ep->queue[ep->nqueue].cred = *cred;
        ep->nqueue++;
        rc = 0;
    }
    LeaveCriticalSection(&ep->lock);
    if (rc == 0)
        proxy_wakeup_poke(ep->wake);
    return rc;
}

/* Who is the client, and may it control the master?  1, 0 (why), -1. */
static int relay_admit(HANDLE pipe, struct proxy_peer_cred *cred, char *why, size_t whylen)
{
    char who[128], err[256];
    unsigned long rid;
    int ok;

    if (proxy_peer_cred_get((int)(intptr_t)pipe, cred, err, sizeof(err)) != 0) {
        snprintf(why, whylen, "%s", err);
        return -1;
    }
    ok = proxy_winsec_process_trusted((DWORD)cred->pid, who, sizeof(who), &rid, err,
                                      sizeof(err));
    if (ok < 0)
        snprintf(why, whylen, "%s", err);
    else if (ok == 0)
        snprintf(why, whylen, "permission denied: account %s (pid %ld) may not control this "
                 "baton (allowed: SYSTEM, Administrators and baton's own account)", who,
                 (long)cred->pid);
    return ok;
}

/*
 * Copies the client's bytes to the loop's socket and the loop's bytes (the
 * answer) to the client until the master closes its end.  The client's
 * end closing is passed on as a shutdown of ours (the master then sees
 * EOF, as with a Unix client).  Closing the pipe handle (never
 * DisconnectNamedPipe, which would discard an answer not read yet) lets
 * the client read what is left.
 */
static void relay_pump(struct proxy_control_endpoint *ep, HANDLE pipe, evutil_socket_t s)
{
    HANDLE rd_ev = CreateEventA(NULL, TRUE, FALSE, NULL);
    HANDLE wr_ev = CreateEventA(NULL, TRUE, FALSE, NULL);
    WSAEVENT sock_ev = WSACreateEvent();
    OVERLAPPED ov;
    char in[PIPE_BUF_SIZE], out[PIPE_BUF_SIZE];
    int reading = 0, pipe_open = 1;

    if (rd_ev == NULL || wr_ev == NULL || sock_ev == WSA_INVALID_EVENT ||
        WSAEventSelect(s, sock_ev, FD_READ | FD_CLOSE) != 0)
        goto out;
    for (;;) {
        HANDLE waits[3] = { ep->stop, sock_ev, rd_ev };
        DWORD nwait = reading ? 3 : 2, w, n = 0;

        if (pipe_open && !reading) {
            memset(&ov, 0, sizeof(ov));
            ov.hEvent = rd_ev;
            if (ReadFile(pipe, in, sizeof(in), &n, &ov) || GetLastError() == ERROR_IO_PENDING) {
                reading = 1;
                nwait = 3;
            } else {
                pipe_open = 0;
                shutdown(s, SD_SEND);
            }
        }
        w = WaitForMultipleObjects(nwait, waits, FALSE, INFINITE);
        if (w == WAIT_OBJECT_0)
            break;
        if (w == WAIT_OBJECT_0 + 2) {
            reading = 0;
            if (!GetOverlappedResult(pipe, &ov, &n, FALSE) || n == 0) {
                /* The client is gone: the master still runs what it sent. */
                pipe_open = 0;
                shutdown(s, SD_SEND);
                continue;
            }
            /* A client that keeps sending after its line is not read by
             * the master: once our socket is full, stop reading it. */
            if (send(s, in, (int)n, 0) != (int)n) {
                pipe_open = 0;
                continue;
            }
            continue;
        }
        if (w != WAIT_OBJECT_0 + 1)
            break;
        WSAResetEvent(sock_ev);
        for (;;) {
            int got = recv(s, out, sizeof(out), 0);

            if (got > 0) {
                if (pipe_write_all(pipe, wr_ev, out, (size_t)got) != 0)
                    goto out;
                continue;
            }
            if (got == 0 || WSAGetLastError() != WSAEWOULDBLOCK)
                goto out;   /* the master closed: the answer is complete */
            break;
        }
    }
out:
    if (reading) {
        CancelIo(pipe);
        (void)GetOverlappedResult(pipe, &ov, &(DWORD){ 0 }, TRUE);
    }
    if (sock_ev != WSA_INVALID_EVENT)
        WSACloseEvent(sock_ev);
    if (rd_ev != NULL)
        CloseHandle(rd_ev);
    if (wr_ev != NULL)
        CloseHandle(wr_ev);
}

static DWORD WINAPI relay_main(LPVOID arg)
{
    struct relay *r = arg;
    struct proxy_control_endpoint *ep = r->ep;
    HANDLE pipe = r->pipe;
    evutil_socket_t pair[2];
    struct proxy_peer_cred cred = { .pid = -1, .uid = (uid_t)-1 };
    char why[512];

    free(r);
    switch (relay_admit(pipe, &cred, why, sizeof(why))) {
    case 1:
        break;
    case 0:
        proxy_log_warn("control pipe: refused client pid %ld: %s", (long)cred.pid, why);
        refuse_on_pipe(pipe, why);
        goto out;
    default:
        proxy_log_warn("control pipe: cannot tell who a client is (%s); refused", why);
        refuse_on_pipe(pipe, "permission denied: cannot check your credentials");
        goto out;
    }
    /* Loopback TCP made by libevent, which checks the peer is its own. */
    if (evutil_socketpair(AF_INET, SOCK_STREAM, 0, pair) != 0) {
        proxy_log_error("control pipe: socket pair: %s",
                        evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        refuse_on_pipe(pipe, "the master cannot serve you now; try again");
        goto out;
    }
    if (evutil_make_socket_nonblocking(pair[0]) != 0 ||
        evutil_make_socket_closeonexec(pair[0]) != 0 ||
        evutil_make_socket_closeonexec(pair[1]) != 0 || queue_client(ep, pair[0], &cred) != 0) {
        proxy_log_warn("control pipe: cannot hand a client to the loop; refused");
        refuse_on_pipe(pipe, "too many control clients; try again");
        evutil_closesocket(pair[0]);
        evutil_closesocket(pair[1]);
        goto out;
    }
    relay_pump(ep, pipe, pair[1]);
    evutil_closesocket(pair[1]);
out:
    CloseHandle(pipe);
    relay_done(ep);
    return 0;
}

static void start_relay(struct proxy_control_endpoint *ep, HANDLE pipe)
{
    struct relay *r = NULL;
    HANDLE t = NULL;
    int room;

    EnterCriticalSection(&ep->lock);
    room = ep->relays < RELAY_MAX;
    if (room && ++ep->relays == 1)
        ResetEvent(ep->relays_done);
    LeaveCriticalSection(&ep->lock);
    if (!room) {
        proxy_log_warn("control pipe: %d clients connected; refusing one more", RELAY_MAX);
        refuse_on_pipe(pipe, "too many control clients; try again");
        CloseHandle(pipe);
        return;
    }
    r = malloc(sizeof(*r));
    if (r != NULL) {
        r->ep = ep;
        r->pipe = pipe;
        t = CreateThread(NULL, 64 * 1024, relay_main, r, STACK_SIZE_PARAM_IS_A_RESERVATION,
                         NULL);
    }
    if (t == NULL) {
        proxy_log_error("control pipe: cannot start a thread for a client; refused");
        free(r);
        refuse_on_pipe(pipe, "the master cannot serve you now; try again");
        CloseHandle(pipe);
        relay_done(ep);
        return;
    }
    CloseHandle(t);
}

/* Waits for a client on pipe; 1 connected, 0 stopping, -1 failed. */
static int wait_client(struct proxy_control_endpoint *ep, HANDLE pipe, HANDLE ev)
{
    OVERLAPPED ov = { .hEvent = ev };
    HANDLE waits[2] = { ep->stop, ev };
    DWORD n;

    ResetEvent(ev);
    if (ConnectNamedPipe(pipe, &ov))
        return 1;
    switch (GetLastError()) {
    case ERROR_PIPE_CONNECTED:
        return 1;
    case ERROR_IO_PENDING:
        break;
    default:
        return -1;
    }
    if (WaitForMultipleObjects(2, waits, FALSE, INFINITE) != WAIT_OBJECT_0 + 1) {
        CancelIo(pipe);
        (void)GetOverlappedResult(pipe, &ov, &n, TRUE);
        return 0;
    }
    return GetOverlappedResult(pipe, &ov, &n, FALSE) ? 1 : -1;
}

static DWORD WINAPI endpoint_main(LPVOID arg)
{
    struct proxy_control_endpoint *ep = arg;
    HANDLE ev = CreateEventA(NULL, TRUE, FALSE, NULL);
    HANDLE pipe = ep->first;
    char why[512], err[160];

    ep->first = NULL;
    if (ev == NULL) {
        proxy_log_error("control pipe %s: CreateEvent: %s; nobody can control this master",
                        ep->name, win_err(err, sizeof(err)));
        CloseHandle(pipe);
        return 1;
    }
    for (;;) {
        int rc = wait_client(ep, pipe, ev);

        if (rc == 0) {
            CloseHandle(pipe);
            break;
        }
        if (rc > 0)
            start_relay(ep, pipe);    /* which now owns the instance */
        else
            CloseHandle(pipe);        /* a client that came and went */
        while ((pipe = pipe_instance(ep, 0, why, sizeof(why))) == NULL) {
            /* Out of resources: try again rather than lose the channel. */
            proxy_log_error("%s; retrying in 1 s", why);
            if (WaitForSingleObject(ep->stop, 1000) == WAIT_OBJECT_0) {
                CloseHandle(ev);
                return 0;
            }
        }
    }
    CloseHandle(ev);
    return 0;
}

static void endpoint_wake_cb(void *arg)
{
    struct proxy_control_endpoint *ep = arg;

    for (;;) {
        struct endpoint_client c;
        int have = 0;

        EnterCriticalSection(&ep->lock);
        if (ep->nqueue > 0) {
            c = ep->queue[0];
            memmove(ep->queue, ep->queue + 1, --ep->nqueue * sizeof(ep->queue[0]));
            have = 1;
        }
        LeaveCriticalSection(&ep->lock);
        if (!have)
            return;
        ep->cb((int)c.fd, &c.cred, ep->arg);
    }
}

int proxy_control_endpoint_start(struct proxy_control_endpoint *ep, struct event_base *base,
                                 const struct conf_global *g, proxy_control_client_cb *cb,
                                 void *arg)
{
    char err[160];

    (void)g;   /* the DACL and winsec.h decide; control_group is refused on Windows */
    ep->cb = cb;
    ep->arg = arg;
    ep->wake = proxy_wakeup_new(base, endpoint_wake_cb, ep);
    if (ep->wake == NULL)
        return -1;
    ep->thread = CreateThread(NULL, 0, endpoint_main, ep, 0, NULL);
    if (ep->thread == NULL) {
        proxy_log_error("control pipe %s: cannot start its thread: %s", ep->name,
                        win_err(err, sizeof(err)));
        return -1;
    }
    return 0;
}

void proxy_control_endpoint_close(struct proxy_control_endpoint *ep)
{
    if (ep == NULL)
        return;
    if (ep->stop != NULL)
        SetEvent(ep->stop);
    if (ep->thread != NULL) {
        WaitForSingleObject(ep->thread, INFINITE);
        CloseHandle(ep->thread);
    }
    /* Relays end at the stop event; they use ep until they do. */
    if (ep->relays_done != NULL)
        WaitForSingleObject(ep->relays_done, INFINITE);
    for (size_t i = 0; i < ep->nqueue; i++)
        evutil_closesocket(ep->queue[i].fd);
    if (ep->first != NULL)
        CloseHandle(ep->first);
    proxy_wakeup_free(ep->wake);
    if (ep->stop != NULL)
        CloseHandle(ep->stop);
    if (ep->relays_done != NULL)
        CloseHandle(ep->relays_done);
    if (ep->sd != NULL)
        LocalFree(ep->sd);
    DeleteCriticalSection(&ep->lock);
    free(ep);
}

void proxy_control_endpoint_refuse(int fd, const char *why)
{
    char junk[256], line[600];
    int n = snprintf(line, sizeof(line), "ERR %s\n", why);

    /* The socket is non-blocking: read what came, answer, close. */
    (void)recv((SOCKET)(intptr_t)fd, junk, sizeof(junk), 0);
    if (n > 0)
        (void)send((SOCKET)(intptr_t)fd, line,
                   (size_t)n < sizeof(line) ? n : (int)sizeof(line) - 1, 0);
    evutil_closesocket(fd);
}

void proxy_control_endpoint_send_now(int fd, const struct evbuffer_iovec *vec, int n)
{
    /* Non-blocking already; Windows raises no SIGPIPE. */
    for (int i = 0; i < n; i++)
        if (send((SOCKET)(intptr_t)fd, vec[i].iov_base, (int)vec[i].iov_len, 0) !=
            (int)vec[i].iov_len)
            return;
}

int proxy_control_set_access(const struct conf_global *g, char *why, size_t whylen)
{
    (void)g;
    (void)why;
    (void)whylen;
    return 0;   /* fixed by the pipe's DACL at creation; control_group is refused here */
}

int proxy_control_check_path(const struct conf *c, char *err, size_t errlen, char *warn,
                             size_t warnlen)
{
    char name[CONF_PATH_MAX], why[256];

    err[0] = warn[0] = '\0';
    if (proxy_control_endpoint_name(c->path, c->global.control, name, sizeof(name), why,
                                    sizeof(why)) != 0) {
        snprintf(err, errlen, "%s:%d: control: %s\n", c->path, c->global.control_line, why);
        return -1;
    }
    return 0;
}

/* The client's checks of the server: a master run by SYSTEM, an
 * administrator or this user.  0, or -1 with why. */
static int check_server(HANDLE pipe, const char *name, char *why, size_t whylen)
{
    ULONG pid = 0;
    unsigned long rid;
    char who[128], err[256];
    int ok;

    if (!GetNamedPipeServerProcessId(pipe, &pid)) {
        snprintf(why, whylen, "cannot tell who serves control pipe %s: %s", name,
                 win_err(err, sizeof(err)));
        return -1;
    }
    ok = proxy_winsec_process_trusted(pid, who, sizeof(who), &rid, err, sizeof(err));
    if (ok < 0) {
        snprintf(why, whylen, "cannot tell who serves control pipe %s: %s", name, err);
        return -1;
    }
    if (ok == 0) {
        snprintf(why, whylen, "refusing control pipe %s: it is served by account %s (pid "
                 "%lu), not SYSTEM, an administrator or this user", name, who,
                 (unsigned long)pid);
        return -1;
    }
    return 0;
}

static HANDLE client_open(const char *name, int timeout_ms, char *why, size_t whylen)
{
    char err[160];
    HANDLE h;

    for (;;) {
        /* SECURITY_IDENTIFICATION: a server may learn who we are, never
         * act as us. */
        h = CreateFileA(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                        FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
                        NULL);
        if (h != INVALID_HANDLE_VALUE)
            return h;
        if (GetLastError() != ERROR_PIPE_BUSY)
            break;
        if (!WaitNamedPipeA(name, (DWORD)timeout_ms)) {
            snprintf(why, whylen, "control pipe %s stayed busy for %d ms", name, timeout_ms);
            return NULL;
        }
    }
    if (GetLastError() == ERROR_FILE_NOT_FOUND)
        snprintf(why, whylen, "cannot connect to control pipe %s: no such pipe (is baton "
                 "running with this configuration file?)", name);
    else
        snprintf(why, whylen, "cannot connect to control pipe %s: %s", name,
                 win_err(err, sizeof(err)));
    return NULL;
}

/* One overlapped read or write of at most len bytes within timeout_ms:
 * the count, 0 at the end of the pipe, -1 with why. */
static long client_io(HANDLE h, HANDLE ev, int write, void *buf, size_t len, int timeout_ms,
                      const char *name, char *why, size_t whylen)
{
    OVERLAPPED ov = { .hEvent = ev };
    DWORD n = 0;
    BOOL ok;
    char err[160];

    ResetEvent(ev);
    ok = write ? WriteFile(h, buf, (DWORD)len, &n, &ov) : ReadFile(h, buf, (DWORD)len, &n, &ov);
    if (!ok && GetLastError() == ERROR_IO_PENDING) {
        if (WaitForSingleObject(ev, (DWORD)timeout_ms) != WAIT_OBJECT_0) {
            CancelIo(h);
            (void)GetOverlappedResult(h, &ov, &n, TRUE);
            snprintf(why, whylen, "no answer from the master on %s within %d ms", name,
                     timeout_ms);
            return -1;
        }
        ok = GetOverlappedResult(h, &ov, &n, FALSE);
    }
    if (!ok) {
        if (GetLastError() == ERROR_BROKEN_PIPE || GetLastError() == ERROR_PIPE_NOT_CONNECTED)
            return 0;
        snprintf(why, whylen, "%s %s: %s", write ? "writing to" : "reading from", name,
                 win_err(err, sizeof(err)));
        return -1;
    }
    return (long)n;
}

int proxy_control_endpoint_exchange(const char *name, const char *line, size_t len,
                                    int timeout_ms, char **reply, size_t *replylen, char *why,
                                    size_t whylen)
{
    HANDLE h, ev = NULL;
    char *buf = NULL;
    size_t got = 0, cap = 0;
    long n;
    int rc = -1;

    *reply = NULL;
    *replylen = 0;
    h = client_open(name, timeout_ms, why, whylen);
    if (h == NULL)
        return -1;
    if (check_server(h, name, why, whylen) != 0)
        goto out;
    ev = CreateEventA(NULL, TRUE, FALSE, NULL);
    if (ev == NULL) {
        snprintf(why, whylen, "CreateEvent failed");
        goto out;
    }
    /* A master that refuses (too many clients) answers and closes at once:
     * a failed write still leaves its answer to read. */
    (void)client_io(h, ev, 1, (void *)line, len, timeout_ms, name, why, whylen);
    for (;;) {
        if (got + PIPE_BUF_SIZE + 1 > cap) {
            char *p = realloc(buf, cap = cap ? cap * 2 : 8192);

            if (p == NULL) {
                snprintf(why, whylen, "out of memory");
                goto out;
            }
            buf = p;
        }
        n = client_io(h, ev, 0, buf + got, cap - got - 1, timeout_ms, name, why, whylen);
        if (n < 0)
            goto out;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (buf != NULL)
        buf[got] = '\0';
    *reply = buf;
    *replylen = got;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    if (ev != NULL)
        CloseHandle(ev);
    CloseHandle(h);
    return rc;
}
