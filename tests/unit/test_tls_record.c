/*
 * test_tls_record.c - baton's own TLS record layer (proxy/tls_record.h):
 * RFC 8448 known answers; byte-for-byte equality with OpenSSL's TLS 1.3
 * records and cross-decryption of TLS 1.2 records with an in-process
 * OpenSSL client and server over memory BIOs; KeyUpdate both ways;
 * renegotiation refused; the post-handshake parser; tampered, short,
 * oversized and misnumbered records; refused states.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "testutil.h"
#include "tls_record_int.h"

static char why[256];

static size_t unhex(const char *s, uint8_t *out)
{
    size_t n = 0;
    int hi = -1, v;

    for (; *s; s++) {
        if (!isxdigit((unsigned char)*s))
            continue;
        v = isdigit((unsigned char)*s) ? *s - '0' : tolower((unsigned char)*s) - 'a' + 10;
        if (hi < 0) {
            hi = v;
        } else {
            out[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    return n;
}

static int same_hex(const uint8_t *got, size_t n, const char *hex)
{
    uint8_t want[1024];
    size_t wn = unhex(hex, want);

    return n == wn && memcmp(got, want, n) == 0;
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    test_seed(seed);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)test_rand();
}

/* A started TLS 1.3 state from two secrets. */
static int start13(struct proxy_tlsrec *r, uint16_t suite, int role, const uint8_t *rd_secret,
                   uint64_t rd_seq, const uint8_t *wr_secret, uint64_t wr_seq)
{
    size_t sl = 0;

    memset(r, 0, sizeof(*r));
    r->version = 0x0304;
    r->suite = suite;
    r->role = (uint8_t)role;
    r->max_frag = PROXY_TLSREC_PT_MAX;
    if (proxy_tlsrec_suite_lengths(0x0304, suite, NULL, &sl, NULL) != 0)
        sl = 32;
    memcpy(r->rd.secret, rd_secret, sl);
    memcpy(r->wr.secret, wr_secret, sl);
    r->rd.seq = rd_seq;
    r->wr.seq = wr_seq;
    return proxy_tlsrec_start(r, why, sizeof(why));
}

/* A started TLS 1.2 state from keys and IVs. */
static int start12(struct proxy_tlsrec *r, uint16_t suite, int role, const uint8_t *rd_key,
                   const uint8_t *rd_iv, uint64_t rd_seq, const uint8_t *wr_key,
                   const uint8_t *wr_iv, uint64_t wr_seq, uint64_t wr_nonce)
{
    size_t kl = 0, il = 0;

    memset(r, 0, sizeof(*r));
    r->version = 0x0303;
    r->suite = suite;
    r->role = (uint8_t)role;
    r->max_frag = PROXY_TLSREC_PT_MAX;
    if (proxy_tlsrec_suite_lengths(0x0303, suite, &kl, NULL, &il) != 0)
        return -1;
    memcpy(r->rd.key, rd_key, kl);
    memcpy(r->rd.iv, rd_iv, il);
    memcpy(r->wr.key, wr_key, kl);
    memcpy(r->wr.iv, wr_iv, il);
    r->rd.seq = rd_seq;
    r->wr.seq = wr_seq;
    r->wr.nonce = wr_nonce;
    return proxy_tlsrec_start(r, why, sizeof(why));
}

static enum proxy_tlsrec_rc rd(struct proxy_tlsrec *r, uint8_t *rec, size_t n, uint8_t **pt,
                               size_t *ptlen, uint8_t *alert)
{
    return proxy_tlsrec_read(r, rec, n, pt, ptlen, alert, why, sizeof(why));
}

/* Reads every record of buf[0..n) and appends the application data to out;
 * the rc of the last record, or FATAL. */
static enum proxy_tlsrec_rc rd_all(struct proxy_tlsrec *r, uint8_t *buf, size_t n, uint8_t *out,
                                   size_t *outlen, int *records)
{
    enum proxy_tlsrec_rc rc = PROXY_TLSREC_CONTROL;
    size_t off = 0, len, ptlen;
    uint8_t *pt, alert;

    *outlen = 0;
    *records = 0;
    while (off + PROXY_TLSREC_HDR <= n) {
        len = PROXY_TLSREC_HDR + ((size_t)buf[off + 3] << 8 | buf[off + 4]);
        if (off + len > n)
            return PROXY_TLSREC_FATAL;
        rc = rd(r, buf + off, len, &pt, &ptlen, &alert);
        if (rc == PROXY_TLSREC_FATAL)
            return rc;
        if (rc == PROXY_TLSREC_DATA) {
            memcpy(out + *outlen, pt, ptlen);
            *outlen += ptlen;
        }
        (*records)++;
        off += len;
    }
    return off == n ? rc : PROXY_TLSREC_FATAL;
}

/* ---- RFC 8448 section 3 ---- */

static const char c_ap_hex[] = "9e 40 64 6c e7 9a 7f 9d c0 5a f8 88 9b ce 65 52 87 5a fa 0b "
                               "06 df 00 87 f7 92 eb b7 c1 75 04 a5";
static const char s_ap_hex[] = "a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9 50 32 82 04 b4 f4 "
                               "4b fb 6b 3a 4b 4f 1f 3f cb 63 16 43";

