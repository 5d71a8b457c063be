/*
 * tls_keylog.c - appending TLS secrets to the debugging key log.
 *
 * The key log is off unless `tls_keylog_file` names a file; lines are
 * written from the loop threads, so a line costs one append to a local
 * file (no lock, no buffering that a crash could lose or interleave).
 */
#include "tls_keylog.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "clock.h"
#include "log.h"
#include "logfile.h"
#include "ratelimit.h"

/* An NSS key log line: label, 64 hex digits of client random, up to 128
 * of secret (EVP_MAX_MD_SIZE), with room to spare. */
#define KEYLOG_LINE_MAX 512
#define KEYLOG_NOT_REGULAR "not a regular file (expected a file to append TLS secrets to)"

static _Atomic int keylog_fd = -1;
static char keylog_path[CONF_PATH_MAX];
static _Atomic unsigned long long keylog_failures;
/* One report a second at most, with the count of those not reported. */
static struct proxy_ratelimit keylog_rl = PROXY_RATELIMIT_INIT(1);

/* Opens path for appending, creating it 0600.  Non-blocking, so that a
 * FIFO at the path cannot hold the caller, and then refused: only a
 * regular file takes an append without waiting for a reader. */
static int keylog_open_fd(const char *path, char *why, size_t n)
{
    struct stat st;
    int fd = proxy_logfile_open(path, 0600, PROXY_LOGFILE_NONBLOCK);

    if (fd < 0 && errno == ENXIO) {   /* a FIFO without a reader */
        snprintf(why, n, KEYLOG_NOT_REGULAR);
        return -1;
    }
    if (fd < 0) {
        snprintf(why, n, "cannot open for appending: %s", strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        snprintf(why, n, "cannot stat: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, n, KEYLOG_NOT_REGULAR);
        close(fd);
        return -1;
    }
    return fd;
}

int proxy_tls_keylog_open(const char *path, char *why, size_t n)
{
    struct stat st;
    int fd;

    proxy_tls_keylog_close();
    if (path[0] == '\0')
        return 0;
    fd = keylog_open_fd(path, why, n);
    if (fd < 0)
        return -1;
    snprintf(keylog_path, sizeof(keylog_path), "%s", path);
    atomic_store(&keylog_failures, 0);
    atomic_store(&keylog_fd, fd);
    proxy_log_warn("tls_keylog_file %s: the secrets of every TLS connection are written there "
                   "(for debugging only: whoever can read the file can decrypt the traffic; "
                   "turn it off when done)", path);
    /* Created 0600; a file that already existed keeps its own mode. */
    if (fstat(fd, &st) == 0 && (st.st_mode & 077) != 0)
        proxy_log_warn("tls_keylog_file %s: the file is readable or writable by others (mode "
                       "%04o)", path, (unsigned)(st.st_mode & 07777));
    return 0;
}

static void keylog_failed(const char *what)
{
    unsigned long long total = atomic_fetch_add(&keylog_failures, 1) + 1;
    uint64_t suppressed;

    if (proxy_ratelimit_allow(&keylog_rl, proxy_now_ms(), &suppressed))
        proxy_log_warn("tls_keylog_file %s: a key line was not written: %s (%llu line(s) lost "
                       "so far, %" PRIu64 " report(s) suppressed)", keylog_path, what, total,
                       suppressed);
}

void proxy_tls_keylog_line(const char *line)
{
    char buf[KEYLOG_LINE_MAX];
    int fd = atomic_load(&keylog_fd);
    size_t len;
    ssize_t w;
    int err;

    if (fd < 0)
        return;
    len = strnlen(line, sizeof(buf));
    if (len + 1 > sizeof(buf)) {
        keylog_failed("line too long");
        return;
    }
    memcpy(buf, line, len);
    buf[len++] = '\n';
    do
        w = write(fd, buf, len);
    while (w < 0 && errno == EINTR);
    err = errno;
    OPENSSL_cleanse(buf, sizeof(buf));
    if (w < 0)
        keylog_failed(strerror(err));
    else if ((size_t)w != len)
        keylog_failed("short write (file system full?)");
}

void proxy_tls_keylog_close(void)
{
    int fd = atomic_exchange(&keylog_fd, -1);

    if (fd >= 0 && close(fd) != 0)
        proxy_log_warn("tls_keylog_file %s: close: %s", keylog_path, strerror(errno));
}

int proxy_tls_keylog_check(const struct conf *c, char *err, size_t n)
{
    const struct conf_global *g = &c->global;
    char why[256];
    int fd;

    if (g->tls_keylog_file[0] == '\0')
        return 0;
    fd = keylog_open_fd(g->tls_keylog_file, why, sizeof(why));
    if (fd < 0) {
        snprintf(err, n, "%s:%d: tls_keylog_file %s: %s\n", c->path, g->tls_keylog_file_line,
                 g->tls_keylog_file, why);
        return -1;
    }
    close(fd);
    return 0;
}
