/* wf-dispatch: the dispatcher daemon on the runtime skeleton
 * (docs/dispatch.md): config keys, the node callbacks into the engine,
 * publishing the engine's outputs after each commit, the deadline timer,
 * the reconnect resync, the CAP spool and POST queue, the SMS channel. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <ev.h>

#include "dispatch.h"
#include "poster.h"
#include "runtime.h"
#include "sms.h"
#include "spool.h"
#include "stats.h"
#include "wf/log.h"
#include "wf/bundle.h"
#include "wf/bus.h"

struct dispatch_config {
	char *routes;
	char *input;
	int release[5];
	bool downgrade_follows, cancel_follows;
	int64_t review_timeout[5];
	int64_t ack_deadline[5];
	int64_t followup_interval;
	int64_t duty_resend;
	int64_t retain;
	char *cap_spool, *cap_sender, *cap_sender_name, *cap_post_url;
	int64_t cap_post_timeout;
	char *sms_url, *sms_user, *sms_password_file, *sms_from, *sms_subscribers, *sms_dlr_host;
	int64_t sms_dlr_port, sms_max_parts;
	double sms_rate;
	bool ordered;
	struct wf_node_config node;
};

#define OFF(f) offsetof(struct dispatch_config, f)
static const char *const release_words[] = { "auto", "one", "two", NULL };

static const struct wf_config_key keys[] = {
	{ "dispatch", "routes", WF_CONFIG_STRING, OFF(routes), 1, 0,
	  "/etc/warnfuse/dispatch-routes.conf",
	  "Routing file: duty stations, routes, silences (docs/dispatch.md).", NULL },
	{ "dispatch", "input", WF_CONFIG_STRING, OFF(input), 1, 0, "wf/v1/warning/#",
	  "Warning subscription filter (e.g. wf/v1/warning/41/4101/# for one prefecture). End it "
	  "in # at the county or above: warnings come bundled on the county topic.", NULL },
	{ "dispatch", "ordered", WF_CONFIG_BOOL, OFF(ordered), 0, 0, "true",
	  "Apply each fusion instance's warning versions in their order: one that arrives ahead of "
	  "a lost predecessor waits for it (resent by fusion), so no version is skipped after a "
	  "broker restart. Set false only if this dispatcher's input takes part of an instance's "
	  "warnings (the gaps would never fill).", NULL },
	{ "dispatch", "retain", WF_CONFIG_DURATION, OFF(retain), DSP_RETAIN_MIN_MS, DSP_RETAIN_MAX_MS,
	  "30d",
	  "How long the records of an ended warning (cancelled or expired, no notice still waiting "
	  "for its ack deadline) are kept: its versions, review, deliveries, duty and follow-up "
	  "records and its retained wf/v1/review view then go (the audit trail stays); so do SMS "
	  "recipients that are final, once their delivery expired this long ago. At least "
	  "10m (docs/dispatch.md, \"Retention\").", NULL },
	{ "policy", "release_I", WF_CONFIG_ENUM, OFF(release[1]), 0, 0, "two",
	  "Level I (red): auto, one approval, or two different operators.", release_words },
	{ "policy", "release_II", WF_CONFIG_ENUM, OFF(release[2]), 0, 0, "two",
	  "Level II (orange).", release_words },
	{ "policy", "release_III", WF_CONFIG_ENUM, OFF(release[3]), 0, 0, "one",
	  "Level III (yellow).", release_words },
	{ "policy", "release_IV", WF_CONFIG_ENUM, OFF(release[4]), 0, 0, "auto",
	  "Level IV (blue).", release_words },
	{ "policy", "downgrade_follows_approval", WF_CONFIG_BOOL, OFF(downgrade_follows), 0, 0,
	  "true", "An update to a lower level after a released version is released at once.", NULL },
	{ "policy", "cancel_follows_approval", WF_CONFIG_BOOL, OFF(cancel_follows), 0, 0, "true",
	  "A cancel after a released version is released at once.", NULL },
	{ "policy", "review_timeout_I", WF_CONFIG_DURATION, OFF(review_timeout[1]), 0, 86400000,
	  "10m", "Pending review this long escalates to the next level's duty station (0: never).",
	  NULL },
	{ "policy", "review_timeout_II", WF_CONFIG_DURATION, OFF(review_timeout[2]), 0, 86400000,
	  "15m", "Review timeout for level II.", NULL },
	{ "policy", "review_timeout_III", WF_CONFIG_DURATION, OFF(review_timeout[3]), 0, 86400000,
	  "30m", "Review timeout for level III.", NULL },
	{ "policy", "review_timeout_IV", WF_CONFIG_DURATION, OFF(review_timeout[4]), 0, 86400000,
	  "0", "Review timeout for level IV.", NULL },
	{ "duty", "ack_deadline_I", WF_CONFIG_DURATION, OFF(ack_deadline[1]), 0, 86400000, "5m",
	  "A duty station acknowledges a level I notice within this, or it escalates (0: no ack).",
	  NULL },
	{ "duty", "ack_deadline_II", WF_CONFIG_DURATION, OFF(ack_deadline[2]), 0, 86400000, "10m",
	  "Acknowledgement deadline for level II.", NULL },
	{ "duty", "ack_deadline_III", WF_CONFIG_DURATION, OFF(ack_deadline[3]), 0, 86400000, "30m",
	  "Acknowledgement deadline for level III.", NULL },
	{ "duty", "ack_deadline_IV", WF_CONFIG_DURATION, OFF(ack_deadline[4]), 0, 86400000, "1h",
	  "Acknowledgement deadline for level IV.", NULL },
	{ "duty", "followup_interval", WF_CONFIG_DURATION, OFF(followup_interval), 0, 86400000,
	  "30m", "续报 reminders while a warning is active at II or above (0: none).", NULL },
	{ "duty", "resend", WF_CONFIG_DURATION, OFF(duty_resend), 0, 3600000, "30s",
	  "Notices not yet acknowledged are published again this often, and once more a few "
	  "seconds after every reconnect (consoles drop repeats): one lost while a console was "
	  "resubscribing, or in a broker restart, still arrives (0: only at reconnect).", NULL },
	{ "cap", "spool_dir", WF_CONFIG_STRING, OFF(cap_spool), 1, 0, NULL,
	  "Where CAP 1.2 files of released versions go (unset: cap/ in [service] state_dir).",
	  NULL },
	{ "cap", "sender", WF_CONFIG_STRING, OFF(cap_sender), 1, 0, "warnfuse@localhost",
	  "CAP <sender> (no spaces or commas).", NULL },
	{ "cap", "sender_name", WF_CONFIG_STRING, OFF(cap_sender_name), 1, 0, NULL,
	  "CAP <senderName> and SMS signature, e.g. 登封市应急管理局.", NULL },
	{ "cap", "post_url", WF_CONFIG_STRING, OFF(cap_post_url), 1, 0, NULL,
	  "Broadcast platform URL each CAP file is POSTed to (retried until 2xx).", NULL },
	{ "cap", "post_timeout", WF_CONFIG_DURATION, OFF(cap_post_timeout), 100, 60000, "5s",
	  "Timeout of one POST.", NULL },
	{ "sms", "sendsms_url", WF_CONFIG_STRING, OFF(sms_url), 1, 0, NULL,
	  "Kannel sendsms URL; unset: SMS off (routed SMS recorded as not_configured).", NULL },
	{ "sms", "username", WF_CONFIG_STRING, OFF(sms_user), 1, 0, NULL, "sendsms-user.", NULL },
	{ "sms", "password_file", WF_CONFIG_STRING, OFF(sms_password_file), 1, 0, NULL,
	  "File whose first line is the sendsms password.", NULL },
	{ "sms", "from", WF_CONFIG_STRING, OFF(sms_from), 1, 0, NULL, "Sender id.", NULL },
	{ "sms", "subscribers", WF_CONFIG_STRING, OFF(sms_subscribers), 1, 0, NULL,
	  "Subscriber file (msisdn,region).", NULL },
	{ "sms", "dlr_host", WF_CONFIG_STRING, OFF(sms_dlr_host), 1, 0, "127.0.0.1",
	  "Host Kannel calls back for delivery reports.", NULL },
	{ "sms", "dlr_port", WF_CONFIG_INT, OFF(sms_dlr_port), 0, 65535, "0",
	  "Delivery-report listener port on loopback (0: ephemeral, tests only).", NULL },
	{ "sms", "rate", WF_CONFIG_DOUBLE, OFF(sms_rate), 0, 100000, "0",
	  "SMS parts per second to the gateway (0: unlimited).", NULL },
	{ "sms", "max_parts", WF_CONFIG_INT, OFF(sms_max_parts), 0, 255, "0",
	  "Longest text in parts (0: the channel's default).", NULL },
};
#define NKEYS (sizeof keys / sizeof keys[0])

struct dispatch {
	struct wf_runtime *rt;
	struct wf_node *node;
	struct dsp_engine *engine;
	struct dsp_spool *spool;
	char *cap_spool;      /* [cap] spool_dir, or <state_dir>/cap */
	struct dsp_poster *poster; /* the CAP POST worker ([cap] post_url set) */
	struct wf_sms *sms;
	ev_timer due_timer, watch_timer, post_timer;
	uint64_t conn_epoch;  /* the bus's connects when watch_cb last looked: every new
			       * connection (the first one too), however short the drop
			       * before it, owes a resync */
	bool need_resync;     /* a new connection, or a publish that found the broker away:
			       * republish all once connected with the backlog out */
	bool resync_again;    /* a reconnect's resync: once more at RECONNECT_RESEND_MS */
	bool stopped;         /* SIGTERM: stop() ran; no timer is armed again */
	bool resync_more;     /* a notice resync stopped at its per-pass limit: go on */
	/* MQTT outputs the client's queue had no room for (-ENOBUFS), in
	 * order; sent as room frees (watch_cb), before anything newer */
	struct backlog_item { char *topic; uint8_t *payload; size_t len; int qos; bool retain; } *bl;
	size_t bl_head, bl_n, bl_cap;
	int64_t resend_ms;    /* [duty] resend */
	int64_t resend_at;    /* next republish of unacknowledged notices (0: none due) */
	bool sms_busy;        /* SMS planned or resumed and not all final yet (logged when done) */
	int64_t batch_now;
	int64_t post_backoff_ms;
	int64_t stats_at;     /* last DispatchStats publish (at most one a second) */
	int64_t views_mono;   /* last views build (wf_clock_mono_ms) */
	int64_t views_interval_ms; /* until the next may be built (VIEWS_INTERVAL_MS..MAX) */
	uint64_t publish_failed, cap_failed; /* this process (DispatchStats.failures) */
	bool cap_written;     /* a CAP file went into the spool since the last flush */
	struct wf_ratelimit rl_cap;
	struct wf_ratelimit rl_post;
	struct wf_bundle bundle; /* duty notices collected for one inbox */
	bool bundling;           /* [mqtt] bundle > 1 */
};

