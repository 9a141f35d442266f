/* wf-soak: the pipeline under a realistic load for a long time.
 *
 *   five producer nodes in this process, one per agency (wf-met-soak ...
 *   wf-police-soak: the adapters' node, durable commits), -> a private
 *   mosquitto -> the wf-fusion daemon ([fusion] clock = events, ordered) ->
 *   the wf-dispatch daemon (release policy, duty stations, broadcast state)
 *   and a consumer node on its own thread (durable) that takes every warning
 *   and, as the duty stations' console, acknowledges every duty notice that
 *   needs it --ack-after seconds (30) after it arrived and, as two operators
 *   (op-soak-a, op-soak-b), approves every version it is told is pending
 *   review at once, for --duration seconds; levels I and II also go as CAP
 *   files to a broadcast platform in this process (tests/harness/platform.h,
 *   every 100th POST answered 503).
 *
 * Load: every second one tick of --rate events spread over the five agencies
 * and Henan's counties (each (agency, county) a report stream: ALERT, then
 * UPDATEs naming the previous report, now and then a CANCEL; levels walk
 * IV..I; reports expire after 10-30 min), and every --burst-every seconds a
 * burst tick of --burst more. In a tick an agency reports only in the
 * counties where (county + tick) % 5 is its index, every event of the tick
 * has the tick's time as observed_ms and expiries fall half-way between
 * ticks; the next tick starts once the previous one is acknowledged. That
 * keeps the warnings deterministic (the five producers' interleaving within
 * a tick cannot change them), so at the end the consumer's versions are
 * compared one by one with `wf-fusion --replay` of the same events.
 *
 * Every --sample seconds it prints one progress line: elapsed time, events,
 * warning versions, the window's event -> warning latency (p50/p99/max, steady
 * and burst events separately; the latency of an event is from its publish
 * to the first warning version naming it in event_ids), each process's VmRSS
 * (/proc/PID/status) and each LMDB data file's size.
 *
 * At the end it checks, and exits 1 if one is missed:
 *   - RSS growth of each process from the end of the warm-up to the end <
 *     --rss-limit MiB (5). The warm-up (--warmup) is by default the retention
 *     horizon (dsp_horizon_s: about 43 min) in a run at least 15 min longer:
 *     until then dispatch's store and the broker's retained records fill up
 *     with the warnings of the horizon, which is the retention working, not a
 *     leak (that growth is printed, from 10% of the run on, not checked); in
 *     a shorter run, 10% of the duration (at least one sample), and then
 *     only wf-fusion is checked: wf-dispatch's and the broker's growth is
 *     printed as still filling the window;
 *   - LMDB: the outboxes drained, and the data files bounded: fusion's by the
 *     event records its 8-day retention keeps (every event of the run) times
 *     --lmdb-per-event bytes (4096); dispatch's by its retention ([dispatch]
 *     retain = 10m here): in a run of a retention horizon + 15 min or more,
 *     the file at the end <= 1.25 x the file one horizon in, + 1 MiB
 *     (it stops growing once the first warnings are purged), and never more
 *     than every version of the run times --lmdb-per-event; the others <
 *     --lmdb-limit MiB (64);
 *   - lost: every event acknowledged (the producers' outboxes empty), the
 *     consumer's warning versions exactly replay mode's (none missing,
 *     duplicated, different or unexpected), fusion's outbox floor past the last
 *     version (every version acknowledged), no dead letter from fusion or
 *     dispatch (but approvals of a version already superseded: refused by
 *     design), every CAP file POSTed and none still queued, both daemons
 *     still running;
 *   - p99 steady: the steady events' p99 of every window from 10% of the run <=
 *     max(--p99-factor (3) x the median window's p99, --p99-floor ms (50)).
 * Bounded: --duration <= 24 h; the end waits at most 120 s. */
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "platform.h"
#include "proc.h"
#include "util.h"
#include "wf/clock.h"
#include "wf/node.h"
#include "wf/pbjson.h"

#ifndef SOAK_SOURCE_ROOT
#define SOAK_SOURCE_ROOT "."
#endif
#ifndef SOAK_BUILD_ROOT
#define SOAK_BUILD_ROOT "."
#endif

#define N_AG 5
#define MAX_COUNTIES 200
#define PER_TXN 500
#define MAX_WINDOWS 20000
#define SOAK_OPERATOR_A "op-soak-a"
#define SOAK_OPERATOR_B "op-soak-b"
#define SOAK_POST_FAIL_EVERY 100  /* the broadcast platform answers 503 to every 100th POST */

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);
	if (!p)
		wf_test_die("calloc");
	return p;
}

/* ---- options ---- */

struct cfg {
	double duration, sample, warmup;
	double fill_from; /* the retention window's filling is printed from here */
	int rate, burst;
	double burst_every;
	double rss_limit_mib, lmdb_limit_mib, lmdb_per_event;
	double p99_factor, p99_floor_ms;
	double ack_after; /* s; < 0: no station acknowledges */
	bool keep;
};

/* ---- agencies and their hazards ---- */

static const struct agency {
	const char *name;
	Wf__V1__Agency agency;
	Wf__V1__Hazard hazards[3];
	int n_hazards;
	const char *text;
} agencies[N_AG] = {
	{ "met", WF__V1__AGENCY__AGENCY_MET,
	  { WF__V1__HAZARD__HAZARD_RAINSTORM, WF__V1__HAZARD__HAZARD_GALE, WF__V1__HAZARD__HAZARD_HEAT },
	  3, "气象观测" },
	{ "water", WF__V1__AGENCY__AGENCY_WATER,
	  { WF__V1__HAZARD__HAZARD_FLOOD, WF__V1__HAZARD__HAZARD_RESERVOIR }, 2, "水位站" },
	{ "geo", WF__V1__AGENCY__AGENCY_GEO,
	  { WF__V1__HAZARD__HAZARD_LANDSLIDE, WF__V1__HAZARD__HAZARD_DEBRIS_FLOW }, 2, "地灾监测" },
	{ "fire", WF__V1__AGENCY__AGENCY_FIRE,
	  { WF__V1__HAZARD__HAZARD_FOREST_FIRE, WF__V1__HAZARD__HAZARD_URBAN_FIRE }, 2, "火情" },
	{ "police", WF__V1__AGENCY__AGENCY_POLICE,
	  { WF__V1__HAZARD__HAZARD_TRAFFIC, WF__V1__HAZARD__HAZARD_CROWD }, 2, "警情" },
};

static char counties[MAX_COUNTIES][13];
static int n_counties;

static void load_counties(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512];
	if (!f)
		wf_test_die(path);
	while (n_counties < MAX_COUNTIES && fgets(line, sizeof line, f))
		if (strncmp(line, "41", 2) == 0 && strstr(line, ",county") && line[12] == ',')
			snprintf(counties[n_counties++], 13, "%.12s", line);
	fclose(f);
	if (n_counties < 50) {
		fprintf(stderr, "wf-soak: %s: only %d Henan counties\n", path, n_counties);
		exit(1);
	}
}

/* ---- the generator ---- */

struct stream {          /* one (agency, county) report stream */
	long last;           /* index of its valid report, -1: none */
	int64_t last_expires;
	int level;           /* 1..4 = IV..I */
	int hazard;
};

static const Wf__V1__Level level_of[5] = { WF__V1__LEVEL__LEVEL_NONE, WF__V1__LEVEL__LEVEL_IV,
					   WF__V1__LEVEL__LEVEL_III, WF__V1__LEVEL__LEVEL_II,
					   WF__V1__LEVEL__LEVEL_I };

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
	uint64_t x = rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* one planned event: all that is needed to build it again */
struct plan {
	long idx;
	int ag, county;
	Wf__V1__MsgType type;
	int level, hazard;
	long ref;
	int64_t observed, expires;
};

static void build_event(const struct plan *p, Wf__V1__Event *ev, char *id, size_t idlen, char *ref,
			size_t reflen, char **refs)
{
	wf__v1__event__init(ev);
	snprintf(id, idlen, "soak-%08ld", p->idx);
	ev->id = id;
	ev->agency = agencies[p->ag].agency;
	ev->hazard = agencies[p->ag].hazards[p->hazard];
	ev->region = counties[p->county];
	ev->level = p->type == WF__V1__MSG_TYPE__MSG_TYPE_CANCEL ? WF__V1__LEVEL__LEVEL_NONE
								: level_of[p->level];
	ev->observed_ms = p->observed;
	ev->issued_ms = p->observed;
	ev->expires_ms = p->expires;
	ev->status = WF__V1__STATUS__STATUS_ACTUAL;
	ev->msg_type = p->type;
	ev->text = (char *)agencies[p->ag].text;
	if (p->ref >= 0) {
		snprintf(ref, reflen, "soak-%08ld", p->ref);
		refs[0] = ref;
		ev->references = refs;
		ev->n_references = 1;
	}
}

/* ---- state ---- */

