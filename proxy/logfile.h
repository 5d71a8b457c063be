/*
 * logfile.h - opening the files baton appends lines to (the access log,
 * the TLS key log).  Several threads and processes (the generations of a
 * reload) append to one file, so each line must land whole at the end:
 * the file is opened so that every write(2) of a line is one atomic
 * append.  The descriptor is a C library one (write, fstat, close work on
 * it).  One implementation per OS:
 *   logfile_unix.c  open(O_APPEND)
 *   logfile_win.c   CreateFileW with FILE_APPEND_DATA and no
 *                   FILE_WRITE_DATA (the C library's "a" mode seeks, then
 *                   writes: two processes' lines could overwrite each
 *                   other), wrapped by _open_osfhandle
 */
#ifndef BATON_PROXY_LOGFILE_H
#define BATON_PROXY_LOGFILE_H

/* Open without waiting for anything (a FIFO without a reader fails with
 * ENXIO rather than blocking, and writes never block). */
#define PROXY_LOGFILE_NONBLOCK 1u

/* Opens path for appending, creating it with mode (Unix permission bits;
 * Windows gives a new file its folder's ACL), not inherited by child
 * processes.  A descriptor, or -1 with errno. */
int proxy_logfile_open(const char *path, unsigned mode, unsigned flags);

#endif
