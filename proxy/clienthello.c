/*
 * clienthello.c - reassembles the TLS handshake records a client sent first
 * and parses the ClientHello in them (RFC 8446 4.1.2, RFC 6066 3, RFC 7301).
 *
 * The reader keeps its place in the client's byte stream: how far records
 * were taken, how much of the current one is left, and the message body so
 * far.  A call looks only at bytes it has not seen, so a hello costs time
 * linear in its bytes however it is fragmented; re-walking every record on
 * each read made a hello of thousands of one-byte records quadratic (an
 * attacker's way to spend the worker's CPU).  Any fragmentation the record
 * layer allows is accepted, as OpenSSL does; the caller's cap on the bytes
 * it buffers (PROXY_HELLO_MAX_BYTES) bounds the memory.  Every read of the
 * fields goes through a reader that fails instead of reading past its end.
 */
#include "clienthello.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byteorder.h"
#include "port_libc.h"

#define TLS_RECORD_HDR      5
#define TLS_RECORD_MAX      (16384u + 256u)
#define TLS_CT_HANDSHAKE    22
#define TLS_HS_HDR          4
#define TLS_HS_CLIENT_HELLO 1

#define EXT_SERVER_NAME        0
#define EXT_ALPN               16
#define EXT_SUPPORTED_VERSIONS 43

#define SNI_HOST_NAME 0

/* A bounds-checked view of bytes; a read past the end marks it failed. */
struct hreader {
    const uint8_t *p;
    size_t         len;
    size_t         off;
    int            failed;
};

static void reader_init(struct hreader *r, const uint8_t *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->off = 0;
    r->failed = 0;
}

static size_t reader_left(const struct hreader *r)
{
    return r->failed ? 0 : r->len - r->off;
}

static const uint8_t *reader_take(struct hreader *r, size_t n)
{
    const uint8_t *p;

    if (r->failed || n > r->len - r->off) {
        r->failed = 1;
        return NULL;
    }
    p = r->p + r->off;
    r->off += n;
    return p;
}

static int get_u8(struct hreader *r, unsigned *v)
{
    const uint8_t *p = reader_take(r, 1);

    *v = p != NULL ? p[0] : 0;
    return p != NULL ? 0 : -1;
}

static int get_u16(struct hreader *r, unsigned *v)
{
    const uint8_t *p = reader_take(r, 2);

    *v = p != NULL ? proxy_be16(p) : 0;
    return p != NULL ? 0 : -1;
}

/* Splits off the next n bytes as their own reader (a length-prefixed
 * vector), so nothing inside can run into what follows it. */
static int get_sub(struct hreader *r, size_t n, struct hreader *sub)
{
    const uint8_t *p = reader_take(r, n);

    reader_init(sub, p != NULL ? p : r->p, p != NULL ? n : 0);
    sub->failed = p == NULL;
    return p != NULL ? 0 : -1;
}

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

static int record_version_ok(unsigned v)
{
    return v >= 0x0301 && v <= 0x0304;
}

/*
 * Checks what is known of the handshake header so a wrong message type or
 * an oversized length fails now rather than after waiting for more bytes.
 */
static enum proxy_hello_result check_hs_hdr(struct proxy_hello_reader *r, char *why,
                                            size_t whylen)
{
    if (r->hs_hdr_have >= 1 && r->hs_hdr[0] != TLS_HS_CLIENT_HELLO) {
        why_set(why, whylen, "first handshake message is type %u, not ClientHello (1)",
                (unsigned)r->hs_hdr[0]);
        return PROXY_HELLO_INVALID;
    }
    if (r->hs_hdr_have < TLS_HS_HDR)
        return PROXY_HELLO_NEED_MORE;
    r->msg_len = proxy_be24(r->hs_hdr + 1);
    if (r->msg_len == 0) {
        why_set(why, whylen, "empty ClientHello message");
        return PROXY_HELLO_INVALID;
    }
    if (r->msg_len > PROXY_HELLO_MAX_BYTES) {
        why_set(why, whylen, "ClientHello of %zu bytes (max %u)", r->msg_len,
                PROXY_HELLO_MAX_BYTES);
        return PROXY_HELLO_INVALID;
    }
    return PROXY_HELLO_OK;
}

/*
 * Judges the record header at r->off as far as it has arrived (a plain-text
 * protocol must fail on its first byte, not after we wait for five), and
 * takes it once it is whole.
 */
