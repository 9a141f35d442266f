/* Unit tests for common/src/region.c */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wf/region.h"

static struct wf_region_table *table;
static char tmpdir[64];

static void load_real(void)
{
	const char *path = getenv("WF_REGIONS");
	struct wf_region_error err = { 0 };
	ck_assert_msg(path != NULL, "WF_REGIONS not set");
	int r = wf_region_table_load(path, &table, &err);
	ck_assert_msg(r == 0, "load %s: %d line %u: %s", path, r, err.line, err.message);
}

static void free_real(void)
{
	table = wf_region_table_free(table);
	ck_assert_ptr_null(table);
}

static void mk_tmp(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/wf-test-region-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void rm_tmp(void)
{
	char path[128];
	snprintf(path, sizeof path, "%s/f.csv", tmpdir);
	unlink(path);
	ck_assert_int_eq(rmdir(tmpdir), 0);
}

static int load_text(const char *text, struct wf_region_table **ret, struct wf_region_error *err)
{
	char path[128];
	snprintf(path, sizeof path, "%s/f.csv", tmpdir);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
	return wf_region_table_load(path, ret, err);
}

START_TEST(test_counts_per_level)
{
	ck_assert_uint_eq(wf_region_count_level(table, WF_REGION_PROVINCE), 31);
	ck_assert_uint_eq(wf_region_count_level(table, WF_REGION_PREFECTURE), 342);
	ck_assert_uint_eq(wf_region_count_level(table, WF_REGION_COUNTY), 2975);
	ck_assert_uint_eq(wf_region_count_level(table, WF_REGION_TOWNSHIP), 41351);
	ck_assert_uint_eq(wf_region_count_level(table, WF_REGION_VILLAGE), 3306);
	ck_assert_uint_eq(wf_region_count(table), 48005);
	ck_assert_uint_eq(wf_region_count(NULL), 0);
}
END_TEST

START_TEST(test_find)
{
	const struct wf_region *r = wf_region_find(table, "410102000000");
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(wf_region_name(r), "中原区");
	ck_assert_str_eq(wf_region_code(r), "410102000000");
	ck_assert_str_eq(wf_region_parent_code(r), "410100000000");
	ck_assert_int_eq(wf_region_level(r), WF_REGION_COUNTY);

	r = wf_region_find(table, "410102001002");
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(wf_region_name(r), "碧沙岗社区居委会");
	ck_assert_int_eq(wf_region_level(r), WF_REGION_VILLAGE);
	ck_assert_str_eq(wf_region_parent_code(r), "410102001000");

	r = wf_region_find(table, "410000000000");
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(wf_region_name(r), "河南省");
	ck_assert_str_eq(wf_region_parent_code(r), "");

	/* NBS-only functional zone and a province-administered county */
	ck_assert_ptr_nonnull(wf_region_find(table, "410171000000"));
	r = wf_region_find(table, "419001000000");
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(wf_region_parent_code(r), "419000000000");

	/* prefecture without counties: townships hang off the prefecture */
	r = wf_region_find(table, "441900003000");
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(wf_region_parent_code(r), "441900000000");

	ck_assert_ptr_null(wf_region_find(table, "419999000000"));
	ck_assert_ptr_null(wf_region_find(table, "410102"));
	ck_assert_ptr_null(wf_region_find(table, NULL));
	ck_assert_ptr_null(wf_region_find(NULL, "410102000000"));
}
END_TEST

START_TEST(test_load_is_fast)
{
	const char *path = getenv("WF_REGIONS");
	struct timespec a, b;
	struct wf_region_table *t = NULL;
	clock_gettime(CLOCK_MONOTONIC, &a);
	ck_assert_int_eq(wf_region_table_load(path, &t, NULL), 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	/* well under 100 ms natively; sanitizers and valgrind are slower */
	long limit = getenv("WF_UNDER_VALGRIND") ? 5000 : getenv("WF_UNDER_SANITIZER") ? 1000 : 100;
	ck_assert_msg(ms < limit, "load took %ld ms", ms);
	t = wf_region_table_free(t);
}
END_TEST

struct collect {
	int n;
	char first[13];
	char last[13];
	int stop_at;
};

static int collect_cb(const struct wf_region *child, void *ud)
{
	struct collect *c = ud;
	if (c->n == 0)
		memcpy(c->first, wf_region_code(child), 13);
	memcpy(c->last, wf_region_code(child), 13);
	c->n++;
	if (c->stop_at && c->n == c->stop_at)
		return 42;
	return 0;
}

START_TEST(test_parent_and_children)
{
	const struct wf_region *p = wf_region_parent(table, "410102001002");
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(wf_region_code(p), "410102001000");
	p = wf_region_parent(table, "410102000000");
	ck_assert_str_eq(wf_region_code(p), "410100000000");
	ck_assert_ptr_null(wf_region_parent(table, "410000000000"));
	ck_assert_ptr_null(wf_region_parent(table, "419999000000"));

	struct collect c = { 0 };
	/* 郑州市: 15 county-level units, 410102 first, 410185 last */
	ck_assert_int_eq(wf_region_children(table, "410100000000", collect_cb, &c), 15);
	ck_assert_str_eq(c.first, "410102000000");
	ck_assert_str_eq(c.last, "410185000000");

	memset(&c, 0, sizeof c);
	ck_assert_int_eq(wf_region_children(table, NULL, collect_cb, &c), 31);
	ck_assert_str_eq(c.first, "110000000000");

	memset(&c, 0, sizeof c);
	ck_assert_int_eq(wf_region_children(table, "410102001002", collect_cb, &c), 0);

	memset(&c, 0, sizeof c);
	c.stop_at = 3;
	ck_assert_int_eq(wf_region_children(table, "410100000000", collect_cb, &c), 42);
	ck_assert_int_eq(c.n, 3);

	ck_assert_int_eq(wf_region_children(table, "419999000000", collect_cb, &c), -ENOENT);
}
END_TEST

START_TEST(test_normalize)
{
	char out[13];
	ck_assert_int_eq(wf_region_normalize("410102", out), 0);
	ck_assert_str_eq(out, "410102000000");
	ck_assert_int_eq(wf_region_normalize("410102001002", out), 0);
	ck_assert_str_eq(out, "410102001002");

	static const char *bad[] = {
		"", "4101", "41010", "4101020", "41010200100", "4101020010020", "41010a",
		"410102 ", " 410102", "４１０１０２", "410102001002\n", "-41010",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memcpy(out, "untouched!!!", 13);
		ck_assert_msg(wf_region_normalize(bad[i], out) == -EINVAL, "accepted '%s'", bad[i]);
		ck_assert_str_eq(out, "untouched!!!");
	}
	ck_assert_int_eq(wf_region_normalize(NULL, out), -EINVAL);
}
END_TEST

START_TEST(test_level_contains_ancestor)
{
	ck_assert_int_eq(wf_region_level_of_code("410000000000"), WF_REGION_PROVINCE);
	ck_assert_int_eq(wf_region_level_of_code("410100000000"), WF_REGION_PREFECTURE);
	ck_assert_int_eq(wf_region_level_of_code("410102000000"), WF_REGION_COUNTY);
	ck_assert_int_eq(wf_region_level_of_code("410102001000"), WF_REGION_TOWNSHIP);
	ck_assert_int_eq(wf_region_level_of_code("410102001002"), WF_REGION_VILLAGE);
	ck_assert_int_eq(wf_region_level_of_code("441900003000"), WF_REGION_TOWNSHIP);
	ck_assert_int_eq(wf_region_level_of_code("000000000000"), WF_REGION_LEVEL_INVALID);
	ck_assert_int_eq(wf_region_level_of_code("410102"), WF_REGION_LEVEL_INVALID);

	ck_assert(wf_region_contains("410000000000", "410102001002"));
	ck_assert(wf_region_contains("410100000000", "410102001002"));
	ck_assert(wf_region_contains("410102000000", "410102001002"));
	ck_assert(wf_region_contains("410102001000", "410102001002"));
	ck_assert(wf_region_contains("410102001002", "410102001002"));
	ck_assert(!wf_region_contains("410103000000", "410102001002"));
	ck_assert(!wf_region_contains("410102001002", "410102001000"));
	ck_assert(!wf_region_contains("420000000000", "410102000000"));
	ck_assert(wf_region_contains("441900000000", "441900003000"));
	ck_assert(!wf_region_contains("410102", "410102001002"));
	ck_assert(!wf_region_contains(NULL, "410102001002"));

	char out[13];
	ck_assert_int_eq(wf_region_ancestor_at("410102001002", WF_REGION_COUNTY, out), 0);
	ck_assert_str_eq(out, "410102000000");
	ck_assert_int_eq(wf_region_ancestor_at("410102001002", WF_REGION_PROVINCE, out), 0);
	ck_assert_str_eq(out, "410000000000");
	ck_assert_int_eq(wf_region_ancestor_at("410102001002", WF_REGION_VILLAGE, out), 0);
	ck_assert_str_eq(out, "410102001002");
	memcpy(out, "untouched!!!", 13);
	ck_assert_int_eq(wf_region_ancestor_at("410102000000", WF_REGION_TOWNSHIP, out), -EINVAL);
	ck_assert_int_eq(wf_region_ancestor_at("4101", WF_REGION_PROVINCE, out), -EINVAL);
	ck_assert_int_eq(wf_region_ancestor_at("410102000000", WF_REGION_LEVEL_MAX, out), -EINVAL);
	ck_assert_str_eq(out, "untouched!!!");

	for (int l = 0; l < WF_REGION_LEVEL_MAX; l++) {
		const char *s = wf_region_level_to_string((enum wf_region_level)l);
		ck_assert_ptr_nonnull(s);
		ck_assert_int_eq(wf_region_level_from_string(s), l);
	}
	ck_assert_ptr_null(wf_region_level_to_string(WF_REGION_LEVEL_MAX));
	ck_assert_int_eq(wf_region_level_from_string("city"), WF_REGION_LEVEL_INVALID);
	ck_assert_uint_eq(wf_region_prefix_len(WF_REGION_TOWNSHIP), 9);
}
END_TEST

#define HDR "# comment\ncode,name,parent,level\n"
#define PROV "410000000000,河南省,,province\n"
#define PREF "410100000000,郑州市,410000000000,prefecture\n"

static void expect_load_error(const char *text, int code, unsigned line, const char *what)
{
	struct wf_region_table *t = (struct wf_region_table *)&t; /* must stay untouched */
	struct wf_region_table *const sentinel = t;
	struct wf_region_error err = { 0 };
	int r = load_text(text, &t, &err);
	ck_assert_msg(r == code, "%s: got %d (%s) want %d", what, r, err.message, code);
	ck_assert_msg(err.line == line, "%s: line %u want %u (%s)", what, err.line, line, err.message);
	ck_assert_ptr_eq(t, sentinel);
	ck_assert_msg(err.message[0] != '\0', "%s: no message", what);
}

START_TEST(test_loader_errors)
{
	/* a good small file loads, header and comments optional, CRLF ok */
	struct wf_region_table *t = NULL;
	ck_assert_int_eq(load_text(HDR PROV PREF "410102000000,\"中原区\",410100000000,county\r\n",
				   &t, NULL), 0);
	ck_assert_uint_eq(wf_region_count(t), 3);
	ck_assert_str_eq(wf_region_name(wf_region_find(t, "410102000000")), "中原区");
	t = wf_region_table_free(t);

	expect_load_error(HDR PROV "41010000000,郑州市,410000000000,prefecture\n", -EINVAL, 4,
			  "short code");
	expect_load_error(HDR PROV "41010000000x,郑州市,410000000000,prefecture\n", -EINVAL, 4,
			  "non-digit code");
	expect_load_error(HDR PROV PREF "410100000000,郑州市,410000000000,prefecture\n", -EEXIST, 5,
			  "duplicate");
	expect_load_error(HDR PROV PREF "410102001000,林山寨街道,410102000000,township\n", -ENOENT, 5,
			  "missing parent");
	expect_load_error(HDR PROV "410100000000,郑州市,410000000000,city\n", -EINVAL, 4, "bad level");
	expect_load_error(HDR PROV "410100000000,郑州市,410000000000,county\n", -EINVAL, 4,
			  "level not matching code");
	expect_load_error(HDR PROV "410100000000,郑州市,420000000000,prefecture\n", -EINVAL, 4,
			  "parent not an ancestor");
	expect_load_error(HDR "410000000000,河南省,110000000000,province\n", -EINVAL, 3,
			  "province with parent");
	expect_load_error(HDR PROV "410100000000,郑州市,410000000000\n", -EINVAL, 4, "3 fields");
	expect_load_error(HDR PROV "410100000000,\"郑州市,410000000000,prefecture\n", -EINVAL, 4,
			  "open quote");
	expect_load_error(HDR PROV "410100000000,,410000000000,prefecture\n", -EINVAL, 4,
			  "empty name");

	char big[700];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	char text[1024];
	snprintf(text, sizeof text, HDR PROV "410100000000,%s,410000000000,prefecture\n", big);
	expect_load_error(text, -E2BIG, 4, "line too long");

	expect_load_error("# only comments\n", -EINVAL, 0, "empty");

	/* missing file */
	struct wf_region_error err = { 0 };
	ck_assert_int_eq(wf_region_table_load("/nonexistent/regions.csv", &t, &err), -ENOENT);
	ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_loader_file_too_big)
{
	char path[128];
	snprintf(path, sizeof path, "%s/f.csv", tmpdir);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	/* sparse file over the limit: no need to write 64 MiB */
	ck_assert_int_eq(ftruncate(fileno(f), (off_t)WF_REGION_FILE_MAX + 1), 0);
	ck_assert_int_eq(fclose(f), 0);
	struct wf_region_table *t = NULL;
	struct wf_region_error err = { 0 };
	ck_assert_int_eq(wf_region_table_load(path, &t, &err), -EFBIG);
	ck_assert_ptr_null(t);
	ck_assert_uint_eq(err.line, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("region");
	TCase *tc = tcase_create("table");
	tcase_add_checked_fixture(tc, load_real, free_real);
	tcase_add_test(tc, test_counts_per_level);
	tcase_add_test(tc, test_find);
	tcase_add_test(tc, test_parent_and_children);
	suite_add_tcase(s, tc);

	tc = tcase_create("codes");
	tcase_add_test(tc, test_normalize);
	tcase_add_test(tc, test_level_contains_ancestor);
	tcase_add_test(tc, test_load_is_fast);
	suite_add_tcase(s, tc);

	tc = tcase_create("loader");
	tcase_add_checked_fixture(tc, mk_tmp, rm_tmp);
	tcase_add_test(tc, test_loader_errors);
	tcase_add_test(tc, test_loader_file_too_big);
	suite_add_tcase(s, tc);

	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
