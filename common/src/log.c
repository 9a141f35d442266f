/* log: see wf/log.h and docs/service-runtime.md */
#include "wf/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define GROUP_MAX 64 /* source bytes of the group that are printed */

static int log_level = LOG_INFO;
static int log_fd = STDERR_FILENO;
static void (*log_sink)(void *ud, int priority, const char *line, size_t len);
static void *log_sink_ud;
static enum wf_log_timestamps log_ts_mode = WF_LOG_TIMESTAMPS_AUTO;
static int log_ts_auto = -1; /* AUTO's decision, -1 until made */
static const struct wf_clock *log_clock;

static const char *const level_names[] = {
	"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
};

static int clamp_level(int level)
{
	if (level < LOG_EMERG)
		return LOG_EMERG;
	if (level > LOG_DEBUG)
		return LOG_DEBUG;
	return level;
}

void wf_log_set_level(int level)
{
	log_level = clamp_level(level);
}

int wf_log_get_level(void)
{
	return log_level;
}

bool wf_log_enabled(int priority)
{
	return (priority & LOG_PRIMASK) <= log_level;
}

int wf_log_level_from_string(const char *text, int *ret_level)
{
	if (!text)
		return -EINVAL;
	for (int i = 0; i <= LOG_DEBUG; i++) {
		if (strcasecmp(text, level_names[i]) == 0) {
			*ret_level = i;
			return 0;
		}
	}
	if (strcasecmp(text, "error") == 0) {
		*ret_level = LOG_ERR;
		return 0;
	}
	if (strcasecmp(text, "warn") == 0) {
		*ret_level = LOG_WARNING;
		return 0;
	}
	if (text[0] >= '0' && text[0] <= '7' && text[1] == '\0') {
		*ret_level = text[0] - '0';
		return 0;
	}
	return -EINVAL;
}

const char *wf_log_level_to_string(int level)
{
	if (level < LOG_EMERG || level > LOG_DEBUG)
		return "invalid";
	return level_names[level];
}

void wf_log_set_timestamps(enum wf_log_timestamps mode)
{
	if (mode < 0 || mode >= WF_LOG_TIMESTAMPS_MAX)
		mode = WF_LOG_TIMESTAMPS_AUTO;
	log_ts_mode = mode;
	log_ts_auto = -1;
}

void wf_log_set_fd(int fd)
{
	log_fd = fd;
	log_sink = NULL;
	log_sink_ud = NULL;
	log_ts_auto = -1;
}

void wf_log_set_sink(void (*sink)(void *ud, int priority, const char *line, size_t len), void *ud)
{
	log_sink = sink;
	log_sink_ud = sink ? ud : NULL;
}

void wf_log_set_clock(const struct wf_clock *clock)
{
	log_clock = clock;
}

/* True if JOURNAL_STREAM names the output fd (see systemd.exec(5)). */
static bool output_is_journal(int fd)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(fd, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static bool want_timestamps(void)
{
	switch (log_ts_mode) {
	case WF_LOG_TIMESTAMPS_ON:
		return true;
	case WF_LOG_TIMESTAMPS_OFF:
		return false;
	default:
		if (log_ts_auto < 0)
			log_ts_auto = !output_is_journal(log_fd);
		return log_ts_auto;
	}
}

/* Length of the valid UTF-8 sequence at S (N bytes available), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)))
		return 0;
	if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))
		return 0;
	return len;
}

struct line {
	char buf[WF_LOG_LINE_MAX];
	size_t pos;
	size_t budget; /* bytes usable before the newline */
	size_t cut;    /* last unit boundary that leaves room for the marker */
	bool truncated;
};

static void put_raw(struct line *l, const char *s, size_t n)
{
	if (l->truncated)
		return;
	if (l->pos + n > l->budget) {
		l->truncated = true;
		return;
	}
	memcpy(l->buf + l->pos, s, n);
	l->pos += n;
	if (l->pos + strlen(WF_LOG_TRUNCATED) <= l->budget)
		l->cut = l->pos;
}

/* Appends the N printable ASCII bytes of S as N units of one byte each
 * (what N put_raw calls would do, in one copy). */
