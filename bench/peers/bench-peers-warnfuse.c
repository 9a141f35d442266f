/* bench-peers-warnfuse: the warnfuse side of bench/peers/peers.py. The
 * events of the shared event set (JSON lines in the form of docs/protocol.md)
 * go through the durable pipeline on a private mosquitto:
 *
 *   producer: a wf_node in this process (durable outbox, 500 events per
 *             LMDB transaction, at most 20,000 unacknowledged): what an
 *             agency adapter's spool does once a file is parsed;
 *   fusion:   the real wf-fusion ([fusion] rules = deploy/fusion-rules.conf,
 *             clock = events, ordered = true; durable store, outbox);
 *   dispatch: the real wf-dispatch (durable store; routing file: one duty
 *             station for the province, one route "channels = duty"), which
 *             commits a duty record per warning version, acks it to fusion
 *             and publishes a DutyNotice (QoS 1);
 *   observer: a plain libmosquitto client (its own thread) on
 *             wf/v1/duty/+/inbox, wf/v1/ack/+ and wf/v1/state/+; it opens
 *             the bundles of notices itself (wf_bundle_unpack) and counts
 *             any that does not open (peers.warnfuse.bad_bundles).
 *
 * Every service bundles by default ([mqtt] bundle = 128, docs/protocol.md
 * "Bundles"): the producer's events of one agency and county, fusion's
 * warnings of one county, dispatch's notices to the one station.
 *
 * 1. Throughput: all events as fast as the outbox takes them. The expected
 *    output is what `wf-fusion --replay` makes of the same file. Reported,
 *    as events/s from the first emit: until the producer's outbox is empty
 *    (fusion committed everything: acked_events_per_s); until wf-dispatch
 *    has acked every warning version, i.e. committed it
 *    (committed_events_per_s); until every warning's final version reached
 *    the duty station (notified_events_per_s, 0 with the shortfall printed
 *    if that does not happen within 70 s of the commits: two of
 *    wf-dispatch's 30 s resend periods).
 * 2. Latency (--rate R > 0, the first R * --seconds events of the file, new
 *    fusion and dispatch instances with empty state): events paced at R/s;
 *    latency = the event committed and published -> the first duty notice
 *    of the warning version it made (the replay names the events behind
 *    each version; the latest of them made it): p50/p90/p99/max.
 * --no-station: the routing file has no station, so dispatch commits and
 *    acks every version but publishes nothing (a diagnosis; throughput only).
 *
 * Output: `name value` lines (peers.warnfuse.*). Every wait is bounded by
 * --time-limit (default 180 s); timings are reported, never asserted. Exit
 * 1 if anything was missing. */
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <mosquitto.h>
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
#include "proc.h"
#include "util.h"
#include "wf/bundle.h"
#include "wf/node.h"
#include "wf/pbjson.h"
#include "wf/topic.h"
#include "dispatch.pb-c.h"

#ifndef BENCH_SOURCE_ROOT
#define BENCH_SOURCE_ROOT "."
#endif
#ifndef BENCH_BUILD_ROOT
#define BENCH_BUILD_ROOT "."
#endif

#define PER_TXN 500
#define MAX_PENDING 20000
#define MAX_EVENTS 200000
#define SEEN (1L << 19) /* distinct (warning id, version) of duty notices, open addressing */

static struct wf_test_broker *g_broker;
static bool g_no_station; /* --no-station: the dispatcher publishes no notice */
static pid_t g_fusion, g_dispatch;

static void cleanup(void)
{
	if (g_dispatch > 0)
		wf_test_stop(g_dispatch, SIGTERM, 10000);
	if (g_fusion > 0)
		wf_test_stop(g_fusion, SIGTERM, 10000);
	g_dispatch = g_fusion = 0;
	g_broker = wf_test_broker_free(g_broker);
}

/* ---- a string -> index map (open addressing, bounded) ---- */

struct smap {
	char **k;
	long *v;
	long cap;
};

static void smap_init(struct smap *m, long cap)
{
	m->cap = cap;
	m->k = calloc((size_t)cap, sizeof *m->k);
	m->v = calloc((size_t)cap, sizeof *m->v);
	if (!m->k || !m->v)
		wf_test_die("calloc");
}

static void smap_free(struct smap *m)
{
	for (long i = 0; m->k && i < m->cap; i++)
		free(m->k[i]);
	free(m->k);
	free(m->v);
	m->k = NULL;
	m->v = NULL;
}

static long *smap_slot(struct smap *m, const char *key, bool add)
{
	unsigned long h = 5381;
	for (const char *p = key; *p; p++)
		h = h * 33u + (unsigned char)*p;
	for (long i = 0; i < m->cap; i++) {
		long s = (long)((h + (unsigned long)i) % (unsigned long)m->cap);
		if (!m->k[s]) {
			if (!add)
				return NULL;
			if (!(m->k[s] = strdup(key)))
				wf_test_die("strdup");
			m->v[s] = -1;
			return &m->v[s];
		}
		if (strcmp(m->k[s], key) == 0)
			return &m->v[s];
	}
	fprintf(stderr, "bench-peers-warnfuse: more than %ld keys\n", m->cap);
	exit(1);
}

