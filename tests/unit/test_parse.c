/*
 * test_parse.c - the value parsers of conf/parse.c, table-driven.
 */
#include "conf.h"
#include "parse.h"
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#include "port_net.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

struct num_case {
    const char *in;
    int         ok;
    uint64_t    want;
};

static void test_duration(void)
{
    static const struct num_case cases[] = {
        { "0", 1, 0 },
        { "0ms", 1, 0 },
        { "250ms", 1, 250 },
        { "3s", 1, 3000 },
        { "3", 1, 3000 },
        { "5m", 1, 300000 },
        { "1h", 1, 3600000 },
        { "8760h", 1, 8760ull * 3600000 },
        { "31536000", 1, 31536000000ull },
        { "007s", 1, 7000 },
        { "8761h", 0, 0 },
        { "31536001", 0, 0 },
        { "99999999999999999999s", 0, 0 },
        { "18446744073709551616ms", 0, 0 },
        { "", 0, 0 },
        { "s", 0, 0 },
        { "ms", 0, 0 },
        { "-1s", 0, 0 },
        { "+1s", 0, 0 },
        { "5x", 0, 0 },
        { "5 s", 0, 0 },
        { " 5s", 0, 0 },
        { "5s ", 0, 0 },
        { "1.5s", 0, 0 },
        { "1m30s", 0, 0 },
        { "5S", 0, 0 },
        { "5sec", 0, 0 },
        { "5mss", 0, 0 },
        { "0x10", 0, 0 },
    };
    char why[256];
    size_t i;

    for (i = 0; i < NELEM(cases); i++) {
        uint64_t got = 12345;
        int rc = conf_parse_duration(cases[i].in, &got, why, sizeof(why));

        if (cases[i].ok) {
            CHECK(rc == 0);
            CHECK_U64(got, cases[i].want);
        } else {
            CHECK(rc == -1);
            CHECK_U64(got, 12345);      /* untouched on failure */
            CHECK(why[0] != '\0');
        }
        if ((rc == 0) != cases[i].ok)
            fprintf(stderr, "    duration input: '%s' (%s)\n", cases[i].in, why);
    }
    conf_parse_duration("5x", &(uint64_t){0}, why, sizeof(why));
    CHECK_STR(why, "invalid duration '5x' (expected a number with unit ms, s, m or h)");
    conf_parse_duration("", &(uint64_t){0}, why, sizeof(why));
    CHECK_STR(why, "empty duration (expected a number with unit ms, s, m or h)");
    conf_parse_duration("9000h", &(uint64_t){0}, why, sizeof(why));
    CHECK_STR(why, "duration '9000h' is too long (at most 8760h, one year)");
    /* why may be NULL or tiny */
    CHECK(conf_parse_duration("bad", &(uint64_t){0}, NULL, 0) == -1);
    CHECK(conf_parse_duration("bad", &(uint64_t){0}, why, 4) == -1);
    CHECK_STR(why, "inv");
}

static void test_size(void)
{
    static const struct num_case cases[] = {
        { "0", 1, 0 },
        { "512", 1, 512 },
        { "16k", 1, 16384 },
        { "16K", 1, 16384 },
        { "4m", 1, 4ull << 20 },
        { "4M", 1, 4ull << 20 },
        { "1g", 1, 1ull << 30 },
        { "1G", 1, 1ull << 30 },
        { "18446744073709551615", 1, UINT64_MAX },
        { "17179869183g", 1, 17179869183ull << 30 },
        { "17179869184g", 0, 0 },
        { "18446744073709551616", 0, 0 },
        { "18014398509481984k", 0, 0 },
        { "", 0, 0 },
        { "k", 0, 0 },
        { "-1", 0, 0 },
        { "16kb", 0, 0 },
        { "16 k", 0, 0 },
        { "16t", 0, 0 },
        { "1.5m", 0, 0 },
        { " 1", 0, 0 },
    };
    char why[256];
    size_t i;

    for (i = 0; i < NELEM(cases); i++) {
        uint64_t got = 777;
        int rc = conf_parse_size(cases[i].in, &got, why, sizeof(why));

        if (cases[i].ok) {
            CHECK(rc == 0);
            CHECK_U64(got, cases[i].want);
        } else {
            CHECK(rc == -1);
            CHECK_U64(got, 777);
        }
        if ((rc == 0) != cases[i].ok)
            fprintf(stderr, "    size input: '%s' (%s)\n", cases[i].in, why);
    }
    conf_parse_size("16x", &(uint64_t){0}, why, sizeof(why));
    CHECK_STR(why, "invalid size '16x' (expected a number with optional unit k, m or g)");
    conf_parse_size("99999999999g", &(uint64_t){0}, why, sizeof(why));
    CHECK_STR(why, "size '99999999999g' is too large");
}

