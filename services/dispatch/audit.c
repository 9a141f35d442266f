/* audit: the audit trail of operators' actions (approve, reject, cancel,
 * silence) in d-audit, and each operator's latest verdicts in d-verdict
 * (retained on wf/v1/verdict/<operator> by views.c), both written in the
 * transaction of the action itself: an action is recorded exactly when it
 * is applied (the node deduplicates its producer/seq). */
#include "dispatch-internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fill(Wf__V1__AuditEntry *m, const struct dsp_audit *a)
{
	wf__v1__audit_entry__init(m);
	m->at_ms = a->at_ms;
	m->operator_ = (char *)(a->operator_ ? a->operator_ : "");
	m->action = (char *)(a->action ? a->action : "");
	m->warning_id = (char *)(a->warning_id ? a->warning_id : "");
	m->version = a->version;
	m->accepted = a->accepted;
	m->outcome = (char *)(a->outcome ? a->outcome : "");
	m->detail = (char *)(a->detail ? a->detail : "");
	m->producer = (char *)(a->producer ? a->producer : "");
	m->seq = a->seq;
	m->sent_ms = a->sent_ms;
}

/* The operator's verdicts with A appended (the oldest dropped past
 * DSP_VERDICTS_MAX). */
static int add_verdict(struct dsp_engine *e, struct wf_txn *t, const Wf__V1__AuditEntry *a,
		       int64_t now)
{
	void *old = NULL;
	size_t old_len = 0;
	size_t klen = strlen(a->operator_);
	if (klen == 0)
		return 0;
	int r = wf_store_get(t, e->db.verdict, a->operator_, klen, &old, &old_len);
	if (r < 0 && r != -ENOENT)
		return r;
	Wf__V1__OperatorVerdicts *v = r == 0 ? wf__v1__operator_verdicts__unpack(NULL, old_len, old)
					     : NULL;
	free(old);
	Wf__V1__AuditEntry *list[DSP_VERDICTS_MAX];
	size_t n = 0, have = v ? v->n_entries : 0;
	/* the same producer/seq again (a retried transaction): replaced */
	for (size_t i = have > DSP_VERDICTS_MAX - 1 ? have - (DSP_VERDICTS_MAX - 1) : 0; i < have;
	     i++)
		if (!(v->entries[i]->seq == a->seq && strcmp(v->entries[i]->producer, a->producer) == 0))
			list[n++] = v->entries[i];
	list[n++] = (Wf__V1__AuditEntry *)a;
	Wf__V1__OperatorVerdicts m = WF__V1__OPERATOR_VERDICTS__INIT;
	m.operator_ = a->operator_;
	m.entries = list;
	m.n_entries = n;
	m.updated_ms = now;
	m.producer = e->service;
	size_t len = wf__v1__operator_verdicts__get_packed_size(&m);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf) {
		r = -ENOMEM;
	} else {
		wf__v1__operator_verdicts__pack(&m, buf);
		r = wf_store_put(t, e->db.verdict, a->operator_, klen, buf, len, 0);
		free(buf);
	}
	if (v)
		wf__v1__operator_verdicts__free_unpacked(v, NULL);
	return r;
}

int dsp_audit_add(struct dsp_engine *e, struct wf_txn *t, const struct dsp_audit *a)
{
	Wf__V1__AuditEntry m;
	char key[DSP_KEY_MAX];
	fill(&m, a);
	const char *scope = m.warning_id[0] ? m.warning_id : "~silence";
	int kl = snprintf(key, sizeof key, "%s|%016" PRIx64 "|%s|%016" PRIx64, scope,
			  (uint64_t)a->at_ms, m.producer, a->seq);
	if (kl < 0 || (size_t)kl >= sizeof key)
		return -ENAMETOOLONG;
	size_t len = wf__v1__audit_entry__get_packed_size(&m);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	wf__v1__audit_entry__pack(&m, buf);
	int r = wf_store_put(t, e->db.audit, key, (size_t)kl, buf, len, 0);
	free(buf);
	if (r == 0)
		r = add_verdict(e, t, &m, a->at_ms);
	if (r < 0)
		return r;
	if (m.warning_id[0])
		dsp_mark_warning(e, m.warning_id);
	else
		e->dirty_silences = true;
	dsp_mark_operator(e, m.operator_);
	return 0;
}
