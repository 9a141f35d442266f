/* due: the deadline index of the dispatcher's timed records (see
 * dispatch-internal.h). Every record of d-current, d-review, d-duty and
 * d-followup that has something due (an active warning's expiry, a pending
 * review's timeout, a pending notice's ack deadline, the next 续报
 * reminder) has one d-due entry "<due u64 BE><kind><key>", so the timer
 * reads the first entries instead of scanning the tables: its cost follows
 * what is due, not the history kept. d-dpend lists the notices still
 * PENDING (the [duty] resend's list, with or without a deadline). */
#include "dispatch-internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "wf/log.h"

#define IDX_KEY_MAX (9 + DSP_KEY_MAX)

union any_rec {
	struct dsp_current c;
	struct dsp_review_rec r;
	struct dsp_duty d;
	struct dsp_followup f;
};

static unsigned table_of(const struct dsp_dbs *d, enum dsp_due_kind kind)
{
	switch (kind) {
	case DSP_DUE_EXPIRE: return d->current;
	case DSP_DUE_REVIEW: return d->review;
	case DSP_DUE_DUTY: return d->duty;
	default: return d->followup;
	}
}

static int64_t due_of(enum dsp_due_kind kind, const void *rec)
{
	const union any_rec *u = rec;
	switch (kind) {
	case DSP_DUE_EXPIRE:
		return u->c.active ? u->c.expires_ms : DSP_DUE_NONE;
	case DSP_DUE_REVIEW:
		return u->r.rv.state == WF__V1__REVIEW_STATE__REVIEW_PENDING &&
				       !u->r.rv.review_escalated && u->r.rv.review_deadline_ms != 0
			       ? u->r.rv.review_deadline_ms
			       : DSP_DUE_NONE;
	case DSP_DUE_DUTY:
		return u->d.state == DSP_DUTY_PENDING && u->d.deadline_ms != 0 ? u->d.deadline_ms
									     : DSP_DUE_NONE;
	default:
		return u->f.done ? DSP_DUE_NONE : u->f.next_ms;
	}
}

static bool pending_of(enum dsp_due_kind kind, const void *rec)
{
	return kind == DSP_DUE_DUTY && ((const struct dsp_duty *)rec)->state == DSP_DUTY_PENDING;
}

static int idx_key(unsigned char *buf, int64_t at, enum dsp_due_kind kind, const char *key)
{
	size_t kl = strlen(key);
	if (kl >= DSP_KEY_MAX)
		return -ENAMETOOLONG;
	wf_store_u64_to_key(at < 0 ? 0 : (uint64_t)at, buf);
	buf[8] = (unsigned char)kind;
	memcpy(buf + 9, key, kl);
	return (int)(9 + kl);
}

static int idx_set(struct wf_txn *t, const struct dsp_dbs *d, enum dsp_due_kind kind,
		   const char *key, int64_t old_due, int64_t new_due)
{
	unsigned char k[IDX_KEY_MAX];
	int r = 0;
	if (old_due == new_due)
		return 0;
	if (old_due != DSP_DUE_NONE) {
		int kl = idx_key(k, old_due, kind, key);
		r = kl < 0 ? kl : wf_store_del(t, d->due, k, (size_t)kl);
		if (r == -ENOENT)
			r = 0;
	}
	if (r == 0 && new_due != DSP_DUE_NONE) {
		int kl = idx_key(k, new_due, kind, key);
		r = kl < 0 ? kl : wf_store_put(t, d->due, k, (size_t)kl, "", 0, 0);
	}
	return r;
}

static int pend_set(struct wf_txn *t, const struct dsp_dbs *d, const char *key, bool was, bool is)
{
	if (was == is)
		return 0;
	if (is)
		return wf_store_put(t, d->dpend, key, strlen(key), "", 0, 0);
	int r = wf_store_del(t, d->dpend, key, strlen(key));
	return r == -ENOENT ? 0 : r;
}

int dsp_put_indexed_over(struct wf_txn *t, const struct dsp_dbs *d, enum dsp_due_kind kind,
			 const char *key, const void *rec, size_t size, const void *old)
{
	if (size > sizeof(union any_rec))
		return -EINVAL;
	int r = dsp_put_rec(t, table_of(d, kind), key, rec, size);
	if (r == 0)
		r = idx_set(t, d, kind, key, old ? due_of(kind, old) : DSP_DUE_NONE, due_of(kind, rec));
	if (r == 0)
		r = pend_set(t, d, key, old && pending_of(kind, old), pending_of(kind, rec));
	return r;
}

int dsp_put_indexed(struct wf_txn *t, const struct dsp_dbs *d, enum dsp_due_kind kind,
		    const char *key, const void *rec, size_t size)
{
	union any_rec old;
	if (size > sizeof old)
		return -EINVAL;
	int r = dsp_get_rec(t, table_of(d, kind), key, &old, size);
	if (r < 0 && r != -ENOENT && r != -EBADMSG)
		return r;
	return dsp_put_indexed_over(t, d, kind, key, rec, size, r == 0 ? &old : NULL);
}

