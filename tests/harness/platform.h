/* platform: a broadcast platform for wf-dispatch's CAP POSTs ([cap]
 * post_url) in the soak and chaos harnesses. A thread on a free 127.0.0.1
 * port answers every POST 200 (503 to every FAIL_EVERY-th, so that the
 * dispatcher's retries happen; 400 when the body holds no CAP
 * <identifier>) and records the identifier of each POST it answered 200.
 * One connection at a time, "Connection: close". */
#ifndef WF_TEST_PLATFORM_H
#define WF_TEST_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

struct wf_test_platform;

/* Reads one HTTP request from FD into REQ (SIZE bytes, NUL-terminated):
 * the headers and the Content-Length body. Returns the body (inside REQ)
 * and its length in *LEN, or NULL when the connection ended first or the
 * request does not fit. For the harnesses' HTTP stand-ins. */
char *wf_test_http_read(int fd, char *req, size_t size, long *len);

/* Starts the thread (FAIL_EVERY 0: never 503). Dies on failure. */
struct wf_test_platform *wf_test_platform_start(unsigned fail_every);
int wf_test_platform_port(const struct wf_test_platform *p);

struct wf_test_platform_counts {
	uint64_t requests;  /* POSTs read */
	uint64_t refused;   /* answered 503 */
	uint64_t bad;       /* answered 400 (no identifier, or unreadable) */
	size_t ok;          /* answered 200 (the identifiers recorded) */
};
void wf_test_platform_counts(struct wf_test_platform *p, struct wf_test_platform_counts *ret);

/* Stops the thread; the identifiers answered 200, sorted, repeats kept,
 * are then *IDS (N of them; the caller frees each and the array). Frees P. */
void wf_test_platform_stop(struct wf_test_platform *p, char ***ids, size_t *n);

/* The CAP <identifier> of each *.xml file of DIR (not those starting with
 * '.'), sorted; the file name where a file has none. Returns how many
 * (-1: DIR unreadable); the caller frees each and *IDS. */
long wf_test_cap_identifiers(const char *dir, char ***ids);

#endif
