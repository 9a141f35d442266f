/* config: see wf/config.h and docs/service-runtime.md
 *
 * inih does the INI syntax (sections, "key = value", whitespace). Everything
 * it cannot do portably is done in our line reader, which feeds inih one
 * line per call through ini_parse_stream():
 *   - it counts lines, so the handler knows the line of each key (the
 *     packaged inih is built without INI_HANDLER_LINENO);
 *   - it strips leading whitespace, so inih's multi-line continuation never
 *     triggers (an indented line is an ordinary line);
 *   - it removes comments: whole-line ';' / '#', and inline ones starting
 *     at a ';' or '#' that follows a space or tab (inih alone strips only
 *     inline ';');
 *   - it enforces the line length, rejects control characters, and checks
 *     section headers against the table (so empty unknown sections and
 *     text after ']' are errors too);
 *   - it stops the parse (returns EOF) after the first error.
 */
#include "wf/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MSG_MAX 512
#define ECHO_MAX 64

union value {
	char *s;
	int64_t i;
	double d;
	bool b;
	int e;
};

struct parser {
	const char *name;
	const struct wf_config_key *table;
	size_t n;
	union value *values;
	int *seen_line;

	const char *buf;
	size_t len, pos;
	int lineno;

	int err_line; /* 0: no error yet */
	int err_code;
	char msg[MSG_MAX];
	bool partial; /* sections the table does not name are skipped */
};

const char *wf_config_type_to_string(enum wf_config_type type)
{
	switch (type) {
	case WF_CONFIG_STRING:   return "string";
	case WF_CONFIG_INT:      return "integer";
	case WF_CONFIG_BOOL:     return "boolean";
	case WF_CONFIG_DOUBLE:   return "number";
	case WF_CONFIG_DURATION: return "duration";
	case WF_CONFIG_SIZE:     return "size";
	case WF_CONFIG_ENUM:     return "enum";
	default:                 return "invalid";
	}
}

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- value parsers ---- */

static int parse_u64_digits(const char **p, uint64_t *ret)
{
	const char *s = *p;
	uint64_t v = 0;
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*p = s;
	*ret = v;
	return 0;
}

static int parse_int(const char *text, int64_t *ret)
{
	const char *p = text;
	bool neg = false;
	uint64_t v;
	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	int r = parse_u64_digits(&p, &v);
	if (r < 0)
		return r;
	if (*p)
		return -EINVAL;
	if (neg) {
		if (v > (uint64_t)INT64_MAX + 1)
			return -ERANGE;
		*ret = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	} else {
		if (v > INT64_MAX)
			return -ERANGE;
		*ret = (int64_t)v;
	}
	return 0;
}

int wf_config_parse_bool(const char *text, bool *ret_bool)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (strcasecmp(text, yes[i]) == 0) {
			*ret_bool = true;
			return 0;
		}
		if (strcasecmp(text, no[i]) == 0) {
			*ret_bool = false;
			return 0;
		}
	}
	return -EINVAL;
}

int wf_config_parse_duration(const char *text, int64_t *ret_ms)
{
	static const struct { const char *unit; uint64_t ms; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 },
	};
	const char *p = text;
	uint64_t total = 0;

	if (strcmp(text, "0") == 0) {
		*ret_ms = 0;
		return 0;
	}
	if (!*p)
		return -EINVAL;
	while (*p) {
		uint64_t v;
		int r = parse_u64_digits(&p, &v);
		if (r < 0)
			return r;
		size_t i, ulen = 0;
		for (i = 0; i < sizeof units / sizeof units[0]; i++) {
			ulen = strlen(units[i].unit);
			if (strncmp(p, units[i].unit, ulen) == 0 && !isalpha((unsigned char)p[ulen]))
				break;
		}
		if (i == sizeof units / sizeof units[0])
			return -EINVAL;
		p += ulen;
		if (v > (uint64_t)INT64_MAX / units[i].ms)
			return -ERANGE;
		v *= units[i].ms;
		if (total > (uint64_t)INT64_MAX - v)
			return -ERANGE;
		total += v;
	}
	*ret_ms = (int64_t)total;
	return 0;
}

