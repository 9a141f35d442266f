/* wf-met: the meteorology adapter (CAP 1.1/1.2 warnings and automatic
 * weather station CSV) on the shared adapter skeleton. */
#include "met.h"

static int met_parse(void *state, const char *name, const uint8_t *buf, size_t len,
		     int64_t now_ms, struct wf_adapter_sink *sink)
{
	if (met_cap_sniff(buf, len))
		return met_cap_parse(state, name, buf, len, now_ms, sink);
	return met_aws_parse(state, name, buf, len, now_ms, sink);
}

static const struct wf_adapter_ops met_ops = {
	.kind = "met",
	.agency = WF__V1__AGENCY__AGENCY_MET,
	.formats_help =
		"  CAP 1.1 / 1.2 XML warning messages (a file starting with '<'), validated\n"
		"  against the OASIS schemas and CAP rules, signatures per [met] signature_policy;\n"
		"  automatic weather station CSV with the header\n"
		"  station,time,rain_mm,wind_mean_ms,wind_gust_ms,temp_c,visibility_m\n"
		"  graded by the CMA signal rules. See docs/feeds/met.md.",
	.config_load = met_config_load,
	.config_free = met_config_free,
	.parse = met_parse,
	.check = met_cap_check,
};

int main(int argc, char **argv)
{
	return wf_adapter_main(argc, argv, &met_ops);
}
