/* water-parse: the gauge/reservoir CSV feed and its grading
 * (水利部《水情预警发布管理办法（试行）》, DOMAIN.md §3). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "water.h"

#define SKEW_AHEAD_MS (5 * 60 * 1000LL)
#define MAX_AGE_MS (7 * 24 * 3600 * 1000LL)

static const char *const cols[] = { "station", "time", "stage_m", "flow_m3s" };

struct row {
	struct water_station *st;
	int64_t t;
	double stage, flow; /* NAN when absent */
	unsigned line;
	bool skip;
};

struct grade {
	Wf__V1__Level level;
	double value, threshold;
	const char *unit, *criterion, *label;
};

static bool better(Wf__V1__Level a, Wf__V1__Level b)
{
	return a != WF__V1__LEVEL__LEVEL_NONE && (b == WF__V1__LEVEL__LEVEL_NONE || a < b);
}

/* ABOVE: value >= threshold counts (else value <= threshold). */
static void consider(struct grade *g, Wf__V1__Level level, double value, double threshold,
		     bool above, const char *unit, const char *criterion, const char *label)
{
	if (isnan(value) || isnan(threshold))
		return;
	if (above ? !(value >= threshold) : !(value <= threshold))
		return;
	if (!better(level, g->level))
		return;
	*g = (struct grade){ level, value, threshold, unit, criterion, label };
}

static double pick(double station, double global)
{
	return isnan(station) ? global : station;
}

static void grade_flood(const struct water_state *s, const struct water_station *st,
			const struct row *r, struct grade *g)
{
	double appr = pick(st->approach_m, s->approach_m);
	double ratio = pick(st->approach_flow_ratio, s->approach_flow_ratio);

	memset(g, 0, sizeof(*g));
	if (st->reservoir) {
		consider(g, WF__V1__LEVEL__LEVEL_I, r->stage, st->check, true, "m", "level_check",
			 "校核洪水位 check flood level");
		consider(g, WF__V1__LEVEL__LEVEL_II, r->stage, st->design, true, "m",
			 "level_design", "设计洪水位 design flood level");
		consider(g, WF__V1__LEVEL__LEVEL_III, r->stage, st->flood_limit, true, "m",
			 "level_flood_limit", "汛限水位 flood-season limit");
		consider(g, WF__V1__LEVEL__LEVEL_IV, r->stage, st->flood_limit - appr, true, "m",
			 "level_flood_limit_approach", "approaching 汛限水位");
		return;
	}
	consider(g, WF__V1__LEVEL__LEVEL_I, r->stage, st->record, true, "m", "stage_record",
		 "历史最高水位 record stage");
	consider(g, WF__V1__LEVEL__LEVEL_I, r->flow, st->flow50, true, "m3/s", "flow_50y",
		 "50-year flow");
	consider(g, WF__V1__LEVEL__LEVEL_II, r->stage, st->guaranteed, true, "m",
		 "stage_guaranteed", "保证水位 guaranteed stage");
	consider(g, WF__V1__LEVEL__LEVEL_II, r->flow, st->flow20, true, "m3/s", "flow_20y",
		 "20-year flow");
	consider(g, WF__V1__LEVEL__LEVEL_III, r->stage, st->warning, true, "m", "stage_warning",
		 "警戒水位 warning stage");
	consider(g, WF__V1__LEVEL__LEVEL_III, r->flow, st->flow5, true, "m3/s", "flow_5y",
		 "5-year flow");
	consider(g, WF__V1__LEVEL__LEVEL_IV, r->stage, st->warning - appr, true, "m",
		 "stage_warning_approach", "approaching 警戒水位");
	consider(g, WF__V1__LEVEL__LEVEL_IV, r->flow, st->flow5 * ratio, true, "m3/s",
		 "flow_5y_approach", "approaching the 5-year flow");
}

