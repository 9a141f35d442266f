/* dedupe: see wf/dedupe.h and docs/delivery.md
 *
 * Storage (in the caller's store):
 *   "dedupe:<consumer>"       key: producer id
 *                             value: watermark (u64 BE) | sparse count (u32 BE)
 *   "dedupe-seen:<consumer>"  key: producer id | '\0' | seq (u64 BE)
 *                             value: empty; only seqs above the watermark
 *
 * In memory: per producer, the sorted, disjoint, non-adjacent ranges of
 * seqs noted for acknowledgement. */
#include "wf/dedupe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_PRODUCERS 1024u
#define DEFAULT_MAX_SPARSE    65536u
#define DEFAULT_ACK_RANGES    256u
#define MAX_ACK_RANGES        4096u
#define DEFAULT_PENDING       4096u
#define WM_PREFIX             "dedupe:"
#define SEEN_PREFIX           "dedupe-seen:"
#define ACK_TOPIC_PREFIX      "wf/v1/ack/"

struct range {
	uint64_t first, last;
};

struct pending {
	char *producer;
	struct range *r;
	size_t n, cap;
};

struct wf_dedupe {
	struct wf_store *s;
	char *consumer;
	unsigned wm_dbi, seen_dbi;
	struct wf_dedupe_options o;
	struct pending *p;
	size_t np, capp;
};

bool wf_dedupe_producer_valid(const char *id)
{
	if (!id)
		return false;
	size_t n = 0;
	for (; id[n]; n++) {
		unsigned char c = (unsigned char)id[n];
		if (n >= WF_PRODUCER_MAX || c <= 0x20 || c >= 0x7f || c == '/' || c == '+' || c == '#')
			return false;
	}
	return n > 0;
}

static int open_db(struct wf_store *s, const char *prefix, const char *consumer, unsigned *ret)
{
	char name[32 + WF_PRODUCER_MAX];
	snprintf(name, sizeof name, "%s%s", prefix, consumer);
	return wf_store_dbi(s, name, 0, ret);
}

int wf_dedupe_open(struct wf_store *s, const struct wf_dedupe_options *o, struct wf_dedupe **ret)
{
	struct wf_dedupe *d = NULL;
	int r;

	if (!s || !o || !ret || !wf_dedupe_producer_valid(o->consumer))
		return -EINVAL;
	if (o->max_ack_ranges > MAX_ACK_RANGES)
		return -EINVAL;
	d = calloc(1, sizeof *d);
	if (!d)
		return -ENOMEM;
	d->s = s;
	d->o = *o;
	if (!d->o.max_producers)
		d->o.max_producers = DEFAULT_MAX_PRODUCERS;
	if (!d->o.max_sparse)
		d->o.max_sparse = DEFAULT_MAX_SPARSE;
	if (!d->o.max_ack_ranges)
		d->o.max_ack_ranges = DEFAULT_ACK_RANGES;
	if (!d->o.max_pending_ranges)
		d->o.max_pending_ranges = DEFAULT_PENDING;
	d->consumer = strdup(o->consumer);
	if (!d->consumer) {
		r = -ENOMEM;
		goto fail;
	}
	d->o.consumer = d->consumer;
	r = open_db(s, WM_PREFIX, d->consumer, &d->wm_dbi);
	if (r < 0)
		goto fail;
	r = open_db(s, SEEN_PREFIX, d->consumer, &d->seen_dbi);
	if (r < 0)
		goto fail;
	*ret = d;
	return 0;
fail:
	wf_dedupe_close(d);
	return r;
}

struct wf_dedupe *wf_dedupe_close(struct wf_dedupe *d)
{
	if (!d)
		return NULL;
	for (size_t i = 0; i < d->np; i++) {
		free(d->p[i].producer);
		free(d->p[i].r);
	}
	free(d->p);
	free(d->consumer);
	free(d);
	return NULL;
}

/* ---- persistent state ---- */

struct wm {
	uint64_t watermark;
	uint32_t sparse;
};

