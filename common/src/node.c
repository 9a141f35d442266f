/* node: a service on the bus with outbox, dedupe, births and heartbeats
 * (see wf/node.h). */
#include "wf/node.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "wf/bundle.h"
#include "wf/dedupe.h"
#include "wf/outbox.h"

#define MAX_PEERS 256u /* services whose last start time we remember */
#define FLUSH_CHUNK 1000u /* outbox entries one wf_outbox_flush publishes */
/* Outbox entries in flight at once (QoS 1 publishes not yet acknowledged by
 * the broker). libmosquitto walks its list of in-flight messages on every
 * publish while its send window (the broker's receive maximum: 1000 with
 * deploy/mosquitto/warnfuse.conf) has room, so the cost of a message grows
 * with how many are in flight (13% of wf-fusion's CPU at 10,000 in flight,
 * bench/peers); 256 keep a loopback or LAN link busy. */
#define OUTBOX_WINDOW 256u

enum outcome { OUT_NONE, OUT_APPLIED, OUT_DUP, OUT_REJECT, OUT_DEFER };

struct pending {
	char *topic;
	struct wf_topic parsed;
	Wf__V1__Event *ev;     /* exactly one of ev, w, ctl */
	Wf__V1__Warning *w;
	ProtobufCMessage *ctl; /* a control message of kind parsed.kind */
	uint8_t *raw;          /* payload copy for a dead letter */
	size_t raw_len;
	enum outcome outcome;
	struct wf_codec_error why;
	/* ordered inputs: a message rejected on receipt still takes its place
	 * in its producer's sequence (recorded in the batch, then dead-lettered) */
	char *early_producer;
	uint64_t early_seq;
	/* a producer's ServiceState.outbox_floor, applied in order with the
	 * messages around it (early_producer, early_seq = the floor) */
	bool floor_only;
};

/* ordered inputs: since when a producer's next message has been missing */
struct order_wait {
	char producer[WF_TOPIC_ID_MAX + 1];
	int64_t since_ms;
};
#define MAX_ORDER_WAITS 256u

struct peer {
	char service[WF_TOPIC_ID_MAX + 1];
	int64_t started_ms;
};

struct wf_node {
	struct ev_loop *loop;
	struct wf_node_options o;
	char *service, *kind, *version, *state_dir;
	char **inputs;
	struct wf_node_callbacks cb;
	void *ud;
	void *notice_ud;
	struct wf_codec_limits limits;
	struct wf_clock sysclock;
	const struct wf_clock *clock;

	struct wf_store *store;
	struct wf_outbox *outbox;
	struct wf_dedupe *dedupe;
	struct wf_bus *bus;

	char state_topic[WF_TOPIC_MAX];
	char ack_topic[WF_TOPIC_MAX];
	char dl_topic[WF_TOPIC_MAX];
	int64_t started_ms;

	struct pending *batch;
	size_t n_batch;

	ev_idle batch_idle;     /* apply the batch when the loop has drained ready input */
	ev_timer ack_timer;
	ev_timer resend_timer;
	ev_timer heartbeat_timer;
	bool started, stopping;

	struct peer peers[MAX_PEERS];
	size_t n_peers;
	struct order_wait waits[MAX_ORDER_WAITS];
	size_t n_waits;
	/* services that acknowledged our outbox: only their births trigger a
	 * resend (before any ack: every birth does) */
	char consumers[16][WF_TOPIC_ID_MAX + 1];
	size_t n_consumers;
	int64_t connected_ms;        /* when this connection came up (node clock) */
	bool flush_more;             /* the last flush stopped early (bus queue full, or
					the round limit): publish again soon */
	struct wf_bundle bundle;     /* outbox entries collected for one publish */
	bool bundling;               /* bundle_max > 1 */
	uint64_t floor_sent;         /* outbox floor in our last ServiceState */
	int64_t floor_sent_mono_ms;
	struct wf_node_stats stats;
};

void wf_node_options_init(struct wf_node_options *o)
{
	memset(o, 0, sizeof *o);
	wf_bus_options_init(&o->bus);
}

static int64_t now_ms(const struct wf_node *n)
{
	return wf_clock_now_ms(n->clock);
}

static void notice(struct wf_node *n, enum wf_node_notice what, int code, const char *detail)
{
	if (n->cb.on_notice != NULL)
		n->cb.on_notice(n->notice_ud != NULL ? n->notice_ud : n->ud, what, code,
				detail != NULL ? detail : "");
}

/* --- state (birth, heartbeat, will) --- */

static int pack_state(struct wf_node *n, bool online, uint8_t **buf, size_t *len)
{
	Wf__V1__ServiceState st = WF__V1__SERVICE_STATE__INIT;
	struct wf_codec_error why;
	int64_t now = now_ms(n);

	st.service = n->service;
	st.kind = n->kind;
	st.status = online ? WF__V1__SERVICE_STATUS__SERVICE_ONLINE
			   : WF__V1__SERVICE_STATUS__SERVICE_OFFLINE;
	if (n->version != NULL)
		st.version = n->version;
	st.pid = (uint32_t)getpid();
	st.agency = n->o.agency;
	if (online && n->outbox != NULL && wf_outbox_floor(n->outbox, &st.outbox_floor) == 0) {
		n->floor_sent = st.outbox_floor;
		n->floor_sent_mono_ms = wf_clock_mono_ms();
	}
	if (online) {
		st.started_ms = n->started_ms;
		st.heartbeat_ms = now;
		st.heartbeat_interval_s = (uint32_t)((n->o.heartbeat_ms + 999) / 1000);
	}
	return wf_codec_state_pack(&st, &n->limits, now, buf, len, &why);
}

static void publish_state(struct wf_node *n, bool online);

/* Partitioned consumers compact their dedupe state with our outbox floor
 * (ServiceState.outbox_floor): besides every heartbeat, announce it when
 * acks moved it by FLOOR_STEP, at most once a second. */
#define FLOOR_STEP 4096u
static void announce_floor(struct wf_node *n)
{
	uint64_t floor = 0;
	int64_t now = wf_clock_mono_ms();

	if (now - n->floor_sent_mono_ms < 1000 || wf_outbox_floor(n->outbox, &floor) < 0 ||
	    floor < n->floor_sent + FLOOR_STEP)
		return;
	publish_state(n, true);
}

