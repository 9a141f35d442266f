/* wf-fire: danger-level mapping with per-region overrides, hotspot areas
 * and confidence, 119 incident grades and lifecycle, and the rejections. */
#include "agency-test.h"
#include "fire.h"

static void *st;

static void load(const char *extra)
{
	size_t len;
	char err[512] = "";
	char *base = at_fixture("fire/fire.conf", &len);
	char *text = malloc(len + strlen(extra) + 1);
	struct fire_state *s = NULL;

	strcpy(text, base);
	strcat(text, extra);
	if (st)
		fire_config_free(st);
	ck_assert_msg(fire_config_load_string("fire.conf", text, regions, &s, err, sizeof err) == 0,
		      "%s", err);
	st = s;
	free(base);
	free(text);
}

static void setup(void)
{
	at_setup();
	st = NULL;
	load("");
}

static void teardown(void)
{
	fire_config_free(st);
	st = NULL;
	at_teardown();
}

static int parse(const char *csv)
{
	wf_adapter_sink_reset(sink);
	int r = wf_fire_ops.parse(st, "t.csv", (const uint8_t *)csv, strlen(csv), NOW, sink);
	if (r == 0)
		at_check_events(WF__V1__AGENCY__AGENCY_FIRE);
	return r;
}

#define DH "region,issued,valid_to,danger\n"
#define HH "hotspot,time,lat,lon,confidence,source\n"
#define IH "incident,time,region,type,status,area_ha,deaths,injured,text\n"

static int danger(const char *region, int level)
{
	char csv[256];
	snprintf(csv, sizeof csv, DH "%s,2026-07-20T08:00:00+08:00,2026-07-21T08:00:00+08:00,%d\n",
		 region, level);
	ck_assert_int_eq(parse(csv), 0);
	return at_level("fire_danger_level");
}

START_TEST(danger_mapping)
{
	/* [fire]: 3/4/5 -> yellow/orange/red (CMA-style) in 中牟县 */
	ck_assert_int_eq(danger("410122", 1), -1);
	ck_assert_int_eq(danger("410122", 2), -1);
	ck_assert_int_eq(danger("410122", 3), WF__V1__LEVEL__LEVEL_III);
	ck_assert_int_eq(danger("410122", 4), WF__V1__LEVEL__LEVEL_II);
	ck_assert_int_eq(danger("410122", 5), WF__V1__LEVEL__LEVEL_I);
	/* the 登封 override adds blue at 2, and applies to its townships */
	ck_assert_int_eq(danger("410185", 1), -1);
	ck_assert_int_eq(danger("410185", 2), WF__V1__LEVEL__LEVEL_IV);
	ck_assert_int_eq(danger("410185105000", 2), WF__V1__LEVEL__LEVEL_IV);
	ck_assert_int_eq(danger("410185", 4), WF__V1__LEVEL__LEVEL_II);
	/* a township section is more specific than its county's, whatever the order */
	load("[fire.region 410185105000]\nlevel2 = none\nlevel3 = orange\n");
	ck_assert_int_eq(danger("410185105000", 2), -1);
	ck_assert_int_eq(danger("410185105000", 3), WF__V1__LEVEL__LEVEL_II);
	ck_assert_int_eq(danger("410185204000", 2), WF__V1__LEVEL__LEVEL_IV);
	ck_assert_int_eq(danger("410185", 4), WF__V1__LEVEL__LEVEL_II);
	const Wf__V1__Event *e = at_get(NULL);
	ck_assert_int_eq(e->hazard, WF__V1__HAZARD__HAZARD_FIRE_DANGER);
	ck_assert_int_eq(e->expires_ms, 1784592000000LL);
	ck_assert_str_eq(e->id, "fire:danger:410185000000:20260720T000000Z");
	ck_assert_int_eq(parse(DH "410185,2026-07-20T08:00:00+08:00,2026-07-21T08:00:00+08:00,6\n"), -EINVAL);
	ck_assert_int_eq(parse(DH "410185,2026-07-20T08:00:00+08:00,2026-07-20T07:00:00+08:00,3\n"), -EINVAL);
}
END_TEST

