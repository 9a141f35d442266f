/* fuzz-met-check: wf-met's `--check` path (met_cap_check, ops->check: validation only: safe libxml2
 * parse, XSD validation, CAP rules, signature policy verify-if-present
 * with xmlsec) on arbitrary bytes, with the state of
 * deploy/examples/met/met.conf. The state is loaded once (the compiled XSDs
 * and the xmlsec keys manager are kept in it; CAP parsing keeps no other
 * state across files). */
#include "fuzz-adapter.h"
#include "met.h"

static struct met_state *st;
static struct wf_adapter_sink *sink;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[512] = "";
	void *s = NULL;
	(void)argc;
	(void)argv;
	sink = wf_adapter_sink_new();
	if (!sink)
		fuzz_die("out of memory");
	if (met_config_load(fuzz_path("deploy/examples/met/met.conf"), fuzz_regions(), &s, err,
			    sizeof err) < 0)
		fuzz_die("%s", err);
	st = s;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	wf_adapter_sink_reset(sink);
	(void)met_cap_check(st, "fuzz.xml", data, size, FUZZ_NOW, sink);
	if (wf_adapter_sink_count(sink) != 0)
		fuzz_die("--check emitted %zu events", wf_adapter_sink_count(sink));
	wf_adapter_sink_reset(sink);
	return 0;
}
