/* Unit tests for common/src/log.c */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wf/log.h"

#define MAX_LINES 64

static char lines[MAX_LINES][WF_LOG_LINE_MAX + 1];
static size_t line_len[MAX_LINES];
static int line_prio[MAX_LINES];
static int nlines;

static void sink(void *ud, int priority, const char *line, size_t len)
{
	int *calls = ud;
	(*calls)++;
	ck_assert_int_lt(nlines, MAX_LINES);
	ck_assert_uint_le(len, WF_LOG_LINE_MAX);
	memcpy(lines[nlines], line, len);
	lines[nlines][len] = '\0';
	line_len[nlines] = len;
	line_prio[nlines] = priority;
	nlines++;
}

static int sink_calls;

static void setup(void)
{
	nlines = 0;
	sink_calls = 0;
	wf_log_set_level(LOG_INFO);
	wf_log_set_timestamps(WF_LOG_TIMESTAMPS_OFF);
	wf_log_set_sink(sink, &sink_calls);
}

static void teardown(void)
{
	wf_log_set_sink(NULL, NULL);
	wf_log_set_clock(NULL);
}

START_TEST(test_prefix_format)
{
	wf_log(LOG_ERR, "mqtt", "connect failed: %s (%d)", "refused", 111);
	wf_log(LOG_INFO, NULL, "no group");
	wf_log(LOG_DAEMON | LOG_WARNING, "fusion", "facility bits are dropped");
	wf_log(LOG_NOTICE, "", "empty group");
	ck_assert_int_eq(nlines, 4);
	ck_assert_int_eq(sink_calls, 4);
	ck_assert_str_eq(lines[0], "<3>mqtt: connect failed: refused (111)\n");
	ck_assert_int_eq(line_prio[0], LOG_ERR);
	ck_assert_str_eq(lines[1], "<6>no group\n");
	ck_assert_str_eq(lines[2], "<4>fusion: facility bits are dropped\n");
	ck_assert_int_eq(line_prio[2], LOG_WARNING);
	ck_assert_str_eq(lines[3], "<5>empty group\n");
}
END_TEST

START_TEST(test_threshold)
{
	ck_assert_int_eq(wf_log_get_level(), LOG_INFO);
	wf_log(LOG_DEBUG, "g", "dropped at info");
	wf_log(LOG_INFO, "g", "kept");
	ck_assert_int_eq(nlines, 1);
	ck_assert(!wf_log_enabled(LOG_DEBUG));
	ck_assert(wf_log_enabled(LOG_INFO));

	wf_log_set_level(LOG_WARNING);
	wf_log(LOG_NOTICE, "g", "dropped");
	wf_log(LOG_INFO, "g", "dropped");
	wf_log(LOG_WARNING, "g", "kept warning");
	wf_log(LOG_CRIT, "g", "kept crit");
	ck_assert_int_eq(nlines, 3);
	ck_assert_str_eq(lines[1], "<4>g: kept warning\n");
	ck_assert_str_eq(lines[2], "<2>g: kept crit\n");

	wf_log_set_level(99);
	ck_assert_int_eq(wf_log_get_level(), LOG_DEBUG);
	wf_log(LOG_DEBUG, "g", "now kept");
	ck_assert_int_eq(nlines, 4);
	wf_log_set_level(-3);
	ck_assert_int_eq(wf_log_get_level(), LOG_EMERG);

	int lvl = -1;
	ck_assert_int_eq(wf_log_level_from_string("warning", &lvl), 0);
	ck_assert_int_eq(lvl, LOG_WARNING);
	ck_assert_int_eq(wf_log_level_from_string("DEBUG", &lvl), 0);
	ck_assert_int_eq(lvl, LOG_DEBUG);
	ck_assert_int_eq(wf_log_level_from_string("error", &lvl), 0);
	ck_assert_int_eq(lvl, LOG_ERR);
	ck_assert_int_eq(wf_log_level_from_string("5", &lvl), 0);
	ck_assert_int_eq(lvl, LOG_NOTICE);
	lvl = 42;
	ck_assert_int_eq(wf_log_level_from_string("verbose", &lvl), -EINVAL);
	ck_assert_int_eq(wf_log_level_from_string("8", &lvl), -EINVAL);
	ck_assert_int_eq(wf_log_level_from_string(NULL, &lvl), -EINVAL);
	ck_assert_int_eq(lvl, 42);
	ck_assert_str_eq(wf_log_level_to_string(LOG_ERR), "err");
	ck_assert_str_eq(wf_log_level_to_string(8), "invalid");
}
END_TEST

