/* fire-parse: danger ratings, hotspots and 119 incident CSV feeds
 * (DOMAIN.md §5). */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fire.h"

#define SKEW_AHEAD_MS (5 * 60 * 1000LL)
#define MAX_AGE_MS (7 * 24 * 3600 * 1000LL)

enum feed { RATING, HOTSPOT, INCIDENT };

static const char *const rating_cols[] = { "region", "issued", "valid_to", "danger" };
static const char *const hotspot_cols[] = { "hotspot", "time", "lat", "lon", "confidence",
					    "source" };
static const char *const incident_cols[] = { "incident", "time", "region", "type", "status",
					     "area_ha", "deaths", "injured", "text" };
static const char *const types[] = { "forest", "grassland", "urban", "hazmat", "explosion",
				     NULL };
static const char *const statuses[] = { "new", "update", "closed", NULL };

struct row {
	char key[96];   /* duplicate detection */
	uint64_t sig;   /* FNV-1a of the record as read: same vs different */
	unsigned line;
	bool skip;
	char id[WF_FEED_STATION_MAX + 1];
	char region[13];
	int64_t t, to;
	double lat, lon, conf, area;
	long danger, deaths, injured;
	int type, status;
	char source[WF_FEED_STATION_MAX + 1];
	char *text;     /* malloc'd (incidents), else NULL */
};

static uint64_t fnv(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (h ^ ',') * 1099511628211ULL;
}

static void rows_free(struct row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(rows[i].text);
	free(rows);
}

static int cmp_row(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : (x->line < y->line ? -1 : x->line > y->line);
}

/* Event size (森林防火条例 Art. 40; the same bounds as production-safety
 * accidents for deaths/injuries): 特别重大 I, 重大 II, 较大 III, 一般 IV. */
static Wf__V1__Level incident_grade(const struct fire_state *s, const struct row *r)
{
	bool forest = r->type <= 1;

	for (int g = 2; g >= 0; g--)
		if ((forest && r->area >= s->area_ha[g]) || r->deaths >= s->deaths[g] ||
		    r->injured >= s->injured[g])
			return (Wf__V1__Level)(3 - g);
	return WF__V1__LEVEL__LEVEL_IV;
}

static int emit_row(const struct fire_state *s, enum feed f, const struct row *r,
		    Wf__V1__Status status, struct wf_adapter_sink *sink)
{
	char ts[32], id[128], ref[128], text[1200];
	struct wf_feed_event e = { .agency = WF__V1__AGENCY__AGENCY_FIRE, .id = id,
				   .status = status, .observed_ms = r->t, .text = text,
				   .msg_type = WF__V1__MSG_TYPE__MSG_TYPE_ALERT };

	wf_feed_id_time(r->t, ts, sizeof ts);
	if (f == RATING) {
		const struct fire_map *m = fire_map_for(s, r->region);
		long lowest = r->danger;

		e.level = m->level[r->danger];
		if (e.level == WF__V1__LEVEL__LEVEL_NONE)
			return 0; /* forecast only, no warning signal */
		while (lowest > 1 && m->level[lowest - 1] == e.level)
			lowest--;
		snprintf(id, sizeof id, "fire:danger:%.12s:%s", r->region, ts);
		snprintf(text, sizeof text, "森林火险等级 %ld 级 (forest fire danger %ld of 5)",
			 r->danger, r->danger);
		e.hazard = WF__V1__HAZARD__HAZARD_FIRE_DANGER;
		e.region = r->region;
		e.certainty = WF__V1__CERTAINTY__CERTAINTY_LIKELY;
		e.has_measurement = true;
		e.value = (double)r->danger;
		e.threshold = (double)lowest;
		e.unit = "1";
		e.criterion = "fire_danger_level";
		e.issued_ms = r->t;
		e.expires_ms = r->to;
		return wf_feed_emit(sink, &e);
	}
	if (f == HOTSPOT) {
		const struct fire_area *a = fire_area_find(s, r->lat, r->lon);

		if (!a || r->conf < s->min_confidence)
			return 0; /* outside our areas, or too uncertain */
		snprintf(id, sizeof id, "fire:hotspot:%s:%s", r->id, ts);
		snprintf(text, sizeof text, "satellite hotspot %s (%s) at %.4f,%.4f, confidence %.0f%%, area %s",
			 r->id, r->source, r->lat, r->lon, r->conf, a->name);
		e.hazard = WF__V1__HAZARD__HAZARD_HOTSPOT;
		e.region = a->region;
		e.station = r->id;
		e.level = WF__V1__LEVEL__LEVEL_NONE;
		e.certainty = r->conf >= s->likely_confidence ? WF__V1__CERTAINTY__CERTAINTY_LIKELY
							      : WF__V1__CERTAINTY__CERTAINTY_POSSIBLE;
		e.has_point = true;
		e.lat = r->lat;
		e.lon = r->lon;
		e.has_measurement = true;
		e.value = r->conf;
		e.threshold = s->min_confidence;
		e.unit = "%";
		e.criterion = "hotspot_confidence";
		e.expires_ms = r->t + s->hotspot_validity_ms;
		return wf_feed_emit(sink, &e);
	}
	static const Wf__V1__Hazard hz[] = {
		WF__V1__HAZARD__HAZARD_FOREST_FIRE, WF__V1__HAZARD__HAZARD_FOREST_FIRE,
		WF__V1__HAZARD__HAZARD_URBAN_FIRE, WF__V1__HAZARD__HAZARD_HAZMAT,
		WF__V1__HAZARD__HAZARD_EXPLOSION,
	};
	/* the first report of an incident has the stable id; later reports
	 * update or close it by reference */
	snprintf(ref, sizeof ref, "fire:119:%s", r->id);
	if (r->status == 0)
		snprintf(id, sizeof id, "%s", ref);
	else
		snprintf(id, sizeof id, "fire:119:%s:%s", r->id, ts);
	e.msg_type = r->status == 0   ? WF__V1__MSG_TYPE__MSG_TYPE_ALERT
		     : r->status == 1 ? WF__V1__MSG_TYPE__MSG_TYPE_UPDATE
				      : WF__V1__MSG_TYPE__MSG_TYPE_CANCEL;
	e.reference = r->status ? ref : NULL;
	e.hazard = hz[r->type];
	e.region = r->region;
	e.station = r->id;
	e.level = r->status == 2 ? WF__V1__LEVEL__LEVEL_NONE : incident_grade(s, r);
	e.certainty = WF__V1__CERTAINTY__CERTAINTY_OBSERVED;
	e.expires_ms = r->t + s->incident_validity_ms;
	if (r->type <= 1) {
		e.has_measurement = true;
		e.value = r->area;
		e.threshold = 0;
		e.unit = "ha";
		e.criterion = "burned_area";
	}
	snprintf(text, sizeof text, "119 %s %s: %s, %.1f ha, %ld dead, %ld injured%s%s", types[r->type],
		 statuses[r->status], wf_feed_level_name(e.level), r->area, r->deaths, r->injured,
		 r->text && r->text[0] ? "; " : "", r->text ? r->text : "");
	return wf_feed_emit(sink, &e);
}