struct window {
	double t_end;
	long events, versions;
	long n_steady, n_burst;
	double p50, p99, max, bp99, bmax;
	long rss_kib[8], anon_kib[8];
	double cpu_s[8];
	long long lmdb[8];
};

struct soak {
	const struct cfg *c;
	struct ev_loop *loop;
	struct wf_test_broker *broker;
	char *dir;
	int port;
	struct wf_node *prod[N_AG];
	uint64_t seq[N_AG];
	struct stream *streams; /* [N_AG][n_counties] */
	/* events */
	long cap, n_events;
	struct plan *plans;
	double *sent;        /* monotonic publish time; < 0 once a version named it */
	unsigned char *burst; /* 1: a burst event */
	FILE *jsonl;
	long tick;
	int64_t last_tick_ms;
	long ticks_delayed;
	double t_start, t_next_burst;
	bool stopping;
	/* processes */
	pid_t fusion, dispatch;
	char *fusion_log, *dispatch_log;
	/* consumer thread; what it shares is under mu */
	pthread_mutex_t mu;
	pthread_t wthread;
	bool wthread_started, wready;
	atomic_bool wstop;
	struct ev_loop *wloop;
	ev_timer wpoll;
	struct wf_node *w;
	long n_versions;
	char **keys;        /* "id@version" */
	uint64_t *hashes;   /* of the comparable JSON */
	long keys_cap;
	uint64_t fusion_last_seq, fusion_floor;
	bool fusion_online, dispatch_online;
	long deadletters;
	char deadletter_first[512];
	double *lat_steady, *lat_burst; /* this window's samples */
	long n_ls, n_lb, cap_ls, cap_lb;
	long lat_unknown;
	FILE *received;
	/* the duty stations' console (on the consumer thread; the counters under
	 * mu): notices with a deadline, acknowledged --ack-after seconds after
	 * they arrived */
	struct pending_ack {
		char station[65], id[129];
		uint32_t version;
		double due; /* monotonic */
	} *acks;
	long n_acks, head_acks, cap_acks;
	long notices, notices_to_ack, acks_sent;
	/* the two operators: every version a station is told is pending review
	 * is approved by both (levels I and II need two, III one) at once */
	struct pending_appr {
		char id[129];
		uint32_t version;
	} *apprs;
	long n_apprs, cap_apprs;
	long approvals_sent, released_notices;
	struct wf_test_platform *platform; /* takes wf-dispatch's CAP POSTs */
	ev_timer wack;
	/* windows */
	struct window win[MAX_WINDOWS];
	int n_win;
	ev_timer ticker;
	long events_at_win, versions_at_win;
};

static struct soak *g_soak;

static void cleanup(void)
{
	struct soak *s = g_soak;
	if (!s)
		return;
	if (s->dispatch > 0)
		wf_test_stop(s->dispatch, SIGTERM, 10000);
	if (s->fusion > 0)
		wf_test_stop(s->fusion, SIGTERM, 10000);
	s->dispatch = s->fusion = 0;
	s->broker = wf_test_broker_free(s->broker);
}

static void on_signal(int sig)
{
	(void)sig;
	if (g_soak)
		g_soak->stopping = true;
}

/* ---- consumer ---- */

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* everything but who sent it (producer, seq) and the epoch, as in test-pipeline */
static uint64_t warning_hash(const Wf__V1__Warning *w)
{
	Wf__V1__Warning copy = *w;
	copy.producer = (char *)"";
	copy.seq = 0;
	copy.epoch = 0;
	char *js = wf_pbjson_print(&copy.base);
	if (!js)
		wf_test_die("wf_pbjson_print");
	uint64_t h = fnv1a(js);
	free(js);
	return h;
}

static void push(double **v, long *n, long *cap, double x)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 4096;
		*v = realloc(*v, (size_t)*cap * sizeof **v);
		if (!*v)
			wf_test_die("realloc");
	}
	(*v)[(*n)++] = x;
}

static int on_warning(void *ud, struct wf_txn *t, const Wf__V1__Warning *w,
		      const struct wf_node_msg *m, struct wf_codec_error *why)
{
	struct soak *s = ud;
	double now = wf_test_mono_s();
	(void)t;
	(void)why;
	(void)m;
	uint64_t h = warning_hash(w);
	char *key = wf_test_xasprintf("%s@%u", w->id, w->version);
	pthread_mutex_lock(&s->mu);
	if (s->received) { /* --keep: every version as received, for a diff with replay */
		char *js = wf_pbjson_print(&w->base);
		fprintf(s->received, "%s\n", js ? js : "?");
		free(js);
	}
	if (s->n_versions == s->keys_cap) {
		s->keys_cap = s->keys_cap ? s->keys_cap * 2 : 65536;
		s->keys = realloc(s->keys, (size_t)s->keys_cap * sizeof *s->keys);
		s->hashes = realloc(s->hashes, (size_t)s->keys_cap * sizeof *s->hashes);
		if (!s->keys || !s->hashes)
			wf_test_die("realloc");
	}
	s->keys[s->n_versions] = key;
	s->hashes[s->n_versions++] = h;
	if (w->seq > s->fusion_last_seq)
		s->fusion_last_seq = w->seq;
	/* the version's trigger: its newest input, if that event is of the
	 * version's own (virtual) time; an older one means the version came
	 * from something else (an expiry, a cancel, which names no new input) */
	long newest = -1;
	for (size_t i = 0; i < w->n_event_ids; i++) {
		const char *e = w->event_ids[i];
		const char *colon = strrchr(e, ':'); /* "<agency>:<id>" */
		const char *id = colon ? colon + 1 : e;
		char *end;
		long idx = strncmp(id, "soak-", 5) == 0 ? strtol(id + 5, &end, 10) : -1;
		if (idx < 0 || *end || idx >= s->n_events) {
			s->lat_unknown++;
			continue;
		}
		if (idx > newest)
			newest = idx;
	}
	if (newest >= 0 && s->sent[newest] >= 0 && s->plans[newest].observed == w->sent_ms) {
		double ms = (now - s->sent[newest]) * 1000.0;
		s->sent[newest] = -1;
		if (s->burst[newest])
			push(&s->lat_burst, &s->n_lb, &s->cap_lb, ms);
		else
			push(&s->lat_steady, &s->n_ls, &s->cap_ls, ms);
	}
	pthread_mutex_unlock(&s->mu);
	return 0;
}

static void on_state(void *ud, const Wf__V1__ServiceState *st, bool retained)
{
	struct soak *s = ud;
	(void)retained;
	pthread_mutex_lock(&s->mu);
	bool online = st->status == WF__V1__SERVICE_STATUS__SERVICE_ONLINE;
	if (strcmp(st->service, "wf-fusion-soak") == 0) {
		s->fusion_online = online;
		if (st->outbox_floor > s->fusion_floor)
			s->fusion_floor = st->outbox_floor;
	} else if (strcmp(st->service, "wf-dispatch-soak") == 0)
		s->dispatch_online = online;
	pthread_mutex_unlock(&s->mu);
}

/* A duty notice: one that needs an acknowledgement (a deadline) is queued
 * for --ack-after seconds, as a duty officer at the console would; every
 * copy (dispatch resends pending notices) is acknowledged, which dispatch
 * takes as already acknowledged. Runs on the consumer thread. */
static int on_control(void *ud, struct wf_txn *t, enum wf_topic_kind kind, const ProtobufCMessage *msg,
		      const struct wf_node_msg *m, struct wf_codec_error *why)
{
	struct soak *s = ud;
	(void)t;
	(void)m;
	(void)why;
	if (kind != WF_TOPIC_DUTY_INBOX)
		return 0;
	const Wf__V1__DutyNotice *d = (const Wf__V1__DutyNotice *)msg;
	bool to_ack = d->deadline_ms > 0 && s->c->ack_after >= 0;
	bool released = d->kind == WF__V1__NOTICE_KIND__NOTICE_KIND_RELEASED;
	pthread_mutex_lock(&s->mu);
	s->notices++;
	s->notices_to_ack += to_ack;
	s->released_notices += released;
	pthread_mutex_unlock(&s->mu);
	if (d->pending_review && !released) {
		if (s->n_apprs == s->cap_apprs) {
			s->cap_apprs = s->cap_apprs ? s->cap_apprs * 2 : 1024;
			s->apprs = realloc(s->apprs, (size_t)s->cap_apprs * sizeof *s->apprs);
			if (!s->apprs)
				wf_test_die("realloc");
		}
		snprintf(s->apprs[s->n_apprs].id, sizeof s->apprs->id, "%s", d->warning_id);
		s->apprs[s->n_apprs++].version = d->version;
	}
	if (!to_ack)
		return 0;
	if (s->head_acks > 0 && s->head_acks * 2 >= s->n_acks) { /* compact */
		memmove(s->acks, s->acks + s->head_acks,
			(size_t)(s->n_acks - s->head_acks) * sizeof *s->acks);
		s->n_acks -= s->head_acks;
		s->head_acks = 0;
	}
	if (s->n_acks == s->cap_acks) {
		s->cap_acks = s->cap_acks ? s->cap_acks * 2 : 4096;
		s->acks = realloc(s->acks, (size_t)s->cap_acks * sizeof *s->acks);
		if (!s->acks)
			wf_test_die("realloc");
	}
	struct pending_ack *a = &s->acks[s->n_acks++];
	snprintf(a->station, sizeof a->station, "%s", d->station);
	snprintf(a->id, sizeof a->id, "%s", d->warning_id);
	a->version = d->version;
	a->due = wf_test_mono_s() + s->c->ack_after;
	return 0;
}

