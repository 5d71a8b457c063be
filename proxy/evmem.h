/*
 * evmem.h - where libevent's memory comes from.
 */
#ifndef BATON_PROXY_EVMEM_H
#define BATON_PROXY_EVMEM_H

/* Installs baton's allocator for libevent; before any other libevent call. */
void proxy_evmem_install(void);

#endif
