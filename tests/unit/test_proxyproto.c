/*
 * test_proxyproto.c - PROXY protocol v1/v2: byte-exact encodings, round
 * trips, truncation, exact consumption, and strict refusal of bad headers
 * and garbage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "port_net.h"
#include "proxyproto.h"
#include "testutil.h"

static const uint8_t sig[12] = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
};

static struct proxy_pp_info out;
static size_t consumed;
static char why[256];

static enum proxy_pp_result parse(const void *p, size_t n)
{
    return proxy_pp_parse(p, n, &out, &consumed, why, sizeof(why));
}

static enum proxy_pp_result parse_str(const char *s)
{
    return parse(s, strlen(s));
}

static void set_addr(struct sockaddr_storage *ss, socklen_t *len, const char *ip, unsigned port)
{
    memset(ss, 0, sizeof(*ss));
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, ip, &s6->sin6_addr) != 1)
            abort();
        *len = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, ip, &s4->sin_addr) != 1)
            abort();
        *len = sizeof(*s4);
    }
}

static void mkinfo(struct proxy_pp_info *i, const char *src, unsigned sport,
                   const char *dst, unsigned dport)
{
    memset(i, 0, sizeof(*i));
    set_addr(&i->src, &i->srclen, src, sport);
    set_addr(&i->dst, &i->dstlen, dst, dport);
}

/* "ip port" of a parsed address, for comparisons. */
static const char *addr_str(const struct sockaddr_storage *ss)
{
    static char buf[2][80];
    static int which;
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    char *b = buf[which ^= 1];

    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        port = ntohs(s4->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        port = ntohs(s6->sin6_port);
    }
    snprintf(b, sizeof(buf[0]), "%s %u", ip, port);
    return b;
}

