/*
 * tls.c - TLS contexts: certificates chosen by SNI (exact names, then
 * wildcards, from each certificate's SAN), RSA and ECDSA side by side,
 * protocol versions, ciphers, ALPN, client certificates, a session cache
 * and session tickets whose keys the master owns.
 */
#include "tls.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "tls_capture.h"
#include "tls_ciphers.h"

#define NAMES_MAX 64     /* names taken from one certificate */

struct cert_name {
    char     name[256];   /* lower case; "*.example.com" for wildcards */
    SSL_CTX *ctx;
};

struct proxy_tls_server {
    SSL_CTX          **ctxs;     /* one per distinct set of names; [0] is the default */
    size_t             nctxs;
    char             **ctx_keys; /* the name set of each, to group RSA with ECDSA */
    struct cert_name  *names;
    size_t             nnames;
    unsigned char      alpn[512];  /* wire format: length-prefixed ids */
    size_t             alpn_len;
};

struct proxy_tls_client {
    SSL_CTX *ctx;
    char     sni[256];
    int      verify;
};

/* ---- errors ------------------------------------------------------------- */

/* OpenSSL's reason for the last failure, clearing its queue. */
static const char *ssl_reason(char *buf, size_t n)
{
    unsigned long e, first = 0;

    while ((e = ERR_get_error()) != 0)
        if (first == 0)
            first = e;
    if (first == 0)
        snprintf(buf, n, "unknown error");
    else
        ERR_error_string_n(first, buf, n);
    return buf;
}

/* ---- session ticket keys -------------------------------------------------- */

static pthread_rwlock_t ticket_lock = PTHREAD_RWLOCK_INITIALIZER;
static uint8_t ticket_keys[PROXY_TICKET_KEYS_MAX][PROXY_TICKET_KEY_LEN];
static size_t ticket_nkeys;

int proxy_tls_new_ticket_key(uint8_t key[PROXY_TICKET_KEY_LEN])
{
    if (RAND_bytes(key, PROXY_TICKET_KEY_LEN) != 1) {
        ERR_clear_error();
        proxy_log_error("RAND_bytes failed for a ticket key");
        return -1;
    }
    return 0;
}

int proxy_tls_set_ticket_keys(const uint8_t *keys, size_t n)
{
    if (n == 0 || n > PROXY_TICKET_KEYS_MAX)
        return -1;
    if (pthread_rwlock_wrlock(&ticket_lock) != 0)
        return -1;
    memcpy(ticket_keys, keys, n * PROXY_TICKET_KEY_LEN);
    ticket_nkeys = n;
    pthread_rwlock_unlock(&ticket_lock);
    return 0;
}

static int ticket_mac_key(EVP_MAC_CTX *hctx, const uint8_t *key)
{
    OSSL_PARAM params[3];

    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)(key + 48), 32);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, params);
}

/* Sessions belong to their listener.  OpenSSL takes at most 32 bytes of
 * context (a longer name would leave it unset, and resumption with client
 * certificates would then fail): longer names are hashed. */
static int set_session_id_context(SSL_CTX *ctx, const char *name)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    size_t len = strlen(name);

    if (len <= SSL_MAX_SID_CTX_LENGTH)
        return SSL_CTX_set_session_id_context(ctx, (const unsigned char *)name,
                                              (unsigned)len) == 1 ? 0 : -1;
    if (SHA256((const unsigned char *)name, len, md) == NULL)
        return -1;
    return SSL_CTX_set_session_id_context(ctx, md, SSL_MAX_SID_CTX_LENGTH) == 1 ? 0 : -1;
}

static int ticket_key_cb(SSL *ssl, unsigned char name[16], unsigned char *iv,
                         EVP_CIPHER_CTX *ctx, EVP_MAC_CTX *hctx, int enc)
{
    uint8_t key[PROXY_TICKET_KEY_LEN];
    int found = -1;

    if (pthread_rwlock_rdlock(&ticket_lock) != 0)
        return -1;
    if (enc) {
        if (ticket_nkeys > 0) {
            memcpy(key, ticket_keys[0], sizeof(key));
            found = 0;
        }
    } else {
        for (size_t i = 0; i < ticket_nkeys && found < 0; i++)
            if (memcmp(ticket_keys[i], name, 16) == 0) {
                memcpy(key, ticket_keys[i], sizeof(key));
                found = (int)i;
            }
    }
    pthread_rwlock_unlock(&ticket_lock);
    if (found < 0)
        return 0;   /* no ticket issued / unknown key: full handshake */
    if (enc) {
        memcpy(name, key, 16);
        if (RAND_bytes(iv, 16) != 1 ||
            EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, key + 16, iv) != 1)
            return -1;
    } else if (EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, key + 16, iv) != 1) {
        return -1;
    }
    if (ticket_mac_key(hctx, key) != 1)
        return -1;
    /* 2 = "renew": a resumed client gets a fresh ticket (TLS 1.3 clients
     * use each ticket once; without one they would do a full handshake
     * every other time), and one under an older key is replaced too. */
    return enc ? 1 : 2;
}

