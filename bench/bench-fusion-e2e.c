/* bench-fusion-e2e: events -> broker -> the wf-fusion daemon -> warnings,
 * with durable commits everywhere, on a private mosquitto.
 *
 *   producer: a wf_node in this process (outbox, durable LMDB commits, 500
 *             events per transaction, at most 20,000 unacknowledged);
 *   fusion:   the real services/fusion/wf-fusion process ([fusion] rules =
 *             deploy/fusion-rules.conf, ordered = true; its store is always
 *             durable);
 *   consumer: a wf_node subscribed to wf/v1/warning/# (durable group
 *             commits, acks after the commit), like dispatch, on its own
 *             libev loop in a second thread, so that the producer's fsyncs
 *             do not delay when a warning is seen.
 *
 * 1. Throughput (clock = events), two workloads of N events (default 50,000):
 *    "versions", every event a new warning version (the worst case), and
 *    "reports", a new level every 10th report of a county (see MIX_REPORTS;
 *    printed with the prefix fusion_e2e.reports.). The events are those of the
 *    integration test's scenario (rainstorm and gale reports moving through
 *    21 counties, levels rising and falling, one every 6 s of event time over
 *    3.5 days). The expected warning versions come from `wf-fusion --replay`
 *    of the same events (also timed). Reported: events/s from the first
 *    emit until the producer's outbox is empty (every event acked by fusion,
 *    i.e. committed with its warnings), and until the last expected warning
 *    version reached the consumer; the ratio to raw Mosquitto QoS 1.
 * 2. Latency (clock = system): events at a paced RATE (default 1,000/s) for
 *    SECONDS (default 10), observed "now", round-robin over 100 counties; in
 *    each county a cycle ALERT IV -> UPDATE III -> UPDATE II -> UPDATE I ->
 *    CANCEL, so every event makes a new warning version (checked first with
 *    a replay of the same stream). Latency = event published (after its
 *    commit and the publish call) -> warning version received by the
 *    consumer, on CLOCK_MONOTONIC in this process, keyed by county: p50, p90,
 *    p99, max.
 *
 * The raw baseline: bench-broker (next to this program) --count 50000, or
 * --raw-qos1 R (bench/run passes what bench-broker printed).
 *
 * Output (stdout):
 *   fusion_e2e.replay_events_per_s N
 *   fusion_e2e.acked_events_per_s N        (first emit -> outbox drained)
 *   fusion_e2e.warned_events_per_s N       (first emit -> last warning)
 *   ratio.fusion_e2e.acked_vs_raw_qos1 R, ratio.fusion_e2e.warned_vs_raw_qos1 R
 *   fusion_e2e.latency_p50_ms X ... p90, p99, max, and .latency_samples N
 * Bounded by --count, --seconds and --time-limit (default 120 s per phase);
 * timings are reported, never asserted. */
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "proc.h"
#include "util.h"
#include "wf/clock.h"
#include "wf/node.h"
#include "wf/pbjson.h"

#ifndef BENCH_SOURCE_ROOT
#define BENCH_SOURCE_ROOT "."
#endif
#ifndef BENCH_BUILD_ROOT
#define BENCH_BUILD_ROOT "."
#endif

#define PER_TXN 500
#define MAX_PENDING 20000
#define LAT_AREAS 100

/* What exit() must not leave behind (wf_test_die() and the generators exit). */
static struct wf_test_broker *g_broker;
static pid_t g_child;

static void cleanup(void)
{
	if (g_child > 0)
		wf_test_stop(g_child, SIGTERM, 10000);
	g_child = 0;
	g_broker = wf_test_broker_free(g_broker);
}

struct cfg {
	long count;
	int rate;
	double seconds;
	double time_limit_s;
	double raw_qos1;
	bool keep;
	const char *broker_log; /* --broker-log FILE: log_type all, saved at the end */
};

/* ---- the event streams ---- */

static const char *const counties21[] = {
	"410102000000", "410103000000", "410104000000", "410105000000", "410106000000",
	"410108000000", "410122000000", "410181000000", "410182000000", "410183000000",
	"410184000000", "410185000000", "410202000000", "410203000000", "410204000000",
	"410205000000", "410212000000", "410221000000", "410222000000", "410223000000",
	"410225000000",
};
#define N21 (sizeof counties21 / sizeof counties21[0])

/* Throughput workloads: MIX_VERSIONS, every event changes its county's
 * level (one new warning version per event, the worst case: two QoS 1
 * hops per event); MIX_REPORTS, each county's level changes every 10th
 * report (stations reporting the same level again, as AWS feeds do),
 * valid 60-80 min, so most events join a standing warning (about one
 * version per 50 events). */
enum { MIX_VERSIONS = 0, MIX_REPORTS = 1 };
static int g_mix;

