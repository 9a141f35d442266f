/* engine: state of the fusion engine (inputs, areas, incidents, timers),
 * its LMDB persistence and rebuild, and the public entry points. Grading
 * and the warning lifecycle are in eval.c. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fusion-internal.h"
#include "wf/region.h"
#include "wf/topic.h"

#define MAX_VALIDITY_MS (31LL * 86400000LL)

uint32_t fusion_hash(const void *data, size_t len, uint32_t h)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

static const char *const result_names[] = {
	"applied", "duplicate", "expired", "superseded", "cancel_applied", "not_owned",
};

const char *wf_fusion_result_to_string(enum wf_fusion_result r)
{
	return (unsigned)r < WF_FUSION_RESULT_MAX ? result_names[r] : NULL;
}

/* ---------------------------------------------------------------- buffers */

struct wbuf {
	unsigned char *p;
	size_t n, cap;
	bool oom;
};

static void wb_put(struct wbuf *b, const void *d, size_t n)
{
	if (b->oom)
		return;
	if (b->n + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		while (cap < b->n + n)
			cap *= 2;
		unsigned char *np = realloc(b->p, cap);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->n, d, n);
	b->n += n;
}

static void wb_u8(struct wbuf *b, unsigned v) { unsigned char c = (unsigned char)v; wb_put(b, &c, 1); }
static void wb_u16(struct wbuf *b, unsigned v) { uint16_t x = (uint16_t)v; wb_put(b, &x, 2); }
static void wb_u32(struct wbuf *b, uint32_t v) { wb_put(b, &v, 4); }
static void wb_i64(struct wbuf *b, int64_t v) { wb_put(b, &v, 8); }
static void wb_f64(struct wbuf *b, double v) { wb_put(b, &v, 8); }

struct rbuf {
	const unsigned char *p;
	size_t n, off;
	bool bad;
};

static void rb_get(struct rbuf *b, void *d, size_t n)
{
	if (b->bad || b->off + n > b->n) {
		b->bad = true;
		memset(d, 0, n);
		return;
	}
	memcpy(d, b->p + b->off, n);
	b->off += n;
}

static unsigned rb_u8(struct rbuf *b) { unsigned char c; rb_get(b, &c, 1); return c; }
static unsigned rb_u16(struct rbuf *b) { uint16_t x; rb_get(b, &x, 2); return x; }
static uint32_t rb_u32(struct rbuf *b) { uint32_t x; rb_get(b, &x, 4); return x; }
static int64_t rb_i64(struct rbuf *b) { int64_t x; rb_get(b, &x, 8); return x; }
static double rb_f64(struct rbuf *b) { double x; rb_get(b, &x, 8); return x; }

/* ---------------------------------------------------------------- intern */

static const char *intern(struct wf_fusion *e, const char *s)
{
	if (!s || !*s)
		return "";
	for (size_t i = 0; i < e->n_intern; i++)
		if (strcmp(e->intern[i], s) == 0)
			return e->intern[i];
	if (e->n_intern >= 4096)
		return NULL; /* bounded: criteria are a small vocabulary */
	if (e->n_intern == e->cap_intern) {
		size_t cap = e->cap_intern ? e->cap_intern * 2 : 16;
		char **np = realloc(e->intern, cap * sizeof *np);
		if (!np)
			return NULL;
		e->intern = np;
		e->cap_intern = cap;
	}
	char *c = strdup(s);
	if (!c)
		return NULL;
	e->intern[e->n_intern++] = c;
	return c;
}

/* ---------------------------------------------------------------- timers */

static bool t_less(const struct fusion_timer *a, const struct fusion_timer *b)
{
	return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

/* Puts T at heap index I; an input's expiry timer knows where it is, so
 * that an input that ends early can take it out (timer_remove). */
static void heap_set(struct wf_fusion *e, size_t i, struct fusion_timer t)
{
	e->heap[i] = t;
	if (t.kind == FUSION_T_EXPIRE)
		((struct fusion_input *)t.ptr)->heap_pos = (uint32_t)i;
}

static void sift_up(struct wf_fusion *e, size_t i, struct fusion_timer t)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!t_less(&t, &e->heap[parent]))
			break;
		heap_set(e, i, e->heap[parent]);
		i = parent;
	}
	heap_set(e, i, t);
}

static void sift_down(struct wf_fusion *e, size_t i, struct fusion_timer t)
{
	size_t n = e->n_heap;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		const struct fusion_timer *mv = &t;
		if (l < n && t_less(&e->heap[l], mv)) {
			m = l;
			mv = &e->heap[l];
		}
		if (r < n && t_less(&e->heap[r], mv))
			m = r;
		if (m == i)
			break;
		heap_set(e, i, e->heap[m]);
		i = m;
	}
	heap_set(e, i, t);
}

int fusion_timer_push(struct wf_fusion *e, int64_t at, int kind, void *ptr)
{
	if (e->n_heap == e->cap_heap) {
		size_t cap = e->cap_heap ? e->cap_heap * 2 : 1024;
		struct fusion_timer *np = realloc(e->heap, cap * sizeof *np);
		if (!np)
			return -ENOMEM;
		e->heap = np;
		e->cap_heap = cap;
	}
	struct fusion_timer t = { .at = at, .seq = e->timer_seq++, .ptr = ptr, .kind = (uint8_t)kind };
	sift_up(e, e->n_heap++, t);
	return 0;
}

static struct fusion_timer timer_pop(struct wf_fusion *e)
{
	struct fusion_timer top = e->heap[0];
	struct fusion_timer last = e->heap[--e->n_heap];
	if (e->n_heap)
		sift_down(e, 0, last);
	return top;
}

/* Takes the timer at heap index I out. */
static void timer_remove(struct wf_fusion *e, size_t i)
{
	struct fusion_timer last = e->heap[--e->n_heap];
	if (i == e->n_heap)
		return;
	if (i > 0 && t_less(&last, &e->heap[(i - 1) / 2]))
		sift_up(e, i, last);
	else
		sift_down(e, i, last);
}

int64_t wf_fusion_next_deadline(const struct wf_fusion *e)
{
	if (!e)
		return INT64_MAX;
	if (e->stale || e->regrade_all)
		return e->now;
	return e->n_heap ? e->heap[0].at : INT64_MAX;
}

/* ---------------------------------------------------------------- areas */

static uint32_t area_hash(int status, const char *code)
{
	uint32_t h = fusion_hash(&(unsigned char){ (unsigned char)status }, 1, 2166136261u);
	return fusion_hash(code, 12, h);
}

static bool prefix_owned(const struct wf_fusion *e, const char *code12)
{
	if (!e->n_owned)
		return true;
	for (size_t i = 0; i < e->n_owned; i++)
		if (strncmp(code12, e->owned[i], strlen(e->owned[i])) == 0)
			return true;
	return false;
}

/* 1: owned, 0: context (coarser region containing an owned prefix), -1: neither */
static int region_ownership(const struct wf_fusion *e, const char *code12)
{
	if (prefix_owned(e, code12))
		return 1;
	enum wf_region_level l = wf_region_level_of_code(code12);
	unsigned plen = wf_region_prefix_len(l);
	for (size_t i = 0; i < e->n_owned; i++)
		if (strlen(e->owned[i]) > plen && strncmp(code12, e->owned[i], plen) == 0)
			return 0;
	return -1;
}

