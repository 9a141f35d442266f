/* Integration: forged and replayed events against a running wf-fusion
 * (the process, [fusion] clock = system, ordered, with the region table)
 * through a real mosquitto (no ACL: the publisher plays a compromised
 * adapter that may write on any event topic), and forged files at an
 * adapter's spool (wf-police, the process).
 *
 * Run A: a genuine stream only (two producers, met and water, 20 counties
 * of Zhengzhou and Kaifeng: alerts, a rainstorm + river chain to flood
 * warnings, updates, cancels). Run B, on a fresh instance: the same genuine
 * stream with 10,400 forged or replayed events interleaved between its
 * phases: wrong agency for the topic, wrong region for the topic, replayed
 * (producer, seq) (exact and tampered), replayed (agency, id) under a new
 * producer (exact and tampered), bad enums, out-of-range points, numbers
 * and validity, oversized strings and payloads, malformed protobuf, bad
 * region syntax, unknown regions, timestamps far in the future or past, bad
 * ids, references, UTF-8 and missing fields, and bundles (wf/bundle.h) the
 * receiver must refuse whole: an entry of another county or agency beside
 * the genuine-looking one, a bundle inside, a cut one. Run C, apart so that it cannot
 * hide run B's result: 400 exercise and test UPDATEs/CANCELs naming actual
 * events.
 *
 * Every forged event must be accounted for with a specific reason: a
 * DeadLetter on wf/v1/deadletter/<fusion> whose SHA-256 digest is that
 * event's and whose reason is the one expected for its kind, or, for
 * replays that are acknowledged without effect, fusion's own counters at
 * stop (node: "N duplicate" = replayed (producer, seq); engine, the
 * "ingested:" line: "N duplicate" = replayed (agency, id)). And nothing may
 * change: the run's warning versions are run A's (compared without ids,
 * times, sequence numbers and a cancel's expiry, which differ between runs
 * on the system clock), and the engine applied exactly the genuine events.
 * The counts by kind and by reason are printed.
 *
 * Spool: 15 forged police files (unknown region, bad region syntax, time a
 * day ahead or a month back, unknown category and status, values out of
 * range, oversized text, bad UTF-8, binary, missing fields, bad id, wrong
 * header) are each rejected whole with a reason file and publish nothing;
 * the genuine file again is a duplicate to the adapter (same SHA-256), and
 * its rows reordered are re-sent but are engine duplicates: no new warning
 * version, no dead letter. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <openssl/evp.h>

#include "broker.h"
#include "bundle.pb-c.h"
#include "proc.h"
#include "wf/bus.h"
#include "wf/clock.h"
#include "wf/codec.h"
#include "wf/pbjson.h"
#include "wf/region.h"
#include "wf/topic.h"

#define N_COUNTIES 20
#define N_FORGED 10400
#define N_MIXING 400
#define CHUNK 400
#define MAX_WARNINGS 4096
#define MAX_SEQ 2048
#define MAX_PRODUCERS 24

/* expected outcomes besides a dead-letter reason */
enum { EXP_DUP_SEQ = 100, EXP_DUP_ID = 101 };

static struct wf_test_broker *broker;
static struct ev_loop *loop;
static char *tmp;
static char counties[N_COUNTIES][13];
static struct wf_region_table *regions;
static int64_t t0; /* the genuine events' time, set once */

/* ---- helpers ---- */

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	ck_assert_int_ge(fputs(text, f), 0);
	ck_assert_int_eq(fclose(f), 0);
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	rewind(f);
	char *buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	size_t got = fread(buf, 1, (size_t)n, f);
	buf[got] = '\0';
	fclose(f);
	return buf;
}

static void sha256(const void *p, size_t len, uint8_t out[32])
{
	unsigned int n = 0;
	ck_assert_int_eq(EVP_Digest(len ? p : "", len, out, &n, EVP_sha256(), NULL), 1);
	ck_assert_uint_eq(n, 32);
}

static void load_counties(void)
{
	char *csv = read_all(getenv("WF_REGIONS"));
	int n = 0;
	ck_assert_ptr_nonnull(csv);
	for (char *save = NULL, *l = strtok_r(csv, "\n", &save); l && n < N_COUNTIES;
	     l = strtok_r(NULL, "\n", &save))
		if (strncmp(l, "410", 3) == 0 && strstr(l, ",county") && l[12] == ',')
			snprintf(counties[n++], 13, "%.12s", l);
	free(csv);
	ck_assert_int_eq(n, N_COUNTIES);
	struct wf_region_error err;
	ck_assert_int_eq(wf_region_table_load(getenv("WF_REGIONS"), &regions, &err), 0);
}

/* ---- the observer: dead letters, warnings, acks ---- */

struct forged {
	uint8_t digest[32];
	int want;   /* WF_REASON_* or EXP_* */
	int got;    /* reason of its dead letter, -1: none yet */
	int kind;   /* index into kind_names */
};

static bool ackable(int kind);

struct warn {
	char *key;     /* status|hazard|region|version */
	char *content; /* JSON without id, references, producer, seq, epoch, sent_ms */
	uint64_t seq;
};

struct observer {
	struct wf_bus *bus;
	const char *fusion_id;
	char dl_topic[128];
	/* dead letters */
	long n_dl, dl_unmatched, dl_by_reason[WF_REASON_MAX];
	long dl_unackable; /* dead letters of forged events fusion cannot ack */
	long events;       /* on wf/v1/event/# */
	struct forged *forged;
	long n_forged, cursor;
	/* warnings by fusion_id */
	struct warn warnings[MAX_WARNINGS];
	long n_warnings, warning_dups;
	/* fusion's acks: per producer, which seqs */
	struct acked {
		char producer[32];
		bool seq[MAX_SEQ + 1];
	} acks[MAX_PRODUCERS];
	int n_acks;
	bool online;
};

static char *warning_content(const Wf__V1__Warning *w)
{
	Wf__V1__Warning c = *w;
	char desc[1024];
	const char *at = w->description ? strstr(w->description, w->id) : NULL;
	if (at && *w->id) { /* a cancel names the warning it ends */
		snprintf(desc, sizeof desc, "%.*s<id>%s", (int)(at - w->description), w->description,
			 at + strlen(w->id));
		c.description = desc;
	}
	c.id = (char *)"";
	c.n_references = 0;
	c.references = NULL;
	c.producer = (char *)"";
	c.seq = 0;
	c.epoch = 0;
	c.sent_ms = 0;
	if (c.msg_type == WF__V1__MSG_TYPE__MSG_TYPE_CANCEL)
		c.expires_ms = 0; /* a cancel expires when it is made: the run's clock */
	return wf_pbjson_print(&c.base);
}

