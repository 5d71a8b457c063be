/*
 * test_conn_transfer.c - a connection leaving one worker and arriving in
 * another (proxy/conn_transfer.c), without running a worker process: two
 * workers built in this process from small configurations (one event loop
 * each, stepped by hand), and connections built by hand over socketpairs
 * whose far ends play the client and the server.
 *
 * Freeze (exact state, splice pipes emptied into the buffer, nothing left
 * armed), thaw (the same events re-armed, bytes flow on), adopt (resolved
 * by name, orphans keep the old names, limits counted past their maximum,
 * setup phases refused when this configuration cannot carry them on),
 * forget (only this process's descriptors closed, no access-log line), and
 * which events each relaying state calls for.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "backend.h"
#include "clock.h"
#include "conn_msg.h"
#include "conn_transfer.h"
#include "connection.h"
#include "listener.h"
#include "loop.h"
#include "testutil.h"
#include "worker.h"
#include "xprt.h"

#define W_CLIENT_READ  PROXY_WANT_CLIENT_READ
#define W_CLIENT_WRITE PROXY_WANT_CLIENT_WRITE
#define W_SERVER_READ  PROXY_WANT_SERVER_READ
#define W_SERVER_WRITE PROXY_WANT_SERVER_WRITE

/* The generation connections leave: listener web -> backend app (s1, s2). */
static const char conf_old[] =
    "[global]\nthreads = 1\naccess_log = off\n"
    "[listener web]\nbind = 127.0.0.1:0\nbackend = app\nidle_timeout = 90s\n"
    "[backend app]\nserver = s1 127.0.0.1:1\nserver = s2 127.0.0.1:2\n";
/* The same names; web now has a limit of one connection. */
static const char conf_same[] =
    "[global]\nthreads = 1\naccess_log = off\n"
    "[listener api]\nbind = 127.0.0.2:0\nbackend = app\n"
    "[listener web]\nbind = 127.0.0.1:0\nbackend = app\nidle_timeout = 45s\n"
    "max_connections = 1\n"
    "[backend other]\nserver = x 127.0.0.1:3\n"
    "[backend app]\nserver = s2 127.0.0.1:2\nserver = s1 127.0.0.1:1\n";
/* Server s1 is gone. */
static const char conf_no_server[] =
    "[global]\nthreads = 1\naccess_log = off\n"
    "[listener web]\nbind = 127.0.0.1:0\nbackend = app\n"
    "[backend app]\nserver = s2 127.0.0.1:2\n";
/* Listener web is gone. */
static const char conf_no_listener[] =
    "[global]\nthreads = 1\naccess_log = off\n"
    "[listener api]\nbind = 127.0.0.2:0\nbackend = app\n"
    "[backend app]\nserver = s1 127.0.0.1:1\nserver = s2 127.0.0.1:2\n";
/* Listener web takes PROXY headers. */
static const char conf_proxy[] =
    "[global]\nthreads = 1\naccess_log = off\n"
    "[listener web]\nbind = 127.0.0.1:0\nbackend = app\naccept_proxy = on\n"
    "[backend app]\nserver = s1 127.0.0.1:1\n";


/* ---- a worker without a process ---------------------------------------- */

/* Each worker's access log is a pipe; the read ends, by worker. */
static struct {
    const struct proxy_worker *w;
    int fd;
} access_logs[4];

