/*
 * replay_main.c - runs a fuzz target on stored inputs without libFuzzer:
 *
 *   fuzz_replay_<target> DIR|FILE...
 *
 * Every regular file of each DIR (in name order) and every FILE is passed
 * to LLVMFuzzerTestOneInput once.  A failed property or a sanitizer report
 * ends the process; the input's name was printed just before it ran.  A
 * directory without inputs is an error, so a lost corpus cannot pass.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int read_all(const char *path, uint8_t **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL, *p;
    size_t len = 0, cap = 0, n;

    if (f == NULL)
        return -1;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            if ((p = realloc(buf, cap)) == NULL) {
                free(buf);
                fclose(f);
                errno = ENOMEM;
                return -1;
            }
            buf = p;
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        errno = EIO;
        return -1;
    }
    fclose(f);
    *data = buf;
    *size = len;
    return 0;
}

static int run_file(const char *path)
{
    uint8_t *data, *exact;
    size_t size;

    if (read_all(path, &data, &size) == -1) {
        fprintf(stderr, "replay: %s: cannot read: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, size);
    /* An exactly sized block, as libFuzzer passes, so overreads are caught. */
    exact = fuzz_dup(data, size);
    free(data);
    LLVMFuzzerTestOneInput(exact, size);
    free(exact);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file of dir; returns how many, or -1. */
static long run_dir(const char *dir)
{
    char **names = NULL, **p, path[4096];
    size_t n = 0, cap = 0, i;
    struct dirent *e;
    struct stat st;
    long ran = 0;
    DIR *d;

    if ((d = opendir(dir)) == NULL) {
        fprintf(stderr, "replay: %s: cannot open: %s\n", dir, strerror(errno));
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            if ((p = realloc(names, cap * sizeof(*names))) == NULL)
                break;
            names = p;
        }
        if ((names[n] = strdup(e->d_name)) == NULL)
            break;
        n++;
    }
    closedir(d);
    if (e != NULL) {
        fprintf(stderr, "replay: %s: out of memory listing it\n", dir);
        ran = -1;
    }
    if (n > 0)
        qsort(names, n, sizeof(*names), by_name);
    for (i = 0; i < n && ran >= 0; i++) {
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >= sizeof(path) ||
            stat(path, &st) == -1) {
            fprintf(stderr, "replay: %s/%s: cannot stat\n", dir, names[i]);
            ran = -1;
        } else if (S_ISREG(st.st_mode)) {
            ran = run_file(path) == 0 ? ran + 1 : -1;
        }
    }
    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return ran;
}

int main(int argc, char **argv)
{
    struct stat st;
    long total = 0, ran;
    int i;

    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
        return 2;
    }
    for (i = 1; i < argc; i++) {
        if (stat(argv[i], &st) == -1) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        if (S_ISDIR(st.st_mode)) {
            if ((ran = run_dir(argv[i])) <= 0) {
                if (ran == 0)
                    fprintf(stderr, "replay: %s: no inputs\n", argv[i]);
                return 1;
            }
        } else if ((ran = run_file(argv[i]) == 0 ? 1 : -1) < 0) {
            return 1;
        }
        total += ran;
    }
    printf("replayed %ld input%s\n", total, total == 1 ? "" : "s");
    return 0;
}
