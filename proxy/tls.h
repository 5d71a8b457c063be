/*
 * tls.h - TLS contexts (OpenSSL 3) and the record-level I/O of one TLS
 * connection.
 *
 * baton never gives OpenSSL a socket: raw bytes are read by baton into its
 * own buffer, and OpenSSL's BIO (baton's) hands it only whole TLS records,
 * so at any quiescent moment no partial record is hidden inside OpenSSL
 * (what the live connection handoff needs).  Records OpenSSL produces are
 * sent by baton: straight to the socket while nothing is queued once the
 * connection relays, otherwise queued in baton's output buffer.  After the
 * handshake, baton's own record layer takes over from OpenSSL (SSL freed)
 * on the suites it carries.
 */
#ifndef BATON_PROXY_TLS_H
#define BATON_PROXY_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "conf.h"

#define PROXY_TLS_RECORD_MAX   (5 + 16384 + 2048)  /* header + largest TLSCiphertext */
#define PROXY_TICKET_KEY_LEN   80                  /* name 16, AES-256 32, HMAC 32 */
#define PROXY_TICKET_KEYS_MAX  3                   /* current + 2 previous */

/* ---- contexts ---------------------------------------------------------- */

struct proxy_tls_server;   /* a terminating listener: certificates by name */
struct proxy_tls_client;   /* a TLS backend */

/* Builds the contexts of a listener (tls = on) / a backend (tls = on).
 * NULL with `why` (naming the file and OpenSSL's reason) on failure. */
struct proxy_tls_server *proxy_tls_server_new(const struct conf_listener *l,
                                              const struct conf_global *g,
                                              char *why, size_t whylen);
void proxy_tls_server_free(struct proxy_tls_server *s);
struct proxy_tls_client *proxy_tls_client_new(const struct conf_backend *b,
                                              char *why, size_t whylen);
void proxy_tls_client_free(struct proxy_tls_client *c);

/* Builds (and frees) every context of a configuration: `baton -t` and a
 * reload check certificates and keys before anything is started. */
int proxy_tls_check_conf(const struct conf *c, char *err, size_t errlen);

/* Session ticket keys, owned by the master and shared by every worker
 * generation (so clients resume across reloads).  keys holds n keys of
 * PROXY_TICKET_KEY_LEN bytes, newest (the one that encrypts) first. */
int  proxy_tls_set_ticket_keys(const uint8_t *keys, size_t n);
/* 0, or -1 if no random key could be made (key unusable). */
int  proxy_tls_new_ticket_key(uint8_t key[PROXY_TICKET_KEY_LEN]);

/* ---- one connection ----------------------------------------------------- */

struct proxy_tls_capture;
struct proxy_tlsrec;

/* What the handshake settled, kept for logs and PROXY v2 TLVs once
 * OpenSSL's SSL is gone. */
struct proxy_tls_facts {
    char     version[16];     /* "TLSv1.3" */
    char     cipher[64];      /* OpenSSL's name */
    uint8_t  resumed;
    char    *subject;         /* client certificate subject (RFC 2253), or NULL */
};

struct proxy_tls {
    SSL      *ssl;            /* the handshake; for life if the suite is not carried below */
    struct proxy_tlsrec *rec; /* after the handshake: baton's record layer (SSL freed) */
    struct proxy_tls_capture *cap;   /* during the handshake: what rec will need */
    BIO      *rbio, *wbio;
    uint8_t  *in;             /* raw bytes received: see "Input buffer layout" in tls_io.c */
    uint32_t  inlen, incap;
    uint32_t  inoff, inready; /* consumed / end of the last whole record */
    uint32_t  ptoff, ptlen;   /* rec: opened plaintext not read yet, inside in[0..inoff) */
    uint8_t  *out;            /* raw bytes produced, not sent yet */
    uint32_t  outoff, outlen, outcap;
    uint64_t  raw_in;         /* bytes received in all */
    int       wfd;            /* >= 0: records go straight to this socket */
    unsigned  rx_short:1;     /* the last recv did not fill the room offered */
    unsigned  handshake_done:1;
    unsigned  close_notify_sent:1;
    struct proxy_tls_facts facts;   /* once handshake_done */
};

enum proxy_tls_status {
    PROXY_TLS_OK = 0,         /* done / some bytes */
    PROXY_TLS_WANT,           /* needs more input (or output to drain) */
    PROXY_TLS_EOF,            /* peer sent close_notify */
    PROXY_TLS_ERROR           /* fatal; `why` says what */
};

SSL *proxy_tls_server_ssl(struct proxy_tls_server *s);
SSL *proxy_tls_client_ssl(struct proxy_tls_client *c, const char *server_name);
int  proxy_tls_init(struct proxy_tls *t, SSL *ssl);   /* takes ssl */
void proxy_tls_free(struct proxy_tls *t);
/* Frees the calling thread's spare input and sealing buffers (when its
 * loop ends). */
void proxy_tls_release_cache(void);

/* The size of the TLS record starting at p[0..n) (header included) once it
 * is all there, 0 while more bytes are needed, -1 if its header is not a
 * TLS record's (why set). */