/* ---- server contexts -------------------------------------------------------- */

static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    struct proxy_tls_server *s = arg;
    unsigned char *sel;

    if (s->alpn_len == 0)
        return SSL_TLSEXT_ERR_NOACK;
    if (SSL_select_next_proto(&sel, outlen, s->alpn, (unsigned)s->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;   /* no common protocol: carry on without ALPN */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *server_lookup(const struct proxy_tls_server *s, const char *host)
{
    for (size_t i = 0; i < s->nnames; i++)
        if (s->names[i].name[0] != '*' && strcasecmp(s->names[i].name, host) == 0)
            return s->names[i].ctx;
    for (size_t i = 0; i < s->nnames; i++)
        if (s->names[i].name[0] == '*' && conf_route_match(s->names[i].name, host))
            return s->names[i].ctx;
    return NULL;
}

static int servername_cb(SSL *ssl, int *alert, void *arg)
{
    struct proxy_tls_server *s = arg;
    const char *host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    SSL_CTX *ctx;

    if (host == NULL)
        return SSL_TLSEXT_ERR_OK;   /* the default certificate */
    ctx = server_lookup(s, host);
    if (ctx != NULL && ctx != SSL_get_SSL_CTX(ssl) && SSL_set_SSL_CTX(ssl, ctx) == NULL)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    return SSL_TLSEXT_ERR_OK;
}

static int set_versions(SSL_CTX *ctx, unsigned min, unsigned max)
{
    return SSL_CTX_set_min_proto_version(ctx, min == CONF_TLS_V13 ? TLS1_3_VERSION
                                                                  : TLS1_2_VERSION) == 1 &&
           SSL_CTX_set_max_proto_version(ctx, max == CONF_TLS_V12 ? TLS1_2_VERSION
                                                                  : TLS1_3_VERSION) == 1;
}

static int server_ctx_setup(struct proxy_tls_server *s, SSL_CTX *ctx,
                            const struct conf_listener *l, const struct conf_global *g,
                            char *why, size_t whylen)
{
    char reason[256];

    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                             SSL_OP_NO_COMPRESSION);
    /* Every context an SSL may switch to by SNI reports its secrets: baton
     * takes the connection over after the handshake. */
    proxy_tls_capture_ctx(ctx);
    /* OpenSSL's own record buffers are freed while a connection is idle. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (!set_versions(ctx, l->tls_min, l->tls_max)) {
        snprintf(why, whylen, "cannot set TLS versions: %.200s", ssl_reason(reason, sizeof(reason)));
        return -1;
    }
    if (SSL_CTX_set_cipher_list(ctx, proxy_tls_ciphers_of(l)) != 1) {
        snprintf(why, whylen, "tls_ciphers '%.200s' rejected: %.200s", proxy_tls_ciphers_of(l),
                 ssl_reason(reason, sizeof(reason)));
        return -1;
    }
    /* DHE suites (in the default list) need parameters: OpenSSL's
     * built-in groups, sized to the certificate's key. */
    if (SSL_CTX_set_dh_auto(ctx, 1) != 1) {
        snprintf(why, whylen, "cannot enable DHE parameters: %.200s",
                 ssl_reason(reason, sizeof(reason)));
        return -1;
    }
    if (l->tls_ciphersuites[0] && SSL_CTX_set_ciphersuites(ctx, l->tls_ciphersuites) != 1) {
        snprintf(why, whylen, "tls_ciphersuites '%.200s' rejected: %.200s", l->tls_ciphersuites,
                 ssl_reason(reason, sizeof(reason)));
        return -1;
    }
    if (g->tls_session_cache > 0) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(ctx, (long)g->tls_session_cache);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    if (set_session_id_context(ctx, l->name) != 0) {
        snprintf(why, whylen, "cannot set the session id context: %.200s",
                 ssl_reason(reason, sizeof(reason)));
        return -1;
    }
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb);
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, s);
    SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, s);
    if (l->verify_client != CONF_VERIFY_OFF) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(l->tls_client_ca);

        if (names == NULL || SSL_CTX_load_verify_locations(ctx, l->tls_client_ca, NULL) != 1) {
            if (names != NULL)
                sk_X509_NAME_pop_free(names, X509_NAME_free);
            snprintf(why, whylen, "tls_client_ca %.200s: cannot load: %.200s", l->tls_client_ca,
                     ssl_reason(reason, sizeof(reason)));
            return -1;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, l->verify_client == CONF_VERIFY_REQUIRED
                                    ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                                    : SSL_VERIFY_PEER, NULL);
    }
    return 0;
}

