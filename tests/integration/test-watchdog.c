/* Integration: systemd's watchdog restarts a service whose loop blocks,
 * with this test standing in for systemd (systemd is not PID 1 here).
 *
 * The test owns a unix datagram socket (NOTIFY_SOCKET, with SO_PASSCRED so
 * every datagram carries its sender's pid, as systemd reads it) and starts
 * the real wf-fusion daemon on a private mosquitto with WATCHDOG_USEC set,
 * as a unit with Type=notify and WatchdogSec= would. It asserts READY=1,
 * then WATCHDOG=1 pings at least every WatchdogSec while the loop turns.
 * Then the loop is blocked (SIGSTOP: the ping is an ev_timer in the loop,
 * services/runtime passes no `healthy` callback, so nothing but a turning
 * loop sends it): the supervisor sees the deadline pass without a ping,
 * kills the process (SIGABRT, SIGKILL if it still runs, as systemd does;
 * a stopped process takes only SIGKILL), starts it again, and the new
 * process is READY and pinging. SIGTERM then gives STOPPING=1 and exit 0. */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "proc.h"

/* WatchdogSec: long enough for a sanitizer build to ping in time (the
 * daemon pings every half of it). */
#define WATCHDOG_MS (2000 * wf_test_time_factor())

static int sock = -1;
static char *tmp;
static char sockpath[256];

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What the supervisor knows about its service. */
struct unit {
	pid_t pid;
	bool ready, stopping;
	int pings;
	int64_t last_ping;   /* mono ms of the latest WATCHDOG=1 (or READY=1) */
	int64_t worst_gap;   /* longest wait between two pings while healthy */
	int foreign;         /* datagrams from another pid */
};

/* Reads datagrams for up to WAIT_MS; returns after the first one. */
static void pump(struct unit *u, int wait_ms)
{
	struct pollfd p = { .fd = sock, .events = POLLIN };
	if (poll(&p, 1, wait_ms) <= 0)
		return;
	for (;;) {
		char buf[4096];
		union {
			struct cmsghdr h;
			char space[CMSG_SPACE(sizeof(struct ucred))];
		} ctl;
		struct iovec iov = { buf, sizeof buf - 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl,
				     .msg_controllen = sizeof ctl };
		ssize_t n = recvmsg(sock, &mh, MSG_DONTWAIT);
		if (n < 0)
			return;
		buf[n] = '\0';
		pid_t from = 0;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
				struct ucred cr;
				memcpy(&cr, CMSG_DATA(c), sizeof cr);
				from = cr.pid;
			}
		if (from != u->pid) {
			u->foreign++;
			continue;
		}
		int64_t now = mono_ms();
		for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l;
		     l = strtok_r(NULL, "\n", &save)) {
			if (strcmp(l, "READY=1") == 0) {
				u->ready = true;
				u->last_ping = now;
			} else if (strcmp(l, "WATCHDOG=1") == 0) {
				if (u->ready && now - u->last_ping > u->worst_gap)
					u->worst_gap = now - u->last_ping;
				u->pings++;
				u->last_ping = now;
			} else if (strcmp(l, "STOPPING=1") == 0) {
				u->stopping = true;
			}
		}
	}
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_ge(fputs(text, f), 0);
	ck_assert_int_eq(fclose(f), 0);
}

static pid_t start_unit(struct unit *u, const char *conf, const char *log)
{
	char *exe = wf_test_build_path("services/fusion/wf-fusion");
	char env_sock[300], env_usec[64];
	char *argv[] = { exe, (char *)"--config", (char *)conf, NULL };
	char *env[] = { env_sock, env_usec, NULL };
	snprintf(env_sock, sizeof env_sock, "NOTIFY_SOCKET=%s", sockpath);
	snprintf(env_usec, sizeof env_usec, "WATCHDOG_USEC=%lld", (long long)WATCHDOG_MS * 1000);
	memset(u, 0, sizeof *u);
	u->pid = wf_test_spawn(argv, env, log);
	ck_assert_int_gt(u->pid, 0);
	free(exe);
	return u->pid;
}

