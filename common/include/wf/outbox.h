/* outbox: the producer side of end-to-end delivery (docs/delivery.md).
 *
 * A producer writes each message into its LMDB outbox, stamped with its
 * producer id and a persistent sequence number, in the SAME write
 * transaction as its own state change; only after the commit does it hand
 * the message to the bus (wf_outbox_flush). Entries stay until a consumer
 * acknowledges them (wf_outbox_ack); unacknowledged entries are published
 * again after the resend timeout, when the consumer's birth is seen, and
 * after a restart. Delivery is at-least-once; the consumer's dedupe
 * (wf/dedupe.h) makes it effectively-once.
 *
 * An outbox has ONE logical consumer stream: an Ack from anyone with the
 * right producer id deletes entries. A producer feeding several
 * independent consumers uses one outbox (and producer id) per stream.
 * One process owns a producer id at a time; a struct wf_outbox is used from
 * one thread. */
#ifndef WF_OUTBOX_H
#define WF_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "control.pb-c.h"
#include "wf/clock.h"
#include "wf/store.h"

struct wf_outbox;

#define WF_OUTBOX_MAX_TOPIC       1024u            /* bytes, without NUL */
#define WF_OUTBOX_MAX_PAYLOAD     (16u << 20)      /* hard cap for max_payload */
#define WF_OUTBOX_MAX_ACK_RANGES  4096u            /* ranges accepted per Ack */
#define WF_OUTBOX_MAX_ACK_BYTES   (256u << 10)     /* packed Ack size accepted */

/* An inclusive range of sequence numbers. */
struct wf_seq_range {
	uint64_t first;
	uint64_t last;
};

struct wf_outbox_options {
	/* Publish again when the last send is at least this old (0: 5000). */
	int64_t resend_ms;
	/* Backpressure: puts fail with -ENOBUFS beyond these (0: 100000
	 * entries; 64 MiB of keys+values). */
	uint64_t max_entries;
	uint64_t max_bytes;
	/* Largest payload accepted by put (0: 256 KiB; at most
	 * WF_OUTBOX_MAX_PAYLOAD). */
	size_t max_payload;
	/* Most publish calls one wf_outbox_flush() makes (0: 1000). */
	unsigned max_per_flush;
	/* Hands one message to the bus. TOPIC (NUL-terminated) and PAYLOAD are
	 * borrowed for the call only (copy them, as mosquitto_publish does).
	 * Returns 0 when the bus took it, a negative errno when not (e.g.
	 * -ENOTCONN): the entry stays and is tried again by a later flush.
	 * Required. It must not call back into this outbox. */
	int (*publish)(void *ud, const char *topic, const void *payload, size_t len);
	void *publish_ud;
	/* Time source for resend timing and entry ages (borrowed for the
	 * outbox's lifetime; NULL: the system clock). */
	const struct wf_clock *clock;
};

/* Opens the outbox of PRODUCER_ID (1..128 printable ASCII, no space, '/',
 * '+' or '#': see wf_dedupe_producer_valid) in store S, creating its
 * databases (so call it while this thread holds no write transaction).
 * S and O->clock are borrowed for the outbox's lifetime; PRODUCER_ID and O
 * are copied. The caller closes the outbox with wf_outbox_close(). */
int wf_outbox_open(struct wf_store *s, const char *producer_id,
		   const struct wf_outbox_options *o, struct wf_outbox **ret);

/* Frees O (the store keeps every entry). Accepts NULL; returns NULL. */
struct wf_outbox *wf_outbox_close(struct wf_outbox *o);

/* The producer id (borrowed, lives as long as O). This function can't
 * fail. */
const char *wf_outbox_producer(const struct wf_outbox *o);

/* Allocates the next sequence number in the caller's write transaction T
 * and stores it in *ret_seq. Sequence numbers start at 1 and increase
 * strictly across restarts and crashes (the counter is committed with T;
 * an aborted T gives its numbers out again). Stamp the number into the
 * payload and then wf_outbox_put() it in the same T: a number that is
 * committed but never put leaves a permanent gap the consumer's dedupe
 * has to hold (docs/delivery.md). -ENOBUFS if the outbox is already at
 * max_entries. */
