/*
 * utf16_win.h - baton's strings are UTF-8; Windows' wide APIs take UTF-16.
 * Conversions that refuse invalid input rather than guess (a path that
 * does not convert exactly would name another file).
 */
#ifndef BATON_PROXY_UTF16_WIN_H
#define BATON_PROXY_UTF16_WIN_H

#include <stddef.h>
#include <wchar.h>

/* A malloc'd UTF-16 copy of s, or NULL (invalid UTF-8, out of memory). */
wchar_t *proxy_utf16_from_utf8(const char *s);

/* Writes w as UTF-8 into buf.  0, or -1 if invalid or longer than len - 1
 * bytes. */
int proxy_utf8_from_utf16(const wchar_t *w, char *buf, size_t len);

#endif
