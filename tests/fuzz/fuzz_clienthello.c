/*
 * fuzz_clienthello.c - the passthrough ClientHello parser (proxy/clienthello.c)
 * as the proxy drives it: called again with everything received so far each
 * time more bytes arrive.
 *
 * Input: [split][bytes]; split chooses the sizes the bytes arrive in (see
 * fuzz_splitter).  Every prefix is parsed from its own exactly sized copy,
 * so a read past what has arrived is caught.
 *
 * Properties: once a prefix parses (OK), every longer one parses to the
 * same result, and once one is refused (INVALID), every longer one is too
 * (fuzz_prefixes).  A refusal says why; an accepted hello has a valid,
 * lower-case SNI and a bounded ALPN list.  The SNI then goes where the
 * proxy sends it, route matching (conf_route_match): it matches itself,
 * "*" + everything from its first dot, and not "*." + itself.
 */
#include <stdio.h>
#include <string.h>

#include "clienthello.h"
#include "conf.h"
#include "fuzz.h"

static int sni_ok(const char *s)
{
    size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789.-_*");

    return n >= 1 && n <= PROXY_HELLO_SNI_MAX && s[n] == '\0';
}

static void check_routing(const char *sni)
{
    char pattern[PROXY_HELLO_SNI_MAX + 3];
    const char *dot = strchr(sni, '.');

    FUZZ_ASSERT(conf_route_match(sni, sni));
    snprintf(pattern, sizeof(pattern), "*.%s", sni);
    FUZZ_ASSERT(!conf_route_match(pattern, sni));
    if (dot != NULL && dot != sni) {
        snprintf(pattern, sizeof(pattern), "*%s", dot);
        FUZZ_ASSERT(conf_route_match(pattern, sni));
    }
}

static enum fuzz_verdict parse(const uint8_t *p, size_t n, void *result)
{
    struct proxy_hello *h = result;
    char why[256];

    switch (proxy_clienthello_parse(p, n, h, why, sizeof(why))) {
    case PROXY_HELLO_OK:
        FUZZ_ASSERT(h->record_version >= 0x0301 && h->record_version <= 0x0304);
        FUZZ_ASSERT(h->client_version >> 8 == 3);
        FUZZ_ASSERT(h->has_sni ? sni_ok(h->sni) : h->sni[0] == '\0');
        if (h->has_sni)
            check_routing(h->sni);
        FUZZ_ASSERT(h->nalpn <= PROXY_HELLO_ALPN_MAX);
        for (unsigned i = 0; i < h->nalpn; i++)
            FUZZ_ASSERT(h->alpn[i][0] != '\0' &&
                        strnlen(h->alpn[i], sizeof(h->alpn[i])) < sizeof(h->alpn[i]));
        return FUZZ_DONE;
    case PROXY_HELLO_INVALID:
        FUZZ_ASSERT(why[0] != '\0' && strnlen(why, sizeof(why)) < sizeof(why));
        return FUZZ_REFUSED;
    case PROXY_HELLO_NEED_MORE:
        return FUZZ_MORE;
    }
    FUZZ_ASSERT(!"result out of range");
    return FUZZ_REFUSED;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct proxy_hello h;

    if (size < 1)
        return 0;
    memset(&h, 0, sizeof(h));
    fuzz_prefixes(data + 1, size - 1, data[0], parse, &h, sizeof(h));
    return 0;
}
