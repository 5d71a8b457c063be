/*
 * test_control_pipe.c - Windows (under Wine in CI): the control endpoint's
 * named pipe (control_endpoint_win.c).  A loop serves the clients the
 * endpoint hands it, as master_ctl.c does, answering "OK\ngot LINE"; a
 * client thread runs `baton -s`'s exchange against it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <winsock2.h>
#include <windows.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "control_endpoint.h"
#include "testutil.h"

#define DEADLINE_MS 20000

struct served {
    int                    clients;
    struct proxy_peer_cred cred;
};

struct client {
    const char   *name;
    const char   *line;
    int           rc;
    char         *reply;
    size_t        len;
    char          why[512];
    volatile LONG done;
};

static void serve_read_cb(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    char *line = evbuffer_readln(in, NULL, EVBUFFER_EOL_LF);

    if (line == NULL)
        return;
    evbuffer_add_printf(bufferevent_get_output(bev), "OK\ngot %s\n", line);
    free(line);
    bufferevent_disable(bev, EV_READ);
}

static void serve_write_cb(struct bufferevent *bev, void *arg)
{
    bufferevent_free(bev);   /* the answer is out: close, as the master does */
}

static void serve_event_cb(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        bufferevent_free(bev);
}

static void client_cb(int fd, const struct proxy_peer_cred *cred, void *arg)
{
    struct event_base *base = ((void **)arg)[0];
    struct served *s = ((void **)arg)[1];
    struct bufferevent *bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);

    s->clients++;
    s->cred = *cred;
    CHECK(bev != NULL);
    bufferevent_setcb(bev, serve_read_cb, serve_write_cb, serve_event_cb, NULL);
    bufferevent_enable(bev, EV_READ);
}

static DWORD WINAPI client_main(LPVOID arg)
{
    struct client *c = arg;

    c->rc = proxy_control_endpoint_exchange(c->name, c->line, strlen(c->line), 10000,
                                            &c->reply, &c->len, c->why, sizeof(c->why));
    InterlockedExchange(&c->done, 1);
    return 0;
}

static void poll_cb(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = ((void **)arg)[0];
    struct event_base *base = ((void **)arg)[1];

    if (c->done)
        event_base_loopbreak(base);
}

/* Runs one client exchange while the loop serves; 0 once it is done. */
static int run_client(struct event_base *base, struct client *c)
{
    void *args[2] = { c, base };
    struct event *poll = event_new(base, -1, EV_PERSIST, poll_cb, args);
    struct timeval tick = { 0, 20000 };
    HANDLE t = CreateThread(NULL, 0, client_main, c, 0, NULL);
    DWORD start = GetTickCount();

    CHECK(poll != NULL && t != NULL);
    if (poll == NULL || t == NULL)
        return -1;
    event_add(poll, &tick);
    while (!c->done && GetTickCount() - start < DEADLINE_MS)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(poll);
    CHECK(WaitForSingleObject(t, DEADLINE_MS) == WAIT_OBJECT_0);
    CloseHandle(t);
    return c->done ? 0 : -1;
}

int main(int argc, char **argv)
{
    WSADATA wsa;
    struct conf c;
    struct served s = { 0 };
    struct proxy_control_endpoint *ep, *ep2;
    struct event_base *base;
    char name[CONF_PATH_MAX], name2[CONF_PATH_MAX], tmp[MAX_PATH], why[512];
    void *args[2];

    setvbuf(stdout, NULL, _IONBF, 0);
    CHECK(WSAStartup(MAKEWORD(2, 2), &wsa) == 0);
    memset(&c, 0, sizeof(c));
    CHECK(GetTempPathA(sizeof(tmp), tmp) > 0);
    snprintf(c.path, sizeof(c.path), "%sbaton-test-%lu\\Baton.ini", tmp,
             (unsigned long)GetCurrentProcessId());
    snprintf(c.global.control, sizeof(c.global.control), "unused-on-windows");

    /* The same file names the same pipe however it is spelled. */
    CHECK(proxy_control_endpoint_name(c.path, "", name, sizeof(name), why, sizeof(why)) == 0);
    for (char *p = tmp; *p; p++)
        if (*p == '\\')
            *p = '/';
    snprintf(name2, sizeof(name2), "%sBATON-test-%lu/baton.INI", tmp,
             (unsigned long)GetCurrentProcessId());
    CHECK(proxy_control_endpoint_name(name2, "", name2, sizeof(name2), why, sizeof(why)) == 0);
    CHECK_STR(name2, name);
    CHECK(strncmp(name, "\\\\.\\pipe\\baton-", 15) == 0 && strlen(name) == 15 + 16);

    base = event_base_new();
    CHECK(base != NULL);
    ep = proxy_control_endpoint_open(&c, why, sizeof(why));
    CHECK(ep != NULL);
    if (ep == NULL) {
        fprintf(stderr, "open: %s\n", why);
        return test_summary("control_pipe");
    }
    /* A second master of the same configuration is refused. */
    ep2 = proxy_control_endpoint_open(&c, why, sizeof(why));
    CHECK(ep2 == NULL);
    CHECK_WHY(why, "another baton master is running on control pipe");
    args[0] = base;
    args[1] = &s;
    CHECK(proxy_control_endpoint_start(ep, base, &c.global, client_cb, args) == 0);

    for (int i = 0; i < 3; i++) {
        struct client cl = { .name = name, .line = i == 2 ? "reload\n" : "status\n" };

        CHECK(run_client(base, &cl) == 0);
        CHECK(cl.rc == 0);
        if (cl.rc != 0)
            fprintf(stderr, "exchange: %s\n", cl.why);
        CHECK_STR(cl.reply != NULL ? cl.reply : "(none)",
                  i == 2 ? "OK\ngot reload\n" : "OK\ngot status\n");
        free(cl.reply);
    }
    CHECK(s.clients == 3);
    CHECK(s.cred.pid == (pid_t)GetCurrentProcessId());

    proxy_control_endpoint_close(ep);
    {
        /* Gone with the master: a client says so. */
        struct client cl = { .name = name, .line = "status\n" };

        client_main(&cl);
        CHECK(cl.rc != 0);
        CHECK_WHY(cl.why, "no such pipe");
    }
    /* The name is free again for the next master. */
    ep = proxy_control_endpoint_open(&c, why, sizeof(why));
    CHECK(ep != NULL);
    proxy_control_endpoint_close(ep);
    event_base_free(base);
    WSACleanup();
    return test_summary("control_pipe");
}