int wf_config_parse_size(const char *text, int64_t *ret_bytes)
{
	const char *p = text;
	uint64_t v, mult = 1;
	int r = parse_u64_digits(&p, &v);
	if (r < 0)
		return r;
	if (*p) {
		switch (toupper((unsigned char)*p)) {
		case 'K': mult = UINT64_C(1) << 10; break;
		case 'M': mult = UINT64_C(1) << 20; break;
		case 'G': mult = UINT64_C(1) << 30; break;
		case 'T': mult = UINT64_C(1) << 40; break;
		default: return -EINVAL;
		}
		if (p[1])
			return -EINVAL;
	}
	if (v > (uint64_t)INT64_MAX / mult)
		return -ERANGE;
	*ret_bytes = (int64_t)(v * mult);
	return 0;
}

static int parse_double(const char *text, double *ret)
{
	if (!*text || strspn(text, "0123456789+-.eE") != strlen(text))
		return -EINVAL;
	char *end;
	double d = strtod(text, &end);
	if (end == text || *end)
		return -EINVAL;
	if (!isfinite(d))
		return -ERANGE;
	*ret = d;
	return 0;
}

/* ---- formatting of bounds ---- */

static void fmt_duration(int64_t ms, char *buf, size_t size)
{
	static const struct { const char *unit; int64_t ms; } units[] = {
		{ "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 },
	};
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (ms != 0 && ms % units[i].ms == 0) {
			snprintf(buf, size, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
			return;
		}
	}
	snprintf(buf, size, "%lldms", (long long)ms);
}

static void fmt_size(int64_t bytes, char *buf, size_t size)
{
	static const char suffix[] = "TGMK";
	for (int i = 0; i < 4; i++) {
		int64_t m = INT64_C(1) << (10 * (4 - i));
		if (bytes != 0 && bytes % m == 0) {
			snprintf(buf, size, "%lld%c", (long long)(bytes / m), suffix[i]);
			return;
		}
	}
	snprintf(buf, size, "%lld", (long long)bytes);
}

static void fmt_bound(const struct wf_config_key *k, int64_t v, char *buf, size_t size)
{
	if (k->type == WF_CONFIG_DURATION)
		fmt_duration(v, buf, size);
	else if (k->type == WF_CONFIG_SIZE)
		fmt_size(v, buf, size);
	else
		snprintf(buf, size, "%lld", (long long)v);
}

static bool has_bounds(const struct wf_config_key *k)
{
	return k->min != 0 || k->max != 0;
}

static void fmt_range(const struct wf_config_key *k, char *buf, size_t size)
{
	char lo[32], hi[32];
	fmt_bound(k, k->min, lo, sizeof lo);
	fmt_bound(k, k->max, hi, sizeof hi);
	snprintf(buf, size, "[%s, %s]", lo, hi);
}

static void fmt_enum_values(const struct wf_config_key *k, char *buf, size_t size)
{
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; k->enum_values && k->enum_values[i]; i++) {
		int w = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", k->enum_values[i]);
		if (w < 0 || (size_t)w >= size - used)
			break;
		used += (size_t)w;
	}
}

static const char *expected_form(const struct wf_config_key *k)
{
	switch (k->type) {
	case WF_CONFIG_INT:      return "expected an integer";
	case WF_CONFIG_BOOL:     return "expected true/false, yes/no, on/off or 1/0";
	case WF_CONFIG_DOUBLE:   return "expected a finite decimal number";
	case WF_CONFIG_DURATION: return "expected a duration such as 250ms, 30s, 5m, 2h, 1d";
	case WF_CONFIG_SIZE:     return "expected a size such as 4096, 64K, 256M, 1G";
	default:                 return "invalid value";
	}
}

