/* Integration tests for common/src/node.c: the end-to-end delivery
 * guarantee (outbox -> real mosquitto -> dedupe -> ack) with processes
 * killed by SIGKILL, and dead letters for bad input. No fixed ports, no
 * sleeps for readiness: every wait polls a condition with a deadline. */
#include <check.h>
#include <errno.h>
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker.h"
#include "bundle.pb-c.h"
#include "wf/bus.h"
#include "wf/clock.h"
#include "wf/codec.h"
#include "wf/node.h"
#include "wf/store.h"

#define N_EVENTS 600
#define REGION "410102000000"
#define TOPIC_410102 "wf/v1/event/met/41/4101/410102"

/* ---- a consumer whose effect is a durable per-event counter ---- */

struct consumer {
	struct wf_node *node;
	unsigned effects_dbi;
	bool kill_after_first_batch; /* child mode: die before the acks go out */
	int batches_done;
	int notices_rejected;
};

static int on_event(void *ud, struct wf_txn *t, const Wf__V1__Event *ev,
		    const struct wf_node_msg *m, struct wf_codec_error *why)
{
	struct consumer *c = ud;
	uint32_t count = 0;
	size_t len = 0;
	int r = wf_store_get_buf(t, c->effects_dbi, ev->id, strlen(ev->id), &count, sizeof count,
				 &len);

	if (r < 0 && r != -ENOENT)
		return r;
	count++;
	return wf_store_put(t, c->effects_dbi, ev->id, strlen(ev->id), &count, sizeof count, 0);
}

static void on_batch_done(void *ud, bool committed)
{
	struct consumer *c = ud;

	c->batches_done++;
	if (committed && c->kill_after_first_batch)
		raise(SIGKILL); /* committed, acks not yet published */
}

static void on_notice(void *ud, enum wf_node_notice what, int code, const char *detail)
{
	struct consumer *c = ud;

	if (what == WF_NODE_REJECTED)
		c->notices_rejected++;
}

static void node_opts(struct wf_node_options *o, struct wf_test_broker *br, const char *service,
		      const char *dir)
{
	wf_node_options_init(o);
	o->service = service;
	o->kind = strncmp(service, "wf-met", 6) == 0 ? "met" : "fusion";
	o->agency = strncmp(service, "wf-met", 6) == 0 ? WF__V1__AGENCY__AGENCY_MET : 0;
	o->state_dir = dir;
	o->bus.port = wf_test_broker_port(br);
	o->bus.reconnect_min_s = 0.05;
	o->bus.reconnect_max_s = 0.3;
	o->resend_ms = 300;
	o->heartbeat_ms = 1000;
}

static void consumer_new(struct consumer *c, struct ev_loop *loop, struct wf_test_broker *br,
			 const char *dir)
{
	static const char *inputs[] = { "wf/v1/event/+/41/#" };
	struct wf_node_options o;
	struct wf_node_callbacks cb = { .on_event = on_event, .on_batch_done = on_batch_done,
					.on_notice = on_notice };
	struct wf_txn *t;

	node_opts(&o, br, "wf-fusion-t", dir);
	o.inputs = inputs;
	o.n_inputs = 1;
	o.ack_delay_ms = 5;
	ck_assert_int_eq(wf_node_new(loop, &o, &cb, c, &c->node), 0);
	ck_assert_int_eq(wf_store_dbi(wf_node_store(c->node), "effects", 0, &c->effects_dbi), 0);
	ck_assert_int_eq(wf_store_txn_begin(wf_node_store(c->node), true, &t), 0);
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
}

/* ---- a producer of N_EVENTS events ---- */

static void fill_event(Wf__V1__Event *ev, Wf__V1__Measurement *me, char *id, size_t idsize,
		       int i, int64_t now)
{
	wf__v1__event__init(ev);
	wf__v1__measurement__init(me);
	snprintf(id, idsize, "met:st%03d:%d", i % 50, i);
	ev->id = id;
	ev->agency = WF__V1__AGENCY__AGENCY_MET;
	ev->hazard = WF__V1__HAZARD__HAZARD_RAINSTORM;
	ev->region = REGION;
	ev->level = WF__V1__LEVEL__LEVEL_IV;
	me->value = 50 + i % 10;
	me->threshold = 50;
	me->unit = "mm";
	me->criterion = "rain_3h";
	ev->measurement = me;
	ev->observed_ms = now - 1000;
	ev->expires_ms = now + 3600 * 1000;
	ev->status = WF__V1__STATUS__STATUS_ACTUAL;
	ev->msg_type = WF__V1__MSG_TYPE__MSG_TYPE_ALERT;
}

