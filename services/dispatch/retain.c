/* retain: retention of ended warnings (docs/dispatch.md, "Retention").
 *
 * A warning ends when it is cancelled or expires (d-current active = 0);
 * its purge is then scheduled at the end + [dispatch] retain (d-purge <id>
 * -> time, d-purgeq "<time u64 BE><id>" the same by time). When it falls
 * due, and the warning is still ended, with no duty notice still PENDING
 * with an ack deadline (those escalate: the purge waits for the last
 * deadline), every record keyed by the warning goes in one transaction:
 * d-warning, d-review, d-delivery (prefix "<id>@"), the d-duty and
 * d-followup records of the stations its delivery records name, d-cancel,
 * d-current, and its retained view wf/v1/review/<id> (an empty retained
 * message). The audit trail (d-audit) and the counters (d-stats) stay. At
 * most a few warnings per tick, and a warning with more duty records than
 * one pass takes is purged over several. Stored silences go [dispatch]
 * retain after their expiry (dsp_silences_purge, at the end). */
#include "dispatch-internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "wf/log.h"

#define PAIRS_MAX 4096u     /* duty records (version, station) one pass deletes */
#define STATIONS_MAX 512u   /* distinct stations (follow-ups) one pass deletes */
#define RECHECK_MS 60000    /* after the last blocking ack deadline */

static int q_key(unsigned char *buf, int64_t at, const char *id)
{
	size_t n = strlen(id);
	if (n >= DSP_KEY_MAX)
		return -ENAMETOOLONG;
	wf_store_u64_to_key(at < 0 ? 0 : (uint64_t)at, buf);
	memcpy(buf + 8, id, n);
	return (int)(8 + n);
}

static int get_at(struct wf_txn *t, const struct dsp_dbs *d, const char *id, int64_t *at)
{
	size_t len = 0;
	int r = wf_store_get_buf(t, d->purge, id, strlen(id), at, sizeof *at, &len);
	if (r == 0 && len != sizeof *at)
		return -EBADMSG;
	return r;
}

int dsp_retain_at(struct wf_txn *t, const struct dsp_dbs *d, const char *id, int64_t *at)
{
	return get_at(t, d, id, at);
}

static int unschedule(struct wf_txn *t, const struct dsp_dbs *d, const char *id)
{
	unsigned char k[8 + DSP_KEY_MAX];
	int64_t at;
	int r = get_at(t, d, id, &at);
	if (r == -ENOENT)
		return 0;
	if (r == 0) {
		int kl = q_key(k, at, id);
		r = kl < 0 ? kl : wf_store_del(t, d->purgeq, k, (size_t)kl);
		if (r == -ENOENT)
			r = 0;
	}
	if (r == 0 || r == -EBADMSG)
		r = wf_store_del(t, d->purge, id, strlen(id));
	return r == -ENOENT ? 0 : r;
}

static int schedule_at(struct wf_txn *t, const struct dsp_dbs *d, const char *id, int64_t at)
{
	unsigned char k[8 + DSP_KEY_MAX];
	int kl = q_key(k, at, id);
	int r = kl < 0 ? kl : wf_store_put(t, d->purge, id, strlen(id), &at, sizeof at, 0);
	return r < 0 ? r : wf_store_put(t, d->purgeq, k, (size_t)kl, "", 0, 0);
}

int dsp_retain_schedule(struct wf_txn *t, const struct dsp_dbs *d, const char *id, int64_t at)
{
	int64_t old;
	int r = get_at(t, d, id, &old);
	if (r == 0)
		return 0; /* the first end counts */
	if (r != -ENOENT && r != -EBADMSG)
		return r;
	return schedule_at(t, d, id, at);
}

static int reschedule(struct wf_txn *t, const struct dsp_dbs *d, const char *id, int64_t at)
{
	int r = unschedule(t, d, id);
	return r < 0 ? r : schedule_at(t, d, id, at);
}

int dsp_put_current(struct dsp_engine *e, struct wf_txn *t, const char *id,
		    const struct dsp_current *cur, int64_t now)
{
	struct dsp_current old;
	int r = dsp_get_rec(t, e->db.current, id, &old, sizeof old);
	if (r < 0 && r != -ENOENT && r != -EBADMSG)
		return r;
	return dsp_put_current_over(e, t, id, r == 0 ? &old : NULL, cur, now);
}

int dsp_put_current_over(struct dsp_engine *e, struct wf_txn *t, const char *id,
			 const struct dsp_current *old, const struct dsp_current *cur, int64_t now)
{
	int r = dsp_put_indexed_over(t, &e->db, DSP_DUE_EXPIRE, id, cur, sizeof *cur, old);
	if (r < 0)
		return r;
	if (cur->active && (!old || old->active))
		return 0; /* only an ended warning has a purge scheduled */
	return cur->active ? unschedule(t, &e->db, id)
			   : dsp_retain_schedule(t, &e->db, id, now + e->cfg.retain_ms);
}

