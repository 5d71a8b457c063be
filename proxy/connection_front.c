/*
 * connection_front.c - the client's phases before a server is chosen:
 * the PROXY header of a front balancer (accept_proxy), the ClientHello
 * that routes a passthrough connection, the TLS handshake of a
 * terminating listener, and the first bytes of a plain client.  Each ends
 * by routing the connection and connecting (connection_server.c).
 */
#include "connection.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "port_net.h"

#include "backend.h"
#include "clienthello.h"
#include "connection_int.h"
#include "listener.h"
#include "log.h"
#include "logsafe.h"
#include "loop.h"
#include "netutil.h"
#include "parse.h"
#include "proxyproto.h"
#include "tls.h"
#include "worker.h"
#include "xprt.h"

/* ---- the client's first bytes ------------------------------------------ */

/* Reads what the client sent into c->prefix (bounded).  Returns bytes read,
 * 0 on EOF, -1 on error, -2 when nothing is there yet. */
static ssize_t prefix_read(struct proxy_conn *c, size_t max)
{
    size_t cap = c->prefixcap;
    uint8_t *p;
    ssize_t n;

    if (c->prefixlen >= max)
        return -1;
    /* Grown as bytes arrive: a client that sends a few bytes and waits must
     * not cost the largest ClientHello's worth of memory. */
    if (c->prefixlen == cap) {
        cap = cap == 0 ? 1024 : cap * 2;
        if (cap > max)
            cap = max;
        p = realloc(c->prefix, cap);
        if (p == NULL)
            return -1;
        c->prefix = p;
        c->prefixcap = (uint32_t)cap;
    }
    n = proxy_recv(c->client.fd, (void *)(c->prefix + c->prefixlen), cap - c->prefixlen, 0);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -2 : -1;
    c->prefixlen += (uint32_t)n;
    return n;
}

void prefix_drop(struct proxy_conn *c, size_t n)
{
    memmove(c->prefix, c->prefix + n, c->prefixlen - n);
    c->prefixlen -= (uint32_t)n;
    if (c->prefixlen == 0) {
        free(c->prefix);
        c->prefix = NULL;
        c->prefixcap = 0;
    }
}

/* A refused client: one line per kind of refusal, rate-limited (a flood
 * of bad clients must not flood the log).  The reason can quote what the
 * client sent (OpenSSL's, the parsers'), so it is escaped. */
void conn_reject(struct proxy_conn *c, enum proxy_end why, enum proxy_log_kind kind,
                 const char *what, const char *reason)
{
    char client[80], safe[PROXY_LOGSAFE_BUF];

    proxy_log_limited(kind, "listener %s: %s from %s: %s", c->listener->conf->name, what,
                      conn_client(c, client, sizeof(client)),
                      proxy_logsafe(safe, sizeof(safe), reason, PROXY_LOGSAFE_TEXT));
    proxy_conn_close(c, why);
}

void parse_proxy_header(struct proxy_conn *c)
{
    struct proxy_pp_info pp;
    char why[256];
    size_t used = 0;

    switch (proxy_pp_parse(c->prefix, c->prefixlen, &pp, &used, why, sizeof(why))) {
    case PROXY_PP_NEED_MORE:
        return;
    case PROXY_PP_INVALID:
        conn_reject(c, PROXY_END_BAD_REQUEST, PROXY_LOGK_PROXY_HEADER, "bad PROXY header", why);
        return;
    case PROXY_PP_OK:
        break;
    }
    if (!pp.local) {
        c->peer = pp.src;
        c->peerlen = pp.srclen;
        c->local = pp.dst;
        c->locallen = pp.dstlen;
    }
    prefix_drop(c, used);
    evtimer_del(&c->timer);
    c->deadline_ms = 0;
    conn_begin(c);
}

void read_proxy_header(struct proxy_conn *c)
{
    ssize_t n = prefix_read(c, PROXY_PP_MAX);

    if (n == -2)
        return;
    if (n <= 0) {
        conn_reject(c, PROXY_END_BAD_REQUEST, PROXY_LOGK_PROXY_HEADER, "PROXY header",
                    n == 0 ? "connection closed before a complete header" : "read failed or "
                    "header too long");
        return;
    }
    parse_proxy_header(c);
}

/* SNI routes (exact names first, then wildcards), then ALPN routes, then
 * the listener's backend. */
static struct proxy_backend *conn_route(struct proxy_conn *c)
{
    const struct conf_listener *l = c->listener->conf;
    struct proxy_worker *w = c->loop->worker;
    const struct conf_route *hit = NULL;