struct fusion_area *fusion_area_find(struct wf_fusion *e, int status, const char *code)
{
	if (!e->ar_cap)
		return NULL;
	uint32_t h = area_hash(status, code);
	for (struct fusion_area *a = e->ar_tab[h & (e->ar_cap - 1)]; a; a = a->hnext)
		if (a->hash == h && a->status == status && memcmp(a->code, code, 12) == 0)
			return a;
	return NULL;
}

static int grow_table(void ***tab, size_t *cap, size_t n, size_t off_next, size_t off_hash)
{
	if (n * 4 < *cap * 3 && *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 1024;
	void **nt = calloc(ncap, sizeof *nt);
	if (!nt)
		return -ENOMEM;
	for (size_t i = 0; i < *cap; i++) {
		void *x = (*tab)[i];
		while (x) {
			void **nextp = (void **)(void *)((char *)x + off_next);
			void *next = *nextp;
			uint32_t h = *(uint32_t *)(void *)((char *)x + off_hash);
			*nextp = nt[h & (ncap - 1)];
			nt[h & (ncap - 1)] = x;
			x = next;
		}
	}
	free(*tab);
	*tab = nt;
	*cap = ncap;
	return 0;
}

static struct fusion_area *area_get(struct wf_fusion *e, int status, const char *code)
{
	struct fusion_area *a = fusion_area_find(e, status, code);
	if (a)
		return a;
	if (grow_table((void ***)&e->ar_tab, &e->ar_cap, e->n_areas,
		       offsetof(struct fusion_area, hnext), offsetof(struct fusion_area, hash)) < 0)
		return NULL;
	a = calloc(1, sizeof *a);
	if (!a)
		return NULL;
	e->area_gen++;
	a->hash = area_hash(status, code);
	a->status = (uint8_t)status;
	memcpy(a->code, code, 12);
	a->owned = prefix_owned(e, code);
	a->timer_at = INT64_MAX;
	size_t b = a->hash & (e->ar_cap - 1);
	a->hnext = e->ar_tab[b];
	e->ar_tab[b] = a;
	e->n_areas++;
	return a;
}

/* Queues A for evaluation, regrading the hazards in HZ (and what they
 * affect, see wf_fusion_rules.affects). */
static void area_mark_hz(struct wf_fusion *e, struct fusion_area *a, uint64_t hz)
{
	a->dirty_hz |= hz;
	if (!a->dirty) {
		a->dirty = true;
		a->dirty_next = e->dirty;
		e->dirty = a;
	}
}

static void area_mark_dirty(struct wf_fusion *e, struct fusion_area *a)
{
	area_mark_hz(e, a, FUSION_ALL_HAZARDS);
}

/* An input of HAZARD came to or left A: marks A, and if A is coarser than
 * the grouping level, every area inside it (their chain context changed). */
static void area_touch(struct wf_fusion *e, struct fusion_area *a, int hazard)
{
	uint64_t hz = UINT64_C(1) << hazard;
	area_mark_hz(e, a, hz);
	enum wf_region_level l = wf_region_level_of_code(a->code);
	if ((int)l >= e->rules->area_level)
		return;
	for (size_t i = 0; i < e->ar_cap; i++)
		for (struct fusion_area *x = e->ar_tab[i]; x; x = x->hnext)
			if (x != a && x->status == a->status && wf_region_contains(a->code, x->code))
				area_mark_hz(e, x, hz);
}

void fusion_incident_free(struct fusion_incident *inc)
{
	if (inc) {
		free(inc->regions);
		free(inc->rule_ids);
		free(inc);
	}
}

void fusion_area_set_timer(struct wf_fusion *e, struct fusion_area *a)
{
	int64_t t = INT64_MAX;
	for (uint32_t i = 0; i < a->n_incs; i++) {
		const struct fusion_incident *inc = a->incs[i];
		if (inc->pend_strength) {
			int64_t d = inc->pend_since + e->rules->dwell_ms;
			if (d > e->now && d < t)
				t = d;
			if (d <= e->now && e->now + 1 < t)
				t = e->now + 1; /* defensive: never lose a due downgrade */
		}
		int64_t r = inc->expires - e->rules->renew_ms;
		if (r > e->now && r < t)
			t = r;
	}
	if (t != a->timer_at) {
		a->timer_at = t;
		if (t != INT64_MAX)
			(void)fusion_timer_push(e, t, FUSION_T_AREA, a);
	}
}

/* ---------------------------------------------------------------- inputs */

/* An input is named by (agency, status, id): an exercise or test event
 * that reuses an actual event's id is another event. */
static uint32_t input_hash(int agency, int status, const char *id)
{
	unsigned char as[2] = { (unsigned char)agency, (unsigned char)status };
	return fusion_hash(id, strlen(id), fusion_hash(as, 2, 2166136261u));
}

static struct fusion_input *input_find(struct wf_fusion *e, int agency, int status,
				       const char *id)
{
	if (!e->in_cap)
		return NULL;
	uint32_t h = input_hash(agency, status, id);
	for (struct fusion_input *x = e->in_tab[h & (e->in_cap - 1)]; x; x = x->hnext)
		if (x->hash == h && x->agency == agency && x->status == status &&
		    strcmp(x->id, id) == 0)
			return x;
	return NULL;
}

static struct fusion_input *input_new(struct wf_fusion *e, int agency, int status,
				      const char *id)
{
	if (grow_table((void ***)&e->in_tab, &e->in_cap, e->n_in,
		       offsetof(struct fusion_input, hnext), offsetof(struct fusion_input, hash)) < 0)
		return NULL;
	size_t idlen = strlen(id);
	struct fusion_input *x = calloc(1, sizeof *x + idlen + 1);
	if (!x)
		return NULL;
	memcpy(x->id, id, idlen + 1);
	x->agency = (uint8_t)agency;
	x->status = (uint8_t)status;
	x->hash = input_hash(agency, status, id);
	x->criterion = "";
	size_t b = x->hash & (e->in_cap - 1);
	x->hnext = e->in_tab[b];
	e->in_tab[b] = x;
	e->n_in++;
	return x;
}

static void input_unlink(struct wf_fusion *e, struct fusion_input *x)
{
	struct fusion_input **pp = &e->in_tab[x->hash & (e->in_cap - 1)];
	while (*pp && *pp != x)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = x->hnext;
	e->n_in--;
}

/* Grouping area code of REGION (12 digits) at the rules' area level; a
 * coarser region is its own area. */
static void area_code_of(const struct wf_fusion *e, const char *region, char out[13])
{
	enum wf_region_level l = wf_region_level_of_code(region);
	if ((int)l <= e->rules->area_level || wf_region_ancestor_at(region, (enum wf_region_level)
						 e->rules->area_level, out) < 0)
		memcpy(out, region, 13);
}

static struct fusion_bucket *area_bucket(struct fusion_area *a, int h)
{
	uint64_t bit = UINT64_C(1) << h;
	unsigned idx = fusion_popcount(a->bk_mask & (bit - 1));
	if (a->bk_mask & bit)
		return &a->bk[idx];
	unsigned n = fusion_popcount(a->bk_mask);
	struct fusion_bucket *np = realloc(a->bk, (n + 1) * sizeof *np);
	if (!np)
		return NULL;
	memmove(&np[idx + 1], &np[idx], (n - idx) * sizeof *np);
	np[idx] = (struct fusion_bucket){ 0 };
	a->bk = np;
	a->bk_mask |= bit;
	return &a->bk[idx];
}

static void area_free_inputs(struct fusion_area *a)
{
	unsigned n = fusion_popcount(a->bk_mask);
	for (unsigned i = 0; i < n; i++)
		free(a->bk[i].v);
	free(a->bk);
	a->bk = NULL;
	a->bk_mask = 0;
	a->n_inputs = 0;
}

static int area_add_input(struct wf_fusion *e, struct fusion_input *x)
{
	char code[13];
	area_code_of(e, x->region, code);
	struct fusion_area *a = area_get(e, x->status, code);
	if (!a)
		return -ENOMEM;
	struct fusion_bucket *b = area_bucket(a, x->hazard);
	if (!b)
		return -ENOMEM;
	if (b->n == b->cap) {
		uint32_t cap = b->cap ? b->cap * 2 : 4;
		struct fusion_slot *np = realloc(b->v, cap * sizeof *np);
		if (!np)
			return -ENOMEM;
		b->v = np;
		b->cap = cap;
	}
	x->pos = b->n;
	b->v[b->n++] = (struct fusion_slot){ x, x->expires, x->observed, x->strength, x->certainty,
						     x->agency };
	b->by_agency[x->agency]++;
	a->n_inputs++;
	x->area = a;
	e->n_valid++;
	return 0;
}

static void area_remove_input(struct wf_fusion *e, struct fusion_input *x)
{
	struct fusion_area *a = x->area;
	if (!a)
		return;
	struct fusion_bucket *b = fusion_bucket_of(a, x->hazard);
	uint32_t last = b->n - 1;
	if (x->pos != last) {
		b->v[x->pos] = b->v[last];
		b->v[x->pos].in->pos = x->pos;
	}
	b->n--;
	b->by_agency[x->agency]--;
	a->n_inputs--;
	x->area = NULL;
	e->n_valid--;
	area_touch(e, a, x->hazard);
}

/* ---------------------------------------------------------------- persistence */

#define INPUT_ID_MAX 129                 /* event ids are at most 128 bytes */
#define INPUT_KEY_MAX (INPUT_ID_MAX + 2)  /* agency, status, id */

/* dbi_input key: agency, status, id. (Stores before "inputs-v2" in
 * dbi_meta had agency, id: see inputs_upgrade.) */
static size_t input_key(const struct fusion_input *x, unsigned char *key)
{
	size_t n = strlen(x->id);
	key[0] = x->agency;
	key[1] = x->status;
	memcpy(key + 2, x->id, n);
	return n + 2;
}

static int input_store(struct wf_fusion *e, struct wf_txn *t, const struct fusion_input *x)
{
	unsigned char key[INPUT_KEY_MAX];
	size_t klen = input_key(x, key);
	struct wbuf b = { 0 };
	wb_u8(&b, 1);
	wb_u8(&b, x->hazard);
	wb_u8(&b, x->strength);
	wb_u8(&b, x->certainty);
	wb_u8(&b, x->status);
	wb_u8(&b, x->state);
	wb_u8(&b, (x->placeholder ? 1u : 0u) | (x->has_meas ? 2u : 0u));
	wb_i64(&b, x->observed);
	wb_i64(&b, x->expires);
	wb_i64(&b, x->purge_at);
	wb_f64(&b, x->value);
	wb_f64(&b, x->threshold);
	wb_put(&b, x->region, 12);
	size_t cl = strlen(x->criterion);
	wb_u8(&b, (unsigned)cl);
	wb_put(&b, x->criterion, cl);
	int r = b.oom ? -ENOMEM : wf_store_put(t, e->dbi_input, key, klen, b.p, b.n, 0);
	free(b.p);
	if (r == 0 && e->kf.ready) {
		fusion_keyfilter_add(&e->kf, key, klen);
		/* most keys are stored twice (new, then ended): at twice its
		 * capacity in adds it is built again from what is stored */
		if (e->kf.n >= 2 * e->kf.cap)
			e->kf.ready = false;
	}
	return r;
}

static int kf_add_cb(void *ud, const void *k, size_t kl, const void *v, size_t vl)
{
	(void)v;
	(void)vl;
	fusion_keyfilter_add(ud, k, kl);
	return 0;
}

/* Builds e->kf from dbi_input as T sees it, for twice its keys. */
static int keyfilter_build(struct wf_fusion *e, struct wf_txn *t)
{
	uint64_t n = 0;
	int r = wf_store_count(t, e->dbi_input, &n);
	if (r < 0)
		return r;
	if (fusion_keyfilter_reset(&e->kf, (size_t)n * 2) < 0) {
		e->kf_off = true; /* every lookup reads the store, as before */
		return 0;
	}
	r = wf_store_foreach(t, e->dbi_input, NULL, 0, kf_add_cb, &e->kf);
	if (r < 0)
		return r;
	e->kf.ready = true;
	return 0;
}

/* Decodes a dbi_input record into X (whose id has room for INPUT_ID_MAX
 * bytes); hnext and area are cleared. A key without the status byte when
 * the store is not upgraded yet (e->inputs_v2 false). */
static int input_decode(struct wf_fusion *e, const void *key, size_t klen, const void *val,
			size_t vlen, struct fusion_input *x)
{
	size_t off = e->inputs_v2 ? 2 : 1;
	if (klen < off + 1 || klen > off + INPUT_ID_MAX)
		return -EBADMSG;
	const unsigned char *k = key;
	memcpy(x->id, k + off, klen - off);
	x->id[klen - off] = '\0';
	x->hnext = NULL;
	x->area = NULL;
	x->pos = 0;
	x->agency = k[0];
	struct rbuf b = { .p = val, .n = vlen };
	if (rb_u8(&b) != 1)
		return -EBADMSG;
	x->hazard = (uint8_t)rb_u8(&b);
	x->strength = (uint8_t)rb_u8(&b);
	x->certainty = (uint8_t)rb_u8(&b);
	x->status = (uint8_t)rb_u8(&b);
	x->state = (uint8_t)rb_u8(&b);
	unsigned fl = rb_u8(&b);
	x->placeholder = fl & 1;
	x->has_meas = fl & 2;
	x->observed = rb_i64(&b);
	x->expires = rb_i64(&b);
	x->purge_at = rb_i64(&b);
	x->value = rb_f64(&b);
	x->threshold = rb_f64(&b);
	rb_get(&b, x->region, 12);
	x->region[12] = '\0';
	char crit[256];
	unsigned cl = rb_u8(&b);
	rb_get(&b, crit, cl);
	crit[cl] = '\0';
	if (b.bad || x->agency == 0 || x->agency >= FUSION_AGENCY_MAX ||
	    (!x->placeholder && (x->hazard == 0 || x->hazard >= FUSION_HAZARD_MAX)) ||
	    x->strength > 4 || x->state > FUSION_IN_NOINPUT || (off == 2 && k[1] != x->status))
		return -EBADMSG;
	x->hash = input_hash(x->agency, x->status, x->id);
	x->criterion = intern(e, crit);
	return x->criterion ? 0 : -ENOMEM;
}

/* The input AGENCY/STATUS/ID: in memory (valid) or else read from the
 * store into e->cold, which the next lookup overwrites. *RET NULL if
 * unknown. Called in write transactions only, so the store is upgraded. */
static int input_lookup(struct wf_fusion *e, struct wf_txn *t, int agency, int status,
			const char *id, struct fusion_input **ret)
{
	*ret = input_find(e, agency, status, id);
	if (*ret)
		return 0;
	size_t n = strlen(id);
	if (n == 0 || n > INPUT_ID_MAX)
		return -EINVAL;
	unsigned char key[INPUT_KEY_MAX];
	key[0] = (unsigned char)agency;
	key[1] = (unsigned char)status;
	memcpy(key + 2, id, n);
	int r;
	if (!e->kf.ready && !e->kf_off && (r = keyfilter_build(e, t)) < 0)
		return r;
	if (e->kf.ready && !fusion_keyfilter_maybe(&e->kf, key, n + 2))
		return 0; /* never stored: no B-tree descent */
	unsigned char val[512];
	size_t vlen = 0;
	r = wf_store_get_buf(t, e->dbi_input, key, n + 2, val, sizeof val, &vlen);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	r = input_decode(e, key, n + 2, val, vlen, e->cold);
	if (r < 0)
		return r;
	if (e->cold->state == FUSION_IN_VALID)
		e->cold->state = FUSION_IN_EXPIRED; /* not in memory: it expired */
	*ret = e->cold;
	return 0;
}

static size_t purge_key(int64_t at, const struct fusion_input *x, unsigned char *key)
{
	wf_store_u64_to_key(at > 0 ? (uint64_t)at : 0, key);
	return 8 + input_key(x, key + 8);
}

/* X's dbi_purge entry at X's purge time. */
static int purge_put(struct wf_fusion *e, struct wf_txn *t, const struct fusion_input *x)
{
	unsigned char key[8 + INPUT_KEY_MAX];
	int r = wf_store_put(t, e->dbi_purge, key, purge_key(x->purge_at, x, key), "", 0, 0);
	if (r == 0 && x->purge_at < e->next_purge && e->next_purge != INT64_MIN)
		e->next_purge = x->purge_at;
	return r;
}

/* X's dbi_purge entry at purge time AT (it may be absent). */
static int purge_del(struct wf_fusion *e, struct wf_txn *t, const struct fusion_input *x,
		     int64_t at)
{
	unsigned char key[8 + INPUT_KEY_MAX];
	int r = wf_store_del(t, e->dbi_purge, key, purge_key(at, x, key));
	return r == -ENOENT ? 0 : r;
}

/* Stores X, which is not VALID, and moves its dbi_purge entry from
 * OLD_PURGE (0: none) to X's purge time. */
static int input_store_ended(struct wf_fusion *e, struct wf_txn *t, const struct fusion_input *x,
			     int64_t old_purge)
{
	int r = input_store(e, t, x);
	if (r < 0 || old_purge == x->purge_at)
		return r;
	if (old_purge && (r = purge_del(e, t, x, old_purge)) < 0)
		return r;
	return purge_put(e, t, x);
}

static size_t incident_key(const struct fusion_area *a, const struct fusion_incident *inc,
			   unsigned char key[14])
{
	key[0] = a->status;
	key[1] = inc->hazard;
	memcpy(key + 2, a->code, 12);
	return 14;
}

int fusion_incident_store(struct wf_fusion *e, struct wf_txn *t, const struct fusion_area *a,
			  const struct fusion_incident *inc)
{
	unsigned char key[14];
	incident_key(a, inc, key);
	struct wbuf b = { 0 };
	wb_u8(&b, 1);
	wb_u8(&b, inc->strength);
	wb_u8(&b, inc->certainty);
	wb_u8(&b, inc->pend_strength);
	wb_u32(&b, inc->version);
	wb_i64(&b, inc->onset);
	wb_i64(&b, inc->expires);
	wb_i64(&b, inc->pend_since);
	size_t idl = strlen(inc->id);
	wb_u8(&b, (unsigned)idl);
	wb_put(&b, inc->id, idl);
	wb_u16(&b, inc->n_regions);
	wb_put(&b, inc->regions, (size_t)inc->n_regions * 12);
	size_t rl = inc->rule_ids ? strlen(inc->rule_ids) : 0;
	wb_u16(&b, (unsigned)rl);
	wb_put(&b, inc->rule_ids ? inc->rule_ids : "", rl);
	int r = b.oom ? -ENOMEM : wf_store_put(t, e->dbi_inc, key, 14, b.p, b.n, 0);
	free(b.p);
	return r;
}

/* A new incident's id is BASE (eval.c's make_id: hazard, area, first
 * input, time), unless the last incident created for the same (status,
 * hazard, area) had the same base (cancelled and opened again in the same
 * tick from the same first input): then BASE.N with N one more than that
 * one's. Recorded in the store, so a restart gives the same ids. */
int fusion_incident_id(struct wf_fusion *e, struct wf_txn *t, const struct fusion_area *a,
		       int hazard, const char *base, char *out, size_t size)
{
	unsigned char key[4 + 14];
	struct fusion_incident probe = { .hazard = (uint8_t)hazard };
	memcpy(key, "ids:", 4);
	incident_key(a, &probe, key + 4);
	char rec[128];
	size_t rl = 0;
	uint32_t salt = 0;
	size_t bl = strlen(base);
	int r = wf_store_get_buf(t, e->dbi_meta, key, sizeof key, rec, sizeof rec, &rl);
	if (r < 0 && r != -ENOENT)
		return r;
	if (r == 0 && rl == bl + 4 && memcmp(rec, base, bl) == 0) {
		memcpy(&salt, rec + bl, 4);
		salt++;
	}
	if (bl + 4 > sizeof rec)
		return -EINVAL;
	memcpy(rec, base, bl);
	memcpy(rec + bl, &salt, 4);
	r = wf_store_put(t, e->dbi_meta, key, sizeof key, rec, bl + 4, 0);
	if (r < 0)
		return r;
	if (salt)
		snprintf(out, size, "%s.%u", base, salt);
	else
		snprintf(out, size, "%s", base);
	return 0;
}

int fusion_incident_delete(struct wf_fusion *e, struct wf_txn *t, const struct fusion_area *a,
			   const struct fusion_incident *inc)
{
	unsigned char key[14];
	incident_key(a, inc, key);
	int r = wf_store_del(t, e->dbi_inc, key, 14);
	return r == -ENOENT ? 0 : r;
}

static int meta_store(struct wf_fusion *e, struct wf_txn *t)
{
	unsigned char v[8 + FUSION_AGENCY_MAX * 2];
	memcpy(v, &e->now, 8);
	for (int i = 0; i < FUSION_AGENCY_MAX; i++) {
		v[8 + i] = e->silent[i];
		v[8 + FUSION_AGENCY_MAX + i] = e->alive_known[i];
	}
	int r = wf_store_put(t, e->dbi_meta, "state", 5, v, sizeof v, 0);
	if (r == 0)
		e->stored_now = e->now;
	return r;
}

/* ---------------------------------------------------------------- reset / rebuild */

static void state_free(struct wf_fusion *e)
{
	for (size_t i = 0; i < e->in_cap; i++) {
		struct fusion_input *x = e->in_tab[i];
		while (x) {
			struct fusion_input *n = x->hnext;
			free(x);
			x = n;
		}
	}
	free(e->in_tab);
	e->in_tab = NULL;
	e->in_cap = e->n_in = e->n_valid = 0;
	for (size_t i = 0; i < e->ar_cap; i++) {
		struct fusion_area *a = e->ar_tab[i];
		while (a) {
			struct fusion_area *n = a->hnext;
			for (uint32_t k = 0; k < a->n_incs; k++)
				fusion_incident_free(a->incs[k]);
			free(a->incs);
			area_free_inputs(a);
			free(a);
			a = n;
		}
	}
	free(e->ar_tab);
	e->ar_tab = NULL;
	e->ar_cap = e->n_areas = e->n_incidents = 0;
	e->dirty = NULL;
	free(e->heap);
	e->heap = NULL;
	e->n_heap = e->cap_heap = 0;
	e->timer_seq = 0;
	e->now = e->stored_now = 0;
	memset(e->silent, 0, sizeof e->silent);
	memset(e->alive_known, 0, sizeof e->alive_known);
}

/* Rebuild: only inputs still VALID at e->now are held in memory (see
 * wf_fusion.dbi_purge); the others stay in the store. */
static int load_input(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct wf_fusion *e = ud;
	int r = input_decode(e, key, klen, val, vlen, e->cold);
	if (r < 0)
		return r;
	const struct fusion_input *c = e->cold;
	if (c->state != FUSION_IN_VALID || c->placeholder || c->expires <= e->now)
		return 0;
	struct fusion_input *x = input_new(e, c->agency, c->status, c->id);
	if (!x)
		return -ENOMEM;
	struct fusion_input *hnext = x->hnext;
	memcpy(x, c, sizeof *x);
	x->hnext = hnext;
	return 0;
}

static int load_incident(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct wf_fusion *e = ud;
	if (klen != 14)
		return -EBADMSG;
	const unsigned char *k = key;
	char code[13];
	memcpy(code, k + 2, 12);
	code[12] = '\0';
	struct rbuf b = { .p = val, .n = vlen };
	if (rb_u8(&b) != 1)
		return -EBADMSG;
	struct fusion_incident *inc = calloc(1, sizeof *inc);
	if (!inc)
		return -ENOMEM;
	inc->hazard = k[1];
	inc->strength = (uint8_t)rb_u8(&b);
	inc->certainty = (uint8_t)rb_u8(&b);
	inc->pend_strength = (uint8_t)rb_u8(&b);
	inc->version = rb_u32(&b);
	inc->onset = rb_i64(&b);
	inc->expires = rb_i64(&b);
	inc->pend_since = rb_i64(&b);
	unsigned idl = rb_u8(&b);
	if (idl >= sizeof inc->id)
		b.bad = true;
	else
		rb_get(&b, inc->id, idl);
	inc->n_regions = (uint16_t)rb_u16(&b);
	inc->regions = malloc((size_t)inc->n_regions * 12 + 1);
	if (inc->regions)
		rb_get(&b, inc->regions, (size_t)inc->n_regions * 12);
	unsigned rl = rb_u16(&b);
	inc->rule_ids = malloc(rl + 1);
	if (inc->rule_ids) {
		rb_get(&b, inc->rule_ids, rl);
		inc->rule_ids[rl] = '\0';
	}
	if (!inc->regions || !inc->rule_ids) {
		fusion_incident_free(inc);
		return -ENOMEM;
	}
	if (b.bad || inc->hazard == 0 || inc->hazard >= FUSION_HAZARD_MAX || inc->strength > 4) {
		fusion_incident_free(inc);
		return -EBADMSG;
	}
	struct fusion_area *a = area_get(e, k[0], code);
	if (!a || a->n_incs == a->cap_incs) {
		uint32_t cap = a ? (a->cap_incs ? a->cap_incs * 2 : 2) : 0;
		struct fusion_incident **np = a ? realloc(a->incs, cap * sizeof *np) : NULL;
		if (!np) {
			fusion_incident_free(inc);
			return -ENOMEM;
		}
		a->incs = np;
		a->cap_incs = cap;
	}
	/* keys come in order, so the hazard order within an area holds */
	if (a->inc_mask >> inc->hazard) {
		fusion_incident_free(inc);
		return -EBADMSG;
	}
	a->incs[a->n_incs++] = inc;
	a->inc_mask |= UINT64_C(1) << inc->hazard;
	e->n_incidents++;
	return 0;
}

static int rebuild(struct wf_fusion *e, struct wf_txn *t)
{
	state_free(e);
	e->kf.ready = false; /* built again from the store at the next lookup */
	unsigned char v[8 + FUSION_AGENCY_MAX * 2];
	size_t vl = 0;
	int r = wf_store_get_buf(t, e->dbi_meta, "state", 5, v, sizeof v, &vl);
	if (r == 0 && vl == sizeof v) {
		memcpy(&e->now, v, 8);
		for (int i = 0; i < FUSION_AGENCY_MAX; i++) {
			e->silent[i] = v[8 + i];
			e->alive_known[i] = v[8 + FUSION_AGENCY_MAX + i];
		}
		e->stored_now = e->now;
	} else if (r < 0 && r != -ENOENT) {
		return r;
	}
	r = wf_store_exists(t, e->dbi_meta, "inputs-v2", 9);
	if (r < 0)
		goto fail;
	e->inputs_v2 = r == 1;
	r = wf_store_foreach(t, e->dbi_input, NULL, 0, load_input, e);
	if (r < 0)
		goto fail;
	r = wf_store_foreach(t, e->dbi_inc, NULL, 0, load_incident, e);
	if (r < 0)
		goto fail;
	for (size_t i = 0; i < e->in_cap; i++) {
		for (struct fusion_input *x = e->in_tab[i]; x; x = x->hnext) {
			r = area_add_input(e, x);
			if (r == 0)
				r = fusion_timer_push(e, x->expires, FUSION_T_EXPIRE, x);
			if (r < 0)
				goto fail;
		}
	}
	e->next_purge = INT64_MIN;
	for (size_t i = 0; i < e->ar_cap; i++)
		for (struct fusion_area *a = e->ar_tab[i]; a; a = a->hnext)
			fusion_area_set_timer(e, a);
	/* nothing is dirty after a rebuild: every committed call evaluated
	 * what it touched */
	for (size_t i = 0; i < e->ar_cap; i++)
		for (struct fusion_area *a = e->ar_tab[i]; a; a = a->hnext) {
			a->dirty = false;
			a->dirty_hz = 0;
		}
	e->dirty = NULL;
	e->stale = false;
	return 0;
fail:
	state_free(e);
	e->stale = true;
	return r;
}

/* ---------------------------------------------------------------- open / close */

int wf_fusion_open(struct wf_store *s, struct wf_fusion_rules *rules,
		   const struct wf_fusion_options *o, struct wf_fusion **ret)
{
	if (!s || !rules || !ret)
		return -EINVAL;
	struct wf_fusion_options def = { 0 };
	if (!o)
		o = &def;
	const char *pfx = o->db_prefix ? o->db_prefix : "fusion";
	if (strlen(pfx) > 32 || strspn(pfx, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(pfx))
		return -EINVAL;
	for (size_t i = 0; i < o->n_owned; i++) {
		size_t n = o->owned[i] ? strlen(o->owned[i]) : 0;
		if (n < 2 || n > 12 || strspn(o->owned[i], "0123456789") != n)
			return -EINVAL;
	}
	struct wf_fusion *e = calloc(1, sizeof *e);
	if (!e)
		return -ENOMEM;
	e->store = s;
	e->regions = o->regions;
	e->full_regrade = o->full_regrade;
	int r = -ENOMEM;
	if (o->n_owned) {
		e->owned = calloc(o->n_owned, sizeof *e->owned);
		if (!e->owned)
			goto fail;
		for (size_t i = 0; i < o->n_owned; i++) {
			e->owned[i] = strdup(o->owned[i]);
			if (!e->owned[i])
				goto fail;
			e->n_owned++;
		}
	}
	char name[64];
	snprintf(name, sizeof name, "%s.input", pfx);
	if ((r = wf_store_dbi(s, name, 0, &e->dbi_input)) < 0)
		goto fail;
	snprintf(name, sizeof name, "%s.incident", pfx);
	if ((r = wf_store_dbi(s, name, 0, &e->dbi_inc)) < 0)
		goto fail;
	snprintf(name, sizeof name, "%s.meta", pfx);
	if ((r = wf_store_dbi(s, name, 0, &e->dbi_meta)) < 0)
		goto fail;
	snprintf(name, sizeof name, "%s.purge", pfx);
	if ((r = wf_store_dbi(s, name, 0, &e->dbi_purge)) < 0)
		goto fail;
	e->cold = calloc(1, sizeof *e->cold + INPUT_ID_MAX + 1);
	if (!e->cold) {
		r = -ENOMEM;
		goto fail;
	}
	e->rules = rules;
	struct wf_txn *t = NULL;
	if ((r = wf_store_txn_begin(s, false, &t)) < 0)
		goto fail_rules;
	r = rebuild(e, t);
	wf_store_txn_abort(t);
	if (r < 0)
		goto fail_rules;
	*ret = e;
	return 0;
fail_rules:
	e->rules = NULL;
fail:
	wf_fusion_close(e);
	return r;
}

struct wf_fusion *wf_fusion_close(struct wf_fusion *e)
{
	if (!e)
		return NULL;
	state_free(e);
	for (size_t i = 0; i < e->n_intern; i++)
		free(e->intern[i]);
	free(e->intern);
	for (size_t i = 0; i < e->n_owned; i++)
		free(e->owned[i]);
	free(e->owned);
	fusion_scratch_free(e->scratch);
	fusion_keyfilter_free(&e->kf);
	wf_fusion_rules_free(e->rules);
	free(e->cold);
	free(e);
	return NULL;
}

void wf_fusion_txn_aborted(struct wf_fusion *e)
{
	if (e) {
		state_free(e);
		e->stale = true;
	}
}

int wf_fusion_set_rules(struct wf_fusion *e, struct wf_fusion_rules *rules, char *err,
			size_t errlen)
{
	if (!e || !rules)
		return -EINVAL;
	if (rules->area_level != e->rules->area_level) {
		if (errlen)
			snprintf(err, errlen, "[fusion] area changed from %s to %s: restart needed; "
					      "keeping the old rules",
				 wf_region_level_to_string((enum wf_region_level)e->rules->area_level),
				 wf_region_level_to_string((enum wf_region_level)rules->area_level));
		return -EINVAL;
	}
	wf_fusion_rules_free(e->rules);
	e->rules = rules;
	e->regrade_all = true;
	return 0;
}

void wf_fusion_get_stats(const struct wf_fusion *e, struct wf_fusion_stats *ret)
{
	memset(ret, 0, sizeof *ret);
	if (!e)
		return;
	ret->inputs = e->n_in;
	ret->valid_inputs = e->n_valid;
	ret->incidents = e->n_incidents;
	ret->areas = e->n_areas;
	ret->emitted = e->emitted;
	ret->now_ms = e->now;
}

/* ---------------------------------------------------------------- processing */

static int area_cmp(const void *a, const void *b)
{
	const struct fusion_area *x = *(struct fusion_area *const *)a;
	const struct fusion_area *y = *(struct fusion_area *const *)b;
	if (x->status != y->status)
		return x->status < y->status ? -1 : 1;
	return memcmp(x->code, y->code, 12);
}

/* Evaluates every dirty area, in (status, code) order. */
static int eval_dirty(struct wf_fusion *e, struct wf_txn *t, wf_fusion_emit_fn emit, void *ud)
{
	size_t n = 0;
	for (struct fusion_area *a = e->dirty; a; a = a->dirty_next)
		n++;
	if (!n)
		return 0;
	struct fusion_area **v = malloc(n * sizeof *v);
	if (!v)
		return -ENOMEM;
	n = 0;
	for (struct fusion_area *a = e->dirty; a; a = a->dirty_next)
		v[n++] = a;
	e->dirty = NULL;
	qsort(v, n, sizeof *v, area_cmp);
	int total = 0, r = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t hz = v[i]->dirty_hz;
		v[i]->dirty = false;
		v[i]->dirty_hz = 0;
		if (r < 0)
			continue;
		r = fusion_eval_area(e, t, v[i], hz, emit, ud);
		if (r >= 0)
			total += r;
	}
	free(v);
	return r < 0 ? r : total;
}

/* X (valid, in memory) has ended, in STATE: it is stored with its purge
 * entry and leaves memory (X is freed). An expiry needs only the purge
 * entry: a record still VALID in the store but not in memory has expired
 * (input_lookup, load_input); an input that ends early (superseded,
 * cancelled) also takes its expiry timer out of the heap. */
static int input_end(struct wf_fusion *e, struct wf_txn *t, struct fusion_input *x, int state,
		     bool timer_due)
{
	area_remove_input(e, x);
	x->state = (uint8_t)state;
	int r = state == FUSION_IN_EXPIRED ? purge_put(e, t, x) : input_store_ended(e, t, x, 0);
	if (!timer_due)
		timer_remove(e, x->heap_pos);
	input_unlink(e, x);
	free(x);
	return r;
}

#define PURGE_BATCH 256

struct purge_batch {
	int64_t now;
	size_t n;
	unsigned char key[PURGE_BATCH][8 + INPUT_KEY_MAX];
	size_t klen[PURGE_BATCH];
};

static int64_t purge_key_time(const unsigned char *k)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | k[i];
	return v > INT64_MAX ? INT64_MAX : (int64_t)v;
}

