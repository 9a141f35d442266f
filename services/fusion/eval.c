/* eval: grading of one area (direct, corroboration, chain, count and
 * liveness rules) and the warning lifecycle (alert, update, dwell-delayed
 * downgrade, continue, cancel), with the Warning versions it emits.
 *
 * The evaluation is a pure function of the area's valid inputs (and those
 * of its coarser ancestor areas), the incidents recorded for it, the rules
 * and the virtual time: the order in which inputs were stored never
 * matters (every choice is broken by the input key). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "fusion-internal.h"
#include "wf/region.h"
#include "wf/topic.h"

#define MAX_VALIDITY_MS (31LL * 86400000LL)
#define MAX_EVENT_IDS 256
#define MAX_RULE_IDS 64
#define MAX_REGIONS 1024
#define LIVENESS_RULE "source-liveness"

struct item_ev { uint8_t hazard; struct fusion_input *in; };
struct item_rg { uint8_t hazard; char code[13]; };
struct item_rl { uint8_t hazard; const char *id; };

struct hz {
	bool present;
	int strength;
	int certainty;
	int64_t expires;
};

#define MAX_CTX_AREAS (1 + WF_FUSION_MAX_UP) /* the area and its coarser ancestors */

struct fusion_scratch {
	/* context: the area itself first, then its ancestor areas with inputs */
	const struct fusion_area *ctx[MAX_CTX_AREAS];
	unsigned n_ctx;
	struct item_ev *ev, *ev2;
	size_t n_ev, cap_ev, cap_ev2;
	struct item_rg *rg;
	size_t n_rg, cap_rg;
	struct item_rl *rl;
	size_t n_rl, cap_rl;
	struct hz hz[FUSION_HAZARD_MAX];
	/* Two ways to gather the input events behind each hazard (the
	 * warning's event_ids). Eager: while grading (needed by the liveness
	 * rule, which draws on every hazard's events, and by full_regrade).
	 * Lazy (the rest): grading only sums up; the events of hazard h are
	 * gathered again by collect_events() when a version of h is made.
	 * ev_only: such a gathering pass, which must not grade again. */
	bool lazy, ev_only;
	uint64_t corroborated;  /* hazards whose corroboration rule fired */
	/* warning building */
	char *text;
	size_t cap_text;
	char **ptrs;
	size_t cap_ptrs;
};

void fusion_scratch_free(struct fusion_scratch *s)
{
	if (!s)
		return;
	free(s->ev);
	free(s->ev2);
	free(s->rg);
	free(s->rl);
	free(s->text);
	free(s->ptrs);
	free(s);
}

static int grow(void **p, size_t *cap, size_t need, size_t sz)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 16;
	while (c < need)
		c *= 2;
	void *np = realloc(*p, c * sz);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = c;
	return 0;
}

static int cert_rank(int c) { return c >= 1 && c <= 5 ? c : 9; }

/* Input key order: agency name, then event id. */
static int input_key_cmp(const struct fusion_input *a, const struct fusion_input *b)
{
	if (a->agency != b->agency) {
		int c = strcmp(wf_agency_to_string(a->agency), wf_agency_to_string(b->agency));
		if (c)
			return c;
	}
	return strcmp(a->id, b->id);
}

static int add_ev(struct fusion_scratch *s, int h, struct fusion_input *in)
{
	if (s->lazy && !s->ev_only)
		return 0;
	if (grow((void **)&s->ev, &s->cap_ev, s->n_ev + 1, sizeof *s->ev) < 0)
		return -ENOMEM;
	s->ev[s->n_ev++] = (struct item_ev){ (uint8_t)h, in };
	return 0;
}

static int add_rg(struct fusion_scratch *s, int h, const char *code)
{
	if (s->ev_only)
		return 0;
	if (grow((void **)&s->rg, &s->cap_rg, s->n_rg + 1, sizeof *s->rg) < 0)
		return -ENOMEM;
	s->rg[s->n_rg].hazard = (uint8_t)h;
	memcpy(s->rg[s->n_rg].code, code, 13);
	s->n_rg++;
	return 0;
}

static int add_rl(struct fusion_scratch *s, int h, const char *id)
{
	if (s->ev_only)
		return 0;
	for (size_t i = s->n_rl; i-- > 0;)
		if (s->rl[i].hazard == h && s->rl[i].id == id)
			return 0;
	if (grow((void **)&s->rl, &s->cap_rl, s->n_rl + 1, sizeof *s->rl) < 0)
		return -ENOMEM;
	s->rl[s->n_rl++] = (struct item_rl){ (uint8_t)h, id };
	return 0;
}

static void contribute(struct fusion_scratch *s, int h, int strength, int certainty,
		       int64_t expires)
{
	struct hz *z = &s->hz[h];
	if (s->ev_only)
		return;
	if (!z->present) {
		z->present = true;
		z->strength = strength;
		z->certainty = certainty;
		z->expires = expires;
		return;
	}
	if (strength > z->strength)
		z->strength = strength;
	if (cert_rank(certainty) < cert_rank(z->certainty))
		z->certainty = certainty;
	if (expires > z->expires)
		z->expires = expires;
}

static bool alt_match(const struct fusion_alt *alt, const struct fusion_input *in)
{
	for (unsigned i = 0; i < alt->n; i++)
		if (fusion_term_match(&alt->terms[i], in->agency, in->hazard, in->strength,
				      in->criterion, in->value, in->threshold, in->has_meas))
			return true;
	return false;
}

/* ---------------------------------------------------------------- rules */

