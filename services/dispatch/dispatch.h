/* dispatch: the wf-dispatch engine (docs/dispatch.md). It applies inputs
 * (warning versions, approvals, duty acks, follow-ups, silences) and time
 * (deadlines) to its LMDB state inside the caller's write transaction,
 * and queues what must go out (duty notices, retained broadcast states,
 * CAP files) for the caller to publish after the commit.
 *
 * Time is a parameter (NOW_MS) everywhere: under the same inputs and times
 * the engine does the same. Single-threaded. The engine logs per-warning
 * decisions (LOG_INFO) through wf_log.
 *
 * Apply functions return 0 (applied), WF_NODE_REJECT (permanent, *why
 * set: recorded and dead-lettered by the node) or a negative errno
 * (transient: the transaction is aborted). They may run again for the
 * same input when a transaction is retried: outputs are keyed, so a rerun
 * replaces rather than duplicates them. */
#ifndef DSP_DISPATCH_H
#define DSP_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dispatch.pb-c.h"
#include "policy.h"
#include "routing.h"
#include "store.h"
#include "warning.pb-c.h"
#include "wf/codec.h"
#include "wf/region.h"
#include "wf/store.h"
#include "wf/topic.h"

struct dsp_config {
	struct dsp_policy policy;
	int64_t ack_deadline_ms[5];    /* by level; 0: no acknowledgement required */
	int64_t followup_interval_ms;  /* 续报 reminders for I/II (0: none) */
	/* [dispatch] retain: how long the records of an ended warning are kept
	 * (docs/dispatch.md, "Retention"); DSP_RETAIN_MIN_MS..DSP_RETAIN_MAX_MS */
	int64_t retain_ms;
	const char *service;           /* producer id stamped on notices and states */
	const char *cap_sender;        /* CAP <sender> */
	const char *cap_sender_name;   /* CAP <senderName> */
	/* The SMS channel (services/dispatch/sms, wf_sms_enqueue): plan
	 * DELIVERY_KEY ("<id>@<version>") of TEXT to the subscribers of
	 * REGION in T; returns 0, -EMSGSIZE (text too long) or an error. NULL:
	 * SMS is not configured and routed SMS deliveries are recorded as
	 * not_configured. The caller kicks the channel after the commit. */
	int (*sms_enqueue)(void *ud, struct wf_txn *t, const char *delivery_key, const char *region,
			   const char *text, int64_t expires_ms, size_t *ret_planned);
	void *sms_ud;
	/* The CAP spool (dsp_spool_write): the file NAME is written in the
	 * transaction that releases the version, before it commits, so that a
	 * crash after the commit cannot lose it; a transaction aborted and run
	 * again writes it again under the same name (at least once: the
	 * platform dedupes by identifier). A negative errno aborts the
	 * transaction (its inputs are applied again later). NULL: the file is
	 * a DSP_OUT_FILE output, for the caller to write after the commit. */
	int (*cap_write)(void *ud, const char *name, const void *data, size_t len);
	void *cap_ud;
};

#define DSP_RETAIN_MIN_MS (10 * 60000LL)          /* 10 minutes */
#define DSP_RETAIN_MAX_MS (3660 * 86400000LL)     /* ten years */
#define DSP_RETAIN_DEFAULT_MS (30 * 86400000LL)   /* 30 days */

/* ack deadlines I 5m, II 10m, III 30m, IV 1h; reminders every 30m; retain
 * 30 days. */
void dsp_config_defaults(struct dsp_config *c);
/* 0, or -EINVAL with the reason in ERR (e.g. retain below its bound). */
int dsp_config_check(const struct dsp_config *c, char *err, size_t errlen);

enum dsp_out_kind {
	DSP_OUT_MQTT = 0,   /* publish PAYLOAD on TOPIC (QoS 1, RETAIN) */
	DSP_OUT_FILE,       /* write PAYLOAD to the CAP spool as NAME (atomically) */
	DSP_OUT_VIEW,       /* publish PAYLOAD on TOPIC, retained, QoS 0: a view, which
			     * every reconnect republishes whole (dsp_engine_views) */
};

struct dsp_out {
	enum dsp_out_kind kind;
	char key[DSP_KEY_MAX];      /* identity: a later output with the same key replaces it */
	char topic[WF_TOPIC_MAX + 96]; /* MQTT topic (views: wf/v1/review/<id>), or file name */
	bool retain;
	uint8_t *payload;           /* LEN bytes, then a NUL (not counted) */
	size_t len;
};