struct emit_ctx {
	struct wf_node *node;
	int first, count;
};

static int emit_some(struct wf_txn *t, void *ud)
{
	struct emit_ctx *e = ud;
	int64_t now = wf_clock_now_ms(NULL);

	for (int i = e->first; i < e->first + e->count; i++) {
		Wf__V1__Event ev;
		Wf__V1__Measurement me;
		char id[64];
		int r;

		fill_event(&ev, &me, id, sizeof id, i, now);
		r = wf_node_emit_event(e->node, t, &ev, NULL);
		if (r < 0)
			return r;
	}
	return 0;
}

static struct wf_node *producer_new_bundled(struct ev_loop *loop, struct wf_test_broker *br,
					    const char *dir, unsigned bundle_max)
{
	struct wf_node_options o;
	struct wf_node *p = NULL;

	node_opts(&o, br, "wf-met-t", dir);
	o.bundle_max = bundle_max;
	ck_assert_int_eq(wf_node_new(loop, &o, NULL, NULL, &p), 0);
	return p;
}

static struct wf_node *producer_new(struct ev_loop *loop, struct wf_test_broker *br,
				    const char *dir)
{
	return producer_new_bundled(loop, br, dir, 0);
}

/* ---- predicates ---- */

struct all_done {
	struct consumer *c;
	struct wf_node *p;
};

static int count_effects(struct consumer *c, int *dups)
{
	struct wf_txn *t;
	int seen = 0;

	*dups = 0;
	ck_assert_int_eq(wf_store_txn_begin(wf_node_store(c->node), false, &t), 0);
	for (int i = 0; i < N_EVENTS; i++) {
		char id[64];
		uint32_t count = 0;
		size_t len = 0;

		snprintf(id, sizeof id, "met:st%03d:%d", i % 50, i);
		if (wf_store_get_buf(t, c->effects_dbi, id, strlen(id), &count, sizeof count, &len) == 0) {
			seen++;
			if (count != 1)
				(*dups)++;
		}
	}
	wf_store_txn_abort(t);
	return seen;
}

static bool delivered_and_acked(void *ud)
{
	struct all_done *a = ud;
	int dups;

	return wf_node_pending(a->p) == 0 && count_effects(a->c, &dups) == N_EVENTS;
}

struct child_wait {
	pid_t pid;
	int status;
	bool done;
};

static bool child_exited(void *ud)
{
	struct child_wait *w = ud;

	if (!w->done && waitpid(w->pid, &w->status, WNOHANG) == w->pid)
		w->done = true;
	return w->done;
}

static bool node_ready(void *ud)
{
	return wf_node_ready(ud);
}

static bool half_published(void *ud)
{
	struct wf_bus_stats st;

	wf_bus_get_stats(wf_node_bus(ud), &st);
	/* bundles of 7 (test_producer_sigkill): half of them */
	return st.published >= N_EVENTS / 7 / 2;
}

static struct wf_test_broker *broker_start(void)
{
	struct wf_test_broker *br = NULL;
	int r = wf_test_broker_start(NULL, &br);

	ck_assert_msg(r == 0, "broker start failed: %s", strerror(-r));
	return br;
}

/* ---- tests ---- */

/* N_EVENTS on one topic, from a producer that bundles at most BUNDLE_MAX
 * (0: the default 128) events per MQTT message. */