static size_t string_max(const struct wf_config_key *k)
{
	return k->max > 0 ? (size_t)k->max : WF_CONFIG_STRING_MAX;
}

/* Parses TEXT for key K into *RET. On failure writes the reason to REASON
 * and returns -EINVAL (or -ENOMEM). */
static int parse_value(const struct wf_config_key *k, const char *text, union value *ret,
		       char *reason, size_t rlen)
{
	union value v = { 0 };
	int64_t num = 0;
	int r = 0;
	char range[80];

	switch (k->type) {
	case WF_CONFIG_STRING: {
		size_t len = strlen(text);
		if (len > string_max(k)) {
			snprintf(reason, rlen, "too long (%zu bytes, limit %zu)", len, string_max(k));
			return -EINVAL;
		}
		if (k->min > 0 && len < (size_t)k->min) {
			snprintf(reason, rlen, "too short (%zu bytes, minimum %lld)", len,
				 (long long)k->min);
			return -EINVAL;
		}
		v.s = strdup(text);
		if (!v.s) {
			snprintf(reason, rlen, "out of memory");
			return -ENOMEM;
		}
		*ret = v;
		return 0;
	}
	case WF_CONFIG_BOOL:
		if (wf_config_parse_bool(text, &v.b) < 0) {
			snprintf(reason, rlen, "%s", expected_form(k));
			return -EINVAL;
		}
		*ret = v;
		return 0;
	case WF_CONFIG_ENUM:
		for (int i = 0; k->enum_values && k->enum_values[i]; i++) {
			if (strcmp(text, k->enum_values[i]) == 0) {
				v.e = i;
				*ret = v;
				return 0;
			}
		}
		{
			char list[256];
			fmt_enum_values(k, list, sizeof list);
			snprintf(reason, rlen, "expected one of: %s", list);
		}
		return -EINVAL;
	case WF_CONFIG_DOUBLE:
		r = parse_double(text, &v.d);
		if (r == -ERANGE) {
			snprintf(reason, rlen, "not a finite number");
			return -EINVAL;
		}
		if (r < 0) {
			snprintf(reason, rlen, "%s", expected_form(k));
			return -EINVAL;
		}
		if (has_bounds(k) && (v.d < (double)k->min || v.d > (double)k->max)) {
			fmt_range(k, range, sizeof range);
			snprintf(reason, rlen, "out of range %s", range);
			return -EINVAL;
		}
		*ret = v;
		return 0;
	case WF_CONFIG_INT:
		r = parse_int(text, &num);
		break;
	case WF_CONFIG_DURATION:
		r = wf_config_parse_duration(text, &num);
		break;
	case WF_CONFIG_SIZE:
		r = wf_config_parse_size(text, &num);
		break;
	default:
		snprintf(reason, rlen, "key has an invalid type");
		return -EINVAL;
	}
	if (r == -ERANGE) {
		if (has_bounds(k)) {
			fmt_range(k, range, sizeof range);
			snprintf(reason, rlen, "out of range %s", range);
		} else {
			snprintf(reason, rlen, "out of range (too large)");
		}
		return -EINVAL;
	}
	if (r < 0) {
		snprintf(reason, rlen, "%s", expected_form(k));
		return -EINVAL;
	}
	if (has_bounds(k) && (num < k->min || num > k->max)) {
		fmt_range(k, range, sizeof range);
		snprintf(reason, rlen, "out of range %s", range);
		return -EINVAL;
	}
	v.i = num;
	*ret = v;
	return 0;
}

static const char *zero_text(const struct wf_config_key *k)
{
	switch (k->type) {
	case WF_CONFIG_STRING: return NULL;
	case WF_CONFIG_BOOL:   return "false";
	case WF_CONFIG_ENUM:   return k->enum_values ? k->enum_values[0] : NULL;
	default:               return "0";
	}
}

/* ---- table ---- */

