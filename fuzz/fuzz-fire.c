/* fuzz-fire: wf-fire's native feed format through wf_fire_ops.parse (the
 * adapter's real parser and grader), state from
 * tests/fixtures/fire/fire.conf (see fuzz-adapter.h). Parsing keeps no
 * state across files; its tables (region maps, areas) are copied back
 * anyway before every input, so that nothing could carry over. */
#include "fire.h"
#include "fuzz-adapter.h"

static struct fire_region_map *rmaps;
static struct fire_area *areas;

static void fire_save(struct fire_state *s)
{
	rmaps = malloc(s->nrmaps * sizeof *rmaps + 1);
	areas = malloc(s->nareas * sizeof *areas + 1);
	if (!rmaps || !areas)
		fuzz_die("out of memory");
	memcpy(rmaps, s->rmaps, s->nrmaps * sizeof *rmaps);
	memcpy(areas, s->areas, s->nareas * sizeof *areas);
}

static void fire_reset(struct fire_state *s, const struct fire_state *saved)
{
	memcpy(s->rmaps, rmaps, saved->nrmaps * sizeof *rmaps);
	memcpy(s->areas, areas, saved->nareas * sizeof *areas);
}

FUZZ_ADAPTER(struct fire_state, wf_fire_ops.config_load, wf_fire_ops.parse,
	     "tests/fixtures/fire/fire.conf", fire_save, fire_reset)
