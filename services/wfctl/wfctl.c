/* wfctl: the operator's tool over MQTT (docs/wfctl.md). This file: the
 * command table, the shared helpers (wfctl.h), `watch`, `state`, and the
 * commands that send through a durable outbox and wait for the
 * dispatcher's verdict (approve, reject, cancel, silence add; ack and
 * followup wait for the acknowledgement only). read.c has the read
 * commands over the dispatcher's retained views (list, show, stats, audit,
 * silence list), inject.c the drill injector, help.c the --help texts. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "dispatch.pb-c.h"
#include "wf-config.h"
#include "wf/bus.h"
#include "wf/cli.h"
#include "wf/clock.h"
#include "wf/codec.h"
#include "wf/node.h"
#include "wf/nodeconf.h"
#include "wf/pbjson.h"
#include "wf/region.h"
#include "wf/topic.h"
#include "help.h"
#include "wfctl.h"

struct watch {
	struct ev_loop *loop;
	struct wf_bus *bus;
	struct wf_codec_limits lim;
	struct wf_region_table *regions;
	struct wf_clock clock;
	int64_t offset_ms;
	bool json, quiet;
	unsigned long want, warnings, notices, broadcasts;
	int status;
	ev_timer timeout;
	ev_signal sigint, sigterm;
	/* warning versions seen ("id@version" hashes): producers resend until
	 * their consumer acks, and watch is not that consumer */
	uint64_t *seen;
	size_t seen_cap, seen_n;
};

static uint64_t fnv(const char *a, unsigned v)
{
	uint64_t h = 1469598103934665603ull;
	for (; *a; a++)
		h = (h ^ (unsigned char)*a) * 1099511628211ull;
	h = (h ^ v) * 1099511628211ull;
	return h ? h : 1;
}

/* true the first time (ID, VERSION) is seen */
static bool first_sight(struct watch *w, const char *id, unsigned version)
{
	if (w->seen_n * 2 >= w->seen_cap) {
		size_t cap = w->seen_cap ? w->seen_cap * 2 : 1024;
		uint64_t *n = calloc(cap, sizeof *n);
		if (n == NULL)
			return true;
		for (size_t i = 0; i < w->seen_cap; i++)
			if (w->seen[i]) {
				size_t j = w->seen[i] & (cap - 1);
				while (n[j])
					j = (j + 1) & (cap - 1);
				n[j] = w->seen[i];
			}
		free(w->seen);
		w->seen = n;
		w->seen_cap = cap;
	}
	uint64_t h = fnv(id, version);
	size_t j = h & (w->seen_cap - 1);
	while (w->seen[j]) {
		if (w->seen[j] == h)
			return false;
		j = (j + 1) & (w->seen_cap - 1);
	}
	w->seen[j] = h;
	w->seen_n++;
	return true;
}

const char *enum_name(const ProtobufCEnumDescriptor *d, int v, size_t strip)
{
	const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(d, v);
	return ev == NULL ? "?" : strlen(ev->name) > strip ? ev->name + strip : ev->name;
}

const char *colour(int l)
{
	switch (l) {
	case WF__V1__LEVEL__LEVEL_I: return "红 I  ";
	case WF__V1__LEVEL__LEVEL_II: return "橙 II ";
	case WF__V1__LEVEL__LEVEL_III: return "黄 III";
	case WF__V1__LEVEL__LEVEL_IV: return "蓝 IV ";
	default: return "-     ";
	}
}

static const char *area_name(struct watch *w, const char *code)
{
	const struct wf_region *r = w->regions ? wf_region_find(w->regions, code) : NULL;
	return r != NULL ? wf_region_name(r) : code;
}

static void stamp(struct watch *w, char *buf, size_t size)
{
	/* Beijing time (UTC+8), the time of every warning text and CAP file */
	time_t t = (time_t)(wf_clock_now_ms(&w->clock) / 1000) + 8 * 3600;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, size, "%H:%M:%S", &tm);
}

static void print_json(const char *kind, const ProtobufCMessage *m)
{
	char *js = wf_pbjson_print(m);
	if (js != NULL)
		printf("{\"%s\":%s}\n", kind, js);
	free(js);
}

static void on_warning(struct watch *w, const Wf__V1__Warning *x)
{
	char ts[16];

	if (!first_sight(w, x->id, x->version))
		return; /* a resend */
	w->warnings++;
	if (w->quiet)
		return;
	if (w->json) {
		print_json("warning", &x->base);
		return;
	}
	stamp(w, ts, sizeof ts);
	printf("%s  WARNING   %-6s v%-3u %s %-14s %-10s %s%s\n", ts,
	       enum_name(&wf__v1__msg_type__descriptor, x->msg_type, 9), x->version, colour(x->level),
	       enum_name(&wf__v1__hazard__descriptor, x->hazard, 7),
	       x->n_regions ? area_name(w, x->regions[0]) : "", x->headline ? x->headline : "",
	       x->review == WF__V1__REVIEW_STATE__REVIEW_PENDING ? "  [pending review]" : "");
	if (x->n_rule_ids || x->n_event_ids) {
		printf("%10s why: rules", "");
		for (size_t i = 0; i < x->n_rule_ids; i++)
			printf("%s%s", i ? "," : " ", x->rule_ids[i]);
		printf("; %zu event(s)", x->n_event_ids);
		for (size_t i = 0; i < x->n_event_ids && i < 3; i++)
			printf("%s%s", i ? ", " : ": ", x->event_ids[i]);
		printf("%s\n", x->n_event_ids > 3 ? ", ..." : "");
	}
}

static void on_notice(struct watch *w, const Wf__V1__DutyNotice *x)
{
	char ts[16];

	w->notices++;
	if (w->quiet)
		return;
	if (w->json) {
		print_json("duty_notice", &x->base);
		return;
	}
	stamp(w, ts, sizeof ts);
	printf("%s  DUTY      %-10s -> %-16s %s@%u %s%s%s\n", ts,
	       enum_name(&wf__v1__notice_kind__descriptor, x->kind, 5), x->station, x->warning_id,
	       x->version, colour(x->level), x->pending_review ? " pending review" : " released",
	       x->escalated_from && *x->escalated_from ? " (escalated)" : "");
}

