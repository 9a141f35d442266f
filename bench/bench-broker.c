/* bench-broker: QoS 1 throughput through Mosquitto, raw libmosquitto versus
 * wf_bus. One publisher and one subscriber in this process, one thread,
 * N messages of SIZE bytes; the publisher keeps at most WINDOW messages
 * unacknowledged. The rate is N / (time from the first publish to the last
 * message received).
 *
 *   raw: both clients on a minimal poll() loop calling mosquitto_loop_read/
 *        write/misc directly (the least a single-threaded program can do);
 *   bus: both clients as struct wf_bus on a libev loop.
 *
 * Output (stdout), one "name value" per line:
 *   broker.raw_qos1_msgs_per_s 61234
 *   bus.qos1_msgs_per_s 58000
 *   ratio.bus_vs_raw 0.95
 *
 * --relays K (1..8) measures the raw relay chain instead: publisher ->
 * broker -> relay 1 -> broker -> ... -> relay K -> broker -> subscriber, K+1
 * broker hops, every message QoS 1, each relay a forked process forwarding
 * what it receives; sequence numbers in the payloads check that every
 * message arrived exactly once (see run_chain). Output:
 *   chain.relays 2
 *   chain.hops 3
 *   chain.raw_qos1_msgs_per_s 30123
 *   chain.received 100000
 *   chain.duplicates 0
 *   chain.missing 0
 * --bundle B (1..256, with --relays) puts B consecutive sequence numbers,
 * each SIZE bytes, in one MQTT message (the last one may hold fewer): the
 * floor of a pipeline that carries several events per message (a protocol
 * warnfuse does not have; docs/proof.md). The rate is then entries/s and
 * the output adds chain.bundle B.
 * Starts a private broker (tests/harness) unless --port is given. */
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <mosquitto.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker.h"
#include "proc.h"
#include "wf/bus.h"
#include "wf/clock.h"

struct cfg {
	long count;
	size_t size;
	int port;
	int window;
	double time_limit_s;
	int relays; /* 0: raw and bus phases; K >= 1: the relay chain only */
	int bundle; /* chain: entries (sequence numbers) per message, 1..256 */
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: bench-broker [--count N] [--size BYTES] [--window W] [--port PORT]\n"
		"                    [--time-limit SECONDS] [--relays K [--bundle B]] [--help]\n"
		"Measures Mosquitto QoS 1 throughput (1 publisher, 1 subscriber) with raw\n"
		"libmosquitto and through wf_bus, and prints:\n"
		"  broker.raw_qos1_msgs_per_s N\n  bus.qos1_msgs_per_s N\n  ratio.bus_vs_raw R\n"
		"With --relays K (1..8), measures the raw relay chain instead: publisher ->\n"
		"broker -> relay 1 -> broker -> ... -> relay K -> broker -> subscriber (K+1\n"
		"broker hops), every message QoS 1, each relay a forked process that\n"
		"publishes every message it receives on the next topic. Payloads carry a\n"
		"sequence number (--size at least 8); the rate is N / (first publish until\n"
		"the subscriber has every number), and each must arrive exactly once:\n"
		"  chain.relays K\n  chain.hops K+1\n  chain.raw_qos1_msgs_per_s N\n"
		"  chain.received N\n  chain.duplicates D\n  chain.missing M\n"
		"--bundle B (1..256, default 1) puts B sequence numbers of --size bytes\n"
		"each in one message (N/B messages; the rate is then entries/s):\n"
		"  chain.bundle B\n"
		"Defaults: --count 100000 --size 200 --window 1000 --time-limit 60 per phase,\n"
		"--relays 0 (the single-hop raw and wf_bus phases); W bounds the publisher's\n"
		"unacknowledged messages; without --port a private broker is started on a\n"
		"free 127.0.0.1 port. Exit status 1 if a phase fails or is incomplete.\n");
}

static double now_s(void)
{
	return (double)wf_clock_mono_ms() / 1000.0;
}

/* ---- raw libmosquitto ---- */

struct raw {
	long sent, acked, received;
	bool sub_ready, pub_connected, sub_connected;
	double t_first, t_last;
};

static void raw_on_connect(struct mosquitto *m, void *ud, int rc, int flags,
			   const mosquitto_property *p)
{
	(void)m;
	(void)flags;
	(void)p;
	bool *flag = ud;
	*flag = rc == 0;
}