static int purge_collect(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct purge_batch *b = ud;
	(void)val;
	(void)vlen;
	if (klen < 11 || klen > 8 + INPUT_KEY_MAX)
		return -EBADMSG;
	if (purge_key_time(key) > b->now || b->n == PURGE_BATCH)
		return 1;
	memcpy(b->key[b->n], key, klen);
	b->klen[b->n++] = klen;
	return 0;
}

static int purge_first(struct wf_fusion *e, struct wf_txn *t)
{
	unsigned char k[8 + INPUT_KEY_MAX];
	size_t kl = 0;
	int r = wf_store_first_key(t, e->dbi_purge, k, sizeof k, &kl);
	if (r == -ENOENT) {
		e->next_purge = INT64_MAX;
		return 0;
	}
	if (r < 0)
		return r;
	if (kl < 10)
		return -EBADMSG;
	e->next_purge = purge_key_time(k);
	return 0;
}

struct key_list {
	unsigned char (*key)[INPUT_KEY_MAX];
	size_t *klen, n, cap;
};

static int key_list_add(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct key_list *l = ud;
	(void)val;
	(void)vlen;
	if (klen > INPUT_KEY_MAX)
		return -EBADMSG;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		void *nk = realloc(l->key, cap * sizeof *l->key);
		if (nk)
			l->key = nk;
		void *nl = nk ? realloc(l->klen, cap * sizeof *l->klen) : NULL;
		if (!nl)
			return -ENOMEM;
		l->klen = nl;
		l->cap = cap;
	}
	memcpy(l->key[l->n], key, klen);
	l->klen[l->n++] = klen;
	return 0;
}

