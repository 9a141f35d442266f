/* Integration test for the node's control-message path (wf/node.h
 * on_control, wf_node_emit_control): approvals, duty acks, follow-ups and
 * silences emitted through one node's outbox, through a real mosquitto,
 * applied exactly once by another node in group-commit transactions with
 * dedupe, acknowledged (the producer's outbox drains); a replayed
 * duplicate is recognised; a forged approval (operator differs from its
 * topic) is dead-lettered and still acked; a DutyNotice (no producer/seq)
 * reaches on_control without a transaction. No sleeps: every wait polls. */
#include <check.h>
#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "wf/bus.h"
#include "wf/clock.h"
#include "wf/codec.h"
#include "wf/node.h"
#include "wf/store.h"

#define N_EACH 100

struct consumer {
	struct wf_node *node;
	unsigned dbi;
	int applied[WF_TOPIC_KIND_MAX];
	int in_txn_null;
	int rejected_notices;
};

static int on_control(void *ud, struct wf_txn *t, enum wf_topic_kind kind,
		      const ProtobufCMessage *msg, const struct wf_node_msg *m,
		      struct wf_codec_error *why)
{
	struct consumer *c = ud;
	char key[160];
	uint32_t count = 0;

	if (t == NULL) {
		/* DutyNotice / BroadcastState: no dedupe, no transaction */
		ck_assert_int_eq(kind, WF_TOPIC_DUTY_INBOX);
		ck_assert_ptr_null(m->producer);
		c->in_txn_null++;
		return 0;
	}
	switch (kind) {
	case WF_TOPIC_APPROVAL: {
		const Wf__V1__Approval *a = (const Wf__V1__Approval *)msg;
		snprintf(key, sizeof key, "approval|%s@%u", a->warning_id, a->version);
		break;
	}
	case WF_TOPIC_DUTY_ACK: {
		const Wf__V1__DutyAck *a = (const Wf__V1__DutyAck *)msg;
		snprintf(key, sizeof key, "ack|%s|%s@%u", a->station, a->warning_id, a->version);
		break;
	}
	case WF_TOPIC_DUTY_FOLLOWUP:
		snprintf(key, sizeof key, "followup|%s", ((const Wf__V1__FollowUp *)msg)->warning_id);
		break;
	case WF_TOPIC_SILENCE:
		snprintf(key, sizeof key, "silence|%s", ((const Wf__V1__Silence *)msg)->id);
		break;
	default:
		ck_abort_msg("unexpected kind %d", kind);
	}
	ck_assert_ptr_nonnull(m->producer);
	ck_assert_uint_gt(m->seq, 0);
	int r = wf_store_get_buf(t, c->dbi, key, strlen(key), &count, sizeof count, NULL);
	if (r < 0 && r != -ENOENT)
		return r;
	count++;
	return wf_store_put(t, c->dbi, key, strlen(key), &count, sizeof count, 0);
}

static void on_notice(void *ud, enum wf_node_notice what, int code, const char *detail)
{
	struct consumer *c = ud;
	if (what == WF_NODE_REJECTED)
		c->rejected_notices++;
}

static void node_opts(struct wf_node_options *o, struct wf_test_broker *br, const char *service,
		      const char *kind, const char *dir)
{
	wf_node_options_init(o);
	o->service = service;
	o->kind = kind;
	o->state_dir = dir;
	o->nosync = true;
	o->bus.port = wf_test_broker_port(br);
	o->bus.reconnect_min_s = 0.05;
	o->bus.reconnect_max_s = 0.3;
	o->resend_ms = 500;
	o->heartbeat_ms = 1000;
	o->ack_delay_ms = 5;
}

struct emit_ctx {
	struct wf_node *node;
};

