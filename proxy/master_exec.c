/*
 * master_exec.c - replacing the master's binary without changing its PID.
 *
 * After a reload whose new worker runs a new binary (and has proven, by
 * becoming ready, that the binary works), the master execs that binary in
 * place - the very file the worker was started from, held open since the
 * reload began (image.h), never whatever is at the path by then - after a
 * dry run in which the new binary decodes and validates the state it is
 * about to resume from.  Everything that must survive - the control socket, the listening
 * sockets, each worker's channel, a control client still waiting for the
 * reload result - stays open across execve() (close-on-exec is cleared for
 * exactly those), and a MASTER_STATE message in a memfd tells the new image
 * what each descriptor is.  Workers are unaffected: they are children of
 * the same PID and never notice.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <openssl/crypto.h>

#include "control_endpoint.h"
#include "log.h"
#include "master_int.h"
#include "netutil.h"
#include "notify.h"
#include "parse.h"
#include "process_unix.h"
#include "master.h"

#define REEXEC_RETRY_MS 20
/* The dry run only decodes and parses; a binary that takes longer is not
 * one to trust with the master. */
#define STATE_CHECK_TIMEOUT_MS 10000

/* The descriptors that cross exec, each once. */
static size_t exec_fds(struct master *m, int *fds, size_t max)
{
    size_t n = 0;

    if (n < max)
        fds[n++] = proxy_control_endpoint_fd(m->ctl_ep);
    if (n < max)
        fds[n++] = m->serving.fd;
    for (size_t i = 0; i < m->nsocks && n < max; i++)
        if (m->socks[i].fd >= 0)
            fds[n++] = m->socks[i].fd;
    for (struct master_gen *g = m->gens; g != NULL && n < max; g = g->next)
        if (g->ch_open)
            fds[n++] = g->ch.fd;
    if (m->reload_ctl != NULL && n < max)
        fds[n++] = bufferevent_getfd(m->reload_ctl->bev);
    return n;
}

static int state_encode(struct master *m, struct handoff_msg *msg)
{
    struct handoff_master_state *st;
    size_t ngens = 0;
    int rc;

    /* Every generation must cross, or the new image would not know (nor
     * ever reap) the ones left out: better keep the running binary. */
    for (const struct master_gen *g = m->gens; g != NULL; g = g->next)
        ngens++;
    if (ngens > HANDOFF_STATE_GENS_MAX || m->nsocks > HANDOFF_STATE_SOCKS_MAX) {
        proxy_log_error("master: %zu worker generations and %zu sockets are more than a "
                        "re-exec can carry (%u, %u)", ngens, m->nsocks,
                        (unsigned)HANDOFF_STATE_GENS_MAX, (unsigned)HANDOFF_STATE_SOCKS_MAX);
        return -1;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL)
        return -1;
    st->start_ms = m->start_ms;
    st->last_gen = m->last_gen;
    st->status_seq = m->status_seq;
    st->ctl_fd = proxy_control_endpoint_fd(m->ctl_ep);
    st->reply_fd = m->reload_ctl != NULL ? bufferevent_getfd(m->reload_ctl->bev) : -1;
    snprintf(st->reply, sizeof(st->reply), "%s", m->reexec_reply);
    snprintf(st->path, sizeof(st->path), "%s", m->conf.path);
    st->text = (const uint8_t *)m->text;
    st->textlen = (uint32_t)strlen(m->text);
    for (size_t i = 0; i < m->nsocks && st->nsocks < HANDOFF_STATE_SOCKS_MAX; i++) {
        struct handoff_state_sock *s = &st->socks[st->nsocks];

        if (m->socks[i].fd < 0 || !m->socks[i].in_current)
            continue;
        snprintf(s->name, sizeof(s->name), "%s", m->socks[i].name);
        snprintf(s->addr, sizeof(s->addr), "%s", m->socks[i].addr.text);
        s->fd = m->socks[i].fd;
        st->nsocks++;
    }
    for (struct master_gen *g = m->gens; g != NULL && st->ngens < HANDOFF_STATE_GENS_MAX;
         g = g->next) {
        struct handoff_state_gen *sg = &st->gens[st->ngens++];

        sg->id = g->id;
        sg->pid = (uint32_t)g->pid;
        sg->state = (uint32_t)g->state;
        sg->seq = g->ch.seq;
        sg->fd = g->ch_open ? g->ch.fd : -1;
        sg->started_ms = g->started_ms;
        snprintf(sg->version, sizeof(sg->version), "%s", g->version);
        sg->pending = g->ch.rbuf + g->ch.roff;
        sg->npending = (uint32_t)g->ch.rlen;
        sg->drain_deadline_ms = g->state == GEN_DRAINING ? g->drain_deadline_ms : 0;
        sg->caps = g->caps;
    }
    snprintf(st->exe, sizeof(st->exe), "%s", m->exe);
    st->image_fd = m->serving.fd;
    st->tickets = m->tickets;
    rc = handoff_encode_master_state(msg, 0, st);
    OPENSSL_cleanse(&st->tickets, sizeof(st->tickets));
    free(st);
    return rc;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void signals_block(int block)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR2);
    /* Blocked across exec, a signal waits for the new image's handlers
     * instead of meeting the default action (which would kill the master). */
    if (sigprocmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL) != 0)
        proxy_log_error("master: sigprocmask: %s", strerror(errno));
}

