/* bench-outbox: the cost of the end-to-end delivery bookkeeping on durable
 * LMDB commits (no nosync), in a temporary directory.
 *
 *   persist+ack: a producer stores messages in its outbox, B per commit
 *                (next_seq + put of a SIZE-byte payload through
 *                wf_store_update), flushes them to a no-op publisher, and
 *                applies the consumer's Ack for the batch (one more
 *                commit). Measured for B = --batch (default 100) and B = 1.
 *   dedupe:      a consumer records (producer, seq) with wf_dedupe_apply,
 *                --batch per commit, in order.
 *
 * Output (stdout), one "name value" per line:
 *   outbox.persist_ack_per_s N        (B = --batch)
 *   outbox.persist_ack_b1_per_s N     (B = 1)
 *   dedupe.apply_per_s N              (B = --batch)
 * Each phase stops after --count messages or --time-limit seconds,
 * whichever comes first; the rate uses what was done. */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wf/dedupe.h"
#include "wf/outbox.h"
#include "wf/store.h"

struct cfg {
	long count;
	long batch;
	size_t size;
	double time_limit_s;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: bench-outbox [--count N] [--batch B] [--size BYTES] [--time-limit SECONDS]\n"
		"                    [--help]\n"
		"Measures, with durable LMDB commits in a temporary directory:\n"
		"  outbox.persist_ack_per_s N     outbox put (B per commit) + flush + ack\n"
		"  outbox.persist_ack_b1_per_s N  the same, one message per commit\n"
		"  dedupe.apply_per_s N           dedupe apply (B per commit)\n"
		"Defaults: --count 100000 --batch 100 --size 200 --time-limit 10 per phase.\n");
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)flag; (void)f;
	return remove(p);
}

static long published;

static int publish_nop(void *ud, const char *topic, const void *payload, size_t len)
{
	(void)ud; (void)topic; (void)payload; (void)len;
	published++;
	return 0;
}

struct put_batch {
	struct wf_outbox *o;
	long n;
	const char *payload;
	size_t size;
	uint64_t first, last;
};

static int put_batch_fn(struct wf_txn *t, void *ud)
{
	struct put_batch *b = ud;
	for (long i = 0; i < b->n; i++) {
		uint64_t seq;
		int r = wf_outbox_next_seq(b->o, t, &seq);
		if (r < 0)
			return r;
		if (i == 0)
			b->first = seq;
		b->last = seq;
		r = wf_outbox_put(b->o, t, seq, "wf/v1/event/met/11/1101/110101", b->payload, b->size);
		if (r < 0)
			return r;
	}
	return 0;
}

static int open_store(const char *dir, const char *name, struct wf_store **ret)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	struct wf_store_options o = { .path = path, .max_map_size = (size_t)1 << 30 };
	return wf_store_open(&o, ret);
}

/* Returns messages per second, or -1 on error. */
static double bench_outbox(const struct cfg *c, const char *dir, const char *name, long batch)
{
	struct wf_store *s = NULL;
	struct wf_outbox *o = NULL;
	double rate = -1;
	char *payload = malloc(c->size ? c->size : 1);
	if (!payload)
		return -1;
	memset(payload, 'x', c->size);
	int r = open_store(dir, name, &s);
	if (r < 0) {
		fprintf(stderr, "bench-outbox: store: %s\n", strerror(-r));
		goto out;
	}
	struct wf_outbox_options oo = {
		.publish = publish_nop,
		.max_entries = (uint64_t)batch * 4 + 16,
		.max_per_flush = (unsigned)batch,
	};
	r = wf_outbox_open(s, "bench-producer", &oo, &o);
	if (r < 0) {
		fprintf(stderr, "bench-outbox: outbox: %s\n", strerror(-r));
		goto out;
	}
	long done = 0;
	double t0 = now_s(), t1 = t0;
	while (done < c->count && t1 - t0 < c->time_limit_s) {
		struct put_batch b = { .o = o, .n = batch, .payload = payload, .size = c->size };
		if (b.n > c->count - done)
			b.n = c->count - done;
		r = wf_store_update(s, put_batch_fn, &b);
		if (r < 0) {
			fprintf(stderr, "bench-outbox: put: %s\n", strerror(-r));
			goto out;
		}
		r = wf_outbox_flush(o);
		if (r != b.n) {
			fprintf(stderr, "bench-outbox: flush published %d of %ld\n", r, b.n);
			goto out;
		}
		struct wf_seq_range range = { b.first, b.last };
		r = wf_outbox_ack_ranges(o, &range, 1);
		if (r != b.n) {
			fprintf(stderr, "bench-outbox: ack deleted %d of %ld\n", r, b.n);
			goto out;
		}
		done += b.n;
		t1 = now_s();
	}
	rate = t1 > t0 ? (double)done / (t1 - t0) : 0;
out:
	wf_outbox_close(o);
	wf_store_close(s);
	free(payload);
	return rate;
}

