/* fuzz-geo: wf-geo's native feed format through wf_geo_ops.parse (the
 * adapter's real parser and grader), state from
 * tests/fixtures/geo/geo.conf (see fuzz-adapter.h). */
#include "geo.h"
#include "fuzz-adapter.h"

FUZZ_ADAPTER(wf_geo_ops.config_load, wf_geo_ops.config_free, wf_geo_ops.parse,
	     "tests/fixtures/geo/geo.conf")
