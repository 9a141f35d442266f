/* The shipped broker ACL (deploy/mosquitto/acl) against a real mosquitto:
 * each identity may publish only where docs/protocol.md says, refusals come
 * back as MQTT v5 reason 135 (not a silent success), and what is delivered
 * is filtered by read rights. */
#include <check.h>
#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "wf/bus.h"

#define MAXMSG 64

struct cl {
	struct wf_bus *bus;
	int done, refused, last_result;
	int n;
	char topics[MAXMSG][128];
};

static void on_message(void *ud, const char *topic, const void *p, size_t len, bool retained)
{
	struct cl *c = ud;
	if (c->n < MAXMSG)
		snprintf(c->topics[c->n++], sizeof c->topics[0], "%s", topic);
}

static void on_publish(void *ud, int mid, int result, int reason)
{
	struct cl *c = ud;
	c->done++;
	c->last_result = result;
	if (result < 0)
		c->refused++;
}

static const struct wf_bus_callbacks cbs = { .on_message = on_message, .on_publish = on_publish };

static const struct wf_test_broker_user users[] = {
	{ "wf-met-1", "pw-met" },
	{ "wf-water-1", "pw-water" },
	{ "wf-fusion-1", "pw-fusion" },
	{ "wf-dispatch-1", "pw-dispatch" },
	{ "duty-twn-a", "pw-console" },   /* a duty station's console */
	{ "op-zhang", "pw-operator" },    /* an operator (wfctl) */
};

static char *read_acl(void)
{
	const char *root = getenv("WF_SOURCE_ROOT");
	char path[1024];
	snprintf(path, sizeof path, "%s/deploy/mosquitto/acl", root ? root : ".");
	FILE *f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	char *buf = calloc(1, 65536);
	size_t n = fread(buf, 1, 65535, f);
	fclose(f);
	ck_assert_uint_gt(n, 0);
	return buf;
}

static void cl_new(struct cl *c, struct ev_loop *loop, struct wf_test_broker *br, int user)
{
	struct wf_bus_options o;
	wf_bus_options_init(&o);
	o.port = wf_test_broker_port(br);
	o.client_id = users[user].name;
	o.username = users[user].name;
	o.password = users[user].password;
	memset(c, 0, sizeof *c);
	ck_assert_int_eq(wf_bus_new(loop, &o, &cbs, c, &c->bus), 0);
}

static bool subscribed(void *ud) { return wf_bus_subscribed(((struct cl *)ud)->bus); }
static bool connected(void *ud) { return wf_bus_connected(((struct cl *)ud)->bus); }

struct pw {
	struct cl *c;
	int target;
};
static bool pubs_done(void *ud)
{
	struct pw *w = ud;
	return w->c->done >= w->target;
}

/* Publishes and waits for the PUBACK; returns its result (0 or -EACCES). */
static int pub(struct ev_loop *loop, struct cl *c, const char *topic)
{
	struct pw w = { c, c->done + 1 };
	ck_assert_int_eq(wf_bus_publish(c->bus, topic, "x", 1, 1, false, NULL), 0);
	ck_assert(wf_test_run_until(loop, pubs_done, &w, 10000));
	return c->last_result;
}

static bool has(const struct cl *c, const char *topic)
{
	for (int i = 0; i < c->n; i++)
		if (strcmp(c->topics[i], topic) == 0)
			return true;
	return false;
}

struct seen {
	struct cl *c;
	const char *topic;
};
static bool seen(void *ud)
{
	struct seen *s = ud;
	return has(s->c, s->topic);
}

