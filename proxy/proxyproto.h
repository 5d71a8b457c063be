/*
 * proxyproto.h - the PROXY protocol (HAProxy's spec, versions 1 and 2):
 * headers baton sends to backends (`send_proxy`) and parses from a front
 * load balancer (`accept_proxy`), strictly.
 */
#ifndef BATON_PROXY_PROXYPROTO_H
#define BATON_PROXY_PROXYPROTO_H

#include <stddef.h>
#include <stdint.h>

#include "port_net.h"

#define PROXY_PP_V1_MAX  107     /* longest v1 line, CRLF included */
#define PROXY_PP_MAX     4096    /* largest header baton builds or accepts */

struct proxy_pp_info {
    int                     local;      /* v2 LOCAL / v1 UNKNOWN: no addresses */
    struct sockaddr_storage src, dst;   /* AF_INET or AF_INET6 */
    socklen_t               srclen, dstlen;
    /* TLVs (v2 only): empty strings when absent. */
    char                    alpn[256];         /* PP2_TYPE_ALPN */
    char                    authority[256];    /* PP2_TYPE_AUTHORITY (SNI) */
    int                     ssl;               /* PP2_TYPE_SSL present, client used TLS */
    char                    ssl_version[32];   /* PP2_SUBTYPE_SSL_VERSION, e.g. "TLSv1.3" */
    char                    ssl_cipher[64];    /* PP2_SUBTYPE_SSL_CIPHER */
    int                     ssl_client_cert;   /* PP2_CLIENT_CERT_CONN: client sent a certificate */
};

/* Writes a header for `info`; returns its length, or 0 if it does not fit
 * or the addresses are unusable (mixed families fall back to UNKNOWN/LOCAL). */
size_t proxy_pp_encode_v1(const struct proxy_pp_info *info, char *buf, size_t n);
size_t proxy_pp_encode_v2(const struct proxy_pp_info *info, uint8_t *buf, size_t n);

enum proxy_pp_result {
    PROXY_PP_OK = 0,
    PROXY_PP_NEED_MORE,
    PROXY_PP_INVALID
};

/* Parses a v1 or v2 header at the start of buf; on OK sets *consumed to
 * the header length (the bytes after it are the client's).  A v1 line
 * longer than 107 bytes, a bad signature, unknown version/command/family,
 * or lengths that disagree are INVALID with `why`. */
enum proxy_pp_result proxy_pp_parse(const uint8_t *buf, size_t len, struct proxy_pp_info *out,
                                    size_t *consumed, char *why, size_t whylen);

#endif
