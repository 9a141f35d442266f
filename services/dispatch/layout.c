/* layout: the conversion, once, of a store written by an earlier release
 * to the keys of store.h.
 *
 * Earlier releases keyed a version's records by "<id>@<version>" (d-review,
 * d-delivery "<id>@<ver>|<ch>|<target>", d-duty and d-dpend
 * "<station>|<id>@<ver>") and, before d-wlog, kept the versions themselves
 * in d-warning. Now each of those keys carries the version's d-wlog
 * sequence number first ("<seq>:<id>@<ver>", store.h), so the versions of
 * a batch write the last pages of each table instead of most of them. At
 * open this file moves d-warning's versions into d-wlog/d-wver, rewrites the
 * keys of d-review, d-delivery and d-duty, rebuilds d-dpend and the review
 * and duty entries of d-due from them (their keys changed), and marks the
 * store (d-meta "layout" = 2). All of it in one write transaction: a crash
 * half way leaves the store as it was, and the next start does it again.
 * Keys already in the new form are left alone, so the same code also
 * finishes a store that has both. */
#include "dispatch-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

#define LAYOUT 2
#define CHUNK 1024

/* What a table's old keys look like. */
enum shape {
	SHAPE_VERSION,  /* "<id>@<ver>" (d-review) */
	SHAPE_DELIVERY, /* "<id>@<ver>|<ch>|<target>" (d-delivery) */
	SHAPE_DUTY,     /* "<station>|<id>@<ver>" (d-duty) */
};

struct entry {
	char *key;
	void *val;
	size_t vlen;
};

struct chunk {
	enum shape shape;
	const char *after; /* the last key of the previous chunk ("" at first) */
	struct entry v[CHUNK];
	size_t n;
	bool oom;
};

/* The "<id>@<ver>" part of KEY (of SHAPE), or NULL. */
static const char *version_part(enum shape shape, const char *key)
{
	if (shape != SHAPE_DUTY)
		return key;
	const char *bar = strchr(key, '|');
	return bar ? bar + 1 : NULL;
}

static bool is_new(enum shape shape, const char *key)
{
	const char *v = version_part(shape, key);
	return v == NULL || dsp_key_skip_seq(v) != v;
}

static int chunk_cb(void *ud, const void *k, size_t kl, const void *val, size_t vl)
{
	struct chunk *c = ud;
	if (kl >= DSP_KEY_MAX || memchr(k, '\0', kl))
		return 0; /* not a key of ours: left alone */
	char key[DSP_KEY_MAX];
	memcpy(key, k, kl);
	key[kl] = '\0';
	if (*c->after && strcmp(key, c->after) <= 0)
		return 0;
	if (is_new(c->shape, key))
		return 0;
	struct entry *e = &c->v[c->n];
	e->key = strdup(key);
	e->val = malloc(vl ? vl : 1);
	if (!e->key || !e->val) {
		free(e->key);
		free(e->val);
		c->oom = true;
		return 1;
	}
	memcpy(e->val, val, vl);
	e->vlen = vl;
	return ++c->n == CHUNK ? 1 : 0;
}

/* The new key of OLD (of SHAPE) in BUF, or 0 when OLD is not one of ours. */
static int new_key(struct wf_txn *t, const struct dsp_dbs *d, enum shape shape, const char *old,
		   char *buf, size_t size)
{
	char tmp[DSP_KEY_MAX];
	snprintf(tmp, sizeof tmp, "%s", old);
	char *station = NULL, *ver = tmp, *rest = NULL;
	if (shape == SHAPE_DUTY) {
		char *bar = strchr(tmp, '|');
		if (!bar)
			return 0;
		*bar = '\0';
		station = tmp;
		ver = bar + 1;
	} else if (shape == SHAPE_DELIVERY) {
		char *bar = strchr(tmp, '|');
		if (!bar)
			return 0;
		*bar = '\0';
		rest = bar + 1;
	}
	char *at = strrchr(ver, '@');
	if (!at || at == ver || !at[1])
		return 0;
	*at = '\0';
	char *end;
	unsigned long v = strtoul(at + 1, &end, 10);
	if (*end || v > UINT32_MAX)
		return 0;
	uint64_t seq;
	int r = dsp_version_seq(t, d, ver, (uint32_t)v, &seq);
	if (r < 0)
		return r;
	char vkey[DSP_KEY_MAX];
	r = dsp_key_vkey(vkey, sizeof vkey, seq, ver, (uint32_t)v);
	if (r < 0)
		return 0;
	int n = station ? snprintf(buf, size, "%s|%s", station, vkey)
		: rest	? snprintf(buf, size, "%s|%s", vkey, rest)
			: snprintf(buf, size, "%s", vkey);
	return n > 0 && (size_t)n < size && (size_t)n <= WF_STORE_MAX_KEY ? n : 0;
}

