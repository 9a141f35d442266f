/* Integration: `wfctl approve` against a real broker with the shipped ACL
 * and password file (deploy/mosquitto/acl), and a consumer standing in for
 * the dispatcher (user wf-dispatch-1, a wf_node that applies approvals
 * exactly once and acks them).
 *
 *   - an operator approves as itself: exit 0 once acked, the consumer holds
 *     exactly that decision (operator, id, version);
 *   - the same user claiming another operator's name: the broker refuses
 *     the publish, nothing arrives, wfctl exits 1 after its timeout;
 *   - a duty console acks and files a follow-up as itself (applied once
 *     each); acking for another station is refused by the broker;
 *   - `wfctl state` lists the dispatcher online (exit 0), then OFFLINE once
 *     it stopped (exit 1);
 *   - a password file readable by others is refused (exit 2). */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ev.h>

#include "broker.h"
#include "dispatch.pb-c.h"
#include "proc.h"
#include "wf/node.h"

static const struct wf_test_broker_user users[] = {
	{ "wf-dispatch-1", "pw-dispatch" },
	{ "op-zhang", "pw-operator" },
	{ "duty-410185", "pw-duty" },
};

struct approvals {
	int n, acks, followups;
	char ack_station[64], followup_text[256];
	unsigned ack_version;
	char operator_id[64], warning_id[128];
	unsigned version;
	int decision;
};

static int on_control(void *ud, struct wf_txn *t, enum wf_topic_kind kind,
		      const ProtobufCMessage *msg, const struct wf_node_msg *m,
		      struct wf_codec_error *why)
{
	struct approvals *a = ud;
	if (kind == WF_TOPIC_DUTY_ACK) {
		const Wf__V1__DutyAck *k = (const Wf__V1__DutyAck *)msg;
		a->acks++;
		snprintf(a->ack_station, sizeof a->ack_station, "%s", k->station);
		a->ack_version = k->version;
		return 0;
	}
	if (kind == WF_TOPIC_DUTY_FOLLOWUP) {
		const Wf__V1__FollowUp *f = (const Wf__V1__FollowUp *)msg;
		a->followups++;
		snprintf(a->followup_text, sizeof a->followup_text, "%s", f->text);
		return 0;
	}
	if (kind != WF_TOPIC_APPROVAL)
		return 0;
	const Wf__V1__Approval *x = (const Wf__V1__Approval *)msg;
	a->n++;
	snprintf(a->operator_id, sizeof a->operator_id, "%s", x->operator_);
	snprintf(a->warning_id, sizeof a->warning_id, "%s", x->warning_id);
	a->version = x->version;
	a->decision = x->decision;
	return 0;
}

static bool node_ready(void *ud) { return wf_node_ready(ud); }
/* wf_node_stop publishes OFFLINE before it disconnects */
static bool disconnected(void *ud) { return !wf_node_connected(ud); }

struct child {
	pid_t pid;
	int status;
};

static bool child_done(void *ud)
{
	struct child *c = ud;
	if (c->status < 0)
		c->status = wf_test_wait(c->pid, 0);
	return c->status >= 0;
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	rewind(f);
	char *b = malloc((size_t)n + 1);
	ck_assert_int_eq(fread(b, 1, (size_t)n, f), (size_t)n);
	b[n] = '\0';
	fclose(f);
	return b;
}

