/* Unit tests for services/dispatch/sms/sms-util.c: UCS-2 sizing and
 * segmenting, Kannel cut padding, subscriber file, token bucket, backoff. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sms-util.h"

#define ZH "\xe4\xb8\xad"          /* 中 U+4E2D, 1 unit */
#define EMOJI "\xf0\x9f\x98\x80"   /* 😀 U+1F600, 2 units (D83D DE00) */

static char *repeat(const char *s, unsigned n, const char *tail)
{
	size_t l = strlen(s), tl = tail ? strlen(tail) : 0;
	char *out = malloc(l * n + tl + 1);
	ck_assert_ptr_nonnull(out);
	for (unsigned i = 0; i < n; i++)
		memcpy(out + i * l, s, l);
	if (tl)
		memcpy(out + l * n, tail, tl);
	out[l * n + tl] = '\0';
	return out;
}

static long units_of(const char *s)
{
	return wf_sms_utf16_units(s, strlen(s), NULL);
}

START_TEST(test_units_ascii_cjk_emoji)
{
	unsigned char u[16];
	ck_assert_int_eq(wf_sms_utf16_units("Hi", 2, u), 2);
	ck_assert_int_eq(u[0], 0);
	ck_assert_int_eq(u[1], 'H');
	ck_assert_int_eq(wf_sms_utf16_units(ZH, 3, u), 1);
	ck_assert_int_eq(u[0], 0x4e);
	ck_assert_int_eq(u[1], 0x2d);
	/* a character outside the BMP is a surrogate pair: 2 units */
	ck_assert_int_eq(wf_sms_utf16_units(EMOJI, 4, u), 2);
	ck_assert_int_eq(u[0], 0xd8);
	ck_assert_int_eq(u[1], 0x3d);
	ck_assert_int_eq(u[2], 0xde);
	ck_assert_int_eq(u[3], 0x00);
	ck_assert_int_eq(wf_sms_utf16_units("", 0, NULL), 0);
}
END_TEST

START_TEST(test_units_invalid_utf8)
{
	ck_assert_int_eq(wf_sms_utf16_units("\xc0\x80", 2, NULL), -EINVAL);          /* overlong NUL */
	ck_assert_int_eq(wf_sms_utf16_units("\xe0\x80\xaf", 3, NULL), -EINVAL);      /* overlong / */
	ck_assert_int_eq(wf_sms_utf16_units("\xed\xa0\x80", 3, NULL), -EINVAL);      /* surrogate */
	ck_assert_int_eq(wf_sms_utf16_units("\xf4\x90\x80\x80", 4, NULL), -EINVAL);  /* > U+10FFFF */
	ck_assert_int_eq(wf_sms_utf16_units("\xf5\x80\x80\x80", 4, NULL), -EINVAL);
	ck_assert_int_eq(wf_sms_utf16_units("\xe4\xb8", 2, NULL), -EINVAL);          /* truncated */
	ck_assert_int_eq(wf_sms_utf16_units("\x80", 1, NULL), -EINVAL);              /* stray continuation */
	ck_assert_int_eq(wf_sms_utf16_units("a\0b", 3, NULL), -EINVAL);              /* embedded NUL */
}
END_TEST

START_TEST(test_parts_boundaries)
{
	ck_assert_uint_eq(wf_sms_parts_for_units(0), 1);
	ck_assert_uint_eq(wf_sms_parts_for_units(70), 1);
	ck_assert_uint_eq(wf_sms_parts_for_units(71), 2);
	ck_assert_uint_eq(wf_sms_parts_for_units(67 * 2), 2);
	ck_assert_uint_eq(wf_sms_parts_for_units(67 * 2 + 1), 3);
	ck_assert_uint_eq(wf_sms_parts_for_units(67 * 6), 6);
	ck_assert_uint_eq(wf_sms_parts_for_units(67 * 6 + 1), 7);

	/* through the text: 70 and 71 Chinese characters, 67*2 and 67*2+1 */
	unsigned counts[] = { 70, 71, 134, 135 }, want[] = { 1, 2, 2, 3 };
	for (int i = 0; i < 4; i++) {
		char *t = repeat(ZH, counts[i], NULL);
		long u = units_of(t);
		ck_assert_int_eq(u, counts[i]);
		ck_assert_uint_eq(wf_sms_parts_for_units((size_t)u), want[i]);
		free(t);
	}
	/* emoji count twice: 35 of them fill one SMS, 36 need two */
	char *e35 = repeat(EMOJI, 35, NULL), *e36 = repeat(EMOJI, 36, NULL);
	ck_assert_int_eq(units_of(e35), 70);
	ck_assert_uint_eq(wf_sms_parts_for_units(70), 1);
	ck_assert_int_eq(units_of(e36), 72);
	ck_assert_uint_eq(wf_sms_parts_for_units(72), 2);
	free(e35);
	free(e36);
}
END_TEST

