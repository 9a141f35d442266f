/* Unit tests for duty stations (services/dispatch/duty.c) on injected
 * time: notices per station on the administrative tree, acknowledgement
 * deadlines by level, escalation township -> county -> prefecture with
 * the records, late acknowledgements, review timeouts, follow-up (续报)
 * reminders until a follow-up or the end, and the deadline timer. */
#include "dispatch-test.h"

#define A WF__V1__MSG_TYPE__MSG_TYPE_ALERT
#define U WF__V1__MSG_TYPE__MSG_TYPE_UPDATE
#define C WF__V1__MSG_TYPE__MSG_TYPE_CANCEL
#define ACTUAL WF__V1__STATUS__STATUS_ACTUAL

START_TEST(test_notice_and_deadline_by_level)
{
	fx_open(NULL);
	Wf__V1__Warning w = mkw("w-n", 1, WF__V1__LEVEL__LEVEL_II, A, ACTUAL, T0);
	ck_assert_int_eq(apply_warning(&w, T0), 0);
	/* one notice per township station, none to the county yet */
	ck_assert_uint_eq(outputs_to("wf/v1/duty/", NULL), 2);
	Wf__V1__DutyNotice *n = notice_to("duty-twn-a");
	ck_assert_ptr_nonnull(n);
	ck_assert_int_eq(n->kind, WF__V1__NOTICE_KIND__NOTICE_KIND_NOTICE);
	ck_assert_int_eq(n->deadline_ms, T0 + 10 * MIN); /* II: 10 minutes */
	ck_assert(n->pending_review);
	ck_assert_ptr_nonnull(strstr(n->text, "嵩阳街道暴雨橙色预警"));
	ck_assert_str_eq(n->producer, "wf-dispatch-t");
	/* the whole text: region, hazard, colour, then the headline */
	ck_assert_msg(strncmp(n->text, "嵩阳街道暴雨橙色预警：", strlen("嵩阳街道暴雨橙色预警：")) == 0 &&
			      strlen(n->text) > strlen("嵩阳街道暴雨橙色预警："),
		      "%s", n->text);
	wf__v1__duty_notice__free_unpacked(n, NULL);
	ck_assert(!has_notice("duty-410185"));
	/* the earliest deadline: the two acks and the review timeout (15m) */
	ck_assert_int_eq(next_due(), T0 + 10 * MIN);
	fx_close();

	fx_open(NULL);
	w.level = WF__V1__LEVEL__LEVEL_I;
	ck_assert_int_eq(apply_warning(&w, T0), 0);
	n = notice_to("duty-twn-b");
	ck_assert_int_eq(n->deadline_ms, T0 + 5 * MIN); /* I: 5 minutes */
	wf__v1__duty_notice__free_unpacked(n, NULL);
	fx_close();
}
END_TEST

/* Station A acknowledges, station B does not: at the deadline B's notice
 * escalates to the county (recorded as missed / escalated); the county
 * misses too and it goes on to the prefecture; then the top. */
START_TEST(test_escalation_up_the_tree)
{
	struct dsp_delivery d;
	fx_open(NULL);
	Wf__V1__Warning w = mkw("w-e", 1, WF__V1__LEVEL__LEVEL_IV, A, ACTUAL, T0);
	ck_assert_int_eq(apply_warning(&w, T0), 0);
	ck_assert_int_eq(duty_ack("duty-twn-a", "w-e", 1, T0 + 5 * MIN), 0);
	ck_assert_int_eq(delivery("w-e", 1, "duty", "duty-twn-a", NULL), DSP_DLV_ACKED);

	/* before the deadline (IV: 1 h) nothing happens */
	ck_assert_int_eq(next_due(), T0 + 60 * MIN);
	ck_assert_int_eq(tick(T0 + 60 * MIN - 1), 0);
	ck_assert_uint_eq(outputs_to("wf/v1/duty/", NULL), 0);

	ck_assert_int_eq(tick(T0 + 60 * MIN), 0);
	ck_assert_int_eq(delivery("w-e", 1, "duty", "duty-twn-b", &d), DSP_DLV_MISSED);
	ck_assert_ptr_nonnull(strstr(d.detail, "escalated to duty-410185"));
	ck_assert_int_eq(delivery("w-e", 1, "duty", "duty-410185", NULL), DSP_DLV_ESCALATED);
	ck_assert_uint_eq(outputs_to("wf/v1/duty/", NULL), 1);
	Wf__V1__DutyNotice *n = notice_to("duty-410185");
	ck_assert_ptr_nonnull(n);
	ck_assert_int_eq(n->kind, WF__V1__NOTICE_KIND__NOTICE_KIND_ESCALATION);
	ck_assert_str_eq(n->escalated_from, "duty-twn-b");
	ck_assert_int_eq(n->deadline_ms, T0 + 120 * MIN);
	wf__v1__duty_notice__free_unpacked(n, NULL);
	/* the station that acknowledged is never escalated */
	ck_assert_int_eq(delivery("w-e", 1, "duty", "duty-twn-a", NULL), DSP_DLV_ACKED);

	/* the county misses too: the prefecture */
	ck_assert_int_eq(next_due(), T0 + 120 * MIN);
	ck_assert_int_eq(tick(T0 + 120 * MIN), 0);
	ck_assert_int_eq(delivery("w-e", 1, "duty", "duty-410185", NULL), DSP_DLV_MISSED);
	ck_assert_int_eq(delivery("w-e", 1, "duty", "duty-4101", NULL), DSP_DLV_ESCALATED);
	/* a late acknowledgement of the township is recorded as such */
	ck_assert_int_eq(duty_ack("duty-twn-b", "w-e", 1, T0 + 121 * MIN), 0);
	ck_assert_int_eq(delivery("w-e", 1, "duty", "duty-twn-b", NULL), DSP_DLV_ACKED_LATE);
	/* the prefecture misses: nobody above */
	ck_assert_int_eq(tick(T0 + 180 * MIN), 0);
	ck_assert_int_eq(delivery("w-e", 1, "duty", "duty-4101", NULL), DSP_DLV_MISSED_TOP);
	ck_assert_uint_eq(outputs_to("wf/v1/duty/", NULL), 0);
	/* an ack for a notice never sent is refused */
	ck_assert_int_eq(duty_ack("duty-twn-a", "w-e", 7, T0 + 181 * MIN), WF_NODE_REJECT);
	fx_close();
}
END_TEST

