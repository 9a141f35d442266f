/* region: administrative division codes (NBS 12-digit, GB/T 2260 6-digit).
 *
 * A code is 12 ASCII digits PPCCDDTTTVVV: province PP, prefecture CC,
 * county DD, township TTT, village VVV. A 6-digit GB/T 2260 code is the
 * same code with TTTVVV = "000000". The level of a code follows from its
 * digits: the finest non-zero block. The table (data/regions.csv) says
 * which codes exist, their names and parents.
 *
 * Functions that take a "code12" want exactly 12 ASCII digits followed by
 * NUL; use wf_region_normalize() first on anything that came from outside. */
#ifndef WF_REGION_H
#define WF_REGION_H

#include <stdbool.h>
#include <stddef.h>

enum wf_region_level {
	WF_REGION_PROVINCE = 0,
	WF_REGION_PREFECTURE,
	WF_REGION_COUNTY,
	WF_REGION_TOWNSHIP,
	WF_REGION_VILLAGE,
	WF_REGION_LEVEL_MAX,
	WF_REGION_LEVEL_INVALID = -1,
};

/* Limits of the loader: any file over them is rejected. */
#define WF_REGION_FILE_MAX (64u * 1024 * 1024) /* bytes */
#define WF_REGION_ROWS_MAX 1000000u
#define WF_REGION_LINE_MAX 512u                /* bytes, without the newline */
#define WF_REGION_NAME_MAX 128u                /* bytes of UTF-8 */

struct wf_region_table;
struct wf_region;

/* Where loading failed. line is 1-based (0 when not about one line). */
struct wf_region_error {
	unsigned line;
	char message[128];
};

/* "province", "prefecture", "county", "township", "village"; NULL for
 * anything else. This function can't fail. */
const char *wf_region_level_to_string(enum wf_region_level level);
/* The inverse; WF_REGION_LEVEL_INVALID for an unknown name or NULL. */
enum wf_region_level wf_region_level_from_string(const char *s);

/* Loads a region table from PATH (format: data/SOURCES.md). Lines starting
 * with '#' and empty lines are skipped, the header line is optional. Every
 * row is checked: 12-digit code, unique, level matching the digits, parent
 * present (empty only for provinces) and a proper ancestor.
 * Returns 0 and sets *ret (free with wf_region_table_free()), or a negative
 * errno and fills *ret_err (may be NULL) with the line and a message:
 * -EINVAL bad row (code, level, parent, name), -EEXIST duplicate code,
 * -ENOENT missing parent, -E2BIG line too long, -EFBIG file or row count
 * over the limits, -ENOMEM, or the errno of open/read. */
int wf_region_table_load(const char *path, struct wf_region_table **ret,
			 struct wf_region_error *ret_err);

/* Frees TABLE (NULL is fine). Returns NULL. Entry pointers die with it. */
struct wf_region_table *wf_region_table_free(struct wf_region_table *table);

/* Number of entries in TABLE (0 for NULL). This function can't fail. */
size_t wf_region_count(const struct wf_region_table *table);

/* Number of entries at LEVEL (0 for NULL or a bad level). */
size_t wf_region_count_level(const struct wf_region_table *table, enum wf_region_level level);

/* Normalizes IN (6 or 12 ASCII digits, nothing else) to 12 digits plus NUL
 * in OUT. Returns 0, or -EINVAL (OUT untouched). OUT may alias IN only if
 * IN is already a 13-byte buffer. */
int wf_region_normalize(const char *in, char out[13]);

/* Level of CODE12 from its digits alone (the finest non-zero block);
 * WF_REGION_LEVEL_INVALID if CODE12 is not 12 digits or is all zeros in
 * the province block. */
enum wf_region_level wf_region_level_of_code(const char *code12);

/* Number of leading digits that identify a code at LEVEL: 2, 4, 6, 9, 12
 * (0 for a bad level). This function can't fail. */
unsigned wf_region_prefix_len(enum wf_region_level level);

/* True if CODE12 lies within ANCESTOR12 (the first prefix_len(level of
 * ANCESTOR12) digits are equal); a code contains itself. False if either
 * is not a valid code. */
bool wf_region_contains(const char *ancestor12, const char *code12);

/* The code of CODE12's ancestor at LEVEL (its digits up to that level,
 * zeros after), e.g. the county 410102000000 of village 410102001002.
 * LEVEL may equal the code's own level. Returns 0, or -EINVAL for a bad
 * code or a LEVEL finer than the code's (OUT untouched). */
int wf_region_ancestor_at(const char *code12, enum wf_region_level level, char out[13]);

/* The entry for CODE12, borrowed from TABLE (valid until it is freed), or
 * NULL if absent or not a 12-digit code. */
const struct wf_region *wf_region_find(const struct wf_region_table *table, const char *code12);

/* The parent entry of CODE12 as recorded in TABLE (NULL for a province or
 * an unknown code). Borrowed from TABLE. */
const struct wf_region *wf_region_parent(const struct wf_region_table *table, const char *code12);

/* Calls CB for each direct child of CODE12 in code order (CODE12 NULL or
 * "" means the provinces). CB returning non-zero stops the iteration and
 * that value is returned. Returns the number of children visited
 * otherwise, or -ENOENT if CODE12 is not in TABLE. */
int wf_region_children(const struct wf_region_table *table, const char *code12,
		       int (*cb)(const struct wf_region *child, void *ud), void *ud);

/* Entry getters; strings are borrowed from the table. */
const char *wf_region_code(const struct wf_region *r);        /* 12 digits */
const char *wf_region_name(const struct wf_region *r);        /* UTF-8 */
const char *wf_region_parent_code(const struct wf_region *r); /* "" for provinces */
enum wf_region_level wf_region_level(const struct wf_region *r);

#endif