static void chunk_free(struct chunk *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->v[i].key);
		free(c->v[i].val);
	}
	c->n = 0;
}

/* Rewrites the old keys of table DBI (of SHAPE), adding how many to *N. */
static int rekey(struct wf_txn *t, const struct dsp_dbs *d, unsigned dbi, enum shape shape,
		 uint64_t *n)
{
	struct chunk *c = calloc(1, sizeof *c);
	char after[DSP_KEY_MAX] = "";
	int r = c ? 0 : -ENOMEM;
	while (r >= 0) {
		c->shape = shape;
		c->after = after;
		c->n = 0;
		c->oom = false;
		r = wf_store_foreach(t, dbi, *after ? after : NULL, strlen(after), chunk_cb, c);
		if (r >= 0 && c->oom)
			r = -ENOMEM;
		if (r < 0 || c->n == 0)
			break;
		for (size_t i = 0; r >= 0 && i < c->n; i++) {
			char key[DSP_KEY_MAX];
			int kl = new_key(t, d, shape, c->v[i].key, key, sizeof key);
			if (kl <= 0) {
				r = kl; /* 0: not ours, left as it is */
				continue;
			}
			r = wf_store_put(t, dbi, key, (size_t)kl, c->v[i].val, c->v[i].vlen, 0);
			if (r == 0)
				r = wf_store_del(t, dbi, c->v[i].key, strlen(c->v[i].key));
			(*n)++;
		}
		snprintf(after, sizeof after, "%s", c->v[c->n - 1].key);
		chunk_free(c);
	}
	if (c)
		chunk_free(c);
	free(c);
	return r < 0 ? r : 0;
}

/* d-warning's versions into d-wlog/d-wver (one already there stays). */
struct moved {
	struct entry v[CHUNK];
	size_t n;
	bool oom;
};

static int warning_cb(void *ud, const void *k, size_t kl, const void *val, size_t vl)
{
	struct moved *m = ud;
	struct entry *e = &m->v[m->n];
	e->key = kl < DSP_KEY_MAX && !memchr(k, '\0', kl) ? strndup(k, kl) : NULL;
	e->val = malloc(vl ? vl : 1);
	if (!e->val || (kl < DSP_KEY_MAX && !memchr(k, '\0', kl) && !e->key)) {
		free(e->key);
		free(e->val);
		m->oom = true;
		return 1;
	}
	if (!e->key) { /* not a key of ours: dropped with the table */
		free(e->val);
		return 0;
	}
	memcpy(e->val, val, vl);
	e->vlen = vl;
	return ++m->n == CHUNK ? 1 : 0;
}

static int move_warnings(struct wf_txn *t, const struct dsp_dbs *d, uint64_t *n)
{
	struct moved *m = calloc(1, sizeof *m);
	int r = m ? 0 : -ENOMEM;
	while (r >= 0) {
		m->n = 0;
		m->oom = false;
		r = wf_store_foreach(t, d->warning, NULL, 0, warning_cb, m);
		if (r >= 0 && m->oom)
			r = -ENOMEM;
		if (r < 0 || m->n == 0)
			break;
		for (size_t i = 0; r >= 0 && i < m->n; i++) {
			const char *key = m->v[i].key;
			const char *at = strrchr(key, '@');
			char id[DSP_KEY_MAX], *end;
			unsigned long v = at ? strtoul(at + 1, &end, 10) : 0;
			if (at && at > key && at[1] && !*end && v <= UINT32_MAX) {
				snprintf(id, sizeof id, "%.*s", (int)(at - key), key);
				uint64_t seq;
				r = dsp_version_seq(t, d, id, (uint32_t)v, &seq);
				if (r == 0 && seq == 0) /* not in d-wver yet */
					r = dsp_put_warning(t, d, id, (uint32_t)v, m->v[i].val,
							    m->v[i].vlen);
				(*n)++;
			}
			if (r >= 0)
				r = wf_store_del(t, d->warning, key, strlen(key));
		}
		for (size_t i = 0; i < m->n; i++) {
			free(m->v[i].key);
			free(m->v[i].val);
		}
	}
	free(m);
	return r < 0 ? r : 0;
}