static void test_rfc8448(void)
{
    uint8_t c_ap[32], s_ap[32], pay[50], out[512], rec[512], *pt, alert;
    struct proxy_tlsrec cli, srv;
    size_t ptlen, n;
    ssize_t w;

    unhex(c_ap_hex, c_ap);
    unhex(s_ap_hex, s_ap);
    for (int i = 0; i < 50; i++)
        pay[i] = (uint8_t)i;
    CHECK(start13(&cli, 0x1301, PROXY_TLSREC_CLIENT, s_ap, 0, c_ap, 0) == 0);
    /* The server's application record is its second (a ticket came first). */
    CHECK(start13(&srv, 0x1301, PROXY_TLSREC_SERVER, c_ap, 0, s_ap, 1) == 0);
    /* A direction is keyed at its first record: none yet. */
    CHECK(cli.wr.ctx == NULL && srv.rd.ctx == NULL);

    w = proxy_tlsrec_write(&cli, pay, sizeof(pay), out, sizeof(out), why, sizeof(why));
    CHECK(w > 0 && same_hex(out, (size_t)w,
        "17 03 03 00 43 a2 3f 70 54 b6 2c 94 d0 af fa fe 82 28 ba 55 cb ef ac ea 42 f9 14 aa "
        "66 bc ab 3f 2b 98 19 a8 a5 b4 6b 39 5b d5 4a 9a 20 44 1e 2b 62 97 4e 1f 5a 62 92 a2 "
        "97 70 14 bd 1e 3d ea e6 3a ee bb 21 69 49 15 e4"));
    CHECK(same_hex(cli.wr.key, 16, "17 42 2d da 59 6e d5 d9 ac d8 90 e3 c6 3f 50 51"));
    CHECK(same_hex(cli.wr.iv, 12, "5b 78 92 3d ee 08 57 90 33 e5 23 d9"));
    /* The server opens the client's record. */
    CHECK(rd(&srv, out, (size_t)w, &pt, &ptlen, &alert) == PROXY_TLSREC_DATA &&
          ptlen == 50 && memcmp(pt, pay, 50) == 0);
    /* The server's write key, from its first record. */
    CHECK(proxy_tlsrec_write(&srv, pay, 10, rec, sizeof(rec), why, sizeof(why)) > 0);
    CHECK(same_hex(srv.wr.key, 16, "9f 02 28 3b 6c 9c 07 ef c2 6b b9 f2 ac 92 e3 56"));
    CHECK(same_hex(srv.wr.iv, 12, "cf 78 2b 88 dd 83 54 9a ad f1 e9 84"));
    w = proxy_tlsrec_alert(&cli, 1, PROXY_TLS_ALERT_CLOSE_NOTIFY, out, sizeof(out), why,
                           sizeof(why));
    CHECK(w > 0 && same_hex(out, (size_t)w,
        "17 03 03 00 13 c9 87 27 60 65 56 66 b7 4d 7f f1 15 3e fd 6d b6 d0 b0 e3"));
    CHECK(cli.flags & PROXY_TLSREC_F_CLOSE_SENT);
    CHECK(rd(&srv, out, (size_t)w, &pt, &ptlen, &alert) == PROXY_TLSREC_CLOSED &&
          (srv.flags & PROXY_TLSREC_F_PEER_CLOSED));

    /* The server's record (seq 1) opens on the client's side at seq 1. */
    n = unhex("17 03 03 00 43 2e 93 7e 11 ef 4a c7 40 e5 38 ad 36 00 5f c4 a4 69 32 fc 32 25 "
              "d0 5f 82 aa 1b 36 e3 0e fa f9 7d 90 e6 df fc 60 2d cb 50 1a 59 a8 fc c4 9c 4b "
              "f2 e5 f0 a2 1c 00 47 c2 ab f3 32 54 0d d0 32 e1 67 c2 95 5d", rec);
    cli.rd.seq = 1;
    CHECK(rd(&cli, rec, n, &pt, &ptlen, &alert) == PROXY_TLSREC_DATA && ptlen == 50 &&
          memcmp(pt, pay, 50) == 0);
    CHECK(memcmp(cli.rd.key, srv.wr.key, 16) == 0 && memcmp(cli.rd.iv, srv.wr.iv, 12) == 0);
    /* Negative control: the same record one sequence number off. */
    n = unhex("17 03 03 00 43 2e 93 7e 11 ef 4a c7 40 e5 38 ad 36 00 5f c4 a4 69 32 fc 32 25 "
              "d0 5f 82 aa 1b 36 e3 0e fa f9 7d 90 e6 df fc 60 2d cb 50 1a 59 a8 fc c4 9c 4b "
              "f2 e5 f0 a2 1c 00 47 c2 ab f3 32 54 0d d0 32 e1 67 c2 95 5d", rec);
    cli.rd.seq = 2;
    CHECK(rd(&cli, rec, n, &pt, &ptlen, &alert) == PROXY_TLSREC_FATAL &&
          alert == PROXY_TLS_ALERT_BAD_RECORD_MAC);
    CHECK_WHY(why, "bad_record_mac");
    proxy_tlsrec_free(&cli);
    proxy_tlsrec_free(&srv);
    CHECK(cli.version == 0 && cli.rd.ctx == NULL && cli.wr.seq == 0);
}

/* ---- an OpenSSL client and server in this process ---- */

struct pair {
    SSL_CTX *sctx, *cctx;
    SSL *s, *c;
    BIO *s_in, *s_out, *c_in, *c_out;   /* s reads s_in, writes s_out; c likewise */
    uint8_t csec[48], ssec[48];         /* TLS 1.3 application traffic secrets */
    int tickets;                        /* NewSessionTickets the server wrote */
    uint8_t *s_log;                     /* everything the server wrote */
    size_t s_loglen;
};

static struct pair *cur;

static void keylog_cb(const SSL *ssl, const char *line)
{
    char label[64], crand[80], secret[200];

    if (ssl != cur->c || sscanf(line, "%63s %79s %199s", label, crand, secret) != 3)
        return;
    if (strcmp(label, "CLIENT_TRAFFIC_SECRET_0") == 0)
        unhex(secret, cur->csec);
    else if (strcmp(label, "SERVER_TRAFFIC_SECRET_0") == 0)
        unhex(secret, cur->ssec);
}

static void msg_cb(int write_p, int version, int ctype, const void *buf, size_t len, SSL *ssl,
                   void *arg)
{
    if (ssl == cur->s && write_p && ctype == SSL3_RT_HANDSHAKE && len > 0 &&
        ((const uint8_t *)buf)[0] == SSL3_MT_NEWSESSION_TICKET)
        cur->tickets++;
}

/* Moves what `from` wrote to `to`; keeps a copy in log if given. */
static void pump(BIO *from, BIO *to, uint8_t **log, size_t *loglen)
{
    uint8_t buf[4096];
    int n;

    while ((n = BIO_read(from, buf, sizeof(buf))) > 0) {
        if (BIO_write(to, buf, n) != n)
            abort();
        if (log != NULL) {
            *log = realloc(*log, *loglen + (size_t)n);
            if (*log == NULL)
                abort();
            memcpy(*log + *loglen, buf, (size_t)n);
            *loglen += (size_t)n;
        }
    }
}

static void pump_s(struct pair *p)
{
    pump(p->s_out, p->c_in, &p->s_log, &p->s_loglen);
}

static void pump_c(struct pair *p)
{
    pump(p->c_out, p->s_in, NULL, NULL);
}

/* Takes what an SSL wrote (its out BIO) into buf. */
static size_t take(BIO *out, uint8_t *buf, size_t cap)
{
    int n = BIO_read(out, buf, (int)cap);

    return n > 0 ? (size_t)n : 0;
}

static EVP_PKEY *pkey;
static X509 *cert;

static void make_cert(void)
{
    X509_NAME *name;

    pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    cert = X509_new();
    if (pkey == NULL || cert == NULL || !X509_set_version(cert, 2) ||
        !ASN1_INTEGER_set(X509_get_serialNumber(cert), 1) ||
        !X509_gmtime_adj(X509_getm_notBefore(cert), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(cert), 86400) || !X509_set_pubkey(cert, pkey))
        abort();
    name = X509_get_subject_name(cert);
    if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"test", -1,
                                    -1, 0) ||
        !X509_set_issuer_name(cert, name) || !X509_sign(cert, pkey, EVP_sha256()))
        abort();
}

