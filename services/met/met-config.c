/* met-config: wf-met's configuration: [met], the CAP mapping sections, the
 * station table and the AWS thresholds with per-region/per-station
 * overrides. The shipped mapping (deploy/met/mapping.conf) is compiled in
 * and read first; the config file adds to it and overrides it. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "met.h"
#include "wf/config.h"
#include "wf/region.h"
#include "wf/topic.h"

extern const unsigned char met_default_mapping[];
extern const unsigned long met_default_mapping_len;

static const struct {
	const char *name;
	double def;
} thr_table[MET_THR_MAX] = {
	[MET_RAIN_12H_BLUE] = { "rain_12h_blue", 50 },
	[MET_RAIN_6H_YELLOW] = { "rain_6h_yellow", 50 },
	[MET_RAIN_3H_ORANGE] = { "rain_3h_orange", 50 },
	[MET_RAIN_3H_RED] = { "rain_3h_red", 100 },
	/* Beaufort (GB/T 28591-2012) lower bounds in m/s: 6 = 10.8, 7 = 13.9,
	 * 8 = 17.2, 9 = 20.8, 10 = 24.5, 11 = 28.5, 12 = 32.7, 13 = 37.0 */
	[MET_WIND_MEAN_BLUE] = { "wind_mean_blue", 10.8 },
	[MET_WIND_GUST_BLUE] = { "wind_gust_blue", 13.9 },
	[MET_WIND_MEAN_YELLOW] = { "wind_mean_yellow", 17.2 },
	[MET_WIND_GUST_YELLOW] = { "wind_gust_yellow", 20.8 },
	[MET_WIND_MEAN_ORANGE] = { "wind_mean_orange", 24.5 },
	[MET_WIND_GUST_ORANGE] = { "wind_gust_orange", 28.5 },
	[MET_WIND_MEAN_RED] = { "wind_mean_red", 32.7 },
	[MET_WIND_GUST_RED] = { "wind_gust_red", 37.0 },
	[MET_HEAT_YELLOW] = { "heat_yellow", 35 },
	[MET_HEAT_ORANGE] = { "heat_orange", 37 },
	[MET_HEAT_RED] = { "heat_red", 40 },
	[MET_FOG_YELLOW] = { "fog_yellow", 500 },
	[MET_FOG_ORANGE] = { "fog_orange", 200 },
	[MET_FOG_RED] = { "fog_red", 50 },
	[MET_COLD_DROP_BLUE] = { "cold_drop_blue", 8 },
	[MET_COLD_TMIN_BLUE] = { "cold_tmin_blue", 4 },
	[MET_COLD_WIND_BLUE] = { "cold_wind_blue", 8.0 },
	[MET_COLD_DROP_YELLOW] = { "cold_drop_yellow", 10 },
	[MET_COLD_TMIN_YELLOW] = { "cold_tmin_yellow", 4 },
	[MET_COLD_WIND_YELLOW] = { "cold_wind_yellow", 10.8 },
	[MET_COLD_DROP_ORANGE] = { "cold_drop_orange", 12 },
	[MET_COLD_TMIN_ORANGE] = { "cold_tmin_orange", 0 },
	[MET_COLD_WIND_ORANGE] = { "cold_wind_orange", 10.8 },
	[MET_COLD_DROP_RED] = { "cold_drop_red", 16 },
	[MET_COLD_TMIN_RED] = { "cold_tmin_red", 0 },
	[MET_COLD_WIND_RED] = { "cold_wind_red", 10.8 },
};

const char *met_thr_name(enum met_thr t)
{
	return t < MET_THR_MAX ? thr_table[t].name : NULL;
}

double met_thr_default(enum met_thr t)
{
	return t < MET_THR_MAX ? thr_table[t].def : 0;
}

const char *met_sig_policy_to_string(enum met_sig_policy p)
{
	switch (p) {
	case MET_SIG_REQUIRE: return "require";
	case MET_SIG_VERIFY_IF_PRESENT: return "verify-if-present";
	case MET_SIG_IGNORE: return "ignore";
	default: return NULL;
	}
}

struct cfg_parse {
	struct met_state *st;
	char msg[256];
	int r;
};