static enum proxy_hello_result take_record_header(struct proxy_hello_reader *r,
                                                  const uint8_t *buf, size_t len,
                                                  char *why, size_t whylen)
{
    const uint8_t *h = buf + r->off;
    size_t avail = len - r->off, rlen;

    if (avail >= 1 && h[0] != TLS_CT_HANDSHAKE) {
        if (r->nrec == 0)
            why_set(why, whylen, "not a TLS handshake record (first byte 0x%02x)",
                    (unsigned)h[0]);
        else
            why_set(why, whylen, "record %u has content type %u before the "
                    "ClientHello was complete", r->nrec + 1, (unsigned)h[0]);
        return PROXY_HELLO_INVALID;
    }
    if (avail >= 2 && h[1] != 0x03) {
        why_set(why, whylen, "record %u has version major %u (expected 3)",
                r->nrec + 1, (unsigned)h[1]);
        return PROXY_HELLO_INVALID;
    }
    if (avail >= 3 && !record_version_ok(0x0300u | h[2])) {
        why_set(why, whylen, "record %u has version 0x03%02x (expected 0x0301..0x0304)",
                r->nrec + 1, (unsigned)h[2]);
        return PROXY_HELLO_INVALID;
    }
    if (avail < TLS_RECORD_HDR)
        return PROXY_HELLO_NEED_MORE;
    rlen = proxy_be16(h + 3);
    if (r->nrec == 0)
        r->record_version = (uint16_t)proxy_be16(h + 1);
    if (rlen == 0 || rlen > TLS_RECORD_MAX) {
        why_set(why, whylen, "record %u has length %zu (expected 1..%u)",
                r->nrec + 1, rlen, TLS_RECORD_MAX);
        return PROXY_HELLO_INVALID;
    }
    r->nrec++;
    r->off += TLS_RECORD_HDR;
    r->rec_left = rlen;
    return PROXY_HELLO_OK;
}

/* Where the body goes, decided at its first byte: a message that lies
 * whole in this record is read in place; a split one is joined in a copy. */
static enum proxy_hello_result body_place(struct proxy_hello_reader *r, size_t at,
                                          size_t rec_rest, char *why, size_t whylen)
{
    if (rec_rest == r->msg_len) {
        r->body_off = at;
        return PROXY_HELLO_OK;
    }
    if ((r->body = malloc(r->msg_len)) == NULL) {
        why_set(why, whylen, "out of memory joining a %zu-byte ClientHello", r->msg_len);
        return PROXY_HELLO_INVALID;
    }
    return PROXY_HELLO_OK;
}

/*
 * Takes what has arrived of the current record into the handshake message.
 * OK once the message is complete; NEED_MORE otherwise.
 */
static enum proxy_hello_result take_fragment(struct proxy_hello_reader *r, const uint8_t *buf,
                                             size_t len, char *why, size_t whylen)
{
    const uint8_t *p = buf + r->off;
    size_t n = len - r->off < r->rec_left ? len - r->off : r->rec_left, i = 0, rest, m;
    enum proxy_hello_result res;

    while (i < n && r->hs_hdr_have < TLS_HS_HDR)
        r->hs_hdr[r->hs_hdr_have++] = p[i++];
    res = check_hs_hdr(r, why, whylen);
    if (res == PROXY_HELLO_OK) {
        /* A ClientHello is alone in its flight: extra handshake bytes in
         * its last record are not something we can pass on safely.  (What
         * is left of the record and of the message shrink together, so
         * this is known as soon as the record header is.) */
        rest = r->rec_left - i;
        if (rest > r->msg_len - r->have) {
            why_set(why, whylen, "record %u carries %zu bytes past the end of the "
                    "ClientHello", r->nrec, rest - (r->msg_len - r->have));
            return PROXY_HELLO_INVALID;
        }
        m = n - i;
        if (m > 0 && r->have == 0 &&
            body_place(r, r->off + i, rest, why, whylen) == PROXY_HELLO_INVALID)
            return PROXY_HELLO_INVALID;
        if (m > 0 && r->body != NULL)
            memcpy(r->body + r->have, p + i, m);
        r->have += m;
    }
    if (res == PROXY_HELLO_INVALID)
        return res;
    r->off += n;
    r->rec_left -= n;
    if (res == PROXY_HELLO_OK && r->have == r->msg_len) {
        r->done = 1;
        return PROXY_HELLO_OK;
    }
    return PROXY_HELLO_NEED_MORE;
}

void proxy_clienthello_init(struct proxy_hello_reader *r)
{
    memset(r, 0, sizeof(*r));
}

void proxy_clienthello_release(struct proxy_hello_reader *r)
{
    free(r->body);
    r->body = NULL;
}

