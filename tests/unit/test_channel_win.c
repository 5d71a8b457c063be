/*
 * test_channel_win.c - test_channel's OS part on Windows: Winsock, the child
 * started with CreateProcessW and a handle list that holds only the channel,
 * handle counts, and the transport's own framing (records cut anywhere,
 * bytes that are not a record).
 */
#include "test_channel_os.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>

#include "channel.h"
#include "testutil.h"
#include "transport.h"

static SOCKET sock_of(int h)
{
    return (SOCKET)(intptr_t)h;
}

int tc_init(void)
{
    WSADATA d;

    return WSAStartup(MAKEWORD(2, 2), &d) == 0 ? 0 : -1;
}

/* The sockets this process has open: what the tests hand over.  (Wine's
 * GetProcessHandleCount says 0; socket handles are small multiples of 4 in
 * a process this size.) */
int tc_count_handles(void)
{
    int n = 0;

    for (int h = 4; h < (1 << 16); h += 4)
        n += tc_is_open_socket(h);
    return n;
}

int tc_is_open_socket(int h)
{
    int type, len = sizeof(type);

    return getsockopt(sock_of(h), SOL_SOCKET, SO_TYPE, (char *)&type, &len) == 0;
}

int tc_small_sndbuf(int h)
{
    int v = 1;

    return setsockopt(sock_of(h), SOL_SOCKET, SO_SNDBUF, (const char *)&v, sizeof(v)) == 0 ? 0
                                                                                          : -1;
}

int tc_inheritable(int h)
{
    DWORD fl;

    return GetHandleInformation((HANDLE)sock_of(h), &fl) && (fl & HANDLE_FLAG_INHERIT);
}

static int int_of(SOCKET s)
{
    return s == INVALID_SOCKET || s > (SOCKET)INT_MAX ? -1 : (int)(intptr_t)s;
}

static SOCKET tcp(void)
{
    return WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0,
                      WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
}

static void loopback(struct sockaddr_in *sa, unsigned port)
{
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa->sin_port = htons((u_short)port);
}

int tc_listen(unsigned *port)
{
    struct sockaddr_in sa;
    int len = sizeof(sa);
    SOCKET l = tcp();

    loopback(&sa, 0);
    if (l == INVALID_SOCKET || bind(l, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(l, 16) != 0 || getsockname(l, (struct sockaddr *)&sa, &len) != 0) {
        if (l != INVALID_SOCKET)
            closesocket(l);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return int_of(l);
}

/* A peer that never answers fails the test instead of hanging it. */
static int bounded(SOCKET s)
{
    DWORD ms = TC_IO_TIMEOUT_MS;

    if (s != INVALID_SOCKET &&
        (setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, (const char *)&ms, sizeof(ms)) != 0 ||
         setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, (const char *)&ms, sizeof(ms)) != 0)) {
        closesocket(s);
        return -1;
    }
    return int_of(s);
}

int tc_connect(unsigned port)
{
    struct sockaddr_in sa;
    SOCKET s = tcp();

    loopback(&sa, port);
    if (s != INVALID_SOCKET && connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        closesocket(s);
        s = INVALID_SOCKET;
    }
    return bounded(s);
}

int tc_accept(int l)
{
    SOCKET s = accept(sock_of(l), NULL, NULL);

    if (s != INVALID_SOCKET && !SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0)) {
        closesocket(s);
        return -1;
    }
    return bounded(s);
}

int tc_blocking(int h)
{
    u_long off = 0;

    return ioctlsocket(sock_of(h), FIONBIO, &off) == 0 ? 0 : -1;
}

/* The child writes to our stdout and stderr when they can be inherited. */
static unsigned std_handles(HANDLE *list)
{
    DWORD ids[2] = { STD_OUTPUT_HANDLE, STD_ERROR_HANDLE };
    unsigned n = 0;

    for (unsigned i = 0; i < 2; i++) {
        HANDLE h = GetStdHandle(ids[i]);

        if (h != NULL && h != INVALID_HANDLE_VALUE &&
            SetHandleInformation(h, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT))
            list[n++] = h;
    }
    return n;
}

