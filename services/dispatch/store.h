/* store: the dispatcher's LMDB state (docs/dispatch.md, "State"), in the
 * node's store next to its outbox and dedupe state, so one transaction
 * covers an input's dedupe record and its effect.
 *
 *   d-wver      <id>@<version>          u64 BE: the version's place in d-wlog
 *   d-wlog      <seq u64 BE>            packed Warning (each version received, in
 *                                       arrival order: appended, store.c)
 *   d-warning   <id>@<version>          packed Warning: versions stored by
 *                                       earlier releases, moved to d-wlog at the
 *                                       first start (layout.c); never read
 *   d-current   <id>                    struct dsp_current
 *   d-review    <v>                     struct dsp_review (policy.h)
 *   d-delivery  <v>|<ch>|<target>       struct dsp_delivery
 *   d-duty      <station>|<v>           struct dsp_duty (ack deadlines)
 *   d-followup  <station>|<id>          struct dsp_followup (续报 reminders)
 *   d-bcast     <ppccdd>                packed BroadcastState (retained state)
 *               <ppccdd>+               packed BroadcastState: the items left out
 *                                       of a full state (broadcast.c)
 *   d-silence   <id>                    struct dsp_silence (routing.h)
 *   d-silmeta   <id>                    struct dsp_silmeta (who sent a silence, when)
 *   d-audit     <id>|<at>|<producer>|<seq>  packed AuditEntry (the audit trail;
 *                                       <id> "~silence" for silences)
 *   d-verdict   <operator>              packed OperatorVerdicts (latest 16)
 *   d-cancel    <id>                    struct dsp_cancel (manual 解除 by an operator)
 *   d-stats     "all"                   struct dsp_stats (stats.c)
 *   d-due       <due u64 BE><kind><key>  empty: the deadline index (due.c) of
 *                                       d-current expiries ('c'), d-review
 *                                       timeouts ('r'), d-duty ack deadlines
 *                                       ('d') and d-followup reminders ('f')
 *   d-dpend     <station>|<v>           empty: the d-duty notices still PENDING
 *                                       (the [duty] resend's list)
 *   d-purge     <id>                    int64 purge time of an ended warning (retain.c)
 *   d-purgeq    <at u64 BE><id>         empty: d-purge by time
 *   d-relq      <at u64 BE><id>@<ver>   empty: versions released after review
 *                                       whose stations got a RELEASED notice, by
 *                                       release time (the resync's list, 24 h)
 *   d-meta      "index"                 uint8 version of the indexes above (1)
 *               "layout"                uint8 version of the keys (2; layout.c
 *                                       converts a store of an earlier release)
 *
 * <v>, a version's key, is "<seq>:<id>@<version>": <seq> its d-wlog
 * sequence number in 16 hex digits ("0000000000000000" for a version not
 * stored, e.g. a refused approval of an unknown one), so the records of
 * the versions of a batch sit together at the end of each table instead
 * of all over it (docs/dispatch.md, "State"). dsp_key_* find <seq> in
 * d-wver.
 *
 * Fixed records are stored in host layout behind a version byte, zero runs
 * elided (dsp_put_rec): a state directory moves between machines of the
 * same architecture only. */
#ifndef DSP_STORE_H
#define DSP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "routing.h"
#include "warning.pb-c.h"
#include "wf/store.h"

#define DSP_KEY_MAX 320

struct dsp_stats_cache;

/* The next d-wlog sequence number during write transaction T (found
 * once per transaction; forgotten by T's hook). */
struct dsp_wlog_cache {
	struct wf_txn *t;
	bool have_next;
	uint64_t next;
	/* the version looked up (or stored) last in T */
	bool have_last;
	uint32_t last_version;
	uint64_t last_seq;
	char last_id[DSP_KEY_MAX];
};

struct dsp_dbs {
	unsigned warning, current, review, delivery, duty, followup, bcast, silence;
	unsigned silmeta, audit, verdict, cancel, stats;
	unsigned due, dpend, purge, purgeq, meta, relq;
	unsigned wver, wlog;
	struct dsp_wlog_cache *wlog_cache; /* the engine's; NULL: looked up per version */
	/* the engine's: d-stats changed in memory during a write transaction
	 * and written once before it commits (stats.c); NULL: each change is
	 * written at once */
	struct dsp_stats_cache *stats_cache;
};

/* Opens (creating) the databases. Runs its own write transactions. */
int dsp_store_open(struct wf_store *s, struct dsp_dbs *ret);

