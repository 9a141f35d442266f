/* wf-met AWS CSV: threshold boundaries, rolling windows, overrides, and the
 * rejections (truncated, GBK bytes, unknown station). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "met.h"
#include "wf/clock.h"
#include "wf/region.h"

static struct wf_region_table *regions;
static struct met_state *st;
static struct wf_adapter_sink *sink;
static const int64_t NOW = 1626868800000LL; /* 2021-07-21T12:00:00Z */

static void *load_conf(const char *text)
{
	char path[] = "/tmp/wf-met-test-XXXXXX";
	char err[512] = "";
	void *s = NULL;
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	int r = met_config_load(path, regions, &s, err, sizeof err);
	unlink(path);
	ck_assert_msg(r == 0, "config: %s", err);
	return s;
}

static const char *CONF = "[met.stations]\n"
			  "57083 = 410102000000, 34.72, 113.65\n"
			  "57089 = 410105000000\n"
			  "[met.aws.region.410105]\nrain_3h_red = 120\n"
			  "[met.aws.station.57089]\nfog_yellow = 400\n";

static void setup(void)
{
	ck_assert_int_eq(wf_region_table_load(getenv("WF_REGIONS"), &regions, NULL), 0);
	st = load_conf(CONF);
	sink = wf_adapter_sink_new();
}

static void teardown(void)
{
	wf_adapter_sink_free(sink);
	met_config_free(st);
	wf_region_table_free(regions);
}

static int parse(const char *csv)
{
	wf_adapter_sink_reset(sink);
	return met_aws_parse(st, "t.csv", (const uint8_t *)csv, strlen(csv), NOW, sink);
}

/* The level of HAZARD among the events of the last parse, -1 if none. */
static int level_of(Wf__V1__Hazard hz, const char *station, const char *criterion)
{
	int lvl = -1;
	for (size_t i = 0; i < wf_adapter_sink_count(sink); i++) {
		const Wf__V1__Event *e = wf_adapter_sink_event(sink, i);
		if (e->hazard == hz && (!station || strcmp(e->station, station) == 0) &&
		    (!criterion || strcmp(e->measurement->criterion, criterion) == 0))
			lvl = e->level;
	}
	return lvl;
}

#define HDR "station,time,rain_mm,wind_mean_ms,wind_gust_ms,temp_c,visibility_m\n"

START_TEST(rain_3h_red_boundary)
{
	ck_assert_int_eq(parse(HDR "57083,2021-07-20T10:00:00Z,99.9,,,,\n"), 0);
	ck_assert_int_eq(level_of(WF__V1__HAZARD__HAZARD_RAINSTORM, NULL, NULL), WF__V1__LEVEL__LEVEL_II);
	ck_assert_int_eq(parse(HDR "57083,2021-07-20T11:00:00Z,0.1,,,,\n"), 0);
	ck_assert_int_eq(level_of(WF__V1__HAZARD__HAZARD_RAINSTORM, NULL, "rain_3h"), WF__V1__LEVEL__LEVEL_I);
	ck_assert_double_eq_tol(wf_adapter_sink_event(sink, 0)->measurement->value, 100.0, 1e-9);
}
END_TEST

START_TEST(rain_levels_each_boundary)
{
	/* 3 h: 49.9 -> nothing at 3 h, but 6 h/12 h windows decide */
	ck_assert_int_eq(parse(HDR "57083,2021-07-20T10:00:00Z,49.9,,,,\n"), 0);
	ck_assert_int_eq(level_of(WF__V1__HAZARD__HAZARD_RAINSTORM, NULL, NULL), -1);
	ck_assert_int_eq(parse(HDR "57083,2021-07-20T11:00:00Z,0.1,,,,\n"), 0);
	ck_assert_int_eq(level_of(WF__V1__HAZARD__HAZARD_RAINSTORM, NULL, NULL), WF__V1__LEVEL__LEVEL_II);
	/* 4 h later the 3 h window is empty, the 6 h one holds 50.0: yellow */
	ck_assert_int_eq(parse(HDR "57083,2021-07-20T14:00:00Z,0,,,,\n"), 0);
	ck_assert_int_eq(level_of(WF__V1__HAZARD__HAZARD_RAINSTORM, NULL, "rain_6h"), WF__V1__LEVEL__LEVEL_III);
	/* 10 h after: only the 12 h window: blue */
	ck_assert_int_eq(parse(HDR "57083,2021-07-20T20:00:00Z,0,,,,\n"), 0);
	ck_assert_int_eq(level_of(WF__V1__HAZARD__HAZARD_RAINSTORM, NULL, "rain_12h"), WF__V1__LEVEL__LEVEL_IV);
	/* exactly 12 h after the first record it has left the window (t - 12 h, t] */
	ck_assert_int_eq(parse(HDR "57083,2021-07-20T21:59:59Z,0,,,,\n"), 0);
	ck_assert_int_eq(level_of(WF__V1__HAZARD__HAZARD_RAINSTORM, NULL, NULL), WF__V1__LEVEL__LEVEL_IV);
	ck_assert_int_eq(parse(HDR "57083,2021-07-20T22:00:00Z,0,,,,\n"), 0);
	ck_assert_int_eq(level_of(WF__V1__HAZARD__HAZARD_RAINSTORM, NULL, NULL), -1);
}
END_TEST

