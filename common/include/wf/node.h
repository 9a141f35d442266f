/* node: one service's place on the bus, with the end-to-end delivery
 * guarantee built in (docs/delivery.md, docs/service-runtime.md).
 *
 * A node owns, for one service id (e.g. "wf-met-1"):
 *   - an LMDB store in its state directory, with the service's outbox
 *     (producer side) and dedupe state (consumer side) in it;
 *   - a bus connection (client id = service id) whose will is the retained
 *     OFFLINE ServiceState on wf/v1/state/<service>; on every connect it
 *     publishes the retained ONLINE birth, and again every heartbeat;
 *   - subscriptions: wf/v1/ack/<service> (acks for its outbox),
 *     wf/v1/state/+ (births of consumers, which trigger a resend, and
 *     liveness of everyone for the service), and the input filters given.
 *
 * Consuming: every input message is unpacked and validated by the codec
 * and checked against its topic; a bad one is published as a DeadLetter on
 * wf/v1/deadletter/<service> (and acked when its producer and sequence
 * could be read, so the producer stops resending it). Good messages are
 * queued and applied in batches: one write transaction per batch (group
 * commit) in which wf_dedupe_apply() records (producer, seq) and
 * cb->on_event / cb->on_warning applies the effect; acks are published
 * after the commit, batched (ack_delay_ms). Control messages of
 * dispatch.proto (approvals, duty acks, follow-ups, silences) arriving on
 * an input filter go the same way to cb->on_control, when it is set.
 *
 * Producing: in a write transaction (the one a callback got, or one from
 * wf_node_update()), wf_node_emit_event() / wf_node_emit_warning() stamp
 * the producer id and the next sequence number, validate, pack and put the
 * message into the outbox; after the commit the node publishes it and
 * keeps resending until acked.
 *
 * The node never logs: it reports through cb->on_notice. Single-threaded,
 * on the caller's libev loop. */
#ifndef WF_NODE_H
#define WF_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control.pb-c.h"
#include "dispatch.pb-c.h"
#include "event.pb-c.h"
#include "warning.pb-c.h"
#include "wf/bus.h"
#include "wf/clock.h"
#include "wf/codec.h"
#include "wf/store.h"
#include "wf/topic.h"

struct ev_loop;
struct wf_node;
struct wf_outbox;

#define WF_NODE_MAX_INPUTS 64u        /* input subscription filters */
#define WF_NODE_MAX_BATCH  4096u      /* messages applied in one transaction */

/* Return value of an apply callback: the message is permanently rejected
 * (it is recorded as applied, acked, and dead-lettered with *why). */
#define WF_NODE_REJECT 1

struct wf_node_options {
	const char *service;        /* service id (producer-id syntax), required */
	const char *kind;           /* ServiceState.kind ("met", "fusion", ...), required */
	Wf__V1__Agency agency;      /* adapters: the agency spoken for; else 0 */
	const char *version;        /* ServiceState.version; NULL: none */
	const char *state_dir;      /* LMDB environment directory, required */
	size_t map_size;            /* store's initial map size (0: store default) */
	bool nosync;                /* TESTS ONLY (see wf_store_options.nosync) */
	/* host, port, credentials, TLS, keepalive, reconnect; client_id and the
	 * will are set by the node. */
	struct wf_bus_options bus;
	const char *const *inputs;  /* MQTT filters of input topics (events or warnings) */
	size_t n_inputs;
	int64_t heartbeat_ms;       /* 0: 10000 */
	int64_t ack_delay_ms;       /* acks are batched this long (0: 20; -1: at once) */
	int64_t resend_ms;          /* outbox resend timeout (0: 5000) */
	uint64_t outbox_max_entries; /* 0: outbox default */
	/* Ordered inputs: each producer's messages are applied in sequence
	 * order. One that arrives beyond the next expected seq (its
	 * predecessor was lost with an uncommitted batch, say) is neither
	 * applied nor acked; the producer resends it after the gap is filled
	 * (at once when this node is reborn, else on its resend timeout). A
	 * gap still open after order_timeout_ms is given up on (a notice says
	 * so) and later messages are applied. Messages rejected on receipt
	 * keep their place (recorded, then dead-lettered). Use it only when
	 * this node receives EVERY message of each producer it hears from
	 * (e.g. a single fusion instance, or adapters partitioned like
	 * fusion): otherwise the gaps never fill. This is what makes a
	 * consumer's output after a crash identical to an uninterrupted run.
	 * Only events and warnings are ordered: control messages (approvals,
	 * duty acks, follow-ups, silences) are applied as they come, since
	 * their producers (people's wfctl) may also publish to other
	 * consumers, and each of them stands on its own. */
	bool ordered;
	int64_t order_timeout_ms;   /* 0: 30000 */
	/* Validation limits; NULL: wf_codec_limits_init() defaults, no region
	 * table. Borrowed for the node's lifetime (the region table too). */
	const struct wf_codec_limits *limits;
	const struct wf_clock *clock; /* NULL: the system clock */
	/* Bundles (wf/bundle.h): consecutive outbox entries with one bundle
	 * topic (events of one agency and county, warnings of one county) go
	 * out as one MQTT message of at most this many entries and
	 * bundle_bytes bytes. 0: 128 entries; 1: every entry alone (for
	 * consumers that predate bundles). bundle_bytes 0: 128 KiB (never more
	 * than the bus's max_packet_size allows). Receiving needs nothing:
	 * the bus opens bundles. */
	unsigned bundle_max;
	size_t bundle_bytes;
};

