/* chaos: fault injection through the whole pipeline on loopback.
 *
 * A generated scenario (native files for the five agency adapters, one
 * file per agency per hour of event time) goes through
 *
 *   wf-met, wf-water, wf-geo, wf-fire, wf-police (spool -> outbox)
 *     -> mosquitto (persistence, as deploy/mosquitto/warnfuse.conf)
 *     -> wf-fusion (clock = events, ordered)
 *     -> wf-dispatch (duty stations, broadcast; level I needs one approval;
 *        levels I and II also as CAP POSTs)
 *     -> duty consoles (a wf_node in this process that acknowledges every
 *        notice and approves every version it is told is pending review),
 *        a broadcast platform (a thread answering the CAP POSTs), a
 *        private Kannel whose fakesmsc stands for the SMS handsets (level I)
 *        and a broadcast terminal (a plain subscriber)
 *
 * while the harness SIGKILLs and restarts each adapter, wf-fusion,
 * wf-dispatch and the broker (restarted on the same port with its
 * persistence directory), and SIGSTOPs/SIGCONTs processes.
 *
 * Determinism: the uninterrupted run is `wf-fusion --replay` of the same
 * events (the adapters' --dry-run over the same files). Fusion's output
 * depends on the order of events of different producers, so the harness
 * drops slice k+1's files only once wf-fusion acknowledged every event of
 * slice k (acks seen on wf/v1/ack/<adapter>, or the adapter's outbox_floor);
 * within a slice all rows carry the same time and the agencies work in
 * disjoint prefectures (groups rotating every BLOCK slices, so that chains
 * across agencies form from one slice to the next).
 *
 * The checker: events lost (not acknowledged by fusion), warning versions
 * lost / different (what wf-dispatch stored in d-wver/d-wlog against replay),
 * duplicated (one id@version published by fusion under two sequence numbers,
 * seen by an observer), duty notices lost / duplicated after the console's
 * dedupe (station, id, version), and the worst restart-to-ready time
 * (ready = the process's retained ONLINE state with its new pid; for the
 * broker: accepting connections, and every service's fresh ONLINE again).
 * Monitoring-gap notices (fusion's source-liveness rule firing while an
 * adapter is down) are expected under faults; they are counted apart.
 * Review and CAP, against what dispatch recorded (which versions an
 * approval releases depends on timing): RELEASED notices lost / unexpected
 * for the versions the final release records show released after review,
 * latest versions still pending; CAP files never POSTed or still queued;
 * SMS per recipient: parts at the handset against those wf-dispatch
 * recorded delivered.
 *
 * Usage: chaos [--events N] [--seed S] [--slices K] [--broker-kills M]
 *              [--time-limit SEC] [--no-faults] [--keep]
 * Exit 0 when every target holds, 1 otherwise, 2 on usage errors. */
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cjson/cJSON.h>

#include "broker.h"
#include "kannel-harness.h"
#include "platform.h"
#include "sms.h"
#include "proc.h"
#include "util.h"
#include "wf/bus.h"
#include "wf/clock.h"
#include "wf/codec.h"
#include "wf/node.h"
#include "wf/pbjson.h"
#include "wf/store.h"
#include "wf/topic.h"

#define N_AGENCIES 5
#define BLOCK 8          /* slices an agency stays on one prefecture group */
#define N_GROUPS 5
#define STEP_MS 3600000LL
#define READY_TARGET_MS 5000.0
#define CHAOS_OPERATOR "chaos-op" /* approves every version pending review */
#define POST_FAIL_EVERY 200       /* the broadcast platform answers 503 to every 200th POST */

static const char *const kinds[N_AGENCIES] = { "met", "water", "geo", "fire", "police" };
static const char *const headers[N_AGENCIES] = {
	"station,time,rain_mm,wind_mean_ms,wind_gust_ms,temp_c,visibility_m",
	"station,time,stage_m,flow_m3s",
	"sensor,time,displacement_mm,crack_mm,rain_24h_mm",
	"incident,time,region,type,status,area_ha,deaths,injured,text",
	"incident,time,region,category,status,grade,deaths,injured,crowd_density,text",
};

/* ---- small helpers ---- */

static double t_start;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;
	printf("[%6.1fs] ", wf_test_mono_s() - t_start);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));


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
			abort();
		if (b->p && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 65536;
		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p)
			abort();
		b->cap = cap;
	}
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	struct buf b = { 0 };
	char tmp[65536];
	size_t n;
	bprintf(&b, "%s", "");
	while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
		bprintf(&b, "%.*s", (int)n, tmp);
	fclose(f);
	return b.p;
}

static void spit(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");
	if (!f || fwrite(text, 1, len, f) != len || fclose(f) != 0)
		die("%s: %s", path, strerror(errno));
}

static uint32_t hash32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352dU;
	x ^= x >> 15;
	x *= 0x846ca68bU;
	x ^= x >> 16;
	return x;
}

static uint32_t seed;

static double frand(uint32_t a, uint32_t b)
{
	return (double)(hash32(a * 2654435761U ^ hash32(b ^ seed)) & 0xffffff) / (double)0x1000000;
}

static void fmt_time(int64_t ms, char out[32])
{
	time_t t = (time_t)(ms / 1000) + 8 * 3600;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%S+08:00", &tm);
}

/* ---- the scenario ---- */

/* Henan's prefectures and their townships (from the region table). */
#define MAX_PREF 32
static char prefs[MAX_PREF][5];
static size_t n_prefs;
static char (*twn[MAX_PREF])[13];
static size_t n_twn[MAX_PREF];

static int pref_index(const char *code)
{
	for (size_t i = 0; i < n_prefs; i++)
		if (strncmp(prefs[i], code, 4) == 0)
			return (int)i;
	return -1;
}

static void load_regions(const char *path)
{
	char *text = slurp(path);
	if (!text)
		die("%s: %s", path, strerror(errno));
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (strncmp(l, "41", 2) != 0 || strlen(l) < 13 || l[12] != ',')
			continue;
		if (strstr(l, ",prefecture") && n_prefs < MAX_PREF) {
			snprintf(prefs[n_prefs], 5, "%.4s", l);
			twn[n_prefs] = calloc(2048, sizeof *twn[0]);
			n_prefs++;
		}
	}
	free(text);
	text = slurp(path);
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (strncmp(l, "41", 2) != 0 || strlen(l) < 13 || l[12] != ',' || !strstr(l, ",township"))
			continue;
		int p = pref_index(l);
		if (p >= 0 && n_twn[p] < 2048)
			snprintf(twn[p][n_twn[p]++], 13, "%.12s", l);
	}
	free(text);
	if (n_prefs < N_GROUPS)
		die("%s: fewer than %d Henan prefectures", path, N_GROUPS);
}

/* The group of prefectures agency A works in at slice K. Water follows
 * met one block later, geo two blocks later (chains across agencies). */
static int active_group(int a, int k)
{
	return (((k / BLOCK) - a) % N_GROUPS + N_GROUPS) % N_GROUPS;
}

/* A township of group G, picked by H. */
static const char *group_township(int g, uint32_t h)
{
	size_t n = 0;
	for (size_t p = 0; p < n_prefs; p++)
		if ((int)(p % N_GROUPS) == g)
			n += n_twn[p];
	size_t want = h % n;
	for (size_t p = 0; p < n_prefs; p++)
		if ((int)(p % N_GROUPS) == g) {
			if (want < n_twn[p])
				return twn[p][want];
			want -= n_twn[p];
		}
	return twn[0][0];
}

struct scenario {
	int slices;
	int per_slice;         /* new fire and police incidents per slice */
	int stations;          /* met/water/geo entities per group */
	int64_t t0;
	struct buf conf_extra[N_AGENCIES];
};

/* Bump over a block: 0 at its edges, 1 in the middle. */
static double bump(int j)
{
	double x = (j + 0.5) / BLOCK;
	return sin(M_PI * x);
}

static void gen_conf_extra(struct scenario *sc)
{
	bprintf(&sc->conf_extra[0], "[met.stations]\n");
	for (int g = 0; g < N_GROUPS; g++)
		for (int s = 0; s < sc->stations; s++) {
			int id = g * 1000 + s;
			bprintf(&sc->conf_extra[0], "5%04d = %s, %.2f, %.2f\n", id,
				group_township(g, hash32((uint32_t)id + 1)), 32 + 4 * frand(id, 1),
				111 + 4 * frand(id, 2));
			bprintf(&sc->conf_extra[1],
				"[water.station W%05d]\nname = 测站%d\nkind = river\nregion = %s\n"
				"warning_stage = 262.50\nguaranteed_stage = 263.75\nrecord_stage = 265.00\n"
				"flow_5y = 800\nflow_20y = 1500\nflow_50y = 2100\ndrought_stage = 258.50\n",
				id, id, group_township(g, hash32((uint32_t)id + 7)));
			bprintf(&sc->conf_extra[2],
				"[geo.sensor G%05d]\nname = 滑坡监测点%d\nregion = %s\nhazard = landslide\n",
				id, id, group_township(g, hash32((uint32_t)id + 13)));
		}
}

/* The rows of agency A at slice K (all at the slice's time). */
static void gen_slice(const struct scenario *sc, int a, int k, struct buf *b)
{
	static const char *const ftypes[] = { "forest", "grassland", "urban", "hazmat", "explosion" };
	static const char *const fstatus[] = { "new", "update", "update", "closed" };
	static const char *const pcats[] = { "crowd", "traffic", "hazmat", "explosion",
					     "public_order", "missing" };
	static const char *const pstatus[] = { "new", "update", "closed" };
	int64_t t = sc->t0 + (int64_t)k * STEP_MS;
	int g = active_group(a, k), j = k % BLOCK, blk = k / BLOCK;
	char ts[32];

	fmt_time(t, ts);
	bprintf(b, "# chaos scenario slice %d\n%s\n", k, headers[a]);
	switch (a) {
	case 0: /* met: a rainstorm over the group, peaking mid-block */
		for (int s = 0; s < sc->stations; s++) {
			int id = g * 1000 + s;
			double peak = 20 + 80 * frand(id, 3 + (uint32_t)blk);
			double rain = peak * bump(j) * (0.6 + 0.4 * frand(id, 100 + (uint32_t)k));
			double mean = 3 + 12 * bump(j) * frand(id, 7), gust = mean * 1.7 + 2;
			bprintf(b, "5%04d,%s,%.1f,%.1f,%.1f,%.1f,%d\n", id, ts, rain, mean, gust, 25.0,
				rain > 40 ? 500 : 8000);
		}
		break;
	case 1: /* water: a flood wave crossing warning/guaranteed/record stage */
		for (int s = 0; s < sc->stations; s++) {
			int id = g * 1000 + s;
			double amp = 1 + 4.5 * frand(id, 11 + (uint32_t)blk);
			double stage = 260.8 + amp * bump(j);
			bprintf(b, "W%05d,%s,%.2f,%.0f\n", id, ts, stage, 250 + amp * bump(j) * 420);
		}
		break;
	case 2: /* geo: slopes creeping, some accelerating, in the rain */
		for (int s = 0; s < sc->stations; s++) {
			int id = g * 1000 + s;
			double v = 0.5 + 25 * frand(id, 21 + (uint32_t)blk) * (0.2 + bump(j));
			double disp = 30 + v * (blk * BLOCK + j) / 24.0 + (double)j * j * frand(id, 23);
			bprintf(b, "G%05d,%s,%.2f,,%.1f\n", id, ts, disp, 160 * bump(j) * frand(id, 26));
		}
		break;
	case 3: /* fire: incidents of the last 4 slices of this block */
		for (int d = 0; d < 4; d++) {
			int start = k - d;
			if (start < 0 || start / BLOCK != blk || start % BLOCK > BLOCK - 4)
				continue;
			for (int i = 0; i < sc->per_slice; i++) {
				uint32_t inc = (uint32_t)(start * sc->per_slice + i);
				double area = 0.2 + 300 * pow(frand(inc, 32), 3);
				bprintf(b, "F119-%08u,%s,%s,%s,%s,%.1f,%d,%d,山林起火 第%d报\n", inc, ts,
					group_township(g, hash32(inc + 31)), ftypes[hash32(inc) % 5],
					fstatus[d], area * (d + 1) / 4,
					d == 3 && frand(inc, 33) < 0.02 ? 3 : 0,
					(int)(12 * pow(frand(inc, 34), 4)) * d, d + 1);
			}
		}
		break;
	case 4: /* police: incidents of the last 3 slices */
		for (int d = 0; d < 3; d++) {
			int start = k - d;
			if (start < 0 || start / BLOCK != blk || start % BLOCK > BLOCK - 3)
				continue;
			for (int i = 0; i < sc->per_slice; i++) {
				uint32_t inc = (uint32_t)(start * sc->per_slice + i);
				const char *cat = pcats[hash32(inc + 5) % 6];
				char dens[16] = "", deaths[16] = "", inj[16] = "";
				if (strcmp(cat, "crowd") == 0)
					snprintf(dens, sizeof dens, "%.1f",
						 d == 2 ? 2.0 : 3 + 4.5 * frand(inc, 42 + (uint32_t)d));
				else {
					snprintf(deaths, sizeof deaths, "%d", (int)(5 * pow(frand(inc, 45), 6)));
					snprintf(inj, sizeof inj, "%d", (int)(30 * pow(frand(inc, 46), 4)));
				}
				bprintf(b, "P110-%08u,%s,%s,%s,%s,,%s,%s,%s,现场处置中 第%d报\n", inc, ts,
					group_township(g, hash32(inc + 41)), cat, pstatus[d], deaths, inj,
					dens, d + 1);
			}
		}
		break;
	}
}

