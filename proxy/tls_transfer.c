/*
 * tls_transfer.c - a TLS side leaving one generation and arriving in the
 * next (tls_transfer.h): baton's record state, the bytes in its buffers
 * and the handshake's facts, as plain data in a CONN message.
 */
#include "tls_transfer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "tls.h"
#include "tls_record.h"

static void dir_freeze(const struct proxy_tlsrec_dir *d, struct handoff_tls_dir *h)
{
    memcpy(h->secret, d->secret, sizeof(h->secret));
    memcpy(h->key, d->key, sizeof(h->key));
    memcpy(h->iv, d->iv, sizeof(h->iv));
    h->seq = d->seq;
    h->nonce = d->nonce;
}

int proxy_tls_movable(const struct proxy_tls *t)
{
    return t->rec != NULL;
}

int proxy_tls_freeze(const struct proxy_tls *t, struct handoff_tls *h)
{
    const struct proxy_tlsrec *r = t->rec;

    if (r == NULL)
        return -1;
    memset(h, 0, sizeof(*h));
    h->version = r->version;
    h->suite = r->suite;
    h->role = r->role;
    h->flags = r->flags;
    h->max_frag = r->max_frag;
    h->ku_after = r->ku_after;
    dir_freeze(&r->rd, &h->rd);
    dir_freeze(&r->wr, &h->wr);
    h->hs = r->hs;
    h->hslen = r->hslen;
    h->plain_in = t->ptlen > 0 ? t->in + t->ptoff : NULL;
    h->nplain_in = t->ptlen;
    h->raw_in = t->inlen > t->inoff ? t->in + t->inoff : NULL;
    h->nraw_in = t->inlen - t->inoff;
    h->raw_out = t->outlen > t->outoff ? t->out + t->outoff : NULL;
    h->nraw_out = t->outlen - t->outoff;
    h->raw_bytes_in = t->raw_in;
    snprintf(h->version_name, sizeof(h->version_name), "%s", t->facts.version);
    snprintf(h->cipher, sizeof(h->cipher), "%s", t->facts.cipher);
    h->resumed = t->facts.resumed;
    snprintf(h->subject, sizeof(h->subject), "%s",
             t->facts.subject != NULL ? t->facts.subject : "");
    return 0;
}

static void dir_adopt(const struct handoff_tls_dir *h, struct proxy_tlsrec_dir *d)
{
    memcpy(d->secret, h->secret, sizeof(d->secret));
    memcpy(d->key, h->key, sizeof(d->key));
    memcpy(d->iv, h->iv, sizeof(d->iv));
    d->seq = h->seq;
    d->nonce = h->nonce;
}

/* The record layer as it was, checked and keyed: 0, or -1 with why. */
static int rec_adopt(struct proxy_tlsrec *r, const struct handoff_tls *h, char *why, size_t n)
{
    memset(r, 0, sizeof(*r));
    if (h->version > 0xffff || h->suite > 0xffff || h->role > 0xff || h->flags > 0xff ||
        h->max_frag > 0xffff) {
        snprintf(why, n, "TLS state out of range (version %u, suite %u, role %u, flags %u, "
                 "max_frag %u)", (unsigned)h->version, (unsigned)h->suite, (unsigned)h->role,
                 (unsigned)h->flags, (unsigned)h->max_frag);
        return -1;
    }
    r->version = (uint16_t)h->version;
    r->suite = (uint16_t)h->suite;
    r->role = (uint8_t)h->role;
    r->flags = (uint8_t)h->flags;
    r->max_frag = (uint16_t)h->max_frag;
    r->ku_after = h->ku_after;
    dir_adopt(&h->rd, &r->rd);
    dir_adopt(&h->wr, &r->wr);
    if (h->hslen > 0) {
        if ((r->hs = malloc(h->hslen)) == NULL) {
            snprintf(why, n, "out of memory");
            return -1;
        }
        memcpy(r->hs, h->hs, h->hslen);
        r->hslen = h->hslen;
    }
    return proxy_tlsrec_start(r, why, n);
}

struct proxy_tls *proxy_tls_adopt(const struct handoff_tls *h, char *why, size_t n)
{
    struct proxy_tls *t = calloc(1, sizeof(*t));

    if (t == NULL || (t->rec = malloc(sizeof(*t->rec))) == NULL) {
        free(t);
        snprintf(why, n, "out of memory");
        return NULL;
    }
    t->wfd = -1;
    if (rec_adopt(t->rec, h, why, n) != 0 ||
        proxy_tls_adopt_buffers(t, h->plain_in, h->nplain_in, h->raw_in, h->nraw_in,
                                h->raw_out, h->nraw_out, why, n) != 0)
        goto fail;
    t->raw_in = h->raw_bytes_in;
    t->handshake_done = 1;
    t->close_notify_sent = (h->flags & PROXY_TLSREC_F_CLOSE_SENT) != 0;
    snprintf(t->facts.version, sizeof(t->facts.version), "%s", h->version_name);
    snprintf(t->facts.cipher, sizeof(t->facts.cipher), "%s", h->cipher);
    t->facts.resumed = h->resumed != 0;
    if (h->subject[0] != '\0' && (t->facts.subject = strdup(h->subject)) == NULL) {
        snprintf(why, n, "out of memory");
        goto fail;
    }
    return t;
fail:
    proxy_tls_free(t);
    free(t);
    return NULL;
}
