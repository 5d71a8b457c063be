/*
 * process_win.h - the parts of process.h's Windows implementation that
 * talk to each other:
 *   cmdline_win.c   the command line and environment block of a new process
 *   children_win.c  the processes the master started: exit watch and stop
 *   process_win.c   starting them
 */
#ifndef BATON_PROXY_PROCESS_WIN_H
#define BATON_PROXY_PROCESS_WIN_H

#include <stddef.h>
#include <wchar.h>
/* Winsock first: windows.h would otherwise pull in its old version. */
#include <winsock2.h>
#include <windows.h>

/* The exit code TerminateProcess gives a worker the master kills
 * (PROXY_PROCESS_KILL): an NTSTATUS with the customer bit set, so that no
 * Windows status and no exit() of a C program means the same. */
#define PROXY_PROCESS_WIN_KILLED 0xE0BA7009UL

/* argv (UTF-8, NULL-terminated) as one command line that
 * CommandLineToArgvW and the C runtime split back into the same strings.
 * argv[0] follows the rules of the program name (no escapes: it must not
 * hold a double quote).  malloc'd, or NULL with why. */
wchar_t *proxy_win_cmdline(const char *const argv[], char *why, size_t n);

/* This process's environment block with env ("NAME=value") in place of
 * any NAME (compared as Windows does: without case), inserted where a
 * sorted block has it (Windows keeps blocks sorted; Wine's first block is
 * the Unix order).  malloc'd, or NULL with why. */
wchar_t *proxy_win_env_with(const char *env, char *why, size_t n);

/* Remembers a started process (proc is kept, closed once its exit is
 * reported) and watches it if a watch exists.  0, or -1 with why (proc is
 * then still the caller's). */
int proxy_win_children_add(HANDLE proc, DWORD pid, char *why, size_t n);

#endif