static void access_log_open(struct proxy_worker *w)
{
    int fds[2];

    w->access_fd = -1;
    for (size_t i = 0; i < sizeof(access_logs) / sizeof(access_logs[0]); i++) {
        if (access_logs[i].w != NULL)
            continue;
        CHECK(pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
        access_logs[i].w = w;
        access_logs[i].fd = fds[0];
        w->access_fd = fds[1];
        return;
    }
    CHECK(!"more than 4 workers at once");
}

static int access_log_fd(const struct proxy_worker *w)
{
    for (size_t i = 0; i < sizeof(access_logs) / sizeof(access_logs[0]); i++)
        if (access_logs[i].w == w)
            return access_logs[i].fd;
    return -1;
}

static void access_log_close(struct proxy_worker *w)
{
    for (size_t i = 0; i < sizeof(access_logs) / sizeof(access_logs[0]); i++)
        if (access_logs[i].w == w) {
            close(access_logs[i].fd);
            access_logs[i].w = NULL;
        }
    close(w->access_fd);
}

/* Built as worker.c's worker_build does, minus TLS and listening sockets
 * (nothing is accepted here); its access log is a pipe the test reads. */
static struct proxy_worker *worker_new(const char *text)
{
    struct proxy_worker *w = calloc(1, sizeof(*w));
    char err[4096];

    if (w == NULL)
        return NULL;
    if (conf_load_text("test.ini", text, &w->conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "    configuration refused: %s\n", err);
        free(w);
        return NULL;
    }
    access_log_open(w);
    w->nlisteners = w->conf.nlisteners;
    w->listeners = calloc(w->nlisteners, sizeof(*w->listeners));
    w->nbackends = w->conf.nbackends;
    w->backends = calloc(w->nbackends, sizeof(*w->backends));
    CHECK(w->listeners != NULL && w->backends != NULL);
    for (size_t i = 0; i < w->nbackends; i++)
        CHECK(proxy_backend_init(&w->backends[i], &w->conf.backends[i], i) == 0);
    for (size_t i = 0; i < w->nlisteners; i++) {
        w->listeners[i].conf = &w->conf.listeners[i];
        w->listeners[i].backend = &w->backends[w->conf.listeners[i].backend - w->conf.backends];
    }
    w->nloops = 1;
    w->loops = calloc(1, sizeof(*w->loops));
    CHECK(w->loops != NULL && proxy_loop_init(&w->loops[0], w, 0) == 0);
    return w;
}

static void worker_free(struct proxy_worker *w)
{
    proxy_loop_free(&w->loops[0]);   /* closes what is left, logging it */
    free(w->loops);
    for (size_t i = 0; i < w->nlisteners; i++)
        proxy_listener_free(&w->listeners[i]);
    free(w->listeners);
    for (size_t i = 0; i < w->nbackends; i++)
        proxy_backend_free(&w->backends[i]);
    free(w->backends);
    access_log_close(w);
    conf_free(&w->conf);
    free(w);
}

/* What the access log got since the last call ("" if nothing). */
static const char *access_lines(struct proxy_worker *w)
{
    static char buf[4096];
    ssize_t n = read(access_log_fd(w), buf, sizeof(buf) - 1);

    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static struct proxy_listener *listener_of(struct proxy_worker *w, const char *name)
{
    for (size_t i = 0; i < w->nlisteners; i++)
        if (strcmp(w->listeners[i].conf->name, name) == 0)
            return &w->listeners[i];
    return NULL;
}

static struct proxy_server *server_of(struct proxy_worker *w, const char *backend,
                                      const char *name)
{
    for (size_t i = 0; i < w->nbackends; i++)
        for (size_t j = 0; strcmp(w->backends[i].conf->name, backend) == 0 &&
                           j < w->backends[i].nservers; j++)
            if (strcmp(w->backends[i].servers[j].conf->name, name) == 0)
                return &w->backends[i].servers[j];
    return NULL;
}

/* ---- connections built by hand ----------------------------------------- */

/* The far ends of a connection's two sockets: the real client and server. */
struct far {
    int client, server;
};

static void far_close(struct far *f)
{
    close(f->client);
    close(f->server);
}

static socklen_t test_peer(struct sockaddr_storage *ss)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;

    memset(ss, 0, sizeof(*ss));
    sin->sin_family = AF_INET;
    sin->sin_port = htons(40000);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sizeof(*sin);
}

/* A relaying connection of listener web to app/s1, counted as an accepted
 * and connected one, not armed yet. */
static struct proxy_conn *conn_relaying(struct proxy_worker *w, struct far *far)
{
    struct proxy_conn *c = calloc(1, sizeof(*c));
    int cs[2], ss[2];

    CHECK(c != NULL);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, cs) == 0);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, ss) == 0);
    c->loop = &w->loops[0];
    c->listener = listener_of(w, "web");
    c->backend = c->listener->backend;
    c->server = server_of(w, "app", "s1");
    c->state = PROXY_CONN_RELAYING;
    c->client.fd = cs[0];
    c->upstream.fd = ss[0];
    proxy_xprt_raw_attach(&c->client);
    proxy_xprt_raw_attach(&c->upstream);
    far->client = cs[1];
    far->server = ss[1];
    proxy_pipe_init(&c->up);
    proxy_pipe_init(&c->down);
    c->peerlen = test_peer(&c->peer);
    c->idle_timeout_ms = (uint32_t)c->listener->conf->idle_timeout_ms;
    c->start_ms = proxy_now_ms() - 1000;
    c->last_ms = proxy_now_ms() - 10;
    c->tried[c->ntried++] = server_of(w, "app", "s2");
    c->tried[c->ntried++] = c->server;
    c->connected = 1;
    c->xfer_id = 77;
    proxy_conn_bind_events(c);
    proxy_conn_link(c->loop, c);
    atomic_fetch_add(&c->listener->active, 1);
    atomic_fetch_add(&w->active, 1);
    atomic_fetch_add(&c->server->active, 1);
    return c;
}