START_TEST(hotspots)
{
	const Wf__V1__Event *e;

	/* confidence 49.9 ignored, 50 possible, 80 likely; smallest box wins */
	ck_assert_int_eq(parse(HH "H1,2026-07-20T10:20:00+08:00,34.50,113.00,49.9,FY3D\n"), 0);
	ck_assert_uint_eq(wf_adapter_sink_count(sink), 0);
	ck_assert_int_eq(parse(HH "H1,2026-07-20T10:20:00+08:00,34.50,113.00,50,FY3D\n"), 0);
	e = at_get("hotspot_confidence");
	ck_assert_int_eq(e->certainty, WF__V1__CERTAINTY__CERTAINTY_POSSIBLE);
	ck_assert_str_eq(e->region, "410185001000");
	ck_assert_ptr_nonnull(e->point);
	ck_assert_double_eq(e->point->lat, 34.50);
	ck_assert_int_eq(e->hazard, WF__V1__HAZARD__HAZARD_HOTSPOT);
	ck_assert_int_eq(parse(HH "H2,2026-07-20T10:20:00+08:00,34.30,112.80,80,NOAA20\n"), 0);
	e = at_get(NULL);
	ck_assert_int_eq(e->certainty, WF__V1__CERTAINTY__CERTAINTY_LIKELY);
	ck_assert_str_eq(e->region, "410185000000");
	/* outside every configured area: not ours */
	ck_assert_int_eq(parse(HH "H3,2026-07-20T10:20:00+08:00,30.00,110.00,95,FY3D\n"), 0);
	ck_assert_uint_eq(wf_adapter_sink_count(sink), 0);
	ck_assert_int_eq(parse(HH "H4,2026-07-20T10:20:00+08:00,95,113,95,FY3D\n"), -EINVAL);
	ck_assert_int_eq(parse(HH "H4,2026-07-20T10:20:00+08:00,34.5,113,101,FY3D\n"), -EINVAL);
}
END_TEST

static int grade(const char *type, const char *area, const char *deaths, const char *injured)
{
	char csv[256];
	snprintf(csv, sizeof csv, IH "F1,2026-07-20T10:00:00+08:00,410185,%s,new,%s,%s,%s,\n", type,
		 area, deaths, injured);
	ck_assert_msg(parse(csv) == 0, "%s", wf_adapter_sink_reason_text(sink));
	return (int)at_get(NULL)->level;
}

START_TEST(incident_grades)
{
	/* 森林防火条例 Art. 40: area 1 / 100 / 1000 ha, deaths 3/10/30, injured 10/50/100 */
	ck_assert_int_eq(grade("forest", "0.99", "0", "0"), WF__V1__LEVEL__LEVEL_IV);
	ck_assert_int_eq(grade("forest", "1", "0", "0"), WF__V1__LEVEL__LEVEL_III);
	ck_assert_int_eq(grade("forest", "99.9", "0", "0"), WF__V1__LEVEL__LEVEL_III);
	ck_assert_int_eq(grade("forest", "100", "0", "0"), WF__V1__LEVEL__LEVEL_II);
	ck_assert_int_eq(grade("grassland", "1000", "0", "0"), WF__V1__LEVEL__LEVEL_I);
	ck_assert_int_eq(grade("urban", "", "2", "9"), WF__V1__LEVEL__LEVEL_IV);
	ck_assert_int_eq(grade("urban", "", "3", "0"), WF__V1__LEVEL__LEVEL_III);
	ck_assert_int_eq(grade("hazmat", "", "0", "50"), WF__V1__LEVEL__LEVEL_II);
	ck_assert_int_eq(at_get(NULL)->hazard, WF__V1__HAZARD__HAZARD_HAZMAT);
	ck_assert_int_eq(grade("explosion", "", "30", "0"), WF__V1__LEVEL__LEVEL_I);
	ck_assert_int_eq(at_get(NULL)->hazard, WF__V1__HAZARD__HAZARD_EXPLOSION);
	/* urban fires are not graded by area */
	ck_assert_int_eq(grade("urban", "5000", "0", "0"), WF__V1__LEVEL__LEVEL_IV);
}
END_TEST

START_TEST(incident_lifecycle)
{
	const Wf__V1__Event *e;

	ck_assert_int_eq(parse(IH "F119-0720-01,2026-07-20T10:00:00+08:00,410185204000,forest,new,0.5,0,0,石道乡 山林起火\n"), 0);
	e = at_get(NULL);
	ck_assert_str_eq(e->id, "fire:119:F119-0720-01");
	ck_assert_int_eq(e->msg_type, WF__V1__MSG_TYPE__MSG_TYPE_ALERT);
	ck_assert_ptr_nonnull(strstr(e->text, "石道乡"));
	ck_assert_int_eq(parse(IH "F119-0720-01,2026-07-20T11:00:00+08:00,410185204000,forest,update,12,0,0,\n"
			       "F119-0720-01,2026-07-20T11:50:00+08:00,410185204000,forest,closed,12,0,0,明火扑灭\n"), 0);
	ck_assert_uint_eq(wf_adapter_sink_count(sink), 2);
	for (size_t i = 0; i < 2; i++) {
		e = wf_adapter_sink_event(sink, i);
		ck_assert_str_eq(e->references[0], "fire:119:F119-0720-01");
	}
	ck_assert_int_eq(wf_adapter_sink_event(sink, 0)->msg_type, WF__V1__MSG_TYPE__MSG_TYPE_UPDATE);
	ck_assert_int_eq(wf_adapter_sink_event(sink, 0)->level, WF__V1__LEVEL__LEVEL_III);
	ck_assert_int_eq(wf_adapter_sink_event(sink, 1)->msg_type, WF__V1__MSG_TYPE__MSG_TYPE_CANCEL);
	ck_assert_str_eq(wf_adapter_sink_event(sink, 1)->id, "fire:119:F119-0720-01:20260720T035000Z");
	/* exercise */
	ck_assert_int_eq(parse("#status=exercise\n" IH "D1,2026-07-20T10:00:00+08:00,410185,urban,new,,0,0,演练\n"), 0);
	ck_assert_int_eq(at_get(NULL)->status, WF__V1__STATUS__STATUS_EXERCISE);
}
END_TEST

