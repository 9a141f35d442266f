/* Unit tests for the dispatcher's routing file (services/dispatch/
 * routing.c): parsing and its errors, first-match routes with continue,
 * silences with expiry (from the file and from Silence messages through
 * the engine), and the duty-station tree. */
#include "dispatch-test.h"

static Wf__V1__Warning w_at(Wf__V1__Level level, Wf__V1__Hazard hazard, const char *region)
{
	static char *regions[1];
	Wf__V1__Warning w = mkw("w", 1, level, WF__V1__MSG_TYPE__MSG_TYPE_ALERT,
				WF__V1__STATUS__STATUS_ACTUAL, T0);
	regions[0] = (char *)region;
	w.regions = regions;
	w.n_regions = 1;
	w.hazard = hazard;
	return w;
}

static const char *const routes =
	"# severe warnings everywhere in the prefecture go everywhere\n"
	"[station duty-410185]\nregion = 410185000000\n"
	"[station duty-4101]\nregion = 4101 ; prefix form is not a code\n";

START_TEST(test_parse_errors)
{
	struct dsp_routing r;
	char err[256];
	const struct {
		const char *text, *want;
	} bad[] = {
		{ "[route a]\nlevels = I\n", "test:2: route a has no channels" },
		{ "[route a]\nchannels = fax\n", "test:2: unknown channel 'fax'" },
		{ "[route a]\nchannels = duty\nlevels = V\n", "test:3: unknown level 'V'" },
		{ "[route a]\nchannels = duty\nhazards = rain\n", "test:3: unknown hazard 'rain'" },
		{ "[route a]\nchannels = duty\nregion = 410\n", "test:3: invalid region prefix '410'" },
		{ "[route a]\nchannels = duty\nstations = nobody\n", "route a names unknown station nobody" },
		{ "[station s]\n", "test:1: station s has no region" },
		{ "[station s]\nregion = 4101\n", "test:2: invalid region '4101'" },
		{ "[station s]\nregion = 410185001001\n", "is a village" },
		{ "[station s]\nregion = 419999\n", "not in the region table" },
		{ "[station s]\nregion = 410185\n[station s]\nregion = 410185\n", "test:3: duplicate station s" },
		{ "[silence s]\nchannel = duty\n", "test:2: a silence is for broadcast, cap or sms" },
		{ "[silence s]\nchannel = sms\nreason = x\n", "needs channel, expires and reason" },
		{ "[silence s]\nexpires = tomorrow\n", "test:2: invalid time 'tomorrow'" },
		{ "key = value\n", "test:1: key 'key' outside of any [section]" },
		{ "[rule x]\n", "test:1: unknown section [rule x]" },
		{ "[route a b]\n", "test:1: invalid name 'a b'" },
		{ "[route a]\nchannels duty\n", "test:2: syntax error" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		ck_assert_msg(dsp_routing_parse("test", bad[i].text, fx.regions, &r, err, sizeof err) ==
				      -EINVAL,
			      "accepted: %s", bad[i].text);
		ck_assert_msg(strstr(err, bad[i].want) != NULL, "'%s': got '%s'", bad[i].want, err);
	}
	/* a prefecture station must be written as a code */
	ck_assert_int_eq(dsp_routing_parse("test", routes, fx.regions, &r, err, sizeof err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "test:5:"));
}
END_TEST

START_TEST(test_match_first_wins_and_continue)
{
	struct dsp_routing r;
	struct dsp_route_result m;
	char err[256];
	const char *text =
		"[station duty-410185]\nregion = 410185\n"
		"[station duty-x]\nregion = 410185001000\n"
		"[route red-flood]\nlevels = I\nhazards = flood, flash_flood\nregion = 4101\n"
		"channels = duty, broadcast, sms\nstations = duty-x\ncontinue = true\n"
		"[route severe]\nlevels = I, orange\nregion = 410185\nchannels = duty, cap\n"
		"[route blue]\nlevels = IV\nhazards = *\nchannels = duty\n";
	ck_assert_msg(dsp_routing_parse("t", text, fx.regions, &r, err, sizeof err) == 0, "%s", err);
	ck_assert_uint_eq(r.n_routes, 3);

	Wf__V1__Warning w = w_at(WF__V1__LEVEL__LEVEL_I, WF__V1__HAZARD__HAZARD_FLOOD, TWN_A);
	dsp_routing_match(&r, &w, &m);
	ck_assert_str_eq(m.matched, "red-flood");
	/* continue: red-flood's channels plus severe's */
	ck_assert_uint_eq(m.channels, DSP_CH_BIT(DSP_CH_DUTY) | DSP_CH_BIT(DSP_CH_BROADCAST) |
					      DSP_CH_BIT(DSP_CH_SMS) | DSP_CH_BIT(DSP_CH_CAP));
	ck_assert_uint_eq(m.n_stations, 1);
	ck_assert_str_eq(m.stations[0], "duty-x");
	ck_assert(m.auto_stations); /* severe has no explicit stations: the tree */

	w = w_at(WF__V1__LEVEL__LEVEL_II, WF__V1__HAZARD__HAZARD_RAINSTORM, TWN_A);
	dsp_routing_match(&r, &w, &m);
	ck_assert_str_eq(m.matched, "severe");
	ck_assert_uint_eq(m.channels, DSP_CH_BIT(DSP_CH_DUTY) | DSP_CH_BIT(DSP_CH_CAP));

	/* another county: severe's region prefix does not match; no route for III */
	w = w_at(WF__V1__LEVEL__LEVEL_II, WF__V1__HAZARD__HAZARD_RAINSTORM, "410102000000");
	dsp_routing_match(&r, &w, &m);
	ck_assert_str_eq(m.matched, "");
	ck_assert_uint_eq(m.channels, DSP_CH_BIT(DSP_CH_DUTY)); /* default: duty only */
	w = w_at(WF__V1__LEVEL__LEVEL_IV, WF__V1__HAZARD__HAZARD_FOG, "410102000000");
	dsp_routing_match(&r, &w, &m);
	ck_assert_str_eq(m.matched, "blue");
	dsp_routing_free(&r);
}
END_TEST

START_TEST(test_silences)
{
	struct dsp_routing r;
	char err[256];
	const char *text = "[route all]\nchannels = duty, sms, broadcast\n"
			   "[silence sms-maint]\nchannel = sms\nregion = 410185\nhazard = *\n"
			   "expires = 2025-12-02T12:00:00Z\nreason = 短信网关维护\n";
	ck_assert_msg(dsp_routing_parse("t", text, fx.regions, &r, err, sizeof err) == 0, "%s", err);
	Wf__V1__Warning w = w_at(WF__V1__LEVEL__LEVEL_IV, WF__V1__HAZARD__HAZARD_FOG, TWN_A);
	const struct dsp_silence *s = dsp_routing_silenced(&r, NULL, 0, DSP_CH_SMS, &w, T0);
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s->id, "sms-maint");
	ck_assert_ptr_null(dsp_routing_silenced(&r, NULL, 0, DSP_CH_BROADCAST, &w, T0));
	/* expired at 12:00Z */
	ck_assert_ptr_null(dsp_routing_silenced(&r, NULL, 0, DSP_CH_SMS, &w, T0 + 2 * 60 * MIN));
	/* another county */
	Wf__V1__Warning w2 = w_at(WF__V1__LEVEL__LEVEL_IV, WF__V1__HAZARD__HAZARD_FOG, "410102000000");
	ck_assert_ptr_null(dsp_routing_silenced(&r, NULL, 0, DSP_CH_SMS, &w2, T0));
	dsp_routing_free(&r);
}
END_TEST

