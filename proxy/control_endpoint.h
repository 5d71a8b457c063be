/*
 * control_endpoint.h - where control clients reach the master, and how
 * `baton -s` reaches it; the command exchange itself (control.c,
 * master_ctl.c) is the same on every OS.  One implementation per OS:
 *   control_endpoint_unix.c  an AF_UNIX stream socket at [global] control,
 *                            mode 0600 (0660 with control_group), peers
 *                            checked with SO_PEERCRED (peercred_linux.c)
 *   control_endpoint_win.c   a named pipe \\.\pipe\baton-<hash of the
 *                            configuration file's absolute path> whose DACL
 *                            admits SYSTEM, Administrators and the master's
 *                            own account; served by a thread (libevent's
 *                            win32 backend waits on sockets only) that
 *                            bridges each pipe client to a socket pair the
 *                            loop serves
 * Either way the master's loop gets each admitted client as a connected,
 * non-blocking stream socket, with who it is.
 */
#ifndef BATON_PROXY_CONTROL_ENDPOINT_H
#define BATON_PROXY_CONTROL_ENDPOINT_H

#include <stddef.h>

#include "conf.h"
#include "peercred.h"

struct event_base;
struct evbuffer_iovec;
struct proxy_control_endpoint;

/* A client was admitted: fd (taken over by the callee) is a connected,
 * non-blocking stream socket carrying its command and the answer. */
typedef void proxy_control_client_cb(int fd, const struct proxy_peer_cred *cred, void *arg);

/* The name clients connect to for the configuration file conf_path whose
 * [global] control is control: Unix the socket path, Windows the pipe.
 * 0, or -1 with why. */
int proxy_control_endpoint_name(const char *conf_path, const char *control, char *out,
                                size_t outlen, char *why, size_t whylen);

/* Creates the endpoint c names (a live one of another master is an error).
 * Clients wait until proxy_control_endpoint_start.  NULL with why. */
struct proxy_control_endpoint *proxy_control_endpoint_open(const struct conf *c, char *why,
                                                           size_t whylen);
/* Unix binary upgrade: the endpoint as the descriptor the previous image
 * handed over (proxy_control_endpoint_fd).  NULL with why. */
struct proxy_control_endpoint *proxy_control_endpoint_adopt(int fd, const struct conf *c,
                                                            char *why, size_t whylen);
/* The descriptor to hand over across exec, or -1 where there is none. */
int proxy_control_endpoint_fd(const struct proxy_control_endpoint *ep);

/* Starts admitting clients to cb, in base's thread.  Clients the master
 * may not serve are answered "ERR ..." and closed here.  0 or -1 (logged). */
int proxy_control_endpoint_start(struct proxy_control_endpoint *ep, struct event_base *base,
                                 const struct conf_global *g, proxy_control_client_cb *cb,
                                 void *arg);
/* Stops admitting and removes the endpoint (its socket file). */
void proxy_control_endpoint_close(struct proxy_control_endpoint *ep);

/* Answers one line "ERR why" on a client's socket (from cb) and closes it. */
void proxy_control_endpoint_refuse(int fd, const char *why);
/* Best-effort, non-blocking send of vec[0..n) on a client's socket, outside
 * the loop (a master about to exit).  Never raises SIGPIPE. */
void proxy_control_endpoint_send_now(int fd, const struct evbuffer_iovec *vec, int n);

/* Gives the endpoint the access g asks for (Unix: mode 0600, or 0660 and
 * control_group's group).  0 or -1 with why. */
int proxy_control_set_access(const struct conf_global *g, char *why, size_t whylen);

/* What `-t` and start-up say about c's control endpoint: an error
 * (FILE:LINE lines in err, returns -1) if it cannot be created there, a
 * warning (in warn, "" if none) if others could take it first. */
int proxy_control_check_path(const struct conf *c, char *err, size_t errlen, char *warn,
                             size_t warnlen);

/* Client side: connects to name, checks the server is a master it may
 * trust (Unix: run by root or this user; Windows: by SYSTEM, an
 * administrator or this user), sends line[0..len) and reads the whole
 * answer until the master closes, waiting at most timeout_ms for each
 * part.  0 with *reply (malloc'd, NUL-terminated, *replylen bytes), or -1
 * with why. */
int proxy_control_endpoint_exchange(const char *name, const char *line, size_t len,
                                    int timeout_ms, char **reply, size_t *replylen, char *why,
                                    size_t whylen);

#endif
