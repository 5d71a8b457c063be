/*
 * control_endpoint_unix.c - the control endpoint as an AF_UNIX stream
 * socket (control_endpoint.h): created 0600 (0660 with control_group),
 * a stale socket of a crashed master replaced, and both ends checking who
 * is at the other end with the kernel's peer credentials.
 */
#include "control_endpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/util.h>

#include "log.h"
#include "netutil.h"
#include "peercred.h"

#define CONTROL_ACCEPT_PAUSE_MS 100  /* after EMFILE and the like */

struct proxy_control_endpoint {
    int                       fd;
    char                      path[CONF_PATH_MAX];
    struct event_base        *base;
    struct event             *ev;
    const struct conf_global *g;      /* the running configuration's, as it changes */
    proxy_control_client_cb  *cb;
    void                     *arg;
};

static int control_addr(const char *path, struct sockaddr_un *sun, char *why, size_t whylen)
{
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun->sun_path)) {
        snprintf(why, whylen, "control socket path too long (max %zu bytes): %s",
                 sizeof(sun->sun_path) - 1, path);
        return -1;
    }
    memcpy(sun->sun_path, path, strlen(path) + 1);
    return 0;
}

/* Connects (blocking); on failure *err holds errno and why the message. */
static int control_connect(const char *path, int *err, char *why, size_t whylen)
{
    struct sockaddr_un sun;
    int fd;

    *err = 0;
    if (control_addr(path, &sun, why, whylen) != 0)
        return -1;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = errno;
        snprintf(why, whylen, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        *err = errno;
        snprintf(why, whylen, "cannot connect to control socket %s: %s (is baton running?)",
                 path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static const char *file_kind(mode_t mode)
{
    static const struct { mode_t type; const char *name; } kinds[] = {
        { S_IFREG, "regular file" }, { S_IFDIR, "directory" }, { S_IFLNK, "symbolic link" },
        { S_IFIFO, "FIFO" }, { S_IFCHR, "character device" }, { S_IFBLK, "block device" },
        { S_IFSOCK, "socket" },
    };

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if ((mode & S_IFMT) == kinds[i].type)
            return kinds[i].name;
    return "file of unknown type";
}

/* Is something other than a socket at path?  1 (why says what it is), 0
 * (nothing, or a socket), -1 if that cannot be told (errno says why). */
static int control_path_taken(const char *path, char *why, size_t whylen)
{
    struct stat st;

    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    if (S_ISSOCK(st.st_mode))
        return 0;
    snprintf(why, whylen, "control socket path %s exists and is a %s, not a socket; baton "
             "only replaces a stale control socket (remove it, or choose another control "
             "path)", path, file_kind(st.st_mode));
    return 1;
}

/* Makes room at path: nothing there, or a socket nobody listens on any more
 * (removed).  A live socket or anything else is left alone: -1 with why. */
static int control_clear_path(const char *path, char *why, size_t whylen)
{
    struct proxy_peer_cred cred;
    int fd, err;
    char ignored[256];

    switch (control_path_taken(path, why, whylen)) {
    case 0:
        break;
    case 1:
        return -1;
    default:
        snprintf(why, whylen, "cannot inspect control socket path %s: %s", path,
                 strerror(errno));
        return -1;
    }
    fd = control_connect(path, &err, ignored, sizeof(ignored));
    if (fd >= 0) {
        if (proxy_peer_cred_get(fd, &cred, ignored, sizeof(ignored)) == 0)
            snprintf(why, whylen, "another baton master is running on control socket %s "
                     "(pid %ld, uid %ld answer there)", path, (long)cred.pid, (long)cred.uid);
        else
            snprintf(why, whylen, "another baton master is running on control socket %s",
                     path);
        close(fd);
        return -1;
    }
    if (err == ENOENT)
        return 0;
    if (err != ECONNREFUSED) {
        snprintf(why, whylen, "control socket %s exists but cannot be probed (%s); not "
                 "removing it", path, strerror(err));
        return -1;
    }
    /* Nobody listens: left behind by a master that crashed. */
    if (unlink(path) != 0 && errno != ENOENT) {
        snprintf(why, whylen, "cannot remove stale control socket %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int proxy_control_set_access(const struct conf_global *g, char *why, size_t whylen)
{
    mode_t mode = g->control_group[0] != '\0' ? 0660 : 0600;

    if (g->control_group[0] != '\0' && lchown(g->control, (uid_t)-1, g->control_gid) != 0) {
        snprintf(why, whylen, "cannot give control socket %s to group %s (gid %ld): %s",
                 g->control, g->control_group, (long)g->control_gid, strerror(errno));
        return -1;
    }
    /* Never through a symbolic link someone put in its place. */
    if (fchmodat(AT_FDCWD, g->control, mode, AT_SYMLINK_NOFOLLOW) != 0) {
        snprintf(why, whylen, "cannot set mode %04o on control socket %s: %s", (unsigned)mode,
                 g->control, strerror(errno));
        return -1;
    }
    return 0;
}

static int control_listen(const struct conf_global *g, char *why, size_t whylen)
{
    const char *path = g->control;
    struct sockaddr_un sun;
    mode_t old;
    int fd;

    if (control_addr(path, &sun, why, whylen) != 0 || control_clear_path(path, why, whylen) != 0)
        return -1;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, whylen, "socket: %s", strerror(errno));
        return -1;
    }
    /* Created 0600 from the start: no window in which others could connect. */
    old = umask(0177);
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        umask(old);
        snprintf(why, whylen, "cannot bind control socket %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    umask(old);
    if (proxy_control_set_access(g, why, whylen) != 0) {
        close(fd);
        unlink(path);
        return -1;
    }
    if (listen(fd, 16) != 0) {
        snprintf(why, whylen, "listen on control socket %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    return fd;
}

/* May the client connected on fd control the master?  Fills *cred; 1 yes,
 * 0 no (why is the one-line refusal), -1 if it cannot be told. */
static int control_peer_allowed(int fd, const struct conf_global *g,
                                struct proxy_peer_cred *cred, char *why, size_t whylen)
{
    char err[256];
    int member;

    if (proxy_peer_cred_get(fd, cred, why, whylen) != 0)
        return -1;
    if (cred->uid == 0 || cred->uid == geteuid())
        return 1;
    if (g->control_group[0] != '\0') {
        member = proxy_peer_in_group(fd, cred, g->control_gid, err, sizeof(err));
        if (member != 0) {
            if (member < 0)
                snprintf(why, whylen, "%s", err);
            return member;
        }
        snprintf(why, whylen, "permission denied: uid %ld may not control this baton "
                 "(allowed: root, uid %ld, and members of group %s)", (long)cred->uid,
                 (long)geteuid(), g->control_group);
        return 0;
    }
    snprintf(why, whylen, "permission denied: uid %ld may not control this baton "
             "(allowed: root and uid %ld; see control_group)", (long)cred->uid,
             (long)geteuid());
    return 0;
}

/* `baton -s` talks only to a server run by root or by its own user: anyone
 * else at the path may have squatted it to answer as it likes. */
static int control_check_server(int fd, const char *path, char *why, size_t whylen)
{
    struct proxy_peer_cred cred;
    char err[256];

    if (proxy_peer_cred_get(fd, &cred, err, sizeof(err)) != 0) {
        snprintf(why, whylen, "cannot tell who serves control socket %s: %s", path, err);
        return -1;
    }
    if (cred.uid == 0 || cred.uid == geteuid())
        return 0;
    snprintf(why, whylen, "refusing control socket %s: it is served by uid %ld (pid %ld), "
             "expected root (uid 0) or this user (uid %ld); another user may have taken the "
             "path (keep the control socket in a directory only root and baton's user can "
             "write)", path, (long)cred.uid, (long)cred.pid, (long)geteuid());
    return -1;
}

int proxy_control_check_path(const struct conf *c, char *err, size_t errlen, char *warn,
                             size_t warnlen)
{
    const char *path = c->global.control, *slash = strrchr(path, '/');
    char dir[sizeof(c->global.control)], why[CONF_ERR_MAX];
    struct stat st;

    err[0] = warn[0] = '\0';
    /* What cannot be inspected (a directory this user may not search) is
     * left to start-up, which says so if it cannot bind. */
    if (control_path_taken(path, why, sizeof(why)) == 1) {
        snprintf(err, errlen, "%s:%d: control: %s\n", c->path, c->global.control_line, why);
        return -1;
    }
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
    /* Sticky or not: another user can create the name before baton binds
     * it (the sticky bit only stops them removing baton's socket later). */
    if (stat(dir, &st) == 0 && (st.st_mode & S_IWOTH) != 0)
        snprintf(warn, warnlen, "%s:%d: warning: control socket %s is in %s, a directory every "
                 "user can write%s: another user can create that name first and pose as baton "
                 "(baton then refuses to start, and `baton -s` refuses to talk to it); prefer a "
                 "directory only root and baton's user can write, such as /run/baton\n",
                 c->path, c->global.control_line, path, dir,
                 (st.st_mode & S_ISVTX) != 0 ? " (sticky)" : "");
    return 0;
}

static int control_wait(int fd, short events, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = events };
    int rc;

    do
        rc = poll(&p, 1, timeout_ms);
    while (rc < 0 && errno == EINTR);
    return rc;
}

/* Reads until the master closes; 0, or -1 with why. */
static int control_read_all(int fd, const char *path, int timeout_ms, char **reply,
                            size_t *replylen, char *why, size_t whylen)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;

    for (;;) {
        ssize_t n;

        if (control_wait(fd, POLLIN, timeout_ms) <= 0) {
            snprintf(why, whylen, "no answer from the master on %s within %d ms", path,
                     timeout_ms);
            goto fail;
        }
        if (len + 4096 + 1 > cap) {
            char *p = realloc(buf, cap = cap ? cap * 2 : 8192);

            if (p == NULL) {
                snprintf(why, whylen, "out of memory");
                goto fail;
            }
            buf = p;
        }
        n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(why, whylen, "reading from %s: %s", path, strerror(errno));
            goto fail;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (buf != NULL)
        buf[len] = '\0';
    *reply = buf;
    *replylen = len;
    return 0;
fail:
    free(buf);
    return -1;
}

int proxy_control_endpoint_exchange(const char *path, const char *line, size_t len,
                                    int timeout_ms, char **reply, size_t *replylen, char *why,
                                    size_t whylen)
{
    int fd, err, rc;

    *reply = NULL;
    *replylen = 0;
    fd = control_connect(path, &err, why, whylen);
    if (fd < 0)
        return -1;
    if (control_check_server(fd, path, why, whylen) != 0) {
        close(fd);
        return -1;
    }
    /* A master that refuses the connection (too many clients) answers and
     * closes at once: a failed send still leaves its answer to read. */
    if (send(fd, line, len, MSG_NOSIGNAL) != (ssize_t)len && errno != EPIPE &&
        errno != ECONNRESET) {
        snprintf(why, whylen, "sending to %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    rc = control_read_all(fd, path, timeout_ms, reply, replylen, why, whylen);
    close(fd);
    return rc;
}

int proxy_control_endpoint_name(const char *conf_path, const char *control, char *out,
                                size_t outlen, char *why, size_t whylen)
{
    (void)conf_path;
    if (snprintf(out, outlen, "%s", control) >= (int)outlen) {
        snprintf(why, whylen, "control socket path too long: %s", control);
        return -1;
    }
    return 0;
}

static struct proxy_control_endpoint *endpoint_new(int fd, const char *path, char *why,
                                                   size_t whylen)
{
    struct proxy_control_endpoint *ep = calloc(1, sizeof(*ep));

    if (ep == NULL) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    ep->fd = fd;
    snprintf(ep->path, sizeof(ep->path), "%s", path);
    return ep;
}

struct proxy_control_endpoint *proxy_control_endpoint_open(const struct conf *c, char *why,
                                                           size_t whylen)
{
    struct proxy_control_endpoint *ep;
    int fd = control_listen(&c->global, why, whylen);

    if (fd < 0)
        return NULL;
    ep = endpoint_new(fd, c->global.control, why, whylen);
    if (ep == NULL) {
        close(fd);
        unlink(c->global.control);
    }
    return ep;
}

struct proxy_control_endpoint *proxy_control_endpoint_adopt(int fd, const struct conf *c,
                                                            char *why, size_t whylen)
{
    if (proxy_set_cloexec(fd, 1) != 0) {
        snprintf(why, whylen, "control socket fd %d: %s", fd, strerror(errno));
        return NULL;
    }
    return endpoint_new(fd, c->global.control, why, whylen);
}

int proxy_control_endpoint_fd(const struct proxy_control_endpoint *ep)
{
    return ep != NULL ? ep->fd : -1;
}

void proxy_control_endpoint_refuse(int fd, const char *why)
{
    char junk[256], line[600];
    int n = snprintf(line, sizeof(line), "ERR %s\n", why);

    /* Its command is read first: closing on unread bytes would reset
     * the client before it sees why. */
    (void)!recv(fd, junk, sizeof(junk), MSG_DONTWAIT);
    if (n > 0)
        (void)!send(fd, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1,
                    MSG_DONTWAIT | MSG_NOSIGNAL);
    close(fd);
}

void proxy_control_endpoint_send_now(int fd, const struct evbuffer_iovec *vec, int n)
{
    struct msghdr msg = { .msg_iov = (struct iovec *)vec };   /* the same type on Unix */

    if (n <= 0)
        return;
    msg.msg_iovlen = (size_t)n;
    (void)!sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void control_accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_control_endpoint *ep = arg;

    if (ep->ev != NULL && event_add(ep->ev, NULL) != 0)
        proxy_log_error("control socket: cannot watch it again");
}

static void control_accept_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_control_endpoint *ep = arg;
    int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    struct proxy_peer_cred cred;
    char why[512];

    if (cfd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* The pending client stays queued; accepting again at once
             * would only spin.  Look again in a moment. */
            proxy_log_warn("control socket accept: %s; pausing %d ms", strerror(errno),
                           CONTROL_ACCEPT_PAUSE_MS);
            event_del(ep->ev);
            if (event_base_once(ep->base, -1, EV_TIMEOUT, control_accept_resume_cb, ep,
                                &(struct timeval){ .tv_usec = CONTROL_ACCEPT_PAUSE_MS * 1000 })
                != 0)
                (void)event_add(ep->ev, NULL);
        } else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
            proxy_log_warn("control socket accept: %s", strerror(errno));
        }
        return;
    }
    switch (control_peer_allowed(cfd, ep->g, &cred, why, sizeof(why))) {
    case 1:
        ep->cb(cfd, &cred, ep->arg);
        return;
    case 0:
        proxy_log_warn("control socket: refused client pid %ld uid %ld gid %ld: %s",
                       (long)cred.pid, (long)cred.uid, (long)cred.gid, why);
        proxy_control_endpoint_refuse(cfd, why);
        return;
    default:
        proxy_log_warn("control socket: cannot tell who a client is (%s); refused", why);
        proxy_control_endpoint_refuse(cfd, "permission denied: cannot check your credentials");
        return;
    }
}

int proxy_control_endpoint_start(struct proxy_control_endpoint *ep, struct event_base *base,
                                 const struct conf_global *g, proxy_control_client_cb *cb,
                                 void *arg)
{
    ep->base = base;
    ep->g = g;
    ep->cb = cb;
    ep->arg = arg;
    ep->ev = event_new(base, ep->fd, EV_READ | EV_PERSIST, control_accept_cb, ep);
    if (ep->ev == NULL || event_add(ep->ev, NULL) != 0) {
        proxy_log_error("control socket %s: cannot watch it", ep->path);
        return -1;
    }
    return 0;
}

void proxy_control_endpoint_close(struct proxy_control_endpoint *ep)
{
    if (ep == NULL)
        return;
    if (ep->ev != NULL)
        event_free(ep->ev);
    if (ep->fd >= 0) {
        close(ep->fd);
        if (unlink(ep->path) != 0 && errno != ENOENT)
            proxy_log_warn("cannot remove control socket %s: %s", ep->path, strerror(errno));
    }
    free(ep);
}
