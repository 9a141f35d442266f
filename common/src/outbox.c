/* outbox: see wf/outbox.h and docs/delivery.md
 *
 * Storage (in the caller's store):
 *   "outbox:<producer>"  key: seq (u64 big-endian)
 *                        value: put_ms (i64 BE) | topic_len (u16 BE) | topic | payload
 *   "outbox-meta"        key: producer id
 *                        value: last_seq (u64 BE) | bytes (u64 BE)
 *
 * In memory: `sent`, the entries this process has published and not yet
 * seen acknowledged, sorted by seq, with their last send time; and
 * `sent_upto`, the highest seq published by this process (everything
 * above it in the DB has never been sent by this process). */
#include "wf/outbox.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "wf/dedupe.h"

#define DEFAULT_RESEND_MS   5000
#define DEFAULT_MAX_ENTRIES 100000u
#define DEFAULT_MAX_BYTES   ((uint64_t)64 << 20)
#define DEFAULT_MAX_PAYLOAD ((size_t)256 << 10)
#define DEFAULT_PER_FLUSH   1000u
#define BATCH_ENTRIES       64u
#define BATCH_BYTES         ((size_t)1 << 20)
#define ENTRY_HDR           10u   /* put_ms + topic_len */
#define META_NAME           "outbox-meta"
#define DB_PREFIX           "outbox:"

struct sent {
	uint64_t seq;
	int64_t last_ms; /* INT64_MIN: due now */
};

struct item {
	uint64_t seq;
	size_t topic_off;
	size_t payload_off;
	size_t len;
	bool gone;
};

struct meta {
	uint64_t last_seq;
	uint64_t bytes;
};

struct wf_outbox {
	struct wf_store *s;
	char *producer;
	size_t producer_len;
	unsigned entries_dbi;
	unsigned meta_dbi;
	struct wf_outbox_options o;

	/* the meta record during write transaction mc_t: read once, written
	 * once by a pre-commit hook (meta_hook) instead of at each entry */
	struct wf_txn *mc_t;
	struct meta mc;
	bool mc_dirty, mc_checked;

	struct sent *sent;
	size_t n_sent, cap_sent;
	uint64_t sent_upto;
	int64_t scan_at; /* earliest time a resend can be due */

	/* flush batch: copies of entries, published after the txn ended */
	struct item items[BATCH_ENTRIES];
	size_t n_items;
	char *arena;
	size_t arena_len, arena_cap;
};

static int64_t now_ms(const struct wf_outbox *o)
{
	return wf_clock_now_ms(o->o.clock);
}

static void put_u64(unsigned char *p, uint64_t v)
{
	wf_store_u64_to_key(v, p);
}

static uint64_t get_u64(const unsigned char *p)
{
	return wf_store_key_to_u64(p);
}

int wf_outbox_open(struct wf_store *s, const char *producer_id,
		   const struct wf_outbox_options *o, struct wf_outbox **ret)
{
	struct wf_outbox *ob = NULL;
	char name[sizeof DB_PREFIX + WF_PRODUCER_MAX];
	int r;

	if (!s || !o || !ret || !o->publish || !wf_dedupe_producer_valid(producer_id))
		return -EINVAL;
	if (o->resend_ms < 0 || o->max_payload > WF_OUTBOX_MAX_PAYLOAD)
		return -EINVAL;
	ob = calloc(1, sizeof *ob);
	if (!ob)
		return -ENOMEM;
	ob->s = s;
	ob->o = *o;
	if (!ob->o.resend_ms)
		ob->o.resend_ms = DEFAULT_RESEND_MS;
	if (!ob->o.max_entries)
		ob->o.max_entries = DEFAULT_MAX_ENTRIES;
	if (!ob->o.max_bytes)
		ob->o.max_bytes = DEFAULT_MAX_BYTES;
	if (!ob->o.max_payload)
		ob->o.max_payload = DEFAULT_MAX_PAYLOAD;
	if (!ob->o.max_per_flush)
		ob->o.max_per_flush = DEFAULT_PER_FLUSH;
	ob->producer = strdup(producer_id);
	if (!ob->producer) {
		r = -ENOMEM;
		goto fail;
	}
	ob->producer_len = strlen(producer_id);
	ob->scan_at = INT64_MAX;

	memcpy(name, DB_PREFIX, sizeof DB_PREFIX - 1);
	memcpy(name + sizeof DB_PREFIX - 1, producer_id, ob->producer_len + 1);
	r = wf_store_dbi(s, name, 0, &ob->entries_dbi);
	if (r < 0)
		goto fail;
	r = wf_store_dbi(s, META_NAME, 0, &ob->meta_dbi);
	if (r < 0)
		goto fail;
	*ret = ob;
	return 0;
fail:
	wf_outbox_close(ob);
	return r;
}

