/* stats: the dispatcher's counters (see stats.h). */
#include "stats.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const channel_names[DSP_STAT_CHANNELS] = {
	"duty", "broadcast", "cap", "sms", "review", "followup", "other",
};

/* States that count as failures in DispatchStats.failures (by name). */
static const unsigned failure_states[] = {
	DSP_DLV_MISSED, DSP_DLV_MISSED_TOP, DSP_DLV_NOT_CONFIGURED, DSP_DLV_REFUSED,
	DSP_DLV_REVIEW_TIMEOUT, DSP_DLV_LEFT_OUT,
};

static unsigned channel_index(const char *c)
{
	for (unsigned i = 0; i + 1 < DSP_STAT_CHANNELS; i++)
		if (strcmp(c, channel_names[i]) == 0)
			return i;
	return DSP_STAT_CHANNELS - 1;
}

static int load_stored(struct wf_txn *t, const struct dsp_dbs *d, struct dsp_stats *s)
{
	int r = dsp_get_rec(t, d->stats, "all", s, sizeof *s);
	if (r == -ENOENT || r == -EBADMSG) {
		/* none yet (or of another layout: counting starts again) */
		memset(s, 0, sizeof *s);
		s->rec_version = 1;
		return 0;
	}
	return r;
}

/* The cache's hook: the record written once, just before T commits. */
static int cache_hook(struct wf_txn *t, void *ud, bool commit)
{
	struct dsp_stats_cache *c = ud;
	int r = commit ? dsp_put_rec(t, c->dbi, "all", &c->s, sizeof c->s) : 0;
	c->t = NULL;
	return r;
}

int dsp_stats_load(struct wf_txn *t, const struct dsp_dbs *d, struct dsp_stats *s)
{
	const struct dsp_stats_cache *c = d->stats_cache;
	if (c && c->t == t) {
		*s = c->s; /* changed in T, not written yet */
		return 0;
	}
	return load_stored(t, d, s);
}

/* The record to change in T: the cache's (loaded once per transaction,
 * written by its hook) or, without a cache, *TMP (written by stats_put). */
static int stats_get(struct wf_txn *t, const struct dsp_dbs *d, struct dsp_stats *tmp,
		     struct dsp_stats **ret)
{
	struct dsp_stats_cache *c = d->stats_cache;
	if (c && c->t == t) {
		*ret = &c->s;
		return 0;
	}
	if (c && wf_store_txn_writable(t)) {
		int r = load_stored(t, d, &c->s);
		if (r == 0)
			r = wf_store_txn_hook(t, cache_hook, c);
		if (r < 0)
			return r;
		c->t = t;
		c->dbi = d->stats;
		*ret = &c->s;
		return 0;
	}
	*ret = tmp;
	return load_stored(t, d, tmp);
}

static int stats_put(struct wf_txn *t, const struct dsp_dbs *d, struct dsp_stats *s, int64_t now)
{
	if (s->since_ms == 0)
		s->since_ms = now;
	if (d->stats_cache && s == &d->stats_cache->s)
		return 0; /* written before the commit */
	return dsp_put_rec(t, d->stats, "all", s, sizeof *s);
}

int dsp_stats_count(struct wf_txn *t, const struct dsp_dbs *d, const char *channel,
		    unsigned state, int64_t at_ms)
{
	struct dsp_stats tmp, *s;
	int r = stats_get(t, d, &tmp, &s);
	if (r < 0)
		return r;
	if (state < DSP_STAT_STATES)
		s->channel[channel_index(channel)][state]++;
	return stats_put(t, d, s, at_ms);
}

/* The agencies cited by W's event ids ("<agency>:<id>"), as a bit set. */
static unsigned agencies_of(const Wf__V1__Warning *w)
{
	static const char *const tok[DSP_STAT_AGENCIES] = { "", "met", "water", "geo", "fire",
							    "police" };
	unsigned set = 0;
	for (size_t i = 0; i < w->n_event_ids; i++) {
		const char *e = w->event_ids[i], *colon = strchr(e, ':');
		size_t n = colon ? (size_t)(colon - e) : 0;
		unsigned a = 0;
		for (unsigned k = 1; k < DSP_STAT_AGENCIES; k++)
			if (n == strlen(tok[k]) && strncmp(e, tok[k], n) == 0)
				a = k;
		set |= 1u << a;
	}
	return set;
}

