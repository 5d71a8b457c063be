/*
 * parse.h - the one parser for each kind of configuration value.
 *
 * Every function returns 0 on success and -1 on failure; on failure `why`
 * (if not NULL) receives a short reason suitable after "FILE:LINE: ",
 * e.g. "invalid duration '5x' (expected a number followed by ms, s, m or h)".
 */
#ifndef BATON_CONF_PARSE_H
#define BATON_CONF_PARSE_H

#include <stddef.h>
#include <stdint.h>

struct conf_addr;

/* "250ms", "3s", "5m", "1h", "0"; a bare number means seconds. */
int conf_parse_duration(const char *s, uint64_t *ms, char *why, size_t whylen);

/* "512", "16k", "4m", "1g" (powers of 1024); bare number = bytes. */
int conf_parse_size(const char *s, uint64_t *bytes, char *why, size_t whylen);

/* Consumes the decimal digits at *p (advanced past them), for a value with
 * a unit of its own after them.  How many there were (0: none), or -1 when
 * the number does not fit in 64 bits. */
int conf_scan_digits(const char **p, uint64_t *v);

/* Unsigned decimal within [min, max]. */
int conf_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out,
                    char *why, size_t whylen);

/*
 * "127.0.0.1:8080", "[::1]:8080", "*:8080" (IPv4 any), "[::]:8080".
 * Numeric addresses only (no DNS at parse time).  Port 0..65535 (0 = let the
 * kernel choose, useful in tests).
 */
int conf_parse_address(const char *s, struct conf_addr *out, char *why, size_t whylen);

/* Formats a sockaddr as "1.2.3.4:80" / "[::1]:80" (used for logs too). */
void conf_format_sockaddr(const void *sa, size_t salen, char *buf, size_t buflen);

#endif
