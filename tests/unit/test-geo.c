/* wf-geo: risk-forecast levels and chains, slope-sensor rate and
 * acceleration boundaries across files, and the rejections. */
#include "agency-test.h"
#include "geo.h"

static void *st;

static void load_text(const char *extra)
{
	char path[1024], err[512] = "";
	size_t len;
	char *base, *text;

	if (st)
		geo_config_free(st);
	st = NULL;
	snprintf(path, sizeof path, "geo/geo.conf");
	base = at_fixture(path, &len);
	text = malloc(len + strlen(extra) + 1);
	strcpy(text, base);
	strcat(text, extra);
	struct geo_state *s = NULL;
	ck_assert_msg(geo_config_load_string("geo.conf", text, regions, &s, err, sizeof err) == 0,
		      "%s", err);
	st = s;
	free(base);
	free(text);
}

static void setup(void)
{
	at_setup();
	load_text("");
}

static void teardown(void)
{
	geo_config_free(st);
	st = NULL;
	at_teardown();
}

static int parse(const char *csv)
{
	wf_adapter_sink_reset(sink);
	return wf_geo_ops.parse(st, "t.csv", (const uint8_t *)csv, strlen(csv), NOW, sink);
}

#define SH "sensor,time,displacement_mm,crack_mm,rain_24h_mm\n"
#define RH "zone,region,issued,valid_from,valid_to,level\n"

/* Velocity of a 24-hour displacement of D mm on a fresh state. */
static int velocity(const char *d)
{
	char csv[256];

	load_text("");
	ck_assert_int_eq(parse(SH "DF-GNSS-01,2026-07-19T11:00:00+08:00,100,,\n"), 0);
	snprintf(csv, sizeof csv, SH "DF-GNSS-01,2026-07-20T11:00:00+08:00,%s,,\n", d);
	ck_assert_msg(parse(csv) == 0, "%s", wf_adapter_sink_reason_text(sink));
	at_check_events(WF__V1__AGENCY__AGENCY_GEO);
	return at_level("displacement_rate");
}

START_TEST(velocity_boundaries)
{
	ck_assert_int_eq(velocity("101.99"), -1);
	ck_assert_int_eq(velocity("102"), WF__V1__LEVEL__LEVEL_IV);
	ck_assert_int_eq(velocity("104.99"), WF__V1__LEVEL__LEVEL_IV);
	ck_assert_int_eq(velocity("105"), WF__V1__LEVEL__LEVEL_III);
	ck_assert_int_eq(velocity("110"), WF__V1__LEVEL__LEVEL_II);
	ck_assert_int_eq(velocity("119.99"), WF__V1__LEVEL__LEVEL_II);
	ck_assert_int_eq(velocity("120"), WF__V1__LEVEL__LEVEL_I);
	const Wf__V1__Event *e = at_get("displacement_rate");
	ck_assert_int_eq(e->hazard, WF__V1__HAZARD__HAZARD_LANDSLIDE);
	ck_assert_str_eq(e->measurement->unit, "mm/d");
	ck_assert_double_eq_tol(e->measurement->value, 20, 1e-9);
	ck_assert_str_eq(e->region, "410185105000");
	ck_assert_str_eq(e->id, "geo:DF-GNSS-01:20260720T030000Z:displacement_rate");
	ck_assert_ptr_nonnull(e->point);
}
END_TEST

/* Three daily readings in three files: 0, 3, 3 + 3 + A mm. */
static int accel(const char *third)
{
	char csv[256];

	load_text("");
	ck_assert_int_eq(parse(SH "DF-GNSS-01,2026-07-18T11:00:00+08:00,0,,\n"), 0);
	ck_assert_int_eq(parse(SH "DF-GNSS-01,2026-07-19T11:00:00+08:00,3,,\n"), 0);
	ck_assert_int_eq(at_level("displacement_rate"), WF__V1__LEVEL__LEVEL_IV);
	ck_assert_int_eq(at_level("displacement_accel"), -1); /* no earlier velocity */
	snprintf(csv, sizeof csv, SH "DF-GNSS-01,2026-07-20T11:00:00+08:00,%s,,\n", third);
	ck_assert_int_eq(parse(csv), 0);
	return at_level("displacement_accel");
}

