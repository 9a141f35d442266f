/* bus: libmosquitto on a libev loop. See wf/bus.h and docs/bus.md.
 *
 * How the loop drives libmosquitto:
 *   - rio  (ev_io EV_READ on mosquitto_socket()) -> mosquitto_loop_read()
 *   - wio  (ev_io EV_WRITE, active only while mosquitto_want_write())
 *                                                -> mosquitto_loop_write()
 *   - misc (ev_timer, 1 s, while a socket is open) -> mosquitto_loop_misc()
 *   - retry (ev_timer, one shot) -> mosquitto_connect_bind_async()
 *   - deadline (ev_timer, one shot) -> CONNACK timeout, or the stop timeout
 * libmosquitto closes its socket itself when a read/write/keepalive fails;
 * after every call into it, sync_socket() compares mosquitto_socket() with
 * the fd we watch and turns a vanished socket into "connection lost". */
#include "wf/bus.h"
#include "wf/bundle.h"

#include <errno.h>
#include <ev.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MISC_INTERVAL_S 1.0
#define STOP_TIMEOUT_S 1.0
/* A connection that lasted at least this long resets the backoff. */
#define STABLE_CONNECTION_S 5.0
/* A shorter one (the broker accepted us, then the connection went) keeps
 * backing off, but from at most this many doublings of reconnect_min: a
 * broker restarted several times in a row is tried again within about a
 * second of coming back, not after reconnect_max (tests/chaos found 30 s). */
#define FLAP_MAX_FAILURES 3u
#define MID_SLOTS 65536

struct bus_sub {
	char *pattern;
	int qos;
	int mid;        /* SUBSCRIBE in flight, 0 if none */
	bool confirmed; /* granted in the current session */
	bool refused;   /* refused in the current session */
};

struct wf_bus {
	struct ev_loop *loop;
	struct mosquitto *mosq;
	struct wf_bus_callbacks cb;
	void *ud;

	char *host;
	int port;
	int keepalive_s;
	double reconnect_min_s, reconnect_max_s, connect_timeout_s;
	size_t max_queued;
	uint32_t max_packet_size;

	enum wf_bus_state state;
	int fd; /* the socket our io watchers watch, -1 if none */
	ev_io rio, wio;
	ev_timer misc, retry, deadline;

	struct bus_sub *subs;
	size_t n_subs;

	/* QoS>0 publishes awaiting completion, by mid (libmosquitto reports
	 * QoS 0 completions through the same callback). */
	uint8_t qos_mids[MID_SLOTS / 8];
	size_t inflight;

