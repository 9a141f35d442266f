/* engine: warning versions, the release workflow and public delivery (see
 * dispatch.h). Duty stations are in duty.c, broadcast state in
 * broadcast.c, CAP rendering in cap.c. */
#include "dispatch-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "wf/log.h"
#include "wf/node.h"


void dsp_config_defaults(struct dsp_config *c)
{
	memset(c, 0, sizeof *c);
	dsp_policy_defaults(&c->policy);
	c->ack_deadline_ms[WF__V1__LEVEL__LEVEL_I] = 5 * 60000;
	c->ack_deadline_ms[WF__V1__LEVEL__LEVEL_II] = 10 * 60000;
	c->ack_deadline_ms[WF__V1__LEVEL__LEVEL_III] = 30 * 60000;
	c->ack_deadline_ms[WF__V1__LEVEL__LEVEL_IV] = 60 * 60000;
	c->followup_interval_ms = 30 * 60000;
}

static char *dup_or_null(const char *s, bool *oom)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*oom = true;
	return d;
}

int dsp_engine_new(struct wf_store *store, const struct dsp_config *cfg,
		   struct dsp_routing *routing, const struct wf_region_table *regions,
		   struct dsp_engine **ret)
{
	bool oom = false;
	if (!store || !cfg || !routing || !ret || !cfg->service || !wf_topic_id_valid(cfg->service))
		return -EINVAL;
	struct dsp_engine *e = calloc(1, sizeof *e);
	if (!e)
		return -ENOMEM;
	e->store = store;
	e->cfg = *cfg;
	e->service = dup_or_null(cfg->service, &oom);
	e->cap_sender = dup_or_null(cfg->cap_sender, &oom);
	e->cap_sender_name = dup_or_null(cfg->cap_sender_name, &oom);
	e->cfg.service = e->service;
	e->cfg.cap_sender = e->cap_sender;
	e->cfg.cap_sender_name = e->cap_sender_name;
	e->regions = regions;
	wf_codec_limits_init(&e->limits);
	int r = oom ? -ENOMEM : dsp_store_open(store, &e->db);
	if (r < 0) {
		dsp_engine_free(e);
		return r;
	}
	e->routing = *routing;
	memset(routing, 0, sizeof *routing);
	*ret = e;
	return 0;
}

struct dsp_engine *dsp_engine_free(struct dsp_engine *e)
{
	if (!e)
		return NULL;
	dsp_engine_outputs_clear(e);
	free(e->out);
	dsp_routing_free(&e->routing);
	free(e->service);
	free(e->cap_sender);
	free(e->cap_sender_name);
	free(e);
	return NULL;
}

void dsp_engine_set_routing(struct dsp_engine *e, struct dsp_routing *routing)
{
	dsp_routing_free(&e->routing);
	e->routing = *routing;
	memset(routing, 0, sizeof *routing);
}

const struct dsp_routing *dsp_engine_routing(const struct dsp_engine *e) { return &e->routing; }
const struct dsp_dbs *dsp_engine_dbs(const struct dsp_engine *e) { return &e->db; }

/* --- outputs --- */

int dsp_out_push(struct dsp_engine *e, enum dsp_out_kind kind, const char *key, const char *topic,
		 bool retain, const void *payload, size_t len)
{
	struct dsp_out *o = NULL;
	for (size_t i = 0; i < e->n_out; i++)
		if (strcmp(e->out[i].key, key) == 0) {
			o = &e->out[i];
			free(o->payload);
			o->payload = NULL;
			break;
		}
	if (!o) {
		if (e->n_out == e->cap_out) {
			size_t nc = e->cap_out ? e->cap_out * 2 : 16;
			struct dsp_out *n = realloc(e->out, nc * sizeof *n);
			if (!n)
				return -ENOMEM;
			e->out = n;
			e->cap_out = nc;
		}
		o = &e->out[e->n_out++];
		memset(o, 0, sizeof *o);
	}
	o->kind = kind;
	snprintf(o->key, sizeof o->key, "%s", key);
	snprintf(o->topic, sizeof o->topic, "%s", topic);
	o->retain = retain;
	o->payload = malloc(len + 1);
	if (!o->payload) {
		o->len = 0;
		return -ENOMEM;
	}
	memcpy(o->payload, payload, len);
	o->payload[len] = 0; /* a text payload (CAP) may be read as a string */
	o->len = len;
	return 0;
}

