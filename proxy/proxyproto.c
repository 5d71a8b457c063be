/*
 * proxyproto.c - PROXY protocol v1/v2 encoding and strict parsing, following
 * HAProxy's proxy-protocol.txt.  A parsed header decides which client
 * address baton logs and forwards, so anything that is not exactly a valid
 * header is refused rather than guessed at.
 */
#include "proxyproto.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "byteorder.h"
#include "port_libc.h"
#include "port_net.h"

#define PP2_SIG_LEN      12
#define PP2_HDR_LEN      16
#define PP2_VERSION      0x20
#define PP2_CMD_LOCAL    0x00
#define PP2_CMD_PROXY    0x01
#define PP2_FAM_UNSPEC   0x00
#define PP2_FAM_TCP4     0x11
#define PP2_FAM_TCP6     0x21
#define PP2_ADDR4_LEN    12
#define PP2_ADDR6_LEN    36

#define PP2_TYPE_ALPN           0x01
#define PP2_TYPE_AUTHORITY      0x02
#define PP2_TYPE_SSL            0x20
#define PP2_SUBTYPE_SSL_VERSION 0x21
#define PP2_SUBTYPE_SSL_CIPHER  0x23
#define PP2_CLIENT_SSL          0x01
#define PP2_CLIENT_CERT_CONN    0x02
#define PP2_SSL_FIXED_LEN       5      /* client byte + verify u32 */

static const uint8_t pp2_sig[PP2_SIG_LEN] = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
};
static const char pp1_prefix[] = "PROXY ";
#define PP1_PREFIX_LEN (sizeof(pp1_prefix) - 1)

static void why_set(char *why, size_t whylen, const char *fmt, ...)
    PORT_PRINTF(3, 4);

