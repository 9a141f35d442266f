/* replay: run the fusion engine over a JSON-lines file of Events on
 * virtual time, printing every warning version as one JSON line
 * (docs/fusion.md, "Replay mode"). Used by main.c and the benchmark. */
#ifndef WF_FUSION_REPLAY_H
#define WF_FUSION_REPLAY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "engine.h"
#include "wf/region.h"

struct wf_fusion_replay_options {
	const char *store_dir;   /* NULL: a temporary directory, removed at the end */
	const struct wf_region_table *regions; /* NULL: codes are checked for syntax only */
	const char *const *owned; /* partition prefixes (see wf_fusion_options) */
	size_t n_owned;
	bool drain;              /* after the last event, run time on until every warning ended */
	unsigned batch;          /* events per LMDB commit (0: 10000) */
	FILE *out;               /* warning JSON lines (NULL: not printed) */
	FILE *err;               /* per-line rejections (NULL: not printed) */
};

struct wf_fusion_replay_stats {
	uint64_t lines, events, rejected, results[WF_FUSION_RESULT_MAX];
	uint64_t versions, alerts, updates, cancels, invalid_out;
	uint64_t active_incidents;
	double seconds;
};

/* Replays the events of IN (one JSON object per line; empty lines and
 * lines starting with '#' are skipped) named NAME in messages, under
 * RULES (taken over). Returns 0, or a negative errno for a fatal error
 * (store, out of memory), with a message in ERR. */
int wf_fusion_replay(FILE *in, const char *name, struct wf_fusion_rules *rules,
		     const struct wf_fusion_replay_options *o, struct wf_fusion_replay_stats *st,
		     char *err, size_t errlen);

#endif
