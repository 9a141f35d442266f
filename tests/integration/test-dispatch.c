/* wf-dispatch as a process against a real mosquitto (docs/dispatch.md):
 * a level II warning from a fusion-like producer -> broker -> wf-dispatch
 * -> (a) two township duty consoles: one acknowledges (through its outbox,
 * exactly as a console would), one does not, and the county station
 * receives the escalation for the silent one only; (b) two operators
 * approve (one of them twice), after which a broadcast subscriber that
 * connects afterwards receives the retained county state, and the CAP file
 * in the spool validates with `xmllint --schema` against the OASIS XSD;
 * (c) a broadcast platform that holds its answer to a CAP POST back: the
 * next warning's duty notice goes out meanwhile (the POST runs off the
 * loop), and both files are POSTed once it answers.
 * No sleeps for readiness: every wait polls with a deadline. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <ev.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker.h"
#include "platform.h"
#include "util.h"
#include "wf/bus.h"
#include "wf/clock.h"
#include "wf/codec.h"
#include "wf/node.h"

extern char **environ;

#define WID "410185-rainstorm-it1"

static char exe[1024];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* ---- a watcher on plain bus connections ---- */

struct watch {
	struct wf_bus *bus;
	int online;
	int notices_b, notices_a;      /* township inboxes */
	int released_b, released_county; /* RELEASED notices (after the approvals) */
	/* distinct escalations (station, id@version, deadline: the notice's
	 * identity), as a console counts them: the pending resend after a
	 * (re)connect may send one again */
	int escalations, escalations_wrong;
	char escalated_from[65];
	char esc_seen[8][200];
	int bcast_states, bcast_active;
	char bcast_warning[130];
	bool bcast_retained;
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
		return;
	}
	if (strncmp(topic, "wf/v1/duty/", 11) == 0) {
		Wf__V1__DutyNotice *n = NULL;
		struct wf_topic t;
		ck_assert_int_eq(wf_topic_parse(topic, &t), 0);
		ck_assert_int_eq(wf_codec_duty_notice_unpack(p, len, NULL, wf_clock_now_ms(NULL), &n, NULL),
				 0);
		ck_assert_int_eq(wf_codec_duty_notice_check_topic(n, &t, NULL), 0);
		if (n->kind == WF__V1__NOTICE_KIND__NOTICE_KIND_RELEASED) {
			/* informational: released, nothing to acknowledge */
			ck_assert(!n->pending_review);
			ck_assert_int_eq(n->deadline_ms, 0);
			w->released_b += strcmp(t.id, "duty-twn-b") == 0;
			w->released_county += strcmp(t.id, "duty-410185") == 0;
			wf_codec_duty_notice_free(n);
			return;
		}
		if (strcmp(t.id, "duty-twn-b") == 0)
			w->notices_b++;
		if (strcmp(t.id, "duty-twn-a") == 0)
			w->notices_a++;
		if (strcmp(t.id, "duty-410185") == 0 &&
		    n->kind == WF__V1__NOTICE_KIND__NOTICE_KIND_ESCALATION) {
			char k[200];
			bool seen = false;
			snprintf(k, sizeof k, "%s@%u|%lld", n->warning_id, n->version,
				 (long long)n->deadline_ms);
			for (int i = 0; i < w->escalations && i < 8; i++)
				seen = seen || strcmp(w->esc_seen[i], k) == 0;
			if (seen) {
				wf_codec_duty_notice_free(n);
				return;
			}
			if (w->escalations < 8)
				snprintf(w->esc_seen[w->escalations], sizeof w->esc_seen[0], "%s", k);
			w->escalations++;
			if (strcmp(n->escalated_from, "duty-twn-b") != 0)
				w->escalations_wrong++;
			snprintf(w->escalated_from, sizeof w->escalated_from, "%s", n->escalated_from);
		}
		wf_codec_duty_notice_free(n);
		return;
	}
	if (strncmp(topic, "wf/v1/broadcast/", 16) == 0) {
		Wf__V1__BroadcastState *b = NULL;
		ck_assert_int_eq(
			wf_codec_broadcast_state_unpack(p, len, NULL, wf_clock_now_ms(NULL), &b, NULL), 0);
		w->bcast_states++;
		w->bcast_active = (int)b->n_active;
		w->bcast_retained = retained;
		if (b->n_active > 0)
			snprintf(w->bcast_warning, sizeof w->bcast_warning, "%s@%u",
				 b->active[0]->warning_id, b->active[0]->version);
		wf_codec_broadcast_state_free(b);
	}
}

static void watch_new(struct watch *w, struct ev_loop *loop, struct wf_test_broker *br,
		      const char *id, const char *const *filters, size_t n)
{
	struct wf_bus_options bo;
	struct wf_bus_callbacks bcb = { .on_message = w_msg };
	memset(w, 0, sizeof *w);
	wf_bus_options_init(&bo);
	bo.port = wf_test_broker_port(br);
	bo.client_id = id;
	ck_assert_int_eq(wf_bus_new(loop, &bo, &bcb, w, &w->bus), 0);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(wf_bus_subscribe(w->bus, filters[i], 1), 0);
	ck_assert_int_eq(wf_bus_start(w->bus), 0);
}