START_TEST(test_escaping)
{
	wf_log(LOG_WARNING, "feed", "a\nb\tc\rd\x1b[31m\x7f" "e");
	ck_assert_str_eq(lines[0], "<4>feed: a\\nb\\tc\\rd\\x1b[31m\\x7fe\n");
	/* a forged journald line cannot start mid-message */
	wf_log(LOG_INFO, "feed", "ok\n<0>forged: emergency");
	ck_assert_str_eq(lines[1], "<6>feed: ok\\n<0>forged: emergency\n");
	/* valid UTF-8 passes, invalid bytes are escaped one by one */
	wf_log(LOG_INFO, "geo", "北京 \xff\xc3( \xc0\xaf \xed\xa0\x80 \xe4\xb8");
	ck_assert_str_eq(lines[2],
			 "<6>geo: 北京 \\xff\\xc3( \\xc0\\xaf \\xed\\xa0\\x80 \\xe4\\xb8\n");
	/* the group is escaped too */
	wf_log(LOG_INFO, "g\nx", "m");
	ck_assert_str_eq(lines[3], "<6>g\\nx: m\n");
	ck_assert_int_eq(nlines, 4);
	for (int i = 0; i < nlines; i++)
		ck_assert_ptr_eq(memchr(lines[i], '\n', line_len[i]), lines[i] + line_len[i] - 1);
}
END_TEST

static size_t marker_len(void)
{
	return strlen(WF_LOG_TRUNCATED);
}

static bool ends_with_marker(int i)
{
	size_t ml = marker_len();
	return line_len[i] >= ml + 1 &&
	       memcmp(lines[i] + line_len[i] - 1 - ml, WF_LOG_TRUNCATED, ml) == 0;
}

