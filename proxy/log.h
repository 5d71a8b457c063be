/*
 * log.h - the error log: one line per event on stderr,
 *   2026-11-25T04:00:00.123Z baton[PID] LEVEL: message
 * Each line is written with a single write(2) so lines from several threads
 * and processes sharing stderr never interleave.
 */
#ifndef BATON_PROXY_LOG_H
#define BATON_PROXY_LOG_H

#include <stddef.h>

#include "conf.h"

void proxy_log_set_level(enum conf_log_level level);
int  proxy_log_enabled(enum conf_log_level level);
void proxy_log(enum conf_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Writes "TIMESTAMP baton[PID] " into buf; returns its length. */
size_t proxy_log_prefix(char *buf, size_t len);

#define proxy_log_error(...) proxy_log(CONF_LOG_ERROR, __VA_ARGS__)
#define proxy_log_warn(...)  proxy_log(CONF_LOG_WARN, __VA_ARGS__)
#define proxy_log_info(...)  proxy_log(CONF_LOG_INFO, __VA_ARGS__)
#define proxy_log_debug(...) do { if (proxy_log_enabled(CONF_LOG_DEBUG)) \
                                  proxy_log(CONF_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