static void roundtrip(unsigned bundle_max)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_test_broker *br = broker_start();
	char *dir = wf_test_mkdtemp("node-rt");
	char pdir[512], cdir[512];
	struct consumer c = { 0 };
	struct wf_node_stats ps, cs;
	struct wf_bus_stats pb, cb;

	snprintf(pdir, sizeof pdir, "%s/p", dir);
	snprintf(cdir, sizeof cdir, "%s/c", dir);
	consumer_new(&c, loop, br, cdir);
	struct wf_node *p = producer_new_bundled(loop, br, pdir, bundle_max);
	ck_assert_uint_eq(wf_node_bundle_max(p), bundle_max ? bundle_max : 128);
	ck_assert_int_eq(wf_node_start(c.node), 0);
	ck_assert(wf_test_run_until(loop, node_ready, c.node, 10000));

	struct emit_ctx e = { p, 0, N_EVENTS };
	ck_assert_int_eq(wf_node_update(p, emit_some, &e), 0);
	ck_assert_int_eq(wf_node_pending(p), N_EVENTS); /* persisted before any publish */
	ck_assert_int_eq(wf_node_start(p), 0);

	struct all_done a = { &c, p };
	ck_assert(wf_test_run_until(loop, delivered_and_acked, &a, 20000));
	int dups;
	ck_assert_int_eq(count_effects(&c, &dups), N_EVENTS);
	ck_assert_int_eq(dups, 0);
	wf_node_get_stats(p, &ps);
	wf_node_get_stats(c.node, &cs);
	ck_assert_uint_eq(ps.emitted, N_EVENTS);
	ck_assert_uint_ge(ps.acks_received, 1);
	ck_assert_uint_eq(cs.applied, N_EVENTS);
	ck_assert_uint_eq(cs.rejected, 0);
	/* group commit: far fewer transactions than messages */
	ck_assert_uint_lt(cs.batches, N_EVENTS);
	/* bundles: every event went in one (all share a topic), a bundle
	 * holds at most BUNDLE_MAX; the consumer's bus opened them */
	wf_bus_get_stats(wf_node_bus(p), &pb);
	wf_bus_get_stats(wf_node_bus(c.node), &cb);
	if (bundle_max == 1) {
		ck_assert_uint_eq(ps.bundles_sent, 0);
		ck_assert_uint_eq(cb.bundles, 0);
		ck_assert_uint_ge(cb.received, N_EVENTS);
	} else {
		unsigned most = bundle_max ? bundle_max : 128;
		ck_assert_uint_ge(ps.bundles_sent, (N_EVENTS + most - 1) / most);
		ck_assert_uint_ge(cb.bundles, (N_EVENTS + most - 1) / most);
		/* events, births, heartbeats: far fewer messages than events */
		ck_assert_uint_lt(pb.published, N_EVENTS / 2);
		ck_assert_uint_lt(cb.received, N_EVENTS / 2);
	}

	wf_node_free(p);
	wf_node_free(c.node);
	wf_test_broker_free(br);
	wf_test_rmtree(dir);
	free(dir);
	ev_loop_destroy(loop);
}

START_TEST(test_roundtrip_exactly_once)
{
	roundtrip(0);
}
END_TEST

/* [mqtt] bundle = 1: every event alone, as before bundles */
START_TEST(test_roundtrip_unbundled)
{
	roundtrip(1);
}
END_TEST

/* small bundles: many of them, in order, nothing lost */
START_TEST(test_roundtrip_bundles_of_7)
{
	roundtrip(7);
}
END_TEST

/* The bus refuses publishes beyond its queue (-ENOBUFS, here 16 in flight):
 * the outbox then asks for a resend "at once" (INT64_MIN), which the node's
 * resend timer must honour (it once overflowed into "never" and the rest
 * of the outbox stalled). Every event still arrives, exactly once. */
START_TEST(test_bus_queue_full_resends)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_test_broker *br = broker_start();
	char *dir = wf_test_mkdtemp("node-q");
	char pdir[512], cdir[512];
	struct consumer c = { 0 };
	struct wf_node_options o;
	struct wf_node *p = NULL;
	struct wf_node_stats ps;

	snprintf(pdir, sizeof pdir, "%s/p", dir);
	snprintf(cdir, sizeof cdir, "%s/c", dir);
	consumer_new(&c, loop, br, cdir);
	node_opts(&o, br, "wf-met-t", pdir);
	o.bus.max_queued = 16;
	o.bus.max_inflight = 16;
	ck_assert_int_eq(wf_node_new(loop, &o, NULL, NULL, &p), 0);
	ck_assert_int_eq(wf_node_start(c.node), 0);
	ck_assert(wf_test_run_until(loop, node_ready, c.node, 10000));
	struct emit_ctx e = { p, 0, N_EVENTS };
	ck_assert_int_eq(wf_node_update(p, emit_some, &e), 0);
	ck_assert_int_eq(wf_node_start(p), 0);
	struct all_done a = { &c, p };
	ck_assert_msg(wf_test_run_until(loop, delivered_and_acked, &a, 30000),
		      "stalled: %lld of %d still unacknowledged", (long long)wf_node_pending(p),
		      N_EVENTS);
	int dups;
	ck_assert_int_eq(count_effects(&c, &dups), N_EVENTS);
	ck_assert_int_eq(dups, 0);
	wf_node_get_stats(p, &ps);
	ck_assert_uint_eq(ps.emitted, N_EVENTS);

	wf_node_free(p);
	wf_node_free(c.node);
	wf_test_broker_free(br);
	wf_test_rmtree(dir);
	free(dir);
	ev_loop_destroy(loop);
}
END_TEST

