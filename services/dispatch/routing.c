/* routing: stations, routes and silences (see routing.h). */
#include "routing.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "wf/clock.h"

#define ROUTING_FILE_MAX (1024 * 1024)
#define LINE_MAX_ 1024

static const char *const channel_names[DSP_CH_MAX] = {
	[DSP_CH_DUTY] = "duty",
	[DSP_CH_BROADCAST] = "broadcast",
	[DSP_CH_CAP] = "cap",
	[DSP_CH_SMS] = "sms",
};

const char *dsp_channel_to_string(enum dsp_channel c)
{
	if ((int)c < 0 || c >= DSP_CH_MAX)
		return NULL;
	return channel_names[c];
}

enum dsp_channel dsp_channel_from_string(const char *s)
{
	for (int i = 0; s && i < DSP_CH_MAX; i++)
		if (strcmp(channel_names[i], s) == 0)
			return (enum dsp_channel)i;
	return DSP_CH_INVALID;
}

struct parser {
	const char *name;
	unsigned line;
	char *err;
	size_t errlen;
	const struct wf_region_table *regions;
	struct dsp_routing r;
	enum { SEC_NONE, SEC_STATION, SEC_ROUTE, SEC_SILENCE, SEC_OPERATOR } sec;
	bool have_region, have_expires, have_reason, have_channel;
};