static void on_broadcast(struct watch *w, const Wf__V1__BroadcastState *x)
{
	char ts[16];

	w->broadcasts++;
	if (w->quiet)
		return;
	if (w->json) {
		print_json("broadcast", &x->base);
		return;
	}
	stamp(w, ts, sizeof ts);
	printf("%s  BROADCAST %-10s %zu active%s\n", ts, area_name(w, x->region), x->n_active,
	       x->n_active ? ":" : " (all clear)");
	for (size_t i = 0; i < x->n_active; i++)
		printf("%10s   %s %s\n", "", colour(x->active[i]->level),
		       x->active[i]->headline ? x->active[i]->headline : "");
}

static void on_state(struct watch *w, const Wf__V1__ServiceState *x, bool retained)
{
	char ts[16];

	if (w->quiet || retained)
		return;
	if (w->json) {
		print_json("state", &x->base);
		return;
	}
	/* daemons of an agency going away (one-shot --stdin runs claim no
	 * agency, and come and go) */
	if (x->status == WF__V1__SERVICE_STATUS__SERVICE_OFFLINE &&
	    x->agency != WF__V1__AGENCY__AGENCY_UNSPECIFIED) {
		stamp(w, ts, sizeof ts);
		printf("%s  STATE     %s is offline: fusion reports a monitoring gap\n", ts,
		       x->service);
	}
}

static void done(struct watch *w, int status)
{
	w->status = status;
	ev_break(w->loop, EVBREAK_ALL);
}

static void on_message(void *ud, const char *topic, const void *payload, size_t len, bool retained)
{
	struct watch *w = ud;
	struct wf_topic t;
	struct wf_codec_error why;
	int64_t now = wf_clock_now_ms(&w->clock);

	if (wf_topic_parse(topic, &t) < 0 || len == 0)
		return;
	if (t.kind == WF_TOPIC_WARNING) {
		Wf__V1__Warning *x = NULL;
		if (wf_codec_warning_unpack(payload, len, &w->lim, now, &x, &why) == 0)
			on_warning(w, x);
		else if (!w->quiet)
			fprintf(stderr, "wfctl: %s: not a valid warning: %s %s\n", topic,
				wf_reason_to_string(why.reason), why.field);
		wf_codec_warning_free(x);
	} else if (t.kind == WF_TOPIC_STATE) {
		Wf__V1__ServiceState *x = NULL;
		if (wf_codec_state_unpack(payload, len, &w->lim, now, &x, &why) == 0)
			on_state(w, x, retained);
		wf_codec_state_free(x);
	} else if (t.kind == WF_TOPIC_DUTY_INBOX || t.kind == WF_TOPIC_BROADCAST) {
		ProtobufCMessage *m = NULL;
		if (wf_codec_control_unpack(t.kind, payload, len, &w->lim, now, &m, &why) == 0) {
			if (t.kind == WF_TOPIC_DUTY_INBOX)
				on_notice(w, (const Wf__V1__DutyNotice *)m);
			else
				on_broadcast(w, (const Wf__V1__BroadcastState *)m);
		}
		wf_codec_control_free(m);
	}
	fflush(stdout);
	if (w->want && w->warnings >= w->want)
		done(w, 0);
}

static void on_connection(void *ud, bool up, int reason)
{
	struct watch *w = ud;

	if (!up && !w->quiet)
		fprintf(stderr, "wfctl: not connected to the broker: %s\n",
			reason < 0 ? strerror(-reason) : wf_bus_reason_string(reason));
}

static void timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct watch *w = t->data;

	fprintf(stderr, "wfctl: timeout: %lu warning version(s) seen, %lu wanted\n", w->warnings,
		w->want);
	done(w, 1);
}

static void signal_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
	done(s->data, 0);
}

static int tls_file_ok(const char *opt, const char *path)
{
	if (path && access(path, R_OK) != 0) {
		fprintf(stderr, "wfctl: %s %s: %s\n", opt, path, strerror(errno));
		return -EINVAL;
	}
	return 0;
}

int creds_load(struct creds *c)
{
	char err[512];

	if ((c->certfile != NULL) != (c->keyfile != NULL)) {
		fprintf(stderr, "wfctl: --cert and --key go together\n");
		return -EINVAL;
	}
	if (c->certfile && !c->cafile) {
		fprintf(stderr, "wfctl: --cert needs --cafile (the broker's CA)\n");
		return -EINVAL;
	}
	if (tls_file_ok("--cafile", c->cafile) < 0 || tls_file_ok("--cert", c->certfile) < 0 ||
	    tls_file_ok("--key", c->keyfile) < 0)
		return -EINVAL;
	if (c->password_file == NULL)
		return 0;
	if (c->username == NULL) {
		fprintf(stderr, "wfctl: --password-file needs --username\n");
		return -EINVAL;
	}
	if (wf_nodeconf_read_password(c->password_file, c->password, sizeof c->password, err,
				      sizeof err) < 0) {
		fprintf(stderr, "wfctl: %s\n", err);
		return -EINVAL;
	}
	return 0;
}

int conn_option(int c, const char *arg, const char **host, long *port, struct creds *cr)
{
	char *end = NULL;

	switch (c) {
	case 'H': *host = arg; return 1;
	case 'u': cr->username = arg; return 1;
	case 'P': cr->password_file = arg; return 1;
	case WFCTL_OPT_CAFILE: cr->cafile = arg; return 1;
	case WFCTL_OPT_CERT: cr->certfile = arg; return 1;
	case WFCTL_OPT_KEY: cr->keyfile = arg; return 1;
	case 'p':
		*port = strtol(arg, &end, 10);
		if (*end || *port < 1 || *port > 65535) {
			fprintf(stderr, "wfctl: --port: not a port: %s\n", arg);
			return -1;
		}
		return 1;
	default: return 0;
	}
}

void creds_bus(const struct creds *c, struct wf_bus_options *bo)
{
	bo->username = c->username;
	bo->password = c->password_file ? c->password : NULL;
	bo->tls_cafile = c->cafile;
	bo->tls_certfile = c->certfile;
	bo->tls_keyfile = c->keyfile;
}

void wfctl_node_options(struct wf_node_options *o, const char *service, const char *state,
			char *dir, size_t dirlen, const char *host, long port, const struct creds *c,
			const struct wf_clock *clock, int64_t resend_ms)
{
	if (state == NULL) {
		const char *home = getenv("HOME");
		snprintf(dir, dirlen, "%s/.local/state/warnfuse/%s", home && *home ? home : "/tmp",
			 service);
		state = dir;
	}
	wf_node_options_init(o);
	o->service = service;
	o->kind = "wfctl";
	o->state_dir = state;
	o->bus.host = host;
	o->bus.port = (int)port;
	creds_bus(c, &o->bus);
	o->clock = clock;
	o->resend_ms = resend_ms;
}

