/* rules: the fusion rule file (docs/fusion.md, "Rule language").
 *
 * An INI-like, line-oriented format parsed by a small table-free parser
 * (repeated [rule ID] sections and repeated "when" keys do not fit the
 * fixed-key table of wf/config.h). Every error is "name:line: message". */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fusion-internal.h"
#include "wf/config.h"
#include "wf/region.h"
#include "wf/topic.h"

#define RULES_FILE_MAX (1024 * 1024)
#define RULES_LINE_MAX 1024
#define RULES_MAX 128

struct parser {
	const char *name;
	unsigned line;
	char *err;
	size_t errlen;
	struct wf_fusion_rules *r;
	enum { SEC_NONE, SEC_FUSION, SEC_LEVELS, SEC_RULE } sec;
	struct fusion_rule *cur;
	uint32_t seen; /* single-valued keys seen in the current section */
	bool kind_set;
};

static int perr(struct parser *p, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int perr(struct parser *p, unsigned line, const char *fmt, ...)
{
	if (p->errlen == 0)
		return -EINVAL;
	int n = snprintf(p->err, p->errlen, "%s:%u: ", p->name, line);
	if (n < 0 || (size_t)n >= p->errlen)
		return -EINVAL;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

static bool id_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > FUSION_ID_MAX)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("._:-", *s))
			return false;
	return true;
}

static int parse_level(const char *s)
{
	int l = wf_level_from_string(s);
	if (l < 1 || l > 4)
		return -EINVAL;
	return fusion_strength(l);
}

/* term: [agency:]hazard[>=level]{,attr} */
static int parse_term(struct parser *p, char *s, struct fusion_term *t)
{
	memset(t, 0, sizeof *t);
	char *attrs = strchr(s, ',');
	if (attrs)
		*attrs++ = '\0';
	s = trim(s);
	char *ge = strstr(s, ">=");
	if (ge) {
		*ge = '\0';
		int st = parse_level(trim(ge + 2));
		if (st < 0)
			return perr(p, p->line, "bad level '%s' (I, II, III, IV or a colour)",
				    trim(ge + 2));
		t->min_strength = st;
	}
	s = trim(s);
	char *colon = strchr(s, ':');
	if (colon) {
		*colon = '\0';
		int a = wf_agency_from_string(trim(s));
		if (a <= 0)
			return perr(p, p->line, "unknown agency '%s' (met, water, geo, fire, police)",
				    trim(s));
		t->agency = a;
		s = colon + 1;
	}
	s = trim(s);
	int h = wf_hazard_from_string(s);
	if (h <= 0 || h >= FUSION_HAZARD_MAX)
		return perr(p, p->line, "unknown hazard '%s'", s);
	t->hazard = h;
	while (attrs) {
		char *next = strchr(attrs, ',');
		if (next)
			*next++ = '\0';
		char *a = trim(attrs);
		if (strncmp(a, "criterion=", 10) == 0) {
			const char *c = trim(a + 10);
			if (!*c || strlen(c) >= sizeof t->criterion)
				return perr(p, p->line, "bad criterion '%s'", c);
			snprintf(t->criterion, sizeof t->criterion, "%s", c);
		} else if (strncmp(a, "value>=", 7) == 0) {
			char *end = NULL;
			double v = strtod(a + 7, &end);
			if (end == a + 7 || *trim(end) || !isfinite(v))
				return perr(p, p->line, "bad number in '%s'", a);
			t->has_value_min = true;
			t->value_min = v;
		} else if (strcmp(a, "over") == 0) {
			t->over = true;
		} else {
			return perr(p, p->line,
				    "unknown term attribute '%s' (criterion=X, value>=N, over)", a);
		}
		attrs = next;
	}
	return 0;
}

/* alt: term | term | ... */
static int parse_alt(struct parser *p, char *v, struct fusion_alt *alt)
{
	alt->n = 0;
	alt->hazards = 0;
	char *save = NULL;
	for (char *tok = strtok_r(v, "|", &save); tok; tok = strtok_r(NULL, "|", &save)) {
		if (alt->n >= FUSION_TERMS_MAX)
			return perr(p, p->line, "more than %d alternatives", FUSION_TERMS_MAX);
		int r = parse_term(p, tok, &alt->terms[alt->n]);
		if (r < 0)
			return r;
		alt->hazards |= UINT64_C(1) << alt->terms[alt->n].hazard;
		alt->n++;
	}
	if (alt->n == 0)
		return perr(p, p->line, "empty pattern");
	return 0;
}

