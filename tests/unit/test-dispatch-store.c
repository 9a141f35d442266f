/* Unit tests for the dispatcher's stored records (services/dispatch/
 * store.c, stats.c): the compact record encoding restores every record
 * exactly, reads the raw records of earlier releases and refuses what is
 * not a whole record; the stats cache counts a batch's versions once each,
 * writes the record before the commit, and an aborted batch counts
 * nothing; warning versions are appended to d-wlog in arrival order and
 * found through d-wver, a copy under the first one's number, all of a
 * warning's purged together; a version's records are keyed by its place in
 * the log ("<seq>:"), stored without a read when new; a whole store in the
 * earlier layout (raw records, versions in d-warning, records keyed by
 * "<id>@<version>") is converted once at open (layout.c) and works on:
 * acks, a new version referring to one stored before, statistics going
 * on, the purge at the end. */
#include "dispatch-test.h"
#include "dispatch-internal.h"
#include "stats.h"
#include "store.h"

#define A WF__V1__MSG_TYPE__MSG_TYPE_ALERT
#define ACTUAL WF__V1__STATUS__STATUS_ACTUAL
#define IV WF__V1__LEVEL__LEVEL_IV
#define DSP_REC_MAX_TEST 1024

/* A deterministic pseudo-random stream (xorshift). */
static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Records of every shape: all zeros, no zeros, zero runs of 1..300
 * bytes between literals of 1..300 (across the 128-byte token limits). */
START_TEST(test_codec_round_trip)
{
	uint8_t rec[DSP_REC_MAX_TEST], back[DSP_REC_MAX_TEST];
	uint8_t enc[DSP_REC_ENCODED_MAX(DSP_REC_MAX_TEST)];
	uint32_t seed = 2463534242u;
	for (int round = 0; round < 3000; round++) {
		size_t size = 1 + rnd(&seed) % sizeof rec;
		int shape = round % 3;
		for (size_t i = 0; i < size;) {
			size_t run = 1 + rnd(&seed) % (round % 2 ? 300 : 8);
			bool zero = shape == 0 ? true : shape == 1 ? false : rnd(&seed) % 2;
			for (size_t k = 0; k < run && i < size; k++, i++)
				rec[i] = zero ? 0 : (uint8_t)(1 + rnd(&seed) % 255);
		}
		rec[0] = 1; /* the layout version every fixed record starts with */
		size_t n = dsp_rec_encode(rec, size, enc);
		ck_assert_uint_le(n, DSP_REC_ENCODED_MAX(size));
		memset(back, 0xAA, sizeof back);
		ck_assert_msg(dsp_rec_decode(enc, n, back, size) == 0, "round %d size %zu", round,
			      size);
		ck_assert_msg(memcmp(rec, back, size) == 0, "round %d size %zu", round, size);
		if (size < sizeof back)
			ck_assert_uint_eq(back[size], 0xAA); /* nothing written past the record */
		if (shape == 0 && size > 1)
			/* marker, the version byte's token and byte, a token per 128 zeros */
			ck_assert_uint_le(n, 3 + (size - 1 + 127) / 128);
		/* a record of another size is refused */
		if (size > 1)
			ck_assert_int_eq(dsp_rec_decode(enc, n, back, size - 1), -EBADMSG);
		ck_assert_int_eq(dsp_rec_decode(enc, n, back, size + 1), -EBADMSG);
	}
}
END_TEST

/* A typical record (a duty record: empty operator and escalated-from)
 * takes a fraction of its struct; a raw record of an earlier release is
 * read as it is; damaged values are refused, never read past. */
