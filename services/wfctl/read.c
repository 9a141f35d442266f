/* read: wfctl's read commands over the dispatcher's retained views
 * (docs/protocol.md, "Dispatcher views"): list and show (WarningRecord on
 * wf/v1/review/<id>), stats (DispatchStats), audit (the records' audit
 * trails and the operators' verdicts), silence list (SilenceList). Each
 * connects with a clean session, subscribes, takes the retained messages
 * that follow the SUBACK and prints them; nothing is written. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "help.h"
#include "wf/bus.h"
#include "wf/cli.h"
#include "wf/pbjson.h"
#include "wf/topic.h"
#include "wfctl.h"

#define MAX_RECORDS 4096

/* ---- reading retained topics ---- */

struct fetch {
	struct ev_loop *loop;
	void (*fn)(void *ud, const char *topic, const void *payload, size_t len);
	bool (*done)(void *ud);
	void *ud;
	bool subscribed;
	double quiet_s;
	ev_timer quiet, limit;
};

static void fetch_msg(void *ud, const char *topic, const void *payload, size_t len, bool retained)
{
	struct fetch *f = ud;
	f->fn(f->ud, topic, payload, len);
	if (f->done && f->done(f->ud)) {
		ev_break(f->loop, EVBREAK_ALL);
		return;
	}
	if (f->subscribed) {
		/* quiet for QUIET_S after the last one: all retained ones are in */
		ev_timer_stop(f->loop, &f->quiet);
		ev_timer_set(&f->quiet, f->quiet_s, 0.);
		ev_timer_start(f->loop, &f->quiet);
	}
}

static void fetch_subscribed(void *ud)
{
	struct fetch *f = ud;
	f->subscribed = true;
	ev_timer_start(f->loop, &f->quiet);
}

static void fetch_break(struct ev_loop *loop, ev_timer *t, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

int wfctl_fetch(const struct wfctl_conn *c, const char *const *filters, size_t n,
		double timeout_s, double quiet_s,
		void (*fn)(void *ud, const char *topic, const void *payload, size_t len),
		bool (*done)(void *ud), void *ud)
{
	struct fetch f;
	memset(&f, 0, sizeof f);
	f.fn = fn;
	f.done = done;
	f.ud = ud;
	f.quiet_s = quiet_s;
	struct wf_bus_options bo;
	struct wf_bus_callbacks cb = { .on_message = fetch_msg, .on_subscribed = fetch_subscribed };
	struct wf_bus *bus = NULL;
	char client[64];

	f.loop = ev_loop_new(EVFLAG_AUTO);
	if (f.loop == NULL)
		return -ENOMEM;
	snprintf(client, sizeof client, "wfctl-read-%ld", (long)getpid());
	wf_bus_options_init(&bo);
	bo.host = c->host;
	bo.port = (int)c->port;
	bo.client_id = client;
	bo.clean_start = true;
	bo.session_expiry_s = 0;
	creds_bus(&c->cr, &bo);
	int r = wf_bus_new(f.loop, &bo, &cb, &f, &bus);
	if (r < 0) {
		ev_loop_destroy(f.loop);
		return r;
	}
	for (size_t i = 0; i < n; i++)
		wf_bus_subscribe(bus, filters[i], 1);
	wf_bus_start(bus);
	ev_timer_init(&f.quiet, fetch_break, quiet_s, 0.);
	ev_timer_init(&f.limit, fetch_break, timeout_s, 0.);
	ev_timer_start(f.loop, &f.limit);
	ev_run(f.loop, 0);
	ev_timer_stop(f.loop, &f.quiet);
	ev_timer_stop(f.loop, &f.limit);
	wf_bus_free(bus);
	ev_loop_destroy(f.loop);
	return f.subscribed || (done && done(ud)) ? 0 : -ETIMEDOUT;
}

/* The options of a read command: CONN, --json, and the flags in EXTRA
 * ("all", "operator"). Returns 1 to go on, or an exit status + 100. */
struct read_opts {
	struct wfctl_conn conn;
	long timeout_s;
	bool json, all;
	const char *operator_id;
};

static int read_options(int argc, char **argv, int first, const char *cmd, bool takes_all,
			bool takes_operator, struct read_opts *o)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' },     { "port", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },            { "username", required_argument, NULL, 'u' },
		{ "password-file", required_argument, NULL, 'P' }, { "all", no_argument, NULL, 'a' },
		{ "operator", required_argument, NULL, 'o' },  { "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },            WFCTL_TLS_OPTIONS, { 0 },
	};
	int c;
	memset(o, 0, sizeof *o);
	o->conn.host = "127.0.0.1";
	o->conn.port = 1883;
	o->timeout_s = 10;
	optind = first;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		int r;
		switch (c) {
		case 'j': o->json = true; break;
		case 'a':
			if (!takes_all)
				goto bad;
			o->all = true;
			break;
		case 'o':
			if (!takes_operator)
				goto bad;
			o->operator_id = optarg;
			break;
		case 't':
			if (parse_timeout(optarg, &o->timeout_s) < 0)
				return 100 + WFCTL_EXIT_USAGE;
			break;
		case 'h': wfctl_usage(stdout, cmd); return 100 + WFCTL_EXIT_OK;
		default:
			r = conn_option(c, optarg, &o->conn.host, &o->conn.port, &o->conn.cr);
			if (r == 0)
				goto bad;
			if (r < 0)
				return 100 + WFCTL_EXIT_USAGE;
		}
	}
	if (creds_load(&o->conn.cr) < 0)
		return 100 + WFCTL_EXIT_USAGE;
	return 1;