struct dsp_current {
	uint8_t rec_version;          /* 1 */
	uint8_t level, msg_type, status;
	uint8_t active;               /* not cancelled, not expired */
	uint8_t released_level;
	uint32_t latest;              /* highest version received */
	uint32_t released;            /* highest version released to the public (0: none) */
	int64_t expires_ms;
};

enum dsp_delivery_state {
	DSP_DLV_SENT = 0,        /* handed to the channel (MQTT, spool) */
	DSP_DLV_ACKED,           /* duty: acknowledged in time */
	DSP_DLV_ACKED_LATE,      /* duty: acknowledged after escalation */
	DSP_DLV_MISSED,          /* duty: deadline passed, escalated */
	DSP_DLV_MISSED_TOP,      /* duty: deadline passed, no station above */
	DSP_DLV_ESCALATED,       /* duty: received an escalation */
	DSP_DLV_SILENCED,        /* a silence was in force (detail: its id and reason) */
	DSP_DLV_BLOCKED,         /* exercise/test: never public */
	DSP_DLV_NOT_CONFIGURED,  /* routed to a channel this build/config lacks */
	DSP_DLV_SUPERSEDED,      /* duty: a newer version replaced it before its deadline */
	DSP_DLV_REVIEW_TIMEOUT,  /* review took too long: escalated */
	DSP_DLV_APPROVED,        /* review: an approval counted (target: operator) */
	DSP_DLV_REFUSED,         /* review: an approval refused (detail: why) */
	DSP_DLV_REJECTED,        /* review: an operator rejected the version */
	DSP_DLV_FOLLOWUP,        /* a follow-up report was filed */
	DSP_DLV_REMINDED,        /* a follow-up reminder went out (detail: count) */
	DSP_DLV_SKIPPED,         /* nothing to do on the channel (a cancel of an unreleased warning) */
	DSP_DLV_CANCELLED,       /* review: an operator withdrew the released version (解除) */
	DSP_DLV_LEFT_OUT,        /* broadcast: not in the county's state, which was full */
	DSP_DLV_STATE_MAX,
};

const char *dsp_delivery_state_to_string(enum dsp_delivery_state s);

struct dsp_delivery {
	uint8_t rec_version;
	uint8_t state;            /* enum dsp_delivery_state */
	int64_t at_ms;
	char detail[96];
};

enum dsp_duty_state { DSP_DUTY_PENDING = 0, DSP_DUTY_ACKED, DSP_DUTY_ESCALATED, DSP_DUTY_SUPERSEDED };

struct dsp_duty {
	uint8_t rec_version;
	uint8_t state;            /* enum dsp_duty_state */
	uint8_t kind;             /* Wf__V1__NoticeKind of the notice that created it */
	uint8_t pending_review;
	int64_t sent_ms;
	int64_t deadline_ms;      /* 0: no acknowledgement required */
	int64_t acked_ms;
	char operator_[65];
	char from[65];            /* ESCALATION: the station that missed it */
};

struct dsp_followup {
	uint8_t rec_version;
	uint8_t done;             /* 1: follow-up filed; 2: warning ended */
	uint32_t reminders;
	int64_t next_ms;
};

/* A manual cancel (DECISION_CANCEL) of a warning. */
struct dsp_cancel {
	uint8_t rec_version;      /* 1 */
	uint8_t hold;             /* 1: later versions need review, even auto ones */
	uint32_t version;         /* the released version withdrawn */
	int64_t at_ms;
	char operator_[65];
	char reason[97];
};

/* Who sent a silence message, and when. */
struct dsp_silmeta {
	uint8_t rec_version;      /* 1 */
	char operator_[65];
	int64_t sent_ms, applied_ms;
};

/* Keys. Return the key length, or -ENAMETOOLONG (or an error reading
 * d-wver). */
/* "<id>@<version>" (d-wver) */
int dsp_key_version(char *buf, size_t size, const char *id, uint32_t version);
/* "<seq>:<id>@<version>", given SEQ */
#define DSP_SEQ_HEX 16
int dsp_key_vkey(char *buf, size_t size, uint64_t seq, const char *id, uint32_t version);
/* The d-wlog sequence number of ID@VERSION in *RET: 0 if not stored. */
int dsp_version_seq(struct wf_txn *t, const struct dsp_dbs *d, const char *id, uint32_t version,
		    uint64_t *ret);
/* d-review's key of ID@VERSION */
int dsp_key_review(struct wf_txn *t, const struct dsp_dbs *d, char *buf, size_t size,
		   const char *id, uint32_t version);