START_TEST(test_codec_compact_legacy_and_damage)
{
	struct dsp_duty d, back;
	memset(&d, 0, sizeof d);
	d.rec_version = 1;
	d.kind = 1;
	d.sent_ms = T0;
	d.deadline_ms = T0 + 30 * MIN;
	uint8_t enc[DSP_REC_ENCODED_MAX(sizeof d)];
	size_t n = dsp_rec_encode(&d, sizeof d, enc);
	ck_assert_uint_lt(n, sizeof d / 4);
	ck_assert_int_eq(dsp_rec_decode(enc, n, &back, sizeof back), 0);
	ck_assert_int_eq(memcmp(&d, &back, sizeof d), 0);

	/* the struct itself (written before compaction) */
	memset(&back, 0, sizeof back);
	ck_assert_int_eq(dsp_rec_decode(&d, sizeof d, &back, sizeof back), 0);
	ck_assert_int_eq(memcmp(&d, &back, sizeof d), 0);
	/* ... but not of another layout version */
	struct dsp_duty v2 = d;
	v2.rec_version = 2;
	ck_assert_int_eq(dsp_rec_decode(&v2, sizeof v2, &back, sizeof back), -EBADMSG);
	uint8_t enc2[DSP_REC_ENCODED_MAX(sizeof v2)];
	size_t n2 = dsp_rec_encode(&v2, sizeof v2, enc2);
	ck_assert_int_eq(dsp_rec_decode(enc2, n2, &back, sizeof back), -EBADMSG);

	/* every truncation, and every single-byte change of the token bytes */
	for (size_t cut = 0; cut < n; cut++)
		ck_assert_msg(dsp_rec_decode(enc, cut, &back, sizeof back) == -EBADMSG, "cut %zu",
			      cut);
	for (size_t i = 0; i < n; i++) {
		uint8_t bad[sizeof enc];
		memcpy(bad, enc, n);
		bad[i] ^= 0x80;
		int r = dsp_rec_decode(bad, n, &back, sizeof back);
		ck_assert(r == 0 || r == -EBADMSG); /* a literal byte may change the value only */
		if (i == 0)
			ck_assert_int_eq(r, -EBADMSG); /* not the compact marker */
	}
	ck_assert_int_eq(dsp_rec_decode("", 0, &back, sizeof back), -EBADMSG);
}
END_TEST

static uint64_t stored_versions(void)
{
	struct wf_txn *t;
	struct dsp_stats s;
	ck_assert_int_eq(wf_store_txn_begin(fx.store, false, &t), 0);
	ck_assert_int_eq(dsp_stats_load(t, dsp_engine_dbs(fx.e), &s), 0);
	wf_store_txn_abort(t);
	return s.versions;
}

struct batch {
	const char *prefix;
	int n;
	bool fail;
	uint64_t seen_inside;
};

static int batch_fn(struct wf_txn *t, void *ud)
{
	struct batch *b = ud;
	char ids[64][48];
	for (int i = 0; i < b->n; i++) {
		snprintf(ids[i], sizeof ids[i], "wf-%s-%d", b->prefix, i);
		Wf__V1__Warning w = mkw(ids[i], 1, IV, A, ACTUAL, T0);
		struct wf_codec_error why;
		dsp_engine_outputs_clear(fx.e);
		ck_assert_int_eq(dsp_engine_warning(fx.e, t, &w, T0, &why), 0);
	}
	struct dsp_stats s;
	ck_assert_int_eq(dsp_stats_load(t, dsp_engine_dbs(fx.e), &s), 0);
	b->seen_inside = s.versions;
	return b->fail ? -EIO : 0;
}

/* 40 versions in one transaction: counted 40 times, visible inside the
 * transaction, stored by the commit; a failed batch counts nothing, and
 * the next one starts from the stored figures. */
START_TEST(test_stats_cache_per_transaction)
{
	fx_open(NULL);
	struct batch b = { .prefix = "store-test", .n = 40 };
	ck_assert_int_eq(wf_store_update(fx.store, batch_fn, &b), 0);
	ck_assert_uint_eq(b.seen_inside, 40);
	ck_assert_uint_eq(stored_versions(), 40);

	struct batch fail = { .prefix = "store-failed", .n = 3, .fail = true };
	ck_assert_int_eq(wf_store_update(fx.store, batch_fn, &fail), -EIO);
	ck_assert_uint_eq(fail.seen_inside, 40 + 3);
	ck_assert_uint_eq(stored_versions(), 40);

	/* versions 2 of 5 of them, in a transaction of their own each */
	for (int i = 0; i < 5; i++) {
		char id[48];
		snprintf(id, sizeof id, "wf-store-test-%d", i);
		Wf__V1__Warning w = mkw(id, 2, IV, WF__V1__MSG_TYPE__MSG_TYPE_UPDATE, ACTUAL, T0 + MIN);
		ck_assert_int_eq(apply_warning(&w, T0 + MIN), 0);
	}
	ck_assert_uint_eq(stored_versions(), 45);
	fx_close();
}
END_TEST

struct wl {
	const struct dsp_dbs *d;
	int step;
	uint64_t n;
};

static uint64_t count_in(struct wf_txn *t, unsigned dbi)
{
	uint64_t n = 0;
	ck_assert_int_eq(wf_store_count(t, dbi, &n), 0);
	return n;
}

static uint64_t last_seq(struct wf_txn *t, unsigned dbi)
{
	unsigned char k[8];
	size_t kl = 0;
	ck_assert_int_eq(wf_store_last_key(t, dbi, k, sizeof k, &kl), 0);
	ck_assert_uint_eq(kl, 8);
	return wf_store_key_to_u64(k);
}

