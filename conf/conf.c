/*
 * conf.c - INI text -> struct conf, with every problem reported as
 * FILE:LINE: message.
 *
 * inih does the key = value splitting, but the handler it calls gets no line
 * number and section names truncated to 49 bytes.  So the text is fed to
 * inih through our own reader, which counts lines, handles section headers
 * itself and classifies every line; inih calls the handler for a key line
 * right after the reader returned it, so the reader's count is that line.
 *
 * Errors are collected rather than returned at the first one: an operator
 * fixing a file wants the whole list in one go.
 */
#include "conf.h"
#include "parse.h"
#include "port.h"

#include <ini.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINE_LEN_MAX     4096        /* longest line accepted, newline excluded */
#define ERRORS_MAX       100         /* beyond this, only a count is reported */
#define THREADS_MAX      64
#define CONNECTIONS_MAX  10000000
#define BACKLOG_MAX      65535
#define DEFER_ACCEPT_MAX_MS 3600000
#define WEIGHT_MAX       256
#define RETRIES_MAX      16
#define BUFFER_MIN       (1u << 10)
#define BUFFER_MAX       (1u << 20)
#define BUSY_POLL_MAX_US 1000u   /* a millisecond of spinning is past any wake-up cost */
#define LABEL_MAX        160
#define KEYS_MAX         64

#define DEFAULT_CONTROL  "/run/baton/baton.sock"

#define SYNTAX_ERROR     "syntax error (expected [section] or key = value)"
#define NAME_RULE        "(expected 1 to 63 characters from A-Z a-z 0-9 _ . -)"

enum section { SEC_NONE, SEC_GLOBAL, SEC_LISTENER, SEC_BACKEND, SEC_SKIP };

enum line_kind {
    LINE_OTHER,     /* blank, comment, header: inih calls no handler */
    LINE_KEY,       /* key = value: inih will call the handler */
    LINE_BAD        /* already reported: ignore whatever inih does with it */
};

struct error {
    int    line;
    size_t seq;         /* discovery order, to keep the sort stable */
    char  *msg;
};

/*
 * What the whole-file checks need to know beyond struct conf.  A key that
 * was present but invalid has been reported already, so "missing key"
 * checks look at whether it was written, not at whether it took effect.
 */
struct meta {
    uint64_t keys;              /* bit i: keys[i] was written */
    int      backend_line;      /* listeners: line of the backend key */
};

/* Where each bind was written, for duplicate-address messages. */
struct bind_ref {
    size_t listener;
    size_t index;
    int    line;
};

struct loader {
    const char     *path;
    const char     *pos;            /* reader cursor */
    int             lineno;         /* line most recently given to inih */
    enum line_kind  kind;           /* of that line */

    struct conf    *c;
    enum section    sec;
    size_t          cur;            /* current listener or backend */
    char            label[LABEL_MAX]; /* "[listener web]", for messages */
    int             seen[KEYS_MAX]; /* per key: line it was set at, 0 = not yet */
    int             global_line;
    size_t          listener_headers;
    struct meta    *lmeta, *bmeta;  /* per listener, per backend */
    struct bind_ref *binds;
    size_t          nbinds;

    struct error   *errs;
    size_t          nerrs, dropped;
    bool            oom;

    /* For `baton -s`, which needs [global] control even from a file that
     * is invalid elsewhere: a problem in [global], outside any section, or
     * in the structure (a header, a syntax error: keys may have landed in
     * the wrong section) makes the control path uncertain. */
    bool            structural;     /* the line being read is not a key line */
    bool            checking;       /* whole-file checks: sections are known */
    bool            global_doubt;
};

typedef int setter(struct loader *l, const char *v, char *why, size_t whylen);

struct key {
    enum section sec;
    const char  *name;
    bool         repeat;
    setter      *set;
};

static const char *const log_level_names[] = { "error", "warn", "info", "debug" };
static const char *const balance_names[] = { "roundrobin", "leastconn", "random", "source" };

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static void add_error(struct loader *l, int line, const char *fmt, ...)
    PORT_PRINTF(3, 4);
static int fail(char *why, size_t whylen, const char *fmt, ...)
    PORT_PRINTF(3, 4);

/*
 * Returns base, reallocated if needed to hold element n (it holds n now),
 * with element n zeroed; NULL if out of memory (base is then untouched).
 * Capacity is implicit: arrays only grow, doubling whenever n is a power of
 * two, so no separate capacity needs to be kept for each of them.
 */
static void *grow(void *base, size_t n, size_t size)
{
    if (n == 0 || (n & (n - 1)) == 0) {
        base = reallocarray(base, n ? n * 2 : 1, size);
        if (base == NULL)
            return NULL;
    }
    memset((char *)base + n * size, 0, size);
    return base;
}

static void add_error(struct loader *l, int line, const char *fmt, ...)
{
    char msg[CONF_ERR_MAX];
    struct error *e;
    va_list ap;

    if (!l->checking && (l->structural || (l->sec != SEC_LISTENER && l->sec != SEC_BACKEND)))
        l->global_doubt = true;
    if (l->nerrs >= ERRORS_MAX) {
        l->dropped++;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    e = grow(l->errs, l->nerrs, sizeof(*e));
    if (e == NULL) {
        l->oom = true;
        return;
    }
    l->errs = e;
    e = &l->errs[l->nerrs];
    e->line = line;
    e->seq = l->nerrs;
    e->msg = strdup(msg);
    if (e->msg == NULL) {
        l->oom = true;
        return;
    }
    l->nerrs++;
}

static int fail(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return -1;
}

static int check_name(const char *s, const char *what, char *why, size_t whylen)
{
    size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                         "0123456789_.-");

    if (n == 0 || s[n] != '\0' || n >= CONF_NAME_MAX)
        return fail(why, whylen, "invalid %s name '%.*s%s' " NAME_RULE, what,
                    CONF_NAME_MAX, s, strlen(s) > CONF_NAME_MAX ? "..." : "");
    return 0;
}

/* Index of v in names, or -1 with why listing the choices. */
static int choose(const char *v, const char *const *names, size_t n, const char *what,
                  char *why, size_t whylen)
{
    size_t i, used;

    for (i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0)
            return (int)i;
    used = (size_t)snprintf(why, whylen, "invalid %s '%.*s' (expected ", what, 64, v);
    for (i = 0; i < n && used < whylen; i++)
        used += (size_t)snprintf(why + used, whylen - used, "%s%s",
                                 i == 0 ? "" : i + 1 == n ? " or " : ", ", names[i]);
    if (used < whylen)
        snprintf(why + used, whylen - used, ")");
    return -1;
}

static int set_path(char *dst, size_t max, const char *v, char *why, size_t whylen)
{
    size_t n = strlen(v);

    if (n >= max)
        return fail(why, whylen, "path is too long (%zu bytes, at most %zu)", n, max - 1);
    memcpy(dst, v, n + 1);
    return 0;
}

static int set_string(char *dst, size_t max, const char *v, char *why, size_t whylen)
{
    size_t n = strlen(v);

    if (n >= max)
        return fail(why, whylen, "value is too long (%zu bytes, at most %zu)", n, max - 1);
    memcpy(dst, v, n + 1);
    return 0;
}

static struct conf_listener *cur_listener(struct loader *l)
{
    return &l->c->listeners[l->cur];
}

static struct conf_backend *cur_backend(struct loader *l)
{
    return &l->c->backends[l->cur];
}

/* --- [global] ---------------------------------------------------------- */

static int set_threads(struct loader *l, const char *v, char *why, size_t whylen)
{
    uint64_t n;

    if (strcmp(v, "auto") == 0) {
        l->c->global.threads = 0;
        return 0;
    }
    if (conf_parse_uint(v, 1, THREADS_MAX, &n, why, whylen) < 0)
        return fail(why, whylen, "invalid thread count '%.*s' (expected auto or an integer "
                    "from 1 to %d)", 64, v, THREADS_MAX);
    l->c->global.threads = (unsigned)n;
    return 0;
}

