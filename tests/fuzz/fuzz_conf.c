/*
 * fuzz_conf.c - the configuration loader (conf_load_text) on arbitrary text.
 *
 * Nothing is opened: conf_load_text only parses and validates (certificate
 * paths are checked when TLS contexts are built, not here).  Properties:
 * a rejected text leaves *out zeroed and explains itself as FILE:LINE lines;
 * an accepted one satisfies what the rest of baton relies on without checking
 * again (resolved backends, paired certificates, bounded strings).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conf.h"
#include "fuzz.h"

#define PATH "fuzz.ini"

/* A fixed-size string field is terminated inside its array. */
#define TERMINATED(field) (strnlen((field), sizeof(field)) < sizeof(field))

static int name_ok(const char *s)
{
    size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-");

    return n > 0 && n < CONF_NAME_MAX && s[n] == '\0';
}

static void check_addr(const struct conf_addr *a)
{
    FUZZ_ASSERT(TERMINATED(a->text));
    FUZZ_ASSERT(a->ss.ss_family == AF_INET || a->ss.ss_family == AF_INET6);
    FUZZ_ASSERT(a->len > 0 && a->len <= sizeof(a->ss));
}

static int backend_of(const struct conf *c, const struct conf_backend *b)
{
    return b != NULL && b >= c->backends && b < c->backends + c->nbackends;
}

static void check_routes(const struct conf *c, const struct conf_route *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        FUZZ_ASSERT(TERMINATED(r[i].pattern) && r[i].pattern[0] != '\0');
        FUZZ_ASSERT(backend_of(c, r[i].backend));
        FUZZ_ASSERT(strcmp(r[i].backend->name, r[i].backend_name) == 0);
    }
}

static void check_listener(const struct conf *c, const struct conf_listener *l)
{
    FUZZ_ASSERT(name_ok(l->name));
    FUZZ_ASSERT(l->nbinds >= 1);
    for (size_t i = 0; i < l->nbinds; i++)
        check_addr(&l->binds[i]);
    FUZZ_ASSERT(backend_of(c, l->backend));
    FUZZ_ASSERT(strcmp(l->backend->name, l->backend_name) == 0);
    FUZZ_ASSERT(l->tls_min <= l->tls_max);
    FUZZ_ASSERT(TERMINATED(l->alpn) && TERMINATED(l->tls_ciphers) &&
                TERMINATED(l->tls_ciphersuites) && TERMINATED(l->tls_client_ca));
    check_routes(c, l->routes, l->nroutes);
    check_routes(c, l->alpn_routes, l->nalpn_routes);
    switch (l->tls) {
    case CONF_TLS_OFF:
        FUZZ_ASSERT(l->ncerts == 0 && l->nkeys == 0 && l->nroutes == 0 &&
                    l->nalpn_routes == 0 && l->alpn[0] == '\0');
        break;
    case CONF_TLS_ON:
        FUZZ_ASSERT(l->ncerts >= 1 && l->ncerts == l->nkeys);
        for (size_t i = 0; i < l->ncerts; i++)
            FUZZ_ASSERT(TERMINATED(l->certs[i].cert) && l->certs[i].cert[0] != '\0' &&
                        TERMINATED(l->certs[i].key) && l->certs[i].key[0] != '\0');
        if (l->verify_client != CONF_VERIFY_OFF)
            FUZZ_ASSERT(l->tls_client_ca[0] != '\0');
        break;
    case CONF_TLS_PASSTHROUGH:
        FUZZ_ASSERT(l->ncerts == 0 && l->nkeys == 0 && l->alpn[0] == '\0');
        break;
    default:
        FUZZ_ASSERT(!"listener tls mode out of range");
    }
}

static void check_backend(const struct conf_backend *b)
{
    FUZZ_ASSERT(name_ok(b->name));
    FUZZ_ASSERT(b->nservers >= 1);
    for (size_t i = 0; i < b->nservers; i++) {
        FUZZ_ASSERT(TERMINATED(b->servers[i].name) && b->servers[i].name[0] != '\0');
        FUZZ_ASSERT(b->servers[i].weight >= 1 && b->servers[i].weight <= 256);
        check_addr(&b->servers[i].addr);
    }
    FUZZ_ASSERT(b->connect_timeout_ms > 0 && b->check_timeout_ms > 0);
    FUZZ_ASSERT(TERMINATED(b->tls_ca) && TERMINATED(b->tls_sni) && TERMINATED(b->tls_cert) &&
                TERMINATED(b->tls_key));
    FUZZ_ASSERT((b->tls_cert[0] != '\0') == (b->tls_key[0] != '\0'));
    if (!b->tls)
        FUZZ_ASSERT(b->tls_ca[0] == '\0' && b->tls_sni[0] == '\0' && b->tls_cert[0] == '\0' &&
                    b->tls_key[0] == '\0' && b->check != CONF_CHECK_TLS);
}

static void check_accepted(const struct conf *c)
{
    FUZZ_ASSERT(strcmp(c->path, PATH) == 0);
    FUZZ_ASSERT(c->global.threads >= 1 && c->global.threads <= 64);
    FUZZ_ASSERT(TERMINATED(c->global.control) && c->global.control[0] != '\0');
    FUZZ_ASSERT(TERMINATED(c->global.access_log) && c->global.access_log[0] != '\0');
    FUZZ_ASSERT(c->nlisteners >= 1 && c->nbackends >= 1);
    for (size_t i = 0; i < c->nlisteners; i++)
        check_listener(c, &c->listeners[i]);
    for (size_t i = 0; i < c->nbackends; i++)
        check_backend(&c->backends[i]);
}

/* Every complete line is "fuzz.ini:LINE: message" (LINE may be 0). */
static void check_errors(const char *err)
{
    const char *p = err, *nl;

    FUZZ_ASSERT(strncmp(err, PATH ":", strlen(PATH ":")) == 0);
    while ((nl = strchr(p, '\n')) != NULL) {
        const char *q = p + strlen(PATH ":");
        size_t digits;

        FUZZ_ASSERT(strncmp(p, PATH ":", strlen(PATH ":")) == 0);
        digits = strspn(q, "0123456789");
        FUZZ_ASSERT(digits > 0 && q[digits] == ':' && q[digits + 1] == ' ');
        FUZZ_ASSERT(q + digits + 2 < nl);      /* a message, not nothing */
        p = nl + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char err[64 * 1024];
    static const struct conf zero;
    struct conf c;
    char *text;
    int rc;

    if (size > CONF_TEXT_MAX)
        return 0;
    /* The loader takes a C string: a NUL byte simply ends the text. */
    text = malloc(size + 1);
    FUZZ_ASSERT(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    rc = conf_load_text(PATH, text, &c, err, sizeof(err));
    if (rc == 0) {
        FUZZ_ASSERT(err[0] == '\0');
        check_accepted(&c);
        conf_free(&c);
    } else {
        FUZZ_ASSERT(rc == -1);
        FUZZ_ASSERT(memcmp(&c, &zero, sizeof(c)) == 0);
        check_errors(err);
    }
    free(text);
    return 0;
}