START_TEST(acceleration_across_files)
{
	ck_assert_int_eq(accel("6.99"), -1);                  /* 0.99 mm/d2 */
	ck_assert_int_eq(accel("7"), WF__V1__LEVEL__LEVEL_II); /* 1.00 mm/d2 */
	ck_assert_int_eq(accel("9"), WF__V1__LEVEL__LEVEL_II);
	const Wf__V1__Event *e = at_get("displacement_accel");
	ck_assert_str_eq(e->measurement->unit, "mm/d2");
	ck_assert_double_eq_tol(e->measurement->value, 3, 1e-9);
	ck_assert_double_eq_tol(e->measurement->threshold, 1, 1e-9);
	/* decelerating: no accel event */
	ck_assert_int_eq(accel("5"), -1);
}
END_TEST

START_TEST(crack_and_rain)
{
	/* DF-CRK-02 overrides crack_rate_blue = 0.5; 6 hours apart */
	ck_assert_int_eq(parse(SH "DF-CRK-02,2026-07-20T05:00:00+08:00,,10.0,49.9\n"), 0);
	ck_assert_uint_eq(wf_adapter_sink_count(sink), 0);
	ck_assert_int_eq(parse(SH "DF-CRK-02,2026-07-20T11:00:00+08:00,,10.125,50\n"), 0);
	ck_assert_int_eq(at_level("crack_rate"), WF__V1__LEVEL__LEVEL_IV); /* 0.5 mm/d */
	ck_assert_int_eq(at_level("rain_24h"), WF__V1__LEVEL__LEVEL_IV);
	ck_assert_int_eq(at_get(NULL)->hazard, WF__V1__HAZARD__HAZARD_COLLAPSE);
	ck_assert_int_eq(parse(SH "DF-CRK-02,2026-07-20T11:30:00+08:00,,,250\n"), 0);
	ck_assert_int_eq(at_level("rain_24h"), WF__V1__LEVEL__LEVEL_I);
	ck_assert_int_eq(parse(SH "DF-CRK-02,2026-07-20T11:40:00+08:00,,,249.9\n"), 0);
	ck_assert_int_eq(at_level("rain_24h"), WF__V1__LEVEL__LEVEL_II);
	/* readings closer than min_interval (10 min) give no rate */
	load_text("");
	ck_assert_int_eq(parse(SH "DF-CRK-02,2026-07-20T11:00:00+08:00,,10,\n"
			       "DF-CRK-02,2026-07-20T11:05:00+08:00,,20,\n"), 0);
	ck_assert_uint_eq(wf_adapter_sink_count(sink), 0);
}
END_TEST

START_TEST(risk_levels_and_chain)
{
	size_t len;
	char *buf = at_fixture("geo/risk.csv", &len);
	const Wf__V1__Event *e;
	char id[128];

	ck_assert_int_eq(wf_geo_ops.parse(st, "risk.csv", (uint8_t *)buf, len, NOW, sink), 0);
	free(buf);
	ck_assert_uint_eq(wf_adapter_sink_count(sink), 3);
	at_check_events(WF__V1__AGENCY__AGENCY_GEO);
	for (size_t i = 0; i < 3; i++) {
		e = wf_adapter_sink_event(sink, i);
		ck_assert_int_eq(e->hazard, WF__V1__HAZARD__HAZARD_GEO_RISK);
		ck_assert_int_eq(e->level, (int)e->measurement->value); /* 4 blue .. 1 red */
		ck_assert_int_eq(e->expires_ms, 1784635200000LL);       /* valid_to */
	}
	/* an upgrade of DF-S (3 -> 2), then lifted */
	e = NULL;
	for (size_t i = 0; i < 3; i++)
		if (strcmp(wf_adapter_sink_event(sink, i)->station, "DF-S") == 0)
			e = wf_adapter_sink_event(sink, i);
	ck_assert_ptr_nonnull(e);
	snprintf(id, sizeof id, "%s", e->id);
	ck_assert_str_eq(id, "geo:risk:DF-S:20260720T120000Z:20260720T020000Z");
	ck_assert_int_eq(parse(RH "DF-S,410185204000,2026-07-20T11:00:00+08:00,2026-07-20T20:00:00+08:00,2026-07-21T20:00:00+08:00,2\n"), 0);
	e = at_get(NULL);
	ck_assert_int_eq(e->msg_type, WF__V1__MSG_TYPE__MSG_TYPE_UPDATE);
	ck_assert_int_eq(e->level, WF__V1__LEVEL__LEVEL_II);
	ck_assert_str_eq(e->references[0], id);
	snprintf(id, sizeof id, "%s", e->id);
	ck_assert_int_eq(parse(RH "DF-S,410185204000,2026-07-20T11:30:00+08:00,2026-07-20T20:00:00+08:00,2026-07-21T20:00:00+08:00,0\n"), 0);
	e = at_get(NULL);
	ck_assert_int_eq(e->msg_type, WF__V1__MSG_TYPE__MSG_TYPE_CANCEL);
	ck_assert_str_eq(e->references[0], id);
	at_check_events(WF__V1__AGENCY__AGENCY_GEO);
	/* a lift of something never seen emits nothing */
	ck_assert_int_eq(parse(RH "DF-X,410185,2026-07-20T11:30:00+08:00,2026-07-20T20:00:00+08:00,2026-07-21T20:00:00+08:00,0\n"), 0);
	ck_assert_uint_eq(wf_adapter_sink_count(sink), 0);
}
END_TEST

