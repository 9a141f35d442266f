/* Integration tests for common/src/bus.c against a real, private mosquitto
 * (tests/harness/broker.c). No fixed ports, no sleeps for readiness: every
 * wait is wf_test_run_until() on a condition with a deadline. */
#include <check.h>
#include <errno.h>
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker.h"
#include "wf/bus.h"
#include "wf/clock.h"

#define MAX_SEEN 256

struct client {
	struct wf_bus *bus;
	int ups, downs, last_down_reason;
	int msgs;
	char last_topic[256];
	char last_payload[256];
	size_t last_len;
	bool last_retained;
	int pubs_done, last_pub_mid, last_pub_result, last_pub_reason;
	int pub_failures;
	int sub_errors, last_sub_reason;
	bool seen[MAX_SEEN];
	int distinct;
	const char *watch_topic; /* count messages on this exact topic */
	int watch_hits;
	bool stop_on_message;    /* call wf_bus_stop() from on_message */
	int stop_rc;
};

static void on_message(void *ud, const char *topic, const void *payload, size_t len, bool retained)
{
	struct client *c = ud;
	c->msgs++;
	snprintf(c->last_topic, sizeof c->last_topic, "%s", topic);
	size_t n = len < sizeof c->last_payload - 1 ? len : sizeof c->last_payload - 1;
	memcpy(c->last_payload, payload, n);
	c->last_payload[n] = '\0';
	c->last_len = len;
	c->last_retained = retained;
	int idx;
	if (sscanf(c->last_payload, "msg-%d", &idx) == 1 && idx >= 0 && idx < MAX_SEEN &&
	    !c->seen[idx]) {
		c->seen[idx] = true;
		c->distinct++;
	}
	if (c->watch_topic && strcmp(topic, c->watch_topic) == 0)
		c->watch_hits++;
	if (c->stop_on_message) {
		c->stop_on_message = false;
		c->stop_rc = wf_bus_stop(c->bus);
	}
}

static void on_connection(void *ud, bool up, int reason)
{
	struct client *c = ud;
	if (up) {
		c->ups++;
	} else {
		c->downs++;
		c->last_down_reason = reason;
	}
}

static void on_publish(void *ud, int mid, int result, int reason)
{
	struct client *c = ud;
	c->pubs_done++;
	c->last_pub_mid = mid;
	c->last_pub_result = result;
	c->last_pub_reason = reason;
	if (result < 0)
		c->pub_failures++;
}

static void on_subscribe_error(void *ud, const char *pattern, int reason)
{
	struct client *c = ud;
	(void)pattern;
	c->sub_errors++;
	c->last_sub_reason = reason;
}

static const struct wf_bus_callbacks callbacks = {
	.on_message = on_message,
	.on_connection = on_connection,
	.on_publish = on_publish,
	.on_subscribe_error = on_subscribe_error,
};

static void client_new(struct client *c, struct ev_loop *loop, struct wf_test_broker *br,
		       const char *id, const struct wf_bus_options *base)
{
	struct wf_bus_options o;
	if (base)
		o = *base;
	else
		wf_bus_options_init(&o);
	o.port = wf_test_broker_port(br);
	o.client_id = id;
	o.reconnect_min_s = 0.05;
	o.reconnect_max_s = 0.4;
	memset(c, 0, sizeof(*c));
	ck_assert_int_eq(wf_bus_new(loop, &o, &callbacks, c, &c->bus), 0);
}

static bool is_connected(void *ud)
{
	return wf_bus_connected(((struct client *)ud)->bus);
}

static bool is_subscribed(void *ud)
{
	return wf_bus_subscribed(((struct client *)ud)->bus);
}

static bool no_inflight(void *ud)
{
	return wf_bus_inflight(((struct client *)ud)->bus) == 0;
}

struct count_wait {
	const int *counter;
	int target;
};

static bool count_reached(void *ud)
{
	const struct count_wait *w = ud;
	return *w->counter >= w->target;
}

static bool wait_count(struct ev_loop *loop, const int *counter, int target, int ms)
{
	struct count_wait w = { counter, target };
	return wf_test_run_until(loop, count_reached, &w, ms);
}