static int emit_acks(struct wf_txn *t, void *ud)
{
	struct soak *s = ud;
	double now = wf_test_mono_s();
	long i = s->head_acks;
	for (; i < s->n_acks && s->acks[i].due <= now && i - s->head_acks < 1000; i++) {
		Wf__V1__DutyAck a = WF__V1__DUTY_ACK__INIT;
		a.station = s->acks[i].station;
		a.warning_id = s->acks[i].id;
		a.version = s->acks[i].version;
		a.operator_ = (char *)"值班员";
		a.acked_ms = wf_clock_now_ms(NULL);
		int r = wf_node_emit_control(s->w, t, WF_TOPIC_DUTY_ACK, &a.base, NULL);
		if (r < 0)
			return r;
	}
	s->head_acks = i;
	for (long k = 0; k < s->n_apprs; k++)
		for (int o = 0; o < 2; o++) {
			Wf__V1__Approval a = WF__V1__APPROVAL__INIT;
			a.operator_ = (char *)(o ? SOAK_OPERATOR_B : SOAK_OPERATOR_A);
			a.warning_id = s->apprs[k].id;
			a.version = s->apprs[k].version;
			a.decision = WF__V1__DECISION__DECISION_APPROVE;
			a.sent_ms = wf_clock_now_ms(NULL);
			int r = wf_node_emit_control(s->w, t, WF_TOPIC_APPROVAL, &a.base, NULL);
			if (r < 0)
				return r;
		}
	return 0;
}

static void wack_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct soak *s = w->data;
	(void)loop;
	(void)revents;
	if ((s->head_acks < s->n_acks && s->acks[s->head_acks].due <= wf_test_mono_s()) ||
	    s->n_apprs > 0) {
		long before = s->head_acks;
		if (wf_node_update(s->w, emit_acks, s) < 0) {
			s->head_acks = before; /* rolled back: again next time */
		} else {
			pthread_mutex_lock(&s->mu);
			s->acks_sent += s->head_acks - before;
			s->approvals_sent += 2 * s->n_apprs;
			pthread_mutex_unlock(&s->mu);
			s->n_apprs = 0;
		}
	}
}

static void wpoll_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct soak *s = w->data;
	(void)revents;
	bool ready = wf_node_ready(s->w);
	pthread_mutex_lock(&s->mu);
	s->wready = ready;
	pthread_mutex_unlock(&s->mu);
	if (atomic_load(&s->wstop))
		ev_break(loop, EVBREAK_ALL);
}

static void *consumer_main(void *ud)
{
	struct soak *s = ud;
	ev_timer_init(&s->wpoll, wpoll_cb, 0.05, 0.05);
	s->wpoll.data = s;
	ev_timer_start(s->wloop, &s->wpoll);
	ev_timer_init(&s->wack, wack_cb, 0.25, 0.25);
	s->wack.data = s;
	ev_timer_start(s->wloop, &s->wack);
	ev_run(s->wloop, 0);
	ev_timer_stop(s->wloop, &s->wack);
	ev_timer_stop(s->wloop, &s->wpoll);
	wf_node_stop(s->w);
	wf_test_run_for(s->wloop, 200);
	wf_node_free(s->w);
	s->w = NULL;
	return NULL;
}

/* ---- dead letters: the consumer node does not see them; they are counted
 * from the daemons' logs: "dead-lettered" lines (rate-limited, so a count of
 * at least the number logged) and the "N rejected" of the line a daemon
 * logs when it stops ---- */

static long stopped_rejected(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[2048];
	long n = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		char *p = strstr(line, "stopped: ");
		char *q = p ? strstr(p, " rejected") : NULL;
		if (!q)
			continue;
		while (q > p && q[-1] >= '0' && q[-1] <= '9')
			q--;
		n = strtol(q, NULL, 10);
	}
	fclose(f);
	return n;
}

static long count_lines_with(const char *path, const char *needle, char *first, size_t firstlen)
{
	FILE *f = fopen(path, "r");
	char line[2048];
	long n = 0;
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (strstr(line, needle)) {
			if (n == 0 && first)
				snprintf(first, firstlen, "%.500s", line);
			n++;
		}
	fclose(f);
	return n;
}

/* Dead-letter lines of wf-dispatch's log that are not an operator's
 * approval of a version already superseded (the console approves every
 * version it is told is pending; a newer one may have come meanwhile: a
 * refusal by design, counted in *SUPERSEDED). */
static long dispatch_deadletters(const char *path, long *superseded, char *first, size_t firstlen)
{
	FILE *f = fopen(path, "r");
	char line[2048];
	long n = 0;
	*superseded = 0;
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		if (!strstr(line, "dead-letter"))
			continue;
		if (strstr(line, "dead-lettered: wf/v1/approval/") && strstr(line, ": superseded: ")) {
			(*superseded)++;
			continue;
		}
		if (n == 0 && first)
			snprintf(first, firstlen, "%.500s", line);
		n++;
	}
	fclose(f);
	return n;
}

/* ---- nodes ---- */

static struct wf_node *new_node(struct soak *s, struct ev_loop *loop, const char *service,
				const char *kind, Wf__V1__Agency agency, bool consumer)
{
	/* a warning consumer and the duty stations' console */
	static const char *inputs[] = { "wf/v1/warning/#", "wf/v1/duty/+/inbox" };
	struct wf_node_options o;
	struct wf_node_callbacks cb = { .on_warning = on_warning, .on_state = on_state,
					.on_control = on_control };
	struct wf_node *n;
	char *sdir = wf_test_xasprintf("%s/%s", s->dir, service);
	if (mkdir(sdir, 0700) < 0)
		wf_test_die(sdir);
	wf_node_options_init(&o);
	o.service = service;
	o.kind = kind;
	o.state_dir = sdir;
	o.map_size = 256u << 20;
	o.bus.host = "127.0.0.1";
	o.bus.port = s->port;
	o.heartbeat_ms = 5000;
	if (consumer) {
		o.inputs = inputs;
		o.n_inputs = 2;
	} else {
		o.agency = agency;
		o.outbox_max_entries = 100000;
	}
	int r = wf_node_new(loop, &o, consumer ? &cb : NULL, s, &n);
	if (r < 0) {
		fprintf(stderr, "wf-soak: node %s: %s\n", service, strerror(-r));
		exit(1);
	}
	wf_node_start(n);
	free(sdir);
	return n;
}

static bool nodes_ready(void *ud)
{
	struct soak *s = ud;
	for (int a = 0; a < N_AG; a++)
		if (!wf_node_ready(s->prod[a]))
			return false;
	pthread_mutex_lock(&s->mu);
	bool v = s->wready;
	pthread_mutex_unlock(&s->mu);
	return v;
}

static bool daemons_online(void *ud)
{
	struct soak *s = ud;
	pthread_mutex_lock(&s->mu);
	bool v = s->fusion_online && s->dispatch_online;
	pthread_mutex_unlock(&s->mu);
	return v;
}

static int64_t pending_total(struct soak *s)
{
	int64_t n = 0;
	for (int a = 0; a < N_AG; a++)
		n += wf_node_pending(s->prod[a]);
	return n;
}

/* ---- emitting a tick ---- */

struct emit_ctx {
	struct soak *s;
	int ag;
	const struct plan *plans;
	long n;
};

static int emit_fn(struct wf_txn *t, void *ud)
{
	struct emit_ctx *e = ud;
	for (long i = 0; i < e->n; i++) {
		Wf__V1__Event ev;
		char id[32], ref[32], *refs[1];
		build_event(&e->plans[i], &ev, id, sizeof id, ref, sizeof ref, refs);
		int r = wf_node_emit_event(e->s->prod[e->ag], t, &ev, NULL);
		if (r < 0)
			return r;
	}
	return 0;
}

