/* clock: injectable time. The engine never reads the system clock deep
 * inside; time is passed in, from a struct wf_clock that is either the real
 * clock or a manual one that tests and replays drive.
 *
 * All times are Unix epoch milliseconds (UTC) as int64_t, as on the wire. */
#ifndef WF_CLOCK_H
#define WF_CLOCK_H

#include <stdint.h>

struct wf_clock {
	/* Returns the current time in ms. Must not fail. */
	int64_t (*now)(void *ud);
	void *ud;
};

/* The system's CLOCK_REALTIME. This function can't fail. */
struct wf_clock wf_clock_system(void);

/* A manual clock reading *now_ms, which the caller owns and advances.
 * The pointer is borrowed for the lifetime of the returned clock. */
struct wf_clock wf_clock_manual(int64_t *now_ms);

/* The system clock shifted by *OFFSET_MS (caller-owned, borrowed): a
 * running clock that started at a chosen time, for daemons rehearsing a
 * past scenario (`--now TIME` in daemon mode). */
struct wf_clock wf_clock_shifted(const int64_t *offset_ms);

/* Current time of CLOCK (NULL means the system clock). */
int64_t wf_clock_now_ms(const struct wf_clock *clock);

/* CLOCK_MONOTONIC in ms, for measuring durations (timeouts, benchmarks),
 * never for timestamps on the wire. This function can't fail. */
int64_t wf_clock_mono_ms(void);

/* Formats MS as RFC 3339 UTC with milliseconds ("2026-11-23T08:00:00.000Z")
 * into BUF (at least 25 bytes). Returns BUF. */
char *wf_clock_format(int64_t ms, char *buf, unsigned long size);

/* Parses RFC 3339 / ISO 8601 with a 'T' or ' ' separator, optional
 * fraction and a 'Z' or ±hh:mm offset (e.g. "2026-07-20T08:00:00+08:00").
 * Returns 0 and sets *ret_ms, or -EINVAL (and leaves *ret_ms untouched). */
int wf_clock_parse(const char *text, int64_t *ret_ms);

#endif