size_t dsp_engine_outputs(const struct dsp_engine *e, const struct dsp_out **ret)
{
	*ret = e->out;
	return e->n_out;
}

void dsp_engine_outputs_clear(struct dsp_engine *e)
{
	for (size_t i = 0; i < e->n_out; i++)
		free(e->out[i].payload);
	e->n_out = 0;
}

int dsp_engine_delivery(struct dsp_engine *e, struct wf_txn *t, const char *id, uint32_t version,
			const char *channel, const char *target, struct dsp_delivery *ret)
{
	char key[DSP_KEY_MAX];
	int r = dsp_key_delivery(key, sizeof key, id, version, channel, target);
	if (r < 0)
		return r;
	return dsp_get_rec(t, e->db.delivery, key, ret, sizeof *ret);
}

/* --- stored silences (from Silence messages) --- */

struct silences {
	struct dsp_silence *v;
	size_t n;
};

static int silence_cb(void *ud, const void *k, size_t kl, const void *val, size_t vl)
{
	struct silences *s = ud;
	if (vl != sizeof(struct dsp_silence) || s->n >= DSP_MAX_SILENCES)
		return 0;
	memcpy(&s->v[s->n++], val, vl);
	return 0;
}

static int load_silences(struct dsp_engine *e, struct wf_txn *t, struct silences *s)
{
	s->n = 0;
	s->v = calloc(DSP_MAX_SILENCES, sizeof *s->v);
	if (!s->v)
		return -ENOMEM;
	return wf_store_foreach(t, e->db.silence, NULL, 0, silence_cb, s);
}

/* --- release to public channels --- */

static int cap_output(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Warning *w,
		      const struct dsp_current *cur, int64_t now)
{
	struct dsp_cap_options o = { e->cfg.cap_sender, e->cfg.cap_sender_name, e->regions };
	struct dsp_cap_ref ref;
	size_t n_refs = 0;
	char *xml = NULL, name[WF_TOPIC_MAX], key[DSP_KEY_MAX];
	size_t len = 0;

	/* an Update/Cancel refers to the CAP message last published */
	if (w->msg_type != WF__V1__MSG_TYPE__MSG_TYPE_ALERT && cur->released > 0) {
		Wf__V1__Warning *prev = NULL;
		if (dsp_get_warning(t, &e->db, w->id, cur->released, &prev) == 0) {
			dsp_cap_identifier(prev->id, prev->version, ref.identifier,
					   sizeof ref.identifier);
			ref.sent_ms = prev->sent_ms;
			n_refs = 1;
			wf_codec_warning_free(prev);
		}
	}
	/* the first version the public sees is an Alert, whatever fusion's count */
	Wf__V1__Warning first;
	if (w->msg_type == WF__V1__MSG_TYPE__MSG_TYPE_UPDATE && n_refs == 0) {
		first = *w;
		first.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_ALERT;
		first.n_references = 0;
		w = &first;
	}
	int r = dsp_cap_render(&o, w, &ref, n_refs, &xml, &len);
	if (r < 0)
		return r;
	char ident[160];
	dsp_cap_identifier(w->id, w->version, ident, sizeof ident);
	snprintf(name, sizeof name, "%.120s.xml", ident);
	snprintf(key, sizeof key, "cap|%s", ident);
	r = dsp_out_push(e, DSP_OUT_FILE, key, name, false, xml, len);
	free(xml);
	if (r == 0)
		r = dsp_record(t, &e->db, w->id, w->version, "cap", "spool", DSP_DLV_SENT, now, "%s",
			       name);
	return r;
}

/* SMS text: "【sender】headline" (or the hazard and colour), shortened to
 * the bare signal name if the channel finds it too long. */
