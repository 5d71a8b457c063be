/*
 * heap_other.c - proxy_heap_trim for allocators without malloc_trim.
 *
 * musl, jemalloc and the BSD and macOS allocators return freed pages to
 * the system on their own (or offer no call to ask for it): there is
 * nothing to do.
 */
#include "heap.h"

void proxy_heap_trim(void)
{
}