static int segment_text(const char *t, size_t *starts, unsigned max, size_t *ret_units)
{
	unsigned char *u = malloc(strlen(t) * 2 + 2);
	long n = wf_sms_utf16_units(t, strlen(t), u);
	ck_assert_int_ge(n, 0);
	int parts = wf_sms_segment(u, (size_t)n, starts, max);
	free(u);
	*ret_units = (size_t)n;
	return parts;
}

START_TEST(test_segment_starts)
{
	size_t st[8], units;
	char *t70 = repeat(ZH, 70, NULL), *t71 = repeat(ZH, 71, NULL);
	char *t134 = repeat(ZH, 134, NULL), *t135 = repeat(ZH, 135, NULL);
	ck_assert_int_eq(segment_text(t70, st, 8, &units), 1);
	ck_assert_uint_eq(st[0], 0);
	ck_assert_int_eq(segment_text(t71, st, 8, &units), 2);
	ck_assert_uint_eq(st[1], 67);
	ck_assert_int_eq(segment_text(t134, st, 8, &units), 2);
	ck_assert_uint_eq(st[1], 67);
	ck_assert_int_eq(segment_text(t135, st, 8, &units), 3);
	ck_assert_uint_eq(st[2], 134);
	ck_assert_int_eq(segment_text(t135, st, 2, &units), -E2BIG);
	free(t70);
	free(t71);
	free(t134);
	free(t135);

	/* a surrogate pair at units 66-67 stays together: part 1 carries 66 */
	char *t = repeat(ZH, 66, EMOJI ZH ZH ZH ZH ZH ZH ZH ZH ZH ZH);
	ck_assert_int_eq(segment_text(t, st, 8, &units), 2);
	ck_assert_uint_eq(units, 78);
	ck_assert_uint_eq(st[1], 66);
	free(t);
	/* one unit earlier the pair fits (units 65-66): normal cut at 67 */
	t = repeat(ZH, 65, EMOJI ZH ZH ZH ZH ZH ZH ZH ZH ZH ZH);
	ck_assert_int_eq(segment_text(t, st, 8, &units), 2);
	ck_assert_uint_eq(st[1], 67);
	free(t);
}
END_TEST

START_TEST(test_prepare_text_pads_straddling_pair)
{
	char *out;
	size_t units;
	/* 66 + emoji + 10: Kannel would cut the pair at 67; a space moves it */
	char *t = repeat(ZH, 66, EMOJI ZH ZH ZH ZH ZH ZH ZH ZH ZH ZH);
	ck_assert_int_eq(wf_sms_prepare_text(t, strlen(t), &out, &units), 0);
	ck_assert_uint_eq(units, 79);
	unsigned char u[200];
	ck_assert_int_eq(wf_sms_utf16_units(out, strlen(out), u), 79);
	ck_assert_int_eq(u[2 * 66], 0x00);
	ck_assert_int_eq(u[2 * 66 + 1], ' ');
	ck_assert_int_eq(u[2 * 67], 0xd8); /* the pair starts part 2 */
	/* after padding, Kannel's blind cut at 67 equals our segmenting */
	size_t st[4];
	ck_assert_int_eq(wf_sms_segment(u, 79, st, 4), 2);
	ck_assert_uint_eq(st[1], 67);
	free(out);
	free(t);

	/* a single SMS (<= 70 units) is never changed, even with a pair at 66 */
	t = repeat(ZH, 66, EMOJI ZH ZH);
	ck_assert_int_eq(wf_sms_prepare_text(t, strlen(t), &out, &units), 0);
	ck_assert_uint_eq(units, 70);
	ck_assert_str_eq(out, t);
	free(out);
	free(t);

	/* a pair that does not straddle is left alone */
	t = repeat(ZH, 65, EMOJI ZH ZH ZH ZH ZH ZH ZH ZH ZH ZH);
	ck_assert_int_eq(wf_sms_prepare_text(t, strlen(t), &out, &units), 0);
	ck_assert_uint_eq(units, 77);
	ck_assert_str_eq(out, t);
	free(out);
	free(t);

	ck_assert_int_eq(wf_sms_prepare_text("\xe4\xb8", 2, &out, &units), -EINVAL);
}
END_TEST