/* A Silence message through the engine: the silenced channel is recorded
 * with the silence's id and reason, the others go out. */
START_TEST(test_silence_message)
{
	fx.regions = wf_region_table_free(fx.regions); /* fx_open loads its own */
	fx_open(NULL);
	Wf__V1__Silence s = WF__V1__SILENCE__INIT;
	s.id = "bcast-test";
	s.operator_ = "op-zhang";
	s.channel = "broadcast";
	s.region_prefix = "410185";
	s.sent_ms = T0;
	s.expires_ms = T0 + 30 * MIN;
	s.reason = "terminal maintenance";
	s.producer = "wfctl";
	s.seq = 1;
	struct wf_txn *t;
	struct wf_codec_error why;
	ck_assert_int_eq(wf_store_txn_begin(fx.store, true, &t), 0);
	ck_assert_int_eq(dsp_engine_control(fx.e, t, WF_TOPIC_SILENCE, &s.base, T0, &why), 0);
	ck_assert_int_eq(wf_store_txn_commit(t), 0);

	Wf__V1__Warning w = mkw("w-sil", 1, WF__V1__LEVEL__LEVEL_IV, WF__V1__MSG_TYPE__MSG_TYPE_ALERT,
				WF__V1__STATUS__STATUS_ACTUAL, T0);
	ck_assert_int_eq(apply_warning(&w, T0 + MIN), 0);
	struct dsp_delivery d;
	ck_assert_int_eq(delivery("w-sil", 1, "broadcast", "*", &d), DSP_DLV_SILENCED);
	ck_assert_ptr_nonnull(strstr(d.detail, "bcast-test"));
	ck_assert_ptr_nonnull(strstr(d.detail, "terminal maintenance"));
	ck_assert_uint_eq(outputs_to("wf/v1/broadcast/", NULL), 0);
	ck_assert_int_eq(delivery("w-sil", 1, "cap", "spool", NULL), DSP_DLV_SENT);
	/* after it expires, the next version is broadcast again */
	Wf__V1__Warning w2 = mkw("w-sil", 2, WF__V1__LEVEL__LEVEL_IV, WF__V1__MSG_TYPE__MSG_TYPE_UPDATE,
				 WF__V1__STATUS__STATUS_ACTUAL, T0 + 31 * MIN);
	ck_assert_int_eq(apply_warning(&w2, T0 + 31 * MIN), 0);
	ck_assert_uint_eq(outputs_to("wf/v1/broadcast/", NULL), 1);
	fx_close();
}
END_TEST