struct dsp_engine;

/* Creates the engine on STORE (opening its databases: call outside any
 * write transaction). CFG's strings are copied. ROUTING is taken over (the
 * engine frees it). REGIONS is borrowed for the engine's lifetime (may be
 * NULL: region names then fall back to codes). */
int dsp_engine_new(struct wf_store *store, const struct dsp_config *cfg,
		   struct dsp_routing *routing, const struct wf_region_table *regions,
		   struct dsp_engine **ret);
struct dsp_engine *dsp_engine_free(struct dsp_engine *e);

/* Replaces the routing (reload); the old one is freed. */
void dsp_engine_set_routing(struct dsp_engine *e, struct dsp_routing *routing);
const struct dsp_routing *dsp_engine_routing(const struct dsp_engine *e);
const struct dsp_dbs *dsp_engine_dbs(const struct dsp_engine *e);

/* Inputs. W (and MSG) as the codec's unpack returned them: checked and
 * normalised (W is stored as it is, not checked again). */
int dsp_engine_warning(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Warning *w,
		       int64_t now_ms, struct wf_codec_error *why);
int dsp_engine_control(struct dsp_engine *e, struct wf_txn *t, enum wf_topic_kind kind,
		       const ProtobufCMessage *msg, int64_t now_ms, struct wf_codec_error *why);

/* Time: handles every deadline due at NOW_MS (missed acks escalate, review
 * timeouts escalate, follow-up reminders, expired broadcast items) from the
 * deadline index, and purges at most a few ended warnings past retain (the
 * rest stay due: dsp_engine_next_due then says NOW, call again). */
int dsp_engine_tick(struct dsp_engine *e, struct wf_txn *t, int64_t now_ms);
/* The earliest time something is due (*RET_MS INT64_MAX: nothing). */
int dsp_engine_next_due(struct dsp_engine *e, struct wf_txn *t, int64_t *ret_ms);

/* Queues every retained broadcast state and every notice still awaiting
 * acknowledgement again (after a reconnect: direct publishes made while
 * the broker was away are lost). */
int dsp_engine_resync(struct dsp_engine *e, struct wf_txn *t, int64_t now_ms);
/* Queue the notices still awaiting acknowledgement again (the periodic
 * [duty] resend: consoles drop repeats), at most 4096 per call, each call
 * going on where the previous stopped. Both return 1 when notices are left
 * for a next call (call again), 0 at the end. */
int dsp_engine_resync_duty(struct dsp_engine *e, struct wf_txn *t, int64_t now_ms);

/* Outputs queued since the last clear, in order; borrowed until the clear. */
size_t dsp_engine_outputs(const struct dsp_engine *e, const struct dsp_out **ret);
void dsp_engine_outputs_clear(struct dsp_engine *e);

/* Views (docs/protocol.md, "Dispatcher views"): queues the retained
 * records that changed since the last call, built from the committed state
 * in T (a read transaction after the commit is enough): wf/v1/review/<id>
 * (WarningRecord), wf/v1/verdict/<operator> (OperatorVerdicts),
 * wf/v1/silences/<service> (SilenceList) and, when WITH_STATS,
 * wf/v1/stats/<service> (DispatchStats, with EXTRA process counters). */
struct dsp_stats_extra;
int dsp_engine_views(struct dsp_engine *e, struct wf_txn *t, int64_t now_ms, bool with_stats,
		     const struct dsp_stats_extra *extra, size_t n_extra);
/* Everything again (after a reconnect: the broker may have lost them). */
void dsp_engine_views_mark_all(struct dsp_engine *e);
/* Whether dsp_engine_views has something to do (STATS: counting stats). */
bool dsp_engine_views_pending(const struct dsp_engine *e, bool stats);

/* The WarningRecord of ID (packed into a malloc'd *RET), -ENOENT. */
int dsp_engine_record(struct dsp_engine *e, struct wf_txn *t, const char *id, int64_t now_ms,
		      uint8_t **ret, size_t *ret_len);

/* The delivery record of (ID@VERSION, CHANNEL, TARGET); -ENOENT. */
int dsp_engine_delivery(struct dsp_engine *e, struct wf_txn *t, const char *id, uint32_t version,
			const char *channel, const char *target, struct dsp_delivery *ret);

#endif