/* ---- subscribers ---- */

static char *write_tmp(const char *text)
{
	char *path = strdup("/tmp/wf-sms-subs-XXXXXX");
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static int load_text(const char *text, struct wf_sms_subs **ret, char *err, size_t errlen, char **ret_path)
{
	char *path = write_tmp(text);
	int r = wf_sms_subs_load(path, ret, err, errlen);
	unlink(path);
	*ret_path = path;
	return r;
}

START_TEST(test_subs_good_file_and_regions)
{
	struct wf_sms_subs *s = NULL;
	char err[256], *path;
	int r = load_text("\xef\xbb\xbfmsisdn,region\n"
			  "# 登封市 subscribers\n"
			  "13800000001,410185\n"
			  "  13800000002 , 410185100000 \r\n"
			  "\n"
			  "+8613800000003,410185101000\n"
			  "13800000004,410102\n"
			  "13800000005,420100\n"
			  "13800000001,410102\n",
			  &s, err, sizeof(err), &path);
	ck_assert_msg(r == 0, "load: %d %s", r, err);
	ck_assert_uint_eq(wf_sms_subs_count(s), 6);
	const struct wf_sms_subscriber *f;
	/* province 41: everyone in Henan (5 rows, 13800000001 twice) */
	ck_assert_uint_eq(wf_sms_subs_in_region(s, "410000000000", &f), 5);
	/* county 410185 and everything under it */
	ck_assert_uint_eq(wf_sms_subs_in_region(s, "410185000000", &f), 3);
	ck_assert_str_eq(f[0].region, "410185000000");
	ck_assert_str_eq(f[0].msisdn, "13800000001");
	/* a township: only its own rows (a county-level row is not inside it) */
	ck_assert_uint_eq(wf_sms_subs_in_region(s, "410185100000", &f), 1);
	ck_assert_str_eq(f[0].msisdn, "13800000002");
	ck_assert_uint_eq(wf_sms_subs_in_region(s, "410185101000", &f), 1);
	ck_assert_str_eq(f[0].msisdn, "+8613800000003");
	ck_assert_uint_eq(wf_sms_subs_in_region(s, "420000000000", &f), 1);
	ck_assert_uint_eq(wf_sms_subs_in_region(s, "430000000000", &f), 0);
	ck_assert_ptr_null(f);
	wf_sms_subs_free(s);
	free(path);
}
END_TEST

static void expect_error(const char *text, int want, const char *line_msg)
{
	struct wf_sms_subs *s = NULL;
	char err[256] = "", *path;
	int r = load_text(text, &s, err, sizeof(err), &path);
	ck_assert_msg(r == want, "want %d got %d (%s)", want, r, err);
	ck_assert_ptr_null(s);
	char prefix[128];
	snprintf(prefix, sizeof(prefix), "%s:%s", path, line_msg);
	ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0, "message \"%s\" does not start with \"%s\"",
		      err, prefix);
	free(path);
}

START_TEST(test_subs_errors_have_path_and_line)
{
	expect_error("13800000001,410185\n13800000002\n", -EINVAL, "2: expected \"msisdn,region\"");
	expect_error("# c\n1380000000x,410185\n", -EINVAL, "2: bad msisdn");
	expect_error("1234,410185\n", -EINVAL, "1: bad msisdn");
	expect_error("123456789012345678901,410185\n", -EINVAL, "1: bad msisdn");
	expect_error("13800000001,41018\n", -EINVAL, "1: bad region");
	expect_error("13800000001,4101850000001\n", -EINVAL, "1: bad region");
	expect_error("13800000001,410185,x\n", -EINVAL, "1: too many fields");
	expect_error("13800000001,410185\n\n13800000002,410185\n13800000001,410185000000\n", -EEXIST,
		     "4: duplicate subscriber 13800000001 in region 410185000000 (first on line 1)");
	char *longl = repeat("1", 300, ",410185\n");
	expect_error(longl, -E2BIG, "1: line too long");
	free(longl);

	struct wf_sms_subs *s = NULL;
	char err[256];
	ck_assert_int_eq(wf_sms_subs_load("/nonexistent/subs.csv", &s, err, sizeof(err)), -ENOENT);
	ck_assert_str_eq(err, "/nonexistent/subs.csv: cannot open: No such file or directory");
}
END_TEST

