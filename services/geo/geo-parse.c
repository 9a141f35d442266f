/* geo-parse: risk-forecast and slope-sensor CSV feeds (DOMAIN.md §4). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geo.h"

#define SKEW_AHEAD_MS (5 * 60 * 1000LL)
#define MAX_AGE_MS (7 * 24 * 3600 * 1000LL)
#define DAY_MS 86400000.0

static const char *const risk_cols[] = { "zone", "region", "issued", "valid_from", "valid_to",
					 "level" };
static const char *const sensor_cols[] = { "sensor", "time", "displacement_mm", "crack_mm",
					   "rain_24h_mm" };

#define FAIL(k_, ...)                                                                         \
	do {                                                                                  \
		snprintf(rd->err, sizeof rd->err, __VA_ARGS__);                               \
		k = (k_);                                                                     \
		goto out;                                                                     \
	} while (0)

static int grow(void **p, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : 64;
	void *q = realloc(*p, nc * elem);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = nc;
	return 0;
}

static bool time_ok(int64_t t, int64_t now_ms)
{
	return t <= now_ms + SKEW_AHEAD_MS && t >= now_ms - MAX_AGE_MS;
}

/* --- risk forecasts --- */

struct risk_row {
	char zone[WF_FEED_STATION_MAX + 1];
	char region[13];
	int64_t issued, from, to;
	long level;
	unsigned line;
	bool skip;
};