static void set_pending(struct proxy_pipe *p, const char *bytes, uint32_t off)
{
    size_t n = strlen(bytes);

    p->buf = malloc(n);
    memcpy(p->buf, bytes, n);
    p->off = off;
    p->len = (uint32_t)n;
}

/* Bytes in a splice pipe, as relay.c leaves them when dst is slow. */
static void set_spliced(struct proxy_loop *loop, struct proxy_pipe *p, const char *bytes)
{
    size_t n = strlen(bytes);

    CHECK(pipe2(p->pfd, O_NONBLOCK | O_CLOEXEC) == 0);
    CHECK(write(p->pfd[1], bytes, n) == (ssize_t)n);
    p->inpipe = (uint32_t)n;
    loop->npipes++;
}

/* Runs w's loop until `want` bytes (or, want 0, EOF) came out at fd, for at
 * most 5 s; returns what was read (NUL-terminated), or NULL. */
static const char *pump_read(struct proxy_worker *w, int fd, size_t want)
{
    static char buf[1024];
    uint64_t deadline = proxy_now_ms() + 5000;
    size_t got = 0;

    while (proxy_now_ms() < deadline) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        ssize_t n;

        CHECK(event_base_loop(w->loops[0].base, EVLOOP_NONBLOCK) != -1);
        n = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (n > 0)
            got += (size_t)n;
        if ((want > 0 && got >= want) || (want == 0 && n == 0)) {
            buf[got] = '\0';
            return buf;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            break;
        (void)poll(&pfd, 1, 5);
    }
    return NULL;
}

static int fd_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

/* ---- proxy_conn_wanted -------------------------------------------------- */

static void test_wanted(void)
{
    struct proxy_worker *w = worker_new(conf_old);
    struct proxy_conn *c;
    struct far far;

    if (w == NULL)
        return;
    c = conn_relaying(w, &far);
    CHECK(proxy_conn_movable(c, 0));
    CHECK(proxy_conn_movable(c, 1));
    CHECK_U64(proxy_conn_wanted(c), W_CLIENT_READ | W_SERVER_READ);
    /* Bytes pending toward the server: wait for it, do not read the client. */
    set_pending(&c->up, "abc", 0);
    CHECK_U64(proxy_conn_wanted(c), W_SERVER_WRITE | W_SERVER_READ);
    set_pending(&c->down, "xyz", 1);
    CHECK_U64(proxy_conn_wanted(c), W_SERVER_WRITE | W_CLIENT_WRITE);
    free(c->up.buf);
    c->up.buf = NULL;
    CHECK_U64(proxy_conn_wanted(c), W_CLIENT_READ | W_CLIENT_WRITE);
    free(c->down.buf);
    c->down.buf = NULL;
    /* In a splice pipe counts as pending too. */
    c->down.inpipe = 9;
    CHECK_U64(proxy_conn_wanted(c), W_CLIENT_READ | W_CLIENT_WRITE);
    c->down.inpipe = 0;
    /* EOF from the client, FIN passed on: nothing more to read from it. */
    c->up.eof = c->up.shut = 1;
    CHECK_U64(proxy_conn_wanted(c), W_SERVER_READ);
    /* Its FIN not passed on yet (a transport still flushing): the server
     * side is watched until it is. */
    c->up.shut = 0;
    CHECK_U64(proxy_conn_wanted(c), W_SERVER_WRITE | W_SERVER_READ);
    set_pending(&c->up, "last", 0);   /* its last bytes still to deliver */
    CHECK_U64(proxy_conn_wanted(c), W_SERVER_WRITE | W_SERVER_READ);
    free(c->up.buf);
    c->up.buf = NULL;
    c->up.eof = 0;
    /* EOF from the server, passed on. */
    c->down.eof = c->down.shut = 1;
    CHECK_U64(proxy_conn_wanted(c), W_CLIENT_READ);
    c->up.eof = c->up.shut = 1;
    CHECK_U64(proxy_conn_wanted(c), 0);
    c->up.eof = c->down.eof = c->up.shut = c->down.shut = 0;
    /* Setup phases. */
    c->state = PROXY_CONN_PROXY_HEADER;
    CHECK_U64(proxy_conn_wanted(c), W_CLIENT_READ);
    c->state = PROXY_CONN_CLIENT_HELLO;
    CHECK_U64(proxy_conn_wanted(c), W_CLIENT_READ);
    c->state = PROXY_CONN_CONNECTING;
    CHECK_U64(proxy_conn_wanted(c), W_SERVER_WRITE);
    c->state = PROXY_CONN_RELAYING;
    /* Nothing of this was armed. */
    CHECK_U64(proxy_conn_armed(c), 0);
    proxy_conn_resume(c);
    CHECK_U64(proxy_conn_armed(c), W_CLIENT_READ | W_SERVER_READ);
    worker_free(w);
    far_close(&far);
}