START_TEST(test_approve_through_the_acl)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_test_broker_options bo;
	struct wf_test_broker *br = NULL;
	char *aclpath = wf_test_source_path("deploy/mosquitto/acl");
	char *acl = read_text(aclpath);
	char *dir = wf_test_mkdtemp("wfctl");
	char path[600], port[16], state[600], cdir[600];
	struct approvals got = { 0 };

	wf_test_broker_options_init(&bo);
	bo.users = users;
	bo.n_users = 3;
	bo.acl = acl;
	ck_assert_int_eq(wf_test_broker_start(&bo, &br), 0);
	snprintf(port, sizeof port, "%d", wf_test_broker_port(br));

	/* the dispatcher's stand-in */
	struct wf_node_options o;
	struct wf_node_callbacks cb = { .on_control = on_control };
	const char *inputs[] = { "wf/v1/approval/+", "wf/v1/duty/+/ack", "wf/v1/duty/+/followup" };
	struct wf_node *disp = NULL;
	snprintf(cdir, sizeof cdir, "%s/dispatch", dir);
	wf_node_options_init(&o);
	o.service = "wf-dispatch-1";
	o.kind = "dispatch";
	o.state_dir = cdir;
	o.nosync = true;
	o.bus.port = wf_test_broker_port(br);
	o.bus.username = "wf-dispatch-1";
	o.bus.password = "pw-dispatch";
	o.inputs = inputs;
	o.n_inputs = 3;
	ck_assert_int_eq(wf_node_new(loop, &o, &cb, &got, &disp), 0);
	ck_assert_int_eq(wf_node_start(disp), 0);
	ck_assert(wf_test_run_until(loop, node_ready, disp, 10000));

	snprintf(path, sizeof path, "%s/op-zhang.pw", dir);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("pw-operator\n", f);
	fclose(f);
	ck_assert_int_eq(chmod(path, 0600), 0);
	snprintf(state, sizeof state, "%s/wfctl", dir);
	char *exe = wf_test_build_path("services/wfctl/wfctl");
	char *log = NULL;
	ck_assert_int_ge(asprintf(&log, "%s/wfctl.log", dir), 0);

	/* 1. as itself: acknowledged, applied once */
	char *ok[] = { exe, "approve", "wf-a-flood-410185000000-a1b2c3d4@3", "--username", "op-zhang",
		       "--password-file", path, "--port", port, "--state", state, "--timeout", "20",
		       NULL };
	struct child c = { wf_test_spawn(ok, NULL, log), -1 };
	ck_assert_int_gt(c.pid, 0);
	ck_assert(wf_test_run_until(loop, child_done, &c, 30000));
	ck_assert_int_eq(c.status, 0);
	wf_test_run_for(loop, 200); /* a duplicate would show here (not readiness: acked = applied) */
	ck_assert_int_eq(got.n, 1);
	ck_assert_str_eq(got.operator_id, "op-zhang");
	ck_assert_str_eq(got.warning_id, "wf-a-flood-410185000000-a1b2c3d4");
	ck_assert_uint_eq(got.version, 3);
	ck_assert_int_eq(got.decision, WF__V1__DECISION__DECISION_APPROVE);

	/* 2. claiming another operator: refused by the broker, never delivered */
	char state2[700];
	snprintf(state2, sizeof state2, "%s-forged", state);
	char *forged[] = { exe, "approve", "wf-a-flood-410185000000-a1b2c3d4@3", "--username",
			   "op-zhang", "--password-file", path, "--operator", "op-li", "--port", port,
			   "--state", state2, "--timeout", "3", NULL };
	struct child c2 = { wf_test_spawn(forged, NULL, log), -1 };
	ck_assert(wf_test_run_until(loop, child_done, &c2, 20000));
	ck_assert_int_eq(c2.status, 1);
	ck_assert_int_eq(got.n, 1);
	char *text = read_text(log);
	ck_assert_msg(strstr(text, "no acknowledgement") != NULL, "%s", text);
	free(text);

	/* a duty console acknowledges and files a follow-up as itself; acking
	 * for another station is refused by the broker */
	char dpath[700], dstate[700];
	snprintf(dpath, sizeof dpath, "%s/duty.pw", dir);
	f = fopen(dpath, "w");
	ck_assert_ptr_nonnull(f);
	fputs("pw-duty\n", f);
	fclose(f);
	ck_assert_int_eq(chmod(dpath, 0600), 0);
	snprintf(dstate, sizeof dstate, "%s/wfctl-duty", dir);
	char *ack[] = { exe, "ack", "duty-410185", "wf-a-flood-410185000000-a1b2c3d4@3", "--username",
			"duty-410185", "--password-file", dpath, "--operator", "王五", "--port", port,
			"--state", dstate, "--timeout", "20", NULL };
	struct child c4 = { wf_test_spawn(ack, NULL, log), -1 };
	ck_assert(wf_test_run_until(loop, child_done, &c4, 30000));
	ck_assert_int_eq(c4.status, 0);
	char *fu[] = { exe, "followup", "duty-410185", "wf-a-flood-410185000000-a1b2c3d4",
		       "颍河告成段水位回落，转移群众已安置。", "--username", "duty-410185", "--password-file",
		       dpath, "--port", port, "--state", dstate, "--timeout", "20", NULL };
	struct child c5 = { wf_test_spawn(fu, NULL, log), -1 };
	ck_assert(wf_test_run_until(loop, child_done, &c5, 30000));
	ck_assert_int_eq(c5.status, 0);
	wf_test_run_for(loop, 200);
	ck_assert_int_eq(got.acks, 1);
	ck_assert_str_eq(got.ack_station, "duty-410185");
	ck_assert_uint_eq(got.ack_version, 3);
	ck_assert_int_eq(got.followups, 1);
	ck_assert_str_eq(got.followup_text, "颍河告成段水位回落，转移群众已安置。");
	char dstate2[720];
	snprintf(dstate2, sizeof dstate2, "%s-forged", dstate);
	char *forged_ack[] = { exe, "ack", "duty-410186", "wf-a-flood-410185000000-a1b2c3d4@3",
			       "--username", "duty-410185", "--password-file", dpath, "--port", port,
			       "--state", dstate2, "--timeout", "3", NULL };
	struct child c6 = { wf_test_spawn(forged_ack, NULL, log), -1 };
	ck_assert(wf_test_run_until(loop, child_done, &c6, 20000));
	ck_assert_int_eq(c6.status, 1);
	ck_assert_int_eq(got.acks, 1);

	/* wfctl state: the retained states, the dispatcher's stand-in online */
	char *st_argv[] = { exe, "state", "--username", "op-zhang", "--password-file", path, "--port",
			    port, NULL };
	char *out = NULL;
	int st = wf_test_capture(st_argv, NULL, log, &out, 20000);
	ck_assert_msg(st == 0, "wfctl state: exit %d: %s", st, out ? out : "");
	ck_assert_ptr_nonnull(strstr(out, "wf-dispatch-1"));
	ck_assert_ptr_nonnull(strstr(out, "online"));
	free(out);
	wf_node_stop(disp); /* its OFFLINE state is retained: now state says so, exit 1 */
	ck_assert(wf_test_run_until(loop, disconnected, disp, 10000));
	st = wf_test_capture(st_argv, NULL, log, &out, 20000);
	ck_assert_int_eq(st, 1);
	ck_assert_ptr_nonnull(strstr(out, "OFFLINE"));
	free(out);

	/* 3. a password file others can read is refused before connecting */
	ck_assert_int_eq(chmod(path, 0644), 0);
	struct child c3 = { wf_test_spawn(ok, NULL, log), -1 };
	ck_assert(wf_test_run_until(loop, child_done, &c3, 10000));
	ck_assert_int_eq(c3.status, 2);
	text = read_text(log);
	ck_assert_msg(strstr(text, "readable by others") != NULL, "%s", text);
	free(text);

	wf_node_free(disp);
	wf_test_broker_free(br);
	wf_test_rmtree(dir);
	free(dir);
	free(exe);
	free(log);
	free(acl);
	free(aclpath);
	ev_loop_destroy(loop);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("wfctl");
	TCase *tc = tcase_create("acl");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_approve_through_the_acl);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