static void put_version(struct wf_txn *t, const struct dsp_dbs *d, const char *id, uint32_t v,
			const char *headline)
{
	Wf__V1__Warning w = mkw(id, v, IV, A, ACTUAL, T0);
	w.headline = (char *)headline;
	size_t len = wf__v1__warning__get_packed_size(&w);
	uint8_t *buf = malloc(len);
	ck_assert_ptr_nonnull(buf);
	wf__v1__warning__pack(&w, buf);
	ck_assert_int_eq(dsp_put_warning(t, d, id, v, buf, len), 0);
	free(buf);
}

static void expect_headline(struct wf_txn *t, const struct dsp_dbs *d, const char *id, uint32_t v,
			    const char *headline)
{
	Wf__V1__Warning *w = NULL;
	int r = dsp_get_warning(t, d, id, v, &w);
	if (!headline) {
		ck_assert_int_eq(r, -ENOENT);
		return;
	}
	ck_assert_msg(r == 0, "%s@%u: %d", id, v, r);
	ck_assert_str_eq(w->headline, headline);
	wf_codec_warning_free(w);
}

static int wlog_fn(struct wf_txn *t, void *ud)
{
	struct wl *s = ud;
	const struct dsp_dbs *d = s->d;
	switch (s->step) {
	case 0: {
		put_version(t, d, "w-b", 1, "b1");
		put_version(t, d, "w-a", 1, "a1");
		put_version(t, d, "w-b", 2, "b2");
		put_version(t, d, "w-a", 2, "a2");
		ck_assert_uint_eq(last_seq(t, d->wlog), 4); /* in arrival order */
		break;
	}
	case 1:
		/* the next transaction goes on after the last; a copy replaces */
		put_version(t, d, "w-c", 1, "c1");
		ck_assert_uint_eq(last_seq(t, d->wlog), 5);
		put_version(t, d, "w-a", 2, "a2 again");
		ck_assert_uint_eq(count_in(t, d->wlog), 5);
		ck_assert_uint_eq(count_in(t, d->wver), 5);
		expect_headline(t, d, "w-a", 1, "a1");
		expect_headline(t, d, "w-a", 2, "a2 again");
		expect_headline(t, d, "w-b", 1, "b1");
		expect_headline(t, d, "w-b", 2, "b2");
		expect_headline(t, d, "w-b", 3, NULL);
		break;
	case 2:
		/* purging w-b takes both its versions, and nothing of w-a
		 * (whose keys w-b@ does not prefix) */
		ck_assert_int_eq(dsp_del_warnings(t, d, "w-b@", &s->n), 0);
		expect_headline(t, d, "w-b", 1, NULL);
		expect_headline(t, d, "w-b", 2, NULL);
		expect_headline(t, d, "w-a", 1, "a1");
		ck_assert_uint_eq(count_in(t, d->wlog), 3);
		ck_assert_int_eq(dsp_del_warnings(t, d, "w-a@", &s->n), 0);
		ck_assert_int_eq(dsp_del_warnings(t, d, "w-c@", &s->n), 0);
		ck_assert_uint_eq(count_in(t, d->wlog), 0);
		ck_assert_uint_eq(count_in(t, d->wver), 0);
		/* all gone: numbering starts again, and finds nothing stale */
		put_version(t, d, "w-d", 1, "d1");
		expect_headline(t, d, "w-d", 1, "d1");
		expect_headline(t, d, "w-a", 1, NULL);
		break;
	}
	return 0;
}

START_TEST(test_warning_log)
{
	fx_open(NULL);
	struct wl s = { dsp_engine_dbs(fx.e), 0, 0 };
	for (s.step = 0; s.step < 3; s.step++)
		ck_assert_int_eq(wf_store_update(fx.store, wlog_fn, &s), 0);
	ck_assert_uint_eq(s.n, 2 + 2 + 1); /* d-wver keys deleted: w-b@1..2, w-a@1..2, w-c@1 */
	fx_close();
}
END_TEST

/* dsp_put_indexed_new: a new key is stored with its index entries without
 * a read; a key there after all (a leftover record) falls back to the
 * full path, which moves its entries: no deadline left pointing at the
 * old one, no pending mark lost or doubled. */
struct due_seen {
	size_t n;
	int64_t at[4];
	char kind[4];
};

static int due_cb(void *ud, const void *k, size_t kl, const void *v, size_t vl)
{
	struct due_seen *s = ud;
	(void)v;
	(void)vl;
	ck_assert_uint_gt(kl, 9);
	ck_assert_uint_lt(s->n, 4);
	s->at[s->n] = (int64_t)wf_store_key_to_u64(k);
	s->kind[s->n++] = ((const char *)k)[8];
	return 0;
}

