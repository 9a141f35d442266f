/* Unit tests for the dispatch.proto part of the contract: the topics of
 * common/src/topic.c (approval, duty, silence, broadcast) and the
 * validation rules of common/src/codec.c for Approval, DutyNotice, DutyAck,
 * FollowUp, Silence and BroadcastState. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wf/codec.h"
#include "wf/topic.h"

#define NOW 1750000000000LL
#define HOUR_MS (3600 * 1000LL)

static void assert_reason(int r, const struct wf_codec_error *e, enum wf_reason want,
			  const char *field)
{
	ck_assert_msg(r == -EBADMSG, "r = %d, want -EBADMSG", r);
	ck_assert_msg(e->reason == want, "reason %s (%s: %s), want %s",
		      wf_reason_to_string(e->reason), e->field, e->detail,
		      wf_reason_to_string(want));
	ck_assert_str_eq(e->field, field);
}

START_TEST(test_topics_build_and_parse)
{
	char buf[WF_TOPIC_MAX];
	struct wf_topic t;

	ck_assert_int_eq(wf_topic_approval(buf, sizeof buf, "op-zhang"), 0);
	ck_assert_str_eq(buf, "wf/v1/approval/op-zhang");
	ck_assert_int_eq(wf_topic_parse(buf, &t), 0);
	ck_assert_int_eq(t.kind, WF_TOPIC_APPROVAL);
	ck_assert_str_eq(t.id, "op-zhang");

	ck_assert_int_eq(wf_topic_silence(buf, sizeof buf, "op-li"), 0);
	ck_assert_str_eq(buf, "wf/v1/silence/op-li");
	ck_assert_int_eq(wf_topic_parse(buf, &t), 0);
	ck_assert_int_eq(t.kind, WF_TOPIC_SILENCE);

	const enum wf_topic_kind kinds[] = { WF_TOPIC_DUTY_INBOX, WF_TOPIC_DUTY_ACK,
					     WF_TOPIC_DUTY_FOLLOWUP };
	const char *want[] = { "wf/v1/duty/duty-410185/inbox", "wf/v1/duty/duty-410185/ack",
			       "wf/v1/duty/duty-410185/followup" };
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(wf_topic_duty(buf, sizeof buf, "duty-410185", kinds[i]), 0);
		ck_assert_str_eq(buf, want[i]);
		ck_assert_int_eq(wf_topic_parse(buf, &t), 0);
		ck_assert_int_eq(t.kind, kinds[i]);
		ck_assert_str_eq(t.id, "duty-410185");
		ck_assert_ptr_nonnull(wf_topic_kind_to_string(kinds[i]));
	}
	ck_assert_int_eq(wf_topic_duty(buf, sizeof buf, "duty-1", WF_TOPIC_ACK), -EINVAL);
	ck_assert_int_eq(wf_topic_duty(buf, sizeof buf, "a/b", WF_TOPIC_DUTY_ACK), -EINVAL);

	ck_assert_int_eq(wf_topic_broadcast(buf, sizeof buf, "410185101000"), 0);
	ck_assert_str_eq(buf, "wf/v1/broadcast/41/4101/410185");
	ck_assert_int_eq(wf_topic_parse(buf, &t), 0);
	ck_assert_int_eq(t.kind, WF_TOPIC_BROADCAST);
	ck_assert_str_eq(t.county, "410185");
	ck_assert_int_eq(wf_topic_broadcast_filter(buf, sizeof buf, "410100"), 0);
	ck_assert_str_eq(buf, "wf/v1/broadcast/41/4101/#");
	ck_assert_int_eq(wf_topic_broadcast_filter(buf, sizeof buf, "410000"), 0);
	ck_assert_str_eq(buf, "wf/v1/broadcast/41/#");
	ck_assert_int_eq(wf_topic_broadcast_filter(buf, sizeof buf, "410185101000"), 0);
	ck_assert_str_eq(buf, "wf/v1/broadcast/41/4101/410185");
	ck_assert_int_eq(wf_topic_broadcast_filter(buf, sizeof buf, NULL), 0);
	ck_assert_str_eq(buf, "wf/v1/broadcast/#");

	/* shapes that are not topics of the contract */
	ck_assert_int_eq(wf_topic_parse("wf/v1/duty/s1/outbox", &t), -EINVAL);
	ck_assert_int_eq(wf_topic_parse("wf/v1/duty/s1", &t), -EINVAL);
	ck_assert_int_eq(wf_topic_parse("wf/v1/duty/s+1/ack", &t), -EINVAL);
	ck_assert_int_eq(wf_topic_parse("wf/v1/broadcast/41/4102/410185", &t), -EINVAL);
	ck_assert_int_eq(wf_topic_parse("wf/v1/broadcast/41/4101", &t), -EINVAL);
	ck_assert_int_eq(wf_topic_parse("wf/v1/approval/op/x", &t), -EINVAL);
	/* the older kinds still parse as before */
	ck_assert_int_eq(wf_topic_parse("wf/v1/ack/wf-met-1", &t), 0);
	ck_assert_int_eq(t.kind, WF_TOPIC_ACK);
	ck_assert_int_eq(wf_topic_parse("wf/v1/deadletter/wf-met-1", &t), 0);
	ck_assert_int_eq(t.kind, WF_TOPIC_DEADLETTER);
}
END_TEST

