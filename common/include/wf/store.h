/* store: a thin LMDB wrapper. One environment (a directory holding data.mdb
 * and lock.mdb) with named databases, transactions, copy-out reads, and
 * automatic map growth for write work run through wf_store_update().
 *
 * Errors are negative errno; LMDB's own codes are translated once, here:
 *   MDB_NOTFOUND                        -> -ENOENT
 *   MDB_KEYEXIST                        -> -EEXIST
 *   MDB_MAP_FULL                        -> -ENOSPC (wf_store_update grows the map)
 *   MDB_READERS_FULL, MDB_TLS_FULL      -> -EAGAIN (too many open read transactions)
 *   MDB_DBS_FULL                        -> -EMFILE (raise max_dbs)
 *   MDB_TXN_FULL                        -> -E2BIG  (too much in one transaction: split it)
 *   MDB_CORRUPTED, MDB_PAGE_NOTFOUND,
 *   MDB_PANIC, MDB_PAGE_FULL,
 *   MDB_CURSOR_FULL                     -> -EIO    (damaged file or fatal env error)
 *   MDB_VERSION_MISMATCH, MDB_INVALID   -> -EBADMSG (not an LMDB file of our version)
 *   MDB_BAD_VALSIZE, MDB_INCOMPATIBLE,
 *   MDB_BAD_TXN, MDB_BAD_RSLOT          -> -EINVAL
 *   MDB_BAD_DBI                         -> -EBADF
 *   positive codes (system errno)       -> -errno
 *
 * Threads: the environment is opened with MDB_NOTLS, so a read transaction
 * is not tied to the thread that began it. A transaction itself is used by
 * one thread at a time. At most one write transaction runs at a time (LMDB
 * serializes writers); do not begin a second write transaction in a thread
 * that already holds one (it deadlocks).
 *
 * Processes: never open the same store twice in one process, and never use
 * a store inherited across fork(): open a new one in the child. */
#ifndef WF_STORE_H
#define WF_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wf_store;
struct wf_txn;

/* Hard limits. */
#define WF_STORE_MAX_DBS        128u
#define WF_STORE_MAX_READERS    4096u
#define WF_STORE_MAX_KEY        511u   /* LMDB's compiled-in key limit */

struct wf_store_options {
	/* Directory of the environment; created (mode 0700, with missing
	 * parents) if it does not exist. Required. */
	const char *path;
	/* Initial map size in bytes (0: 16 MiB). Rounded up to a page. An
	 * existing larger file keeps its size. */
	size_t map_size;
	/* Ceiling for automatic growth in bytes (0: 4 GiB on 64-bit hosts,
	 * 1 GiB otherwise). Never below map_size. */
	size_t max_map_size;
	/* Named databases the environment may hold (0: 64; at most
	 * WF_STORE_MAX_DBS). */
	unsigned max_dbs;
	/* Concurrent read transactions, all processes together (0: 126, LMDB's
	 * default; at most WF_STORE_MAX_READERS). */
	unsigned max_readers;
	/* TESTS AND BENCHMARKS ONLY: MDB_NOSYNC. Commits are not flushed to
	 * disk, so a power loss or kernel crash may lose committed
	 * transactions (a killed process loses nothing: the page cache
	 * survives it). Never set in production: the delivery guarantee
	 * (docs/delivery.md) assumes durable commits. */
	bool nosync;
};

/* Opens (creating if needed) the environment at o->path and runs LMDB's
 * stale-reader check (slots left by killed processes). On success stores a
 * new handle in *ret, which the caller closes with wf_store_close().
 * Returns -EINVAL for bad options, otherwise an error listed above. */
int wf_store_open(const struct wf_store_options *o, struct wf_store **ret);

/* Closes S. All its transactions must have ended. Accepts NULL; returns
 * NULL. */
struct wf_store *wf_store_close(struct wf_store *s);

/* Number of stale reader slots (of dead processes) cleared when S was
 * opened. This function can't fail. */
unsigned wf_store_stale_readers(const struct wf_store *s);

/* Runs the stale-reader check again (e.g. periodically in a long-running
 * daemon); stores the number of slots cleared in *ret_cleared (may be
 * NULL). */
int wf_store_reader_check(struct wf_store *s, unsigned *ret_cleared);

/* Current map size in bytes. This function can't fail. */
size_t wf_store_map_size(const struct wf_store *s);

/* Flags for wf_store_dbi(). */
enum {
	WF_STORE_DB_NOCREATE = 1u << 0, /* -ENOENT instead of creating it */
};

/* Opens the named database NAME (created unless WF_STORE_DB_NOCREATE) and
 * stores its handle in *ret_dbi. Handles stay valid until the store is
 * closed; opening the same name again returns the same handle. Runs its own
 * write transaction: do not call while this thread holds a write
 * transaction. NAME is 1..255 bytes. */
int wf_store_dbi(struct wf_store *s, const char *name, unsigned flags, unsigned *ret_dbi);

/* Begins a transaction (read-write if WRITE) and stores it in *ret. It must
 * end with wf_store_txn_commit() or wf_store_txn_abort(). A read
 * transaction pins the pages it sees: keep it short. */
int wf_store_txn_begin(struct wf_store *s, bool write, struct wf_txn **ret);

/* Commits T and frees it, whatever the result (T is invalid afterwards).
 * Returns -ENOSPC if the map filled up (during this commit or an earlier
 * put in T), else an error listed above. Committing a read transaction
 * just ends it. */
int wf_store_txn_commit(struct wf_txn *t);

