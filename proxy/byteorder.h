/*
 * byteorder.h - big-endian (network order) fields of the protocols baton
 * parses and builds: TLS records and handshakes, PROXY v2.  Callers check
 * the bounds first; these only assemble the bytes.
 */
#ifndef BATON_PROXY_BYTEORDER_H
#define BATON_PROXY_BYTEORDER_H

#include <stdint.h>

static inline unsigned proxy_be16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static inline uint32_t proxy_be24(const uint8_t *p)
{
    return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static inline uint64_t proxy_be64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static inline void proxy_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static inline void proxy_put_be16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

#endif