/* DNS names of a certificate (SAN, else the subject CN), lower case. */
static size_t cert_names(X509 *x, char names[][256], size_t max)
{
    GENERAL_NAMES *san = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    size_t n = 0;

    for (int i = 0; san != NULL && i < sk_GENERAL_NAME_num(san) && n < max; i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(san, i);
        const unsigned char *p;
        int len;

        if (gn->type != GEN_DNS)
            continue;
        p = ASN1_STRING_get0_data(gn->d.dNSName);
        len = ASN1_STRING_length(gn->d.dNSName);
        if (len <= 0 || len > 255 || memchr(p, '\0', (size_t)len) != NULL)
            continue;
        for (int k = 0; k < len; k++)
            names[n][k] = (char)tolower(p[k]);
        names[n++][len] = '\0';
    }
    GENERAL_NAMES_free(san);
    if (n == 0) {
        X509_NAME *subj = X509_get_subject_name(x);

        if (subj != NULL &&
            X509_NAME_get_text_by_NID(subj, NID_commonName, names[0], 256) > 0) {
            for (char *c = names[0]; *c; c++)
                *c = (char)tolower((unsigned char)*c);
            n = 1;
        }
    }
    return n;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The context for this certificate's set of names (created if new), so an
 * RSA and an ECDSA certificate for the same names share one context and
 * the client's signature algorithms choose between them. */
static SSL_CTX *server_ctx_for(struct proxy_tls_server *s, X509 *x, const struct conf_listener *l,
                               const struct conf_global *g, char *why, size_t whylen)
{
    char (*names)[256] = calloc(NAMES_MAX, 256), *key = NULL;
    size_t n, used = 0;
    SSL_CTX *ctx = NULL;

    if (names == NULL)
        goto oom;
    n = cert_names(x, names, NAMES_MAX);
    qsort(names, n, 256, name_cmp);
    /* The whole sorted list, never cut: two certificates share a context
     * only if they name exactly the same hosts. */
    key = malloc(n * 257 + 1);
    if (key == NULL)
        goto oom;
    key[0] = '\0';
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(key + used, n * 257 + 1 - used, "%s,", names[i]);
    for (size_t i = 0; i < s->nctxs; i++)
        if (strcmp(s->ctx_keys[i], key) == 0) {
            free(names);
            free(key);
            return s->ctxs[i];
        }
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        goto oom;
    if (server_ctx_setup(s, ctx, l, g, why, whylen) != 0) {
        SSL_CTX_free(ctx);
        free(names);
        free(key);
        return NULL;
    }
    {
        SSL_CTX **ctxs = realloc(s->ctxs, (s->nctxs + 1) * sizeof(*ctxs));
        char **keys = ctxs ? realloc(s->ctx_keys, (s->nctxs + 1) * sizeof(*keys)) : NULL;
        struct cert_name *cn = keys ? realloc(s->names, (s->nnames + n) * sizeof(*cn)) : NULL;

        if (ctxs != NULL)
            s->ctxs = ctxs;
        if (keys != NULL)
            s->ctx_keys = keys;
        if (cn == NULL) {
            SSL_CTX_free(ctx);
            goto oom;
        }
        s->names = cn;
        keys[s->nctxs] = key;   /* owned by the server now */
        key = NULL;
        ctxs[s->nctxs++] = ctx;
        for (size_t i = 0; i < n; i++) {
            memcpy(s->names[s->nnames].name, names[i], 256);
            s->names[s->nnames++].ctx = ctx;
        }
    }
    free(names);
    return ctx;
oom:
    free(names);
    free(key);
    snprintf(why, whylen, "out of memory");
    return NULL;
}

static EVP_PKEY *read_key(const char *path, char *why, size_t whylen)
{
    char reason[256];
    FILE *f = fopen(path, "r");
    EVP_PKEY *k;

    if (f == NULL) {
        snprintf(why, whylen, "tls_key %.200s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (k == NULL)
        snprintf(why, whylen, "tls_key %.200s: no PEM private key: %.200s", path,
                 ssl_reason(reason, sizeof(reason)));
    return k;
}

static int server_add_cert(struct proxy_tls_server *s, const struct conf_cert *c,
                           const struct conf_listener *l, const struct conf_global *g,
                           char *why, size_t whylen)
{
    char reason[256], inner[2048];
    FILE *f = fopen(c->cert, "r");
    EVP_PKEY *key;
    SSL_CTX *ctx;
    X509 *x;
    int rc = -1;

    if (f == NULL) {
        snprintf(why, whylen, "tls_cert %.200s: cannot open: %s", c->cert, strerror(errno));
        return -1;
    }
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (x == NULL) {
        snprintf(why, whylen, "tls_cert %.200s: no PEM certificate: %.200s", c->cert,
                 ssl_reason(reason, sizeof(reason)));
        return -1;
    }
    key = read_key(c->key, why, whylen);
    if (key == NULL)
        goto out;
    /* Checked here: with RSA and ECDSA in one context, OpenSSL would file a
     * key of the other type in that type's slot without complaint. */
    if (X509_check_private_key(x, key) != 1) {
        ERR_clear_error();
        snprintf(why, whylen, "tls_key %.200s: cannot load or does not match %.200s: the "
                 "key is not the certificate's", c->key, c->cert);
        goto out;
    }
    ctx = server_ctx_for(s, x, l, g, inner, sizeof(inner));
    if (ctx == NULL) {
        snprintf(why, whylen, "%s", inner);
        goto out;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, c->cert) != 1) {
        snprintf(why, whylen, "tls_cert %.200s: cannot load: %.200s", c->cert,
                 ssl_reason(reason, sizeof(reason)));
        goto out;
    }
    if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(why, whylen, "tls_key %.200s: cannot load or does not match %.200s: %.200s",
                 c->key, c->cert, ssl_reason(reason, sizeof(reason)));
        goto out;
    }
    rc = 0;
out:
    EVP_PKEY_free(key);
    X509_free(x);
    return rc;
}

/* out holds at least 512 bytes; a configured list (<= 255 characters)
 * always fits. */
static int alpn_wire(const char *list, unsigned char *out, size_t *len)
{
    size_t used = 0;

    while (*list != '\0') {
        size_t n = strcspn(list, ",");

        if (n == 0 || n > 255 || used + 1 + n > 511)
            return -1;
        out[used++] = (unsigned char)n;
        memcpy(out + used, list, n);
        used += n;
        list += n;
        if (*list == ',')
            list++;
    }
    *len = used;
    return 0;
}

struct proxy_tls_server *proxy_tls_server_new(const struct conf_listener *l,
                                              const struct conf_global *g,
                                              char *why, size_t whylen)
{
    struct proxy_tls_server *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    if (alpn_wire(l->alpn, s->alpn, &s->alpn_len) != 0) {
        snprintf(why, whylen, "listener %s: alpn list '%.200s' is too long", l->name, l->alpn);
        goto fail;
    }
    for (size_t i = 0; i < l->ncerts; i++) {
        char inner[2048];

        if (server_add_cert(s, &l->certs[i], l, g, inner, sizeof(inner)) != 0) {
            snprintf(why, whylen, "listener %.200s: %.200s", l->name, inner);
            goto fail;
        }
    }
    if (s->nctxs == 0) {
        snprintf(why, whylen, "listener %.200s: no certificate", l->name);
        goto fail;
    }
    if (ticket_nkeys == 0) {
        /* Until the master's keys arrive (tests, `-t`): a key of our own. */
        uint8_t key[PROXY_TICKET_KEY_LEN];

        /* Without a random key no tickets are issued (full handshakes). */
        if (proxy_tls_new_ticket_key(key) == 0)
            proxy_tls_set_ticket_keys(key, 1);
        OPENSSL_cleanse(key, sizeof(key));
    }
    return s;
fail:
    proxy_tls_server_free(s);
    return NULL;
}

void proxy_tls_server_free(struct proxy_tls_server *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nctxs; i++) {
        SSL_CTX_free(s->ctxs[i]);
        free(s->ctx_keys[i]);
    }
    free(s->ctxs);
    free(s->ctx_keys);
    free(s->names);
    free(s);
}