int dsp_stats_version(struct wf_txn *t, const struct dsp_dbs *d, const Wf__V1__Warning *w,
		      int64_t now)
{
	struct dsp_stats tmp, *s;
	int r = stats_get(t, d, &tmp, &s);
	if (r < 0)
		return r;
	s->versions++;
	unsigned set = agencies_of(w);
	for (unsigned a = 0; a < DSP_STAT_AGENCIES; a++)
		if (set & (1u << a))
			s->agency_versions[a]++;
	return stats_put(t, d, s, now);
}

int dsp_stats_release(struct wf_txn *t, const struct dsp_dbs *d, const Wf__V1__Warning *w,
		      int64_t now)
{
	struct dsp_stats tmp, *s;
	int r = stats_get(t, d, &tmp, &s);
	if (r < 0)
		return r;
	int64_t lat = w->sent_ms > 0 && now > w->sent_ms ? now - w->sent_ms : 0;
	s->released++;
	dsp_latency_add(&s->release_latency, lat);
	unsigned set = agencies_of(w);
	for (unsigned a = 0; a < DSP_STAT_AGENCIES; a++)
		if (set & (1u << a)) {
			s->agency_released[a]++;
			dsp_latency_add(&s->agency_latency[a], lat);
		}
	return stats_put(t, d, s, now);
}

int dsp_stats_first_ack(struct wf_txn *t, const struct dsp_dbs *d, int64_t latency_ms,
			int64_t now)
{
	struct dsp_stats tmp, *s;
	int r = stats_get(t, d, &tmp, &s);
	if (r < 0)
		return r;
	dsp_latency_add(&s->ack_latency, latency_ms > 0 ? latency_ms : 0);
	return stats_put(t, d, s, now);
}

int dsp_stats_cancel(struct wf_txn *t, const struct dsp_dbs *d, int64_t now)
{
	struct dsp_stats tmp, *s;
	int r = stats_get(t, d, &tmp, &s);
	if (r < 0)
		return r;
	s->cancelled++;
	return stats_put(t, d, s, now);
}

void dsp_latency_add(struct dsp_latency *l, int64_t ms)
{
	unsigned b = 0;
	if (ms < 0)
		ms = 0;
	for (uint64_t v = (uint64_t)ms; v && b < DSP_LAT_BUCKETS - 1; v >>= 1)
		b++;
	l->count++;
	l->sum_ms += ms;
	if (ms > l->max_ms)
		l->max_ms = ms;
	l->bucket[b]++;
}

int64_t dsp_latency_quantile(const struct dsp_latency *l, double q)
{
	if (l->count == 0)
		return 0;
	uint64_t want = (uint64_t)((double)l->count * q + 0.999999), seen = 0;
	if (want == 0)
		want = 1;
	for (unsigned b = 0; b < DSP_LAT_BUCKETS; b++) {
		seen += l->bucket[b];
		if (seen >= want) {
			int64_t upper = b == 0 ? 0 : (int64_t)((1ull << b) - 1);
			return upper < l->max_ms ? upper : l->max_ms;
		}
	}
	return l->max_ms;
}

static void latency_msg(const struct dsp_latency *l, Wf__V1__Latency *m)
{
	wf__v1__latency__init(m);
	m->count = l->count;
	m->sum_ms = l->sum_ms;
	m->max_ms = l->max_ms;
	m->p50_ms = dsp_latency_quantile(l, 0.5);
	m->p95_ms = dsp_latency_quantile(l, 0.95);
}