int dsp_key_delivery(struct wf_txn *t, const struct dsp_dbs *d, char *buf, size_t size,
		     const char *id, uint32_t version, const char *channel, const char *target);
int dsp_key_duty(struct wf_txn *t, const struct dsp_dbs *d, char *buf, size_t size,
		 const char *station, const char *id, uint32_t version);
int dsp_key_followup(char *buf, size_t size, const char *station, const char *id);
/* "notice|<station>|<id>@<version>|<kind>|<deadline>|<msg_type>": the output
 * identity of a duty notice (not a store key: a resync replaces it) */
int dsp_key_notice(char *buf, size_t size, const char *station, const char *id, uint32_t version,
		   int kind, int64_t deadline, int msg_type);
/* "<seq>:<id>@": the key prefix of every d-review and d-delivery record of
 * the version numbered SEQ (of warning ID). */
int dsp_key_vprefix(char *buf, size_t size, uint64_t seq, const char *id);
/* KEY past its "<seq>:" (KEY itself if it has none): "<id>@<ver>...". */
const char *dsp_key_skip_seq(const char *key);
/* The key prefixes of every record of ID's versions in d-review and
 * d-delivery, "<seq>:<id>@" for each stored version and
 * "0000000000000000:<id>@" for the versions not stored, in a malloc'd
 * *RET (*N of them). */
int dsp_version_prefixes(struct wf_txn *t, const struct dsp_dbs *d, const char *id,
			 char (**ret)[DSP_KEY_MAX], size_t *n);

/* Fixed-record get/put: get returns 0, -ENOENT, or -EBADMSG for a record
 * of another size/version. Records are stored compact (store.c): zero
 * runs elided, the record restored exactly on get. */
#define DSP_REC_ENCODED_MAX(size) (1 + (size) + (size) / 128 + 1)
/* Encodes the SIZE bytes of REC into OUT (room for DSP_REC_ENCODED_MAX(SIZE)
 * bytes); returns the length. */
size_t dsp_rec_encode(const void *rec, size_t size, uint8_t *out);
/* Decodes stored value VAL (LEN bytes; compact, or the raw record of an
 * earlier release) into the SIZE bytes of REC: 0, or -EBADMSG if it is not
 * a whole record of that size and layout version. For foreach callbacks. */
int dsp_rec_decode(const void *val, size_t len, void *rec, size_t size);
int dsp_get_rec(struct wf_txn *t, unsigned dbi, const char *key, void *rec, size_t size);
int dsp_put_rec(struct wf_txn *t, unsigned dbi, const char *key, const void *rec, size_t size);
/* dsp_put_rec with wf_store_put FLAGS (e.g. WF_STORE_PUT_NOOVERWRITE: -EEXIST
 * if KEY is there). */
int dsp_put_rec_flags(struct wf_txn *t, unsigned dbi, const char *key, const void *rec,
		      size_t size, unsigned flags);

/* The delivery record for (ID@VERSION, CHANNEL, TARGET): STATE at AT_MS
 * with a printf DETAIL. */
/* Also counts the record in d-stats (dsp_stats_count). */
int dsp_record(struct wf_txn *t, const struct dsp_dbs *d, const char *id, uint32_t version,
	       const char *channel, const char *target, enum dsp_delivery_state state,
	       int64_t at_ms, const char *fmt, ...) __attribute__((format(printf, 9, 10)));

/* Stores packed version ID@VERSION (BUF, LEN), replacing a stored copy. */
int dsp_put_warning(struct wf_txn *t, const struct dsp_dbs *d, const char *id, uint32_t version,
		    const void *buf, size_t len);
/* Deletes every key of DBI that starts with PREFIX (e.g. "<id>@"), adding
 * how many to *N. */
int dsp_del_prefix(struct wf_txn *t, unsigned dbi, const char *prefix, uint64_t *n);
/* Deletes every stored version whose key starts with PREFIX ("<id>@"),
 * adding the number of keys deleted to *N. */
int dsp_del_warnings(struct wf_txn *t, const struct dsp_dbs *d, const char *prefix, uint64_t *n);

/* Loads the version numbered SEQ in d-wlog (dsp_version_seq), -ENOENT if
 * none. */
int dsp_get_warning_seq(struct wf_txn *t, const struct dsp_dbs *d, uint64_t seq,
			Wf__V1__Warning **ret);
/* Loads version ID@VERSION (unpacked; free with wf_codec_warning_free),
 * -ENOENT if never received. */
int dsp_get_warning(struct wf_txn *t, const struct dsp_dbs *d, const char *id, uint32_t version,
		    Wf__V1__Warning **ret);

#endif