int dsp_put_indexed_new(struct wf_txn *t, const struct dsp_dbs *d, enum dsp_due_kind kind,
			const char *key, const void *rec, size_t size)
{
	if (size > sizeof(union any_rec))
		return -EINVAL;
	int r = dsp_put_rec_flags(t, table_of(d, kind), key, rec, size, WF_STORE_PUT_NOOVERWRITE);
	if (r == -EEXIST)
		return dsp_put_indexed(t, d, kind, key, rec, size);
	if (r == 0)
		r = idx_set(t, d, kind, key, DSP_DUE_NONE, due_of(kind, rec));
	if (r == 0)
		r = pend_set(t, d, key, false, pending_of(kind, rec));
	return r;
}

int dsp_del_indexed(struct wf_txn *t, const struct dsp_dbs *d, enum dsp_due_kind kind,
		    const char *key, size_t size)
{
	union any_rec old;
	if (size > sizeof old)
		return -EINVAL;
	unsigned dbi = table_of(d, kind);
	int r = dsp_get_rec(t, dbi, key, &old, size);
	if (r == -ENOENT)
		return 0;
	bool had = r == 0;
	if (r < 0 && r != -EBADMSG)
		return r;
	r = wf_store_del(t, dbi, key, strlen(key));
	if (r == 0 && had)
		r = idx_set(t, d, kind, key, due_of(kind, &old), DSP_DUE_NONE);
	if (r == 0)
		r = pend_set(t, d, key, true, false);
	return r;
}

struct take {
	int64_t now;
	struct dsp_due_entry *v;
	size_t n, cap, max;
	bool oom;
};

static int take_cb(void *ud, const void *k, size_t kl, const void *val, size_t vl)
{
	struct take *s = ud;
	(void)val;
	(void)vl;
	if (kl < 9 || kl - 9 >= DSP_KEY_MAX)
		return 0; /* not ours: left alone */
	uint64_t at = wf_store_key_to_u64(k);
	if (at > (uint64_t)s->now || s->n == s->max)
		return 1;
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 32;
		void *nv = realloc(s->v, (nc < s->max ? nc : s->max) * sizeof *s->v);
		if (!nv) {
			s->oom = true;
			return 1;
		}
		s->v = nv;
		s->cap = nc < s->max ? nc : s->max;
	}
	struct dsp_due_entry *e = &s->v[s->n++];
	e->at = (int64_t)at;
	e->kind = ((const char *)k)[8];
	memcpy(e->key, (const char *)k + 9, kl - 9);
	e->key[kl - 9] = '\0';
	return 0;
}

int dsp_due_take(struct wf_txn *t, const struct dsp_dbs *d, int64_t now, size_t max,
		 struct dsp_due_entry **ret, size_t *n)
{
	struct take s = { now < 0 ? 0 : now, NULL, 0, 0, max, false };
	int r = wf_store_foreach(t, d->due, NULL, 0, take_cb, &s);
	if (r >= 0 && s.oom)
		r = -ENOMEM;
	for (size_t i = 0; r >= 0 && i < s.n; i++) {
		unsigned char k[IDX_KEY_MAX];
		int kl = idx_key(k, s.v[i].at, (enum dsp_due_kind)s.v[i].kind, s.v[i].key);
		r = kl < 0 ? kl : wf_store_del(t, d->due, k, (size_t)kl);
	}
	if (r < 0) {
		free(s.v);
		return r;
	}
	*ret = s.v;
	*n = s.n;
	return 0;
}

int dsp_due_first(struct wf_txn *t, const struct dsp_dbs *d, int64_t *ret)
{
	unsigned char k[IDX_KEY_MAX];
	size_t kl = 0;
	int r = wf_store_first_key(t, d->due, k, sizeof k, &kl);
	if (r == -ENOENT) {
		*ret = INT64_MAX;
		return 0;
	}
	if (r < 0)
		return r;
	uint64_t at = kl >= 8 ? wf_store_key_to_u64(k) : 0;
	*ret = at > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)at;
	return 0;
}

/* --- building the indexes of an older store, once --- */

struct build {
	struct wf_txn *t;
	const struct dsp_dbs *d;
	enum dsp_due_kind kind;
	size_t rec_size;
	int64_t retain_ms;
	uint64_t n;
};