static void test_v1_encode(void)
{
    struct proxy_pp_info i;
    char buf[PROXY_PP_V1_MAX + 1];
    size_t n;

    mkinfo(&i, "192.0.2.1", 56324, "198.51.100.2", 443);
    n = proxy_pp_encode_v1(&i, buf, sizeof(buf));
    CHECK_STR(buf, "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n");
    CHECK_U64(n, strlen(buf));

    mkinfo(&i, "2001:db8::1", 0, "2001:db8::2", 65535);
    n = proxy_pp_encode_v1(&i, buf, sizeof(buf));
    CHECK_STR(buf, "PROXY TCP6 2001:db8::1 2001:db8::2 0 65535\r\n");
    CHECK_U64(n, strlen(buf));

    /* The longest possible line still fits in 107 bytes. */
    mkinfo(&i, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535,
           "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
    n = proxy_pp_encode_v1(&i, buf, sizeof(buf));
    CHECK_U64(n, 104);
    CHECK(parse(buf, n) == PROXY_PP_OK);
    CHECK_U64(consumed, 104);

    i.local = 1;
    n = proxy_pp_encode_v1(&i, buf, sizeof(buf));
    CHECK_STR(buf, "PROXY UNKNOWN\r\n");
    CHECK_U64(n, 15);

    /* Mixed families cannot be said in v1: UNKNOWN. */
    mkinfo(&i, "192.0.2.1", 1, "2001:db8::2", 2);
    n = proxy_pp_encode_v1(&i, buf, sizeof(buf));
    CHECK_STR(buf, "PROXY UNKNOWN\r\n");

    /* Too small a buffer: nothing, not a truncated line. */
    mkinfo(&i, "192.0.2.1", 56324, "198.51.100.2", 443);
    CHECK_U64(proxy_pp_encode_v1(&i, buf, 45), 0);
    CHECK_U64(proxy_pp_encode_v1(&i, buf, 46), 45);

    /* A length shorter than the family's address is unusable. */
    i.srclen = 4;
    CHECK_U64(proxy_pp_encode_v1(&i, buf, sizeof(buf)), 0);
}

static void test_v1_parse(void)
{
    static const char *const bad[] = {
        "PROXY TCP4  192.0.2.1 198.51.100.2 1 2\r\n",     /* double space */
        "PROXY  TCP4 192.0.2.1 198.51.100.2 1 2\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 1 2 \r\n",     /* trailing space */
        "PROXY TCP4 192.0.2.1 198.51.100.2 1 65536\r\n",  /* port too large */
        "PROXY TCP4 192.0.2.1 198.51.100.2 1 100000\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 +1 2\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 -1 2\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 0x10 2\r\n",
        "PROXY TCP4 2001:db8::1 2001:db8::2 1 2\r\n",     /* IPv6 with TCP4 */
        "PROXY TCP6 192.0.2.1 198.51.100.2 1 2\r\n",      /* IPv4 with TCP6 */
        "PROXY TCP4 192.0.2.1 198.51.100.2 1\r\n",        /* missing field */
        "PROXY TCP4 192.0.2.1 198.51.100.2\r\n",
        "PROXY TCP4\r\n",
        "PROXY \r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 1 2 3\r\n",    /* extra field */
        "PROXY TCP4 192.0.2.256 198.51.100.2 1 2\r\n",
        "PROXY TCP4 192.0.2 198.51.100.2 1 2\r\n",
        "PROXY TCP5 192.0.2.1 198.51.100.2 1 2\r\n",
        "PROXY tcp4 192.0.2.1 198.51.100.2 1 2\r\n",
        "PROXY UNKNOWNX\r\n",
        "PROXY TCP4\t192.0.2.1 198.51.100.2 1 2\r\n",
    };
    static const char nul_line[] = "PROXY TCP4 192.0.2.1\0 198.51.100.2 1 2\r\n";
    static const char good[] = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET / HTTP/1.1\r\n";
    char line[200];
    size_t i, hdr = strlen("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"), premature = 0;

    CHECK(parse_str(good) == PROXY_PP_OK);
    CHECK_U64(consumed, hdr);
    CHECK(!out.local);
    CHECK_STR(addr_str(&out.src), "192.0.2.1 56324");
    CHECK_STR(addr_str(&out.dst), "198.51.100.2 443");
    CHECK_U64(out.srclen, sizeof(struct sockaddr_in));

    CHECK(parse_str("PROXY TCP6 2001:db8::1 ::ffff:192.0.2.1 1 2\r\n") == PROXY_PP_OK);
    CHECK_STR(addr_str(&out.src), "2001:db8::1 1");
    CHECK_STR(addr_str(&out.dst), "::ffff:192.0.2.1 2");
    CHECK_U64(out.dstlen, sizeof(struct sockaddr_in6));

    CHECK(parse_str("PROXY UNKNOWN\r\n") == PROXY_PP_OK);
    CHECK(out.local);
    CHECK_U64(consumed, 15);
    CHECK(parse_str("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nabc") == PROXY_PP_OK);
    CHECK(out.local);
    CHECK_U64(consumed, 35);

    /* Every prefix before the CRLF waits for more. */
    for (i = 0; i < hdr; i++)
        if (parse(good, i) != PROXY_PP_NEED_MORE)
            premature++;
    CHECK_U64(premature, 0);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse_str(bad[i]) != PROXY_PP_INVALID) {
            test_check(0, __FILE__, __LINE__, "bad v1 line is INVALID");
            fprintf(stderr, "    line: %s\n", bad[i]);
        } else if (why[0] == '\0') {
            test_check(0, __FILE__, __LINE__, "INVALID has a why");
        } else {
            test_check(1, __FILE__, __LINE__, "bad v1 line");
        }
    }
    CHECK(parse(nul_line, sizeof(nul_line) - 1) == PROXY_PP_INVALID);
    CHECK(parse_str(bad[3]) == PROXY_PP_INVALID);
    CHECK_WHY(why, "port");
    CHECK(parse_str(bad[8]) == PROXY_PP_INVALID);
    CHECK_WHY(why, "IPv4");
    CHECK(parse_str(bad[0]) == PROXY_PP_INVALID);
    CHECK_WHY(why, "single spaces");

    /* 107 bytes with the CRLF is the limit; without a CRLF by then, INVALID. */
    memset(line, 'x', sizeof(line));
    memcpy(line, "PROXY UNKNOWN ", 14);
    memcpy(line + 105, "\r\n", 2);
    CHECK(parse(line, 107) == PROXY_PP_OK);
    CHECK_U64(consumed, 107);
    line[105] = 'x';
    memcpy(line + 106, "\r\n", 2);
    CHECK(parse(line, 108) == PROXY_PP_INVALID);
    CHECK_WHY(why, "no CRLF within 107 bytes");
    CHECK(parse(line, 107) == PROXY_PP_INVALID);
    CHECK(parse(line, 106) == PROXY_PP_NEED_MORE);
    CHECK(parse(line, sizeof(line)) == PROXY_PP_INVALID);
}