static int wm_get(struct wf_dedupe *d, struct wf_txn *t, const char *producer, size_t plen,
		  struct wm *w)
{
	unsigned char v[12];
	size_t n = 0;
	int r = wf_store_get_buf(t, d->wm_dbi, producer, plen, v, sizeof v, &n);
	if (r < 0)
		return r == -EMSGSIZE ? -EBADMSG : r;
	if (n != sizeof v)
		return -EBADMSG;
	w->watermark = wf_store_key_to_u64(v);
	w->sparse = (uint32_t)v[8] << 24 | (uint32_t)v[9] << 16 | (uint32_t)v[10] << 8 | v[11];
	return 0;
}

static int wm_put(struct wf_dedupe *d, struct wf_txn *t, const char *producer, size_t plen,
		  const struct wm *w)
{
	unsigned char v[12];
	wf_store_u64_to_key(w->watermark, v);
	v[8] = (unsigned char)(w->sparse >> 24);
	v[9] = (unsigned char)(w->sparse >> 16);
	v[10] = (unsigned char)(w->sparse >> 8);
	v[11] = (unsigned char)w->sparse;
	return wf_store_put(t, d->wm_dbi, producer, plen, v, sizeof v, 0);
}

/* key: producer | '\0' | seq BE; returns its length */
static size_t seen_key(unsigned char *k, const char *producer, size_t plen, uint64_t seq)
{
	memcpy(k, producer, plen);
	k[plen] = '\0';
	wf_store_u64_to_key(seq, k + plen + 1);
	return plen + 9;
}

int wf_dedupe_apply(struct wf_dedupe *d, struct wf_txn *t, const char *producer, uint64_t seq)
{
	unsigned char k[WF_PRODUCER_MAX + 9];
	struct wm w;

	if (!d || !wf_store_txn_writable(t) || seq == 0 || !wf_dedupe_producer_valid(producer))
		return -EINVAL;
	size_t plen = strlen(producer);
	int r = wm_get(d, t, producer, plen, &w);
	if (r == -ENOENT) {
		uint64_t n = 0;
		r = wf_store_count(t, d->wm_dbi, &n);
		if (r < 0)
			return r;
		if (n >= d->o.max_producers)
			return -ENOSPC;
		w = (struct wm){ 0, 0 };
	} else if (r < 0) {
		return r;
	}
	if (seq <= w.watermark)
		return 1;

	if (seq == w.watermark + 1) {
		w.watermark = seq;
		/* compact: absorb sparse entries that now continue W */
		while (w.sparse > 0 && w.watermark < UINT64_MAX) {
			size_t kl = seen_key(k, producer, plen, w.watermark + 1);
			r = wf_store_del(t, d->seen_dbi, k, kl);
			if (r == -ENOENT)
				break;
			if (r < 0)
				return r;
			w.watermark++;
			w.sparse--;
		}
	} else {
		size_t kl = seen_key(k, producer, plen, seq);
		r = wf_store_exists(t, d->seen_dbi, k, kl);
		if (r < 0)
			return r;
		if (r == 1)
			return 1;
		if (w.sparse >= d->o.max_sparse)
			return -ENOSPC;
		r = wf_store_put(t, d->seen_dbi, k, kl, NULL, 0, WF_STORE_PUT_NOOVERWRITE);
		if (r < 0)
			return r;
		w.sparse++;
	}
	r = wm_put(d, t, producer, plen, &w);
	return r < 0 ? r : 0;
}

