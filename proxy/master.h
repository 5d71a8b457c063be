/*
 * master.h - the master process: stable PID, owns the listening sockets and
 * the control socket, runs worker generations and never proxies traffic.
 *
 * Generation states:
 *
 *   spawn --> STARTING --READY--> ACTIVE --(reload done / quit)--> DRAINING
 *                |                   |                                |
 *                +--FAILED/exit/timeout (rollback: old stays ACTIVE)   |
 *                                    +--crash: respawn a new one       |
 *                                                          exit <-----+
 */
#ifndef BATON_PROXY_MASTER_H
#define BATON_PROXY_MASTER_H

#include <stddef.h>

#include "conf.h"

/* Runs the master on a configuration that has already been validated
 * (conf and its text, which is handed to workers verbatim).  Takes
 * ownership of both.  Returns the process exit status. */
int proxy_master_main(struct conf *conf, char *conf_text);

/* Entry point of `baton --resume-master FD`: the master re-executed itself
 * after a binary upgrade; FD holds its MASTER_STATE. */
int proxy_master_resume(int state_fd);

/* Entry point of `baton --check-master-state FD`: the dry run a master asks
 * of a new binary before re-executing into it.  Decodes and validates the
 * MASTER_STATE in FD (closed).  0, or -1 with why. */
int proxy_master_check_state(int state_fd, char *why, size_t whylen);

#endif
