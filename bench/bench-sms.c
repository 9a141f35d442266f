/* bench-sms: the SMS channel (services/dispatch/sms, docs/sms.md).
 *
 *   plan:     one red warning (3 UCS-2 parts) planned for --recipients
 *             subscribers (default 100,000) in ONE durable LMDB transaction
 *             (wf_sms_enqueue + commit), then wf_sms_kick loading them into
 *             the send queue; time of each and the RSS growth. Target < 1 s.
 *   delivery: --messages single-part SMS (default 5,000) through a private
 *             Kannel whose fake SMSC is throttled to --throughput msg/s
 *             (default 500), measured from the kick until fakesmsc printed
 *             the last one, and until every DLR was recorded; then the same
 *             with Kannel unthrottled (our sender, smsbox and DLRs are the
 *             limit). Needs kannel and kannel-extras.
 *
 * Output (stdout), one "name value" per line, then the ratios. */
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "kannel-harness.h"
#include "sms.h"
#include "wf/clock.h"
#include "wf/store.h"

/* 【登封市应急管理局】暴雨红色预警 */
#define HEAD "\xe3\x80\x90\xe7\x99\xbb\xe5\xb0\x81\xe5\xb8\x82\xe5\xba\x94\xe6\x80\xa5" \
	     "\xe7\xae\xa1\xe7\x90\x86\xe5\xb1\x80\xe3\x80\x91\xe6\x9a\xb4\xe9\x9b\xa8"     \
	     "\xe7\xba\xa2\xe8\x89\xb2\xe9\xa2\x84\xe8\xad\xa6"
#define ZH "\xe4\xb8\xad"

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "re");
	long pages = 0, res = 0;
	if (!f)
		return 0;
	if (fscanf(f, "%ld %ld", &pages, &res) != 2)
		res = 0;
	fclose(f);
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static int write_subs(const char *path, long n)
{
	FILE *f = fopen(path, "we");
	if (!f)
		return -errno;
	for (long i = 0; i < n; i++)
		fprintf(f, "139%08ld,4101851%02ld000\n", i, i % 20);
	return fclose(f) < 0 ? -errno : 0;
}

struct enq {
	struct wf_sms *sms;
	const char *key, *text;
	size_t planned;
};

static int enq_fn(struct wf_txn *t, void *ud)
{
	struct enq *e = ud;
	return wf_sms_enqueue(e->sms, t, e->key, "410185", e->text, 0, &e->planned);
}

struct env {
	char *dir;
	char subs[512];
	struct ev_loop *loop;
	struct wf_store *store;
	struct wf_sms *sms;
};

static int env_open(struct env *e, const char *tag, long n, struct wf_test_kannel *k)
{
	char path[600];
	memset(e, 0, sizeof(*e));
	e->dir = wf_test_mkdtemp(tag);
	if (!e->dir)
		return -ENOMEM;
	snprintf(e->subs, sizeof(e->subs), "%s/subs.csv", e->dir);
	int r = write_subs(e->subs, n);
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "%s/state", e->dir);
	struct wf_store_options so = { .path = path, .max_dbs = 16 };
	if ((r = wf_store_open(&so, &e->store)) < 0)
		return r;
	e->loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_sms_config c;
	wf_sms_config_init(&c);
	c.sendsms_url = k ? wf_test_kannel_sendsms_url(k) : "http://127.0.0.1:9/cgi-bin/sendsms";
	c.username = k ? wf_test_kannel_username(k) : "u";
	c.password = k ? wf_test_kannel_password(k) : "p";
	c.from = "12379";
	c.subscribers_path = e->subs;
	char err[256];
	r = wf_sms_open(e->loop, e->store, &c, &e->sms, err, sizeof(err));
	if (r < 0)
		fprintf(stderr, "bench-sms: wf_sms_open: %s\n", err);
	return r;
}

static void env_close(struct env *e)
{
	e->sms = wf_sms_close(e->sms);
	e->store = wf_store_close(e->store);
	if (e->loop)
		ev_loop_destroy(e->loop);
	if (e->dir)
		wf_test_rmtree(e->dir);
	free(e->dir);
}

static int bench_plan(long n)
{
	struct env e;
	long rss_before_open = rss_kib();
	int r = env_open(&e, "bench-sms-plan", n, NULL);
	if (r < 0) {
		env_close(&e);
		return r;
	}
	/* 3 parts: 150 characters */
	char text[1024];
	snprintf(text, sizeof(text), "%s", HEAD);
	for (int i = 0; i < 134; i++)
		strcat(text, ZH);
	long rss0 = rss_kib();
	int64_t t0 = wf_clock_mono_ms();
	struct enq q = { .sms = e.sms, .key = "w-410185-rain-red@1", .text = text };
	r = wf_store_update(e.store, enq_fn, &q);
	int64_t t1 = wf_clock_mono_ms();
	if (r < 0 || (long)q.planned != n) {
		fprintf(stderr, "bench-sms: enqueue: %d, planned %zu\n", r, q.planned);
		env_close(&e);
		return r < 0 ? r : -EIO;
	}
	long rss1 = rss_kib();
	r = wf_sms_kick(e.sms);
	int64_t t2 = wf_clock_mono_ms();
	long rss2 = rss_kib();
	printf("sms.plan_recipients %ld\n", n);
	printf("sms.plan_commit_ms %" PRId64 "\n", t1 - t0);
	printf("sms.plan_kick_ms %" PRId64 "\n", t2 - t1);
	printf("sms.plan_total_ms %" PRId64 "\n", t2 - t0);
	printf("sms.plan_rss_delta_kib %ld\n", rss2 - rss0);
	printf("sms.plan_rss_delta_bytes_per_recipient %.0f\n", (double)(rss2 - rss0) * 1024.0 / (double)n);
	printf("sms.plan_rss_after_commit_kib %ld\n", rss1 - rss0);
	printf("sms.subscribers_rss_kib %ld\n", rss0 - rss_before_open);
	printf("ratio.sms_plan_total_vs_1s_target %.3f\n", (double)(t2 - t0) / 1000.0);
	env_close(&e);
	return r;
}