static void publish_state(struct wf_node *n, bool online)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	if (!wf_bus_connected(n->bus))
		return;
	if (pack_state(n, online, &buf, &len) == 0)
		(void)wf_bus_publish(n->bus, n->state_topic, buf, len, 1, true, NULL);
	free(buf);
}

/* --- outbox --- */

/* Outbox publishes the bus queue has room for now. Room is left for our
 * acks and states: a backlog of outbox entries must not crowd out the acks
 * we owe (their producers would resend everything). */
static unsigned outbox_room(struct wf_node *n)
{
	size_t cap = n->o.bus.max_queued ? n->o.bus.max_queued : 10000;
	size_t reserve = cap / 8 > 256 ? 256 : cap / 8 ? cap / 8 : 1;
	size_t limit = cap - reserve < OUTBOX_WINDOW ? cap - reserve : OUTBOX_WINDOW;
	size_t used = wf_bus_inflight(n->bus);
	return used >= limit ? 0 : (unsigned)(limit - used);
}

/* Publishes the bundle collected so far (one entry: as itself). Its
 * entries count as sent already: if the bus refuses it now (it had room
 * when the bundle was started, so only a lost connection does), they go
 * again on the outbox's resend timeout. */
static void bundle_send(struct wf_node *n)
{
	const char *topic;
	uint8_t *buf = NULL;
	size_t len = 0;

	if (wf_bundle_count(&n->bundle) == 0)
		return;
	if (wf_bundle_pack(&n->bundle, &topic, &buf, &len) == 0 &&
	    wf_bus_publish(n->bus, topic, buf, len, 1, false, NULL) == 0 &&
	    wf_bundle_count(&n->bundle) > 1)
		n->stats.bundles_sent++;
	free(buf);
	wf_bundle_clear(&n->bundle);
}

/* The outbox stops at a full queue and goes on after PUBACKs. An entry
 * with a bundle topic joins the bundle being collected when it has the
 * same bundle topic and room; else that bundle goes out first (the order
 * of the entries is kept) and, given room in the bus queue, this entry
 * starts the next one. */
static int outbox_publish(void *ud, const char *topic, const void *payload, size_t len)
{
	struct wf_node *n = ud;
	char bt[WF_BUNDLE_MAX_TOPIC + 1];

	if (n->bundling && wf_bundle_topic(topic, bt, sizeof bt) == 0) {
		if (wf_bundle_count(&n->bundle) > 0) {
			int r = wf_bundle_add(&n->bundle, bt, topic, payload, len);
			if (r != -EXDEV && r != -ENOSPC)
				return r;
			bundle_send(n);
		}
		if (outbox_room(n) == 0)
			return -ENOBUFS;
		return wf_bundle_add(&n->bundle, bt, topic, payload, len);
	}
	bundle_send(n);
	if (outbox_room(n) == 0)
		return -ENOBUFS;
	return wf_bus_publish(n->bus, topic, payload, len, 1, false, NULL);
}

static void schedule_resend(struct wf_node *n)
{
	int64_t due = wf_outbox_next_due_ms(n->outbox);
	double after;

	ev_timer_stop(n->loop, &n->resend_timer);
	if (n->stopping)
		return;
	if (n->flush_more) {
		/* entries never sent yet wait behind a full bus queue: PUBACKs
		 * (on_publish) flush again; this timer is the fallback */
		ev_timer_set(&n->resend_timer, 0.05, 0.);
		ev_timer_start(n->loop, &n->resend_timer);
		return;
	}
	if (due == INT64_MAX)
		return;
	/* DUE may be INT64_MIN ("at once", after a refused publish): compare
	 * before subtracting, which would overflow */
	int64_t now = now_ms(n);
	after = due <= now ? 0.001 : (double)(due - now) / 1000.0;
	if (after < 0.001)
		after = 0.001;
	ev_timer_set(&n->resend_timer, after, 0.);
	ev_timer_start(n->loop, &n->resend_timer);
}

void wf_node_flush(struct wf_node *n)
{
	int r;
	unsigned rounds = 0;

	if (!wf_bus_connected(n->bus))
		return;
	/* Bounded: at most what the bus queue has room for (the rest goes
	 * out as PUBACKs free places: on_publish), and 16 rounds. */
	unsigned room, budget = 0;
	r = 0;
	while ((room = outbox_room(n)) > 0 && rounds++ < 16) {
		/* a place in the bus queue takes a whole bundle */
		size_t entries = n->bundling ? (size_t)room * n->bundle.max_entries : room;
		budget = entries < FLUSH_CHUNK ? (unsigned)entries : FLUSH_CHUNK;
		r = wf_outbox_flush_n(n->outbox, budget);
		bundle_send(n);
		if (r < 0 || (unsigned)r < budget)
			break;
	}
	n->flush_more = r == -ENOBUFS || room == 0 || (r > 0 && (unsigned)r >= budget);
	if (r < 0 && r != -ENOTCONN && r != -ENOBUFS)
		notice(n, WF_NODE_STORE_ERROR, r, "outbox flush");
	schedule_resend(n);
}

static void resend_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct wf_node *n = (struct wf_node *)(void *)((char *)w - offsetof(struct wf_node, resend_timer));

	wf_node_flush(n);
}

/* --- acks we owe --- */

static void send_acks(struct wf_node *n)
{
	Wf__V1__Ack **acks = NULL;
	size_t na = 0;
	char topic[WF_TOPIC_MAX];

	if (wf_dedupe_ack_take(n->dedupe, NULL, now_ms(n), &acks, &na) < 0)
		return;
	for (size_t i = 0; i < na; i++) {
		void *buf = NULL;
		size_t len = 0;

		if (wf_dedupe_ack_pack(acks[i], &buf, &len) == 0 &&
		    wf_dedupe_ack_topic(acks[i]->producer, topic, sizeof topic) == 0 &&
		    wf_bus_publish(n->bus, topic, buf, len, 1, false, NULL) == 0) {
			n->stats.acks_sent++;
		} else if (wf_bus_connected(n->bus)) {
			/* the bus queue is full: note them again for the next round
			 * (bounded; beyond it the producer resends and we ack then) */
			uint64_t budget = 100000;
			for (size_t j = 0; j < acks[i]->n_ranges && budget; j++)
				for (uint64_t q = acks[i]->ranges[j]->first;
				     q <= acks[i]->ranges[j]->last && budget; q++, budget--)
					(void)wf_dedupe_ack_note(n->dedupe, acks[i]->producer, q);
			if (!ev_is_active(&n->ack_timer)) {
				ev_timer_set(&n->ack_timer, 0.05, 0.);
				ev_timer_start(n->loop, &n->ack_timer);
			}
		}
		/* not connected: the producer resends, we recognise it and ack then */
		free(buf);
	}
	wf_dedupe_acks_free(acks, na);
}

