/* fuzz-fusion-rules: the fusion rule-file parser and validator
 * (wf_fusion_rules_parse, services/fusion/rules.c) on arbitrary text. */
#include "engine.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size);
	char err[512];
	struct wf_fusion_rules *rules = NULL;

	int r = wf_fusion_rules_parse("fuzz.rules", text, &rules, err, sizeof err);
	if (r == 0) {
		(void)wf_fusion_rules_count(rules);
		wf_fusion_rules_free(rules);
	}
	free(text);
	return 0;
}