struct wf_outbox *wf_outbox_close(struct wf_outbox *o)
{
	if (!o)
		return NULL;
	free(o->sent);
	free(o->arena);
	free(o->producer);
	free(o);
	return NULL;
}

const char *wf_outbox_producer(const struct wf_outbox *o)
{
	return o ? o->producer : NULL;
}

/* ---- meta record ---- */

static int meta_read(struct wf_outbox *o, struct wf_txn *t, struct meta *m)
{
	unsigned char v[16];
	size_t n = 0;
	int r = wf_store_get_buf(t, o->meta_dbi, o->producer, o->producer_len, v, sizeof v, &n);
	if (r == -ENOENT) {
		*m = (struct meta){ 0, 0 };
		return 0;
	}
	if (r < 0)
		return r == -EMSGSIZE ? -EBADMSG : r;
	if (n != sizeof v)
		return -EBADMSG;
	m->last_seq = get_u64(v);
	m->bytes = get_u64(v + 8);
	return 0;
}

static int meta_write(struct wf_outbox *o, struct wf_txn *t, const struct meta *m)
{
	unsigned char v[16];
	put_u64(v, m->last_seq);
	put_u64(v + 8, m->bytes);
	return wf_store_put(t, o->meta_dbi, o->producer, o->producer_len, v, sizeof v, 0);
}

static int meta_hook(struct wf_txn *t, void *ud, bool commit)
{
	struct wf_outbox *o = ud;
	int r = commit && o->mc_dirty ? meta_write(o, t, &o->mc) : 0;
	o->mc_t = NULL;
	o->mc_dirty = o->mc_checked = false;
	return r;
}

static int meta_get(struct wf_outbox *o, struct wf_txn *t, struct meta *m)
{
	if (o->mc_t == t && t) {
		*m = o->mc;
		return 0;
	}
	int r = meta_read(o, t, m);
	if (r < 0 || !wf_store_txn_writable(t) || wf_store_txn_hook(t, meta_hook, o) < 0)
		return r; /* a reader, or no room for the hook: without the cache */
	o->mc_t = t;
	o->mc = *m;
	o->mc_dirty = o->mc_checked = false;
	return 0;
}

static int meta_put(struct wf_outbox *o, struct wf_txn *t, const struct meta *m)
{
	if (o->mc_t == t && t) {
		o->mc = *m;
		o->mc_dirty = true;
		return 0;
	}
	return meta_write(o, t, m);
}

int wf_outbox_next_seq(struct wf_outbox *o, struct wf_txn *t, uint64_t *ret_seq)
{
	struct meta m;
	uint64_t count = 0;
	unsigned char k[8];
	size_t kl = 0;

	if (!o || !ret_seq || !wf_store_txn_writable(t))
		return -EINVAL;
	int r = wf_store_count(t, o->entries_dbi, &count);
	if (r < 0)
		return r;
	if (count >= o->o.max_entries)
		return -ENOBUFS;
	r = meta_get(o, t, &m);
	if (r < 0)
		return r;
	/* defensive: never reuse a number still stored (once a transaction:
	 * the numbers after it come from here) */
	if (!(o->mc_t == t && o->mc_checked)) {
		r = wf_store_last_key(t, o->entries_dbi, k, sizeof k, &kl);
		if (r == 0 && kl == sizeof k && get_u64(k) > m.last_seq)
			m.last_seq = get_u64(k);
		else if (r < 0 && r != -ENOENT)
			return r;
		if (o->mc_t == t)
			o->mc_checked = true;
	}
	if (m.last_seq == UINT64_MAX)
		return -EOVERFLOW;
	m.last_seq++;
	r = meta_put(o, t, &m);
	if (r < 0)
		return r;
	*ret_seq = m.last_seq;
	return 0;
}

