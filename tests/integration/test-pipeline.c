/* Integration: the agency adapters and wf-fusion as processes on a real
 * broker (a private mosquitto on a free 127.0.0.1 port).
 *
 *   - each adapter's shipped example feed -> broker -> a consumer that
 *     decodes (and validates) the events: exactly the --dry-run ids;
 *   - SIGKILL of an adapter in the middle of a 300-file spool: afterwards
 *     every event is in the consumer's hands exactly once;
 *   - two adapters (met AWS + water gauges) -> wf-fusion -> a flood chain
 *     warning made from both agencies' events; then the water adapter stops
 *     and fusion issues a monitoring-gap notice, cancelling nothing;
 *   - kill -9 of wf-fusion during 10,000 events: the warning versions are
 *     those of an uninterrupted run (replay mode over the same events), none
 *     missing, duplicated or different;
 *   - two wf-fusion instances owning disjoint regions produce exactly what
 *     one instance produces.
 *
 * The consumers are wf_nodes in this process (they ack, so producers stop
 * resending, and dedupe by (producer, seq)): what they record is what a
 * real consumer applies. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <ev.h>

#include "broker.h"
#include "proc.h"
#include "wf/clock.h"
#include "wf/codec.h"
#include "wf/node.h"
#include "wf/outbox.h"
#include "wf/pbjson.h"
#include "wf/topic.h"

#define MAX_IDS 40000u

static struct wf_test_broker *broker;
static struct ev_loop *loop;
static char *tmp;
static char port_s[16];

/* ---- small file helpers ---- */

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	rewind(f);
	char *buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static char *path_in(const char *dir, const char *name)
{
	char *p;
	ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
	return p;
}

static void copy_file(const char *from, const char *to)
{
	char *text = read_file(from);
	write_file(to, text);
	free(text);
}

static int count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_type == DT_REG)
			n++;
	closedir(d);
	return n;
}

/* An adapter config: the agency sections of EXAMPLE (its [service],
 * [adapter] and [mqtt] dropped) plus ours. Returns the path. */
static char *adapter_conf(const char *kind, const char *example, const char *spool)
{
	char *src = wf_test_source_path(example), *text = read_file(src), *out, *conf;
	char name[64], head[1024];
	size_t cap = strlen(text) + 2048, len = 0;
	bool skip = false;

	out = malloc(cap);
	ck_assert_ptr_nonnull(out);
	snprintf(head, sizeof head,
		 "[service]\nid = wf-%s-it\nstate_dir = %s/state-%s\nheartbeat = 1s\nresend = 1s\n"
		 "[mqtt]\nhost = 127.0.0.1\nport = %s\n[adapter]\nspool = %s\n",
		 kind, tmp, kind, port_s, spool);
	len = (size_t)snprintf(out, cap, "%s", head);
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (l[0] == '[')
			skip = strcmp(l, "[service]") == 0 || strcmp(l, "[adapter]") == 0 ||
			       strcmp(l, "[mqtt]") == 0;
		if (!skip)
			len += (size_t)snprintf(out + len, cap - len, "%s\n", l);
	}
	snprintf(name, sizeof name, "%s.conf", kind);
	conf = path_in(tmp, name);
	write_file(conf, out);
	free(out);
	free(text);
	free(src);
	return conf;
}

/* ---- consumers: wf_nodes standing in for fusion (events) or dispatch
 * (warnings) ---- */

struct rec {
	char *key;     /* event: its id; warning: "id@version" */
	char *content; /* warning: canonical JSON without producer/seq/epoch */
};

struct sink {
	struct wf_node *node;
	int64_t offset_ms;
	struct wf_clock clock;
	struct rec *recs;
	size_t n;
	char name[64];
	char online[8][64]; /* services seen ONLINE (births come after SUBACK) */
	size_t n_online;
};

static void sink_state(void *ud, const Wf__V1__ServiceState *st, bool retained)
{
	struct sink *s = ud;
	if (st->status != WF__V1__SERVICE_STATUS__SERVICE_ONLINE)
		return;
	for (size_t i = 0; i < s->n_online; i++)
		if (strcmp(s->online[i], st->service) == 0)
			return;
	if (s->n_online < 8)
		snprintf(s->online[s->n_online++], sizeof s->online[0], "%s", st->service);
}

struct online_wait {
	struct sink *s;
	const char *service;
};

static bool is_online(void *ud)
{
	struct online_wait *w = ud;
	for (size_t i = 0; i < w->s->n_online; i++)
		if (strcmp(w->s->online[i], w->service) == 0)
			return true;
	return false;
}

/* A fusion instance is ready (subscribed) when its birth is seen. */
static void wait_online(struct sink *s, const char *service)
{
	struct online_wait w = { s, service };
	ck_assert_msg(wf_test_run_until(loop, is_online, &w, 20000), "%s did not come up", service);
}

static int sink_event(void *ud, struct wf_txn *t, const Wf__V1__Event *ev,
		      const struct wf_node_msg *m, struct wf_codec_error *why)
{
	struct sink *s = ud;

	ck_assert_uint_lt(s->n, MAX_IDS);
	s->recs[s->n].key = strdup(ev->id);
	s->recs[s->n].content = NULL;
	s->n++;
	return 0;
}

/* The comparable form of a warning version: everything but who sent it
 * (producer, seq: a partition or a restart may renumber) and the epoch. */
static char *warning_content(const Wf__V1__Warning *w)
{
	Wf__V1__Warning copy = *w;
	copy.producer = (char *)"";
	copy.seq = 0;
	copy.epoch = 0;
	return wf_pbjson_print(&copy.base);
}

