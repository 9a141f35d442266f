/* Unit tests for the dispatcher's retention and deadline index
 * (services/dispatch/retain.c, due.c) on injected time: an ended warning's
 * records go [dispatch] retain after its end and not before, a warning
 * with a notice still waiting for its ack deadline is kept, a late copy of
 * a purged warning is not taken for new, retain below its bound is
 * refused, a store written before the indexes is indexed at open, and the
 * resend takes every pending notice from their list. */
#include "dispatch-test.h"

#define A WF__V1__MSG_TYPE__MSG_TYPE_ALERT
#define ACTUAL WF__V1__STATUS__STATUS_ACTUAL
#define IV WF__V1__LEVEL__LEVEL_IV
#define HOUR (60 * MIN)

static void open_retain(int64_t retain_ms)
{
	struct dsp_config c;
	dsp_config_defaults(&c);
	c.retain_ms = retain_ms;
	fx_open_cfg(NULL, &c);
}

/* Whether ID has a d-current record (the engine knows the warning). */
static bool known(const char *id)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r = fx_record(id, &buf, &len);
	free(buf);
	return r == 0;
}

/* Both township stations acknowledge; the warning expires at T0+30m and
 * is purged retain (1 h) later, with every record keyed by it and every
 * index entry; another, active warning stays. */
START_TEST(test_ended_warning_purged_after_retain)
{
	const struct dsp_dbs *d;
	const struct dsp_out *o = NULL;
	open_retain(HOUR);
	d = dsp_engine_dbs(fx.e);
	Wf__V1__Warning w = mkw("w-old", 1, IV, A, ACTUAL, T0);
	w.expires_ms = T0 + 30 * MIN;
	ck_assert_int_eq(apply_warning(&w, T0), 0);
	Wf__V1__Warning live = mkw("w-live", 1, IV, A, ACTUAL, T0);
	live.expires_ms = T0 + 24 * HOUR;
	ck_assert_int_eq(apply_warning(&live, T0), 0);
	ck_assert_int_eq(duty_ack("duty-twn-a", "w-old", 1, T0 + MIN), 0);
	ck_assert_int_eq(duty_ack("duty-twn-b", "w-old", 1, T0 + MIN), 0);
	ck_assert_int_eq(duty_ack("duty-twn-a", "w-live", 1, T0 + MIN), 0);
	ck_assert_int_eq(duty_ack("duty-twn-b", "w-live", 1, T0 + MIN), 0);

	ck_assert_int_eq(next_due(), T0 + 30 * MIN); /* the expiry */
	ck_assert_int_eq(tick(T0 + 30 * MIN), 0);
	ck_assert(known("w-old"));
	ck_assert_int_eq(next_due(), T0 + 90 * MIN); /* the end + retain */

	/* not before */
	ck_assert_int_eq(tick(T0 + 90 * MIN - 1), 0);
	ck_assert(known("w-old"));
	ck_assert_int_eq(delivery("w-old", 1, "duty", "duty-twn-a", NULL), DSP_DLV_ACKED);

	ck_assert_int_eq(tick(T0 + 90 * MIN), 0);
	ck_assert(!known("w-old"));
	ck_assert_int_eq(delivery("w-old", 1, "duty", "duty-twn-a", NULL), -1);
	ck_assert_int_eq(delivery("w-old", 1, "broadcast", "410185", NULL), -1);
	/* its retained view is cleared */
	ck_assert_uint_eq(outputs_to("wf/v1/review/w-old", &o), 1);
	ck_assert_uint_eq(o->len, 0);
	ck_assert(o->retain);
	/* only the live warning's records are left, and nothing is due for the old one */
	ck_assert(known("w-live"));
	ck_assert_int_eq(delivery("w-live", 1, "duty", "duty-twn-a", NULL), DSP_DLV_ACKED);
	ck_assert_uint_eq(fx_count(d->current), 1);
	ck_assert_uint_eq(fx_count(d->wver), 1);
	ck_assert_uint_eq(fx_count(d->wlog), 1);
	ck_assert_uint_eq(fx_count(d->review), 1);
	ck_assert_uint_eq(fx_count(d->duty), 2);
	ck_assert_uint_eq(fx_count(d->purge), 0);
	ck_assert_uint_eq(fx_count(d->purgeq), 0);
	ck_assert_uint_eq(fx_count(d->due), 1); /* w-live's expiry */
	ck_assert_uint_eq(fx_count(d->dpend), 0);
	ck_assert_int_eq(next_due(), T0 + 24 * HOUR);

	/* a late copy of the purged version is not new: ignored, nothing sent */
	ck_assert_int_eq(apply_warning(&w, T0 + 91 * MIN), 0);
	ck_assert(!known("w-old"));
	ck_assert_uint_eq(outputs_to("wf/v1/duty/", NULL), 0);
	ck_assert_uint_eq(outputs_to("wf/v1/broadcast/", NULL), 0);
	fx_close();
}
END_TEST