/* A store from before "inputs-v2" (keys without the status, no purge
 * entries): every record is stored again under its new key, and every one
 * not held in memory gets its purge entry. Once, at the first write
 * transaction after the upgrade (begin). */
static int inputs_upgrade(struct wf_fusion *e, struct wf_txn *t)
{
	struct key_list l = { 0 };
	int r = wf_store_foreach(t, e->dbi_input, NULL, 0, key_list_add, &l);
	for (size_t i = 0; r >= 0 && i < l.n; i++) {
		unsigned char val[512];
		size_t vlen = 0;
		struct fusion_input *c = e->cold;
		r = wf_store_get_buf(t, e->dbi_input, l.key[i], l.klen[i], val, sizeof val, &vlen);
		if (r == 0)
			r = input_decode(e, l.key[i], l.klen[i], val, vlen, c);
		if (r == 0)
			r = wf_store_del(t, e->dbi_input, l.key[i], l.klen[i]);
		if (r == 0)
			r = input_store(e, t, c);
		if (r == 0 && !input_find(e, c->agency, c->status, c->id))
			r = purge_put(e, t, c);
	}
	free(l.key);
	free(l.klen);
	if (r < 0)
		return r;
	r = wf_store_put(t, e->dbi_meta, "inputs-v2", 9, "1", 1, 0);
	if (r == 0)
		e->inputs_v2 = true;
	return r;
}