START_TEST(test_truncation)
{
	static char big[3 * WF_LOG_LINE_MAX];
	const size_t prefix = strlen("<6>g: ");

	/* exactly fits: no marker */
	size_t fit = WF_LOG_LINE_MAX - 1 - prefix;
	memset(big, 'a', fit);
	big[fit] = '\0';
	wf_log(LOG_INFO, "g", "%s", big);
	ck_assert_uint_eq(line_len[0], WF_LOG_LINE_MAX);
	ck_assert(!ends_with_marker(0));

	/* one more byte: cut, with the marker, still within the limit */
	big[fit] = 'a';
	big[fit + 1] = '\0';
	wf_log(LOG_INFO, "g", "%s", big);
	ck_assert_uint_eq(line_len[1], WF_LOG_LINE_MAX);
	ck_assert(ends_with_marker(1));
	ck_assert_int_eq(lines[1][line_len[1] - 1], '\n');

	/* much longer than the raw buffer */
	memset(big, 'b', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	wf_log(LOG_INFO, "g", "%s", big);
	ck_assert_uint_eq(line_len[2], WF_LOG_LINE_MAX);
	ck_assert(ends_with_marker(2));

	/* multi-byte characters are not split: the kept part is whole characters */
	big[0] = '\0';
	for (size_t i = 0; i < 1000; i++)
		strcat(big, "警");
	wf_log(LOG_INFO, "g", "%s", big);
	ck_assert(ends_with_marker(3));
	size_t kept = line_len[3] - 1 - marker_len() - prefix;
	ck_assert_uint_eq(kept % 3, 0);
	ck_assert_int_eq(memcmp(lines[3] + prefix + kept - 3, "警", 3), 0);

	/* a cut inside a run of ASCII (copied in one piece) still keeps every
	 * byte that fits before the marker */
	strcpy(big, "警");
	memset(big + 3, 'c', 2 * WF_LOG_LINE_MAX);
	big[3 + 2 * WF_LOG_LINE_MAX] = '\0';
	wf_log(LOG_INFO, "g", "%s", big);
	ck_assert(ends_with_marker(4));
	ck_assert_uint_eq(line_len[4], WF_LOG_LINE_MAX);
	ck_assert_int_eq(lines[4][line_len[4] - 2 - marker_len()], 'c');

	/* escapes are not split either */
	memset(big, '\n', 2000);
	big[2000] = '\0';
	wf_log(LOG_INFO, "g", "%s", big);
	ck_assert(ends_with_marker(5));
	kept = line_len[5] - 1 - marker_len() - prefix;
	ck_assert_uint_eq(kept % 2, 0);
	ck_assert_int_eq(lines[5][prefix + kept - 2], '\\');
	ck_assert_int_eq(lines[5][prefix + kept - 1], 'n');
	ck_assert_uint_gt(kept, WF_LOG_LINE_MAX - 40);
}
END_TEST

START_TEST(test_timestamps)
{
	int64_t now = 1626768000500;
	struct wf_clock clock = wf_clock_manual(&now);
	wf_log_set_clock(&clock);
	wf_log_set_timestamps(WF_LOG_TIMESTAMPS_ON);
	wf_log(LOG_INFO, "g", "stamped");
	ck_assert_str_eq(lines[0], "<6>2021-07-20T08:00:00.500Z g: stamped\n");
	/* the second is formatted once: each line still gets its own time */
	char want[80];
	const int64_t at[] = { 1626768000007, 1626768000999, 1626768001000, 1626768000500,
			       1626771599999, -1, 0 };
	for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
		char ts[40];
		now = at[i];
		wf_log(LOG_INFO, "g", "stamped");
		snprintf(want, sizeof want, "<6>%s g: stamped\n", wf_clock_format(now, ts, sizeof ts));
		ck_assert_str_eq(lines[nlines - 1], want);
	}
	ck_assert_str_eq(lines[nlines - 3], "<6>2021-07-20T08:59:59.999Z g: stamped\n");
	ck_assert_str_eq(lines[nlines - 2], "<6>1969-12-31T23:59:59.999Z g: stamped\n");
	now = 1626768000500;
	nlines = 1; /* the lines below count from 1 */

	/* AUTO: no timestamps when the output fd is the one JOURNAL_STREAM names */
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	struct stat st;
	ck_assert_int_eq(fstat(p[1], &st), 0);
	char env[64];
	snprintf(env, sizeof env, "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);

	wf_log_set_fd(p[1]);
	wf_log_set_sink(sink, &sink_calls);
	wf_log_set_timestamps(WF_LOG_TIMESTAMPS_AUTO);
	ck_assert_int_eq(setenv("JOURNAL_STREAM", env, 1), 0);
	wf_log(LOG_INFO, "g", "journal");
	ck_assert_str_eq(lines[1], "<6>g: journal\n");

	/* JOURNAL_STREAM inherited but naming another file: stamped */
	ck_assert_int_eq(setenv("JOURNAL_STREAM", "1:2", 1), 0);
	wf_log_set_timestamps(WF_LOG_TIMESTAMPS_AUTO);
	wf_log(LOG_INFO, "g", "not journal");
	ck_assert_str_eq(lines[2], "<6>2021-07-20T08:00:00.500Z g: not journal\n");

	ck_assert_int_eq(unsetenv("JOURNAL_STREAM"), 0);
	wf_log_set_timestamps(WF_LOG_TIMESTAMPS_AUTO);
	wf_log(LOG_INFO, "g", "terminal");
	ck_assert_str_eq(lines[3], "<6>2021-07-20T08:00:00.500Z g: terminal\n");

	wf_log_set_timestamps(WF_LOG_TIMESTAMPS_OFF);
	wf_log(LOG_INFO, "g", "off");
	ck_assert_str_eq(lines[4], "<6>g: off\n");
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(test_fd_output)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	wf_log_set_fd(p[1]); /* removes the sink */
	errno = EBADMSG;
	wf_log(LOG_ERR, "store", "commit failed: %s", "MDB_MAP_FULL");
	ck_assert_int_eq(errno, EBADMSG); /* preserved */
	wf_log(LOG_DEBUG, "store", "dropped");
	wf_log(LOG_INFO, "store", "second");
	ck_assert_int_eq(nlines, 0);
	char buf[256];
	ssize_t n = read(p[0], buf, sizeof buf - 1);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "<3>store: commit failed: MDB_MAP_FULL\n<6>store: second\n");
	close(p[0]);
	close(p[1]);
	wf_log_set_fd(STDERR_FILENO);
}
END_TEST