static void ack_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct wf_node *n = (struct wf_node *)(void *)((char *)w - offsetof(struct wf_node, ack_timer));

	send_acks(n);
}

static void owe_ack(struct wf_node *n, const char *producer, uint64_t seq)
{
	(void)wf_dedupe_ack_note(n->dedupe, producer, seq);
	if (n->o.ack_delay_ms < 0) {
		send_acks(n);
		return;
	}
	if (!ev_is_active(&n->ack_timer)) {
		ev_timer_set(&n->ack_timer, (double)n->o.ack_delay_ms / 1000.0, 0.);
		ev_timer_start(n->loop, &n->ack_timer);
	}
}

/* --- dead letters --- */

static void dead_letter(struct wf_node *n, const char *topic, const void *payload, size_t len,
			const struct wf_codec_error *why, const char *producer, uint64_t seq)
{
	uint8_t *buf = NULL;
	size_t blen = 0;
	char detail[256];

	n->stats.rejected++;
	if (wf_codec_deadletter_make(n->service, topic, payload, len, why,
				     producer != NULL && wf_topic_id_valid(producer) ? producer : NULL,
				     seq, now_ms(n), &buf, &blen) == 0)
		(void)wf_bus_publish(n->bus, n->dl_topic, buf, blen, 1, false, NULL);
	free(buf);
	snprintf(detail, sizeof detail, "%.100s: %s%s%s%s%.100s", topic,
		 wf_reason_to_string(why->reason), why->field[0] ? " " : "", why->field,
		 why->detail[0] ? ": " : "", why->detail);
	notice(n, WF_NODE_REJECTED, (int)why->reason, detail);
}

/* --- batches --- */

static void pending_clear(struct pending *p)
{
	free(p->topic);
	wf_codec_event_free(p->ev);
	wf_codec_warning_free(p->w);
	wf_codec_control_free(p->ctl);
	free(p->raw);
	free(p->early_producer);
	memset(p, 0, sizeof *p);
}

static const char *pending_producer(const struct pending *p)
{
	if (p->early_producer != NULL)
		return p->early_producer;
	if (p->ctl != NULL)
		return wf_codec_control_producer(p->parsed.kind, p->ctl, NULL);
	return p->ev != NULL ? p->ev->producer : p->w->producer;
}

static uint64_t pending_seq(const struct pending *p)
{
	uint64_t seq = 0;

	if (p->early_producer != NULL)
		return p->early_seq;
	if (p->ctl != NULL) {
		(void)wf_codec_control_producer(p->parsed.kind, p->ctl, &seq);
		return seq;
	}
	return p->ev != NULL ? p->ev->seq : p->w->seq;
}

/* Ordered inputs: 0 when (PRODUCER, SEQ) may be applied now (the next one
 * expected, an old one, or its predecessor has been missing longer than
 * order_timeout_ms: then the gap is given up on), 1 to defer it (not
 * applied, not acked: the producer resends it once the gap is filled). */
static int order_check(struct wf_node *n, struct wf_txn *t, const char *producer, uint64_t seq)
{
	uint64_t wm = 0;
	int64_t now = wf_clock_mono_ms();
	size_t i;
	int r = wf_dedupe_state(n->dedupe, t, producer, &wm, NULL);

	if (r < 0 && r != -ENOENT)
		return r;
	for (i = 0; i < n->n_waits; i++)
		if (strcmp(n->waits[i].producer, producer) == 0)
			break;
	if (seq <= wm + 1) {
		if (i < n->n_waits) /* in order again */
			n->waits[i] = n->waits[--n->n_waits];
		return 0;
	}
	if (i == n->n_waits) {
		if (n->n_waits == MAX_ORDER_WAITS)
			return 0; /* too many producers waiting: do not stall any */
		snprintf(n->waits[i].producer, sizeof n->waits[i].producer, "%s", producer);
		n->waits[i].since_ms = now;
		n->n_waits++;
		return 1;
	}
	if (now - n->waits[i].since_ms >= n->o.order_timeout_ms) {
		char detail[160];
		snprintf(detail, sizeof detail, "%s: seq %llu missing for %lld ms, applying %llu",
			 producer, (unsigned long long)(wm + 1),
			 (long long)(now - n->waits[i].since_ms), (unsigned long long)seq);
		notice(n, WF_NODE_TRANSIENT, -ETIMEDOUT, detail);
		n->waits[i].since_ms = now;
		return 0;
	}
	return 1;
}