static bool name_ok(const char *s)
{
	return s && *s && strlen(s) <= WF_CONFIG_NAME_MAX &&
	       strcspn(s, " \t[]=:;#\r\n") == strlen(s);
}

int wf_config_table_check(const struct wf_config_key *table, size_t n, char *err, size_t errlen)
{
	char reason[MSG_MAX];
	if (!table && n > 0) {
		set_err(err, errlen, "config table is NULL");
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		const struct wf_config_key *k = &table[i];
		if (!name_ok(k->section) || !name_ok(k->name)) {
			set_err(err, errlen, "config table entry %zu: bad section or key name", i);
			return -EINVAL;
		}
		if ((int)k->type < 0 || k->type >= WF_CONFIG_TYPE_MAX) {
			set_err(err, errlen, "config table: '%s' in [%s] has an invalid type", k->name,
				k->section);
			return -EINVAL;
		}
		if (k->type == WF_CONFIG_ENUM && (!k->enum_values || !k->enum_values[0])) {
			set_err(err, errlen, "config table: enum '%s' in [%s] has no values", k->name,
				k->section);
			return -EINVAL;
		}
		bool bad_bounds = k->type == WF_CONFIG_STRING
					  ? k->min < 0 || k->max < 0 || (size_t)k->min > string_max(k)
					  : k->min > k->max;
		if (bad_bounds) {
			set_err(err, errlen, "config table: '%s' in [%s] has min > max", k->name,
				k->section);
			return -EINVAL;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(table[j].section, k->section) == 0 &&
			    strcmp(table[j].name, k->name) == 0) {
				set_err(err, errlen, "config table: duplicate key '%s' in [%s]", k->name,
					k->section);
				return -EINVAL;
			}
		}
		const char *def = k->default_value ? k->default_value : zero_text(k);
		if (!def)
			continue;
		size_t dl = strlen(def);
		bool printable = dl == 0 || (!isspace((unsigned char)def[0]) &&
					     !isspace((unsigned char)def[dl - 1]) &&
					     def[0] != ';' && def[0] != '#');
		for (size_t c = 0; printable && c < dl; c++) {
			unsigned char ch = (unsigned char)def[c];
			if (ch < 0x20 || ch == 0x7f ||
			    ((ch == ';' || ch == '#') && c > 0 && (def[c - 1] == ' ' || def[c - 1] == '\t')))
				printable = false;
		}
		if (!printable || strlen(k->name) + 3 + dl > WF_CONFIG_LINE_MAX) {
			set_err(err, errlen,
				"config table: default of '%s' in [%s] cannot be written in a config file",
				k->name, k->section);
			return -EINVAL;
		}
		union value v;
		int r = parse_value(k, def, &v, reason, sizeof reason);
		if (r < 0) {
			set_err(err, errlen, "config table: bad default '%s' for '%s' in [%s]: %s", def,
				k->name, k->section, reason);
			return r;
		}
		if (k->type == WF_CONFIG_STRING)
			free(v.s);
	}
	return 0;
}

static void values_free(const struct wf_config_key *table, size_t n, union value *values)
{
	if (!values)
		return;
	for (size_t i = 0; i < n; i++)
		if (table[i].type == WF_CONFIG_STRING)
			free(values[i].s);
	free(values);
}

/* Allocates the staging values and applies the defaults. */
static int values_new(const struct wf_config_key *table, size_t n, union value **ret,
		      char *err, size_t errlen)
{
	char reason[MSG_MAX];
	int r = wf_config_table_check(table, n, err, errlen);
	if (r < 0)
		return r;
	union value *values = calloc(n ? n : 1, sizeof *values);
	if (!values) {
		set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const char *def = table[i].default_value ? table[i].default_value
							  : zero_text(&table[i]);
		if (!def)
			continue;
		r = parse_value(&table[i], def, &values[i], reason, sizeof reason);
		if (r < 0) {
			set_err(err, errlen, "config defaults: %s", reason);
			values_free(table, n, values);
			return r;
		}
	}
	*ret = values;
	return 0;
}