static int sink_warning(void *ud, struct wf_txn *t, const Wf__V1__Warning *w,
			const struct wf_node_msg *m, struct wf_codec_error *why)
{
	struct sink *s = ud;
	char key[256];

	ck_assert_uint_lt(s->n, MAX_IDS);
	snprintf(key, sizeof key, "%s@%u", w->id, w->version);
	s->recs[s->n].key = strdup(key);
	s->recs[s->n].content = warning_content(w);
	s->n++;
	return 0;
}

static void sink_reset(struct sink *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->recs[i].key);
		free(s->recs[i].content);
	}
	s->n = 0;
}

static struct sink *sink_new(const char *name, const char *filter, int64_t offset_ms)
{
	struct sink *s = calloc(1, sizeof *s);
	struct wf_node_options o;
	struct wf_node_callbacks cb = { .on_event = sink_event, .on_warning = sink_warning,
					.on_state = sink_state };
	char dir[600];

	ck_assert_ptr_nonnull(s);
	s->recs = calloc(MAX_IDS, sizeof *s->recs);
	ck_assert_ptr_nonnull(s->recs);
	snprintf(s->name, sizeof s->name, "%s", name);
	s->offset_ms = offset_ms;
	s->clock = wf_clock_shifted(&s->offset_ms);
	snprintf(dir, sizeof dir, "%s/%s", tmp, name);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	wf_node_options_init(&o);
	o.service = name;
	o.kind = "fusion";
	o.state_dir = dir;
	o.nosync = true;
	o.bus.host = "127.0.0.1";
	o.bus.port = wf_test_broker_port(broker);
	o.inputs = &filter;
	o.n_inputs = 1;
	o.clock = &s->clock;
	o.heartbeat_ms = 1000;
	ck_assert_int_eq(wf_node_new(loop, &o, &cb, s, &s->node), 0);
	ck_assert_int_eq(wf_node_start(s->node), 0);
	return s;
}

static bool sink_ready(void *ud) { return wf_node_ready(((struct sink *)ud)->node); }
static bool node_gone(void *ud) { return !wf_node_connected(ud); }

static struct sink *sink_free(struct sink *s)
{
	if (s == NULL)
		return NULL;
	wf_node_stop(s->node);
	(void)wf_test_run_until(loop, node_gone, s->node, 5000); /* OFFLINE out, disconnected */
	wf_node_free(s->node);
	sink_reset(s);
	free(s->recs);
	free(s);
	return NULL;
}

static int cmp_rec(const void *a, const void *b)
{
	return strcmp(((const struct rec *)a)->key, ((const struct rec *)b)->key);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts the sink's records; returns the number of keys seen twice. */
static size_t sink_sort_dups(struct sink *s)
{
	size_t dups = 0;

	qsort(s->recs, s->n, sizeof *s->recs, cmp_rec);
	for (size_t i = 1; i < s->n; i++)
		if (strcmp(s->recs[i - 1].key, s->recs[i].key) == 0)
			dups++;
	return dups;
}

struct count_wait {
	struct sink *s;
	size_t want;
};

static bool sink_has(void *ud)
{
	struct count_wait *w = ud;
	return w->s->n >= w->want;
}

/* ---- dry runs: the expected event ids ---- */

struct idlist {
	char **ids;
	size_t n;
};

static void idlist_free(struct idlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->ids[i]);
	free(l->ids);
	l->ids = NULL;
	l->n = 0;
}

