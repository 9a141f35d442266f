/* bench-adapters: the five agency adapters on large generated feeds.
 *
 * For each feed (met AWS CSV, met CAP XML, water gauges, geo slope sensors,
 * fire 119 incidents, police 110 incidents) this generates, in a temp dir,
 * a config (the agency sections of deploy/examples/<k>/<k>.conf plus
 * generated stations/sensors) and ~20,000-50,000 realistic rows in the
 * example files' shapes (a storm crossing 500 rain gauges, flood waves at
 * 200 river stations, creeping slopes, incidents opened/updated/closed),
 * then measures:
 *
 *   1. --dry-run: `wf-<k> --config C --now NOW --dry-run FILE` on one big
 *      file (CAP: 1,000 files, one alert each); rows/s and events/s (JSON
 *      lines on stdout), process start to exit;
 *   2. spool -> broker: the adapter as a daemon (durable LMDB commits, its
 *      defaults) on a private mosquitto, the same rows split in N files
 *      (time slices) dropped into its spool by rename() 1.1 s after its
 *      ONLINE birth (--settle; docs/benchmarks.md, finding 3); an in-process
 *      consumer wf_node (durable too: group commit + fsync, acks after the
 *      commit) subscribed to wf/v1/event/#; events/s from the first rename
 *      to the last event applied. The expected count is the dry run of
 *      the same N files.
 *
 * The baseline: raw Mosquitto QoS 1 msg/s, measured in this run by the
 * bench-broker program next to this one (--count 50000), or given with
 * --raw-qos1 (bench/run passes the figure bench-broker printed).
 *
 * Output (stdout), "name value" lines:
 *   adapters.<feed>.dryrun_rows_per_s N, adapters.<feed>.dryrun_events_per_s N
 *   adapters.<feed>.spool_events_per_s N
 *   ratio.adapters.<feed>.spool_vs_raw_qos1 R
 * Bounded: every wait has a deadline (--time-limit per phase, default 60 s);
 * timings are reported, never asserted. */
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "proc.h"
#include "util.h"
#include "wf/clock.h"
#include "wf/node.h"

#ifndef BENCH_SOURCE_ROOT
#define BENCH_SOURCE_ROOT "."
#endif
#ifndef BENCH_BUILD_ROOT
#define BENCH_BUILD_ROOT "."
#endif

/* What exit() must not leave behind (wf_test_die() and the generators exit). */
static struct wf_test_broker *g_broker;
static pid_t g_child;

static void cleanup(void)
{
	if (g_child > 0)
		wf_test_stop(g_child, SIGTERM, 10000);
	g_child = 0;
	g_broker = wf_test_broker_free(g_broker);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	if (!f)
		wf_test_die(path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	rewind(f);
	char *b = malloc((size_t)n + 1);
	if (!b || fread(b, 1, (size_t)n, f) != (size_t)n)
		wf_test_die(path);
	b[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return b;
}

/* ---- a growing text buffer ---- */

struct buf {
	char *p;
	size_t len, cap;
};

static void bprintf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(struct buf *b, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			wf_test_die("vsnprintf");
		if (b->p && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p)
			wf_test_die("realloc");
		b->cap = cap;
	}
}

/* ---- the region table: township codes under Henan (41) ---- */

static char (*townships)[13];
static size_t n_townships;
static char (*counties4101)[7];
static size_t n_counties4101;

static void load_regions(const char *path)
{
	char *text = slurp(path, NULL);
	townships = calloc(4096, sizeof *townships);
	counties4101 = calloc(64, sizeof *counties4101);
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (strncmp(l, "41", 2) != 0 || strlen(l) < 13 || l[12] != ',')
			continue;
		if (strstr(l, ",township") && n_townships < 4096)
			snprintf(townships[n_townships++], 13, "%.12s", l);
		else if (strstr(l, ",county") && strncmp(l, "4101", 4) == 0 && n_counties4101 < 64)
			snprintf(counties4101[n_counties4101++], 7, "%.6s", l);
	}
	free(text);
	if (n_townships == 0 || n_counties4101 == 0) {
		fprintf(stderr, "bench-adapters: %s: no Henan townships/counties\n", path);
		exit(1);
	}
}

/* ---- generated rows ---- */

struct row {
	int64_t t;   /* ms since the epoch */
	int ent;     /* station/sensor/incident index */
	char *text;  /* one CSV line with its \n */
};

struct feed {
	const char *name;   /* "met_aws" ... */
	const char *kind;   /* "met" ... */
	const char *now;    /* --now */
	const char *header; /* CSV header line (NULL: CAP files) */
	bool by_entity;     /* within a file: sorted by (entity, time), else by time */
	struct row *rows;
	size_t n_rows, cap_rows;
	struct buf conf_extra; /* appended to the example's agency sections */
	int spool_files;
};

