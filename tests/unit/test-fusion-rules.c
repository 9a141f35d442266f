/* Unit tests for the fusion rule file parser (services/fusion/rules.c). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

static char rules_path[512];

START_TEST(default_rules_load)
{
	struct wf_fusion_rules *r = NULL;
	char err[512] = "";
	ck_assert_msg(wf_fusion_rules_load(rules_path, &r, err, sizeof err) == 0, "%s", err);
	ck_assert_uint_eq(wf_fusion_rules_count(r), 12);
	wf_fusion_rules_free(r);
	ck_assert_ptr_null(wf_fusion_rules_free(NULL));
}
END_TEST

START_TEST(missing_file)
{
	struct wf_fusion_rules *r = NULL;
	char err[512];
	ck_assert_int_eq(wf_fusion_rules_load("/nonexistent/rules.conf", &r, err, sizeof err), -ENOENT);
	ck_assert_str_eq(err, "/nonexistent/rules.conf: No such file or directory");
	ck_assert_ptr_null(r);
}
END_TEST

static const struct {
	const char *text;
	const char *err;
} bad[] = {
	{ "[fusion]\narea = planet\n", "t.conf:2: bad area 'planet' (prefecture, county, township)" },
	{ "[fusion]\ndwell = soon\n", "t.conf:2: bad duration 'soon' (e.g. 30m, 6h, 1h30m)" },
	{ "[fusion]\nretain = 1d\n", "t.conf:2: retain must be at least 8d (the codec accepts events up to 7 days old, which must still be recognised as repeats)" },
	{ "[fusion]\nspeed = 3\n", "t.conf:2: unknown key 'speed' in [fusion] (area, dwell, retain, renew)" },
	{ "[fusion]\ndwell = 1m\ndwell = 2m\n", "t.conf:3: duplicate key 'dwell'" },
	{ "[nonsense]\n", "t.conf:1: unknown section [nonsense] (fusion, levels, rule ID)" },
	{ "key = value\n", "t.conf:1: key 'key' outside a section" },
	{ "[rule a b]\n", "t.conf:1: bad rule id 'a b' ([A-Za-z0-9._:-]{1,64})" },
	{ "[rule a]\nkind = direct\nhazards = *\n[rule a]\n", "t.conf:4: duplicate rule id 'a' (first at line 1)" },
	{ "[rule a]\nhazards = *\n", "t.conf:2: 'kind' must come first in a rule" },
	{ "[rule a]\nkind = magic\n", "t.conf:2: unknown kind 'magic' (direct, corroborate, chain, count)" },
	{ "[rule a]\nkind = direct\n", "t.conf:1: direct rule 'a' needs 'hazards'" },
	{ "[rule a]\nkind = chain\noutput = flood\nwhen = met:rainstorm\nwithin = 6h\nlevel = II\n",
	  "t.conf:1: chain rule 'a' needs 'output' and at least two 'when'" },
	{ "[rule a]\nkind = chain\nwhen = mars:rainstorm\n", "t.conf:3: unknown agency 'mars' (met, water, geo, fire, police)" },
	{ "[rule a]\nkind = chain\nwhen = met:rainstorm>=V\n", "t.conf:3: bad level 'V' (I, II, III, IV or a colour)" },
	{ "[rule a]\nkind = chain\nwhen = met:rainstorm,speed>=3\n", "t.conf:3: unknown term attribute 'speed>=3' (criterion=X, value>=N, over)" },
	{ "[rule a]\nkind = chain\noutput = monitoring_gap\n", "t.conf:3: bad output hazard 'monitoring_gap'" },
	{ "[rule a]\nkind = count\noutput = crowd\ncount = police:crowd\nmin = 1\n", "t.conf:5: bad number '1' (2..10000)" },
	{ "[rule a]\nkind = count\noutput = crowd\ncount = police:crowd\nmin = 3\nwithin = 1h\nin = township\n",
	  "t.conf:1: count rule 'a' needs 'level'" },
	{ "[fusion]\narea = township\n[rule a]\nkind = count\noutput = crowd\ncount = police:crowd\nmin = 3\nwithin = 1h\nin = county\nlevel = III\n",
	  "t.conf:3: count rule 'a': 'in' is coarser than [fusion] area" },
	{ "[rule a]\nkind = direct\nhazards = rain\n", "t.conf:3: unknown hazard 'rain'" },
	{ "[rule a]\nkind = direct\nhazards = *\nwhen = met:gale\n", "t.conf:4: unknown key 'when' for a direct rule" },
	{ "[levels]\nheat = III purple\n", "t.conf:2: bad level 'purple'" },
	{ "[rule source-liveness]\n", "t.conf:1: rule id 'source-liveness' is reserved" },
	{ "[rule a\n", "t.conf:1: bad section header" },
	{ "[rule a]\nkind\n", "t.conf:2: expected 'key = value'" },
};

START_TEST(bad_rules)
{
	struct wf_fusion_rules *r = NULL;
	char err[512];
	int rc = wf_fusion_rules_parse("t.conf", bad[_i].text, &r, err, sizeof err);
	ck_assert_int_eq(rc, -EINVAL);
	ck_assert_ptr_null(r);
	ck_assert_str_eq(err, bad[_i].err);
}
END_TEST

START_TEST(good_rules)
{
	static const char text[] =
		"# comment\n"
		"[fusion]\narea = township   # inline comment\ndwell = 1h30m\n"
		"[levels]\ndrought = orange red\n"
		"[rule d]\nkind = direct\nhazards = rainstorm, gale flood\nmin_level = blue\n"
		"[rule c]\nkind = corroborate\nhazards = *\n"
		"[rule ch]\nkind = chain\noutput = flood\nwhen = met:rainstorm>=IV | rainstorm\n"
		"when = water:flood,criterion=stage_warning,over | water:flood,value>=3.5\n"
		"within = 6h\nlevel = above 2\ninstruction = 转移\n"
		"[rule n]\nkind = count\noutput = crowd\ncount = police:crowd\nmin = 3\nwithin = 30m\nlevel = III\n";
	struct wf_fusion_rules *r = NULL;
	char err[512] = "";
	ck_assert_msg(wf_fusion_rules_parse("g.conf", text, &r, err, sizeof err) == 0, "%s", err);
	ck_assert_uint_eq(wf_fusion_rules_count(r), 4);
	wf_fusion_rules_free(r);
}
END_TEST

int main(void)
{
	const char *src = getenv("WF_SOURCE_ROOT");
	if (!src) {
		fprintf(stderr, "WF_SOURCE_ROOT must be set (meson test does)\n");
		return 1;
	}
	snprintf(rules_path, sizeof rules_path, "%s/deploy/fusion-rules.conf", src);
	Suite *s = suite_create("fusion-rules");
	TCase *tc = tcase_create("rules");
	tcase_add_test(tc, default_rules_load);
	tcase_add_test(tc, missing_file);
	tcase_add_loop_test(tc, bad_rules, 0, (int)(sizeof bad / sizeof bad[0]));
	tcase_add_test(tc, good_rules);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