static int parse_hazard_set(struct parser *p, char *v, uint64_t *ret)
{
	uint64_t set = 0;
	char *save = NULL;
	for (char *tok = strtok_r(v, " ,\t", &save); tok; tok = strtok_r(NULL, " ,\t", &save)) {
		if (strcmp(tok, "*") == 0) {
			set = ~UINT64_C(0) & ~UINT64_C(1);
			continue;
		}
		int h = wf_hazard_from_string(tok);
		if (h <= 0 || h >= FUSION_HAZARD_MAX)
			return perr(p, p->line, "unknown hazard '%s'", tok);
		set |= UINT64_C(1) << h;
	}
	if (!set)
		return perr(p, p->line, "empty hazard list");
	*ret = set;
	return 0;
}

static int parse_duration(struct parser *p, const char *v, int64_t *ret)
{
	if (wf_config_parse_duration(v, ret) < 0)
		return perr(p, p->line, "bad duration '%s' (e.g. 30m, 6h, 1h30m)", v);
	return 0;
}

static int parse_uint(struct parser *p, const char *v, unsigned lo, unsigned hi, unsigned *ret)
{
	char *end = NULL;
	errno = 0;
	unsigned long n = strtoul(v, &end, 10);
	if (!*v || *end || errno || n < lo || n > hi || !isdigit((unsigned char)*v))
		return perr(p, p->line, "bad number '%s' (%u..%u)", v, lo, hi);
	*ret = (unsigned)n;
	return 0;
}

/* Marks single-valued key BIT seen; error on a repeat. */
static int once(struct parser *p, unsigned bit, const char *key)
{
	if (p->seen & (1u << bit))
		return perr(p, p->line, "duplicate key '%s'", key);
	p->seen |= 1u << bit;
	return 0;
}

enum { K_KIND, K_HAZARDS, K_MIN_LEVEL, K_OUTPUT, K_WITHIN, K_LEVEL, K_CERTAINTY, K_AGENCIES,
       K_RAISE, K_MIN, K_IN, K_INSTRUCTION, K_COUNT, K_AREA, K_DWELL, K_RETAIN, K_RENEW };

