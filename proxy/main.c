/*
 * main.c - the baton command line.
 *
 *   baton [-c FILE]                 run (master in the foreground)
 *   baton -t [-c FILE]              check the configuration
 *   baton -s SIGNAL [-c FILE]       status | stop | quit | reload
 *   baton -k CMD [-n NAME] [-c FILE]  Windows service: install | uninstall |
 *                                   start | stop | restart (service.h)
 *   baton --service -n NAME -c FILE internal: started by the service manager
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

#include "conf.h"
#include "port.h"
#include "control.h"
#include "ctl_command.h"
#include "fdlimit.h"
#include "log.h"
#include "logsafe.h"
#include "master.h"
#include "service.h"
#include "tls.h"
#include "tls_ciphers.h"
#include "tls_keylog.h"
#include "worker.h"

#define EXIT_USAGE 2

static void usage(FILE *out, const char *default_path)
{
    fprintf(out,
            "usage: baton [-c FILE]            run in the foreground\n"
            "       baton -t [-c FILE]         check the configuration and exit\n"
            "       baton -s CMD [-c FILE]     send CMD to the running master:\n"
            "                                  status, stop (fast), quit (graceful), reload\n"
            "       baton -k CMD [-n NAME] [-c FILE]\n"
            "                                  Windows service NAME (default %s): install,\n"
            "                                  uninstall, start, stop, restart (reload)\n"
            "       baton -v                   print the version\n"
            "       baton -h                   print this help\n"
            "The default configuration file is %s.\n", PROXY_SERVICE_NAME_DEFAULT,
            default_path);
}

static int service_cmd_from_name(const char *name, enum proxy_service_cmd *cmd)
{
    static const struct { const char *name; enum proxy_service_cmd cmd; } cmds[] = {
        { "install", PROXY_SERVICE_INSTALL }, { "uninstall", PROXY_SERVICE_UNINSTALL },
        { "start", PROXY_SERVICE_START }, { "stop", PROXY_SERVICE_STOP },
        { "restart", PROXY_SERVICE_RESTART },
    };

    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(name, cmds[i].name) == 0) {
            *cmd = cmds[i].cmd;
            return 0;
        }
    return -1;
}

/* Errors from the loaders; values from the file are escaped when printed. */
static char err[CONF_ERR_MAX * 32];