static void store(const struct wf_config_key *k, void *target, const union value *v)
{
	char *f = (char *)target + k->offset;
	switch (k->type) {
	case WF_CONFIG_STRING:
		memcpy(f, &v->s, sizeof v->s);
		break;
	case WF_CONFIG_BOOL:
		memcpy(f, &v->b, sizeof v->b);
		break;
	case WF_CONFIG_DOUBLE:
		memcpy(f, &v->d, sizeof v->d);
		break;
	case WF_CONFIG_ENUM:
		memcpy(f, &v->e, sizeof v->e);
		break;
	default:
		memcpy(f, &v->i, sizeof v->i);
		break;
	}
}

/* Moves the staged values into TARGET; the strings now belong to it. */
static void values_commit(const struct wf_config_key *table, size_t n, union value *values,
			  void *target)
{
	for (size_t i = 0; i < n; i++)
		store(&table[i], target, &values[i]);
	free(values);
}

int wf_config_defaults(const struct wf_config_key *table, size_t n, void *target,
		       char *err, size_t errlen)
{
	union value *values;
	if (!target) {
		set_err(err, errlen, "no target");
		return -EINVAL;
	}
	int r = values_new(table, n, &values, err, errlen);
	if (r < 0)
		return r;
	values_commit(table, n, values, target);
	return 0;
}

void wf_config_free(const struct wf_config_key *table, size_t n, void *target)
{
	if (!target || !table)
		return;
	for (size_t i = 0; i < n; i++) {
		if (table[i].type != WF_CONFIG_STRING)
			continue;
		char *s, *f = (char *)target + table[i].offset;
		memcpy(&s, f, sizeof s);
		free(s);
		s = NULL;
		memcpy(f, &s, sizeof s);
	}
}

/* ---- "did you mean" ---- */

/* Optimal string alignment distance, case-insensitive; large for long input. */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return SIZE_MAX;
	size_t d[65][65];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
			size_t cost = ca != cb;
			size_t best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < best)
				best = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

static bool close_enough(const char *input, size_t dist)
{
	return dist <= (strlen(input) >= 6 ? 2u : 1u);
}

static const char *suggest_section(const struct parser *p, const char *input)
{
	const char *best = NULL;
	size_t bestd = SIZE_MAX;
	for (size_t i = 0; i < p->n; i++) {
		size_t dd = distance(input, p->table[i].section);
		if (dd < bestd) {
			bestd = dd;
			best = p->table[i].section;
		}
	}
	return best && close_enough(input, bestd) ? best : NULL;
}

static const struct wf_config_key *suggest_key(const struct parser *p, const char *section,
					       const char *input, bool *ret_other_section)
{
	const struct wf_config_key *best = NULL;
	size_t bestd = SIZE_MAX;
	for (size_t i = 0; i < p->n; i++) {
		if (strcmp(p->table[i].section, section) != 0)
			continue;
		size_t dd = distance(input, p->table[i].name);
		if (dd < bestd) {
			bestd = dd;
			best = &p->table[i];
		}
	}
	if (best && close_enough(input, bestd)) {
		*ret_other_section = false;
		return best;
	}
	for (size_t i = 0; i < p->n; i++) {
		if (strcmp(p->table[i].name, input) == 0) {
			*ret_other_section = true;
			return &p->table[i];
		}
	}
	return NULL;
}

/* ---- parsing ---- */

static void fail(struct parser *p, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(struct parser *p, int code, const char *fmt, ...)
{
	if (p->err_line)
		return;
	p->err_line = p->lineno;
	p->err_code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->msg, sizeof p->msg, fmt, ap);
	va_end(ap);
}

