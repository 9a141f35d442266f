/* engine: warning versions, the release workflow and public delivery (see
 * dispatch.h). Duty stations are in duty.c, broadcast state in
 * broadcast.c, CAP rendering in cap.c. */
#include "dispatch-internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "stats.h"
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
	c->retain_ms = DSP_RETAIN_DEFAULT_MS;
}

int dsp_config_check(const struct dsp_config *c, char *err, size_t errlen)
{
	if (c->retain_ms < DSP_RETAIN_MIN_MS || c->retain_ms > DSP_RETAIN_MAX_MS) {
		snprintf(err, errlen, "[dispatch] retain %lld ms is out of range: at least %lld ms "
				      "(10m: the node's dedupe and fusion's outbox floor keep late "
				      "copies out, docs/dispatch.md \"Retention\"), at most %lld ms",
			 (long long)c->retain_ms, (long long)DSP_RETAIN_MIN_MS,
			 (long long)DSP_RETAIN_MAX_MS);
		return -EINVAL;
	}
	return 0;
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
	char err[256];
	if (!store || !cfg || !routing || !ret || !cfg->service || !wf_topic_id_valid(cfg->service))
		return -EINVAL;
	if (dsp_config_check(cfg, err, sizeof err) < 0) {
		wf_log(LOG_ERR, "config", "%s", err);
		return -EINVAL;
	}
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
	e->db.stats_cache = calloc(1, sizeof *e->db.stats_cache);
	e->db.wlog_cache = calloc(1, sizeof *e->db.wlog_cache);
	if (!e->db.stats_cache || !e->db.wlog_cache)
		oom = true;
	int r = oom ? -ENOMEM : dsp_store_open(store, &e->db);
	uint64_t converted = 0;
	if (r == 0)
		r = dsp_layout_open(store, &e->db, cfg->retain_ms, &converted);
	if (r == -EPROTONOSUPPORT)
		wf_log(LOG_ERR, "store", "the state was written by a newer release (its d-meta "
					 "\"layout\" is above 2): refusing to run on it");
	else if (r == 0 && converted > 0)
		wf_log(LOG_NOTICE, "store", "converted %llu records of an earlier release's store to "
					    "the version-keyed layout (once)",
		       (unsigned long long)converted);
	if (r == 0)
		r = dsp_index_open(store, &e->db, cfg->retain_ms);
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
	free(e->out_idx);
	dsp_names_free(&e->dirty_ids);
	dsp_names_free(&e->dirty_ops);
	dsp_routing_free(&e->routing);
	free(e->service);
	free(e->cap_sender);
	free(e->cap_sender_name);
	free(e->db.stats_cache);
	free(e->db.wlog_cache);
	free(e);
	return NULL;
}

void dsp_engine_set_routing(struct dsp_engine *e, struct dsp_routing *routing)
{
	dsp_routing_free(&e->routing);
	e->routing = *routing;
	memset(routing, 0, sizeof *routing);
	e->dirty_silences = true; /* the file's silences may have changed */
}

const struct dsp_routing *dsp_engine_routing(const struct dsp_engine *e) { return &e->routing; }
const struct dsp_dbs *dsp_engine_dbs(const struct dsp_engine *e) { return &e->db; }

/* --- outputs --- */

size_t dsp_key_hash(const char *k)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *k; k++)
		h = (h ^ (unsigned char)*k) * 1099511628211ull;
	return (size_t)h;
}

/* The slot of KEY in out_idx: its entry, or the empty slot it would take. */
static size_t out_slot(const struct dsp_engine *e, const char *key)
{
	size_t m = e->cap_idx - 1, i = dsp_key_hash(key) & m;
	while (e->out_idx[i] && strcmp(e->out[e->out_idx[i] - 1].key, key) != 0)
		i = (i + 1) & m;
	return i;
}

/* Keeps out_idx at most half full for N outputs. */
static int out_idx_reserve(struct dsp_engine *e, size_t n)
{
	if (e->cap_idx >= 2 * n && e->cap_idx)
		return 0;
	size_t nc = e->cap_idx ? e->cap_idx : 64;
	while (nc < 2 * n)
		nc *= 2;
	uint32_t *v = calloc(nc, sizeof *v);
	if (!v)
		return -ENOMEM;
	free(e->out_idx);
	e->out_idx = v;
	e->cap_idx = nc;
	for (size_t i = 0; i < e->n_out; i++)
		e->out_idx[out_slot(e, e->out[i].key)] = (uint32_t)(i + 1);
	return 0;
}

/* snprintf(DST, SIZE, "%s", SRC) without the format parsing. */
static void copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