	unsigned failures;     /* consecutive failures, for the backoff */
	double up_since;       /* ev_now() at CONNACK */
	bool have_reason;      /* reason for the coming "down" already known */
	int reason;
	bool session_present;
	bool ready;            /* watchers initialised */
	int depth;             /* > 0 while inside mosquitto_loop_*() or publish */
	uint64_t rng;
	struct wf_bus_stats stats;
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_rc;

static void lib_init(void)
{
	lib_rc = mosquitto_lib_init();
}

const char *wf_bus_state_to_string(enum wf_bus_state s)
{
	static const char *const names[WF_BUS_STATE_MAX] = {
		[WF_BUS_STATE_IDLE] = "idle",
		[WF_BUS_STATE_CONNECTING] = "connecting",
		[WF_BUS_STATE_CONNECTED] = "connected",
		[WF_BUS_STATE_BACKOFF] = "backoff",
		[WF_BUS_STATE_STOPPING] = "stopping",
	};
	if ((int)s < 0 || s >= WF_BUS_STATE_MAX)
		return "invalid";
	return names[s];
}

int wf_bus_reason_to_errno(int reason_code)
{
	if (reason_code < 0x80)
		return 0;
	switch (reason_code) {
	case MQTT_RC_UNSPECIFIED:
	case MQTT_RC_IMPLEMENTATION_SPECIFIC:
		return -EIO;
	case MQTT_RC_NOT_AUTHORIZED:
	case MQTT_RC_BAD_USERNAME_OR_PASSWORD:
	case MQTT_RC_BANNED:
		return -EACCES;
	case MQTT_RC_TOPIC_FILTER_INVALID:
	case MQTT_RC_TOPIC_NAME_INVALID:
		return -EINVAL;
	case MQTT_RC_PACKET_TOO_LARGE:
		return -EMSGSIZE;
	case MQTT_RC_QUOTA_EXCEEDED:
		return -EDQUOT;
	case MQTT_RC_PAYLOAD_FORMAT_INVALID:
		return -EBADMSG;
	default:
		return -EPROTO;
	}
}

const char *wf_bus_reason_string(int reason_code)
{
	if (reason_code < 0 || reason_code > 255)
		return "Not an MQTT reason code";
	return mosquitto_reason_string(reason_code);
}

/* MOSQ_ERR_* to negative errno. ERR is the errno saved right after the
 * failing call (used for MOSQ_ERR_ERRNO). */
static int mosq_to_errno(int rc, int err)
{
	switch (rc) {
	case MOSQ_ERR_SUCCESS:
		return 0;
	case MOSQ_ERR_NOMEM:
		return -ENOMEM;
	case MOSQ_ERR_PROTOCOL:
		return -EPROTO;
	case MOSQ_ERR_INVAL:
	case MOSQ_ERR_MALFORMED_UTF8:
	case MOSQ_ERR_DUPLICATE_PROPERTY:
		return -EINVAL;
	case MOSQ_ERR_NO_CONN:
		return -ENOTCONN;
	case MOSQ_ERR_CONN_REFUSED:
		return -ECONNREFUSED;
	case MOSQ_ERR_NOT_FOUND:
		return -ENOENT;
	case MOSQ_ERR_CONN_LOST:
		return -ECONNRESET;
	case MOSQ_ERR_TLS:
	case MOSQ_ERR_TLS_HANDSHAKE:
	case MOSQ_ERR_OCSP:
		return -EPROTO;
	case MOSQ_ERR_PAYLOAD_SIZE:
	case MOSQ_ERR_OVERSIZE_PACKET:
		return -EMSGSIZE;
	case MOSQ_ERR_NOT_SUPPORTED:
	case MOSQ_ERR_QOS_NOT_SUPPORTED:
	case MOSQ_ERR_RETAIN_NOT_SUPPORTED:
		return -ENOTSUP;
	case MOSQ_ERR_AUTH:
	case MOSQ_ERR_ACL_DENIED:
		return -EACCES;
	case MOSQ_ERR_ERRNO:
		return err > 0 ? -err : -EIO;
	case MOSQ_ERR_EAI:
	case MOSQ_ERR_LOOKUP:
		return -EHOSTUNREACH;
	case MOSQ_ERR_KEEPALIVE:
	case MOSQ_ERR_TIMEOUT:
		return -ETIMEDOUT;
	case MOSQ_ERR_MALFORMED_PACKET:
		return -EBADMSG;
	case MOSQ_ERR_ADMINISTRATIVE_ACTION:
		return -ECONNABORTED;
	default:
		return -EIO;
	}
}

void wf_bus_options_init(struct wf_bus_options *o)
{
	*o = (struct wf_bus_options){
		.host = "127.0.0.1",
		.port = 1883,
		.keepalive_s = 30,
		.clean_start = false,
		.session_expiry_s = 3600,
		.will_qos = 1,
		.will_retain = true,
		.reconnect_min_s = 0.1,
		.reconnect_max_s = 30.0,
		.connect_timeout_s = 10.0,
		.max_inflight = 1000,
		.max_queued = 10000,
		.max_packet_size = 1024 * 1024,
	};
}

/* ---- small helpers ---- */

static uint64_t rng_next(struct wf_bus *b)
{
	/* xorshift64* */
	uint64_t x = b->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	b->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static bool mid_test(const struct wf_bus *b, int mid)
{
	return mid > 0 && mid < MID_SLOTS && (b->qos_mids[mid / 8] & (1u << (mid % 8)));
}

static void mid_set(struct wf_bus *b, int mid, bool on)
{
	if (mid <= 0 || mid >= MID_SLOTS)
		return;
	if (on)
		b->qos_mids[mid / 8] |= (uint8_t)(1u << (mid % 8));
	else
		b->qos_mids[mid / 8] &= (uint8_t)~(1u << (mid % 8));
}

static bool topic_ok(const char *t, bool filter)
{
	if (!t)
		return false;
	size_t n = strnlen(t, WF_BUS_MAX_TOPIC_LEN + 1);
	if (n == 0 || n > WF_BUS_MAX_TOPIC_LEN)
		return false;
	if (filter)
		return mosquitto_sub_topic_check2(t, n) == MOSQ_ERR_SUCCESS &&
		       mosquitto_validate_utf8(t, (int)n) == MOSQ_ERR_SUCCESS;
	return mosquitto_pub_topic_check2(t, n) == MOSQ_ERR_SUCCESS &&
	       mosquitto_validate_utf8(t, (int)n) == MOSQ_ERR_SUCCESS;
}

static void stop_io(struct wf_bus *b)
{
	ev_io_stop(b->loop, &b->rio);
	ev_io_stop(b->loop, &b->wio);
	ev_timer_stop(b->loop, &b->misc);
	b->fd = -1;
}

static void update_write(struct wf_bus *b)
{
	if (b->fd >= 0 && mosquitto_want_write(b->mosq)) {
		if (!ev_is_active(&b->wio))
			ev_io_start(b->loop, &b->wio);
	} else if (ev_is_active(&b->wio)) {
		ev_io_stop(b->loop, &b->wio);
	}
}

static void schedule_retry(struct wf_bus *b)
{
	double d = b->reconnect_min_s;
	for (unsigned i = 0; i < b->failures && d < b->reconnect_max_s; i++)
		d *= 2;
	/* jitter: 75%..125% of the step, then clamped */
	double u = (double)(rng_next(b) >> 11) / (double)(1ULL << 53);
	d *= 0.75 + 0.5 * u;
	if (d < b->reconnect_min_s)
		d = b->reconnect_min_s;
	if (d > b->reconnect_max_s)
		d = b->reconnect_max_s;
	if (b->failures < 64)
		b->failures++;
	b->state = WF_BUS_STATE_BACKOFF;
	ev_timer_stop(b->loop, &b->retry);
	ev_timer_set(&b->retry, d, 0.);
	ev_timer_start(b->loop, &b->retry);
}

/* The socket is gone (or the attempt failed): report, back off. */
static void connection_down(struct wf_bus *b, int fallback_reason)
{
	enum wf_bus_state was = b->state;
	int reason = b->have_reason ? b->reason : fallback_reason;

	stop_io(b);
	ev_timer_stop(b->loop, &b->deadline);
	b->have_reason = false;
	if (was == WF_BUS_STATE_STOPPING || was == WF_BUS_STATE_IDLE) {
		b->state = WF_BUS_STATE_IDLE;
		return;
	}
	if (was == WF_BUS_STATE_CONNECTED && ev_now(b->loop) - b->up_since >= STABLE_CONNECTION_S)
		b->failures = 0;
	else if (was == WF_BUS_STATE_CONNECTED && b->failures > FLAP_MAX_FAILURES)
		b->failures = FLAP_MAX_FAILURES;
	b->stats.connect_failures++;
	schedule_retry(b);
	if (b->cb.on_connection)
		b->cb.on_connection(b->ud, false, reason);
}

/* After every call into libmosquitto: follow its socket. */
static void sync_socket(struct wf_bus *b)
{
	if (b->fd < 0)
		return;
	if (mosquitto_socket(b->mosq) != b->fd) {
		connection_down(b, -ECONNRESET);
		return;
	}
	update_write(b);
}

/* ---- libmosquitto callbacks (run inside mosquitto_loop_*) ---- */

static void send_sub(struct wf_bus *b, struct bus_sub *s)
{
	int mid = 0;
	if (mosquitto_subscribe_v5(b->mosq, &mid, s->pattern, s->qos, 0, NULL) == MOSQ_ERR_SUCCESS)
		s->mid = mid;
}

static void on_connect_cb(struct mosquitto *m, void *obj, int rc, int flags,
			  const mosquitto_property *props)
{
	struct wf_bus *b = obj;
	(void)m;
	(void)props;
	if (b->state != WF_BUS_STATE_CONNECTING)
		return;
	if (rc != 0) {
		/* libmosquitto closes the socket right after this callback */
		b->have_reason = true;
		b->reason = rc;
		return;
	}
	ev_timer_stop(b->loop, &b->deadline);
	b->state = WF_BUS_STATE_CONNECTED;
	b->session_present = flags & 1;
	b->up_since = ev_now(b->loop);
	b->stats.connects++;
	for (size_t i = 0; i < b->n_subs; i++) {
		struct bus_sub *s = &b->subs[i];
		if (!b->session_present) {
			s->confirmed = false;
			s->refused = false;
		}
		if (!s->confirmed && !s->refused)
			send_sub(b, s);
	}
	if (b->cb.on_connection)
		b->cb.on_connection(b->ud, true, 0);
}

static void on_disconnect_cb(struct mosquitto *m, void *obj, int rc,
			     const mosquitto_property *props)
{
	struct wf_bus *b = obj;
	int err = errno;
	(void)m;
	(void)props;
	if (b->have_reason)
		return;
	b->have_reason = true;
	if (rc >= 0x80)
		b->reason = rc; /* the broker's DISCONNECT reason */
	else if (rc == 0)
		b->reason = 0;
	else
		b->reason = mosq_to_errno(rc, err);
}

static void on_publish_cb(struct mosquitto *m, void *obj, int mid, int reason,
			  const mosquitto_property *props)
{
	struct wf_bus *b = obj;
	(void)m;
	(void)props;
	/* QoS 1: its PUBACK; QoS 0: only written. libmosquitto numbers both
	 * from one 16-bit counter, so a QoS 0 write may, after 65,535 more
	 * publishes, carry the mid of a QoS 1 message still unacknowledged:
	 * its place is then freed early, and its PUBACK later finds nothing
	 * to free (inflight is right again, publish_acked one short). */
	bool tracked = mid_test(b, mid);
	if (tracked) {
		mid_set(b, mid, false);
		if (b->inflight > 0)
			b->inflight--;
	}
	int result = wf_bus_reason_to_errno(reason);
	if (result != 0)
		b->stats.publish_refused++;
	else if (tracked)
		b->stats.publish_acked++;
	if (b->cb.on_publish)
		b->cb.on_publish(b->ud, mid, result, reason);
}

static void on_subscribe_cb(struct mosquitto *m, void *obj, int mid, int count,
			    const int *granted, const mosquitto_property *props)
{
	struct wf_bus *b = obj;
	(void)m;
	(void)props;
	for (size_t i = 0; i < b->n_subs; i++) {
		struct bus_sub *s = &b->subs[i];
		if (s->mid != mid)
			continue;
		s->mid = 0;
		/* one filter per SUBSCRIBE; no reason code at all is a refusal */
		int g = count >= 1 && granted ? granted[0] : MQTT_RC_UNSPECIFIED;
		if (g >= 0x80) {
			s->confirmed = false;
			s->refused = true;
			b->stats.subscribe_refused++;
			if (b->cb.on_subscribe_error)
				b->cb.on_subscribe_error(b->ud, s->pattern, g);
		} else {
			s->confirmed = true;
			s->refused = false;
			if (b->cb.on_subscribed && wf_bus_subscribed(b))
				b->cb.on_subscribed(b->ud);
		}
		return;
	}
}

static void on_message_cb(struct mosquitto *m, void *obj, const struct mosquitto_message *msg,
			  const mosquitto_property *props)
{
	struct wf_bus *b = obj;
	static const char empty[1];
	(void)m;
	(void)props;
	if (!msg || !msg->topic)
		return;
	b->stats.received++;
	if (!b->cb.on_message)
		return;
	const void *payload = msg->payload ? msg->payload : empty;
	size_t len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
	Wf__V1__Bundle *bundle = NULL;
	/* A bundle: its entries one by one, as if each had come alone (a
	 * retained one is not ours: bundles are never retained). One that
	 * does not pass wf_bundle_unpack goes on whole, for the receiver to
	 * reject (wf_bundle_is tells it what it is). */
	if (wf_bundle_is(payload, len) && !msg->retain &&
	    wf_bundle_unpack(msg->topic, payload, len, &bundle, NULL, 0) == 0) {
		b->stats.bundles++;
		for (size_t i = 0; i < bundle->n_entries && b->cb.on_message; i++) {
			const Wf__V1__BundleEntry *e = bundle->entries[i];
			b->cb.on_message(b->ud, e->topic, e->payload.data ? (const void *)e->payload.data
									  : empty,
					 e->payload.len, false);
		}
		wf_bundle_free(bundle);
		return;
	}
	b->cb.on_message(b->ud, msg->topic, payload, len, msg->retain);
}

/* ---- libev watchers ---- */

static void rio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct wf_bus *b = w->data;
	(void)loop;
	(void)revents;
	b->depth++;
	mosquitto_loop_read(b->mosq, 1);
	b->depth--;
	sync_socket(b);
}

static void wio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct wf_bus *b = w->data;
	(void)loop;
	(void)revents;
	b->depth++;
	mosquitto_loop_write(b->mosq, 1);
	b->depth--;
	sync_socket(b);
}