bad:
	wfctl_usage(stderr, cmd);
	return 100 + WFCTL_EXIT_USAGE;
}

/* ---- collecting WarningRecords ---- */

struct records {
	Wf__V1__WarningRecord *v[MAX_RECORDS];
	size_t n;
	const char *only;   /* show: this id */
};

static void records_msg(void *ud, const char *topic, const void *payload, size_t len)
{
	struct records *rs = ud;
	if (strncmp(topic, "wf/v1/review/", 13) != 0 || len == 0)
		return; /* an empty retained payload removes a record */
	Wf__V1__WarningRecord *r = wf__v1__warning_record__unpack(NULL, len, payload);
	if (r == NULL || !r->warning_id || strcmp(topic + 13, r->warning_id) != 0 ||
	    (rs->only && strcmp(r->warning_id, rs->only) != 0)) {
		if (r)
			wf__v1__warning_record__free_unpacked(r, NULL);
		return;
	}
	for (size_t i = 0; i < rs->n; i++)
		if (strcmp(rs->v[i]->warning_id, r->warning_id) == 0) {
			wf__v1__warning_record__free_unpacked(rs->v[i], NULL);
			rs->v[i] = r;
			return;
		}
	if (rs->n < MAX_RECORDS)
		rs->v[rs->n++] = r;
	else
		wf__v1__warning_record__free_unpacked(r, NULL);
}

static bool records_one(void *ud)
{
	struct records *rs = ud;
	return rs->only != NULL && rs->n > 0;
}

static void records_free(struct records *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		wf__v1__warning_record__free_unpacked(rs->v[i], NULL);
	rs->n = 0;
}

static int cmp_record(const void *a, const void *b)
{
	const Wf__V1__WarningRecord *x = *(Wf__V1__WarningRecord *const *)a;
	const Wf__V1__WarningRecord *y = *(Wf__V1__WarningRecord *const *)b;
	if (x->level != y->level)
		return (int)x->level - (int)y->level; /* I (red) first */
	return strcmp(x->warning_id, y->warning_id);
}

static const char *review_name(int r)
{
	return enum_name(&wf__v1__review_state__descriptor, r, 7);
}