static void grade_low(const struct water_state *s, const struct water_station *st,
		      const struct row *r, struct grade *g)
{
	double appr = pick(st->approach_m, s->approach_m);

	memset(g, 0, sizeof(*g));
	if (st->reservoir)
		return;
	consider(g, WF__V1__LEVEL__LEVEL_I, r->stage, st->record_low, false, "m",
		 "stage_record_low", "历史最低水位 record low stage");
	consider(g, WF__V1__LEVEL__LEVEL_II, r->stage, st->normal_min, false, "m",
		 "stage_normal_min", "常年同期最低水位 normal-period minimum");
	consider(g, WF__V1__LEVEL__LEVEL_III, r->stage, st->drought, false, "m", "stage_drought",
		 "旱警水位 drought warning stage");
	consider(g, WF__V1__LEVEL__LEVEL_IV, r->stage, st->drought + appr, false, "m",
		 "stage_drought_approach", "approaching 旱警水位");
}

/* The latest earlier reading with a stage, within the trend window. */
static const struct water_reading *previous(const struct water_state *s,
					    const struct water_station *st, int64_t t)
{
	for (size_t i = st->nhist; i-- > 0;) {
		const struct water_reading *h = &st->hist[i];
		if (h->t >= t || isnan(h->stage))
			continue;
		return t - h->t <= s->trend_window_ms ? h : NULL;
	}
	return NULL;
}

static void push(struct water_station *st, const struct row *r)
{
	if (st->nhist == WATER_HIST) {
		memmove(st->hist, st->hist + 1, (WATER_HIST - 1) * sizeof(st->hist[0]));
		st->nhist--;
	}
	st->hist[st->nhist++] = (struct water_reading){ r->t, r->stage, r->flow };
}

static int emit_family(const struct water_state *s, struct water_station *st, const struct row *r,
		       enum water_family fam, const struct grade *g, const char *trend,
		       Wf__V1__Status status, struct wf_adapter_sink *sink)
{
	static const char *const tok[] = { "flood", "low" };
	char ts[32], id[128], text[512], ref[128];
	const char *who = st->name ? st->name : st->id;
	const char *ftok = fam == WATER_FLOOD && st->reservoir ? "reservoir" : tok[fam];
	struct wf_feed_event e = { 0 };

	if (g->level == WF__V1__LEVEL__LEVEL_NONE && !st->active[fam][0])
		return 0;
	wf_feed_id_time(r->t, ts, sizeof ts);
	snprintf(id, sizeof id, "water:%s:%s:%s", st->id, ts, ftok);
	snprintf(ref, sizeof ref, "%s", st->active[fam]);
	e.agency = WF__V1__AGENCY__AGENCY_WATER;
	e.hazard = fam == WATER_LOW ? WF__V1__HAZARD__HAZARD_LOW_WATER
		   : st->reservoir  ? WF__V1__HAZARD__HAZARD_RESERVOIR
				    : WF__V1__HAZARD__HAZARD_FLOOD;
	e.id = id;
	e.region = st->region;
	e.station = st->id;
	e.level = g->level;
	e.certainty = WF__V1__CERTAINTY__CERTAINTY_OBSERVED;
	e.status = status;
	e.has_point = st->has_point;
	e.lat = st->lat;
	e.lon = st->lon;
	e.observed_ms = r->t;
	e.expires_ms = r->t + s->validity_ms;
	e.has_measurement = true;
	if (g->level != WF__V1__LEVEL__LEVEL_NONE) {
		e.msg_type = ref[0] ? WF__V1__MSG_TYPE__MSG_TYPE_UPDATE
				    : WF__V1__MSG_TYPE__MSG_TYPE_ALERT;
		e.value = g->value;
		e.threshold = g->threshold;
		e.unit = g->unit;
		e.criterion = g->criterion;
		snprintf(text, sizeof text, "%s: %s %.2f %s, %s %.2f %s (%s level); %s", who,
			 strcmp(g->unit, "m") == 0 ? "stage" : "flow", g->value, g->unit, g->label,
			 g->threshold, g->unit, wf_feed_level_name(g->level), trend);
		snprintf(st->active[fam], sizeof st->active[fam], "%s", id);
	} else {
		/* back below every threshold: the source's own all-clear */
		e.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_CANCEL;
		e.value = r->stage;
		e.threshold = r->stage;
		e.unit = "m";
		e.criterion = fam == WATER_LOW ? "low_clear" : "flood_clear";
		snprintf(text, sizeof text, "%s: stage %.2f m, below every %s threshold; %s", who,
			 r->stage, fam == WATER_LOW ? "low-water" : "flood", trend);
		st->active[fam][0] = '\0';
	}
	e.reference = ref[0] ? ref : NULL;
	e.text = text;
	return wf_feed_emit(sink, &e);
}

