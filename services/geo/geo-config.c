/* geo-config: [geo] and [geo.sensor ID] sections. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geo.h"

static const char *const colour[] = { "blue", "yellow", "orange", "red" };

static void steps_nan(struct geo_steps *s)
{
	for (int i = 0; i < 4; i++)
		s->v[i] = NAN;
}

/* KEY is "<base>_<colour>": sets the step. 1 matched, 0 not, <0 error. */
static int step_key(const char *base, struct geo_steps *s, const char *name, const char *value,
		    double max, char *msg, size_t msz)
{
	size_t n = strlen(base);

	if (strncmp(name, base, n) != 0 || name[n] != '_')
		return 0;
	for (int i = 0; i < 4; i++)
		if (strcmp(name + n + 1, colour[i]) == 0)
			return wf_feed_conf_double(name, value, 0, max, &s->v[i], msg, msz) < 0
				       ? -EINVAL
				       : 1;
	return 0;
}

static int steps_keys(struct geo_steps *vel, struct geo_steps *crack, struct geo_steps *rain,
		      const char *name, const char *value, char *msg, size_t msz)
{
	int k;

	if ((k = step_key("velocity", vel, name, value, 1e5, msg, msz)) != 0 ||
	    (k = step_key("crack_rate", crack, name, value, 1e5, msg, msz)) != 0 ||
	    (k = step_key("rain_24h", rain, name, value, 2000, msg, msz)) != 0)
		return k;
	return 0;
}

static struct geo_sensor *sensor_get(struct geo_state *s, const char *id, char *msg, size_t msz)
{
	struct geo_sensor *p;

	for (size_t i = 0; i < s->nsensors; i++)
		if (strcmp(s->sensors[i].id, id) == 0)
			return &s->sensors[i];
	if (!wf_feed_station_valid(id)) {
		snprintf(msg, msz, "sensor id '%.40s' is not [A-Za-z0-9._-]{1,%u}", id,
			 WF_FEED_STATION_MAX);
		return NULL;
	}
	if (s->nsensors >= GEO_MAX_SENSORS) {
		snprintf(msg, msz, "more than %u sensors", GEO_MAX_SENSORS);
		return NULL;
	}
	p = realloc(s->sensors, (s->nsensors + 1) * sizeof(*p));
	if (!p) {
		snprintf(msg, msz, "out of memory");
		return NULL;
	}
	s->sensors = p;
	p = &s->sensors[s->nsensors++];
	memset(p, 0, sizeof(*p));
	snprintf(p->id, sizeof p->id, "%s", id);
	p->hazard = WF__V1__HAZARD__HAZARD_LANDSLIDE;
	p->lat = p->lon = p->accel = NAN;
	steps_nan(&p->velocity);
	steps_nan(&p->crack_rate);
	steps_nan(&p->rain_24h);
	return p;
}

static int level_value(const char *name, const char *value, Wf__V1__Level *ret, char *msg,
		       size_t msz)
{
	if (wf_feed_level_parse(value, ret) < 0) {
		snprintf(msg, msz, "%s: must be none, blue, yellow, orange or red", name);
		return -EINVAL;
	}
	return 0;
}

