/* broadcast: the retained per-county state broadcast terminals subscribe
 * to (wf/v1/broadcast/<pp>/<ppcc>/<ppccdd>, docs/dispatch.md
 * "Emergency broadcast"). Each county's BroadcastState lists the released
 * public warnings active there; it is kept in d-bcast and republished
 * (retained, QoS 1) on every change, on expiry, and after a reconnect. */
#include "dispatch-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "wf/log.h"

#define COUNTIES_MAX 1024u

static int load(struct dsp_engine *e, struct wf_txn *t, const char *county,
		Wf__V1__BroadcastState **ret)
{
	void *buf = NULL;
	size_t len = 0;
	int r = wf_store_get(t, e->db.bcast, county, 6, &buf, &len);
	if (r < 0)
		return r;
	*ret = wf__v1__broadcast_state__unpack(NULL, len, buf);
	free(buf);
	return *ret ? 0 : -EBADMSG;
}

/* Most severe first (I before IV, an unspecified level last), then the
 * latest to expire, then by id: the order a full state keeps them in. */
static int by_priority(const void *a, const void *b)
{
	const Wf__V1__BroadcastItem *x = *(Wf__V1__BroadcastItem *const *)a;
	const Wf__V1__BroadcastItem *y = *(Wf__V1__BroadcastItem *const *)b;
	unsigned lx = x->level ? (unsigned)x->level : 99u, ly = y->level ? (unsigned)y->level : 99u;
	if (lx != ly)
		return lx < ly ? -1 : 1;
	if (x->expires_ms != y->expires_ms)
		return x->expires_ms > y->expires_ms ? -1 : 1;
	return strcmp(x->warning_id, y->warning_id);
}

static bool fits(Wf__V1__BroadcastState *st, const struct wf_codec_limits *lim, int64_t now)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	struct wf_codec_error why;
	int r = wf_codec_broadcast_state_pack(st, lim, now, &buf, &len, &why);
	free(buf);
	return r == 0;
}

/* Stores and queues the state of COUNTY with ITEMS. A county's state is one
 * message: when the items do not fit the codec's limit (about 675 active
 * warnings), they are sorted by_priority and the first that fit are kept;
 * each one left out gets a left_out delivery record TARGET and a log line
 * says how many. *KEPT (if not NULL): items[0..*kept) are in the state. */
static int save(struct dsp_engine *e, struct wf_txn *t, const char *county,
		Wf__V1__BroadcastItem **items, size_t n, int64_t now, const char *target,
		size_t *kept)
{
	char region[13], topic[WF_TOPIC_MAX], key[32];
	uint8_t *buf = NULL;
	size_t len = 0;
	struct wf_codec_error why;
	Wf__V1__BroadcastState st = WF__V1__BROADCAST_STATE__INIT;

	snprintf(region, sizeof region, "%.6s000000", county);
	st.region = region;
	st.active = items;
	st.n_active = n;
	st.updated_ms = now;
	st.producer = e->service;
	int r = wf_codec_broadcast_state_pack(&st, &e->limits, now, &buf, &len, &why);
	if (r == -EBADMSG && why.reason == WF_REASON_TOO_LARGE && n > 0) {
		qsort(items, n, sizeof *items, by_priority);
		size_t lo = 0, hi = n - 1; /* the most that fit: 0 always does */
		while (lo < hi) {
			size_t mid = lo + (hi - lo + 1) / 2;
			st.n_active = mid;
			if (fits(&st, &e->limits, now))
				lo = mid;
			else
				hi = mid - 1;
		}
		st.n_active = lo;
		wf_log(LOG_WARNING, "broadcast",
		       "county %.6s: %zu active warnings do not fit one broadcast state; the %zu "
		       "least severe are left out (delivery state left_out)",
		       county, n, n - lo);
		for (size_t i = lo; i < n; i++) {
			r = dsp_record(t, &e->db, items[i]->warning_id, items[i]->version, "broadcast",
				       target, DSP_DLV_LEFT_OUT, now,
				       "the county's broadcast state is full (%zu active, %zu kept)", n,
				       lo);
			if (r < 0)
				return r;
		}
		r = wf_codec_broadcast_state_pack(&st, &e->limits, now, &buf, &len, &why);
	}
	if (r < 0)
		return r == -EBADMSG ? -EINVAL : r;
	if (kept)
		*kept = st.n_active;
	r = wf_store_put(t, e->db.bcast, county, 6, buf, len, 0);
	if (r == 0)
		r = wf_topic_broadcast(topic, sizeof topic, region);
	snprintf(key, sizeof key, "bcast|%.6s", county);
	if (r == 0)
		r = dsp_out_push(e, DSP_OUT_MQTT, key, topic, true, buf, len);
	free(buf);
	return r;
}