static void misc_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct wf_bus *b = w->data;
	(void)loop;
	(void)revents;
	b->depth++;
	mosquitto_loop_misc(b->mosq);
	b->depth--;
	sync_socket(b);
}

static void attempt_connect(struct wf_bus *b)
{
	b->stats.connect_attempts++;
	b->have_reason = false;
	b->session_present = false;
	errno = 0;
	int rc = mosquitto_connect_bind_async(b->mosq, b->host, b->port, b->keepalive_s, NULL);
	int err = errno;
	int fd = mosquitto_socket(b->mosq);
	if (rc != MOSQ_ERR_SUCCESS || fd < 0) {
		b->state = WF_BUS_STATE_CONNECTING;
		connection_down(b, rc != MOSQ_ERR_SUCCESS ? mosq_to_errno(rc, err) : -ENOTCONN);
		return;
	}
	b->state = WF_BUS_STATE_CONNECTING;
	b->fd = fd;
	ev_io_set(&b->rio, fd, EV_READ);
	ev_io_set(&b->wio, fd, EV_WRITE);
	ev_io_start(b->loop, &b->rio);
	ev_timer_again(b->loop, &b->misc);
	ev_timer_stop(b->loop, &b->deadline);
	ev_timer_set(&b->deadline, b->connect_timeout_s, 0.);
	ev_timer_start(b->loop, &b->deadline);
	update_write(b);
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct wf_bus *b = w->data;
	(void)loop;
	(void)revents;
	if (b->state == WF_BUS_STATE_BACKOFF)
		attempt_connect(b);
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct wf_bus *b = w->data;
	(void)loop;
	(void)revents;
	if (b->state == WF_BUS_STATE_CONNECTING) {
		/* No CONNACK in time. Leave the half-open socket to libmosquitto:
		 * the next attempt closes it. */
		b->have_reason = false;
		connection_down(b, -ETIMEDOUT);
	} else if (b->state == WF_BUS_STATE_STOPPING) {
		/* the DISCONNECT could not be written in time: give up on it */
		stop_io(b);
		b->state = WF_BUS_STATE_IDLE;
	}
}