static int put_new_fn(struct wf_txn *t, void *ud)
{
	const struct dsp_dbs *d = ud;
	struct dsp_duty duty;
	memset(&duty, 0, sizeof duty);
	duty.rec_version = 1;
	duty.state = DSP_DUTY_PENDING;
	duty.deadline_ms = T0 + 1000;
	ck_assert_int_eq(dsp_put_indexed_new(t, d, DSP_DUE_DUTY, "st|w-n@1", &duty, sizeof duty), 0);
	duty.deadline_ms = T0 + 5000; /* the same key again, a later deadline */
	ck_assert_int_eq(dsp_put_indexed_new(t, d, DSP_DUE_DUTY, "st|w-n@1", &duty, sizeof duty), 0);
	struct due_seen seen = { 0 };
	ck_assert_int_eq(wf_store_foreach(t, d->due, NULL, 0, due_cb, &seen), 0);
	ck_assert_uint_eq(seen.n, 1); /* the first deadline is gone */
	ck_assert_int_eq(seen.at[0], T0 + 5000);
	ck_assert_int_eq(seen.kind[0], DSP_DUE_DUTY);
	uint64_t c = 0;
	ck_assert_int_eq(wf_store_count(t, d->dpend, &c), 0);
	ck_assert_uint_eq(c, 1);
	duty.state = DSP_DUTY_ACKED; /* no longer pending: off the list, no deadline */
	ck_assert_int_eq(dsp_put_indexed_new(t, d, DSP_DUE_DUTY, "st|w-n@1", &duty, sizeof duty), 0);
	ck_assert_int_eq(wf_store_count(t, d->dpend, &c), 0);
	ck_assert_uint_eq(c, 0);
	struct dsp_review_rec rec;
	memset(&rec, 0, sizeof rec);
	rec.rec_version = 1;
	rec.rv.version = 1;
	rec.rv.state = WF__V1__REVIEW_STATE__REVIEW_PENDING;
	rec.rv.review_deadline_ms = T0 + 3000;
	ck_assert_int_eq(dsp_put_indexed_new(t, d, DSP_DUE_REVIEW, "w-n@1", &rec, sizeof rec), 0);
	memset(&seen, 0, sizeof seen);
	ck_assert_int_eq(wf_store_foreach(t, d->due, NULL, 0, due_cb, &seen), 0);
	ck_assert_uint_eq(seen.n, 1);
	ck_assert_int_eq(seen.kind[0], DSP_DUE_REVIEW);
	ck_assert_int_eq(seen.at[0], T0 + 3000);
	return 0;
}

START_TEST(test_put_indexed_new)
{
	fx_open(NULL);
	ck_assert_int_eq(wf_store_update(fx.store, put_new_fn, (void *)dsp_engine_dbs(fx.e)), 0);
	fx_close();
}
END_TEST

/* A version's records are keyed by its place in d-wlog: the keys of a
 * stored version carry its sequence number, those of one not stored the
 * shared 0; a version stored again keeps its number (its records stay
 * found); the prefixes of a warning cover each version and the shared
 * one. */
