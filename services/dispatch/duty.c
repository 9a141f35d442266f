/* duty: duty stations (值班值守): notices, acknowledgement deadlines,
 * escalation up the administrative tree, review-timeout escalation and
 * follow-up (续报) reminders (docs/dispatch.md, "Duty stations"). */
#include "dispatch-internal.h"
#include "stats.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "wf/log.h"
#include "wf/node.h"

#define SCAN_MAX 4096u /* due records handled per tick (the rest next tick) */

static void notice_text(struct dsp_engine *e, const Wf__V1__Warning *w, Wf__V1__NoticeKind kind,
			const char *from, char *buf, size_t size)
{
	const char *hz = wf_hazard_name_zh(w->hazard);
	const char *col = wf_level_colour_zh(w->level);
	const char *head = w->headline && *w->headline ? w->headline : "";
	const char *prefix = "";
	switch (kind) {
	case WF__V1__NOTICE_KIND__NOTICE_KIND_REMINDER:
		prefix = "【续报提醒】";
		break;
	case WF__V1__NOTICE_KIND__NOTICE_KIND_ESCALATION:
		prefix = from && *from ? "【逾期未确认，上报】" : "【审核超时，上报】";
		break;
	case WF__V1__NOTICE_KIND__NOTICE_KIND_RELEASED:
		prefix = "【已审核发布】";
		break;
	default:
		break;
	}
	const char *rname = "";
	const struct wf_region *rg = e->regions ? wf_region_find(e->regions, w->regions[0]) : NULL;
	if (rg)
		rname = wf_region_name(rg);
	/* joined by hand (one per notice), cut at SIZE - 1 bytes as snprintf would */
	const char *parts[] = { prefix, rname, hz ? hz : "", col ? col : "", "预警",
				w->msg_type == WF__V1__MSG_TYPE__MSG_TYPE_CANCEL ? "（解除）" : "",
				*head ? "：" : "", head };
	size_t n = 0;
	for (size_t i = 0; i < sizeof parts / sizeof parts[0] && n + 1 < size; i++) {
		size_t l = strlen(parts[i]);
		if (l > size - 1 - n)
			l = size - 1 - n;
		memcpy(buf + n, parts[i], l);
		n += l;
	}
	buf[n] = '\0';
}

/* Queues the notice for STATION (its identity: station, version, kind,
 * deadline, so a resync replaces rather than repeats it). */
static int push_notice(struct dsp_engine *e, const Wf__V1__Warning *w, const char *station,
		       Wf__V1__NoticeKind kind, bool pending_review, int64_t deadline,
		       const char *from, int64_t now)
{
	char text[1024], topic[WF_TOPIC_MAX], key[DSP_KEY_MAX];
	uint8_t *buf = NULL;
	size_t len = 0;
	struct wf_codec_error why;
	Wf__V1__DutyNotice n = WF__V1__DUTY_NOTICE__INIT;

	notice_text(e, w, kind, from, text, sizeof text);
	n.station = (char *)station;
	n.warning_id = w->id;
	n.version = w->version;
	n.level = w->level;
	n.hazard = w->hazard;
	n.regions = w->regions;
	n.n_regions = w->n_regions;
	n.text = text;
	n.pending_review = pending_review;
	n.deadline_ms = deadline;
	n.kind = kind;
	n.status = w->status;
	n.msg_type = w->msg_type;
	n.escalated_from = (char *)(from ? from : "");
	n.producer = e->service;
	n.sent_ms = now;
	int r = wf_codec_duty_notice_pack(&n, &e->limits, now, &buf, &len, &why);
	if (r < 0) {
		wf_log(LOG_ERR, "duty", "notice for %s@%u to %s not packed: %s %s", w->id, w->version,
		       station, why.field, why.detail);
		return r == -EBADMSG ? -EINVAL : r;
	}
	r = wf_topic_duty(topic, sizeof topic, station, WF_TOPIC_DUTY_INBOX);
	/* msg_type too: an operator's 解除 of a version is not its notice */
	if (r == 0 && dsp_key_notice(key, sizeof key, station, w->id, w->version, (int)kind, deadline,
				     (int)w->msg_type) < 0)
		r = -ENAMETOOLONG;
	if (r == 0)
		r = dsp_out_push(e, DSP_OUT_MQTT, key, topic, false, buf, len);
	free(buf);
	return r;
}

