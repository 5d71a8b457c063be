/*
 * image_win.h - what process_win.c needs to know of an image on Windows:
 * img->fd carries the file's HANDLE value (handles have 32 significant
 * bits), and the identity of any open file is compared the same way.
 */
#ifndef BATON_PROXY_IMAGE_WIN_H
#define BATON_PROXY_IMAGE_WIN_H

#include <stddef.h>
#include <stdint.h>
/* Winsock first: windows.h would otherwise pull in its old version. */
#include <winsock2.h>
#include <windows.h>

#include "image.h"

/* UTF-8 bytes of the longest path baton starts a process from. */
#define PROXY_IMAGE_PATH_MAX 4096

HANDLE proxy_image_handle(const struct proxy_image *img);
/* Volume serial number and file index of an open file.  0, or -1 with why. */
int proxy_image_identity(HANDLE h, uint64_t *dev, uint64_t *ino, char *why, size_t n);

#endif
