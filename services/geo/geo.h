/* geo: wf-geo, geological-hazard meteorological risk forecasts and slope
 * monitoring sensors (docs/feeds/geo.md). Prefix geo_; ops wf_geo_ops. */
#ifndef WF_GEO_H
#define WF_GEO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adapter.h"
#include "feed.h"

#define GEO_MAX_FILE (4u << 20)
#define GEO_HIST 8u
#define GEO_MAX_SENSORS 10000u
#define GEO_MAX_ZONES 4096u

/* Rate thresholds, one per level, index 0 blue .. 3 red (NAN: unset). */
struct geo_steps {
	double v[4];
};

struct geo_reading {
	int64_t t;
	double disp, crack, rain; /* NAN when absent */
	double vdisp;             /* mm/d at this reading, NAN when unknown */
};

struct geo_sensor {
	char id[WF_FEED_STATION_MAX + 1];
	char region[13];
	char *name;
	Wf__V1__Hazard hazard;
	double lat, lon;
	bool has_point;
	/* per-sensor overrides (a NAN step keeps the [geo] value) */
	struct geo_steps velocity, crack_rate, rain_24h;
	double accel;
	struct geo_reading hist[GEO_HIST];
	size_t nhist;
};

struct geo_zone_state {
	char key[80];     /* zone + valid_from */
	char last_id[128];
};

struct geo_state {
	const struct wf_region_table *regions;
	bool legacy5;                   /* level_scheme = legacy5 (old 1-5 grades) */
	Wf__V1__Level min_level;        /* lowest risk level emitted */
	struct geo_steps velocity;      /* displacement rate, mm/d */
	struct geo_steps crack_rate;    /* crack opening rate, mm/d */
	struct geo_steps rain_24h;      /* site rainfall, mm */
	double accel;                   /* mm/d^2 */
	Wf__V1__Level accel_level;
	int64_t min_interval_ms;        /* shortest interval a rate is computed over */
	int64_t max_interval_ms;        /* longest */
	int64_t validity_ms;            /* sensor events */
	struct geo_sensor *sensors;     /* sorted by id after loading */
	size_t nsensors;
	struct geo_zone_state *zones;   /* forecast chains seen (ring) */
	size_t nzones, zone_next;
};

extern const struct wf_adapter_ops wf_geo_ops;

int geo_config_load(const char *path, const struct wf_region_table *regions, void **ret_state,
		    char *err, size_t err_size);
int geo_config_load_string(const char *name, const char *text,
			   const struct wf_region_table *regions, struct geo_state **ret, char *err,
			   size_t err_size);
void geo_config_free(void *state);
struct geo_sensor *geo_sensor_find(struct geo_state *s, const char *id);

int geo_parse(void *state, const char *name, const uint8_t *buf, size_t len, int64_t now_ms,
	      struct wf_adapter_sink *sink);

#endif
