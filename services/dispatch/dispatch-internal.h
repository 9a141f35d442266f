/* Engine internals shared by engine.c, duty.c and broadcast.c. */
#ifndef DSP_DISPATCH_INTERNAL_H
#define DSP_DISPATCH_INTERNAL_H

#include "cap.h"
#include "dispatch.h"

#define DSP_DIRTY_MAX 1024
/* how long a 解除 SMS may wait in Kannel's queue before it is dropped */
#define DSP_CANCEL_SMS_VALID_MS (2 * 3600000LL)

struct dsp_names {
	char (*v)[130];
	size_t n, cap;
	bool overflow;
};

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
	/* views to republish after the commit (views.c): warning ids and
	 * operators whose records changed; "all" when a set overflowed */
	struct dsp_names dirty_ids, dirty_ops;
	bool dirty_silences, dirty_stats, dirty_all;
	bool manual_cancel;        /* on_cancel running: delivery targets get "/cancel" */
};

/* Queues an output (copying PAYLOAD), replacing one with the same KEY. */
int dsp_out_push(struct dsp_engine *e, enum dsp_out_kind kind, const char *key, const char *topic,
		 bool retain, const void *payload, size_t len);

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
/* Notifies the duty stations routed for W (a new version): NOTICE with
 * PENDING_REVIEW, deadlines by level. */
int dsp_duty_notify(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Warning *w,
		    const struct dsp_route_result *route, bool pending_review, int64_t now);
int dsp_duty_ack(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__DutyAck *a, int64_t now,
		 struct wf_codec_error *why);
int dsp_duty_followup(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__FollowUp *f,
		      int64_t now);
/* Deadlines: missed acks, review timeouts, reminders. */
int dsp_duty_tick(struct dsp_engine *e, struct wf_txn *t, int64_t now);
int dsp_duty_next_due(struct dsp_engine *e, struct wf_txn *t, int64_t *due);
int dsp_duty_resync(struct dsp_engine *e, struct wf_txn *t, int64_t now);

/* broadcast.c */
/* Updates the retained states of the counties of W (released; a CANCEL
 * removes it) and of PREV (the version it supersedes, may be NULL). */
int dsp_broadcast_apply(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Warning *w,
			const Wf__V1__Warning *prev, int64_t now);
int dsp_broadcast_tick(struct dsp_engine *e, struct wf_txn *t, int64_t now);
int dsp_broadcast_next_due(struct dsp_engine *e, struct wf_txn *t, int64_t *due);
int dsp_broadcast_resync(struct dsp_engine *e, struct wf_txn *t);

#endif
