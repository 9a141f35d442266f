/* feed: helpers the CSV-based agency adapters share (wf-water, wf-geo,
 * wf-fire, wf-police): a bounded line/CSV reader with UTF-8 and truncation
 * checks, strict number/time/id parsers, region checks, deterministic ids,
 * an event builder on top of adapter.h, and an inih wrapper that formats
 * errors as "path:line: message". Nothing here logs or reads the clock.
 *
 * The native formats built on it are documented in docs/feeds/<agency>.md;
 * their common rules (docs/feeds/README.md):
 *   - UTF-8 (an optional BOM is skipped), LF or CRLF line ends, and the
 *     file ends with a newline (otherwise it is "truncated");
 *   - '#' starts a comment line; "#status=exercise" / "#status=test" /
 *     "#status=actual" in a comment line sets the status of the whole file;
 *   - the first other line is the header, which must equal the expected
 *     column list exactly; every record has exactly that many fields;
 *   - fields are separated by ',', there is no quoting: a field may not
 *     hold ',' or '"'; leading/trailing blanks are trimmed.
 */
#ifndef WF_FEED_H
#define WF_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adapter.h"
#include "wf/region.h"

#define WF_FEED_LINE_MAX   2048u  /* bytes per line, without the line end */
#define WF_FEED_FIELDS_MAX 24u    /* fields per line */
#define WF_FEED_ROWS_MAX   100000u /* records per file */
#define WF_FEED_STATION_MAX 32u   /* station / sensor / incident id bytes */
#define WF_FEED_ERR_MAX    WF_ADAPTER_REASON_MAX

/* A file being read. All pointers borrowed from the caller's buffer. */
struct wf_feed_reader {
	const uint8_t *buf;
	size_t len, pos;
	unsigned lineno;      /* line number of the last line returned */
	Wf__V1__Status status; /* from "#status=..." (ACTUAL by default) */
	char line[WF_FEED_LINE_MAX + 1];
	char *field[WF_FEED_FIELDS_MAX];
	size_t nfield;
	char err[WF_FEED_ERR_MAX];
};

/* Checks the whole of BUF (encoding, NUL bytes, final newline, size at most
 * MAX_SIZE) and prepares R. Returns 0, or a negative errno with r->err set:
 * -EFBIG too large, -EILSEQ not UTF-8, -EBADMSG truncated or NUL byte. */
int wf_feed_open(struct wf_feed_reader *r, const uint8_t *buf, size_t len, size_t max_size);

/* The next record (comment and blank lines are skipped), split into
 * r->field[0..r->nfield). Returns 1, 0 at the end, or a negative errno with
 * r->err set ("line N: ..."): -E2BIG line too long or too many fields,
 * -EBADMSG a quote or control character. */
int wf_feed_next(struct wf_feed_reader *r);

/* Reads the header line and compares it with COLS (NCOLS names). Returns 0,
 * or a negative errno with r->err set (-EBADMSG: missing or different). */
int wf_feed_header(struct wf_feed_reader *r, const char *const *cols, size_t ncols);

/* Peeks at the header line (first non-comment line) without consuming it:
 * copies it to OUT (trimmed). Returns 0, or -ENOENT if the file has none. */
int wf_feed_peek_header(const struct wf_feed_reader *r, char *out, size_t size);

/* Field checks: each returns 0 and sets *ret, or -EINVAL with r->err set to
 * "line N: COLUMN: why". An empty field is "missing" unless OPTIONAL (then
 * *ret_present is false and 0 is returned). */
int wf_feed_double(struct wf_feed_reader *r, size_t i, const char *col, double min, double max,
		   bool optional, double *ret, bool *ret_present);
int wf_feed_int(struct wf_feed_reader *r, size_t i, const char *col, long min, long max,
		bool optional, long *ret, bool *ret_present);
/* RFC 3339 with an explicit offset ("2026-07-20T08:00:00+08:00"). */
int wf_feed_time(struct wf_feed_reader *r, size_t i, const char *col, int64_t *ret_ms);
/* Station-like id: [A-Za-z0-9._-]{1,32}. Returns a pointer into r->line. */
int wf_feed_station(struct wf_feed_reader *r, size_t i, const char *col, const char **ret);
/* Region code (6 or 12 digits), normalised into OUT and, when REGIONS is
 * not NULL, present in it. */
