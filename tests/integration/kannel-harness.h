/* Test harness: a private Kannel (bearerbox + smsbox) with fakesmsc as the
 * SMSC, all on 127.0.0.1 ports picked here (free at the time of probing),
 * config generated in a fresh temp directory. Facts it relies on are in
 * /work/shared/design/KANNEL.md (start order, readiness, stop order).
 *
 * Start order: bearerbox, poll its admin port (checking that OUR bearerbox
 * PID is alive, not another test's), then fakesmsc and smsbox (both panic
 * if bearerbox is not listening yet), then poll status.txt until it lists
 * an smsbox connection and the SMSC "(online". No sleeps for readiness.
 * Every process runs in its own process group, with PR_SET_PDEATHSIG
 * SIGTERM, so a test that fails or crashes before its cleanup does not
 * leave Kannel running. Stop signals smsbox first (SIGTERM; smsbox
 * re-launches itself if bearerbox dies first), then bearerbox, then
 * fakesmsc, each by its group id.
 *
 * fakesmsc runs with -m 0 (sends nothing) and its stderr (DEBUG "Got
 * message" lines) goes to fakesmsc.log in the directory; use
 * wf_test_kannel_received() to parse it. */
#ifndef WF_TEST_KANNEL_H
#define WF_TEST_KANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct wf_test_kannel;

struct wf_test_kannel_options {
	double throughput;          /* fake smsc "throughput" msg/s (0: unlimited) */
	unsigned max_messages;      /* sendsms-user max-messages (0: 10) */
	const char *denied_prefix;  /* fake smsc denied-prefix, or NULL */
	const char *username, *password; /* sendsms-user (NULL: "tester"/"testpw") */
	bool dlr_retry;             /* smsbox http-request-retry = 10, http-queue-delay = 1 */
};

/* Writes the config into a new temp dir and picks the ports; starts
 * nothing. O may be NULL. Returns 0 and *ret, or a negative errno (-ENOENT
 * if bearerbox, smsbox or fakesmsc is not installed). */
int wf_test_kannel_create(const struct wf_test_kannel_options *o, struct wf_test_kannel **ret);

/* Starts whatever is not running (bearerbox, fakesmsc, smsbox) and waits
 * until status.txt shows smsbox connected and the SMSC online (10 s
 * deadline, scaled under sanitizers). Returns 0, -ETIMEDOUT or -ECHILD (the
 * logs are printed to stderr), or another negative errno. */
int wf_test_kannel_start(struct wf_test_kannel *k);

/* Stops smsbox only (SIGTERM, then SIGKILL after 10 s), so sendsms is
 * refused while bearerbox and fakesmsc keep running. Returns 0. */
int wf_test_kannel_stop_smsbox(struct wf_test_kannel *k);

/* Stops fakesmsc only and waits until bearerbox no longer reports the SMSC
 * online (sendsms then answers "3: Queued for later delivery"). wf_test_kannel_start()
 * starts it again. Returns 0 or -ETIMEDOUT. */
int wf_test_kannel_stop_fakesmsc(struct wf_test_kannel *k);

/* Stops everything in the safe order. Returns 0. */
int wf_test_kannel_stop(struct wf_test_kannel *k);

/* Stops what runs, removes the directory, frees. NULL is fine; returns NULL. */
struct wf_test_kannel *wf_test_kannel_free(struct wf_test_kannel *k);

/* "http://127.0.0.1:<sendsms port>/cgi-bin/sendsms" (borrowed). */
const char *wf_test_kannel_sendsms_url(const struct wf_test_kannel *k);
const char *wf_test_kannel_username(const struct wf_test_kannel *k);
const char *wf_test_kannel_password(const struct wf_test_kannel *k);
const char *wf_test_kannel_dir(const struct wf_test_kannel *k);
int wf_test_kannel_admin_port(const struct wf_test_kannel *k);

/* status.txt from the admin port (malloc'd), or NULL. */
char *wf_test_kannel_status(const struct wf_test_kannel *k);

/* One message as fakesmsc printed it. */
struct wf_test_sms {
	char from[32], to[32];
	bool has_udh;
	unsigned char udh[16];
	size_t udh_len;
	bool ucs2;               /* "ucs-2", or "udh ... data" (UTF-16BE when we sent coding 2) */
	unsigned char *data;     /* decoded payload bytes (malloc'd) */
	size_t len;
};

/* Parses every "Got message" line of fakesmsc.log so far into *ret (an
 * array, free with wf_test_sms_free) and returns how many, or a negative
 * errno. */
long wf_test_kannel_received(const struct wf_test_kannel *k, struct wf_test_sms **ret);
void wf_test_sms_free(struct wf_test_sms *v, size_t n);

/* Counts "Got message" lines in fakesmsc.log (fast, no parsing). */
long wf_test_kannel_received_count(const struct wf_test_kannel *k);

#endif
