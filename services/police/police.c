/* police: config ([police], [police.region CODE]) and the 110 incident CSV. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "police.h"

#define SKEW_AHEAD_MS (5 * 60 * 1000LL)
#define MAX_AGE_MS (7 * 24 * 3600 * 1000LL)

static const char *const cols[] = { "incident", "time", "region", "category", "status", "grade",
				    "deaths", "injured", "crowd_density", "text" };
static const char *const categories[] = { "crowd", "traffic", "hazmat", "explosion",
					  "public_order", "missing", NULL };
static const Wf__V1__Hazard hazards[] = {
	WF__V1__HAZARD__HAZARD_CROWD,     WF__V1__HAZARD__HAZARD_TRAFFIC,
	WF__V1__HAZARD__HAZARD_HAZMAT,    WF__V1__HAZARD__HAZARD_EXPLOSION,
	WF__V1__HAZARD__HAZARD_PUBLIC_ORDER, WF__V1__HAZARD__HAZARD_MISSING_PERSONS,
};
static const char *const statuses[] = { "new", "update", "closed", NULL };
static const char *const grade_zh[] = { "", "特别重大", "重大", "较大", "一般" };

/* --- config --- */

static int map_key(struct police_map *m, const char *name, const char *value, char *msg,
		   size_t msz)
{
	if (strncmp(name, "grade", 5) != 0 || name[5] < '1' || name[5] > '4' || name[6])
		return 0;
	if (wf_feed_level_parse(value, &m->level[name[5] - '0']) < 0) {
		snprintf(msg, msz, "%s: must be none, blue, yellow, orange or red", name);
		return -EINVAL;
	}
	return 1;
}

static int handler(void *ud, const char *section, const char *name, const char *value, char *msg,
		   size_t msz)
{
	struct police_state *s = ud;
	int k;

	if (strcmp(section, "police") == 0) {
		if ((k = map_key(&s->map, name, value, msg, msz)) != 0)
			return k < 0 ? k : 0;
		for (int g = 1; g <= 4; g++) {
			char key[32];
			snprintf(key, sizeof key, "density_grade%d", g);
			if (strcmp(name, key) == 0)
				return wf_feed_conf_double(name, value, 0.1, 20, &s->density[g], msg,
							   msz);
			if (g == 4)
				break;
			snprintf(key, sizeof key, "deaths_grade%d", g);
			if (strcmp(name, key) == 0) {
				double v;
				if (wf_feed_conf_double(name, value, 1, 100000, &v, msg, msz) < 0)
					return -EINVAL;
				s->deaths[g] = (long)v;
				return 0;
			}
			snprintf(key, sizeof key, "injured_grade%d", g);
			if (strcmp(name, key) == 0) {
				double v;
				if (wf_feed_conf_double(name, value, 1, 100000, &v, msg, msz) < 0)
					return -EINVAL;
				s->injured[g] = (long)v;
				return 0;
			}
		}
		if (strcmp(name, "validity") == 0)
			return wf_feed_conf_duration(name, value, &s->validity_ms, msg, msz);
		snprintf(msg, msz, "unknown key '%.40s' in [police]", name);
		return -EINVAL;
	}
	if (strncmp(section, "police.region ", 14) == 0) {
		char code[13];
		struct police_region_map *m = NULL;

		k = wf_feed_region_check(s->regions, section + 14, code);
		if (k < 0) {
			snprintf(msg, msz, "[%.40s]: %s", section,
				 k == -ENOENT ? "region not in the region table"
					      : "not a 6- or 12-digit region code");
			return -EINVAL;
		}
		for (size_t i = 0; i < s->nrmaps; i++)
			if (strcmp(s->rmaps[i].region, code) == 0)
				m = &s->rmaps[i];
		if (!m) {
			struct police_region_map *p;
			if (s->nrmaps >= POLICE_MAX_REGION_MAPS) {
				snprintf(msg, msz, "more than %u region sections",
					 POLICE_MAX_REGION_MAPS);
				return -EINVAL;
			}
			p = realloc(s->rmaps, (s->nrmaps + 1) * sizeof(*p));
			if (!p)
				return -ENOMEM;
			s->rmaps = p;
			m = &s->rmaps[s->nrmaps++];
			memcpy(m->region, code, 13);
			for (int l = 0; l < 5; l++) /* unset: resolved from [police] in finish() */
				m->map.level[l] = (Wf__V1__Level)-1;
		}
		if ((k = map_key(&m->map, name, value, msg, msz)) != 0)
			return k < 0 ? k : 0;
		snprintf(msg, msz, "unknown key '%.40s' in [%.40s] (grade1..grade4)", name, section);
		return -EINVAL;
	}
	snprintf(msg, msz, "unknown section [%.60s] (expected [police] or [police.region CODE])",
		 section);
	return -EINVAL;
}