static int rule_key(struct parser *p, const char *k, char *v)
{
	struct fusion_rule *r = p->cur;
	int rc;
	if (strcmp(k, "kind") == 0) {
		if ((rc = once(p, K_KIND, k)) < 0)
			return rc;
		static const char *const kinds[] = { "direct", "corroborate", "chain", "count" };
		for (int i = 0; i < FUSION_RULE_KIND_MAX; i++)
			if (strcmp(v, kinds[i]) == 0) {
				r->kind = (enum fusion_rule_kind)i;
				p->kind_set = true;
				return 0;
			}
		return perr(p, p->line, "unknown kind '%s' (direct, corroborate, chain, count)", v);
	}
	if (!p->kind_set)
		return perr(p, p->line, "'kind' must come first in a rule");
	bool dir = r->kind == FUSION_RULE_DIRECT, cor = r->kind == FUSION_RULE_CORROBORATE;
	bool chn = r->kind == FUSION_RULE_CHAIN, cnt = r->kind == FUSION_RULE_COUNT;
	if (strcmp(k, "hazards") == 0 && (dir || cor)) {
		if ((rc = once(p, K_HAZARDS, k)) < 0)
			return rc;
		return parse_hazard_set(p, v, &r->hazards);
	}
	if (strcmp(k, "min_level") == 0 && (dir || chn || cnt)) {
		if ((rc = once(p, K_MIN_LEVEL, k)) < 0)
			return rc;
		int st = parse_level(v);
		if (st < 0)
			return perr(p, p->line, "bad level '%s'", v);
		r->min_strength = st;
		return 0;
	}
	if (strcmp(k, "output") == 0 && (chn || cnt)) {
		if ((rc = once(p, K_OUTPUT, k)) < 0)
			return rc;
		int h = wf_hazard_from_string(v);
		if (h <= 0 || h >= FUSION_HAZARD_MAX || h == WF__V1__HAZARD__HAZARD_MONITORING_GAP)
			return perr(p, p->line, "bad output hazard '%s'", v);
		r->output = h;
		return 0;
	}
	if (strcmp(k, "when") == 0 && chn) {
		if (r->n_when >= FUSION_WHEN_MAX)
			return perr(p, p->line, "more than %d 'when' lines", FUSION_WHEN_MAX);
		rc = parse_alt(p, v, &r->when[r->n_when]);
		if (rc == 0)
			r->n_when++;
		return rc;
	}
	if (strcmp(k, "count") == 0 && cnt) {
		if ((rc = once(p, K_COUNT, k)) < 0)
			return rc;
		rc = parse_alt(p, v, &r->when[0]);
		if (rc == 0)
			r->n_when = 1;
		return rc;
	}
	if (strcmp(k, "within") == 0 && (chn || cnt)) {
		if ((rc = once(p, K_WITHIN, k)) < 0)
			return rc;
		rc = parse_duration(p, v, &r->within_ms);
		if (rc == 0 && r->within_ms <= 0)
			return perr(p, p->line, "'within' must be positive");
		return rc;
	}
	if (strcmp(k, "level") == 0 && (chn || cnt)) {
		if ((rc = once(p, K_LEVEL, k)) < 0)
			return rc;
		if (strcmp(v, "max") == 0 && chn) {
			r->level_mode = FUSION_LEVEL_MAX;
			return 0;
		}
		if (strncmp(v, "above", 5) == 0 && chn) {
			unsigned n = 1;
			const char *rest = trim(v + 5);
			if (*rest && parse_uint(p, rest, 1, 3, &n) < 0)
				return -EINVAL;
			r->level_mode = FUSION_LEVEL_ABOVE;
			r->level_strength = (int)n;
			return 0;
		}
		int st = parse_level(v);
		if (st < 0)
			return perr(p, p->line, "bad level '%s' (I..IV%s)", v,
				    chn ? ", max, above N" : "");
		r->level_mode = FUSION_LEVEL_FIXED;
		r->level_strength = st;
		return 0;
	}
	if (strcmp(k, "certainty") == 0 && (chn || cnt || cor)) {
		if ((rc = once(p, K_CERTAINTY, k)) < 0)
			return rc;
		int c = wf_certainty_from_string(v);
		if (c <= 0)
			return perr(p, p->line, "bad certainty '%s'", v);
		r->certainty = c;
		return 0;
	}
	if (strcmp(k, "agencies") == 0 && cor) {
		if ((rc = once(p, K_AGENCIES, k)) < 0)
			return rc;
		return parse_uint(p, v, 2, 5, &r->min_agencies);
	}
	if (strcmp(k, "raise") == 0 && cor) {
		if ((rc = once(p, K_RAISE, k)) < 0)
			return rc;
		unsigned n;
		if (parse_uint(p, v, 0, 3, &n) < 0)
			return -EINVAL;
		r->raise = (int)n;
		return 0;
	}
	if (strcmp(k, "min") == 0 && cnt) {
		if ((rc = once(p, K_MIN, k)) < 0)
			return rc;
		return parse_uint(p, v, 2, 10000, &r->min_count);
	}
	if (strcmp(k, "in") == 0 && cnt) {
		if ((rc = once(p, K_IN, k)) < 0)
			return rc;
		int l = wf_region_level_from_string(v);
		if (l < WF_REGION_PREFECTURE || l > WF_REGION_VILLAGE)
			return perr(p, p->line, "bad region level '%s' (prefecture..village)", v);
		r->count_level = l;
		return 0;
	}
	if (strcmp(k, "instruction") == 0) {
		if ((rc = once(p, K_INSTRUCTION, k)) < 0)
			return rc;
		if (strlen(v) >= sizeof r->instruction)
			return perr(p, p->line, "instruction longer than %d bytes", FUSION_TEXT_MAX - 1);
		snprintf(r->instruction, sizeof r->instruction, "%s", v);
		return 0;
	}
	return perr(p, p->line, "unknown key '%s' for a %s rule", k,
		    dir ? "direct" : cor ? "corroborate" : chn ? "chain" : "count");
}

