/* fuzz-water: wf-water's native feed format through wf_water_ops.parse (the
 * adapter's real parser and grader), state from
 * tests/fixtures/water/water.conf (see fuzz-adapter.h). */
#include "water.h"
#include "fuzz-adapter.h"

FUZZ_ADAPTER(wf_water_ops.config_load, wf_water_ops.config_free, wf_water_ops.parse,
	     "tests/fixtures/water/water.conf")