static struct police_state *state_new(const struct wf_region_table *regions)
{
	struct police_state *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->regions = regions;
	/* local convention (not law): grade 1..4 -> red..blue */
	s->map.level[1] = WF__V1__LEVEL__LEVEL_I;
	s->map.level[2] = WF__V1__LEVEL__LEVEL_II;
	s->map.level[3] = WF__V1__LEVEL__LEVEL_III;
	s->map.level[4] = WF__V1__LEVEL__LEVEL_IV;
	/* the accident-grade bounds (特别重大 >= 30 deaths or >= 100 injured, ...) */
	s->deaths[1] = 30, s->deaths[2] = 10, s->deaths[3] = 3;
	s->injured[1] = 100, s->injured[2] = 50, s->injured[3] = 10;
	/* [U] crowd density, persons/m2 (crowd-crush risk rises steeply above 4) */
	s->density[1] = 7, s->density[2] = 6, s->density[3] = 5, s->density[4] = 4;
	s->validity_ms = 12 * 3600 * 1000LL;
	return s;
}

static int finish(struct police_state *s, const char *name, int r, char *err, size_t err_size)
{
	if (r < 0)
		goto fail;
	for (size_t i = 0; i < s->nrmaps; i++)
		for (int l = 1; l < 5; l++)
			if ((int)s->rmaps[i].map.level[l] < 0)
				s->rmaps[i].map.level[l] = s->map.level[l];
	if (!(s->deaths[1] > s->deaths[2] && s->deaths[2] > s->deaths[3]) ||
	    !(s->injured[1] > s->injured[2] && s->injured[2] > s->injured[3]) ||
	    !(s->density[1] > s->density[2] && s->density[2] > s->density[3] &&
	      s->density[3] > s->density[4])) {
		snprintf(err, err_size,
			 "%s: [police]: thresholds must decrease from grade1 to grade4", name);
		r = -EINVAL;
		goto fail;
	}
	return 0;
fail:
	police_config_free(s);
	return r;
}

int police_config_load(const char *path, const struct wf_region_table *regions,
		       void **ret_state, char *err, size_t err_size)
{
	struct police_state *s = state_new(regions);
	int r;

	if (!s) {
		snprintf(err, err_size, "out of memory");
		return -ENOMEM;
	}
	r = wf_feed_ini_parse(path, "police", handler, s, err, err_size);
	if ((r = finish(s, path ? path : "(defaults)", r, err, err_size)) < 0)
		return r;
	*ret_state = s;
	return 0;
}

int police_config_load_string(const char *name, const char *text,
			      const struct wf_region_table *regions, struct police_state **ret,
			      char *err, size_t err_size)
{
	struct police_state *s = state_new(regions);
	int r;

	if (!s)
		return -ENOMEM;
	r = wf_feed_ini_parse_string(name, text, "police", handler, s, err, err_size);
	if ((r = finish(s, name, r, err, err_size)) < 0)
		return r;
	*ret = s;
	return 0;
}

void police_config_free(void *state)
{
	struct police_state *s = state;

	if (!s)
		return;
	free(s->rmaps);
	free(s);
}

/* --- feed --- */

struct row {
	char key[96];
	uint64_t sig;
	unsigned line;
	bool skip;
	char id[WF_FEED_STATION_MAX + 1];
	char region[13];
	int64_t t;
	int category, status;
	long grade, deaths, injured;
	bool has_grade, has_density;
	double density;
	char *text;
};