static void test_v2_encode(void)
{
    static const uint8_t want4[] = {
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
        0x21, 0x11, 0x00, 0x0c,
        192, 0, 2, 1,   198, 51, 100, 2,   0xdc, 0x04,   0x01, 0xbb,
    };
    static const uint8_t want_tlv[] = {
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
        0x21, 0x11, 0x00, 0x48,
        192, 0, 2, 1,   198, 51, 100, 2,   0xdc, 0x04,   0x01, 0xbb,
        0x01, 0x00, 0x02, 'h', '2',
        0x02, 0x00, 0x09, 'a', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e',
        0x20, 0x00, 0x28,
            0x01, 0x00, 0x00, 0x00, 0x00,
            0x21, 0x00, 0x07, 'T', 'L', 'S', 'v', '1', '.', '3',
            0x23, 0x00, 0x16, 'T', 'L', 'S', '_', 'A', 'E', 'S', '_', '1', '2', '8', '_',
                              'G', 'C', 'M', '_', 'S', 'H', 'A', '2', '5', '6',
    };
    static const uint8_t want_local[] = {
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
        0x20, 0x00, 0x00, 0x00,
    };
    struct proxy_pp_info i;
    uint8_t buf[PROXY_PP_MAX];
    size_t n;

    mkinfo(&i, "192.0.2.1", 56324, "198.51.100.2", 443);
    n = proxy_pp_encode_v2(&i, buf, sizeof(buf));
    CHECK_U64(n, sizeof(want4));
    CHECK(n == sizeof(want4) && memcmp(buf, want4, n) == 0);

    strcpy(i.alpn, "h2");
    strcpy(i.authority, "a.example");
    i.ssl = 1;
    strcpy(i.ssl_version, "TLSv1.3");
    strcpy(i.ssl_cipher, "TLS_AES_128_GCM_SHA256");
    n = proxy_pp_encode_v2(&i, buf, sizeof(buf));
    CHECK_U64(n, sizeof(want_tlv));
    CHECK(n == sizeof(want_tlv) && memcmp(buf, want_tlv, n) == 0);

    /* Client certificate: CERT_CONN joins the SSL flag. */
    i.ssl_client_cert = 1;
    n = proxy_pp_encode_v2(&i, buf, sizeof(buf));
    CHECK_U64(n, sizeof(want_tlv));
    CHECK_U64(buf[16 + 12 + 5 + 12 + 3], 0x03);

    /* Not enough room for the TLVs: nothing. */
    CHECK_U64(proxy_pp_encode_v2(&i, buf, sizeof(want_tlv) - 1), 0);
    CHECK_U64(proxy_pp_encode_v2(&i, buf, sizeof(want_tlv)), sizeof(want_tlv));

    memset(&i, 0, sizeof(i));
    i.local = 1;
    n = proxy_pp_encode_v2(&i, buf, sizeof(buf));
    CHECK_U64(n, sizeof(want_local));
    CHECK(n == sizeof(want_local) && memcmp(buf, want_local, n) == 0);

    /* Mixed families become LOCAL. */
    mkinfo(&i, "192.0.2.1", 1, "2001:db8::1", 2);
    n = proxy_pp_encode_v2(&i, buf, sizeof(buf));
    CHECK_U64(n, 16);
    CHECK_U64(buf[12], 0x20);
    CHECK_U64(buf[13], 0x00);

    mkinfo(&i, "2001:db8::1", 1, "2001:db8::2", 2);
    n = proxy_pp_encode_v2(&i, buf, sizeof(buf));
    CHECK_U64(n, 16 + 36);
    CHECK_U64(buf[13], 0x21);
    CHECK_U64(buf[15], 36);
}