/* A newer version before the deadline supersedes the old notice instead
 * of escalating it. */
START_TEST(test_superseded_notice)
{
	fx_open(NULL);
	Wf__V1__Warning w1 = mkw("w-u", 1, WF__V1__LEVEL__LEVEL_IV, A, ACTUAL, T0);
	Wf__V1__Warning w2 = mkw("w-u", 2, WF__V1__LEVEL__LEVEL_IV, U, ACTUAL, T0 + 30 * MIN);
	ck_assert_int_eq(apply_warning(&w1, T0), 0);
	ck_assert_int_eq(apply_warning(&w2, T0 + 30 * MIN), 0);
	ck_assert_int_eq(tick(T0 + 60 * MIN), 0);
	ck_assert_int_eq(delivery("w-u", 1, "duty", "duty-twn-a", NULL), DSP_DLV_SUPERSEDED);
	ck_assert(!has_notice("duty-410185"));
	ck_assert_int_eq(tick(T0 + 90 * MIN), 0);
	ck_assert_int_eq(delivery("w-u", 2, "duty", "duty-twn-a", NULL), DSP_DLV_MISSED);
	fx_close();
}
END_TEST

/* Review that takes too long escalates to the next level's station. */
START_TEST(test_review_timeout)
{
	struct dsp_config cfg;
	dsp_config_defaults(&cfg);
	cfg.ack_deadline_ms[WF__V1__LEVEL__LEVEL_III] = 0; /* isolate the review timeout */
	fx_open_cfg(NULL, &cfg);
	Wf__V1__Warning w = mkw("w-rt", 1, WF__V1__LEVEL__LEVEL_III, A, ACTUAL, T0);
	ck_assert_int_eq(apply_warning(&w, T0), 0);
	ck_assert_int_eq(next_due(), T0 + 30 * MIN);
	ck_assert_int_eq(tick(T0 + 30 * MIN), 0);
	ck_assert_int_eq(delivery("w-rt", 1, "review", "timeout", NULL), DSP_DLV_REVIEW_TIMEOUT);
	Wf__V1__DutyNotice *n = notice_to("duty-410185");
	ck_assert_ptr_nonnull(n);
	ck_assert_int_eq(n->kind, WF__V1__NOTICE_KIND__NOTICE_KIND_ESCALATION);
	ck_assert(n->pending_review);
	ck_assert_ptr_nonnull(strstr(n->text, "审核超时"));
	wf__v1__duty_notice__free_unpacked(n, NULL);
	/* once only */
	ck_assert_int_eq(tick(T0 + 40 * MIN), 0);
	ck_assert_uint_eq(outputs_to("wf/v1/duty/", NULL), 0);
	/* approved in time: no escalation */
	Wf__V1__Warning w2 = mkw("w-ok", 1, WF__V1__LEVEL__LEVEL_III, A, ACTUAL, T0);
	ck_assert_int_eq(apply_warning(&w2, T0), 0);
	ck_assert_int_eq(approve("op-zhang", "w-ok", 1, T0 + 10 * MIN, NULL), 0);
	ck_assert_int_eq(tick(T0 + 31 * MIN), 0);
	ck_assert_int_eq(delivery("w-ok", 1, "review", "timeout", NULL), -1);
	fx_close();
}
END_TEST