static int64_t parse_time(const char *s)
{
	int64_t ms;
	if (wf_clock_parse(s, &ms) < 0) {
		fprintf(stderr, "bench-adapters: bad time %s\n", s);
		exit(1);
	}
	return ms;
}

/* RFC 3339 in +08:00 (Beijing time, as the agencies write it). */
static void fmt_time(int64_t ms, char out[32])
{
	time_t t = (time_t)(ms / 1000) + 8 * 3600;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%S+08:00", &tm);
}

static void add_row(struct feed *f, int64_t t, int ent, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void add_row(struct feed *f, int64_t t, int ent, const char *fmt, ...)
{
	if (f->n_rows == f->cap_rows) {
		f->cap_rows = f->cap_rows ? f->cap_rows * 2 : 1024;
		f->rows = realloc(f->rows, f->cap_rows * sizeof *f->rows);
		if (!f->rows)
			wf_test_die("realloc");
	}
	va_list ap;
	va_start(ap, fmt);
	char *s;
	if (vasprintf(&s, fmt, ap) < 0)
		wf_test_die("vasprintf");
	va_end(ap);
	f->rows[f->n_rows++] = (struct row){ t, ent, s };
}

static int cmp_time(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->ent - y->ent;
}

static int cmp_entity(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	if (x->ent != y->ent)
		return x->ent - y->ent;
	return x->t < y->t ? -1 : x->t > y->t;
}

/* Deterministic pseudo-randomness. */
static uint32_t hash32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352dU;
	x ^= x >> 15;
	x *= 0x846ca68bU;
	x ^= x >> 16;
	return x;
}

static double frand(uint32_t a, uint32_t b)
{
	return (double)(hash32(a * 2654435761U ^ hash32(b)) & 0xffffff) / (double)0x1000000;
}

/* met: a rainstorm band crossing S automatic weather stations, hourly for
 * H hours up to an hour before NOW: rain peaks of 5-90 mm/h at station-
 * dependent hours, gusts with the cells, visibility down in heavy rain. */
static void gen_met_aws(struct feed *f, int stations, int hours)
{
	int64_t end = parse_time(f->now) - 3600000;
	end -= end % 3600000;
	bprintf(&f->conf_extra, "[met.stations]\n");
	for (int s = 0; s < stations; s++) {
		const char *reg = townships[hash32((uint32_t)s) % n_townships];
		bprintf(&f->conf_extra, "5%04d = %s, %.2f, %.2f\n", s, reg, 32 + 4 * frand(s, 1),
			111 + 4 * frand(s, 2));
	}
	for (int s = 0; s < stations; s++) {
		double peak = 5 + 85 * frand(s, 3) * frand(s, 4);
		double centre = hours * (0.3 + 0.6 * frand(s, 5)), width = 2 + 4 * frand(s, 6);
		for (int h = 0; h < hours; h++) {
			int64_t t = end - (int64_t)(hours - 1 - h) * 3600000;
			double x = (h - centre) / width, cell = exp(-x * x);
			double rain = peak * cell, mean = 3 + 14 * cell * frand(s, 7);
			double gust = mean * 1.6 + 2 * frand(s, h);
			double temp = 26 - 4 * cell + 2 * sin(h * 2 * M_PI / 24);
			int vis = rain > 40 ? 300 + (int)(600 * frand(s, h + 99)) : 8000;
			char ts[32];
			fmt_time(t, ts);
			add_row(f, t, s, "5%04d,%s,%.1f,%.1f,%.1f,%.1f,%d\n", s, ts, rain, mean, gust,
				temp, vis);
		}
	}
}

/* water: S river stations (the thresholds of 告成水文站), hourly stage and
 * flow for H hours (H < 168: inside the 7-day window), one flood wave per
 * station, some crossing warning/guaranteed/record stage, then receding. */
static void gen_water(struct feed *f, int stations, int hours)
{
	int64_t end = parse_time(f->now) - 3600000;
	end -= end % 3600000;
	for (int s = 0; s < stations; s++)
		bprintf(&f->conf_extra,
			"[water.station W%05d]\nname = 测站%d\nkind = river\nregion = %s\n"
			"warning_stage = 262.50\nguaranteed_stage = 263.75\nrecord_stage = 265.00\n"
			"flow_5y = 800\nflow_20y = 1500\nflow_50y = 2100\ndrought_stage = 258.50\n",
			s, s, townships[hash32((uint32_t)s + 7) % n_townships]);
	for (int s = 0; s < stations; s++) {
		double amp = 4.5 * frand(s, 11), centre = hours * (0.2 + 0.6 * frand(s, 12));
		double width = 6 + 20 * frand(s, 13);
		for (int h = 0; h < hours; h++) {
			int64_t t = end - (int64_t)(hours - 1 - h) * 3600000;
			double x = (h - centre) / width, wave = amp * exp(-x * x);
			double stage = 260.8 + wave + 0.02 * sin(h);
			char ts[32];
			fmt_time(t, ts);
			add_row(f, t, s, "W%05d,%s,%.2f,%.0f\n", s, ts, stage, 250 + wave * 420);
		}
	}
}

