/*
 * main.c - the baton command line.
 *
 *   baton [-c FILE]                 run (master in the foreground)
 *   baton -t [-c FILE]              check the configuration
 *   baton -s SIGNAL [-c FILE]       status | stop | quit | reload
 *   baton -v | -h
 *   baton --worker FD               internal: started by the master
 *   baton --resume-master FD        internal: the master re-executing itself
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "conf.h"
#include "control.h"
#include "ctl_command.h"
#include "log.h"
#include "logsafe.h"
#include "master.h"
#include "tls.h"
#include "tls_ciphers.h"
#include "tls_keylog.h"
#include "worker.h"

#define EXIT_USAGE 2

static void usage(FILE *out)
{
    fprintf(out,
            "usage: baton [-c FILE]            run in the foreground\n"
            "       baton -t [-c FILE]         check the configuration and exit\n"
            "       baton -s CMD [-c FILE]     send CMD to the running master:\n"
            "                                  status, stop (fast), quit (graceful), reload\n"
            "       baton -v                   print the version\n"
            "       baton -h                   print this help\n"
            "The default configuration file is %s.\n", CONF_DEFAULT_PATH);
}

/* Errors from the loaders; values from the file are escaped when printed. */
static char err[CONF_ERR_MAX * 32];

/* Prints text (lines that should end in a newline), one line each, escaped. */
static void print_text(const char *text)
{
    static char safe[CONF_ERR_MAX * 32];

    proxy_logsafe(safe, sizeof(safe), text, PROXY_LOGSAFE_LINES);
    fputs(safe, stderr);
    if (safe[0] && safe[strlen(safe) - 1] != '\n')
        fputc('\n', stderr);
}

static void print_err(void)
{
    print_text(err);
}

static void explain_default(const char *path, int explicit_path)
{
    if (!explicit_path)
        fprintf(stderr, "baton: no -c given, tried the default %s\n", path);
}

/* Loads and validates; prints every error (and warnings).  Returns 0 or -1. */
static int load_config(const char *path, int explicit_path, struct conf *c, char **text)
{
    char warn[CONF_ERR_MAX], tls_warn[CONF_ERR_MAX * 4] = "";
    size_t len;

    *text = conf_read_file(path, &len, err, sizeof(err));
    if (*text == NULL) {
        print_err();
        explain_default(path, explicit_path);
        return -1;
    }
    if (conf_load_text(path, *text, c, err, sizeof(err)) != 0 ||
        proxy_tls_check_conf(c, err, sizeof(err)) != 0 ||
        proxy_tls_keylog_check(c, err, sizeof(err)) != 0 ||
        proxy_control_check_path(c, err, sizeof(err), warn, sizeof(warn)) != 0) {
        print_err();
        conf_free(c);
        free(*text);
        *text = NULL;
        return -1;
    }
    fputs(warn, stderr);
    proxy_tls_ciphers_warnings(c, tls_warn, sizeof(tls_warn));
    print_text(tls_warn);
    return 0;
}

/*
 * `-s`: the control path comes from the same loader the master uses.  A
 * file broken by an edit still names the running master's socket if its
 * problems are elsewhere than [global] and the file's structure (that is
 * when `-s reload` gets the master to report them); otherwise there is no
 * telling which socket it means, and none is guessed.
 */
static int control_path(const char *path, int explicit_path, enum proxy_ctl_cmd cmd,
                        char *out, size_t n)
{
    switch (conf_load_control(path, out, n, err, sizeof(err))) {
    case 0:
        return 0;
    case 1:
        /* The master's refusal of a reload lists the same problems. */
        if (cmd != PROXY_CTL_RELOAD) {
            fprintf(stderr, "baton: warning: %s is not valid (the master keeps running the "
                    "configuration it loaded last):\n", path);
            print_err();
        }
        return 0;
    case 2:
        print_err();
        fprintf(stderr, "baton: cannot tell which control socket %s names: the problems "
                "above are in its [global] section or its structure; fix them (or signal "
                "the master directly)\n", path);
        return -1;
    default:
        print_err();
        explain_default(path, explicit_path);
        return -1;
    }
}

/* A proxy needs two descriptors per connection (more while splicing): use
 * the whole hard limit; workers inherit it. */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        fprintf(stderr, "baton: cannot raise the descriptor limit: %s\n", strerror(errno));
}

/* The dry run a master asks of a new binary before re-executing into it. */
static int check_master_state(int fd)
{
    char why[1024];

    if (proxy_master_check_state(fd, why, sizeof(why)) != 0) {
        fprintf(stderr, "baton %s: cannot resume the master's state: %s\n", BATON_VERSION, why);
        return 1;
    }
    return 0;
}

static int parse_fd(const char *s)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0 || v > 1 << 20)
        return -1;
    return (int)v;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "worker", required_argument, NULL, 'W' },
        { "resume-master", required_argument, NULL, 'R' },
        { "check-master-state", required_argument, NULL, 'K' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'v' },
        { NULL, 0, NULL, 0 },
    };
    const char *path = CONF_DEFAULT_PATH, *cmd = NULL;
    int explicit_path = 0, test = 0, opt, fd;
    struct conf c;
    char *text, abspath[PATH_MAX];

    memset(&c, 0, sizeof(c));
    while ((opt = getopt_long(argc, argv, "c:ts:vh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            explicit_path = 1;
            break;
        case 't':
            test = 1;
            break;
        case 's':
            cmd = optarg;
            break;
        case 'v':
            printf("baton %s\n", BATON_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        case 'W':
            fd = parse_fd(optarg);
            if (fd < 0) {
                fprintf(stderr, "baton: --worker needs a descriptor number, got '%s'\n", optarg);
                return EXIT_USAGE;
            }
            return proxy_worker_main(fd);
        case 'R':
            fd = parse_fd(optarg);
            if (fd < 0) {
                fprintf(stderr, "baton: --resume-master needs a descriptor number, got '%s'\n",
                        optarg);
                return EXIT_USAGE;
            }
            return proxy_master_resume(fd);
        case 'K':
            fd = parse_fd(optarg);
            if (fd < 0) {
                fprintf(stderr, "baton: --check-master-state needs a descriptor number, "
                        "got '%s'\n", optarg);
                return EXIT_USAGE;
            }
            return check_master_state(fd);
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "baton: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return EXIT_USAGE;
    }
    if (cmd != NULL) {
        char ctl[CONF_PATH_MAX];
        enum proxy_ctl_cmd which;

        if (proxy_ctl_command_from_name(cmd, strlen(cmd), &which) != 0) {
            fprintf(stderr, "baton: unknown command '%s' for -s (" PROXY_CTL_EXPECTED ")\n",
                    cmd);
            return EXIT_USAGE;
        }
        if (control_path(path, explicit_path, which, ctl, sizeof(ctl)) != 0)
            return 1;
        return proxy_control_request(ctl, cmd, PROXY_CONTROL_TIMEOUT_MS);
    }
    /* Reloads re-read the file by this name, whatever the cwd is by then. */
    if (realpath(path, abspath) != NULL)
        path = abspath;
    if (load_config(path, explicit_path, &c, &text) != 0)
        return 1;
    if (!test)
        raise_fd_limit();
    if (test) {
        printf("configuration OK\n");
        conf_free(&c);
        free(text);
        return 0;
    }
    return proxy_master_main(&c, text);
}