static void on_message(void *ud, const char *topic, const void *payload, size_t len, bool retained)
{
	struct observer *o = ud;
	(void)retained;
	if (strcmp(topic, o->dl_topic) == 0) {
		Wf__V1__DeadLetter *dl = wf__v1__dead_letter__unpack(NULL, len, payload);
		ck_assert_ptr_nonnull(dl);
		o->n_dl++;
		int reason = (int)dl->reason;
		if (reason >= 0 && reason < (int)WF_REASON_MAX)
			o->dl_by_reason[reason]++;
		struct forged key, *f = NULL;
		memset(&key, 0, sizeof key);
		if (dl->digest.len == 32) {
			memcpy(key.digest, dl->digest.data, 32);
			/* they come back nearly in the order sent: search from the last */
			for (long k = 0; k < o->n_forged && !f; k++) {
				long i = (o->cursor + k) % o->n_forged;
				if (memcmp(o->forged[i].digest, key.digest, 32) == 0 &&
				    o->forged[i].got < 0) {
					f = &o->forged[i];
					o->cursor = i;
				}
			}
		}
		if (f) {
			f->got = reason;
			if (!ackable(f->kind))
				o->dl_unackable++;
		} else {
			o->dl_unmatched++;
		}
		wf__v1__dead_letter__free_unpacked(dl, NULL);
		return;
	}
	if (strncmp(topic, "wf/v1/event/", 12) == 0) {
		o->events++;
		return;
	}
	if (strncmp(topic, "wf/v1/ack/", 10) == 0) {
		Wf__V1__Ack *a = wf__v1__ack__unpack(NULL, len, payload);
		ck_assert_ptr_nonnull(a);
		if (strcmp(a->consumer, o->fusion_id) == 0) {
			struct acked *x = NULL;
			for (int i = 0; i < o->n_acks && !x; i++)
				if (strcmp(o->acks[i].producer, a->producer) == 0)
					x = &o->acks[i];
			if (!x) {
				ck_assert_int_lt(o->n_acks, MAX_PRODUCERS);
				x = &o->acks[o->n_acks++];
				snprintf(x->producer, sizeof x->producer, "%s", a->producer);
			}
			for (size_t i = 0; i < a->n_ranges; i++)
				for (uint64_t s = a->ranges[i]->first; s <= a->ranges[i]->last && s <= MAX_SEQ;
				     s++)
					x->seq[s] = true;
		}
		wf__v1__ack__free_unpacked(a, NULL);
		return;
	}
	if (strncmp(topic, "wf/v1/state/", 12) == 0) {
		Wf__V1__ServiceState *st = wf__v1__service_state__unpack(NULL, len, payload);
		ck_assert_ptr_nonnull(st);
		if (strcmp(st->service, o->fusion_id) == 0)
			o->online = st->status == WF__V1__SERVICE_STATUS__SERVICE_ONLINE;
		wf__v1__service_state__free_unpacked(st, NULL);
		return;
	}
	if (strncmp(topic, "wf/v1/warning/", 14) == 0) {
		Wf__V1__Warning *w = wf__v1__warning__unpack(NULL, len, payload);
		ck_assert_ptr_nonnull(w);
		if (strcmp(w->producer, o->fusion_id) == 0) {
			bool dup = false;
			for (long i = 0; i < o->n_warnings && !dup; i++)
				dup = o->warnings[i].seq == w->seq;
			if (dup) {
				o->warning_dups++; /* a resend: nobody acks in this test */
			} else {
				ck_assert_int_lt(o->n_warnings, MAX_WARNINGS);
				struct warn *x = &o->warnings[o->n_warnings++];
				ck_assert_int_ge(asprintf(&x->key, "%d|%d|%s|%u", w->status, w->hazard,
							  w->n_regions ? w->regions[0] : "",
							  w->version),
						 0);
				x->content = warning_content(w);
				x->seq = w->seq;
			}
		}
		wf__v1__warning__free_unpacked(w, NULL);
	}
}

static bool bus_ready(void *ud)
{
	return wf_bus_subscribed(ud);
}

static void observer_start(struct observer *o, const char *fusion_id)
{
	struct wf_bus_options bo;
	struct wf_bus_callbacks cb = { .on_message = on_message };
	char cid[64];

	memset(o, 0, sizeof *o);
	o->fusion_id = fusion_id;
	ck_assert_int_eq(wf_topic_deadletter(o->dl_topic, sizeof o->dl_topic, fusion_id), 0);
	wf_bus_options_init(&bo);
	bo.port = wf_test_broker_port(broker);
	snprintf(cid, sizeof cid, "forge-obs-%s", fusion_id);
	bo.client_id = cid;
	bo.clean_start = true;
	bo.session_expiry_s = 0;
	bo.max_queued = 50000;
	ck_assert_int_eq(wf_bus_new(loop, &bo, &cb, o, &o->bus), 0);
	ck_assert_int_eq(wf_bus_subscribe(o->bus, o->dl_topic, 1), 0);
	ck_assert_int_eq(wf_bus_subscribe(o->bus, "wf/v1/warning/#", 1), 0);
	ck_assert_int_eq(wf_bus_subscribe(o->bus, "wf/v1/ack/+", 1), 0);
	ck_assert_int_eq(wf_bus_subscribe(o->bus, "wf/v1/event/#", 1), 0);
	char st[128];
	ck_assert_int_eq(wf_topic_state(st, sizeof st, fusion_id), 0);
	ck_assert_int_eq(wf_bus_subscribe(o->bus, st, 1), 0);
	ck_assert_int_eq(wf_bus_start(o->bus), 0);
	ck_assert(wf_test_run_until(loop, bus_ready, o->bus, 10000));
	o->forged = calloc(N_FORGED + 16, sizeof *o->forged);
	ck_assert_ptr_nonnull(o->forged);
}

static void observer_free(struct observer *o)
{
	wf_bus_free(o->bus);
	for (long i = 0; i < o->n_warnings; i++) {
		free(o->warnings[i].key);
		free(o->warnings[i].content);
	}
	free(o->forged);
}

/* ---- the publisher (a compromised adapter) ---- */

struct pub {
	struct wf_bus *bus;
	int64_t now;
	/* genuine: raw payloads of what was sent, for the replays */
	uint8_t *raw[256];
	size_t raw_len[256];
	char *raw_topic[256];
	char *raw_id[256];
	int raw_agency[256];
	int n_raw;
	uint64_t met_seq, water_seq;
	uint64_t evil_seq[32];
};

static void pub_start(struct pub *p, const char *cid)
{
	struct wf_bus_options bo;
	struct wf_bus_callbacks cb = { 0 };
	memset(p, 0, sizeof *p);
	wf_bus_options_init(&bo);
	bo.port = wf_test_broker_port(broker);
	bo.client_id = cid;
	bo.clean_start = true;
	bo.session_expiry_s = 0;
	bo.max_queued = 50000;
	ck_assert_int_eq(wf_bus_new(loop, &bo, &cb, p, &p->bus), 0);
	ck_assert_int_eq(wf_bus_start(p->bus), 0);
	ck_assert(wf_test_run_until(loop, (bool (*)(void *))wf_bus_connected, p->bus, 10000));
	p->now = t0; /* the same event times in every run: comparable warnings */
}

static void pub_free(struct pub *p)
{
	wf_bus_free(p->bus);
	for (int i = 0; i < p->n_raw; i++) {
		free(p->raw[i]);
		free(p->raw_topic[i]);
		free(p->raw_id[i]);
	}
}

static void publish(struct pub *p, const char *topic, const void *buf, size_t len)
{
	int r;
	for (int tries = 0; (r = wf_bus_publish(p->bus, topic, buf, len, 1, false, NULL)) == -ENOBUFS &&
			    tries < 1000;
	     tries++)
		wf_test_run_for(loop, 5);
	ck_assert_int_eq(r, 0);
}

static size_t pack(const Wf__V1__Event *ev, uint8_t **buf)
{
	size_t n = wf__v1__event__get_packed_size(ev);
	*buf = malloc(n + 64);
	ck_assert_ptr_nonnull(*buf);
	ck_assert_uint_eq(wf__v1__event__pack(ev, *buf), n);
	return n;
}

static char *event_topic(int agency, const char *region)
{
	char t[WF_TOPIC_MAX];
	ck_assert_int_eq(wf_topic_event(t, sizeof t, (Wf__V1__Agency)agency, region), 0);
	return strdup(t);
}

