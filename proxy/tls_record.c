/*
 * tls_record.c - protecting and opening one record (TLS 1.3, RFC 8446
 * section 5.2-5.3; TLS 1.2 AEAD, RFC 5246/5288/7905), and the write side of
 * the record layer: application data split by max_fragment_length, owed
 * control records, proactive KeyUpdates, alerts; start and free.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "tls_record_int.h"

#define TLS13 0x0304
#define TLS12 0x0303
#define KU_MSG_LEN 5   /* handshake header + KeyUpdateRequest */

void proxy_tlsrec_why(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    if (why == NULL || whylen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* TLS 1.2 GCM: salt || explicit nonce; otherwise iv XOR the sequence number. */
static void make_nonce(const struct proxy_tlsrec_suite *s, const struct proxy_tlsrec_dir *d,
                       const uint8_t *explicit_nonce, uint8_t nonce[PROXY_TLSREC_IV_LEN])
{
    if (s->explicit_len > 0) {
        memcpy(nonce, d->iv, 4);
        memcpy(nonce + 4, explicit_nonce, 8);
        return;
    }
    memcpy(nonce, d->iv, PROXY_TLSREC_IV_LEN);
    for (int i = 0; i < 8; i++)
        nonce[4 + i] ^= (uint8_t)(d->seq >> (56 - 8 * i));
}

/* TLS 1.2's additional data: seq || type || version || plaintext length. */
static void make_aad12(uint64_t seq, uint8_t type, size_t ptlen, uint8_t aad[13])
{
    put_be64(aad, seq);
    aad[8] = type;
    aad[9] = 3;
    aad[10] = 3;
    aad[11] = (uint8_t)(ptlen >> 8);
    aad[12] = (uint8_t)ptlen;
}

/* One AEAD operation in place on buf; the tag is written (enc) or checked.
 * 1 on success, 0 on failure (for opening: the tag did not match). */
static int aead(EVP_CIPHER_CTX *ctx, int enc, const uint8_t *nonce, const uint8_t *aad,
                size_t aadlen, uint8_t *buf, size_t len, uint8_t *tag)
{
    int outl = 0, finl = 0;

    if (!EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, enc))
        return 0;
    if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, PROXY_TLSREC_TAG, tag) <= 0)
        return 0;
    if (!EVP_CipherUpdate(ctx, NULL, &outl, aad, (int)aadlen))
        return 0;
    outl = 0;
    if (len > 0 && !EVP_CipherUpdate(ctx, buf, &outl, buf, (int)len))
        return 0;
    if (EVP_CipherFinal_ex(ctx, buf + outl, &finl) <= 0)
        return 0;
    if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, PROXY_TLSREC_TAG, tag) <= 0)
        return 0;
    return 1;
}

/*
 * Sealing reads the plaintext where it is and writes the ciphertext into
 * the record (one pass over the bytes, as OpenSSL's own record layer does),
 * then TLS 1.3's inner content type.  GCM and ChaCha20-Poly1305 take
 * updates of any length.  1, or 0 on failure.
 */
static int aead_seal(EVP_CIPHER_CTX *ctx, const uint8_t *nonce, const uint8_t *aad,
                     size_t aadlen, const uint8_t *pt, size_t len, const uint8_t *inner_type,
                     uint8_t *out, uint8_t *tag)
{
    size_t n = len + (inner_type != NULL);
    int outl = 0, finl = 0;

    if (!EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, 1) ||
        !EVP_CipherUpdate(ctx, NULL, &outl, aad, (int)aadlen))
        return 0;
    if (len > 0 && !EVP_CipherUpdate(ctx, out, &outl, pt, (int)len))
        return 0;
    if (inner_type != NULL && !EVP_CipherUpdate(ctx, out + len, &outl, inner_type, 1))
        return 0;
    if (EVP_CipherFinal_ex(ctx, out + n, &finl) <= 0 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, PROXY_TLSREC_TAG, tag) <= 0)
        return 0;
    return 1;
}

static size_t record_len(const struct proxy_tlsrec_suite *s, size_t ptlen)
{
    return PROXY_TLSREC_HDR + s->explicit_len + ptlen + (s->version == TLS13) + PROXY_TLSREC_TAG;
}

/*
 * A direction is keyed at its first record, not at start: a connection
 * adopted in a handoff (or an idle one) holds no cipher context until it
 * has something to protect, and a handoff of thousands does not pay for
 * contexts most of them will not use for a while.
 */
