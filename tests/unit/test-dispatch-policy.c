/* Unit tests for the release policy (services/dispatch/policy.c) and the
 * engine's review workflow (engine.c): one rule per test. */
#include "dispatch-test.h"

#define A WF__V1__MSG_TYPE__MSG_TYPE_ALERT
#define U WF__V1__MSG_TYPE__MSG_TYPE_UPDATE
#define C WF__V1__MSG_TYPE__MSG_TYPE_CANCEL
#define ACTUAL WF__V1__STATUS__STATUS_ACTUAL
#define L1 WF__V1__LEVEL__LEVEL_I
#define L2 WF__V1__LEVEL__LEVEL_II
#define L3 WF__V1__LEVEL__LEVEL_III
#define L4 WF__V1__LEVEL__LEVEL_IV

static size_t n_bcast(void) { return outputs_to("wf/v1/broadcast/", NULL); }

START_TEST(test_required_by_level)
{
	struct dsp_policy p;
	struct dsp_prior none = { 0, 0 };
	dsp_policy_defaults(&p);
	Wf__V1__Warning w = mkw("w", 1, L1, A, ACTUAL, T0);
	ck_assert_uint_eq(dsp_policy_required(&p, &w, &none), 2);
	w.level = L2;
	ck_assert_uint_eq(dsp_policy_required(&p, &w, &none), 2);
	w.level = L3;
	ck_assert_uint_eq(dsp_policy_required(&p, &w, &none), 1);
	w.level = L4;
	ck_assert_uint_eq(dsp_policy_required(&p, &w, &none), 0);
	p.release[L4] = DSP_RELEASE_ONE; /* configurable */
	ck_assert_uint_eq(dsp_policy_required(&p, &w, &none), 1);
}
END_TEST

/* Level IV is released at once: broadcast state and CAP out in the same
 * transaction as the warning; duty stations get it without "pending". */
START_TEST(test_auto_release)
{
	fx_open(NULL);
	Wf__V1__Warning w = mkw("w-auto", 1, L4, A, ACTUAL, T0);
	ck_assert_int_eq(apply_warning(&w, T0), 0);
	ck_assert_uint_eq(n_bcast(), 1);
	ck_assert_int_eq(delivery("w-auto", 1, "cap", "spool", NULL), DSP_DLV_SENT);
	ck_assert_int_eq(delivery("w-auto", 1, "broadcast", "410185", NULL), DSP_DLV_SENT);
	Wf__V1__DutyNotice *n = notice_to("duty-twn-a");
	ck_assert_ptr_nonnull(n);
	ck_assert(!n->pending_review);
	wf__v1__duty_notice__free_unpacked(n, NULL);
	fx_close();
}
END_TEST

static int cap_calls, cap_fail;
static char cap_name[200];

static int cap_hook(void *ud, const char *name, const void *data, size_t len)
{
	(void)ud;
	(void)data;
	cap_calls++;
	snprintf(cap_name, sizeof cap_name, "%s", name);
	ck_assert_uint_gt(len, 0);
	return cap_fail;
}

/* With a CAP writer (wf-dispatch's spool) the file is written inside the
 * releasing transaction, not after its commit (a crash in between lost it:
 * recorded sent, never written): a write that fails aborts the
 * transaction, so nothing is recorded sent without a file. */
START_TEST(test_cap_written_in_the_releasing_txn)
{
	struct dsp_config cfg;
	dsp_config_defaults(&cfg);
	cfg.cap_write = cap_hook;
	fx_open_cfg(NULL, &cfg);
	Wf__V1__Warning w = mkw("w-cw", 1, L4, A, ACTUAL, T0);
	cap_calls = 0;
	cap_fail = -EIO;
	struct call c = { .w = &w, .now = T0 };
	ck_assert_int_eq(wf_store_update(fx.store, call_fn, &c), -EIO);
	ck_assert_int_eq(cap_calls, 1);
	ck_assert_int_eq(delivery("w-cw", 1, "cap", "spool", NULL), -1);
	cap_fail = 0;
	dsp_engine_outputs_clear(fx.e);
	ck_assert_int_eq(apply_warning(&w, T0), 0);
	ck_assert_int_eq(cap_calls, 2);
	ck_assert_str_eq(cap_name, "w-cw.v1.xml");
	ck_assert_int_eq(delivery("w-cw", 1, "cap", "spool", NULL), DSP_DLV_SENT);
	ck_assert_uint_eq(outputs_to("w-cw.v1.xml", NULL), 0); /* nothing left for after */
	ck_assert_uint_eq(n_bcast(), 1);
	fx_close();
}
END_TEST

