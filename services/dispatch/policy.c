/* policy: see policy.h. */
#include "policy.h"

#include <stdio.h>
#include <string.h>

void dsp_policy_defaults(struct dsp_policy *p)
{
	memset(p, 0, sizeof *p);
	p->release[WF__V1__LEVEL__LEVEL_I] = DSP_RELEASE_TWO;
	p->release[WF__V1__LEVEL__LEVEL_II] = DSP_RELEASE_TWO;
	p->release[WF__V1__LEVEL__LEVEL_III] = DSP_RELEASE_ONE;
	p->release[WF__V1__LEVEL__LEVEL_IV] = DSP_RELEASE_AUTO;
	p->downgrade_follows = true;
	p->cancel_follows = true;
	p->review_timeout_ms[WF__V1__LEVEL__LEVEL_I] = 10 * 60000;
	p->review_timeout_ms[WF__V1__LEVEL__LEVEL_II] = 15 * 60000;
	p->review_timeout_ms[WF__V1__LEVEL__LEVEL_III] = 30 * 60000;
}

unsigned dsp_policy_required(const struct dsp_policy *p, const Wf__V1__Warning *w,
			     const struct dsp_prior *prior)
{
	unsigned lvl = (unsigned)w->level;
	if (lvl < 1 || lvl > 4)
		return DSP_RELEASE_TWO; /* cannot happen after validation; be strict */
	bool released_before = prior && prior->released_version > 0 &&
			       prior->released_version < w->version;
	if (released_before && w->msg_type == WF__V1__MSG_TYPE__MSG_TYPE_CANCEL && p->cancel_follows)
		return 0;
	/* a cancel of a warning the public never saw retracts nothing: no review */
	if (w->msg_type == WF__V1__MSG_TYPE__MSG_TYPE_CANCEL && (!prior || prior->released_version == 0))
		return 0;
	/* a lower level (a larger number) than what was released */
	if (released_before && w->msg_type == WF__V1__MSG_TYPE__MSG_TYPE_UPDATE &&
	    p->downgrade_follows && (unsigned)prior->released_level >= 1 &&
	    lvl > (unsigned)prior->released_level)
		return 0;
	return (unsigned)p->release[lvl];
}

bool dsp_policy_public_allowed(Wf__V1__Status status)
{
	return status == WF__V1__STATUS__STATUS_ACTUAL;
}

static const char *const verdict_names[DSP_VERDICT_MAX] = {
	[DSP_APPROVAL_COUNTED] = "counted",
	[DSP_APPROVAL_SAME_OPERATOR] = "same_operator",
	[DSP_APPROVAL_SUPERSEDED] = "superseded",
	[DSP_APPROVAL_UNKNOWN] = "unknown_version",
	[DSP_APPROVAL_DECIDED] = "already_decided",
	[DSP_APPROVAL_NOT_OPERATOR] = "not_an_operator",
};

const char *dsp_verdict_to_string(enum dsp_verdict v)
{
	if ((int)v < 0 || v >= DSP_VERDICT_MAX)
		return NULL;
	return verdict_names[v];
}

enum dsp_verdict dsp_policy_judge(uint32_t latest, const struct dsp_review *r, uint32_t version,
				  const char *operator_id)
{
	if (!r || r->version != version)
		return DSP_APPROVAL_UNKNOWN;
	if (version < latest)
		return DSP_APPROVAL_SUPERSEDED;
	if (r->state != WF__V1__REVIEW_STATE__REVIEW_PENDING)
		return DSP_APPROVAL_DECIDED;
	for (unsigned i = 0; i < r->n_approvers && i < DSP_MAX_APPROVERS; i++)
		if (strcmp(r->approvers[i], operator_id) == 0)
			return DSP_APPROVAL_SAME_OPERATOR;
	return DSP_APPROVAL_COUNTED;
}

bool dsp_policy_count(struct dsp_review *r, const char *operator_id)
{
	if (r->n_approvers < DSP_MAX_APPROVERS) {
		snprintf(r->approvers[r->n_approvers], sizeof r->approvers[0], "%s", operator_id);
		r->n_approvers++;
	}
	if (r->n_approvers >= r->required) {
		r->state = WF__V1__REVIEW_STATE__REVIEW_APPROVED;
		return true;
	}
	return false;
}
