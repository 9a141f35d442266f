/* bus: an MQTT v5 client (libmosquitto) driven by a libev loop.
 *
 * No libmosquitto thread: the socket is watched with ev_io (the write
 * watcher only while libmosquitto has bytes to send), keepalive runs from an
 * ev_timer, and connecting is non-blocking (mosquitto_connect_bind_async).
 * The bus reconnects by itself with exponential backoff and jitter until it
 * is stopped or freed, re-subscribes remembered subscriptions when the broker
 * lost the session, and reports every MQTT reason code: CONNACK and
 * DISCONNECT reasons through on_connection, SUBACK refusals through
 * on_subscribe_error and PUBACK reasons through on_publish.
 *
 * Threading: a bus belongs to its loop's thread; no function is thread-safe.
 * Callbacks run from inside the loop. From a callback you may publish,
 * subscribe, stop and start, but never free the bus.
 *
 * Errors are negative errno; docs/bus.md has the reason-code table. */
#ifndef WF_BUS_H
#define WF_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct wf_bus;

/* Limits (user-controlled resources). */
#define WF_BUS_MAX_SUBSCRIPTIONS 1024      /* remembered subscription patterns */
#define WF_BUS_MAX_TOPIC_LEN     1024      /* bytes, for topics and patterns */
#define WF_BUS_MAX_QUEUED_LIMIT  60000     /* upper bound of options.max_queued */

struct wf_bus_options {
	const char *host;          /* default "127.0.0.1" */
	int port;                  /* default 1883 */
	const char *client_id;     /* required, 1..23+ bytes of UTF-8, unique per broker */
	const char *username;      /* NULL: none */
	const char *password;      /* NULL: none (needs username) */
	/* TLS (optional; untested here: the deployment default is loopback).
	 * TLS is on when tls_cafile or tls_capath is set. */
	const char *tls_cafile, *tls_capath, *tls_certfile, *tls_keyfile;
	const char *tls_version;   /* NULL: libmosquitto's default, e.g. "tlsv1.3" */
	int keepalive_s;           /* default 30; 5..65535 */
	bool clean_start;          /* default false (persistent session) */
	uint32_t session_expiry_s; /* default 3600; 0 ends the session on disconnect */
	/* Will (sent by the broker if the connection dies without DISCONNECT),
	 * e.g. the retained OFFLINE ServiceState. will_topic NULL: no will. */
	const char *will_topic;
	const void *will_payload;
	size_t will_len;
	int will_qos;              /* default 1 */
	bool will_retain;          /* default true */
	double reconnect_min_s;    /* default 0.1 */
	double reconnect_max_s;    /* default 30 */
	double connect_timeout_s;  /* CONNECT to CONNACK deadline, default 10 */
	int max_inflight;          /* QoS>0 messages in flight each way (MQTT receive/send
	                              maximum), default 1000, 1..65535 */
	size_t max_queued;         /* QoS>0 publishes not yet acknowledged before publish
	                              returns -ENOBUFS; default 10000, 1..WF_BUS_MAX_QUEUED_LIMIT */
	uint32_t max_packet_size;  /* largest packet either way, default 1 MiB, 128..268435455;
	                              a larger publish is -EMSGSIZE, the broker drops larger
	                              ones instead of sending them to us */
	uint64_t jitter_seed;      /* 0: derived from the client id and pid */
};

/* Fills O with the defaults above (client_id NULL). This function can't fail. */
void wf_bus_options_init(struct wf_bus_options *o);

struct wf_bus_callbacks {
	/* A message arrived. TOPIC and PAYLOAD are borrowed until the callback
	 * returns (copy what you keep). A bundle (wf/bundle.h) arrives as its
	 * entries, one call each, in order, with their own topics; one that
	 * fails wf_bundle_unpack arrives whole (wf_bundle_is tells it). libmosquitto has already acknowledged a
	 * QoS 1 message when this runs: durability is the caller's job. */
	void (*on_message)(void *ud, const char *topic, const void *payload, size_t len,
			   bool retained);
	/* Connection state. up=true, reason 0: CONNACK success (see
	 * wf_bus_session_present()). up=false: an attempt failed or the
	 * connection was lost; REASON is an MQTT reason code (>= 0x80) when the
	 * broker said why (CONNACK refusal such as 0x86 bad user name or
	 * password, or a DISCONNECT such as 0x8E session taken over), else a
	 * negative errno (-ECONNREFUSED, -ECONNRESET, -ETIMEDOUT, -EPROTO, ...).
	 * Called once per failed attempt; not called by wf_bus_stop(). */
	void (*on_connection)(void *ud, bool up, int reason_code);
	/* A publish completed. QoS 1/2: the broker's PUBACK/PUBCOMP; QoS 0: it
	 * was written to the socket (this may happen before wf_bus_publish()
	 * returns). RESULT is 0 (reason 0x00 success or 0x10 no matching
	 * subscribers) or wf_bus_reason_to_errno(REASON), e.g. -EACCES for 0x87. */
	void (*on_publish)(void *ud, int mid, int result, int reason_code);
	/* The broker refused a subscription (SUBACK reason >= 0x80). PATTERN is
	 * borrowed until the callback returns. The pattern stays remembered and
	 * is tried again when the broker next reports a fresh session. */
	void (*on_subscribe_error)(void *ud, const char *pattern, int reason_code);
	/* Every subscription of this connection is granted (wf_bus_subscribed
	 * just became true). May be NULL. */
	void (*on_subscribed)(void *ud);
};