static int apply_batch(struct wf_txn *t, void *ud)
{
	struct wf_node *n = ud;

	if (n->cb.on_batch_begin != NULL)
		n->cb.on_batch_begin(n->ud);
	for (size_t i = 0; i < n->n_batch; i++) {
		struct pending *p = &n->batch[i];
		struct wf_node_msg m = { p->topic, &p->parsed, pending_producer(p), pending_seq(p) };
		int r;

		if (p->floor_only) {
			r = wf_dedupe_floor(n->dedupe, t, p->early_producer, p->early_seq);
			if (r < 0 && r != -ENOSPC)
				return r;
			p->outcome = OUT_NONE;
			continue;
		}
		if (n->o.ordered && p->ctl == NULL) { /* events and warnings only */
			r = order_check(n, t, m.producer, m.seq);
			if (r < 0)
				return r;
			if (r == 1) {
				p->outcome = OUT_DEFER;
				continue;
			}
		}
		if (p->early_producer == NULL)
			memset(&p->why, 0, sizeof p->why);
		r = wf_dedupe_apply(n->dedupe, t, m.producer, m.seq);
		if (r == -ENOSPC) {
			/* a gap that is not filling (or too many producers): hold
			 * this one back, not the batch; the producer resends it,
			 * and its floor makes room (wf_dedupe_floor) */
			p->outcome = OUT_DEFER;
			continue;
		}
		if (r < 0)
			return r;
		if (r == 1) {
			p->outcome = OUT_DUP;
			continue;
		}
		if (p->early_producer != NULL) {
			p->outcome = OUT_REJECT; /* rejected on receipt; now in sequence */
			continue;
		}
		if (p->ctl != NULL)
			r = n->cb.on_control(n->ud, t, p->parsed.kind, p->ctl, &m, &p->why);
		else if (p->ev != NULL)
			r = n->cb.on_event != NULL ? n->cb.on_event(n->ud, t, p->ev, &m, &p->why) : 0;
		else
			r = n->cb.on_warning != NULL ? n->cb.on_warning(n->ud, t, p->w, &m, &p->why) : 0;
		if (r < 0) {
			/* -ENOSPC: the map is full; the store grows it and runs the
			 * batch again (and says so if it cannot) */
			if (r != -ENOSPC)
				notice(n, WF_NODE_TRANSIENT, r, p->topic);
			return r;
		}
		p->outcome = r == WF_NODE_REJECT ? OUT_REJECT : OUT_APPLIED;
		if (p->outcome == OUT_REJECT && p->why.reason == 0)
			p->why.reason = WF_REASON_UNSPECIFIED;
	}
	return 0;
}

static void run_batch(struct wf_node *n)
{
	int r;

	if (n->n_batch == 0)
		return;
	r = wf_store_update(n->store, apply_batch, n);
	if (r < 0) {
		notice(n, WF_NODE_STORE_ERROR, r, "batch not applied; producers will resend");
	} else {
		n->stats.batches++;
		for (size_t i = 0; i < n->n_batch; i++) {
			struct pending *p = &n->batch[i];

			if (p->outcome == OUT_NONE)
				continue; /* a floor */
			if (p->outcome == OUT_DEFER) {
				n->stats.deferred++;
				continue; /* not acked: resent by its producer */
			}
			if (p->outcome == OUT_APPLIED)
				n->stats.applied++;
			else if (p->outcome == OUT_DUP)
				n->stats.duplicates++;
			else if (p->outcome == OUT_REJECT)
				dead_letter(n, p->topic, p->raw, p->raw_len, &p->why,
					    pending_producer(p), pending_seq(p));
			owe_ack(n, pending_producer(p), pending_seq(p));
		}
	}
	if (n->cb.on_batch_done != NULL)
		n->cb.on_batch_done(n->ud, r >= 0);
	for (size_t i = 0; i < n->n_batch; i++)
		pending_clear(&n->batch[i]);
	n->n_batch = 0;
	if (r >= 0)
		wf_node_flush(n);
}

static void batch_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	struct wf_node *n = (struct wf_node *)(void *)((char *)w - offsetof(struct wf_node, batch_idle));

	ev_idle_stop(loop, w);
	run_batch(n);
}

static void enqueue(struct wf_node *n, const char *topic, const struct wf_topic *parsed,
		    const void *payload, size_t len)
{
	struct pending *p;
	struct wf_codec_error why;
	int64_t now = now_ms(n);
	int r;

	if (n->n_batch >= WF_NODE_MAX_BATCH)
		run_batch(n);
	p = &n->batch[n->n_batch];
	memset(p, 0, sizeof *p);
	memset(&why, 0, sizeof why);
	if (wf_codec_control_kind(parsed->kind)) {
		r = wf_codec_control_unpack(parsed->kind, payload, len, &n->limits, now, &p->ctl, &why);
		if (r == 0)
			r = wf_codec_control_check_topic(parsed->kind, p->ctl, parsed, &why);
		if (r == 0 && wf_codec_control_producer(parsed->kind, p->ctl, NULL) == NULL) {
			/* no producer/seq (DutyNotice, BroadcastState): idempotent
			 * messages, applied outside any transaction, not deduped */
			struct wf_node_msg m = { topic, parsed, NULL, 0 };
			memset(&why, 0, sizeof why);
			r = n->cb.on_control(n->ud, NULL, parsed->kind, p->ctl, &m, &why);
			if (r == WF_NODE_REJECT)
				dead_letter(n, topic, payload, len, &why, NULL, 0);
			else if (r < 0)
				notice(n, WF_NODE_TRANSIENT, r, topic);
			pending_clear(p);
			return;
		}
	} else if (parsed->kind == WF_TOPIC_EVENT) {
		r = wf_codec_event_unpack(payload, len, &n->limits, now, &p->ev, &why);
		if (r == 0)
			r = wf_codec_event_check_topic(p->ev, parsed, &why);
	} else {
		r = wf_codec_warning_unpack(payload, len, &n->limits, now, &p->w, &why);
		if (r == 0)
			r = wf_codec_warning_check_topic(p->w, parsed, &why);
	}
	if (r < 0) {
		/* Ack it if we can tell whose it is, so the producer stops resending a
		 * message that can never be accepted. */
		const char *prod = p->ev != NULL ? p->ev->producer : p->w != NULL ? p->w->producer : NULL;
		uint64_t seq = p->ev != NULL ? p->ev->seq : p->w != NULL ? p->w->seq : 0;
		bool is_ctl = p->ctl != NULL;
		if (is_ctl)
			prod = wf_codec_control_producer(parsed->kind, p->ctl, &seq);
		if (n->o.ordered && !is_ctl && prod != NULL && seq > 0 &&
		    wf_dedupe_producer_valid(prod)) {
			/* keep its place in the producer's sequence: recorded in the
			 * next batch, dead-lettered after its commit */
			char *pc = strdup(prod), *tc = strdup(topic);
			uint8_t *raw = malloc(len > 0 ? len : 1);
			wf_codec_event_free(p->ev);
			wf_codec_warning_free(p->w);
			wf_codec_control_free(p->ctl);
			memset(p, 0, sizeof *p);
			if (pc == NULL || tc == NULL || raw == NULL) {
				free(pc);
				free(tc);
				free(raw);
				notice(n, WF_NODE_TRANSIENT, -ENOMEM, topic);
				return;
			}
			memcpy(raw, payload, len);
			p->early_producer = pc;
			p->early_seq = seq;
			p->topic = tc;
			p->raw = raw;
			p->raw_len = len;
			p->parsed = *parsed;
			p->why = why;
			n->n_batch++;
			if (!ev_is_active(&n->batch_idle))
				ev_idle_start(n->loop, &n->batch_idle);
			return;
		}
		dead_letter(n, topic, payload, len, &why, prod, seq);
		if (prod != NULL && seq > 0 && wf_dedupe_producer_valid(prod))
			owe_ack(n, prod, seq);
		pending_clear(p);
		return;
	}
	p->topic = strdup(topic);
	p->raw = malloc(len > 0 ? len : 1);
	if (p->topic == NULL || p->raw == NULL) {
		pending_clear(p); /* not acked: resent later */
		notice(n, WF_NODE_TRANSIENT, -ENOMEM, topic);
		return;
	}
	memcpy(p->raw, payload, len);
	p->raw_len = len;
	p->parsed = *parsed;
	n->n_batch++;
	if (!ev_is_active(&n->batch_idle))
		ev_idle_start(n->loop, &n->batch_idle);
}