static const char *input_list[5];

static const char *const *inputs(const void *config, size_t *n)
{
	input_list[0] = ((const struct dispatch_config *)config)->input;
	input_list[1] = "wf/v1/approval/+";
	input_list[2] = "wf/v1/duty/+/ack";
	input_list[3] = "wf/v1/duty/+/followup";
	input_list[4] = "wf/v1/silence/+";
	*n = 5;
	return input_list;
}

/* The runtime's clock (the system clock, or WF_NOW's shifted one for
 * rehearsals), set at start. One process, one dispatcher. */
static struct wf_clock service_clock;

static int64_t now_ms(void)
{
	return wf_clock_now_ms(service_clock.now != NULL ? &service_clock : NULL);
}

/* One time for a whole batch: a retried transaction sees the same time. */
static int64_t batch_now(struct dispatch *d)
{
	if (d->batch_now == 0)
		d->batch_now = now_ms();
	return d->batch_now;
}

static void kick_post(struct dispatch *d, double after)
{
	if (d->stopped || !d->spool || dsp_spool_queued(d->spool) == 0)
		return;
	ev_timer_stop(wf_runtime_loop(d->rt), &d->post_timer);
	ev_timer_set(&d->post_timer, after, 0.);
	ev_timer_start(wf_runtime_loop(d->rt), &d->post_timer);
}