enum wf_bus_state {
	WF_BUS_STATE_IDLE,        /* not started, or stopped */
	WF_BUS_STATE_CONNECTING,  /* socket open, waiting for CONNACK */
	WF_BUS_STATE_CONNECTED,   /* CONNACK success */
	WF_BUS_STATE_BACKOFF,     /* waiting to reconnect */
	WF_BUS_STATE_STOPPING,    /* DISCONNECT queued, waiting for it to be written */
	WF_BUS_STATE_MAX,
	WF_BUS_STATE_INVALID = -1,
};

/* "idle", "connecting", ...; "invalid" for anything else. Can't fail. */
const char *wf_bus_state_to_string(enum wf_bus_state s);

struct wf_bus_stats {
	uint64_t connect_attempts;  /* connection attempts started */
	uint64_t connects;          /* CONNACK successes */
	uint64_t connect_failures;  /* attempts or connections that ended in on_connection(false) */
	uint64_t published;         /* publishes handed to libmosquitto */
	uint64_t publish_acked;     /* QoS 1 completions with result 0 (PUBACKs) */
	uint64_t publish_refused;   /* completions with result < 0 */
	uint64_t received;          /* messages that arrived (a bundle counts once) */
	uint64_t bundles;           /* bundles among them, opened into their entries */
	uint64_t subscribe_refused; /* SUBACK refusals */
};

/* Creates a bus on LOOP (borrowed; must outlive the bus). O and CB are
 * copied (strings and the will payload are duplicated); UD is passed to the
 * callbacks. Nothing connects until wf_bus_start(). Returns 0 and sets
 * *ret, -EINVAL on bad options (no client id, port out of range, keepalive
 * < 5, min > max, password without username, will topic invalid, ...),
 * -ENOMEM, or -EIO if libmosquitto refuses an option. Free with wf_bus_free(). */
int wf_bus_new(struct ev_loop *loop, const struct wf_bus_options *o,
	       const struct wf_bus_callbacks *cb, void *ud, struct wf_bus **ret);

/* Begins connecting (non-blocking); from then on the bus reconnects forever
 * until wf_bus_stop() or wf_bus_free(). Returns 0 (also if already started),
 * or -EINVAL for a NULL bus. Connection failures are reported through
 * on_connection, never as a return value. */
int wf_bus_start(struct wf_bus *b);

/* Subscribes to PATTERN (MQTT filter, wildcards allowed) at QOS 0..2 and
 * remembers it: it is (re)sent on every connect where the broker has no
 * session for us. Sends it now when connected. PATTERN is copied. Returns 0,
 * -EINVAL (bad pattern or qos), -ENOSPC (more than WF_BUS_MAX_SUBSCRIPTIONS),
 * -ENOMEM. Subscribing to a remembered pattern again updates its qos.
 * A broker refusal arrives later through on_subscribe_error. */
int wf_bus_subscribe(struct wf_bus *b, const char *pattern, int qos);

/* Publishes LEN bytes of PAYLOAD (copied) to TOPIC at QOS 0..2. On success
 * returns 0 and sets *ret_mid (if not NULL) to the message id that
 * on_publish will report. Errors: -ENOTCONN when not connected (nothing is
 * queued: the caller's outbox resends later), -EINVAL (bad topic with
 * wildcards, empty, too long or not UTF-8; bad qos), -EMSGSIZE (larger than
 * max_packet_size allows), -ENOBUFS (max_queued QoS>0 publishes pending),
 * -ENOMEM, -EIO. A QoS>0 message accepted here stays in libmosquitto until
 * acknowledged (resent after a reconnect) or the bus is freed. */
int wf_bus_publish(struct wf_bus *b, const char *topic, const void *payload, size_t len,
		   int qos, bool retain, int *ret_mid);

/* True between CONNACK success and the loss of that connection. Can't fail. */
bool wf_bus_connected(const struct wf_bus *b);

/* True if the last CONNACK said the broker kept our session. Can't fail. */
bool wf_bus_session_present(const struct wf_bus *b);

/* True when connected and every remembered subscription has been granted
 * in the current session (false while any is in flight or was refused).
 * Can't fail. */
bool wf_bus_subscribed(const struct wf_bus *b);

/* The current state. Can't fail (WF_BUS_STATE_INVALID for NULL). */
enum wf_bus_state wf_bus_get_state(const struct wf_bus *b);

/* QoS>0 publishes accepted but not yet completed. Can't fail. */
size_t wf_bus_inflight(const struct wf_bus *b);

/* Copies the counters into *ret. Can't fail. */
void wf_bus_get_stats(const struct wf_bus *b, struct wf_bus_stats *ret);

/* Stops the bus: a clean DISCONNECT (reason 0, so the broker discards the
 * will), no more reconnects, all watchers stopped once the DISCONNECT is
 * written (within a second at most). Unacknowledged QoS>0 publishes stay in
 * libmosquitto and are resent after wf_bus_start(). Returns 0. */
int wf_bus_stop(struct wf_bus *b);

/* Stops (as wf_bus_stop) and frees the bus. Pending publishes never
 * complete. Accepts NULL; returns NULL. Never call it from a bus callback. */
struct wf_bus *wf_bus_free(struct wf_bus *b);

/* MQTT reason code to a result: 0 for 0x00 and 0x10, -EACCES for 0x87 (not
 * authorized), -EINVAL for 0x8F/0x90 (topic invalid), -EMSGSIZE for 0x95,
 * -EDQUOT for 0x97, -EBADMSG for 0x99, -EIO for 0x80/0x83, -EPROTO for any
 * other code >= 0x80; codes below 0x80 are 0. Can't fail. */
int wf_bus_reason_to_errno(int reason_code);

/* Human text for an MQTT reason code (static string). Can't fail. */
const char *wf_bus_reason_string(int reason_code);

#endif
