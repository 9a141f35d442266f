/* region: see wf/region.h
 *
 * The table is one sorted array of entries (binary search by code) plus the
 * file contents, in which names live. Children are linked at load time
 * (first_child / next_sibling indexes) so iteration needs no scan. */
#include "wf/region.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct wf_region {
	char code[13];
	char parent[13];
	uint8_t level;
	uint32_t line;
	const char *name;
	int32_t parent_idx;
	int32_t first_child;
	int32_t next_sibling;
};

struct wf_region_table {
	struct wf_region *entries;
	size_t n;
	size_t per_level[WF_REGION_LEVEL_MAX];
	int32_t first_root;
	char *text; /* the file; names point into it */
};

static const char *const level_names[WF_REGION_LEVEL_MAX] = {
	[WF_REGION_PROVINCE] = "province",
	[WF_REGION_PREFECTURE] = "prefecture",
	[WF_REGION_COUNTY] = "county",
	[WF_REGION_TOWNSHIP] = "township",
	[WF_REGION_VILLAGE] = "village",
};

static const unsigned prefix_lens[WF_REGION_LEVEL_MAX] = { 2, 4, 6, 9, 12 };

const char *wf_region_level_to_string(enum wf_region_level level)
{
	if ((int)level < 0 || level >= WF_REGION_LEVEL_MAX)
		return NULL;
	return level_names[level];
}

enum wf_region_level wf_region_level_from_string(const char *s)
{
	if (!s)
		return WF_REGION_LEVEL_INVALID;
	for (int i = 0; i < WF_REGION_LEVEL_MAX; i++)
		if (strcmp(s, level_names[i]) == 0)
			return (enum wf_region_level)i;
	return WF_REGION_LEVEL_INVALID;
}

unsigned wf_region_prefix_len(enum wf_region_level level)
{
	if ((int)level < 0 || level >= WF_REGION_LEVEL_MAX)
		return 0;
	return prefix_lens[level];
}

static bool all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static bool is_code12(const char *s)
{
	return s && all_digits(s, 12) && s[12] == '\0';
}

int wf_region_normalize(const char *in, char out[13])
{
	if (!in || !out)
		return -EINVAL;
	if (all_digits(in, 6) && in[6] == '\0') {
		memmove(out, in, 6);
		memset(out + 6, '0', 6);
		out[12] = '\0';
		return 0;
	}
	/* all_digits stops at the first non-digit, so it never reads past a
	 * shorter string's NUL */
	if (is_code12(in)) {
		memmove(out, in, 13);
		return 0;
	}
	return -EINVAL;
}

static bool zeros(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != '0')
			return false;
	return true;
}

enum wf_region_level wf_region_level_of_code(const char *code12)
{
	if (!is_code12(code12) || zeros(code12, 2))
		return WF_REGION_LEVEL_INVALID;
	for (int l = WF_REGION_VILLAGE; l > WF_REGION_PROVINCE; l--) {
		unsigned from = prefix_lens[l - 1], to = prefix_lens[l];
		if (!zeros(code12 + from, to - from))
			return (enum wf_region_level)l;
	}
	return WF_REGION_PROVINCE;
}

bool wf_region_contains(const char *ancestor12, const char *code12)
{
	enum wf_region_level la = wf_region_level_of_code(ancestor12);
	if (la == WF_REGION_LEVEL_INVALID || wf_region_level_of_code(code12) == WF_REGION_LEVEL_INVALID)
		return false;
	return memcmp(ancestor12, code12, prefix_lens[la]) == 0;
}

int wf_region_ancestor_at(const char *code12, enum wf_region_level level, char out[13])
{
	enum wf_region_level own = wf_region_level_of_code(code12);
	if (own == WF_REGION_LEVEL_INVALID || (int)level < 0 || level >= WF_REGION_LEVEL_MAX ||
	    level > own || !out)
		return -EINVAL;
	unsigned n = prefix_lens[level];
	memmove(out, code12, n);
	memset(out + n, '0', 12 - n);
	out[12] = '\0';
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct wf_region *x = a, *y = b;
	return strcmp(x->code, y->code);
}