struct views_ctx {
	struct dispatch *d;
	int64_t now;
	bool with_stats;
};

static int views_fn(struct wf_txn *t, void *ud)
{
	struct views_ctx *c = ud;
	struct dsp_stats_extra extra[5] = {
		{ "publish_failed", c->d->publish_failed },
		{ "cap_write_failed", c->d->cap_failed },
		{ "sms_failed", 0 },
		{ "sms_expired", 0 },
		{ "sms_purged", 0 },
	};
	size_t n = 2;
	if (c->d->sms) {
		struct wf_sms_stats st;
		wf_sms_get_stats(c->d->sms, &st);
		extra[2].n = st.failed;
		extra[3].n = st.expired;
		extra[4].n = st.purged;
		n = 5;
	}
	return dsp_engine_views(c->d->engine, t, c->now, c->with_stats, extra, n);
}

/* Views are built at most every VIEWS_INTERVAL_MS, plus 1 ms for each
 * view the last build published, up to VIEWS_INTERVAL_MAX_MS: in a burst,
 * the changes of many commits to one warning make one WarningRecord, and a
 * build of thousands of records is not repeated ten times a second; when
 * quiet (an operator's approval) a view follows within 100 ms. watch_cb
 * builds what waits. */
#define VIEWS_INTERVAL_MS 100
#define VIEWS_INTERVAL_MAX_MS 1000

/* Queues the dispatcher's views (records, verdicts, silences, stats at
 * most once a second) that changed, built from the committed state. */
static void queue_views(struct dispatch *d)
{
	int64_t now = now_ms(), mono = wf_clock_mono_ms();
	struct views_ctx c = { d, now, now - d->stats_at >= 1000 };
	const struct dsp_out *o;
	if (mono - d->views_mono < d->views_interval_ms ||
	    !dsp_engine_views_pending(d->engine, c.with_stats))
		return;
	d->views_mono = mono;
	size_t before = dsp_engine_outputs(d->engine, &o);
	if (wf_store_view(wf_node_store(d->node), views_fn, &c) < 0)
		return; /* logged by the engine; marked again by the next change */
	size_t built = dsp_engine_outputs(d->engine, &o) - before;
	d->views_interval_ms = VIEWS_INTERVAL_MS + (int64_t)built;
	if (d->views_interval_ms > VIEWS_INTERVAL_MAX_MS)
		d->views_interval_ms = VIEWS_INTERVAL_MAX_MS;
	if (c.with_stats)
		d->stats_at = now;
}

/* Publishes / writes what the engine queued (after a commit). */
/* Notices, broadcast states and views waiting for room in the client's
 * queue. Beyond this many the oldest give way: the durable records make
 * the resync send again what matters (pending notices, broadcast states). */
#define BACKLOG_MAX 200000u

static void backlog_drop_head(struct dispatch *d)
{
	struct backlog_item *it = &d->bl[d->bl_head];
	free(it->topic);
	free(it->payload);
	d->bl_head = (d->bl_head + 1) % d->bl_cap;
	d->bl_n--;
}