enum proxy_hello_result proxy_clienthello_feed(struct proxy_hello_reader *r, const uint8_t *buf,
                                               size_t len, char *why, size_t whylen)
{
    enum proxy_hello_result res;

    if (why != NULL && whylen > 0)
        why[0] = '\0';
    if (r->done)
        return PROXY_HELLO_OK;
    if (buf == NULL)
        len = 0;
    if (len < r->off) {
        why_set(why, whylen, "ClientHello bytes went missing (%zu after %zu)", len, r->off);
        return PROXY_HELLO_INVALID;
    }
    for (;;) {
        if (r->rec_left == 0 &&
            (res = take_record_header(r, buf, len, why, whylen)) != PROXY_HELLO_OK)
            return res;
        res = take_fragment(r, buf, len, why, whylen);
        if (res != PROXY_HELLO_NEED_MORE || r->off == len)
            return res;
    }
}

static int sni_char_ok(unsigned c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_' || c == '*';
}

static enum proxy_hello_result parse_sni(struct hreader *ext, struct proxy_hello *out,
                                         char *why, size_t whylen)
{
    struct hreader list;
    unsigned listlen, type, n, i;

    if (get_u16(ext, &listlen) == -1 || listlen != reader_left(ext) || listlen == 0) {
        why_set(why, whylen, "server_name list length does not match its extension");
        return PROXY_HELLO_INVALID;
    }
    get_sub(ext, listlen, &list);
    while (reader_left(&list) > 0) {
        const uint8_t *name;

        if (get_u8(&list, &type) == -1 || get_u16(&list, &n) == -1 ||
            (name = reader_take(&list, n)) == NULL) {
            why_set(why, whylen, "server_name entry overruns its list");
            return PROXY_HELLO_INVALID;
        }
        /* Other name types were never defined; skipping them is what
         * RFC 6066 leaves room for. */
        if (type != SNI_HOST_NAME)
            continue;
        if (out->has_sni) {
            why_set(why, whylen, "server_name lists more than one host_name");
            return PROXY_HELLO_INVALID;
        }
        if (n == 0 || n > PROXY_HELLO_SNI_MAX) {
            why_set(why, whylen, "server_name host_name of %u bytes (expected 1..%d)",
                    n, PROXY_HELLO_SNI_MAX);
            return PROXY_HELLO_INVALID;
        }
        for (i = 0; i < n; i++) {
            /* Routing compares this name: a NUL or odd byte could make two
             * different names look the same to different code. */
            if (!sni_char_ok(name[i])) {
                why_set(why, whylen, "server_name host_name has invalid byte 0x%02x "
                        "at offset %u", (unsigned)name[i], i);
                return PROXY_HELLO_INVALID;
            }
            out->sni[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
        }
        out->sni[n] = '\0';
        out->has_sni = 1;
    }
    return PROXY_HELLO_OK;
}

static enum proxy_hello_result parse_alpn(struct hreader *ext, struct proxy_hello *out,
                                          char *why, size_t whylen)
{
    struct hreader list;
    unsigned listlen, n;

    if (get_u16(ext, &listlen) == -1 || listlen != reader_left(ext) || listlen < 2) {
        why_set(why, whylen, "ALPN list length does not match its extension");
        return PROXY_HELLO_INVALID;
    }
    get_sub(ext, listlen, &list);
    while (reader_left(&list) > 0) {
        const uint8_t *name;

        if (get_u8(&list, &n) == -1 || (name = reader_take(&list, n)) == NULL) {
            why_set(why, whylen, "ALPN protocol name overruns its list");
            return PROXY_HELLO_INVALID;
        }
        if (n == 0) {
            why_set(why, whylen, "empty ALPN protocol name");
            return PROXY_HELLO_INVALID;
        }
        /* Names are kept as C strings, so a NUL would hide the rest. */
        if (memchr(name, '\0', n) != NULL) {
            why_set(why, whylen, "ALPN protocol name contains a NUL byte");
            return PROXY_HELLO_INVALID;
        }
        if (out->nalpn < PROXY_HELLO_ALPN_MAX) {
            memcpy(out->alpn[out->nalpn], name, n);
            out->alpn[out->nalpn][n] = '\0';
            out->nalpn++;
        }
    }
    return PROXY_HELLO_OK;
}

static enum proxy_hello_result parse_versions(struct hreader *ext, struct proxy_hello *out,
                                              char *why, size_t whylen)
{
    unsigned n, v;

    if (get_u8(ext, &n) == -1 || n != reader_left(ext) || n < 2 || n % 2 != 0) {
        why_set(why, whylen, "supported_versions list length does not match its extension");
        return PROXY_HELLO_INVALID;
    }
    while (get_u16(ext, &v) == 0)
        if (v == 0x0304)
            out->offers_tls13 = 1;
    return PROXY_HELLO_OK;
}

static enum proxy_hello_result parse_extensions(struct hreader *r, struct proxy_hello *out,
                                                char *why, size_t whylen)
{
    /* One bit per extension type, to refuse duplicates (RFC 8446 4.2). */
    uint8_t seen[65536 / 8];
    struct hreader exts, ext;
    unsigned total, type, n;
    enum proxy_hello_result res;

    if (get_u16(r, &total) == -1 || total != reader_left(r)) {
        why_set(why, whylen, "extensions length %u does not match the %zu bytes left "
                "in the ClientHello", total, reader_left(r));
        return PROXY_HELLO_INVALID;
    }
    get_sub(r, total, &exts);
    memset(seen, 0, sizeof(seen));
    while (reader_left(&exts) > 0) {
        if (get_u16(&exts, &type) == -1 || get_u16(&exts, &n) == -1 ||
            get_sub(&exts, n, &ext) == -1) {
            why_set(why, whylen, "extension overruns the extensions block");
            return PROXY_HELLO_INVALID;
        }
        if (seen[type / 8] & (1u << (type % 8))) {
            why_set(why, whylen, "extension %u appears twice", type);
            return PROXY_HELLO_INVALID;
        }
        seen[type / 8] |= (uint8_t)(1u << (type % 8));
        switch (type) {
        case EXT_SERVER_NAME:
            res = parse_sni(&ext, out, why, whylen);
            break;
        case EXT_ALPN:
            res = parse_alpn(&ext, out, why, whylen);
            break;
        case EXT_SUPPORTED_VERSIONS:
            res = parse_versions(&ext, out, why, whylen);
            break;
        default:
            res = PROXY_HELLO_OK;
            break;
        }
        if (res != PROXY_HELLO_OK)
            return res;
    }
    return PROXY_HELLO_OK;
}

static enum proxy_hello_result parse_body(const uint8_t *p, size_t len, struct proxy_hello *out,
                                          char *why, size_t whylen)
{
    struct hreader r;
    unsigned v, n;

    reader_init(&r, p, len);
    if (get_u16(&r, &v) == -1 || reader_take(&r, 32) == NULL) {
        why_set(why, whylen, "ClientHello too short for version and random");
        return PROXY_HELLO_INVALID;
    }
    if (v >> 8 != 3) {
        why_set(why, whylen, "ClientHello legacy_version 0x%04x is not SSL 3/TLS", v);
        return PROXY_HELLO_INVALID;
    }
    out->client_version = (uint16_t)v;
    if (get_u8(&r, &n) == -1 || n > 32 || reader_take(&r, n) == NULL) {
        why_set(why, whylen, "bad session_id (length %u, max 32)", n);
        return PROXY_HELLO_INVALID;
    }
    if (get_u16(&r, &n) == -1 || n < 2 || n % 2 != 0 || reader_take(&r, n) == NULL) {
        why_set(why, whylen, "bad cipher_suites (length %u, must be even, >= 2 and fit)", n);
        return PROXY_HELLO_INVALID;
    }
    if (get_u8(&r, &n) == -1 || n < 1 || reader_take(&r, n) == NULL) {
        why_set(why, whylen, "bad compression_methods (length %u, must be >= 1 and fit)", n);
        return PROXY_HELLO_INVALID;
    }
    /* Extensions are optional only in the pre-TLS 1.3 sense: nothing at all. */
    if (reader_left(&r) == 0)
        return PROXY_HELLO_OK;
    return parse_extensions(&r, out, why, whylen);
}

enum proxy_hello_result proxy_clienthello_decode(const struct proxy_hello_reader *r,
                                                 const uint8_t *buf, struct proxy_hello *out,
                                                 char *why, size_t whylen)
{
    memset(out, 0, sizeof(*out));
    out->record_version = r->record_version;
    if (!r->done) {
        why_set(why, whylen, "ClientHello incomplete (%zu of %zu bytes)", r->have, r->msg_len);
        return PROXY_HELLO_INVALID;
    }
    return parse_body(r->body != NULL ? r->body : buf + r->body_off, r->msg_len, out,
                      why, whylen);
}

enum proxy_hello_result proxy_clienthello_parse(const uint8_t *buf, size_t len,
                                                struct proxy_hello *out,
                                                char *why, size_t whylen)
{
    struct proxy_hello_reader r;
    enum proxy_hello_result res;

    proxy_clienthello_init(&r);
    memset(out, 0, sizeof(*out));
    res = proxy_clienthello_feed(&r, buf, len, why, whylen);
    if (res == PROXY_HELLO_OK)
        res = proxy_clienthello_decode(&r, buf, out, why, whylen);
    out->record_version = r.record_version;
    proxy_clienthello_release(&r);
    return res;
}