/* --- peers' states --- */

static bool is_consumer(const struct wf_node *n, const char *service)
{
	for (size_t i = 0; i < n->n_consumers; i++)
		if (strcmp(n->consumers[i], service) == 0)
			return true;
	return false;
}

/* Remembers who acknowledged us (Ack.consumer). */
static void note_consumer(struct wf_node *n, const Wf__V1__Ack *a)
{
	if (a->consumer != NULL && wf_topic_id_valid(a->consumer) && !is_consumer(n, a->consumer) &&
	    n->n_consumers < sizeof n->consumers / sizeof n->consumers[0])
		snprintf(n->consumers[n->n_consumers++], sizeof n->consumers[0], "%s", a->consumer);
}

static void queue_floor(struct wf_node *n, const char *producer, uint64_t floor)
{
	struct pending *p;
	char *pc;

	if (n->n_batch >= WF_NODE_MAX_BATCH)
		run_batch(n);
	pc = strdup(producer);
	if (pc == NULL)
		return; /* the next heartbeat carries it again */
	p = &n->batch[n->n_batch++];
	memset(p, 0, sizeof *p);
	p->early_producer = pc;
	p->early_seq = floor;
	p->floor_only = true;
	if (!ev_is_active(&n->batch_idle))
		ev_idle_start(n->loop, &n->batch_idle);
}

static bool peer_started(struct wf_node *n, const char *service, int64_t started_ms)
{
	for (size_t i = 0; i < n->n_peers; i++) {
		if (strcmp(n->peers[i].service, service) == 0) {
			bool changed = n->peers[i].started_ms != started_ms;
			n->peers[i].started_ms = started_ms;
			return changed;
		}
	}
	if (n->n_peers < MAX_PEERS) {
		snprintf(n->peers[n->n_peers].service, sizeof n->peers[0].service, "%s", service);
		n->peers[n->n_peers++].started_ms = started_ms;
	}
	return true;
}

static void on_state_msg(struct wf_node *n, const struct wf_topic *parsed, const void *payload,
			 size_t len, bool retained)
{
	Wf__V1__ServiceState *st = NULL;
	struct wf_codec_error why;

	if (strcmp(parsed->id, n->service) == 0)
		return;
	/* An empty retained payload clears a state: nothing to do. */
	if (len == 0)
		return;
	bool first_sight = true;

	for (size_t i = 0; i < n->n_peers; i++)
		if (strcmp(n->peers[i].service, parsed->id) == 0)
			first_sight = false;
	if (wf_codec_state_unpack(payload, len, &n->limits, now_ms(n), &st, &why) < 0 ||
	    wf_codec_state_check_topic(st, parsed, &why) < 0) {
		/* A retained heartbeat older than the skew window is normal for a
		 * long-dead service; not worth a dead letter. */
		wf_codec_state_free(st);
		return;
	}
	/* A retained state seen for the first time (just after we subscribed)
	 * is not a birth: what we had sent is resent on its timeout anyway. */
	/* Nor is a birth that happened before this connection came up: a
	 * persistent session replays queued state messages of services that
	 * started while we were away, and what we publish now reaches them
	 * (our resend timer covers the rest). 2 s of slack for clock skew. */
	if (st->status == WF__V1__SERVICE_STATUS__SERVICE_ONLINE &&
	    peer_started(n, st->service, st->started_ms) && !(retained && first_sight) &&
	    st->started_ms >= n->connected_ms - 2000 &&
	    (n->n_consumers == 0 || is_consumer(n, st->service))) {
		/* A (re)born consumer: whatever it has not acked goes again. */
		wf_outbox_consumer_birth(n->outbox);
		wf_node_flush(n);
	}
	/* Consumers: the producer's floor, in order with its messages (see
	 * ServiceState.outbox_floor). */
	if (n->o.n_inputs > 0 && st->status == WF__V1__SERVICE_STATUS__SERVICE_ONLINE &&
	    st->outbox_floor > 1 && wf_dedupe_producer_valid(st->service))
		queue_floor(n, st->service, st->outbox_floor);
	if (n->cb.on_state != NULL)
		n->cb.on_state(n->ud, st, retained);
	wf_codec_state_free(st);
}

/* --- bus callbacks --- */