static int backlog_push(struct dispatch *d, const char *topic, const void *payload, size_t len,
			int qos, bool retain)
{
	if (d->bl_n == d->bl_cap) {
		size_t cap = d->bl_cap ? d->bl_cap * 2 : 1024;
		struct backlog_item *nv = malloc(cap * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		for (size_t i = 0; i < d->bl_n; i++)
			nv[i] = d->bl[(d->bl_head + i) % d->bl_cap];
		free(d->bl);
		d->bl = nv;
		d->bl_cap = cap;
		d->bl_head = 0;
	}
	struct backlog_item it = { strdup(topic), malloc(len ? len : 1), len, qos, retain };
	if (!it.topic || !it.payload) {
		free(it.topic);
		free(it.payload);
		return -ENOMEM;
	}
	memcpy(it.payload, payload, len);
	d->bl[(d->bl_head + d->bl_n) % d->bl_cap] = it;
	d->bl_n++;
	if (d->bl_n > BACKLOG_MAX) {
		backlog_drop_head(d);
		if (!d->need_resync)
			wf_log(LOG_WARNING, "publish", "more than %u messages wait for the broker: "
			       "the oldest give way, pending notices are sent again", BACKLOG_MAX);
		d->need_resync = true;
	}
	return 0;
}

/* Sends from the backlog while the client's queue takes it. */
static void backlog_drain(struct dispatch *d)
{
	while (d->bl_n) {
		struct backlog_item *it = &d->bl[d->bl_head];
		int r = wf_node_publish_qos(d->node, it->topic, it->payload, it->len, it->qos,
					    it->retain);
		if (r == -ENOBUFS || r == -ENOTCONN || r == -ECONNRESET)
			return; /* (a lost connection: kept, and the reconnect resyncs) */
		if (r < 0) {
			d->publish_failed++;
			wf_log(LOG_ERR, "publish", "%s: %s", it->topic, strerror(-r));
		}
		backlog_drop_head(d);
	}
	if (d->bl_cap > 4096) {
		/* drained after a burst: the ring goes back to its first size */
		free(d->bl);
		d->bl = NULL;
		d->bl_cap = 0;
		d->bl_head = 0;
	}
}

static void backlog_free(struct dispatch *d)
{
	while (d->bl_n)
		backlog_drop_head(d);
	free(d->bl);
	d->bl = NULL;
	d->bl_cap = 0;
}

/* Publishes one message, or keeps it in the backlog behind what waits. */
static void publish_one(struct dispatch *d, const char *topic, const void *payload, size_t len,
			int qos, bool retain)
{
	/* nothing overtakes what waits already */
	int r = d->bl_n ? -ENOBUFS : wf_node_publish_qos(d->node, topic, payload, len, qos, retain);
	if (r == -ENOBUFS) {
		/* the client's queue is full: sent as room frees */
		if (backlog_push(d, topic, payload, len, qos, retain) < 0)
			d->need_resync = true;
	} else if (r == -ENOTCONN || r == -ECONNRESET) {
		/* republished by the resync once connected (-ECONNRESET: a QoS 0
		 * view the lost connection took; QoS 1 ones libmosquitto keeps) */
		d->need_resync = true;
	} else if (r < 0) {
		d->publish_failed++;
		wf_log(LOG_ERR, "publish", "%s: %s", topic, strerror(-r));
	}
}

/* Publishes the duty notices collected for one inbox (one alone as itself). */
static void bundle_out(struct dispatch *d)
{
	const char *topic;
	uint8_t *buf = NULL;
	size_t len = 0;

	if (wf_bundle_count(&d->bundle) == 0)
		return;
	if (wf_bundle_pack(&d->bundle, &topic, &buf, &len) == 0) {
		publish_one(d, topic, buf, len, 1, false);
	} else {
		d->need_resync = true; /* out of memory: the resync sends them again */
	}
	free(buf);
	wf_bundle_clear(&d->bundle);
}

/* Publishes the engine's outputs after a commit. They are all MQTT: the
 * CAP files went into the spool inside the transaction (cap_write).
 * Consecutive notices to one duty inbox go as one bundle (wf/bundle.h), as
 * the node sends its outbox ([mqtt] bundle). */
static void flush_outputs(struct dispatch *d)
{
	const struct dsp_out *o;
	queue_views(d);
	size_t n = dsp_engine_outputs(d->engine, &o);
	char bt[WF_BUNDLE_MAX_TOPIC + 1];

	backlog_drain(d);
	for (size_t i = 0; i < n; i++) {
		if (o[i].kind == DSP_OUT_FILE)
			continue; /* it comes only without a cap_write */
		if (d->bundling && !o[i].retain &&
		    wf_bundle_topic(o[i].topic, bt, sizeof bt) == 0) {
			int r = wf_bundle_add(&d->bundle, bt, o[i].topic, o[i].payload, o[i].len);
			if (r == 0)
				continue;
			bundle_out(d);
			if ((r == -EXDEV || r == -ENOSPC) &&
			    wf_bundle_add(&d->bundle, bt, o[i].topic, o[i].payload, o[i].len) == 0)
				continue;
		} else {
			bundle_out(d);
		}
		/* a view at QoS 0: state, not a delivery; the reconnect that
		 * follows any loss republishes every view whole */
		publish_one(d, o[i].topic, o[i].payload, o[i].len, o[i].kind == DSP_OUT_VIEW ? 0 : 1,
			    o[i].retain);
	}
	bundle_out(d);
	dsp_engine_outputs_clear(d->engine);
	if (d->sms && wf_sms_kick(d->sms) == 0 && !wf_sms_idle(d->sms))
		d->sms_busy = true;
	if (d->cap_written)
		kick_post(d, 0.001);
	d->cap_written = false;
}

struct due_ctx {
	struct dispatch *d;
	int64_t due, now;
};

static int next_due_fn(struct wf_txn *t, void *ud)
{
	struct due_ctx *c = ud;
	return dsp_engine_next_due(c->d->engine, t, &c->due);
}

static void schedule(struct dispatch *d)
{
	struct due_ctx c = { d, INT64_MAX, 0 };
	struct ev_loop *loop = wf_runtime_loop(d->rt);

	ev_timer_stop(loop, &d->due_timer);
	if (d->stopped) /* a batch the node's stop ran after ours */
		return;
	if (wf_store_view(wf_node_store(d->node), next_due_fn, &c) < 0 || c.due == INT64_MAX)
		return;
	double after = (double)(c.due - now_ms()) / 1000.0;
	ev_timer_set(&d->due_timer, after < 0.001 ? 0.001 : after, 0.);
	ev_timer_start(loop, &d->due_timer);
}

static int tick_fn(struct wf_txn *t, void *ud)
{
	struct due_ctx *c = ud;
	dsp_engine_outputs_clear(c->d->engine); /* a retried transaction starts clean */
	return dsp_engine_tick(c->d->engine, t, c->now);
}

static void due_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dispatch *d = w->data;
	struct due_ctx c = { d, 0, now_ms() };
	int r = wf_node_update(d->node, tick_fn, &c);
	if (r < 0) {
		wf_log(LOG_ERR, "store", "deadline processing failed: %s", strerror(-r));
		dsp_engine_outputs_clear(d->engine);
	} else {
		flush_outputs(d);
	}
	schedule(d);
}

