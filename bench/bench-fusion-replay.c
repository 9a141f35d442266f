/* bench-fusion-replay: fusion engine throughput in replay mode with 10,000
 * and 100,000 active incidents, and memory per active incident.
 *
 * Usage: bench-fusion-replay [RULES [REGIONS]]   (defaults:
 *   $WF_SOURCE_ROOT or . / deploy/fusion-rules.conf, data/regions.csv)
 *
 * For each N: opens a fresh engine on a temporary MDB_NOSYNC store, creates
 * N incidents (one event each, hazard x county x status), then measures
 *   engine: wf_fusion_ingest of pre-built events that join existing
 *           incidents (one LMDB commit per 10,000 events), and
 *   replay: the whole replay path (JSON parse, codec validation, ingest)
 *           through wf_fusion_replay() over the same events as JSON lines;
 * and prints RSS and heap growth per active incident.
 * Targets (issue 4): >= 200,000 events/s on one core; < 2 KiB per incident. */
#include <errno.h>
#include <ftw.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "replay.h"
#include "wf/codec.h"
#include "wf/store.h"
#include "wf/topic.h"

#define T0 1784505600000LL
#define H 3600000LL

static const int hazards[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 20, 21, 22, 23,
			       30, 31, 32, 33, 40, 41, 42, 43, 50, 51, 52, 53 };
#define N_HAZ (sizeof hazards / sizeof hazards[0])

static char (*counties)[13];
static size_t n_counties;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, res = 0;
	if (f) {
		if (fscanf(f, "%ld %ld", &size, &res) != 2)
			res = 0;
		fclose(f);
	}
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static size_t heap_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)flag; (void)f;
	return remove(p);
}

static int load_counties(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -errno;
	char line[512];
	size_t cap = 4096;
	counties = malloc(cap * sizeof *counties);
	while (fgets(line, sizeof line, f)) {
		size_t l = strlen(line);
		while (l && (line[l - 1] == '\n' || line[l - 1] == '\r'))
			line[--l] = '\0';
		if (l < 13 || line[12] != ',' || l < 7 || strcmp(line + l - 7, ",county") != 0)
			continue;
		if (n_counties == cap)
			counties = realloc(counties, (cap *= 2) * sizeof *counties);
		memcpy(counties[n_counties], line, 12);
		counties[n_counties++][12] = '\0';
	}
	fclose(f);
	return n_counties ? 0 : -ENOENT;
}

/* event I of the stream: the first N create incidents, the rest join them */
static void make_event(size_t i, size_t n, Wf__V1__Event *ev, char *id, size_t idsize)
{
	size_t k = i < n ? i : (i * 2654435761u) % n;
	size_t combos = n_counties * N_HAZ;
	size_t c = k % combos;
	snprintf(id, idsize, "b%zu", i);
	wf__v1__event__init(ev);
	ev->id = id;
	ev->agency = WF__V1__AGENCY__AGENCY_MET;
	ev->hazard = (Wf__V1__Hazard)hazards[c % N_HAZ];
	ev->region = counties[c / N_HAZ];
	ev->level = WF__V1__LEVEL__LEVEL_II;
	ev->observed_ms = T0 + (int64_t)i;
	ev->expires_ms = T0 + 48 * H;
	ev->status = k < combos ? WF__V1__STATUS__STATUS_ACTUAL : WF__V1__STATUS__STATUS_EXERCISE;
	ev->producer = (char *)"wf-bench-1";
	ev->seq = i + 1;
	ev->msg_type = WF__V1__MSG_TYPE__MSG_TYPE_ALERT;
}

static int count_emit(void *ud, const Wf__V1__Warning *w)
{
	(void)w;
	++*(uint64_t *)ud;
	return 0;
}

static int run_engine(const char *rules_path, size_t n, size_t m, double *ret_rate,
		      double *ret_rss, double *ret_heap, uint64_t *ret_incidents)
{
	char dir[256], err[512];
	const char *base = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/wf-bench-fusion-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(dir))
		return -errno;
	struct wf_fusion_rules *rules = NULL;
	int r = wf_fusion_rules_load(rules_path, &rules, err, sizeof err);
	if (r < 0) {
		fprintf(stderr, "%s\n", err);
		return r;
	}
	struct wf_store_options so = { .path = dir, .map_size = (size_t)1 << 30,
				       .max_map_size = (size_t)8 << 30, .nosync = true };
	struct wf_store *s = NULL;
	struct wf_fusion *e = NULL;
	if ((r = wf_store_open(&so, &s)) < 0 || (r = wf_fusion_open(s, rules, NULL, &e)) < 0) {
		fprintf(stderr, "bench: open: %s\n", strerror(-r));
		return r;
	}
	long rss0 = rss_kib();
	size_t heap0 = heap_bytes();
	uint64_t emitted = 0;
	char id[32];
	Wf__V1__Event ev;
	struct wf_txn *t = NULL;
	double t0 = 0;
	for (size_t i = 0; i < n + m; i++) {
		if (i == n) {
			if (t && (r = wf_store_txn_commit(t)) < 0)
				goto out;
			t = NULL;
			struct wf_fusion_stats st;
			wf_fusion_get_stats(e, &st);
			*ret_incidents = st.incidents;
			*ret_rss = (double)(rss_kib() - rss0) * 1024.0 / (double)st.incidents;
			*ret_heap = (double)(heap_bytes() - heap0) / (double)st.incidents;
			t0 = now_s();
		}
		if (!t && (r = wf_store_txn_begin(s, true, &t)) < 0)
			goto out;
		make_event(i, n, &ev, id, sizeof id);
		r = wf_fusion_ingest(e, t, &ev, ev.observed_ms, count_emit, &emitted);
		if (r < 0)
			goto out;
		if ((i + 1) % 10000 == 0) {
			if ((r = wf_store_txn_commit(t)) < 0)
				goto out;
			t = NULL;
		}
	}
	if (t && (r = wf_store_txn_commit(t)) < 0)
		goto out;
	t = NULL;
	*ret_rate = (double)m / (now_s() - t0);
	r = 0;