static void plan_one(struct soak *s, int ag, int64_t at, struct plan *p)
{
	/* a county of this agency in this tick: (county + tick) % 5 == ag */
	int k = (int)(s->tick % N_AG);
	int base = ((ag - k) % N_AG + N_AG) % N_AG;
	int slots = (n_counties - base + N_AG - 1) / N_AG;
	int county = base + N_AG * (int)(rng() % (uint64_t)slots);
	struct stream *st = &s->streams[ag * n_counties + county];
	p->ag = ag;
	p->county = county;
	p->observed = at;
	if (st->last >= 0 && st->last_expires <= at)
		st->last = -1; /* expired: a new ALERT */
	if (st->last < 0) {
		p->type = WF__V1__MSG_TYPE__MSG_TYPE_ALERT;
		st->hazard = (int)(rng() % (uint64_t)agencies[ag].n_hazards);
		st->level = 1 + (rng() % 8 == 0);
		p->ref = -1;
	} else if (rng() % 25 == 0) {
		p->type = WF__V1__MSG_TYPE__MSG_TYPE_CANCEL;
		p->ref = st->last;
	} else {
		p->type = WF__V1__MSG_TYPE__MSG_TYPE_UPDATE;
		p->ref = st->last;
		uint64_t r = rng() % 16;
		if (r < 3 && st->level < 4)
			st->level++;
		else if (r < 7 && st->level > 1)
			st->level--;
	}
	p->level = st->level;
	p->hazard = st->hazard;
	p->expires = at + (int64_t)(10 + rng() % 21) * 60000 + 500;
	if (p->type == WF__V1__MSG_TYPE__MSG_TYPE_CANCEL) {
		st->last = -1;
	} else {
		st->last_expires = p->expires;
	}
	/* index assigned by the caller, then the stream points at it */
}