/* --- purging one warning --- */

struct pair {
	uint32_t version;
	char station[DSP_ID_MAX + 1];
};

struct scan {
	const char *prefix;   /* "<id>@" */
	size_t plen;
	struct pair *pairs;
	size_t n_pairs;
	char (*stations)[DSP_ID_MAX + 1];
	size_t n_stations;
	bool overflow;
};

static void add_station(struct scan *s, const char *st)
{
	for (size_t i = 0; i < s->n_stations; i++)
		if (strcmp(s->stations[i], st) == 0)
			return;
	if (s->n_stations == STATIONS_MAX) {
		s->overflow = true;
		return;
	}
	snprintf(s->stations[s->n_stations++], sizeof s->stations[0], "%s", st);
}

/* "<id>@<ver>|<channel>|<target>": the stations of duty and follow-up
 * records (targets with '/' are 解除 notices, "*" a whole channel) */
static int dlv_cb(void *ud, const void *k, size_t kl, const void *val, size_t vl)
{
	struct scan *s = ud;
	char key[DSP_KEY_MAX];
	(void)val;
	(void)vl;
	if (kl < s->plen || memcmp(k, s->prefix, s->plen) != 0)
		return 1; /* past the warning's records */
	if (kl == s->plen || kl >= sizeof key)
		return 0;
	memcpy(key, (const char *)k + s->plen, kl - s->plen);
	key[kl - s->plen] = '\0';
	char *b1 = strchr(key, '|'), *b2 = b1 ? strchr(b1 + 1, '|') : NULL;
	if (!b2)
		return 0;
	*b1 = *b2 = '\0';
	const char *ch = b1 + 1, *target = b2 + 1;
	bool duty = strcmp(ch, "duty") == 0;
	if ((!duty && strcmp(ch, "followup") != 0) || strchr(target, '/') || strcmp(target, "*") == 0 ||
	    strlen(target) > DSP_ID_MAX)
		return 0;
	add_station(s, target);
	if (!duty)
		return 0;
	if (s->n_pairs == PAIRS_MAX) {
		s->overflow = true;
		return 1;
	}
	struct pair *p = &s->pairs[s->n_pairs++];
	p->version = (uint32_t)strtoul(key, NULL, 10);
	snprintf(p->station, sizeof p->station, "%s", target);
	return 0;
}

struct keys {
	const char *prefix;
	size_t plen;
	char (*v)[DSP_KEY_MAX];
	size_t n, cap;
};

static int review_cb(void *ud, const void *k, size_t kl, const void *val, size_t vl)
{
	struct keys *s = ud;
	(void)val;
	(void)vl;
	if (kl < s->plen || memcmp(k, s->prefix, s->plen) != 0)
		return 1;
	if (kl >= DSP_KEY_MAX)
		return 0;
	if (s->n == s->cap)
		return 1;
	memcpy(s->v[s->n], k, kl);
	s->v[s->n][kl] = '\0';
	s->n++;
	return 0;
}