static void area_of(const struct wf_region_table *t, const Wf__V1__WarningRecord *r, char *buf,
		    size_t size)
{
	if (r->n_regions == 0) {
		snprintf(buf, size, "-");
		return;
	}
	snprintf(buf, size, "%s%s", wfctl_area_name(t, r->regions[0]), r->n_regions > 1 ? "等" : "");
	if (r->n_regions > 1) {
		size_t l = strlen(buf);
		snprintf(buf + l, size - l, "%zu地", r->n_regions);
	}
}

/* S padded with blanks to WIDTH terminal columns (CJK characters take two). */
static const char *padded(const char *s, int width, char *buf, size_t size)
{
	int cols = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p & 0xC0) == 0x80)
			continue;
		cols += *p >= 0xE1 ? 2 : 1; /* U+1100 and up: wide enough for Chinese */
	}
	snprintf(buf, size, "%s%*s", s, cols < width ? width - cols : 0, "");
	return buf;
}

static void fetch_fail(const struct read_opts *o)
{
	fprintf(stderr, "wfctl: no answer from the broker at %s:%ld\n", o->conn.host, o->conn.port);
}

int list_main(int argc, char **argv)
{
	struct read_opts o;
	int r = read_options(argc, argv, 2, "list", true, false, &o);
	if (r != 1)
		return r - 100;
	if (optind < argc) {
		fprintf(stderr, "wfctl: list takes no argument '%s' (try --help)\n", argv[optind]);
		return WFCTL_EXIT_USAGE;
	}
	static struct records rs;
	const char *filters[] = { "wf/v1/review/+" };
	if (wfctl_fetch(&o.conn, filters, 1, (double)o.timeout_s, 0.4, records_msg, NULL, &rs) < 0) {
		fetch_fail(&o);
		return WFCTL_EXIT_FAILURE;
	}
	qsort(rs.v, rs.n, sizeof rs.v[0], cmp_record);
	struct wf_region_table *regions = o.json ? NULL : wfctl_regions();
	if (!o.json)
		printf("%-40s %4s %-6s %-14s %-16s %-9s %-5s %s\n", "ID", "VER", "LEVEL", "HAZARD",
		       "AREA", "REVIEW", "ACKS", "PUBLIC");
	for (size_t i = 0; i < rs.n; i++) {
		const Wf__V1__WarningRecord *x = rs.v[i];
		if (!o.all && !x->active)
			continue;
		if (o.json) {
			wfctl_print_json("record", &x->base);
			continue;
		}
		char area[256], pub[64], acks[24];
		area_of(regions, x, area, sizeof area);
		if (x->cancelled && x->released == 0)
			snprintf(pub, sizeof pub, "cancelled v%u by %s", x->cancelled_version,
				 x->cancelled_by ? x->cancelled_by : "?");
		else if (x->released)
			snprintf(pub, sizeof pub, "v%u%s", x->released, x->active ? "" : " (ended)");
		else
			snprintf(pub, sizeof pub, "-");
		snprintf(acks, sizeof acks, "%u/%u", x->acks, x->notices);
		char pad[300];
		printf("%-40s %4u %s %-14s %s %-9s %-5s %s\n", x->warning_id, x->latest,
		       colour(x->level), enum_name(&wf__v1__hazard__descriptor, x->hazard, 7),
		       padded(area, 16, pad, sizeof pad), review_name(x->review), acks, pub);
	}
	fflush(stdout);
	records_free(&rs);
	wf_region_table_free(regions);
	return WFCTL_EXIT_OK;
}

void wfctl_print_audit(FILE *out, const Wf__V1__AuditEntry *a)
{
	char ts[32], what[200];
	if (a->warning_id && *a->warning_id)
		snprintf(what, sizeof what, "%s@%u", a->warning_id, a->version);
	else
		snprintf(what, sizeof what, "-");
	fprintf(out, "%s  %-8s %-12s %-40s %s: %s%s%s\n", wfctl_time(a->at_ms, ts, sizeof ts),
		a->action, a->operator_, what, a->accepted ? "accepted" : "REFUSED",
		a->outcome ? a->outcome : "", a->detail && *a->detail ? " -- " : "",
		a->detail ? a->detail : "");
}

