/* fuzz-water: wf-water's native feed format through wf_water_ops.parse (the
 * adapter's real parser and grader), state from
 * tests/fixtures/water/water.conf (see fuzz-adapter.h). What parsing
 * changes lives in the station table (each station's readings and active
 * event ids): it is copied after the load and copied back before every
 * input. */
#include "water.h"
#include "fuzz-adapter.h"

static struct water_station *loaded;

static void water_save(struct water_state *s)
{
	loaded = malloc(s->nst * sizeof *loaded + 1);
	if (!loaded)
		fuzz_die("out of memory");
	memcpy(loaded, s->st, s->nst * sizeof *loaded);
}

static void water_reset(struct water_state *s, const struct water_state *saved)
{
	memcpy(s->st, loaded, saved->nst * sizeof *loaded);
}

FUZZ_ADAPTER(struct water_state, wf_water_ops.config_load, wf_water_ops.parse,
	     "tests/fixtures/water/water.conf", water_save, water_reset)