    for (size_t i = 0; c->sni != NULL && hit == NULL && i < l->nroutes; i++)
        if (l->routes[i].pattern[0] != '*' && conf_route_match(l->routes[i].pattern, c->sni))
            hit = &l->routes[i];
    for (size_t i = 0; c->sni != NULL && hit == NULL && i < l->nroutes; i++)
        if (l->routes[i].pattern[0] == '*' && conf_route_match(l->routes[i].pattern, c->sni))
            hit = &l->routes[i];
    for (size_t i = 0; c->alpn != NULL && hit == NULL && i < l->nalpn_routes; i++)
        if (strcmp(l->alpn_routes[i].pattern, c->alpn) == 0)
            hit = &l->alpn_routes[i];
    if (hit == NULL)
        return c->listener->backend;
    return &w->backends[hit->backend - w->conf.backends];
}

static void route_and_connect(struct proxy_conn *c)
{
    evtimer_del(&c->timer);
    c->deadline_ms = 0;
    proxy_side_watch_read(&c->client, 0);
    c->backend = conn_route(c);
    conn_connect_next(c);
}

void hello_reader_free(struct proxy_conn *c)
{
    if (c->hello == NULL)
        return;
    proxy_clienthello_release(c->hello);
    free(c->hello);
    c->hello = NULL;
}

/* Routes once the bytes so far hold a whole ClientHello.  The reader goes
 * on from where the previous read left it, so each byte is looked at once. */
void parse_client_hello(struct proxy_conn *c)
{
    struct proxy_hello *h = NULL;
    char why[256];
    enum proxy_hello_result res;

    res = proxy_clienthello_feed(c->hello, c->prefix, c->prefixlen, why, sizeof(why));
    if (res == PROXY_HELLO_NEED_MORE)
        return;
    if (res == PROXY_HELLO_OK && (h = malloc(sizeof(*h))) == NULL) {
        proxy_conn_close(c, PROXY_END_ERROR);
        return;
    }
    if (res == PROXY_HELLO_OK)
        res = proxy_clienthello_decode(c->hello, c->prefix, h, why, sizeof(why));
    hello_reader_free(c);
    if (res != PROXY_HELLO_OK) {
        free(h);
        conn_reject(c, PROXY_END_BAD_REQUEST, PROXY_LOGK_CLIENT_HELLO, "not a TLS ClientHello",
                    why);
        return;
    }
    if (h->has_sni)
        c->sni = strdup(h->sni);
    if (h->nalpn > 0)
        c->alpn = strdup(h->alpn[0]);
    free(h);
    route_and_connect(c);
}

void read_client_hello(struct proxy_conn *c)
{
    ssize_t n = prefix_read(c, PROXY_HELLO_MAX_BYTES);

    if (n == -2)
        return;
    if (n <= 0) {
        conn_reject(c, PROXY_END_BAD_REQUEST, PROXY_LOGK_CLIENT_HELLO, "ClientHello",
                    n == 0 ? "connection closed before a complete ClientHello"
                           : "read failed or ClientHello too long");
        return;
    }
    parse_client_hello(c);
}

/* ---- TLS with the client ------------------------------------------------ */

void handshake_failed(struct proxy_conn *c, const char *reason)
{
    atomic_fetch_add_explicit(&c->loop->worker->tls_failures, 1, memory_order_relaxed);
    conn_reject(c, PROXY_END_HANDSHAKE_FAILED, PROXY_LOGK_HANDSHAKE, "TLS handshake", reason);
}

/*
 * Until a whole first record has come, the client's bytes wait in
 * c->prefix and no SSL object exists: a client that connects and sends
 * nothing, or trickles a few bytes, holds no OpenSSL state (9 KB, and 30 KB
 * more once a handshake starts).  Returns 1 once the TLS side is set up with
 * the bytes so far, 0 to wait for more, -1 if the connection was closed.
 */
static int client_tls_begin(struct proxy_conn *c)
{
    char why[256];
    ssize_t rec = proxy_tls_record_size(c->prefix, c->prefixlen, why, sizeof(why));

    if (rec < 0) {
        handshake_failed(c, why);
        return -1;
    }
    if (rec == 0)
        return 0;
    if (proxy_xprt_tls_attach(&c->client, proxy_tls_server_ssl(c->listener->tls)) != 0) {
        proxy_conn_close(c, PROXY_END_ERROR);
        return -1;
    }
    if (proxy_tls_feed(c->client.tls, c->prefix, c->prefixlen, why, sizeof(why)) !=
        PROXY_TLS_OK) {
        handshake_failed(c, why);
        return -1;
    }
    prefix_drop(c, c->prefixlen);
    return 1;
}