static void print_record(const struct wf_region_table *regions, const Wf__V1__WarningRecord *x)
{
	char ts[32], area[256];
	area_of(regions, x, area, sizeof area);
	printf("%s  v%u  %s %s  %s  %s\n", x->warning_id, x->latest, colour(x->level),
	       enum_name(&wf__v1__hazard__descriptor, x->hazard, 7),
	       enum_name(&wf__v1__msg_type__descriptor, x->msg_type, 9),
	       enum_name(&wf__v1__status__descriptor, x->status, 7));
	printf("  headline:  %s\n", x->headline && *x->headline ? x->headline : "-");
	printf("  area:      %s", area);
	for (size_t i = 0; i < x->n_regions && i < 8; i++)
		printf("%s%s", i ? ", " : " (", x->regions[i]);
	printf("%s\n", x->n_regions > 8 ? ", ...)" : x->n_regions ? ")" : "");
	printf("  review:    %s; public: %s; %s until %s\n", review_name(x->review),
	       x->released ? "released" : "nothing", x->active ? "active" : "ended",
	       wfctl_time(x->expires_ms, ts, sizeof ts));
	if (x->released)
		printf("  released:  v%u\n", x->released);
	if (x->cancelled)
		printf("  cancelled: v%u by %s at %s: %s\n", x->cancelled_version, x->cancelled_by,
		       wfctl_time(x->cancelled_ms, ts, sizeof ts), x->cancel_reason);
	printf("  duty:      %u of %u station(s) acknowledged the latest version\n", x->acks,
	       x->notices);
	printf("why (latest version):\n  rules:");
	for (size_t i = 0; i < x->n_rule_ids; i++)
		printf("%s%s", i ? ", " : " ", x->rule_ids[i]);
	printf("%s\n  events (%zu):\n", x->n_rule_ids ? "" : " -", x->n_event_ids);
	for (size_t i = 0; i < x->n_event_ids; i++)
		printf("    %s\n", x->event_ids[i]);
	printf("versions:\n");
	for (size_t i = 0; i < x->n_versions; i++) {
		const Wf__V1__VersionRecord *v = x->versions[i];
		printf("  v%-3u %s  %-6s %-6s %-9s need %u, approved by", v->version,
		       wfctl_time(v->sent_ms, ts, sizeof ts),
		       enum_name(&wf__v1__msg_type__descriptor, v->msg_type, 9), colour(v->level),
		       review_name(v->review), v->required);
		for (size_t k = 0; k < v->n_approvers; k++)
			printf("%s%s", k ? ", " : " ", v->approvers[k]);
		printf("%s%s%s  (%u regions, %u events)\n", v->n_approvers ? "" : " nobody",
		       v->rejected_by && *v->rejected_by ? "; rejected by " : "",
		       v->rejected_by ? v->rejected_by : "", v->n_regions, v->n_event_ids);
	}
	printf("deliveries:\n");
	for (size_t i = 0; i < x->n_deliveries; i++) {
		const Wf__V1__DeliveryRecord *d = x->deliveries[i];
		printf("  v%-3u %s  %-9s %-22s %-14s %s\n", d->version,
		       wfctl_time(d->at_ms, ts, sizeof ts), d->channel, d->target, d->state,
		       d->detail ? d->detail : "");
	}
	printf("audit:\n");
	if (x->n_audit == 0)
		printf("  (no operator action yet)\n");
	for (size_t i = 0; i < x->n_audit; i++) {
		printf("  ");
		wfctl_print_audit(stdout, x->audit[i]);
	}
}