static struct wf_test_broker *broker_start(const struct wf_test_broker_options *o)
{
	struct wf_test_broker *br = NULL;
	int r = wf_test_broker_start(o, &br);
	ck_assert_msg(r == 0, "broker start failed: %s", strerror(-r));
	return br;
}

/* ---- tests ---- */

START_TEST(test_options_and_local_errors)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_bus_options o;
	struct wf_bus *bus = NULL;
	struct client c = { 0 };

	wf_bus_options_init(&o);
	ck_assert_str_eq(o.host, "127.0.0.1");
	ck_assert_int_eq(o.port, 1883);
	ck_assert_int_eq(o.keepalive_s, 30);
	ck_assert(!o.clean_start);
	ck_assert_int_eq(wf_bus_new(loop, &o, &callbacks, &c, &bus), -EINVAL); /* no client id */
	ck_assert_ptr_null(bus);
	o.client_id = "x";
	o.keepalive_s = 2;
	ck_assert_int_eq(wf_bus_new(loop, &o, &callbacks, &c, &bus), -EINVAL);
	o.keepalive_s = 30;
	o.reconnect_min_s = 5;
	o.reconnect_max_s = 1;
	ck_assert_int_eq(wf_bus_new(loop, &o, &callbacks, &c, &bus), -EINVAL);
	o.reconnect_min_s = 0.1;
	o.reconnect_max_s = 1;
	o.will_topic = "wf/+/bad";
	ck_assert_int_eq(wf_bus_new(loop, &o, &callbacks, &c, &bus), -EINVAL);
	o.will_topic = NULL;
	o.password = "pw";
	ck_assert_int_eq(wf_bus_new(loop, &o, &callbacks, &c, &bus), -EINVAL);
	o.password = NULL;
	o.max_packet_size = 4096;
	ck_assert_int_eq(wf_bus_new(loop, &o, &callbacks, &c, &bus), 0);
	ck_assert_ptr_nonnull(bus);

	/* not started: nothing goes out, nothing is queued */
	ck_assert_int_eq(wf_bus_get_state(bus), WF_BUS_STATE_IDLE);
	ck_assert_int_eq(wf_bus_publish(bus, "wf/v1/a", "x", 1, 1, false, NULL), -ENOTCONN);
	ck_assert_int_eq(wf_bus_publish(bus, "wf/v1/#", "x", 1, 1, false, NULL), -EINVAL);
	ck_assert_int_eq(wf_bus_publish(bus, "", "x", 1, 1, false, NULL), -EINVAL);
	ck_assert_int_eq(wf_bus_publish(bus, "wf/v1/a", "x", 1, 3, false, NULL), -EINVAL);
	static char big[5000];
	ck_assert_int_eq(wf_bus_publish(bus, "wf/v1/a", big, sizeof big, 1, false, NULL), -EMSGSIZE);
	ck_assert_int_eq(wf_bus_subscribe(bus, "wf/#/bad", 1), -EINVAL);
	ck_assert_int_eq(wf_bus_subscribe(bus, "wf/v1/#", 1), 0);
	ck_assert_int_eq(wf_bus_subscribe(bus, "wf/v1/#", 0), 0); /* update, not a duplicate */
	ck_assert(!wf_bus_subscribed(bus));
	ck_assert_uint_eq(wf_bus_inflight(bus), 0);
	ck_assert_int_eq(wf_bus_stop(bus), 0);

	/* reason-code mapping */
	ck_assert_int_eq(wf_bus_reason_to_errno(0x00), 0);
	ck_assert_int_eq(wf_bus_reason_to_errno(0x10), 0);
	ck_assert_int_eq(wf_bus_reason_to_errno(0x87), -EACCES);
	ck_assert_int_eq(wf_bus_reason_to_errno(0x80), -EIO);
	ck_assert_int_eq(wf_bus_reason_to_errno(0x97), -EDQUOT);
	ck_assert_int_eq(wf_bus_reason_to_errno(0x99), -EBADMSG);
	ck_assert_int_eq(wf_bus_reason_to_errno(0x9B), -EPROTO);
	ck_assert_str_eq(wf_bus_state_to_string(WF_BUS_STATE_CONNECTED), "connected");
	ck_assert_str_eq(wf_bus_state_to_string(WF_BUS_STATE_INVALID), "invalid");
	ck_assert_ptr_nonnull(wf_bus_reason_string(0x87));

	bus = wf_bus_free(bus);
	ck_assert_ptr_null(bus);
	ck_assert_ptr_null(wf_bus_free(NULL));
	ev_loop_destroy(loop);
}
END_TEST

