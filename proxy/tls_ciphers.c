/*
 * tls_ciphers.c - the default TLS 1.2 cipher list, and the warning about
 * listeners whose list allows suites that cannot move at an upgrade.
 *
 * Which suites a list allows is OpenSSL's answer, never a match on names:
 * a context restricted to TLS 1.2 is given the list, and the suites OpenSSL
 * would offer with it are asked whether they are AEAD.
 */
#include "tls_ciphers.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

const char *proxy_tls_ciphers_of(const struct conf_listener *l)
{
    return l->tls_ciphers[0] ? l->tls_ciphers : PROXY_TLS_CIPHERS_DEFAULT;
}

/* The first non-AEAD suite the list allows in TLS 1.2 (copied to first)
 * and how many there are; -1 if OpenSSL cannot tell (bad list, no memory). */
static int non_aead_suites(const char *list, char *first, size_t n)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    STACK_OF(SSL_CIPHER) *sk = NULL;
    SSL *ssl = NULL;
    int count = -1;

    first[0] = '\0';
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, list) != 1 || (ssl = SSL_new(ctx)) == NULL)
        goto out;
    /* What this SSL would offer: the list minus the suites its protocol
     * versions (TLS 1.2 only) and its security level rule out. */
    sk = SSL_get1_supported_ciphers(ssl);
    if (sk == NULL)
        goto out;
    count = 0;
    for (int i = 0; i < sk_SSL_CIPHER_num(sk); i++) {
        const SSL_CIPHER *c = sk_SSL_CIPHER_value(sk, i);

        if (SSL_CIPHER_is_aead(c))
            continue;
        if (count++ == 0)
            snprintf(first, n, "%s", SSL_CIPHER_get_name(c));
    }
out:
    sk_SSL_CIPHER_free(sk);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return count;
}

void proxy_tls_ciphers_warnings(const struct conf *c, char *warn, size_t n)
{
    size_t used = strnlen(warn, n);

    if (n == 0 || c->global.handoff != CONF_HANDOFF_LIVE)
        return;
    for (size_t i = 0; i < c->nlisteners && used + 1 < n; i++) {
        const struct conf_listener *l = &c->listeners[i];
        char first[128];
        int count, w;

        if (l->tls != CONF_TLS_ON || l->tls_min > CONF_TLS_V12)
            continue;
        count = non_aead_suites(proxy_tls_ciphers_of(l), first, sizeof(first));
        if (count <= 0)
            continue;
        w = snprintf(warn + used, n - used, "%s:%d: warning: listener %s: tls_ciphers allows "
                     "non-AEAD suites (%s%s); connections using them cannot move at an "
                     "upgrade and drain instead\n", c->path,
                     l->tls_ciphers_line ? l->tls_ciphers_line : l->line, l->name, first,
                     count > 1 ? "..." : "");
        used += w > 0 ? (size_t)w : 0;
        if (used >= n)
            used = n - 1;
    }
}
