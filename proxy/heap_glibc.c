/*
 * heap_glibc.c - proxy_heap_trim for glibc's malloc.
 */
#include "heap.h"

#include <malloc.h>

void proxy_heap_trim(void)
{
    /* 0: keep no padding at the top.  Beyond trimming the top of each
     * heap, this advises the kernel to drop every whole free page inside
     * them (MADV_DONTNEED), which is what brings holes back.  Its result
     * only says whether anything was released. */
    (void)malloc_trim(0);
}