int wf_feed_region(struct wf_feed_reader *r, size_t i, const char *col,
		   const struct wf_region_table *regions, char out[13]);
/* One of WORDS (NULL-terminated); returns its index in *ret. */
int wf_feed_word(struct wf_feed_reader *r, size_t i, const char *col, const char *const *words,
		 int *ret);
/* Free text (may be empty), at most MAX bytes. Pointer into r->line. */
int wf_feed_text(struct wf_feed_reader *r, size_t i, const char *col, size_t max,
		 const char **ret);

/* Syntax checks usable on config values too. */
bool wf_feed_station_valid(const char *s);
/* Strict UTF-8 (no overlong, surrogates, > U+10FFFF). Returns the offset
 * of the first bad byte, or LEN when all of S is valid. Can't fail. */
size_t wf_feed_utf8_check(const uint8_t *s, size_t len);
/* Normalises CODE and checks it against REGIONS (NULL: syntax only).
 * Returns 0, -EINVAL bad syntax, -ENOENT not in the table. */
int wf_feed_region_check(const struct wf_region_table *regions, const char *code, char out[13]);

/* Compact UTC time for ids: "20260720T000000Z" (seconds; ".123" appended
 * before the Z when MS has milliseconds). BUF at least 24 bytes. */
char *wf_feed_id_time(int64_t ms, char *buf, size_t size);

/* Everything one Event needs; strings borrowed, copied by wf_feed_emit. */
struct wf_feed_event {
	Wf__V1__Agency agency;
	Wf__V1__Hazard hazard;
	const char *id;
	const char *region;      /* 12 digits */
	const char *station;     /* may be NULL */
	Wf__V1__Level level;
	Wf__V1__Certainty certainty;
	Wf__V1__Status status;
	Wf__V1__MsgType msg_type;
	const char *reference;   /* one reference (UPDATE/CANCEL), or NULL */
	bool has_point;
	double lat, lon;
	bool has_measurement;
	double value, threshold;
	const char *unit, *criterion;
	int64_t observed_ms, issued_ms, expires_ms;
	const char *text;        /* may be NULL */
};

/* Builds the event and hands it to SINK. Returns 0, -ENOMEM, or -ENOSPC
 * (too many events; the reason is set). */
int wf_feed_emit(struct wf_adapter_sink *sink, const struct wf_feed_event *e);

/* Level names used in config files and docs: "none", "blue", "yellow",
 * "orange", "red" (also "IV", "III", "II", "I"). Returns 0 or -EINVAL. */
int wf_feed_level_parse(const char *s, Wf__V1__Level *ret);
const char *wf_feed_level_name(Wf__V1__Level level); /* "none".."red" */

/* --- INI on inih, errors as "path:line: message" ---
 * Calls HANDLER for each "name = value" in sections named PREFIX or
 * starting with PREFIX followed by '.' (e.g. "water", "water.station H1"),
 * SECTION being the full section name. Other sections are skipped: they
 * belong to the skeleton ([adapter], [mqtt], [service]) or other tools.
 * HANDLER returns 0, or a negative errno after writing a message into MSG
 * (MSG_SIZE bytes). PATH NULL parses nothing and returns 0. Returns 0, or a
 * negative errno with "path:line: message" (or "path: message") in ERR. */
typedef int (*wf_feed_ini_handler)(void *ud, const char *section, const char *name,
				   const char *value, char *msg, size_t msg_size);
int wf_feed_ini_parse(const char *path, const char *prefix, wf_feed_ini_handler handler, void *ud,
		      char *err, size_t err_size);
/* The same over the NUL-terminated TEXT; NAME stands in for the path. */
int wf_feed_ini_parse_string(const char *name, const char *text, const char *prefix,
			     wf_feed_ini_handler handler, void *ud, char *err, size_t err_size);

/* Value parsers for config handlers: 0 or -EINVAL (message in MSG). */
int wf_feed_conf_double(const char *name, const char *value, double min, double max, double *ret,
			char *msg, size_t msg_size);
int wf_feed_conf_duration(const char *name, const char *value, int64_t *ret_ms, char *msg,
			  size_t msg_size);

#endif
