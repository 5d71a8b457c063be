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
 * Parses buf[0..len): one or more TLS records of content type handshake
 * (22) that together carry one ClientHello handshake message (it may be
 * split over several records, and the records over several reads).
 * Everything is length-checked; any inconsistency is INVALID with `why`.
 */
enum proxy_hello_result proxy_clienthello_parse(const uint8_t *buf, size_t len,
                                                struct proxy_hello *out,
                                                char *why, size_t whylen);

#endif