int dsp_out_push(struct dsp_engine *e, enum dsp_out_kind kind, const char *key, const char *topic,
		 bool retain, const void *payload, size_t len)
{
	struct dsp_out *o = NULL;
	if (out_idx_reserve(e, e->n_out + 1) < 0)
		return -ENOMEM;
	size_t slot = out_slot(e, key);
	if (e->out_idx[slot]) {
		o = &e->out[e->out_idx[slot] - 1];
		free(o->payload);
		o->payload = NULL;
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
		copy_str(o->key, sizeof o->key, key);
		e->out_idx[slot] = (uint32_t)e->n_out;
	}
	o->kind = kind;
	copy_str(o->topic, sizeof o->topic, topic);
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
	/* a burst's arrays (~760 B an output) are kept while the batches
	 * still fill a quarter of them (not grown again for each batch of the
	 * burst), given back after the first batch that does not */
	bool shrink = e->n_out < e->cap_out / 4;
	e->n_out = 0;
	if (e->cap_out > 1024 && shrink) {
		free(e->out);
		e->out = NULL;
		e->cap_out = 0;
	}
	if (e->cap_idx > 2048 && shrink) {
		free(e->out_idx);
		e->out_idx = NULL;
		e->cap_idx = 0;
	} else if (e->out_idx) {
		memset(e->out_idx, 0, e->cap_idx * sizeof *e->out_idx);
	}
}

int dsp_engine_delivery(struct dsp_engine *e, struct wf_txn *t, const char *id, uint32_t version,
			const char *channel, const char *target, struct dsp_delivery *ret)
{
	char key[DSP_KEY_MAX];
	int r = dsp_key_delivery(t, &e->db, key, sizeof key, id, version, channel, target);
	if (r < 0)
		return r;
	return dsp_get_rec(t, e->db.delivery, key, ret, sizeof *ret);
}

Wf__V1__Warning dsp_withdrawal_of(const Wf__V1__Warning *w, int64_t at_ms)
{
	Wf__V1__Warning cw = *w;
	cw.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_CANCEL;
	cw.sent_ms = at_ms;
	cw.n_references = 0;
	return cw;
}

/* --- stored silences (from Silence messages) --- */

/* Only those in force at NOW (on_silence keeps them at most
 * DSP_MAX_SILENCES; expired ones wait for dsp_silences_purge). */
struct silences {
	struct dsp_silence *v;
	size_t n;
	int64_t now;
};

static int silence_cb(void *ud, const void *k, size_t kl, const void *val, size_t vl)
{
	struct silences *s = ud;
	struct dsp_silence rec;
	if (vl != sizeof rec || s->n >= DSP_MAX_SILENCES)
		return 0;
	memcpy(&rec, val, vl);
	if (rec.expires_ms > s->now)
		s->v[s->n++] = rec;
	return 0;
}

static int load_silences(struct dsp_engine *e, struct wf_txn *t, struct silences *s, int64_t now)
{
	s->n = 0;
	s->now = now;
	s->v = calloc(DSP_MAX_SILENCES, sizeof *s->v);
	if (!s->v)
		return -ENOMEM;
	return wf_store_foreach(t, e->db.silence, NULL, 0, silence_cb, s);
}

/* --- release to public channels --- */

