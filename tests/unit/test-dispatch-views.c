/* The dispatcher's manual cancel (DECISION_CANCEL, 解除), its audit trail,
 * the operators' verdicts, the release records and the statistics
 * (services/dispatch/engine.c, audit.c, views.c, stats.c; docs/dispatch.md). */
#include "dispatch-test.h"

#include "dispatch-internal.h"
#include "stats.h"

static int decide(const char *op, Wf__V1__Decision dec, const char *id, uint32_t version,
		  const char *reason, uint64_t seq, int64_t now, struct wf_codec_error *why)
{
	Wf__V1__Approval a = WF__V1__APPROVAL__INIT;
	a.operator_ = (char *)op;
	a.warning_id = (char *)id;
	a.version = version;
	a.decision = dec;
	a.reason = (char *)(reason ? reason : "");
	a.sent_ms = now;
	a.producer = (char *)op;
	a.seq = seq;
	struct call c = { .a = &a, .now = now };
	ck_assert_int_eq(wf_store_update(fx.store, call_fn, &c), 0);
	if (why)
		*why = c.why;
	return c.result;
}

struct views_call {
	int64_t now;
	int result;
};

static int views_fn(struct wf_txn *t, void *ud)
{
	struct views_call *c = ud;
	dsp_engine_outputs_clear(fx.e);
	c->result = dsp_engine_views(fx.e, t, c->now, true, NULL, 0);
	return c->result;
}

/* Builds the views after the last call; returns how many were queued. */
static size_t views(int64_t now)
{
	struct views_call c = { now, 0 };
	ck_assert_int_eq(wf_store_view(fx.store, views_fn, &c), 0);
	const struct dsp_out *o;
	return dsp_engine_outputs(fx.e, &o);
}

static Wf__V1__WarningRecord *record_out(const char *id)
{
	char topic[256];
	const struct dsp_out *o = NULL;
	snprintf(topic, sizeof topic, "wf/v1/review/%s", id);
	if (outputs_to(topic, &o) == 0)
		return NULL;
	ck_assert(o->retain);
	Wf__V1__WarningRecord *r = wf__v1__warning_record__unpack(NULL, o->len, o->payload);
	ck_assert_ptr_nonnull(r);
	return r;
}

static Wf__V1__OperatorVerdicts *verdicts_out(const char *op)
{
	char topic[256];
	const struct dsp_out *o = NULL;
	snprintf(topic, sizeof topic, "wf/v1/verdict/%s", op);
	if (outputs_to(topic, &o) == 0)
		return NULL;
	Wf__V1__OperatorVerdicts *v = wf__v1__operator_verdicts__unpack(NULL, o->len, o->payload);
	ck_assert_ptr_nonnull(v);
	return v;
}

static Wf__V1__DispatchStats *stats_out(void)
{
	const struct dsp_out *o = NULL;
	if (outputs_to("wf/v1/stats/wf-dispatch-t", &o) == 0)
		return NULL;
	Wf__V1__DispatchStats *s = wf__v1__dispatch_stats__unpack(NULL, o->len, o->payload);
	ck_assert_ptr_nonnull(s);
	return s;
}

/* Reopens the engine on the same LMDB store (a restart). */
static void reopen(void)
{
	struct dsp_routing r;
	char err[256];
	struct wf_store_options so = { 0 };
	dsp_engine_free(fx.e);
	wf_store_close(fx.store);
	so.path = fx.dir;
	so.nosync = true;
	so.max_dbs = 32;
	ck_assert_int_eq(wf_store_open(&so, &fx.store), 0);
	ck_assert_int_eq(dsp_routing_parse("test", routing_text, fx.regions, &r, err, sizeof err), 0);
	ck_assert_int_eq(dsp_engine_new(fx.store, &fx.cfg, &r, fx.regions, &fx.e), 0);
}

/* A level III warning released by one approval, then withdrawn. */
static void released_iii(const char *id)
{
	Wf__V1__Warning w = mkw(id, 1, WF__V1__LEVEL__LEVEL_III, WF__V1__MSG_TYPE__MSG_TYPE_ALERT,
				WF__V1__STATUS__STATUS_ACTUAL, T0);
	ck_assert_int_eq(apply_warning(&w, T0), 0);
	ck_assert_int_eq(decide("op-zhang", WF__V1__DECISION__DECISION_APPROVE, id, 1, NULL, 1,
				T0 + MIN, NULL),
			 0);
	ck_assert_int_eq(delivery(id, 1, "cap", "spool", NULL), DSP_DLV_SENT);
}

/* ID released at level III (released_iii), then withdrawn by op-li at
 * T0 + 2 min (message seq SEQ) */
static void withdrawn_iii(const char *id, uint64_t seq)
{
	released_iii(id);
	ck_assert_int_eq(decide("op-li", WF__V1__DECISION__DECISION_CANCEL, id, 1, "误报", seq,
				T0 + 2 * MIN, NULL),
			 0);
}