/* "<agency>:<event id>" (as in Warning.event_ids) -> index in g_ev */
static struct smap g_evidx;
/* "<warning id>@<version>" -> the index of the event that made it (the
 * latest of its event_ids), from the replay */
static struct smap g_trigger;

/* ---- the event set ---- */

static Wf__V1__Event **g_ev;
static long g_n;

static void load_events(const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	long lineno = 0;
	if (!f)
		wf_test_die(path);
	g_ev = calloc(MAX_EVENTS, sizeof *g_ev);
	if (!g_ev)
		wf_test_die("calloc");
	while ((len = getline(&line, &cap, f)) > 0) {
		lineno++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (g_n >= MAX_EVENTS) {
			fprintf(stderr, "bench-peers-warnfuse: %s: more than %d events\n", path,
				MAX_EVENTS);
			exit(2);
		}
		ProtobufCMessage *m;
		char err[200];
		if (wf_pbjson_parse(&wf__v1__event__descriptor, line, (size_t)len, &m, err,
				    sizeof err) < 0) {
			fprintf(stderr, "bench-peers-warnfuse: %s:%ld: %s\n", path, lineno, err);
			exit(2);
		}
		g_ev[g_n++] = (Wf__V1__Event *)m;
	}
	free(line);
	fclose(f);
	if (g_n == 0) {
		fprintf(stderr, "bench-peers-warnfuse: %s: no events\n", path);
		exit(2);
	}
	smap_init(&g_evidx, 4 * MAX_EVENTS);
	for (long i = 0; i < g_n; i++) {
		char key[200];
		snprintf(key, sizeof key, "%s:%s", wf_agency_to_string(g_ev[i]->agency), g_ev[i]->id);
		*smap_slot(&g_evidx, key, true) = i;
	}
}

/* The final version of each warning in replay mode: the dispatcher resends
 * a pending notice after a failed publish, but only the warning's latest
 * version (an older one is superseded), so the pipeline is complete when
 * every warning's final version has reached the duty station. */
#define FINALS (1L << 17)
struct final {
	char *id;
	uint32_t version;
	bool seen;
};
static struct final *g_finals;
static long g_n_finals;
/* guards g_finals and the observer's figures (struct observer below) */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static struct final *final_slot(const char *id)
{
	unsigned long h = 5381;
	for (const char *p = id; *p; p++)
		h = h * 33u + (unsigned char)*p;
	for (long i = 0; i < FINALS; i++) {
		struct final *f = &g_finals[(h + (unsigned long)i) % FINALS];
		if (!f->id || strcmp(f->id, id) == 0)
			return f;
	}
	return NULL;
}

static void finals_clear(void)
{
	for (long i = 0; g_finals && i < FINALS; i++)
		free(g_finals[i].id);
	free(g_finals);
	g_finals = calloc(FINALS, sizeof *g_finals);
	if (!g_finals)
		wf_test_die("calloc");
	g_n_finals = 0;
	smap_free(&g_trigger);
	smap_init(&g_trigger, 4 * MAX_EVENTS);
}

/* One replay output line (a Warning in JSON): note its version. */
static void finals_note(const char *line, size_t len)
{
	ProtobufCMessage *m;
	char err[200];
	if (wf_pbjson_parse(&wf__v1__warning__descriptor, line, len, &m, err, sizeof err) < 0) {
		fprintf(stderr, "bench-peers-warnfuse: replay output: %s\n", err);
		exit(1);
	}
	const Wf__V1__Warning *w = (const Wf__V1__Warning *)m;
	struct final *f = final_slot(w->id);
	if (!f) {
		fprintf(stderr, "bench-peers-warnfuse: more than %ld warnings\n", FINALS);
		exit(1);
	}
	if (!f->id) {
		f->id = strdup(w->id);
		if (!f->id)
			wf_test_die("strdup");
		g_n_finals++;
	}
	if (w->version > f->version)
		f->version = w->version;
	long trig = -1;
	for (size_t i = 0; i < w->n_event_ids; i++) {
		long *ix = smap_slot(&g_evidx, w->event_ids[i], false);
		if (ix && *ix > trig)
			trig = *ix;
	}
	char key[200];
	snprintf(key, sizeof key, "%s@%u", w->id, (unsigned)w->version);
	*smap_slot(&g_trigger, key, true) = trig;
	protobuf_c_message_free_unpacked(m, NULL);
}

/* wf-fusion --replay of the first N lines of PATH: the warning versions
 * (and each warning's final one in g_finals). */