/* A county's broadcast state is one message: when its active warnings do
 * not fit, the most severe, then the latest to expire, are kept, the others
 * get a left_out record, and nothing stalls (it used to fail the transaction).
 * When room frees, the left-out ones still active come back (they used to
 * stay out until a new version of them came). */
START_TEST(test_broadcast_state_full)
{
	enum { N_IV = 800 };
	fx_open("[station duty-410185]\nregion = 410185\n[operator op-li]\n"
		"[route everything]\nchannels = broadcast\n");
	char id[32];
	for (int i = 0; i < N_IV; i++) {
		snprintf(id, sizeof id, "w-full-%04d", i);
		Wf__V1__Warning w = mkw(id, 1, L4, A, ACTUAL, T0 + i * 1000LL);
		ck_assert_int_eq(apply_warning(&w, T0 + i * 1000LL), 0);
	}
	int64_t now = T0 + N_IV * 1000LL;
	Wf__V1__Warning w3 = mkw("w-full-three", 1, L3, A, ACTUAL, now - 60000);
	ck_assert_int_eq(apply_warning(&w3, now), 0);
	ck_assert_int_eq(approve("op-li", "w-full-three", 1, now, NULL), 0);
	ck_assert_int_eq(delivery("w-full-three", 1, "broadcast", "410185", NULL), DSP_DLV_SENT);
	const struct dsp_out *o = NULL;
	ck_assert_uint_eq(outputs_to("wf/v1/broadcast/41/4101/410185", &o), 1);
	Wf__V1__BroadcastState *st = wf__v1__broadcast_state__unpack(NULL, o->len, o->payload);
	ck_assert_ptr_nonnull(st);
	size_t kept = st->n_active;
	ck_assert_uint_gt(kept, 100);
	ck_assert_uint_lt(kept, N_IV);
	ck_assert_uint_le(o->len, 65536);
	/* the level III one first, then level IV by expiry, latest first */
	ck_assert_str_eq(st->active[0]->warning_id, "w-full-three");
	ck_assert_str_eq(st->active[1]->warning_id, "w-full-0799");
	for (size_t i = 2; i < kept; i++)
		ck_assert_int_ge(st->active[i - 1]->expires_ms, st->active[i]->expires_ms);
	wf__v1__broadcast_state__free_unpacked(st, NULL);
	/* every IV one is in the state or recorded as left out, never both */
	size_t left = 0, sent = 0;
	for (int i = 0; i < N_IV; i++) {
		snprintf(id, sizeof id, "w-full-%04d", i);
		int d = delivery(id, 1, "broadcast", "410185", NULL);
		left += d == DSP_DLV_LEFT_OUT;
		sent += d == DSP_DLV_SENT;
	}
	ck_assert_uint_eq(left + sent, N_IV);
	ck_assert_uint_eq(sent, kept - 1);
	ck_assert_int_eq(delivery("w-full-0000", 1, "broadcast", "410185", NULL), DSP_DLV_LEFT_OUT);
	ck_assert_int_eq(delivery("w-full-0799", 1, "broadcast", "410185", NULL), DSP_DLV_SENT);

	/* Room frees: the left-out ones come back (those not expired meanwhile).
	 * The first 11 left-out ones expire at this tick... */
	const int64_t h6 = 6 * 60 * MIN;
	ck_assert_int_eq(tick(T0 + h6 + 10000), 0);
	/* ...then the 200 latest to expire are cancelled. */
	for (int i = N_IV - 200; i < N_IV; i++) {
		snprintf(id, sizeof id, "w-full-%04d", i);
		Wf__V1__Warning c = mkw(id, 2, L4, C, ACTUAL, T0 + h6 + 10500);
		ck_assert_int_eq(apply_warning(&c, T0 + h6 + 10500), 0);
	}
	ck_assert_uint_eq(outputs_to("wf/v1/broadcast/41/4101/410185", &o), 1);
	st = wf__v1__broadcast_state__unpack(NULL, o->len, o->payload);
	ck_assert_ptr_nonnull(st);
	ck_assert_uint_eq(st->n_active, 1 + (N_IV - 200 - 11)); /* w-full-three, 0011..0599 */
	bool has_0000 = false, has_0011 = false;
	for (size_t i = 0; i < st->n_active; i++) {
		has_0000 = has_0000 || strcmp(st->active[i]->warning_id, "w-full-0000") == 0;
		has_0011 = has_0011 || strcmp(st->active[i]->warning_id, "w-full-0011") == 0;
	}
	wf__v1__broadcast_state__free_unpacked(st, NULL);
	ck_assert(!has_0000); /* expired while left out: never back */
	ck_assert(has_0011);
	ck_assert_int_eq(delivery("w-full-0011", 1, "broadcast", "410185", NULL), DSP_DLV_SENT);
	ck_assert_int_eq(delivery("w-full-0000", 1, "broadcast", "410185", NULL), DSP_DLV_LEFT_OUT);
	fx_close();
}
END_TEST