static void test_v2_roundtrip(void)
{
    struct proxy_pp_info i;
    uint8_t buf[PROXY_PP_MAX + 16];
    size_t n, k, premature = 0;

    mkinfo(&i, "192.0.2.1", 56324, "198.51.100.2", 443);
    n = proxy_pp_encode_v2(&i, buf, sizeof(buf));
    memcpy(buf + n, "\x16\x03\x01", 3);
    CHECK(parse(buf, n + 3) == PROXY_PP_OK);
    CHECK_U64(consumed, n);
    CHECK(!out.local);
    CHECK_STR(addr_str(&out.src), "192.0.2.1 56324");
    CHECK_STR(addr_str(&out.dst), "198.51.100.2 443");
    CHECK_STR(out.alpn, "");
    CHECK(!out.ssl);

    mkinfo(&i, "2001:db8::1", 1, "2001:db8:ffff::2", 65535);
    strcpy(i.alpn, "http/1.1");
    strcpy(i.authority, "www.example.com");
    i.ssl = 1;
    i.ssl_client_cert = 1;
    strcpy(i.ssl_version, "TLSv1.2");
    strcpy(i.ssl_cipher, "ECDHE-RSA-AES128-GCM-SHA256");
    n = proxy_pp_encode_v2(&i, buf, sizeof(buf));
    CHECK(n > 16 + 36);
    CHECK(parse(buf, n) == PROXY_PP_OK);
    CHECK_U64(consumed, n);
    CHECK_STR(addr_str(&out.src), "2001:db8::1 1");
    CHECK_STR(addr_str(&out.dst), "2001:db8:ffff::2 65535");
    CHECK_STR(out.alpn, "http/1.1");
    CHECK_STR(out.authority, "www.example.com");
    CHECK(out.ssl);
    CHECK(out.ssl_client_cert);
    CHECK_STR(out.ssl_version, "TLSv1.2");
    CHECK_STR(out.ssl_cipher, "ECDHE-RSA-AES128-GCM-SHA256");

    /* Every prefix waits for more; none is judged early. */
    for (k = 0; k < n; k++)
        if (parse(buf, k) != PROXY_PP_NEED_MORE)
            premature++;
    CHECK_U64(premature, 0);

    /* LOCAL with a TLV. */
    memset(&i, 0, sizeof(i));
    i.local = 1;
    strcpy(i.authority, "health");
    n = proxy_pp_encode_v2(&i, buf, sizeof(buf));
    CHECK_U64(n, 16 + 3 + 6);
    CHECK(parse(buf, n) == PROXY_PP_OK);
    CHECK(out.local);
    CHECK_STR(out.authority, "health");
    CHECK_U64(out.src.ss_family, AF_UNSPEC);

    /* Round trip through v1 too. */
    mkinfo(&i, "203.0.113.9", 8080, "192.0.2.200", 80);
    n = proxy_pp_encode_v1(&i, (char *)buf, sizeof(buf));
    CHECK(parse(buf, n) == PROXY_PP_OK);
    CHECK_STR(addr_str(&out.src), "203.0.113.9 8080");
    CHECK_STR(addr_str(&out.dst), "192.0.2.200 80");
}

/* A v2 header from raw parts after the signature. */
static size_t v2(uint8_t *buf, unsigned vercmd, unsigned fam, unsigned len,
                 const void *body, size_t blen)
{
    memcpy(buf, sig, 12);
    buf[12] = (uint8_t)vercmd;
    buf[13] = (uint8_t)fam;
    buf[14] = (uint8_t)(len >> 8);
    buf[15] = (uint8_t)len;
    if (blen > 0)
        memcpy(buf + 16, body, blen);
    return 16 + blen;
}