int wf_dedupe_floor(struct wf_dedupe *d, struct wf_txn *t, const char *producer, uint64_t floor)
{
	unsigned char k[WF_PRODUCER_MAX + 9];
	struct wm w;

	if (!d || !wf_store_txn_writable(t) || !wf_dedupe_producer_valid(producer))
		return -EINVAL;
	if (floor <= 1)
		return 0;
	size_t plen = strlen(producer);
	int r = wm_get(d, t, producer, plen, &w);
	if (r == -ENOENT) {
		uint64_t n = 0;
		r = wf_store_count(t, d->wm_dbi, &n);
		if (r < 0)
			return r;
		if (n >= d->o.max_producers)
			return -ENOSPC;
		w = (struct wm){ 0, 0 };
	} else if (r < 0) {
		return r;
	}
	if (w.watermark >= floor - 1)
		return 0;
	/* drop the sparse entries at or below the new watermark */
	if (w.sparse > 0) {
		unsigned char lo[WF_PRODUCER_MAX + 9], hi[WF_PRODUCER_MAX + 9];
		size_t lol = seen_key(lo, producer, plen, w.watermark + 1);
		size_t hil = seen_key(hi, producer, plen, floor - 1);
		uint64_t gone = 0;
		r = wf_store_del_range(t, d->seen_dbi, lo, lol, hi, hil, &gone, NULL);
		if (r < 0)
			return r;
		w.sparse = gone >= w.sparse ? 0 : w.sparse - (uint32_t)gone;
	}
	w.watermark = floor - 1;
	while (w.sparse > 0 && w.watermark < UINT64_MAX) {
		size_t kl = seen_key(k, producer, plen, w.watermark + 1);
		r = wf_store_del(t, d->seen_dbi, k, kl);
		if (r == -ENOENT)
			break;
		if (r < 0)
			return r;
		w.watermark++;
		w.sparse--;
	}
	r = wm_put(d, t, producer, plen, &w);
	return r < 0 ? r : 1;
}

int wf_dedupe_state(struct wf_dedupe *d, struct wf_txn *t, const char *producer,
		    uint64_t *ret_watermark, uint32_t *ret_sparse)
{
	struct wm w;

	if (!d || !t || !wf_dedupe_producer_valid(producer))
		return -EINVAL;
	int r = wm_get(d, t, producer, strlen(producer), &w);
	if (r < 0)
		return r;
	if (ret_watermark)
		*ret_watermark = w.watermark;
	if (ret_sparse)
		*ret_sparse = w.sparse;
	return 0;
}

/* ---- ack batching (in memory) ---- */

static struct pending *pending_find(struct wf_dedupe *d, const char *producer)
{
	for (size_t i = 0; i < d->np; i++)
		if (strcmp(d->p[i].producer, producer) == 0)
			return &d->p[i];
	return NULL;
}

/* index of the first range with last >= seq - 1 (could absorb SEQ) */
static size_t range_lower(const struct pending *p, uint64_t seq)
{
	size_t lo = 0, hi = p->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p->r[mid].last < seq - 1)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int wf_dedupe_ack_note(struct wf_dedupe *d, const char *producer, uint64_t seq)
{
	if (!d || seq == 0 || !wf_dedupe_producer_valid(producer))
		return -EINVAL;
	struct pending *p = pending_find(d, producer);
	if (!p) {
		if (d->np >= d->o.max_producers)
			return -ENOBUFS;
		if (d->np == d->capp) {
			size_t cap = d->capp ? d->capp * 2 : 8;
			struct pending *n = realloc(d->p, cap * sizeof *n);
			if (!n)
				return -ENOMEM;
			d->p = n;
			d->capp = cap;
		}
		char *id = strdup(producer);
		if (!id)
			return -ENOMEM;
		p = &d->p[d->np++];
		*p = (struct pending){ .producer = id };
	}

	size_t i = range_lower(p, seq);
	if (i < p->n && seq >= p->r[i].first - 1) {
		/* touches or lies in range i */
		struct range *a = &p->r[i];
		if (seq < a->first)
			a->first = seq;
		if (seq > a->last)
			a->last = seq;
		if (i + 1 < p->n && p->r[i + 1].first - 1 <= a->last) {
			if (p->r[i + 1].last > a->last)
				a->last = p->r[i + 1].last;
			memmove(&p->r[i + 1], &p->r[i + 2], (p->n - i - 2) * sizeof *p->r);
			p->n--;
		}
		return 0;
	}
	if (p->n >= d->o.max_pending_ranges)
		return -ENOBUFS;
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 8;
		struct range *n = realloc(p->r, cap * sizeof *n);
		if (!n)
			return -ENOMEM;
		p->r = n;
		p->cap = cap;
	}
	memmove(&p->r[i + 1], &p->r[i], (p->n - i) * sizeof *p->r);
	p->r[i] = (struct range){ seq, seq };
	p->n++;
	return 0;
}

static Wf__V1__Ack *ack_free(Wf__V1__Ack *a)
{
	if (!a)
		return NULL;
	if (a->ranges)
		for (size_t i = 0; i < a->n_ranges; i++)
			free(a->ranges[i]);
	free(a->ranges);
	free(a->producer);
	free(a->consumer);
	free(a);
	return NULL;
}