static void why_set(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    if (why == NULL || whylen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

/*
 * The family both addresses share, or AF_UNSPEC when there is nothing to
 * put in a TCP4/TCP6 header; -1 when a length says the address is cut short.
 */
static int addr_family(const struct proxy_pp_info *info)
{
    int fs = info->src.ss_family, fd = info->dst.ss_family;
    socklen_t need;

    if (info->local || fs != fd || (fs != AF_INET && fs != AF_INET6))
        return AF_UNSPEC;
    need = fs == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    /* A zero length means the caller did not say; trust the family. */
    if ((info->srclen != 0 && info->srclen < need) || (info->dstlen != 0 && info->dstlen < need))
        return -1;
    return fs;
}

/* Encoding */

size_t proxy_pp_encode_v1(const struct proxy_pp_info *info, char *buf, size_t n)
{
    char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
    unsigned sport, dport;
    int fam = addr_family(info), len;

    if (fam == -1)
        return 0;
    if (fam == AF_UNSPEC) {
        len = snprintf(buf, n, "PROXY UNKNOWN\r\n");
    } else {
        if (fam == AF_INET) {
            const struct sockaddr_in *s = (const struct sockaddr_in *)&info->src;
            const struct sockaddr_in *d = (const struct sockaddr_in *)&info->dst;

            inet_ntop(AF_INET, &s->sin_addr, src, sizeof(src));
            inet_ntop(AF_INET, &d->sin_addr, dst, sizeof(dst));
            sport = ntohs(s->sin_port);
            dport = ntohs(d->sin_port);
        } else {
            const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&info->src;
            const struct sockaddr_in6 *d = (const struct sockaddr_in6 *)&info->dst;

            inet_ntop(AF_INET6, &s->sin6_addr, src, sizeof(src));
            inet_ntop(AF_INET6, &d->sin6_addr, dst, sizeof(dst));
            sport = ntohs(s->sin6_port);
            dport = ntohs(d->sin6_port);
        }
        len = snprintf(buf, n, "PROXY %s %s %s %u %u\r\n", fam == AF_INET ? "TCP4" : "TCP6",
                       src, dst, sport, dport);
    }
    if (len < 0 || (size_t)len >= n || (size_t)len > PROXY_PP_V1_MAX)
        return 0;
    return (size_t)len;
}

/* Appends one TLV; returns the new length, or 0 when it does not fit. */
static size_t tlv_put(uint8_t *buf, size_t off, size_t n, unsigned type,
                      const void *val, size_t vlen)
{
    if (vlen > 0xffff || off > n || 3 + vlen > n - off)
        return 0;
    buf[off] = (uint8_t)type;
    proxy_put_be16(buf + off + 1, (unsigned)vlen);
    if (vlen > 0)
        memcpy(buf + off + 3, val, vlen);
    return off + 3 + vlen;
}

static size_t tlv_put_str(uint8_t *buf, size_t off, size_t n, unsigned type,
                          const char *s, size_t max)
{
    return tlv_put(buf, off, n, type, s, strnlen(s, max));
}

/* The SSL TLV: client flags, verify result, then its own sub-TLVs. */
static size_t tlv_put_ssl(const struct proxy_pp_info *info, uint8_t *buf, size_t off, size_t n)
{
    uint8_t val[PP2_SSL_FIXED_LEN + 3 + sizeof(info->ssl_version) + 3 + sizeof(info->ssl_cipher)];
    size_t vlen = PP2_SSL_FIXED_LEN;

    val[0] = PP2_CLIENT_SSL | (info->ssl_client_cert ? PP2_CLIENT_CERT_CONN : 0);
    /* verify 0: a certificate, if any, was verified (no failures). */
    memset(val + 1, 0, 4);
    if (info->ssl_version[0] != '\0')
        vlen = tlv_put_str(val, vlen, sizeof(val), PP2_SUBTYPE_SSL_VERSION, info->ssl_version,
                           sizeof(info->ssl_version) - 1);
    if (vlen != 0 && info->ssl_cipher[0] != '\0')
        vlen = tlv_put_str(val, vlen, sizeof(val), PP2_SUBTYPE_SSL_CIPHER, info->ssl_cipher,
                           sizeof(info->ssl_cipher) - 1);
    if (vlen == 0)
        return 0;
    return tlv_put(buf, off, n, PP2_TYPE_SSL, val, vlen);
}

size_t proxy_pp_encode_v2(const struct proxy_pp_info *info, uint8_t *buf, size_t n)
{
    int fam = addr_family(info);
    size_t off = PP2_HDR_LEN;

    if (fam == -1)
        return 0;
    if (n > PROXY_PP_MAX)
        n = PROXY_PP_MAX;
    if (n < PP2_HDR_LEN + (fam == AF_INET ? PP2_ADDR4_LEN : fam == AF_INET6 ? PP2_ADDR6_LEN : 0))
        return 0;
    memcpy(buf, pp2_sig, PP2_SIG_LEN);
    if (fam == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)&info->src;
        const struct sockaddr_in *d = (const struct sockaddr_in *)&info->dst;

        buf[12] = PP2_VERSION | PP2_CMD_PROXY;
        buf[13] = PP2_FAM_TCP4;
        memcpy(buf + off, &s->sin_addr, 4);
        memcpy(buf + off + 4, &d->sin_addr, 4);
        memcpy(buf + off + 8, &s->sin_port, 2);    /* already network order */
        memcpy(buf + off + 10, &d->sin_port, 2);
        off += PP2_ADDR4_LEN;
    } else if (fam == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&info->src;
        const struct sockaddr_in6 *d = (const struct sockaddr_in6 *)&info->dst;

        buf[12] = PP2_VERSION | PP2_CMD_PROXY;
        buf[13] = PP2_FAM_TCP6;
        memcpy(buf + off, &s->sin6_addr, 16);
        memcpy(buf + off + 16, &d->sin6_addr, 16);
        memcpy(buf + off + 32, &s->sin6_port, 2);
        memcpy(buf + off + 34, &d->sin6_port, 2);
        off += PP2_ADDR6_LEN;
    } else {
        /* LOCAL tells the backend to use the connection's own addresses,
         * which is the honest answer when we have none to give. */
        buf[12] = PP2_VERSION | PP2_CMD_LOCAL;
        buf[13] = PP2_FAM_UNSPEC;
    }
    if (info->alpn[0] != '\0')
        off = tlv_put_str(buf, off, n, PP2_TYPE_ALPN, info->alpn, sizeof(info->alpn) - 1);
    if (off != 0 && info->authority[0] != '\0')
        off = tlv_put_str(buf, off, n, PP2_TYPE_AUTHORITY, info->authority,
                          sizeof(info->authority) - 1);
    if (off != 0 && info->ssl)
        off = tlv_put_ssl(info, buf, off, n);
    if (off == 0)
        return 0;
    proxy_put_be16(buf + 14, (unsigned)(off - PP2_HDR_LEN));
    return off;
}

/* Parsing v1 */

/* Splits a v1 line (CRLF removed) at single spaces; an empty field (two
 * spaces, or one at either end) is an error.  Returns the field count or -1. */
static int split_fields(const char *line, size_t len, const char *f[], size_t flen[], int max)
{
    size_t start = 0, i;
    int nf = 0;

    for (i = 0; i <= len; i++) {
        if (i < len && line[i] != ' ')
            continue;
        if (i == start || nf == max)
            return -1;
        f[nf] = line + start;
        flen[nf] = i - start;
        nf++;
        start = i + 1;
    }
    return nf;
}

static int field_is(const char *f, size_t flen, const char *s)
{
    return flen == strlen(s) && memcmp(f, s, flen) == 0;
}

static int parse_port(const char *f, size_t flen, in_port_t *port)
{
    unsigned v = 0;
    size_t i;

    if (flen == 0 || flen > 5)
        return -1;
    for (i = 0; i < flen; i++) {
        if (f[i] < '0' || f[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(f[i] - '0');
    }
    if (v > 65535)
        return -1;
    *port = htons((uint16_t)v);
    return 0;
}

/* inet_pton needs a NUL-terminated copy; anything longer than an address
 * can be is already wrong. */
static int parse_addr(int af, const char *f, size_t flen, void *dst)
{
    char tmp[INET6_ADDRSTRLEN];

    if (flen >= sizeof(tmp))
        return -1;
    memcpy(tmp, f, flen);
    tmp[flen] = '\0';
    return inet_pton(af, tmp, dst) == 1 ? 0 : -1;
}

static enum proxy_pp_result parse_v1_line(const char *line, size_t len, struct proxy_pp_info *out,
                                          char *why, size_t whylen)
{
    const char *f[6];
    size_t flen[6];
    in_port_t sport, dport;
    size_t i;
    int nf, af;

    /* UNKNOWN may carry anything after it; receivers must ignore it. */
    if (len >= 13 && memcmp(line, "PROXY UNKNOWN", 13) == 0 && (len == 13 || line[13] == ' ')) {
        out->local = 1;
        return PROXY_PP_OK;
    }
    /* inet_pton stops at a NUL, so one would let junk ride on an address. */
    for (i = 0; i < len; i++) {
        if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] > 0x7e) {
            why_set(why, whylen, "v1: unexpected byte 0x%02x at offset %zu",
                    (unsigned)(unsigned char)line[i], i);
            return PROXY_PP_INVALID;
        }
    }
    if (len < 11 || (memcmp(line, "PROXY TCP4 ", 11) != 0 &&
                     memcmp(line, "PROXY TCP6 ", 11) != 0)) {
        why_set(why, whylen, "v1: protocol is not TCP4, TCP6 or UNKNOWN");
        return PROXY_PP_INVALID;
    }
    nf = split_fields(line, len, f, flen, 6);
    if (nf != 6) {
        why_set(why, whylen, "v1: expected 'PROXY %.4s src dst sport dport' with single "
                "spaces", line + 6);
        return PROXY_PP_INVALID;
    }
    af = field_is(f[1], flen[1], "TCP4") ? AF_INET : AF_INET6;
    if (parse_port(f[4], flen[4], &sport) == -1 || parse_port(f[5], flen[5], &dport) == -1) {
        why_set(why, whylen, "v1: port is not a decimal number 0..65535");
        return PROXY_PP_INVALID;
    }
    if (af == AF_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)&out->src;
        struct sockaddr_in *d = (struct sockaddr_in *)&out->dst;

        if (parse_addr(AF_INET, f[2], flen[2], &s->sin_addr) == -1 ||
            parse_addr(AF_INET, f[3], flen[3], &d->sin_addr) == -1) {
            why_set(why, whylen, "v1: address is not a valid IPv4 address for TCP4");
            return PROXY_PP_INVALID;
        }
        s->sin_family = d->sin_family = AF_INET;
        s->sin_port = sport;
        d->sin_port = dport;
        out->srclen = out->dstlen = sizeof(struct sockaddr_in);
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src;
        struct sockaddr_in6 *d = (struct sockaddr_in6 *)&out->dst;

        if (parse_addr(AF_INET6, f[2], flen[2], &s->sin6_addr) == -1 ||
            parse_addr(AF_INET6, f[3], flen[3], &d->sin6_addr) == -1) {
            why_set(why, whylen, "v1: address is not a valid IPv6 address for TCP6");
            return PROXY_PP_INVALID;
        }
        s->sin6_family = d->sin6_family = AF_INET6;
        s->sin6_port = sport;
        d->sin6_port = dport;
        out->srclen = out->dstlen = sizeof(struct sockaddr_in6);
    }
    return PROXY_PP_OK;
}