static long replay_versions(const char *dir, const char *path, long n)
{
	char *part = wf_test_xasprintf("%s/replay-%ld.jsonl", dir, n);
	FILE *in = fopen(path, "r"), *out = fopen(part, "w");
	char *line = NULL;
	size_t cap = 0;
	long k = 0;
	if (!in || !out)
		wf_test_die(part);
	while (k < n && getline(&line, &cap, in) > 0) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (fputs(line, out) < 0)
			wf_test_die(part);
		k++;
	}
	free(line);
	fclose(in);
	if (fclose(out) != 0)
		wf_test_die(part);
	char *exe = wf_test_build_path("services/fusion/wf-fusion");
	char *rules = wf_test_source_path("deploy/fusion-rules.conf");
	char *argv[] = { exe, (char *)"--replay", part, (char *)"--rules", rules,
			 (char *)"--regions", getenv("WF_REGIONS"), NULL };
	char *text = NULL;
	char *log = wf_test_xasprintf("%s/replay-%ld.log", dir, n);
	int st = wf_test_capture(argv, NULL, log, &text, 120000);
	long lines = 0;
	pthread_mutex_lock(&g_mu); /* the observer's thread reads g_finals */
	finals_clear();
	for (char *p = text, *nl; p && (nl = strchr(p, '\n')); p = nl + 1) {
		finals_note(p, (size_t)(nl - p));
		lines++;
	}
	pthread_mutex_unlock(&g_mu);
	if (st != 0) {
		fprintf(stderr, "bench-peers-warnfuse: replay exited %d (log %s)\n", st, log);
		lines = -1;
	}
	free(text);
	free(exe);
	free(rules);
	free(part);
	free(log);
	return lines;
}

/* ---- the observer: a libmosquitto client on its own thread ---- */

struct observer {
	struct mosquitto *mq;
	bool subscribed;
	const char *fusion_id, *dispatch_id;
	bool fusion_online, dispatch_online;
	long notices, distinct; /* all notices; distinct (warning id, version) */
	long finals;            /* warnings whose final version was notified */
	double t_last;          /* when FINALS last grew */
	char **seen;            /* "id@version" slots (SEEN) */
	/* latency phase: when each event was published (0: not yet) */
	bool latency;
	double *sent_at;
	double *lat_ms;
	long n_lat, lat_cap, unmatched;
	long bad_bundles; /* bundles that did not open (none expected) */
	/* fusion's sequence numbers the dispatcher acknowledged (after its
	 * commit): a bitmap, and how many distinct ones */
	unsigned char *acked;
	long n_acked;
	double t_acked;
};
#define ACK_SEQS (1L << 21)

static struct observer g_obs; /* under g_mu */



/* Records ID@VERSION; true if it was new. Under MU. */
static bool seen_add(const char *id, uint32_t version)
{
	char key[160];
	int n = snprintf(key, sizeof key, "%s@%u", id, (unsigned)version);
	if (n < 0 || (size_t)n >= sizeof key)
		return true;
	unsigned long h = 5381;
	for (const char *p = key; *p; p++)
		h = h * 33u + (unsigned char)*p;
	for (long i = 0; i < SEEN; i++) {
		char **slot = &g_obs.seen[(h + (unsigned long)i) % SEEN];
		if (!*slot) {
			*slot = strdup(key);
			return true;
		}
		if (strcmp(*slot, key) == 0)
			return false;
	}
	return true; /* full: counted, as the table bounds memory */
}

static void seen_clear(void)
{
	for (long i = 0; i < SEEN; i++) {
		free(g_obs.seen[i]);
		g_obs.seen[i] = NULL;
	}
	g_obs.notices = g_obs.distinct = g_obs.finals = 0;
	if (g_obs.acked)
		memset(g_obs.acked, 0, ACK_SEQS / 8);
	g_obs.n_acked = 0;
}

static void on_connect(struct mosquitto *mq, void *ud, int rc)
{
	(void)ud;
	if (rc != 0)
		return;
	mosquitto_subscribe(mq, NULL, "wf/v1/duty/+/inbox", 1);
	mosquitto_subscribe(mq, NULL, "wf/v1/state/+", 1);
	mosquitto_subscribe(mq, NULL, "wf/v1/ack/+", 1);
}

static void on_subscribe(struct mosquitto *mq, void *ud, int mid, int n, const int *granted)
{
	(void)mq;
	(void)ud;
	(void)mid;
	(void)n;
	(void)granted;
	pthread_mutex_lock(&g_mu);
	g_obs.subscribed = true;
	pthread_mutex_unlock(&g_mu);
}

static void on_notice(double now, const void *payload, size_t len);

