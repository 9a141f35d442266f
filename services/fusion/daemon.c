/* daemon: wf-fusion on the bus (the default mode; see daemon.h).
 *
 * The engine (engine.h) is driven from the node (wf/node.h):
 *   - on_event: wf_fusion_ingest in the batch's write transaction; each
 *     warning version it emits goes into the node's outbox in the SAME
 *     transaction (wf_node_emit_warning), with the dedupe record of the
 *     event, so a crash either keeps all three or none;
 *   - on_batch_begin / on_batch_done: an attempt that did not commit
 *     (map growth re-run, store error) makes the engine rebuild its
 *     in-memory indexes from LMDB (wf_fusion_txn_aborted);
 *   - a timer at wf_fusion_next_deadline runs wf_fusion_tick in a
 *     wf_node_update transaction (expiry, cancels, dwell-time downgrades);
 *   - on_state: each agency's services' births, heartbeats and wills; an
 *     agency with no live service (OFFLINE will, or a heartbeat overdue by
 *     [fusion] source_timeout) is reported silent to the engine, which
 *     issues monitoring-gap notices for the warnings it feeds;
 *   - SIGHUP: the rule file is reloaded; a bad file keeps the old rules.
 *
 * Time: [fusion] clock = system takes the wall clock (WF_NOW shifts it, see
 * runtime.h); clock = events takes virtual time from the events as replay
 * mode does (an event's issued/observed time advances it), so a replay
 * through the broker is deterministic. */
#include "daemon.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <ev.h>

#include "engine.h"
#include "runtime.h"
#include "wf/codec.h"
#include "wf/log.h"
#include "wf/topic.h"

#define MAX_OWNED 32u
#define MAX_SOURCES 128u

enum fusion_clock { CLOCK_SYSTEM = 0, CLOCK_EVENTS = 1 };
static const char *const clock_values[] = { "system", "events", NULL };

struct fusion_config {
	char *rules;
	char *owned;
	int clock;
	bool ordered;
	int64_t source_timeout_ms;
	struct wf_node_config node;
};

struct source {
	char service[WF_TOPIC_ID_MAX + 1];
	int agency;
	bool online;
	int64_t last_mono_ms;  /* when we last heard it (monotonic) */
	int64_t interval_ms;   /* its promised heartbeat interval */
};

struct fusion_daemon {
	struct wf_runtime *rt;
	struct wf_node *node;
	struct wf_fusion *engine;
	const struct fusion_config *cfg;
	struct wf_clock clock;
	struct wf_txn *txn;     /* the transaction the engine is emitting in */
	bool in_batch;          /* a batch attempt began and has not ended */
	bool tick_attempted;
	int64_t event_time_ms;  /* clock = events: the largest event time seen */
	int64_t batch_time_ms;  /* event_time_ms when the current batch began */
	ev_timer tick_timer;
	ev_timer liveness_timer;
	struct source sources[MAX_SOURCES];
	size_t n_sources;
	bool agency_alive[WF__V1__AGENCY__AGENCY_POLICE + 1];
	bool agency_known[WF__V1__AGENCY__AGENCY_POLICE + 1];
	uint64_t emitted, rejected, invalid;
	/* wf_fusion_ingest results of committed batches (logged at stop: a
	 * repeated (agency, id) is acked, not dead-lettered, and counted here),
	 * and those of the batch attempt in progress */
	uint64_t results[WF_FUSION_RESULT_MAX], batch_results[WF_FUSION_RESULT_MAX];
};

/* Filters and prefixes of the loaded config (one config per process). */
static char filter_buf[64][WF_TOPIC_MAX];
static const char *filters[64];
static char owned_buf[MAX_OWNED][13];
static const char *owned_list[MAX_OWNED];
static size_t n_owned;

