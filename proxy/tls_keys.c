/*
 * tls_keys.c - the suites the record layer carries and their keys:
 * HKDF-Expand-Label (RFC 8446 section 7.1), the TLS 1.2 key block (RFC 5246
 * section 6.3) and keyed cipher contexts.  Ciphers and KDFs are fetched
 * once per process, so that a connection's start costs only its key
 * schedule.
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "port_once.h"
#include "tls_record_int.h"

enum { CIPHER_AES128GCM, CIPHER_AES256GCM, CIPHER_CHACHA, CIPHER_COUNT };

static const char *const cipher_names[CIPHER_COUNT] = {
    "AES-128-GCM", "AES-256-GCM", "ChaCha20-Poly1305"
};

static const struct proxy_tlsrec_suite suites[] = {
    { 0x0304, 0x1301, "SHA256", CIPHER_AES128GCM, 16, 32, 12, 0 },
    { 0x0304, 0x1302, "SHA384", CIPHER_AES256GCM, 32, 48, 12, 0 },
    { 0x0304, 0x1303, "SHA256", CIPHER_CHACHA,    32, 32, 12, 0 },
    /* TLS 1.2: ECDHE-ECDSA, ECDHE-RSA, DHE-RSA of each AEAD */
    { 0x0303, 0xc02b, "SHA256", CIPHER_AES128GCM, 16, 0, 4, 8 },
    { 0x0303, 0xc02f, "SHA256", CIPHER_AES128GCM, 16, 0, 4, 8 },
    { 0x0303, 0x009e, "SHA256", CIPHER_AES128GCM, 16, 0, 4, 8 },
    { 0x0303, 0xc02c, "SHA384", CIPHER_AES256GCM, 32, 0, 4, 8 },
    { 0x0303, 0xc030, "SHA384", CIPHER_AES256GCM, 32, 0, 4, 8 },
    { 0x0303, 0x009f, "SHA384", CIPHER_AES256GCM, 32, 0, 4, 8 },
    { 0x0303, 0xcca9, "SHA256", CIPHER_CHACHA,    32, 0, 12, 0 },
    { 0x0303, 0xcca8, "SHA256", CIPHER_CHACHA,    32, 0, 12, 0 },
    { 0x0303, 0xccaa, "SHA256", CIPHER_CHACHA,    32, 0, 12, 0 },
};

/* What every connection of the process uses; NULL where a fetch failed. */
static struct {
    EVP_CIPHER *cipher[CIPHER_COUNT];
    EVP_KDF    *hkdf;
    EVP_KDF    *prf;
} fetched;
static port_once_t fetch_once = PORT_ONCE_INIT;

static void fetch_all(void)
{
    for (int i = 0; i < CIPHER_COUNT; i++)
        fetched.cipher[i] = EVP_CIPHER_fetch(NULL, cipher_names[i], NULL);
    fetched.hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    fetched.prf = EVP_KDF_fetch(NULL, "TLS1-PRF", NULL);
}

static int fetch(void)
{
    return port_once(&fetch_once, fetch_all);
}

const struct proxy_tlsrec_suite *proxy_tlsrec_suite_find(uint16_t version, uint16_t suite)
{
    for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
        if (suites[i].version == version && suites[i].suite == suite)
            return &suites[i];
    return NULL;
}

int proxy_tlsrec_suite_ok(uint16_t version, uint16_t suite)
{
    return proxy_tlsrec_suite_find(version, suite) != NULL;
}

int proxy_tlsrec_suite_lengths(uint16_t version, uint16_t suite, size_t *key_len,
                               size_t *secret_len, size_t *fixed_iv_len)
{
    const struct proxy_tlsrec_suite *s = proxy_tlsrec_suite_find(version, suite);

    if (s == NULL)
        return -1;
    if (key_len != NULL)
        *key_len = s->key_len;
    if (secret_len != NULL)
        *secret_len = s->secret_len;
    if (fixed_iv_len != NULL)
        *fixed_iv_len = s->fixed_iv_len;
    return 0;
}

/* Runs a fetched KDF: 0 or -1. */
static int kdf_derive(EVP_KDF *kdf, uint8_t *out, size_t out_len, const OSSL_PARAM *params)
{
    EVP_KDF_CTX *k;
    int rc = -1;

    if (fetch() != 0 || kdf == NULL || (k = EVP_KDF_CTX_new(kdf)) == NULL)
        return -1;
    if (EVP_KDF_derive(k, out, out_len, params) > 0)
        rc = 0;
    EVP_KDF_CTX_free(k);
    return rc;
}