static enum proxy_pp_result parse_v1(const uint8_t *buf, size_t len, struct proxy_pp_info *out,
                                     size_t *consumed, char *why, size_t whylen)
{
    size_t lim = len < PROXY_PP_V1_MAX ? len : PROXY_PP_V1_MAX, i;
    enum proxy_pp_result res;

    for (i = 0; i + 1 < lim; i++) {
        if (buf[i] == '\r' && buf[i + 1] == '\n')
            break;
    }
    if (i + 1 >= lim) {
        if (len >= PROXY_PP_V1_MAX) {
            why_set(why, whylen, "v1: no CRLF within %d bytes", PROXY_PP_V1_MAX);
            return PROXY_PP_INVALID;
        }
        return PROXY_PP_NEED_MORE;
    }
    res = parse_v1_line((const char *)buf, i, out, why, whylen);
    if (res == PROXY_PP_OK)
        *consumed = i + 2;
    return res;
}

/* Parsing v2 */

/* Copies a TLV value into a C string field; refuses what would not fit or
 * would be cut short by a NUL, since a silently shortened name lies. */
static int tlv_str(const uint8_t *v, size_t vlen, char *dst, size_t dstlen)
{
    if (vlen >= dstlen || memchr(v, '\0', vlen) != NULL)
        return -1;
    memcpy(dst, v, vlen);
    dst[vlen] = '\0';
    return 0;
}