/* 续报: a station that acknowledged a II warning is reminded every
 * interval until it files a follow-up; another until the warning ends. */
START_TEST(test_followup_reminders)
{
	struct dsp_config cfg;
	dsp_config_defaults(&cfg);
	cfg.followup_interval_ms = 20 * MIN;
	fx_open_cfg(NULL, &cfg);
	Wf__V1__Warning w = mkw("w-f", 1, WF__V1__LEVEL__LEVEL_II, A, ACTUAL, T0);
	ck_assert_int_eq(apply_warning(&w, T0), 0);
	ck_assert_int_eq(duty_ack("duty-twn-a", "w-f", 1, T0 + MIN), 0);
	ck_assert_int_eq(duty_ack("duty-twn-b", "w-f", 1, T0 + MIN), 0);
	ck_assert_int_eq(approve("op-zhang", "w-f", 1, T0 + 2 * MIN, NULL), 0);
	ck_assert_int_eq(approve("op-li", "w-f", 1, T0 + 2 * MIN, NULL), 0);

	ck_assert_int_eq(next_due(), T0 + 21 * MIN);
	ck_assert_int_eq(tick(T0 + 21 * MIN), 0);
	ck_assert_uint_eq(outputs_to("wf/v1/duty/", NULL), 2);
	Wf__V1__DutyNotice *n = notice_to("duty-twn-a");
	ck_assert_int_eq(n->kind, WF__V1__NOTICE_KIND__NOTICE_KIND_REMINDER);
	ck_assert_int_eq(n->deadline_ms, 0);
	ck_assert_ptr_nonnull(strstr(n->text, "续报提醒"));
	wf__v1__duty_notice__free_unpacked(n, NULL);

	/* A files its follow-up: no more reminders for A */
	Wf__V1__FollowUp f = WF__V1__FOLLOW_UP__INIT;
	f.station = "duty-twn-a";
	f.warning_id = "w-f";
	f.text = "已组织转移";
	f.sent_ms = T0 + 30 * MIN;
	f.producer = "console";
	f.seq = 2;
	struct call c = { .f = &f, .now = T0 + 30 * MIN };
	ck_assert_int_eq(wf_store_update(fx.store, call_fn, &c), 0);
	ck_assert_int_eq(c.result, 0);
	ck_assert_int_eq(delivery("w-f", 1, "followup", "duty-twn-a", NULL), DSP_DLV_FOLLOWUP);
	ck_assert_int_eq(tick(T0 + 41 * MIN), 0);
	ck_assert_uint_eq(outputs_to("wf/v1/duty/", NULL), 1);
	ck_assert(has_notice("duty-twn-b"));

	/* the warning is cancelled: B's reminders stop */
	Wf__V1__Warning wc = mkw("w-f", 2, WF__V1__LEVEL__LEVEL_II, C, ACTUAL, T0 + 50 * MIN);
	ck_assert_int_eq(apply_warning(&wc, T0 + 50 * MIN), 0);
	ck_assert_int_eq(tick(T0 + 61 * MIN), 0);
	/* (the cancel notices themselves were not acknowledged: they escalate) */
	ck_assert(!has_notice("duty-twn-b"));
	ck_assert(!has_notice("duty-twn-a"));
	fx_close();

	/* level III: no reminders at all */
	fx_open_cfg(NULL, &cfg);
	Wf__V1__Warning w3 = mkw("w-f3", 1, WF__V1__LEVEL__LEVEL_III, A, ACTUAL, T0);
	ck_assert_int_eq(apply_warning(&w3, T0), 0);
	ck_assert_int_eq(duty_ack("duty-twn-a", "w-f3", 1, T0 + MIN), 0);
	ck_assert_int_eq(tick(T0 + 25 * MIN), 0);
	ck_assert_uint_eq(outputs_to("wf/v1/duty/", NULL), 0);
	fx_close();
}
END_TEST

/* Resync queues every pending notice and retained state again, with the
 * same identity keys (a rerun replaces, never duplicates). */
