/* log: one line per message on stderr, in the form journald understands:
 *
 *	<3>group: message\n
 *	<6>2026-07-20T08:00:00.123Z group: message\n   (timestamps on)
 *
 * The <N> prefix is the syslog priority (LOG_ERR = 3 ... LOG_DEBUG = 7).
 * Each line is built in a bounded buffer and written with one write(), so
 * lines (at most WF_LOG_LINE_MAX bytes, below PIPE_BUF) from concurrent
 * writers do not interleave. Control characters and invalid UTF-8 in the
 * group and message are escaped (\n, \r, \t, \xHH), so data from an agency
 * feed cannot forge lines or confuse the journal; a message that does not
 * fit is cut at a character boundary and ends in WF_LOG_TRUNCATED.
 *
 * This module is the one place that prints: library code in common/ never
 * calls it (it returns error codes); services do.
 *
 * The settings (level, output, timestamps) are process-wide and meant to be
 * set once at start-up, before threads are started. wf_log() itself is
 * thread-safe and preserves errno. */
#ifndef WF_LOG_H
#define WF_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <syslog.h>

#include "wf/clock.h"

/* Longest line written, including the prefix and the newline. */
#define WF_LOG_LINE_MAX  2048
/* Marker that ends a truncated message. */
#define WF_LOG_TRUNCATED "...[truncated]"

#define WF_LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Logs FMT at PRIORITY (LOG_EMERG..LOG_DEBUG) for GROUP (a short component
 * tag such as "mqtt", or NULL for none), if PRIORITY is at or above the
 * threshold. Never fails (write errors are ignored). */
void wf_log(int priority, const char *group, const char *fmt, ...) WF_LOG_PRINTF(3, 4);
void wf_logv(int priority, const char *group, const char *fmt, va_list ap) WF_LOG_PRINTF(3, 0);

/* Threshold: messages with a priority value greater than LEVEL (less
 * severe) are dropped. Default LOG_INFO. Values are clamped to
 * LOG_EMERG..LOG_DEBUG. */
void wf_log_set_level(int level);
int wf_log_get_level(void);
/* True if a message at PRIORITY would be written. Can't fail. */
bool wf_log_enabled(int priority);

/* "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"
 * (also "error", "warn" and the digits 0-7). Returns 0 and sets
 * *ret_level, or -EINVAL. */
int wf_log_level_from_string(const char *text, int *ret_level);
/* The name of LEVEL, or "invalid". Can't fail. */
const char *wf_log_level_to_string(int level);

enum wf_log_timestamps {
	WF_LOG_TIMESTAMPS_AUTO, /* on unless the output is journald's stream (default) */
	WF_LOG_TIMESTAMPS_ON,
	WF_LOG_TIMESTAMPS_OFF,
	WF_LOG_TIMESTAMPS_MAX,
	WF_LOG_TIMESTAMPS_INVALID = -1,
};

/* AUTO decides by JOURNAL_STREAM: if it names the device and inode of the
 * output fd, journald adds its own timestamps and we add none. */
void wf_log_set_timestamps(enum wf_log_timestamps mode);

/* Writes to FD (default 2, stderr) and removes any sink. FD is borrowed. */
void wf_log_set_fd(int fd);

/* Sends each finished line (with prefix and trailing newline, LEN bytes,
 * not NUL-terminated in general) to SINK instead of the fd; LINE is valid
 * only during the call. SINK NULL restores the fd. For tests. */
void wf_log_set_sink(void (*sink)(void *ud, int priority, const char *line, size_t len), void *ud);

/* Buffering (default off): when on, lines at LOG_INFO and LOG_DEBUG are
 * kept in a WF_LOG_BUFFER-byte buffer and written together, whole lines in
 * order, when it is full, before any line at LOG_NOTICE or more severe
 * (written at once), and at wf_log_flush(); turning it off flushes. A
 * daemon flushes whenever its event loop is about to wait (services/runtime
 * does), so a line waits only while the process is busy, and a crash loses
 * at most the info lines of its last loop iteration. It saves one write()
 * per line (two lines per warning version in wf-dispatch). */
#define WF_LOG_BUFFER (64 * 1024)
void wf_log_set_buffered(bool on);
void wf_log_flush(void);

/* Clock for timestamps (NULL: the system clock). Borrowed until reset. */
void wf_log_set_clock(const struct wf_clock *clock);

/* Rate limit for messages that outside input can trigger in a loop.
 * Allows BURST messages per INTERVAL_MS window; further messages in the
 * window are counted, and the first message after the window has passed is
 * preceded by one "N messages suppressed" line. Set the two public fields
 * (WF_RATELIMIT_INIT) and leave the rest zero. Not thread-safe: one per
 * call site or per thread. */
struct wf_ratelimit {
	int64_t interval_ms;
	unsigned burst;
	/* private */
	int64_t begin_ms;
	unsigned printed;
	uint64_t suppressed;
	bool started;
};
#define WF_RATELIMIT_INIT(interval, n) { .interval_ms = (interval), .burst = (n) }

/* Decides whether a message at NOW_MS may pass RL. When a new window
 * starts and messages were suppressed in the previous one, sets
 * *ret_suppressed to their number (else 0). Can't fail. */
bool wf_ratelimit_test(struct wf_ratelimit *rl, int64_t now_ms, uint64_t *ret_suppressed);

/* wf_log() through RL, with time NOW_MS (use wf_clock_mono_ms()). Messages
 * below the threshold do not use up the burst. Writes
 * "<N>group: 17 messages suppressed (limit 10 per 1000 ms)" before the
 * first message of a new window when messages were dropped. */
void wf_log_ratelimited(struct wf_ratelimit *rl, int64_t now_ms, int priority, const char *group,
			const char *fmt, ...) WF_LOG_PRINTF(5, 6);

/* Writes the pending "N messages suppressed" line if RL's window has
 * passed at NOW_MS (for a periodic timer, so the count is not held back
 * until the next message). */
void wf_log_ratelimit_flush(struct wf_ratelimit *rl, int64_t now_ms, int priority, const char *group);

#endif