ssize_t proxy_tls_record_size(const uint8_t *p, size_t n, char *why, size_t whylen);
/* Feeds raw bytes just received: whole records go into OpenSSL, the tail
 * of an incomplete one is kept.  PROXY_TLS_ERROR on a malformed record. */
enum proxy_tls_status proxy_tls_feed(struct proxy_tls *t, const uint8_t *p, size_t n,
                                     char *why, size_t whylen);
/* Receives from fd straight into the input buffer (as proxy_tls_feed,
 * without a copy): bytes (> 0), 0 on EOF, -1 on a socket error, -2 when
 * nothing is there, -3 on a malformed record or no memory (why set).
 * Afterwards t->rx_short says whether the socket gave less than the room
 * offered, i.e. it is most likely empty now. */
ssize_t proxy_tls_recv(struct proxy_tls *t, int fd, char *why, size_t whylen);
/* Advances the handshake: OK when complete, WANT for more input. */
enum proxy_tls_status proxy_tls_handshake(struct proxy_tls *t, char *why, size_t whylen);
/* Decrypts into buf: OK with *got > 0, WANT (needs input), EOF or ERROR. */
enum proxy_tls_status proxy_tls_read(struct proxy_tls *t, void *buf, size_t n, size_t *got,
                                     char *why, size_t whylen);
/* Encrypts all n bytes into records queued in t->out. */
enum proxy_tls_status proxy_tls_write(struct proxy_tls *t, const void *buf, size_t n,
                                      char *why, size_t whylen);
/* From now on records are sent to fd as OpenSSL produces them while
 * nothing is queued (one copy less); what the socket does not take is
 * queued as before.  A socket error then surfaces at the next flush. */
void proxy_tls_write_through(struct proxy_tls *t, int fd);
/* Queues raw bytes to go out before anything the TLS layer writes (a
 * PROXY protocol header ahead of the ClientHello).  0 or -1. */
int  proxy_tls_feed_out(struct proxy_tls *t, const void *p, size_t n);
/* Queues close_notify. */
void proxy_tls_close_notify(struct proxy_tls *t);
/* Sends queued raw bytes: 1 all sent, 0 some left (EAGAIN), -1 error. */
int  proxy_tls_flush(struct proxy_tls *t, int fd);
int  proxy_tls_pending_out(const struct proxy_tls *t);
/* Decrypted data or whole records still inside OpenSSL, to be read before
 * waiting for the socket again. */
int  proxy_tls_pending_in(const struct proxy_tls *t);

/* Right after the handshake (while OpenSSL still has them): SNI and ALPN. */
const char *proxy_tls_sni(const struct proxy_tls *t);          /* "" if none */
void proxy_tls_alpn(const struct proxy_tls *t, char *buf, size_t n);

/* After the handshake: hands the connection from OpenSSL to baton's record
 * layer (tls_record.h) and frees the SSL.  1 done, 0 it stays on OpenSSL
 * (why: a suite the layer does not carry, ...), -1 out of memory. */
int proxy_tls_take_over(struct proxy_tls *t, char *why, size_t whylen);
/* Baton's record layer: the next whole record received, taken from the
 * input buffer (valid until the next receive): 1, or 0 if none. */
int proxy_tls_next_record(struct proxy_tls *t, uint8_t **rec, size_t *len);
/* Room for n more output bytes at the end of the output queue (NULL: out
 * of memory); proxy_tls_out_commit then queues what was written there. */
uint8_t *proxy_tls_out_room(struct proxy_tls *t, size_t n);
void proxy_tls_out_commit(struct proxy_tls *t, size_t n);
/* Sends whole records: straight to fd while nothing is queued, the rest
 * queued.  0, or -1 out of memory. */
int proxy_tls_send_records(struct proxy_tls *t, int fd, const uint8_t *p, size_t n);
/* The calling thread's buffer for sealing n bytes of records (NULL: out of
 * memory); valid until the next call. */
uint8_t *proxy_tls_seal_buffer(size_t n);
/* A connection arriving from the previous generation: its opened plaintext,
 * the records received after it, and the records not sent yet.  0, or -1
 * with why (malformed records, out of memory). */
int proxy_tls_adopt_buffers(struct proxy_tls *t, const uint8_t *plain, uint32_t nplain,
                            const uint8_t *raw, uint32_t nraw, const uint8_t *out,
                            uint32_t nout, char *why, size_t whylen);
/* Frees the input buffer if nothing in it is left to read. */
void proxy_tls_in_release_if_empty(struct proxy_tls *t);

/* After the handshake: negotiated details, for logs and PROXY v2 TLVs. */
const char *proxy_tls_version(const struct proxy_tls *t);
const char *proxy_tls_cipher(const struct proxy_tls *t);
int  proxy_tls_resumed(const struct proxy_tls *t);
/* The client certificate's subject (RFC 2253 form, its bytes unescaped),
 * into buf; -1 if there is none. */
int  proxy_tls_peer_subject(const struct proxy_tls *t, char *buf, size_t n);

#endif