static int read_row(const struct fire_state *s, struct wf_feed_reader *rd, enum feed f,
		    int64_t now_ms, struct row *r)
{
	static const size_t ncols[] = { 4, 6, 9 };
	const char *id, *text;
	bool present;
	int k;

	if (rd->nfield != ncols[f]) {
		snprintf(rd->err, sizeof rd->err, "line %u: %zu fields, expected %zu%s", rd->lineno,
			 rd->nfield, ncols[f], rd->nfield < ncols[f] ? " (truncated record?)" : "");
		return -EBADMSG;
	}
	if (f == RATING) {
		if ((k = wf_feed_region(rd, 0, "region", s->regions, r->region)) < 0 ||
		    (k = wf_feed_time(rd, 1, "issued", &r->t)) < 0 ||
		    (k = wf_feed_time(rd, 2, "valid_to", &r->to)) < 0 ||
		    (k = wf_feed_int(rd, 3, "danger", 1, 5, false, &r->danger, NULL)) < 0)
			return k;
		if (r->to <= r->t || r->to - r->t > 7 * 86400000LL) {
			snprintf(rd->err, sizeof rd->err,
				 "line %u: valid_to must be after issued, within 7 days", rd->lineno);
			return -EINVAL;
		}
		snprintf(r->key, sizeof r->key, "%s:%lld", r->region, (long long)r->t);
	} else if (f == HOTSPOT) {
		if ((k = wf_feed_station(rd, 0, "hotspot", &id)) < 0 ||
		    (k = wf_feed_time(rd, 1, "time", &r->t)) < 0 ||
		    (k = wf_feed_double(rd, 2, "lat", -90, 90, false, &r->lat, NULL)) < 0 ||
		    (k = wf_feed_double(rd, 3, "lon", -180, 180, false, &r->lon, NULL)) < 0 ||
		    (k = wf_feed_double(rd, 4, "confidence", 0, 100, false, &r->conf, NULL)) < 0 ||
		    (k = wf_feed_station(rd, 5, "source", &text)) < 0)
			return k;
		snprintf(r->id, sizeof r->id, "%s", id);
		snprintf(r->source, sizeof r->source, "%s", text);
		snprintf(r->key, sizeof r->key, "%s:%lld", r->id, (long long)r->t);
	} else {
		if ((k = wf_feed_station(rd, 0, "incident", &id)) < 0 ||
		    (k = wf_feed_time(rd, 1, "time", &r->t)) < 0 ||
		    (k = wf_feed_region(rd, 2, "region", s->regions, r->region)) < 0 ||
		    (k = wf_feed_word(rd, 3, "type", types, &r->type)) < 0 ||
		    (k = wf_feed_word(rd, 4, "status", statuses, &r->status)) < 0 ||
		    (k = wf_feed_double(rd, 5, "area_ha", 0, 1e7, true, &r->area, &present)) < 0 ||
		    (k = wf_feed_int(rd, 6, "deaths", 0, 100000, true, &r->deaths, NULL)) < 0 ||
		    (k = wf_feed_int(rd, 7, "injured", 0, 100000, true, &r->injured, NULL)) < 0 ||
		    (k = wf_feed_text(rd, 8, "text", 1000, &text)) < 0)
			return k;
		if (!present)
			r->area = 0;
		snprintf(r->id, sizeof r->id, "%s", id);
		r->text = strdup(text);
		if (!r->text) {
			snprintf(rd->err, sizeof rd->err, "out of memory");
			return -ENOMEM;
		}
		snprintf(r->key, sizeof r->key, "%s:%lld:%d", r->id, (long long)r->t, r->status);
	}
	if (r->t > now_ms + SKEW_AHEAD_MS || r->t < now_ms - MAX_AGE_MS) {
		snprintf(rd->err, sizeof rd->err,
			 "line %u: time %s is %s (allowed: 7 days back to 5 minutes ahead)",
			 rd->lineno, rd->field[1], r->t > now_ms ? "in the future" : "too old");
		return -EINVAL;
	}
	return 0;
}