static void test_v2_parse(void)
{
    static const uint8_t addr4[12] = { 10, 0, 0, 1, 10, 0, 0, 2, 0x30, 0x39, 0x00, 0x50 };
    uint8_t body[600], buf[700];
    size_t n;

    /* Unknown TLVs (NOOP, custom) are skipped; known ones still filled in. */
    memcpy(body, addr4, 12);
    memcpy(body + 12, "\x04\x00\x02zz" "\xe0\x00\x00" "\x02\x00\x03" "a.b", 14);
    n = v2(buf, 0x21, 0x11, 26, body, 26);
    CHECK(parse(buf, n) == PROXY_PP_OK);
    CHECK_STR(addr_str(&out.src), "10.0.0.1 12345");
    CHECK_STR(out.authority, "a.b");
    CHECK_U64(consumed, 42);

    /* LOCAL with addresses: they are ignored. */
    n = v2(buf, 0x20, 0x11, 12, addr4, 12);
    CHECK(parse(buf, n) == PROXY_PP_OK);
    CHECK(out.local);
    CHECK_U64(consumed, 28);

    /* PROXY over UNSPEC: no addresses to take. */
    n = v2(buf, 0x21, 0x00, 0, NULL, 0);
    CHECK(parse(buf, n) == PROXY_PP_OK);
    CHECK(out.local);

    n = v2(buf, 0x11, 0x11, 12, addr4, 12);
    CHECK(parse(buf, n) == PROXY_PP_INVALID);
    CHECK_WHY(why, "version 1");
    n = v2(buf, 0x23, 0x11, 12, addr4, 12);
    CHECK(parse(buf, n) == PROXY_PP_INVALID);
    CHECK_WHY(why, "command 3");
    n = v2(buf, 0x21, 0x12, 12, addr4, 12);     /* UDP */
    CHECK(parse(buf, n) == PROXY_PP_INVALID);
    CHECK_WHY(why, "0x12");
    n = v2(buf, 0x21, 0x31, 12, addr4, 12);     /* AF_UNIX */
    CHECK(parse(buf, n) == PROXY_PP_INVALID);

    /* Too short for the addresses: judged from the first 16 bytes. */
    n = v2(buf, 0x21, 0x11, 11, addr4, 11);
    CHECK(parse(buf, 16) == PROXY_PP_INVALID);
    CHECK_WHY(why, "too short");
    n = v2(buf, 0x21, 0x21, 12, addr4, 12);
    CHECK(parse(buf, n) == PROXY_PP_INVALID);

    /* Longer than we accept: no waiting for 64 KiB. */
    n = v2(buf, 0x21, 0x11, 0xffff, addr4, 12);
    CHECK(parse(buf, n) == PROXY_PP_INVALID);
    CHECK_WHY(why, "max 4096");

    /* TLV overrunning the header. */
    memcpy(body + 12, "\x02\x00\x05" "abc", 6);
    n = v2(buf, 0x21, 0x11, 18, body, 18);
    CHECK(parse(buf, n) == PROXY_PP_INVALID);
    CHECK_WHY(why, "overruns");
    /* Two bytes left: not even a TLV header. */
    memcpy(body + 12, "\x02\x00", 2);
    n = v2(buf, 0x21, 0x11, 14, body, 14);
    CHECK(parse(buf, n) == PROXY_PP_INVALID);

    /* SSL TLV too short for client + verify, and a sub-TLV overrun. */
    memcpy(body + 12, "\x20\x00\x04\x01\x00\x00\x00", 7);
    n = v2(buf, 0x21, 0x11, 19, body, 19);
    CHECK(parse(buf, n) == PROXY_PP_INVALID);
    CHECK_WHY(why, "SSL TLV of 4 bytes");
    memcpy(body + 12, "\x20\x00\x09\x01\x00\x00\x00\x00\x21\x00\x05T", 12);
    n = v2(buf, 0x21, 0x11, 24, body, 24);
    CHECK(parse(buf, n) == PROXY_PP_INVALID);
    CHECK_WHY(why, "sub-TLV");
    /* SSL without the client flag: not TLS. */
    memcpy(body + 12, "\x20\x00\x05\x00\x00\x00\x00\x00", 8);
    n = v2(buf, 0x21, 0x11, 20, body, 20);
    CHECK(parse(buf, n) == PROXY_PP_OK);
    CHECK(!out.ssl);

    /* A value our field cannot hold, or one with a NUL, is refused. */
    body[12] = 0x01;
    body[13] = 0x01;
    body[14] = 0x00;
    memset(body + 15, 'a', 256);
    n = v2(buf, 0x21, 0x11, 12 + 3 + 256, body, 12 + 3 + 256);
    CHECK(parse(buf, n) == PROXY_PP_INVALID);
    CHECK_WHY(why, "ALPN");
    memcpy(body + 12, "\x02\x00\x03" "a\0b", 6);
    n = v2(buf, 0x21, 0x11, 18, body, 18);
    CHECK(parse(buf, n) == PROXY_PP_INVALID);

    /* A signature prefix waits; a wrong byte in it does not. */
    CHECK(parse(sig, 5) == PROXY_PP_NEED_MORE);
    memcpy(buf, sig, 12);
    buf[11] = 'X';
    CHECK(parse(buf, 12) == PROXY_PP_INVALID);
    CHECK(parse(buf, 11) == PROXY_PP_NEED_MORE);
    CHECK(parse(buf, 0) == PROXY_PP_NEED_MORE);
}