/* Logs once when every planned SMS recipient has reached a final state
 * (delivered, failed, expired), with this process's counters: the point
 * at which an operator (or a test) knows a fan-out is over. */
static void sms_check_done(struct dispatch *d)
{
	struct wf_sms_stats st;
	if (!d->sms || !d->sms_busy || !wf_sms_idle(d->sms))
		return;
	d->sms_busy = false;
	wf_sms_get_stats(d->sms, &st);
	wf_log(LOG_NOTICE, "sms",
	       "all deliveries final: %llu delivered, %llu failed, %llu expired (this process: "
	       "%llu planned, %llu resumed, %llu requests, %llu DLRs)",
	       (unsigned long long)st.delivered, (unsigned long long)st.failed,
	       (unsigned long long)st.expired, (unsigned long long)st.planned,
	       (unsigned long long)st.resumed, (unsigned long long)st.requests,
	       (unsigned long long)st.dlrs);
}

static int resync_fn(struct wf_txn *t, void *ud)
{
	struct due_ctx *c = ud;
	return dsp_engine_resync(c->d->engine, t, c->now);
}

static int resend_fn(struct wf_txn *t, void *ud)
{
	struct due_ctx *c = ud;
	return dsp_engine_resync_duty(c->d->engine, t, c->now);
}

/* Logs a resync pass WHAT (its outputs still queued); MORE: it stopped at
 * its per-pass limit. ALWAYS: even when it sends nothing (a resync after
 * connecting; a periodic resend is logged only when it sends something). */
static void log_resync(struct dispatch *d, const char *what, bool always, bool more)
{
	const struct dsp_out *o;
	size_t n = dsp_engine_outputs(d->engine, &o);
	if (n > 0 || always)
		wf_log(LOG_INFO, "resync", "%s: %zu messages republished%s", what, n,
		       more ? " (more in the next pass)" : "");
}

/* Seconds after a reconnect when the resync goes out once more: the
 * consoles reconnect to a restarted broker too, and what we republished
 * before they subscribed again was dropped. The unacknowledged notices would
 * come again at every [duty] resend anyway; the ones no console acknowledges
 * (RELEASED, an operator's 解除) and the broadcast states only go out in a
 * resync, so this second one is a whole resync too. */
#define RECONNECT_RESEND_MS 3000