/* Level III: duty stations see it at once, marked pending review; public
 * channels only after one approval. */
START_TEST(test_one_approval)
{
	fx_open(NULL);
	Wf__V1__Warning w = mkw("w-3", 1, L3, A, ACTUAL, T0);
	ck_assert_int_eq(apply_warning(&w, T0), 0);
	ck_assert_uint_eq(n_bcast(), 0);
	Wf__V1__DutyNotice *n = notice_to("duty-twn-b");
	ck_assert_ptr_nonnull(n);
	ck_assert(n->pending_review);
	wf__v1__duty_notice__free_unpacked(n, NULL);
	ck_assert_int_eq(delivery("w-3", 1, "cap", "spool", NULL), -1);
	ck_assert_int_eq(approve("op-zhang", "w-3", 1, T0 + MIN, NULL), 0);
	ck_assert_uint_eq(n_bcast(), 1);
	ck_assert_int_eq(delivery("w-3", 1, "cap", "spool", NULL), DSP_DLV_SENT);
	ck_assert_int_eq(delivery("w-3", 1, "review", "op-zhang", NULL), DSP_DLV_APPROVED);
	fx_close();
}
END_TEST

/* A station told of a version while it waited for review hears when it is
 * released: a RELEASED notice (no acknowledgement needed), recorded
 * duty|<station>/released; its duty record's resend says released too.
 * Nothing of the kind for a version released at once, or approved again. */
START_TEST(test_release_announced_to_stations)
{
	fx_open(NULL);
	Wf__V1__Warning w = mkw("w-ann", 1, L3, A, ACTUAL, T0);
	ck_assert_int_eq(apply_warning(&w, T0), 0);
	Wf__V1__DutyNotice *n = notice_to("duty-twn-b");
	ck_assert_ptr_nonnull(n);
	ck_assert(n->pending_review);
	ck_assert_int_eq(n->kind, WF__V1__NOTICE_KIND__NOTICE_KIND_NOTICE);
	ck_assert_int_gt(n->deadline_ms, 0);
	wf__v1__duty_notice__free_unpacked(n, NULL);
	ck_assert_int_eq(approve("op-zhang", "w-ann", 1, T0 + MIN, NULL), 0);
	n = notice_to("duty-twn-b");
	ck_assert_ptr_nonnull(n);
	ck_assert_int_eq(n->kind, WF__V1__NOTICE_KIND__NOTICE_KIND_RELEASED);
	ck_assert(!n->pending_review);
	ck_assert_int_eq(n->deadline_ms, 0);
	ck_assert_uint_eq(n->version, 1);
	ck_assert_ptr_nonnull(strstr(n->text, "已审核发布"));
	wf__v1__duty_notice__free_unpacked(n, NULL);
	ck_assert_int_eq(delivery("w-ann", 1, "duty", "duty-twn-b/released", NULL), DSP_DLV_SENT);
	/* still owed an acknowledgement: the notice itself */
	ck_assert_int_eq(delivery("w-ann", 1, "duty", "duty-twn-b", NULL), DSP_DLV_SENT);
	/* approved again: counted once, nothing announced again */
	ck_assert_int_eq(approve("op-li", "w-ann", 1, T0 + 2 * MIN, NULL), 0);
	ck_assert(!has_notice("duty-twn-b"));
	/* released at once (level IV): no announcement */
	Wf__V1__Warning w4 = mkw("w-ann-4", 1, L4, A, ACTUAL, T0);
	ck_assert_int_eq(apply_warning(&w4, T0), 0);
	ck_assert_int_eq(delivery("w-ann-4", 1, "duty", "duty-twn-b/released", NULL), -1);
	/* an exercise approved: it never reaches the public, nothing announced */
	Wf__V1__Warning wx = mkw("w-ann-x", 1, L3, A, WF__V1__STATUS__STATUS_EXERCISE, T0);
	ck_assert_int_eq(apply_warning(&wx, T0), 0);
	ck_assert_int_eq(approve("op-zhang", "w-ann-x", 1, T0 + MIN, NULL), 0);
	ck_assert(!has_notice("duty-twn-b"));
	ck_assert_int_eq(delivery("w-ann-x", 1, "duty", "duty-twn-b/released", NULL), -1);
	fx_close();
}
END_TEST

