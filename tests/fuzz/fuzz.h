/*
 * fuzz.h - what the fuzz targets in tests/fuzz share.
 *
 * Each fuzz_<target>.c defines LLVMFuzzerTestOneInput.  It is linked either
 * with libFuzzer (BATON_FUZZ builds, clang) or with replay_main.c, which runs
 * it on every file of a corpus directory (any compiler, every normal build),
 * so the checked-in corpora are regression tests everywhere.
 *
 * Targets do more than wait for a crash: they check properties (round trips,
 * results that must not depend on how input was split) with FUZZ_ASSERT,
 * which aborts, so libFuzzer saves the input and a replay fails.
 */
#ifndef BATON_FUZZ_H
#define BATON_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(e) ((e) ? (void)0 : fuzz_fail(__FILE__, __LINE__, #e))
_Noreturn void fuzz_fail(const char *file, int line, const char *expr);

/*
 * Chunk sizes for feeding an input in pieces, as bytes arrive from a socket,
 * chosen by one input byte so the fuzzer can vary the split of the same bytes:
 * 0 all at once, 1 one byte at a time, 2..127 random sizes of 1..mode bytes,
 * 128..255 random sizes of 1..(mode - 126) * 64 bytes.
 */
struct fuzz_splitter {
    uint32_t state;
    unsigned mode;
};
void   fuzz_splitter_init(struct fuzz_splitter *s, uint8_t mode);
/* Size of the next chunk, 1..left (0 only when left is 0). */
size_t fuzz_splitter_next(struct fuzz_splitter *s, size_t left);

/*
 * Drives a stateless incremental parser as a connection does: each time
 * bytes arrive (chunk sizes from `split`), everything received so far is
 * parsed again, from its own exactly sized copy.  parse() fills `result`
 * (result_size bytes, compared bytewise: zero it first) and returns its
 * verdict.  The first MORE-free verdict must then hold for every longer
 * prefix: DONE with identical result bytes, REFUSED as REFUSED (the caller
 * acts on the first answer; later bytes must not change it).  Prefixes past
 * the 256th are skipped to the whole input, to bound the time per input.
 * Returns the verdict on the whole input; `result` holds its result.
 */
enum fuzz_verdict { FUZZ_MORE, FUZZ_DONE, FUZZ_REFUSED };
typedef enum fuzz_verdict fuzz_parse_fn(const uint8_t *p, size_t n, void *result);
enum fuzz_verdict fuzz_prefixes(const uint8_t *data, size_t size, uint8_t split,
                                fuzz_parse_fn *parse, void *result, size_t result_size);

/* A copy of p[0..n) in a heap block of exactly n bytes, so that AddressSanitizer
 * catches a parser reading past n even when the caller's buffer goes on. */
uint8_t *fuzz_dup(const uint8_t *p, size_t n);

/* A new descriptor (on /dev/null) for messages that carry descriptors. */
int fuzz_fd(void);
/* The lowest free descriptor number; the same before and after an input
 * means the code under test closed every descriptor it was given. */
int fuzz_lowest_free_fd(void);

#endif