START_TEST(test_shipped_acl)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_test_broker_options bo;
	struct wf_test_broker *br = NULL;
	char *acl = read_acl();

	wf_test_broker_options_init(&bo);
	bo.users = users;
	bo.n_users = sizeof users / sizeof users[0];
	bo.acl = acl;
	ck_assert_int_eq(wf_test_broker_start(&bo, &br), 0);

	struct cl met, water, fusion, disp;
	cl_new(&met, loop, br, 0);
	cl_new(&water, loop, br, 1);
	cl_new(&fusion, loop, br, 2);
	cl_new(&disp, loop, br, 3);
	/* everyone subscribes to everything; delivery is what the ACL filters */
	ck_assert_int_eq(wf_bus_subscribe(fusion.bus, "wf/v1/#", 1), 0);
	ck_assert_int_eq(wf_bus_subscribe(disp.bus, "wf/v1/#", 1), 0);
	ck_assert_int_eq(wf_bus_subscribe(met.bus, "wf/v1/#", 1), 0);
	wf_bus_start(met.bus);
	wf_bus_start(water.bus);
	wf_bus_start(fusion.bus);
	wf_bus_start(disp.bus);
	ck_assert(wf_test_run_until(loop, subscribed, &fusion, 10000));
	ck_assert(wf_test_run_until(loop, subscribed, &disp, 10000));
	ck_assert(wf_test_run_until(loop, subscribed, &met, 10000));
	ck_assert(wf_test_run_until(loop, connected, &water, 10000));

	/* agencies: own event topics only */
	ck_assert_int_eq(pub(loop, &met, "wf/v1/event/met/41/4101/410102"), 0);
	ck_assert_int_eq(pub(loop, &met, "wf/v1/event/water/41/4101/410102"), -EACCES);
	ck_assert_int_eq(pub(loop, &water, "wf/v1/event/water/41/4101/410102"), 0);
	/* nobody but fusion writes warnings */
	ck_assert_int_eq(pub(loop, &met, "wf/v1/warning/41/4101/410102/flood"), -EACCES);
	ck_assert_int_eq(pub(loop, &disp, "wf/v1/warning/41/4101/410102/flood"), -EACCES);
	ck_assert_int_eq(pub(loop, &fusion, "wf/v1/warning/41/4101/410102/flood"), 0);
	/* acks: consumers only; an agency cannot forge acks for another producer */
	ck_assert_int_eq(pub(loop, &met, "wf/v1/ack/wf-water-1"), -EACCES);
	ck_assert_int_eq(pub(loop, &fusion, "wf/v1/ack/wf-met-1"), 0);
	ck_assert_int_eq(pub(loop, &disp, "wf/v1/ack/wf-fusion-1"), 0);
	/* state and dead letters: one's own only */
	ck_assert_int_eq(pub(loop, &met, "wf/v1/state/wf-met-1"), 0);
	ck_assert_int_eq(pub(loop, &met, "wf/v1/state/wf-fusion-1"), -EACCES);
	ck_assert_int_eq(pub(loop, &met, "wf/v1/deadletter/wf-met-1"), 0);
	ck_assert_int_eq(pub(loop, &met, "wf/v1/deadletter/wf-fusion-1"), -EACCES);

	/* delivery: fusion got both agencies' events; dispatch the warning */
	struct seen s1 = { &fusion, "wf/v1/event/water/41/4101/410102" };
	ck_assert(wf_test_run_until(loop, seen, &s1, 10000));
	ck_assert(has(&fusion, "wf/v1/event/met/41/4101/410102"));
	ck_assert(has(&fusion, "wf/v1/state/wf-met-1"));
	struct seen s2 = { &disp, "wf/v1/warning/41/4101/410102/flood" };
	ck_assert(wf_test_run_until(loop, seen, &s2, 10000));
	struct seen s3 = { &met, "wf/v1/ack/wf-met-1" };
	ck_assert(wf_test_run_until(loop, seen, &s3, 10000));
	/* ... and nothing they may not read (all delivered by now: each
	 * client's messages arrive in order, and later ones were seen) */
	ck_assert(!has(&disp, "wf/v1/event/met/41/4101/410102"));
	ck_assert(!has(&disp, "wf/v1/ack/wf-met-1"));
	ck_assert(!has(&met, "wf/v1/event/water/41/4101/410102"));
	ck_assert(!has(&met, "wf/v1/warning/41/4101/410102/flood"));
	ck_assert(!has(&fusion, "wf/v1/deadletter/wf-met-1"));
	/* forged ones never reached anybody */
	int water_events = 0;
	for (int i = 0; i < fusion.n; i++)
		if (strcmp(fusion.topics[i], "wf/v1/event/water/41/4101/410102") == 0)
			water_events++;
	ck_assert_int_eq(water_events, 1); /* met's forged one was not delivered */
	int fusion_states = 0;
	for (int i = 0; i < fusion.n; i++)
		if (strcmp(fusion.topics[i], "wf/v1/state/wf-fusion-1") == 0)
			fusion_states++;
	ck_assert_int_eq(fusion_states, 0); /* met's forged state for fusion */
	ck_assert_int_eq(met.refused, 5);

	wf_bus_free(met.bus);
	wf_bus_free(water.bus);
	wf_bus_free(fusion.bus);
	wf_bus_free(disp.bus);
	wf_test_broker_free(br);
	free(acl);
	ev_loop_destroy(loop);
}
END_TEST