/* geo: S GNSS slope sensors every 30 min for H half-hours, creeping at
 * 0.5-25 mm/d, a third of them accelerating, site rain with a storm. */
static void gen_geo(struct feed *f, int sensors, int halfhours)
{
	int64_t end = parse_time(f->now) - 1800000;
	end -= end % 1800000;
	for (int s = 0; s < sensors; s++)
		bprintf(&f->conf_extra,
			"[geo.sensor G%05d]\nname = 滑坡监测点%d\nregion = %s\nhazard = landslide\n",
			s, s, townships[hash32((uint32_t)s + 13) % n_townships]);
	for (int s = 0; s < sensors; s++) {
		double v0 = 0.5 + 20 * frand(s, 21) * frand(s, 22); /* mm/d */
		double acc = frand(s, 23) < 0.33 ? 2 * frand(s, 24) : 0; /* mm/d^2 */
		double d = 30 + 20 * frand(s, 25);
		for (int h = 0; h < halfhours; h++) {
			int64_t t = end - (int64_t)(halfhours - 1 - h) * 1800000;
			double days = h / 48.0;
			double disp = d + v0 * days + 0.5 * acc * days * days;
			double rain = 160 * exp(-pow((h - halfhours * 0.6) / 20.0, 2)) * frand(s, 26);
			char ts[32];
			fmt_time(t, ts);
			add_row(f, t, s, "G%05d,%s,%.2f,,%.1f\n", s, ts, disp, rain);
		}
	}
}

/* fire: 119 incidents opened, updated twice and closed (4 reports 40 min
 * apart), starting over 3 days; burned area grows through 1/100 ha. */
static void gen_fire(struct feed *f, int incidents)
{
	static const char *const types[] = { "forest", "grassland", "urban", "hazmat", "explosion" };
	static const char *const status[] = { "new", "update", "update", "closed" };
	int64_t end = parse_time(f->now) - 3 * 3600000;
	for (int i = 0; i < incidents; i++) {
		int64_t start = end - (int64_t)(frand(i, 31) * 3 * 86400000.0);
		start -= start % 60000;
		const char *type = types[hash32((uint32_t)i) % 5];
		const char *reg = townships[hash32((uint32_t)i + 31) % n_townships];
		double area = 0.2 + 300 * pow(frand(i, 32), 3);
		for (int k = 0; k < 4; k++) {
			int64_t t = start + k * 2400000LL;
			char ts[32];
			fmt_time(t, ts);
			add_row(f, t, i, "F119-%08d,%s,%s,%s,%s,%.1f,%d,%d,%s 第%d报\n", i, ts, reg, type,
				status[k], area * (k + 1) / 4, k == 3 && frand(i, 33) < 0.02 ? 3 : 0,
				(int)(12 * pow(frand(i, 34), 4)) * k, "山林起火，已出动", k + 1);
		}
	}
}

/* police: 110 incidents: new, update, closed 30 min apart over 3 days;
 * crowds with densities 3-7.5 /m2, traffic and hazmat with casualties. */
static void gen_police(struct feed *f, int incidents)
{
	static const char *const cats[] = { "crowd", "traffic", "hazmat", "explosion",
					    "public_order", "missing" };
	static const char *const status[] = { "new", "update", "closed" };
	int64_t end = parse_time(f->now) - 2 * 3600000;
	for (int i = 0; i < incidents; i++) {
		int64_t start = end - (int64_t)(frand(i, 41) * 3 * 86400000.0);
		start -= start % 60000;
		const char *cat = cats[hash32((uint32_t)i + 5) % 6];
		const char *reg = townships[hash32((uint32_t)i + 41) % n_townships];
		bool crowd = strcmp(cat, "crowd") == 0;
		for (int k = 0; k < 3; k++) {
			int64_t t = start + k * 1800000LL;
			char ts[32], dens[16] = "", deaths[16] = "", inj[16] = "";
			fmt_time(t, ts);
			if (crowd)
				snprintf(dens, sizeof dens, "%.1f", k == 2 ? 2.0 : 3 + 4.5 * frand(i, 42 + k));
			else {
				snprintf(deaths, sizeof deaths, "%d", (int)(5 * pow(frand(i, 45), 6)));
				snprintf(inj, sizeof inj, "%d", (int)(30 * pow(frand(i, 46), 4)));
			}
			add_row(f, t, i, "P110-%08d,%s,%s,%s,%s,,%s,%s,%s,%s 第%d报\n", i, ts, reg, cat,
				status[k], deaths, inj, dens, "现场处置中", k + 1);
		}
	}
}