/* Fills O with the defaults (all strings NULL). Can't fail. */
void wf_node_options_init(struct wf_node_options *o);

/* What a node tells its service (for logging). */
enum wf_node_notice {
	WF_NODE_CONNECTED,      /* detail: "session present" or "new session" */
	WF_NODE_DISCONNECTED,   /* code: MQTT reason or negative errno */
	WF_NODE_REJECTED,       /* an input was dead-lettered; detail: reason and field */
	WF_NODE_PUBLISH_REFUSED, /* the broker refused a publish (e.g. ACL); code: -errno */
	WF_NODE_STORE_ERROR,    /* a batch could not be committed; code: -errno (inputs
				   are resent by their producers) */
	WF_NODE_TRANSIENT,      /* an apply callback failed transiently; code: -errno */
};

struct wf_node_msg {
	const char *topic;
	const struct wf_topic *parsed;
	const char *producer;
	uint64_t seq;
};

struct wf_node_callbacks {
	/* Apply one new (not yet applied) event in T. Return 0 (applied),
	 * WF_NODE_REJECT (permanent; fill *why), or a negative errno
	 * (transient: the whole batch is aborted and not acked; producers
	 * resend). T may be aborted and the batch re-run (map growth), so keep
	 * effects inside T, and in-memory changes until on_batch_done. */
	int (*on_event)(void *ud, struct wf_txn *t, const Wf__V1__Event *ev,
			const struct wf_node_msg *m, struct wf_codec_error *why);
	int (*on_warning)(void *ud, struct wf_txn *t, const Wf__V1__Warning *w,
			  const struct wf_node_msg *m, struct wf_codec_error *why);
	/* Optional (NULL: control topics are ignored). A control message of
	 * dispatch.proto arrived on an input filter, validated and checked
	 * against its topic; KIND is its topic kind and MSG the unpacked
	 * message (cast to Wf__V1__Approval for WF_TOPIC_APPROVAL, DutyAck for
	 * DUTY_ACK, FollowUp for DUTY_FOLLOWUP, Silence for SILENCE, DutyNotice
	 * for DUTY_INBOX, BroadcastState for BROADCAST), borrowed for the call.
	 * Kinds with producer/seq (APPROVAL, DUTY_ACK, DUTY_FOLLOWUP, SILENCE)
	 * are applied exactly like events: new ones only, in the batch's
	 * transaction T, same return values. Kinds without (DUTY_INBOX,
	 * BROADCAST: idempotent, at-least-once) are delivered as they arrive
	 * with T NULL and M->producer NULL; WF_NODE_REJECT dead-letters them. */
	int (*on_control)(void *ud, struct wf_txn *t, enum wf_topic_kind kind,
			  const ProtobufCMessage *msg, const struct wf_node_msg *m,
			  struct wf_codec_error *why);
	/* At the start of each attempt to apply a batch, before the first
	 * on_event/on_warning in T. A second call without on_batch_done in
	 * between means the previous attempt's T was aborted and the batch is
	 * re-run (map growth): drop in-memory effects of that attempt. May be
	 * NULL. */
	void (*on_batch_begin)(void *ud);
	/* After each batch: COMMITTED true when its transaction committed. */
	void (*on_batch_done)(void *ud, bool committed);
	/* A valid ServiceState (births, heartbeats, wills) of another service.
	 * Borrowed for the call. */
	void (*on_state)(void *ud, const Wf__V1__ServiceState *st, bool retained);
	void (*on_notice)(void *ud, enum wf_node_notice what, int code, const char *detail);
};

