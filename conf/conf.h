/*
 * conf.h - baton configuration: INI text -> typed, fully validated structure.
 *
 * Nothing is started from a configuration until conf_load() has accepted all
 * of it; a rejected file leaves the caller's running state untouched.
 */
#ifndef BATON_CONF_H
#define BATON_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "port_net.h"

/* What a reload does with the old generation's connections. */
enum conf_handoff { CONF_HANDOFF_LIVE = 0, CONF_HANDOFF_DRAIN };

#define CONF_NAME_MAX      64    /* listener/backend/server names */
#define CONF_PATH_MAX      1024
#define CONF_ERR_MAX       1024  /* one "FILE:LINE: message" */
#define CONF_TEXT_MAX      (1u << 20) /* largest configuration file accepted */

#define CONF_DEFAULT_PATH  "/etc/baton/baton.ini"

enum conf_log_level {
    CONF_LOG_ERROR = 0,
    CONF_LOG_WARN,
    CONF_LOG_INFO,
    CONF_LOG_DEBUG
};

enum conf_balance {
    CONF_BALANCE_ROUNDROBIN = 0,
    CONF_BALANCE_LEASTCONN,
    CONF_BALANCE_RANDOM,
    CONF_BALANCE_SOURCE
};

enum conf_tls_mode {
    CONF_TLS_OFF = 0,
    CONF_TLS_ON,            /* terminate TLS (listener) / connect with TLS (backend) */
    CONF_TLS_PASSTHROUGH    /* listener: route by the ClientHello, relay untouched */
};

enum conf_verify_client {
    CONF_VERIFY_OFF = 0,
    CONF_VERIFY_OPTIONAL,
    CONF_VERIFY_REQUIRED
};

enum conf_send_proxy {
    CONF_SEND_PROXY_OFF = 0,
    CONF_SEND_PROXY_V1,
    CONF_SEND_PROXY_V2
};

enum conf_check {
    CONF_CHECK_OFF = 0,
    CONF_CHECK_TCP,         /* a connect succeeds */
    CONF_CHECK_TLS          /* a TLS handshake succeeds */
};

#define CONF_TLS_V12 12
#define CONF_TLS_V13 13

/* A certificate (chain file) and its private key. */
struct conf_cert {
    char cert[CONF_PATH_MAX];
    char key[CONF_PATH_MAX];
    int  line;               /* of the tls_cert key */
};

/* SNI (`route`) or ALPN (`route_alpn`) pattern -> backend. */
struct conf_route {
    char                 pattern[256];   /* exact name, "*.example.com", or ALPN id */
    char                 backend_name[CONF_NAME_MAX];
    struct conf_backend *backend;        /* resolved by validation */
    int                  line;
};

/* A resolved socket address plus the text the operator wrote (for logs). */
struct conf_addr {
    struct sockaddr_storage ss;
    socklen_t               len;
    char                    text[80];   /* "127.0.0.1:8080" or "[::1]:8080" */
};

struct conf_server {
    char             name[CONF_NAME_MAX];
    struct conf_addr addr;
    unsigned         weight;            /* 1..256, default 1 */
    int              line;              /* where it was declared */
};

struct conf_backend {
    char                name[CONF_NAME_MAX];
    struct conf_server *servers;
    size_t              nservers;
    enum conf_balance   balance;        /* default roundrobin */
    uint64_t            connect_timeout_ms; /* default 3000 */
    unsigned            retries;        /* default 2 */
    int                 line;           /* first line of the section */

    int                 tls;            /* connect to servers with TLS, default off */
    int                 tls_verify;     /* verify the server certificate, default on */
    char                tls_ca[CONF_PATH_MAX];   /* "" = system trust store */
    char                tls_sni[256];   /* "" = the server's name */
    char                tls_cert[CONF_PATH_MAX]; /* client certificate, optional */
    char                tls_key[CONF_PATH_MAX];
    enum conf_send_proxy send_proxy;    /* default off */
    int                 tcp_fastopen;   /* TCP_FASTOPEN_CONNECT to plain servers, default off */
    enum conf_check     check;          /* active health check, default off */
    uint64_t            check_interval_ms;  /* default 2000 */
    unsigned            check_rise;     /* successes to mark up, default 2 */
    unsigned            check_fall;     /* failures to mark down (active and passive), default 3 */
    uint64_t            check_timeout_ms;   /* default: connect_timeout */
};

struct conf_listener {
    char                 name[CONF_NAME_MAX];
    struct conf_addr    *binds;
    size_t               nbinds;
    char                 backend_name[CONF_NAME_MAX];
    struct conf_backend *backend;       /* resolved by validation */
    uint64_t             idle_timeout_ms;   /* default 300000 (5m); 0 = none */
    uint64_t             max_connections;   /* default 0 = only the global limit */
    unsigned             backlog;           /* default 4096 (the kernel caps it at somaxconn) */
    int                  line;