/* Prints text (lines that should end in a newline), one line each, escaped. */
static void print_text(const char *text)
{
    static char safe[CONF_ERR_MAX * 32];

    proxy_logsafe(safe, sizeof(safe), text, PROXY_LOGSAFE_TERMINAL);
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

/* What `-s` connects to: the control socket c names, or on Windows the pipe
 * named for the configuration file. */
static int control_request(const char *path, int explicit_path, const char *cmd)
{
    char ctl[CONF_PATH_MAX], name[CONF_PATH_MAX], why[512];
    enum proxy_ctl_cmd which;

    if (proxy_ctl_command_from_name(cmd, strlen(cmd), &which) != 0) {
        fprintf(stderr, "baton: unknown command '%s' for -s (" PROXY_CTL_EXPECTED ")\n", cmd);
        return EXIT_USAGE;
    }
    if (control_path(path, explicit_path, which, ctl, sizeof(ctl)) != 0)
        return 1;
    if (proxy_control_endpoint_name(path, ctl, name, sizeof(name), why, sizeof(why)) != 0) {
        fprintf(stderr, "baton: %s\n", why);
        return 1;
    }
    return proxy_control_request(name, cmd, PROXY_CONTROL_TIMEOUT_MS);
}

/* A proxy needs two descriptors per connection (more while splicing): use
 * the whole hard limit; workers inherit it. */
static void raise_fd_limit(void)
{
    char why[256];

    if (proxy_fdlimit_raise_nofile(why, sizeof(why)) != 0)
        fprintf(stderr, "baton: cannot raise the descriptor limit: %s\n", why);
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

/* What a run needs once the command line is read. */
struct run_args {
    const char *path;
    int         explicit_path;
    int         test;
};

/* Loads the configuration and runs the master (or only checks, -t). */
static int run(void *arg)
{
    const struct run_args *a = arg;
    char *text, abspath[CONF_PATH_MAX];
    const char *path = a->path;
    struct conf c;

    memset(&c, 0, sizeof(c));
    /* Reloads re-read the file by this name, whatever the cwd is by then. */
    if (port_abspath(path, abspath, sizeof(abspath)) == 0)
        path = abspath;
    if (load_config(path, a->explicit_path, &c, &text) != 0) {
        /* A service has no console: the event log says why it stopped. */
        proxy_service_event(CONF_LOG_ERROR, err);
        return 1;
    }
    if (a->test) {
        printf("configuration OK\n");
        conf_free(&c);
        free(text);
        return 0;
    }
    raise_fd_limit();
    return proxy_master_main(&c, text);
}

/* The options that only mean something together, checked together. */
static int check_modes(const char *cmd, const char *service_cmd, int service, int test,
                       const char *name)
{
    if ((service_cmd != NULL || service) && (cmd != NULL) + (service_cmd != NULL) + service + test > 1) {
        fprintf(stderr, "baton: -k and --service go with neither -s, -t nor each other\n");
        return -1;
    }
    if (name != NULL && service_cmd == NULL && !service) {
        fprintf(stderr, "baton: -n names a Windows service: give it with -k or --service\n");
        return -1;
    }
    if (name != NULL && (name[0] == '\0' || strlen(name) >= PROXY_SERVICE_NAME_MAX ||
                         strpbrk(name, "/\\") != NULL)) {
        fprintf(stderr, "baton: -n '%s': a service name is 1 to %d characters, without / "
                "or \\\n", name, PROXY_SERVICE_NAME_MAX - 1);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "worker", required_argument, NULL, 'W' },
        { "resume-master", required_argument, NULL, 'R' },
        { "check-master-state", required_argument, NULL, 'K' },
        { "service", no_argument, NULL, 'S' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'v' },
        { NULL, 0, NULL, 0 },
    };
    static char default_path[CONF_PATH_MAX];
    const char *cmd = NULL, *service_cmd = NULL, *name = NULL;
    struct run_args a = { .path = default_path };
    enum proxy_service_cmd which;
    int service = 0, opt, fd;
    char why[512];

    if (proxy_service_default_config(default_path, sizeof(default_path), why,
                                     sizeof(why)) != 0) {
        fprintf(stderr, "baton: %s\n", why);
        return 1;
    }
    while ((opt = getopt_long(argc, argv, "c:ts:k:n:vh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            a.path = optarg;
            a.explicit_path = 1;
            break;
        case 't':
            a.test = 1;
            break;
        case 's':
            cmd = optarg;
            break;
        case 'k':
            service_cmd = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'S':
            service = 1;
            break;
        case 'v':
            printf("baton %s\n", BATON_VERSION);
            return 0;
        case 'h':
            usage(stdout, default_path);
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
            usage(stderr, default_path);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "baton: unexpected argument '%s'\n", argv[optind]);
        usage(stderr, default_path);
        return EXIT_USAGE;
    }
    if (check_modes(cmd, service_cmd, service, a.test, name) != 0)
        return EXIT_USAGE;
    if (cmd != NULL)
        return control_request(a.path, a.explicit_path, cmd);
    if (service_cmd != NULL) {
        if (service_cmd_from_name(service_cmd, &which) != 0) {
            fprintf(stderr, "baton: unknown command '%s' for -k (expected install, uninstall, "
                    "start, stop or restart)\n", service_cmd);
            return EXIT_USAGE;
        }
        return proxy_service_command(which, name != NULL ? name : PROXY_SERVICE_NAME_DEFAULT,
                                     a.path);
    }
    if (service)
        return proxy_service_run(name != NULL ? name : PROXY_SERVICE_NAME_DEFAULT, run, &a);
    return run(&a);
}
