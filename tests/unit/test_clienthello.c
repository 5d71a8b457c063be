/*
 * test_clienthello.c - the passthrough ClientHello parser: real captured
 * hellos, built ones, hellos split over records and reads, and hostile
 * input (garbage, truncation, corrupted lengths, bad SNI, duplicates).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clienthello.h"
#include "testutil.h"

/*
 * Captured from Python's ssl module (OpenSSL 3.0) connecting with
 * server_hostname "www.example.com" and ALPN h2,http/1.1: a TLS 1.3
 * ClientHello padded to 512 bytes, in one record.
 */
static const char captured_tls13[] =
    "1603010200010001fc030375cb57a21bae30fb94602e155b518c3697e107bdba8d789b2a2e3166efcb6b"
    "07204ae49920c1d5c610fae1f0fae92f0e497002235d0dca47e60b2f5b37a670be6f0024130213031301"
    "c02cc030c02bc02fcca9cca8c024c028c023c027009f009e006b006700ff0100018f0000001400120000"
    "0f7777772e6578616d706c652e636f6d000b000403000102000a00160014001d0017001e001900180100"
    "0101010201030104002300000010000e000c02683208687474702f312e310016000000170000000d002a"
    "0028040305030603080708080809080a080b080408050806040105010601030303010302040205020602"
    "002b00050403040303002d00020101003300260024001d0020dda14b1f95ec4d0b95136c4a41c1d2b6f8"
    "d9df56646b1296b2eae2f66c61bd09001500cc0000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000";

/* The same client limited to TLS 1.2, without SNI or ALPN. */
static const char captured_tls12[] =
    "160301009d010000990303f438d27a3b84d848bcd09edcb63c0efd7f0abb8003eafd86ca162dad65e197"
    "1400001ec02cc030c02bc02fcca9cca8c024c028c023c027009f009e006b006700ff01000052000b0004"
    "03000102000a000c000a001d0017001e00190018002300000016000000170000000d002a002804030503"
    "0603080708080809080a080b080408050806040105010601030303010302040205020602";

static size_t unhex(const char *s, uint8_t *out, size_t max)
{
    size_t n = 0;
    unsigned v;

    while (s[0] != '\0' && s[1] != '\0' && n < max && sscanf(s, "%2x", &v) == 1) {
        out[n++] = (uint8_t)v;
        s += 2;
    }
    return n;
}

/* A byte builder with nested length-prefixed vectors. */
struct bld {
    uint8_t b[80000];
    size_t  len;
    size_t  vec_off[8];
    int     vec_width[8];
    int     depth;
};

static void put8(struct bld *b, unsigned v)
{
    b->b[b->len++] = (uint8_t)v;
}

static void put16(struct bld *b, unsigned v)
{
    put8(b, v >> 8);
    put8(b, v);
}

static void putn(struct bld *b, const void *p, size_t n)
{
    memcpy(b->b + b->len, p, n);
    b->len += n;
}

static void vec_open(struct bld *b, int width)
{
    b->vec_off[b->depth] = b->len;
    b->vec_width[b->depth++] = width;
    b->len += (size_t)width;
}

static void vec_close(struct bld *b)
{
    size_t off = b->vec_off[--b->depth], n;
    int w = b->vec_width[b->depth], i;

    n = b->len - off - (size_t)w;
    for (i = w - 1; i >= 0; i--, n >>= 8)
        b->b[off + (size_t)i] = (uint8_t)n;
}

struct hopts {
    const char *sni;        /* NULL: no server_name extension */
    size_t      snilen;     /* 0: strlen(sni) */
    const char *sni2;       /* a second host_name entry */
    const char *alpn[24];
    int         nalpn;
    int         tls13;      /* supported_versions with 0x0304 */
    int         no_exts;    /* no extensions block at all */
    int         dup_ext;    /* supported_groups twice */
    size_t      pad;        /* a padding extension (RFC 7685) of this many bytes */
};

static void put_host_name(struct bld *b, const char *name, size_t n)
{
    put8(b, 0);
    vec_open(b, 2);
    putn(b, name, n);
    vec_close(b);
}

