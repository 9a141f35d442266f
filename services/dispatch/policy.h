/* policy: the release policy (发布审核: draft -> review -> sign-off ->
 * release), pure functions of the configuration and the state passed in
 * (docs/dispatch.md, "Release policy"). Nothing here logs, stores or
 * reads the clock. */
#ifndef DSP_POLICY_H
#define DSP_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "warning.pb-c.h"
#include "wf/topic.h"

/* How many distinct operators must approve a version of a level. */
enum dsp_release {
	DSP_RELEASE_AUTO = 0,   /* released at once (REVIEW_AUTO) */
	DSP_RELEASE_ONE = 1,    /* one operator's approval */
	DSP_RELEASE_TWO = 2,    /* two different operators (the Hawaii rule) */
};

#define DSP_MAX_APPROVERS 2u

struct dsp_policy {
	enum dsp_release release[5];   /* by Level (index 1..4; 0 unused) */
	bool downgrade_follows;        /* an UPDATE to a lower level after a released version: auto */
	bool cancel_follows;           /* a CANCEL after a released version: auto */
	int64_t review_timeout_ms[5];  /* pending review this long escalates (0: never) */
};

/* Defaults: I, II two operators; III one; IV auto; downgrade and cancel
 * follow an approved alert; review timeouts I 10m, II 15m, III 30m. */
void dsp_policy_defaults(struct dsp_policy *p);

/* What was released of the warning before this version. */
struct dsp_prior {
	uint32_t released_version;     /* 0: nothing released yet */
	Wf__V1__Level released_level;
};

/* Distinct approvals version W needs before release (0: release now):
 * by level, except a downgrade or cancel after a released version (when
 * the policy lets them follow) and a cancel of a warning never released
 * (nothing public to retract). This function can't fail. */
unsigned dsp_policy_required(const struct dsp_policy *p, const Wf__V1__Warning *w,
			     const struct dsp_prior *prior);

/* Exercise and test warnings never reach a public channel, whatever the
 * routing says; only STATUS_ACTUAL may. */
bool dsp_policy_public_allowed(Wf__V1__Status status);

enum dsp_verdict {
	DSP_APPROVAL_COUNTED = 0,    /* a new operator's approval */
	DSP_APPROVAL_SAME_OPERATOR,  /* this operator already approved: counts once */
	DSP_APPROVAL_SUPERSEDED,     /* a newer version exists: refused */
	DSP_APPROVAL_UNKNOWN,        /* no such version: refused */
	DSP_APPROVAL_DECIDED,        /* already released or rejected: nothing to do */
	DSP_APPROVAL_NOT_OPERATOR,   /* not an operator of the routing file: refused */
	DSP_VERDICT_MAX,
};

const char *dsp_verdict_to_string(enum dsp_verdict v);

/* The review state of one version, as the policy sees it. */
struct dsp_review {
	uint32_t version;
	uint8_t state;                 /* Wf__V1__ReviewState */
	uint8_t required;              /* distinct approvals needed */
	uint8_t n_approvers;
	char approvers[DSP_MAX_APPROVERS][WF_TOPIC_ID_MAX + 1];
	int64_t review_deadline_ms;    /* 0: none */
	uint8_t review_escalated;
	uint8_t rejected_by_len;
	char rejected_by[WF_TOPIC_ID_MAX + 1];
};

/* Judges an approval by OPERATOR of VERSION, given the latest version
 * LATEST known for the warning and the version's review R (NULL: unknown
 * version). This function can't fail. */
enum dsp_verdict dsp_policy_judge(uint32_t latest, const struct dsp_review *r, uint32_t version,
				  const char *operator_id);

/* Records the approval in R (after DSP_APPROVAL_COUNTED) and returns true
 * when R now has enough distinct approvals (state becomes APPROVED). */
bool dsp_policy_count(struct dsp_review *r, const char *operator_id);

#endif