static int dir_ready(const struct proxy_tlsrec_suite *s, struct proxy_tlsrec_dir *d, int enc,
                     char *why, size_t whylen)
{
    return d->ctx != NULL ? 0 : proxy_tlsrec_dir_key(s, d, enc, why, whylen);
}

ssize_t proxy_tlsrec_seal(struct proxy_tlsrec *r, uint8_t type, const uint8_t *pt, size_t len,
                          uint8_t *out, size_t cap, char *why, size_t whylen)
{
    const struct proxy_tlsrec_suite *s = proxy_tlsrec_suite_find(r->version, r->suite);
    struct proxy_tlsrec_dir *d = &r->wr;
    uint8_t nonce[PROXY_TLSREC_IV_LEN], aad[13];
    size_t total, inner, body;
    uint8_t *p;
    int ok;

    if (s == NULL || dir_ready(s, d, 1, why, whylen) != 0)
        return -1;
    if (len > PROXY_TLSREC_PT_MAX) {
        proxy_tlsrec_why(why, whylen, "record plaintext of %zu bytes (max %d)", len,
                         PROXY_TLSREC_PT_MAX);
        return -1;
    }
    total = record_len(s, len);
    if (cap < total) {
        proxy_tlsrec_why(why, whylen, "output space %zu bytes, a record needs %zu", cap, total);
        return -1;
    }
    if (d->seq == UINT64_MAX) {
        proxy_tlsrec_why(why, whylen, "write sequence number exhausted");
        return -1;
    }
    body = total - PROXY_TLSREC_HDR;
    p = out + PROXY_TLSREC_HDR + s->explicit_len;
    /* Plaintext that already sits in the output (or overlaps it) is moved
     * into place and sealed there; any other is read where it is. */
    if (pt + len > out && pt < out + total) {
        memmove(p, pt, len);
        pt = p;
    }
    out[0] = s->version == TLS13 ? PROXY_TLSREC_CT_APPDATA : type;
    out[1] = 3;
    out[2] = 3;
    out[3] = (uint8_t)(body >> 8);
    out[4] = (uint8_t)body;
    if (s->version == TLS13) {
        /* TLSInnerPlaintext without padding: data, then the type. */
        inner = len + 1;
        make_nonce(s, d, NULL, nonce);
        ok = aead_seal(d->ctx, nonce, out, PROXY_TLSREC_HDR, pt, len, &type, p, p + inner);
    } else {
        if (s->explicit_len > 0)
            put_be64(out + PROXY_TLSREC_HDR, d->nonce);
        make_nonce(s, d, out + PROXY_TLSREC_HDR, nonce);
        make_aad12(d->seq, type, len, aad);
        ok = aead_seal(d->ctx, nonce, aad, sizeof(aad), pt, len, NULL, p, p + len);
    }
    OPENSSL_cleanse(nonce, sizeof(nonce));
    if (!ok) {
        proxy_tlsrec_why(why, whylen, "sealing a record failed");
        return -1;
    }
    d->seq++;
    if (s->explicit_len > 0)
        d->nonce++;     /* wraps only after 2^64 records: still unique */
    return (ssize_t)total;
}

static int open_fail(uint8_t *alert, uint8_t desc)
{
    *alert = desc;
    return -1;
}

/* The checks of a record's header before anything is decrypted: 0, or -1
 * with *alert and why. */
static int check_header(const struct proxy_tlsrec_suite *s, const uint8_t *rec, size_t reclen,
                        uint8_t *alert, char *why, size_t whylen)
{
    size_t len, max = s->version == TLS13 ? PROXY_TLSREC_BODY_MAX : PROXY_TLSREC_PT_MAX + 2048;

    if (reclen < PROXY_TLSREC_HDR ||
        reclen != PROXY_TLSREC_HDR + ((size_t)rec[3] << 8 | rec[4])) {
        proxy_tlsrec_why(why, whylen, "record of %zu bytes does not match its header's length",
                         reclen);
        return open_fail(alert, PROXY_TLS_ALERT_DECODE_ERROR);
    }
    len = reclen - PROXY_TLSREC_HDR;
    if (s->version == TLS13 && rec[0] != PROXY_TLSREC_CT_APPDATA) {
        proxy_tlsrec_why(why, whylen, "TLS 1.3 record of outer content type %u after the "
                         "handshake (expected 23)", rec[0]);
        return open_fail(alert, PROXY_TLS_ALERT_UNEXPECTED_MESSAGE);
    }
    if (s->version == TLS12 && (rec[1] != 3 || rec[2] != 3)) {
        proxy_tlsrec_why(why, whylen, "TLS 1.2 record with version %u.%u", rec[1], rec[2]);
        return open_fail(alert, PROXY_TLS_ALERT_PROTOCOL_VERSION);
    }
    if (s->version == TLS12 && (rec[0] < PROXY_TLSREC_CT_ALERT || rec[0] > PROXY_TLSREC_CT_APPDATA)) {
        proxy_tlsrec_why(why, whylen, "record of content type %u after the handshake%s", rec[0],
                         rec[0] == PROXY_TLSREC_CT_CCS ? " (ChangeCipherSpec)" : "");
        return open_fail(alert, PROXY_TLS_ALERT_UNEXPECTED_MESSAGE);
    }
    if (len > max) {
        proxy_tlsrec_why(why, whylen, "record body of %zu bytes (max %zu)", len, max);
        return open_fail(alert, PROXY_TLS_ALERT_RECORD_OVERFLOW);
    }
    if (len < (size_t)s->explicit_len + (s->version == TLS13) + PROXY_TLSREC_TAG) {
        proxy_tlsrec_why(why, whylen, "record body of %zu bytes is too short to be protected", len);
        return open_fail(alert, PROXY_TLS_ALERT_BAD_RECORD_MAC);
    }
    return 0;
}