static int sms_output(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Warning *w,
		      int64_t now)
{
	char key[160], text[1024];
	size_t total = 0;
	const char *hz = wf_hazard_name_zh(w->hazard), *col = wf_level_colour_zh(w->level);
	bool cancel = w->msg_type == WF__V1__MSG_TYPE__MSG_TYPE_CANCEL;
	int r = 0;

	if (!e->cfg.sms_enqueue)
		/* the SMS channel is not configured: recorded, so the gap is visible */
		return dsp_record(t, &e->db, w->id, w->version, "sms", "*", DSP_DLV_NOT_CONFIGURED,
				  now, "sms channel not configured ([sms] sendsms_url)");
	snprintf(key, sizeof key, "%s@%u", w->id, w->version);
	snprintf(text, sizeof text, "【%s】%s%s%s预警%s%s", e->cfg.cap_sender_name ? e->cfg.cap_sender_name : "预警",
		 cancel ? "解除" : "", hz ? hz : "", col ? col : "",
		 w->headline && *w->headline ? "：" : "", w->headline ? w->headline : "");
	for (size_t i = 0; r == 0 && i < w->n_regions; i++) {
		size_t planned = 0;
		r = e->cfg.sms_enqueue(e->cfg.sms_ud, t, key, w->regions[i], text, w->expires_ms,
				       &planned);
		if (r == -EMSGSIZE) {
			snprintf(text, sizeof text, "%s%s%s预警", cancel ? "解除" : "", hz ? hz : "",
				 col ? col : "");
			r = e->cfg.sms_enqueue(e->cfg.sms_ud, t, key, w->regions[i], text, w->expires_ms,
					       &planned);
		}
		total += planned;
	}
	if (r < 0)
		return r;
	return dsp_record(t, &e->db, w->id, w->version, "sms", "*", DSP_DLV_SENT, now,
			  "%zu recipients planned", total);
}

/* Delivers released version W to the public channels its routes name. */
static int release(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Warning *w,
		   struct dsp_current *cur, int64_t now)
{
	struct dsp_route_result route;
	struct silences sil = { 0 };
	Wf__V1__Warning *prev = NULL;
	int r;

	dsp_routing_match(&e->routing, w, &route);
	unsigned pub = route.channels & DSP_CH_PUBLIC;
	if (!dsp_policy_public_allowed(w->status)) {
		/* exercise / test: recorded, never sent, whatever the routes say */
		for (int c = 0; c < DSP_CH_MAX; c++)
			if (pub & DSP_CH_BIT(c)) {
				r = dsp_record(t, &e->db, w->id, w->version, dsp_channel_to_string(c), "*",
					       DSP_DLV_BLOCKED, now, "status %s never reaches the public",
					       wf_status_to_string(w->status));
				if (r < 0)
					return r;
			}
		wf_log(LOG_INFO, "release", "%s@%u (%s): public channels blocked", w->id, w->version,
		       wf_status_to_string(w->status));
		return 0;
	}
	if (w->msg_type == WF__V1__MSG_TYPE__MSG_TYPE_CANCEL && cur->released == 0) {
		/* the public never saw it: nothing to retract */
		for (int c = 0; c < DSP_CH_MAX; c++)
			if (pub & DSP_CH_BIT(c)) {
				r = dsp_record(t, &e->db, w->id, w->version, dsp_channel_to_string(c), "*",
					       DSP_DLV_SKIPPED, now, "cancel of a warning never released");
				if (r < 0)
					return r;
			}
		wf_log(LOG_INFO, "release", "%s@%u cancels a warning never released: public channels "
					    "skipped", w->id, w->version);
		return 0;
	}
	r = load_silences(e, t, &sil);
	if (r < 0)
		goto out;
	if (cur->released > 0 && cur->released < w->version &&
	    dsp_get_warning(t, &e->db, w->id, cur->released, &prev) < 0)
		prev = NULL;
	for (int c = DSP_CH_BROADCAST; c < DSP_CH_MAX && r >= 0; c++) {
		if (!(pub & DSP_CH_BIT(c)))
			continue;
		const char *cn = dsp_channel_to_string(c);
		const struct dsp_silence *s = dsp_routing_silenced(&e->routing, sil.v, sil.n, c, w, now);
		if (s) {
			r = dsp_record(t, &e->db, w->id, w->version, cn, "*", DSP_DLV_SILENCED, now,
				       "silence %.40s: %.40s", s->id, s->reason);
			wf_log(LOG_INFO, "release", "%s@%u: %s silenced by %s (%s)", w->id, w->version, cn,
			       s->id, s->reason);
			continue;
		}
		switch (c) {
		case DSP_CH_BROADCAST:
			r = dsp_broadcast_apply(e, t, w, prev, now);
			break;
		case DSP_CH_CAP:
			r = cap_output(e, t, w, cur, now);
			break;
		case DSP_CH_SMS:
			r = sms_output(e, t, w, now);
			break;
		default:
			break;
		}
	}
	if (r >= 0) {
		cur->released = w->version;
		cur->released_level = (uint8_t)w->level;
		wf_log(LOG_INFO, "release", "%s@%u released (level %s, %s)", w->id, w->version,
		       wf_level_to_string(w->level), wf_msg_type_to_string(w->msg_type));
	}
out:
	wf_codec_warning_free(prev);
	free(sil.v);
	return r < 0 ? r : 0;
}

