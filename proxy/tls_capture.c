/*
 * tls_capture.c - following OpenSSL's handshake closely enough to take
 * the connection over once it is done (tls_capture.h).
 */
#include "tls_capture.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "byteorder.h"
#include "tls_keylog.h"

#define HS_KEY_UPDATE   24
#define RT_CCS          20

static int cap_index = -1;
static pthread_once_t cap_once = PTHREAD_ONCE_INIT;

static void cap_index_init(void)
{
    cap_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static struct proxy_tls_capture *cap_of(const SSL *ssl)
{
    return cap_index >= 0 ? SSL_get_ex_data(ssl, cap_index) : NULL;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* "LABEL <client random hex> <secret hex>": the secret, or -1. */
static int keylog_secret(const char *line, const char *label, uint8_t *out, size_t cap)
{
    size_t llen = strlen(label), n = 0;
    const char *p;

    if (strncmp(line, label, llen) != 0 || line[llen] != ' ')
        return -1;
    p = strchr(line + llen + 1, ' ');
    if (p == NULL)
        return -1;
    for (p++; p[0] != '\0' && p[1] != '\0' && n < cap; p += 2) {
        int hi = hexval(p[0]), lo = hexval(p[1]);

        if (hi < 0 || lo < 0)
            return -1;
        out[n++] = (uint8_t)(hi << 4 | lo);
    }
    return p[0] == '\0' ? (int)n : -1;
}

/* A key is logged when OpenSSL installs it: its direction counts records
 * from zero from here on. */
static void keylog_cb(const SSL *ssl, const char *line)
{
    struct proxy_tls_capture *cap = cap_of(ssl);
    int server = SSL_is_server(ssl);
    struct proxy_tls_capture_dir *d = NULL;
    uint8_t secret[PROXY_TLSREC_SECRET_MAX];
    int n;

    /* tls_keylog_file (debugging): every secret OpenSSL reports. */
    proxy_tls_keylog_line(line);
    if (cap == NULL)
        return;
    if ((n = keylog_secret(line, "CLIENT_TRAFFIC_SECRET_0", secret, sizeof(secret))) > 0)
        d = server ? &cap->rd : &cap->wr;
    else if ((n = keylog_secret(line, "SERVER_TRAFFIC_SECRET_0", secret, sizeof(secret))) > 0)
        d = server ? &cap->wr : &cap->rd;
    if (d != NULL) {
        memcpy(d->secret, secret, (size_t)n);
        d->secret_len = (uint8_t)n;
        d->active = 1;
        d->seq = 0;
    }
    OPENSSL_cleanse(secret, sizeof(secret));
}

/* A KeyUpdate during the handshake cannot happen; one right at its end
 * (TLS 1.3 post-handshake, processed before the switch) is followed. */
static void key_update(struct proxy_tls_capture *cap, struct proxy_tls_capture_dir *d,
                       int write_p, const uint8_t *b, size_t len, const SSL *ssl)
{
    const char *md = SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(ssl)) == 0x1302 ? "SHA384"
                                                                                      : "SHA256";
    uint8_t next[PROXY_TLSREC_SECRET_MAX];

    if (!d->active || len != 5 || d->secret_len == 0 ||
        proxy_tlsrec_hkdf_expand_label(md, d->secret, d->secret_len, "traffic upd", NULL, 0,
                                       next, d->secret_len) != 0) {
        cap->broken = 1;
        return;
    }
    memcpy(d->secret, next, d->secret_len);
    OPENSSL_cleanse(next, sizeof(next));
    /* The KeyUpdate's own record was counted under the old key. */
    d->seq = 0;
    if (write_p)
        cap->ku_owed = 0;
    else if (b[4] == 1)
        cap->ku_owed = 1;
}

static void msg_cb(int write_p, int version, int type, const void *buf, size_t len, SSL *ssl,
                   void *arg)
{
    struct proxy_tls_capture *cap = cap_of(ssl);
    struct proxy_tls_capture_dir *d;
    const uint8_t *b = buf;

    (void)version;
    (void)arg;
    if (cap == NULL)
        return;
    d = write_p ? &cap->wr : &cap->rd;
    if (type == SSL3_RT_HEADER && len == 5) {
        /* TLS 1.2: the epoch starts at ChangeCipherSpec (a received one is
         * reported by its header only). TLS 1.3's compatibility CCS comes
         * before the application keys and is not counted. */
        if (b[0] == RT_CCS && SSL_version(ssl) == TLS1_2_VERSION) {
            d->active = 1;
            d->seq = 0;
        } else if (d->active) {
            d->seq++;
        }
    } else if (type == SSL3_RT_HANDSHAKE && len >= 1 && b[0] == HS_KEY_UPDATE) {
        key_update(cap, d, write_p, b, len, ssl);
    }
}

void proxy_tls_capture_ctx(SSL_CTX *ctx)
{
    SSL_CTX_set_keylog_callback(ctx, keylog_cb);
}

int proxy_tls_capture_attach(SSL *ssl, struct proxy_tls_capture *cap)
{
    memset(cap, 0, sizeof(*cap));
    if (pthread_once(&cap_once, cap_index_init) != 0 || cap_index < 0 ||
        SSL_set_ex_data(ssl, cap_index, cap) != 1)
        return -1;
    SSL_set_msg_callback(ssl, msg_cb);
    return 0;
}

void proxy_tls_capture_detach(SSL *ssl)
{
    SSL_set_msg_callback(ssl, NULL);
    if (cap_index >= 0)
        (void)SSL_set_ex_data(ssl, cap_index, NULL);
}

void proxy_tls_capture_written(struct proxy_tls_capture *cap, const SSL *ssl,
                               const uint8_t *p, size_t n)
{
    if (!cap->wr.active || SSL_version(ssl) != TLS1_2_VERSION)
        return;
    while (n >= PROXY_TLSREC_HDR) {
        size_t rec = PROXY_TLSREC_HDR + proxy_be16(p + 3);

        if (rec > n) {
            /* OpenSSL writes whole records; anything else is not followed. */
            cap->broken = 1;
            return;
        }
        if (p[0] != RT_CCS && rec >= PROXY_TLSREC_HDR + 8) {
            cap->last_nonce = proxy_be64(p + PROXY_TLSREC_HDR);
            cap->have_nonce = 1;
        }
        p += rec;
        n -= rec;
    }
}

static uint16_t max_fragment(SSL *ssl)
{
    SSL_SESSION *sess = SSL_get_session(ssl);
    uint8_t mfl = sess != NULL ? SSL_SESSION_get_max_fragment_length(sess) : 0;

    return mfl >= TLSEXT_max_fragment_length_512 && mfl <= TLSEXT_max_fragment_length_4096
               ? (uint16_t)(512u << (mfl - 1))
               : PROXY_TLSREC_PT_MAX;
}

static int finish13(const struct proxy_tls_capture *cap, struct proxy_tlsrec *r, char *why,
                    size_t whylen)
{
    size_t key_len, secret_len, iv_len;

    if (proxy_tlsrec_suite_lengths(r->version, r->suite, &key_len, &secret_len, &iv_len) != 0 ||
        cap->rd.secret_len != secret_len || cap->wr.secret_len != secret_len) {
        snprintf(why, whylen, "traffic secrets not seen");
        return -1;
    }
    memcpy(r->rd.secret, cap->rd.secret, secret_len);
    memcpy(r->wr.secret, cap->wr.secret, secret_len);
    if (cap->ku_owed)
        r->flags |= PROXY_TLSREC_F_KU_OWED;
    return 0;
}

static int finish12(SSL *ssl, const struct proxy_tls_capture *cap, struct proxy_tlsrec *r,
                    char *why, size_t whylen)
{
    uint8_t master[64], cr[32], sr[32], ckey[PROXY_TLSREC_KEY_MAX], skey[PROXY_TLSREC_KEY_MAX];
    uint8_t civ[PROXY_TLSREC_IV_LEN], siv[PROXY_TLSREC_IV_LEN];
    size_t key_len, secret_len, iv_len, mlen;
    int rc = -1;

    if (proxy_tlsrec_suite_lengths(r->version, r->suite, &key_len, &secret_len, &iv_len) != 0)
        return -1;
    mlen = SSL_SESSION_get_master_key(SSL_get_session(ssl), master, sizeof(master));
    if (mlen == 0 || SSL_get_client_random(ssl, cr, sizeof(cr)) != sizeof(cr) ||
        SSL_get_server_random(ssl, sr, sizeof(sr)) != sizeof(sr) ||
        proxy_tlsrec_tls12_key_block(r->suite, master, mlen, cr, sr, ckey, civ, skey, siv) != 0) {
        snprintf(why, whylen, "TLS 1.2 key block not derived");
        goto out;
    }
    /* GCM's explicit nonce goes on from OpenSSL's last one; ChaCha20 has none. */
    if (iv_len == 4 && !cap->have_nonce) {
        snprintf(why, whylen, "explicit nonce not seen");
        goto out;
    }
    memcpy(r->rd.key, r->role == PROXY_TLSREC_SERVER ? ckey : skey, key_len);
    memcpy(r->rd.iv, r->role == PROXY_TLSREC_SERVER ? civ : siv, iv_len);
    memcpy(r->wr.key, r->role == PROXY_TLSREC_SERVER ? skey : ckey, key_len);
    memcpy(r->wr.iv, r->role == PROXY_TLSREC_SERVER ? siv : civ, iv_len);
    r->wr.nonce = cap->last_nonce + 1;
    rc = 0;
out:
    OPENSSL_cleanse(master, sizeof(master));
    OPENSSL_cleanse(ckey, sizeof(ckey));
    OPENSSL_cleanse(skey, sizeof(skey));
    OPENSSL_cleanse(civ, sizeof(civ));
    OPENSSL_cleanse(siv, sizeof(siv));
    return rc;
}

int proxy_tls_capture_finish(SSL *ssl, struct proxy_tls_capture *cap, struct proxy_tlsrec *r,
                             char *why, size_t whylen)
{
    const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
    int rc;

    memset(r, 0, sizeof(*r));
    r->version = (uint16_t)SSL_version(ssl);
    r->suite = cipher != NULL ? SSL_CIPHER_get_protocol_id(cipher) : 0;
    r->role = SSL_is_server(ssl) ? PROXY_TLSREC_SERVER : PROXY_TLSREC_CLIENT;
    r->max_frag = max_fragment(ssl);
    if (!proxy_tlsrec_suite_ok(r->version, r->suite)) {
        snprintf(why, whylen, "%s %s is not carried by baton's record layer",
                 SSL_get_version(ssl), cipher != NULL ? SSL_CIPHER_get_name(cipher) : "?");
        return -1;
    }
    if (cap->broken || !cap->rd.active || !cap->wr.active) {
        snprintf(why, whylen, "the handshake's records were not followed");
        return -1;
    }
    if (SSL_has_pending(ssl)) {
        snprintf(why, whylen, "OpenSSL holds received bytes");
        return -1;
    }
    r->rd.seq = cap->rd.seq;
    r->wr.seq = cap->wr.seq;
    rc = r->version == TLS1_3_VERSION ? finish13(cap, r, why, whylen)
                                      : finish12(ssl, cap, r, why, whylen);
    if (rc == 0)
        rc = proxy_tlsrec_start(r, why, whylen);
    if (rc != 0)
        proxy_tlsrec_free(r);
    return rc;
}