int proxy_tlsrec_open(struct proxy_tlsrec *r, uint8_t *rec, size_t reclen, uint8_t *type,
                      uint8_t **pt, size_t *ptlen, uint8_t *alert, char *why, size_t whylen)
{
    const struct proxy_tlsrec_suite *s = proxy_tlsrec_suite_find(r->version, r->suite);
    struct proxy_tlsrec_dir *d = &r->rd;
    uint8_t nonce[PROXY_TLSREC_IV_LEN], aad[13];
    uint8_t *p;
    size_t n;
    int ok;

    if (s == NULL || dir_ready(s, d, 0, why, whylen) != 0)
        return open_fail(alert, PROXY_TLS_ALERT_INTERNAL_ERROR);
    if (check_header(s, rec, reclen, alert, why, whylen) != 0)
        return -1;
    if (d->seq == UINT64_MAX) {
        proxy_tlsrec_why(why, whylen, "read sequence number exhausted");
        return open_fail(alert, PROXY_TLS_ALERT_INTERNAL_ERROR);
    }
    p = rec + PROXY_TLSREC_HDR + s->explicit_len;
    n = reclen - PROXY_TLSREC_HDR - s->explicit_len - PROXY_TLSREC_TAG;
    if (s->version == TLS13) {
        make_nonce(s, d, NULL, nonce);
        ok = aead(d->ctx, 0, nonce, rec, PROXY_TLSREC_HDR, p, n, p + n);
    } else {
        make_nonce(s, d, rec + PROXY_TLSREC_HDR, nonce);
        make_aad12(d->seq, rec[0], n, aad);
        ok = aead(d->ctx, 0, nonce, aad, sizeof(aad), p, n, p + n);
    }
    OPENSSL_cleanse(nonce, sizeof(nonce));
    if (!ok) {
        proxy_tlsrec_why(why, whylen, "record %llu failed authentication (bad_record_mac)",
                         (unsigned long long)d->seq);
        return open_fail(alert, PROXY_TLS_ALERT_BAD_RECORD_MAC);
    }
    d->seq++;
    *type = rec[0];
    if (s->version == TLS13) {
        while (n > 0 && p[n - 1] == 0)     /* padding */
            n--;
        if (n == 0) {
            proxy_tlsrec_why(why, whylen, "TLS 1.3 record without a content type");
            return open_fail(alert, PROXY_TLS_ALERT_UNEXPECTED_MESSAGE);
        }
        *type = p[--n];
    }
    if (n > PROXY_TLSREC_PT_MAX) {
        proxy_tlsrec_why(why, whylen, "record plaintext of %zu bytes (max %d)", n,
                         PROXY_TLSREC_PT_MAX);
        return open_fail(alert, PROXY_TLS_ALERT_RECORD_OVERFLOW);
    }
    *pt = p;
    *ptlen = n;
    return 0;
}

static int fail_start(struct proxy_tlsrec *r)
{
    proxy_tlsrec_free(r);
    return -1;
}

