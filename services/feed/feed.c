/* feed: shared CSV feed reader, field checks, event builder, INI wrapper. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <ini.h>

#include "feed.h"
#include "wf/clock.h"
#include "wf/config.h"

#define ERR(r, ...) snprintf((r)->err, sizeof((r)->err), __VA_ARGS__)

size_t wf_feed_utf8_check(const uint8_t *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = s[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return i;
		}
		if (len - i <= n)
			return i;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		/* C1 controls U+0080..U+009F are not text */
		if (cp >= 0x80 && cp <= 0x9f)
			return i;
		i += n + 1;
	}
	return len;
}

static unsigned line_of(const uint8_t *buf, size_t off, size_t *ret_col)
{
	unsigned line = 1;
	size_t start = 0;

	for (size_t i = 0; i < off; i++)
		if (buf[i] == '\n') {
			line++;
			start = i + 1;
		}
	if (ret_col)
		*ret_col = off - start + 1;
	return line;
}

int wf_feed_open(struct wf_feed_reader *r, const uint8_t *buf, size_t len, size_t max_size)
{
	size_t bad, col;

	memset(r, 0, sizeof(*r));
	r->buf = buf;
	r->len = len;
	r->status = WF__V1__STATUS__STATUS_ACTUAL;
	if (len > max_size) {
		ERR(r, "too large: %zu bytes, limit %zu", len, max_size);
		return -EFBIG;
	}
	if (len == 0) {
		ERR(r, "empty file");
		return -EBADMSG;
	}
	if (len >= 3 && buf[0] == 0xef && buf[1] == 0xbb && buf[2] == 0xbf)
		r->pos = 3;
	bad = wf_feed_utf8_check(buf, len);
	if (bad < len) {
		unsigned line = line_of(buf, bad, &col);
		ERR(r,
		    "line %u: byte 0x%02X at column %zu is not UTF-8 (feeds must be UTF-8; "
		    "GBK/GB18030 files must be converted)",
		    line, buf[bad], col);
		return -EILSEQ;
	}
	if (memchr(buf, '\0', len)) {
		size_t off = (size_t)((const uint8_t *)memchr(buf, '\0', len) - buf);
		ERR(r, "line %u: NUL byte", line_of(buf, off, NULL));
		return -EBADMSG;
	}
	if (buf[len - 1] != '\n') {
		ERR(r, "truncated: line %u has no line end (incomplete file)",
		    line_of(buf, len - 1, NULL));
		return -EBADMSG;
	}
	return 0;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	return s;
}

/* Copies the next raw line into r->line. 1, 0 at end, -E2BIG. */
static int next_raw(struct wf_feed_reader *r)
{
	const uint8_t *nl;
	size_t n;

	if (r->pos >= r->len)
		return 0;
	nl = memchr(r->buf + r->pos, '\n', r->len - r->pos);
	n = nl ? (size_t)(nl - (r->buf + r->pos)) : r->len - r->pos;
	r->lineno++;
	if (n > 0 && r->buf[r->pos + n - 1] == '\r')
		n--;
	if (n > WF_FEED_LINE_MAX) {
		ERR(r, "line %u: too long (%zu bytes, limit %u)", r->lineno, n, WF_FEED_LINE_MAX);
		return -E2BIG;
	}
	memcpy(r->line, r->buf + r->pos, n);
	r->line[n] = '\0';
	r->pos += (nl ? (size_t)(nl - (r->buf + r->pos)) + 1 : r->len - r->pos);
	return 1;
}

static int directive(struct wf_feed_reader *r, const char *s)
{
	s++;
	while (*s == ' ')
		s++;
	if (strncmp(s, "status=", 7) != 0)
		return 0;
	s += 7;
	if (strcmp(s, "actual") == 0)
		r->status = WF__V1__STATUS__STATUS_ACTUAL;
	else if (strcmp(s, "exercise") == 0)
		r->status = WF__V1__STATUS__STATUS_EXERCISE;
	else if (strcmp(s, "test") == 0)
		r->status = WF__V1__STATUS__STATUS_TEST;
	else {
		ERR(r, "line %u: status must be actual, exercise or test", r->lineno);
		return -EBADMSG;
	}
	return 0;
}

