/* police: wf-police, 110 incident reports graded by a configurable local
 * scheme (docs/feeds/police.md). Prefix police_; ops wf_police_ops.
 *
 * The law grades public-security events (特别重大/重大/较大/一般) but gives
 * them no warning colour (DOMAIN.md §1, §6): the grade -> Level map here is a
 * local convention, set in the config, not a national standard. */
#ifndef WF_POLICE_H
#define WF_POLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adapter.h"
#include "feed.h"

#define POLICE_MAX_FILE (4u << 20)
#define POLICE_MAX_REGION_MAPS 4096u

/* Grade 1 特别重大 .. 4 一般 -> Level (index 0 unused). */
struct police_map {
	Wf__V1__Level level[5];
};

struct police_region_map {
	char region[13];
	struct police_map map;
};

struct police_state {
	const struct wf_region_table *regions;
	struct police_map map;
	struct police_region_map *rmaps;
	size_t nrmaps;
	/* thresholds for grades 1..3 (index 1..3; grade 4 is the rest) */
	long deaths[4], injured[4];
	/* crowd density, persons/m2, for grades 1..4 */
	double density[5];
	int64_t validity_ms;
};

extern const struct wf_adapter_ops wf_police_ops;

int police_config_load(const char *path, const struct wf_region_table *regions,
		       void **ret_state, char *err, size_t err_size);
int police_config_load_string(const char *name, const char *text,
			      const struct wf_region_table *regions, struct police_state **ret,
			      char *err, size_t err_size);
void police_config_free(void *state);

int police_parse(void *state, const char *name, const uint8_t *buf, size_t len, int64_t now_ms,
		 struct wf_adapter_sink *sink);

#endif
