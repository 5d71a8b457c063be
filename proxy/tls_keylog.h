/*
 * tls_keylog.h - the TLS key log, for debugging only: `[global]
 * tls_keylog_file`.  Every secret OpenSSL reports (SSL_CTX keylog callback)
 * is appended in the NSS key log format that Wireshark reads (as with
 * SSLKEYLOGFILE).  Anyone who can read the file can decrypt the traffic.
 *
 * Each line is one write(2) to a descriptor opened with O_APPEND, so the
 * lines of every loop thread, worker and generation sharing the file never
 * interleave.  The file is created with mode 0600.
 */
#ifndef BATON_PROXY_TLS_KEYLOG_H
#define BATON_PROXY_TLS_KEYLOG_H

#include <stddef.h>

#include "conf.h"

/* Opens path for appending ("" = off: lines are dropped).  Called by a
 * worker before its TLS contexts are built.  0, or -1 with why. */
int  proxy_tls_keylog_open(const char *path, char *why, size_t n);

/* Appends one line (as OpenSSL gives it, without the newline) and its
 * newline.  A no-op while off.  A failed write is counted and logged,
 * rate-limited; the connection goes on.  Safe from any thread. */
void proxy_tls_keylog_line(const char *line);

/* Closes the file (a worker at exit, once its loops have ended). */
void proxy_tls_keylog_close(void);

/* `baton -t`, start-up and a reload: the file named by c can be opened
 * for appending (it is created, 0600, if missing), else -1 with
 * "FILE:LINE: tls_keylog_file PATH: why\n" in err. */
int  proxy_tls_keylog_check(const struct conf *c, char *err, size_t n);

#endif