START_TEST(test_cancel_withdraws_the_public_version)
{
	fx_open(NULL);
	released_iii("w-c1");
	struct wf_codec_error why;
	ck_assert_int_eq(decide("op-li", WF__V1__DECISION__DECISION_CANCEL, "w-c1", 1,
				"误报：雨量站故障", 7, T0 + 2 * MIN, &why),
			 0);
	/* broadcast: the county's state without it; CAP: a Cancel naming v1 */
	const struct dsp_out *o = NULL;
	ck_assert_uint_eq(outputs_to("wf/v1/broadcast/41/4101/410185", &o), 1);
	Wf__V1__BroadcastState *b = wf__v1__broadcast_state__unpack(NULL, o->len, o->payload);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(b->n_active, 0);
	wf__v1__broadcast_state__free_unpacked(b, NULL);
	ck_assert_uint_eq(outputs_to("w-c1.v1.cancel.xml", &o), 1);
	const char *xml = (const char *)o->payload;
	ck_assert_ptr_nonnull(strstr(xml, "<msgType>Cancel</msgType>"));
	ck_assert_ptr_nonnull(strstr(xml, "<identifier>w-c1.v1.cancel</identifier>"));
	ck_assert_ptr_nonnull(strstr(xml, "w-c1.v1,"));     /* references the released v1 */
	/* duty stations that had v1 get a 解除 notice without a deadline */
	Wf__V1__DutyNotice *n = notice_to("duty-twn-a");
	ck_assert_ptr_nonnull(n);
	ck_assert_int_eq(n->msg_type, WF__V1__MSG_TYPE__MSG_TYPE_CANCEL);
	ck_assert_int_eq(n->deadline_ms, 0);
	wf__v1__duty_notice__free_unpacked(n, NULL);
	ck_assert_int_eq(delivery("w-c1", 1, "review", "op-li", NULL), DSP_DLV_CANCELLED);
	ck_assert_int_eq(delivery("w-c1", 1, "cap", "spool/cancel", NULL), DSP_DLV_SENT);
	/* SMS is not configured here: the release was recorded so, no cancel SMS */
	ck_assert_int_eq(delivery("w-c1", 1, "sms", "*/cancel", NULL), -1);

	/* the record and the audit trail: who and when */
	views(T0 + 2 * MIN);
	Wf__V1__WarningRecord *r = record_out("w-c1");
	ck_assert_ptr_nonnull(r);
	ck_assert(r->cancelled);
	ck_assert_str_eq(r->cancelled_by, "op-li");
	ck_assert_int_eq(r->cancelled_ms, T0 + 2 * MIN);
	ck_assert_str_eq(r->cancel_reason, "误报：雨量站故障");
	ck_assert_uint_eq(r->released, 0);
	ck_assert(!r->active);
	ck_assert_uint_eq(r->n_audit, 2);
	ck_assert_str_eq(r->audit[0]->action, "approve");
	ck_assert_str_eq(r->audit[0]->operator_, "op-zhang");
	ck_assert_int_eq(r->audit[0]->at_ms, T0 + MIN);
	ck_assert_str_eq(r->audit[1]->action, "cancel");
	ck_assert_str_eq(r->audit[1]->operator_, "op-li");
	ck_assert(r->audit[1]->accepted);
	ck_assert_uint_eq(r->audit[1]->seq, 7);
	wf__v1__warning_record__free_unpacked(r, NULL);
	Wf__V1__OperatorVerdicts *v = verdicts_out("op-li");
	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq(v->n_entries, 1);
	ck_assert(v->entries[0]->accepted);
	wf__v1__operator_verdicts__free_unpacked(v, NULL);
	fx_close();
}
END_TEST

static int resync_fn(struct wf_txn *t, void *ud)
{
	dsp_engine_outputs_clear(fx.e);
	return dsp_engine_resync(fx.e, t, *(int64_t *)ud);
}

/* Informational notices of warning ID (no acknowledgement: deadline 0, not
 * pending) queued by a resync at NOW for STATION: 解除 ones (msg_type
 * CANCEL) or RELEASED ones. */
static size_t info_notices_after_resync(const char *station, const char *id, bool released,
					int64_t now)
{
	char topic[WF_TOPIC_MAX];
	const struct dsp_out *o;
	size_t k = 0;
	ck_assert_int_eq(wf_store_view(fx.store, resync_fn, &now), 0);
	snprintf(topic, sizeof topic, "wf/v1/duty/%s/inbox", station);
	size_t n = dsp_engine_outputs(fx.e, &o);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(o[i].topic, topic) != 0)
			continue;
		Wf__V1__DutyNotice *d = wf__v1__duty_notice__unpack(NULL, o[i].len, o[i].payload);
		ck_assert_ptr_nonnull(d);
		bool match = released ? d->kind == WF__V1__NOTICE_KIND__NOTICE_KIND_RELEASED
				      : d->msg_type == WF__V1__MSG_TYPE__MSG_TYPE_CANCEL;
		if (match && strcmp(d->warning_id, id) == 0) {
			ck_assert(!d->pending_review);
			ck_assert_int_eq(d->deadline_ms, 0);
			k++;
		}
		wf__v1__duty_notice__free_unpacked(d, NULL);
	}
	return k;
}

static size_t cancel_notices_after_resync(const char *station, int64_t now)
{
	return info_notices_after_resync(station, "w-c5", false, now);
}

static size_t released_notices_after_resync(const char *station, const char *id, int64_t now)
{
	return info_notices_after_resync(station, id, true, now);
}

/* An operator's 解除 notice has no duty record: a reconnect (or a restart)
 * sends it again, beside the version's own pending notice, for a day. */
START_TEST(test_cancel_notice_resent_after_reconnect)
{
	fx_open(NULL);
	withdrawn_iii("w-c5", 9);
	ck_assert_uint_eq(cancel_notices_after_resync("duty-twn-a", T0 + 3 * MIN), 1);
	ck_assert_uint_eq(cancel_notices_after_resync("duty-twn-b", T0 + 3 * MIN), 1);
	/* the version's own notice, still unacknowledged, goes too */
	ck_assert_uint_ge(outputs_to("wf/v1/duty/duty-twn-a/inbox", NULL), 2);
	ck_assert_uint_eq(cancel_notices_after_resync("duty-twn-a", T0 + 2 * MIN + 25 * 60 * MIN), 0);
	fx_close();
}
END_TEST

