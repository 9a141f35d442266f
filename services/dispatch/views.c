/* views: what wf-dispatch publishes about its own decisions, retained, for
 * wfctl (docs/protocol.md, "Dispatcher views"): one WarningRecord per
 * warning (versions, review, deliveries, audit trail, manual cancel), one
 * OperatorVerdicts per operator, the SilenceList and the DispatchStats.
 * Apply functions only mark what changed (in memory); dsp_engine_views
 * builds the marked views from the committed state after the commit, so a
 * view never shows what an aborted transaction did. */
#include "dispatch-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "stats.h"
#include "wf/log.h"

#define REC_VERSIONS_MAX 32u
#define REC_DELIVERIES_MAX 128u
#define REC_REGIONS_MAX 256u
#define REC_EVENTS_MAX 128u
#define SCAN_DELIVERIES_MAX 2048u

void dsp_names_free(struct dsp_names *s)
{
	free(s->v);
	free(s->slots);
	*s = (struct dsp_names){ 0 };
}

/* after the views were built: empty, the memory of a burst given back */
static void names_clear(struct dsp_names *s)
{
	if (s->cap > 256) {
		dsp_names_free(s);
		return;
	}
	s->n = 0;
	s->overflow = false;
	if (s->slots)
		memset(s->slots, 0, s->n_slots * sizeof *s->slots);
}

/* the slot of V: its entry, or the empty slot it would take */
static size_t names_slot(const struct dsp_names *s, const char *v)
{
	size_t m = s->n_slots - 1, i = dsp_key_hash(v) & m;
	while (s->slots[i] && strcmp(s->v[s->slots[i] - 1], v) != 0)
		i = (i + 1) & m;
	return i;
}

static void names_add(struct dsp_names *s, const char *v)
{
	if (s->overflow || strlen(v) >= sizeof s->v[0])
		return;
	if (s->n_slots && s->slots[names_slot(s, v)])
		return; /* marked already */
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 16;
		void *n = nc <= DSP_DIRTY_MAX ? realloc(s->v, nc * sizeof *s->v) : NULL;
		uint32_t *sl = n ? calloc(nc * 2, sizeof *sl) : NULL;
		if (n)
			s->v = n;
		if (!sl) {
			s->overflow = true; /* all of them, from the store */
			return;
		}
		free(s->slots);
		s->slots = sl;
		s->n_slots = nc * 2;
		s->cap = nc;
		for (size_t i = 0; i < s->n; i++)
			s->slots[names_slot(s, s->v[i])] = (uint32_t)(i + 1);
	}
	snprintf(s->v[s->n], sizeof s->v[0], "%s", v);
	s->slots[names_slot(s, v)] = (uint32_t)(s->n + 1);
	s->n++;
}

void dsp_mark_warning(struct dsp_engine *e, const char *id)
{
	names_add(&e->dirty_ids, id);
	e->dirty_stats = true;
}

void dsp_mark_operator(struct dsp_engine *e, const char *op)
{
	names_add(&e->dirty_ops, op);
	e->dirty_stats = true;
}

void dsp_engine_views_mark_all(struct dsp_engine *e)
{
	e->dirty_all = e->dirty_silences = e->dirty_stats = true;
}

bool dsp_engine_views_pending(const struct dsp_engine *e, bool stats)
{
	return e->dirty_ids.n || e->dirty_ops.n || e->dirty_ids.overflow || e->dirty_ops.overflow ||
	       e->dirty_all || e->dirty_silences || (stats && e->dirty_stats);
}

/* --- WarningRecord --- */

struct dlv_scan {
	const char *prefix;   /* "<id>@" */
	size_t plen;
	Wf__V1__DeliveryRecord *v;
	char (*ch)[24], (*tg)[80];
	char (*detail)[97];
	size_t n, cap;        /* the arrays grow as they fill, to SCAN_DELIVERIES_MAX */
	int err;
};

/* The arrays move as they grow: the records point into them only once the
 * scan is over (dlv_link). */