/* Deletes up to PURGE_BATCH records whose purge time has come (the rest
 * at the next calls). Purging never changes output: a record is purged
 * `retain` (>= 8 days) after its expiry, and the codec refuses events
 * observed more than 7 days ago, so its id cannot validly come again. */
static int run_purge(struct wf_fusion *e, struct wf_txn *t)
{
	int r;
	if (e->next_purge == INT64_MIN && (r = purge_first(e, t)) < 0)
		return r;
	if (e->next_purge > e->now)
		return 0;
	struct purge_batch *b = malloc(sizeof *b);
	if (!b)
		return -ENOMEM;
	b->now = e->now;
	b->n = 0;
	r = wf_store_foreach(t, e->dbi_purge, NULL, 0, purge_collect, b);
	for (size_t i = 0; r >= 0 && i < b->n; i++) {
		const unsigned char *ik = b->key[i] + 8;
		size_t iklen = b->klen[i] - 8;
		unsigned char val[512];
		size_t vlen = 0;
		r = wf_store_get_buf(t, e->dbi_input, ik, iklen, val, sizeof val, &vlen);
		if (r == 0)
			r = input_decode(e, ik, iklen, val, vlen, e->cold);
		/* a record in memory is valid; one still VALID in the store but
		 * not in memory has expired */
		if (r == 0 && e->cold->purge_at == purge_key_time(b->key[i]) &&
		    !input_find(e, e->cold->agency, e->cold->status, e->cold->id))
			r = wf_store_del(t, e->dbi_input, ik, iklen);
		if (r == 0 || r == -ENOENT)
			r = wf_store_del(t, e->dbi_purge, b->key[i], b->klen[i]);
	}
	free(b);
	return r < 0 ? r : purge_first(e, t);
}

