/* port_net.h (POSIX) - socket address types and conversions: the system's. */
#ifndef BATON_PORT_NET_H
#define BATON_PORT_NET_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#endif