static int fusion_key(struct parser *p, const char *k, const char *v)
{
	struct wf_fusion_rules *r = p->r;
	int rc;
	if (strcmp(k, "area") == 0) {
		if ((rc = once(p, K_AREA, k)) < 0)
			return rc;
		int l = wf_region_level_from_string(v);
		if (l < WF_REGION_PREFECTURE || l > WF_REGION_TOWNSHIP)
			return perr(p, p->line, "bad area '%s' (prefecture, county, township)", v);
		r->area_level = l;
		return 0;
	}
	int64_t *dst = strcmp(k, "dwell") == 0 ? &r->dwell_ms :
		       strcmp(k, "retain") == 0 ? &r->retain_ms :
		       strcmp(k, "renew") == 0 ? &r->renew_ms : NULL;
	if (!dst)
		return perr(p, p->line, "unknown key '%s' in [fusion] (area, dwell, retain, renew)", k);
	if ((rc = once(p, dst == &r->dwell_ms ? K_DWELL : dst == &r->retain_ms ? K_RETAIN : K_RENEW,
		       k)) < 0)
		return rc;
	rc = parse_duration(p, v, dst);
	if (rc == 0 && dst == &r->retain_ms && *dst < 8 * 86400000LL)
		return perr(p, p->line, "retain must be at least 8d (the codec accepts events "
				     "up to 7 days old, which must still be recognised as repeats)");
	return rc;
}

static int levels_key(struct parser *p, const char *k, char *v)
{
	int h = wf_hazard_from_string(k);
	if (h <= 0 || h >= FUSION_HAZARD_MAX)
		return perr(p, p->line, "unknown hazard '%s'", k);
	uint8_t set = 0;
	char *save = NULL;
	for (char *tok = strtok_r(v, " ,\t", &save); tok; tok = strtok_r(NULL, " ,\t", &save)) {
		int st = parse_level(tok);
		if (st < 0)
			return perr(p, p->line, "bad level '%s'", tok);
		set |= (uint8_t)(1u << st);
	}
	if (!set)
		return perr(p, p->line, "no levels for '%s'", k);
	p->r->allowed[h] = set;
	return 0;
}

/* Checks the finished rule section. */
static int finish_rule(struct parser *p)
{
	struct fusion_rule *r = p->cur;
	if (!r)
		return 0;
	unsigned l = r->line;
	if (!p->kind_set)
		return perr(p, l, "rule '%s' has no 'kind'", r->id);
	switch (r->kind) {
	case FUSION_RULE_DIRECT:
		if (!r->hazards)
			return perr(p, l, "direct rule '%s' needs 'hazards'", r->id);
		break;
	case FUSION_RULE_CORROBORATE:
		if (!r->hazards)
			return perr(p, l, "corroborate rule '%s' needs 'hazards'", r->id);
		if (!r->min_agencies)
			r->min_agencies = 2;
		if (!(p->seen & (1u << K_RAISE)))
			r->raise = 1;
		if (!r->certainty)
			r->certainty = WF__V1__CERTAINTY__CERTAINTY_LIKELY;
		break;
	case FUSION_RULE_CHAIN:
		if (!r->output || r->n_when < 2)
			return perr(p, l, "chain rule '%s' needs 'output' and at least two 'when'",
				    r->id);
		if (!r->within_ms)
			return perr(p, l, "chain rule '%s' needs 'within'", r->id);
		if (!(p->seen & (1u << K_LEVEL)))
			return perr(p, l, "chain rule '%s' needs 'level'", r->id);
		if (!r->certainty)
			r->certainty = WF__V1__CERTAINTY__CERTAINTY_LIKELY;
		break;
	case FUSION_RULE_COUNT:
		if (!r->output || r->n_when != 1 || !r->min_count || !r->within_ms)
			return perr(p, l, "count rule '%s' needs 'output', 'count', 'min' and 'within'",
				    r->id);
		if (!(p->seen & (1u << K_LEVEL)))
			return perr(p, l, "count rule '%s' needs 'level'", r->id);
		if (!r->count_level)
			r->count_level = WF_REGION_TOWNSHIP;
		if (!r->certainty)
			r->certainty = WF__V1__CERTAINTY__CERTAINTY_LIKELY;
		break;
	default:
		break;
	}
	p->cur = NULL;
	return 0;
}