static struct raw *raw_g;

static void raw_on_publish(struct mosquitto *m, void *ud, int mid, int rc,
			   const mosquitto_property *p)
{
	(void)m;
	(void)ud;
	(void)mid;
	(void)rc;
	(void)p;
	raw_g->acked++;
}

static void raw_on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg,
			   const mosquitto_property *p)
{
	(void)m;
	(void)ud;
	(void)msg;
	(void)p;
	raw_g->received++;
	raw_g->t_last = now_s();
}

static void raw_on_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *g,
			     const mosquitto_property *p)
{
	(void)m;
	(void)ud;
	(void)mid;
	(void)p;
	raw_g->sub_ready = n >= 1 && g[0] < 0x80;
}

static struct mosquitto *raw_client(const char *id, int port, bool *connected_flag)
{
	struct mosquitto *m = mosquitto_new(id, true, connected_flag);
	if (!m)
		return NULL;
	mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
	mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
	mosquitto_int_option(m, MOSQ_OPT_RECEIVE_MAXIMUM, 1000);
	mosquitto_int_option(m, MOSQ_OPT_SEND_MAXIMUM, 1000);
	mosquitto_connect_v5_callback_set(m, raw_on_connect);
	mosquitto_publish_v5_callback_set(m, raw_on_publish);
	mosquitto_message_v5_callback_set(m, raw_on_message);
	mosquitto_subscribe_v5_callback_set(m, raw_on_subscribe);
	if (mosquitto_connect(m, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS) {
		mosquitto_destroy(m);
		return NULL;
	}
	return m;
}

/* One poll() round over both clients. */
static void raw_step(struct mosquitto *const ms[2], int timeout_ms)
{
	struct pollfd p[2];
	for (int i = 0; i < 2; i++) {
		p[i].fd = mosquitto_socket(ms[i]);
		p[i].events = POLLIN | (mosquitto_want_write(ms[i]) ? POLLOUT : 0);
		p[i].revents = 0;
	}
	if (poll(p, 2, timeout_ms) < 0)
		return;
	for (int i = 0; i < 2; i++) {
		if (p[i].revents & (POLLIN | POLLERR | POLLHUP))
			mosquitto_loop_read(ms[i], 1);
		if (p[i].revents & POLLOUT)
			mosquitto_loop_write(ms[i], 1);
	}
}

static int run_raw(const struct cfg *c, double *ret_rate)
{
	struct raw r = { 0 };
	char id_pub[64], id_sub[64];
	raw_g = &r;
	snprintf(id_pub, sizeof id_pub, "bench-raw-pub-%d", (int)getpid());
	snprintf(id_sub, sizeof id_sub, "bench-raw-sub-%d", (int)getpid());
	struct mosquitto *pub = raw_client(id_pub, c->port, &r.pub_connected);
	struct mosquitto *sub = raw_client(id_sub, c->port, &r.sub_connected);
	if (!pub || !sub) {
		fprintf(stderr, "bench-broker: raw connect to port %d failed\n", c->port);
		if (pub)
			mosquitto_destroy(pub);
		if (sub)
			mosquitto_destroy(sub);
		return -ECONNREFUSED;
	}
	struct mosquitto *ms[2] = { pub, sub };
	double end = now_s() + 10;
	while (!(r.pub_connected && r.sub_connected) && now_s() < end)
		raw_step(ms, 100);
	mosquitto_subscribe_v5(sub, NULL, "bench/raw/#", 1, 0, NULL);
	while (!r.sub_ready && now_s() < end)
		raw_step(ms, 100);
	if (!r.sub_ready) {
		fprintf(stderr, "bench-broker: raw subscribe failed\n");
		mosquitto_destroy(pub);
		mosquitto_destroy(sub);
		return -ETIMEDOUT;
	}

	char *payload = calloc(1, c->size ? c->size : 1);
	if (!payload) {
		mosquitto_destroy(pub);
		mosquitto_destroy(sub);
		return -ENOMEM;
	}
	memset(payload, 'r', c->size);
	r.t_first = now_s();
	end = r.t_first + c->time_limit_s;
	double last_misc = r.t_first;
	while (r.received < c->count && now_s() < end) {
		while (r.sent < c->count && r.sent - r.acked < c->window) {
			if (mosquitto_publish_v5(pub, NULL, "bench/raw/x", (int)c->size, payload, 1,
						 false, NULL) != MOSQ_ERR_SUCCESS)
				break;
			r.sent++;
		}
		raw_step(ms, 100);
		double t = now_s();
		if (t - last_misc >= 1.0) {
			mosquitto_loop_misc(pub);
			mosquitto_loop_misc(sub);
			last_misc = t;
		}
	}
	if (r.received < c->count)
		fprintf(stderr, "bench-broker: raw: %ld of %ld received within %.0f s\n", r.received,
			c->count, c->time_limit_s);
	double dt = (r.received > 0 ? r.t_last : now_s()) - r.t_first;
	*ret_rate = dt > 0 ? (double)r.received / dt : 0;
	mosquitto_disconnect(pub);
	mosquitto_disconnect(sub);
	mosquitto_destroy(pub);
	mosquitto_destroy(sub);
	free(payload);
	return 0;
}

/* ---- wf_bus ---- */

struct busb {
	const struct cfg *c;
	struct wf_bus *pub, *sub;
	long sent, acked, received, refused;
	double t_first, t_last;
	const char *payload;
	ev_prepare refill;
	bool running;
};

static void bus_on_message(void *ud, const char *topic, const void *payload, size_t len, bool r)
{
	struct busb *b = ud;
	(void)topic;
	(void)payload;
	(void)len;
	(void)r;
	b->received++;
	b->t_last = now_s();
}

static void bus_on_publish(void *ud, int mid, int result, int reason)
{
	struct busb *b = ud;
	(void)mid;
	(void)reason;
	b->acked++;
	if (result < 0)
		b->refused++;
}

/* Before the loop blocks: top the publisher's window up. Publishing here
 * (outside libmosquitto's callbacks) writes to the socket at once. */
static void refill_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct busb *b = w->data;
	(void)loop;
	(void)revents;
	if (!b->running)
		return;
	while (b->sent < b->c->count && b->sent - b->acked < b->c->window) {
		if (wf_bus_publish(b->pub, "bench/bus/x", b->payload, b->c->size, 1, false, NULL) < 0)
			break;
		b->sent++;
	}
}