/* A finished handshake of `version` with one suite (TLS 1.3 name or TLS 1.2
 * cipher list), the client having read the server's tickets. */
static struct pair *pair_new(int version, const char *suite)
{
    struct pair *p = calloc(1, sizeof(*p));
    int cdone = 0, sdone = 0, rc;
    uint8_t b;

    cur = p;
    p->sctx = SSL_CTX_new(TLS_server_method());
    p->cctx = SSL_CTX_new(TLS_client_method());
    if (p->sctx == NULL || p->cctx == NULL || !SSL_CTX_use_certificate(p->sctx, cert) ||
        !SSL_CTX_use_PrivateKey(p->sctx, pkey))
        abort();
    SSL_CTX_set_min_proto_version(p->sctx, version);
    SSL_CTX_set_max_proto_version(p->sctx, version);
    SSL_CTX_set_min_proto_version(p->cctx, version);
    SSL_CTX_set_max_proto_version(p->cctx, version);
    if (version == TLS1_3_VERSION ? !SSL_CTX_set_ciphersuites(p->sctx, suite) ||
                                        !SSL_CTX_set_ciphersuites(p->cctx, suite)
                                  : !SSL_CTX_set_cipher_list(p->sctx, suite) ||
                                        !SSL_CTX_set_cipher_list(p->cctx, suite))
        abort();
    SSL_CTX_set_keylog_callback(p->cctx, keylog_cb);
    p->s = SSL_new(p->sctx);
    p->c = SSL_new(p->cctx);
    p->s_in = BIO_new(BIO_s_mem());
    p->s_out = BIO_new(BIO_s_mem());
    p->c_in = BIO_new(BIO_s_mem());
    p->c_out = BIO_new(BIO_s_mem());
    if (p->s == NULL || p->c == NULL || !p->s_in || !p->s_out || !p->c_in || !p->c_out)
        abort();
    SSL_set_bio(p->s, p->s_in, p->s_out);
    SSL_set_bio(p->c, p->c_in, p->c_out);
    SSL_set_msg_callback(p->s, msg_cb);
    SSL_set_accept_state(p->s);
    SSL_set_connect_state(p->c);
    for (int i = 0; i < 20 && !(cdone && sdone); i++) {
        if (!cdone && (rc = SSL_do_handshake(p->c)) == 1)
            cdone = 1;
        else if (!cdone && SSL_get_error(p->c, rc) != SSL_ERROR_WANT_READ)
            abort();
        pump_c(p);
        if (!sdone && (rc = SSL_do_handshake(p->s)) == 1)
            sdone = 1;
        else if (!sdone && SSL_get_error(p->s, rc) != SSL_ERROR_WANT_READ)
            abort();
        pump_s(p);
    }
    if (!cdone || !sdone)
        abort();
    /* The client takes the tickets (TLS 1.3) so both sides are level. */
    if (SSL_read(p->c, &b, 1) > 0 || SSL_get_error(p->c, -1) != SSL_ERROR_WANT_READ)
        ERR_clear_error();
    return p;
}

static void pair_free(struct pair *p)
{
    SSL_free(p->s);
    SSL_free(p->c);
    SSL_CTX_free(p->sctx);
    SSL_CTX_free(p->cctx);
    free(p->s_log);
    free(p);
}

/* OpenSSL reads exactly want[0..n) from what `in` was given. */
static int ssl_reads(SSL *ssl, BIO *in, const uint8_t *bytes, size_t len, const uint8_t *want,
                     size_t n)
{
    static uint8_t got[65536];
    size_t have = 0;
    int r;

    if (len > 0 && BIO_write(in, bytes, (int)len) != (int)len)
        return 0;
    while (have < n && (r = SSL_read(ssl, got + have, (int)(n - have))) > 0)
        have += (size_t)r;
    return have == n && memcmp(got, want, n) == 0;
}

/* The last `count` records of buf[0..n) start at the returned offset. */
static size_t last_records(const uint8_t *buf, size_t n, int count)
{
    size_t offs[256], k = 0, off = 0;

    while (off + PROXY_TLSREC_HDR <= n && k < 256) {
        offs[k++] = off;
        off += PROXY_TLSREC_HDR + ((size_t)buf[off + 3] << 8 | buf[off + 4]);
    }
    return count <= (int)k ? offs[k - (size_t)count] : 0;
}

static uint8_t big_a[40000], big_b[40000], out[65536], got[65536];