/* Event I of the throughput scenario (tests/integration/test-pipeline.c's
 * scenario_event, one every 6 s instead of 30 s so 50,000 stay in the
 * codec's 7-day window). */
static void scenario_event(int64_t t0, long i, Wf__V1__Event *ev, char *id, size_t idlen)
{
	static const Wf__V1__Level levels[] = { WF__V1__LEVEL__LEVEL_IV, WF__V1__LEVEL__LEVEL_III,
						WF__V1__LEVEL__LEVEL_II, WF__V1__LEVEL__LEVEL_III,
						WF__V1__LEVEL__LEVEL_I, WF__V1__LEVEL__LEVEL_IV };
	wf__v1__event__init(ev);
	snprintf(id, idlen, "bench-%06ld", i);
	ev->id = id;
	ev->agency = WF__V1__AGENCY__AGENCY_MET;
	ev->hazard = (i / 7) % 3 == 0 ? WF__V1__HAZARD__HAZARD_GALE : WF__V1__HAZARD__HAZARD_RAINSTORM;
	ev->region = (char *)counties21[(i * 7) % N21];
	ev->level = levels[(i / (long)N21 / (g_mix == MIX_REPORTS ? 10 : 1)) % 6];
	ev->observed_ms = t0 + (int64_t)i * 6000;
	ev->issued_ms = ev->observed_ms;
	/* reports are valid 60-80 min (an hourly AWS product); the 15-25 min
	 * of the worst case keep every county inside fusion's 30 min renew
	 * window, so each report would also continue its warning */
	ev->expires_ms = ev->observed_ms + (g_mix == MIX_REPORTS ? (60 + (i % 3) * 10)
								: (15 + (i % 3) * 5)) * 60000LL;
	ev->status = WF__V1__STATUS__STATUS_ACTUAL;
	ev->msg_type = WF__V1__MSG_TYPE__MSG_TYPE_ALERT;
	ev->text = (char *)"测试事件";
}

/* 100 Henan counties for the latency stream (from the region table). */
static char lat_counties[LAT_AREAS][13];

static void load_counties(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512];
	int n = 0;
	if (!f)
		wf_test_die(path);
	while (n < LAT_AREAS && fgets(line, sizeof line, f))
		if (strncmp(line, "41", 2) == 0 && strstr(line, ",county") && line[12] == ',')
			snprintf(lat_counties[n++], 13, "%.12s", line);
	fclose(f);
	if (n < LAT_AREAS) {
		fprintf(stderr, "bench-fusion-e2e: %s: only %d Henan counties\n", path, n);
		exit(1);
	}
}

/* Event I of the latency stream at time AT: county I % 100, step (I / 100)
 * % 5 of its cycle ALERT IV, UPDATE III, II, I (each referencing the
 * previous), CANCEL. */
static void latency_event(long i, int64_t at, Wf__V1__Event *ev, char *id, size_t idlen,
			  char *ref, size_t reflen, char **refs)
{
	static const Wf__V1__Level levels[] = { WF__V1__LEVEL__LEVEL_IV, WF__V1__LEVEL__LEVEL_III,
						WF__V1__LEVEL__LEVEL_II, WF__V1__LEVEL__LEVEL_I,
						WF__V1__LEVEL__LEVEL_NONE };
	int step = (int)((i / LAT_AREAS) % 5);
	wf__v1__event__init(ev);
	snprintf(id, idlen, "lat-%07ld", i);
	ev->id = id;
	ev->agency = WF__V1__AGENCY__AGENCY_MET;
	ev->hazard = WF__V1__HAZARD__HAZARD_RAINSTORM;
	ev->region = lat_counties[i % LAT_AREAS];
	ev->level = levels[step];
	ev->observed_ms = at;
	ev->issued_ms = at;
	ev->expires_ms = at + 3600000;
	ev->status = WF__V1__STATUS__STATUS_ACTUAL;
	ev->msg_type = step == 0 ? WF__V1__MSG_TYPE__MSG_TYPE_ALERT
		       : step == 4 ? WF__V1__MSG_TYPE__MSG_TYPE_CANCEL
				   : WF__V1__MSG_TYPE__MSG_TYPE_UPDATE;
	ev->text = (char *)"延迟测试";
	if (step > 0) {
		snprintf(ref, reflen, "lat-%07ld", i - LAT_AREAS);
		refs[0] = ref;
		ev->references = refs;
		ev->n_references = 1;
	}
}

/* ---- replay: the expected warning versions ---- */