/* A RELEASED notice has no duty record either: a reconnect sends it again
 * while its warning is active; once withdrawn, only the 解除 goes. */
START_TEST(test_released_notice_resent_after_reconnect)
{
	fx_open(NULL);
	released_iii("w-r1");
	ck_assert_int_eq(delivery("w-r1", 1, "duty", "duty-twn-a/released", NULL), DSP_DLV_SENT);
	ck_assert_uint_eq(released_notices_after_resync("duty-twn-a", "w-r1", T0 + 3 * MIN), 1);
	ck_assert_uint_eq(released_notices_after_resync("duty-twn-b", "w-r1", T0 + 3 * MIN), 1);
	/* a level IV one released at once was never pending: nothing */
	Wf__V1__Warning w4 = mkw("w-r4", 1, WF__V1__LEVEL__LEVEL_IV, WF__V1__MSG_TYPE__MSG_TYPE_ALERT,
				 WF__V1__STATUS__STATUS_ACTUAL, T0);
	ck_assert_int_eq(apply_warning(&w4, T0), 0);
	ck_assert_uint_eq(released_notices_after_resync("duty-twn-a", "w-r4", T0 + 3 * MIN), 0);
	ck_assert_int_eq(decide("op-li", WF__V1__DECISION__DECISION_CANCEL, "w-r1", 1, "误报", 21,
				T0 + 4 * MIN, NULL),
			 0);
	ck_assert_uint_eq(released_notices_after_resync("duty-twn-a", "w-r1", T0 + 5 * MIN), 0);
	fx_close();
}
END_TEST

/* A RELEASED notice lost in a broker restart is sent again after the
 * reconnect even when a newer version came since (tests/chaos lost 75 of
 * 2,214 that way when only the current released version was resent); for
 * a day, not longer. */
START_TEST(test_released_notices_of_older_versions_resent)
{
	fx_open(NULL);
	released_iii("w-r2");
	Wf__V1__Warning w2 = mkw("w-r2", 2, WF__V1__LEVEL__LEVEL_III, WF__V1__MSG_TYPE__MSG_TYPE_UPDATE,
				 WF__V1__STATUS__STATUS_ACTUAL, T0 + 2 * MIN);
	ck_assert_int_eq(apply_warning(&w2, T0 + 2 * MIN), 0);
	ck_assert_int_eq(decide("op-zhang", WF__V1__DECISION__DECISION_APPROVE, "w-r2", 2, NULL, 31,
				T0 + 3 * MIN, NULL),
			 0);
	ck_assert_int_eq(delivery("w-r2", 2, "duty", "duty-twn-a/released", NULL), DSP_DLV_SENT);
	/* version 1's and version 2's */
	ck_assert_uint_eq(released_notices_after_resync("duty-twn-a", "w-r2", T0 + 4 * MIN), 2);
	ck_assert_uint_eq(released_notices_after_resync("duty-twn-b", "w-r2", T0 + 4 * MIN), 2);
	ck_assert_uint_eq(released_notices_after_resync("duty-twn-a", "w-r2", T0 + 25 * 60 * MIN), 0);
	fx_close();
}
END_TEST

/* A notice of the withdrawn version still unacknowledged at its deadline
 * is superseded, not escalated: the station above gets nothing to act on. */
START_TEST(test_cancel_stops_the_escalation)
{
	fx_open(NULL);
	withdrawn_iii("w-c6", 11);
	ck_assert_int_eq(delivery("w-c6", 1, "duty", "duty-twn-a", NULL), DSP_DLV_SENT);
	ck_assert_int_eq(tick(T0 + 31 * MIN), 0); /* level III: 30 min */
	ck_assert(!has_notice("duty-410185"));
	struct dsp_delivery d;
	ck_assert_int_eq(delivery("w-c6", 1, "duty", "duty-twn-a", &d), DSP_DLV_SUPERSEDED);
	ck_assert_ptr_nonnull(strstr(d.detail, "withdrawn by op-li"));
	ck_assert_int_eq(delivery("w-c6", 1, "duty", "duty-twn-b", NULL), DSP_DLV_SUPERSEDED);
	fx_close();
}
END_TEST