struct apply_batch {
	struct wf_dedupe *d;
	uint64_t first;
	long n;
};

static int apply_batch_fn(struct wf_txn *t, void *ud)
{
	struct apply_batch *b = ud;
	for (long i = 0; i < b->n; i++) {
		int r = wf_dedupe_apply(b->d, t, "bench-producer", b->first + (uint64_t)i);
		if (r != 0)
			return r < 0 ? r : -EEXIST;
	}
	return 0;
}

static double bench_dedupe(const struct cfg *c, const char *dir)
{
	struct wf_store *s = NULL;
	struct wf_dedupe *d = NULL;
	double rate = -1;
	int r = open_store(dir, "dedupe", &s);
	if (r < 0)
		goto out;
	struct wf_dedupe_options o = { .consumer = "bench-consumer" };
	r = wf_dedupe_open(s, &o, &d);
	if (r < 0)
		goto out;
	long done = 0;
	double t0 = now_s(), t1 = t0;
	while (done < c->count && t1 - t0 < c->time_limit_s) {
		struct apply_batch b = { .d = d, .first = (uint64_t)done + 1, .n = c->batch };
		if (b.n > c->count - done)
			b.n = c->count - done;
		r = wf_store_update(s, apply_batch_fn, &b);
		if (r < 0)
			goto out;
		done += b.n;
		t1 = now_s();
	}
	rate = t1 > t0 ? (double)done / (t1 - t0) : 0;
out:
	if (r < 0)
		fprintf(stderr, "bench-outbox: dedupe: %s\n", strerror(-r));
	wf_dedupe_close(d);
	wf_store_close(s);
	return rate;
}

int main(int argc, char **argv)
{
	struct cfg c = { .count = 100000, .batch = 100, .size = 200, .time_limit_s = 10 };
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "batch", required_argument, NULL, 'b' },
		{ "size", required_argument, NULL, 's' },
		{ "time-limit", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "n:b:s:t:h", opts, NULL)) != -1) {
		char *end = NULL;
		switch (ch) {
		case 'n':
			c.count = strtol(optarg, &end, 10);
			break;
		case 'b':
			c.batch = strtol(optarg, &end, 10);
			break;
		case 's':
			c.size = (size_t)strtoul(optarg, &end, 10);
			break;
		case 't':
			c.time_limit_s = strtod(optarg, &end);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		if (!end || *end) {
			fprintf(stderr, "bench-outbox: bad value '%s'\n", optarg);
			return 2;
		}
	}
	if (optind != argc || c.count < 1 || c.batch < 1 || c.batch > 100000 ||
	    c.size > (64u << 10) || c.time_limit_s <= 0) {
		usage(stderr);
		return 2;
	}

	char dir[256];
	const char *base = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/wf-bench-outbox-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(dir)) {
		fprintf(stderr, "bench-outbox: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	int ret = 0;
	double r1 = bench_outbox(&c, dir, "outbox-b", c.batch);
	double r2 = bench_outbox(&c, dir, "outbox-1", 1);
	double r3 = bench_dedupe(&c, dir);
	if (r1 < 0 || r2 < 0 || r3 < 0)
		ret = 1;
	else {
		printf("outbox.persist_ack_per_s %.0f\n", r1);
		printf("outbox.persist_ack_b1_per_s %.0f\n", r2);
		printf("dedupe.apply_per_s %.0f\n", r3);
	}
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return ret;
}