static int grade_row(const struct water_state *s, struct water_station *st, const struct row *r,
		     Wf__V1__Status status, struct wf_adapter_sink *sink)
{
	const struct water_reading *prev = previous(s, st, r->t);
	double rate = NAN, rise = pick(st->rise_rate, s->rise_rate);
	char trend[64] = "trend unknown";
	struct grade g;
	int k;

	if (prev && !isnan(r->stage)) {
		rate = (r->stage - prev->stage) / ((double)(r->t - prev->t) / 3600000.0);
		rate = round(rate * 1000.0) / 1000.0; /* mm/h resolution, no float noise */
		snprintf(trend, sizeof trend, "%s %.2f m/h",
			 rate > 0.005 ? "rising" : rate < -0.005 ? "falling" : "steady", rate);
	}
	if (!isnan(r->stage) || !isnan(r->flow)) {
		grade_flood(s, st, r, &g);
		/* a flow-only reading cannot clear a stage alert */
		if (!(g.level == WF__V1__LEVEL__LEVEL_NONE && isnan(r->stage))) {
			k = emit_family(s, st, r, WATER_FLOOD, &g, trend, status, sink);
			if (k < 0)
				return k;
		}
	}
	if (!isnan(r->stage) && !isnan(st->drought)) {
		grade_low(s, st, r, &g);
		k = emit_family(s, st, r, WATER_LOW, &g, trend, status, sink);
		if (k < 0)
			return k;
	}
	if (!isnan(rate) && rate >= rise) {
		char ts[32], id[128], text[256];
		struct wf_feed_event e = {
			.agency = WF__V1__AGENCY__AGENCY_WATER,
			.hazard = st->reservoir ? WF__V1__HAZARD__HAZARD_RESERVOIR
						: WF__V1__HAZARD__HAZARD_FLOOD,
			.id = id, .region = st->region, .station = st->id,
			.level = WF__V1__LEVEL__LEVEL_NONE,
			.certainty = WF__V1__CERTAINTY__CERTAINTY_OBSERVED, .status = status,
			.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_ALERT,
			.has_point = st->has_point, .lat = st->lat, .lon = st->lon,
			.has_measurement = true, .value = rate, .threshold = rise, .unit = "m/h",
			.criterion = "stage_rise_rate", .observed_ms = r->t,
			.expires_ms = r->t + s->validity_ms, .text = text,
		};
		wf_feed_id_time(r->t, ts, sizeof ts);
		snprintf(id, sizeof id, "water:%s:%s:rise", st->id, ts);
		snprintf(text, sizeof text, "%s: stage %.2f m rising %.2f m/h (since %.2f m)",
			 st->name ? st->name : st->id, r->stage, rate, prev->stage);
		k = wf_feed_emit(sink, &e);
		if (k < 0)
			return k;
	}
	return 0;
}

