#include "process.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netutil.h"

int proxy_process_self_exe(char *buf, size_t len)
{
    ssize_t n = readlink("/proc/self/exe", buf, len - 1);

    if (n < 0 || (size_t)n >= len - 1)
        return -1;
    buf[n] = '\0';
    return 0;
}

int proxy_process_spawn_worker(const char *exe, int channel_fd, pid_t *pid,
                               char *why, size_t whylen)
{
    sigset_t all, saved;
    char fdarg[16];
    pid_t child;

    snprintf(fdarg, sizeof(fdarg), "%d", channel_fd);
    /* Signals stay blocked from before fork until the child has reset the
     * master's handlers: a signal meant for the child must never run the
     * master's handler there (libevent's would report it to the master). */
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
        char *const argv[] = { (char *)exe, (char *)"--worker", fdarg, NULL };

        /* The worker starts from a clean signal state whatever the master had. */
        for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
            signal(sigs[i], SIG_DFL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (proxy_set_cloexec(channel_fd, 0) != 0)
            _exit(126);
        execv(exe, argv);
        dprintf(STDERR_FILENO, "baton: cannot execute worker %s: %s\n", exe, strerror(errno));
        _exit(127);
    }
    sigprocmask(SIG_SETMASK, &saved, NULL);
    *pid = child;
    return 0;
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