static int vkeys_fn(struct wf_txn *t, void *ud)
{
	const struct dsp_dbs *d = ud;
	char k[DSP_KEY_MAX];
	ck_assert_int_eq(dsp_put_warning(t, d, "w-1", 12, "a", 1), 0);
	ck_assert_int_eq(dsp_put_warning(t, d, "w-2", 1, "b", 1), 0);
	ck_assert_int_gt(dsp_key_delivery(t, d, k, sizeof k, "w-1", 12, "duty", "st"), 0);
	ck_assert_str_eq(k, "0000000000000001:w-1@12|duty|st");
	ck_assert_int_gt(dsp_key_duty(t, d, k, sizeof k, "st", "w-2", 1), 0);
	ck_assert_str_eq(k, "st|0000000000000002:w-2@1");
	ck_assert_int_gt(dsp_key_review(t, d, k, sizeof k, "w-1", 12), 0);
	ck_assert_str_eq(k, "0000000000000001:w-1@12");
	ck_assert_int_gt(dsp_key_review(t, d, k, sizeof k, "w-1", 13), 0); /* not stored */
	ck_assert_str_eq(k, "0000000000000000:w-1@13");
	ck_assert_int_eq(dsp_put_warning(t, d, "w-1", 12, "c", 1), 0); /* again: same number */
	ck_assert_int_gt(dsp_key_review(t, d, k, sizeof k, "w-1", 12), 0);
	ck_assert_str_eq(k, "0000000000000001:w-1@12");
	ck_assert_int_eq(dsp_put_warning(t, d, "w-1", 13, "d", 1), 0);
	ck_assert_int_gt(dsp_key_review(t, d, k, sizeof k, "w-1", 13), 0); /* now stored */
	ck_assert_str_eq(k, "0000000000000004:w-1@13"); /* 3 went unused by the copy */
	char(*p)[DSP_KEY_MAX] = NULL;
	size_t n = 0;
	ck_assert_int_eq(dsp_version_prefixes(t, d, "w-1", &p, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(p[0], "0000000000000001:w-1@");
	ck_assert_str_eq(p[1], "0000000000000004:w-1@");
	ck_assert_str_eq(p[2], "0000000000000000:w-1@");
	free(p);
	return 0;
}

static int vkeys_read_fn(struct wf_txn *t, void *ud)
{
	const struct dsp_dbs *d = ud;
	char k[DSP_KEY_MAX];
	ck_assert_int_gt(dsp_key_duty(t, d, k, sizeof k, "st", "w-1", 13), 0); /* a reader */
	ck_assert_str_eq(k, "st|0000000000000004:w-1@13");
	return 0;
}

START_TEST(test_version_keys)
{
	fx_open(NULL);
	ck_assert_int_eq(wf_store_update(fx.store, vkeys_fn, (void *)dsp_engine_dbs(fx.e)), 0);
	ck_assert_int_eq(wf_store_view(fx.store, vkeys_read_fn, (void *)dsp_engine_dbs(fx.e)), 0);
	fx_close();
}
END_TEST

/* Keys: exact text, and too long for the buffer or for LMDB is refused. */
START_TEST(test_keys)
{
	char k[DSP_KEY_MAX], small[8], id[600], big[600];
	ck_assert_int_eq(dsp_key_version(k, sizeof k, "w-1", 4294967295u), 14);
	ck_assert_str_eq(k, "w-1@4294967295");
	ck_assert_int_eq(dsp_key_vkey(k, sizeof k, 0x2au, "w-1", 12), 23);
	ck_assert_str_eq(k, "000000000000002a:w-1@12");
	ck_assert_int_eq(dsp_key_vkey(k, sizeof k, UINT64_MAX, "w", 0), 20);
	ck_assert_str_eq(k, "ffffffffffffffff:w@0");
	ck_assert_str_eq(dsp_key_skip_seq("000000000000002a:w-1@12|duty|st"), "w-1@12|duty|st");
	ck_assert_str_eq(dsp_key_skip_seq("w-1@12"), "w-1@12");                /* none */
	ck_assert_str_eq(dsp_key_skip_seq("000000000000002A:w"), "000000000000002A:w"); /* not hex */
	ck_assert_str_eq(dsp_key_skip_seq("00000000000002a:w"), "00000000000002a:w");   /* 15 */
	ck_assert_str_eq(dsp_key_skip_seq(""), "");
	ck_assert_int_eq(dsp_key_followup(k, sizeof k, "st", "w-1"), 6);
	ck_assert_str_eq(k, "st|w-1");
	ck_assert_int_eq(dsp_key_notice(k, sizeof k, "st", "w-1", 3, 2, 1784505600000LL, 1), 33);
	ck_assert_str_eq(k, "notice|st|w-1@3|2|1784505600000|1");
	ck_assert_int_eq(dsp_key_notice(k, sizeof k, "st", "w", 0, 0, -5, 0), 20);
	ck_assert_str_eq(k, "notice|st|w@0|0|-5|0");
	ck_assert_int_eq(dsp_key_notice(small, sizeof small, "st", "w", 0, 0, 0, 0), -ENAMETOOLONG);
	ck_assert_int_eq(dsp_key_version(small, sizeof small, "w-1", 1234), -ENAMETOOLONG);
	ck_assert_int_eq(dsp_key_version(small, sizeof small, "w-1", 123), 7);
	/* the buffer's bound, and LMDB's (WF_STORE_MAX_KEY) with a larger buffer */
	memset(id, 'x', sizeof id - 1);
	id[sizeof id - 1] = '\0';
	id[DSP_KEY_MAX - 3] = '\0'; /* "<id>@1" fills the buffer: the longest */
	ck_assert_int_eq(dsp_key_version(k, sizeof k, id, 1), DSP_KEY_MAX - 1);
	id[DSP_KEY_MAX - 3] = 'x';
	id[DSP_KEY_MAX - 2] = '\0';
	ck_assert_int_eq(dsp_key_version(k, sizeof k, id, 1), -ENAMETOOLONG);
	id[DSP_KEY_MAX - 2] = 'x';
	id[WF_STORE_MAX_KEY - 2] = '\0';
	ck_assert_int_eq(dsp_key_version(big, sizeof big, id, 1), WF_STORE_MAX_KEY);
	id[WF_STORE_MAX_KEY - 2] = 'x';
	id[WF_STORE_MAX_KEY - 1] = '\0';
	ck_assert_int_eq(dsp_key_version(big, sizeof big, id, 1), -ENAMETOOLONG);
}
END_TEST

/* --- a store in the layout of the releases before 2026-12-04 --- */

struct kv {
	char **k;
	void **v;
	size_t *kl, *vl, n, cap;
};

static int kv_cb(void *ud, const void *k, size_t kl, const void *v, size_t vl)
{
	struct kv *s = ud;
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->k = realloc(s->k, s->cap * sizeof *s->k);
		s->v = realloc(s->v, s->cap * sizeof *s->v);
		s->kl = realloc(s->kl, s->cap * sizeof *s->kl);
		s->vl = realloc(s->vl, s->cap * sizeof *s->vl);
		ck_assert(s->k && s->v && s->kl && s->vl);
	}
	s->k[s->n] = malloc(kl + 1);
	s->v[s->n] = malloc(vl + 1);
	ck_assert(s->k[s->n] && s->v[s->n]);
	memcpy(s->k[s->n], k, kl);
	s->k[s->n][kl] = '\0';
	memcpy(s->v[s->n], v, vl);
	s->kl[s->n] = kl;
	s->vl[s->n] = vl;
	s->n++;
	return 0;
}

static void kv_free(struct kv *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->k[i]);
		free(s->v[i]);
	}
	free(s->k);
	free(s->v);
	free(s->kl);
	free(s->vl);
	memset(s, 0, sizeof *s);
}