static int eval_direct(struct wf_fusion *e, struct fusion_scratch *s, const struct fusion_area *a,
		       uint64_t hz)
{
	const struct wf_fusion_rules *R = e->rules;
	for (uint64_t m = hz & a->bk_mask; m; m &= m - 1) {
		int h = __builtin_ctzll(m);
		int ri = R->direct_for[h];
		if (ri < 0)
			continue;
		const struct fusion_rule *rule = &R->rules[ri];
		const struct fusion_bucket *b = fusion_bucket_of(a, h);
		const int min = rule->min_strength > 1 ? rule->min_strength : 1;
		const bool want_ev = !s->lazy || s->ev_only;
		int strength = 0, rank = 10, certainty = 0;
		int64_t expires = INT64_MIN;
		for (uint32_t i = 0; i < b->n; i++) {
			const struct fusion_slot *in = &b->v[i];
			if (in->strength < min)
				continue;
			if (in->strength > strength)
				strength = in->strength;
			if (cert_rank(in->certainty) < rank) {
				rank = cert_rank(in->certainty);
				certainty = in->certainty;
			}
			if (in->expires > expires)
				expires = in->expires;
			if (want_ev && add_ev(s, h, in->in) < 0)
				return -ENOMEM;
		}
		if (!strength)
			continue;
		/* one direct rule per hazard: its id once */
		contribute(s, h, strength, certainty, expires);
		if (add_rl(s, h, rule->id) < 0 || add_rg(s, h, a->code) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int eval_corroborate(struct wf_fusion *e, struct fusion_scratch *s,
			    const struct fusion_area *a, uint64_t hz)
{
	const struct wf_fusion_rules *R = e->rules;
	for (uint64_t m = hz & a->bk_mask; m; m &= m - 1) {
		int h = __builtin_ctzll(m);
		if (R->corroborate_for[h] < 0)
			continue;
		const struct fusion_rule *rule = &R->rules[R->corroborate_for[h]];
		const struct fusion_bucket *b = fusion_bucket_of(a, h);
		if (s->ev_only) {
			/* what the grading pass decided (the direct rule's level
			 * alone, before the chains added to this hazard) */
			if (!((s->corroborated >> h) & 1))
				continue;
		} else {
			if (!s->hz[h].present)
				continue;
			unsigned agencies = 0;
			for (int g = 1; g < FUSION_AGENCY_MAX; g++)
				agencies += b->by_agency[g] > 0;
			if (agencies < rule->min_agencies)
				continue;
			s->corroborated |= UINT64_C(1) << h;
			struct hz *z = &s->hz[h];
			z->strength += rule->raise;
			if (z->strength > 4)
				z->strength = 4;
			if (cert_rank(rule->certainty) < cert_rank(z->certainty))
				z->certainty = rule->certainty;
		}
		if (add_rl(s, h, rule->id) < 0)
			return -ENOMEM;
		for (uint32_t i = 0; i < b->n; i++)
			if (add_ev(s, h, b->v[i].in) < 0)
				return -ENOMEM;
	}
	return 0;
}

/* alt_match on a bucket slot of hazard H: agency and level are checked on
 * the slot, the input is read only for a criterion or a value */
static bool slot_match(const struct fusion_alt *alt, const struct fusion_slot *sl, int h)
{
	for (unsigned i = 0; i < alt->n; i++) {
		const struct fusion_term *t = &alt->terms[i];
		if (t->hazard != h || (t->agency && t->agency != sl->agency) ||
		    sl->strength < t->min_strength)
			continue;
		if (!t->criterion[0] && !t->has_value_min && !t->over)
			return true;
		const struct fusion_input *in = sl->in;
		if (fusion_term_match(t, in->agency, in->hazard, in->strength, in->criterion,
				      in->value, in->threshold, in->has_meas))
			return true;
	}
	return false;
}

/* better(a, b): a is the preferred witness over b */
static bool better(const struct fusion_input *a, const struct fusion_input *b)
{
	if (a->strength != b->strength)
		return a->strength > b->strength;
	if (a->observed != b->observed)
		return a->observed > b->observed;
	return input_key_cmp(a, b) < 0;
}

static int clamp_strength(int s) { return s < 1 ? 1 : s > 4 ? 4 : s; }

static int eval_chain(struct wf_fusion *e, struct fusion_scratch *s, const struct fusion_area *a,
		      const struct fusion_rule *rule)
{
	/* every when-line needs some input of its hazards before the
	 * witnesses are worth looking for */
	for (unsigned w = 0; w < rule->n_when; w++) {
		bool any = false;
		for (unsigned c = 0; c < s->n_ctx && !any; c++) {
			const struct fusion_area *x = s->ctx[c];
			for (uint64_t m = rule->when[w].hazards & x->bk_mask; m && !any; m &= m - 1)
				any = fusion_bucket_of(x, __builtin_ctzll(m))->n > 0;
		}
		if (!any)
			return 0;
	}
	struct fusion_input *best[FUSION_WHEN_MAX];
	for (unsigned w = 0; w < rule->n_when; w++) {
		const struct fusion_alt *alt = &rule->when[w];
		const struct fusion_slot *bs = NULL;
		for (unsigned c = 0; c < s->n_ctx; c++) {
			const struct fusion_area *x = s->ctx[c];
			for (uint64_t m = alt->hazards & x->bk_mask; m; m &= m - 1) {
				int h = __builtin_ctzll(m);
				const struct fusion_bucket *b = fusion_bucket_of(x, h);
				for (uint32_t i = 0; i < b->n; i++) {
					const struct fusion_slot *sl = &b->v[i];
					/* better(), on the slot's copies first */
					if (bs && (sl->strength != bs->strength ? sl->strength < bs->strength :
						   sl->observed != bs->observed ? sl->observed < bs->observed :
						   !better(sl->in, bs->in)))
						continue;
					if (slot_match(alt, sl, h))
						bs = sl;
				}
			}
		}
		if (!bs)
			return 0;
		best[w] = bs->in;
	}
	int64_t lo = INT64_MAX, hi = INT64_MIN, exp = INT64_MAX;
	int maxs = 0;
	for (unsigned w = 0; w < rule->n_when; w++) {
		if (best[w]->observed < lo)
			lo = best[w]->observed;
		if (best[w]->observed > hi)
			hi = best[w]->observed;
		if (best[w]->expires < exp)
			exp = best[w]->expires;
		if (best[w]->strength > maxs)
			maxs = best[w]->strength;
	}
	if (hi - lo > rule->within_ms)
		return 0;
	int st = rule->level_mode == FUSION_LEVEL_FIXED ? rule->level_strength :
		 rule->level_mode == FUSION_LEVEL_MAX ? maxs : maxs + rule->level_strength;
	if (st < rule->min_strength)
		st = rule->min_strength;
	st = clamp_strength(st);
	contribute(s, rule->output, st, rule->certainty, exp);
	if (add_rl(s, rule->output, rule->id) < 0 || add_rg(s, rule->output, a->code) < 0)
		return -ENOMEM;
	for (unsigned w = 0; w < rule->n_when; w++)
		if (add_ev(s, rule->output, best[w]) < 0)
			return -ENOMEM;
	return 0;
}

struct cnt_item { char bucket[13]; struct fusion_input *in; };

static int cnt_cmp(const void *x, const void *y)
{
	const struct cnt_item *a = x, *b = y;
	int c = memcmp(a->bucket, b->bucket, 12);
	if (c)
		return c;
	if (a->in->observed != b->in->observed)
		return a->in->observed > b->in->observed ? -1 : 1;
	return input_key_cmp(a->in, b->in);
}

static int i64_desc(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
	return a > b ? -1 : a < b;
}

static bool count_match(const struct fusion_rule *rule, const struct fusion_input *in)
{
	return alt_match(&rule->when[0], in) &&
	       (int)wf_region_level_of_code(in->region) >= rule->count_level;
}

static int eval_count(struct fusion_scratch *s, const struct fusion_area *a,
		      const struct fusion_rule *rule)
{
	const uint64_t hz = rule->when[0].hazards & a->bk_mask;
	size_t n = 0;
	for (uint64_t m = hz; m; m &= m - 1) {
		const struct fusion_bucket *b = fusion_bucket_of(a, __builtin_ctzll(m));
		for (uint32_t i = 0; i < b->n; i++)
			n += count_match(rule, b->v[i].in);
	}
	if (n < rule->min_count)
		return 0;
	struct cnt_item *v = malloc(n * sizeof *v);
	int64_t *exps = malloc(n * sizeof *exps);
	int r = 0;
	if (!v || !exps) {
		r = -ENOMEM;
		goto out;
	}
	n = 0;
	for (uint64_t m = hz; m; m &= m - 1) {
		const struct fusion_bucket *b = fusion_bucket_of(a, __builtin_ctzll(m));
		for (uint32_t i = 0; i < b->n; i++) {
			struct fusion_input *in = b->v[i].in;
			if (!count_match(rule, in) ||
			    wf_region_ancestor_at(in->region, (enum wf_region_level)rule->count_level,
						  v[n].bucket) < 0)
				continue;
			v[n++].in = in;
		}
	}
	qsort(v, n, sizeof *v, cnt_cmp);
	for (size_t i = 0; i < n;) {
		size_t j = i;
		int64_t newest = v[i].in->observed;
		size_t k = 0;
		while (j < n && memcmp(v[j].bucket, v[i].bucket, 12) == 0) {
			if (v[j].in->observed >= newest - rule->within_ms)
				exps[k++] = v[j].in->expires;
			j++;
		}
		if (k >= rule->min_count) {
			qsort(exps, k, sizeof *exps, i64_desc);
			int st = clamp_strength(rule->level_strength > rule->min_strength ?
						rule->level_strength : rule->min_strength);
			contribute(s, rule->output, st, rule->certainty, exps[rule->min_count - 1]);
			if (add_rl(s, rule->output, rule->id) < 0 ||
			    add_rg(s, rule->output, v[i].bucket) < 0) {
				r = -ENOMEM;
				goto out;
			}
			for (size_t q = i; q < j; q++)
				if (v[q].in->observed >= newest - rule->within_ms &&
				    add_ev(s, rule->output, v[q].in) < 0) {
					r = -ENOMEM;
					goto out;
				}
		}
		i = j;
	}
out:
	free(v);
	free(exps);
	return r;
}

static int eval_liveness(struct wf_fusion *e, struct fusion_scratch *s, const struct fusion_area *a)
{
	bool any = false;
	for (int i = 1; i < FUSION_AGENCY_MAX; i++)
		any |= e->silent[i];
	if (!any)
		return 0;
	const int gap = WF__V1__HAZARD__HAZARD_MONITORING_GAP;
	size_t n = s->n_ev;
	bool found = false;
	int64_t exp = 0;
	for (size_t i = 0; i < n; i++) {
		struct fusion_input *in = s->ev[i].in;
		if (s->ev[i].hazard == gap || !e->silent[in->agency] || !s->hz[s->ev[i].hazard].present)
			continue;
		found = true;
		if (in->expires > exp)
			exp = in->expires;
		if (add_ev(s, gap, in) < 0)
			return -ENOMEM;
	}
	if (!found)
		return 0;
	contribute(s, gap, 1, WF__V1__CERTAINTY__CERTAINTY_UNKNOWN, exp);
	if (add_rl(s, gap, LIVENESS_RULE) < 0 || add_rg(s, gap, a->code) < 0)
		return -ENOMEM;
	return 0;
}

/* ---------------------------------------------------------------- sorting helpers */

static int rg_cmp(const void *x, const void *y)
{
	const struct item_rg *a = x, *b = y;
	if (a->hazard != b->hazard)
		return a->hazard < b->hazard ? -1 : 1;
	return memcmp(a->code, b->code, 12);
}

static int rl_cmp(const void *x, const void *y)
{
	const struct item_rl *a = x, *b = y;
	if (a->hazard != b->hazard)
		return a->hazard < b->hazard ? -1 : 1;
	return strcmp(a->id, b->id);
}

/* ---------------------------------------------------------------- emission */

struct version {
	int msg_type;
	const struct fusion_incident *inc;
	struct item_ev *ev;   /* this hazard's inputs (sorted, unique) */
	size_t n_ev;
	uint32_t prev_version;
};

static int txt_append(struct fusion_scratch *s, size_t *off, const char *str, size_t n)
{
	if (grow((void **)&s->text, &s->cap_text, *off + n + 1, 1) < 0)
		return -ENOMEM;
	memcpy(s->text + *off, str, n);
	*off += n;
	s->text[*off] = '\0';
	return 0;
}

/* Appends the strings of PARTS (up to a NULL) as one string of at most MAX
 * bytes (cut there, as snprintf into a buffer of MAX + 1 would), and its NUL. */
static int txt_join(struct fusion_scratch *s, size_t *off, size_t max, const char *const *parts)
{
	size_t left = max;
	int r = 0;
	for (; r == 0 && *parts && left; parts++) {
		size_t n = strlen(*parts);
		n = n < left ? n : left;
		r = txt_append(s, off, *parts, n);
		left -= n;
	}
	return r == 0 ? txt_append(s, off, "", 1) : r;
}

/* V in decimal, in BUF */
static const char *dec(char buf[24], uint64_t v)
{
	char *p = buf + 23;
	*p = '\0';
	do
		*--p = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	return p;
}

static const char *area_name(const struct wf_fusion *e, const char *code)
{
	const struct wf_region *r = e->regions ? wf_region_find(e->regions, code) : NULL;
	return r ? wf_region_name(r) : code;
}

static const char *status_prefix(int status)
{
	return status == WF__V1__STATUS__STATUS_EXERCISE ? "【演练】" :
	       status == WF__V1__STATUS__STATUS_TEST ? "【测试】" : "";
}

static int emit_version(struct wf_fusion *e, const struct fusion_area *a, const struct version *v,
			wf_fusion_emit_fn emit, void *ud)
{
	struct fusion_scratch *s = e->scratch;
	const struct fusion_incident *inc = v->inc;
	size_t n_rules = 0;
	if (inc->rule_ids && *inc->rule_ids) {
		n_rules = 1;
		for (const char *p = inc->rule_ids; *p; p++)
			n_rules += *p == ',';
	}
	size_t n_ev = v->n_ev > MAX_EVENT_IDS ? MAX_EVENT_IDS : v->n_ev;
	size_t nptr = inc->n_regions + n_ev + n_rules + 1;
	if (grow((void **)&s->ptrs, &s->cap_ptrs, nptr, sizeof *s->ptrs) < 0)
		return -ENOMEM;
	/* text layout: regions, event ids, rule ids, headline, description,
	 * instruction, reference; offsets first, pointers after (realloc) */
	size_t off = 0;
	size_t *offs = calloc(nptr + 4, sizeof *offs);
	if (!offs)
		return -ENOMEM;
	size_t k = 0;
	int r = 0;
	for (uint16_t i = 0; i < inc->n_regions && r == 0; i++) {
		offs[k++] = off;
		r = txt_append(s, &off, inc->regions + (size_t)i * 12, 12);
		if (r == 0)
			r = txt_append(s, &off, "", 1);
	}
	for (size_t i = 0; i < n_ev && r == 0; i++) {
		const struct fusion_input *in = v->ev[i].in;
		const char *ag = wf_agency_to_string(in->agency);
		offs[k++] = off;
		r = txt_append(s, &off, ag, strlen(ag));
		if (r == 0)
			r = txt_append(s, &off, ":", 1);
		if (r == 0)
			r = txt_append(s, &off, in->id, strlen(in->id) + 1);
	}
	if (n_rules && r == 0) {
		const char *p = inc->rule_ids;
		while (r == 0) {
			const char *c = strchr(p, ',');
			size_t len = c ? (size_t)(c - p) : strlen(p);
			offs[k++] = off;
			r = txt_append(s, &off, p, len);
			if (r == 0)
				r = txt_append(s, &off, "", 1);
			if (!c)
				break;
			p = c + 1;
		}
	}
	/* the texts are joined in place (no snprintf: a few per version add
	 * up), each cut at 1,023 bytes as the buffer they once went through */
	const size_t tmax = 1023;
	char n1[24], n2[24];
	const char *hzh = wf_hazard_name_zh(inc->hazard);
	const char *col = wf_level_colour_zh(fusion_level(inc->strength));
	const char *name = area_name(e, a->code);
	const char *stp = status_prefix(a->status);
	bool gap = inc->hazard == WF__V1__HAZARD__HAZARD_MONITORING_GAP;
	const char *head_c[] = { stp, name, hzh ? hzh : "", gap ? "监测中断提示解除" : "预警解除", NULL };
	const char *head_g[] = { stp, name, "监测中断提示", NULL };
	const char *head_w[] = { stp, name, hzh ? hzh : "", col ? col : "", "预警", NULL };
	size_t o_head = off;
	if (r == 0)
		r = txt_join(s, &off, tmax,
			     v->msg_type == WF__V1__MSG_TYPE__MSG_TYPE_CANCEL ? head_c
			     : gap					       ? head_g
									       : head_w);
	/* description: why */
	unsigned agmask = 0;
	for (size_t i = 0; i < v->n_ev; i++)
		agmask |= 1u << v->ev[i].in->agency;
	const char *desc_c[] = { "All inputs of ", inc->id, " version ", dec(n1, v->prev_version),
				 " expired or were cancelled.", NULL };
	const char *lvl = wf_level_to_string(fusion_level(inc->strength));
	const char *desc_w[] = { "Level ", lvl ? lvl : "?", " from ",
				 dec(n2, v->n_ev), " input event(s)",
				 agmask & (agmask - 1) ? " of several agencies" : "", "; rules: ",
				 inc->rule_ids && *inc->rule_ids ? inc->rule_ids : "-", ".", NULL };
	size_t o_desc = off;
	if (r == 0)
		r = txt_join(s, &off, tmax,
			     v->msg_type == WF__V1__MSG_TYPE__MSG_TYPE_CANCEL ? desc_c : desc_w);
	/* instruction: of the first listed rule that has one */
	const char *instr = "";
	if (v->msg_type == WF__V1__MSG_TYPE__MSG_TYPE_CANCEL) {
		instr = gap ? "数据源已恢复或不再支撑预警。" : "预警解除。";
	} else if (gap) {
		instr = "数据源中断：静默不等于解除，请值班人员核实。";
	} else {
		for (size_t i = 0; i < e->rules->n_rules; i++) {
			const struct fusion_rule *rl = &e->rules->rules[i];
			if (!rl->instruction[0] || !inc->rule_ids)
				continue;
			size_t idl = strlen(rl->id);
			for (const char *p = inc->rule_ids; (p = strstr(p, rl->id)); p += idl)
				if ((p == inc->rule_ids || p[-1] == ',') && (p[idl] == ',' || !p[idl])) {
					instr = rl->instruction;
					break;
				}
			if (*instr)
				break;
		}
	}
	size_t o_instr = off;
	if (r == 0)
		r = txt_append(s, &off, instr, strlen(instr) + 1);
	size_t o_ref = off;
	if (v->prev_version) {
		const char *ref_p[] = { inc->id, "@", dec(n1, v->prev_version), NULL };
		if (r == 0)
			r = txt_join(s, &off, tmax, ref_p);
	}
	if (r < 0) {
		free(offs);
		return r;
	}
	for (size_t i = 0; i < k; i++)
		s->ptrs[i] = s->text + offs[i];
	free(offs);
	char *ref = s->text + o_ref;

	Wf__V1__Warning w = WF__V1__WARNING__INIT;
	w.id = (char *)inc->id;
	w.version = inc->version;
	w.msg_type = (Wf__V1__MsgType)v->msg_type;
	w.hazard = (Wf__V1__Hazard)inc->hazard;
	w.level = (Wf__V1__Level)fusion_level(inc->strength);
	w.n_regions = inc->n_regions;
	w.regions = s->ptrs;
	w.n_event_ids = n_ev;
	w.event_ids = s->ptrs + inc->n_regions;
	w.n_rule_ids = n_rules;
	w.rule_ids = s->ptrs + inc->n_regions + n_ev;
	w.headline = s->text + o_head;
	w.description = s->text + o_desc;
	w.instruction = s->text + o_instr;
	w.status = (Wf__V1__Status)a->status;
	w.review = WF__V1__REVIEW_STATE__REVIEW_PENDING;
	w.certainty = (Wf__V1__Certainty)inc->certainty;
	w.sent_ms = e->now;
	int64_t onset = inc->onset;
	int64_t expires = inc->expires;
	if (v->msg_type == WF__V1__MSG_TYPE__MSG_TYPE_CANCEL)
		expires = e->now > onset ? e->now : onset + 1;
	if (onset < expires - MAX_VALIDITY_MS)
		onset = expires - MAX_VALIDITY_MS;
	w.onset_ms = onset;
	w.expires_ms = expires;
	w.n_references = v->prev_version ? 1 : 0;
	w.references = &ref;
	e->emitted++;
	return emit ? emit(ud, &w) : 0;
}

/* ---------------------------------------------------------------- lifecycle */

static int set_lists(struct fusion_incident *inc, const struct item_rg *rg, size_t n_rg,
		     const struct item_rl *rl, size_t n_rl)
{
	if (n_rg > MAX_REGIONS)
		n_rg = MAX_REGIONS;
	if (n_rl > MAX_RULE_IDS)
		n_rl = MAX_RULE_IDS;
	char *regs = malloc(n_rg * 12 + 1);
	size_t rlen = 1;
	for (size_t i = 0; i < n_rl; i++)
		rlen += strlen(rl[i].id) + 1;
	char *rules = malloc(rlen);
	if (!regs || !rules) {
		free(regs);
		free(rules);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n_rg; i++)
		memcpy(regs + i * 12, rg[i].code, 12);
	size_t o = 0;
	for (size_t i = 0; i < n_rl; i++) {
		if (i)
			rules[o++] = ',';
		size_t l = strlen(rl[i].id);
		memcpy(rules + o, rl[i].id, l);
		o += l;
	}
	rules[o] = '\0';
	free(inc->regions);
	free(inc->rule_ids);
	inc->regions = regs;
	inc->n_regions = (uint16_t)n_rg;
	inc->rule_ids = rules;
	return 0;
}

static bool regions_equal(const struct fusion_incident *inc, const struct item_rg *rg, size_t n)
{
	if (n > MAX_REGIONS)
		n = MAX_REGIONS;
	if (inc->n_regions != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (memcmp(inc->regions + i * 12, rg[i].code, 12) != 0)
			return false;
	return true;
}

static void make_id(const struct fusion_area *a, int hazard, const struct item_ev *ev, size_t n,
		    int64_t now, char *out, size_t size)
{
	uint32_t h = 2166136261u;
	if (n) {
		const char *ag = wf_agency_to_string(ev[0].in->agency);
		h = fusion_hash(ag, strlen(ag), h);
		h = fusion_hash(":", 1, h);
		h = fusion_hash(ev[0].in->id, strlen(ev[0].in->id), h);
	}
	h = fusion_hash(&now, sizeof now, h);
	char tok[40];
	snprintf(tok, sizeof tok, "%s", wf_hazard_to_string(hazard));
	for (char *p = tok; *p; p++)
		if (*p == '_')
			*p = '-';
	static const char st[] = "?aet";
	snprintf(out, size, "wf-%c-%s-%.12s-%08x", st[a->status & 3], tok, a->code, h);
}

static uint32_t incident_index(const struct fusion_area *a, int h)
{
	return fusion_popcount(a->inc_mask & ((UINT64_C(1) << h) - 1));
}

static int incident_insert(struct fusion_area *a, struct fusion_incident *inc)
{
	if (a->n_incs == a->cap_incs) {
		uint32_t cap = a->cap_incs ? a->cap_incs * 2 : 2;
		struct fusion_incident **np = realloc(a->incs, cap * sizeof *np);
		if (!np)
			return -ENOMEM;
		a->incs = np;
		a->cap_incs = cap;
	}
	uint32_t i = incident_index(a, inc->hazard);
	memmove(&a->incs[i + 1], &a->incs[i], (a->n_incs - i) * sizeof *a->incs);
	a->incs[i] = inc;
	a->n_incs++;
	a->inc_mask |= UINT64_C(1) << inc->hazard;
	return 0;
}

static void incident_remove(struct fusion_area *a, int h)
{
	uint32_t idx = incident_index(a, h);
	if (idx + 1 < a->n_incs)
		memmove(&a->incs[idx], &a->incs[idx + 1], (a->n_incs - idx - 1) * sizeof *a->incs);
	a->n_incs--;
	a->inc_mask &= ~(UINT64_C(1) << h);
}

/* Lazy mode: gathers the events behind hazard H of the area being
 * evaluated (the same rules as the grading pass, on the same inputs, with
 * nothing graded again) into s->ev. */
static int collect_events(struct wf_fusion *e, struct fusion_scratch *s, const struct fusion_area *a,
			  int h, struct item_ev **ev, size_t *n_ev)
{
	const struct wf_fusion_rules *R = e->rules;
	uint64_t hz = UINT64_C(1) << h;
	s->n_ev = 0;
	s->ev_only = true;
	int r = eval_direct(e, s, a, hz);
	if (r == 0)
		r = eval_corroborate(e, s, a, hz);
	for (size_t i = 0; i < R->n_rules && r == 0; i++) {
		const struct fusion_rule *rule = &R->rules[i];
		if (rule->output != h)
			continue;
		if (rule->kind == FUSION_RULE_CHAIN)
			r = eval_chain(e, s, a, rule);
		else if (rule->kind == FUSION_RULE_COUNT)
			r = eval_count(s, a, rule);
	}
	s->ev_only = false;
	*ev = s->ev;
	*n_ev = s->n_ev;
	return r;
}

/* Agencies in name order (input_key_cmp's first key); equal names rank
 * equal. A pure function of constant names, filled on first use. */
static const uint8_t *agency_ranks(void)
{
	static uint8_t rank[FUSION_AGENCY_MAX];
	static bool done;
	if (!done) {
		const char *name[FUSION_AGENCY_MAX];
		for (int i = 0; i < FUSION_AGENCY_MAX; i++) {
			name[i] = wf_agency_to_string((Wf__V1__Agency)i);
			if (!name[i])
				name[i] = "";
		}
		for (int i = 0; i < FUSION_AGENCY_MAX; i++) {
			uint8_t r = 0;
			for (int j = 0; j < FUSION_AGENCY_MAX; j++)
				r += strcmp(name[j], name[i]) < 0;
			rank[i] = r;
		}
		done = true;
	}
	return rank;
}

/* input_key_cmp(a, b) < 0, inline for the sort below */
static inline bool key_less(const uint8_t *rank, const struct fusion_input *a,
			    const struct fusion_input *b)
{
	if (a == b)
		return false;
	if (rank[a->agency] != rank[b->agency])
		return rank[a->agency] < rank[b->agency];
	return strcmp(a->id, b->id) < 0;
}

/* Stable merge sort of one hazard's items by input key (qsort's indirect
 * comparisons were a fifth of a replay that makes a version per event). */
static int sort_ev(struct fusion_scratch *s, struct item_ev *ev, size_t n)
{
	const uint8_t *rank = agency_ranks();
	enum { RUN = 8 };
	for (size_t lo = 0; lo < n; lo += RUN) { /* insertion sort of short runs */
		size_t hi = lo + RUN < n ? lo + RUN : n;
		for (size_t i = lo + 1; i < hi; i++) {
			struct item_ev x = ev[i];
			size_t j = i;
			while (j > lo && key_less(rank, x.in, ev[j - 1].in)) {
				ev[j] = ev[j - 1];
				j--;
			}
			ev[j] = x;
		}
	}
	if (n <= RUN)
		return 0;
	if (grow((void **)&s->ev2, &s->cap_ev2, n, sizeof *s->ev2) < 0)
		return -ENOMEM;
	struct item_ev *from = ev, *to = s->ev2;
	for (size_t w = RUN; w < n; w *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * w) {
			size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
			size_t i = lo, j = mid, k = lo;
			while (i < mid && j < hi)
				to[k++] = key_less(rank, from[j].in, from[i].in) ? from[j++] : from[i++];
			while (i < mid)
				to[k++] = from[i++];
			while (j < hi)
				to[k++] = from[j++];
		}
		struct item_ev *t = from;
		from = to;
		to = t;
	}
	if (from != ev)
		memcpy(ev, from, n * sizeof *ev);
	return 0;
}

/* sorts one hazard's inputs by key and drops repeats; returns the count
 * or -ENOMEM */
static ssize_t prep_ev(struct fusion_scratch *s, struct item_ev *ev, size_t n)
{
	if (n > 1 && sort_ev(s, ev, n) < 0)
		return -ENOMEM;
	size_t w = 0;
	for (size_t i = 0; i < n; i++)
		if (!w || ev[w - 1].in != ev[i].in)
			ev[w++] = ev[i];
	return (ssize_t)w;
}

static int lifecycle(struct wf_fusion *e, struct wf_txn *t, struct fusion_area *a, int h,
		     struct item_ev *ev, size_t n_ev, struct item_rg *rg, size_t n_rg,
		     struct item_rl *rl, size_t n_rl, wf_fusion_emit_fn emit, void *ud)
{
	struct fusion_scratch *s = e->scratch;
	const struct hz *z = &s->hz[h];
	int strength = z->present ? z->strength : 0;
	if (z->present) {
		/* round to a level the hazard has ([levels]): up, else the strongest */
		uint8_t allowed = e->rules->allowed[h];
		int st = strength;
		while (st <= 4 && !(allowed & (1u << st)))
			st++;
		if (st > 4)
			for (st = 4; st > 1 && !(allowed & (1u << st)); st--)
				;
		strength = st;
	}
	struct fusion_incident *inc =
		(a->inc_mask >> h) & 1 ? a->incs[incident_index(a, h)] : NULL;
	int r;
	if (!inc && !z->present)
		return 0;
	if (!inc) {
		if (s->lazy && (r = collect_events(e, s, a, h, &ev, &n_ev)) < 0)
			return r;
		ssize_t np = prep_ev(s, ev, n_ev);
		if (np < 0)
			return (int)np;
		n_ev = (size_t)np;
		inc = calloc(1, sizeof *inc);
		if (!inc)
			return -ENOMEM;
		inc->hazard = (uint8_t)h;
		inc->strength = (uint8_t)strength;
		inc->certainty = (uint8_t)z->certainty;
		inc->version = 1;
		inc->expires = z->expires;
		int64_t onset = INT64_MAX;
		for (size_t i = 0; i < n_ev; i++)
			if (ev[i].in->observed < onset)
				onset = ev[i].in->observed;
		inc->onset = onset == INT64_MAX ? e->now : onset;
		char base[sizeof inc->id];
		make_id(a, h, ev, n_ev, e->now, base, sizeof base - 12);
		if ((r = fusion_incident_id(e, t, a, h, base, inc->id, sizeof inc->id)) < 0 ||
		    (r = set_lists(inc, rg, n_rg, rl, n_rl)) < 0 || (r = incident_insert(a, inc)) < 0) {
			fusion_incident_free(inc);
			return r;
		}
		e->n_incidents++;
		if ((r = fusion_incident_store(e, t, a, inc)) < 0)
			return r;
		struct version v = { WF__V1__MSG_TYPE__MSG_TYPE_ALERT, inc, ev, n_ev, 0 };
		r = emit_version(e, a, &v, emit, ud);
		return r < 0 ? r : 1;
	}
	if (!z->present) {
		uint32_t prev = inc->version;
		inc->version++;
		incident_remove(a, h);
		e->n_incidents--;
		r = fusion_incident_delete(e, t, a, inc);
		if (r == 0) {
			struct version v = { WF__V1__MSG_TYPE__MSG_TYPE_CANCEL, inc, NULL, 0, prev };
			r = emit_version(e, a, &v, emit, ud);
		}
		fusion_incident_free(inc);
		return r < 0 ? r : 1;
	}
	bool change = false, dirty = false;
	int newst = inc->strength;
	if (strength > inc->strength) {
		newst = strength;
		change = true;
		inc->pend_strength = 0;
	} else if (strength < inc->strength) {
		if (!inc->pend_strength) {
			inc->pend_strength = (uint8_t)strength;
			inc->pend_since = e->now;
			dirty = true;
		} else if (strength > inc->pend_strength) {
			inc->pend_strength = (uint8_t)strength;
			dirty = true;
		}
		if (e->now - inc->pend_since >= e->rules->dwell_ms) {
			newst = inc->pend_strength;
			change = true;
			if (strength < newst) {
				inc->pend_strength = (uint8_t)strength;
				inc->pend_since = e->now;
			} else {
				inc->pend_strength = 0;
			}
		}
	} else if (inc->pend_strength) {
		inc->pend_strength = 0;
		dirty = true;
	}
	if (!regions_equal(inc, rg, n_rg))
		change = true;
	/* better certainty goes out at once; a weaker one rides with the next
	 * version (it must not bypass the downgrade dwell) */
	if (cert_rank(z->certainty) < cert_rank(inc->certainty))
		change = true;
	if (z->expires > inc->expires && e->now >= inc->expires - e->rules->renew_ms)
		change = true;
	if (!change) {
		if (dirty && (r = fusion_incident_store(e, t, a, inc)) < 0)
			return r;
		return 0;
	}
	if (s->lazy && (r = collect_events(e, s, a, h, &ev, &n_ev)) < 0)
		return r;
	ssize_t np = prep_ev(s, ev, n_ev);
	if (np < 0)
		return (int)np;
	n_ev = (size_t)np;
	uint32_t prev = inc->version;
	inc->version++;
	inc->strength = (uint8_t)newst;
	inc->certainty = (uint8_t)z->certainty;
	inc->expires = z->expires;
	if ((r = set_lists(inc, rg, n_rg, rl, n_rl)) < 0)
		return r;
	if ((r = fusion_incident_store(e, t, a, inc)) < 0)
		return r;
	struct version v = { WF__V1__MSG_TYPE__MSG_TYPE_UPDATE, inc, ev, n_ev, prev };
	r = emit_version(e, a, &v, emit, ud);
	return r < 0 ? r : 1;
}

/* ---------------------------------------------------------------- area */

/* The area and its ancestor areas that hold inputs (chain context). */
static void gather(struct wf_fusion *e, struct fusion_scratch *s, struct fusion_area *a)
{
	if (!a->up_known || a->up_gen != e->area_gen) {
		/* areas are only ever added (until the state is dropped), so the
		 * lookup is redone only after a new area appeared somewhere */
		a->n_up = 0;
		enum wf_region_level l = wf_region_level_of_code(a->code);
		for (int al = WF_REGION_PROVINCE; al < (int)l && a->n_up < WF_FUSION_MAX_UP; al++) {
			char code[13];
			if (wf_region_ancestor_at(a->code, (enum wf_region_level)al, code) < 0)
				continue;
			struct fusion_area *up = fusion_area_find(e, a->status, code);
			if (up)
				a->up[a->n_up++] = up;
		}
		a->up_known = true;
		a->up_gen = e->area_gen;
	}
	s->ctx[0] = a;
	s->n_ctx = 1;
	for (unsigned i = 0; i < a->n_up; i++)
		if (a->up[i]->n_inputs)
			s->ctx[s->n_ctx++] = a->up[i];
}

static bool any_silent(const struct wf_fusion *e)
{
	for (int i = 1; i < FUSION_AGENCY_MAX; i++)
		if (e->silent[i])
			return true;
	return false;
}

int fusion_eval_area(struct wf_fusion *e, struct wf_txn *t, struct fusion_area *a, uint64_t dirty,
		     wf_fusion_emit_fn emit, void *ud)
{
	if (!a->owned)
		return 0;
	if (!e->scratch) {
		e->scratch = calloc(1, sizeof *e->scratch);
		if (!e->scratch)
			return -ENOMEM;
	}
	struct fusion_scratch *s = e->scratch;
	const struct wf_fusion_rules *R = e->rules;
	/* The hazards to regrade: those whose inputs changed and what they
	 * affect. Every other hazard's grading is a function of inputs that
	 * did not change, and its lifecycle only moves with time at the
	 * area's timer, which regrades all (as do rule swaps and liveness
	 * changes). A silent source makes the gap notice draw on every hazard. */
	uint64_t hz = 0;
	bool silent = any_silent(e);
	s->lazy = !silent && !e->full_regrade;
	s->ev_only = false;
	s->corroborated = 0;
	if (dirty == FUSION_ALL_HAZARDS || e->full_regrade || silent) {
		hz = FUSION_ALL_HAZARDS;
	} else {
		for (uint64_t m = dirty; m; m &= m - 1)
			hz |= R->affects[__builtin_ctzll(m)];
	}
	hz &= ~UINT64_C(1); /* hazard 0 is never graded */
	for (int h = 1; h < FUSION_HAZARD_MAX; h++)
		if (hz & (UINT64_C(1) << h))
			s->hz[h] = (struct hz){ 0 };
	s->n_ev = s->n_rg = s->n_rl = 0;
	gather(e, s, a);
	int r;
	if ((r = eval_direct(e, s, a, hz)) < 0 || (r = eval_corroborate(e, s, a, hz)) < 0)
		return r;
	for (size_t i = 0; i < R->n_rules; i++) {
		const struct fusion_rule *rule = &R->rules[i];
		if (!(hz & (UINT64_C(1) << rule->output)))
			continue;
		if (rule->kind == FUSION_RULE_CHAIN)
			r = eval_chain(e, s, a, rule);
		else if (rule->kind == FUSION_RULE_COUNT)
			r = eval_count(s, a, rule);
		if (r < 0)
			return r;
	}
	if ((r = eval_liveness(e, s, a)) < 0)
		return r;
	/* sort and dedupe the per-hazard lists */
	if (s->n_ev > 1) {
		/* stable bucket by hazard; each slice is sorted only when a
		 * version is made from it (lifecycle) */
		size_t cnt[FUSION_HAZARD_MAX + 1] = { 0 };
		for (size_t i = 0; i < s->n_ev; i++)
			cnt[s->ev[i].hazard + 1]++;
		for (int h = 1; h <= FUSION_HAZARD_MAX; h++)
			cnt[h] += cnt[h - 1];
		if ((r = grow((void **)&s->ev2, &s->cap_ev2, s->n_ev, sizeof *s->ev2)) < 0)
			return r;
		for (size_t i = 0; i < s->n_ev; i++)
			s->ev2[cnt[s->ev[i].hazard]++] = s->ev[i];
		struct item_ev *tmp = s->ev;
		size_t tcap = s->cap_ev;
		s->ev = s->ev2;
		s->cap_ev = s->cap_ev2;
		s->ev2 = tmp;
		s->cap_ev2 = tcap;
	}
	if (s->n_rg > 1)
		qsort(s->rg, s->n_rg, sizeof *s->rg, rg_cmp);
	if (s->n_rl > 1)
		qsort(s->rl, s->n_rl, sizeof *s->rl, rl_cmp);
	size_t w = 0;
	for (size_t i = 0; i < s->n_rg; i++)
		if (!w || rg_cmp(&s->rg[w - 1], &s->rg[i]) != 0)
			s->rg[w++] = s->rg[i];
	s->n_rg = w;
	w = 0;
	for (size_t i = 0; i < s->n_rl; i++)
		if (!w || rl_cmp(&s->rl[w - 1], &s->rl[i]) != 0)
			s->rl[w++] = s->rl[i];
	s->n_rl = w;
	/* walk the regraded hazards present now or with an incident, in
	 * hazard order */
	uint64_t walk = 0;
	for (uint64_t m = hz; m; m &= m - 1) {
		int h = __builtin_ctzll(m);
		if (s->hz[h].present)
			walk |= UINT64_C(1) << h;
	}
	walk = (walk | a->inc_mask) & hz;
	int total = 0;
	size_t ie = 0, ig = 0, il = 0;
	for (uint64_t m = walk; m; m &= m - 1) {
		int h = __builtin_ctzll(m);
		while (ie < s->n_ev && s->ev[ie].hazard < h)
			ie++;
		size_t je = ie;
		while (je < s->n_ev && s->ev[je].hazard == h)
			je++;
		while (ig < s->n_rg && s->rg[ig].hazard < h)
			ig++;
		size_t jg = ig;
		while (jg < s->n_rg && s->rg[jg].hazard == h)
			jg++;
		while (il < s->n_rl && s->rl[il].hazard < h)
			il++;
		size_t jl = il;
		while (jl < s->n_rl && s->rl[jl].hazard == h)
			jl++;
		r = lifecycle(e, t, a, h, s->ev + ie, je - ie, s->rg + ig, jg - ig, s->rl + il,
			      jl - il, emit, ud);
		if (r < 0)
			return r;
		total += r;
	}
	fusion_area_set_timer(e, a);
	return total;
}