static const struct wf_config_key keys[] = {
	{ "fusion", "rules", WF_CONFIG_STRING, offsetof(struct fusion_config, rules), 1, 4096,
	  "/etc/warnfuse/fusion-rules.conf",
	  "The rule file (docs/fusion.md \"Rule language\"); reloaded on SIGHUP.", NULL },
	{ "fusion", "owned", WF_CONFIG_STRING, offsetof(struct fusion_config, owned), 0, 4096, "",
	  "Region code prefixes this instance owns, comma-separated (2..12 digits each,\n"
	  "at most 32), e.g. \"4101,4102\". Empty: every region. Two instances must own\n"
	  "disjoint sets.", NULL },
	{ "fusion", "clock", WF_CONFIG_ENUM, offsetof(struct fusion_config, clock), 0, 0, "system",
	  "system: the wall clock (WF_NOW in the environment starts it at a chosen\n"
	  "time). events: virtual time from the events, as in --replay (rehearsals).",
	  clock_values },
	{ "fusion", "ordered", WF_CONFIG_BOOL, offsetof(struct fusion_config, ordered), 0, 0, "true",
	  "Apply each producer's events in sequence order, also after a crash (the\n"
	  "output is then identical to an uninterrupted run). Needs every event of a\n"
	  "producer to reach this instance: set false when one adapter instance feeds\n"
	  "several fusion partitions.", NULL },
	{ "fusion", "source_timeout", WF_CONFIG_DURATION,
	  offsetof(struct fusion_config, source_timeout_ms), 0, 86400000, "0",
	  "An agency service whose heartbeat is overdue this long counts as silent\n"
	  "(monitoring-gap notices). 0: three times its promised heartbeat interval.",
	  NULL },
};
#define NKEYS (sizeof keys / sizeof keys[0])

static int parse_owned(const char *text, char *err, size_t errlen)
{
	char copy[4097];
	char *save = NULL;

	n_owned = 0;
	snprintf(copy, sizeof copy, "%s", text ? text : "");
	for (char *p = strtok_r(copy, ", ", &save); p; p = strtok_r(NULL, ", ", &save)) {
		size_t l = strlen(p);
		if (n_owned == MAX_OWNED) {
			snprintf(err, errlen, "[fusion] owned: more than %u prefixes", MAX_OWNED);
			return -EINVAL;
		}
		if (l < 2 || l > 12 || strspn(p, "0123456789") != l) {
			snprintf(err, errlen, "[fusion] owned: bad prefix '%s' (2..12 digits)", p);
			return -EINVAL;
		}
		memcpy(owned_buf[n_owned], p, l + 1);
		owned_list[n_owned] = owned_buf[n_owned];
		n_owned++;
	}
	return 0;
}

static void add_filter(size_t *n, const char *f)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp(filters[i], f) == 0)
			return;
	if (*n < sizeof filters / sizeof filters[0]) {
		snprintf(filter_buf[*n], sizeof filter_buf[0], "%s", f);
		filters[*n] = filter_buf[*n];
		(*n)++;
	}
}

/* Event filters for the owned prefixes: each prefix's own filter, plus the
 * padded topics of the coarser units containing it (a prefecture-wide or
 * province-wide event is chain context for every county in it). */
static const char *const *inputs(const void *config, size_t *ret_n)
{
	const struct fusion_config *c = config;
	char err[128], f[WF_TOPIC_MAX];
	size_t n = 0;

	if (parse_owned(c->owned, err, sizeof err) < 0 || n_owned == 0) {
		add_filter(&n, "wf/v1/event/#");
		*ret_n = n;
		return filters;
	}
	for (size_t i = 0; i < n_owned; i++) {
		const char *p = owned_list[i];
		size_t l = strlen(p);
		char code[13];
		/* the prefix as the code of its unit: 6+ digits a county (its
		 * topic), 4-5 a prefecture (410100: .../41/4101/#), 2-3 a
		 * province (410000: .../41/#) */
		if (l >= 6)
			snprintf(code, sizeof code, "%.6s", p);
		else if (l >= 4)
			snprintf(code, sizeof code, "%.4s00", p);
		else
			snprintf(code, sizeof code, "%.2s0000", p);
		if (wf_topic_event_filter(f, sizeof f, WF__V1__AGENCY__AGENCY_UNSPECIFIED, code) == 0)
			add_filter(&n, f);
		/* context: the exact (padded) topics of the coarser units that
		 * contain it, where prefecture- and province-wide events go */
		if (l >= 6) {
			snprintf(f, sizeof f, "wf/v1/event/+/%.2s/%.4s/%.4s00", p, p, p);
			add_filter(&n, f);
		}
		if (l >= 4) {
			snprintf(f, sizeof f, "wf/v1/event/+/%.2s/%.2s00/%.2s0000", p, p, p);
			add_filter(&n, f);
		}
	}
	*ret_n = n;
	return filters;
}