/* a valid event */
static void base_event(Wf__V1__Event *ev, int64_t now, const char *id, int agency, int hazard,
		       const char *region, int level)
{
	wf__v1__event__init(ev);
	ev->id = (char *)id;
	ev->agency = (Wf__V1__Agency)agency;
	ev->hazard = (Wf__V1__Hazard)hazard;
	ev->region = (char *)region;
	ev->level = (Wf__V1__Level)level;
	ev->observed_ms = now;
	ev->issued_ms = now;
	ev->expires_ms = now + 2 * 3600 * 1000LL;
	ev->status = WF__V1__STATUS__STATUS_ACTUAL;
	ev->msg_type = WF__V1__MSG_TYPE__MSG_TYPE_ALERT;
	ev->certainty = WF__V1__CERTAINTY__CERTAINTY_LIKELY;
	ev->text = (char *)"测试";
}

/* ---- the genuine stream, in phases ---- */

static void genuine_send(struct pub *p, Wf__V1__Event *ev)
{
	bool met = ev->agency == WF__V1__AGENCY__AGENCY_MET;
	ev->producer = (char *)(met ? "wf-met-g" : "wf-water-g");
	ev->seq = met ? ++p->met_seq : ++p->water_seq;
	uint8_t *buf;
	size_t len = pack(ev, &buf);
	char *topic = event_topic(ev->agency, ev->region);
	publish(p, topic, buf, len);
	ck_assert_int_lt(p->n_raw, 256);
	p->raw[p->n_raw] = buf;
	p->raw_len[p->n_raw] = len;
	p->raw_topic[p->n_raw] = topic;
	p->raw_id[p->n_raw] = strdup(ev->id);
	p->raw_agency[p->n_raw] = ev->agency;
	p->n_raw++;
}

/* 0: met rainstorm ALERTs (IV) in every county; 1: water flood ALERTs (III)
 * in counties 0..14 (with the rainstorm: the flood chain); 2: met UPDATEs
 * to III; 3: met CANCELs in counties 15..19 (no chain there) */
static void genuine_phase(struct pub *p, int phase)
{
	char id[64], ref[64], *refs[1] = { ref };
	for (int c = 0; c < N_COUNTIES; c++) {
		Wf__V1__Event ev;
		if (phase == 0) {
			snprintf(id, sizeof id, "g-met-%d-1", c);
			base_event(&ev, p->now, id, WF__V1__AGENCY__AGENCY_MET,
				   WF__V1__HAZARD__HAZARD_RAINSTORM, counties[c], WF__V1__LEVEL__LEVEL_IV);
		} else if (phase == 1) {
			if (c >= 15)
				continue;
			snprintf(id, sizeof id, "g-wat-%d-1", c);
			base_event(&ev, p->now, id, WF__V1__AGENCY__AGENCY_WATER,
				   WF__V1__HAZARD__HAZARD_FLOOD, counties[c], WF__V1__LEVEL__LEVEL_III);
		} else if (phase == 2) {
			snprintf(id, sizeof id, "g-met-%d-2", c);
			snprintf(ref, sizeof ref, "g-met-%d-1", c);
			base_event(&ev, p->now, id, WF__V1__AGENCY__AGENCY_MET,
				   WF__V1__HAZARD__HAZARD_RAINSTORM, counties[c], WF__V1__LEVEL__LEVEL_III);
			ev.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_UPDATE;
			ev.references = refs;
			ev.n_references = 1;
		} else {
			if (c < 15)
				continue;
			snprintf(id, sizeof id, "g-met-%d-3", c);
			snprintf(ref, sizeof ref, "g-met-%d-2", c);
			base_event(&ev, p->now, id, WF__V1__AGENCY__AGENCY_MET,
				   WF__V1__HAZARD__HAZARD_RAINSTORM, counties[c], WF__V1__LEVEL__LEVEL_NONE);
			ev.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_CANCEL;
			ev.references = refs;
			ev.n_references = 1;
		}
		genuine_send(p, &ev);
	}
}

/* ---- the forgeries ---- */

enum kind {
	K_AGENCY_MISMATCH, K_BAD_TOPIC, K_DUP_SEQ, K_DUP_SEQ_TAMPERED, K_DUP_ID, K_DUP_ID_TAMPERED,
	K_BAD_ENUM, K_OUT_OF_RANGE, K_OVERSIZED, K_MALFORMED, K_BAD_REGION, K_UNKNOWN_REGION,
	K_TIME, K_BAD_FIELDS, K_BUNDLE, K_MIXING, K_MAX
};
static const char *const kind_names[K_MAX] = {
	"wrong agency for the topic", "wrong region for the topic", "replayed (producer, seq)",
	"replayed (producer, seq), tampered", "replayed (agency, id), new producer",
	"replayed (agency, id), tampered", "bad enum", "out-of-range value", "oversized",
	"malformed protobuf", "bad region syntax", "unknown region", "timestamp far off",
	"bad id / reference / UTF-8 / missing field",
	"bundle: foreign entry, nested, cut",
	"exercise/test naming an actual event",
};

/* the forged events that decode and validate as far as (producer, seq) and
 * are rejected later (by topic, as replays, by the engine) are acknowledged
 * after their dead letter is published; the codec's rejections have no
 * trusted (producer, seq) and are not */
static bool ackable(int kind)
{
	return kind == K_AGENCY_MISMATCH || kind == K_BAD_TOPIC || kind == K_DUP_ID ||
	       kind == K_DUP_ID_TAMPERED || kind == K_MIXING;
}

struct forge_ctx {
	struct pub *p;
	struct observer *o;
	int first_kind, n_kinds; /* the kinds this run cycles through */
	long made;
	long per_kind[K_MAX];
	long want_dl;       /* dead letters expected so far */
	long want_dl_unackable;
	long want_dup_seq, want_dup_id;
};

static void record(struct forge_ctx *fc, int kind, int want, const void *buf, size_t len)
{
	struct forged *f = &fc->o->forged[fc->o->n_forged++];
	sha256(buf, len, f->digest);
	f->want = want;
	f->got = -1;
	f->kind = kind;
	fc->per_kind[kind]++;
	fc->made++;
	if (want == EXP_DUP_SEQ)
		fc->want_dup_seq++;
	else if (want == EXP_DUP_ID)
		fc->want_dup_id++;
	else
		fc->want_dl++;
	if (want < EXP_DUP_SEQ && !ackable(kind))
		fc->want_dl_unackable++;
}

static void send_forged(struct forge_ctx *fc, int kind, int want, const char *topic,
			const uint8_t *buf, size_t len)
{
	record(fc, kind, want, buf, len);
	publish(fc->p, topic, buf, len);
}

/* producer and seq of a forged event that passes the producer check: each
 * kind its own producer, contiguous seqs (fusion is ordered) */
static void evil(struct forge_ctx *fc, Wf__V1__Event *ev, int kind, char *name, size_t size)
{
	snprintf(name, size, "wf-evil-%d", kind);
	ev->producer = name;
	ev->seq = ++fc->p->evil_seq[kind];
}