int show_main(int argc, char **argv)
{
	struct read_opts o;
	int r = read_options(argc, argv, 2, "show", false, false, &o);
	if (r != 1)
		return r - 100;
	if (argc - optind != 1) {
		fprintf(stderr, "wfctl: show needs exactly one warning ID (try --help)\n");
		return WFCTL_EXIT_USAGE;
	}
	const char *id = argv[optind];
	char topic[256];
	if (!wfctl_warning_id_valid(id)) {
		fprintf(stderr, "wfctl: '%s' is not a warning id\n", id);
		return WFCTL_EXIT_USAGE;
	}
	snprintf(topic, sizeof topic, "wf/v1/review/%s", id);
	static struct records rs;
	rs.only = id;
	const char *filters[] = { topic };
	if (wfctl_fetch(&o.conn, filters, 1, (double)o.timeout_s, 0.5, records_msg, records_one,
			&rs) < 0) {
		fetch_fail(&o);
		return WFCTL_EXIT_FAILURE;
	}
	if (rs.n == 0) {
		fprintf(stderr, "wfctl: the dispatcher has no record of %s\n", id);
		return WFCTL_EXIT_NOT_FOUND;
	}
	if (o.json) {
		wfctl_print_json("record", &rs.v[0]->base);
	} else {
		struct wf_region_table *regions = wfctl_regions();
		print_record(regions, rs.v[0]);
		wf_region_table_free(regions);
	}
	fflush(stdout);
	records_free(&rs);
	return WFCTL_EXIT_OK;
}

/* ---- stats ---- */

struct stats_view {
	Wf__V1__DispatchStats *v[16];
	char producer[16][80];
	size_t n;
};

static void stats_msg(void *ud, const char *topic, const void *payload, size_t len)
{
	struct stats_view *s = ud;
	if (strncmp(topic, "wf/v1/stats/", 12) != 0 || len == 0 || s->n >= 16)
		return;
	Wf__V1__DispatchStats *x = wf__v1__dispatch_stats__unpack(NULL, len, payload);
	if (x)
		s->v[s->n++] = x;
}

static void print_latency(const char *what, const Wf__V1__Latency *l)
{
	if (l == NULL || l->count == 0) {
		printf("  %-34s -\n", what);
		return;
	}
	printf("  %-34s n=%llu  mean %.0f ms  p50 <= %lld ms  p95 <= %lld ms  max %lld ms\n", what,
	       (unsigned long long)l->count, (double)l->sum_ms / (double)l->count,
	       (long long)l->p50_ms, (long long)l->p95_ms, (long long)l->max_ms);
}

int stats_main(int argc, char **argv)
{
	struct read_opts o;
	int r = read_options(argc, argv, 2, "stats", false, false, &o);
	if (r != 1)
		return r - 100;
	if (optind < argc) {
		fprintf(stderr, "wfctl: stats takes no argument '%s'\n", argv[optind]);
		return WFCTL_EXIT_USAGE;
	}
	static struct stats_view sv;
	const char *filters[] = { "wf/v1/stats/+" };
	if (wfctl_fetch(&o.conn, filters, 1, (double)o.timeout_s, 0.4, stats_msg, NULL, &sv) < 0) {
		fetch_fail(&o);
		return WFCTL_EXIT_FAILURE;
	}
	if (sv.n == 0) {
		fprintf(stderr, "wfctl: no dispatcher has published statistics yet\n");
		return WFCTL_EXIT_NOT_FOUND;
	}
	for (size_t i = 0; i < sv.n; i++) {
		const Wf__V1__DispatchStats *x = sv.v[i];
		char ts[32], ts2[32];
		if (o.json) {
			wfctl_print_json("stats", &x->base);
			continue;
		}
		printf("%s: since %s (updated %s)\n", x->producer ? x->producer : "?",
		       wfctl_time(x->since_ms, ts, sizeof ts), wfctl_time(x->updated_ms, ts2, sizeof ts2));
		printf("  versions received %llu, released %llu, cancelled by operators %llu\n",
		       (unsigned long long)x->versions, (unsigned long long)x->released,
		       (unsigned long long)x->cancelled);
		printf("per agency (versions citing its events):\n");
		for (size_t k = 0; k < x->n_agencies; k++) {
			const Wf__V1__AgencyStats *a = x->agencies[k];
			char what[64];
			snprintf(what, sizeof what, "%-7s versions %llu, released %llu;",
				 a->agency ? enum_name(&wf__v1__agency__descriptor, a->agency, 7) : "none",
				 (unsigned long long)a->versions, (unsigned long long)a->released);
			print_latency(what, a->release_latency);
		}
		printf("per channel (delivery records by state):\n");
		for (size_t k = 0; k < x->n_channels; k++) {
			const Wf__V1__ChannelStats *c = x->channels[k];
			printf("  %-10s", c->channel);
			for (size_t j = 0; j < c->n_states; j++)
				printf(" %s %llu", c->states[j]->name, (unsigned long long)c->states[j]->n);
			printf("\n");
		}
		printf("latencies:\n");
		print_latency("version made -> released", x->release_latency);
		print_latency("notice -> first acknowledgement", x->ack_latency);
		printf("failures:");
		for (size_t k = 0; k < x->n_failures; k++)
			printf(" %s %llu", x->failures[k]->name, (unsigned long long)x->failures[k]->n);
		printf("\n");
	}
	fflush(stdout);
	for (size_t i = 0; i < sv.n; i++)
		wf__v1__dispatch_stats__free_unpacked(sv.v[i], NULL);
	return WFCTL_EXIT_OK;
}