static Wf__V1__Approval approval(void)
{
	Wf__V1__Approval a = WF__V1__APPROVAL__INIT;
	a.operator_ = "op-zhang";
	a.warning_id = "w-410185-rainstorm-1";
	a.version = 2;
	a.decision = WF__V1__DECISION__DECISION_APPROVE;
	a.sent_ms = NOW;
	a.producer = "wfctl-zhang";
	a.seq = 7;
	return a;
}

START_TEST(test_approval)
{
	struct wf_codec_limits lim;
	struct wf_codec_error e;
	uint8_t *buf = NULL;
	size_t len = 0;
	Wf__V1__Approval a = approval();

	wf_codec_limits_init(&lim);
	ck_assert_int_eq(wf_codec_approval_pack(&a, &lim, NOW, &buf, &len, &e), 0);
	ProtobufCMessage *m = NULL;
	ck_assert_int_eq(wf_codec_control_unpack(WF_TOPIC_APPROVAL, buf, len, &lim, NOW, &m, &e), 0);
	Wf__V1__Approval *out = (Wf__V1__Approval *)m;
	ck_assert_str_eq(out->warning_id, a.warning_id);
	ck_assert_uint_eq(out->version, 2);
	uint64_t seq = 0;
	ck_assert_str_eq(wf_codec_control_producer(WF_TOPIC_APPROVAL, m, &seq), "wfctl-zhang");
	ck_assert_uint_eq(seq, 7);
	struct wf_topic t;
	ck_assert_int_eq(wf_topic_parse("wf/v1/approval/op-zhang", &t), 0);
	ck_assert_int_eq(wf_codec_control_check_topic(WF_TOPIC_APPROVAL, m, &t, &e), 0);
	/* an operator cannot approve in someone else's name */
	ck_assert_int_eq(wf_topic_parse("wf/v1/approval/op-li", &t), 0);
	assert_reason(wf_codec_control_check_topic(WF_TOPIC_APPROVAL, m, &t, &e), &e,
		      WF_REASON_BAD_TOPIC, "operator");
	wf_codec_control_free(m);
	free(buf);

	a = approval();
	a.version = 0;
	assert_reason(wf_codec_approval_validate(&a, &lim, NOW, &e), &e, WF_REASON_MISSING_FIELD,
		      "version");
	a = approval();
	a.decision = WF__V1__DECISION__DECISION_REJECT; /* a rejection needs a reason */
	assert_reason(wf_codec_approval_validate(&a, &lim, NOW, &e), &e, WF_REASON_MISSING_FIELD,
		      "reason");
	a.reason = "数据有误\n请复核";
	ck_assert_int_eq(wf_codec_approval_validate(&a, &lim, NOW, &e), 0);
	a = approval();
	a.decision = 9;
	assert_reason(wf_codec_approval_validate(&a, &lim, NOW, &e), &e, WF_REASON_BAD_ENUM,
		      "decision");
	a = approval();
	a.warning_id = "w 1";
	assert_reason(wf_codec_approval_validate(&a, &lim, NOW, &e), &e, WF_REASON_BAD_ID,
		      "warning_id");
	a = approval();
	a.seq = 0;
	assert_reason(wf_codec_approval_validate(&a, &lim, NOW, &e), &e, WF_REASON_MISSING_FIELD,
		      "seq");
	a = approval();
	a.sent_ms = NOW + 2 * HOUR_MS;
	assert_reason(wf_codec_approval_validate(&a, &lim, NOW, &e), &e, WF_REASON_TIME_SKEW,
		      "sent_ms");
}
END_TEST

