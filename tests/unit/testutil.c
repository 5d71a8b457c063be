#include "testutil.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

unsigned test_passed, test_failed;

void test_check(int ok, const char *file, int line, const char *expr)
{
    if (ok) {
        test_passed++;
        return;
    }
    test_failed++;
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, expr);
}

void test_check_str(const char *got, const char *want, const char *file, int line,
                    const char *expr)
{
    int ok = got != NULL && want != NULL ? strcmp(got, want) == 0 : got == want;

    test_check(ok, file, line, expr);
    if (!ok)
        fprintf(stderr, "    got:  %s\n    want: %s\n", got ? got : "(null)",
                want ? want : "(null)");
}

void test_check_u64(uint64_t got, uint64_t want, const char *file, int line,
                    const char *expr)
{
    test_check(got == want, file, line, expr);
    if (got != want)
        fprintf(stderr, "    got:  %" PRIu64 "\n    want: %" PRIu64 "\n", got, want);
}

int test_summary(const char *suite)
{
    printf("%s: %u passed, %u failed\n", suite, test_passed, test_failed);
    return test_failed == 0 && test_passed > 0 ? 0 : 1;
}

char *test_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf != NULL) {
            if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                buf = NULL;
            } else {
                buf[n] = '\0';
            }
        }
    }
    fclose(f);
    return buf;
}

void test_check_contains(const char *why, const char *sub, const char *file, int line)
{
    int ok = why != NULL && strstr(why, sub) != NULL;

    test_check(ok, file, line, "why mentions expected text");
    if (!ok)
        fprintf(stderr, "    why:  %s\n    want: ...%s...\n", why ? why : "(null)", sub);
}

static uint32_t test_rng_state = 0x9e3779b9u;

void test_seed(uint32_t seed)
{
    test_rng_state = seed ? seed : 0x9e3779b9u;
}

uint32_t test_rand(void)
{
    uint32_t x = test_rng_state;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return test_rng_state = x;
}