static int handler(void *ud, const char *section, const char *name, const char *value, char *msg,
		   size_t msz)
{
	struct geo_state *s = ud;
	struct geo_sensor *se;
	int k;

	if (strcmp(section, "geo") == 0) {
		k = steps_keys(&s->velocity, &s->crack_rate, &s->rain_24h, name, value, msg, msz);
		if (k != 0)
			return k < 0 ? k : 0;
		if (strcmp(name, "level_scheme") == 0) {
			if (strcmp(value, "current") == 0)
				s->legacy5 = false;
			else if (strcmp(value, "legacy5") == 0)
				s->legacy5 = true;
			else {
				snprintf(msg, msz, "level_scheme: must be current or legacy5");
				return -EINVAL;
			}
			return 0;
		}
		if (strcmp(name, "min_level") == 0)
			return level_value(name, value, &s->min_level, msg, msz);
		if (strcmp(name, "accel_level") == 0)
			return level_value(name, value, &s->accel_level, msg, msz);
		if (strcmp(name, "accel") == 0)
			return wf_feed_conf_double(name, value, 0.001, 1e5, &s->accel, msg, msz);
		if (strcmp(name, "min_interval") == 0)
			return wf_feed_conf_duration(name, value, &s->min_interval_ms, msg, msz);
		if (strcmp(name, "max_interval") == 0)
			return wf_feed_conf_duration(name, value, &s->max_interval_ms, msg, msz);
		if (strcmp(name, "validity") == 0)
			return wf_feed_conf_duration(name, value, &s->validity_ms, msg, msz);
		snprintf(msg, msz, "unknown key '%.40s' in [geo]", name);
		return -EINVAL;
	}
	if (strncmp(section, "geo.sensor ", 11) != 0) {
		snprintf(msg, msz, "unknown section [%.60s] (expected [geo] or [geo.sensor ID])",
			 section);
		return -EINVAL;
	}
	se = sensor_get(s, section + 11, msg, msz);
	if (!se)
		return -EINVAL;
	k = steps_keys(&se->velocity, &se->crack_rate, &se->rain_24h, name, value, msg, msz);
	if (k != 0)
		return k < 0 ? k : 0;
	if (strcmp(name, "name") == 0) {
		if (strlen(value) > 128 ||
		    wf_feed_utf8_check((const uint8_t *)value, strlen(value)) != strlen(value)) {
			snprintf(msg, msz, "name: not UTF-8 text of at most 128 bytes");
			return -EINVAL;
		}
		free(se->name);
		se->name = strdup(value);
		return se->name ? 0 : -ENOMEM;
	}
	if (strcmp(name, "region") == 0) {
		k = wf_feed_region_check(s->regions, value, se->region);
		if (k == -ENOENT)
			snprintf(msg, msz, "region: %.16s is not in the region table", value);
		else if (k < 0)
			snprintf(msg, msz, "region: '%.16s' is not a 6- or 12-digit code", value);
		return k < 0 ? -EINVAL : 0;
	}
	if (strcmp(name, "hazard") == 0) {
		static const char *const hz[] = { "landslide", "debris_flow", "collapse",
						  "subsidence" };
		static const Wf__V1__Hazard hv[] = { WF__V1__HAZARD__HAZARD_LANDSLIDE,
						     WF__V1__HAZARD__HAZARD_DEBRIS_FLOW,
						     WF__V1__HAZARD__HAZARD_COLLAPSE,
						     WF__V1__HAZARD__HAZARD_SUBSIDENCE };
		for (int i = 0; i < 4; i++)
			if (strcmp(value, hz[i]) == 0) {
				se->hazard = hv[i];
				return 0;
			}
		snprintf(msg, msz, "hazard: must be landslide, debris_flow, collapse or subsidence");
		return -EINVAL;
	}
	if (strcmp(name, "lat") == 0)
		return wf_feed_conf_double(name, value, -90, 90, &se->lat, msg, msz);
	if (strcmp(name, "lon") == 0)
		return wf_feed_conf_double(name, value, -180, 180, &se->lon, msg, msz);
	if (strcmp(name, "accel") == 0)
		return wf_feed_conf_double(name, value, 0.001, 1e5, &se->accel, msg, msz);
	snprintf(msg, msz, "unknown key '%.40s' in [%.60s]", name, section);
	return -EINVAL;
}

static bool steps_ok(const struct geo_steps *s)
{
	double last = -INFINITY;

	for (int i = 0; i < 4; i++) {
		if (isnan(s->v[i]))
			continue;
		if (!(s->v[i] > last))
			return false;
		last = s->v[i];
	}
	return true;
}

/* The effective steps of a sensor: its own where set, else the global. */
static void steps_merge(struct geo_steps *own, const struct geo_steps *global)
{
	for (int i = 0; i < 4; i++)
		if (isnan(own->v[i]))
			own->v[i] = global->v[i];
}

static int cmp_sensor(const void *a, const void *b)
{
	return strcmp(((const struct geo_sensor *)a)->id, ((const struct geo_sensor *)b)->id);
}

static struct geo_state *state_new(const struct wf_region_table *regions)
{
	struct geo_state *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->regions = regions;
	s->min_level = WF__V1__LEVEL__LEVEL_IV;
	/* [U] defaults; there is no national number (DOMAIN.md §4): tune per site */
	s->velocity = (struct geo_steps){ { 2, 5, 10, 20 } };
	s->crack_rate = (struct geo_steps){ { 1, 2, 5, 10 } };
	s->rain_24h = (struct geo_steps){ { 50, 100, 150, 250 } };
	s->accel = 1.0;
	s->accel_level = WF__V1__LEVEL__LEVEL_II;
	s->min_interval_ms = 10 * 60 * 1000LL;
	s->max_interval_ms = 48 * 3600 * 1000LL;
	s->validity_ms = 6 * 3600 * 1000LL;
	return s;
}