static void forge_one(struct forge_ctx *fc, long i)
{
	struct pub *p = fc->p;
	int kind = fc->first_kind + (int)(i % fc->n_kinds);
	int v = (int)(i / fc->n_kinds); /* variant */
	const char *county = counties[v % N_COUNTIES];
	char id[160], name[32], ref[64], *refs[1] = { ref }, *topic = NULL;
	uint8_t *buf = NULL;
	size_t len;
	Wf__V1__Event ev;
	Wf__V1__Point pt = WF__V1__POINT__INIT;
	Wf__V1__Measurement me = WF__V1__MEASUREMENT__INIT;
	static char big[80 * 1024];
	static char *many_refs[200];

	if (!big[0]) {
		memset(big, 'x', sizeof big - 1);
		for (int k = 0; k < 200; k++) {
			static char rb[200][16];
			snprintf(rb[k], sizeof rb[k], "r-%d", k);
			many_refs[k] = rb[k];
		}
	}
	snprintf(id, sizeof id, "f-%ld", i);
	base_event(&ev, p->now, id, WF__V1__AGENCY__AGENCY_MET, WF__V1__HAZARD__HAZARD_RAINSTORM,
		   county, WF__V1__LEVEL__LEVEL_I);
	evil(fc, &ev, kind, name, sizeof name);
	topic = event_topic(WF__V1__AGENCY__AGENCY_MET, county);
	int want = 0;

	switch (kind) {
	case K_AGENCY_MISMATCH: { /* the agency field disagrees with the topic */
		static const int ag[] = { WF__V1__AGENCY__AGENCY_WATER, WF__V1__AGENCY__AGENCY_GEO,
					  WF__V1__AGENCY__AGENCY_FIRE, WF__V1__AGENCY__AGENCY_POLICE };
		ev.agency = (Wf__V1__Agency)ag[v % 4];
		want = WF_REASON_AGENCY_MISMATCH;
		break;
	}
	case K_BAD_TOPIC: /* another county's topic */
		free(topic);
		topic = event_topic(WF__V1__AGENCY__AGENCY_MET, counties[(v + 1) % N_COUNTIES]);
		want = WF_REASON_BAD_TOPIC;
		break;
	case K_DUP_SEQ:
	case K_DUP_SEQ_TAMPERED: { /* a genuine (producer, seq) already applied */
		int g = v % p->n_raw;
		--p->evil_seq[kind]; /* not used */
		if (kind == K_DUP_SEQ) {
			send_forged(fc, kind, EXP_DUP_SEQ, p->raw_topic[g], p->raw[g], p->raw_len[g]);
			free(topic);
			return;
		}
		Wf__V1__Event *orig = wf__v1__event__unpack(NULL, p->raw_len[g], p->raw[g]);
		ck_assert_ptr_nonnull(orig);
		char *otext = orig->text;
		orig->level = WF__V1__LEVEL__LEVEL_I;
		orig->text = (char *)"篡改";
		orig->expires_ms = p->now + 20 * 3600 * 1000LL + v;
		len = pack(orig, &buf);
		orig->text = otext; /* freed with the message */
		wf__v1__event__free_unpacked(orig, NULL);
		send_forged(fc, kind, EXP_DUP_SEQ, p->raw_topic[g], buf, len);
		free(buf);
		free(topic);
		return;
	}
	case K_DUP_ID:
	case K_DUP_ID_TAMPERED: { /* a genuine (agency, id) under a new producer */
		int g = v % p->n_raw;
		Wf__V1__Event *orig = wf__v1__event__unpack(NULL, p->raw_len[g], p->raw[g]);
		ck_assert_ptr_nonnull(orig);
		char *oprod = orig->producer;
		uint64_t oseq = orig->seq;
		orig->producer = name;
		orig->seq = ev.seq;
		if (kind == K_DUP_ID_TAMPERED) {
			orig->level = WF__V1__LEVEL__LEVEL_I;
			orig->expires_ms += 1000 + v;
		}
		len = pack(orig, &buf);
		orig->producer = oprod;
		orig->seq = oseq;
		wf__v1__event__free_unpacked(orig, NULL);
		send_forged(fc, kind, EXP_DUP_ID, p->raw_topic[g], buf, len);
		free(buf);
		free(topic);
		return;
	}
	case K_BAD_ENUM:
		switch (v % 6) {
		case 0: ev.hazard = (Wf__V1__Hazard)999; break;
		case 1: ev.level = (Wf__V1__Level)9; break;
		case 2: ev.status = (Wf__V1__Status)7; break;
		case 3: ev.msg_type = (Wf__V1__MsgType)8; break;
		case 4: ev.certainty = (Wf__V1__Certainty)99; break;
		default: ev.agency = (Wf__V1__Agency)77; break;
		}
		want = WF_REASON_BAD_ENUM;
		break;
	case K_OUT_OF_RANGE:
		switch (v % 6) {
		case 0: pt.lat = 91.5; pt.lon = 113.6; ev.point = &pt; want = WF_REASON_BAD_POINT; break;
		case 1: pt.lat = 34.7; pt.lon = -200; ev.point = &pt; want = WF_REASON_BAD_POINT; break;
		case 2: pt.lat = NAN; pt.lon = 113.6; ev.point = &pt; want = WF_REASON_BAD_POINT; break;
		case 3: me.value = INFINITY; me.threshold = 50; ev.measurement = &me;
			want = WF_REASON_BAD_NUMBER; break;
		case 4: ev.expires_ms = ev.observed_ms; want = WF_REASON_BAD_TIME_ORDER; break;
		default: ev.expires_ms = ev.observed_ms + 40LL * 86400000; want = WF_REASON_BAD_TIME_ORDER;
			break;
		}
		break;
	case K_OVERSIZED:
		switch (v % 5) {
		case 0: big[5000] = '\0'; ev.text = big; want = WF_REASON_FIELD_TOO_LONG; break;
		case 1: big[300] = '\0'; ev.station = big; want = WF_REASON_FIELD_TOO_LONG; break;
		case 2: memset(id, 'i', 150); id[150] = '\0'; want = WF_REASON_BAD_ID; break;
		case 3: ev.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_UPDATE; ev.references = many_refs;
			ev.n_references = 200; want = WF_REASON_FIELD_TOO_LONG; break;
		default: /* over max_payload: refused before decoding, no (producer, seq) */
			big[sizeof big - 1] = '\0'; ev.text = big; want = WF_REASON_TOO_LARGE;
			ev.seq = 0; --p->evil_seq[kind]; break;
		}
		len = pack(&ev, &buf);
		memset(big, 'x', sizeof big - 1);
		send_forged(fc, kind, want, topic, buf, len);
		free(buf);
		free(topic);
		return;
	case K_MALFORMED: { /* no (producer, seq) a receiver could trust */
		ev.seq = 0;
		--p->evil_seq[kind];
		len = pack(&ev, &buf);
		switch (v % 5) {
		case 0: /* a length-delimited field running past the end */
			buf[len++] = 0x52; buf[len++] = 0x7f; buf[len++] = 'a'; break;
		case 1: /* wire type 7 */
			buf[len++] = 0x0f; break;
		case 2: /* the overlong tag of field number 0 */
			buf[len++] = 0x80; buf[len++] = 0x00; buf[len++] = 0x05; break;
		case 3: /* cut inside the last field */
			len -= 2; break;
		default: /* not protobuf at all */
			memset(buf, 0xff, 8); len = 8; break;
		}
		/* unique bytes per event: the event id differs, except case 4 */
		if (v % 5 == 4) {
			buf[0] = 0xff; buf[1] = (uint8_t)(v >> 8); buf[2] = (uint8_t)v; buf[3] = 0xff;
		}
		send_forged(fc, kind, WF_REASON_MALFORMED, topic, buf, len);
		free(buf);
		free(topic);
		return;
	}
	case K_BAD_REGION: {
		static const char *const bad[] = { "41010", "4101020000001", "41010a000000",
						   "41-102000000", "４１０１０２" };
		ev.region = (char *)bad[v % 5];
		want = WF_REASON_BAD_REGION;
		break;
	}
	case K_UNKNOWN_REGION: {
		static const char *const unk[] = { "419999000000", "410199000000", "990000000000",
						   "410102999999" };
		const char *r = unk[v % 4];
		ck_assert_ptr_null(wf_region_find(regions, r));
		ev.region = (char *)r;
		free(topic);
		topic = event_topic(WF__V1__AGENCY__AGENCY_MET, r);
		want = WF_REASON_UNKNOWN_REGION;
		break;
	}
	case K_TIME:
		switch (v % 5) {
		case 0: ev.observed_ms = p->now + 3600000; ev.issued_ms = ev.observed_ms;
			ev.expires_ms = ev.observed_ms + 3600000; break;
		case 1: ev.observed_ms = p->now + 86400000LL * 365; ev.issued_ms = 0;
			ev.expires_ms = ev.observed_ms + 3600000; break;
		case 2: ev.observed_ms = p->now - 8 * 86400000LL; ev.issued_ms = 0;
			ev.expires_ms = p->now + 3600000; break;
		case 3: ev.observed_ms = 1; ev.issued_ms = 0; break;
		default: ev.issued_ms = p->now + 86400000LL; break;
		}
		want = WF_REASON_TIME_SKEW;
		break;
	case K_BAD_FIELDS:
		switch (v % 8) {
		case 0: ev.id = (char *)""; want = WF_REASON_MISSING_FIELD; break;
		case 1: snprintf(id, sizeof id, "f %ld!", i); want = WF_REASON_BAD_ID; break;
		case 2: ev.seq = 0; want = WF_REASON_MISSING_FIELD; --p->evil_seq[kind]; break;
		case 3: snprintf(ref, sizeof ref, "g-met-0-1"); ev.references = refs;
			ev.n_references = 1; want = WF_REASON_BAD_REFERENCE; break; /* ALERT with refs */
		case 4: ev.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_CANCEL; want = WF_REASON_BAD_REFERENCE;
			break; /* CANCEL naming nothing */
		case 5: ev.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_UPDATE; snprintf(ref, sizeof ref, "f-%ld", i);
			ev.references = refs; ev.n_references = 1; want = WF_REASON_BAD_REFERENCE; break;
		case 6: ev.text = (char *)"bad \xff\xfe utf-8"; want = WF_REASON_BAD_UTF8; break;
		default: ev.text = (char *)"ctl \x01 char"; want = WF_REASON_BAD_UTF8; break;
		}
		break;
	case K_BUNDLE: { /* a valid event in a bundle the receiver must refuse whole */
		len = pack(&ev, &buf);
		char *other = v % 4 == 0 ? event_topic(WF__V1__AGENCY__AGENCY_MET,
							counties[(v + 1) % N_COUNTIES])
			    : v % 4 == 1 ? event_topic(WF__V1__AGENCY__AGENCY_WATER, county)
					 : strdup(topic);
		Wf__V1__BundleEntry e0 = WF__V1__BUNDLE_ENTRY__INIT, e1 = WF__V1__BUNDLE_ENTRY__INIT;
		Wf__V1__BundleEntry *ep[2] = { &e0, &e1 };
		Wf__V1__Bundle b = WF__V1__BUNDLE__INIT;
		uint8_t inner[2 + 1024];
		e0.topic = topic;
		e0.payload.data = buf;
		e0.payload.len = len;
		/* 0: the second entry is another county's (the broker checked only
		 * the bundle's topic); 1: another agency's; 2: a bundle inside */
		e1.topic = other;
		e1.payload.data = buf;
		e1.payload.len = len;
		if (v % 4 == 2) {
			inner[0] = 0;
			inner[1] = 1;
			memcpy(inner + 2, buf, len < 1024 ? len : 1024);
			e1.payload.data = inner;
			e1.payload.len = 2 + (len < 1024 ? len : 1024);
		}
		b.entries = ep;
		b.n_entries = 2;
		size_t bl = wf__v1__bundle__get_packed_size(&b);
		uint8_t *bb = malloc(2 + bl + 16);
		ck_assert_ptr_nonnull(bb);
		bb[0] = 0;
		bb[1] = 1;
		wf__v1__bundle__pack(&b, bb + 2);
		bl += 2;
		if (v % 4 == 3) /* 3: the mark and a Bundle cut short (unique: the event id) */
			bl -= 3;
		send_forged(fc, kind, WF_REASON_MALFORMED, topic, bb, bl);
		free(bb);
		free(other);
		free(buf);
		free(topic);
		return;
	}
	case K_MIXING: { /* an exercise or test UPDATE/CANCEL naming an actual event */
		int c = v % N_COUNTIES;
		ev.status = v % 2 ? WF__V1__STATUS__STATUS_TEST : WF__V1__STATUS__STATUS_EXERCISE;
		ev.msg_type = v % 4 < 2 ? WF__V1__MSG_TYPE__MSG_TYPE_CANCEL : WF__V1__MSG_TYPE__MSG_TYPE_UPDATE;
		ev.level = ev.msg_type == WF__V1__MSG_TYPE__MSG_TYPE_CANCEL ? WF__V1__LEVEL__LEVEL_NONE
									   : WF__V1__LEVEL__LEVEL_I;
		snprintf(ref, sizeof ref, "g-met-%d-1", c);
		ev.region = counties[c];
		ev.references = refs;
		ev.n_references = 1;
		free(topic);
		topic = event_topic(WF__V1__AGENCY__AGENCY_MET, counties[c]);
		want = WF_REASON_BAD_REFERENCE;
		break;
	}
	default:
		ck_abort();
	}
	len = pack(&ev, &buf);
	send_forged(fc, kind, want, topic, buf, len);
	free(buf);
	free(topic);
}