static long replay(const char *dir, const char *name, long n,
		   void (*make)(long i, Wf__V1__Event *ev, char *id, char *ref, char **refs, void *ud),
		   void *ud, double *ret_secs)
{
	char *events = wf_test_xasprintf("%s/%s.jsonl", dir, name);
	FILE *f = fopen(events, "w");
	if (!f)
		wf_test_die(events);
	for (long i = 0; i < n; i++) {
		Wf__V1__Event ev;
		char id[32], ref[32], *refs[1];
		make(i, &ev, id, ref, refs, ud);
		ev.producer = (char *)"wf-met-bench";
		ev.seq = (uint64_t)i + 1;
		char *js = wf_pbjson_print(&ev.base);
		if (!js)
			wf_test_die("wf_pbjson_print");
		fprintf(f, "%s\n", js);
		free(js);
	}
	if (fclose(f) != 0)
		wf_test_die(events);
	char *exe = wf_test_build_path("services/fusion/wf-fusion");
	char *rules = wf_test_source_path("deploy/fusion-rules.conf");
	char *argv[] = { exe, (char *)"--replay", events, (char *)"--rules", rules,
			 (char *)"--regions", getenv("WF_REGIONS"), NULL };
	char *out = NULL;
	char *log = wf_test_xasprintf("%s/%s-replay.log", dir, name);
	double t0 = wf_test_mono_s();
	int st = wf_test_capture(argv, NULL, log, &out, 120000);
	*ret_secs = wf_test_mono_s() - t0;
	long lines = 0;
	for (char *p = out; p && (p = strchr(p, '\n')); p++)
		lines++;
	if (st != 0) {
		fprintf(stderr, "bench-fusion-e2e: replay exited %d (log %s)\n", st, log);
		lines = -1;
	}
	free(out);
	free(exe);
	free(rules);
	free(events);
	free(log);
	return lines;
}

static void make_scenario(long i, Wf__V1__Event *ev, char *id, char *ref, char **refs, void *ud)
{
	(void)ref;
	(void)refs;
	scenario_event(*(int64_t *)ud, i, ev, id, 32);
}

static void make_latency(long i, Wf__V1__Event *ev, char *id, char *ref, char **refs, void *ud)
{
	latency_event(i, *(int64_t *)ud + i, ev, id, 32, ref, 32, refs);
}

/* ---- fusion process ---- */

static char *fusion_conf(const char *dir, const char *id, int port, const char *clock)
{
	char *rules = wf_test_source_path("deploy/fusion-rules.conf");
	char *text = wf_test_xasprintf("[service]\nid = %s\nstate_dir = %s/state-%s\nregions = %s\n"
			       "heartbeat = 1s\n[mqtt]\nhost = 127.0.0.1\nport = %d\n"
			       "[fusion]\nrules = %s\nclock = %s\nordered = true\n",
			       id, dir, id, getenv("WF_REGIONS"), port, rules, clock);
	char *p = wf_test_xasprintf("%s/%s.conf", dir, id);
	wf_test_spit_text(p, text);
	free(text);
	free(rules);
	return p;
}

static pid_t start_fusion(const char *conf, const char *log)
{
	char *exe = wf_test_build_path("services/fusion/wf-fusion");
	char *argv[] = { exe, (char *)"--config", (char *)conf, NULL };
	pid_t pid = wf_test_spawn(argv, NULL, log);
	g_child = pid > 0 ? pid : 0;
	free(exe);
	return pid;
}

/* ---- the in-process nodes ---- */

struct bench {
	const struct cfg *c;
	struct ev_loop *loop;
	struct wf_node *p, *w;
	int64_t t0;          /* scenario start (event time) */
	long count, emitted;
	ev_idle feeder;
	/* consumer */
	const char *fusion_id;
	long warnings;
	double t_last_warning;
	bool fusion_online;
	/* latency phase */
	double lat_start;
	long lat_total, lat_sent;
	int64_t lat_at0;     /* event time of event 0 */
	double area_sent[LAT_AREAS];  /* monotonic publish time of the area's last event */
	double area_due[LAT_AREAS];   /* when the pacer was due to emit it */
	double *due_ms;
	long area_last[LAT_AREAS];    /* its index */
	double *lat_ms;
	long n_lat, lat_unmatched;
	double max_commit_ms;
	ev_timer pacer;
	bool latency;
	/* the consumer's thread; everything it shares is under MU */
	pthread_mutex_t mu;
	pthread_t wthread;
	bool wthread_started, wready;
	atomic_bool wstop;
	struct ev_loop *wloop;
	ev_timer wpoll;
	struct wf_node_stats wstats;
	const char *dir;
	int port;
};

static int on_warning(void *ud, struct wf_txn *t, const Wf__V1__Warning *w,
		      const struct wf_node_msg *m, struct wf_codec_error *why)
{
	struct bench *b = ud;
	double now = wf_test_mono_s();
	(void)t;
	(void)why;
	pthread_mutex_lock(&b->mu);
	if (strcmp(m->producer, b->fusion_id) != 0)
		goto out;
	b->warnings++;
	b->t_last_warning = now;
	if (!b->latency)
		goto out;
	/* the county is the warning's area: regions[0] is it, or inside it */
	for (int a = 0; a < LAT_AREAS && w->n_regions > 0; a++)
		if (strncmp(w->regions[0], lat_counties[a], 6) == 0) {
			if (b->area_last[a] >= 0) {
				b->due_ms[b->n_lat] = (now - b->area_due[a]) * 1000.0;
				b->lat_ms[b->n_lat++] = (now - b->area_sent[a]) * 1000.0;
				b->area_last[a] = -1; /* one version per event */
			} else
				b->lat_unmatched++;
			goto out;
		}
	b->lat_unmatched++;
out:
	pthread_mutex_unlock(&b->mu);
	return 0;
}