static int64_t now_ms(struct fusion_daemon *d)
{
	if (d->cfg->clock == CLOCK_EVENTS)
		return d->event_time_ms;
	return wf_clock_now_ms(&d->clock);
}

static int emit(void *ud, const Wf__V1__Warning *w)
{
	struct fusion_daemon *d = ud;
	Wf__V1__Warning copy = *w;
	struct wf_codec_error why;
	int r;

	memset(&why, 0, sizeof why);
	r = wf_node_emit_warning(d->node, d->txn, &copy, &why);
	if (r == -EBADMSG) {
		/* An engine bug, not the input's fault: failing the batch would
		 * stop every input for good (it would be resent forever). Say so
		 * loudly and go on; the next version of this warning is made
		 * from the same state. */
		wf_log(LOG_CRIT, "engine",
		       "internal error: warning %s@%u not published, it fails validation: %s %s: %s",
		       w->id, w->version, wf_reason_to_string(why.reason), why.field, why.detail);
		d->invalid++;
		return 0;
	}
	if (r == 0)
		d->emitted++;
	return r;
}

static void schedule_tick(struct fusion_daemon *d);

static int on_event(void *ud, struct wf_txn *t, const Wf__V1__Event *ev,
		    const struct wf_node_msg *m, struct wf_codec_error *why)
{
	struct fusion_daemon *d = ud;
	int r;

	/* clock = events: virtual time is the largest observation time, as in
	 * replay mode (wf_fusion_replay) */
	if (d->cfg->clock == CLOCK_EVENTS && ev->observed_ms > d->event_time_ms)
		d->event_time_ms = ev->observed_ms;
	d->txn = t;
	r = wf_fusion_advance(d->engine, t, now_ms(d), emit, d);
	if (r >= 0)
		r = wf_fusion_ingest(d->engine, t, ev, now_ms(d), emit, d);
	d->txn = NULL;
	if (r >= 0 && r < WF_FUSION_RESULT_MAX)
		d->batch_results[r]++;
	if (r == -EINVAL) {
		why->reason = WF_REASON_BAD_ENUM;
		snprintf(why->field, sizeof why->field, "event");
		snprintf(why->detail, sizeof why->detail, "not usable by the engine");
		d->rejected++;
		return WF_NODE_REJECT;
	}
	if (r == -EXDEV) {
		why->reason = WF_REASON_BAD_REFERENCE;
		snprintf(why->field, sizeof why->field, "references");
		snprintf(why->detail, sizeof why->detail,
			 "names an event of another status (exercise/test never touch actual)");
		d->rejected++;
		return WF_NODE_REJECT;
	}
	return r < 0 ? r : 0;
}

static void on_batch_begin(void *ud)
{
	struct fusion_daemon *d = ud;

	if (d->in_batch) {
		/* the previous attempt's transaction was aborted (map growth):
		 * start again from the state, and the time, it began with */
		wf_fusion_txn_aborted(d->engine);
		d->event_time_ms = d->batch_time_ms;
	} else {
		d->batch_time_ms = d->event_time_ms;
	}
	memset(d->batch_results, 0, sizeof d->batch_results);
	d->in_batch = true;
}

static void on_batch_done(void *ud, bool committed)
{
	struct fusion_daemon *d = ud;

	d->in_batch = false;
	if (committed)
		for (int i = 0; i < WF_FUSION_RESULT_MAX; i++)
			d->results[i] += d->batch_results[i];
	memset(d->batch_results, 0, sizeof d->batch_results);
	if (!committed) {
		wf_fusion_txn_aborted(d->engine);
		d->event_time_ms = d->batch_time_ms; /* the batch comes again */
	}
	schedule_tick(d);
}

/* --- timers --- */