static bool pred_ready(void *ud)
{
	struct busb *b = ud;
	return wf_bus_connected(b->pub) && wf_bus_subscribed(b->sub);
}

static bool pred_done(void *ud)
{
	struct busb *b = ud;
	return b->received >= b->c->count;
}

static int run_bus(const struct cfg *c, struct ev_loop *loop, double *ret_rate)
{
	struct busb b = { .c = c };
	struct wf_bus_options o;
	struct wf_bus_callbacks cb = { .on_message = bus_on_message, .on_publish = bus_on_publish };
	char id_pub[64], id_sub[64];
	int r;

	snprintf(id_pub, sizeof id_pub, "bench-bus-pub-%d", (int)getpid());
	snprintf(id_sub, sizeof id_sub, "bench-bus-sub-%d", (int)getpid());
	wf_bus_options_init(&o);
	o.port = c->port;
	o.clean_start = true;
	o.session_expiry_s = 0;
	o.client_id = id_pub;
	r = wf_bus_new(loop, &o, &cb, &b, &b.pub);
	if (r < 0)
		return r;
	o.client_id = id_sub;
	r = wf_bus_new(loop, &o, &cb, &b, &b.sub);
	if (r < 0) {
		wf_bus_free(b.pub);
		return r;
	}
	char *payload = calloc(1, c->size ? c->size : 1);
	if (!payload) {
		r = -ENOMEM;
		goto out;
	}
	memset(payload, 'b', c->size);
	b.payload = payload;
	wf_bus_subscribe(b.sub, "bench/bus/#", 1);
	wf_bus_start(b.pub);
	wf_bus_start(b.sub);
	if (!wf_test_run_until(loop, pred_ready, &b, 10000)) {
		fprintf(stderr, "bench-broker: bus did not connect/subscribe\n");
		r = -ETIMEDOUT;
		goto out;
	}
	ev_prepare_init(&b.refill, refill_cb);
	b.refill.data = &b;
	ev_prepare_start(loop, &b.refill);
	b.running = true;
	b.t_first = now_s();
	if (!wf_test_run_until(loop, pred_done, &b, (int)(c->time_limit_s * 1000)))
		fprintf(stderr, "bench-broker: bus: %ld of %ld received within %.0f s\n", b.received,
			c->count, c->time_limit_s);
	b.running = false;
	ev_prepare_stop(loop, &b.refill);
	if (b.refused)
		fprintf(stderr, "bench-broker: bus: %ld publishes refused\n", b.refused);
	double dt = (b.received > 0 ? b.t_last : now_s()) - b.t_first;
	*ret_rate = dt > 0 ? (double)b.received / dt : 0;
	r = 0;
out:
	wf_bus_free(b.pub);
	wf_bus_free(b.sub);
	free(payload);
	return r;
}