START_TEST(test_roundtrip_qos1)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_test_broker *br = broker_start(NULL);
	struct client sub, pub;

	client_new(&sub, loop, br, "rt-sub", NULL);
	client_new(&pub, loop, br, "rt-pub", NULL);
	ck_assert_int_eq(wf_bus_subscribe(sub.bus, "wf/v1/test/#", 1), 0);
	ck_assert_int_eq(wf_bus_start(sub.bus), 0);
	ck_assert_int_eq(wf_bus_start(pub.bus), 0);
	ck_assert(wf_test_run_until(loop, is_subscribed, &sub, 10000));
	ck_assert(wf_test_run_until(loop, is_connected, &pub, 10000));
	ck_assert_int_eq(sub.ups, 1);
	ck_assert_int_eq(pub.ups, 1);

	int mid = 0;
	ck_assert_int_eq(wf_bus_publish(pub.bus, "wf/v1/test/a", "hello", 5, 1, false, &mid), 0);
	ck_assert_int_gt(mid, 0);
	ck_assert_uint_eq(wf_bus_inflight(pub.bus), 1);
	ck_assert(wait_count(loop, &sub.msgs, 1, 10000));
	ck_assert(wf_test_run_until(loop, no_inflight, &pub, 10000));
	ck_assert_str_eq(sub.last_topic, "wf/v1/test/a");
	ck_assert_uint_eq(sub.last_len, 5);
	ck_assert_str_eq(sub.last_payload, "hello");
	ck_assert(!sub.last_retained);
	ck_assert_int_eq(pub.pubs_done, 1);
	ck_assert_int_eq(pub.last_pub_mid, mid);
	ck_assert_int_eq(pub.last_pub_result, 0);
	ck_assert_int_eq(pub.last_pub_reason, 0);

	/* no subscriber: PUBACK reason 0x10 is still success */
	ck_assert_int_eq(wf_bus_publish(pub.bus, "wf/v1/nobody", "x", 1, 1, false, &mid), 0);
	ck_assert(wait_count(loop, &pub.pubs_done, 2, 10000));
	ck_assert_int_eq(pub.last_pub_reason, 0x10);
	ck_assert_int_eq(pub.last_pub_result, 0);

	/* a burst, in order, nothing lost */
	for (int i = 0; i < 200; i++) {
		char p[32];
		int n = snprintf(p, sizeof p, "msg-%d", i);
		ck_assert_int_eq(wf_bus_publish(pub.bus, "wf/v1/test/burst", p, (size_t)n, 1, false, NULL), 0);
	}
	ck_assert(wait_count(loop, &sub.distinct, 200, 10000));
	ck_assert_str_eq(sub.last_payload, "msg-199");
	ck_assert(wf_test_run_until(loop, no_inflight, &pub, 10000));
	ck_assert_int_eq(pub.pub_failures, 0);

	/* a retained view at QoS 0 (wf-dispatch's views): no place in the
	 * queue, completed once written, not counted as a PUBACK */
	int done = pub.pubs_done;
	ck_assert_int_eq(wf_bus_publish(pub.bus, "wf/v1/test/view", "view-1", 6, 0, true, &mid), 0);
	ck_assert_uint_eq(wf_bus_inflight(pub.bus), 0);
	ck_assert(wait_count(loop, &sub.msgs, 202, 10000));
	ck_assert_str_eq(sub.last_topic, "wf/v1/test/view");
	ck_assert_str_eq(sub.last_payload, "view-1");
	ck_assert(wait_count(loop, &pub.pubs_done, done + 1, 10000));
	ck_assert_int_eq(pub.last_pub_result, 0);

	struct wf_bus_stats st;
	wf_bus_get_stats(pub.bus, &st);
	ck_assert_uint_eq(st.published, 203);
	ck_assert_uint_eq(st.publish_acked, 202);
	ck_assert_uint_eq(st.connect_attempts, 1);
	wf_bus_get_stats(sub.bus, &st);
	ck_assert_uint_eq(st.received, 202);

	ck_assert_int_eq(wf_bus_stop(pub.bus), 0);
	ck_assert_int_eq(wf_bus_get_state(pub.bus), WF_BUS_STATE_IDLE);
	ck_assert_int_eq(wf_bus_publish(pub.bus, "wf/v1/test/a", "x", 1, 1, false, NULL), -ENOTCONN);
	wf_bus_free(sub.bus);
	wf_bus_free(pub.bus);
	wf_test_broker_free(br);
	ev_loop_destroy(loop);
}
END_TEST

