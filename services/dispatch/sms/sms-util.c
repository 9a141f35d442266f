/* sms-util: UCS-2 sizing, subscriber file, token bucket, backoff. See sms-util.h. */
#include "sms-util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wf/region.h"

/* ---------- UTF-8 -> UTF-16BE ---------- */

static void put16(unsigned char *out, size_t at, unsigned v)
{
	out[2 * at] = (unsigned char)(v >> 8);
	out[2 * at + 1] = (unsigned char)(v & 0xff);
}

long wf_sms_utf16_units(const char *text, size_t len, unsigned char *out)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t i = 0, units = 0;
	if (!text && len)
		return -EINVAL;
	while (i < len) {
		unsigned c = p[i], cp, need;
		if (c == 0)
			return -EINVAL;
		if (c < 0x80) {
			cp = c;
			need = 0;
		} else if (c >= 0xc2 && c <= 0xdf) {
			cp = c & 0x1f;
			need = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			cp = c & 0x0f;
			need = 2;
		} else if (c >= 0xf0 && c <= 0xf4) {
			cp = c & 0x07;
			need = 3;
		} else {
			return -EINVAL;
		}
		if (need && i + need >= len)
			return -EINVAL; /* truncated sequence */
		for (unsigned k = 1; k <= need; k++) {
			unsigned cc = p[i + k];
			if ((cc & 0xc0) != 0x80)
				return -EINVAL;
			cp = (cp << 6) | (cc & 0x3f);
		}
		if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return -EINVAL;
		i += need + 1;
		if (cp >= 0x10000) {
			unsigned v = cp - 0x10000;
			if (out) {
				put16(out, units, 0xd800 | (v >> 10));
				put16(out, units + 1, 0xdc00 | (v & 0x3ff));
			}
			units += 2;
		} else {
			if (out)
				put16(out, units, cp);
			units += 1;
		}
	}
	return (long)units;
}

unsigned wf_sms_parts_for_units(size_t units)
{
	if (units <= WF_SMS_UCS2_SINGLE)
		return 1;
	return (unsigned)((units + WF_SMS_UCS2_PART - 1) / WF_SMS_UCS2_PART);
}

static bool is_high_surrogate(const unsigned char *u16, size_t at)
{
	unsigned v = ((unsigned)u16[2 * at] << 8) | u16[2 * at + 1];
	return v >= 0xd800 && v <= 0xdbff;
}

int wf_sms_segment(const unsigned char *u16, size_t units, size_t *ret_starts, unsigned max)
{
	if (max == 0)
		return -E2BIG;
	ret_starts[0] = 0;
	if (units <= WF_SMS_UCS2_SINGLE)
		return 1;
	unsigned n = 0;
	size_t at = 0;
	while (at < units) {
		if (n == max)
			return -E2BIG;
		ret_starts[n++] = at;
		size_t len = units - at < WF_SMS_UCS2_PART ? units - at : WF_SMS_UCS2_PART;
		/* keep a surrogate pair together */
		if (at + len < units && is_high_surrogate(u16, at + len - 1))
			len--;
		at += len;
	}
	return (int)n;
}