static void watch_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dispatch *d = w->data;
	bool up = wf_node_connected(d->node);
	int64_t now = now_ms();
	if (up) {
		/* every new connection owes a whole resync: what went at QoS 0
		 * (the views) or was lost with the old socket is sent again,
		 * also after a drop too short for this 200 ms tick to see */
		struct wf_bus_stats bs;
		wf_bus_get_stats(wf_node_bus(d->node), &bs);
		if (bs.connects != d->conn_epoch)
			d->need_resync = true;
		d->conn_epoch = bs.connects;
		backlog_drain(d);
	}
	/* a resync only once the backlog is out (else it would refill it) */
	bool room = d->bl_n == 0;
	if (up && room && d->need_resync) {
		d->need_resync = false;
		struct due_ctx c = { d, 0, now };
		dsp_engine_views_mark_all(d->engine);
		int r = wf_store_view(wf_node_store(d->node), resync_fn, &c);
		if (r < 0) {
			wf_log(LOG_ERR, "store", "resync failed: %s", strerror(-r));
			dsp_engine_outputs_clear(d->engine);
		} else {
			log_resync(d, "resync after connecting", true, r == 1);
			flush_outputs(d);
		}
		d->resync_more = r == 1;
		d->resend_at = now + RECONNECT_RESEND_MS;
		d->resync_again = true;
	} else if (up && room && (d->resync_more || (d->resend_at && now >= d->resend_at))) {
		bool scheduled = !d->resync_more;
		/* the first resend after a reconnect is a whole resync */
		bool whole = scheduled && d->resync_again;
		struct due_ctx c = { d, 0, now };
		if (whole)
			d->resync_again = false;
		int r = wf_store_view(wf_node_store(d->node), whole ? resync_fn : resend_fn, &c);
		if (r < 0) {
			wf_log(LOG_ERR, "store", "notice resend failed: %s", strerror(-r));
			dsp_engine_outputs_clear(d->engine);
		} else {
			log_resync(d, whole ? "second resync after connecting"
				      : scheduled ? "resend of unacknowledged notices"
						  : "resync, next pass",
				   whole, r == 1);
			flush_outputs(d);
		}
		d->resync_more = r == 1;
		if (scheduled)
			d->resend_at = d->resend_ms > 0 ? now + d->resend_ms : 0;
	}
	sms_check_done(d);
	/* views held back by their interval, stats by the once-a-second limit */
	if (up && dsp_engine_views_pending(d->engine, now_ms() - d->stats_at >= 1000) &&
	    wf_clock_mono_ms() - d->views_mono >= d->views_interval_ms)
		flush_outputs(d);
}

/* On the loop, after the worker's POST (poster.h). */
static void post_done(void *ud, int r, const char *detail)
{
	struct dispatch *d = ud;
	if (d->stopped)
		return;
	if (r == 1) {
		wf_log(LOG_INFO, "cap", "posted %s", detail);
		d->post_backoff_ms = 0;
		kick_post(d, 0.001);
	} else if (r == -EFBIG) {
		/* moved out of the queue (spool.c): the next goes at once */
		wf_log(LOG_ERR, "cap", "%s", detail);
		kick_post(d, 0.001);
	} else if (r < 0) {
		d->post_backoff_ms = d->post_backoff_ms ? d->post_backoff_ms * 2 : 1000;
		if (d->post_backoff_ms > 300000)
			d->post_backoff_ms = 300000;
		wf_log_ratelimited(&d->rl_post, now_ms(), LOG_WARNING, "cap",
				   "POST failed (%s), retrying in %lld ms",
				   r == -EAGAIN ? detail : strerror(-r), (long long)d->post_backoff_ms);
		kick_post(d, (double)d->post_backoff_ms / 1000.0);
	}
}

static void post_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dispatch *d = w->data;
	if (!d->poster || d->stopped)
		return;
	int r = dsp_poster_start(d->poster);
	if (r < 0) {
		wf_log_ratelimited(&d->rl_post, now_ms(), LOG_WARNING, "cap",
				   "cannot start the POST worker: %s", strerror(-r));
		kick_post(d, 1.0);
	}
	/* 0: one in flight; its post_done kicks the next */
}

/* The engine's CAP writer (dsp_config.cap_write): in the releasing
 * transaction, before its commit. */
static int cap_write(void *ud, const char *name, const void *data, size_t len)
{
	struct dispatch *d = ud;
	int r = d->spool ? dsp_spool_write(d->spool, name, data, len) : -ENOENT;
	if (r < 0) {
		d->cap_failed++;
		wf_log_ratelimited(&d->rl_cap, now_ms(), LOG_ERR, "cap",
				   "cannot write %s: %s (not committed: applied again later)", name,
				   strerror(-r));
		return r;
	}
	d->cap_written = true;
	return 0;
}

/* --- SMS --- */

static int sms_enqueue(void *ud, struct wf_txn *t, const char *key, const char *region,
		       const char *text, int64_t expires_ms, size_t *planned)
{
	return wf_sms_enqueue(ud, t, key, region, text, expires_ms, planned);
}

static void sms_notice(void *ud, int err, const char *what)
{
	wf_log(LOG_WARNING, "sms", "%s%s%s", what, err ? ": " : "", err ? strerror(-err) : "");
}

static int read_secret(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -errno;
	if (!fgets(buf, (int)size, f)) {
		fclose(f);
		return -EINVAL;
	}
	fclose(f);
	buf[strcspn(buf, "\r\n")] = '\0';
	return buf[0] ? 0 : -EINVAL;
}