int parse_timeout(const char *arg, long *ret)
{
	char *end = NULL;
	long v = strtol(arg, &end, 10);

	if (*end || v < 1 || v > 86400) {
		fprintf(stderr, "wfctl: --timeout: not seconds in 1..86400: %s\n", arg);
		return -1;
	}
	*ret = v;
	return 0;
}

/* ---- shared helpers (wfctl.h) ---- */

int wfctl_clock(struct wf_clock *clock, int64_t *offset)
{
	const char *now_env = getenv("WF_NOW");
	*clock = wf_clock_system();
	if (now_env && *now_env) {
		int64_t t0;
		if (wf_clock_parse(now_env, &t0) < 0) {
			fprintf(stderr, "wfctl: WF_NOW: not an RFC 3339 time: %s\n", now_env);
			return -1;
		}
		*offset = t0 - wf_clock_now_ms(NULL);
		*clock = wf_clock_shifted(offset);
	}
	return 0;
}

struct wf_region_table *wfctl_regions(void)
{
	struct wf_region_table *t = NULL;
	const char *regions = getenv("WF_REGIONS");
	if (regions && *regions) {
		struct wf_region_error re = { 0 };
		if (wf_region_table_load(regions, &t, &re) < 0)
			fprintf(stderr, "wfctl: %s: %s (showing codes)\n", regions, re.message);
	}
	return t;
}

const char *wfctl_area_name(const struct wf_region_table *t, const char *code)
{
	const struct wf_region *r = t ? wf_region_find(t, code) : NULL;
	return r != NULL ? wf_region_name(r) : code;
}

const char *wfctl_time(int64_t ms, char *buf, size_t size)
{
	if (ms <= 0) {
		snprintf(buf, size, "-");
		return buf;
	}
	time_t t = (time_t)(ms / 1000) + 8 * 3600;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, size, "%m-%d %H:%M:%S", &tm);
	return buf;
}

void wfctl_print_json(const char *kind, const ProtobufCMessage *m)
{
	print_json(kind, m);
}

bool wfctl_warning_id_valid(const char *id)
{
	size_t n = strlen(id);
	return n >= 1 && n <= 128 &&
	       strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") == n;
}

/* ---- commands that send: approve, reject, cancel, silence add, ack,
 * followup ---- */

enum send_cmd { CMD_APPROVE, CMD_REJECT, CMD_ACK, CMD_FOLLOWUP, CMD_CANCEL, CMD_SILENCE };

struct decide {
	struct wf_node *node;
	const char *operator_id, *warning_id, *reason;
	const char *station, *text; /* ack, followup */
	unsigned version;
	bool approve;
	enum send_cmd cmd;
	struct wf_clock clock;
	int64_t offset_ms;
	/* silence add */
	const char *channel, *region, *hazard, *expires, *silence_id;
	int64_t expires_ms;
	char silence_id_buf[130];
	/* what went out, and the dispatcher's verdict on it */
	const char *producer;
	uint64_t seq;
	Wf__V1__AuditEntry *verdict;
};

static int emit_decision(struct wf_txn *t, void *ud)
{
	struct decide *d = ud;
	Wf__V1__Approval a = WF__V1__APPROVAL__INIT;
	struct wf_codec_error why = { 0 };
	int r;

	if (d->cmd == CMD_ACK || d->cmd == CMD_FOLLOWUP) {
		Wf__V1__DutyAck k = WF__V1__DUTY_ACK__INIT;
		Wf__V1__FollowUp f = WF__V1__FOLLOW_UP__INIT;
		if (d->cmd == CMD_ACK) {
			k.station = (char *)d->station;
			k.warning_id = (char *)d->warning_id;
			k.version = d->version;
			k.operator_ = (char *)(d->operator_id ? d->operator_id : "");
			k.acked_ms = wf_clock_now_ms(&d->clock);
			r = wf_node_emit_control(d->node, t, WF_TOPIC_DUTY_ACK, &k.base, &why);
		} else {
			f.station = (char *)d->station;
			f.warning_id = (char *)d->warning_id;
			f.text = (char *)d->text;
			f.operator_ = (char *)(d->operator_id ? d->operator_id : "");
			f.sent_ms = wf_clock_now_ms(&d->clock);
			r = wf_node_emit_control(d->node, t, WF_TOPIC_DUTY_FOLLOWUP, &f.base, &why);
		}
		if (r == -EBADMSG)
			fprintf(stderr, "wfctl: not a valid %s: %s %s: %s\n",
				d->cmd == CMD_ACK ? "acknowledgement" : "follow-up",
				wf_reason_to_string(why.reason), why.field, why.detail);
		return r;
	}
	if (d->cmd == CMD_SILENCE) {
		Wf__V1__Silence m = WF__V1__SILENCE__INIT;
		m.id = (char *)d->silence_id;
		m.operator_ = (char *)d->operator_id;
		m.channel = (char *)d->channel;
		m.region_prefix = (char *)(d->region ? d->region : "");
		if (d->hazard) {
			int hz = wf_hazard_from_string(d->hazard);
			m.hazard = hz > 0 ? (Wf__V1__Hazard)hz : WF__V1__HAZARD__HAZARD_UNSPECIFIED;
		}
		m.sent_ms = wf_clock_now_ms(&d->clock);
		m.expires_ms = d->expires_ms;
		m.reason = (char *)d->reason;
		r = wf_node_emit_control(d->node, t, WF_TOPIC_SILENCE, &m.base, &why);
		if (r == -EBADMSG)
			fprintf(stderr, "wfctl: not a valid silence: %s %s: %s\n",
				wf_reason_to_string(why.reason), why.field, why.detail);
		d->seq = m.seq;
		return r;
	}
	a.operator_ = (char *)d->operator_id;
	a.warning_id = (char *)d->warning_id;
	a.version = d->version;
	a.decision = d->cmd == CMD_CANCEL ? WF__V1__DECISION__DECISION_CANCEL
		     : d->approve	? WF__V1__DECISION__DECISION_APPROVE
					: WF__V1__DECISION__DECISION_REJECT;
	a.reason = (char *)(d->reason ? d->reason : "");
	a.sent_ms = wf_clock_now_ms(&d->clock);
	r = wf_node_emit_control(d->node, t, WF_TOPIC_APPROVAL, &a.base, &why);
	if (r == -EBADMSG)
		fprintf(stderr, "wfctl: not a valid decision: %s %s: %s\n",
			wf_reason_to_string(why.reason), why.field, why.detail);
	d->seq = a.seq;
	return r;
}

