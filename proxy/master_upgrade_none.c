/*
 * master_upgrade_none.c - master_upgrade.h where the master cannot replace
 * its own image in place (Windows: no exec that keeps the process, and the
 * Service Control Manager watches the master's PID).  The workers of a
 * reload run the new binary; the master keeps its own until the service
 * is restarted.
 */
#include <stdio.h>
#include <unistd.h>

#include "log.h"
#include "master.h"
#include "master_int.h"

#define UPGRADE_REFUSED "restart the service to upgrade the master"

void proxy_master_reexec(struct master *m)
{
    m->reexec_pending = 0;
    if (m->state != MASTER_RUNNING)
        return;
    proxy_log_warn("master: the workers run a new binary (%s); the master keeps baton %s: %s",
                   m->exe, BATON_VERSION, UPGRADE_REFUSED);
    proxy_master_upgrade_kept(m, "the master kept its old binary: " UPGRADE_REFUSED);
}

/* Nothing starts a master this way here; a state passed anyway is closed
 * as the contract says. */
static void close_state(int state_fd)
{
    if (state_fd >= 0)
        close(state_fd);
}

int proxy_master_restore(struct master *m, int state_fd, char *why, size_t whylen)
{
    close_state(state_fd);
    snprintf(why, whylen, "this build cannot resume a master in place: %s", UPGRADE_REFUSED);
    return -1;
}

void proxy_master_unblock_signals(void)
{
}

int proxy_master_check_state(int state_fd, char *why, size_t whylen)
{
    close_state(state_fd);
    snprintf(why, whylen, "this build cannot resume a master in place: %s", UPGRADE_REFUSED);
    return -1;
}