/* Deletes the d-due entries of KIND (their keys are the old ones). */
struct due_keys {
	char kind;
	unsigned char (*v)[9 + DSP_KEY_MAX];
	size_t *len;
	size_t n, cap;
	bool oom;
};

static int due_cb(void *ud, const void *k, size_t kl, const void *val, size_t vl)
{
	struct due_keys *s = ud;
	(void)val;
	(void)vl;
	if (kl < 9 || kl > 9 + DSP_KEY_MAX || ((const char *)k)[8] != s->kind)
		return 0;
	if (s->n == s->cap) {
		size_t nc = s->cap ? 2 * s->cap : 256;
		void *nv = realloc(s->v, nc * sizeof *s->v);
		void *nl = nv ? realloc(s->len, nc * sizeof *s->len) : NULL;
		if (nv)
			s->v = nv;
		if (!nl) {
			s->oom = true;
			return 1;
		}
		s->len = nl;
		s->cap = nc;
	}
	memcpy(s->v[s->n], k, kl);
	s->len[s->n++] = kl;
	return 0;
}

static int drop_due(struct wf_txn *t, const struct dsp_dbs *d, char kind)
{
	struct due_keys s = { kind, NULL, NULL, 0, 0, false };
	int r = wf_store_foreach(t, d->due, NULL, 0, due_cb, &s);
	if (r >= 0 && s.oom)
		r = -ENOMEM;
	for (size_t i = 0; r >= 0 && i < s.n; i++)
		r = wf_store_del(t, d->due, s.v[i], s.len[i]);
	free(s.v);
	free(s.len);
	return r < 0 ? r : 0;
}

struct ctx {
	const struct dsp_dbs *d;
	int64_t retain_ms;
	uint64_t n;
};

static int layout_fn(struct wf_txn *t, void *ud)
{
	struct ctx *c = ud;
	const struct dsp_dbs *d = c->d;
	uint8_t ver = 0;
	c->n = 0;
	int r = wf_store_get_buf(t, d->meta, "layout", 6, &ver, 1, NULL);
	if (r == 0 && ver == LAYOUT)
		return 0;
	if (r == 0 && ver > LAYOUT)
		return -EPROTONOSUPPORT;
	if (r < 0 && r != -ENOENT && r != -EMSGSIZE)
		return r;
	r = move_warnings(t, d, &c->n);
	if (r == 0)
		r = rekey(t, d, d->review, SHAPE_VERSION, &c->n);
	if (r == 0)
		r = rekey(t, d, d->delivery, SHAPE_DELIVERY, &c->n);
	if (r == 0)
		r = rekey(t, d, d->duty, SHAPE_DUTY, &c->n);
	if (r == 0 && c->n > 0) {
		/* the review and duty deadlines and the pending list named the
		 * old keys: built again from the tables */
		uint64_t built = 0;
		r = wf_store_del_range(t, d->dpend, "\0", 1, "\xff", 1, NULL, NULL); /* all of it */
		if (r == 0)
			r = drop_due(t, d, DSP_DUE_REVIEW);
		if (r == 0)
			r = drop_due(t, d, DSP_DUE_DUTY);
		if (r == 0)
			r = dsp_index_build(t, d, DSP_DUE_REVIEW, c->retain_ms, &built);
		if (r == 0)
			r = dsp_index_build(t, d, DSP_DUE_DUTY, c->retain_ms, &built);
	}
	ver = LAYOUT;
	return r < 0 ? r : wf_store_put(t, d->meta, "layout", 6, &ver, 1, 0);
}

int dsp_layout_open(struct wf_store *s, const struct dsp_dbs *d, int64_t retain_ms, uint64_t *n)
{
	struct ctx c = { d, retain_ms, 0 };
	int r = wf_store_update(s, layout_fn, &c);
	if (n)
		*n = r < 0 ? 0 : c.n;
	return r;
}