/* Runs the timers due at e->now; marks areas dirty. */
static int run_timers(struct wf_fusion *e, struct wf_txn *t)
{
	while (e->n_heap && e->heap[0].at <= e->now) {
		struct fusion_timer tm = timer_pop(e);
		if (tm.kind == FUSION_T_EXPIRE) {
			/* every input in memory has exactly one */
			int r = input_end(e, t, tm.ptr, FUSION_IN_EXPIRED, true);
			if (r < 0)
				return r;
		} else {
			struct fusion_area *a = tm.ptr;
			if (a->timer_at == tm.at) {
				a->timer_at = INT64_MAX;
				area_mark_dirty(e, a);
			}
		}
	}
	if (e->regrade_all) {
		e->regrade_all = false;
		for (size_t i = 0; i < e->ar_cap; i++)
			for (struct fusion_area *a = e->ar_tab[i]; a; a = a->hnext)
				area_mark_dirty(e, a);
	}
	return run_purge(e, t);
}

static int begin(struct wf_fusion *e, struct wf_txn *t, int64_t now_ms)
{
	if (!e || !t || !wf_store_txn_writable(t))
		return -EINVAL;
	if (e->stale) {
		int r = rebuild(e, t);
		if (r < 0)
			return r;
	}
	if (!e->inputs_v2) {
		int r = inputs_upgrade(e, t);
		if (r < 0)
			return r;
	}
	if (now_ms > e->now)
		e->now = now_ms;
	return 0;
}