/* ---- public API ---- */

static char *dup_or_null(const char *s, int *err)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*err = -ENOMEM;
	return d;
}

static int options_check(const struct wf_bus_options *o)
{
	if (!o->host || !*o->host || !o->client_id || !*o->client_id)
		return -EINVAL;
	size_t idlen = strnlen(o->client_id, 65536);
	if (idlen > 65535 || mosquitto_validate_utf8(o->client_id, (int)idlen) != MOSQ_ERR_SUCCESS)
		return -EINVAL;
	if (o->port <= 0 || o->port > 65535)
		return -EINVAL;
	if (o->keepalive_s < 5 || o->keepalive_s > 65535)
		return -EINVAL;
	if (!(o->reconnect_min_s > 0) || !(o->reconnect_max_s >= o->reconnect_min_s) ||
	    o->reconnect_max_s > 86400)
		return -EINVAL;
	if (!(o->connect_timeout_s > 0) || o->connect_timeout_s > 3600)
		return -EINVAL;
	if (o->max_inflight < 1 || o->max_inflight > 65535)
		return -EINVAL;
	if (o->max_queued < 1 || o->max_queued > WF_BUS_MAX_QUEUED_LIMIT)
		return -EINVAL;
	if (o->max_packet_size < 128 || o->max_packet_size > 268435455) /* MQTT's limit */
		return -EINVAL;
	if (o->password && !o->username)
		return -EINVAL;
	if ((o->tls_certfile == NULL) != (o->tls_keyfile == NULL))
		return -EINVAL;
	if ((o->tls_certfile || o->tls_version) && !o->tls_cafile && !o->tls_capath)
		return -EINVAL;
	if (o->will_topic) {
		if (!topic_ok(o->will_topic, false) || o->will_qos < 0 || o->will_qos > 2)
			return -EINVAL;
		if (o->will_len > 0 && !o->will_payload)
			return -EINVAL;
		if (o->will_len > o->max_packet_size)
			return -EMSGSIZE;
	}
	return 0;
}