static int finish(struct geo_state *s, const char *name, int r, char *err, size_t err_size)
{
	if (r < 0)
		goto fail;
	r = -EINVAL;
	if (!steps_ok(&s->velocity) || !steps_ok(&s->crack_rate) || !steps_ok(&s->rain_24h)) {
		snprintf(err, err_size, "%s: [geo]: the blue..red steps must increase", name);
		goto fail;
	}
	if (s->min_interval_ms >= s->max_interval_ms) {
		snprintf(err, err_size, "%s: [geo]: min_interval must be below max_interval", name);
		goto fail;
	}
	for (size_t i = 0; i < s->nsensors; i++) {
		struct geo_sensor *se = &s->sensors[i];
		const char *why = NULL;

		steps_merge(&se->velocity, &s->velocity);
		steps_merge(&se->crack_rate, &s->crack_rate);
		steps_merge(&se->rain_24h, &s->rain_24h);
		if (isnan(se->accel))
			se->accel = s->accel;
		se->has_point = !isnan(se->lat) && !isnan(se->lon);
		if (!se->region[0])
			why = "region missing";
		else if (isnan(se->lat) != isnan(se->lon))
			why = "lat and lon must both be set";
		else if (!steps_ok(&se->velocity) || !steps_ok(&se->crack_rate) ||
			 !steps_ok(&se->rain_24h))
			why = "the blue..red steps must increase";
		if (why) {
			snprintf(err, err_size, "%s: [geo.sensor %s]: %s", name, se->id, why);
			goto fail;
		}
	}
	if (s->nsensors)
		qsort(s->sensors, s->nsensors, sizeof(*s->sensors), cmp_sensor);
	return 0;
fail:
	geo_config_free(s);
	return r;
}

int geo_config_load(const char *path, const struct wf_region_table *regions, void **ret_state,
		    char *err, size_t err_size)
{
	struct geo_state *s = state_new(regions);
	int r;

	if (!s) {
		snprintf(err, err_size, "out of memory");
		return -ENOMEM;
	}
	r = wf_feed_ini_parse(path, "geo", handler, s, err, err_size);
	r = finish(s, path ? path : "(defaults)", r, err, err_size);
	if (r < 0)
		return r;
	*ret_state = s;
	return 0;
}

int geo_config_load_string(const char *name, const char *text,
			   const struct wf_region_table *regions, struct geo_state **ret, char *err,
			   size_t err_size)
{
	struct geo_state *s = state_new(regions);
	int r;

	if (!s)
		return -ENOMEM;
	r = wf_feed_ini_parse_string(name, text, "geo", handler, s, err, err_size);
	r = finish(s, name, r, err, err_size);
	if (r < 0)
		return r;
	*ret = s;
	return 0;
}

void geo_config_free(void *state)
{
	struct geo_state *s = state;

	if (!s)
		return;
	for (size_t i = 0; i < s->nsensors; i++)
		free(s->sensors[i].name);
	free(s->sensors);
	free(s->zones);
	free(s);
}

struct geo_sensor *geo_sensor_find(struct geo_state *s, const char *id)
{
	struct geo_sensor key;

	if (!s->nsensors)
		return NULL;
	snprintf(key.id, sizeof key.id, "%s", id);
	return bsearch(&key, s->sensors, s->nsensors, sizeof(*s->sensors), cmp_sensor);
}

const struct wf_adapter_ops wf_geo_ops = {
	.kind = "geo",
	.agency = WF__V1__AGENCY__AGENCY_GEO,
	.formats_help =
		"  Risk forecasts, CSV: zone,region,issued,valid_from,valid_to,level\n"
		"  (level 4 blue .. 1 red, 0 lifts; level_scheme = legacy5 for the old 1-5).\n"
		"  Slope sensors, CSV: sensor,time,displacement_mm,crack_mm,rain_24h_mm\n"
		"  (sensors in [geo.sensor ID]). See docs/feeds/geo.md.",
	.config_load = geo_config_load,
	.config_free = geo_config_free,
	.parse = geo_parse,
};