/* The producer persists N events, starts publishing and is killed with
 * SIGKILL once half of them are handed to the bus (in bundles of 7; all persisted, none or
 * few acked, some published and applied whose acks die with it). A new
 * producer process on the same state directory resends; the consumer ends
 * with every event applied exactly once. */
START_TEST(test_producer_sigkill)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_test_broker *br = broker_start();
	char *dir = wf_test_mkdtemp("node-pk");
	char pdir[512], cdir[512];
	struct consumer c = { 0 };

	snprintf(pdir, sizeof pdir, "%s/p", dir);
	snprintf(cdir, sizeof cdir, "%s/c", dir);
	consumer_new(&c, loop, br, cdir);
	ck_assert_int_eq(wf_node_start(c.node), 0);
	ck_assert(wf_test_run_until(loop, node_ready, c.node, 10000));

	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct ev_loop *cl = ev_loop_new(EVFLAG_AUTO);
		/* small bundles, so that it dies with many still to send */
		struct wf_node *p = producer_new_bundled(cl, br, pdir, 7);
		struct emit_ctx e = { p, 0, N_EVENTS };

		if (wf_node_update(p, emit_some, &e) != 0)
			_exit(3);
		wf_node_start(p);
		wf_test_run_until(cl, half_published, p, 20000);
		raise(SIGKILL);
		_exit(4);
	}
	struct child_wait w = { pid, 0, false };
	ck_assert(wf_test_run_until(loop, child_exited, &w, 30000));
	ck_assert_msg(WIFSIGNALED(w.status) && WTERMSIG(w.status) == SIGKILL, "child status %d",
		      w.status);

	/* the restarted producer still holds what was not acked */
	struct wf_node *p = producer_new(loop, br, pdir);
	int64_t left = wf_node_pending(p);
	ck_assert_int_gt(left, 0);
	ck_assert_int_le(left, N_EVENTS);
	ck_assert_int_eq(wf_node_start(p), 0);
	struct all_done a = { &c, p };
	ck_assert(wf_test_run_until(loop, delivered_and_acked, &a, 30000));
	int dups;
	ck_assert_int_eq(count_effects(&c, &dups), N_EVENTS);
	ck_assert_int_eq(dups, 0);

	wf_node_free(p);
	wf_node_free(c.node);
	wf_test_broker_free(br);
	wf_test_rmtree(dir);
	free(dir);
	ev_loop_destroy(loop);
}
END_TEST

/* The consumer commits its first batch and is killed before its acks go
 * out; the producer resends (timeout, and the restarted consumer's birth);
 * the restarted consumer recognises what it had applied. */
