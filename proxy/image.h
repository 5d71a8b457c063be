/*
 * image.h - the executable a process runs, held open by descriptor.
 *
 * The master never executes "whatever file is at the path now": a reload
 * opens the binary at the install path once, starts the new worker from
 * that descriptor, and - once the worker has proven the binary by becoming
 * ready - re-executes the master from the very same descriptor.  A crashed
 * worker is replaced from the image the serving generation ran.  A file
 * installed at the path in between is only ever used by the next reload.
 * One implementation per OS (image_unix.c: fexecve; image_win.c: a
 * handle that lets the file be renamed, never rewritten; image.c: what
 * both share).
 */
#ifndef BATON_PROXY_IMAGE_H
#define BATON_PROXY_IMAGE_H

#include <stddef.h>
#include <stdint.h>

struct proxy_image {
    int      fd;        /* read-only, close-on-exec; -1 when none */
    uint64_t dev, ino;  /* identity: a running file cannot be rewritten in place */
};

#define PROXY_IMAGE_NONE { .fd = -1, .dev = 0, .ino = 0 }

/* Opens the executable at path.  0, or -1 with why. */
int  proxy_image_open(struct proxy_image *img, const char *path, char *why, size_t n);
/* The image this process was started from. */
int  proxy_image_open_self(struct proxy_image *img, char *why, size_t n);
/* Takes over a descriptor inherited across exec (made close-on-exec). */
int  proxy_image_adopt(struct proxy_image *img, int fd, char *why, size_t n);
/* A second descriptor of the same image. */
int  proxy_image_dup(struct proxy_image *dst, const struct proxy_image *src);
/* Moves src into dst (closing what dst held); src becomes empty. */
void proxy_image_move(struct proxy_image *dst, struct proxy_image *src);
void proxy_image_close(struct proxy_image *img);
/* Both hold the same file. */
int  proxy_image_same(const struct proxy_image *a, const struct proxy_image *b);
/* Replaces the process with the image; returns only on failure (errno set).
 * argv[0] is what the new process sees as its name; envp NULL keeps this
 * environment.  keep_fd: leave the image's descriptor open in the new image
 * (the master passes it on); otherwise it stays open only where the kernel
 * needs it (scripts). */
int  proxy_image_exec(const struct proxy_image *img, char *const argv[], char *const envp[],
                      int keep_fd);

#endif