/* Runs EXE --config CONF --now NOW --dry-run FILES... and collects the ids. */
static void dry_run_ids(const char *exe, const char *conf, const char *now, char **files,
			size_t nfiles, struct idlist *out)
{
	char *argv[1024];
	size_t n = 0;
	char *stdout_text = NULL;

	argv[n++] = (char *)exe;
	argv[n++] = (char *)"--config";
	argv[n++] = (char *)conf;
	argv[n++] = (char *)"--now";
	argv[n++] = (char *)now;
	argv[n++] = (char *)"--dry-run";
	for (size_t i = 0; i < nfiles && n < 1023; i++)
		argv[n++] = files[i];
	argv[n] = NULL;
	int st = wf_test_capture(argv, NULL, NULL, &stdout_text, 120000);
	ck_assert_msg(st == 0, "%s --dry-run: exit %d", exe, st);
	out->ids = calloc(MAX_IDS, sizeof *out->ids);
	out->n = 0;
	for (char *save = NULL, *l = strtok_r(stdout_text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		cJSON *j = cJSON_Parse(l);
		ck_assert_msg(j != NULL, "not JSON: %s", l);
		cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
		ck_assert_msg(cJSON_IsString(id), "no id: %s", l);
		ck_assert_uint_lt(out->n, MAX_IDS);
		out->ids[out->n++] = strdup(id->valuestring);
		cJSON_Delete(j);
	}
	free(stdout_text);
	qsort(out->ids, out->n, sizeof *out->ids, cmp_str);
}

/* The sink holds exactly the ids of L, each once. */
static void assert_same_ids(struct sink *s, const struct idlist *l, const char *what)
{
	size_t dups = sink_sort_dups(s);
	ck_assert_msg(dups == 0, "%s: %zu events applied twice", what, dups);
	ck_assert_msg(s->n == l->n, "%s: %zu events applied, %zu expected", what, s->n, l->n);
	for (size_t i = 0; i < l->n; i++)
		ck_assert_msg(strcmp(s->recs[i].key, l->ids[i]) == 0, "%s: event %s, expected %s",
			      what, s->recs[i].key, l->ids[i]);
}

static int64_t offset_to(const char *rfc3339)
{
	int64_t at;
	ck_assert_int_eq(wf_clock_parse(rfc3339, &at), 0);
	return at - wf_clock_now_ms(NULL);
}

/* ---- fixture ---- */

static void setup(void)
{
	ck_assert_int_eq(wf_test_broker_start(NULL, &broker), 0);
	snprintf(port_s, sizeof port_s, "%d", wf_test_broker_port(broker));
	loop = ev_loop_new(EVFLAG_AUTO);
	tmp = wf_test_mkdtemp("pipeline");
	ck_assert_ptr_nonnull(tmp);
}

static void teardown(void)
{
	ev_loop_destroy(loop);
	wf_test_broker_free(broker);
	if (getenv("WF_TEST_KEEP") == NULL) /* WF_TEST_KEEP=1: keep logs and state */
		wf_test_rmtree(tmp);
	free(tmp);
}

/* ---- 1. every adapter's example feed through the broker ---- */

struct feed {
	const char *kind;
	const char *conf;
	const char *now;
	const char *files[4];
};

static const struct feed feeds[] = {
	{ "met", "deploy/examples/met/met.conf", "2021-07-20T18:00:00+08:00",
	  { "deploy/examples/met/aws-20210720T1700.csv", "deploy/examples/met/cap-rainstorm-red.xml" } },
	{ "water", "deploy/examples/water/water.conf", "2026-07-20T18:00:00+08:00",
	  { "deploy/examples/water/gauge-20260720T1000.csv" } },
	{ "geo", "deploy/examples/geo/geo.conf", "2026-07-20T18:00:00+08:00",
	  { "deploy/examples/geo/risk-20260720T1000.csv", "deploy/examples/geo/sensors-20260720T1100.csv" } },
	{ "fire", "deploy/examples/fire/fire.conf", "2026-07-20T18:00:00+08:00",
	  { "deploy/examples/fire/danger-20260720T0800.csv", "deploy/examples/fire/hotspots-20260720T1030.csv",
	    "deploy/examples/fire/incidents-20260720T1150.csv" } },
	{ "police", "deploy/examples/police/police.conf", "2026-07-20T18:00:00+08:00",
	  { "deploy/examples/police/incidents-20260720T1130.csv" } },
};

static char *adapter_exe(const char *kind)
{
	char rel[128];
	snprintf(rel, sizeof rel, "services/%s/wf-%s", kind, kind);
	return wf_test_build_path(rel);
}

START_TEST(test_each_adapter_feed_through_broker)
{
	struct sink *s = sink_new("wf-fusion-sink", "wf/v1/event/#", 0);
	ck_assert(wf_test_run_until(loop, sink_ready, s, 10000));

	for (size_t f = 0; f < sizeof feeds / sizeof feeds[0]; f++) {
		const struct feed *fd = &feeds[f];
		char spool_name[64], *spool, *conf, *exe = adapter_exe(fd->kind), *log;
		char *files[4];
		size_t nfiles = 0;
		struct idlist want;

		snprintf(spool_name, sizeof spool_name, "spool-%s", fd->kind);
		spool = path_in(tmp, spool_name);
		ck_assert_int_eq(mkdir(spool, 0700), 0);
		conf = adapter_conf(fd->kind, fd->conf, spool);
		for (; nfiles < 4 && fd->files[nfiles]; nfiles++) {
			files[nfiles] = wf_test_source_path(fd->files[nfiles]);
			const char *base = strrchr(files[nfiles], '/') + 1;
			char *dst = path_in(spool, base);
			copy_file(files[nfiles], dst);
			free(dst);
		}
		dry_run_ids(exe, conf, fd->now, files, nfiles, &want);
		ck_assert_msg(want.n > 0, "%s: the example feed makes no events", fd->kind);

		/* the consumer validates event times against its clock */
		s->offset_ms = offset_to(fd->now);
		sink_reset(s);
		log = path_in(tmp, "adapters.log");
		char *argv[] = { exe, (char *)"--config", conf, (char *)"--now", (char *)fd->now, NULL };
		pid_t pid = wf_test_spawn(argv, NULL, log);
		ck_assert_int_gt(pid, 0);
		struct count_wait cw = { s, want.n };
		ck_assert_msg(wf_test_run_until(loop, sink_has, &cw, 20000),
			      "%s: %zu of %zu events arrived (log %s)", fd->kind, s->n, want.n, log);
		ck_assert_int_eq(wf_test_stop(pid, SIGTERM, 10000), 0);
		wf_test_run_for(loop, 200); /* late duplicates would show here */
		assert_same_ids(s, &want, fd->kind);

		char *done = path_in(spool, "done"), *rejected = path_in(spool, "rejected");
		ck_assert_int_eq(count_files(done), (int)nfiles);
		ck_assert_int_eq(count_files(rejected), 0);
		ck_assert_int_eq(count_files(spool), 0);
		free(done);
		free(rejected);
		idlist_free(&want);
		for (size_t i = 0; i < nfiles; i++)
			free(files[i]);
		free(spool);
		free(conf);
		free(exe);
		free(log);
	}
	sink_free(s);
}
END_TEST

/* ---- 2. SIGKILL in the middle of a spool ---- */

#define KILL_FILES 300
#define KILL_ROWS 40

struct done_wait {
	const char *dir;
	int want;
};

static bool done_reached(void *ud)
{
	struct done_wait *w = ud;
	return count_files(w->dir) >= w->want;
}

START_TEST(test_sigkill_mid_spool_exactly_once)
{
	const char *now = "2026-07-20T18:00:00+08:00";
	char *spool = path_in(tmp, "spool"), *gen = path_in(tmp, "gen");
	char *exe = adapter_exe("police"), *log = path_in(tmp, "police.log");
	char **files = calloc(KILL_FILES, sizeof *files);
	struct idlist want;

	ck_assert_int_eq(mkdir(spool, 0700), 0);
	ck_assert_int_eq(mkdir(gen, 0700), 0);
	char *conf = adapter_conf("police", "deploy/examples/police/police.conf", spool);
	/* 300 files of 40 crowd reports each, each report its own incident */
	for (int f = 0; f < KILL_FILES; f++) {
		char name[64], text[KILL_ROWS * 160 + 256];
		size_t len = (size_t)snprintf(text, sizeof text,
			"incident,time,region,category,status,grade,deaths,injured,crowd_density,text\n");
		for (int r = 0; r < KILL_ROWS; r++)
			len += (size_t)snprintf(text + len, sizeof text - len,
				"P110-20260720-%03d%02d,2026-07-20T%02d:%02d:00+08:00,410185002000,"
				"crowd,new,,,,6.1,游客聚集 %d\n",
				f, r, 8 + f / 60, f % 60, f * KILL_ROWS + r);
		snprintf(name, sizeof name, "incidents-%03d.csv", f);
		files[f] = path_in(gen, name);
		write_file(files[f], text);
		char *dst = path_in(spool, name);
		copy_file(files[f], dst);
		free(dst);
	}
	dry_run_ids(exe, conf, now, files, KILL_FILES, &want);
	ck_assert_uint_eq(want.n, KILL_FILES * KILL_ROWS);

	struct sink *s = sink_new("wf-fusion-sink", "wf/v1/event/#", offset_to(now));
	ck_assert(wf_test_run_until(loop, sink_ready, s, 10000));
	char *argv[] = { exe, (char *)"--config", conf, (char *)"--now", (char *)now, NULL };
	pid_t pid = wf_test_spawn(argv, NULL, log);
	ck_assert_int_gt(pid, 0);
	/* kill it while it works through the spool */
	char *done = path_in(spool, "done");
	struct done_wait dw = { done, KILL_FILES / 4 };
	ck_assert(wf_test_run_until(loop, done_reached, &dw, 60000));
	ck_assert_int_eq(wf_test_stop(pid, SIGKILL, 10000), 128 + SIGKILL);
	int left = count_files(spool);
	ck_assert_msg(left > 0, "the adapter had finished the spool before the kill");

	pid = wf_test_spawn(argv, NULL, log);
	ck_assert_int_gt(pid, 0);
	struct count_wait cw = { s, want.n };
	ck_assert_msg(wf_test_run_until(loop, sink_has, &cw, 60000),
		      "%zu of %zu events arrived after the restart (log %s)", s->n, want.n, log);
	ck_assert_int_eq(wf_test_stop(pid, SIGTERM, 10000), 0);
	wf_test_run_for(loop, 300);
	assert_same_ids(s, &want, "after SIGKILL");
	ck_assert_int_eq(count_files(done), KILL_FILES);
	ck_assert_int_eq(count_files(spool), 0);

	s = sink_free(s);
	idlist_free(&want);
	for (int f = 0; f < KILL_FILES; f++)
		free(files[f]);
	free(files);
	free(done);
	free(conf);
	free(spool);
	free(gen);
	free(exe);
	free(log);
}
END_TEST

/* ---- 2b. history across a restart ---- */

/* The met adapter's 3-hour accumulation spans two files; the daemon is
 * restarted between them. At start it re-reads done/ ([adapter] history),
 * so the second file still grades with the first one's rain: the events
 * are those of one dry run over both files. */
START_TEST(test_history_survives_restart)
{
	const char *now = "2026-07-20T10:30:00+08:00";
	char *spool = path_in(tmp, "spool"), *gen = path_in(tmp, "gen");
	char *exe = adapter_exe("met"), *log = path_in(tmp, "met.log");
	struct idlist want;
	const char *hdr = "station,time,rain_mm,wind_mean_ms,wind_gust_ms,temp_c,visibility_m\n";
	char text[512];

	ck_assert_int_eq(mkdir(spool, 0700), 0);
	ck_assert_int_eq(mkdir(gen, 0700), 0);
	char *conf = adapter_conf("met", "deploy/examples/met/met.conf", spool);
	char *a = path_in(gen, "aws-20260720T0800.csv"), *b = path_in(gen, "aws-20260720T0900.csv");
	snprintf(text, sizeof text, "%s57180,2026-07-20T07:00:00+08:00,22.4,3.1,7.5,24.6,4000\n"
				    "57180,2026-07-20T08:00:00+08:00,31.0,3.4,8.2,24.2,3000\n", hdr);
	write_file(a, text);
	snprintf(text, sizeof text, "%s57180,2026-07-20T09:00:00+08:00,28.6,3.0,7.9,24.0,3500\n", hdr);
	write_file(b, text);
	char *both[] = { a, b };
	dry_run_ids(exe, conf, now, both, 2, &want);
	struct idlist only_b;
	dry_run_ids(exe, conf, now, both + 1, 1, &only_b);
	ck_assert_uint_gt(want.n, only_b.n + 1); /* the second file needs the first's rain */

	struct sink *s = sink_new("wf-fusion-sink", "wf/v1/event/#", offset_to(now));
	ck_assert(wf_test_run_until(loop, sink_ready, s, 10000));
	char *argv[] = { exe, (char *)"--config", conf, (char *)"--now", (char *)now, NULL };
	pid_t pid = wf_test_spawn(argv, NULL, log);
	ck_assert_int_gt(pid, 0);
	char *dst = path_in(spool, "aws-20260720T0800.csv");
	copy_file(a, dst);
	free(dst);
	struct count_wait first = { s, 1 };
	ck_assert(wf_test_run_until(loop, sink_has, &first, 20000));
	ck_assert_int_eq(wf_test_stop(pid, SIGTERM, 10000), 0);

	pid = wf_test_spawn(argv, NULL, log);
	ck_assert_int_gt(pid, 0);
	dst = path_in(spool, "aws-20260720T0900.csv");
	copy_file(b, dst);
	free(dst);
	struct count_wait all = { s, want.n };
	ck_assert_msg(wf_test_run_until(loop, sink_has, &all, 20000),
		      "%zu of %zu events after the restart (log %s)", s->n, want.n, log);
	ck_assert_int_eq(wf_test_stop(pid, SIGTERM, 10000), 0);
	wf_test_run_for(loop, 200);
	assert_same_ids(s, &want, "history across a restart");
	char *text_log = read_file(log);
	ck_assert_ptr_nonnull(strstr(text_log, "history: re-read 1 file(s) of done/"));
	free(text_log);

	sink_free(s);
	idlist_free(&want);
	idlist_free(&only_b);
	free(a);
	free(b);
	free(conf);
	free(spool);
	free(gen);
	free(exe);
	free(log);
}
END_TEST

/* ---- wf-fusion as a process ---- */

/* MAP: the fusion store's initial LMDB map ([service] map_size); a small
 * one makes the store grow during the run, which re-runs batches. */
static char *fusion_conf(const char *id, const char *owned, const char *clock, bool ordered,
			 const char *map)
{
	char name[64], text[2048], *rules = wf_test_source_path("deploy/fusion-rules.conf");
	snprintf(text, sizeof text,
		 "[service]\nid = %s\nstate_dir = %s/state-%s\nheartbeat = 1s\nresend = 1s\n"
		 "map_size = %s\n"
		 "[mqtt]\nhost = 127.0.0.1\nport = %s\n"
		 "[fusion]\nrules = %s\nowned = %s\nclock = %s\nordered = %s\n",
		 id, tmp, id, map, port_s, rules, owned, clock, ordered ? "true" : "false");
	snprintf(name, sizeof name, "%s.conf", id);
	char *p = path_in(tmp, name);
	write_file(p, text);
	free(rules);
	return p;
}

static pid_t start_fusion(const char *conf, const char *wf_now, const char *log)
{
	char *exe = wf_test_build_path("services/fusion/wf-fusion");
	char env_now[128];
	char *argv[] = { exe, (char *)"--config", (char *)conf, NULL };
	char *env[] = { env_now, NULL };
	snprintf(env_now, sizeof env_now, "WF_NOW=%s", wf_now ? wf_now : "");
	pid_t pid = wf_test_spawn(argv, env, log);
	free(exe);
	ck_assert_int_gt(pid, 0);
	return pid;
}

/* ---- 3. two adapters -> fusion -> a chain warning ---- */

struct chain_wait {
	struct sink *s;
	size_t found;
};

static bool flood_chain_seen(void *ud)
{
	struct chain_wait *w = ud;
	for (size_t i = 0; i < w->s->n; i++) {
		const char *c = w->s->recs[i].content;
		if (c && strstr(c, "\"HAZARD_FLOOD\"") && strstr(c, "\"flood-chain\"") &&
		    strstr(c, "\"met:") && strstr(c, "\"water:")) {
			w->found = i;
			return true;
		}
	}
	return false;
}

struct gap_wait {
	struct sink *s;
};

static bool gap_seen(void *ud)
{
	struct gap_wait *g = ud;
	for (size_t i = 0; i < g->s->n; i++) {
		const char *c = g->s->recs[i].content;
		if (c && strstr(c, "\"HAZARD_MONITORING_GAP\"") && strstr(c, "\"source-liveness\""))
			return true;
	}
	return false;
}

START_TEST(test_two_adapters_make_a_chain_warning)
{
	const char *now = "2026-07-20T10:30:00+08:00";
	char *log = path_in(tmp, "chain.log");
	struct sink *w = sink_new("wf-dispatch-sink", "wf/v1/warning/#", offset_to(now));
	ck_assert(wf_test_run_until(loop, sink_ready, w, 10000));
	char *fconf = fusion_conf("wf-fusion-it", "", "system", true, "16M");
	pid_t fusion = start_fusion(fconf, now, log);

	char *met_spool = path_in(tmp, "spool-met"), *water_spool = path_in(tmp, "spool-water");
	ck_assert_int_eq(mkdir(met_spool, 0700), 0);
	ck_assert_int_eq(mkdir(water_spool, 0700), 0);
	char *met_conf = adapter_conf("met", "deploy/examples/met/met.conf", met_spool);
	char *water_conf = adapter_conf("water", "deploy/examples/water/water.conf", water_spool);
	char *src = wf_test_source_path("deploy/examples/met/aws-20260720T0900.csv");
	char *dst = path_in(met_spool, "aws-20260720T0900.csv");
	copy_file(src, dst);
	free(src);
	free(dst);
	src = wf_test_source_path("deploy/examples/water/gauge-20260720T1000.csv");
	dst = path_in(water_spool, "gauge-20260720T1000.csv");
	copy_file(src, dst);
	free(src);
	free(dst);
	char *met_exe = adapter_exe("met"), *water_exe = adapter_exe("water");
	char *met_argv[] = { met_exe, (char *)"--config", met_conf, (char *)"--now", (char *)now, NULL };
	char *water_argv[] = { water_exe, (char *)"--config", water_conf, (char *)"--now", (char *)now,
			       NULL };
	pid_t met = wf_test_spawn(met_argv, NULL, log);
	pid_t water = wf_test_spawn(water_argv, NULL, log);
	ck_assert_int_gt(met, 0);
	ck_assert_int_gt(water, 0);

	struct chain_wait cw = { w, 0 };
	ck_assert_msg(wf_test_run_until(loop, flood_chain_seen, &cw, 30000),
		      "no flood chain warning from met + water (%zu warning versions; log %s)", w->n,
		      log);
	/* the warning says why: both agencies' events and the chain rule */
	cJSON *j = cJSON_Parse(w->recs[cw.found].content);
	ck_assert_ptr_nonnull(j);
	cJSON *rules = cJSON_GetObjectItemCaseSensitive(j, "rule_ids");
	cJSON *evs = cJSON_GetObjectItemCaseSensitive(j, "event_ids");
	ck_assert(cJSON_IsArray(rules));
	ck_assert(cJSON_IsArray(evs));
	bool chain = false, from_met = false, from_water = false;
	cJSON *it;
	cJSON_ArrayForEach(it, rules)
		chain |= cJSON_IsString(it) && strcmp(it->valuestring, "flood-chain") == 0;
	cJSON_ArrayForEach(it, evs) {
		from_met |= cJSON_IsString(it) && strncmp(it->valuestring, "met:", 4) == 0;
		from_water |= cJSON_IsString(it) && strncmp(it->valuestring, "water:", 6) == 0;
	}
	ck_assert(chain && from_met && from_water);
	cJSON_Delete(j);

	/* the water source goes away while it feeds active warnings: fusion
	 * says so (a monitoring gap notice), it does not cancel anything */
	ck_assert_int_eq(wf_test_stop(water, SIGTERM, 10000), 0);
	struct gap_wait gw = { w };
	ck_assert_msg(wf_test_run_until(loop, gap_seen, &gw, 20000),
		      "no monitoring-gap notice after the water adapter stopped (log %s)", log);
	for (size_t i = 0; i < w->n; i++)
		ck_assert_msg(w->recs[i].content == NULL ||
				      strstr(w->recs[i].content, "\"MSG_TYPE_CANCEL\"") == NULL,
			      "a warning was cancelled when its source went silent: %s",
			      w->recs[i].content);
	ck_assert_int_eq(wf_test_stop(met, SIGTERM, 10000), 0);
	ck_assert_int_eq(wf_test_stop(fusion, SIGTERM, 10000), 0);
	w = sink_free(w);
	free(met_conf);
	free(water_conf);
	free(met_spool);
	free(water_spool);
	free(met_exe);
	free(water_exe);
	free(fconf);
	free(log);
}
END_TEST

/* ---- 4./5. 10,000 events through fusion ---- */

#define N_EVENTS 10000
static const char *const counties[] = {
	"410102000000", "410103000000", "410104000000", "410105000000", "410106000000",
	"410108000000", "410122000000", "410181000000", "410182000000", "410183000000",
	"410184000000", "410185000000", "410202000000", "410203000000", "410204000000",
	"410205000000", "410212000000", "410221000000", "410222000000", "410223000000",
	"410225000000",
};
#define N_COUNTIES (sizeof counties / sizeof counties[0])

struct producer {
	struct wf_node *node;
	int64_t offset_ms; /* its clock runs (resends), set back to each event's time */
	struct wf_clock clock;
	int64_t t0;
	int next;
};

/* Event I of the scenario: rainstorm and gale reports moving through 21
 * counties over 3.5 days, levels rising and falling, some cancelled. */
static void scenario_event(int64_t t0, int i, Wf__V1__Event *ev, char *id, size_t idlen)
{
	static const Wf__V1__Level levels[] = { WF__V1__LEVEL__LEVEL_IV, WF__V1__LEVEL__LEVEL_III,
						WF__V1__LEVEL__LEVEL_II, WF__V1__LEVEL__LEVEL_III,
						WF__V1__LEVEL__LEVEL_I, WF__V1__LEVEL__LEVEL_IV };
	wf__v1__event__init(ev);
	snprintf(id, idlen, "it-%05d", i);
	ev->id = id;
	ev->agency = WF__V1__AGENCY__AGENCY_MET;
	ev->hazard = (i / 7) % 3 == 0 ? WF__V1__HAZARD__HAZARD_GALE : WF__V1__HAZARD__HAZARD_RAINSTORM;
	ev->region = (char *)counties[(i * 7) % N_COUNTIES];
	ev->level = levels[(i / N_COUNTIES) % 6];
	ev->observed_ms = t0 + (int64_t)i * 30000;
	ev->issued_ms = ev->observed_ms;
	ev->expires_ms = ev->observed_ms + (15 + (i % 3) * 5) * 60000LL;
	ev->status = WF__V1__STATUS__STATUS_ACTUAL;
	ev->msg_type = WF__V1__MSG_TYPE__MSG_TYPE_ALERT;
	ev->text = (char *)"测试事件";
}

static int produce_chunk(struct wf_txn *t, void *ud)
{
	struct producer *p = ud;
	char id[32];
	int end = p->next + 500 > N_EVENTS ? N_EVENTS : p->next + 500;

	for (int i = p->next; i < end; i++) {
		Wf__V1__Event ev;
		scenario_event(p->t0, i, &ev, id, sizeof id);
		p->offset_ms = ev.observed_ms - wf_clock_now_ms(NULL);
		int r = wf_node_emit_event(p->node, t, &ev, NULL);
		if (r < 0)
			return r;
	}
	return 0;
}

static struct producer *producer_new(int64_t t0)
{
	struct producer *p = calloc(1, sizeof *p);
	struct wf_node_options o;
	struct wf_node_callbacks cb = { 0 };
	char *dir = path_in(tmp, "producer");

	ck_assert_int_eq(mkdir(dir, 0700), 0);
	p->t0 = t0;
	p->clock = wf_clock_shifted(&p->offset_ms);
	wf_node_options_init(&o);
	o.service = "wf-met-replay";
	o.kind = "met";
	o.agency = WF__V1__AGENCY__AGENCY_MET;
	o.state_dir = dir;
	o.nosync = true;
	o.bus.host = "127.0.0.1";
	o.bus.port = wf_test_broker_port(broker);
	o.clock = &p->clock;
	o.resend_ms = 1000;
	o.outbox_max_entries = 2 * N_EVENTS;
	ck_assert_int_eq(wf_node_new(loop, &o, &cb, p, &p->node), 0);
	ck_assert_int_eq(wf_node_start(p->node), 0);
	free(dir);
	return p;
}

static void produce_all(struct producer *p)
{
	for (p->next = 0; p->next < N_EVENTS; p->next += 500)
		ck_assert_int_eq(wf_node_update(p->node, produce_chunk, p), 0);
	p->offset_ms = 0; /* heartbeats and resends on the real clock */
}

static struct producer *producer_free(struct producer *p)
{
	wf_node_stop(p->node);
	(void)wf_test_run_until(loop, node_gone, p->node, 5000);
	wf_node_free(p->node);
	free(p);
	return NULL;
}

/* The uninterrupted run: replay mode over the same events, same engine. */
static void replay_expected(int64_t t0, struct rec **ret, size_t *ret_n)
{
	char *events = path_in(tmp, "events.jsonl");
	FILE *f = fopen(events, "w");
	char id[32];

	ck_assert_ptr_nonnull(f);
	for (int i = 0; i < N_EVENTS; i++) {
		Wf__V1__Event ev;
		scenario_event(t0, i, &ev, id, sizeof id);
		ev.producer = (char *)"wf-met-replay";
		ev.seq = (uint64_t)i + 1;
		char *js = wf_pbjson_print(&ev.base);
		ck_assert_ptr_nonnull(js);
		fprintf(f, "%s\n", js);
		free(js);
	}
	fclose(f);
	char *exe = wf_test_build_path("services/fusion/wf-fusion");
	char *rules = wf_test_source_path("deploy/fusion-rules.conf");
	char *regions = getenv("WF_REGIONS");
	char *argv[] = { exe, (char *)"--replay", events, (char *)"--rules", rules,
			 (char *)"--regions", regions, NULL };
	char *out = NULL;
	ck_assert_ptr_nonnull(regions);
	ck_assert_int_eq(wf_test_capture(argv, NULL, NULL, &out, 120000), 0);
	struct rec *recs = calloc(MAX_IDS, sizeof *recs);
	size_t n = 0;
	for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		ProtobufCMessage *m = NULL;
		char err[256];
		ck_assert_int_eq(wf_pbjson_parse(&wf__v1__warning__descriptor, l, strlen(l), &m, err,
						 sizeof err), 0);
		Wf__V1__Warning *w = (Wf__V1__Warning *)m;
		char key[256];
		snprintf(key, sizeof key, "%s@%u", w->id, w->version);
		ck_assert_uint_lt(n, MAX_IDS);
		recs[n].key = strdup(key);
		recs[n].content = warning_content(w);
		n++;
		protobuf_c_message_free_unpacked(m, NULL);
	}
	free(out);
	qsort(recs, n, sizeof *recs, cmp_rec);
	*ret = recs;
	*ret_n = n;
	free(exe);
	free(rules);
	free(events);
}