static int cmp_plan_ag(const void *a, const void *b)
{
	const struct plan *x = a, *y = b;
	if (x->ag != y->ag)
		return x->ag - y->ag;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static void write_replay_line(struct soak *s, const struct plan *p, uint64_t seq)
{
	Wf__V1__Event ev;
	char id[32], ref[32], *refs[1];
	build_event(p, &ev, id, sizeof id, ref, sizeof ref, refs);
	char producer[32];
	snprintf(producer, sizeof producer, "wf-%s-soak", agencies[p->ag].name);
	ev.producer = producer;
	ev.seq = seq;
	char *js = wf_pbjson_print(&ev.base);
	if (!js)
		wf_test_die("wf_pbjson_print");
	fprintf(s->jsonl, "%s\n", js);
	free(js);
}

static void do_tick(struct soak *s, double now)
{
	bool burst = s->c->burst > 0 && now >= s->t_next_burst;
	long n = s->c->rate + (burst ? s->c->burst : 0);
	if (s->n_events + n > s->cap) {
		s->stopping = true;
		fprintf(stderr, "wf-soak: event table full (%ld)\n", s->cap);
		return;
	}
	if (burst)
		s->t_next_burst += s->c->burst_every;
	int64_t at = wf_clock_now_ms(NULL);
	at -= at % 1000;
	if (at <= s->last_tick_ms)
		at = s->last_tick_ms + 1000;
	s->last_tick_ms = at;
	struct plan *tp = &s->plans[s->n_events];
	for (long i = 0; i < n; i++) {
		struct plan *p = &tp[i];
		p->idx = s->n_events + i;
		plan_one(s, (int)(rng() % N_AG), at, p);
		struct stream *st = &s->streams[p->ag * n_counties + p->county];
		if (p->type != WF__V1__MSG_TYPE__MSG_TYPE_CANCEL)
			st->last = p->idx;
		s->burst[p->idx] = burst; /* the whole tick: its steady part waits behind the burst */
	}
	/* by producer, in index order: what each producer emits, in its order */
	struct plan *sorted = xcalloc((size_t)n, sizeof *sorted);
	memcpy(sorted, tp, (size_t)n * sizeof *sorted);
	qsort(sorted, (size_t)n, sizeof *sorted, cmp_plan_ag);
	double t_before = wf_test_mono_s();
	pthread_mutex_lock(&s->mu);
	for (long i = 0; i < n; i++)
		s->sent[tp[i].idx] = t_before;
	s->n_events += n;
	pthread_mutex_unlock(&s->mu);
	long i = 0;
	while (i < n) {
		int ag = sorted[i].ag;
		long j = i;
		while (j < n && sorted[j].ag == ag && j - i < PER_TXN)
			j++;
		for (long k = i; k < j; k++)
			write_replay_line(s, &sorted[k], ++s->seq[ag]);
		struct emit_ctx e = { s, ag, &sorted[i], j - i };
		int r = wf_node_update(s->prod[ag], emit_fn, &e);
		if (r != 0) {
			fprintf(stderr, "wf-soak: emit for %s: %s\n", agencies[ag].name, strerror(-r));
			exit(1);
		}
		double t_pub = wf_test_mono_s();
		pthread_mutex_lock(&s->mu);
		for (long k = i; k < j; k++)
			if (s->sent[sorted[k].idx] >= 0)
				s->sent[sorted[k].idx] = t_pub;
		pthread_mutex_unlock(&s->mu);
		i = j;
	}
	free(sorted);
	s->tick++;
}

/* ---- sampling ---- */

/* VmRSS and RssAnon (KiB) from /proc/PID/status: VmRSS includes the pages
 * of the LMDB files mapped and touched (RssFile), which follow the store's
 * size; RssAnon is the heap, where a leak shows */
static void rss_kib(pid_t pid, long *rss, long *anon)
{
	char path[64], line[256];
	*rss = *anon = -1;
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			*rss = strtol(line + 6, NULL, 10);
		else if (strncmp(line, "RssAnon:", 8) == 0)
			*anon = strtol(line + 8, NULL, 10);
	fclose(f);
}

static long long file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

enum { P_FUSION, P_DISPATCH, P_BROKER, P_SELF, N_PROC };
static const char *const proc_names[N_PROC] = { "wf-fusion", "wf-dispatch", "mosquitto", "wf-soak" };

enum { L_FUSION, L_DISPATCH, L_CONSOLE, L_MET, L_WATER, L_GEO, L_FIRE, L_POLICE, N_LMDB };
static const char *const lmdb_names[N_LMDB] = { "fusion", "dispatch", "console", "met", "water",
						 "geo", "fire", "police" };

static char *lmdb_path(struct soak *s, int i)
{
	switch (i) {
	case L_FUSION:
		return wf_test_xasprintf("%s/state-fusion/data.mdb", s->dir);
	case L_DISPATCH:
		return wf_test_xasprintf("%s/state-dispatch/data.mdb", s->dir);
	case L_CONSOLE:
		return wf_test_xasprintf("%s/wf-console-soak/data.mdb", s->dir);
	default:
		return wf_test_xasprintf("%s/wf-%s-soak/data.mdb", s->dir, agencies[i - L_MET].name);
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(const double *v, long n, double p)
{
	if (n == 0)
		return 0;
	long k = (long)(p * (double)(n - 1) + 0.5);
	return v[k];
}

static void sample(struct soak *s, double now)
{
	if (s->n_win >= MAX_WINDOWS)
		return;
	struct window *w = &s->win[s->n_win++];
	w->t_end = now - s->t_start;
	pthread_mutex_lock(&s->mu);
	double *ls = s->lat_steady, *lb = s->lat_burst;
	long nls = s->n_ls, nlb = s->n_lb;
	s->lat_steady = s->lat_burst = NULL;
	s->n_ls = s->n_lb = s->cap_ls = s->cap_lb = 0;
	long versions = s->n_versions;
	pthread_mutex_unlock(&s->mu);
	if (nls > 0) /* qsort's base must not be NULL, even for 0 items */
		qsort(ls, (size_t)nls, sizeof *ls, cmp_double);
	if (nlb > 0)
		qsort(lb, (size_t)nlb, sizeof *lb, cmp_double);
	w->events = s->n_events - s->events_at_win;
	w->versions = versions - s->versions_at_win;
	s->events_at_win = s->n_events;
	s->versions_at_win = versions;
	w->n_steady = nls;
	w->n_burst = nlb;
	w->p50 = pct(ls, nls, 0.5);
	w->p99 = pct(ls, nls, 0.99);
	w->max = nls ? ls[nls - 1] : 0;
	w->bp99 = pct(lb, nlb, 0.99);
	w->bmax = nlb ? lb[nlb - 1] : 0;
	free(ls);
	free(lb);
	pid_t pids[N_PROC] = { s->fusion, s->dispatch, wf_test_broker_pid(s->broker), getpid() };
	for (int i = 0; i < N_PROC; i++) {
		w->rss_kib[i] = w->anon_kib[i] = -1;
		w->cpu_s[i] = -1;
		if (pids[i] > 0) {
			rss_kib(pids[i], &w->rss_kib[i], &w->anon_kib[i]);
			w->cpu_s[i] = wf_test_proc_cpu_s(pids[i]);
		}
	}
	double dt = s->n_win > 1 ? w->t_end - s->win[s->n_win - 2].t_end : w->t_end;
	double cpu_pct[N_PROC];
	for (int i = 0; i < N_PROC; i++)
		cpu_pct[i] = 100.0 * (w->cpu_s[i] - (s->n_win > 1 ? s->win[s->n_win - 2].cpu_s[i] : 0)) /
			     (dt > 0 ? dt : 1);
	for (int i = 0; i < N_LMDB; i++) {
		char *p = lmdb_path(s, i);
		w->lmdb[i] = file_size(p);
		free(p);
	}
	printf("[%6.0f s] events %ld (+%ld) versions %ld (+%ld) | steady n=%ld p50 %.1f p99 %.1f max "
	       "%.1f ms | burst n=%ld p99 %.1f max %.1f ms | RSS/anon KiB fusion %ld/%ld dispatch "
	       "%ld/%ld mosquitto %ld/%ld soak %ld/%ld | CPU%% %.1f %.1f %.1f %.1f | LMDB KiB fusion "
	       "%lld dispatch %lld console %lld adapters %lld/%lld/%lld/%lld/%lld%s\n",
	       w->t_end, s->n_events, w->events, versions, w->versions, nls, w->p50, w->p99, w->max,
	       nlb, w->bp99, w->bmax, w->rss_kib[0], w->anon_kib[0], w->rss_kib[1], w->anon_kib[1],
	       w->rss_kib[2], w->anon_kib[2], w->rss_kib[3], w->anon_kib[3], cpu_pct[0], cpu_pct[1],
	       cpu_pct[2], cpu_pct[3],
	       w->lmdb[0] / 1024, w->lmdb[1] / 1024, w->lmdb[2] / 1024, w->lmdb[3] / 1024,
	       w->lmdb[4] / 1024, w->lmdb[5] / 1024, w->lmdb[6] / 1024, w->lmdb[7] / 1024,
	       s->ticks_delayed ? " (ticks waited for acks)" : "");
	fflush(stdout);
	s->ticks_delayed = 0;
}

static void ticker_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct soak *s = t->data;
	(void)revents;
	double now = wf_test_mono_s();
	if (s->stopping || now - s->t_start >= s->c->duration) {
		ev_break(loop, EVBREAK_ONE);
		return;
	}
	/* one tick per second, once the previous one is acknowledged */
	double due = s->t_start + (double)s->tick;
	if (now >= due) {
		if (pending_total(s) == 0)
			do_tick(s, now);
		else
			s->ticks_delayed++;
	}
	double wdue = s->t_start + s->c->sample * (s->n_win + 1);
	if (now >= wdue)
		sample(s, now);
	if (wf_test_wait(s->fusion, 0) != -ETIMEDOUT || wf_test_wait(s->dispatch, 0) != -ETIMEDOUT) {
		fprintf(stderr, "wf-soak: a daemon exited (logs %s, %s)\n", s->fusion_log,
			s->dispatch_log);
		s->fusion = s->fusion > 0 && kill(s->fusion, 0) == 0 ? s->fusion : 0;
		s->dispatch = s->dispatch > 0 && kill(s->dispatch, 0) == 0 ? s->dispatch : 0;
		s->stopping = true;
	}
}

/* ---- replay and the comparison ---- */

struct kv {
	char *key;
	uint64_t h;
};

/* by key, then content: the versions are compared as multisets, because
 * fusion may give two incidents the same id and version (see
 * id_version_reused below) */
static int cmp_kv(const void *a, const void *b)
{
	const struct kv *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : x->h < y->h ? -1 : x->h > y->h;
}

/* id@version pairs that name more than one content */
static long reused(const struct kv *v, long n)
{
	long k = 0;
	for (long i = 1; i < n; i++)
		if (strcmp(v[i - 1].key, v[i].key) == 0 && v[i - 1].h != v[i].h)
			k++;
	return k;
}

static long replay_expected(struct soak *s, const char *events, struct kv **ret)
{
	char *exe = wf_test_build_path("services/fusion/wf-fusion");
	char *rules = wf_test_source_path("deploy/fusion-rules.conf");
	char *argv[] = { exe, (char *)"--replay", (char *)events, (char *)"--rules", rules,
			 (char *)"--regions", getenv("WF_REGIONS"), NULL };
	char *out = NULL;
	char *log = wf_test_xasprintf("%s/replay.log", s->dir);
	int st = wf_test_capture(argv, NULL, log, &out, 600000);
	long n = 0, cap = 0;
	struct kv *v = NULL;
	if (st != 0) {
		fprintf(stderr, "wf-soak: replay exited %d (log %s)\n", st, log);
		n = -1;
		goto out;
	}
	for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		ProtobufCMessage *m = NULL;
		char err[256];
		if (wf_pbjson_parse(&wf__v1__warning__descriptor, l, strlen(l), &m, err, sizeof err) != 0) {
			fprintf(stderr, "wf-soak: replay output: %s\n", err);
			n = -1;
			goto out;
		}
		Wf__V1__Warning *w = (Wf__V1__Warning *)m;
		if (n == cap) {
			cap = cap ? cap * 2 : 65536;
			v = realloc(v, (size_t)cap * sizeof *v);
			if (!v)
				wf_test_die("realloc");
		}
		v[n].key = wf_test_xasprintf("%s@%u", w->id, w->version);
		v[n].h = warning_hash(w);
		n++;
		protobuf_c_message_free_unpacked(m, NULL);
	}
	qsort(v, (size_t)n, sizeof *v, cmp_kv);
out:
	*ret = v;
	free(out);
	free(exe);
	free(rules);
	free(log);
	return n;
}

/* Files still queued for POST in wf-dispatch's CAP spool (-1: unreadable). */
static long cap_queued(const struct soak *s)
{
	char *og = wf_test_xasprintf("%s/state-dispatch/cap/outgoing", s->dir);
	long n = wf_test_dir_count(og, "");
	free(og);
	return n;
}

static bool drained(void *ud)
{
	struct soak *s = ud;
	return pending_total(s) == 0;
}

static bool cap_drained(void *ud)
{
	return cap_queued(ud) == 0;
}

struct vwait {
	struct soak *s;
	long want;
};

static bool versions_reached(void *ud)
{
	struct vwait *v = ud;
	pthread_mutex_lock(&v->s->mu);
	bool ok = v->s->n_versions >= v->want && v->s->fusion_floor > v->s->fusion_last_seq;
	pthread_mutex_unlock(&v->s->mu);
	return ok;
}

static double median(double *v, int n)
{
	if (n == 0)
		return 0;
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return v[n / 2];
}

/* ---- configuration of the daemons ---- */

static char *fusion_conf(struct soak *s)
{
	char *rules = wf_test_source_path("deploy/fusion-rules.conf");
	char *text = wf_test_xasprintf("[service]\nid = wf-fusion-soak\nstate_dir = %s/state-fusion\n"
			       "regions = %s\nheartbeat = 5s\n[mqtt]\nhost = 127.0.0.1\nport = %d\n"
			       "[fusion]\nrules = %s\nclock = events\nordered = true\n",
			       s->dir, getenv("WF_REGIONS"), s->port, rules);
	char *p = wf_test_xasprintf("%s/fusion.conf", s->dir);
	wf_test_spit_text(p, text);
	free(text);
	free(rules);
	return p;
}

/* the shipped policy and duty deadlines; one station per prefecture of Henan
 * and one for the province; duty and broadcast (CAP files left out: the soak
 * would fill the disk with one file per released version); retention of
 * ended warnings DSP_RETAIN_S (the shipped 30d would keep the whole run) */
#define DSP_RETAIN_S 600
/* The longest an ended warning's records stay after its last version:
 * retain, after its expiry (a report expires at most 30 min after its last
 * version) and after its last notice is acknowledged (--ack-after, + one
 * resend of 30 s; with nobody acknowledging, a level IV notice's deadlines:
 * 1 h at the prefecture's station, then 1 h at the province's), + the
 * purge's 1 min recheck and a minute of slack. From one horizon in, the
 * store holds only the warnings of the last horizon: its size levels off. */
static double dsp_horizon_s(const struct cfg *c)
{
	return DSP_RETAIN_S + 1800 + (c->ack_after >= 0 ? c->ack_after + 30 : 2 * 3600) + 120;
}
static char *dispatch_conf(struct soak *s)
{
	char *routes = wf_test_xasprintf("%s/routes.conf", s->dir);
	FILE *f = fopen(routes, "w");
	if (!f)
		wf_test_die(routes);
	fprintf(f, "[station duty-410000]\nregion = 410000\n");
	char seen[64][5];
	int n_seen = 0;
	for (int i = 0; i < n_counties; i++) {
		bool dup = false;
		for (int j = 0; j < n_seen; j++)
			dup = dup || strncmp(seen[j], counties[i], 4) == 0;
		if (dup || n_seen == 64)
			continue;
		snprintf(seen[n_seen], 5, "%.4s", counties[i]);
		fprintf(f, "[station duty-%s00]\nregion = %s00\n", seen[n_seen], seen[n_seen]);
		n_seen++;
	}
	fprintf(f, "[operator " SOAK_OPERATOR_A "]\n[operator " SOAK_OPERATOR_B "]\n"
		   "[route severe]\nlevels = I, II\nchannels = duty, broadcast, cap\n"
		   "[route all]\nchannels = duty, broadcast\n");
	if (fclose(f) != 0)
		wf_test_die(routes);
	char *text = wf_test_xasprintf(
		"[service]\nid = wf-dispatch-soak\nstate_dir = %s/state-dispatch\nregions = %s\n"
		"heartbeat = 5s\n[mqtt]\nhost = 127.0.0.1\nport = %d\n"
		"[dispatch]\nroutes = %s\ninput = wf/v1/warning/#\nretain = %ds\n"
		"[policy]\nrelease_I = two\nrelease_II = two\nrelease_III = one\nrelease_IV = auto\n"
		"review_timeout_I = 10m\nreview_timeout_II = 15m\nreview_timeout_III = 30m\n"
		"[duty]\nack_deadline_I = 5m\nack_deadline_II = 10m\nack_deadline_III = 30m\n"
		"ack_deadline_IV = 1h\nfollowup_interval = 30m\n"
		"[cap]\npost_url = http://127.0.0.1:%d/cap\npost_timeout = 2s\n",
		s->dir, getenv("WF_REGIONS"), s->port, routes, DSP_RETAIN_S,
		wf_test_platform_port(s->platform));
	char *p = wf_test_xasprintf("%s/dispatch.conf", s->dir);
	wf_test_spit_text(p, text);
	free(text);
	free(routes);
	return p;
}

static pid_t spawn_daemon(const char *rel, const char *conf, const char *log)
{
	char *exe = wf_test_build_path(rel);
	char *argv[] = { exe, (char *)"--config", (char *)conf, NULL };
	pid_t pid = wf_test_spawn(argv, NULL, log);
	free(exe);
	if (pid <= 0) {
		fprintf(stderr, "wf-soak: cannot start %s\n", rel);
		exit(1);
	}
	return pid;
}

/* A run this much longer than the retention horizon is checked in its
 * steady state: RSS from the horizon on, dispatch's store against its size
 * one horizon in. */
#define STEADY_MIN_S 900

/* the first window ending at T or later (the last one if none) */
static const struct window *window_at(const struct soak *s, double t)
{
	int k = 0;
	while (k < s->n_win - 1 && s->win[k].t_end < t)
		k++;
	return &s->win[k];
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: wf-soak [--duration S] [--rate EVENTS_PER_S] [--burst N] [--burst-every S]\n"
		"               [--sample S] [--warmup S] [--rss-limit MIB] [--lmdb-limit MIB]\n"
		"               [--lmdb-per-event BYTES] [--p99-factor F] [--p99-floor MS]\n"
		"               [--ack-after S] [--keep]\n"
		"Defaults: --duration 3600 --rate 50 --burst 3000 --burst-every 300 --sample 60\n"
		"--warmup (the retention horizon, about 43 min, in a run 15 min longer than it; else\n"
		"10%% of the duration, at least one sample, and then only wf-fusion's RSS is checked)\n"
		"--rss-limit 5 --lmdb-limit 64\n"
		"--lmdb-per-event 4096 --p99-factor 3 --p99-floor 50 --ack-after 30 (the duty console\n"
		"acknowledges each notice this long after it arrived; -1: never, notices escalate).\n"
		"Exit 0: every target met.\n");
}

