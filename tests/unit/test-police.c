/* wf-police: grade from the report or from casualties / crowd density,
 * the configurable grade -> level map, lifecycle, and the rejections. */
#include "agency-test.h"
#include "police.h"

static void *st;

static void setup(void)
{
	char path[1024], err[512] = "";

	at_setup();
	snprintf(path, sizeof path, "%s/tests/fixtures/police/police.conf", getenv("WF_SOURCE_ROOT"));
	st = NULL;
	ck_assert_msg(wf_police_ops.config_load(path, regions, &st, err, sizeof err) == 0, "%s", err);
}

static void teardown(void)
{
	police_config_free(st);
	at_teardown();
}

static int parse(const char *csv)
{
	wf_adapter_sink_reset(sink);
	int r = wf_police_ops.parse(st, "t.csv", (const uint8_t *)csv, strlen(csv), NOW, sink);
	if (r == 0)
		at_check_events(WF__V1__AGENCY__AGENCY_POLICE);
	return r;
}

#define H "incident,time,region,category,status,grade,deaths,injured,crowd_density,text\n"

static int level(const char *region, const char *cat, const char *grade, const char *deaths,
		 const char *injured, const char *density)
{
	char csv[512];
	snprintf(csv, sizeof csv, H "P1,2026-07-20T10:00:00+08:00,%s,%s,new,%s,%s,%s,%s,\n", region,
		 cat, grade, deaths, injured, density);
	ck_assert_msg(parse(csv) == 0, "%s", wf_adapter_sink_reason_text(sink));
	return (int)at_get(NULL)->level;
}

START_TEST(grades)
{
	/* reported grade wins */
	ck_assert_int_eq(level("410185", "public_order", "1", "", "", ""), WF__V1__LEVEL__LEVEL_I);
	ck_assert_int_eq(level("410185", "public_order", "4", "50", "", ""), WF__V1__LEVEL__LEVEL_IV);
	/* casualties: deaths 3/10/30, injured 10/50/100 */
	ck_assert_int_eq(level("410185", "traffic", "", "2", "9", ""), WF__V1__LEVEL__LEVEL_IV);
	ck_assert_int_eq(level("410185", "traffic", "", "3", "0", ""), WF__V1__LEVEL__LEVEL_III);
	ck_assert_int_eq(level("410185", "traffic", "", "9", "49", ""), WF__V1__LEVEL__LEVEL_III);
	ck_assert_int_eq(level("410185", "traffic", "", "10", "0", ""), WF__V1__LEVEL__LEVEL_II);
	ck_assert_int_eq(level("410185", "hazmat", "", "0", "100", ""), WF__V1__LEVEL__LEVEL_I);
	ck_assert_int_eq(at_get(NULL)->hazard, WF__V1__HAZARD__HAZARD_HAZMAT);
	ck_assert_int_eq(level("410185", "explosion", "", "30", "", ""), WF__V1__LEVEL__LEVEL_I);
	ck_assert_int_eq(at_get(NULL)->hazard, WF__V1__HAZARD__HAZARD_EXPLOSION);
	/* crowd density 4/5/6/7 persons per m2 */
	ck_assert_int_eq(level("410185", "crowd", "", "", "", "3.9"), WF__V1__LEVEL__LEVEL_IV);
	ck_assert_int_eq(level("410185", "crowd", "", "", "", "4"), WF__V1__LEVEL__LEVEL_IV);
	ck_assert_int_eq(level("410185", "crowd", "", "", "", "5"), WF__V1__LEVEL__LEVEL_III);
	ck_assert_int_eq(level("410185", "crowd", "", "", "", "5.99"), WF__V1__LEVEL__LEVEL_III);
	ck_assert_int_eq(level("410185", "crowd", "", "", "", "6"), WF__V1__LEVEL__LEVEL_II);
	ck_assert_int_eq(level("410185", "crowd", "", "", "", "7"), WF__V1__LEVEL__LEVEL_I);
	const Wf__V1__Event *e = at_get("crowd_density");
	ck_assert_int_eq(e->hazard, WF__V1__HAZARD__HAZARD_CROWD);
	ck_assert_str_eq(e->measurement->unit, "/m2");
	ck_assert_double_eq(e->measurement->threshold, 7);
	ck_assert_ptr_nonnull(strstr(e->text, "特别重大"));
	/* the 少林 override: grade 4 not coloured there, grade 3 still yellow */
	ck_assert_int_eq(level("410185002000", "crowd", "", "", "", "4.5"), WF__V1__LEVEL__LEVEL_NONE);
	ck_assert_int_eq(level("410185002000", "crowd", "", "", "", "5.5"), WF__V1__LEVEL__LEVEL_III);
	ck_assert_int_eq(level("410185002000", "missing", "", "", "", ""), WF__V1__LEVEL__LEVEL_NONE);
	ck_assert_int_eq(at_get(NULL)->hazard, WF__V1__HAZARD__HAZARD_MISSING_PERSONS);
}
END_TEST