static void on_message(void *ud, const char *topic, const void *payload, size_t len, bool retained)
{
	struct wf_node *n = ud;
	struct wf_topic parsed;

	if (wf_bundle_is(payload, len)) {
		/* the bus opens good bundles: this one is not */
		struct wf_codec_error why = { .reason = WF_REASON_MALFORMED };
		Wf__V1__Bundle *b = NULL;
		if (retained)
			snprintf(why.detail, sizeof why.detail, "a retained bundle");
		else if (wf_bundle_unpack(topic, payload, len, &b, why.detail, sizeof why.detail) == 0)
			snprintf(why.detail, sizeof why.detail, "bundle not opened by the bus");
		wf_bundle_free(b);
		snprintf(why.field, sizeof why.field, "bundle");
		n->stats.received++;
		dead_letter(n, topic, payload, len, &why, NULL, 0);
		return;
	}
	if (wf_topic_parse(topic, &parsed) < 0) {
		struct wf_codec_error why = { .reason = WF_REASON_BAD_TOPIC };
		snprintf(why.detail, sizeof why.detail, "not a topic of the contract");
		n->stats.received++;
		dead_letter(n, topic, payload, len, &why, NULL, 0);
		return;
	}
	switch (parsed.kind) {
	case WF_TOPIC_ACK:
		if (strcmp(parsed.id, n->service) == 0 && len <= WF_OUTBOX_MAX_ACK_BYTES) {
			/* unpacked once: for the outbox and for who acked */
			Wf__V1__Ack *a = wf__v1__ack__unpack(NULL, len, payload);
			if (a != NULL && wf_outbox_ack(n->outbox, a) >= 0) {
				n->stats.acks_received++;
				note_consumer(n, a);
				schedule_resend(n);
				announce_floor(n);
			}
			if (a != NULL)
				wf__v1__ack__free_unpacked(a, NULL);
		}
		return;
	case WF_TOPIC_STATE:
		on_state_msg(n, &parsed, payload, len, retained);
		return;
	case WF_TOPIC_EVENT:
	case WF_TOPIC_WARNING:
		n->stats.received++;
		enqueue(n, topic, &parsed, payload, len);
		return;
	default:
		/* control messages only for a service that takes them; a
		 * retained empty payload clears a retained topic */
		if (n->cb.on_control == NULL || !wf_codec_control_kind(parsed.kind) ||
		    (retained && len == 0))
			return;
		n->stats.received++;
		enqueue(n, topic, &parsed, payload, len);
		return;
	}
}

static void on_connection(void *ud, bool up, int reason)
{
	struct wf_node *n = ud;

	if (!up) {
		notice(n, WF_NODE_DISCONNECTED, reason, NULL);
		return;
	}
	n->connected_ms = now_ms(n);
	notice(n, WF_NODE_CONNECTED, 0,
	       wf_bus_session_present(n->bus) ? "session present" : "new session");
	/* The birth (ONLINE) waits until every subscription is granted: a
	 * producer that sees it resends what we have not acked, and that must
	 * reach us. (With nothing to subscribe, or a session whose
	 * subscriptions the broker kept, it goes now.) */
	if (wf_bus_subscribed(n->bus))
		publish_state(n, true);
	wf_node_flush(n);
}

static void on_subscribed(void *ud)
{
	struct wf_node *n = ud;

	publish_state(n, true);
}

static void on_publish(void *ud, int mid, int result, int reason)
{
	struct wf_node *n = ud;

	if (result < 0) {
		n->stats.publish_refused++;
		notice(n, WF_NODE_PUBLISH_REFUSED, result, wf_bus_reason_string(reason));
	}
	/* a PUBACK frees a place in the bus queue */
	if (n->flush_more)
		wf_node_flush(n);
}

static void on_subscribe_error(void *ud, const char *pattern, int reason)
{
	struct wf_node *n = ud;
	char detail[WF_BUS_MAX_TOPIC_LEN + 64];

	snprintf(detail, sizeof detail, "subscription %s refused: %s", pattern,
		 wf_bus_reason_string(reason));
	notice(n, WF_NODE_PUBLISH_REFUSED, wf_bus_reason_to_errno(reason), detail);
}

static void heartbeat_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct wf_node *n = (struct wf_node *)(void *)((char *)w - offsetof(struct wf_node, heartbeat_timer));

	/* not between CONNACK and SUBACK: ONLINE means "subscribed" */
	if (wf_bus_subscribed(n->bus))
		publish_state(n, true);
}

/* --- life cycle --- */

static char *dup_opt(const char *s, bool *oom)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = strdup(s);
	if (d == NULL)
		*oom = true;
	return d;
}