static int set_control(struct loader *l, const char *v, char *why, size_t whylen)
{
    l->c->global.control_line = l->lineno;
    /* It becomes a sockaddr_un, whose path is far shorter than a file path. */
    return set_path(l->c->global.control, sizeof(((struct sockaddr_un *)0)->sun_path),
                    v, why, whylen);
}

static int set_control_group(struct loader *l, const char *v, char *why, size_t whylen)
{
    const char *err = NULL;
    int rc;

    if (set_string(l->c->global.control_group, sizeof(l->c->global.control_group), v, why,
                   whylen) < 0)
        return -1;
    /* Looked up now so that a typo is a FILE:LINE error at -t, not a
     * surprise when someone is refused later. */
    rc = port_group_id(v, &l->c->global.control_gid, &err);
    if (rc < 0)
        return fail(why, whylen, "cannot look up group '%.*s': %s", 64, v, err);
    if (rc > 0)
        return fail(why, whylen, "no group named '%.*s' on this system (expected a group "
                    "name, as `getent group` lists them)", 64, v);
    return 0;
}

static int set_log_level(struct loader *l, const char *v, char *why, size_t whylen)
{
    int i = choose(v, log_level_names, NELEM(log_level_names), "log level", why, whylen);

    if (i < 0)
        return -1;
    l->c->global.log_level = (enum conf_log_level)i;
    return 0;
}

static int set_access_log(struct loader *l, const char *v, char *why, size_t whylen)
{
    return set_path(l->c->global.access_log, sizeof(l->c->global.access_log), v, why, whylen);
}

static int set_global_max_conn(struct loader *l, const char *v, char *why, size_t whylen)
{
    return conf_parse_uint(v, 1, CONNECTIONS_MAX, &l->c->global.max_connections, why, whylen);
}

static int set_drain_timeout(struct loader *l, const char *v, char *why, size_t whylen)
{
    return conf_parse_duration(v, &l->c->global.drain_timeout_ms, why, whylen);
}

static int set_upgrade_timeout(struct loader *l, const char *v, char *why, size_t whylen)
{
    uint64_t ms;

    if (conf_parse_duration(v, &ms, why, whylen) < 0)
        return -1;
    if (ms < 100)
        return fail(why, whylen, "upgrade_timeout '%.*s' is too short (expected at least 100ms)",
                    64, v);
    l->c->global.upgrade_timeout_ms = ms;
    return 0;
}

static int set_buffer_size(struct loader *l, const char *v, char *why, size_t whylen)
{
    uint64_t n;

    if (conf_parse_size(v, &n, why, whylen) < 0)
        return -1;
    if (n < BUFFER_MIN || n > BUFFER_MAX)
        return fail(why, whylen, "size '%s' is out of range (expected 1k to 1m)", v);
    l->c->global.buffer_size = n;
    return 0;
}

static int set_splice(struct loader *l, const char *v, char *why, size_t whylen)
{
    static const char *const names[] = { "off", "on" };
    int i = choose(v, names, NELEM(names), "splice setting", why, whylen);

    if (i < 0)
        return -1;
    l->c->global.splice = i == 1;
    return 0;
}

/* "off", or microseconds: "50us" (a bare number is refused, since every
 * other duration here means seconds without a unit). */
static int set_busy_poll(struct loader *l, const char *v, char *why, size_t whylen)
{
    const char *end = v;
    uint64_t us = 0;
    int nd;

    if (strcmp(v, "off") == 0) {
        l->c->global.busy_poll_us = 0;
        return 0;
    }
    nd = conf_scan_digits(&end, &us);
    if (nd == 0 || strcmp(end, "us") != 0)
        return fail(why, whylen, "invalid busy_poll '%.*s' (expected off, or microseconds "
                    "such as 50us)", 64, v);
    if (nd < 0 || us < 1 || us > BUSY_POLL_MAX_US)
        return fail(why, whylen, "busy_poll '%.*s' is out of range (expected 1us to %uus, "
                    "or off)", 64, v, (unsigned)BUSY_POLL_MAX_US);
    l->c->global.busy_poll_us = us;
    return 0;
}

static int set_handoff(struct loader *l, const char *v, char *why, size_t whylen)
{
    static const char *const names[] = { "drain", "live" };
    int i = choose(v, names, NELEM(names), "handoff setting", why, whylen);

    if (i < 0)
        return -1;
    l->c->global.handoff = i == 1 ? CONF_HANDOFF_LIVE : CONF_HANDOFF_DRAIN;
    return 0;
}

/* --- [listener NAME] --------------------------------------------------- */

static uint16_t addr_port(const struct conf_addr *a)
{
    /* sin_port and sin6_port share an offset, but say so explicitly. */
    if (a->ss.ss_family == AF_INET6)
        return ((const struct sockaddr_in6 *)&a->ss)->sin6_port;
    return ((const struct sockaddr_in *)&a->ss)->sin_port;
}

static int set_bind(struct loader *l, const char *v, char *why, size_t whylen)
{
    struct conf_listener *li = cur_listener(l);
    struct conf_addr a, *binds;
    struct bind_ref *refs;
    size_t i;

    if (conf_parse_address(v, &a, why, whylen) < 0)
        return -1;
    /* Port 0 asks the kernel for a fresh port each time, so it never clashes. */
    for (i = 0; i < l->nbinds && addr_port(&a) != 0; i++) {
        const struct bind_ref *r = &l->binds[i];
        const struct conf_addr *b = &l->c->listeners[r->listener].binds[r->index];

        if (b->len == a.len && memcmp(&b->ss, &a.ss, a.len) == 0)
            return fail(why, whylen, "address %s is already bound by listener '%s' at line %d",
                        a.text, l->c->listeners[r->listener].name, r->line);
    }
    refs = grow(l->binds, l->nbinds, sizeof(*refs));
    if (refs == NULL)
        return fail(why, whylen, "out of memory");
    l->binds = refs;
    binds = grow(li->binds, li->nbinds, sizeof(*binds));
    if (binds == NULL)
        return fail(why, whylen, "out of memory");
    li->binds = binds;
    refs[l->nbinds++] = (struct bind_ref){ .listener = l->cur, .index = li->nbinds,
                                           .line = l->lineno };
    binds[li->nbinds++] = a;
    return 0;
}

static int set_listener_backend(struct loader *l, const char *v, char *why, size_t whylen)
{
    if (check_name(v, "backend", why, whylen) < 0)
        return -1;
    snprintf(cur_listener(l)->backend_name, CONF_NAME_MAX, "%s", v);
    l->lmeta[l->cur].backend_line = l->lineno;
    return 0;
}

static int set_idle_timeout(struct loader *l, const char *v, char *why, size_t whylen)
{
    return conf_parse_duration(v, &cur_listener(l)->idle_timeout_ms, why, whylen);
}

static int set_listener_max_conn(struct loader *l, const char *v, char *why, size_t whylen)
{
    return conf_parse_uint(v, 0, CONNECTIONS_MAX, &cur_listener(l)->max_connections,
                           why, whylen);
}

static int set_backlog(struct loader *l, const char *v, char *why, size_t whylen)
{
    uint64_t n;

    if (conf_parse_uint(v, 1, BACKLOG_MAX, &n, why, whylen) < 0)
        return -1;
    cur_listener(l)->backlog = (unsigned)n;
    return 0;
}

/* --- [backend NAME] ---------------------------------------------------- */

#define SERVER_FORM "(expected NAME ADDRESS [weight=N], e.g. app1 127.0.0.1:9000 weight=2)"