/* Nobody acknowledges: at the end + retain the county's escalated notice
 * still waits for its deadline, so nothing goes; the records go only once
 * the last notice (the top of the tree) has missed its deadline. */
START_TEST(test_pending_warning_kept)
{
	open_retain(HOUR);
	const struct dsp_dbs *d = dsp_engine_dbs(fx.e);
	Wf__V1__Warning w = mkw("w-p", 1, IV, A, ACTUAL, T0);
	w.expires_ms = T0 + 30 * MIN;
	ck_assert_int_eq(apply_warning(&w, T0), 0);
	ck_assert_uint_eq(fx_count(d->dpend), 2);
	int64_t last = 0;
	bool purged = false;
	for (int i = 0; i < 50 && !purged; i++) {
		int64_t due = next_due();
		ck_assert_int_ne(due, INT64_MAX);
		bool pending = fx_count(d->dpend) > 0;
		ck_assert_int_eq(tick(due), 0);
		purged = !known("w-p");
		/* never purged while a notice was waiting for its ack deadline */
		ck_assert_msg(!purged || !pending, "purged at %lld with a pending notice",
			      (long long)(due - T0));
		ck_assert_msg(!purged || due >= T0 + 90 * MIN, "purged before retain");
		last = due;
	}
	ck_assert(purged);
	/* township 1 h, county 1 h, prefecture 1 h (the top): + a minute */
	ck_assert_int_ge(last, T0 + 3 * HOUR);
	ck_assert_int_eq(delivery("w-p", 1, "duty", "duty-4101", NULL), -1);
	ck_assert_uint_eq(fx_count(d->duty), 0);
	ck_assert_uint_eq(fx_count(d->delivery), 0);
	ck_assert_uint_eq(fx_count(d->due), 0);
	ck_assert_int_eq(next_due(), INT64_MAX);
	fx_close();
}
END_TEST

/* An active warning is never purged, however long it runs. */
START_TEST(test_active_warning_kept)
{
	open_retain(10 * MIN);
	Wf__V1__Warning w = mkw("w-a", 1, IV, A, ACTUAL, T0);
	w.expires_ms = T0 + 48 * HOUR;
	ck_assert_int_eq(apply_warning(&w, T0), 0);
	ck_assert_int_eq(duty_ack("duty-twn-a", "w-a", 1, T0 + MIN), 0);
	ck_assert_int_eq(duty_ack("duty-twn-b", "w-a", 1, T0 + MIN), 0);
	ck_assert_int_eq(tick(T0 + 47 * HOUR), 0);
	ck_assert(known("w-a"));
	ck_assert_int_eq(delivery("w-a", 1, "duty", "duty-twn-b", NULL), DSP_DLV_ACKED);
	fx_close();
}
END_TEST

