/*
 * sockopt.h - the TCP options that change when and how a connection's
 * first bytes travel: deferred accept and Fast Open on a listener, Fast
 * Open when connecting to a server.  One implementation per OS:
 * sockopt_linux.c.  Each returns 0, or -1 with errno (ENOPROTOOPT where
 * the OS has no such option).
 */
#ifndef BATON_PROXY_SOCKOPT_H
#define BATON_PROXY_SOCKOPT_H

/* Wake accept only once the client's first bytes came, or after secs
 * (0: at once, the kernel's default). */
int proxy_sockopt_defer_accept(int fd, unsigned secs);
/* Accept data in the SYN from clients holding a cookie; qlen bounds the
 * connections not yet fully handshaken (0: off). */
int proxy_sockopt_fastopen(int fd, unsigned qlen);
/* Before connect(): the SYN waits for the first send, which it carries
 * when the kernel has the server's cookie. */
int proxy_sockopt_fastopen_connect(int fd);

#endif