/* ---- token bucket, backoff (injected time) ---- */

START_TEST(test_bucket_rate_and_burst)
{
	struct wf_sms_bucket b;
	int64_t t = 1000000;
	wf_sms_bucket_init(&b, 10.0, 5.0, t);
	for (int i = 0; i < 5; i++)
		ck_assert(wf_sms_bucket_take(&b, 1, t));
	ck_assert(!wf_sms_bucket_take(&b, 1, t));
	ck_assert_int_eq(wf_sms_bucket_wait_ms(&b, 1, t), 100);
	ck_assert(!wf_sms_bucket_take(&b, 1, t + 99));
	ck_assert(wf_sms_bucket_take(&b, 1, t + 100));
	/* two parts need 200 ms */
	ck_assert_int_eq(wf_sms_bucket_wait_ms(&b, 2, t + 100), 200);
	ck_assert(wf_sms_bucket_take(&b, 2, t + 300));
	/* never more than the burst after a long pause */
	t += 3600 * 1000;
	int taken = 0;
	while (wf_sms_bucket_take(&b, 1, t))
		taken++;
	ck_assert_int_eq(taken, 5);
	/* over one second: rate plus burst, no more */
	taken = 0;
	for (int64_t ms = 0; ms <= 1000; ms++)
		while (wf_sms_bucket_take(&b, 1, t + ms))
			taken++;
	ck_assert_int_eq(taken, 10);
}
END_TEST

START_TEST(test_bucket_big_request_and_unlimited)
{
	struct wf_sms_bucket b;
	wf_sms_bucket_init(&b, 2.0, 3.0, 0);
	/* 6 parts > burst 3: allowed once full, then the debt is paid back */
	ck_assert(wf_sms_bucket_take(&b, 6, 0));
	ck_assert(!wf_sms_bucket_take(&b, 1, 0));
	ck_assert_int_eq(wf_sms_bucket_wait_ms(&b, 1, 0), 2000); /* -3 -> 1 at 2/s */
	ck_assert(wf_sms_bucket_take(&b, 1, 2000));

	wf_sms_bucket_init(&b, 0, 0, 0);
	for (int i = 0; i < 100000; i++)
		ck_assert(wf_sms_bucket_take(&b, 6, 0));
	ck_assert_int_eq(wf_sms_bucket_wait_ms(&b, 6, 0), 0);

	/* burst 0 means max(1, rate) */
	wf_sms_bucket_init(&b, 0.5, 0, 0);
	ck_assert(wf_sms_bucket_take(&b, 1, 0));
	ck_assert(!wf_sms_bucket_take(&b, 1, 1999));
	ck_assert(wf_sms_bucket_take(&b, 1, 2000));
}
END_TEST

START_TEST(test_backoff)
{
	ck_assert_int_eq(wf_sms_backoff_ms(0, 1000, 300000), 0);
	ck_assert_int_eq(wf_sms_backoff_ms(1, 1000, 300000), 1000);
	ck_assert_int_eq(wf_sms_backoff_ms(2, 1000, 300000), 2000);
	ck_assert_int_eq(wf_sms_backoff_ms(3, 1000, 300000), 4000);
	ck_assert_int_eq(wf_sms_backoff_ms(9, 1000, 300000), 256000);
	ck_assert_int_eq(wf_sms_backoff_ms(10, 1000, 300000), 300000);
	ck_assert_int_eq(wf_sms_backoff_ms(255, 1000, 300000), 300000); /* no overflow */
	ck_assert_int_eq(wf_sms_backoff_ms(4, 50, 120), 120);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sms-util");
	TCase *tc = tcase_create("ucs2");
	tcase_add_test(tc, test_units_ascii_cjk_emoji);
	tcase_add_test(tc, test_units_invalid_utf8);
	tcase_add_test(tc, test_parts_boundaries);
	tcase_add_test(tc, test_segment_starts);
	tcase_add_test(tc, test_prepare_text_pads_straddling_pair);
	suite_add_tcase(s, tc);
	tc = tcase_create("subscribers");
	tcase_add_test(tc, test_subs_good_file_and_regions);
	tcase_add_test(tc, test_subs_errors_have_path_and_line);
	suite_add_tcase(s, tc);
	tc = tcase_create("rate");
	tcase_add_test(tc, test_bucket_rate_and_burst);
	tcase_add_test(tc, test_bucket_big_request_and_unlimited);
	tcase_add_test(tc, test_backoff);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