/* ---- freeze and thaw ---------------------------------------------------- */

static void test_freeze_thaw(void)
{
    static const char up_bytes[] = "GET /x HTTP/1.1\r\n\r\n";
    static const char down_bytes[] = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
    struct proxy_worker *w = worker_new(conf_old);
    struct handoff_conn st;
    struct proxy_conn *c;
    struct proxy_loop *loop;
    struct far far;
    uint64_t start, last;
    const char *got;
    int cfd, sfd;

    if (w == NULL)
        return;
    loop = &w->loops[0];
    c = conn_relaying(w, &far);
    /* Up: 2 bytes of the buffer already sent, the rest pending; the client
     * sent FIN behind them.  Down: the server's bytes in a splice pipe. */
    set_pending(&c->up, "..GET /x HTTP/1.1\r\n\r\n", 2);
    c->up.bytes = 1000;
    c->up.eof = 1;
    c->client.fin_seen = 1;
    set_spliced(loop, &c->down, down_bytes);
    c->down.bytes = 5000000;
    c->handoffs = 2;
    start = c->start_ms;
    last = c->last_ms;
    cfd = c->client.fd;
    sfd = c->upstream.fd;
    CHECK_U64(loop->npipes, 1);
    proxy_conn_resume(c);
    CHECK_U64(proxy_conn_armed(c), W_SERVER_WRITE | W_CLIENT_WRITE);
    CHECK(evtimer_pending(&c->timer, NULL));

    CHECK(proxy_conn_freeze(c, &st) == 0);
    /* The pipe was emptied into the buffer and closed. */
    CHECK_U64(loop->npipes, 0);
    CHECK(c->down.pfd[0] == -1 && c->down.pfd[1] == -1 && c->down.inpipe == 0);
    CHECK(c->down.buf != NULL && c->down.len - c->down.off == strlen(down_bytes));
    /* Nothing armed, not even the timer, while frozen. */
    CHECK_U64(proxy_conn_armed(c), 0);
    CHECK(!evtimer_pending(&c->timer, NULL));
    CHECK_U64(c->xfer, PROXY_XFER_FROZEN);
    /* The state, field by field. */
    CHECK_U64(st.id, 77);
    CHECK_U64(st.phase, HANDOFF_PHASE_RELAYING);
    CHECK_U64(st.armed, HANDOFF_ARMED_SERVER_WRITE | HANDOFF_ARMED_CLIENT_WRITE);
    CHECK_U64(st.flags, HANDOFF_CONN_F_CONNECTED | HANDOFF_CONN_F_CLIENT_FIN);
    CHECK_U64(st.handoffs, 2);
    CHECK_U64(st.idle_timeout_ms, 90000);
    CHECK_U64(st.start_ms, start);
    CHECK_U64(st.last_ms, last);
    CHECK_U64(st.deadline_ms, 0);
    CHECK_U64(st.peerlen, sizeof(struct sockaddr_in));
    CHECK(memcmp(st.peer, &c->peer, st.peerlen) == 0);
    CHECK_U64(st.locallen, 0);
    CHECK_STR(st.listener, "web");
    CHECK_STR(st.backend, "app");
    CHECK_STR(st.server, "s1");
    CHECK_U64(st.ntried, 2);
    CHECK_STR(st.tried[0], "s2");
    CHECK_STR(st.tried[1], "s1");
    CHECK_STR(st.sni, "");
    CHECK_STR(st.alpn, "");
    CHECK_U64(st.up.bytes, 1000);
    CHECK_U64(st.up.flags, HANDOFF_DIR_EOF);
    CHECK_U64(st.up.npending, strlen(up_bytes));
    CHECK(st.up.npending == strlen(up_bytes) &&
          memcmp(st.up.pending, up_bytes, st.up.npending) == 0);
    CHECK_U64(st.down.bytes, 5000000);
    CHECK_U64(st.down.flags, 0);
    CHECK_U64(st.down.npending, strlen(down_bytes));
    CHECK(st.down.npending == strlen(down_bytes) &&
          memcmp(st.down.pending, down_bytes, st.down.npending) == 0);
    CHECK(st.prefix == NULL && st.prefixlen == 0);
    CHECK(st.client_fd == cfd && st.server_fd == sfd);

    /* Refused: it runs on exactly as before. */
    proxy_conn_thaw(c);
    CHECK_U64(proxy_conn_armed(c), st.armed);
    CHECK(evtimer_pending(&c->timer, NULL));
    CHECK_U64(c->xfer, PROXY_XFER_STAYS);
    got = pump_read(w, far.client, strlen(down_bytes));
    CHECK(got != NULL && strcmp(got, down_bytes) == 0);
    got = pump_read(w, far.server, strlen(up_bytes));
    CHECK(got != NULL && strcmp(got, up_bytes) == 0);
    /* The client's FIN follows its last bytes. */
    CHECK(pump_read(w, far.server, 0) != NULL);
    CHECK_U64(w->active, 1);
    worker_free(w);
    far_close(&far);
}