START_TEST(test_cancel_refusals)
{
	fx_open(NULL);
	released_iii("w-c2");
	struct wf_codec_error why;
	/* not an operator */
	ck_assert_int_eq(decide("op-nobody", WF__V1__DECISION__DECISION_CANCEL, "w-c2", 1, "x", 1,
				T0 + 2 * MIN, &why),
			 WF_NODE_REJECT);
	ck_assert_int_eq(why.reason, WF_REASON_BAD_ID);
	/* no reason */
	ck_assert_int_eq(decide("op-li", WF__V1__DECISION__DECISION_CANCEL, "w-c2", 1, "", 2,
				T0 + 2 * MIN, &why),
			 WF_NODE_REJECT);
	ck_assert_int_eq(why.reason, WF_REASON_MISSING_FIELD);
	/* not the released version; unknown warning */
	ck_assert_int_eq(decide("op-li", WF__V1__DECISION__DECISION_CANCEL, "w-c2", 2, "x", 3,
				T0 + 2 * MIN, &why),
			 WF_NODE_REJECT);
	ck_assert_int_eq(decide("op-li", WF__V1__DECISION__DECISION_CANCEL, "w-none", 1, "x", 4,
				T0 + 2 * MIN, &why),
			 WF_NODE_REJECT);
	/* nothing changed publicly */
	ck_assert_int_eq(delivery("w-c2", 1, "cap", "spool/cancel", NULL), -1);
	/* each refusal is in the operator's verdicts, with the reason */
	views(T0 + 3 * MIN);
	Wf__V1__OperatorVerdicts *v = verdicts_out("op-li");
	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq(v->n_entries, 3);
	ck_assert(!v->entries[0]->accepted);
	ck_assert_ptr_nonnull(strstr(v->entries[0]->outcome, "missing reason"));
	ck_assert_ptr_nonnull(strstr(v->entries[1]->outcome, "not the released version"));
	ck_assert_ptr_nonnull(strstr(v->entries[2]->outcome, "unknown"));
	wf__v1__operator_verdicts__free_unpacked(v, NULL);
	v = verdicts_out("op-nobody");
	ck_assert_ptr_nonnull(v);
	ck_assert_ptr_nonnull(strstr(v->entries[0]->outcome, "not an operator"));
	wf__v1__operator_verdicts__free_unpacked(v, NULL);
	/* an unreleased (pending) warning cannot be cancelled: reject it */
	Wf__V1__Warning w = mkw("w-c3", 1, WF__V1__LEVEL__LEVEL_II, WF__V1__MSG_TYPE__MSG_TYPE_ALERT,
				WF__V1__STATUS__STATUS_ACTUAL, T0);
	ck_assert_int_eq(apply_warning(&w, T0), 0);
	ck_assert_int_eq(decide("op-li", WF__V1__DECISION__DECISION_CANCEL, "w-c3", 1, "x", 5,
				T0 + 2 * MIN, &why),
			 WF_NODE_REJECT);
	ck_assert_ptr_nonnull(strstr(why.detail, "nothing released"));
	fx_close();
}
END_TEST

START_TEST(test_cancel_idempotent_across_restart_and_holds_later_versions)
{
	fx_open(NULL);
	released_iii("w-c4");
	ck_assert_int_eq(decide("op-li", WF__V1__DECISION__DECISION_CANCEL, "w-c4", 1, "演练结束", 1,
				T0 + 2 * MIN, NULL),
			 0);
	reopen();
	/* a second cancel (another run, another operator): nothing goes out */
	ck_assert_int_eq(decide("op-zhang", WF__V1__DECISION__DECISION_CANCEL, "w-c4", 1, "再次", 9,
				T0 + 3 * MIN, NULL),
			 0);
	ck_assert_uint_eq(outputs_to("wf/v1/broadcast/", NULL), 0);
	ck_assert_uint_eq(outputs_to("w-c4.v1.cancel.xml", NULL), 0);
	/* fusion's next version, level IV (auto by policy): held for review */
	Wf__V1__Warning w2 = mkw("w-c4", 2, WF__V1__LEVEL__LEVEL_IV,
				 WF__V1__MSG_TYPE__MSG_TYPE_UPDATE, WF__V1__STATUS__STATUS_ACTUAL,
				 T0 + 4 * MIN);
	ck_assert_int_eq(apply_warning(&w2, T0 + 4 * MIN), 0);
	ck_assert_int_eq(delivery("w-c4", 2, "cap", "spool", NULL), -1);
	ck_assert_uint_eq(outputs_to("wf/v1/broadcast/", NULL), 0);
	views(T0 + 4 * MIN);
	Wf__V1__WarningRecord *r = record_out("w-c4");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->review, WF__V1__REVIEW_STATE__REVIEW_PENDING);
	ck_assert_uint_eq(r->latest, 2);
	ck_assert_uint_eq(r->n_versions, 2);
	ck_assert_uint_eq(r->versions[1]->required, 1);
	ck_assert_uint_eq(r->n_audit, 3);
	ck_assert_ptr_nonnull(strstr(r->audit[2]->outcome, "already cancelled by op-li"));
	wf__v1__warning_record__free_unpacked(r, NULL);
	/* approved: released as a fresh Alert (the public had nothing), hold over */
	ck_assert_int_eq(decide("op-zhang", WF__V1__DECISION__DECISION_APPROVE, "w-c4", 2, NULL, 10,
				T0 + 5 * MIN, NULL),
			 0);
	const struct dsp_out *o = NULL;
	ck_assert_uint_eq(outputs_to("w-c4.v2.xml", &o), 1);
	ck_assert_ptr_nonnull(strstr((const char *)o->payload, "<msgType>Alert</msgType>"));
	Wf__V1__Warning w3 = mkw("w-c4", 3, WF__V1__LEVEL__LEVEL_IV,
				 WF__V1__MSG_TYPE__MSG_TYPE_UPDATE, WF__V1__STATUS__STATUS_ACTUAL,
				 T0 + 6 * MIN);
	ck_assert_int_eq(apply_warning(&w3, T0 + 6 * MIN), 0);
	ck_assert_int_eq(delivery("w-c4", 3, "cap", "spool", NULL), DSP_DLV_SENT); /* auto again */
	fx_close();
}
END_TEST