/* Waits (bounded) for READY=1 and N more pings. */
static void await_ready_and_pings(struct unit *u, int n, const char *log)
{
	int64_t deadline = mono_ms() + 20000 * wf_test_time_factor();
	while (!(u->ready && u->pings >= n) && mono_ms() < deadline)
		pump(u, 100);
	ck_assert_msg(u->ready, "no READY=1 from pid %d (log %s)", (int)u->pid, log);
	ck_assert_msg(u->pings >= n, "%d WATCHDOG=1 pings, wanted %d (log %s)", u->pings, n, log);
}

START_TEST(test_watchdog_restarts_blocked_loop)
{
	struct wf_test_broker *br = NULL;
	ck_assert_int_eq(wf_test_broker_start(NULL, &br), 0);
	char conf[512], log[512], text[2048];
	char *rules = wf_test_source_path("deploy/fusion-rules.conf");
	snprintf(conf, sizeof conf, "%s/fusion.conf", tmp);
	snprintf(log, sizeof log, "%s/fusion.log", tmp);
	snprintf(text, sizeof text,
		 "[service]\nid = wf-fusion-wd\nstate_dir = %s/state\nheartbeat = 1s\n"
		 "[mqtt]\nhost = 127.0.0.1\nport = %d\n[fusion]\nrules = %s\n",
		 tmp, wf_test_broker_port(br), rules);
	write_file(conf, text);
	free(rules);

	struct unit u;
	start_unit(&u, conf, log);
	await_ready_and_pings(&u, 4, log);
	ck_assert_msg(u.worst_gap <= WATCHDOG_MS, "a %lld ms gap between pings (WatchdogSec %d ms)",
		      (long long)u.worst_gap, WATCHDOG_MS);
	ck_assert_int_eq(u.foreign, 0);

	/* block the loop; the supervisor must see the deadline pass */
	pid_t first = u.pid;
	ck_assert_int_eq(kill(first, SIGSTOP), 0);
	int64_t stopped_at = mono_ms(), last = u.last_ping;
	bool missed = false;
	int64_t give_up = stopped_at + 10 * WATCHDOG_MS;
	while (!missed && mono_ms() < give_up) {
		pump(&u, 50);
		missed = mono_ms() - u.last_ping > WATCHDOG_MS;
	}
	int64_t detected_at = mono_ms();
	ck_assert_msg(missed, "pings went on while the loop was blocked");
	ck_assert_int_le(detected_at - u.last_ping, WATCHDOG_MS + 1000);
	/* the miss is found within WatchdogSec of the last ping (plus our own
	 * polling step), and no ping came after the stop */
	ck_assert_int_eq(u.last_ping, last);
	ck_assert_int_le(u.last_ping, stopped_at);

	/* what systemd does: WatchdogSignal (SIGABRT), then SIGKILL */
	kill(first, SIGABRT);
	int st = wf_test_stop(first, SIGKILL, 5000);
	ck_assert_msg(st == 128 + SIGKILL || st == 128 + SIGABRT, "exit %d", st);

	/* Restart=on-watchdog: a new process, READY and pinging again */
	start_unit(&u, conf, log);
	ck_assert_int_ne(u.pid, first);
	await_ready_and_pings(&u, 3, log);
	ck_assert_int_le(u.worst_gap, WATCHDOG_MS);

	ck_assert_int_eq(wf_test_stop(u.pid, SIGTERM, 10000), 0);
	pump(&u, 200);
	ck_assert(u.stopping);
	wf_test_broker_free(br);
}
END_TEST

static void setup(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int on = 1;

	unsetenv("WATCHDOG_PID"); /* ours would make the child's watchdog off */
	tmp = wf_test_mkdtemp("watchdog");
	ck_assert_ptr_nonnull(tmp);
	snprintf(sockpath, sizeof sockpath, "%s/notify", tmp);
	ck_assert_uint_lt(strlen(sockpath), sizeof sa.sun_path);
	memcpy(sa.sun_path, sockpath, strlen(sockpath) + 1);
	sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(sock, 0);
	ck_assert_int_eq(bind(sock, (struct sockaddr *)&sa, sizeof sa), 0);
	ck_assert_int_eq(setsockopt(sock, SOL_SOCKET, SO_PASSCRED, &on, sizeof on), 0);
}

static void teardown(void)
{
	close(sock);
	if (getenv("WF_TEST_KEEP") == NULL)
		wf_test_rmtree(tmp);
	free(tmp);
}

int main(void)
{
	Suite *s = suite_create("watchdog");
	TCase *tc = tcase_create("watchdog");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_watchdog_restarts_blocked_loop);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