START_TEST(test_persistent_session)
{
	enum { N = 50 };
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_test_broker *br = broker_start(NULL);
	struct client sub, pub;
	struct wf_bus_options o;

	wf_bus_options_init(&o);
	o.session_expiry_s = 300;
	client_new(&sub, loop, br, "persist-sub", &o);
	client_new(&pub, loop, br, "persist-pub", NULL);
	ck_assert_int_eq(wf_bus_subscribe(sub.bus, "wf/v1/p/#", 1), 0);
	ck_assert_int_eq(wf_bus_start(sub.bus), 0);
	ck_assert_int_eq(wf_bus_start(pub.bus), 0);
	ck_assert(wf_test_run_until(loop, is_subscribed, &sub, 10000));
	ck_assert(wf_test_run_until(loop, is_connected, &pub, 10000));

	/* the subscriber goes away cleanly; its session stays on the broker */
	ck_assert_int_eq(wf_bus_stop(sub.bus), 0);
	ck_assert_int_eq(wf_bus_get_state(sub.bus), WF_BUS_STATE_IDLE);
	ck_assert_int_eq(sub.downs, 0); /* stop does not report */

	for (int i = 0; i < N; i++) {
		char p[32];
		int n = snprintf(p, sizeof p, "msg-%d", i);
		ck_assert_int_eq(wf_bus_publish(pub.bus, "wf/v1/p/x", p, (size_t)n, 1, false, NULL), 0);
	}
	ck_assert(wait_count(loop, &pub.pubs_done, N, 10000));
	ck_assert_int_eq(pub.pub_failures, 0);
	/* queued for the offline session: the broker says "matched", not 0x10 */
	ck_assert_int_eq(pub.last_pub_reason, 0);
	ck_assert_int_eq(sub.msgs, 0);

	/* the same client id comes back and gets all of them */
	ck_assert_int_eq(wf_bus_start(sub.bus), 0);
	ck_assert(wait_count(loop, &sub.distinct, N, 10000));
	ck_assert(wf_bus_session_present(sub.bus));
	ck_assert_int_eq(sub.ups, 2);
	ck_assert_int_eq(sub.distinct, N);

	/* and again: the session expiry is sent on every connect, not just
	 * the first */
	ck_assert_int_eq(wf_bus_stop(sub.bus), 0);
	for (int i = N; i < 2 * N; i++) {
		char p[32];
		int n = snprintf(p, sizeof p, "msg-%d", i);
		ck_assert_int_eq(wf_bus_publish(pub.bus, "wf/v1/p/x", p, (size_t)n, 1, false, NULL), 0);
	}
	ck_assert(wait_count(loop, &pub.pubs_done, 2 * N, 10000));
	ck_assert_int_eq(wf_bus_start(sub.bus), 0);
	ck_assert(wait_count(loop, &sub.distinct, 2 * N, 10000));
	ck_assert(wf_bus_session_present(sub.bus));
	ck_assert_int_eq(sub.ups, 3);

	wf_bus_free(sub.bus);
	wf_bus_free(pub.bus);
	wf_test_broker_free(br);
	ev_loop_destroy(loop);
}
END_TEST

