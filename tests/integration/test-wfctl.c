/* Integration: wfctl against a real broker with the shipped ACL and
 * password file (deploy/mosquitto/acl) and the real wf-dispatch process
 * (docs/wfctl.md). A fusion stand-in (user wf-fusion-1, a wf_node) emits
 * warnings and consumes events.
 *
 *   - approve as itself: accepted (exit 0, "counted 1 of 1"); claiming
 *     another operator's name: refused by the broker (exit 1); a broker
 *     user who is not an operator of the routing file: refused by the
 *     dispatcher, with its reason (exit 3), as is a superseded version;
 *   - a duty console acks and files a follow-up as itself; an ack for
 *     another station is refused by the broker;
 *   - list / show (text and --json) from the retained release records:
 *     review state, acks, rules and events, the audit trail;
 *   - cancel (解除) by a non-operator: refused with feedback (exit 3); by an
 *     operator: the broadcast state loses it, a CAP Cancel is written, the
 *     record says who and when; after kill -9 and a restart a second
 *     cancel changes nothing and fusion's next version is held for review;
 *   - silence add / list, then a warning on that channel is silenced;
 *   - inject of N exercise events: each received exactly once by the
 *     consumer; a bad file sends nothing and names path:line;
 *   - stats figures match what was sent; audit lists refusals and who;
 *   - state online, then OFFLINE once the dispatcher stopped (exit 1);
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
#include "wf/bus.h"
#include "wf/clock.h"
#include "wf/codec.h"
#include "wf/node.h"

static const struct wf_test_broker_user users[] = {
	{ "wf-dispatch-1", "pw-dispatch" }, { "wf-fusion-1", "pw-fusion" },
	{ "op-zhang", "pw-zhang" },         { "op-li", "pw-li" },
	{ "op-wang", "pw-wang" },           { "duty-410185", "pw-duty" },
	{ "wfctl", "pw-wfctl" },            { "wfctl-inject", "pw-inject" },
};
#define N_USERS (sizeof users / sizeof users[0])
#define W1 "wf-t-rain-1"
#define W2 "wf-t-fog-2"
#define W3 "wf-t-fog-3"
#define N_INJECT 25

static char dir[512], exe[600], port[16], pw[N_USERS][600];

/* ---- the fusion stand-in: emits warnings, consumes events ---- */

struct fusion {
	struct wf_node *node;
	int events, exercise;
	char ids[64][32];
	int distinct;
	int dup_seq;
	uint64_t seqs[64];
};

static int fusion_event(void *ud, struct wf_txn *t, const Wf__V1__Event *ev,
			const struct wf_node_msg *m, struct wf_codec_error *why)
{
	struct fusion *f = ud;
	f->events++;
	if (ev->status == WF__V1__STATUS__STATUS_EXERCISE)
		f->exercise++;
	bool seen = false;
	for (int i = 0; i < f->distinct; i++)
		seen = seen || strcmp(f->ids[i], ev->id) == 0;
	if (!seen && f->distinct < 64)
		snprintf(f->ids[f->distinct++], sizeof f->ids[0], "%s", ev->id);
	for (int i = 0; i < f->events - 1 && i < 64; i++)
		if (f->seqs[i] == m->seq)
			f->dup_seq++;
	if (f->events <= 64)
		f->seqs[f->events - 1] = m->seq;
	return 0;
}

struct wspec {
	struct wf_node *node;
	const char *id;
	uint32_t version;
	Wf__V1__Level level;
	Wf__V1__Hazard hazard;
	Wf__V1__MsgType type;
};

