/* fire-config: [fire], [fire.region CODE] and [fire.area NAME] sections. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fire.h"

/* "level3" .. : 1 matched, 0 not, <0 error */
static int map_key(struct fire_map *m, const char *name, const char *value, char *msg, size_t msz)
{
	if (strncmp(name, "level", 5) != 0 || name[5] < '1' || name[5] > '5' || name[6])
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
	struct fire_state *s = ud;
	int k;

	if (strcmp(section, "fire") == 0) {
		if ((k = map_key(&s->map, name, value, msg, msz)) != 0)
			return k < 0 ? k : 0;
		if (strcmp(name, "min_confidence") == 0)
			return wf_feed_conf_double(name, value, 0, 100, &s->min_confidence, msg, msz);
		if (strcmp(name, "likely_confidence") == 0)
			return wf_feed_conf_double(name, value, 0, 100, &s->likely_confidence, msg,
						   msz);
		if (strcmp(name, "hotspot_validity") == 0)
			return wf_feed_conf_duration(name, value, &s->hotspot_validity_ms, msg, msz);
		if (strcmp(name, "incident_validity") == 0)
			return wf_feed_conf_duration(name, value, &s->incident_validity_ms, msg,
						     msz);
		snprintf(msg, msz, "unknown key '%.40s' in [fire]", name);
		return -EINVAL;
	}
	if (strncmp(section, "fire.region ", 12) == 0) {
		char code[13];
		struct fire_region_map *m = NULL;

		k = wf_feed_region_check(s->regions, section + 12, code);
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
			struct fire_region_map *p;
			if (s->nrmaps >= FIRE_MAX_REGION_MAPS) {
				snprintf(msg, msz, "more than %u region sections", FIRE_MAX_REGION_MAPS);
				return -EINVAL;
			}
			p = realloc(s->rmaps, (s->nrmaps + 1) * sizeof(*p));
			if (!p)
				return -ENOMEM;
			s->rmaps = p;
			m = &s->rmaps[s->nrmaps++];
			memcpy(m->region, code, 13);
			for (int l = 0; l < 6; l++) /* unset: resolved from [fire] in finish() */
				m->map.level[l] = (Wf__V1__Level)-1;
		}
		if ((k = map_key(&m->map, name, value, msg, msz)) != 0)
			return k < 0 ? k : 0;
		snprintf(msg, msz, "unknown key '%.40s' in [%.40s] (level1..level5)", name, section);
		return -EINVAL;
	}
	if (strncmp(section, "fire.area ", 10) == 0) {
		const char *an = section + 10;
		struct fire_area *a = NULL;

		for (size_t i = 0; i < s->nareas; i++)
			if (strcmp(s->areas[i].name, an) == 0)
				a = &s->areas[i];
		if (!a) {
			struct fire_area *p;
			if (!wf_feed_station_valid(an)) {
				snprintf(msg, msz, "area name '%.40s' is not [A-Za-z0-9._-]{1,32}", an);
				return -EINVAL;
			}
			if (s->nareas >= FIRE_MAX_AREAS) {
				snprintf(msg, msz, "more than %u areas", FIRE_MAX_AREAS);
				return -EINVAL;
			}
			p = realloc(s->areas, (s->nareas + 1) * sizeof(*p));
			if (!p)
				return -ENOMEM;
			s->areas = p;
			a = &s->areas[s->nareas++];
			memset(a, 0, sizeof(*a));
			snprintf(a->name, sizeof a->name, "%s", an);
			a->lat_min = a->lat_max = a->lon_min = a->lon_max = NAN;
		}
		if (strcmp(name, "region") == 0) {
			k = wf_feed_region_check(s->regions, value, a->region);
			if (k < 0) {
				snprintf(msg, msz, "region: %s",
					 k == -ENOENT ? "not in the region table"
						      : "not a 6- or 12-digit code");
				return -EINVAL;
			}
			return 0;
		}
		if (strcmp(name, "lat_min") == 0)
			return wf_feed_conf_double(name, value, -90, 90, &a->lat_min, msg, msz);
		if (strcmp(name, "lat_max") == 0)
			return wf_feed_conf_double(name, value, -90, 90, &a->lat_max, msg, msz);
		if (strcmp(name, "lon_min") == 0)
			return wf_feed_conf_double(name, value, -180, 180, &a->lon_min, msg, msz);
		if (strcmp(name, "lon_max") == 0)
			return wf_feed_conf_double(name, value, -180, 180, &a->lon_max, msg, msz);
		snprintf(msg, msz, "unknown key '%.40s' in [%.40s]", name, section);
		return -EINVAL;
	}
	snprintf(msg, msz, "unknown section [%.60s] (expected [fire], [fire.region CODE] or "
			   "[fire.area NAME])",
		 section);
	return -EINVAL;
}

