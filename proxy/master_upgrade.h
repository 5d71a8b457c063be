/*
 * master_upgrade.h - the master following its workers into a new binary.
 * A reload whose new worker runs another executable ends here once that
 * worker is ready.  One implementation per OS:
 *   master_exec.c          Linux: the master re-executes the new binary in
 *                          place (memfd + execve), keeping its PID, its
 *                          sockets and its workers
 *   master_upgrade_none.c  Windows: refused ("restart the service to
 *                          upgrade the master"); the workers run the new
 *                          binary, the master keeps its own
 */
#ifndef BATON_PROXY_MASTER_UPGRADE_H
#define BATON_PROXY_MASTER_UPGRADE_H

#include <stddef.h>

struct master;

/* Runs m->serving in place of the master (or keeps the running binary and
 * says why): answers the reload client either way. */
void proxy_master_reexec(struct master *m);
/* The new image's side: rebuilds m from the state in state_fd (closed).
 * 0, or -1 with why. */
int  proxy_master_restore(struct master *m, int state_fd, char *why, size_t whylen);
/* The OS events held across the exec are let in once the new image
 * listens for them. */
void proxy_master_unblock_signals(void);

/* master_reload.c: the master keeps its binary after a reload that
 * changed the workers' (note says why, for the log, the service manager
 * and the reload client). */
void proxy_master_upgrade_kept(struct master *m, const char *note);

#endif