static int put_current(struct dsp_engine *e, struct wf_txn *t, const char *id,
		       const struct dsp_current *cur)
{
	return dsp_put_rec(t, e->db.current, id, cur, sizeof *cur);
}

/* dsp_review has no version byte of its own: wrap it. */
struct review_rec {
	uint8_t rec_version;
	struct dsp_review rv;
};

static int get_review(struct dsp_engine *e, struct wf_txn *t, const char *id, uint32_t version,
		      struct dsp_review *ret)
{
	char key[DSP_KEY_MAX];
	struct review_rec rec;
	int r = dsp_key_version(key, sizeof key, id, version);
	if (r < 0)
		return r;
	r = dsp_get_rec(t, e->db.review, key, &rec, sizeof rec);
	if (r == 0)
		*ret = rec.rv;
	return r;
}

bool dsp_review_pending(struct dsp_engine *e, struct wf_txn *t, const char *id, uint32_t version)
{
	struct dsp_review rv;
	return get_review(e, t, id, version, &rv) == 0 &&
	       rv.state == WF__V1__REVIEW_STATE__REVIEW_PENDING;
}

static int store_review(struct dsp_engine *e, struct wf_txn *t, const char *id,
			const struct dsp_review *rv)
{
	struct review_rec rec;
	memset(&rec, 0, sizeof rec);
	rec.rec_version = 1;
	rec.rv = *rv;
	char key[DSP_KEY_MAX];
	int r = dsp_key_version(key, sizeof key, id, rv->version);
	return r < 0 ? r : dsp_put_rec(t, e->db.review, key, &rec, sizeof rec);
}

int dsp_engine_warning(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Warning *w,
		       int64_t now, struct wf_codec_error *why)
{
	struct dsp_current cur;
	char key[DSP_KEY_MAX];
	int r = dsp_get_rec(t, e->db.current, w->id, &cur, sizeof cur);

	if (r == -ENOENT) {
		memset(&cur, 0, sizeof cur);
		cur.rec_version = 1;
	} else if (r < 0) {
		return r;
	}
	if (cur.latest >= w->version) {
		/* an old or repeated version (e.g. a rebuilt fusion state): nothing new */
		wf_log(LOG_INFO, "warning", "%s@%u ignored: version %u already known", w->id,
		       w->version, cur.latest);
		return 0;
	}
	/* keep the version (CAP references, notices rebuilt on resync) */
	uint8_t *buf = NULL;
	size_t len = 0;
	r = wf_codec_warning_pack(w, &e->limits, w->sent_ms, &buf, &len, why);
	if (r == -EBADMSG)
		return WF_NODE_REJECT;
	if (r < 0)
		return r;
	int kl = dsp_key_version(key, sizeof key, w->id, w->version);
	r = kl < 0 ? kl : wf_store_put(t, e->db.warning, key, (size_t)kl, buf, len, 0);
	free(buf);
	if (r < 0)
		return r;

	struct dsp_prior prior = { cur.released, (Wf__V1__Level)cur.released_level };
	unsigned need = dsp_policy_required(&e->cfg.policy, w, &prior);
	struct dsp_review rv;
	memset(&rv, 0, sizeof rv);
	rv.version = w->version;
	rv.required = (uint8_t)need;
	rv.state = need ? WF__V1__REVIEW_STATE__REVIEW_PENDING : WF__V1__REVIEW_STATE__REVIEW_AUTO;
	if (need && e->cfg.policy.review_timeout_ms[w->level] > 0)
		rv.review_deadline_ms = now + e->cfg.policy.review_timeout_ms[w->level];
	r = store_review(e, t, w->id, &rv);
	if (r < 0)
		return r;

	cur.latest = w->version;
	cur.level = (uint8_t)w->level;
	cur.msg_type = (uint8_t)w->msg_type;
	cur.status = (uint8_t)w->status;
	cur.expires_ms = w->expires_ms;
	cur.active = w->msg_type != WF__V1__MSG_TYPE__MSG_TYPE_CANCEL && w->expires_ms > now;

	struct dsp_route_result route;
	dsp_routing_match(&e->routing, w, &route);
	wf_log(LOG_INFO, "warning", "%s@%u %s level %s %s: route %s, %s", w->id, w->version,
	       wf_msg_type_to_string(w->msg_type), wf_level_to_string(w->level),
	       wf_status_to_string(w->status), route.matched[0] ? route.matched : "(default)",
	       need ? (need == 1 ? "needs 1 approval" : "needs 2 approvals") : "auto release");
	if (route.channels & DSP_CH_BIT(DSP_CH_DUTY)) {
		r = dsp_duty_notify(e, t, w, &route, need > 0, now);
		if (r < 0)
			return r;
	}
	if (need == 0) {
		r = release(e, t, w, &cur, now);
		if (r < 0)
			return r;
	}
	return put_current(e, t, w->id, &cur);
}