static struct fire_state *state_new(const struct wf_region_table *regions)
{
	struct fire_state *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->regions = regions;
	/* CMA-style 森林火险预警信号: 3/4/5 -> yellow/orange/red; 1-2 forecast only */
	s->map.level[3] = WF__V1__LEVEL__LEVEL_III;
	s->map.level[4] = WF__V1__LEVEL__LEVEL_II;
	s->map.level[5] = WF__V1__LEVEL__LEVEL_I;
	s->min_confidence = 50;
	s->likely_confidence = 80;
	/* 森林防火条例 (2008) Art. 40 */
	s->area_ha[0] = 1, s->area_ha[1] = 100, s->area_ha[2] = 1000;
	s->deaths[0] = 3, s->deaths[1] = 10, s->deaths[2] = 30;
	s->injured[0] = 10, s->injured[1] = 50, s->injured[2] = 100;
	s->hotspot_validity_ms = 6 * 3600 * 1000LL;
	s->incident_validity_ms = 12 * 3600 * 1000LL;
	return s;
}

static int finish(struct fire_state *s, const char *name, int r, char *err, size_t err_size)
{
	if (r < 0)
		goto fail;
	r = -EINVAL;
	for (size_t i = 0; i < s->nrmaps; i++)
		for (int l = 1; l < 6; l++)
			if ((int)s->rmaps[i].map.level[l] < 0)
				s->rmaps[i].map.level[l] = s->map.level[l];
	for (size_t i = 0; i < s->nareas; i++) {
		const struct fire_area *a = &s->areas[i];
		const char *why = NULL;

		if (!a->region[0])
			why = "region missing";
		else if (isnan(a->lat_min) || isnan(a->lat_max) || isnan(a->lon_min) ||
			 isnan(a->lon_max))
			why = "lat_min, lat_max, lon_min and lon_max are all required";
		else if (!(a->lat_min < a->lat_max) || !(a->lon_min < a->lon_max))
			why = "need lat_min < lat_max and lon_min < lon_max";
		if (why) {
			snprintf(err, err_size, "%s: [fire.area %s]: %s", name, a->name, why);
			goto fail;
		}
	}
	if (s->likely_confidence < s->min_confidence) {
		snprintf(err, err_size, "%s: [fire]: likely_confidence below min_confidence", name);
		goto fail;
	}
	return 0;
fail:
	fire_config_free(s);
	return r;
}

int fire_config_load(const char *path, const struct wf_region_table *regions, void **ret_state,
		     char *err, size_t err_size)
{
	struct fire_state *s = state_new(regions);
	int r;

	if (!s) {
		snprintf(err, err_size, "out of memory");
		return -ENOMEM;
	}
	r = wf_feed_ini_parse(path, "fire", handler, s, err, err_size);
	if ((r = finish(s, path ? path : "(defaults)", r, err, err_size)) < 0)
		return r;
	*ret_state = s;
	return 0;
}

int fire_config_load_string(const char *name, const char *text,
			    const struct wf_region_table *regions, struct fire_state **ret,
			    char *err, size_t err_size)
{
	struct fire_state *s = state_new(regions);
	int r;

	if (!s)
		return -ENOMEM;
	r = wf_feed_ini_parse_string(name, text, "fire", handler, s, err, err_size);
	if ((r = finish(s, name, r, err, err_size)) < 0)
		return r;
	*ret = s;
	return 0;
}

void fire_config_free(void *state)
{
	struct fire_state *s = state;

	if (!s)
		return;
	free(s->rmaps);
	free(s->areas);
	free(s);
}

const struct fire_map *fire_map_for(const struct fire_state *s, const char *region12)
{
	const struct fire_map *best = &s->map;
	int best_level = -1;

	/* the most specific section containing the region wins */
	for (size_t i = 0; i < s->nrmaps; i++) {
		int lv = (int)wf_region_level_of_code(s->rmaps[i].region);
		if (lv > best_level && wf_region_contains(s->rmaps[i].region, region12)) {
			best = &s->rmaps[i].map;
			best_level = lv;
		}
	}
	return best;
}

const struct fire_area *fire_area_find(const struct fire_state *s, double lat, double lon)
{
	const struct fire_area *best = NULL;
	double best_size = INFINITY;

	for (size_t i = 0; i < s->nareas; i++) {
		const struct fire_area *a = &s->areas[i];
		double size = (a->lat_max - a->lat_min) * (a->lon_max - a->lon_min);
		if (lat >= a->lat_min && lat <= a->lat_max && lon >= a->lon_min &&
		    lon <= a->lon_max && size < best_size) {
			best = a;
			best_size = size;
		}
	}
	return best;
}

const struct wf_adapter_ops wf_fire_ops = {
	.kind = "fire",
	.agency = WF__V1__AGENCY__AGENCY_FIRE,
	.formats_help =
		"  Fire danger ratings, CSV: region,issued,valid_to,danger (1-5)\n"
		"  Satellite hotspots, CSV: hotspot,time,lat,lon,confidence,source\n"
		"  119 incidents, CSV: incident,time,region,type,status,area_ha,deaths,injured,text\n"
		"  See docs/feeds/fire.md.",
	.config_load = fire_config_load,
	.config_free = fire_config_free,
	.parse = fire_parse,
};
