/*
 * cmdline_win.c - what a new process is given on Windows: one command line
 * (the program splits it itself, by CommandLineToArgvW's rules) and one
 * environment block.
 */
#include "process_win.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf16_win.h"

/* Appends arg quoted so that it splits back as it is: backslashes are
 * literal except before a double quote, where 2n of them give n and
 * 2n + 1 give n and the quote. */
static wchar_t *quote_arg(wchar_t *out, const wchar_t *arg)
{
    size_t slashes = 0;

    if (arg[0] != L'\0' && wcspbrk(arg, L" \t\n\v\"") == NULL) {
        wcscpy(out, arg);
        return out + wcslen(arg);
    }
    *out++ = L'"';
    for (; *arg != L'\0'; arg++) {
        if (*arg == L'\\') {
            slashes++;
        } else if (*arg == L'"') {
            for (size_t i = 0; i < slashes + 1; i++)
                *out++ = L'\\';
            slashes = 0;
        } else {
            slashes = 0;
        }
        *out++ = *arg;
    }
    /* Backslashes before the closing quote would escape it. */
    for (size_t i = 0; i < slashes; i++)
        *out++ = L'\\';
    *out++ = L'"';
    return out;
}

/* The program name ends at the next double quote, backslashes and all:
 * quoted, it may hold anything but a double quote. */
static wchar_t *quote_program(wchar_t *out, const wchar_t *name)
{
    *out++ = L'"';
    wcscpy(out, name);
    out += wcslen(name);
    *out++ = L'"';
    return out;
}

wchar_t *proxy_win_cmdline(const char *const argv[], char *why, size_t n)
{
    size_t argc = 0, room = 1;
    wchar_t **wide, *line = NULL, *p;

    while (argv[argc] != NULL)
        argc++;
    if (argc == 0 || strchr(argv[0], '"') != NULL) {
        snprintf(why, n, "program name %s: a double quote cannot be passed on Windows",
                 argc == 0 ? "(none)" : argv[0]);
        return NULL;
    }
    wide = calloc(argc, sizeof(*wide));
    if (wide == NULL) {
        snprintf(why, n, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < argc; i++) {
        wide[i] = proxy_utf16_from_utf8(argv[i]);
        if (wide[i] == NULL) {
            snprintf(why, n, "argument %s is not valid UTF-8 (or out of memory)", argv[i]);
            goto out;
        }
        /* Worst case: every character a quote escaped, two quotes, a space. */
        room += 2 * wcslen(wide[i]) + 3;
    }
    line = malloc(room * sizeof(*line));
    if (line == NULL) {
        snprintf(why, n, "out of memory");
        goto out;
    }
    p = quote_program(line, wide[0]);
    for (size_t i = 1; i < argc; i++) {
        *p++ = L' ';
        p = quote_arg(p, wide[i]);
    }
    *p = L'\0';
out:
    for (size_t i = 0; i < argc; i++)
        free(wide[i]);
    free(wide);
    return line;
}

/* Length of an entry's name: up to its '=', where a leading '=' (the
 * hidden per-drive directories, "=C:=C:\dir") belongs to the name. */
static size_t env_name_len(const wchar_t *e)
{
    const wchar_t *eq = wcschr(e + (e[0] == L'='), L'=');

    return eq != NULL ? (size_t)(eq - e) : wcslen(e);
}

/* Windows orders and matches names without case, by code unit (not by
 * locale). */
static int env_name_cmp(const wchar_t *a, size_t alen, const wchar_t *b, size_t blen)
{
    return CompareStringOrdinal(a, (int)alen, b, (int)blen, TRUE) - CSTR_EQUAL;
}

wchar_t *proxy_win_env_with(const char *env, char *why, size_t n)
{
    wchar_t *add = proxy_utf16_from_utf8(env), *block = NULL, *cur, *out, *p;
    size_t addlen, namelen, total = 0;
    int added = 0;

    if (add == NULL || env[0] == '=' || strchr(env, '=') == NULL) {
        snprintf(why, n, "environment entry %s: expected NAME=value in UTF-8", env);
        free(add);
        return NULL;
    }
    addlen = wcslen(add);
    namelen = env_name_len(add);
    cur = GetEnvironmentStringsW();
    if (cur == NULL) {
        snprintf(why, n, "GetEnvironmentStringsW: error %lu", GetLastError());
        free(add);
        return NULL;
    }
    for (p = cur; *p != L'\0'; p += wcslen(p) + 1)
        total += wcslen(p) + 1;
    block = malloc((total + addlen + 2) * sizeof(*block));
    if (block == NULL) {
        snprintf(why, n, "out of memory");
        goto out;
    }
    out = block;
    for (p = cur; *p != L'\0'; p += wcslen(p) + 1) {
        int cmp = env_name_cmp(p, env_name_len(p), add, namelen);

        if (!added && cmp >= 0) {
            wcscpy(out, add);
            out += addlen + 1;
            added = 1;
        }
        if (cmp == 0)
            continue;   /* replaced */
        wcscpy(out, p);
        out += wcslen(p) + 1;
    }
    if (!added) {
        wcscpy(out, add);
        out += addlen + 1;
    }
    *out = L'\0';
out:
    FreeEnvironmentStringsW(cur);
    free(add);
    return block;
}
