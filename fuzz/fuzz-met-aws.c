/* fuzz-met-aws: wf-met's automatic weather station CSV (met_aws_parse:
 * rolling accumulations and the CMA signal rules), state from
 * deploy/examples/met/met.conf (see fuzz-adapter.h). wf-met's ops->parse
 * sends a file that starts with '<' to the CAP parser (fuzz-met-cap) and
 * everything else here. What parsing changes: each station's history of
 * readings, which the load leaves NULL (allocated on a station's first
 * reading): freed and set back to NULL before every input. */
#include "fuzz-adapter.h"
#include "met.h"

static int aws_parse(void *st, const char *name, const uint8_t *buf, size_t len, int64_t now_ms,
		     struct wf_adapter_sink *sink_)
{
	if (met_cap_sniff(buf, len))
		return 0; /* the CAP path: fuzz-met-cap */
	return met_aws_parse(st, name, buf, len, now_ms, sink_);
}

static void aws_save(struct met_state *s)
{
	for (size_t i = 0; i < s->n_stations; i++)
		if (s->stations[i].hist)
			fuzz_die("station %s has a history after the load", s->stations[i].id);
}

static void aws_reset(struct met_state *s, const struct met_state *saved)
{
	(void)saved;
	for (size_t i = 0; i < s->n_stations; i++) {
		met_aws_hist_free(s->stations[i].hist);
		s->stations[i].hist = NULL;
	}
}

FUZZ_ADAPTER(struct met_state, met_config_load, aws_parse, "deploy/examples/met/met.conf",
	     aws_save, aws_reset)