static int put_duty(struct dsp_engine *e, struct wf_txn *t, const char *station, const char *id,
		    uint32_t version, const struct dsp_duty *d)
{
	char key[DSP_KEY_MAX];
	int r = dsp_key_duty(t, &e->db, key, sizeof key, station, id, version);
	return r < 0 ? r : dsp_put_indexed(t, &e->db, DSP_DUE_DUTY, key, d, sizeof *d);
}

static int get_duty(struct dsp_engine *e, struct wf_txn *t, const char *station, const char *id,
		    uint32_t version, struct dsp_duty *d)
{
	char key[DSP_KEY_MAX];
	int r = dsp_key_duty(t, &e->db, key, sizeof key, station, id, version);
	return r < 0 ? r : dsp_get_rec(t, e->db.duty, key, d, sizeof *d);
}

static int64_t deadline_for(const struct dsp_engine *e, Wf__V1__Level level, int64_t now)
{
	int64_t d = (int)level >= 1 && level <= 4 ? e->cfg.ack_deadline_ms[level] : 0;
	return d > 0 ? now + d : 0;
}

/* Creates the duty record for STATION and queues its notice. */
static int notify_one(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Warning *w,
		      const char *station, Wf__V1__NoticeKind kind, bool pending_review,
		      const char *from, int64_t now)
{
	struct dsp_duty d;
	memset(&d, 0, sizeof d);
	d.rec_version = 1;
	d.state = DSP_DUTY_PENDING;
	d.kind = (uint8_t)kind;
	d.pending_review = pending_review;
	d.sent_ms = now;
	d.deadline_ms = deadline_for(e, w->level, now);
	if (from) {
		size_t fl = strnlen(from, sizeof d.from - 1);
		memcpy(d.from, from, fl); /* d is zeroed: NUL-terminated */
	}
	/* a notice of a version just received, or an escalation: new, as a rule */
	char key[DSP_KEY_MAX];
	int r = dsp_key_duty(t, &e->db, key, sizeof key, station, w->id, w->version);
	if (r >= 0)
		r = dsp_put_indexed_new(t, &e->db, DSP_DUE_DUTY, key, &d, sizeof d);
	if (r == 0)
		r = push_notice(e, w, station, kind, pending_review, d.deadline_ms, from, now);
	if (r == 0)
		r = dsp_record(t, &e->db, w->id, w->version, "duty", station,
			       kind == WF__V1__NOTICE_KIND__NOTICE_KIND_ESCALATION ? DSP_DLV_ESCALATED
										  : DSP_DLV_SENT,
			       now, "deadline %lld%s%s", (long long)d.deadline_ms,
			       from && *from ? " from " : "", from ? from : "");
	return r;
}