/* KEY (KL bytes) as an earlier release keyed it: without the "<seq>:" of
 * its version, after the station for SHAPE 'd' (d-duty, d-dpend), at the
 * start for 'v' (d-review, d-delivery). */
static size_t old_key(const char *key, size_t kl, char shape, char *out)
{
	char k[DSP_KEY_MAX];
	memcpy(k, key, kl);
	k[kl] = '\0';
	char *v = k;
	if (shape == 'd') {
		char *bar = strchr(k, '|');
		ck_assert_ptr_nonnull(bar);
		v = bar + 1;
	}
	const char *rest = dsp_key_skip_seq(v);
	ck_assert_ptr_ne(rest, v); /* it had one */
	size_t head = (size_t)(v - k);
	memcpy(out, k, head);
	strcpy(out + head, rest);
	return strlen(out);
}

/* Rewrites table DBI's keys (of SHAPE, old_key) as an earlier release's. */
static void old_keys(struct wf_txn *t, unsigned dbi, char shape)
{
	struct kv s = { 0 };
	ck_assert_int_eq(wf_store_foreach(t, dbi, NULL, 0, kv_cb, &s), 0);
	for (size_t k = 0; k < s.n; k++) {
		char nk[DSP_KEY_MAX + 16];
		size_t nl;
		if (shape == 'x') { /* d-due: <u64><kind> before the table key */
			char kind = ((char *)s.k[k])[8];
			if (kind != 'r' && kind != 'd')
				continue;
			memcpy(nk, s.k[k], 9);
			nl = 9 + old_key((char *)s.k[k] + 9, s.kl[k] - 9, kind == 'd' ? 'd' : 'v',
					 nk + 9);
		} else {
			nl = old_key(s.k[k], s.kl[k], shape, nk);
		}
		ck_assert_int_eq(wf_store_del(t, dbi, s.k[k], s.kl[k]), 0);
		ck_assert_int_eq(wf_store_put(t, dbi, nk, nl, s.v[k], s.vl[k], 0), 0);
	}
	kv_free(&s);
}

/* Rewrites the store as an earlier release wrote it: every fixed record
 * raw (the struct itself), every version in d-warning under <id>@<version>,
 * d-wver and d-wlog empty, the records keyed by "<id>@<version>" (in the
 * deadline index and the pending list too), no d-meta "layout". Returns
 * the number of records rewritten. */