START_TEST(test_consumer_sigkill)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_test_broker *br = broker_start();
	char *dir = wf_test_mkdtemp("node-ck");
	char pdir[512], cdir[512];

	snprintf(pdir, sizeof pdir, "%s/p", dir);
	snprintf(cdir, sizeof cdir, "%s/c", dir);

	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct ev_loop *cl = ev_loop_new(EVFLAG_AUTO);
		struct consumer cc = { 0 };

		consumer_new(&cc, cl, br, cdir);
		cc.kill_after_first_batch = true;
		wf_node_start(cc.node);
		ev_run(cl, 0);
		_exit(4);
	}
	/* wait until the child consumer is subscribed: its retained birth */
	struct wf_node *p = producer_new(loop, br, pdir);
	struct emit_ctx e = { p, 0, N_EVENTS };
	ck_assert_int_eq(wf_node_update(p, emit_some, &e), 0);
	ck_assert_int_eq(wf_node_start(p), 0);
	struct child_wait w = { pid, 0, false };
	ck_assert(wf_test_run_until(loop, child_exited, &w, 30000));
	ck_assert_msg(WIFSIGNALED(w.status) && WTERMSIG(w.status) == SIGKILL, "child status %d",
		      w.status);
	ck_assert_int_gt(wf_node_pending(p), 0); /* nothing acked by the dead one */

	struct consumer c = { 0 };
	consumer_new(&c, loop, br, cdir);
	int dups;
	int before = count_effects(&c, &dups);
	ck_assert_int_gt(before, 0); /* its first batch was committed */
	ck_assert_int_eq(wf_node_start(c.node), 0);
	struct all_done a = { &c, p };
	ck_assert(wf_test_run_until(loop, delivered_and_acked, &a, 30000));
	ck_assert_int_eq(count_effects(&c, &dups), N_EVENTS);
	ck_assert_int_eq(dups, 0);
	struct wf_node_stats cs;
	wf_node_get_stats(c.node, &cs);
	ck_assert_uint_ge(cs.duplicates, (uint64_t)before); /* recognised, not re-applied */

	wf_node_free(p);
	wf_node_free(c.node);
	wf_test_broker_free(br);
	wf_test_rmtree(dir);
	free(dir);
	ev_loop_destroy(loop);
}
END_TEST

/* ---- dead letters ---- */

struct dl_sub {
	struct wf_bus *bus;
	int n;
	int reasons[8];
};

static void dl_message(void *ud, const char *topic, const void *payload, size_t len, bool retained)
{
	struct dl_sub *s = ud;
	Wf__V1__DeadLetter *dl = wf__v1__dead_letter__unpack(NULL, len, payload);

	if (dl != NULL && s->n < 8)
		s->reasons[s->n++] = dl->reason;
	if (dl != NULL)
		wf__v1__dead_letter__free_unpacked(dl, NULL);
}

static bool dl_count5(void *ud)
{
	return ((struct dl_sub *)ud)->n >= 5;
}

static bool one_effect(void *ud)
{
	int dups;
	return count_effects(ud, &dups) == 1;
}

/* WF_BUNDLE_MAGIC + a Bundle of N entries (TOPICS, PAYLOADS) into BUF */
static size_t pack_bundle(uint8_t *buf, const char *const *topics, uint8_t *const *payloads,
			  const size_t *lens, size_t n)
{
	Wf__V1__BundleEntry e[4], *ep[4];
	Wf__V1__Bundle m = WF__V1__BUNDLE__INIT;

	for (size_t i = 0; i < n; i++) {
		wf__v1__bundle_entry__init(&e[i]);
		e[i].topic = (char *)topics[i];
		e[i].payload.data = payloads[i];
		e[i].payload.len = lens[i];
		ep[i] = &e[i];
	}
	m.n_entries = n;
	m.entries = ep;
	buf[0] = 0;
	buf[1] = 1;
	return 2 + wf__v1__bundle__pack(&m, buf + 2);
}

static bool bus_subscribed(void *ud)
{
	return wf_bus_subscribed(ud);
}

