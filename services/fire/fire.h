/* fire: wf-fire, forest fire danger ratings, satellite hotspots and 119
 * incident reports (docs/feeds/fire.md). Prefix fire_; ops wf_fire_ops. */
#ifndef WF_FIRE_H
#define WF_FIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adapter.h"
#include "feed.h"

#define FIRE_MAX_FILE (4u << 20)
#define FIRE_MAX_AREAS 4096u
#define FIRE_MAX_REGION_MAPS 4096u

/* Danger level 1..5 -> warning level (index 0 unused). */
struct fire_map {
	Wf__V1__Level level[6];
};

struct fire_region_map {
	char region[13];
	struct fire_map map;
};

/* A configured bounding box that assigns hotspots to a region. */
struct fire_area {
	char name[WF_FEED_STATION_MAX + 1];
	char region[13];
	double lat_min, lat_max, lon_min, lon_max;
};

struct fire_state {
	const struct wf_region_table *regions;
	struct fire_map map;            /* [fire] level1..level5 */
	struct fire_region_map *rmaps;  /* [fire.region CODE] overrides */
	size_t nrmaps;
	struct fire_area *areas;        /* [fire.area NAME] */
	size_t nareas;
	double min_confidence;          /* hotspots below are ignored, % */
	double likely_confidence;       /* at or above: certainty LIKELY, % */
	/* 森林防火条例 Art. 40 event-size bounds: [0] 较大, [1] 重大, [2] 特别重大 */
	double area_ha[3];
	long deaths[3], injured[3];
	int64_t hotspot_validity_ms;
	int64_t incident_validity_ms;
};

extern const struct wf_adapter_ops wf_fire_ops;

int fire_config_load(const char *path, const struct wf_region_table *regions, void **ret_state,
		     char *err, size_t err_size);
int fire_config_load_string(const char *name, const char *text,
			    const struct wf_region_table *regions, struct fire_state **ret,
			    char *err, size_t err_size);
void fire_config_free(void *state);
/* The danger->level map for REGION12 (its county's override or [fire]). */
const struct fire_map *fire_map_for(const struct fire_state *s, const char *region12);
/* The area containing (LAT, LON): the smallest matching box, or NULL. */
const struct fire_area *fire_area_find(const struct fire_state *s, double lat, double lon);

int fire_parse(void *state, const char *name, const uint8_t *buf, size_t len, int64_t now_ms,
	       struct wf_adapter_sink *sink);

#endif
