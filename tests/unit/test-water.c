/* wf-water: MWR flood / low-water boundaries, reservoir 汛限, trend and
 * UPDATE/CANCEL chains across files, and the rejections. */
#include "agency-test.h"
#include "water.h"

#include <unistd.h>

static void *st;

static void load_state(void)
{
	char path[1024], err[512] = "";

	if (st)
		water_config_free(st);
	st = NULL;
	snprintf(path, sizeof path, "%s/tests/fixtures/water/water.conf", getenv("WF_SOURCE_ROOT"));
	ck_assert_msg(wf_water_ops.config_load(path, regions, &st, err, sizeof err) == 0, "%s", err);
}

static void setup(void)
{
	at_setup();
	load_state();
}

static void teardown(void)
{
	water_config_free(st);
	st = NULL;
	at_teardown();
}

static int parse(const char *csv)
{
	wf_adapter_sink_reset(sink);
	return wf_water_ops.parse(st, "t.csv", (const uint8_t *)csv, strlen(csv), NOW, sink);
}

/* One reading of STATION at 11:00 on a fresh state; returns the level of
 * CRITERION (-1: no such event) and asserts the number of events. */
static int one(const char *station, const char *stage, const char *flow, const char *criterion,
	       size_t nevents)
{
	char csv[256];

	load_state();
	snprintf(csv, sizeof csv, "station,time,stage_m,flow_m3s\n%s,2026-07-20T11:00:00+08:00,%s,%s\n",
		 station, stage, flow);
	ck_assert_msg(parse(csv) == 0, "%s", wf_adapter_sink_reason_text(sink));
	ck_assert_uint_eq(wf_adapter_sink_count(sink), nevents);
	at_check_events(WF__V1__AGENCY__AGENCY_WATER);
	return at_level(criterion);
}

#define RIVER "41402650"
#define RES "41402701"

START_TEST(stage_boundaries)
{
	ck_assert_int_eq(one(RIVER, "262.24", "", NULL, 0), -1);
	ck_assert_int_eq(one(RIVER, "262.25", "", "stage_warning_approach", 1), WF__V1__LEVEL__LEVEL_IV);
	ck_assert_int_eq(one(RIVER, "262.49", "", "stage_warning_approach", 1), WF__V1__LEVEL__LEVEL_IV);
	ck_assert_int_eq(one(RIVER, "262.50", "", "stage_warning", 1), WF__V1__LEVEL__LEVEL_III);
	ck_assert_int_eq(one(RIVER, "262.51", "", "stage_warning", 1), WF__V1__LEVEL__LEVEL_III);
	ck_assert_int_eq(one(RIVER, "263.74", "", "stage_warning", 1), WF__V1__LEVEL__LEVEL_III);
	ck_assert_int_eq(one(RIVER, "263.75", "", "stage_guaranteed", 1), WF__V1__LEVEL__LEVEL_II);
	ck_assert_int_eq(one(RIVER, "264.99", "", "stage_guaranteed", 1), WF__V1__LEVEL__LEVEL_II);
	ck_assert_int_eq(one(RIVER, "265.00", "", "stage_record", 1), WF__V1__LEVEL__LEVEL_I);
	ck_assert_int_eq(one(RIVER, "265.01", "", "stage_record", 1), WF__V1__LEVEL__LEVEL_I);
	const Wf__V1__Event *e = at_get("stage_record");
	ck_assert_int_eq(e->hazard, WF__V1__HAZARD__HAZARD_FLOOD);
	ck_assert_str_eq(e->measurement->unit, "m");
	ck_assert_double_eq(e->measurement->threshold, 265.00);
	ck_assert_str_eq(e->region, "410185103000");
	ck_assert_str_eq(e->station, RIVER);
	ck_assert_ptr_nonnull(e->point);
	ck_assert_int_eq(e->certainty, WF__V1__CERTAINTY__CERTAINTY_OBSERVED);
	ck_assert_int_eq(e->status, WF__V1__STATUS__STATUS_ACTUAL);
	ck_assert_int_eq(e->expires_ms - e->observed_ms, 6 * 3600 * 1000LL);
}
END_TEST

