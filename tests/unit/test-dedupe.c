/* Unit tests for common/src/dedupe.c (consumer side of delivery) */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wf/clock.h"
#include "wf/dedupe.h"
#include "wf/outbox.h"
#include "wf/store.h"

static char tmpdir[256];

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)flag; (void)f;
	return remove(p);
}

static void tc_setup(void)
{
	const char *base = getenv("TMPDIR");
	snprintf(tmpdir, sizeof tmpdir, "%s/wf-test-dedupe-XXXXXX", base && *base ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void tc_teardown(void)
{
	nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static struct wf_store *open_store(const char *name)
{
	char path[600];
	struct wf_store *s = NULL;
	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	struct wf_store_options o = { .path = path, .map_size = 1 << 20 };
	ck_assert_int_eq(wf_store_open(&o, &s), 0);
	return s;
}

static struct wf_dedupe *open_dd(struct wf_store *s, uint32_t max_producers, uint32_t max_sparse)
{
	struct wf_dedupe *d = NULL;
	struct wf_dedupe_options o = {
		.consumer = "wf-fusion-1",
		.max_producers = max_producers,
		.max_sparse = max_sparse,
	};
	ck_assert_int_eq(wf_dedupe_open(s, &o, &d), 0);
	return d;
}

/* applies in its own committed transaction; returns apply's result */
static int apply1(struct wf_store *s, struct wf_dedupe *d, const char *p, uint64_t seq)
{
	struct wf_txn *t = NULL;
	ck_assert_int_eq(wf_store_txn_begin(s, true, &t), 0);
	int r = wf_dedupe_apply(d, t, p, seq);
	if (r < 0) {
		wf_store_txn_abort(t);
		return r;
	}
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
	return r;
}

static void state(struct wf_store *s, struct wf_dedupe *d, const char *p, uint64_t *w,
		  uint32_t *sparse)
{
	struct wf_txn *t = NULL;
	ck_assert_int_eq(wf_store_txn_begin(s, false, &t), 0);
	ck_assert_int_eq(wf_dedupe_state(d, t, p, w, sparse), 0);
	wf_store_txn_abort(t);
}

static uint64_t seen_records(struct wf_store *s)
{
	unsigned dbi;
	uint64_t n = 0;
	struct wf_txn *t = NULL;
	ck_assert_int_eq(wf_store_dbi(s, "dedupe-seen:wf-fusion-1", WF_STORE_DB_NOCREATE, &dbi), 0);
	ck_assert_int_eq(wf_store_txn_begin(s, false, &t), 0);
	ck_assert_int_eq(wf_store_count(t, dbi, &n), 0);
	wf_store_txn_abort(t);
	return n;
}

START_TEST(test_producer_ids)
{
	ck_assert(wf_dedupe_producer_valid("wf-met-1"));
	ck_assert(wf_dedupe_producer_valid("a"));
	ck_assert(!wf_dedupe_producer_valid(NULL));
	ck_assert(!wf_dedupe_producer_valid(""));
	ck_assert(!wf_dedupe_producer_valid("a/b"));
	ck_assert(!wf_dedupe_producer_valid("a+b"));
	ck_assert(!wf_dedupe_producer_valid("a#"));
	ck_assert(!wf_dedupe_producer_valid("a b"));
	ck_assert(!wf_dedupe_producer_valid("tab\t"));
	ck_assert(!wf_dedupe_producer_valid("\xe6\xb0\x94")); /* not ASCII */
	char id[WF_PRODUCER_MAX + 2];
	memset(id, 'x', sizeof id);
	id[WF_PRODUCER_MAX] = '\0';
	ck_assert(wf_dedupe_producer_valid(id));
	id[WF_PRODUCER_MAX] = 'x';
	id[WF_PRODUCER_MAX + 1] = '\0';
	ck_assert(!wf_dedupe_producer_valid(id));

	char topic[11 + WF_PRODUCER_MAX];
	ck_assert_int_eq(wf_dedupe_ack_topic("wf-met-1", topic, sizeof topic), 0);
	ck_assert_str_eq(topic, "wf/v1/ack/wf-met-1");
	ck_assert_int_eq(wf_dedupe_ack_topic("wf-met-1", topic, 18), -ENAMETOOLONG);
	ck_assert_int_eq(wf_dedupe_ack_topic("wf-met-1", topic, 19), 0);
	ck_assert_int_eq(wf_dedupe_ack_topic("bad/id", topic, sizeof topic), -EINVAL);
}
END_TEST

START_TEST(test_new_and_duplicate)
{
	struct wf_store *s = open_store("dup");
	struct wf_dedupe *d = open_dd(s, 0, 0);
	ck_assert_int_eq(apply1(s, d, "wf-met-1", 1), 0);
	ck_assert_int_eq(apply1(s, d, "wf-met-1", 1), 1);
	ck_assert_int_eq(apply1(s, d, "wf-met-1", 2), 0);
	ck_assert_int_eq(apply1(s, d, "wf-met-1", 2), 1);
	/* another producer's seq 1 is distinct */
	ck_assert_int_eq(apply1(s, d, "wf-water-1", 1), 0);
	uint64_t w = 0;
	uint32_t sp = 99;
	state(s, d, "wf-met-1", &w, &sp);
	ck_assert_uint_eq(w, 2);
	ck_assert_uint_eq(sp, 0);
	/* bad input */
	ck_assert_int_eq(apply1(s, d, "wf-met-1", 0), -EINVAL);
	ck_assert_int_eq(apply1(s, d, "bad/id", 1), -EINVAL);
	struct wf_txn *t = NULL;
	ck_assert_int_eq(wf_store_txn_begin(s, false, &t), 0);
	ck_assert_int_eq(wf_dedupe_apply(d, t, "wf-met-1", 3), -EINVAL); /* read txn */
	ck_assert_int_eq(wf_dedupe_state(d, t, "never-seen", &w, &sp), -ENOENT);
	wf_store_txn_abort(t);

	/* persists across close/reopen */
	wf_dedupe_close(d);
	wf_store_close(s);
	s = open_store("dup");
	d = open_dd(s, 0, 0);
	ck_assert_int_eq(apply1(s, d, "wf-met-1", 2), 1);
	ck_assert_int_eq(apply1(s, d, "wf-met-1", 3), 0);
	ck_assert_ptr_null(wf_dedupe_close(d));
	ck_assert_ptr_null(wf_dedupe_close(NULL));
	wf_store_close(s);
}
END_TEST

START_TEST(test_out_of_order_and_compaction)
{
	struct wf_store *s = open_store("ooo");
	struct wf_dedupe *d = open_dd(s, 0, 0);
	const char *p = "wf-geo-1";
	ck_assert_int_eq(apply1(s, d, p, 3), 0);
	ck_assert_int_eq(apply1(s, d, p, 5), 0);
	ck_assert_int_eq(apply1(s, d, p, 4), 0);
	ck_assert_int_eq(apply1(s, d, p, 5), 1);
	ck_assert_int_eq(apply1(s, d, p, 7), 0);
	uint64_t w = 99;
	uint32_t sp = 0;
	state(s, d, p, &w, &sp);
	ck_assert_uint_eq(w, 0);
	ck_assert_uint_eq(sp, 4);
	ck_assert_uint_eq(seen_records(s), 4);

	ck_assert_int_eq(apply1(s, d, p, 1), 0);
	state(s, d, p, &w, &sp);
	ck_assert_uint_eq(w, 1);
	ck_assert_uint_eq(sp, 4);

	/* filling the gap at 2 compacts 3, 4, 5 into the watermark */
	ck_assert_int_eq(apply1(s, d, p, 2), 0);
	state(s, d, p, &w, &sp);
	ck_assert_uint_eq(w, 5);
	ck_assert_uint_eq(sp, 1);
	ck_assert_uint_eq(seen_records(s), 1);
	for (uint64_t i = 1; i <= 5; i++)
		ck_assert_int_eq(apply1(s, d, p, i), 1);
	ck_assert_int_eq(apply1(s, d, p, 7), 1);
	ck_assert_int_eq(apply1(s, d, p, 6), 0);
	state(s, d, p, &w, &sp);
	ck_assert_uint_eq(w, 7);
	ck_assert_uint_eq(sp, 0);
	ck_assert_uint_eq(seen_records(s), 0);

	/* a long reverse run: storage returns to zero at the end */
	for (uint64_t i = 200; i >= 9; i--)
		ck_assert_int_eq(apply1(s, d, p, i), 0);
	ck_assert_uint_eq(seen_records(s), 192);
	ck_assert_int_eq(apply1(s, d, p, 8), 0);
	state(s, d, p, &w, &sp);
	ck_assert_uint_eq(w, 200);
	ck_assert_uint_eq(sp, 0);
	ck_assert_uint_eq(seen_records(s), 0);
	wf_dedupe_close(d);
	wf_store_close(s);
}
END_TEST

static const char *p2_name(void) { return "wf-water-1"; }

static int floor1(struct wf_store *s, struct wf_dedupe *d, const char *p, uint64_t floor)
{
	struct wf_txn *t = NULL;
	ck_assert_int_eq(wf_store_txn_begin(s, true, &t), 0);
	int r = wf_dedupe_floor(d, t, p, floor);
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
	return r;
}

/* A partition sees every other seq of a producer; the producer's floor
 * (ServiceState.outbox_floor) keeps the gaps from filling max_sparse. */
START_TEST(test_floor_covers_gaps)
{
	struct wf_store *s = open_store("floor");
	struct wf_dedupe *d = open_dd(s, 4, 8);
	const char *p = "wf-met-1";
	uint64_t w = 0;
	uint32_t sp = 0;

	ck_assert_int_eq(floor1(s, d, p, 1), 0); /* nothing below 1 */
	for (uint64_t i = 2; i <= 16; i += 2)
		ck_assert_int_eq(apply1(s, d, p, i), 0);
	ck_assert_int_eq(apply1(s, d, p, 18), -ENOSPC); /* 8 sparse: full */
	state(s, d, p, &w, &sp);
	ck_assert_uint_eq(w, 0);
	ck_assert_uint_eq(sp, 8);
	/* everything below 11 was acked by someone: 2..10 dropped, 12.. stay */
	ck_assert_int_eq(floor1(s, d, p, 11), 1);
	state(s, d, p, &w, &sp);
	ck_assert_uint_eq(w, 10);
	ck_assert_uint_eq(sp, 3);
	ck_assert_uint_eq(seen_records(s), 3);
	ck_assert_int_eq(apply1(s, d, p, 6), 1);  /* below the floor: a duplicate */
	ck_assert_int_eq(apply1(s, d, p, 18), 0); /* room again */
	ck_assert_int_eq(apply1(s, d, p, 12), 1);
	/* a floor just below a sparse run compacts it into the watermark */
	ck_assert_int_eq(apply1(s, d, p, 13), 0);
	ck_assert_int_eq(floor1(s, d, p, 12), 1); /* W=11, then 12, 13, 14 continue it */
	state(s, d, p, &w, &sp);
	ck_assert_uint_eq(w, 14);
	ck_assert_uint_eq(sp, 2); /* 16, 18 */
	ck_assert_int_eq(floor1(s, d, p, 5), 0); /* an old floor changes nothing */
	/* a new producer starts at its floor */
	ck_assert_int_eq(floor1(s, d, p2_name(), 100), 1);
	state(s, d, p2_name(), &w, &sp);
	ck_assert_uint_eq(w, 99);
	ck_assert_int_eq(apply1(s, d, p2_name(), 100), 0);
	wf_dedupe_close(d);
	wf_store_close(s);
}
END_TEST

START_TEST(test_limits)
{
	struct wf_store *s = open_store("limits");
	struct wf_dedupe *d = open_dd(s, 2, 3);
	const char *p = "wf-fire-1";
	ck_assert_int_eq(apply1(s, d, p, 10), 0);
	ck_assert_int_eq(apply1(s, d, p, 11), 0);
	ck_assert_int_eq(apply1(s, d, p, 12), 0);
	ck_assert_int_eq(apply1(s, d, p, 13), -ENOSPC);
	ck_assert_int_eq(apply1(s, d, p, 12), 1); /* a duplicate still works */
	ck_assert_int_eq(apply1(s, d, p, 1), 0);  /* so does the watermark */
	uint64_t w = 0;
	uint32_t sp = 0;
	state(s, d, p, &w, &sp);
	ck_assert_uint_eq(w, 1);
	ck_assert_uint_eq(sp, 3);
	for (uint64_t i = 2; i <= 9; i++)
		ck_assert_int_eq(apply1(s, d, p, i), 0);
	state(s, d, p, &w, &sp);
	ck_assert_uint_eq(w, 12);
	ck_assert_uint_eq(sp, 0);
	ck_assert_int_eq(apply1(s, d, p, 14), 0); /* room again */

	/* producers */
	ck_assert_int_eq(apply1(s, d, "wf-police-1", 1), 0);
	ck_assert_int_eq(apply1(s, d, "wf-third-1", 1), -ENOSPC);
	ck_assert_int_eq(apply1(s, d, "wf-police-1", 2), 0);
	wf_dedupe_close(d);

	struct wf_dedupe_options bad = { .consumer = "a/b" };
	d = (struct wf_dedupe *)0x1;
	ck_assert_int_eq(wf_dedupe_open(s, &bad, &d), -EINVAL);
	bad.consumer = NULL;
	ck_assert_int_eq(wf_dedupe_open(s, &bad, &d), -EINVAL);
	ck_assert_ptr_eq(d, (struct wf_dedupe *)0x1);
	wf_store_close(s);
}
END_TEST

START_TEST(test_effect_and_record_atomic)
{
	struct wf_store *s = open_store("atomic");
	struct wf_dedupe *d = open_dd(s, 0, 0);
	unsigned effects;
	ck_assert_int_eq(wf_store_dbi(s, "effects", 0, &effects), 0);

	struct wf_txn *t = NULL;
	ck_assert_int_eq(wf_store_txn_begin(s, true, &t), 0);
	ck_assert_int_eq(wf_dedupe_apply(d, t, "wf-met-1", 1), 0);
	ck_assert_int_eq(wf_store_put(t, effects, "w1", 2, "v1", 2, 0), 0);
	ck_assert_int_eq(wf_dedupe_apply(d, t, "wf-met-1", 3), 0);
	wf_store_txn_abort(t); /* e.g. the process died before commit */

	ck_assert_int_eq(wf_store_txn_begin(s, true, &t), 0);
	ck_assert_int_eq(wf_store_exists(t, effects, "w1", 2), 0);
	uint64_t w = 0;
	ck_assert_int_eq(wf_dedupe_state(d, t, "wf-met-1", &w, NULL), -ENOENT);
	/* so the redelivery is new and applied */
	ck_assert_int_eq(wf_dedupe_apply(d, t, "wf-met-1", 1), 0);
	ck_assert_int_eq(wf_store_put(t, effects, "w1", 2, "v1", 2, 0), 0);
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
	ck_assert_int_eq(apply1(s, d, "wf-met-1", 1), 1);
	ck_assert_int_eq(apply1(s, d, "wf-met-1", 3), 0);
	wf_dedupe_close(d);
	wf_store_close(s);
}
END_TEST

static void check_range(const Wf__V1__Ack *a, size_t i, uint64_t first, uint64_t last)
{
	ck_assert_uint_gt(a->n_ranges, i);
	ck_assert_uint_eq(a->ranges[i]->first, first);
	ck_assert_uint_eq(a->ranges[i]->last, last);
}

START_TEST(test_ack_take_merges)
{
	struct wf_store *s = open_store("acks");
	struct wf_dedupe *d = open_dd(s, 0, 0);
	Wf__V1__Ack **acks = (Wf__V1__Ack **)0x1;
	size_t n = 99;
	ck_assert_int_eq(wf_dedupe_ack_take(d, NULL, 1, &acks, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(acks);

	static const uint64_t seqs[] = { 8, 1, 3, 7, 2, 5, 3, 1 };
	for (size_t i = 0; i < sizeof seqs / sizeof seqs[0]; i++)
		ck_assert_int_eq(wf_dedupe_ack_note(d, "wf-met-1", seqs[i]), 0);
	ck_assert_int_eq(wf_dedupe_ack_note(d, "wf-met-1", 0), -EINVAL);
	ck_assert_int_eq(wf_dedupe_ack_note(d, "bad id", 1), -EINVAL);
	ck_assert_int_eq(wf_dedupe_ack_take(d, NULL, 1234, &acks, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(acks[0]->producer, "wf-met-1");
	ck_assert_str_eq(acks[0]->consumer, "wf-fusion-1");
	ck_assert_int_eq(acks[0]->sent_ms, 1234);
	ck_assert_uint_eq(acks[0]->n_ranges, 3);
	check_range(acks[0], 0, 1, 3);
	check_range(acks[0], 1, 5, 5);
	check_range(acks[0], 2, 7, 8);

	/* packs and unpacks to the same thing */
	void *buf = NULL;
	size_t len = 0;
	ck_assert_int_eq(wf_dedupe_ack_pack(acks[0], &buf, &len), 0);
	Wf__V1__Ack *u = wf__v1__ack__unpack(NULL, len, buf);
	ck_assert_ptr_nonnull(u);
	ck_assert_str_eq(u->producer, "wf-met-1");
	ck_assert_uint_eq(u->n_ranges, 3);
	check_range(u, 2, 7, 8);
	wf__v1__ack__free_unpacked(u, NULL);
	free(buf);
	ck_assert_ptr_null(wf_dedupe_acks_free(acks, n));

	/* taken means gone */
	ck_assert_int_eq(wf_dedupe_ack_take(d, NULL, 1, &acks, &n), 0);
	ck_assert_uint_eq(n, 0);

	/* a note bridging two ranges merges them */
	ck_assert_int_eq(wf_dedupe_ack_note(d, "wf-met-1", 10), 0);
	ck_assert_int_eq(wf_dedupe_ack_note(d, "wf-met-1", 12), 0);
	ck_assert_int_eq(wf_dedupe_ack_note(d, "wf-met-1", 11), 0);
	ck_assert_int_eq(wf_dedupe_ack_note(d, "wf-water-1", 4), 0);
	/* only one producer's */
	ck_assert_int_eq(wf_dedupe_ack_take(d, "wf-water-1", 1, &acks, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(acks[0]->producer, "wf-water-1");
	check_range(acks[0], 0, 4, 4);
	wf_dedupe_acks_free(acks, n);
	ck_assert_int_eq(wf_dedupe_ack_take(d, NULL, 1, &acks, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(acks[0]->producer, "wf-met-1");
	ck_assert_uint_eq(acks[0]->n_ranges, 1);
	check_range(acks[0], 0, 10, 12);
	wf_dedupe_acks_free(acks, n);
	wf_dedupe_close(d);
	wf_store_close(s);
}
END_TEST

START_TEST(test_ack_bounds)
{
	struct wf_store *s = open_store("ackbounds");
	struct wf_dedupe *d = NULL;
	struct wf_dedupe_options o = {
		.consumer = "wf-dispatch-1", .max_ack_ranges = 2, .max_pending_ranges = 3,
		.max_producers = 2,
	};
	ck_assert_int_eq(wf_dedupe_open(s, &o, &d), 0);
	ck_assert_int_eq(wf_dedupe_ack_note(d, "p", 1), 0);
	ck_assert_int_eq(wf_dedupe_ack_note(d, "p", 3), 0);
	ck_assert_int_eq(wf_dedupe_ack_note(d, "p", 5), 0);
	ck_assert_int_eq(wf_dedupe_ack_note(d, "p", 7), -ENOBUFS);
	ck_assert_int_eq(wf_dedupe_ack_note(d, "p", 4), 0); /* merges: no new range */
	ck_assert_int_eq(wf_dedupe_ack_note(d, "q", 1), 0);
	ck_assert_int_eq(wf_dedupe_ack_note(d, "r", 1), -ENOBUFS);
	Wf__V1__Ack **acks = NULL;
	size_t n = 0;
	ck_assert_int_eq(wf_dedupe_ack_take(d, "p", 1, &acks, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(acks[0]->n_ranges, 2);
	check_range(acks[0], 0, 1, 1);
	check_range(acks[0], 1, 3, 5);
	wf_dedupe_acks_free(acks, n);
	/* the rest comes next time */
	ck_assert_int_eq(wf_dedupe_ack_note(d, "p", 7), 0);
	ck_assert_int_eq(wf_dedupe_ack_take(d, NULL, 1, &acks, &n), 0);
	ck_assert_uint_eq(n, 2);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(acks[i]->producer, "p") == 0) {
			ck_assert_uint_eq(acks[i]->n_ranges, 1);
			check_range(acks[i], 0, 7, 7);
		} else {
			ck_assert_str_eq(acks[i]->producer, "q");
			check_range(acks[i], 0, 1, 1);
		}
	}
	wf_dedupe_acks_free(acks, n);
	/* producers were released: a new one fits */
	ck_assert_int_eq(wf_dedupe_ack_note(d, "r", 1), 0);
	wf_dedupe_close(d); /* with a note pending: no leak */
	wf_store_close(s);
}
END_TEST

/* ---- end to end, in one process, without a broker ---- */

struct wire {
	int n;
	char topic[64][64];
	uint8_t payload[64][64];
	size_t len[64];
};

static int wire_publish(void *ud, const char *topic, const void *payload, size_t len)
{
	struct wire *w = ud;
	ck_assert_int_lt(w->n, 64);
	ck_assert_uint_lt(len, 64);
	snprintf(w->topic[w->n], 64, "%s", topic);
	memcpy(w->payload[w->n], payload, len);
	w->len[w->n] = len;
	w->n++;
	return 0;
}

START_TEST(test_end_to_end_effectively_once)
{
	struct wf_store *ps = open_store("e2e-producer");
	struct wf_store *cs = open_store("e2e-consumer");
	int64_t now = 5000;
	struct wf_clock clk = wf_clock_manual(&now);
	struct wire wire = { .n = 0 };
	struct wf_outbox_options oo = { .publish = wire_publish, .publish_ud = &wire, .clock = &clk };
	struct wf_outbox *ob = NULL;
	ck_assert_int_eq(wf_outbox_open(ps, "wf-met-1", &oo, &ob), 0);
	struct wf_dedupe *d = open_dd(cs, 0, 0);
	unsigned effects;
	ck_assert_int_eq(wf_store_dbi(cs, "effects", 0, &effects), 0);

	/* the producer stores 4 messages; payload = the seq as text */
	struct wf_txn *t = NULL;
	ck_assert_int_eq(wf_store_txn_begin(ps, true, &t), 0);
	for (int i = 0; i < 4; i++) {
		uint64_t seq;
		char pl[24];
		ck_assert_int_eq(wf_outbox_next_seq(ob, t, &seq), 0);
		snprintf(pl, sizeof pl, "%llu", (unsigned long long)seq);
		ck_assert_int_eq(wf_outbox_put(ob, t, seq, "wf/v1/event/met", pl, strlen(pl)), 0);
	}
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
	ck_assert_int_eq(wf_outbox_flush(ob), 4);
	/* the timeout passes before the consumer acks: everything again */
	now += 5000;
	ck_assert_int_eq(wf_outbox_flush(ob), 4);
	ck_assert_int_eq(wire.n, 8);

	/* the consumer applies all 8 deliveries; only 4 have an effect */
	int applied = 0;
	for (int i = 0; i < wire.n; i++) {
		char pl[24];
		memcpy(pl, wire.payload[i], wire.len[i]);
		pl[wire.len[i]] = '\0';
		uint64_t seq = strtoull(pl, NULL, 10);
		ck_assert_int_eq(wf_store_txn_begin(cs, true, &t), 0);
		int r = wf_dedupe_apply(d, t, "wf-met-1", seq);
		ck_assert_int_ge(r, 0);
		if (r == 0) {
			ck_assert_int_eq(wf_store_put(t, effects, pl, strlen(pl), "x", 1,
						      WF_STORE_PUT_NOOVERWRITE), 0);
			applied++;
		}
		ck_assert_int_eq(wf_store_txn_commit(t), 0);
		ck_assert_int_eq(wf_dedupe_ack_note(d, "wf-met-1", seq), 0);
	}
	ck_assert_int_eq(applied, 4);

	/* the ack travels back */
	Wf__V1__Ack **acks = NULL;
	size_t n = 0;
	ck_assert_int_eq(wf_dedupe_ack_take(d, NULL, now, &acks, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(acks[0]->n_ranges, 1);
	check_range(acks[0], 0, 1, 4);
	void *buf = NULL;
	size_t len = 0;
	ck_assert_int_eq(wf_dedupe_ack_pack(acks[0], &buf, &len), 0);
	wf_dedupe_acks_free(acks, n);
	ck_assert_int_eq(wf_outbox_ack_packed(ob, buf, len), 4);
	free(buf);
	uint64_t pend = 99;
	ck_assert_int_eq(wf_outbox_pending(ob, &pend, NULL), 0);
	ck_assert_uint_eq(pend, 0);
	now += 60000;
	ck_assert_int_eq(wf_outbox_flush(ob), 0);

	wf_outbox_close(ob);
	wf_dedupe_close(d);
	wf_store_close(ps);
	wf_store_close(cs);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dedupe");
	TCase *tc = tcase_create("core");
	tcase_add_unchecked_fixture(tc, tc_setup, tc_teardown);
	tcase_add_test(tc, test_producer_ids);
	tcase_add_test(tc, test_new_and_duplicate);
	tcase_add_test(tc, test_out_of_order_and_compaction);
	tcase_add_test(tc, test_limits);
	tcase_add_test(tc, test_floor_covers_gaps);
	tcase_add_test(tc, test_effect_and_record_atomic);
	tcase_add_test(tc, test_ack_take_merges);
	tcase_add_test(tc, test_ack_bounds);
	tcase_add_test(tc, test_end_to_end_effectively_once);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
