/* fuzz-met-aws: wf-met's automatic weather station CSV (met_aws_parse:
 * rolling accumulations and the CMA signal rules), state from
 * deploy/examples/met/met.conf (see fuzz-adapter.h). wf-met's ops->parse
 * sends a file that starts with '<' to the CAP parser (fuzz-met-cap) and
 * everything else here. */
#include "fuzz-adapter.h"
#include "met.h"

static int aws_parse(void *st, const char *name, const uint8_t *buf, size_t len, int64_t now_ms,
		     struct wf_adapter_sink *sink_)
{
	if (met_cap_sniff(buf, len))
		return 0; /* the CAP path: fuzz-met-cap */
	return met_aws_parse(st, name, buf, len, now_ms, sink_);
}

FUZZ_ADAPTER(met_config_load, met_config_free, aws_parse, "deploy/examples/met/met.conf")