START_TEST(flow_boundaries)
{
	/* approach ratio 0.875 of the 5-year flow 800 = 700 */
	ck_assert_int_eq(one(RIVER, "", "699.9", NULL, 0), -1);
	ck_assert_int_eq(one(RIVER, "", "700", "flow_5y_approach", 1), WF__V1__LEVEL__LEVEL_IV);
	ck_assert_int_eq(one(RIVER, "", "799.9", "flow_5y_approach", 1), WF__V1__LEVEL__LEVEL_IV);
	ck_assert_int_eq(one(RIVER, "", "800", "flow_5y", 1), WF__V1__LEVEL__LEVEL_III);
	ck_assert_int_eq(one(RIVER, "", "1499.9", "flow_5y", 1), WF__V1__LEVEL__LEVEL_III);
	ck_assert_int_eq(one(RIVER, "", "1500", "flow_20y", 1), WF__V1__LEVEL__LEVEL_II);
	ck_assert_int_eq(one(RIVER, "", "2100", "flow_50y", 1), WF__V1__LEVEL__LEVEL_I);
	ck_assert_str_eq(at_get("flow_50y")->measurement->unit, "m3/s");
	/* the more severe of stage and flow decides */
	ck_assert_int_eq(one(RIVER, "262.50", "1500", "flow_20y", 1), WF__V1__LEVEL__LEVEL_II);
}
END_TEST

START_TEST(reservoir_boundaries)
{
	ck_assert_int_eq(one(RES, "311.74", "", NULL, 0), -1);
	ck_assert_int_eq(one(RES, "311.75", "", "level_flood_limit_approach", 1), WF__V1__LEVEL__LEVEL_IV);
	ck_assert_int_eq(one(RES, "311.99", "", "level_flood_limit_approach", 1), WF__V1__LEVEL__LEVEL_IV);
	ck_assert_int_eq(one(RES, "312.00", "", "level_flood_limit", 1), WF__V1__LEVEL__LEVEL_III);
	ck_assert_int_eq(one(RES, "316.49", "", "level_flood_limit", 1), WF__V1__LEVEL__LEVEL_III);
	ck_assert_int_eq(one(RES, "316.50", "", "level_design", 1), WF__V1__LEVEL__LEVEL_II);
	ck_assert_int_eq(one(RES, "318.25", "", "level_check", 1), WF__V1__LEVEL__LEVEL_I);
	ck_assert_int_eq(at_get(NULL)->hazard, WF__V1__HAZARD__HAZARD_RESERVOIR);
}
END_TEST

START_TEST(low_water_boundaries)
{
	ck_assert_int_eq(one(RIVER, "258.76", "", NULL, 0), -1);
	ck_assert_int_eq(one(RIVER, "258.75", "", "stage_drought_approach", 1), WF__V1__LEVEL__LEVEL_IV);
	ck_assert_int_eq(one(RIVER, "258.51", "", "stage_drought_approach", 1), WF__V1__LEVEL__LEVEL_IV);
	ck_assert_int_eq(one(RIVER, "258.50", "", "stage_drought", 1), WF__V1__LEVEL__LEVEL_III);
	ck_assert_int_eq(one(RIVER, "258.00", "", "stage_normal_min", 1), WF__V1__LEVEL__LEVEL_II);
	ck_assert_int_eq(one(RIVER, "257.50", "", "stage_record_low", 1), WF__V1__LEVEL__LEVEL_I);
	ck_assert_int_eq(one(RIVER, "257.49", "", "stage_record_low", 1), WF__V1__LEVEL__LEVEL_I);
	ck_assert_int_eq(at_get(NULL)->hazard, WF__V1__HAZARD__HAZARD_LOW_WATER);
}
END_TEST

