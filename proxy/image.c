/* image.c - the parts of image.h that are the same on every OS. */
#include "image.h"

void proxy_image_move(struct proxy_image *dst, struct proxy_image *src)
{
    if (dst == src)
        return;
    proxy_image_close(dst);
    *dst = *src;
    src->fd = -1;
    src->dev = src->ino = 0;
}

int proxy_image_same(const struct proxy_image *a, const struct proxy_image *b)
{
    return a->fd >= 0 && b->fd >= 0 && a->dev == b->dev && a->ino == b->ino;
}