static uint64_t fnv(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (h ^ ',') * 1099511628211ULL;
}

static int cmp_row(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : (x->line < y->line ? -1 : x->line > y->line);
}

/* The reporting unit's grade when given, else from casualties and density. */
static long grade_of(const struct police_state *s, const struct row *r, const char **ret_why)
{
	if (r->has_grade) {
		*ret_why = "reported grade";
		return r->grade;
	}
	for (long g = 1; g <= 3; g++)
		if (r->deaths >= s->deaths[g] || r->injured >= s->injured[g]) {
			*ret_why = "casualties";
			return g;
		}
	if (r->has_density)
		for (long g = 1; g <= 4; g++)
			if (r->density >= s->density[g]) {
				*ret_why = "crowd density";
				return g;
			}
	*ret_why = "default";
	return 4;
}

static const struct police_map *map_for(const struct police_state *s, const char *region)
{
	const struct police_map *best = &s->map;
	int best_level = -1;

	/* the most specific section containing the region wins */
	for (size_t i = 0; i < s->nrmaps; i++) {
		int lv = (int)wf_region_level_of_code(s->rmaps[i].region);
		if (lv > best_level && wf_region_contains(s->rmaps[i].region, region)) {
			best = &s->rmaps[i].map;
			best_level = lv;
		}
	}
	return best;
}

static int emit_row(const struct police_state *s, const struct row *r, Wf__V1__Status status,
		    struct wf_adapter_sink *sink)
{
	char ts[32], id[128], ref[128], text[1400];
	const char *why;
	long grade = grade_of(s, r, &why);
	struct wf_feed_event e = {
		.agency = WF__V1__AGENCY__AGENCY_POLICE, .hazard = hazards[r->category], .id = id,
		.region = r->region, .station = r->id, .status = status, .observed_ms = r->t,
		.expires_ms = r->t + s->validity_ms, .text = text,
		.certainty = WF__V1__CERTAINTY__CERTAINTY_OBSERVED,
	};

	wf_feed_id_time(r->t, ts, sizeof ts);
	snprintf(ref, sizeof ref, "police:110:%s", r->id);
	if (r->status == 0)
		snprintf(id, sizeof id, "%s", ref);
	else
		snprintf(id, sizeof id, "police:110:%s:%s", r->id, ts);
	e.msg_type = r->status == 0   ? WF__V1__MSG_TYPE__MSG_TYPE_ALERT
		     : r->status == 1 ? WF__V1__MSG_TYPE__MSG_TYPE_UPDATE
				      : WF__V1__MSG_TYPE__MSG_TYPE_CANCEL;
	e.reference = r->status ? ref : NULL;
	e.level = r->status == 2 ? WF__V1__LEVEL__LEVEL_NONE : map_for(s, r->region)->level[grade];
	if (r->has_density) {
		e.has_measurement = true;
		e.value = r->density;
		e.threshold = s->density[grade];
		e.unit = "/m2";
		e.criterion = "crowd_density";
	} else if (r->status != 2) {
		e.has_measurement = true;
		e.value = (double)grade;
		e.threshold = (double)grade;
		e.unit = "1";
		e.criterion = "event_grade";
	}
	snprintf(text, sizeof text, "110 %s %s: %s事件 (grade %ld, by %s), %ld dead, %ld injured%s%s",
		 categories[r->category], statuses[r->status], grade_zh[grade], grade, why,
		 r->deaths, r->injured, r->text[0] ? "; " : "", r->text);
	return wf_feed_emit(sink, &e);
}

static int read_row(const struct police_state *s, struct wf_feed_reader *rd, int64_t now_ms,
		    struct row *r)
{
	const char *id, *text;
	int k;

