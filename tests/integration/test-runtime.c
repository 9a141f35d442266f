/* The daemon skeleton (services/runtime) as a real process: command line
 * and config errors, then a live run against a private mosquitto: birth,
 * events applied and acked, a rejected one dead-lettered, SIGHUP with a
 * broken file keeps running, SIGTERM exits 0 and leaves the OFFLINE state. */
#include <check.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker.h"
#include "wf/bus.h"
#include "wf/codec.h"
#include "wf/node.h"

extern char **environ;

static char probe[1024];

static void probe_path(void)
{
	const char *b = getenv("WF_BUILD_ROOT");
	snprintf(probe, sizeof probe, "%s/tests/wf-runtime-probe", b ? b : ".");
}

/* Runs the probe with ARGS, stdout+stderr into OUT (size OUTSIZE); returns
 * the exit status (or 128 + signal). */
static int run(const char *const *args, char *out, size_t outsize)
{
	char path[] = "/tmp/wf-rt-out-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fd, 1);
	posix_spawn_file_actions_adddup2(&fa, fd, 2);
	char *argv[16];
	int n = 0;
	argv[n++] = probe;
	for (; args[n - 1] != NULL && n < 15; n++)
		argv[n] = (char *)args[n - 1];
	argv[n] = NULL;
	pid_t pid;
	ck_assert_int_eq(posix_spawn(&pid, probe, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ssize_t len = pread(fd, out, outsize - 1, 0);
	out[len > 0 ? len : 0] = '\0';
	close(fd);
	unlink(path);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

START_TEST(test_command_line)
{
	char out[8192], conf[512];
	char *dir = wf_test_mkdtemp("rt-cli");

	ck_assert_int_eq(run((const char *[]){ "--help", NULL }, out, sizeof out), 0);
	ck_assert_ptr_nonnull(strstr(out, "wf-runtime-probe"));
	ck_assert_int_eq(run((const char *[]){ "--bogus", NULL }, out, sizeof out), 2);

	snprintf(conf, sizeof conf, "%s/bad.conf", dir);
	write_file(conf, "[service]\nid = wf-probe-1\n[mqtt]\nport = many\n");
	ck_assert_int_eq(run((const char *[]){ "--config", conf, "--check-config", NULL }, out,
			     sizeof out), 2);
	ck_assert_msg(strstr(out, "bad.conf:4:") != NULL, "%s", out);

	snprintf(conf, sizeof conf, "%s/good.conf", dir);
	write_file(conf, "[service]\nid = wf-probe-1\nstate_dir = /tmp/x\n");
	ck_assert_int_eq(run((const char *[]){ "--config", conf, "--check-config", NULL }, out,
			     sizeof out), 0);
	ck_assert_ptr_nonnull(strstr(out, "OK"));

	/* an id the topic tree cannot carry */
	write_file(conf, "[service]\nid = wf/probe\nstate_dir = /tmp/x\n");
	ck_assert_int_eq(run((const char *[]){ "--config", conf, NULL }, out, sizeof out), 2);
	ck_assert_ptr_nonnull(strstr(out, "service.id"));

	/* --print-config output loads back */
	ck_assert_int_eq(run((const char *[]){ "--print-config", NULL }, out, sizeof out), 0);
	ck_assert_ptr_nonnull(strstr(out, "[mqtt]"));
	ck_assert_ptr_nonnull(strstr(out, "reject_id"));
	wf_test_rmtree(dir);
	free(dir);
}
END_TEST

/* ---- live ---- */

struct watch {
	struct wf_bus *bus;
	int online, offline, deadletters;
};

static void w_msg(void *ud, const char *topic, const void *p, size_t len, bool retained)
{
	struct watch *w = ud;
	if (strcmp(topic, "wf/v1/state/wf-probe-1") == 0 && len > 0) {
		Wf__V1__ServiceState *st = wf__v1__service_state__unpack(NULL, len, p);
		if (st) {
			if (st->status == WF__V1__SERVICE_STATUS__SERVICE_ONLINE)
				w->online++;
			else
				w->offline++;
			wf__v1__service_state__free_unpacked(st, NULL);
		}
	} else if (strcmp(topic, "wf/v1/deadletter/wf-probe-1") == 0) {
		w->deadletters++;
	}
}

static bool w_ready(void *ud) { return wf_bus_subscribed(((struct watch *)ud)->bus); }
static bool w_online(void *ud) { return ((struct watch *)ud)->online > 0; }
static bool w_offline(void *ud) { return ((struct watch *)ud)->offline > 0; }
static bool w_dl(void *ud) { return ((struct watch *)ud)->deadletters > 0; }
struct beats {
	struct watch *w;
	int target;
};
static bool w_beats(void *ud)
{
	struct beats *b = ud;
	return b->w->online >= b->target;
}
static bool p_ready(void *ud) { return wf_node_ready(ud); }
static bool p_drained(void *ud) { return wf_node_pending(ud) == 0; }

struct child {
	pid_t pid;
	int status;
	bool done;
};
static bool c_exited(void *ud)
{
	struct child *c = ud;
	if (!c->done && waitpid(c->pid, &c->status, WNOHANG) == c->pid)
		c->done = true;
	return c->done;
}

static int emit3(struct wf_txn *t, void *ud)
{
	struct wf_node *n = ud;
	int64_t now = wf_clock_now_ms(NULL);
	const char *ids[] = { "met:a", "met:b", "met:bad" };

	for (int i = 0; i < 3; i++) {
		Wf__V1__Event ev = WF__V1__EVENT__INIT;
		ev.id = (char *)ids[i];
		ev.agency = WF__V1__AGENCY__AGENCY_MET;
		ev.hazard = WF__V1__HAZARD__HAZARD_RAINSTORM;
		ev.region = "410102000000";
		ev.level = WF__V1__LEVEL__LEVEL_IV;
		ev.observed_ms = now;
		ev.expires_ms = now + 3600000;
		ev.status = WF__V1__STATUS__STATUS_ACTUAL;
		ev.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_ALERT;
		int r = wf_node_emit_event(n, t, &ev, NULL);
		if (r < 0)
			return r;
	}
	return 0;
}

START_TEST(test_live)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_test_broker *br = NULL;
	ck_assert_int_eq(wf_test_broker_start(NULL, &br), 0);
	char *dir = wf_test_mkdtemp("rt-live");
	char conf[512], text[2048], log[512], pdir[512];
	const char *regions = getenv("WF_REGIONS");

	snprintf(conf, sizeof conf, "%s/probe.conf", dir);
	snprintf(log, sizeof log, "%s/probe.log", dir);
	snprintf(pdir, sizeof pdir, "%s/producer", dir);
	snprintf(text, sizeof text,
		 "[probe]\nreject_id = met:bad\n[service]\nid = wf-probe-1\nstate_dir = %s/state\n"
		 "regions = %s\nheartbeat = 1s\n[mqtt]\nport = %d\n",
		 dir, regions ? regions : "", wf_test_broker_port(br));
	write_file(conf, text);

	struct watch w = { 0 };
	struct wf_bus_options bo;
	struct wf_bus_callbacks bcb = { .on_message = w_msg };
	wf_bus_options_init(&bo);
	bo.port = wf_test_broker_port(br);
	bo.client_id = "rt-watch";
	ck_assert_int_eq(wf_bus_new(loop, &bo, &bcb, &w, &w.bus), 0);
	wf_bus_subscribe(w.bus, "wf/v1/state/wf-probe-1", 1);
	wf_bus_subscribe(w.bus, "wf/v1/deadletter/wf-probe-1", 1);
	wf_bus_start(w.bus);
	ck_assert(wf_test_run_until(loop, w_ready, &w, 10000));

	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fd, 2);
	char *argv[] = { probe, "--config", conf, NULL };
	struct child c = { 0 };
	ck_assert_int_eq(posix_spawn(&c.pid, probe, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(fd);
	ck_assert(wf_test_run_until(loop, w_online, &w, 10000));

	/* a producer's three events: two applied, one rejected; all acked */
	struct wf_node_options no;
	struct wf_node *p = NULL;
	wf_node_options_init(&no);
	no.service = "wf-met-1";
	no.kind = "met";
	no.agency = WF__V1__AGENCY__AGENCY_MET;
	no.state_dir = pdir;
	no.bus.port = wf_test_broker_port(br);
	no.resend_ms = 300;
	ck_assert_int_eq(wf_node_new(loop, &no, NULL, NULL, &p), 0);
	ck_assert_int_eq(wf_node_start(p), 0);
	ck_assert(wf_test_run_until(loop, p_ready, p, 10000));
	ck_assert_int_eq(wf_node_update(p, emit3, p), 0);
	ck_assert(wf_test_run_until(loop, p_drained, p, 10000));
	ck_assert(wf_test_run_until(loop, w_dl, &w, 10000));
	ck_assert_int_eq(w.deadletters, 1);

	/* SIGHUP with a broken file: still running, the old config stays */
	write_file(conf, "[mqtt]\nport = x\n");
	ck_assert_int_eq(kill(c.pid, SIGHUP), 0);
	/* two more heartbeats (1 s each) prove it kept running */
	struct beats b = { &w, w.online + 2 };
	ck_assert(wf_test_run_until(loop, w_beats, &b, 10000));
	ck_assert(!c_exited(&c));

	/* SIGTERM: exit 0, OFFLINE published (not the will: a clean stop) */
	ck_assert_int_eq(kill(c.pid, SIGTERM), 0);
	ck_assert(wf_test_run_until(loop, c_exited, &c, 10000));
	ck_assert(WIFEXITED(c.status));
	ck_assert_int_eq(WEXITSTATUS(c.status), 0);
	ck_assert(wf_test_run_until(loop, w_offline, &w, 10000));

	char buf[8192];
	FILE *f = fopen(log, "r");
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	ck_assert_msg(strstr(buf, "reload failed") != NULL, "%s", buf);
	ck_assert_msg(strstr(buf, "probe.conf:2:") != NULL, "%s", buf);
	ck_assert_msg(strstr(buf, "dead-lettered") != NULL, "%s", buf);

	wf_node_free(p);
	wf_bus_free(w.bus);
	wf_test_broker_free(br);
	wf_test_rmtree(dir);
	free(dir);
	ev_loop_destroy(loop);
}
END_TEST

int main(void)
{
	probe_path();
	char *tmp = wf_test_mkdtemp("itest-runtime");
	if (!tmp || setenv("TMPDIR", tmp, 1) < 0)
		return EXIT_FAILURE;
	Suite *s = suite_create("runtime");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_command_line);
	tcase_add_test(tc, test_live);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	wf_test_rmtree(tmp);
	free(tmp);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