static int purge_one(struct dsp_engine *e, struct wf_txn *t, const char *id, int64_t now,
		     struct scan *s, struct keys *rk)
{
	struct dsp_current cur;
	char prefix[DSP_KEY_MAX], key[DSP_KEY_MAX];
	uint64_t n = 0;
	int r = dsp_get_rec(t, e->db.current, id, &cur, sizeof cur);
	if (r == -ENOENT || (r == 0 && cur.active))
		return unschedule(t, &e->db, id); /* gone, or active again: rescheduled at its end */
	if (r < 0 && r != -EBADMSG)
		return r;
	/* the records of each version sit under its own key prefix */
	char(*pfx)[DSP_KEY_MAX] = NULL;
	size_t np = 0;
	r = dsp_version_prefixes(t, &e->db, id, &pfx, &np);
	if (r < 0)
		return r;
	s->n_pairs = s->n_stations = 0;
	s->overflow = false;
	for (size_t i = 0; r >= 0 && i < np && !s->overflow; i++) {
		s->prefix = pfx[i];
		s->plen = strlen(pfx[i]);
		r = wf_store_foreach(t, e->db.delivery, pfx[i], s->plen, dlv_cb, s);
	}
	if (r < 0)
		goto out;
	/* a notice still waiting for its ack deadline: that escalates first */
	int64_t wait = DSP_DUE_NONE;
	for (size_t i = 0; i < s->n_pairs; i++) {
		struct dsp_duty d;
		if (dsp_key_duty(t, &e->db, key, sizeof key, s->pairs[i].station, id,
				 s->pairs[i].version) < 0 ||
		    dsp_get_rec(t, e->db.duty, key, &d, sizeof d) < 0)
			continue;
		if (d.state == DSP_DUTY_PENDING && d.deadline_ms != 0 && d.deadline_ms > wait)
			wait = d.deadline_ms;
	}
	if (wait != DSP_DUE_NONE) {
		int64_t at = (wait > now ? wait : now) + RECHECK_MS;
		wf_log(LOG_DEBUG, "retain", "%s ended; its purge waits for an ack deadline", id);
		r = reschedule(t, &e->db, id, at);
		goto out;
	}
	for (size_t i = 0; r >= 0 && i < s->n_pairs; i++) {
		r = dsp_key_duty(t, &e->db, key, sizeof key, s->pairs[i].station, id,
				 s->pairs[i].version);
		if (r >= 0)
			r = dsp_del_indexed(t, &e->db, DSP_DUE_DUTY, key, sizeof(struct dsp_duty));
		if (r >= 0 && s->overflow) {
			/* this pass's share: its delivery records go with it */
			r = dsp_key_delivery(t, &e->db, key, sizeof key, id, s->pairs[i].version,
					     "duty", s->pairs[i].station);
			if (r >= 0)
				r = wf_store_del(t, e->db.delivery, key, strlen(key));
			if (r == -ENOENT)
				r = 0;
		}
		n++;
	}
	for (size_t i = 0; r >= 0 && i < s->n_stations; i++) {
		r = dsp_key_followup(key, sizeof key, s->stations[i], id);
		if (r >= 0)
			r = dsp_del_indexed(t, &e->db, DSP_DUE_FOLLOWUP, key, sizeof(struct dsp_followup));
	}
	if (r < 0)
		goto out;
	if (s->overflow) {
		r = reschedule(t, &e->db, id, now); /* the rest in the next pass */
		goto out;
	}
	/* reviews go one by one (a pending one has a timeout in the index) */
	rk->n = 0;
	for (size_t i = 0; r >= 0 && i < np && rk->n < rk->cap; i++) {
		rk->prefix = pfx[i];
		rk->plen = strlen(pfx[i]);
		r = wf_store_foreach(t, e->db.review, pfx[i], rk->plen, review_cb, rk);
	}
	for (size_t i = 0; r >= 0 && i < rk->n; i++) {
		r = dsp_del_indexed(t, &e->db, DSP_DUE_REVIEW, rk->v[i], sizeof(struct dsp_review_rec));
		n++;
	}
	if (r >= 0 && rk->n == rk->cap) {
		r = reschedule(t, &e->db, id, now);
		goto out;
	}
	for (size_t i = 0; r >= 0 && i < np; i++)
		r = dsp_del_prefix(t, e->db.delivery, pfx[i], &n);
	snprintf(prefix, sizeof prefix, "%s@", id);
	if (r >= 0)
		r = dsp_del_warnings(t, &e->db, prefix, &n);
	if (r >= 0) {
		r = wf_store_del(t, e->db.cancel, id, strlen(id));
		if (r == -ENOENT)
			r = 0;
	}
	if (r >= 0)
		r = dsp_del_indexed(t, &e->db, DSP_DUE_EXPIRE, id, sizeof cur);
	if (r >= 0)
		r = unschedule(t, &e->db, id);
	if (r < 0)
		goto out;
	/* the retained record goes too (an empty retained message clears it) */
	char topic[WF_TOPIC_MAX + 96];
	snprintf(topic, sizeof topic, "wf/v1/review/%s", id);
	snprintf(key, sizeof key, "review|%s", id);
	/* at QoS 1, unlike the views: no resync sends this clear again (the
	 * record is gone from d-current) */
	r = dsp_out_push(e, DSP_OUT_MQTT, key, topic, true, "", 0);
	if (r == 0)
		wf_log(LOG_INFO, "retain", "%s purged (ended, %lld ms retained): %llu records", id,
		       (long long)e->cfg.retain_ms, (unsigned long long)n + 2);
out:
	free(pfx);
	return r;
}

struct due_ids {
	int64_t now;
	char (*ids)[DSP_KEY_MAX];
	int64_t *at;
	size_t n, cap;
	bool more;
};

static int q_cb(void *ud, const void *k, size_t kl, const void *val, size_t vl)
{
	struct due_ids *s = ud;
	(void)val;
	(void)vl;
	if (kl <= 8 || kl - 8 >= DSP_KEY_MAX)
		return 0;
	uint64_t at = wf_store_key_to_u64(k);
	if (at > (uint64_t)s->now)
		return 1;
	if (s->n == s->cap) {
		s->more = true;
		return 1;
	}
	s->at[s->n] = (int64_t)at;
	memcpy(s->ids[s->n], (const char *)k + 8, kl - 8);
	s->ids[s->n][kl - 8] = '\0';
	s->n++;
	return 0;
}