START_TEST(test_reconnect_after_broker_restart)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_test_broker *br = broker_start(NULL);
	struct client sub, pub;

	client_new(&sub, loop, br, "rc-sub", NULL);
	client_new(&pub, loop, br, "rc-pub", NULL);
	ck_assert_int_eq(wf_bus_subscribe(sub.bus, "wf/v1/rc/#", 1), 0);
	ck_assert_int_eq(wf_bus_start(sub.bus), 0);
	ck_assert_int_eq(wf_bus_start(pub.bus), 0);
	ck_assert(wf_test_run_until(loop, is_subscribed, &sub, 10000));
	ck_assert(wf_test_run_until(loop, is_connected, &pub, 10000));

	ck_assert_int_eq(wf_test_broker_kill(br), 0);
	ck_assert(wait_count(loop, &sub.downs, 1, 10000));
	ck_assert(wait_count(loop, &pub.downs, 1, 10000));
	ck_assert(!wf_bus_connected(sub.bus));
	ck_assert_int_lt(sub.last_down_reason, 0); /* a transport error, not an MQTT reason */
	ck_assert_int_eq(wf_bus_publish(pub.bus, "wf/v1/rc/a", "x", 1, 1, false, NULL), -ENOTCONN);

	/* while the broker is down: retries with backoff, not a busy loop */
	struct wf_bus_stats before, after;
	wf_bus_get_stats(pub.bus, &before);
	int64_t t0 = wf_clock_mono_ms();
	wf_test_run_for(loop, 1000);
	double elapsed = (double)(wf_clock_mono_ms() - t0) / 1000.0;
	wf_bus_get_stats(pub.bus, &after);
	uint64_t attempts = after.connect_attempts - before.connect_attempts;
	/* min step 0.05 s x 0.75 jitter, doubling to 0.4 s */
	ck_assert_msg(attempts >= 2 && (double)attempts <= elapsed / 0.0375 + 2,
		      "%llu attempts in %.2f s", (unsigned long long)attempts, elapsed);
	ck_assert_int_eq(pub.last_down_reason, -ECONNREFUSED);
	ck_assert_int_eq(pub.ups, 1);

	ck_assert_int_eq(wf_test_broker_restart(br), 0);
	ck_assert(wait_count(loop, &sub.ups, 2, 10000));
	ck_assert(wait_count(loop, &pub.ups, 2, 10000));
	/* no persistence: the session is gone, so the bus re-subscribed */
	ck_assert(!wf_bus_session_present(sub.bus));
	ck_assert(wf_test_run_until(loop, is_subscribed, &sub, 10000));
	ck_assert_int_eq(wf_bus_publish(pub.bus, "wf/v1/rc/a", "after", 5, 1, false, NULL), 0);
	ck_assert(wait_count(loop, &sub.msgs, 1, 10000));
	ck_assert_str_eq(sub.last_topic, "wf/v1/rc/a");
	ck_assert_str_eq(sub.last_payload, "after");

	wf_bus_free(sub.bus);
	wf_bus_free(pub.bus);
	wf_test_broker_free(br);
	ev_loop_destroy(loop);
}
END_TEST

static const struct wf_test_broker_user acl_users[] = {
	{ "met", "met-secret" },
	{ "console", "console-secret" },
};

static const char acl_text[] =
	"user met\n"
	"topic write wf/v1/event/met/#\n"
	"\n"
	"user console\n"
	"topic read #\n";

static struct wf_test_broker *acl_broker(void)
{
	struct wf_test_broker_options bo;
	wf_test_broker_options_init(&bo);
	bo.users = acl_users;
	bo.n_users = 2;
	bo.acl = acl_text;
	return broker_start(&bo);
}