/* ---- audit ---- */

struct audit_view {
	struct records rs;
	Wf__V1__OperatorVerdicts *ops[256];
	size_t n_ops;
};

static void audit_msg(void *ud, const char *topic, const void *payload, size_t len)
{
	struct audit_view *a = ud;
	if (strncmp(topic, "wf/v1/verdict/", 14) == 0 && len > 0 && a->n_ops < 256) {
		Wf__V1__OperatorVerdicts *v = wf__v1__operator_verdicts__unpack(NULL, len, payload);
		if (v)
			a->ops[a->n_ops++] = v;
		return;
	}
	records_msg(&a->rs, topic, payload, len);
}

static int cmp_audit(const void *a, const void *b)
{
	const Wf__V1__AuditEntry *x = *(Wf__V1__AuditEntry *const *)a;
	const Wf__V1__AuditEntry *y = *(Wf__V1__AuditEntry *const *)b;
	if (x->at_ms != y->at_ms)
		return x->at_ms < y->at_ms ? -1 : 1;
	int c = strcmp(x->producer, y->producer);
	return c ? c : x->seq < y->seq ? -1 : x->seq > y->seq;
}

int audit_main(int argc, char **argv)
{
	struct read_opts o;
	int r = read_options(argc, argv, 2, "audit", false, true, &o);
	if (r != 1)
		return r - 100;
	if (argc - optind > 1) {
		fprintf(stderr, "wfctl: audit takes at most one warning ID\n");
		return WFCTL_EXIT_USAGE;
	}
	const char *id = optind < argc ? argv[optind] : NULL;
	static struct audit_view av;
	char topic[256];
	snprintf(topic, sizeof topic, "wf/v1/review/%s", id ? id : "+");
	const char *filters[] = { topic, "wf/v1/verdict/+" };
	if (id && !wfctl_warning_id_valid(id)) {
		fprintf(stderr, "wfctl: '%s' is not a warning id\n", id);
		return WFCTL_EXIT_USAGE;
	}
	if (wfctl_fetch(&o.conn, filters, 2, (double)o.timeout_s, 0.4, audit_msg, NULL, &av) < 0) {
		fetch_fail(&o);
		return WFCTL_EXIT_FAILURE;
	}
	size_t cap = 64 * av.rs.n + 16 * av.n_ops + 1, n = 0;
	Wf__V1__AuditEntry **all = calloc(cap, sizeof *all);
	if (!all)
		return WFCTL_EXIT_FAILURE;
	for (size_t i = 0; i < av.rs.n; i++)
		for (size_t k = 0; k < av.rs.v[i]->n_audit && n < cap; k++)
			all[n++] = av.rs.v[i]->audit[k];
	for (size_t i = 0; i < av.n_ops; i++)
		for (size_t k = 0; k < av.ops[i]->n_entries && n < cap; k++)
			all[n++] = av.ops[i]->entries[k];
	qsort(all, n, sizeof *all, cmp_audit);
	for (size_t i = 0; i < n; i++) {
		const Wf__V1__AuditEntry *a = all[i];
		/* the same entry from a record and from a verdict list */
		if (i > 0 && cmp_audit(&all[i - 1], &all[i]) == 0)
			continue;
		if (id && strcmp(a->warning_id, id) != 0)
			continue;
		if (o.operator_id && strcmp(a->operator_, o.operator_id) != 0)
			continue;
		if (o.json)
			wfctl_print_json("audit", &a->base);
		else
			wfctl_print_audit(stdout, a);
	}
	fflush(stdout);
	free(all);
	records_free(&av.rs);
	for (size_t i = 0; i < av.n_ops; i++)
		wf__v1__operator_verdicts__free_unpacked(av.ops[i], NULL);
	return WFCTL_EXIT_OK;
}