static void test_tls13_vs_openssl(const char *name, uint16_t suite)
{
    struct pair *p = pair_new(TLS1_3_VERSION, name);
    struct proxy_tlsrec srv, cli, bad;
    size_t n, gotlen, off;
    ssize_t w;
    int recs;
    enum proxy_tlsrec_rc rc;
    uint8_t *pt, alert;
    size_t ptlen;

    printf("TLS 1.3 %s: %d tickets\n", name, p->tickets);
    CHECK(p->tickets >= 1);
    CHECK(start13(&srv, suite, PROXY_TLSREC_SERVER, p->csec, 0, p->ssec,
                  (uint64_t)p->tickets) == 0);
    CHECK(start13(&cli, suite, PROXY_TLSREC_CLIENT, p->ssec, 0, p->csec, 0) == 0);

    /* As a client we discard the tickets OpenSSL's server sent. */
    off = last_records(p->s_log, p->s_loglen, p->tickets);
    rc = rd_all(&cli, p->s_log + off, p->s_loglen - off, got, &gotlen, &recs);
    CHECK(rc == PROXY_TLSREC_CONTROL && recs == p->tickets && gotlen == 0);

    /* Client to server: OpenSSL's record and ours are the same bytes. */
    fill(big_a, 100, 1);
    CHECK(SSL_write(p->c, big_a, 100) == 100);
    n = take(p->c_out, got, sizeof(got));
    w = proxy_tlsrec_write(&cli, big_a, 100, out, sizeof(out), why, sizeof(why));
    CHECK(w == (ssize_t)n && memcmp(out, got, n) == 0);
    CHECK(ssl_reads(p->s, p->s_in, got, n, big_a, 100));
    rc = rd_all(&srv, got, n, out, &gotlen, &recs);
    CHECK(rc == PROXY_TLSREC_DATA && gotlen == 100 && memcmp(out, big_a, 100) == 0);

    /* Server to client, 40,000 bytes in three records. */
    fill(big_b, sizeof(big_b), 2);
    CHECK(SSL_write(p->s, big_b, sizeof(big_b)) == (int)sizeof(big_b));
    n = take(p->s_out, got, sizeof(got));
    w = proxy_tlsrec_write(&srv, big_b, sizeof(big_b), out, sizeof(out), why, sizeof(why));
    CHECK(w == (ssize_t)n && memcmp(out, got, n) == 0);
    CHECK(w == (ssize_t)proxy_tlsrec_write_bound(&srv, 0) + 3 * 22 + (ssize_t)sizeof(big_b));
    CHECK(ssl_reads(p->c, p->c_in, got, n, big_b, sizeof(big_b)));
    rc = rd_all(&cli, got, n, out, &gotlen, &recs);
    CHECK(rc == PROXY_TLSREC_DATA && recs == 3 && gotlen == sizeof(big_b) &&
          memcmp(out, big_b, gotlen) == 0);

    /* Negative control: one sequence number off, both ways. */
    CHECK(start13(&bad, suite, PROXY_TLSREC_SERVER, p->csec, srv.rd.seq + 1, p->ssec,
                  srv.wr.seq + 1) == 0);
    CHECK(SSL_write(p->c, big_a, 10) == 10);
    n = take(p->c_out, got, sizeof(got));
    memcpy(out, got, n);
    CHECK(rd(&bad, out, n, &pt, &ptlen, &alert) == PROXY_TLSREC_FATAL &&
          alert == PROXY_TLS_ALERT_BAD_RECORD_MAC);
    proxy_tlsrec_free(&bad);
    CHECK(rd(&srv, got, n, &pt, &ptlen, &alert) == PROXY_TLSREC_DATA && ptlen == 10);

    /* OpenSSL reads ours: the server's records to its client, the client's
     * records to its server. */
    w = proxy_tlsrec_write(&srv, big_a, 3000, out, sizeof(out), why, sizeof(why));
    CHECK(w > 0 && ssl_reads(p->c, p->c_in, out, (size_t)w, big_a, 3000));
    w = proxy_tlsrec_write(&cli, big_b, 20000, out, sizeof(out), why, sizeof(why));
    CHECK(w > 0 && ssl_reads(p->s, p->s_in, out, (size_t)w, big_b, 20000));
    w = proxy_tlsrec_write(&cli, big_b, 0, out, sizeof(out), why, sizeof(why));
    CHECK(w == 0);

    /* KeyUpdate from OpenSSL's server, update requested: we follow it, owe
     * ours, send it before our next record, and OpenSSL reads on. */
    CHECK(SSL_key_update(p->s, SSL_KEY_UPDATE_REQUESTED) == 1);
    CHECK(SSL_write(p->s, "after", 5) == 5);
    n = take(p->s_out, got, sizeof(got));
    rc = rd_all(&cli, got, n, out, &gotlen, &recs);
    CHECK(rc == PROXY_TLSREC_DATA && recs == 2 && gotlen == 5 && memcmp(out, "after", 5) == 0);
    CHECK((cli.flags & PROXY_TLSREC_F_KU_OWED) && cli.rd.seq == 1);
    w = proxy_tlsrec_write(&cli, big_a, 500, out, sizeof(out), why, sizeof(why));
    CHECK(w == 27 + 500 + 22 && !(cli.flags & PROXY_TLSREC_F_KU_OWED) && cli.wr.seq == 1);
    CHECK(ssl_reads(p->s, p->s_in, out, (size_t)w, big_a, 500));
    CHECK(SSL_write(p->s, "again", 5) == 5);
    n = take(p->s_out, got, sizeof(got));
    CHECK(rd_all(&cli, got, n, out, &gotlen, &recs) == PROXY_TLSREC_DATA && gotlen == 5);

    /* KeyUpdate from OpenSSL's client: answered by flush_control. */
    CHECK(SSL_key_update(p->c, SSL_KEY_UPDATE_REQUESTED) == 1);
    CHECK(SSL_write(p->c, "ku", 2) == 2);
    n = take(p->c_out, got, sizeof(got));
    CHECK(rd_all(&srv, got, n, out, &gotlen, &recs) == PROXY_TLSREC_DATA && recs == 2);
    CHECK(srv.flags & PROXY_TLSREC_F_KU_OWED);
    w = proxy_tlsrec_flush_control(&srv, out, sizeof(out), why, sizeof(why));
    CHECK(w == 27 && srv.wr.seq == 0 && !(srv.flags & PROXY_TLSREC_F_KU_OWED));
    CHECK(proxy_tlsrec_flush_control(&srv, out + w, sizeof(out) - (size_t)w, why,
                                     sizeof(why)) == 0);
    CHECK(BIO_write(p->c_in, out, (int)w) == (int)w);

    /* Ours, proactive: every 2 records, OpenSSL reads on. */
    srv.ku_after = 2;
    srv.max_frag = 1000;
    w = proxy_tlsrec_write(&srv, big_b, 5000, out, sizeof(out), why, sizeof(why));
    CHECK(w == (ssize_t)(2 * 27 + 5000 + 5 * 22) && srv.wr.seq == 1);
    CHECK(ssl_reads(p->c, p->c_in, out, (size_t)w, big_b, 5000));

    /* close_notify: OpenSSL sees a clean end; nothing is sealed after. */
    w = proxy_tlsrec_alert(&srv, 1, PROXY_TLS_ALERT_CLOSE_NOTIFY, out, sizeof(out), why,
                           sizeof(why));
    CHECK(w == 24 && BIO_write(p->c_in, out, (int)w) == (int)w);
    CHECK(SSL_read(p->c, got, 10) == 0 && SSL_get_error(p->c, 0) == SSL_ERROR_ZERO_RETURN);
    CHECK(proxy_tlsrec_write(&srv, big_a, 1, out, sizeof(out), why, sizeof(why)) == -1);
    CHECK(proxy_tlsrec_alert(&srv, 2, 80, out, sizeof(out), why, sizeof(why)) == 0);

    /* And one from OpenSSL's server. */
    CHECK(SSL_shutdown(p->s) == 0);
    n = take(p->s_out, got, sizeof(got));
    CHECK(rd(&cli, got, n, &pt, &ptlen, &alert) == PROXY_TLSREC_CLOSED &&
          (cli.flags & PROXY_TLSREC_F_PEER_CLOSED));
    proxy_tlsrec_free(&srv);
    proxy_tlsrec_free(&cli);
    pair_free(p);
}

/* TLS 1.2 keys as baton takes them from a finished handshake. */
static int start12_from(struct proxy_tlsrec *r, struct pair *p, uint16_t suite, int role,
                        uint64_t wr_nonce)
{
    uint8_t master[48], cr[32], sr[32], ck[32], civ[12], sk[32], siv[12];
    size_t ml = SSL_SESSION_get_master_key(SSL_get_session(p->s), master, sizeof(master));
    int rc;

    SSL_get_client_random(p->s, cr, sizeof(cr));
    SSL_get_server_random(p->s, sr, sizeof(sr));
    if (proxy_tlsrec_tls12_key_block(suite, master, ml, cr, sr, ck, civ, sk, siv) != 0)
        return -1;
    /* The Finished messages were the first records of each epoch. */
    if (role == PROXY_TLSREC_SERVER)
        rc = start12(r, suite, role, ck, civ, 1, sk, siv, 1, wr_nonce);
    else
        rc = start12(r, suite, role, sk, siv, 1, ck, civ, 1, wr_nonce);
    return rc;
}

