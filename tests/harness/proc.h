/* proc: child processes for integration tests (the services under test).
 * Every child is started by the test and stopped by its PID only. */
#ifndef WF_TEST_PROC_H
#define WF_TEST_PROC_H

#include <stdbool.h>
#include <sys/types.h>

/* Starts ARGV[0] (a path) with ARGV, the test's environment plus ENV
 * ("NAME=value" entries, NULL-terminated; may be NULL), stdout and stderr
 * appended to LOG_PATH (NULL: inherited). Returns the PID, or -errno. */
pid_t wf_test_spawn(char *const argv[], char *const env[], const char *log_path);

/* Waits up to TIMEOUT_MS (scaled like wf_test_run_until) for PID to exit,
 * polling. Returns the exit status (0..255), 128 + signal, or -ETIMEDOUT
 * (the child is left running). */
int wf_test_wait(pid_t pid, int timeout_ms);

/* Sends SIG to PID and waits for it to exit (TIMEOUT_MS); a child that does
 * not exit in time gets SIGKILL. Returns what wf_test_wait returned. */
int wf_test_stop(pid_t pid, int sig, int timeout_ms);

/* Runs ARGV to completion with stdout into a malloc'd *RET_OUT (NUL
 * terminated; stderr to LOG_PATH or inherited). Returns the exit status as
 * wf_test_wait does. */
int wf_test_capture(char *const argv[], char *const env[], const char *log_path,
		    char **ret_out, int timeout_ms);

/* User + system CPU seconds of process PID so far (/proc/PID/stat), or -1
 * if it cannot be read (e.g. it has been reaped). */
double wf_test_proc_cpu_s(pid_t pid);

/* The path of a built program: $WF_BUILD_ROOT/REL (malloc'd). */
char *wf_test_build_path(const char *rel);
/* The path of a source file: $WF_SOURCE_ROOT/REL (malloc'd). */
char *wf_test_source_path(const char *rel);

#endif
