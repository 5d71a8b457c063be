/*
 * tls_io.c - record-level I/O of one TLS connection.
 *
 * The SSL object gets a BIO of our own instead of a socket or memory BIO:
 * reads come out of baton's input buffer, and only up to the end of the
 * last *complete* record in it; writes go to the socket when the
 * connection relays and nothing is queued (write-through), and into
 * baton's output buffer otherwise.  So every byte in flight is in a buffer
 * baton owns or in the kernel (whole records on the way in), both buffers
 * are freed when empty (an idle connection holds none), and OpenSSL's own
 * buffers are released between records (SSL_MODE_RELEASE_BUFFERS).
 *
 * Once the handshake is done, proxy_tls_take_over hands the connection to
 * baton's own record layer (tls_record.h) and frees the SSL; the same two
 * buffers then carry its records (xprt_tlsrec.c).
 */
#include "tls.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "port_net.h"

#include <openssl/err.h>
#include <openssl/x509.h>

#include "byteorder.h"
#include "log.h"
#include "netutil.h"
#include "tls_capture.h"
#include "tls_record.h"

#define REC_HDR     5
#define REC_BODY_MAX (16384 + 2048)
#define IN_CAP      32768u   /* an input buffer with room for a whole record */
#define IN_CACHED   4        /* spare input buffers kept per thread */

/*
 * Active connections empty their input buffer on nearly every read, and an
 * idle one must hold none; a few spare buffers per thread spare the
 * allocator a 32 KiB malloc/free pair per record.
 */
static _Thread_local uint8_t *in_cache[IN_CACHED];
static _Thread_local unsigned in_ncache;

static uint8_t *in_alloc(void)
{
    return in_ncache > 0 ? in_cache[--in_ncache] : malloc(IN_CAP);
}

static void in_release(uint8_t *buf, uint32_t cap)
{
    if (buf != NULL && cap == IN_CAP && in_ncache < IN_CACHED)
        in_cache[in_ncache++] = buf;
    else
        free(buf);
}

/* Records are sealed here and sent from here; only what the socket does
 * not take is copied into the connection's own output queue. */
static _Thread_local uint8_t *seal_buf;
static _Thread_local size_t seal_cap;

uint8_t *proxy_tls_seal_buffer(size_t n)
{
    uint8_t *p;

    if (n <= seal_cap)
        return seal_buf;
    if ((p = realloc(seal_buf, n)) == NULL)
        return NULL;
    seal_buf = p;
    seal_cap = n;
    return p;
}

void proxy_tls_release_cache(void)
{
    while (in_ncache > 0)
        free(in_cache[--in_ncache]);
    free(seal_buf);
    seal_buf = NULL;
    seal_cap = 0;
}

/*
 * Input buffer layout:  in[0 .. inoff)          consumed (by OpenSSL or
 *                                               baton's record layer; the
 *                                               latter opens records in
 *                                               place: in[ptoff, +ptlen) is
 *                                               plaintext not read yet)
 *                       in[inoff .. inready)    whole records, readable
 *                       in[inready .. inlen)    an incomplete record
 */

static BIO_METHOD *tls_bio_method;
static pthread_once_t tls_bio_once = PTHREAD_ONCE_INIT;

/* The BIO's data is the connection whose buffers it reads and writes. */
static int bio_read(BIO *b, char *buf, int len)
{
    struct proxy_tls *t = BIO_get_data(b);
    uint32_t avail = t->inready - t->inoff;

    BIO_clear_retry_flags(b);
    if (avail == 0) {
        BIO_set_retry_read(b);
        return -1;
    }
    if ((uint32_t)len > avail)
        len = (int)avail;
    memcpy(buf, t->in + t->inoff, (size_t)len);
    t->inoff += (uint32_t)len;
    return len;
}

