/*
 * tls_post.c - the post-handshake protocol (RFC 8446 sections 4.6 and 6,
 * RFC 5246 section 7): what proxy_tlsrec_read does with each record once it
 * is opened - application data, alerts, and the handshake messages a peer
 * may still send (KeyUpdate, NewSessionTicket, HelloRequest, a
 * renegotiating ClientHello), reassembled across records.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "tls_record_int.h"

#define TLS13 0x0304

#define HS_HELLO_REQUEST   0
#define HS_CLIENT_HELLO    1
#define HS_NEW_TICKET      4
#define HS_CERT_REQUEST    13
#define HS_KEY_UPDATE      24
#define HS_HDR             4

static enum proxy_tlsrec_rc fatal(uint8_t *alert, uint8_t desc)
{
    *alert = desc;
    return PROXY_TLSREC_FATAL;
}

static enum proxy_tlsrec_rc on_alert(struct proxy_tlsrec *r, const uint8_t *p, size_t n,
                                     uint8_t *alert, char *why, size_t whylen)
{
    if (n != 2) {
        proxy_tlsrec_why(why, whylen, "alert record of %zu bytes (expected 2)", n);
        return fatal(alert, PROXY_TLS_ALERT_DECODE_ERROR);
    }
    if (p[1] == PROXY_TLS_ALERT_CLOSE_NOTIFY) {
        r->flags |= PROXY_TLSREC_F_PEER_CLOSED;
        return PROXY_TLSREC_CLOSED;
    }
    /* TLS 1.3 makes every other alert fatal whatever its level (6). */
    if (p[1] == PROXY_TLS_ALERT_USER_CANCELED || (r->version != TLS13 && p[0] == 1))
        return PROXY_TLSREC_CONTROL;
    proxy_tlsrec_why(why, whylen, "peer sent alert %u (level %u)", p[1], p[0]);
    return fatal(alert, 0);
}

/* KeyUpdate (RFC 8446 section 4.6.3): the peer's next records use its next
 * secret; update_requested asks for ours too. */
static enum proxy_tlsrec_rc on_key_update(struct proxy_tlsrec *r, const uint8_t *body,
                                          size_t n, int ends_record, uint8_t *alert,
                                          char *why, size_t whylen)
{
    if (n != 1) {
        proxy_tlsrec_why(why, whylen, "KeyUpdate of %zu bytes (expected 1)", n);
        return fatal(alert, PROXY_TLS_ALERT_DECODE_ERROR);
    }
    if (body[0] > 1) {
        proxy_tlsrec_why(why, whylen, "KeyUpdate request_update %u (expected 0 or 1)", body[0]);
        return fatal(alert, PROXY_TLS_ALERT_ILLEGAL_PARAMETER);
    }
    if (!ends_record) {
        proxy_tlsrec_why(why, whylen, "KeyUpdate not at the end of its record");
        return fatal(alert, PROXY_TLS_ALERT_UNEXPECTED_MESSAGE);
    }
    if (proxy_tlsrec_dir_update(proxy_tlsrec_suite_find(r->version, r->suite), &r->rd, 0,
                                why, whylen) != 0)
        return fatal(alert, PROXY_TLS_ALERT_INTERNAL_ERROR);
    if (body[0] == 1)
        r->flags |= PROXY_TLSREC_F_KU_OWED;
    return PROXY_TLSREC_CONTROL;
}

/* One whole handshake message. */
static enum proxy_tlsrec_rc on_message(struct proxy_tlsrec *r, uint8_t type, const uint8_t *body,
                                       size_t n, int ends_record, uint8_t *alert,
                                       char *why, size_t whylen)
{
    int client = r->role == PROXY_TLSREC_CLIENT;

    if (r->version == TLS13) {
        if (type == HS_KEY_UPDATE)
            return on_key_update(r, body, n, ends_record, alert, why, whylen);
        if (type == HS_NEW_TICKET && client)
            return PROXY_TLSREC_CONTROL;    /* baton resumes no upstream session */
        if (type == HS_CERT_REQUEST && client) {
            proxy_tlsrec_why(why, whylen, "post-handshake CertificateRequest (never offered)");
            return fatal(alert, PROXY_TLS_ALERT_UNEXPECTED_MESSAGE);
        }
    } else if ((type == HS_HELLO_REQUEST && client) || (type == HS_CLIENT_HELLO && !client)) {
        if (type == HS_HELLO_REQUEST && n != 0) {
            proxy_tlsrec_why(why, whylen, "HelloRequest of %zu bytes (expected 0)", n);
            return fatal(alert, PROXY_TLS_ALERT_DECODE_ERROR);
        }
        r->flags |= PROXY_TLSREC_F_NORENEG_OWED;   /* renegotiation refused */
        return PROXY_TLSREC_CONTROL;
    }
    proxy_tlsrec_why(why, whylen, "handshake message %u after the handshake (as %s)", type,
                     client ? "client" : "server");
    return fatal(alert, PROXY_TLS_ALERT_UNEXPECTED_MESSAGE);
}

/* Keeps the incomplete message at p[0..n) for the next record; p is in
 * r->hs when in_hs. */
