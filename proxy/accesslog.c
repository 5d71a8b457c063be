#include "accesslog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "connection.h"
#include "listener.h"
#include "log.h"
#include "parse.h"
#include "tls.h"
#include "worker.h"

int proxy_accesslog_open(const char *target, char *why, size_t whylen)
{
    int fd;

    if (strcmp(target, "off") == 0)
        return -1;
    if (strcmp(target, "stderr") == 0)
        return STDERR_FILENO;
    fd = open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        snprintf(why, whylen, "cannot open access log %s: %s", target, strerror(errno));
        return -2;
    }
    return fd;
}

void proxy_accesslog_write(struct proxy_worker *w, const struct proxy_conn *c, uint64_t now_ms)
{
    char line[1536], client[80];
    size_t n;
    int m;

    if (w->access_fd < 0)
        return;
    conf_format_sockaddr(&c->peer, c->peerlen, client, sizeof(client));
    n = proxy_log_prefix(line, sizeof(line));
    m = snprintf(line + n, sizeof(line) - n,
                 "info: access client=%s listener=%s backend=%s server=%s bytes_in=%" PRIu64
                 " bytes_out=%" PRIu64 " duration_ms=%" PRIu64 " end=%s",
                 client, c->listener->conf->name,
                 (c->backend != NULL ? c->backend : c->listener->backend)->conf->name,
                 c->connected && c->server != NULL ? c->server->conf->name : "-",
                 c->up.bytes, c->down.bytes, now_ms - c->start_ms, proxy_end_name(c->end));
    if (m < 0)
        return;
    n += (size_t)m < sizeof(line) - n ? (size_t)m : sizeof(line) - n - 1;
    if (c->listener->conf->tls != CONF_TLS_OFF) {
        const struct proxy_tls *t = c->client.tls;

        m = snprintf(line + n, sizeof(line) - n, " sni=%s alpn=%s tls=%s resumed=%d",
                     c->sni ? c->sni : "-", c->alpn ? c->alpn : "-",
                     t && t->handshake_done ? proxy_tls_version(t) : "-",
                     t && t->handshake_done ? proxy_tls_resumed(t) : 0);
        if (m < 0)
            return;
        n += (size_t)m < sizeof(line) - n ? (size_t)m : sizeof(line) - n - 1;
    }
    /* A line is never left without its newline, even if something was cut. */
    if (n >= sizeof(line) - 1)
        n = sizeof(line) - 2;
    m = snprintf(line + n, sizeof(line) - n, "\n");
    if (m < 0)
        return;
    n += (size_t)m < sizeof(line) - n ? (size_t)m : sizeof(line) - n - 1;
    /* One write per line: O_APPEND keeps lines of all threads whole. */
    if (write(w->access_fd, line, n) < 0)
        proxy_log_debug("access log write: %s", strerror(errno));
}