START_TEST(risk_schemes)
{
	const char *row5 = RH "Z1,410185,2026-07-20T10:00:00+08:00,2026-07-20T20:00:00+08:00,2026-07-21T20:00:00+08:00,5\n";
	const char *row2 = RH "Z1,410185,2026-07-20T10:00:00+08:00,2026-07-20T20:00:00+08:00,2026-07-21T20:00:00+08:00,2\n";
	const char *row4 = RH "Z1,410185,2026-07-20T10:00:00+08:00,2026-07-20T20:00:00+08:00,2026-07-21T20:00:00+08:00,4\n";

	ck_assert_int_eq(parse(row5), -EINVAL); /* 5 is not a current level */
	load_text("[geo]\nlevel_scheme = legacy5\n");
	ck_assert_int_eq(parse(row5), 0);
	ck_assert_int_eq(at_level("geo_risk_grade5"), WF__V1__LEVEL__LEVEL_I);
	load_text("[geo]\nlevel_scheme = legacy5\n");
	ck_assert_int_eq(parse(row2), 0); /* grades 1-2 were not issued */
	ck_assert_uint_eq(wf_adapter_sink_count(sink), 0);
	load_text("[geo]\nmin_level = yellow\n");
	ck_assert_int_eq(parse(row4), 0); /* blue not published */
	ck_assert_uint_eq(wf_adapter_sink_count(sink), 0);
}
END_TEST

START_TEST(duplicates)
{
	const char *f = SH "DF-GNSS-01,2026-07-19T11:00:00+08:00,0,,60\n"
			   "DF-GNSS-01,2026-07-19T11:00:00+08:00,0,,60\n";

	ck_assert_int_eq(parse(f), 0);
	ck_assert_uint_eq(wf_adapter_sink_count(sink), 1);
	ck_assert_int_eq(parse(f), 0); /* duplicate file */
	ck_assert_uint_eq(wf_adapter_sink_count(sink), 0);
	ck_assert_int_eq(parse(SH "DF-GNSS-01,2026-07-19T11:00:00+08:00,1,,60\n"), -EINVAL);
	ck_assert_int_eq(parse(SH "DF-GNSS-01,2026-07-20T11:00:00+08:00,0,,60\n"
				  "DF-GNSS-01,2026-07-20T11:00:00+08:00,0,,61\n"), -EINVAL);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "line 3"));
	const char *r = RH "Z1,410185,2026-07-20T10:00:00+08:00,2026-07-20T20:00:00+08:00,2026-07-21T20:00:00+08:00,3\n";
	ck_assert_int_eq(parse(r), 0);
	ck_assert_uint_eq(wf_adapter_sink_count(sink), 1);
	ck_assert_int_eq(parse(r), 0);
	ck_assert_uint_eq(wf_adapter_sink_count(sink), 0);
}
END_TEST

