/* water-config: [water] and [water.station ID] sections. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "water.h"

struct load {
	struct water_state *s;
	const char *name;
};

static void station_init(struct water_station *st, const char *id)
{
	memset(st, 0, sizeof(*st));
	snprintf(st->id, sizeof st->id, "%s", id);
	st->warning = st->guaranteed = st->record = NAN;
	st->flow5 = st->flow20 = st->flow50 = NAN;
	st->flood_limit = st->design = st->check = NAN;
	st->drought = st->normal_min = st->record_low = NAN;
	st->approach_m = st->approach_flow_ratio = st->rise_rate = NAN;
	st->lat = st->lon = NAN;
}

static struct water_station *station_get(struct water_state *s, const char *id, char *msg,
					 size_t msz)
{
	struct water_station *p;

	for (size_t i = 0; i < s->nst; i++)
		if (strcmp(s->st[i].id, id) == 0)
			return &s->st[i];
	if (!wf_feed_station_valid(id)) {
		snprintf(msg, msz, "station id '%.40s' is not [A-Za-z0-9._-]{1,%u}", id,
			 WF_FEED_STATION_MAX);
		return NULL;
	}
	if (s->nst >= WATER_MAX_STATIONS) {
		snprintf(msg, msz, "more than %u stations", WATER_MAX_STATIONS);
		return NULL;
	}
	p = realloc(s->st, (s->nst + 1) * sizeof(*p));
	if (!p) {
		snprintf(msg, msz, "out of memory");
		return NULL;
	}
	s->st = p;
	station_init(&s->st[s->nst], id);
	return &s->st[s->nst++];
}

#define DBL(key, field, lo, hi)                                                               \
	if (strcmp(name, key) == 0)                                                           \
		return wf_feed_conf_double(name, value, lo, hi, &(field), msg, msz)

static int handler(void *ud, const char *section, const char *name, const char *value, char *msg,
		   size_t msz)
{
	struct load *l = ud;
	struct water_state *s = l->s;
	struct water_station *st;

	if (strcmp(section, "water") == 0) {
		DBL("approach_m", s->approach_m, 0, 100);
		DBL("approach_flow_ratio", s->approach_flow_ratio, 0.01, 1);
		DBL("rise_rate", s->rise_rate, 0.001, 100);
		if (strcmp(name, "validity") == 0)
			return wf_feed_conf_duration(name, value, &s->validity_ms, msg, msz);
		if (strcmp(name, "trend_window") == 0)
			return wf_feed_conf_duration(name, value, &s->trend_window_ms, msg, msz);
		snprintf(msg, msz, "unknown key '%.40s' in [water]", name);
		return -EINVAL;
	}
	if (strncmp(section, "water.station ", 14) != 0) {
		snprintf(msg, msz, "unknown section [%.60s] (expected [water] or [water.station ID])",
			 section);
		return -EINVAL;
	}
	st = station_get(s, section + 14, msg, msz);
	if (!st)
		return -EINVAL;
	if (strcmp(name, "name") == 0) {
		if (strlen(value) > 128 || wf_feed_utf8_check((const uint8_t *)value,
							      strlen(value)) != strlen(value)) {
			snprintf(msg, msz, "name: not UTF-8 text of at most 128 bytes");
			return -EINVAL;
		}
		free(st->name);
		st->name = strdup(value);
		if (!st->name) {
			snprintf(msg, msz, "out of memory");
			return -ENOMEM;
		}
		return 0;
	}
	if (strcmp(name, "region") == 0) {
		int r = wf_feed_region_check(s->regions, value, st->region);
		if (r == -ENOENT)
			snprintf(msg, msz, "region: %.16s is not in the region table", value);
		else if (r < 0)
			snprintf(msg, msz, "region: '%.16s' is not a 6- or 12-digit code", value);
		return r < 0 ? -EINVAL : 0;
	}
	if (strcmp(name, "kind") == 0) {
		if (strcmp(value, "river") == 0)
			st->reservoir = false;
		else if (strcmp(value, "reservoir") == 0)
			st->reservoir = true;
		else {
			snprintf(msg, msz, "kind: must be river or reservoir");
			return -EINVAL;
		}
		return 0;
	}
	if (strcmp(name, "lat") == 0) {
		return wf_feed_conf_double(name, value, -90, 90, &st->lat, msg, msz);
	}
	if (strcmp(name, "lon") == 0) {
		return wf_feed_conf_double(name, value, -180, 180, &st->lon, msg, msz);
	}
	DBL("warning_stage", st->warning, -500, 9000);
	DBL("guaranteed_stage", st->guaranteed, -500, 9000);
	DBL("record_stage", st->record, -500, 9000);
	DBL("flow_5y", st->flow5, 0, 1e6);
	DBL("flow_20y", st->flow20, 0, 1e6);
	DBL("flow_50y", st->flow50, 0, 1e6);
	DBL("flood_limit", st->flood_limit, -500, 9000);
	DBL("design_level", st->design, -500, 9000);
	DBL("check_level", st->check, -500, 9000);
	DBL("drought_stage", st->drought, -500, 9000);
	DBL("normal_min_stage", st->normal_min, -500, 9000);
	DBL("record_low_stage", st->record_low, -500, 9000);
	DBL("approach_m", st->approach_m, 0, 100);
	DBL("approach_flow_ratio", st->approach_flow_ratio, 0.01, 1);
	DBL("rise_rate", st->rise_rate, 0.001, 100);
	snprintf(msg, msz, "unknown key '%.40s' in [%.60s]", name, section);
	return -EINVAL;
}

/* a < b where both are set */
static bool order_bad(double a, double b)
{
	return !isnan(a) && !isnan(b) && !(a < b);
}

