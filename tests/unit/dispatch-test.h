/* Shared fixtures of the dispatcher's unit tests (test-dispatch-*.c): an
 * engine on a fresh LMDB store in a temporary directory, a routing file
 * for 登封市 (410185) with two township stations, the county and the
 * prefecture, warning builders and output lookups. Header-only (static
 * functions): each test program includes it once. */
#ifndef DISPATCH_TEST_H
#define DISPATCH_TEST_H

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dispatch.h"
#include "wf/codec.h"
#include "wf/node.h"
#include "wf/region.h"
#include "wf/store.h"

#define T0 1764669600000LL /* 2025-12-02T10:00:00Z */
#define MIN (60 * 1000LL)

#define TWN_A "410185001000" /* 嵩阳街道 */
#define TWN_B "410185002000" /* 少林街道 */
#define COUNTY "410185000000"

static const char *const routing_text =
	"[station duty-twn-a]\nregion = 410185001000\n"
	"[station duty-twn-b]\nregion = 410185002000\n"
	"[station duty-410185]\nregion = 410185\n"
	"[station duty-4101]\nregion = 410100\n"
	"[operator op-zhang]\nname = 张三\n[operator op-li]\n[operator op-wang]\n"
	"[route everything]\nchannels = duty, broadcast, cap, sms\n";

struct fx {
	char dir[256];
	struct wf_store *store;
	struct dsp_engine *e;
	struct wf_region_table *regions;
	struct dsp_config cfg;
};

static struct fx fx;