int dsp_duty_notify(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Warning *w,
		    const struct dsp_route_result *route, bool pending_review, int64_t now)
{
	const char *ids[DSP_ROUTE_MAX_LIST * 8];
	size_t n = 0;

	for (size_t i = 0; i < route->n_stations && n < sizeof ids / sizeof ids[0]; i++)
		ids[n++] = route->stations[i];
	for (size_t i = 0; route->auto_stations && i < w->n_regions; i++) {
		const struct dsp_station *s = dsp_station_for(&e->routing, w->regions[i]);
		if (!s) {
			wf_log(LOG_WARNING, "duty", "%s@%u: no duty station covers region %s", w->id,
			       w->version, w->regions[i]);
			int r = dsp_record(t, &e->db, w->id, w->version, "duty", w->regions[i],
					   DSP_DLV_NOT_CONFIGURED, now, "no station for the region");
			if (r < 0)
				return r;
			continue;
		}
		bool dup = false;
		for (size_t k = 0; k < n; k++)
			dup = dup || strcmp(ids[k], s->id) == 0;
		if (!dup && n < sizeof ids / sizeof ids[0])
			ids[n++] = s->id;
	}
	for (size_t i = 0; i < n; i++) {
		int r = notify_one(e, t, w, ids[i], WF__V1__NOTICE_KIND__NOTICE_KIND_NOTICE,
				   pending_review, NULL, now);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Stats: the first acknowledgement of ID@VERSION by any station (marked
 * by the delivery record "<id>@<v>|duty|*first-ack", which no station id
 * can be), SENT_MS its notice's time. */
static int first_ack(struct dsp_engine *e, struct wf_txn *t, const char *id, uint32_t version,
		     int64_t sent_ms, int64_t now)
{
	char key[DSP_KEY_MAX];
	struct dsp_delivery rec;
	int r = dsp_key_delivery(t, &e->db, key, sizeof key, id, version, "stats", "first-ack");
	if (r < 0)
		return r;
	r = dsp_get_rec(t, e->db.delivery, key, &rec, sizeof rec);
	if (r != -ENOENT)
		return r < 0 ? r : 0;
	memset(&rec, 0, sizeof rec);
	rec.rec_version = 1;
	rec.at_ms = now;
	r = dsp_put_rec(t, e->db.delivery, key, &rec, sizeof rec);
	return r < 0 ? r : dsp_stats_first_ack(t, &e->db, now - sent_ms, now);
}

int dsp_duty_ack(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__DutyAck *a, int64_t now,
		 struct wf_codec_error *why)
{
	struct dsp_duty d;
	int r = get_duty(e, t, a->station, a->warning_id, a->version, &d);
	if (r == -ENOENT) {
		why->reason = WF_REASON_BAD_REFERENCE;
		snprintf(why->field, sizeof why->field, "warning_id");
		snprintf(why->detail, sizeof why->detail, "no notice of %.60s@%u to %.40s",
			 a->warning_id, a->version, a->station);
		return WF_NODE_REJECT;
	}
	if (r < 0)
		return r;
	if (d.state == DSP_DUTY_ACKED)
		return 0;
	bool late = d.state == DSP_DUTY_ESCALATED;
	d.acked_ms = a->acked_ms;
	snprintf(d.operator_, sizeof d.operator_, "%s", a->operator_);
	if (d.state == DSP_DUTY_PENDING)
		d.state = DSP_DUTY_ACKED;
	r = put_duty(e, t, a->station, a->warning_id, a->version, &d);
	if (r == 0)
		r = dsp_record(t, &e->db, a->warning_id, a->version, "duty", a->station,
			       late ? DSP_DLV_ACKED_LATE : DSP_DLV_ACKED, now, "by %.60s",
			       a->operator_);
	if (r == 0)
		r = first_ack(e, t, a->warning_id, a->version, d.sent_ms, now);
	if (r < 0)
		return r;
	dsp_mark_warning(e, a->warning_id);
	wf_log(LOG_INFO, "duty", "%s acknowledged %s@%u%s (%s)", a->station, a->warning_id,
	       a->version, late ? " after escalation" : "", a->operator_);

	/* 续报: an active warning at II or above gets follow-up reminders */
	struct dsp_current cur;
	if (e->cfg.followup_interval_ms <= 0 ||
	    dsp_get_rec(t, e->db.current, a->warning_id, &cur, sizeof cur) < 0 || !cur.active ||
	    cur.level < 1 || cur.level > WF__V1__LEVEL__LEVEL_II)
		return 0;
	char key[DSP_KEY_MAX];
	struct dsp_followup f;
	r = dsp_key_followup(key, sizeof key, a->station, a->warning_id);
	if (r < 0)
		return r;
	r = dsp_get_rec(t, e->db.followup, key, &f, sizeof f);
	if (r == 0)
		return 0; /* already being reminded (or done) */
	if (r != -ENOENT)
		return r;
	memset(&f, 0, sizeof f);
	f.rec_version = 1;
	f.next_ms = now + e->cfg.followup_interval_ms;
	return dsp_put_indexed(t, &e->db, DSP_DUE_FOLLOWUP, key, &f, sizeof f);
}

int dsp_duty_followup(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__FollowUp *fu,
		      int64_t now)
{
	char key[DSP_KEY_MAX];
	struct dsp_followup f;
	struct dsp_current cur;
	int r = dsp_key_followup(key, sizeof key, fu->station, fu->warning_id);
	if (r < 0)
		return r;
	r = dsp_get_rec(t, e->db.followup, key, &f, sizeof f);
	if (r == -ENOENT) {
		memset(&f, 0, sizeof f);
		f.rec_version = 1;
	} else if (r < 0) {
		return r;
	}
	f.done = 1;
	r = dsp_put_indexed(t, &e->db, DSP_DUE_FOLLOWUP, key, &f, sizeof f);
	uint32_t ver = dsp_get_rec(t, e->db.current, fu->warning_id, &cur, sizeof cur) == 0
			       ? cur.latest
			       : 0;
	if (r == 0)
		r = dsp_record(t, &e->db, fu->warning_id, ver, "followup", fu->station,
			       DSP_DLV_FOLLOWUP, now, "%.90s", fu->text);
	wf_log(LOG_INFO, "duty", "%s filed a follow-up report on %s", fu->station, fu->warning_id);
	return r;
}

/* --- deadlines (from the index, engine.c) --- */

/* Splits "station|<seq>:id@ver" (or "station|id" when VER is NULL) in
 * place. */
static int split_key(char *key, char **station, char **id, uint32_t *ver)
{
	char *bar = strchr(key, '|');
	if (!bar)
		return -EINVAL;
	*bar = '\0';
	*station = key;
	*id = ver ? (char *)dsp_key_skip_seq(bar + 1) : bar + 1;
	if (ver) {
		char *at = strrchr(*id, '@');
		if (!at)
			return -EINVAL;
		*at = '\0';
		*ver = (uint32_t)strtoul(at + 1, NULL, 10);
	}
	return 0;
}

int dsp_duty_missed(struct dsp_engine *e, struct wf_txn *t, const char *full, int64_t now)
{
	char key[DSP_KEY_MAX];
	char *station, *id;
	uint32_t ver;
	struct dsp_duty d;
	struct dsp_current cur;
	Wf__V1__Warning *w = NULL;

	snprintf(key, sizeof key, "%s", full);
	if (split_key(key, &station, &id, &ver) < 0 || get_duty(e, t, station, id, ver, &d) < 0 ||
	    d.state != DSP_DUTY_PENDING || d.deadline_ms == 0 || d.deadline_ms > now)
		return 0;
	if (dsp_get_rec(t, e->db.current, id, &cur, sizeof cur) == 0 && ver < cur.latest) {
		/* a newer version was sent meanwhile, with its own deadline */
		d.state = DSP_DUTY_SUPERSEDED;
		int r = put_duty(e, t, station, id, ver, &d);
		return r < 0 ? r
			     : dsp_record(t, &e->db, id, ver, "duty", station, DSP_DLV_SUPERSEDED, now,
					  "version %u sent", cur.latest);
	}
	struct dsp_cancel mc;
	if (dsp_get_rec(t, e->db.cancel, id, &mc, sizeof mc) == 0 && mc.version == ver) {
		/* withdrawn by an operator (解除, notified to the station) before
		 * the deadline: nothing left for the station above to act on */
		d.state = DSP_DUTY_SUPERSEDED;
		int r = put_duty(e, t, station, id, ver, &d);
		return r < 0 ? r
			     : dsp_record(t, &e->db, id, ver, "duty", station, DSP_DLV_SUPERSEDED, now,
					  "withdrawn by %.64s (解除) before the deadline", mc.operator_);
	}
	d.state = DSP_DUTY_ESCALATED;
	int r = put_duty(e, t, station, id, ver, &d);
	if (r < 0)
		return r;
	const struct dsp_station *s = dsp_station_find(&e->routing, station);
	const struct dsp_station *up = s ? dsp_station_parent(&e->routing, s) : NULL;
	if (!up) {
		wf_log(LOG_ERR, "duty", "%s missed the deadline for %s@%u and no station is above it",
		       station, id, ver);
		return dsp_record(t, &e->db, id, ver, "duty", station, DSP_DLV_MISSED_TOP, now,
				  "deadline %lld passed; top of the tree", (long long)d.deadline_ms);
	}
	r = dsp_record(t, &e->db, id, ver, "duty", station, DSP_DLV_MISSED, now,
		       "deadline %lld passed; escalated to %s", (long long)d.deadline_ms, up->id);
	if (r < 0)
		return r;
	struct dsp_duty existing;
	if (get_duty(e, t, up->id, id, ver, &existing) == 0)
		return 0; /* the station above already has this version */
	r = dsp_get_warning(t, &e->db, id, ver, &w);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	wf_log(LOG_WARNING, "duty", "%s missed the deadline for %s@%u: escalated to %s", station, id,
	       ver, up->id);
	r = notify_one(e, t, w, up->id, WF__V1__NOTICE_KIND__NOTICE_KIND_ESCALATION,
		       d.pending_review, station, now);
	wf_codec_warning_free(w);
	return r;
}

int dsp_duty_remind(struct dsp_engine *e, struct wf_txn *t, const char *full, int64_t now)
{
	char key[DSP_KEY_MAX];
	char *station, *id;
	struct dsp_followup f;
	struct dsp_current cur;

	snprintf(key, sizeof key, "%s", full);
	if (dsp_get_rec(t, e->db.followup, full, &f, sizeof f) < 0 || f.done || f.next_ms > now ||
	    split_key(key, &station, &id, NULL) < 0)
		return 0;
	if (dsp_get_rec(t, e->db.current, id, &cur, sizeof cur) < 0 || !cur.active ||
	    cur.level < 1 || cur.level > WF__V1__LEVEL__LEVEL_II || cur.expires_ms <= now) {
		f.done = 2; /* the warning ended or fell below II */
		return dsp_put_indexed(t, &e->db, DSP_DUE_FOLLOWUP, full, &f, sizeof f);
	}
	Wf__V1__Warning *w = NULL;
	int r = dsp_get_warning(t, &e->db, id, cur.latest, &w);
	if (r == -ENOENT) {
		f.done = 2; /* nothing to remind of: never loop on it */
		return dsp_put_indexed(t, &e->db, DSP_DUE_FOLLOWUP, full, &f, sizeof f);
	}
	if (r < 0)
		return r;
	f.reminders++;
	f.next_ms = now + e->cfg.followup_interval_ms;
	r = dsp_put_indexed(t, &e->db, DSP_DUE_FOLLOWUP, full, &f, sizeof f);
	if (r == 0)
		r = push_notice(e, w, station, WF__V1__NOTICE_KIND__NOTICE_KIND_REMINDER, false, 0, NULL,
				now);
	if (r == 0)
		r = dsp_record(t, &e->db, id, cur.latest, "followup", station, DSP_DLV_REMINDED, now,
			       "reminder %u", f.reminders);
	wf_codec_warning_free(w);
	return r;
}

/* Stations notified for ID@VER, found from its delivery records
 * "<id>@<ver>|duty|<station>" (a prefix of d-delivery, not a scan of every
 * notice): those with a kind NOTICE duty record (NOTIFIED_NOTICE), those
 * sent an operator's 解除 notice ("<station>/cancel", no duty record:
 * NOTIFIED_CANCEL), those sent a RELEASED notice ("<station>/released":
 * NOTIFIED_RELEASED), or those whose duty record of any kind still says
 * pending review (NOTIFIED_PENDING). */
enum notified_what { NOTIFIED_NOTICE, NOTIFIED_CANCEL, NOTIFIED_RELEASED, NOTIFIED_PENDING };

struct notified {
	struct dsp_engine *e;
	struct wf_txn *t;
	const char *prefix;
	size_t plen;
	const char *id;
	uint32_t version;
	enum notified_what what;
	char (*stations)[DSP_ID_MAX + 1];
	size_t n, cap;
};

#define CANCEL_SUFFIX "/cancel"
#define RELEASED_SUFFIX "/released"

static int notified_scan(void *ud, const void *k, size_t kl, const void *v, size_t vl)
{
	struct notified *s = ud;
	struct dsp_duty rec;
	char st[DSP_ID_MAX + 1];
	(void)v;
	(void)vl;
	if (kl < s->plen || memcmp(k, s->prefix, s->plen) != 0)
		return 1; /* past the version's duty records */
	const char *name = (const char *)k + s->plen;
	size_t sl = kl - s->plen;
	/* the informational notices' records end in their suffix */
	const char *suffix = s->what == NOTIFIED_CANCEL	    ? CANCEL_SUFFIX
			     : s->what == NOTIFIED_RELEASED ? RELEASED_SUFFIX
							    : NULL;
	if (suffix) {
		size_t xl = strlen(suffix);
		if (sl <= xl || memcmp(name + sl - xl, suffix, xl) != 0)
			return 0;
		sl -= xl;
	}
	if (sl == 0 || sl > DSP_ID_MAX || memchr(name, '/', sl) || s->n >= s->cap)
		return 0;
	memcpy(st, name, sl);
	st[sl] = '\0';
	bool take = suffix != NULL;
	if (!suffix && get_duty(s->e, s->t, st, s->id, s->version, &rec) == 0)
		take = s->what == NOTIFIED_PENDING ? rec.pending_review != 0
						   : rec.kind == WF__V1__NOTICE_KIND__NOTICE_KIND_NOTICE;
	if (take)
		memcpy(s->stations[s->n++], st, sl + 1);
	return 0;
}

static int notified_of(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Warning *w,
		       enum notified_what what, struct notified *s)
{
	char prefix[DSP_KEY_MAX];
	s->stations = NULL;
	int r = dsp_key_delivery(t, &e->db, prefix, sizeof prefix, w->id, w->version, "duty", "");
	if (r < 0)
		return r;
	*s = (struct notified){ e, t, prefix, (size_t)r, w->id, w->version, what, NULL, 0, 256 };
	s->stations = calloc(s->cap, sizeof *s->stations);
	if (!s->stations)
		return -ENOMEM;
	r = wf_store_foreach(t, e->db.delivery, prefix, s->plen, notified_scan, s);
	s->prefix = NULL;
	return r < 0 ? r : 0;
}

static int notified(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Warning *w,
		    struct notified *s)
{
	return notified_of(e, t, w, NOTIFIED_NOTICE, s);
}

int dsp_duty_review_timeout(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Warning *w,
			    int64_t now);
int dsp_duty_review_timeout(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Warning *w,
			    int64_t now)
{
	struct notified s;
	int r = notified(e, t, w, &s);
	for (size_t i = 0; r >= 0 && i < s.n; i++) {
		const struct dsp_station *st = dsp_station_find(&e->routing, s.stations[i]);
		const struct dsp_station *up = st ? dsp_station_parent(&e->routing, st) : NULL;
		struct dsp_duty existing;
		if (!up || get_duty(e, t, up->id, w->id, w->version, &existing) == 0)
			continue;
		r = notify_one(e, t, w, up->id, WF__V1__NOTICE_KIND__NOTICE_KIND_ESCALATION, true, "",
			       now);
	}
	free(s.stations);
	return r < 0 ? r : 0;
}

/* The pending notices (d-dpend, in key order) after the cursor. */
struct pend {
	const char *after;
	size_t alen;
	char (*keys)[DSP_KEY_MAX];
	size_t n, cap;
	bool more;
};

static int pend_scan(void *ud, const void *k, size_t kl, const void *v, size_t vl)
{
	struct pend *p = ud;
	(void)v;
	(void)vl;
	if (kl >= DSP_KEY_MAX)
		return 0;
	if (p->alen && kl == p->alen && memcmp(k, p->after, kl) == 0)
		return 0; /* the cursor itself: sent in the previous pass */
	if (p->n == p->cap) {
		p->more = true;
		return 1;
	}
	memcpy(p->keys[p->n], k, kl);
	p->keys[p->n][kl] = '\0';
	p->n++;
	return 0;
}

/* At most SCAN_MAX pending notices per call, from where the previous call
 * stopped (e->resync_cursor), so that with more pending than that every
 * one still comes in turn; returns 1 when some are left for the next call,
 * 0 when this one reached the end. Reads d-dpend, the list of pending
 * notices: the cost follows what is pending, not the notices kept. */
int dsp_duty_resync(struct dsp_engine *e, struct wf_txn *t, int64_t now)
{
	struct pend p = { e->resync_cursor, strlen(e->resync_cursor), NULL, 0, SCAN_MAX, false };
	p.keys = calloc(p.cap, sizeof *p.keys);
	if (!p.keys)
		return -ENOMEM;
	int r = wf_store_foreach(t, e->db.dpend, p.alen ? p.after : NULL, p.alen, pend_scan, &p);
	if (r >= 0 && p.more && p.n > 0)
		snprintf(e->resync_cursor, sizeof e->resync_cursor, "%s", p.keys[p.n - 1]);
	else if (r >= 0)
		e->resync_cursor[0] = '\0';
	for (size_t i = 0; r >= 0 && i < p.n; i++) {
		char *station, *id;
		uint32_t ver;
		struct dsp_duty rec;
		Wf__V1__Warning *w = NULL;
		/* every pending notice, also one a newer version has overtaken:
		 * the station must see each version it has not acknowledged
		 * (tests/chaos counts a version's notice lost otherwise) */
		if (split_key(p.keys[i], &station, &id, &ver) < 0 ||
		    get_duty(e, t, station, id, ver, &rec) < 0 || rec.state != DSP_DUTY_PENDING)
			continue;
		if (dsp_get_warning(t, &e->db, id, ver, &w) < 0)
			continue;
		/* the original sent time keeps the notice's identity stable */
		/* pending_review as it is now (released since the first send?) */
		r = push_notice(e, w, station, (Wf__V1__NoticeKind)rec.kind,
				rec.pending_review && dsp_review_pending(e, t, id, ver), rec.deadline_ms,
				rec.from, rec.sent_ms > now - 3600000 ? rec.sent_ms : now);
		wf_codec_warning_free(w);
	}
	free(p.keys);
	return r < 0 ? r : p.more ? 1 : 0;
}

/* An informational notice of W to STATION (no acknowledgement, no duty
 * record), recorded as delivery "<station><SUFFIX>" sent. */
static int info_notice(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Warning *w,
		       const char *station, Wf__V1__NoticeKind kind, const char *suffix,
		       const char *detail, int64_t now)
{
	char target[DSP_ID_MAX + 16];
	int r = push_notice(e, w, station, kind, false, 0, NULL, now);
	snprintf(target, sizeof target, "%s%s", station, suffix);
	return r < 0 ? r
		     : dsp_record(t, &e->db, w->id, w->version, "duty", target, DSP_DLV_SENT, now,
				  "%s", detail);
}

int dsp_duty_cancel_notice(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Warning *cw,
			   int64_t now)
{
	struct notified s;
	int r = notified(e, t, cw, &s);
	for (size_t i = 0; r >= 0 && i < s.n; i++)
		r = info_notice(e, t, cw, s.stations[i], WF__V1__NOTICE_KIND__NOTICE_KIND_NOTICE,
				CANCEL_SUFFIX, "解除 notice", now);
	free(s.stations);
	return r < 0 ? r : 0;
}

/* --- a version released after review: the stations told of it hear so --- */

#define CANCEL_RESYNC_MS (24 * 3600000LL) /* 解除 and RELEASED notices this recent */
#define INFO_RESYNC_MAX 1024u            /* 解除: warnings looked at */
#define RELEASED_RESYNC_MAX 4096u        /* RELEASED: versions (d-relq) per resync */

/* d-relq entries released before SINCE go (one range delete). */
static int relq_trim(struct dsp_engine *e, struct wf_txn *t, int64_t since)
{
	unsigned char lo[8] = { 0 }, hi[8];
	/* every key of an earlier time sorts below HI; those of SINCE above it */
	wf_store_u64_to_key(since < 0 ? 0 : (uint64_t)since, hi);
	return wf_store_del_range(t, e->db.relq, lo, sizeof lo, hi, sizeof hi, NULL, NULL);
}

int dsp_duty_released(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Warning *w,
		      int64_t now)
{
	struct notified s;
	int r = notified_of(e, t, w, NOTIFIED_PENDING, &s);
	for (size_t i = 0; r >= 0 && i < s.n; i++) {
		struct dsp_duty rec;
		r = get_duty(e, t, s.stations[i], w->id, w->version, &rec);
		if (r < 0)
			break;
		/* the record's own notice is resent as it is now: released */
		rec.pending_review = 0;
		r = put_duty(e, t, s.stations[i], w->id, w->version, &rec);
		if (r == 0)
			r = info_notice(e, t, w, s.stations[i], WF__V1__NOTICE_KIND__NOTICE_KIND_RELEASED,
					RELEASED_SUFFIX, "released after review", now);
	}
	if (r >= 0 && s.n > 0) {
		/* listed for the resync after a reconnect */
		unsigned char key[DSP_KEY_MAX];
		int n = snprintf((char *)key + 8, sizeof key - 8, "%s@%u", w->id, w->version);
		wf_store_u64_to_key(now < 0 ? 0 : (uint64_t)now, key);
		r = n > 0 && (size_t)n < sizeof key - 8
			    ? wf_store_put(t, e->db.relq, key, 8 + (size_t)n, "", 0, 0)
			    : -ENAMETOOLONG;
		if (r >= 0)
			r = relq_trim(e, t, now - CANCEL_RESYNC_MS);
	}
	free(s.stations);
	return r < 0 ? r : 0;
}

/* --- the informational notices again after a reconnect --- */

/* Picks from one record of a scan the version whose notices go again, and
 * when they were first sent; 0: none. */
typedef bool (*info_pick)(const void *v, size_t vl, int64_t since, uint32_t *ver, int64_t *at);

struct info_list {
	info_pick pick;
	int64_t since;
	char (*ids)[DSP_ID_MAX + 1];
	uint32_t *version;
	int64_t *at;
	size_t n;
};

static int info_list_cb(void *ud, const void *k, size_t kl, const void *v, size_t vl)
{
	struct info_list *l = ud;
	if (kl > DSP_ID_MAX || !l->pick(v, vl, l->since, &l->version[l->n], &l->at[l->n]))
		return 0;
	memcpy(l->ids[l->n], k, kl);
	l->ids[l->n][kl] = '\0';
	return ++l->n >= INFO_RESYNC_MAX ? 1 : 0;
}

/* d-cancel: an operator's cancel of the last CANCEL_RESYNC_MS */
static bool pick_cancel(const void *v, size_t vl, int64_t since, uint32_t *ver, int64_t *at)
{
	struct dsp_cancel mc;
	if (dsp_rec_decode(v, vl, &mc, sizeof mc) < 0)
		return false;
	*ver = mc.version;
	*at = mc.at_ms;
	return mc.at_ms >= since;
}

/* d-relq (by key: <at u64 BE><id>@<ver>): a version released after review */
static int relq_cb(void *ud, const void *k, size_t kl, const void *v, size_t vl)
{
	struct info_list *l = ud;
	(void)v;
	(void)vl;
	if (kl <= 8)
		return 0;
	const char *name = (const char *)k + 8;
	const char *atv = memrchr(name, '@', kl - 8);
	size_t idl = atv ? (size_t)(atv - name) : 0, vlen = atv ? kl - 8 - idl - 1 : 0;
	char ver[16];
	if (idl == 0 || idl > DSP_ID_MAX || vlen == 0 || vlen >= sizeof ver)
		return 0;
	memcpy(ver, atv + 1, vlen);
	ver[vlen] = '\0';
	memcpy(l->ids[l->n], name, idl);
	l->ids[l->n][idl] = '\0';
	l->version[l->n] = (uint32_t)strtoul(ver, NULL, 10);
	l->at[l->n] = (int64_t)wf_store_key_to_u64(k);
	return ++l->n >= RELEASED_RESYNC_MAX ? 1 : 0;
}

/* ID@VERSION was withdrawn by an operator (d-cancel). */
static bool withdrawn(struct dsp_engine *e, struct wf_txn *t, const char *id, uint32_t version)
{
	void *v = NULL;
	size_t vl = 0;
	uint32_t ver;
	int64_t at;
	bool yes = wf_store_get(t, e->db.cancel, id, strlen(id), &v, &vl) == 0 &&
		   pick_cancel(v, vl, INT64_MIN, &ver, &at) && ver == version;
	free(v);
	return yes;
}

/* Sends again the notices WHAT (NOTIFIED_CANCEL: the 解除 ones, from
 * d-cancel; NOTIFIED_RELEASED: the RELEASED ones, from d-relq) to the
 * stations their delivery records name. */
static int info_resync(struct dsp_engine *e, struct wf_txn *t, enum notified_what what, int64_t now)
{
	bool cancel = what == NOTIFIED_CANCEL;
	size_t max = cancel ? INFO_RESYNC_MAX : RELEASED_RESYNC_MAX;
	struct info_list l = { pick_cancel, now - CANCEL_RESYNC_MS, NULL, NULL, NULL, 0 };
	l.ids = calloc(max, sizeof *l.ids);
	l.version = calloc(max, sizeof *l.version);
	l.at = calloc(max, sizeof *l.at);
	int r = l.ids && l.version && l.at ? 0 : -ENOMEM;
	if (r == 0 && cancel)
		r = wf_store_foreach(t, e->db.cancel, NULL, 0, info_list_cb, &l);
	else if (r == 0) {
		/* d-relq from the first one since l.since (older ones go as new
		 * ones come: dsp_duty_released) */
		unsigned char from[8];
		wf_store_u64_to_key(l.since < 0 ? 0 : (uint64_t)l.since, from);
		r = wf_store_foreach(t, e->db.relq, from, sizeof from, relq_cb, &l);
	}
	for (size_t i = 0; r >= 0 && i < l.n; i++) {
		Wf__V1__Warning *w = NULL;
		if (!cancel && withdrawn(e, t, l.ids[i], l.version[i]))
			continue; /* its 解除 notice goes instead */
		if (dsp_get_warning(t, &e->db, l.ids[i], l.version[i], &w) < 0)
			continue; /* purged */
		/* a 解除 notice is of the withdrawal on_cancel made, as first sent */
		Wf__V1__Warning nw = cancel ? dsp_withdrawal_of(w, l.at[i]) : *w;
		struct notified s;
		r = notified_of(e, t, &nw, what, &s);
		for (size_t k = 0; r >= 0 && k < s.n; k++)
			r = push_notice(e, &nw, s.stations[k],
					cancel ? WF__V1__NOTICE_KIND__NOTICE_KIND_NOTICE
					       : WF__V1__NOTICE_KIND__NOTICE_KIND_RELEASED,
					false, 0, NULL, l.at[i]); /* as first sent */
		free(s.stations);
		wf_codec_warning_free(w);
	}
	free(l.ids);
	free(l.version);
	free(l.at);
	return r < 0 ? r : 0;
}

int dsp_duty_cancel_resync(struct dsp_engine *e, struct wf_txn *t, int64_t now)
{
	return info_resync(e, t, NOTIFIED_CANCEL, now);
}

int dsp_duty_released_resync(struct dsp_engine *e, struct wf_txn *t, int64_t now)
{
	return info_resync(e, t, NOTIFIED_RELEASED, now);
}
