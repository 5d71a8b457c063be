/*
 * fuzz_util.c - helpers shared by the fuzz targets (see fuzz.h).
 */
#include "fuzz.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void fuzz_fail(const char *file, int line, const char *expr)
{
    fprintf(stderr, "%s:%d: fuzz property does not hold: %s\n", file, line, expr);
    abort();
}

void fuzz_splitter_init(struct fuzz_splitter *s, uint8_t mode)
{
    s->mode = mode;
    /* xorshift32 must not start at 0. */
    s->state = 0x9e3779b9u ^ ((uint32_t)mode * 0x01000193u);
}

static uint32_t xorshift32(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

size_t fuzz_splitter_next(struct fuzz_splitter *s, size_t left)
{
    size_t limit, n;

    if (left == 0)
        return 0;
    if (s->mode == 0)
        return left;
    if (s->mode == 1)
        return 1;
    limit = s->mode < 128 ? s->mode : (size_t)(s->mode - 126) * 64;
    n = 1 + xorshift32(&s->state) % limit;
    return n < left ? n : left;
}

uint8_t *fuzz_dup(const uint8_t *p, size_t n)
{
    /* malloc(0) may return NULL; one byte keeps "no memory" distinguishable. */
    uint8_t *copy = malloc(n > 0 ? n : 1);

    if (copy == NULL) {
        fprintf(stderr, "fuzz: out of memory copying %zu bytes\n", n);
        abort();
    }
    if (n > 0)
        memcpy(copy, p, n);
    return copy;
}

#define PREFIXES_MAX 256

enum fuzz_verdict fuzz_prefixes(const uint8_t *data, size_t size, uint8_t split,
                                fuzz_parse_fn *parse, void *result, size_t result_size)
{
    enum fuzz_verdict first = FUZZ_MORE, v;
    uint8_t *first_result = fuzz_dup(result, result_size), *copy;
    struct fuzz_splitter s;
    size_t have = 0, prefixes = 0;

    fuzz_splitter_init(&s, split);
    do {
        have += fuzz_splitter_next(&s, size - have);
        if (++prefixes > PREFIXES_MAX)
            have = size;
        copy = fuzz_dup(data, have);
        v = parse(copy, have, result);
        free(copy);
        if (first == FUZZ_MORE) {
            first = v;
            memcpy(first_result, result, result_size);
        } else {
            FUZZ_ASSERT(v == first);
            if (v == FUZZ_DONE)
                FUZZ_ASSERT(memcmp(result, first_result, result_size) == 0);
        }
    } while (have < size);
    free(first_result);
    return v;
}

int fuzz_fd(void)
{
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

    if (fd < 0) {
        perror("fuzz: open /dev/null");
        abort();
    }
    return fd;
}

int fuzz_lowest_free_fd(void)
{
    int fd = fuzz_fd();

    close(fd);
    return fd;
}
