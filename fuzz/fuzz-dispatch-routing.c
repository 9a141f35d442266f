/* fuzz-dispatch-routing: the dispatcher's routing-file parser
 * (dsp_routing_parse, services/dispatch/routing.c) on arbitrary text, with
 * the shipped region table; an accepted file is then used the way
 * wf-dispatch uses it: routes matched for a few warnings, silences
 * checked per channel, duty stations looked up and walked up the tree. */
#include "fuzz.h"
#include "routing.h"

static const char *const test_regions[] = { "410185103000", "410185000000", "410102000000",
					    "410000000000", "110101001000" };

static void use(const struct dsp_routing *r)
{
	static const Wf__V1__Level levels[] = { WF__V1__LEVEL__LEVEL_I, WF__V1__LEVEL__LEVEL_IV };
	static const Wf__V1__Hazard hazards[] = { WF__V1__HAZARD__HAZARD_FLOOD,
						  WF__V1__HAZARD__HAZARD_RAINSTORM };

	for (size_t i = 0; i < sizeof test_regions / sizeof test_regions[0]; i++) {
		char *regs[1] = { (char *)test_regions[i] };
		Wf__V1__Warning w = WF__V1__WARNING__INIT;
		struct dsp_route_result res;

		w.id = (char *)"w1";
		w.version = 1;
		w.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_ALERT;
		w.level = levels[i % 2];
		w.hazard = hazards[i % 2];
		w.regions = regs;
		w.n_regions = 1;
		w.status = WF__V1__STATUS__STATUS_ACTUAL;
		dsp_routing_match(r, &w, &res);
		for (int ch = 0; ch < DSP_CH_MAX; ch++)
			(void)dsp_routing_silenced(r, NULL, 0, (enum dsp_channel)ch, &w, FUZZ_NOW);
		const struct dsp_station *s = dsp_station_for(r, test_regions[i]);
		for (unsigned hops = 0; s && hops <= DSP_MAX_STATIONS; hops++)
			s = dsp_station_parent(r, s);
		if (s)
			fuzz_die("station tree has a cycle");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size);
	char err[512];
	struct dsp_routing r;

	memset(&r, 0, sizeof r);
	if (dsp_routing_parse("fuzz.routes", text, fuzz_regions(), &r, err, sizeof err) == 0) {
		use(&r);
		dsp_routing_free(&r);
	}
	free(text);
	return 0;
}