static int emit_warning(struct wf_txn *t, void *ud)
{
	const struct wspec *s = ud;
	static char *regions[] = { "410185001000" };
	static char *events[] = { "met:m-1", "water:w-7" };
	static char *rules[] = { "rain-direct" };
	static char ref[160];
	static char *refs[] = { ref };
	int64_t now = wf_clock_now_ms(NULL);
	Wf__V1__Warning w = WF__V1__WARNING__INIT;
	w.id = (char *)s->id;
	w.version = s->version;
	w.msg_type = s->type;
	w.hazard = s->hazard;
	w.level = s->level;
	w.regions = regions;
	w.n_regions = 1;
	w.expires_ms = now + 6 * 3600 * 1000LL;
	w.headline = "登封市气象台发布预警";
	w.event_ids = events;
	w.n_event_ids = 2;
	w.rule_ids = rules;
	w.n_rule_ids = 1;
	w.status = WF__V1__STATUS__STATUS_ACTUAL;
	w.review = WF__V1__REVIEW_STATE__REVIEW_PENDING;
	w.sent_ms = now;
	if (s->type != WF__V1__MSG_TYPE__MSG_TYPE_ALERT) {
		snprintf(ref, sizeof ref, "%s@%u", s->id, s->version - 1);
		w.references = refs;
		w.n_references = 1;
	}
	return wf_node_emit_warning(s->node, t, &w, NULL);
}

static bool n_ready(void *ud) { return wf_node_ready(ud); }
static bool n_drained(void *ud) { return wf_node_pending(ud) == 0; }

static void warn(struct ev_loop *loop, struct wf_node *n, const char *id, uint32_t version,
		 Wf__V1__Level level, Wf__V1__Hazard hz, Wf__V1__MsgType type)
{
	struct wspec s = { n, id, version, level, hz, type };
	ck_assert_int_eq(wf_node_update(n, emit_warning, &s), 0);
	ck_assert_msg(wf_test_run_until(loop, n_drained, n, 20000), "%s@%u not acked", id, version);
}

/* ---- a watcher: the dispatcher's liveness and the county's broadcast state ---- */

struct watch {
	struct wf_bus *bus;
	int online;
	int states;
	bool has_w1;
};

static void w_msg(void *ud, const char *topic, const void *p, size_t len, bool retained)
{
	struct watch *w = ud;
	if (strcmp(topic, "wf/v1/state/wf-dispatch-1") == 0 && len > 0) {
		Wf__V1__ServiceState *st = wf__v1__service_state__unpack(NULL, len, p);
		if (st && st->status == WF__V1__SERVICE_STATUS__SERVICE_ONLINE)
			w->online++;
		if (st)
			wf__v1__service_state__free_unpacked(st, NULL);
	} else if (strncmp(topic, "wf/v1/broadcast/", 16) == 0 && len > 0) {
		Wf__V1__BroadcastState *b = wf__v1__broadcast_state__unpack(NULL, len, p);
		ck_assert_ptr_nonnull(b);
		w->states++;
		w->has_w1 = false;
		for (size_t i = 0; i < b->n_active; i++)
			w->has_w1 = w->has_w1 || strcmp(b->active[i]->warning_id, W1) == 0;
		wf__v1__broadcast_state__free_unpacked(b, NULL);
	}
}

static bool w_ready(void *ud) { return wf_bus_subscribed(((struct watch *)ud)->bus); }
static bool w_online(void *ud) { return ((struct watch *)ud)->online > 0; }
static bool w_has_w1(void *ud) { return ((struct watch *)ud)->has_w1; }
static bool w_lost_w1(void *ud) { return ((struct watch *)ud)->states > 0 && !((struct watch *)ud)->has_w1; }

/* ---- running wfctl ---- */

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

static int user_index(const char *name)
{
	for (size_t i = 0; i < N_USERS; i++)
		if (strcmp(users[i].name, name) == 0)
			return (int)i;
	ck_abort_msg("no user %s", name);
	return -1;
}

/* Runs `wfctl ARGS... --username USER --password-file ... --port ...`
 * while the test's loop keeps running (the fusion stand-in must ack);
 * returns the exit status and the output (stdout and stderr) in *OUT. */