/* Builds a handshake message (type, 24-bit length, body). */
static size_t build_hello(const struct hopts *o, uint8_t *out)
{
    static struct bld b;
    uint8_t random[32];
    int i;

    memset(&b, 0, sizeof(b));
    memset(random, 0xab, sizeof(random));
    put8(&b, 1);
    vec_open(&b, 3);
    put16(&b, 0x0303);
    putn(&b, random, sizeof(random));
    vec_open(&b, 1);
    putn(&b, random, 32);              /* session_id */
    vec_close(&b);
    vec_open(&b, 2);
    put16(&b, 0x1301);
    put16(&b, 0xc02f);
    vec_close(&b);
    put8(&b, 1);
    put8(&b, 0);
    if (!o->no_exts) {
        vec_open(&b, 2);
        if (o->sni != NULL) {
            put16(&b, 0);
            vec_open(&b, 2);
            vec_open(&b, 2);
            put_host_name(&b, o->sni, o->snilen ? o->snilen : strlen(o->sni));
            if (o->sni2 != NULL)
                put_host_name(&b, o->sni2, strlen(o->sni2));
            vec_close(&b);
            vec_close(&b);
        }
        put16(&b, 10);                 /* supported_groups: x25519, secp256r1 */
        vec_open(&b, 2);
        put16(&b, 4);
        put16(&b, 0x001d);
        put16(&b, 0x0017);
        vec_close(&b);
        if (o->nalpn > 0) {
            put16(&b, 16);
            vec_open(&b, 2);
            vec_open(&b, 2);
            for (i = 0; i < o->nalpn; i++) {
                vec_open(&b, 1);
                putn(&b, o->alpn[i], strlen(o->alpn[i]));
                vec_close(&b);
            }
            vec_close(&b);
            vec_close(&b);
        }
        if (o->tls13) {
            put16(&b, 43);
            vec_open(&b, 2);
            vec_open(&b, 1);
            put16(&b, 0x0304);
            put16(&b, 0x0303);
            vec_close(&b);
            vec_close(&b);
        }
        if (o->pad > 0) {
            put16(&b, 21);
            vec_open(&b, 2);
            memset(b.b + b.len, 0, o->pad);
            b.len += o->pad;
            vec_close(&b);
        }
        if (o->dup_ext) {
            put16(&b, 10);
            put16(&b, 4);
            put16(&b, 2);
            put16(&b, 0x001d);
        }
        vec_close(&b);
    }
    vec_close(&b);
    memcpy(out, b.b, b.len);
    return b.len;
}

/* Wraps a handshake message into nrec records of near-equal size. */
static size_t wrap_records(const uint8_t *msg, size_t mlen, size_t nrec, uint8_t *out)
{
    size_t chunk = (mlen + nrec - 1) / nrec, off = 0, o = 0;

    while (off < mlen) {
        size_t n = mlen - off < chunk ? mlen - off : chunk;

        out[o++] = 22;
        out[o++] = 3;
        out[o++] = 1;
        out[o++] = (uint8_t)(n >> 8);
        out[o++] = (uint8_t)n;
        memcpy(out + o, msg + off, n);
        o += n;
        off += n;
    }
    return o;
}

static uint8_t msg[80000], wire[160000];
static struct proxy_hello h;
static char why[256];

static enum proxy_hello_result parse(const uint8_t *p, size_t n)
{
    return proxy_clienthello_parse(p, n, &h, why, sizeof(why));
}

static void check_tls13_hello(void)
{
    CHECK_U64(h.record_version, 0x0301);
    CHECK_U64(h.client_version, 0x0303);
    CHECK(h.has_sni);
    CHECK_STR(h.sni, "www.example.com");
    CHECK_U64(h.nalpn, 2);
    CHECK_STR(h.alpn[0], "h2");
    CHECK_STR(h.alpn[1], "http/1.1");
    CHECK(h.offers_tls13);
}

/* Every proper prefix must ask for more; the whole must parse. */
static void check_prefixes(const uint8_t *p, size_t n)
{
    size_t i, bad = 0;

    for (i = 0; i < n; i++)
        if (parse(p, i) != PROXY_HELLO_NEED_MORE)
            bad++;
    CHECK_U64(bad, 0);
    CHECK(parse(p, n) == PROXY_HELLO_OK);
}

