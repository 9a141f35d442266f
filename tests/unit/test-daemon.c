/* Unit tests for common/src/daemon.c: a fake NOTIFY_SOCKET receives what
 * the daemon sends; every wait is an ev loop run with a deadline timer. */
#include <check.h>
#include <errno.h>
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "wf/daemon.h"

#define MAX_MSGS 256

static char tmpdir[64];
static char sockpath[100];
static int sock = -1;
static struct ev_loop *loop;
static ev_io sock_watcher;

static char msgs[MAX_MSGS][600];
static int nmsgs;
static int n_ready, n_watchdog, n_stopping, n_reloading;

static int stop_calls, last_signo, reload_calls, reload_result, healthy_calls;
static bool healthy_flag = true;
static const char *reload_msg;

/* the condition that ends ev_run; checked after every event */
static bool (*goal)(void);
static bool timed_out;

static void check_goal(void)
{
	if (goal && goal())
		ev_break(loop, EVBREAK_ALL);
}

static void drain(void)
{
	for (int i = 0; i < 1000; i++) {
		char buf[600];
		ssize_t n = recv(sock, buf, sizeof buf - 1, MSG_DONTWAIT);
		if (n < 0)
			break;
		buf[n] = '\0';
		ck_assert_int_lt(nmsgs, MAX_MSGS);
		memcpy(msgs[nmsgs++], buf, (size_t)n + 1);
		if (strstr(buf, "READY=1"))
			n_ready++;
		if (strcmp(buf, "WATCHDOG=1") == 0)
			n_watchdog++;
		if (strcmp(buf, "STOPPING=1") == 0)
			n_stopping++;
		if (strncmp(buf, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0)
			n_reloading++;
	}
}

static void on_sock(struct ev_loop *l, ev_io *w, int revents)
{
	drain();
	check_goal();
}

static void on_deadline(struct ev_loop *l, ev_timer *w, int revents)
{
	timed_out = true;
	ev_break(l, EVBREAK_ALL);
}

static double deadline_seconds(void)
{
	if (getenv("WF_UNDER_VALGRIND"))
		return 50.0;
	if (getenv("WF_UNDER_SANITIZER"))
		return 15.0;
	return 5.0;
}

/* Runs the loop until PRED holds; false on deadline. */
static bool run_until(bool (*pred)(void))
{
	ev_timer deadline;
	goal = pred;
	timed_out = false;
	drain();
	if (pred())
		return true;
	ev_timer_init(&deadline, on_deadline, deadline_seconds(), 0.);
	ev_timer_start(loop, &deadline);
	ev_run(loop, 0);
	ev_timer_stop(loop, &deadline);
	goal = NULL;
	drain();
	return !timed_out && pred();
}

static void setup(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char pid[32];

	snprintf(tmpdir, sizeof tmpdir, "/tmp/wf-test-daemon-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(sockpath, sizeof sockpath, "%s/notify", tmpdir);
	sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	ck_assert_int_ge(sock, 0);
	ck_assert_uint_lt(strlen(sockpath), sizeof sa.sun_path);
	memcpy(sa.sun_path, sockpath, strlen(sockpath) + 1);
	ck_assert_int_eq(bind(sock, (struct sockaddr *)&sa, sizeof sa), 0);
	ck_assert_int_eq(setenv("NOTIFY_SOCKET", sockpath, 1), 0);
	ck_assert_int_eq(setenv("WATCHDOG_USEC", "200000", 1), 0);
	snprintf(pid, sizeof pid, "%d", (int)getpid());
	ck_assert_int_eq(setenv("WATCHDOG_PID", pid, 1), 0);

	loop = ev_default_loop(0);
	ck_assert_ptr_nonnull(loop);
	ev_io_init(&sock_watcher, on_sock, sock, EV_READ);
	ev_io_start(loop, &sock_watcher);

	nmsgs = n_ready = n_watchdog = n_stopping = n_reloading = 0;
	stop_calls = last_signo = reload_calls = reload_result = healthy_calls = 0;
	healthy_flag = true;
	reload_msg = NULL;
}

static void teardown(void)
{
	ev_io_stop(loop, &sock_watcher);
	close(sock);
	unlink(sockpath);
	rmdir(tmpdir);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

static void cb_stop(struct wf_daemon *d, void *ud, int signo)
{
	ck_assert_ptr_eq(ud, &stop_calls);
	stop_calls++;
	last_signo = signo;
	check_goal();
}

static int cb_reload(struct wf_daemon *d, void *ud, char *msg, size_t msglen)
{
	ck_assert_ptr_nonnull(msg);
	ck_assert_int_eq(msg[0], '\0');
	ck_assert_uint_gt(msglen, 64);
	reload_calls++;
	if (reload_msg)
		snprintf(msg, msglen, "%s", reload_msg);
	check_goal();
	return reload_result;
}

static bool cb_healthy(struct wf_daemon *d, void *ud)
{
	healthy_calls++;
	check_goal();
	return healthy_flag;
}

static const struct wf_daemon_callbacks callbacks = {
	.stop = cb_stop,
	.reload = cb_reload,
	.healthy = cb_healthy,
};

static int find_msg(const char *text)
{
	for (int i = 0; i < nmsgs; i++)
		if (strcmp(msgs[i], text) == 0)
			return i;
	return -1;
}

static bool three_watchdogs(void) { return n_watchdog >= 3; }
static bool one_stopping(void) { return n_stopping >= 1; }

START_TEST(test_ready_watchdog_stopping)
{
	struct wf_daemon *d = NULL;
	ck_assert_int_eq(wf_daemon_new(loop, &callbacks, &stop_calls, &d), 0);
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(wf_daemon_watchdog_usec(d), 200000);

	ck_assert_int_eq(wf_daemon_ready(d, "Running: 3 feeds"), 0);
	ck_assert(run_until(three_watchdogs));
	ck_assert_str_eq(msgs[0], "READY=1\nSTATUS=Running: 3 feeds");
	ck_assert_int_ge(healthy_calls, 3);

	ck_assert_int_eq(wf_daemon_status(d, "processed %d events\nREADY=0", 42), 0);
	ck_assert_int_eq(wf_daemon_stopping(d), 0);
	ck_assert(run_until(one_stopping));
	ck_assert_int_ge(find_msg("STATUS=processed 42 events READY=0"), 0);
	ck_assert_int_ge(find_msg("STOPPING=1"), 0);
	ck_assert_int_eq(n_ready, 1);
	ck_assert_int_eq(wf_daemon_notify(d, "EXTEND_TIMEOUT_USEC=1000000"), 0);
	ck_assert_int_eq(wf_daemon_ready(d, NULL), 0);
	drain();
	ck_assert_int_ge(find_msg("EXTEND_TIMEOUT_USEC=1000000"), 0);
	ck_assert_int_ge(find_msg("READY=1"), 0);
	ck_assert_ptr_null(wf_daemon_free(d));
	ck_assert_ptr_null(wf_daemon_free(NULL));
}
END_TEST

static bool reloaded_once(void) { return reload_calls >= 1 && n_ready >= 1; }
static int target;
static bool reloads_reach_target(void) { return reload_calls >= target && n_ready >= target; }
static bool watchdogs_reach_target(void) { return n_watchdog >= target; }
static bool stopped_once(void) { return stop_calls >= 1 && n_stopping >= 1; }
static bool stopped_twice(void) { return stop_calls >= 2 && n_stopping >= 2; }

START_TEST(test_signals)
{
	struct wf_daemon *d = NULL;
	ck_assert_int_eq(wf_daemon_new(loop, &callbacks, &stop_calls, &d), 0);

	ck_assert_int_eq(raise(SIGHUP), 0);
	ck_assert(run_until(reloaded_once));
	ck_assert_int_eq(reload_calls, 1);
	ck_assert_int_eq(stop_calls, 0);
	ck_assert_int_eq(n_reloading, 1);
	int rl = -1, rd = -1;
	for (int i = 0; i < nmsgs; i++) {
		if (strncmp(msgs[i], "RELOADING=1", 11) == 0)
			rl = i;
		if (strcmp(msgs[i], "READY=1\nSTATUS=Configuration reloaded") == 0)
			rd = i;
	}
	ck_assert_int_ge(rl, 0);
	ck_assert_int_gt(rd, rl);

	ck_assert_int_eq(raise(SIGTERM), 0);
	ck_assert(run_until(stopped_once));
	ck_assert_int_eq(last_signo, SIGTERM);

	ck_assert_int_eq(raise(SIGINT), 0);
	ck_assert(run_until(stopped_twice));
	ck_assert_int_eq(last_signo, SIGINT);
	ck_assert_int_eq(reload_calls, 1);

	/* SIGPIPE is ignored while the daemon exists, restored afterwards */
	struct sigaction sa;
	ck_assert_int_eq(sigaction(SIGPIPE, NULL, &sa), 0);
	ck_assert(sa.sa_handler == SIG_IGN);
	ck_assert_int_eq(raise(SIGPIPE), 0);
	d = wf_daemon_free(d);
	ck_assert_int_eq(sigaction(SIGPIPE, NULL, &sa), 0);
	ck_assert(sa.sa_handler == SIG_DFL);
}
END_TEST

START_TEST(test_reload_failure_keeps_running)
{
	struct wf_daemon *d = NULL;
	ck_assert_int_eq(wf_daemon_new(loop, &callbacks, &stop_calls, &d), 0);

	reload_result = -EINVAL;
	reload_msg = "/etc/warnfuse/fusion.conf:3: unknown key 'prot' in [mqtt]\n(did you mean 'port'?)";
	ck_assert_int_eq(raise(SIGHUP), 0);
	ck_assert(run_until(reloaded_once));
	ck_assert_int_ge(find_msg("READY=1\nSTATUS=Reload failed, keeping previous configuration: "
				  "/etc/warnfuse/fusion.conf:3: unknown key 'prot' in [mqtt] "
				  "(did you mean 'port'?)"), 0);

	/* the service goes on: the watchdog keeps being petted */
	target = n_watchdog + 2;
	ck_assert(run_until(watchdogs_reach_target));

	/* without a message the errno text is used */
	reload_result = -ENOENT;
	reload_msg = NULL;
	ck_assert_int_eq(wf_daemon_reload(d), -ENOENT);
	drain();
	ck_assert_int_ge(find_msg("READY=1\nSTATUS=Reload failed, keeping previous configuration: "
				  "No such file or directory"), 0);
	ck_assert_int_eq(reload_calls, 2);

	/* and a later good reload works */
	reload_result = 0;
	reload_msg = "Reloaded: 12 rules";
	ck_assert_int_eq(raise(SIGHUP), 0);
	target = 3;
	ck_assert(run_until(reloads_reach_target));
	ck_assert_int_ge(find_msg("READY=1\nSTATUS=Reloaded: 12 rules"), 0);
	ck_assert_int_eq(n_reloading, 3);
	ck_assert_int_eq(stop_calls, 0);
	d = wf_daemon_free(d);
}
END_TEST

static bool four_health_checks(void) { return healthy_calls >= 4; }
static bool two_watchdogs(void) { return n_watchdog >= 2; }

START_TEST(test_unhealthy_stops_watchdog)
{
	struct wf_daemon *d = NULL;
	ck_assert_int_eq(wf_daemon_new(loop, &callbacks, &stop_calls, &d), 0);
	healthy_flag = false;
	ck_assert(run_until(four_health_checks));
	drain();
	ck_assert_int_eq(n_watchdog, 0);

	healthy_flag = true;
	ck_assert(run_until(two_watchdogs));
	ck_assert_int_ge(healthy_calls, 6);
	d = wf_daemon_free(d);
}
END_TEST

START_TEST(test_no_notify_socket)
{
	struct wf_daemon *d = NULL;
	ck_assert_int_eq(unsetenv("NOTIFY_SOCKET"), 0);
	ck_assert_int_eq(unsetenv("WATCHDOG_USEC"), 0);
	ck_assert_int_eq(wf_daemon_new(loop, NULL, NULL, &d), 0);
	ck_assert_uint_eq(wf_daemon_watchdog_usec(d), 0);
	ck_assert_int_eq(wf_daemon_ready(d, "x"), 0);
	ck_assert_int_eq(wf_daemon_status(d, "%s", "y"), 0);
	ck_assert_int_eq(wf_daemon_reloading(d), 0);
	ck_assert_int_eq(wf_daemon_stopping(d), 0);
	ck_assert_int_eq(wf_daemon_reload(d), -EOPNOTSUPP);
	drain();
	ck_assert_int_eq(nmsgs, 0);
	d = wf_daemon_free(d);

	/* watchdog meant for another process: off */
	ck_assert_int_eq(setenv("WATCHDOG_USEC", "200000", 1), 0);
	ck_assert_int_eq(setenv("WATCHDOG_PID", "1", 1), 0);
	ck_assert_int_eq(wf_daemon_new(loop, NULL, NULL, &d), 0);
	ck_assert_uint_eq(wf_daemon_watchdog_usec(d), 0);
	d = wf_daemon_free(d);

	/* malformed WATCHDOG_USEC is an error, *ret untouched */
	char pid[32];
	snprintf(pid, sizeof pid, "%d", (int)getpid());
	ck_assert_int_eq(setenv("WATCHDOG_PID", pid, 1), 0);
	ck_assert_int_eq(setenv("WATCHDOG_USEC", "soon", 1), 0);
	struct wf_daemon *sentinel = (struct wf_daemon *)&sentinel;
	d = sentinel;
	ck_assert_int_lt(wf_daemon_new(loop, NULL, NULL, &d), 0);
	ck_assert_ptr_eq(d, sentinel);
	ck_assert_int_eq(wf_daemon_new(NULL, NULL, NULL, &d), -EINVAL);
}
END_TEST

static bool never(void) { return false; }

START_TEST(test_default_stop_breaks_loop)
{
	struct wf_daemon *d = NULL;
	ck_assert_int_eq(wf_daemon_new(loop, NULL, NULL, &d), 0);
	ck_assert_int_eq(raise(SIGTERM), 0);
	/* no callback: the daemon breaks the loop itself, long before the deadline */
	ck_assert(!run_until(never));
	ck_assert(!timed_out);
	ck_assert_int_eq(n_stopping, 1);
	/* SIGHUP without a reload callback: status says so, loop goes on */
	ck_assert_int_eq(raise(SIGHUP), 0);
	ck_assert(run_until(two_watchdogs));
	ck_assert_int_ge(find_msg("READY=1\nSTATUS=Reload not supported, configuration unchanged"), 0);
	d = wf_daemon_free(d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("daemon");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_ready_watchdog_stopping);
	tcase_add_test(tc, test_signals);
	tcase_add_test(tc, test_reload_failure_keeps_running);
	tcase_add_test(tc, test_unhealthy_stops_watchdog);
	tcase_add_test(tc, test_no_notify_socket);
	tcase_add_test(tc, test_default_stop_breaks_loop);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