int wf_outbox_next_seq(struct wf_outbox *o, struct wf_txn *t, uint64_t *ret_seq);

/* Stores message SEQ (from wf_outbox_next_seq) for TOPIC in the caller's
 * write transaction T, copying TOPIC and PAYLOAD. Nothing is published
 * until T commits and wf_outbox_flush() runs. Errors: -EINVAL (bad seq or
 * topic), -EEXIST (SEQ already stored), -EMSGSIZE (payload above
 * max_payload, or an entry that could never fit max_bytes), -ENOBUFS
 * (outbox full: abort T and stop accepting input until acks drain it),
 * -ENOSPC (map full: wf_store_update grows it and retries). */
int wf_outbox_put(struct wf_outbox *o, struct wf_txn *t, uint64_t seq, const char *topic,
		  const void *payload, size_t len);

/* Publishes, in sequence order, entries that were committed but not yet
 * sent by this process and entries whose last send is at least resend_ms
 * old, at most max_per_flush of them. Call it after each commit, when the
 * resend timer (wf_outbox_next_due_ms) fires and after reconnecting.
 * Returns how many were published (equal to max_per_flush: call again),
 * or the publish callback's negative errno (entries published before it
 * count as sent; the rest are tried on the next call), or a store error.
 * Runs its own read transactions: do not call it holding a write
 * transaction of a store that may need to grow. */
int wf_outbox_flush(struct wf_outbox *o);

/* wf_outbox_flush() with at most MAX publish calls (1 .. max_per_flush;
 * larger is max_per_flush): for a caller that knows how much room its bus
 * queue has, so that no entry is read from the store only to be refused. */
int wf_outbox_flush_n(struct wf_outbox *o, unsigned max);

/* Absolute time (clock ms) when the next already-sent entry becomes due
 * for resending; INT64_MAX when nothing sent is waiting for an ack.
 * Entries not yet sent are always due. This function can't fail. */
int64_t wf_outbox_next_due_ms(const struct wf_outbox *o);

/* Applies a consumer's Ack: deletes the acknowledged entries in one write
 * transaction (acks for unknown or already deleted sequence numbers are
 * harmless). Returns how many entries were deleted (capped at INT_MAX),
 * -EINVAL if ACK's producer is not ours or ACK is malformed (a range with
 * first > last, more than WF_OUTBOX_MAX_ACK_RANGES ranges), or a store
 * error. ACK is borrowed for the call. */
int wf_outbox_ack(struct wf_outbox *o, const Wf__V1__Ack *ack);

/* The same for N ranges (borrowed), without a producer check. */
int wf_outbox_ack_ranges(struct wf_outbox *o, const struct wf_seq_range *ranges, size_t n);

/* Unpacks a packed Ack (at most WF_OUTBOX_MAX_ACK_BYTES; -EBADMSG if it
 * does not decode) and applies it as wf_outbox_ack(). */
int wf_outbox_ack_packed(struct wf_outbox *o, const void *buf, size_t len);

/* The consumer announced itself (ServiceState ONLINE): every entry
 * pending is due at the next flush. This function can't fail. */
void wf_outbox_consumer_birth(struct wf_outbox *o);

/* Number of unacknowledged entries and their key+value bytes (either
 * pointer may be NULL), read in a fresh read transaction. */
int wf_outbox_pending(struct wf_outbox *o, uint64_t *ret_count, uint64_t *ret_bytes);

/* The lowest unacknowledged seq, or the next seq to be used when every
 * entry is acknowledged (1 for a new outbox): ServiceState.outbox_floor.
 * Read in a fresh read transaction. */
int wf_outbox_floor(struct wf_outbox *o, uint64_t *ret_seq);

/* Age in ms (by the outbox's clock) of the oldest unacknowledged entry,
 * 0 when the outbox is empty; for monitoring. */
int wf_outbox_oldest_ms(struct wf_outbox *o, int64_t *ret_age_ms);

#endif