/* ---- the whole move: freeze, CONN, adopt, forget, resume ---------------- */

/* st as a received CONN: encoded, its descriptors dup'ed as SCM_RIGHTS
 * would, decoded (pointers into in's payload). */
static int conn_over_wire(const struct handoff_conn *st, struct handoff_in *in,
                          struct handoff_conn *got)
{
    struct handoff_msg m;
    char why[256];
    int r;

    memset(in, 0, sizeof(*in));
    for (unsigned i = 0; i < HANDOFF_MAX_FDS; i++)
        in->fds[i] = -1;
    if (handoff_encode_conn(&m, 1, st) != 0)
        return -1;
    if (handoff_hdr_decode(m.buf, &in->hdr, why, sizeof(why)) != 0) {
        handoff_msg_free(&m);
        return -1;
    }
    in->payload = malloc(in->hdr.len);
    memcpy(in->payload, m.buf + HANDOFF_HDR_LEN, in->hdr.len);
    for (unsigned i = 0; i < m.nfds; i++)
        in->fds[in->nfds++] = fcntl(m.fds[i], F_DUPFD_CLOEXEC, 0);
    handoff_msg_free(&m);
    r = handoff_decode_conn(in, got, why, sizeof(why));
    if (r != 0)
        fprintf(stderr, "    %s\n", why);
    return r;
}

