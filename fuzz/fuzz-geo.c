/* fuzz-geo: wf-geo's native feed format through wf_geo_ops.parse (the
 * adapter's real parser and grader), state from
 * tests/fixtures/geo/geo.conf (see fuzz-adapter.h). What parsing changes:
 * each sensor's readings (the sensor table is copied after the load and
 * copied back before every input) and the forecast-zone chains (allocated
 * on first use: freed again, as after the load). */
#include "geo.h"
#include "fuzz-adapter.h"

static struct geo_sensor *loaded;

static void geo_save(struct geo_state *s)
{
	loaded = malloc(s->nsensors * sizeof *loaded + 1);
	if (!loaded)
		fuzz_die("out of memory");
	memcpy(loaded, s->sensors, s->nsensors * sizeof *loaded);
}

static void geo_reset(struct geo_state *s, const struct geo_state *saved)
{
	memcpy(s->sensors, loaded, saved->nsensors * sizeof *loaded);
	if (s->zones != saved->zones) {
		free(s->zones);
		s->zones = saved->zones;
	}
	s->nzones = saved->nzones;
	s->zone_next = saved->zone_next;
}

FUZZ_ADAPTER(struct geo_state, wf_geo_ops.config_load, wf_geo_ops.parse,
	     "tests/fixtures/geo/geo.conf", geo_save, geo_reset)
