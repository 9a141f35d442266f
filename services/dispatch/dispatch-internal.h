/* Engine internals shared by engine.c, duty.c and broadcast.c. */
#ifndef DSP_DISPATCH_INTERNAL_H
#define DSP_DISPATCH_INTERNAL_H

#include "cap.h"
#include "dispatch.h"

/* names in a dirty set before it overflows (views.c: then every active
 * warning's view is rebuilt) */
#define DSP_DIRTY_MAX 8192
/* how long a 解除 SMS may wait in Kannel's queue before it is dropped */
#define DSP_CANCEL_SMS_VALID_MS (2 * 3600000LL)

/* A set of names (views.c): the names in order, and an open-addressing
 * index into them (index + 1, 0: empty; n_slots a power of 2, at most half
 * full) */
struct dsp_names {
	char (*v)[130];
	size_t n, cap;
	uint32_t *slots;
	size_t n_slots;
	bool overflow;
};

void dsp_names_free(struct dsp_names *s);
/* FNV-1a of a string (engine.c: the outputs' index; views.c: name sets) */
size_t dsp_key_hash(const char *k);

struct dsp_engine {
	/* dsp_duty_resync: where the previous pass stopped ("" = the start) */
	char resync_cursor[DSP_KEY_MAX];
	struct wf_store *store;
	struct dsp_config cfg;
	char *service, *cap_sender, *cap_sender_name;
	struct dsp_routing routing;
	const struct wf_region_table *regions;
	struct dsp_dbs db;
	struct wf_codec_limits limits;
	struct dsp_out *out;
	size_t n_out, cap_out;
	/* out by key: open addressing, index + 1 (0: empty), cap_idx a power of 2 */
	uint32_t *out_idx;
	size_t cap_idx;
	/* views to republish after the commit (views.c): warning ids and
	 * operators whose records changed; "all" when a set overflowed */
	struct dsp_names dirty_ids, dirty_ops;
	bool dirty_silences, dirty_stats, dirty_all;
	/* a rebuild of all records (dirty_all) goes 4,096 records a pass:
	 * where the next pass starts (empty: at the first key) */
	char all_from[DSP_KEY_MAX];
	size_t all_from_len;
	bool manual_cancel;        /* on_cancel running: delivery targets get "/cancel" */
	int64_t silences_purge_at; /* dsp_silences_purge: next pass (injected time) */
};

/* Queues an output (copying PAYLOAD), replacing one with the same KEY. */
int dsp_out_push(struct dsp_engine *e, enum dsp_out_kind kind, const char *key, const char *topic,
		 bool retain, const void *payload, size_t len);

/* d-review's record: dsp_review has no version byte of its own. */
struct dsp_review_rec {
	uint8_t rec_version;
	struct dsp_review rv;
};

/* due.c: the deadline index (d-due) and the pending-notice list (d-dpend),
 * kept by writing the indexed tables only through dsp_put_indexed. */
#define DSP_DUE_NONE INT64_MIN
enum dsp_due_kind {
	DSP_DUE_EXPIRE = 'c',   /* d-current <id>: an active warning's expiry */
	DSP_DUE_REVIEW = 'r',   /* d-review <id>@<ver>: a pending review's timeout */
	DSP_DUE_DUTY = 'd',     /* d-duty <station>|<id>@<ver>: a pending notice's ack deadline */
	DSP_DUE_FOLLOWUP = 'f', /* d-followup <station>|<id>: the next 续报 reminder */
};
/* Stores REC (the fixed record of KIND's table, SIZE bytes) under KEY and
 * moves its index entries. */
int dsp_put_indexed(struct wf_txn *t, const struct dsp_dbs *d, enum dsp_due_kind kind,
		    const char *key, const void *rec, size_t size);
/* The same, given the record OLD stored under KEY now (as read in this
 * transaction; NULL: none), which saves reading it again. */
int dsp_put_indexed_over(struct wf_txn *t, const struct dsp_dbs *d, enum dsp_due_kind kind,
			 const char *key, const void *rec, size_t size, const void *old);
/* The same for a KEY expected to be new (a record of a version just
 * received): stored without reading first; if KEY is there after all,
 * falls back to dsp_put_indexed. */