/* met CAP: copies of cap-rainstorm-red.xml, each its own identifier, sent
 * time (seconds apart), severity and county (GB2260 geocode). */
static char **gen_cap(const char *dir, int n, const char *example)
{
	static const char *const sev[] = { "Extreme", "Severe", "Moderate", "Minor" };
	char *tpl = slurp(example, NULL);
	char **paths = calloc((size_t)n + 1, sizeof *paths);
	for (int i = 0; i < n; i++) {
		struct buf b = { 0 };
		char ident[64], sent[32], county[8];
		snprintf(ident, sizeof ident, "41010041600000_2021072016%04d", i);
		int64_t t = parse_time("2021-07-20T16:30:00+08:00") - (int64_t)(n - i) * 1000;
		fmt_time(t, sent);
		snprintf(county, sizeof county, "%s", counties4101[i % n_counties4101]);
		const char *p = tpl;
		/* replace, in document order, <identifier>, <sent>, <severity>, <onset>, <value> */
		struct {
			const char *open, *close, *val;
		} rep[] = {
			{ "<identifier>", "</identifier>", ident }, { "<sent>", "</sent>", sent },
			{ "<severity>", "</severity>", sev[i % 4] }, { "<onset>", "</onset>", sent },
			{ "<value>", "</value>", county },
		};
		for (size_t k = 0; k < sizeof rep / sizeof rep[0]; k++) {
			const char *o = strstr(p, rep[k].open), *c = o ? strstr(o, rep[k].close) : NULL;
			if (!c) {
				fprintf(stderr, "bench-adapters: %s: no %s\n", example, rep[k].open);
				exit(1);
			}
			o += strlen(rep[k].open);
			bprintf(&b, "%.*s%s", (int)(o - p), p, rep[k].val);
			p = c;
		}
		bprintf(&b, "%s", p);
		paths[i] = wf_test_xasprintf("%s/cap-%05d.xml", dir, i);
		wf_test_spit(paths[i], b.p, b.len);
		free(b.p);
	}
	free(tpl);
	return paths;
}

/* Writes rows [from, to) of F (sorted by time) as one CSV file, sorted as
 * the feed wants it. */
static void write_csv(const struct feed *f, size_t from, size_t to, const char *path)
{
	struct row *part = malloc((to - from + 1) * sizeof *part);
	memcpy(part, f->rows + from, (to - from) * sizeof *part);
	if (f->by_entity)
		qsort(part, to - from, sizeof *part, cmp_entity);
	struct buf b = { 0 };
	bprintf(&b, "# generated by bench-adapters (%s)\n%s\n", f->name, f->header);
	for (size_t i = 0; i < to - from; i++)
		bprintf(&b, "%s", part[i].text);
	wf_test_spit(path, b.p, b.len);
	free(b.p);
	free(part);
}

/* The agency sections of EXAMPLE (its [service], [adapter], [mqtt] dropped),
 * ours first, F's generated sections last. */
static char *write_conf(const char *dir, const char *kind, const char *example, const char *head,
			const struct buf *extra, const char *tag)
{
	char *text = slurp(example, NULL);
	struct buf b = { 0 };
	bool skip = false;
	bprintf(&b, "%s", head);
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (l[0] == '[')
			skip = strcmp(l, "[service]") == 0 || strcmp(l, "[adapter]") == 0 ||
			       strcmp(l, "[mqtt]") == 0;
		if (!skip)
			bprintf(&b, "%s\n", l);
	}
	if (extra && extra->p)
		bprintf(&b, "%s", extra->p);
	char *path = wf_test_xasprintf("%s/%s-%s.conf", dir, kind, tag);
	wf_test_spit(path, b.p, b.len);
	free(b.p);
	free(text);
	return path;
}

/* ---- running the adapter ---- */

static char *adapter_exe(const char *kind)
{
	char rel[128];
	snprintf(rel, sizeof rel, "services/%s/wf-%s", kind, kind);
	return wf_test_build_path(rel);
}

struct dry {
	long events, rejected;
	double secs;
};

static int dry_run(const char *kind, const char *conf, const char *now, char **files, size_t n,
		   const char *log, struct dry *ret)
{
	char **argv = calloc(n + 8, sizeof *argv);
	char *exe = adapter_exe(kind), *out = NULL;
	size_t k = 0;
	argv[k++] = exe;
	argv[k++] = (char *)"--config";
	argv[k++] = (char *)conf;
	argv[k++] = (char *)"--now";
	argv[k++] = (char *)now;
	argv[k++] = (char *)"--dry-run";
	for (size_t i = 0; i < n; i++)
		argv[k++] = files[i];
	argv[k] = NULL;
	double t0 = wf_test_mono_s();
	int st = wf_test_capture(argv, NULL, log, &out, 120000);
	ret->secs = wf_test_mono_s() - t0;
	ret->events = ret->rejected = 0;
	for (char *p = out; p && *p;) {
		char *nl = strchr(p, '\n');
		if (strncmp(p, "{\"rejected\"", 11) == 0) {
			if (ret->rejected++ == 0)
				fprintf(stderr, "bench-adapters: %s: %.*s\n", kind,
					(int)(nl ? nl - p : (long)strlen(p)), p);
		} else
			ret->events++;
		if (!nl)
			break;
		p = nl + 1;
	}
	free(out);
	free(exe);
	free(argv);
	if (st != 0)
		fprintf(stderr, "bench-adapters: wf-%s --dry-run exited %d (log %s)\n", kind, st, log);
	return st;
}