static void on_message(struct mosquitto *mq, void *ud, const struct mosquitto_message *m)
{
	double now = wf_test_mono_s();
	(void)mq;
	(void)ud;
	if (strncmp(m->topic, "wf/v1/state/", 12) == 0) {
		Wf__V1__ServiceState *st =
			wf__v1__service_state__unpack(NULL, (size_t)m->payloadlen, m->payload);
		if (!st)
			return;
		pthread_mutex_lock(&g_mu);
		bool online = st->status == WF__V1__SERVICE_STATUS__SERVICE_ONLINE;
		if (g_obs.fusion_id && strcmp(st->service, g_obs.fusion_id) == 0)
			g_obs.fusion_online = online;
		if (g_obs.dispatch_id && strcmp(st->service, g_obs.dispatch_id) == 0)
			g_obs.dispatch_online = online;
		pthread_mutex_unlock(&g_mu);
		wf__v1__service_state__free_unpacked(st, NULL);
		return;
	}
	if (strncmp(m->topic, "wf/v1/ack/", 10) == 0) {
		Wf__V1__Ack *a = wf__v1__ack__unpack(NULL, (size_t)m->payloadlen, m->payload);
		if (!a)
			return;
		pthread_mutex_lock(&g_mu);
		if (g_obs.fusion_id && g_obs.dispatch_id && strcmp(a->producer, g_obs.fusion_id) == 0 &&
		    strcmp(a->consumer, g_obs.dispatch_id) == 0) {
			for (size_t i = 0; i < a->n_ranges; i++)
				for (uint64_t q = a->ranges[i]->first;
				     q <= a->ranges[i]->last && q < (uint64_t)ACK_SEQS; q++)
					if (!(g_obs.acked[q / 8] & (1u << (q % 8)))) {
						g_obs.acked[q / 8] |= (unsigned char)(1u << (q % 8));
						g_obs.n_acked++;
						g_obs.t_acked = now;
					}
		}
		pthread_mutex_unlock(&g_mu);
		wf__v1__ack__free_unpacked(a, NULL);
		return;
	}
	if (wf_bundle_is(m->payload, (size_t)m->payloadlen)) {
		/* a bundle of notices (wf/bundle.h): each entry as if alone */
		Wf__V1__Bundle *b = NULL;
		if (wf_bundle_unpack(m->topic, m->payload, (size_t)m->payloadlen, &b, NULL, 0) < 0) {
			pthread_mutex_lock(&g_mu);
			g_obs.bad_bundles++;
			pthread_mutex_unlock(&g_mu);
			return;
		}
		for (size_t i = 0; i < b->n_entries; i++)
			on_notice(now, b->entries[i]->payload.data, b->entries[i]->payload.len);
		wf_bundle_free(b);
		return;
	}
	on_notice(now, m->payload, (size_t)m->payloadlen);
}

/* One DutyNotice that reached the station. */
static void on_notice(double now, const void *payload, size_t len)
{
	Wf__V1__DutyNotice *d = wf__v1__duty_notice__unpack(NULL, len, payload);
	pthread_mutex_lock(&g_mu);
	g_obs.notices++;
	bool first = d && seen_add(d->warning_id, d->version);
	if (first)
		g_obs.distinct++;
	struct final *f = d ? final_slot(d->warning_id) : NULL;
	if (f && f->id && !f->seen && d->version >= f->version) {
		f->seen = true;
		g_obs.finals++;
		g_obs.t_last = now;
	}
	if (g_obs.latency && first) {
		/* the first notice of this version: from the publish of the event
		 * that made it */
		char key[200];
		snprintf(key, sizeof key, "%s@%u", d->warning_id, (unsigned)d->version);
		long *ix = smap_slot(&g_trigger, key, false);
		if (ix && *ix >= 0 && *ix < g_n && g_obs.sent_at[*ix] > 0 &&
		    g_obs.n_lat < g_obs.lat_cap)
			g_obs.lat_ms[g_obs.n_lat++] = (now - g_obs.sent_at[*ix]) * 1000.0;
		else
			g_obs.unmatched++;
	}
	pthread_mutex_unlock(&g_mu);
	if (d)
		wf__v1__duty_notice__free_unpacked(d, NULL);
}

static void observer_start(int port)
{
	mosquitto_lib_init();
	g_obs.seen = calloc(SEEN, sizeof *g_obs.seen);
	g_obs.acked = calloc(ACK_SEQS / 8, 1);
	if (!g_obs.seen || !g_obs.acked)
		wf_test_die("calloc");
	g_obs.mq = mosquitto_new("peers-observer", true, NULL);
	if (!g_obs.mq)
		wf_test_die("mosquitto_new");
	mosquitto_connect_callback_set(g_obs.mq, on_connect);
	mosquitto_subscribe_callback_set(g_obs.mq, on_subscribe);
	mosquitto_message_callback_set(g_obs.mq, on_message);
	if (mosquitto_connect(g_obs.mq, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS ||
	    mosquitto_loop_start(g_obs.mq) != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "bench-peers-warnfuse: observer cannot connect\n");
		exit(1);
	}
}

static void observer_stop(void)
{
	mosquitto_disconnect(g_obs.mq);
	mosquitto_loop_stop(g_obs.mq, false);
	mosquitto_destroy(g_obs.mq);
	mosquitto_lib_cleanup();
	seen_clear();
	free(g_obs.seen);
	free(g_obs.acked);
}

static bool obs_ready(void *ud)
{
	(void)ud;
	pthread_mutex_lock(&g_mu);
	bool v = g_obs.subscribed && g_obs.fusion_online && g_obs.dispatch_online;
	pthread_mutex_unlock(&g_mu);
	return v;
}

/* Warnings whose final version was notified so far (and when the last
 * one was); *DISTINCT: distinct (id, version) notices; *ALL: all. */