static void test_captured(void)
{
    size_t n, mlen, w;

    n = unhex(captured_tls13, wire, sizeof(wire));
    CHECK_U64(n, 517);
    CHECK(parse(wire, n) == PROXY_HELLO_OK);
    check_tls13_hello();

    /* Bytes after the hello (e.g. a ChangeCipherSpec) are not ours. */
    memcpy(wire + n, "\x14\x03\x03\x00\x01\x01", 6);
    CHECK(parse(wire, n + 6) == PROXY_HELLO_OK);
    CHECK_STR(h.sni, "www.example.com");

    check_prefixes(wire, n);

    /* The same message re-split into 2, 3 and one-byte records. */
    mlen = n - 5;
    memcpy(msg, wire + 5, mlen);
    w = wrap_records(msg, mlen, 2, wire);
    CHECK_U64(w, mlen + 10);
    CHECK(parse(wire, w) == PROXY_HELLO_OK);
    check_tls13_hello();
    w = wrap_records(msg, mlen, 3, wire);
    CHECK_U64(w, mlen + 15);
    CHECK(parse(wire, w) == PROXY_HELLO_OK);
    check_tls13_hello();
    check_prefixes(wire, w);
    w = wrap_records(msg, mlen, mlen, wire);
    CHECK_U64(w, mlen * 6);
    CHECK(parse(wire, w) == PROXY_HELLO_OK);
    check_tls13_hello();

    n = unhex(captured_tls12, wire, sizeof(wire));
    CHECK_U64(n, 162);
    CHECK(parse(wire, n) == PROXY_HELLO_OK);
    CHECK(!h.has_sni);
    CHECK_STR(h.sni, "");
    CHECK_U64(h.nalpn, 0);
    CHECK(!h.offers_tls13);
    check_prefixes(wire, n);
}

static size_t build_wire(const struct hopts *o, size_t nrec)
{
    size_t mlen = build_hello(o, msg);

    return wrap_records(msg, mlen, nrec, wire);
}

static void test_built(void)
{
    struct hopts o;
    size_t w;
    char long_sni[300];
    int i;

    memset(&o, 0, sizeof(o));
    o.sni = "Mixed.Case-Host_1.EXAMPLE";
    o.alpn[0] = "http/1.1";
    o.nalpn = 1;
    o.tls13 = 1;
    w = build_wire(&o, 1);
    CHECK(parse(wire, w) == PROXY_HELLO_OK);
    CHECK_STR(h.sni, "mixed.case-host_1.example");
    CHECK_U64(h.nalpn, 1);
    CHECK_STR(h.alpn[0], "http/1.1");
    CHECK(h.offers_tls13);

    /* No SNI, no ALPN, TLS 1.2 only. */
    memset(&o, 0, sizeof(o));
    w = build_wire(&o, 1);
    CHECK(parse(wire, w) == PROXY_HELLO_OK);
    CHECK(!h.has_sni);
    CHECK_U64(h.nalpn, 0);
    CHECK(!h.offers_tls13);

    /* No extensions block at all (old clients). */
    o.no_exts = 1;
    w = build_wire(&o, 1);
    CHECK(parse(wire, w) == PROXY_HELLO_OK);
    CHECK(!h.has_sni);
    o.no_exts = 0;

    /* Wildcard characters are allowed, as routing may see them. */
    o.sni = "*.example.com";
    w = build_wire(&o, 2);
    CHECK(parse(wire, w) == PROXY_HELLO_OK);
    CHECK_STR(h.sni, "*.example.com");

    /* More protocols than we keep: the first ones are kept. */
    memset(&o, 0, sizeof(o));
    for (i = 0; i < 20; i++)
        o.alpn[i] = i % 2 ? "h2" : "http/1.1";
    o.nalpn = 20;
    w = build_wire(&o, 1);
    CHECK(parse(wire, w) == PROXY_HELLO_OK);
    CHECK_U64(h.nalpn, PROXY_HELLO_ALPN_MAX);
    CHECK_STR(h.alpn[15], "h2");

    /* SNI of exactly 255 bytes is fine; 256 is not. */
    memset(&o, 0, sizeof(o));
    memset(long_sni, 'a', sizeof(long_sni));
    long_sni[255] = '\0';
    o.sni = long_sni;
    w = build_wire(&o, 1);
    CHECK(parse(wire, w) == PROXY_HELLO_OK);
    CHECK_U64(strlen(h.sni), 255);
    long_sni[255] = 'a';
    long_sni[256] = '\0';
    w = build_wire(&o, 1);
    CHECK(parse(wire, w) == PROXY_HELLO_INVALID);
    CHECK_WHY(why, "256 bytes");
    CHECK(!h.has_sni || strlen(h.sni) <= 255);

    /* Empty host_name. */
    memset(&o, 0, sizeof(o));
    o.sni = "";
    w = build_wire(&o, 1);
    CHECK(parse(wire, w) == PROXY_HELLO_INVALID);
    CHECK_WHY(why, "host_name of 0 bytes");

    /* Embedded NUL: "good.example\0.evil" must not become "good.example". */
    o.sni = "good.example\0.evil";
    o.snilen = 18;
    w = build_wire(&o, 1);
    CHECK(parse(wire, w) == PROXY_HELLO_INVALID);
    CHECK_WHY(why, "invalid byte 0x00");
    o.snilen = 0;
    o.sni = "has space.example";
    w = build_wire(&o, 1);
    CHECK(parse(wire, w) == PROXY_HELLO_INVALID);
    CHECK_WHY(why, "0x20");
    o.sni = "a/b";
    w = build_wire(&o, 1);
    CHECK(parse(wire, w) == PROXY_HELLO_INVALID);

    /* Two host_names. */
    o.sni = "one.example";
    o.sni2 = "two.example";
    w = build_wire(&o, 1);
    CHECK(parse(wire, w) == PROXY_HELLO_INVALID);
    CHECK_WHY(why, "more than one host_name");

    /* Duplicate extension. */
    memset(&o, 0, sizeof(o));
    o.dup_ext = 1;
    w = build_wire(&o, 1);
    CHECK(parse(wire, w) == PROXY_HELLO_INVALID);
    CHECK_WHY(why, "extension 10 appears twice");

    /* Empty ALPN protocol name. */
    memset(&o, 0, sizeof(o));
    o.alpn[0] = "h2";
    o.alpn[1] = "";
    o.nalpn = 2;
    w = build_wire(&o, 1);
    CHECK(parse(wire, w) == PROXY_HELLO_INVALID);
    CHECK_WHY(why, "empty ALPN");
}