START_TEST(test_stats_count_what_happened)
{
	fx_open(NULL);
	Wf__V1__Warning w = mkw("w-s1", 1, WF__V1__LEVEL__LEVEL_IV, WF__V1__MSG_TYPE__MSG_TYPE_ALERT,
				WF__V1__STATUS__STATUS_ACTUAL, T0);
	static char *ev[] = { "met:e1", "water:e2" };
	w.event_ids = ev;
	w.n_event_ids = 2;
	ck_assert_int_eq(apply_warning(&w, T0 + 1500), 0); /* auto: released 1.5 s after made */
	ck_assert_int_eq(duty_ack("duty-twn-a", "w-s1", 1, T0 + 1500 + 40000), 0);
	ck_assert_int_eq(duty_ack("duty-twn-b", "w-s1", 1, T0 + 1500 + 90000), 0); /* not the first */
	released_iii("w-s2");
	views(T0 + 10 * MIN);
	Wf__V1__DispatchStats *s = stats_out();
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(s->versions, 2);
	ck_assert_uint_eq(s->released, 2);
	ck_assert_uint_eq(s->release_latency->count, 2);
	ck_assert_int_eq(s->release_latency->max_ms, MIN); /* w-s2: approved a minute after */
	ck_assert_uint_eq(s->ack_latency->count, 1);
	ck_assert_int_eq(s->ack_latency->max_ms, 40000);
	bool met = false, water = false;
	for (size_t i = 0; i < s->n_agencies; i++) {
		if (s->agencies[i]->agency == WF__V1__AGENCY__AGENCY_MET) {
			met = true;
			ck_assert_uint_eq(s->agencies[i]->versions, 1);
			ck_assert_uint_eq(s->agencies[i]->released, 1);
			ck_assert_int_eq(s->agencies[i]->release_latency->max_ms, 1500);
		}
		water = water || s->agencies[i]->agency == WF__V1__AGENCY__AGENCY_WATER;
	}
	ck_assert(met && water);
	uint64_t cap_sent = 0, duty_acked = 0;
	for (size_t i = 0; i < s->n_channels; i++)
		for (size_t k = 0; k < s->channels[i]->n_states; k++) {
			const Wf__V1__Count *c = s->channels[i]->states[k];
			if (strcmp(s->channels[i]->channel, "cap") == 0 && strcmp(c->name, "sent") == 0)
				cap_sent = c->n;
			if (strcmp(s->channels[i]->channel, "duty") == 0 && strcmp(c->name, "acked") == 0)
				duty_acked = c->n;
		}
	ck_assert_uint_eq(cap_sent, 2);
	ck_assert_uint_eq(duty_acked, 2);
	/* not_configured SMS (routed, no gateway) counts as a failure */
	uint64_t nc = 0;
	for (size_t i = 0; i < s->n_failures; i++)
		if (strcmp(s->failures[i]->name, "not_configured") == 0)
			nc = s->failures[i]->n;
	ck_assert_uint_eq(nc, 2);
	wf__v1__dispatch_stats__free_unpacked(s, NULL);
	/* survives a restart */
	reopen();
	dsp_engine_views_mark_all(fx.e);
	views(T0 + 11 * MIN);
	s = stats_out();
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(s->versions, 2);
	wf__v1__dispatch_stats__free_unpacked(s, NULL);
	fx_close();
}
END_TEST

START_TEST(test_latency_quantiles)
{
	struct dsp_latency l;
	memset(&l, 0, sizeof l);
	ck_assert_int_eq(dsp_latency_quantile(&l, 0.5), 0);
	for (int i = 0; i < 90; i++)
		dsp_latency_add(&l, 100);  /* bucket 7: 64..127 */
	for (int i = 0; i < 10; i++)
		dsp_latency_add(&l, 5000); /* bucket 13: 4096..8191 */
	ck_assert_uint_eq(l.count, 100);
	ck_assert_int_eq(dsp_latency_quantile(&l, 0.5), 127);
	ck_assert_int_eq(dsp_latency_quantile(&l, 0.95), 5000); /* bounded by the max */
	dsp_latency_add(&l, -3);                                /* clock step: counted as 0 */
	ck_assert_int_eq(l.bucket[0], 1);
}
END_TEST

START_TEST(test_silence_message_audited_and_listed)
{
	fx_open(NULL);
	Wf__V1__Silence s = WF__V1__SILENCE__INIT;
	s.id = "sil-1";
	s.operator_ = "op-zhang";
	s.channel = "cap";
	s.region_prefix = "410185";
	s.expires_ms = T0 + 60 * MIN;
	s.reason = "CAP 平台维护";
	s.sent_ms = T0;
	s.producer = "op-zhang";
	s.seq = 3;
	struct wf_codec_error why;
	struct wf_txn *t;
	ck_assert_int_eq(wf_store_txn_begin(fx.store, true, &t), 0);
	ck_assert_int_eq(dsp_engine_control(fx.e, t, WF_TOPIC_SILENCE, &s.base, T0 + 1000, &why), 0);
	s.operator_ = "op-nobody";
	s.id = "sil-2";
	s.seq = 1;
	ck_assert_int_eq(dsp_engine_control(fx.e, t, WF_TOPIC_SILENCE, &s.base, T0 + 1000, &why),
			 WF_NODE_REJECT);
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
	views(T0 + 2000);
	const struct dsp_out *o = NULL;
	ck_assert_uint_eq(outputs_to("wf/v1/silences/wf-dispatch-t", &o), 1);
	Wf__V1__SilenceList *l = wf__v1__silence_list__unpack(NULL, o->len, o->payload);
	ck_assert_ptr_nonnull(l);
	ck_assert_uint_eq(l->n_silences, 1);
	ck_assert_str_eq(l->silences[0]->id, "sil-1");
	ck_assert_str_eq(l->silences[0]->operator_, "op-zhang");
	ck_assert_int_eq(l->silences[0]->applied_ms, T0 + 1000);
	wf__v1__silence_list__free_unpacked(l, NULL);
	Wf__V1__OperatorVerdicts *v = verdicts_out("op-nobody");
	ck_assert_ptr_nonnull(v);
	ck_assert(!v->entries[0]->accepted);
	ck_assert_str_eq(v->entries[0]->action, "silence");
	wf__v1__operator_verdicts__free_unpacked(v, NULL);
	/* a warning on that channel there: silenced */
	Wf__V1__Warning w = mkw("w-q1", 1, WF__V1__LEVEL__LEVEL_IV, WF__V1__MSG_TYPE__MSG_TYPE_ALERT,
				WF__V1__STATUS__STATUS_ACTUAL, T0 + 3000);
	ck_assert_int_eq(apply_warning(&w, T0 + 3000), 0);
	ck_assert_int_eq(delivery("w-q1", 1, "cap", "*", NULL), DSP_DLV_SILENCED);
	fx_close();
}
END_TEST

