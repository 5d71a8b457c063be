/*
 * tls_capture.h - what baton's record layer needs from OpenSSL's handshake,
 * gathered through its public callbacks while the handshake runs: the
 * traffic secrets (keylog callback), each direction's record sequence
 * number (counted from record headers by the message callback, from the
 * moment the direction's key is installed), a KeyUpdate OpenSSL still owes,
 * and for TLS 1.2 GCM the last explicit nonce it wrote.
 *
 * OpenSSL exports none of this directly; the callback order this relies on
 * (a key is logged when it is installed; a record's header is reported
 * before its bytes reach the BIO) is checked by the record layer's tests
 * against OpenSSL itself, so an OpenSSL that changes it fails CI rather
 * than a connection.
 */
#ifndef BATON_PROXY_TLS_CAPTURE_H
#define BATON_PROXY_TLS_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "tls_record.h"

struct proxy_tls_capture_dir {
    uint8_t  secret[PROXY_TLSREC_SECRET_MAX];   /* TLS 1.3: application traffic secret */
    uint8_t  secret_len;
    unsigned active:1;                         /* its application (1.2: CCS) key is on */
    uint64_t seq;                              /* records since then */
};

struct proxy_tls_capture {
    struct proxy_tls_capture_dir rd, wr;
    uint64_t last_nonce;      /* TLS 1.2: explicit nonce of the last protected record written */
    unsigned have_nonce:1;
    unsigned ku_owed:1;       /* a KeyUpdate(update_requested) came, OpenSSL has not answered */
    unsigned broken:1;        /* something seen that this layer cannot follow */
};

/* Sets the keylog callback on a context (every context an SSL may switch
 * to by SNI needs it).  The SSL objects then need proxy_tls_capture_attach. */
void proxy_tls_capture_ctx(SSL_CTX *ctx);
/* Starts gathering for ssl into cap (zeroed here): 0, or -1. */
int  proxy_tls_capture_attach(SSL *ssl, struct proxy_tls_capture *cap);
/* Stops it (before cap is freed while ssl lives on). */
void proxy_tls_capture_detach(SSL *ssl);
/* Bytes OpenSSL wrote (whole records): TLS 1.2 explicit nonces are taken
 * from them. */
void proxy_tls_capture_written(struct proxy_tls_capture *cap, const SSL *ssl,
                               const uint8_t *p, size_t n);
/* After a successful handshake: the record state for baton's layer, keyed
 * (proxy_tlsrec_start done).  0, or -1 with why when this connection must
 * stay on OpenSSL's record layer (suite not carried, OpenSSL holding bytes,
 * a direction not followed). */
int  proxy_tls_capture_finish(SSL *ssl, struct proxy_tls_capture *cap, struct proxy_tlsrec *r,
                              char *why, size_t whylen);

#endif