/* ---- the consumer ---- */

struct sink {
	struct wf_node *node;
	int64_t offset_ms;
	struct wf_clock clock;
	long applied;
	double t_first, t_last;
	char want_online[64];
	bool online;
};

static int sink_event(void *ud, struct wf_txn *t, const Wf__V1__Event *ev,
		      const struct wf_node_msg *m, struct wf_codec_error *why)
{
	struct sink *s = ud;
	(void)t;
	(void)ev;
	(void)m;
	(void)why;
	if (s->applied++ == 0)
		s->t_first = wf_test_mono_s();
	s->t_last = wf_test_mono_s();
	return 0;
}

static void sink_state(void *ud, const Wf__V1__ServiceState *st, bool retained)
{
	struct sink *s = ud;
	(void)retained;
	if (st->status == WF__V1__SERVICE_STATUS__SERVICE_ONLINE &&
	    strcmp(st->service, s->want_online) == 0)
		s->online = true;
}

static bool sink_ready(void *ud) { return wf_node_ready(((struct sink *)ud)->node); }
static bool sink_online(void *ud) { return ((struct sink *)ud)->online; }

struct count_wait {
	struct sink *s;
	long want;
};

static bool sink_has(void *ud)
{
	struct count_wait *w = ud;
	return w->s->applied >= w->want;
}

struct cfg {
	int scale_pct;        /* 100: the default sizes */
	int spool_files;      /* 0: per feed default */
	double time_limit_s;
	double raw_qos1;
	bool keep;
	const char *only;
	int settle_ms; /* wait after ONLINE before the drop */
};

/* Spool phase of feed F: N files (prepared as dot-files in SPOOL), the
 * daemon started, ONLINE seen, then renamed in; events/s until the consumer
 * applied EXPECT. */