static bool dlv_grow(struct dlv_scan *s)
{
	size_t nc = s->cap ? s->cap * 2 : 32;
	if (nc > SCAN_DELIVERIES_MAX)
		return false;
	void *v = realloc(s->v, nc * sizeof *s->v);
	if (v)
		s->v = v;
	void *ch = v ? realloc(s->ch, nc * sizeof *s->ch) : NULL;
	if (ch)
		s->ch = ch;
	void *tg = ch ? realloc(s->tg, nc * sizeof *s->tg) : NULL;
	if (tg)
		s->tg = tg;
	void *de = tg ? realloc(s->detail, nc * sizeof *s->detail) : NULL;
	if (!de) {
		s->err = -ENOMEM;
		return false;
	}
	s->detail = de;
	s->cap = nc;
	return true;
}

static void dlv_link(struct dlv_scan *s)
{
	for (size_t i = 0; i < s->n; i++) {
		s->v[i].channel = s->ch[i];
		s->v[i].target = s->tg[i];
		s->v[i].detail = s->detail[i];
	}
}

static int dlv_cb(void *ud, const void *k, size_t kl, const void *val, size_t vl)
{
	struct dlv_scan *s = ud;
	struct dsp_delivery rec;
	if (kl < s->plen || memcmp(k, s->prefix, s->plen) != 0)
		return 1; /* past the prefix */
	if (dsp_rec_decode(val, vl, &rec, sizeof rec) < 0)
		return 0;
	if (s->n == s->cap && !dlv_grow(s))
		return s->err ? 1 : 0; /* out of memory: stop; full: skip the rest */
	char key[DSP_KEY_MAX];
	size_t n = kl - s->plen < sizeof key - 1 ? kl - s->plen : sizeof key - 1;
	memcpy(key, (const char *)k + s->plen, n);
	key[n] = '\0';
	char *bar1 = strchr(key, '|'), *bar2 = bar1 ? strchr(bar1 + 1, '|') : NULL;
	if (!bar2)
		return 0;
	*bar1 = *bar2 = '\0';
	if (strcmp(bar1 + 1, "stats") == 0)
		return 0; /* duty.c's first-ack marker */
	Wf__V1__DeliveryRecord *d = &s->v[s->n];
	wf__v1__delivery_record__init(d);
	d->version = (uint32_t)strtoul(key, NULL, 10);
	snprintf(s->ch[s->n], sizeof s->ch[0], "%s", bar1 + 1);
	snprintf(s->tg[s->n], sizeof s->tg[0], "%s", bar2 + 1);
	memcpy(s->detail[s->n], rec.detail, sizeof rec.detail);
	s->detail[s->n][sizeof s->detail[0] - 1] = '\0';
	const char *st = dsp_delivery_state_to_string((enum dsp_delivery_state)rec.state);
	d->state = (char *)(st ? st : "?");
	d->at_ms = rec.at_ms;
	s->n++;
	return 0;
}

struct audit_scan {
	const char *prefix;   /* "<id>|" */
	size_t plen;
	Wf__V1__AuditEntry *ring[DSP_RECORD_AUDIT_MAX];
	size_t n;             /* entries seen (the ring keeps the last ones) */
};

static int audit_cb(void *ud, const void *k, size_t kl, const void *val, size_t vl)
{
	struct audit_scan *s = ud;
	if (kl < s->plen || memcmp(k, s->prefix, s->plen) != 0)
		return 1;
	Wf__V1__AuditEntry *a = wf__v1__audit_entry__unpack(NULL, vl, val);
	if (!a)
		return 0;
	size_t slot = s->n % DSP_RECORD_AUDIT_MAX;
	if (s->ring[slot])
		wf__v1__audit_entry__free_unpacked(s->ring[slot], NULL);
	s->ring[slot] = a;
	s->n++;
	return 0;
}

static bool keep_delivery(const Wf__V1__DeliveryRecord *d, uint32_t a, uint32_t b)
{
	return d->version == a || d->version == b;
}