/* Reads the client's first bytes until they hold a whole record. */
static void client_first_record(struct proxy_conn *c)
{
    ssize_t n = prefix_read(c, PROXY_TLS_RECORD_MAX);
    const char *why;
    char client[80], safe[PROXY_LOGSAFE_BUF];

    if (n == -2)
        return;
    why = n == 0 ? "connection closed by peer" : proxy_sock_strerror(errno);
    if (n <= 0 && c->prefixlen == 0) {
        /* Closed without sending a byte (a load balancer's TCP check, a
         * port scan): no handshake was attempted, so no warning or count. */
        proxy_log_debug("listener %s: %s closed before a ClientHello (%s)",
                        c->listener->conf->name, conn_client(c, client, sizeof(client)),
                        proxy_logsafe(safe, sizeof(safe), why, PROXY_LOGSAFE_TEXT));
        proxy_conn_close(c, PROXY_END_HANDSHAKE_FAILED);
        return;
    }
    if (n <= 0) {
        handshake_failed(c, why);
        return;
    }
    if (client_tls_begin(c) == 1)
        client_handshake(c);
}

void client_handshake(struct proxy_conn *c)
{
    char why[256], alpn[256];
    int r;

    if (c->client.tls == NULL) {
        client_first_record(c);
        return;
    }
    r = tls_receive(c, &c->client, why, sizeof(why));
    if (r < 0) {
        handshake_failed(c, why);
        return;
    }
    switch (proxy_tls_handshake(c->client.tls, why, sizeof(why))) {
    case PROXY_TLS_WANT:
        if (side_flush(&c->client) < 0)
            handshake_failed(c, "send failed");
        return;
    case PROXY_TLS_OK:
        break;
    default:
        (void)side_flush(&c->client);   /* the alert, if it fits */
        handshake_failed(c, why);
        return;
    }
    if (side_flush(&c->client) < 0) {
        handshake_failed(c, "send failed");
        return;
    }
    if (proxy_tls_sni(c->client.tls)[0] != '\0')
        c->sni = strdup(proxy_tls_sni(c->client.tls));
    proxy_tls_alpn(c->client.tls, alpn, sizeof(alpn));
    if (alpn[0] != '\0')
        c->alpn = strdup(alpn);
    if (proxy_xprt_tlsrec_take(&c->client) < 0) {
        handshake_failed(c, "cannot take the connection over from OpenSSL");
        return;
    }
    route_and_connect(c);
}

/*
 * A client usually sends its first bytes right behind the handshake, so
 * they are often there at accept: taking them now lets them go out the
 * moment the server connection is up, instead of a poll round later.
 * Returns -1 when the client is already gone (connection closed).
 */
static int read_early(struct proxy_conn *c)
{
    struct proxy_loop *loop = c->loop;
    ssize_t n = proxy_recv(c->client.fd, loop->scratch, loop->scratch_len, 0);

    if (n > 0) {
        /* Only bytes that came are kept: an idle client costs no buffer. */
        c->prefix = malloc((size_t)n);
        if (c->prefix == NULL) {
            proxy_conn_close(c, PROXY_END_ERROR);
            return -1;
        }
        memcpy(c->prefix, loop->scratch, (size_t)n);
        c->prefixlen = c->prefixcap = (uint32_t)n;
        return 0;
    }
    /* EOF stays readable and is relayed as usual (the client may still
     * want the server's answer); a reset ends the connection now. */
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        proxy_conn_close(c, PROXY_END_CLIENT_CLOSE);
        return -1;
    }
    return 0;
}

/* After the PROXY header (if any): the listener's TLS stage, or connect. */
void conn_begin(struct proxy_conn *c)
{
    const struct conf_listener *l = c->listener->conf;

    switch (l->tls) {
    case CONF_TLS_PASSTHROUGH:
        c->hello = malloc(sizeof(*c->hello));
        if (c->hello == NULL) {
            proxy_conn_close(c, PROXY_END_ERROR);
            return;
        }
        proxy_clienthello_init(c->hello);
        c->state = PROXY_CONN_CLIENT_HELLO;
        timer_arm(c, l->handshake_timeout_ms);
        proxy_side_watch_read(&c->client, 1);
        /* A ClientHello that came with the PROXY header needs no more reads. */
        if (c->prefixlen > 0)
            parse_client_hello(c);
        return;
    case CONF_TLS_ON:
        c->state = PROXY_CONN_HANDSHAKE;
        timer_arm(c, l->handshake_timeout_ms);
        proxy_side_watch_read(&c->client, 1);
        /* Bytes that followed a PROXY header are the start of the ClientHello. */
        if (c->prefixlen > 0 && client_tls_begin(c) == 1)
            client_handshake(c);
        return;
    case CONF_TLS_OFF:
    default:
        /* Nothing more is read from the client until a server is connected
         * and whatever was read so far has been passed on. */
        proxy_side_watch_read(&c->client, 0);
        if (c->prefix == NULL && read_early(c) < 0)
            return;
        c->backend = c->listener->backend;
        conn_connect_next(c);
        return;
    }
}