static double spool_phase(const struct cfg *c, struct ev_loop *loop, struct wf_test_broker *br,
			  const char *dir, const char *kind, const char *feedname, const char *now,
			  const char *example, const struct buf *extra, char **names, char **hidden,
			  size_t n, long expect, bool *ok)
{
	char *spool = wf_test_xasprintf("%s/spool-%s", dir, feedname);
	char *state = wf_test_xasprintf("%s/state-%s", dir, feedname);
	char *cdir = wf_test_xasprintf("%s/consumer-%s", dir, feedname);
	char *log = wf_test_xasprintf("%s/%s-daemon.log", dir, feedname);
	char id[64], head[2048];
	double rate = 0;

	snprintf(id, sizeof id, "wf-%s-bench", kind);
	snprintf(head, sizeof head,
		 "[service]\nid = %s\nstate_dir = %s\nheartbeat = 1s\n"
		 "[mqtt]\nhost = 127.0.0.1\nport = %d\n[adapter]\nspool = %s\n",
		 id, state, wf_test_broker_port(br), spool);
	char *conf = write_conf(dir, kind, example, head, extra, "daemon");
	if (mkdir(cdir, 0700) < 0)
		wf_test_die(cdir);

	struct sink s = { 0 };
	snprintf(s.want_online, sizeof s.want_online, "%s", id);
	int64_t at = parse_time(now);
	s.offset_ms = at - wf_clock_now_ms(NULL);
	s.clock = wf_clock_shifted(&s.offset_ms);
	static const char *inputs[] = { "wf/v1/event/#" };
	struct wf_node_options o;
	struct wf_node_callbacks cb = { .on_event = sink_event, .on_state = sink_state };
	wf_node_options_init(&o);
	o.service = "wf-fusion-bench";
	o.kind = "fusion";
	o.state_dir = cdir;
	o.map_size = 256u << 20;
	o.bus.host = "127.0.0.1";
	o.bus.port = wf_test_broker_port(br);
	o.inputs = inputs;
	o.n_inputs = 1;
	o.clock = &s.clock;
	o.heartbeat_ms = 1000;
	int r = wf_node_new(loop, &o, &cb, &s, &s.node);
	if (r < 0) {
		fprintf(stderr, "bench-adapters: consumer: %s\n", strerror(-r));
		goto out;
	}
	wf_node_start(s.node);
	if (!wf_test_run_until(loop, sink_ready, &s, 10000)) {
		fprintf(stderr, "bench-adapters: consumer did not connect\n");
		goto out;
	}
	char *exe = adapter_exe(kind);
	char *argv[] = { exe, (char *)"--config", conf, (char *)"--now", (char *)now, NULL };
	pid_t pid = wf_test_spawn(argv, NULL, log);
	g_child = pid;
	free(exe);
	if (pid < 0) {
		fprintf(stderr, "bench-adapters: spawn wf-%s: %s\n", kind, strerror((int)-pid));
		goto out;
	}
	if (!wf_test_run_until(loop, sink_online, &s, 20000)) {
		fprintf(stderr, "bench-adapters: wf-%s did not come ONLINE (log %s)\n", kind, log);
		wf_test_stop(pid, SIGTERM, 10000);
		g_child = 0;
		goto out;
	}
	if (c->settle_ms > 0)
		wf_test_run_for(loop, c->settle_ms);
	double t0 = wf_test_mono_s();
	for (size_t i = 0; i < n; i++)
		if (rename(hidden[i], names[i]) < 0)
			wf_test_die(names[i]);
	struct count_wait cw = { &s, expect };
	bool done = wf_test_run_until(loop, sink_has, &cw, (int)(c->time_limit_s * 1000));
	*ok = done;
	double dt = (s.applied > 0 ? s.t_last : wf_test_mono_s()) - t0;
	rate = dt > 0 ? (double)s.applied / dt : 0;
	if (!done)
		fprintf(stderr, "bench-adapters: %s: %ld of %ld events within %.0f s (log %s)\n",
			feedname, s.applied, expect, c->time_limit_s, log);
	fprintf(stderr, "bench-adapters: %s: %zu files, %ld events, %.2f s from the first rename "
			"to the last event applied (first event after %.3f s)\n",
		feedname, n, s.applied, dt, s.applied ? s.t_first - t0 : 0.0);
	wf_test_stop(pid, SIGTERM, 10000);
	g_child = 0;
	struct wf_node_stats st;
	wf_node_get_stats(s.node, &st);
	if (st.duplicates || st.rejected)
		fprintf(stderr, "bench-adapters: %s: consumer saw %llu duplicates, %llu rejected\n",
			feedname, (unsigned long long)st.duplicates, (unsigned long long)st.rejected);
out:
	if (s.node) {
		wf_node_stop(s.node);
		wf_test_run_for(loop, 100);
		wf_node_free(s.node);
	}
	free(conf);
	free(spool);
	free(state);
	free(cdir);
	free(log);
	return rate;
}

/* Runs bench-broker (next to this program) for the raw QoS 1 baseline. */
static double measure_raw(const char *self)
{
	char *copy = strdup(self);
	char *exe = wf_test_xasprintf("%s/bench-broker", dirname(copy));
	char *argv[] = { exe, (char *)"--count", (char *)"50000", NULL };
	char *out = NULL;
	double raw = 0;
	int st = wf_test_capture(argv, NULL, NULL, &out, 120000);
	const char *p = out ? strstr(out, "broker.raw_qos1_msgs_per_s ") : NULL;
	if (st == 0 && p)
		raw = strtod(p + strlen("broker.raw_qos1_msgs_per_s "), NULL);
	else
		fprintf(stderr, "bench-adapters: %s failed (%d); no raw baseline\n", exe, st);
	free(out);
	free(exe);
	free(copy);
	return raw;
}

static int scaled(const struct cfg *c, int n)
{
	long v = (long)n * c->scale_pct / 100;
	return v < 1 ? 1 : (int)v;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: bench-adapters [--scale PCT] [--spool-files N] [--only FEED]\n"
		"                      [--raw-qos1 MSGS_PER_S] [--time-limit S] [--settle MS]\n"
		"                      [--keep] [--help]\n"
		"Feeds: met_aws met_cap water geo fire police. Defaults: --scale 100 (met 500\n"
		"stations x 60 h, water 200 x 160 h, geo 250 sensors x 160 half-hours, fire 5,000\n"
		"incidents x 4, police 10,000 x 3, CAP 1,000 files), --spool-files 100 (CAP: all),\n"
		"--time-limit 60 per spool phase, --settle 1100 (ms between the daemon's birth and\n"
		"the drop: the spool watcher misses changes within the same second, see\n"
		"docs/benchmarks.md). Without --raw-qos1, bench-broker --count 50000 measures\n"
		"the baseline in this run. --keep keeps the temp dir (configs, data, logs).\n"
		"Above --scale 140 the single police file passes the 4 MiB CSV limit and is\n"
		"rejected (docs/feeds/README.md).\n");
}