struct drain {
	struct ev_loop *loop;
	struct wf_node *node;
	struct decide *d;
	bool want_verdict;
	int status;
};

static void drain_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct drain *dr = t->data;

	if (wf_node_pending(dr->node) == 0 && (!dr->want_verdict || dr->d->verdict != NULL)) {
		dr->status = 0;
		ev_break(loop, EVBREAK_ALL);
	}
}

static void drain_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

/* wf/v1/verdict/<operator>: the entry of our (producer, seq) */
static void verdict_msg(void *ud, const char *topic, const void *payload, size_t len,
			bool retained)
{
	struct decide *d = ud;
	if (d->verdict != NULL || len == 0 || d->seq == 0)
		return;
	Wf__V1__OperatorVerdicts *v = wf__v1__operator_verdicts__unpack(NULL, len, payload);
	if (v == NULL)
		return;
	for (size_t i = 0; i < v->n_entries; i++) {
		Wf__V1__AuditEntry *a = v->entries[i];
		if (a->seq == d->seq && a->producer && strcmp(a->producer, d->producer) == 0) {
			/* keep it: pack and unpack a copy */
			size_t n = wf__v1__audit_entry__get_packed_size(a);
			uint8_t *buf = malloc(n ? n : 1);
			if (buf) {
				wf__v1__audit_entry__pack(a, buf);
				d->verdict = wf__v1__audit_entry__unpack(NULL, n, buf);
				free(buf);
			}
			break;
		}
	}
	wf__v1__operator_verdicts__free_unpacked(v, NULL);
}

/* cancel ID without @VERSION: the version the public has, from the record */
struct cancel_lookup {
	const char *id;
	Wf__V1__WarningRecord *rec;
};

static void cancel_lookup_msg(void *ud, const char *topic, const void *payload, size_t len)
{
	struct cancel_lookup *c = ud;
	Wf__V1__WarningRecord *r = len ? wf__v1__warning_record__unpack(NULL, len, payload) : NULL;
	if (r && r->warning_id && strcmp(r->warning_id, c->id) == 0 && c->rec == NULL) {
		c->rec = r;
		return;
	}
	if (r)
		wf__v1__warning_record__free_unpacked(r, NULL);
}

static bool cancel_lookup_done(void *ud)
{
	return ((struct cancel_lookup *)ud)->rec != NULL;
}

/* "90m", "2h", "1d", "45s" from now, or an RFC 3339 time */
static int parse_expiry(const char *arg, int64_t now, int64_t *ret)
{
	char *end = NULL;
	long long v = strtoll(arg, &end, 10);
	if (end != arg && v > 0 && v <= 366LL * 86400 && end[0] && !end[1]) {
		int64_t unit = end[0] == 's' ? 1000 : end[0] == 'm' ? 60000 : end[0] == 'h' ? 3600000
			       : end[0] == 'd' ? 86400000LL : 0;
		if (unit) {
			*ret = now + (int64_t)v * unit;
			return 0;
		}
	}
	if (wf_clock_parse(arg, ret) == 0 && *ret > now)
		return 0;
	fprintf(stderr, "wfctl: --expires: not a duration (90m, 2h, 1d) or a future RFC 3339 "
			"time: %s\n",
		arg);
	return -1;
}

