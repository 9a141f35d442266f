/* Unit tests for common/src/outbox.c (producer side of delivery) */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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
	snprintf(tmpdir, sizeof tmpdir, "%s/wf-test-outbox-XXXXXX", base && *base ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void tc_teardown(void)
{
	nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- a fake bus ---- */

#define MAX_PUB 256

struct bus {
	int n;
	char topic[MAX_PUB][64];
	char payload[MAX_PUB][64];
	size_t len[MAX_PUB];
	int fail;        /* return this instead of publishing */
	int fail_after;  /* if > 0: succeed this many times, then fail */
};

static int bus_publish(void *ud, const char *topic, const void *payload, size_t len)
{
	struct bus *b = ud;
	if (b->fail_after > 0) {
		b->fail_after--;
	} else if (b->fail) {
		return b->fail;
	}
	ck_assert_int_lt(b->n, MAX_PUB);
	ck_assert_uint_lt(strlen(topic), 64);
	ck_assert_uint_lt(len, 64);
	snprintf(b->topic[b->n], 64, "%s", topic);
	memcpy(b->payload[b->n], payload, len);
	b->payload[b->n][len] = '\0';
	b->len[b->n] = len;
	b->n++;
	return 0;
}

/* the seq stamped in a test payload "msg-<seq>" */
static uint64_t pub_seq(const struct bus *b, int i)
{
	ck_assert_int_lt(i, b->n);
	ck_assert_int_eq(strncmp(b->payload[i], "msg-", 4), 0);
	return strtoull(b->payload[i] + 4, NULL, 10);
}

struct fx {
	struct wf_store *s;
	struct wf_outbox *o;
	struct bus bus;
	int64_t now;
	struct wf_clock clock;
	struct wf_outbox_options opt;
	char path[600];
};

static void fx_open_store(struct fx *f)
{
	struct wf_store_options so = { .path = f->path, .map_size = 1 << 20 };
	ck_assert_int_eq(wf_store_open(&so, &f->s), 0);
}

static void fx_open_outbox(struct fx *f)
{
	int r = wf_outbox_open(f->s, "wf-met-1", &f->opt, &f->o);
	ck_assert_msg(r == 0, "wf_outbox_open = %d", r);
}

static void fx_init(struct fx *f, const char *name)
{
	memset(f, 0, sizeof *f);
	snprintf(f->path, sizeof f->path, "%s/%s", tmpdir, name);
	f->now = 1000000;
	f->clock = wf_clock_manual(&f->now);
	f->opt = (struct wf_outbox_options){
		.resend_ms = 5000,
		.publish = bus_publish,
		.publish_ud = &f->bus,
		.clock = &f->clock,
	};
	fx_open_store(f);
	fx_open_outbox(f);
}

static void fx_close(struct fx *f)
{
	f->o = wf_outbox_close(f->o);
	f->s = wf_store_close(f->s);
}

/* next_seq + put "msg-<seq>" on wf/test/<seq % 3> in T; returns the seq */
static uint64_t put_one(struct fx *f, struct wf_txn *t)
{
	uint64_t seq = 0;
	char topic[32], payload[32];
	ck_assert_int_eq(wf_outbox_next_seq(f->o, t, &seq), 0);
	snprintf(topic, sizeof topic, "wf/test/%u", (unsigned)(seq % 3));
	snprintf(payload, sizeof payload, "msg-%llu", (unsigned long long)seq);
	ck_assert_int_eq(wf_outbox_put(f->o, t, seq, topic, payload, strlen(payload)), 0);
	return seq;
}

static void put_n(struct fx *f, int n)
{
	struct wf_txn *t = NULL;
	ck_assert_int_eq(wf_store_txn_begin(f->s, true, &t), 0);
	for (int i = 0; i < n; i++)
		put_one(f, t);
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
}

static uint64_t pending(struct fx *f)
{
	uint64_t n = 0;
	ck_assert_int_eq(wf_outbox_pending(f->o, &n, NULL), 0);
	return n;
}

START_TEST(test_seq_increasing_across_reopen)
{
	struct fx f;
	fx_init(&f, "seq");
	struct wf_txn *t = NULL;
	uint64_t a = 0, b = 0, c = 0;
	ck_assert_int_eq(wf_store_txn_begin(f.s, true, &t), 0);
	ck_assert_int_eq(wf_outbox_next_seq(f.o, t, &a), 0);
	ck_assert_int_eq(wf_outbox_next_seq(f.o, t, &b), 0);
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
	ck_assert_uint_eq(a, 1);
	ck_assert_uint_eq(b, 2);
	fx_close(&f);

	fx_open_store(&f);
	fx_open_outbox(&f);
	ck_assert_int_eq(wf_store_txn_begin(f.s, true, &t), 0);
	ck_assert_int_eq(wf_outbox_next_seq(f.o, t, &c), 0);
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
	ck_assert_uint_eq(c, 3);
	ck_assert_str_eq(wf_outbox_producer(f.o), "wf-met-1");

	/* another producer in the same store has its own sequence */
	struct wf_outbox *o2 = NULL;
	ck_assert_int_eq(wf_outbox_open(f.s, "wf-water-1", &f.opt, &o2), 0);
	ck_assert_int_eq(wf_store_txn_begin(f.s, true, &t), 0);
	ck_assert_int_eq(wf_outbox_next_seq(o2, t, &c), 0);
	ck_assert_uint_eq(c, 1);
	ck_assert_int_eq(wf_outbox_next_seq(f.o, t, &c), 0);
	ck_assert_uint_eq(c, 4);
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
	wf_outbox_close(o2);
	fx_close(&f);
}
END_TEST

/* The meta record (last number, bytes) is kept in memory for a write
 * transaction and written before it commits: an aborted one leaves
 * nothing (its numbers are handed out again), a committed one all of it,
 * and readers of another transaction see the committed figures only. */
START_TEST(test_meta_per_transaction)
{
	struct fx f;
	fx_init(&f, "meta");
	struct wf_txn *t = NULL;
	ck_assert_int_eq(wf_store_txn_begin(f.s, true, &t), 0);
	ck_assert_uint_eq(put_one(&f, t), 1);
	ck_assert_uint_eq(put_one(&f, t), 2);
	wf_store_txn_abort(t);
	uint64_t n = 9, bytes = 9;
	ck_assert_int_eq(wf_outbox_pending(f.o, &n, &bytes), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_uint_eq(bytes, 0);
	ck_assert_int_eq(wf_store_txn_begin(f.s, true, &t), 0);
	ck_assert_uint_eq(put_one(&f, t), 1); /* the aborted numbers again */
	ck_assert_uint_eq(put_one(&f, t), 2);
	ck_assert_uint_eq(put_one(&f, t), 3);
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
	ck_assert_int_eq(wf_outbox_pending(f.o, &n, &bytes), 0);
	ck_assert_uint_eq(n, 3);
	uint64_t after3 = bytes;
	ck_assert_uint_gt(after3, 3 * strlen("msg-1"));
	/* reopened: the committed record was written */
	fx_close(&f);
	fx_open_store(&f);
	fx_open_outbox(&f);
	ck_assert_int_eq(wf_outbox_pending(f.o, &n, &bytes), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(bytes, after3);
	ck_assert_int_eq(wf_store_txn_begin(f.s, true, &t), 0);
	ck_assert_uint_eq(put_one(&f, t), 4);
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
	fx_close(&f);
}
END_TEST

START_TEST(test_open_rejects)
{
	struct fx f;
	fx_init(&f, "rejects");
	struct wf_outbox *o = (struct wf_outbox *)0x1;
	ck_assert_int_eq(wf_outbox_open(f.s, "bad/id", &f.opt, &o), -EINVAL);
	ck_assert_int_eq(wf_outbox_open(f.s, "", &f.opt, &o), -EINVAL);
	ck_assert_int_eq(wf_outbox_open(f.s, "has space", &f.opt, &o), -EINVAL);
	char longid[WF_PRODUCER_MAX + 2];
	memset(longid, 'p', sizeof longid - 1);
	longid[sizeof longid - 1] = '\0';
	ck_assert_int_eq(wf_outbox_open(f.s, longid, &f.opt, &o), -EINVAL);
	longid[WF_PRODUCER_MAX] = '\0';
	struct wf_outbox *ok = NULL;
	ck_assert_int_eq(wf_outbox_open(f.s, longid, &f.opt, &ok), 0);
	wf_outbox_close(ok);
	struct wf_outbox_options no_pub = f.opt;
	no_pub.publish = NULL;
	ck_assert_int_eq(wf_outbox_open(f.s, "x", &no_pub, &o), -EINVAL);
	ck_assert_ptr_eq(o, (struct wf_outbox *)0x1);
	ck_assert_ptr_null(wf_outbox_close(NULL));
	fx_close(&f);
}
END_TEST

START_TEST(test_flush_n_budget)
{
	struct fx f;
	fx_init(&f, "flushn");
	struct wf_txn *t = NULL;
	ck_assert_int_eq(wf_store_txn_begin(f.s, true, &t), 0);
	for (int i = 0; i < 5; i++) {
		uint64_t s;
		ck_assert_int_eq(wf_outbox_next_seq(f.o, t, &s), 0);
		ck_assert_int_eq(wf_outbox_put(f.o, t, s, "wf/v1/a", "m", 1), 0);
	}
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
	ck_assert_int_eq(wf_outbox_flush_n(f.o, 0), -EINVAL);
	ck_assert_int_eq(wf_outbox_flush_n(NULL, 1), -EINVAL);
	ck_assert_int_eq(f.bus.n, 0);
	/* at most MAX publish calls, in order, the rest at the next call */
	ck_assert_int_eq(wf_outbox_flush_n(f.o, 2), 2);
	ck_assert_int_eq(f.bus.n, 2);
	ck_assert_int_eq(wf_outbox_flush_n(f.o, 100), 3);
	ck_assert_int_eq(f.bus.n, 5);
	ck_assert_int_eq(wf_outbox_flush_n(f.o, 100), 0);
	fx_close(&f);
}
END_TEST

START_TEST(test_put_flush_exact_bytes_in_order)
{
	struct fx f;
	fx_init(&f, "flush");
	struct wf_txn *t = NULL;
	uint64_t s1, s2;
	ck_assert_int_eq(wf_store_txn_begin(f.s, true, &t), 0);
	ck_assert_int_eq(wf_outbox_next_seq(f.o, t, &s1), 0);
	ck_assert_int_eq(wf_outbox_next_seq(f.o, t, &s2), 0);
	/* put in reverse order: flush still publishes by seq */
	ck_assert_int_eq(wf_outbox_put(f.o, t, s2, "wf/v1/b", "msg-2", 5), 0);
	static const char bin[] = { 'm', 's', 'g', '-', '1', 0, 1, 2 };
	ck_assert_int_eq(wf_outbox_put(f.o, t, s1, "wf/v1/a", bin, sizeof bin), 0);
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
	/* nothing was published by put or commit */
	ck_assert_int_eq(f.bus.n, 0);
	ck_assert_uint_eq(pending(&f), 2);

	ck_assert_int_eq(wf_outbox_flush(f.o), 2);
	ck_assert_int_eq(f.bus.n, 2);
	ck_assert_str_eq(f.bus.topic[0], "wf/v1/a");
	ck_assert_uint_eq(f.bus.len[0], sizeof bin);
	ck_assert_int_eq(memcmp(f.bus.payload[0], bin, sizeof bin), 0);
	ck_assert_str_eq(f.bus.topic[1], "wf/v1/b");
	ck_assert_uint_eq(f.bus.len[1], 5);
	ck_assert_str_eq(f.bus.payload[1], "msg-2");
	/* nothing more due */
	ck_assert_int_eq(wf_outbox_flush(f.o), 0);
	ck_assert_int_eq(f.bus.n, 2);

	/* empty payload round-trips */
	uint64_t s3;
	ck_assert_int_eq(wf_store_txn_begin(f.s, true, &t), 0);
	ck_assert_int_eq(wf_outbox_next_seq(f.o, t, &s3), 0);
	ck_assert_int_eq(wf_outbox_put(f.o, t, s3, "wf/v1/c", NULL, 0), 0);
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
	ck_assert_int_eq(wf_outbox_flush(f.o), 1);
	ck_assert_uint_eq(f.bus.len[2], 0);
	ck_assert_str_eq(f.bus.topic[2], "wf/v1/c");
	fx_close(&f);
}
END_TEST

START_TEST(test_put_validation)
{
	struct fx f;
	fx_init(&f, "putval");
	struct wf_txn *t = NULL;
	uint64_t s;
	ck_assert_int_eq(wf_store_txn_begin(f.s, true, &t), 0);
	ck_assert_int_eq(wf_outbox_next_seq(f.o, t, &s), 0);
	ck_assert_int_eq(wf_outbox_put(f.o, t, s + 1, "wf/x", "p", 1), -EINVAL); /* not allocated */
	ck_assert_int_eq(wf_outbox_put(f.o, t, 0, "wf/x", "p", 1), -EINVAL);
	ck_assert_int_eq(wf_outbox_put(f.o, t, s, "wf/#", "p", 1), -EINVAL);
	ck_assert_int_eq(wf_outbox_put(f.o, t, s, "", "p", 1), -EINVAL);
	ck_assert_int_eq(wf_outbox_put(f.o, t, s, NULL, "p", 1), -EINVAL);
	ck_assert_int_eq(wf_outbox_put(f.o, t, s, "wf/x", "p", 1), 0);
	ck_assert_int_eq(wf_outbox_put(f.o, t, s, "wf/x", "p", 1), -EEXIST);
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
	/* a read transaction is refused */
	ck_assert_int_eq(wf_store_txn_begin(f.s, false, &t), 0);
	ck_assert_int_eq(wf_outbox_next_seq(f.o, t, &s), -EINVAL);
	wf_store_txn_abort(t);
	fx_close(&f);
}
END_TEST

START_TEST(test_resend_after_timeout_and_birth)
{
	struct fx f;
	fx_init(&f, "resend");
	ck_assert_int_eq(wf_outbox_next_due_ms(f.o), INT64_MAX);
	put_n(&f, 2);
	ck_assert_int_eq(wf_outbox_flush(f.o), 2);
	ck_assert_int_eq(wf_outbox_next_due_ms(f.o), f.now + 5000);
	f.now += 4999;
	ck_assert_int_eq(wf_outbox_flush(f.o), 0);
	ck_assert_int_eq(f.bus.n, 2);
	f.now += 1;
	ck_assert_int_eq(wf_outbox_flush(f.o), 2);
	ck_assert_int_eq(f.bus.n, 4);
	ck_assert_uint_eq(pub_seq(&f.bus, 2), 1);
	ck_assert_uint_eq(pub_seq(&f.bus, 3), 2);
	/* the resend restarted the timer */
	ck_assert_int_eq(wf_outbox_flush(f.o), 0);
	ck_assert_int_eq(wf_outbox_next_due_ms(f.o), f.now + 5000);

	/* a new entry published between resends keeps its own timer */
	f.now += 2000;
	put_n(&f, 1);
	ck_assert_int_eq(wf_outbox_flush(f.o), 1);
	ck_assert_uint_eq(pub_seq(&f.bus, 4), 3);
	f.now += 3000; /* 1 and 2 due, 3 not */
	ck_assert_int_eq(wf_outbox_flush(f.o), 2);
	ck_assert_uint_eq(pub_seq(&f.bus, 5), 1);
	ck_assert_uint_eq(pub_seq(&f.bus, 6), 2);

	/* consumer birth: everything pending goes again, now */
	wf_outbox_consumer_birth(f.o);
	ck_assert_int_le(wf_outbox_next_due_ms(f.o), f.now);
	ck_assert_int_eq(wf_outbox_flush(f.o), 3);
	ck_assert_uint_eq(pub_seq(&f.bus, 7), 1);
	ck_assert_uint_eq(pub_seq(&f.bus, 8), 2);
	ck_assert_uint_eq(pub_seq(&f.bus, 9), 3);
	ck_assert_int_eq(wf_outbox_flush(f.o), 0);
	fx_close(&f);
}
END_TEST

START_TEST(test_ack_deletes)
{
	struct fx f;
	fx_init(&f, "ack");
	put_n(&f, 10);
	ck_assert_int_eq(wf_outbox_flush(f.o), 10);
	uint64_t bytes_before = 0;
	ck_assert_int_eq(wf_outbox_pending(f.o, NULL, &bytes_before), 0);
	ck_assert_uint_gt(bytes_before, 0);

	Wf__V1__SeqRange r1 = WF__V1__SEQ_RANGE__INIT, r2 = WF__V1__SEQ_RANGE__INIT,
			 r3 = WF__V1__SEQ_RANGE__INIT;
	r1.first = 1; r1.last = 3;
	r2.first = 5; r2.last = 5;
	r3.first = 7; r3.last = 8;
	Wf__V1__SeqRange *rs[] = { &r1, &r2, &r3 };
	Wf__V1__Ack ack = WF__V1__ACK__INIT;
	ack.producer = (char *)"wf-met-1";
	ack.consumer = (char *)"wf-fusion-1";
	ack.n_ranges = 3;
	ack.ranges = rs;
	ck_assert_int_eq(wf_outbox_ack(f.o, &ack), 6);
	ck_assert_uint_eq(pending(&f), 4);
	/* the same ack again is harmless */
	ck_assert_int_eq(wf_outbox_ack(f.o, &ack), 0);
	ck_assert_uint_eq(pending(&f), 4);

	/* someone else's ack */
	ack.producer = (char *)"wf-water-1";
	ck_assert_int_eq(wf_outbox_ack(f.o, &ack), -EINVAL);
	/* malformed range */
	ack.producer = (char *)"wf-met-1";
	r1.first = 9; r1.last = 4;
	ck_assert_int_eq(wf_outbox_ack(f.o, &ack), -EINVAL);
	ck_assert_uint_eq(pending(&f), 4);

	/* only the unacked ones are resent */
	int before = f.bus.n;
	f.now += 5000;
	ck_assert_int_eq(wf_outbox_flush(f.o), 4);
	ck_assert_uint_eq(pub_seq(&f.bus, before + 0), 4);
	ck_assert_uint_eq(pub_seq(&f.bus, before + 1), 6);
	ck_assert_uint_eq(pub_seq(&f.bus, before + 2), 9);
	ck_assert_uint_eq(pub_seq(&f.bus, before + 3), 10);

	/* a packed ack covering everything (and beyond) */
	Wf__V1__SeqRange all = WF__V1__SEQ_RANGE__INIT;
	all.first = 1; all.last = 1000;
	Wf__V1__SeqRange *ra[] = { &all };
	ack.n_ranges = 1;
	ack.ranges = ra;
	uint8_t buf[128];
	size_t n = wf__v1__ack__pack(&ack, buf);
	ck_assert_int_eq(wf_outbox_ack_packed(f.o, buf, n), 4);
	ck_assert_uint_eq(pending(&f), 0);
	uint64_t bytes_after = 99;
	ck_assert_int_eq(wf_outbox_pending(f.o, NULL, &bytes_after), 0);
	ck_assert_uint_eq(bytes_after, 0);
	ck_assert_int_eq(wf_outbox_ack_packed(f.o, "\xff\xff\xff", 3), -EBADMSG);
	ck_assert_int_eq(wf_outbox_next_due_ms(f.o), INT64_MAX);
	f.now += 10000;
	ck_assert_int_eq(wf_outbox_flush(f.o), 0);
	fx_close(&f);
}
END_TEST

START_TEST(test_ack_before_send)
{
	/* an ack can overtake the flush (e.g. after a restart the consumer
	 * acks what it applied earlier): acked entries are never published */
	struct fx f;
	fx_init(&f, "ackfirst");
	put_n(&f, 3);
	struct wf_seq_range r = { 2, 2 };
	ck_assert_int_eq(wf_outbox_ack_ranges(f.o, &r, 1), 1);
	ck_assert_int_eq(wf_outbox_flush(f.o), 2);
	ck_assert_uint_eq(pub_seq(&f.bus, 0), 1);
	ck_assert_uint_eq(pub_seq(&f.bus, 1), 3);
	fx_close(&f);
}
END_TEST

START_TEST(test_publish_failure_keeps_entry)
{
	struct fx f;
	fx_init(&f, "pubfail");
	put_n(&f, 3);
	f.bus.fail = -ENOTCONN;
	ck_assert_int_eq(wf_outbox_flush(f.o), -ENOTCONN);
	ck_assert_int_eq(f.bus.n, 0);
	ck_assert_uint_eq(pending(&f), 3);
	/* the bus comes back: published without waiting for the timeout */
	f.bus.fail = 0;
	ck_assert_int_eq(wf_outbox_flush(f.o), 3);
	ck_assert_uint_eq(pub_seq(&f.bus, 0), 1);

	/* failure in the middle of a batch */
	put_n(&f, 3); /* 4, 5, 6 */
	f.bus.fail = -ENOTCONN;
	f.bus.fail_after = 1;
	ck_assert_int_eq(wf_outbox_flush(f.o), -ENOTCONN);
	ck_assert_int_eq(f.bus.n, 4);
	ck_assert_uint_eq(pub_seq(&f.bus, 3), 4);
	f.bus.fail = 0;
	ck_assert_int_eq(wf_outbox_flush(f.o), 2);
	ck_assert_uint_eq(pub_seq(&f.bus, 4), 5);
	ck_assert_uint_eq(pub_seq(&f.bus, 5), 6);

	/* failure during a resend: retried on the next flush */
	f.now += 5000;
	f.bus.fail = -ENOTCONN;
	f.bus.fail_after = 2;
	ck_assert_int_eq(wf_outbox_flush(f.o), -ENOTCONN);
	ck_assert_int_eq(f.bus.n, 8);
	f.bus.fail = 0;
	ck_assert_int_eq(wf_outbox_flush(f.o), 4);
	ck_assert_uint_eq(pub_seq(&f.bus, 8), 3);
	ck_assert_uint_eq(pub_seq(&f.bus, 11), 6);
	ck_assert_uint_eq(pending(&f), 6);
	fx_close(&f);
}
END_TEST

START_TEST(test_flush_bounded)
{
	struct fx f;
	fx_init(&f, "bounded");
	fx_close(&f);
	f.opt.max_per_flush = 4;
	fx_open_store(&f);
	fx_open_outbox(&f);
	put_n(&f, 10);
	ck_assert_int_eq(wf_outbox_flush(f.o), 4);
	ck_assert_int_eq(wf_outbox_flush(f.o), 4);
	ck_assert_int_eq(wf_outbox_flush(f.o), 2);
	ck_assert_int_eq(wf_outbox_flush(f.o), 0);
	for (int i = 0; i < 10; i++)
		ck_assert_uint_eq(pub_seq(&f.bus, i), (uint64_t)i + 1);
	/* resends are bounded too, and continue in order */
	f.now += 5000;
	ck_assert_int_eq(wf_outbox_flush(f.o), 4);
	ck_assert_int_eq(wf_outbox_flush(f.o), 4);
	ck_assert_int_eq(wf_outbox_flush(f.o), 2);
	ck_assert_int_eq(wf_outbox_flush(f.o), 0);
	for (int i = 0; i < 10; i++)
		ck_assert_uint_eq(pub_seq(&f.bus, 10 + i), (uint64_t)i + 1);
	fx_close(&f);
}
END_TEST

START_TEST(test_backpressure)
{
	struct fx f;
	fx_init(&f, "backpressure");
	fx_close(&f);
	f.opt.max_entries = 3;
	f.opt.max_payload = 100;
	fx_open_store(&f);
	fx_open_outbox(&f);
	put_n(&f, 3);
	struct wf_txn *t = NULL;
	uint64_t s = 0;
	ck_assert_int_eq(wf_store_txn_begin(f.s, true, &t), 0);
	ck_assert_int_eq(wf_outbox_next_seq(f.o, t, &s), -ENOBUFS);
	wf_store_txn_abort(t);
	ck_assert_uint_eq(pending(&f), 3);
	/* an ack makes room */
	struct wf_seq_range r = { 1, 1 };
	ck_assert_int_eq(wf_outbox_ack_ranges(f.o, &r, 1), 1);
	ck_assert_int_eq(wf_store_txn_begin(f.s, true, &t), 0);
	ck_assert_int_eq(wf_outbox_next_seq(f.o, t, &s), 0);
	char big[101];
	memset(big, 'b', sizeof big);
	ck_assert_int_eq(wf_outbox_put(f.o, t, s, "wf/x", big, sizeof big), -EMSGSIZE);
	ck_assert_int_eq(wf_outbox_put(f.o, t, s, "wf/x", big, 100), 0);
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
	ck_assert_uint_eq(pending(&f), 3);
	fx_close(&f);

	/* the byte limit */
	f.opt.max_entries = 0;
	f.opt.max_payload = 0;
	f.opt.max_bytes = 200;
	snprintf(f.path, sizeof f.path, "%s/backpressure-bytes", tmpdir);
	fx_open_store(&f);
	fx_open_outbox(&f);
	ck_assert_int_eq(wf_store_txn_begin(f.s, true, &t), 0);
	ck_assert_int_eq(wf_outbox_next_seq(f.o, t, &s), 0);
	/* 8 key + 10 header + 4 topic + 300 > 200: can never fit */
	char huge[300];
	memset(huge, 'h', sizeof huge);
	ck_assert_int_eq(wf_outbox_put(f.o, t, s, "wf/x", huge, sizeof huge), -EMSGSIZE);
	ck_assert_int_eq(wf_outbox_put(f.o, t, s, "wf/x", huge, 150), 0); /* 172 bytes */
	ck_assert_int_eq(wf_outbox_next_seq(f.o, t, &s), 0);
	ck_assert_int_eq(wf_outbox_put(f.o, t, s, "wf/x", huge, 10), -ENOBUFS);
	ck_assert_int_eq(wf_outbox_put(f.o, t, s, "wf/x", huge, 6), 0); /* exactly 200 */
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
	uint64_t bytes = 0;
	ck_assert_int_eq(wf_outbox_pending(f.o, NULL, &bytes), 0);
	ck_assert_uint_eq(bytes, 200);
	fx_close(&f);
}
END_TEST

START_TEST(test_crash_before_flush_resent_on_reopen)
{
	struct fx f;
	fx_init(&f, "crash");
	fx_close(&f); /* the parent holds nothing open across fork */

	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct fx c;
		memset(&c, 0, sizeof c);
		memcpy(c.path, f.path, sizeof c.path);
		c.now = 1000000;
		c.clock = wf_clock_manual(&c.now);
		c.opt = f.opt;
		c.opt.publish_ud = &c.bus;
		c.opt.clock = &c.clock;
		struct wf_store_options so = { .path = c.path };
		struct wf_txn *t = NULL;
		uint64_t seq = 0;
		if (wf_store_open(&so, &c.s) < 0 || wf_outbox_open(c.s, "wf-met-1", &c.opt, &c.o) < 0 ||
		    wf_store_txn_begin(c.s, true, &t) < 0 || wf_outbox_next_seq(c.o, t, &seq) < 0 ||
		    wf_outbox_put(c.o, t, seq, "wf/v1/crash", "msg-1", 5) < 0 ||
		    wf_store_txn_commit(t) < 0)
			_exit(2);
		_exit(0); /* no flush, no close: the process just ends */
	}
	int status = 0;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);

	fx_open_store(&f);
	fx_open_outbox(&f);
	ck_assert_uint_eq(pending(&f), 1);
	ck_assert_int_eq(wf_outbox_flush(f.o), 1);
	ck_assert_str_eq(f.bus.topic[0], "wf/v1/crash");
	ck_assert_str_eq(f.bus.payload[0], "msg-1");
	/* the sequence continues after the child's */
	struct wf_txn *t = NULL;
	uint64_t seq = 0;
	ck_assert_int_eq(wf_store_txn_begin(f.s, true, &t), 0);
	ck_assert_int_eq(wf_outbox_next_seq(f.o, t, &seq), 0);
	ck_assert_uint_eq(seq, 2);
	wf_store_txn_abort(t);
	fx_close(&f);
}
END_TEST

START_TEST(test_restart_resends_everything_pending)
{
	struct fx f;
	fx_init(&f, "restart");
	put_n(&f, 3);
	ck_assert_int_eq(wf_outbox_flush(f.o), 3);
	struct wf_seq_range r = { 2, 2 };
	ck_assert_int_eq(wf_outbox_ack_ranges(f.o, &r, 1), 1);
	fx_close(&f);
	fx_open_store(&f);
	fx_open_outbox(&f);
	/* no timeout needed: after a restart, pending means never sent */
	ck_assert_int_eq(wf_outbox_flush(f.o), 2);
	ck_assert_uint_eq(pub_seq(&f.bus, 3), 1);
	ck_assert_uint_eq(pub_seq(&f.bus, 4), 3);
	fx_close(&f);
}
END_TEST

START_TEST(test_aborted_put_never_exists)
{
	struct fx f;
	fx_init(&f, "aborted");
	struct wf_txn *t = NULL;
	uint64_t seq = 0;
	ck_assert_int_eq(wf_store_txn_begin(f.s, true, &t), 0);
	seq = put_one(&f, t);
	ck_assert_uint_eq(seq, 1);
	wf_store_txn_abort(t);
	ck_assert_uint_eq(pending(&f), 0);
	ck_assert_int_eq(wf_outbox_flush(f.o), 0);
	ck_assert_int_eq(f.bus.n, 0);
	int64_t age = 99;
	ck_assert_int_eq(wf_outbox_oldest_ms(f.o, &age), 0);
	ck_assert_int_eq(age, 0);
	fx_close(&f);
}
END_TEST

START_TEST(test_oldest_age)
{
	struct fx f;
	fx_init(&f, "oldest");
	put_n(&f, 1);
	f.now += 1500;
	put_n(&f, 1);
	f.now += 1000;
	int64_t age = 0;
	ck_assert_int_eq(wf_outbox_oldest_ms(f.o, &age), 0);
	ck_assert_int_eq(age, 2500);
	struct wf_seq_range r = { 1, 1 };
	ck_assert_int_eq(wf_outbox_ack_ranges(f.o, &r, 1), 1);
	ck_assert_int_eq(wf_outbox_oldest_ms(f.o, &age), 0);
	ck_assert_int_eq(age, 1000);
	fx_close(&f);
}
END_TEST

struct bulk {
	struct wf_outbox *o;
	int n;
	int runs;
};

static int bulk_fn(struct wf_txn *t, void *ud)
{
	struct bulk *b = ud;
	char payload[2000];
	b->runs++;
	for (int i = 0; i < b->n; i++) {
		uint64_t seq;
		int r = wf_outbox_next_seq(b->o, t, &seq);
		if (r < 0)
			return r;
		memset(payload, 'p', sizeof payload);
		snprintf(payload, sizeof payload, "msg-%llu", (unsigned long long)seq);
		r = wf_outbox_put(b->o, t, seq, "wf/bulk", payload, sizeof payload);
		if (r < 0)
			return r;
	}
	return 0;
}

START_TEST(test_put_through_update_grows_map)
{
	struct fx f;
	memset(&f, 0, sizeof f);
	snprintf(f.path, sizeof f.path, "%s/grow", tmpdir);
	f.now = 1000;
	f.clock = wf_clock_manual(&f.now);
	f.opt = (struct wf_outbox_options){ .publish = bus_publish, .publish_ud = &f.bus,
					    .clock = &f.clock };
	struct wf_store_options so = { .path = f.path, .map_size = 64 << 10, .max_map_size = 64 << 20 };
	ck_assert_int_eq(wf_store_open(&so, &f.s), 0);
	fx_open_outbox(&f);
	struct bulk b = { .o = f.o, .n = 200 };
	ck_assert_int_eq(wf_store_update(f.s, bulk_fn, &b), 0);
	ck_assert_int_gt(b.runs, 1);
	ck_assert_uint_eq(pending(&f), 200);
	/* the retried runs did not burn sequence numbers */
	struct wf_txn *t = NULL;
	uint64_t seq = 0;
	ck_assert_int_eq(wf_store_txn_begin(f.s, true, &t), 0);
	ck_assert_int_eq(wf_outbox_next_seq(f.o, t, &seq), 0);
	ck_assert_uint_eq(seq, 201);
	wf_store_txn_abort(t);
	fx_close(&f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("outbox");
	TCase *tc = tcase_create("core");
	tcase_add_unchecked_fixture(tc, tc_setup, tc_teardown);
	tcase_add_test(tc, test_seq_increasing_across_reopen);
	tcase_add_test(tc, test_meta_per_transaction);
	tcase_add_test(tc, test_open_rejects);
	tcase_add_test(tc, test_put_flush_exact_bytes_in_order);
	tcase_add_test(tc, test_flush_n_budget);
	tcase_add_test(tc, test_put_validation);
	tcase_add_test(tc, test_resend_after_timeout_and_birth);
	tcase_add_test(tc, test_ack_deletes);
	tcase_add_test(tc, test_ack_before_send);
	tcase_add_test(tc, test_publish_failure_keeps_entry);
	tcase_add_test(tc, test_flush_bounded);
	tcase_add_test(tc, test_backpressure);
	tcase_add_test(tc, test_crash_before_flush_resent_on_reopen);
	tcase_add_test(tc, test_restart_resends_everything_pending);
	tcase_add_test(tc, test_aborted_put_never_exists);
	tcase_add_test(tc, test_oldest_age);
	tcase_add_test(tc, test_put_through_update_grows_map);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