static bool topic_ok(const char *topic)
{
	if (!topic)
		return false;
	size_t n = strnlen(topic, WF_OUTBOX_MAX_TOPIC + 1);
	if (n == 0 || n > WF_OUTBOX_MAX_TOPIC)
		return false;
	return strpbrk(topic, "+#") == NULL;
}

int wf_outbox_put(struct wf_outbox *o, struct wf_txn *t, uint64_t seq, const char *topic,
		  const void *payload, size_t len)
{
	struct meta m;
	uint64_t count = 0;

	if (!o || !wf_store_txn_writable(t) || seq == 0 || !topic_ok(topic) || (!payload && len))
		return -EINVAL;
	if (len > o->o.max_payload)
		return -EMSGSIZE;
	size_t tlen = strlen(topic);
	size_t vlen = ENTRY_HDR + tlen + len;
	uint64_t size = 8 + (uint64_t)vlen;
	if (size > o->o.max_bytes)
		return -EMSGSIZE;
	int r = meta_get(o, t, &m);
	if (r < 0)
		return r;
	if (seq > m.last_seq)
		return -EINVAL; /* not allocated by wf_outbox_next_seq */
	r = wf_store_count(t, o->entries_dbi, &count);
	if (r < 0)
		return r;
	if (count >= o->o.max_entries || m.bytes + size > o->o.max_bytes)
		return -ENOBUFS;

	unsigned char *v = malloc(vlen);
	if (!v)
		return -ENOMEM;
	put_u64(v, (uint64_t)now_ms(o));
	v[8] = (unsigned char)(tlen >> 8);
	v[9] = (unsigned char)(tlen & 0xff);
	memcpy(v + ENTRY_HDR, topic, tlen);
	if (len)
		memcpy(v + ENTRY_HDR + tlen, payload, len);
	unsigned char k[8];
	put_u64(k, seq);
	r = wf_store_put(t, o->entries_dbi, k, sizeof k, v, vlen, WF_STORE_PUT_NOOVERWRITE);
	free(v);
	if (r < 0)
		return r;
	m.bytes += size;
	return meta_put(o, t, &m);
}

/* ---- in-memory sent list ---- */

