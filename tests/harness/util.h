/* Small helpers of the test and benchmark programs (they run as their own
 * processes: a failure here ends the program, exit 1, after saying why). */
#ifndef WF_TEST_UTIL_H
#define WF_TEST_UTIL_H

#include <stddef.h>

/* CLOCK_MONOTONIC in seconds. */
double wf_test_mono_s(void);
/* "<program>: WHAT: <strerror(errno)>" on stderr, then exit(1) (atexit
 * handlers run: they stop what the program started). */
_Noreturn void wf_test_die(const char *what);
/* vasprintf that dies on failure (free the result). */
char *wf_test_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Writes LEN bytes of DATA to PATH (created or truncated), or dies. */
void wf_test_spit(const char *path, const char *data, size_t len);
/* wf_test_spit of a string. */
void wf_test_spit_text(const char *path, const char *text);
/* Entries of directory PATH not starting with '.' whose name ends with
 * SUFFIX ("": any); -1 when PATH cannot be read. */
long wf_test_dir_count(const char *path, const char *suffix);

#endif