/* The plain fields, before anything is keyed: 0 or -1 (why). */
static int check_fields(const struct proxy_tlsrec *r, char *why, size_t whylen)
{
    unsigned only_other = r->version == TLS13 ? PROXY_TLSREC_F_NORENEG_OWED
                                              : PROXY_TLSREC_F_KU_OWED;

    if (r->version != TLS13 && r->version != TLS12) {
        proxy_tlsrec_why(why, whylen, "version 0x%04x (expected 0x0303 or 0x0304)", r->version);
        return -1;
    }
    if (proxy_tlsrec_suite_find(r->version, r->suite) == NULL) {
        proxy_tlsrec_why(why, whylen, "suite 0x%04x is not carried for version 0x%04x",
                         r->suite, r->version);
        return -1;
    }
    if (r->role != PROXY_TLSREC_SERVER && r->role != PROXY_TLSREC_CLIENT) {
        proxy_tlsrec_why(why, whylen, "role %u (expected 0 server or 1 client)", r->role);
        return -1;
    }
    if ((r->flags & ~PROXY_TLSREC_F_KNOWN) != 0 || (r->flags & only_other) != 0) {
        proxy_tlsrec_why(why, whylen, "flags 0x%02x: unknown or not of version 0x%04x",
                         r->flags, r->version);
        return -1;
    }
    if (r->max_frag < 512 || r->max_frag > PROXY_TLSREC_PT_MAX) {
        proxy_tlsrec_why(why, whylen, "max_frag %u (expected 512..%d)", r->max_frag,
                         PROXY_TLSREC_PT_MAX);
        return -1;
    }
    if (r->rd.seq == UINT64_MAX || r->wr.seq == UINT64_MAX) {
        proxy_tlsrec_why(why, whylen, "sequence number exhausted");
        return -1;
    }
    if (r->hslen > PROXY_TLSREC_HS_MAX || (r->hslen > 0 && r->hs == NULL)) {
        proxy_tlsrec_why(why, whylen, "pending handshake bytes: %u (max %d)", r->hslen,
                         PROXY_TLSREC_HS_MAX);
        return -1;
    }
    return 0;
}

int proxy_tlsrec_start(struct proxy_tlsrec *r, char *why, size_t whylen)
{
    const struct proxy_tlsrec_suite *s;

    /* Contexts never cross processes: whatever is there is not ours to free. */
    r->rd.ctx = r->wr.ctx = NULL;
    if (check_fields(r, why, whylen) != 0)
        return fail_start(r);
    s = proxy_tlsrec_suite_find(r->version, r->suite);
    /* Keys and contexts come with each direction's first record (dir_ready). */
    if (!proxy_tlsrec_cipher_available(s)) {
        proxy_tlsrec_why(why, whylen, "the cipher of suite 0x%04x is not available", r->suite);
        return fail_start(r);
    }
    return 0;
}

void proxy_tlsrec_free(struct proxy_tlsrec *r)
{
    EVP_CIPHER_CTX_free(r->rd.ctx);
    EVP_CIPHER_CTX_free(r->wr.ctx);
    if (r->hs != NULL) {
        OPENSSL_cleanse(r->hs, r->hslen);
        free(r->hs);
    }
    OPENSSL_cleanse(r, sizeof(*r));
}

static uint64_t ku_limit(const struct proxy_tlsrec *r)
{
    return r->ku_after != 0 ? r->ku_after : PROXY_TLSREC_KU_RECORDS;
}

/* Sends KeyUpdate(update_not_requested) under the current write key, then
 * moves the write side to the next secret. */
static ssize_t send_key_update(struct proxy_tlsrec *r, uint8_t *out, size_t cap,
                               char *why, size_t whylen)
{
    static const uint8_t msg[KU_MSG_LEN] = { 24, 0, 0, 1, 0 };
    const struct proxy_tlsrec_suite *s = proxy_tlsrec_suite_find(r->version, r->suite);
    ssize_t n = proxy_tlsrec_seal(r, PROXY_TLSREC_CT_HS, msg, sizeof(msg), out, cap, why, whylen);

    if (n < 0)
        return -1;
    if (proxy_tlsrec_dir_update(s, &r->wr, 1, why, whylen) != 0)
        return -1;
    r->flags &= (uint8_t)~PROXY_TLSREC_F_KU_OWED;
    return n;
}

/* Bytes of the owed control records. */
static size_t control_len(const struct proxy_tlsrec *r, const struct proxy_tlsrec_suite *s)
{
    size_t n = 0;

    if (r->flags & PROXY_TLSREC_F_CLOSE_SENT)
        return 0;
    if (r->flags & PROXY_TLSREC_F_NORENEG_OWED)
        n += record_len(s, 2);
    if (r->flags & PROXY_TLSREC_F_KU_OWED)
        n += record_len(s, KU_MSG_LEN);
    return n;
}