int dsp_engine_record(struct dsp_engine *e, struct wf_txn *t, const char *id, int64_t now,
		      uint8_t **ret, size_t *ret_len)
{
	struct dsp_current cur;
	struct dsp_cancel cancel;
	int r = dsp_get_rec(t, e->db.current, id, &cur, sizeof cur);
	if (r < 0)
		return r;
	bool cancelled = dsp_get_rec(t, e->db.cancel, id, &cancel, sizeof cancel) == 0;

	Wf__V1__WarningRecord m = WF__V1__WARNING_RECORD__INIT;
	Wf__V1__VersionRecord vr[REC_VERSIONS_MAX], *vrp[REC_VERSIONS_MAX];
	Wf__V1__Warning *ws[REC_VERSIONS_MAX] = { 0 };
	char approvers[REC_VERSIONS_MAX][DSP_MAX_APPROVERS][WF_TOPIC_ID_MAX + 1];
	char *approverp[REC_VERSIONS_MAX][DSP_MAX_APPROVERS];
	char rejected[REC_VERSIONS_MAX][WF_TOPIC_ID_MAX + 1];
	Wf__V1__DeliveryRecord *dlp[REC_DELIVERIES_MAX];
	char prefix[DSP_KEY_MAX];
	struct dlv_scan ds = { prefix, 0, NULL, NULL, NULL, NULL, 0, 0, 0 };
	struct audit_scan as = { NULL, 0, { NULL }, 0 };
	Wf__V1__AuditEntry *aud[DSP_RECORD_AUDIT_MAX];
	const Wf__V1__Warning *latest = NULL;

	m.warning_id = (char *)id;
	m.level = (Wf__V1__Level)cur.level;
	m.msg_type = (Wf__V1__MsgType)cur.msg_type;
	m.status = (Wf__V1__Status)cur.status;
	m.latest = cur.latest;
	m.released = cur.released;
	m.active = cur.active;
	m.expires_ms = cur.expires_ms;
	uint32_t first = cur.latest > REC_VERSIONS_MAX ? cur.latest - REC_VERSIONS_MAX + 1 : 1;
	uint32_t other = cur.released ? cur.released : cancelled ? cancel.version : 0;
	uint64_t latest_seq = 0, other_seq = 0;
	for (uint32_t v = first; v <= cur.latest && v > 0; v++) {
		Wf__V1__Warning *w = NULL;
		struct dsp_review rv;
		struct dsp_review_rec rec;
		char rkey[DSP_KEY_MAX];
		uint64_t seq = 0;
		/* each version's number looked up once: its version and review by it */
		if (dsp_version_seq(t, &e->db, id, v, &seq) < 0 ||
		    dsp_get_warning_seq(t, &e->db, seq, &w) < 0)
			continue;
		if (v == cur.latest)
			latest_seq = seq;
		if (v == other)
			other_seq = seq;
		bool have_rv = seq && dsp_key_vkey(rkey, sizeof rkey, seq, id, v) > 0 &&
			       dsp_get_rec(t, e->db.review, rkey, &rec, sizeof rec) == 0;
		if (have_rv)
			rv = rec.rv;
		size_t i = m.n_versions++;
		ws[i] = w;
		Wf__V1__VersionRecord *x = &vr[i];
		wf__v1__version_record__init(x);
		x->version = v;
		x->msg_type = w->msg_type;
		x->level = w->level;
		x->status = w->status;
		x->sent_ms = w->sent_ms;
		x->headline = w->headline;
		x->n_regions = (uint32_t)w->n_regions;
		x->n_event_ids = (uint32_t)w->n_event_ids;
		x->rule_ids = w->rule_ids;
		x->n_rule_ids = w->n_rule_ids;
		if (have_rv) {
			x->review = (Wf__V1__ReviewState)rv.state;
			x->required = rv.required;
			for (unsigned k = 0; k < rv.n_approvers && k < DSP_MAX_APPROVERS; k++) {
				snprintf(approvers[i][k], sizeof approvers[i][k], "%s", rv.approvers[k]);
				approverp[i][k] = approvers[i][k];
			}
			x->approvers = approverp[i];
			x->n_approvers = rv.n_approvers < DSP_MAX_APPROVERS ? rv.n_approvers
									  : DSP_MAX_APPROVERS;
			snprintf(rejected[i], sizeof rejected[i], "%s", rv.rejected_by);
			x->rejected_by = rejected[i];
		}
		vrp[i] = x;
		if (v == cur.latest)
			latest = w;
	}
	m.versions = vrp;
	if (latest) {
		m.hazard = latest->hazard;
		m.headline = latest->headline;
		m.regions = latest->regions;
		m.n_regions = latest->n_regions < REC_REGIONS_MAX ? latest->n_regions : REC_REGIONS_MAX;
		m.event_ids = latest->event_ids;
		m.n_event_ids = latest->n_event_ids < REC_EVENTS_MAX ? latest->n_event_ids
								     : REC_EVENTS_MAX;
		m.rule_ids = latest->rule_ids;
		m.n_rule_ids = latest->n_rule_ids;
		m.review = m.n_versions ? vr[m.n_versions - 1].review : 0;
	}
	/* deliveries of the latest and the released (or cancelled) version,
	 * each under its version's key prefix (the released one may be older
	 * than the versions listed) */
	if (other && other != cur.latest && !other_seq &&
	    dsp_version_seq(t, &e->db, id, other, &other_seq) < 0)
		other_seq = 0;
	uint64_t seqs[2] = { latest_seq, other != cur.latest ? other_seq : 0 };
	for (size_t i = 0; r >= 0 && i < 2 && !ds.err; i++) {
		if (!seqs[i])
			continue;
		int pl = dsp_key_vprefix(prefix, sizeof prefix, seqs[i], id);
		if (pl < 0)
			continue;
		ds.plen = (size_t)pl;
		r = wf_store_foreach(t, e->db.delivery, prefix, ds.plen, dlv_cb, &ds);
	}
	if (r >= 0 && ds.err)
		r = ds.err;
	dlv_link(&ds);
	for (size_t i = 0; r >= 0 && i < ds.n; i++) {
		const Wf__V1__DeliveryRecord *d = &ds.v[i];
		if (keep_delivery(d, cur.latest, other) && m.n_deliveries < REC_DELIVERIES_MAX)
			dlp[m.n_deliveries++] = &ds.v[i];
		if (d->version == cur.latest && strcmp(d->channel, "duty") == 0 &&
		    strchr(d->target, '/') == NULL && strcmp(d->state, "not_configured") != 0) {
			m.notices++;
			if (strncmp(d->state, "acked", 5) == 0)
				m.acks++;
		}
	}
	m.deliveries = dlp;
	/* the audit trail (the latest entries) */
	char aprefix[DSP_KEY_MAX];
	snprintf(aprefix, sizeof aprefix, "%s|", id);
	as.prefix = aprefix;
	as.plen = strlen(aprefix);
	if (r >= 0)
		r = wf_store_foreach(t, e->db.audit, aprefix, as.plen, audit_cb, &as);
	size_t n_aud = as.n < DSP_RECORD_AUDIT_MAX ? as.n : DSP_RECORD_AUDIT_MAX;
	for (size_t i = 0; i < n_aud; i++)
		aud[i] = as.ring[(as.n - n_aud + i) % DSP_RECORD_AUDIT_MAX];
	m.audit = aud;
	m.n_audit = n_aud;
	if (cancelled) {
		m.cancelled = true;
		m.cancelled_by = cancel.operator_;
		m.cancelled_ms = cancel.at_ms;
		m.cancel_reason = cancel.reason;
		m.cancelled_version = cancel.version;
	}
	m.updated_ms = now;
	m.producer = e->service;
	if (r >= 0) {
		size_t len = wf__v1__warning_record__get_packed_size(&m);
		uint8_t *buf = malloc(len ? len : 1);
		if (!buf) {
			r = -ENOMEM;
		} else {
			wf__v1__warning_record__pack(&m, buf);
			*ret = buf;
			*ret_len = len;
			r = 0;
		}
	}
	for (size_t i = 0; i < DSP_RECORD_AUDIT_MAX; i++)
		if (as.ring[i])
			wf__v1__audit_entry__free_unpacked(as.ring[i], NULL);
	for (size_t i = 0; i < m.n_versions; i++) /* ws[i] is set for each listed version */
		wf_codec_warning_free(ws[i]);
	free(ds.v);
	free(ds.ch);
	free(ds.tg);
	free(ds.detail);
	return r < 0 ? r : 0;
}