START_TEST(duplicates_and_rejections)
{
	size_t len;
	char *buf;
	const char *d = HH "H1,2026-07-20T10:20:00+08:00,34.50,113.00,90,FY3D\n";
	char twice[512];

	snprintf(twice, sizeof twice, "%s%s", d, strchr(d, '\n') + 1);
	ck_assert_int_eq(parse(twice), 0);
	ck_assert_uint_eq(wf_adapter_sink_count(sink), 1);
	ck_assert_int_eq(parse(HH "H1,2026-07-20T10:20:00+08:00,34.50,113.00,90,FY3D\n"
				  "H1,2026-07-20T10:20:00+08:00,34.51,113.00,90,FY3D\n"), -EINVAL);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "line 3"));
	buf = at_fixture("fire/truncated.csv", &len);
	ck_assert_int_eq(wf_fire_ops.parse(st, "x", (uint8_t *)buf, len, NOW, sink), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "truncated"));
	free(buf);
	buf = at_fixture("fire/gbk.csv", &len);
	ck_assert_int_eq(wf_fire_ops.parse(st, "x", (uint8_t *)buf, len, NOW, sink), -EILSEQ);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "GBK"));
	free(buf);
	ck_assert_int_eq(parse(IH "F1,2026-07-20T10:00:00+08:00,410185,volcano,new,,0,0,\n"), -EINVAL);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "type: unknown value"));
	ck_assert_int_eq(parse(IH "F1,2026-07-20T10:00:00+08:00,999999,forest,new,,0,0,\n"), -EINVAL);
	ck_assert_int_eq(parse(IH "F1,2026-07-20T10:00:00+08:00,410185,forest,new,,0,0\n"), -EBADMSG);
	ck_assert_int_eq(parse(IH "F1 x,2026-07-20T10:00:00+08:00,410185,forest,new,,0,0,\n"), -EINVAL);
	ck_assert_int_eq(parse("id,time\n"), -EBADMSG);
	size_t n = FIRE_MAX_FILE + 1;
	char *big = malloc(n);
	memset(big, '\n', n);
	ck_assert_int_eq(wf_fire_ops.parse(st, "big", (uint8_t *)big, n, NOW, sink), -EFBIG);
	free(big);
}
END_TEST

START_TEST(config_errors)
{
	char err[512];
	struct fire_state *s = NULL;

	ck_assert_int_lt(fire_config_load_string("f.conf", "[fire]\nlevel6 = red\n", regions, &s, err, sizeof err), 0);
	ck_assert_str_eq(err, "f.conf:2: unknown key 'level6' in [fire]");
	ck_assert_int_lt(fire_config_load_string("f.conf", "[fire]\nlevel3 = amber\n", regions, &s, err, sizeof err), 0);
	ck_assert_str_eq(err, "f.conf:2: level3: must be none, blue, yellow, orange or red");
	ck_assert_int_lt(fire_config_load_string("f.conf", "[fire.region 419999]\nlevel2 = blue\n", regions, &s, err, sizeof err), 0);
	ck_assert_ptr_nonnull(strstr(err, "f.conf:2: [fire.region 419999]: region not in the region table"));
	ck_assert_int_lt(fire_config_load_string("f.conf", "[fire.area A]\nregion = 410185\nlat_min = 35\nlat_max = 34\nlon_min = 1\nlon_max = 2\n", regions, &s, err, sizeof err), 0);
	ck_assert_str_eq(err, "f.conf: [fire.area A]: need lat_min < lat_max and lon_min < lon_max");
	ck_assert_ptr_null(s);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("fire");
	TCase *tc = tcase_create("fire");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, danger_mapping);
	tcase_add_test(tc, hotspots);
	tcase_add_test(tc, incident_grades);
	tcase_add_test(tc, incident_lifecycle);
	tcase_add_test(tc, duplicates_and_rejections);
	tcase_add_test(tc, config_errors);
	suite_add_tcase(su, tc);
	sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