static void add_counties(const Wf__V1__Warning *w, char (*c)[7], size_t *n)
{
	for (size_t i = 0; w && i < w->n_regions; i++) {
		bool dup = false;
		for (size_t k = 0; k < *n; k++)
			dup = dup || strncmp(c[k], w->regions[i], 6) == 0;
		if (!dup && *n < COUNTIES_MAX) {
			memcpy(c[*n], w->regions[i], 6);
			c[*n][6] = '\0';
			(*n)++;
		}
	}
}

static int apply_county(struct dsp_engine *e, struct wf_txn *t, const char *county,
			const Wf__V1__Warning *w, int64_t now)
{
	Wf__V1__BroadcastState *old = NULL;
	int r = load(e, t, county, &old);
	if (r < 0 && r != -ENOENT)
		return r;
	size_t n_old = old ? old->n_active : 0;
	Wf__V1__BroadcastItem **items = calloc(n_old + 1, sizeof *items);
	char **regs = calloc(w->n_regions + 1, sizeof *regs);
	Wf__V1__BroadcastItem it = WF__V1__BROADCAST_ITEM__INIT;
	size_t n = 0, kept = 0;
	bool left_out = false;
	char target[32];
	snprintf(target, sizeof target, "%s%s", county, e->manual_cancel ? "/cancel" : "");
	if (!items || !regs) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n_old; i++)
		if (strcmp(old->active[i]->warning_id, w->id) != 0)
			items[n++] = old->active[i];
	size_t nr = 0;
	for (size_t i = 0; i < w->n_regions; i++)
		if (strncmp(w->regions[i], county, 6) == 0)
			regs[nr++] = w->regions[i];
	if (w->msg_type != WF__V1__MSG_TYPE__MSG_TYPE_CANCEL && nr > 0 && w->expires_ms > now) {
		char head[512];
		const char *hz = wf_hazard_name_zh(w->hazard);
		const char *col = wf_level_colour_zh(w->level);
		snprintf(head, sizeof head, "%s%s预警", hz ? hz : "", col ? col : "");
		it.warning_id = w->id;
		it.version = w->version;
		it.hazard = w->hazard;
		it.level = w->level;
		it.msg_type = w->msg_type;
		it.headline = w->headline && *w->headline ? w->headline : head;
		it.onset_ms = w->onset_ms;
		it.expires_ms = w->expires_ms;
		it.regions = regs;
		it.n_regions = nr;
		/* headline is copied by pack below before HEAD goes out of scope */
		items[n++] = &it;
		r = save(e, t, county, items, n, now, target, &kept);
		left_out = true;
		for (size_t i = 0; i < kept; i++)
			left_out = left_out && items[i] != &it;
		goto out;
	}
	r = save(e, t, county, items, n, now, target, NULL);
out:
	free(items);
	free(regs);
	if (old)
		wf__v1__broadcast_state__free_unpacked(old, NULL);
	if (r == 0 && !left_out)
		r = dsp_record(t, &e->db, w->id, w->version, "broadcast", target, DSP_DLV_SENT, now,
			       "%s", w->msg_type == WF__V1__MSG_TYPE__MSG_TYPE_CANCEL ? "removed"
											: "active");
	return r;
}