/* what the pipe holds now ("" when nothing: it is non-blocking) */
static char *drain(int fd)
{
	static char buf[4096];
	ssize_t n = read(fd, buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

/* Buffered: info lines wait (in order) until a notice or worse, a flush,
 * or buffering off; nothing is lost or reordered. */
START_TEST(test_buffered)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	/* room for all of it: the writer is this thread */
	ck_assert_int_ge(fcntl(p[1], F_SETPIPE_SZ, 1 << 20), 4 * WF_LOG_BUFFER);
	wf_log_set_fd(p[1]);
	wf_log_set_timestamps(WF_LOG_TIMESTAMPS_OFF);
	wf_log_set_buffered(true);
	wf_log(LOG_INFO, "a", "one");
	wf_log(LOG_DEBUG, "a", "below the threshold");
	wf_log(LOG_INFO, "a", "two");
	ck_assert_str_eq(drain(p[0]), "");
	wf_log(LOG_WARNING, "a", "three");
	ck_assert_str_eq(drain(p[0]), "<6>a: one\n<6>a: two\n<4>a: three\n");
	wf_log(LOG_INFO, "a", "four");
	ck_assert_str_eq(drain(p[0]), "");
	wf_log_flush();
	ck_assert_str_eq(drain(p[0]), "<6>a: four\n");
	wf_log_flush(); /* nothing waits: nothing written */
	ck_assert_str_eq(drain(p[0]), "");
	/* a full buffer goes out whole lines at a time */
	char msg[200];
	memset(msg, 'x', sizeof msg - 1);
	msg[sizeof msg - 1] = '\0';
	size_t nl = 0, total = 0;
	for (int i = 0; i < WF_LOG_BUFFER / 100; i++)
		wf_log(LOG_INFO, "a", "%s", msg);
	for (;;) {
		char *d = drain(p[0]);
		if (!*d)
			break;
		total += strlen(d);
		for (char *c = d; *c; c++)
			nl += *c == '\n';
	}
	ck_assert_uint_gt(total, 0); /* some went when it filled */
	ck_assert_uint_eq(total % (strlen(msg) + 7), 0); /* "<6>a: " + msg + "\n" */
	wf_log_set_buffered(false); /* flushes the rest */
	for (;;) {
		char *d = drain(p[0]);
		if (!*d)
			break;
		for (char *c = d; *c; c++)
			nl += *c == '\n';
	}
	ck_assert_uint_eq(nl, WF_LOG_BUFFER / 100);
	wf_log(LOG_INFO, "a", "unbuffered");
	ck_assert_str_eq(drain(p[0]), "<6>a: unbuffered\n");
	close(p[0]);
	close(p[1]);
	wf_log_set_fd(STDERR_FILENO);
	wf_log_set_timestamps(WF_LOG_TIMESTAMPS_AUTO);
}
END_TEST

START_TEST(test_ratelimit)
{
	struct wf_ratelimit rl = WF_RATELIMIT_INIT(1000, 3);
	int64_t t = 5000;

	/* burst: 3 pass, 4 more in the same window are suppressed */
	for (int i = 0; i < 7; i++)
		wf_log_ratelimited(&rl, t + i * 100, LOG_WARNING, "feed", "bad record %d", i);
	ck_assert_int_eq(nlines, 3);
	ck_assert_str_eq(lines[0], "<4>feed: bad record 0\n");
	ck_assert_str_eq(lines[2], "<4>feed: bad record 2\n");

	/* the window rolls over at begin + interval: summary once, then the message */
	wf_log_ratelimited(&rl, t + 999, LOG_WARNING, "feed", "still suppressed");
	ck_assert_int_eq(nlines, 3);
	wf_log_ratelimited(&rl, t + 1000, LOG_WARNING, "feed", "bad record 8");
	ck_assert_int_eq(nlines, 5);
	ck_assert_str_eq(lines[3], "<4>feed: 5 messages suppressed (limit 3 per 1000 ms)\n");
	ck_assert_str_eq(lines[4], "<4>feed: bad record 8\n");
	wf_log_ratelimited(&rl, t + 1001, LOG_WARNING, "feed", "bad record 9");
	ck_assert_int_eq(nlines, 6);

	/* below the threshold: nothing logged and the burst is not used up */
	wf_log_ratelimited(&rl, t + 1002, LOG_DEBUG, "feed", "debug");
	wf_log_ratelimited(&rl, t + 1003, LOG_DEBUG, "feed", "debug");
	wf_log_ratelimited(&rl, t + 1004, LOG_WARNING, "feed", "bad record 10");
	ck_assert_int_eq(nlines, 7);
	ck_assert_str_eq(lines[6], "<4>feed: bad record 10\n");
	wf_log_ratelimited(&rl, t + 1005, LOG_WARNING, "feed", "suppressed");

	/* flush: nothing before the window has passed, one summary after */
	wf_log_ratelimit_flush(&rl, t + 1500, LOG_WARNING, "feed");
	ck_assert_int_eq(nlines, 7);
	wf_log_ratelimit_flush(&rl, t + 2000, LOG_WARNING, "feed");
	ck_assert_int_eq(nlines, 8);
	ck_assert_str_eq(lines[7], "<4>feed: 1 message suppressed (limit 3 per 1000 ms)\n");
	wf_log_ratelimit_flush(&rl, t + 9000, LOG_WARNING, "feed");
	ck_assert_int_eq(nlines, 8);

	/* a quiet window produces no summary */
	wf_log_ratelimited(&rl, t + 20000, LOG_WARNING, "feed", "after quiet");
	ck_assert_int_eq(nlines, 9);
	ck_assert_str_eq(lines[8], "<4>feed: after quiet\n");
}
END_TEST

START_TEST(test_ratelimit_test)
{
	struct wf_ratelimit rl = WF_RATELIMIT_INIT(100, 2);
	uint64_t s = 99;
	ck_assert(wf_ratelimit_test(&rl, 0, &s));
	ck_assert_uint_eq(s, 0);
	ck_assert(wf_ratelimit_test(&rl, 1, &s));
	ck_assert(!wf_ratelimit_test(&rl, 2, &s));
	ck_assert(!wf_ratelimit_test(&rl, 99, &s));
	ck_assert_uint_eq(s, 0);
	ck_assert(wf_ratelimit_test(&rl, 100, &s));
	ck_assert_uint_eq(s, 2);
	/* time going backwards starts a new window */
	ck_assert(wf_ratelimit_test(&rl, 101, &s));
	ck_assert(!wf_ratelimit_test(&rl, 102, &s));
	ck_assert(wf_ratelimit_test(&rl, 50, &s));
	ck_assert_uint_eq(s, 1);
	/* interval 0: no limit */
	struct wf_ratelimit none = WF_RATELIMIT_INIT(0, 0);
	for (int i = 0; i < 100; i++)
		ck_assert(wf_ratelimit_test(&none, 0, NULL));
	/* burst 0: everything suppressed, counted */
	struct wf_ratelimit zero = WF_RATELIMIT_INIT(10, 0);
	ck_assert(!wf_ratelimit_test(&zero, 0, &s));
	ck_assert(!wf_ratelimit_test(&zero, 1, &s));
	ck_assert(!wf_ratelimit_test(&zero, 10, &s));
	ck_assert_uint_eq(s, 2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_prefix_format);
	tcase_add_test(tc, test_threshold);
	tcase_add_test(tc, test_escaping);
	tcase_add_test(tc, test_truncation);
	tcase_add_test(tc, test_timestamps);
	tcase_add_test(tc, test_fd_output);
	tcase_add_test(tc, test_buffered);
	tcase_add_test(tc, test_ratelimit);
	tcase_add_test(tc, test_ratelimit_test);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
