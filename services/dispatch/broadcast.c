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

/* The left-out items of a county live next to its state, under the key
 * <ppccdd>+ (7 bytes), packed without the codec's size limit but at most
 * OVER_MAX of them. */
#define OVER_MAX 4096u
#define KEY_STATE 6u
#define KEY_OVER 7u

static int load(struct dsp_engine *e, struct wf_txn *t, const char *county, bool over,
		Wf__V1__BroadcastState **ret)
{
	char key[KEY_OVER];
	void *buf = NULL;
	size_t len = 0;
	memcpy(key, county, KEY_STATE);
	key[KEY_STATE] = '+';
	*ret = NULL;
	int r = wf_store_get(t, e->db.bcast, key, over ? KEY_OVER : KEY_STATE, &buf, &len);
	if (r < 0)
		return r;
	*ret = wf__v1__broadcast_state__unpack(NULL, len, buf);
	free(buf);
	return *ret ? 0 : -EBADMSG;
}

/* One item of a county, and where it was before this change. */
enum { FROM_STATE, FROM_OVER, FROM_NEW };
struct slot {
	Wf__V1__BroadcastItem *it;
	int from;
};

/* A county's items as loaded: its state and its left-out ones. */
struct county_items {
	Wf__V1__BroadcastState *st, *over;
	struct slot *s;
	size_t n;
};

static void county_free(struct county_items *c)
{
	if (c->st)
		wf__v1__broadcast_state__free_unpacked(c->st, NULL);
	if (c->over)
		wf__v1__broadcast_state__free_unpacked(c->over, NULL);
	free(c->s);
	memset(c, 0, sizeof *c);
}

/* Loads both, leaving out warning SKIP (NULL: none) and the items expired
 * at NOW (NOW < 0: none), with room for one more slot. */
static int county_load(struct dsp_engine *e, struct wf_txn *t, const char *county,
		       const char *skip, int64_t now, struct county_items *c)
{
	memset(c, 0, sizeof *c);
	int r = load(e, t, county, false, &c->st);
	if (r == 0 || r == -ENOENT)
		r = load(e, t, county, true, &c->over);
	if (r < 0 && r != -ENOENT) {
		county_free(c);
		return r;
	}
	size_t n_st = c->st ? c->st->n_active : 0, n_over = c->over ? c->over->n_active : 0;
	c->s = calloc(n_st + n_over + 1, sizeof *c->s);
	if (!c->s) {
		county_free(c);
		return -ENOMEM;
	}
	for (size_t k = 0; k < n_st + n_over; k++) {
		Wf__V1__BroadcastItem *it = k < n_st ? c->st->active[k] : c->over->active[k - n_st];
		if ((skip && strcmp(it->warning_id, skip) == 0) || (now >= 0 && it->expires_ms <= now))
			continue;
		c->s[c->n].it = it;
		c->s[c->n].from = k < n_st ? FROM_STATE : FROM_OVER;
		c->n++;
	}
	return 0;
}

/* Most severe first (I before IV, an unspecified level last), then the
 * latest to expire, then by id: the order a full state keeps them in. */
static int by_priority(const void *a, const void *b)
{
	const Wf__V1__BroadcastItem *x = ((const struct slot *)a)->it;
	const Wf__V1__BroadcastItem *y = ((const struct slot *)b)->it;
	unsigned lx = x->level ? (unsigned)x->level : 99u, ly = y->level ? (unsigned)y->level : 99u;
	if (lx != ly)
		return lx < ly ? -1 : 1;
	if (x->expires_ms != y->expires_ms)
		return x->expires_ms > y->expires_ms ? -1 : 1;
	return strcmp(x->warning_id, y->warning_id);
}

static void pack_items(Wf__V1__BroadcastState *st, const struct slot *s, size_t n,
		       Wf__V1__BroadcastItem **buf)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = s[i].it;
	st->active = buf;
	st->n_active = n;
}

/* Packs ST with the items S[0..N): 0 and *BUF (the caller frees it), 1 when
 * they do not fit the codec's size limit, or -EINVAL (another reason). */