/* Levels I/II need two DIFFERENT operators: the same operator approving
 * twice counts once, and nothing is released until a second one does. */
START_TEST(test_two_operators_same_counts_once)
{
	fx_open(NULL);
	Wf__V1__Warning w = mkw("w-1", 1, L1, A, ACTUAL, T0);
	ck_assert_int_eq(apply_warning(&w, T0), 0);
	ck_assert_int_eq(approve("op-zhang", "w-1", 1, T0 + MIN, NULL), 0);
	ck_assert_uint_eq(n_bcast(), 0);
	ck_assert_int_eq(approve("op-zhang", "w-1", 1, T0 + 2 * MIN, NULL), 0);
	ck_assert_uint_eq(n_bcast(), 0);
	ck_assert_int_eq(delivery("w-1", 1, "cap", "spool", NULL), -1);
	ck_assert_int_eq(approve("op-li", "w-1", 1, T0 + 3 * MIN, NULL), 0);
	ck_assert_uint_eq(n_bcast(), 1);
	ck_assert_int_eq(delivery("w-1", 1, "cap", "spool", NULL), DSP_DLV_SENT);
	/* a third approval after release changes nothing */
	ck_assert_int_eq(approve("op-wang", "w-1", 1, T0 + 4 * MIN, NULL), 0);
	ck_assert_uint_eq(n_bcast(), 0);
	fx_close();
}
END_TEST

/* An approval names the exact version: one for a superseded version is
 * refused (dead-lettered with BAD_REFERENCE), and the newer version needs
 * its own approvals. */
START_TEST(test_superseded_refused)
{
	struct wf_codec_error why;
	fx_open(NULL);
	Wf__V1__Warning w1 = mkw("w-s", 1, L3, A, ACTUAL, T0);
	Wf__V1__Warning w2 = mkw("w-s", 2, L2, U, ACTUAL, T0 + MIN);
	ck_assert_int_eq(apply_warning(&w1, T0), 0);
	ck_assert_int_eq(apply_warning(&w2, T0 + MIN), 0);
	ck_assert_int_eq(approve("op-zhang", "w-s", 1, T0 + 2 * MIN, &why), WF_NODE_REJECT);
	ck_assert_int_eq(why.reason, WF_REASON_BAD_REFERENCE);
	ck_assert_ptr_nonnull(strstr(why.detail, "superseded"));
	ck_assert_uint_eq(n_bcast(), 0);
	ck_assert_int_eq(delivery("w-s", 1, "review", "op-zhang", NULL), DSP_DLV_REFUSED);
	/* so is anyone not listed as an operator (e.g. a service identity) */
	ck_assert_int_eq(approve("wf-met-1", "w-s", 2, T0 + 2 * MIN, &why), WF_NODE_REJECT);
	ck_assert_ptr_nonnull(strstr(why.detail, "not_an_operator"));
	/* unknown versions and warnings are refused too */
	ck_assert_int_eq(approve("op-zhang", "w-s", 3, T0 + 2 * MIN, &why), WF_NODE_REJECT);
	ck_assert_int_eq(approve("op-zhang", "nope", 1, T0 + 2 * MIN, &why), WF_NODE_REJECT);
	/* version 2 (level II) needs two operators of its own */
	ck_assert_int_eq(approve("op-zhang", "w-s", 2, T0 + 3 * MIN, NULL), 0);
	ck_assert_uint_eq(n_bcast(), 0);
	ck_assert_int_eq(approve("op-li", "w-s", 2, T0 + 3 * MIN, NULL), 0);
	ck_assert_uint_eq(n_bcast(), 1);
	fx_close();
}
END_TEST