/* ---- raw relay chain (--relays K) ----
 *
 * The messaging pattern of a K+1 service QoS 1 pipeline without any of the
 * services' work: publisher -> broker -> relay 1 -> broker -> ... -> relay K
 * -> broker -> final subscriber. Each relay is a forked process with one raw
 * libmosquitto client on a poll() loop: for every message it receives on its
 * topic (QoS 1) it publishes the same payload at QoS 1 on the next topic. The
 * publisher and the final subscriber are in this process, as in run_raw().
 * The first 8 bytes of each payload are its sequence number; the subscriber
 * counts each number once and reports duplicates and what never came. */

#define CHAIN_MAX_RELAYS 8
#define CHAIN_SEQ_BYTES 8

struct relay {
	const char *in_topic, *out_topic;
	long forwarded, failed;
	bool connected, subscribed;
};

static void relay_on_connect(struct mosquitto *m, void *ud, int rc, int flags,
			     const mosquitto_property *p)
{
	(void)m;
	(void)flags;
	(void)p;
	struct relay *r = ud;
	r->connected = rc == 0;
}

static void relay_on_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *g,
			       const mosquitto_property *p)
{
	(void)m;
	(void)mid;
	(void)p;
	struct relay *r = ud;
	r->subscribed = n >= 1 && g[0] < 0x80;
}

static void relay_on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg,
			     const mosquitto_property *p)
{
	(void)p;
	struct relay *r = ud;
	if (mosquitto_publish_v5(m, NULL, r->out_topic, msg->payloadlen, msg->payload, 1, false,
				 NULL) == MOSQ_ERR_SUCCESS)
		r->forwarded++;
	else
		r->failed++;
}

/* One poll() round over N clients and EXTRA_FD (or -1). Returns false once
 * a client's connection is lost, or EXTRA_FD is readable or hung up (the
 * parent closed its end: time to stop). */
static bool chain_step(struct mosquitto *const *ms, int n, int extra_fd, int timeout_ms)
{
	struct pollfd p[3];
	for (int i = 0; i < n; i++) {
		p[i].fd = mosquitto_socket(ms[i]);
		p[i].events = POLLIN | (mosquitto_want_write(ms[i]) ? POLLOUT : 0);
		p[i].revents = 0;
	}
	p[n].fd = extra_fd;
	p[n].events = POLLIN;
	p[n].revents = 0;
	if (poll(p, (nfds_t)n + 1, timeout_ms) < 0)
		return errno == EINTR;
	bool ok = true;
	for (int i = 0; i < n; i++) {
		int rc = MOSQ_ERR_SUCCESS;
		if (p[i].revents & (POLLIN | POLLERR | POLLHUP))
			rc = mosquitto_loop_read(ms[i], 1);
		if (rc == MOSQ_ERR_SUCCESS && (p[i].revents & POLLOUT))
			rc = mosquitto_loop_write(ms[i], 1);
		if (rc == MOSQ_ERR_CONN_LOST || rc == MOSQ_ERR_NO_CONN)
			ok = false;
	}
	if (extra_fd >= 0 && (p[n].revents & (POLLIN | POLLHUP | POLLERR)))
		ok = false;
	return ok;
}

static void chain_options(struct mosquitto *m)
{
	mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
	mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
	mosquitto_int_option(m, MOSQ_OPT_RECEIVE_MAXIMUM, 1000);
	mosquitto_int_option(m, MOSQ_OPT_SEND_MAXIMUM, 1000);
}

/* The relay process: connects, subscribes IN_TOPIC, writes one byte on
 * READY_FD, forwards until CTL_FD reads EOF (the parent is done), the
 * connection is lost or LIMIT_S pass. Returns the exit status. */
