/*
 * process_unix.h - what process_unix.c offers beyond process.h, for the
 * master's in-place binary upgrade (master_exec.c), which only Unix has.
 */
#ifndef BATON_PROXY_PROCESS_UNIX_H
#define BATON_PROXY_PROCESS_UNIX_H

#include <stddef.h>
#include <stdint.h>

#include "process.h"

/* Runs the image as `argv0 --check-master-state FD` (state_fd inherited as
 * FD) and waits for it at most timeout_ms.  Returns 0 if it exited with
 * status 0, or -1 with why (its exit status, or the time-out: then it is
 * killed). */
int proxy_process_check_state(const struct proxy_image *img, const char *argv0, int state_fd,
                              uint64_t timeout_ms, char *why, size_t whylen);

#endif
