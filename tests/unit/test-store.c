/* Unit tests for common/src/store.c (LMDB wrapper) */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wf/store.h"

static char tmpdir[256];
static char dir[512];

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)flag; (void)f;
	return remove(p);
}

/* unchecked fixture: runs in the parent, so cleanup happens even when a
 * test's child fails */
static void tc_setup(void)
{
	const char *base = getenv("TMPDIR");
	snprintf(tmpdir, sizeof tmpdir, "%s/wf-test-store-XXXXXX", base && *base ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void tc_teardown(void)
{
	nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* each test gets its own env directory (not yet existing: open creates it) */
static const char *env_dir(const char *name)
{
	snprintf(dir, sizeof dir, "%s/%s/sub", tmpdir, name);
	return dir;
}

static struct wf_store *open_at(const char *path, size_t map, size_t max)
{
	struct wf_store *s = NULL;
	struct wf_store_options o = { .path = path, .map_size = map, .max_map_size = max };
	int r = wf_store_open(&o, &s);
	ck_assert_msg(r == 0, "wf_store_open(%s) = %d (%s)", path, r, strerror(-r));
	return s;
}

static void put_str(struct wf_store *s, unsigned dbi, const char *k, const char *v)
{
	struct wf_txn *t = NULL;
	ck_assert_int_eq(wf_store_txn_begin(s, true, &t), 0);
	ck_assert_int_eq(wf_store_put(t, dbi, k, strlen(k), v, strlen(v) + 1, 0), 0);
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
}

START_TEST(test_open_reopen_persists)
{
	const char *p = env_dir("persist");
	struct wf_store *s = open_at(p, 0, 0);
	struct stat st;
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0700);
	ck_assert_uint_eq(wf_store_stale_readers(s), 0);

	unsigned a = 99, b = 99, a2 = 99;
	ck_assert_int_eq(wf_store_dbi(s, "alpha", 0, &a), 0);
	ck_assert_int_eq(wf_store_dbi(s, "beta", 0, &b), 0);
	ck_assert_uint_ne(a, b);
	ck_assert_int_eq(wf_store_dbi(s, "alpha", 0, &a2), 0);
	ck_assert_uint_eq(a, a2);
	put_str(s, a, "k", "in-alpha");
	put_str(s, b, "k", "in-beta");
	s = wf_store_close(s);
	ck_assert_ptr_null(s);

	s = open_at(p, 0, 0);
	unsigned x = 99;
	ck_assert_int_eq(wf_store_dbi(s, "nope", WF_STORE_DB_NOCREATE, &x), -ENOENT);
	ck_assert_uint_eq(x, 99); /* untouched on failure */
	ck_assert_int_eq(wf_store_dbi(s, "beta", WF_STORE_DB_NOCREATE, &b), 0);
	ck_assert_int_eq(wf_store_dbi(s, "alpha", 0, &a), 0);
	struct wf_txn *t = NULL;
	char buf[32];
	size_t n = 0;
	ck_assert_int_eq(wf_store_txn_begin(s, false, &t), 0);
	ck_assert(!wf_store_txn_writable(t));
	ck_assert_int_eq(wf_store_get_buf(t, a, "k", 1, buf, sizeof buf, &n), 0);
	ck_assert_str_eq(buf, "in-alpha");
	ck_assert_uint_eq(n, 9);
	ck_assert_int_eq(wf_store_get_buf(t, b, "k", 1, buf, sizeof buf, &n), 0);
	ck_assert_str_eq(buf, "in-beta");
	/* too small a buffer: -EMSGSIZE, nothing copied */
	memset(buf, 'x', sizeof buf);
	ck_assert_int_eq(wf_store_get_buf(t, b, "k", 1, buf, 3, &n), -EMSGSIZE);
	ck_assert_int_eq(buf[0], 'x');
	/* writes in a read transaction are refused */
	ck_assert_int_eq(wf_store_put(t, a, "z", 1, "1", 1, 0), -EINVAL);
	wf_store_txn_abort(t);
	wf_store_close(s);
	ck_assert_ptr_null(wf_store_close(NULL));
	ck_assert_ptr_null(wf_store_txn_abort(NULL));
}
END_TEST

START_TEST(test_bad_options)
{
	struct wf_store *s = (struct wf_store *)0x1;
	struct wf_store_options o = { .path = NULL };
	ck_assert_int_eq(wf_store_open(&o, &s), -EINVAL);
	o.path = "";
	ck_assert_int_eq(wf_store_open(&o, &s), -EINVAL);
	o.path = env_dir("bad");
	o.max_dbs = WF_STORE_MAX_DBS + 1;
	ck_assert_int_eq(wf_store_open(&o, &s), -EINVAL);
	ck_assert_ptr_eq(s, (struct wf_store *)0x1);
	/* a regular file where the directory should be */
	char f[600];
	snprintf(f, sizeof f, "%s/file", tmpdir);
	FILE *fp = fopen(f, "w");
	ck_assert_ptr_nonnull(fp);
	fclose(fp);
	o.path = f;
	o.max_dbs = 0;
	ck_assert_int_eq(wf_store_open(&o, &s), -ENOTDIR);
	/* a directory whose data.mdb is not an LMDB file */
	o.path = env_dir("garbage");
	s = open_at(o.path, 0, 0);
	wf_store_close(s);
	snprintf(f, sizeof f, "%s/data.mdb", o.path);
	fp = fopen(f, "w");
	ck_assert_ptr_nonnull(fp);
	for (int i = 0; i < 4096; i++)
		fputc('G', fp);
	fclose(fp);
	s = (struct wf_store *)0x1;
	int r = wf_store_open(&o, &s);
	ck_assert_msg(r == -EBADMSG || r == -EIO, "garbage file gave %d", r);
	ck_assert_ptr_eq(s, (struct wf_store *)0x1);
}
END_TEST

START_TEST(test_copy_out_survives_txn)
{
	struct wf_store *s = open_at(env_dir("copy"), 0, 0);
	unsigned d;
	ck_assert_int_eq(wf_store_dbi(s, "d", 0, &d), 0);
	put_str(s, d, "key", "value-that-outlives-the-txn");

	struct wf_txn *t = NULL;
	void *v = NULL;
	size_t n = 0;
	ck_assert_int_eq(wf_store_txn_begin(s, false, &t), 0);
	ck_assert_int_eq(wf_store_get(t, d, "key", 3, &v, &n), 0);
	wf_store_txn_abort(t);
	/* overwrite and grow the DB so the old page could be reused */
	for (int i = 0; i < 50; i++)
		put_str(s, d, "key", "something-else-entirely-xxxxxxxxxxxxxxxxxxxxxxxxx");
	ck_assert_uint_eq(n, strlen("value-that-outlives-the-txn") + 1);
	ck_assert_str_eq(v, "value-that-outlives-the-txn");
	free(v);

	/* zero-length value */
	ck_assert_int_eq(wf_store_txn_begin(s, true, &t), 0);
	ck_assert_int_eq(wf_store_put(t, d, "empty", 5, NULL, 0, 0), 0);
	ck_assert_int_eq(wf_store_get(t, d, "empty", 5, &v, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(v);
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
	wf_store_close(s);
}
END_TEST

START_TEST(test_error_mapping)
{
	struct wf_store *s = open_at(env_dir("errors"), 0, 0);
	unsigned d;
	ck_assert_int_eq(wf_store_dbi(s, "d", 0, &d), 0);
	struct wf_txn *t = NULL;
	void *v = (void *)0x1;
	ck_assert_int_eq(wf_store_txn_begin(s, true, &t), 0);
	ck_assert(wf_store_txn_writable(t));
	ck_assert_int_eq(wf_store_get(t, d, "missing", 7, &v, NULL), -ENOENT);
	ck_assert_ptr_eq(v, (void *)0x1);
	ck_assert_int_eq(wf_store_exists(t, d, "missing", 7), 0);
	ck_assert_int_eq(wf_store_del(t, d, "missing", 7), -ENOENT);
	ck_assert_int_eq(wf_store_put(t, d, "a", 1, "1", 1, WF_STORE_PUT_NOOVERWRITE), 0);
	ck_assert_int_eq(wf_store_exists(t, d, "a", 1), 1);
	ck_assert_int_eq(wf_store_put(t, d, "a", 1, "2", 1, WF_STORE_PUT_NOOVERWRITE), -EEXIST);
	/* plain put overwrites */
	ck_assert_int_eq(wf_store_put(t, d, "a", 1, "3", 1, 0), 0);
	/* append must sort after the last key */
	ck_assert_int_eq(wf_store_put(t, d, "c", 1, "x", 1, WF_STORE_PUT_APPEND), 0);
	ck_assert_int_eq(wf_store_put(t, d, "b", 1, "x", 1, WF_STORE_PUT_APPEND), -EEXIST);
	/* key length limits */
	char big[WF_STORE_MAX_KEY + 1];
	memset(big, 'k', sizeof big);
	ck_assert_int_eq(wf_store_put(t, d, big, sizeof big, "x", 1, 0), -EINVAL);
	ck_assert_int_eq(wf_store_put(t, d, big, WF_STORE_MAX_KEY, "x", 1, 0), 0);
	ck_assert_int_eq(wf_store_put(t, d, "", 0, "x", 1, 0), -EINVAL);
	ck_assert_int_eq(wf_store_put(t, d, "a", 1, "x", 1, 0x100), -EINVAL);
	char buf[4];
	size_t n = 0;
	ck_assert_int_eq(wf_store_get_buf(t, d, "a", 1, buf, sizeof buf, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(buf[0], '3');
	ck_assert_int_eq(wf_store_del(t, d, "a", 1), 0);
	ck_assert_int_eq(wf_store_exists(t, d, "a", 1), 0);
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
	/* a bad dbi handle */
	ck_assert_int_eq(wf_store_txn_begin(s, false, &t), 0);
	int r = wf_store_get(t, 77, "a", 1, &v, NULL);
	ck_assert_msg(r == -EINVAL || r == -EBADF, "bad dbi gave %d", r);
	wf_store_txn_abort(t);
	wf_store_close(s);
}
END_TEST

START_TEST(test_abort_discards)
{
	const char *p = env_dir("abort");
	struct wf_store *s = open_at(p, 0, 0);
	unsigned d;
	ck_assert_int_eq(wf_store_dbi(s, "d", 0, &d), 0);
	struct wf_txn *t = NULL;
	ck_assert_int_eq(wf_store_txn_begin(s, true, &t), 0);
	ck_assert_int_eq(wf_store_put(t, d, "gone", 4, "x", 1, 0), 0);
	ck_assert_int_eq(wf_store_exists(t, d, "gone", 4), 1);
	ck_assert_ptr_null(wf_store_txn_abort(t));
	ck_assert_int_eq(wf_store_txn_begin(s, false, &t), 0);
	ck_assert_int_eq(wf_store_exists(t, d, "gone", 4), 0);
	wf_store_txn_abort(t);
	wf_store_close(s);
	s = open_at(p, 0, 0);
	ck_assert_int_eq(wf_store_dbi(s, "d", 0, &d), 0);
	ck_assert_int_eq(wf_store_txn_begin(s, false, &t), 0);
	ck_assert_int_eq(wf_store_exists(t, d, "gone", 4), 0);
	uint64_t c = 99;
	ck_assert_int_eq(wf_store_count(t, d, &c), 0);
	ck_assert_uint_eq(c, 0);
	wf_store_txn_abort(t);
	wf_store_close(s);
}
END_TEST

/* Pre-commit hooks (wf_store_txn_hook): a hook's write lands in the
 * commit; an abort tells the hook and writes nothing; a failing hook
 * aborts the commit with its error; read transactions take none. */
struct hook_log {
	unsigned dbi;
	int commits, aborts, fail;
};

static int hook_fn(struct wf_txn *t, void *ud, bool commit)
{
	struct hook_log *h = ud;
	if (!commit) {
		h->aborts++;
		return 0;
	}
	h->commits++;
	if (h->fail)
		return h->fail;
	return wf_store_put(t, h->dbi, "hooked", 6, "y", 1, 0);
}

START_TEST(test_txn_hooks)
{
	struct wf_store *s = open_at(env_dir("hooks"), 0, 0);
	struct hook_log h = { 0 };
	ck_assert_int_eq(wf_store_dbi(s, "d", 0, &h.dbi), 0);
	struct wf_txn *t = NULL;

	/* commit: the hook runs once, in the transaction */
	ck_assert_int_eq(wf_store_txn_begin(s, true, &t), 0);
	ck_assert_int_eq(wf_store_txn_hook(t, hook_fn, &h), 0);
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
	ck_assert_int_eq(h.commits, 1);
	ck_assert_int_eq(h.aborts, 0);
	ck_assert_int_eq(wf_store_txn_begin(s, false, &t), 0);
	ck_assert_int_eq(wf_store_exists(t, h.dbi, "hooked", 6), 1);
	/* a read transaction takes no hook */
	ck_assert_int_eq(wf_store_txn_hook(t, hook_fn, &h), -EINVAL);
	wf_store_txn_abort(t);

	/* abort: told, nothing written */
	ck_assert_int_eq(wf_store_txn_begin(s, true, &t), 0);
	ck_assert_int_eq(wf_store_del(t, h.dbi, "hooked", 6), 0);
	ck_assert_int_eq(wf_store_put(t, h.dbi, "other", 5, "z", 1, 0), 0);
	ck_assert_int_eq(wf_store_txn_hook(t, hook_fn, &h), 0);
	wf_store_txn_abort(t);
	ck_assert_int_eq(h.commits, 1);
	ck_assert_int_eq(h.aborts, 1);

	/* a failing hook: the commit fails with its error, the transaction's
	 * writes are discarded, every hook hears of the abort */
	struct hook_log h2 = { .dbi = h.dbi };
	h.fail = -EIO;
	ck_assert_int_eq(wf_store_txn_begin(s, true, &t), 0);
	ck_assert_int_eq(wf_store_put(t, h.dbi, "other", 5, "z", 1, 0), 0);
	ck_assert_int_eq(wf_store_txn_hook(t, hook_fn, &h), 0);
	ck_assert_int_eq(wf_store_txn_hook(t, hook_fn, &h2), 0);
	ck_assert_int_eq(wf_store_txn_commit(t), -EIO);
	ck_assert_int_eq(h.commits, 2);
	ck_assert_int_eq(h.aborts, 2);
	ck_assert_int_eq(h2.commits, 0);
	ck_assert_int_eq(h2.aborts, 1);
	ck_assert_int_eq(wf_store_txn_begin(s, false, &t), 0);
	ck_assert_int_eq(wf_store_exists(t, h.dbi, "other", 5), 0);
	ck_assert_int_eq(wf_store_exists(t, h.dbi, "hooked", 6), 1);
	wf_store_txn_abort(t);

	/* at most WF_STORE_TXN_HOOKS, each run once */
	h.fail = 0;
	h.commits = h.aborts = 0;
	ck_assert_int_eq(wf_store_txn_begin(s, true, &t), 0);
	for (int i = 0; i < WF_STORE_TXN_HOOKS; i++)
		ck_assert_int_eq(wf_store_txn_hook(t, hook_fn, &h), 0);
	ck_assert_int_eq(wf_store_txn_hook(t, hook_fn, &h), -EBUSY);
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
	ck_assert_int_eq(h.commits, WF_STORE_TXN_HOOKS);
	ck_assert_int_eq(h.aborts, 0);
	wf_store_close(s);
}
END_TEST

struct fill {
	unsigned dbi;
	int records;
	size_t vsize;
	int runs;
};

static int fill_fn(struct wf_txn *t, void *ud)
{
	struct fill *f = ud;
	unsigned char k[8];
	char *v = malloc(f->vsize);
	if (!v)
		return -ENOMEM;
	f->runs++;
	int r = 0;
	for (int i = 0; i < f->records && r == 0; i++) {
		memset(v, 'a' + i % 26, f->vsize);
		wf_store_u64_to_key((uint64_t)i, k);
		r = wf_store_put(t, f->dbi, k, sizeof k, v, f->vsize, 0);
	}
	free(v);
	return r < 0 ? r : f->records;
}

START_TEST(test_map_grows)
{
	struct wf_store *s = open_at(env_dir("grow"), 64 << 10, 64 << 20);
	size_t before = wf_store_map_size(s);
	ck_assert_uint_le(before, 128 << 10);
	unsigned d;
	ck_assert_int_eq(wf_store_dbi(s, "big", 0, &d), 0);
	/* ~2 MiB into a 64 KiB map */
	struct fill f = { .dbi = d, .records = 500, .vsize = 4000 };
	ck_assert_int_eq(wf_store_update(s, fill_fn, &f), 500);
	ck_assert_int_gt(f.runs, 1); /* it really retried */
	ck_assert_uint_ge(wf_store_map_size(s), 2u << 20);
	ck_assert_uint_le(wf_store_map_size(s), 64u << 20);

	struct wf_txn *t = NULL;
	uint64_t c = 0;
	ck_assert_int_eq(wf_store_txn_begin(s, false, &t), 0);
	ck_assert_int_eq(wf_store_count(t, d, &c), 0);
	ck_assert_uint_eq(c, 500);
	unsigned char k[8];
	wf_store_u64_to_key(499, k);
	void *v = NULL;
	size_t n = 0;
	ck_assert_int_eq(wf_store_get(t, d, k, 8, &v, &n), 0);
	ck_assert_uint_eq(n, 4000);
	ck_assert_int_eq(((char *)v)[3999], 'a' + 499 % 26);
	free(v);
	wf_store_txn_abort(t);
	wf_store_close(s);
}
END_TEST

/* Past half of the map, the next update grows it first: no batch is run
 * twice for it. */
START_TEST(test_map_grows_early)
{
	struct wf_store *s = open_at(env_dir("early"), 1 << 20, 64 << 20);
	ck_assert_uint_eq(wf_store_map_size(s), 1 << 20);
	unsigned d;
	ck_assert_int_eq(wf_store_dbi(s, "big", 0, &d), 0);
	struct fill f = { .dbi = d, .records = 150, .vsize = 4000 }; /* ~600 KiB: fits */
	ck_assert_int_eq(wf_store_update(s, fill_fn, &f), 150);
	ck_assert_int_eq(f.runs, 1);
	ck_assert_uint_eq(wf_store_map_size(s), 1 << 20);
	struct fill small = { .dbi = d, .records = 1, .vsize = 10 };
	ck_assert_int_eq(wf_store_update(s, fill_fn, &small), 1);
	ck_assert_int_eq(small.runs, 1);
	ck_assert_uint_eq(wf_store_map_size(s), 2 << 20); /* grown before it */
	struct fill more = { .dbi = d, .records = 150, .vsize = 4001 }; /* rewrites: ~1.2 MiB in all */
	ck_assert_int_eq(wf_store_update(s, fill_fn, &more), 150);
	ck_assert_int_eq(more.runs, 1);
	wf_store_close(s);
}
END_TEST

static int own_enospc(struct wf_txn *t, void *ud)
{
	(void)t;
	(*(int *)ud)++;
	return -ENOSPC;
}

START_TEST(test_map_ceiling)
{
	struct wf_store *s = open_at(env_dir("ceiling"), 64 << 10, 256 << 10);
	unsigned d;
	ck_assert_int_eq(wf_store_dbi(s, "big", 0, &d), 0);
	struct fill f = { .dbi = d, .records = 300, .vsize = 4000 }; /* ~1.2 MiB */
	ck_assert_int_eq(wf_store_update(s, fill_fn, &f), -ENOSPC);
	ck_assert_uint_eq(wf_store_map_size(s), 256 << 10);
	/* nothing of the failed update is visible, small work still fits */
	struct fill small = { .dbi = d, .records = 3, .vsize = 100 };
	ck_assert_int_eq(wf_store_update(s, fill_fn, &small), 3);
	struct wf_txn *t = NULL;
	uint64_t c = 0;
	ck_assert_int_eq(wf_store_txn_begin(s, false, &t), 0);
	ck_assert_int_eq(wf_store_count(t, d, &c), 0);
	ck_assert_uint_eq(c, 3);
	wf_store_txn_abort(t);

	/* a callback's own -ENOSPC (a logical limit) is not a full map: no
	 * retry, no growth */
	struct wf_store *s2 = open_at(env_dir("ceiling2"), 64 << 10, 64 << 20);
	size_t before = wf_store_map_size(s2);
	int calls = 0;
	ck_assert_int_eq(wf_store_update(s2, own_enospc, &calls), -ENOSPC);
	ck_assert_int_eq(calls, 1);
	ck_assert_uint_eq(wf_store_map_size(s2), before);
	wf_store_close(s2);
	wf_store_close(s);
}
END_TEST

struct collect {
	uint64_t seen[64];
	int n;
	int stop_after;
};

static int collect_fn(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct collect *c = ud;
	ck_assert_uint_eq(klen, 8);
	ck_assert_uint_eq(vlen, 8);
	uint64_t k = wf_store_key_to_u64(key), v = wf_store_key_to_u64(val);
	ck_assert_uint_eq(k * 10, v);
	c->seen[c->n++] = k;
	if (c->stop_after && c->n == c->stop_after)
		return 7;
	return 0;
}

static int put_u64s(struct wf_txn *t, void *ud)
{
	unsigned dbi = *(unsigned *)ud;
	/* out of order, and across byte boundaries so only big-endian keys
	 * sort right */
	static const uint64_t ks[] = { 300, 1, 256, 255, 70000, 2, 65536, 9 };
	for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
		unsigned char k[8], v[8];
		wf_store_u64_to_key(ks[i], k);
		wf_store_u64_to_key(ks[i] * 10, v);
		int r = wf_store_put(t, dbi, k, 8, v, 8, 0);
		if (r < 0)
			return r;
	}
	return 0;
}

START_TEST(test_iteration_order)
{
	struct wf_store *s = open_at(env_dir("iter"), 0, 0);
	unsigned d;
	ck_assert_int_eq(wf_store_dbi(s, "n", 0, &d), 0);
	ck_assert_int_eq(wf_store_update(s, put_u64s, &d), 0);

	static const uint64_t want[] = { 1, 2, 9, 255, 256, 300, 65536, 70000 };
	struct wf_txn *t = NULL;
	ck_assert_int_eq(wf_store_txn_begin(s, false, &t), 0);
	struct collect c = { .n = 0 };
	ck_assert_int_eq(wf_store_foreach(t, d, NULL, 0, collect_fn, &c), 0);
	ck_assert_int_eq(c.n, 8);
	for (int i = 0; i < 8; i++)
		ck_assert_uint_eq(c.seen[i], want[i]);

	/* from a key that is absent: starts at the next one */
	unsigned char from[8];
	wf_store_u64_to_key(10, from);
	struct collect c2 = { .n = 0, .stop_after = 2 };
	ck_assert_int_eq(wf_store_foreach(t, d, from, 8, collect_fn, &c2), 7);
	ck_assert_int_eq(c2.n, 2);
	ck_assert_uint_eq(c2.seen[0], 255);
	ck_assert_uint_eq(c2.seen[1], 256);

	unsigned char k[8];
	size_t kl = 0;
	ck_assert_int_eq(wf_store_first_key(t, d, k, sizeof k, &kl), 0);
	ck_assert_uint_eq(kl, 8);
	ck_assert_uint_eq(wf_store_key_to_u64(k), 1);
	ck_assert_int_eq(wf_store_last_key(t, d, k, sizeof k, &kl), 0);
	ck_assert_uint_eq(wf_store_key_to_u64(k), 70000);
	ck_assert_int_eq(wf_store_last_key(t, d, k, 4, &kl), -EMSGSIZE);
	wf_store_txn_abort(t);

	/* delete a range [2, 300] */
	unsigned e;
	ck_assert_int_eq(wf_store_dbi(s, "empty", 0, &e), 0);
	ck_assert_int_eq(wf_store_txn_begin(s, true, &t), 0);
	ck_assert_int_eq(wf_store_first_key(t, e, k, sizeof k, &kl), -ENOENT);
	unsigned char lo[8], hi[8];
	wf_store_u64_to_key(2, lo);
	wf_store_u64_to_key(300, hi);
	uint64_t deleted = 0, bytes = 0;
	ck_assert_int_eq(wf_store_del_range(t, d, lo, 8, hi, 8, &deleted, &bytes), 0);
	ck_assert_uint_eq(deleted, 5);
	ck_assert_uint_eq(bytes, 5 * 16);
	/* an empty range deletes nothing */
	wf_store_u64_to_key(301, lo);
	wf_store_u64_to_key(65535, hi);
	ck_assert_int_eq(wf_store_del_range(t, d, lo, 8, hi, 8, &deleted, NULL), 0);
	ck_assert_uint_eq(deleted, 0);
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
	ck_assert_int_eq(wf_store_txn_begin(s, false, &t), 0);
	struct collect c3 = { .n = 0 };
	ck_assert_int_eq(wf_store_foreach(t, d, NULL, 0, collect_fn, &c3), 0);
	ck_assert_int_eq(c3.n, 3);
	ck_assert_uint_eq(c3.seen[0], 1);
	ck_assert_uint_eq(c3.seen[1], 65536);
	ck_assert_uint_eq(c3.seen[2], 70000);
	wf_store_txn_abort(t);
	wf_store_close(s);
}
END_TEST

static int view_count(struct wf_txn *t, void *ud)
{
	uint64_t c = 0;
	int r = wf_store_count(t, *(unsigned *)ud, &c);
	return r < 0 ? r : (int)c;
}

START_TEST(test_view)
{
	struct wf_store *s = open_at(env_dir("view"), 0, 0);
	unsigned d;
	ck_assert_int_eq(wf_store_dbi(s, "n", 0, &d), 0);
	ck_assert_int_eq(wf_store_update(s, put_u64s, &d), 0);
	ck_assert_int_eq(wf_store_view(s, view_count, &d), 8);
	wf_store_close(s);
}
END_TEST

/* Waits up to 20 s for one byte on FD. */
static int wait_byte(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;
	if (poll(&p, 1, 20000) != 1)
		return -ETIMEDOUT;
	return read(fd, &c, 1) == 1 ? 0 : -EIO;
}

START_TEST(test_stale_reader_cleared)
{
	const char *p = env_dir("stale");
	struct wf_store *s = open_at(p, 0, 0);
	unsigned d;
	ck_assert_int_eq(wf_store_dbi(s, "d", 0, &d), 0);
	s = wf_store_close(s);

	int hold_ready[2], hold_go[2], rd_ready[2];
	ck_assert_int_eq(pipe(hold_ready), 0);
	ck_assert_int_eq(pipe(hold_go), 0);
	ck_assert_int_eq(pipe(rd_ready), 0);

	/* holder: keeps the env open so the lock file (and its reader table)
	 * is not reinitialized when the parent opens it */
	pid_t holder = fork();
	ck_assert_int_ge(holder, 0);
	if (holder == 0) {
		struct wf_store *hs = NULL;
		struct wf_store_options o = { .path = p };
		if (wf_store_open(&o, &hs) < 0)
			_exit(2);
		(void)!write(hold_ready[1], "h", 1);
		wait_byte(hold_go[0]);
		wf_store_close(hs);
		_exit(0);
	}
	ck_assert_int_eq(wait_byte(hold_ready[0]), 0);

	/* reader: opens a read transaction and is killed holding it */
	pid_t reader = fork();
	ck_assert_int_ge(reader, 0);
	if (reader == 0) {
		struct wf_store *rs = NULL;
		struct wf_txn *t = NULL;
		struct wf_store_options o = { .path = p };
		if (wf_store_open(&o, &rs) < 0 || wf_store_txn_begin(rs, false, &t) < 0)
			_exit(2);
		(void)!write(rd_ready[1], "r", 1);
		for (int i = 0; i < 600; i++)
			usleep(100000); /* bounded: killed long before */
		_exit(3);
	}
	ck_assert_int_eq(wait_byte(rd_ready[0]), 0);
	ck_assert_int_eq(kill(reader, SIGKILL), 0);
	int status = 0;
	ck_assert_int_eq(waitpid(reader, &status, 0), reader);
	ck_assert(WIFSIGNALED(status));

	s = open_at(p, 0, 0);
	ck_assert_uint_ge(wf_store_stale_readers(s), 1);
	unsigned again = 99;
	ck_assert_int_eq(wf_store_reader_check(s, &again), 0);
	ck_assert_uint_eq(again, 0);
	wf_store_close(s);

	ck_assert_int_eq(write(hold_go[1], "g", 1), 1);
	ck_assert_int_eq(waitpid(holder, &status, 0), holder);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

START_TEST(test_u64_keys)
{
	unsigned char k[8];
	wf_store_u64_to_key(0x0102030405060708ull, k);
	ck_assert_int_eq(k[0], 1);
	ck_assert_int_eq(k[7], 8);
	ck_assert_uint_eq(wf_store_key_to_u64(k), 0x0102030405060708ull);
	wf_store_u64_to_key(UINT64_MAX, k);
	ck_assert_uint_eq(wf_store_key_to_u64(k), UINT64_MAX);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("core");
	tcase_add_unchecked_fixture(tc, tc_setup, tc_teardown);
	tcase_add_test(tc, test_open_reopen_persists);
	tcase_add_test(tc, test_bad_options);
	tcase_add_test(tc, test_copy_out_survives_txn);
	tcase_add_test(tc, test_error_mapping);
	tcase_add_test(tc, test_abort_discards);
	tcase_add_test(tc, test_txn_hooks);
	tcase_add_test(tc, test_map_grows);
	tcase_add_test(tc, test_map_grows_early);
	tcase_add_test(tc, test_map_ceiling);
	tcase_add_test(tc, test_iteration_order);
	tcase_add_test(tc, test_view);
	tcase_add_test(tc, test_stale_reader_cleared);
	tcase_add_test(tc, test_u64_keys);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