/* ---- global state ---- */

static struct ev_loop *loop;
static struct wf_test_broker *broker;
static char *dir;
static bool keep;
static char port_s[16];

enum { P_MET, P_WATER, P_GEO, P_FIRE, P_POLICE, P_FUSION, P_DISPATCH, N_PROCS };

struct proc {
	const char *name;  /* service id */
	char *exe, *conf, *log;
	pid_t pid;
	bool stopped;      /* SIGSTOPped */
	double spawned;    /* mono time of the last (re)start */
	bool want_ready;   /* a restart whose ONLINE we wait for */
	int kills, stops;
	double worst_ready_ms;
	int64_t online_ms; /* wall clock of the latest fresh ONLINE */
	bool back;         /* ONLINE again since the latest broker restart */
	double worst_back_ms; /* broker restart -> this service ONLINE again */
};

static struct proc procs[N_PROCS];

struct stats {
	int broker_kills, broker_restarts_slow;
	double broker_worst_accept_ms, broker_worst_services_ms;
	double ready_worst_ms;
	const char *ready_worst_who;
	int ready_missing; /* restarts never seen ready */
	int broker_not_back; /* broker restarts after which not every service was back */
};

static struct stats st;
static struct wf_test_kannel *kannel; /* SMS: a private Kannel (see sms_section) */

static void cleanup(void)
{
	for (int i = 0; i < N_PROCS; i++)
		if (procs[i].pid > 0) {
			if (procs[i].stopped)
				kill(procs[i].pid, SIGCONT);
			wf_test_stop(procs[i].pid, SIGKILL, 5000);
			procs[i].pid = 0;
		}
	broker = wf_test_broker_free(broker);
	kannel = wf_test_kannel_free(kannel);
}

static void die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "chaos: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cleanup();
	if (dir)
		fprintf(stderr, "chaos: logs and state kept in %s\n", dir);
	exit(1);
}

/* ---- observer: a plain subscriber (it never acks, so it changes no
 * producer's outbox): states, acks, warnings, broadcast ---- */

struct wver {
	char *key;     /* id@version */
	char *content; /* canonical JSON without producer/seq/epoch */
	uint64_t seqs[4];
	int n_seqs;    /* distinct fusion sequence numbers seen for it */
	bool gap;      /* monitoring-gap notice */
};

static struct {
	struct wf_bus *bus;
	uint64_t acked[N_PROCS]; /* highest seq of procs[i] acked by its consumer */
	uint64_t floor[N_PROCS]; /* outbox_floor in procs[i]'s latest state */
	uint64_t fusion_max_seq; /* highest warning seq seen from wf-fusion-1 */
	struct wver *w;
	size_t n_w, cap_w;
	uint64_t warnings_seen, bcast_seen;
	int64_t last_fresh_all_ms;
} obs;

static int proc_by_name(const char *name)
{
	for (int i = 0; i < N_PROCS; i++)
		if (procs[i].name && strcmp(procs[i].name, name) == 0)
			return i;
	return -1;
}

/* The comparable form of a warning version: everything but who sent it. */
static char *warning_content(const Wf__V1__Warning *w)
{
	Wf__V1__Warning copy = *w;
	copy.producer = (char *)"";
	copy.seq = 0;
	copy.epoch = 0;
	return wf_pbjson_print(&copy.base);
}

/* open-addressing index over obs.w by key */
static size_t *widx;
static size_t widx_cap;

static uint32_t strhash(const char *s)
{
	uint32_t h = 2166136261U;
	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619U;
	return h;
}

/* (Re)builds an open-addressing index *IDX (slots: positions, SIZE_MAX
 * empty) over the N keys KEY(i), twice the size it had (FIRST at first). */
static void index_rebuild(size_t **idx, size_t *cap, size_t first, size_t n,
			  const char *(*key)(size_t i))
{
	free(*idx);
	*cap = *cap ? *cap * 2 : first;
	*idx = malloc(*cap * sizeof **idx);
	if (!*idx)
		die("index: out of memory");
	for (size_t i = 0; i < *cap; i++)
		(*idx)[i] = SIZE_MAX;
	for (size_t i = 0; i < n; i++) {
		size_t h = strhash(key(i)) & (*cap - 1);
		while ((*idx)[h] != SIZE_MAX)
			h = (h + 1) & (*cap - 1);
		(*idx)[h] = i;
	}
}

static const char *wver_key(size_t i) { return obs.w[i].key; }

static void widx_rebuild(void)
{
	index_rebuild(&widx, &widx_cap, 65536, obs.n_w, wver_key);
}

static struct wver *obs_warning(const char *key, bool create)
{
	if (widx_cap == 0 || obs.n_w * 2 >= widx_cap)
		widx_rebuild();
	size_t h = strhash(key) & (widx_cap - 1);
	while (widx[h] != SIZE_MAX) {
		if (strcmp(obs.w[widx[h]].key, key) == 0)
			return &obs.w[widx[h]];
		h = (h + 1) & (widx_cap - 1);
	}
	if (!create)
		return NULL;
	if (obs.n_w == obs.cap_w) {
		obs.cap_w = obs.cap_w ? obs.cap_w * 2 : 65536;
		obs.w = realloc(obs.w, obs.cap_w * sizeof *obs.w);
	}
	struct wver *v = &obs.w[obs.n_w];
	memset(v, 0, sizeof *v);
	v->key = strdup(key);
	widx[h] = obs.n_w++;
	return v;
}

static int64_t broker_back_ms(void);
static double broker_back_age_ms(void);

static void on_state(const char *svc, const uint8_t *p, size_t len)
{
	int i = proc_by_name(svc);
	if (i < 0 || len == 0)
		return;
	Wf__V1__ServiceState *s = wf__v1__service_state__unpack(NULL, len, p);
	if (!s)
		return;
	if (s->outbox_floor > obs.floor[i])
		obs.floor[i] = s->outbox_floor;
	if (s->status == WF__V1__SERVICE_STATUS__SERVICE_ONLINE && procs[i].pid > 0 &&
	    (pid_t)s->pid == procs[i].pid) {
		if (s->heartbeat_ms > procs[i].online_ms)
			procs[i].online_ms = s->heartbeat_ms;
		if (broker_back_ms() && !procs[i].back && s->heartbeat_ms >= broker_back_ms()) {
			double ms = broker_back_age_ms();
			procs[i].back = true;
			if (ms > procs[i].worst_back_ms)
				procs[i].worst_back_ms = ms;
		}
		if (procs[i].want_ready) {
			double ms = (wf_test_mono_s() - procs[i].spawned) * 1000;
			procs[i].want_ready = false;
			if (ms > procs[i].worst_ready_ms)
				procs[i].worst_ready_ms = ms;
			if (ms > st.ready_worst_ms) {
				st.ready_worst_ms = ms;
				st.ready_worst_who = procs[i].name;
			}
		}
	}
	wf__v1__service_state__free_unpacked(s, NULL);
}

static void on_ack(const char *producer, const uint8_t *p, size_t len)
{
	int i = proc_by_name(producer);
	if (i < 0)
		return;
	Wf__V1__Ack *a = wf__v1__ack__unpack(NULL, len, p);
	if (!a)
		return;
	const char *want = i == P_FUSION ? "wf-dispatch-1" : "wf-fusion-1";
	if (a->consumer && strcmp(a->consumer, want) == 0)
		for (size_t r = 0; r < a->n_ranges; r++)
			if (a->ranges[r]->last > obs.acked[i])
				obs.acked[i] = a->ranges[r]->last;
	wf__v1__ack__free_unpacked(a, NULL);
}

static void on_warning_msg(const uint8_t *p, size_t len)
{
	Wf__V1__Warning *w = wf__v1__warning__unpack(NULL, len, p);
	if (!w)
		return;
	obs.warnings_seen++;
	if (w->producer && strcmp(w->producer, "wf-fusion-1") == 0 && w->seq > obs.fusion_max_seq)
		obs.fusion_max_seq = w->seq;
	char key[300];
	snprintf(key, sizeof key, "%s@%u", w->id, w->version);
	struct wver *v = obs_warning(key, true);
	if (!v->content) {
		v->content = warning_content(w);
		v->gap = w->hazard == WF__V1__HAZARD__HAZARD_MONITORING_GAP;
	}
	bool known = false;
	for (int i = 0; i < v->n_seqs; i++)
		known |= v->seqs[i] == w->seq;
	if (!known && v->n_seqs < 4)
		v->seqs[v->n_seqs++] = w->seq;
	wf__v1__warning__free_unpacked(w, NULL);
}

/* The latest retained release record (wf/v1/review/<id>) of each warning,
 * packed; read at the end for the review checks. */
struct rec {
	char *id;
	uint8_t *p;
	size_t len;
};
static struct {
	struct rec *r;
	size_t n, cap;
	size_t *idx;
	size_t idx_cap;
} recs;

static const char *rec_key(size_t i) { return recs.r[i].id; }

static void on_record(const char *id, const uint8_t *p, size_t len)
{
	if (recs.idx_cap == 0 || recs.n * 2 >= recs.idx_cap)
		index_rebuild(&recs.idx, &recs.idx_cap, 16384, recs.n, rec_key);
	size_t h = strhash(id) & (recs.idx_cap - 1);
	while (recs.idx[h] != SIZE_MAX && strcmp(recs.r[recs.idx[h]].id, id) != 0)
		h = (h + 1) & (recs.idx_cap - 1);
	struct rec *r;
	if (recs.idx[h] == SIZE_MAX) {
		if (recs.n == recs.cap) {
			recs.cap = recs.cap ? recs.cap * 2 : 16384;
			recs.r = realloc(recs.r, recs.cap * sizeof *recs.r);
		}
		r = &recs.r[recs.n];
		r->id = strdup(id);
		r->p = NULL;
		recs.idx[h] = recs.n++;
	} else
		r = &recs.r[recs.idx[h]];
	free(r->p);
	r->p = malloc(len ? len : 1);
	memcpy(r->p, p, len);
	r->len = len; /* empty: purged */
}

