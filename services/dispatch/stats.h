/* stats: the dispatcher's counters (docs/dispatch.md, "Statistics"), one
 * fixed record in d-stats updated in the transaction of what it counts,
 * so the figures survive restarts and an aborted transaction counts
 * nothing. Cheap: with the engine's cache (struct dsp_stats_cache) one get
 * and put of the ~3 KiB record per transaction.
 * Nothing here logs or reads the clock. */
#ifndef DSP_STATS_H
#define DSP_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "dispatch.pb-c.h"
#include "store.h"
#include "warning.pb-c.h"
#include "wf/store.h"

#define DSP_LAT_BUCKETS 32   /* bucket i: latencies with i significant bits (ms) */
#define DSP_STAT_CHANNELS 7  /* duty, broadcast, cap, sms, review, followup, other */
#define DSP_STAT_STATES 24   /* >= DSP_DLV_STATE_MAX, room to grow */
#define DSP_STAT_AGENCIES 6  /* Agency 0..5 (0: an event id without a known agency) */

struct dsp_latency {
	uint64_t count;
	int64_t sum_ms, max_ms;
	uint32_t bucket[DSP_LAT_BUCKETS];
};

struct dsp_stats {
	uint8_t rec_version;  /* 1 */
	int64_t since_ms;
	uint64_t versions, released, cancelled;
	uint64_t channel[DSP_STAT_CHANNELS][DSP_STAT_STATES];
	uint64_t agency_versions[DSP_STAT_AGENCIES], agency_released[DSP_STAT_AGENCIES];
	struct dsp_latency agency_latency[DSP_STAT_AGENCIES];
	struct dsp_latency release_latency, ack_latency;
};

/* The record as changed in one write transaction T: loaded on T's first
 * change, written by T's pre-commit hook (wf_store_txn_hook), so a batch of
 * thousands of versions reads and writes the ~3 KiB record once, not a
 * few times per version. Forgotten when T commits or aborts. */
struct dsp_stats_cache {
	struct wf_txn *t;     /* the transaction it belongs to; NULL: none */
	unsigned dbi;
	struct dsp_stats s;
};

/* Loads the record (a zeroed one if there is none yet), as changed so far
 * in T. */
int dsp_stats_load(struct wf_txn *t, const struct dsp_dbs *d, struct dsp_stats *s);

/* Counts one delivery record of CHANNEL in STATE (called by dsp_record). */
int dsp_stats_count(struct wf_txn *t, const struct dsp_dbs *d, const char *channel,
		    unsigned state, int64_t at_ms);
/* A new version W received. */
int dsp_stats_version(struct wf_txn *t, const struct dsp_dbs *d, const Wf__V1__Warning *w,
		      int64_t now);
/* Version W released at NOW (latency from W->sent_ms). */
int dsp_stats_release(struct wf_txn *t, const struct dsp_dbs *d, const Wf__V1__Warning *w,
		      int64_t now);
/* The first duty acknowledgement of a version, LATENCY_MS after its notice. */
int dsp_stats_first_ack(struct wf_txn *t, const struct dsp_dbs *d, int64_t latency_ms,
			int64_t now);
int dsp_stats_cancel(struct wf_txn *t, const struct dsp_dbs *d, int64_t now);

void dsp_latency_add(struct dsp_latency *l, int64_t ms);
/* The upper bound of the bucket holding quantile Q (0..1), at most max_ms. */
int64_t dsp_latency_quantile(const struct dsp_latency *l, double q);

struct dsp_stats_extra {
	const char *name;     /* a process counter (not persisted), e.g. "publish_failed" */
	uint64_t n;
};

/* Packs S as a DispatchStats (malloc'd *RET, *RET_LEN) with EXTRA process
 * failure counters. */
int dsp_stats_pack(const struct dsp_stats *s, const struct dsp_stats_extra *extra,
		   size_t n_extra, const char *producer, int64_t now, uint8_t **ret,
		   size_t *ret_len);

#endif
