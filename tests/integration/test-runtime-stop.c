/* Integration: SIGTERM ends a service on the runtime skeleton even when a
 * watcher of the service is still armed after its stop callback (found by
 * tests/chaos: wf-dispatch hung at SIGTERM because the batch that the
 * node's stop runs re-armed its deadline timer, an hour away). The probe
 * with [probe] linger = true arms a one-hour timer in its stop callback;
 * it must still exit 0, with its OFFLINE state published. */
#include <check.h>
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "proc.h"
#include "wf/bus.h"
#include "wf/codec.h"

struct seen {
	struct wf_bus *bus;
	int online, offline;
};

static void on_msg(void *ud, const char *topic, const void *p, size_t len, bool retained)
{
	struct seen *s = ud;
	(void)topic;
	(void)retained;
	Wf__V1__ServiceState *st = wf__v1__service_state__unpack(NULL, len, p);
	if (!st)
		return;
	if (st->status == WF__V1__SERVICE_STATUS__SERVICE_ONLINE)
		s->online++;
	else if (st->status == WF__V1__SERVICE_STATUS__SERVICE_OFFLINE)
		s->offline++;
	wf__v1__service_state__free_unpacked(st, NULL);
}

static bool is_online(void *ud) { return ((struct seen *)ud)->online > 0; }
static bool is_offline(void *ud) { return ((struct seen *)ud)->offline > 0; }

START_TEST(test_sigterm_with_a_lingering_timer)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_test_broker *br = NULL;
	ck_assert_int_eq(wf_test_broker_start(NULL, &br), 0);
	char *dir = wf_test_mkdtemp("runtime-stop");
	ck_assert_ptr_nonnull(dir);
	char conf[512], log[512], text[1024];
	snprintf(conf, sizeof conf, "%s/probe.conf", dir);
	snprintf(log, sizeof log, "%s/probe.log", dir);
	snprintf(text, sizeof text,
		 "[service]\nid = wf-probe-stop\nstate_dir = %s/state\nheartbeat = 1s\n"
		 "[mqtt]\nhost = 127.0.0.1\nport = %d\n[probe]\nlinger = true\n",
		 dir, wf_test_broker_port(br));
	FILE *f = fopen(conf, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);

	struct seen s = { 0 };
	struct wf_bus_options o;
	struct wf_bus_callbacks cb = { .on_message = on_msg };
	wf_bus_options_init(&o);
	o.port = wf_test_broker_port(br);
	o.client_id = "runtime-stop-watch";
	ck_assert_int_eq(wf_bus_new(loop, &o, &cb, &s, &s.bus), 0);
	ck_assert_int_eq(wf_bus_subscribe(s.bus, "wf/v1/state/wf-probe-stop", 1), 0);
	ck_assert_int_eq(wf_bus_start(s.bus), 0);

	char *exe = wf_test_build_path("tests/wf-runtime-probe");
	char *argv[] = { exe, (char *)"--config", conf, NULL };
	pid_t pid = wf_test_spawn(argv, NULL, log);
	ck_assert_int_gt(pid, 0);
	ck_assert_msg(wf_test_run_until(loop, is_online, &s, 10000), "no ONLINE (log %s)", log);
	/* 10 s: the quit grace is 5 s, the timer an hour */
	int st = wf_test_stop(pid, SIGTERM, 10000);
	ck_assert_msg(st == 0, "exit %d at SIGTERM (137: it hung and was killed; log %s)", st, log);
	ck_assert(wf_test_run_until(loop, is_offline, &s, 5000));

	wf_bus_free(s.bus);
	free(exe);
	wf_test_broker_free(br);
	if (getenv("WF_TEST_KEEP") == NULL)
		wf_test_rmtree(dir);
	free(dir);
	ev_loop_destroy(loop);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("runtime-stop");
	TCase *tc = tcase_create("stop");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_sigterm_with_a_lingering_timer);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