int wf_feed_next(struct wf_feed_reader *r)
{
	for (;;) {
		char *s, *p;
		int k = next_raw(r);

		if (k <= 0)
			return k;
		s = trim(r->line);
		if (*s == '\0')
			continue;
		if (*s == '#') {
			k = directive(r, trim(s));
			if (k < 0)
				return k;
			continue;
		}
		for (p = s; *p; p++) {
			unsigned char c = (unsigned char)*p;
			if (c == '"') {
				ERR(r, "line %u: '\"' is not allowed (no quoting in this format)",
				    r->lineno);
				return -EBADMSG;
			}
			if ((c < 0x20 && c != '\t') || c == 0x7f) {
				ERR(r, "line %u: control character 0x%02X", r->lineno, c);
				return -EBADMSG;
			}
		}
		r->nfield = 0;
		for (p = s;;) {
			char *comma = strchr(p, ',');
			if (r->nfield == WF_FEED_FIELDS_MAX) {
				ERR(r, "line %u: more than %u fields", r->lineno, WF_FEED_FIELDS_MAX);
				return -E2BIG;
			}
			if (comma)
				*comma = '\0';
			r->field[r->nfield++] = trim(p);
			if (!comma)
				break;
			p = comma + 1;
		}
		return 1;
	}
}

int wf_feed_header(struct wf_feed_reader *r, const char *const *cols, size_t ncols)
{
	int k = wf_feed_next(r);

	if (k < 0)
		return k;
	if (k == 0) {
		ERR(r, "no header line");
		return -EBADMSG;
	}
	if (r->nfield != ncols) {
		ERR(r, "line %u: header has %zu columns, expected %zu (%s,...)", r->lineno, r->nfield,
		    ncols, cols[0]);
		return -EBADMSG;
	}
	for (size_t i = 0; i < ncols; i++)
		if (strcmp(r->field[i], cols[i]) != 0) {
			ERR(r, "line %u: header column %zu is '%.40s', expected '%s'", r->lineno,
			    i + 1, r->field[i], cols[i]);
			return -EBADMSG;
		}
	return 0;
}

int wf_feed_peek_header(const struct wf_feed_reader *r, char *out, size_t size)
{
	size_t pos = r->pos;

	while (pos < r->len) {
		const uint8_t *nl = memchr(r->buf + pos, '\n', r->len - pos);
		size_t n = nl ? (size_t)(nl - (r->buf + pos)) : r->len - pos;
		size_t a = pos, b = pos + n;

		while (a < b && (r->buf[a] == ' ' || r->buf[a] == '\t'))
			a++;
		while (b > a && (r->buf[b - 1] == ' ' || r->buf[b - 1] == '\t' ||
				 r->buf[b - 1] == '\r'))
			b--;
		pos += n + 1;
		if (a == b || r->buf[a] == '#')
			continue;
		if (size == 0)
			return 0;
		n = b - a < size - 1 ? b - a : size - 1;
		memcpy(out, r->buf + a, n);
		out[n] = '\0';
		return 0;
	}
	return -ENOENT;
}

static int missing(struct wf_feed_reader *r, size_t i, const char *col, bool optional,
		   bool *ret_present)
{
	if (i >= r->nfield) {
		ERR(r, "line %u: %zu fields, expected more (truncated record?)", r->lineno,
		    r->nfield);
		return -EINVAL;
	}
	if (r->field[i][0] != '\0') {
		if (ret_present)
			*ret_present = true;
		return 1;
	}
	if (optional) {
		if (ret_present)
			*ret_present = false;
		return 0;
	}
	ERR(r, "line %u: %s: missing", r->lineno, col);
	return -EINVAL;
}