static int to_old_layout(struct wf_txn *t, void *ud)
{
	const struct dsp_dbs *d = dsp_engine_dbs(fx.e);
	struct {
		unsigned dbi;
		size_t size;
	} tabs[] = {
		{ d->current, sizeof(struct dsp_current) },   { d->review, sizeof(struct dsp_review_rec) },
		{ d->delivery, sizeof(struct dsp_delivery) }, { d->duty, sizeof(struct dsp_duty) },
		{ d->followup, sizeof(struct dsp_followup) }, { d->cancel, sizeof(struct dsp_cancel) },
		{ d->silmeta, sizeof(struct dsp_silmeta) },   { d->stats, sizeof(struct dsp_stats) },
	};
	int *n = ud;
	uint8_t rec[sizeof(struct dsp_stats)];
	for (size_t i = 0; i < sizeof tabs / sizeof tabs[0]; i++) {
		struct kv s = { 0 };
		ck_assert_int_eq(wf_store_foreach(t, tabs[i].dbi, NULL, 0, kv_cb, &s), 0);
		for (size_t k = 0; k < s.n; k++) {
			ck_assert_int_eq(dsp_rec_decode(s.v[k], s.vl[k], rec, tabs[i].size), 0);
			ck_assert_uint_ne(s.vl[k], tabs[i].size); /* it was stored compact */
			ck_assert_int_eq(wf_store_put(t, tabs[i].dbi, s.k[k], s.kl[k], rec, tabs[i].size,
						      0), 0);
			(*n)++;
		}
		kv_free(&s);
	}
	struct kv s = { 0 };
	ck_assert_int_eq(wf_store_foreach(t, d->wver, NULL, 0, kv_cb, &s), 0);
	for (size_t k = 0; k < s.n; k++) {
		void *w = NULL;
		size_t wl = 0;
		ck_assert_int_eq(wf_store_get(t, d->wlog, s.v[k], 8, &w, &wl), 0);
		ck_assert_int_eq(wf_store_put(t, d->warning, s.k[k], s.kl[k], w, wl, 0), 0);
		ck_assert_int_eq(wf_store_del(t, d->wlog, s.v[k], 8), 0);
		ck_assert_int_eq(wf_store_del(t, d->wver, s.k[k], s.kl[k]), 0);
		free(w);
		(*n)++;
	}
	kv_free(&s);
	old_keys(t, d->review, 'v');
	old_keys(t, d->delivery, 'v');
	old_keys(t, d->duty, 'd');
	old_keys(t, d->dpend, 'd');
	old_keys(t, d->due, 'x');
	ck_assert_int_eq(wf_store_del(t, d->meta, "layout", 6), 0);
	return 0;
}

/* What the old layout left: no key of a version's record with a "<seq>:". */
static int seq_keys_cb(void *ud, const void *k, size_t kl, const void *v, size_t vl)
{
	(void)v;
	(void)vl;
	char key[DSP_KEY_MAX];
	memcpy(key, k, kl);
	key[kl] = '\0';
	const char *bar = strchr(key, '|');
	if (dsp_key_skip_seq(key) != key || (bar && dsp_key_skip_seq(bar + 1) != bar + 1))
		(*(int *)ud)++;
	return 0;
}

static int count_seq_keys(unsigned dbi)
{
	struct wf_txn *t;
	int n = 0;
	ck_assert_int_eq(wf_store_txn_begin(fx.store, false, &t), 0);
	ck_assert_int_eq(wf_store_foreach(t, dbi, NULL, 0, seq_keys_cb, &n), 0);
	wf_store_txn_abort(t);
	return n;
}

static bool has_record(const char *id)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r = fx_record(id, &buf, &len);
	Wf__V1__WarningRecord *m = r == 0 ? wf__v1__warning_record__unpack(NULL, len, buf) : NULL;
	bool yes = m && m->n_versions >= 1 && m->versions[0]->headline &&
		   strcmp(m->versions[0]->headline, "登封市气象台发布暴雨预警") == 0;
	if (m)
		wf__v1__warning_record__free_unpacked(m, NULL);
	free(buf);
	return yes;
}

/* Two warnings released to every channel and acknowledged by one station,
 * rewritten in the earlier layout, then opened by this engine: the keys are
 * converted once (layout.c; the records stay raw, still read), and
 * everything goes on from the old records. */
