/* port_once.h (POSIX) - run a function once per process: pthread_once. */
#ifndef BATON_PORT_ONCE_H
#define BATON_PORT_ONCE_H

#include <pthread.h>

typedef pthread_once_t port_once_t;
#define PORT_ONCE_INIT PTHREAD_ONCE_INIT

/* 0 once fn has run (in this or another thread), -1 on failure. */
static inline int port_once(port_once_t *once, void (*fn)(void))
{
    return pthread_once(once, fn) == 0 ? 0 : -1;
}

#endif
