/*
 * tls_record_int.h - what the three files of the record layer share:
 * tls_keys.c (the suite table, key derivation, cipher contexts),
 * tls_record.c (sealing and opening one record, writing, alerts, start and
 * free) and tls_post.c (what proxy_tlsrec_read does with each record).
 * Also used by the record layer's unit test and fuzz target, which need to
 * seal records of any content type.
 */
#ifndef BATON_PROXY_TLS_RECORD_INT_H
#define BATON_PROXY_TLS_RECORD_INT_H

#include <stdarg.h>

#include "port_libc.h"
#include "tls_record.h"

#define PROXY_TLSREC_TAG        16
#define PROXY_TLSREC_CT_CCS     20
#define PROXY_TLSREC_CT_ALERT   21
#define PROXY_TLSREC_CT_HS      22
#define PROXY_TLSREC_CT_APPDATA 23
#define PROXY_TLS_ALERT_ILLEGAL_PARAMETER 47
#define PROXY_TLS_ALERT_PROTOCOL_VERSION  70

/* One carried suite. */
struct proxy_tlsrec_suite {
    uint16_t    version;
    uint16_t    suite;
    const char *md;            /* the hash of HKDF / the TLS 1.2 PRF */
    int         cipher;        /* index into the process's fetched ciphers */
    uint8_t     key_len;
    uint8_t     secret_len;    /* TLS 1.3: the hash length; TLS 1.2: 0 */
    uint8_t     fixed_iv_len;  /* 12, or 4 for TLS 1.2 GCM (salt) */
    uint8_t     explicit_len;  /* 8 for TLS 1.2 GCM, else 0 */
};

/* tls_keys.c */
const struct proxy_tlsrec_suite *proxy_tlsrec_suite_find(uint16_t version, uint16_t suite);
/* Keys one direction: TLS 1.3 derives key and iv from the secret first;
 * then the cipher context is created if need be and keyed.  0 or -1. */
/* 1 if the suite's cipher could be fetched. */
int proxy_tlsrec_cipher_available(const struct proxy_tlsrec_suite *s);
int proxy_tlsrec_dir_key(const struct proxy_tlsrec_suite *s, struct proxy_tlsrec_dir *d,
                         int enc, char *why, size_t whylen);
/* TLS 1.3 KeyUpdate of one direction: the next secret, its key and iv, and
 * sequence number 0.  0 or -1. */
int proxy_tlsrec_dir_update(const struct proxy_tlsrec_suite *s, struct proxy_tlsrec_dir *d,
                            int enc, char *why, size_t whylen);

/* tls_record.c */
void proxy_tlsrec_why(char *why, size_t whylen, const char *fmt, ...)
    PORT_PRINTF(3, 4);
/* Seals one record of content type `type` (TLS 1.3: the inner type) at
 * out; pt may be anywhere, out too.  Bytes written or -1 (why). */
ssize_t proxy_tlsrec_seal(struct proxy_tlsrec *r, uint8_t type, const uint8_t *pt, size_t len,
                          uint8_t *out, size_t cap, char *why, size_t whylen);
/* Opens one record in place: 0 with *type, *pt, *ptlen; or -1 with *alert
 * and why. */
int proxy_tlsrec_open(struct proxy_tlsrec *r, uint8_t *rec, size_t reclen, uint8_t *type,
                      uint8_t **pt, size_t *ptlen, uint8_t *alert, char *why, size_t whylen);

#endif