static int relay_main(int port, int idx, const char *in_topic, const char *out_topic,
		      int ready_fd, int ctl_fd, double limit_s)
{
	struct relay r = { .in_topic = in_topic, .out_topic = out_topic };
	char id[64];
	snprintf(id, sizeof id, "bench-chain-relay%d-%d", idx, (int)getppid());
	struct mosquitto *m = mosquitto_new(id, true, &r);
	if (!m)
		return 1;
	chain_options(m);
	mosquitto_connect_v5_callback_set(m, relay_on_connect);
	mosquitto_subscribe_v5_callback_set(m, relay_on_subscribe);
	mosquitto_message_v5_callback_set(m, relay_on_message);
	if (mosquitto_connect(m, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "bench-broker: relay %d: connect to port %d failed\n", idx, port);
		mosquitto_destroy(m);
		return 1;
	}
	struct mosquitto *ms[1] = { m };
	double t = now_s(), end = t + 10;
	bool ok = true;
	while (ok && !r.connected && now_s() < end)
		ok = chain_step(ms, 1, ctl_fd, 100);
	if (r.connected)
		mosquitto_subscribe_v5(m, NULL, in_topic, 1, 0, NULL);
	while (ok && r.connected && !r.subscribed && now_s() < end)
		ok = chain_step(ms, 1, ctl_fd, 100);
	int status = 1;
	if (!r.subscribed) {
		fprintf(stderr, "bench-broker: relay %d: no connection or subscription\n", idx);
		goto out;
	}
	char one = 'r';
	if (write(ready_fd, &one, 1) != 1)
		goto out;
	end = now_s() + limit_s;
	double last_misc = now_s();
	while ((ok = chain_step(ms, 1, ctl_fd, 100)) && (t = now_s()) < end) {
		if (t - last_misc >= 1.0) {
			mosquitto_loop_misc(m);
			last_misc = t;
		}
	}
	/* ok is false when the parent closed the control pipe (the normal end)
	 * or the connection was lost; tell the two apart by the pipe */
	struct pollfd pc = { .fd = ctl_fd, .events = POLLIN };
	bool parent_done = poll(&pc, 1, 0) == 1;
	if (!parent_done)
		fprintf(stderr, "bench-broker: relay %d: %s after %ld forwarded\n", idx,
			ok ? "time limit" : "connection lost", r.forwarded);
	if (r.failed)
		fprintf(stderr, "bench-broker: relay %d: %ld publishes failed\n", idx, r.failed);
	status = parent_done && !r.failed ? 0 : 1;
out:
	mosquitto_disconnect(m);
	mosquitto_destroy(m);
	return status;
}

struct chain {
	long count, sent, acked, unique, dups, bad;
	size_t size;       /* bytes per entry */
	unsigned char *seen;
	bool pub_connected, sub_connected, sub_ready;
	double t_first, t_last;
};

static void chain_on_connect_pub(struct mosquitto *m, void *ud, int rc, int flags,
				 const mosquitto_property *p)
{
	(void)m;
	(void)flags;
	(void)p;
	((struct chain *)ud)->pub_connected = rc == 0;
}

static void chain_on_connect_sub(struct mosquitto *m, void *ud, int rc, int flags,
				 const mosquitto_property *p)
{
	(void)m;
	(void)flags;
	(void)p;
	((struct chain *)ud)->sub_connected = rc == 0;
}

static void chain_on_publish(struct mosquitto *m, void *ud, int mid, int rc,
			     const mosquitto_property *p)
{
	(void)m;
	(void)mid;
	(void)rc;
	(void)p;
	((struct chain *)ud)->acked++;
}

static void chain_on_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *g,
			       const mosquitto_property *p)
{
	(void)m;
	(void)mid;
	(void)p;
	((struct chain *)ud)->sub_ready = n >= 1 && g[0] < 0x80;
}

static void chain_on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg,
			     const mosquitto_property *p)
{
	(void)m;
	(void)p;
	struct chain *ch = ud;
	size_t len = (size_t)msg->payloadlen;
	if (len < CHAIN_SEQ_BYTES || len % ch->size != 0) {
		ch->bad++;
		return;
	}
	for (size_t off = 0; off < len; off += ch->size) { /* one entry per SIZE bytes */
		uint64_t seq;
		memcpy(&seq, (const char *)msg->payload + off, sizeof seq);
		if (seq >= (uint64_t)ch->count) {
			ch->bad++;
			continue;
		}
		if (ch->seen[seq]) {
			ch->dups++;
			continue;
		}
		ch->seen[seq] = 1;
		if (++ch->unique == ch->count)
			ch->t_last = now_s();
	}
}