static int tick_fn(struct wf_txn *t, void *ud)
{
	struct fusion_daemon *d = ud;
	int r;

	if (d->tick_attempted)
		wf_fusion_txn_aborted(d->engine);
	d->tick_attempted = true;
	d->txn = t;
	r = wf_fusion_advance(d->engine, t, now_ms(d), emit, d);
	if (r >= 0)
		r = wf_fusion_tick(d->engine, t, now_ms(d), emit, d);
	d->txn = NULL;
	return r < 0 ? r : 0;
}

static void run_tick(struct fusion_daemon *d)
{
	int r;

	d->tick_attempted = false;
	r = wf_node_update(d->node, tick_fn, d);
	if (r < 0) {
		wf_fusion_txn_aborted(d->engine);
		wf_log(LOG_ERR, "engine", "timer work not committed (retrying): %s", strerror(-r));
	}
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct fusion_daemon *d = w->data;

	run_tick(d);
	schedule_tick(d);
}

static void schedule_tick(struct fusion_daemon *d)
{
	struct ev_loop *loop = wf_runtime_loop(d->rt);
	int64_t due = wf_fusion_next_deadline(d->engine), now;
	double after;

	ev_timer_stop(loop, &d->tick_timer);
	if (due == INT64_MAX)
		return;
	if (d->cfg->clock == CLOCK_EVENTS) {
		/* virtual time moves only with events: due work runs at the next
		 * event (wf_fusion_ingest runs due timers first) */
		return;
	}
	now = now_ms(d);
	after = due > now ? (double)(due - now) / 1000.0 : 0.0;
	if (after > 3600.0)
		after = 3600.0; /* re-evaluated at least hourly */
	ev_timer_set(&d->tick_timer, after, 0.);
	ev_timer_start(loop, &d->tick_timer);
}

/* --- source liveness --- */

struct liveness_call {
	struct fusion_daemon *d;
	int agency;
	bool alive;
	bool attempted;
};

static int liveness_fn(struct wf_txn *t, void *ud)
{
	struct liveness_call *c = ud;
	int r;

	if (c->attempted)
		wf_fusion_txn_aborted(c->d->engine);
	c->attempted = true;
	c->d->txn = t;
	r = wf_fusion_source_liveness(c->d->engine, t, c->agency, c->alive, now_ms(c->d), emit,
				      c->d);
	c->d->txn = NULL;
	return r < 0 ? r : 0;
}

static const char *agency_name(int agency)
{
	const ProtobufCEnumValue *v =
		protobuf_c_enum_descriptor_get_value(&wf__v1__agency__descriptor, agency);
	return v != NULL ? v->name : "?";
}

static void update_agency(struct fusion_daemon *d, int agency)
{
	bool alive = false;
	struct liveness_call c = { d, agency, false, false };
	int r;

	for (size_t i = 0; i < d->n_sources; i++)
		if (d->sources[i].agency == agency && d->sources[i].online)
			alive = true;
	if (d->agency_known[agency] && d->agency_alive[agency] == alive)
		return;
	d->agency_known[agency] = true;
	d->agency_alive[agency] = alive;
	c.alive = alive;
	wf_log(alive ? LOG_NOTICE : LOG_WARNING, "liveness", "agency %s is %s",
	       agency_name(agency), alive ? "alive" : "silent");
	r = wf_node_update(d->node, liveness_fn, &c);
	if (r < 0) {
		wf_fusion_txn_aborted(d->engine);
		d->agency_known[agency] = false; /* try again at the next check */
		wf_log(LOG_ERR, "engine", "liveness change not committed: %s", strerror(-r));
	}
	schedule_tick(d);
}

static int64_t source_timeout(const struct fusion_daemon *d, const struct source *s)
{
	if (d->cfg->source_timeout_ms > 0)
		return d->cfg->source_timeout_ms;
	return 3 * (s->interval_ms > 0 ? s->interval_ms : 10000);
}

