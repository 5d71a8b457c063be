#include "accesslog.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "connection.h"
#include "listener.h"
#include "log.h"
#include "logfile.h"
#include "logsafe.h"
#include "parse.h"
#include "tls.h"
#include "port_libc.h"
#include "worker.h"

int proxy_accesslog_open(const char *target, char *why, size_t whylen)
{
    int fd;

    if (strcmp(target, "off") == 0)
        return -1;
    if (strcmp(target, "stderr") == 0)
        return STDERR_FILENO;
    fd = proxy_logfile_open(target, 0640, 0);
    if (fd < 0) {
        snprintf(why, whylen, "cannot open access log %s: %s", target, strerror(errno));
        return -2;
    }
    return fd;
}

/* Appends to the line being built; a field that does not fit is cut (the
 * line is still written, with its newline). */
static void line_add(char *line, size_t size, size_t *n, const char *fmt, ...)
    PORT_PRINTF(4, 5);

static void line_add(char *line, size_t size, size_t *n, const char *fmt, ...)
{
    va_list ap;
    int m;

    va_start(ap, fmt);
    m = vsnprintf(line + *n, size - *n, fmt, ap);
    va_end(ap);
    if (m > 0)
        *n += (size_t)m < size - *n ? (size_t)m : size - *n - 1;
}

/* SNI, ALPN and the client certificate's subject come from the client:
 * each is escaped as one field, so none can add a field or a line. */
static void tls_fields(char *line, size_t size, size_t *n, const struct proxy_conn *c)
{
    const struct proxy_tls *t = c->client.tls;
    char sni[PROXY_LOGSAFE_BUF], alpn[PROXY_LOGSAFE_BUF], subject[1024], cert[512];

    line_add(line, size, n, " sni=%s alpn=%s tls=%s resumed=%d",
             proxy_logsafe(sni, sizeof(sni), c->sni, PROXY_LOGSAFE_FIELD),
             proxy_logsafe(alpn, sizeof(alpn), c->alpn, PROXY_LOGSAFE_FIELD),
             t && t->handshake_done ? proxy_tls_version(t) : "-",
             t && t->handshake_done ? proxy_tls_resumed(t) : 0);
    if (c->listener == NULL || c->listener->conf->verify_client == CONF_VERIFY_OFF)
        return;
    if (t == NULL || !t->handshake_done || proxy_tls_peer_subject(t, subject, sizeof(subject)) != 0)
        line_add(line, size, n, " client_cert=-");
    else
        line_add(line, size, n, " client_cert=%s",
                 proxy_logsafe(cert, sizeof(cert), subject, PROXY_LOGSAFE_FIELD));
}

void proxy_accesslog_write(struct proxy_worker *w, const struct proxy_conn *c, uint64_t now_ms)
{
    char line[PROXY_LOG_LINE_MAX], client[80];
    size_t n = 0;

    if (w->access_fd < 0)
        return;
    conf_format_sockaddr(&c->peer, c->peerlen, client, sizeof(client));
    line_add(line, sizeof(line), &n,
             "access client=%s listener=%s backend=%s server=%s bytes_in=%" PRIu64
             " bytes_out=%" PRIu64 " duration_ms=%" PRIu64 " end=%s handoffs=%u",
             client, proxy_conn_listener_name(c), proxy_conn_backend_name(c),
             proxy_conn_server_name(c), c->up.bytes, c->down.bytes, now_ms - c->start_ms,
             proxy_end_name(c->end), (unsigned)c->handoffs);
    if (c->sni != NULL || c->alpn != NULL || c->client.tls != NULL ||
        (c->listener != NULL && c->listener->conf->tls != CONF_TLS_OFF))
        tls_fields(line, sizeof(line), &n, c);
    /* One write per line: O_APPEND keeps lines of all threads whole. */
    if (proxy_log_write(w->access_fd, "info", line) != 0)
        proxy_log_debug("access log write: %s", strerror(errno));
}