START_TEST(trend_and_chain_across_files)
{
	const Wf__V1__Event *e;
	char id2[128], id3[128];

	ck_assert_int_eq(parse("station,time,stage_m,flow_m3s\n" RIVER ",2026-07-20T08:00:00+08:00,262.00,\n"), 0);
	ck_assert_uint_eq(wf_adapter_sink_count(sink), 0);
	/* +0.40 m in one hour: rising 0.4 m/h >= 0.125, and blue */
	ck_assert_int_eq(parse("station,time,stage_m,flow_m3s\n" RIVER ",2026-07-20T09:00:00+08:00,262.40,\n"), 0);
	ck_assert_uint_eq(wf_adapter_sink_count(sink), 2);
	at_check_events(WF__V1__AGENCY__AGENCY_WATER);
	e = at_get("stage_rise_rate");
	ck_assert_ptr_nonnull(e);
	ck_assert_double_eq_tol(e->measurement->value, 0.40, 1e-9);
	ck_assert_str_eq(e->measurement->unit, "m/h");
	ck_assert_int_eq(e->level, WF__V1__LEVEL__LEVEL_NONE);
	e = at_get("stage_warning_approach");
	ck_assert_int_eq(e->msg_type, WF__V1__MSG_TYPE__MSG_TYPE_ALERT);
	ck_assert_ptr_nonnull(strstr(e->text, "rising"));
	snprintf(id2, sizeof id2, "%s", e->id);
	ck_assert_str_eq(id2, "water:41402650:20260720T010000Z:flood");
	/* +0.10 m/h: below the rise rate; yellow, an UPDATE of the blue one */
	ck_assert_int_eq(parse("station,time,stage_m,flow_m3s\n" RIVER ",2026-07-20T10:00:00+08:00,262.50,\n"), 0);
	ck_assert_uint_eq(wf_adapter_sink_count(sink), 1);
	e = at_get("stage_warning");
	ck_assert_int_eq(e->msg_type, WF__V1__MSG_TYPE__MSG_TYPE_UPDATE);
	ck_assert_str_eq(e->references[0], id2);
	snprintf(id3, sizeof id3, "%s", e->id);
	/* back below every threshold: CANCEL of the yellow one, falling */
	ck_assert_int_eq(parse("station,time,stage_m,flow_m3s\n" RIVER ",2026-07-20T11:00:00+08:00,261.00,\n"), 0);
	ck_assert_uint_eq(wf_adapter_sink_count(sink), 1);
	e = at_get(NULL);
	ck_assert_int_eq(e->msg_type, WF__V1__MSG_TYPE__MSG_TYPE_CANCEL);
	ck_assert_str_eq(e->references[0], id3);
	ck_assert_ptr_nonnull(strstr(e->text, "falling"));
	at_check_events(WF__V1__AGENCY__AGENCY_WATER);
}
END_TEST

START_TEST(duplicates)
{
	const char *f = "station,time,stage_m,flow_m3s\n"
			RIVER ",2026-07-20T09:00:00+08:00,262.60,\n"
			RIVER ",2026-07-20T09:00:00+08:00,262.60,\n";
	char id[128];

	ck_assert_int_eq(parse(f), 0);
	ck_assert_uint_eq(wf_adapter_sink_count(sink), 1); /* the duplicate record once */
	snprintf(id, sizeof id, "%s", at_get(NULL)->id);
	ck_assert_int_eq(parse(f), 0); /* the same file again: already received */
	ck_assert_uint_eq(wf_adapter_sink_count(sink), 0);
	/* a different value for a time already received */
	ck_assert_int_eq(parse("station,time,stage_m,flow_m3s\n" RIVER ",2026-07-20T09:00:00+08:00,262.70,\n"), -EINVAL);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "earlier file"));
	/* a fresh process: the same record gets the same id */
	load_state();
	ck_assert_int_eq(parse(f), 0);
	ck_assert_str_eq(at_get(NULL)->id, id);
	/* conflicting duplicate inside one file */
	load_state();
	ck_assert_int_eq(parse("station,time,stage_m,flow_m3s\n"
			       RIVER ",2026-07-20T09:00:00+08:00,262.60,\n"
			       RIVER ",2026-07-20T09:00:00+08:00,262.65,\n"), -EINVAL);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "line 3"));
	ck_assert_uint_eq(wf_adapter_sink_count(sink), 0);
}
END_TEST