static void on_state(void *ud, const Wf__V1__ServiceState *st, bool retained)
{
	struct fusion_daemon *d = ud;
	int agency = (int)st->agency;
	size_t i;

	if (agency <= 0 || agency > WF__V1__AGENCY__AGENCY_POLICE)
		return; /* not an agency adapter */
	for (i = 0; i < d->n_sources; i++)
		if (strcmp(d->sources[i].service, st->service) == 0)
			break;
	if (i == d->n_sources) {
		if (d->n_sources == MAX_SOURCES)
			return;
		d->n_sources++;
		snprintf(d->sources[i].service, sizeof d->sources[i].service, "%s", st->service);
	}
	d->sources[i].agency = agency;
	d->sources[i].online = st->status == WF__V1__SERVICE_STATUS__SERVICE_ONLINE;
	d->sources[i].interval_ms = (int64_t)st->heartbeat_interval_s * 1000;
	d->sources[i].last_mono_ms = wf_clock_mono_ms();
	/* a retained ONLINE of a service that died without its will reaching
	 * us is caught by the heartbeat check */
	if (d->sources[i].online && retained && st->heartbeat_ms > 0) {
		int64_t age = wf_clock_now_ms(&d->clock) - st->heartbeat_ms;
		if (age > source_timeout(d, &d->sources[i]))
			d->sources[i].online = false;
	}
	update_agency(d, agency);
}

static void liveness_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct fusion_daemon *d = w->data;
	int64_t now = wf_clock_mono_ms();
	bool changed[WF__V1__AGENCY__AGENCY_POLICE + 1] = { false };

	for (size_t i = 0; i < d->n_sources; i++) {
		struct source *s = &d->sources[i];
		if (s->online && now - s->last_mono_ms > source_timeout(d, s)) {
			wf_log(LOG_WARNING, "liveness", "%s: no heartbeat for %lld ms", s->service,
			       (long long)(now - s->last_mono_ms));
			s->online = false;
			changed[s->agency] = true;
		}
	}
	for (int a = 1; a <= WF__V1__AGENCY__AGENCY_POLICE; a++)
		if (changed[a])
			update_agency(d, a);
}

/* --- life cycle --- */

static int start(struct wf_runtime *rt, const void *config, void **ret_state)
{
	const struct fusion_config *c = config;
	struct fusion_daemon *d = calloc(1, sizeof *d);
	struct wf_fusion_rules *rules = NULL;
	struct wf_fusion_options fo = { 0 };
	char err[512];
	int r;

	if (d == NULL)
		return -ENOMEM;
	d->rt = rt;
	d->node = wf_runtime_node(rt);
	d->cfg = c;
	d->clock = wf_runtime_clock(rt);
	r = parse_owned(c->owned, err, sizeof err);
	if (r < 0) {
		wf_log(LOG_ERR, "config", "%s", err);
		free(d);
		return r;
	}
	r = wf_fusion_rules_load(c->rules, &rules, err, sizeof err);
	if (r < 0) {
		wf_log(LOG_ERR, "config", "%s", err);
		free(d);
		return r;
	}
	fo.regions = wf_runtime_regions(rt);
	fo.owned = n_owned ? owned_list : NULL;
	fo.n_owned = n_owned;
	r = wf_fusion_open(wf_node_store(d->node), rules, &fo, &d->engine);
	if (r < 0) {
		wf_log(LOG_ERR, "store", "cannot open the engine's state: %s", strerror(-r));
		wf_fusion_rules_free(rules);
		free(d);
		return r;
	}
	{
		struct wf_fusion_stats st;
		wf_fusion_get_stats(d->engine, &st);
		d->event_time_ms = st.now_ms;
		wf_log(LOG_NOTICE, "engine",
		       "%zu rules from %s; %llu active warnings, %llu inputs held; owns %s; clock %s",
		       wf_fusion_rules_count(rules), c->rules, (unsigned long long)st.incidents,
		       (unsigned long long)st.inputs, n_owned ? c->owned : "every region",
		       clock_values[c->clock]);
	}
	ev_timer_init(&d->tick_timer, tick_cb, 0., 0.);
	d->tick_timer.data = d;
	ev_timer_init(&d->liveness_timer, liveness_cb, 1., 1.);
	d->liveness_timer.data = d;
	ev_timer_start(wf_runtime_loop(rt), &d->liveness_timer);
	schedule_tick(d);
	*ret_state = d;
	return 0;
}