static int try_pack(Wf__V1__BroadcastState *st, const struct slot *s, size_t n,
		    Wf__V1__BroadcastItem **tmp, const struct wf_codec_limits *lim, int64_t now,
		    uint8_t **buf, size_t *len)
{
	struct wf_codec_error why;
	pack_items(st, s, n, tmp);
	*buf = NULL;
	int r = wf_codec_broadcast_state_pack(st, lim, now, buf, len, &why);
	if (r == -EBADMSG && why.reason == WF_REASON_TOO_LARGE)
		return 1;
	return r == -EBADMSG ? -EINVAL : r;
}

/* Stores the left-out items S[0..N) of COUNTY under <county>+ (deletes it
 * when there are none), the least severe beyond OVER_MAX dropped. */
static int save_over(struct dsp_engine *e, struct wf_txn *t, const char *county,
		     const struct slot *s, size_t n, Wf__V1__BroadcastItem **tmp)
{
	char key[KEY_OVER];
	memcpy(key, county, KEY_STATE);
	key[KEY_STATE] = '+';
	if (n == 0) {
		int r = wf_store_del(t, e->db.bcast, key, KEY_OVER);
		return r == -ENOENT ? 0 : r;
	}
	if (n > OVER_MAX) {
		wf_log(LOG_WARNING, "broadcast",
		       "county %.6s: %zu warnings left out of its broadcast state; the %zu least "
		       "severe are no longer kept for when room frees",
		       county, n, n - OVER_MAX);
		n = OVER_MAX;
	}
	Wf__V1__BroadcastState over = WF__V1__BROADCAST_STATE__INIT;
	over.region = (char *)"";
	over.producer = e->service;
	pack_items(&over, s, n, tmp);
	size_t len = wf__v1__broadcast_state__get_packed_size(&over);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	wf__v1__broadcast_state__pack(&over, buf);
	int r = wf_store_put(t, e->db.bcast, key, KEY_OVER, buf, len, 0);
	free(buf);
	return r;
}

/* Stores and queues the state of COUNTY with the slots of C. A county's
 * state is one message: when the items do not fit the codec's limit (about
 * 675 active warnings), they are sorted by_priority and the first that fit
 * are kept; the rest are kept aside (<county>+) and come back, in the same
 * order, as room frees. Delivery records follow the moves: `left_out` for
 * an item that leaves the state (or a new one that does not get in), sent
 * for one that comes back; TARGET is their target. *NEW_KEPT (if not NULL):
 * whether the FROM_NEW slot is in the state. */
static int save(struct dsp_engine *e, struct wf_txn *t, const char *county,
		struct county_items *c, int64_t now, const char *target, bool *new_kept)
{
	char region[13], topic[WF_TOPIC_MAX], key[32];
	uint8_t *buf = NULL;
	size_t len = 0, n = c->n;
	Wf__V1__BroadcastState st = WF__V1__BROADCAST_STATE__INIT;
	Wf__V1__BroadcastItem **tmp = calloc(n + 1, sizeof *tmp);
	if (!tmp)
		return -ENOMEM;