/* ---- fusion ---- */

static char *fusion_conf(const char *id)
{
	char *rules = wf_test_source_path("deploy/fusion-rules.conf"), *text, *path;
	ck_assert_int_ge(asprintf(&text,
				  "[service]\nid = %s\nstate_dir = %s/state-%s\nregions = %s\n"
				  "heartbeat = 1s\nresend = 30s\n"
				  "[mqtt]\nhost = 127.0.0.1\nport = %d\n"
				  "[fusion]\nrules = %s\nclock = system\nordered = true\n",
				  id, tmp, id, getenv("WF_REGIONS"), wf_test_broker_port(broker), rules),
			 0);
	ck_assert_int_ge(asprintf(&path, "%s/%s.conf", tmp, id), 0);
	write_file(path, text);
	free(text);
	free(rules);
	return path;
}

static bool is_online(void *ud);

/* ready when its birth is seen: published once every subscription is granted */
static pid_t start_fusion(struct observer *o, const char *id, char **ret_log)
{
	char *conf = fusion_conf(id), *exe = wf_test_build_path("services/fusion/wf-fusion");
	char *argv[] = { exe, (char *)"--config", conf, NULL };
	ck_assert_int_ge(asprintf(ret_log, "%s/%s.log", tmp, id), 0);
	pid_t pid = wf_test_spawn(argv, NULL, *ret_log);
	ck_assert_int_gt(pid, 0);
	ck_assert_msg(wf_test_run_until(loop, is_online, o, 20000), "%s did not come up", id);
	free(conf);
	free(exe);
	return pid;
}

/* "N <word>" right before WORD in the line of LOG containing PREFIX */
static long log_count(const char *log, const char *prefix, const char *word)
{
	char *text = read_all(log);
	long n = -1;
	ck_assert_ptr_nonnull(text);
	char *line = strstr(text, prefix);
	if (line) {
		char *end = strchr(line, '\n');
		if (end)
			*end = '\0';
		char *q = strstr(line, word);
		if (q) {
			while (q > line && q[-1] == ' ')
				q--;
			while (q > line && q[-1] >= '0' && q[-1] <= '9')
				q--;
			n = strtol(q, NULL, 10);
		}
	}
	free(text);
	return n;
}

struct count_wait {
	const long *have;
	long want;
};

static bool count_reached(void *ud)
{
	struct count_wait *w = ud;
	return *w->have >= w->want;
}

