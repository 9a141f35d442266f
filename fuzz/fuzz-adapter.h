/* fuzz-adapter.h: the body shared by the agency-format targets
 * (fuzz-water, fuzz-geo, fuzz-fire, fuzz-police, fuzz-met-aws).
 *
 * FUZZ_ADAPTER(TYPE, LOAD, PARSE, CONF, SAVE, RESET) defines
 * LLVMFuzzerInitialize, which loads the agency state (a TYPE) from the
 * config CONF (relative to the source root) once and lets SAVE(state) copy
 * what parsing can change, and LLVMFuzzerTestOneInput, which first brings
 * the state back to exactly what the load produced -- RESET(state, saved)
 * restores what parsing changes (trends, rolling sums, UPDATE/CANCEL chains
 * kept across files), SAVED being a byte copy of the loaded TYPE, and the
 * target aborts unless the TYPE is then byte for byte that copy -- so that
 * no result depends on earlier inputs, exactly as when the config was
 * reloaded for every input (which is what the targets did until
 * 2026-12-02: the config parse was half of their time). Then it calls the
 * adapter's parse with a collecting sink exactly as the unit tests do
 * (tests/unit/agency-test.h), and puts every emitted event through what
 * the spool does with it: stamp producer and seq, wf_codec_event_pack (a
 * rejection there is a rejected file, not a crash). Memory errors, UB and
 * leaks are what is caught. The state lives as long as the process (to
 * LeakSanitizer it is still reachable). */
#ifndef WF_FUZZ_ADAPTER_H
#define WF_FUZZ_ADAPTER_H

#include "adapter.h"
#include "fuzz.h"
#include "wf/codec.h"

__attribute__((unused)) static void fuzz_adapter_emit_all(struct wf_adapter_sink *sink)
{
	struct wf_codec_limits lim;
	wf_codec_limits_init(&lim);
	lim.regions = fuzz_regions();
	for (size_t i = 0; i < wf_adapter_sink_count(sink); i++) {
		/* the spool stamps the events it owns in place; so do we */
		Wf__V1__Event *ev = (Wf__V1__Event *)wf_adapter_sink_event(sink, i);
		struct wf_codec_error why;
		uint8_t *buf = NULL;
		size_t len = 0;
		if (wf_adapter_set_str(&ev->producer, "wf-fuzz-1") < 0)
			fuzz_die("out of memory");
		ev->seq = i + 1;
		if (wf_codec_event_pack(ev, &lim, FUZZ_NOW, &buf, &len, &why) == 0)
			free(buf);
	}
}

#define FUZZ_ADAPTER(TYPE, LOAD, PARSE, CONF, SAVE, RESET)                               \
	static struct wf_adapter_sink *sink;                                                    \
	static TYPE *state;                                                                     \
	static TYPE saved;                                                                      \
	int LLVMFuzzerInitialize(int *argc, char ***argv)                                       \
	{                                                                                       \
		char err[512] = "";                                                             \
		void *st = NULL;                                                                \
		(void)argc;                                                                     \
		(void)argv;                                                                     \
		sink = wf_adapter_sink_new();                                                   \
		if (!sink)                                                                      \
			fuzz_die("out of memory");                                              \
		if (LOAD(fuzz_path(CONF), fuzz_regions(), &st, err, sizeof err) < 0)            \
			fuzz_die("%s", err);                                                    \
		state = st;                                                                     \
		memcpy(&saved, state, sizeof saved);                                            \
		SAVE(state);                                                                    \
		return 0;                                                                       \
	}                                                                                       \
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)                            \
	{                                                                                       \
		RESET(state, &saved);                                                           \
		if (memcmp(state, &saved, sizeof saved) != 0)                                   \
			fuzz_die("the agency state is not reset");                              \
		wf_adapter_sink_reset(sink);                                                    \
		if (PARSE(state, "fuzz.csv", data, size, FUZZ_NOW, sink) == 0)                  \
			fuzz_adapter_emit_all(sink);                                            \
		wf_adapter_sink_reset(sink);                                                    \
		return 0;                                                                       \
	}

#endif