static int push_record(struct dsp_engine *e, struct wf_txn *t, const char *id, int64_t now)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	char topic[WF_TOPIC_MAX + 96], key[DSP_KEY_MAX];
	int r = dsp_engine_record(e, t, id, now, &buf, &len);
	if (r == -ENOENT)
		return 0; /* a refused decision on an unknown warning: no record */
	if (r < 0)
		return r;
	snprintf(topic, sizeof topic, "wf/v1/review/%s", id);
	snprintf(key, sizeof key, "review|%s", id);
	r = dsp_out_push(e, DSP_OUT_VIEW, key, topic, true, buf, len);
	free(buf);
	return r;
}

static int push_verdicts(struct dsp_engine *e, struct wf_txn *t, const char *op)
{
	void *buf = NULL;
	size_t len = 0;
	char topic[WF_TOPIC_MAX + 96], key[DSP_KEY_MAX];
	int r = wf_store_get(t, e->db.verdict, op, strlen(op), &buf, &len);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	snprintf(topic, sizeof topic, "wf/v1/verdict/%s", op);
	snprintf(key, sizeof key, "verdict|%s", op);
	r = dsp_out_push(e, DSP_OUT_VIEW, key, topic, true, buf, len);
	free(buf);
	return r;
}

/* --- everything: after a reconnect, or when a dirty set overflowed --- */

