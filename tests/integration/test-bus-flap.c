/* Integration: the bus's reconnect backoff when the broker restarts again
 * and again (tests/chaos found clients waiting reconnect_max, 30 s, after a
 * run of short connections). Each restart here leaves the bus connected for
 * well under the 5 s that resets the backoff; after the last one the bus
 * must be connected again within a few seconds, not after reconnect_max. */
#include <check.h>
#include <ev.h>
#include <stdlib.h>

#include "broker.h"
#include "wf/bus.h"

#define FLAPS 12

struct conn {
	int ups, downs;
};

static void on_conn(void *ud, bool up, int reason)
{
	struct conn *c = ud;
	(void)reason;
	if (up)
		c->ups++;
	else
		c->downs++;
}

struct up_wait {
	struct conn *c;
	int want;
};

static bool ups_reached(void *ud)
{
	struct up_wait *w = ud;
	return w->c->ups >= w->want;
}

START_TEST(test_reconnect_after_many_restarts)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_test_broker *br = NULL;
	struct wf_bus *bus = NULL;
	struct wf_bus_options o;
	struct wf_bus_callbacks cb = { .on_connection = on_conn };
	struct conn c = { 0 };

	ck_assert_int_eq(wf_test_broker_start(NULL, &br), 0);
	wf_bus_options_init(&o);
	o.port = wf_test_broker_port(br);
	o.client_id = "flap-test";
	ck_assert_int_eq(wf_bus_new(loop, &o, &cb, &c, &bus), 0);
	ck_assert_int_eq(wf_bus_start(bus), 0);
	for (int i = 1; i <= FLAPS; i++) {
		struct up_wait w = { &c, i };
		/* 0.1 s doubling, capped: the i-th reconnect is due within
		 * 0.1 * 2^3 * 1.25 s once the cap holds; without it, after 8
		 * short connections it is due after 25-30 s */
		ck_assert_msg(wf_test_run_until(loop, ups_reached, &w, 5000),
			      "restart %d: not reconnected within 5 s (%d ups, %d downs)", i - 1,
			      c.ups, c.downs);
		ck_assert_int_eq(wf_test_broker_kill(br), 0);
		ck_assert_int_eq(wf_test_broker_restart(br), 0);
	}
	struct up_wait w = { &c, FLAPS + 1 };
	ck_assert_msg(wf_test_run_until(loop, ups_reached, &w, 5000),
		      "not reconnected within 5 s after %d restarts (%d ups, %d downs)", FLAPS, c.ups,
		      c.downs);
	ck_assert_int_ge(c.downs, FLAPS);
	wf_bus_free(bus);
	wf_test_broker_free(br);
	ev_loop_destroy(loop);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("bus-flap");
	TCase *tc = tcase_create("flap");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_reconnect_after_many_restarts);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