int fire_parse(void *state, const char *name, const uint8_t *buf, size_t len, int64_t now_ms,
	       struct wf_adapter_sink *sink)
{
	struct fire_state *s = state;
	struct wf_feed_reader *rd = malloc(sizeof(*rd));
	struct row *rows = NULL;
	size_t n = 0, cap = 0;
	char head[64] = "";
	enum feed f = RATING;
	int k;

	if (!rd)
		return -ENOMEM;
	k = wf_feed_open(rd, buf, len, FIRE_MAX_FILE);
	if (k == 0) {
		wf_feed_peek_header(rd, head, sizeof head);
		if (strncmp(head, "region,", 7) == 0)
			k = wf_feed_header(rd, rating_cols, 4), f = RATING;
		else if (strncmp(head, "hotspot,", 8) == 0)
			k = wf_feed_header(rd, hotspot_cols, 6), f = HOTSPOT;
		else if (strncmp(head, "incident,", 9) == 0)
			k = wf_feed_header(rd, incident_cols, 9), f = INCIDENT;
		else {
			snprintf(rd->err, sizeof rd->err,
				 "unknown feed: the header must start with 'region,' (danger "
				 "rating), 'hotspot,' or 'incident,' (119)");
			k = -EBADMSG;
		}
	}
	while (k == 0 && (k = wf_feed_next(rd)) == 1) {
		k = 0;
		if (n == WF_FEED_ROWS_MAX) {
			snprintf(rd->err, sizeof rd->err, "more than %u records", WF_FEED_ROWS_MAX);
			k = -E2BIG;
			break;
		}
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct row *p = realloc(rows, nc * sizeof(*p));
			if (!p) {
				snprintf(rd->err, sizeof rd->err, "out of memory");
				k = -ENOMEM;
				break;
			}
			rows = p;
			cap = nc;
		}
		memset(&rows[n], 0, sizeof(rows[n]));
		rows[n].line = rd->lineno;
		rows[n].sig = 14695981039346656037ULL;
		for (size_t i = 0; i < rd->nfield; i++)
			rows[n].sig = fnv(rows[n].sig, rd->field[i]);
		k = read_row(s, rd, f, now_ms, &rows[n]);
		n++; /* counted even on error so that its text is freed */
		if (k < 0)
			break;
	}
	if (k < 0)
		goto reject;
	if (n)
		qsort(rows, n, sizeof(*rows), cmp_row);
	for (size_t i = 1; i < n; i++)
		if (strcmp(rows[i].key, rows[i - 1].key) == 0) {
			if (rows[i].sig != rows[i - 1].sig) {
				snprintf(rd->err, sizeof rd->err,
					 "line %u: a different record for the same %s and time as "
					 "line %u",
					 rows[i].line, f == RATING ? "region" : "id", rows[i - 1].line);
				k = -EINVAL;
				goto reject;
			}
			rows[i].skip = true;
		}
	for (size_t i = 0; i < n; i++)
		if (!rows[i].skip && (k = emit_row(s, f, &rows[i], rd->status, sink)) < 0) {
			snprintf(rd->err, sizeof rd->err, "%s",
				 k == -ENOSPC ? "too many events" : "out of memory");
			goto reject;
		}
	rows_free(rows, n);
	free(rd);
	return 0;
reject:
	wf_adapter_reason(sink, "%s", rd->err);
	rows_free(rows, n);
	free(rd);
	return k;
}