static int decide_main(int argc, char **argv, enum send_cmd cmd)
{
	bool approve = cmd == CMD_APPROVE;
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' },     { "port", required_argument, NULL, 'p' },
		{ "operator", required_argument, NULL, 'o' }, { "reason", required_argument, NULL, 'r' },
		{ "state", required_argument, NULL, 's' },    { "timeout", required_argument, NULL, 't' },
		{ "username", required_argument, NULL, 'u' }, { "password-file", required_argument, NULL, 'P' },
		{ "channel", required_argument, NULL, 'c' },  { "region", required_argument, NULL, 'g' },
		{ "hazard", required_argument, NULL, 'z' },   { "expires", required_argument, NULL, 'e' },
		{ "id", required_argument, NULL, 'i' },       { "help", no_argument, NULL, 'h' },
		WFCTL_TLS_OPTIONS, { 0 },
	};
	struct decide d = { .approve = approve, .cmd = cmd };
	struct creds cr = { 0 };
	const char *host = "127.0.0.1", *state = NULL;
	const char *cmdname = cmd == CMD_SILENCE ? "silence" : argv[1];
	long port = 1883, timeout_s = 30;
	char target[256], service[80], dir[1024];
	int c;

	optind = cmd == CMD_SILENCE ? 3 : 2;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		int r_opt;
		bool silence_opt = c == 'c' || c == 'g' || c == 'z' || c == 'e' || c == 'i';
		if (silence_opt && cmd != CMD_SILENCE) {
			fprintf(stderr, "wfctl: %s takes no --%s (try --help)\n", cmdname,
				c == 'c' ? "channel" : c == 'g' ? "region" : c == 'z' ? "hazard"
					: c == 'e' ? "expires" : "id");
			return WFCTL_EXIT_USAGE;
		}
		switch (c) {
		case 'o': d.operator_id = optarg; break;
		case 'r': d.reason = optarg; break;
		case 's': state = optarg; break;
		case 'c': d.channel = optarg; break;
		case 'g': d.region = optarg; break;
		case 'z': d.hazard = optarg; break;
		case 'e': d.expires = optarg; break;
		case 'i': d.silence_id = optarg; break;
		case 't':
			if (parse_timeout(optarg, &timeout_s) < 0)
				return WF_EXIT_USAGE;
			break;
		case 'h': wfctl_usage(stdout, cmdname); return WF_EXIT_OK;
		default:
			r_opt = conn_option(c, optarg, &host, &port, &cr);
			if (r_opt <= 0) {
				if (r_opt == 0)
					wfctl_usage(stderr, cmdname);
				return WF_EXIT_USAGE;
			}
		}
	}
	int want_args = cmd == CMD_ACK ? 2 : cmd == CMD_FOLLOWUP ? 3 : cmd == CMD_SILENCE ? 0 : 1;
	if (argc - optind != want_args) {
		fprintf(stderr, "wfctl: %s needs %s (try --help)\n", cmdname,
			cmd == CMD_ACK	    ? "STATION ID@VERSION"
			: cmd == CMD_FOLLOWUP ? "STATION ID TEXT"
			: cmd == CMD_CANCEL   ? "exactly one ID or ID@VERSION"
			: cmd == CMD_SILENCE  ? "options only (--channel, --expires, --reason)"
					      : "exactly one ID@VERSION");
		return WF_EXIT_USAGE;
	}
	if (wfctl_clock(&d.clock, &d.offset_ms) < 0)
		return WF_EXIT_USAGE;
	if (cmd == CMD_ACK || cmd == CMD_FOLLOWUP) {
		d.station = argv[optind++];
		if (!wf_topic_id_valid(d.station)) {
			fprintf(stderr, "wfctl: '%s' is not a station id\n", d.station);
			return WF_EXIT_USAGE;
		}
	}
	if (cmd == CMD_FOLLOWUP) {
		d.warning_id = argv[optind];
		d.text = argv[optind + 1];
		if (!wfctl_warning_id_valid(d.warning_id) || !*d.text) {
			fprintf(stderr, "wfctl: followup needs a warning id and a text\n");
			return WF_EXIT_USAGE;
		}
		if (creds_load(&cr) < 0)
			return WF_EXIT_USAGE;
		if (d.operator_id == NULL)
			d.operator_id = cr.username;
		goto identity;
	}
	if (cmd == CMD_SILENCE) {
		int64_t now = wf_clock_now_ms(&d.clock);
		if (!d.channel || (strcmp(d.channel, "broadcast") != 0 && strcmp(d.channel, "cap") != 0 &&
				   strcmp(d.channel, "sms") != 0)) {
			fprintf(stderr, "wfctl: silence add needs --channel broadcast, cap or sms (duty "
					"is never silenced)\n");
			return WF_EXIT_USAGE;
		}
		if (!d.expires || parse_expiry(d.expires, now, &d.expires_ms) < 0) {
			if (!d.expires)
				fprintf(stderr, "wfctl: silence add needs --expires WHEN\n");
			return WF_EXIT_USAGE;
		}
		if (!d.reason || !*d.reason || strchr(d.reason, '\n')) {
			fprintf(stderr, "wfctl: silence add needs --reason TEXT (one line)\n");
			return WF_EXIT_USAGE;
		}
		size_t rl = d.region ? strlen(d.region) : 0;
		if (d.region && (strspn(d.region, "0123456789") != rl ||
				 (rl != 2 && rl != 4 && rl != 6 && rl != 9 && rl != 12))) {
			fprintf(stderr, "wfctl: --region: not a prefix of 2, 4, 6, 9 or 12 digits: %s\n",
				d.region);
			return WF_EXIT_USAGE;
		}
		if (d.hazard && wf_hazard_from_string(d.hazard) <= 0) {
			fprintf(stderr, "wfctl: --hazard: not a hazard token (e.g. rainstorm): %s\n",
				d.hazard);
			return WF_EXIT_USAGE;
		}
		if (creds_load(&cr) < 0)
			return WF_EXIT_USAGE;
		if (d.operator_id == NULL)
			d.operator_id = cr.username;
		if (d.operator_id == NULL || !wf_topic_id_valid(d.operator_id)) {
			fprintf(stderr, "wfctl: --operator OP is required ([A-Za-z0-9._-], at most 64)\n");
			return WF_EXIT_USAGE;
		}
		if (d.silence_id == NULL) {
			snprintf(d.silence_id_buf, sizeof d.silence_id_buf, "sil-%s-%lld", d.operator_id,
				 (long long)(now / 1000));
			d.silence_id = d.silence_id_buf;
		}
		size_t il = strlen(d.silence_id);
		if (il == 0 || il > 128 ||
		    strspn(d.silence_id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					 "0123456789._:-") != il) {
			fprintf(stderr, "wfctl: --id: not an id ([A-Za-z0-9._:-]): %s\n", d.silence_id);
			return WF_EXIT_USAGE;
		}
		goto identity;
	}
	snprintf(target, sizeof target, "%s", argv[optind]);
	char *at = strrchr(target, '@'), *end = NULL;
	unsigned long v = at ? strtoul(at + 1, &end, 10) : 0;
	bool bad = at == NULL || at == target || end == NULL || *end || v == 0 || v > UINT32_MAX;
	if (cmd == CMD_CANCEL && at == NULL) {
		bad = !*target; /* the version comes from the release record */
		v = 0;
	}
	if (bad) {
		fprintf(stderr, "wfctl: '%s' is not ID@VERSION (e.g. wf-a-flood-410185000000-a1b2c3d4@2)\n",
			argv[optind]);
		return WF_EXIT_USAGE;
	}
	if (at)
		*at = '\0';
	d.warning_id = target;
	d.version = (unsigned)v;
	if (!wfctl_warning_id_valid(d.warning_id)) {
		fprintf(stderr, "wfctl: '%s' is not a warning id ([A-Za-z0-9._:-], at most 128)\n",
			d.warning_id);
		return WF_EXIT_USAGE;
	}
	if (creds_load(&cr) < 0)
		return WF_EXIT_USAGE;
	if (d.operator_id == NULL)
		d.operator_id = cr.username; /* the broker identity is the operator */
	if (cmd == CMD_ACK)
		goto identity;
	if (d.operator_id == NULL || !wf_topic_id_valid(d.operator_id)) {
		fprintf(stderr, "wfctl: --operator OP is required ([A-Za-z0-9._-], at most 64)\n");
		return WF_EXIT_USAGE;
	}
	if ((cmd == CMD_REJECT || cmd == CMD_CANCEL) && (d.reason == NULL || !*d.reason)) {
		fprintf(stderr, "wfctl: %s needs --reason TEXT\n", cmdname);
		return WF_EXIT_USAGE;
	}
	if (cmd == CMD_CANCEL && d.version == 0) {
		char topic[256];
		struct cancel_lookup cl = { d.warning_id, NULL };
		struct wfctl_conn cn = { host, port, cr };
		const char *filters[] = { topic };
		snprintf(topic, sizeof topic, "wf/v1/review/%s", d.warning_id);
		if (wfctl_fetch(&cn, filters, 1, (double)timeout_s, 0.5, cancel_lookup_msg,
				cancel_lookup_done, &cl) < 0) {
			fprintf(stderr, "wfctl: no answer from the broker at %s:%ld\n", host, port);
			return WFCTL_EXIT_FAILURE;
		}
		if (cl.rec == NULL) {
			fprintf(stderr, "wfctl: the dispatcher has no record of %s (wfctl list)\n",
				d.warning_id);
			return WFCTL_EXIT_NOT_FOUND;
		}
		/* nothing released: sent anyway, the dispatcher refuses and records it */
		d.version = cl.rec->released ? cl.rec->released : cl.rec->latest;
		wf__v1__warning_record__free_unpacked(cl.rec, NULL);
	}