static int check_area_levels(struct parser *p)
{
	for (size_t i = 0; i < p->r->n_rules; i++) {
		struct fusion_rule *r = &p->r->rules[i];
		if (r->kind == FUSION_RULE_COUNT && r->count_level < p->r->area_level)
			return perr(p, r->line, "count rule '%s': 'in' is coarser than [fusion] area",
				    r->id);
	}
	return 0;
}

static int parse_line(struct parser *p, char *s)
{
	s = trim(s);
	if (!*s || *s == '#' || *s == ';')
		return 0;
	if (*s == '[') {
		char *end = strchr(s, ']');
		if (!end || *trim(end + 1))
			return perr(p, p->line, "bad section header");
		*end = '\0';
		int r = finish_rule(p);
		if (r < 0)
			return r;
		char *name = trim(s + 1);
		p->seen = 0;
		p->kind_set = false;
		if (strcmp(name, "fusion") == 0) {
			p->sec = SEC_FUSION;
		} else if (strcmp(name, "levels") == 0) {
			p->sec = SEC_LEVELS;
		} else if (strncmp(name, "rule", 4) == 0 && (name[4] == ' ' || name[4] == '\t')) {
			char *id = trim(name + 5);
			if (!id_valid(id))
				return perr(p, p->line, "bad rule id '%s' ([A-Za-z0-9._:-]{1,64})", id);
			for (size_t i = 0; i < p->r->n_rules; i++)
				if (strcmp(p->r->rules[i].id, id) == 0)
					return perr(p, p->line, "duplicate rule id '%s' (first at line %u)",
						    id, p->r->rules[i].line);
			if (strcmp(id, "source-liveness") == 0)
				return perr(p, p->line, "rule id 'source-liveness' is reserved");
			if (p->r->n_rules >= RULES_MAX)
				return perr(p, p->line, "more than %d rules", RULES_MAX);
			struct fusion_rule *nr = &p->r->rules[p->r->n_rules++];
			memset(nr, 0, sizeof *nr);
			snprintf(nr->id, sizeof nr->id, "%s", id);
			nr->line = p->line;
			p->cur = nr;
			p->sec = SEC_RULE;
		} else {
			return perr(p, p->line, "unknown section [%s] (fusion, levels, rule ID)", name);
		}
		return 0;
	}
	char *eq = strchr(s, '=');
	if (!eq)
		return perr(p, p->line, "expected 'key = value'");
	*eq = '\0';
	char *k = trim(s), *v = trim(eq + 1);
	/* inline comment: " #" */
	char *c = strstr(v, " #");
	if (c) {
		*c = '\0';
		v = trim(v);
	}
	if (!*k)
		return perr(p, p->line, "empty key");
	if (!*v)
		return perr(p, p->line, "empty value for '%s'", k);
	switch (p->sec) {
	case SEC_FUSION:
		return fusion_key(p, k, v);
	case SEC_LEVELS:
		return levels_key(p, k, v);
	case SEC_RULE:
		return rule_key(p, k, v);
	default:
		return perr(p, p->line, "key '%s' outside a section", k);
	}
}