static void obs_msg(void *ud, const char *topic, const void *p, size_t len, bool retained)
{
	(void)ud;
	(void)retained;
	if (strncmp(topic, "wf/v1/review/", 13) == 0) {
		on_record(topic + 13, p, len);
		return;
	}
	if (strncmp(topic, "wf/v1/state/", 12) == 0)
		on_state(topic + 12, p, len);
	else if (strncmp(topic, "wf/v1/ack/", 10) == 0)
		on_ack(topic + 10, p, len);
	else if (strncmp(topic, "wf/v1/warning/", 14) == 0)
		on_warning_msg(p, len);
	else if (strncmp(topic, "wf/v1/broadcast/", 16) == 0)
		obs.bcast_seen++;
}

static void obs_start(void)
{
	struct wf_bus_options bo;
	struct wf_bus_callbacks cb = { .on_message = obs_msg };
	wf_bus_options_init(&bo);
	bo.port = wf_test_broker_port(broker);
	bo.client_id = "chaos-observer";
	bo.reconnect_max_s = 0.5;
	bo.max_inflight = 65535;
	if (wf_bus_new(loop, &bo, &cb, NULL, &obs.bus) < 0)
		die("observer bus");
	const char *f[] = { "wf/v1/state/+", "wf/v1/ack/+", "wf/v1/warning/#", "wf/v1/broadcast/#",
			    "wf/v1/review/+" };
	for (size_t i = 0; i < sizeof f / sizeof *f; i++)
		if (wf_bus_subscribe(obs.bus, f[i], 1) < 0)
			die("subscribe %s", f[i]);
	wf_bus_start(obs.bus);
}

/* ---- duty consoles: one wf_node for every station's inbox; it dedupes
 * notices by (station, id, version, kind) and acknowledges each one ---- */

struct notice {
	char *key;        /* station|id@version|kind */
	int64_t deadline; /* the first copy's */
	int copies, redone; /* copies received; copies with another deadline */
	bool gap;
	bool pending;     /* the first copy said pending review */
};

static struct {
	struct wf_node *node;
	struct notice *n;
	size_t count, cap;
	size_t *idx;
	size_t idx_cap;
	struct {
		char station[65], id[129];
		uint32_t version;
	} *acks;
	size_t n_acks, cap_acks;
	struct {
		char id[129];
		uint32_t version;
	} *apprs; /* approvals to send: every version a station was told is pending review */
	size_t n_apprs, cap_apprs;
	uint64_t approvals; /* sent (one per station told: dispatch counts an operator once) */
	uint64_t received;
	ev_timer ack_timer;
} con;

static const char *notice_key(size_t i) { return con.n[i].key; }

static struct notice *notice_get(const char *key)
{
	if (con.idx_cap == 0 || con.count * 2 >= con.idx_cap)
		index_rebuild(&con.idx, &con.idx_cap, 65536, con.count, notice_key);
	size_t h = strhash(key) & (con.idx_cap - 1);
	while (con.idx[h] != SIZE_MAX) {
		if (strcmp(con.n[con.idx[h]].key, key) == 0)
			return &con.n[con.idx[h]];
		h = (h + 1) & (con.idx_cap - 1);
	}
	if (con.count == con.cap) {
		con.cap = con.cap ? con.cap * 2 : 65536;
		con.n = realloc(con.n, con.cap * sizeof *con.n);
	}
	struct notice *n = &con.n[con.count];
	memset(n, 0, sizeof *n);
	n->key = strdup(key);
	con.idx[h] = con.count++;
	return n;
}

/* The console's record of KEY, or NULL (notice_get creates). */
static struct notice *notice_find(const char *key)
{
	if (con.idx_cap == 0)
		return NULL;
	for (size_t h = strhash(key) & (con.idx_cap - 1); con.idx[h] != SIZE_MAX;
	     h = (h + 1) & (con.idx_cap - 1))
		if (strcmp(con.n[con.idx[h]].key, key) == 0)
			return &con.n[con.idx[h]];
	return NULL;
}

static int console_control(void *ud, struct wf_txn *t, enum wf_topic_kind kind,
			   const ProtobufCMessage *msg, const struct wf_node_msg *m,
			   struct wf_codec_error *why)
{
	(void)ud;
	(void)t;
	(void)m;
	(void)why;
	if (kind != WF_TOPIC_DUTY_INBOX)
		return 0;
	const Wf__V1__DutyNotice *d = (const Wf__V1__DutyNotice *)msg;
	char key[400];
	con.received++;
	snprintf(key, sizeof key, "%s|%s@%u|%d", d->station, d->warning_id, d->version, (int)d->kind);
	struct notice *n = notice_get(key);
	if (n->copies == 0) {
		n->deadline = d->deadline_ms;
		n->gap = d->hazard == WF__V1__HAZARD__HAZARD_MONITORING_GAP;
		n->pending = d->pending_review;
		if (d->pending_review && d->kind != WF__V1__NOTICE_KIND__NOTICE_KIND_RELEASED) {
			if (con.n_apprs == con.cap_apprs) {
				con.cap_apprs = con.cap_apprs ? con.cap_apprs * 2 : 4096;
				con.apprs = realloc(con.apprs, con.cap_apprs * sizeof *con.apprs);
			}
			snprintf(con.apprs[con.n_apprs].id, 129, "%s", d->warning_id);
			con.apprs[con.n_apprs].version = d->version;
			con.n_apprs++;
		}
		if (d->deadline_ms > 0) {
			if (con.n_acks == con.cap_acks) {
				con.cap_acks = con.cap_acks ? con.cap_acks * 2 : 4096;
				con.acks = realloc(con.acks, con.cap_acks * sizeof *con.acks);
			}
			snprintf(con.acks[con.n_acks].station, 65, "%s", d->station);
			snprintf(con.acks[con.n_acks].id, 129, "%s", d->warning_id);
			con.acks[con.n_acks].version = d->version;
			con.n_acks++;
		}
	} else if (d->deadline_ms != n->deadline)
		n->redone++;
	n->copies++;
	return 0;
}

static int emit_acks(struct wf_txn *t, void *ud)
{
	(void)ud;
	for (size_t i = 0; i < con.n_acks; i++) {
		Wf__V1__DutyAck a = WF__V1__DUTY_ACK__INIT;
		a.station = con.acks[i].station;
		a.warning_id = con.acks[i].id;
		a.version = con.acks[i].version;
		a.operator_ = (char *)"值班员";
		a.acked_ms = wf_clock_now_ms(NULL);
		int r = wf_node_emit_control(con.node, t, WF_TOPIC_DUTY_ACK, &a.base, NULL);
		if (r < 0)
			return r;
	}
	/* the operator on duty approves what is pending (through the same outbox) */
	for (size_t i = 0; i < con.n_apprs; i++) {
		Wf__V1__Approval a = WF__V1__APPROVAL__INIT;
		a.operator_ = (char *)CHAOS_OPERATOR;
		a.warning_id = con.apprs[i].id;
		a.version = con.apprs[i].version;
		a.decision = WF__V1__DECISION__DECISION_APPROVE;
		a.sent_ms = wf_clock_now_ms(NULL);
		int r = wf_node_emit_control(con.node, t, WF_TOPIC_APPROVAL, &a.base, NULL);
		if (r < 0)
			return r;
	}
	return 0;
}

static void ack_tick(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)l;
	(void)w;
	(void)revents;
	if (con.n_acks == 0 && con.n_apprs == 0)
		return;
	if (wf_node_update(con.node, emit_acks, NULL) == 0) {
		con.approvals += con.n_apprs;
		con.n_acks = con.n_apprs = 0;
	}
}

static void console_start(void)
{
	struct wf_node_options o;
	struct wf_node_callbacks cb = { .on_control = console_control };
	const char *filter = "wf/v1/duty/+/inbox";
	char *sd = wf_test_xasprintf("%s/console", dir);
	wf_node_options_init(&o);
	o.service = "wf-console-chaos";
	o.kind = "console";
	o.state_dir = sd;
	o.nosync = true;
	o.bus.host = "127.0.0.1";
	o.bus.port = wf_test_broker_port(broker);
	o.inputs = &filter;
	o.n_inputs = 1;
	o.heartbeat_ms = 1000;
	o.resend_ms = 1000;
	if (wf_node_new(loop, &o, &cb, NULL, &con.node) < 0 || wf_node_start(con.node) < 0)
		die("console node");
	free(sd);
	ev_timer_init(&con.ack_timer, ack_tick, 0.2, 0.2);
	ev_timer_start(loop, &con.ack_timer);
}

/* ---- the broadcast platform (tests/harness/platform.h): wf-dispatch
 * POSTs each CAP file there ([cap] post_url) ---- */

static struct wf_test_platform *plat;

/* ---- SMS: a private Kannel (tests/integration/kannel-harness.h) with
 * fakesmsc as the handsets; one subscriber per prefecture ---- */

#define SUBS_PER_PREF 16 /* subscribers: the first townships of each prefecture, one each */
static char (*subs)[16];      /* msisdn */
static char (*subs_at)[13];   /* where: a township */
static size_t n_subs;

/* A free loopback port (for the DLR listener, the same across restarts). */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		die("free port: %s", strerror(errno));
	close(fd);
	return ntohs(a.sin_port);
}

/* Writes the subscriber and password files; returns the [sms] section. */
static char *sms_section(void)
{
	struct buf b = { 0 };
	subs = calloc(n_prefs * SUBS_PER_PREF, sizeof *subs);
	subs_at = calloc(n_prefs * SUBS_PER_PREF, sizeof *subs_at);
	for (size_t p = 0; p < n_prefs; p++)
		for (size_t k = 0; k < SUBS_PER_PREF && k < n_twn[p]; k++, n_subs++) {
			snprintf(subs[n_subs], sizeof subs[n_subs], "138%08u",
				 (unsigned)(n_subs + 1) % 100000000u);
			snprintf(subs_at[n_subs], sizeof subs_at[n_subs], "%s", twn[p][k]);
			bprintf(&b, "%s,%s\n", subs[n_subs], subs_at[n_subs]);
		}
	char *sf = wf_test_xasprintf("%s/subscribers.csv", dir);
	char *pf = wf_test_xasprintf("%s/sms-password", dir);
	spit(sf, b.p, b.len);
	char *pw = wf_test_xasprintf("%s\n", wf_test_kannel_password(kannel));
	spit(pf, pw, strlen(pw));
	char *text = wf_test_xasprintf("[sms]\nsendsms_url = %s\nusername = %s\npassword_file = %s\n"
				       "from = 12379\nsubscribers = %s\ndlr_port = %d\n",
				       wf_test_kannel_sendsms_url(kannel),
				       wf_test_kannel_username(kannel), pf, sf, free_port());
	free(pw);
	free(pf);
	free(sf);
	free(b.p);
	return text;
}

/* ---- processes ---- */

static void spawn_proc(int i)
{
	struct proc *p = &procs[i];
	char *argv[] = { p->exe, (char *)"--config", p->conf, NULL };
	p->pid = wf_test_spawn(argv, NULL, p->log);
	if (p->pid <= 0)
		die("spawn %s: %s", p->name, strerror((int)-p->pid));
	p->spawned = wf_test_mono_s();
	p->stopped = false;
	p->want_ready = true;
}

static void kill_restart(int i)
{
	struct proc *p = &procs[i];
	if (p->stopped)
		kill(p->pid, SIGCONT);
	int r = wf_test_stop(p->pid, SIGKILL, 10000);
	if (r != 128 + SIGKILL && r >= 0)
		say("warning: %s exited %d before the kill (log %s)", p->name, r, p->log);
	if (p->want_ready)
		st.ready_missing++; /* killed again before it was ever ready */
	p->kills++;
	spawn_proc(i);
}