START_TEST(test_retain_bound)
{
	struct dsp_config c;
	char err[256] = "";
	dsp_config_defaults(&c);
	ck_assert_int_eq(c.retain_ms, 30 * 24 * HOUR);
	ck_assert_int_eq(dsp_config_check(&c, err, sizeof err), 0);
	c.retain_ms = 10 * MIN;
	ck_assert_int_eq(dsp_config_check(&c, err, sizeof err), 0);
	c.retain_ms = 10 * MIN - 1;
	ck_assert_int_eq(dsp_config_check(&c, err, sizeof err), -EINVAL);
	ck_assert_msg(strstr(err, "[dispatch] retain") && strstr(err, "at least 600000 ms"), "%s",
		      err);

	/* the engine refuses it too */
	struct wf_store_options so = { 0 };
	struct wf_store *s = NULL;
	struct dsp_routing r;
	struct dsp_engine *e = NULL;
	char dir[] = "/tmp/wf-dsp-retain-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	so.path = dir;
	so.nosync = true;
	ck_assert_int_eq(wf_store_open(&so, &s), 0);
	ck_assert_int_eq(dsp_routing_parse("test", routing_text, NULL, &r, err, sizeof err), 0);
	c.service = "wf-dispatch-t";
	ck_assert_int_eq(dsp_engine_new(s, &c, &r, NULL, &e), -EINVAL);
	ck_assert_ptr_null(e);
	dsp_routing_free(&r);
	wf_store_close(s);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static int drop_indexes(struct wf_txn *t, void *ud)
{
	const struct dsp_dbs *d = ud;
	unsigned dbis[] = { d->due, d->dpend, d->purge, d->purgeq, d->meta };
	for (size_t i = 0; i < sizeof dbis / sizeof dbis[0]; i++) {
		int r = wf_store_del_range(t, dbis[i], "\0", 1,
					   "\xff\xff\xff\xff\xff\xff\xff\xff\xff", 9, NULL, NULL);
		if (r < 0)
			return r;
	}
	return 0;
}

/* A store written before the indexes (the tables only): opening it builds
 * them once, so its deadlines, pending notices and ended warnings are
 * found again and nothing is lost. */
START_TEST(test_old_store_indexed_at_open)
{
	open_retain(HOUR);
	Wf__V1__Warning w = mkw("w-u", 1, IV, A, ACTUAL, T0);
	ck_assert_int_eq(apply_warning(&w, T0), 0);
	Wf__V1__Warning gone = mkw("w-g", 1, IV, A, ACTUAL, T0);
	gone.expires_ms = T0 + 10 * MIN;
	ck_assert_int_eq(apply_warning(&gone, T0), 0);
	ck_assert_int_eq(duty_ack("duty-twn-a", "w-g", 1, T0 + MIN), 0);
	ck_assert_int_eq(duty_ack("duty-twn-b", "w-g", 1, T0 + MIN), 0);
	ck_assert_int_eq(tick(T0 + 10 * MIN), 0); /* w-g expired: its purge at T0+70m */
	const struct dsp_dbs *d = dsp_engine_dbs(fx.e);
	ck_assert_int_eq(wf_store_update(fx.store, drop_indexes, (void *)d), 0);
	ck_assert_uint_eq(fx_count(d->due), 0);
	ck_assert_uint_eq(fx_count(d->meta), 0);

	fx_reopen_engine();
	d = dsp_engine_dbs(fx.e);
	ck_assert_uint_eq(fx_count(d->meta), 2);    /* "index" and "layout" */
	ck_assert_uint_eq(fx_count(d->dpend), 2);   /* w-u's two notices */
	ck_assert_uint_eq(fx_count(d->purge), 1);   /* w-g: from its expiry */
	/* the earliest deadline is found again: w-u's ack deadlines (1 h) ... */
	ck_assert_int_eq(next_due(), T0 + 60 * MIN);
	/* ... the resend has its pending notices ... */
	struct wf_txn *t;
	dsp_engine_outputs_clear(fx.e);
	ck_assert_int_eq(wf_store_txn_begin(fx.store, false, &t), 0);
	ck_assert_int_eq(dsp_engine_resync_duty(fx.e, t, T0 + 20 * MIN), 0);
	wf_store_txn_abort(t);
	ck_assert(has_notice("duty-twn-a"));
	ck_assert(has_notice("duty-twn-b"));
	/* ... they escalate at their deadline */
	ck_assert_int_eq(tick(T0 + 60 * MIN), 0);
	ck_assert_int_eq(delivery("w-u", 1, "duty", "duty-twn-a", NULL), DSP_DLV_MISSED);
	ck_assert_int_eq(delivery("w-u", 1, "duty", "duty-410185", NULL), DSP_DLV_ESCALATED);
	/* and the warning that had ended goes retain after its expiry */
	ck_assert(known("w-g"));
	ck_assert_int_eq(tick(T0 + 70 * MIN), 0);
	ck_assert(!known("w-g"));
	ck_assert(known("w-u"));
	/* a second open builds nothing again (the marker), and loses nothing */
	uint64_t due = fx_count(d->due);
	fx_reopen_engine();
	ck_assert_uint_eq(fx_count(dsp_engine_dbs(fx.e)->due), due);
	fx_close();
}
END_TEST

/* The resend reads the pending-notice list: every pending notice goes
 * again, also one a newer version has overtaken. */
START_TEST(test_resend_every_pending_notice)
{
	open_retain(HOUR);
	Wf__V1__Warning w1 = mkw("w-s", 1, IV, A, ACTUAL, T0);
	Wf__V1__Warning w2 = mkw("w-s", 2, IV, WF__V1__MSG_TYPE__MSG_TYPE_UPDATE, ACTUAL, T0 + MIN);
	ck_assert_int_eq(apply_warning(&w1, T0), 0);
	ck_assert_int_eq(apply_warning(&w2, T0 + MIN), 0);
	ck_assert_uint_eq(fx_count(dsp_engine_dbs(fx.e)->dpend), 4);
	struct wf_txn *t;
	dsp_engine_outputs_clear(fx.e);
	ck_assert_int_eq(wf_store_txn_begin(fx.store, false, &t), 0);
	ck_assert_int_eq(dsp_engine_resync_duty(fx.e, t, T0 + 2 * MIN), 0);
	wf_store_txn_abort(t);
	ck_assert_uint_eq(outputs_to("wf/v1/duty/duty-twn-a/", NULL), 2);
	/* the old one is still recorded superseded at its deadline */
	ck_assert_int_eq(tick(T0 + 60 * MIN), 0);
	ck_assert_int_eq(delivery("w-s", 1, "duty", "duty-twn-a", NULL), DSP_DLV_SUPERSEDED);
	fx_close();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dispatch-retain");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_ended_warning_purged_after_retain);
	tcase_add_test(tc, test_pending_warning_kept);
	tcase_add_test(tc, test_active_warning_kept);
	tcase_add_test(tc, test_retain_bound);
	tcase_add_test(tc, test_old_store_indexed_at_open);
	tcase_add_test(tc, test_resend_every_pending_notice);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