static bool parse_num(const char *s, double lo, double hi, double *ret)
{
	char *e;
	errno = 0;
	double v = strtod(s, &e);
	if (errno || e == s || *e || !(v >= lo && v <= hi))
		return false;
	*ret = v;
	return true;
}

int main(int argc, char **argv)
{
	struct cfg c = { .duration = 3600, .sample = 60, .warmup = -1, .rate = 50, .burst = 3000,
			 .burst_every = 300, .rss_limit_mib = 5, .lmdb_limit_mib = 64,
			 .lmdb_per_event = 4096, .p99_factor = 3, .p99_floor_ms = 50, .ack_after = 30 };
	static const struct option opts[] = {
		{ "duration", required_argument, NULL, 'd' },
		{ "rate", required_argument, NULL, 'r' },
		{ "burst", required_argument, NULL, 'b' },
		{ "burst-every", required_argument, NULL, 'B' },
		{ "sample", required_argument, NULL, 's' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "rss-limit", required_argument, NULL, 'R' },
		{ "lmdb-limit", required_argument, NULL, 'L' },
		{ "lmdb-per-event", required_argument, NULL, 'E' },
		{ "p99-factor", required_argument, NULL, 'F' },
		{ "p99-floor", required_argument, NULL, 'P' },
		{ "ack-after", required_argument, NULL, 'A' },
		{ "keep", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int ch;
	double v;
	while ((ch = getopt_long(argc, argv, "d:r:b:B:s:w:R:L:E:F:P:A:kh", opts, NULL)) != -1) {
		switch (ch) {
		case 'd': if (!parse_num(optarg, 10, 86400, &c.duration)) goto bad; break;
		case 'r': if (!parse_num(optarg, 1, 2000, &v)) goto bad; c.rate = (int)v; break;
		case 'b': if (!parse_num(optarg, 0, 20000, &v)) goto bad; c.burst = (int)v; break;
		case 'B': if (!parse_num(optarg, 5, 86400, &c.burst_every)) goto bad; break;
		case 's': if (!parse_num(optarg, 2, 3600, &c.sample)) goto bad; break;
		case 'w': if (!parse_num(optarg, 0, 86400, &c.warmup)) goto bad; break;
		case 'R': if (!parse_num(optarg, 0.1, 4096, &c.rss_limit_mib)) goto bad; break;
		case 'L': if (!parse_num(optarg, 1, 65536, &c.lmdb_limit_mib)) goto bad; break;
		case 'E': if (!parse_num(optarg, 64, 1 << 20, &c.lmdb_per_event)) goto bad; break;
		case 'F': if (!parse_num(optarg, 1, 100, &c.p99_factor)) goto bad; break;
		case 'P': if (!parse_num(optarg, 0, 60000, &c.p99_floor_ms)) goto bad; break;
		case 'A': /* -1, or below the shortest ack deadline (5 min) */
			if (!parse_num(optarg, -1, 240, &c.ack_after) || (c.ack_after < 0 && c.ack_after != -1))
				goto bad;
			break;
		case 'k': c.keep = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		continue;
bad:
		fprintf(stderr, "wf-soak: bad value '%s'\n", optarg);
		usage(stderr);
		return 2;
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	c.fill_from = c.duration / 10 > c.sample ? c.duration / 10 : c.sample;
	if (c.warmup < 0)
		c.warmup = c.duration >= dsp_horizon_s(&c) + STEADY_MIN_S ? dsp_horizon_s(&c)
									   : c.fill_from;
	if (c.fill_from > c.warmup)
		c.fill_from = c.warmup;
	setenv("WF_SOURCE_ROOT", SOAK_SOURCE_ROOT, 0);
	setenv("WF_BUILD_ROOT", SOAK_BUILD_ROOT, 0);
	char *regions = wf_test_source_path("data/regions.csv");
	setenv("WF_REGIONS", regions, 0);
	free(regions);
	load_counties(getenv("WF_REGIONS"));

	static struct soak s;
	g_soak = &s;
	s.c = &c;
	pthread_mutex_init(&s.mu, NULL);
	atomic_init(&s.wstop, false);
	s.cap = (long)(c.duration + 60) * c.rate +
		((long)(c.duration / c.burst_every) + 2) * c.burst + 1000;
	s.plans = xcalloc((size_t)s.cap, sizeof *s.plans);
	s.sent = xcalloc((size_t)s.cap, sizeof *s.sent);
	s.burst = xcalloc((size_t)s.cap, 1);
	s.streams = xcalloc((size_t)(N_AG * n_counties), sizeof *s.streams);
	for (int i = 0; i < N_AG * n_counties; i++)
		s.streams[i].last = -1;

	struct wf_test_broker_options bo;
	wf_test_broker_options_init(&bo);
	bo.extra_config = "max_queued_messages 0\n";
	int r = wf_test_broker_start(&bo, &s.broker);
	atexit(cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (r < 0) {
		fprintf(stderr, "wf-soak: cannot start mosquitto: %s\n", strerror(-r));
		return 1;
	}
	s.port = wf_test_broker_port(s.broker);
	s.dir = wf_test_mkdtemp("wf-soak");
	if (!s.dir)
		wf_test_die("mkdtemp");
	char *events = wf_test_xasprintf("%s/events.jsonl", s.dir);
	s.jsonl = fopen(events, "w");
	if (!s.jsonl)
		wf_test_die(events);
	s.fusion_log = wf_test_xasprintf("%s/fusion.log", s.dir);
	s.dispatch_log = wf_test_xasprintf("%s/dispatch.log", s.dir);
	s.loop = ev_loop_new(EVFLAG_AUTO);
	if (c.keep) {
		char *rp = wf_test_xasprintf("%s/received.jsonl", s.dir);
		s.received = fopen(rp, "w");
		if (!s.received)
			wf_test_die(rp);
		free(rp);
	}
	printf("wf-soak: %.0f s at %d events/s, bursts of %d every %.0f s, samples every %.0f s, "
	       "warm-up %.0f s; %d counties; state in %s\n",
	       c.duration, c.rate, c.burst, c.burst_every, c.sample, c.warmup, n_counties, s.dir);
	fflush(stdout);

	/* consumer first (it sees the daemons' births), then the producers */
	s.wloop = ev_loop_new(EVFLAG_AUTO);
	s.w = new_node(&s, s.wloop, "wf-console-soak", "dispatch", 0, true);
	if (pthread_create(&s.wthread, NULL, consumer_main, &s) != 0)
		wf_test_die("pthread_create");
	s.wthread_started = true;
	for (int a = 0; a < N_AG; a++) {
		char name[32];
		snprintf(name, sizeof name, "wf-%s-soak", agencies[a].name);
		s.prod[a] = new_node(&s, s.loop, name, agencies[a].name, agencies[a].agency, false);
	}
	s.platform = wf_test_platform_start(SOAK_POST_FAIL_EVERY);
	char *fconf = fusion_conf(&s), *dconf = dispatch_conf(&s);
	s.fusion = spawn_daemon("services/fusion/wf-fusion", fconf, s.fusion_log);
	s.dispatch = spawn_daemon("services/dispatch/wf-dispatch", dconf, s.dispatch_log);
	free(fconf);
	free(dconf);
	int status = 0;
	if (!wf_test_run_until(s.loop, nodes_ready, &s, 20000) ||
	    !wf_test_run_until(s.loop, daemons_online, &s, 30000)) {
		fprintf(stderr, "wf-soak: the nodes or daemons did not come up (logs %s, %s)\n",
			s.fusion_log, s.dispatch_log);
		status = 1;
		goto out;
	}

	/* ---- the run ---- */
	s.t_start = wf_test_mono_s();
	s.t_next_burst = s.t_start + c.burst_every / 2;
	ev_timer_init(&s.ticker, ticker_cb, 0.02, 0.02);
	s.ticker.data = &s;
	ev_timer_start(s.loop, &s.ticker);
	ev_run(s.loop, 0);
	ev_timer_stop(s.loop, &s.ticker);
	double t_end = wf_test_mono_s();
	if (fclose(s.jsonl) != 0)
		wf_test_die(events);
	s.jsonl = NULL;

	/* ---- the end: everything acknowledged, every version arrived ---- */
	bool acked = wf_test_run_until(s.loop, drained, &s, 120000);
	struct kv *want = NULL;
	double t_rep = wf_test_mono_s();
	long n_want = replay_expected(&s, events, &want);
	t_rep = wf_test_mono_s() - t_rep;
	struct vwait vw = { &s, n_want };
	bool all_versions = n_want >= 0 && wf_test_run_until(s.loop, versions_reached, &vw, 120000);
	(void)wf_test_run_until(s.loop, cap_drained, &s, 120000); /* checked below */
	wf_test_run_for(s.loop, 2000); /* anything beyond what replay made would show now */
	sample(&s, wf_test_mono_s());
	bool fusion_alive = s.fusion > 0 && wf_test_wait(s.fusion, 0) == -ETIMEDOUT;
	bool dispatch_alive = s.dispatch > 0 && wf_test_wait(s.dispatch, 0) == -ETIMEDOUT;

	/* the comparison */
	pthread_mutex_lock(&s.mu);
	long n_got = s.n_versions;
	struct kv *got = xcalloc((size_t)n_got, sizeof *got);
	for (long i = 0; i < n_got; i++) {
		got[i].key = s.keys[i];
		got[i].h = s.hashes[i];
	}
	uint64_t floor = s.fusion_floor, last_seq = s.fusion_last_seq;
	pthread_mutex_unlock(&s.mu);
	qsort(got, (size_t)n_got, sizeof *got, cmp_kv);
	long dups = 0, missing = 0, extra = 0;
	for (long i = 0, j = 0; n_want >= 0 && (i < n_got || j < n_want);) {
		int cm = i == n_got ? 1 : j == n_want ? -1 : cmp_kv(&got[i], &want[j]);
		if (cm == 0) {
			long gi = i, wj = j;
			while (i < n_got && cmp_kv(&got[i], &got[gi]) == 0)
				i++;
			while (j < n_want && cmp_kv(&want[j], &want[wj]) == 0)
				j++;
			if (i - gi > j - wj && dups++ < 3)
				fprintf(stderr, "wf-soak: received more often than replay made it: %s\n",
					got[gi].key);
			if (i - gi < j - wj && missing++ < 3)
				fprintf(stderr, "wf-soak: missing a copy of %s\n", want[wj].key);
		} else if (cm < 0) {
			if (extra++ < 3)
				fprintf(stderr, "wf-soak: unexpected (not in replay, or different) %s\n",
					got[i].key);
			i++;
		} else {
			if (missing++ < 3)
				fprintf(stderr, "wf-soak: missing (or different) %s\n", want[j].key);
			j++;
		}
	}
	long reuse_got = reused(got, n_got), reuse_want = n_want > 0 ? reused(want, n_want) : 0;

	/* the daemons stop now: their last log line counts what they rejected */
	if (s.dispatch > 0)
		wf_test_stop(s.dispatch, SIGTERM, 20000);
	if (s.fusion > 0)
		wf_test_stop(s.fusion, SIGTERM, 20000);
	s.dispatch = s.fusion = 0;
	long rej_f = stopped_rejected(s.fusion_log), rej_d = stopped_rejected(s.dispatch_log);

	/* dead letters, from the daemons' logs */
	char first[512] = "";
	long dl_f = count_lines_with(s.fusion_log, "dead-letter", first, sizeof first);
	long dl_sup = 0;
	long dl_d = dispatch_deadletters(s.dispatch_log, &dl_sup, first[0] ? NULL : first,
					 sizeof first);

	/* ---- the verdict ---- */
	printf("== wf-soak results (%.0f s, %ld ticks, %ld events, %ld warning versions)\n",
	       t_end - s.t_start, s.tick, s.n_events, n_got);
	pthread_mutex_lock(&s.mu);
	long notices = s.notices, to_ack = s.notices_to_ack, acks_sent = s.acks_sent;
	long approvals = s.approvals_sent, rel_notices = s.released_notices;
	pthread_mutex_unlock(&s.mu);
	printf("duty.console %ld notices received, %ld needing an acknowledgement, %ld acknowledgements "
	       "sent (%s); %ld approvals sent (two operators, each version told pending), %ld "
	       "RELEASED notices received\n", notices, to_ack, acks_sent,
	       c.ack_after < 0 ? "--ack-after -1: none" : "each --ack-after s after it arrived",
	       approvals, rel_notices);
	const struct window *w0 = window_at(&s, c.warmup), *wl = &s.win[s.n_win - 1];
	const struct window *wf = window_at(&s, c.fill_from);
	int fails = 0;
	for (int i = 0; i < N_PROC; i++) {
		if (wf != w0)
			printf("rss.%s while the retention window fills (t=%.0f s -> %.0f s, not checked): "
			       "RssAnon %ld -> %ld KiB, growth %.2f MiB\n", proc_names[i], wf->t_end,
			       w0->t_end, wf->anon_kib[i], w0->anon_kib[i],
			       (double)(w0->anon_kib[i] - wf->anon_kib[i]) / 1024.0);
		double growth = (double)(wl->anon_kib[i] - w0->anon_kib[i]) / 1024.0;
		double vgrowth = (double)(wl->rss_kib[i] - w0->rss_kib[i]) / 1024.0;
		long peak = 0;
		for (int k = 0; k < s.n_win; k++)
			if (s.win[k].rss_kib[i] > peak)
				peak = s.win[k].rss_kib[i];
		bool ok = w0->anon_kib[i] > 0 && wl->anon_kib[i] > 0 && growth < c.rss_limit_mib;
		/* the soak driver itself keeps every event's plan and every version's key;
		 * before one retention horizon dispatch's heap and the broker's
		 * retained records still fill with the horizon's warnings */
		bool filling = c.warmup < dsp_horizon_s(&c) && (i == P_DISPATCH || i == P_BROKER);
		bool checked = i != P_SELF && !filling;
		printf("rss.%s after warm-up (t=%.0f s) -> end: RssAnon %ld -> %ld KiB, growth %.2f MiB%s; "
		       "VmRSS %ld -> %ld KiB (growth %.2f MiB, peak %ld, with mapped file "
		       "pages: the LMDB stores); CPU %.1f s\n",
		       proc_names[i], w0->t_end, w0->anon_kib[i], wl->anon_kib[i], growth,
		       i == P_SELF ? " (not checked: holds the run's records)"
		       : filling   ? " (not checked: the warm-up is shorter than the retention horizon, "
				     "the window is still filling; run a horizon + 15 min)"
		       : ok	   ? " ok"
				   : " FAIL",
		       w0->rss_kib[i], wl->rss_kib[i], vgrowth, peak, wl->cpu_s[i]);
		if (checked && !ok)
			fails++;
	}
	/* dispatch's store one retention horizon in (runs of a horizon + 15 min
	 * or more) */
	const struct window *wh = NULL;
	double horizon = dsp_horizon_s(&c);
	if (t_end - s.t_start >= horizon + STEADY_MIN_S)
		wh = window_at(&s, horizon);
	for (int i = 0; i < N_LMDB; i++) {
		/* fusion keeps every event record 8 days after its expiry (retain >=
		 * 8d): all of this run's; dispatch keeps an ended warning's records
		 * DSP_RETAIN_S (after its last notice is acknowledged or its last
		 * deadline): at most all of this run's versions, and once the run is
		 * a horizon + 15 min long, what it held one horizon in (+25% for
		 * the load's variation); the producers'
		 * and the console's stores hold only their outbox (drained) and
		 * dedupe state */
		double per = i == L_FUSION ? (double)s.n_events : i == L_DISPATCH ? (double)n_got : 0;
		double limit = i == L_FUSION || i == L_DISPATCH ? per * c.lmdb_per_event + 1048576.0
							      : c.lmdb_limit_mib * 1048576.0;
		if (i == L_DISPATCH && wh && 1.25 * (double)wh->lmdb[i] + 1048576.0 < limit)
			limit = 1.25 * (double)wh->lmdb[i] + 1048576.0;
		bool ok = wl->lmdb[i] > 0 && (double)wl->lmdb[i] <= limit;
		printf("lmdb.%s_kib after warm-up %lld end %lld limit %.0f", lmdb_names[i],
		       w0->lmdb[i] / 1024, wl->lmdb[i] / 1024, limit / 1024);
		if (per > 0)
			printf(" (%.0f B per %s)", (double)wl->lmdb[i] / per,
			       i == L_FUSION ? "event" : "warning version");
		if (i == L_DISPATCH && wh)
			printf(" (bounded by retention: 1.25 x %lld KiB at t=%.0f s + 1 MiB)",
			       wh->lmdb[i] / 1024, wh->t_end);
		else if (i == L_DISPATCH)
			printf(" (retain %d s; a run under %.0f s is too short for the retention bound)",
			       DSP_RETAIN_S, horizon + STEADY_MIN_S);
		printf("%s\n", ok ? " ok" : " FAIL");
		if (!ok)
			fails++;
	}
	int64_t pend = pending_total(&s);
	printf("lost.events_unacked %lld%s\n", (long long)pend, acked && pend == 0 ? " ok" : " FAIL");
	fails += !(acked && pend == 0);
	printf("lost.replay_versions %ld (replay of %ld events in %.1f s)\n", n_want, s.n_events, t_rep);
	bool same = n_want >= 0 && all_versions && !missing && !dups && !extra;
	printf("lost.versions_received %ld missing %ld duplicated %ld unexpected %ld (as multisets of "
	       "id@version + content)%s\n",
	       n_got, missing, dups, extra, same ? " ok" : " FAIL");
	fails += !same;
	/* an id@version fusion published twice with different content: dispatch
	 * keys warnings by id and ignores the second incident's versions ("version
	 * N already known"): a warning that is never released */
	long ignored = count_lines_with(s.dispatch_log, "already known", NULL, 0);
	printf("lost.fusion_id_version_reused %ld (replay %ld); dispatch ignored as already known "
	       "%ld%s\n",
	       reuse_got, reuse_want, ignored, reuse_got == 0 && ignored == 0 ? " ok" : " FAIL");
	fails += !(reuse_got == 0 && ignored == 0);
	printf("lost.fusion_outbox_floor %llu last_version_seq %llu%s\n", (unsigned long long)floor,
	       (unsigned long long)last_seq, floor > last_seq ? " ok" : " FAIL");
	fails += !(floor > last_seq);
	/* dispatch's rejections at stop: only approvals (of superseded versions;
	 * their log lines are rate-limited, so not every one is counted above) */
	bool dl_ok = dl_f == 0 && dl_d == 0 && rej_f == 0 && rej_d >= 0 &&
		     rej_d <= approvals && (rej_d == 0 || dl_sup > 0);
	printf("lost.deadletters logged fusion %ld dispatch %ld (besides %ld approvals of a version "
	       "already superseded, refused by design); rejected at stop fusion %ld dispatch %ld (at "
	       "most the %ld approvals sent; -1: no stop line)%s%s",
	       dl_f, dl_d, dl_sup, rej_f, rej_d, approvals, dl_ok ? " ok\n" : " FAIL: ",
	       dl_ok ? "" : first);
	if (!dl_ok && !first[0])
		printf("\n");
	fails += !dl_ok;
	/* CAP: every file wf-dispatch wrote was POSTed, none is still queued */
	struct wf_test_platform_counts pc;
	char **posted = NULL, **files = NULL;
	size_t n_posted = 0, cap_lost = 0;
	wf_test_platform_counts(s.platform, &pc);
	wf_test_platform_stop(s.platform, &posted, &n_posted);
	s.platform = NULL;
	char *capdir = wf_test_xasprintf("%s/state-dispatch/cap", s.dir);
	long n_files = wf_test_cap_identifiers(capdir, &files), queued = cap_queued(&s);
	for (long k = 0; k < n_files; k++)
		cap_lost += bsearch(&files[k], posted, n_posted, sizeof *posted, cmp_str) == NULL;
	bool cap_ok = n_files > 0 && queued == 0 && cap_lost == 0 && pc.bad == 0;
	printf("lost.cap files %ld, still queued %ld, POSTs %llu (%llu answered 503, %llu unreadable), "
	       "files never POSTed %zu%s\n",
	       n_files, queued, (unsigned long long)pc.requests, (unsigned long long)pc.refused,
	       (unsigned long long)pc.bad, cap_lost, cap_ok ? " ok" : " FAIL");
	fails += !cap_ok;
	for (long k = 0; k < n_files; k++)
		free(files[k]);
	free(files);
	for (size_t k = 0; k < n_posted; k++)
		free(posted[k]);
	free(posted);
	free(capdir);
	printf("alive fusion %s dispatch %s%s\n", fusion_alive ? "yes" : "no",
	       dispatch_alive ? "yes" : "no", fusion_alive && dispatch_alive ? " ok" : " FAIL");
	fails += !(fusion_alive && dispatch_alive);
	/* p99 per window, steady events, from 10% of the run on (the last
	 * window is the drain): latency needs no full retention window */
	double *p99s = xcalloc((size_t)s.n_win, sizeof *p99s);
	int np = 0;
	for (int k = (int)(wf - s.win); k < s.n_win - 1; k++)
		if (s.win[k].n_steady > 0)
			p99s[np++] = s.win[k].p99;
	double med = median(p99s, np), worst = np ? p99s[np - 1] : 0;
	double bound = c.p99_factor * med > c.p99_floor_ms ? c.p99_factor * med : c.p99_floor_ms;
	printf("latency.steady_p99_ms per window from t=%.0f s: median %.1f worst %.1f bound %.1f (%d "
	       "windows)%s\n",
	       wf->t_end, med, worst, bound, np, np > 0 && worst <= bound ? " ok" : " FAIL");
	fails += !(np > 0 && worst <= bound);
	double bworst = 0;
	for (int k = 0; k < s.n_win; k++)
		if (s.win[k].bmax > bworst)
			bworst = s.win[k].bmax;
	printf("latency.burst_max_ms %.1f (reported, not checked)\n", bworst);
	printf("latency.unmatched_event_ids %ld\n", s.lat_unknown);
	printf("RESULT %s (%d target%s missed)\n", fails ? "FAIL" : "PASS", fails, fails == 1 ? "" : "s");
	status = fails ? 1 : 0;
	free(p99s);
	for (long i = 0; i < n_want; i++)
		free(want[i].key);
	free(want);
	free(got);

out:
	atomic_store(&s.wstop, true);
	if (s.wthread_started)
		pthread_join(s.wthread, NULL);
	free(s.apprs);
	if (s.platform) { /* an early end */
		char **ids = NULL;
		size_t n_ids = 0;
		wf_test_platform_stop(s.platform, &ids, &n_ids);
		for (size_t k = 0; k < n_ids; k++)
			free(ids[k]);
		free(ids);
	}
	if (s.dispatch > 0)
		wf_test_stop(s.dispatch, SIGTERM, 10000);
	if (s.fusion > 0)
		wf_test_stop(s.fusion, SIGTERM, 10000);
	s.dispatch = s.fusion = 0;
	for (int a = 0; a < N_AG; a++)
		if (s.prod[a]) {
			wf_node_stop(s.prod[a]);
			wf_test_run_for(s.loop, 200);
			wf_node_free(s.prod[a]);
		}
	if (c.keep || status != 0)
		fprintf(stderr, "wf-soak: kept %s\n", s.dir);
	else
		wf_test_rmtree(s.dir);
	free(events);
	fflush(stdout); /* before LeakSanitizer's exit, which does not flush */
	return status;
}
