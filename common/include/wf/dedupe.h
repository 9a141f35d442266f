/* dedupe: the consumer side of end-to-end delivery (docs/delivery.md).
 *
 * A consumer applies a message and records its (producer, seq) in the SAME
 * write transaction (wf_dedupe_apply), so a redelivered message changes
 * nothing. After the commit it notes the message for acknowledgement
 * (wf_dedupe_ack_note) and periodically publishes the batched Acks
 * (wf_dedupe_ack_take) on wf/v1/ack/<producer>.
 *
 * Storage per producer is bounded: a contiguous low watermark W (every seq
 * <= W applied) plus the sparse set of applied seqs above W, which is
 * compacted into W as gaps fill. A struct wf_dedupe is used from one
 * thread. */
#ifndef WF_DEDUPE_H
#define WF_DEDUPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control.pb-c.h"
#include "wf/store.h"

struct wf_dedupe;

/* Longest producer (and consumer) id, in bytes. */
#define WF_PRODUCER_MAX 128u

/* Whether ID is a valid producer or consumer id: 1..WF_PRODUCER_MAX bytes
 * of printable ASCII without space, '/', '+' or '#' (it becomes an MQTT
 * topic level). NULL is invalid. This function can't fail. */
bool wf_dedupe_producer_valid(const char *id);

struct wf_dedupe_options {
	/* Our consumer id, stamped into Acks and naming our databases
	 * (copied; producer-id syntax). Required. */
	const char *consumer;
	/* Producers tracked in the store (0: 1024); a new producer beyond it
	 * gets -ENOSPC. */
	uint32_t max_producers;
	/* Applied seqs above a producer's watermark (0: 65536); beyond it
	 * wf_dedupe_apply gives -ENOSPC until the gap fills or the producer's
	 * floor (wf_dedupe_floor) covers it. */
	uint32_t max_sparse;
	/* Ranges per Ack message (0: 256; at most 4096). */
	uint32_t max_ack_ranges;
	/* Noted-but-not-taken ranges per producer, in memory (0: 4096). */
	uint32_t max_pending_ranges;
};

/* Opens the dedupe state of O->consumer in store S (creating its
 * databases: call it while this thread holds no write transaction). S is
 * borrowed for the lifetime of the handle, O is copied. The caller closes
 * it with wf_dedupe_close(). */
int wf_dedupe_open(struct wf_store *s, const struct wf_dedupe_options *o, struct wf_dedupe **ret);

/* Frees D, dropping acks noted but not taken (the producers resend those
 * messages, which are then recognized and acked again). Accepts NULL;
 * returns NULL. */
struct wf_dedupe *wf_dedupe_close(struct wf_dedupe *d);

/* Records (PRODUCER, SEQ) in the caller's write transaction T, in which
 * the caller also applies the message's effect. Returns 0 if it is new
 * (now recorded), 1 if it was already applied (skip the effect, but still
 * ack it), or a negative errno: -EINVAL (bad producer id, SEQ 0, T not
 * writable), -ENOSPC (a new producer beyond max_producers, or SEQ would
 * exceed max_sparse above the watermark: a gap that is not filling; see
 * docs/delivery.md), store errors. Any order and any number of repeats
 * are handled. On an error, abort T (or let wf_store_update do it). */
int wf_dedupe_apply(struct wf_dedupe *d, struct wf_txn *t, const char *producer, uint64_t seq);

/* PRODUCER announced FLOOR (ServiceState.outbox_floor): every seq below it
 * was applied by some consumer. Raises the watermark to FLOOR - 1 (creating
 * the producer's record when it is new), drops the sparse entries it
 * covers and compacts what then continues it. Seqs of the gap that this
 * consumer never received (another partition's) stop counting against
 * max_sparse. Returns 1 when the watermark moved, 0 when not, or a
 * negative errno as wf_dedupe_apply. */
int wf_dedupe_floor(struct wf_dedupe *d, struct wf_txn *t, const char *producer, uint64_t floor);

/* Reads PRODUCER's watermark and sparse count in T (ret pointers may be
 * NULL). -ENOENT if PRODUCER was never seen. For tests and monitoring. */
int wf_dedupe_state(struct wf_dedupe *d, struct wf_txn *t, const char *producer,
		    uint64_t *ret_watermark, uint32_t *ret_sparse);

/* Notes, in memory, that (PRODUCER, SEQ) is durably applied (call after
 * the commit) so that the next wf_dedupe_ack_take acknowledges it.
 * -EINVAL for a bad id or SEQ 0, -ENOBUFS when max_producers or
 * max_pending_ranges is reached (harmless: the producer resends, the
 * duplicate is recognized and noted again), -ENOMEM. */
int wf_dedupe_ack_note(struct wf_dedupe *d, const char *producer, uint64_t seq);

/* Takes the noted acks of PRODUCER (NULL: of every producer) as Ack
 * messages: one per producer, contiguous seqs merged into ranges in
 * ascending order, at most max_ack_ranges ranges each (the rest stay noted
 * for the next call), consumer = our id, sent_ms = NOW_MS. Stores a
 * malloc'd array in *ret_acks (NULL when there is nothing) and its length
 * in *ret_n; the caller packs each (wf_dedupe_ack_pack), publishes it on
 * wf/v1/ack/<ack->producer> (wf_dedupe_ack_topic) and frees the array
 * with wf_dedupe_acks_free(). On failure nothing is taken. */
int wf_dedupe_ack_take(struct wf_dedupe *d, const char *producer, int64_t now_ms,
		       Wf__V1__Ack ***ret_acks, size_t *ret_n);

/* Frees an array from wf_dedupe_ack_take. Accepts NULL; returns NULL. */
Wf__V1__Ack **wf_dedupe_acks_free(Wf__V1__Ack **acks, size_t n);

/* Packs ACK into a malloc'd buffer (*ret_buf, the caller frees it) of
 * *ret_len bytes. */
int wf_dedupe_ack_pack(const Wf__V1__Ack *ack, void **ret_buf, size_t *ret_len);

/* Writes the ack topic "wf/v1/ack/<producer>" into BUF of SIZE bytes.
 * -EINVAL for a bad producer id, -ENAMETOOLONG if BUF is too small (a
 * buffer of 11 + WF_PRODUCER_MAX bytes always fits). */
int wf_dedupe_ack_topic(const char *producer, char *buf, size_t size);

#endif