/* A hook of write transaction T: called once, with COMMIT true just before
 * T commits (it may still read and write T; a negative return aborts T and
 * wf_store_txn_commit returns it), or with COMMIT false when T is aborted
 * instead (its return is ignored). For state a caller keeps in memory for
 * the length of a transaction and writes once, e.g. a counter record
 * touched by every message of a batch. */
#define WF_STORE_TXN_HOOKS 4
typedef int (*wf_store_txn_hook_fn)(struct wf_txn *t, void *ud, bool commit);
/* Adds hook FN(T, UD, commit) to T: 0, -EINVAL (no FN, not a write
 * transaction), -EBUSY (WF_STORE_TXN_HOOKS already). */
int wf_store_txn_hook(struct wf_txn *t, wf_store_txn_hook_fn fn, void *ud);

/* Discards T's changes and frees it. Accepts NULL; returns NULL. */
struct wf_txn *wf_store_txn_abort(struct wf_txn *t);

/* Whether T is a write transaction. This function can't fail. */
bool wf_store_txn_writable(const struct wf_txn *t);

/* Looks KEY up and stores a malloc'd copy of its value in *ret_val (the
 * caller frees it; a zero-length value gives a valid 1-byte allocation)
 * and its length in *ret_len (may be NULL). -ENOENT if absent, -ENOMEM. */
int wf_store_get(struct wf_txn *t, unsigned dbi, const void *key, size_t klen,
		 void **ret_val, size_t *ret_len);

/* Like wf_store_get() but copies the value into BUF of SIZE bytes;
 * -EMSGSIZE (nothing copied) if it does not fit. RET_LEN may be NULL. */
int wf_store_get_buf(struct wf_txn *t, unsigned dbi, const void *key, size_t klen,
		     void *buf, size_t size, size_t *ret_len);

/* Whether KEY exists: 1 yes, 0 no, negative errno on error. */
int wf_store_exists(struct wf_txn *t, unsigned dbi, const void *key, size_t klen);

/* Flags for wf_store_put(). */
enum {
	WF_STORE_PUT_NOOVERWRITE = 1u << 0, /* -EEXIST if KEY exists */
	WF_STORE_PUT_APPEND = 1u << 1,      /* KEY sorts after every key:
					     * faster; -EEXIST if it does not */
};

/* Stores VAL under KEY in write transaction T (copying both). KEY is
 * 1..WF_STORE_MAX_KEY bytes (else -EINVAL). -ENOSPC when the map is full:
 * T is then unusable and must be aborted (wf_store_update does that and
 * retries). */
int wf_store_put(struct wf_txn *t, unsigned dbi, const void *key, size_t klen,
		 const void *val, size_t vlen, unsigned flags);

/* Deletes KEY. -ENOENT if absent. */
int wf_store_del(struct wf_txn *t, unsigned dbi, const void *key, size_t klen);

/* Deletes every key K with LO <= K <= HI (LMDB order: memcmp, a prefix
 * first). Stores how many records went in *ret_deleted and the sum of
 * their key+value sizes in *ret_bytes (either may be NULL). Deleting
 * nothing is success. */
int wf_store_del_range(struct wf_txn *t, unsigned dbi, const void *lo, size_t lolen,
		       const void *hi, size_t hilen, uint64_t *ret_deleted, uint64_t *ret_bytes);

/* Calls FN for each record in key order, starting at the first key >= FROM
 * (FROM NULL: at the first key). KEY and VAL point into the map and are
 * BORROWED: valid only during that call (copy what you keep). FN must not
 * modify DBI through T while iterating. FN returns 0 to continue, a
 * positive value to stop (returned by wf_store_foreach), or a negative
 * errno to stop with that error. Returns 0 when all records were seen. */
int wf_store_foreach(struct wf_txn *t, unsigned dbi, const void *from, size_t from_len,
		     int (*fn)(void *ud, const void *key, size_t klen, const void *val, size_t vlen),
		     void *ud);

/* Copies the first (smallest) or last (largest) key into BUF of SIZE bytes
 * and its length into *ret_len. -ENOENT if the database is empty,
 * -EMSGSIZE if BUF is too small. */
int wf_store_first_key(struct wf_txn *t, unsigned dbi, void *buf, size_t size, size_t *ret_len);
int wf_store_last_key(struct wf_txn *t, unsigned dbi, void *buf, size_t size, size_t *ret_len);

/* Number of records in DBI as T sees it (including T's own uncommitted
 * writes). */
int wf_store_count(struct wf_txn *t, unsigned dbi, uint64_t *ret_count);

/* Runs FN in a new write transaction and commits it. If FN or the commit
 * returns -ENOSPC (map full), the transaction is aborted, the map is
 * doubled (up to max_map_size) and FN runs again from scratch: FN must be
 * re-runnable, i.e. have no effects outside T that a rerun would repeat
 * (defer in-memory bookkeeping until wf_store_update returns success).
 * The map can only grow while this process has no other transaction of S
 * open; otherwise (or at the ceiling) the result is -ENOSPC.
 * FN returns a negative errno to abort (returned as is) or a value >= 0 to
 * commit; on success wf_store_update returns FN's value. */
int wf_store_update(struct wf_store *s, int (*fn)(struct wf_txn *t, void *ud), void *ud);

/* Runs FN in a read transaction (then ended) and returns FN's value. */
int wf_store_view(struct wf_store *s, int (*fn)(struct wf_txn *t, void *ud), void *ud);

/* Big-endian u64 key helpers (ordered keys make LMDB much faster). These
 * functions can't fail. */
void wf_store_u64_to_key(uint64_t v, unsigned char key[8]);
uint64_t wf_store_key_to_u64(const unsigned char key[8]);

#endif