int dsp_stats_pack(const struct dsp_stats *s, const struct dsp_stats_extra *extra,
		   size_t n_extra, const char *producer, int64_t now, uint8_t **ret,
		   size_t *ret_len)
{
	Wf__V1__DispatchStats m = WF__V1__DISPATCH_STATS__INIT;
	Wf__V1__AgencyStats ag[DSP_STAT_AGENCIES], *agp[DSP_STAT_AGENCIES];
	Wf__V1__Latency aglat[DSP_STAT_AGENCIES], rl, al;
	Wf__V1__ChannelStats ch[DSP_STAT_CHANNELS], *chp[DSP_STAT_CHANNELS];
	Wf__V1__Count cnt[DSP_STAT_CHANNELS][DSP_STAT_STATES];
	Wf__V1__Count *cntp[DSP_STAT_CHANNELS][DSP_STAT_STATES];
	Wf__V1__Count fail[16], *failp[16];
	size_t n_fail = 0;

	m.versions = s->versions;
	m.released = s->released;
	m.cancelled = s->cancelled;
	for (unsigned a = 0; a < DSP_STAT_AGENCIES; a++) {
		if (s->agency_versions[a] == 0)
			continue;
		wf__v1__agency_stats__init(&ag[m.n_agencies]);
		ag[m.n_agencies].agency = (Wf__V1__Agency)a;
		ag[m.n_agencies].versions = s->agency_versions[a];
		ag[m.n_agencies].released = s->agency_released[a];
		latency_msg(&s->agency_latency[a], &aglat[m.n_agencies]);
		ag[m.n_agencies].release_latency = &aglat[m.n_agencies];
		agp[m.n_agencies] = &ag[m.n_agencies];
		m.n_agencies++;
	}
	m.agencies = agp;
	for (unsigned c = 0; c < DSP_STAT_CHANNELS; c++) {
		Wf__V1__ChannelStats *x = &ch[m.n_channels];
		wf__v1__channel_stats__init(x);
		x->channel = (char *)channel_names[c];
		for (unsigned st = 0; st < DSP_STAT_STATES; st++) {
			const char *name = dsp_delivery_state_to_string((enum dsp_delivery_state)st);
			if (s->channel[c][st] == 0 || name == NULL)
				continue;
			wf__v1__count__init(&cnt[c][x->n_states]);
			cnt[c][x->n_states].name = (char *)name;
			cnt[c][x->n_states].n = s->channel[c][st];
			cntp[c][x->n_states] = &cnt[c][x->n_states];
			x->n_states++;
		}
		x->states = cntp[c];
		if (x->n_states > 0)
			chp[m.n_channels++] = x;
	}
	m.channels = chp;
	latency_msg(&s->release_latency, &rl);
	latency_msg(&s->ack_latency, &al);
	m.release_latency = &rl;
	m.ack_latency = &al;
	for (size_t i = 0; i < sizeof failure_states / sizeof failure_states[0]; i++) {
		uint64_t n = 0;
		for (unsigned c = 0; c < DSP_STAT_CHANNELS; c++)
			n += s->channel[c][failure_states[i]];
		wf__v1__count__init(&fail[n_fail]);
		fail[n_fail].name =
			(char *)dsp_delivery_state_to_string((enum dsp_delivery_state)failure_states[i]);
		fail[n_fail].n = n;
		failp[n_fail] = &fail[n_fail];
		n_fail++;
	}
	for (size_t i = 0; i < n_extra && n_fail < 16; i++) {
		wf__v1__count__init(&fail[n_fail]);
		fail[n_fail].name = (char *)extra[i].name;
		fail[n_fail].n = extra[i].n;
		failp[n_fail] = &fail[n_fail];
		n_fail++;
	}
	m.failures = failp;
	m.n_failures = n_fail;
	m.since_ms = s->since_ms;
	m.updated_ms = now;
	m.producer = (char *)producer;
	size_t len = wf__v1__dispatch_stats__get_packed_size(&m);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	wf__v1__dispatch_stats__pack(&m, buf);
	*ret = buf;
	*ret_len = len;
	return 0;
}