/* Checks a "[name]" line (START..END, trimmed, comment removed). */
static void check_section(struct parser *p, const char *start, const char *end)
{
	const char *close = memchr(start, ']', (size_t)(end - start));
	if (!close) {
		fail(p, -EINVAL, "syntax error: missing ']' in section header");
		return;
	}
	if (close + 1 != end) {
		fail(p, -EINVAL, "syntax error: unexpected text after ']'");
		return;
	}
	size_t len = (size_t)(close - start - 1);
	if (len == 0) {
		fail(p, -EINVAL, "syntax error: empty section name");
		return;
	}
	char name[WF_CONFIG_LINE_MAX + 1];
	memcpy(name, start + 1, len);
	name[len] = '\0';
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->table[i].section, name) == 0)
			return;
	if (p->partial)
		return;
	const char *s = suggest_section(p, name);
	if (s)
		fail(p, -EINVAL, "unknown section [%s] (did you mean [%s]?)", name, s);
	else
		fail(p, -EINVAL, "unknown section [%s]", name);
}

static char *reader(char *str, int num, void *stream)
{
	struct parser *p = stream;
	if (p->err_line || p->pos >= p->len)
		return NULL;

	const char *line = p->buf + p->pos;
	const char *nl = memchr(line, '\n', p->len - p->pos);
	size_t linelen = nl ? (size_t)(nl - line) : p->len - p->pos;
	p->pos += linelen + (nl ? 1 : 0);
	p->lineno++;
	if (linelen > 0 && line[linelen - 1] == '\r')
		linelen--;

	for (size_t i = 0; i < linelen; i++) {
		unsigned char c = (unsigned char)line[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			fail(p, -EINVAL, "invalid control character 0x%02x", c);
			return NULL;
		}
	}
	const char *start = line, *end = line + linelen;
	while (start < end && (*start == ' ' || *start == '\t'))
		start++;
	if (start < end && (*start == ';' || *start == '#'))
		end = start;
	for (const char *q = start + 1; q < end; q++) {
		if ((*q == ';' || *q == '#') && (q[-1] == ' ' || q[-1] == '\t')) {
			end = q;
			break;
		}
	}
	while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
		end--;

	size_t len = (size_t)(end - start);
	if (len > WF_CONFIG_LINE_MAX) {
		fail(p, -EINVAL, "line too long (%zu bytes, limit %d)", len, WF_CONFIG_LINE_MAX);
		return NULL;
	}
	if (num < 0 || (size_t)num < len + 2) {
		fail(p, -ENOBUFS, "line does not fit inih's line buffer (%d bytes)", num);
		return NULL;
	}
	if (len > 0 && *start == '[') {
		check_section(p, start, end);
		if (p->err_line)
			return NULL;
	}
	memcpy(str, start, len);
	str[len] = '\n';
	str[len + 1] = '\0';
	return str;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parser *p = user;
	char reason[MSG_MAX];

	if (p->err_line)
		return 0;
	if (!*name) {
		fail(p, -EINVAL, "syntax error: missing key name before '='");
		return 0;
	}
	if (!*section) {
		fail(p, -EINVAL, "key '%s' outside of any [section]", name);
		return 0;
	}
	size_t idx;
	bool known_section = false;
	for (idx = 0; idx < p->n; idx++) {
		if (strcmp(p->table[idx].section, section) == 0) {
			known_section = true;
			if (strcmp(p->table[idx].name, name) == 0)
				break;
		}
	}
	if (idx == p->n && p->partial && !known_section)
		return 1; /* another reader's section */
	if (idx == p->n) {
		bool other = false;
		const struct wf_config_key *s = suggest_key(p, section, name, &other);
		if (s && other)
			fail(p, -EINVAL, "unknown key '%s' in [%s] (did you mean '%s' in [%s]?)", name,
			     section, s->name, s->section);
		else if (s)
			fail(p, -EINVAL, "unknown key '%s' in [%s] (did you mean '%s'?)", name, section,
			     s->name);
		else
			fail(p, -EINVAL, "unknown key '%s' in [%s]", name, section);
		return 0;
	}
	const struct wf_config_key *k = &p->table[idx];
	if (p->seen_line[idx]) {
		fail(p, -EINVAL, "duplicate key '%s' in [%s] (first set on line %d)", name, section,
		     p->seen_line[idx]);
		return 0;
	}
	union value v;
	int r = parse_value(k, value, &v, reason, sizeof reason);
	if (r < 0) {
		size_t vl = strlen(value);
		fail(p, r == -ENOMEM ? -ENOMEM : -EINVAL, "invalid value '%.*s%s' for '%s' in [%s]: %s",
		     ECHO_MAX, value, vl > ECHO_MAX ? "..." : "", name, section, reason);
		return 0;
	}
	if (k->type == WF_CONFIG_STRING)
		free(p->values[idx].s);
	p->values[idx] = v;
	p->seen_line[idx] = p->lineno;
	return 1;
}