static void assert_same_versions(struct sink *s, const struct rec *want, size_t n_want,
				 const char *what)
{
	size_t dups = sink_sort_dups(s), missing = 0, different = 0, extra = 0, i = 0, j = 0;

	while (i < s->n || j < n_want) {
		int c = i == s->n ? 1 : j == n_want ? -1 : strcmp(s->recs[i].key, want[j].key);
		if (c == 0) {
			if (strcmp(s->recs[i].content, want[j].content) != 0) {
				if (different == 0)
					fprintf(stderr, "%s: %s differs:\n got  %s\n want %s\n", what,
						want[j].key, s->recs[i].content, want[j].content);
				different++;
			}
			i++;
			while (i < s->n && strcmp(s->recs[i].key, want[j].key) == 0)
				i++;
			j++;
		} else if (c < 0) {
			if (extra < 3)
				fprintf(stderr, "%s: unexpected %s\n", what, s->recs[i].content);
			extra++;
			i++;
		} else {
			if (missing < 3)
				fprintf(stderr, "%s: missing %s\n", what, want[j].content);
			missing++;
			j++;
		}
	}
	fprintf(stderr, "%s: %zu warning versions received, %zu expected: %zu missing, %zu "
			"duplicated, %zu different, %zu unexpected\n",
		what, s->n, n_want, missing, dups, different, extra);
	ck_assert_uint_eq(missing, 0);
	ck_assert_uint_eq(dups, 0);
	ck_assert_uint_eq(different, 0);
	ck_assert_uint_eq(extra, 0);
}