int proxy_tlsrec_hkdf_expand_label(const char *md, const uint8_t *secret, size_t secret_len,
                                   const char *label, const uint8_t *context, size_t context_len,
                                   uint8_t *out, size_t out_len)
{
    /* HkdfLabel: uint16 length, opaque label<7..255> = "tls13 " + label,
     * opaque context<0..255> */
    static const char prefix[] = "tls13 ";
    uint8_t info[2 + 1 + 255 + 1 + 255];
    size_t label_len = strlen(label), n = 0;
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY, rc;

    if (fetch() != 0 || sizeof(prefix) - 1 + label_len > 255 || context_len > 255 ||
        out_len > 0xffff)
        return -1;
    info[n++] = (uint8_t)(out_len >> 8);
    info[n++] = (uint8_t)out_len;
    info[n++] = (uint8_t)(sizeof(prefix) - 1 + label_len);
    memcpy(info + n, prefix, sizeof(prefix) - 1);
    n += sizeof(prefix) - 1;
    memcpy(info + n, label, label_len);
    n += label_len;
    info[n++] = (uint8_t)context_len;
    if (context_len > 0)
        memcpy(info + n, context, context_len);
    n += context_len;

    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)md, 0),
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, secret_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n),
        OSSL_PARAM_construct_end()
    };
    rc = kdf_derive(fetched.hkdf, out, out_len, params);
    OPENSSL_cleanse(info, sizeof(info));
    return rc;
}

int proxy_tlsrec_tls12_key_block(uint16_t suite, const uint8_t *master, size_t master_len,
                                 const uint8_t client_random[32], const uint8_t server_random[32],
                                 uint8_t *client_key, uint8_t *client_iv,
                                 uint8_t *server_key, uint8_t *server_iv)
{
    static const char label[] = "key expansion";
    const struct proxy_tlsrec_suite *s = proxy_tlsrec_suite_find(0x0303, suite);
    uint8_t seed[64], block[2 * PROXY_TLSREC_KEY_MAX + 2 * PROXY_TLSREC_IV_LEN];
    size_t kl, il;
    int rc;

    if (s == NULL || fetch() != 0)
        return -1;
    kl = s->key_len;
    il = s->fixed_iv_len;
    memcpy(seed, server_random, 32);
    memcpy(seed + 32, client_random, 32);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)s->md, 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, (void *)master, master_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, (void *)label, sizeof(label) - 1),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, seed, sizeof(seed)),
        OSSL_PARAM_construct_end()
    };
    /* AEAD suites have no MAC keys: client key, server key, client IV, server IV. */
    rc = kdf_derive(fetched.prf, block, 2 * kl + 2 * il, params);
    if (rc == 0) {
        memcpy(client_key, block, kl);
        memcpy(server_key, block + kl, kl);
        memcpy(client_iv, block + 2 * kl, il);
        memcpy(server_iv, block + 2 * kl + il, il);
    }
    OPENSSL_cleanse(block, sizeof(block));
    return rc;
}

int proxy_tlsrec_cipher_available(const struct proxy_tlsrec_suite *s)
{
    return fetch() == 0 && fetched.cipher[s->cipher] != NULL;
}

int proxy_tlsrec_dir_key(const struct proxy_tlsrec_suite *s, struct proxy_tlsrec_dir *d,
                         int enc, char *why, size_t whylen)
{
    EVP_CIPHER_CTX *ctx = d->ctx;
    EVP_CIPHER *cipher;

    if (fetch() != 0 || (cipher = fetched.cipher[s->cipher]) == NULL) {
        proxy_tlsrec_why(why, whylen, "cipher %s is not available", cipher_names[s->cipher]);
        return -1;
    }
    if (s->version == 0x0304 &&
        (proxy_tlsrec_hkdf_expand_label(s->md, d->secret, s->secret_len, "key", NULL, 0,
                                        d->key, s->key_len) != 0 ||
         proxy_tlsrec_hkdf_expand_label(s->md, d->secret, s->secret_len, "iv", NULL, 0,
                                        d->iv, PROXY_TLSREC_IV_LEN) != 0)) {
        proxy_tlsrec_why(why, whylen, "HKDF-Expand-Label with %s failed", s->md);
        return -1;
    }
    if (ctx == NULL && (ctx = d->ctx = EVP_CIPHER_CTX_new()) == NULL) {
        proxy_tlsrec_why(why, whylen, "out of memory for a cipher context");
        return -1;
    }
    /* The IV is set per record; both AEADs take 12 bytes by default. */
    if (!EVP_CipherInit_ex2(ctx, cipher, d->key, NULL, enc, NULL)) {
        proxy_tlsrec_why(why, whylen, "keying %s failed", cipher_names[s->cipher]);
        return -1;
    }
    return 0;
}

int proxy_tlsrec_dir_update(const struct proxy_tlsrec_suite *s, struct proxy_tlsrec_dir *d,
                            int enc, char *why, size_t whylen)
{
    uint8_t next[PROXY_TLSREC_SECRET_MAX];

    if (proxy_tlsrec_hkdf_expand_label(s->md, d->secret, s->secret_len, "traffic upd", NULL, 0,
                                       next, s->secret_len) != 0) {
        proxy_tlsrec_why(why, whylen, "KeyUpdate: deriving the next secret failed");
        return -1;
    }
    memcpy(d->secret, next, s->secret_len);
    OPENSSL_cleanse(next, sizeof(next));
    d->seq = 0;
    return proxy_tlsrec_dir_key(s, d, enc, why, whylen);
}