static char *lower_dup(const char *s)
{
	char *d = strdup(s);

	if (d)
		for (char *p = d; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	return d;
}

static int map_set(struct met_map **m, size_t *n, const char *key, const char *value)
{
	char *k = lower_dup(key), *v = strdup(value);

	if (!k || !v)
		goto oom;
	for (size_t i = 0; i < *n; i++) {
		if (strcmp((*m)[i].key, k) == 0) {
			free((*m)[i].value);
			(*m)[i].value = v;
			free(k);
			return 0;
		}
	}
	struct met_map *nm = realloc(*m, (*n + 1) * sizeof(**m));
	if (!nm)
		goto oom;
	*m = nm;
	nm[*n].key = k;
	nm[*n].value = v;
	(*n)++;
	return 0;
oom:
	free(k);
	free(v);
	return -ENOMEM;
}

const char *met_map_find(const struct met_map *m, size_t n, const char *key)
{
	char buf[512];
	size_t l = strlen(key);

	if (l >= sizeof buf)
		return NULL;
	for (size_t i = 0; i <= l; i++)
		buf[i] = (char)tolower((unsigned char)key[i]);
	for (size_t i = 0; i < n; i++)
		if (strcmp(m[i].key, buf) == 0)
			return m[i].value;
	return NULL;
}

static struct met_override *ovr_get(struct met_override **o, size_t *n, const char *key)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*o)[i].key, key) == 0)
			return &(*o)[i];
	struct met_override *no = realloc(*o, (*n + 1) * sizeof(**o));
	if (!no)
		return NULL;
	*o = no;
	memset(&no[*n], 0, sizeof(no[*n]));
	no[*n].key = strdup(key);
	if (!no[*n].key)
		return NULL;
	return &no[(*n)++];
}

struct met_station *met_station_find(struct met_state *st, const char *id)
{
	for (size_t i = 0; i < st->n_stations; i++)
		if (strcmp(st->stations[i].id, id) == 0)
			return &st->stations[i];
	return NULL;
}

double met_thr_for(const struct met_state *st, const struct met_station *s, enum met_thr t)
{
	if (s) {
		for (size_t i = 0; i < st->n_station_ovr; i++)
			if (strcmp(st->station_ovr[i].key, s->id) == 0 && st->station_ovr[i].thr.set[t])
				return st->station_ovr[i].thr.v[t];
		size_t best = 0;
		double v = st->thr.v[t];
		for (size_t i = 0; i < st->n_region_ovr; i++) {
			const struct met_override *o = &st->region_ovr[i];
			size_t l = strlen(o->key);
			if (o->thr.set[t] && l > best && strncmp(s->region, o->key, l) == 0) {
				best = l;
				v = o->thr.v[t];
			}
		}
		return v;
	}
	return st->thr.v[t];
}

static bool region_ok(const struct met_state *st, const char *code, char out[13])
{
	if (wf_region_normalize(code, out) < 0)
		return false;
	return !st->regions || wf_region_find(st->regions, out) != NULL;
}

static int parse_double(const char *s, double *ret)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v != v)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int set_thr(struct cfg_parse *p, struct met_thr_set *set, const char *name,
		   const char *value)
{
	for (int t = 0; t < MET_THR_MAX; t++) {
		if (strcmp(thr_table[t].name, name) == 0) {
			if (parse_double(value, &set->v[t]) < 0) {
				snprintf(p->msg, sizeof p->msg, "%s: not a number: '%s'", name, value);
				return -EINVAL;
			}
			set->set[t] = true;
			return 0;
		}
	}
	snprintf(p->msg, sizeof p->msg, "unknown threshold '%s'", name);
	return -EINVAL;
}