START_TEST(test_acl_refused_publish)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_test_broker *br = acl_broker();
	struct client met, con;
	struct wf_bus_options o;

	wf_bus_options_init(&o);
	o.username = "met";
	o.password = "met-secret";
	client_new(&met, loop, br, "acl-met", &o);
	o.username = "console";
	o.password = "console-secret";
	client_new(&con, loop, br, "acl-console", &o);
	ck_assert_int_eq(wf_bus_subscribe(con.bus, "#", 1), 0);
	ck_assert_int_eq(wf_bus_start(con.bus), 0);
	ck_assert_int_eq(wf_bus_start(met.bus), 0);
	ck_assert(wf_test_run_until(loop, is_subscribed, &con, 10000));
	ck_assert(wf_test_run_until(loop, is_connected, &met, 10000));

	/* refused: met may not write warnings */
	int mid = 0;
	ck_assert_int_eq(wf_bus_publish(met.bus, "wf/v1/warning/44/4401/440106/flood", "forged", 6, 1,
				       false, &mid), 0);
	ck_assert(wait_count(loop, &met.pubs_done, 1, 10000));
	ck_assert_int_eq(met.last_pub_mid, mid);
	ck_assert_int_eq(met.last_pub_result, -EACCES);
	ck_assert_int_eq(met.last_pub_reason, 135);

	/* allowed: its own event topic; published after the refused one on the
	 * same connection, so had the refused one been delivered it would have
	 * arrived first */
	ck_assert_int_eq(wf_bus_publish(met.bus, "wf/v1/event/met/44/4401/440106", "event", 5, 1,
				       false, &mid), 0);
	ck_assert(wait_count(loop, &met.pubs_done, 2, 10000));
	ck_assert_int_eq(met.last_pub_result, 0);
	ck_assert(wait_count(loop, &con.msgs, 1, 10000));
	ck_assert_str_eq(con.last_topic, "wf/v1/event/met/44/4401/440106");
	ck_assert_str_eq(con.last_payload, "event");
	ck_assert_int_eq(con.msgs, 1);

	struct wf_bus_stats st;
	wf_bus_get_stats(met.bus, &st);
	ck_assert_uint_eq(st.publish_refused, 1);
	ck_assert_uint_eq(st.publish_acked, 1);
	ck_assert(wf_bus_connected(met.bus)); /* a refused publish does not cost the connection */

	wf_bus_free(met.bus);
	wf_bus_free(con.bus);
	wf_test_broker_free(br);
	ev_loop_destroy(loop);
}
END_TEST

START_TEST(test_bad_credentials_backoff)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_test_broker *br = acl_broker();
	struct client bad;
	struct wf_bus_options o;

	wf_bus_options_init(&o);
	o.username = "met";
	o.password = "wrong";
	client_new(&bad, loop, br, "bad-creds", &o);
	ck_assert_int_eq(wf_bus_start(bad.bus), 0);
	ck_assert(wait_count(loop, &bad.downs, 1, 10000));
	/* a CONNACK refusal: Mosquitto 2.0.11 answers a wrong password with
	 * 0x87 not authorized (later releases send 0x86 bad user name or
	 * password) */
	int refusal = bad.last_down_reason;
	ck_assert_msg(refusal == 0x86 || refusal == 0x87, "reason %d", refusal);
	ck_assert_int_eq(bad.ups, 0);

	int64_t t0 = wf_clock_mono_ms();
	int downs0 = bad.downs;
	wf_test_run_for(loop, 1500);
	double elapsed = (double)(wf_clock_mono_ms() - t0) / 1000.0;
	int n = bad.downs - downs0;
	/* keeps retrying, each refusal reported, with backoff (a busy loop would
	 * make thousands of attempts) */
	ck_assert_msg(n >= 2 && (double)n <= elapsed / 0.0375 + 2, "%d refusals in %.2f s", n,
		      elapsed);
	ck_assert_int_eq(bad.last_down_reason, refusal);
	ck_assert_int_eq(bad.ups, 0);
	struct wf_bus_stats st;
	wf_bus_get_stats(bad.bus, &st);
	ck_assert_uint_eq(st.connects, 0);
	ck_assert_uint_ge(st.connect_attempts, (uint64_t)bad.downs);

	/* stop ends the retries */
	ck_assert_int_eq(wf_bus_stop(bad.bus), 0);
	ck_assert_int_eq(wf_bus_get_state(bad.bus), WF_BUS_STATE_IDLE);
	uint64_t attempts = st.connect_attempts;
	wf_test_run_for(loop, 300);
	wf_bus_get_stats(bad.bus, &st);
	ck_assert_uint_le(st.connect_attempts, attempts + 1);

	wf_bus_free(bad.bus);
	wf_test_broker_free(br);
	ev_loop_destroy(loop);
}
END_TEST

