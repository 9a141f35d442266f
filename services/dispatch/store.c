/* store: the dispatcher's LMDB state (see store.h). */
#include "store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"
#include "wf/codec.h"

int dsp_store_open(struct wf_store *s, struct dsp_dbs *d)
{
	static const char *const names[] = { "d-warning", "d-current", "d-review", "d-delivery",
					      "d-duty", "d-followup", "d-bcast", "d-silence",
					      "d-silmeta", "d-audit", "d-verdict", "d-cancel", "d-stats",
					      "d-due", "d-dpend", "d-purge", "d-purgeq", "d-meta",
					      "d-relq", "d-wver", "d-wlog" };
	unsigned *slots[] = { &d->warning, &d->current, &d->review, &d->delivery,
			      &d->duty, &d->followup, &d->bcast, &d->silence,
			      &d->silmeta, &d->audit, &d->verdict, &d->cancel, &d->stats,
			      &d->due, &d->dpend, &d->purge, &d->purgeq, &d->meta,
			      &d->relq, &d->wver, &d->wlog };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		int r = wf_store_dbi(s, names[i], 0, slots[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

static const char *const state_names[DSP_DLV_STATE_MAX] = {
	[DSP_DLV_SENT] = "sent",
	[DSP_DLV_ACKED] = "acked",
	[DSP_DLV_ACKED_LATE] = "acked_late",
	[DSP_DLV_MISSED] = "missed",
	[DSP_DLV_MISSED_TOP] = "missed_top",
	[DSP_DLV_ESCALATED] = "escalated",
	[DSP_DLV_SILENCED] = "silenced",
	[DSP_DLV_BLOCKED] = "blocked",
	[DSP_DLV_NOT_CONFIGURED] = "not_configured",
	[DSP_DLV_SUPERSEDED] = "superseded",
	[DSP_DLV_REVIEW_TIMEOUT] = "review_timeout",
	[DSP_DLV_APPROVED] = "approved",
	[DSP_DLV_REFUSED] = "refused",
	[DSP_DLV_REJECTED] = "rejected",
	[DSP_DLV_FOLLOWUP] = "followup",
	[DSP_DLV_REMINDED] = "reminded",
	[DSP_DLV_SKIPPED] = "skipped",
	[DSP_DLV_CANCELLED] = "cancelled",
	[DSP_DLV_LEFT_OUT] = "left_out",
};

const char *dsp_delivery_state_to_string(enum dsp_delivery_state s)
{
	if ((int)s < 0 || s >= DSP_DLV_STATE_MAX)
		return NULL;
	return state_names[s];
}

/* Keys are built by hand, not by snprintf: several per version. */
struct kbuf {
	char *buf;
	size_t size, n;
	bool ok;
};

static void kput(struct kbuf *k, const char *s)
{
	size_t l = strlen(s);
	if (!k->ok || k->n + l >= k->size) {
		k->ok = false;
		return;
	}
	memcpy(k->buf + k->n, s, l + 1);
	k->n += l;
}

static void kput_u32(struct kbuf *k, uint32_t v)
{
	char tmp[11];
	size_t i = sizeof tmp - 1;
	tmp[i] = '\0';
	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	kput(k, tmp + i);
}

static void kput_i64(struct kbuf *k, int64_t v)
{
	char tmp[24];
	size_t i = sizeof tmp - 1;
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	tmp[i] = '\0';
	do {
		tmp[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		tmp[--i] = '-';
	kput(k, tmp + i);
}

static int kdone(const struct kbuf *k)
{
	return k->ok && k->n <= WF_STORE_MAX_KEY ? (int)k->n : -ENAMETOOLONG;
}

int dsp_key_version(char *buf, size_t size, const char *id, uint32_t version)
{
	struct kbuf k = { buf, size, 0, size > 0 };
	kput(&k, id);
	kput(&k, "@");
	kput_u32(&k, version);
	return kdone(&k);
}

static void kput_seq(struct kbuf *k, uint64_t seq)
{
	static const char hex[] = "0123456789abcdef";
	char tmp[DSP_SEQ_HEX + 2];
	for (int i = DSP_SEQ_HEX - 1; i >= 0; i--, seq >>= 4)
		tmp[i] = hex[seq & 15];
	tmp[DSP_SEQ_HEX] = ':';
	tmp[DSP_SEQ_HEX + 1] = '\0';
	kput(k, tmp);
}

static void kput_vkey(struct kbuf *k, uint64_t seq, const char *id, uint32_t version)
{
	kput_seq(k, seq);
	kput(k, id);
	kput(k, "@");
	kput_u32(k, version);
}

int dsp_key_vkey(char *buf, size_t size, uint64_t seq, const char *id, uint32_t version)
{
	struct kbuf k = { buf, size, 0, size > 0 };
	kput_vkey(&k, seq, id, version);
	return kdone(&k);
}

int dsp_key_vprefix(char *buf, size_t size, uint64_t seq, const char *id)
{
	struct kbuf k = { buf, size, 0, size > 0 };
	kput_seq(&k, seq);
	kput(&k, id);
	kput(&k, "@");
	return kdone(&k);
}

const char *dsp_key_skip_seq(const char *key)
{
	for (int i = 0; i < DSP_SEQ_HEX; i++)
		if (!((key[i] >= '0' && key[i] <= '9') || (key[i] >= 'a' && key[i] <= 'f')))
			return key;
	return key[DSP_SEQ_HEX] == ':' ? key + DSP_SEQ_HEX + 1 : key;
}

static int wlog_hook(struct wf_txn *t, void *ud, bool commit);

/* D's cache, bound to write transaction T (NULL: none, e.g. T reads). */
static struct dsp_wlog_cache *cache_for(struct wf_txn *t, const struct dsp_dbs *d)
{
	struct dsp_wlog_cache *c = d->wlog_cache;
	if (!c || !wf_store_txn_writable(t))
		return NULL;
	if (c->t == t)
		return c;
	if (wf_store_txn_hook(t, wlog_hook, c) < 0)
		return NULL; /* no room for the hook: go without */
	c->t = t;
	c->have_next = c->have_last = false;
	return c;
}

static void cache_last(struct dsp_wlog_cache *c, const char *id, uint32_t version, uint64_t seq)
{
	size_t l = strlen(id);
	if (!c || l >= sizeof c->last_id)
		return;
	memcpy(c->last_id, id, l + 1);
	c->last_version = version;
	c->last_seq = seq;
	c->have_last = true;
}

int dsp_version_seq(struct wf_txn *t, const struct dsp_dbs *d, const char *id, uint32_t version,
		    uint64_t *ret)
{
	struct dsp_wlog_cache *c = cache_for(t, d);
	if (c && c->have_last && c->last_version == version && strcmp(c->last_id, id) == 0) {
		*ret = c->last_seq;
		return 0;
	}
	char key[DSP_KEY_MAX];
	unsigned char seq[8];
	size_t len = 0;
	int r = dsp_key_version(key, sizeof key, id, version);
	if (r < 0)
		return r;
	r = wf_store_get_buf(t, d->wver, key, (size_t)r, seq, sizeof seq, &len);
	if (r == -ENOENT || (r == 0 && len != sizeof seq) || r == -EMSGSIZE)
		*ret = 0; /* not stored (or not a sequence number): the shared prefix */
	else if (r < 0)
		return r;
	else
		*ret = wf_store_key_to_u64(seq);
	cache_last(c, id, version, *ret);
	return 0;
}

int dsp_key_review(struct wf_txn *t, const struct dsp_dbs *d, char *buf, size_t size,
		   const char *id, uint32_t version)
{
	uint64_t seq;
	int r = dsp_version_seq(t, d, id, version, &seq);
	return r < 0 ? r : dsp_key_vkey(buf, size, seq, id, version);
}

int dsp_key_delivery(struct wf_txn *t, const struct dsp_dbs *d, char *buf, size_t size,
		     const char *id, uint32_t version, const char *channel, const char *target)
{
	uint64_t seq;
	int r = dsp_version_seq(t, d, id, version, &seq);
	if (r < 0)
		return r;
	struct kbuf k = { buf, size, 0, size > 0 };
	kput_vkey(&k, seq, id, version);
	kput(&k, "|");
	kput(&k, channel);
	kput(&k, "|");
	kput(&k, target);
	return kdone(&k);
}

int dsp_key_duty(struct wf_txn *t, const struct dsp_dbs *d, char *buf, size_t size,
		 const char *station, const char *id, uint32_t version)
{
	uint64_t seq;
	int r = dsp_version_seq(t, d, id, version, &seq);
	if (r < 0)
		return r;
	struct kbuf k = { buf, size, 0, size > 0 };
	kput(&k, station);
	kput(&k, "|");
	kput_vkey(&k, seq, id, version);
	return kdone(&k);
}

int dsp_key_notice(char *buf, size_t size, const char *station, const char *id, uint32_t version,
		   int kind, int64_t deadline, int msg_type)
{
	struct kbuf k = { buf, size, 0, size > 0 };
	kput(&k, "notice|");
	kput(&k, station);
	kput(&k, "|");
	kput(&k, id);
	kput(&k, "@");
	kput_u32(&k, version);
	kput(&k, "|");
	kput_i64(&k, kind);
	kput(&k, "|");
	kput_i64(&k, deadline);
	kput(&k, "|");
	kput_i64(&k, msg_type);
	return k.ok ? (int)k.n : -ENAMETOOLONG;
}

int dsp_key_followup(char *buf, size_t size, const char *station, const char *id)
{
	struct kbuf k = { buf, size, 0, size > 0 };
	kput(&k, station);
	kput(&k, "|");
	kput(&k, id);
	return kdone(&k);
}

/* Compact records: a fixed record is mostly zeros (empty names, reasons,
 * approvers), so it is stored as DSP_REC_COMPACT and runs: a token byte
 * 0x00..0x7f is followed by that many plus one literal bytes, a token
 * 0x80..0xff stands for (token - 0x7f) zero bytes. A record of about 160
 * bytes takes about 30, so a table takes a fifth of the pages and a commit
 * (whose updates land all over the tree) writes that much less. Records
 * written before (the struct itself, DSP_REC_RAW_VERSION first) are read
 * as they are. */
#define DSP_REC_COMPACT 0xC1
#define DSP_REC_RAW_VERSION 1
#define DSP_REC_MAX 4096 /* the largest fixed record (struct dsp_stats ~2.7 KiB) */

size_t dsp_rec_encode(const void *rec, size_t size, uint8_t *out)
{
	const uint8_t *p = rec;
	size_t i = 0, o = 0;
	out[o++] = DSP_REC_COMPACT;
	while (i < size) {
		size_t z = 0;
		while (i + z < size && p[i + z] == 0 && z < 128)
			z++;
		if (z > 0) {
			out[o++] = (uint8_t)(0x7f + z);
			i += z;
			continue;
		}
		size_t l = 0;
		/* a single zero between literals costs a token either way */
		while (i + l < size && l < 128 && (p[i + l] != 0 || (i + l + 1 < size &&
						p[i + l + 1] != 0 && l + 1 < 128)))
			l++;
		out[o++] = (uint8_t)(l - 1);
		memcpy(out + o, p + i, l);
		o += l;
		i += l;
	}
	return o;
}

int dsp_rec_decode(const void *val, size_t len, void *rec, size_t size)
{
	const uint8_t *v = val;
	uint8_t *out = rec;
	if (len == size && len > 0 && v[0] == DSP_REC_RAW_VERSION) {
		memcpy(rec, val, size); /* a record written before compaction */
		return 0;
	}
	if (len < 1 || v[0] != DSP_REC_COMPACT)
		return -EBADMSG;
	size_t i = 1, o = 0;
	while (i < len) {
		uint8_t tok = v[i++];
		if (tok >= 0x80) {
			size_t z = (size_t)tok - 0x7f;
			if (o + z > size)
				return -EBADMSG;
			memset(out + o, 0, z);
			o += z;
		} else {
			size_t l = (size_t)tok + 1;
			if (l > len - i || o + l > size)
				return -EBADMSG;
			memcpy(out + o, v + i, l);
			o += l;
			i += l;
		}
	}
	/* the whole record, of this layout version */
	return o == size && out[0] == DSP_REC_RAW_VERSION ? 0 : -EBADMSG;
}

int dsp_get_rec(struct wf_txn *t, unsigned dbi, const char *key, void *rec, size_t size)
{
	uint8_t buf[DSP_REC_ENCODED_MAX(DSP_REC_MAX)];
	size_t len = 0;
	if (size > DSP_REC_MAX)
		return -EINVAL;
	int r = wf_store_get_buf(t, dbi, key, strlen(key), buf, sizeof buf, &len);
	if (r == -EMSGSIZE)
		return -EBADMSG;
	return r < 0 ? r : dsp_rec_decode(buf, len, rec, size);
}

int dsp_put_rec_flags(struct wf_txn *t, unsigned dbi, const char *key, const void *rec,
		      size_t size, unsigned flags)
{
	uint8_t buf[DSP_REC_ENCODED_MAX(DSP_REC_MAX)];
	if (size > DSP_REC_MAX)
		return -EINVAL;
	size_t len = dsp_rec_encode(rec, size, buf);
	return wf_store_put(t, dbi, key, strlen(key), buf, len, flags);
}

int dsp_put_rec(struct wf_txn *t, unsigned dbi, const char *key, const void *rec, size_t size)
{
	return dsp_put_rec_flags(t, dbi, key, rec, size, 0);
}

int dsp_record(struct wf_txn *t, const struct dsp_dbs *d, const char *id, uint32_t version,
	       const char *channel, const char *target, enum dsp_delivery_state state,
	       int64_t at_ms, const char *fmt, ...)
{
	char key[DSP_KEY_MAX];
	struct dsp_delivery rec;
	int r = dsp_key_delivery(t, d, key, sizeof key, id, version, channel, target);
	if (r < 0)
		return r;
	memset(&rec, 0, sizeof rec);
	rec.rec_version = 1;
	rec.state = (uint8_t)state;
	rec.at_ms = at_ms;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rec.detail, sizeof rec.detail, fmt, ap);
	va_end(ap);
	r = dsp_put_rec(t, d->delivery, key, &rec, sizeof rec);
	return r < 0 ? r : dsp_stats_count(t, d, channel, (unsigned)state, at_ms);
}

/* --- warning versions: d-wlog, in arrival order, found through d-wver ---
 *
 * Versions arrive interleaved across warnings, so a table keyed by
 * <id>@<version> takes each batch's versions all over its tree: a commit
 * rewrote most of its pages. Appended by arrival (d-wlog, MDB_APPEND) they
 * fill the last pages only, and the lookup table d-wver (<id>@<version> ->
 * u64 sequence) is a tenth of the size. Versions stored by earlier releases
 * in d-warning are moved here at the first start (layout.c). */

static int wlog_hook(struct wf_txn *t, void *ud, bool commit)
{
	(void)t;
	(void)commit;
	((struct dsp_wlog_cache *)ud)->t = NULL;
	return 0;
}

/* The sequence number of the next version appended in T: after the last
 * one stored (a purged last one's number may be used again: nothing
 * points at it any more). */
static int wlog_next(struct wf_txn *t, const struct dsp_dbs *d, uint64_t *ret)
{
	struct dsp_wlog_cache *c = cache_for(t, d);
	if (c && c->have_next) {
		*ret = c->next++;
		return 0;
	}
	unsigned char k[8];
	size_t kl = 0;
	uint64_t next = 1;
	int r = wf_store_last_key(t, d->wlog, k, sizeof k, &kl);
	if (r == 0 && kl == sizeof k)
		next = wf_store_key_to_u64(k) + 1;
	else if (r < 0 && r != -ENOENT)
		return r == -EMSGSIZE ? -EBADMSG : r;
	if (c) {
		c->have_next = true;
		c->next = next + 1;
	}
	*ret = next;
	return 0;
}

int dsp_put_warning(struct wf_txn *t, const struct dsp_dbs *d, const char *id, uint32_t version,
		    const void *buf, size_t len)
{
	char key[DSP_KEY_MAX];
	unsigned char seq[8], old[8];
	uint64_t n;
	size_t ol = 0;
	int kl = dsp_key_version(key, sizeof key, id, version);
	if (kl < 0)
		return kl;
	int r = wlog_next(t, d, &n);
	if (r < 0)
		return r;
	wf_store_u64_to_key(n, seq);
	r = wf_store_put(t, d->wver, key, (size_t)kl, seq, sizeof seq, WF_STORE_PUT_NOOVERWRITE);
	if (r == -EEXIST) {
		r = wf_store_get_buf(t, d->wver, key, (size_t)kl, old, sizeof old, &ol);
		if (r == 0 && ol == sizeof old) {
			/* stored before: the new copy replaces it under the same
			 * number, which the version's records are keyed by (N
			 * stays unused) */
			r = wf_store_put(t, d->wlog, old, sizeof old, buf, len, 0);
			if (r == 0)
				cache_last(cache_for(t, d), id, version, wf_store_key_to_u64(old));
			return r;
		}
		if (r == 0 || r == -EMSGSIZE) /* not a sequence number: replaced */
			r = wf_store_put(t, d->wver, key, (size_t)kl, seq, sizeof seq, 0);
	}
	if (r == 0)
		r = wf_store_put(t, d->wlog, seq, sizeof seq, buf, len, WF_STORE_PUT_APPEND);
	if (r == 0)
		cache_last(cache_for(t, d), id, version, n);
	return r;
}

static int unpack_stored(void *buf, size_t len, Wf__V1__Warning **ret)
{
	Wf__V1__Warning *w = wf__v1__warning__unpack(NULL, len, buf);
	free(buf);
	if (!w)
		return -EBADMSG;
	*ret = w;
	return 0;
}

int dsp_get_warning_seq(struct wf_txn *t, const struct dsp_dbs *d, uint64_t seq,
			Wf__V1__Warning **ret)
{
	unsigned char k[8];
	void *buf = NULL;
	size_t len = 0;
	wf_store_u64_to_key(seq, k);
	int r = seq == 0 ? -ENOENT : wf_store_get(t, d->wlog, k, sizeof k, &buf, &len);
	return r < 0 ? r : unpack_stored(buf, len, ret);
}

int dsp_get_warning(struct wf_txn *t, const struct dsp_dbs *d, const char *id, uint32_t version,
		    Wf__V1__Warning **ret)
{
	uint64_t seq;
	int r = dsp_version_seq(t, d, id, version, &seq);
	return r < 0 ? r : dsp_get_warning_seq(t, d, seq, ret);
}

struct seqs {
	const char *prefix;
	size_t plen, n, cap;
	unsigned char (*v)[8];
	bool oom;
};

static int seq_cb(void *ud, const void *k, size_t kl, const void *val, size_t vl)
{
	struct seqs *s = ud;
	if (kl < s->plen || memcmp(k, s->prefix, s->plen) != 0)
		return 1; /* past the warning's versions */
	if (vl != 8)
		return 0;
	if (s->n == s->cap) {
		size_t nc = s->cap ? 2 * s->cap : 16;
		void *nv = realloc(s->v, nc * sizeof *s->v);
		if (!nv) {
			s->oom = true;
			return 1;
		}
		s->v = nv;
		s->cap = nc;
	}
	memcpy(s->v[s->n++], val, 8);
	return 0;
}

int dsp_del_prefix(struct wf_txn *t, unsigned dbi, const char *prefix, uint64_t *n)
{
	char hi[DSP_KEY_MAX + 1];
	uint64_t k = 0;
	size_t plen = strlen(prefix);
	if (plen + 1 > sizeof hi)
		return -ENAMETOOLONG;
	memcpy(hi, prefix, plen);
	hi[plen] = '\xff';
	int r = wf_store_del_range(t, dbi, prefix, plen, hi, plen + 1, &k, NULL);
	*n += k;
	return r;
}

int dsp_version_prefixes(struct wf_txn *t, const struct dsp_dbs *d, const char *id,
			 char (**ret)[DSP_KEY_MAX], size_t *n)
{
	char prefix[DSP_KEY_MAX];
	struct kbuf k = { prefix, sizeof prefix, 0, true };
	kput(&k, id);
	kput(&k, "@");
	int r = kdone(&k);
	if (r < 0)
		return r;
	struct seqs s = { prefix, (size_t)r, 0, 0, NULL, false };
	r = wf_store_foreach(t, d->wver, prefix, s.plen, seq_cb, &s);
	if (r >= 0 && s.oom)
		r = -ENOMEM;
	char(*v)[DSP_KEY_MAX] = r >= 0 ? calloc(s.n + 1, sizeof *v) : NULL;
	if (r >= 0 && !v)
		r = -ENOMEM;
	for (size_t i = 0; r >= 0 && i <= s.n; i++)
		r = dsp_key_vprefix(v[i], sizeof v[i], i < s.n ? wf_store_key_to_u64(s.v[i]) : 0, id);
	free(s.v);
	if (r < 0) {
		free(v);
		return r;
	}
	*ret = v;
	*n = s.n + 1;
	return 0;
}

int dsp_del_warnings(struct wf_txn *t, const struct dsp_dbs *d, const char *prefix, uint64_t *n)
{
	struct seqs s = { prefix, strlen(prefix), 0, 0, NULL, false };
	struct dsp_wlog_cache *c = cache_for(t, d);
	if (c)
		c->have_last = false; /* it may be one of these */
	int r = wf_store_foreach(t, d->wver, prefix, s.plen, seq_cb, &s);
	if (r >= 0 && s.oom)
		r = -ENOMEM;
	for (size_t i = 0; r >= 0 && i < s.n; i++) {
		r = wf_store_del(t, d->wlog, s.v[i], sizeof s.v[i]);
		if (r == -ENOENT)
			r = 0;
	}
	free(s.v);
	if (r >= 0)
		r = dsp_del_prefix(t, d->wver, prefix, n);
	return r < 0 ? r : 0;
}