static void test_move(void)
{
    static const char up_bytes[] = "request bytes held in a splice pipe";
    static const char down_bytes[] = "response";
    struct proxy_worker *a = worker_new(conf_old), *b = worker_new(conf_same);
    struct handoff_conn st, st2;
    struct handoff_in in;
    struct proxy_conn *c, *n;
    struct proxy_listener *web;
    struct proxy_server *s1;
    struct far far;
    char why[256] = "";
    const char *got;
    int keep, cfd, sfd;

    if (a == NULL || b == NULL)
        return;
    c = conn_relaying(a, &far);
    set_spliced(&a->loops[0], &c->up, up_bytes);
    c->up.bytes = 123;
    set_pending(&c->down, down_bytes, 0);
    c->down.bytes = 456;
    c->down.bulk = 1;
    proxy_conn_resume(c);
    CHECK(proxy_conn_freeze(c, &st) == 0);
    CHECK(conn_over_wire(&st, &in, &st2) == 0);

    /* b's web already has its one connection: an adopted one comes on top. */
    web = listener_of(b, "web");
    s1 = server_of(b, "app", "s1");
    atomic_store(&web->active, 1);
    atomic_store(&b->active, 1);
    n = proxy_conn_adopt(&b->loops[0], &st2, why, sizeof(why));
    CHECK(n != NULL);
    if (n == NULL) {
        fprintf(stderr, "    adopt: %s\n", why);
        handoff_in_free(&in);
        return;
    }
    handoff_in_free(&in);
    CHECK(st2.client_fd == -1 && st2.server_fd == -1);   /* taken */
    /* Resolved by name in b's configuration. */
    CHECK(n->listener == web);
    CHECK(n->backend == web->backend && n->backend != NULL &&
          strcmp(n->backend->conf->name, "app") == 0);
    CHECK(n->server == s1);
    CHECK(n->orphan == NULL);
    CHECK_U64(n->ntried, 2);
    CHECK(n->tried[0] == server_of(b, "app", "s2") && n->tried[1] == s1);
    CHECK(n->connected);
    CHECK_U64(atomic_load(&s1->active), 1);
    CHECK_U64(atomic_load(&web->active), 2);   /* past max_connections = 1 */
    CHECK_U64(atomic_load(&b->active), 2);
    CHECK_U64(atomic_load(&b->adopted), 1);
    CHECK_U64(atomic_load(&b->orphans), 0);
    CHECK_U64(n->handoffs, 1);
    CHECK_U64(n->idle_timeout_ms, 45000);      /* the listener's as configured here */
    CHECK_U64(n->state, PROXY_CONN_RELAYING);
    CHECK_U64(n->xfer, PROXY_XFER_ADOPTED);
    CHECK_U64(proxy_conn_armed(n), 0);         /* not before it is released */
    CHECK(n->up.buf != NULL && n->up.len == strlen(up_bytes) &&
          memcmp(n->up.buf, up_bytes, n->up.len) == 0);
    CHECK(n->down.len == strlen(down_bytes) && memcmp(n->down.buf, down_bytes, n->down.len) == 0);
    CHECK(n->up.bytes == 123 && n->down.bytes == 456 && n->down.bulk && !n->up.eof);
    CHECK(n->peerlen == c->peerlen && memcmp(&n->peer, &c->peer, c->peerlen) == 0);
    CHECK(n->start_ms == c->start_ms && n->last_ms == c->last_ms);
    CHECK(n->client.fd >= 0 && n->client.fd != c->client.fd);

    /* The giver forgets its copy: its own descriptors closed, the sockets
     * live on in b, no access-log line, its counts released. */
    cfd = c->client.fd;
    sfd = c->upstream.fd;
    CHECK_STR(access_lines(a), "");
    keep = fcntl(cfd, F_DUPFD_CLOEXEC, 0);
    proxy_conn_forget(c);
    CHECK(!fd_open(cfd) && !fd_open(sfd));
    CHECK(fd_open(n->client.fd) && fd_open(n->upstream.fd));
    CHECK_STR(access_lines(a), "");
    CHECK_U64(atomic_load(&a->active), 0);
    CHECK_U64(atomic_load(&listener_of(a, "web")->active), 0);
    CHECK_U64(atomic_load(&server_of(a, "app", "s1")->active), 0);
    CHECK_U64(a->loops[0].nconns, 0);
    CHECK(a->loops[0].conns == NULL);
    /* A descriptor of the same socket elsewhere still reaches the client. */
    CHECK(write(keep, "!", 1) == 1);
    got = pump_read(a, far.client, 1);
    CHECK(got != NULL && strcmp(got, "!") == 0);
    close(keep);

    /* Released: b arms it and the bytes held go on, then new ones. */
    proxy_conn_resume(n);
    CHECK_U64(proxy_conn_armed(n), W_SERVER_WRITE | W_CLIENT_WRITE);
    got = pump_read(b, far.server, strlen(up_bytes));
    CHECK(got != NULL && strcmp(got, up_bytes) == 0);
    got = pump_read(b, far.client, strlen(down_bytes));
    CHECK(got != NULL && strcmp(got, down_bytes) == 0);
    CHECK(write(far.client, "more", 4) == 4);
    got = pump_read(b, far.server, 4);
    CHECK(got != NULL && strcmp(got, "more") == 0);
    CHECK(write(far.server, "back", 4) == 4);
    got = pump_read(b, far.client, 4);
    CHECK(got != NULL && strcmp(got, "back") == 0);
    CHECK_U64(proxy_conn_armed(n), W_CLIENT_READ | W_SERVER_READ);

    /* Where it ends, its one access-log line counts the handoff. */
    proxy_conn_close(n, PROXY_END_SHUTDOWN);
    got = access_lines(b);
    CHECK_WHY(got, "listener=web backend=app server=s1 ");
    CHECK_WHY(got, "handoffs=1");
    CHECK_U64(atomic_load(&s1->active), 0);
    CHECK_U64(atomic_load(&web->active), 1);
    worker_free(a);
    worker_free(b);
    far_close(&far);
}

/* ---- adopting into another configuration -------------------------------- */

/* A relaying web -> app/s1 connection as it would arrive, over two fresh
 * socketpairs (far: their other ends). */