static enum proxy_tlsrec_rc keep_partial(struct proxy_tlsrec *r, int in_hs, const uint8_t *p,
                                         size_t n, uint8_t *alert, char *why, size_t whylen)
{
    uint8_t *hs;

    if (in_hs && n > 0) {
        memmove(r->hs, p, n);
        r->hslen = (uint32_t)n;
        return PROXY_TLSREC_CONTROL;
    }
    if (in_hs) {                    /* complete: an idle connection keeps no buffer */
        OPENSSL_cleanse(r->hs, r->hslen);
        free(r->hs);
        r->hs = NULL;
        r->hslen = 0;
        return PROXY_TLSREC_CONTROL;
    }
    if (n == 0)
        return PROXY_TLSREC_CONTROL;
    if ((hs = malloc(n)) == NULL) {
        proxy_tlsrec_why(why, whylen, "out of memory for a handshake message");
        return fatal(alert, PROXY_TLS_ALERT_INTERNAL_ERROR);
    }
    memcpy(hs, p, n);
    free(r->hs);                    /* an empty buffer a handoff may have brought */
    r->hs = hs;
    r->hslen = (uint32_t)n;
    return PROXY_TLSREC_CONTROL;
}

/* Appends a record's handshake bytes to an incomplete message. */
static int append_partial(struct proxy_tlsrec *r, const uint8_t *p, size_t n, char *why,
                          size_t whylen)
{
    uint8_t *hs;

    if (r->hslen + n > PROXY_TLSREC_HS_MAX) {
        proxy_tlsrec_why(why, whylen, "post-handshake message over %d bytes", PROXY_TLSREC_HS_MAX);
        return -1;
    }
    if ((hs = malloc(r->hslen + n)) == NULL) {
        proxy_tlsrec_why(why, whylen, "out of memory for a handshake message");
        return -1;
    }
    /* Copied rather than realloc'd, so the old bytes can be cleansed. */
    memcpy(hs, r->hs, r->hslen);
    memcpy(hs + r->hslen, p, n);
    OPENSSL_cleanse(r->hs, r->hslen);
    free(r->hs);
    r->hs = hs;
    r->hslen += (uint32_t)n;
    return 0;
}

static enum proxy_tlsrec_rc on_handshake(struct proxy_tlsrec *r, const uint8_t *p, size_t n,
                                         uint8_t *alert, char *why, size_t whylen)
{
    enum proxy_tlsrec_rc rc;
    size_t off = 0, len;
    int in_hs = r->hslen > 0;

    if (n == 0) {
        proxy_tlsrec_why(why, whylen, "empty handshake record");
        return fatal(alert, PROXY_TLS_ALERT_UNEXPECTED_MESSAGE);
    }
    if (in_hs) {
        if (append_partial(r, p, n, why, whylen) != 0)
            return fatal(alert, PROXY_TLS_ALERT_DECODE_ERROR);
        p = r->hs;
        n = r->hslen;
    }
    while (n - off >= HS_HDR) {
        len = (size_t)p[off + 1] << 16 | (size_t)p[off + 2] << 8 | p[off + 3];
        if (len > PROXY_TLSREC_HS_MAX - HS_HDR) {
            proxy_tlsrec_why(why, whylen, "post-handshake message %u of %zu bytes (max %d)",
                             p[off], len, PROXY_TLSREC_HS_MAX - HS_HDR);
            return fatal(alert, PROXY_TLS_ALERT_DECODE_ERROR);
        }
        if (n - off - HS_HDR < len)
            break;
        rc = on_message(r, p[off], p + off + HS_HDR, len, off + HS_HDR + len == n, alert,
                        why, whylen);
        if (rc != PROXY_TLSREC_CONTROL)
            return rc;
        off += HS_HDR + len;
    }
    return keep_partial(r, in_hs, p + off, n - off, alert, why, whylen);
}

enum proxy_tlsrec_rc proxy_tlsrec_read(struct proxy_tlsrec *r, uint8_t *rec, size_t reclen,
                                       uint8_t **pt, size_t *ptlen, uint8_t *alert,
                                       char *why, size_t whylen)
{
    uint8_t type, *p;
    size_t n;

    *pt = NULL;
    *ptlen = 0;
    *alert = 0;
    if (r->flags & PROXY_TLSREC_F_PEER_CLOSED) {
        proxy_tlsrec_why(why, whylen, "record after the peer's close_notify");
        return fatal(alert, PROXY_TLS_ALERT_UNEXPECTED_MESSAGE);
    }
    if (proxy_tlsrec_open(r, rec, reclen, &type, &p, &n, alert, why, whylen) != 0)
        return PROXY_TLSREC_FATAL;
    /* A handshake message must not be interleaved with other records. */
    if (r->hslen > 0 && type != PROXY_TLSREC_CT_HS) {
        proxy_tlsrec_why(why, whylen, "record of content type %u inside a handshake message",
                         type);
        return fatal(alert, PROXY_TLS_ALERT_UNEXPECTED_MESSAGE);
    }
    switch (type) {
    case PROXY_TLSREC_CT_APPDATA:
        *pt = p;
        *ptlen = n;
        return PROXY_TLSREC_DATA;
    case PROXY_TLSREC_CT_ALERT:
        return on_alert(r, p, n, alert, why, whylen);
    case PROXY_TLSREC_CT_HS:
        return on_handshake(r, p, n, alert, why, whylen);
    default:
        proxy_tlsrec_why(why, whylen, "record of content type %u after the handshake", type);
        return fatal(alert, PROXY_TLS_ALERT_UNEXPECTED_MESSAGE);
    }
}