size_t proxy_tlsrec_write_bound(const struct proxy_tlsrec *r, size_t len)
{
    const struct proxy_tlsrec_suite *s = proxy_tlsrec_suite_find(r->version, r->suite);
    size_t n, chunk, frag = r->max_frag;
    uint64_t seq = r->wr.seq;

    if (s == NULL || frag == 0)
        return 0;
    n = control_len(r, s);
    if (r->flags & PROXY_TLSREC_F_NORENEG_OWED)
        seq++;
    if (r->flags & PROXY_TLSREC_F_KU_OWED)
        seq = 0;
    /* The same walk as proxy_tlsrec_write, so the bound is exact. */
    for (size_t off = 0; off < len; off += chunk) {
        chunk = len - off < frag ? len - off : frag;
        if (s->version == TLS13 && seq >= ku_limit(r)) {
            n += record_len(s, KU_MSG_LEN);
            seq = 0;
        }
        n += record_len(s, chunk);
        seq++;
    }
    return n;
}

ssize_t proxy_tlsrec_flush_control(struct proxy_tlsrec *r, uint8_t *out, size_t cap,
                                   char *why, size_t whylen)
{
    static const uint8_t noreneg[2] = { 1, PROXY_TLS_ALERT_NO_RENEGOTIATION };
    const struct proxy_tlsrec_suite *s = proxy_tlsrec_suite_find(r->version, r->suite);
    size_t off = 0;
    ssize_t n;

    if (s == NULL) {
        proxy_tlsrec_why(why, whylen, "record layer not started");
        return -1;
    }
    if (cap < control_len(r, s)) {
        proxy_tlsrec_why(why, whylen, "output space %zu bytes, owed records need %zu", cap,
                         control_len(r, s));
        return -1;
    }
    if (r->flags & PROXY_TLSREC_F_CLOSE_SENT)
        return 0;
    if (r->flags & PROXY_TLSREC_F_NORENEG_OWED) {
        n = proxy_tlsrec_seal(r, PROXY_TLSREC_CT_ALERT, noreneg, sizeof(noreneg), out, cap,
                              why, whylen);
        if (n < 0)
            return -1;
        r->flags &= (uint8_t)~PROXY_TLSREC_F_NORENEG_OWED;
        off += (size_t)n;
    }
    if (r->flags & PROXY_TLSREC_F_KU_OWED) {
        n = send_key_update(r, out + off, cap - off, why, whylen);
        if (n < 0)
            return -1;
        off += (size_t)n;
    }
    return (ssize_t)off;
}

ssize_t proxy_tlsrec_write(struct proxy_tlsrec *r, const uint8_t *pt, size_t len,
                           uint8_t *out, size_t cap, char *why, size_t whylen)
{
    size_t need = proxy_tlsrec_write_bound(r, len), off, chunk;
    ssize_t n;

    if (r->flags & PROXY_TLSREC_F_CLOSE_SENT) {
        proxy_tlsrec_why(why, whylen, "write after close_notify or a fatal alert was sent");
        return -1;
    }
    /* All or nothing: a record sealed and not returned would lose its
     * sequence number. */
    if (cap < need) {
        proxy_tlsrec_why(why, whylen, "output space %zu bytes, %zu plaintext bytes need %zu",
                         cap, len, need);
        return -1;
    }
    n = proxy_tlsrec_flush_control(r, out, cap, why, whylen);
    if (n < 0)
        return -1;
    off = (size_t)n;
    for (size_t done = 0; done < len; done += chunk) {
        chunk = len - done < r->max_frag ? len - done : r->max_frag;
        if (r->version == TLS13 && r->wr.seq >= ku_limit(r)) {
            n = send_key_update(r, out + off, cap - off, why, whylen);
            if (n < 0)
                return -1;
            off += (size_t)n;
        }
        n = proxy_tlsrec_seal(r, PROXY_TLSREC_CT_APPDATA, pt + done, chunk, out + off,
                              cap - off, why, whylen);
        if (n < 0)
            return -1;
        off += (size_t)n;
    }
    return (ssize_t)off;
}

ssize_t proxy_tlsrec_alert(struct proxy_tlsrec *r, uint8_t level, uint8_t desc,
                           uint8_t *out, size_t cap, char *why, size_t whylen)
{
    uint8_t msg[2] = { level, desc };
    ssize_t n;

    if (r->flags & PROXY_TLSREC_F_CLOSE_SENT)
        return 0;
    n = proxy_tlsrec_seal(r, PROXY_TLSREC_CT_ALERT, msg, sizeof(msg), out, cap, why, whylen);
    if (n < 0)
        return -1;
    if (desc == PROXY_TLS_ALERT_CLOSE_NOTIFY || level == 2)
        r->flags |= PROXY_TLSREC_F_CLOSE_SENT;
    return n;
}
