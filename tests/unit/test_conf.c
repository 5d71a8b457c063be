/*
 * test_conf.c - loading and validating whole configurations.
 *
 * argv[1] is the tests source directory: conf/good/ holds files that must
 * load, conf/bad/ files that must fail, each starting with the line
 * "; expect: <first error line>".
 */
#include "conf.h"
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "port.h"

#define ERRBUF 8192

static const char *srcdir;

static char *path_of(const char *rel)
{
    static char buf[4096];

    snprintf(buf, sizeof(buf), "%s/%s", srcdir, rel);
    return buf;
}

static uint16_t port_of(const struct conf_addr *a)
{
    if (a->ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
    return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

/* The first line of s, without its newline, in a static buffer. */
static const char *first_line(const char *s)
{
    static char buf[CONF_ERR_MAX + 64];
    size_t n = strcspn(s, "\n");

    if (n >= sizeof(buf))
        n = sizeof(buf) - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return buf;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

static int is_zero(const void *p, size_t n)
{
    const unsigned char *b = p;

    while (n-- > 0)
        if (*b++ != 0)
            return 0;
    return 1;
}

static void test_full(void)
{
    struct conf c;
    char err[ERRBUF] = "";
    const struct conf_listener *web, *admin;
    const struct conf_backend *app, *ops;

    CHECK(conf_load_file(path_of("conf/good/full.ini"), &c, err, sizeof(err)) == 0);
    CHECK_STR(err, "");
    CHECK_STR(c.path, path_of("conf/good/full.ini"));

    CHECK_U64(c.global.threads, 4);
    CHECK_STR(c.global.control, "/tmp/baton-test.sock");
    CHECK(c.global.log_level == CONF_LOG_DEBUG);
    CHECK_STR(c.global.access_log, "/var/log/baton/access.log");
    CHECK_U64(c.global.max_connections, 5000);
    CHECK_U64(c.global.drain_timeout_ms, 90000);
    CHECK_U64(c.global.buffer_size, 65536);
    CHECK_U64(c.global.busy_poll_us, 50);

    CHECK_U64(c.nlisteners, 2);
    CHECK_U64(c.nbackends, 2);
    if (c.nlisteners != 2 || c.nbackends != 2)
        goto out;

    web = &c.listeners[0];
    CHECK_STR(web->name, "web");
    CHECK_U64(web->line, 12);
    CHECK_U64(web->nbinds, 2);
    CHECK_STR(web->binds[0].text, "127.0.0.1:8080");
    CHECK(web->binds[0].ss.ss_family == AF_INET);
    CHECK(web->binds[0].len == sizeof(struct sockaddr_in));
    CHECK_U64(port_of(&web->binds[0]), 8080);
    CHECK_STR(web->binds[1].text, "[::1]:8080");
    CHECK(web->binds[1].ss.ss_family == AF_INET6);
    CHECK(web->binds[1].len == sizeof(struct sockaddr_in6));
    CHECK_STR(web->backend_name, "app");
    CHECK(web->backend == &c.backends[0]);
    CHECK_U64(web->idle_timeout_ms, 120000);
    CHECK_U64(web->max_connections, 1000);
    CHECK_U64(web->backlog, 1024);

    admin = &c.listeners[1];
    CHECK_STR(admin->name, "admin");
    CHECK_U64(admin->nbinds, 1);
    CHECK_STR(admin->binds[0].text, "*:9090");
    CHECK(((const struct sockaddr_in *)&admin->binds[0].ss)->sin_addr.s_addr == htonl(INADDR_ANY));
    CHECK(admin->backend == &c.backends[1]);
    CHECK_U64(admin->idle_timeout_ms, 0);
    CHECK_U64(admin->max_connections, 0);
    CHECK_U64(admin->backlog, 4096);

    app = &c.backends[0];
    CHECK_STR(app->name, "app");
    CHECK_U64(app->line, 25);
    CHECK_U64(app->nservers, 3);
    CHECK(app->balance == CONF_BALANCE_LEASTCONN);
    CHECK_U64(app->connect_timeout_ms, 250);
    CHECK_U64(app->retries, 0);
    if (app->nservers == 3) {
        CHECK_STR(app->servers[0].name, "app1");
        CHECK_STR(app->servers[0].addr.text, "127.0.0.1:9000");
        CHECK_U64(port_of(&app->servers[0].addr), 9000);
        CHECK_U64(app->servers[0].weight, 1);
        CHECK_U64(app->servers[0].line, 26);
        CHECK_STR(app->servers[1].name, "app2");
        CHECK_U64(app->servers[1].weight, 3);
        CHECK_U64(app->servers[1].line, 27);
        CHECK_STR(app->servers[2].name, "app3");
        CHECK_STR(app->servers[2].addr.text, "[::1]:9002");
        CHECK(app->servers[2].addr.ss.ss_family == AF_INET6);
        CHECK_U64(app->servers[2].weight, 256);
    }

    ops = &c.backends[1];
    CHECK_STR(ops->name, "ops");
    CHECK_U64(ops->nservers, 1);
    CHECK(ops->balance == CONF_BALANCE_SOURCE);
    CHECK_U64(ops->connect_timeout_ms, 3600000);
    CHECK_U64(ops->retries, 16);

    CHECK(conf_find_backend(&c, "ops") == ops);
    CHECK(conf_find_backend(&c, "app") == app);
    CHECK(conf_find_backend(&c, "nope") == NULL);
    CHECK(conf_find_listener(&c, "admin") == admin);
    CHECK(conf_find_listener(&c, "app") == NULL);
out:
    conf_free(&c);
    CHECK(is_zero(&c, sizeof(c)));
    conf_free(&c);     /* harmless twice */
}

static void test_defaults(void)
{
    struct conf c;
    char err[ERRBUF] = "";
    unsigned cpus = port_cpu_count();

    CHECK(conf_load_file(path_of("conf/good/minimal.ini"), &c, err, sizeof(err)) == 0);
    CHECK_STR(err, "");
    CHECK(c.global.threads >= 1 && c.global.threads <= 64);
    if (cpus <= 64)
        CHECK_U64(c.global.threads, cpus);
    CHECK_STR(c.global.control, "/run/baton/baton.sock");
    CHECK(c.global.log_level == CONF_LOG_INFO);
    CHECK_STR(c.global.access_log, "stderr");
    CHECK_U64(c.global.max_connections, 100000);
    CHECK_U64(c.global.drain_timeout_ms, 30000);
    CHECK_U64(c.global.buffer_size, 16384);
    CHECK_U64(c.global.busy_poll_us, 0);
    CHECK_U64(c.nlisteners, 1);
    CHECK_U64(c.nbackends, 1);
    if (c.nlisteners == 1 && c.nbackends == 1) {
        CHECK_U64(c.listeners[0].idle_timeout_ms, 300000);
        CHECK_U64(c.listeners[0].max_connections, 0);
        CHECK_U64(c.listeners[0].backlog, 4096);
        CHECK_U64(c.listeners[0].defer_accept_ms, 0);
        CHECK_U64(c.listeners[0].tcp_fastopen, 0);
        CHECK(c.backends[0].tcp_fastopen == 0);
        CHECK(c.listeners[0].backend == &c.backends[0]);
        CHECK(c.backends[0].balance == CONF_BALANCE_ROUNDROBIN);
        CHECK_U64(c.backends[0].connect_timeout_ms, 3000);
        CHECK_U64(c.backends[0].retries, 2);
        CHECK_U64(c.backends[0].servers[0].weight, 1);
    }
    conf_free(&c);
}

static void test_quirks(void)
{
    struct conf c;
    char err[ERRBUF] = "", name[64];

    memset(name, 'l', 63);
    name[63] = '\0';
    CHECK(conf_load_file(path_of("conf/good/quirks.ini"), &c, err, sizeof(err)) == 0);
    CHECK_STR(err, "");
    CHECK(c.global.log_level == CONF_LOG_WARN);
    CHECK_STR(c.global.access_log, "off");
    CHECK(c.global.threads >= 1);
    CHECK(conf_find_listener(&c, name) != NULL);
    if (c.nlisteners == 1 && c.nbackends == 1) {
        CHECK_STR(c.listeners[0].name, name);
        CHECK_U64(c.listeners[0].nbinds, 2);
        CHECK_STR(c.listeners[0].backend_name, "b.e-n_d");
        CHECK(c.listeners[0].backend == &c.backends[0]);
        CHECK_U64(c.backends[0].line, 12);
        CHECK(c.backends[0].balance == CONF_BALANCE_RANDOM);
        CHECK_STR(c.backends[0].servers[0].addr.text, "[::ffff:10.0.0.1]:80");
        CHECK_U64(c.backends[0].servers[0].weight, 2);
        CHECK_U64(c.backends[0].servers[0].line, 13);
    }
    conf_free(&c);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The bad files' expectations are Linux's.  Where the system has no groups
 * by name (Windows), an unknown control_group fails the lookup itself:
 * "no group named 'G' on this system (...)" becomes "cannot look up group
 * 'G': <why>". */
static void os_expectation(char *want, size_t n)
{
    static const char unknown[] = "no group named '";
    const char *no_groups = NULL;
    char *at, *end, group[128];
    gid_t gid;

    at = strstr(want, unknown);
    if (at == NULL || port_group_id("root", &gid, &no_groups) == 0)
        return;
    end = strchr(at + sizeof(unknown) - 1, '\'');
    if (end == NULL || (size_t)(end - at) >= sizeof(group))
        return;
    snprintf(group, sizeof(group), "%.*s", (int)(end - (at + sizeof(unknown) - 1)),
             at + sizeof(unknown) - 1);
    snprintf(at, n - (size_t)(at - want), "cannot look up group '%s': %s", group,
             no_groups != NULL ? no_groups : "?");
}

/* Every .ini file in dir, sorted so failures are reported in a stable order
 * (readdir and qsort rather than scandir, which Windows lacks). */
static size_t list_ini(const char *dir, char ***names)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0, room = 0;
    char **grown;

    *names = NULL;
    CHECK(d != NULL);
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);

        if (len <= 4 || strcmp(e->d_name + len - 4, ".ini") != 0)
            continue;
        if (n == room) {
            room = room ? room * 2 : 16;
            grown = realloc(*names, room * sizeof(**names));
            CHECK(grown != NULL);
            if (grown == NULL)
                break;
            *names = grown;
        }
        (*names)[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n > 0)
        qsort(*names, n, sizeof(**names), by_name);
    return n;
}

static void free_names(char **names, size_t n)
{
    while (n-- > 0)
        free(names[n]);
    free(names);
}

static void test_good_dir(void)
{
    char dir[4096], file[8192], err[ERRBUF], **names;
    size_t i, n;

    snprintf(dir, sizeof(dir), "%s", path_of("conf/good"));
    n = list_ini(dir, &names);
    CHECK(n >= 3);
    for (i = 0; i < n; i++) {
        struct conf c;
        int rc;

        snprintf(file, sizeof(file), "%s/%s", dir, names[i]);
        rc = conf_load_file(file, &c, err, sizeof(err));
        CHECK(rc == 0);
        if (rc != 0)
            fprintf(stderr, "    %s:\n%s", file, err);
        conf_free(&c);
    }
    free_names(names, n);
}

static void test_bad_dir(void)
{
    static const char prefix[] = "; expect: ";
    char dir[4096], file[8192], err[ERRBUF], **names;
    size_t i, n, checked = 0;

    snprintf(dir, sizeof(dir), "%s", path_of("conf/bad"));
    n = list_ini(dir, &names);
    for (i = 0; i < n; i++) {
        struct conf c;
        char *text, want[CONF_ERR_MAX + 64];
        int rc;

        snprintf(file, sizeof(file), "%s/%s", dir, names[i]);
        text = test_read_file(file);
        CHECK(text != NULL);
        if (text == NULL)
            continue;
        CHECK(strncmp(text, prefix, sizeof(prefix) - 1) == 0);
        snprintf(want, sizeof(want), "%s", first_line(text + sizeof(prefix) - 1));
        os_expectation(want, sizeof(want));

        memset(&c, 0x5a, sizeof(c));
        rc = conf_load_text(names[i], text, &c, err, sizeof(err));
        CHECK(rc == -1);
        CHECK(is_zero(&c, sizeof(c)));
        CHECK_STR(first_line(err), want);
        if (rc != -1 || strcmp(first_line(err), want) != 0)
            fprintf(stderr, "    in %s; all errors:\n%s", names[i], err);
        /* each bad file is meant to show exactly one problem */
        CHECK_U64(count_lines(err), 1);
        checked++;
        free(text);
    }
    free_names(names, n);
    CHECK(checked >= 25);
    printf("test_conf: %zu bad configurations checked\n", checked);
}

static void test_many_errors_at_once(void)
{
    static const char text[] =
        "threads = 2\n"                             /* 1 */
        "[global]\n"
        "threads = 0\n"                             /* 3 */
        "log_level = loud\n"                        /* 4 */
        "[listener web]\n"                          /* 5: no bind */
        "backend = nowhere\n"                       /* 6 */
        "frobnicate = yes\n"                        /* 7 */
        "[backend app]\n"                           /* 8: no server */
        "balance = random\n"
        "balance = random\n"                        /* 10 */
        "garbage\n";                                /* 11 */
    static const char want[] =
        "t.ini:1: key 'threads' is outside any section (expected a [global], "
        "[listener NAME] or [backend NAME] header before it)\n"
        "t.ini:3: threads in [global]: invalid thread count '0' (expected auto or an "
        "integer from 1 to 64)\n"
        "t.ini:4: log_level in [global]: invalid log level 'loud' (expected error, warn, "
        "info or debug)\n"
        "t.ini:5: listener 'web' has no bind address (expected bind = ADDRESS:PORT)\n"
        "t.ini:6: listener 'web' uses backend 'nowhere', which is not defined\n"
        "t.ini:7: unknown key 'frobnicate' in [listener web]\n"
        "t.ini:8: backend 'app' has no server (expected server = NAME ADDRESS [weight=N])\n"
        "t.ini:10: duplicate key 'balance' in [backend app] (first set at line 9)\n"
        "t.ini:11: syntax error (expected [section] or key = value)\n";
    struct conf c;
    char err[ERRBUF];

    CHECK(conf_load_text("t.ini", text, &c, err, sizeof(err)) == -1);
    CHECK_STR(err, want);
}

static void test_too_many_errors(void)
{
    size_t i, len = 0, cap = 300 * 16;
    char *text = malloc(cap), *err = malloc(1 << 16), *last;
    struct conf c;

    if (text == NULL || err == NULL) {
        CHECK(0);
        free(text);
        free(err);
        return;
    }
    for (i = 0; i < 300; i++)
        len += (size_t)snprintf(text + len, cap - len, "junk %zu\n", i);
    CHECK(conf_load_text("j.ini", text, &c, err, 1 << 16) == -1);
    CHECK_U64(count_lines(err), 101);
    /* the first ERRORS_MAX found are kept; the rest, even file-wide ones, are counted */
    CHECK_STR(first_line(err), "j.ini:1: syntax error (expected [section] or key = value)");
    last = strrchr(err, '\n');
    while (last > err && last[-1] != '\n')
        last--;
    CHECK_STR(last, "j.ini:0: too many errors (201 more not shown)\n");
    free(text);
    free(err);
}

static void test_small_error_buffer(void)
{
    static const char text[] = "[global]\nthreads = 99\nlog_level = x\n";
    struct conf c;
    char err[40];

    memset(err, 'X', sizeof(err));
    CHECK(conf_load_text("small.ini", text, &c, err, 25) == -1);
    CHECK(memchr(err, '\0', 25) != NULL);
    CHECK(err[25] == 'X');
    CHECK(strncmp(err, "small.ini:0: no [listen", 23) == 0);
    CHECK(conf_load_text("small.ini", text, &c, NULL, 0) == -1);
    CHECK(conf_load_text("small.ini", text, &c, err, 0) == -1);
    CHECK(err[0] == 's');   /* errlen 0: untouched */
}

static void test_line_limits(void)
{
    static const char tail[] =
        "\n[listener web]\nbind = 127.0.0.1:1\nbackend = app\n"
        "[backend app]\nserver = a 127.0.0.1:2\n";
    char *text = malloc(4097 + sizeof(tail) + 8), err[ERRBUF];
    struct conf c;

    if (text == NULL) {
        CHECK(0);
        return;
    }
    /* exactly the limit: fine, also with CRLF */
    text[0] = ';';
    memset(text + 1, 'x', 4095);
    strcpy(text + 4096, "\r");
    strcat(text, tail);
    CHECK(conf_load_text("l.ini", text, &c, err, sizeof(err)) == 0);
    conf_free(&c);
    /* one more, and a long line is not parsed in pieces */
    text[0] = 'x';
    text[4094] = '=';
    strcpy(text + 4096, "y");
    strcat(text, tail);
    CHECK(conf_load_text("l.ini", text, &c, err, sizeof(err)) == -1);
    CHECK_STR(err, "l.ini:1: line too long (4097 characters, at most 4096)\n");
    /* no newline at the end of the file */
    CHECK(conf_load_text("l.ini", "[listener a]\nbind = 127.0.0.1:1\nbackend = b\n"
                         "[backend b]\nserver = s 127.0.0.1:2", &c, err, sizeof(err)) == 0);
    CHECK_U64(c.backends[0].nservers, 1);
    conf_free(&c);
    CHECK(conf_load_text("e.ini", "", &c, err, sizeof(err)) == -1);
    CHECK_STR(err, "e.ini:0: no [listener] section (at least one is required)\n");
    free(text);
}

/* Replaces path's content with len bytes; 0 or -1. */
static int write_file(const char *path, const char *bytes, size_t len)
{
    FILE *f = fopen(path, "wb");
    int ok;

    if (f == NULL)
        return -1;
    ok = fwrite(bytes, 1, len, f) == len;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static void test_files(void)
{
    struct conf c;
    char err[ERRBUF], want[ERRBUF], tmpl[] = "/tmp/test_conf_XXXXXX", *text, *big;
    size_t len;
    int fd;

    memset(&c, 1, sizeof(c));
    CHECK(conf_load_file("/nonexistent/baton.ini", &c, err, sizeof(err)) == -1);
    CHECK_STR(err, "/nonexistent/baton.ini: cannot open: No such file or directory\n");
    CHECK(is_zero(&c, sizeof(c)));
    CHECK(conf_read_file("/nonexistent/baton.ini", &len, NULL, 0) == NULL);

    /* A directory: Linux opens it and fails to read it, Windows refuses to
     * open it; either way the error says which and why. */
    fd = port_open_read("/");
    if (fd >= 0) {
        close(fd);
        snprintf(want, sizeof(want), "/: cannot read: %s\n", strerror(EISDIR));
    } else {
        snprintf(want, sizeof(want), "/: cannot open: %s\n", strerror(errno));
    }
    CHECK(conf_load_file("/", &c, err, sizeof(err)) == -1);
    CHECK_STR(err, want);

    /* the same text gives the same result whichever way it arrives */
    text = conf_read_file(path_of("conf/good/full.ini"), &len, err, sizeof(err));
    CHECK(text != NULL);
    if (text != NULL) {
        CHECK_U64(len, strlen(text));
        CHECK(conf_load_text("full.ini", text, &c, err, sizeof(err)) == 0);
        CHECK_STR(c.path, "full.ini");
        CHECK_U64(c.backends[0].nservers, 3);
        conf_free(&c);
        free(text);
    }

    /* (each version is written whole and closed before it is read: a
     * file open for writing cannot be opened again on Windows) */
    fd = mkstemp(tmpl);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    close(fd);
    big = malloc(CONF_TEXT_MAX + 1);
    CHECK(big != NULL);
    if (big == NULL) {
        unlink(tmpl);
        return;
    }
    /* exactly CONF_TEXT_MAX is accepted, one byte more is not */
    for (len = 0; len <= CONF_TEXT_MAX; len++)
        big[len] = len % 64 == 63 ? '\n' : ';';
    CHECK(write_file(tmpl, big, CONF_TEXT_MAX) == 0);
    text = conf_read_file(tmpl, &len, err, sizeof(err));
    CHECK(text != NULL);
    CHECK_U64(len, CONF_TEXT_MAX);
    free(text);
    CHECK(write_file(tmpl, big, CONF_TEXT_MAX + 1) == 0);
    CHECK(conf_read_file(tmpl, &len, err, sizeof(err)) == NULL);
    CHECK(strstr(err, ": file is too large (more than 1048576 bytes)") != NULL);
    free(big);

    /* a NUL byte would silently cut the text short */
    CHECK(write_file(tmpl, "[global]\0x", 10) == 0);
    CHECK(conf_read_file(tmpl, &len, err, sizeof(err)) == NULL);
    CHECK(strstr(err, ": contains a NUL byte (not a text file?)") != NULL);
    unlink(tmpl);
}

static void test_example(void)
{
    struct conf c;
    char err[ERRBUF] = "";
    int rc;

    rc = conf_load_file(path_of("../examples/baton.ini"), &c, err, sizeof(err));
    CHECK(rc == 0);
    if (rc != 0) {
        fprintf(stderr, "%s", err);
        return;
    }
    CHECK_STR(c.global.control, "/tmp/baton-example.sock");
    CHECK(conf_find_listener(&c, "web") != NULL);
    CHECK(conf_find_backend(&c, "app") != NULL);
    if (c.nbackends == 1 && c.backends[0].nservers == 2) {
        CHECK_STR(c.backends[0].servers[0].addr.text, "127.0.0.1:9000");
        CHECK_U64(c.backends[0].servers[0].weight, 1);
        CHECK_STR(c.backends[0].servers[1].addr.text, "127.0.0.1:9001");
        CHECK_U64(c.backends[0].servers[1].weight, 3);
    } else {
        CHECK(0);
    }
    conf_free(&c);
}

static void test_names(void)
{
    CHECK_STR(conf_balance_name(CONF_BALANCE_ROUNDROBIN), "roundrobin");
    CHECK_STR(conf_balance_name(CONF_BALANCE_LEASTCONN), "leastconn");
    CHECK_STR(conf_balance_name(CONF_BALANCE_RANDOM), "random");
    CHECK_STR(conf_balance_name(CONF_BALANCE_SOURCE), "source");
    CHECK_STR(conf_balance_name((enum conf_balance)42), "?");
    CHECK_STR(conf_log_level_name(CONF_LOG_ERROR), "error");
    CHECK_STR(conf_log_level_name(CONF_LOG_WARN), "warn");
    CHECK_STR(conf_log_level_name(CONF_LOG_INFO), "info");
    CHECK_STR(conf_log_level_name(CONF_LOG_DEBUG), "debug");
    CHECK_STR(conf_log_level_name((enum conf_log_level)-1), "?");
}

/* Writes text to a fresh temporary file; returns its path (static). */
static const char *temp_file(const char *text)
{
    static char tmpl[64];
    int fd;

    snprintf(tmpl, sizeof(tmpl), "/tmp/test_conf_ctl_XXXXXX");
    fd = mkstemp(tmpl);
    CHECK(fd >= 0);
    if (fd < 0)
        return "/nonexistent/temp";
    close(fd);
    CHECK(write_file(tmpl, text, strlen(text)) == 0);
    return tmpl;
}

#define TAIL "\n[listener web]\nbind = 127.0.0.1:0\nbackend = app\n\n[backend app]\n" \
             "server = a 127.0.0.1:9000\n"

/* control_group, where control was set, and `baton -s` finding the control
 * path with the master's loader even from a file broken elsewhere. */
static void test_control_keys(void)
{
    struct conf c;
    char err[ERRBUF], path[CONF_PATH_MAX];
    const char *f, *no_groups = NULL;
    gid_t gid;

    /* Where the system has no groups by name (Windows), control_group is
     * an error that says why. */
    if (port_group_id("root", &gid, &no_groups) == 0) {
        CHECK(conf_load_text("t.ini", "; c\n[ global ]\ncontrol = /x/ctl.sock\ncontrol_group = root\n"
                             TAIL, &c, err, sizeof(err)) == 0);
        CHECK_STR(c.global.control, "/x/ctl.sock");
        CHECK_U64(c.global.control_line, 3);
        CHECK_STR(c.global.control_group, "root");
        CHECK_U64(c.global.control_gid, 0);
        conf_free(&c);
    } else {
        CHECK(no_groups != NULL);
        CHECK(conf_load_text("t.ini", "[global]\ncontrol_group = root\n" TAIL, &c, err,
                             sizeof(err)) == -1);
        CHECK_WHY(err, "t.ini:2: ");
        CHECK_WHY(err, "cannot look up group 'root'");
        CHECK_WHY(err, no_groups != NULL ? no_groups : "?");
    }
    CHECK(conf_load_text("t.ini", "[global]\nthreads = 1\n" TAIL, &c, err, sizeof(err)) == 0);
    CHECK_U64(c.global.control_line, 0);
    CHECK_STR(c.global.control_group, "");
    conf_free(&c);

    /* valid file: its path; [ global ] is [global] here too */
    f = temp_file("[ global ]\ncontrol = /x/a.sock\n" TAIL);
    CHECK(conf_load_control(f, path, sizeof(path), err, sizeof(err)) == 0);
    CHECK_STR(path, "/x/a.sock");
    unlink(f);
    /* broken in a listener only: the path is still certain, err says why */
    f = temp_file("[global]\ncontrol = /x/b.sock\n" TAIL "[listener w2]\nbind = 127.0.0.1:0\n"
                  "backend = nowhere\n");
    CHECK(conf_load_control(f, path, sizeof(path), err, sizeof(err)) == 1);
    CHECK_STR(path, "/x/b.sock");
    CHECK_WHY(err, "nowhere");
    unlink(f);
    /* a problem in [global]: no path is guessed */
    f = temp_file("[global]\ncontrol = /x/c.sock\nthreads = 999\n" TAIL);
    CHECK(conf_load_control(f, path, sizeof(path), err, sizeof(err)) == 2);
    CHECK_STR(path, "");
    CHECK_WHY(err, ":3: threads");
    unlink(f);
    /* a mangled header may have moved keys between sections: none either */
    f = temp_file("[listener w2\nbind = 127.0.0.1:0\n[global]\ncontrol = /x/d.sock\n" TAIL);
    CHECK(conf_load_control(f, path, sizeof(path), err, sizeof(err)) == 2);
    CHECK_STR(path, "");
    unlink(f);
    f = temp_file("[globl]\ncontrol = /x/e.sock\n" TAIL);
    CHECK(conf_load_control(f, path, sizeof(path), err, sizeof(err)) == 2);
    unlink(f);
    f = temp_file("control = /x/f.sock\n" TAIL);
    CHECK(conf_load_control(f, path, sizeof(path), err, sizeof(err)) == 2);
    unlink(f);
    CHECK(conf_load_control("/nonexistent/b.ini", path, sizeof(path), err, sizeof(err)) == -1);
    CHECK_STR(err, "/nonexistent/b.ini: cannot open: No such file or directory\n");
}

/* tls_keylog_file (off by default) and where it and tls_ciphers were set,
 * for the FILE:LINE of -t's errors and warnings. */
static void test_tls_keys(void)
{
    struct conf c;
    char err[ERRBUF];

    CHECK(conf_load_text("t.ini", "[global]\nthreads = 1\n" TAIL, &c, err, sizeof(err)) == 0);
    CHECK_STR(c.global.tls_keylog_file, "");
    CHECK_U64(c.global.tls_keylog_file_line, 0);
    CHECK_STR(c.listeners[0].tls_ciphers, "");
    CHECK_U64(c.listeners[0].tls_ciphers_line, 0);
    conf_free(&c);
    CHECK(conf_load_text("t.ini", "[global]\nthreads = 1\ntls_keylog_file = /tmp/k.log\n"
                         "\n[listener web]\nbind = 127.0.0.1:0\nbackend = app\ntls = on\n"
                         "tls_cert = /c.pem\ntls_key = /k.pem\ntls_ciphers = ECDHE+AESGCM\n"
                         "\n[backend app]\nserver = a 127.0.0.1:9000\n", &c, err,
                         sizeof(err)) == 0);
    CHECK_STR(err, "");
    CHECK_STR(c.global.tls_keylog_file, "/tmp/k.log");
    CHECK_U64(c.global.tls_keylog_file_line, 3);
    CHECK_STR(c.listeners[0].tls_ciphers, "ECDHE+AESGCM");
    CHECK_U64(c.listeners[0].tls_ciphers_line, 11);
    conf_free(&c);
    /* off is the key's absence: an empty value is an error, as for any key */
    CHECK(conf_load_text("t.ini", "[global]\ntls_keylog_file =\n" TAIL, &c, err,
                         sizeof(err)) == -1);
    CHECK_WHY(err, "t.ini:2: missing value for 'tls_keylog_file'");
    CHECK(conf_load_text("t.ini", "[listener x]\ntls_keylog_file = /k\n" TAIL, &c, err,
                         sizeof(err)) == -1);
    CHECK_WHY(err, "t.ini:2: ");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s TESTS-SOURCE-DIR\n", argv[0]);
        return 2;
    }
    srcdir = argv[1];
    test_full();
    test_defaults();
    test_quirks();
    test_good_dir();
    test_bad_dir();
    test_many_errors_at_once();
    test_too_many_errors();
    test_small_error_buffer();
    test_line_limits();
    test_files();
    test_example();
    test_names();
    test_control_keys();
    test_tls_keys();
    return test_summary("test_conf");
}
