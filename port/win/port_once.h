/*
 * port_once.h (Windows) - run a function once per process: the system's
 * one-time initialisation, so that no pthread emulation DLL is needed.
 */
#ifndef BATON_PORT_ONCE_H
#define BATON_PORT_ONCE_H

#include <windows.h>

typedef INIT_ONCE port_once_t;
#define PORT_ONCE_INIT INIT_ONCE_STATIC_INIT

struct port_once_fn {
    void (*fn)(void);
};

static inline BOOL CALLBACK port_once_call(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
    (void)once;
    (void)ctx;
    ((const struct port_once_fn *)param)->fn();
    return TRUE;
}

/* 0 once fn has run (in this or another thread), -1 on failure. */
static inline int port_once(port_once_t *once, void (*fn)(void))
{
    struct port_once_fn f = { fn };

    return InitOnceExecuteOnce(once, port_once_call, &f, NULL) ? 0 : -1;
}

#endif
