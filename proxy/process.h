/*
 * process.h - starting worker processes; one implementation per OS
 * (process_unix.c: fork + exec of our own binary).
 */
#ifndef BATON_PROXY_PROCESS_H
#define BATON_PROXY_PROCESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "image.h"

/* Absolute path the running binary was started from (where new binaries
 * are installed; a reload opens whatever file is there then). */
int proxy_process_self_exe(char *buf, size_t len);

/* Starts the image as `argv0 --worker FD` with channel_fd inherited as FD,
 * and env ("NAME=value") added to (or replacing NAME in) its environment.
 * Returns 0 and the child's pid, or -1 with why. */
int proxy_process_spawn_worker(const struct proxy_image *img, const char *argv0,
                               int channel_fd, const char *env, pid_t *pid,
                               char *why, size_t whylen);

/* Describes a wait status: "exited with status 1", "killed by signal 9". */
void proxy_process_describe_status(int status, char *buf, size_t len);

/* Whether a status (as given to a proxy_process_exit_cb) is a clean exit
 * with code 0. */
int proxy_process_status_ok(int status);

/* How the master ends a worker: DRAIN stops accepting, drains and exits;
 * STOP closes everything at once; KILL ends the process with no say of its
 * own.  Unix: SIGQUIT, SIGTERM, SIGKILL.  Windows: the worker's "drain" and
 * "stop" events (osevents.h PROXY_OSEV_WIN_EVENT_FMT), TerminateProcess.
 * 0, or -1 with errno (ESRCH: no such process). */
enum proxy_process_stop { PROXY_PROCESS_DRAIN, PROXY_PROCESS_STOP, PROXY_PROCESS_KILL };
int proxy_process_stop(pid_t pid, enum proxy_process_stop how);

/* Reports every child process that ends, in the loop's thread: cb(pid,
 * status).  Unix: SIGCHLD + waitpid.  Windows: a wait on each process
 * handle proxy_process_spawn_worker opened, woken through the loop.  One
 * per process; the watch covers children started before and after it.
 * NULL on failure (logged). */
struct event_base;
typedef void proxy_process_exit_cb(pid_t pid, int status, void *arg);
struct proxy_process_watch;
struct proxy_process_watch *proxy_process_watch_new(struct event_base *base,
                                                    proxy_process_exit_cb *cb, void *arg);
void proxy_process_watch_free(struct proxy_process_watch *w);

#endif
