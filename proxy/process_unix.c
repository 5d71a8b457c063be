#include "process_unix.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "netutil.h"

extern char **environ;

int proxy_process_self_exe(char *buf, size_t len)
{
    static const char deleted[] = " (deleted)";
    ssize_t n = readlink("/proc/self/exe", buf, len - 1);
    size_t dl = sizeof(deleted) - 1;

    if (n < 0 || (size_t)n >= len - 1)
        return -1;
    buf[n] = '\0';
    /* The file we run was replaced at its path: the path is still where
     * new binaries are installed. */
    if ((size_t)n > dl && strcmp(buf + n - dl, deleted) == 0)
        buf[n - dl] = '\0';
    return 0;
}

/* Forks a child that execs the image with argv, with every signal blocked
 * from before fork until the child has reset the master's handlers: a
 * signal meant for the child must never run the master's handler there
 * (libevent's would report it to the master).  keep_fd stays open in it. */
static int spawn_image(const struct proxy_image *img, char *const argv[], char *const envp[],
                       int keep_fd, pid_t *pid, char *why, size_t whylen)
{
    sigset_t all, saved;
    pid_t child;

    sigfillset(&all);
    if (sigprocmask(SIG_SETMASK, &all, &saved) != 0) {
        snprintf(why, whylen, "sigprocmask: %s", strerror(errno));
        return -1;
    }
    child = fork();
    if (child < 0) {
        snprintf(why, whylen, "fork: %s", strerror(errno));
        sigprocmask(SIG_SETMASK, &saved, NULL);
        return -1;
    }
    if (child == 0) {
        static const int sigs[] = { SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR2, SIGCHLD,
                                    SIGPIPE };
        sigset_t none;

        /* The child starts from a clean signal state whatever the master had. */
        for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
            signal(sigs[i], SIG_DFL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (proxy_set_cloexec(keep_fd, 0) != 0)
            _exit(126);
        proxy_image_exec(img, argv, envp, 0);
        dprintf(STDERR_FILENO, "baton: cannot execute %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    sigprocmask(SIG_SETMASK, &saved, NULL);
    *pid = child;
    return 0;
}

/* This environment with env ("NAME=value") in place of any NAME; built
 * before fork (the child must not allocate).  NULL when out of memory. */
static char **env_with(const char *env)
{
    const char *eq = strchr(env, '=');
    size_t n = 0, k = 0, namelen = eq != NULL ? (size_t)(eq - env) + 1 : strlen(env);
    char **out;

    while (environ[n] != NULL)
        n++;
    out = calloc(n + 2, sizeof(*out));
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], env, namelen) != 0)
            out[k++] = environ[i];
    out[k] = (char *)env;
    return out;
}

int proxy_process_spawn_worker(const struct proxy_image *img, const char *argv0,
                               int channel_fd, const char *env, pid_t *pid,
                               char *why, size_t whylen)
{
    char fdarg[16];
    char *const argv[] = { (char *)argv0, (char *)"--worker", fdarg, NULL };
    char **envp = env_with(env);
    int rc;

    if (envp == NULL) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    snprintf(fdarg, sizeof(fdarg), "%d", channel_fd);
    rc = spawn_image(img, argv, envp, channel_fd, pid, why, whylen);
    free(envp);
    return rc;
}

#define CHECK_POLL_MS 5

int proxy_process_check_state(const struct proxy_image *img, const char *argv0, int state_fd,
                              uint64_t timeout_ms, char *why, size_t whylen)
{
    char fdarg[16];
    char *const argv[] = { (char *)argv0, (char *)"--check-master-state", fdarg, NULL };
    uint64_t deadline = proxy_now_ms() + timeout_ms;
    pid_t pid, r;
    int status;

    snprintf(fdarg, sizeof(fdarg), "%d", state_fd);
    if (spawn_image(img, argv, NULL, state_fd, &pid, why, whylen) != 0)
        return -1;
    /* A short, bounded wait: the check only parses.  Waiting for this pid
     * alone leaves the workers' exits to the master's SIGCHLD handler. */
    while ((r = waitpid(pid, &status, WNOHANG)) == 0 && proxy_now_ms() < deadline)
        usleep(CHECK_POLL_MS * 1000);
    if (r == 0) {
        kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        snprintf(why, whylen, "it did not answer within %llu ms",
                 (unsigned long long)timeout_ms);
        return -1;
    }
    if (r < 0) {
        snprintf(why, whylen, "waitpid: %s", strerror(errno));
        return -1;
    }
    if (proxy_process_status_ok(status))
        return 0;
    proxy_process_describe_status(status, why, whylen);
    return -1;
}

void proxy_process_describe_status(int status, char *buf, size_t len)
{
    if (WIFEXITED(status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d (%s)%s", WTERMSIG(status),
                 strsignal(WTERMSIG(status)), WCOREDUMP(status) ? ", core dumped" : "");
    else
        snprintf(buf, len, "changed state 0x%x", (unsigned)status);
}

int proxy_process_status_ok(int status)
{
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int proxy_process_stop(pid_t pid, enum proxy_process_stop how)
{
    /* SIGQUIT drains, SIGTERM stops now: osevents_unix.c in the worker. */
    static const int sigs[] = { [PROXY_PROCESS_DRAIN] = SIGQUIT, [PROXY_PROCESS_STOP] = SIGTERM,
                                [PROXY_PROCESS_KILL] = SIGKILL };

    /* Never kill(0) or kill(-1): those would reach a whole group. */
    if (pid <= 0 || (unsigned)how >= sizeof(sigs) / sizeof(sigs[0])) {
        errno = ESRCH;
        return -1;
    }
    return kill(pid, sigs[how]);
}

struct proxy_process_watch {
    struct event           *ev;
    proxy_process_exit_cb  *cb;
    void                   *arg;
};

static void watch_cb(evutil_socket_t sig, short what, void *arg)
{
    struct proxy_process_watch *w = arg;
    pid_t pid;
    int status;

    /* One SIGCHLD may stand for several exits. */
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        w->cb(pid, status, w->arg);
}

struct proxy_process_watch *proxy_process_watch_new(struct event_base *base,
                                                    proxy_process_exit_cb *cb, void *arg)
{
    struct proxy_process_watch *w = calloc(1, sizeof(*w));

    if (w == NULL) {
        proxy_log_error("process watch: out of memory");
        return NULL;
    }
    w->cb = cb;
    w->arg = arg;
    w->ev = evsignal_new(base, SIGCHLD, watch_cb, w);
    if (w->ev == NULL || event_add(w->ev, NULL) != 0) {
        proxy_log_error("process watch: cannot watch SIGCHLD");
        proxy_process_watch_free(w);
        return NULL;
    }
    /* Children that ended before the watch (a master resumed after exec
     * inherits them) are reaped in the loop's first round. */
    event_active(w->ev, EV_SIGNAL, 1);
    return w;
}

void proxy_process_watch_free(struct proxy_process_watch *w)
{
    if (w == NULL)
        return;
    if (w->ev != NULL)
        event_free(w->ev);
    free(w);
}
