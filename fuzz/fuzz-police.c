/* fuzz-police: wf-police's native feed format through wf_police_ops.parse (the
 * adapter's real parser and grader), state from
 * tests/fixtures/police/police.conf (see fuzz-adapter.h). Parsing keeps no
 * state across files; its region maps are copied back anyway before every
 * input, so that nothing could carry over. */
#include "police.h"
#include "fuzz-adapter.h"

static struct police_region_map *rmaps;

static void police_save(struct police_state *s)
{
	rmaps = malloc(s->nrmaps * sizeof *rmaps + 1);
	if (!rmaps)
		fuzz_die("out of memory");
	memcpy(rmaps, s->rmaps, s->nrmaps * sizeof *rmaps);
}

static void police_reset(struct police_state *s, const struct police_state *saved)
{
	memcpy(s->rmaps, rmaps, saved->nrmaps * sizeof *rmaps);
}

FUZZ_ADAPTER(struct police_state, wf_police_ops.config_load, wf_police_ops.parse,
	     "tests/fixtures/police/police.conf", police_save, police_reset)