static int add_station(struct cfg_parse *p, const char *id, const char *value)
{
	struct met_state *st = p->st;
	char buf[256], code[13];
	char *save = NULL, *tok;
	struct met_station s = { 0 };

	if (!*id || strlen(id) > 64) {
		snprintf(p->msg, sizeof p->msg, "bad station id '%s'", id);
		return -EINVAL;
	}
	snprintf(buf, sizeof buf, "%s", value);
	tok = strtok_r(buf, ", \t", &save);
	if (!tok || !region_ok(st, tok, code)) {
		snprintf(p->msg, sizeof p->msg, "station %s: unknown region '%s'", id,
			 tok ? tok : "");
		return -EINVAL;
	}
	memcpy(s.region, code, 13);
	char *lat = strtok_r(NULL, ", \t", &save), *lon = strtok_r(NULL, ", \t", &save);
	if (lat) {
		if (!lon || parse_double(lat, &s.lat) < 0 || parse_double(lon, &s.lon) < 0 ||
		    s.lat < -90 || s.lat > 90 || s.lon < -180 || s.lon > 180) {
			snprintf(p->msg, sizeof p->msg, "station %s: bad coordinates", id);
			return -EINVAL;
		}
		s.has_point = true;
	}
	struct met_station *old = met_station_find(st, id);
	if (old) {
		memcpy(old->region, s.region, 13);
		old->has_point = s.has_point;
		old->lat = s.lat;
		old->lon = s.lon;
		return 0;
	}
	struct met_station *ns = realloc(st->stations, (st->n_stations + 1) * sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	st->stations = ns;
	s.id = strdup(id);
	if (!s.id)
		return -ENOMEM;
	ns[st->n_stations++] = s;
	return 0;
}

static int handle(struct cfg_parse *p, const char *section, const char *name, const char *value)
{
	struct met_state *st = p->st;
	int64_t ms;

	if (strcmp(section, "met") == 0) {
		if (strcmp(name, "signature_policy") == 0) {
			for (int i = 0; i < MET_SIG_POLICY_MAX; i++)
				if (strcmp(value, met_sig_policy_to_string(i)) == 0) {
					st->sig_policy = i;
					return 0;
				}
			snprintf(p->msg, sizeof p->msg,
				 "signature_policy: '%s' is not require, verify-if-present or ignore",
				 value);
			return -EINVAL;
		}
		if (strcmp(name, "trusted_cert") == 0) {
			char **n = realloc(st->trusted_certs, (st->n_trusted_certs + 1) * sizeof(*n));
			if (!n)
				return -ENOMEM;
			st->trusted_certs = n;
			n[st->n_trusted_certs] = strdup(value);
			if (!n[st->n_trusted_certs])
				return -ENOMEM;
			st->n_trusted_certs++;
			return 0;
		}
		if (strcmp(name, "unmapped") == 0) {
			if (strcmp(value, "reject") == 0)
				st->reject_unmapped = true;
			else if (strcmp(value, "ignore") == 0)
				st->reject_unmapped = false;
			else {
				snprintf(p->msg, sizeof p->msg, "unmapped: 'reject' or 'ignore'");
				return -EINVAL;
			}
			return 0;
		}
		if (strcmp(name, "cap_default_validity") == 0 || strcmp(name, "aws_validity") == 0) {
			if (wf_config_parse_duration(value, &ms) < 0 || ms <= 0) {
				snprintf(p->msg, sizeof p->msg, "%s: not a duration: '%s'", name, value);
				return -EINVAL;
			}
			if (name[0] == 'c')
				st->cap_default_validity_ms = ms;
			else
				st->aws_validity_ms = ms;
			return 0;
		}
		snprintf(p->msg, sizeof p->msg, "unknown key '%s' in [met]", name);
		return -EINVAL;
	}
	if (strcmp(section, "met.cap.event") == 0 || strcmp(section, "met.cap.eventcode") == 0) {
		if (wf_hazard_from_string(value) <= 0) {
			snprintf(p->msg, sizeof p->msg, "%s: unknown hazard '%s'", name, value);
			return -EINVAL;
		}
		if (section[8] == '\0' || strcmp(section + 8, "event") == 0)
			return map_set(&st->events, &st->n_events, name, value);
		return map_set(&st->eventcodes, &st->n_eventcodes, name, value);
	}
	if (strcmp(section, "met.cap.severity") == 0) {
		if (wf_level_from_string(value) < 0) {
			snprintf(p->msg, sizeof p->msg, "%s: unknown level '%s'", name, value);
			return -EINVAL;
		}
		return map_set(&st->severities, &st->n_severities, name, value);
	}
	if (strcmp(section, "met.cap.geocode") == 0) {
		char code[13];
		if (strcmp(value, "code") != 0 && !region_ok(st, value, code)) {
			snprintf(p->msg, sizeof p->msg, "%s: '%s' is neither 'code' nor a known region",
				 name, value);
			return -EINVAL;
		}
		return map_set(&st->geocodes, &st->n_geocodes, name, value);
	}
	if (strcmp(section, "met.stations") == 0)
		return add_station(p, name, value);
	if (strcmp(section, "met.aws") == 0)
		return set_thr(p, &st->thr, name, value);
	if (strncmp(section, "met.aws.region.", 15) == 0) {
		const char *k = section + 15;
		size_t l = strlen(k);
		if (l < 2 || l > 12 || strspn(k, "0123456789") != l) {
			snprintf(p->msg, sizeof p->msg, "[%s]: region prefix must be 2..12 digits",
				 section);
			return -EINVAL;
		}
		struct met_override *o = ovr_get(&st->region_ovr, &st->n_region_ovr, k);
		return o ? set_thr(p, &o->thr, name, value) : -ENOMEM;
	}
	if (strncmp(section, "met.aws.station.", 16) == 0) {
		struct met_override *o = ovr_get(&st->station_ovr, &st->n_station_ovr, section + 16);
		return o ? set_thr(p, &o->thr, name, value) : -ENOMEM;
	}
	if (strncmp(section, "met", 3) == 0) {
		snprintf(p->msg, sizeof p->msg, "unknown section [%s]", section);
		return -EINVAL;
	}
	return 0; /* [adapter], [service], [mqtt], ...: not ours */
}

static int met_ini_handler(void *ud, const char *section, const char *name, const char *value)
{
	struct cfg_parse *p = ud;
	int r;

	if (!name)
		return 1;
	r = handle(p, section, name, value);
	if (r < 0) {
		p->r = r;
		if (r == -ENOMEM)
			snprintf(p->msg, sizeof p->msg, "out of memory");
		return 0;
	}
	return 1;
}

void met_config_free(void *state)
{
	struct met_state *st = state;

	if (!st)
		return;
	met_sig_free(st);
	met_cap_free(st);
	for (size_t i = 0; i < st->n_trusted_certs; i++)
		free(st->trusted_certs[i]);
	free(st->trusted_certs);
	struct met_map *maps[] = { st->events, st->eventcodes, st->severities, st->geocodes };
	size_t ns[] = { st->n_events, st->n_eventcodes, st->n_severities, st->n_geocodes };
	for (size_t m = 0; m < 4; m++) {
		for (size_t i = 0; i < ns[m]; i++) {
			free(maps[m][i].key);
			free(maps[m][i].value);
		}
		free(maps[m]);
	}
	for (size_t i = 0; i < st->n_station_ovr; i++)
		free(st->station_ovr[i].key);
	free(st->station_ovr);
	for (size_t i = 0; i < st->n_region_ovr; i++)
		free(st->region_ovr[i].key);
	free(st->region_ovr);
	for (size_t i = 0; i < st->n_stations; i++) {
		free(st->stations[i].id);
		met_aws_hist_free(st->stations[i].hist);
	}
	free(st->stations);
	free(st);
}

int met_config_load(const char *path, const struct wf_region_table *regions, void **ret_state,
		    char *err, size_t err_size)
{
	struct met_state *st = calloc(1, sizeof(*st));
	struct cfg_parse p = { .st = st };
	int r;

	if (!st)
		return -ENOMEM;
	st->regions = regions;
	st->sig_policy = MET_SIG_VERIFY_IF_PRESENT;
	st->reject_unmapped = true;
	st->cap_default_validity_ms = 24 * 3600 * 1000LL;
	st->aws_validity_ms = 3 * 3600 * 1000LL;
	for (int t = 0; t < MET_THR_MAX; t++) {
		st->thr.v[t] = thr_table[t].def;
		st->thr.set[t] = true;
	}
	r = ini_parse_string((const char *)met_default_mapping, met_ini_handler, &p);
	if (r != 0 || p.r < 0) {
		snprintf(err, err_size, "(built-in mapping):%d: %s", r, p.msg);
		met_config_free(st);
		return p.r < 0 ? p.r : -EINVAL;
	}
	if (path) {
		FILE *f = fopen(path, "re");
		if (!f) {
			r = -errno;
			snprintf(err, err_size, "%s: %s", path, strerror(errno));
			met_config_free(st);
			return r;
		}
		r = ini_parse_file(f, met_ini_handler, &p);
		fclose(f);
		if (r != 0 || p.r < 0) {
			snprintf(err, err_size, "%s:%d: %s", path, r, p.r < 0 ? p.msg : "syntax error");
			met_config_free(st);
			return p.r < 0 ? p.r : -EINVAL;
		}
	}
	if (st->sig_policy == MET_SIG_REQUIRE && st->n_trusted_certs == 0) {
		snprintf(err, err_size, "%s: signature_policy = require needs at least one trusted_cert",
			 path ? path : "(defaults)");
		met_config_free(st);
		return -EINVAL;
	}
	r = met_sig_init(st, err, err_size);
	if (r < 0) {
		met_config_free(st);
		return r;
	}
	*ret_state = st;
	return 0;
}