static Wf__V1__Ack *ack_build(const struct wf_dedupe *d, const struct pending *p, size_t n,
			      int64_t now_ms)
{
	Wf__V1__Ack *a = malloc(sizeof *a);
	if (!a)
		return NULL;
	wf__v1__ack__init(a);
	a->producer = NULL;
	a->consumer = NULL;
	a->sent_ms = now_ms;
	a->n_ranges = 0;
	a->ranges = calloc(n, sizeof *a->ranges);
	a->producer = strdup(p->producer);
	a->consumer = strdup(d->consumer);
	if (!a->ranges || !a->producer || !a->consumer)
		return ack_free(a);
	for (size_t i = 0; i < n; i++) {
		Wf__V1__SeqRange *r = malloc(sizeof *r);
		if (!r)
			return ack_free(a);
		wf__v1__seq_range__init(r);
		r->first = p->r[i].first;
		r->last = p->r[i].last;
		a->ranges[a->n_ranges++] = r;
	}
	return a;
}

int wf_dedupe_ack_take(struct wf_dedupe *d, const char *producer, int64_t now_ms,
		       Wf__V1__Ack ***ret_acks, size_t *ret_n)
{
	if (!d || !ret_acks || !ret_n || (producer && !wf_dedupe_producer_valid(producer)))
		return -EINVAL;
	size_t want = 0;
	for (size_t i = 0; i < d->np; i++)
		if (d->p[i].n && (!producer || strcmp(producer, d->p[i].producer) == 0))
			want++;
	if (want == 0) {
		*ret_acks = NULL;
		*ret_n = 0;
		return 0;
	}
	Wf__V1__Ack **acks = calloc(want, sizeof *acks);
	if (!acks)
		return -ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < d->np; i++) {
		const struct pending *p = &d->p[i];
		if (!p->n || (producer && strcmp(producer, p->producer) != 0))
			continue;
		size_t k = p->n < d->o.max_ack_ranges ? p->n : d->o.max_ack_ranges;
		acks[n] = ack_build(d, p, k, now_ms);
		if (!acks[n]) {
			wf_dedupe_acks_free(acks, n);
			return -ENOMEM;
		}
		n++;
	}
	/* everything built: now drop what was taken */
	size_t w = 0;
	for (size_t i = 0; i < d->np; i++) {
		struct pending *p = &d->p[i];
		if (p->n && (!producer || strcmp(producer, p->producer) == 0)) {
			size_t k = p->n < d->o.max_ack_ranges ? p->n : d->o.max_ack_ranges;
			memmove(p->r, p->r + k, (p->n - k) * sizeof *p->r);
			p->n -= k;
		}
		if (p->n == 0) {
			free(p->producer);
			free(p->r);
			continue;
		}
		d->p[w++] = *p;
	}
	d->np = w;
	*ret_acks = acks;
	*ret_n = n;
	return 0;
}

Wf__V1__Ack **wf_dedupe_acks_free(Wf__V1__Ack **acks, size_t n)
{
	if (!acks)
		return NULL;
	for (size_t i = 0; i < n; i++)
		ack_free(acks[i]);
	free(acks);
	return NULL;
}

int wf_dedupe_ack_pack(const Wf__V1__Ack *ack, void **ret_buf, size_t *ret_len)
{
	if (!ack || !ret_buf || !ret_len)
		return -EINVAL;
	size_t n = wf__v1__ack__get_packed_size(ack);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf)
		return -ENOMEM;
	size_t w = wf__v1__ack__pack(ack, buf);
	if (w != n) {
		free(buf);
		return -EIO;
	}
	*ret_buf = buf;
	*ret_len = n;
	return 0;
}

int wf_dedupe_ack_topic(const char *producer, char *buf, size_t size)
{
	if (!wf_dedupe_producer_valid(producer) || (!buf && size))
		return -EINVAL;
	size_t need = sizeof ACK_TOPIC_PREFIX - 1 + strlen(producer) + 1;
	if (need > size)
		return -ENAMETOOLONG;
	snprintf(buf, size, "%s%s", ACK_TOPIC_PREFIX, producer);
	return 0;
}