int dsp_broadcast_apply(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__Warning *w,
			const Wf__V1__Warning *prev, int64_t now)
{
	char (*c)[7] = calloc(COUNTIES_MAX, sizeof *c);
	size_t n = 0;
	int r = 0;
	if (!c)
		return -ENOMEM;
	add_counties(w, c, &n);
	add_counties(prev, c, &n); /* counties the new version no longer covers */
	for (size_t i = 0; r == 0 && i < n; i++)
		r = apply_county(e, t, c[i], w, now);
	free(c);
	return r;
}

struct scan {
	int64_t now, min;
	char (*counties)[7];
	size_t n, cap;
	bool all;
};

static int bcast_scan(void *ud, const void *k, size_t kl, const void *v, size_t vl)
{
	struct scan *s = ud;
	Wf__V1__BroadcastState *st = wf__v1__broadcast_state__unpack(NULL, vl, v);
	if (!st || kl != 6) {
		if (st)
			wf__v1__broadcast_state__free_unpacked(st, NULL);
		return 0;
	}
	bool due = s->all;
	for (size_t i = 0; i < st->n_active; i++) {
		if (st->active[i]->expires_ms < s->min)
			s->min = st->active[i]->expires_ms;
		due = due || st->active[i]->expires_ms <= s->now;
	}
	if (due && s->counties && s->n < s->cap) {
		memcpy(s->counties[s->n], k, 6);
		s->counties[s->n][6] = '\0';
		s->n++;
	}
	wf__v1__broadcast_state__free_unpacked(st, NULL);
	return 0;
}

int dsp_broadcast_tick(struct dsp_engine *e, struct wf_txn *t, int64_t now)
{
	struct scan s = { now, INT64_MAX, NULL, 0, COUNTIES_MAX, false };
	s.counties = calloc(s.cap, sizeof *s.counties);
	if (!s.counties)
		return -ENOMEM;
	int r = wf_store_foreach(t, e->db.bcast, NULL, 0, bcast_scan, &s);
	for (size_t i = 0; r >= 0 && i < s.n; i++) {
		Wf__V1__BroadcastState *st = NULL;
		if (load(e, t, s.counties[i], &st) < 0)
			continue;
		Wf__V1__BroadcastItem **keep = calloc(st->n_active + 1, sizeof *keep);
		size_t n = 0;
		if (!keep) {
			r = -ENOMEM;
		} else {
			for (size_t k = 0; k < st->n_active; k++)
				if (st->active[k]->expires_ms > now)
					keep[n++] = st->active[k];
			r = save(e, t, s.counties[i], keep, n, now, s.counties[i], NULL);
		}
		free(keep);
		wf__v1__broadcast_state__free_unpacked(st, NULL);
	}
	free(s.counties);
	return r < 0 ? r : 0;
}

int dsp_broadcast_next_due(struct dsp_engine *e, struct wf_txn *t, int64_t *due)
{
	struct scan s = { 0, INT64_MAX, NULL, 0, 0, false };
	int r = wf_store_foreach(t, e->db.bcast, NULL, 0, bcast_scan, &s);
	if (r == 0 && s.min < *due)
		*due = s.min;
	return r < 0 ? r : 0;
}

static int resync_cb(void *ud, const void *k, size_t kl, const void *v, size_t vl)
{
	struct dsp_engine *e = ud;
	char region[13], topic[WF_TOPIC_MAX], key[32];
	if (kl != 6)
		return 0;
	snprintf(region, sizeof region, "%.6s000000", (const char *)k);
	snprintf(key, sizeof key, "bcast|%.6s", (const char *)k);
	if (wf_topic_broadcast(topic, sizeof topic, region) < 0)
		return 0;
	return dsp_out_push(e, DSP_OUT_MQTT, key, topic, true, v, vl);
}

int dsp_broadcast_resync(struct dsp_engine *e, struct wf_txn *t)
{
	return wf_store_foreach(t, e->db.bcast, NULL, 0, resync_cb, e);
}