static int open_sms(struct dispatch *d, const struct dispatch_config *c)
{
	struct wf_sms_config sc;
	char password[256] = "", err[512] = "";
	if (!c->sms_url)
		return 0;
	if (!c->sms_user || !c->sms_password_file || !c->sms_from || !c->sms_subscribers) {
		wf_log(LOG_ERR, "config", "[sms] sendsms_url needs username, password_file, from and "
					  "subscribers");
		return -EINVAL;
	}
	int r = read_secret(c->sms_password_file, password, sizeof password);
	if (r < 0) {
		wf_log(LOG_ERR, "config", "[sms] password_file %s: %s", c->sms_password_file,
		       strerror(-r));
		return r;
	}
	wf_sms_config_init(&sc);
	sc.sendsms_url = c->sms_url;
	sc.username = c->sms_user;
	sc.password = password;
	sc.from = c->sms_from;
	sc.subscribers_path = c->sms_subscribers;
	sc.dlr_host = c->sms_dlr_host;
	sc.dlr_port = (int)c->sms_dlr_port;
	sc.rate_parts_per_s = c->sms_rate;
	sc.max_parts = (unsigned)c->sms_max_parts;
	/* the recipients of a delivery stay as long as the warning's records
	 * ([dispatch] retain after its expiry) */
	sc.retain_ms = c->retain;
	sc.clock = &service_clock; /* WF_NOW rehearsals: the engine's clock, not the system's */
	sc.on_notice = sms_notice;
	sc.ud = d;
	r = wf_sms_open(wf_runtime_loop(d->rt), wf_node_store(d->node), &sc, &d->sms, err,
			sizeof err);
	memset(password, 0, sizeof password);
	if (r < 0) {
		wf_log(LOG_ERR, "sms", "cannot open the SMS channel: %s", err[0] ? err : strerror(-r));
		return r;
	}
	struct wf_sms_stats st;
	wf_sms_get_stats(d->sms, &st);
	if (st.resumed > 0) {
		/* unfinished recipients of an earlier run continue (docs/sms.md) */
		d->sms_busy = true;
		wf_log(LOG_NOTICE, "sms", "resumed %llu unfinished recipients, %llu of them were "
					  "submitting (sent again: possible duplicates)",
		       (unsigned long long)st.resumed, (unsigned long long)st.resent_submitting);
	}
	return 0;
}

/* --- runtime hooks --- */

static void fill_config(const struct dispatch_config *c, struct dsp_config *dc)
{
	dsp_config_defaults(dc);
	for (int l = 1; l <= 4; l++) {
		dc->policy.release[l] = (enum dsp_release)c->release[l];
		dc->policy.review_timeout_ms[l] = c->review_timeout[l];
		dc->ack_deadline_ms[l] = c->ack_deadline[l];
	}
	dc->policy.downgrade_follows = c->downgrade_follows;
	dc->policy.cancel_follows = c->cancel_follows;
	dc->followup_interval_ms = c->followup_interval;
	dc->retain_ms = c->retain;
	dc->cap_sender = c->cap_sender;
	dc->cap_sender_name = c->cap_sender_name;
}

/* --check-config: the routing file parses, its stations' regions exist */
static int validate(const void *config, const struct wf_region_table *regions, char *err,
		    size_t errlen)
{
	const struct dispatch_config *c = config;
	struct dsp_routing routing;
	int r = dsp_routing_load(c->routes, regions, &routing, err, errlen);

	if (r == 0)
		dsp_routing_free(&routing);
	return r;
}

static int start(struct wf_runtime *rt, const void *config, void **ret)
{
	const struct dispatch_config *c = config;
	struct dispatch *d = calloc(1, sizeof *d);
	struct dsp_routing routing;
	struct dsp_config dc;
	char err[512];
	int r;

	if (!d)
		return -ENOMEM;
	d->rt = rt;
	d->node = wf_runtime_node(rt);
	d->resend_ms = c->duty_resend;
	service_clock = wf_runtime_clock(rt);
	d->rl_post = (struct wf_ratelimit)WF_RATELIMIT_INIT(60000, 5);
	d->rl_cap = (struct wf_ratelimit)WF_RATELIMIT_INIT(60000, 5);
	d->views_interval_ms = VIEWS_INTERVAL_MS;
	d->bundling = wf_node_bundle_max(d->node) > 1 &&
		      wf_bundle_init(&d->bundle, wf_node_bundle_max(d->node), 128u << 10) == 0;
	r = dsp_routing_load(c->routes, wf_runtime_regions(rt), &routing, err, sizeof err);
	if (r < 0) {
		wf_log(LOG_ERR, "config", "%s", err);
		free(d);
		return r;
	}
	fill_config(c, &dc);
	dc.service = wf_node_service(d->node);
	r = open_sms(d, c);
	if (r == 0 && d->sms) {
		dc.sms_enqueue = sms_enqueue;
		dc.sms_ud = d->sms;
	}
	dc.cap_write = cap_write;
	dc.cap_ud = d;
	if (r == 0)
		r = dsp_engine_new(wf_node_store(d->node), &dc, &routing, wf_runtime_regions(rt),
				   &d->engine);
	if (r < 0) {
		dsp_routing_free(&routing);
		wf_log(LOG_ERR, "dispatch", "cannot start: %s", strerror(-r));
		goto fail;
	}
	if (c->cap_spool)
		d->cap_spool = strdup(c->cap_spool);
	else if (asprintf(&d->cap_spool, "%s/cap", c->node.state_dir) < 0)
		d->cap_spool = NULL;
	r = d->cap_spool ? dsp_spool_open(d->cap_spool, c->cap_post_url, c->cap_post_timeout,
					  &d->spool)
			 : -ENOMEM;
	if (r < 0) {
		wf_log(LOG_ERR, "cap", "spool %s: %s", d->cap_spool ? d->cap_spool : "?",
		       strerror(-r));
		goto fail;
	}
	struct ev_loop *loop = wf_runtime_loop(rt);
	if (c->cap_post_url && *c->cap_post_url) {
		r = dsp_poster_new(loop, d->spool, post_done, d, &d->poster);
		if (r < 0) {
			wf_log(LOG_ERR, "cap", "POST worker: %s", strerror(-r));
			goto fail;
		}
	}
	ev_timer_init(&d->due_timer, due_cb, 1., 0.);
	ev_timer_init(&d->watch_timer, watch_cb, 0.05, 0.2);
	ev_timer_init(&d->post_timer, post_cb, 1., 0.);
	d->due_timer.data = d->watch_timer.data = d->post_timer.data = d;
	ev_timer_start(loop, &d->watch_timer);
	schedule(d);
	kick_post(d, 0.1);
	const struct dsp_routing *rg = dsp_engine_routing(d->engine);
	wf_log(LOG_NOTICE, "dispatch", "%zu stations, %zu routes, %zu silences; SMS %s; CAP to %s%s%s",
	       rg->n_stations, rg->n_routes, rg->n_silences, d->sms ? "on" : "not configured",
	       d->cap_spool, c->cap_post_url ? " and " : "", c->cap_post_url ? c->cap_post_url : "");
	if (rg->n_operators == 0)
		wf_log(LOG_WARNING, "config", "%s lists no [operator]: versions that need review "
					      "will never be released", c->routes);
	*ret = d;
	return 0;
fail:
	d->engine = dsp_engine_free(d->engine);
	d->spool = dsp_spool_free(d->spool);
	d->sms = wf_sms_close(d->sms);
	free(d->cap_spool);
	free(d);
	return r < 0 ? r : -EINVAL;
}