static int parse_buffer(const char *name, const char *buf, size_t len,
			const struct wf_config_key *table, size_t n, void *target,
			char *err, size_t errlen, bool partial)
{
	struct parser p = {
		.name = name, .table = table, .n = n, .buf = buf, .len = len, .partial = partial,
	};
	int r;

	if (!target) {
		set_err(err, errlen, "%s: no target", name);
		return -EINVAL;
	}
	if (len > WF_CONFIG_FILE_MAX) {
		set_err(err, errlen, "%s: file too large (%zu bytes, limit %d)", name, len,
			WF_CONFIG_FILE_MAX);
		return -EFBIG;
	}
	r = values_new(table, n, &p.values, err, errlen);
	if (r < 0)
		return r;
	p.seen_line = calloc(n ? n : 1, sizeof *p.seen_line);
	if (!p.seen_line) {
		set_err(err, errlen, "%s: out of memory", name);
		r = -ENOMEM;
		goto out;
	}
	/* a UTF-8 byte order mark is allowed and skipped */
	if (p.len >= 3 && memcmp(p.buf, "\xEF\xBB\xBF", 3) == 0) {
		p.buf += 3;
		p.len -= 3;
	}

	r = ini_parse_stream(reader, &p, handler, &p);
	if (r == -2) {
		set_err(err, errlen, "%s: out of memory", name);
		r = -ENOMEM;
		goto out;
	}
	if (r > 0 && (!p.err_line || r < p.err_line)) {
		set_err(err, errlen, "%s:%d: syntax error: expected '[section]' or 'key = value'",
			name, r);
		r = -EINVAL;
		goto out;
	}
	if (p.err_line) {
		set_err(err, errlen, "%s:%d: %s", name, p.err_line, p.msg);
		r = p.err_code;
		goto out;
	}
	if (r != 0) {
		set_err(err, errlen, "%s: parse error", name);
		r = -EINVAL;
		goto out;
	}
	values_commit(table, n, p.values, target);
	p.values = NULL;
	r = 0;
out:
	values_free(table, n, p.values);
	free(p.seen_line);
	return r;
}

int wf_config_load_string(const char *name, const char *text, const struct wf_config_key *table,
			  size_t n, void *target, char *err, size_t errlen)
{
	if (!name)
		name = "<string>";
	if (!text) {
		set_err(err, errlen, "%s: no text", name);
		return -EINVAL;
	}
	size_t len = strnlen(text, (size_t)WF_CONFIG_FILE_MAX + 1);
	return parse_buffer(name, text, len, table, n, target, err, errlen, false);
}