static int control_silence(const char *id, int64_t expires, int64_t now, struct wf_codec_error *why)
{
	Wf__V1__Silence s = WF__V1__SILENCE__INIT;
	static uint64_t seq = 100;
	s.id = (char *)id;
	s.operator_ = "op-zhang";
	s.channel = "cap";
	s.region_prefix = "410185";
	s.expires_ms = expires;
	s.reason = "CAP 平台维护";
	s.sent_ms = now;
	s.producer = "op-zhang";
	s.seq = ++seq;
	struct wf_txn *t;
	ck_assert_int_eq(wf_store_txn_begin(fx.store, true, &t), 0);
	int r = dsp_engine_control(fx.e, t, WF_TOPIC_SILENCE, &s.base, now, why);
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
	return r;
}

static int count_cb(void *ud, const void *k, size_t kl, const void *v, size_t vl)
{
	(*(size_t *)ud)++;
	return 0;
}

static size_t stored_silences(void)
{
	struct wf_txn *t;
	size_t n = 0;
	ck_assert_int_eq(wf_store_txn_begin(fx.store, false, &t), 0);
	ck_assert_int_eq(wf_store_foreach(t, dsp_engine_dbs(fx.e)->silence, NULL, 0, count_cb, &n), 0);
	wf_store_txn_abort(t);
	return n;
}

/* At most 256 silences in force (a new id beyond is refused, the same id
 * replaces); expired ones neither count nor hide a later one from a
 * release, and are deleted [dispatch] retain after their expiry. */
START_TEST(test_silences_bounded_and_purged)
{
	fx_open(NULL);
	struct wf_codec_error why;
	char id[32];
	int64_t end = T0 + 10 * MIN, retain = fx.cfg.retain_ms;
	for (int i = 0; i < 256; i++) {
		snprintf(id, sizeof id, "sil-%03d", i);
		ck_assert_int_eq(control_silence(id, end, T0, &why), 0);
	}
	ck_assert_int_eq(control_silence("sil-over", end, T0, &why), WF_NODE_REJECT);
	ck_assert_int_eq(why.reason, WF_REASON_TOO_LARGE);
	ck_assert_ptr_nonnull(strstr(why.detail, "256 silences in force"));
	ck_assert_int_eq(control_silence("sil-007", end + MIN, T0, &why), 0); /* replaces */
	ck_assert_uint_eq(stored_silences(), 256);
	/* expired (not yet purged): a new one is taken and applies, though it
	 * sorts after the 256 expired ones */
	ck_assert_int_eq(control_silence("zz-sil", T0 + retain + 120 * MIN, end + 2 * MIN, &why), 0);
	Wf__V1__Warning w = mkw("w-sil", 1, WF__V1__LEVEL__LEVEL_IV, WF__V1__MSG_TYPE__MSG_TYPE_ALERT,
				WF__V1__STATUS__STATUS_ACTUAL, end + 3 * MIN);
	ck_assert_int_eq(apply_warning(&w, end + 3 * MIN), 0);
	struct dsp_delivery d;
	ck_assert_int_eq(delivery("w-sil", 1, "cap", "*", &d), DSP_DLV_SILENCED);
	ck_assert_ptr_nonnull(strstr(d.detail, "zz-sil"));
	/* retain after their expiry: deleted, the one in force kept */
	ck_assert_int_eq(tick(end + retain - 1000), 0);
	ck_assert_uint_eq(stored_silences(), 257);
	ck_assert_int_eq(tick(end + MIN + retain + 60000), 0);
	ck_assert_uint_eq(stored_silences(), 1);
	fx_close();
}
END_TEST

/* More changed warnings than the old limit of 1,024 (a burst): each view is
 * rebuilt once, the others not (no overflow into "all of them") */
/* N level-IV alerts PREFIX-0000 .. at T0, one transaction each */
static void apply_alerts(const char *prefix, int n)
{
	char id[32];
	for (int i = 0; i < n; i++) {
		snprintf(id, sizeof id, "%s-%04d", prefix, i);
		Wf__V1__Warning w = mkw(id, 1, WF__V1__LEVEL__LEVEL_IV,
					WF__V1__MSG_TYPE__MSG_TYPE_ALERT, WF__V1__STATUS__STATUS_ACTUAL,
					T0);
		ck_assert_int_eq(apply_warning(&w, T0), 0);
	}
}

START_TEST(test_views_of_a_burst)
{
	enum { N_WARN = 1200, N_MARK = 1050 };
	/* duty only: one county's broadcast state would leave most of them out
	 * (test-dispatch-policy.c, broadcast_state_full) */
	fx_open("[station duty-410185]\nregion = 410185\n"
		"[operator op-li]\n[route everything]\nchannels = duty\n");
	char id[32];
	apply_alerts("w-burst", N_WARN);
	views(T0 + 1000);
	ck_assert_uint_eq(outputs_to("wf/v1/review/", NULL), N_WARN);
	ck_assert_uint_eq(views(T0 + 2000), 0); /* nothing changed since */
	for (int k = 0; k < 2; k++) /* each one twice: one view each */
		for (int i = 0; i < N_MARK; i++) {
			snprintf(id, sizeof id, "w-burst-%04d", i);
			dsp_mark_warning(fx.e, id);
		}
	views(T0 + 3000);
	ck_assert_uint_eq(outputs_to("wf/v1/review/", NULL), N_MARK);
	ck_assert_uint_eq(outputs_to("wf/v1/review/w-burst-1049", NULL), 1);
	ck_assert_uint_eq(outputs_to("wf/v1/review/w-burst-1050", NULL), 0);
	/* the set is empty again, and takes names again */
	dsp_mark_warning(fx.e, "w-burst-0007");
	views(T0 + 4000);
	ck_assert_uint_eq(outputs_to("wf/v1/review/", NULL), 1);
	fx_close();
}
END_TEST