static int refuse(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Approval *a, int64_t now,
		  enum dsp_verdict v, uint32_t latest, struct wf_codec_error *why)
{
	int r = dsp_record(t, &e->db, a->warning_id, a->version, "review", a->operator_,
			   DSP_DLV_REFUSED, now, "%s (latest version %u)", dsp_verdict_to_string(v),
			   latest);
	if (r < 0)
		return r;
	wf_log(LOG_WARNING, "review", "approval of %s@%u by %s refused: %s (latest %u)",
	       a->warning_id, a->version, a->operator_, dsp_verdict_to_string(v), latest);
	why->reason = WF_REASON_BAD_REFERENCE;
	snprintf(why->field, sizeof why->field, "version");
	snprintf(why->detail, sizeof why->detail, "%s: latest version is %u",
		 dsp_verdict_to_string(v), latest);
	return WF_NODE_REJECT;
}

static int on_approval(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Approval *a,
		       int64_t now, struct wf_codec_error *why)
{
	struct dsp_current cur;
	struct dsp_review rv;
	int r = dsp_get_rec(t, e->db.current, a->warning_id, &cur, sizeof cur);
	if (!dsp_operator_find(&e->routing, a->operator_))
		return refuse(e, t, a, now, DSP_APPROVAL_NOT_OPERATOR, r == 0 ? cur.latest : 0, why);
	if (r == -ENOENT)
		return refuse(e, t, a, now, DSP_APPROVAL_UNKNOWN, 0, why);
	if (r < 0)
		return r;
	r = get_review(e, t, a->warning_id, a->version, &rv);
	if (r < 0 && r != -ENOENT)
		return r;
	enum dsp_verdict v = dsp_policy_judge(cur.latest, r == 0 ? &rv : NULL, a->version,
					      a->operator_);
	if (v == DSP_APPROVAL_UNKNOWN || v == DSP_APPROVAL_SUPERSEDED)
		return refuse(e, t, a, now, v, cur.latest, why);
	if (v == DSP_APPROVAL_DECIDED) {
		wf_log(LOG_INFO, "review", "%s@%u already %s; decision by %s noted", a->warning_id,
		       a->version, wf_review_to_string(rv.state), a->operator_);
		return 0;
	}
	if (a->decision == WF__V1__DECISION__DECISION_REJECT) {
		rv.state = WF__V1__REVIEW_STATE__REVIEW_REJECTED;
		snprintf(rv.rejected_by, sizeof rv.rejected_by, "%s", a->operator_);
		r = store_review(e, t, a->warning_id, &rv);
		if (r == 0)
			r = dsp_record(t, &e->db, a->warning_id, a->version, "review", a->operator_,
				       DSP_DLV_REJECTED, now, "%.90s", a->reason ? a->reason : "");
		wf_log(LOG_NOTICE, "review", "%s@%u rejected by %s: %s", a->warning_id, a->version,
		       a->operator_, a->reason ? a->reason : "");
		return r;
	}
	if (v == DSP_APPROVAL_SAME_OPERATOR) {
		wf_log(LOG_INFO, "review", "%s@%u: %s approved again; counts once", a->warning_id,
		       a->version, a->operator_);
		return dsp_record(t, &e->db, a->warning_id, a->version, "review", a->operator_,
				  DSP_DLV_APPROVED, now, "repeated approval, counted once");
	}
	bool enough = dsp_policy_count(&rv, a->operator_);
	r = dsp_record(t, &e->db, a->warning_id, a->version, "review", a->operator_,
		       DSP_DLV_APPROVED, now, "%u of %u", rv.n_approvers, rv.required);
	if (r < 0)
		return r;
	wf_log(LOG_INFO, "review", "%s@%u approved by %s (%u of %u)", a->warning_id, a->version,
	       a->operator_, rv.n_approvers, rv.required);
	if (enough) {
		Wf__V1__Warning *w = NULL;
		r = dsp_get_warning(t, &e->db, a->warning_id, a->version, &w);
		if (r < 0)
			return r;
		rv.state = WF__V1__REVIEW_STATE__REVIEW_RELEASED;
		r = release(e, t, w, &cur, now);
		wf_codec_warning_free(w);
		if (r == 0)
			r = dsp_put_rec(t, e->db.current, a->warning_id, &cur, sizeof cur);
		if (r < 0)
			return r;
	}
	return store_review(e, t, a->warning_id, &rv);
}