static int wfctl(struct ev_loop *loop, const char *user, char **out, const char *const *args)
{
	static int runs;
	char log[700], *argv[48];
	size_t n = 0;
	int u = user_index(user);
	snprintf(log, sizeof log, "%s/run-%d.log", dir, ++runs);
	argv[n++] = exe;
	for (size_t i = 0; args[i] && n < 36; i++)
		argv[n++] = (char *)args[i];
	argv[n++] = "--username";
	argv[n++] = (char *)user;
	argv[n++] = "--password-file";
	argv[n++] = pw[u];
	argv[n++] = "--port";
	argv[n++] = port;
	argv[n] = NULL;
	struct child c = { wf_test_spawn(argv, NULL, log), -1 };
	ck_assert_int_gt(c.pid, 0);
	ck_assert_msg(wf_test_run_until(loop, child_done, &c, 60000), "wfctl %s did not end", args[0]);
	char *text = read_text(log);
	if (getenv("WF_TEST_VERBOSE")) /* every command and what it printed */
		fprintf(stderr, "$ wfctl %s %s (as %s): exit %d\n%s\n", args[0],
			args[1] ? args[1] : "", user, c.status, text);
	if (out)
		*out = text;
	else
		free(text);
	return c.status;
}

#define WFCTL(loop, user, out, ...) wfctl(loop, user, out, (const char *const[]){ __VA_ARGS__, NULL })

/* Runs a read command until its output contains every NEEDLE (the views
 * are published right after the commit that changed them), at most 40
 * times; returns the last output. */
static char *until(struct ev_loop *loop, const char *user, const char *const *args,
		   const char *const *needles)
{
	char *out = NULL;
	for (int i = 0; i < 40; i++) {
		free(out);
		int st = wfctl(loop, user, &out, args);
		bool all = st == 0;
		for (size_t k = 0; all && needles[k]; k++)
			all = strstr(out, needles[k]) != NULL;
		if (all)
			return out;
		wf_test_run_for(loop, 100);
	}
	ck_abort_msg("wfctl %s: never showed %s:\n%s", args[0], needles[0], out);
	return out;
}

#define UNTIL(loop, user, args, ...) until(loop, user, args, (const char *const[]){ __VA_ARGS__, NULL })

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	ck_assert_int_eq(chmod(path, mode), 0);
}

static pid_t spawn_dispatch(const char *conf, const char *log)
{
	char *d = wf_test_build_path("services/dispatch/wf-dispatch");
	char *argv[] = { d, "--config", (char *)conf, NULL };
	pid_t pid = wf_test_spawn(argv, NULL, log);
	ck_assert_int_gt(pid, 0);
	free(d);
	return pid;
}

static bool file_exists(void *ud)
{
	struct stat st;
	return stat(ud, &st) == 0;
}