START_TEST(test_duty_messages)
{
	struct wf_codec_limits lim;
	struct wf_codec_error e;
	struct wf_topic t;
	char *regions[] = { "410185101000", "410185102000" };
	uint8_t *buf = NULL;
	size_t len = 0;

	wf_codec_limits_init(&lim);
	Wf__V1__DutyNotice n = WF__V1__DUTY_NOTICE__INIT;
	n.station = "duty-410185";
	n.warning_id = "w1";
	n.version = 1;
	n.level = WF__V1__LEVEL__LEVEL_II;
	n.hazard = WF__V1__HAZARD__HAZARD_RAINSTORM;
	n.regions = regions;
	n.n_regions = 2;
	n.text = "登封市暴雨橙色预警";
	n.pending_review = true;
	n.deadline_ms = NOW + 600000;
	n.kind = WF__V1__NOTICE_KIND__NOTICE_KIND_NOTICE;
	n.status = WF__V1__STATUS__STATUS_ACTUAL;
	n.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_ALERT;
	n.producer = "wf-dispatch-1";
	n.sent_ms = NOW;
	ck_assert_int_eq(wf_codec_duty_notice_pack(&n, &lim, NOW, &buf, &len, &e), 0);
	ProtobufCMessage *m = NULL;
	ck_assert_int_eq(wf_codec_control_unpack(WF_TOPIC_DUTY_INBOX, buf, len, &lim, NOW, &m, &e), 0);
	ck_assert(((Wf__V1__DutyNotice *)m)->pending_review);
	/* no producer/seq to dedupe on: notices are idempotent */
	ck_assert_ptr_null(wf_codec_control_producer(WF_TOPIC_DUTY_INBOX, m, NULL));
	ck_assert_int_eq(wf_topic_parse("wf/v1/duty/duty-410185/inbox", &t), 0);
	ck_assert_int_eq(wf_codec_control_check_topic(WF_TOPIC_DUTY_INBOX, m, &t, &e), 0);
	ck_assert_int_eq(wf_topic_parse("wf/v1/duty/duty-410185/ack", &t), 0);
	assert_reason(wf_codec_control_check_topic(WF_TOPIC_DUTY_INBOX, m, &t, &e), &e,
		      WF_REASON_BAD_TOPIC, "");
	wf_codec_control_free(m);
	free(buf);
	regions[1] = "410185";
	assert_reason(wf_codec_duty_notice_validate(&n, &lim, NOW, &e), &e, WF_REASON_BAD_REGION,
		      "regions[1]");
	regions[1] = "410185102000";
	n.level = WF__V1__LEVEL__LEVEL_NONE;
	assert_reason(wf_codec_duty_notice_validate(&n, &lim, NOW, &e), &e,
		      WF_REASON_MISSING_FIELD, "level");
	n.level = WF__V1__LEVEL__LEVEL_II;
	n.kind = 0;
	assert_reason(wf_codec_duty_notice_validate(&n, &lim, NOW, &e), &e,
		      WF_REASON_MISSING_FIELD, "kind");

	Wf__V1__DutyAck a = WF__V1__DUTY_ACK__INIT;
	a.station = "duty-410185";
	a.warning_id = "w1";
	a.version = 1;
	a.operator_ = "王值班";
	a.acked_ms = NOW;
	a.producer = "console-410185";
	a.seq = 3;
	ck_assert_int_eq(wf_codec_duty_ack_validate(&a, &lim, NOW, &e), 0);
	ck_assert_int_eq(wf_topic_parse("wf/v1/duty/duty-410100/ack", &t), 0);
	assert_reason(wf_codec_duty_ack_check_topic(&a, &t, &e), &e, WF_REASON_BAD_TOPIC,
		      "station");
	a.operator_ = "";
	assert_reason(wf_codec_duty_ack_validate(&a, &lim, NOW, &e), &e, WF_REASON_MISSING_FIELD,
		      "operator");

	Wf__V1__FollowUp f = WF__V1__FOLLOW_UP__INIT;
	f.station = "duty-410185";
	f.warning_id = "w1";
	f.text = "已转移群众 120 人\n无伤亡";
	f.sent_ms = NOW;
	f.producer = "console-410185";
	f.seq = 4;
	ck_assert_int_eq(wf_codec_followup_validate(&f, &lim, NOW, &e), 0);
	f.text = "";
	assert_reason(wf_codec_followup_validate(&f, &lim, NOW, &e), &e, WF_REASON_MISSING_FIELD,
		      "text");
}
END_TEST