static void test_records(void)
{
    struct hopts o;
    size_t w, mlen;
    uint8_t bad[16];

    memset(&o, 0, sizeof(o));
    o.sni = "example.org";
    mlen = build_hello(&o, msg);

    /* The hello must be the only thing in its last record. */
    w = wrap_records(msg, mlen, 1, wire);
    memcpy(wire + w, "\x01\x00\x00\x00", 4);
    wire[3] = (uint8_t)((mlen + 4) >> 8);
    wire[4] = (uint8_t)(mlen + 4);
    CHECK(parse(wire, w + 4) == PROXY_HELLO_INVALID);
    CHECK_WHY(why, "4 bytes past the end");
    /* ... and that is seen from the header, without waiting for them. */
    CHECK(parse(wire, 20) == PROXY_HELLO_INVALID);

    /* Something other than handshake between the fragments. */
    w = wrap_records(msg, mlen, 2, wire);
    wire[5 + (mlen + 1) / 2] = 23;
    CHECK(parse(wire, w) == PROXY_HELLO_INVALID);
    CHECK_WHY(why, "record 2 has content type 23");

    /* Record header fields. */
    memcpy(bad, "\x16\x03\x05\x00\x10", 5);
    CHECK(parse(bad, 3) == PROXY_HELLO_INVALID);
    CHECK_WHY(why, "0x0305");
    memcpy(bad, "\x16\x02\x01", 3);
    CHECK(parse(bad, 2) == PROXY_HELLO_INVALID);
    memcpy(bad, "\x16\x03\x01\x00\x00", 5);
    CHECK(parse(bad, 5) == PROXY_HELLO_INVALID);
    CHECK_WHY(why, "length 0");
    memcpy(bad, "\x16\x03\x01\x41\x01", 5);   /* 16641 = 2^14 + 257 */
    CHECK(parse(bad, 5) == PROXY_HELLO_INVALID);
    memcpy(bad, "\x16\x03\x01\x41\x00", 5);   /* 2^14 + 256 is the limit */
    CHECK(parse(bad, 5) == PROXY_HELLO_NEED_MORE);
    CHECK_U64(h.record_version, 0x0301);

    /* Handshake header: wrong type, too large, empty. */
    memcpy(bad, "\x16\x03\x01\x00\x10\x02", 6);
    CHECK(parse(bad, 6) == PROXY_HELLO_INVALID);
    CHECK_WHY(why, "not ClientHello");
    memcpy(bad, "\x16\x03\x01\x00\x10\x01\x01\x00\x01", 9);
    CHECK(parse(bad, 9) == PROXY_HELLO_INVALID);
    CHECK_WHY(why, "65537 bytes");
    memcpy(bad, "\x16\x03\x01\x00\x04\x01\x00\x00\x00", 9);
    CHECK(parse(bad, 9) == PROXY_HELLO_INVALID);

    /* The handshake header itself split across records. */
    w = wrap_records(msg, mlen, mlen / 2, wire);
    CHECK(parse(wire, w) == PROXY_HELLO_OK);
    CHECK_STR(h.sni, "example.org");
    check_prefixes(wire, w);

    CHECK(proxy_clienthello_parse(NULL, 0, &h, why, sizeof(why)) == PROXY_HELLO_NEED_MORE);
    CHECK(parse(wire, 0) == PROXY_HELLO_NEED_MORE);
}

