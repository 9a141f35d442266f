/* keyfilter (services/fusion/keyfilter.c): the Bloom filter in front of
 * fusion.input never says "no" for a key it was given, says "maybe" for
 * few others, and its reset empties it. The engine side (built from the
 * store at the first lookup, also after a reopen) is in test-fusion-engine.c
 * (expired_event_after_reopen). */
#include <check.h>
#include <stdio.h>

#include "keyfilter.h"

static size_t key_of(unsigned i, unsigned char *buf)
{
	/* like a fusion.input key: agency, status, an event id */
	buf[0] = (unsigned char)(1 + i % 5);
	buf[1] = (unsigned char)(1 + i % 3);
	int n = snprintf((char *)buf + 2, 64, "peers:41%04u:rainstorm:%u:%u", i % 9973, i / 5, i % 5);
	return (size_t)n + 2;
}

START_TEST(no_false_no)
{
	struct fusion_keyfilter f = { 0 };
	ck_assert_int_eq(fusion_keyfilter_reset(&f, 100000), 0);
	ck_assert_uint_ge(f.cap, 100000);
	ck_assert_uint_eq(f.cap & (f.cap - 1), 0); /* a power of two */
	unsigned char k[80];
	for (unsigned i = 0; i < 100000; i++)
		fusion_keyfilter_add(&f, k, key_of(i, k));
	ck_assert_uint_eq(f.n, 100000);
	for (unsigned i = 0; i < 100000; i++)
		ck_assert_msg(fusion_keyfilter_maybe(&f, k, key_of(i, k)), "key %u lost", i);
	/* keys never added: at most 1% "maybe" (0.24% expected near capacity) */
	unsigned maybe = 0;
	for (unsigned i = 100000; i < 200000; i++)
		maybe += fusion_keyfilter_maybe(&f, k, key_of(i, k));
	ck_assert_msg(maybe < 1000, "%u of 100000 unknown keys said maybe", maybe);
	fusion_keyfilter_free(&f);
	ck_assert_ptr_null(f.bits);
}
END_TEST

START_TEST(reset_empties)
{
	struct fusion_keyfilter f = { 0 };
	unsigned char k[80];
	/* without bits (never reset, or after -ENOMEM) everything is "maybe" */
	ck_assert(fusion_keyfilter_maybe(&f, k, key_of(1, k)));
	fusion_keyfilter_add(&f, k, key_of(1, k));
	ck_assert_uint_eq(f.n, 0);
	ck_assert_int_eq(fusion_keyfilter_reset(&f, 10), 0);
	ck_assert_uint_eq(f.cap, FUSION_KEYFILTER_MIN);
	ck_assert(!f.ready);
	fusion_keyfilter_add(&f, k, key_of(1, k));
	ck_assert(fusion_keyfilter_maybe(&f, k, key_of(1, k)));
	ck_assert_int_eq(fusion_keyfilter_reset(&f, 0), 0);
	ck_assert_uint_eq(f.n, 0);
	unsigned maybe = 0;
	for (unsigned i = 0; i < 1000; i++)
		maybe += fusion_keyfilter_maybe(&f, k, key_of(i, k));
	ck_assert_uint_eq(maybe, 0);
	fusion_keyfilter_free(&f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fusion-keyfilter");
	TCase *tc = tcase_create("keyfilter");
	tcase_add_test(tc, no_false_no);
	tcase_add_test(tc, reset_empties);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