START_TEST(test_wfctl_with_the_dispatcher)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_test_broker_options bo;
	struct wf_test_broker *br = NULL;
	char *aclpath = wf_test_source_path("deploy/mosquitto/acl");
	char *acl = read_text(aclpath);
	char *tmp = wf_test_mkdtemp("wfctl");
	char path[800], conf[700], routes[700], dlog[700], text[8192], *out = NULL;
	const char *regions = getenv("WF_REGIONS");

	snprintf(dir, sizeof dir, "%s", tmp);
	char *e = wf_test_build_path("services/wfctl/wfctl");
	snprintf(exe, sizeof exe, "%s", e);
	free(e);
	wf_test_broker_options_init(&bo);
	bo.users = users;
	bo.n_users = N_USERS;
	bo.acl = acl;
	ck_assert_int_eq(wf_test_broker_start(&bo, &br), 0);
	snprintf(port, sizeof port, "%d", wf_test_broker_port(br));
	for (size_t i = 0; i < N_USERS; i++) {
		snprintf(pw[i], sizeof pw[i], "%s/%s.pw", dir, users[i].name);
		snprintf(text, sizeof text, "%s\n", users[i].password);
		write_file(pw[i], text, 0600);
	}

	/* the dispatcher: op-wang is a broker user but not an operator */
	snprintf(routes, sizeof routes, "%s/routes.conf", dir);
	write_file(routes, "[station duty-410185]\nregion = 410185\n"
			   "[operator op-zhang]\n[operator op-li]\n"
			   "[route all]\nchannels = duty, broadcast, cap\n", 0644);
	snprintf(conf, sizeof conf, "%s/dispatch.conf", dir);
	snprintf(text, sizeof text,
		 "[dispatch]\nroutes = %s\n[policy]\nreview_timeout_III = 0\n"
		 "[cap]\nspool_dir = %s/cap\n"
		 "[service]\nid = wf-dispatch-1\nstate_dir = %s/state\nregions = %s\nheartbeat = 1s\n"
		 "[mqtt]\nport = %d\nusername = wf-dispatch-1\npassword_file = %s\n",
		 routes, dir, dir, regions ? regions : "", wf_test_broker_port(br),
		 pw[user_index("wf-dispatch-1")]);
	write_file(conf, text, 0644);
	snprintf(dlog, sizeof dlog, "%s/dispatch.log", dir);

	struct watch w = { 0 };
	struct wf_bus_options wo;
	struct wf_bus_callbacks wcb = { .on_message = w_msg };
	wf_bus_options_init(&wo);
	wo.port = wf_test_broker_port(br);
	wo.client_id = "test-watch";
	wo.username = "wfctl";
	wo.password = "pw-wfctl";
	ck_assert_int_eq(wf_bus_new(loop, &wo, &wcb, &w, &w.bus), 0);
	wf_bus_subscribe(w.bus, "wf/v1/state/wf-dispatch-1", 1);
	wf_bus_subscribe(w.bus, "wf/v1/broadcast/41/4101/410185", 1);
	ck_assert_int_eq(wf_bus_start(w.bus), 0);
	ck_assert(wf_test_run_until(loop, w_ready, &w, 10000));
	pid_t dpid = spawn_dispatch(conf, dlog);
	ck_assert_msg(wf_test_run_until(loop, w_online, &w, 20000), "wf-dispatch did not come up");

	struct fusion fu = { 0 };
	struct wf_node_options o;
	struct wf_node_callbacks fcb = { .on_event = fusion_event };
	const char *inputs[] = { "wf/v1/event/#" };
	snprintf(path, sizeof path, "%s/fusion", dir);
	wf_node_options_init(&o);
	o.service = "wf-fusion-1";
	o.kind = "fusion";
	o.state_dir = path;
	o.nosync = true;
	o.bus.port = wf_test_broker_port(br);
	o.bus.username = "wf-fusion-1";
	o.bus.password = "pw-fusion";
	o.resend_ms = 500;
	o.inputs = inputs;
	o.n_inputs = 1;
	ck_assert_int_eq(wf_node_new(loop, &o, &fcb, &fu, &fu.node), 0);
	ck_assert_int_eq(wf_node_start(fu.node), 0);
	ck_assert(wf_test_run_until(loop, n_ready, fu.node, 10000));

	/* W1 (III: one approval), W2 (IV: released at once) */
	warn(loop, fu.node, W1, 1, WF__V1__LEVEL__LEVEL_III, WF__V1__HAZARD__HAZARD_RAINSTORM,
	     WF__V1__MSG_TYPE__MSG_TYPE_ALERT);
	warn(loop, fu.node, W2, 1, WF__V1__LEVEL__LEVEL_IV, WF__V1__HAZARD__HAZARD_FOG,
	     WF__V1__MSG_TYPE__MSG_TYPE_ALERT);

	/* approve: as itself accepted; as another refused by the broker; by a
	 * broker user who is no operator refused by the dispatcher */
	int st = WFCTL(loop, "op-zhang", &out, "approve", W1 "@1", "--state", "s-zhang", "--timeout", "20");
	ck_assert_msg(st == 0 && strstr(out, "counted 1 of 1"), "exit %d: %s", st, out);
	free(out);
	st = WFCTL(loop, "op-zhang", &out, "approve", W1 "@1", "--operator", "op-li", "--state",
		   "s-forged", "--timeout", "3");
	ck_assert_msg(st == 1 && strstr(out, "no acknowledgement"), "exit %d: %s", st, out);
	free(out);
	st = WFCTL(loop, "op-wang", &out, "approve", W1 "@1", "--state", "s-wang", "--timeout", "20");
	ck_assert_msg(st == 3 && strstr(out, "refused by the dispatcher: not an operator"),
		      "exit %d: %s", st, out);
	free(out);
	ck_assert_msg(wf_test_run_until(loop, w_has_w1, &w, 10000), "W1 not in the broadcast state");

	/* a duty console: its own ack and follow-up; not another station's */
	st = WFCTL(loop, "duty-410185", &out, "ack", "duty-410185", W1 "@1", "--operator", "王五",
		   "--state", "s-duty", "--timeout", "20");
	ck_assert_msg(st == 0, "exit %d: %s", st, out);
	free(out);
	st = WFCTL(loop, "duty-410185", &out, "followup", "duty-410185", W1, "颍河水位回落。",
		   "--state", "s-duty", "--timeout", "20");
	ck_assert_msg(st == 0, "exit %d: %s", st, out);
	free(out);
	st = WFCTL(loop, "duty-410185", &out, "ack", "duty-410186", W1 "@1", "--state", "s-duty2",
		   "--timeout", "3");
	ck_assert_int_eq(st, 1);
	free(out);

	/* list and show, text and JSON */
	const char *list_args[] = { "list", NULL };
	out = UNTIL(loop, "wfctl", list_args, W1, "RELEASED", "1/1", W2, "AUTO");
	free(out);
	const char *listj[] = { "list", "--json", NULL };
	out = UNTIL(loop, "wfctl", listj, "{\"record\":{\"warning_id\":\"" W1 "\"", "\"acks\":1");
	free(out);
	const char *show_args[] = { "show", W1, NULL };
	out = UNTIL(loop, "wfctl", show_args, "rain-direct", "met:m-1", "water:w-7", "approve",
		    "op-zhang", "accepted: counted 1 of 1", "REFUSED: not an operator", "duty-410185",
		    "acked");
	free(out);
	st = WFCTL(loop, "wfctl", &out, "show", "no-such-warning");
	ck_assert_msg(st == 4, "exit %d: %s", st, out);
	free(out);

	/* cancel: a non-operator is refused with the reason; an operator's
	 * goes out to the public */
	st = WFCTL(loop, "op-wang", &out, "cancel", W1, "--reason", "想撤", "--state", "s-wang",
		   "--timeout", "20");
	ck_assert_msg(st == 3 && strstr(out, "not an operator"), "exit %d: %s", st, out);
	free(out);
	st = WFCTL(loop, "op-li", &out, "cancel", W1, "--reason", "误报：雨量站故障", "--state", "s-li",
		   "--timeout", "20");
	ck_assert_msg(st == 0 && strstr(out, "cancel of " W1 "@1") && strstr(out, "cancelled"),
		      "exit %d: %s", st, out);
	free(out);
	ck_assert_msg(wf_test_run_until(loop, w_lost_w1, &w, 10000), "W1 still broadcast");
	snprintf(path, sizeof path, "%s/cap/" W1 ".v1.cancel.xml", dir);
	ck_assert_msg(wf_test_run_until(loop, file_exists, path, 10000), "no %s", path);
	char *xml = read_text(path);
	ck_assert_ptr_nonnull(strstr(xml, "<msgType>Cancel</msgType>"));
	ck_assert_ptr_nonnull(strstr(xml, "<identifier>" W1 ".v1.cancel</identifier>"));
	free(xml);
	char cmd[2048];
	char *xsd = wf_test_source_path("services/met/schema/CAP-v1.2.xsd");
	snprintf(cmd, sizeof cmd, "xmllint --noout --schema '%s' '%s' 2>/dev/null", xsd, path);
	ck_assert_msg(system(cmd) == 0, "the CAP Cancel does not validate: %s", cmd);
	free(xsd);
	const char *showj[] = { "show", W1, "--json", NULL };
	out = UNTIL(loop, "wfctl", showj, "\"cancelled\":true", "\"cancelled_by\":\"op-li\"",
		    "\"cancelled_ms\":", "\"action\":\"cancel\"");
	free(out);

	/* kill -9 and restart: the cancel survives, a second one changes
	 * nothing, fusion's next version waits for review */
	ck_assert_int_eq(kill(dpid, SIGKILL), 0);
	ck_assert_int_eq(wf_test_wait(dpid, 10000), 128 + SIGKILL);
	w.online = 0;
	dpid = spawn_dispatch(conf, dlog);
	ck_assert_msg(wf_test_run_until(loop, w_online, &w, 20000), "wf-dispatch did not come back");
	st = WFCTL(loop, "op-zhang", &out, "cancel", W1 "@1", "--reason", "再次", "--state",
		   "s-zhang", "--timeout", "20");
	ck_assert_msg(st == 0 && strstr(out, "already cancelled by op-li"), "exit %d: %s", st, out);
	free(out);
	warn(loop, fu.node, W1, 2, WF__V1__LEVEL__LEVEL_IV, WF__V1__HAZARD__HAZARD_RAINSTORM,
	     WF__V1__MSG_TYPE__MSG_TYPE_UPDATE);
	out = UNTIL(loop, "wfctl", showj, "\"latest\":2", "\"review\":\"REVIEW_PENDING\"");
	free(out);
	/* a decision on a superseded version: refused, with the reason */
	st = WFCTL(loop, "op-zhang", &out, "approve", W1 "@1", "--state", "s-zhang", "--timeout", "20");
	ck_assert_msg(st == 3 && strstr(out, "superseded"), "exit %d: %s", st, out);
	free(out);
	snprintf(path, sizeof path, "%s/cap/" W1 ".v2.xml", dir);
	ck_assert(!file_exists(path));

	/* silence the CAP channel for the county; a warning there is silenced */
	st = WFCTL(loop, "op-zhang", &out, "silence", "add", "--channel", "cap", "--region", "410185",
		   "--expires", "1h", "--reason", "CAP平台维护", "--id", "sil-cap-1", "--state",
		   "s-zhang", "--timeout", "20");
	ck_assert_msg(st == 0 && strstr(out, "silence in force"), "exit %d: %s", st, out);
	free(out);
	const char *sil_args[] = { "silence", "list", NULL };
	out = UNTIL(loop, "wfctl", sil_args, "sil-cap-1", "op-zhang", "CAP平台维护");
	free(out);
	warn(loop, fu.node, W3, 1, WF__V1__LEVEL__LEVEL_IV, WF__V1__HAZARD__HAZARD_FOG,
	     WF__V1__MSG_TYPE__MSG_TYPE_ALERT);
	const char *show3[] = { "show", W3, "--json", NULL };
	out = UNTIL(loop, "wfctl", show3,
		    "\"channel\":\"cap\",\"target\":\"*\",\"state\":\"silenced\"");
	free(out);
	snprintf(path, sizeof path, "%s/cap/" W3 ".v1.xml", dir);
	ck_assert(!file_exists(path));

	/* inject: N exercise events, each applied once by the consumer */
	snprintf(path, sizeof path, "%s/drill.jsonl", dir);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("# 演练: 嵩阳街道暴雨\n", f);
	for (int i = 0; i < N_INJECT; i++)
		fprintf(f, "{\"id\":\"drill-%d\",\"agency\":\"AGENCY_MET\",\"hazard\":\"HAZARD_RAINSTORM\","
			   "\"region\":\"410185001000\",\"level\":\"LEVEL_IV\",\"observed_ms\":%lld,"
			   "\"expires_ms\":%lld,\"status\":\"STATUS_EXERCISE\",\"msg_type\":"
			   "\"MSG_TYPE_ALERT\"}\n",
			i, 1752969600000LL + i * 60000LL, 1752969600000LL + i * 60000LL + 3600000LL);
	fclose(f);
	st = WFCTL(loop, "wfctl-inject", &out, "inject", path, "--rebase", "--state", "s-inject",
		   "--timeout", "30");
	ck_assert_msg(st == 0 && strstr(out, "inject: 25/25 sent, 25 acknowledged"), "exit %d: %s",
		      st, out);
	free(out);
	wf_test_run_for(loop, 300); /* a duplicate would show here (acked = applied) */
	ck_assert_int_eq(fu.events, N_INJECT);
	ck_assert_int_eq(fu.distinct, N_INJECT);
	ck_assert_int_eq(fu.exercise, N_INJECT);
	ck_assert_int_eq(fu.dup_seq, 0);
	snprintf(path, sizeof path, "%s/bad.jsonl", dir);
	write_file(path,
		   "{\"id\":\"ok-1\",\"agency\":\"AGENCY_MET\",\"hazard\":\"HAZARD_FOG\",\"region\":"
		   "\"410185001000\",\"observed_ms\":1752969600000,\"expires_ms\":1752973200000,"
		   "\"status\":\"STATUS_EXERCISE\",\"msg_type\":\"MSG_TYPE_ALERT\"}\n"
		   "{\"id\":\"broken\",\n"
		   "{\"id\":\"real-1\",\"agency\":\"AGENCY_MET\",\"hazard\":\"HAZARD_FOG\",\"region\":"
		   "\"410185001000\",\"observed_ms\":1752969600000,\"expires_ms\":1752973200000,"
		   "\"status\":\"STATUS_ACTUAL\",\"msg_type\":\"MSG_TYPE_ALERT\"}\n",
		   0644);
	st = WFCTL(loop, "wfctl-inject", &out, "inject", path, "--rebase", "--state", "s-inject",
		   "--timeout", "10");
	ck_assert_msg(st == 2 && strstr(out, "bad.jsonl:2:") && strstr(out, "bad.jsonl:3:") &&
			      strstr(out, "nothing sent"),
		      "exit %d: %s", st, out);
	free(out);
	wf_test_run_for(loop, 200);
	ck_assert_int_eq(fu.events, N_INJECT);

	/* stats: W1 v1, W2, W1 v2, W3 received; W1 v1, W2, W3 released; one
	 * cancel; one first acknowledgement; W3's CAP silenced */
	const char *statsj[] = { "stats", "--json", NULL };
	out = UNTIL(loop, "wfctl", statsj, "\"versions\":4,\"released\":3,\"cancelled\":1",
		    "\"ack_latency\":{\"count\":1", "{\"name\":\"silenced\",\"n\":1}");
	free(out);
	const char *stats_t[] = { "stats", NULL };
	out = UNTIL(loop, "wfctl", stats_t, "versions received 4, released 3", "MET");
	free(out);

	/* audit: who did what, refusals included */
	const char *audit_args[] = { "audit", "--operator", "op-wang", NULL };
	out = UNTIL(loop, "wfctl", audit_args, "approve  op-wang", "cancel   op-wang", "REFUSED");
	ck_assert_ptr_null(strstr(out, "op-li"));
	free(out);
	const char *audit_all[] = { "audit", NULL };
	out = UNTIL(loop, "wfctl", audit_all, "cancel   op-li", "silence  op-zhang",
		    "approve  op-zhang");
	free(out);

	/* state: the dispatcher online; OFFLINE once stopped */
	st = WFCTL(loop, "op-zhang", &out, "state");
	ck_assert_msg(st == 0 && strstr(out, "wf-dispatch-1"), "exit %d: %s", st, out);
	free(out);
	ck_assert_int_eq(wf_test_stop(dpid, SIGTERM, 10000), 0);
	st = WFCTL(loop, "op-zhang", &out, "state");
	ck_assert_msg(st == 1 && strstr(out, "OFFLINE"), "exit %d: %s", st, out);
	free(out);

	/* a password file others can read is refused before connecting */
	ck_assert_int_eq(chmod(pw[user_index("op-zhang")], 0644), 0);
	st = WFCTL(loop, "op-zhang", &out, "list");
	ck_assert_msg(st == 2 && strstr(out, "readable by others"), "exit %d: %s", st, out);
	free(out);

	if (getenv("WF_TEST_KEEP")) {
		char *l = read_text(dlog);
		fputs(l, stderr);
		free(l);
	}
	wf_node_free(fu.node);
	wf_bus_free(w.bus);
	wf_test_broker_free(br);
	wf_test_rmtree(dir);
	free(tmp);
	free(acl);
	free(aclpath);
	ev_loop_destroy(loop);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("wfctl");
	TCase *tc = tcase_create("acl");
	tcase_set_timeout(tc, 280);
	tcase_add_test(tc, test_wfctl_with_the_dispatcher);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
