/* fuzz-police: wf-police's native feed format through wf_police_ops.parse (the
 * adapter's real parser and grader), state from
 * tests/fixtures/police/police.conf (see fuzz-adapter.h). */
#include "police.h"
#include "fuzz-adapter.h"

FUZZ_ADAPTER(wf_police_ops.config_load, wf_police_ops.config_free, wf_police_ops.parse,
	     "tests/fixtures/police/police.conf")
