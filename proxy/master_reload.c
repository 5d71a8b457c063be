/*
 * master_reload.c - a reload, from the file read again to the new generation
 * serving: validate everything first (nginx's rule: nothing running changes
 * until the whole configuration is good), bind new addresses, start the
 * generation from the binary opened once, then commit (retire the old
 * generations, hand their connections over, follow a new binary) or roll
 * back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "log.h"
#include "logsafe.h"
#include "master_int.h"
#include "notify.h"
#include "process.h"
#include "tls.h"
#include "tls_ciphers.h"
#include "tls_keylog.h"

/* A new control_group takes effect with the configuration: the socket
 * file's group and mode follow (who may connect is checked against the
 * running configuration at every accept anyway). */
static void reload_control_access(struct master *m)
{
    const struct conf_global *now = &m->conf.global, *next = &m->next_conf.global;
    char why[512];

    if (strcmp(now->control_group, next->control_group) == 0 &&
        now->control_gid == next->control_gid)
        return;
    if (proxy_control_set_access(next, why, sizeof(why)) != 0)
        proxy_log_error("reload: %s", why);
    else
        proxy_log_info("control socket %s: mode %s%s", next->control,
                       next->control_group[0] ? "0660, group " : "0600", next->control_group);
}

/* The reload's new generation is serving: retire the old ones and make the
 * loaded configuration the running one. */
void proxy_master_reload_commit(struct master *m, struct master_gen *g)
{
    int changed;

    for (struct master_gen *o = m->gens; o != NULL; o = o->next) {
        if (o == g)
            continue;
        if (o->state == GEN_STARTING) {
            /* A replacement for a worker that crashed during the reload runs
             * the old configuration: it is no longer wanted. */
            proxy_log_info("worker %ld generation %u is superseded by generation %u; "
                           "stopping it", (long)o->pid, o->id, g->id);
            o->state = GEN_DRAINING;
            proxy_process_stop(o->pid, PROXY_PROCESS_STOP);
            proxy_master_gen_drain_deadline(o, m->conf.global.drain_timeout_ms, 0);
            continue;
        }
        if (o->state != GEN_ACTIVE)
            continue;
        o->state = GEN_DRAINING;
        /* m->conf is still the configuration `o` runs. */
        proxy_master_handoff(m, o, g, m->conf.global.threads);
        proxy_master_gen_send_empty(o, HANDOFF_DRAIN);
        /* Its own configuration's drain_timeout (m->conf is still the old one). */
        proxy_master_gen_drain_deadline(o, m->conf.global.drain_timeout_ms, 0);
    }
    g->is_reload = 0;
    m->upgrading = NULL;
    /* A respawn pending from a crash is served by this generation now. */
    if (m->respawn_timer != NULL)
        evtimer_del(m->respawn_timer);
    reload_control_access(m);
    conf_free(&m->conf);
    m->conf = m->next_conf;
    memset(&m->next_conf, 0, sizeof(m->next_conf));
    free(m->text);
    m->text = m->next_text;
    m->next_text = NULL;
    for (size_t i = 0; i < m->nsocks; i++) {
        /* A removed socket keeps its old name for the "closed" log line. */
        if (m->socks[i].in_next)
            memcpy(m->socks[i].name, m->socks[i].next_name, sizeof(m->socks[i].name));
        m->socks[i].in_current = m->socks[i].in_next;
        m->socks[i].in_next = 0;
    }
    proxy_master_socks_compact(m);
    proxy_log_set_level(m->conf.global.log_level);
    proxy_log_info("reload complete: generation %u (worker %ld) is active", g->id, (long)g->pid);
    snprintf(m->reexec_reply, sizeof(m->reexec_reply), "reloaded: generation %u worker pid %ld",
             g->id, (long)g->pid);
    /* The generation's binary is now the serving one.  Only that very file,
     * proven by the ready worker, is what the master may follow into. */
    changed = !proxy_image_same(&m->next_image, &m->image);
    proxy_image_move(&m->serving, &m->next_image);
    if (changed) {
        /* The master follows, keeping its PID.  The reload client is
         * answered by the new image. */
        m->reexec_pending = 1;
        proxy_master_timer_add_ms(m->reexec_timer, 0);
        return;
    }
    proxy_notify("READY=1\nSTATUS=serving: generation %u (worker %ld)", g->id, (long)g->pid);
    if (m->reload_ctl != NULL) {
        proxy_master_ctl_reply(m->reload_ctl, 1, "%s\n", m->reexec_reply);
        m->reload_ctl = NULL;
    }
}