/* The agency sections of deploy/examples/K/K.conf plus ours. */
static char *adapter_conf(int a, const struct scenario *sc, const char *spool)
{
	char *rel = wf_test_xasprintf("deploy/examples/%s/%s.conf", kinds[a], kinds[a]);
	char *src = wf_test_source_path(rel), *text = slurp(src);
	struct buf b = { 0 };
	bool skip = false;
	if (!text)
		die("%s: %s", src, strerror(errno));
	bprintf(&b, "[service]\nid = wf-%s-1\nstate_dir = %s/state-%s\nheartbeat = 1s\nresend = 1s\n"
		    "[mqtt]\nhost = 127.0.0.1\nport = %s\n[adapter]\nspool = %s\n",
		kinds[a], dir, kinds[a], port_s, spool);
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (l[0] == '[')
			skip = strcmp(l, "[service]") == 0 || strcmp(l, "[adapter]") == 0 ||
			       strcmp(l, "[mqtt]") == 0;
		if (!skip)
			bprintf(&b, "%s\n", l);
	}
	if (sc->conf_extra[a].p)
		bprintf(&b, "%s", sc->conf_extra[a].p);
	char *path = wf_test_xasprintf("%s/%s.conf", dir, kinds[a]);
	spit(path, b.p, b.len);
	free(b.p);
	free(text);
	free(src);
	free(rel);
	return path;
}

static void setup_procs(const struct scenario *sc)
{
	for (int a = 0; a < N_AGENCIES; a++) {
		struct proc *p = &procs[a];
		char *rel = wf_test_xasprintf("services/%s/wf-%s", kinds[a], kinds[a]);
		char *spool = wf_test_xasprintf("%s/spool-%s", dir, kinds[a]);
		if (mkdir(spool, 0700) < 0)
			die("%s: %s", spool, strerror(errno));
		p->name = wf_test_xasprintf("wf-%s-1", kinds[a]);
		p->exe = wf_test_build_path(rel);
		p->conf = adapter_conf(a, sc, spool);
		p->log = wf_test_xasprintf("%s/%s.log", dir, kinds[a]);
		free(rel);
		free(spool);
	}
	char *rules = wf_test_source_path("deploy/fusion-rules.conf");
	struct proc *f = &procs[P_FUSION];
	f->name = "wf-fusion-1";
	f->exe = wf_test_build_path("services/fusion/wf-fusion");
	f->conf = wf_test_xasprintf("%s/fusion.conf", dir);
	f->log = wf_test_xasprintf("%s/fusion.log", dir);
	char *text = wf_test_xasprintf("[service]\nid = wf-fusion-1\nstate_dir = %s/state-fusion\n"
			       "heartbeat = 1s\nresend = 1s\n[mqtt]\nhost = 127.0.0.1\nport = %s\n"
			       "[fusion]\nrules = %s\nclock = events\nordered = true\n",
			       dir, port_s, rules);
	spit(f->conf, text, strlen(text));
	free(text);
	free(rules);

	/* one duty station per prefecture (auto routing by the tree) */
	struct buf r = { 0 };
	for (size_t i = 0; i < n_prefs; i++)
		bprintf(&r, "[station duty-%s]\nregion = %s00\n", prefs[i], prefs[i]);
	bprintf(&r, "[operator " CHAOS_OPERATOR "]\n"
		    "[route red]\nlevels = I\nchannels = duty, broadcast, cap, sms\n"
		    "[route orange]\nlevels = II\nchannels = duty, broadcast, cap\n"
		    "[route all]\nchannels = duty, broadcast\n");
	char *routes = wf_test_xasprintf("%s/routes.conf", dir);
	spit(routes, r.p, r.len);
	free(r.p);
	struct proc *d = &procs[P_DISPATCH];
	d->name = "wf-dispatch-1";
	d->exe = wf_test_build_path("services/dispatch/wf-dispatch");
	d->conf = wf_test_xasprintf("%s/dispatch.conf", dir);
	d->log = wf_test_xasprintf("%s/dispatch.log", dir);
	char *sms = sms_section();
	text = wf_test_xasprintf("[service]\nid = wf-dispatch-1\nstate_dir = %s/state-dispatch\n"
			 "heartbeat = 1s\nresend = 1s\n[mqtt]\nhost = 127.0.0.1\nport = %s\n"
			 "[dispatch]\nroutes = %s\n"
			 "[policy]\nrelease_I = one\nrelease_II = auto\nrelease_III = auto\n"
			 "release_IV = auto\nreview_timeout_I = 0\n"
			 "[duty]\nack_deadline_I = 1h\nack_deadline_II = 1h\nack_deadline_III = 1h\n"
			 "ack_deadline_IV = 1h\nfollowup_interval = 24h\n"
			 "[cap]\npost_url = http://127.0.0.1:%d/cap\npost_timeout = 2s\n%s",
			 dir, port_s, routes, wf_test_platform_port(plat), sms);
	spit(d->conf, text, strlen(text));
	free(text);
	free(sms);
	free(routes);
}

/* ---- expectations: dry runs and replay ---- */

struct expected {
	uint64_t *cum[N_AGENCIES]; /* events of agency a in slices 0..k */
	uint64_t total[N_AGENCIES];
	uint64_t events;
	struct wver *w;            /* sorted by key */
	size_t n_w;
	char **notices;            /* station|id@version|kind, sorted */
	size_t n_notices;
};

static int cmp_wver(const void *a, const void *b)
{
	return strcmp(((const struct wver *)a)->key, ((const struct wver *)b)->key);
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *run_capture(char **argv, const char *log, int timeout_ms)
{
	char *out = NULL;
	int r = wf_test_capture(argv, NULL, log, &out, timeout_ms);
	if (r != 0)
		die("%s exited %d (log %s)", argv[0], r, log ? log : "stderr");
	return out;
}

static void expect(const struct scenario *sc, char **files[N_AGENCIES], struct expected *x)
{
	char *events_path = wf_test_xasprintf("%s/events.jsonl", dir);
	char *log = wf_test_xasprintf("%s/expect.log", dir);
	char now[32];
	fmt_time(wf_clock_now_ms(NULL), now);
	/* per agency: the dry run over all its files, in order; the events of
	 * each slice carry that slice's time */
	struct buf *by_slice = calloc((size_t)sc->slices, sizeof *by_slice);
	for (int a = 0; a < N_AGENCIES; a++) {
		char **argv = calloc((size_t)sc->slices + 8, sizeof *argv);
		int n = 0;
		argv[n++] = procs[a].exe;
		argv[n++] = (char *)"--config";
		argv[n++] = procs[a].conf;
		argv[n++] = (char *)"--now";
		argv[n++] = now;
		argv[n++] = (char *)"--dry-run";
		for (int k = 0; k < sc->slices; k++)
			argv[n++] = files[a][k];
		char *out = run_capture(argv, log, 600000);
		free(argv);
		x->cum[a] = calloc((size_t)sc->slices, sizeof *x->cum[a]);
		uint64_t seq = 0;
		for (char *save = NULL, *l = strtok_r(out, "\n", &save); l;
		     l = strtok_r(NULL, "\n", &save)) {
			cJSON *j = cJSON_Parse(l);
			if (!j)
				die("%s --dry-run: not JSON: %.200s", kinds[a], l);
			if (cJSON_GetObjectItemCaseSensitive(j, "rejected"))
				die("%s --dry-run rejected: %.300s", kinds[a], l);
			cJSON *obs_ms = cJSON_GetObjectItemCaseSensitive(j, "observed_ms");
			int64_t t = 0;
			if (cJSON_IsString(obs_ms))
				t = strtoll(obs_ms->valuestring, NULL, 10);
			else if (cJSON_IsNumber(obs_ms))
				t = (int64_t)obs_ms->valuedouble;
			int k = (int)((t - sc->t0) / STEP_MS);
			if (t < sc->t0 || k >= sc->slices || t != sc->t0 + (int64_t)k * STEP_MS)
				die("%s: an event outside the slices' times: %.300s", kinds[a], l);
			seq++;
			x->cum[a][k]++;
			/* the replay input: stamped as the daemon would stamp it */
			cJSON_DeleteItemFromObjectCaseSensitive(j, "producer");
			cJSON_DeleteItemFromObjectCaseSensitive(j, "seq");
			char pr[64], sq[32];
			snprintf(pr, sizeof pr, "wf-%s-1", kinds[a]);
			snprintf(sq, sizeof sq, "%llu", (unsigned long long)seq);
			cJSON_AddStringToObject(j, "producer", pr);
			cJSON_AddStringToObject(j, "seq", sq);
			char *js = cJSON_PrintUnformatted(j);
			bprintf(&by_slice[k], "%s\n", js);
			free(js);
			cJSON_Delete(j);
		}
		free(out);
		for (int k = 1; k < sc->slices; k++)
			x->cum[a][k] += x->cum[a][k - 1];
		x->total[a] = x->cum[a][sc->slices - 1];
		x->events += x->total[a];
	}
	FILE *f = fopen(events_path, "w");
	if (!f)
		die("%s: %s", events_path, strerror(errno));
	for (int k = 0; k < sc->slices; k++) {
		if (by_slice[k].p)
			fwrite(by_slice[k].p, 1, by_slice[k].len, f);
		free(by_slice[k].p);
	}
	fclose(f);
	free(by_slice);

	char *rules = wf_test_source_path("deploy/fusion-rules.conf");
	char *argv[] = { procs[P_FUSION].exe, (char *)"--replay", events_path, (char *)"--rules",
			 rules, (char *)"--regions", getenv("WF_REGIONS"), NULL };
	double t = wf_test_mono_s();
	char *out = run_capture(argv, log, 600000);
	say("replay: %.1f s", wf_test_mono_s() - t);
	size_t cap = 65536;
	x->w = calloc(cap, sizeof *x->w);
	x->notices = calloc(cap, sizeof *x->notices);
	size_t ncap = cap;
	for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		ProtobufCMessage *m = NULL;
		char err[256];
		if (wf_pbjson_parse(&wf__v1__warning__descriptor, l, strlen(l), &m, err, sizeof err) < 0)
			die("replay output: %s: %.200s", err, l);
		Wf__V1__Warning *w = (Wf__V1__Warning *)m;
		if (x->n_w == cap) {
			cap *= 2;
			x->w = realloc(x->w, cap * sizeof *x->w);
		}
		char key[300];
		snprintf(key, sizeof key, "%s@%u", w->id, w->version);
		struct wver *v = &x->w[x->n_w++];
		memset(v, 0, sizeof *v);
		v->key = strdup(key);
		v->content = warning_content(w);
		v->gap = w->hazard == WF__V1__HAZARD__HAZARD_MONITORING_GAP;
		/* its duty notices: the prefecture station of each region */
		char seen[MAX_PREF] = { 0 };
		for (size_t r = 0; r < w->n_regions; r++) {
			int p = pref_index(w->regions[r]);
			if (p < 0 || seen[p])
				continue;
			seen[p] = 1;
			if (x->n_notices == ncap) {
				ncap *= 2;
				x->notices = realloc(x->notices, ncap * sizeof *x->notices);
			}
			x->notices[x->n_notices++] = wf_test_xasprintf(
				"duty-%s|%s|%d", prefs[p], key, (int)WF__V1__NOTICE_KIND__NOTICE_KIND_NOTICE);
		}
		protobuf_c_message_free_unpacked(m, NULL);
	}
	free(out);
	qsort(x->w, x->n_w, sizeof *x->w, cmp_wver);
	qsort(x->notices, x->n_notices, sizeof *x->notices, cmp_strp);
	free(rules);
	free(events_path);
	free(log);
}

/* ---- faults ---- */

struct chaos {
	bool faults;
	int slices;
	int broker_kill_every; /* a broker kill every N slices */
	uint32_t rng;
	ev_timer fault_timer, cont_timer, progress_timer;
	int stopped_proc;      /* -1: none */
	int actions, proc_kills, proc_stops;
	int k;                 /* the slice in flight */
	int next_proc;         /* processes are faulted in turn */
	bool broker_next;      /* the scheduled fault is a broker kill */
	int broker_owed;       /* broker kills due and not yet scheduled */
	struct expected *x;
	double deadline;       /* mono */
	bool timed_out;
	int64_t broker_back_ms; /* wall time the broker came back; 0: none pending */
	double broker_back_mono;
};