int wf_sms_prepare_text(const char *text, size_t len, char **ret_text, size_t *ret_units)
{
	long units = wf_sms_utf16_units(text, len, NULL);
	if (units < 0)
		return (int)units;
	/* at most one extra byte per 4-byte character */
	char *out = malloc(len + len / 4 + 1);
	if (!out)
		return -ENOMEM;
	if ((size_t)units <= WF_SMS_UCS2_SINGLE) {
		memcpy(out, text, len);
		out[len] = '\0';
		*ret_text = out;
		*ret_units = (size_t)units;
		return 0;
	}
	const unsigned char *p = (const unsigned char *)text;
	size_t i = 0, o = 0, pos = 0;
	while (i < len) {
		unsigned c = p[i];
		size_t n = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4; /* validated above */
		if (n == 4) {
			if (pos % WF_SMS_UCS2_PART == WF_SMS_UCS2_PART - 1) {
				out[o++] = ' ';
				pos++;
			}
			pos += 2;
		} else {
			pos++;
		}
		memcpy(out + o, text + i, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
	*ret_text = out;
	*ret_units = pos;
	return 0;
}

/* ---------- subscribers ---------- */

struct wf_sms_subs {
	struct wf_sms_subscriber *v;
	size_t n, cap;
};

static int sub_cmp(const void *a, const void *b)
{
	const struct wf_sms_subscriber *x = a, *y = b;
	int c = strcmp(x->region, y->region);
	return c ? c : strcmp(x->msisdn, y->msisdn);
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

static int fail(char *err, size_t errlen, const char *path, unsigned line, int r, const char *msg)
{
	if (err && errlen) {
		if (line)
			snprintf(err, errlen, "%s:%u: %s", path, line, msg);
		else
			snprintf(err, errlen, "%s: %s", path, msg);
	}
	return r;
}

static bool msisdn_ok(const char *m)
{
	size_t n = 0;
	if (*m == '+')
		m++;
	for (; *m; m++, n++)
		if (*m < '0' || *m > '9')
			return false;
	return n >= 5 && n <= WF_SMS_MSISDN_MAX;
}

int wf_sms_subs_load(const char *path, struct wf_sms_subs **ret, char *err, size_t errlen)
{
	char line[WF_SMS_LINE_MAX + 2];
	unsigned lineno = 0;
	int r = 0;
	if (!path || !ret)
		return -EINVAL;
	FILE *f = fopen(path, "re");
	if (!f) {
		r = -errno;
		char m[96];
		snprintf(m, sizeof(m), "cannot open: %s", strerror(-r));
		return fail(err, errlen, path, 0, r, m);
	}
	struct wf_sms_subs *s = calloc(1, sizeof(*s));
	if (!s) {
		fclose(f);
		return -ENOMEM;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		size_t len = strlen(line);
		if (len && line[len - 1] == '\n')
			line[--len] = '\0';
		else if (!feof(f)) {
			r = fail(err, errlen, path, lineno, -E2BIG, "line too long (max 256 bytes)");
			goto out;
		}
		char *l = trim(line);
		if (lineno == 1 && l[0] == '\xef' && l[1] == '\xbb' && l[2] == '\xbf')
			l = trim(l + 3); /* UTF-8 BOM */
		if (!*l || *l == '#')
			continue;
		char *comma = strchr(l, ',');
		if (!comma) {
			r = fail(err, errlen, path, lineno, -EINVAL, "expected \"msisdn,region\"");
			goto out;
		}
		*comma = '\0';
		char *m = trim(l), *reg = trim(comma + 1);
		if (strchr(reg, ',')) {
			r = fail(err, errlen, path, lineno, -EINVAL, "too many fields (expected \"msisdn,region\")");
			goto out;
		}
		if (s->n == 0 && strcmp(m, "msisdn") == 0 && strcmp(reg, "region") == 0)
			continue; /* header */
		if (!msisdn_ok(m)) {
			char msg[96];
			snprintf(msg, sizeof(msg), "bad msisdn \"%.24s\" (5..20 digits, optional leading +)", m);
			r = fail(err, errlen, path, lineno, -EINVAL, msg);
			goto out;
		}
		struct wf_sms_subscriber sub;
		if (wf_region_normalize(reg, sub.region) < 0) {
			char msg[96];
			snprintf(msg, sizeof(msg), "bad region \"%.24s\" (6 or 12 digits)", reg);
			r = fail(err, errlen, path, lineno, -EINVAL, msg);
			goto out;
		}
		snprintf(sub.msisdn, sizeof(sub.msisdn), "%s", m);
		sub.line = lineno;
		if (s->n == WF_SMS_SUBS_MAX) {
			r = fail(err, errlen, path, lineno, -EFBIG, "too many subscribers (max 10000000)");
			goto out;
		}
		if (s->n == s->cap) {
			size_t cap = s->cap ? s->cap * 2 : 1024;
			void *nv = realloc(s->v, cap * sizeof(*s->v));
			if (!nv) {
				r = -ENOMEM;
				goto out;
			}
			s->v = nv;
			s->cap = cap;
		}
		s->v[s->n++] = sub;
	}
	if (ferror(f)) {
		r = fail(err, errlen, path, lineno, -EIO, "read error");
		goto out;
	}
	if (s->n)
		qsort(s->v, s->n, sizeof(*s->v), sub_cmp);
	for (size_t i = 1; i < s->n; i++)
		if (sub_cmp(&s->v[i - 1], &s->v[i]) == 0) {
			const struct wf_sms_subscriber *a = &s->v[i - 1], *b = &s->v[i];
			unsigned first = a->line < b->line ? a->line : b->line;
			unsigned second = a->line < b->line ? b->line : a->line;
			char msg[128];
			snprintf(msg, sizeof(msg), "duplicate subscriber %s in region %s (first on line %u)",
				 b->msisdn, b->region, first);
			r = fail(err, errlen, path, second, -EEXIST, msg);
			goto out;
		}
out:
	fclose(f);
	if (r < 0) {
		wf_sms_subs_free(s);
		return r;
	}
	*ret = s;
	return 0;
}

struct wf_sms_subs *wf_sms_subs_free(struct wf_sms_subs *s)
{
	if (s) {
		free(s->v);
		free(s);
	}
	return NULL;
}

size_t wf_sms_subs_count(const struct wf_sms_subs *s)
{
	return s ? s->n : 0;
}

size_t wf_sms_subs_in_region(const struct wf_sms_subs *s, const char *region12,
			     const struct wf_sms_subscriber **ret_first)
{
	*ret_first = NULL;
	if (!s || !s->n || !region12)
		return 0;
	enum wf_region_level lv = wf_region_level_of_code(region12);
	if (lv == WF_REGION_LEVEL_INVALID)
		return 0;
	size_t plen = wf_region_prefix_len(lv);
	/* lower bound of the prefix */
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strncmp(s->v[mid].region, region12, plen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t first = lo;
	hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strncmp(s->v[mid].region, region12, plen) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == first)
		return 0;
	*ret_first = &s->v[first];
	return lo - first;
}

/* ---------- token bucket, backoff ---------- */

void wf_sms_bucket_init(struct wf_sms_bucket *b, double rate, double burst, int64_t now_ms)
{
	b->rate = rate;
	b->burst = burst > 0 ? burst : (rate > 1 ? rate : 1);
	b->tokens = b->burst;
	b->last_ms = now_ms;
}

static void refill(struct wf_sms_bucket *b, int64_t now_ms)
{
	if (now_ms > b->last_ms) {
		b->tokens += (double)(now_ms - b->last_ms) * b->rate / 1000.0;
		if (b->tokens > b->burst)
			b->tokens = b->burst;
		b->last_ms = now_ms;
	}
}

bool wf_sms_bucket_take(struct wf_sms_bucket *b, double n, int64_t now_ms)
{
	if (b->rate <= 0)
		return true;
	refill(b, now_ms);
	double need = n < b->burst ? n : b->burst;
	if (b->tokens + 1e-9 < need)
		return false;
	b->tokens -= n;
	return true;
}

int64_t wf_sms_bucket_wait_ms(struct wf_sms_bucket *b, double n, int64_t now_ms)
{
	if (b->rate <= 0)
		return 0;
	refill(b, now_ms);
	double need = n < b->burst ? n : b->burst;
	if (b->tokens + 1e-9 >= need)
		return 0;
	double ms = (need - b->tokens) * 1000.0 / b->rate;
	int64_t w = (int64_t)ms;
	return w < ms ? w + 1 : (w < 1 ? 1 : w);
}

int64_t wf_sms_backoff_ms(unsigned attempt, int64_t base_ms, int64_t max_ms)
{
	if (attempt == 0)
		return 0;
	int64_t d = base_ms;
	for (unsigned i = 1; i < attempt && d < max_ms; i++)
		d *= 2;
	return d < max_ms ? d : max_ms;
}