struct wait_ctx {
	struct wf_test_kannel *k;
	struct wf_sms *sms;
	long want;
	int64_t t_all_received;
};

static bool all_done(void *ud)
{
	struct wait_ctx *w = ud;
	if (!w->t_all_received && wf_test_kannel_received_count(w->k) >= w->want)
		w->t_all_received = wf_clock_mono_ms();
	return w->t_all_received && wf_sms_idle(w->sms);
}

/* Returns msgs/s to fakesmsc, or a negative errno. */
static double bench_delivery(long n, double throughput, double *ret_final_rate)
{
	struct wf_test_kannel *k = NULL;
	struct wf_test_kannel_options ko = { .throughput = throughput };
	int r = wf_test_kannel_create(&ko, &k);
	if (r < 0 || (r = wf_test_kannel_start(k)) < 0) {
		fprintf(stderr, "bench-sms: Kannel: %s\n", strerror(-r));
		wf_test_kannel_free(k);
		return r;
	}
	struct env e;
	r = env_open(&e, "bench-sms-deliv", n, k);
	if (r < 0) {
		env_close(&e);
		wf_test_kannel_free(k);
		return r;
	}
	int64_t t0 = wf_clock_mono_ms();
	struct enq q = { .sms = e.sms, .key = "w-bench@1", .text = HEAD };
	r = wf_store_update(e.store, enq_fn, &q);
	if (r >= 0)
		r = wf_sms_kick(e.sms);
	struct wait_ctx w = { .k = k, .sms = e.sms, .want = n };
	bool ok = r >= 0 && wf_test_run_until(e.loop, all_done, &w, (int)(n / (throughput > 0 ? throughput : 200) * 1000 * 3 + 30000));
	int64_t t1 = wf_clock_mono_ms();
	double rate = -ETIMEDOUT;
	if (ok) {
		rate = (double)n * 1000.0 / (double)(w.t_all_received - t0);
		*ret_final_rate = (double)n * 1000.0 / (double)(t1 - t0);
	} else {
		fprintf(stderr, "bench-sms: delivery did not finish (%ld received)\n",
			wf_test_kannel_received_count(k));
	}
	env_close(&e);
	wf_test_kannel_free(k);
	return rate;
}

int main(int argc, char **argv)
{
	long recipients = 100000, messages = 5000;
	double throughput = 500;
	static const struct option opts[] = {
		{ "recipients", required_argument, NULL, 'r' },
		{ "messages", required_argument, NULL, 'm' },
		{ "throughput", required_argument, NULL, 't' },
		{ "count", required_argument, NULL, 'c' }, /* bench/run passes it: ignored */
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int o;
	while ((o = getopt_long(argc, argv, "r:m:t:c:h", opts, NULL)) != -1) {
		switch (o) {
		case 'r': recipients = atol(optarg); break;
		case 'm': messages = atol(optarg); break;
		case 't': throughput = atof(optarg); break;
		case 'c': break;
		case 'h':
			printf("Usage: bench-sms [--recipients N] [--messages M] [--throughput T]\n"
			       "  plan N recipients (default 100000) in one transaction; deliver M (5000)\n"
			       "  through Kannel throttled to T msg/s (500), then unthrottled.\n");
			return 0;
		default: return 2;
		}
	}
	if (recipients <= 0 || messages <= 0 || throughput <= 0) {
		fprintf(stderr, "bench-sms: counts and throughput must be positive\n");
		return 2;
	}
	char *tmp = wf_test_mkdtemp("bench-sms");
	if (!tmp || setenv("TMPDIR", tmp, 1) < 0)
		return 1;
	int status = 0;
	if (bench_plan(recipients) < 0)
		status = 1;
	fflush(stdout);

	double fin = 0, rate = bench_delivery(messages, throughput, &fin);
	if (rate > 0) {
		printf("sms.kannel_throughput_msgs_per_s %.0f\n", throughput);
		printf("sms.delivery_throttled_msgs_per_s %.1f\n", rate);
		printf("sms.delivery_throttled_with_dlrs_msgs_per_s %.1f\n", fin);
		printf("ratio.sms_delivery_vs_kannel_throughput %.3f\n", rate / throughput);
	} else {
		status = 1;
	}
	fflush(stdout);
	double fin2 = 0, rate2 = bench_delivery(messages, 0, &fin2);
	if (rate2 > 0) {
		printf("sms.delivery_unthrottled_msgs_per_s %.1f\n", rate2);
		printf("sms.delivery_unthrottled_with_dlrs_msgs_per_s %.1f\n", fin2);
	} else {
		status = 1;
	}
	wf_test_rmtree(tmp);
	free(tmp);
	return status;
}