/* ---- silence list ---- */

struct silence_view {
	Wf__V1__SilenceList *v[16];
	size_t n;
};

static void silences_msg(void *ud, const char *topic, const void *payload, size_t len)
{
	struct silence_view *s = ud;
	if (strncmp(topic, "wf/v1/silences/", 15) != 0 || len == 0 || s->n >= 16)
		return;
	Wf__V1__SilenceList *x = wf__v1__silence_list__unpack(NULL, len, payload);
	if (x)
		s->v[s->n++] = x;
}

int silence_list_main(int argc, char **argv)
{
	struct read_opts o;
	int r = read_options(argc, argv, 3, "silence", false, false, &o);
	if (r != 1)
		return r - 100;
	if (optind < argc) {
		fprintf(stderr, "wfctl: silence list takes no argument '%s'\n", argv[optind]);
		return WFCTL_EXIT_USAGE;
	}
	static struct silence_view sv;
	const char *filters[] = { "wf/v1/silences/+" };
	if (wfctl_fetch(&o.conn, filters, 1, (double)o.timeout_s, 0.4, silences_msg, NULL, &sv) < 0) {
		fetch_fail(&o);
		return WFCTL_EXIT_FAILURE;
	}
	struct wf_clock clock;
	int64_t off = 0;
	if (wfctl_clock(&clock, &off) < 0)
		return WFCTL_EXIT_USAGE;
	int64_t now = wf_clock_now_ms(&clock);
	if (!o.json)
		printf("%-28s %-9s %-12s %-12s %-15s %-12s %s\n", "ID", "CHANNEL", "REGION", "HAZARD",
		       "EXPIRES", "BY", "REASON");
	for (size_t i = 0; i < sv.n; i++)
		for (size_t k = 0; k < sv.v[i]->n_silences; k++) {
			const Wf__V1__SilenceRecord *x = sv.v[i]->silences[k];
			char ts[32];
			if (x->expires_ms <= now)
				continue;
			if (o.json) {
				wfctl_print_json("silence", &x->base);
				continue;
			}
			printf("%-28s %-9s %-12s %-12s %-15s %-12s %s\n", x->id, x->channel,
			       x->region_prefix && *x->region_prefix ? x->region_prefix : "*",
			       x->hazard ? enum_name(&wf__v1__hazard__descriptor, x->hazard, 7) : "*",
			       wfctl_time(x->expires_ms, ts, sizeof ts),
			       x->operator_ && *x->operator_ ? x->operator_ : "(routing file)", x->reason);
		}
	fflush(stdout);
	for (size_t i = 0; i < sv.n; i++)
		wf__v1__silence_list__free_unpacked(sv.v[i], NULL);
	return WFCTL_EXIT_OK;
}