int dsp_put_indexed_new(struct wf_txn *t, const struct dsp_dbs *d, enum dsp_due_kind kind,
			const char *key, const void *rec, size_t size);
/* Deletes KEY from KIND's table with its index entries (absent: 0). */
int dsp_del_indexed(struct wf_txn *t, const struct dsp_dbs *d, enum dsp_due_kind kind,
		    const char *key, size_t size);
struct dsp_due_entry {
	int64_t at;
	char kind;
	char key[DSP_KEY_MAX];
};
/* The entries due at NOW (at most MAX, in time order) in a malloc'd *RET
 * (NULL when none), *N of them; each one is removed from the index
 * (processing puts back what is still due). */
int dsp_due_take(struct wf_txn *t, const struct dsp_dbs *d, int64_t now, size_t max,
		 struct dsp_due_entry **ret, size_t *n);
/* The earliest entry's time, INT64_MAX if none. */
int dsp_due_first(struct wf_txn *t, const struct dsp_dbs *d, int64_t *ret);
/* Builds the indexes of a store written before they existed (once: d-meta
 * "index" marks it done). Runs its own write transactions. */
int dsp_index_open(struct wf_store *s, const struct dsp_dbs *d, int64_t retain_ms);
/* Adds the index entries (and pending marks) of every record of KIND's
 * table, adding how many records to *N (index_open; layout.c after it
 * changed the keys). */
int dsp_index_build(struct wf_txn *t, const struct dsp_dbs *d, enum dsp_due_kind kind,
		    int64_t retain_ms, uint64_t *n);

/* Drops the index entries of KIND (and for DSP_DUE_DUTY the pending list)
 * and builds them again from KIND's table (layout.c, after it changed the
 * table's keys). */
int dsp_index_rebuild(struct wf_txn *t, const struct dsp_dbs *d, enum dsp_due_kind kind,
		      int64_t retain_ms);

/* layout.c: converts a store whose tables are keyed as by earlier releases
 * (records by "<id>@<version>", versions in d-warning) to the keys of
 * store.h, once (d-meta "layout" 2), in one transaction; *N: the records
 * converted. -EPROTONOSUPPORT for a store of a newer layout. */
int dsp_layout_open(struct wf_store *s, const struct dsp_dbs *d, int64_t retain_ms, uint64_t *n);

/* retain.c: retention of ended warnings (docs/dispatch.md, "Retention"). */
/* Stores CUR (d-current of ID) through the index and schedules (when CUR
 * ended) or unschedules (when it is active again) ID's purge. */
int dsp_put_current(struct dsp_engine *e, struct wf_txn *t, const char *id,
		    const struct dsp_current *cur, int64_t now);
/* The same, given OLD, the record stored now (NULL: none), read in this
 * transaction: neither it nor (for a warning active before and after: only
 * an ended one has a purge scheduled) the purge schedule is read again. */
int dsp_put_current_over(struct dsp_engine *e, struct wf_txn *t, const char *id,
			 const struct dsp_current *old, const struct dsp_current *cur, int64_t now);
/* Schedules the purge of ID at AT unless one is scheduled already. */
int dsp_retain_schedule(struct wf_txn *t, const struct dsp_dbs *d, const char *id, int64_t at);
/* When the ended warning ID is to be purged (the time it ended + retain),
 * into *AT: 0, or -ENOENT (not ended, or purged). */
int dsp_retain_at(struct wf_txn *t, const struct dsp_dbs *d, const char *id, int64_t *at);
/* Purges at most MAX ended warnings due at NOW; 1 if more are due. */
int dsp_retain_tick(struct dsp_engine *e, struct wf_txn *t, int64_t now, size_t max);
int dsp_retain_next_due(struct dsp_engine *e, struct wf_txn *t, int64_t *due);
/* Deletes the stored silences (d-silence, d-silmeta) that expired more than
 * [dispatch] retain before NOW, at most once a minute; their audit entries
 * stay. */
int dsp_silences_purge(struct dsp_engine *e, struct wf_txn *t, int64_t now);