/* "NAME ADDRESS [weight=N]" */
static int set_server(struct loader *l, const char *v, char *why, size_t whylen)
{
    struct conf_backend *be = cur_backend(l);
    struct conf_server s = { .weight = 1, .line = l->lineno }, *servers;
    char buf[LINE_LEN_MAX + 1], *save = NULL, *name, *addr, *opt;
    bool have_weight = false;
    uint64_t w;
    size_t i;

    if (snprintf(buf, sizeof(buf), "%s", v) >= (int)sizeof(buf))
        return fail(why, whylen, "server line is too long");
    name = strtok_r(buf, " \t", &save);
    addr = strtok_r(NULL, " \t", &save);
    if (name == NULL || addr == NULL)
        return fail(why, whylen, "invalid server '%.*s' " SERVER_FORM, 64, v);
    if (check_name(name, "server", why, whylen) < 0)
        return -1;
    for (i = 0; i < be->nservers; i++)
        if (strcmp(be->servers[i].name, name) == 0)
            return fail(why, whylen, "duplicate server name '%s' (first declared at line %d)",
                        name, be->servers[i].line);
    if (conf_parse_address(addr, &s.addr, why, whylen) < 0)
        return -1;
    while ((opt = strtok_r(NULL, " \t", &save)) != NULL) {
        if (strncmp(opt, "weight=", 7) != 0)
            return fail(why, whylen, "unknown server option '%.*s' (expected weight=N)", 64, opt);
        if (have_weight)
            return fail(why, whylen, "weight given twice for server '%s'", name);
        if (conf_parse_uint(opt + 7, 1, WEIGHT_MAX, &w, NULL, 0) < 0)
            return fail(why, whylen, "invalid weight '%.*s' for server '%s' (expected an "
                        "integer from 1 to %d)", 64, opt + 7, name, WEIGHT_MAX);
        s.weight = (unsigned)w;
        have_weight = true;
    }
    snprintf(s.name, sizeof(s.name), "%s", name);
    servers = grow(be->servers, be->nservers, sizeof(*servers));
    if (servers == NULL)
        return fail(why, whylen, "out of memory");
    be->servers = servers;
    servers[be->nservers++] = s;
    return 0;
}

static int set_balance(struct loader *l, const char *v, char *why, size_t whylen)
{
    int i = choose(v, balance_names, NELEM(balance_names), "balance method", why, whylen);

    if (i < 0)
        return -1;
    cur_backend(l)->balance = (enum conf_balance)i;
    return 0;
}

static int set_connect_timeout(struct loader *l, const char *v, char *why, size_t whylen)
{
    uint64_t ms;

    if (conf_parse_duration(v, &ms, why, whylen) < 0)
        return -1;
    if (ms == 0)
        return fail(why, whylen, "connect timeout must be greater than 0");
    cur_backend(l)->connect_timeout_ms = ms;
    return 0;
}

static int set_retries(struct loader *l, const char *v, char *why, size_t whylen)
{
    uint64_t n;

    if (conf_parse_uint(v, 0, RETRIES_MAX, &n, why, whylen) < 0)
        return -1;
    cur_backend(l)->retries = (unsigned)n;
    return 0;
}

/* --- TLS, routing, PROXY protocol, health checks ------------------------ */

static int parse_switch(const char *v, int *out, const char *what, char *why, size_t whylen)
{
    static const char *const names[] = { "off", "on" };
    int i = choose(v, names, NELEM(names), what, why, whylen);

    if (i < 0)
        return -1;
    *out = i;
    return 0;
}

static int set_ticket_rotate(struct loader *l, const char *v, char *why, size_t whylen)
{
    uint64_t ms;

    if (conf_parse_duration(v, &ms, why, whylen) < 0)
        return -1;
    if (ms < 1000)
        return fail(why, whylen, "tls_ticket_rotate '%.*s' is too short (expected at least 1s)",
                    64, v);
    l->c->global.tls_ticket_rotate_ms = ms;
    return 0;
}

static int set_keylog_file(struct loader *l, const char *v, char *why, size_t whylen)
{
    l->c->global.tls_keylog_file_line = l->lineno;
    return set_path(l->c->global.tls_keylog_file, sizeof(l->c->global.tls_keylog_file), v,
                    why, whylen);
}

static int set_session_cache(struct loader *l, const char *v, char *why, size_t whylen)
{
    return conf_parse_uint(v, 0, CONNECTIONS_MAX, &l->c->global.tls_session_cache, why, whylen);
}

static int set_listener_tls(struct loader *l, const char *v, char *why, size_t whylen)
{
    static const char *const names[] = { "off", "on", "passthrough" };
    int i = choose(v, names, NELEM(names), "tls mode", why, whylen);

    if (i < 0)
        return -1;
    cur_listener(l)->tls = (enum conf_tls_mode)i;
    return 0;
}

/* tls_cert and tls_key lines pair up in order: the n-th key belongs to the
 * n-th certificate, whichever comes first in the file. */
static struct conf_cert *cert_slot(struct conf_listener *li, size_t n)
{
    struct conf_cert *certs;

    if (n < li->ncerts || n < li->nkeys)
        return &li->certs[n];
    certs = grow(li->certs, n, sizeof(*certs));
    if (certs == NULL)
        return NULL;
    li->certs = certs;
    return &certs[n];
}

static int set_listener_cert(struct loader *l, const char *v, char *why, size_t whylen)
{
    struct conf_listener *li = cur_listener(l);
    struct conf_cert *c = cert_slot(li, li->ncerts);

    if (c == NULL)
        return fail(why, whylen, "out of memory");
    if (set_path(c->cert, sizeof(c->cert), v, why, whylen) < 0)
        return -1;
    c->line = l->lineno;
    li->ncerts++;
    return 0;
}

static int set_listener_key(struct loader *l, const char *v, char *why, size_t whylen)
{
    struct conf_listener *li = cur_listener(l);
    struct conf_cert *c = cert_slot(li, li->nkeys);

    if (c == NULL)
        return fail(why, whylen, "out of memory");
    if (set_path(c->key, sizeof(c->key), v, why, whylen) < 0)
        return -1;
    if (c->line == 0)
        c->line = l->lineno;
    li->nkeys++;
    return 0;
}

static int parse_tls_version(const char *v, unsigned *out, char *why, size_t whylen)
{
    static const char *const names[] = { "1.2", "1.3" };
    int i = choose(v, names, NELEM(names), "TLS version", why, whylen);

    if (i < 0)
        return -1;
    *out = i == 0 ? CONF_TLS_V12 : CONF_TLS_V13;
    return 0;
}

static int set_tls_min(struct loader *l, const char *v, char *why, size_t whylen)
{
    return parse_tls_version(v, &cur_listener(l)->tls_min, why, whylen);
}

static int set_tls_max(struct loader *l, const char *v, char *why, size_t whylen)
{
    return parse_tls_version(v, &cur_listener(l)->tls_max, why, whylen);
}

static int set_tls_ciphers(struct loader *l, const char *v, char *why, size_t whylen)
{
    cur_listener(l)->tls_ciphers_line = l->lineno;
    return set_string(cur_listener(l)->tls_ciphers, sizeof(cur_listener(l)->tls_ciphers), v,
                      why, whylen);
}

static int set_tls_ciphersuites(struct loader *l, const char *v, char *why, size_t whylen)
{
    return set_string(cur_listener(l)->tls_ciphersuites,
                      sizeof(cur_listener(l)->tls_ciphersuites), v, why, whylen);
}

/* "h2,http/1.1": 1..255-byte protocol ids separated by commas. */
static int set_alpn(struct loader *l, const char *v, char *why, size_t whylen)
{
    struct conf_listener *li = cur_listener(l);
    const char *p = v;

    while (*p != '\0') {
        size_t n = strcspn(p, ",");

        if (n == 0 || n > 255)
            return fail(why, whylen, "invalid ALPN list '%.*s' (expected protocol ids of 1 to "
                        "255 bytes separated by commas, e.g. h2,http/1.1)", 64, v);
        for (size_t i = 0; i < n; i++)
            if (p[i] == ' ' || p[i] == '\t')
                return fail(why, whylen, "invalid ALPN list '%.*s' (no spaces: separate "
                            "protocols with commas)", 64, v);
        p += n;
        if (*p == ',' && *++p == '\0')
            return fail(why, whylen, "invalid ALPN list '%.*s' (ends with a comma)", 64, v);
    }
    return set_string(li->alpn, sizeof(li->alpn), v, why, whylen);
}