static enum proxy_pp_result parse_ssl_tlv(const uint8_t *v, size_t vlen,
                                          struct proxy_pp_info *out, char *why, size_t whylen)
{
    size_t off = PP2_SSL_FIXED_LEN;

    if (vlen < PP2_SSL_FIXED_LEN) {
        why_set(why, whylen, "v2: SSL TLV of %zu bytes (min %d)", vlen, PP2_SSL_FIXED_LEN);
        return PROXY_PP_INVALID;
    }
    out->ssl = (v[0] & PP2_CLIENT_SSL) != 0;
    out->ssl_client_cert = (v[0] & PP2_CLIENT_CERT_CONN) != 0;
    while (off < vlen) {
        unsigned type, n;
        int bad = 0;

        if (vlen - off < 3 || (n = proxy_be16(v + off + 1)) > vlen - off - 3) {
            why_set(why, whylen, "v2: SSL sub-TLV at offset %zu overruns the SSL TLV", off);
            return PROXY_PP_INVALID;
        }
        type = v[off];
        if (type == PP2_SUBTYPE_SSL_VERSION)
            bad = tlv_str(v + off + 3, n, out->ssl_version, sizeof(out->ssl_version));
        else if (type == PP2_SUBTYPE_SSL_CIPHER)
            bad = tlv_str(v + off + 3, n, out->ssl_cipher, sizeof(out->ssl_cipher));
        if (bad) {
            why_set(why, whylen, "v2: SSL %s sub-TLV of %u bytes is too long or has a NUL",
                    type == PP2_SUBTYPE_SSL_VERSION ? "version" : "cipher", n);
            return PROXY_PP_INVALID;
        }
        off += 3 + n;
    }
    return PROXY_PP_OK;
}

static enum proxy_pp_result parse_tlvs(const uint8_t *p, size_t len, struct proxy_pp_info *out,
                                       char *why, size_t whylen)
{
    size_t off = 0;

    while (off < len) {
        const uint8_t *v;
        unsigned type, n;
        int bad = 0;

        if (len - off < 3 || (n = proxy_be16(p + off + 1)) > len - off - 3) {
            why_set(why, whylen, "v2: TLV at offset %zu overruns the header", off);
            return PROXY_PP_INVALID;
        }
        type = p[off];
        v = p + off + 3;
        switch (type) {
        case PP2_TYPE_ALPN:
            bad = tlv_str(v, n, out->alpn, sizeof(out->alpn));
            break;
        case PP2_TYPE_AUTHORITY:
            bad = tlv_str(v, n, out->authority, sizeof(out->authority));
            break;
        case PP2_TYPE_SSL:
            if (parse_ssl_tlv(v, n, out, why, whylen) != PROXY_PP_OK)
                return PROXY_PP_INVALID;
            break;
        default:
            break;      /* CRC32C, NOOP, UNIQUE_ID, NETNS, custom: not needed */
        }
        if (bad) {
            why_set(why, whylen, "v2: %s TLV of %u bytes is too long or has a NUL",
                    type == PP2_TYPE_ALPN ? "ALPN" : "authority", n);
            return PROXY_PP_INVALID;
        }
        off += 3 + n;
    }
    return PROXY_PP_OK;
}

