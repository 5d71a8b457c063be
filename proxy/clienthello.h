/*
 * clienthello.h - a bounds-checked parser for a TLS ClientHello, used by
 * `tls = passthrough` listeners to route by SNI (and ALPN) without
 * terminating TLS.  No OpenSSL: the bytes are only peeked at, then relayed
 * untouched.
 */
#ifndef BATON_PROXY_CLIENTHELLO_H
#define BATON_PROXY_CLIENTHELLO_H

#include <stddef.h>
#include <stdint.h>

#define PROXY_HELLO_MAX_BYTES (64u * 1024u)  /* ClientHello records we wait for */
#define PROXY_HELLO_SNI_MAX   255
#define PROXY_HELLO_ALPN_MAX  16

enum proxy_hello_result {
    PROXY_HELLO_OK = 0,       /* a complete ClientHello was parsed */
    PROXY_HELLO_NEED_MORE,    /* valid so far; more bytes are needed */
    PROXY_HELLO_INVALID       /* not a TLS ClientHello (why says what was wrong) */
};

struct proxy_hello {
    uint16_t record_version;             /* from the first record header */
    uint16_t client_version;             /* legacy_version in the ClientHello */
    int      has_sni;
    char     sni[PROXY_HELLO_SNI_MAX + 1];   /* host_name, lower-cased, NUL-terminated */
    unsigned nalpn;
    char     alpn[PROXY_HELLO_ALPN_MAX][256]; /* protocols offered, in order */
    int      offers_tls13;               /* supported_versions lists 0x0304 */
};

/*
 * Reassembles the ClientHello handshake message from the records a client
 * sends first (it may be split over several records, and the records over
 * several reads).  Each feed looks only at the bytes it has not seen yet,
 * so the cost of a hello is linear in its bytes however it is fragmented
 * (a hello sent as thousands of one-byte records included).  A message
 * that fits in one record is read where it lies; only a split one is
 * copied, into `body` (at most PROXY_HELLO_MAX_BYTES).
 */
struct proxy_hello_reader {
    size_t   off;            /* bytes of the stream taken so far */
    size_t   rec_left;       /* bytes of the current record not taken yet */
    unsigned nrec;           /* records started */
    uint16_t record_version; /* from the first record header */
    uint8_t  hs_hdr[4];      /* handshake type and 24-bit length */
    unsigned hs_hdr_have;
    size_t   msg_len;        /* body length, once hs_hdr is complete */
    size_t   have;           /* body bytes taken so far */
    size_t   body_off;       /* the body's offset in the stream, when in one record */
    uint8_t *body;           /* the joined body, when split over records */
    int      done;           /* the whole message was taken */
};

void proxy_clienthello_init(struct proxy_hello_reader *r);
/*
 * buf[0..len) is everything the client sent so far: the bytes of earlier
 * calls unchanged (the buffer may have moved), followed by new ones.  OK
 * once the whole message has arrived (then decode it), NEED_MORE while it
 * is valid so far, INVALID with `why` on any inconsistency.  Checks every
 * length; never reads outside buf[0..len).
 */
enum proxy_hello_result proxy_clienthello_feed(struct proxy_hello_reader *r, const uint8_t *buf,
                                               size_t len, char *why, size_t whylen);
/* After feed returned OK, with the same buf: the fields of the message. */
enum proxy_hello_result proxy_clienthello_decode(const struct proxy_hello_reader *r,
                                                 const uint8_t *buf, struct proxy_hello *out,
                                                 char *why, size_t whylen);
void proxy_clienthello_release(struct proxy_hello_reader *r);

/* All of the above at once, for bytes that are all there: one or more
 * handshake records carrying one ClientHello. */
enum proxy_hello_result proxy_clienthello_parse(const uint8_t *buf, size_t len,
                                                struct proxy_hello *out,
                                                char *why, size_t whylen);

#endif