static bool w_ready(void *ud) { return wf_bus_subscribed(((struct watch *)ud)->bus); }
static bool w_online(void *ud) { return ((struct watch *)ud)->online > 0; }
static bool w_escalated(void *ud) { return ((struct watch *)ud)->escalations > 0; }
static bool w_notice_b(void *ud) { return ((struct watch *)ud)->notices_b > 0; }
static bool w_bcast(void *ud) { return ((struct watch *)ud)->bcast_active > 0; }

/* ---- the acknowledging console: a node that consumes its inbox ---- */

struct console {
	struct wf_node *node;
	int notices, released;
	uint32_t version;
};

static int console_on_control(void *ud, struct wf_txn *t, enum wf_topic_kind kind,
			      const ProtobufCMessage *msg, const struct wf_node_msg *m,
			      struct wf_codec_error *why)
{
	struct console *c = ud;
	ck_assert_int_eq(kind, WF_TOPIC_DUTY_INBOX);
	const Wf__V1__DutyNotice *n = (const Wf__V1__DutyNotice *)msg;
	ck_assert_str_eq(n->warning_id, WID);
	if (n->kind == WF__V1__NOTICE_KIND__NOTICE_KIND_RELEASED) {
		ck_assert(!n->pending_review); /* the two approvals came */
		c->released++;
		return 0;
	}
	ck_assert(n->pending_review); /* II: two approvals needed, none yet */
	c->version = n->version;
	c->notices++;
	return 0;
}

static int emit_ack(struct wf_txn *t, void *ud)
{
	struct console *c = ud;
	Wf__V1__DutyAck a = WF__V1__DUTY_ACK__INIT;
	a.station = "duty-twn-a";
	a.warning_id = WID;
	a.version = c->version;
	a.operator_ = "李值班";
	a.acked_ms = wf_clock_now_ms(NULL);
	return wf_node_emit_control(c->node, t, WF_TOPIC_DUTY_ACK, &a.base, NULL);
}

static bool c_notice(void *ud) { return ((struct console *)ud)->notices > 0; }
static bool c_released(void *ud) { return ((struct console *)ud)->released > 0; }
static bool w_released(void *ud)
{
	const struct watch *w = ud;
	return w->released_b > 0 && w->released_county > 0;
}
static bool n_ready(void *ud) { return wf_node_ready(ud); }
static bool n_drained(void *ud) { return wf_node_pending(ud) == 0; }

/* ---- producers: fusion's warning, operators' approvals ---- */

static int emit_warning(struct wf_txn *t, void *ud)
{
	static char *regions[] = { "410185001000", "410185002000" };
	int64_t now = wf_clock_now_ms(NULL);
	Wf__V1__Warning w = WF__V1__WARNING__INIT;
	w.id = WID;
	w.version = 1;
	w.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_ALERT;
	w.hazard = WF__V1__HAZARD__HAZARD_RAINSTORM;
	w.level = WF__V1__LEVEL__LEVEL_II;
	w.regions = regions;
	w.n_regions = 2;
	w.expires_ms = now + 6 * 3600 * 1000LL;
	w.headline = "登封市气象台发布暴雨橙色预警";
	w.description = "预计未来3小时嵩阳街道、少林街道降雨量将达50毫米以上。";
	w.status = WF__V1__STATUS__STATUS_ACTUAL;
	w.review = WF__V1__REVIEW_STATE__REVIEW_PENDING;
	w.certainty = WF__V1__CERTAINTY__CERTAINTY_LIKELY;
	w.sent_ms = now;
	return wf_node_emit_warning(ud, t, &w, NULL);
}

static int emit_approvals(struct wf_txn *t, void *ud)
{
	const char *ops[] = { "op-zhang", "op-zhang", "op-li" };
	for (int i = 0; i < 3; i++) {
		Wf__V1__Approval a = WF__V1__APPROVAL__INIT;
		a.operator_ = (char *)ops[i];
		a.warning_id = WID;
		a.version = 1;
		a.decision = WF__V1__DECISION__DECISION_APPROVE;
		a.sent_ms = wf_clock_now_ms(NULL);
		int r = wf_node_emit_control(ud, t, WF_TOPIC_APPROVAL, &a.base, NULL);
		if (r < 0)
			return r;
	}
	return 0;
}

static struct wf_node *producer(struct ev_loop *loop, struct wf_test_broker *br, const char *id,
				const char *kind, const char *dir, const struct wf_node_callbacks *cb,
				void *ud, const char *const *inputs, size_t n_inputs)
{
	struct wf_node_options o;
	struct wf_node *n = NULL;
	wf_node_options_init(&o);
	o.service = id;
	o.kind = kind;
	o.state_dir = dir;
	o.nosync = true;
	o.bus.port = wf_test_broker_port(br);
	o.resend_ms = 500;
	o.inputs = inputs;
	o.n_inputs = n_inputs;
	ck_assert_int_eq(wf_node_new(loop, &o, cb, ud, &n), 0);
	ck_assert_int_eq(wf_node_start(n), 0);
	return n;
}

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