static enum proxy_pp_result parse_v2(const uint8_t *buf, size_t len, struct proxy_pp_info *out,
                                     size_t *consumed, char *why, size_t whylen)
{
    unsigned ver = buf[12] >> 4, cmd = buf[12] & 0x0f, fam = buf[13];
    size_t hlen = proxy_be16(buf + 14), alen;
    const uint8_t *a = buf + PP2_HDR_LEN;

    /* Everything judged from the fixed 16 bytes fails before we wait. */
    if (ver != 2) {
        why_set(why, whylen, "v2: unsupported version %u (expected 2)", ver);
        return PROXY_PP_INVALID;
    }
    if (cmd != PP2_CMD_LOCAL && cmd != PP2_CMD_PROXY) {
        why_set(why, whylen, "v2: unknown command %u (expected 0 LOCAL or 1 PROXY)", cmd);
        return PROXY_PP_INVALID;
    }
    if (fam == PP2_FAM_TCP4)
        alen = PP2_ADDR4_LEN;
    else if (fam == PP2_FAM_TCP6)
        alen = PP2_ADDR6_LEN;
    else if (fam == PP2_FAM_UNSPEC)
        alen = 0;
    else {
        why_set(why, whylen, "v2: unsupported family/protocol 0x%02x (only TCP over "
                "IPv4/IPv6 or UNSPEC)", fam);
        return PROXY_PP_INVALID;
    }
    if (PP2_HDR_LEN + hlen > PROXY_PP_MAX) {
        why_set(why, whylen, "v2: header of %zu bytes (max %d)", PP2_HDR_LEN + hlen,
                PROXY_PP_MAX);
        return PROXY_PP_INVALID;
    }
    if (hlen < alen) {
        why_set(why, whylen, "v2: length %zu is too short for the %zu-byte address block",
                hlen, alen);
        return PROXY_PP_INVALID;
    }
    if (len < PP2_HDR_LEN + hlen)
        return PROXY_PP_NEED_MORE;

    /* LOCAL: addresses, if any, are to be ignored (health checks). */
    if (cmd == PP2_CMD_LOCAL || fam == PP2_FAM_UNSPEC) {
        out->local = 1;
    } else if (fam == PP2_FAM_TCP4) {
        struct sockaddr_in *s = (struct sockaddr_in *)&out->src;
        struct sockaddr_in *d = (struct sockaddr_in *)&out->dst;

        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, a, 4);
        memcpy(&d->sin_addr, a + 4, 4);
        memcpy(&s->sin_port, a + 8, 2);
        memcpy(&d->sin_port, a + 10, 2);
        out->srclen = out->dstlen = sizeof(struct sockaddr_in);
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src;
        struct sockaddr_in6 *d = (struct sockaddr_in6 *)&out->dst;

        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, a, 16);
        memcpy(&d->sin6_addr, a + 16, 16);
        memcpy(&s->sin6_port, a + 32, 2);
        memcpy(&d->sin6_port, a + 34, 2);
        out->srclen = out->dstlen = sizeof(struct sockaddr_in6);
    }
    if (parse_tlvs(a + alen, hlen - alen, out, why, whylen) != PROXY_PP_OK)
        return PROXY_PP_INVALID;
    *consumed = PP2_HDR_LEN + hlen;
    return PROXY_PP_OK;
}

static void info_clear(struct proxy_pp_info *out)
{
    memset(out, 0, sizeof(*out));
}

enum proxy_pp_result proxy_pp_parse(const uint8_t *buf, size_t len, struct proxy_pp_info *out,
                                    size_t *consumed, char *why, size_t whylen)
{
    size_t n;
    enum proxy_pp_result res;

    info_clear(out);
    *consumed = 0;
    if (why != NULL && whylen > 0)
        why[0] = '\0';
    if (buf == NULL || len == 0)
        return PROXY_PP_NEED_MORE;

    n = len < PP2_SIG_LEN ? len : PP2_SIG_LEN;
    if (memcmp(buf, pp2_sig, n) == 0) {
        if (len < PP2_HDR_LEN)
            return PROXY_PP_NEED_MORE;
        res = parse_v2(buf, len, out, consumed, why, whylen);
    } else {
        n = len < PP1_PREFIX_LEN ? len : PP1_PREFIX_LEN;
        if (memcmp(buf, pp1_prefix, n) != 0) {
            why_set(why, whylen, "no PROXY protocol header (first byte 0x%02x)",
                    (unsigned)buf[0]);
            return PROXY_PP_INVALID;
        }
        if (len < PP1_PREFIX_LEN)
            return PROXY_PP_NEED_MORE;
        res = parse_v1(buf, len, out, consumed, why, whylen);
    }
    /* A half-filled result must not be mistaken for a parsed one. */
    if (res == PROXY_PP_INVALID)
        info_clear(out);
    return res;
}