static void on_state(void *ud, const Wf__V1__ServiceState *st, bool retained)
{
	struct bench *b = ud;
	(void)retained;
	pthread_mutex_lock(&b->mu);
	if (b->fusion_id && st->status == WF__V1__SERVICE_STATUS__SERVICE_ONLINE &&
	    strcmp(st->service, b->fusion_id) == 0)
		b->fusion_online = true;
	pthread_mutex_unlock(&b->mu);
}

static bool fusion_online(void *ud)
{
	struct bench *b = ud;
	pthread_mutex_lock(&b->mu);
	bool v = b->fusion_online;
	pthread_mutex_unlock(&b->mu);
	return v;
}

static bool nodes_ready(void *ud)
{
	struct bench *b = ud;
	pthread_mutex_lock(&b->mu);
	bool v = b->wready;
	pthread_mutex_unlock(&b->mu);
	return v && wf_node_ready(b->p);
}

static long warnings_now(struct bench *b, double *t_last)
{
	pthread_mutex_lock(&b->mu);
	long v = b->warnings;
	if (t_last)
		*t_last = b->t_last_warning;
	pthread_mutex_unlock(&b->mu);
	return v;
}

static struct wf_node *new_node(struct bench *b, struct ev_loop *loop, const char *dir,
				const char *service, const char *kind, int port, bool consumer)
{
	static const char *inputs[] = { "wf/v1/warning/#" };
	struct wf_node_options o;
	struct wf_node_callbacks cb = { .on_warning = on_warning, .on_state = on_state };
	struct wf_node *n;
	char *sdir = wf_test_xasprintf("%s/%s", dir, service);
	if (mkdir(sdir, 0700) < 0)
		wf_test_die(sdir);
	wf_node_options_init(&o);
	o.service = service;
	o.kind = kind;
	o.state_dir = sdir;
	o.map_size = 512u << 20;
	o.bus.host = "127.0.0.1";
	o.bus.port = port;
	o.heartbeat_ms = 1000;
	if (consumer) {
		o.inputs = inputs;
		o.n_inputs = 1;
	} else {
		o.agency = WF__V1__AGENCY__AGENCY_MET;
		o.outbox_max_entries = 200000;
	}
	int r = wf_node_new(loop, &o, consumer ? &cb : NULL, b, &n);
	if (r < 0) {
		fprintf(stderr, "bench-fusion-e2e: node %s: %s\n", service, strerror(-r));
		exit(1);
	}
	wf_node_start(n);
	free(sdir);
	return n;
}

static struct wf_node *free_node(struct bench *b, struct wf_node *n)
{
	wf_node_stop(n);
	wf_test_run_for(b->loop, 100);
	wf_node_free(n);
	return NULL;
}

/* ---- the consumer's thread ---- */

static void wpoll_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct bench *b = w->data;
	(void)revents;
	struct wf_node_stats st;
	wf_node_get_stats(b->w, &st);
	bool ready = wf_node_ready(b->w);
	pthread_mutex_lock(&b->mu);
	b->wready = ready;
	b->wstats = st;
	pthread_mutex_unlock(&b->mu);
	if (atomic_load(&b->wstop))
		ev_break(loop, EVBREAK_ALL);
}

static void *consumer_main(void *ud)
{
	struct bench *b = ud;
	ev_timer_init(&b->wpoll, wpoll_cb, 0.01, 0.01);
	b->wpoll.data = b;
	ev_timer_start(b->wloop, &b->wpoll);
	ev_run(b->wloop, 0);
	ev_timer_stop(b->wloop, &b->wpoll);
	wf_node_stop(b->w);
	wf_test_run_for(b->wloop, 100);
	wf_node_free(b->w);
	b->w = NULL;
	return NULL;
}

static void consumer_start(struct bench *b)
{
	b->wloop = ev_loop_new(EVFLAG_AUTO);
	if (!b->wloop)
		wf_test_die("ev_loop_new");
	b->w = new_node(b, b->wloop, b->dir, "wf-dispatch-bench", "dispatch", b->port, true);
	if (pthread_create(&b->wthread, NULL, consumer_main, b) != 0)
		wf_test_die("pthread_create");
	b->wthread_started = true;
}