int dsp_retain_tick(struct dsp_engine *e, struct wf_txn *t, int64_t now, size_t max)
{
	struct due_ids q = { now < 0 ? 0 : now, NULL, NULL, 0, max, false };
	struct scan s = { 0 };
	struct keys rk = { NULL, 0, NULL, 0, PAIRS_MAX };
	int64_t first = INT64_MAX;
	int r = dsp_retain_next_due(e, t, &first);
	if (r < 0 || first > now)
		return r < 0 ? r : 0; /* nothing due: no work, no allocation */
	q.ids = calloc(max ? max : 1, sizeof *q.ids);
	q.at = calloc(max ? max : 1, sizeof *q.at);
	s.pairs = calloc(PAIRS_MAX, sizeof *s.pairs);
	s.stations = calloc(STATIONS_MAX, sizeof *s.stations);
	rk.v = calloc(rk.cap, sizeof *rk.v);
	r = q.ids && q.at && s.pairs && s.stations && rk.v ? 0 : -ENOMEM;
	if (r == 0)
		r = wf_store_foreach(t, e->db.purgeq, NULL, 0, q_cb, &q);
	for (size_t i = 0; r >= 0 && i < q.n; i++) {
		int64_t at;
		int g = get_at(t, &e->db, q.ids[i], &at);
		if (g < 0 || at != q.at[i]) {
			/* a stale queue entry (rescheduled): dropped */
			unsigned char k[8 + DSP_KEY_MAX];
			int kl = q_key(k, q.at[i], q.ids[i]);
			r = kl < 0 ? kl : wf_store_del(t, e->db.purgeq, k, (size_t)kl);
			if (r == -ENOENT)
				r = 0;
			continue;
		}
		r = purge_one(e, t, q.ids[i], now, &s, &rk);
	}
	free(q.ids);
	free(q.at);
	free(s.pairs);
	free(s.stations);
	free(rk.v);
	return r < 0 ? r : q.more ? 1 : 0;
}

int dsp_retain_next_due(struct dsp_engine *e, struct wf_txn *t, int64_t *due)
{
	unsigned char k[8 + DSP_KEY_MAX];
	size_t kl = 0;
	int r = wf_store_first_key(t, e->db.purgeq, k, sizeof k, &kl);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	uint64_t at = kl >= 8 ? wf_store_key_to_u64(k) : 0;
	if (at < (uint64_t)INT64_MAX && (int64_t)at < *due)
		*due = (int64_t)at;
	return 0;
}

/* --- expired silences --- */

#define SIL_PURGE_MAX 256u      /* silences one pass deletes */
#define SIL_PURGE_EVERY_MS 60000

struct sil_old {
	int64_t before;
	char (*ids)[sizeof(((struct dsp_silence *)0)->id)];
	size_t n;
};

static int sil_old_cb(void *ud, const void *k, size_t kl, const void *v, size_t vl)
{
	struct sil_old *s = ud;
	struct dsp_silence rec;
	if (vl != sizeof rec || kl >= sizeof s->ids[0])
		return 0;
	memcpy(&rec, v, sizeof rec);
	if (rec.expires_ms > s->before)
		return 0;
	memcpy(s->ids[s->n], k, kl);
	s->ids[s->n][kl] = '\0';
	return ++s->n >= SIL_PURGE_MAX ? 1 : 0;
}

int dsp_silences_purge(struct dsp_engine *e, struct wf_txn *t, int64_t now)
{
	if (now < e->silences_purge_at)
		return 0;
	struct sil_old s = { now - e->cfg.retain_ms, NULL, 0 };
	s.ids = calloc(SIL_PURGE_MAX, sizeof *s.ids);
	if (!s.ids)
		return -ENOMEM;
	int r = wf_store_foreach(t, e->db.silence, NULL, 0, sil_old_cb, &s);
	for (size_t i = 0; r >= 0 && i < s.n; i++) {
		size_t kl = strlen(s.ids[i]);
		r = wf_store_del(t, e->db.silence, s.ids[i], kl);
		if (r >= 0 || r == -ENOENT)
			r = wf_store_del(t, e->db.silmeta, s.ids[i], kl);
		if (r == -ENOENT)
			r = 0;
	}
	if (r >= 0 && s.n > 0)
		wf_log(LOG_INFO, "retain", "%zu expired silences deleted (their audit entries stay)",
		       s.n);
	free(s.ids);
	if (r >= 0) /* a full pass: the rest at the next tick */
		e->silences_purge_at = s.n >= SIL_PURGE_MAX ? now : now + SIL_PURGE_EVERY_MS;
	return r < 0 ? r : 0;
}