static int on_silence(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Silence *s,
		      int64_t now, struct wf_codec_error *why)
{
	struct dsp_silence rec;
	if (!dsp_operator_find(&e->routing, s->operator_)) {
		wf_log(LOG_WARNING, "silence", "%s from %s refused: not an operator", s->id,
		       s->operator_);
		why->reason = WF_REASON_BAD_ID;
		snprintf(why->field, sizeof why->field, "operator");
		snprintf(why->detail, sizeof why->detail, "not an operator of the routing file");
		return WF_NODE_REJECT;
	}
	dsp_silence_from_msg(s, &rec);
	wf_log(LOG_NOTICE, "silence", "%s by %s: %s until %lld: %s", s->id, s->operator_, s->channel,
	       (long long)s->expires_ms, s->reason);
	return wf_store_put(t, e->db.silence, s->id, strlen(s->id), &rec, sizeof rec, 0);
}

int dsp_engine_control(struct dsp_engine *e, struct wf_txn *t, enum wf_topic_kind kind,
		       const ProtobufCMessage *msg, int64_t now, struct wf_codec_error *why)
{
	switch (kind) {
	case WF_TOPIC_APPROVAL:
		return on_approval(e, t, (const Wf__V1__Approval *)msg, now, why);
	case WF_TOPIC_DUTY_ACK:
		return dsp_duty_ack(e, t, (const Wf__V1__DutyAck *)msg, now, why);
	case WF_TOPIC_DUTY_FOLLOWUP:
		return dsp_duty_followup(e, t, (const Wf__V1__FollowUp *)msg, now);
	case WF_TOPIC_SILENCE:
		return on_silence(e, t, (const Wf__V1__Silence *)msg, now, why);
	default:
		why->reason = WF_REASON_BAD_TOPIC;
		snprintf(why->detail, sizeof why->detail, "wf-dispatch does not take %s",
			 wf_topic_kind_to_string(kind));
		return WF_NODE_REJECT;
	}
}

/* --- time --- */

struct review_due {
	struct dsp_engine *e;
	int64_t now, min;
	char (*keys)[DSP_KEY_MAX];
	size_t n, cap;
};

static int review_scan(void *ud, const void *k, size_t kl, const void *v, size_t vl)
{
	struct review_due *d = ud;
	struct review_rec rec;
	if (vl != sizeof rec || kl >= DSP_KEY_MAX)
		return 0;
	memcpy(&rec, v, sizeof rec);
	if (rec.rv.state != WF__V1__REVIEW_STATE__REVIEW_PENDING || rec.rv.review_escalated ||
	    rec.rv.review_deadline_ms == 0)
		return 0;
	if (rec.rv.review_deadline_ms < d->min)
		d->min = rec.rv.review_deadline_ms;
	if (d->keys && rec.rv.review_deadline_ms <= d->now && d->n < d->cap) {
		memcpy(d->keys[d->n], k, kl);
		d->keys[d->n][kl] = '\0';
		d->n++;
	}
	return 0;
}

/* Declared in duty.c: escalates a review timeout of W to the stations
 * above those notified. */
int dsp_duty_review_timeout(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Warning *w,
			    int64_t now);