static int check_station(struct water_station *st, char *msg, size_t msz)
{
	st->has_point = !isnan(st->lat) && !isnan(st->lon);
	if (!st->region[0]) {
		snprintf(msg, msz, "region missing");
		return -EINVAL;
	}
	if (isnan(st->lat) != isnan(st->lon)) {
		snprintf(msg, msz, "lat and lon must both be set");
		return -EINVAL;
	}
	if (order_bad(st->warning, st->guaranteed) || order_bad(st->guaranteed, st->record) ||
	    order_bad(st->warning, st->record)) {
		snprintf(msg, msz, "need warning_stage < guaranteed_stage < record_stage");
		return -EINVAL;
	}
	if (order_bad(st->flow5, st->flow20) || order_bad(st->flow20, st->flow50) ||
	    order_bad(st->flow5, st->flow50)) {
		snprintf(msg, msz, "need flow_5y < flow_20y < flow_50y");
		return -EINVAL;
	}
	if (order_bad(st->flood_limit, st->design) || order_bad(st->design, st->check) ||
	    order_bad(st->flood_limit, st->check)) {
		snprintf(msg, msz, "need flood_limit < design_level < check_level");
		return -EINVAL;
	}
	if (order_bad(st->record_low, st->normal_min) || order_bad(st->normal_min, st->drought) ||
	    order_bad(st->record_low, st->drought)) {
		snprintf(msg, msz, "need record_low_stage < normal_min_stage < drought_stage");
		return -EINVAL;
	}
	if (st->reservoir && isnan(st->flood_limit)) {
		snprintf(msg, msz, "a reservoir needs flood_limit (汛限水位)");
		return -EINVAL;
	}
	if (!st->reservoir && isnan(st->warning) && isnan(st->flow5) && isnan(st->drought)) {
		snprintf(msg, msz, "a river station needs warning_stage, flow_5y or drought_stage");
		return -EINVAL;
	}
	return 0;
}

static int cmp_station(const void *a, const void *b)
{
	return strcmp(((const struct water_station *)a)->id, ((const struct water_station *)b)->id);
}

static struct water_state *state_new(const struct wf_region_table *regions)
{
	struct water_state *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->regions = regions;
	/* [U] defaults: "approaching" is not quantified in the MWR text */
	s->approach_m = 0.3;
	s->approach_flow_ratio = 0.9;
	s->rise_rate = 0.1;
	s->validity_ms = 6 * 3600 * 1000LL;
	s->trend_window_ms = 6 * 3600 * 1000LL;
	return s;
}

static int finish(struct water_state *s, const char *name, int r, char *err, size_t err_size)
{
	char msg[256];

	if (r < 0) {
		water_config_free(s);
		return r;
	}
	for (size_t i = 0; i < s->nst; i++)
		if (check_station(&s->st[i], msg, sizeof msg) < 0) {
			snprintf(err, err_size, "%s: [water.station %s]: %s", name, s->st[i].id, msg);
			water_config_free(s);
			return -EINVAL;
		}
	if (s->nst)
		qsort(s->st, s->nst, sizeof(*s->st), cmp_station);
	return 0;
}

int water_config_load(const char *path, const struct wf_region_table *regions, void **ret_state,
		      char *err, size_t err_size)
{
	struct water_state *s = state_new(regions);
	struct load l = { .s = s, .name = path };
	int r;

	if (!s) {
		snprintf(err, err_size, "out of memory");
		return -ENOMEM;
	}
	r = wf_feed_ini_parse(path, "water", handler, &l, err, err_size);
	r = finish(s, path ? path : "(defaults)", r, err, err_size);
	if (r < 0)
		return r;
	*ret_state = s;
	return 0;
}

int water_config_load_string(const char *name, const char *text,
			     const struct wf_region_table *regions, struct water_state **ret,
			     char *err, size_t err_size)
{
	struct water_state *s = state_new(regions);
	struct load l = { .s = s, .name = name };
	int r;

	if (!s)
		return -ENOMEM;
	r = wf_feed_ini_parse_string(name, text, "water", handler, &l, err, err_size);
	r = finish(s, name, r, err, err_size);
	if (r < 0)
		return r;
	*ret = s;
	return 0;
}

void water_config_free(void *state)
{
	struct water_state *s = state;

	if (!s)
		return;
	for (size_t i = 0; i < s->nst; i++)
		free(s->st[i].name);
	free(s->st);
	free(s);
}

struct water_station *water_station_find(struct water_state *s, const char *id)
{
	struct water_station key;

	if (!s->nst)
		return NULL;
	snprintf(key.id, sizeof key.id, "%s", id);
	return bsearch(&key, s->st, s->nst, sizeof(*s->st), cmp_station);
}

const struct wf_adapter_ops wf_water_ops = {
	.kind = "water",
	.agency = WF__V1__AGENCY__AGENCY_WATER,
	.formats_help =
		"  Gauge and reservoir readings, CSV with the header\n"
		"    station,time,stage_m,flow_m3s\n"
		"  (RFC 3339 times with offset; stations and their 警戒/保证/历史最高 stages,\n"
		"  5/20/50-year flows and reservoir 汛限 levels in [water.station ID]\n"
		"  sections of the config). See docs/feeds/water.md.",
	.config_load = water_config_load,
	.config_free = water_config_free,
	.parse = water_parse,
};