static int ssl_refused_reneg(SSL *ssl)
{
    uint8_t b;
    unsigned long e;

    if (SSL_read(ssl, &b, 1) > 0)
        return 0;
    e = ERR_peek_last_error();
    ERR_clear_error();
    return ERR_GET_REASON(e) == SSL_R_NO_RENEGOTIATION;
}

/* OpenSSL's side `ssl` starts a renegotiation; ours reads it and owes a
 * refusal. */
static int renegotiation_refused(SSL *ssl, BIO *ssl_out, struct proxy_tlsrec *ours)
{
    uint8_t *pt, alert;
    size_t n, ptlen;

    if (SSL_renegotiate(ssl) != 1)
        return 0;
    SSL_do_handshake(ssl);      /* wants the peer's answer */
    ERR_clear_error();
    n = take(ssl_out, got, sizeof(got));
    return n > 0 && rd(ours, got, n, &pt, &ptlen, &alert) == PROXY_TLSREC_CONTROL &&
           (ours->flags & PROXY_TLSREC_F_NORENEG_OWED);
}

static void test_tls12_vs_openssl(const char *name, uint16_t suite)
{
    struct pair *p = pair_new(TLS1_2_VERSION, name);
    struct proxy_tlsrec srv, cli;
    size_t n, gotlen;
    ssize_t w;
    int recs;
    uint8_t *pt, alert;
    size_t ptlen;

    printf("TLS 1.2 %s\n", name);
    CHECK(SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(p->s)) == suite);
    CHECK(start12_from(&srv, p, suite, PROXY_TLSREC_SERVER, 0xfffffffffffffffeull) == 0);
    CHECK(start12_from(&cli, p, suite, PROXY_TLSREC_CLIENT, 77) == 0);

    fill(big_a, 100, 3);
    CHECK(SSL_write(p->c, big_a, 100) == 100);
    n = take(p->c_out, got, sizeof(got));
    CHECK(rd_all(&srv, got, n, out, &gotlen, &recs) == PROXY_TLSREC_DATA && gotlen == 100 &&
          memcmp(out, big_a, 100) == 0);
    fill(big_b, sizeof(big_b), 4);
    CHECK(SSL_write(p->s, big_b, sizeof(big_b)) == (int)sizeof(big_b));
    n = take(p->s_out, got, sizeof(got));
    CHECK(rd_all(&cli, got, n, out, &gotlen, &recs) == PROXY_TLSREC_DATA && recs == 3 &&
          gotlen == sizeof(big_b) && memcmp(out, big_b, gotlen) == 0);

    /* Ours to OpenSSL, both directions; explicit nonces continue (and wrap). */
    w = proxy_tlsrec_write(&srv, big_b, sizeof(big_b), out, sizeof(out), why, sizeof(why));
    CHECK(w == (ssize_t)proxy_tlsrec_write_bound(&srv, 0) + (ssize_t)sizeof(big_b) +
                   3 * (suite == 0xcca9 ? 21 : 29));
    CHECK(srv.wr.nonce == (suite == 0xcca9 ? 0xfffffffffffffffeull : 1));
    CHECK(ssl_reads(p->c, p->c_in, out, (size_t)w, big_b, sizeof(big_b)));
    w = proxy_tlsrec_write(&cli, big_a, 100, out, sizeof(out), why, sizeof(why));
    CHECK(w > 0 && ssl_reads(p->s, p->s_in, out, (size_t)w, big_a, 100));
    if (suite != 0xcca9)
        CHECK(out[5 + 7] == 77);   /* the explicit nonce we were given */

    /* A flipped bit. */
    CHECK(SSL_write(p->c, big_a, 10) == 10);
    n = take(p->c_out, got, sizeof(got));
    memcpy(out, got, n);
    out[n - 1] ^= 0x40;
    CHECK(rd(&srv, out, n, &pt, &ptlen, &alert) == PROXY_TLSREC_FATAL &&
          alert == PROXY_TLS_ALERT_BAD_RECORD_MAC);
    CHECK(rd(&srv, got, n, &pt, &ptlen, &alert) == PROXY_TLSREC_DATA && ptlen == 10);

    /* OpenSSL's server asks to renegotiate: we refuse, and it hears it. */
    CHECK(renegotiation_refused(p->s, p->s_out, &cli));
    w = proxy_tlsrec_flush_control(&cli, out, sizeof(out), why, sizeof(why));
    CHECK(w == (suite == 0xcca9 ? 23 : 31) && !(cli.flags & PROXY_TLSREC_F_NORENEG_OWED));
    CHECK(BIO_write(p->s_in, out, (int)w) == (int)w && ssl_refused_reneg(p->s));

    /* OpenSSL's client renegotiates (a ClientHello): refused before our data. */
    CHECK(renegotiation_refused(p->c, p->c_out, &srv));
    w = proxy_tlsrec_write(&srv, big_a, 5, out, sizeof(out), why, sizeof(why));
    CHECK(w > 0 && !(srv.flags & PROXY_TLSREC_F_NORENEG_OWED));
    CHECK(BIO_write(p->c_in, out, (int)w) == (int)w && ssl_refused_reneg(p->c));
    proxy_tlsrec_free(&srv);
    proxy_tlsrec_free(&cli);
    pair_free(p);
}

/* ---- the post-handshake parser, on records we seal ourselves ---- */

static uint8_t secret_a[48], secret_b[48];

/* A writer and a reader sharing a key: w seals what r opens. */
static void pair13(struct proxy_tlsrec *w, struct proxy_tlsrec *r, int reader_role)
{
    CHECK(start13(w, 0x1301, !reader_role, secret_b, 0, secret_a, 5) == 0);
    CHECK(start13(r, 0x1301, reader_role, secret_a, 5, secret_b, 0) == 0);
}

static void pair12(struct proxy_tlsrec *w, struct proxy_tlsrec *r, int reader_role,
                   uint16_t suite)
{
    CHECK(start12(w, suite, !reader_role, secret_b, secret_b + 32, 1, secret_a,
                  secret_a + 32, 1, 99) == 0);
    CHECK(start12(r, suite, reader_role, secret_a, secret_a + 32, 1, secret_b,
                  secret_b + 32, 1, 5) == 0);
}

/* w seals one record of `type`; r reads it. */
static enum proxy_tlsrec_rc relay(struct proxy_tlsrec *w, struct proxy_tlsrec *r, uint8_t type,
                                  const void *msg, size_t len, uint8_t *alert)
{
    static uint8_t rec[PROXY_TLSREC_HDR + PROXY_TLSREC_BODY_MAX + 64];
    uint8_t *pt;
    size_t ptlen;
    ssize_t n = proxy_tlsrec_seal(w, type, msg, len, rec, sizeof(rec), why, sizeof(why));

    if (n < 0)
        return PROXY_TLSREC_FATAL;
    return rd(r, rec, (size_t)n, &pt, &ptlen, alert);
}

