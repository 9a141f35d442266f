/* Unit tests for the fusion engine (services/fusion/engine.c, eval.c) on
 * injected (virtual) time. Every emitted warning is stamped like the daemon
 * does and checked with wf_codec_warning_validate(). */
/* positional event specs leave trailing fields zero on purpose */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "wf/codec.h"
#include "wf/pbjson.h"
#include "wf/region.h"
#include "wf/store.h"
#include "wf/topic.h"

#define H (3600000LL)
#define M (60000LL)
#define T0 (1784505600000LL) /* 2026-07-20T00:00:00Z */

static struct wf_region_table *regions;
static char tmpdir[256];
static char rules_path[512];

/* ---------------------------------------------------------------- fixtures */

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)flag; (void)f;
	return remove(p);
}

static void tc_setup(void)
{
	const char *base = getenv("TMPDIR");
	snprintf(tmpdir, sizeof tmpdir, "%s/wf-test-fusion-XXXXXX", base && *base ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void tc_teardown(void)
{
	nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* collected output */
struct out {
	char *json;      /* all versions, one JSON line each */
	size_t len, cap;
	Wf__V1__Warning *w[256]; /* last 256 copies, packed/unpacked */
	size_t n;
	uint64_t seq;
};

static void out_reset(struct out *o)
{
	for (size_t i = 0; i < o->n; i++)
		wf_codec_warning_free(o->w[i]);
	o->n = 0;
}

static void out_free(struct out *o)
{
	out_reset(o);
	free(o->json);
	memset(o, 0, sizeof *o);
}

static int collect(void *ud, const Wf__V1__Warning *w)
{
	struct out *o = ud;
	Wf__V1__Warning c = *w;
	c.producer = (char *)"wf-fusion-test";
	c.seq = ++o->seq;
	struct wf_codec_limits lim;
	wf_codec_limits_init(&lim);
	lim.regions = regions;
	struct wf_codec_error err = { 0 };
	int r = wf_codec_warning_validate(&c, &lim, c.sent_ms, &err);
	ck_assert_msg(r == 0, "warning %s@%u invalid: %s: %s", w->id, w->version, err.field,
		      err.detail);
	ck_assert_int_eq(w->review, WF__V1__REVIEW_STATE__REVIEW_PENDING);
	ck_assert(w->producer == NULL || !*w->producer);
	char *js = wf_pbjson_print(&c.base);
	ck_assert_ptr_nonnull(js);
	size_t l = strlen(js);
	if (o->len + l + 2 > o->cap) {
		o->cap = (o->len + l + 2) * 2;
		o->json = realloc(o->json, o->cap);
		ck_assert_ptr_nonnull(o->json);
	}
	memcpy(o->json + o->len, js, l);
	o->len += l;
	o->json[o->len++] = '\n';
	o->json[o->len] = '\0';
	free(js);
	uint8_t *buf = NULL;
	size_t blen = 0;
	ck_assert_int_eq(wf_codec_warning_pack(&c, &lim, c.sent_ms, &buf, &blen, NULL), 0);
	Wf__V1__Warning *u = NULL;
	ck_assert_int_eq(wf_codec_warning_unpack(buf, blen, &lim, c.sent_ms, &u, NULL), 0);
	free(buf);
	if (o->n == 256) {
		wf_codec_warning_free(o->w[0]);
		memmove(o->w, o->w + 1, 255 * sizeof *o->w);
		o->n--;
	}
	o->w[o->n++] = u;
	return 0;
}

static struct wf_fusion_rules *rules_text(const char *text)
{
	struct wf_fusion_rules *r = NULL;
	char err[256];
	int rc = wf_fusion_rules_parse("test.conf", text, &r, err, sizeof err);
	ck_assert_msg(rc == 0, "rules: %s", err);
	return r;
}

static struct wf_fusion_rules *rules_default(void)
{
	struct wf_fusion_rules *r = NULL;
	char err[512];
	int rc = wf_fusion_rules_load(rules_path, &r, err, sizeof err);
	ck_assert_msg(rc == 0, "rules: %s", err);
	return r;
}

struct env {
	struct wf_store *s;
	struct wf_fusion *e;
	struct out o;
};

static bool open_full_regrade; /* env_open: wf_fusion_options.full_regrade */

static void env_open(struct env *v, const char *name, struct wf_fusion_rules *rules,
		     const char *const *owned, size_t n_owned)
{
	char path[600];
	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	struct wf_store_options so = { .path = path, .map_size = 64 << 20, .nosync = true };
	if (!v->s)
		ck_assert_int_eq(wf_store_open(&so, &v->s), 0);
	struct wf_fusion_options fo = { .regions = regions, .owned = owned, .n_owned = n_owned,
					.full_regrade = open_full_regrade };
	ck_assert_int_eq(wf_fusion_open(v->s, rules, &fo, &v->e), 0);
}

static void env_close(struct env *v)
{
	v->e = wf_fusion_close(v->e);
	v->s = wf_store_close(v->s);
	out_free(&v->o);
}

/* event builder */
struct evspec {
	int agency;
	const char *id;
	int hazard;
	const char *region;
	int level;
	int64_t observed, expires;
	int status;       /* 0: actual */
	int msg_type;     /* 0: alert */
	const char *ref;  /* one reference */
	const char *criterion;
	double value, threshold;
};

/* ingest() without asserting the engine's result: returns it */
static int ingest_r(struct env *v, const struct evspec *sp, int64_t now);

static int ingest(struct env *v, const struct evspec *sp, int64_t now)
{
	int r = ingest_r(v, sp, now);
	ck_assert_int_ge(r, 0);
	return r;
}

static int ingest_r(struct env *v, const struct evspec *sp, int64_t now)
{
	Wf__V1__Event ev = WF__V1__EVENT__INIT;
	Wf__V1__Measurement m = WF__V1__MEASUREMENT__INIT;
	char *refs[1] = { (char *)sp->ref };
	ev.id = (char *)sp->id;
	ev.agency = (Wf__V1__Agency)sp->agency;
	ev.hazard = (Wf__V1__Hazard)sp->hazard;
	ev.region = (char *)sp->region;
	ev.level = (Wf__V1__Level)sp->level;
	ev.observed_ms = sp->observed;
	ev.expires_ms = sp->expires;
	ev.status = (Wf__V1__Status)(sp->status ? sp->status : WF__V1__STATUS__STATUS_ACTUAL);
	ev.msg_type = (Wf__V1__MsgType)(sp->msg_type ? sp->msg_type : WF__V1__MSG_TYPE__MSG_TYPE_ALERT);
	ev.producer = (char *)"wf-test-1";
	ev.seq = 1;
	if (sp->ref) {
		ev.n_references = 1;
		ev.references = refs;
	}
	if (sp->criterion) {
		m.criterion = (char *)sp->criterion;
		m.value = sp->value;
		m.threshold = sp->threshold;
		m.unit = (char *)"mm";
		ev.measurement = &m;
	}
	struct wf_codec_limits lim;
	wf_codec_limits_init(&lim);
	lim.regions = regions;
	struct wf_codec_error ce = { 0 };
	ck_assert_msg(wf_codec_event_validate(&ev, &lim, now, &ce) == 0, "event %s: %s: %s", sp->id,
		      ce.field, ce.detail);
	struct wf_txn *t = NULL;
	ck_assert_int_eq(wf_store_txn_begin(v->s, true, &t), 0);
	int r = wf_fusion_ingest(v->e, t, &ev, now, collect, &v->o);
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
	return r;
}

static int tick(struct env *v, int64_t now)
{
	struct wf_txn *t = NULL;
	ck_assert_int_eq(wf_store_txn_begin(v->s, true, &t), 0);
	int r = wf_fusion_tick(v->e, t, now, collect, &v->o);
	ck_assert_int_ge(r, 0);
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
	return r;
}

/* ticks at every deadline up to NOW (as replay does) */
static void run_to(struct env *v, int64_t now)
{
	for (;;) {
		int64_t d = wf_fusion_next_deadline(v->e);
		if (d > now)
			break;
		tick(v, d);
	}
	tick(v, now);
}

static const Wf__V1__Warning *last(struct env *v)
{
	ck_assert_uint_gt(v->o.n, 0);
	return v->o.w[v->o.n - 1];
}

static const Wf__V1__Warning *maybe_hz(struct env *v, int hazard)
{
	for (size_t i = v->o.n; i-- > 0;)
		if (v->o.w[i]->hazard == (Wf__V1__Hazard)hazard)
			return v->o.w[i];
	return NULL;
}

/* the last version of HAZARD; fails the test if there is none */
static const Wf__V1__Warning *find_hz(struct env *v, int hazard)
{
	const Wf__V1__Warning *w = maybe_hz(v, hazard);
	if (!w) {
		ck_abort_msg("no warning of hazard %d", hazard);
		abort();
	}
	return w;
}

static bool has_rule(const Wf__V1__Warning *w, const char *id)
{
	for (size_t i = 0; i < w->n_rule_ids; i++)
		if (strcmp(w->rule_ids[i], id) == 0)
			return true;
	return false;
}

#define MET WF__V1__AGENCY__AGENCY_MET
#define WATER WF__V1__AGENCY__AGENCY_WATER
#define GEO WF__V1__AGENCY__AGENCY_GEO
#define FIRE WF__V1__AGENCY__AGENCY_FIRE
#define POLICE WF__V1__AGENCY__AGENCY_POLICE
#define HZ(x) WF__V1__HAZARD__HAZARD_##x
#define LV(x) WF__V1__LEVEL__LEVEL_##x
#define MT(x) WF__V1__MSG_TYPE__MSG_TYPE_##x
#define COUNTY "410102000000"
#define TOWN "410102001000"
#define VILLAGE "410102001002"

/* ---------------------------------------------------------------- tests */

START_TEST(alert_basic)
{
	struct env v = { 0 };
	env_open(&v, "s", rules_default(), NULL, 0);
	struct evspec e1 = { MET, "e1", HZ(RAINSTORM), VILLAGE, LV(III), T0, T0 + 6 * H };
	ck_assert_int_eq(ingest(&v, &e1, T0), WF_FUSION_APPLIED);
	ck_assert_uint_eq(v.o.n, 1);
	const Wf__V1__Warning *w = last(&v);
	ck_assert_int_eq(w->msg_type, MT(ALERT));
	ck_assert_uint_eq(w->version, 1);
	ck_assert_int_eq(w->level, LV(III));
	ck_assert_int_eq(w->hazard, HZ(RAINSTORM));
	ck_assert_uint_eq(w->n_regions, 1);
	ck_assert_str_eq(w->regions[0], COUNTY);
	ck_assert_uint_eq(w->n_event_ids, 1);
	ck_assert_str_eq(w->event_ids[0], "met:e1");
	ck_assert(has_rule(w, "direct"));
	ck_assert_uint_eq(w->n_references, 0);
	ck_assert_int_eq(w->sent_ms, T0);
	ck_assert_int_eq(w->expires_ms, T0 + 6 * H);
	ck_assert_ptr_nonnull(strstr(w->headline, "中原区"));
	ck_assert_ptr_nonnull(strstr(w->headline, "黄色"));
	/* an upgrade goes out at once as an update referencing v1 */
	struct evspec e2 = { MET, "e2", HZ(RAINSTORM), COUNTY, LV(II), T0 + H, T0 + 5 * H };
	ck_assert_int_eq(ingest(&v, &e2, T0 + H), WF_FUSION_APPLIED);
	ck_assert_uint_eq(v.o.n, 2);
	w = last(&v);
	ck_assert_int_eq(w->msg_type, MT(UPDATE));
	ck_assert_uint_eq(w->version, 2);
	ck_assert_int_eq(w->level, LV(II));
	ck_assert_str_eq(w->id, v.o.w[0]->id);
	ck_assert_uint_eq(w->n_references, 1);
	char ref[160];
	snprintf(ref, sizeof ref, "%s@1", w->id);
	ck_assert_str_eq(w->references[0], ref);
	ck_assert_uint_eq(w->n_event_ids, 2);
	env_close(&v);
}
END_TEST

START_TEST(duplicate_event)
{
	struct env v = { 0 };
	env_open(&v, "s", rules_default(), NULL, 0);
	struct evspec e1 = { MET, "e1", HZ(RAINSTORM), VILLAGE, LV(III), T0, T0 + 6 * H };
	ck_assert_int_eq(ingest(&v, &e1, T0), WF_FUSION_APPLIED);
	ck_assert_int_eq(ingest(&v, &e1, T0 + M), WF_FUSION_DUPLICATE);
	ck_assert_uint_eq(v.o.n, 1);
	/* the same id from another agency is a different event */
	struct evspec e2 = e1;
	e2.agency = POLICE;
	ck_assert_int_eq(ingest(&v, &e2, T0 + M), WF_FUSION_APPLIED);
	env_close(&v);
}
END_TEST

START_TEST(out_of_order)
{
	/* in order: e1 (IV), then e2 UPDATE of e1 (II) */
	struct env a = { 0 }, b = { 0 };
	env_open(&a, "a", rules_default(), NULL, 0);
	struct evspec e1 = { MET, "e1", HZ(RAINSTORM), COUNTY, LV(IV), T0, T0 + 6 * H };
	struct evspec e2 = { MET, "e2", HZ(RAINSTORM), COUNTY, LV(II), T0 + M, T0 + 6 * H, 0,
			     MT(UPDATE), "e1" };
	ingest(&a, &e1, T0);
	ingest(&a, &e2, T0 + M);
	ck_assert_int_eq(last(&a)->level, LV(II));
	ck_assert_uint_eq(last(&a)->n_event_ids, 1);
	ck_assert_str_eq(last(&a)->event_ids[0], "met:e2");
	/* reversed: the update arrives first, the original later is superseded */
	env_open(&b, "b", rules_default(), NULL, 0);
	ck_assert_int_eq(ingest(&b, &e2, T0 + M), WF_FUSION_APPLIED);
	ck_assert_int_eq(ingest(&b, &e1, T0 + 2 * M), WF_FUSION_SUPERSEDED);
	ck_assert_uint_eq(b.o.n, 1);
	ck_assert_int_eq(last(&b)->level, LV(II));
	ck_assert_uint_eq(last(&b)->n_event_ids, 1);
	/* an older-observed event arriving after a newer one still counts */
	struct evspec e3 = { WATER, "w-old", HZ(FLOOD), COUNTY, LV(III), T0 - H, T0 + 3 * H };
	ck_assert_int_eq(ingest(&b, &e3, T0 + 3 * M), WF_FUSION_APPLIED);
	ck_assert_ptr_nonnull(find_hz(&b, HZ(FLOOD)));
	env_close(&a);
	env_close(&b);
}
END_TEST

START_TEST(unknown_region_rejected)
{
	Wf__V1__Event ev = WF__V1__EVENT__INIT;
	ev.id = (char *)"x1";
	ev.agency = MET;
	ev.hazard = HZ(RAINSTORM);
	ev.region = (char *)"419999000000";
	ev.level = LV(III);
	ev.observed_ms = T0;
	ev.expires_ms = T0 + H;
	ev.status = WF__V1__STATUS__STATUS_ACTUAL;
	ev.msg_type = MT(ALERT);
	ev.producer = (char *)"wf-test-1";
	ev.seq = 1;
	struct wf_codec_limits lim;
	wf_codec_limits_init(&lim);
	lim.regions = regions;
	struct wf_codec_error ce = { 0 };
	ck_assert_int_eq(wf_codec_event_validate(&ev, &lim, T0, &ce), -EBADMSG);
	ck_assert_int_eq(ce.reason, WF_REASON_UNKNOWN_REGION);
	/* the engine itself refuses a malformed region */
	struct env v = { 0 };
	env_open(&v, "s", rules_default(), NULL, 0);
	ev.region = (char *)"41x";
	struct wf_txn *t = NULL;
	ck_assert_int_eq(wf_store_txn_begin(v.s, true, &t), 0);
	ck_assert_int_eq(wf_fusion_ingest(v.e, t, &ev, T0, collect, &v.o), -EINVAL);
	wf_store_txn_abort(t);
	env_close(&v);
}
END_TEST

START_TEST(expired_event)
{
	struct env v = { 0 };
	env_open(&v, "s", rules_default(), NULL, 0);
	struct evspec e1 = { MET, "e1", HZ(RAINSTORM), COUNTY, LV(III), T0 - 3 * H, T0 - H };
	ck_assert_int_eq(ingest(&v, &e1, T0), WF_FUSION_EXPIRED);
	ck_assert_uint_eq(v.o.n, 0);
	ck_assert_int_eq(ingest(&v, &e1, T0), WF_FUSION_DUPLICATE);
	env_close(&v);
}
END_TEST

/* An input held only in the store (expired on arrival) is found again
 * after a reopen: the key filter in front of fusion.input (keyfilter.h) is
 * built from the store at the first lookup, so it cannot miss a key stored
 * by an earlier run; a new id beside it is still new. */
START_TEST(expired_event_after_reopen)
{
	struct env v = { 0 };
	env_open(&v, "s", rules_default(), NULL, 0);
	struct evspec e1 = { MET, "e1", HZ(RAINSTORM), COUNTY, LV(III), T0 - 3 * H, T0 - H };
	ck_assert_int_eq(ingest(&v, &e1, T0), WF_FUSION_EXPIRED);
	env_close(&v);
	env_open(&v, "s", rules_default(), NULL, 0);
	ck_assert_int_eq(ingest(&v, &e1, T0), WF_FUSION_DUPLICATE);
	struct evspec e2 = { MET, "e2", HZ(RAINSTORM), COUNTY, LV(III), T0 - 3 * H, T0 - H };
	ck_assert_int_eq(ingest(&v, &e2, T0), WF_FUSION_EXPIRED);
	ck_assert_int_eq(ingest(&v, &e2, T0), WF_FUSION_DUPLICATE);
	ck_assert_uint_eq(v.o.n, 0);
	env_close(&v);
}
END_TEST

START_TEST(all_inputs_expire_cancel)
{
	struct env v = { 0 };
	env_open(&v, "s", rules_default(), NULL, 0);
	struct evspec e1 = { MET, "e1", HZ(RAINSTORM), COUNTY, LV(III), T0, T0 + 2 * H };
	struct evspec e2 = { POLICE, "p1", HZ(RAINSTORM), TOWN, LV(IV), T0, T0 + 3 * H };
	ingest(&v, &e1, T0);
	ingest(&v, &e2, T0 + M); /* corroborated: II */
	ck_assert_int_eq(last(&v)->level, LV(II));
	ck_assert_int_eq(wf_fusion_next_deadline(v.e) <= T0 + 2 * H, 1);
	run_to(&v, T0 + 3 * H - 1);
	size_t before = v.o.n;
	run_to(&v, T0 + 3 * H);
	ck_assert_uint_eq(v.o.n, before + 1);
	const Wf__V1__Warning *w = last(&v);
	ck_assert_int_eq(w->msg_type, MT(CANCEL));
	ck_assert_uint_eq(w->n_references, 1);
	ck_assert_ptr_nonnull(strstr(w->headline, "解除"));
	struct wf_fusion_stats st;
	wf_fusion_get_stats(v.e, &st);
	ck_assert_uint_eq(st.incidents, 0);
	/* nothing more happens later */
	run_to(&v, T0 + 30 * H);
	ck_assert_uint_eq(v.o.n, before + 1);
	env_close(&v);
}
END_TEST

START_TEST(source_cancel)
{
	struct env v = { 0 };
	env_open(&v, "s", rules_default(), NULL, 0);
	struct evspec e1 = { MET, "e1", HZ(GALE), COUNTY, LV(III), T0, T0 + 6 * H };
	struct evspec c1 = { MET, "c1", HZ(GALE), COUNTY, LV(III), T0 + H, T0 + 6 * H, 0,
			     MT(CANCEL), "e1" };
	ingest(&v, &e1, T0);
	ck_assert_int_eq(ingest(&v, &c1, T0 + H), WF_FUSION_CANCEL_APPLIED);
	ck_assert_int_eq(last(&v)->msg_type, MT(CANCEL));
	ck_assert_uint_eq(last(&v)->version, 2);
	ck_assert_int_eq(last(&v)->sent_ms, T0 + H);
	env_close(&v);
}
END_TEST

/* Exercise and test never touch actual: an exercise CANCEL or UPDATE
 * naming an actual event is refused (-EXDEV) and changes nothing; an
 * exercise tombstone for an id that then arrives as an actual event does
 * not suppress it. */
START_TEST(exercise_never_touches_actual)
{
	struct env v = { 0 };
	env_open(&v, "s", rules_default(), NULL, 0);
	const int EX = WF__V1__STATUS__STATUS_EXERCISE;
	struct evspec a1 = { MET, "a1", HZ(GALE), COUNTY, LV(III), T0, T0 + 6 * H };
	ingest(&v, &a1, T0);
	ck_assert_uint_eq(v.o.n, 1);
	struct evspec xc = { MET, "x1", HZ(GALE), COUNTY, LV(III), T0 + M, T0 + 6 * H, EX,
			     MT(CANCEL), "a1" };
	ck_assert_int_eq(ingest_r(&v, &xc, T0 + M), -EXDEV);
	struct evspec xu = { MET, "x2", HZ(GALE), COUNTY, LV(I), T0 + M, T0 + 6 * H, EX,
			     MT(UPDATE), "a1" };
	ck_assert_int_eq(ingest_r(&v, &xu, T0 + M), -EXDEV);
	ck_assert_uint_eq(v.o.n, 1); /* nothing new, the actual warning untouched */
	/* an exercise CANCEL of an id not seen yet leaves an exercise tombstone... */
	struct evspec xt = { MET, "x3", HZ(GALE), COUNTY, LV(III), T0 + M, T0 + 6 * H, EX,
			     MT(CANCEL), "a2" };
	ck_assert_int_ge(ingest_r(&v, &xt, T0 + M), 0);
	/* ... which an actual a2 ignores: it raises the actual warning to II */
	struct evspec a2 = { MET, "a2", HZ(GALE), COUNTY, LV(II), T0 + 2 * M, T0 + 6 * H };
	ck_assert_int_eq(ingest(&v, &a2, T0 + 2 * M), WF_FUSION_APPLIED);
	ck_assert_int_eq(last(&v)->level, LV(II));
	ck_assert_int_eq(last(&v)->status, WF__V1__STATUS__STATUS_ACTUAL);
	/* an exercise event that reuses an id before the actual event comes
	 * is another event: the actual one is not a duplicate of it */
	struct evspec x4 = { MET, "a4", HZ(GALE), COUNTY, LV(IV), T0 + 3 * M, T0 + 6 * H, EX };
	struct evspec a4 = { MET, "a4", HZ(GALE), COUNTY, LV(I), T0 + 4 * M, T0 + 6 * H };
	ck_assert_int_eq(ingest(&v, &x4, T0 + 3 * M), WF_FUSION_APPLIED);
	ck_assert_int_eq(last(&v)->status, WF__V1__STATUS__STATUS_EXERCISE);
	ck_assert_int_eq(ingest(&v, &a4, T0 + 4 * M), WF_FUSION_APPLIED);
	ck_assert_int_eq(last(&v)->level, LV(I));
	ck_assert_int_eq(last(&v)->status, WF__V1__STATUS__STATUS_ACTUAL);
	/* and an exercise CANCEL naming that id cancels the exercise one only */
	size_t before = v.o.n;
	struct evspec x5 = { MET, "x5", HZ(GALE), COUNTY, LV(IV), T0 + 5 * M, T0 + 6 * H, EX,
			     MT(CANCEL), "a4" };
	ck_assert_int_eq(ingest(&v, &x5, T0 + 5 * M), WF_FUSION_CANCEL_APPLIED);
	for (size_t i = before; i < v.o.n; i++)
		ck_assert_int_eq(v.o.w[i]->status, WF__V1__STATUS__STATUS_EXERCISE);
	ck_assert_int_eq(ingest(&v, &a4, T0 + 6 * M), WF_FUSION_DUPLICATE);
	env_close(&v);
}
END_TEST

START_TEST(flapping_dwell)
{
	struct env v = { 0 };
	env_open(&v, "s", rules_default(), NULL, 0); /* dwell = 30m */
	struct evspec b = { MET, "b", HZ(RAINSTORM), COUNTY, LV(IV), T0, T0 + 10 * H };
	struct evspec a = { MET, "a", HZ(RAINSTORM), COUNTY, LV(II), T0, T0 + H };
	ingest(&v, &b, T0);
	ingest(&v, &a, T0 + 1); /* upgrade: immediate */
	ck_assert_uint_eq(v.o.n, 2);
	ck_assert_int_eq(last(&v)->level, LV(II));
	ck_assert_int_eq(last(&v)->sent_ms, T0 + 1);
	run_to(&v, T0 + H + 10 * M); /* a expired at 1h: downgrade pending */
	ck_assert_uint_eq(v.o.n, 2);
	/* flaps back up within the dwell: no version at all */
	struct evspec c = { MET, "c", HZ(RAINSTORM), COUNTY, LV(II), T0 + H + 10 * M, T0 + 2 * H };
	ingest(&v, &c, T0 + H + 10 * M);
	run_to(&v, T0 + 2 * H + 29 * M);
	ck_assert_uint_eq(v.o.n, 2);
	/* held low for the whole dwell: downgrade */
	run_to(&v, T0 + 2 * H + 30 * M);
	ck_assert_uint_eq(v.o.n, 3);
	ck_assert_int_eq(last(&v)->msg_type, MT(UPDATE));
	ck_assert_int_eq(last(&v)->level, LV(IV));
	ck_assert_int_eq(last(&v)->sent_ms, T0 + 2 * H + 30 * M);
	env_close(&v);
}
END_TEST

START_TEST(corroboration)
{
	struct env v = { 0 };
	env_open(&v, "s", rules_default(), NULL, 0);
	struct evspec a = { MET, "a", HZ(RAINSTORM), COUNTY, LV(III), T0, T0 + 6 * H };
	struct evspec b = { MET, "b", HZ(RAINSTORM), VILLAGE, LV(III), T0, T0 + 6 * H };
	ingest(&v, &a, T0);
	ingest(&v, &b, T0 + 1);
	ck_assert_uint_eq(v.o.n, 1); /* same agency twice is not corroboration */
	struct evspec c = { WATER, "c", HZ(RAINSTORM), TOWN, LV(IV), T0, T0 + 6 * H };
	ingest(&v, &c, T0 + 2);
	const Wf__V1__Warning *w = last(&v);
	ck_assert_uint_eq(v.o.n, 2);
	ck_assert_int_eq(w->level, LV(II));
	ck_assert_int_eq(w->certainty, WF__V1__CERTAINTY__CERTAINTY_LIKELY);
	ck_assert(has_rule(w, "corroborated"));
	ck_assert_uint_eq(w->n_event_ids, 3);
	env_close(&v);
}
END_TEST

/* event_ids are in key order (agency name, then event id) whatever the
 * order of arrival: 23 inputs from five agencies, ids shuffled. */
START_TEST(event_ids_in_key_order)
{
	struct env v = { 0 };
	env_open(&v, "s", rules_default(), NULL, 0);
	static const int ag[] = { WATER, MET, POLICE, GEO, FIRE };
	char ids[23][8];
	for (int i = 0; i < 23; i++) {
		snprintf(ids[i], sizeof ids[i], "e%02d", (i * 7) % 23);
		struct evspec e = { ag[i % 5], ids[i], HZ(FLOOD), COUNTY, i == 22 ? LV(I) : LV(IV),
				    T0 + i * M, T0 + 12 * H };
		ingest(&v, &e, T0 + i * M);
	}
	const Wf__V1__Warning *w = find_hz(&v, HZ(FLOOD));
	ck_assert_int_eq(w->level, LV(I));
	ck_assert_uint_eq(w->n_event_ids, 23);
	for (size_t i = 1; i < w->n_event_ids; i++)
		ck_assert_msg(strcmp(w->event_ids[i - 1], w->event_ids[i]) < 0, "%s before %s",
			      w->event_ids[i - 1], w->event_ids[i]);
	ck_assert_str_eq(w->event_ids[0], "fire:e05");
	ck_assert_str_eq(w->event_ids[22], "water:e13");
	env_close(&v);
}
END_TEST

/* An incident cancelled and opened again in the same tick from the same
 * first input (a chain whose water witness is cancelled and replaced at
 * once) gets a new id: version 1 of the old id again would be ignored as
 * already known downstream (found by the soak). */
START_TEST(reopened_incident_new_id)
{
	struct env v = { 0 };
	env_open(&v, "s", rules_default(), NULL, 0);
	struct evspec r = { MET, "r1", HZ(RAINSTORM), COUNTY, LV(III), T0, T0 + 12 * H };
	struct evspec w1 = { WATER, "g1", HZ(FLOOD), "410102002000", LV(IV), T0, T0 + 12 * H };
	struct evspec c1 = { WATER, "g1c", HZ(FLOOD), "410102002000", LV(IV), T0, T0 + 12 * H, 0,
			     MT(CANCEL), "g1" };
	struct evspec w2 = { WATER, "g2", HZ(FLOOD), "410102002000", LV(IV), T0, T0 + 12 * H };
	ingest(&v, &r, T0);
	ingest(&v, &w1, T0);
	char first[96];
	snprintf(first, sizeof first, "%s", find_hz(&v, HZ(FLOOD))->id);
	ingest(&v, &c1, T0);
	ck_assert_int_eq(find_hz(&v, HZ(FLOOD))->msg_type, MT(CANCEL));
	ingest(&v, &w2, T0);
	const Wf__V1__Warning *w = find_hz(&v, HZ(FLOOD));
	ck_assert_int_eq(w->msg_type, MT(ALERT));
	ck_assert_uint_eq(w->version, 1);
	ck_assert_str_ne(w->id, first);
	ck_assert_ptr_nonnull(strstr(w->id, first)); /* the same base, with a suffix */
	env_close(&v);
}
END_TEST

START_TEST(chain_flood)
{
	struct env v = { 0 };
	env_open(&v, "s", rules_default(), NULL, 0);
	struct evspec r = { MET, "r1", HZ(RAINSTORM), COUNTY, LV(III), T0, T0 + 12 * H };
	struct evspec w1 = { WATER, "g1", HZ(FLOOD), "410102002000", LV(IV), T0 + 2 * H, T0 + 12 * H };
	ingest(&v, &r, T0);
	ingest(&v, &w1, T0 + 2 * H);
	const Wf__V1__Warning *w = find_hz(&v, HZ(FLOOD));
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(w->level, LV(II)); /* one above the stronger input (III) */
	ck_assert(has_rule(w, "flood-chain"));
	ck_assert(has_rule(w, "direct"));
	ck_assert_uint_eq(w->n_event_ids, 2);
	ck_assert_str_eq(w->event_ids[0], "met:r1");
	ck_assert_str_eq(w->event_ids[1], "water:g1");
	/* outside the window nothing is derived */
	struct evspec r2 = { MET, "r2", HZ(RAINSTORM), "410103000000", LV(III), T0, T0 + 20 * H };
	struct evspec w2 = { WATER, "g2", HZ(FLOOD), "410103001000", LV(IV), T0 + 7 * H, T0 + 20 * H };
	ingest(&v, &r2, T0 + 7 * H);
	ingest(&v, &w2, T0 + 7 * H);
	w = find_hz(&v, HZ(FLOOD));
	ck_assert_str_eq(w->regions[0], "410103000000");
	ck_assert_int_eq(w->level, LV(IV)); /* direct only */
	ck_assert(!has_rule(w, "flood-chain"));
	/* a prefecture-wide rainstorm is chain context for its counties */
	struct evspec r3 = { MET, "r3", HZ(RAINSTORM), "410100000000", LV(II), T0 + 7 * H, T0 + 20 * H };
	ingest(&v, &r3, T0 + 7 * H + 1);
	w = find_hz(&v, HZ(FLOOD));
	ck_assert_str_eq(w->regions[0], "410103000000");
	ck_assert_int_eq(w->level, LV(I));
	ck_assert(has_rule(w, "flood-chain"));
	env_close(&v);
}
END_TEST

START_TEST(chain_landslide)
{
	struct env v = { 0 };
	env_open(&v, "s", rules_default(), NULL, 0);
	struct evspec r = { MET, "r1", HZ(RAINSTORM), COUNTY, LV(IV), T0, T0 + 12 * H };
	struct evspec g = { GEO, "g1", HZ(GEO_RISK), COUNTY, LV(III), T0 + H, T0 + 24 * H };
	ingest(&v, &r, T0);
	ingest(&v, &g, T0 + H);
	const Wf__V1__Warning *w = find_hz(&v, HZ(LANDSLIDE));
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(w->level, LV(II));
	ck_assert(has_rule(w, "landslide-chain"));
	/* slope sensor accelerating (ungraded observation over its threshold) */
	struct evspec r2 = { MET, "r2", HZ(RAINSTORM), "410103000000", LV(IV), T0, T0 + 12 * H };
	struct evspec s1 = { GEO, "s1", HZ(LANDSLIDE), "410103001000", LV(NONE), T0 + H, T0 + 3 * H,
			     0, 0, NULL, "displacement_accel", 5.0, 2.0 };
	struct evspec s0 = { GEO, "s0", HZ(LANDSLIDE), "410103001000", LV(NONE), T0 + H, T0 + 3 * H,
			     0, 0, NULL, "displacement_accel", 1.0, 2.0 };
	ingest(&v, &r2, T0 + H);
	size_t n = v.o.n;
	ingest(&v, &s0, T0 + H); /* below threshold: nothing */
	ck_assert_uint_eq(v.o.n, n);
	ingest(&v, &s1, T0 + H);
	w = last(&v);
	ck_assert_int_eq(w->hazard, HZ(LANDSLIDE));
	ck_assert_str_eq(w->regions[0], "410103000000");
	ck_assert_int_eq(w->level, LV(III)); /* above IV -> III, floor III */
	env_close(&v);
}
END_TEST

START_TEST(chain_forest_fire_and_plume)
{
	struct env v = { 0 };
	env_open(&v, "s", rules_default(), NULL, 0);
	struct evspec h = { MET, "h1", HZ(HEAT), COUNTY, LV(III), T0, T0 + 24 * H };
	struct evspec f = { FIRE, "f1", HZ(FIRE_DANGER), COUNTY, LV(II), T0, T0 + 24 * H };
	ingest(&v, &h, T0);
	ingest(&v, &f, T0 + 1);
	const Wf__V1__Warning *w = find_hz(&v, HZ(FOREST_FIRE));
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(w->level, LV(II));
	ck_assert(has_rule(w, "forest-fire-chain"));
	/* a hotspot confirms and escalates */
	struct evspec hs = { FIRE, "hs1", HZ(HOTSPOT), TOWN, LV(NONE), T0 + H, T0 + 6 * H };
	ingest(&v, &hs, T0 + H);
	w = find_hz(&v, HZ(FOREST_FIRE));
	ck_assert_int_eq(w->msg_type, MT(UPDATE));
	ck_assert_int_eq(w->level, LV(I));
	ck_assert(has_rule(w, "forest-fire-confirmed"));
	ck_assert_int_eq(w->certainty, WF__V1__CERTAINTY__CERTAINTY_OBSERVED);
	/* hazmat accident + wind -> toxic plume */
	struct evspec hz = { POLICE, "hz1", HZ(HAZMAT), "410103001000", LV(IV), T0, T0 + 6 * H };
	struct evspec g = { MET, "g1", HZ(GALE), "410103000000", LV(IV), T0, T0 + 6 * H };
	ingest(&v, &hz, T0 + 2 * H);
	ck_assert_ptr_null(maybe_hz(&v, HZ(TOXIC_PLUME)));
	ingest(&v, &g, T0 + 2 * H);
	w = find_hz(&v, HZ(TOXIC_PLUME));
	ck_assert_ptr_nonnull(w);
	ck_assert_int_eq(w->level, LV(II)); /* above IV = III, floor II */
	ck_assert(has_rule(w, "toxic-plume-chain"));
	env_close(&v);
}
END_TEST

START_TEST(count_rule)
{
	struct env v = { 0 };
	env_open(&v, "s", rules_default(), NULL, 0);
	struct evspec p = { POLICE, "p1", HZ(CROWD), "410102001002", LV(NONE), T0, T0 + 2 * H };
	ingest(&v, &p, T0);
	p.id = "p2"; p.region = "410102001003"; p.observed = T0 + 10 * M;
	ingest(&v, &p, T0 + 10 * M);
	/* a third report in another township does not count */
	p.id = "p3"; p.region = "410102002001"; p.observed = T0 + 11 * M;
	ingest(&v, &p, T0 + 11 * M);
	ck_assert_uint_eq(v.o.n, 0);
	/* a third one too late (> 30 min after the first) makes 2 in window */
	p.id = "p4"; p.region = "410102001004"; p.observed = T0 + 50 * M;
	ingest(&v, &p, T0 + 50 * M);
	ck_assert_uint_eq(v.o.n, 0);
	p.id = "p5"; p.region = "410102001005"; p.observed = T0 + 55 * M;
	ingest(&v, &p, T0 + 55 * M);
	p.id = "p6"; p.region = "410102001006"; p.observed = T0 + 56 * M;
	ingest(&v, &p, T0 + 56 * M);
	ck_assert_uint_eq(v.o.n, 1);
	const Wf__V1__Warning *w = last(&v);
	ck_assert_int_eq(w->hazard, HZ(CROWD));
	ck_assert_int_eq(w->level, LV(III));
	ck_assert_uint_eq(w->n_regions, 1);
	ck_assert_str_eq(w->regions[0], TOWN);
	ck_assert(has_rule(w, "crowd-reports"));
	ck_assert_uint_eq(w->n_event_ids, 3);
	env_close(&v);
}
END_TEST

START_TEST(exercise_separation)
{
	struct env v = { 0 };
	env_open(&v, "s", rules_default(), NULL, 0);
	struct evspec a = { MET, "a", HZ(RAINSTORM), COUNTY, LV(IV), T0, T0 + 6 * H };
	struct evspec x = { WATER, "x", HZ(RAINSTORM), COUNTY, LV(II), T0, T0 + 6 * H,
			    WF__V1__STATUS__STATUS_EXERCISE };
	struct evspec t = { POLICE, "t", HZ(RAINSTORM), COUNTY, LV(I), T0, T0 + 6 * H,
			    WF__V1__STATUS__STATUS_TEST };
	ingest(&v, &a, T0);
	ingest(&v, &x, T0);
	ingest(&v, &t, T0);
	ck_assert_uint_eq(v.o.n, 3);
	ck_assert_int_eq(v.o.w[0]->status, WF__V1__STATUS__STATUS_ACTUAL);
	ck_assert_int_eq(v.o.w[0]->level, LV(IV));
	ck_assert_int_eq(v.o.w[1]->status, WF__V1__STATUS__STATUS_EXERCISE);
	ck_assert_int_eq(v.o.w[1]->level, LV(II)); /* not corroborated across statuses */
	ck_assert_ptr_nonnull(strstr(v.o.w[1]->headline, "演练"));
	ck_assert_int_eq(v.o.w[2]->status, WF__V1__STATUS__STATUS_TEST);
	ck_assert_str_ne(v.o.w[0]->id, v.o.w[1]->id);
	ck_assert_str_ne(v.o.w[1]->id, v.o.w[2]->id);
	ck_assert_uint_eq(v.o.w[0]->n_event_ids, 1);
	env_close(&v);
}
END_TEST

START_TEST(monitoring_gap)
{
	struct env v = { 0 };
	env_open(&v, "s", rules_default(), NULL, 0);
	struct evspec a = { WATER, "a", HZ(FLOOD), COUNTY, LV(III), T0, T0 + 6 * H };
	ingest(&v, &a, T0);
	struct wf_txn *t = NULL;
	ck_assert_int_eq(wf_store_txn_begin(v.s, true, &t), 0);
	ck_assert_int_eq(wf_fusion_source_liveness(v.e, t, MET, false, T0 + H, collect, &v.o), 0);
	ck_assert_int_eq(wf_fusion_source_liveness(v.e, t, WATER, false, T0 + H, collect, &v.o), 1);
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
	const Wf__V1__Warning *w = last(&v);
	ck_assert_int_eq(w->hazard, HZ(MONITORING_GAP));
	ck_assert_int_eq(w->msg_type, MT(ALERT));
	ck_assert(has_rule(w, "source-liveness"));
	ck_assert_str_eq(w->event_ids[0], "water:a");
	/* silence cancels nothing: the flood warning is untouched */
	ck_assert_uint_eq(v.o.n, 2);
	ck_assert_int_eq(v.o.w[0]->hazard, HZ(FLOOD));
	ck_assert_int_eq(wf_store_txn_begin(v.s, true, &t), 0);
	ck_assert_int_eq(wf_fusion_source_liveness(v.e, t, WATER, true, T0 + 2 * H, collect, &v.o), 1);
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
	ck_assert_int_eq(last(&v)->hazard, HZ(MONITORING_GAP));
	ck_assert_int_eq(last(&v)->msg_type, MT(CANCEL));
	ck_assert_uint_eq(v.o.n, 3);
	env_close(&v);
}
END_TEST

START_TEST(reload_mid_incident)
{
	struct env v = { 0 };
	env_open(&v, "s", rules_default(), NULL, 0);
	struct evspec r = { MET, "r1", HZ(RAINSTORM), COUNTY, LV(III), T0, T0 + 12 * H };
	struct evspec w1 = { WATER, "g1", HZ(FLOOD), COUNTY, LV(IV), T0, T0 + 12 * H };
	ingest(&v, &r, T0);
	ingest(&v, &w1, T0 + 1);
	const Wf__V1__Warning *fl = find_hz(&v, HZ(FLOOD));
	ck_assert_int_eq(fl->level, LV(II));
	char flood_id[128];
	snprintf(flood_id, sizeof flood_id, "%s", fl->id);
	size_t n = v.o.n;
	/* a bad file is rejected with path:line and the old rules stay */
	struct wf_fusion_rules *bad = NULL;
	char err[256];
	ck_assert_int_eq(wf_fusion_rules_parse("new.conf", "[rule x]\nkind = chain\nwhen = met:rainfall\n",
					       &bad, err, sizeof err), -EINVAL);
	ck_assert_str_eq(err, "new.conf:3: unknown hazard 'rainfall'");
	ck_assert_ptr_null(bad);
	/* a changed grouping level needs a restart */
	struct wf_fusion_rules *other = rules_text("[fusion]\narea = township\n[rule d]\nkind = direct\nhazards = *\n");
	ck_assert_int_eq(wf_fusion_set_rules(v.e, other, err, sizeof err), -EINVAL);
	wf_fusion_rules_free(other);
	tick(&v, T0 + H);
	ck_assert_msg(v.o.n == n, "%s", v.o.json);
	/* new rules without the flood chain: the flood warning drops to its
	 * direct level (after the dwell), the rainstorm warning is untouched */
	struct wf_fusion_rules *nr = rules_text("[fusion]\ndwell = 10m\n[rule direct]\nkind = direct\nhazards = *\n");
	ck_assert_int_eq(wf_fusion_set_rules(v.e, nr, err, sizeof err), 0);
	tick(&v, T0 + H + 1);
	ck_assert_uint_eq(v.o.n, n);
	run_to(&v, T0 + H + 1 + 10 * M);
	ck_assert_uint_eq(v.o.n, n + 1);
	const Wf__V1__Warning *w = last(&v);
	ck_assert_str_eq(w->id, flood_id);
	ck_assert_uint_eq(w->version, 2);
	ck_assert_int_eq(w->level, LV(IV));
	ck_assert(!has_rule(w, "flood-chain"));
	env_close(&v);
}
END_TEST

/* ---------------------------------------------------------------- scenario runs */

/* A deterministic pseudo-random scenario over two prefectures. */
static const char *const scen_regions[] = {
	"410102001002", "410102002000", "410103000000", "410103001000", "410122000000",
	"410202000000", "410202001000", "410203000000", "410204000000", "410205000000",
};

struct scen_ev { struct evspec sp; char id[32]; char ref[32]; int64_t now; };

static size_t scenario(struct scen_ev *v, size_t max)
{
	static const struct { int agency, hazard; } kinds[] = {
		{ MET, HZ(RAINSTORM) }, { WATER, HZ(FLOOD) }, { GEO, HZ(GEO_RISK) },
		{ MET, HZ(GALE) }, { POLICE, HZ(HAZMAT) }, { POLICE, HZ(CROWD) },
		{ FIRE, HZ(FIRE_DANGER) }, { MET, HZ(HEAT) },
	};
	uint32_t x = 12345;
	size_t n = 0;
	int64_t now = T0;
	for (size_t i = 0; i < max; i++) {
		x = x * 1103515245u + 12345u;
		struct scen_ev *e = &v[n];
		memset(e, 0, sizeof *e);
		unsigned k = (x >> 8) % 8;
		now += (int64_t)((x >> 4) % 20) * M;
		snprintf(e->id, sizeof e->id, "s%zu", i);
		e->sp.agency = kinds[k].agency;
		e->sp.hazard = kinds[k].hazard;
		e->sp.id = e->id;
		e->sp.region = scen_regions[(x >> 12) % 10];
		e->sp.level = kinds[k].hazard == HZ(CROWD) ? 0 : (int)((x >> 16) % 4) + 1;
		e->sp.observed = now - (int64_t)((x >> 20) % 3) * 10 * M; /* some out of order */
		e->sp.expires = e->sp.observed + (int64_t)((x >> 22) % 6 + 1) * H;
		if (i > 10 && (x >> 26) % 7 == 0) {
			/* references stay within the partition (a prefecture): an
			 * agency updates an event on the same topic subtree */
			for (size_t b = n; b-- > 0 && b + 12 > n;) {
				if (strncmp(v[b].sp.region, e->sp.region, 4) != 0 ||
				    v[b].sp.agency != e->sp.agency || v[b].sp.msg_type)
					continue;
				e->sp.msg_type = (x >> 29) % 2 ? MT(CANCEL) : MT(UPDATE);
				snprintf(e->ref, sizeof e->ref, "%s", v[b].id);
				e->sp.ref = e->ref;
				break;
			}
		}
		e->now = now;
		n++;
		if (i % 13 == 0 && n < max) { /* duplicate */
			v[n] = *e;
			v[n].sp.id = v[n].id;
			v[n].sp.ref = v[n].sp.ref ? v[n].ref : NULL;
			n++;
		}
	}
	return n;
}

static void fix_ptrs(struct scen_ev *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		v[i].sp.id = v[i].id;
		if (v[i].sp.ref)
			v[i].sp.ref = v[i].ref;
	}
}

/* feeds events [from, to) of V; returns nothing, output in ENV */
static void feed(struct env *e, struct scen_ev *v, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++) {
		run_to(e, v[i].now);
		ingest(e, &v[i].sp, v[i].now);
	}
}

static int line_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* sorted lines without the "seq" stamp */
static char *sorted_lines(const char *json)
{
	char *copy = strdup(json);
	size_t n = 0, cap = 64;
	char **lines = malloc(cap * sizeof *lines);
	for (char *s = copy, *save = NULL, *l; (l = strtok_r(s, "\n", &save)); s = NULL) {
		char *q = strstr(l, ",\"seq\":");
		if (q) {
			char *end = strchr(q + 1, ',');
			memmove(q, end, strlen(end) + 1);
		}
		if (n == cap)
			lines = realloc(lines, (cap *= 2) * sizeof *lines);
		lines[n++] = l;
	}
	qsort(lines, n, sizeof *lines, line_cmp);
	size_t len = strlen(json) + n + 1;
	char *out = calloc(1, len);
	for (size_t i = 0; i < n; i++) {
		strcat(out, lines[i]);
		strcat(out, "\n");
	}
	free(lines);
	free(copy);
	return out;
}

#define SCEN_MAX 600

START_TEST(determinism)
{
	static struct scen_ev v[SCEN_MAX];
	size_t n = scenario(v, 500);
	fix_ptrs(v, n);
	struct env a = { 0 }, b = { 0 };
	env_open(&a, "a", rules_default(), NULL, 0);
	feed(&a, v, 0, n);
	run_to(&a, v[n - 1].now + 48 * H);
	env_open(&b, "b", rules_default(), NULL, 0);
	feed(&b, v, 0, n);
	run_to(&b, v[n - 1].now + 48 * H);
	ck_assert_uint_gt(a.o.len, 1000);
	ck_assert_uint_eq(a.o.len, b.o.len);
	ck_assert_int_eq(memcmp(a.o.json, b.o.json, a.o.len), 0);
	/* everything ends with an explicit cancel */
	struct wf_fusion_stats st;
	wf_fusion_get_stats(a.e, &st);
	ck_assert_uint_eq(st.incidents, 0);
	env_close(&a);
	env_close(&b);
}
END_TEST

static void liveness(struct env *v, int agency, bool alive, int64_t now)
{
	struct wf_txn *t = NULL;
	ck_assert_int_eq(wf_store_txn_begin(v->s, true, &t), 0);
	ck_assert_int_ge(wf_fusion_source_liveness(v->e, t, agency, alive, now, collect, &v->o), 0);
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
}

/* The incremental evaluation (only the hazards whose inputs changed, and
 * what they affect) emits exactly what regrading every hazard of the area
 * on each event emits: over a long scenario with prefecture-wide context
 * events, a silent source and a rule reload in the middle. */
START_TEST(incremental_equals_full_regrade)
{
	size_t max = 3000;
	struct scen_ev *v = calloc(max + max / 10 + 2, sizeof *v);
	ck_assert_ptr_nonnull(v);
	size_t n = scenario(v, max);
	fix_ptrs(v, n);
	for (size_t i = 0; i < n; i += 11) /* prefecture-wide: chain context of its counties */
		v[i].sp.region = v[i].sp.region[3] == '1' ? "410100000000" : "410200000000";
	for (size_t i = 3; i < n; i += 5) /* a second agency on the hazard: corroboration */
		if (!v[i].sp.ref && v[i].sp.agency != FIRE)
			v[i].sp.agency = FIRE;
	struct env inc = { 0 }, full = { 0 };
	env_open(&inc, "inc", rules_default(), NULL, 0);
	open_full_regrade = true;
	env_open(&full, "full", rules_default(), NULL, 0);
	open_full_regrade = false;
	for (size_t i = 0; i < n; i++) {
		struct env *both[2] = { &inc, &full };
		for (int k = 0; k < 2; k++) {
			struct env *x = both[k];
			run_to(x, v[i].now);
			if (i == n / 3)
				liveness(x, WATER, false, v[i].now);
			if (i == n / 3 + 200)
				liveness(x, WATER, true, v[i].now);
			if (i == n / 2) {
				char err[256];
				ck_assert_int_eq(wf_fusion_set_rules(x->e, rules_default(), err, sizeof err), 0);
			}
			ingest(x, &v[i].sp, v[i].now);
		}
	}
	run_to(&inc, v[n - 1].now + 48 * H);
	run_to(&full, v[n - 1].now + 48 * H);
	ck_assert_uint_gt(inc.o.len, 100000);
	ck_assert_ptr_nonnull(strstr(inc.o.json, "flood-chain"));
	ck_assert_ptr_nonnull(strstr(inc.o.json, "source-liveness"));
	ck_assert_ptr_nonnull(strstr(inc.o.json, "\"corroborated\""));
	size_t d = 0;
	while (inc.o.json[d] && inc.o.json[d] == full.o.json[d])
		d++;
	ck_assert_msg(inc.o.json[d] == full.o.json[d], "differ at %zu of %zu: %.300s | %.300s", d,
		      inc.o.len, inc.o.json + (d > 150 ? d - 150 : 0),
		      full.o.json + (d > 150 ? d - 150 : 0));
	ck_assert_uint_eq(inc.o.len, full.o.len);
	env_close(&inc);
	env_close(&full);
	free(v);
}
END_TEST

START_TEST(partitioned_equals_single)
{
	static struct scen_ev v[SCEN_MAX];
	size_t n = scenario(v, 500);
	fix_ptrs(v, n);
	struct env one = { 0 }, p1 = { 0 }, p2 = { 0 };
	env_open(&one, "one", rules_default(), NULL, 0);
	feed(&one, v, 0, n);
	run_to(&one, v[n - 1].now + 48 * H);
	const char *o1[] = { "4101" }, *o2[] = { "4102" };
	env_open(&p1, "p1", rules_default(), o1, 1);
	env_open(&p2, "p2", rules_default(), o2, 1);
	size_t not_owned = 0;
	for (size_t i = 0; i < n; i++) {
		run_to(&p1, v[i].now);
		run_to(&p2, v[i].now);
		/* each instance is fed only its own region (as its subscription) */
		struct env *e = strncmp(v[i].sp.region, "4101", 4) == 0 ? &p1 : &p2;
		ingest(e, &v[i].sp, v[i].now);
		struct env *other = e == &p1 ? &p2 : &p1;
		not_owned += ingest(other, &v[i].sp, v[i].now) == WF_FUSION_NOT_OWNED;
	}
	ck_assert_uint_eq(not_owned, n);
	run_to(&p1, v[n - 1].now + 48 * H);
	run_to(&p2, v[n - 1].now + 48 * H);
	size_t l1 = p1.o.len, l2 = p2.o.len;
	char *both = malloc(l1 + l2 + 1);
	memcpy(both, p1.o.json, l1);
	memcpy(both + l1, p2.o.json, l2);
	both[l1 + l2] = '\0';
	char *a = sorted_lines(one.o.json), *b = sorted_lines(both);
	ck_assert_uint_gt(strlen(a), 1000);
	size_t d = 0;
	while (a[d] && a[d] == b[d])
		d++;
	ck_assert_msg(a[d] == b[d], "differ at %zu: %.200s | %.200s", d, a + (d > 100 ? d - 100 : 0),
		      b + (d > 100 ? d - 100 : 0));
	free(a);
	free(b);
	free(both);
	env_close(&one);
	env_close(&p1);
	env_close(&p2);
}
END_TEST

START_TEST(reopen_after_abort)
{
	static struct scen_ev v[SCEN_MAX];
	size_t n = scenario(v, 500);
	fix_ptrs(v, n);
	struct env ref = { 0 }, x = { 0 };
	env_open(&ref, "ref", rules_default(), NULL, 0);
	feed(&ref, v, 0, n);
	run_to(&ref, v[n - 1].now + 48 * H);

	env_open(&x, "x", rules_default(), NULL, 0);
	size_t half = n / 2;
	feed(&x, v, 0, half);
	/* a batch that is aborted: its output is discarded, like an outbox
	 * that never committed */
	struct wf_txn *t = NULL;
	struct out junk = { 0 };
	ck_assert_int_eq(wf_store_txn_begin(x.s, true, &t), 0);
	for (size_t i = half; i < half + 40; i++) {
		Wf__V1__Event ev = WF__V1__EVENT__INIT;
		char *refs[1] = { (char *)v[i].sp.ref };
		ev.id = (char *)v[i].sp.id;
		ev.agency = (Wf__V1__Agency)v[i].sp.agency;
		ev.hazard = (Wf__V1__Hazard)v[i].sp.hazard;
		ev.region = (char *)v[i].sp.region;
		ev.level = (Wf__V1__Level)v[i].sp.level;
		ev.observed_ms = v[i].sp.observed;
		ev.expires_ms = v[i].sp.expires;
		ev.status = WF__V1__STATUS__STATUS_ACTUAL;
		ev.msg_type = (Wf__V1__MsgType)(v[i].sp.msg_type ? v[i].sp.msg_type : MT(ALERT));
		if (v[i].sp.ref) {
			ev.n_references = 1;
			ev.references = refs;
		}
		ck_assert_int_ge(wf_fusion_ingest(x.e, t, &ev, v[i].now, collect, &junk), 0);
	}
	wf_store_txn_abort(t);
	wf_fusion_txn_aborted(x.e);
	out_free(&junk);
	/* continue a little in this instance (rebuilds from the store) ... */
	feed(&x, v, half, half + 20);
	/* ... then "crash": close and reopen the engine on the same store */
	x.e = wf_fusion_close(x.e);
	struct wf_fusion_options fo = { .regions = regions };
	ck_assert_int_eq(wf_fusion_open(x.s, rules_default(), &fo, &x.e), 0);
	feed(&x, v, half + 20, n);
	run_to(&x, v[n - 1].now + 48 * H);
	size_t d = 0;
	while (ref.o.json[d] && ref.o.json[d] == x.o.json[d])
		d++;
	ck_assert_msg(ref.o.json[d] == x.o.json[d], "differ at %zu: %.200s | %.200s", d,
		      ref.o.json + d, x.o.json + d);
	env_close(&ref);
	env_close(&x);
}
END_TEST

static uint64_t db_count(struct env *v, const char *name)
{
	unsigned dbi = 0;
	ck_assert_int_eq(wf_store_dbi(v->s, name, 0, &dbi), 0);
	struct wf_txn *t = NULL;
	uint64_t n = 0;
	ck_assert_int_eq(wf_store_txn_begin(v->s, false, &t), 0);
	ck_assert_int_eq(wf_store_count(t, dbi, &n), 0);
	wf_store_txn_abort(t);
	return n;
}

static void engine_reopen(struct env *v)
{
	v->e = wf_fusion_close(v->e);
	struct wf_fusion_options fo = { .regions = regions };
	ck_assert_int_eq(wf_fusion_open(v->s, rules_default(), &fo, &v->e), 0);
}

static uint64_t held(struct env *v)
{
	struct wf_fusion_stats st;
	wf_fusion_get_stats(v->e, &st);
	return st.inputs;
}

struct old_keys {
	unsigned char key[64][160];
	size_t klen[64];
	char val[64][512];
	size_t vlen[64];
	size_t n;
};

static int old_keys_cb(void *ud, const void *k, size_t kl, const void *val, size_t vl)
{
	struct old_keys *o = ud;
	ck_assert_uint_lt(o->n, 64);
	ck_assert_uint_le(kl, 160);
	ck_assert_uint_le(vl, 512);
	memcpy(o->key[o->n], k, kl);
	o->klen[o->n] = kl;
	memcpy(o->val[o->n], val, vl);
	o->vlen[o->n++] = vl;
	return 0;
}

/* Rewrites V's store as wf-fusion wrote it before "inputs-v2": input keys
 * (agency, id), no purge entries, no meta mark. */
static void make_old_store(struct env *v)
{
	unsigned din = 0, dpurge = 0, dmeta = 0;
	ck_assert_int_eq(wf_store_dbi(v->s, "fusion.input", 0, &din), 0);
	ck_assert_int_eq(wf_store_dbi(v->s, "fusion.purge", 0, &dpurge), 0);
	ck_assert_int_eq(wf_store_dbi(v->s, "fusion.meta", 0, &dmeta), 0);
	static struct old_keys o;
	o.n = 0;
	struct wf_txn *t = NULL;
	ck_assert_int_eq(wf_store_txn_begin(v->s, true, &t), 0);
	ck_assert_int_eq(wf_store_foreach(t, din, NULL, 0, old_keys_cb, &o), 0);
	for (size_t i = 0; i < o.n; i++) {
		ck_assert_int_eq(wf_store_del(t, din, o.key[i], o.klen[i]), 0);
		unsigned char k[160];
		k[0] = o.key[i][0]; /* agency; drop the status byte */
		memcpy(k + 1, o.key[i] + 2, o.klen[i] - 2);
		ck_assert_int_eq(wf_store_put(t, din, k, o.klen[i] - 1, o.val[i], o.vlen[i], 0), 0);
	}
	ck_assert_int_eq(wf_store_del(t, dmeta, "inputs-v2", 9), 0);
	unsigned char lo[1] = { 0 }, hi[1] = { 0xff };
	ck_assert_int_eq(wf_store_del_range(t, dpurge, lo, 1, hi, 1, NULL, NULL), 0);
	ck_assert_int_eq(wf_store_txn_commit(t), 0);
}

/* Only valid inputs are held in memory; ended ones stay in the store,
 * still deduplicated and still tombstones, until `retain` (8 days) after
 * their expiry; a store from before the purge index is indexed once. */
START_TEST(ended_inputs_leave_memory)
{
	struct env v = { 0 };
	env_open(&v, "s", rules_default(), NULL, 0);
	struct evspec e1 = { MET, "e1", HZ(RAINSTORM), COUNTY, LV(IV), T0, T0 + 2 * H };
	struct evspec e2 = { MET, "e2", HZ(RAINSTORM), COUNTY, LV(III), T0 + M, T0 + 2 * H, 0,
			     MT(UPDATE), "e1" };
	struct evspec c1 = { MET, "c1", HZ(RAINSTORM), COUNTY, LV(III), T0 + 2 * M, T0 + 2 * H, 0,
			     MT(CANCEL), "e2" };
	ck_assert_int_eq(ingest(&v, &e1, T0), WF_FUSION_APPLIED);
	ck_assert_uint_eq(held(&v), 1);
	/* e2 supersedes e1, c1 cancels e2: each leaves memory at once (its
	 * expiry timer too); a CANCEL message is never held */
	ck_assert_int_eq(ingest(&v, &e2, T0 + M), WF_FUSION_APPLIED);
	ck_assert_uint_eq(held(&v), 1);
	ck_assert_int_eq(ingest(&v, &c1, T0 + 2 * M), WF_FUSION_CANCEL_APPLIED);
	ck_assert_uint_eq(held(&v), 0);
	run_to(&v, T0 + 3 * H);
	ck_assert_uint_eq(held(&v), 0);
	ck_assert_uint_eq(db_count(&v, "fusion.input"), 3);
	ck_assert_uint_eq(db_count(&v, "fusion.purge"), 3);
	size_t versions = v.o.n;
	/* still duplicates, from the store */
	ck_assert_int_eq(ingest(&v, &e1, T0 + 3 * H), WF_FUSION_DUPLICATE);
	ck_assert_int_eq(ingest(&v, &c1, T0 + 3 * H), WF_FUSION_DUPLICATE);
	/* a tombstone (an UPDATE naming an event not seen yet) is kept in the
	 * store across a restart: the original is superseded when it comes */
	struct evspec u4 = { MET, "u4", HZ(RAINSTORM), COUNTY, LV(II), T0 + 3 * H, T0 + 5 * H, 0,
			     MT(UPDATE), "e3" };
	struct evspec e3 = { MET, "e3", HZ(RAINSTORM), COUNTY, LV(IV), T0 + 3 * H - M, T0 + 5 * H };
	ck_assert_int_eq(ingest(&v, &u4, T0 + 3 * H), WF_FUSION_APPLIED);
	ck_assert_uint_eq(held(&v), 1);
	engine_reopen(&v);
	ck_assert_uint_eq(held(&v), 1);
	ck_assert_int_eq(ingest(&v, &e3, T0 + 3 * H + M), WF_FUSION_SUPERSEDED);
	ck_assert_int_eq(ingest(&v, &e1, T0 + 3 * H + M), WF_FUSION_DUPLICATE);
	ck_assert_int_eq(last(&v)->level, LV(II));
	ck_assert_uint_eq(held(&v), 1);
	ck_assert_uint_gt(v.o.n, versions);
	ck_assert_uint_eq(db_count(&v, "fusion.input"), 5);
	ck_assert_uint_eq(db_count(&v, "fusion.purge"), 4); /* u4 is valid */

	/* a store from before "inputs-v2": keys (agency, id) without the
	 * status, no purge entries, no meta mark */
	make_old_store(&v);
	engine_reopen(&v);
	ck_assert_uint_eq(held(&v), 1); /* u4, read from its old key */
	ck_assert_uint_eq(db_count(&v, "fusion.purge"), 0);
	tick(&v, T0 + 4 * H);
	ck_assert_uint_eq(db_count(&v, "fusion.purge"), 4);
	ck_assert_uint_eq(db_count(&v, "fusion.input"), 5);
	ck_assert_int_eq(ingest(&v, &e1, T0 + 4 * H), WF_FUSION_DUPLICATE);
	ck_assert_int_eq(ingest(&v, &u4, T0 + 4 * H), WF_FUSION_DUPLICATE);

	/* retain is 8 days: nothing is purged before the earliest purge time
	 * (e1's expiry + 8 d); once u4's (T0+5h + 8 d) has passed only e3 is
	 * left: it keeps its tombstone's purge time (the longest validity, 31
	 * days, + 8 days after u4's observation) */
	run_to(&v, T0 + 2 * H + 8 * 24 * H - M);
	ck_assert_uint_eq(db_count(&v, "fusion.input"), 5);
	run_to(&v, T0 + 5 * H + 8 * 24 * H + M);
	ck_assert_uint_eq(db_count(&v, "fusion.input"), 1);
	run_to(&v, T0 + 3 * H + 39 * 24 * H + M);
	ck_assert_uint_eq(db_count(&v, "fusion.input"), 0);
	ck_assert_uint_eq(db_count(&v, "fusion.purge"), 0);
	ck_assert_uint_eq(held(&v), 0);
	env_close(&v);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("fusion-engine");
	TCase *tc = tcase_create("engine");
	tcase_add_checked_fixture(tc, tc_setup, tc_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, alert_basic);
	tcase_add_test(tc, incremental_equals_full_regrade);
	tcase_add_test(tc, event_ids_in_key_order);
	tcase_add_test(tc, reopened_incident_new_id);
	tcase_add_test(tc, duplicate_event);
	tcase_add_test(tc, out_of_order);
	tcase_add_test(tc, unknown_region_rejected);
	tcase_add_test(tc, expired_event);
	tcase_add_test(tc, expired_event_after_reopen);
	tcase_add_test(tc, all_inputs_expire_cancel);
	tcase_add_test(tc, source_cancel);
	tcase_add_test(tc, exercise_never_touches_actual);
	tcase_add_test(tc, flapping_dwell);
	tcase_add_test(tc, corroboration);
	tcase_add_test(tc, chain_flood);
	tcase_add_test(tc, chain_landslide);
	tcase_add_test(tc, chain_forest_fire_and_plume);
	tcase_add_test(tc, count_rule);
	tcase_add_test(tc, exercise_separation);
	tcase_add_test(tc, monitoring_gap);
	tcase_add_test(tc, reload_mid_incident);
	tcase_add_test(tc, determinism);
	tcase_add_test(tc, partitioned_equals_single);
	tcase_add_test(tc, reopen_after_abort);
	tcase_add_test(tc, ended_inputs_leave_memory);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	const char *rp = getenv("WF_REGIONS");
	const char *src = getenv("WF_SOURCE_ROOT");
	if (!rp || !src) {
		fprintf(stderr, "WF_REGIONS and WF_SOURCE_ROOT must be set (meson test does)\n");
		return 1;
	}
	struct wf_region_error re;
	if (wf_region_table_load(rp, &regions, &re) < 0) {
		fprintf(stderr, "%s:%u: %s\n", rp, re.line, re.message);
		return 1;
	}
	snprintf(rules_path, sizeof rules_path, "%s/deploy/fusion-rules.conf", src);
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	wf_region_table_free(regions);
	return failed ? 1 : 0;
}