static void st_relaying(struct handoff_conn *st, struct far *far)
{
    int cs[2], ss[2];
    struct sockaddr_storage peer;

    memset(st, 0, sizeof(*st));
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, cs) == 0);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, ss) == 0);
    st->id = 5;
    st->phase = HANDOFF_PHASE_RELAYING;
    st->flags = HANDOFF_CONN_F_CONNECTED;
    st->idle_timeout_ms = 12000;
    st->start_ms = st->last_ms = proxy_now_ms();
    st->peerlen = test_peer(&peer);
    memcpy(st->peer, &peer, st->peerlen);
    strcpy(st->listener, "web");
    strcpy(st->backend, "app");
    strcpy(st->server, "s1");
    st->client_fd = cs[0];
    st->server_fd = ss[0];
    far->client = cs[1];
    far->server = ss[1];
}

static void st_close(struct handoff_conn *st)
{
    if (st->client_fd >= 0)
        close(st->client_fd);
    if (st->server_fd >= 0)
        close(st->server_fd);
}

/* Adopts st into w's loop, which must take it; if it does not, says why
 * and closes st's descriptors. */
static struct proxy_conn *adopt_ok(struct proxy_worker *w, struct handoff_conn *st)
{
    char why[256] = "";
    struct proxy_conn *c = proxy_conn_adopt(&w->loops[0], st, why, sizeof(why));

    CHECK(c != NULL);
    if (c == NULL) {
        fprintf(stderr, "    adopt refused: %s\n", why);
        st_close(st);
    }
    return c;
}

static void check_names(const struct proxy_conn *c, const char *listener, const char *backend,
                        const char *server)
{
    CHECK_STR(proxy_conn_listener_name(c), listener);
    CHECK_STR(proxy_conn_backend_name(c), backend);
    CHECK_STR(proxy_conn_server_name(c), server);
}

/* Armed, c relays two bytes from one far end to the other; closed, it logs
 * a line with `logged`. */
static void relay_then_close(struct proxy_worker *w, struct proxy_conn *c, int from, int to,
                             const char *logged)
{
    const char *got;

    proxy_conn_resume(c);
    CHECK(write(from, "hi", 2) == 2);
    got = pump_read(w, to, 2);
    CHECK(got != NULL && strcmp(got, "hi") == 0);
    proxy_conn_close(c, PROXY_END_SHUTDOWN);
    CHECK_WHY(access_lines(w), logged);
}

static void test_orphans(void)
{
    struct proxy_worker *w;
    struct handoff_conn st;
    struct proxy_conn *c;
    struct far far;

    /* The server is gone: it relays on, under the old names. */
    w = worker_new(conf_no_server);
    if (w == NULL)
        return;
    st_relaying(&st, &far);
    c = adopt_ok(w, &st);
    if (c != NULL) {
        CHECK(c->listener == listener_of(w, "web"));
        CHECK(c->backend != NULL && c->server == NULL && c->orphan != NULL);
        CHECK(!c->connected);
        CHECK_U64(atomic_load(&w->orphans), 1);
        CHECK_U64(atomic_load(&w->adopted), 1);
        CHECK_U64(atomic_load(&listener_of(w, "web")->active), 1);
        CHECK_U64(atomic_load(&server_of(w, "app", "s2")->active), 0);
        check_names(c, "web", "app", "s1");
        CHECK_U64(c->idle_timeout_ms, 300000);   /* web's default here */
        relay_then_close(w, c, far.client, far.server, "listener=web backend=app server=s1 ");
        CHECK_U64(atomic_load(&w->active), 0);
        CHECK_U64(atomic_load(&listener_of(w, "web")->active), 0);
    }
    far_close(&far);
    worker_free(w);

    /* The listener is gone: counted by the worker alone, its old name and
     * idle timeout kept; the server is still here, so it is counted. */
    w = worker_new(conf_no_listener);
    if (w == NULL)
        return;
    st_relaying(&st, &far);
    c = adopt_ok(w, &st);
    if (c != NULL) {
        CHECK(c->listener == NULL && c->orphan != NULL);
        CHECK(c->server == server_of(w, "app", "s1") && c->connected);
        CHECK_U64(atomic_load(&w->orphans), 1);
        CHECK_U64(atomic_load(&w->active), 1);
        CHECK_U64(atomic_load(&listener_of(w, "api")->active), 0);
        CHECK_U64(atomic_load(&server_of(w, "app", "s1")->active), 1);
        check_names(c, "web", "app", "s1");
        CHECK_U64(c->idle_timeout_ms, 12000);
        relay_then_close(w, c, far.server, far.client, "listener=web backend=app server=s1 ");
        CHECK_U64(atomic_load(&w->active), 0);
        CHECK_U64(atomic_load(&server_of(w, "app", "s1")->active), 0);
    }
    far_close(&far);

    /* Neither the backend: all three names kept. */
    st_relaying(&st, &far);
    strcpy(st.backend, "gone");
    c = adopt_ok(w, &st);
    if (c != NULL) {
        CHECK(c->listener == NULL && c->backend == NULL && c->server == NULL);
        CHECK_U64(atomic_load(&w->orphans), 2);
        check_names(c, "web", "gone", "s1");
        relay_then_close(w, c, far.client, far.server, "listener=web backend=gone server=s1 ");
    }
    far_close(&far);
    worker_free(w);
}