void proxy_master_unblock_signals(void)
{
    signals_block(0);
}

static int channels_quiet(const struct master *m)
{
    for (const struct master_gen *g = m->gens; g != NULL; g = g->next)
        if (g->state == GEN_STARTING || (g->ch_open && handoff_channel_pending(&g->ch)))
            return 0;
    return 1;
}

void proxy_master_reexec(struct master *m)
{
    struct handoff_msg msg;
    int fds[HANDOFF_STATE_SOCKS_MAX + HANDOFF_STATE_GENS_MAX + 2];
    char fdarg[16], why[HANDOFF_REASON_MAX];
    size_t nfds;
    int memfd;

    if (m->state != MASTER_RUNNING)
        return;
    if (!channels_quiet(m)) {
        /* Queued output would be lost with this image: wait for it. */
        proxy_master_timer_add_ms(m->reexec_timer, REEXEC_RETRY_MS);
        return;
    }
    m->reexec_pending = 0;
    if (state_encode(m, &msg) != 0) {
        proxy_log_error("master: cannot encode its state; keeping the running binary");
        goto keep;
    }
    memfd = memfd_create("baton-master-state", 0);
    if (memfd < 0 || write_all(memfd, msg.buf, msg.len) != 0 || lseek(memfd, 0, SEEK_SET) != 0) {
        proxy_log_error("master: cannot store its state: %s; keeping the running binary",
                        strerror(errno));
        if (memfd >= 0)
            close(memfd);
        handoff_msg_free(&msg);
        goto keep;
    }
    handoff_msg_free(&msg);
    if (proxy_process_check_state(&m->serving, m->exe, memfd, STATE_CHECK_TIMEOUT_MS, why,
                                  sizeof(why)) != 0) {
        proxy_log_error("master: the new binary cannot resume this master (dry run: %s); "
                        "keeping the running binary", why);
        close(memfd);
        goto keep;
    }
    nfds = exec_fds(m, fds, sizeof(fds) / sizeof(fds[0]));
    for (size_t i = 0; i < nfds; i++)
        if (proxy_set_cloexec(fds[i], 0) != 0)
            proxy_log_warn("master: fcntl(fd %d): %s", fds[i], strerror(errno));
    snprintf(fdarg, sizeof(fdarg), "%d", memfd);
    proxy_log_info("master %ld: re-executing %s", (long)getpid(), m->exe);
    signals_block(1);
    proxy_notify_restore_env();
    proxy_image_exec(&m->serving, (char *const[]){ m->exe, (char *)"--resume-master", fdarg,
                                                   NULL }, NULL, 1);

    proxy_log_error("master: cannot execute %s: %s; keeping the running binary", m->exe,
                    strerror(errno));
    signals_block(0);
    proxy_notify_init();
    for (size_t i = 0; i < nfds; i++)
        (void)proxy_set_cloexec(fds[i], 1);
    close(memfd);
keep:
    proxy_master_upgrade_kept(m, "the master kept its old binary");
}

