/*
 * accesslog.h - one line per finished client connection.
 */
#ifndef BATON_PROXY_ACCESSLOG_H
#define BATON_PROXY_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>

struct proxy_worker;
struct proxy_conn;

/* Opens global.access_log: returns an fd, -1 for "off", or -2 on error. */
int  proxy_accesslog_open(const char *target, char *why, size_t whylen);
void proxy_accesslog_write(struct proxy_worker *w, const struct proxy_conn *c, uint64_t now_ms);

#endif