/* The release workflow and delivery topics (dispatch.proto): only the
 * dispatcher writes duty inboxes and broadcast state; a console writes only
 * its own acks and follow-ups and reads only its own inbox; an operator
 * writes only approvals and silences in its own name. */
START_TEST(test_dispatch_topics)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_test_broker_options bo;
	struct wf_test_broker *br = NULL;
	char *acl = read_acl();

	wf_test_broker_options_init(&bo);
	bo.users = users;
	bo.n_users = sizeof users / sizeof users[0];
	bo.acl = acl;
	ck_assert_int_eq(wf_test_broker_start(&bo, &br), 0);

	struct cl met, disp, con, op;
	cl_new(&met, loop, br, 0);
	cl_new(&disp, loop, br, 3);
	cl_new(&con, loop, br, 4);
	cl_new(&op, loop, br, 5);
	ck_assert_int_eq(wf_bus_subscribe(disp.bus, "wf/v1/#", 1), 0);
	ck_assert_int_eq(wf_bus_subscribe(con.bus, "wf/v1/#", 1), 0);
	ck_assert_int_eq(wf_bus_subscribe(met.bus, "wf/v1/#", 1), 0);
	wf_bus_start(met.bus);
	wf_bus_start(disp.bus);
	wf_bus_start(con.bus);
	wf_bus_start(op.bus);
	ck_assert(wf_test_run_until(loop, subscribed, &disp, 10000));
	ck_assert(wf_test_run_until(loop, subscribed, &con, 10000));
	ck_assert(wf_test_run_until(loop, subscribed, &met, 10000));
	ck_assert(wf_test_run_until(loop, connected, &op, 10000));

	/* dispatcher: inboxes and broadcast state; not acks of stations */
	ck_assert_int_eq(pub(loop, &disp, "wf/v1/duty/duty-twn-a/inbox"), 0);
	ck_assert_int_eq(pub(loop, &disp, "wf/v1/duty/duty-twn-b/inbox"), 0);
	ck_assert_int_eq(pub(loop, &disp, "wf/v1/broadcast/41/4101/410185"), 0);
	ck_assert_int_eq(pub(loop, &disp, "wf/v1/approval/op-zhang"), -EACCES);
	/* nobody else writes inboxes or broadcast state */
	ck_assert_int_eq(pub(loop, &met, "wf/v1/duty/duty-twn-a/inbox"), -EACCES);
	ck_assert_int_eq(pub(loop, &met, "wf/v1/broadcast/41/4101/410185"), -EACCES);
	ck_assert_int_eq(pub(loop, &con, "wf/v1/duty/duty-twn-a/inbox"), -EACCES);
	ck_assert_int_eq(pub(loop, &op, "wf/v1/broadcast/41/4101/410185"), -EACCES);
	/* a console: its own acks and follow-ups only */
	ck_assert_int_eq(pub(loop, &con, "wf/v1/duty/duty-twn-a/ack"), 0);
	ck_assert_int_eq(pub(loop, &con, "wf/v1/duty/duty-twn-a/followup"), 0);
	ck_assert_int_eq(pub(loop, &con, "wf/v1/duty/duty-twn-b/ack"), -EACCES);
	/* the approval pattern lets any identity write its own approval topic:
	 * wf-dispatch refuses approvals from users not listed as operators */
	ck_assert_int_eq(pub(loop, &con, "wf/v1/approval/duty-twn-a"), 0);
	ck_assert_int_eq(pub(loop, &con, "wf/v1/approval/op-zhang"), -EACCES);
	/* an operator: approvals and silences in its own name only */
	ck_assert_int_eq(pub(loop, &op, "wf/v1/approval/op-zhang"), 0);
	ck_assert_int_eq(pub(loop, &op, "wf/v1/silence/op-zhang"), 0);
	ck_assert_int_eq(pub(loop, &op, "wf/v1/approval/op-li"), -EACCES);
	ck_assert_int_eq(pub(loop, &op, "wf/v1/duty/duty-twn-a/ack"), -EACCES);
	ck_assert_int_eq(pub(loop, &op, "wf/v1/warning/41/4101/410185/flood"), -EACCES);
	ck_assert_int_eq(pub(loop, &met, "wf/v1/approval/op-zhang"), -EACCES);
	/* the dispatcher's views and verdicts: wf-dispatch only */
	ck_assert_int_eq(pub(loop, &disp, "wf/v1/review/wf-a-flood-1"), 0);
	ck_assert_int_eq(pub(loop, &disp, "wf/v1/verdict/op-zhang"), 0);
	ck_assert_int_eq(pub(loop, &disp, "wf/v1/stats/wf-dispatch-1"), 0);
	ck_assert_int_eq(pub(loop, &disp, "wf/v1/silences/wf-dispatch-1"), 0);
	ck_assert_int_eq(pub(loop, &op, "wf/v1/review/wf-a-flood-1"), -EACCES);
	ck_assert_int_eq(pub(loop, &op, "wf/v1/verdict/op-zhang"), -EACCES);
	ck_assert_int_eq(pub(loop, &op, "wf/v1/stats/wf-dispatch-1"), -EACCES);
	ck_assert_int_eq(pub(loop, &op, "wf/v1/silences/wf-dispatch-1"), -EACCES);
	ck_assert_int_eq(pub(loop, &con, "wf/v1/verdict/duty-twn-a"), -EACCES);
	ck_assert_int_eq(pub(loop, &met, "wf/v1/review/wf-a-flood-1"), -EACCES);
	ck_assert_int_eq(pub(loop, &met, "wf/v1/stats/wf-met-1"), -EACCES);
	/* nobody but the drill injector and an agency writes events */
	ck_assert_int_eq(pub(loop, &op, "wf/v1/event/met/41/4101/410185"), -EACCES);
	ck_assert_int_eq(pub(loop, &disp, "wf/v1/event/met/41/4101/410185"), -EACCES);

	/* delivery: the dispatcher gets approvals, silences, acks, follow-ups */
	struct seen s1 = { &disp, "wf/v1/silence/op-zhang" };
	ck_assert(wf_test_run_until(loop, seen, &s1, 10000));
	ck_assert(has(&disp, "wf/v1/approval/op-zhang"));
	ck_assert(has(&disp, "wf/v1/duty/duty-twn-a/ack"));
	ck_assert(has(&disp, "wf/v1/duty/duty-twn-a/followup"));
	/* the console gets its own inbox and the broadcast state, not B's inbox */
	struct seen s2 = { &con, "wf/v1/broadcast/41/4101/410185" };
	ck_assert(wf_test_run_until(loop, seen, &s2, 10000));
	ck_assert(has(&con, "wf/v1/duty/duty-twn-a/inbox"));
	ck_assert(!has(&con, "wf/v1/duty/duty-twn-b/inbox"));
	ck_assert(!has(&con, "wf/v1/approval/op-zhang"));
	/* an agency reads none of it but the public broadcast state */
	struct seen s3 = { &met, "wf/v1/broadcast/41/4101/410185" };
	ck_assert(wf_test_run_until(loop, seen, &s3, 10000));
	ck_assert(!has(&met, "wf/v1/duty/duty-twn-a/inbox"));
	ck_assert(!has(&met, "wf/v1/duty/duty-twn-a/ack"));
	ck_assert(!has(&met, "wf/v1/approval/op-zhang"));
	/* the views are readable by all; verdicts by their operator only (the
	 * console subscribed to wf/v1/#; silences came after the verdict) */
	struct seen s4 = { &con, "wf/v1/silences/wf-dispatch-1" };
	ck_assert(wf_test_run_until(loop, seen, &s4, 10000));
	ck_assert(has(&con, "wf/v1/review/wf-a-flood-1"));
	ck_assert(has(&con, "wf/v1/stats/wf-dispatch-1"));
	ck_assert(!has(&con, "wf/v1/verdict/op-zhang"));

	wf_bus_free(met.bus);
	wf_bus_free(disp.bus);
	wf_bus_free(con.bus);
	wf_bus_free(op.bus);
	wf_test_broker_free(br);
	free(acl);
	ev_loop_destroy(loop);
}
END_TEST

int main(void)
{
	char *tmp = wf_test_mkdtemp("itest-acl");
	if (!tmp || setenv("TMPDIR", tmp, 1) < 0)
		return EXIT_FAILURE;
	Suite *s = suite_create("acl");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_shipped_acl);
	tcase_add_test(tc, test_dispatch_topics);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	wf_test_rmtree(tmp);
	free(tmp);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