START_TEST(test_resync)
{
	fx_open(NULL);
	Wf__V1__Warning w = mkw("w-y", 1, WF__V1__LEVEL__LEVEL_IV, A, ACTUAL, T0);
	ck_assert_int_eq(apply_warning(&w, T0), 0);
	ck_assert_int_eq(duty_ack("duty-twn-a", "w-y", 1, T0 + MIN), 0);
	struct wf_txn *t;
	dsp_engine_outputs_clear(fx.e);
	ck_assert_int_eq(wf_store_txn_begin(fx.store, false, &t), 0);
	ck_assert_int_eq(dsp_engine_resync(fx.e, t, T0 + 2 * MIN), 0);
	ck_assert_int_eq(dsp_engine_resync(fx.e, t, T0 + 2 * MIN), 0);
	wf_store_txn_abort(t);
	ck_assert_uint_eq(outputs_to("wf/v1/duty/duty-twn-b/inbox", NULL), 1);
	ck_assert_uint_eq(outputs_to("wf/v1/duty/duty-twn-a/inbox", NULL), 0); /* acked */
	const struct dsp_out *o = NULL;
	ck_assert_uint_eq(outputs_to("wf/v1/broadcast/41/4101/410185", &o), 1);
	ck_assert(o->retain);

	/* a resynced notice carries the review state as it is now */
	Wf__V1__Warning w3 = mkw("w-y3", 1, WF__V1__LEVEL__LEVEL_III, A, ACTUAL, T0);
	ck_assert_int_eq(apply_warning(&w3, T0), 0);
	for (int round = 0; round < 2; round++) {
		if (round == 1)
			ck_assert_int_eq(approve("op-zhang", "w-y3", 1, T0 + MIN, NULL), 0);
		dsp_engine_outputs_clear(fx.e);
		ck_assert_int_eq(wf_store_txn_begin(fx.store, false, &t), 0);
		ck_assert_int_eq(dsp_engine_resync(fx.e, t, T0 + 2 * MIN), 0);
		wf_store_txn_abort(t);
		const struct dsp_out *outs;
		size_t n = dsp_engine_outputs(fx.e, &outs);
		int seen = 0, released = 0;
		for (size_t i = 0; i < n; i++) {
			if (strcmp(outs[i].topic, "wf/v1/duty/duty-twn-a/inbox") != 0)
				continue;
			Wf__V1__DutyNotice *dn = wf__v1__duty_notice__unpack(NULL, outs[i].len, outs[i].payload);
			ck_assert_ptr_nonnull(dn);
			if (strcmp(dn->warning_id, "w-y3") == 0 &&
			    dn->kind == WF__V1__NOTICE_KIND__NOTICE_KIND_RELEASED) {
				ck_assert(!dn->pending_review);
				released++;
			} else if (strcmp(dn->warning_id, "w-y3") == 0) {
				ck_assert_int_eq(dn->pending_review, round == 0);
				seen++;
			}
			wf__v1__duty_notice__free_unpacked(dn, NULL);
		}
		ck_assert_int_eq(seen, 1);
		/* released after review (round 1): the RELEASED notice goes again too */
		ck_assert_int_eq(released, round);
	}
	fx_close();
}
END_TEST

/* More notices pending than one resync pass takes (4096): successive
 * passes go on where the previous stopped, and together send every one. */
static int resend_fn(struct wf_txn *t, void *ud)
{
	dsp_engine_outputs_clear(fx.e);
	return dsp_engine_resync_duty(fx.e, t, *(int64_t *)ud);
}

START_TEST(test_resync_passes_cover_every_pending_notice)
{
	fx_open("[station duty-410185]\nregion = 410185\n[operator op-zhang]\n"
		"[route everything]\nchannels = duty\n");
	enum { N = 4500 };
	char ids[N][16];
	for (int i = 0; i < N; i++) {
		snprintf(ids[i], sizeof ids[i], "w-%04d", i);
		Wf__V1__Warning w = mkw(ids[i], 1, WF__V1__LEVEL__LEVEL_II,
					WF__V1__MSG_TYPE__MSG_TYPE_ALERT, WF__V1__STATUS__STATUS_ACTUAL, T0);
		ck_assert_int_eq(apply_warning(&w, T0), 0);
	}
	int64_t now = T0 + MIN;
	size_t total = 0;
	int passes = 0, r;
	do {
		r = wf_store_view(fx.store, resend_fn, &now);
		ck_assert_int_ge(r, 0);
		total += outputs_to("wf/v1/duty/duty-410185/inbox", NULL);
		passes++;
	} while (r == 1 && passes < 10);
	ck_assert_int_eq(passes, 2);
	ck_assert_uint_eq(total, N);
	/* the next pass starts over */
	ck_assert_int_eq(wf_store_view(fx.store, resend_fn, &now), 1);
	ck_assert_uint_eq(outputs_to("wf/v1/duty/duty-410185/inbox", NULL), 4096);
	fx_close();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dispatch-duty");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_notice_and_deadline_by_level);
	tcase_add_test(tc, test_resync_passes_cover_every_pending_notice);
	tcase_add_test(tc, test_escalation_up_the_tree);
	tcase_add_test(tc, test_superseded_notice);
	tcase_add_test(tc, test_review_timeout);
	tcase_add_test(tc, test_followup_reminders);
	tcase_add_test(tc, test_resync);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