static struct chaos ch;

static uint32_t rnd(void)
{
	ch.rng = hash32(ch.rng + 0x9e3779b9U);
	return ch.rng;
}

static bool all_fresh_since(int64_t since_ms)
{
	for (int i = 0; i < N_PROCS; i++)
		if (procs[i].online_ms < since_ms)
			return false;
	return true;
}

static int64_t broker_back_ms(void) { return ch.broker_back_ms; }
static double broker_back_age_ms(void) { return (wf_test_mono_s() - ch.broker_back_mono) * 1000; }

static void cont_cb(struct ev_loop *l, ev_timer *w, int revents);

static void broker_kill_restart(void)
{
	/* a stopped process would only measure its stop */
	if (ch.stopped_proc >= 0) {
		ev_timer_stop(loop, &ch.cont_timer);
		cont_cb(loop, NULL, 0);
	}
	if (ch.broker_back_ms)
		st.broker_not_back++; /* killed again before every service was back */
	if (wf_test_broker_kill(broker) < 0)
		die("broker kill");
	double t = wf_test_mono_s();
	int r = wf_test_broker_restart(broker);
	if (r < 0)
		die("broker restart: %s", strerror(-r));
	double ms = (wf_test_mono_s() - t) * 1000;
	st.broker_kills++;
	if (ms > st.broker_worst_accept_ms)
		st.broker_worst_accept_ms = ms;
	ch.broker_back_ms = wf_clock_now_ms(NULL);
	ch.broker_back_mono = t;
	for (int i = 0; i < N_PROCS; i++)
		procs[i].back = false;
}

static void cont_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)l;
	(void)w;
	(void)revents;
	if (ch.stopped_proc >= 0 && procs[ch.stopped_proc].stopped) {
		kill(procs[ch.stopped_proc].pid, SIGCONT);
		procs[ch.stopped_proc].stopped = false;
	}
	ch.stopped_proc = -1;
}

/* One fault, some time into a slice (so it hits work in flight). */
static void fault_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ch.actions++;
	if (ch.broker_next) {
		broker_kill_restart();
		return;
	}
	uint32_t r = rnd();
	int i = ch.next_proc++ % N_PROCS;
	if ((r >> 8) % 4 == 0 && ch.stopped_proc < 0) {
		/* SIGSTOP for 0.5-3 s: longer than a heartbeat, shorter than a kill */
		kill(procs[i].pid, SIGSTOP);
		procs[i].stopped = true;
		procs[i].stops++;
		ch.proc_stops++;
		ch.stopped_proc = i;
		ev_timer_set(&ch.cont_timer, 0.5 + (double)((r >> 12) % 2500) / 1000.0, 0);
		ev_timer_start(l, &ch.cont_timer);
		return;
	}
	if (ch.stopped_proc == i) {
		ev_timer_stop(l, &ch.cont_timer);
		ch.stopped_proc = -1;
	}
	kill_restart(i);
	ch.proc_kills++;
}

static uint64_t gate_done(int a)
{
	uint64_t f = obs.floor[a] > 0 ? obs.floor[a] - 1 : 0;
	return obs.acked[a] > f ? obs.acked[a] : f;
}

static void progress_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)l;
	(void)w;
	(void)revents;
	uint64_t done = 0;
	for (int a = 0; a < N_AGENCIES; a++)
		done += gate_done(a);
	say("slice %d/%d: %llu/%llu events acked by fusion, %llu warning msgs seen, %zu notices "
	    "(%llu copies), %llu broadcast states; faults: %d broker kills, %d process kills, %d "
	    "stops",
	    ch.k + 1, ch.slices, (unsigned long long)done, (unsigned long long)ch.x->events,
	    (unsigned long long)obs.warnings_seen, con.count, (unsigned long long)con.received,
	    (unsigned long long)obs.bcast_seen, st.broker_kills, ch.proc_kills, ch.proc_stops);
}

struct slice_wait {
	int k;
};

static bool slice_acked(void *ud)
{
	int k = ((struct slice_wait *)ud)->k;
	if (ch.broker_back_ms && all_fresh_since(ch.broker_back_ms - 1)) {
		double ms = (wf_test_mono_s() - ch.broker_back_mono) * 1000;
		if (ms > st.broker_worst_services_ms)
			st.broker_worst_services_ms = ms;
		ch.broker_back_ms = 0;
	}
	if (wf_test_mono_s() > ch.deadline) {
		ch.timed_out = true;
		return true;
	}
	for (int a = 0; a < N_AGENCIES; a++)
		if (gate_done(a) < ch.x->cum[a][k])
			return false;
	return true;
}

static bool all_up(void *ud)
{
	(void)ud;
	for (int i = 0; i < N_PROCS; i++)
		if (procs[i].want_ready)
			return false;
	return wf_node_ready(con.node) && wf_bus_subscribed(obs.bus);
}

static void publish_slice(char **hidden[N_AGENCIES], char **names[N_AGENCIES], int k)
{
	for (int a = 0; a < N_AGENCIES; a++)
		if (rename(hidden[a][k], names[a][k]) < 0)
			die("rename %s: %s", names[a][k], strerror(errno));
}

static char *outgoing_dir(void) { return wf_test_xasprintf("%s/state-dispatch/cap/outgoing", dir); }

struct drain_wait {
	double stable_since;
	uint64_t last_fusion_seq, last_notices;
	long last_sms;
};

/* Everything fusion published is acked by dispatch, every notice the
 * console took is acked, every approval taken, every CAP file POSTed, and
 * nothing changed for 3 s. */
static bool drained(void *ud)
{
	struct drain_wait *d = ud;
	if (wf_test_mono_s() > ch.deadline) {
		ch.timed_out = true;
		return true;
	}
	char *og = outgoing_dir();
	bool quiet = obs.fusion_max_seq > 0 && obs.acked[P_FUSION] >= obs.fusion_max_seq &&
		     con.n_acks == 0 && con.n_apprs == 0 && wf_node_pending(con.node) == 0 &&
		     wf_test_dir_count(og, "") == 0;
	free(og);
	long sms = wf_test_kannel_received_count(kannel);
	if (!quiet || obs.fusion_max_seq != d->last_fusion_seq || con.count != d->last_notices ||
	    sms != d->last_sms) {
		d->stable_since = wf_test_mono_s();
		d->last_fusion_seq = obs.fusion_max_seq;
		d->last_notices = con.count;
		d->last_sms = sms;
		return false;
	}
	return wf_test_mono_s() - d->stable_since > 3.0;
}

/* ---- what dispatch stored ---- */

struct dstore {
	struct wver *w;
	size_t n, cap;
};

static int dstore_one(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct dstore *d = ud;
	Wf__V1__Warning *w = wf__v1__warning__unpack(NULL, vlen, val);
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 65536;
		d->w = realloc(d->w, d->cap * sizeof *d->w);
	}
	struct wver *v = &d->w[d->n++];
	memset(v, 0, sizeof *v);
	v->key = strndup(key, klen);
	v->content = w ? warning_content(w) : strdup("(undecodable)");
	v->gap = w && w->hazard == WF__V1__HAZARD__HAZARD_MONITORING_GAP;
	if (w)
		wf__v1__warning__free_unpacked(w, NULL);
	return 0;
}

/* d-wver <id>@<version> -> u64 BE place in d-wlog (services/dispatch/store.c) */
static unsigned dstore_wver, dstore_wlog;
static size_t dstore_dangling; /* d-wver entries whose d-wlog version is missing */

static int dstore_ver(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct wf_txn *t = *(struct wf_txn **)ud;
	void *w = NULL;
	size_t wl = 0;
	if (vlen != 8 || wf_store_get(t, dstore_wlog, val, vlen, &w, &wl) < 0) {
		dstore_dangling++;
		return 0;
	}
	int r = dstore_one(((void **)ud)[1], key, klen, w, wl);
	free(w);
	return r;
}

static int dstore_read(struct wf_txn *t, void *ud)
{
	void *ctx[2] = { t, ud };
	uint64_t nver = 0, nlog = 0;
	int r = wf_store_foreach(t, dstore_wver, NULL, 0, dstore_ver, ctx);
	if (r >= 0)
		r = wf_store_count(t, dstore_wver, &nver);
	if (r >= 0)
		r = wf_store_count(t, dstore_wlog, &nlog);
	if (r >= 0 && nlog > nver)
		dstore_dangling += (size_t)(nlog - nver); /* versions no key finds */
	return r;
}

/* Every version wf-dispatch stored (d-wver and d-wlog), sorted. */
static void dstore_load(struct dstore *d)
{
	struct wf_store_options so = { 0 };
	struct wf_store *s = NULL;
	char *path = wf_test_xasprintf("%s/state-dispatch", dir);
	so.path = path;
	if (wf_store_open(&so, &s) < 0 ||
	    wf_store_dbi(s, "d-wver", WF_STORE_DB_NOCREATE, &dstore_wver) < 0 ||
	    wf_store_dbi(s, "d-wlog", WF_STORE_DB_NOCREATE, &dstore_wlog) < 0 ||
	    wf_store_view(s, dstore_read, d) < 0)
		die("%s: cannot read d-wver and d-wlog", path);
	wf_store_close(s);
	free(path);
	qsort(d->w, d->n, sizeof *d->w, cmp_wver);
}

/* ---- the SMS state wf-dispatch left ---- */

#define SMS_INFLIGHT_MAX 64 /* wf-dispatch's SMS requests in flight (docs/sms.md) */

struct sms_tally {
	size_t n;                 /* recipients of deliveries */
	long *planned;            /* parts of the delivered ones, by subscriber index */
	long *deliveries;         /* deliveries, by subscriber index */
	uint64_t states[WF_SMS_STATE_MAX + 1];
	size_t unknown;           /* a number not among the subscribers */
};

static long sub_index(const char *msisdn)
{
	for (size_t i = 0; i < n_subs; i++)
		if (strcmp(subs[i], msisdn) == 0)
			return (long)i;
	return -1;
}

static int sms_each(void *ud, const char *key, const char *msisdn, enum wf_sms_state state,
		    unsigned parts)
{
	struct sms_tally *t = ud;
	(void)key;
	long i = sub_index(msisdn);
	t->n++;
	t->states[state <= WF_SMS_STATE_MAX ? state : WF_SMS_STATE_MAX]++;
	if (i < 0) {
		t->unknown++;
		return 0;
	}
	/* what the handset should have: the delivered ones (an expired one
	 * was not sent: its warning had expired first; the scenario's times
	 * are hours to days ago, so most versions have) */
	if (state == WF_SMS_DELIVERED)
		t->planned[i] += parts;
	t->deliveries[i]++;
	return 0;
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: chaos [--events N] [--seed S] [--slices K] [--broker-kills M]\n"
		"             [--time-limit SEC] [--no-faults] [--keep]\n"
		"  --events N        about N events in the scenario (default 100000)\n"
		"  --seed S          scenario and fault schedule seed (default 1)\n"
		"  --slices K        hours of event time, one file per agency each (default 96)\n"
		"  --broker-kills M  at least M broker SIGKILLs (default 24)\n"
		"  --time-limit SEC  give up after SEC seconds of running (default 1500)\n"
		"  --no-faults       the same run without faults (checks the checker)\n"
		"  --keep            keep the temp directory (logs, state)\n");
}