START_TEST(rejections)
{
	size_t len;
	char *buf;
	int r;

	buf = at_fixture("water/truncated.csv", &len);
	r = wf_water_ops.parse(st, "truncated.csv", (uint8_t *)buf, len, NOW, sink);
	ck_assert_int_eq(r, -EBADMSG);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "truncated"));
	free(buf);

	wf_adapter_sink_reset(sink);
	buf = at_fixture("water/gbk.csv", &len);
	r = wf_water_ops.parse(st, "gbk.csv", (uint8_t *)buf, len, NOW, sink);
	ck_assert_int_eq(r, -EILSEQ);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "not UTF-8"));
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "line 1"));
	free(buf);

	ck_assert_int_eq(parse("station,time,stage_m,flow_m3s\nNOPE1,2026-07-20T09:00:00+08:00,1,\n"), -ENOENT);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "unknown station 'NOPE1'"));
	/* truncated record (a field missing), wrong header, numbers */
	ck_assert_int_eq(parse("station,time,stage_m,flow_m3s\n" RIVER ",2026-07-20T09:00:00+08:00,262.1\n"), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "truncated record"));
	ck_assert_int_eq(parse("station,time,stage\n"), -EBADMSG);
	ck_assert_int_eq(parse("station,time,stage_m,flow_m3s\n" RIVER ",2026-07-20T09:00:00+08:00,nan,\n"), -EINVAL);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "finite"));
	ck_assert_int_eq(parse("station,time,stage_m,flow_m3s\n" RIVER ",2026-07-20T09:00:00+08:00,1e308x,\n"), -EINVAL);
	ck_assert_int_eq(parse("station,time,stage_m,flow_m3s\n" RIVER ",2026-07-20T09:00:00+08:00,262,-5\n"), -EINVAL);
	ck_assert_int_eq(parse("station,time,stage_m,flow_m3s\n" RIVER ",2026-07-20 09:00,262,\n"), -EINVAL);
	ck_assert_int_eq(parse("station,time,stage_m,flow_m3s\n" RIVER ",2026-07-21T09:00:00+08:00,262,\n"), -EINVAL);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "future"));
	ck_assert_int_eq(parse("station,time,stage_m,flow_m3s\n" RIVER ",\"2026\",262,\n"), -EBADMSG);
	ck_assert_int_eq(parse(""), -EBADMSG);
	ck_assert_uint_eq(wf_adapter_sink_count(sink), 0);
}
END_TEST

START_TEST(oversized)
{
	size_t n = WATER_MAX_FILE + 1;
	char *big = malloc(n);
	char *line = malloc(WF_FEED_LINE_MAX + 64);

	memset(big, '#', n);
	big[n - 1] = '\n';
	ck_assert_int_eq(wf_water_ops.parse(st, "big", (uint8_t *)big, n, NOW, sink), -EFBIG);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "too large"));
	/* one overlong line */
	strcpy(line, "station,time,stage_m,flow_m3s\n");
	size_t l = strlen(line);
	memset(line + l, 'A', WF_FEED_LINE_MAX + 1);
	line[l + WF_FEED_LINE_MAX + 1] = '\n';
	line[l + WF_FEED_LINE_MAX + 2] = '\0';
	ck_assert_int_eq(parse(line), -E2BIG);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "line 2: too long"));
	free(line);
	free(big);
}
END_TEST

START_TEST(exercise_and_fixture)
{
	size_t len;
	char *buf = at_fixture("water/readings.csv", &len);

	ck_assert_int_eq(wf_water_ops.parse(st, "readings.csv", (uint8_t *)buf, len, NOW, sink), 0);
	/* gauge: 09:00 blue + rise, 10:00 yellow UPDATE + rise; reservoir:
	 * 10:00 over 汛限 (yellow) + rise 0.5 m/h */
	ck_assert_uint_eq(wf_adapter_sink_count(sink), 6);
	at_check_events(WF__V1__AGENCY__AGENCY_WATER);
	free(buf);
	load_state();
	ck_assert_int_eq(parse("#status=exercise\nstation,time,stage_m,flow_m3s\n" RIVER ",2026-07-20T09:00:00+08:00,263,\n"), 0);
	ck_assert_int_eq(at_get(NULL)->status, WF__V1__STATUS__STATUS_EXERCISE);
	ck_assert_int_eq(parse("#status=drill\nstation,time,stage_m,flow_m3s\n"), -EBADMSG);
}
END_TEST

