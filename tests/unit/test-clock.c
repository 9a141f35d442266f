/* Unit tests for common/src/clock.c */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wf/clock.h"

START_TEST(test_manual_clock_follows_variable)
{
	int64_t now = 1000;
	struct wf_clock c = wf_clock_manual(&now);
	ck_assert_int_eq(wf_clock_now_ms(&c), 1000);
	now = 1750000000123;
	ck_assert_int_eq(wf_clock_now_ms(&c), 1750000000123);
}
END_TEST

START_TEST(test_shifted_clock_runs_from_offset)
{
	int64_t off = -86400000; /* one day back */
	struct wf_clock c = wf_clock_shifted(&off);
	int64_t sys = wf_clock_now_ms(NULL), shifted = wf_clock_now_ms(&c);
	ck_assert_int_ge(shifted, sys - 86400000);
	ck_assert_int_lt(shifted, sys - 86400000 + 1000);
	off = 0;
	ck_assert_int_ge(wf_clock_now_ms(&c), sys);
}
END_TEST

START_TEST(test_system_clock_is_plausible)
{
	struct wf_clock c = wf_clock_system();
	int64_t a = wf_clock_now_ms(&c);
	int64_t b = wf_clock_now_ms(NULL);
	/* after 2020-01-01 and monotone enough between two reads */
	ck_assert_int_gt(a, 1577836800000);
	ck_assert_int_ge(b, a - 1000);
	int64_t m1 = wf_clock_mono_ms(), m2 = wf_clock_mono_ms();
	ck_assert_int_ge(m2, m1);
}
END_TEST

START_TEST(test_parse_forms)
{
	int64_t ms = 0;
	ck_assert_int_eq(wf_clock_parse("1970-01-01T00:00:00Z", &ms), 0);
	ck_assert_int_eq(ms, 0);
	ck_assert_int_eq(wf_clock_parse("2021-07-20T16:00:00+08:00", &ms), 0);
	ck_assert_int_eq(ms, 1626768000000);
	ck_assert_int_eq(wf_clock_parse("2021-07-20 08:00:00.5Z", &ms), 0);
	ck_assert_int_eq(ms, 1626768000500);
	ck_assert_int_eq(wf_clock_parse("2024-02-29T12:00:00-05:30", &ms), 0);
	ck_assert_int_eq(ms, 1709227800000);
}
END_TEST

START_TEST(test_parse_rejects)
{
	static const char *bad[] = {
		"", "2021-07-20", "2021-07-20T16:00:00", "2021-13-01T00:00:00Z",
		"2023-02-29T00:00:00Z", "2021-07-20T24:00:00Z", "2021-07-20T16:00:00+8:00",
		"2021-07-20T16:00:00Zjunk", "1969-12-31T23:59:59Z", "2021-07-20T16:00:00.Z",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int64_t ms = 42;
		ck_assert_msg(wf_clock_parse(bad[i], &ms) == -EINVAL, "accepted '%s'", bad[i]);
		ck_assert_int_eq(ms, 42); /* untouched on failure */
	}
	ck_assert_int_eq(wf_clock_parse(NULL, NULL), -EINVAL);
}
END_TEST

START_TEST(test_format_roundtrip)
{
	char buf[32];
	ck_assert_str_eq(wf_clock_format(1626768000500, buf, sizeof buf), "2021-07-20T08:00:00.500Z");
	int64_t ms = 0;
	ck_assert_int_eq(wf_clock_parse(buf, &ms), 0);
	ck_assert_int_eq(ms, 1626768000500);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("clock");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_manual_clock_follows_variable);
	tcase_add_test(tc, test_shifted_clock_runs_from_offset);
	tcase_add_test(tc, test_system_clock_is_plausible);
	tcase_add_test(tc, test_parse_forms);
	tcase_add_test(tc, test_parse_rejects);
	tcase_add_test(tc, test_format_roundtrip);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
