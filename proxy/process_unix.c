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
    char fdarg[16];
    pid_t child;

    snprintf(fdarg, sizeof(fdarg), "%d", channel_fd);
    child = fork();
    if (child < 0) {
        snprintf(why, whylen, "fork: %s", strerror(errno));
        return -1;
    }
    if (child == 0) {
        sigset_t none;
        char *const argv[] = { (char *)exe, (char *)"--worker", fdarg, NULL };

        /* The worker starts from a clean signal state whatever the master had. */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        if (proxy_set_cloexec(channel_fd, 0) != 0)
            _exit(126);
        execv(exe, argv);
        dprintf(STDERR_FILENO, "baton: cannot execute worker %s: %s\n", exe, strerror(errno));
        _exit(127);
    }
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