	if (rd->nfield != 10) {
		snprintf(rd->err, sizeof rd->err, "line %u: %zu fields, expected 10%s", rd->lineno,
			 rd->nfield, rd->nfield < 10 ? " (truncated record?)" : "");
		return -EBADMSG;
	}
	if ((k = wf_feed_station(rd, 0, "incident", &id)) < 0 ||
	    (k = wf_feed_time(rd, 1, "time", &r->t)) < 0 ||
	    (k = wf_feed_region(rd, 2, "region", s->regions, r->region)) < 0 ||
	    (k = wf_feed_word(rd, 3, "category", categories, &r->category)) < 0 ||
	    (k = wf_feed_word(rd, 4, "status", statuses, &r->status)) < 0 ||
	    (k = wf_feed_int(rd, 5, "grade", 1, 4, true, &r->grade, &r->has_grade)) < 0 ||
	    (k = wf_feed_int(rd, 6, "deaths", 0, 100000, true, &r->deaths, NULL)) < 0 ||
	    (k = wf_feed_int(rd, 7, "injured", 0, 100000, true, &r->injured, NULL)) < 0 ||
	    (k = wf_feed_double(rd, 8, "crowd_density", 0, 20, true, &r->density,
				&r->has_density)) < 0 ||
	    (k = wf_feed_text(rd, 9, "text", 1000, &text)) < 0)
		return k;
	snprintf(r->id, sizeof r->id, "%s", id);
	r->text = strdup(text);
	if (!r->text) {
		snprintf(rd->err, sizeof rd->err, "out of memory");
		return -ENOMEM;
	}
	snprintf(r->key, sizeof r->key, "%s:%lld:%d", r->id, (long long)r->t, r->status);
	if (r->t > now_ms + SKEW_AHEAD_MS || r->t < now_ms - MAX_AGE_MS) {
		snprintf(rd->err, sizeof rd->err,
			 "line %u: time %s is %s (allowed: 7 days back to 5 minutes ahead)",
			 rd->lineno, rd->field[1], r->t > now_ms ? "in the future" : "too old");
		return -EINVAL;
	}
	return 0;
}

int police_parse(void *state, const char *name, const uint8_t *buf, size_t len, int64_t now_ms,
		 struct wf_adapter_sink *sink)
{
	struct police_state *s = state;
	struct wf_feed_reader *rd = malloc(sizeof(*rd));
	struct row *rows = NULL;
	size_t n = 0, cap = 0;
	int k;

	if (!rd)
		return -ENOMEM;
	k = wf_feed_open(rd, buf, len, POLICE_MAX_FILE);
	if (k == 0)
		k = wf_feed_header(rd, cols, 10);
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
		k = read_row(s, rd, now_ms, &rows[n]);
		n++;
		if (k < 0)
			break;
	}
	if (k < 0)
		goto out;
	if (n)
		qsort(rows, n, sizeof(*rows), cmp_row);
	for (size_t i = 1; i < n; i++)
		if (strcmp(rows[i].key, rows[i - 1].key) == 0) {
			if (rows[i].sig != rows[i - 1].sig) {
				snprintf(rd->err, sizeof rd->err,
					 "line %u: a different report for the same incident, time and "
					 "status as line %u",
					 rows[i].line, rows[i - 1].line);
				k = -EINVAL;
				goto out;
			}
			rows[i].skip = true;
		}
	for (size_t i = 0; i < n; i++)
		if (!rows[i].skip && (k = emit_row(s, &rows[i], rd->status, sink)) < 0) {
			snprintf(rd->err, sizeof rd->err, "%s",
				 k == -ENOSPC ? "too many events" : "out of memory");
			goto out;
		}
	k = 0;
out:
	if (k < 0)
		wf_adapter_reason(sink, "%s", rd->err);
	for (size_t i = 0; i < n; i++)
		free(rows[i].text);
	free(rows);
	free(rd);
	return k;
}

const struct wf_adapter_ops wf_police_ops = {
	.kind = "police",
	.agency = WF__V1__AGENCY__AGENCY_POLICE,
	.formats_help =
		"  110 incident reports, CSV:\n"
		"    incident,time,region,category,status,grade,deaths,injured,crowd_density,text\n"
		"  category crowd|traffic|hazmat|explosion|public_order|missing; status\n"
		"  new|update|closed; grade 1 特别重大 .. 4 一般 (empty: from casualties/density).\n"
		"  The grade -> colour map is a local convention. See docs/feeds/police.md.",
	.config_load = police_config_load,
	.config_free = police_config_free,
	.parse = police_parse,
};