static void free_recs(struct rec *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(r[i].key);
		free(r[i].content);
	}
	free(r);
}

START_TEST(test_fusion_kill9_same_versions)
{
	int64_t t0 = wf_clock_now_ms(NULL) - 4 * 86400000LL;
	struct rec *want;
	size_t n_want;

	t0 -= t0 % 60000;
	replay_expected(t0, &want, &n_want);
	ck_assert_uint_gt(n_want, 500);

	char *log = path_in(tmp, "fusion.log");
	struct sink *w = sink_new("wf-dispatch-sink", "wf/v1/warning/#", 0);
	ck_assert(wf_test_run_until(loop, sink_ready, w, 10000));
	char *conf = fusion_conf("wf-fusion-it", "", "events", true, "256K");
	pid_t fusion = start_fusion(conf, NULL, log);
	struct producer *p = producer_new(t0);
	produce_all(p);

	/* kill -9 once a quarter of the versions are out, twice more later; the
	 * store starts at 256 KiB, so it also grows (batches re-run) on the way */
	for (int k = 1; k <= 3; k++) {
		struct count_wait part = { w, n_want * (size_t)k / 4 };
		if (!wf_test_run_until(loop, sink_has, &part, 60000)) {
			wf_test_stop(fusion, SIGTERM, 10000); /* its log says what it did */
			struct wf_node_stats ps;
			wf_node_get_stats(p->node, &ps);
			fprintf(stderr, "producer: %llu emitted, %llu acks, %lld pending\n",
				(unsigned long long)ps.emitted, (unsigned long long)ps.acks_received,
				(long long)wf_node_pending(p->node));
			fprintf(stderr, "producer: next resend due in %lld ms, connected %d\n",
				(long long)(wf_outbox_next_due_ms(wf_node_outbox(p->node)) -
					    wf_clock_now_ms(&p->clock)),
				wf_node_connected(p->node));
			char *blog = wf_test_broker_log(broker);
			fprintf(stderr, "broker log:\n%s\n", blog ? blog : "");
			free(blog);
			char *text = read_file(log);
			fprintf(stderr, "%s", text);
			free(text);
			ck_abort_msg("kill %d: %zu of %zu versions (log %s)", k, w->n, n_want, log);
		}
		ck_assert_int_eq(wf_test_stop(fusion, SIGKILL, 10000), 128 + SIGKILL);
		fusion = start_fusion(conf, NULL, log);
	}
	struct count_wait all = { w, n_want };
	ck_assert_msg(wf_test_run_until(loop, sink_has, &all, 120000),
		      "%zu of %zu versions after the kills (log %s)", w->n, n_want, log);
	wf_test_run_for(loop, 1500); /* duplicates resent after a kill would show here */
	ck_assert_int_eq(wf_test_stop(fusion, SIGTERM, 10000), 0);
	assert_same_versions(w, want, n_want, "kill -9 x3");

	p = producer_free(p);
	w = sink_free(w);
	free_recs(want, n_want);
	free(conf);
	free(log);
}
END_TEST