static int configure(struct wf_bus *b, const struct wf_bus_options *o)
{
	struct mosquitto *m = b->mosq;
	mosquitto_property *props = NULL;
	int rc;

	if (mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5) ||
	    mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1) ||
	    mosquitto_int_option(m, MOSQ_OPT_RECEIVE_MAXIMUM, o->max_inflight) ||
	    mosquitto_int_option(m, MOSQ_OPT_SEND_MAXIMUM, o->max_inflight))
		return -EIO;
	if (o->username && mosquitto_username_pw_set(m, o->username, o->password))
		return -EIO;
	if (o->will_topic) {
		rc = mosquitto_will_set_v5(m, o->will_topic, (int)o->will_len, o->will_payload,
					   o->will_qos, o->will_retain, NULL);
		if (rc)
			return mosq_to_errno(rc, 0);
	}
	if (o->tls_cafile || o->tls_capath) {
		if (mosquitto_tls_set(m, o->tls_cafile, o->tls_capath, o->tls_certfile,
				      o->tls_keyfile, NULL))
			return -EINVAL;
		if (o->tls_version && mosquitto_tls_opts_set(m, 1, o->tls_version, NULL))
			return -EINVAL;
	}

	mosquitto_connect_v5_callback_set(m, on_connect_cb);
	mosquitto_disconnect_v5_callback_set(m, on_disconnect_cb);
	mosquitto_publish_v5_callback_set(m, on_publish_cb);
	mosquitto_subscribe_v5_callback_set(m, on_subscribe_cb);
	mosquitto_message_v5_callback_set(m, on_message_cb);

	/* CONNECT properties. Only mosquitto_connect_bind_v5() stores them (it
	 * keeps them for every later connect and reconnect); it is blocking, so
	 * call it with a NULL host: libmosquitto 2.0 copies the properties, then
	 * rejects the host with MOSQ_ERR_INVAL before touching the network. The
	 * persistent-session integration test proves the properties are sent. */
	if (mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL,
					 o->session_expiry_s) ||
	    mosquitto_property_add_int32(&props, MQTT_PROP_MAXIMUM_PACKET_SIZE, o->max_packet_size)) {
		mosquitto_property_free_all(&props);
		return -ENOMEM;
	}
	rc = mosquitto_connect_bind_v5(m, NULL, o->port, o->keepalive_s, NULL, props);
	mosquitto_property_free_all(&props);
	if (rc != MOSQ_ERR_INVAL)
		return -EIO;
	return 0;
}