identity:
	/* the producer id: with a broker identity it is that user (the ACL
	 * lets a user read only wf/v1/ack/<user> and write its own state) */
	if (cr.username != NULL)
		snprintf(service, sizeof service, "%s", cr.username);
	else
		snprintf(service, sizeof service, "wfctl-%s", d.station ? d.station : d.operator_id);
	if (!wf_topic_id_valid(service)) {
		fprintf(stderr, "wfctl: operator id too long\n");
		return WF_EXIT_USAGE;
	}
	d.producer = service;

	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_node_options o;
	struct wf_node_callbacks cb = { 0 };
	wfctl_node_options(&o, service, state, dir, sizeof dir, host, port, &cr, &d.clock, 1000);
	int r = loop ? wf_node_new(loop, &o, &cb, NULL, &d.node) : -ENOMEM;
	if (r < 0) {
		fprintf(stderr, "wfctl: %s: cannot open the outbox: %s\n", state, strerror(-r));
		return WF_EXIT_FAILURE;
	}
	r = wf_node_update(d.node, emit_decision, &d);
	if (r < 0) {
		if (r != -EBADMSG)
			fprintf(stderr, "wfctl: %s: %s\n", state, strerror(-r));
		wf_node_free(d.node);
		ev_loop_destroy(loop);
		return r == -EBADMSG ? WF_EXIT_USAGE : WF_EXIT_FAILURE;
	}
	/* the verdict: a second, plain connection on the operator's verdicts */
	bool want_verdict = cmd != CMD_ACK && cmd != CMD_FOLLOWUP;
	struct wf_bus *vbus = NULL;
	char vclient[64], vtopic[128];
	if (want_verdict) {
		struct wf_bus_options bo;
		struct wf_bus_callbacks vcb = { .on_message = verdict_msg };
		wf_bus_options_init(&bo);
		snprintf(vclient, sizeof vclient, "wfctl-verdict-%ld", (long)getpid());
		bo.host = host;
		bo.port = (int)port;
		bo.client_id = vclient;
		bo.clean_start = true;
		bo.session_expiry_s = 0;
		creds_bus(&cr, &bo);
		snprintf(vtopic, sizeof vtopic, "wf/v1/verdict/%s", d.operator_id);
		if (wf_bus_new(loop, &bo, &vcb, &d, &vbus) == 0) {
			wf_bus_subscribe(vbus, vtopic, 1);
			wf_bus_start(vbus);
		}
	}
	wf_node_start(d.node);
	struct drain dr = { loop, d.node, &d, want_verdict, 1 };
	ev_timer poll, limit;
	ev_timer_init(&poll, drain_cb, 0.02, 0.02);
	poll.data = &dr;
	ev_timer_start(loop, &poll);
	ev_timer_init(&limit, drain_timeout_cb, (double)timeout_s, 0.);
	ev_timer_start(loop, &limit);
	ev_run(loop, 0);
	ev_timer_stop(loop, &poll);
	ev_timer_stop(loop, &limit);
	int64_t pending = wf_node_pending(d.node);
	int status = WF_EXIT_OK;
	const char *what = cmd == CMD_APPROVE ? "approval of" : cmd == CMD_REJECT ? "rejection of"
			   : "cancel of";
	if (pending != 0) {
		fprintf(stderr, "wfctl: no acknowledgement within %ld s; it stays in %s and goes out "
				"with the next wfctl run\n", timeout_s, state);
		status = WF_EXIT_FAILURE;
	} else if (cmd == CMD_ACK) {
		printf("acknowledgement of %s@%u by %s: received by the dispatcher\n", d.warning_id,
		       d.version, d.station);
	} else if (cmd == CMD_FOLLOWUP) {
		printf("follow-up on %s by %s: received by the dispatcher\n", d.warning_id, d.station);
	} else if (d.verdict == NULL) {
		fprintf(stderr, "wfctl: acknowledged by the dispatcher, but no verdict on %s within "
				"%ld s (see wfctl audit)\n", vtopic, timeout_s);
		status = WFCTL_EXIT_NOT_FOUND;
	} else if (!d.verdict->accepted) {
		if (cmd == CMD_SILENCE)
			fprintf(stderr, "wfctl: silence %s as %s refused by the dispatcher: %s\n",
				d.silence_id, d.operator_id, d.verdict->outcome);
		else
			fprintf(stderr, "wfctl: %s %s@%u as %s refused by the dispatcher: %s\n", what,
				d.warning_id, d.version, d.operator_id, d.verdict->outcome);
		status = WFCTL_EXIT_REFUSED;
	} else if (cmd == CMD_SILENCE) {
		printf("silence %s as %s: %s\n", d.silence_id, d.operator_id, d.verdict->outcome);
	} else {
		printf("%s %s@%u as %s: acknowledged by the dispatcher: %s\n", what, d.warning_id,
		       d.version, d.operator_id, d.verdict->outcome);
	}
	if (d.verdict)
		wf__v1__audit_entry__free_unpacked(d.verdict, NULL);
	wf_bus_free(vbus);
	wf_node_stop(d.node);
	ev_timer_init(&limit, drain_timeout_cb, 1.0, 0.);
	ev_timer_start(loop, &limit);
	ev_run(loop, 0);
	wf_node_free(d.node);
	ev_loop_destroy(loop);
	return status;
}

/* ---- state: every service's liveness from the retained state topics ---- */

#define MAX_SERVICES 256

