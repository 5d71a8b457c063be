/*
 * service_none.c - no service manager to register with (service.h): on
 * Linux systemd starts baton and hears of its readiness through
 * sd_notify (notify.c), so `-k` and `--service` are refused with the way
 * to do it here.
 */
#include "service.h"

#include <stdio.h>

#define SERVICE_EXIT_UNSUPPORTED 2

static const char *const service_cmd_names[] = {
    [PROXY_SERVICE_INSTALL] = "install", [PROXY_SERVICE_UNINSTALL] = "uninstall",
    [PROXY_SERVICE_START] = "start", [PROXY_SERVICE_STOP] = "stop",
    [PROXY_SERVICE_RESTART] = "restart",
};

int proxy_service_command(enum proxy_service_cmd cmd, const char *name, const char *conf_path)
{
    (void)name;
    (void)conf_path;
    fprintf(stderr, "baton: -k %s: Windows services only; on this system run baton under "
            "its service manager (systemd: see docs/operations.md) and drive it with "
            "-s status|reload|quit|stop\n", service_cmd_names[cmd]);
    return SERVICE_EXIT_UNSUPPORTED;
}

int proxy_service_run(const char *name, proxy_service_main *run, void *arg)
{
    (void)name;
    (void)run;
    (void)arg;
    fprintf(stderr, "baton: --service: Windows services only (it is what `baton -k install` "
            "registers); run baton without it here\n");
    return SERVICE_EXIT_UNSUPPORTED;
}

int proxy_service_active(void)
{
    return 0;
}

void proxy_service_ready(void)
{
}

void proxy_service_stopping(void)
{
}

void proxy_service_event(enum conf_log_level level, const char *msg)
{
    (void)level;
    (void)msg;
}

int proxy_service_default_config(char *out, size_t outlen, char *why, size_t whylen)
{
    if (snprintf(out, outlen, "%s", CONF_DEFAULT_PATH) >= (int)outlen) {
        snprintf(why, whylen, "default configuration path too long");
        return -1;
    }
    return 0;
}

void proxy_service_attach(struct proxy_wakeup *w)
{
    (void)w;
}

int proxy_service_take_request(enum proxy_osevent *ev, const char **what)
{
    (void)ev;
    (void)what;
    return 0;
}