static int reload(struct wf_runtime *rt, void *state, const void *new_config, char *msg,
		  size_t msglen)
{
	struct fusion_daemon *d = state;
	const struct fusion_config *c = new_config;
	struct wf_fusion_rules *rules = NULL;
	int r;

	if (strcmp(c->owned ? c->owned : "", d->cfg->owned ? d->cfg->owned : "") != 0 ||
	    c->clock != d->cfg->clock || c->ordered != d->cfg->ordered) {
		snprintf(msg, msglen, "[fusion] owned, clock and ordered change only at restart");
		return -EINVAL;
	}
	r = wf_fusion_rules_load(c->rules, &rules, msg, msglen);
	if (r < 0)
		return r;
	r = wf_fusion_set_rules(d->engine, rules, msg, msglen);
	if (r < 0) {
		wf_fusion_rules_free(rules);
		return r;
	}
	wf_log(LOG_NOTICE, "engine", "%zu rules from %s; every area is regraded",
	       wf_fusion_rules_count(rules), c->rules);
	d->cfg = c;
	/* apply the new rules now, not at the next event */
	run_tick(d);
	schedule_tick(d);
	return 0;
}

static void stop(struct wf_runtime *rt, void *state)
{
	struct fusion_daemon *d = state;

	ev_timer_stop(wf_runtime_loop(rt), &d->tick_timer);
	ev_timer_stop(wf_runtime_loop(rt), &d->liveness_timer);
	char line[256];
	size_t len = 0;
	for (int i = 0; i < WF_FUSION_RESULT_MAX && len < sizeof line; i++)
		len += (size_t)snprintf(line + len, sizeof line - len, "%s%llu %s", i ? ", " : "",
					(unsigned long long)d->results[i], wf_fusion_result_to_string(i));
	wf_log(LOG_NOTICE, "engine", "ingested: %s; %llu rejected by the engine", line,
	       (unsigned long long)d->rejected);
}

static void destroy(void *state)
{
	struct fusion_daemon *d = state;

	wf_fusion_close(d->engine);
	free(d);
}

static int validate(const void *config, const struct wf_region_table *regions, char *err,
		    size_t errlen)
{
	const struct fusion_config *c = config;
	struct wf_fusion_rules *rules = NULL;
	int r = parse_owned(c->owned, err, errlen);

	if (r < 0)
		return r;
	r = wf_fusion_rules_load(c->rules, &rules, err, errlen);
	wf_fusion_rules_free(rules);
	return r;
}

static int apply_node_options(const void *config, struct wf_node_options *o)
{
	const struct fusion_config *c = config;

	o->ordered = c->ordered;
	return 0;
}

static const struct wf_runtime_spec spec = {
	.name = "wf-fusion",
	.kind = "fusion",
	.summary = "the fusion engine: correlates events into graded warnings (docs/fusion.md)",
	.extra_help =
		"Without --replay or --check-rules, wf-fusion runs as a daemon: it subscribes to\n"
		"the events of the regions it owns ([fusion] owned), keeps its state in LMDB and\n"
		"publishes every warning version through its outbox. SIGHUP reloads the rules.\n"
		"\n"
		"Offline modes (no broker):\n"
		"  wf-fusion --replay FILE --rules FILE [--regions FILE] [--owned P,...] [--drain]\n"
		"  wf-fusion --check-rules FILE\n"
		"(wf-fusion --replay - --help lists their options.)\n"
		"\n"
		"Environment: WF_NOW=TIME (RFC 3339) starts the daemon's clock at TIME.\n",
	.default_config = "/etc/warnfuse/fusion.conf",
	.default_id = "wf-fusion-1",
	.default_state_dir = "/var/lib/warnfuse/fusion",
	.keys = keys,
	.nkeys = NKEYS,
	.config_size = sizeof(struct fusion_config),
	.node_offset = offsetof(struct fusion_config, node),
	.inputs = inputs,
	.validate = validate,
	.node_options = apply_node_options,
	.start = start,
	.reload = reload,
	.stop = stop,
	.destroy = destroy,
	.on_event = on_event,
	.on_batch_begin = on_batch_begin,
	.on_batch_done = on_batch_done,
	.on_state = on_state,
};

int wf_fusion_daemon_main(int argc, char **argv)
{
	return wf_runtime_main(argc, argv, &spec);
}