static int emit_all(struct wf_txn *t, void *ud)
{
	struct emit_ctx *e = ud;
	int64_t now = wf_clock_now_ms(NULL);
	char id[64];
	int r;

	for (int i = 0; i < N_EACH; i++) {
		snprintf(id, sizeof id, "w-%03d", i);
		Wf__V1__Approval a = WF__V1__APPROVAL__INIT;
		a.operator_ = "op1";
		a.warning_id = id;
		a.version = 1;
		a.decision = WF__V1__DECISION__DECISION_APPROVE;
		a.sent_ms = now;
		r = wf_node_emit_control(e->node, t, WF_TOPIC_APPROVAL, &a.base, NULL);
		if (r < 0)
			return r;
		Wf__V1__DutyAck k = WF__V1__DUTY_ACK__INIT;
		k.station = "duty-a";
		k.warning_id = id;
		k.version = 1;
		k.operator_ = "值班员";
		k.acked_ms = now;
		r = wf_node_emit_control(e->node, t, WF_TOPIC_DUTY_ACK, &k.base, NULL);
		if (r < 0)
			return r;
	}
	Wf__V1__FollowUp f = WF__V1__FOLLOW_UP__INIT;
	f.station = "duty-a";
	f.warning_id = "w-000";
	f.text = "续报：水位回落";
	f.sent_ms = now;
	r = wf_node_emit_control(e->node, t, WF_TOPIC_DUTY_FOLLOWUP, &f.base, NULL);
	if (r < 0)
		return r;
	Wf__V1__Silence s = WF__V1__SILENCE__INIT;
	s.id = "s1";
	s.operator_ = "op1";
	s.channel = "sms";
	s.sent_ms = now;
	s.expires_ms = now + 3600000;
	s.reason = "maintenance";
	r = wf_node_emit_control(e->node, t, WF_TOPIC_SILENCE, &s.base, NULL);
	if (r < 0)
		return r;
	/* not a kind one emits through the outbox */
	Wf__V1__DutyNotice n = WF__V1__DUTY_NOTICE__INIT;
	ck_assert_int_eq(wf_node_emit_control(e->node, t, WF_TOPIC_DUTY_INBOX, &n.base, NULL),
			 -EINVAL);
	return 0;
}

static bool both_ready(void *ud)
{
	struct wf_node **n = ud;
	return wf_node_ready(n[0]) && wf_node_ready(n[1]);
}

static bool drained(void *ud) { return wf_node_pending(ud) == 0; }

struct stat_wait {
	struct wf_node *node;
	uint64_t applied, duplicates, rejected;
};
static bool stats_reached(void *ud)
{
	struct stat_wait *w = ud;
	struct wf_node_stats st;
	wf_node_get_stats(w->node, &st);
	return st.applied >= w->applied && st.duplicates >= w->duplicates &&
	       st.rejected >= w->rejected;
}
static bool got_inbox(void *ud) { return ((struct consumer *)ud)->in_txn_null > 0; }

static int count_of(struct consumer *c, const char *key)
{
	struct wf_txn *t;
	uint32_t count = 0;
	ck_assert_int_eq(wf_store_txn_begin(wf_node_store(c->node), false, &t), 0);
	int r = wf_store_get_buf(t, c->dbi, key, strlen(key), &count, sizeof count, NULL);
	wf_store_txn_abort(t);
	return r == -ENOENT ? 0 : (int)count;
}

struct count_ctx {
	int n, bad;
};
static int count_fn(void *ud, const void *k, size_t kl, const void *v, size_t vl)
{
	struct count_ctx *c = ud;
	uint32_t x;
	memcpy(&x, v, sizeof x);
	c->n++;
	if (x != 1)
		c->bad++;
	return 0;
}

