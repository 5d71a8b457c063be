/*
 * testutil.h - minimal assertions for baton's C unit tests.  Each failed
 * check prints FILE:LINE and what differed; test_summary() prints the
 * closing "N passed, N failed" line and returns the exit code.
 */
#ifndef BATON_TESTUTIL_H
#define BATON_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

extern unsigned test_passed, test_failed;

void test_check(int ok, const char *file, int line, const char *expr);
void test_check_str(const char *got, const char *want, const char *file, int line,
                    const char *expr);
void test_check_u64(uint64_t got, uint64_t want, const char *file, int line,
                    const char *expr);
int  test_summary(const char *suite);
/* Checks that a failure reason mentions `sub`. */
void test_check_contains(const char *why, const char *sub, const char *file, int line);
/* Deterministic PRNG (xorshift32) so failures reproduce; test_seed resets it. */
uint32_t test_rand(void);
void test_seed(uint32_t seed);
/* Descriptors: one file per OS (testutil_posix.c, testutil_win.c).  On
 * Windows they are sockets: what the handoff library moves and closes. */
/* Descriptors this process has open (-1 if they cannot be counted). */
int test_count_fds(void);
/* A descriptor open for reading on the null device (Windows: an unbound
 * socket), close-on-exec. */
int test_null_fd(void);
/* A duplicate of fd, close-on-exec (-1 on failure). */
int test_dup_fd(int fd);
/* Whether fd is an open descriptor. */
int test_fd_is_open(int fd);
/* Closes one. */
void test_close_fd(int fd);
/* Reads a whole file into a malloc'd NUL-terminated buffer (NULL on error). */
char *test_read_file(const char *path);

#define CHECK(e)           test_check(!!(e), __FILE__, __LINE__, #e)
#define CHECK_STR(g, w)    test_check_str((g), (w), __FILE__, __LINE__, #g)
#define CHECK_WHY(why, sub) test_check_contains((why), (sub), __FILE__, __LINE__)
#define CHECK_U64(g, w)    test_check_u64((uint64_t)(g), (uint64_t)(w), __FILE__, __LINE__, #g)

#endif
