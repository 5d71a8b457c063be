#include "control.h"

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

#include "netutil.h"
#include "peercred.h"

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

int proxy_control_listen(const struct conf_global *g, char *why, size_t whylen)
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

int proxy_control_peer_allowed(int fd, const struct conf_global *g,
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

int proxy_control_request(const char *path, const char *cmd, int timeout_ms)
{
    char why[1024], line[256], *reply = NULL, *body;
    size_t len = 0, cap = 0;
    int fd, ok, cmdlen, err;

    fd = control_connect(path, &err, why, sizeof(why));
    if (fd < 0) {
        fprintf(stderr, "baton: %s\n", why);
        return 1;
    }
    if (control_check_server(fd, path, why, sizeof(why)) != 0) {
        fprintf(stderr, "baton: %s\n", why);
        close(fd);
        return 1;
    }
    cmdlen = snprintf(line, sizeof(line), "%s\n", cmd);
    if (cmdlen < 0 || (size_t)cmdlen >= sizeof(line)) {
        fprintf(stderr, "baton: command '%.40s...' too long\n", cmd);
        close(fd);
        return 1;
    }
    /* A master that refuses the connection (too many clients) answers and
     * closes at once: a failed send still leaves its answer to read. */
    if (send(fd, line, (size_t)cmdlen, MSG_NOSIGNAL) != cmdlen && errno != EPIPE &&
        errno != ECONNRESET) {
        fprintf(stderr, "baton: sending '%s' to %s: %s\n", cmd, path, strerror(errno));
        close(fd);
        return 1;
    }
    for (;;) {
        ssize_t n;

        if (control_wait(fd, POLLIN, timeout_ms) <= 0) {
            fprintf(stderr, "baton: no answer from the master on %s within %d ms\n", path,
                    timeout_ms);
            free(reply);
            close(fd);
            return 1;
        }
        if (len + 4096 + 1 > cap) {
            char *p = realloc(reply, cap = cap ? cap * 2 : 8192);

            if (p == NULL) {
                fprintf(stderr, "baton: out of memory\n");
                free(reply);
                close(fd);
                return 1;
            }
            reply = p;
        }
        n = read(fd, reply + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "baton: reading from %s: %s\n", path, strerror(errno));
            free(reply);
            close(fd);
            return 1;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (reply == NULL || len == 0) {
        fprintf(stderr, "baton: the master closed the control connection without an answer\n");
        free(reply);
        return 1;
    }
    reply[len] = '\0';
    ok = strncmp(reply, "OK\n", 3) == 0;
    if (!ok && strncmp(reply, "ERR ", 4) != 0) {
        fprintf(stderr, "baton: unexpected answer from the master: %.80s\n", reply);
        free(reply);
        return 1;
    }
    body = reply + (ok ? 3 : 4);
    fputs(body, ok ? stdout : stderr);
    free(reply);
    return ok ? 0 : 1;
}