static void test_post_handshake13(void)
{
    static const uint8_t ticket[24] = { 4, 0, 0, 20, 1, 2, 3 };
    static const uint8_t two[2 * 24] = { 4, 0, 0, 20, [24] = 4, 0, 0, 20 };
    static const uint8_t ku_then[9] = { 24, 0, 0, 1, 0, 4, 0, 0, 0 };
    static const uint8_t ku_bad_value[5] = { 24, 0, 0, 1, 2 };
    static const uint8_t ku_bad_len[6] = { 24, 0, 0, 2, 0, 0 };
    static const uint8_t certreq[8] = { 13, 0, 0, 4, 0, 0, 0, 0 };
    static const uint8_t finished[36] = { 20, 0, 0, 32 };
    struct proxy_tlsrec w, r;
    uint8_t alert;

    /* A ticket split over two records, then two in one: discarded. */
    pair13(&w, &r, PROXY_TLSREC_CLIENT);
    CHECK(relay(&w, &r, 22, ticket, 10, &alert) == PROXY_TLSREC_CONTROL && r.hslen == 10);
    CHECK(relay(&w, &r, 22, ticket + 10, 14, &alert) == PROXY_TLSREC_CONTROL &&
          r.hslen == 0 && r.hs == NULL);
    CHECK(relay(&w, &r, 22, two, sizeof(two), &alert) == PROXY_TLSREC_CONTROL && r.hslen == 0);
    CHECK(relay(&w, &r, 22, two, 27, &alert) == PROXY_TLSREC_CONTROL && r.hslen == 3);
    /* Application data inside a handshake message. */
    CHECK(relay(&w, &r, 23, "x", 1, &alert) == PROXY_TLSREC_FATAL &&
          alert == PROXY_TLS_ALERT_UNEXPECTED_MESSAGE);
    proxy_tlsrec_free(&w);
    proxy_tlsrec_free(&r);

    /* As a server, a ticket is unexpected. */
    pair13(&w, &r, PROXY_TLSREC_SERVER);
    CHECK(relay(&w, &r, 22, ticket, sizeof(ticket), &alert) == PROXY_TLSREC_FATAL &&
          alert == PROXY_TLS_ALERT_UNEXPECTED_MESSAGE);
    proxy_tlsrec_free(&w);
    proxy_tlsrec_free(&r);

    struct { const uint8_t *msg; size_t len; uint8_t alert; const char *why; } bad[] = {
        { certreq, sizeof(certreq), PROXY_TLS_ALERT_UNEXPECTED_MESSAGE, "CertificateRequest" },
        { ku_then, sizeof(ku_then), PROXY_TLS_ALERT_UNEXPECTED_MESSAGE, "end of its record" },
        { ku_bad_value, sizeof(ku_bad_value), PROXY_TLS_ALERT_ILLEGAL_PARAMETER, "request_update 2" },
        { ku_bad_len, sizeof(ku_bad_len), PROXY_TLS_ALERT_DECODE_ERROR, "KeyUpdate of 2" },
        { finished, sizeof(finished), PROXY_TLS_ALERT_UNEXPECTED_MESSAGE, "message 20" },
        { finished, 0, PROXY_TLS_ALERT_UNEXPECTED_MESSAGE, "empty handshake" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pair13(&w, &r, PROXY_TLSREC_CLIENT);
        CHECK(relay(&w, &r, 22, bad[i].msg, bad[i].len, &alert) == PROXY_TLSREC_FATAL &&
              alert == bad[i].alert);
        CHECK_WHY(why, bad[i].why);
        proxy_tlsrec_free(&w);
        proxy_tlsrec_free(&r);
    }

    /* Alerts: user_canceled ignored, close_notify ends, anything else fatal. */
    pair13(&w, &r, PROXY_TLSREC_SERVER);
    CHECK(relay(&w, &r, 21, "\x01\x5a", 2, &alert) == PROXY_TLSREC_CONTROL);
    CHECK(relay(&w, &r, 23, "", 0, &alert) == PROXY_TLSREC_DATA);
    CHECK(relay(&w, &r, 21, "\x01\x70", 2, &alert) == PROXY_TLSREC_FATAL && alert == 0);
    CHECK_WHY(why, "alert 112");
    CHECK(relay(&w, &r, 21, "", 0, &alert) == PROXY_TLSREC_FATAL &&
          alert == PROXY_TLS_ALERT_DECODE_ERROR);
    CHECK(relay(&w, &r, 21, "\x01\x00", 2, &alert) == PROXY_TLSREC_CLOSED);
    CHECK(relay(&w, &r, 23, "late", 4, &alert) == PROXY_TLSREC_FATAL);
    proxy_tlsrec_free(&w);
    proxy_tlsrec_free(&r);

    /* A KeyUpdate split over two records still ends its record. */
    pair13(&w, &r, PROXY_TLSREC_SERVER);
    CHECK(relay(&w, &r, 22, "\x18\x00\x00\x01", 4, &alert) == PROXY_TLSREC_CONTROL);
    CHECK(relay(&w, &r, 22, "\x01", 1, &alert) == PROXY_TLSREC_CONTROL &&
          (r.flags & PROXY_TLSREC_F_KU_OWED) && r.rd.seq == 0 && r.hs == NULL);
    /* w did not update: its next record fails under r's new key. */
    CHECK(relay(&w, &r, 23, "x", 1, &alert) == PROXY_TLSREC_FATAL &&
          alert == PROXY_TLS_ALERT_BAD_RECORD_MAC);
    proxy_tlsrec_free(&w);
    proxy_tlsrec_free(&r);
}

static void test_post_handshake12(void)
{
    struct proxy_tlsrec w, r, mirror;
    uint8_t alert, *pt, rec[256];
    size_t ptlen;
    ssize_t n;

    /* HelloRequest to a client: a no_renegotiation warning is owed. */
    pair12(&w, &r, PROXY_TLSREC_CLIENT, 0xc02b);
    CHECK(relay(&w, &r, 22, "\x00\x00\x00\x00", 4, &alert) == PROXY_TLSREC_CONTROL &&
          (r.flags & PROXY_TLSREC_F_NORENEG_OWED));
    CHECK(start12(&mirror, 0xc02b, PROXY_TLSREC_SERVER, secret_b, secret_b + 32, r.wr.seq,
                  secret_a, secret_a + 32, 1, 0) == 0);
    n = proxy_tlsrec_flush_control(&r, rec, sizeof(rec), why, sizeof(why));
    CHECK(n == 31 && rec[0] == 21 && rec[5 + 7] == 5);
    CHECK(proxy_tlsrec_open(&mirror, rec, (size_t)n, &alert, &pt, &ptlen, &alert, why,
                            sizeof(why)) == 0 &&
          ptlen == 2 && pt[0] == 1 && pt[1] == PROXY_TLS_ALERT_NO_RENEGOTIATION);
    /* A HelloRequest with a body, a CCS, a warning alert, a fatal one. */
    CHECK(relay(&w, &r, 22, "\x00\x00\x00\x01\x00", 5, &alert) == PROXY_TLSREC_FATAL &&
          alert == PROXY_TLS_ALERT_DECODE_ERROR);
    proxy_tlsrec_free(&w);
    proxy_tlsrec_free(&r);
    proxy_tlsrec_free(&mirror);

    pair12(&w, &r, PROXY_TLSREC_SERVER, 0xcca8);
    CHECK(relay(&w, &r, 22, "\x00\x00\x00\x00", 4, &alert) == PROXY_TLSREC_FATAL &&
          alert == PROXY_TLS_ALERT_UNEXPECTED_MESSAGE);
    proxy_tlsrec_free(&w);
    proxy_tlsrec_free(&r);
    pair12(&w, &r, PROXY_TLSREC_SERVER, 0xcca8);
    CHECK(relay(&w, &r, 22, "\x01\x00\x00\x02\x03\x03", 6, &alert) == PROXY_TLSREC_CONTROL &&
          (r.flags & PROXY_TLSREC_F_NORENEG_OWED));
    CHECK(relay(&w, &r, 21, "\x01\x64", 2, &alert) == PROXY_TLSREC_CONTROL);
    CHECK(relay(&w, &r, 23, "", 0, &alert) == PROXY_TLSREC_DATA);
    CHECK(relay(&w, &r, 20, "\x01", 1, &alert) == PROXY_TLSREC_FATAL &&
          alert == PROXY_TLS_ALERT_UNEXPECTED_MESSAGE);
    CHECK_WHY(why, "ChangeCipherSpec");
    proxy_tlsrec_free(&w);
    proxy_tlsrec_free(&r);
    pair12(&w, &r, PROXY_TLSREC_SERVER, 0xc030);
    CHECK(relay(&w, &r, 21, "\x02\x28", 2, &alert) == PROXY_TLSREC_FATAL && alert == 0);
    CHECK_WHY(why, "alert 40");
    proxy_tlsrec_free(&w);
    proxy_tlsrec_free(&r);
}

/* Tampered, short, long, misnumbered and mistyped records. */
static void test_bad_records(void)
{
    static uint8_t rec[PROXY_TLSREC_HDR + PROXY_TLSREC_BODY_MAX + 64], copy[sizeof(rec)];
    struct proxy_tlsrec w, r;
    uint8_t alert, *pt;
    size_t ptlen, len;
    ssize_t n;

    pair13(&w, &r, PROXY_TLSREC_SERVER);
    n = proxy_tlsrec_write(&w, (const uint8_t *)"hello", 5, rec, sizeof(rec), why, sizeof(why));
    CHECK(n == 27);
    len = (size_t)n;
    memcpy(copy, rec, len);
    copy[7] ^= 1;
    CHECK(rd(&r, copy, len, &pt, &ptlen, &alert) == PROXY_TLSREC_FATAL &&
          alert == PROXY_TLS_ALERT_BAD_RECORD_MAC);
    memcpy(copy, rec, len);
    copy[4]--;                              /* the tag cut short, the header agreeing */
    CHECK(rd(&r, copy, len - 1, &pt, &ptlen, &alert) == PROXY_TLSREC_FATAL &&
          alert == PROXY_TLS_ALERT_BAD_RECORD_MAC);
    memcpy(copy, rec, len);
    CHECK(rd(&r, copy, len - 1, &pt, &ptlen, &alert) == PROXY_TLSREC_FATAL &&
          alert == PROXY_TLS_ALERT_DECODE_ERROR);
    CHECK(rd(&r, copy, 3, &pt, &ptlen, &alert) == PROXY_TLSREC_FATAL);
    memcpy(copy, rec, len);
    copy[0] = 22;
    CHECK(rd(&r, copy, len, &pt, &ptlen, &alert) == PROXY_TLSREC_FATAL &&
          alert == PROXY_TLS_ALERT_UNEXPECTED_MESSAGE);
    memcpy(copy, rec, len);
    copy[3] = 0x41;                         /* 16,641 bytes */
    copy[4] = 0x01;
    CHECK(rd(&r, copy, 5 + 0x4101, &pt, &ptlen, &alert) == PROXY_TLSREC_FATAL &&
          alert == PROXY_TLS_ALERT_RECORD_OVERFLOW);
    memcpy(copy, rec, 5);
    copy[4] = 16;                           /* no room for a content type */
    CHECK(rd(&r, copy, 21, &pt, &ptlen, &alert) == PROXY_TLSREC_FATAL &&
          alert == PROXY_TLS_ALERT_BAD_RECORD_MAC);
    CHECK(r.rd.seq == 5);
    CHECK(rd(&r, rec, len, &pt, &ptlen, &alert) == PROXY_TLSREC_DATA && ptlen == 5 &&
          memcmp(pt, "hello", 5) == 0 && r.rd.seq == 6);
    /* Only padding: no content type. */
    n = proxy_tlsrec_seal(&w, 0, (const uint8_t *)"\0\0", 2, rec, sizeof(rec), why, sizeof(why));
    CHECK(rd(&r, rec, (size_t)n, &pt, &ptlen, &alert) == PROXY_TLSREC_FATAL &&
          alert == PROXY_TLS_ALERT_UNEXPECTED_MESSAGE);
    proxy_tlsrec_free(&w);
    proxy_tlsrec_free(&r);

    /* TLS 1.2: a record too long, a wrong version, a record too short. */
    pair12(&w, &r, PROXY_TLSREC_SERVER, 0xc02f);
    n = proxy_tlsrec_write(&w, (const uint8_t *)"hello", 5, rec, sizeof(rec), why, sizeof(why));
    len = (size_t)n;
    memcpy(copy, rec, len);
    copy[2] = 1;
    CHECK(rd(&r, copy, len, &pt, &ptlen, &alert) == PROXY_TLSREC_FATAL);
    memcpy(copy, rec, 5);
    copy[3] = 0x48;
    copy[4] = 0x01;
    CHECK(rd(&r, copy, 5 + 0x4801, &pt, &ptlen, &alert) == PROXY_TLSREC_FATAL &&
          alert == PROXY_TLS_ALERT_RECORD_OVERFLOW);
    copy[3] = 0;
    copy[4] = 23;
    CHECK(rd(&r, copy, 28, &pt, &ptlen, &alert) == PROXY_TLSREC_FATAL &&
          alert == PROXY_TLS_ALERT_BAD_RECORD_MAC);
    CHECK(rd(&r, rec, len, &pt, &ptlen, &alert) == PROXY_TLSREC_DATA && ptlen == 5);
    proxy_tlsrec_free(&w);
    proxy_tlsrec_free(&r);
}

static void test_write_side(void)
{
    static uint8_t pt[2000], rec[4096];
    struct proxy_tlsrec w, r;
    size_t gotlen;
    ssize_t n;
    int recs;

    fill(pt, sizeof(pt), 5);
    /* max_fragment_length 512: 2,000 bytes in four records. */
    pair13(&w, &r, PROXY_TLSREC_CLIENT);
    w.max_frag = 512;
    CHECK(proxy_tlsrec_write_bound(&w, sizeof(pt)) == sizeof(pt) + 4 * 22);
    /* All or nothing: too little room seals nothing. */
    CHECK(proxy_tlsrec_write(&w, pt, sizeof(pt), rec, sizeof(pt) + 4 * 22 - 1, why,
                             sizeof(why)) == -1 && w.wr.seq == 5);
    n = proxy_tlsrec_write(&w, pt, sizeof(pt), rec, sizeof(rec), why, sizeof(why));
    CHECK(n == (ssize_t)(sizeof(pt) + 4 * 22));
    CHECK(rec[3] == 0x02 && rec[4] == 0x11);       /* 512 + 1 + 16 */
    CHECK(rd_all(&r, rec, (size_t)n, got, &gotlen, &recs) == PROXY_TLSREC_DATA && recs == 4 &&
          gotlen == sizeof(pt) && memcmp(got, pt, sizeof(pt)) == 0);
    /* A proactive KeyUpdate the reader follows. */
    w.ku_after = 10;
    n = proxy_tlsrec_write(&w, pt, sizeof(pt), rec, sizeof(rec), why, sizeof(why));
    CHECK(n == (ssize_t)(sizeof(pt) + 4 * 22 + 27) && w.wr.seq == 3);
    CHECK(rd_all(&r, rec, (size_t)n, got, &gotlen, &recs) == PROXY_TLSREC_DATA && recs == 5 &&
          gotlen == sizeof(pt) && r.rd.seq == 3 && !(r.flags & PROXY_TLSREC_F_KU_OWED));
    /* A fatal alert ends the write side too. */
    CHECK(proxy_tlsrec_alert(&w, 2, PROXY_TLS_ALERT_INTERNAL_ERROR, rec, sizeof(rec), why,
                             sizeof(why)) == 24);
    CHECK(proxy_tlsrec_write(&w, pt, 1, rec, sizeof(rec), why, sizeof(why)) == -1);
    CHECK_WHY(why, "after close_notify");
    proxy_tlsrec_free(&w);
    proxy_tlsrec_free(&r);

    /* A sequence number about to run out. */
    pair12(&w, &r, PROXY_TLSREC_CLIENT, 0xc02b);
    w.wr.seq = UINT64_MAX - 1;
    CHECK(proxy_tlsrec_write(&w, pt, 1, rec, sizeof(rec), why, sizeof(why)) > 0);
    CHECK(proxy_tlsrec_write(&w, pt, 1, rec, sizeof(rec), why, sizeof(why)) == -1);
    CHECK_WHY(why, "exhausted");
    proxy_tlsrec_free(&w);
    proxy_tlsrec_free(&r);
}

static void test_start_refuses(void)
{
    struct proxy_tlsrec r, good;

    CHECK(start13(&good, 0x1303, PROXY_TLSREC_SERVER, secret_a, 0, secret_b, 0) == 0);
    proxy_tlsrec_free(&good);

#define REFUSE(stmt, sub)                                                                   \
    do {                                                                                    \
        memset(&r, 0, sizeof(r));                                                           \
        r.version = 0x0304;                                                                 \
        r.suite = 0x1301;                                                                   \
        r.max_frag = 16384;                                                                 \
        r.rd.ctx = (void *)&r;  /* garbage from a handoff message is never freed */         \
        stmt;                                                                               \
        CHECK(proxy_tlsrec_start(&r, why, sizeof(why)) == -1);                              \
        CHECK_WHY(why, sub);                                                                \
        CHECK(r.version == 0 && r.rd.ctx == NULL && r.wr.ctx == NULL);                      \
    } while (0)
    REFUSE(r.suite = 0x1304, "suite 0x1304");
    REFUSE((r.version = 0x0303, r.suite = 0xc013), "suite 0xc013");
    REFUSE(r.suite = 0xc02b, "suite 0xc02b");
    REFUSE(r.version = 0x0302, "version");
    REFUSE(r.role = 2, "role");
    REFUSE(r.max_frag = 511, "max_frag");
    REFUSE(r.max_frag = 16385, "max_frag");
    REFUSE(r.max_frag = 0, "max_frag");
    REFUSE(r.flags = 0x10, "flags");
    REFUSE(r.flags = PROXY_TLSREC_F_NORENEG_OWED, "flags");
    REFUSE((r.version = 0x0303, r.suite = 0xc02b, r.flags = PROXY_TLSREC_F_KU_OWED), "flags");
    REFUSE(r.rd.seq = UINT64_MAX, "exhausted");
    REFUSE(r.wr.seq = UINT64_MAX, "exhausted");
    REFUSE(r.hslen = 3, "pending handshake");
    REFUSE((r.hs = calloc(1, PROXY_TLSREC_HS_MAX + 1), r.hslen = PROXY_TLSREC_HS_MAX + 1),
           "pending handshake");
#undef REFUSE

    CHECK(proxy_tlsrec_suite_ok(0x0304, 0x1302) && !proxy_tlsrec_suite_ok(0x0303, 0x1302));
    CHECK(!proxy_tlsrec_suite_ok(0x0303, 0xc027));   /* CBC */
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fill(secret_a, sizeof(secret_a), 11);
    fill(secret_b, sizeof(secret_b), 12);
    make_cert();
    test_rfc8448();
    test_tls13_vs_openssl("TLS_AES_128_GCM_SHA256", 0x1301);
    test_tls13_vs_openssl("TLS_AES_256_GCM_SHA384", 0x1302);
    test_tls13_vs_openssl("TLS_CHACHA20_POLY1305_SHA256", 0x1303);
    test_tls12_vs_openssl("ECDHE-ECDSA-AES128-GCM-SHA256", 0xc02b);
    test_tls12_vs_openssl("ECDHE-ECDSA-AES256-GCM-SHA384", 0xc02c);
    test_tls12_vs_openssl("ECDHE-ECDSA-CHACHA20-POLY1305", 0xcca9);
    test_post_handshake13();
    test_post_handshake12();
    test_bad_records();
    test_write_side();
    test_start_refuses();
    X509_free(cert);
    EVP_PKEY_free(pkey);
    return test_summary("test_tls_record");
}
