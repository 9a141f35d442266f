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
	SHAPE_WARNING,  /* "<id>@<ver>" (d-warning: the versions, moved to d-wlog) */
	SHAPE_VERSION,  /* "<id>@<ver>" (d-review) */
	SHAPE_DELIVERY, /* "<id>@<ver>|<ch>|<target>" (d-delivery) */
	SHAPE_DUTY,     /* "<station>|<id>@<ver>" (d-duty) */
};

struct entry {
	char *key;
	void *val;
	size_t vlen;
};

/* The next keys of a table still to convert, copied (the table changes
 * under them). */
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
	if (shape == SHAPE_WARNING)
		return false; /* the whole table goes */
	const char *v = version_part(shape, key);
	return v == NULL || dsp_key_skip_seq(v) != v;
}

/* Splits "<id>@<ver>" (S, in place) at its last '@': the id stays in S,
 * *VER the version. False when S is not of that form. */
static bool split_version(char *s, uint32_t *ver)
{
	char *at = strrchr(s, '@'), *end;
	if (!at || at == s || !at[1])
		return false;
	unsigned long v = strtoul(at + 1, &end, 10);
	if (*end || v > UINT32_MAX)
		return false;
	*at = '\0';
	*ver = (uint32_t)v;
	return true;
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
	char *station = NULL, *id = tmp, *rest = NULL;
	char *bar = shape == SHAPE_VERSION ? NULL : strchr(tmp, '|');
	if (shape != SHAPE_VERSION && !bar)
		return 0;
	if (shape == SHAPE_DUTY) {
		*bar = '\0';
		station = tmp;
		id = bar + 1;
	} else if (shape == SHAPE_DELIVERY) {
		*bar = '\0';
		rest = bar + 1;
	}
	uint32_t ver;
	uint64_t seq;
	if (!split_version(id, &ver))
		return 0;
	int r = dsp_version_seq(t, d, id, ver, &seq);
	if (r < 0)
		return r;
	char vkey[DSP_KEY_MAX];
	if (dsp_key_vkey(vkey, sizeof vkey, seq, id, ver) < 0)
		return 0;
	int n = station ? snprintf(buf, size, "%s|%s", station, vkey)
		: rest	? snprintf(buf, size, "%s|%s", vkey, rest)
			: snprintf(buf, size, "%s", vkey);
	return n > 0 && (size_t)n < size && (size_t)n <= WF_STORE_MAX_KEY ? n : 0;
}

/* One old entry E of table DBI (of SHAPE): a version moved to d-wlog (one
 * already in d-wver stays as it is), a record put under its new key; the
 * old key goes. One not of ours is left alone. */
static int convert_one(struct wf_txn *t, const struct dsp_dbs *d, unsigned dbi,
		       enum shape shape, const struct entry *e, uint64_t *n)
{
	int r;
	if (shape == SHAPE_WARNING) {
		char id[DSP_KEY_MAX];
		uint32_t ver;
		uint64_t seq;
		snprintf(id, sizeof id, "%s", e->key);
		r = 0;
		if (split_version(id, &ver)) {
			r = dsp_version_seq(t, d, id, ver, &seq);
			if (r == 0 && seq == 0)
				r = dsp_put_warning(t, d, id, ver, e->val, e->vlen);
			(*n)++;
		}
		/* (one not of that form goes too: nothing reads it) */
		return r < 0 ? r : wf_store_del(t, dbi, e->key, strlen(e->key));
	}
	char key[DSP_KEY_MAX];
	int kl = new_key(t, d, shape, e->key, key, sizeof key);
	if (kl <= 0)
		return kl; /* 0: not ours, left as it is */
	r = wf_store_put(t, dbi, key, (size_t)kl, e->val, e->vlen, 0);
	if (r == 0)
		r = wf_store_del(t, dbi, e->key, strlen(e->key));
	(*n)++;
	return r;
}

static void chunk_free(struct chunk *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->v[i].key);
		free(c->v[i].val);
	}
	c->n = 0;
}

/* Converts the old entries of table DBI (of SHAPE), a chunk at a time,
 * adding how many to *N. */
static int convert(struct wf_txn *t, const struct dsp_dbs *d, unsigned dbi, enum shape shape,
		   uint64_t *n)
{
	struct chunk *c = calloc(1, sizeof *c);
	char after[DSP_KEY_MAX] = "";
	int r = c ? 0 : -ENOMEM;
	while (r >= 0) {
		c->shape = shape;
		c->after = after;
		c->oom = false;
		r = wf_store_foreach(t, dbi, *after ? after : NULL, strlen(after), chunk_cb, c);
		if (r >= 0 && c->oom)
			r = -ENOMEM;
		if (r < 0 || c->n == 0)
			break;
		for (size_t i = 0; r >= 0 && i < c->n; i++)
			r = convert_one(t, d, dbi, shape, &c->v[i], n);
		snprintf(after, sizeof after, "%s", c->v[c->n - 1].key);
		chunk_free(c);
	}
	if (c)
		chunk_free(c);
	free(c);
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
	/* the versions first: the records' keys take their numbers */
	r = convert(t, d, d->warning, SHAPE_WARNING, &c->n);
	if (r == 0)
		r = convert(t, d, d->review, SHAPE_VERSION, &c->n);
	if (r == 0)
		r = convert(t, d, d->delivery, SHAPE_DELIVERY, &c->n);
	if (r == 0)
		r = convert(t, d, d->duty, SHAPE_DUTY, &c->n);
	/* the review and duty deadlines and the pending list named the old
	 * keys: built again from the tables */
	if (r == 0 && c->n > 0)
		r = dsp_index_rebuild(t, d, DSP_DUE_REVIEW, c->retain_ms);
	if (r == 0 && c->n > 0)
		r = dsp_index_rebuild(t, d, DSP_DUE_DUTY, c->retain_ms);
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
