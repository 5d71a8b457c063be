/*
 * heap.h - giving memory the process freed back to the system.
 *
 * After a burst (thousands of TLS handshakes opened and closed) the
 * allocator keeps the freed memory for later: glibc returns only what lies
 * at the very top of its heap, and holes below stay resident.  The event
 * loops ask for it back once their connections have dropped sharply.
 * Allocator-specific, so one implementation file per allocator.
 */
#ifndef BATON_PROXY_HEAP_H
#define BATON_PROXY_HEAP_H

/* Releases the free memory of every thread's arena to the system.  Costs
 * a walk over the free lists (milliseconds after a large burst): call it
 * rarely. */
void proxy_heap_trim(void);

#endif
