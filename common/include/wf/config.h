/* config: table-driven INI configuration on top of inih.
 *
 * A service describes its configuration as a table of struct wf_config_key
 * (section, name, type, offsetof() into the service's own config struct,
 * bounds, default, help). wf_config_load() applies every default, then the
 * file, and on success writes every field of the table into the target.
 * Errors are formatted "path:line: message" (see docs/service-runtime.md).
 *
 * Field types in the target struct, by key type:
 *   WF_CONFIG_STRING    char *    (malloc'd copy, or NULL if the default is NULL)
 *   WF_CONFIG_INT       int64_t
 *   WF_CONFIG_BOOL      bool
 *   WF_CONFIG_DOUBLE    double
 *   WF_CONFIG_DURATION  int64_t   milliseconds
 *   WF_CONFIG_SIZE      int64_t   bytes
 *   WF_CONFIG_ENUM      int       index into the key's enum_values
 *
 * Reload pattern (keep the old config when the new one is bad):
 *
 *	struct svc_config tmp = { 0 };
 *	r = wf_config_load(path, table, n, &tmp, err, sizeof err);
 *	if (r < 0) {
 *		log err; keep using *cur;           // tmp was not touched
 *	} else {
 *		wf_config_free(table, n, cur);
 *		*cur = tmp;
 *	}
 */
#ifndef WF_CONFIG_H
#define WF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Limits. A config file larger than WF_CONFIG_FILE_MAX bytes is rejected
 * whole. A line may hold at most WF_CONFIG_LINE_MAX bytes once leading and
 * trailing whitespace and comments are removed (inih's fixed 200-byte line
 * buffer minus room for "\r\n\0"); comment lines may be longer. */
#define WF_CONFIG_FILE_MAX   (1024 * 1024)
#define WF_CONFIG_LINE_MAX   196
/* Section and key names in a table are at most this long (inih's limit). */
#define WF_CONFIG_NAME_MAX   48
/* Longest STRING value when the key's max is 0. */
#define WF_CONFIG_STRING_MAX WF_CONFIG_LINE_MAX

enum wf_config_type {
	WF_CONFIG_STRING,
	WF_CONFIG_INT,
	WF_CONFIG_BOOL,
	WF_CONFIG_DOUBLE,
	WF_CONFIG_DURATION,
	WF_CONFIG_SIZE,
	WF_CONFIG_ENUM,
	WF_CONFIG_TYPE_MAX,
	WF_CONFIG_TYPE_INVALID = -1,
};

/* One configuration key.
 *
 * min/max: for INT, DURATION (ms), SIZE (bytes) and DOUBLE the inclusive
 * bounds; min == max == 0 means "any value of the type" (durations and
 * sizes are never negative). For STRING, min/max are the length bounds in
 * bytes (max 0 means WF_CONFIG_STRING_MAX). Unused for BOOL and ENUM.
 * default_value: text parsed exactly like a value in the file; NULL means
 * NULL for STRING and 0/false for the other types.
 * enum_values: NULL-terminated list of the allowed words (ENUM only).
 * help: one or more lines, printed as comments by wf_config_print_defaults. */
struct wf_config_key {
	const char *section;
	const char *name;
	enum wf_config_type type;
	size_t offset;
	int64_t min, max;
	const char *default_value;
	const char *help;
	const char *const *enum_values;
};

/* Returns "string", "integer", "boolean", "number", "duration", "size",
 * "enum", or "invalid". This function can't fail. */
const char *wf_config_type_to_string(enum wf_config_type type);

/* Checks a table for programming errors: empty or overlong names, unknown
 * types, duplicate section/name pairs, ENUM without values, min > max, and
 * defaults that do not parse or are out of range. Returns 0, or -EINVAL with
 * a message in ERR (ERRLEN bytes, may be 0). Services call this in a unit
 * test; wf_config_load() also rejects a bad table with -EINVAL. */
int wf_config_table_check(const struct wf_config_key *table, size_t n, char *err, size_t errlen);

/* Applies the defaults of TABLE (N keys) to TARGET. On success writes every
 * field named by the table (strings are new malloc'd copies the caller frees
 * with wf_config_free) and returns 0. On failure (-EINVAL bad table,
 * -ENOMEM) TARGET is untouched and ERR holds a message. The previous
 * contents of TARGET's fields are overwritten, not freed. */
int wf_config_defaults(const struct wf_config_key *table, size_t n, void *target,
		       char *err, size_t errlen);

/* Loads the INI file PATH: defaults first, then the file's values.
 * On success writes every field named by the table into TARGET (as
 * wf_config_defaults does) and returns 0. On failure returns a negative
 * errno, TARGET is untouched, and ERR (ERRLEN bytes) holds the first error:
 *   "path: No such file or directory"       -ENOENT (and other open errors)
 *   "path: not a regular file"              -EINVAL
 *   "path: file too large (N bytes, limit M)" -EFBIG
 *   "path:line: message"                    -EINVAL for content errors
 * Parsing stops at the first error; only that one is reported.
 * PATH is borrowed for the duration of the call. */
int wf_config_load(const char *path, const struct wf_config_key *table, size_t n,
		   void *target, char *err, size_t errlen);

/* As wf_config_load, but sections the table does not name are skipped
 * without a word: for a file shared by several readers (an adapter's file
 * holds [service]/[mqtt], read here, beside its agency's own sections, read
 * by the agency's parser). Keys of the sections the table names are checked
 * as usual (an unknown key there is still an error). */
int wf_config_load_sections(const char *path, const struct wf_config_key *table, size_t n,
			    void *target, char *err, size_t errlen);

/* As wf_config_load, but parses the NUL-terminated TEXT; NAME stands in for
 * the path in error messages. TEXT longer than WF_CONFIG_FILE_MAX is
 * rejected with -EFBIG. */
int wf_config_load_string(const char *name, const char *text, const struct wf_config_key *table,
			  size_t n, void *target, char *err, size_t errlen);

/* Frees the strings of TARGET named by TABLE and sets them to NULL.
 * Other fields are left as they are. TARGET may be NULL. Can't fail. */
void wf_config_free(const struct wf_config_key *table, size_t n, void *target);

/* Writes a commented example config to OUT: one [section] per section in
 * table order, each key's help as "# " comments with its type, bounds or
 * allowed values, then "name = default" (or "#name =" when the default is
 * NULL). Loading the output gives the defaults. Returns 0, or -EIO if
 * writing to OUT failed. */
int wf_config_print_defaults(FILE *out, const struct wf_config_key *table, size_t n);

/* Value parsers used by the loader, exported for services and tools that
 * take the same forms on their command line. Each returns 0 and sets
 * *ret_..., or -EINVAL (bad form) / -ERANGE (overflow) and leaves it
 * untouched. TEXT must not be NULL. */
/* "true", "yes", "on", "1" / "false", "no", "off", "0" (any case) */
int wf_config_parse_bool(const char *text, bool *ret_bool);
/* One or more <digits><unit> pairs, unit ms, s, m, h or d: "250ms", "1h30m". */
int wf_config_parse_duration(const char *text, int64_t *ret_ms);
/* <digits> with an optional K, M, G or T suffix (any case, powers of 1024). */
int wf_config_parse_size(const char *text, int64_t *ret_bytes);

#endif