/* An update after an approved (released) alert needs its own approval
 * unless it is a downgrade; a cancel follows at once. With the policy off,
 * both need approval again. */
START_TEST(test_downgrade_and_cancel_follow)
{
	fx_open(NULL);
	Wf__V1__Warning w1 = mkw("w-d", 1, L2, A, ACTUAL, T0);
	ck_assert_int_eq(apply_warning(&w1, T0), 0);
	ck_assert_int_eq(approve("op-zhang", "w-d", 1, T0 + MIN, NULL), 0);
	ck_assert_int_eq(approve("op-li", "w-d", 1, T0 + MIN, NULL), 0);
	ck_assert_uint_eq(n_bcast(), 1);
	/* same level again: not a downgrade, needs review */
	Wf__V1__Warning w2 = mkw("w-d", 2, L2, U, ACTUAL, T0 + 2 * MIN);
	ck_assert_int_eq(apply_warning(&w2, T0 + 2 * MIN), 0);
	ck_assert_uint_eq(n_bcast(), 0);
	/* II -> III after the released II: follows */
	Wf__V1__Warning w3 = mkw("w-d", 3, L3, U, ACTUAL, T0 + 3 * MIN);
	ck_assert_int_eq(apply_warning(&w3, T0 + 3 * MIN), 0);
	ck_assert_uint_eq(n_bcast(), 1);
	/* the CAP Update refers to the last published version (1), not 2 */
	const struct dsp_out *o = NULL;
	ck_assert_uint_eq(outputs_to("w-d.v3.xml", &o), 1);
	ck_assert_ptr_nonnull(strstr((const char *)o->payload, "w-d.v1,"));
	ck_assert_ptr_null(strstr((const char *)o->payload, "w-d.v2,"));
	Wf__V1__Warning w4 = mkw("w-d", 4, L3, C, ACTUAL, T0 + 4 * MIN);
	ck_assert_int_eq(apply_warning(&w4, T0 + 4 * MIN), 0);
	ck_assert_uint_eq(n_bcast(), 1);
	ck_assert_int_eq(delivery("w-d", 4, "cap", "spool", NULL), DSP_DLV_SENT);
	fx_close();

	struct dsp_config cfg;
	dsp_config_defaults(&cfg);
	cfg.policy.downgrade_follows = false;
	cfg.policy.cancel_follows = false;
	fx_open_cfg(NULL, &cfg);
	ck_assert_int_eq(apply_warning(&w1, T0), 0);
	ck_assert_int_eq(approve("op-zhang", "w-d", 1, T0 + MIN, NULL), 0);
	ck_assert_int_eq(approve("op-li", "w-d", 1, T0 + MIN, NULL), 0);
	Wf__V1__Warning w3b = mkw("w-d", 2, L3, U, ACTUAL, T0 + 3 * MIN);
	ck_assert_int_eq(apply_warning(&w3b, T0 + 3 * MIN), 0);
	ck_assert_uint_eq(n_bcast(), 0);
	Wf__V1__Warning w4b = mkw("w-d", 3, L3, C, ACTUAL, T0 + 4 * MIN);
	ck_assert_int_eq(apply_warning(&w4b, T0 + 4 * MIN), 0);
	ck_assert_uint_eq(n_bcast(), 0);
	fx_close();
}
END_TEST

/* Exercise and test warnings never reach a public channel, whatever the
 * routes say (here: duty, broadcast, cap and sms for everything), even
 * after full approval; duty stations still see them. */
START_TEST(test_exercise_never_public)
{
	fx_open(NULL);
	Wf__V1__Warning w = mkw("w-x", 1, L4, A, WF__V1__STATUS__STATUS_TEST, T0);
	ck_assert_int_eq(apply_warning(&w, T0), 0);
	ck_assert_uint_eq(n_bcast(), 0);
	ck_assert_uint_eq(outputs_to("w-x", NULL), 0); /* no CAP file */
	ck_assert_int_eq(delivery("w-x", 1, "sms", "*", NULL), DSP_DLV_BLOCKED);
	ck_assert_int_eq(delivery("w-x", 1, "broadcast", "*", NULL), DSP_DLV_BLOCKED);
	ck_assert_int_eq(delivery("w-x", 1, "cap", "*", NULL), DSP_DLV_BLOCKED);
	Wf__V1__DutyNotice *n = notice_to("duty-twn-a");
	ck_assert_ptr_nonnull(n);
	ck_assert_int_eq(n->status, WF__V1__STATUS__STATUS_TEST);
	wf__v1__duty_notice__free_unpacked(n, NULL);

	Wf__V1__Warning x = mkw("w-ex", 1, L1, A, WF__V1__STATUS__STATUS_EXERCISE, T0);
	ck_assert_int_eq(apply_warning(&x, T0), 0);
	ck_assert_int_eq(approve("op-zhang", "w-ex", 1, T0 + MIN, NULL), 0);
	ck_assert_int_eq(approve("op-li", "w-ex", 1, T0 + MIN, NULL), 0);
	ck_assert_uint_eq(n_bcast(), 0);
	ck_assert_int_eq(delivery("w-ex", 1, "sms", "*", NULL), DSP_DLV_BLOCKED);
	fx_close();
}
END_TEST