struct ack_wait {
	struct observer *o;
	const char *producer;
	uint64_t upto;
};

static bool acked_upto(void *ud)
{
	struct ack_wait *w = ud;
	for (int i = 0; i < w->o->n_acks; i++)
		if (strcmp(w->o->acks[i].producer, w->producer) == 0) {
			for (uint64_t s = 1; s <= w->upto; s++)
				if (!w->o->acks[i].seq[s])
					return false;
			return true;
		}
	return w->upto == 0;
}

/* fusion acknowledges after the commit that also published the versions an
 * input made (published before the ack, on the same connection) */
static bool wait_acked(struct observer *o, const char *producer, uint64_t upto)
{
	struct ack_wait w = { o, producer, upto };
	if (wf_test_run_until(loop, acked_upto, &w, 30000))
		return true;
	long n = 0, first = 0;
	for (int i = 0; i < o->n_acks; i++)
		if (strcmp(o->acks[i].producer, producer) == 0)
			for (uint64_t s = 1; s <= upto; s++)
				if (!o->acks[i].seq[s] && n++ == 0)
					first = (long)s;
	fprintf(stderr, "forgery: %s: %ld of 1..%llu not acked, the first %ld\n", producer, n,
		(unsigned long long)upto, first);
	return false;
}

static bool is_online(void *ud)
{
	return ((struct observer *)ud)->online;
}

/* both runs' versions in their comparable form, for WF_TEST_KEEP=1 */
static void dump_warnings(const struct observer *o, const char *name)
{
	char *path;
	ck_assert_int_ge(asprintf(&path, "%s/%s", tmp, name), 0);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	for (long i = 0; i < o->n_warnings; i++)
		fprintf(f, "%s %s\n", o->warnings[i].key, o->warnings[i].content);
	ck_assert_int_eq(fclose(f), 0);
	free(path);
}

static int cmp_warn(const void *a, const void *b)
{
	const struct warn *x = a, *y = b;
	return strcmp(x->key, y->key);
}

/* ---- the test ---- */

static void setup(void)
{
	struct wf_test_broker_options bo;
	wf_test_broker_options_init(&bo);
	bo.extra_config = "max_queued_messages 0\n";
	ck_assert_int_eq(wf_test_broker_start(&bo, &broker), 0);
	loop = ev_loop_new(EVFLAG_AUTO);
	tmp = wf_test_mkdtemp("forgery");
	t0 = wf_clock_now_ms(NULL);
	ck_assert_ptr_nonnull(tmp);
	load_counties();
}

static void teardown(void)
{
	ev_loop_destroy(loop);
	wf_test_broker_free(broker);
	if (getenv("WF_TEST_KEEP") == NULL)
		wf_test_rmtree(tmp);
	free(tmp);
	regions = wf_region_table_free(regions);
}

static void run_genuine_phase(struct pub *p, struct observer *o, int phase)
{
	genuine_phase(p, phase);
	ck_assert(wait_acked(o, "wf-met-g", p->met_seq));
	ck_assert(wait_acked(o, "wf-water-g", p->water_seq));
}

/* Run RUN_ID: the genuine stream with N forged events of kinds FIRST ..
 * FIRST + N_KINDS - 1 between its phases. Prints the accounting; returns
 * the number of forged events not accounted for as expected (0: all
 * rejected with their reason or counted as replays) plus the number of
 * warning versions that differ from REF's (run A). */
static long forged_run(const char *run_id, const struct observer *ref, int first, int n_kinds,
		       long n, long *ret_made)
{
	struct observer *o = calloc(1, sizeof *o);
	struct pub *p = calloc(1, sizeof *p);
	char *log, cid[64];
	ck_assert_ptr_nonnull(o);
	ck_assert_ptr_nonnull(p);
	observer_start(o, run_id);
	pid_t f = start_fusion(o, run_id, &log);
	snprintf(cid, sizeof cid, "forge-pub-%s", run_id);
	pub_start(p, cid);
	struct forge_ctx fc = { .p = p, .o = o, .first_kind = first, .n_kinds = n_kinds };
	long per_gap = (n + 2) / 3;
	bool stalled = false;
	for (int ph = 0; ph < 4 && !stalled; ph++) {
		run_genuine_phase(p, o, ph);
		if (ph == 3)
			break;
		long end = ph == 2 ? n : (ph + 1) * per_gap < n ? (ph + 1) * per_gap : n;
		while (fc.made < end) {
			long stop = fc.made + CHUNK < end ? fc.made + CHUNK : end;
			while (fc.made < stop)
				forge_one(&fc, fc.made);
			/* processed: the acks of what can be acked (its dead letter,
			 * if any, was published before), the dead letters of the rest */
			for (int k = first; k < first + n_kinds && !stalled; k++) {
				char name[32];
				snprintf(name, sizeof name, "wf-evil-%d", k);
				if (ackable(k) && !wait_acked(o, name, p->evil_seq[k]))
					stalled = true;
			}
			struct count_wait w = { &o->dl_unackable, fc.want_dl_unackable };
			if (stalled || !wf_test_run_until(loop, count_reached, &w, 20000)) {
				fprintf(stderr, "forgery: %s: %ld dead letters of %ld after 20 s\n",
					run_id, o->n_dl, fc.want_dl);
				stalled = true; /* the accounting below says which */
				break;
			}
		}
	}
	ck_assert_int_eq(wf_test_stop(f, SIGTERM, 10000), 0);

	/* ---- accounting ---- */
	long node_dup = log_count(log, "stopped: ", " duplicate");
	long node_rej = log_count(log, "stopped: ", " rejected");
	long eng_dup = log_count(log, "ingested: ", " duplicate");
	long eng_applied = log_count(log, "ingested: ", " applied");
	long eng_cancel = log_count(log, "ingested: ", " cancel_applied");
	long by_kind_ok[K_MAX] = { 0 }, by_kind_bad[K_MAX] = { 0 }, missing = 0, wrong = 0;
	for (long i = 0; i < o->n_forged; i++) {
		struct forged *x = &o->forged[i];
		if (x->want >= EXP_DUP_SEQ) {
			/* acked without effect: counted in fusion's totals below */
			by_kind_ok[x->kind] += x->got < 0;
			by_kind_bad[x->kind] += x->got >= 0;
			continue;
		}
		if (x->got < 0) {
			if (missing++ < 5)
				fprintf(stderr, "forgery: %s: %s: no dead letter (wanted %s)\n", run_id,
					kind_names[x->kind], wf_reason_to_string(x->want));
			by_kind_bad[x->kind]++;
		} else if (x->got != x->want) {
			if (wrong++ < 5)
				fprintf(stderr, "forgery: %s: %s: dead letter %s, wanted %s\n", run_id,
					kind_names[x->kind], wf_reason_to_string(x->got),
					wf_reason_to_string(x->want));
			by_kind_bad[x->kind]++;
		} else {
			by_kind_ok[x->kind]++;
		}
	}
	fprintf(stderr, "forgery: %s: %ld forged events sent\n", run_id, fc.made);
	for (int k = first; k < first + n_kinds; k++)
		fprintf(stderr, "forgery: %s:   %-44s %5ld sent, %5ld as expected, %ld not\n", run_id,
			kind_names[k], fc.per_kind[k], by_kind_ok[k], by_kind_bad[k]);
	fprintf(stderr, "forgery: %s: dead letters by reason:", run_id);
	for (int r = 0; r < WF_REASON_MAX; r++)
		if (o->dl_by_reason[r])
			fprintf(stderr, " %s %ld", wf_reason_to_string(r), o->dl_by_reason[r]);
	fprintf(stderr, "\nforgery: %s: dead letters %ld (expected %ld, unmatched %ld); fusion: %ld "
			"rejected, %ld duplicate (producer, seq) (expected %ld); engine: %ld duplicate "
			"(agency, id) (expected %ld), %ld applied + %ld cancels (genuine %d)\n",
		run_id, o->n_dl, fc.want_dl, o->dl_unmatched, node_rej, node_dup, fc.want_dup_seq,
		eng_dup, fc.want_dup_id, eng_applied, eng_cancel, p->n_raw);

	/* ---- nothing changed ---- */
	char name[64];
	snprintf(name, sizeof name, "warnings-%s.jsonl", run_id);
	dump_warnings(o, name);
	qsort(o->warnings, (size_t)o->n_warnings, sizeof *o->warnings, cmp_warn);
	long differ = 0;
	for (long i = 0, j = 0; i < ref->n_warnings || j < o->n_warnings;) {
		int c = i == ref->n_warnings ? 1
			: j == o->n_warnings ? -1
					     : strcmp(ref->warnings[i].key, o->warnings[j].key);
		if (c == 0 && strcmp(ref->warnings[i].content, o->warnings[j].content) == 0) {
			i++, j++;
			continue;
		}
		if (differ++ < 4) {
			if (c <= 0)
				fprintf(stderr, "forgery: %s: only genuine run has %.300s\n", run_id,
					ref->warnings[i].content);
			if (c >= 0)
				fprintf(stderr, "forgery: %s: this run has %.300s\n", run_id,
					o->warnings[j].content);
		}
		if (c <= 0)
			i++;
		if (c >= 0)
			j++;
	}
	fprintf(stderr, "forgery: %s: warning versions: genuine run %ld, this run %ld, different %ld\n",
		run_id, ref->n_warnings, o->n_warnings, differ);

	long bad = missing + wrong + o->dl_unmatched + (stalled ? 1 : 0) + differ;
	bad += labs(o->n_dl - fc.want_dl) + labs(node_rej - fc.want_dl);
	bad += labs(node_dup - fc.want_dup_seq) + labs(eng_dup - fc.want_dup_id);
	bad += labs(eng_applied + eng_cancel - p->n_raw); /* the genuine ones only */
	*ret_made = fc.made;
	pub_free(p);
	observer_free(o);
	free(o);
	free(p);
	free(log);
	return bad;
}