static struct mosquitto *chain_client(const char *id, int port, struct chain *ch, bool pub)
{
	struct mosquitto *m = mosquitto_new(id, true, ch);
	if (!m)
		return NULL;
	chain_options(m);
	mosquitto_connect_v5_callback_set(m, pub ? chain_on_connect_pub : chain_on_connect_sub);
	mosquitto_publish_v5_callback_set(m, chain_on_publish);
	mosquitto_message_v5_callback_set(m, chain_on_message);
	mosquitto_subscribe_v5_callback_set(m, chain_on_subscribe);
	if (mosquitto_connect(m, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS) {
		mosquitto_destroy(m);
		return NULL;
	}
	return m;
}

/* Stops the relays this process forked: closing CTL_W tells them to exit;
 * one that has not exited within 5 s gets SIGTERM (then SIGKILL), by PID.
 * Returns true if all exited with status 0. */
static bool chain_stop_relays(const pid_t *pids, int n, int *ctl_w)
{
	bool ok = true;
	if (*ctl_w >= 0) {
		close(*ctl_w);
		*ctl_w = -1;
	}
	for (int i = 0; i < n; i++) {
		if (pids[i] <= 0)
			continue;
		int st = wf_test_wait(pids[i], 5000);
		if (st == -ETIMEDOUT)
			st = wf_test_stop(pids[i], SIGTERM, 5000);
		if (st != 0) {
			fprintf(stderr, "bench-broker: relay %d (pid %d) ended with status %d\n", i + 1,
				(int)pids[i], st);
			ok = false;
		}
	}
	return ok;
}

/* A relay that exited while the chain runs (its PID reaped, set to 0). */
static bool chain_relay_died(pid_t *pids, int n)
{
	for (int i = 0; i < n; i++) {
		int st;
		if (pids[i] > 0 && waitpid(pids[i], &st, WNOHANG) == pids[i]) {
			fprintf(stderr, "bench-broker: relay %d (pid %d) exited early (status %d)\n",
				i + 1, (int)pids[i], WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
			pids[i] = 0;
			return true;
		}
	}
	return false;
}

/* Runs the chain with C->relays relays. Sets *RET_RATE (count / time from
 * the first publish until the final subscriber has every sequence number)
 * and the counts. Returns 0 if every message arrived exactly once. */
static int run_chain(const struct cfg *c, double *ret_rate, struct chain *ch)
{
	int k = c->relays, ready[2] = { -1, -1 }, ctl[2] = { -1, -1 }, status = -EIO;
	pid_t pids[CHAIN_MAX_RELAYS] = { 0 };
	char topics[CHAIN_MAX_RELAYS + 1][64];
	struct mosquitto *pub = NULL, *sub = NULL;
	char *payload = NULL;

	*ret_rate = 0;
	ch->count = c->count;
	ch->size = c->size;
	ch->seen = calloc((size_t)c->count, 1);
	payload = calloc((size_t)c->bundle, c->size);
	if (!ch->seen || !payload) {
		status = -ENOMEM;
		goto out;
	}
	memset(payload, 'c', (size_t)c->bundle * c->size);
	for (int i = 0; i <= k; i++)
		snprintf(topics[i], sizeof topics[i], "bench/chain/%d/%d", (int)getpid(), i);
	if (pipe(ready) < 0 || pipe(ctl) < 0) {
		status = -errno;
		goto out;
	}
	fflush(NULL);
	for (int i = 0; i < k; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			status = -errno;
			fprintf(stderr, "bench-broker: fork: %s\n", strerror(errno));
			goto out;
		}
		if (pid == 0) {
			close(ctl[1]);
			close(ready[0]);
			/* _exit: the broker and the parent's state are not ours to free */
			_exit(relay_main(c->port, i + 1, topics[i], topics[i + 1], ready[1], ctl[0],
					 c->time_limit_s + 40));
		}
		pids[i] = pid;
	}
	close(ctl[0]);
	ctl[0] = -1;
	close(ready[1]);
	ready[1] = -1;

	/* every relay subscribed: K bytes on the ready pipe (EOF: all died) */
	double end = now_s() + 10 * wf_test_time_factor();
	int n_ready = 0;
	while (n_ready < k && now_s() < end) {
		struct pollfd p = { .fd = ready[0], .events = POLLIN };
		if (poll(&p, 1, 100) == 1) {
			char b[CHAIN_MAX_RELAYS];
			ssize_t got = read(ready[0], b, sizeof b);
			if (got <= 0)
				break;
			n_ready += (int)got;
		}
	}
	if (n_ready < k) {
		fprintf(stderr, "bench-broker: chain: %d of %d relays ready\n", n_ready, k);
		status = -ETIMEDOUT;
		goto out;
	}

	char id_pub[64], id_sub[64];
	snprintf(id_pub, sizeof id_pub, "bench-chain-pub-%d", (int)getpid());
	snprintf(id_sub, sizeof id_sub, "bench-chain-sub-%d", (int)getpid());
	pub = chain_client(id_pub, c->port, ch, true);
	sub = chain_client(id_sub, c->port, ch, false);
	if (!pub || !sub) {
		fprintf(stderr, "bench-broker: chain: connect to port %d failed\n", c->port);
		status = -ECONNREFUSED;
		goto out;
	}
	struct mosquitto *ms[2] = { pub, sub };
	end = now_s() + 10;
	while (!(ch->pub_connected && ch->sub_connected) && now_s() < end)
		chain_step(ms, 2, -1, 100);
	mosquitto_subscribe_v5(sub, NULL, topics[k], 1, 0, NULL);
	while (!ch->sub_ready && now_s() < end)
		chain_step(ms, 2, -1, 100);
	if (!ch->sub_ready) {
		fprintf(stderr, "bench-broker: chain: subscribe failed\n");
		status = -ETIMEDOUT;
		goto out;
	}

	ch->t_first = now_s();
	end = ch->t_first + c->time_limit_s;
	double last_misc = ch->t_first, t;
	long n_msgs = 0;
	bool died = false;
	while (ch->unique < ch->count && (t = now_s()) < end && !died) {
		/* SENT counts entries, ACKED messages (the window is in messages) */
		while (ch->sent < ch->count && n_msgs - ch->acked < c->window) {
			long n = ch->count - ch->sent < c->bundle ? ch->count - ch->sent : c->bundle;
			for (long i = 0; i < n; i++) {
				uint64_t seq = (uint64_t)(ch->sent + i);
				memcpy(payload + (size_t)i * c->size, &seq, sizeof seq);
			}
			if (mosquitto_publish_v5(pub, NULL, topics[0], (int)((size_t)n * c->size),
						 payload, 1, false, NULL) != MOSQ_ERR_SUCCESS)
				break;
			ch->sent += n;
			n_msgs++;
		}
		chain_step(ms, 2, -1, 100);
		if (t - last_misc >= 1.0) {
			mosquitto_loop_misc(pub);
			mosquitto_loop_misc(sub);
			died = chain_relay_died(pids, k);
			last_misc = t;
		}
	}
	/* 200 ms more (not timed): a late duplicate would arrive now */
	end = now_s() + 0.2;
	while (!died && now_s() < end)
		chain_step(ms, 2, -1, 50);
	if (ch->unique < ch->count)
		fprintf(stderr, "bench-broker: chain: %ld of %ld received within %.0f s\n",
			ch->unique, ch->count, c->time_limit_s);
	if (ch->dups || ch->bad)
		fprintf(stderr, "bench-broker: chain: %ld duplicates, %ld bad payloads\n", ch->dups,
			ch->bad);
	if (ch->unique == ch->count) {
		double dt = ch->t_last - ch->t_first;
		*ret_rate = dt > 0 ? (double)ch->count / dt : 0;
	}
	status = ch->unique == ch->count && !ch->dups && !ch->bad ? 0 : -EIO;
out:
	if (pub) {
		mosquitto_disconnect(pub);
		mosquitto_destroy(pub);
	}
	if (sub) {
		mosquitto_disconnect(sub);
		mosquitto_destroy(sub);
	}
	if (!chain_stop_relays(pids, k, &ctl[1]) && status == 0)
		status = -EIO;
	for (int i = 0; i < 2; i++) {
		if (ready[i] >= 0)
			close(ready[i]);
		if (i == 0 && ctl[i] >= 0)
			close(ctl[i]);
	}
	free(payload);
	free(ch->seen);
	ch->seen = NULL;
	return status;
}

int main(int argc, char **argv)
{
	struct cfg c = { .count = 100000, .size = 200, .port = 0, .window = 1000,
			 .time_limit_s = 60, .bundle = 1 };
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ "window", required_argument, NULL, 'w' },
		{ "port", required_argument, NULL, 'p' },
		{ "time-limit", required_argument, NULL, 't' },
		{ "relays", required_argument, NULL, 'r' },
		{ "bundle", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "n:s:w:p:t:r:b:h", opts, NULL)) != -1) {
		char *e = NULL;
		switch (ch) {
		case 'n':
			c.count = strtol(optarg, &e, 10);
			if (*e || c.count < 1 || c.count > 100000000L)
				goto bad;
			break;
		case 's': {
			long v = strtol(optarg, &e, 10);
			if (*e || v < 0 || v > 1000000)
				goto bad;
			c.size = (size_t)v;
			break;
		}
		case 'w':
			c.window = (int)strtol(optarg, &e, 10);
			if (*e || c.window < 1 || c.window > 10000)
				goto bad;
			break;
		case 'p':
			c.port = (int)strtol(optarg, &e, 10);
			if (*e || c.port < 1 || c.port > 65535)
				goto bad;
			break;
		case 't':
			c.time_limit_s = strtod(optarg, &e);
			if (*e || !(c.time_limit_s > 0) || c.time_limit_s > 3600)
				goto bad;
			break;
		case 'r':
			c.relays = (int)strtol(optarg, &e, 10);
			if (*e || c.relays < 0 || c.relays > CHAIN_MAX_RELAYS)
				goto bad;
			break;
		case 'b':
			c.bundle = (int)strtol(optarg, &e, 10);
			if (*e || c.bundle < 1 || c.bundle > 256)
				goto bad;
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
		fprintf(stderr, "bench-broker: bad value '%s' for --%s\n", optarg,
			ch == 'n' ? "count" : ch == 's' ? "size" : ch == 'w' ? "window" :
			ch == 'p' ? "port" : ch == 'r' ? "relays" : ch == 'b' ? "bundle" : "time-limit");
		return 2;
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (c.bundle > 1 && c.relays == 0) {
		fprintf(stderr, "bench-broker: --bundle needs --relays\n");
		return 2;
	}
	if (c.relays > 0 && c.size < CHAIN_SEQ_BYTES) {
		fprintf(stderr, "bench-broker: --relays needs --size %d or more (the sequence "
			"number)\n", CHAIN_SEQ_BYTES);
		return 2;
	}

	struct wf_test_broker *br = NULL;
	if (!c.port) {
		struct wf_test_broker_options bo;
		wf_test_broker_options_init(&bo);
		/* no drops for a subscriber that falls behind */
		bo.extra_config = "max_queued_messages 0\n";
		int r = wf_test_broker_start(&bo, &br);
		if (r < 0) {
			fprintf(stderr, "bench-broker: cannot start mosquitto: %s\n", strerror(-r));
			return 1;
		}
		c.port = wf_test_broker_port(br);
	}
	mosquitto_lib_init();

	if (c.relays > 0) {
		struct chain cs = { 0 };
		double rate = 0;
		int st = run_chain(&c, &rate, &cs);
		printf("chain.relays %d\n", c.relays);
		printf("chain.hops %d\n", c.relays + 1);
		printf("chain.bundle %d\n", c.bundle);
		printf("chain.raw_qos1_msgs_per_s %.0f\n", rate);
		printf("chain.received %ld\n", cs.unique);
		printf("chain.duplicates %ld\n", cs.dups);
		printf("chain.missing %ld\n", c.count - cs.unique);
		mosquitto_lib_cleanup();
		wf_test_broker_free(br);
		return st < 0 ? 1 : 0;
	}

	double raw = 0, bus = 0;
	int status = 0;
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	if (!loop || run_raw(&c, &raw) < 0 || run_bus(&c, loop, &bus) < 0)
		status = 1;
	printf("broker.raw_qos1_msgs_per_s %.0f\n", raw);
	printf("bus.qos1_msgs_per_s %.0f\n", bus);
	printf("ratio.bus_vs_raw %.2f\n", raw > 0 ? bus / raw : 0.0);
	if (loop)
		ev_loop_destroy(loop);
	mosquitto_lib_cleanup();
	wf_test_broker_free(br);
	return status;
}
