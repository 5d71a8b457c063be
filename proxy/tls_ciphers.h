/*
 * tls_ciphers.h - baton's default TLS 1.2 cipher list, and the check that
 * tells an operator when a listener's list lets connections negotiate a
 * suite whose records only OpenSSL can carry (so they cannot move at an
 * upgrade and drain instead).
 */
#ifndef BATON_PROXY_TLS_CIPHERS_H
#define BATON_PROXY_TLS_CIPHERS_H

#include <stddef.h>

#include "conf.h"

/*
 * Mozilla's "intermediate" profile for TLS 1.2: forward secrecy and AEAD
 * only (AES-GCM, ChaCha20-Poly1305), so with the defaults every connection
 * can be carried by baton's own record layer and moved at an upgrade.
 * Used by listeners (unless `tls_ciphers` is set) and by TLS backends.
 * TLS 1.3 suites are all AEAD and are not part of this list.
 */
#define PROXY_TLS_CIPHERS_DEFAULT                                                      \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                       \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                       \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                       \
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"

/* The TLS 1.2 cipher list a listener runs with: its own, else the default. */
const char *proxy_tls_ciphers_of(const struct conf_listener *l);

/*
 * With `handoff = live`, one warning per `tls = on` listener whose TLS 1.2
 * list (as OpenSSL resolves it) allows a non-AEAD suite while TLS 1.2 is
 * enabled: "FILE:LINE: warning: listener NAME: tls_ciphers allows non-AEAD
 * suites (FIRST...); ...\n", LINE being the tls_ciphers key's (or the
 * section's).  Appended to warn (NUL-terminated, cut if it is too small).
 * A list OpenSSL rejects is left to proxy_tls_check_conf, which reports it
 * as an error.
 */
void proxy_tls_ciphers_warnings(const struct conf *c, char *warn, size_t n);

#endif
