/* water: wf-water, gauge and reservoir readings graded by the MWR 水情预警
 * criteria (docs/feeds/water.md). Functions and types use the water_ prefix;
 * the adapter ops are wf_water_ops. */
#ifndef WF_WATER_H
#define WF_WATER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adapter.h"
#include "feed.h"

#define WATER_MAX_FILE (4u << 20) /* bytes */
#define WATER_HIST 16u            /* readings kept per station for the trend */
#define WATER_MAX_STATIONS 10000u

enum water_family { WATER_FLOOD = 0, WATER_LOW = 1, WATER_FAMILIES };

struct water_reading {
	int64_t t;
	double stage;
	double flow; /* NAN when absent */
};

struct water_station {
	char id[WF_FEED_STATION_MAX + 1];
	char region[13];
	char *name;
	bool reservoir;
	bool has_point;
	double lat, lon;
	/* river: 警戒 / 保证 / 历史最高 stages (m) and return-period flows (m3/s) */
	double warning, guaranteed, record;
	double flow5, flow20, flow50;
	/* reservoir: 汛限 / 设计洪水位 / 校核洪水位 (m) */
	double flood_limit, design, check;
	/* low water: 旱警 stage, 常年同期最低, 历史最低 (m) */
	double drought, normal_min, record_low;
	/* per-station overrides of the [water] values (NAN: not set) */
	double approach_m, approach_flow_ratio, rise_rate;
	/* state across files */
	struct water_reading hist[WATER_HIST];
	size_t nhist;
	char active[WATER_FAMILIES][128]; /* id of the last graded event, "" when none */
};

struct water_state {
	const struct wf_region_table *regions;
	double approach_m;          /* blue: within this many metres below the threshold */
	double approach_flow_ratio; /* blue: flow >= ratio * 5-year flow */
	double rise_rate;           /* m/h: emit a stage_rise_rate event at or above */
	int64_t validity_ms;        /* expires_ms - observed_ms */
	int64_t trend_window_ms;    /* previous reading must be at most this old */
	struct water_station *st;   /* sorted by id after loading */
	size_t nst;
};

extern const struct wf_adapter_ops wf_water_ops;

int water_config_load(const char *path, const struct wf_region_table *regions, void **ret_state,
		      char *err, size_t err_size);
/* As above from TEXT (NAME in messages); for tests. */
int water_config_load_string(const char *name, const char *text,
			     const struct wf_region_table *regions, struct water_state **ret,
			     char *err, size_t err_size);
void water_config_free(void *state);
struct water_station *water_station_find(struct water_state *s, const char *id);

int water_parse(void *state, const char *name, const uint8_t *buf, size_t len, int64_t now_ms,
		struct wf_adapter_sink *sink);

#endif