static int reload(struct wf_runtime *rt, void *state, const void *config, char *msg, size_t len)
{
	struct dispatch *d = state;
	const struct dispatch_config *c = config;
	struct dsp_routing routing;
	int r = dsp_routing_load(c->routes, wf_runtime_regions(rt), &routing, msg, len);
	if (r < 0)
		return r;
	dsp_engine_set_routing(d->engine, &routing);
	wf_log(LOG_NOTICE, "dispatch", "routing reloaded from %s ([policy], [duty], [cap] and [sms] "
				       "changes need a restart)", c->routes);
	return 0;
}

static void stop(struct wf_runtime *rt, void *state)
{
	struct dispatch *d = state;
	struct ev_loop *loop = wf_runtime_loop(rt);
	d->stopped = true;
	ev_timer_stop(loop, &d->due_timer);
	ev_timer_stop(loop, &d->watch_timer);
	ev_timer_stop(loop, &d->post_timer);
	d->poster = dsp_poster_free(d->poster); /* a POST in flight is given up, still queued */
	d->sms = wf_sms_close(d->sms);
}

static void destroy(void *state)
{
	struct dispatch *d = state;
	dsp_engine_free(d->engine);
	dsp_poster_free(d->poster);
	dsp_spool_free(d->spool);
	wf_sms_close(d->sms);
	backlog_free(d);
	wf_bundle_destroy(&d->bundle);
	free(d->cap_spool);
	free(d);
}

static int on_warning(void *ud, struct wf_txn *t, const Wf__V1__Warning *w,
		      const struct wf_node_msg *m, struct wf_codec_error *why)
{
	struct dispatch *d = ud;
	return dsp_engine_warning(d->engine, t, w, batch_now(d), why);
}

static int on_control(void *ud, struct wf_txn *t, enum wf_topic_kind kind,
		      const ProtobufCMessage *msg, const struct wf_node_msg *m,
		      struct wf_codec_error *why)
{
	struct dispatch *d = ud;
	if (t == NULL) {
		why->reason = WF_REASON_BAD_TOPIC;
		snprintf(why->detail, sizeof why->detail, "wf-dispatch does not take %s",
			 wf_topic_kind_to_string(kind));
		return WF_NODE_REJECT;
	}
	return dsp_engine_control(d->engine, t, kind, msg, batch_now(d), why);
}

static void on_batch_done(void *ud, bool committed)
{
	struct dispatch *d = ud;
	if (committed)
		flush_outputs(d);
	else
		dsp_engine_outputs_clear(d->engine);
	d->batch_now = 0;
	schedule(d);
}

static int apply_node_options(const void *config, struct wf_node_options *o)
{
	const struct dispatch_config *c = config;
	o->ordered = c->ordered;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct wf_runtime_spec spec = {
		.name = "wf-dispatch",
		.kind = "dispatch",
		.summary = "release policy, routing, duty stations, broadcast, CAP and SMS delivery",
		.default_config = "/etc/warnfuse/dispatch.conf",
		.default_id = "wf-dispatch-1",
		.default_state_dir = "/var/lib/warnfuse/dispatch",
		.keys = keys,
		.nkeys = NKEYS,
		.config_size = sizeof(struct dispatch_config),
		.node_offset = offsetof(struct dispatch_config, node),
		.inputs = inputs,
		.validate = validate,
		.start = start,
		.reload = reload,
		.stop = stop,
		.destroy = destroy,
		.on_warning = on_warning,
		.on_control = on_control,
		.on_batch_done = on_batch_done,
		.node_options = apply_node_options,
	};
	return wf_runtime_main(argc, argv, &spec);
}