int main(int argc, char **argv)
{
	struct cfg c = { .scale_pct = 100, .time_limit_s = 60, .settle_ms = 1100 };
	static const struct option opts[] = {
		{ "scale", required_argument, NULL, 's' },
		{ "spool-files", required_argument, NULL, 'f' },
		{ "only", required_argument, NULL, 'o' },
		{ "raw-qos1", required_argument, NULL, 'r' },
		{ "time-limit", required_argument, NULL, 't' },
		{ "keep", no_argument, NULL, 'k' },
		{ "settle", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "s:f:o:r:t:kS:h", opts, NULL)) != -1) {
		char *e = NULL;
		switch (ch) {
		case 's':
			c.scale_pct = (int)strtol(optarg, &e, 10);
			if (*e || c.scale_pct < 1 || c.scale_pct > 1000)
				goto bad;
			break;
		case 'f':
			c.spool_files = (int)strtol(optarg, &e, 10);
			if (*e || c.spool_files < 1 || c.spool_files > 10000)
				goto bad;
			break;
		case 'o':
			c.only = optarg;
			break;
		case 'r':
			c.raw_qos1 = strtod(optarg, &e);
			if (*e || !(c.raw_qos1 > 0))
				goto bad;
			break;
		case 't':
			c.time_limit_s = strtod(optarg, &e);
			if (*e || !(c.time_limit_s > 0) || c.time_limit_s > 3600)
				goto bad;
			break;
		case 'k':
			c.keep = true;
			break;
		case 'S':
			c.settle_ms = (int)strtol(optarg, &e, 10);
			if (*e || c.settle_ms < 0 || c.settle_ms > 60000)
				goto bad;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		continue;
bad:
		fprintf(stderr, "bench-adapters: bad value '%s'\n", optarg);
		return 2;
	}
	setenv("WF_SOURCE_ROOT", BENCH_SOURCE_ROOT, 0);
	setenv("WF_BUILD_ROOT", BENCH_BUILD_ROOT, 0);
	char *regions = wf_test_source_path("data/regions.csv");
	setenv("WF_REGIONS", regions, 0);
	load_regions(getenv("WF_REGIONS"));

	if (!(c.raw_qos1 > 0))
		c.raw_qos1 = measure_raw(argv[0]);

	struct wf_test_broker_options bo;
	wf_test_broker_options_init(&bo);
	bo.extra_config = "max_queued_messages 0\n";
	struct wf_test_broker *br = NULL;
	int r = wf_test_broker_start(&bo, &br);
	g_broker = br;
	atexit(cleanup);
	if (r < 0) {
		fprintf(stderr, "bench-adapters: cannot start mosquitto: %s\n", strerror(-r));
		return 1;
	}
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	char *dir = wf_test_mkdtemp("bench-adapters");
	if (!dir)
		wf_test_die("mkdtemp");

	struct feed feeds[] = {
		{ .name = "met_aws", .kind = "met", .now = "2021-07-20T18:00:00+08:00",
		  .header = "station,time,rain_mm,wind_mean_ms,wind_gust_ms,temp_c,visibility_m",
		  .by_entity = true },
		{ .name = "met_cap", .kind = "met", .now = "2021-07-20T18:00:00+08:00" },
		{ .name = "water", .kind = "water", .now = "2026-07-20T18:00:00+08:00",
		  .header = "station,time,stage_m,flow_m3s", .by_entity = true },
		{ .name = "geo", .kind = "geo", .now = "2026-07-20T18:00:00+08:00",
		  .header = "sensor,time,displacement_mm,crack_mm,rain_24h_mm", .by_entity = true },
		{ .name = "fire", .kind = "fire", .now = "2026-07-20T18:00:00+08:00",
		  .header = "incident,time,region,type,status,area_ha,deaths,injured,text" },
		{ .name = "police", .kind = "police", .now = "2026-07-20T18:00:00+08:00",
		  .header = "incident,time,region,category,status,grade,deaths,injured,crowd_density,text" },
	};
	int status = 0;
	for (size_t fi = 0; fi < sizeof feeds / sizeof feeds[0]; fi++) {
		struct feed *f = &feeds[fi];
		if (c.only && strcmp(c.only, f->name) != 0)
			continue;
		char *example_rel = wf_test_xasprintf("deploy/examples/%s/%s.conf", f->kind, f->kind);
		char *example = wf_test_source_path(example_rel);
		char *gdir = wf_test_xasprintf("%s/%s", dir, f->name);
		char *log = wf_test_xasprintf("%s/%s-dry.log", dir, f->name);
		if (mkdir(gdir, 0700) < 0)
			wf_test_die(gdir);
		if (strcmp(f->name, "met_aws") == 0)
			gen_met_aws(f, scaled(&c, 500), 60);
		else if (strcmp(f->name, "water") == 0)
			gen_water(f, scaled(&c, 200), 160);
		else if (strcmp(f->name, "geo") == 0)
			gen_geo(f, scaled(&c, 250), 160);
		else if (strcmp(f->name, "fire") == 0)
			gen_fire(f, scaled(&c, 5000));
		else if (strcmp(f->name, "police") == 0)
			gen_police(f, scaled(&c, 10000));

		char head[256];
		snprintf(head, sizeof head, "[service]\nid = wf-%s-dry\n", f->kind);
		char *conf = write_conf(gdir, f->kind, example, head, &f->conf_extra, "dry");
		char **files, **names, **hidden;
		size_t nfiles, nspool;
		long units; /* rows, or CAP files */
		struct dry d1, d2;

		if (f->header == NULL) {
			char *tpl = wf_test_source_path("deploy/examples/met/cap-rainstorm-red.xml");
			int n = scaled(&c, 1000);
			files = gen_cap(gdir, n, tpl);
			free(tpl);
			nfiles = (size_t)n;
			units = n;
			nspool = nfiles;
		} else {
			qsort(f->rows, f->n_rows, sizeof *f->rows, cmp_time);
			files = calloc(1, sizeof *files);
			files[0] = wf_test_xasprintf("%s/%s-big.csv", gdir, f->name);
			write_csv(f, 0, f->n_rows, files[0]);
			nfiles = 1;
			units = (long)f->n_rows;
			nspool = (size_t)(c.spool_files ? c.spool_files : 100);
			if (nspool > f->n_rows)
				nspool = f->n_rows;
		}
		/* 1. dry run */
		if (dry_run(f->kind, conf, f->now, files, nfiles, log, &d1) != 0 || d1.rejected) {
			status = 1;
			goto next;
		}
		printf("adapters.%s.dryrun_%s_per_s %.0f\n", f->name, f->header ? "rows" : "files",
		       (double)units / d1.secs);
		printf("adapters.%s.dryrun_events_per_s %.0f\n", f->name, (double)d1.events / d1.secs);
		fprintf(stderr, "bench-adapters: %s: dry run of %ld %s -> %ld events in %.2f s\n",
			f->name, units, f->header ? "rows" : "files", d1.events, d1.secs);
		fflush(stdout);

		/* 2. spool -> broker: the same rows in NSPOOL time slices */
		char *sdir = wf_test_xasprintf("%s/spool-%s", dir, f->name);
		if (mkdir(sdir, 0700) < 0)
			wf_test_die(sdir);
		names = calloc(nspool, sizeof *names);
		hidden = calloc(nspool, sizeof *hidden);
		char **plain = calloc(nspool, sizeof *plain);
		for (size_t i = 0; i < nspool; i++) {
			names[i] = wf_test_xasprintf("%s/%s-%05zu.%s", sdir, f->name, i, f->header ? "csv" : "xml");
			hidden[i] = wf_test_xasprintf("%s/.%s-%05zu.tmp", sdir, f->name, i);
			plain[i] = wf_test_xasprintf("%s/part-%05zu.%s", gdir, i, f->header ? "csv" : "xml");
			if (f->header) {
				write_csv(f, f->n_rows * i / nspool, f->n_rows * (i + 1) / nspool, plain[i]);
			} else {
				size_t len;
				char *t = slurp(files[i], &len);
				wf_test_spit(plain[i], t, len);
				free(t);
			}
			size_t len;
			char *t = slurp(plain[i], &len);
			wf_test_spit(hidden[i], t, len);
			free(t);
		}
		if (dry_run(f->kind, conf, f->now, plain, nspool, log, &d2) != 0 || d2.rejected) {
			status = 1;
		} else {
			bool ok = false;
			double rate = spool_phase(&c, loop, br, dir, f->kind, f->name, f->now, example,
						  &f->conf_extra, names, hidden, nspool, d2.events, &ok);
			if (!ok)
				status = 1;
			printf("adapters.%s.spool_events_per_s %.0f\n", f->name, rate);
			printf("ratio.adapters.%s.spool_vs_raw_qos1 %.2f\n", f->name,
			       c.raw_qos1 > 0 ? rate / c.raw_qos1 : 0.0);
			fflush(stdout);
		}
		for (size_t i = 0; i < nspool; i++) {
			free(names[i]);
			free(hidden[i]);
			free(plain[i]);
		}
		free(names);
		free(hidden);
		free(plain);
		free(sdir);
next:
		for (size_t i = 0; i < nfiles; i++)
			free(files[i]);
		free(files);
		free(conf);
		free(example);
		free(example_rel);
		free(gdir);
		free(log);
		for (size_t i = 0; i < f->n_rows; i++)
			free(f->rows[i].text);
		free(f->rows);
		free(f->conf_extra.p);
	}
	printf("broker.raw_qos1_msgs_per_s.adapters_run %.0f\n", c.raw_qos1);
	ev_loop_destroy(loop);
	g_broker = wf_test_broker_free(g_broker);
	if (c.keep)
		fprintf(stderr, "bench-adapters: kept %s\n", dir);
	else
		wf_test_rmtree(dir);
	free(dir);
	free(regions);
	return status;
}