static int read_state(int fd, uint8_t **buf, size_t *len, char *why, size_t whylen)
{
    struct stat st;
    ssize_t n;

    if (fstat(fd, &st) != 0 || st.st_size < (off_t)HANDOFF_HDR_LEN ||
        st.st_size > (off_t)(HANDOFF_HDR_LEN + HANDOFF_MAX_PAYLOAD)) {
        snprintf(why, whylen, "state descriptor %d is not a state file", fd);
        return -1;
    }
    *len = (size_t)st.st_size;
    *buf = malloc(*len);
    if (*buf == NULL) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    for (size_t off = 0; off < *len; off += (size_t)n) {
        n = pread(fd, *buf + off, *len - off, (off_t)off);
        if (n <= 0) {
            snprintf(why, whylen, "reading state: %s", n < 0 ? strerror(errno) : "short file");
            free(*buf);
            *buf = NULL;
            return -1;
        }
    }
    return 0;
}

static int restore_socks(struct master *m, const struct handoff_master_state *st,
                         char *why, size_t whylen)
{
    m->socks = calloc(st->nsocks ? st->nsocks : 1, sizeof(*m->socks));
    if (m->socks == NULL) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < st->nsocks; i++) {
        struct master_sock *s = &m->socks[m->nsocks];
        char reason[256];

        snprintf(reason, sizeof(reason), "%s", strerror(EBADF));
        if (conf_parse_address(st->socks[i].addr, &s->addr, reason, sizeof(reason)) != 0 ||
            proxy_set_cloexec(st->socks[i].fd, 1) != 0) {
            snprintf(why, whylen, "socket %s (fd %d): %s", st->socks[i].addr,
                     (int)st->socks[i].fd, reason);
            return -1;
        }
        s->fd = st->socks[i].fd;
        snprintf(s->name, sizeof(s->name), "%s", st->socks[i].name);
        proxy_sockname(s->fd, s->actual, sizeof(s->actual));
        s->in_current = 1;
        m->nsocks++;
    }
    return 0;
}

static int restore_gens(struct master *m, const struct handoff_master_state *st)
{
    /* Adopted in reverse so the list keeps its order (newest first). */
    for (uint32_t k = st->ngens; k-- > 0;) {
        const struct handoff_state_gen *sg = &st->gens[k];
        struct master_gen *g;

        if (sg->pid == 0 || sg->pid > (uint32_t)INT32_MAX) {
            /* Never kill(0) or kill(-1) for a corrupt entry. */
            proxy_log_warn("master: generation %u has no valid pid (%u); ignored",
                           (unsigned)sg->id, (unsigned)sg->pid);
            if (sg->fd >= 0)
                close(sg->fd);
            continue;
        }
        if (sg->state > GEN_DRAINING) {
            proxy_log_warn("master: generation %u (pid %u) has no valid state (%u); ignored",
                           (unsigned)sg->id, (unsigned)sg->pid, (unsigned)sg->state);
            if (sg->fd >= 0)
                close(sg->fd);
            continue;
        }
        /* Without a channel (it closed before the exec, the process not yet
         * reaped) a generation is still ours: its end is logged and, if it
         * was serving, a new worker replaces it. */
        g = proxy_master_gen_adopt(m, sg->id, (pid_t)sg->pid, sg->fd, (enum gen_state)sg->state);
        if (g == NULL) {
            if (sg->fd >= 0)
                close(sg->fd);
            proxy_process_stop((pid_t)sg->pid, PROXY_PROCESS_STOP);
            continue;
        }
        g->ch.seq = sg->seq;
        /* What both sides have: this image may know less than the one that
         * negotiated (a downgrade), and must not use what it does not know. */
        g->caps = sg->caps & HANDOFF_CAPS_OURS;
        handoff_channel_set_peer_caps(&g->ch, g->caps);
        g->started_ms = sg->started_ms;
        memcpy(g->version, sg->version, sizeof(g->version));
        if (handoff_channel_inject(&g->ch, sg->pending, sg->npending) != 0)
            return -1;
        if (g->state == GEN_ACTIVE)
            m->ever_ready = 1;
        else if (g->state == GEN_DRAINING)   /* 0: a sender that did not carry it */
            proxy_master_gen_drain_deadline(g, m->conf.global.drain_timeout_ms,
                                            sg->drain_deadline_ms);
    }
    return 0;
}

/* Reads, decodes and validates a MASTER_STATE, parsing the configuration
 * text it carries: what both the resuming image and the dry run do.  On
 * success *buf holds the bytes st points into, *text and *conf the
 * configuration (the caller frees all three). */