int tc_spawn_child(const char *argv0, int channel, struct tc_child *c)
{
    WCHAR exe[MAX_PATH], cmd[MAX_PATH + 64];
    STARTUPINFOEXW si;
    PROCESS_INFORMATION pi;
    LPPROC_THREAD_ATTRIBUTE_LIST attrs = NULL;
    SIZE_T size = 0;
    HANDLE list[3];
    unsigned n;
    BOOL ok = FALSE;

    (void)argv0;
    if (GetModuleFileNameW(NULL, exe, MAX_PATH) == 0 || GetLastError() != ERROR_SUCCESS)
        return -1;
    _snwprintf(cmd, sizeof(cmd) / sizeof(cmd[0]), L"\"%ls\" --child %d", exe, channel);
    cmd[sizeof(cmd) / sizeof(cmd[0]) - 1] = 0;
    /* Only the channel is handed down (and the output, for diagnostics),
     * as baton's master starts its workers. */
    list[0] = (HANDLE)sock_of(channel);
    if (!SetHandleInformation(list[0], HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT))
        return -1;
    n = 1 + std_handles(list + 1);
    memset(&si, 0, sizeof(si));
    si.StartupInfo.cb = sizeof(si);
    if (n == 3) {
        si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
        si.StartupInfo.hStdOutput = list[1];
        si.StartupInfo.hStdError = list[2];
    }
    (void)InitializeProcThreadAttributeList(NULL, 1, 0, &size);
    if ((attrs = HeapAlloc(GetProcessHeap(), 0, size)) != NULL &&
        InitializeProcThreadAttributeList(attrs, 1, 0, &size)) {
        si.lpAttributeList = attrs;
        if (UpdateProcThreadAttribute(attrs, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, list,
                                      (n == 3 ? 3 : 1) * sizeof(HANDLE), NULL, NULL))
            ok = CreateProcessW(exe, cmd, NULL, NULL, TRUE, EXTENDED_STARTUPINFO_PRESENT, NULL,
                                NULL, &si.StartupInfo, &pi);
        DeleteProcThreadAttributeList(attrs);
    }
    if (attrs != NULL)
        HeapFree(GetProcessHeap(), 0, attrs);
    (void)SetHandleInformation(list[0], HANDLE_FLAG_INHERIT, 0);
    if (!ok)
        return -1;
    CloseHandle(pi.hThread);
    c->pid = (pid_t)pi.dwProcessId;
    c->h = pi.hProcess;
    return 0;
}

int tc_wait_child(struct tc_child *c, int timeout_ms)
{
    DWORD code = 0;
    int r = -1;

    if (WaitForSingleObject(c->h, (DWORD)timeout_ms) == WAIT_OBJECT_0 &&
        GetExitCodeProcess(c->h, &code))
        r = (int)code;
    else
        TerminateProcess(c->h, 99);
    CloseHandle(c->h);
    c->h = NULL;
    return r;
}

/* Waits until b has the next message, reading as bytes come. */
static int next_within(struct handoff_channel *b, struct handoff_in *in, char *why, size_t n)
{
    return handoff_channel_recv_sync(b, in, 5000, why, n);
}

/*
 * The transport's records cut at every byte: the channel's bytes and the
 * handles still come out whole and in order, a handle never twice.  The
 * record is written by hand, byte by byte, as a peer whose sends the
 * network cut up would deliver it.
 */
