/* wf-dispatch's SMS channel end to end (docs/dispatch.md, docs/sms.md): a
 * producer node publishes a Warning through a real mosquitto, the real
 * wf-dispatch process releases it and sends it through a real Kannel
 * (bearerbox + smsbox) to fakesmsc, all on free loopback ports.
 *
 *   segments  a red (level I) rainstorm warning, released after two
 *             different operators approve (nothing is sent before): each
 *             subscriber inside the warning's townships gets the 3-part
 *             UCS-2 text (UDH and UTF-16BE content checked), nobody else
 *             gets anything, a number Kannel refuses ends failed, and the
 *             delivery reports are in the dispatcher's LMDB state (read
 *             with the store API after it stops)
 *   test-status  TEST and EXERCISE warnings routed to SMS send nothing:
 *             checked after their duty notices arrived and after an
 *             ACTUAL warning sent behind them has been delivered
 *   kill      kill -9 of wf-dispatch mid fan-out to 10,000 recipients; the
 *             restarted process resumes from its state dir; each recipient
 *             gets the SMS once, or twice at most (the SUBMITTING window,
 *             at most max_inflight = 64), and the duplicates are printed
 *
 * "Done" is observed through the dispatcher's log line "sms: all deliveries
 * final: ..." (written once every planned recipient is delivered, failed or
 * expired, after those states were committed), then the per-recipient
 * states are read from its LMDB with wf_sms_recipient_get /
 * wf_sms_count_states and the d-delivery records with the dispatcher's
 * store API. No sleeps for readiness: every wait polls with a deadline.
 * Run one case with CK_RUN_CASE=kill. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <ev.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker.h"
#include "kannel-harness.h"
#include "proc.h"
#include "sms-util.h"
#include "sms.h"
#include "store.h" /* services/dispatch: d-delivery records */
#include "wf/bus.h"
#include "wf/clock.h"
#include "wf/codec.h"
#include "wf/node.h"
#include "wf/store.h"

static char exe[1024];

#define SENDER "登封市应急管理局"
#define RED_ID "410185-rainstorm-sms1"
#define RED_HEADLINE                                                                              \
	"登封市气象台12月2日14时发布暴雨红色预警：过去3小时嵩阳街道、少林街道降雨量已达100毫米以上，" \
	"预计未来3小时仍将持续，山洪、泥石流和城市内涝风险极高。请立即停止户外活动，低洼地带及沿河人员" \
	"立即转移到安全地带，驾车避开积水路段。关注后续预警信息。"