static long num_arg(const char *s, long lo, long hi)
{
	char *e = NULL;
	long v = strtol(s, &e, 10);
	if (!*s || *e || v < lo || v > hi) {
		fprintf(stderr, "chaos: bad value '%s' (%ld..%ld)\n", s, lo, hi);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	long target = 100000, slices = 96, bkills = 24, limit = 1500;
	bool faults = true;
	static const struct option opts[] = {
		{ "events", required_argument, NULL, 'e' },   { "seed", required_argument, NULL, 's' },
		{ "slices", required_argument, NULL, 'k' },   { "broker-kills", required_argument, NULL, 'b' },
		{ "time-limit", required_argument, NULL, 't' }, { "no-faults", no_argument, NULL, 'n' },
		{ "keep", no_argument, NULL, 'K' },           { "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;
	seed = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'e': target = num_arg(optarg, 1000, 10000000); break;
		case 's': seed = (uint32_t)num_arg(optarg, 0, 0x7fffffff); break;
		case 'k': slices = num_arg(optarg, 2 * BLOCK, 150); break;
		case 'b': bkills = num_arg(optarg, 0, 1000); break;
		case 't': limit = num_arg(optarg, 10, 86400); break;
		case 'n': faults = false; break;
		case 'K': keep = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	t_start = wf_test_mono_s();
	signal(SIGPIPE, SIG_IGN);
	if (!getenv("WF_REGIONS")) {
		char *r = wf_test_source_path("data/regions.csv");
		setenv("WF_REGIONS", r, 1);
		free(r);
	}
	load_regions(getenv("WF_REGIONS"));

	/* the scenario: fire + police incidents carry most events (7 rows per
	 * incident, one event each), met/water/geo entities the rest */
	struct scenario sc = { .slices = (int)slices, .stations = 60 };
	double starts_frac = (double)(BLOCK - 3) / BLOCK;
	sc.per_slice = (int)ceil((double)target * 0.85 / (slices * starts_frac * 7.0));
	int64_t now = wf_clock_now_ms(NULL);
	sc.t0 = now - now % STEP_MS - (slices + 2) * STEP_MS;
	gen_conf_extra(&sc);

	dir = wf_test_mkdtemp("chaos");
	if (!dir)
		die("mkdtemp");
	say("chaos: %s; %ld slices, %d new fire and police incidents per slice, seed %u, faults %s",
	    dir, slices, sc.per_slice, seed, faults ? "on" : "off");

	struct wf_test_broker_options bo;
	wf_test_broker_options_init(&bo);
	bo.persistence = true;
	bo.autosave_interval_s = 60;
	bo.extra_config = "set_tcp_nodelay true\nmax_queued_messages 100000\n"
			  "max_inflight_messages 1000\nmax_packet_size 1048576\n";
	int r = wf_test_broker_start(&bo, &broker);
	if (r < 0)
		die("mosquitto: %s", strerror(-r));
	snprintf(port_s, sizeof port_s, "%d", wf_test_broker_port(broker));
	plat = wf_test_platform_start(POST_FAIL_EVERY);
	struct wf_test_kannel_options ko = { .dlr_retry = true };
	if ((r = wf_test_kannel_create(&ko, &kannel)) < 0 || (r = wf_test_kannel_start(kannel)) < 0)
		die("kannel: %s", strerror(-r));
	setup_procs(&sc);

	/* files: hidden in the spool until their slice */
	char **files[N_AGENCIES], **hidden[N_AGENCIES], **names[N_AGENCIES];
	char *gen = wf_test_xasprintf("%s/gen", dir);
	mkdir(gen, 0700);
	for (int a = 0; a < N_AGENCIES; a++) {
		files[a] = calloc((size_t)slices, sizeof *files[a]);
		hidden[a] = calloc((size_t)slices, sizeof *hidden[a]);
		names[a] = calloc((size_t)slices, sizeof *names[a]);
		for (int k = 0; k < slices; k++) {
			struct buf b = { 0 };
			gen_slice(&sc, a, k, &b);
			files[a][k] = wf_test_xasprintf("%s/%s-%05d.csv", gen, kinds[a], k);
			spit(files[a][k], b.p, b.len);
			hidden[a][k] = wf_test_xasprintf("%s/spool-%s/.%s-%05d.tmp", dir, kinds[a], kinds[a], k);
			names[a][k] = wf_test_xasprintf("%s/spool-%s/%s-%05d.csv", dir, kinds[a], kinds[a], k);
			spit(hidden[a][k], b.p, b.len);
			free(b.p);
		}
	}
	struct expected x = { 0 };
	expect(&sc, files, &x);
	size_t x_gap = 0;
	for (size_t i = 0; i < x.n_w; i++)
		x_gap += x.w[i].gap;
	say("scenario: %llu events (met %llu, water %llu, geo %llu, fire %llu, police %llu) -> "
	    "replay: %zu warning versions, %zu duty notices expected",
	    (unsigned long long)x.events, (unsigned long long)x.total[0],
	    (unsigned long long)x.total[1], (unsigned long long)x.total[2],
	    (unsigned long long)x.total[3], (unsigned long long)x.total[4], x.n_w, x.n_notices);

	loop = ev_default_loop(EVFLAG_AUTO);
	obs_start();
	console_start();
	for (int i = N_PROCS - 1; i >= 0; i--)
		spawn_proc(i);
	if (!wf_test_run_until(loop, all_up, NULL, 30000))
		die("the services did not come up (logs in %s)", dir);
	say("all services ONLINE");
	st.ready_worst_ms = 0; /* first starts are not restarts */
	st.ready_worst_who = NULL;
	for (int i = 0; i < N_PROCS; i++)
		procs[i].worst_ready_ms = 0;

	ch.faults = faults;
	ch.slices = (int)slices;
	ch.broker_kill_every = bkills > 0 ? (int)(slices / bkills) : 0;
	if (ch.broker_kill_every < 2 && bkills > 0)
		ch.broker_kill_every = 2;
	ch.rng = seed;
	ch.stopped_proc = -1;
	ch.x = &x;
	ch.deadline = wf_test_mono_s() + (double)limit;
	ev_timer_init(&ch.fault_timer, fault_cb, 0, 0);
	ev_timer_init(&ch.cont_timer, cont_cb, 0, 0);
	ev_timer_init(&ch.progress_timer, progress_cb, 5, 5);
	ev_timer_start(loop, &ch.progress_timer);

	double run_t0 = wf_test_mono_s();
	for (int k = 0; k < slices && !ch.timed_out; k++) {
		ch.k = k;
		publish_slice(hidden, names, k);
		/* one fault per slice, 0-400 ms into it (a fault still pending
		 * from a quick slice fires in the next one) */
		if (ch.broker_kill_every > 0 && k % ch.broker_kill_every == 1)
			ch.broker_owed++;
		if (faults && !ev_is_active(&ch.fault_timer)) {
			ch.broker_next = ch.broker_owed > 0;
			ch.broker_owed -= ch.broker_next;
			ev_timer_set(&ch.fault_timer, (double)(rnd() % 400) / 1000.0, 0);
			ev_timer_start(loop, &ch.fault_timer);
		}
		struct slice_wait sw = { k };
		while (!slice_acked(&sw))
			ev_run(loop, EVRUN_ONCE);
	}
	/* faults still due (a pending one, broker kills owed) happen now */
	if (faults && !ch.timed_out && ev_is_active(&ch.fault_timer)) {
		ev_timer_stop(loop, &ch.fault_timer);
		fault_cb(loop, &ch.fault_timer, 0);
	}
	ev_timer_stop(loop, &ch.fault_timer);
	for (; faults && !ch.timed_out && ch.broker_owed > 0; ch.broker_owed--)
		broker_kill_restart();
	/* SIGCONT whatever is stopped, then wait for the tail */
	cont_cb(loop, NULL, 0);
	say("all slices acked by fusion; draining fusion -> dispatch -> consoles");
	struct drain_wait dw = { 0 };
	while (!drained(&dw))
		ev_run(loop, EVRUN_ONCE);
	if (ch.broker_back_ms)
		(void)wf_test_run_until(loop, slice_acked, &(struct slice_wait){ (int)slices - 1 }, 10000);
	double run_s = wf_test_mono_s() - run_t0;
	progress_cb(loop, NULL, 0);
	ev_timer_stop(loop, &ch.progress_timer);
	ev_timer_stop(loop, &con.ack_timer);

	/* stop everything cleanly, then read what dispatch stored */
	int bad_exit = 0;
	/* fusion first: adapters going away after it make no gap notices */
	for (int i = N_PROCS - 1; i >= 0; i--) {
		if (procs[i].stopped)
			kill(procs[i].pid, SIGCONT);
		int e = wf_test_stop(procs[i].pid, SIGTERM, 15000);
		if (e != 0) {
			say("%s: exit %d at SIGTERM (log %s)", procs[i].name, e, procs[i].log);
			bad_exit++;
		}
		procs[i].pid = 0;
	}
	struct dstore ds = { 0 };
	dstore_load(&ds);

	/* ---- the checker ---- */
	uint64_t ev_lost = 0;
	for (int a = 0; a < N_AGENCIES; a++)
		if (gate_done(a) < x.total[a])
			ev_lost += x.total[a] - gate_done(a);
	size_t w_lost_superseded = 0;
	size_t w_lost = 0, w_diff = 0, w_extra = 0, gap_versions = 0, i = 0, j = 0;
	while (i < ds.n || j < x.n_w) {
		int cmp = i == ds.n ? 1 : j == x.n_w ? -1 : strcmp(ds.w[i].key, x.w[j].key);
		if (cmp == 0) {
			if (strcmp(ds.w[i].content, x.w[j].content) != 0) {
				if (w_diff < 3)
					printf("  different %s:\n   got  %s\n   want %s\n", x.w[j].key,
					       ds.w[i].content, x.w[j].content);
				w_diff++;
			}
			i++;
			j++;
		} else if (cmp < 0) {
			if (ds.w[i].gap)
				gap_versions++;
			else {
				if (w_extra < 3)
					printf("  unexpected %s\n", ds.w[i].content);
				w_extra++;
			}
			i++;
		} else {
			/* a newer version of the same warning stored: the older one
			 * came after it and dispatch ignored it */
			const char *at = strrchr(x.w[j].key, '@');
			size_t idlen = (size_t)(at - x.w[j].key);
			unsigned ver = (unsigned)atoi(at + 1);
			bool newer = false;
			for (size_t q = i; q < ds.n && strncmp(ds.w[q].key, x.w[j].key, idlen) == 0; q++)
				newer |= ds.w[q].key[idlen] == '@' && (unsigned)atoi(ds.w[q].key + idlen + 1) > ver;
			for (size_t q = i; q-- > 0 && strncmp(ds.w[q].key, x.w[j].key, idlen) == 0;)
				newer |= ds.w[q].key[idlen] == '@' && (unsigned)atoi(ds.w[q].key + idlen + 1) > ver;
			if (w_lost < 3)
				printf("  lost %s\n", x.w[j].content);
			w_lost++;
			w_lost_superseded += newer;
			j++;
		}
	}
	size_t w_dup = 0, w_dup_gap = 0, w_unseen = 0;
	for (size_t k = 0; k < obs.n_w; k++)
		if (obs.w[k].n_seqs > 1) {
			if (obs.w[k].gap) {
				if (w_dup_gap < 3)
					printf("  monitoring-gap version duplicated %s (fusion seqs %llu, "
					       "%llu)\n",
					       obs.w[k].key, (unsigned long long)obs.w[k].seqs[0],
					       (unsigned long long)obs.w[k].seqs[1]);
				w_dup_gap++;
			}
			else {
				if (w_dup < 3)
					printf("  duplicated %s (fusion seqs %llu, %llu)\n", obs.w[k].key,
					       (unsigned long long)obs.w[k].seqs[0],
					       (unsigned long long)obs.w[k].seqs[1]);
				w_dup++;
			}
		}
	for (size_t k = 0; k < x.n_w; k++)
		if (!obs_warning(x.w[k].key, false))
			w_unseen++;
	/* notices */
	size_t n_lost_newer = 0, n_lost_stored = 0, n_lost_final = 0;
	size_t n_lost = 0, n_dup = 0, n_extra = 0, n_gap = 0, n_other = 0;
	for (size_t k = 0; k < x.n_notices; k++) {
		if (!notice_find(x.notices[k])) {
			if (n_lost < 3)
				printf("  notice lost: %s\n", x.notices[k]);
			n_lost++;
			/* did the station get a newer version of that warning? */
			const char *at = strrchr(x.notices[k], '@');
			size_t pl = (size_t)(at - x.notices[k]) + 1;
			unsigned ver = (unsigned)atoi(at + 1);
			bool newer = false;
			for (size_t q = 0; q < con.count && !newer; q++)
				newer = strncmp(con.n[q].key, x.notices[k], pl) == 0 &&
					(unsigned)atoi(con.n[q].key + pl) > ver;
			n_lost_newer += newer;
			/* the version itself in dispatch's store? */
			const char *bar = strchr(x.notices[k], '|');
			char wkey[300];
			snprintf(wkey, sizeof wkey, "%.*s", (int)(strrchr(x.notices[k], '|') - bar - 1),
				 bar + 1);
			struct wver probe = { .key = wkey };
			bool stored = bsearch(&probe, ds.w, ds.n, sizeof *ds.w, cmp_wver) != NULL;
			n_lost_stored += stored;
			n_lost_final += stored && !newer;
			if (stored && !newer && n_lost_final <= 5)
				printf("  notice lost although dispatch stored the version and the station "
				       "got no newer one: %s\n",
				       x.notices[k]);
		}
	}
	char kind_notice[8];
	snprintf(kind_notice, sizeof kind_notice, "|%d", (int)WF__V1__NOTICE_KIND__NOTICE_KIND_NOTICE);
	for (size_t k = 0; k < con.count; k++) {
		struct notice *n = &con.n[k];
		size_t kl = strlen(n->key);
		if (n->redone) {
			if (n_dup < 3)
				printf("  notice duplicated (another deadline): %s\n", n->key);
			n_dup++;
		}
		if (n->gap) {
			n_gap++;
			continue;
		}
		if (kl < strlen(kind_notice) || strcmp(n->key + kl - strlen(kind_notice), kind_notice)) {
			n_other++;
			continue;
		}
		char *key = n->key;
		if (!bsearch(&key, x.notices, x.n_notices, sizeof *x.notices, cmp_strp)) {
			if (n_extra < 3)
				printf("  notice unexpected: %s\n", n->key);
			n_extra++;
		}
	}
	/* review: from each warning's last release record, the versions
	 * released after an approval, and the latest versions still pending */
	char **rel = NULL, **cap_sent = NULL;
	size_t n_rel = 0, rel_cap = 0, left_pending = 0, recs_purged = 0, n_cap_sent = 0, cs_cap = 0;
	for (size_t k = 0; k < recs.n; k++) {
		Wf__V1__WarningRecord *wr =
			recs.r[k].len ? wf__v1__warning_record__unpack(NULL, recs.r[k].len, recs.r[k].p) : NULL;
		if (!wr) {
			recs_purged++;
			continue;
		}
		for (size_t v = 0; v < wr->n_versions; v++) {
			const Wf__V1__VersionRecord *vr = wr->versions[v];
			if (vr->required > 0 && vr->review == WF__V1__REVIEW_STATE__REVIEW_RELEASED) {
				if (n_rel == rel_cap) {
					rel_cap = rel_cap ? rel_cap * 2 : 4096;
					rel = realloc(rel, rel_cap * sizeof *rel);
				}
				rel[n_rel++] = wf_test_xasprintf("%s@%u", wr->warning_id, vr->version);
			}
			if (vr->version == wr->latest && vr->review == WF__V1__REVIEW_STATE__REVIEW_PENDING) {
				if (left_pending < 3)
					printf("  still pending review at the end: %s@%u\n", wr->warning_id,
					       vr->version);
				left_pending++;
			}
		}
		/* the CAP files its versions need: every version of level I or II
		 * released (after review or at once) has one, but a cancel of a
		 * warning the public never had (nothing to withdraw) */
		bool public_before = false;
		for (size_t v = 0; v < wr->n_versions; v++) {
			const Wf__V1__VersionRecord *vr = wr->versions[v];
			bool released = vr->review == WF__V1__REVIEW_STATE__REVIEW_RELEASED ||
					vr->review == WF__V1__REVIEW_STATE__REVIEW_AUTO;
			bool actual = vr->status == WF__V1__STATUS__STATUS_ACTUAL;
			bool severe = vr->level == WF__V1__LEVEL__LEVEL_I ||
				      vr->level == WF__V1__LEVEL__LEVEL_II;
			bool cancel = vr->msg_type == WF__V1__MSG_TYPE__MSG_TYPE_CANCEL;
			if (released && actual && severe && (!cancel || public_before)) {
				if (n_cap_sent == cs_cap) {
					cs_cap = cs_cap ? cs_cap * 2 : 4096;
					cap_sent = realloc(cap_sent, cs_cap * sizeof *cap_sent);
				}
				cap_sent[n_cap_sent++] =
					wf_test_xasprintf("%s.v%u", wr->warning_id, vr->version);
			}
			public_before |= released && actual && !cancel;
		}
		/* the CAP files its delivery records say were written */
		for (size_t k2 = 0; k2 < wr->n_deliveries; k2++) {
			const Wf__V1__DeliveryRecord *dr = wr->deliveries[k2];
			size_t dl = strlen(dr->detail);
			if (strcmp(dr->channel, "cap") != 0 || strcmp(dr->state, "sent") != 0 || dl < 5 ||
			    strcmp(dr->detail + dl - 4, ".xml") != 0)
				continue;
			if (n_cap_sent == cs_cap) {
				cs_cap = cs_cap ? cs_cap * 2 : 4096;
				cap_sent = realloc(cap_sent, cs_cap * sizeof *cap_sent);
			}
			cap_sent[n_cap_sent++] = strndup(dr->detail, dl - 4);
		}
		wf__v1__warning_record__free_unpacked(wr, NULL);
	}
	qsort(rel, n_rel, sizeof *rel, cmp_strp);
	/* RELEASED notices: every station told of a version while it was
	 * pending review hears of its release, and no other station */
	size_t r_expected = 0, r_lost = 0, r_extra = 0;
	for (size_t k = 0; k < con.count; k++) {
		struct notice *n = &con.n[k];
		char *bar1 = strchr(n->key, '|'), *bar2 = strrchr(n->key, '|');
		int kind = atoi(bar2 + 1);
		char wkey[300], *wk = wkey;
		snprintf(wkey, sizeof wkey, "%.*s", (int)(bar2 - bar1 - 1), bar1 + 1);
		bool released = bsearch(&wk, rel, n_rel, sizeof *rel, cmp_strp) != NULL;
		if (kind == WF__V1__NOTICE_KIND__NOTICE_KIND_RELEASED) {
			char told[400];
			bool pending_told = false;
			for (int kk = WF__V1__NOTICE_KIND__NOTICE_KIND_NOTICE;
			     kk <= WF__V1__NOTICE_KIND__NOTICE_KIND_ESCALATION; kk++) {
				snprintf(told, sizeof told, "%.*s|%d", (int)(bar2 - n->key), n->key, kk);
				struct notice *t = notice_find(told);
				pending_told |= t && t->pending;
			}
			if (!released || !pending_told) {
				if (r_extra < 3)
					printf("  RELEASED notice unexpected: %s\n", n->key);
				r_extra++;
			}
		} else if (n->pending && released &&
			   (kind == WF__V1__NOTICE_KIND__NOTICE_KIND_NOTICE ||
			    kind == WF__V1__NOTICE_KIND__NOTICE_KIND_ESCALATION)) {
			char want[400];
			snprintf(want, sizeof want, "%.*s|%d", (int)(bar2 - n->key), n->key,
				 (int)WF__V1__NOTICE_KIND__NOTICE_KIND_RELEASED);
			if (notice_find(want))
				r_expected++;
			else if (!notice_find(want) && kind == WF__V1__NOTICE_KIND__NOTICE_KIND_NOTICE) {
				if (r_lost < 3)
					printf("  RELEASED notice lost: %s\n", want);
				r_lost++;
			}
		}
	}
	size_t r_received = 0;
	for (size_t k = 0; k < con.count; k++) {
		const char *bar2 = strrchr(con.n[k].key, '|');
		r_received += atoi(bar2 + 1) == WF__V1__NOTICE_KIND__NOTICE_KIND_RELEASED;
	}
	r_expected += r_lost;

	/* CAP: every file wf-dispatch wrote reached the platform */
	struct wf_test_platform_counts pc;
	char **posted = NULL, **files_ids = NULL;
	size_t n_posted = 0;
	wf_test_platform_counts(plat, &pc);
	wf_test_platform_stop(plat, &posted, &n_posted);
	plat = NULL;
	char *capdir = wf_test_xasprintf("%s/state-dispatch/cap", dir), *og = outgoing_dir();
	long cap_files = wf_test_cap_identifiers(capdir, &files_ids), cap_queued = wf_test_dir_count(og, "");
	size_t n_fid = cap_files > 0 ? (size_t)cap_files : 0;
	size_t cap_lost = 0, cap_extra = 0, cap_distinct = 0;
	for (size_t k = 0; k < n_posted; k++)
		cap_distinct += k == 0 || strcmp(posted[k], posted[k - 1]) != 0;
	for (size_t k = 0; k < n_fid; k++)
		if (!bsearch(&files_ids[k], posted, n_posted, sizeof *posted, cmp_strp)) {
			if (cap_lost < 3)
				printf("  CAP file never POSTed: %s\n", files_ids[k]);
			cap_lost++;
		}
	for (size_t k = 0; k < n_posted; k++)
		if ((k == 0 || strcmp(posted[k], posted[k - 1]) != 0) &&
		    !bsearch(&posted[k], files_ids, n_fid, sizeof *files_ids, cmp_strp))
			cap_extra++;
	/* a release that needs a CAP file, or recorded "cap sent", without one */
	qsort(cap_sent, n_cap_sent, sizeof *cap_sent, cmp_strp);
	size_t w2 = 0;
	for (size_t k = 0; k < n_cap_sent; k++) {
		if (w2 > 0 && strcmp(cap_sent[k], cap_sent[w2 - 1]) == 0) {
			free(cap_sent[k]);
			continue;
		}
		cap_sent[w2++] = cap_sent[k];
	}
	n_cap_sent = w2;
	size_t cap_unwritten = 0;
	for (size_t k = 0; k < n_cap_sent; k++)
		if (!bsearch(&cap_sent[k], files_ids, n_fid, sizeof *files_ids, cmp_strp)) {
			if (cap_unwritten < 3)
				printf("  CAP recorded sent, no file: %s.xml\n", cap_sent[k]);
			cap_unwritten++;
		}

	/* SMS per recipient: the parts wf-dispatch planned (its store) against
	 * what the handsets (fakesmsc) got */
	struct sms_tally t_sms = { 0 };
	t_sms.planned = calloc(n_subs, sizeof *t_sms.planned);
	t_sms.deliveries = calloc(n_subs, sizeof *t_sms.deliveries);
	{
		struct wf_store_options so = { 0 };
		struct wf_store *s2 = NULL;
		char *path = wf_test_xasprintf("%s/state-dispatch", dir);
		so.path = path;
		if (wf_store_open(&so, &s2) < 0 || wf_sms_foreach_recipient(s2, sms_each, &t_sms) < 0)
			die("%s: cannot read the SMS state", path);
		wf_store_close(s2);
		free(path);
	}
	long *got_parts = calloc(n_subs, sizeof *got_parts);
	struct wf_test_sms *handset = NULL;
	long n_handset = wf_test_kannel_received(kannel, &handset), sms_stray = 0;
	for (long k = 0; k < n_handset; k++) {
		long si = sub_index(handset[k].to);
		if (si < 0)
			sms_stray++;
		else
			got_parts[si]++;
	}
	long sms_lost = 0, sms_dup = 0, sms_planned = 0;
	size_t subs_exact = 0, subs_fewer = 0, subs_more = 0, subs_any = 0;
	for (size_t si = 0; si < n_subs; si++) {
		sms_planned += t_sms.planned[si];
		subs_any += t_sms.deliveries[si] > 0;
		if (got_parts[si] < t_sms.planned[si]) {
			sms_lost += t_sms.planned[si] - got_parts[si];
			subs_fewer++;
		} else {
			sms_dup += got_parts[si] - t_sms.planned[si];
			subs_more += got_parts[si] > t_sms.planned[si];
			subs_exact += got_parts[si] == t_sms.planned[si];
		}
	}
	uint64_t sms_final = t_sms.states[WF_SMS_DELIVERED] + t_sms.states[WF_SMS_FAILED] +
			     t_sms.states[WF_SMS_EXPIRED];
	long dsp_kills = procs[P_DISPATCH].kills;

	size_t left = 0, rejected = 0;
	for (int a = 0; a < N_AGENCIES; a++) {
		char *cmd = wf_test_xasprintf("ls -A %s/spool-%s | grep -v '^done$\\|^rejected$' | wc -l; "
				      "ls %s/spool-%s/rejected 2>/dev/null | wc -l",
				      dir, kinds[a], dir, kinds[a]);
		FILE *p = popen(cmd, "r");
		unsigned long l1 = 0, l2 = 0;
		if (p && fscanf(p, "%lu %lu", &l1, &l2) == 2) {
			left += l1;
			rejected += l2;
		}
		if (p)
			pclose(p);
		free(cmd);
	}

	printf("\n== chaos: %llu events, %ld slices, seed %u, %.0f s (%.0f events/s end to end)\n",
	       (unsigned long long)x.events, slices, seed, run_s, (double)x.events / run_s);
	printf("faults: %d broker SIGKILL+restart, %d process SIGKILL+restart, %d SIGSTOP/SIGCONT\n",
	       st.broker_kills, ch.proc_kills, ch.proc_stops);
	for (int p = 0; p < N_PROCS; p++)
		printf("  %-14s %3d kills %3d stops  worst restart-to-ready %6.0f ms, worst broker "
		       "restart-to-ONLINE %6.0f ms\n",
		       procs[p].name, procs[p].kills, procs[p].stops, procs[p].worst_ready_ms,
		       procs[p].worst_back_ms);
	printf("events: %llu expected, %llu lost (not acked by wf-fusion), spool files left %zu, "
	       "rejected %zu\n",
	       (unsigned long long)x.events, (unsigned long long)ev_lost, left, rejected);
	printf("warning versions (wf-dispatch's d-wver/d-wlog vs wf-fusion --replay): %zu expected, "
	       "%zu stored (%zu index entries without their version or versions without an "
	       "entry); lost %zu (%zu of them older than a version dispatch already had), "
	       "different %zu, unexpected %zu, duplicated %zu (one id@version "
	       "published under two seqs); monitoring-gap versions %zu (dup %zu); not seen by the "
	       "observer %zu\n",
	       x.n_w - x_gap, ds.n, dstore_dangling, w_lost, w_lost_superseded, w_diff, w_extra,
	       w_dup, gap_versions, w_dup_gap, w_unseen);
	printf("duty notices (console, deduped by station|id@version|kind): %zu expected, %zu "
	       "distinct received (%llu copies); lost %zu (the station got a newer version of "
	       "%zu of them; dispatch had stored the version of %zu, %zu of these with no newer "
	       "version at the station), duplicated %zu, unexpected %zu; "
	       "monitoring-gap %zu, other kinds %zu\n",
	       x.n_notices, con.count, (unsigned long long)con.received, n_lost, n_lost_newer, n_lost_stored, n_lost_final, n_dup, n_extra, n_gap,
	       n_other);
	printf("broadcast states received: %llu\n", (unsigned long long)obs.bcast_seen);
	printf("review (level I needs one approval; the console approves what it is told is "
	       "pending): %llu approvals sent, %zu versions released after review, %zu latest "
	       "versions still pending at the end; RELEASED notices: %zu expected, %zu received, "
	       "lost %zu, unexpected %zu; release records %zu (%zu purged)\n",
	       (unsigned long long)con.approvals, n_rel, left_pending, r_expected, r_received, r_lost,
	       r_extra, recs.n, recs_purged);
	printf("CAP (levels I and II to the broadcast platform, every %dth POST answered 503): "
	       "%ld files written, %ld still queued, %llu POSTs (%llu answered 503, %llu "
	       "unreadable), %zu distinct identifiers posted (%zu POSTs again after a restart); "
	       "never posted %zu, posted without a file %zu; needed by the release records (versions "
	       "of I and II released, deliveries recorded sent) %zu, of them without a file %zu\n",
	       POST_FAIL_EVERY, cap_files, cap_queued, (unsigned long long)pc.requests,
	       (unsigned long long)pc.refused, (unsigned long long)pc.bad, cap_distinct,
	       n_posted - cap_distinct, cap_lost, cap_extra, n_cap_sent, cap_unwritten);
	printf("SMS (level I through Kannel; %zu subscribers, one in each of the first %d townships "
	       "of every prefecture): per subscriber, parts at the handset against the parts of its "
	       "deliveries wf-dispatch recorded delivered: "
	       "%zu exactly, %zu fewer, %zu more (%zu had deliveries)\n",
	       n_subs, SUBS_PER_PREF, subs_exact, subs_fewer, subs_more, subs_any);
	printf("SMS totals: %zu recipients of "
	       "deliveries planned by wf-dispatch (%llu delivered, %llu failed, %llu expired before "
	       "sending: its warning had expired (the scenario is hours to days old), %llu not final), %ld parts delivered by its state, %ld "
	       "parts at the handsets; lost %ld parts, duplicated %ld "
	       "(at most %d per recipient per wf-dispatch kill: %ld kills), to nobody's number %ld\n",
	       t_sms.n, (unsigned long long)t_sms.states[WF_SMS_DELIVERED],
	       (unsigned long long)t_sms.states[WF_SMS_FAILED],
	       (unsigned long long)t_sms.states[WF_SMS_EXPIRED],
	       (unsigned long long)(t_sms.n - sms_final), sms_planned, n_handset, sms_lost, sms_dup,
	       SMS_INFLIGHT_MAX, dsp_kills, sms_stray);
	for (size_t si = 0, shown = 0; si < n_subs && shown < 10; si++)
		if (got_parts[si] != t_sms.planned[si]) {
			printf("  sms %s (%s): %ld deliveries, %ld parts delivered, %ld received%s\n",
			       subs[si], subs_at[si], t_sms.deliveries[si], t_sms.planned[si],
			       got_parts[si], got_parts[si] < t_sms.planned[si] ? " LOST" : " (duplicates)");
			shown++;
		}
	printf("ready: worst process restart-to-ready %.0f ms (%s), %d restarts never ready before "
	       "the next kill; broker: worst restart-to-accept %.0f ms, worst restart-to-every-"
	       "service-ONLINE %.0f ms (%d restarts killed again before that)\n",
	       st.ready_worst_ms, st.ready_worst_who ? st.ready_worst_who : "-", st.ready_missing,
	       st.broker_worst_accept_ms, st.broker_worst_services_ms, st.broker_not_back);

	int fail = 0;
#define TARGET(cond, what)                                                                      \
	do {                                                                                    \
		if (!(cond)) {                                                                  \
			printf("MISSED: %s\n", what);                                           \
			fail = 1;                                                               \
		}                                                                               \
	} while (0)
	TARGET(!ch.timed_out, "finished within --time-limit");
	TARGET(t_sms.states[WF_SMS_DELIVERED] > 0 && sms_lost == 0 && sms_stray == 0 &&
		       t_sms.unknown == 0 && t_sms.states[WF_SMS_FAILED] == 0 && sms_final == t_sms.n &&
		       sms_dup <= (long)SMS_INFLIGHT_MAX * (dsp_kills + 1),
	       "every SMS final, none failed, each delivered one at its handset, duplicates within "
	       "the kill bound");
	TARGET(ev_lost == 0 && left == 0 && rejected == 0, "0 events lost");
	TARGET(w_lost == 0 && w_diff == 0 && w_extra == 0, "0 warning versions lost or different");
	TARGET(w_dup == 0, "0 warning versions duplicated");
	TARGET(dstore_dangling == 0, "wf-dispatch's version index and log agree");
	TARGET(n_lost == 0 && n_dup == 0 && n_extra == 0, "0 duty notices lost or duplicated");
	TARGET(n_rel > 0 && left_pending == 0 && r_lost == 0 && r_extra == 0,
	       "every approval applied, 0 RELEASED notices lost or unexpected");
	TARGET(cap_files > 0 && cap_queued == 0 && cap_lost == 0 && cap_extra == 0 && pc.bad == 0 &&
		       n_cap_sent > 0 && cap_unwritten == 0,
	       "every CAP file written and POSTed to the broadcast platform");
	TARGET(st.ready_worst_ms <= READY_TARGET_MS && st.broker_worst_accept_ms <= READY_TARGET_MS &&
		       st.broker_worst_services_ms <= READY_TARGET_MS,
	       "every process ready within 5 s of its restart");
	TARGET(!faults || st.broker_kills >= bkills, "the requested broker kills happened");
	TARGET(bad_exit == 0, "every service exits 0 at SIGTERM");
	printf("%s\n", fail ? "chaos: FAILED" : "chaos: all targets met");

	wf_bus_free(obs.bus);
	wf_node_stop(con.node);
	wf_node_free(con.node);
	broker = wf_test_broker_free(broker);
	if (keep || fail)
		printf("logs and state: %s\n", dir);
	else
		wf_test_rmtree(dir);
	fflush(stdout);

	/* everything this run allocated (a clean LeakSanitizer report) */
	for (int a = 0; a < N_AGENCIES; a++) {
		for (int k = 0; k < slices; k++) {
			free(files[a][k]);
			free(hidden[a][k]);
			free(names[a][k]);
		}
		free(files[a]);
		free(hidden[a]);
		free(names[a]);
		free(x.cum[a]);
		free(sc.conf_extra[a].p);
		free((char *)procs[a].name);
	}
	for (int p = 0; p < N_PROCS; p++) {
		free(procs[p].exe);
		free(procs[p].conf);
		free(procs[p].log);
	}
	for (size_t k = 0; k < x.n_w; k++) {
		free(x.w[k].key);
		free(x.w[k].content);
	}
	free(x.w);
	for (size_t k = 0; k < x.n_notices; k++)
		free(x.notices[k]);
	free(x.notices);
	for (size_t k = 0; k < ds.n; k++) {
		free(ds.w[k].key);
		free(ds.w[k].content);
	}
	free(ds.w);
	for (size_t k = 0; k < obs.n_w; k++) {
		free(obs.w[k].key);
		free(obs.w[k].content);
	}
	free(obs.w);
	free(widx);
	for (size_t k = 0; k < con.count; k++)
		free(con.n[k].key);
	free(con.n);
	free(con.idx);
	free(con.acks);
	free(con.apprs);
	wf_test_sms_free(handset, n_handset > 0 ? (size_t)n_handset : 0);
	free(got_parts);
	free(t_sms.planned);
	free(t_sms.deliveries);
	free(subs);
	free(subs_at);
	kannel = wf_test_kannel_free(kannel);
	for (size_t k = 0; k < recs.n; k++) {
		free(recs.r[k].id);
		free(recs.r[k].p);
	}
	free(recs.r);
	free(recs.idx);
	for (size_t k = 0; k < n_rel; k++)
		free(rel[k]);
	free(rel);
	for (size_t k = 0; k < n_cap_sent; k++)
		free(cap_sent[k]);
	free(cap_sent);
	for (size_t k = 0; k < n_fid; k++)
		free(files_ids[k]);
	free(files_ids);
	for (size_t k = 0; k < n_posted; k++)
		free(posted[k]);
	free(posted);
	free(capdir);
	free(og);
	for (size_t p = 0; p < n_prefs; p++)
		free(twn[p]);
	free(gen);
	free(dir);
	return fail;
}