START_TEST(rejections)
{
	size_t len;
	char *buf;

	buf = at_fixture("geo/truncated.csv", &len);
	ck_assert_int_eq(wf_geo_ops.parse(st, "x", (uint8_t *)buf, len, NOW, sink), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "truncated"));
	free(buf);
	wf_adapter_sink_reset(sink);
	buf = at_fixture("geo/gbk.csv", &len);
	ck_assert_int_eq(wf_geo_ops.parse(st, "x", (uint8_t *)buf, len, NOW, sink), -EILSEQ);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "line 3"));
	free(buf);
	ck_assert_int_eq(parse(SH "GHOST,2026-07-20T11:00:00+08:00,1,,\n"), -ENOENT);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "unknown sensor 'GHOST'"));
	ck_assert_int_eq(parse("station,time\nx,y\n"), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "unknown feed"));
	ck_assert_int_eq(parse(RH "Z1,419999,2026-07-20T10:00:00+08:00,2026-07-20T20:00:00+08:00,2026-07-21T20:00:00+08:00,3\n"), -EINVAL);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "not in the region table"));
	ck_assert_int_eq(parse(RH "Z1,410185,2026-07-20T10:00:00+08:00,2026-07-21T20:00:00+08:00,2026-07-20T20:00:00+08:00,3\n"), -EINVAL);
	ck_assert_int_eq(parse(RH "Z1,410185,2026-07-20T10:00:00+08:00,2026-07-20T20:00:00+08:00\n"), -EBADMSG);
	ck_assert_int_eq(parse(SH "DF-GNSS-01,2026-07-20T11:00:00+08:00,inf,,\n"), -EINVAL);
	ck_assert_int_eq(parse(SH "DF-GNSS-01,2026-07-20T11:00:00+08:00,,,3000\n"), -EINVAL);
	ck_assert_int_eq(parse(SH "DF-GNSS-01,2026-07-20T11:00:00+08:00,,,\n"), -EINVAL);
	size_t n = GEO_MAX_FILE + 1;
	char *big = malloc(n);
	memset(big, '\n', n);
	ck_assert_int_eq(wf_geo_ops.parse(st, "big", (uint8_t *)big, n, NOW, sink), -EFBIG);
	free(big);
}
END_TEST

static int conf(const char *text, char *err, size_t size)
{
	struct geo_state *s = NULL;
	int r = geo_config_load_string("g.conf", text, regions, &s, err, size);
	geo_config_free(s);
	return r;
}

START_TEST(config_errors)
{
	char err[512];

	ck_assert_int_lt(conf("[geo]\nvelocity_purple = 3\n", err, sizeof err), 0);
	ck_assert_str_eq(err, "g.conf:2: unknown key 'velocity_purple' in [geo]");
	ck_assert_int_lt(conf("[geo]\nvelocity_blue = 30\n", err, sizeof err), 0);
	ck_assert_ptr_nonnull(strstr(err, "must increase"));
	ck_assert_int_lt(conf("\n[geo.sensor S1]\nregion = 410185\nhazard = volcano\n", err, sizeof err), 0);
	ck_assert_str_eq(err, "g.conf:4: hazard: must be landslide, debris_flow, collapse or subsidence");
	ck_assert_int_lt(conf("[geo]\naccel_level = purple\n", err, sizeof err), 0);
	ck_assert_ptr_nonnull(strstr(err, "g.conf:2:"));
	ck_assert_int_lt(conf("[geo.sensor S1]\nlat = 34\n", err, sizeof err), 0);
	ck_assert_str_eq(err, "g.conf: [geo.sensor S1]: region missing");
	ck_assert_int_eq(conf("[mqtt]\nhost = x\n[geo]\nvalidity = 12h\n", err, sizeof err), 0);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("geo");
	TCase *tc = tcase_create("geo");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, velocity_boundaries);
	tcase_add_test(tc, acceleration_across_files);
	tcase_add_test(tc, crack_and_rain);
	tcase_add_test(tc, risk_levels_and_chain);
	tcase_add_test(tc, risk_schemes);
	tcase_add_test(tc, duplicates);
	tcase_add_test(tc, rejections);
	tcase_add_test(tc, config_errors);
	suite_add_tcase(su, tc);
	sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