static void consumer_stop(struct bench *b)
{
	if (!b->wthread_started)
		return;
	atomic_store(&b->wstop, true);
	pthread_join(b->wthread, NULL);
	ev_loop_destroy(b->wloop);
	b->wthread_started = false;
}

/* ---- phase 1: throughput ---- */

struct emit_ctx {
	struct bench *b;
	long first, n;
};

static int emit_fn(struct wf_txn *t, void *ud)
{
	struct emit_ctx *e = ud;
	for (long i = e->first; i < e->first + e->n; i++) {
		Wf__V1__Event ev;
		char id[32];
		scenario_event(e->b->t0, i, &ev, id, sizeof id);
		int r = wf_node_emit_event(e->b->p, t, &ev, NULL);
		if (r < 0)
			return r;
	}
	return 0;
}

static void feed_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	struct bench *b = w->data;
	(void)revents;
	if (b->emitted >= b->count) {
		ev_idle_stop(loop, w);
		return;
	}
	if (wf_node_pending(b->p) > MAX_PENDING)
		return;
	long n = b->count - b->emitted < PER_TXN ? b->count - b->emitted : PER_TXN;
	struct emit_ctx e = { b, b->emitted, n };
	if (wf_node_update(b->p, emit_fn, &e) == 0)
		b->emitted += n;
}

static bool all_acked(void *ud)
{
	struct bench *b = ud;
	return b->emitted >= b->count && wf_node_pending(b->p) == 0;
}

struct count_wait {
	struct bench *b;
	long want;
};

static bool warnings_reached(void *ud)
{
	struct count_wait *w = ud;
	return warnings_now(w->b, NULL) >= w->want;
}

/* Phase 1 for workload MIX: the events through wf-fusion (clock = events)
 * until every one is acknowledged and every expected version arrived.
 * Returns 0, or 1 when something is missing or did not come up. */
static int throughput(struct bench *b, int mix)
{
	const struct cfg *c = b->c;
	const char *tag = mix == MIX_REPORTS ? "fusion_e2e.reports." : "fusion_e2e.";
	const char *wname = mix == MIX_REPORTS ? "reports" : "versions";
	char *log = wf_test_xasprintf("%s/fusion-%s.log", b->dir, wname);
	int status = 0;
	g_mix = mix;
	b->emitted = 0;
	b->t0 = wf_clock_now_ms(NULL) - 4 * 86400000LL;
	b->t0 -= b->t0 % 60000;
	double replay_s;
	long want = replay(b->dir, wname, c->count, make_scenario, &b->t0, &replay_s);
	if (want <= 0) {
		free(log);
		return 1;
	}
	printf("%sreplay_events_per_s %.0f\n", tag, (double)c->count / replay_s);
	printf("%sversions_per_event %.3f\n", tag, (double)want / (double)c->count);
	fprintf(stderr, "bench-fusion-e2e: %s: replay: %ld events -> %ld warning versions in %.2f s\n",
		wname, c->count, want, replay_s);
	fflush(stdout);

	pthread_mutex_lock(&b->mu);
	b->fusion_id = mix == MIX_REPORTS ? "wf-fusion-bench2" : "wf-fusion-bench";
	b->fusion_online = false;
	b->warnings = 0;
	pthread_mutex_unlock(&b->mu);
	char *conf = fusion_conf(b->dir, b->fusion_id, b->port, "events");
	b->p = new_node(b, b->loop, b->dir, mix == MIX_REPORTS ? "wf-met-bench2" : "wf-met-bench",
			"met", b->port, false);
	pid_t fusion = start_fusion(conf, log);
	free(conf);
	if (fusion < 0 || !wf_test_run_until(b->loop, nodes_ready, b, 10000) ||
	    !wf_test_run_until(b->loop, fusion_online, b, 20000)) {
		fprintf(stderr, "bench-fusion-e2e: nodes or wf-fusion did not come up (log %s)\n", log);
		free(log);
		return 1;
	}
	ev_idle_init(&b->feeder, feed_cb);
	b->feeder.data = b;
	double t0 = wf_test_mono_s();
	ev_idle_start(b->loop, &b->feeder);
	bool acked = wf_test_run_until(b->loop, all_acked, b, (int)(c->time_limit_s * 1000));
	double t_acked = wf_test_mono_s();
	struct count_wait cw = { b, want };
	bool warned = wf_test_run_until(b->loop, warnings_reached, &cw, 20000);
	ev_idle_stop(b->loop, &b->feeder);
	double t_last_warning;
	long got = warnings_now(b, &t_last_warning);
	if (!acked)
		fprintf(stderr, "bench-fusion-e2e: %ld emitted, %lld unacknowledged after %.0f s\n",
			b->emitted, (long long)wf_node_pending(b->p), c->time_limit_s);
	if (!warned) {
		struct wf_node_stats ws;
		pthread_mutex_lock(&b->mu);
		ws = b->wstats;
		pthread_mutex_unlock(&b->mu);
		fprintf(stderr, "bench-fusion-e2e: %ld of %ld warning versions (log %s); consumer: "
				"%llu received, %llu applied, %llu duplicates, %llu rejected, %llu "
				"deferred, %llu batches, %llu acks sent\n",
			got, want, log, (unsigned long long)ws.received,
			(unsigned long long)ws.applied, (unsigned long long)ws.duplicates,
			(unsigned long long)ws.rejected, (unsigned long long)ws.deferred,
			(unsigned long long)ws.batches, (unsigned long long)ws.acks_sent);
	}
	double acked_rate = acked ? (double)c->count / (t_acked - t0) : 0;
	/* all expected versions arrived: events/s to the last one; else 0 and
	 * the shortfall is printed (the output differs from replay mode) */
	double warned_rate = warned ? (double)c->count / (t_last_warning - t0) : 0;
	printf("%sacked_events_per_s %.0f\n", tag, acked_rate);
	printf("%swarned_events_per_s %.0f\n", tag, warned_rate);
	printf("%swarning_versions_missing %ld\n", tag, want > got ? want - got : 0);
	printf("ratio.%sacked_vs_raw_qos1 %.2f\n", tag, c->raw_qos1 > 0 ? acked_rate / c->raw_qos1 : 0);
	printf("ratio.%swarned_vs_raw_qos1 %.2f\n", tag,
	       c->raw_qos1 > 0 ? warned_rate / c->raw_qos1 : 0);
	fflush(stdout);
	fprintf(stderr, "bench-fusion-e2e: %s: %ld events: all acked after %.2f s, %ld warning "
			"versions (%ld expected), the last after %.2f s\n",
		wname, c->count, t_acked - t0, got, want, t_last_warning - t0);
	if (!acked || !warned)
		status = 1;
	wf_test_stop(fusion, SIGTERM, 10000);
	g_child = 0;
	b->p = free_node(b, b->p);
	free(log);
	return status;
}