int wf_bus_new(struct ev_loop *loop, const struct wf_bus_options *o,
	       const struct wf_bus_callbacks *cb, void *ud, struct wf_bus **ret)
{
	struct wf_bus *b = NULL;
	int r;

	if (!loop || !o || !ret)
		return -EINVAL;
	r = options_check(o);
	if (r < 0)
		return r;
	pthread_once(&lib_once, lib_init);
	if (lib_rc != MOSQ_ERR_SUCCESS)
		return -EIO;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->loop = loop;
	if (cb)
		b->cb = *cb;
	b->ud = ud;
	b->fd = -1;
	b->state = WF_BUS_STATE_IDLE;
	b->port = o->port;
	b->keepalive_s = o->keepalive_s;
	b->reconnect_min_s = o->reconnect_min_s;
	b->reconnect_max_s = o->reconnect_max_s;
	b->connect_timeout_s = o->connect_timeout_s;
	b->max_queued = o->max_queued;
	b->max_packet_size = o->max_packet_size;
	r = 0;
	b->host = dup_or_null(o->host, &r);
	if (r < 0)
		goto fail;

	uint64_t seed = o->jitter_seed;
	if (!seed) {
		seed = 1469598103934665603ULL ^ (uint64_t)getpid();
		for (const char *p = o->client_id; *p; p++)
			seed = (seed ^ (unsigned char)*p) * 1099511628211ULL;
	}
	b->rng = seed ? seed : 0x9E3779B97F4A7C15ULL;

	b->mosq = mosquitto_new(o->client_id, o->clean_start, b);
	if (!b->mosq) {
		r = errno == ENOMEM ? -ENOMEM : -EINVAL;
		goto fail;
	}
	r = configure(b, o);
	if (r < 0)
		goto fail;

	ev_io_init(&b->rio, rio_cb, -1, EV_READ);
	ev_io_init(&b->wio, wio_cb, -1, EV_WRITE);
	ev_timer_init(&b->misc, misc_cb, 0., MISC_INTERVAL_S);
	ev_timer_init(&b->retry, retry_cb, 0., 0.);
	ev_timer_init(&b->deadline, deadline_cb, 0., 0.);
	b->rio.data = b->wio.data = b->misc.data = b->retry.data = b->deadline.data = b;
	b->ready = true;
	*ret = b;
	return 0;
fail:
	wf_bus_free(b);
	return r;
}

