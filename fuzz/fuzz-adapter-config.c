/* fuzz-adapter-config: the agency config parsers of wf-water, wf-geo,
 * wf-fire and wf-police (<agency>_config_load_string: stations, sensors,
 * danger maps, areas, grading schemes) on arbitrary text. The first byte
 * picks the agency, the rest is the file. */
#include "fire.h"
#include "fuzz.h"
#include "geo.h"
#include "police.h"
#include "water.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];

	if (size < 1)
		return 0;
	char *text = fuzz_cstr(data + 1, size - 1);
	const struct wf_region_table *reg = fuzz_regions();
	switch (data[0] % 4) {
	case 0: {
		struct water_state *s = NULL;
		if (water_config_load_string("fuzz.conf", text, reg, &s, err, sizeof err) == 0)
			water_config_free(s);
		break;
	}
	case 1: {
		struct geo_state *s = NULL;
		if (geo_config_load_string("fuzz.conf", text, reg, &s, err, sizeof err) == 0)
			geo_config_free(s);
		break;
	}
	case 2: {
		struct fire_state *s = NULL;
		if (fire_config_load_string("fuzz.conf", text, reg, &s, err, sizeof err) == 0)
			fire_config_free(s);
		break;
	}
	default: {
		struct police_state *s = NULL;
		if (police_config_load_string("fuzz.conf", text, reg, &s, err, sizeof err) == 0)
			police_config_free(s);
		break;
	}
	}
	free(text);
	return 0;
}