struct wf_node_stats {
	uint64_t received;        /* input messages received */
	uint64_t applied;         /* inputs applied (new) */
	uint64_t duplicates;      /* inputs already applied (acked again) */
	uint64_t rejected;        /* inputs dead-lettered */
	uint64_t batches;         /* committed batches */
	uint64_t acks_sent;       /* Ack messages published */
	uint64_t acks_received;   /* Acks applied to our outbox */
	uint64_t emitted;         /* messages put into our outbox */
	uint64_t publish_refused; /* broker refusals (PUBACK >= 0x80) */
	uint64_t deferred;        /* inputs held back for order (resent later) */
	uint64_t bundles_sent;    /* bundles published (entries in them count in emitted) */
};

/* Opens the store (and its outbox and dedupe state), creates the bus
 * connection (not yet started). Returns 0 and *ret, -EINVAL for bad options,
 * or a store/bus error. */
int wf_node_new(struct ev_loop *loop, const struct wf_node_options *o,
		const struct wf_node_callbacks *cb, void *ud, struct wf_node **ret);

/* Connects (and keeps reconnecting); publishes what the outbox holds. */
int wf_node_start(struct wf_node *n);

/* Publishes the retained OFFLINE state, then disconnects cleanly. Pending
 * batches are applied first. Returns 0. The loop exits once the node's
 * watchers have stopped (within a second). */
int wf_node_stop(struct wf_node *n);

/* Frees (stopping first). Accepts NULL; returns NULL. */
struct wf_node *wf_node_free(struct wf_node *n);

/* Runs FN in a write transaction of the node's store (wf_store_update
 * semantics), then publishes what FN emitted. */
int wf_node_update(struct wf_node *n, int (*fn)(struct wf_txn *t, void *ud), void *ud);

/* Stamps the producer id and the next sequence number (EV->seq is set to
 * it; EV->producer is left alone: the packed copy carries the service id),
 * validates and packs it, and puts it
 * into the outbox in T on its event topic. Returns 0, -EBADMSG with *why
 * (may be NULL) filled when invalid, or an outbox/store error (-ENOBUFS:
 * the outbox is full, stop taking input). */
int wf_node_emit_event(struct wf_node *n, struct wf_txn *t, Wf__V1__Event *ev,
		       struct wf_codec_error *why);
/* The same for a warning (topic from its first region and hazard). */
int wf_node_emit_warning(struct wf_node *n, struct wf_txn *t, Wf__V1__Warning *w,
			 struct wf_codec_error *why);

/* The same for a control message with producer/seq: KIND is
 * WF_TOPIC_APPROVAL (MSG a Wf__V1__Approval, topic from its operator),
 * DUTY_ACK (DutyAck, its station), DUTY_FOLLOWUP (FollowUp) or SILENCE
 * (Silence, its operator); else -EINVAL. MSG's seq is set. */
int wf_node_emit_control(struct wf_node *n, struct wf_txn *t, enum wf_topic_kind kind,
			 ProtobufCMessage *msg, struct wf_codec_error *why);

/* Publishes PAYLOAD directly (QoS 1, not through the outbox), e.g. a
 * retained state or an idempotent notice whose delivery the service tracks
 * itself. -ENOTCONN when not connected (nothing queued). */
int wf_node_publish(struct wf_node *n, const char *topic, const void *payload, size_t len,
		    bool retain);

/* The same at QOS (0 or 1). QoS 0 suits a retained view that the service
 * republishes whole after every reconnect: nothing waits for a PUBACK, and
 * it takes no place in the bus queue (so it is never -ENOBUFS). */
int wf_node_publish_qos(struct wf_node *n, const char *topic, const void *payload, size_t len,
			int qos, bool retain);

/* Publishes outbox entries now (after a commit made outside wf_node_update). */
void wf_node_flush(struct wf_node *n);

/* Replaces the callbacks' UD (for services whose state needs the node to
 * exist first) and, when NOTICE_UD is not NULL, gives on_notice its own. */
void wf_node_set_ud(struct wf_node *n, void *ud, void *notice_ud);

struct wf_store *wf_node_store(struct wf_node *n);
struct wf_outbox *wf_node_outbox(struct wf_node *n);
struct wf_bus *wf_node_bus(struct wf_node *n);
const char *wf_node_service(const struct wf_node *n);
bool wf_node_connected(const struct wf_node *n);
/* Connected and every subscription granted. */
bool wf_node_ready(const struct wf_node *n);
/* Unacknowledged outbox entries (count), or a negative errno. */
int64_t wf_node_pending(struct wf_node *n);
void wf_node_get_stats(const struct wf_node *n, struct wf_node_stats *ret);
/* Most entries of a bundle this node publishes (1: no bundles), for a
 * service that bundles its own direct publishes the same way. */
unsigned wf_node_bundle_max(const struct wf_node *n);

#endif