START_TEST(utf8_forms)
{
	static const char *const bad[] = {
		"\xc0\x80",         /* overlong NUL */
		"\xe0\x80\xaf",     /* overlong '/' */
		"\xed\xa0\x80",     /* surrogate U+D800 */
		"\xf4\x90\x80\x80", /* above U+10FFFF */
		"\xc2\x85",         /* C1 control NEL */
		"\xe5\x91",         /* cut sequence */
		"\xff",
	};
	char csv[256];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(csv, sizeof csv, "# %s\nstation,time,stage_m,flow_m3s\n", bad[i]);
		ck_assert_int_eq(parse(csv), -EILSEQ);
	}
	/* a BOM, CRLF and Chinese comments are fine */
	ck_assert_int_eq(parse("\xef\xbb\xbf# 告成\r\nstation,time,stage_m,flow_m3s\r\n"
			       RIVER ",2026-07-20T09:00:00+08:00,263,\r\n"), 0);
	ck_assert_uint_eq(wf_adapter_sink_count(sink), 1);
}
END_TEST

static int conf(const char *text, char *err, size_t size)
{
	struct water_state *s = NULL;
	int r = water_config_load_string("w.conf", text, regions, &s, err, size);
	water_config_free(s);
	return r;
}

START_TEST(config_errors)
{
	char err[512];

	ck_assert_int_eq(conf("[water]\napproach_m = 0.3\n", err, sizeof err), 0);
	ck_assert_int_lt(conf("[adapter]\nx=1\n[water]\n\nbogus = 1\n", err, sizeof err), 0);
	ck_assert_str_eq(err, "w.conf:5: unknown key 'bogus' in [water]");
	ck_assert_int_lt(conf("[water]\nrise_rate = abc\n", err, sizeof err), 0);
	ck_assert_str_eq(err, "w.conf:2: rise_rate: 'abc' is not a finite number");
	ck_assert_int_lt(conf("[water.station A1]\nregion = 419999\n", err, sizeof err), 0);
	ck_assert_str_eq(err, "w.conf:2: region: 419999 is not in the region table");
	ck_assert_int_lt(conf("[water.station A1]\nwarning_stage = 10\n", err, sizeof err), 0);
	ck_assert_str_eq(err, "w.conf: [water.station A1]: region missing");
	ck_assert_int_lt(conf("[water.station A1]\nregion=410185\nwarning_stage = 10\nguaranteed_stage = 9\n", err, sizeof err), 0);
	ck_assert_ptr_nonnull(strstr(err, "warning_stage < guaranteed_stage"));
	ck_assert_int_lt(conf("[water.station A/1]\nregion=410185\n", err, sizeof err), 0);
	ck_assert_ptr_nonnull(strstr(err, "w.conf:2:"));
	ck_assert_int_lt(conf("[water.station R]\nregion=410185\nkind=reservoir\n", err, sizeof err), 0);
	ck_assert_ptr_nonnull(strstr(err, "flood_limit"));
	ck_assert_int_lt(conf("[waterx]\na=1\n[water.gauge X]\nb=2\n", err, sizeof err), 0);
	ck_assert_str_eq(err, "w.conf:4: unknown section [water.gauge X] (expected [water] or [water.station ID])");
	void *s = NULL;
	ck_assert_int_eq(wf_water_ops.config_load("/nonexistent/w.conf", regions, &s, err, sizeof err), -ENOENT);
	ck_assert_str_eq(err, "/nonexistent/w.conf: No such file or directory");
	ck_assert_int_eq(wf_water_ops.config_load(NULL, regions, &s, err, sizeof err), 0);
	wf_water_ops.config_free(s);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("water");
	TCase *tc = tcase_create("water");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, stage_boundaries);
	tcase_add_test(tc, flow_boundaries);
	tcase_add_test(tc, reservoir_boundaries);
	tcase_add_test(tc, low_water_boundaries);
	tcase_add_test(tc, trend_and_chain_across_files);
	tcase_add_test(tc, duplicates);
	tcase_add_test(tc, rejections);
	tcase_add_test(tc, oversized);
	tcase_add_test(tc, exercise_and_fixture);
	tcase_add_test(tc, utf8_forms);
	tcase_add_test(tc, config_errors);
	suite_add_tcase(su, tc);
	sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	(void)unlink;
	return failed ? 1 : 0;
}