int wf_node_new(struct ev_loop *loop, const struct wf_node_options *o,
		const struct wf_node_callbacks *cb, void *ud, struct wf_node **ret)
{
	struct wf_node *n;
	struct wf_store_options so = { 0 };
	struct wf_outbox_options oo = { 0 };
	struct wf_dedupe_options dopt = { 0 };
	struct wf_bus_options bo;
	struct wf_bus_callbacks bcb = { on_message, on_connection, on_publish, on_subscribe_error,
					on_subscribed };
	uint8_t *will = NULL;
	size_t will_len = 0;
	bool oom = false;
	int r;

	if (loop == NULL || o == NULL || ret == NULL || o->service == NULL ||
	    !wf_topic_id_valid(o->service) || !wf_dedupe_producer_valid(o->service) ||
	    o->kind == NULL || !wf_topic_id_valid(o->kind) || o->state_dir == NULL ||
	    o->n_inputs > WF_NODE_MAX_INPUTS || (o->n_inputs > 0 && o->inputs == NULL) ||
	    o->heartbeat_ms < 0 || o->resend_ms < 0)
		return -EINVAL;
	n = calloc(1, sizeof *n);
	if (n == NULL)
		return -ENOMEM;
	n->loop = loop;
	n->o = *o;
	if (cb != NULL)
		n->cb = *cb;
	n->ud = ud;
	if (n->o.heartbeat_ms == 0)
		n->o.heartbeat_ms = 10000;
	if (n->o.ack_delay_ms == 0)
		n->o.ack_delay_ms = 20;
	if (n->o.order_timeout_ms <= 0)
		n->o.order_timeout_ms = 30000;
	if (o->limits != NULL)
		n->limits = *o->limits;
	else
		wf_codec_limits_init(&n->limits);
	n->sysclock = wf_clock_system();
	n->clock = o->clock != NULL ? o->clock : &n->sysclock;
	n->service = dup_opt(o->service, &oom);
	n->kind = dup_opt(o->kind, &oom);
	n->version = dup_opt(o->version, &oom);
	n->state_dir = dup_opt(o->state_dir, &oom);
	n->inputs = calloc(o->n_inputs + 1, sizeof *n->inputs);
	n->batch = calloc(WF_NODE_MAX_BATCH, sizeof *n->batch);
	if (n->inputs == NULL || n->batch == NULL)
		oom = true;
	for (size_t i = 0; !oom && i < o->n_inputs; i++)
		n->inputs[i] = dup_opt(o->inputs[i], &oom);
	if (oom) {
		r = -ENOMEM;
		goto fail;
	}
	n->o.service = n->service;
	n->o.state_dir = n->state_dir;
	n->started_ms = now_ms(n);
	{
		size_t entries = o->bundle_max ? o->bundle_max : 128;
		size_t bytes = o->bundle_bytes ? o->bundle_bytes : 128u << 10;
		size_t packet = o->bus.max_packet_size ? o->bus.max_packet_size : 1u << 20;
		/* room for the topic and the MQTT header around the payload */
		if (packet > 4096 && bytes > packet - 2048)
			bytes = packet - 2048;
		n->bundling = entries > 1 && packet > 4096;
		if (n->bundling && wf_bundle_init(&n->bundle, entries, bytes) < 0) {
			r = -EINVAL;
			goto fail;
		}
	}
	if (wf_topic_state(n->state_topic, sizeof n->state_topic, n->service) < 0 ||
	    wf_topic_ack(n->ack_topic, sizeof n->ack_topic, n->service) < 0 ||
	    wf_topic_deadletter(n->dl_topic, sizeof n->dl_topic, n->service) < 0) {
		r = -EINVAL;
		goto fail;
	}

	so.path = n->state_dir;
	so.map_size = o->map_size;
	so.nosync = o->nosync;
	r = wf_store_open(&so, &n->store);
	if (r < 0)
		goto fail;
	oo.resend_ms = o->resend_ms;
	oo.max_entries = o->outbox_max_entries;
	oo.max_per_flush = FLUSH_CHUNK;
	oo.publish = outbox_publish;
	oo.publish_ud = n;
	oo.clock = n->clock;
	r = wf_outbox_open(n->store, n->service, &oo, &n->outbox);
	if (r < 0)
		goto fail;
	dopt.consumer = n->service;
	r = wf_dedupe_open(n->store, &dopt, &n->dedupe);
	if (r < 0)
		goto fail;

	r = pack_state(n, false, &will, &will_len);
	if (r < 0)
		goto fail;
	bo = o->bus;
	bo.client_id = n->service;
	bo.will_topic = n->state_topic;
	bo.will_payload = will;
	bo.will_len = will_len;
	bo.will_qos = 1;
	bo.will_retain = true;
	r = wf_bus_new(loop, &bo, &bcb, n, &n->bus);
	free(will);
	if (r < 0)
		goto fail;
	r = wf_bus_subscribe(n->bus, n->ack_topic, 1);
	if (r == 0)
		r = wf_bus_subscribe(n->bus, "wf/v1/state/+", 1);
	for (size_t i = 0; r == 0 && i < o->n_inputs; i++)
		r = wf_bus_subscribe(n->bus, n->inputs[i], 1);
	if (r < 0)
		goto fail;

	ev_idle_init(&n->batch_idle, batch_cb);
	ev_timer_init(&n->ack_timer, ack_cb, 0., 0.);
	ev_timer_init(&n->resend_timer, resend_cb, 0., 0.);
	ev_timer_init(&n->heartbeat_timer, heartbeat_cb, (double)n->o.heartbeat_ms / 1000.0,
		      (double)n->o.heartbeat_ms / 1000.0);
	*ret = n;
	return 0;
fail:
	wf_node_free(n);
	return r;
}

int wf_node_start(struct wf_node *n)
{
	if (n == NULL)
		return -EINVAL;
	n->started = true;
	n->stopping = false;
	ev_timer_again(n->loop, &n->heartbeat_timer);
	return wf_bus_start(n->bus);
}

int wf_node_stop(struct wf_node *n)
{
	if (n == NULL || !n->started)
		return 0;
	run_batch(n);
	send_acks(n);
	publish_state(n, false);
	n->stopping = true;
	n->started = false;
	ev_idle_stop(n->loop, &n->batch_idle);
	ev_timer_stop(n->loop, &n->ack_timer);
	ev_timer_stop(n->loop, &n->resend_timer);
	ev_timer_stop(n->loop, &n->heartbeat_timer);
	return wf_bus_stop(n->bus);
}

struct wf_node *wf_node_free(struct wf_node *n)
{
	if (n == NULL)
		return NULL;
	if (n->bus != NULL) {
		wf_node_stop(n);
		n->bus = wf_bus_free(n->bus);
	}
	if (n->loop != NULL) {
		ev_idle_stop(n->loop, &n->batch_idle);
		ev_timer_stop(n->loop, &n->ack_timer);
		ev_timer_stop(n->loop, &n->resend_timer);
		ev_timer_stop(n->loop, &n->heartbeat_timer);
	}
	if (n->batch != NULL)
		for (size_t i = 0; i < n->n_batch; i++)
			pending_clear(&n->batch[i]);
	free(n->batch);
	wf_bundle_destroy(&n->bundle);
	wf_dedupe_close(n->dedupe);
	wf_outbox_close(n->outbox);
	wf_store_close(n->store);
	for (size_t i = 0; n->inputs != NULL && i < n->o.n_inputs; i++)
		free(n->inputs[i]);
	free(n->inputs);
	free(n->service);
	free(n->kind);
	free(n->version);
	free(n->state_dir);
	free(n);
	return NULL;
}

int wf_node_update(struct wf_node *n, int (*fn)(struct wf_txn *t, void *ud), void *ud)
{
	int r = wf_store_update(n->store, fn, ud);

	if (r >= 0)
		wf_node_flush(n);
	return r;
}

static int emit(struct wf_node *n, struct wf_txn *t, const char *topic, const uint8_t *buf,
		size_t len, uint64_t seq)
{
	int r = wf_outbox_put(n->outbox, t, seq, topic, buf, len);

	if (r == 0)
		n->stats.emitted++;
	return r;
}

int wf_node_emit_event(struct wf_node *n, struct wf_txn *t, Wf__V1__Event *ev,
		       struct wf_codec_error *why)
{
	struct wf_codec_error tmp;
	char topic[WF_TOPIC_MAX];
	uint8_t *buf = NULL;
	size_t len = 0;
	uint64_t seq = 0;
	int r;

	if (why == NULL)
		why = &tmp;
	if (ev->agency != n->o.agency && n->o.agency != 0)
		return -EINVAL;
	r = wf_outbox_next_seq(n->outbox, t, &seq);
	if (r < 0)
		return r;
	{
		/* a shallow copy: the caller's strings stay the caller's */
		Wf__V1__Event c = *ev;

		c.producer = n->service;
		c.seq = seq;
		r = wf_codec_event_pack(&c, &n->limits, now_ms(n), &buf, &len, why);
	}
	ev->seq = seq;
	if (r == 0)
		r = wf_topic_event(topic, sizeof topic, ev->agency, ev->region);
	if (r == 0)
		r = emit(n, t, topic, buf, len, seq);
	free(buf);
	return r;
}