static int out_reserve(struct proxy_tls *t, size_t n)
{
    size_t cap;
    uint8_t *p;

    if (t->outlen + n <= t->outcap)
        return 0;
    if (t->outoff > 0 && t->outoff == t->outlen)
        t->outoff = t->outlen = 0;
    if (t->outlen + n <= t->outcap)
        return 0;
    cap = t->outcap ? t->outcap : 4096;
    while (cap < t->outlen + n)
        cap *= 2;
    if (cap > (64u << 20))
        return -1;
    p = realloc(t->out, cap);
    if (p == NULL)
        return -1;
    t->out = p;
    t->outcap = (uint32_t)cap;
    return 0;
}

int proxy_tls_send_records(struct proxy_tls *t, int fd, const uint8_t *p, size_t n)
{
    size_t sent = 0;

    if (fd >= 0 && t->outoff == t->outlen) {
        ssize_t w;

        do
            w = proxy_send(fd, (const void *)p, n, PROXY_SEND_FLAGS);
        while (w < 0 && errno == EINTR);
        /* On EAGAIN or an error the bytes are queued; the next flush
         * reports a socket error again. */
        if (w > 0)
            sent = (size_t)w;
        if (sent == n)
            return 0;
    }
    return proxy_tls_feed_out(t, p + sent, n - sent);
}

/* Sends straight away when nothing is queued (write-through); whatever the
 * socket does not take, or everything in the handshake, is queued. */
static int bio_write(BIO *b, const char *buf, int len)
{
    struct proxy_tls *t = BIO_get_data(b);

    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    if (t->cap != NULL)
        proxy_tls_capture_written(t->cap, t->ssl, (const uint8_t *)buf, (size_t)len);
    return proxy_tls_send_records(t, t->wfd, (const uint8_t *)buf, (size_t)len) == 0 ? len : -1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    struct proxy_tls *t = BIO_get_data(b);

    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_PENDING:
        return t != NULL ? (long)(t->inready - t->inoff) : 0;
    case BIO_CTRL_WPENDING:
        return t != NULL ? (long)(t->outlen - t->outoff) : 0;
    default:
        return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static int bio_destroy(BIO *b)
{
    BIO_set_data(b, NULL);
    return 1;
}

static void bio_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "baton records");

    if (m == NULL || !BIO_meth_set_read(m, bio_read) || !BIO_meth_set_write(m, bio_write) ||
        !BIO_meth_set_ctrl(m, bio_ctrl) || !BIO_meth_set_create(m, bio_create) ||
        !BIO_meth_set_destroy(m, bio_destroy)) {
        BIO_meth_free(m);
        return;
    }
    tls_bio_method = m;
}

int proxy_tls_init(struct proxy_tls *t, SSL *ssl)
{
    memset(t, 0, sizeof(*t));
    t->wfd = -1;
    if (ssl == NULL || pthread_once(&tls_bio_once, bio_method_init) != 0 ||
        tls_bio_method == NULL)
        goto fail;
    t->cap = malloc(sizeof(*t->cap));
    if (t->cap == NULL || proxy_tls_capture_attach(ssl, t->cap) != 0)
        goto fail;
    t->rbio = BIO_new(tls_bio_method);
    if (t->rbio == NULL)
        goto fail;
    BIO_set_data(t->rbio, t);
    /* One BIO both ways: SSL_set_bio then takes the single reference. */
    t->wbio = t->rbio;
    SSL_set_bio(ssl, t->rbio, t->wbio);
    t->ssl = ssl;
    return 0;
fail:
    SSL_free(ssl);
    free(t->cap);
    t->cap = NULL;
    return -1;
}

static void cap_free(struct proxy_tls *t)
{
    if (t->cap == NULL)
        return;
    if (t->ssl != NULL)
        proxy_tls_capture_detach(t->ssl);
    OPENSSL_cleanse(t->cap, sizeof(*t->cap));
    free(t->cap);
    t->cap = NULL;
}