out:
	if (r < 0)
		fprintf(stderr, "bench: ingest: %s\n", strerror(-r));
	wf_store_txn_abort(t);
	wf_fusion_close(e);
	wf_store_close(s);
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return r;
}

static int run_replay(const char *rules_path, size_t n, size_t m, double *ret_rate)
{
	char *buf = NULL;
	size_t len = 0;
	char id[32];
	Wf__V1__Event ev;
	FILE *mem = open_memstream(&buf, &len);
	if (!mem)
		return -ENOMEM;
	for (size_t i = 0; i < n + m; i++) {
		make_event(i, n, &ev, id, sizeof id);
		char hz[40];
		snprintf(hz, sizeof hz, "%s", wf_hazard_to_string(ev.hazard));
		for (char *q = hz; *q; q++)
			if (*q >= 'a' && *q <= 'z')
				*q = (char)(*q - 'a' + 'A');
		fprintf(mem, "{\"id\":\"%s\",\"agency\":\"AGENCY_MET\",\"hazard\":\"HAZARD_%s\","
			     "\"region\":\"%s\",\"level\":\"LEVEL_II\",\"observed_ms\":%lld,"
			     "\"expires_ms\":%lld,\"status\":\"%s\",\"producer\":\"wf-bench-1\","
			     "\"seq\":%zu,\"msg_type\":\"MSG_TYPE_ALERT\"}\n",
			id, hz, ev.region, (long long)ev.observed_ms, (long long)ev.expires_ms,
			ev.status == WF__V1__STATUS__STATUS_ACTUAL ? "STATUS_ACTUAL" : "STATUS_EXERCISE",
			i + 1);
	}
	fclose(mem);
	FILE *in = fmemopen(buf, len, "r");
	struct wf_fusion_rules *rules = NULL;
	char err[512];
	int r = wf_fusion_rules_load(rules_path, &rules, err, sizeof err);
	if (r < 0 || !in) {
		free(buf);
		return r < 0 ? r : -ENOMEM;
	}
	struct wf_fusion_replay_options o = { 0 };
	struct wf_fusion_replay_stats st;
	r = wf_fusion_replay(in, "bench", rules, &o, &st, err, sizeof err);
	fclose(in);
	free(buf);
	if (r < 0) {
		fprintf(stderr, "bench: replay: %s\n", err);
		return r;
	}
	if (st.rejected)
		fprintf(stderr, "bench: replay: %llu lines rejected\n", (unsigned long long)st.rejected);
	*ret_rate = (double)st.events / st.seconds;
	return 0;
}

int main(int argc, char **argv)
{
	const char *src = getenv("WF_SOURCE_ROOT");
	char rules[512], regions[512];
	snprintf(rules, sizeof rules, "%s/deploy/fusion-rules.conf", src ? src : ".");
	snprintf(regions, sizeof regions, "%s/data/regions.csv", src ? src : ".");
	if (argc > 1)
		snprintf(rules, sizeof rules, "%s", argv[1]);
	if (argc > 2)
		snprintf(regions, sizeof regions, "%s", argv[2]);
	if (load_counties(regions) < 0) {
		fprintf(stderr, "bench-fusion-replay: cannot read counties from %s\n", regions);
		return 1;
	}
	static const size_t sizes[] = { 10000, 100000 };
	const size_t m = 200000;
	int fail = 0;
	for (size_t i = 0; i < 2; i++) {
		double rate = 0, rss = 0, heap = 0, rrate = 0;
		uint64_t inc = 0;
		if (run_engine(rules, sizes[i], m, &rate, &rss, &heap, &inc) < 0 ||
		    run_replay(rules, sizes[i], m, &rrate) < 0)
			return 1;
		printf("fusion replay, %6llu active incidents: engine %8.0f events/s, "
		       "full replay (JSON+validate) %8.0f events/s; per incident: RSS %6.0f B, "
		       "heap %6.0f B  [targets >= 200000 events/s, < 2048 B]\n",
		       (unsigned long long)inc, rate, rrate, rss, heap);
		fail |= rate < 200000 || rss >= 2048;
	}
	free(counties);
	(void)fail; /* figures are reported, not enforced */
	return 0;
}