int wf_bus_start(struct wf_bus *b)
{
	if (!b)
		return -EINVAL;
	if (b->state == WF_BUS_STATE_STOPPING) {
		/* restart before the DISCONNECT went out: drop the old socket */
		stop_io(b);
		ev_timer_stop(b->loop, &b->deadline);
		b->state = WF_BUS_STATE_IDLE;
	}
	if (b->state != WF_BUS_STATE_IDLE)
		return 0;
	b->failures = 0;
	attempt_connect(b);
	return 0;
}

int wf_bus_subscribe(struct wf_bus *b, const char *pattern, int qos)
{
	if (!b || !topic_ok(pattern, true) || qos < 0 || qos > 2)
		return -EINVAL;
	struct bus_sub *s = NULL;
	for (size_t i = 0; i < b->n_subs; i++)
		if (strcmp(b->subs[i].pattern, pattern) == 0)
			s = &b->subs[i];
	if (!s) {
		if (b->n_subs >= WF_BUS_MAX_SUBSCRIPTIONS)
			return -ENOSPC;
		char *p = strdup(pattern);
		if (!p)
			return -ENOMEM;
		struct bus_sub *n = realloc(b->subs, (b->n_subs + 1) * sizeof(*n));
		if (!n) {
			free(p);
			return -ENOMEM;
		}
		b->subs = n;
		s = &b->subs[b->n_subs++];
		*s = (struct bus_sub){ .pattern = p };
	}
	s->qos = qos;
	s->confirmed = false;
	s->refused = false;
	if (b->state == WF_BUS_STATE_CONNECTED) {
		send_sub(b, s);
		sync_socket(b);
	}
	return 0;
}

int wf_bus_publish(struct wf_bus *b, const char *topic, const void *payload, size_t len,
		   int qos, bool retain, int *ret_mid)
{
	if (!b || !topic_ok(topic, false) || qos < 0 || qos > 2 || (len > 0 && !payload))
		return -EINVAL;
	/* fixed header (5) + topic length (2) + mid (2) + properties (1) */
	if (len > b->max_packet_size || len + strlen(topic) + 10 > b->max_packet_size)
		return -EMSGSIZE;
	if (b->state != WF_BUS_STATE_CONNECTED)
		return -ENOTCONN;
	if (qos > 0 && b->inflight >= b->max_queued)
		return -ENOBUFS;

	int mid = 0;
	errno = 0;
	b->depth++;
	int rc = mosquitto_publish_v5(b->mosq, &mid, topic, (int)len, payload, qos, retain, NULL);
	int err = errno;
	b->depth--;
	if (rc != MOSQ_ERR_SUCCESS) {
		/* A QoS>0 message that got a mid is queued inside libmosquitto
		 * even if writing it failed: it is resent after the reconnect. */
		bool queued = qos > 0 && mid > 0 &&
			      (rc == MOSQ_ERR_CONN_LOST || rc == MOSQ_ERR_ERRNO);
		if (!queued) {
			sync_socket(b);
			return mosq_to_errno(rc, err);
		}
	}
	b->stats.published++;
	if (qos > 0 && !mid_test(b, mid)) {
		mid_set(b, mid, true);
		b->inflight++;
	}
	if (ret_mid)
		*ret_mid = mid;
	sync_socket(b);
	return 0;
}