static int32_t find_idx(const struct wf_region_table *t, const char *code12)
{
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(t->entries[mid].code, code12);
		if (c == 0)
			return (int32_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

const struct wf_region *wf_region_find(const struct wf_region_table *table, const char *code12)
{
	if (!table || !is_code12(code12))
		return NULL;
	int32_t i = find_idx(table, code12);
	return i < 0 ? NULL : &table->entries[i];
}

const struct wf_region *wf_region_parent(const struct wf_region_table *table, const char *code12)
{
	const struct wf_region *r = wf_region_find(table, code12);
	if (!r || r->parent_idx < 0)
		return NULL;
	return &table->entries[r->parent_idx];
}

int wf_region_children(const struct wf_region_table *table, const char *code12,
		       int (*cb)(const struct wf_region *child, void *ud), void *ud)
{
	int32_t i;
	if (!table || !cb)
		return -EINVAL;
	if (!code12 || !*code12) {
		i = table->first_root;
	} else {
		const struct wf_region *r = wf_region_find(table, code12);
		if (!r)
			return -ENOENT;
		i = r->first_child;
	}
	int n = 0;
	for (; i >= 0; i = table->entries[i].next_sibling) {
		int r = cb(&table->entries[i], ud);
		if (r)
			return r;
		n++;
	}
	return n;
}

size_t wf_region_count(const struct wf_region_table *table)
{
	return table ? table->n : 0;
}

size_t wf_region_count_level(const struct wf_region_table *table, enum wf_region_level level)
{
	if (!table || (int)level < 0 || level >= WF_REGION_LEVEL_MAX)
		return 0;
	return table->per_level[level];
}

const char *wf_region_code(const struct wf_region *r)
{
	return r ? r->code : NULL;
}

const char *wf_region_name(const struct wf_region *r)
{
	return r ? r->name : NULL;
}

const char *wf_region_parent_code(const struct wf_region *r)
{
	return r ? r->parent : NULL;
}

enum wf_region_level wf_region_level(const struct wf_region *r)
{
	return r ? (enum wf_region_level)r->level : WF_REGION_LEVEL_INVALID;
}

struct wf_region_table *wf_region_table_free(struct wf_region_table *table)
{
	if (!table)
		return NULL;
	free(table->entries);
	free(table->text);
	free(table);
	return NULL;
}

/* --- loading --- */

__attribute__((format(printf, 4, 5)))
static int load_err(struct wf_region_error *err, int code, unsigned line, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		err->line = line;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof err->message, fmt, ap);
		va_end(ap);
	}
	return code;
}

static int read_file(const char *path, char **ret_text, size_t *ret_len, struct wf_region_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return load_err(err, -errno, 0, "cannot open: %s", strerror(errno));
	struct stat st;
	int r;
	char *text = NULL;
	if (fstat(fd, &st) < 0) {
		r = load_err(err, -errno, 0, "cannot stat: %s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = load_err(err, -EINVAL, 0, "not a regular file");
		goto out;
	}
	if ((uint64_t)st.st_size > WF_REGION_FILE_MAX) {
		r = load_err(err, -EFBIG, 0, "file too big (%lld bytes, limit %u)",
			     (long long)st.st_size, WF_REGION_FILE_MAX);
		goto out;
	}
	size_t cap = (size_t)st.st_size, len = 0;
	text = malloc(cap + 1);
	if (!text) {
		r = load_err(err, -ENOMEM, 0, "out of memory");
		goto out;
	}
	/* read what fstat promised; a file growing meanwhile is cut there */
	while (len < cap) {
		ssize_t k = read(fd, text + len, cap - len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = load_err(err, -errno, 0, "read: %s", strerror(errno));
			goto out;
		}
		if (k == 0)
			break;
		len += (size_t)k;
	}
	text[len] = '\0';
	*ret_text = text;
	*ret_len = len;
	text = NULL;
	r = 0;
out:
	free(text);
	close(fd);
	return r;
}

/* Splits LINE (NUL-terminated, modified in place) into N comma-separated
 * fields; a field may be "quoted" with "" for a quote. Returns the number
 * of fields found, or -1 on a quoting error. */
static int split_csv(char *line, char **fields, int n)
{
	int k = 0;
	char *p = line;
	for (;;) {
		if (k == n)
			return n + 1; /* too many */
		if (*p == '"') {
			char *w = p, *r = p + 1;
			fields[k++] = w;
			for (;;) {
				if (*r == '\0')
					return -1;
				if (*r == '"') {
					if (r[1] == '"') {
						*w++ = '"';
						r += 2;
						continue;
					}
					r++;
					break;
				}
				*w++ = *r++;
			}
			if (*r != ',' && *r != '\0')
				return -1;
			bool last = *r == '\0';
			*w = '\0';
			if (last)
				return k;
			p = r + 1;
		} else {
			fields[k++] = p;
			char *c = strchr(p, ',');
			if (!c)
				return k;
			*c = '\0';
			p = c + 1;
		}
	}
}

static bool name_ok(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f)
			return false;
	return n > 0 && n <= WF_REGION_NAME_MAX;
}