static int finish(struct wf_fusion *e, struct wf_txn *t, int r)
{
	if (r < 0)
		return r;
	if (e->now != e->stored_now) {
		int m = meta_store(e, t);
		if (m < 0)
			return m;
	}
	return r;
}

int wf_fusion_tick(struct wf_fusion *e, struct wf_txn *t, int64_t now_ms,
		   wf_fusion_emit_fn emit, void *ud)
{
	int r = begin(e, t, now_ms);
	if (r < 0)
		return r;
	r = run_timers(e, t);
	if (r >= 0)
		r = eval_dirty(e, t, emit, ud);
	return finish(e, t, r);
}

/* An UPDATE or CANCEL of STATUS (actual / exercise / test) naming REF of
 * its agency: supersedes or cancels it, or records a tombstone for a REF
 * that has not arrived. A reference never crosses statuses: an exercise or
 * test message cannot touch an actual event (nor the other way round). */
static int apply_reference(struct wf_fusion *e, struct wf_txn *t, int agency, int status,
			   const char *ref, int new_state, int64_t purge_floor)
{
	struct fusion_input *x = NULL;
	int r = input_lookup(e, t, agency, status, ref, &x);
	if (r < 0)
		return r;
	if (!x) {
		x = e->cold;
		size_t n = strlen(ref);
		memset(x, 0, sizeof *x);
		memcpy(x->id, ref, n + 1);
		x->agency = (uint8_t)agency;
		x->status = (uint8_t)status;
		x->hash = input_hash(agency, status, ref);
		x->criterion = "";
		x->placeholder = true;
		x->state = (uint8_t)new_state;
		x->purge_at = purge_floor;
		return input_store_ended(e, t, x, 0);
	}
	if (x != e->cold)
		return input_end(e, t, x, new_state, false);
	if (x->state == FUSION_IN_CANCELLED || x->state == new_state)
		return 0;
	x->state = (uint8_t)new_state;
	return input_store(e, t, x);
}