void proxy_tls_free(struct proxy_tls *t)
{
    cap_free(t);
    SSL_free(t->ssl);   /* frees the BIO */
    if (t->rec != NULL) {
        proxy_tlsrec_free(t->rec);
        free(t->rec);
    }
    in_release(t->in, t->incap);
    free(t->out);
    free(t->facts.subject);
    memset(t, 0, sizeof(*t));
    t->wfd = -1;
}

/*
 * During the handshake, the tail of an incomplete record waits in a buffer
 * of its own size: a client that sends a few bytes and stalls must not hold
 * a whole record's room (32 KiB) for as long as the handshake timeout.
 * Once relaying the room stays, as more data is on its way and copying each
 * tail would cost the bulk path.
 */
static void in_shrink(struct proxy_tls *t)
{
    uint8_t *small;

    if (t->handshake_done || t->in == NULL || t->inready > 0 || t->incap <= t->inlen)
        return;
    if ((small = malloc(t->inlen)) == NULL)
        return;   /* keeps the large one */
    memcpy(small, t->in, t->inlen);
    in_release(t->in, t->incap);
    t->in = small;
    t->incap = t->inlen;
}

/* Drops what was consumed; frees the buffer when nothing is left.  Never
 * while opened plaintext waits in it (ptlen). */
static void in_compact(struct proxy_tls *t)
{
    if (t->ptlen > 0)
        return;
    if (t->inoff == t->inlen) {
        in_release(t->in, t->incap);
        t->in = NULL;
        t->inlen = t->incap = 0;
        t->inoff = t->inready = t->ptoff = 0;
        return;
    }
    if (t->inoff > 0) {
        memmove(t->in, t->in + t->inoff, t->inlen - t->inoff);
        t->inlen -= t->inoff;
        t->inready -= t->inoff;
        t->inoff = t->ptoff = 0;
    }
    in_shrink(t);
}

void proxy_tls_in_release_if_empty(struct proxy_tls *t)
{
    if (t->ptlen == 0 && t->inoff == t->inlen)
        in_compact(t);
}

/* Makes room for n more input bytes. */
static int in_reserve(struct proxy_tls *t, size_t n)
{
    size_t cap = t->incap ? t->incap : 4096;
    uint8_t *buf;

    if (t->inlen + n <= t->incap)
        return 0;
    if (t->inlen + n <= IN_CAP) {
        /* A whole record's room, with the tail of the incomplete one (kept
         * small during the handshake) moved in. */
        if ((buf = in_alloc()) == NULL)
            return -1;
        if (t->inlen > 0)
            memcpy(buf, t->in, t->inlen);
        in_release(t->in, t->incap);
        t->in = buf;
        t->incap = IN_CAP;
        return 0;
    }
    while (cap < t->inlen + n)
        cap *= 2;
    buf = realloc(t->in, cap);
    if (buf == NULL)
        return -1;
    t->in = buf;
    t->incap = (uint32_t)cap;
    return 0;
}

ssize_t proxy_tls_record_size(const uint8_t *p, size_t n, char *why, size_t whylen)
{
    uint32_t len;

    if (n < REC_HDR)
        return 0;
    len = proxy_be16(p + 3);
    if (p[0] < 20 || p[0] > 23 || p[1] != 3 || len > REC_BODY_MAX) {
        snprintf(why, whylen, "malformed TLS record (type %u, version %u.%u, length %u)",
                 p[0], p[1], p[2], len);
        return -1;
    }
    return n >= REC_HDR + len ? (ssize_t)(REC_HDR + len) : 0;
}

/* Advances the readable window over every complete record just received,
 * checking each header. */
static enum proxy_tls_status in_scan(struct proxy_tls *t, char *why, size_t whylen)
{
    ssize_t r;

    while ((r = proxy_tls_record_size(t->in + t->inready, t->inlen - t->inready,
                                      why, whylen)) > 0)
        t->inready += (uint32_t)r;
    /* An incomplete record longer than any valid one was rejected, so the
     * buffer never holds more than one record beyond what is readable. */
    return r < 0 ? PROXY_TLS_ERROR : PROXY_TLS_OK;
}

