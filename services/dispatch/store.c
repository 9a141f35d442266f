/* store: the dispatcher's LMDB state (see store.h). */
#include "store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"
#include "wf/codec.h"

int dsp_store_open(struct wf_store *s, struct dsp_dbs *d)
{
	static const char *const names[] = { "d-warning", "d-current", "d-review", "d-delivery",
					      "d-duty", "d-followup", "d-bcast", "d-silence",
					      "d-silmeta", "d-audit", "d-verdict", "d-cancel", "d-stats",
					      "d-due", "d-dpend", "d-purge", "d-purgeq", "d-meta",
					      "d-relq" };
	unsigned *slots[] = { &d->warning, &d->current, &d->review, &d->delivery,
			      &d->duty, &d->followup, &d->bcast, &d->silence,
			      &d->silmeta, &d->audit, &d->verdict, &d->cancel, &d->stats,
			      &d->due, &d->dpend, &d->purge, &d->purgeq, &d->meta,
			      &d->relq };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		int r = wf_store_dbi(s, names[i], 0, slots[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

static const char *const state_names[DSP_DLV_STATE_MAX] = {
	[DSP_DLV_SENT] = "sent",
	[DSP_DLV_ACKED] = "acked",
	[DSP_DLV_ACKED_LATE] = "acked_late",
	[DSP_DLV_MISSED] = "missed",
	[DSP_DLV_MISSED_TOP] = "missed_top",
	[DSP_DLV_ESCALATED] = "escalated",
	[DSP_DLV_SILENCED] = "silenced",
	[DSP_DLV_BLOCKED] = "blocked",
	[DSP_DLV_NOT_CONFIGURED] = "not_configured",
	[DSP_DLV_SUPERSEDED] = "superseded",
	[DSP_DLV_REVIEW_TIMEOUT] = "review_timeout",
	[DSP_DLV_APPROVED] = "approved",
	[DSP_DLV_REFUSED] = "refused",
	[DSP_DLV_REJECTED] = "rejected",
	[DSP_DLV_FOLLOWUP] = "followup",
	[DSP_DLV_REMINDED] = "reminded",
	[DSP_DLV_SKIPPED] = "skipped",
	[DSP_DLV_CANCELLED] = "cancelled",
	[DSP_DLV_LEFT_OUT] = "left_out",
};

const char *dsp_delivery_state_to_string(enum dsp_delivery_state s)
{
	if ((int)s < 0 || s >= DSP_DLV_STATE_MAX)
		return NULL;
	return state_names[s];
}

static int keyf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int keyf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size || (size_t)n > WF_STORE_MAX_KEY)
		return -ENAMETOOLONG;
	return n;
}

int dsp_key_version(char *buf, size_t size, const char *id, uint32_t version)
{
	return keyf(buf, size, "%s@%u", id, version);
}

int dsp_key_delivery(char *buf, size_t size, const char *id, uint32_t version,
		     const char *channel, const char *target)
{
	return keyf(buf, size, "%s@%u|%s|%s", id, version, channel, target);
}

int dsp_key_duty(char *buf, size_t size, const char *station, const char *id, uint32_t version)
{
	return keyf(buf, size, "%s|%s@%u", station, id, version);
}

int dsp_key_followup(char *buf, size_t size, const char *station, const char *id)
{
	return keyf(buf, size, "%s|%s", station, id);
}

int dsp_get_rec(struct wf_txn *t, unsigned dbi, const char *key, void *rec, size_t size)
{
	size_t len = 0;
	int r = wf_store_get_buf(t, dbi, key, strlen(key), rec, size, &len);
	if (r == -EMSGSIZE || (r == 0 && (len != size || ((uint8_t *)rec)[0] != 1)))
		return -EBADMSG;
	return r;
}

int dsp_put_rec(struct wf_txn *t, unsigned dbi, const char *key, const void *rec, size_t size)
{
	return wf_store_put(t, dbi, key, strlen(key), rec, size, 0);
}

int dsp_record(struct wf_txn *t, const struct dsp_dbs *d, const char *id, uint32_t version,
	       const char *channel, const char *target, enum dsp_delivery_state state,
	       int64_t at_ms, const char *fmt, ...)
{
	char key[DSP_KEY_MAX];
	struct dsp_delivery rec;
	int r = dsp_key_delivery(key, sizeof key, id, version, channel, target);
	if (r < 0)
		return r;
	memset(&rec, 0, sizeof rec);
	rec.rec_version = 1;
	rec.state = (uint8_t)state;
	rec.at_ms = at_ms;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rec.detail, sizeof rec.detail, fmt, ap);
	va_end(ap);
	r = dsp_put_rec(t, d->delivery, key, &rec, sizeof rec);
	return r < 0 ? r : dsp_stats_count(t, d, channel, (unsigned)state, at_ms);
}

int dsp_get_warning(struct wf_txn *t, const struct dsp_dbs *d, const char *id, uint32_t version,
		    Wf__V1__Warning **ret)
{
	char key[DSP_KEY_MAX];
	void *buf = NULL;
	size_t len = 0;
	int r = dsp_key_version(key, sizeof key, id, version);
	if (r < 0)
		return r;
	r = wf_store_get(t, d->warning, key, (size_t)r, &buf, &len);
	if (r < 0)
		return r;
	Wf__V1__Warning *w = wf__v1__warning__unpack(NULL, len, buf);
	free(buf);
	if (!w)
		return -EBADMSG;
	*ret = w;
	return 0;
}