void proxy_master_upgrade_kept(struct master *m, const char *note)
{
    proxy_notify("READY=1\nSTATUS=serving (%s)", note);
    if (m->reload_ctl != NULL) {
        proxy_master_ctl_reply(m->reload_ctl, 1, "%s (%s)\n", m->reexec_reply, note);
        m->reload_ctl = NULL;
    }
}

/* The reload's new generation failed: forget the loaded configuration; the
 * running generation was never told to stop. */
/* Drops what a reload loaded: its configuration, binary and new sockets. */
static void reload_forget(struct master *m)
{
    proxy_image_close(&m->next_image);
    conf_free(&m->next_conf);
    free(m->next_text);
    m->next_text = NULL;
    for (size_t i = 0; i < m->nsocks; i++)
        m->socks[i].in_next = 0;
    proxy_master_socks_compact(m);
}

void proxy_master_reload_abort(struct master *m, const char *reason)
{
    m->upgrading = NULL;
    reload_forget(m);
    proxy_log_error("reload failed: %s; the running generation keeps serving", reason);
    proxy_notify("READY=1\nSTATUS=serving (last reload failed)");
    if (m->reload_ctl != NULL) {
        proxy_master_ctl_reply(m->reload_ctl, 0, "reload failed: %s\n", reason);
        m->reload_ctl = NULL;
    }
}

static int reload_start(struct master *m, char *why, size_t n)
{
    char err[CONF_ERR_MAX * 4];
    char *text;
    size_t len;

    if (m->state != MASTER_RUNNING) {
        snprintf(why, n, "the master is stopping");
        return -1;
    }
    if (m->reexec_pending) {
        snprintf(why, n, "the master is switching to its new binary; try again in a moment");
        return -1;
    }
    if (m->upgrading != NULL) {
        snprintf(why, n, "a reload is already in progress (generation %u starting); "
                 "try again when it completes", m->upgrading->id);
        return -1;
    }
    text = conf_read_file(m->conf.path, &len, err, sizeof(err));
    if (text == NULL) {
        snprintf(why, n, "%s", err);
        return -1;
    }
    if (conf_load_text(m->conf.path, text, &m->next_conf, err, sizeof(err)) != 0 ||
        proxy_tls_check_conf(&m->next_conf, err, sizeof(err)) != 0 ||
        proxy_tls_keylog_check(&m->next_conf, err, sizeof(err)) != 0) {
        conf_free(&m->next_conf);
        free(text);
        snprintf(why, n, "configuration rejected:\n%s", err);
        return -1;
    }
    if (strcmp(m->next_conf.global.control, m->conf.global.control) != 0) {
        /* The socket stays bound where it is until the master restarts;
         * clients read the path from the file and would not find it. */
        snprintf(why, n, "configuration rejected:\n%s: [global] control changed from %s to %s; "
                 "the control socket cannot move during a reload (restart baton to move it)",
                 m->conf.path, m->conf.global.control, m->next_conf.global.control);
        conf_free(&m->next_conf);
        free(text);
        return -1;
    }
    /* Opened once: the new worker starts from this descriptor, and the
     * master re-executes from it, whatever lands at the path meanwhile. */
    if (proxy_image_open(&m->next_image, m->exe, why, n) != 0) {
        conf_free(&m->next_conf);
        free(text);
        return -1;
    }
    m->next_text = text;
    err[0] = '\0';
    proxy_tls_ciphers_warnings(&m->next_conf, err, sizeof(err));
    proxy_log_text(CONF_LOG_WARN, "reload: ", err);
    if (proxy_master_socks_prepare(m, &m->next_conf, 1, why, n) != 0) {
        reload_forget(m);
        return -1;
    }
    proxy_log_info("reload: configuration %s accepted, starting generation %u", m->conf.path,
                   m->last_gen + 1);
    proxy_notify_reloading("reloading");
    proxy_master_poll_active_status(m);
    proxy_master_spawn(m, 1);
    return m->upgrading != NULL ? 0 : (snprintf(why, n, "cannot start a worker"), -1);
}

/* Starts a reload; returns 0 if a new generation is starting, or -1 with
 * why (nothing changed): one line per problem, values from the file
 * escaped (they reach the log and the reload client's terminal). */
int proxy_master_reload(struct master *m, char *why, size_t n)
{
    char raw[CONF_ERR_MAX * 8];

    if (reload_start(m, raw, sizeof(raw)) == 0)
        return 0;
    proxy_logsafe(why, n, raw, PROXY_LOGSAFE_LINES);
    return -1;
}