static void input_fill(struct wf_fusion *e, struct fusion_input *x, const Wf__V1__Event *ev,
		       const char *region)
{
	x->placeholder = false;
	x->hazard = (uint8_t)ev->hazard;
	x->strength = (uint8_t)fusion_strength(ev->level);
	x->certainty = (uint8_t)ev->certainty;
	x->status = (uint8_t)ev->status;
	x->observed = ev->observed_ms;
	x->expires = ev->expires_ms;
	memcpy(x->region, region, 13);
	x->has_meas = ev->measurement != NULL;
	x->value = ev->measurement ? ev->measurement->value : 0;
	x->threshold = ev->measurement ? ev->measurement->threshold : 0;
	const char *crit = intern(e, ev->measurement ? ev->measurement->criterion : "");
	x->criterion = crit ? crit : "";
}

int wf_fusion_ingest(struct wf_fusion *e, struct wf_txn *t, const Wf__V1__Event *ev,
		     int64_t now_ms, wf_fusion_emit_fn emit, void *ud)
{
	if (!ev || !ev->id || !*ev->id || strlen(ev->id) > 128)
		return -EINVAL;
	if (ev->agency <= 0 || ev->agency >= FUSION_AGENCY_MAX || ev->hazard <= 0 ||
	    ev->hazard >= FUSION_HAZARD_MAX || ev->status < 1 || ev->status > 3 ||
	    ev->level < 0 || ev->level > 4 || ev->msg_type < 1 || ev->msg_type > 3)
		return -EINVAL;
	char region[13];
	if (!ev->region || wf_region_normalize(ev->region, region) < 0 ||
	    wf_region_level_of_code(region) == WF_REGION_LEVEL_INVALID)
		return -EINVAL;
	int r = begin(e, t, now_ms);
	if (r < 0)
		return r;
	r = run_timers(e, t);
	if (r < 0)
		return r;
	int own = region_ownership(e, region);
	if (own < 0) {
		r = eval_dirty(e, t, emit, ud);
		return finish(e, t, r < 0 ? r : WF_FUSION_NOT_OWNED);
	}
	int agency = ev->agency;
	int status = ev->status;
	struct fusion_input *x = NULL;
	r = input_lookup(e, t, agency, status, ev->id, &x);
	if (r < 0)
		return r;
	if (x && !x->placeholder) {
		r = eval_dirty(e, t, emit, ud);
		return finish(e, t, r < 0 ? r : WF_FUSION_DUPLICATE);
	}
	/* X is NULL or a tombstone read from the store (e->cold, which the
	 * lookups below overwrite): keep what is needed of it */
	bool had_tomb = x != NULL;
	uint8_t tomb_state = x ? x->state : 0;
	int64_t tomb_purge = x ? x->purge_at : 0;
	/* exercise and test never mix with actual: an UPDATE or CANCEL naming
	 * an event that exists only under another status is refused whole
	 * (nothing changes) */
	for (size_t i = 0; i < ev->n_references; i++) {
		struct fusion_input *y = NULL;
		if (!ev->references[i])
			continue;
		if ((r = input_lookup(e, t, agency, status, ev->references[i], &y)) < 0)
			return r;
		for (int other = 1; other <= 3 && !(y && !y->placeholder); other++) {
			if (other == status)
				continue;
			if ((r = input_lookup(e, t, agency, other, ev->references[i], &y)) < 0)
				return r;
			if (y && !y->placeholder) {
				r = eval_dirty(e, t, emit, ud);
				r = finish(e, t, r);
				return r < 0 ? r : -EXDEV;
			}
		}
	}
	int64_t retain = e->rules->retain_ms;
	bool is_cancel = ev->msg_type == WF__V1__MSG_TYPE__MSG_TYPE_CANCEL;
	for (size_t i = 0; i < ev->n_references; i++) {
		if (!ev->references[i] || strcmp(ev->references[i], ev->id) == 0)
			continue;
		r = apply_reference(e, t, agency, ev->status, ev->references[i],
				    is_cancel ? FUSION_IN_CANCELLED : FUSION_IN_SUPERSEDED,
				    ev->observed_ms + MAX_VALIDITY_MS + retain);
		if (r < 0)
			return r;
	}
	int64_t purge = ev->expires_ms + retain;
	if (had_tomb && tomb_purge > purge)
		purge = tomb_purge;
	int result, state;
	if (had_tomb) {
		result = WF_FUSION_SUPERSEDED; /* state stays cancelled/superseded */
		state = tomb_state;
	} else if (is_cancel) {
		result = WF_FUSION_CANCEL_APPLIED;
		state = FUSION_IN_NOINPUT;
	} else if (ev->expires_ms <= e->now) {
		result = WF_FUSION_EXPIRED;
		state = FUSION_IN_NOINPUT;
	} else {
		result = WF_FUSION_APPLIED;
		state = FUSION_IN_VALID;
	}
	if (state != FUSION_IN_VALID) {
		/* only in the store (e->cold is free again) */
		x = e->cold;
		size_t n = strlen(ev->id);
		memset(x, 0, sizeof *x);
		memcpy(x->id, ev->id, n + 1);
		x->agency = (uint8_t)agency;
		x->status = (uint8_t)status;
		x->hash = input_hash(agency, status, ev->id);
		input_fill(e, x, ev, region);
		x->state = (uint8_t)state;
		x->purge_at = purge;
		r = input_store_ended(e, t, x, had_tomb ? tomb_purge : 0);
	} else {
		x = input_new(e, agency, status, ev->id);
		if (!x)
			return -ENOMEM;
		input_fill(e, x, ev, region);
		x->state = FUSION_IN_VALID;
		x->purge_at = purge;
		r = area_add_input(e, x);
		if (r == 0) {
			area_touch(e, x->area, x->hazard);
			r = fusion_timer_push(e, x->expires, FUSION_T_EXPIRE, x);
		}
		if (r == 0)
			r = input_store(e, t, x);
	}
	if (r < 0)
		return r;
	r = eval_dirty(e, t, emit, ud);
	return finish(e, t, r < 0 ? r : result);
}

int wf_fusion_source_liveness(struct wf_fusion *e, struct wf_txn *t, int agency, bool alive,
			      int64_t now_ms, wf_fusion_emit_fn emit, void *ud)
{
	if (agency <= 0 || agency >= FUSION_AGENCY_MAX)
		return -EINVAL;
	int r = begin(e, t, now_ms);
	if (r < 0)
		return r;
	r = run_timers(e, t);
	if (r < 0)
		return r;
	bool changed = e->silent[agency] != !alive;
	e->silent[agency] = !alive;
	e->alive_known[agency] = true;
	if (changed) {
		for (size_t i = 0; i < e->ar_cap; i++)
			for (struct fusion_area *a = e->ar_tab[i]; a; a = a->hnext)
				if (a->n_incs || a->n_inputs)
					area_mark_dirty(e, a);
		r = meta_store(e, t);
		if (r < 0)
			return r;
	}
	r = eval_dirty(e, t, emit, ud);
	return finish(e, t, r);
}

int wf_fusion_advance(struct wf_fusion *e, struct wf_txn *t, int64_t now_ms,
		      wf_fusion_emit_fn emit, void *ud)
{
	int total = 0;

	for (;;) {
		int64_t d = wf_fusion_next_deadline(e);
		if (d > now_ms)
			return total;
		int r = wf_fusion_tick(e, t, d, emit, ud);
		if (r < 0)
			return r;
		total += r;
		if (wf_fusion_next_deadline(e) <= d) { /* defensive: no progress */
			r = wf_fusion_tick(e, t, now_ms, emit, ud);
			return r < 0 ? r : total + r;
		}
	}
}