#define WILL_TOPIC "wf/v1/state/test/will-child"

/* In a forked child: connect with a retained OFFLINE will, tell the parent,
 * then die without DISCONNECT. */
static void will_child(int port, int wfd)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_bus_options o;
	struct client c;
	wf_bus_options_init(&o);
	o.port = port;
	o.client_id = "will-child";
	o.will_topic = WILL_TOPIC;
	o.will_payload = "OFFLINE";
	o.will_len = 7;
	o.will_qos = 1;
	o.will_retain = true;
	memset(&c, 0, sizeof c);
	if (!loop || wf_bus_new(loop, &o, &callbacks, &c, &c.bus) < 0 || wf_bus_start(c.bus) < 0)
		_exit(2);
	if (!wf_test_run_until(loop, is_connected, &c, 10000))
		_exit(3);
	if (write(wfd, "u", 1) != 1)
		_exit(4);
	raise(SIGKILL);
	_exit(5);
}

START_TEST(test_will_on_kill)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_test_broker *br = broker_start(NULL);
	struct client sub, late;
	int fds[2];

	client_new(&sub, loop, br, "will-sub", NULL);
	sub.watch_topic = WILL_TOPIC;
	ck_assert_int_eq(wf_bus_subscribe(sub.bus, "wf/v1/state/#", 1), 0);
	ck_assert_int_eq(wf_bus_start(sub.bus), 0);
	ck_assert(wf_test_run_until(loop, is_subscribed, &sub, 10000));

	ck_assert_int_eq(pipe(fds), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		will_child(wf_test_broker_port(br), fds[1]);
	}
	close(fds[1]);
	char ch = 0;
	ck_assert_int_eq(read(fds[0], &ch, 1), 1); /* bounded: the child dies either way */
	close(fds[0]);
	int st = 0;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

	ck_assert(wait_count(loop, &sub.watch_hits, 1, 10000));
	ck_assert_str_eq(sub.last_topic, WILL_TOPIC);
	ck_assert_str_eq(sub.last_payload, "OFFLINE");

	/* retained: a later subscriber gets it at once */
	client_new(&late, loop, br, "will-late", NULL);
	late.watch_topic = WILL_TOPIC;
	ck_assert_int_eq(wf_bus_subscribe(late.bus, "wf/v1/state/#", 1), 0);
	ck_assert_int_eq(wf_bus_start(late.bus), 0);
	ck_assert(wait_count(loop, &late.watch_hits, 1, 10000));
	ck_assert(late.last_retained);
	ck_assert_str_eq(late.last_payload, "OFFLINE");

	wf_bus_free(sub.bus);
	wf_bus_free(late.bus);
	wf_test_broker_free(br);
	ev_loop_destroy(loop);
}
END_TEST

struct log_wait {
	struct wf_test_broker *br;
	const char *needle;
};

static bool log_has(void *ud)
{
	struct log_wait *w = ud;
	char *log = wf_test_broker_log(w->br);
	bool found = log && strstr(log, w->needle);
	free(log);
	return found;
}

