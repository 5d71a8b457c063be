/*
 * port_net.h (Windows) - socket address types and conversions from Winsock
 * (AF_UNIX's sockaddr_un from afunix.h, Windows 10 1803 and later), and the
 * POSIX names the portable code uses for them.
 */
#ifndef BATON_PORT_NET_H
#define BATON_PORT_NET_H

#include <winsock2.h>
#include <ws2tcpip.h>
#include <afunix.h>
#include <strings.h>
#include <sys/types.h>

/* Windows has no numeric groups; the type exists so that the configuration
 * keeps one layout (port_group_id() finds no group on Windows).  uid_t
 * likewise for peer credentials (peercred_win.c puts a SID's last part in
 * it). */
typedef unsigned int gid_t;
typedef unsigned int uid_t;
typedef unsigned short in_port_t;

#endif