static int review_tick(struct dsp_engine *e, struct wf_txn *t, int64_t now)
{
	struct review_due d = { e, now, INT64_MAX, NULL, 0, 256 };
	d.keys = calloc(d.cap, sizeof *d.keys);
	if (!d.keys)
		return -ENOMEM;
	int r = wf_store_foreach(t, e->db.review, NULL, 0, review_scan, &d);
	for (size_t i = 0; r >= 0 && i < d.n; i++) {
		char *at = strrchr(d.keys[i], '@');
		if (!at)
			continue;
		*at = '\0';
		uint32_t ver = (uint32_t)strtoul(at + 1, NULL, 10);
		struct dsp_review rv;
		struct dsp_current cur;
		if (get_review(e, t, d.keys[i], ver, &rv) < 0)
			continue;
		rv.review_escalated = 1; /* first, so a failure below cannot make it loop */
		r = store_review(e, t, d.keys[i], &rv);
		if (r < 0 || dsp_get_rec(t, e->db.current, d.keys[i], &cur, sizeof cur) < 0 ||
		    ver < cur.latest)
			continue; /* superseded: its successor has its own review */
		Wf__V1__Warning *w = NULL;
		if (dsp_get_warning(t, &e->db, d.keys[i], ver, &w) < 0)
			continue;
		wf_log(LOG_WARNING, "review", "%s@%u still pending review after %lld ms: escalating",
		       w->id, w->version, (long long)e->cfg.policy.review_timeout_ms[w->level]);
		r = dsp_duty_review_timeout(e, t, w, now);
		if (r == 0)
			r = dsp_record(t, &e->db, w->id, w->version, "review", "timeout",
				       DSP_DLV_REVIEW_TIMEOUT, now, "%u of %u approvals", rv.n_approvers,
				       rv.required);
		wf_codec_warning_free(w);
	}
	free(d.keys);
	return r < 0 ? r : 0;
}

struct expire_scan {
	int64_t now, min;
	char (*ids)[130];
	size_t n, cap;
};

static int current_scan(void *ud, const void *k, size_t kl, const void *v, size_t vl)
{
	struct expire_scan *s = ud;
	struct dsp_current cur;
	if (vl != sizeof cur || kl >= 130)
		return 0;
	memcpy(&cur, v, sizeof cur);
	if (!cur.active)
		return 0;
	if (cur.expires_ms < s->min)
		s->min = cur.expires_ms;
	if (s->ids && cur.expires_ms <= s->now && s->n < s->cap) {
		memcpy(s->ids[s->n], k, kl);
		s->ids[s->n][kl] = '\0';
		s->n++;
	}
	return 0;
}

static int expire_tick(struct dsp_engine *e, struct wf_txn *t, int64_t now)
{
	struct expire_scan s = { now, INT64_MAX, NULL, 0, 1024 };
	s.ids = calloc(s.cap, sizeof *s.ids);
	if (!s.ids)
		return -ENOMEM;
	int r = wf_store_foreach(t, e->db.current, NULL, 0, current_scan, &s);
	for (size_t i = 0; r >= 0 && i < s.n; i++) {
		struct dsp_current cur;
		if (dsp_get_rec(t, e->db.current, s.ids[i], &cur, sizeof cur) < 0)
			continue;
		cur.active = 0;
		wf_log(LOG_INFO, "warning", "%s expired", s.ids[i]);
		r = dsp_put_rec(t, e->db.current, s.ids[i], &cur, sizeof cur);
	}
	free(s.ids);
	return r < 0 ? r : 0;
}

int dsp_engine_tick(struct dsp_engine *e, struct wf_txn *t, int64_t now)
{
	int r = expire_tick(e, t, now);
	if (r == 0)
		r = review_tick(e, t, now);
	if (r == 0)
		r = dsp_duty_tick(e, t, now);
	if (r == 0)
		r = dsp_broadcast_tick(e, t, now);
	return r;
}

int dsp_engine_next_due(struct dsp_engine *e, struct wf_txn *t, int64_t *ret)
{
	int64_t due = INT64_MAX;
	struct review_due d = { e, 0, INT64_MAX, NULL, 0, 0 };
	struct expire_scan s = { 0, INT64_MAX, NULL, 0, 0 };
	int r = wf_store_foreach(t, e->db.review, NULL, 0, review_scan, &d);
	if (r == 0)
		r = wf_store_foreach(t, e->db.current, NULL, 0, current_scan, &s);
	if (r == 0)
		r = dsp_duty_next_due(e, t, &due);
	if (r == 0)
		r = dsp_broadcast_next_due(e, t, &due);
	if (r < 0)
		return r;
	if (d.min < due)
		due = d.min;
	if (s.min < due)
		due = s.min;
	*ret = due;
	return 0;
}

int dsp_engine_resync(struct dsp_engine *e, struct wf_txn *t, int64_t now)
{
	int r = dsp_broadcast_resync(e, t);
	return r < 0 ? r : dsp_duty_resync(e, t, now);
}