START_TEST(test_silence_and_broadcast)
{
	struct wf_codec_limits lim;
	struct wf_codec_error e;
	struct wf_topic t;

	wf_codec_limits_init(&lim);
	Wf__V1__Silence s = WF__V1__SILENCE__INIT;
	s.id = "sms-maint";
	s.operator_ = "op-zhang";
	s.channel = "sms";
	s.region_prefix = "4101";
	s.sent_ms = NOW;
	s.expires_ms = NOW + HOUR_MS;
	s.reason = "gateway maintenance";
	s.producer = "wfctl-zhang";
	s.seq = 1;
	ck_assert_int_eq(wf_codec_silence_validate(&s, &lim, NOW, &e), 0);
	s.channel = "duty"; /* duty notices are never silenced */
	assert_reason(wf_codec_silence_validate(&s, &lim, NOW, &e), &e, WF_REASON_BAD_ID, "channel");
	s.channel = "sms";
	s.region_prefix = "410";
	assert_reason(wf_codec_silence_validate(&s, &lim, NOW, &e), &e, WF_REASON_BAD_REGION,
		      "region_prefix");
	s.region_prefix = "";
	s.expires_ms = NOW - 1;
	assert_reason(wf_codec_silence_validate(&s, &lim, NOW, &e), &e, WF_REASON_BAD_TIME_ORDER,
		      "expires_ms");
	s.expires_ms = NOW + HOUR_MS;
	s.reason = NULL;
	assert_reason(wf_codec_silence_validate(&s, &lim, NOW, &e), &e, WF_REASON_MISSING_FIELD,
		      "reason");

	char *regs[] = { "410185101000" };
	Wf__V1__BroadcastItem it = WF__V1__BROADCAST_ITEM__INIT;
	Wf__V1__BroadcastItem *items[] = { &it };
	it.warning_id = "w1";
	it.version = 2;
	it.hazard = WF__V1__HAZARD__HAZARD_RAINSTORM;
	it.level = WF__V1__LEVEL__LEVEL_II;
	it.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_UPDATE;
	it.headline = "登封市暴雨橙色预警";
	it.expires_ms = NOW + HOUR_MS;
	it.regions = regs;
	it.n_regions = 1;
	Wf__V1__BroadcastState b = WF__V1__BROADCAST_STATE__INIT;
	b.region = "410185000000";
	b.active = items;
	b.n_active = 1;
	b.updated_ms = NOW;
	b.producer = "wf-dispatch-1";
	uint8_t *buf = NULL;
	size_t len = 0;
	ck_assert_int_eq(wf_codec_broadcast_state_pack(&b, &lim, NOW, &buf, &len, &e), 0);
	ProtobufCMessage *m = NULL;
	ck_assert_int_eq(wf_codec_control_unpack(WF_TOPIC_BROADCAST, buf, len, &lim, NOW, &m, &e), 0);
	ck_assert_int_eq(wf_topic_parse("wf/v1/broadcast/41/4101/410185", &t), 0);
	ck_assert_int_eq(wf_codec_control_check_topic(WF_TOPIC_BROADCAST, m, &t, &e), 0);
	ck_assert_int_eq(wf_topic_parse("wf/v1/broadcast/41/4101/410184", &t), 0);
	assert_reason(wf_codec_control_check_topic(WF_TOPIC_BROADCAST, m, &t, &e), &e,
		      WF_REASON_BAD_TOPIC, "region");
	wf_codec_control_free(m);
	free(buf);
	/* the all-clear: no active warning is a valid state */
	b.n_active = 0;
	ck_assert_int_eq(wf_codec_broadcast_state_validate(&b, &lim, NOW, &e), 0);
	b.n_active = 1;
	it.version = 0;
	assert_reason(wf_codec_broadcast_state_validate(&b, &lim, NOW, &e), &e,
		      WF_REASON_MISSING_FIELD, "active.version[0]");
	/* kinds that are not control messages */
	ck_assert_int_eq(wf_codec_control_unpack(WF_TOPIC_EVENT, "", 0, &lim, NOW, &m, &e), -EINVAL);
	ck_assert(!wf_codec_control_kind(WF_TOPIC_WARNING));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dispatch-contract");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_topics_build_and_parse);
	tcase_add_test(tc, test_approval);
	tcase_add_test(tc, test_duty_messages);
	tcase_add_test(tc, test_silence_and_broadcast);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