int wf_feed_double(struct wf_feed_reader *r, size_t i, const char *col, double min, double max,
		   bool optional, double *ret, bool *ret_present)
{
	char *end;
	double v;
	int k = missing(r, i, col, optional, ret_present);

	if (k <= 0)
		return k;
	errno = 0;
	v = strtod(r->field[i], &end);
	if (end == r->field[i] || *end != '\0' || strchr(r->field[i], 'x') ||
	    strchr(r->field[i], 'X')) {
		ERR(r, "line %u: %s: '%.32s' is not a number", r->lineno, col, r->field[i]);
		return -EINVAL;
	}
	if (!isfinite(v) || errno == ERANGE) {
		ERR(r, "line %u: %s: '%.32s' is not a finite number", r->lineno, col, r->field[i]);
		return -EINVAL;
	}
	if (v < min || v > max) {
		ERR(r, "line %u: %s: %g outside %g..%g", r->lineno, col, v, min, max);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

int wf_feed_int(struct wf_feed_reader *r, size_t i, const char *col, long min, long max,
		bool optional, long *ret, bool *ret_present)
{
	char *end;
	long v;
	int k = missing(r, i, col, optional, ret_present);

	if (k <= 0)
		return k;
	errno = 0;
	v = strtol(r->field[i], &end, 10);
	if (end == r->field[i] || *end != '\0' || errno == ERANGE) {
		ERR(r, "line %u: %s: '%.32s' is not an integer", r->lineno, col, r->field[i]);
		return -EINVAL;
	}
	if (v < min || v > max) {
		ERR(r, "line %u: %s: %ld outside %ld..%ld", r->lineno, col, v, min, max);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

int wf_feed_time(struct wf_feed_reader *r, size_t i, const char *col, int64_t *ret_ms)
{
	const char *s;
	size_t n;
	int k = missing(r, i, col, false, NULL);

	if (k < 0)
		return k;
	s = r->field[i];
	n = strlen(s);
	/* an explicit offset is required: local time without one is ambiguous */
	if (n < 20 || !(s[n - 1] == 'Z' || s[n - 6] == '+' || s[n - 6] == '-') ||
	    wf_clock_parse(s, ret_ms) < 0) {
		ERR(r, "line %u: %s: '%.40s' is not an RFC 3339 time with offset", r->lineno, col,
		    s);
		return -EINVAL;
	}
	return 0;
}

bool wf_feed_station_valid(const char *s)
{
	size_t n = 0;

	if (!s)
		return false;
	for (; s[n]; n++) {
		char c = s[n];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return n >= 1 && n <= WF_FEED_STATION_MAX;
}

int wf_feed_station(struct wf_feed_reader *r, size_t i, const char *col, const char **ret)
{
	int k = missing(r, i, col, false, NULL);

	if (k < 0)
		return k;
	if (!wf_feed_station_valid(r->field[i])) {
		ERR(r, "line %u: %s: '%.40s' is not an id ([A-Za-z0-9._-], 1..%u bytes)",
		    r->lineno, col, r->field[i], WF_FEED_STATION_MAX);
		return -EINVAL;
	}
	*ret = r->field[i];
	return 0;
}

int wf_feed_region_check(const struct wf_region_table *regions, const char *code, char out[13])
{
	char tmp[13];

	if (!code || wf_region_normalize(code, tmp) < 0 ||
	    wf_region_level_of_code(tmp) == WF_REGION_LEVEL_INVALID)
		return -EINVAL;
	if (regions && !wf_region_find(regions, tmp))
		return -ENOENT;
	memcpy(out, tmp, 13);
	return 0;
}

int wf_feed_region(struct wf_feed_reader *r, size_t i, const char *col,
		   const struct wf_region_table *regions, char out[13])
{
	int k = missing(r, i, col, false, NULL);

	if (k < 0)
		return k;
	k = wf_feed_region_check(regions, r->field[i], out);
	if (k == -ENOENT) {
		ERR(r, "line %u: %s: %.16s is not in the region table", r->lineno, col,
		    r->field[i]);
		return -EINVAL;
	}
	if (k < 0) {
		ERR(r, "line %u: %s: '%.16s' is not a 6- or 12-digit region code", r->lineno, col,
		    r->field[i]);
		return -EINVAL;
	}
	return 0;
}

int wf_feed_word(struct wf_feed_reader *r, size_t i, const char *col, const char *const *words,
		 int *ret)
{
	int k = missing(r, i, col, false, NULL);

	if (k < 0)
		return k;
	for (int w = 0; words[w]; w++)
		if (strcmp(words[w], r->field[i]) == 0) {
			*ret = w;
			return 0;
		}
	ERR(r, "line %u: %s: unknown value '%.40s'", r->lineno, col, r->field[i]);
	return -EINVAL;
}

int wf_feed_text(struct wf_feed_reader *r, size_t i, const char *col, size_t max,
		 const char **ret)
{
	if (i >= r->nfield)
		return missing(r, i, col, false, NULL);
	if (strlen(r->field[i]) > max) {
		ERR(r, "line %u: %s: longer than %zu bytes", r->lineno, col, max);
		return -EINVAL;
	}
	if (strchr(r->field[i], '\t')) {
		ERR(r, "line %u: %s: tab character", r->lineno, col);
		return -EINVAL;
	}
	*ret = r->field[i];
	return 0;
}

char *wf_feed_id_time(int64_t ms, char *buf, size_t size)
{
	time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	int frac = (int)(ms - (int64_t)t * 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	if (frac)
		snprintf(buf, size, "%04d%02d%02dT%02d%02d%02d.%03dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
	else
		snprintf(buf, size, "%04d%02d%02dT%02d%02d%02dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return buf;
}

int wf_feed_emit(struct wf_adapter_sink *sink, const struct wf_feed_event *e)
{
	Wf__V1__Event *ev = wf_adapter_event_new();
	int r;

	if (!ev)
		return -ENOMEM;
	ev->agency = e->agency;
	ev->hazard = e->hazard;
	ev->level = e->level;
	ev->certainty = e->certainty;
	ev->status = e->status;
	ev->msg_type = e->msg_type;
	ev->observed_ms = e->observed_ms;
	ev->issued_ms = e->issued_ms;
	ev->expires_ms = e->expires_ms;
	if (wf_adapter_set_str(&ev->id, e->id) < 0 ||
	    wf_adapter_set_str(&ev->region, e->region) < 0 ||
	    (e->station && wf_adapter_set_str(&ev->station, e->station) < 0) ||
	    (e->text && wf_adapter_set_str(&ev->text, e->text) < 0) ||
	    (e->reference && wf_adapter_add_reference(ev, e->reference) < 0) ||
	    (e->has_point && wf_adapter_set_point(ev, e->lat, e->lon) < 0) ||
	    (e->has_measurement &&
	     wf_adapter_set_measurement(ev, e->value, e->threshold, e->unit, e->criterion) < 0)) {
		protobuf_c_message_free_unpacked(&ev->base, NULL);
		return -ENOMEM;
	}
	r = wf_adapter_sink_emit(sink, ev);
	if (r == -ENOSPC)
		wf_adapter_reason(sink, "more than %u events from one file",
				  WF_ADAPTER_MAX_EVENTS_PER_FILE);
	return r;
}

static const char *const level_names[] = { "none", "red", "orange", "yellow", "blue" };
static const char *const level_roman[] = { "0", "I", "II", "III", "IV" };

int wf_feed_level_parse(const char *s, Wf__V1__Level *ret)
{
	for (int i = 0; i < 5; i++)
		if (strcmp(s, level_names[i]) == 0 || strcmp(s, level_roman[i]) == 0) {
			*ret = (Wf__V1__Level)i;
			return 0;
		}
	return -EINVAL;
}

const char *wf_feed_level_name(Wf__V1__Level level)
{
	return (level >= 0 && level <= 4) ? level_names[level] : "invalid";
}

/* --- INI --- */

struct ini_ctx {
	const char *prefix;
	wf_feed_ini_handler handler;
	void *ud;
	int r;
	char msg[256];
};

static int ini_cb(void *user, const char *section, const char *name, const char *value)
{
	struct ini_ctx *c = user;
	size_t n = strlen(c->prefix);
	int r;

	if (!name)
		return 1;
	if (strncmp(section, c->prefix, n) != 0 || (section[n] != '\0' && section[n] != '.'))
		return 1;
	if (c->r < 0)
		return 1; /* only the first error is reported */
	r = c->handler(c->ud, section, name, value ? value : "", c->msg, sizeof c->msg);
	if (r < 0) {
		c->r = r;
		return 0;
	}
	return 1;
}

static int ini_finish(int k, struct ini_ctx *c, const char *name, char *err, size_t err_size)
{
	if (k == 0 && c->r == 0)
		return 0;
	if (k == -1) {
		snprintf(err, err_size, "%s: %s", name, strerror(errno ? errno : ENOENT));
		return -ENOENT;
	}
	if (k == -2) {
		snprintf(err, err_size, "%s: out of memory", name);
		return -ENOMEM;
	}
	if (c->r < 0)
		snprintf(err, err_size, "%s:%d: %s", name, k, c->msg);
	else
		snprintf(err, err_size, "%s:%d: syntax error (expected [section] or name = value)",
			 name, k);
	return c->r < 0 ? c->r : -EINVAL;
}

int wf_feed_ini_parse(const char *path, const char *prefix, wf_feed_ini_handler handler, void *ud,
		      char *err, size_t err_size)
{
	struct ini_ctx c = { .prefix = prefix, .handler = handler, .ud = ud };
	struct stat st;
	int k;

	if (!path)
		return 0;
	if (stat(path, &st) < 0) {
		snprintf(err, err_size, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, err_size, "%s: not a regular file", path);
		return -EINVAL;
	}
	if (st.st_size > WF_CONFIG_FILE_MAX) {
		snprintf(err, err_size, "%s: file too large (%lld bytes, limit %d)", path,
			 (long long)st.st_size, WF_CONFIG_FILE_MAX);
		return -EFBIG;
	}
	errno = 0;
	k = ini_parse(path, ini_cb, &c);
	return ini_finish(k, &c, path, err, err_size);
}

int wf_feed_ini_parse_string(const char *name, const char *text, const char *prefix,
			     wf_feed_ini_handler handler, void *ud, char *err, size_t err_size)
{
	struct ini_ctx c = { .prefix = prefix, .handler = handler, .ud = ud };

	return ini_finish(ini_parse_string(text, ini_cb, &c), &c, name, err, err_size);
}

int wf_feed_conf_double(const char *name, const char *value, double min, double max, double *ret,
			char *msg, size_t msg_size)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(value, &end);
	if (end == value || *end != '\0' || !isfinite(v) || errno == ERANGE) {
		snprintf(msg, msg_size, "%s: '%.40s' is not a finite number", name, value);
		return -EINVAL;
	}
	if (v < min || v > max) {
		snprintf(msg, msg_size, "%s: %g outside %g..%g", name, v, min, max);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

int wf_feed_conf_duration(const char *name, const char *value, int64_t *ret_ms, char *msg,
			  size_t msg_size)
{
	int64_t ms;

	if (wf_config_parse_duration(value, &ms) < 0 || ms <= 0) {
		snprintf(msg, msg_size, "%s: '%.40s' is not a duration such as 6h or 30m", name,
			 value);
		return -EINVAL;
	}
	*ret_ms = ms;
	return 0;
}