bool wf_bus_connected(const struct wf_bus *b)
{
	return b && b->state == WF_BUS_STATE_CONNECTED;
}

bool wf_bus_session_present(const struct wf_bus *b)
{
	return b && b->session_present;
}

bool wf_bus_subscribed(const struct wf_bus *b)
{
	if (!wf_bus_connected(b))
		return false;
	for (size_t i = 0; i < b->n_subs; i++)
		if (!b->subs[i].confirmed)
			return false;
	return true;
}

enum wf_bus_state wf_bus_get_state(const struct wf_bus *b)
{
	return b ? b->state : WF_BUS_STATE_INVALID;
}

size_t wf_bus_inflight(const struct wf_bus *b)
{
	return b ? b->inflight : 0;
}

void wf_bus_get_stats(const struct wf_bus *b, struct wf_bus_stats *ret)
{
	if (!ret)
		return;
	if (!b) {
		*ret = (struct wf_bus_stats){ 0 };
		return;
	}
	*ret = b->stats;
}

int wf_bus_stop(struct wf_bus *b)
{
	if (!b)
		return -EINVAL;
	ev_timer_stop(b->loop, &b->retry);
	ev_timer_stop(b->loop, &b->deadline);
	if (b->state == WF_BUS_STATE_IDLE || b->state == WF_BUS_STATE_STOPPING)
		return 0;
	if (b->fd < 0) {
		b->state = WF_BUS_STATE_IDLE;
		return 0;
	}
	b->state = WF_BUS_STATE_STOPPING;
	b->have_reason = true; /* a clean stop: nothing to report */
	b->reason = 0;
	/* Queues DISCONNECT (reason 0: the broker discards the will) and, unless
	 * we are inside a libmosquitto callback, writes it and closes the socket. */
	mosquitto_disconnect_v5(b->mosq, 0, NULL);
	if (b->depth == 0 && mosquitto_socket(b->mosq) == b->fd) {
		/* never re-enter libmosquitto's write path from its callbacks */
		b->depth++;
		mosquitto_loop_write(b->mosq, 1);
		b->depth--;
	}
	if (mosquitto_socket(b->mosq) != b->fd) {
		stop_io(b);
		b->state = WF_BUS_STATE_IDLE;
		b->have_reason = false;
		return 0;
	}
	/* still open: let the watchers finish the write, bounded in time */
	update_write(b);
	ev_timer_set(&b->deadline, STOP_TIMEOUT_S, 0.);
	ev_timer_start(b->loop, &b->deadline);
	return 0;
}

struct wf_bus *wf_bus_free(struct wf_bus *b)
{
	if (!b)
		return NULL;
	if (b->mosq && b->loop) {
		if (b->state != WF_BUS_STATE_IDLE && b->ready)
			wf_bus_stop(b);
		/* one last try to get a pending DISCONNECT out (else the will fires) */
		if (b->state == WF_BUS_STATE_STOPPING && b->depth == 0 &&
		    mosquitto_socket(b->mosq) == b->fd)
			mosquitto_loop_write(b->mosq, 1);
		if (b->ready) {
			stop_io(b);
			ev_timer_stop(b->loop, &b->retry);
			ev_timer_stop(b->loop, &b->deadline);
		}
	}
	if (b->mosq)
		mosquitto_destroy(b->mosq);
	for (size_t i = 0; i < b->n_subs; i++)
		free(b->subs[i].pattern);
	free(b->subs);
	free(b->host);
	free(b);
	return NULL;
}
