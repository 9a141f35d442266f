/* store: see wf/store.h */
#include "wf/store.h"

#include <errno.h>
#include <limits.h>
#include <lmdb.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_MAP_SIZE   ((size_t)16 << 20)
#if SIZE_MAX > 0xffffffffu
#define DEFAULT_MAX_MAP    ((size_t)4 << 30)
#else
#define DEFAULT_MAX_MAP    ((size_t)1 << 30)
#endif
#define DEFAULT_MAX_DBS    64u
#define DEFAULT_READERS    126u
#define MAX_UPDATE_RETRIES 64

struct wf_store {
	MDB_env *env;
	size_t map_size;
	size_t max_map_size;
	size_t page_size;
	unsigned stale_readers;
	atomic_int active; /* open transactions of this handle */
};

struct txn_hook {
	wf_store_txn_hook_fn fn;
	void *ud;
};

struct wf_txn {
	struct wf_store *s;
	MDB_txn *txn;
	bool write;
	int sticky; /* -ENOSPC once a write hit MDB_MAP_FULL */
	size_t n_hooks;
	struct txn_hook hooks[WF_STORE_TXN_HOOKS];
};

/* The one place LMDB codes become errno values (table in wf/store.h). */
static int map_err(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return -ENOENT;
	case MDB_KEYEXIST:
		return -EEXIST;
	case MDB_MAP_FULL:
		return -ENOSPC;
	case MDB_READERS_FULL:
	case MDB_TLS_FULL:
	case MDB_MAP_RESIZED:
		return -EAGAIN;
	case MDB_DBS_FULL:
		return -EMFILE;
	case MDB_TXN_FULL:
		return -E2BIG;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_PANIC:
	case MDB_PAGE_FULL:
	case MDB_CURSOR_FULL:
		return -EIO;
	case MDB_VERSION_MISMATCH:
	case MDB_INVALID:
		return -EBADMSG;
	case MDB_BAD_VALSIZE:
	case MDB_INCOMPATIBLE:
	case MDB_BAD_TXN:
	case MDB_BAD_RSLOT:
		return -EINVAL;
	case MDB_BAD_DBI:
		return -EBADF;
	default:
		return rc > 0 ? -rc : -EIO;
	}
}