int wf_fusion_rules_parse(const char *name, const char *text, struct wf_fusion_rules **ret,
			  char *err, size_t errlen)
{
	if (!name || !text || !ret)
		return -EINVAL;
	if (errlen)
		err[0] = '\0';
	struct wf_fusion_rules *r = calloc(1, sizeof *r);
	if (!r)
		return -ENOMEM;
	r->rules = calloc(RULES_MAX, sizeof *r->rules);
	if (!r->rules) {
		free(r);
		return -ENOMEM;
	}
	r->area_level = WF_REGION_COUNTY;
	r->dwell_ms = 30 * 60000LL;
	r->retain_ms = 8 * 86400000LL;
	r->renew_ms = 30 * 60000LL;
	memset(r->allowed, 0x1e, sizeof r->allowed); /* strengths 1..4 */
	struct parser p = { .name = name, .err = err, .errlen = errlen, .r = r };
	int rc = 0;
	const char *s = text;
	char line[RULES_LINE_MAX + 2];
	while (*s) {
		p.line++;
		const char *nl = strchr(s, '\n');
		size_t n = nl ? (size_t)(nl - s) : strlen(s);
		if (n > RULES_LINE_MAX) {
			rc = perr(&p, p.line, "line longer than %d bytes", RULES_LINE_MAX);
			break;
		}
		memcpy(line, s, n);
		line[n] = '\0';
		if (memchr(line, '\0', n) != NULL && strlen(line) != n) {
			rc = perr(&p, p.line, "NUL byte");
			break;
		}
		if ((rc = parse_line(&p, line)) < 0)
			break;
		s = nl ? nl + 1 : s + n;
	}
	if (rc == 0)
		rc = finish_rule(&p);
	if (rc == 0)
		rc = check_area_levels(&p);
	if (rc < 0) {
		wf_fusion_rules_free(r);
		return rc;
	}
	for (int h = 0; h < FUSION_HAZARD_MAX; h++) {
		r->direct_for[h] = -1;
		r->corroborate_for[h] = -1;
	}
	for (size_t i = r->n_rules; i-- > 0;) {
		for (int h = 1; h < FUSION_HAZARD_MAX; h++) {
			if (!(r->rules[i].hazards & (UINT64_C(1) << h)))
				continue;
			if (r->rules[i].kind == FUSION_RULE_DIRECT)
				r->direct_for[h] = (int)i;
			else if (r->rules[i].kind == FUSION_RULE_CORROBORATE)
				r->corroborate_for[h] = (int)i;
		}
	}
	for (int h = 0; h < FUSION_HAZARD_MAX; h++)
		r->affects[h] = UINT64_C(1) << h;
	for (size_t i = 0; i < r->n_rules; i++) {
		const struct fusion_rule *rl = &r->rules[i];
		if (rl->kind != FUSION_RULE_CHAIN && rl->kind != FUSION_RULE_COUNT)
			continue;
		for (unsigned w = 0; w < rl->n_when; w++)
			for (int h = 1; h < FUSION_HAZARD_MAX; h++)
				if (rl->when[w].hazards & (UINT64_C(1) << h))
					r->affects[h] |= UINT64_C(1) << rl->output;
	}
	*ret = r;
	return 0;
}

int wf_fusion_rules_load(const char *path, struct wf_fusion_rules **ret, char *err, size_t errlen)
{
	if (!path || !ret)
		return -EINVAL;
	FILE *f = fopen(path, "rb");
	if (!f) {
		int e = errno;
		if (errlen)
			snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	struct stat st;
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
		fclose(f);
		if (errlen)
			snprintf(err, errlen, "%s: not a regular file", path);
		return -EINVAL;
	}
	if (st.st_size > RULES_FILE_MAX) {
		fclose(f);
		if (errlen)
			snprintf(err, errlen, "%s: file too large (%lld bytes, limit %d)", path,
				 (long long)st.st_size, RULES_FILE_MAX);
		return -EFBIG;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	size_t n = fread(buf, 1, (size_t)st.st_size, f);
	int rerr = ferror(f);
	fclose(f);
	if (rerr) {
		free(buf);
		if (errlen)
			snprintf(err, errlen, "%s: read error", path);
		return -EIO;
	}
	buf[n] = '\0';
	if (strlen(buf) != n) {
		free(buf);
		if (errlen)
			snprintf(err, errlen, "%s: NUL byte in file", path);
		return -EINVAL;
	}
	int r = wf_fusion_rules_parse(path, buf, ret, err, errlen);
	free(buf);
	return r;
}

struct wf_fusion_rules *wf_fusion_rules_free(struct wf_fusion_rules *r)
{
	if (r) {
		free(r->rules);
		free(r);
	}
	return NULL;
}

size_t wf_fusion_rules_count(const struct wf_fusion_rules *r)
{
	return r ? r->n_rules : 0;
}

bool fusion_term_match(const struct fusion_term *t, int agency, int hazard, int strength,
		       const char *criterion, double value, double threshold, bool has_meas)
{
	if (t->hazard != hazard)
		return false;
	if (t->agency && t->agency != agency)
		return false;
	if (strength < t->min_strength)
		return false;
	if (t->criterion[0] && strcmp(t->criterion, criterion) != 0)
		return false;
	if (t->has_value_min && (!has_meas || value < t->value_min))
		return false;
	if (t->over && (!has_meas || value < threshold))
		return false;
	return true;
}