struct all_scan {
	struct dsp_engine *e;
	struct wf_txn *t;
	int64_t now;
	int err;
	size_t n;
	char stop[DSP_KEY_MAX]; /* the first key not built when the pass stopped */
	size_t stop_len;
};

static int all_records_cb(void *ud, const void *k, size_t kl, const void *v, size_t vl)
{
	struct all_scan *s = ud;
	struct dsp_current cur;
	char id[130];
	if (kl >= sizeof id || dsp_rec_decode(v, vl, &cur, sizeof cur) < 0)
		return 0;
	memcpy(id, k, kl);
	id[kl] = '\0';
	/* active ones, and those that ended within a day (list --all): by
	 * their expiry, or by when they ended here (a cancel of a warning
	 * whose expiry is long past: a replayed or late one) */
	if (!cur.active && cur.expires_ms < s->now - 86400000LL) {
		int64_t purge_at = 0;
		if (dsp_retain_at(s->t, &s->e->db, id, &purge_at) < 0 ||
		    purge_at < s->now + s->e->cfg.retain_ms - 86400000LL)
			return 0;
	}
	if (++s->n > 4096) {
		/* the next pass goes on from here (kl < sizeof id <= DSP_KEY_MAX) */
		memcpy(s->stop, k, kl);
		s->stop_len = kl;
		return 1;
	}
	int r = push_record(s->e, s->t, id, s->now);
	return r < 0 ? r : 0;
}

static int all_verdicts_cb(void *ud, const void *k, size_t kl, const void *v, size_t vl)
{
	struct all_scan *s = ud;
	char op[130];
	if (kl >= sizeof op)
		return 0;
	memcpy(op, k, kl);
	op[kl] = '\0';
	int r = push_verdicts(s->e, s->t, op);
	return r < 0 ? r : 0;
}

/* --- SilenceList --- */

static void silence_msg(Wf__V1__SilenceRecord *m, const struct dsp_silence *s)
{
	wf__v1__silence_record__init(m);
	m->id = (char *)s->id;
	m->channel = (char *)dsp_channel_to_string(s->channel);
	m->region_prefix = (char *)s->prefix;
	m->hazard = s->hazard;
	m->expires_ms = s->expires_ms;
	m->reason = (char *)s->reason;
}

struct sil_scan {
	struct dsp_engine *e;
	struct wf_txn *t;
	int64_t now;
	struct dsp_silence *v;
	struct dsp_silmeta *meta;
	size_t n, cap;
};

static int sil_cb(void *ud, const void *k, size_t kl, const void *val, size_t vl)
{
	struct sil_scan *s = ud;
	if (vl != sizeof(struct dsp_silence) || s->n >= s->cap)
		return 0;
	memcpy(&s->v[s->n], val, vl);
	if (s->v[s->n].expires_ms <= s->now)
		return 0;
	if (dsp_get_rec(s->t, s->e->db.silmeta, s->v[s->n].id, &s->meta[s->n], sizeof s->meta[0]) < 0)
		memset(&s->meta[s->n], 0, sizeof s->meta[0]);
	s->n++;
	return 0;
}