START_TEST(test_two_partitions_equal_one_instance)
{
	int64_t t0 = wf_clock_now_ms(NULL) - 4 * 86400000LL;
	struct rec *want;
	size_t n_want;

	t0 -= t0 % 60000;
	replay_expected(t0, &want, &n_want);

	char *log = path_in(tmp, "fusion.log");
	struct sink *w = sink_new("wf-dispatch-sink", "wf/v1/warning/#", 0);
	ck_assert(wf_test_run_until(loop, sink_ready, w, 10000));
	/* 郑州 (4101) and 开封 (4102): one producer feeds both, so not ordered */
	char *a = fusion_conf("wf-fusion-a", "4101", "events", false, "16M");
	char *b = fusion_conf("wf-fusion-b", "4102", "events", false, "16M");
	pid_t pa = start_fusion(a, NULL, log), pb = start_fusion(b, NULL, log);
	wait_online(w, "wf-fusion-a");
	wait_online(w, "wf-fusion-b");
	struct producer *p = producer_new(t0);
	produce_all(p);
	struct count_wait all = { w, n_want };
	/* on a timeout the comparison below says what is missing */
	if (!wf_test_run_until(loop, sink_has, &all, 120000))
		fprintf(stderr, "%zu of %zu versions from two partitions (log %s)\n", w->n, n_want,
			log);
	wf_test_run_for(loop, 500);
	ck_assert_int_eq(wf_test_stop(pa, SIGTERM, 10000), 0);
	ck_assert_int_eq(wf_test_stop(pb, SIGTERM, 10000), 0);
	assert_same_versions(w, want, n_want, "two partitions");

	p = producer_free(p);
	w = sink_free(w);
	free_recs(want, n_want);
	free(a);
	free(b);
	free(log);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pipeline");
	/* one case per test: CK_RUN_CASE=kill9 runs one */
	const struct {
		const char *name;
		const TTest *test;
	} cases[] = {
		{ "adapters", test_each_adapter_feed_through_broker },
		{ "sigkill", test_sigkill_mid_spool_exactly_once },
		{ "history", test_history_survives_restart },
		{ "chain", test_two_adapters_make_a_chain_warning },
		{ "kill9", test_fusion_kill9_same_versions },
		{ "partitions", test_two_partitions_equal_one_instance },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_add_checked_fixture(tc, setup, teardown);
		tcase_set_timeout(tc, 300);
		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
