/*
 * log.h - the error log: one line per event on stderr,
 *   2026-11-25T04:00:00.123Z baton[PID] LEVEL: message
 * Each line is written with a single write(2) of at most PROXY_LOG_LINE_MAX
 * bytes (no more than PIPE_BUF), so lines from several threads and
 * processes sharing stderr never interleave.
 *
 * Values from outside are escaped by the caller (logsafe.h); as a last
 * resort every line is filtered too, so a byte outside printable ASCII
 * that a caller missed still shows as \xHH and can never end a line.
 */
#ifndef BATON_PROXY_LOG_H
#define BATON_PROXY_LOG_H

#include <stddef.h>

#include "conf.h"
#include "port_libc.h"

#define PROXY_LOG_LINE_MAX 4096   /* bytes, the newline included */

void proxy_log_set_level(enum conf_log_level level);
int  proxy_log_enabled(enum conf_log_level level);
void proxy_log(enum conf_log_level level, const char *fmt, ...)
    PORT_PRINTF(2, 3);
/* Each line of text (lines end with '\n') as its own log line, after lead. */
void proxy_log_text(enum conf_log_level level, const char *lead, const char *text);
/* Writes "TIMESTAMP baton[PID] LEVEL: msg\n" to fd in one write, filtered
 * and cut to PROXY_LOG_LINE_MAX (the access log shares the format).
 * 0, or -1 if the write failed (errno set). */
int  proxy_log_write(int fd, const char *level, const char *msg);

#define proxy_log_error(...) proxy_log(CONF_LOG_ERROR, __VA_ARGS__)
#define proxy_log_warn(...)  proxy_log(CONF_LOG_WARN, __VA_ARGS__)
#define proxy_log_info(...)  proxy_log(CONF_LOG_INFO, __VA_ARGS__)
#define proxy_log_debug(...) do { if (proxy_log_enabled(CONF_LOG_DEBUG)) \
                                  proxy_log(CONF_LOG_DEBUG, __VA_ARGS__); } while (0)

/*
 * Messages one per refused client: a flood of bad clients must not become
 * a flood of log lines.  Each kind logs at most PROXY_LOG_BURST lines a
 * second; what is suppressed is counted and reported as
 * "(N similar messages suppressed)" at the end of the next line of that
 * kind, or by proxy_log_flush_suppressed once its second is over.
 */
#define PROXY_LOG_BURST 10

enum proxy_log_kind {
    PROXY_LOGK_PROXY_HEADER = 0,  /* bad or missing PROXY header */
    PROXY_LOGK_CLIENT_HELLO,      /* bad or missing ClientHello (passthrough) */
    PROXY_LOGK_HANDSHAKE,         /* failed TLS handshake with a client */
    PROXY_LOGK_CONNECT,           /* failed connect to a server */
    PROXY_LOGK_NO_SERVER,         /* client closed: no server could be connected */
    PROXY_LOGK_LOCAL_LIMIT,       /* connect refused by a local limit */
    PROXY_LOGK_HANDOFF_UNKNOWN,   /* handoff message or extension of a newer peer, skipped */
    PROXY_LOGK_COUNT
};

void proxy_log_limited(enum proxy_log_kind kind, const char *fmt, ...)
    PORT_PRINTF(2, 3);
/* Logs the counts whose second is over (all: every count, at exit). */
void proxy_log_flush_suppressed(int all);

#endif
