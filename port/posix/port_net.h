/* port_net.h (POSIX) - socket address types and conversions: the system's. */
#ifndef BATON_PORT_NET_H
#define BATON_PORT_NET_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

/* send() flag that turns a write to a closed peer into EPIPE, not SIGPIPE. */
#define PORT_SEND_NOSIGNAL MSG_NOSIGNAL
/* send() flag: more bytes follow at once (the stack may hold a partial
 * segment for them). */
#define PORT_SEND_MORE MSG_MORE

#endif