/* mkdir -p with mode 0700 for the components that are missing. */
static int make_dirs(const char *path)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof buf)
		return -EINVAL;
	memcpy(buf, path, n + 1);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char c = buf[i];
		buf[i] = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -errno;
		buf[i] = c;
	}
	struct stat st;
	if (stat(buf, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	return 0;
}

int wf_store_open(const struct wf_store_options *o, struct wf_store **ret)
{
	struct wf_store *s = NULL;
	int r;

	if (!o || !o->path || !o->path[0] || !ret)
		return -EINVAL;
	if (o->max_dbs > WF_STORE_MAX_DBS || o->max_readers > WF_STORE_MAX_READERS)
		return -EINVAL;
	r = make_dirs(o->path);
	if (r < 0)
		return r;

	s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	atomic_init(&s->active, 0);
	s->map_size = o->map_size ? o->map_size : DEFAULT_MAP_SIZE;
	s->max_map_size = o->max_map_size ? o->max_map_size : DEFAULT_MAX_MAP;
	if (s->max_map_size < s->map_size)
		s->max_map_size = s->map_size;

	r = map_err(mdb_env_create(&s->env));
	if (r < 0) {
		s->env = NULL;
		goto fail;
	}
	r = map_err(mdb_env_set_maxdbs(s->env, o->max_dbs ? o->max_dbs : DEFAULT_MAX_DBS));
	if (r < 0)
		goto fail;
	r = map_err(mdb_env_set_maxreaders(s->env, o->max_readers ? o->max_readers : DEFAULT_READERS));
	if (r < 0)
		goto fail;
	r = map_err(mdb_env_set_mapsize(s->env, s->map_size));
	if (r < 0)
		goto fail;
	r = map_err(mdb_env_open(s->env, o->path, MDB_NOTLS | (o->nosync ? MDB_NOSYNC : 0), 0600));
	if (r < 0)
		goto fail;

	MDB_envinfo info;
	r = map_err(mdb_env_info(s->env, &info));
	if (r < 0)
		goto fail;
	s->map_size = info.me_mapsize;
	if (s->max_map_size < s->map_size)
		s->max_map_size = s->map_size;
	MDB_stat st;
	r = map_err(mdb_env_stat(s->env, &st));
	if (r < 0)
		goto fail;
	s->page_size = st.ms_psize;

	int dead = 0;
	r = map_err(mdb_reader_check(s->env, &dead));
	if (r < 0)
		goto fail;
	s->stale_readers = dead > 0 ? (unsigned)dead : 0;

	*ret = s;
	return 0;
fail:
	if (s->env)
		mdb_env_close(s->env);
	free(s);
	return r;
}

struct wf_store *wf_store_close(struct wf_store *s)
{
	if (!s)
		return NULL;
	mdb_env_close(s->env);
	free(s);
	return NULL;
}

unsigned wf_store_stale_readers(const struct wf_store *s)
{
	return s ? s->stale_readers : 0;
}

int wf_store_reader_check(struct wf_store *s, unsigned *ret_cleared)
{
	int dead = 0;

	if (!s)
		return -EINVAL;
	int r = map_err(mdb_reader_check(s->env, &dead));
	if (r < 0)
		return r;
	if (ret_cleared)
		*ret_cleared = dead > 0 ? (unsigned)dead : 0;
	return 0;
}

size_t wf_store_map_size(const struct wf_store *s)
{
	return s ? s->map_size : 0;
}

/* Doubles the map, up to the ceiling. Only with no transaction open. */
static int grow(struct wf_store *s)
{
	if (atomic_load(&s->active) != 0)
		return -ENOSPC;
	if (s->map_size >= s->max_map_size)
		return -ENOSPC;
	size_t next = s->map_size > s->max_map_size / 2 ? s->max_map_size : s->map_size * 2;
	int r = map_err(mdb_env_set_mapsize(s->env, next));
	if (r < 0)
		return r;
	MDB_envinfo info;
	if (mdb_env_info(s->env, &info) == MDB_SUCCESS)
		s->map_size = info.me_mapsize;
	else
		s->map_size = next;
	return 0;
}

int wf_store_txn_begin(struct wf_store *s, bool write, struct wf_txn **ret)
{
	if (!s || !ret)
		return -EINVAL;
	struct wf_txn *t = calloc(1, sizeof *t);
	if (!t)
		return -ENOMEM;
	t->s = s;
	t->write = write;

	int rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
	if (rc == MDB_MAP_RESIZED && atomic_load(&s->active) == 0) {
		/* another process grew the map: adopt its size, then retry */
		rc = mdb_env_set_mapsize(s->env, 0);
		if (rc == MDB_SUCCESS) {
			MDB_envinfo info;
			if (mdb_env_info(s->env, &info) == MDB_SUCCESS)
				s->map_size = info.me_mapsize;
			if (s->max_map_size < s->map_size)
				s->max_map_size = s->map_size;
			rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
		}
	}
	if (rc != MDB_SUCCESS) {
		free(t);
		return map_err(rc);
	}
	atomic_fetch_add(&s->active, 1);
	*ret = t;
	return 0;
}

static void txn_done(struct wf_txn *t)
{
	atomic_fetch_sub(&t->s->active, 1);
	free(t);
}

int wf_store_txn_hook(struct wf_txn *t, wf_store_txn_hook_fn fn, void *ud)
{
	if (!t || !fn || !t->write)
		return -EINVAL;
	if (t->n_hooks == WF_STORE_TXN_HOOKS)
		return -EBUSY;
	t->hooks[t->n_hooks++] = (struct txn_hook){ fn, ud };
	return 0;
}

/* Runs T's hooks once: with COMMIT, until one fails (the rest, and the
 * failed one, are then told of the abort); without, all of them. */
static int run_hooks(struct wf_txn *t, bool commit)
{
	size_t i = 0;
	int r = 0;
	for (; commit && i < t->n_hooks && r == 0; i++)
		r = t->hooks[i].fn(t, t->hooks[i].ud, true);
	if (r < 0)
		i--; /* the one that failed hears of the abort too */
	for (; i < t->n_hooks; i++)
		(void)t->hooks[i].fn(t, t->hooks[i].ud, false);
	t->n_hooks = 0;
	return r;
}

int wf_store_txn_commit(struct wf_txn *t)
{
	if (!t)
		return -EINVAL;
	if (t->n_hooks > 0) {
		int h = run_hooks(t, !t->sticky);
		if (h < 0 && !t->sticky)
			t->sticky = h;
	}
	if (t->sticky) {
		int r = t->sticky;
		mdb_txn_abort(t->txn);
		txn_done(t);
		return r;
	}
	int r = map_err(mdb_txn_commit(t->txn));
	txn_done(t);
	return r;
}

struct wf_txn *wf_store_txn_abort(struct wf_txn *t)
{
	if (!t)
		return NULL;
	run_hooks(t, false);
	mdb_txn_abort(t->txn);
	txn_done(t);
	return NULL;
}

bool wf_store_txn_writable(const struct wf_txn *t)
{
	return t && t->write;
}

static bool key_ok(const void *key, size_t klen)
{
	return key && klen >= 1 && klen <= WF_STORE_MAX_KEY;
}

/* Records a map-full error so that commit and wf_store_update know. */
static int write_err(struct wf_txn *t, int rc)
{
	int r = map_err(rc);
	if (rc == MDB_MAP_FULL)
		t->sticky = -ENOSPC;
	return r;
}

static int lookup(struct wf_txn *t, unsigned dbi, const void *key, size_t klen, MDB_val *v)
{
	if (!t || !key_ok(key, klen))
		return -EINVAL;
	MDB_val k = { .mv_size = klen, .mv_data = (void *)key };
	return map_err(mdb_get(t->txn, dbi, &k, v));
}

int wf_store_get(struct wf_txn *t, unsigned dbi, const void *key, size_t klen,
		 void **ret_val, size_t *ret_len)
{
	MDB_val v;
	if (!ret_val)
		return -EINVAL;
	int r = lookup(t, dbi, key, klen, &v);
	if (r < 0)
		return r;
	void *copy = malloc(v.mv_size ? v.mv_size : 1);
	if (!copy)
		return -ENOMEM;
	if (v.mv_size)
		memcpy(copy, v.mv_data, v.mv_size);
	*ret_val = copy;
	if (ret_len)
		*ret_len = v.mv_size;
	return 0;
}

int wf_store_get_buf(struct wf_txn *t, unsigned dbi, const void *key, size_t klen,
		     void *buf, size_t size, size_t *ret_len)
{
	MDB_val v;
	if (!buf && size)
		return -EINVAL;
	int r = lookup(t, dbi, key, klen, &v);
	if (r < 0)
		return r;
	if (v.mv_size > size)
		return -EMSGSIZE;
	if (v.mv_size)
		memcpy(buf, v.mv_data, v.mv_size);
	if (ret_len)
		*ret_len = v.mv_size;
	return 0;
}

int wf_store_exists(struct wf_txn *t, unsigned dbi, const void *key, size_t klen)
{
	MDB_val v;
	int r = lookup(t, dbi, key, klen, &v);
	if (r == -ENOENT)
		return 0;
	return r < 0 ? r : 1;
}

int wf_store_put(struct wf_txn *t, unsigned dbi, const void *key, size_t klen,
		 const void *val, size_t vlen, unsigned flags)
{
	if (!t || !t->write || !key_ok(key, klen) || (!val && vlen))
		return -EINVAL;
	if (flags & ~(unsigned)(WF_STORE_PUT_NOOVERWRITE | WF_STORE_PUT_APPEND))
		return -EINVAL;
	if (t->sticky)
		return t->sticky;
	unsigned mf = 0;
	if (flags & WF_STORE_PUT_NOOVERWRITE)
		mf |= MDB_NOOVERWRITE;
	if (flags & WF_STORE_PUT_APPEND)
		mf |= MDB_APPEND;
	MDB_val k = { .mv_size = klen, .mv_data = (void *)key };
	MDB_val v = { .mv_size = vlen, .mv_data = (void *)(val ? val : "") };
	return write_err(t, mdb_put(t->txn, dbi, &k, &v, mf));
}

int wf_store_del(struct wf_txn *t, unsigned dbi, const void *key, size_t klen)
{
	if (!t || !t->write || !key_ok(key, klen))
		return -EINVAL;
	if (t->sticky)
		return t->sticky;
	MDB_val k = { .mv_size = klen, .mv_data = (void *)key };
	return write_err(t, mdb_del(t->txn, dbi, &k, NULL));
}

int wf_store_del_range(struct wf_txn *t, unsigned dbi, const void *lo, size_t lolen,
		       const void *hi, size_t hilen, uint64_t *ret_deleted, uint64_t *ret_bytes)
{
	MDB_cursor *c = NULL;
	uint64_t deleted = 0, bytes = 0;

	if (!t || !t->write || !key_ok(lo, lolen) || !key_ok(hi, hilen))
		return -EINVAL;
	if (t->sticky)
		return t->sticky;
	int r = map_err(mdb_cursor_open(t->txn, dbi, &c));
	if (r < 0)
		return r;
	MDB_val hk = { .mv_size = hilen, .mv_data = (void *)hi };
	MDB_val k = { .mv_size = lolen, .mv_data = (void *)lo }, v;
	int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	while (rc == MDB_SUCCESS && mdb_cmp(t->txn, dbi, &k, &hk) <= 0) {
		uint64_t sz = k.mv_size + v.mv_size;
		rc = mdb_cursor_del(c, 0);
		if (rc != MDB_SUCCESS)
			break;
		deleted++;
		bytes += sz;
		/* after a delete, MDB_NEXT yields the record that moved into
		 * the cursor's position */
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
		return write_err(t, rc);
	if (ret_deleted)
		*ret_deleted = deleted;
	if (ret_bytes)
		*ret_bytes = bytes;
	return 0;
}

int wf_store_foreach(struct wf_txn *t, unsigned dbi, const void *from, size_t from_len,
		     int (*fn)(void *ud, const void *key, size_t klen, const void *val, size_t vlen),
		     void *ud)
{
	MDB_cursor *c = NULL;

	if (!t || !fn || (from && !key_ok(from, from_len)))
		return -EINVAL;
	int r = map_err(mdb_cursor_open(t->txn, dbi, &c));
	if (r < 0)
		return r;
	MDB_val k = { .mv_size = from_len, .mv_data = (void *)from }, v;
	int rc = mdb_cursor_get(c, &k, &v, from ? MDB_SET_RANGE : MDB_FIRST);
	r = 0;
	while (rc == MDB_SUCCESS) {
		r = fn(ud, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
		if (r != 0)
			break;
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	if (r != 0)
		return r;
	if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
		return map_err(rc);
	return 0;
}

static int edge_key(struct wf_txn *t, unsigned dbi, MDB_cursor_op op, void *buf, size_t size,
		    size_t *ret_len)
{
	MDB_cursor *c = NULL;
	MDB_val k, v;

	if (!t || (!buf && size) || !ret_len)
		return -EINVAL;
	int r = map_err(mdb_cursor_open(t->txn, dbi, &c));
	if (r < 0)
		return r;
	r = map_err(mdb_cursor_get(c, &k, &v, op));
	if (r == 0 && k.mv_size > size)
		r = -EMSGSIZE;
	if (r == 0) {
		memcpy(buf, k.mv_data, k.mv_size);
		*ret_len = k.mv_size;
	}
	mdb_cursor_close(c);
	return r;
}

int wf_store_first_key(struct wf_txn *t, unsigned dbi, void *buf, size_t size, size_t *ret_len)
{
	return edge_key(t, dbi, MDB_FIRST, buf, size, ret_len);
}

int wf_store_last_key(struct wf_txn *t, unsigned dbi, void *buf, size_t size, size_t *ret_len)
{
	return edge_key(t, dbi, MDB_LAST, buf, size, ret_len);
}

int wf_store_count(struct wf_txn *t, unsigned dbi, uint64_t *ret_count)
{
	MDB_stat st;

	if (!t || !ret_count)
		return -EINVAL;
	int r = map_err(mdb_stat(t->txn, dbi, &st));
	if (r < 0)
		return r;
	*ret_count = st.ms_entries;
	return 0;
}

int wf_store_dbi(struct wf_store *s, const char *name, unsigned flags, unsigned *ret_dbi)
{
	struct wf_txn *t = NULL;
	MDB_dbi dbi;

	if (!s || !name || !ret_dbi || flags & ~(unsigned)WF_STORE_DB_NOCREATE)
		return -EINVAL;
	size_t n = strlen(name);
	if (n == 0 || n > 255)
		return -EINVAL;
	int r = wf_store_txn_begin(s, true, &t);
	if (r < 0)
		return r;
	r = map_err(mdb_dbi_open(t->txn, name, flags & WF_STORE_DB_NOCREATE ? 0 : MDB_CREATE, &dbi));
	if (r < 0) {
		wf_store_txn_abort(t);
		return r;
	}
	r = wf_store_txn_commit(t);
	if (r < 0)
		return r;
	*ret_dbi = dbi;
	return 0;
}

/* Grows the map ahead of need: once the file's pages reach half of it (a
 * write transaction that hits the end is aborted and run again, its whole
 * batch of work lost). Only when no transaction is open; a failure is
 * left to the full-map path. */
static void grow_early(struct wf_store *s)
{
	MDB_envinfo info;
	if (s->map_size >= s->max_map_size || atomic_load(&s->active) != 0 ||
	    mdb_env_info(s->env, &info) != MDB_SUCCESS)
		return;
	if (((size_t)info.me_last_pgno + 1) * s->page_size > s->map_size / 2)
		(void)grow(s);
}

int wf_store_update(struct wf_store *s, int (*fn)(struct wf_txn *t, void *ud), void *ud)
{
	if (!s || !fn)
		return -EINVAL;
	grow_early(s);
	for (int attempt = 0; attempt < MAX_UPDATE_RETRIES; attempt++) {
		struct wf_txn *t = NULL;
		int r = wf_store_txn_begin(s, true, &t);
		if (r < 0)
			return r;
		int v = fn(t, ud);
		if (v < 0) {
			/* retry only for a real map-full, not for a caller's own
			 * -ENOSPC (e.g. a logical limit) */
			bool full = t->sticky == -ENOSPC;
			wf_store_txn_abort(t);
			if (!full)
				return v;
		} else {
			r = wf_store_txn_commit(t);
			if (r == 0)
				return v;
			if (r != -ENOSPC)
				return r;
		}
		r = grow(s);
		if (r < 0)
			return r;
	}
	return -ENOSPC;
}

int wf_store_view(struct wf_store *s, int (*fn)(struct wf_txn *t, void *ud), void *ud)
{
	struct wf_txn *t = NULL;

	if (!s || !fn)
		return -EINVAL;
	int r = wf_store_txn_begin(s, false, &t);
	if (r < 0)
		return r;
	r = fn(t, ud);
	wf_store_txn_abort(t);
	return r;
}

void wf_store_u64_to_key(uint64_t v, unsigned char key[8])
{
	for (int i = 7; i >= 0; i--) {
		key[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

uint64_t wf_store_key_to_u64(const unsigned char key[8])
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | key[i];
	return v;
}
