/* Engine internals shared by engine.c, duty.c and broadcast.c. */
#ifndef DSP_DISPATCH_INTERNAL_H
#define DSP_DISPATCH_INTERNAL_H

#include "cap.h"
#include "dispatch.h"

struct dsp_engine {
	struct wf_store *store;
	struct dsp_config cfg;
	char *service, *cap_sender, *cap_sender_name;
	struct dsp_routing routing;
	const struct wf_region_table *regions;
	struct dsp_dbs db;
	struct wf_codec_limits limits;
	struct dsp_out *out;
	size_t n_out, cap_out;
};

/* Queues an output (copying PAYLOAD), replacing one with the same KEY. */
int dsp_out_push(struct dsp_engine *e, enum dsp_out_kind kind, const char *key, const char *topic,
		 bool retain, const void *payload, size_t len);

/* engine.c: whether ID@VERSION still awaits review (false if unknown). */
bool dsp_review_pending(struct dsp_engine *e, struct wf_txn *t, const char *id, uint32_t version);

/* duty.c */
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