static long obs_notices(double *t_last, long *distinct, long *all)
{
	pthread_mutex_lock(&g_mu);
	long v = g_obs.finals;
	if (distinct)
		*distinct = g_obs.distinct;
	if (all)
		*all = g_obs.notices;
	if (t_last)
		*t_last = g_obs.t_last;
	pthread_mutex_unlock(&g_mu);
	return v;
}

/* ---- the services ---- */

static pid_t start_service(const char *dir, const char *prog, const char *id, int port,
			   const char *extra)
{
	char *text = wf_test_xasprintf("[service]\nid = %s\nstate_dir = %s/state-%s\nregions = %s\n"
			       "heartbeat = 1s\n[mqtt]\nhost = 127.0.0.1\nport = %d\n%s",
			       id, dir, id, getenv("WF_REGIONS"), port, extra);
	char *conf = wf_test_xasprintf("%s/%s.conf", dir, id);
	char *log = wf_test_xasprintf("%s/%s.log", dir, id);
	wf_test_spit_text(conf, text);
	char *exe = wf_test_build_path(prog);
	char *argv[] = { exe, (char *)"--config", conf, NULL };
	pid_t pid = wf_test_spawn(argv, NULL, log);
	free(exe);
	free(text);
	free(conf);
	free(log);
	return pid;
}

static bool start_pipeline(const char *dir, int port, const char *fusion_id,
			   const char *dispatch_id)
{
	char *rules = wf_test_source_path("deploy/fusion-rules.conf");
	char *fx = wf_test_xasprintf("[fusion]\nrules = %s\nclock = events\nordered = true\n", rules);
	char *routes = wf_test_xasprintf("%s/routes.conf", dir);
	wf_test_spit_text(routes, g_no_station ? "# bench-peers --no-station: no duty station (diagnosis)\n"
				    "[route all]\nchannels = duty\n"
				  : "# bench-peers: every warning to one duty station for the province\n"
				    "[station duty-41]\nregion = 410000\n"
				    "[route all]\nchannels = duty\n");
	char *capdir = wf_test_xasprintf("%s/cap-%s", dir, dispatch_id);
	char *dx = wf_test_xasprintf("[dispatch]\nroutes = %s\n[cap]\nspool_dir = %s\n", routes, capdir);
	pthread_mutex_lock(&g_mu);
	g_obs.fusion_id = fusion_id;
	g_obs.dispatch_id = dispatch_id;
	g_obs.fusion_online = g_obs.dispatch_online = false;
	pthread_mutex_unlock(&g_mu);
	g_fusion = start_service(dir, "services/fusion/wf-fusion", fusion_id, port, fx);
	g_dispatch = start_service(dir, "services/dispatch/wf-dispatch", dispatch_id, port, dx);
	free(rules);
	free(fx);
	free(routes);
	free(capdir);
	free(dx);
	return g_fusion > 0 && g_dispatch > 0;
}

static void stop_pipeline(void)
{
	if (g_dispatch > 0)
		wf_test_stop(g_dispatch, SIGTERM, 10000);
	if (g_fusion > 0)
		wf_test_stop(g_fusion, SIGTERM, 10000);
	g_dispatch = g_fusion = 0;
}

/* ---- the producer ---- */

struct bench {
	struct ev_loop *loop;
	struct wf_node *p;
	long count, emitted;
	ev_idle feeder;
	ev_timer refill; /* the window is full: looks again every 0.5 ms (no spinning) */
	/* latency */
	double rate, lat_start;
	ev_timer pacer;
};

static struct wf_node *new_producer(struct ev_loop *loop, const char *dir, const char *service,
				    int port)
{
	struct wf_node_options o;
	struct wf_node *n;
	char *sdir = wf_test_xasprintf("%s/%s", dir, service);
	if (mkdir(sdir, 0700) < 0)
		wf_test_die(sdir);
	wf_node_options_init(&o);
	o.service = service;
	o.kind = "adapter";
	o.state_dir = sdir;
	o.map_size = 1024u << 20;
	o.bus.host = "127.0.0.1";
	o.bus.port = port;
	o.heartbeat_ms = 1000;
	o.agency = 0; /* the event set spans the five agencies */
	o.outbox_max_entries = 2 * MAX_EVENTS;
	int r = wf_node_new(loop, &o, NULL, NULL, &n);
	if (r < 0) {
		fprintf(stderr, "bench-peers-warnfuse: node %s: %s\n", service, strerror(-r));
		exit(1);
	}
	wf_node_start(n);
	free(sdir);
	return n;
}

static struct wf_node *free_producer(struct bench *b)
{
	wf_node_stop(b->p);
	wf_test_run_for(b->loop, 100);
	wf_node_free(b->p);
	return NULL;
}

struct emit_ctx {
	struct bench *b;
	long first, n;
};