enum proxy_tls_status proxy_tls_feed(struct proxy_tls *t, const uint8_t *p, size_t n,
                                     char *why, size_t whylen)
{
    in_compact(t);
    if (in_reserve(t, n) != 0) {
        snprintf(why, whylen, "out of memory");
        return PROXY_TLS_ERROR;
    }
    memcpy(t->in + t->inlen, p, n);
    t->inlen += (uint32_t)n;
    t->raw_in += n;
    return in_scan(t, why, whylen);
}

ssize_t proxy_tls_recv(struct proxy_tls *t, int fd, char *why, size_t whylen)
{
    size_t room;
    ssize_t n;

    in_compact(t);
    /* Room for a whole record, received where OpenSSL will read it. */
    if (in_reserve(t, REC_HDR + REC_BODY_MAX) != 0) {
        snprintf(why, whylen, "out of memory");
        return -3;
    }
    room = t->incap - t->inlen;
    do
        n = proxy_recv(fd, (void *)(t->in + t->inlen), room, 0);
    while (n < 0 && errno == EINTR);
    t->rx_short = n >= 0 && (size_t)n < room;
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            n = -2;
        else
            snprintf(why, whylen, "%s", proxy_sock_strerror(errno));
        in_compact(t);   /* nothing came: do not keep the room */
        return n;
    }
    if (n == 0) {
        in_compact(t);
        return 0;
    }
    t->inlen += (uint32_t)n;
    t->raw_in += (uint64_t)n;
    if (in_scan(t, why, whylen) != PROXY_TLS_OK)
        return -3;
    in_shrink(t);
    return n;
}

static enum proxy_tls_status tls_result(struct proxy_tls *t, int rc, char *why, size_t whylen)
{
    char reason[256];
    unsigned long e;

    switch (SSL_get_error(t->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return PROXY_TLS_WANT;
    case SSL_ERROR_ZERO_RETURN:
        return PROXY_TLS_EOF;
    case SSL_ERROR_SSL:
        e = ERR_peek_last_error();
        ERR_error_string_n(e, reason, sizeof(reason));
        ERR_clear_error();
        if (SSL_get_verify_result(t->ssl) != X509_V_OK)
            snprintf(why, whylen, "%s (certificate verification: %s)", reason,
                     X509_verify_cert_error_string(SSL_get_verify_result(t->ssl)));
        else
            snprintf(why, whylen, "%s", reason);
        return PROXY_TLS_ERROR;
    default:
        ERR_clear_error();
        snprintf(why, whylen, "TLS failure (SSL_get_error %d)", SSL_get_error(t->ssl, rc));
        return PROXY_TLS_ERROR;
    }
}

/* The client certificate's subject: RFC 2253 order and separators,
 * special characters escaped the RFC 2253 way, but bytes as they are (the
 * log escapes those itself).  NULL if there is none. */
static char *peer_subject(SSL *ssl)
{
    const unsigned long flags = XN_FLAG_RFC2253 & ~(ASN1_STRFLGS_ESC_CTRL | ASN1_STRFLGS_ESC_MSB);
    X509 *x = SSL_get0_peer_certificate(ssl);
    char buf[1024], *s = NULL;
    BIO *mem;
    int len;

    if (x == NULL || (mem = BIO_new(BIO_s_mem())) == NULL)
        return NULL;
    if (X509_NAME_print_ex(mem, X509_get_subject_name(x), 0, flags) >= 0 &&
        (len = BIO_read(mem, buf, (int)sizeof(buf) - 1)) >= 0) {
        buf[len] = '\0';
        s = strdup(buf);
    }
    BIO_free(mem);
    ERR_clear_error();
    return s;
}

/* What the logs and PROXY headers need is kept apart from the SSL, which
 * may be freed right after the handshake. */
static enum proxy_tls_status facts_take(struct proxy_tls *t, char *why, size_t whylen)
{
    struct proxy_tls_facts *f = &t->facts;