struct state_view {
	struct ev_loop *loop;
	struct wf_bus *bus;
	struct wf_codec_limits lim;
	struct wf_clock clock;
	int64_t offset_ms;  /* WF_NOW rehearsals (wfctl_clock) */
	Wf__V1__ServiceState *st[MAX_SERVICES];
	size_t n;
	ev_timer settle, limit;
	bool subscribed, json;
};

static void state_msg(void *ud, const char *topic, const void *payload, size_t len, bool retained)
{
	struct state_view *v = ud;
	struct wf_topic t;
	struct wf_codec_error why;
	Wf__V1__ServiceState *x = NULL;

	if (wf_topic_parse(topic, &t) < 0 || t.kind != WF_TOPIC_STATE || len == 0)
		return;
	/* heartbeats may be old: validate without the time window */
	struct wf_codec_limits lim = v->lim;
	lim.max_past_ms = INT64_MAX / 4;
	lim.max_future_ms = INT64_MAX / 4;
	if (wf_codec_state_unpack(payload, len, &lim, wf_clock_now_ms(&v->clock), &x, &why) < 0)
		return;
	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->st[i]->service, x->service) == 0) {
			wf_codec_state_free(v->st[i]);
			v->st[i] = x;
			return;
		}
	if (v->n < MAX_SERVICES)
		v->st[v->n++] = x;
	else
		wf_codec_state_free(x);
}

static void state_subscribed(void *ud)
{
	struct state_view *v = ud;

	/* the broker sends the retained states right after the SUBACK */
	v->subscribed = true;
	ev_timer_start(v->loop, &v->settle);
}