START_TEST(region_override)
{
	/* 410105 raises red to 120 mm */
	ck_assert_int_eq(parse(HDR "57089,2021-07-20T10:00:00Z,119.9,,,,\n"), 0);
	ck_assert_int_eq(level_of(WF__V1__HAZARD__HAZARD_RAINSTORM, NULL, NULL), WF__V1__LEVEL__LEVEL_II);
	ck_assert_int_eq(parse(HDR "57089,2021-07-20T10:30:00Z,0.1,,,,\n"), 0);
	ck_assert_int_eq(level_of(WF__V1__HAZARD__HAZARD_RAINSTORM, NULL, NULL), WF__V1__LEVEL__LEVEL_I);
}
END_TEST

START_TEST(gale_boundaries)
{
	static const struct { const char *mean, *gust; int level; } cases[] = {
		{ "10.7", "13.8", -1 }, { "10.8", "", 4 }, { "", "13.9", 4 }, { "17.2", "", 3 },
		{ "", "20.8", 3 }, { "24.5", "", 2 }, { "", "28.5", 2 }, { "32.7", "", 1 },
		{ "", "37.0", 1 }, { "17.1", "20.7", 4 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char csv[256];
		snprintf(csv, sizeof csv, HDR "57083,2021-07-20T%02zu:00:00Z,,%s,%s,,\n", i, cases[i].mean,
			 cases[i].gust);
		ck_assert_int_eq(parse(csv), 0);
		ck_assert_msg(level_of(WF__V1__HAZARD__HAZARD_GALE, NULL, NULL) == cases[i].level,
			      "case %zu: level %d, want %d", i, level_of(WF__V1__HAZARD__HAZARD_GALE, NULL, NULL),
			      cases[i].level);
	}
}
END_TEST

START_TEST(fog_boundaries_and_station_override)
{
	ck_assert_int_eq(parse(HDR "57083,2021-07-20T01:00:00Z,,,,,500\n"), 0);
	ck_assert_int_eq(level_of(WF__V1__HAZARD__HAZARD_FOG, NULL, NULL), -1);
	ck_assert_int_eq(parse(HDR "57083,2021-07-20T02:00:00Z,,,,,499\n"), 0);
	ck_assert_int_eq(level_of(WF__V1__HAZARD__HAZARD_FOG, NULL, NULL), 3);
	ck_assert_int_eq(parse(HDR "57083,2021-07-20T03:00:00Z,,,,,199\n"), 0);
	ck_assert_int_eq(level_of(WF__V1__HAZARD__HAZARD_FOG, NULL, NULL), 2);
	ck_assert_int_eq(parse(HDR "57083,2021-07-20T04:00:00Z,,,,,49\n"), 0);
	ck_assert_int_eq(level_of(WF__V1__HAZARD__HAZARD_FOG, NULL, NULL), 1);
	/* 57089: fog_yellow = 400 */
	ck_assert_int_eq(parse(HDR "57089,2021-07-20T04:00:00Z,,,,,450\n"), 0);
	ck_assert_int_eq(level_of(WF__V1__HAZARD__HAZARD_FOG, NULL, NULL), -1);
}
END_TEST

START_TEST(heat_levels)
{
	ck_assert_int_eq(parse(HDR "57083,2021-07-18T06:00:00Z,,,,35.0,\n"
				   "57083,2021-07-19T06:00:00Z,,,,35.0,\n"), 0);
	ck_assert_int_eq(level_of(WF__V1__HAZARD__HAZARD_HEAT, NULL, NULL), -1);
	ck_assert_int_eq(parse(HDR "57083,2021-07-20T06:00:00Z,,,,35.0,\n"), 0);
	ck_assert_int_eq(level_of(WF__V1__HAZARD__HAZARD_HEAT, NULL, NULL), 3);
	ck_assert_int_eq(parse(HDR "57083,2021-07-20T07:00:00Z,,,,37.0,\n"), 0);
	ck_assert_int_eq(level_of(WF__V1__HAZARD__HAZARD_HEAT, NULL, NULL), 2);
	ck_assert_int_eq(parse(HDR "57083,2021-07-20T08:00:00Z,,,,39.9,\n"), 0);
	ck_assert_int_eq(level_of(WF__V1__HAZARD__HAZARD_HEAT, NULL, NULL), 2);
	ck_assert_int_eq(parse(HDR "57083,2021-07-20T09:00:00Z,,,,40.0,\n"), 0);
	ck_assert_int_eq(level_of(WF__V1__HAZARD__HAZARD_HEAT, NULL, NULL), 1);
}
END_TEST

START_TEST(cold_wave)
{
	/* yesterday's minimum 10, today 0 with 6-grade wind: drop 10 -> yellow */
	ck_assert_int_eq(parse(HDR "57083,2021-07-18T12:00:00Z,,5,,10,\n"
				   "57083,2021-07-19T12:00:00Z,,10.8,,0,\n"), 0);
	ck_assert_int_eq(level_of(WF__V1__HAZARD__HAZARD_COLD_WAVE, NULL, NULL), 3);
	ck_assert_int_eq(parse(HDR "57083,2021-07-19T13:00:00Z,,10.8,,-2,\n"), 0);
	ck_assert_int_eq(level_of(WF__V1__HAZARD__HAZARD_COLD_WAVE, NULL, NULL), 2);
}
END_TEST

START_TEST(rejections)
{
	ck_assert_int_lt(parse(HDR "57083,2021-07-20T10:00:00Z,1,,,,"), 0); /* no final newline */
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "truncated"));
	ck_assert_int_lt(parse(HDR "57083,2021-07-20T10:00:00Z,1\n"), 0); /* fields missing */
	ck_assert_int_lt(parse(HDR "99999,2021-07-20T10:00:00Z,1,,,,\n"), 0);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "unknown station"));
	/* GBK bytes of 郑州 in a comment-free field */
	ck_assert_int_eq(parse(HDR "57083,2021-07-20T10:00:00Z,1,,,,\xD6\xA3\xD6\xDD\n"), -EILSEQ);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "not UTF-8"));
	ck_assert_int_lt(parse(HDR "57083,2021-07-20T10:00:00Z,-1,,,,\n"), 0);
	ck_assert_int_lt(parse(HDR "57083,not-a-time,1,,,,\n"), 0);
	ck_assert_int_lt(parse(HDR "57083,2031-07-20T10:00:00Z,1,,,,\n"), 0); /* future */
	ck_assert_int_lt(parse(""), 0);
	ck_assert_uint_eq(wf_adapter_sink_count(sink), 0);
}
END_TEST

START_TEST(deterministic_ids)
{
	ck_assert_int_eq(parse(HDR "57083,2021-07-20T10:00:00Z,150,,,,\n"), 0);
	ck_assert_str_eq(wf_adapter_sink_event(sink, 0)->id, "met-aws-57083-20210720T100000Z-rainstorm");
	/* a re-sent record replaces, not adds */
	ck_assert_int_eq(parse(HDR "57083,2021-07-20T10:00:00Z,150,,,,\n"), 0);
	ck_assert_double_eq_tol(wf_adapter_sink_event(sink, 0)->measurement->value, 150.0, 1e-9);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("met-aws");
	TCase *tc = tcase_create("aws");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, rain_3h_red_boundary);
	tcase_add_test(tc, rain_levels_each_boundary);
	tcase_add_test(tc, region_override);
	tcase_add_test(tc, gale_boundaries);
	tcase_add_test(tc, fog_boundaries_and_station_override);
	tcase_add_test(tc, heat_levels);
	tcase_add_test(tc, cold_wave);
	tcase_add_test(tc, rejections);
	tcase_add_test(tc, deterministic_ids);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