static void put_ascii(struct line *l, const char *s, size_t n)
{
	if (l->truncated)
		return;
	size_t p0 = l->pos, take = l->budget - l->pos;
	if (take > n)
		take = n;
	memcpy(l->buf + l->pos, s, take);
	l->pos += take;
	size_t mark = strlen(WF_LOG_TRUNCATED);
	if (l->pos + mark <= l->budget)
		l->cut = l->pos;
	else if (l->budget >= mark && l->budget - mark > p0)
		l->cut = l->budget - mark;
	if (take < n)
		l->truncated = true;
}

/* Appends N bytes of S, escaping control characters and invalid UTF-8. */
static void put_escaped(struct line *l, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	char esc[8];
	size_t i = 0;
	while (i < n && !l->truncated) {
		unsigned char c = u[i];
		if (c >= 0x20 && c < 0x7F) { /* a run of printable ASCII: one copy */
			size_t j = i + 1;
			while (j < n && u[j] >= 0x20 && u[j] < 0x7F)
				j++;
			put_ascii(l, s + i, j - i);
			i = j;
			continue;
		}
		size_t len = utf8_seq(u + i, n - i);
		if (c == '\n') {
			put_raw(l, "\\n", 2);
		} else if (c == '\r') {
			put_raw(l, "\\r", 2);
		} else if (c == '\t') {
			put_raw(l, "\\t", 2);
		} else if (c < 0x20 || c == 0x7F || len == 0) {
			snprintf(esc, sizeof esc, "\\x%02x", c);
			put_raw(l, esc, 4);
		} else {
			put_raw(l, s + i, len);
			i += len;
			continue;
		}
		i++;
	}
}