START_TEST(test_clean_stop_discards_will)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_test_broker *br = broker_start(NULL);
	struct client sub, wc;
	struct wf_bus_options o;

	client_new(&sub, loop, br, "cs-sub", NULL);
	sub.watch_topic = "wf/v1/state/cs/will";
	ck_assert_int_eq(wf_bus_subscribe(sub.bus, "wf/v1/state/cs/#", 1), 0);
	ck_assert_int_eq(wf_bus_start(sub.bus), 0);
	ck_assert(wf_test_run_until(loop, is_subscribed, &sub, 10000));

	wf_bus_options_init(&o);
	o.will_topic = "wf/v1/state/cs/will";
	o.will_payload = "OFFLINE";
	o.will_len = 7;
	client_new(&wc, loop, br, "cs-willclient", &o);
	ck_assert_int_eq(wf_bus_start(wc.bus), 0);
	ck_assert(wf_test_run_until(loop, is_connected, &wc, 10000));
	ck_assert_int_eq(wf_bus_stop(wc.bus), 0);
	/* the broker has processed the DISCONNECT once it logs it */
	struct log_wait lw = { br, "Client cs-willclient disconnected." };
	ck_assert(wf_test_run_until(loop, log_has, &lw, 10000));

	/* a marker sent afterwards arrives; the will never does */
	struct client pub;
	client_new(&pub, loop, br, "cs-pub", NULL);
	ck_assert_int_eq(wf_bus_start(pub.bus), 0);
	ck_assert(wf_test_run_until(loop, is_connected, &pub, 10000));
	ck_assert_int_eq(wf_bus_publish(pub.bus, "wf/v1/state/cs/marker", "m", 1, 1, false, NULL), 0);
	ck_assert(wait_count(loop, &sub.msgs, 1, 10000));
	ck_assert_str_eq(sub.last_topic, "wf/v1/state/cs/marker");
	ck_assert_int_eq(sub.watch_hits, 0);

	wf_bus_free(wc.bus);
	wf_bus_free(pub.bus);
	wf_bus_free(sub.bus);
	wf_test_broker_free(br);
	ev_loop_destroy(loop);
}
END_TEST

static bool is_idle(void *ud)
{
	return wf_bus_get_state(((struct client *)ud)->bus) == WF_BUS_STATE_IDLE;
}

START_TEST(test_stop_from_callback)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_test_broker *br = broker_start(NULL);
	struct client sub, pub;

	client_new(&sub, loop, br, "cb-sub", NULL);
	client_new(&pub, loop, br, "cb-pub", NULL);
	sub.stop_on_message = true;
	sub.stop_rc = 1;
	ck_assert_int_eq(wf_bus_subscribe(sub.bus, "wf/v1/cb/#", 1), 0);
	ck_assert_int_eq(wf_bus_start(sub.bus), 0);
	ck_assert_int_eq(wf_bus_start(pub.bus), 0);
	ck_assert(wf_test_run_until(loop, is_subscribed, &sub, 10000));
	ck_assert(wf_test_run_until(loop, is_connected, &pub, 10000));
	ck_assert_int_eq(wf_bus_publish(pub.bus, "wf/v1/cb/a", "x", 1, 1, false, NULL), 0);
	ck_assert(wait_count(loop, &sub.msgs, 1, 10000));
	ck_assert_int_eq(sub.stop_rc, 0);
	/* the DISCONNECT queued inside the callback goes out afterwards */
	ck_assert(wf_test_run_until(loop, is_idle, &sub, 10000));
	struct log_wait lw = { br, "Client cb-sub disconnected." };
	ck_assert(wf_test_run_until(loop, log_has, &lw, 10000));
	ck_assert_int_eq(sub.downs, 0);
	/* and it starts again */
	ck_assert_int_eq(wf_bus_start(sub.bus), 0);
	ck_assert(wf_test_run_until(loop, is_subscribed, &sub, 10000));
	ck_assert_int_eq(sub.ups, 2);

	wf_bus_free(sub.bus);
	wf_bus_free(pub.bus);
	wf_test_broker_free(br);
	ev_loop_destroy(loop);
}
END_TEST

int main(void)
{
	/* Every broker directory goes under one private TMPDIR that this
	 * (parent) process removes, even when a forked test failed. */
	char *tmp = wf_test_mkdtemp("itest-bus");
	if (!tmp || setenv("TMPDIR", tmp, 1) < 0) {
		fprintf(stderr, "cannot make a temp directory\n");
		return EXIT_FAILURE;
	}
	Suite *s = suite_create("bus");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_options_and_local_errors);
	tcase_add_test(tc, test_roundtrip_qos1);
	tcase_add_test(tc, test_persistent_session);
	tcase_add_test(tc, test_reconnect_after_broker_restart);
	tcase_add_test(tc, test_acl_refused_publish);
	tcase_add_test(tc, test_bad_credentials_backoff);
	tcase_add_test(tc, test_will_on_kill);
	tcase_add_test(tc, test_clean_stop_discards_will);
	tcase_add_test(tc, test_stop_from_callback);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	wf_test_rmtree(tmp);
	free(tmp);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
