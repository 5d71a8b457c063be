/*
 * fuzz_proxyproto.c - the PROXY protocol v1/v2 parser (proxy/proxyproto.c) as
 * an accept_proxy listener drives it: called again with everything received
 * so far each time more bytes arrive; and the encoders, on what it parsed.
 *
 * Input: [split][bytes]; split chooses the sizes the bytes arrive in (see
 * fuzz_splitter).  Every prefix is parsed from its own exactly sized copy.
 *
 * Properties: once a prefix parses (OK) every longer one gives the same
 * header, and once one is refused every longer one is too; a refusal says
 * why and leaves no half-filled result; an accepted header ends where it
 * says (CRLF for v1, the length for v2) within the protocol's limits; and
 * encoding an accepted header as v1 and as v2 parses back to the same
 * addresses (v2: and the same TLVs baton keeps).
 */
#include <netinet/in.h>
#include <string.h>

#include "fuzz.h"
#include "proxyproto.h"

static void check_addrs(const struct proxy_pp_info *p)
{
    if (p->local)
        return;
    FUZZ_ASSERT(p->src.ss_family == p->dst.ss_family);
    if (p->src.ss_family == AF_INET)
        FUZZ_ASSERT(p->srclen == sizeof(struct sockaddr_in) &&
                    p->dstlen == sizeof(struct sockaddr_in));
    else
        FUZZ_ASSERT(p->src.ss_family == AF_INET6 &&
                    p->srclen == sizeof(struct sockaddr_in6) &&
                    p->dstlen == sizeof(struct sockaddr_in6));
}

/* What one parse says, compared bytewise across prefixes. */
struct parsed {
    struct proxy_pp_info info;
    size_t               consumed;
};

static enum fuzz_verdict check_ok(const uint8_t *buf, size_t len, const struct parsed *r)
{
    FUZZ_ASSERT(r->consumed <= len);
    if (buf[0] == 'P')
        FUZZ_ASSERT(r->consumed >= 15 && r->consumed <= PROXY_PP_V1_MAX &&
                    buf[r->consumed - 2] == '\r' && buf[r->consumed - 1] == '\n');
    else
        FUZZ_ASSERT(r->consumed >= 16 && r->consumed <= PROXY_PP_MAX &&
                    r->consumed == 16 + ((size_t)buf[14] << 8 | buf[15]));
    check_addrs(&r->info);
    return FUZZ_DONE;
}

static enum fuzz_verdict parse(const uint8_t *buf, size_t len, void *result)
{
    static const struct proxy_pp_info zero;
    struct parsed *r = result;
    char why[256];

    memset(r, 0, sizeof(*r));
    switch (proxy_pp_parse(buf, len, &r->info, &r->consumed, why, sizeof(why))) {
    case PROXY_PP_OK:
        return check_ok(buf, len, r);
    case PROXY_PP_INVALID:
        FUZZ_ASSERT(why[0] != '\0' && r->consumed == 0);
        FUZZ_ASSERT(memcmp(&r->info, &zero, sizeof(zero)) == 0);
        return FUZZ_REFUSED;
    case PROXY_PP_NEED_MORE:
        FUZZ_ASSERT(r->consumed == 0);
        return FUZZ_MORE;
    }
    FUZZ_ASSERT(!"result out of range");
    return FUZZ_REFUSED;
}

/* Same header as far as anyone can tell: string fields compare as strings
 * (a shorter TLV seen later leaves bytes behind its NUL). */
static int same_info(const struct proxy_pp_info *a, const struct proxy_pp_info *b)
{
    return a->local == b->local && a->srclen == b->srclen && a->dstlen == b->dstlen &&
           memcmp(&a->src, &b->src, sizeof(a->src)) == 0 &&
           memcmp(&a->dst, &b->dst, sizeof(a->dst)) == 0 &&
           strcmp(a->alpn, b->alpn) == 0 && strcmp(a->authority, b->authority) == 0 &&
           a->ssl == b->ssl && strcmp(a->ssl_version, b->ssl_version) == 0 &&
           strcmp(a->ssl_cipher, b->ssl_cipher) == 0 && a->ssl_client_cert == b->ssl_client_cert;
}

/* Encodes p as v2 or v1, parses that, and compares with `want`. */
static void round_trip(const struct proxy_pp_info *p, const struct proxy_pp_info *want, int v2)
{
    static struct parsed back;
    uint8_t buf[PROXY_PP_MAX];
    size_t n;

    n = v2 ? proxy_pp_encode_v2(p, buf, sizeof(buf))
           : proxy_pp_encode_v1(p, (char *)buf, sizeof(buf));
    FUZZ_ASSERT(n > 0);
    FUZZ_ASSERT(parse(buf, n, &back) == FUZZ_DONE && back.consumed == n);
    FUZZ_ASSERT(same_info(&back.info, want));
}

static void check_encoders(const struct proxy_pp_info *p)
{
    static struct proxy_pp_info want;

    /* v2 carries the TLVs baton keeps; SSL details only under the SSL flag. */
    memcpy(&want, p, sizeof(want));
    if (!want.ssl) {
        want.ssl_version[0] = want.ssl_cipher[0] = '\0';
        want.ssl_client_cert = 0;
    }
    round_trip(p, &want, 1);

    /* v1 carries addresses only. */
    memset(&want, 0, sizeof(want));
    want.local = p->local;
    if (!p->local) {
        memcpy(&want.src, &p->src, sizeof(want.src));
        memcpy(&want.dst, &p->dst, sizeof(want.dst));
        want.srclen = p->srclen;
        want.dstlen = p->dstlen;
    }
    round_trip(p, &want, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct parsed r;

    if (size < 1)
        return 0;
    if (fuzz_prefixes(data + 1, size - 1, data[0], parse, &r, sizeof(r)) == FUZZ_DONE)
        check_encoders(&r.info);
    return 0;
}