static int set_client_ca(struct loader *l, const char *v, char *why, size_t whylen)
{
    return set_path(cur_listener(l)->tls_client_ca, sizeof(cur_listener(l)->tls_client_ca), v,
                    why, whylen);
}

static int set_verify_client(struct loader *l, const char *v, char *why, size_t whylen)
{
    static const char *const names[] = { "off", "optional", "required" };
    int i = choose(v, names, NELEM(names), "client verification", why, whylen);

    if (i < 0)
        return -1;
    cur_listener(l)->verify_client = (enum conf_verify_client)i;
    return 0;
}

static int set_handshake_timeout(struct loader *l, const char *v, char *why, size_t whylen)
{
    uint64_t ms;

    if (conf_parse_duration(v, &ms, why, whylen) < 0)
        return -1;
    if (ms == 0)
        return fail(why, whylen, "handshake timeout must be greater than 0");
    cur_listener(l)->handshake_timeout_ms = ms;
    return 0;
}

/* "PATTERN BACKEND" */
static int add_route(struct loader *l, struct conf_route **routes, size_t *n, int sni,
                     const char *v, char *why, size_t whylen)
{
    char buf[LINE_LEN_MAX + 1], *save = NULL, *pat, *be, *extra;
    struct conf_route *r;

    if (snprintf(buf, sizeof(buf), "%s", v) >= (int)sizeof(buf))
        return fail(why, whylen, "route is too long");
    pat = strtok_r(buf, " \t", &save);
    be = strtok_r(NULL, " \t", &save);
    extra = strtok_r(NULL, " \t", &save);
    if (pat == NULL || be == NULL || extra != NULL)
        return fail(why, whylen, "invalid route '%.*s' (expected %s BACKEND)", 64, v,
                    sni ? "HOSTNAME or *.DOMAIN" : "PROTOCOL");
    if (strlen(pat) > 255)
        return fail(why, whylen, "route pattern is longer than 255 bytes");
    if (sni) {
        const char *body = strncmp(pat, "*.", 2) == 0 ? pat + 2 : pat;

        if (*body == '\0' || strspn(body, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                          "0123456789.-_") != strlen(body))
            return fail(why, whylen, "invalid host name pattern '%.*s' (expected a name like "
                        "www.example.com or *.example.com)", 64, pat);
    }
    if (check_name(be, "backend", why, whylen) < 0)
        return -1;
    /* Host names compare without case, ALPN protocol ids byte for byte. */
    for (size_t i = 0; i < *n; i++)
        if ((sni ? strcasecmp((*routes)[i].pattern, pat) : strcmp((*routes)[i].pattern, pat)) == 0)
            return fail(why, whylen, "duplicate route for '%s' (first at line %d)", pat,
                        (*routes)[i].line);
    r = grow(*routes, *n, sizeof(*r));
    if (r == NULL)
        return fail(why, whylen, "out of memory");
    *routes = r;
    r = &r[(*n)++];
    snprintf(r->pattern, sizeof(r->pattern), "%s", pat);
    for (char *p = r->pattern; sni && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    snprintf(r->backend_name, sizeof(r->backend_name), "%s", be);
    r->line = l->lineno;
    return 0;
}

static int set_route(struct loader *l, const char *v, char *why, size_t whylen)
{
    struct conf_listener *li = cur_listener(l);

    return add_route(l, &li->routes, &li->nroutes, 1, v, why, whylen);
}

static int set_route_alpn(struct loader *l, const char *v, char *why, size_t whylen)
{
    struct conf_listener *li = cur_listener(l);

    return add_route(l, &li->alpn_routes, &li->nalpn_routes, 0, v, why, whylen);
}

static int set_accept_proxy(struct loader *l, const char *v, char *why, size_t whylen)
{
    return parse_switch(v, &cur_listener(l)->accept_proxy, "accept_proxy setting", why, whylen);
}

static int set_proxy_timeout(struct loader *l, const char *v, char *why, size_t whylen)
{
    uint64_t ms;

    if (conf_parse_duration(v, &ms, why, whylen) < 0)
        return -1;
    if (ms == 0)
        return fail(why, whylen, "proxy_timeout must be greater than 0");
    cur_listener(l)->proxy_timeout_ms = ms;
    return 0;
}

static int set_defer_accept(struct loader *l, const char *v, char *why, size_t whylen)
{
    uint64_t ms;

    if (conf_parse_duration(v, &ms, why, whylen) < 0)
        return -1;
    if (ms % 1000 != 0 || ms > DEFER_ACCEPT_MAX_MS)
        return fail(why, whylen, "defer_accept must be whole seconds, at most 3600s (0 = off)");
    cur_listener(l)->defer_accept_ms = ms;
    return 0;
}

static int set_listener_fastopen(struct loader *l, const char *v, char *why, size_t whylen)
{
    uint64_t n;

    if (conf_parse_uint(v, 0, BACKLOG_MAX, &n, why, whylen) < 0)
        return -1;
    cur_listener(l)->tcp_fastopen = (unsigned)n;
    return 0;
}

static int set_backend_fastopen(struct loader *l, const char *v, char *why, size_t whylen)
{
    return parse_switch(v, &cur_backend(l)->tcp_fastopen, "tcp_fastopen setting", why, whylen);
}

static int set_backend_tls(struct loader *l, const char *v, char *why, size_t whylen)
{
    return parse_switch(v, &cur_backend(l)->tls, "tls setting", why, whylen);
}

static int set_backend_verify(struct loader *l, const char *v, char *why, size_t whylen)
{
    return parse_switch(v, &cur_backend(l)->tls_verify, "tls_verify setting", why, whylen);
}

static int set_backend_ca(struct loader *l, const char *v, char *why, size_t whylen)
{
    return set_path(cur_backend(l)->tls_ca, sizeof(cur_backend(l)->tls_ca), v, why, whylen);
}

static int set_backend_sni(struct loader *l, const char *v, char *why, size_t whylen)
{
    if (strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") !=
        strlen(v))
        return fail(why, whylen, "invalid server name '%.*s' (expected a host name)", 64, v);
    return set_string(cur_backend(l)->tls_sni, sizeof(cur_backend(l)->tls_sni), v, why, whylen);
}

static int set_backend_cert(struct loader *l, const char *v, char *why, size_t whylen)
{
    return set_path(cur_backend(l)->tls_cert, sizeof(cur_backend(l)->tls_cert), v, why, whylen);
}

static int set_backend_key(struct loader *l, const char *v, char *why, size_t whylen)
{
    return set_path(cur_backend(l)->tls_key, sizeof(cur_backend(l)->tls_key), v, why, whylen);
}

static int set_send_proxy(struct loader *l, const char *v, char *why, size_t whylen)
{
    static const char *const names[] = { "off", "v1", "v2" };
    int i = choose(v, names, NELEM(names), "send_proxy setting", why, whylen);

    if (i < 0)
        return -1;
    cur_backend(l)->send_proxy = (enum conf_send_proxy)i;
    return 0;
}

static int set_check(struct loader *l, const char *v, char *why, size_t whylen)
{
    static const char *const names[] = { "off", "tcp", "tls" };
    int i = choose(v, names, NELEM(names), "check type", why, whylen);

    if (i < 0)
        return -1;
    cur_backend(l)->check = (enum conf_check)i;
    return 0;
}

static int set_check_interval(struct loader *l, const char *v, char *why, size_t whylen)
{
    uint64_t ms;

    if (conf_parse_duration(v, &ms, why, whylen) < 0)
        return -1;
    if (ms < 10)
        return fail(why, whylen, "check_interval '%.*s' is too short (expected at least 10ms)",
                    64, v);
    cur_backend(l)->check_interval_ms = ms;
    return 0;
}

static int set_check_rise(struct loader *l, const char *v, char *why, size_t whylen)
{
    uint64_t n;

    if (conf_parse_uint(v, 1, 100, &n, why, whylen) < 0)
        return -1;
    cur_backend(l)->check_rise = (unsigned)n;
    return 0;
}

static int set_check_fall(struct loader *l, const char *v, char *why, size_t whylen)
{
    uint64_t n;

    if (conf_parse_uint(v, 1, 100, &n, why, whylen) < 0)
        return -1;
    cur_backend(l)->check_fall = (unsigned)n;
    return 0;
}

static int set_check_timeout(struct loader *l, const char *v, char *why, size_t whylen)
{
    uint64_t ms;

    if (conf_parse_duration(v, &ms, why, whylen) < 0)
        return -1;
    if (ms == 0)
        return fail(why, whylen, "check_timeout must be greater than 0");
    cur_backend(l)->check_timeout_ms = ms;
    return 0;
}

static const struct key keys[] = {
    { SEC_GLOBAL,   "threads",         false, set_threads },
    { SEC_GLOBAL,   "control",         false, set_control },
    { SEC_GLOBAL,   "control_group",   false, set_control_group },
    { SEC_GLOBAL,   "log_level",       false, set_log_level },
    { SEC_GLOBAL,   "access_log",      false, set_access_log },
    { SEC_GLOBAL,   "max_connections", false, set_global_max_conn },
    { SEC_GLOBAL,   "drain_timeout",   false, set_drain_timeout },
    { SEC_GLOBAL,   "upgrade_timeout", false, set_upgrade_timeout },
    { SEC_GLOBAL,   "buffer_size",     false, set_buffer_size },
    { SEC_GLOBAL,   "splice",          false, set_splice },
    { SEC_GLOBAL,   "busy_poll",       false, set_busy_poll },
    { SEC_GLOBAL,   "handoff",         false, set_handoff },
    { SEC_GLOBAL,   "tls_ticket_rotate", false, set_ticket_rotate },
    { SEC_GLOBAL,   "tls_session_cache", false, set_session_cache },
    { SEC_GLOBAL,   "tls_keylog_file", false, set_keylog_file },
    { SEC_LISTENER, "bind",            true,  set_bind },
    { SEC_LISTENER, "backend",         false, set_listener_backend },
    { SEC_LISTENER, "idle_timeout",    false, set_idle_timeout },
    { SEC_LISTENER, "max_connections", false, set_listener_max_conn },
    { SEC_LISTENER, "backlog",         false, set_backlog },
    { SEC_LISTENER, "tls",             false, set_listener_tls },
    { SEC_LISTENER, "tls_cert",        true,  set_listener_cert },
    { SEC_LISTENER, "tls_key",         true,  set_listener_key },
    { SEC_LISTENER, "tls_min_version", false, set_tls_min },
    { SEC_LISTENER, "tls_max_version", false, set_tls_max },
    { SEC_LISTENER, "tls_ciphers",     false, set_tls_ciphers },
    { SEC_LISTENER, "tls_ciphersuites", false, set_tls_ciphersuites },
    { SEC_LISTENER, "alpn",            false, set_alpn },
    { SEC_LISTENER, "tls_client_ca",   false, set_client_ca },
    { SEC_LISTENER, "tls_verify_client", false, set_verify_client },
    { SEC_LISTENER, "tls_handshake_timeout", false, set_handshake_timeout },
    { SEC_LISTENER, "route",           true,  set_route },
    { SEC_LISTENER, "route_alpn",      true,  set_route_alpn },
    { SEC_LISTENER, "accept_proxy",    false, set_accept_proxy },
    { SEC_LISTENER, "proxy_timeout",   false, set_proxy_timeout },
    { SEC_LISTENER, "defer_accept",    false, set_defer_accept },
    { SEC_LISTENER, "tcp_fastopen",    false, set_listener_fastopen },
    { SEC_BACKEND,  "server",          true,  set_server },
    { SEC_BACKEND,  "balance",         false, set_balance },
    { SEC_BACKEND,  "connect_timeout", false, set_connect_timeout },
    { SEC_BACKEND,  "retries",         false, set_retries },
    { SEC_BACKEND,  "tls",             false, set_backend_tls },
    { SEC_BACKEND,  "tls_verify",      false, set_backend_verify },
    { SEC_BACKEND,  "tls_ca",          false, set_backend_ca },
    { SEC_BACKEND,  "tls_sni",         false, set_backend_sni },
    { SEC_BACKEND,  "tls_cert",        false, set_backend_cert },
    { SEC_BACKEND,  "tls_key",         false, set_backend_key },
    { SEC_BACKEND,  "send_proxy",      false, set_send_proxy },
    { SEC_BACKEND,  "tcp_fastopen",    false, set_backend_fastopen },
    { SEC_BACKEND,  "check",           false, set_check },
    { SEC_BACKEND,  "check_interval",  false, set_check_interval },
    { SEC_BACKEND,  "check_rise",      false, set_check_rise },
    { SEC_BACKEND,  "check_fall",      false, set_check_fall },
    { SEC_BACKEND,  "check_timeout",   false, set_check_timeout },
};

_Static_assert(NELEM(keys) <= KEYS_MAX, "KEYS_MAX too small");

/* --- section headers --------------------------------------------------- */

static struct conf_backend *backend_named(const struct conf *c, const char *name)
{
    size_t i;

    for (i = 0; i < c->nbackends; i++)
        if (strcmp(c->backends[i].name, name) == 0)
            return &c->backends[i];
    return NULL;
}

static struct conf_listener *listener_named(const struct conf *c, const char *name)
{
    size_t i;

    for (i = 0; i < c->nlisteners; i++)
        if (strcmp(c->listeners[i].name, name) == 0)
            return &c->listeners[i];
    return NULL;
}

static int open_listener(struct loader *l, const char *name)
{
    struct conf_listener *li;
    struct meta *m;

    m = grow(l->lmeta, l->c->nlisteners, sizeof(*m));
    if (m == NULL)
        return -1;
    l->lmeta = m;
    li = grow(l->c->listeners, l->c->nlisteners, sizeof(*li));
    if (li == NULL)
        return -1;
    l->c->listeners = li;
    li = &li[l->c->nlisteners];
    snprintf(li->name, sizeof(li->name), "%s", name);
    li->idle_timeout_ms = 300000;
    li->max_connections = 0;
    li->backlog = 4096;
    li->tls_min = CONF_TLS_V12;
    li->tls_max = CONF_TLS_V13;
    li->handshake_timeout_ms = 10000;
    li->proxy_timeout_ms = 5000;
    li->line = l->lineno;
    l->cur = l->c->nlisteners++;
    return 0;
}

static int open_backend(struct loader *l, const char *name)
{
    struct conf_backend *be;
    struct meta *m;

    m = grow(l->bmeta, l->c->nbackends, sizeof(*m));
    if (m == NULL)
        return -1;
    l->bmeta = m;
    be = grow(l->c->backends, l->c->nbackends, sizeof(*be));
    if (be == NULL)
        return -1;
    l->c->backends = be;
    be = &be[l->c->nbackends];
    snprintf(be->name, sizeof(be->name), "%s", name);
    be->balance = CONF_BALANCE_ROUNDROBIN;
    be->connect_timeout_ms = 3000;
    be->retries = 2;
    be->tls_verify = 1;
    be->check_interval_ms = 2000;
    be->check_rise = 2;
    be->check_fall = 3;
    be->line = l->lineno;
    l->cur = l->c->nbackends++;
    return 0;
}

/* Returns the section a header opens; SEC_SKIP (after reporting) if it can't. */
static enum section open_section(struct loader *l, const char *kind, const char *name)
{
    char why[CONF_ERR_MAX];
    int first = 0;

    if (strcmp(kind, "global") == 0) {
        if (*name != '\0') {
            add_error(l, l->lineno, "[global] takes no name (found '%.*s')", 64, name);
            return SEC_SKIP;
        }
        if (l->global_line != 0) {
            add_error(l, l->lineno, "duplicate section [global] (first declared at line %d)",
                      l->global_line);
            return SEC_SKIP;
        }
        l->global_line = l->lineno;
        return SEC_GLOBAL;
    }
    if (strcmp(kind, "listener") != 0 && strcmp(kind, "backend") != 0) {
        add_error(l, l->lineno, "unknown section [%.*s%s%.*s] (expected [global], "
                  "[listener NAME] or [backend NAME])", 64, kind, *name ? " " : "", 64, name);
        return SEC_SKIP;
    }
    if (kind[0] == 'l')
        l->listener_headers++;
    if (*name == '\0') {
        add_error(l, l->lineno, "missing name in [%s] (expected [%s NAME])", kind, kind);
        return SEC_SKIP;
    }
    if (check_name(name, kind, why, sizeof(why)) < 0) {
        add_error(l, l->lineno, "%s", why);
        return SEC_SKIP;
    }
    if (kind[0] == 'l' && listener_named(l->c, name) != NULL)
        first = listener_named(l->c, name)->line;
    else if (kind[0] == 'b' && backend_named(l->c, name) != NULL)
        first = backend_named(l->c, name)->line;
    if (first != 0) {
        add_error(l, l->lineno, "duplicate section [%s %s] (first declared at line %d)",
                  kind, name, first);
        return SEC_SKIP;
    }
    if ((kind[0] == 'l' ? open_listener(l, name) : open_backend(l, name)) < 0) {
        l->oom = true;
        return SEC_SKIP;
    }
    return kind[0] == 'l' ? SEC_LISTENER : SEC_BACKEND;
}

/* s..end is what is between the brackets of a header. */
static void on_header(struct loader *l, const char *s, const char *end)
{
    char buf[LINE_LEN_MAX + 1], *kind, *name, *p;
    size_t n = (size_t)(end - s);

    memcpy(buf, s, n);
    buf[n] = '\0';
    for (kind = buf; isspace((unsigned char)*kind); kind++)
        ;
    for (p = kind; *p != '\0' && !isspace((unsigned char)*p); p++)
        ;
    for (name = p; isspace((unsigned char)*name); name++)
        ;
    *p = '\0';
    for (p = name + strlen(name); p > name && isspace((unsigned char)p[-1]); p--)
        ;
    *p = '\0';

    memset(l->seen, 0, sizeof(l->seen));
    l->sec = open_section(l, kind, name);
    snprintf(l->label, sizeof(l->label), "[%.64s%s%.64s]", kind, *name ? " " : "", name);
}

/* --- reading lines ----------------------------------------------------- */

/*
 * Like inih's own scan: the first of chars, or the start of an inline
 * comment (';' after whitespace), or the end of the string.  Mirroring it
 * exactly is what keeps our idea of each line the same as inih's.
 */
static const char *find_chars_or_comment(const char *s, const char *chars)
{
    bool was_space = false;

    for (; *s != '\0' && strchr(chars, *s) == NULL && !(was_space && *s == ';'); s++)
        was_space = isspace((unsigned char)*s);
    return s;
}

static void classify(struct loader *l, const char *line)
{
    const char *s = line, *end;

    if (l->lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
        s += 3;
    while (isspace((unsigned char)*s))
        s++;
    l->kind = LINE_OTHER;
    if (*s == '\0' || *s == ';' || *s == '#')
        return;
    if (*s == '[') {
        end = find_chars_or_comment(s + 1, "]");
        if (*end != ']') {
            add_error(l, l->lineno, "syntax error (missing ']' in section header)");
            l->kind = LINE_BAD;
            l->sec = SEC_SKIP;
            return;
        }
        on_header(l, s + 1, end);
        for (s = end + 1; isspace((unsigned char)*s); s++)
            ;
        if (*s != '\0' && *s != ';' && *s != '#')
            add_error(l, l->lineno, "unexpected text after section header %s", l->label);
        return;
    }
    /* inih also splits at ':', which would mangle "server = a [::1]:80"-style typos. */
    end = find_chars_or_comment(s, "=:");
    if (*end != '=' || end == s) {
        add_error(l, l->lineno, SYNTAX_ERROR);
        l->kind = LINE_BAD;
        return;
    }
    l->kind = LINE_KEY;
    l->structural = false;
}

/* inih's fgets-style reader over l->pos. */
static char *read_line(char *buf, int size, void *stream)
{
    struct loader *l = stream;
    const char *p = l->pos;
    const char *nl;
    size_t len, content;

    if (*p == '\0')
        return NULL;
    nl = strchr(p, '\n');
    len = nl != NULL ? (size_t)(nl - p) + 1 : strlen(p);
    l->pos = p + len;
    l->lineno++;
    l->structural = true;
    content = len;
    if (content > 0 && p[content - 1] == '\n')
        content--;
    if (content > 0 && p[content - 1] == '\r')
        content--;
    /* inih would cut a long line and parse the pieces as separate lines. */
    if (content > LINE_LEN_MAX || size < 1 || len >= (size_t)size) {
        add_error(l, l->lineno, "line too long (%zu characters, at most %d)", content,
                  LINE_LEN_MAX);
        l->kind = LINE_BAD;
        /* A lost header must not let its keys land in the section before. */
        if (p[strspn(p, " \t")] == '[')
            l->sec = SEC_SKIP;
        if (size > 0)
            buf[0] = '\0';
        return buf;
    }
    memcpy(buf, p, len);
    buf[len] = '\0';
    classify(l, buf);
    return buf;
}

static const struct key *find_key(enum section sec, const char *name, size_t *index)
{
    size_t i;

    for (i = 0; i < NELEM(keys); i++)
        if (keys[i].sec == sec && strcmp(keys[i].name, name) == 0) {
            *index = i;
            return &keys[i];
        }
    return NULL;
}

/* inih's handler; `section` is ignored (it may be truncated), l->sec is right. */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
    struct loader *l = user;
    char why[CONF_ERR_MAX];
    const struct key *k;
    size_t i;

    if (l->kind != LINE_KEY)
        return 1;
    l->kind = LINE_OTHER;
    if (l->sec == SEC_SKIP)
        return 1;
    if (l->sec == SEC_NONE) {
        add_error(l, l->lineno, "key '%.*s' is outside any section (expected a [global], "
                  "[listener NAME] or [backend NAME] header before it)", 64, name);
        return 1;
    }
    k = find_key(l->sec, name, &i);
    if (k == NULL) {
        add_error(l, l->lineno, "unknown key '%.*s' in %s", 64, name, l->label);
        return 1;
    }
    if (!k->repeat && l->seen[i] != 0) {
        add_error(l, l->lineno, "duplicate key '%s' in %s (first set at line %d)", name,
                  l->label, l->seen[i]);
        return 1;
    }
    l->seen[i] = l->lineno;
    if (l->sec == SEC_LISTENER)
        l->lmeta[l->cur].keys |= (uint64_t)1 << i;
    else if (l->sec == SEC_BACKEND)
        l->bmeta[l->cur].keys |= (uint64_t)1 << i;
    if (*value == '\0')
        add_error(l, l->lineno, "missing value for '%s' in %s", name, l->label);
    else if (k->set(l, value, why, sizeof(why)) < 0)
        add_error(l, l->lineno, "%s in %s: %s", name, l->label, why);
    return 1;
}

/* --- whole-file checks ------------------------------------------------- */

static bool written(struct meta m, enum section sec, const char *key)
{
    size_t i;

    return find_key(sec, key, &i) != NULL && (m.keys & (uint64_t)1 << i) != 0;
}

static void resolve_routes(struct loader *l, struct conf_route *r, size_t n, const char *li)
{
    for (size_t i = 0; i < n; i++)
        if ((r[i].backend = backend_named(l->c, r[i].backend_name)) == NULL)
            add_error(l, r[i].line, "listener '%s' routes '%s' to backend '%s', which is not "
                      "defined", li, r[i].pattern, r[i].backend_name);
}

/* Is proto one of the comma-separated ids in list? */
static bool alpn_listed(const char *list, const char *proto)
{
    size_t n = strlen(proto);

    while (*list != '\0') {
        size_t k = strcspn(list, ",");

        if (k == n && memcmp(list, proto, n) == 0)
            return true;
        list += k;
        if (*list == ',')
            list++;
    }
    return false;
}

static void check_listener_tls(struct loader *l, struct conf_listener *li)
{
    const char *mode = li->tls == CONF_TLS_ON ? "on" : "passthrough";

    resolve_routes(l, li->routes, li->nroutes, li->name);
    resolve_routes(l, li->alpn_routes, li->nalpn_routes, li->name);
    if (li->tls == CONF_TLS_OFF) {
        if (li->ncerts || li->nkeys || li->nroutes || li->nalpn_routes || li->alpn[0] ||
            li->tls_client_ca[0] || li->verify_client != CONF_VERIFY_OFF)
            add_error(l, li->line, "listener '%s' has TLS settings (tls_cert, tls_key, route, "
                      "route_alpn, alpn, tls_client_ca or tls_verify_client) but tls = off "
                      "(expected tls = on or tls = passthrough)", li->name);
        return;
    }
    if (li->tls == CONF_TLS_PASSTHROUGH) {
        if (li->ncerts || li->nkeys || li->alpn[0] || li->tls_client_ca[0] ||
            li->verify_client != CONF_VERIFY_OFF)
            add_error(l, li->line, "listener '%s' has tls = passthrough, which never terminates "
                      "TLS: remove tls_cert, tls_key, alpn, tls_client_ca and "
                      "tls_verify_client", li->name);
        return;
    }
    if (li->ncerts == 0 && li->nkeys == 0)
        add_error(l, li->line, "listener '%s' has tls = %s but no certificate (expected "
                  "tls_cert = FILE and tls_key = FILE)", li->name, mode);
    else if (li->ncerts != li->nkeys)
        add_error(l, li->line, "listener '%s' has %zu tls_cert and %zu tls_key lines (each "
                  "certificate needs its key; they pair in order)", li->name, li->ncerts,
                  li->nkeys);
    if (li->tls_min > li->tls_max)
        add_error(l, li->line, "listener '%s': tls_min_version 1.%u is above tls_max_version "
                  "1.%u", li->name, li->tls_min - 10, li->tls_max - 10);
    for (size_t i = 0; i < li->nalpn_routes; i++)
        if (!alpn_listed(li->alpn, li->alpn_routes[i].pattern))
            add_error(l, li->alpn_routes[i].line, "listener '%s' routes ALPN '%s', which its "
                      "alpn list does not offer, so the route could never match (expected "
                      "alpn = ...,%s)", li->name, li->alpn_routes[i].pattern,
                      li->alpn_routes[i].pattern);
    if (li->verify_client != CONF_VERIFY_OFF && li->tls_client_ca[0] == '\0')
        add_error(l, li->line, "listener '%s' verifies client certificates but has no "
                  "tls_client_ca (expected tls_client_ca = FILE)", li->name);
}

static void check_backend_tls(struct loader *l, struct conf_backend *be)
{
    if (!be->tls && (be->tls_ca[0] || be->tls_sni[0] || be->tls_cert[0] || be->tls_key[0]))
        add_error(l, be->line, "backend '%s' has TLS settings (tls_ca, tls_sni, tls_cert or "
                  "tls_key) but tls = off (expected tls = on)", be->name);
    if ((be->tls_cert[0] != '\0') != (be->tls_key[0] != '\0'))
        add_error(l, be->line, "backend '%s' has %s without %s (a client certificate needs "
                  "both)", be->name, be->tls_cert[0] ? "tls_cert" : "tls_key",
                  be->tls_cert[0] ? "tls_key" : "tls_cert");
    if (be->tls && !be->tls_verify && be->tls_ca[0] != '\0')
        add_error(l, be->line, "backend '%s' has tls_ca but tls_verify = off, so the CA would "
                  "never be used (remove tls_ca, or set tls_verify = on)", be->name);
    if (be->check == CONF_CHECK_TLS && !be->tls)
        add_error(l, be->line, "backend '%s' has check = tls but tls = off (expected tls = on, "
                  "or check = tcp)", be->name);
    if (be->check_timeout_ms == 0)
        be->check_timeout_ms = be->connect_timeout_ms;
}

static void check_references(struct loader *l)
{
    struct conf *c = l->c;
    unsigned cpus;
    size_t i;

    if (l->listener_headers == 0)
        add_error(l, 0, "no [listener] section (at least one is required)");
    for (i = 0; i < c->nlisteners; i++) {
        struct conf_listener *li = &c->listeners[i];

        if (!written(l->lmeta[i], SEC_LISTENER, "bind"))
            add_error(l, li->line, "listener '%s' has no bind address "
                      "(expected bind = ADDRESS:PORT)", li->name);
        if (!written(l->lmeta[i], SEC_LISTENER, "backend"))
            add_error(l, li->line, "listener '%s' has no backend (expected backend = NAME)",
                      li->name);
        else if (li->backend_name[0] != '\0' &&
                 (li->backend = backend_named(c, li->backend_name)) == NULL)
            add_error(l, l->lmeta[i].backend_line, "listener '%s' uses backend '%s', which is not "
                      "defined", li->name, li->backend_name);
    }
    for (i = 0; i < c->nlisteners; i++)
        check_listener_tls(l, &c->listeners[i]);
    for (i = 0; i < c->nbackends; i++) {
        if (!written(l->bmeta[i], SEC_BACKEND, "server"))
            add_error(l, c->backends[i].line, "backend '%s' has no server "
                      "(expected server = NAME ADDRESS [weight=N])", c->backends[i].name);
        check_backend_tls(l, &c->backends[i]);
    }

    if (c->global.threads == 0) {
        cpus = port_cpu_count();
        c->global.threads = cpus > THREADS_MAX ? THREADS_MAX : cpus;
    }
}

static int by_line(const void *a, const void *b)
{
    const struct error *x = a, *y = b;

    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Appends one line to err; a line that doesn't fit is left out whole. */
static bool put_line(char *err, size_t errlen, size_t *used, const char *path, int line,
                     const char *msg)
{
    int n;

    if (err == NULL || *used + 1 >= errlen)
        return false;
    n = snprintf(err + *used, errlen - *used, "%s:%d: %s\n", path, line, msg);
    if (n < 0 || (size_t)n >= errlen - *used) {
        if (*used > 0)
            err[*used] = '\0';
        else
            *used = errlen - 1;
        return false;
    }
    *used += (size_t)n;
    return true;
}

static void report(struct loader *l, char *err, size_t errlen)
{
    char more[64];
    size_t used = 0, i;
    bool room = true;

    if (err == NULL || errlen == 0)
        return;
    err[0] = '\0';
    if (l->nerrs > 1)
        qsort(l->errs, l->nerrs, sizeof(*l->errs), by_line);
    for (i = 0; i < l->nerrs && room; i++)
        room = put_line(err, errlen, &used, l->path, l->errs[i].line, l->errs[i].msg);
    if (l->dropped > 0 && room) {
        snprintf(more, sizeof(more), "too many errors (%zu more not shown)", l->dropped);
        room = put_line(err, errlen, &used, l->path, 0, more);
    }
    if (l->oom && room)
        put_line(err, errlen, &used, l->path, 0, "out of memory");
}

static void set_ini_options(void)
{
    /*
     * This inih keeps its options in process-wide variables, so they are set
     * on every load rather than trusted; it also means loads must not run
     * in two threads at once (baton loads from one thread only).
     */
    static char start_comments[] = ";#";
    static char inline_comments[] = ";";

    /* Continuation lines would turn an indented "key = value" into part of
     * the previous value; indentation is insignificant instead. */
    ini_allow_multiline = false;
    ini_allow_bom = true;
    ini_start_comment_prefixes = start_comments;
    ini_allow_inline_comments = true;
    ini_inline_comment_prefixes = inline_comments;
    ini_use_stack = true;
    ini_max_line = LINE_LEN_MAX + 3;    /* + "\r\n\0" */
    ini_allow_realloc = false;
    ini_stop_on_first_error = false;
    ini_allow_no_value = false;
}

static void set_defaults(struct conf *c)
{
    c->global.threads = 0;
    snprintf(c->global.control, sizeof(c->global.control), "%s", DEFAULT_CONTROL);
    c->global.log_level = CONF_LOG_INFO;
    snprintf(c->global.access_log, sizeof(c->global.access_log), "stderr");
    c->global.max_connections = 100000;
    c->global.drain_timeout_ms = 30000;
    c->global.upgrade_timeout_ms = 10000;
    c->global.buffer_size = 16 * 1024;
    c->global.splice = 1;
    c->global.handoff = CONF_HANDOFF_LIVE;
    c->global.tls_ticket_rotate_ms = 12 * 3600 * 1000;
    c->global.tls_session_cache = 20480;
}

/* --- public ------------------------------------------------------------ */

/* conf_load_text, and (if control is not NULL) the control path even from
 * an invalid file, when its problems leave it certain ("" if not). */
static int load_text(const char *path, const char *text, struct conf *out, char *err,
                     size_t errlen, char *control, size_t controllen)
{
    struct loader l = { .path = path, .pos = text, .sec = SEC_NONE };
    struct conf c = { 0 };
    size_t i;
    int rc;

    memset(out, 0, sizeof(*out));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    l.c = &c;
    set_defaults(&c);
    if (strlen(path) >= sizeof(c.path))
        add_error(&l, 0, "path is too long (at most %d bytes)", CONF_PATH_MAX - 1);
    else
        memcpy(c.path, path, strlen(path) + 1);

    set_ini_options();
    rc = ini_parse_stream(read_line, &l, on_key, &l);
    if (rc > 0) {
        /* Only a disagreement between inih and classify() gets here. */
        for (i = 0; i < l.nerrs && l.errs[i].line != rc; i++)
            ;
        if (i == l.nerrs)
            add_error(&l, rc, SYNTAX_ERROR);
    } else if (rc < 0) {
        add_error(&l, 0, "cannot parse (ini parser error %d)", rc);
    }
    l.checking = true;
    if (!l.oom)
        check_references(&l);

    rc = l.nerrs > 0 || l.dropped > 0 || l.oom ? -1 : 0;
    if (rc < 0)
        report(&l, err, errlen);
    for (i = 0; i < l.nerrs; i++)
        free(l.errs[i].msg);
    free(l.errs);
    free(l.binds);
    free(l.lmeta);
    free(l.bmeta);
    if (control != NULL)
        snprintf(control, controllen, "%s", l.global_doubt || l.oom ? "" : c.global.control);
    if (rc < 0)
        conf_free(&c);
    else
        *out = c;
    return rc;
}

int conf_load_text(const char *path, const char *text, struct conf *out,
                   char *err, size_t errlen)
{
    return load_text(path, text, out, err, errlen, NULL, 0);
}


char *conf_read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t n = 0;
    ssize_t r;
    int fd;

    if (err == NULL)
        errlen = 0;
    else if (errlen > 0)
        err[0] = '\0';
    fd = port_open_read(path);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    /* One byte more than allowed, to tell "exactly the limit" from "over". */
    buf = malloc(CONF_TEXT_MAX + 2);
    if (buf == NULL) {
        snprintf(err, errlen, "%s: cannot read: out of memory", path);
        close(fd);
        return NULL;
    }
    while (n <= CONF_TEXT_MAX) {
        r = read(fd, buf + n, CONF_TEXT_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > CONF_TEXT_MAX) {
        snprintf(err, errlen, "%s: file is too large (more than %u bytes)", path,
                 CONF_TEXT_MAX);
        goto fail;
    }
    buf[n] = '\0';
    /* The text is handled as a C string; a NUL would silently end it early. */
    if (memchr(buf, '\0', n) != NULL) {
        snprintf(err, errlen, "%s: contains a NUL byte (not a text file?)", path);
        goto fail;
    }
    close(fd);
    if (len != NULL)
        *len = n;
    return buf;

fail:
    free(buf);
    close(fd);
    return NULL;
}

/* Keeps the promise that every error line ends in a newline. */
static void end_with_newline(char *err, size_t errlen)
{
    if (err != NULL && errlen > 0 && strlen(err) + 1 < errlen)
        strcat(err, "\n");
}

int conf_load_file(const char *path, struct conf *out, char *err, size_t errlen)
{
    char *text;
    size_t len;
    int rc;

    memset(out, 0, sizeof(*out));
    text = conf_read_file(path, &len, err, errlen);
    if (text == NULL) {
        end_with_newline(err, errlen);
        return -1;
    }
    rc = conf_load_text(path, text, out, err, errlen);
    free(text);
    return rc;
}

int conf_load_control(const char *path, char *control, size_t n, char *err, size_t errlen)
{
    struct conf c;
    char *text;
    size_t len;
    int rc;

    text = conf_read_file(path, &len, err, errlen);
    if (text == NULL) {
        end_with_newline(err, errlen);
        return -1;
    }
    rc = load_text(path, text, &c, err, errlen, control, n);
    free(text);
    if (rc == 0) {
        conf_free(&c);
        return 0;
    }
    return control[0] != '\0' ? 1 : 2;
}

void conf_free(struct conf *c)
{
    size_t i;

    if (c == NULL)
        return;
    for (i = 0; i < c->nlisteners; i++) {
        free(c->listeners[i].binds);
        free(c->listeners[i].certs);
        free(c->listeners[i].routes);
        free(c->listeners[i].alpn_routes);
    }
    for (i = 0; i < c->nbackends; i++)
        free(c->backends[i].servers);
    free(c->listeners);
    free(c->backends);
    memset(c, 0, sizeof(*c));
}

int conf_route_match(const char *pattern, const char *host)
{
    size_t hl, pl;

    if (strncmp(pattern, "*.", 2) != 0)
        return strcasecmp(pattern, host) == 0;
    /* "*.example.com" matches exactly one label in front: a.example.com,
     * not example.com nor a.b.example.com (as certificate wildcards do). */
    hl = strlen(host);
    pl = strlen(pattern + 1);           /* ".example.com" */
    if (hl <= pl || strcasecmp(host + hl - pl, pattern + 1) != 0)
        return 0;
    return memchr(host, '.', hl - pl) == NULL;
}

const char *conf_balance_name(enum conf_balance b)
{
    return (size_t)b < NELEM(balance_names) ? balance_names[b] : "?";
}

const char *conf_log_level_name(enum conf_log_level lv)
{
    return (size_t)lv < NELEM(log_level_names) ? log_level_names[lv] : "?";
}

const struct conf_backend *conf_find_backend(const struct conf *c, const char *name)
{
    return backend_named(c, name);
}

const struct conf_listener *conf_find_listener(const struct conf *c, const char *name)
{
    return listener_named(c, name);
}
