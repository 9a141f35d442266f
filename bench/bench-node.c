/* bench-node: end-to-end events/s through a private Mosquitto with the
 * delivery guarantee on: a producer wf_node persists events in its outbox
 * (durable LMDB commits, 500 events per transaction), publishes them; a
 * consumer wf_node applies each in a group-committed batch (durable), acks
 * after the commit; the producer deletes acked entries. Measured until the
 * last event is acknowledged. Prints
 *   node.e2e_durable_events_per_s N
 * Compare with broker.raw_qos1_msgs_per_s from bench-broker in the same run
 * (bench/run prints the ratio). Bounded by --count and a 120 s time limit. */
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker.h"
#include "wf/clock.h"
#include "wf/node.h"
#include "wf/store.h"

#define PER_TXN 500
#define MAX_PENDING 20000

struct bench {
	struct ev_loop *loop;
	struct wf_node *p, *c;
	unsigned dbi;
	long count, emitted, applied;
	ev_idle feeder;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int on_event(void *ud, struct wf_txn *t, const Wf__V1__Event *ev,
		    const struct wf_node_msg *m, struct wf_codec_error *why)
{
	struct bench *b = ud;
	return wf_store_put(t, b->dbi, ev->id, strlen(ev->id), &ev->seq, sizeof ev->seq, 0);
}

static void on_batch_done(void *ud, bool committed)
{
	(void)ud;
	(void)committed;
}

struct emit_ctx {
	struct bench *b;
	long first, n;
};

static int emit_fn(struct wf_txn *t, void *ud)
{
	struct emit_ctx *e = ud;
	int64_t now = wf_clock_now_ms(NULL);

	for (long i = e->first; i < e->first + e->n; i++) {
		Wf__V1__Event ev = WF__V1__EVENT__INIT;
		Wf__V1__Measurement me = WF__V1__MEASUREMENT__INIT;
		char id[48];
		int r;

		snprintf(id, sizeof id, "met:bench:%ld", i);
		ev.id = id;
		ev.agency = WF__V1__AGENCY__AGENCY_MET;
		ev.hazard = WF__V1__HAZARD__HAZARD_RAINSTORM;
		ev.region = "410102000000";
		ev.level = WF__V1__LEVEL__LEVEL_IV;
		me.value = 55;
		me.threshold = 50;
		me.unit = "mm";
		me.criterion = "rain_3h";
		ev.measurement = &me;
		ev.observed_ms = now;
		ev.expires_ms = now + 3600000;
		ev.status = WF__V1__STATUS__STATUS_ACTUAL;
		ev.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_ALERT;
		r = wf_node_emit_event(e->b->p, t, &ev, NULL);
		if (r < 0)
			return r;
	}
	return 0;
}

static void feed_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	struct bench *b = w->data;

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

static bool both_ready(void *ud)
{
	struct bench *b = ud;
	return wf_node_ready(b->p) && wf_node_ready(b->c);
}

int main(int argc, char **argv)
{
	struct bench b = { .count = 100000 };
	static const struct option opts[] = { { "count", required_argument, NULL, 'n' },
					      { "help", no_argument, NULL, 'h' }, { 0 } };
	int ch;

	while ((ch = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
		char *e;
		switch (ch) {
		case 'n':
			b.count = strtol(optarg, &e, 10);
			if (*e || b.count < 1 || b.count > 10000000L) {
				fprintf(stderr, "bench-node: bad --count '%s' (1..10000000)\n", optarg);
				return 2;
			}
			break;
		case 'h':
			printf("Usage: bench-node [--count N]\n");
			return 0;
		default:
			return 2;
		}
	}
	struct wf_test_broker *br = NULL;
	int r = wf_test_broker_start(NULL, &br);
	if (r < 0) {
		fprintf(stderr, "bench-node: cannot start mosquitto: %s\n", strerror(-r));
		return 1;
	}
	char *dir = wf_test_mkdtemp("bench-node");
	char pdir[512], cdir[512];
	snprintf(pdir, sizeof pdir, "%s/p", dir);
	snprintf(cdir, sizeof cdir, "%s/c", dir);
	b.loop = ev_loop_new(EVFLAG_AUTO);

	static const char *inputs[] = { "wf/v1/event/#" };
	struct wf_node_options o;
	wf_node_options_init(&o);
	o.service = "bench-met";
	o.kind = "met";
	o.agency = WF__V1__AGENCY__AGENCY_MET;
	o.state_dir = pdir;
	o.map_size = 256u << 20;
	o.bus.port = wf_test_broker_port(br);
	if ((r = wf_node_new(b.loop, &o, NULL, NULL, &b.p)) < 0)
		goto fail;
	o.service = "bench-fusion";
	o.kind = "fusion";
	o.agency = 0;
	o.state_dir = cdir;
	o.inputs = inputs;
	o.n_inputs = 1;
	struct wf_node_callbacks cb = { .on_event = on_event, .on_batch_done = on_batch_done };
	if ((r = wf_node_new(b.loop, &o, &cb, &b, &b.c)) < 0)
		goto fail;
	if ((r = wf_store_dbi(wf_node_store(b.c), "effects", 0, &b.dbi)) < 0)
		goto fail;
	wf_node_start(b.c);
	wf_node_start(b.p);
	if (!wf_test_run_until(b.loop, both_ready, &b, 10000)) {
		fprintf(stderr, "bench-node: nodes did not connect\n");
		r = -ETIMEDOUT;
		goto fail;
	}
	ev_idle_init(&b.feeder, feed_cb);
	b.feeder.data = &b;
	double t0 = now_s();
	ev_idle_start(b.loop, &b.feeder);
	bool done = wf_test_run_until(b.loop, all_acked, &b, 120000);
	double dt = now_s() - t0;
	ev_idle_stop(b.loop, &b.feeder);
	if (!done) {
		fprintf(stderr, "bench-node: %ld emitted, %lld pending after 120 s\n", b.emitted,
			(long long)wf_node_pending(b.p));
		r = -ETIMEDOUT;
		goto fail;
	}
	struct wf_node_stats cs;
	wf_node_get_stats(b.c, &cs);
	printf("node.e2e_durable_events_per_s %.0f\n", (double)b.count / dt);
	fprintf(stderr, "bench-node: %ld events in %.2f s, %llu consumer batches (%.0f events/commit)\n",
		b.count, dt, (unsigned long long)cs.batches,
		cs.batches ? (double)cs.applied / (double)cs.batches : 0.0);
	r = 0;
fail:
	if (r < 0 && r != -ETIMEDOUT)
		fprintf(stderr, "bench-node: %s\n", strerror(-r));
	wf_node_free(b.p);
	wf_node_free(b.c);
	wf_test_broker_free(br);
	wf_test_rmtree(dir);
	free(dir);
	ev_loop_destroy(b.loop);
	return r < 0 ? 1 : 0;
}
