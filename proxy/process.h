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

/* Runs the image as `argv0 --check-master-state FD` (state_fd inherited as
 * FD) and waits for it at most timeout_ms.  Returns 0 if it exited with
 * status 0, or -1 with why (its exit status, or the time-out: then it is
 * killed). */
int proxy_process_check_state(const struct proxy_image *img, const char *argv0, int state_fd,
                              uint64_t timeout_ms, char *why, size_t whylen);

/* Describes a wait status: "exited with status 1", "killed by signal 9". */
void proxy_process_describe_status(int status, char *buf, size_t len);

#endif