SSL *proxy_tls_server_ssl(struct proxy_tls_server *s)
{
    SSL *ssl = SSL_new(s->ctxs[0]);

    if (ssl != NULL)
        SSL_set_accept_state(ssl);
    return ssl;
}

/* ---- client contexts ---------------------------------------------------------- */

struct proxy_tls_client *proxy_tls_client_new(const struct conf_backend *b,
                                              char *why, size_t whylen)
{
    struct proxy_tls_client *c = calloc(1, sizeof(*c));
    char reason[256];

    if (c == NULL || (c->ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
        free(c);
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    snprintf(c->sni, sizeof(c->sni), "%s", b->tls_sni);
    c->verify = b->tls_verify;
    SSL_CTX_set_mode(c->ctx, SSL_MODE_RELEASE_BUFFERS);
    proxy_tls_capture_ctx(c->ctx);
    /* A server's HelloRequest is refused: a renegotiated connection could
     * no longer be carried by baton's own record layer. */
    SSL_CTX_set_options(c->ctx, SSL_OP_NO_RENEGOTIATION);
    if (!set_versions(c->ctx, CONF_TLS_V12, CONF_TLS_V13)) {
        snprintf(why, whylen, "backend %.200s: cannot set TLS versions", b->name);
        goto fail;
    }
    if (SSL_CTX_set_cipher_list(c->ctx, PROXY_TLS_CIPHERS_DEFAULT) != 1) {
        snprintf(why, whylen, "backend %.200s: cannot set the cipher list: %.200s", b->name,
                 ssl_reason(reason, sizeof(reason)));
        goto fail;
    }
    if (b->tls_verify) {
        int ok = b->tls_ca[0] ? SSL_CTX_load_verify_locations(c->ctx, b->tls_ca, NULL)
                              : SSL_CTX_set_default_verify_paths(c->ctx);

        if (ok != 1) {
            snprintf(why, whylen, "backend %.200s: tls_ca %.200s: cannot load: %.200s", b->name,
                     b->tls_ca[0] ? b->tls_ca : "(system store)",
                     ssl_reason(reason, sizeof(reason)));
            goto fail;
        }
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    }
    if (b->tls_cert[0] &&
        (SSL_CTX_use_certificate_chain_file(c->ctx, b->tls_cert) != 1 ||
         SSL_CTX_use_PrivateKey_file(c->ctx, b->tls_key, SSL_FILETYPE_PEM) != 1)) {
        snprintf(why, whylen, "backend %.200s: client certificate %.200s / %.200s: %.200s", b->name, b->tls_cert,
                 b->tls_key, ssl_reason(reason, sizeof(reason)));
        goto fail;
    }
    return c;
fail:
    proxy_tls_client_free(c);
    return NULL;
}

void proxy_tls_client_free(struct proxy_tls_client *c)
{
    if (c == NULL)
        return;
    SSL_CTX_free(c->ctx);
    free(c);
}

SSL *proxy_tls_client_ssl(struct proxy_tls_client *c, const char *server_name)
{
    const char *sni = c->sni[0] ? c->sni : server_name;
    SSL *ssl = SSL_new(c->ctx);

    if (ssl == NULL)
        return NULL;
    SSL_set_connect_state(ssl);
    if (SSL_set_tlsext_host_name(ssl, sni) != 1 || (c->verify && SSL_set1_host(ssl, sni) != 1)) {
        /* A stale error would be blamed on the next connection of this thread. */
        ERR_clear_error();
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

int proxy_tls_check_conf(const struct conf *c, char *err, size_t errlen)
{
    char why[1024];
    size_t used = 0;
    int rc = 0;

    err[0] = '\0';
#define CHECK_APPEND(fmt, ...)                                                         \
    do {                                                                               \
        if (used < errlen) {                                                           \
            int w = snprintf(err + used, errlen - used, fmt, __VA_ARGS__);            \
            used += w > 0 ? (size_t)w : 0;                                             \
        }                                                                              \
    } while (0)
    for (size_t i = 0; i < c->nlisteners; i++) {
        const struct conf_listener *l = &c->listeners[i];
        struct proxy_tls_server *s;

        if (l->tls != CONF_TLS_ON)
            continue;
        s = proxy_tls_server_new(l, &c->global, why, sizeof(why));
        if (s == NULL) {
            CHECK_APPEND("%s:%d: %s\n", c->path, l->line, why);
            rc = -1;
        }
        proxy_tls_server_free(s);
    }
    for (size_t i = 0; i < c->nbackends; i++) {
        const struct conf_backend *b = &c->backends[i];
        struct proxy_tls_client *cl;

        if (!b->tls)
            continue;
        cl = proxy_tls_client_new(b, why, sizeof(why));
        if (cl == NULL) {
            CHECK_APPEND("%s:%d: %s\n", c->path, b->line, why);
            rc = -1;
        }
        proxy_tls_client_free(cl);
    }
#undef CHECK_APPEND
    return rc;
}
