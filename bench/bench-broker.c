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
 * Starts a private broker (tests/harness) unless --port is given. */
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <mosquitto.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "wf/bus.h"
#include "wf/clock.h"

struct cfg {
	long count;
	size_t size;
	int port;
	int window;
	double time_limit_s;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: bench-broker [--count N] [--size BYTES] [--window W] [--port PORT]\n"
		"                    [--time-limit SECONDS] [--help]\n"
		"Measures Mosquitto QoS 1 throughput (1 publisher, 1 subscriber) with raw\n"
		"libmosquitto and through wf_bus, and prints:\n"
		"  broker.raw_qos1_msgs_per_s N\n  bus.qos1_msgs_per_s N\n  ratio.bus_vs_raw R\n"
		"Defaults: --count 100000 --size 200 --window 1000 --time-limit 60 per phase;\n"
		"without --port a private broker is started on a free 127.0.0.1 port.\n");
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

int main(int argc, char **argv)
{
	struct cfg c = { .count = 100000, .size = 200, .port = 0, .window = 1000,
			 .time_limit_s = 60 };
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ "window", required_argument, NULL, 'w' },
		{ "port", required_argument, NULL, 'p' },
		{ "time-limit", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "n:s:w:p:t:h", opts, NULL)) != -1) {
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
			ch == 'p' ? "port" : "time-limit");
		return 2;
	}
	if (optind < argc) {
		usage(stderr);
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