static void test_garbage(void)
{
    static const char http[] = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
    uint8_t buf[700];
    size_t i, j, n, bad = 0;
    enum proxy_hello_result r;

    CHECK(parse((const uint8_t *)http, strlen(http)) == PROXY_HELLO_INVALID);
    CHECK_WHY(why, "not a TLS handshake record (first byte 0x47)");
    CHECK(parse((const uint8_t *)http, 1) == PROXY_HELLO_INVALID);
    CHECK(parse((const uint8_t *)"PROXY TCP4", 10) == PROXY_HELLO_INVALID);
    CHECK_WHY(why, "0x50");

    for (i = 0; i < 5000; i++) {
        n = test_rand() % sizeof(buf);
        for (j = 0; j < n; j++)
            buf[j] = (uint8_t)test_rand();
        r = parse(buf, n);
        if (r != PROXY_HELLO_INVALID && r != PROXY_HELLO_NEED_MORE)
            bad++;
    }
    CHECK_U64(bad, 0);

    /* Random bodies behind a plausible header reach the field parser. */
    for (i = 0; i < 5000; i++) {
        n = 9 + test_rand() % (sizeof(buf) - 9);
        for (j = 0; j < n; j++)
            buf[j] = (uint8_t)test_rand();
        memcpy(buf, "\x16\x03\x01", 3);
        buf[3] = (uint8_t)((n - 5) >> 8);
        buf[4] = (uint8_t)(n - 5);
        buf[5] = 1;
        buf[6] = 0;
        buf[7] = (uint8_t)((n - 9) >> 8);
        buf[8] = (uint8_t)(n - 9);
        buf[9] = 3;
        r = parse(buf, n);
        if (r != PROXY_HELLO_INVALID && r != PROXY_HELLO_OK)
            bad++;
        if (r == PROXY_HELLO_OK && (strlen(h.sni) > 255 || h.nalpn > PROXY_HELLO_ALPN_MAX))
            bad++;
    }
    CHECK_U64(bad, 0);
}

/* Corrupts every byte of a valid hello, and truncates it with the outer
 * lengths fixed up so the field parser meets the short data itself. */