int wf_node_emit_warning(struct wf_node *n, struct wf_txn *t, Wf__V1__Warning *w,
			 struct wf_codec_error *why)
{
	struct wf_codec_error tmp;
	char topic[WF_TOPIC_MAX];
	uint8_t *buf = NULL;
	size_t len = 0;
	uint64_t seq = 0;
	int r;

	if (why == NULL)
		why = &tmp;
	if (w->n_regions == 0)
		return -EINVAL;
	r = wf_outbox_next_seq(n->outbox, t, &seq);
	if (r < 0)
		return r;
	{
		/* a shallow copy: the caller's strings stay the caller's */
		Wf__V1__Warning c = *w;

		c.producer = n->service;
		c.seq = seq;
		r = wf_codec_warning_pack(&c, &n->limits, now_ms(n), &buf, &len, why);
	}
	w->seq = seq;
	if (r == 0)
		r = wf_topic_warning(topic, sizeof topic, w->regions[0], w->hazard);
	if (r == 0)
		r = emit(n, t, topic, buf, len, seq);
	free(buf);
	return r;
}

int wf_node_emit_control(struct wf_node *n, struct wf_txn *t, enum wf_topic_kind kind,
			 ProtobufCMessage *msg, struct wf_codec_error *why)
{
	struct wf_codec_error tmp;
	char topic[WF_TOPIC_MAX];
	uint8_t *buf = NULL;
	size_t len = 0;
	uint64_t seq = 0;
	int r;

	if (why == NULL)
		why = &tmp;
	if (msg == NULL)
		return -EINVAL;
	switch (kind) {
	case WF_TOPIC_APPROVAL:
	case WF_TOPIC_DUTY_ACK:
	case WF_TOPIC_DUTY_FOLLOWUP:
	case WF_TOPIC_SILENCE:
		break;
	default:
		return -EINVAL;
	}
	r = wf_outbox_next_seq(n->outbox, t, &seq);
	if (r < 0)
		return r;
	/* shallow copies: the caller's strings stay the caller's */
	switch (kind) {
	case WF_TOPIC_APPROVAL: {
		Wf__V1__Approval c = *(Wf__V1__Approval *)msg;
		c.producer = n->service;
		c.seq = seq;
		((Wf__V1__Approval *)msg)->seq = seq;
		r = wf_codec_approval_pack(&c, &n->limits, now_ms(n), &buf, &len, why);
		if (r == 0)
			r = wf_topic_approval(topic, sizeof topic, c.operator_);
		break;
	}
	case WF_TOPIC_DUTY_ACK: {
		Wf__V1__DutyAck c = *(Wf__V1__DutyAck *)msg;
		c.producer = n->service;
		c.seq = seq;
		((Wf__V1__DutyAck *)msg)->seq = seq;
		r = wf_codec_duty_ack_pack(&c, &n->limits, now_ms(n), &buf, &len, why);
		if (r == 0)
			r = wf_topic_duty(topic, sizeof topic, c.station, WF_TOPIC_DUTY_ACK);
		break;
	}
	case WF_TOPIC_DUTY_FOLLOWUP: {
		Wf__V1__FollowUp c = *(Wf__V1__FollowUp *)msg;
		c.producer = n->service;
		c.seq = seq;
		((Wf__V1__FollowUp *)msg)->seq = seq;
		r = wf_codec_followup_pack(&c, &n->limits, now_ms(n), &buf, &len, why);
		if (r == 0)
			r = wf_topic_duty(topic, sizeof topic, c.station, WF_TOPIC_DUTY_FOLLOWUP);
		break;
	}
	default: {
		Wf__V1__Silence c = *(Wf__V1__Silence *)msg;
		c.producer = n->service;
		c.seq = seq;
		((Wf__V1__Silence *)msg)->seq = seq;
		r = wf_codec_silence_pack(&c, &n->limits, now_ms(n), &buf, &len, why);
		if (r == 0)
			r = wf_topic_silence(topic, sizeof topic, c.operator_);
		break;
	}
	}
	if (r == 0)
		r = emit(n, t, topic, buf, len, seq);
	free(buf);
	return r;
}

int wf_node_publish(struct wf_node *n, const char *topic, const void *payload, size_t len,
		    bool retain)
{
	if (n == NULL || topic == NULL)
		return -EINVAL;
	return wf_node_publish_qos(n, topic, payload, len, 1, retain);
}

int wf_node_publish_qos(struct wf_node *n, const char *topic, const void *payload, size_t len,
			int qos, bool retain)
{
	if (n == NULL || topic == NULL || qos < 0 || qos > 1)
		return -EINVAL;
	return wf_bus_publish(n->bus, topic, payload, len, qos, retain, NULL);
}

void wf_node_set_ud(struct wf_node *n, void *ud, void *notice_ud)
{
	n->ud = ud;
	if (notice_ud != NULL)
		n->notice_ud = notice_ud;
}

struct wf_store *wf_node_store(struct wf_node *n) { return n->store; }
struct wf_outbox *wf_node_outbox(struct wf_node *n) { return n->outbox; }
struct wf_bus *wf_node_bus(struct wf_node *n) { return n->bus; }
const char *wf_node_service(const struct wf_node *n) { return n->service; }
bool wf_node_connected(const struct wf_node *n) { return wf_bus_connected(n->bus); }
bool wf_node_ready(const struct wf_node *n) { return wf_bus_subscribed(n->bus); }

int64_t wf_node_pending(struct wf_node *n)
{
	uint64_t count = 0;
	int r = wf_outbox_pending(n->outbox, &count, NULL);

	return r < 0 ? r : (int64_t)count;
}

void wf_node_get_stats(const struct wf_node *n, struct wf_node_stats *ret)
{
	*ret = n->stats;
}

unsigned wf_node_bundle_max(const struct wf_node *n)
{
	return n->bundling ? (unsigned)n->bundle.max_entries : 1;
}