static int cap_output(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Warning *w,
		      const struct dsp_current *cur, int64_t now)
{
	bool manual = e->manual_cancel; /* a 解除 of released version W itself */
	struct dsp_cap_options o = { e->cfg.cap_sender, e->cfg.cap_sender_name, e->regions, NULL };
	struct dsp_cap_ref ref;
	size_t n_refs = 0;
	char *xml = NULL, name[WF_TOPIC_MAX], key[DSP_KEY_MAX];
	size_t len = 0;

	/* an Update/Cancel refers to the CAP message last published */
	if (manual) {
		dsp_cap_identifier(w->id, w->version, ref.identifier, sizeof ref.identifier);
		Wf__V1__Warning *prev = NULL;
		ref.sent_ms = w->sent_ms;
		if (dsp_get_warning(t, &e->db, w->id, w->version, &prev) == 0) {
			ref.sent_ms = prev->sent_ms;
			wf_codec_warning_free(prev);
		}
		n_refs = 1;
	} else if (w->msg_type != WF__V1__MSG_TYPE__MSG_TYPE_ALERT && cur->released > 0) {
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
	o.identifier_suffix = manual ? ".cancel" : NULL;
	int r = dsp_cap_render(&o, w, &ref, n_refs, &xml, &len);
	if (r < 0)
		return r;
	char ident[170];
	dsp_cap_identifier(w->id, w->version, ident, sizeof ident - 8);
	if (manual)
		strcat(ident, ".cancel");
	snprintf(name, sizeof name, "%.120s.xml", ident);
	snprintf(key, sizeof key, "cap|%s", ident);
	r = e->cfg.cap_write ? e->cfg.cap_write(e->cfg.cap_ud, name, xml, len)
			     : dsp_out_push(e, DSP_OUT_FILE, key, name, false, xml, len);
	free(xml);
	if (r == 0)
		r = dsp_record(t, &e->db, w->id, w->version, "cap", manual ? "spool/cancel" : "spool",
			       DSP_DLV_SENT, now, "%s", name);
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
	snprintf(key, sizeof key, "%s@%u%s", w->id, w->version, e->manual_cancel ? ".cancel" : "");
	snprintf(text, sizeof text, "【%s】%s%s%s预警%s%s", e->cfg.cap_sender_name ? e->cfg.cap_sender_name : "预警",
		 cancel ? "解除" : "", hz ? hz : "", col ? col : "",
		 w->headline && *w->headline ? "：" : "", w->headline ? w->headline : "");
	for (size_t i = 0; r == 0 && i < w->n_regions; i++) {
		size_t planned = 0;
		/* a 解除 (fusion's CANCEL carries expires_ms = its own time, a
		 * manual one the cancelled version's) is still news for a while */
		int64_t exp = e->manual_cancel || cancel ? now + DSP_CANCEL_SMS_VALID_MS : w->expires_ms;
		r = e->cfg.sms_enqueue(e->cfg.sms_ud, t, key, w->regions[i], text, exp, &planned);
		if (r == -EMSGSIZE) {
			snprintf(text, sizeof text, "%s%s%s预警", cancel ? "解除" : "", hz ? hz : "",
				 col ? col : "");
			r = e->cfg.sms_enqueue(e->cfg.sms_ud, t, key, w->regions[i], text, exp, &planned);
		}
		total += planned;
	}
	if (r < 0)
		return r;
	return dsp_record(t, &e->db, w->id, w->version, "sms", e->manual_cancel ? "*/cancel" : "*",
			  DSP_DLV_SENT, now, "%zu recipients planned", total);
}

/* Delivers released version W to the public channels its routes name.
 * NO_HOLD: the caller knows W's warning has no held d-cancel record. */
/* ROUTE: W's routes as matched by the caller (NULL: matched here). */
static int release(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Warning *w,
		   const struct dsp_route_result *route, struct dsp_current *cur, bool no_hold,
		   int64_t now)
{
	struct dsp_route_result own;
	struct silences sil = { 0 };
	Wf__V1__Warning *prev = NULL;
	int r;

	if (route == NULL) {
		dsp_routing_match(&e->routing, w, &own);
		route = &own;
	}
	unsigned pub = route->channels & DSP_CH_PUBLIC;
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
	r = pub ? load_silences(e, t, &sil, now) : 0;
	if (r < 0)
		goto out;
	/* the version released before: what the broadcast state replaces */
	if ((pub & DSP_CH_BIT(DSP_CH_BROADCAST)) && cur->released > 0 &&
	    cur->released < w->version && dsp_get_warning(t, &e->db, w->id, cur->released, &prev) < 0)
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
	if (r >= 0)
		r = dsp_stats_release(t, &e->db, w, now);
	if (r >= 0) {
		struct dsp_cancel mc;
		if (!no_hold && dsp_get_rec(t, e->db.cancel, w->id, &mc, sizeof mc) == 0 && mc.hold) {
			mc.hold = 0; /* released again after review: the hold is over */
			r = dsp_put_rec(t, e->db.cancel, w->id, &mc, sizeof mc);
		}
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


int dsp_get_review(struct dsp_engine *e, struct wf_txn *t, const char *id, uint32_t version,
		   struct dsp_review *ret)
{
	char key[DSP_KEY_MAX];
	struct dsp_review_rec rec;
	int r = dsp_key_review(t, &e->db, key, sizeof key, id, version);
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
	return dsp_get_review(e, t, id, version, &rv) == 0 &&
	       rv.state == WF__V1__REVIEW_STATE__REVIEW_PENDING;
}

/* FRESH: the review of a version just received (its key is new, as a rule:
 * stored without reading first). */
static int store_review(struct dsp_engine *e, struct wf_txn *t, const char *id,
			const struct dsp_review *rv, bool fresh)
{
	struct dsp_review_rec rec;
	memset(&rec, 0, sizeof rec);
	rec.rec_version = 1;
	rec.rv = *rv;
	char key[DSP_KEY_MAX];
	int r = dsp_key_review(t, &e->db, key, sizeof key, id, rv->version);
	if (r < 0)
		return r;
	return fresh ? dsp_put_indexed_new(t, &e->db, DSP_DUE_REVIEW, key, &rec, sizeof rec)
		     : dsp_put_indexed(t, &e->db, DSP_DUE_REVIEW, key, &rec, sizeof rec);
}


int dsp_engine_warning(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Warning *w,
		       int64_t now, struct wf_codec_error *why)
{
	struct dsp_current cur;
	int r = dsp_get_rec(t, e->db.current, w->id, &cur, sizeof cur);

	if (r == -ENOENT && w->expires_ms <= now - e->cfg.retain_ms) {
		/* unknown, and ended longer ago than retain: a warning purged
		 * already, or one whose records would be purged by now; a late
		 * copy (e.g. of a rebuilt fusion) must not look new */
		wf_log(LOG_INFO, "warning", "%s@%u ignored: expired more than retain (%lld ms) ago",
		       w->id, w->version, (long long)e->cfg.retain_ms);
		return 0;
	}
	if (r == -ENOENT) {
		memset(&cur, 0, sizeof cur);
		cur.rec_version = 1;
	} else if (r < 0) {
		return r;
	}
	bool known = r == 0;
	struct dsp_current was = cur; /* as stored (dsp_put_current_over) */
	if (cur.latest >= w->version) {
		/* an old or repeated version (e.g. a rebuilt fusion state): nothing new */
		wf_log(LOG_INFO, "warning", "%s@%u ignored: version %u already known", w->id,
		       w->version, cur.latest);
		return 0;
	}
	/* keep the version (CAP references, notices rebuilt on resync) */
	uint8_t *buf = NULL;
	size_t len = 0;
	r = wf_codec_warning_pack_checked(w, &e->limits, &buf, &len, why);
	if (r == -EBADMSG)
		return WF_NODE_REJECT;
	if (r < 0)
		return r;
	r = dsp_put_warning(t, &e->db, w->id, w->version, buf, len);
	free(buf);
	if (r < 0)
		return r;

	struct dsp_prior prior = { cur.released, (Wf__V1__Level)cur.released_level };
	unsigned need = dsp_policy_required(&e->cfg.policy, w, &prior);
	struct dsp_cancel mc;
	r = dsp_get_rec(t, e->db.cancel, w->id, &mc, sizeof mc);
	if (r < 0 && r != -ENOENT)
		return r;
	bool held_rec = r == 0 && mc.hold;
	bool held = held_rec && w->msg_type != WF__V1__MSG_TYPE__MSG_TYPE_CANCEL;
	if (held && need == 0) {
		/* an operator withdrew this warning: fusion's later versions wait for review */
		need = 1;
		wf_log(LOG_NOTICE, "review", "%s@%u held for review: %s cancelled version %u",
		       w->id, w->version, mc.operator_, mc.version);
	}
	r = dsp_stats_version(t, &e->db, w, now);
	if (r < 0)
		return r;
	dsp_mark_warning(e, w->id);
	struct dsp_review rv;
	memset(&rv, 0, sizeof rv);
	rv.version = w->version;
	rv.required = (uint8_t)need;
	rv.state = need ? WF__V1__REVIEW_STATE__REVIEW_PENDING : WF__V1__REVIEW_STATE__REVIEW_AUTO;
	if (need && e->cfg.policy.review_timeout_ms[w->level] > 0)
		rv.review_deadline_ms = now + e->cfg.policy.review_timeout_ms[w->level];
	r = store_review(e, t, w->id, &rv, true);
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
		r = release(e, t, w, &route, &cur, !held_rec, now);
		if (r < 0)
			return r;
	}
	return dsp_put_current_over(e, t, w->id, known ? &was : NULL, &cur, now);
}

static const char *action_of(const Wf__V1__Approval *a)
{
	switch (a->decision) {
	case WF__V1__DECISION__DECISION_APPROVE: return "approve";
	case WF__V1__DECISION__DECISION_REJECT: return "reject";
	case WF__V1__DECISION__DECISION_CANCEL: return "cancel";
	default: return "?";
	}
}

/* The first line of TEXT, at most 200 bytes, cut at a UTF-8 boundary. */
static void one_line(const char *text, char *buf, size_t size)
{
	size_t n = 0, max = size - 1 < 200 ? size - 1 : 200;
	if (text)
		while (text[n] && text[n] != '\n' && n < max)
			n++;
	while (n > 0 && text[n] && ((unsigned char)text[n] & 0xC0) == 0x80)
		n--; /* do not split a character */
	memcpy(buf, text ? text : "", n);
	buf[n] = '\0';
}

/* The audit entry of approval A: OUTCOME (printf). */
static int audit_approval(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Approval *a,
			  int64_t now, bool accepted, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
static int audit_approval(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Approval *a,
			  int64_t now, bool accepted, const char *fmt, ...)
{
	char outcome[160], detail[208];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(outcome, sizeof outcome, fmt, ap);
	va_end(ap);
	one_line(a->reason, detail, sizeof detail);
	struct dsp_audit au = { now, a->sent_ms, a->operator_, action_of(a), a->warning_id,
				a->version, accepted, outcome, detail, a->producer, a->seq };
	return dsp_audit_add(e, t, &au);
}

/* Refuses approval A: recorded (delivery record, audit trail, the
 * operator's verdicts), then dead-lettered by the node with REASON. */
static int refuse_code(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Approval *a,
		       int64_t now, enum wf_reason reason, const char *field, const char *outcome,
		       const char *code, uint32_t latest, struct wf_codec_error *why)
{
	int r = dsp_record(t, &e->db, a->warning_id, a->version, "review", a->operator_,
			   DSP_DLV_REFUSED, now, "%s %s (latest version %u)", action_of(a), outcome,
			   latest);
	if (r == 0)
		r = audit_approval(e, t, a, now, false, "%s (latest version %u)", outcome, latest);
	if (r < 0)
		return r;
	wf_log(LOG_WARNING, "review", "%s of %s@%u by %s refused: %s (latest %u)", action_of(a),
	       a->warning_id, a->version, a->operator_, outcome, latest);
	why->reason = reason;
	snprintf(why->field, sizeof why->field, "%s", field);
	snprintf(why->detail, sizeof why->detail, "%s: latest version is %u", code, latest);
	return WF_NODE_REJECT;
}

static int refuse_why(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Approval *a,
		      int64_t now, enum wf_reason reason, const char *field, const char *outcome,
		      uint32_t latest, struct wf_codec_error *why)
{
	return refuse_code(e, t, a, now, reason, field, outcome, outcome, latest, why);
}

static int refuse(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Approval *a, int64_t now,
		  enum dsp_verdict v, uint32_t latest, struct wf_codec_error *why)
{
	const char *text = v == DSP_APPROVAL_NOT_OPERATOR ? "not an operator of the routing file"
			   : v == DSP_APPROVAL_SUPERSEDED ? "superseded by a newer version"
			   : v == DSP_APPROVAL_UNKNOWN	  ? "unknown warning or version"
							  : dsp_verdict_to_string(v);
	return refuse_code(e, t, a, now,
			   v == DSP_APPROVAL_NOT_OPERATOR ? WF_REASON_BAD_ID : WF_REASON_BAD_REFERENCE,
			   v == DSP_APPROVAL_NOT_OPERATOR ? "operator" : "version", text,
			   dsp_verdict_to_string(v), latest, why);
}

/* 解除 by an operator (DECISION_CANCEL of the released version): the
 * public gets a cancellation on the channels that had the version
 * (broadcast state removal, a CAP Cancel, an SMS 解除 notice), duty
 * stations a 解除 notice, and fusion's later versions of the warning wait
 * for review (d-cancel hold). Idempotent: a second cancel of the same
 * version changes nothing. */
static int on_cancel(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Approval *a,
		     struct dsp_current *cur, int64_t now, struct wf_codec_error *why)
{
	struct dsp_cancel mc;
	int r = dsp_get_rec(t, e->db.cancel, a->warning_id, &mc, sizeof mc);
	if (r < 0 && r != -ENOENT)
		return r;
	if (r == 0 && mc.version == a->version && cur->released == 0) {
		wf_log(LOG_INFO, "review", "%s@%u already cancelled by %s; cancel by %s noted",
		       a->warning_id, a->version, mc.operator_, a->operator_);
		return audit_approval(e, t, a, now, true, "already cancelled by %s", mc.operator_);
	}
	if (cur->released == 0)
		return refuse_why(e, t, a, now, WF_REASON_BAD_REFERENCE, "version",
				  "nothing released to cancel (reject the pending version instead)",
				  cur->latest, why);
	if (a->version != cur->released) {
		char o[96];
		snprintf(o, sizeof o, "not the released version (released: %u)", cur->released);
		return refuse_why(e, t, a, now, WF_REASON_BAD_REFERENCE, "version", o, cur->latest,
				  why);
	}
	Wf__V1__Warning *w = NULL;
	r = dsp_get_warning(t, &e->db, a->warning_id, a->version, &w);
	if (r < 0)
		return r;
	/* the cancellation of the released version (the channels name it
	 * "<id>.v<N>.cancel") */
	Wf__V1__Warning cw = dsp_withdrawal_of(w, now);
	struct dsp_route_result route;
	dsp_routing_match(&e->routing, w, &route);
	/* not silenced: whoever got the warning gets its withdrawal */
	e->manual_cancel = true;
	for (int c = DSP_CH_BROADCAST; r >= 0 && c < DSP_CH_MAX; c++) {
		struct dsp_delivery d;
		const char *cn = dsp_channel_to_string(c);
		/* only the channels that had it (sent; silenced ones never did) */
		bool had = false;
		if (c == DSP_CH_BROADCAST)
			had = route.channels & DSP_CH_BIT(c);
		else
			had = dsp_engine_delivery(e, t, w->id, w->version, cn,
						  c == DSP_CH_CAP ? "spool" : "*", &d) == 0 &&
			      d.state == DSP_DLV_SENT;
		if (!had)
			continue;
		switch (c) {
		case DSP_CH_BROADCAST:
			r = dsp_broadcast_apply(e, t, &cw, NULL, now);
			break;
		case DSP_CH_CAP:
			r = cap_output(e, t, &cw, cur, now);
			break;
		case DSP_CH_SMS:
			r = sms_output(e, t, &cw, now);
			break;
		default:
			break;
		}
	}
	if (r >= 0 && (route.channels & DSP_CH_BIT(DSP_CH_DUTY)))
		r = dsp_duty_cancel_notice(e, t, &cw, now);
	e->manual_cancel = false;
	if (r >= 0) {
		memset(&mc, 0, sizeof mc);
		mc.rec_version = 1;
		mc.hold = 1;
		mc.version = a->version;
		mc.at_ms = now;
		snprintf(mc.operator_, sizeof mc.operator_, "%s", a->operator_);
		one_line(a->reason, mc.reason, sizeof mc.reason);
		r = dsp_put_rec(t, e->db.cancel, a->warning_id, &mc, sizeof mc);
	}
	if (r >= 0) {
		/* the public has nothing of it now: a later release is a new Alert */
		cur->released = 0;
		cur->released_level = 0;
		cur->active = 0;
		r = dsp_put_current(e, t, a->warning_id, cur, now);
	}
	if (r >= 0)
		r = dsp_record(t, &e->db, a->warning_id, a->version, "review", a->operator_,
			       DSP_DLV_CANCELLED, now, "%.80s", mc.reason);
	if (r >= 0)
		r = dsp_stats_cancel(t, &e->db, now);
	if (r >= 0)
		r = audit_approval(e, t, a, now, true, "cancelled (public cancellation sent)");
	if (r >= 0)
		wf_log(LOG_NOTICE, "review", "%s@%u cancelled by %s: %s", a->warning_id, a->version,
		       a->operator_, mc.reason);
	wf_codec_warning_free(w);
	return r < 0 ? r : 0;
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
	if (a->decision == WF__V1__DECISION__DECISION_CANCEL) {
		if (!a->reason || !*a->reason)
			return refuse_why(e, t, a, now, WF_REASON_MISSING_FIELD, "reason",
					  "missing reason", cur.latest, why);
		return on_cancel(e, t, a, &cur, now, why);
	}
	r = dsp_get_review(e, t, a->warning_id, a->version, &rv);
	if (r < 0 && r != -ENOENT)
		return r;
	enum dsp_verdict v = dsp_policy_judge(cur.latest, r == 0 ? &rv : NULL, a->version,
					      a->operator_);
	if (v == DSP_APPROVAL_UNKNOWN || v == DSP_APPROVAL_SUPERSEDED)
		return refuse(e, t, a, now, v, cur.latest, why);
	if (v == DSP_APPROVAL_DECIDED) {
		wf_log(LOG_INFO, "review", "%s@%u already %s; decision by %s noted", a->warning_id,
		       a->version, wf_review_to_string(rv.state), a->operator_);
		return audit_approval(e, t, a, now, true, "noted: already %s",
				      wf_review_to_string(rv.state));
	}
	if (a->decision == WF__V1__DECISION__DECISION_REJECT) {
		rv.state = WF__V1__REVIEW_STATE__REVIEW_REJECTED;
		snprintf(rv.rejected_by, sizeof rv.rejected_by, "%s", a->operator_);
		r = store_review(e, t, a->warning_id, &rv, false);
		if (r == 0)
			r = dsp_record(t, &e->db, a->warning_id, a->version, "review", a->operator_,
				       DSP_DLV_REJECTED, now, "%.90s", a->reason ? a->reason : "");
		if (r == 0)
			r = audit_approval(e, t, a, now, true, "rejected");
		wf_log(LOG_NOTICE, "review", "%s@%u rejected by %s: %s", a->warning_id, a->version,
		       a->operator_, a->reason ? a->reason : "");
		return r;
	}
	if (v == DSP_APPROVAL_SAME_OPERATOR) {
		wf_log(LOG_INFO, "review", "%s@%u: %s approved again; counts once", a->warning_id,
		       a->version, a->operator_);
		r = dsp_record(t, &e->db, a->warning_id, a->version, "review", a->operator_,
			       DSP_DLV_APPROVED, now, "repeated approval, counted once");
		return r < 0 ? r : audit_approval(e, t, a, now, true, "repeated approval, counted once");
	}
	bool enough = dsp_policy_count(&rv, a->operator_);
	r = dsp_record(t, &e->db, a->warning_id, a->version, "review", a->operator_,
		       DSP_DLV_APPROVED, now, "%u of %u", rv.n_approvers, rv.required);
	if (r == 0)
		r = audit_approval(e, t, a, now, true, "counted %u of %u%s", rv.n_approvers,
				   rv.required, enough ? ", released" : "");
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
		r = release(e, t, w, NULL, &cur, false, now);
		/* announced only if it did reach the public (not an exercise, not
		 * the cancel of a version never released) */
		if (r == 0 && cur.released == w->version)
			r = dsp_duty_released(e, t, w, now);
		wf_codec_warning_free(w);
		if (r == 0)
			r = dsp_put_current(e, t, a->warning_id, &cur, now);
		if (r < 0)
			return r;
	}
	return store_review(e, t, a->warning_id, &rv, false);
}

/* Whether one more silence with S's id may be stored: at most
 * DSP_MAX_SILENCES in force (the same id replaces its own); 1 yes, 0 no. */
static int silence_room(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Silence *s,
			int64_t now)
{
	struct silences cur = { 0 };
	bool known = false;
	if (s->expires_ms <= now)
		return 1; /* stored, never in force */
	int r = load_silences(e, t, &cur, now);
	for (size_t i = 0; r >= 0 && i < cur.n; i++)
		known = known || strcmp(cur.v[i].id, s->id) == 0;
	size_t n = cur.n;
	free(cur.v);
	return r < 0 ? r : known || n < DSP_MAX_SILENCES;
}

static int on_silence(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Silence *s,
		      int64_t now, struct wf_codec_error *why)
{
	struct dsp_silence rec;
	char detail[208], full[64];
	bool op = dsp_operator_find(&e->routing, s->operator_) != NULL;
	int room = op ? silence_room(e, t, s, now) : 1;
	if (room < 0)
		return room;
	bool ok = op && room;
	const char *hz = s->hazard ? wf_hazard_to_string(s->hazard) : NULL;
	char until[40];
	dsp_cap_time(s->expires_ms, until, sizeof until);
	snprintf(detail, sizeof detail, "%.64s: %s %s%s%s until %s: %.80s", s->id, s->channel,
		 s->region_prefix && *s->region_prefix ? s->region_prefix : "everywhere",
		 hz ? " " : "", hz ? hz : "", until, s->reason);
	snprintf(full, sizeof full, "%u silences in force already", DSP_MAX_SILENCES);
	struct dsp_audit au = { now, s->sent_ms, s->operator_, "silence", "", 0, ok,
				ok ? "silence in force" : !op ? "not an operator" : full, detail,
				s->producer, s->seq };
	int r = dsp_audit_add(e, t, &au);
	if (r < 0)
		return r;
	if (!ok) {
		wf_log(LOG_WARNING, "silence", "%s from %s refused: %s", s->id, s->operator_,
		       !op ? "not an operator" : full);
		why->reason = !op ? WF_REASON_BAD_ID : WF_REASON_TOO_LARGE;
		snprintf(why->field, sizeof why->field, "%s", !op ? "operator" : "id");
		snprintf(why->detail, sizeof why->detail, "%s",
			 !op ? "not an operator of the routing file" : full);
		return WF_NODE_REJECT;
	}
	dsp_silence_from_msg(s, &rec);
	wf_log(LOG_NOTICE, "silence", "%s by %s: %s until %lld: %s", s->id, s->operator_, s->channel,
	       (long long)s->expires_ms, s->reason);
	struct dsp_silmeta meta;
	memset(&meta, 0, sizeof meta);
	meta.rec_version = 1;
	snprintf(meta.operator_, sizeof meta.operator_, "%s", s->operator_);
	meta.sent_ms = s->sent_ms;
	meta.applied_ms = now;
	r = dsp_put_rec(t, e->db.silmeta, s->id, &meta, sizeof meta);
	e->dirty_silences = true;
	return r < 0 ? r : wf_store_put(t, e->db.silence, s->id, strlen(s->id), &rec, sizeof rec, 0);
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

/* Declared in duty.c: escalates a review timeout of W to the stations
 * above those notified. */
int dsp_duty_review_timeout(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Warning *w,
			    int64_t now);

/* A due review timeout of KEY ("<id>@<ver>"). */
static int review_due(struct dsp_engine *e, struct wf_txn *t, char *full, int64_t now)
{
	char *key = (char *)dsp_key_skip_seq(full); /* "<id>@<ver>" */
	char *at = strrchr(key, '@');
	if (!at)
		return 0;
	*at = '\0';
	uint32_t ver = (uint32_t)strtoul(at + 1, NULL, 10);
	struct dsp_review rv;
	struct dsp_current cur;
	if (dsp_get_review(e, t, key, ver, &rv) < 0 ||
	    rv.state != WF__V1__REVIEW_STATE__REVIEW_PENDING || rv.review_escalated ||
	    rv.review_deadline_ms == 0 || rv.review_deadline_ms > now)
		return 0;
	rv.review_escalated = 1; /* first, so a failure below cannot make it loop */
	int r = store_review(e, t, key, &rv, false);
	if (r < 0 || dsp_get_rec(t, e->db.current, key, &cur, sizeof cur) < 0 || ver < cur.latest)
		return r < 0 ? r : 0; /* superseded: its successor has its own review */
	Wf__V1__Warning *w = NULL;
	if (dsp_get_warning(t, &e->db, key, ver, &w) < 0)
		return 0;
	wf_log(LOG_WARNING, "review", "%s@%u still pending review after %lld ms: escalating",
	       w->id, w->version, (long long)e->cfg.policy.review_timeout_ms[w->level]);
	r = dsp_duty_review_timeout(e, t, w, now);
	if (r == 0)
		r = dsp_record(t, &e->db, w->id, w->version, "review", "timeout",
			       DSP_DLV_REVIEW_TIMEOUT, now, "%u of %u approvals", rv.n_approvers,
			       rv.required);
	wf_codec_warning_free(w);
	return r;
}

/* A due expiry of warning ID. */
static int expire_due(struct dsp_engine *e, struct wf_txn *t, const char *id, int64_t now)
{
	struct dsp_current cur;
	if (dsp_get_rec(t, e->db.current, id, &cur, sizeof cur) < 0 || !cur.active ||
	    cur.expires_ms > now)
		return 0;
	cur.active = 0;
	wf_log(LOG_INFO, "warning", "%s expired", id);
	dsp_mark_warning(e, id);
	return dsp_put_current(e, t, id, &cur, now);
}

#define DUE_MAX 4096u   /* index entries handled per tick (the rest stay due) */
#define PURGE_MAX 16u   /* ended warnings purged per tick (the rest stay due) */

int dsp_engine_tick(struct dsp_engine *e, struct wf_txn *t, int64_t now)
{
	/* what is due, from the index; handled kind by kind: expiries,
	 * review timeouts, ack deadlines, reminders (each entry taken out of
	 * the index; the record's write puts back what is due later) */
	static const char order[] = { DSP_DUE_EXPIRE, DSP_DUE_REVIEW, DSP_DUE_DUTY,
				      DSP_DUE_FOLLOWUP };
	struct dsp_due_entry *v = NULL;
	size_t n = 0;
	int r = dsp_due_take(t, &e->db, now, DUE_MAX, &v, &n);
	for (size_t k = 0; r >= 0 && k < sizeof order; k++)
		for (size_t i = 0; r >= 0 && i < n; i++) {
			if (v[i].kind != order[k])
				continue;
			switch (v[i].kind) {
			case DSP_DUE_EXPIRE:
				r = expire_due(e, t, v[i].key, now);
				break;
			case DSP_DUE_REVIEW:
				r = review_due(e, t, v[i].key, now);
				break;
			case DSP_DUE_DUTY:
				r = dsp_duty_missed(e, t, v[i].key, now);
				break;
			default:
				if (e->cfg.followup_interval_ms > 0)
					r = dsp_duty_remind(e, t, v[i].key, now);
				break;
			}
		}
	free(v);
	if (r >= 0)
		r = dsp_broadcast_tick(e, t, now);
	if (r >= 0)
		r = dsp_retain_tick(e, t, now, PURGE_MAX);
	if (r >= 0)
		r = dsp_silences_purge(e, t, now);
	return r < 0 ? r : 0;
}

int dsp_engine_next_due(struct dsp_engine *e, struct wf_txn *t, int64_t *ret)
{
	int64_t due = INT64_MAX;
	int r = dsp_due_first(t, &e->db, &due);
	if (r == 0)
		r = dsp_broadcast_next_due(e, t, &due);
	if (r == 0)
		r = dsp_retain_next_due(e, t, &due);
	if (r < 0)
		return r;
	*ret = due;
	return 0;
}

int dsp_engine_resync(struct dsp_engine *e, struct wf_txn *t, int64_t now)
{
	int r = dsp_broadcast_resync(e, t);
	e->resync_cursor[0] = '\0'; /* every pending notice, from the start */
	if (r >= 0)
		r = dsp_duty_cancel_resync(e, t, now);
	if (r >= 0)
		r = dsp_duty_released_resync(e, t, now);
	return r < 0 ? r : dsp_duty_resync(e, t, now);
}

int dsp_engine_resync_duty(struct dsp_engine *e, struct wf_txn *t, int64_t now)
{
	return dsp_duty_resync(e, t, now);
}
