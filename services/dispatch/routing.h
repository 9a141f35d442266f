/* routing: the dispatcher's routing file (docs/dispatch.md, "Routing"):
 * duty stations on the administrative tree, an ordered list of routes
 * (which channels and recipients by hazard, level and region prefix, like
 * a one-level Alertmanager routing tree with `continue`), and silences
 * with an expiry and a reason.
 *
 *	[station duty-410185]         ; station id = its inbox topic id
 *	region = 410185               ; the unit it is on duty for (6 or 12 digits)
 *
 *	[route severe]                ; routes are tried in file order
 *	levels = I, II                ; default: all
 *	hazards = rainstorm, flood    ; default: all ("*")
 *	region = 4101                 ; prefix of a warning region: 2/4/6/9/12 digits, "*"
 *	channels = duty, broadcast, cap, sms
 *	stations = auto               ; duty recipients: auto (by the tree) or ids
 *	continue = false              ; true: also try the routes after this one
 *
 *	[operator op-zhang]           ; who may approve, reject and silence
 *	name = 张三                   ; optional, for logs
 *
 *	[silence sms-maint]
 *	channel = sms                 ; broadcast, cap or sms (never duty)
 *	region = 4101                 ; optional prefix
 *	hazard = rainstorm            ; optional
 *	expires = 2026-12-31T00:00:00+08:00
 *	reason = gateway maintenance
 *
 * Nothing here logs or reads the clock. */
#ifndef DSP_ROUTING_H
#define DSP_ROUTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dispatch.pb-c.h"
#include "warning.pb-c.h"
#include "wf/region.h"
#include "wf/topic.h"

enum dsp_channel {
	DSP_CH_DUTY = 0,
	DSP_CH_BROADCAST,   /* retained MQTT state per county */
	DSP_CH_CAP,         /* CAP 1.2 file in the spool (and optional POST) */
	DSP_CH_SMS,         /* SMS through Kannel (services/dispatch/sms*) */
	DSP_CH_MAX,
	DSP_CH_INVALID = -1,
};

#define DSP_CH_BIT(c) (1u << (c))
#define DSP_CH_PUBLIC (DSP_CH_BIT(DSP_CH_BROADCAST) | DSP_CH_BIT(DSP_CH_CAP) | DSP_CH_BIT(DSP_CH_SMS))

/* "duty", "broadcast", "cap", "sms"; NULL otherwise. */
const char *dsp_channel_to_string(enum dsp_channel c);
enum dsp_channel dsp_channel_from_string(const char *s);

#define DSP_MAX_STATIONS 4096u
#define DSP_MAX_ROUTES 256u
#define DSP_MAX_SILENCES 256u
#define DSP_MAX_OPERATORS 256u
#define DSP_ROUTE_MAX_LIST 16u
#define DSP_ID_MAX WF_TOPIC_ID_MAX

struct dsp_station {
	char id[DSP_ID_MAX + 1];
	char region[13];             /* 12 digits */
	enum wf_region_level level;
};

struct dsp_route {
	char name[DSP_ID_MAX + 1];
	unsigned levels;             /* bit (1 << level) for LEVEL_I..IV */
	bool any_hazard;
	Wf__V1__Hazard hazards[DSP_ROUTE_MAX_LIST];
	size_t n_hazards;
	char prefix[13];             /* "" = any */
	unsigned channels;           /* DSP_CH_BIT set */
	bool auto_stations;
	char stations[DSP_ROUTE_MAX_LIST][DSP_ID_MAX + 1];
	size_t n_stations;
	bool cont;
};

struct dsp_silence {
	char id[129];
	enum dsp_channel channel;
	char prefix[13];             /* "" = any */
	Wf__V1__Hazard hazard;       /* UNSPECIFIED = any */
	int64_t expires_ms;
	char reason[257];
};

struct dsp_operator {
	char id[DSP_ID_MAX + 1];      /* the broker user of wf/v1/approval/<id> */
	char name[129];
};

struct dsp_routing {
	struct dsp_operator *operators;
	size_t n_operators;
	struct dsp_station *stations;
	size_t n_stations;
	struct dsp_route *routes;
	size_t n_routes;
	struct dsp_silence *silences;
	size_t n_silences;
	unsigned default_channels;   /* when no route matches: duty */
};

/* Parses the routing file at PATH into *RET (free with
 * dsp_routing_free()). REGIONS (may be NULL) checks that station regions
 * exist. Errors: -EINVAL with "path:line: message" in ERR, or -errno of
 * reading it. *RET is untouched on failure. */
int dsp_routing_load(const char *path, const struct wf_region_table *regions,
		     struct dsp_routing *ret, char *err, size_t errlen);
/* The same from a string (NAME is used in messages), for tests. */
int dsp_routing_parse(const char *name, const char *text, const struct wf_region_table *regions,
		      struct dsp_routing *ret, char *err, size_t errlen);
void dsp_routing_free(struct dsp_routing *r);

/* What a warning version should get. */
struct dsp_route_result {
	unsigned channels;           /* DSP_CH_BIT set, before silences and policy */
	bool auto_stations;          /* duty: stations from the tree */
	const char *stations[DSP_ROUTE_MAX_LIST * 4]; /* explicit station ids (borrowed) */
	size_t n_stations;
	char matched[DSP_ID_MAX + 1]; /* first matching route, "" = the default */
};

/* Evaluates the routes for W. This function can't fail. */
void dsp_routing_match(const struct dsp_routing *r, const Wf__V1__Warning *w,
		       struct dsp_route_result *ret);

/* A silence of R (or one of EXTRA, N_EXTRA stored silences) in force at
 * NOW_MS for channel CH and warning W, or NULL. */
const struct dsp_silence *dsp_routing_silenced(const struct dsp_routing *r,
					       const struct dsp_silence *extra, size_t n_extra,
					       enum dsp_channel ch, const Wf__V1__Warning *w,
					       int64_t now_ms);

/* Converts a validated Silence message. This function can't fail. */
void dsp_silence_from_msg(const Wf__V1__Silence *m, struct dsp_silence *ret);

/* The duty station for REGION12: the one whose region is the closest
 * ancestor (or the region itself), or NULL. */
const struct dsp_station *dsp_station_for(const struct dsp_routing *r, const char *region12);
/* The next station up the tree from S (closest strict ancestor of its
 * region that has a station), or NULL at the top. */
const struct dsp_station *dsp_station_parent(const struct dsp_routing *r,
					     const struct dsp_station *s);
const struct dsp_station *dsp_station_find(const struct dsp_routing *r, const char *id);

/* The operator ID, or NULL: approvals, rejections and silences count only
 * from operators listed in the routing file. */
const struct dsp_operator *dsp_operator_find(const struct dsp_routing *r, const char *id);

#endif