__attribute__((unused)) static void fx_open_cfg(const char *routing, const struct dsp_config *cfg)
{
	struct wf_store_options so = { 0 };
	struct dsp_routing r;
	char err[256];
	const char *rpath = getenv("WF_REGIONS");

	memset(&fx, 0, sizeof fx);
	snprintf(fx.dir, sizeof fx.dir, "/tmp/wf-dsp-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fx.dir));
	so.path = fx.dir;
	so.nosync = true;
	so.max_dbs = 32;
	ck_assert_int_eq(wf_store_open(&so, &fx.store), 0);
	if (rpath)
		ck_assert_int_eq(wf_region_table_load(rpath, &fx.regions, NULL), 0);
	ck_assert_msg(dsp_routing_parse("test", routing ? routing : routing_text, fx.regions, &r, err,
					sizeof err) == 0, "%s", err);
	if (cfg)
		fx.cfg = *cfg;
	else
		dsp_config_defaults(&fx.cfg);
	fx.cfg.service = "wf-dispatch-t";
	fx.cfg.cap_sender = "warnfuse@410185.example";
	fx.cfg.cap_sender_name = "登封市应急管理局";
	ck_assert_int_eq(dsp_engine_new(fx.store, &fx.cfg, &r, fx.regions, &fx.e), 0);
}

__attribute__((unused)) static void fx_open(const char *routing)
{
	fx_open_cfg(routing, NULL);
}

__attribute__((unused)) static void fx_close(void)
{
	char cmd[300];
	dsp_engine_free(fx.e);
	wf_store_close(fx.store);
	wf_region_table_free(fx.regions);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx.dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Restarts the engine on the same store (the store stays open). */
__attribute__((unused)) static void fx_reopen_engine(void)
{
	struct dsp_routing r;
	char err[256];
	dsp_engine_free(fx.e);
	ck_assert_msg(dsp_routing_parse("test", routing_text, fx.regions, &r, err, sizeof err) == 0,
		      "%s", err);
	ck_assert_int_eq(dsp_engine_new(fx.store, &fx.cfg, &r, fx.regions, &fx.e), 0);
}

/* Entries of database DBI. */
__attribute__((unused)) static uint64_t fx_count(unsigned dbi)
{
	struct wf_txn *t;
	uint64_t n = 0;
	ck_assert_int_eq(wf_store_txn_begin(fx.store, false, &t), 0);
	ck_assert_int_eq(wf_store_count(t, dbi, &n), 0);
	wf_store_txn_abort(t);
	return n;
}

/* The packed WarningRecord of ID (malloc'd *RET, *LEN) as the engine
 * builds it now: 0, or -ENOENT for a warning it does not know. */
__attribute__((unused)) static int fx_record(const char *id, uint8_t **ret, size_t *len)
{
	struct wf_txn *t;
	ck_assert_int_eq(wf_store_txn_begin(fx.store, false, &t), 0);
	int r = dsp_engine_record(fx.e, t, id, T0, ret, len);
	wf_store_txn_abort(t);
	ck_assert(r == 0 || r == -ENOENT);
	return r;
}

/* A warning version; strings are static. */
__attribute__((unused)) static Wf__V1__Warning mkw(const char *id, uint32_t version, Wf__V1__Level level,
			   Wf__V1__MsgType type, Wf__V1__Status status, int64_t sent)
{
	static char *regions[] = { TWN_A, TWN_B };
	static char refs[8][64];
	static char *refp[8];
	static int nref;
	Wf__V1__Warning w = WF__V1__WARNING__INIT;
	w.id = (char *)id;
	w.version = version;
	w.msg_type = type;
	w.hazard = WF__V1__HAZARD__HAZARD_RAINSTORM;
	w.level = level;
	w.regions = regions;
	w.n_regions = 2;
	w.expires_ms = sent + 6 * 60 * MIN;
	w.headline = "登封市气象台发布暴雨预警";
	w.description = "预计未来6小时嵩阳街道、少林街道降雨量将达100毫米以上。";
	w.instruction = "停止户外活动，注意防范山洪、地质灾害。";
	w.status = status;
	w.review = WF__V1__REVIEW_STATE__REVIEW_PENDING;
	w.producer = "wf-fusion-1";
	w.seq = version;
	w.sent_ms = sent;
	if (type != WF__V1__MSG_TYPE__MSG_TYPE_ALERT) {
		int k = nref++ % 8;
		snprintf(refs[k], sizeof refs[k], "%s@%u", id, version - 1);
		refp[k] = refs[k];
		w.references = &refp[k];
		w.n_references = 1;
	}
	return w;
}

struct call {
	const Wf__V1__Warning *w;
	const Wf__V1__Approval *a;
	const Wf__V1__DutyAck *k;
	const Wf__V1__FollowUp *f;
	int64_t now;
	int result;
	bool tick;
	struct wf_codec_error why;
};

__attribute__((unused)) static int call_fn(struct wf_txn *t, void *ud)
{
	struct call *c = ud;
	dsp_engine_outputs_clear(fx.e);
	memset(&c->why, 0, sizeof c->why);
	if (c->w)
		c->result = dsp_engine_warning(fx.e, t, c->w, c->now, &c->why);
	else if (c->a)
		c->result = dsp_engine_control(fx.e, t, WF_TOPIC_APPROVAL, &c->a->base, c->now, &c->why);
	else if (c->k)
		c->result = dsp_engine_control(fx.e, t, WF_TOPIC_DUTY_ACK, &c->k->base, c->now, &c->why);
	else if (c->f)
		c->result = dsp_engine_control(fx.e, t, WF_TOPIC_DUTY_FOLLOWUP, &c->f->base, c->now,
					       &c->why);
	else
		c->result = dsp_engine_tick(fx.e, t, c->now);
	return c->result < 0 ? c->result : 0;
}

/* Applies W at NOW in its own transaction; returns the engine's result. */
__attribute__((unused)) static int apply_warning(const Wf__V1__Warning *w, int64_t now)
{
	struct call c = { .w = w, .now = now };
	ck_assert_int_eq(wf_store_update(fx.store, call_fn, &c), 0);
	return c.result;
}

__attribute__((unused)) static int approve(const char *op, const char *id, uint32_t version, int64_t now,
		   struct wf_codec_error *why)
{
	Wf__V1__Approval a = WF__V1__APPROVAL__INIT;
	a.operator_ = (char *)op;
	a.warning_id = (char *)id;
	a.version = version;
	a.decision = WF__V1__DECISION__DECISION_APPROVE;
	a.sent_ms = now;
	a.producer = "wfctl";
	a.seq = 1;
	struct call c = { .a = &a, .now = now };
	ck_assert_int_eq(wf_store_update(fx.store, call_fn, &c), 0);
	if (why)
		*why = c.why;
	return c.result;
}

__attribute__((unused)) static int duty_ack(const char *station, const char *id, uint32_t version, int64_t now)
{
	Wf__V1__DutyAck k = WF__V1__DUTY_ACK__INIT;
	k.station = (char *)station;
	k.warning_id = (char *)id;
	k.version = version;
	k.operator_ = "值班员";
	k.acked_ms = now;
	k.producer = "console";
	k.seq = 1;
	struct call c = { .k = &k, .now = now };
	ck_assert_int_eq(wf_store_update(fx.store, call_fn, &c), 0);
	return c.result;
}

__attribute__((unused)) static int tick(int64_t now)
{
	struct call c = { .now = now, .tick = true };
	ck_assert_int_eq(wf_store_update(fx.store, call_fn, &c), 0);
	return c.result;
}

__attribute__((unused)) static int64_t next_due(void)
{
	struct wf_txn *t;
	int64_t due = 0;
	ck_assert_int_eq(wf_store_txn_begin(fx.store, false, &t), 0);
	ck_assert_int_eq(dsp_engine_next_due(fx.e, t, &due), 0);
	wf_store_txn_abort(t);
	return due;
}

/* The delivery record's state, or -1 if there is none. */
__attribute__((unused)) static int delivery(const char *id, uint32_t version, const char *channel, const char *target,
		    struct dsp_delivery *ret)
{
	struct wf_txn *t;
	struct dsp_delivery d;
	ck_assert_int_eq(wf_store_txn_begin(fx.store, false, &t), 0);
	int r = dsp_engine_delivery(fx.e, t, id, version, channel, target, &d);
	wf_store_txn_abort(t);
	if (r < 0)
		return -1;
	if (ret)
		*ret = d;
	return d.state;
}

/* Outputs of the last call whose topic starts with PREFIX. */
__attribute__((unused)) static size_t outputs_to(const char *prefix, const struct dsp_out **first)
{
	const struct dsp_out *o;
	size_t n = dsp_engine_outputs(fx.e, &o), k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(o[i].topic, prefix, strlen(prefix)) == 0) {
			if (k == 0 && first)
				*first = &o[i];
			k++;
		}
	return k;
}

__attribute__((unused)) static Wf__V1__DutyNotice *notice_to(const char *station)
{
	char topic[WF_TOPIC_MAX];
	const struct dsp_out *o = NULL;
	snprintf(topic, sizeof topic, "wf/v1/duty/%s/inbox", station);
	if (outputs_to(topic, &o) == 0)
		return NULL;
	Wf__V1__DutyNotice *n = wf__v1__duty_notice__unpack(NULL, o->len, o->payload);
	ck_assert_ptr_nonnull(n);
	return n;
}

/* Whether the last call queued a notice for STATION. */
__attribute__((unused)) static bool has_notice(const char *station)
{
	Wf__V1__DutyNotice *n = notice_to(station);
	if (n)
		wf__v1__duty_notice__free_unpacked(n, NULL);
	return n != NULL;
}

#endif