	snprintf(region, sizeof region, "%.6s000000", county);
	st.region = region;
	st.updated_ms = now;
	st.producer = e->service;
	size_t kept = n;
	int r = try_pack(&st, c->s, n, tmp, &e->limits, now, &buf, &len);
	if (r == 1) {
		free(buf);
		buf = NULL;
		qsort(c->s, n, sizeof *c->s, by_priority);
		size_t lo = 0, hi = n - 1; /* the most that fit: 0 always does */
		while (r >= 0 && lo < hi) {
			size_t mid = lo + (hi - lo + 1) / 2;
			r = try_pack(&st, c->s, mid, tmp, &e->limits, now, &buf, &len);
			free(buf);
			buf = NULL;
			if (r == 0)
				lo = mid;
			else
				hi = mid - 1;
		}
		kept = lo;
		if (r >= 0) /* the state as it will be */
			r = try_pack(&st, c->s, kept, tmp, &e->limits, now, &buf, &len);
		if (r == 1)
			r = -EINVAL; /* cannot be: fewer items than fitted */
	}
	if (r < 0) {
		free(tmp);
		return r;
	}
	size_t out = 0, back = 0;
	for (size_t i = 0; r == 0 && i < n; i++) {
		const Wf__V1__BroadcastItem *it = c->s[i].it;
		if (i < kept && c->s[i].from == FROM_OVER) {
			back++;
			r = dsp_record(t, &e->db, it->warning_id, it->version, "broadcast", target,
				       DSP_DLV_SENT, now,
				       "active (room freed in the county's broadcast state)");
		} else if (i >= kept && c->s[i].from != FROM_OVER) {
			out++;
			r = dsp_record(t, &e->db, it->warning_id, it->version, "broadcast", target,
				       DSP_DLV_LEFT_OUT, now,
				       "the county's broadcast state is full (%zu active, %zu kept)", n,
				       kept);
		}
		if (new_kept && c->s[i].from == FROM_NEW)
			*new_kept = i < kept;
	}
	if (out)
		wf_log(LOG_WARNING, "broadcast",
		       "county %.6s: %zu active warnings do not fit one broadcast state; %zu more "
		       "left out (delivery state left_out), %zu kept",
		       county, n, out, kept);
	if (back)
		wf_log(LOG_NOTICE, "broadcast",
		       "county %.6s: %zu warnings left out before are in the broadcast state again",
		       county, back);
	if (r == 0)
		r = save_over(e, t, county, c->s + kept, n - kept, tmp);
	free(tmp);
	if (r == 0)
		r = wf_store_put(t, e->db.bcast, county, KEY_STATE, buf, len, 0);
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
	struct county_items c;
	int r = county_load(e, t, county, w->id, -1, &c);
	if (r < 0)
		return r;
	char **regs = calloc(w->n_regions + 1, sizeof *regs);
	Wf__V1__BroadcastItem it = WF__V1__BROADCAST_ITEM__INIT;
	bool kept = true;
	char target[32];
	snprintf(target, sizeof target, "%s%s", county, e->manual_cancel ? "/cancel" : "");
	if (!regs) {
		r = -ENOMEM;
		goto out;
	}
	size_t nr = 0;
	for (size_t i = 0; i < w->n_regions; i++)
		if (strncmp(w->regions[i], county, 6) == 0)
			regs[nr++] = w->regions[i];
	char head[512];
	if (w->msg_type != WF__V1__MSG_TYPE__MSG_TYPE_CANCEL && nr > 0 && w->expires_ms > now) {
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
		c.s[c.n].it = &it;
		c.s[c.n].from = FROM_NEW;
		c.n++;
	}
	/* HEAD and REGS are copied by the pack in save() */
	r = save(e, t, county, &c, now, target, &kept);
out:
	free(regs);
	county_free(&c);
	if (r == 0 && kept)
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

/* Both a county's state (key <ppccdd>) and its left-out items (<ppccdd>+,
 * right after it in key order) count for its next expiry. */
static int bcast_scan(void *ud, const void *k, size_t kl, const void *v, size_t vl)
{
	struct scan *s = ud;
	if (kl != KEY_STATE && kl != KEY_OVER)
		return 0;
	Wf__V1__BroadcastState *st = wf__v1__broadcast_state__unpack(NULL, vl, v);
	if (!st)
		return 0;
	bool due = s->all;
	for (size_t i = 0; i < st->n_active; i++) {
		if (st->active[i]->expires_ms < s->min)
			s->min = st->active[i]->expires_ms;
		due = due || st->active[i]->expires_ms <= s->now;
	}
	bool listed = s->n > 0 && memcmp(s->counties[s->n - 1], k, KEY_STATE) == 0;
	if (due && !listed && s->counties && s->n < s->cap) {
		memcpy(s->counties[s->n], k, KEY_STATE);
		s->counties[s->n][KEY_STATE] = '\0';
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
		struct county_items c;
		if (county_load(e, t, s.counties[i], NULL, now, &c) < 0)
			continue;
		r = save(e, t, s.counties[i], &c, now, s.counties[i], NULL);
		county_free(&c);
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
	if (kl != KEY_STATE) /* not the left-out items (<ppccdd>+) */
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