START_TEST(test_forged_events_rejected_state_unchanged)
{
	/* ---- run A: genuine only ---- */
	struct observer *oa = calloc(1, sizeof *oa);
	struct pub *pa = calloc(1, sizeof *pa);
	char *log_a;
	ck_assert_ptr_nonnull(oa);
	ck_assert_ptr_nonnull(pa);
	observer_start(oa, "wf-fusion-a");
	pid_t fa = start_fusion(oa, "wf-fusion-a", &log_a);
	pub_start(pa, "forge-pub-a");
	for (int ph = 0; ph < 4; ph++)
		run_genuine_phase(pa, oa, ph);
	ck_assert_int_eq(wf_test_stop(fa, SIGTERM, 10000), 0);
	fprintf(stderr, "forgery: run A (genuine only): %d events -> %ld warning versions\n",
		pa->n_raw, oa->n_warnings);
	ck_assert_int_gt(oa->n_warnings, 30);
	ck_assert_int_eq(oa->n_dl, 0);
	dump_warnings(oa, "warnings-wf-fusion-a.jsonl");
	qsort(oa->warnings, (size_t)oa->n_warnings, sizeof *oa->warnings, cmp_warn);

	/* ---- run B: every kind but the exercise/test mixing ---- */
	long made_b, made_c;
	long bad_b = forged_run("wf-fusion-b", oa, 0, K_MIXING, N_FORGED, &made_b);
	/* ---- run C: exercise/test events naming actual ones (run apart, so
	 * that a failure here does not hide run B's result) ---- */
	long bad_c = forged_run("wf-fusion-c", oa, K_MIXING, 1, N_MIXING, &made_c);
	fprintf(stderr, "forgery: %ld forged events in all, %ld not accounted for or changing the "
			"warnings (run B %ld, run C %ld)\n",
		made_b + made_c, bad_b + bad_c, bad_b, bad_c);
	ck_assert_int_ge(made_b, 10000);
	ck_assert_int_eq(bad_b, 0);
	ck_assert_msg(bad_c == 0,
		      "exercise/test events naming actual ones changed actual warnings (%ld)", bad_c);

	pub_free(pa);
	observer_free(oa);
	free(oa);
	free(pa);
	free(log_a);
}
END_TEST

/* ---- forged files at an adapter's spool (wf-police) ---- */

static int count_dir(const char *dir, const char *suffix)
{
	char *cmd_dir = strdup(dir);
	int n = 0;
	DIR *d = opendir(cmd_dir);
	free(cmd_dir);
	if (!d)
		return 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		size_t l = strlen(e->d_name), sl = strlen(suffix);
		if (e->d_type == DT_REG && (!*suffix || (l > sl && strcmp(e->d_name + l - sl, suffix) == 0)))
			n++;
	}
	closedir(d);
	return n;
}

struct spool_wait {
	const char *rejected, *done;
	int want_rejected, want_done;
};

static bool spool_done(void *ud)
{
	struct spool_wait *w = ud;
	return count_dir(w->rejected, ".reason") >= w->want_rejected &&
	       count_dir(w->done, "") >= w->want_done;
}

static void rfc3339(int64_t ms, char *buf, size_t size)
{
	time_t s = (time_t)(ms / 1000) + 8 * 3600;
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%S+08:00", &tm);
}