    snprintf(f->version, sizeof(f->version), "%s", SSL_get_version(t->ssl));
    snprintf(f->cipher, sizeof(f->cipher), "%s", SSL_get_cipher_name(t->ssl));
    f->resumed = SSL_session_reused(t->ssl) != 0;
    if (SSL_get0_peer_certificate(t->ssl) != NULL && (f->subject = peer_subject(t->ssl)) == NULL) {
        snprintf(why, whylen, "out of memory");
        return PROXY_TLS_ERROR;
    }
    return PROXY_TLS_OK;
}

enum proxy_tls_status proxy_tls_handshake(struct proxy_tls *t, char *why, size_t whylen)
{
    int rc;

    /* A server's handshake moves only on the client's records.  Called with
     * none, OpenSSL would still set up its handshake buffers (some 30 KB)
     * just to find nothing to read, and a client trickling its first bytes
     * would hold them. */
    if (SSL_is_server(t->ssl) && !proxy_tls_pending_in(t))
        return PROXY_TLS_WANT;
    rc = SSL_do_handshake(t->ssl);

    /* What the handshake consumed is released now: an idle connection that
     * has just finished its handshake must not keep the input buffer. */
    in_compact(t);
    if (rc == 1) {
        t->handshake_done = 1;
        return facts_take(t, why, whylen);
    }
    return tls_result(t, rc, why, whylen);
}

enum proxy_tls_status proxy_tls_read(struct proxy_tls *t, void *buf, size_t n, size_t *got,
                                     char *why, size_t whylen)
{
    int rc = SSL_read_ex(t->ssl, buf, n, got);

    if (rc == 1)
        return PROXY_TLS_OK;
    *got = 0;
    /* Everything readable was consumed: let an idle connection hold no buffer. */
    in_compact(t);
    return tls_result(t, rc, why, whylen);
}

enum proxy_tls_status proxy_tls_write(struct proxy_tls *t, const void *buf, size_t n,
                                      char *why, size_t whylen)
{
    size_t done = 0;
    int rc = SSL_write_ex(t->ssl, buf, n, &done);

    if (rc == 1 && done == n)
        return PROXY_TLS_OK;
    return rc == 1 ? PROXY_TLS_ERROR : tls_result(t, rc, why, whylen);
}

void proxy_tls_write_through(struct proxy_tls *t, int fd)
{
    t->wfd = fd;
}

int proxy_tls_feed_out(struct proxy_tls *t, const void *p, size_t n)
{
    if (out_reserve(t, n) != 0)
        return -1;
    memcpy(t->out + t->outlen, p, n);
    t->outlen += (uint32_t)n;
    return 0;
}

void proxy_tls_close_notify(struct proxy_tls *t)
{
    if (t->close_notify_sent || !t->handshake_done)
        return;
    t->close_notify_sent = 1;
    if (SSL_shutdown(t->ssl) < 0)
        ERR_clear_error();
}

int proxy_tls_flush(struct proxy_tls *t, int fd)
{
    while (t->outoff < t->outlen) {
        ssize_t w = proxy_send(fd, (const void *)(t->out + t->outoff), t->outlen - t->outoff,
                               PROXY_SEND_FLAGS);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        }
        t->outoff += (uint32_t)w;
    }
    free(t->out);
    t->out = NULL;
    t->outoff = t->outlen = t->outcap = 0;
    return 1;
}

int proxy_tls_pending_out(const struct proxy_tls *t)
{
    return t->outoff < t->outlen;
}

int proxy_tls_pending_in(const struct proxy_tls *t)
{
    return t->ptlen > 0 || t->inready > t->inoff || (t->ssl != NULL && SSL_pending(t->ssl) > 0);
}

const char *proxy_tls_sni(const struct proxy_tls *t)
{
    const char *s = SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);

    return s != NULL ? s : "";
}