static void test_garbage(void)
{
    uint8_t buf[300];
    size_t i, j, n, bad = 0;
    enum proxy_pp_result r;

    CHECK(parse_str("GET / HTTP/1.1\r\nHost: x\r\n\r\n") == PROXY_PP_INVALID);
    CHECK_WHY(why, "first byte 0x47");
    CHECK(parse_str("\x16\x03\x01\x02\x00") == PROXY_PP_INVALID);
    CHECK(parse_str("PROXX") == PROXY_PP_INVALID);
    CHECK(parse_str("PROX") == PROXY_PP_NEED_MORE);
    CHECK(parse_str("proxy ") == PROXY_PP_INVALID);

    for (i = 0; i < 5000; i++) {
        n = test_rand() % sizeof(buf);
        for (j = 0; j < n; j++)
            buf[j] = (uint8_t)test_rand();
        r = parse(buf, n);
        if (r != PROXY_PP_INVALID && r != PROXY_PP_NEED_MORE)
            bad++;
    }
    CHECK_U64(bad, 0);

    /* Random bytes behind each signature reach the real parsers. */
    for (i = 0; i < 10000; i++) {
        n = 6 + test_rand() % (sizeof(buf) - 6);
        for (j = 0; j < n; j++)
            buf[j] = (uint8_t)(i % 2 ? test_rand() : ' ' + test_rand() % 95);
        if (i % 2) {
            if (n < 16)
                n = 16;
            memcpy(buf, sig, 12);
            buf[12] = (uint8_t)(0x20 | (test_rand() % 2));
            buf[14] = 0;
            buf[15] = (uint8_t)(test_rand() % (n - 15));
        } else {
            memcpy(buf, "PROXY ", 6);
            if (test_rand() % 2 && n > 8)
                memcpy(buf + n - 2, "\r\n", 2);
        }
        r = parse(buf, n);
        if (r == PROXY_PP_OK && (consumed == 0 || consumed > n))
            bad++;
        if (r == PROXY_PP_INVALID && why[0] == '\0')
            bad++;
    }
    CHECK_U64(bad, 0);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    test_v1_encode();
    test_v1_parse();
    test_v2_encode();
    test_v2_roundtrip();
    test_v2_parse();
    test_garbage();
    return test_summary("test_proxyproto");
}