/* Parses TEXT into entries (unsorted). */
static int parse_rows(char *text, size_t len, struct wf_region **ret_entries, size_t *ret_n,
		      struct wf_region_error *err)
{
	size_t cap = 0, n = 0;
	struct wf_region *e = NULL;
	unsigned line = 0;
	bool header_seen = false;
	char *p = text, *end = text + len;
	int r;

	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *eol = nl ? nl : end;
		line++;
		if (eol > p && eol[-1] == '\r')
			eol--;
		size_t l = (size_t)(eol - p);
		if (l > WF_REGION_LINE_MAX) {
			r = load_err(err, -E2BIG, line, "line too long (%zu bytes, limit %u)", l,
				     WF_REGION_LINE_MAX);
			goto fail;
		}
		*eol = '\0';
		char *s = p;
		p = nl ? nl + 1 : end;
		if (strlen(s) != l) {
			r = load_err(err, -EINVAL, line, "NUL byte in line");
			goto fail;
		}
		if (*s == '\0' || *s == '#')
			continue;
		if (!header_seen && n == 0 && strcmp(s, "code,name,parent,level") == 0) {
			header_seen = true;
			continue;
		}
		char *f[4];
		int k = split_csv(s, f, 4);
		if (k != 4) {
			r = load_err(err, -EINVAL, line, "expected 4 fields code,name,parent,level");
			goto fail;
		}
		if (n >= WF_REGION_ROWS_MAX) {
			r = load_err(err, -EFBIG, line, "too many rows (limit %u)", WF_REGION_ROWS_MAX);
			goto fail;
		}
		enum wf_region_level own = wf_region_level_of_code(f[0]);
		if (own == WF_REGION_LEVEL_INVALID) {
			r = load_err(err, -EINVAL, line, "bad code '%.20s' (want 12 digits)", f[0]);
			goto fail;
		}
		enum wf_region_level lv = wf_region_level_from_string(f[3]);
		if (lv == WF_REGION_LEVEL_INVALID) {
			r = load_err(err, -EINVAL, line, "bad level '%.20s'", f[3]);
			goto fail;
		}
		if (lv != own) {
			r = load_err(err, -EINVAL, line, "level %s does not match code %s (%s)", f[3],
				     f[0], level_names[own]);
			goto fail;
		}
		if (!name_ok(f[1])) {
			r = load_err(err, -EINVAL, line, "bad name (empty, control characters or over %u bytes)",
				     WF_REGION_NAME_MAX);
			goto fail;
		}
		if (lv == WF_REGION_PROVINCE ? f[2][0] != '\0' : !is_code12(f[2])) {
			r = load_err(err, -EINVAL, line, "bad parent '%.20s'", f[2]);
			goto fail;
		}
		if (lv != WF_REGION_PROVINCE) {
			enum wf_region_level pl = wf_region_level_of_code(f[2]);
			if (pl == WF_REGION_LEVEL_INVALID || pl >= lv || !wf_region_contains(f[2], f[0])) {
				r = load_err(err, -EINVAL, line, "parent %s is not an ancestor of %s", f[2], f[0]);
				goto fail;
			}
		}
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 4096;
			struct wf_region *ne = realloc(e, nc * sizeof *ne);
			if (!ne) {
				r = load_err(err, -ENOMEM, line, "out of memory");
				goto fail;
			}
			e = ne;
			cap = nc;
		}
		struct wf_region *x = &e[n++];
		memcpy(x->code, f[0], 13);
		memcpy(x->parent, f[2], strlen(f[2]) + 1);
		x->level = (uint8_t)lv;
		x->line = line;
		x->name = f[1];
		x->parent_idx = x->first_child = x->next_sibling = -1;
	}
	*ret_entries = e;
	*ret_n = n;
	return 0;