static void state_break(struct ev_loop *loop, ev_timer *t, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

static int cmp_state(const void *a, const void *b)
{
	return strcmp((*(Wf__V1__ServiceState *const *)a)->service,
		      (*(Wf__V1__ServiceState *const *)b)->service);
}

static int state_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' },     { "port", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },            { "username", required_argument, NULL, 'u' },
		{ "password-file", required_argument, NULL, 'P' }, { "help", no_argument, NULL, 'h' },
		WFCTL_TLS_OPTIONS, { 0 },
	};
	struct state_view v = { 0 };
	struct creds cr = { 0 };
	struct wf_bus_options bo;
	struct wf_bus_callbacks cb = { .on_message = state_msg, .on_subscribed = state_subscribed };
	const char *host = "127.0.0.1";
	long port = 1883;
	char client[64];
	int c, bad = 0;

	optind = 2;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		int r_opt;
		switch (c) {
		case 'j': v.json = true; break;
		case 'h': wfctl_usage(stdout, "state"); return WF_EXIT_OK;
		default:
			r_opt = conn_option(c, optarg, &host, &port, &cr);
			if (r_opt <= 0) {
				if (r_opt == 0)
					wfctl_usage(stderr, "state");
				return WF_EXIT_USAGE;
			}
		}
	}
	if (optind < argc || creds_load(&cr) < 0)
		return WF_EXIT_USAGE;
	if (wfctl_clock(&v.clock, &v.offset_ms) < 0)
		return WF_EXIT_USAGE;
	wf_codec_limits_init(&v.lim);
	v.loop = ev_loop_new(EVFLAG_AUTO);
	snprintf(client, sizeof client, "wfctl-state-%ld", (long)getpid());
	wf_bus_options_init(&bo);
	bo.host = host;
	bo.port = (int)port;
	bo.client_id = client;
	bo.clean_start = true;
	bo.session_expiry_s = 0;
	creds_bus(&cr, &bo);
	if (v.loop == NULL || wf_bus_new(v.loop, &bo, &cb, &v, &v.bus) < 0) {
		fprintf(stderr, "wfctl: cannot set up the connection\n");
		return WF_EXIT_FAILURE;
	}
	wf_bus_subscribe(v.bus, "wf/v1/state/+", 1);
	wf_bus_start(v.bus);
	ev_timer_init(&v.settle, state_break, 0.3, 0.);
	ev_timer_init(&v.limit, state_break, 10.0, 0.);
	ev_timer_start(v.loop, &v.limit);
	ev_run(v.loop, 0);
	if (!v.subscribed) {
		fprintf(stderr, "wfctl: no answer from the broker at %s:%ld\n", host, port);
		wf_bus_free(v.bus);
		ev_loop_destroy(v.loop);
		return WF_EXIT_FAILURE;
	}
	qsort(v.st, v.n, sizeof *v.st, cmp_state);
	int64_t now = wf_clock_now_ms(&v.clock);
	if (!v.json)
		printf("%-22s %-9s %-8s %-8s %s\n", "SERVICE", "KIND", "STATUS", "VERSION",
		       "LAST HEARTBEAT");
	for (size_t i = 0; i < v.n; i++) {
		const Wf__V1__ServiceState *x = v.st[i];
		bool online = x->status == WF__V1__SERVICE_STATUS__SERVICE_ONLINE;
		int64_t age = x->heartbeat_ms ? now - x->heartbeat_ms : -1;
		int64_t promised = (int64_t)x->heartbeat_interval_s * 1000;
		bool overdue = online && promised > 0 && age > 3 * promised;
		/* one-shot wfctl runs come and go: listed, never a failure */
		if ((!online || overdue) && !(x->kind && strcmp(x->kind, "wfctl") == 0))
			bad = 1;
		if (v.json) {
			char *js = wf_pbjson_print(&x->base);
			printf("{\"state\":%s,\"overdue\":%s}\n", js ? js : "null",
			       overdue ? "true" : "false");
			free(js);
			continue;
		}
		char hb[64];
		if (age < 0)
			snprintf(hb, sizeof hb, "-");
		else
			snprintf(hb, sizeof hb, "%.1f s ago%s", (double)age / 1000.0,
				 overdue ? " (overdue)" : "");
		printf("%-22s %-9s %-8s %-8s %s\n", x->service, x->kind ? x->kind : "",
		       online ? "online" : "OFFLINE", x->version ? x->version : "", hb);
	}
	for (size_t i = 0; i < v.n; i++)
		wf_codec_state_free(v.st[i]);
	wf_bus_free(v.bus);
	ev_loop_destroy(v.loop);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' }, { "port", required_argument, NULL, 'p' },
		{ "count", required_argument, NULL, 'n' }, { "timeout", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },        { "quiet", no_argument, NULL, 'q' },
		{ "username", required_argument, NULL, 'u' }, { "password-file", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },        WFCTL_TLS_OPTIONS, { 0 },
	};
	struct watch w = { .status = 0 };
	struct creds cr = { 0 };
	struct wf_bus_options bo;
	struct wf_bus_callbacks cb = { .on_message = on_message, .on_connection = on_connection };
	const char *host = "127.0.0.1";
	long port = 1883, timeout_s = 0;
	char client[64];
	int c;

	if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
		printf("wfctl %s\n", WF_VERSION);
		return WF_EXIT_OK;
	}
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		wfctl_usage(argc < 2 ? stderr : stdout, NULL);
		return argc < 2 ? WF_EXIT_USAGE : WF_EXIT_OK;
	}
	if (strcmp(argv[1], "cancel") == 0)
		return decide_main(argc, argv, CMD_CANCEL);
	if (strcmp(argv[1], "list") == 0)
		return list_main(argc, argv);
	if (strcmp(argv[1], "show") == 0)
		return show_main(argc, argv);
	if (strcmp(argv[1], "stats") == 0)
		return stats_main(argc, argv);
	if (strcmp(argv[1], "audit") == 0)
		return audit_main(argc, argv);
	if (strcmp(argv[1], "inject") == 0)
		return inject_main(argc, argv);
	if (strcmp(argv[1], "silence") == 0) {
		if (argc >= 3 && strcmp(argv[2], "add") == 0)
			return decide_main(argc, argv, CMD_SILENCE);
		if (argc >= 3 && strcmp(argv[2], "list") == 0)
			return silence_list_main(argc, argv);
		if (argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
			wfctl_usage(stdout, "silence");
			return WF_EXIT_OK;
		}
		fprintf(stderr, "wfctl: silence needs add or list (try wfctl silence --help)\n");
		return WF_EXIT_USAGE;
	}
	if (strcmp(argv[1], "approve") == 0)
		return decide_main(argc, argv, CMD_APPROVE);
	if (strcmp(argv[1], "reject") == 0)
		return decide_main(argc, argv, CMD_REJECT);
	if (strcmp(argv[1], "ack") == 0)
		return decide_main(argc, argv, CMD_ACK);
	if (strcmp(argv[1], "followup") == 0)
		return decide_main(argc, argv, CMD_FOLLOWUP);
	if (strcmp(argv[1], "state") == 0)
		return state_main(argc, argv);
	if (strcmp(argv[1], "watch") != 0) {
		fprintf(stderr, "wfctl: unknown command '%s' (watch, state, list, show, approve, reject, "
				"cancel, silence, audit, stats, inject, ack, followup; try --help)\n",
			argv[1]);
		return WF_EXIT_USAGE;
	}
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		char *end = NULL;
		int r_opt;
		switch (c) {
		case 'n':
			w.want = strtoul(optarg, &end, 10);
			if (*end || !*optarg || w.want == 0 || w.want > 100000000ul) {
				fprintf(stderr, "wfctl: --count: not a count in 1..100000000: %s\n", optarg);
				return WF_EXIT_USAGE;
			}
			break;
		case 't':
			if (parse_timeout(optarg, &timeout_s) < 0)
				return WF_EXIT_USAGE;
			break;
		case 'j': w.json = true; break;
		case 'q': w.quiet = true; break;
		case 'h': wfctl_usage(stdout, "watch"); return WF_EXIT_OK;
		default:
			r_opt = conn_option(c, optarg, &host, &port, &cr);
			if (r_opt <= 0) {
				if (r_opt == 0)
					wfctl_usage(stderr, "watch");
				return WF_EXIT_USAGE;
			}
		}
	}
	if (optind < argc) {
		fprintf(stderr, "wfctl: unexpected argument '%s'\n", argv[optind]);
		return WF_EXIT_USAGE;
	}
	if (creds_load(&cr) < 0)
		return WF_EXIT_USAGE;
	const char *now_env = getenv("WF_NOW");
	w.clock = wf_clock_system();
	if (now_env && *now_env) {
		int64_t at;
		if (wf_clock_parse(now_env, &at) < 0) {
			fprintf(stderr, "wfctl: WF_NOW: not an RFC 3339 time: %s\n", now_env);
			return WF_EXIT_USAGE;
		}
		w.offset_ms = at - wf_clock_now_ms(NULL);
		w.clock = wf_clock_shifted(&w.offset_ms);
	}
	const char *regions = getenv("WF_REGIONS");
	if (regions && *regions) {
		struct wf_region_error re = { 0 };
		if (wf_region_table_load(regions, &w.regions, &re) < 0)
			fprintf(stderr, "wfctl: %s: %s (showing codes)\n", regions, re.message);
	}
	wf_codec_limits_init(&w.lim);
	w.loop = ev_loop_new(EVFLAG_AUTO);
	snprintf(client, sizeof client, "wfctl-watch-%ld", (long)getpid());
	wf_bus_options_init(&bo);
	bo.host = host;
	bo.port = (int)port;
	bo.client_id = client;
	creds_bus(&cr, &bo);
	bo.clean_start = true;
	bo.session_expiry_s = 0;
	if (w.loop == NULL || wf_bus_new(w.loop, &bo, &cb, &w, &w.bus) < 0) {
		fprintf(stderr, "wfctl: cannot set up the connection\n");
		return WF_EXIT_FAILURE;
	}
	wf_bus_subscribe(w.bus, "wf/v1/warning/#", 1);
	wf_bus_subscribe(w.bus, "wf/v1/duty/+/inbox", 1);
	wf_bus_subscribe(w.bus, "wf/v1/broadcast/#", 1);
	wf_bus_subscribe(w.bus, "wf/v1/state/+", 1);
	wf_bus_start(w.bus);
	if (timeout_s) {
		ev_timer_init(&w.timeout, timeout_cb, (double)timeout_s, 0.);
		w.timeout.data = &w;
		ev_timer_start(w.loop, &w.timeout);
	}
	ev_signal_init(&w.sigint, signal_cb, SIGINT);
	ev_signal_init(&w.sigterm, signal_cb, SIGTERM);
	w.sigint.data = w.sigterm.data = &w;
	ev_signal_start(w.loop, &w.sigint);
	ev_signal_start(w.loop, &w.sigterm);
	ev_run(w.loop, 0);
	wf_bus_free(w.bus);
	ev_loop_destroy(w.loop);
	wf_region_table_free(w.regions);
	free(w.seen);
	return w.status;
}