static void test_mutations(void)
{
    static const uint8_t vals[] = { 0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff };
    struct hopts o;
    size_t w, mlen, i, k, bad = 0, invalid = 0;
    enum proxy_hello_result r;
    uint8_t orig;

    memset(&o, 0, sizeof(o));
    o.sni = "www.example.com";
    o.alpn[0] = "h2";
    o.alpn[1] = "http/1.1";
    o.nalpn = 2;
    o.tls13 = 1;
    w = build_wire(&o, 1);
    for (i = 0; i < w; i++) {
        orig = wire[i];
        for (k = 0; k < sizeof(vals) + 2; k++) {
            wire[i] = k < sizeof(vals) ? vals[k] : (uint8_t)(orig + (k == sizeof(vals) ? 1 : -1));
            r = parse(wire, w);
            if (r != PROXY_HELLO_OK && r != PROXY_HELLO_NEED_MORE && r != PROXY_HELLO_INVALID)
                bad++;
            if (r == PROXY_HELLO_INVALID) {
                invalid++;
                if (why[0] == '\0')
                    bad++;
            }
        }
        wire[i] = orig;
    }
    CHECK_U64(bad, 0);
    CHECK(invalid > w);
    CHECK(parse(wire, w) == PROXY_HELLO_OK);

    /* The same corruption over a hello split into 3 records. */
    mlen = build_hello(&o, msg);
    w = wrap_records(msg, mlen, 3, wire);
    for (i = 0; i < w; i++) {
        orig = wire[i];
        wire[i] = (uint8_t)(orig ^ 0x80);
        r = parse(wire, w);
        if (r != PROXY_HELLO_OK && r != PROXY_HELLO_NEED_MORE && r != PROXY_HELLO_INVALID)
            bad++;
        wire[i] = orig;
    }
    CHECK_U64(bad, 0);

    /* Truncated bodies under consistent headers are never "need more". */
    for (k = 1; k < mlen - 4; k++) {
        uint8_t *m = wire + 5;

        memcpy(m, msg, 4 + k);
        m[1] = (uint8_t)(k >> 16);
        m[2] = (uint8_t)(k >> 8);
        m[3] = (uint8_t)k;
        memcpy(wire, "\x16\x03\x01", 3);
        wire[3] = (uint8_t)((k + 4) >> 8);
        wire[4] = (uint8_t)(k + 4);
        r = parse(wire, 9 + k);
        if (r == PROXY_HELLO_NEED_MORE)
            bad++;
        /* Only a cut just before the extensions leaves a valid hello. */
        if (r == PROXY_HELLO_OK && h.has_sni)
            bad++;
    }
    CHECK_U64(bad, 0);
}

/*
 * Feeds wire[0..n) to a reader in pieces of `step` bytes (0: random sizes),
 * each time from a fresh copy of everything so far, as a connection's
 * growing buffer may move.  Returns the last result; *calls counts feeds.
 */
static enum proxy_hello_result feed_pieces(struct proxy_hello_reader *r, const uint8_t *p,
                                           size_t n, size_t step, size_t *calls)
{
    enum proxy_hello_result res = PROXY_HELLO_NEED_MORE;
    size_t len = 0;

    *calls = 0;
    proxy_clienthello_init(r);
    while (res == PROXY_HELLO_NEED_MORE && len < n) {
        size_t k = step ? step : 1 + test_rand() % 700;
        uint8_t *copy;

        len = len + k < n ? len + k : n;
        copy = malloc(len);
        if (copy == NULL)
            return PROXY_HELLO_INVALID;
        memcpy(copy, p, len);
        res = proxy_clienthello_feed(r, copy, len, why, sizeof(why));
        (*calls)++;
        if (res == PROXY_HELLO_OK)
            res = proxy_clienthello_decode(r, copy, &h, why, sizeof(why));
        free(copy);
    }
    return res;
}

/* The reader fed piece by piece reaches the same result as one parse, and
 * asks for more until the last byte of the message. */