static void write_all(const char *buf, size_t len)
{
	size_t off = 0;
	for (int tries = 0; off < len && tries < 8; tries++) {
		ssize_t w = write(log_fd, buf + off, len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		off += (size_t)w;
	}
}

/* wf_log_set_buffered: info and debug lines wait here, whole lines only */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static bool log_buffered;
static char log_buf[WF_LOG_BUFFER];
static size_t log_buf_len;

static void flush_locked(void)
{
	if (log_buf_len > 0)
		write_all(log_buf, log_buf_len);
	log_buf_len = 0;
}

static void output(int priority, const char *buf, size_t len)
{
	if (log_sink) {
		log_sink(log_sink_ud, priority, buf, len);
		return;
	}
	pthread_mutex_lock(&log_mu); /* (log_buffered may change while a worker logs) */
	if (!log_buffered || priority <= LOG_NOTICE || len > sizeof log_buf) {
		/* what matters goes at once, after what waits (in order) */
		flush_locked();
		write_all(buf, len);
	} else {
		if (log_buf_len + len > sizeof log_buf)
			flush_locked();
		memcpy(log_buf + log_buf_len, buf, len);
		log_buf_len += len;
	}
	pthread_mutex_unlock(&log_mu);
}

void wf_log_set_buffered(bool on)
{
	static bool at_exit;

	if (on && !at_exit)
		at_exit = atexit(wf_log_flush) == 0; /* exit() from anywhere flushes */
	pthread_mutex_lock(&log_mu);
	if (!on)
		flush_locked();
	log_buffered = on;
	pthread_mutex_unlock(&log_mu);
}

void wf_log_flush(void)
{
	pthread_mutex_lock(&log_mu);
	flush_locked();
	pthread_mutex_unlock(&log_mu);
}

/* wf_clock_format of MS, the date and time of its second formatted once
 * (per thread) and only the milliseconds written for each line. */
static void format_ts(int64_t ms, char *buf, size_t size)
{
	static _Thread_local int64_t cached_sec = INT64_MIN;
	static _Thread_local char cached[40];
	int64_t sec = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
	int frac = (int)(ms - sec * 1000);
	if (sec != cached_sec) {
		wf_clock_format(sec * 1000, cached, sizeof cached);
		cached_sec = sec;
	}
	/* "YYYY-MM-DDTHH:MM:SS.mmmZ"; anything else is formatted whole */
	if (size <= 24 || strlen(cached) != 24 || cached[19] != '.') {
		wf_clock_format(ms, buf, size);
		return;
	}
	memcpy(buf, cached, 25);
	buf[20] = (char)('0' + frac / 100);
	buf[21] = (char)('0' + frac / 10 % 10);
	buf[22] = (char)('0' + frac % 10);
}

void wf_logv(int priority, const char *group, const char *fmt, va_list ap)
{
	int saved_errno = errno;
	char msg[WF_LOG_LINE_MAX];
	struct line l;

	priority &= LOG_PRIMASK;
	if (priority > log_level)
		return;

	int m = 0;
	if (fmt != NULL)
		m = vsnprintf(msg, sizeof msg, fmt, ap);
	else
		msg[0] = '\0';
	size_t msglen = m < 0 ? 0 : (size_t)m;
	bool msg_cut = msglen >= sizeof msg;
	if (msg_cut)
		msglen = sizeof msg - 1;

	l.pos = 0;
	l.cut = 0;
	l.budget = sizeof l.buf - 1;
	l.truncated = false;

	char head[64];
	int h = snprintf(head, sizeof head, "<%d>", priority);
	put_raw(&l, head, (size_t)h);
	if (want_timestamps()) {
		char ts[40];
		format_ts(wf_clock_now_ms(log_clock), ts, sizeof ts);
		put_raw(&l, ts, strlen(ts));
		put_raw(&l, " ", 1);
	}
	if (group && *group) {
		put_escaped(&l, group, strnlen(group, GROUP_MAX));
		put_raw(&l, ": ", 2);
	}
	put_escaped(&l, msg, msglen);
	if (l.truncated || msg_cut) {
		if (l.pos > l.cut)
			l.pos = l.cut;
		memcpy(l.buf + l.pos, WF_LOG_TRUNCATED, strlen(WF_LOG_TRUNCATED));
		l.pos += strlen(WF_LOG_TRUNCATED);
	}
	l.buf[l.pos++] = '\n';
	output(priority, l.buf, l.pos);
	errno = saved_errno;
}

void wf_log(int priority, const char *group, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	wf_logv(priority, group, fmt, ap);
	va_end(ap);
}

bool wf_ratelimit_test(struct wf_ratelimit *rl, int64_t now_ms, uint64_t *ret_suppressed)
{
	if (ret_suppressed)
		*ret_suppressed = 0;
	if (!rl || rl->interval_ms <= 0)
		return true;
	if (!rl->started || now_ms < rl->begin_ms || now_ms - rl->begin_ms >= rl->interval_ms) {
		if (ret_suppressed)
			*ret_suppressed = rl->suppressed;
		rl->begin_ms = now_ms;
		rl->printed = 0;
		rl->suppressed = 0;
		rl->started = true;
	}
	if (rl->printed < rl->burst) {
		rl->printed++;
		return true;
	}
	rl->suppressed++;
	return false;
}

static void log_suppressed(const struct wf_ratelimit *rl, uint64_t n, int priority,
			   const char *group)
{
	wf_log(priority, group, "%llu message%s suppressed (limit %u per %lld ms)",
	       (unsigned long long)n, n == 1 ? "" : "s", rl->burst, (long long)rl->interval_ms);
}

void wf_log_ratelimited(struct wf_ratelimit *rl, int64_t now_ms, int priority, const char *group,
			const char *fmt, ...)
{
	uint64_t suppressed;
	if (!wf_log_enabled(priority))
		return;
	bool pass = wf_ratelimit_test(rl, now_ms, &suppressed);
	if (suppressed)
		log_suppressed(rl, suppressed, priority, group);
	if (!pass)
		return;
	va_list ap;
	va_start(ap, fmt);
	wf_logv(priority, group, fmt, ap);
	va_end(ap);
}

void wf_log_ratelimit_flush(struct wf_ratelimit *rl, int64_t now_ms, int priority, const char *group)
{
	if (!rl || !rl->started || rl->suppressed == 0 || rl->interval_ms <= 0)
		return;
	if (now_ms >= rl->begin_ms && now_ms - rl->begin_ms < rl->interval_ms)
		return;
	uint64_t n = rl->suppressed;
	rl->begin_ms = now_ms;
	rl->printed = 0;
	rl->suppressed = 0;
	log_suppressed(rl, n, priority, group);
}
