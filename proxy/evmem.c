/*
 * evmem.c - libevent's small allocations live in slabs of their own.
 *
 * libevent keeps a record for every descriptor number a base has ever
 * watched (struct evmap_io, 24 bytes), allocated the first time the number
 * is used and freed only with the base.  During a burst of connections
 * those records are allocated in between the connections' own memory; once
 * the burst is over and everything else is freed, each one pins a page of
 * the heap: 10,000 connections left some 40 MB resident that malloc_trim
 * could not give back.  Allocations this small are taken from slabs made
 * for them instead, so they sit together whatever else comes and goes.
 * Everything larger goes to malloc as before.
 */
#include "evmem.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#define SLOT       32u      /* largest request served from a slab */
#define SLAB_SLOTS 4096u    /* 128 KiB per slab */

struct slab {
    struct slab *next;
    uint8_t     *mem;       /* SLAB_SLOTS slots of SLOT bytes */
};

/* Loops of a worker run on threads of their own; a slot is taken rarely
 * (once per new descriptor number), so one lock is enough. */
static pthread_mutex_t evmem_lock = PTHREAD_MUTEX_INITIALIZER;
static struct slab *slabs;
static void *free_slots;    /* each free slot holds the next one's address */

static int in_slab(const void *p)
{
    const uint8_t *q = p;

    for (const struct slab *s = slabs; s != NULL; s = s->next)
        if (q >= s->mem && q < s->mem + (size_t)SLOT * SLAB_SLOTS)
            return 1;
    return 0;
}

static int slab_add(void)
{
    struct slab *s = malloc(sizeof(*s));

    if (s == NULL || (s->mem = malloc((size_t)SLOT * SLAB_SLOTS)) == NULL) {
        free(s);
        return -1;
    }
    for (unsigned i = 0; i < SLAB_SLOTS; i++) {
        void **slot = (void **)(s->mem + (size_t)i * SLOT);

        *slot = free_slots;
        free_slots = slot;
    }
    s->next = slabs;
    slabs = s;
    return 0;
}

static void *slot_take(void)
{
    void **slot = NULL;

    pthread_mutex_lock(&evmem_lock);
    if (free_slots != NULL || slab_add() == 0) {
        slot = free_slots;
        free_slots = *slot;
    }
    pthread_mutex_unlock(&evmem_lock);
    return slot;
}

/* Returns the slot if p is one (1), or 0 if p came from malloc. */
static int slot_give(void *p)
{
    int mine;

    pthread_mutex_lock(&evmem_lock);
    mine = in_slab(p);
    if (mine) {
        *(void **)p = free_slots;
        free_slots = p;
    }
    pthread_mutex_unlock(&evmem_lock);
    return mine;
}

static void *evmem_malloc(size_t n)
{
    return n <= SLOT ? slot_take() : malloc(n);
}

static void evmem_free(void *p)
{
    if (p != NULL && !slot_give(p))
        free(p);
}

static void *evmem_realloc(void *p, size_t n)
{
    void *q;
    int mine;

    if (p == NULL)
        return evmem_malloc(n);
    pthread_mutex_lock(&evmem_lock);
    mine = in_slab(p);
    pthread_mutex_unlock(&evmem_lock);
    if (!mine)
        return realloc(p, n);
    if (n <= SLOT)
        return p;
    if ((q = malloc(n)) == NULL)
        return NULL;
    memcpy(q, p, SLOT);
    slot_give(p);
    return q;
}

void proxy_evmem_install(void)
{
    event_set_mem_functions(evmem_malloc, evmem_realloc, evmem_free);
}