static int cmp_row(const void *a, const void *b)
{
	const struct row *x = a, *y = b;

	if (x->st != y->st)
		return x->st < y->st ? -1 : 1;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

static bool same(double a, double b)
{
	return (isnan(a) && isnan(b)) || a == b;
}

/* Against the history of earlier files: 1 skip (duplicate or stale), 0 new,
 * -1 conflict. */
static int against_history(const struct water_station *st, const struct row *r)
{
	if (!st->nhist || r->t > st->hist[st->nhist - 1].t)
		return 0;
	for (size_t i = 0; i < st->nhist; i++)
		if (st->hist[i].t == r->t)
			return same(st->hist[i].stage, r->stage) && same(st->hist[i].flow, r->flow)
				       ? 1
				       : -1;
	return 1; /* older than what we have: superseded */
}

int water_parse(void *state, const char *name, const uint8_t *buf, size_t len, int64_t now_ms,
		struct wf_adapter_sink *sink)
{
	struct water_state *s = state;
	struct wf_feed_reader *rd = malloc(sizeof(*rd));
	struct row *rows = NULL;
	size_t n = 0, cap = 0;
	int k;

	if (!rd)
		return -ENOMEM;
	k = wf_feed_open(rd, buf, len, WATER_MAX_FILE);
	if (k == 0)
		k = wf_feed_header(rd, cols, 4);
	while (k == 0 && (k = wf_feed_next(rd)) == 1) {
		struct row r = { .stage = NAN, .flow = NAN, .line = rd->lineno };
		const char *id;
		bool hs = false, hf = false;

		k = 0;
		if (rd->nfield != 4) {
			snprintf(rd->err, sizeof rd->err, "line %u: %zu fields, expected 4%s",
				 rd->lineno, rd->nfield, rd->nfield < 4 ? " (truncated record?)" : "");
			k = -EBADMSG;
			break;
		}
		if ((k = wf_feed_station(rd, 0, "station", &id)) < 0 ||
		    (k = wf_feed_time(rd, 1, "time", &r.t)) < 0 ||
		    (k = wf_feed_double(rd, 2, "stage_m", -500, 9000, true, &r.stage, &hs)) < 0 ||
		    (k = wf_feed_double(rd, 3, "flow_m3s", 0, 1e6, true, &r.flow, &hf)) < 0)
			break;
		if (!hs)
			r.stage = NAN;
		if (!hf)
			r.flow = NAN;
		if (!hs && !hf) {
			snprintf(rd->err, sizeof rd->err, "line %u: neither stage_m nor flow_m3s",
				 rd->lineno);
			k = -EINVAL;
			break;
		}
		r.st = water_station_find(s, id);
		if (!r.st) {
			snprintf(rd->err, sizeof rd->err,
				 "line %u: unknown station '%s' (not in the configuration)",
				 rd->lineno, id);
			k = -ENOENT;
			break;
		}
		if (r.t > now_ms + SKEW_AHEAD_MS || r.t < now_ms - MAX_AGE_MS) {
			snprintf(rd->err, sizeof rd->err,
				 "line %u: time %s is %s (allowed: 7 days back to 5 minutes ahead)",
				 rd->lineno, rd->field[1],
				 r.t > now_ms ? "in the future" : "too old");
			k = -EINVAL;
			break;
		}
		if (n == WF_FEED_ROWS_MAX) {
			snprintf(rd->err, sizeof rd->err, "more than %u records", WF_FEED_ROWS_MAX);
			k = -E2BIG;
			break;
		}
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			struct row *p = realloc(rows, nc * sizeof(*p));
			if (!p) {
				k = -ENOMEM;
				snprintf(rd->err, sizeof rd->err, "out of memory");
				break;
			}
			rows = p;
			cap = nc;
		}
		rows[n++] = r;
	}
	if (k < 0)
		goto reject;
	if (n)
		qsort(rows, n, sizeof(*rows), cmp_row);
	for (size_t i = 0; i < n; i++) {
		int h;

		if (i > 0 && rows[i].st == rows[i - 1].st && rows[i].t == rows[i - 1].t) {
			if (!same(rows[i].stage, rows[i - 1].stage) ||
			    !same(rows[i].flow, rows[i - 1].flow)) {
				snprintf(rd->err, sizeof rd->err,
					 "line %u: station %s: a different reading for the same time "
					 "as line %u",
					 rows[i].line, rows[i].st->id, rows[i - 1].line);
				k = -EINVAL;
				goto reject;
			}
			rows[i].skip = true; /* duplicate record */
			continue;
		}
		h = against_history(rows[i].st, &rows[i]);
		if (h < 0) {
			snprintf(rd->err, sizeof rd->err,
				 "line %u: station %s: a different reading for a time already "
				 "received in an earlier file",
				 rows[i].line, rows[i].st->id);
			k = -EINVAL;
			goto reject;
		}
		rows[i].skip = h > 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (rows[i].skip)
			continue;
		k = grade_row(s, rows[i].st, &rows[i], rd->status, sink);
		if (k < 0) {
			snprintf(rd->err, sizeof rd->err, "%s", k == -ENOSPC ? "too many events"
									     : "out of memory");
			goto reject;
		}
		push(rows[i].st, &rows[i]);
	}
	free(rows);
	free(rd);
	return 0;
reject:
	wf_adapter_reason(sink, "%s", rd->err);
	free(rows);
	free(rd);
	return k;
}