/* ---- phase 2: latency ---- */

struct lat_ctx {
	struct bench *b;
	long first, n;
};

static int lat_emit_fn(struct wf_txn *t, void *ud)
{
	struct lat_ctx *e = ud;
	for (long i = e->first; i < e->first + e->n; i++) {
		Wf__V1__Event ev;
		char id[32], ref[32], *refs[1];
		latency_event(i, wf_clock_now_ms(NULL), &ev, id, sizeof id, ref, sizeof ref, refs);
		int r = wf_node_emit_event(e->b->p, t, &ev, NULL);
		if (r < 0)
			return r;
	}
	return 0;
}

static void pacer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct bench *b = w->data;
	(void)revents;
	double now = wf_test_mono_s();
	long due = (long)((now - b->lat_start) * b->c->rate) + 1;
	if (due > b->lat_total)
		due = b->lat_total;
	if (due <= b->lat_sent) {
		if (b->lat_sent >= b->lat_total)
			ev_timer_stop(loop, w);
		return;
	}
	struct lat_ctx e = { b, b->lat_sent, due - b->lat_sent };
	double t_before = wf_test_mono_s();
	if (wf_node_update(b->p, lat_emit_fn, &e) != 0)
		return;
	double t_pub = wf_test_mono_s();
	if ((t_pub - t_before) * 1000.0 > b->max_commit_ms)
		b->max_commit_ms = (t_pub - t_before) * 1000.0;
	pthread_mutex_lock(&b->mu);
	for (long i = b->lat_sent; i < due; i++) {
		int a = (int)(i % LAT_AREAS);
		if (b->area_last[a] >= 0)
			b->lat_unmatched++; /* the previous event's version has not come */
		b->area_sent[a] = t_pub;
		b->area_due[a] = b->lat_start + (double)i / b->c->rate;
		b->area_last[a] = i;
	}
	pthread_mutex_unlock(&b->mu);
	b->lat_sent = due;
}

static bool lat_done(void *ud)
{
	struct bench *b = ud;
	return b->lat_sent >= b->lat_total && warnings_now(b, NULL) >= b->lat_total;
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

/* bench-broker next to this program: the raw QoS 1 baseline. */
static double measure_raw(const char *self)
{
	char *copy = strdup(self);
	char *exe = wf_test_xasprintf("%s/bench-broker", dirname(copy));
	char *argv[] = { exe, (char *)"--count", (char *)"50000", NULL };
	char *out = NULL;
	double raw = 0;
	int st = wf_test_capture(argv, NULL, NULL, &out, 120000);
	const char *p = out ? strstr(out, "broker.raw_qos1_msgs_per_s ") : NULL;
	if (st == 0 && p)
		raw = strtod(p + strlen("broker.raw_qos1_msgs_per_s "), NULL);
	else
		fprintf(stderr, "bench-fusion-e2e: %s failed (%d); no raw baseline\n", exe, st);
	free(out);
	free(exe);
	free(copy);
	return raw;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: bench-fusion-e2e [--count N] [--rate EVENTS_PER_S] [--seconds S]\n"
		"                        [--raw-qos1 MSGS_PER_S] [--time-limit S] [--keep]\n"
		"                        [--broker-log FILE] [--help]\n"
		"Defaults: --count 50000 (throughput, clock = events), --rate 1000 --seconds 10\n"
		"(latency, clock = system), --time-limit 120 per phase. Without --raw-qos1,\n"
		"bench-broker --count 50000 measures the baseline in this run. --broker-log\n"
		"FILE: the broker logs every packet (log_type all; slower) into FILE.\n");
}

