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

/* --- Spool processing (spool.c): what the daemon loop calls. ---
 *
 * Drop protocol: an agency writes a file as DIR/.NAME.tmp (any name starting
 * with '.' or ending in ".tmp" or ".part" is ignored) and renames it to
 * DIR/NAME when complete. Only regular files are taken (no symlinks), in
 * byte order of their names. Each is processed once:
 *   size check (max_file) -> read -> ops->parse -> ONE write transaction:
 *   SHA-256 of the bytes looked up in the "adapter.files" database (found:
 *   a duplicate, no new events), else for each event next seq, stamp
 *   producer/seq, wf_codec_event_pack, wf_outbox_put on its event topic,
 *   and the digest recorded -> commit -> rename to DIR/done/NAME.
 * A rejected file goes to DIR/rejected/NAME with DIR/rejected/NAME.reason
 * (one line). A crash between commit and rename reprocesses the file at
 * the next scan: its digest is found and it is moved without new events. */
struct wf_store;
struct wf_outbox;
struct wf_clock;
struct wf_codec_limits;

struct wf_adapter_spool_stats {
	uint64_t files_done;      /* accepted with new events (or none) */
	uint64_t files_duplicate; /* digest seen before: moved, no events */
	uint64_t files_rejected;
	uint64_t events;          /* events put into the outbox */
};

struct wf_adapter_spool {
	const struct wf_adapter_ops *ops; /* required */
	void *state;                      /* ops->config_load's state */
	struct wf_store *store;           /* required, borrowed */
	struct wf_outbox *outbox;         /* required, borrowed */
	unsigned files_dbi;               /* from wf_adapter_spool_init() */
	const char *dir;                  /* spool directory (NULL for stdin-only use) */
	size_t max_file;                  /* 0: WF_ADAPTER_MAX_FILE */
	const struct wf_codec_limits *limits; /* NULL: codec defaults */
	const struct wf_clock *clock;     /* NULL: system clock */
	/* At most this many files per wf_adapter_spool_scan call (0: all), so
	 * a daemon with a backlog publishes and heartbeats between files. */
	unsigned max_files;
	/* Called once per file with its outcome (for logs): KIND is "done",
	 * "duplicate", "rejected" or "error"; DETAIL the reason or a count. May
	 * be NULL. */
	void (*notice)(void *ud, const char *kind, const char *name, const char *detail);
	void *notice_ud;
	struct wf_adapter_spool_stats stats; /* running totals */
};

/* Opens the "adapter.files" database in SP->store (no write transaction
 * may be held) and creates SP->dir/done and SP->dir/rejected when dir is
 * set. Returns 0 or a negative errno. */
int wf_adapter_spool_init(struct wf_adapter_spool *sp);

/* Processes every ready file in SP->dir once, in name order (see above),
 * or the first SP->max_files of them.
 * Per-file problems (rejections) are counted, not returned. Returns the
 * number of files handled (>= 0), or a negative errno for a failure that
 * stops the scan (store error, -ENOBUFS when the outbox is full: call
 * again after acks drained it; the current file stays in the spool). */
int wf_adapter_spool_scan(struct wf_adapter_spool *sp);

/* Processes one in-memory file NAME (e.g. stdin as "-") into the outbox
 * with the same digest check, without moving anything. Returns 1 when
 * accepted (events put or duplicate), 0 when rejected (REASON filled, may
 * be NULL), or a negative errno. */
int wf_adapter_spool_buffer(struct wf_adapter_spool *sp, const char *name, const uint8_t *buf,
			    size_t len, char *reason, size_t reason_size);

#endif