/* An operator's rejection stops the version; later approvals of it change
 * nothing. */
START_TEST(test_rejection)
{
	fx_open(NULL);
	Wf__V1__Warning w = mkw("w-r", 1, L3, A, ACTUAL, T0);
	ck_assert_int_eq(apply_warning(&w, T0), 0);
	Wf__V1__Approval a = WF__V1__APPROVAL__INIT;
	a.operator_ = "op-li";
	a.warning_id = "w-r";
	a.version = 1;
	a.decision = WF__V1__DECISION__DECISION_REJECT;
	a.reason = "雨量站数据异常";
	a.sent_ms = T0;
	a.producer = "wfctl";
	a.seq = 1;
	struct call c = { .a = &a, .now = T0 + MIN };
	ck_assert_int_eq(wf_store_update(fx.store, call_fn, &c), 0);
	ck_assert_int_eq(c.result, 0);
	ck_assert_int_eq(delivery("w-r", 1, "review", "op-li", NULL), DSP_DLV_REJECTED);
	ck_assert_int_eq(approve("op-zhang", "w-r", 1, T0 + 2 * MIN, NULL), 0);
	ck_assert_uint_eq(n_bcast(), 0);
	ck_assert_int_eq(delivery("w-r", 1, "cap", "spool", NULL), -1);
	fx_close();
}
END_TEST

/* A repeated or older version (e.g. a rebuilt fusion state) is ignored. */
START_TEST(test_old_version_ignored)
{
	fx_open(NULL);
	Wf__V1__Warning w2 = mkw("w-o", 2, L4, U, ACTUAL, T0);
	Wf__V1__Warning w1 = mkw("w-o", 1, L4, A, ACTUAL, T0);
	ck_assert_int_eq(apply_warning(&w2, T0), 0);
	ck_assert_uint_eq(n_bcast(), 1);
	ck_assert_int_eq(apply_warning(&w1, T0 + MIN), 0);
	ck_assert_uint_eq(n_bcast(), 0);
	ck_assert_int_eq(apply_warning(&w2, T0 + MIN), 0);
	ck_assert_uint_eq(n_bcast(), 0);
	fx_close();
}
END_TEST

/* A cancel of a warning the public never saw needs no review and touches
 * no public channel; an update that is the first version released is
 * published to CAP as an Alert (nothing to reference). */
START_TEST(test_cancel_unreleased_and_first_update)
{
	fx_open(NULL);
	Wf__V1__Warning w1 = mkw("w-c", 1, L2, A, ACTUAL, T0);
	Wf__V1__Warning w2 = mkw("w-c", 2, L2, C, ACTUAL, T0 + MIN);
	ck_assert_int_eq(apply_warning(&w1, T0), 0);
	ck_assert_int_eq(apply_warning(&w2, T0 + MIN), 0);
	ck_assert_uint_eq(n_bcast(), 0);
	ck_assert_int_eq(delivery("w-c", 2, "cap", "*", NULL), DSP_DLV_SKIPPED);
	ck_assert_int_eq(delivery("w-c", 2, "broadcast", "*", NULL), DSP_DLV_SKIPPED);
	ck_assert(has_notice("duty-twn-a")); /* duty stations still hear of it */

	Wf__V1__Warning u1 = mkw("w-f1", 1, L3, A, ACTUAL, T0);
	Wf__V1__Warning u2 = mkw("w-f1", 2, L3, U, ACTUAL, T0 + MIN);
	ck_assert_int_eq(apply_warning(&u1, T0), 0);
	ck_assert_int_eq(apply_warning(&u2, T0 + MIN), 0);
	ck_assert_int_eq(approve("op-zhang", "w-f1", 2, T0 + 2 * MIN, NULL), 0);
	const struct dsp_out *o = NULL;
	ck_assert_uint_eq(outputs_to("w-f1.v2.xml", &o), 1);
	ck_assert_ptr_nonnull(strstr((const char *)o->payload, "<msgType>Alert</msgType>"));
	ck_assert_ptr_null(strstr((const char *)o->payload, "<references>"));
	fx_close();
}
END_TEST