void proxy_tls_alpn(const struct proxy_tls *t, char *buf, size_t n)
{
    const unsigned char *p = NULL;
    unsigned len = 0;

    SSL_get0_alpn_selected(t->ssl, &p, &len);
    snprintf(buf, n, "%.*s", (int)len, p != NULL ? (const char *)p : "");
}

const char *proxy_tls_version(const struct proxy_tls *t)
{
    return t->facts.version;
}

const char *proxy_tls_cipher(const struct proxy_tls *t)
{
    return t->facts.cipher;
}

int proxy_tls_resumed(const struct proxy_tls *t)
{
    return t->facts.resumed;
}

int proxy_tls_peer_subject(const struct proxy_tls *t, char *buf, size_t n)
{
    if (t->facts.subject == NULL || n == 0)
        return -1;
    snprintf(buf, n, "%s", t->facts.subject);
    return 0;
}

int proxy_tls_take_over(struct proxy_tls *t, char *why, size_t whylen)
{
    struct proxy_tlsrec *r;

    if (t->ssl == NULL || t->cap == NULL || !t->handshake_done) {
        snprintf(why, whylen, "no handshake to take over");
        return 0;
    }
    if ((r = malloc(sizeof(*r))) == NULL)
        return -1;
    if (proxy_tls_capture_finish(t->ssl, t->cap, r, why, whylen) != 0) {
        free(r);
        cap_free(t);   /* nothing more to follow: the SSL stays for life */
        return 0;
    }
    cap_free(t);
    SSL_free(t->ssl);  /* and the BIO; buffers and offsets are ours */
    t->ssl = NULL;
    t->rbio = t->wbio = NULL;
    t->rec = r;
    return 1;
}

int proxy_tls_next_record(struct proxy_tls *t, uint8_t **rec, size_t *len)
{
    size_t n;

    if (t->inready == t->inoff)
        return 0;
    /* in_scan checked every header up to inready. */
    n = PROXY_TLSREC_HDR + proxy_be16(t->in + t->inoff + 3);
    *rec = t->in + t->inoff;
    *len = n;
    t->inoff += (uint32_t)n;
    return 1;
}

uint8_t *proxy_tls_out_room(struct proxy_tls *t, size_t n)
{
    return out_reserve(t, n) == 0 ? t->out + t->outlen : NULL;
}

void proxy_tls_out_commit(struct proxy_tls *t, size_t n)
{
    t->outlen += (uint32_t)n;
}

int proxy_tls_adopt_buffers(struct proxy_tls *t, const uint8_t *plain, uint32_t nplain,
                            const uint8_t *raw, uint32_t nraw, const uint8_t *out,
                            uint32_t nout, char *why, size_t whylen)
{
    if (nplain > PROXY_TLSREC_PT_MAX) {
        snprintf(why, whylen, "%u bytes of opened plaintext (max %u)", (unsigned)nplain,
                 PROXY_TLSREC_PT_MAX);
        return -1;
    }
    if (nout > 0 && proxy_tls_feed_out(t, out, nout) != 0) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    if (nplain + nraw == 0)
        return 0;
    if (in_reserve(t, (size_t)nplain + nraw) != 0) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    /* Plaintext first, as if its record had just been opened in place. */
    if (nplain > 0)
        memcpy(t->in, plain, nplain);
    if (nraw > 0)
        memcpy(t->in + nplain, raw, nraw);
    t->inlen = nplain + nraw;
    t->inoff = t->inready = nplain;
    t->ptoff = 0;
    t->ptlen = nplain;
    if (in_scan(t, why, whylen) != PROXY_TLS_OK)
        return -1;
    /* More than one incomplete record after the whole ones is not a state
     * any sender could have left. */
    if (t->inlen - t->inready > PROXY_TLS_RECORD_MAX) {
        snprintf(why, whylen, "%u bytes of an incomplete record", (unsigned)(t->inlen - t->inready));
        return -1;
    }
    return 0;
}