static void test_adopt_refused(void)
{
    struct proxy_worker *w = worker_new(conf_no_server), *p;
    struct handoff_conn st;
    struct proxy_conn *c;
    struct far far;
    char why[256] = "";
    int cfd, sfd;

    if (w == NULL)
        return;
    /* Connecting to a server this configuration does not have. */
    st_relaying(&st, &far);
    st.phase = HANDOFF_PHASE_CONNECTING;
    st.flags = 0;
    st.deadline_ms = proxy_now_ms() + 3000;
    cfd = st.client_fd;
    sfd = st.server_fd;
    CHECK(proxy_conn_adopt(&w->loops[0], &st, why, sizeof(why)) == NULL);
    CHECK_WHY(why, "server s1 of backend app (listener web) is not here");
    CHECK(st.client_fd == cfd && st.server_fd == sfd && fd_open(cfd) && fd_open(sfd));
    CHECK_U64(atomic_load(&w->active), 0);
    CHECK_U64(atomic_load(&w->adopted), 0);
    CHECK_U64(atomic_load(&w->orphans), 0);
    CHECK_U64(w->loops[0].nconns, 0);
    /* Connecting to one it has is taken, in that phase. */
    strcpy(st.server, "s2");
    c = adopt_ok(w, &st);
    if (c != NULL) {
        CHECK_U64(c->state, PROXY_CONN_CONNECTING);
        CHECK(c->server == server_of(w, "app", "s2") && !c->connected);
        CHECK_U64(c->deadline_ms, st.deadline_ms);
        CHECK_U64(atomic_load(&server_of(w, "app", "s2")->active), 0);
        CHECK_U64(proxy_conn_wanted(c), W_SERVER_WRITE);
        proxy_conn_close(c, PROXY_END_SHUTDOWN);
    }
    far_close(&far);

    /* Waiting for a PROXY header on a listener that no longer takes them. */
    st_relaying(&st, &far);
    close(st.server_fd);
    st.server_fd = -1;
    st.phase = HANDOFF_PHASE_PROXY_HEADER;
    st.flags = 0;
    st.server[0] = st.backend[0] = '\0';
    st.prefix = (const uint8_t *)"PROXY TCP4 ";
    st.prefixlen = 11;
    cfd = st.client_fd;
    CHECK(proxy_conn_adopt(&w->loops[0], &st, why, sizeof(why)) == NULL);
    CHECK_WHY(why, "listener web does not take PROXY headers here");
    CHECK(st.client_fd == cfd && fd_open(cfd));
    CHECK_U64(w->loops[0].nconns, 0);
    CHECK_U64(atomic_load(&w->active), 0);
    worker_free(w);

    /* Where it does, it is taken with what was read of the header. */
    p = worker_new(conf_proxy);
    if (p == NULL) {
        st_close(&st);
        far_close(&far);
        return;
    }
    c = adopt_ok(p, &st);
    if (c != NULL) {
        CHECK_U64(c->state, PROXY_CONN_PROXY_HEADER);
        CHECK(c->prefixlen == 11 && memcmp(c->prefix, "PROXY TCP4 ", 11) == 0);
        CHECK(c->listener == listener_of(p, "web") && c->orphan == NULL);
        CHECK(c->upstream.fd == -1);
        CHECK_U64(proxy_conn_wanted(c), W_CLIENT_READ);
        proxy_conn_close(c, PROXY_END_SHUTDOWN);
    }
    far_close(&far);
    worker_free(p);
}

int main(int argc, char **argv)
{
    int fds_before = test_count_fds();

    test_wanted();
    test_freeze_thaw();
    test_move();
    test_orphans();
    test_adopt_refused();

    CHECK(fds_before > 0);
    CHECK_U64(test_count_fds(), fds_before);
    return test_summary("test_conn_transfer");
}