START_TEST(test_dead_letters)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_test_broker *br = broker_start();
	char *dir = wf_test_mkdtemp("node-dl");
	struct consumer c = { 0 };
	struct dl_sub s = { 0 };
	struct wf_bus_options bo;
	struct wf_bus_callbacks bcb = { .on_message = dl_message };

	consumer_new(&c, loop, br, dir);
	ck_assert_int_eq(wf_node_start(c.node), 0);
	wf_bus_options_init(&bo);
	bo.port = wf_test_broker_port(br);
	bo.client_id = "dl-watch";
	ck_assert_int_eq(wf_bus_new(loop, &bo, &bcb, &s, &s.bus), 0);
	ck_assert_int_eq(wf_bus_subscribe(s.bus, "wf/v1/deadletter/+", 1), 0);
	ck_assert_int_eq(wf_bus_start(s.bus), 0);
	ck_assert(wf_test_run_until(loop, bus_subscribed, s.bus, 10000));
	ck_assert(wf_test_run_until(loop, node_ready, c.node, 10000));

	/* 1: not protobuf */
	ck_assert_int_eq(wf_bus_publish(s.bus, TOPIC_410102, "\xff\xff\xff", 3, 1, false, NULL), 0);
	/* 2: a protobuf Event without an id */
	Wf__V1__Event ev;
	Wf__V1__Measurement me;
	char id[64];
	int64_t now = wf_clock_now_ms(NULL);
	fill_event(&ev, &me, id, sizeof id, 1, now);
	ev.producer = "wf-met-x";
	ev.seq = 1;
	ev.id = "";
	uint8_t buf[1024];
	size_t len = wf__v1__event__pack(&ev, buf);
	ck_assert_int_eq(wf_bus_publish(s.bus, TOPIC_410102, buf, len, 1, false, NULL), 0);
	/* 3: a valid event on another county's topic */
	fill_event(&ev, &me, id, sizeof id, 2, now);
	ev.producer = "wf-met-x";
	ev.seq = 2;
	len = wf__v1__event__pack(&ev, buf);
	ck_assert_int_eq(wf_bus_publish(s.bus, "wf/v1/event/met/41/4101/410103", buf, len, 1, false,
					NULL), 0);

	/* 4: a bundle with an entry of another county (the broker checked
	 * only the bundle's topic): refused whole, nothing in it applied */
	uint8_t good[1024], bad[1024], bundle[4096];
	fill_event(&ev, &me, id, sizeof id, 3, now);
	ev.producer = "wf-met-x";
	ev.seq = 3;
	size_t good_len = wf__v1__event__pack(&ev, good);
	const char *t4[] = { TOPIC_410102, "wf/v1/event/met/41/4101/410103" };
	uint8_t *p4[] = { good, good };
	size_t l4[] = { good_len, good_len };
	len = pack_bundle(bundle, t4, p4, l4, 2);
	ck_assert_int_eq(wf_bus_publish(s.bus, TOPIC_410102, bundle, len, 1, false, NULL), 0);
	/* 5: a good bundle of a good event and a bad one (no id): the good
	 * one is applied, the bad one dead-lettered alone */
	fill_event(&ev, &me, id, sizeof id, 4, now);
	ev.producer = "wf-met-x";
	ev.seq = 4;
	ev.id = "";
	size_t bad_len = wf__v1__event__pack(&ev, bad);
	const char *t5[] = { TOPIC_410102, TOPIC_410102 };
	uint8_t *p5[] = { good, bad };
	size_t l5[] = { good_len, bad_len };
	len = pack_bundle(bundle, t5, p5, l5, 2);
	ck_assert_int_eq(wf_bus_publish(s.bus, TOPIC_410102, bundle, len, 1, false, NULL), 0);

	ck_assert(wf_test_run_until(loop, dl_count5, &s, 10000));
	ck_assert_int_eq(s.reasons[0], WF_REASON_MALFORMED);
	ck_assert_int_eq(s.reasons[1], WF_REASON_MISSING_FIELD);
	ck_assert_int_eq(s.reasons[2], WF_REASON_BAD_TOPIC);
	ck_assert_int_eq(s.reasons[3], WF_REASON_MALFORMED); /* the bundle */
	ck_assert_int_eq(s.reasons[4], WF_REASON_MISSING_FIELD); /* its bad entry */
	ck_assert(wf_test_run_until(loop, one_effect, &c, 10000));
	ck_assert_int_eq(c.notices_rejected, 5);
	int dups;
	ck_assert_int_eq(count_effects(&c, &dups), 1); /* only the good entry of 5 */
	ck_assert_int_eq(dups, 0);

	wf_bus_free(s.bus);
	wf_node_free(c.node);
	wf_test_broker_free(br);
	wf_test_rmtree(dir);
	free(dir);
	ev_loop_destroy(loop);
}
END_TEST

int main(void)
{
	char *tmp = wf_test_mkdtemp("itest-node");
	if (!tmp || setenv("TMPDIR", tmp, 1) < 0) {
		fprintf(stderr, "cannot make a temp directory\n");
		return EXIT_FAILURE;
	}
	Suite *s = suite_create("node");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_roundtrip_exactly_once);
	tcase_add_test(tc, test_roundtrip_unbundled);
	tcase_add_test(tc, test_roundtrip_bundles_of_7);
	tcase_add_test(tc, test_bus_queue_full_resends);
	tcase_add_test(tc, test_producer_sigkill);
	tcase_add_test(tc, test_consumer_sigkill);
	tcase_add_test(tc, test_dead_letters);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	wf_test_rmtree(tmp);
	free(tmp);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