START_TEST(test_store_of_an_earlier_release)
{
	struct dsp_config c;
	dsp_config_defaults(&c);
	c.retain_ms = 60 * MIN;
	fx_open_cfg(NULL, &c);
	Wf__V1__Warning a = mkw("w-old-a", 1, IV, A, ACTUAL, T0);
	a.expires_ms = T0 + 30 * MIN;
	Wf__V1__Warning b = mkw("w-old-b", 1, IV, A, ACTUAL, T0);
	b.expires_ms = T0 + 6 * 60 * MIN;
	ck_assert_int_eq(apply_warning(&a, T0), 0);
	ck_assert_int_eq(apply_warning(&b, T0), 0);
	ck_assert_int_eq(duty_ack("duty-twn-a", "w-old-a", 1, T0 + MIN), 0);
	uint64_t versions = stored_versions();
	ck_assert_uint_eq(versions, 2);
	int n = 0;
	ck_assert_int_eq(wf_store_update(fx.store, to_old_layout, &n), 0);
	ck_assert_int_gt(n, 10);
	const struct dsp_dbs *d = dsp_engine_dbs(fx.e);
	ck_assert_uint_eq(fx_count(d->warning), 2);
	ck_assert_uint_eq(fx_count(d->wlog), 0);
	ck_assert_int_eq(count_seq_keys(d->review) + count_seq_keys(d->delivery) +
				 count_seq_keys(d->duty) + count_seq_keys(d->dpend),
			 0);
	uint64_t dues = fx_count(d->due), pend = fx_count(d->dpend);
	ck_assert_uint_gt(pend, 0);

	/* the new binary on the old store */
	fx_reopen_engine();
	d = dsp_engine_dbs(fx.e);
	ck_assert_uint_eq(fx_count(d->warning), 0); /* moved to the log */
	ck_assert_uint_eq(fx_count(d->wlog), 2);
	ck_assert_uint_eq(fx_count(d->wver), 2);
	ck_assert_int_eq(count_seq_keys(d->review), (int)fx_count(d->review));
	ck_assert_int_eq(count_seq_keys(d->delivery), (int)fx_count(d->delivery));
	ck_assert_int_eq(count_seq_keys(d->duty), (int)fx_count(d->duty));
	ck_assert_int_eq(count_seq_keys(d->dpend), (int)pend);
	ck_assert_uint_eq(fx_count(d->dpend), pend);
	ck_assert_uint_eq(fx_count(d->due), dues); /* every deadline rebuilt, none doubled */
	fx_reopen_engine(); /* once: nothing changes the second time */
	d = dsp_engine_dbs(fx.e);
	ck_assert_uint_eq(fx_count(d->due), dues);
	ck_assert_uint_eq(fx_count(d->wlog), 2);
	ck_assert(has_record("w-old-a"));
	ck_assert(has_record("w-old-b"));
	ck_assert_int_eq(delivery("w-old-a", 1, "duty", "duty-twn-a", NULL), DSP_DLV_ACKED);
	ck_assert_int_eq(delivery("w-old-b", 1, "duty", "duty-twn-a", NULL), DSP_DLV_SENT);
	ck_assert_int_eq(delivery("w-old-b", 1, "cap", "spool", NULL), DSP_DLV_SENT);
	/* old duty records acknowledged now */
	ck_assert_int_eq(duty_ack("duty-twn-b", "w-old-a", 1, T0 + 2 * MIN), 0);
	ck_assert_int_eq(delivery("w-old-a", 1, "duty", "duty-twn-b", NULL), DSP_DLV_ACKED);
	ck_assert_int_eq(duty_ack("duty-twn-a", "w-old-b", 1, T0 + 2 * MIN), 0);
	ck_assert_int_eq(delivery("w-old-b", 1, "duty", "duty-twn-a", NULL), DSP_DLV_ACKED);
	/* a new version: its CAP Update refers to version 1, moved to d-wlog */
	Wf__V1__Warning b2 = mkw("w-old-b", 2, IV,
				 WF__V1__MSG_TYPE__MSG_TYPE_UPDATE, ACTUAL, T0 + 3 * MIN);
	b2.expires_ms = T0 + 6 * 60 * MIN;
	ck_assert_int_eq(apply_warning(&b2, T0 + 3 * MIN), 0);
	bool cap_refers = false;
	const struct dsp_out *all = NULL;
	size_t no = dsp_engine_outputs(fx.e, &all);
	for (size_t i = 0; i < no; i++)
		if (all[i].kind == DSP_OUT_FILE && strstr((const char *)all[i].payload, "<msgType>Update") &&
		    strstr((const char *)all[i].payload, "w-old-b.v1"))
			cap_refers = true;
	ck_assert_msg(cap_refers, "no CAP Update referring to w-old-b.v1");
	ck_assert_uint_eq(fx_count(d->wlog), 3); /* the new version after the two moved */
	ck_assert_uint_eq(stored_versions(), versions + 1); /* counted on from the raw record */
	/* the end of w-old-a and its purge take its moved version and raw records */
	ck_assert_int_eq(tick(T0 + 30 * MIN), 0);
	ck_assert_int_eq(tick(T0 + 90 * MIN), 0);
	ck_assert(!has_record("w-old-a"));
	ck_assert_int_eq(delivery("w-old-a", 1, "duty", "duty-twn-a", NULL), -1);
	ck_assert_uint_eq(fx_count(d->wlog), 2); /* w-old-b@1, @2 */
	ck_assert_uint_eq(fx_count(d->wver), 2);
	ck_assert_int_eq(count_seq_keys(d->delivery), (int)fx_count(d->delivery));
	ck_assert(has_record("w-old-b"));
	fx_close();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dispatch-store");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_codec_round_trip);
	tcase_add_test(tc, test_codec_compact_legacy_and_damage);
	tcase_add_test(tc, test_stats_cache_per_transaction);
	tcase_add_test(tc, test_warning_log);
	tcase_add_test(tc, test_keys);
	tcase_add_test(tc, test_put_indexed_new);
	tcase_add_test(tc, test_version_keys);
	tcase_add_test(tc, test_store_of_an_earlier_release);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