static void spit_file(const char *dir, const char *name, const char *text, size_t len)
{
	char *tmpname, *final;
	ck_assert_int_ge(asprintf(&tmpname, "%s/.%s.tmp", dir, name), 0);
	ck_assert_int_ge(asprintf(&final, "%s/%s", dir, name), 0);
	FILE *f = fopen(tmpname, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(text, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(rename(tmpname, final), 0); /* whole files only */
	free(tmpname);
	free(final);
}

#define HDR "incident,time,region,category,status,grade,deaths,injured,crowd_density,text\n"

START_TEST(test_forged_spool_files_rejected)
{
	struct observer *o = calloc(1, sizeof *o);
	char *log, *spool, *conf, *text, *alog, now_s[40], past[40], future[40];
	ck_assert_ptr_nonnull(o);
	observer_start(o, "wf-fusion-s");
	pid_t f = start_fusion(o, "wf-fusion-s", &log);
	ck_assert_int_ge(asprintf(&spool, "%s/spool-police", tmp), 0);
	ck_assert_int_eq(mkdir(spool, 0700), 0);
	ck_assert_int_ge(asprintf(&text,
				  "[service]\nid = wf-police-s\nstate_dir = %s/state-police\n"
				  "heartbeat = 1s\nresend = 1s\n[mqtt]\nhost = 127.0.0.1\nport = %d\n"
				  "[adapter]\nspool = %s\n[police]\nvalidity = 12h\n",
				  tmp, wf_test_broker_port(broker), spool),
			 0);
	ck_assert_int_ge(asprintf(&conf, "%s/police.conf", tmp), 0);
	write_file(conf, text);
	free(text);

	/* the genuine file: crowds in 10 counties (density 6.5: grade II) */
	int64_t now = wf_clock_now_ms(NULL) - 60000;
	rfc3339(now, now_s, sizeof now_s);
	rfc3339(now + 86400000LL, future, sizeof future);
	rfc3339(now - 30 * 86400000LL, past, sizeof past);
	char genuine[4096];
	size_t gl = (size_t)snprintf(genuine, sizeof genuine, HDR);
	for (int c = 0; c < 10; c++)
		gl += (size_t)snprintf(genuine + gl, sizeof genuine - gl,
				       "P-G-%d,%s,%s,crowd,new,,,,6.5,游客聚集\n", c, now_s, counties[c]);
	spit_file(spool, "incidents-1.csv", genuine, gl);
	char *exe = wf_test_build_path("services/police/wf-police");
	char *argv[] = { exe, (char *)"--config", conf, NULL };
	ck_assert_int_ge(asprintf(&alog, "%s/police.log", tmp), 0);
	pid_t a = wf_test_spawn(argv, NULL, alog);
	ck_assert_int_gt(a, 0);
	char *done, *rejected;
	ck_assert_int_ge(asprintf(&done, "%s/done", spool), 0);
	ck_assert_int_ge(asprintf(&rejected, "%s/rejected", spool), 0);
	struct spool_wait sw = { rejected, done, 0, 1 };
	ck_assert_msg(wf_test_run_until(loop, spool_done, &sw, 20000), "genuine file not done (%s)",
		      alog);
	ck_assert(wait_acked(o, "wf-police-s", 10));
	long w1 = o->n_warnings, e1 = o->events;
	fprintf(stderr, "forgery: spool: genuine file: %ld events, %ld warning versions\n", e1, w1);
	ck_assert_int_eq(e1, 10);
	ck_assert_int_ge(w1, 10);

	/* the forged files, each to be rejected whole with a reason */
	static char big[12000];
	memset(big, 'x', sizeof big - 1);
	struct { const char *name; char body[16000]; size_t len; } forged[16];
	int nf = 0;
#define FORGE(nm, ...)                                                                              \
	do {                                                                                       \
		forged[nf].name = nm;                                                              \
		forged[nf].len = (size_t)snprintf(forged[nf].body, sizeof forged[nf].body, HDR     \
						  __VA_ARGS__);                                    \
		nf++;                                                                              \
	} while (0)
	FORGE("f-unknown-region.csv", "P-F-1,%s,419999000000,crowd,new,,,,6.5,x\n", now_s);
	FORGE("f-region-syntax.csv", "P-F-2,%s,41010x,crowd,new,,,,6.5,x\n", now_s);
	FORGE("f-future.csv", "P-F-3,%s,%s,crowd,new,,,,6.5,x\n", future, counties[0]);
	FORGE("f-past.csv", "P-F-4,%s,%s,crowd,new,,,,6.5,x\n", past, counties[0]);
	FORGE("f-category.csv", "P-F-5,%s,%s,alien,new,,,,6.5,x\n", now_s, counties[0]);
	FORGE("f-status.csv", "P-F-6,%s,%s,crowd,deleted,,,,6.5,x\n", now_s, counties[0]);
	FORGE("f-density.csv", "P-F-7,%s,%s,crowd,new,,,,99,x\n", now_s, counties[0]);
	FORGE("f-deaths.csv", "P-F-8,%s,%s,traffic,new,,-5,,,x\n", now_s, counties[0]);
	FORGE("f-grade.csv", "P-F-9,%s,%s,traffic,new,7,,,,x\n", now_s, counties[0]);
	FORGE("f-text.csv", "P-F-10,%s,%s,crowd,new,,,,6.5,%s\n", now_s, counties[0], big);
	FORGE("f-utf8.csv", "P-F-11,%s,%s,crowd,new,,,,6.5,bad \xff\xfe\n", now_s, counties[0]);
	FORGE("f-fields.csv", "P-F-12,%s,%s,crowd,new\n", now_s, counties[0]);
	FORGE("f-id.csv", "P F 13!,%s,%s,crowd,new,,,,6.5,x\n", now_s, counties[0]);
	forged[nf].name = "f-binary.csv"; /* not text at all */
	forged[nf].len = 64;
	for (int i = 0; i < 64; i++)
		forged[nf].body[i] = (char)(0x80 + i);
	nf++;
	forged[nf].name = "f-header.csv";
	forged[nf].len = (size_t)snprintf(forged[nf].body, sizeof forged[nf].body,
					  "id,when,where\nP-F-15,%s,%s\n", now_s, counties[0]);
	nf++;
#undef FORGE
	for (int i = 0; i < nf; i++)
		spit_file(spool, forged[i].name, forged[i].body, forged[i].len);
	/* and the genuine file again under another name: the adapter knows it
	 * (same SHA-256) and sends nothing; with its rows in another order it is
	 * new to the adapter, whose events (the same ids) fusion knows */
	spit_file(spool, "incidents-1-again.csv", genuine, gl);
	char reordered[4096];
	size_t rl = (size_t)snprintf(reordered, sizeof reordered, HDR);
	for (int c = 9; c >= 0; c--)
		rl += (size_t)snprintf(reordered + rl, sizeof reordered - rl,
				       "P-G-%d,%s,%s,crowd,new,,,,6.5,游客聚集\n", c, now_s, counties[c]);
	spit_file(spool, "incidents-1-reordered.csv", reordered, rl);
	sw.want_rejected = nf;
	sw.want_done = 3;
	ck_assert_msg(wf_test_run_until(loop, spool_done, &sw, 30000),
		      "forged files: %d rejected of %d, %d done (log %s)", count_dir(rejected, ".reason"),
		      nf, count_dir(done, ""), alog);
	ck_assert(wait_acked(o, "wf-police-s", 20)); /* the reordered file's 10 events */
	ck_assert_int_eq(wf_test_stop(a, SIGTERM, 10000), 0);
	ck_assert_int_eq(wf_test_stop(f, SIGTERM, 10000), 0);

	for (int i = 0; i < nf; i++) {
		char *rp;
		ck_assert_int_ge(asprintf(&rp, "%s/%s.reason", rejected, forged[i].name), 0);
		char *reason = read_all(rp);
		ck_assert_msg(reason != NULL && reason[0] && reason[0] != '\n', "%s: no reason",
			      forged[i].name);
		char *nl = strchr(reason, '\n');
		if (nl)
			*nl = '\0';
		fprintf(stderr, "forgery: spool: %-22s rejected: %.150s\n", forged[i].name, reason);
		free(reason);
		free(rp);
	}
	long eng_dup = log_count(log, "ingested: ", " duplicate");
	long eng_applied = log_count(log, "ingested: ", " applied");
	char *alog_text = read_all(alog);
	ck_assert_ptr_nonnull(alog_text);
	bool file_dup = strstr(alog_text, "incidents-1-again.csv: duplicate") != NULL;
	free(alog_text);
	fprintf(stderr, "forgery: spool: %d forged files rejected; the genuine file again: %s; "
			"reordered: %ld events published again, %ld engine duplicates; %ld applied in "
			"all; warning versions %ld before, %ld after; %ld dead letters\n",
		nf, file_dup ? "a duplicate for the adapter (nothing sent)" : "NOT recognised",
		o->events - e1, eng_dup, eng_applied, w1, o->n_warnings, o->n_dl);
	ck_assert(file_dup);
	ck_assert_int_eq(count_dir(rejected, ".reason"), nf);
	ck_assert_int_eq(o->events - e1, 10); /* only the replay's */
	ck_assert_int_eq(eng_dup, 10);
	ck_assert_int_eq(eng_applied, 10);
	ck_assert_int_eq(o->n_warnings, w1);
	ck_assert_int_eq(o->n_dl, 0);

	observer_free(o);
	free(o);
	free(exe);
	free(log);
	free(alog);
	free(spool);
	free(conf);
	free(done);
	free(rejected);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("forgery");
	TCase *tc = tcase_create("forgery");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_forged_events_rejected_state_unchanged);
	tcase_add_test(tc, test_forged_spool_files_rejected);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