/* index of the first element with seq >= SEQ */
static size_t sent_lower(const struct wf_outbox *o, uint64_t seq)
{
	size_t lo = 0, hi = o->n_sent;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (o->sent[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int sent_append(struct wf_outbox *o, uint64_t seq, int64_t when)
{
	if (o->n_sent == o->cap_sent) {
		size_t cap = o->cap_sent ? o->cap_sent * 2 : 64;
		struct sent *n = realloc(o->sent, cap * sizeof *n);
		if (!n)
			return -ENOMEM;
		o->sent = n;
		o->cap_sent = cap;
	}
	o->sent[o->n_sent++] = (struct sent){ .seq = seq, .last_ms = when };
	return 0;
}

static void sent_remove_range(struct wf_outbox *o, uint64_t first, uint64_t last)
{
	size_t a = sent_lower(o, first);
	size_t b = last == UINT64_MAX ? o->n_sent : sent_lower(o, last + 1);
	if (b <= a)
		return;
	memmove(o->sent + a, o->sent + b, (o->n_sent - b) * sizeof *o->sent);
	o->n_sent -= b - a;
}

/* ---- flush ---- */

static int arena_reserve(struct wf_outbox *o, size_t more)
{
	if (o->arena_cap - o->arena_len >= more)
		return 0;
	size_t cap = o->arena_cap ? o->arena_cap : 4096;
	while (cap - o->arena_len < more) {
		if (cap > SIZE_MAX / 2)
			return -ENOMEM;
		cap *= 2;
	}
	char *n = realloc(o->arena, cap);
	if (!n)
		return -ENOMEM;
	o->arena = n;
	o->arena_cap = cap;
	return 0;
}

static void batch_reset(struct wf_outbox *o)
{
	o->n_items = 0;
	o->arena_len = 0;
}

/* Copies one stored entry into the batch. */
static int batch_add(struct wf_outbox *o, uint64_t seq, const void *val, size_t vlen)
{
	const unsigned char *v = val;
	if (vlen < ENTRY_HDR)
		return -EBADMSG;
	size_t tlen = (size_t)v[8] << 8 | v[9];
	if (tlen == 0 || tlen > vlen - ENTRY_HDR)
		return -EBADMSG;
	size_t plen = vlen - ENTRY_HDR - tlen;
	int r = arena_reserve(o, tlen + 1 + plen);
	if (r < 0)
		return r;
	struct item *it = &o->items[o->n_items++];
	it->seq = seq;
	it->gone = false;
	it->topic_off = o->arena_len;
	memcpy(o->arena + o->arena_len, v + ENTRY_HDR, tlen);
	o->arena[o->arena_len + tlen] = '\0';
	it->payload_off = o->arena_len + tlen + 1;
	if (plen)
		memcpy(o->arena + it->payload_off, v + ENTRY_HDR + tlen, plen);
	it->len = plen;
	o->arena_len += tlen + 1 + plen;
	return 0;
}

static bool batch_full(const struct wf_outbox *o, size_t limit)
{
	return o->n_items >= limit || o->n_items >= BATCH_ENTRIES || o->arena_len >= BATCH_BYTES;
}

static int publish_item(struct wf_outbox *o, const struct item *it)
{
	return o->o.publish(o->o.publish_ud, o->arena + it->topic_off, o->arena + it->payload_off,
			    it->len);
}

struct scan_new {
	struct wf_outbox *o;
	size_t limit;
};

static int collect_new(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct scan_new *sn = ud;
	if (klen != 8)
		return -EBADMSG;
	int r = batch_add(sn->o, get_u64(key), val, vlen);
	if (r < 0)
		return r;
	return batch_full(sn->o, sn->limit) ? 1 : 0;
}

static bool is_due(const struct sent *e, int64_t now, int64_t timeout)
{
	return e->last_ms == INT64_MIN || e->last_ms <= now - timeout;
}

/* Phase 1: resend what is overdue, in seq order. */
static int flush_resend(struct wf_outbox *o, int64_t now, unsigned *budget, int *published)
{
	int64_t timeout = o->o.resend_ms;
	int64_t next_due = INT64_MAX;
	bool complete = true, any_gone = false;
	size_t i = 0;
	int r = 0;

	if (o->n_sent == 0 || now < o->scan_at)
		return 0;
	while (i < o->n_sent) {
		if (*budget == 0) {
			complete = false;
			break;
		}
		/* gather a batch of due entries; remember their indices */
		size_t idx[BATCH_ENTRIES];
		batch_reset(o);
		struct wf_txn *t = NULL;
		r = wf_store_txn_begin(o->s, false, &t);
		if (r < 0)
			goto out;
		for (; i < o->n_sent && !batch_full(o, *budget); i++) {
			struct sent *e = &o->sent[i];
			if (!is_due(e, now, timeout)) {
				if (e->last_ms + timeout < next_due)
					next_due = e->last_ms + timeout;
				continue;
			}
			unsigned char k[8];
			void *v = NULL;
			size_t vlen = 0;
			put_u64(k, e->seq);
			r = wf_store_get(t, o->entries_dbi, k, sizeof k, &v, &vlen);
			if (r == -ENOENT) {
				/* deleted behind our back: forget it */
				e->last_ms = INT64_MAX;
				any_gone = true;
				continue;
			}
			if (r == 0)
				r = batch_add(o, e->seq, v, vlen);
			free(v);
			if (r < 0) {
				wf_store_txn_abort(t);
				goto out;
			}
			idx[o->n_items - 1] = i;
		}
		wf_store_txn_abort(t);
		for (size_t j = 0; j < o->n_items; j++) {
			r = publish_item(o, &o->items[j]);
			if (r != 0) {
				r = r < 0 ? r : -EIO;
				complete = false;
				goto out;
			}
			o->sent[idx[j]].last_ms = now;
			if (now + timeout < next_due)
				next_due = now + timeout;
			(*published)++;
			(*budget)--;
		}
	}
	r = 0;
out:
	if (any_gone) {
		size_t w = 0;
		for (size_t j = 0; j < o->n_sent; j++)
			if (o->sent[j].last_ms != INT64_MAX)
				o->sent[w++] = o->sent[j];
		o->n_sent = w;
	}
	o->scan_at = complete && r == 0 ? next_due : INT64_MIN;
	if (o->n_sent == 0)
		o->scan_at = INT64_MAX;
	return r;
}

/* Phase 2: publish entries never sent by this process. */
static int flush_new(struct wf_outbox *o, int64_t now, unsigned *budget, int *published)
{
	while (*budget > 0) {
		struct wf_txn *t = NULL;
		unsigned char from[8];
		if (o->sent_upto == UINT64_MAX)
			return 0;
		put_u64(from, o->sent_upto + 1);
		batch_reset(o);
		int r = wf_store_txn_begin(o->s, false, &t);
		if (r < 0)
			return r;
		struct scan_new sn = { .o = o, .limit = *budget };
		r = wf_store_foreach(t, o->entries_dbi, from, sizeof from, collect_new, &sn);
		wf_store_txn_abort(t);
		if (r < 0)
			return r;
		bool more = r > 0;
		for (size_t j = 0; j < o->n_items; j++) {
			const struct item *it = &o->items[j];
			r = publish_item(o, it);
			if (r != 0)
				return r < 0 ? r : -EIO;
			/* appending keeps `sent` sorted: it->seq > sent_upto */
			r = sent_append(o, it->seq, now);
			if (r < 0)
				return r;
			o->sent_upto = it->seq;
			if (now + o->o.resend_ms < o->scan_at)
				o->scan_at = now + o->o.resend_ms;
			(*published)++;
			(*budget)--;
		}
		if (!more)
			break;
	}
	return 0;
}

int wf_outbox_flush(struct wf_outbox *o)
{
	return o ? wf_outbox_flush_n(o, o->o.max_per_flush) : -EINVAL;
}

int wf_outbox_flush_n(struct wf_outbox *o, unsigned max)
{
	if (!o || max == 0)
		return -EINVAL;
	int64_t now = now_ms(o);
	unsigned budget = max < o->o.max_per_flush ? max : o->o.max_per_flush;
	int published = 0;
	int r = flush_resend(o, now, &budget, &published);
	if (r == 0)
		r = flush_new(o, now, &budget, &published);
	batch_reset(o);
	return r < 0 ? r : published;
}

int64_t wf_outbox_next_due_ms(const struct wf_outbox *o)
{
	if (!o || o->n_sent == 0)
		return INT64_MAX;
	return o->scan_at;
}

void wf_outbox_consumer_birth(struct wf_outbox *o)
{
	if (!o)
		return;
	for (size_t i = 0; i < o->n_sent; i++)
		o->sent[i].last_ms = INT64_MIN;
	if (o->n_sent)
		o->scan_at = INT64_MIN;
}

/* ---- acks ---- */

struct ack_ctx {
	struct wf_outbox *o;
	const struct wf_seq_range *ranges;
	size_t n;
};

static int ack_fn(struct wf_txn *t, void *ud)
{
	struct ack_ctx *a = ud;
	struct wf_outbox *o = a->o;
	uint64_t total = 0, bytes = 0;
	struct meta m;

	for (size_t i = 0; i < a->n; i++) {
		unsigned char lo[8], hi[8];
		uint64_t del = 0, b = 0;
		uint64_t first = a->ranges[i].first ? a->ranges[i].first : 1;
		if (a->ranges[i].last == 0)
			continue;
		put_u64(lo, first);
		put_u64(hi, a->ranges[i].last);
		int r = wf_store_del_range(t, o->entries_dbi, lo, sizeof lo, hi, sizeof hi, &del, &b);
		if (r < 0)
			return r;
		total += del;
		bytes += b;
	}
	if (total == 0)
		return 0;
	int r = meta_get(o, t, &m);
	if (r < 0)
		return r;
	m.bytes = m.bytes > bytes ? m.bytes - bytes : 0;
	r = meta_put(o, t, &m);
	if (r < 0)
		return r;
	return total > INT_MAX ? INT_MAX : (int)total;
}

int wf_outbox_ack_ranges(struct wf_outbox *o, const struct wf_seq_range *ranges, size_t n)
{
	if (!o || (!ranges && n) || n > WF_OUTBOX_MAX_ACK_RANGES)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (ranges[i].first > ranges[i].last)
			return -EINVAL;
	if (n == 0)
		return 0;
	struct ack_ctx a = { .o = o, .ranges = ranges, .n = n };
	int r = wf_store_update(o->s, ack_fn, &a);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		sent_remove_range(o, ranges[i].first, ranges[i].last);
	if (o->n_sent == 0)
		o->scan_at = INT64_MAX;
	return r;
}

int wf_outbox_ack(struct wf_outbox *o, const Wf__V1__Ack *ack)
{
	if (!o || !ack || !ack->producer || strcmp(ack->producer, o->producer) != 0)
		return -EINVAL;
	if (ack->n_ranges > WF_OUTBOX_MAX_ACK_RANGES || (!ack->ranges && ack->n_ranges))
		return -EINVAL;
	if (ack->n_ranges == 0)
		return 0;
	struct wf_seq_range *r = malloc(ack->n_ranges * sizeof *r);
	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < ack->n_ranges; i++) {
		if (!ack->ranges[i]) {
			free(r);
			return -EINVAL;
		}
		r[i].first = ack->ranges[i]->first;
		r[i].last = ack->ranges[i]->last;
	}
	int ret = wf_outbox_ack_ranges(o, r, ack->n_ranges);
	free(r);
	return ret;
}

int wf_outbox_ack_packed(struct wf_outbox *o, const void *buf, size_t len)
{
	if (!o || (!buf && len))
		return -EINVAL;
	if (len > WF_OUTBOX_MAX_ACK_BYTES)
		return -EMSGSIZE;
	Wf__V1__Ack *ack = wf__v1__ack__unpack(NULL, len, buf);
	if (!ack)
		return -EBADMSG;
	int r = wf_outbox_ack(o, ack);
	wf__v1__ack__free_unpacked(ack, NULL);
	return r;
}

/* ---- monitoring ---- */

struct pending_ctx {
	struct wf_outbox *o;
	uint64_t count, bytes;
};

static int pending_fn(struct wf_txn *t, void *ud)
{
	struct pending_ctx *p = ud;
	struct meta m;
	int r = wf_store_count(t, p->o->entries_dbi, &p->count);
	if (r < 0)
		return r;
	r = meta_get(p->o, t, &m);
	if (r < 0)
		return r;
	p->bytes = m.bytes;
	return 0;
}

int wf_outbox_pending(struct wf_outbox *o, uint64_t *ret_count, uint64_t *ret_bytes)
{
	if (!o)
		return -EINVAL;
	struct pending_ctx p = { .o = o };
	int r = wf_store_view(o->s, pending_fn, &p);
	if (r < 0)
		return r;
	if (ret_count)
		*ret_count = p.count;
	if (ret_bytes)
		*ret_bytes = p.bytes;
	return 0;
}

static int first_put_ms(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
	(void)key;
	(void)klen;
	if (vlen < ENTRY_HDR)
		return -EBADMSG;
	*(int64_t *)ud = (int64_t)get_u64(val);
	return 1;
}

struct oldest_ctx {
	struct wf_outbox *o;
	int64_t put_ms;
	bool found;
};

static int oldest_fn(struct wf_txn *t, void *ud)
{
	struct oldest_ctx *c = ud;
	int r = wf_store_foreach(t, c->o->entries_dbi, NULL, 0, first_put_ms, &c->put_ms);
	if (r < 0)
		return r;
	c->found = r > 0;
	return 0;
}

int wf_outbox_oldest_ms(struct wf_outbox *o, int64_t *ret_age_ms)
{
	if (!o || !ret_age_ms)
		return -EINVAL;
	struct oldest_ctx c = { .o = o };
	int r = wf_store_view(o->s, oldest_fn, &c);
	if (r < 0)
		return r;
	int64_t age = 0;
	if (c.found) {
		int64_t now = now_ms(o);
		age = now > c.put_ms ? now - c.put_ms : 0;
	}
	*ret_age_ms = age;
	return 0;
}

struct floor_ctx {
	struct wf_outbox *o;
	uint64_t seq;
};

static int floor_fn(struct wf_txn *t, void *ud)
{
	struct floor_ctx *c = ud;
	unsigned char k[8];
	size_t kl = 0;
	struct meta m;
	int r = wf_store_first_key(t, c->o->entries_dbi, k, sizeof k, &kl);

	if (r == 0 && kl == sizeof k) {
		c->seq = get_u64(k);
		return 0;
	}
	if (r < 0 && r != -ENOENT)
		return r;
	r = meta_get(c->o, t, &m);
	if (r < 0)
		return r;
	c->seq = m.last_seq + 1;
	return 0;
}

int wf_outbox_floor(struct wf_outbox *o, uint64_t *ret_seq)
{
	if (!o || !ret_seq)
		return -EINVAL;
	struct floor_ctx c = { .o = o };
	int r = wf_store_view(o->s, floor_fn, &c);
	if (r < 0)
		return r;
	*ret_seq = c.seq;
	return 0;
}