static int emit_fn(struct wf_txn *t, void *ud)
{
	struct emit_ctx *e = ud;
	for (long i = e->first; i < e->first + e->n; i++) {
		struct wf_codec_error why;
		int r = wf_node_emit_event(e->b->p, t, g_ev[i], &why);
		if (r == -EBADMSG) {
			fprintf(stderr, "bench-peers-warnfuse: event %ld (%s) invalid\n", i,
				g_ev[i]->id);
			exit(1);
		}
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
	if (wf_node_pending(b->p) > MAX_PENDING) {
		/* an idle watcher runs whenever nothing else is due: waiting
		 * for acks here would spin a core the pipeline needs */
		ev_idle_stop(loop, w);
		ev_timer_again(loop, &b->refill);
		return;
	}
	long n = b->count - b->emitted < PER_TXN ? b->count - b->emitted : PER_TXN;
	struct emit_ctx e = { b, b->emitted, n };
	if (wf_node_update(b->p, emit_fn, &e) == 0)
		b->emitted += n;
}

static void refill_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct bench *b = w->data;
	(void)revents;
	if (b->emitted >= b->count || wf_node_pending(b->p) > MAX_PENDING)
		return;
	ev_timer_stop(loop, w);
	ev_idle_start(loop, &b->feeder);
}

static void pacer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct bench *b = w->data;
	(void)revents;
	long due = (long)((wf_test_mono_s() - b->lat_start) * b->rate) + 1;
	if (due > b->count)
		due = b->count;
	if (due <= b->emitted) {
		if (b->emitted >= b->count)
			ev_timer_stop(loop, w);
		return;
	}
	struct emit_ctx e = { b, b->emitted, due - b->emitted };
	if (wf_node_update(b->p, emit_fn, &e) != 0)
		return;
	double t_pub = wf_test_mono_s();
	pthread_mutex_lock(&g_mu);
	for (long i = b->emitted; i < due; i++)
		g_obs.sent_at[i] = t_pub;
	pthread_mutex_unlock(&g_mu);
	b->emitted = due;
}

static bool all_acked(void *ud)
{
	struct bench *b = ud;
	return b->emitted >= b->count && wf_node_pending(b->p) == 0;
}

struct count_wait {
	long want;
};

/* The dispatcher acknowledged WANT of fusion's warning versions. */
static bool dispatch_committed(void *ud)
{
	struct count_wait *w = ud;
	pthread_mutex_lock(&g_mu);
	bool v = g_obs.n_acked >= w->want;
	pthread_mutex_unlock(&g_mu);
	return v;
}

static bool notices_reached(void *ud)
{
	struct count_wait *w = ud;
	return obs_notices(NULL, NULL, NULL) >= w->want;
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
	return v[(long)(p * (double)(n - 1) + 0.5)];
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: bench-peers-warnfuse --events FILE [--rate R] [--seconds S]\n"
		   "                            [--time-limit S] [--keep] [--no-station] [--help]\n"
		   "Throughput of all events of FILE (JSON lines, docs/protocol.md) through\n"
		   "producer outbox -> broker -> wf-fusion -> wf-dispatch -> duty notices;\n"
		   "then, with --rate R > 0 (default 1000), event -> duty notice latency on the\n"
		   "first R * S events (--seconds, default 10) paced at R/s. --no-station: the\n"
		   "routing file has no duty station, so wf-dispatch commits every version but\n"
		   "publishes no notice (a diagnosis: its commit path alone; no latency phase).\n");
}

