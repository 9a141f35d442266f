/* fuzz-fire: wf-fire's native feed format through wf_fire_ops.parse (the
 * adapter's real parser and grader), state from
 * tests/fixtures/fire/fire.conf (see fuzz-adapter.h). */
#include "fire.h"
#include "fuzz-adapter.h"

FUZZ_ADAPTER(wf_fire_ops.config_load, wf_fire_ops.config_free, wf_fire_ops.parse,
	     "tests/fixtures/fire/fire.conf")