/* engine.c: whether ID@VERSION still awaits review (false if unknown). */
bool dsp_review_pending(struct dsp_engine *e, struct wf_txn *t, const char *id, uint32_t version);

/* engine.c: the review record of ID@VERSION; -ENOENT. */
int dsp_get_review(struct dsp_engine *e, struct wf_txn *t, const char *id, uint32_t version,
		   struct dsp_review *ret);

/* views.c: marks a warning's record / an operator's verdicts for
 * republication after the commit. */
void dsp_mark_warning(struct dsp_engine *e, const char *id);
void dsp_mark_operator(struct dsp_engine *e, const char *op);

/* audit.c: one operator action (the audit trail, d-audit, and the
 * operator's verdicts, d-verdict); marks both views. */
struct dsp_audit {
	int64_t at_ms, sent_ms;
	const char *operator_, *action, *warning_id;
	uint32_t version;
	bool accepted;
	const char *outcome, *detail;
	const char *producer;
	uint64_t seq;
};
int dsp_audit_add(struct dsp_engine *e, struct wf_txn *t, const struct dsp_audit *a);
#define DSP_VERDICTS_MAX 16u
#define DSP_RECORD_AUDIT_MAX 64u

/* duty.c */
/* A 解除 notice of CW (a manual cancel) to every station notified of
 * CW's version: no acknowledgement needed. */
int dsp_duty_cancel_notice(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Warning *cw,
			   int64_t now);
/* W was released after review: each station whose duty record of W still
 * says pending review gets a RELEASED notice (no acknowledgement, recorded
 * "duty|<station>/released"), and its record is marked released. */
int dsp_duty_released(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Warning *w,
		      int64_t now);
/* After a reconnect: the RELEASED notices of every version released after
 * review in the last 24 h again (d-relq, at most 4,096 versions, whether
 * or not a newer version came or the warning ended since; not one an
 * operator withdrew: its 解除 goes). Consoles drop repeats. A read-only T
 * will do. */
int dsp_duty_released_resync(struct dsp_engine *e, struct wf_txn *t, int64_t now);
/* Notifies the duty stations routed for W (a new version): NOTICE with
 * PENDING_REVIEW, deadlines by level. */
int dsp_duty_notify(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Warning *w,
		    const struct dsp_route_result *route, bool pending_review, int64_t now);
int dsp_duty_ack(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__DutyAck *a, int64_t now,
		 struct wf_codec_error *why);
int dsp_duty_followup(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__FollowUp *f,
		      int64_t now);
/* Deadlines: missed acks, review timeouts, reminders. */
/* A due d-duty entry (ack deadline, KEY "station|id@ver") and a due
 * d-followup one (reminder, KEY "station|id"). */
int dsp_duty_missed(struct dsp_engine *e, struct wf_txn *t, const char *key, int64_t now);
int dsp_duty_remind(struct dsp_engine *e, struct wf_txn *t, const char *key, int64_t now);
int dsp_duty_resync(struct dsp_engine *e, struct wf_txn *t, int64_t now);
/* An operator's withdrawal (解除) of the released version W: the same id
 * and version, msg_type CANCEL, sent AT_MS, no references (a shallow copy:
 * it borrows W's fields). engine.c's on_cancel and the resync below. */
Wf__V1__Warning dsp_withdrawal_of(const Wf__V1__Warning *w, int64_t at_ms);
/* Queues again the 解除 notices of the operators' cancels of the last 24 h
 * (informational: no duty record, so the pending resync misses them) to
 * the stations they went to (delivery targets "<station>/cancel"). */
int dsp_duty_cancel_resync(struct dsp_engine *e, struct wf_txn *t, int64_t now);

/* broadcast.c */
/* Updates the retained states of the counties of W (released; a CANCEL
 * removes it) and of PREV (the version it supersedes, may be NULL). */
int dsp_broadcast_apply(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Warning *w,
			const Wf__V1__Warning *prev, int64_t now);
int dsp_broadcast_tick(struct dsp_engine *e, struct wf_txn *t, int64_t now);
int dsp_broadcast_next_due(struct dsp_engine *e, struct wf_txn *t, int64_t *due);
int dsp_broadcast_resync(struct dsp_engine *e, struct wf_txn *t);

#endif
