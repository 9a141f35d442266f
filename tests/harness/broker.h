/* Test harness: a private Mosquitto broker on a free 127.0.0.1 port.
 *
 * wf_test_broker_start() writes a config into a fresh mkdtemp() directory,
 * starts the binary named by $WF_MOSQUITTO (else /usr/sbin/mosquitto) with
 * it, and polls until the port accepts connections (deadline 10 s). The
 * harness only ever signals the PID it started. wf_test_broker_free() stops
 * the broker and removes the directory. A Check test that fails exits
 * without freeing: Check kills its process group (the broker with it), and
 * the test's main() should point $TMPDIR at a directory of its own and
 * remove that at the end (see tests/integration/test-bus.c).
 *
 * Also wf_test_run_until(): run an ev_loop until a predicate holds or a
 * deadline passes, so tests never sleep for readiness. */
#ifndef WF_TEST_BROKER_H
#define WF_TEST_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct ev_loop;
struct wf_test_broker;

struct wf_test_broker_user {
	const char *name;
	const char *password;
};

struct wf_test_broker_options {
	bool persistence;             /* persistence true, location = the temp dir */
	int autosave_interval_s;      /* with persistence; 0 = mosquitto's default */
	/* Non-NULL (n_users >= 1): allow_anonymous false plus a password file
	 * made with mosquitto_passwd. NULL: allow_anonymous true. */
	const struct wf_test_broker_user *users; /* mosquitto_passwd: $WF_MOSQUITTO_PASSWD,
	                                            else /usr/bin/mosquitto_passwd */
	size_t n_users;
	const char *acl;              /* acl_file contents, or NULL for none */
	const char *extra_config;     /* appended to the config verbatim, or NULL */
};

/* Zeroes O: no persistence, anonymous, no ACL. This function can't fail. */
void wf_test_broker_options_init(struct wf_test_broker_options *o);

/* Starts a broker (retrying with a new port if the port was taken between
 * probing and binding). O may be NULL (defaults); it is copied. Returns 0
 * and sets *ret, -ENOENT if the mosquitto binary is missing, -ETIMEDOUT or
 * -ECHILD if it did not come up (the log is printed to stderr), other
 * negative errno. Free with wf_test_broker_free(). */
int wf_test_broker_start(const struct wf_test_broker_options *o, struct wf_test_broker **ret);

/* SIGTERM, wait up to 10 s, then SIGKILL. Mosquitto saves its persistence
 * file on SIGTERM. Returns 0, or -ESRCH if not running. */
int wf_test_broker_stop(struct wf_test_broker *b);

/* SIGKILL and reap (no persistence save). Returns 0, or -ESRCH if not running. */
int wf_test_broker_kill(struct wf_test_broker *b);

/* Starts the broker again (stopping it first if it runs) on the same port
 * with the same config and persistence directory, waiting until it accepts.
 * Returns 0 or a negative errno. */
int wf_test_broker_restart(struct wf_test_broker *b);

/* The TCP port. This function can't fail. */
int wf_test_broker_port(const struct wf_test_broker *b);

/* PID of the running broker, or 0. This function can't fail. */
pid_t wf_test_broker_pid(const struct wf_test_broker *b);

/* The private directory (config, log, persistence). Borrowed until free. */
const char *wf_test_broker_dir(const struct wf_test_broker *b);

/* The broker's log so far (malloc'd, caller frees), or NULL. */
char *wf_test_broker_log(const struct wf_test_broker *b);

/* Stops the broker if running, removes the directory, frees. Accepts NULL;
 * returns NULL. */
struct wf_test_broker *wf_test_broker_free(struct wf_test_broker *b);

/* Makes a fresh temp directory (mkdtemp under $TMPDIR or /tmp) named after
 * TAG. Returns a malloc'd path, or NULL. */
char *wf_test_mkdtemp(const char *tag);

/* Removes DIR and everything in it (one level of files is enough for the
 * harness; subdirectories are removed recursively). Returns 0 or -errno. */
int wf_test_rmtree(const char *dir);

/* Runs LOOP until PRED(UD) is true (checked before and after every loop
 * iteration) or TIMEOUT_MS passes. Returns true if PRED became true (PRED
 * must not be NULL). The timeout is multiplied by 10 under
 * valgrind (WF_UNDER_VALGRIND) and by 3 under sanitizers (WF_UNDER_SANITIZER,
 * or an ASan build detected at compile time; WF_UNDER_SANITIZER=0 turns it off). */
bool wf_test_run_until(struct ev_loop *loop, bool (*pred)(void *ud), void *ud, int timeout_ms);

/* Runs LOOP for MS milliseconds of real time (not scaled), e.g. to observe
 * what a client does while a broker is down. */
void wf_test_run_for(struct ev_loop *loop, int ms);

/* The timeout multiplier wf_test_run_until() applies (1, 3 or 10). */
int wf_test_time_factor(void);

#endif