int main(int argc, char **argv)
{
	struct cfg c = { .count = 50000, .rate = 1000, .seconds = 10, .time_limit_s = 120 };
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "rate", required_argument, NULL, 'R' },
		{ "seconds", required_argument, NULL, 's' },
		{ "raw-qos1", required_argument, NULL, 'r' },
		{ "time-limit", required_argument, NULL, 't' },
		{ "keep", no_argument, NULL, 'k' },
		{ "broker-log", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "n:R:s:r:t:kL:h", opts, NULL)) != -1) {
		char *e = NULL;
		switch (ch) {
		case 'n':
			c.count = strtol(optarg, &e, 10);
			if (*e || c.count < 1 || c.count > 100000)
				goto bad; /* 6 s apart: 100,000 is 7 days of event time */
			break;
		case 'R':
			c.rate = (int)strtol(optarg, &e, 10);
			if (*e || c.rate < 1 || c.rate > 100000)
				goto bad;
			break;
		case 's':
			c.seconds = strtod(optarg, &e);
			if (*e || !(c.seconds > 0) || c.seconds > 600)
				goto bad;
			break;
		case 'r':
			c.raw_qos1 = strtod(optarg, &e);
			if (*e || !(c.raw_qos1 > 0))
				goto bad;
			break;
		case 't':
			c.time_limit_s = strtod(optarg, &e);
			if (*e || !(c.time_limit_s > 0) || c.time_limit_s > 3600)
				goto bad;
			break;
		case 'k':
			c.keep = true;
			break;
		case 'L':
			c.broker_log = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		continue;
bad:
		fprintf(stderr, "bench-fusion-e2e: bad value '%s'\n", optarg);
		return 2;
	}
	setenv("WF_SOURCE_ROOT", BENCH_SOURCE_ROOT, 0);
	setenv("WF_BUILD_ROOT", BENCH_BUILD_ROOT, 0);
	char *regions = wf_test_source_path("data/regions.csv");
	setenv("WF_REGIONS", regions, 0);
	load_counties(getenv("WF_REGIONS"));
	if (!(c.raw_qos1 > 0))
		c.raw_qos1 = measure_raw(argv[0]);

	struct wf_test_broker_options bo;
	wf_test_broker_options_init(&bo);
	bo.extra_config = c.broker_log ? "max_queued_messages 0\nlog_type all\n"
				       : "max_queued_messages 0\n";
	struct wf_test_broker *br = NULL;
	int r = wf_test_broker_start(&bo, &br);
	g_broker = br;
	atexit(cleanup);
	if (r < 0) {
		fprintf(stderr, "bench-fusion-e2e: cannot start mosquitto: %s\n", strerror(-r));
		return 1;
	}
	int port = wf_test_broker_port(br);
	char *dir = wf_test_mkdtemp("bench-fusion-e2e");
	if (!dir)
		wf_test_die("mkdtemp");
	char *log = wf_test_xasprintf("%s/fusion.log", dir);
	int status = 0;
	struct bench b = { .c = &c, .count = c.count, .dir = dir, .port = port };
	pthread_mutex_init(&b.mu, NULL);
	atomic_init(&b.wstop, false);
	b.loop = ev_loop_new(EVFLAG_AUTO);

	/* ---- 1. throughput, both workloads ---- */
	consumer_start(&b);
	for (int mix = MIX_VERSIONS; mix <= MIX_REPORTS && status == 0; mix++)
		status = throughput(&b, mix);

	/* ---- 2. latency ---- */
	double replay_s;
	b.lat_total = (long)(c.rate * c.seconds);
	if (b.lat_total < LAT_AREAS)
		b.lat_total = LAT_AREAS;
	int64_t at0 = wf_clock_now_ms(NULL) - 3600000; /* a stream of the same shape */
	long lat_want = replay(dir, "latency", b.lat_total, make_latency, &at0, &replay_s);
	fprintf(stderr, "bench-fusion-e2e: latency stream: %ld events -> %ld warning versions "
			"in replay\n",
		b.lat_total, lat_want);
	if (lat_want != b.lat_total)
		fprintf(stderr, "bench-fusion-e2e: not one version per event: latencies are keyed "
				"by county and may be off\n");
	pthread_mutex_lock(&b.mu);
	b.fusion_id = "wf-fusion-lat";
	b.fusion_online = false;
	b.warnings = 0;
	b.latency = true;
	b.lat_ms = calloc((size_t)b.lat_total + 1, sizeof *b.lat_ms);
	b.due_ms = calloc((size_t)b.lat_total + 1, sizeof *b.due_ms);
	for (int a = 0; a < LAT_AREAS; a++)
		b.area_last[a] = -1;
	pthread_mutex_unlock(&b.mu);
	char *conf = fusion_conf(dir, b.fusion_id, port, "system");
	b.p = new_node(&b, b.loop, dir, "wf-met-lat", "met", port, false);
	pid_t fusion = start_fusion(conf, log);
	free(conf);
	if (fusion < 0 || !wf_test_run_until(b.loop, nodes_ready, &b, 10000) ||
	    !wf_test_run_until(b.loop, fusion_online, &b, 20000)) {
		fprintf(stderr, "bench-fusion-e2e: latency: wf-fusion did not come up (log %s)\n", log);
		status = 1;
		goto out;
	}
	wf_test_run_for(b.loop, 500);
	ev_timer_init(&b.pacer, pacer_cb, 0.001, 0.001);
	b.pacer.data = &b;
	b.lat_start = wf_test_mono_s();
	ev_timer_start(b.loop, &b.pacer);
	bool ok = wf_test_run_until(b.loop, lat_done, &b, (int)((c.seconds + 30) * 1000));
	ev_timer_stop(b.loop, &b.pacer);
	consumer_stop(&b); /* its figures are final now */
	if (!ok)
		fprintf(stderr, "bench-fusion-e2e: latency: %ld sent, %ld warning versions\n",
			b.lat_sent, b.warnings);
	qsort(b.lat_ms, (size_t)b.n_lat, sizeof *b.lat_ms, cmp_double);
	printf("fusion_e2e.latency_samples %ld\n", b.n_lat);
	printf("fusion_e2e.latency_p50_ms %.2f\n", pct(b.lat_ms, b.n_lat, 0.50));
	printf("fusion_e2e.latency_p90_ms %.2f\n", pct(b.lat_ms, b.n_lat, 0.90));
	printf("fusion_e2e.latency_p99_ms %.2f\n", pct(b.lat_ms, b.n_lat, 0.99));
	printf("fusion_e2e.latency_max_ms %.2f\n", b.n_lat ? b.lat_ms[b.n_lat - 1] : 0.0);
	/* the same from when the pacer was due to emit: adds the producer's own
	 * durable commit (fsync) and any lag of the pacer */
	qsort(b.due_ms, (size_t)b.n_lat, sizeof *b.due_ms, cmp_double);
	printf("fusion_e2e.latency_from_due_p50_ms %.2f\n", pct(b.due_ms, b.n_lat, 0.50));
	printf("fusion_e2e.latency_from_due_p99_ms %.2f\n", pct(b.due_ms, b.n_lat, 0.99));
	printf("fusion_e2e.latency_from_due_max_ms %.2f\n", b.n_lat ? b.due_ms[b.n_lat - 1] : 0.0);
	fprintf(stderr, "bench-fusion-e2e: latency: %ld events at %d/s, %ld warning versions, %ld "
			"samples, %ld unmatched; producer commit+publish max %.2f ms\n",
		b.lat_sent, c.rate, b.warnings, b.n_lat, b.lat_unmatched, b.max_commit_ms);
	wf_test_stop(fusion, SIGTERM, 10000);
	g_child = 0;
out:
	if (b.p)
		free_node(&b, b.p);
	consumer_stop(&b);
	ev_loop_destroy(b.loop);
	if (c.broker_log) { /* the whole file (wf_test_broker_log returns its start) */
		char *from = wf_test_xasprintf("%s/mosquitto.log", wf_test_broker_dir(g_broker));
		char *cmd[] = { (char *)"/bin/cp", from, (char *)c.broker_log, NULL };
		if (wf_test_wait(wf_test_spawn(cmd, NULL, NULL), 60000) != 0)
			fprintf(stderr, "bench-fusion-e2e: cannot copy %s\n", from);
		free(from);
	}
	if (g_child > 0) /* a wf-fusion that did not come up */
		wf_test_stop(g_child, SIGTERM, 10000);
	g_child = 0;
	g_broker = wf_test_broker_free(g_broker);
	if (c.keep)
		fprintf(stderr, "bench-fusion-e2e: kept %s\n", dir);
	else
		wf_test_rmtree(dir);
	printf("broker.raw_qos1_msgs_per_s.fusion_e2e_run %.0f\n", c.raw_qos1);
	free(b.lat_ms);
	free(b.due_ms);
	free(dir);
	free(log);
	free(regions);
	return status;
}