START_TEST(test_control_exactly_once)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_test_broker *br = NULL;
	ck_assert_int_eq(wf_test_broker_start(NULL, &br), 0);
	char *dir = wf_test_mkdtemp("node-ctl");
	char pdir[512], cdir[512];
	snprintf(pdir, sizeof pdir, "%s/wfctl", dir);
	snprintf(cdir, sizeof cdir, "%s/dispatch", dir);

	static const char *inputs[] = { "wf/v1/approval/+", "wf/v1/duty/+/ack",
					"wf/v1/duty/+/followup", "wf/v1/silence/+",
					"wf/v1/duty/duty-console/inbox" };
	struct consumer c = { 0 };
	struct wf_node_options o;
	struct wf_node_callbacks cb = { .on_control = on_control, .on_notice = on_notice };
	node_opts(&o, br, "wf-dispatch-t", "dispatch", cdir);
	o.inputs = inputs;
	o.n_inputs = 5;
	ck_assert_int_eq(wf_node_new(loop, &o, &cb, &c, &c.node), 0);
	ck_assert_int_eq(wf_store_dbi(wf_node_store(c.node), "effects", 0, &c.dbi), 0);

	struct wf_node *prod = NULL;
	node_opts(&o, br, "wfctl-t", "wfctl", pdir);
	ck_assert_int_eq(wf_node_new(loop, &o, NULL, NULL, &prod), 0);
	ck_assert_int_eq(wf_node_start(c.node), 0);
	ck_assert_int_eq(wf_node_start(prod), 0);
	struct wf_node *both[2] = { c.node, prod };
	ck_assert(wf_test_run_until(loop, both_ready, both, 10000));

	struct emit_ctx e = { prod };
	ck_assert_int_eq(wf_node_update(prod, emit_all, &e), 0);
	ck_assert_int_eq(wf_node_pending(prod), 2 * N_EACH + 2);
	ck_assert(wf_test_run_until(loop, drained, prod, 20000));

	struct wf_node_stats st;
	wf_node_get_stats(c.node, &st);
	ck_assert_uint_eq(st.applied, 2 * N_EACH + 2);
	ck_assert_uint_lt(st.batches, 2 * N_EACH + 2); /* group commit */
	struct count_ctx cc = { 0 };
	struct wf_txn *t;
	ck_assert_int_eq(wf_store_txn_begin(wf_node_store(c.node), false, &t), 0);
	ck_assert_int_eq(wf_store_foreach(t, c.dbi, NULL, 0, count_fn, &cc), 0);
	wf_store_txn_abort(t);
	ck_assert_int_eq(cc.n, 2 * N_EACH + 2);
	ck_assert_int_eq(cc.bad, 0);
	ck_assert_int_eq(count_of(&c, "followup|w-000"), 1);
	ck_assert_int_eq(count_of(&c, "silence|s1"), 1);

	/* a redelivery of approval seq 1 (same producer, same seq) */
	int64_t now = wf_clock_now_ms(NULL);
	Wf__V1__Approval a = WF__V1__APPROVAL__INIT;
	a.operator_ = "op1";
	a.warning_id = "w-000";
	a.version = 1;
	a.decision = WF__V1__DECISION__DECISION_APPROVE;
	a.sent_ms = now;
	a.producer = "wfctl-t";
	a.seq = 1;
	uint8_t *buf = NULL;
	size_t len = 0;
	ck_assert_int_eq(wf_codec_approval_pack(&a, NULL, now, &buf, &len, NULL), 0);
	ck_assert_int_eq(wf_node_publish(prod, "wf/v1/approval/op1", buf, len, false), 0);
	free(buf);
	struct stat_wait sw = { c.node, 2 * N_EACH + 2, 1, 0 };
	ck_assert(wf_test_run_until(loop, stats_reached, &sw, 10000));
	ck_assert_int_eq(count_of(&c, "approval|w-000@1"), 1);

	/* a forged approval: op2's decision on op1's topic */
	a.operator_ = "op2";
	a.seq = 5000;
	ck_assert_int_eq(wf_codec_approval_pack(&a, NULL, now, &buf, &len, NULL), 0);
	ck_assert_int_eq(wf_node_publish(prod, "wf/v1/approval/op1", buf, len, false), 0);
	free(buf);
	sw.rejected = 1;
	ck_assert(wf_test_run_until(loop, stats_reached, &sw, 10000));
	ck_assert_int_eq(c.rejected_notices, 1);

	/* a DutyNotice has no producer/seq: delivered without a transaction */
	char *regions[] = { "410102000000" };
	Wf__V1__DutyNotice n = WF__V1__DUTY_NOTICE__INIT;
	n.station = "duty-console";
	n.warning_id = "w-000";
	n.version = 1;
	n.level = WF__V1__LEVEL__LEVEL_III;
	n.hazard = WF__V1__HAZARD__HAZARD_FLOOD;
	n.regions = regions;
	n.n_regions = 1;
	n.kind = WF__V1__NOTICE_KIND__NOTICE_KIND_NOTICE;
	n.status = WF__V1__STATUS__STATUS_ACTUAL;
	n.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_ALERT;
	n.producer = "wf-dispatch-t";
	n.sent_ms = now;
	ck_assert_int_eq(wf_codec_duty_notice_pack(&n, NULL, now, &buf, &len, NULL), 0);
	ck_assert_int_eq(wf_node_publish(prod, "wf/v1/duty/duty-console/inbox", buf, len, false), 0);
	free(buf);
	ck_assert(wf_test_run_until(loop, got_inbox, &c, 10000));

	wf_node_free(prod);
	wf_node_free(c.node);
	wf_test_broker_free(br);
	wf_test_rmtree(dir);
	free(dir);
	ev_loop_destroy(loop);
}
END_TEST

int main(void)
{
	char *tmp = wf_test_mkdtemp("itest-node-control");
	if (!tmp || setenv("TMPDIR", tmp, 1) < 0) {
		fprintf(stderr, "cannot make a temp directory\n");
		return EXIT_FAILURE;
	}
	Suite *s = suite_create("node-control");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_control_exactly_once);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	wf_test_rmtree(tmp);
	free(tmp);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
