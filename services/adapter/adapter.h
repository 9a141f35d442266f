/* adapter: the skeleton every agency adapter (wf-met, wf-water, wf-geo,
 * wf-fire, wf-police) is built on. One agency = one `struct wf_adapter_ops`
 * (its parsing and grading); everything else (spool directory, done/ and
 * rejected/ with .reason files, stdin, --dry-run JSON, --check, config
 * loading, the outbox, and the MQTT daemon) is shared here.
 *
 * Contract between the skeleton and an agency:
 *   - config: the agency's own keys live in its config file's agency
 *     sections; the skeleton loads the common [adapter]/[bus] sections and
 *     hands the file path to ops->config_load, which returns an opaque
 *     agency state (thresholds, station tables, overrides).
 *   - parse: ops->parse gets ONE whole input file (name for messages and
 *     for deterministic ids, bytes, length) and either
 *       returns 0 after calling wf_adapter_sink_emit() for each resulting
 *       event (0 events is fine: "nothing over any threshold"), or
 *       returns a negative errno (-EINVAL/-EBADMSG/-EILSEQ/...) after
 *       writing a specific one-line reason with wf_adapter_reason();
 *       a rejected file emits nothing (events already emitted for it are
 *       discarded by the skeleton).
 *   - the agency fills every Event field it knows: id (DETERMINISTIC: the
 *     same record in the same file always gets the same id, e.g. derived
 *     from station + observation time + criterion, so a reprocessed file
 *     produces the same ids and fusion deduplicates by (agency, id)),
 *     agency, hazard, region (12 digits), level, measurement, certainty,
 *     observed_ms, issued_ms, expires_ms, status, text, msg_type,
 *     references, station. The skeleton stamps producer and seq.
 *   - stateful grading (rolling accumulations, trends, rate of change) keeps
 *     its history in the agency state, fed by files in spool order; the
 *     skeleton calls ops->parse for files in name order.
 *   - time: ops->parse gets NOW_MS from the skeleton's injected clock; it
 *     must not read the system clock itself.
 */
#ifndef WF_ADAPTER_H
#define WF_ADAPTER_H

#include <stddef.h>
#include <stdint.h>

#include "event.pb-c.h"
#include "wf/region.h"

struct wf_adapter_sink;

/* The largest input file any adapter accepts (the skeleton rejects larger
 * ones before parse with reason "too large"); per agency it may be lower. */
#define WF_ADAPTER_MAX_FILE (16u << 20)
/* The most events one input file may produce. */
#define WF_ADAPTER_MAX_EVENTS_PER_FILE 100000u
/* Longest rejection reason, bytes including NUL. */
#define WF_ADAPTER_REASON_MAX 512u

struct wf_adapter_ops {
	const char *kind;          /* "met", "water", "geo", "fire", "police" */
	Wf__V1__Agency agency;
	/* One paragraph for --help: the native formats accepted. */
	const char *formats_help;
	/* Loads the agency's configuration from PATH (NULL: built-in defaults
	 * from DOMAIN.md). REGIONS is borrowed for the adapter's lifetime.
	 * Returns 0 and *ret_state, or a negative errno with a
	 * "path:line: message" reason in ERR. */
	int (*config_load)(const char *path, const struct wf_region_table *regions, void **ret_state,
			   char *err, size_t err_size);
	void (*config_free)(void *state);
	/* Parses and grades one input file; see the contract above. */
	int (*parse)(void *state, const char *name, const uint8_t *buf, size_t len, int64_t now_ms,
		     struct wf_adapter_sink *sink);
	/* Optional (wf-met: CAP): validates only, for `--check FILE...`:
	 * returns 0 (valid) or a negative errno with the reason set. */
	int (*check)(void *state, const char *name, const uint8_t *buf, size_t len, int64_t now_ms,
		     struct wf_adapter_sink *sink);
};

/* Hands one event to the skeleton, which takes ownership of EV (allocated
 * with malloc/protobuf-c conventions so that protobuf_c_message_free_unpacked
 * (ev, NULL) frees it: build it with wf_adapter_event_new() and the setters
 * below). Returns 0, or -ENOSPC beyond WF_ADAPTER_MAX_EVENTS_PER_FILE, or
 * -ENOMEM; on error EV has been freed. */
int wf_adapter_sink_emit(struct wf_adapter_sink *sink, Wf__V1__Event *ev);

/* Sets the rejection reason of the current file (printf-style, one line). */
void wf_adapter_reason(struct wf_adapter_sink *sink, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A zeroed, initialised Event with every string field NULL-safe for
 * free_unpacked. NULL when out of memory. */
Wf__V1__Event *wf_adapter_event_new(void);
/* Replace a string field with a malloc'd copy of S (NULL clears it):
 * e.g. wf_adapter_set_str(&ev->id, "met:...") . Returns 0 or -ENOMEM. */
int wf_adapter_set_str(char **field, const char *s);
/* Sets ev->measurement (allocating it). Returns 0 or -ENOMEM. */
int wf_adapter_set_measurement(Wf__V1__Event *ev, double value, double threshold,
			       const char *unit, const char *criterion);
/* Sets ev->point (allocating it). Returns 0 or -ENOMEM. */
int wf_adapter_set_point(Wf__V1__Event *ev, double lat, double lon);
/* Appends a reference id. Returns 0 or -ENOMEM. */
int wf_adapter_add_reference(Wf__V1__Event *ev, const char *id);

/* --- Collecting sink (the skeleton uses it; agency unit tests use it to
 * call ops->parse directly and inspect the result). --- */
struct wf_adapter_sink *wf_adapter_sink_new(void);            /* NULL: ENOMEM */
struct wf_adapter_sink *wf_adapter_sink_free(struct wf_adapter_sink *sink); /* NULL-safe */
/* Drops the collected events and the reason (ready for the next file). */
void wf_adapter_sink_reset(struct wf_adapter_sink *sink);
size_t wf_adapter_sink_count(const struct wf_adapter_sink *sink);
/* The I-th collected event (borrowed), or NULL. */
const Wf__V1__Event *wf_adapter_sink_event(const struct wf_adapter_sink *sink, size_t i);
/* The reason set by wf_adapter_reason(), or "" (borrowed). */
const char *wf_adapter_sink_reason_text(const struct wf_adapter_sink *sink);

/* The whole program for one agency: wf-<kind> with every shared option
 * (--config, --dry-run FILE..., --check FILE..., --spool DIR, --once,
 * --help, --version, --check-config). Returns the process exit status. */
int wf_adapter_main(int argc, char **argv, const struct wf_adapter_ops *ops);

#endif