/* every review output of the last views build noted in SEEN (index from
 * the id w-all-NNNN); returns how many there were */
static size_t note_records(bool *seen, int n)
{
	const struct dsp_out *o;
	size_t k = 0, m = dsp_engine_outputs(fx.e, &o);
	for (size_t i = 0; i < m; i++) {
		int ix;
		if (sscanf(o[i].topic, "wf/v1/review/w-all-%d", &ix) == 1 && ix >= 0 && ix < n) {
			seen[ix] = true;
			k++;
		}
	}
	return k;
}

/* A rebuild of all records (a restart, a reconnect: mark_all, or a set of
 * changes that overflowed) goes 4,096 records a pass and the next passes
 * go on where it stopped until every record is out. It once stopped at
 * 4,096 for good: in chaos, the final record of a warning that ended just
 * before wf-dispatch was killed was never published again. */
START_TEST(test_rebuild_of_all_records_in_passes)
{
	enum { N_WARN = 5000 };
	static bool seen[N_WARN];
	fx_open("[station duty-410185]\nregion = 410185\n"
		"[operator op-li]\n[route everything]\nchannels = duty\n");
	apply_alerts("w-all", N_WARN);
	for (int round = 0; round < 2; round++) {
		/* round 0: the 5,000 changes; round 1: a restart's mark_all */
		memset(seen, 0, sizeof seen);
		if (round == 1) {
			ck_assert(!dsp_engine_views_pending(fx.e, false));
			dsp_engine_views_mark_all(fx.e);
		}
		int passes = 0;
		size_t total = 0;
		while (dsp_engine_views_pending(fx.e, false) && passes < 10) {
			views(T0 + 1000 + passes);
			total += note_records(seen, N_WARN);
			passes++;
		}
		ck_assert(!dsp_engine_views_pending(fx.e, false));
		int missing = 0;
		for (int i = 0; i < N_WARN; i++)
			missing += !seen[i];
		ck_assert_msg(missing == 0, "round %d: %d of %d records never built (%d passes)",
			      round, missing, N_WARN, passes);
		ck_assert_int_ge(passes, round == 1 ? 2 : 1);
		ck_assert_uint_ge(total, N_WARN);
		ck_assert_uint_le(total, 2 * N_WARN); /* each once, at most twice */
	}
	fx_close();
}
END_TEST

/* A warning replayed late: sent and expired two days before it is
 * processed, then cancelled. Its record is rebuilt by a restart's
 * mark-all, since it ended here within the day (chaos, seed 2: the stale
 * records of such warnings explained 12 RELEASED notices wrongly), while a
 * warning that ended here three days ago is not. */
START_TEST(test_rebuild_includes_warnings_ended_today)
{
	const int64_t DAY = 24 * 60 * MIN, now = T0 + 4 * DAY;
	fx_open("[station duty-410185]\nregion = 410185\n"
		"[operator op-li]\n[route everything]\nchannels = duty\n");
	/* ended three days before NOW (by its cancel, processed then) */
	Wf__V1__Warning a = mkw("w-old", 1, WF__V1__LEVEL__LEVEL_IV, WF__V1__MSG_TYPE__MSG_TYPE_ALERT,
				WF__V1__STATUS__STATUS_ACTUAL, T0);
	ck_assert_int_eq(apply_warning(&a, T0), 0);
	Wf__V1__Warning ac = mkw("w-old", 2, WF__V1__LEVEL__LEVEL_IV,
				 WF__V1__MSG_TYPE__MSG_TYPE_CANCEL, WF__V1__STATUS__STATUS_ACTUAL, T0);
	ck_assert_int_eq(apply_warning(&ac, T0 + DAY), 0);
	/* sent two days before NOW, processed (and cancelled) only at NOW */
	Wf__V1__Warning b = mkw("w-late", 1, WF__V1__LEVEL__LEVEL_IV, WF__V1__MSG_TYPE__MSG_TYPE_ALERT,
				WF__V1__STATUS__STATUS_ACTUAL, now - 2 * DAY);
	ck_assert_int_eq(apply_warning(&b, now), 0);
	Wf__V1__Warning bc = mkw("w-late", 2, WF__V1__LEVEL__LEVEL_IV,
				 WF__V1__MSG_TYPE__MSG_TYPE_CANCEL, WF__V1__STATUS__STATUS_ACTUAL,
				 now - 2 * DAY);
	ck_assert_int_eq(apply_warning(&bc, now), 0);
	views(now);
	dsp_engine_views_mark_all(fx.e);
	views(now + 1000);
	ck_assert_uint_eq(outputs_to("wf/v1/review/w-late", NULL), 1);
	ck_assert_uint_eq(outputs_to("wf/v1/review/w-old", NULL), 0);
	Wf__V1__WarningRecord *r = record_out("w-late");
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->latest, 2);
	wf__v1__warning_record__free_unpacked(r, NULL);
	fx_close();
}
END_TEST