static int cmp_risk(const void *a, const void *b)
{
	const struct risk_row *x = a, *y = b;
	int c = strcmp(x->zone, y->zone);

	if (c)
		return c;
	if (x->from != y->from)
		return x->from < y->from ? -1 : 1;
	if (x->issued != y->issued)
		return x->issued < y->issued ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

static struct geo_zone_state *zone_find(struct geo_state *s, const char *key)
{
	for (size_t i = 0; i < s->nzones; i++)
		if (strcmp(s->zones[i].key, key) == 0)
			return &s->zones[i];
	return NULL;
}

static int zone_set(struct geo_state *s, const char *key, const char *id)
{
	struct geo_zone_state *z = zone_find(s, key);

	if (!z) {
		if (!s->zones) {
			s->zones = calloc(GEO_MAX_ZONES, sizeof(*s->zones));
			if (!s->zones)
				return -ENOMEM;
		}
		if (s->nzones < GEO_MAX_ZONES)
			z = &s->zones[s->nzones++];
		else {
			z = &s->zones[s->zone_next];
			s->zone_next = (s->zone_next + 1) % GEO_MAX_ZONES;
		}
		snprintf(z->key, sizeof z->key, "%s", key);
	}
	snprintf(z->last_id, sizeof z->last_id, "%s", id);
	return 0;
}

static Wf__V1__Level risk_level(const struct geo_state *s, long level)
{
	if (s->legacy5) /* 3 注意级 yellow, 4 预警级 orange, 5 警报级 red; 1-2 not issued */
		return level == 5   ? WF__V1__LEVEL__LEVEL_I
		       : level == 4 ? WF__V1__LEVEL__LEVEL_II
		       : level == 3 ? WF__V1__LEVEL__LEVEL_III
				    : WF__V1__LEVEL__LEVEL_NONE;
	return (Wf__V1__Level)level; /* 1 一级 red .. 4 四级 blue */
}

static int parse_risk(struct geo_state *s, struct wf_feed_reader *rd, int64_t now_ms,
		      struct wf_adapter_sink *sink)
{
	struct risk_row *rows = NULL;
	size_t n = 0, cap = 0;
	int k = wf_feed_header(rd, risk_cols, 6);

	if (k < 0)
		return k;
	while ((k = wf_feed_next(rd)) == 1) {
		struct risk_row r = { .line = rd->lineno };
		const char *zone;

		if (rd->nfield != 6)
			FAIL(-EBADMSG, "line %u: %zu fields, expected 6%s", rd->lineno, rd->nfield,
			     rd->nfield < 6 ? " (truncated record?)" : "");
		if ((k = wf_feed_station(rd, 0, "zone", &zone)) < 0 ||
		    (k = wf_feed_region(rd, 1, "region", s->regions, r.region)) < 0 ||
		    (k = wf_feed_time(rd, 2, "issued", &r.issued)) < 0 ||
		    (k = wf_feed_time(rd, 3, "valid_from", &r.from)) < 0 ||
		    (k = wf_feed_time(rd, 4, "valid_to", &r.to)) < 0 ||
		    (k = wf_feed_int(rd, 5, "level", 0, s->legacy5 ? 5 : 4, false, &r.level, NULL)) <
			    0)
			goto out;
		snprintf(r.zone, sizeof r.zone, "%s", zone);
		if (!time_ok(r.issued, now_ms))
			FAIL(-EINVAL, "line %u: issued %s is %s (allowed: 7 days back to 5 minutes ahead)",
			     rd->lineno, rd->field[2], r.issued > now_ms ? "in the future" : "too old");
		if (r.to <= r.from || r.to <= r.issued || r.to - r.from > 7 * (int64_t)DAY_MS)
			FAIL(-EINVAL,
			     "line %u: valid_to must be after valid_from and issued, within 7 days",
			     rd->lineno);
		if (n == WF_FEED_ROWS_MAX)
			FAIL(-E2BIG, "more than %u records", WF_FEED_ROWS_MAX);
		if (grow((void **)&rows, &cap, n, sizeof(*rows)) < 0)
			FAIL(-ENOMEM, "out of memory");
		rows[n++] = r;
	}
	if (k < 0)
		goto out;
	if (n)
		qsort(rows, n, sizeof(*rows), cmp_risk);
	for (size_t i = 1; i < n; i++) {
		struct risk_row *a = &rows[i - 1], *b = &rows[i];
		if (strcmp(a->zone, b->zone) == 0 && a->from == b->from && a->issued == b->issued) {
			if (a->level != b->level || strcmp(a->region, b->region) != 0)
				FAIL(-EINVAL, "line %u: zone %s: a different forecast with the same "
					      "issued and valid_from as line %u",
				     b->line, b->zone, a->line);
			b->skip = true;
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct risk_row *r = &rows[i];
		Wf__V1__Level lv = risk_level(s, r->level);
		char key[80], id[128], tf[32], ti[32], text[256], prev[128] = "";
		struct geo_zone_state *z;
		struct wf_feed_event e = { 0 };

		if (r->skip)
			continue;
		wf_feed_id_time(r->from, tf, sizeof tf);
		wf_feed_id_time(r->issued, ti, sizeof ti);
		snprintf(key, sizeof key, "%s:%s", r->zone, tf);
		snprintf(id, sizeof id, "geo:risk:%s:%s:%s", r->zone, tf, ti);
		z = zone_find(s, key);
		if (z) {
			if (strcmp(z->last_id, id) == 0)
				continue; /* the same forecast again (duplicate file) */
			snprintf(prev, sizeof prev, "%s", z->last_id);
		}
		if (r->level == 0 || lv == WF__V1__LEVEL__LEVEL_NONE ||
		    (s->min_level != WF__V1__LEVEL__LEVEL_NONE && lv > s->min_level)) {
			/* lifted, or below what is published: cancels a running chain */
			if (!prev[0])
				continue;
			e.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_CANCEL;
			e.level = WF__V1__LEVEL__LEVEL_NONE;
			snprintf(text, sizeof text, "zone %s: geological-hazard risk forecast lifted",
				 r->zone);
		} else {
			e.msg_type = prev[0] ? WF__V1__MSG_TYPE__MSG_TYPE_UPDATE
					     : WF__V1__MSG_TYPE__MSG_TYPE_ALERT;
			e.level = lv;
			snprintf(text, sizeof text,
				 "zone %s: geological-hazard meteorological risk level %ld (%s), "
				 "valid from %s",
				 r->zone, r->level, wf_feed_level_name(lv), tf);
		}
		e.agency = WF__V1__AGENCY__AGENCY_GEO;
		e.hazard = WF__V1__HAZARD__HAZARD_GEO_RISK;
		e.id = id;
		e.region = r->region;
		e.station = r->zone;
		e.certainty = lv == WF__V1__LEVEL__LEVEL_I || lv == WF__V1__LEVEL__LEVEL_II
				      ? WF__V1__CERTAINTY__CERTAINTY_LIKELY
				      : WF__V1__CERTAINTY__CERTAINTY_POSSIBLE;
		e.status = rd->status;
		e.reference = prev[0] ? prev : NULL;
		e.has_measurement = true;
		e.value = (double)r->level;
		e.threshold = (double)r->level;
		e.unit = "1";
		e.criterion = s->legacy5 ? "geo_risk_grade5" : "geo_risk_level";
		/* the forecast's onset may lie ahead: observed is when it was made */
		e.observed_ms = r->issued;
		e.issued_ms = r->issued;
		e.expires_ms = r->to;
		e.text = text;
		if ((k = wf_feed_emit(sink, &e)) < 0 || (k = zone_set(s, key, id)) < 0)
			FAIL(k, "%s", k == -ENOSPC ? "too many events" : "out of memory");
	}
	k = 0;
out:
	free(rows);
	return k;
}

/* --- slope sensors --- */

struct sensor_row {
	struct geo_sensor *se;
	int64_t t;
	double disp, crack, rain;
	unsigned line;
	bool skip;
};

static int cmp_sensor_row(const void *a, const void *b)
{
	const struct sensor_row *x = a, *y = b;

	if (x->se != y->se)
		return x->se < y->se ? -1 : 1;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

static bool same(double a, double b)
{
	return (isnan(a) && isnan(b)) || a == b;
}

static bool same_row(const struct sensor_row *a, double disp, double crack, double rain)
{
	return same(a->disp, disp) && same(a->crack, crack) && same(a->rain, rain);
}

/* Level of VALUE against STEPS (blue..red); sets *ret_threshold. */
static Wf__V1__Level steps_level(const struct geo_steps *st, double value, double *ret_threshold)
{
	for (int i = 3; i >= 0; i--)
		if (!isnan(st->v[i]) && value >= st->v[i]) {
			*ret_threshold = st->v[i];
			return (Wf__V1__Level)(4 - i);
		}
	return WF__V1__LEVEL__LEVEL_NONE;
}

static int sensor_event(const struct geo_state *s, const struct geo_sensor *se, int64_t t,
			Wf__V1__Status status, Wf__V1__Level lv, double value, double thr,
			const char *unit, const char *crit, const char *what,
			struct wf_adapter_sink *sink)
{
	char ts[32], id[128], text[256];
	struct wf_feed_event e = {
		.agency = WF__V1__AGENCY__AGENCY_GEO, .hazard = se->hazard, .id = id,
		.region = se->region, .station = se->id, .level = lv,
		.certainty = WF__V1__CERTAINTY__CERTAINTY_OBSERVED, .status = status,
		.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_ALERT, .has_point = se->has_point,
		.lat = se->lat, .lon = se->lon, .has_measurement = true, .value = value,
		.threshold = thr, .unit = unit, .criterion = crit, .observed_ms = t,
		.expires_ms = t + s->validity_ms, .text = text,
	};

	wf_feed_id_time(t, ts, sizeof ts);
	snprintf(id, sizeof id, "geo:%s:%s:%s", se->id, ts, crit);
	snprintf(text, sizeof text, "%s: %s %.3g %s (threshold %.3g %s, %s)",
		 se->name ? se->name : se->id, what, value, unit, thr, unit, wf_feed_level_name(lv));
	return wf_feed_emit(sink, &e);
}

static int grade_sensor(const struct geo_state *s, struct geo_sensor *se,
			const struct sensor_row *r, Wf__V1__Status status,
			struct wf_adapter_sink *sink)
{
	const struct geo_reading *prev = NULL;
	double v = NAN, thr;
	Wf__V1__Level lv;
	int k;

	for (size_t i = se->nhist; i-- > 0;) {
		int64_t dt = r->t - se->hist[i].t;
		if (dt < s->min_interval_ms)
			continue;
		if (dt <= s->max_interval_ms)
			prev = &se->hist[i];
		break;
	}
	if (prev) {
		double days = (double)(r->t - prev->t) / DAY_MS;

		if (!isnan(r->disp) && !isnan(prev->disp)) {
			v = round((r->disp - prev->disp) / days * 1000.0) / 1000.0;
			lv = steps_level(&se->velocity, v, &thr);
			if (lv && (k = sensor_event(s, se, r->t, status, lv, v, thr, "mm/d",
						    "displacement_rate", "displacement rate",
						    sink)) < 0)
				return k;
			/* acceleration: the classic precursor of failure */
			if (!isnan(prev->vdisp) && !isnan(se->velocity.v[0]) &&
			    v >= se->velocity.v[0]) {
				double a = round((v - prev->vdisp) / days * 1000.0) / 1000.0;
				if (a >= se->accel && s->accel_level &&
				    (k = sensor_event(s, se, r->t, status, s->accel_level, a,
						      se->accel, "mm/d2", "displacement_accel",
						      "displacement accelerating", sink)) < 0)
					return k;
			}
		}
		if (!isnan(r->crack) && !isnan(prev->crack)) {
			double c = round((r->crack - prev->crack) / days * 1000.0) / 1000.0;
			lv = steps_level(&se->crack_rate, c, &thr);
			if (lv && (k = sensor_event(s, se, r->t, status, lv, c, thr, "mm/d",
						    "crack_rate", "crack opening rate", sink)) < 0)
				return k;
		}
	}
	if (!isnan(r->rain)) {
		lv = steps_level(&se->rain_24h, r->rain, &thr);
		if (lv && (k = sensor_event(s, se, r->t, status, lv, r->rain, thr, "mm", "rain_24h",
					    "site rainfall in 24 h", sink)) < 0)
			return k;
	}
	if (se->nhist == GEO_HIST) {
		memmove(se->hist, se->hist + 1, (GEO_HIST - 1) * sizeof(se->hist[0]));
		se->nhist--;
	}
	se->hist[se->nhist++] = (struct geo_reading){ r->t, r->disp, r->crack, r->rain, v };
	return 0;
}

static int parse_sensors(struct geo_state *s, struct wf_feed_reader *rd, int64_t now_ms,
			 struct wf_adapter_sink *sink)
{
	struct sensor_row *rows = NULL;
	size_t n = 0, cap = 0;
	int k = wf_feed_header(rd, sensor_cols, 5);

	if (k < 0)
		return k;
	while ((k = wf_feed_next(rd)) == 1) {
		struct sensor_row r = { .line = rd->lineno };
		const char *id;
		bool hd, hc, hr;

		if (rd->nfield != 5)
			FAIL(-EBADMSG, "line %u: %zu fields, expected 5%s", rd->lineno, rd->nfield,
			     rd->nfield < 5 ? " (truncated record?)" : "");
		if ((k = wf_feed_station(rd, 0, "sensor", &id)) < 0 ||
		    (k = wf_feed_time(rd, 1, "time", &r.t)) < 0 ||
		    (k = wf_feed_double(rd, 2, "displacement_mm", -1e5, 1e5, true, &r.disp, &hd)) <
			    0 ||
		    (k = wf_feed_double(rd, 3, "crack_mm", 0, 1e4, true, &r.crack, &hc)) < 0 ||
		    (k = wf_feed_double(rd, 4, "rain_24h_mm", 0, 2000, true, &r.rain, &hr)) < 0)
			goto out;
		if (!hd)
			r.disp = NAN;
		if (!hc)
			r.crack = NAN;
		if (!hr)
			r.rain = NAN;
		if (!hd && !hc && !hr)
			FAIL(-EINVAL, "line %u: no measurement", rd->lineno);
		r.se = geo_sensor_find(s, id);
		if (!r.se)
			FAIL(-ENOENT, "line %u: unknown sensor '%s' (not in the configuration)",
			     rd->lineno, id);
		if (!time_ok(r.t, now_ms))
			FAIL(-EINVAL, "line %u: time %s is %s (allowed: 7 days back to 5 minutes ahead)",
			     rd->lineno, rd->field[1], r.t > now_ms ? "in the future" : "too old");
		if (n == WF_FEED_ROWS_MAX)
			FAIL(-E2BIG, "more than %u records", WF_FEED_ROWS_MAX);
		if (grow((void **)&rows, &cap, n, sizeof(*rows)) < 0)
			FAIL(-ENOMEM, "out of memory");
		rows[n++] = r;
	}
	if (k < 0)
		goto out;
	if (n)
		qsort(rows, n, sizeof(*rows), cmp_sensor_row);
	for (size_t i = 0; i < n; i++) {
		struct sensor_row *r = &rows[i];
		struct geo_sensor *se = r->se;

		if (i > 0 && rows[i - 1].se == se && rows[i - 1].t == r->t) {
			if (!same_row(&rows[i - 1], r->disp, r->crack, r->rain))
				FAIL(-EINVAL, "line %u: sensor %s: a different reading for the same "
					      "time as line %u",
				     r->line, se->id, rows[i - 1].line);
			r->skip = true;
			continue;
		}
		if (se->nhist && r->t <= se->hist[se->nhist - 1].t) {
			r->skip = true; /* already received (duplicate file) or superseded */
			for (size_t h = 0; h < se->nhist; h++)
				if (se->hist[h].t == r->t &&
				    !(same(se->hist[h].disp, r->disp) &&
				      same(se->hist[h].crack, r->crack) &&
				      same(se->hist[h].rain, r->rain)))
					FAIL(-EINVAL, "line %u: sensor %s: a different reading for a "
						      "time already received in an earlier file",
					     r->line, se->id);
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (rows[i].skip)
			continue;
		k = grade_sensor(s, rows[i].se, &rows[i], rd->status, sink);
		if (k < 0)
			FAIL(k, "%s", k == -ENOSPC ? "too many events" : "out of memory");
	}
	k = 0;
out:
	free(rows);
	return k;
}

int geo_parse(void *state, const char *name, const uint8_t *buf, size_t len, int64_t now_ms,
	      struct wf_adapter_sink *sink)
{
	struct geo_state *s = state;
	struct wf_feed_reader *rd = malloc(sizeof(*rd));
	char head[64] = "";
	int k;

	if (!rd)
		return -ENOMEM;
	k = wf_feed_open(rd, buf, len, GEO_MAX_FILE);
	if (k == 0) {
		if (wf_feed_peek_header(rd, head, sizeof head) < 0) {
			snprintf(rd->err, sizeof rd->err, "no header line");
			k = -EBADMSG;
		} else if (strncmp(head, "zone,", 5) == 0) {
			k = parse_risk(s, rd, now_ms, sink);
		} else if (strncmp(head, "sensor,", 7) == 0) {
			k = parse_sensors(s, rd, now_ms, sink);
		} else {
			snprintf(rd->err, sizeof rd->err,
				 "unknown feed: the header must start with 'zone,' (risk forecast) "
				 "or 'sensor,' (slope sensors)");
			k = -EBADMSG;
		}
	}
	if (k < 0)
		wf_adapter_reason(sink, "%s", rd->err);
	free(rd);
	return k;
}