static void test_uint(void)
{
    static const struct {
        const char *in;
        uint64_t    min, max;
        int         ok;
        uint64_t    want;
    } cases[] = {
        { "0", 0, 10, 1, 0 },
        { "10", 0, 10, 1, 10 },
        { "11", 0, 10, 0, 0 },
        { "0", 1, 10, 0, 0 },
        { "1", 1, 1, 1, 1 },
        { "0010", 0, 10, 1, 10 },
        { "18446744073709551615", 0, UINT64_MAX, 1, UINT64_MAX },
        { "18446744073709551616", 0, UINT64_MAX, 0, 0 },
        { "99999999999999999999999", 0, UINT64_MAX, 0, 0 },
        { "", 0, 10, 0, 0 },
        { "-1", 0, 10, 0, 0 },
        { "+1", 0, 10, 0, 0 },
        { "1 ", 0, 10, 0, 0 },
        { " 1", 0, 10, 0, 0 },
        { "1x", 0, 10, 0, 0 },
        { "0x1", 0, 10, 0, 0 },
        { "1e3", 0, 10000, 0, 0 },
    };
    char why[256];
    size_t i;

    for (i = 0; i < NELEM(cases); i++) {
        uint64_t got = 99;
        int rc = conf_parse_uint(cases[i].in, cases[i].min, cases[i].max, &got,
                                 why, sizeof(why));

        if (cases[i].ok) {
            CHECK(rc == 0);
            CHECK_U64(got, cases[i].want);
        } else {
            CHECK(rc == -1);
            CHECK_U64(got, 99);
        }
        if ((rc == 0) != cases[i].ok)
            fprintf(stderr, "    uint input: '%s' (%s)\n", cases[i].in, why);
    }
    conf_parse_uint("70", 1, 64, &(uint64_t){0}, why, sizeof(why));
    CHECK_STR(why, "number '70' is out of range (expected an integer from 1 to 64)");
    conf_parse_uint("lots", 1, 64, &(uint64_t){0}, why, sizeof(why));
    CHECK_STR(why, "invalid number 'lots' (expected an integer from 1 to 64)");
    conf_parse_uint("", 1, 64, &(uint64_t){0}, why, sizeof(why));
    CHECK_STR(why, "empty number (expected an integer from 1 to 64)");
}

static void test_address(void)
{
    static const struct {
        const char *in;
        int         ok;
        int         family;
        const char *formatted;      /* conf_format_sockaddr of the result */
    } cases[] = {
        { "127.0.0.1:8080", 1, AF_INET, "127.0.0.1:8080" },
        { "0.0.0.0:0", 1, AF_INET, "0.0.0.0:0" },
        { "*:8080", 1, AF_INET, "0.0.0.0:8080" },
        { "10.1.2.3:65535", 1, AF_INET, "10.1.2.3:65535" },
        { "[::1]:8080", 1, AF_INET6, "[::1]:8080" },
        { "[::]:443", 1, AF_INET6, "[::]:443" },
        { "[2001:db8::1]:80", 1, AF_INET6, "[2001:db8::1]:80" },
        { "[0:0:0:0:0:0:0:1]:80", 1, AF_INET6, "[::1]:80" },
        { "[::ffff:127.0.0.1]:80", 1, AF_INET6, "[::ffff:127.0.0.1]:80" },
        { "127.0.0.1:65536", 0, 0, NULL },
        { "127.0.0.1:99999999999999999999", 0, 0, NULL },
        { "127.0.0.1:-1", 0, 0, NULL },
        { "127.0.0.1:80x", 0, 0, NULL },
        { "127.0.0.1: 80", 0, 0, NULL },
        { "127.0.0.1", 0, 0, NULL },
        { "127.0.0.1:", 0, 0, NULL },
        { ":80", 0, 0, NULL },
        { "", 0, 0, NULL },
        { "localhost:80", 0, 0, NULL },
        { "127.1:80", 0, 0, NULL },
        { "256.0.0.1:80", 0, 0, NULL },
        { "1.2.3.4.5:80", 0, 0, NULL },
        { "::1:80", 0, 0, NULL },
        { "[::1]", 0, 0, NULL },
        { "[::1]:", 0, 0, NULL },
        { "[::1]80", 0, 0, NULL },
        { "[::1:80", 0, 0, NULL },
        { "::1]:80", 0, 0, NULL },
        { "[127.0.0.1]:80", 0, 0, NULL },
        { "[::g]:80", 0, 0, NULL },
        { "[]:80", 0, 0, NULL },
        { "[*]:80", 0, 0, NULL },
        { "**:80", 0, 0, NULL },
        { "[fe80::1%eth0]:80", 0, 0, NULL },
        { "127.0.0.1:80:80", 0, 0, NULL },
        { "127.0.0.1:0080", 1, AF_INET, "127.0.0.1:80" },
        /* longer than conf_addr.text can hold */
        { "127.0.0.1:00000000000000000000000000000000000000000000000000000000000000000000000080", 0, 0, NULL },
    };
    char why[256], buf[128];
    size_t i;

    for (i = 0; i < NELEM(cases); i++) {
        struct conf_addr a;
        int rc;

        memset(&a, 0xa5, sizeof(a));
        why[0] = '\0';
        rc = conf_parse_address(cases[i].in, &a, why, sizeof(why));
        if ((rc == 0) != cases[i].ok)
            fprintf(stderr, "    address input: '%s' (%s)\n", cases[i].in, why);
        if (!cases[i].ok) {
            CHECK(rc == -1);
            CHECK(why[0] != '\0');
            continue;
        }
        CHECK(rc == 0);
        CHECK(a.ss.ss_family == cases[i].family);
        CHECK((size_t)a.len == (cases[i].family == AF_INET ? sizeof(struct sockaddr_in)
                                                           : sizeof(struct sockaddr_in6)));
        CHECK_STR(a.text, cases[i].in);
        conf_format_sockaddr(&a.ss, a.len, buf, sizeof(buf));
        CHECK_STR(buf, cases[i].formatted);
    }

    conf_parse_address("127.0.0.1:65536", &(struct conf_addr){0}, why, sizeof(why));
    CHECK_STR(why, "invalid port '65536' in address '127.0.0.1:65536' (expected 0 to 65535)");
    conf_parse_address("127.0.0.1", &(struct conf_addr){0}, why, sizeof(why));
    CHECK_STR(why, "missing port in address '127.0.0.1' (expected IPV4:PORT, [IPV6]:PORT or "
                   "*:PORT, e.g. 127.0.0.1:8080)");
    conf_parse_address("::1:80", &(struct conf_addr){0}, why, sizeof(why));
    CHECK_STR(why, "IPv6 address '::1:80' must be in brackets, e.g. [::1]:8080");
    conf_parse_address("localhost:80", &(struct conf_addr){0}, why, sizeof(why));
    CHECK_STR(why, "invalid IPv4 address 'localhost' in 'localhost:80' (expected a numeric "
                   "address such as 127.0.0.1; host names are not resolved)");

    {
        struct conf_addr a;
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&a.ss;

        CHECK(conf_parse_address("*:8080", &a, NULL, 0) == 0);
        CHECK(sin->sin_addr.s_addr == htonl(INADDR_ANY));
        CHECK(ntohs(sin->sin_port) == 8080);
    }
}

