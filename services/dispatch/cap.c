/* cap: CAP 1.2 rendering (see cap.h). */
#include "cap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/tree.h>
#include <libxml/xmlsave.h>

#include "wf/topic.h"

#define CAP_NS "urn:oasis:names:tc:emergency:cap:1.2"
#define BEIJING_OFFSET_S (8 * 3600)

int dsp_cap_identifier(const char *id, uint32_t version, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s.v%u", id, version);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

char *dsp_cap_time(int64_t ms, char *buf, size_t size)
{
	time_t t = (time_t)(ms / 1000 - (ms % 1000 < 0 ? 1 : 0)) + BEIJING_OFFSET_S;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%S+08:00", &tm);
	return buf;
}

static const char *category(Wf__V1__Hazard h)
{
	int v = (int)h;
	if (v >= 1 && v <= 14)
		return "Met";
	if (v >= 20 && v <= 23)
		return "Met"; /* hydrological: CAP files floods under Met */
	if (v >= 30 && v <= 34)
		return "Geo";
	if (v == WF__V1__HAZARD__HAZARD_HAZMAT || v == WF__V1__HAZARD__HAZARD_EXPLOSION ||
	    v == WF__V1__HAZARD__HAZARD_TOXIC_PLUME)
		return "CBRNE";
	if (v >= 40 && v <= 45)
		return "Fire";
	if (v == WF__V1__HAZARD__HAZARD_TRAFFIC)
		return "Transport";
	if (v == WF__V1__HAZARD__HAZARD_PUBLIC_ORDER)
		return "Security";
	if (v >= 50 && v <= 53)
		return "Safety";
	return "Other";
}

static const char *severity(Wf__V1__Level l)
{
	switch (l) {
	case WF__V1__LEVEL__LEVEL_I:
		return "Extreme";
	case WF__V1__LEVEL__LEVEL_II:
		return "Severe";
	case WF__V1__LEVEL__LEVEL_III:
		return "Moderate";
	case WF__V1__LEVEL__LEVEL_IV:
		return "Minor";
	default:
		return "Unknown";
	}
}

static const char *certainty(Wf__V1__Certainty c)
{
	switch (c) {
	case WF__V1__CERTAINTY__CERTAINTY_OBSERVED:
		return "Observed";
	case WF__V1__CERTAINTY__CERTAINTY_LIKELY:
		return "Likely";
	case WF__V1__CERTAINTY__CERTAINTY_POSSIBLE:
		return "Possible";
	case WF__V1__CERTAINTY__CERTAINTY_UNLIKELY:
		return "Unlikely";
	default:
		return "Unknown";
	}
}

static const char *status(Wf__V1__Status s)
{
	switch (s) {
	case WF__V1__STATUS__STATUS_EXERCISE:
		return "Exercise";
	case WF__V1__STATUS__STATUS_TEST:
		return "Test";
	default:
		return "Actual";
	}
}

static const char *msg_type(Wf__V1__MsgType m)
{
	switch (m) {
	case WF__V1__MSG_TYPE__MSG_TYPE_UPDATE:
		return "Update";
	case WF__V1__MSG_TYPE__MSG_TYPE_CANCEL:
		return "Cancel";
	default:
		return "Alert";
	}
}

/* Appends <NAME>TEXT</NAME> (TEXT escaped by libxml2). */
static xmlNodePtr el(xmlNodePtr parent, xmlNsPtr ns, const char *name, const char *text)
{
	return xmlNewTextChild(parent, ns, BAD_CAST name, BAD_CAST text);
}

static void pair(xmlNodePtr parent, xmlNsPtr ns, const char *name, const char *vn, const char *v)
{
	xmlNodePtr p = xmlNewChild(parent, ns, BAD_CAST name, NULL);
	el(p, ns, "valueName", vn);
	el(p, ns, "value", v);
}

static int render(const struct dsp_cap_options *o, const Wf__V1__Warning *w,
		  const struct dsp_cap_ref *refs, size_t n_refs, xmlDocPtr doc)
{
	char buf[512], tbuf[40];
	bool cancel = w->msg_type == WF__V1__MSG_TYPE__MSG_TYPE_CANCEL;
	const char *hz = wf_hazard_name_zh(w->hazard);
	const char *colour = wf_level_colour_zh(w->level);

	xmlNodePtr alert = xmlNewNode(NULL, BAD_CAST "alert");
	xmlNsPtr ns = xmlNewNs(alert, BAD_CAST CAP_NS, NULL);
	xmlSetNs(alert, ns);
	xmlDocSetRootElement(doc, alert);

	if (dsp_cap_identifier(w->id, w->version, buf, sizeof buf) < 0)
		return -EINVAL;
	if (o->identifier_suffix) {
		size_t bl = strlen(buf);
		if (bl + strlen(o->identifier_suffix) >= sizeof buf)
			return -EINVAL;
		strcat(buf, o->identifier_suffix);
	}
	el(alert, ns, "identifier", buf);
	el(alert, ns, "sender", o->sender && *o->sender ? o->sender : "warnfuse");
	el(alert, ns, "sent", dsp_cap_time(w->sent_ms, tbuf, sizeof tbuf));
	el(alert, ns, "status", status(w->status));
	el(alert, ns, "msgType", msg_type(w->msg_type));
	el(alert, ns, "source", "warnfuse");
	el(alert, ns, "scope", "Public");
	if (n_refs > 0) {
		size_t cap = n_refs * 240 + 1, len = 0;
		char *r = malloc(cap);
		if (!r)
			return -ENOMEM;
		r[0] = '\0';
		for (size_t i = 0; i < n_refs; i++) {
			int k = snprintf(r + len, cap - len, "%s%s,%s,%s", i ? " " : "",
					 o->sender && *o->sender ? o->sender : "warnfuse",
					 refs[i].identifier, dsp_cap_time(refs[i].sent_ms, tbuf, sizeof tbuf));
			if (k > 0 && (size_t)k < cap - len)
				len += (size_t)k;
		}
		el(alert, ns, "references", r);
		free(r);
	}

	xmlNodePtr info = xmlNewChild(alert, ns, BAD_CAST "info", NULL);
	el(info, ns, "language", "zh-CN");
	el(info, ns, "category", category(w->hazard));
	snprintf(buf, sizeof buf, "%s预警", hz ? hz : "");
	el(info, ns, "event", buf);
	el(info, ns, "responseType", cancel ? "AllClear" : "Prepare");
	el(info, ns, "urgency", cancel ? "Past" : w->level == WF__V1__LEVEL__LEVEL_I ? "Immediate" : "Expected");
	el(info, ns, "severity", severity(w->level));
	el(info, ns, "certainty", certainty(w->certainty));
	pair(info, ns, "eventCode", "warnfuse:hazard", wf_hazard_to_string(w->hazard));
	if (w->onset_ms)
		el(info, ns, "onset", dsp_cap_time(w->onset_ms, tbuf, sizeof tbuf));
	el(info, ns, "expires", dsp_cap_time(w->expires_ms, tbuf, sizeof tbuf));
	if (o->sender_name && *o->sender_name)
		el(info, ns, "senderName", o->sender_name);
	if (w->headline && *w->headline) {
		el(info, ns, "headline", w->headline);
	} else {
		snprintf(buf, sizeof buf, "%s%s%s预警%s", cancel ? "解除" : "", hz ? hz : "",
			 colour ? colour : "", "");
		el(info, ns, "headline", buf);
	}
	if (w->description && *w->description)
		el(info, ns, "description", w->description);
	if (w->instruction && *w->instruction)
		el(info, ns, "instruction", w->instruction);
	pair(info, ns, "parameter", "warnfuse:level", wf_level_to_string(w->level));
	pair(info, ns, "parameter", "warnfuse:colour", wf_level_colour(w->level));
	snprintf(buf, sizeof buf, "%s@%u", w->id, w->version);
	pair(info, ns, "parameter", "warnfuse:version", buf);

	/* one area with every region: its names, and each code as geocodes */
	size_t dcap = w->n_regions * (WF_REGION_NAME_MAX + 4) + 1, dlen = 0;
	char *desc = malloc(dcap);
	if (!desc)
		return -ENOMEM;
	desc[0] = '\0';
	for (size_t i = 0; i < w->n_regions; i++) {
		const struct wf_region *rg = o->regions ? wf_region_find(o->regions, w->regions[i]) : NULL;
		const char *name = rg ? wf_region_name(rg) : w->regions[i];
		int k = snprintf(desc + dlen, dcap - dlen, "%s%s", i ? "、" : "", name);
		if (k > 0 && (size_t)k < dcap - dlen)
			dlen += (size_t)k;
	}
	xmlNodePtr area = xmlNewChild(info, ns, BAD_CAST "area", NULL);
	el(area, ns, "areaDesc", desc);
	free(desc);
	for (size_t i = 0; i < w->n_regions; i++) {
		const char *code = w->regions[i];
		pair(area, ns, "geocode", "NBS", code);
		if (strlen(code) == 12 && strcmp(code + 6, "000000") == 0) {
			char six[7];
			memcpy(six, code, 6);
			six[6] = '\0';
			pair(area, ns, "geocode", "GB/T 2260", six);
		}
	}
	return 0;
}

int dsp_cap_render(const struct dsp_cap_options *o, const Wf__V1__Warning *w,
		   const struct dsp_cap_ref *refs, size_t n_refs, char **ret_xml,
		   size_t *ret_len)
{
	if (!o || !w || !ret_xml || !ret_len || (n_refs && !refs))
		return -EINVAL;
	xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
	if (!doc)
		return -ENOMEM;
	int r = render(o, w, refs, n_refs, doc);
	if (r < 0) {
		xmlFreeDoc(doc);
		return r;
	}
	xmlChar *mem = NULL;
	int len = 0;
	xmlDocDumpFormatMemoryEnc(doc, &mem, &len, "UTF-8", 1);
	xmlFreeDoc(doc);
	if (!mem || len <= 0) {
		xmlFree(mem);
		return -ENOMEM;
	}
	char *out = malloc((size_t)len + 1);
	if (!out) {
		xmlFree(mem);
		return -ENOMEM;
	}
	memcpy(out, mem, (size_t)len);
	out[len] = '\0';
	xmlFree(mem);
	*ret_xml = out;
	*ret_len = (size_t)len;
	return 0;
}