START_TEST(lifecycle)
{
	ck_assert_int_eq(parse(H "P110-0720-007,2026-07-20T10:00:00+08:00,410185002000,crowd,new,,,,5.2,少林寺山门 人员密集\n"
			       "P110-0720-007,2026-07-20T10:30:00+08:00,410185002000,crowd,update,,,,6.1,\n"
			       "P110-0720-007,2026-07-20T11:30:00+08:00,410185002000,crowd,closed,,,,2.0,已疏散\n"), 0);
	ck_assert_uint_eq(wf_adapter_sink_count(sink), 3);
	const Wf__V1__Event *a = NULL, *u = NULL, *c = NULL;
	for (size_t i = 0; i < 3; i++) {
		const Wf__V1__Event *e = wf_adapter_sink_event(sink, i);
		if (e->msg_type == WF__V1__MSG_TYPE__MSG_TYPE_ALERT) a = e;
		if (e->msg_type == WF__V1__MSG_TYPE__MSG_TYPE_UPDATE) u = e;
		if (e->msg_type == WF__V1__MSG_TYPE__MSG_TYPE_CANCEL) c = e;
	}
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(u);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(a->id, "police:110:P110-0720-007");
	ck_assert_int_eq(a->level, WF__V1__LEVEL__LEVEL_III);
	ck_assert_int_eq(u->level, WF__V1__LEVEL__LEVEL_II);
	ck_assert_str_eq(u->references[0], a->id);
	ck_assert_str_eq(c->references[0], a->id);
	ck_assert_int_eq(c->level, WF__V1__LEVEL__LEVEL_NONE);
	ck_assert_int_eq(a->expires_ms - a->observed_ms, 12 * 3600 * 1000LL);
	ck_assert_int_eq(parse("#status=test\n" H "T1,2026-07-20T10:00:00+08:00,410185,traffic,new,,,,,\n"), 0);
	ck_assert_int_eq(at_get(NULL)->status, WF__V1__STATUS__STATUS_TEST);
}
END_TEST

START_TEST(rejections)
{
	size_t len;
	char *buf;
	const char *row = H "P1,2026-07-20T10:00:00+08:00,410185,traffic,new,,1,2,,\n";
	char twice[512];

	snprintf(twice, sizeof twice, "%s%s", row, strchr(row, '\n') + 1);
	ck_assert_int_eq(parse(twice), 0);
	ck_assert_uint_eq(wf_adapter_sink_count(sink), 1);
	ck_assert_int_eq(parse(H "P1,2026-07-20T10:00:00+08:00,410185,traffic,new,,1,2,,\n"
				 "P1,2026-07-20T10:00:00+08:00,410185,traffic,new,,1,3,,\n"), -EINVAL);
	buf = at_fixture("police/truncated.csv", &len);
	ck_assert_int_eq(wf_police_ops.parse(st, "x", (uint8_t *)buf, len, NOW, sink), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "truncated"));
	free(buf);
	buf = at_fixture("police/gbk.csv", &len);
	ck_assert_int_eq(wf_police_ops.parse(st, "x", (uint8_t *)buf, len, NOW, sink), -EILSEQ);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "line 2"));
	free(buf);
	ck_assert_int_eq(parse(H "P1,2026-07-20T10:00:00+08:00,410185,riot,new,,,,,\n"), -EINVAL);
	ck_assert_int_eq(parse(H "P1,2026-07-20T10:00:00+08:00,410185,crowd,new,5,,,,\n"), -EINVAL);
	ck_assert_int_eq(parse(H "P1,2026-07-20T10:00:00+08:00,410185,crowd,new,,,,25,\n"), -EINVAL);
	ck_assert_int_eq(parse(H "P1,2026-07-20T10:00:00+08:00,410199,crowd,new,,,,,\n"), -EINVAL);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "region table"));
	ck_assert_int_eq(parse(H "P1,2026-07-20T10:00:00+08:00,410185,crowd,new,,,,,a,b\n"), -EBADMSG);
	ck_assert_int_eq(parse(H "P1,2026-07-20T10:00:00+08:00,410185,crowd,new,,,,,\x01\n"), -EBADMSG);
	size_t n = POLICE_MAX_FILE + 1;
	char *big = malloc(n);
	memset(big, '\n', n);
	ck_assert_int_eq(wf_police_ops.parse(st, "big", (uint8_t *)big, n, NOW, sink), -EFBIG);
	free(big);
}
END_TEST

START_TEST(config_errors)
{
	char err[512];
	struct police_state *s = NULL;

	ck_assert_int_lt(police_config_load_string("p.conf", "[police]\ngrade5 = red\n", regions, &s, err, sizeof err), 0);
	ck_assert_str_eq(err, "p.conf:2: unknown key 'grade5' in [police]");
	ck_assert_int_lt(police_config_load_string("p.conf", "[police]\n\ndensity_grade1 = 99\n", regions, &s, err, sizeof err), 0);
	ck_assert_str_eq(err, "p.conf:3: density_grade1: 99 outside 0.1..20");
	ck_assert_int_lt(police_config_load_string("p.conf", "[police]\ndeaths_grade3 = 40\n", regions, &s, err, sizeof err), 0);
	ck_assert_ptr_nonnull(strstr(err, "must decrease"));
	ck_assert_int_lt(police_config_load_string("p.conf", "[police.station 1]\nx = 1\n", regions, &s, err, sizeof err), 0);
	ck_assert_ptr_nonnull(strstr(err, "p.conf:2: unknown section"));
	ck_assert_ptr_null(s);
	/* a region section before [police] still inherits the keys it does not set */
	ck_assert_int_eq(police_config_load_string("p.conf", "[police.region 410185]\ngrade4 = none\n[police]\ngrade3 = orange\n", regions, &s, err, sizeof err), 0);
	ck_assert_int_eq(s->rmaps[0].map.level[3], WF__V1__LEVEL__LEVEL_II);
	ck_assert_int_eq(s->rmaps[0].map.level[4], WF__V1__LEVEL__LEVEL_NONE);
	ck_assert_int_eq(s->rmaps[0].map.level[1], WF__V1__LEVEL__LEVEL_I);
	police_config_free(s);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("police");
	TCase *tc = tcase_create("police");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, grades);
	tcase_add_test(tc, lifecycle);
	tcase_add_test(tc, rejections);
	tcase_add_test(tc, config_errors);
	suite_add_tcase(su, tc);
	sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