static void test_format(void)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(80) };
    struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(443) };
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    struct sockaddr_storage ss = { .ss_family = AF_APPLETALK };
    char buf[128];

    inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr);
    conf_format_sockaddr(&sin, sizeof(sin), buf, sizeof(buf));
    CHECK_STR(buf, "192.0.2.7:80");
    conf_format_sockaddr(&sin, sizeof(sin) - 1, buf, sizeof(buf));
    CHECK_STR(buf, "?");

    inet_pton(AF_INET6, "2001:db8::42", &sin6.sin6_addr);
    conf_format_sockaddr(&sin6, sizeof(sin6), buf, sizeof(buf));
    CHECK_STR(buf, "[2001:db8::42]:443");

    strcpy(un.sun_path, "/run/baton/baton.sock");
    conf_format_sockaddr(&un, sizeof(un), buf, sizeof(buf));
    CHECK_STR(buf, "unix:/run/baton/baton.sock");
    conf_format_sockaddr(&un, offsetof(struct sockaddr_un, sun_path) + 4, buf, sizeof(buf));
    CHECK_STR(buf, "unix:/run");
    memset(un.sun_path, 0, sizeof(un.sun_path));
    memcpy(un.sun_path, "\0baton", 6);
    conf_format_sockaddr(&un, offsetof(struct sockaddr_un, sun_path) + 6, buf, sizeof(buf));
    CHECK_STR(buf, "unix:@baton");
    /* A full sun_path without NUL must not be over-read. */
    memset(un.sun_path, 'x', sizeof(un.sun_path));
    conf_format_sockaddr(&un, sizeof(un), buf, sizeof(buf));
    CHECK(strlen(buf) == 5 + sizeof(un.sun_path));

    conf_format_sockaddr(&ss, sizeof(ss), buf, sizeof(buf));
    CHECK_STR(buf, "?");
    conf_format_sockaddr(NULL, 0, buf, sizeof(buf));
    CHECK_STR(buf, "?");

    /* Truncates rather than overflowing. */
    conf_format_sockaddr(&sin, sizeof(sin), buf, 5);
    CHECK_STR(buf, "192.");
    conf_format_sockaddr(&sin, sizeof(sin), buf, 0);
}

int main(int argc, char **argv)
{
    test_duration();
    test_size();
    test_uint();
    test_address();
    test_format();
    return test_summary("test_parse");
}