START_TEST(test_station_tree)
{
	struct dsp_routing r;
	char err[256];
	ck_assert_msg(dsp_routing_parse("t", routing_text, fx.regions, &r, err, sizeof err) == 0, "%s",
		      err);
	const struct dsp_station *s = dsp_station_for(&r, "410185001002"); /* a village */
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s->id, "duty-twn-a");
	const struct dsp_station *up = dsp_station_parent(&r, s);
	ck_assert_str_eq(up->id, "duty-410185");
	up = dsp_station_parent(&r, up);
	ck_assert_str_eq(up->id, "duty-4101");
	ck_assert_ptr_null(dsp_station_parent(&r, up)); /* no province station */
	/* a township without its own station: its county's */
	s = dsp_station_for(&r, "410185003000");
	ck_assert_str_eq(s->id, "duty-410185");
	/* another county of 4101: the prefecture's */
	s = dsp_station_for(&r, "410102000000");
	ck_assert_str_eq(s->id, "duty-4101");
	ck_assert_ptr_null(dsp_station_for(&r, "420100000000"));
	dsp_routing_free(&r);
}
END_TEST

/* The shipped routing files load. */
START_TEST(test_shipped_files)
{
	const char *root = getenv("WF_SOURCE_ROOT");
	const char *files[] = { "deploy/dispatch-routes.conf", "deploy/examples/dispatch/routes.conf" };
	for (size_t i = 0; i < 2; i++) {
		char path[1024], err[256];
		struct dsp_routing r;
		snprintf(path, sizeof path, "%s/%s", root ? root : ".", files[i]);
		ck_assert_msg(dsp_routing_load(path, fx.regions, &r, err, sizeof err) == 0, "%s", err);
		ck_assert_uint_gt(r.n_stations, 0);
		ck_assert_uint_gt(r.n_routes, 0);
		dsp_routing_free(&r);
	}
	struct dsp_routing r;
	char err[256];
	ck_assert_int_eq(dsp_routing_load("/nonexistent/routes.conf", NULL, &r, err, sizeof err),
			 -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/routes.conf: "));
}
END_TEST

static void setup(void)
{
	const char *rpath = getenv("WF_REGIONS");
	fx.regions = NULL;
	if (rpath)
		ck_assert_int_eq(wf_region_table_load(rpath, &fx.regions, NULL), 0);
}

int main(void)
{
	Suite *s = suite_create("dispatch-routing");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_parse_errors);
	tcase_add_test(tc, test_match_first_wins_and_continue);
	tcase_add_test(tc, test_silences);
	tcase_add_test(tc, test_silence_message);
	tcase_add_test(tc, test_station_tree);
	tcase_add_test(tc, test_shipped_files);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