static void test_incremental(void)
{
    struct proxy_hello_reader r;
    size_t n, w, mlen, calls, step;

    n = unhex(captured_tls13, wire, sizeof(wire));
    mlen = n - 5;
    memcpy(msg, wire + 5, mlen);
    for (step = 0; step <= 7; step++) {
        CHECK(feed_pieces(&r, wire, n, step, &calls) == PROXY_HELLO_OK);
        check_tls13_hello();
        CHECK(r.body == NULL);              /* one record: read in place */
        if (step == 1)
            CHECK_U64(calls, n);
        proxy_clienthello_release(&r);

        w = wrap_records(msg, mlen, 3, wire);
        CHECK(feed_pieces(&r, wire, w, step, &calls) == PROXY_HELLO_OK);
        check_tls13_hello();
        CHECK(r.body != NULL);              /* split: joined in a copy */
        CHECK_U64(r.nrec, 3);
        proxy_clienthello_release(&r);
        CHECK(r.body == NULL);

        w = wrap_records(msg, mlen, mlen, wire);
        CHECK(feed_pieces(&r, wire, w, step, &calls) == PROXY_HELLO_OK);
        check_tls13_hello();
        CHECK_U64(r.nrec, mlen);
        if (step == 1)
            CHECK_U64(calls, w);
        proxy_clienthello_release(&r);
        n = unhex(captured_tls13, wire, sizeof(wire));
    }

    /* Done is done: later bytes (a ChangeCipherSpec) are not looked at. */
    proxy_clienthello_init(&r);
    memcpy(wire + n, "\x14\x03\x03\x00\x01\x01", 6);
    CHECK(proxy_clienthello_feed(&r, wire, n, why, sizeof(why)) == PROXY_HELLO_OK);
    CHECK(proxy_clienthello_feed(&r, wire, n + 6, why, sizeof(why)) == PROXY_HELLO_OK);
    CHECK(proxy_clienthello_decode(&r, wire, &h, why, sizeof(why)) == PROXY_HELLO_OK);
    check_tls13_hello();
    proxy_clienthello_release(&r);

    /* Decoding before the end, or a stream that shrank, is an error. */
    proxy_clienthello_init(&r);
    CHECK(proxy_clienthello_feed(&r, wire, 100, why, sizeof(why)) == PROXY_HELLO_NEED_MORE);
    CHECK(proxy_clienthello_decode(&r, wire, &h, why, sizeof(why)) == PROXY_HELLO_INVALID);
    CHECK_WHY(why, "incomplete");
    CHECK(proxy_clienthello_feed(&r, wire, 50, why, sizeof(why)) == PROXY_HELLO_INVALID);
    CHECK_WHY(why, "went missing");
    proxy_clienthello_release(&r);

    /* Errors are found at the byte that shows them, fed one at a time. */
    w = wrap_records(msg, mlen, 2, wire);
    wire[5 + (mlen + 1) / 2] = 23;
    CHECK(feed_pieces(&r, wire, w, 1, &calls) == PROXY_HELLO_INVALID);
    CHECK_WHY(why, "record 2 has content type 23");
    CHECK_U64(calls, 5 + (mlen + 1) / 2 + 1);
    proxy_clienthello_release(&r);
    w = wrap_records(msg, mlen, 1, wire);
    wire[3] = (uint8_t)((mlen + 4) >> 8);
    wire[4] = (uint8_t)(mlen + 4);
    CHECK(feed_pieces(&r, wire, w, 1, &calls) == PROXY_HELLO_INVALID);
    CHECK_WHY(why, "4 bytes past the end");
    CHECK_U64(calls, 9);                    /* record and handshake headers */
    proxy_clienthello_release(&r);
}

/*
 * About the largest hello that fits what a connection buffers (64 KiB) as
 * one-byte records, fed one byte at a time: 60,000 feeds over 10,000
 * records.  Each feed looks only at the new byte, so this takes well under
 * a millisecond; parsing everything again on each feed (what the parser
 * did before it kept its place) took over 3 s.
 */
static void test_linear_cost(void)
{
    struct proxy_hello_reader r;
    struct hopts o;
    size_t mlen, w, calls;
    clock_t t0;
    double secs;

    memset(&o, 0, sizeof(o));
    o.sni = "www.example.com";
    o.alpn[0] = "h2";
    o.nalpn = 1;
    o.pad = 10000;
    mlen = build_hello(&o, msg);
    CHECK(mlen > 10000);
    w = wrap_records(msg, mlen, mlen, wire);
    CHECK(w < 64 * 1024);
    t0 = clock();
    proxy_clienthello_init(&r);
    for (calls = 1; calls <= w; calls++)
        if (proxy_clienthello_feed(&r, wire, calls, why, sizeof(why)) != PROXY_HELLO_NEED_MORE)
            break;
    secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    CHECK_U64(calls, w);
    CHECK(r.done);
    CHECK(proxy_clienthello_decode(&r, wire, &h, why, sizeof(why)) == PROXY_HELLO_OK);
    CHECK_STR(h.sni, "www.example.com");
    CHECK_STR(h.alpn[0], "h2");
    proxy_clienthello_release(&r);
    if (secs >= 0.25)
        fprintf(stderr, "%zu feeds of a %zu-record hello took %.3f s of CPU\n", calls, mlen,
                secs);
    CHECK(secs < 0.25);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    test_captured();
    test_built();
    test_records();
    test_garbage();
    test_mutations();
    test_incremental();
    test_linear_cost();
    return test_summary("test_clienthello");
}
