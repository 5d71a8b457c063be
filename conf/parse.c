/*
 * parse.c - the one parser for each kind of configuration value.
 *
 * All parsers are strict: no signs, no whitespace, no trailing text.  A
 * value that is almost right is far more likely a typo than an intent, and
 * a proxy silently running with a guessed value is worse than one that
 * refuses to start.
 */
#include "parse.h"
#include "conf.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "port_libc.h"
#include "port_net.h"

/* Values echoed back in messages are cut here so one line stays readable. */
#define QUOTE_MAX 64

/* Timers are handed to APIs that misbehave near their limits; a year is
 * far beyond any sane timeout and far below any of those limits. */
#define DURATION_MAX_MS (8760ull * 3600 * 1000)

#define DURATION_UNITS "(expected a number with unit ms, s, m or h)"
#define SIZE_UNITS     "(expected a number with optional unit k, m or g)"
#define ADDRESS_FORMS  "(expected IPV4:PORT, [IPV6]:PORT or *:PORT, e.g. 127.0.0.1:8080)"

static int fail(char *why, size_t whylen, const char *fmt, ...)
    PORT_PRINTF(3, 4);

static int fail(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    if (why != NULL && whylen > 0) {
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Length and suffix for printing a possibly huge value as '%.*s%s'. */
static int qlen(const char *s)
{
    size_t n = strlen(s);

    return n > QUOTE_MAX ? QUOTE_MAX : (int)n;
}

static const char *qmore(const char *s)
{
    return strlen(s) > QUOTE_MAX ? "..." : "";
}

int conf_scan_digits(const char **p, uint64_t *v)
{
    const char *s = *p;
    uint64_t n = 0;
    int count = 0, overflow = 0;

    for (; *s >= '0' && *s <= '9'; s++, count++) {
        unsigned d = (unsigned)(*s - '0');

        if (n > (UINT64_MAX - d) / 10)
            overflow = 1;
        else
            n = n * 10 + d;
    }
    *p = s;
    *v = n;
    return overflow ? -1 : count;
}

int conf_parse_duration(const char *s, uint64_t *ms, char *why, size_t whylen)
{
    static const struct {
        const char *unit;
        uint64_t    ms;
    } units[] = {
        { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
        { "", 1000 },   /* a bare number is seconds */
    };
    const char *p = s;
    uint64_t n;
    size_t i;
    int nd;

    if (*s == '\0')
        return fail(why, whylen, "empty duration " DURATION_UNITS);
    nd = conf_scan_digits(&p, &n);
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(p, units[i].unit) == 0)
            break;
    if (nd == 0 || i == sizeof(units) / sizeof(units[0]))
        return fail(why, whylen, "invalid duration '%.*s%s' " DURATION_UNITS,
                    qlen(s), s, qmore(s));
    if (nd < 0 || n > DURATION_MAX_MS / units[i].ms)
        return fail(why, whylen, "duration '%.*s%s' is too long (at most 8760h, one year)",
                    qlen(s), s, qmore(s));
    *ms = n * units[i].ms;
    return 0;
}

int conf_parse_size(const char *s, uint64_t *bytes, char *why, size_t whylen)
{
    const char *p = s;
    uint64_t n, mult = 1;
    int nd;

    if (*s == '\0')
        return fail(why, whylen, "empty size " SIZE_UNITS);
    nd = conf_scan_digits(&p, &n);
    if (*p != '\0') {
        switch (tolower((unsigned char)*p)) {
        case 'k': mult = 1ull << 10; break;
        case 'm': mult = 1ull << 20; break;
        case 'g': mult = 1ull << 30; break;
        default:  nd = 0; break;
        }
        if (p[1] != '\0')
            nd = 0;
    }
    if (nd == 0)
        return fail(why, whylen, "invalid size '%.*s%s' " SIZE_UNITS, qlen(s), s, qmore(s));
    if (nd < 0 || n > UINT64_MAX / mult)
        return fail(why, whylen, "size '%.*s%s' is too large", qlen(s), s, qmore(s));
    *bytes = n * mult;
    return 0;
}

int conf_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out,
                    char *why, size_t whylen)
{
    const char *p = s;
    uint64_t n;
    int nd;

    if (*s == '\0')
        return fail(why, whylen, "empty number (expected an integer from %llu to %llu)",
                    (unsigned long long)min, (unsigned long long)max);
    nd = conf_scan_digits(&p, &n);
    if (nd == 0 || *p != '\0')
        return fail(why, whylen, "invalid number '%.*s%s' (expected an integer from %llu to %llu)",
                    qlen(s), s, qmore(s), (unsigned long long)min, (unsigned long long)max);
    if (nd < 0 || n < min || n > max)
        return fail(why, whylen, "number '%.*s%s' is out of range (expected an integer from %llu to %llu)",
                    qlen(s), s, qmore(s), (unsigned long long)min, (unsigned long long)max);
    *out = n;
    return 0;
}

/* Parses the ":PORT" that must end every address. */
static int parse_port(const char *s, const char *colon, uint16_t *port,
                      char *why, size_t whylen)
{
    const char *p;
    uint64_t n;
    int nd;

    if (colon == NULL || *colon != ':' || colon[1] == '\0')
        return fail(why, whylen, "missing port in address '%.*s%s' " ADDRESS_FORMS,
                    qlen(s), s, qmore(s));
    p = colon + 1;
    nd = conf_scan_digits(&p, &n);
    if (nd <= 0 || *p != '\0' || n > 65535)
        return fail(why, whylen, "invalid port '%.*s%s' in address '%.*s%s' (expected 0 to 65535)",
                    qlen(colon + 1), colon + 1, qmore(colon + 1), qlen(s), s, qmore(s));
    *port = (uint16_t)n;
    return 0;
}

int conf_parse_address(const char *s, struct conf_addr *out, char *why, size_t whylen)
{
    char host[INET6_ADDRSTRLEN];
    const char *colon, *close;
    size_t hostlen;
    uint16_t port;

    memset(out, 0, sizeof(*out));
    if (*s == '\0')
        return fail(why, whylen, "empty address " ADDRESS_FORMS);
    if (strlen(s) >= sizeof(out->text))
        return fail(why, whylen, "address '%.*s%s' is too long " ADDRESS_FORMS,
                    qlen(s), s, qmore(s));

    if (*s == '[') {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;

        close = strchr(s, ']');
        if (close == NULL)
            return fail(why, whylen, "missing ']' in address '%s' " ADDRESS_FORMS, s);
        hostlen = (size_t)(close - s - 1);
        if (hostlen >= sizeof(host))
            return fail(why, whylen, "invalid IPv6 address in '%s' " ADDRESS_FORMS, s);
        memcpy(host, s + 1, hostlen);
        host[hostlen] = '\0';
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
            return fail(why, whylen, "invalid IPv6 address '%s' in '%s' " ADDRESS_FORMS, host, s);
        if (parse_port(s, close + 1, &port, why, whylen) < 0)
            return -1;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        out->len = sizeof(*sin6);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;

        colon = strrchr(s, ':');
        if (colon != NULL && memchr(s, ':', (size_t)(colon - s)) != NULL)
            return fail(why, whylen, "IPv6 address '%s' must be in brackets, e.g. [::1]:8080", s);
        if (strchr(s, ']') != NULL)
            return fail(why, whylen, "missing '[' in address '%s' " ADDRESS_FORMS, s);
        if (parse_port(s, colon, &port, why, whylen) < 0)
            return -1;
        hostlen = (size_t)(colon - s);
        if (hostlen >= sizeof(host))
            return fail(why, whylen, "invalid IPv4 address in '%s' " ADDRESS_FORMS, s);
        memcpy(host, s, hostlen);
        host[hostlen] = '\0';
        if (strcmp(host, "*") == 0)
            sin->sin_addr.s_addr = htonl(INADDR_ANY);
        else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
            return fail(why, whylen, "invalid IPv4 address '%s' in '%s' "
                        "(expected a numeric address such as 127.0.0.1; host names are not resolved)",
                        host, s);
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        out->len = sizeof(*sin);
    }
    /* Logs show what the operator wrote, so it can be grepped for in the file. */
    memcpy(out->text, s, strlen(s) + 1);
    return 0;
}

void conf_format_sockaddr(const void *sa, size_t salen, char *buf, size_t buflen)
{
    const struct sockaddr *s = sa;
    char host[INET6_ADDRSTRLEN];

    if (buf == NULL || buflen == 0)
        return;
    snprintf(buf, buflen, "?");
    if (s == NULL || salen < sizeof(s->sa_family))
        return;

    if (s->sa_family == AF_INET && salen >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *sin = sa;

        if (inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host)) != NULL)
            snprintf(buf, buflen, "%s:%u", host, (unsigned)ntohs(sin->sin_port));
    } else if (s->sa_family == AF_INET6 && salen >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *sin6 = sa;

        if (inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host)) != NULL)
            snprintf(buf, buflen, "[%s]:%u", host, (unsigned)ntohs(sin6->sin6_port));
    } else if (s->sa_family == AF_UNIX) {
        const struct sockaddr_un *un = sa;
        size_t off = offsetof(struct sockaddr_un, sun_path);
        size_t max = salen > sizeof(*un) ? sizeof(*un) : salen;
        size_t n = max > off ? max - off : 0;

        /* sun_path need not be NUL-terminated; an abstract name starts with NUL. */
        if (n > 0 && un->sun_path[0] == '\0')
            snprintf(buf, buflen, "unix:@%.*s", (int)strnlen(un->sun_path + 1, n - 1),
                     un->sun_path + 1);
        else
            snprintf(buf, buflen, "unix:%.*s", (int)strnlen(un->sun_path, n), un->sun_path);
    }
}
