/* port_net.h (POSIX) - socket address types and conversions: the system's. */
#ifndef BATON_PORT_NET_H
#define BATON_PORT_NET_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

/* send() flag that turns a write to a closed peer into EPIPE, not SIGPIPE. */
#define PORT_SEND_NOSIGNAL MSG_NOSIGNAL
/* send() flag: more bytes follow at once (the stack may hold a partial
 * segment for them). */
#define PORT_SEND_MORE MSG_MORE

/* Socket calls report their errors in errno here, with strerror's text:
 * the Windows header maps Winsock's codes onto these (netutil.h's
 * proxy_recv... use them; on POSIX they cost nothing). */
#define PORT_SOCK_ERRNO()         ((void)0)
#define PORT_SOCK_CONNECT_ERRNO() ((void)0)
#define PORT_SOCK_CODE(e)         (e)
#define PORT_SOCK_STRERROR(e)     strerror(e)

#endif
