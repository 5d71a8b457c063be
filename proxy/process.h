/*
 * process.h - starting worker processes; one implementation per OS
 * (process_unix.c: fork + exec of our own binary).
 */
#ifndef BATON_PROXY_PROCESS_H
#define BATON_PROXY_PROCESS_H

#include <stddef.h>
#include <sys/types.h>

/* Absolute path of the running binary, resolved once at start so a later
 * reload runs whatever file is at that path then. */
int proxy_process_self_exe(char *buf, size_t len);

/* Starts `exe --worker FD` with channel_fd inherited as FD.  Returns 0 and
 * the child's pid, or -1 with why. */
int proxy_process_spawn_worker(const char *exe, int channel_fd, pid_t *pid,
                               char *why, size_t whylen);

/* Describes a wait status: "exited with status 1", "killed by signal 9". */
void proxy_process_describe_status(int status, char *buf, size_t len);

#endif