static int state_load(int fd, uint8_t **buf, struct handoff_master_state *st, char **text,
                      struct conf *conf, char *why, size_t whylen)
{
    struct handoff_in in;
    char err[CONF_ERR_MAX * 4];
    size_t len;

    memset(&in, 0, sizeof(in));
    *buf = NULL;
    *text = NULL;
    if (read_state(fd, buf, &len, why, whylen) != 0)
        return -1;
    if (handoff_hdr_decode(*buf, &in.hdr, why, whylen) != 0)
        goto fail;
    if (in.hdr.len != len - HANDOFF_HDR_LEN) {
        snprintf(why, whylen, "state of %zu bytes, header says %u", len - HANDOFF_HDR_LEN,
                 (unsigned)in.hdr.len);
        goto fail;
    }
    in.payload = *buf + HANDOFF_HDR_LEN;
    if (handoff_decode_master_state(&in, st, why, whylen) != 0)
        goto fail;
    *text = proxy_memdup_str(st->text, st->textlen);
    if (*text == NULL || conf_load_text(st->path, *text, conf, err, sizeof(err)) != 0) {
        snprintf(why, whylen, "running configuration rejected by the new binary: %.400s",
                 *text == NULL ? "out of memory" : err);
        goto fail;
    }
    return 0;
fail:
    free(*text);
    *text = NULL;
    free(*buf);
    *buf = NULL;
    return -1;
}

int proxy_master_check_state(int state_fd, char *why, size_t whylen)
{
    struct handoff_master_state *st = calloc(1, sizeof(*st));
    struct conf conf;
    uint8_t *buf;
    char *text;
    int rc = -1;

    memset(&conf, 0, sizeof(conf));
    if (st == NULL) {
        snprintf(why, whylen, "out of memory");
    } else if (state_load(state_fd, &buf, st, &text, &conf, why, whylen) == 0) {
        conf_free(&conf);
        free(text);
        free(buf);
        rc = 0;
    }
    if (st != NULL)
        OPENSSL_cleanse(&st->tickets, sizeof(st->tickets));
    free(st);
    close(state_fd);
    return rc;
}

/* The executable and install path this image came from: carried by the
 * previous image, or (from a release that did not carry them) our own. */
static int restore_image(struct master *m, const struct handoff_master_state *st,
                         char *why, size_t whylen)
{
    if (st->exe[0] != '\0')
        snprintf(m->exe, sizeof(m->exe), "%s", st->exe);
    if (st->image_fd >= 0 ? proxy_image_adopt(&m->image, st->image_fd, why, whylen)
                          : proxy_image_open_self(&m->image, why, whylen))
        return -1;
    if (proxy_image_dup(&m->serving, &m->image) != 0) {
        snprintf(why, whylen, "image descriptor: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int proxy_master_restore(struct master *m, int state_fd, char *why, size_t whylen)
{
    struct handoff_master_state *st = calloc(1, sizeof(*st));
    uint8_t *buf = NULL;
    int rc = -1;

    if (st == NULL) {
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    if (state_load(state_fd, &buf, st, &m->text, &m->conf, why, whylen) != 0)
        goto out;
    m->start_ms = st->start_ms;
    m->tickets = st->tickets;   /* clients keep resuming across the upgrade */
    m->last_gen = st->last_gen;
    m->status_seq = st->status_seq;
    m->ctl_ep = proxy_control_endpoint_adopt(st->ctl_fd, &m->conf, why, whylen);
    if (m->ctl_ep == NULL)
        goto out;
    if (restore_image(m, st, why, whylen) != 0 || restore_socks(m, st, why, whylen) != 0 ||
        restore_gens(m, st) != 0)
        goto out;
    if (st->reply_fd >= 0) {
        struct master_ctl *c;

        (void)proxy_set_cloexec(st->reply_fd, 1);
        c = proxy_master_ctl_adopt(m, st->reply_fd, NULL);
        if (c != NULL)
            proxy_master_ctl_reply(c, 1, "%s\nmaster pid %ld now runs baton %s\n", st->reply,
                                   (long)getpid(), BATON_VERSION);
    }
    rc = 0;
out:
    if (state_fd >= 0)
        close(state_fd);
    if (st != NULL)
        OPENSSL_cleanse(&st->tickets, sizeof(st->tickets));
    free(st);
    free(buf);
    return rc;
}