static int load_file(const char *path, const struct wf_config_key *table, size_t n,
		     void *target, char *err, size_t errlen, bool partial)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int fd, r;

	if (!path) {
		set_err(err, errlen, "no config path");
		return -EINVAL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		set_err(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		set_err(err, errlen, "%s: %s", path, strerror(-r));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		set_err(err, errlen, "%s: not a regular file", path);
		r = -EINVAL;
		goto out;
	}
	if (st.st_size > WF_CONFIG_FILE_MAX) {
		set_err(err, errlen, "%s: file too large (%lld bytes, limit %d)", path,
			(long long)st.st_size, WF_CONFIG_FILE_MAX);
		r = -EFBIG;
		goto out;
	}
	/* read at most limit + 1 bytes: the file may grow while we read it */
	buf = malloc((size_t)WF_CONFIG_FILE_MAX + 1);
	if (!buf) {
		set_err(err, errlen, "%s: out of memory", path);
		r = -ENOMEM;
		goto out;
	}
	while (len < (size_t)WF_CONFIG_FILE_MAX + 1) {
		ssize_t got = read(fd, buf + len, (size_t)WF_CONFIG_FILE_MAX + 1 - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = -errno;
			set_err(err, errlen, "%s: %s", path, strerror(-r));
			goto out;
		}
		if (got == 0)
			break;
		len += (size_t)got;
	}
	r = parse_buffer(path, buf, len, table, n, target, err, errlen, partial);
out:
	free(buf);
	close(fd);
	return r;
}

/* ---- example config ---- */

static void print_comment_lines(FILE *out, const char *text)
{
	const char *p = text;
	while (*p) {
		size_t l = strcspn(p, "\n");
		fprintf(out, "# %.*s\n", (int)l, p);
		p += l;
		if (*p == '\n')
			p++;
	}
}

static void print_key(FILE *out, const struct wf_config_key *k)
{
	char range[80], list[256];
	if (k->help)
		print_comment_lines(out, k->help);
	switch (k->type) {
	case WF_CONFIG_STRING:
		if (k->min > 0)
			fprintf(out, "# string, %lld to %zu bytes\n", (long long)k->min, string_max(k));
		else
			fprintf(out, "# string, at most %zu bytes\n", string_max(k));
		break;
	case WF_CONFIG_BOOL:
		fprintf(out, "# boolean: true/false, yes/no, on/off, 1/0\n");
		break;
	case WF_CONFIG_ENUM:
		fmt_enum_values(k, list, sizeof list);
		fprintf(out, "# one of: %s\n", list);
		break;
	default:
		if (has_bounds(k)) {
			fmt_range(k, range, sizeof range);
			fprintf(out, "# %s, range %s\n", wf_config_type_to_string(k->type), range);
		} else {
			fprintf(out, "# %s\n", wf_config_type_to_string(k->type));
		}
		if (k->type == WF_CONFIG_DURATION)
			fprintf(out, "# units: ms, s, m, h, d (e.g. 250ms, 30s, 1h30m)\n");
		else if (k->type == WF_CONFIG_SIZE)
			fprintf(out, "# suffixes: K, M, G, T (powers of 1024)\n");
		break;
	}
	const char *def = k->default_value ? k->default_value : zero_text(k);
	if (def)
		fprintf(out, "%s = %s\n", k->name, def);
	else
		fprintf(out, "#%s =\n", k->name);
}

int wf_config_print_defaults(FILE *out, const struct wf_config_key *table, size_t n)
{
	if (!out || (!table && n))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		bool first = true;
		for (size_t j = 0; j < i; j++)
			if (strcmp(table[j].section, table[i].section) == 0)
				first = false;
		if (!first)
			continue;
		fprintf(out, "%s[%s]\n", i ? "\n" : "", table[i].section);
		for (size_t j = i; j < n; j++) {
			if (strcmp(table[j].section, table[i].section) != 0)
				continue;
			fprintf(out, "\n");
			print_key(out, &table[j]);
		}
	}
	if (fflush(out) != 0 || ferror(out))
		return -EIO;
	return 0;
}

int wf_config_load(const char *path, const struct wf_config_key *table, size_t n,
		   void *target, char *err, size_t errlen)
{
	return load_file(path, table, n, target, err, errlen, false);
}

int wf_config_load_sections(const char *path, const struct wf_config_key *table, size_t n,
			    void *target, char *err, size_t errlen)
{
	return load_file(path, table, n, target, err, errlen, true);
}