__attribute__((format(printf, 2, 3)))
static int perr(struct parser *p, const char *fmt, ...)
{
	if (p->errlen == 0)
		return -EINVAL;
	int n = snprintf(p->err, p->errlen, "%s:%u: ", p->name, p->line);
	if (n < 0 || (size_t)n >= p->errlen)
		return -EINVAL;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

/* Strips an inline comment: ';' or '#' preceded by a blank. */
static void strip_comment(char *s)
{
	for (char *q = s; *q; q++)
		if ((*q == '#' || *q == ';') && (q == s || q[-1] == ' ' || q[-1] == '\t')) {
			*q = '\0';
			return;
		}
}

/* Splits a comma-separated list in place; calls FN on each trimmed item. */
static int each_item(struct parser *p, char *v, int (*fn)(struct parser *p, const char *item, void *ud),
		     void *ud)
{
	char *save = NULL;
	for (char *tok = strtok_r(v, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *t = trim(tok);
		if (!*t)
			return perr(p, "empty list item");
		int r = fn(p, t, ud);
		if (r < 0)
			return r;
	}
	return 0;
}

static bool digits(const char *s, size_t n)
{
	if (strlen(s) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* A region prefix: 2, 4, 6, 9 or 12 digits, or "*" (any: ""). */
static int parse_prefix(struct parser *p, const char *v, char out[13])
{
	size_t n = strlen(v);
	if (strcmp(v, "*") == 0) {
		out[0] = '\0';
		return 0;
	}
	if ((n != 2 && n != 4 && n != 6 && n != 9 && n != 12) || !digits(v, n))
		return perr(p, "invalid region prefix '%s' (2, 4, 6, 9 or 12 digits, or *)", v);
	memcpy(out, v, n + 1);
	return 0;
}

static int level_item(struct parser *p, const char *item, void *ud)
{
	struct dsp_route *rt = ud;
	int l = wf_level_from_string(item);
	if (l <= 0)
		return perr(p, "unknown level '%s' (I, II, III, IV or a colour)", item);
	rt->levels |= 1u << l;
	return 0;
}

static int hazard_item(struct parser *p, const char *item, void *ud)
{
	struct dsp_route *rt = ud;
	if (strcmp(item, "*") == 0) {
		rt->any_hazard = true;
		return 0;
	}
	int h = wf_hazard_from_string(item);
	if (h <= 0)
		return perr(p, "unknown hazard '%s'", item);
	if (rt->n_hazards == DSP_ROUTE_MAX_LIST)
		return perr(p, "more than %u hazards", DSP_ROUTE_MAX_LIST);
	rt->hazards[rt->n_hazards++] = (Wf__V1__Hazard)h;
	return 0;
}

static int channel_item(struct parser *p, const char *item, void *ud)
{
	unsigned *set = ud;
	enum dsp_channel c = dsp_channel_from_string(item);
	if (c == DSP_CH_INVALID)
		return perr(p, "unknown channel '%s' (duty, broadcast, cap, sms)", item);
	*set |= DSP_CH_BIT(c);
	return 0;
}

static int station_item(struct parser *p, const char *item, void *ud)
{
	struct dsp_route *rt = ud;
	if (strcmp(item, "auto") == 0) {
		rt->auto_stations = true;
		return 0;
	}
	if (!wf_topic_id_valid(item))
		return perr(p, "invalid station id '%s'", item);
	if (rt->n_stations == DSP_ROUTE_MAX_LIST)
		return perr(p, "more than %u stations", DSP_ROUTE_MAX_LIST);
	snprintf(rt->stations[rt->n_stations++], DSP_ID_MAX + 1, "%s", item);
	return 0;
}

static int parse_bool(struct parser *p, const char *v, bool *out)
{
	if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0) {
		*out = true;
		return 0;
	}
	if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0) {
		*out = false;
		return 0;
	}
	return perr(p, "expected true or false, not '%s'", v);
}

static int finish_section(struct parser *p)
{
	switch (p->sec) {
	case SEC_STATION:
		if (!p->have_region)
			return perr(p, "station %s has no region",
				    p->r.stations[p->r.n_stations - 1].id);
		break;
	case SEC_ROUTE: {
		struct dsp_route *rt = &p->r.routes[p->r.n_routes - 1];
		if (!p->have_channel)
			return perr(p, "route %s has no channels", rt->name);
		if (rt->levels == 0)
			rt->levels = 0x1e;
		if (rt->n_hazards == 0)
			rt->any_hazard = true;
		if (rt->n_stations == 0)
			rt->auto_stations = true;
		break;
	}
	case SEC_SILENCE: {
		struct dsp_silence *s = &p->r.silences[p->r.n_silences - 1];
		if (!p->have_channel || !p->have_expires || !p->have_reason)
			return perr(p, "silence %s needs channel, expires and reason", s->id);
		break;
	}
	default:
		break;
	}
	return 0;
}

static int section(struct parser *p, char *name)
{
	int r = finish_section(p);
	if (r < 0)
		return r;
	char *sp = strchr(name, ' ');
	if (!sp)
		return perr(p, "unknown section [%s] (station ID, route NAME, silence ID)", name);
	*sp = '\0';
	char *id = trim(sp + 1);
	p->have_region = p->have_expires = p->have_reason = p->have_channel = false;
	if (!wf_topic_id_valid(id))
		return perr(p, "invalid name '%s' ([A-Za-z0-9._-], at most 64)", id);
	if (strcmp(name, "station") == 0) {
		if (p->r.n_stations == DSP_MAX_STATIONS)
			return perr(p, "more than %u stations", DSP_MAX_STATIONS);
		if (dsp_station_find(&p->r, id))
			return perr(p, "duplicate station %s", id);
		struct dsp_station *s = &p->r.stations[p->r.n_stations++];
		memset(s, 0, sizeof *s);
		snprintf(s->id, sizeof s->id, "%s", id);
		p->sec = SEC_STATION;
	} else if (strcmp(name, "route") == 0) {
		if (p->r.n_routes == DSP_MAX_ROUTES)
			return perr(p, "more than %u routes", DSP_MAX_ROUTES);
		struct dsp_route *rt = &p->r.routes[p->r.n_routes++];
		memset(rt, 0, sizeof *rt);
		snprintf(rt->name, sizeof rt->name, "%s", id);
		p->sec = SEC_ROUTE;
	} else if (strcmp(name, "operator") == 0) {
		if (p->r.n_operators == DSP_MAX_OPERATORS)
			return perr(p, "more than %u operators", DSP_MAX_OPERATORS);
		if (dsp_operator_find(&p->r, id))
			return perr(p, "duplicate operator %s", id);
		struct dsp_operator *o = &p->r.operators[p->r.n_operators++];
		memset(o, 0, sizeof *o);
		snprintf(o->id, sizeof o->id, "%s", id);
		p->sec = SEC_OPERATOR;
	} else if (strcmp(name, "silence") == 0) {
		if (p->r.n_silences == DSP_MAX_SILENCES)
			return perr(p, "more than %u silences", DSP_MAX_SILENCES);
		struct dsp_silence *s = &p->r.silences[p->r.n_silences++];
		memset(s, 0, sizeof *s);
		snprintf(s->id, sizeof s->id, "%s", id);
		p->sec = SEC_SILENCE;
	} else {
		return perr(p, "unknown section [%s %s] (station, route, operator, silence)", name, id);
	}
	return 0;
}

static int key_station(struct parser *p, const char *k, const char *v)
{
	struct dsp_station *s = &p->r.stations[p->r.n_stations - 1];
	if (strcmp(k, "region") != 0)
		return perr(p, "unknown key '%s' in a station (region)", k);
	if (wf_region_normalize(v, s->region) < 0 ||
	    (s->level = wf_region_level_of_code(s->region)) == WF_REGION_LEVEL_INVALID)
		return perr(p, "invalid region '%s' (6 or 12 digits)", v);
	if (s->level > WF_REGION_TOWNSHIP)
		return perr(p, "station region %s is a village: stations are township or coarser",
			    s->region);
	if (p->regions && !wf_region_find(p->regions, s->region))
		return perr(p, "region %s is not in the region table", s->region);
	p->have_region = true;
	return 0;
}

static int key_route(struct parser *p, const char *k, char *v)
{
	struct dsp_route *rt = &p->r.routes[p->r.n_routes - 1];
	if (strcmp(k, "levels") == 0)
		return each_item(p, v, level_item, rt);
	if (strcmp(k, "hazards") == 0)
		return each_item(p, v, hazard_item, rt);
	if (strcmp(k, "region") == 0)
		return parse_prefix(p, v, rt->prefix);
	if (strcmp(k, "channels") == 0) {
		p->have_channel = true;
		return each_item(p, v, channel_item, &rt->channels);
	}
	if (strcmp(k, "stations") == 0)
		return each_item(p, v, station_item, rt);
	if (strcmp(k, "continue") == 0)
		return parse_bool(p, v, &rt->cont);
	return perr(p, "unknown key '%s' in a route (levels, hazards, region, channels, stations, "
		       "continue)", k);
}

static int key_silence(struct parser *p, const char *k, const char *v)
{
	struct dsp_silence *s = &p->r.silences[p->r.n_silences - 1];
	if (strcmp(k, "channel") == 0) {
		s->channel = dsp_channel_from_string(v);
		if (s->channel == DSP_CH_INVALID || s->channel == DSP_CH_DUTY)
			return perr(p, "a silence is for broadcast, cap or sms, not '%s'", v);
		p->have_channel = true;
		return 0;
	}
	if (strcmp(k, "region") == 0)
		return parse_prefix(p, v, s->prefix);
	if (strcmp(k, "hazard") == 0) {
		int h = strcmp(v, "*") == 0 ? 0 : wf_hazard_from_string(v);
		if (h < 0)
			return perr(p, "unknown hazard '%s'", v);
		s->hazard = (Wf__V1__Hazard)h;
		return 0;
	}
	if (strcmp(k, "expires") == 0) {
		if (wf_clock_parse(v, &s->expires_ms) < 0)
			return perr(p, "invalid time '%s' (RFC 3339)", v);
		p->have_expires = true;
		return 0;
	}
	if (strcmp(k, "reason") == 0) {
		if (strlen(v) >= sizeof s->reason || !*v)
			return perr(p, "reason empty or over %zu bytes", sizeof s->reason - 1);
		snprintf(s->reason, sizeof s->reason, "%s", v);
		p->have_reason = true;
		return 0;
	}
	return perr(p, "unknown key '%s' in a silence (channel, region, hazard, expires, reason)", k);
}

int dsp_routing_parse(const char *name, const char *text, const struct wf_region_table *regions,
		      struct dsp_routing *ret, char *err, size_t errlen)
{
	struct parser p;
	char line[LINE_MAX_ + 2];
	int r = 0;

	memset(&p, 0, sizeof p);
	p.name = name;
	p.err = err;
	p.errlen = errlen;
	p.regions = regions;
	p.r.stations = calloc(DSP_MAX_STATIONS, sizeof *p.r.stations);
	p.r.routes = calloc(DSP_MAX_ROUTES, sizeof *p.r.routes);
	p.r.silences = calloc(DSP_MAX_SILENCES, sizeof *p.r.silences);
	p.r.operators = calloc(DSP_MAX_OPERATORS, sizeof *p.r.operators);
	p.r.default_channels = DSP_CH_BIT(DSP_CH_DUTY);
	if (!p.r.stations || !p.r.routes || !p.r.silences || !p.r.operators) {
		dsp_routing_free(&p.r);
		return -ENOMEM;
	}
	const char *s = text;
	while (r == 0 && *s) {
		const char *nl = strchr(s, '\n');
		size_t n = nl ? (size_t)(nl - s) : strlen(s);
		p.line++;
		if (n > LINE_MAX_) {
			r = perr(&p, "line too long (%zu bytes, limit %d)", n, LINE_MAX_);
			break;
		}
		memcpy(line, s, n);
		line[n] = '\0';
		s += n + (nl ? 1 : 0);
		char *l = trim(line);
		if (!*l || *l == '#' || *l == ';')
			continue;
		strip_comment(l);
		l = trim(l);
		if (*l == '[') {
			char *end = strchr(l, ']');
			if (!end || end[1] != '\0') {
				r = perr(&p, "syntax error: expected [section NAME]");
				break;
			}
			*end = '\0';
			r = section(&p, trim(l + 1));
			continue;
		}
		char *eq = strchr(l, '=');
		if (!eq) {
			r = perr(&p, "syntax error: expected key = value");
			break;
		}
		*eq = '\0';
		char *k = trim(l), *v = trim(eq + 1);
		switch (p.sec) {
		case SEC_STATION:
			r = key_station(&p, k, v);
			break;
		case SEC_ROUTE:
			r = key_route(&p, k, v);
			break;
		case SEC_SILENCE:
			r = key_silence(&p, k, v);
			break;
		case SEC_OPERATOR:
			if (strcmp(k, "name") != 0) {
				r = perr(&p, "unknown key '%s' in an operator (name)", k);
			} else if (strlen(v) >= sizeof p.r.operators[0].name) {
				r = perr(&p, "name over %zu bytes", sizeof p.r.operators[0].name - 1);
			} else {
				snprintf(p.r.operators[p.r.n_operators - 1].name,
					 sizeof p.r.operators[0].name, "%s", v);
			}
			break;
		default:
			r = perr(&p, "key '%s' outside of any [section]", k);
		}
	}
	if (r == 0)
		r = finish_section(&p);
	/* every explicit station of a route must exist */
	for (size_t i = 0; r == 0 && i < p.r.n_routes; i++)
		for (size_t k = 0; r == 0 && k < p.r.routes[i].n_stations; k++)
			if (!dsp_station_find(&p.r, p.r.routes[i].stations[k])) {
				p.line = 0;
				r = perr(&p, "route %s names unknown station %s", p.r.routes[i].name,
					 p.r.routes[i].stations[k]);
			}
	if (r < 0) {
		dsp_routing_free(&p.r);
		return r;
	}
	*ret = p.r;
	return 0;
}

int dsp_routing_load(const char *path, const struct wf_region_table *regions,
		     struct dsp_routing *ret, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	struct stat st;
	if (!f) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > ROUTING_FILE_MAX) {
		fclose(f);
		snprintf(err, errlen, "%s: not a regular file of at most %d bytes", path,
			 ROUTING_FILE_MAX);
		return -EINVAL;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	size_t n = fread(buf, 1, (size_t)st.st_size, f);
	fclose(f);
	buf[n] = '\0';
	if (strlen(buf) != n) {
		free(buf);
		snprintf(err, errlen, "%s: NUL byte in file", path);
		return -EINVAL;
	}
	int r = dsp_routing_parse(path, buf, regions, ret, err, errlen);
	free(buf);
	return r;
}

void dsp_routing_free(struct dsp_routing *r)
{
	if (!r)
		return;
	free(r->stations);
	free(r->routes);
	free(r->silences);
	free(r->operators);
	memset(r, 0, sizeof *r);
}

static bool prefix_matches(const char *prefix, const char *region)
{
	return !prefix[0] || strncmp(region, prefix, strlen(prefix)) == 0;
}

static bool any_region_matches(const char *prefix, const Wf__V1__Warning *w)
{
	for (size_t i = 0; i < w->n_regions; i++)
		if (prefix_matches(prefix, w->regions[i]))
			return true;
	return false;
}

static bool route_matches(const struct dsp_route *rt, const Wf__V1__Warning *w)
{
	if ((int)w->level <= 0 || w->level > 4 || !(rt->levels & (1u << w->level)))
		return false;
	if (!rt->any_hazard) {
		bool hit = false;
		for (size_t i = 0; i < rt->n_hazards; i++)
			hit = hit || rt->hazards[i] == w->hazard;
		if (!hit)
			return false;
	}
	return any_region_matches(rt->prefix, w);
}

void dsp_routing_match(const struct dsp_routing *r, const Wf__V1__Warning *w,
		       struct dsp_route_result *ret)
{
	memset(ret, 0, sizeof *ret);
	bool any = false;
	for (size_t i = 0; i < r->n_routes; i++) {
		const struct dsp_route *rt = &r->routes[i];
		if (!route_matches(rt, w))
			continue;
		if (!any)
			snprintf(ret->matched, sizeof ret->matched, "%s", rt->name);
		any = true;
		ret->channels |= rt->channels;
		ret->auto_stations = ret->auto_stations || rt->auto_stations;
		for (size_t k = 0; k < rt->n_stations; k++) {
			bool dup = false;
			for (size_t j = 0; j < ret->n_stations; j++)
				dup = dup || strcmp(ret->stations[j], rt->stations[k]) == 0;
			if (!dup && ret->n_stations < sizeof ret->stations / sizeof ret->stations[0])
				ret->stations[ret->n_stations++] = rt->stations[k];
		}
		if (!rt->cont)
			break;
	}
	if (!any) {
		ret->channels = r->default_channels;
		ret->auto_stations = true;
	}
}

static bool silence_applies(const struct dsp_silence *s, enum dsp_channel ch,
			    const Wf__V1__Warning *w, int64_t now_ms)
{
	return s->channel == ch && now_ms < s->expires_ms &&
	       (s->hazard == WF__V1__HAZARD__HAZARD_UNSPECIFIED || s->hazard == w->hazard) &&
	       any_region_matches(s->prefix, w);
}

const struct dsp_silence *dsp_routing_silenced(const struct dsp_routing *r,
					       const struct dsp_silence *extra, size_t n_extra,
					       enum dsp_channel ch, const Wf__V1__Warning *w,
					       int64_t now_ms)
{
	for (size_t i = 0; i < r->n_silences; i++)
		if (silence_applies(&r->silences[i], ch, w, now_ms))
			return &r->silences[i];
	for (size_t i = 0; i < n_extra; i++)
		if (silence_applies(&extra[i], ch, w, now_ms))
			return &extra[i];
	return NULL;
}

void dsp_silence_from_msg(const Wf__V1__Silence *m, struct dsp_silence *ret)
{
	memset(ret, 0, sizeof *ret);
	snprintf(ret->id, sizeof ret->id, "%s", m->id);
	ret->channel = dsp_channel_from_string(m->channel);
	snprintf(ret->prefix, sizeof ret->prefix, "%s", m->region_prefix ? m->region_prefix : "");
	ret->hazard = m->hazard;
	ret->expires_ms = m->expires_ms;
	snprintf(ret->reason, sizeof ret->reason, "%s", m->reason ? m->reason : "");
}

const struct dsp_operator *dsp_operator_find(const struct dsp_routing *r, const char *id)
{
	for (size_t i = 0; i < r->n_operators; i++)
		if (strcmp(r->operators[i].id, id) == 0)
			return &r->operators[i];
	return NULL;
}

const struct dsp_station *dsp_station_find(const struct dsp_routing *r, const char *id)
{
	for (size_t i = 0; i < r->n_stations; i++)
		if (strcmp(r->stations[i].id, id) == 0)
			return &r->stations[i];
	return NULL;
}

/* The station with the longest region prefix containing REGION12 and
 * strictly coarser than MAX_LEVEL + 1 (i.e. level <= max_level). */
static const struct dsp_station *closest(const struct dsp_routing *r, const char *region12,
					 int max_level)
{
	const struct dsp_station *best = NULL;
	for (size_t i = 0; i < r->n_stations; i++) {
		const struct dsp_station *s = &r->stations[i];
		if ((int)s->level > max_level || !wf_region_contains(s->region, region12))
			continue;
		if (!best || s->level > best->level)
			best = s;
	}
	return best;
}

const struct dsp_station *dsp_station_for(const struct dsp_routing *r, const char *region12)
{
	return closest(r, region12, WF_REGION_VILLAGE);
}

const struct dsp_station *dsp_station_parent(const struct dsp_routing *r,
					     const struct dsp_station *s)
{
	if (s->level == WF_REGION_PROVINCE)
		return NULL;
	return closest(r, s->region, (int)s->level - 1);
}