int main(int argc, char **argv)
{
	const char *events = NULL;
	double rate = 1000, seconds = 10, limit = 180;
	bool keep = false;
	static const struct option opts[] = {
		{ "events", required_argument, NULL, 'e' },
		{ "rate", required_argument, NULL, 'R' },
		{ "seconds", required_argument, NULL, 's' },
		{ "time-limit", required_argument, NULL, 't' },
		{ "keep", no_argument, NULL, 'k' },
		{ "no-station", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "e:R:s:t:kSh", opts, NULL)) != -1) {
		char *e = NULL;
		switch (ch) {
		case 'e':
			events = optarg;
			break;
		case 'R':
			rate = strtod(optarg, &e);
			if (*e || rate < 0 || rate > 100000)
				goto bad;
			break;
		case 's':
			seconds = strtod(optarg, &e);
			if (*e || !(seconds > 0) || seconds > 600)
				goto bad;
			break;
		case 't':
			limit = strtod(optarg, &e);
			if (*e || !(limit > 0) || limit > 3600)
				goto bad;
			break;
		case 'k':
			keep = true;
			break;
		case 'S':
			g_no_station = true;
			rate = 0;
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
		fprintf(stderr, "bench-peers-warnfuse: bad value '%s'\n", optarg);
		return 2;
	}
	if (!events || optind != argc) {
		usage(stderr);
		return 2;
	}
	setenv("WF_SOURCE_ROOT", BENCH_SOURCE_ROOT, 0);
	setenv("WF_BUILD_ROOT", BENCH_BUILD_ROOT, 0);
	char *regions = wf_test_source_path("data/regions.csv");
	setenv("WF_REGIONS", regions, 0);
	load_events(events);

	char *dir = wf_test_mkdtemp("bench-peers-warnfuse");
	if (!dir)
		wf_test_die("mkdtemp");
	double t_replay = wf_test_mono_s();
	long want = replay_versions(dir, events, g_n);
	t_replay = wf_test_mono_s() - t_replay;
	if (want <= 0)
		return 1;
	printf("peers.warnfuse.events %ld\n", g_n);
	printf("peers.warnfuse.replay_warning_versions %ld\n", want);
	printf("peers.warnfuse.replay_events_per_s %.0f\n", (double)g_n / t_replay);
	fflush(stdout);

	struct wf_test_broker_options bo;
	wf_test_broker_options_init(&bo);
	bo.extra_config = "max_queued_messages 0\n";
	int r = wf_test_broker_start(&bo, &g_broker);
	atexit(cleanup);
	if (r < 0) {
		fprintf(stderr, "bench-peers-warnfuse: cannot start mosquitto: %s\n", strerror(-r));
		return 1;
	}
	int port = wf_test_broker_port(g_broker);
	int status = 0;
	struct bench b = { .count = g_n };
	b.loop = ev_loop_new(EVFLAG_AUTO);
	observer_start(port);

	/* ---- 1. throughput ---- */
	b.p = new_producer(b.loop, dir, "wf-adapter-peers", port);
	if (!start_pipeline(dir, port, "wf-fusion-peers", "wf-dispatch-peers") ||
	    !wf_test_run_until(b.loop, obs_ready, NULL, 20000) || !wf_node_ready(b.p)) {
		fprintf(stderr, "bench-peers-warnfuse: the pipeline did not come up (logs in %s)\n",
			dir);
		keep = true;
		status = 1;
		goto out;
	}
	ev_idle_init(&b.feeder, feed_cb);
	b.feeder.data = &b;
	ev_init(&b.refill, refill_cb);
	b.refill.repeat = 0.0005;
	b.refill.data = &b;
	/* each process's CPU over the throughput phase: where the time goes */
	pid_t pids[4] = { g_fusion, g_dispatch, wf_test_broker_pid(g_broker), getpid() };
	double cpu0[4];
	for (int i = 0; i < 4; i++)
		cpu0[i] = wf_test_proc_cpu_s(pids[i]);
	double t0 = wf_test_mono_s();
	ev_idle_start(b.loop, &b.feeder);
	bool acked = wf_test_run_until(b.loop, all_acked, &b, (int)(limit * 1000));
	double t_acked = wf_test_mono_s();
	long versions = want;
	struct count_wait cv = { versions };
	bool committed = wf_test_run_until(b.loop, dispatch_committed, &cv, (int)(limit * 1000));
	pthread_mutex_lock(&g_mu);
	double t_committed = g_obs.t_acked;
	long n_committed = g_obs.n_acked;
	pthread_mutex_unlock(&g_mu);
	static const char *const cpu_names[4] = { "fusion", "dispatch", "broker", "harness" };
	for (int i = 0; i < 4; i++) {
		double c = wf_test_proc_cpu_s(pids[i]);
		/* from the first emit to the last commit; -1: not readable */
		printf("peers.warnfuse.cpu_ms_%s %.0f\n", cpu_names[i],
		       c >= 0 && cpu0[i] >= 0 ? (c - cpu0[i]) * 1e3 : -1.0);
	}
	printf("peers.warnfuse.dispatch_committed_versions %ld\n", n_committed);
	printf("peers.warnfuse.committed_events_per_s %.0f\n",
	       committed ? (double)g_n / (t_committed - t0) : 0.0);
	want = g_no_station ? 0 : g_n_finals;
	printf("peers.warnfuse.replay_warnings %ld\n", g_n_finals);
	struct count_wait cw = { want };
	/* the notices are out right after the commits, or at wf-dispatch's
	 * [duty] resend of unacknowledged ones (every 30 s): 70 s covers two */
	bool notified = wf_test_run_until(b.loop, notices_reached, &cw,
					  (int)((limit < 70 ? limit : 70) * 1000));
	ev_idle_stop(b.loop, &b.feeder);
	ev_timer_stop(b.loop, &b.refill);
	double t_last;
	long distinct, all;
	long got = obs_notices(&t_last, &distinct, &all);
	printf("peers.warnfuse.final_versions_notified %ld\n", got);
	printf("peers.warnfuse.final_versions_missing %ld\n", want > got ? want - got : 0);
	printf("peers.warnfuse.duty_notices_distinct %ld\n", distinct);
	printf("peers.warnfuse.duty_notices_received %ld\n", all);
	pthread_mutex_lock(&g_mu);
	long bad_bundles = g_obs.bad_bundles;
	pthread_mutex_unlock(&g_mu);
	printf("peers.warnfuse.bad_bundles %ld\n", bad_bundles);
	printf("peers.warnfuse.versions_not_notified %ld\n",
	       versions > distinct ? versions - distinct : 0);
	printf("peers.warnfuse.acked_events_per_s %.0f\n",
	       acked ? (double)g_n / (t_acked - t0) : 0.0);
	printf("peers.warnfuse.notified_events_per_s %.0f\n",
	       notified ? (double)g_n / (t_last - t0) : 0.0);
	fflush(stdout);
	if (got == 0)
		t_last = t0;
	fprintf(stderr, "bench-peers-warnfuse: %ld events: outbox drained after %.2f s, %ld of %ld "
			"warnings' final versions notified, the last after %.2f s; %ld distinct "
			"notices of %ld versions, %ld received\n",
		g_n, t_acked - t0, got, want, t_last - t0, distinct, versions, all);
	fprintf(stderr, "bench-peers-warnfuse: %ld of %ld warning versions committed and "
			"acknowledged by wf-dispatch, the last after %.2f s\n",
		n_committed, versions, t_committed - t0);
	if (!acked || !committed) {
		status = 1;
		keep = true;
		goto out;
	}
	if (!notified)
		status = 1; /* reported above; the latency phase still runs */
	stop_pipeline();
	b.p = free_producer(&b);

	/* ---- 2. latency ---- */
	if (rate > 0) {
		b.count = (long)(rate * seconds);
		if (b.count > g_n)
			b.count = g_n;
		b.emitted = 0;
		b.rate = rate;
		pthread_mutex_lock(&g_mu);
		seen_clear();
		g_obs.latency = true;
		g_obs.lat_cap = 4 * b.count + 16;
		g_obs.lat_ms = calloc((size_t)g_obs.lat_cap, sizeof *g_obs.lat_ms);
		g_obs.sent_at = calloc((size_t)g_n, sizeof *g_obs.sent_at);
		pthread_mutex_unlock(&g_mu);
		long lat_want = replay_versions(dir, events, b.count);
		b.p = new_producer(b.loop, dir, "wf-adapter-lat", port);
		if (!g_obs.lat_ms || !g_obs.sent_at || lat_want <= 0 ||
		    !start_pipeline(dir, port, "wf-fusion-lat", "wf-dispatch-lat") ||
		    !wf_test_run_until(b.loop, obs_ready, NULL, 20000) || !wf_node_ready(b.p)) {
			fprintf(stderr, "bench-peers-warnfuse: latency: no pipeline (logs in %s)\n",
				dir);
			status = 1;
			keep = true;
			goto out;
		}
		ev_timer_init(&b.pacer, pacer_cb, 0.001, 0.001);
		b.pacer.data = &b;
		b.lat_start = wf_test_mono_s();
		ev_timer_start(b.loop, &b.pacer);
		cw.want = g_n_finals;
		bool ok = wf_test_run_until(b.loop, notices_reached, &cw,
					    (int)((seconds + limit) * 1000));
		ev_timer_stop(b.loop, &b.pacer);
		pthread_mutex_lock(&g_mu);
		g_obs.latency = false;
		long n = g_obs.n_lat;
		qsort(g_obs.lat_ms, (size_t)n, sizeof *g_obs.lat_ms, cmp_double);
		printf("peers.warnfuse.latency_events %ld\n", b.count);
		printf("peers.warnfuse.latency_rate %.0f\n", rate);
		printf("peers.warnfuse.latency_samples %ld\n", n);
		printf("peers.warnfuse.latency_p50_ms %.2f\n", pct(g_obs.lat_ms, n, 0.50));
		printf("peers.warnfuse.latency_p90_ms %.2f\n", pct(g_obs.lat_ms, n, 0.90));
		printf("peers.warnfuse.latency_p99_ms %.2f\n", pct(g_obs.lat_ms, n, 0.99));
		printf("peers.warnfuse.latency_max_ms %.2f\n", n ? g_obs.lat_ms[n - 1] : 0.0);
		fprintf(stderr, "bench-peers-warnfuse: latency: %ld events at %.0f/s, %ld of %ld "
				"final versions notified; %ld distinct notices of %ld versions "
				"(%ld received), %ld samples, %ld versions without a published "
				"event behind them\n",
			b.count, rate, g_obs.finals, g_n_finals, g_obs.distinct, lat_want,
			g_obs.notices, n, g_obs.unmatched);
		pthread_mutex_unlock(&g_mu);
		if (!ok)
			status = 1;
		stop_pipeline();
	}
out:
	stop_pipeline();
	if (b.p)
		b.p = free_producer(&b);
	observer_stop();
	ev_loop_destroy(b.loop);
	g_broker = wf_test_broker_free(g_broker);
	if (keep)
		fprintf(stderr, "bench-peers-warnfuse: kept %s\n", dir);
	else
		wf_test_rmtree(dir);
	for (long i = 0; i < g_n; i++)
		protobuf_c_message_free_unpacked(&g_ev[i]->base, NULL);
	free(g_ev);
	free(g_obs.lat_ms);
	free(g_obs.sent_at);
	smap_free(&g_evidx);
	smap_free(&g_trigger);
	for (long i = 0; g_finals && i < FINALS; i++)
		free(g_finals[i].id);
	free(g_finals);
	free(dir);
	free(regions);
	return status;
}