/* With the SMS channel not configured, a routed SMS delivery is recorded
 * as not_configured; with one, it is planned per region. */
static int fake_sms_calls;
static int fake_sms(void *ud, struct wf_txn *t, const char *key, const char *region,
		    const char *text, int64_t expires, size_t *planned)
{
	ck_assert_str_eq(key, "w-m@1");
	ck_assert_ptr_nonnull(strstr(text, "登封市应急管理局"));
	fake_sms_calls++;
	*planned = 3;
	return 0;
}

START_TEST(test_sms_channel_hook)
{
	fx_open(NULL);
	Wf__V1__Warning w = mkw("w-m", 1, L4, A, ACTUAL, T0);
	ck_assert_int_eq(apply_warning(&w, T0), 0);
	ck_assert_int_eq(delivery("w-m", 1, "sms", "*", NULL), DSP_DLV_NOT_CONFIGURED);
	fx_close();
	struct dsp_config cfg;
	dsp_config_defaults(&cfg);
	cfg.sms_enqueue = fake_sms;
	fx_open_cfg(NULL, &cfg);
	struct dsp_delivery d;
	ck_assert_int_eq(apply_warning(&w, T0), 0);
	ck_assert_int_eq(fake_sms_calls, 2); /* one per region */
	ck_assert_int_eq(delivery("w-m", 1, "sms", "*", &d), DSP_DLV_SENT);
	ck_assert_str_eq(d.detail, "6 recipients planned");
	fx_close();
}
END_TEST

/* A 解除 goes out by SMS too, and fusion's CANCEL carries expires_ms =
 * its own time: the SMS must not be planned already expired. */
static int64_t cancel_sms_expires;
static int cancel_sms(void *ud, struct wf_txn *t, const char *key, const char *region,
		      const char *text, int64_t expires, size_t *planned)
{
	if (strstr(text, "解除"))
		cancel_sms_expires = expires;
	*planned = 1;
	return 0;
}

START_TEST(test_cancel_sms_not_expired)
{
	struct dsp_config cfg;
	dsp_config_defaults(&cfg);
	cfg.sms_enqueue = cancel_sms;
	fx_open_cfg(NULL, &cfg);
	Wf__V1__Warning w1 = mkw("w-m", 1, L4, A, ACTUAL, T0);
	ck_assert_int_eq(apply_warning(&w1, T0), 0);
	Wf__V1__Warning w2 = mkw("w-m", 2, L4, C, ACTUAL, T0 + MIN);
	w2.onset_ms = T0;
	w2.expires_ms = T0 + MIN; /* as wf-fusion makes a cancel: expires = its sent_ms */
	ck_assert_int_eq(apply_warning(&w2, T0 + MIN), 0);
	ck_assert_int_eq(delivery("w-m", 2, "sms", "*", NULL), DSP_DLV_SENT);
	ck_assert_int_gt(cancel_sms_expires, T0 + MIN + 30 * MIN);
	fx_close();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dispatch-policy");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_required_by_level);
	tcase_add_test(tc, test_auto_release);
	tcase_add_test(tc, test_cap_written_in_the_releasing_txn);
	tcase_add_test(tc, test_broadcast_state_full);
	tcase_add_test(tc, test_one_approval);
	tcase_add_test(tc, test_release_announced_to_stations);
	tcase_add_test(tc, test_two_operators_same_counts_once);
	tcase_add_test(tc, test_superseded_refused);
	tcase_add_test(tc, test_downgrade_and_cancel_follow);
	tcase_add_test(tc, test_exercise_never_public);
	tcase_add_test(tc, test_rejection);
	tcase_add_test(tc, test_old_version_ignored);
	tcase_add_test(tc, test_sms_channel_hook);
	tcase_add_test(tc, test_cancel_sms_not_expired);
	tcase_add_test(tc, test_cancel_unreleased_and_first_update);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