static int push_silences(struct dsp_engine *e, struct wf_txn *t, int64_t now)
{
	const struct dsp_routing *rt = &e->routing;
	struct sil_scan s = { e, t, now, NULL, NULL, 0, DSP_MAX_SILENCES };
	size_t total = rt->n_silences + DSP_MAX_SILENCES;
	Wf__V1__SilenceRecord *recs = calloc(total, sizeof *recs);
	Wf__V1__SilenceRecord **p = calloc(total, sizeof *p);
	char topic[WF_TOPIC_MAX + 96];
	s.v = calloc(s.cap, sizeof *s.v);
	s.meta = calloc(s.cap, sizeof *s.meta);
	int r = recs && p && s.v && s.meta ? 0 : -ENOMEM;
	if (r == 0)
		r = wf_store_foreach(t, e->db.silence, NULL, 0, sil_cb, &s);
	Wf__V1__SilenceList m = WF__V1__SILENCE_LIST__INIT;
	for (size_t i = 0; r >= 0 && i < rt->n_silences; i++) {
		if (rt->silences[i].expires_ms <= now)
			continue;
		silence_msg(&recs[m.n_silences], &rt->silences[i]);
		p[m.n_silences] = &recs[m.n_silences];
		m.n_silences++;
	}
	for (size_t i = 0; r >= 0 && i < s.n; i++) {
		Wf__V1__SilenceRecord *x = &recs[m.n_silences];
		silence_msg(x, &s.v[i]);
		x->operator_ = s.meta[i].operator_;
		x->sent_ms = s.meta[i].sent_ms;
		x->applied_ms = s.meta[i].applied_ms;
		p[m.n_silences++] = x;
	}
	m.silences = p;
	m.updated_ms = now;
	m.producer = e->service;
	if (r >= 0) {
		size_t len = wf__v1__silence_list__get_packed_size(&m);
		uint8_t *buf = malloc(len ? len : 1);
		if (!buf) {
			r = -ENOMEM;
		} else {
			wf__v1__silence_list__pack(&m, buf);
			snprintf(topic, sizeof topic, "wf/v1/silences/%s", e->service);
			r = dsp_out_push(e, DSP_OUT_VIEW, "silences", topic, true, buf, len);
			free(buf);
		}
	}
	free(recs);
	free(p);
	free(s.v);
	free(s.meta);
	return r < 0 ? r : 0;
}

int dsp_engine_views(struct dsp_engine *e, struct wf_txn *t, int64_t now, bool with_stats,
		     const struct dsp_stats_extra *extra, size_t n_extra)
{
	int r = 0;
	struct all_scan all = { e, t, now, 0, 0, { 0 }, 0 };
	bool all_done = true;
	if (e->dirty_ids.overflow) {
		/* changes beyond what the set holds: all of them, from the start
		 * (also when a rebuild was under way: those before it moved on) */
		e->dirty_all = true;
		e->all_from_len = 0;
	}
	if (e->dirty_all) {
		/* 4,096 records a pass: the rest in the next passes (the views
		 * stay pending), from where this one stopped */
		r = wf_store_foreach(t, e->db.current, e->all_from_len ? e->all_from : NULL,
				     e->all_from_len, all_records_cb, &all);
		all_done = r == 0;
		if (r > 0)
			r = 0;
	}
	if (!e->dirty_ids.overflow) /* (with an overflow, the whole scan covers them) */
		for (size_t i = 0; r >= 0 && i < e->dirty_ids.n; i++)
			r = push_record(e, t, e->dirty_ids.v[i], now);
	if (r >= 0 && (e->dirty_all || e->dirty_ops.overflow))
		r = wf_store_foreach(t, e->db.verdict, NULL, 0, all_verdicts_cb, &all);
	else
		for (size_t i = 0; r >= 0 && i < e->dirty_ops.n; i++)
			r = push_verdicts(e, t, e->dirty_ops.v[i]);
	if (r >= 0 && e->dirty_silences)
		r = push_silences(e, t, now);
	if (r >= 0 && with_stats && e->dirty_stats) {
		struct dsp_stats s;
		uint8_t *buf = NULL;
		size_t len = 0;
		char topic[WF_TOPIC_MAX + 96];
		r = dsp_stats_load(t, &e->db, &s);
		if (r == 0)
			r = dsp_stats_pack(&s, extra, n_extra, e->service, now, &buf, &len);
		if (r == 0) {
			snprintf(topic, sizeof topic, "wf/v1/stats/%s", e->service);
			r = dsp_out_push(e, DSP_OUT_VIEW, "stats", topic, true, buf, len);
			free(buf);
		}
		if (r == 0)
			e->dirty_stats = false;
	}
	if (r < 0) {
		wf_log(LOG_ERR, "views", "cannot build the dispatcher's views: %s", strerror(-r));
		return r;
	}
	names_clear(&e->dirty_ids);
	names_clear(&e->dirty_ops);
	e->dirty_silences = false;
	if (all_done) {
		e->dirty_all = false;
		e->all_from_len = 0;
	} else {
		memcpy(e->all_from, all.stop, all.stop_len);
		e->all_from_len = all.stop_len;
	}
	return 0;
}