static int many_records_fn(struct wf_txn *t, void *ud)
{
	const int *n = ud;
	char target[32];
	for (int i = 0; i < *n; i++) {
		snprintf(target, sizeof target, "duty-extra-%03d", i);
		int r = dsp_record(t, dsp_engine_dbs(fx.e), "w-many", 1, "duty", target, DSP_DLV_SENT,
				   T0 + i, "notice %d", i);
		if (r < 0)
			return r;
	}
	dsp_mark_warning(fx.e, "w-many");
	return 0;
}

/* A version with more delivery records than the record lists: the scan's
 * arrays grow as they fill (they were 2,048 entries, zeroed, per record),
 * every record listed keeps its own channel, target and detail, and the
 * list stops at 128. */
START_TEST(test_record_of_many_deliveries)
{
	fx_open(NULL);
	Wf__V1__Warning w = mkw("w-many", 1, WF__V1__LEVEL__LEVEL_IV,
				WF__V1__MSG_TYPE__MSG_TYPE_ALERT, WF__V1__STATUS__STATUS_ACTUAL, T0);
	ck_assert_int_eq(apply_warning(&w, T0), 0);
	views(T0);
	Wf__V1__WarningRecord *r = record_out("w-many");
	ck_assert_ptr_nonnull(r);
	size_t before = r->n_deliveries;
	wf__v1__warning_record__free_unpacked(r, NULL);
	ck_assert_uint_lt(before, 20);
	static const int counts[] = { 20, 300 }; /* fewer than a list holds; more than it */
	for (size_t round = 0; round < 2; round++) {
		int n = counts[round];
		ck_assert_int_eq(wf_store_update(fx.store, many_records_fn, &n), 0);
		views(T0 + 1000);
		r = record_out("w-many");
		ck_assert_ptr_nonnull(r);
		size_t want = before + (size_t)n < 128 ? before + (size_t)n : 128;
		ck_assert_uint_eq(r->n_deliveries, want);
		size_t extra = 0;
		for (size_t i = 0; i < r->n_deliveries; i++) {
			const Wf__V1__DeliveryRecord *d = r->deliveries[i];
			int k;
			if (sscanf(d->target, "duty-extra-%d", &k) != 1)
				continue;
			char detail[32];
			snprintf(detail, sizeof detail, "notice %d", k);
			ck_assert_str_eq(d->channel, "duty");
			ck_assert_str_eq(d->detail, detail);
			ck_assert_str_eq(d->state, "sent");
			extra++;
		}
		/* the first 128 by key: the others of the version may sort after */
		ck_assert_uint_ge(extra, want - before);
		ck_assert_uint_le(extra, (size_t)n < want ? (size_t)n : want);
		wf__v1__warning_record__free_unpacked(r, NULL);
	}
	fx_close();
}
END_TEST

/* The released version's deliveries are listed beside the latest's, also
 * when it is older than the versions the record lists (each version's
 * records sit under its own key prefix). */
START_TEST(test_record_of_an_old_released_version)
{
	fx_open(NULL);
	Wf__V1__Warning w = mkw("w-old-rel", 1, WF__V1__LEVEL__LEVEL_IV,
				WF__V1__MSG_TYPE__MSG_TYPE_ALERT, WF__V1__STATUS__STATUS_ACTUAL, T0);
	ck_assert_int_eq(apply_warning(&w, T0), 0); /* IV: released at once */
	for (uint32_t v = 2; v <= 41; v++) { /* level I: each waits for review */
		Wf__V1__Warning u = mkw("w-old-rel", v, WF__V1__LEVEL__LEVEL_I,
					WF__V1__MSG_TYPE__MSG_TYPE_UPDATE,
					WF__V1__STATUS__STATUS_ACTUAL, T0 + v);
		ck_assert_int_eq(apply_warning(&u, T0 + v), 0);
	}
	views(T0 + 100);
	Wf__V1__WarningRecord *r = record_out("w-old-rel");
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->latest, 41);
	ck_assert_uint_eq(r->released, 1);
	ck_assert_uint_eq(r->n_versions, 32); /* 10..41 */
	size_t of_1 = 0, of_41 = 0, others = 0;
	for (size_t i = 0; i < r->n_deliveries; i++) {
		if (r->deliveries[i]->version == 1)
			of_1++;
		else if (r->deliveries[i]->version == 41)
			of_41++;
		else
			others++;
	}
	ck_assert_uint_gt(of_1, 0);
	ck_assert_uint_gt(of_41, 0);
	ck_assert_uint_eq(others, 0);
	wf__v1__warning_record__free_unpacked(r, NULL);
	fx_close();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dispatch-views");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_cancel_withdraws_the_public_version);
	tcase_add_test(tc, test_cancel_refusals);
	tcase_add_test(tc, test_cancel_notice_resent_after_reconnect);
	tcase_add_test(tc, test_released_notice_resent_after_reconnect);
	tcase_add_test(tc, test_released_notices_of_older_versions_resent);
	tcase_add_test(tc, test_cancel_stops_the_escalation);
	tcase_add_test(tc, test_cancel_idempotent_across_restart_and_holds_later_versions);
	tcase_add_test(tc, test_stats_count_what_happened);
	tcase_add_test(tc, test_latency_quantiles);
	tcase_add_test(tc, test_silence_message_audited_and_listed);
	tcase_add_test(tc, test_silences_bounded_and_purged);
	tcase_add_test(tc, test_views_of_a_burst);
	tcase_add_test(tc, test_rebuild_of_all_records_in_passes);
	tcase_add_test(tc, test_rebuild_includes_warnings_ended_today);
	tcase_add_test(tc, test_record_of_many_deliveries);
	tcase_add_test(tc, test_record_of_an_old_released_version);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