static void test_record_cut(void)
{
    struct handoff_channel a, b;
    struct handoff_msg m;
    struct handoff_in in;
    struct handoff_listener v = { "cut", "127.0.0.1:0", -1 }, got;
    int sv[2], raw[2];
    char why[256] = "";
    uint8_t rec[8 + sizeof(WSAPROTOCOL_INFOW) + 256];
    WSAPROTOCOL_INFOW info;
    size_t len;

    CHECK(tc_open_pair(&a, &b) == 0);
    CHECK(handoff_transport_pair(sv) == 0);
    CHECK(handoff_transport_pair(raw) == 0);
    v.fd = sv[0];
    CHECK(handoff_encode_listener(&m, 1, &v) == 0);
    CHECK(m.len + 8 + sizeof(info) <= sizeof(rec));
    CHECK(WSADuplicateSocketW(sock_of(sv[0]), GetCurrentProcessId(), &info) == 0);
    rec[0] = 0xBA, rec[1] = 0x7E, rec[2] = 1, rec[3] = 0;
    rec[4] = 0, rec[5] = 0, rec[6] = (uint8_t)(m.len >> 8), rec[7] = (uint8_t)m.len;
    memcpy(rec + 8, &info, sizeof(info));
    memcpy(rec + 8 + sizeof(info), m.buf, m.len);
    len = 8 + sizeof(info) + m.len;
    handoff_msg_free(&m);
    /* b reads from the raw pair's end: the channel's socket swapped for it. */
    handoff_transport_close(b.fd);
    b.fd = raw[1];
    for (size_t i = 0; i < len; i++) {
        CHECK(tc_send_all(raw[0], rec + i, 1) == 0);
        if (i + 1 < len) {
            CHECK(handoff_transport_wait(b.fd, 0, 2000) == 1);
            CHECK(handoff_channel_read(&b) != -1);
            CHECK(handoff_channel_next(&b, &in, why, sizeof(why)) == 0);
        }
    }
    CHECK(next_within(&b, &in, why, sizeof(why)) == 1);
    CHECK(handoff_decode_listener(&in, &got, why, sizeof(why)) == 0);
    CHECK_STR(got.name, "cut");
    CHECK(got.fd >= 0 && tc_is_open_socket(got.fd) && !tc_inheritable(got.fd));
    CHECK(tc_same_pair(sv[1], got.fd));
    CHECK_U64(b.nfdq, 0);
    handoff_transport_close(got.fd);
    handoff_in_free(&in);

    /* Bytes that are not a record: the stream is refused, named. */
    CHECK(tc_send_all(raw[0], "GET / HTTP/1.0\r\n", 16) == 0);
    CHECK(handoff_transport_wait(b.fd, 0, 2000) == 1);
    errno = 0;
    CHECK(handoff_channel_read(&b) == -1);
    CHECK(errno == EPROTO);
    handoff_transport_close(raw[0]);
    handoff_transport_close(sv[0]);
    handoff_transport_close(sv[1]);
    handoff_channel_close(&a);
    handoff_channel_close(&b);
}

/* A handle WSADuplicateSocketW cannot duplicate for the peer (no such
 * process) fails the send with nothing sent; a channel to a real peer
 * sends the same handles whole. */
static void test_dup_refused(void)
{
    struct handoff_channel a, b;
    struct handoff_in in;
    int sv[2];
    char why[256] = "";

    CHECK(tc_open_pair(&a, &b) == 0);
    CHECK(handoff_transport_pair(sv) == 0);
    /* For a process that does not exist: WSADuplicateSocketW refuses, and
     * the send fails with nothing sent. */
    a.peer_pid = 0;
    CHECK(tc_send_conn(&a, 1, sv[0], sv[1]) == -1);
    a.peer_pid = (pid_t)GetCurrentProcessId();
    handoff_channel_close(&a);
    handoff_channel_close(&b);

    CHECK(tc_open_pair(&a, &b) == 0);
    CHECK(tc_send_conn(&a, 2, sv[0], sv[1]) == 0);
    CHECK(tc_pump_next(&a, &b, &in, why, sizeof(why)) == 1);
    CHECK(!in.fds_lost && in.nfds == 2);
    CHECK(tc_same_pair(sv[1], in.fds[0]));
    handoff_in_free(&in);
    handoff_transport_close(sv[0]);
    handoff_transport_close(sv[1]);
    handoff_channel_close(&a);
    handoff_channel_close(&b);
}

void tc_os_tests(void)
{
    test_record_cut();
    test_dup_refused();
}