#define RED_TEXT "【" SENDER "】暴雨红色预警：" RED_HEADLINE
#define FOG_HEADLINE "嵩阳街道、少林街道能见度低于200米，请减速慢行"
#define FOG_TEXT "【" SENDER "】大雾蓝色预警：" FOG_HEADLINE

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return strdup("");
	size_t cap = 65536, n = 0, m;
	char *buf = malloc(cap);
	ck_assert_ptr_nonnull(buf);
	while ((m = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += m;
		if (cap - n < 4096) {
			cap *= 2;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
	}
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(a);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* ---- a watcher: the dispatcher's state topic and the duty inboxes ---- */

#define MAX_IDS 8
struct watch {
	struct wf_bus *bus;
	int online;
	struct {
		char id[130];
		int notices;
		bool pending_review;
		int status;
	} seen[MAX_IDS];
};

static void w_msg(void *ud, const char *topic, const void *p, size_t len, bool retained)
{
	struct watch *w = ud;
	(void)retained;
	if (strcmp(topic, "wf/v1/state/wf-dispatch-1") == 0 && len > 0) {
		Wf__V1__ServiceState *st = wf__v1__service_state__unpack(NULL, len, p);
		if (st && st->status == WF__V1__SERVICE_STATUS__SERVICE_ONLINE)
			w->online++;
		if (st)
			wf__v1__service_state__free_unpacked(st, NULL);
		return;
	}
	if (strncmp(topic, "wf/v1/duty/", 11) != 0)
		return;
	Wf__V1__DutyNotice *n = NULL;
	ck_assert_int_eq(wf_codec_duty_notice_unpack(p, len, NULL, wf_clock_now_ms(NULL), &n, NULL), 0);
	for (int i = 0; i < MAX_IDS; i++) {
		if (w->seen[i].id[0] && strcmp(w->seen[i].id, n->warning_id) != 0)
			continue;
		snprintf(w->seen[i].id, sizeof w->seen[i].id, "%s", n->warning_id);
		w->seen[i].notices++;
		w->seen[i].pending_review = n->pending_review;
		w->seen[i].status = n->status;
		break;
	}
	wf_codec_duty_notice_free(n);
}

static int notices_for(const struct watch *w, const char *id)
{
	for (int i = 0; i < MAX_IDS; i++)
		if (strcmp(w->seen[i].id, id) == 0)
			return w->seen[i].notices;
	return 0;
}

static bool w_ready(void *ud) { return wf_bus_subscribed(((struct watch *)ud)->bus); }
static bool w_online(void *ud) { return ((struct watch *)ud)->online > 0; }
static bool n_ready(void *ud) { return wf_node_ready(ud); }
static bool n_drained(void *ud) { return wf_node_pending(ud) == 0; }

/* ---- the fixture: broker, Kannel, config, the wf-dispatch process ---- */

struct fx {
	struct ev_loop *loop;
	struct wf_test_broker *br;
	struct wf_test_kannel *k;
	char *dir;
	char conf[600], subs[600], state[600], routes[600], pwfile[600];
	struct watch w;
	struct wf_node *fusion, *ctl;
	pid_t pid;
	int status;
	bool exited;
};

static void fx_init(struct fx *f, const struct wf_test_kannel_options *ko, const char *subs,
		    int dlr_port)
{
	memset(f, 0, sizeof *f);
	f->loop = ev_loop_new(EVFLAG_AUTO);
	ck_assert_int_eq(wf_test_broker_start(NULL, &f->br), 0);
	ck_assert_int_eq(wf_test_kannel_create(ko, &f->k), 0);
	ck_assert_int_eq(wf_test_kannel_start(f->k), 0);
	f->dir = wf_test_mkdtemp("dispatch-sms");
	ck_assert_ptr_nonnull(f->dir);

	snprintf(f->subs, sizeof f->subs, "%s/subscribers.csv", f->dir);
	write_file(f->subs, subs);
	snprintf(f->pwfile, sizeof f->pwfile, "%s/sms-password", f->dir);
	char pw[128];
	snprintf(pw, sizeof pw, "%s\n", wf_test_kannel_password(f->k));
	write_file(f->pwfile, pw);
	snprintf(f->routes, sizeof f->routes, "%s/routes.conf", f->dir);
	write_file(f->routes, "[station duty-twn-a]\nregion = 410185001000\n"
			      "[station duty-twn-b]\nregion = 410185002000\n"
			      "[station duty-410185]\nregion = 410185\n"
			      "[operator op-zhang]\nname = 张三\n[operator op-li]\nname = 李四\n"
			      "[route all]\nchannels = duty, sms\n");
	snprintf(f->state, sizeof f->state, "%s/state", f->dir);
	snprintf(f->conf, sizeof f->conf, "%s/dispatch.conf", f->dir);
	const char *regions = getenv("WF_REGIONS");
	char text[8192];
	snprintf(text, sizeof text,
		 "[dispatch]\nroutes = %s\n"
		 "[policy]\nreview_timeout_I = 0\n"
		 "[cap]\nspool_dir = %s/cap\nsender_name = " SENDER "\n"
		 "[sms]\nsendsms_url = %s\nusername = %s\npassword_file = %s\nfrom = 12379\n"
		 "subscribers = %s\ndlr_port = %d\n"
		 "[service]\nid = wf-dispatch-1\nstate_dir = %s\nregions = %s\nheartbeat = 1s\n"
		 "[mqtt]\nport = %d\n",
		 f->routes, f->dir, wf_test_kannel_sendsms_url(f->k), wf_test_kannel_username(f->k),
		 f->pwfile, f->subs, dlr_port, f->state, regions ? regions : "",
		 wf_test_broker_port(f->br));
	write_file(f->conf, text);

	struct wf_bus_options bo;
	struct wf_bus_callbacks bcb = { .on_message = w_msg };
	wf_bus_options_init(&bo);
	bo.port = wf_test_broker_port(f->br);
	bo.client_id = "dsp-sms-watch";
	ck_assert_int_eq(wf_bus_new(f->loop, &bo, &bcb, &f->w, &f->w.bus), 0);
	ck_assert_int_eq(wf_bus_subscribe(f->w.bus, "wf/v1/state/wf-dispatch-1", 1), 0);
	ck_assert_int_eq(wf_bus_subscribe(f->w.bus, "wf/v1/duty/+/inbox", 1), 0);
	ck_assert_int_eq(wf_bus_start(f->w.bus), 0);
	ck_assert(wf_test_run_until(f->loop, w_ready, &f->w, 10000));
}

static struct wf_node *producer(struct fx *f, const char *id, const char *kind)
{
	struct wf_node_options o;
	struct wf_node *n = NULL;
	char dir[700];
	snprintf(dir, sizeof dir, "%s/%s", f->dir, id);
	wf_node_options_init(&o);
	o.service = id;
	o.kind = kind;
	o.state_dir = dir;
	o.nosync = true;
	o.bus.port = wf_test_broker_port(f->br);
	o.resend_ms = 500;
	ck_assert_int_eq(wf_node_new(f->loop, &o, NULL, NULL, &n), 0);
	ck_assert_int_eq(wf_node_start(n), 0);
	ck_assert(wf_test_run_until(f->loop, n_ready, n, 10000));
	return n;
}

static bool d_exited(void *ud)
{
	struct fx *f = ud;
	if (!f->exited && f->pid > 0 && waitpid(f->pid, &f->status, WNOHANG) == f->pid)
		f->exited = true;
	return f->exited;
}

static void spawn_dispatch(struct fx *f, const char *log)
{
	char *argv[] = { exe, "--config", f->conf, NULL };
	f->w.online = 0;
	f->exited = false;
	f->pid = wf_test_spawn(argv, NULL, log);
	ck_assert_int_gt(f->pid, 0);
	if (!wf_test_run_until(f->loop, w_online, &f->w, 10000)) {
		char *l = read_text(log);
		ck_abort_msg("wf-dispatch did not come up:\n%s", l);
	}
}

/* SIGTERM and wait: exit status 0 */
static void stop_dispatch(struct fx *f)
{
	ck_assert_int_eq(kill(f->pid, SIGTERM), 0);
	ck_assert(wf_test_run_until(f->loop, d_exited, f, 15000));
	ck_assert(WIFEXITED(f->status));
	ck_assert_int_eq(WEXITSTATUS(f->status), 0);
	f->pid = 0;
}

static void fx_free(struct fx *f)
{
	if (f->pid > 0 && !f->exited) {
		kill(f->pid, SIGKILL);
		waitpid(f->pid, NULL, 0);
	}
	wf_node_free(f->ctl);
	wf_node_free(f->fusion);
	wf_bus_free(f->w.bus);
	f->k = wf_test_kannel_free(f->k);
	wf_test_broker_free(f->br);
	ev_loop_destroy(f->loop);
	wf_test_rmtree(f->dir);
	free(f->dir);
}

/* ---- producers: the warning, the operators' approvals ---- */

struct wspec {
	struct wf_node *node;
	const char *id, *headline;
	Wf__V1__Hazard hazard;
	Wf__V1__Level level;
	Wf__V1__Status status;
};

static int emit_warning(struct wf_txn *t, void *ud)
{
	static char *regions[] = { "410185001000", "410185002000" };
	const struct wspec *s = ud;
	int64_t now = wf_clock_now_ms(NULL);
	Wf__V1__Warning w = WF__V1__WARNING__INIT;
	w.id = (char *)s->id;
	w.version = 1;
	w.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_ALERT;
	w.hazard = s->hazard;
	w.level = s->level;
	w.regions = regions;
	w.n_regions = 2;
	w.expires_ms = now + 6 * 3600 * 1000LL;
	w.headline = (char *)s->headline;
	w.status = s->status;
	w.review = WF__V1__REVIEW_STATE__REVIEW_PENDING;
	w.certainty = WF__V1__CERTAINTY__CERTAINTY_LIKELY;
	w.sent_ms = now;
	return wf_node_emit_warning(s->node, t, &w, NULL);
}

static void publish(struct fx *f, struct wspec *s)
{
	if (!f->fusion)
		f->fusion = producer(f, "wf-fusion-1", "fusion");
	s->node = f->fusion;
	ck_assert_int_eq(wf_node_update(f->fusion, emit_warning, s), 0);
	ck_assert_msg(wf_test_run_until(f->loop, n_drained, f->fusion, 10000), "warning not acked");
}

static int emit_approvals(struct wf_txn *t, void *ud)
{
	const char *ops[] = { "op-zhang", "op-li" };
	for (int i = 0; i < 2; i++) {
		Wf__V1__Approval a = WF__V1__APPROVAL__INIT;
		a.operator_ = (char *)ops[i];
		a.warning_id = RED_ID;
		a.version = 1;
		a.decision = WF__V1__DECISION__DECISION_APPROVE;
		a.sent_ms = wf_clock_now_ms(NULL);
		int r = wf_node_emit_control(ud, t, WF_TOPIC_APPROVAL, &a.base, NULL);
		if (r < 0)
			return r;
	}
	return 0;
}

struct notice_wait {
	struct watch *w;
	const char *id;
	int n;
};
static bool got_notices(void *ud)
{
	struct notice_wait *nw = ud;
	return notices_for(nw->w, nw->id) >= nw->n;
}

/* ---- polling the dispatcher's log and fakesmsc (at most every 100 ms) ---- */

struct log_wait {
	const char *path, *needle;
	int64_t last;
	bool found;
};
static bool log_has(void *ud)
{
	struct log_wait *lw = ud;
	int64_t now = wf_clock_mono_ms();
	if (lw->found || now - lw->last < 100)
		return lw->found;
	lw->last = now;
	char *l = read_text(lw->path);
	lw->found = strstr(l, lw->needle) != NULL;
	free(l);
	return lw->found;
}

static void wait_log(struct fx *f, const char *log, const char *needle, int timeout_ms)
{
	struct log_wait lw = { log, needle, 0, false };
	if (!wf_test_run_until(f->loop, log_has, &lw, timeout_ms)) {
		char *l = read_text(log);
		size_t n = strlen(l);
		ck_abort_msg("no \"%s\" in %s (last part):\n%s", needle, log, l + (n > 6000 ? n - 6000 : 0));
	}
}

/* "<key>: <digits>" after NEEDLE in the log: the number, or -1 */
static long long log_number(const char *log, const char *needle)
{
	char *l = read_text(log);
	const char *p = strstr(l, needle);
	long long v = p ? strtoll(p + strlen(needle), NULL, 10) : -1;
	free(l);
	return v;
}

/* ---- reading the state after the dispatcher stopped ---- */

struct state {
	struct wf_store *store;
	struct ev_loop *loop;
	struct wf_sms *sms;
	struct dsp_dbs dbs;
};

static void state_open(struct fx *f, struct state *s)
{
	struct wf_store_options so = { .path = f->state, .max_dbs = 32 };
	struct wf_sms_config c;
	char err[512];
	memset(s, 0, sizeof *s);
	ck_assert_int_eq(wf_store_open(&so, &s->store), 0);
	ck_assert_int_eq(dsp_store_open(s->store, &s->dbs), 0);
	/* a channel only to read the rows: its loop never runs, and its URL
	 * points nowhere, so nothing can be sent from here */
	s->loop = ev_loop_new(EVFLAG_AUTO);
	wf_sms_config_init(&c);
	c.sendsms_url = "http://127.0.0.1:9/cgi-bin/sendsms";
	c.username = c.password = "none";
	c.from = "12379";
	c.subscribers_path = f->subs;
	ck_assert_int_eq(wf_sms_open(s->loop, s->store, &c, &s->sms, err, sizeof err), 0);
}

struct each {
	int n, delivered, failed, parts, bad;
};
static int each_rcpt(void *ud, const char *key, const char *msisdn, enum wf_sms_state st,
		     unsigned parts)
{
	struct each *e = ud;
	e->n++;
	e->delivered += st == WF_SMS_DELIVERED;
	e->failed += st == WF_SMS_FAILED;
	e->parts += (int)parts;
	e->bad += strcmp(key, RED_ID "@1") != 0 || strlen(msisdn) != 11;
	return 0;
}

static void state_close(struct state *s)
{
	s->sms = wf_sms_close(s->sms);
	s->store = wf_store_close(s->store);
	ev_loop_destroy(s->loop);
}

struct dlv_get {
	struct state *s;
	const char *id, *channel;
	struct dsp_delivery rec;
};
static int dlv_fn(struct wf_txn *t, void *ud)
{
	struct dlv_get *g = ud;
	char key[DSP_KEY_MAX];
	int r = dsp_key_delivery(t, &g->s->dbs, key, sizeof key, g->id, 1, g->channel, "*");
	return r < 0 ? r : dsp_get_rec(t, g->s->dbs.delivery, key, &g->rec, sizeof g->rec);
}

/* d-delivery "<seq>:<id>@1|<channel>|*" */
static void expect_delivery(struct state *s, const char *id, const char *channel,
			    enum dsp_delivery_state want, const char *detail)
{
	struct dlv_get g = { s, id, channel, { 0 } };
	ck_assert_int_eq(wf_store_view(s->store, dlv_fn, &g), 0);
	ck_assert_msg(g.rec.state == want, "%s@1|%s: %s, want %s (%s)", id, channel,
		      dsp_delivery_state_to_string(g.rec.state), dsp_delivery_state_to_string(want),
		      g.rec.detail);
	if (detail)
		ck_assert_msg(strstr(g.rec.detail, detail), "%s@1|%s: \"%s\", want \"%s\"", id, channel,
			      g.rec.detail, detail);
}

static void expect_rcpt(struct state *s, const char *key, const char *msisdn, enum wf_sms_state want)
{
	struct wf_sms_recipient r;
	ck_assert_int_eq(wf_sms_recipient_get(s->sms, key, msisdn, &r), 0);
	ck_assert_msg(r.state == want, "%s/%s: %s, want %s (dlr %d mask %u attempts %u)", key, msisdn,
		      wf_sms_state_to_string(r.state), wf_sms_state_to_string(want), r.last_dlr,
		      r.dlr_mask_seen, r.attempts);
	if (want == WF_SMS_DELIVERED)
		ck_assert_msg(r.dlr_mask_seen & 1, "%s/%s: no DLR 1 recorded (mask %u)", key, msisdn,
			      r.dlr_mask_seen);
}

/* ---- what fakesmsc got ---- */

/* The UTF-16BE text fakesmsc got for TO, its parts put together by the UDH
 * (05 00 03 ref total seq); checks the UDH. Returns the number of parts. */
static int reassemble(const struct wf_test_sms *v, long n, const char *to, unsigned char *out,
		      size_t *ret_len, size_t *units)
{
	const struct wf_test_sms *by_seq[16] = { 0 };
	int parts = 0, total = -1;
	*ret_len = 0;
	for (long i = 0; i < n; i++) {
		if (strcmp(v[i].to, to) != 0)
			continue;
		ck_assert_msg(v[i].ucs2, "message to %s is not UCS-2", to);
		ck_assert_str_eq(v[i].from, "12379");
		if (!v[i].has_udh) {
			ck_assert_msg(parts == 0, "%s: a single SMS and parts", to);
			memcpy(out, v[i].data, v[i].len);
			*ret_len = v[i].len;
			units[0] = v[i].len / 2;
			parts = total = 1;
			continue;
		}
		ck_assert_uint_eq(v[i].udh_len, 6);
		ck_assert_int_eq(v[i].udh[0], 5);
		ck_assert_int_eq(v[i].udh[1], 0);
		ck_assert_int_eq(v[i].udh[2], 3);
		if (total < 0)
			total = v[i].udh[4];
		ck_assert_int_eq(v[i].udh[4], total);
		int seq = v[i].udh[5];
		ck_assert_int_ge(seq, 1);
		ck_assert_int_le(seq, total);
		ck_assert_msg(!by_seq[seq], "part %d to %s twice", seq, to);
		by_seq[seq] = &v[i];
		parts++;
	}
	if (parts && total > 1) {
		size_t len = 0;
		for (int s = 1; s <= total; s++) {
			ck_assert_msg(by_seq[s], "part %d of %d to %s missing", s, total, to);
			memcpy(out + len, by_seq[s]->data, by_seq[s]->len);
			units[s - 1] = by_seq[s]->len / 2;
			len += by_seq[s]->len;
		}
		*ret_len = len;
	}
	return parts;
}

static void expect_sms(const struct wf_test_sms *v, long n, const char *to, const char *text,
		       int want_parts, const size_t *want_units)
{
	unsigned char want[4096], got[4096];
	size_t got_len = 0, units[16] = { 0 };
	long wu = wf_sms_utf16_units(text, strlen(text), want);
	ck_assert_int_gt(wu, 0);
	int parts = reassemble(v, n, to, got, &got_len, units);
	ck_assert_msg(parts == want_parts, "%s: %d parts, want %d", to, parts, want_parts);
	ck_assert_uint_eq(got_len, (size_t)wu * 2);
	ck_assert_msg(memcmp(got, want, got_len) == 0, "%s: content differs", to);
	for (int i = 0; i < want_parts; i++)
		ck_assert_msg(units[i] == want_units[i], "%s part %d: %zu units, want %zu", to, i + 1,
			      units[i], want_units[i]);
}

static const char *const final_line = "sms: all deliveries final:";

/* A red warning: pending review (duty notice, no SMS), two operators
 * approve, then exactly the subscribers inside the warning's two townships
 * get the 3-part UCS-2 text; DLRs recorded per recipient in LMDB. */
START_TEST(test_segments)
{
	struct fx f;
	struct wf_test_kannel_options ko = { .denied_prefix = "1390009" };
	fx_init(&f, &ko,
		"msisdn,region\n"
		"# inside the warning's townships\n"
		"13800000001,410185001000\n"
		"13800000002,410185001003\n"      /* a village of 嵩阳街道 */
		"13800000003,410185002000\n"
		"13800000004,410185001000\n"
		"13800000004,410185002000\n"      /* listed twice: one SMS */
		"13900090001,410185002000\n"      /* Kannel refuses it: failed */
		"# outside\n"
		"13800000005,410185\n"            /* county level: not a township's warning */
		"13800000006,410185100000\n"      /* another township */
		"13800000007,420100\n",
		0);
	char log[700];
	snprintf(log, sizeof log, "%s/dispatch.log", f.dir);
	spawn_dispatch(&f, log);

	struct wspec red = { .id = RED_ID, .headline = RED_HEADLINE,
			     .hazard = WF__V1__HAZARD__HAZARD_RAINSTORM,
			     .level = WF__V1__LEVEL__LEVEL_I,
			     .status = WF__V1__STATUS__STATUS_ACTUAL };
	publish(&f, &red);
	struct notice_wait nw = { &f.w, RED_ID, 2 }; /* both townships' stations */
	ck_assert_msg(wf_test_run_until(f.loop, got_notices, &nw, 10000), "no duty notices");
	ck_assert(f.w.seen[0].pending_review);
	/* the notices went out after the commit that decided "pending review" */
	ck_assert_int_eq(wf_test_kannel_received_count(f.k), 0);

	f.ctl = producer(&f, "wfctl-ops", "wfctl");
	ck_assert_int_eq(wf_node_update(f.ctl, emit_approvals, f.ctl), 0);
	ck_assert_msg(wf_test_run_until(f.loop, n_drained, f.ctl, 10000), "approvals not acked");
	wait_log(&f, log, final_line, 30000);
	stop_dispatch(&f);

	/* at fakesmsc: 3 parts (67 + 67 + 8 UTF-16 units) to each of the four */
	long units = wf_sms_utf16_units(RED_TEXT, strlen(RED_TEXT), NULL);
	ck_assert_int_eq(units, 142);
	struct wf_test_sms *v;
	long n = wf_test_kannel_received(f.k, &v);
	ck_assert_int_eq(n, 4 * 3);
	const size_t red_units[] = { 67, 67, 8 };
	const char *in[] = { "13800000001", "13800000002", "13800000003", "13800000004" };
	for (int i = 0; i < 4; i++)
		expect_sms(v, n, in[i], RED_TEXT, 3, red_units);
	for (long i = 0; i < n; i++) {
		ck_assert_str_ne(v[i].to, "13800000005");
		ck_assert_str_ne(v[i].to, "13800000006");
		ck_assert_str_ne(v[i].to, "13800000007");
		ck_assert_str_ne(v[i].to, "13900090001");
	}
	wf_test_sms_free(v, (size_t)n);

	/* in the dispatcher's state: DLR 1 for each, the refused one failed */
	struct state s;
	state_open(&f, &s);
	expect_delivery(&s, RED_ID, "sms", DSP_DLV_SENT, "5 recipients planned");
	for (int i = 0; i < 4; i++) {
		expect_rcpt(&s, RED_ID "@1", in[i], WF_SMS_DELIVERED);
		struct wf_sms_recipient r;
		ck_assert_int_eq(wf_sms_recipient_get(s.sms, RED_ID "@1", in[i], &r), 0);
		ck_assert_uint_eq(r.attempts, 1);
	}
	expect_rcpt(&s, RED_ID "@1", "13900090001", WF_SMS_FAILED);
	struct wf_sms_recipient r;
	ck_assert_int_eq(wf_sms_recipient_get(s.sms, RED_ID "@1", "13800000005", &r), -ENOENT);
	ck_assert_int_eq(wf_sms_recipient_get(s.sms, RED_ID "@1", "13800000006", &r), -ENOENT);
	uint64_t counts[WF_SMS_STATE_MAX];
	ck_assert_int_eq(wf_sms_count_states(s.sms, NULL, counts), 0);
	ck_assert_uint_eq(counts[WF_SMS_DELIVERED], 4);
	ck_assert_uint_eq(counts[WF_SMS_FAILED], 1);
	/* the same from the iterator harnesses use (tests/chaos), with the parts */
	struct each e = { 0 };
	ck_assert_int_eq(wf_sms_foreach_recipient(s.store, each_rcpt, &e), 0);
	ck_assert_int_eq(e.n, 5);
	ck_assert_int_eq(e.delivered, 4);
	ck_assert_int_eq(e.failed, 1);
	ck_assert_int_eq(e.parts, 5 * 3);
	ck_assert_int_eq(e.bad, 0);
	state_close(&s);

	char *l = read_text(log);
	ck_assert_msg(strstr(l, "all deliveries final: 4 delivered, 1 failed, 0 expired"), "%s", l);
	ck_assert_msg(strstr(l, RED_ID "@1 released"), "%s", l);
	fprintf(stderr, "segments: 4 recipients x 3 parts at fakesmsc, 4 DLRs recorded, 1 refused\n");
	free(l);
	fx_free(&f);
}
END_TEST

/* TEST and EXERCISE warnings routed to SMS: nothing at fakesmsc, recorded
 * "blocked"; an ACTUAL warning sent after them arrives (so the channel was
 * working and the dispatcher had processed the two before). */
START_TEST(test_not_public)
{
	struct fx f;
	fx_init(&f, NULL,
		"13800000011,410185001000\n13800000012,410185002000\n13800000013,410185\n", 0);
	char log[700];
	snprintf(log, sizeof log, "%s/dispatch.log", f.dir);
	spawn_dispatch(&f, log);

	struct wspec test = { .id = "410185-fog-test", .headline = "系统测试，请勿理会",
			      .hazard = WF__V1__HAZARD__HAZARD_FOG, .level = WF__V1__LEVEL__LEVEL_IV,
			      .status = WF__V1__STATUS__STATUS_TEST };
	struct wspec drill = { .id = "410185-rain-drill", .headline = "防汛演练",
			       .hazard = WF__V1__HAZARD__HAZARD_RAINSTORM,
			       .level = WF__V1__LEVEL__LEVEL_IV,
			       .status = WF__V1__STATUS__STATUS_EXERCISE };
	publish(&f, &test);
	publish(&f, &drill);
	struct notice_wait nw = { &f.w, "410185-fog-test", 2 };
	ck_assert_msg(wf_test_run_until(f.loop, got_notices, &nw, 10000), "no notice (test)");
	nw.id = "410185-rain-drill";
	ck_assert_msg(wf_test_run_until(f.loop, got_notices, &nw, 10000), "no notice (exercise)");
	ck_assert_int_eq(wf_test_kannel_received_count(f.k), 0);

	/* the barrier: an actual blue warning to the same townships */
	struct wspec actual = { .id = "410185-fog-actual", .headline = FOG_HEADLINE,
				.hazard = WF__V1__HAZARD__HAZARD_FOG,
				.level = WF__V1__LEVEL__LEVEL_IV,
				.status = WF__V1__STATUS__STATUS_ACTUAL };
	publish(&f, &actual);
	wait_log(&f, log, final_line, 30000);
	stop_dispatch(&f);

	struct wf_test_sms *v;
	long n = wf_test_kannel_received(f.k, &v);
	ck_assert_int_eq(n, 2); /* only the actual one, one SMS each */
	long fu = wf_sms_utf16_units(FOG_TEXT, strlen(FOG_TEXT), NULL);
	ck_assert_int_le(fu, 70);
	const size_t one[] = { (size_t)fu };
	expect_sms(v, n, "13800000011", FOG_TEXT, 1, one);
	expect_sms(v, n, "13800000012", FOG_TEXT, 1, one);
	wf_test_sms_free(v, (size_t)n);

	struct state s;
	state_open(&f, &s);
	expect_delivery(&s, "410185-fog-test", "sms", DSP_DLV_BLOCKED, "status test never");
	expect_delivery(&s, "410185-rain-drill", "sms", DSP_DLV_BLOCKED, "status exercise never");
	expect_delivery(&s, "410185-fog-actual", "sms", DSP_DLV_SENT, "2 recipients planned");
	uint64_t counts[WF_SMS_STATE_MAX];
	ck_assert_int_eq(wf_sms_count_states(s.sms, "410185-fog-test@1", counts), 0);
	for (int i = 0; i < WF_SMS_STATE_MAX; i++)
		ck_assert_uint_eq(counts[i], 0);
	ck_assert_int_eq(wf_sms_count_states(s.sms, "410185-rain-drill@1", counts), 0);
	for (int i = 0; i < WF_SMS_STATE_MAX; i++)
		ck_assert_uint_eq(counts[i], 0);
	ck_assert_int_eq(wf_sms_count_states(s.sms, NULL, counts), 0);
	ck_assert_uint_eq(counts[WF_SMS_DELIVERED], 2);
	state_close(&s);
	char *l = read_text(log);
	ck_assert_msg(strstr(l, "410185-fog-test@1 (test): public channels blocked"), "%s", l);
	ck_assert_msg(strstr(l, "410185-rain-drill@1 (exercise): public channels blocked"), "%s", l);
	free(l);
	fprintf(stderr, "test-status: TEST and EXERCISE: 0 SMS; ACTUAL behind them: 2 SMS\n");
	fx_free(&f);
}
END_TEST

/* ---- kill -9 mid fan-out ---- */

static long kill_n = 10000;

struct count_wait {
	struct wf_test_kannel *k;
	long want;
	int64_t last;
	long got;
	struct fx *f;
};
static bool count_reached(void *ud)
{
	struct count_wait *c = ud;
	int64_t now = wf_clock_mono_ms();
	if (now - c->last >= 20) {
		c->last = now;
		c->got = wf_test_kannel_received_count(c->k);
	}
	/* the dispatcher must not have died on its own */
	ck_assert_msg(!d_exited(c->f), "wf-dispatch exited (status %d)", c->f->status);
	return c->got >= c->want;
}

static void kill_case(long n_rcpt)
{
	struct fx f;
	struct wf_test_kannel_options ko = { .dlr_retry = true };
	size_t cap = (size_t)n_rcpt * 32 + 64, len = 0;
	char *subs = malloc(cap);
	ck_assert_ptr_nonnull(subs);
	len += (size_t)snprintf(subs, cap, "msisdn,region\n");
	for (long i = 0; i < n_rcpt; i++)
		len += (size_t)snprintf(subs + len, cap - len, "1381%07ld,41018500%d000\n", i,
					1 + (int)(i % 2));
	/* a fixed DLR port: DLRs of messages sent before the kill reach the
	 * restarted process (smsbox retries them, dlr_retry) */
	fx_init(&f, &ko, subs, free_port());
	free(subs);
	char log1[700], log2[700];
	snprintf(log1, sizeof log1, "%s/dispatch-1.log", f.dir);
	snprintf(log2, sizeof log2, "%s/dispatch-2.log", f.dir);
	int64_t t0 = wf_clock_mono_ms();
	spawn_dispatch(&f, log1);
	struct wspec fog = { .id = "410185-fog-kill", .headline = FOG_HEADLINE,
			     .hazard = WF__V1__HAZARD__HAZARD_FOG, .level = WF__V1__LEVEL__LEVEL_IV,
			     .status = WF__V1__STATUS__STATUS_ACTUAL };
	publish(&f, &fog);

	/* kill -9 when about 30 % reached fakesmsc */
	struct count_wait cw = { f.k, n_rcpt * 3 / 10, 0, 0, &f };
	ck_assert_msg(wf_test_run_until(f.loop, count_reached, &cw, 60000), "fan-out did not start (%ld)",
		      cw.got);
	ck_assert_int_eq(kill(f.pid, SIGKILL), 0);
	ck_assert(wf_test_run_until(f.loop, d_exited, &f, 10000));
	ck_assert(WIFSIGNALED(f.status) && WTERMSIG(f.status) == SIGKILL);
	long at_kill = wf_test_kannel_received_count(f.k);
	ck_assert_int_lt(at_kill, n_rcpt); /* it really was mid fan-out */

	spawn_dispatch(&f, log2);
	wait_log(&f, log2, final_line, 60000);
	int64_t dt = wf_clock_mono_ms() - t0;
	stop_dispatch(&f);

	long long resumed = log_number(log2, "sms: resumed ");
	long long submitting = log_number(log2, "unfinished recipients, ");
	ck_assert_int_gt(resumed, 0);
	ck_assert_int_ge(submitting, 0);
	ck_assert_int_le(submitting, 64); /* max_inflight */

	struct wf_test_sms *v;
	long n = wf_test_kannel_received(f.k, &v);
	ck_assert_int_ge(n, n_rcpt);
	unsigned char *seen = calloc((size_t)n_rcpt, 1);
	ck_assert_ptr_nonnull(seen);
	long dups = 0, missing = 0, more = 0;
	for (long i = 0; i < n; i++) {
		ck_assert_msg(strncmp(v[i].to, "1381", 4) == 0, "unexpected recipient %s", v[i].to);
		long idx = strtol(v[i].to + 4, NULL, 10);
		ck_assert_int_ge(idx, 0);
		ck_assert_int_lt(idx, n_rcpt);
		ck_assert(!v[i].has_udh);
		if (seen[idx]++)
			dups++;
	}
	for (long i = 0; i < n_rcpt; i++) {
		missing += seen[i] == 0;
		more += seen[i] > 2;
	}
	/* one message checked for content */
	const size_t one[] = { (size_t)wf_sms_utf16_units(FOG_TEXT, strlen(FOG_TEXT), NULL) };
	expect_sms(v, 1, v[0].to, FOG_TEXT, 1, one);
	wf_test_sms_free(v, (size_t)n);
	free(seen);

	struct state s;
	state_open(&f, &s);
	uint64_t counts[WF_SMS_STATE_MAX];
	ck_assert_int_eq(wf_sms_count_states(s.sms, "410185-fog-kill@1", counts), 0);
	state_close(&s);
	char *l2 = read_text(log2);
	fprintf(stderr,
		"kill: %ld recipients; killed after %ld at fakesmsc; restart resumed %lld (%lld were "
		"submitting); duplicates at fakesmsc %ld (bound %lld, at most one per recipient per "
		"kill); missing %ld; delivered (DLR 1) %" PRIu64 "; %" PRId64 " ms in all\n",
		n_rcpt, at_kill, resumed, submitting, dups, submitting, missing,
		counts[WF_SMS_DELIVERED], dt);
	ck_assert_int_eq(missing, 0);
	ck_assert_int_eq(more, 0);
	ck_assert_int_le(dups, submitting);
	ck_assert_uint_eq(counts[WF_SMS_DELIVERED], (uint64_t)n_rcpt);
	/* the restarted process planned nothing again: no second release */
	ck_assert_msg(strstr(l2, "@1 released (") == NULL, "released again after the restart:\n%s", l2);
	free(l2);
	fx_free(&f);
}

START_TEST(test_kill)
{
	kill_case(kill_n);
}
END_TEST

int main(void)
{
	const char *b = getenv("WF_BUILD_ROOT");
	snprintf(exe, sizeof exe, "%s/services/dispatch/wf-dispatch", b ? b : ".");
	const char *kn = getenv("WF_DISPATCH_SMS_KILL_N"); /* e.g. 2000 for a quick run */
	if (kn && atol(kn) > 0)
		kill_n = atol(kn);
	char *tmp = wf_test_mkdtemp("itest-dispatch-sms");
	if (!tmp || setenv("TMPDIR", tmp, 1) < 0)
		return EXIT_FAILURE;
	Suite *s = suite_create("dispatch-sms");
	struct {
		const char *name;
		const TTest *test;
	} cases[] = {
		{ "segments", test_segments },
		{ "test-status", test_not_public },
		{ "kill", test_kill },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_set_timeout(tc, 150);
		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	wf_test_rmtree(tmp);
	free(tmp);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
