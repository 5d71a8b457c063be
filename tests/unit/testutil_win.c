/* testutil_win.c - testutil.h's descriptor helpers on Windows.  The handles
 * the handoff library moves and closes on Windows are sockets
 * (handoff_transport_close is closesocket), so these are sockets too:
 * unbound, non-inheritable UDP sockets stand for /dev/null. */
#include "testutil.h"

#include <limits.h>
#include <stdint.h>

#include <winsock2.h>
#include <windows.h>

/* Socket handles are small multiples of 4 in a test process. */
#define HANDLE_PROBE_MAX (1 << 16)

static SOCKET sock_of(int h)
{
    return (SOCKET)(intptr_t)h;
}

static int int_of(SOCKET s)
{
    return s == INVALID_SOCKET || s > (SOCKET)INT_MAX ? -1 : (int)(intptr_t)s;
}

static int winsock(void)
{
    static int started;
    WSADATA d;

    if (!started)
        started = WSAStartup(MAKEWORD(2, 2), &d) == 0;
    return started;
}

int test_count_fds(void)
{
    int h, n = 0;

    if (!winsock())
        return -1;
    for (h = 4; h < HANDLE_PROBE_MAX; h += 4)
        n += test_fd_is_open(h);
    return n;
}

int test_null_fd(void)
{
    if (!winsock())
        return -1;
    return int_of(WSASocketW(AF_INET, SOCK_DGRAM, IPPROTO_UDP, NULL, 0,
                             WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT));
}

int test_dup_fd(int fd)
{
    WSAPROTOCOL_INFOW info;

    if (!winsock() || WSADuplicateSocketW(sock_of(fd), GetCurrentProcessId(), &info) != 0)
        return -1;
    return int_of(WSASocketW(FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, &info,
                             0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT));
}

int test_fd_is_open(int fd)
{
    int type, len = sizeof(type);

    return winsock() &&
           getsockopt(sock_of(fd), SOL_SOCKET, SO_TYPE, (char *)&type, &len) == 0;
}

void test_close_fd(int fd)
{
    if (fd >= 0)
        (void)closesocket(sock_of(fd));
}