    enum conf_tls_mode   tls;               /* default off */
    struct conf_cert    *certs;             /* tls_cert/tls_key pairs, in order */
    size_t               ncerts, nkeys;     /* tls_cert and tls_key lines seen */
    unsigned             tls_min, tls_max;  /* CONF_TLS_V12/13, default 1.2 - 1.3 */
    char                 tls_ciphers[512];      /* TLS 1.2 cipher list, "" = baton's default
                                                   (PROXY_TLS_CIPHERS_DEFAULT) */
    int                  tls_ciphers_line;      /* where it was set, 0 = not set */
    char                 tls_ciphersuites[512]; /* TLS 1.3 suites, "" = OpenSSL default */
    char                 alpn[256];         /* "h2,http/1.1"; "" = no ALPN */
    char                 tls_client_ca[CONF_PATH_MAX];
    enum conf_verify_client verify_client;  /* default off */
    uint64_t             handshake_timeout_ms;  /* default 10000 */
    struct conf_route   *routes;            /* by SNI */
    size_t               nroutes;
    struct conf_route   *alpn_routes;       /* by ALPN protocol */
    size_t               nalpn_routes;
    int                  accept_proxy;      /* expect a PROXY header, default off */
    uint64_t             proxy_timeout_ms;  /* to receive it, default 5000 */
    uint64_t             defer_accept_ms;   /* TCP_DEFER_ACCEPT: accept once bytes came or
                                               this passed (whole seconds), default 0 = off */
    unsigned             tcp_fastopen;      /* TCP_FASTOPEN queue length, default 0 = off */
};

struct conf_global {
    unsigned            threads;        /* 0 in the file means auto; resolved >= 1 */
    char                control[CONF_PATH_MAX]; /* control socket path */
    int                 control_line;   /* where it was set, 0 = the default */
    char                control_group[CONF_NAME_MAX]; /* "" = none */
    gid_t               control_gid;    /* that group, looked up when loaded */
    enum conf_log_level log_level;      /* default info */
    char                access_log[CONF_PATH_MAX]; /* "stderr", "off" or a path */
    uint64_t            max_connections;    /* default 100000 */
    uint64_t            drain_timeout_ms;   /* default 30000 */
    uint64_t            upgrade_timeout_ms; /* new generation must be ready within, default 10000 */
    uint64_t            buffer_size;        /* per-direction relay buffer, default 16k */
    int                 splice;             /* relay bulk TCP with splice(2), default on */
    uint64_t            busy_poll_us;       /* poll without sleeping this long after work, 0 = off (default) */
    int                 handoff;            /* enum conf_handoff: what a reload does with
                                               live connections */
    uint64_t            tls_ticket_rotate_ms;   /* session ticket key lifetime, default 12h */
    uint64_t            tls_session_cache;      /* sessions cached per listener and worker, default 20480 */
    char                tls_keylog_file[CONF_PATH_MAX]; /* TLS secrets appended here for
                                                           debugging, "" = off (default) */
    int                 tls_keylog_file_line;   /* where it was set, 0 = not set */
};

struct conf {
    char                  path[CONF_PATH_MAX]; /* file it was read from */
    struct conf_global    global;
    struct conf_listener *listeners;
    size_t                nlisteners;
    struct conf_backend  *backends;
    size_t                nbackends;
};

/*
 * Parse and validate.  On success returns 0 and fills *out (free with
 * conf_free).  On failure returns -1, *out is left zeroed, and err holds
 * every problem found, one "FILE:LINE: message" per line (the first line is
 * the first problem).  `path` is used for messages and conf->path.
 */
int  conf_load_file(const char *path, struct conf *out, char *err, size_t errlen);
int  conf_load_text(const char *path, const char *text, struct conf *out,
                    char *err, size_t errlen);
void conf_free(struct conf *c);

/*
 * For `baton -s`: the control socket path named by the file at path, found
 * by the very loader the master uses.  Returns 0 (valid file), 1 (the file
 * is invalid, but none of its problems is in [global] or in the structure
 * of the file - section headers, syntax - so the path is the one the master
 * reads from it; err lists the problems), 2 (invalid, and the path cannot
 * be told: err lists the problems) or -1 (unreadable: err says why).
 */
int  conf_load_control(const char *path, char *control, size_t n, char *err, size_t errlen);

/* Reads a whole file (<= CONF_TEXT_MAX) into a NUL-terminated malloc'd buffer. */
char *conf_read_file(const char *path, size_t *len, char *err, size_t errlen);

const char *conf_balance_name(enum conf_balance b);
/* Does an SNI route pattern ("name" or "*.suffix") match host (lower case)? */
int conf_route_match(const char *pattern, const char *host);
const char *conf_log_level_name(enum conf_log_level l);

const struct conf_backend  *conf_find_backend(const struct conf *c, const char *name);
const struct conf_listener *conf_find_listener(const struct conf *c, const char *name);

#endif