struct file_wait {
	const char *path;
};
static bool file_exists(void *ud)
{
	struct stat st;
	return stat(((struct file_wait *)ud)->path, &st) == 0;
}

static void spawn_dispatch(struct child *ch, const char *conf, const char *log)
{
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fd, 2);
	char *argv[] = { exe, "--config", (char *)conf, NULL };
	memset(ch, 0, sizeof *ch);
	ck_assert_int_eq(posix_spawn(&ch->pid, exe, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(fd);
}

static char *read_log(const char *log)
{
	char *buf = calloc(1, 65536);
	FILE *f = fopen(log, "r");
	ck_assert_ptr_nonnull(f);
	size_t n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* The watcher W (client WATCH_ID, on the dispatcher's state and every duty
 * inbox), wf-dispatch with CONF (stderr to LOG) in *CH, and a fusion-like
 * producer in DIR/fusion, each ready; returns the producer. */
static struct wf_node *start_dispatch(struct ev_loop *loop, struct wf_test_broker *br,
				      const char *dir, const char *conf, const char *log,
				      const char *watch_id, struct watch *w, struct child *ch)
{
	char sub[512];
	const char *filters[] = { "wf/v1/state/wf-dispatch-1", "wf/v1/duty/+/inbox" };
	watch_new(w, loop, br, watch_id, filters, 2);
	ck_assert(wf_test_run_until(loop, w_ready, w, 10000));
	spawn_dispatch(ch, conf, log);
	ck_assert(wf_test_run_until(loop, w_online, w, 10000));
	snprintf(sub, sizeof sub, "%s/fusion", dir);
	struct wf_node *fusion = producer(loop, br, "wf-fusion-1", "fusion", sub, NULL, NULL, NULL, 0);
	ck_assert(wf_test_run_until(loop, n_ready, fusion, 10000));
	return fusion;
}

/* A level-IV fog ALERT, version 1, of ID for REGIONS, sent now, valid 1 h. */
static Wf__V1__Warning fog_iv(char *id, char **regions, size_t n)
{
	int64_t now = wf_clock_now_ms(NULL);
	Wf__V1__Warning w = WF__V1__WARNING__INIT;
	w.id = id;
	w.version = 1;
	w.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_ALERT;
	w.hazard = WF__V1__HAZARD__HAZARD_FOG;
	w.level = WF__V1__LEVEL__LEVEL_IV;
	w.regions = regions;
	w.n_regions = n;
	w.expires_ms = now + 3600 * 1000LL;
	w.status = WF__V1__STATUS__STATUS_ACTUAL;
	w.review = WF__V1__REVIEW_STATE__REVIEW_PENDING;
	w.sent_ms = now;
	return w;
}

static int emit_warning_iv(struct wf_txn *t, void *ud)
{
	static char *regions[] = { "410185001000", "410185002000" };
	Wf__V1__Warning w = fog_iv("410185-fog-it2", regions, 2);
	return wf_node_emit_warning(ud, t, &w, NULL);
}

struct two {
	struct watch *w;
	int a, b;
};
static bool both_notices(void *ud)
{
	struct two *t = ud;
	return t->w->notices_a >= t->a && t->w->notices_b >= t->b;
}

/* kill -9 of wf-dispatch between a notice and its deadline: the restarted
 * process republishes the pending notices (idempotent: same identity) and
 * the broadcast state, escalates once at the committed deadline, and
 * releases nothing again. */
START_TEST(test_dispatch_sigkill)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_test_broker *br = NULL;
	ck_assert_int_eq(wf_test_broker_start(NULL, &br), 0);
	char *dir = wf_test_mkdtemp("dispatch-kill");
	char conf[512], routes[512], text[4096], log1[512], log2[512];
	const char *regions = getenv("WF_REGIONS");
	int deadline_s = 4 * wf_test_time_factor();

	snprintf(routes, sizeof routes, "%s/routes.conf", dir);
	write_file(routes, "[station duty-twn-a]\nregion = 410185001000\n"
			   "[station duty-twn-b]\nregion = 410185002000\n"
			   "[station duty-410185]\nregion = 410185\n"
			   "[route all]\nchannels = duty, broadcast, cap\n");
	snprintf(conf, sizeof conf, "%s/dispatch.conf", dir);
	snprintf(log1, sizeof log1, "%s/dispatch-1.log", dir);
	snprintf(log2, sizeof log2, "%s/dispatch-2.log", dir);
	snprintf(text, sizeof text,
		 "[dispatch]\nroutes = %s\n[duty]\nack_deadline_IV = %ds\n"
		 "[service]\nid = wf-dispatch-1\nstate_dir = %s/state\nregions = %s\nheartbeat = 1s\n"
		 "[mqtt]\nport = %d\n",
		 routes, deadline_s, dir, regions ? regions : "", wf_test_broker_port(br));
	write_file(conf, text);

	struct watch w;
	struct child ch;
	struct wf_node *fusion = start_dispatch(loop, br, dir, conf, log1, "dsp-watch", &w, &ch);
	ck_assert_int_eq(wf_node_update(fusion, emit_warning_iv, fusion), 0);
	ck_assert(wf_test_run_until(loop, n_drained, fusion, 10000));
	struct two t1 = { &w, 1, 1 };
	ck_assert(wf_test_run_until(loop, both_notices, &t1, 10000));
	ck_assert_int_eq(w.escalations, 0);

	ck_assert_int_eq(kill(ch.pid, SIGKILL), 0);
	ck_assert(wf_test_run_until(loop, c_exited, &ch, 10000));
	w.online = 0;
	spawn_dispatch(&ch, conf, log2);
	ck_assert(wf_test_run_until(loop, w_online, &w, 10000));
	/* the pending notices again, after the reconnect */
	struct two t2 = { &w, 2, 2 };
	ck_assert_msg(wf_test_run_until(loop, both_notices, &t2, 10000), "notices not republished");
	/* one escalation to the county at the deadline committed before the kill */
	ck_assert_msg(wf_test_run_until(loop, w_escalated, &w, 10000 + deadline_s * 1000),
		      "no escalation after the restart");
	struct watch term;
	const char *tf[] = { "wf/v1/broadcast/41/4101/410185" };
	watch_new(&term, loop, br, "terminal", tf, 1);
	ck_assert(wf_test_run_until(loop, w_bcast, &term, 10000));
	ck_assert_str_eq(term.bcast_warning, "410185-fog-it2@1");

	ck_assert_int_eq(kill(ch.pid, SIGTERM), 0);
	ck_assert(wf_test_run_until(loop, c_exited, &ch, 10000));
	ck_assert_int_eq(WEXITSTATUS(ch.status), 0);
	ck_assert_int_eq(w.escalations, 1);
	char *l1 = read_log(log1), *l2 = read_log(log2);
	ck_assert_msg(strstr(l1, "410185-fog-it2@1 released") != NULL, "%s", l1);
	ck_assert_msg(strstr(l2, "@1 released (") == NULL, "released again after the restart:\n%s", l2);
	ck_assert_msg(strstr(l2, "missed the deadline") != NULL, "%s", l2);
	free(l1);
	free(l2);
	/* no [cap] spool_dir: the CAP file went to cap/ in the state directory */
	char capdir[600];
	snprintf(capdir, sizeof capdir, "%s/state/cap", dir);
	ck_assert_int_eq(wf_test_dir_count(capdir, ".xml"), 1);

	wf_bus_free(term.bus);
	wf_node_free(fusion);
	wf_bus_free(w.bus);
	wf_test_broker_free(br);
	wf_test_rmtree(dir);
	free(dir);
	ev_loop_destroy(loop);
}
END_TEST

/* DIR/routes.conf holding ROUTES and DIR/dispatch.conf for it: wf-dispatch-1,
 * state in DIR/state, 1 s heartbeats, BR's port; EXTRA (whole sections)
 * before [service], MQTT_EXTRA inside [mqtt]. CONF and LOG (DIR/dispatch.log)
 * get the paths (512 bytes each). */
static void dispatch_files(const char *dir, struct wf_test_broker *br, const char *routes_text,
			   const char *extra, const char *mqtt_extra, char *conf, char *log)
{
	char routes[512], text[4096];
	const char *regions = getenv("WF_REGIONS");

	snprintf(routes, sizeof routes, "%s/routes.conf", dir);
	write_file(routes, routes_text);
	snprintf(conf, 512, "%s/dispatch.conf", dir);
	snprintf(log, 512, "%s/dispatch.log", dir);
	snprintf(text, sizeof text,
		 "[dispatch]\nroutes = %s\n%s"
		 "[service]\nid = wf-dispatch-1\nstate_dir = %s/state\nregions = %s\nheartbeat = 1s\n"
		 "[mqtt]\nport = %d\n%s",
		 routes, extra, dir, regions ? regions : "", wf_test_broker_port(br), mqtt_extra);
	write_file(conf, text);
}

/* N_BURST warnings of one township (distinct ids), committed in one
 * transaction by the fusion-like producer */
#define N_BURST 40
static int emit_burst(struct wf_txn *t, void *ud)
{
	static char *regions[] = { "410185001000" };
	for (int i = 0; i < N_BURST; i++) {
		char id[64];
		snprintf(id, sizeof id, "410185-fog-burst-%02d", i);
		Wf__V1__Warning w = fog_iv(id, regions, 1);
		int r = wf_node_emit_warning(ud, t, &w, NULL);
		if (r < 0)
			return r;
	}
	return 0;
}

static bool burst_notified(void *ud) { return ((struct watch *)ud)->notices_a >= N_BURST; }

/* Whether the dispatcher's log LOG has its second resync after connecting. */
static bool second_resync(void *ud)
{
	char *l = read_log(ud);
	bool yes = strstr(l, "second resync after connecting") != NULL;
	free(l);
	return yes;
}

/* wf-dispatch with one township station and one route to it (MQTT_EXTRA
 * inside [mqtt]), its watcher and a fusion-like producer, running past its
 * second resync (RECONNECT_RESEND_MS after connecting, which sends every
 * unacknowledged notice again) */
struct one_station {
	struct ev_loop *loop;
	struct wf_test_broker *br;
	char *dir;
	char conf[512], log[512];
	struct watch w;
	struct child ch;
	struct wf_node *fusion;
};

static void one_station_start(struct one_station *f, const char *name, const char *mqtt_extra)
{
	f->loop = ev_loop_new(EVFLAG_AUTO);
	f->br = NULL;
	ck_assert_int_eq(wf_test_broker_start(NULL, &f->br), 0);
	f->dir = wf_test_mkdtemp(name);
	dispatch_files(f->dir, f->br, "[station duty-twn-a]\nregion = 410185001000\n"
				      "[route all]\nchannels = duty\n",
		       "", mqtt_extra, f->conf, f->log);
	f->fusion = start_dispatch(f->loop, f->br, f->dir, f->conf, f->log, name, &f->w, &f->ch);
	ck_assert_msg(wf_test_run_until(f->loop, second_resync, f->log, 10000), "no second resync");
}

/* SIGTERM: wf-dispatch exits 0; then everything is freed */
static void one_station_stop(struct one_station *f)
{
	ck_assert_int_eq(kill(f->ch.pid, SIGTERM), 0);
	ck_assert(wf_test_run_until(f->loop, c_exited, &f->ch, 10000));
	ck_assert_int_eq(WEXITSTATUS(f->ch.status), 0);
	wf_node_free(f->fusion);
	wf_bus_free(f->w.bus);
	wf_test_broker_free(f->br);
	wf_test_rmtree(f->dir);
	free(f->dir);
	ev_loop_destroy(f->loop);
}

/* A burst of N_BURST versions to one station: wf-dispatch sends the
 * notices to its inbox in bundles ([mqtt] bundle, default 128), which the
 * console's bus opens into N_BURST notices; with bundle = 1 every notice
 * goes alone. */
static void notices_burst(const char *bundle_line)
{
	struct one_station f;
	one_station_start(&f, "dispatch-burst", bundle_line);
	struct ev_loop *loop = f.loop;
	struct wf_node *fusion = f.fusion;
	struct watch *w = &f.w;
	/* past the second resync: "each once" counts the burst's own notices */
	struct wf_bus_stats before, after;
	wf_bus_get_stats(w->bus, &before);
	ck_assert_int_eq(wf_node_update(fusion, emit_burst, fusion), 0);
	ck_assert(wf_test_run_until(loop, n_drained, fusion, 10000));
	ck_assert_msg(wf_test_run_until(loop, burst_notified, w, 10000), "%d of %d notices",
		      w->notices_a, N_BURST);
	wf_bus_get_stats(w->bus, &after);
	ck_assert_int_eq(w->notices_a, N_BURST); /* each once */
	if (*bundle_line) {
		ck_assert_uint_eq(after.bundles, before.bundles);
	} else {
		ck_assert_uint_ge(after.bundles - before.bundles, 1);
		/* the notices and dispatch's heartbeats, in fewer messages */
		ck_assert_uint_lt(after.received - before.received, N_BURST);
	}
	one_station_stop(&f);
}

START_TEST(test_notices_bundled)
{
	notices_burst("");
}
END_TEST

START_TEST(test_notices_unbundled)
{
	notices_burst("bundle = 1\n");
}
END_TEST

/* How many times the dispatcher's log LOG says NEEDLE. */
static int log_count_str(const char *log, const char *needle)
{
	char *l = read_log(log);
	int n = 0;
	for (const char *p = l; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	free(l);
	return n;
}

struct resyncs { const char *log; int want; };

static bool resyncs_reached(void *ud)
{
	const struct resyncs *r = ud;
	return log_count_str(r->log, "resync: resync after connecting") >= r->want;
}

static bool bus_up(void *ud) { return wf_bus_connected(ud); }

/* The views go at QoS 0, so every new connection of wf-dispatch owes a
 * whole resync, however short the drop: here another client takes its
 * client id over (the broker closes wf-dispatch's connection) and is gone
 * at once, and wf-dispatch, back within its reconnect delay, resyncs
 * again (it counts its bus's connects, not only what its 200 ms tick saw). */
START_TEST(test_resync_after_short_drop)
{
	struct one_station f;
	one_station_start(&f, "dispatch-drop", "");
	ck_assert_int_eq(log_count_str(f.log, "resync: resync after connecting"), 1);

	struct watch thief; /* wf-dispatch's client id, no subscription */
	watch_new(&thief, f.loop, f.br, "wf-dispatch-1", NULL, 0);
	ck_assert(wf_test_run_until(f.loop, bus_up, thief.bus, 10000));
	wf_bus_free(thief.bus);
	struct resyncs rs = { f.log, 2 };
	ck_assert_msg(wf_test_run_until(f.loop, resyncs_reached, &rs, 10000),
		      "no resync after the reconnect");
	one_station_stop(&f);
}
END_TEST

START_TEST(test_dispatch_live)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_test_broker *br = NULL;
	ck_assert_int_eq(wf_test_broker_start(NULL, &br), 0);
	char *dir = wf_test_mkdtemp("dispatch");
	char conf[512], routes[512], text[4096], log[512], sub[512], cap[1024];
	const char *regions = getenv("WF_REGIONS");

	snprintf(routes, sizeof routes, "%s/routes.conf", dir);
	write_file(routes, "[station duty-twn-a]\nregion = 410185001000\n"
			   "[station duty-twn-b]\nregion = 410185002000\n"
			   "[station duty-410185]\nregion = 410185\n"
			   "[operator op-zhang]\n[operator op-li]\n"
			   "[route all]\nchannels = duty, broadcast, cap, sms\n");
	snprintf(conf, sizeof conf, "%s/dispatch.conf", dir);
	snprintf(log, sizeof log, "%s/dispatch.log", dir);
	snprintf(text, sizeof text,
		 "[dispatch]\nroutes = %s\n[policy]\nreview_timeout_II = 0\n"
		 "[duty]\nack_deadline_II = %ds\n"
		 "[cap]\nspool_dir = %s/cap\nsender = warnfuse@410185.example\n"
		 "sender_name = 登封市应急管理局\n"
		 "[service]\nid = wf-dispatch-1\nstate_dir = %s/state\nregions = %s\nheartbeat = 1s\n"
		 "[mqtt]\nport = %d\n",
		 routes, 3 * wf_test_time_factor(), dir, dir, regions ? regions : "",
		 wf_test_broker_port(br));
	write_file(conf, text);

	struct watch w;
	const char *filters[] = { "wf/v1/state/wf-dispatch-1", "wf/v1/duty/+/inbox" };
	watch_new(&w, loop, br, "dsp-watch", filters, 2);
	ck_assert(wf_test_run_until(loop, w_ready, &w, 10000));

	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fd, 2);
	char *argv[] = { exe, "--config", conf, NULL };
	struct child ch = { 0 };
	ck_assert_int_eq(posix_spawn(&ch.pid, exe, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(fd);
	ck_assert_msg(wf_test_run_until(loop, w_online, &w, 10000), "wf-dispatch did not come up");

	/* console A consumes its inbox through a node and acknowledges */
	struct console ca = { 0 };
	struct wf_node_callbacks ccb = { .on_control = console_on_control };
	static const char *const cin[] = { "wf/v1/duty/duty-twn-a/inbox" };
	snprintf(sub, sizeof sub, "%s/console-a", dir);
	ca.node = producer(loop, br, "console-twn-a", "console", sub, &ccb, &ca, cin, 1);
	ck_assert(wf_test_run_until(loop, n_ready, ca.node, 10000));

	/* fusion's warning */
	snprintf(sub, sizeof sub, "%s/fusion", dir);
	struct wf_node *fusion = producer(loop, br, "wf-fusion-1", "fusion", sub, NULL, NULL, NULL, 0);
	ck_assert(wf_test_run_until(loop, n_ready, fusion, 10000));
	ck_assert_int_eq(wf_node_update(fusion, emit_warning, fusion), 0);
	ck_assert_msg(wf_test_run_until(loop, n_drained, fusion, 10000), "warning not acked");

	/* A acknowledges; B (a plain subscriber) never does */
	ck_assert(wf_test_run_until(loop, c_notice, &ca, 10000));
	ck_assert_int_eq(wf_node_update(ca.node, emit_ack, &ca), 0);
	ck_assert_msg(wf_test_run_until(loop, n_drained, ca.node, 10000), "duty ack not acked");
	ck_assert(wf_test_run_until(loop, w_notice_b, &w, 10000));

	/* B's deadline passes: the county station gets the escalation */
	ck_assert_msg(wf_test_run_until(loop, w_escalated, &w, 20000), "no escalation");
	ck_assert_str_eq(w.escalated_from, "duty-twn-b");

	/* two operators (one twice) approve version 1 */
	snprintf(sub, sizeof sub, "%s/wfctl", dir);
	struct wf_node *ctl = producer(loop, br, "wfctl-ops", "wfctl", sub, NULL, NULL, NULL, 0);
	ck_assert(wf_test_run_until(loop, n_ready, ctl, 10000));
	ck_assert_int_eq(wf_node_update(ctl, emit_approvals, ctl), 0);
	ck_assert_msg(wf_test_run_until(loop, n_drained, ctl, 10000), "approvals not acked");
	/* released after review: every station told of it while pending hears so
	 * (A, which acknowledged; B, which did not; the county, by escalation) */
	ck_assert_msg(wf_test_run_until(loop, c_released, &ca, 10000), "A: no RELEASED notice");
	ck_assert_msg(wf_test_run_until(loop, w_released, &w, 10000),
		      "no RELEASED notice: B %d, county %d", w.released_b, w.released_county);

	/* a broadcast terminal that connects now gets the retained state */
	snprintf(cap, sizeof cap, "%s/cap/" WID ".v1.xml", dir);
	struct file_wait fw = { cap };
	ck_assert_msg(wf_test_run_until(loop, file_exists, &fw, 10000), "no CAP file %s", cap);
	struct watch term;
	const char *tf[] = { "wf/v1/broadcast/41/4101/#" };
	watch_new(&term, loop, br, "terminal-410185", tf, 1);
	ck_assert_msg(wf_test_run_until(loop, w_bcast, &term, 10000), "no retained broadcast state");
	ck_assert(term.bcast_retained);
	ck_assert_str_eq(term.bcast_warning, WID "@1");

	/* the CAP file validates against the OASIS CAP 1.2 schema */
	char cmd[3072];
	const char *root = getenv("WF_SOURCE_ROOT");
	snprintf(cmd, sizeof cmd, "xmllint --noout --schema '%s/services/met/schema/CAP-v1.2.xsd' '%s'",
		 root ? root : ".", cap);
	ck_assert_msg(system(cmd) == 0, "xmllint failed: %s", cmd);

	/* exactly one escalation, for B only; A was never escalated */
	ck_assert_int_eq(w.escalations, 1);
	ck_assert_int_eq(w.escalations_wrong, 0);

	ck_assert_int_eq(kill(ch.pid, SIGTERM), 0);
	ck_assert(wf_test_run_until(loop, c_exited, &ch, 10000));
	ck_assert(WIFEXITED(ch.status));
	ck_assert_int_eq(WEXITSTATUS(ch.status), 0);

	char buf[16384];
	FILE *f = fopen(log, "r");
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	if (getenv("WF_DISPATCH_TEST_LOG"))
		fputs(buf, stderr);
	ck_assert_msg(strstr(buf, "escalated to duty-410185") != NULL, "%s", buf);
	ck_assert_msg(strstr(buf, "approved again; counts once") != NULL, "%s", buf);
	ck_assert_msg(strstr(buf, WID "@1 released") != NULL, "%s", buf);

	wf_bus_free(term.bus);
	wf_node_free(ctl);
	wf_node_free(fusion);
	wf_node_free(ca.node);
	wf_bus_free(w.bus);
	wf_test_broker_free(br);
	wf_test_rmtree(dir);
	free(dir);
	ev_loop_destroy(loop);
}
END_TEST

/* ---- (c) a slow broadcast platform ---- */

/* The platform (a child process): for each POST it writes one byte on GOT;
 * it answers the first only after a byte on GO, the others at once (200). */
static void platform(int lfd, int got, int go)
{
	for (int i = 0;; i++) {
		char req[65536], b;
		int c = accept(lfd, NULL, NULL);
		if (c < 0)
			_exit(2);
		long len;
		(void)wf_test_http_read(c, req, sizeof req, &len);
		(void)!write(got, strstr(req, "<alert") ? "p" : "x", 1);
		if (i == 0 && read(go, &b, 1) != 1)
			_exit(3);
		static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
					 "Connection: close\r\n\r\n";
		(void)!write(c, ok, sizeof ok - 1);
		close(c);
	}
}

struct posts {
	int fd;   /* the platform's GOT pipe, non-blocking */
	int n, bad;
};
static bool posts_at_least(struct posts *p, int n)
{
	char b[16];
	ssize_t k;
	while ((k = read(p->fd, b, sizeof b)) > 0)
		for (ssize_t i = 0; i < k; i++) {
			p->n++;
			p->bad += b[i] != 'p';
		}
	return p->n >= n;
}
static bool one_post(void *ud) { return posts_at_least(ud, 1); }
static bool two_posts(void *ud) { return posts_at_least(ud, 2); }

struct queue_wait {
	const char *dir;
};
static bool queue_empty(void *ud)
{
	return wf_test_dir_count(((struct queue_wait *)ud)->dir, "") == 0;
}

static int emit_fog(struct wf_txn *t, void *ud)
{
	static char *regions[] = { "410185001000" };
	static uint32_t n;
	char id[64];
	int64_t now = wf_clock_now_ms(NULL);
	Wf__V1__Warning w = WF__V1__WARNING__INIT;
	snprintf(id, sizeof id, "410185-fog-post%u", ++n);
	w.id = id;
	w.version = 1;
	w.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_ALERT;
	w.hazard = WF__V1__HAZARD__HAZARD_FOG;
	w.level = WF__V1__LEVEL__LEVEL_IV; /* released at once: CAP and POST */
	w.regions = regions;
	w.n_regions = 1;
	w.expires_ms = now + 3600 * 1000LL;
	w.status = WF__V1__STATUS__STATUS_ACTUAL;
	w.review = WF__V1__REVIEW_STATE__REVIEW_PENDING;
	w.sent_ms = now;
	return wf_node_emit_warning(ud, t, &w, NULL);
}

START_TEST(test_cap_post_off_the_loop)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_test_broker *br = NULL;
	ck_assert_int_eq(wf_test_broker_start(NULL, &br), 0);
	char *dir = wf_test_mkdtemp("dispatch-post");
	char conf[512], log[512], outgoing[600];

	struct sockaddr_in a = { 0 };
	socklen_t al = sizeof a;
	int lfd = socket(AF_INET, SOCK_STREAM, 0), got[2], go[2];
	ck_assert_int_ge(lfd, 0);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
	ck_assert_int_eq(listen(lfd, 8), 0);
	ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&a, &al), 0);
	ck_assert_int_eq(pipe(got), 0);
	ck_assert_int_eq(pipe(go), 0);
	pid_t plat = fork();
	ck_assert_int_ge(plat, 0);
	if (plat == 0) {
		close(got[0]);
		close(go[1]);
		platform(lfd, got[1], go[0]);
	}
	close(lfd);
	close(got[1]);
	close(go[0]);
	ck_assert_int_eq(fcntl(got[0], F_SETFL, O_NONBLOCK), 0);

	/* a minute per POST: the held one must not hold the loop */
	char cap[1024];
	snprintf(cap, sizeof cap,
		 "[cap]\nspool_dir = %s/cap\npost_url = http://127.0.0.1:%d/cap\npost_timeout = 60s\n",
		 dir, ntohs(a.sin_port));
	dispatch_files(dir, br, "[station duty-twn-a]\nregion = 410185001000\n"
				"[route all]\nchannels = duty, cap\n",
		       cap, "", conf, log);
	snprintf(outgoing, sizeof outgoing, "%s/cap/outgoing", dir);

	struct watch w;
	struct child ch;
	struct wf_node *fusion = start_dispatch(loop, br, dir, conf, log, "dsp-watch-post", &w, &ch);

	/* the first warning's CAP POST reaches the platform, which holds it */
	struct posts ps = { got[0], 0, 0 };
	ck_assert_int_eq(wf_node_update(fusion, emit_fog, fusion), 0);
	ck_assert_msg(wf_test_run_until(loop, one_post, &ps, 10000), "no POST");
	int before = w.notices_a;
	/* the next warning is dispatched while that POST is still unanswered */
	ck_assert_int_eq(wf_node_update(fusion, emit_fog, fusion), 0);
	struct two t1 = { &w, before + 1, 0 };
	ck_assert_msg(wf_test_run_until(loop, both_notices, &t1, 10000),
		      "no duty notice while the CAP POST was held");
	ck_assert_msg(wf_test_run_until(loop, n_drained, fusion, 10000), "warnings not acked");
	ck_assert_int_eq(ps.n, 1); /* still the held one: one POST at a time */
	/* the platform answers: the second file follows, the queue empties */
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	ck_assert_msg(wf_test_run_until(loop, two_posts, &ps, 10000), "second file not POSTed");
	ck_assert_int_eq(ps.bad, 0);
	struct queue_wait qw = { outgoing };
	ck_assert_msg(wf_test_run_until(loop, queue_empty, &qw, 10000), "outgoing/ not empty");

	ck_assert_int_eq(kill(ch.pid, SIGTERM), 0);
	ck_assert(wf_test_run_until(loop, c_exited, &ch, 10000));
	ck_assert(WIFEXITED(ch.status));
	ck_assert_int_eq(WEXITSTATUS(ch.status), 0);
	char *l = read_log(log);
	ck_assert_msg(strstr(l, "posted 410185-fog-post") != NULL, "%s", l);
	free(l);
	kill(plat, SIGKILL);
	int st = 0;
	ck_assert_int_eq(waitpid(plat, &st, 0), plat);
	close(got[0]);
	close(go[1]);
	wf_node_free(fusion);
	wf_bus_free(w.bus);
	wf_test_broker_free(br);
	wf_test_rmtree(dir);
	free(dir);
	ev_loop_destroy(loop);
}
END_TEST

int main(void)
{
	const char *b = getenv("WF_BUILD_ROOT");
	snprintf(exe, sizeof exe, "%s/services/dispatch/wf-dispatch", b ? b : ".");
	char *tmp = wf_test_mkdtemp("itest-dispatch");
	if (!tmp || setenv("TMPDIR", tmp, 1) < 0)
		return EXIT_FAILURE;
	Suite *s = suite_create("dispatch");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_dispatch_live);
	tcase_add_test(tc, test_notices_bundled);
	tcase_add_test(tc, test_notices_unbundled);
	tcase_add_test(tc, test_resync_after_short_drop);
	tcase_add_test(tc, test_dispatch_sigkill);
	tcase_add_test(tc, test_cap_post_off_the_loop);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	wf_test_rmtree(tmp);
	free(tmp);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