fail:
	free(e);
	return r;
}

int wf_region_table_load(const char *path, struct wf_region_table **ret,
			 struct wf_region_error *ret_err)
{
	struct wf_region_table *t = NULL;
	int32_t *last_child = NULL;
	int r;

	if (ret_err) {
		ret_err->line = 0;
		ret_err->message[0] = '\0';
	}
	if (!path || !ret)
		return load_err(ret_err, -EINVAL, 0, "no path");
	t = calloc(1, sizeof *t);
	if (!t)
		return load_err(ret_err, -ENOMEM, 0, "out of memory");
	t->first_root = -1;
	size_t len = 0;
	r = read_file(path, &t->text, &len, ret_err);
	if (r < 0)
		goto fail;
	r = parse_rows(t->text, len, &t->entries, &t->n, ret_err);
	if (r < 0)
		goto fail;
	if (t->n == 0) {
		r = load_err(ret_err, -EINVAL, 0, "no rows");
		goto fail;
	}
	qsort(t->entries, t->n, sizeof *t->entries, cmp_entry);

	/* Report the offending row with the smallest line number, so the
	 * message points at the first bad line of the file. */
	unsigned bad_line = 0;
	int bad = 0;
	char bad_msg[128] = "";
	for (size_t i = 0; i < t->n; i++) {
		struct wf_region *x = &t->entries[i];
		if (i > 0 && strcmp(t->entries[i - 1].code, x->code) == 0) {
			unsigned l1 = t->entries[i - 1].line, l2 = x->line;
			unsigned later = l1 > l2 ? l1 : l2, earlier = l1 > l2 ? l2 : l1;
			if (!bad || later < bad_line) {
				bad = -EEXIST;
				bad_line = later;
				snprintf(bad_msg, sizeof bad_msg, "duplicate code %s (first on line %u)",
					 x->code, earlier);
			}
			continue;
		}
		if (x->level == WF_REGION_PROVINCE)
			continue;
		x->parent_idx = find_idx(t, x->parent);
		if (x->parent_idx < 0 && (!bad || x->line < bad_line)) {
			bad = -ENOENT;
			bad_line = x->line;
			snprintf(bad_msg, sizeof bad_msg, "parent %s of %s not in the table", x->parent,
				 x->code);
		}
	}
	if (bad) {
		r = load_err(ret_err, bad, bad_line, "%s", bad_msg);
		goto fail;
	}

	/* link children in code order */
	last_child = malloc(t->n * sizeof *last_child);
	if (!last_child) {
		r = load_err(ret_err, -ENOMEM, 0, "out of memory");
		goto fail;
	}
	int32_t last_root = -1;
	for (size_t i = 0; i < t->n; i++) {
		struct wf_region *x = &t->entries[i];
		last_child[i] = -1;
		t->per_level[x->level]++;
		int32_t *tail, *head;
		if (x->parent_idx < 0) {
			head = &t->first_root;
			tail = &last_root;
		} else {
			head = &t->entries[x->parent_idx].first_child;
			tail = &last_child[x->parent_idx];
		}
		if (*tail < 0)
			*head = (int32_t)i;
		else
			t->entries[*tail].next_sibling = (int32_t)i;
		*tail = (int32_t)i;
	}
	free(last_child);
	*ret = t;
	return 0;
fail:
	wf_region_table_free(t);
	return r;
}
