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

static inline void proxy_put_be16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

#endif