static int build_cb(void *ud, const void *k, size_t kl, const void *val, size_t vl)
{
	struct build *b = ud;
	union any_rec rec;
	char key[DSP_KEY_MAX];
	if (kl >= sizeof key || dsp_rec_decode(val, vl, &rec, b->rec_size) < 0)
		return 0; /* not a record of this layout: nothing due */
	memcpy(key, k, kl);
	key[kl] = '\0';
	int r = idx_set(b->t, b->d, b->kind, key, DSP_DUE_NONE, due_of(b->kind, &rec));
	if (r == 0)
		r = pend_set(b->t, b->d, key, false, pending_of(b->kind, &rec));
	if (r == 0 && b->kind == DSP_DUE_EXPIRE && !rec.c.active)
		/* ended before retention existed: from its expiry (or cancel) time */
		r = dsp_retain_schedule(b->t, b->d, key,
					rec.c.expires_ms <= 0 ? b->retain_ms
					: rec.c.expires_ms > INT64_MAX - b->retain_ms
						? INT64_MAX
						: rec.c.expires_ms + b->retain_ms);
	b->n++;
	return r < 0 ? r : 0;
}

int dsp_index_build(struct wf_txn *t, const struct dsp_dbs *d, enum dsp_due_kind kind,
		    int64_t retain_ms, uint64_t *n)
{
	size_t size = kind == DSP_DUE_EXPIRE   ? sizeof(struct dsp_current)
		      : kind == DSP_DUE_REVIEW ? sizeof(struct dsp_review_rec)
		      : kind == DSP_DUE_DUTY   ? sizeof(struct dsp_duty)
					       : sizeof(struct dsp_followup);
	struct build b = { t, d, kind, size, retain_ms, 0 };
	int r = wf_store_foreach(t, table_of(d, kind), NULL, 0, build_cb, &b);
	*n += b.n;
	return r < 0 ? r : 0;
}

/* The d-due keys of one kind, copied (deleted after the scan). */
struct kind_keys {
	char kind;
	unsigned char (*v)[IDX_KEY_MAX];
	size_t *len;
	size_t n, cap;
	bool oom;
};

static int kind_cb(void *ud, const void *k, size_t kl, const void *val, size_t vl)
{
	struct kind_keys *s = ud;
	(void)val;
	(void)vl;
	if (kl < 9 || kl > IDX_KEY_MAX || ((const char *)k)[8] != s->kind)
		return 0;
	if (s->n == s->cap) {
		size_t nc = s->cap ? 2 * s->cap : 256;
		void *nv = realloc(s->v, nc * sizeof *s->v);
		if (nv)
			s->v = nv;
		void *nl = nv ? realloc(s->len, nc * sizeof *s->len) : NULL;
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

int dsp_index_rebuild(struct wf_txn *t, const struct dsp_dbs *d, enum dsp_due_kind kind,
		      int64_t retain_ms)
{
	struct kind_keys s = { (char)kind, NULL, NULL, 0, 0, false };
	int r = wf_store_foreach(t, d->due, NULL, 0, kind_cb, &s);
	if (r >= 0 && s.oom)
		r = -ENOMEM;
	for (size_t i = 0; r >= 0 && i < s.n; i++)
		r = wf_store_del(t, d->due, s.v[i], s.len[i]);
	free(s.v);
	free(s.len);
	if (r >= 0 && kind == DSP_DUE_DUTY) /* the pending list: all of it */
		r = wf_store_del_range(t, d->dpend, "\0", 1, "\xff", 1, NULL, NULL);
	uint64_t n = 0;
	return r < 0 ? r : dsp_index_build(t, d, kind, retain_ms, &n);
}

struct open_ctx {
	const struct dsp_dbs *d;
	int64_t retain_ms;
	uint64_t n;
	bool built;
};

static int index_fn(struct wf_txn *t, void *ud)
{
	struct open_ctx *c = ud;
	uint8_t ver = 0;
	c->n = 0;
	c->built = false;
	int r = wf_store_get_buf(t, c->d->meta, "index", 5, &ver, 1, NULL);
	if (r == 0 && ver == 1)
		return 0;
	if (r < 0 && r != -ENOENT && r != -EMSGSIZE)
		return r;
	static const enum dsp_due_kind kinds[] = { DSP_DUE_EXPIRE, DSP_DUE_REVIEW, DSP_DUE_DUTY,
						   DSP_DUE_FOLLOWUP };
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		r = dsp_index_build(t, c->d, kinds[i], c->retain_ms, &c->n);
		if (r < 0)
			return r;
	}
	ver = 1;
	c->built = true;
	return wf_store_put(t, c->d->meta, "index", 5, &ver, 1, 0);
}

int dsp_index_open(struct wf_store *s, const struct dsp_dbs *d, int64_t retain_ms)
{
	struct open_ctx c = { d, retain_ms, 0, false };
	int r = wf_store_update(s, index_fn, &c);
	if (r < 0)
		return r;
	if (c.built && c.n > 0)
		wf_log(LOG_NOTICE, "store", "indexed %llu records of a store without the deadline "
					    "and retention indexes (once)", (unsigned long long)c.n);
	return 0;
}
