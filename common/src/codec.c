/* codec: see wf/codec.h and docs/protocol.md (validation rules). */
#include "wf/codec.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "utf8.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* The C enum is the proto enum, number for number. */
#define SAME(c, p) _Static_assert((int)WF_REASON_##c == (int)WF__V1__REASON__REASON_##p, #c)
SAME(UNSPECIFIED, UNSPECIFIED);
SAME(TOO_LARGE, TOO_LARGE);
SAME(MALFORMED, MALFORMED);
SAME(MISSING_FIELD, MISSING_FIELD);
SAME(BAD_ENUM, BAD_ENUM);
SAME(BAD_UTF8, BAD_UTF8);
SAME(FIELD_TOO_LONG, FIELD_TOO_LONG);
SAME(BAD_REGION, BAD_REGION);
SAME(UNKNOWN_REGION, UNKNOWN_REGION);
SAME(TIME_SKEW, TIME_SKEW);
SAME(BAD_TIME_ORDER, BAD_TIME_ORDER);
SAME(BAD_POINT, BAD_POINT);
SAME(BAD_NUMBER, BAD_NUMBER);
SAME(AGENCY_MISMATCH, AGENCY_MISMATCH);
SAME(BAD_ID, BAD_ID);
SAME(BAD_REFERENCE, BAD_REFERENCE);
SAME(BAD_TOPIC, BAD_TOPIC);
#undef SAME

static const char *const reason_names[WF_REASON_MAX] = {
	[WF_REASON_UNSPECIFIED] = "unspecified",
	[WF_REASON_TOO_LARGE] = "too_large",
	[WF_REASON_MALFORMED] = "malformed",
	[WF_REASON_MISSING_FIELD] = "missing_field",
	[WF_REASON_BAD_ENUM] = "bad_enum",
	[WF_REASON_BAD_UTF8] = "bad_utf8",
	[WF_REASON_FIELD_TOO_LONG] = "field_too_long",
	[WF_REASON_BAD_REGION] = "bad_region",
	[WF_REASON_UNKNOWN_REGION] = "unknown_region",
	[WF_REASON_TIME_SKEW] = "time_skew",
	[WF_REASON_BAD_TIME_ORDER] = "bad_time_order",
	[WF_REASON_BAD_POINT] = "bad_point",
	[WF_REASON_BAD_NUMBER] = "bad_number",
	[WF_REASON_AGENCY_MISMATCH] = "agency_mismatch",
	[WF_REASON_BAD_ID] = "bad_id",
	[WF_REASON_BAD_REFERENCE] = "bad_reference",
	[WF_REASON_BAD_TOPIC] = "bad_topic",
};

const char *wf_reason_to_string(enum wf_reason reason)
{
	if ((int)reason < 0 || reason >= WF_REASON_MAX)
		return NULL;
	return reason_names[reason];
}

const char *wf_service_status_to_string(Wf__V1__ServiceStatus status)
{
	switch (status) {
	case WF__V1__SERVICE_STATUS__SERVICE_STATUS_UNSPECIFIED:
		return "unspecified";
	case WF__V1__SERVICE_STATUS__SERVICE_ONLINE:
		return "online";
	case WF__V1__SERVICE_STATUS__SERVICE_OFFLINE:
		return "offline";
	default:
		return NULL;
	}
}

void wf_codec_limits_init(struct wf_codec_limits *lim)
{
	*lim = (struct wf_codec_limits){
		.max_payload = 64 * 1024,
		.max_text = 4096,
		.max_label = 256,
		.max_id = 128,
		.max_references = 64,
		.max_regions = 1024,
		.max_event_ids = 256,
		.max_ack_ranges = 1024,
		.max_future_ms = 5 * 60 * 1000,
		.max_past_ms = 7LL * 24 * 3600 * 1000,
		.max_validity_ms = 31LL * 24 * 3600 * 1000,
		.regions = NULL,
	};
}

/* --- validation context and primitives --- */

struct ctx {
	const struct wf_codec_limits *lim;
	int64_t now;
	struct wf_codec_error *err;
	long index; /* >= 0 while checking an element of a repeated field */
};

static void err_clear(struct wf_codec_error *err)
{
	if (err) {
		err->reason = WF_REASON_UNSPECIFIED;
		err->field[0] = '\0';
		err->detail[0] = '\0';
	}
}

__attribute__((format(printf, 4, 5)))
static int fail(struct ctx *c, enum wf_reason reason, const char *field, const char *fmt, ...)
{
	if (c->err) {
		c->err->reason = reason;
		if (c->index >= 0)
			snprintf(c->err->field, sizeof c->err->field, "%.16s[%ld]", field ? field : "",
				 c->index);
		else
			snprintf(c->err->field, sizeof c->err->field, "%s", field ? field : "");
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(c->err->detail, sizeof c->err->detail, fmt, ap);
		va_end(ap);
	}
	return -EBADMSG;
}

static const char *str(const char *s)
{
	return s ? s : "";
}

static int check_enum(struct ctx *c, const ProtobufCEnumDescriptor *d, int v, bool required,
		      const char *field)
{
	if (!protobuf_c_enum_descriptor_get_value(d, v))
		return fail(c, WF_REASON_BAD_ENUM, field, "unknown value %d", v);
	if (required && v == 0)
		return fail(c, WF_REASON_MISSING_FIELD, field, "required");
	return 0;
}

/* Free text or a label: length, then UTF-8 and control characters. */
static int check_text(struct ctx *c, const char *s, size_t max, bool multiline, bool required,
		      const char *field)
{
	size_t n = strlen(str(s));
	if (n == 0)
		return required ? fail(c, WF_REASON_MISSING_FIELD, field, "required") : 0;
	if (n > max)
		return fail(c, WF_REASON_FIELD_TOO_LONG, field, "%zu bytes, limit %zu", n, max);
	if (!wf_utf8_text_ok(s, n, multiline))
		return fail(c, WF_REASON_BAD_UTF8, field,
			    "invalid UTF-8 or control character");
	return 0;
}

static bool id_char(char ch, bool colon)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '.' || ch == '_' || ch == '-' || (colon && ch == ':');
}

/* Length of the id at S ([A-Za-z0-9._:-]) up to a non-id character. */
static size_t id_span(const char *s)
{
	size_t n = 0;
	while (id_char(s[n], true))
		n++;
	return n;
}

/* An event, warning or rule id: [A-Za-z0-9._:-]{1,max_id}. */
static int check_id(struct ctx *c, const char *s, const char *field)
{
	s = str(s);
	size_t n = strlen(s);
	if (n == 0)
		return fail(c, WF_REASON_MISSING_FIELD, field, "required");
	if (n > c->lim->max_id)
		return fail(c, WF_REASON_BAD_ID, field, "%zu bytes, limit %zu", n, c->lim->max_id);
	if (id_span(s) != n)
		return fail(c, WF_REASON_BAD_ID, field, "characters outside [A-Za-z0-9._:-]");
	return 0;
}

/* A producer/service id as used in topics: [A-Za-z0-9._-]{1,64}. */
static int check_topic_id(struct ctx *c, const char *s, bool required, const char *field)
{
	s = str(s);
	if (!*s)
		return required ? fail(c, WF_REASON_MISSING_FIELD, field, "required") : 0;
	if (!wf_topic_id_valid(s))
		return fail(c, WF_REASON_BAD_ID, field, "not [A-Za-z0-9._-]{1,%d}", WF_TOPIC_ID_MAX);
	return 0;
}

static int check_region(struct ctx *c, const char *s, char out[13], const char *field)
{
	s = str(s);
	if (!*s)
		return fail(c, WF_REASON_MISSING_FIELD, field, "required");
	if (wf_region_normalize(s, out) < 0 || wf_region_level_of_code(out) == WF_REGION_LEVEL_INVALID)
		return fail(c, WF_REASON_BAD_REGION, field, "'%.16s' is not a 6 or 12-digit code", s);
	if (c->lim->regions && !wf_region_find(c->lim->regions, out))
		return fail(c, WF_REASON_UNKNOWN_REGION, field, "%s not in the region table", out);
	return 0;
}

/* |a - b| <= max without overflow, for a >= b. */
static bool diff_le(int64_t a, int64_t b, int64_t max)
{
	return max >= 0 && (uint64_t)a - (uint64_t)b <= (uint64_t)max;
}

static int check_skew(struct ctx *c, int64_t t, bool required, const char *field)
{
	if (t == 0)
		return required ? fail(c, WF_REASON_MISSING_FIELD, field, "required") : 0;
	if (t >= c->now ? !diff_le(t, c->now, c->lim->max_future_ms)
			: !diff_le(c->now, t, c->lim->max_past_ms))
		return fail(c, WF_REASON_TIME_SKEW, field, "%lld ms from now (limits +%lld/-%lld)",
			    (long long)((uint64_t)t - (uint64_t)c->now), (long long)c->lim->max_future_ms,
			    (long long)c->lim->max_past_ms);
	return 0;
}

/* END must be after START and at most max_validity after it. */
static int check_order(struct ctx *c, int64_t start, int64_t end, const char *field)
{
	if (end <= start)
		return fail(c, WF_REASON_BAD_TIME_ORDER, field, "not after %lld", (long long)start);
	if (!diff_le(end, start, c->lim->max_validity_ms))
		return fail(c, WF_REASON_BAD_TIME_ORDER, field, "validity over %lld ms",
			    (long long)c->lim->max_validity_ms);
	return 0;
}

static int check_count(struct ctx *c, size_t n, size_t max, const char *field)
{
	if (n > max)
		return fail(c, WF_REASON_FIELD_TOO_LONG, field, "%zu entries, limit %zu", n, max);
	return 0;
}

#define TRY(x)                  \
	do {                    \
		int r_ = (x);   \
		if (r_ < 0)     \
			return r_; \
	} while (0)

/* --- Event --- */

static int event_check(struct ctx *c, const Wf__V1__Event *ev, char region[13])
{
	TRY(check_id(c, ev->id, "id"));
	TRY(check_enum(c, &wf__v1__agency__descriptor, ev->agency, true, "agency"));
	TRY(check_enum(c, &wf__v1__hazard__descriptor, ev->hazard, true, "hazard"));
	TRY(check_region(c, ev->region, region, "region"));
	if (ev->point) {
		double lat = ev->point->lat, lon = ev->point->lon;
		if (!isfinite(lat) || lat < -90.0 || lat > 90.0)
			return fail(c, WF_REASON_BAD_POINT, "point.lat", "not in [-90, 90]");
		if (!isfinite(lon) || lon < -180.0 || lon > 180.0)
			return fail(c, WF_REASON_BAD_POINT, "point.lon", "not in [-180, 180]");
	}
	TRY(check_enum(c, &wf__v1__level__descriptor, ev->level, false, "level"));
	if (ev->measurement) {
		const Wf__V1__Measurement *m = ev->measurement;
		if (!isfinite(m->value))
			return fail(c, WF_REASON_BAD_NUMBER, "measurement.value", "not finite");
		if (!isfinite(m->threshold))
			return fail(c, WF_REASON_BAD_NUMBER, "measurement.threshold", "not finite");
		TRY(check_text(c, m->unit, c->lim->max_label, false, false, "measurement.unit"));
		TRY(check_text(c, m->criterion, c->lim->max_label, false, false,
			       "measurement.criterion"));
	}
	TRY(check_enum(c, &wf__v1__certainty__descriptor, ev->certainty, false, "certainty"));
	TRY(check_skew(c, ev->observed_ms, true, "observed_ms"));
	TRY(check_skew(c, ev->issued_ms, false, "issued_ms"));
	if (ev->expires_ms == 0)
		return fail(c, WF_REASON_MISSING_FIELD, "expires_ms", "required");
	TRY(check_order(c, ev->observed_ms, ev->expires_ms, "expires_ms"));
	TRY(check_enum(c, &wf__v1__status__descriptor, ev->status, true, "status"));
	TRY(check_text(c, ev->text, c->lim->max_text, true, false, "text"));
	TRY(check_topic_id(c, ev->producer, true, "producer"));
	if (ev->seq == 0)
		return fail(c, WF_REASON_MISSING_FIELD, "seq", "required (> 0)");
	TRY(check_enum(c, &wf__v1__msg_type__descriptor, ev->msg_type, true, "msg_type"));
	TRY(check_count(c, ev->n_references, c->lim->max_references, "references"));
	for (size_t i = 0; i < ev->n_references; i++) {
		c->index = (long)i;
		TRY(check_id(c, ev->references[i], "references"));
		if (strcmp(ev->references[i], ev->id) == 0)
			return fail(c, WF_REASON_BAD_REFERENCE, "references",
				    "an event cannot reference itself");
	}
	c->index = -1;
	if (ev->msg_type == WF__V1__MSG_TYPE__MSG_TYPE_ALERT && ev->n_references > 0)
		return fail(c, WF_REASON_BAD_REFERENCE, "references", "an ALERT has no references");
	if (ev->msg_type != WF__V1__MSG_TYPE__MSG_TYPE_ALERT && ev->n_references == 0)
		return fail(c, WF_REASON_BAD_REFERENCE, "references",
			    "an UPDATE or CANCEL needs at least one reference");
	TRY(check_text(c, ev->station, c->lim->max_label, false, false, "station"));
	return 0;
}

/* --- Warning --- */

/* "<agency>:<event id>" */
static int check_event_ref(struct ctx *c, const char *s, const char *field)
{
	s = str(s);
	const char *colon = strchr(s, ':');
	char agency[16];
	size_t an = colon ? (size_t)(colon - s) : 0;
	if (!colon || an == 0 || an >= sizeof agency)
		return fail(c, WF_REASON_BAD_ID, field, "not <agency>:<event id>");
	memcpy(agency, s, an);
	agency[an] = '\0';
	if (wf_agency_from_string(agency) <= 0)
		return fail(c, WF_REASON_BAD_ID, field, "unknown agency '%s'", agency);
	return check_id(c, colon + 1, field);
}

/* "<warning id>@<version>" */
static int check_version_ref(struct ctx *c, const char *s, const char *field)
{
	s = str(s);
	const char *at = strrchr(s, '@');
	if (!at || at == s || at - s > (ptrdiff_t)c->lim->max_id || id_span(s) != (size_t)(at - s))
		return fail(c, WF_REASON_BAD_ID, field, "not <id>@<version>");
	const char *v = at + 1;
	size_t n = strlen(v);
	if (n == 0 || n > 10 || v[0] == '0' || strspn(v, "0123456789") != n ||
	    strtoull(v, NULL, 10) > UINT32_MAX)
		return fail(c, WF_REASON_BAD_ID, field, "bad version in <id>@<version>");
	return 0;
}

/* REGIONS (may be NULL) receives the normalised codes. */
static int warning_check(struct ctx *c, const Wf__V1__Warning *w, char (*regions)[13])
{
	char prev[13] = "", cur[13];

	TRY(check_id(c, w->id, "id"));
	if (w->version == 0)
		return fail(c, WF_REASON_MISSING_FIELD, "version", "required (> 0)");
	TRY(check_enum(c, &wf__v1__msg_type__descriptor, w->msg_type, true, "msg_type"));
	TRY(check_enum(c, &wf__v1__hazard__descriptor, w->hazard, true, "hazard"));
	TRY(check_enum(c, &wf__v1__level__descriptor, w->level, true, "level"));
	if (w->n_regions == 0)
		return fail(c, WF_REASON_MISSING_FIELD, "regions", "at least one region");
	TRY(check_count(c, w->n_regions, c->lim->max_regions, "regions"));
	for (size_t i = 0; i < w->n_regions; i++) {
		c->index = (long)i;
		TRY(check_region(c, w->regions[i], cur, "regions"));
		if (i > 0 && strcmp(prev, cur) >= 0)
			return fail(c, WF_REASON_BAD_REGION, "regions", "regions not sorted or duplicated");
		memcpy(prev, cur, 13);
		if (regions)
			memcpy(regions[i], cur, 13);
	}
	c->index = -1;
	TRY(check_skew(c, w->sent_ms, true, "sent_ms"));
	if (w->expires_ms == 0)
		return fail(c, WF_REASON_MISSING_FIELD, "expires_ms", "required");
	TRY(check_order(c, w->onset_ms ? w->onset_ms : w->sent_ms, w->expires_ms, "expires_ms"));
	TRY(check_text(c, w->headline, c->lim->max_text, false, false, "headline"));
	TRY(check_text(c, w->description, c->lim->max_text, true, false, "description"));
	TRY(check_text(c, w->instruction, c->lim->max_text, true, false, "instruction"));
	TRY(check_count(c, w->n_event_ids, c->lim->max_event_ids, "event_ids"));
	for (size_t i = 0; i < w->n_event_ids; i++) {
		c->index = (long)i;
		TRY(check_event_ref(c, w->event_ids[i], "event_ids"));
	}
	c->index = -1;
	TRY(check_count(c, w->n_rule_ids, c->lim->max_references, "rule_ids"));
	for (size_t i = 0; i < w->n_rule_ids; i++) {
		c->index = (long)i;
		TRY(check_id(c, w->rule_ids[i], "rule_ids"));
	}
	c->index = -1;
	TRY(check_enum(c, &wf__v1__status__descriptor, w->status, true, "status"));
	TRY(check_enum(c, &wf__v1__review_state__descriptor, w->review, true, "review"));
	TRY(check_topic_id(c, w->producer, true, "producer"));
	if (w->seq == 0)
		return fail(c, WF_REASON_MISSING_FIELD, "seq", "required (> 0)");
	TRY(check_enum(c, &wf__v1__certainty__descriptor, w->certainty, false, "certainty"));
	TRY(check_count(c, w->n_references, c->lim->max_references, "references"));
	for (size_t i = 0; i < w->n_references; i++) {
		c->index = (long)i;
		TRY(check_version_ref(c, w->references[i], "references"));
	}
	c->index = -1;
	if (w->msg_type == WF__V1__MSG_TYPE__MSG_TYPE_ALERT && w->n_references > 0)
		return fail(c, WF_REASON_BAD_REFERENCE, "references", "an ALERT has no references");
	if (w->msg_type != WF__V1__MSG_TYPE__MSG_TYPE_ALERT && w->n_references == 0)
		return fail(c, WF_REASON_BAD_REFERENCE, "references",
			    "an UPDATE or CANCEL needs at least one reference");
	return 0;
}

/* --- Ack, ServiceState, DeadLetter --- */

static int ack_check(struct ctx *c, const Wf__V1__Ack *a)
{
	TRY(check_topic_id(c, a->producer, true, "producer"));
	TRY(check_topic_id(c, a->consumer, true, "consumer"));
	if (a->n_ranges == 0)
		return fail(c, WF_REASON_MISSING_FIELD, "ranges", "at least one range");
	TRY(check_count(c, a->n_ranges, c->lim->max_ack_ranges, "ranges"));
	for (size_t i = 0; i < a->n_ranges; i++) {
		const Wf__V1__SeqRange *r = a->ranges[i];
		c->index = (long)i;
		if (!r || r->first == 0)
			return fail(c, WF_REASON_BAD_NUMBER, "ranges", "first must be > 0");
		if (r->last < r->first)
			return fail(c, WF_REASON_BAD_NUMBER, "ranges", "last < first");
	}
	c->index = -1;
	TRY(check_skew(c, a->sent_ms, true, "sent_ms"));
	return 0;
}

static int state_check(struct ctx *c, const Wf__V1__ServiceState *s)
{
	TRY(check_topic_id(c, s->service, true, "service"));
	TRY(check_topic_id(c, s->kind, true, "kind"));
	TRY(check_enum(c, &wf__v1__service_status__descriptor, s->status, true, "status"));
	TRY(check_text(c, s->version, c->lim->max_label, false, false, "version"));
	bool online = s->status == WF__V1__SERVICE_STATUS__SERVICE_ONLINE;
	TRY(check_skew(c, s->heartbeat_ms, online, "heartbeat_ms"));
	if (online && s->started_ms == 0)
		return fail(c, WF_REASON_MISSING_FIELD, "started_ms", "required when online");
	if (s->started_ms && s->heartbeat_ms && s->heartbeat_ms < s->started_ms)
		return fail(c, WF_REASON_BAD_TIME_ORDER, "heartbeat_ms", "before started_ms");
	if (online && s->heartbeat_interval_s == 0)
		return fail(c, WF_REASON_MISSING_FIELD, "heartbeat_interval_s", "required when online");
	TRY(check_enum(c, &wf__v1__agency__descriptor, s->agency, false, "agency"));
	return 0;
}

static int deadletter_check(struct ctx *c, const Wf__V1__DeadLetter *d)
{
	TRY(check_topic_id(c, d->service, true, "service"));
	TRY(check_text(c, d->topic, c->lim->max_label, false, true, "topic"));
	if (d->digest.len == 0)
		return fail(c, WF_REASON_MISSING_FIELD, "digest", "required");
	if (d->digest.len != 32 || !d->digest.data)
		return fail(c, WF_REASON_BAD_ID, "digest", "%zu bytes, a SHA-256 has 32", d->digest.len);
	TRY(check_enum(c, &wf__v1__reason__descriptor, d->reason, true, "reason"));
	TRY(check_text(c, d->detail, c->lim->max_text, true, false, "detail"));
	TRY(check_skew(c, d->received_ms, true, "received_ms"));
	TRY(check_topic_id(c, d->producer, false, "producer"));
	return 0;
}

/* --- dispatch.proto: Approval, DutyNotice, DutyAck, FollowUp, Silence,
 * BroadcastState --- */

static int check_code12(struct ctx *c, const char *s, const char *field)
{
	char out[13];
	s = str(s);
	if (*s && strlen(s) != 12)
		return fail(c, WF_REASON_BAD_REGION, field, "'%.16s' is not a 12-digit code", s);
	return check_region(c, s, out, field);
}

static int approval_check(struct ctx *c, const Wf__V1__Approval *a)
{
	TRY(check_topic_id(c, a->operator_, true, "operator"));
	TRY(check_id(c, a->warning_id, "warning_id"));
	if (a->version == 0)
		return fail(c, WF_REASON_MISSING_FIELD, "version", "required (> 0)");
	TRY(check_enum(c, &wf__v1__decision__descriptor, a->decision, true, "decision"));
	TRY(check_text(c, a->reason, c->lim->max_text, true,
		       a->decision == WF__V1__DECISION__DECISION_REJECT, "reason"));
	TRY(check_skew(c, a->sent_ms, true, "sent_ms"));
	TRY(check_topic_id(c, a->producer, true, "producer"));
	if (a->seq == 0)
		return fail(c, WF_REASON_MISSING_FIELD, "seq", "required (> 0)");
	return 0;
}

static int duty_notice_check(struct ctx *c, const Wf__V1__DutyNotice *d)
{
	TRY(check_topic_id(c, d->station, true, "station"));
	TRY(check_id(c, d->warning_id, "warning_id"));
	if (d->version == 0)
		return fail(c, WF_REASON_MISSING_FIELD, "version", "required (> 0)");
	TRY(check_enum(c, &wf__v1__level__descriptor, d->level, true, "level"));
	TRY(check_enum(c, &wf__v1__hazard__descriptor, d->hazard, true, "hazard"));
	if (d->n_regions == 0)
		return fail(c, WF_REASON_MISSING_FIELD, "regions", "at least one region");
	TRY(check_count(c, d->n_regions, c->lim->max_regions, "regions"));
	for (size_t i = 0; i < d->n_regions; i++) {
		c->index = (long)i;
		TRY(check_code12(c, d->regions[i], "regions"));
	}
	c->index = -1;
	TRY(check_text(c, d->text, c->lim->max_text, true, false, "text"));
	if (d->deadline_ms < 0)
		return fail(c, WF_REASON_BAD_TIME_ORDER, "deadline_ms", "negative");
	TRY(check_enum(c, &wf__v1__notice_kind__descriptor, d->kind, true, "kind"));
	TRY(check_enum(c, &wf__v1__status__descriptor, d->status, true, "status"));
	TRY(check_enum(c, &wf__v1__msg_type__descriptor, d->msg_type, true, "msg_type"));
	TRY(check_topic_id(c, d->escalated_from, false, "escalated_from"));
	TRY(check_topic_id(c, d->producer, true, "producer"));
	TRY(check_skew(c, d->sent_ms, true, "sent_ms"));
	return 0;
}

static int duty_ack_check(struct ctx *c, const Wf__V1__DutyAck *a)
{
	TRY(check_topic_id(c, a->station, true, "station"));
	TRY(check_id(c, a->warning_id, "warning_id"));
	if (a->version == 0)
		return fail(c, WF_REASON_MISSING_FIELD, "version", "required (> 0)");
	TRY(check_text(c, a->operator_, c->lim->max_label, false, true, "operator"));
	TRY(check_skew(c, a->acked_ms, true, "acked_ms"));
	TRY(check_topic_id(c, a->producer, true, "producer"));
	if (a->seq == 0)
		return fail(c, WF_REASON_MISSING_FIELD, "seq", "required (> 0)");
	return 0;
}

static int followup_check(struct ctx *c, const Wf__V1__FollowUp *f)
{
	TRY(check_topic_id(c, f->station, true, "station"));
	TRY(check_id(c, f->warning_id, "warning_id"));
	TRY(check_text(c, f->text, c->lim->max_text, true, true, "text"));
	TRY(check_text(c, f->operator_, c->lim->max_label, false, false, "operator"));
	TRY(check_skew(c, f->sent_ms, true, "sent_ms"));
	TRY(check_topic_id(c, f->producer, true, "producer"));
	if (f->seq == 0)
		return fail(c, WF_REASON_MISSING_FIELD, "seq", "required (> 0)");
	return 0;
}

static int silence_check(struct ctx *c, const Wf__V1__Silence *s)
{
	TRY(check_id(c, s->id, "id"));
	TRY(check_topic_id(c, s->operator_, true, "operator"));
	const char *ch = str(s->channel);
	if (!*ch)
		return fail(c, WF_REASON_MISSING_FIELD, "channel", "required");
	if (strcmp(ch, "broadcast") != 0 && strcmp(ch, "cap") != 0 && strcmp(ch, "sms") != 0)
		return fail(c, WF_REASON_BAD_ID, "channel", "not broadcast, cap or sms");
	const char *rp = str(s->region_prefix);
	size_t n = strlen(rp);
	if (n && n != 2 && n != 4 && n != 6 && n != 9 && n != 12)
		return fail(c, WF_REASON_BAD_REGION, "region_prefix", "%zu digits (2, 4, 6, 9 or 12)", n);
	for (size_t i = 0; i < n; i++)
		if (rp[i] < '0' || rp[i] > '9')
			return fail(c, WF_REASON_BAD_REGION, "region_prefix", "not digits");
	TRY(check_enum(c, &wf__v1__hazard__descriptor, s->hazard, false, "hazard"));
	TRY(check_skew(c, s->sent_ms, true, "sent_ms"));
	if (s->expires_ms == 0)
		return fail(c, WF_REASON_MISSING_FIELD, "expires_ms", "required");
	TRY(check_order(c, s->sent_ms, s->expires_ms, "expires_ms"));
	TRY(check_text(c, s->reason, c->lim->max_label, false, true, "reason"));
	TRY(check_topic_id(c, s->producer, true, "producer"));
	if (s->seq == 0)
		return fail(c, WF_REASON_MISSING_FIELD, "seq", "required (> 0)");
	return 0;
}

static int broadcast_state_check(struct ctx *c, const Wf__V1__BroadcastState *b)
{
	TRY(check_code12(c, b->region, "region"));
	TRY(check_count(c, b->n_active, c->lim->max_regions, "active"));
	for (size_t i = 0; i < b->n_active; i++) {
		const Wf__V1__BroadcastItem *it = b->active[i];
		c->index = (long)i;
		if (!it)
			return fail(c, WF_REASON_MISSING_FIELD, "active", "empty item");
		TRY(check_id(c, it->warning_id, "active.warning_id"));
		if (it->version == 0)
			return fail(c, WF_REASON_MISSING_FIELD, "active.version", "required (> 0)");
		TRY(check_enum(c, &wf__v1__hazard__descriptor, it->hazard, true, "active.hazard"));
		TRY(check_enum(c, &wf__v1__level__descriptor, it->level, true, "active.level"));
		TRY(check_enum(c, &wf__v1__msg_type__descriptor, it->msg_type, true, "active.msg_type"));
		TRY(check_text(c, it->headline, c->lim->max_text, false, false, "active.headline"));
		if (it->expires_ms == 0)
			return fail(c, WF_REASON_MISSING_FIELD, "active.expires_ms", "required");
		TRY(check_count(c, it->n_regions, c->lim->max_regions, "active.regions"));
		for (size_t k = 0; k < it->n_regions; k++)
			TRY(check_code12(c, it->regions[k], "active.regions"));
	}
	c->index = -1;
	TRY(check_skew(c, b->updated_ms, true, "updated_ms"));
	TRY(check_topic_id(c, b->producer, true, "producer"));
	return 0;
}

/* --- wire-level scan ---
 *
 * protobuf-c copies a string field into a NUL-terminated C string, so a
 * string holding a NUL byte would arrive silently truncated. After a
 * successful unpack (so the bytes are well-formed), walk the wire format
 * and reject any string field containing NUL. Returns the field name or
 * NULL. */

static bool varint(const uint8_t *p, size_t len, size_t *i, uint64_t *ret)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 70 && *i < len; shift += 7) {
		uint8_t b = p[(*i)++];
		if (shift < 64)
			v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*ret = v;
			return true;
		}
	}
	return false;
}

static const char *nul_in_strings(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
				  int depth)
{
	size_t i = 0;
	while (i < len) {
		uint64_t tag, v;
		if (!varint(p, len, &i, &tag))
			return NULL;
		switch (tag & 7) {
		case 0:
			if (!varint(p, len, &i, &v))
				return NULL;
			break;
		case 1:
			i += 8;
			break;
		case 5:
			i += 4;
			break;
		case 2: {
			if (!varint(p, len, &i, &v) || v > len - i)
				return NULL;
			const ProtobufCFieldDescriptor *f =
				tag >> 3 <= UINT32_MAX
					? protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3))
					: NULL;
			if (f && f->type == PROTOBUF_C_TYPE_STRING && memchr(p + i, 0, (size_t)v))
				return f->name;
			if (f && f->type == PROTOBUF_C_TYPE_MESSAGE && depth < 8) {
				const char *n = nul_in_strings(f->descriptor, p + i, (size_t)v, depth + 1);
				if (n)
					return n;
			}
			i += (size_t)v;
			break;
		}
		default:
			return NULL;
		}
	}
	return NULL;
}

/* --- generic unpack / pack --- */

static const struct wf_codec_limits *limits_or_default(const struct wf_codec_limits *lim,
						       struct wf_codec_limits *def)
{
	if (lim)
		return lim;
	wf_codec_limits_init(def);
	return def;
}

/* Returns the unpacked message, or NULL with *RET_R set. */

/* protobuf-c 1.4 rejects field number 0 only as the one-byte tag 0x00; as
 * an overlong varint (0x80 0x00) it is kept as an unknown field with tag 0,
 * which packs back as 0x00 and then decodes nowhere (found by fuzzing,
 * docs/proof.md). Any such field, at any depth, makes the message invalid. */
static bool has_field_zero(const ProtobufCMessage *m)
{
	if (m == NULL)
		return false;
	for (unsigned i = 0; i < m->n_unknown_fields; i++)
		if (m->unknown_fields[i].tag == 0)
			return true;
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;
	for (unsigned f = 0; f < d->n_fields; f++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[f];
		if (fd->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(const void *)(base + fd->quantifier_offset);
			ProtobufCMessage *const *v =
				*(ProtobufCMessage *const *const *)(const void *)(base + fd->offset);
			for (size_t k = 0; k < n; k++)
				if (has_field_zero(v[k]))
					return true;
		} else if (has_field_zero(*(const ProtobufCMessage *const *)(const void *)(base +
											   fd->offset))) {
			return true;
		}
	}
	return false;
}

static ProtobufCMessage *unpack_common(const ProtobufCMessageDescriptor *d, const void *data,
				       size_t len, struct ctx *c, int *ret_r)
{
	static const uint8_t empty[1];
	if (!data && len) {
		*ret_r = -EINVAL;
		return NULL;
	}
	if (len > c->lim->max_payload) {
		*ret_r = fail(c, WF_REASON_TOO_LARGE, "", "%zu bytes, limit %zu", len,
			      c->lim->max_payload);
		return NULL;
	}
	const uint8_t *p = data ? data : empty;
	ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, p);
	if (!m) {
		*ret_r = fail(c, WF_REASON_MALFORMED, "", "not a valid %s", d->name);
		return NULL;
	}
	if (has_field_zero(m)) {
		protobuf_c_message_free_unpacked(m, NULL);
		*ret_r = fail(c, WF_REASON_MALFORMED, "", "field number 0 (not valid protobuf)");
		return NULL;
	}
	const char *nul = nul_in_strings(d, p, len, 0);
	if (nul) {
		protobuf_c_message_free_unpacked(m, NULL);
		*ret_r = fail(c, WF_REASON_BAD_UTF8, nul, "NUL byte in string");
		return NULL;
	}
	return m;
}

static int pack_common(const ProtobufCMessage *m, struct ctx *c, uint8_t **ret_buf, size_t *ret_len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	if (n > c->lim->max_payload)
		return fail(c, WF_REASON_TOO_LARGE, "", "%zu bytes packed, limit %zu", n,
			    c->lim->max_payload);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf)
		return -ENOMEM;
	size_t k = protobuf_c_message_pack(m, buf);
	if (k != n) {
		free(buf);
		return fail(c, WF_REASON_MALFORMED, "", "pack size mismatch");
	}
	*ret_buf = buf;
	*ret_len = n;
	return 0;
}

/* Replaces the malloc'd string *S (from protobuf-c's default allocator) by
 * CODE if they differ (a 6-digit code padded to 12). */
static int replace_region(char **s, const char code[13])
{
	if (strcmp(*s, code) == 0)
		return 0;
	char *n = realloc(*s, 13);
	if (!n)
		return -ENOMEM;
	memcpy(n, code, 13);
	*s = n;
	return 0;
}

#define SETUP(err, lim, now)                                              \
	struct wf_codec_limits def_;                                      \
	struct ctx c_ = { limits_or_default((lim), &def_), (now), (err), -1 }; \
	struct ctx *c = &c_;                                              \
	err_clear(err)

/* Event */

int wf_codec_event_validate(const Wf__V1__Event *ev, const struct wf_codec_limits *lim,
			    int64_t now_ms, struct wf_codec_error *ret_err)
{
	char region[13];
	SETUP(ret_err, lim, now_ms);
	if (!ev)
		return -EINVAL;
	return event_check(c, ev, region);
}

int wf_codec_event_unpack(const void *data, size_t len, const struct wf_codec_limits *lim,
			  int64_t now_ms, Wf__V1__Event **ret, struct wf_codec_error *ret_err)
{
	char region[13];
	int r = 0;
	SETUP(ret_err, lim, now_ms);
	if (!ret)
		return -EINVAL;
	Wf__V1__Event *ev = (Wf__V1__Event *)unpack_common(&wf__v1__event__descriptor, data, len, c, &r);
	if (!ev)
		return r;
	r = event_check(c, ev, region);
	if (r == 0)
		r = replace_region(&ev->region, region);
	if (r < 0) {
		wf_codec_event_free(ev);
		return r;
	}
	*ret = ev;
	return 0;
}

int wf_codec_event_pack(const Wf__V1__Event *ev, const struct wf_codec_limits *lim, int64_t now_ms,
			uint8_t **ret_buf, size_t *ret_len, struct wf_codec_error *ret_err)
{
	char region[13];
	SETUP(ret_err, lim, now_ms);
	if (!ev || !ret_buf || !ret_len)
		return -EINVAL;
	TRY(event_check(c, ev, region));
	Wf__V1__Event copy = *ev;
	copy.region = region;
	return pack_common(&copy.base, c, ret_buf, ret_len);
}

Wf__V1__Event *wf_codec_event_free(Wf__V1__Event *ev)
{
	if (ev)
		wf__v1__event__free_unpacked(ev, NULL);
	return NULL;
}

/* Warning */

int wf_codec_warning_validate(const Wf__V1__Warning *w, const struct wf_codec_limits *lim,
			      int64_t now_ms, struct wf_codec_error *ret_err)
{
	SETUP(ret_err, lim, now_ms);
	if (!w)
		return -EINVAL;
	return warning_check(c, w, NULL);
}

int wf_codec_warning_unpack(const void *data, size_t len, const struct wf_codec_limits *lim,
			    int64_t now_ms, Wf__V1__Warning **ret, struct wf_codec_error *ret_err)
{
	char(*regions)[13] = NULL;
	int r = 0;
	SETUP(ret_err, lim, now_ms);
	if (!ret)
		return -EINVAL;
	Wf__V1__Warning *w =
		(Wf__V1__Warning *)unpack_common(&wf__v1__warning__descriptor, data, len, c, &r);
	if (!w)
		return r;
	if (w->n_regions > 0 && w->n_regions <= c->lim->max_regions) {
		regions = malloc(w->n_regions * sizeof *regions);
		if (!regions)
			r = -ENOMEM;
	}
	if (r == 0)
		r = warning_check(c, w, regions);
	for (size_t i = 0; r == 0 && i < w->n_regions; i++)
		r = replace_region(&w->regions[i], regions[i]);
	free(regions);
	if (r < 0) {
		wf_codec_warning_free(w);
		return r;
	}
	*ret = w;
	return 0;
}

int wf_codec_warning_pack(const Wf__V1__Warning *w, const struct wf_codec_limits *lim,
			  int64_t now_ms, uint8_t **ret_buf, size_t *ret_len,
			  struct wf_codec_error *ret_err)
{
	char(*regions)[13] = NULL;
	char **ptrs = NULL;
	int r;
	SETUP(ret_err, lim, now_ms);
	if (!w || !ret_buf || !ret_len)
		return -EINVAL;
	if (w->n_regions > 0 && w->n_regions <= c->lim->max_regions) {
		regions = malloc(w->n_regions * sizeof *regions);
		ptrs = malloc(w->n_regions * sizeof *ptrs);
		if (!regions || !ptrs) {
			r = -ENOMEM;
			goto out;
		}
	}
	r = warning_check(c, w, regions);
	if (r < 0)
		goto out;
	Wf__V1__Warning copy = *w;
	for (size_t i = 0; i < w->n_regions; i++)
		ptrs[i] = regions[i];
	copy.regions = ptrs;
	r = pack_common(&copy.base, c, ret_buf, ret_len);
out:
	free(ptrs);
	free(regions);
	return r;
}

int wf_codec_warning_pack_checked(const Wf__V1__Warning *w, const struct wf_codec_limits *lim,
				  uint8_t **ret_buf, size_t *ret_len,
				  struct wf_codec_error *ret_err)
{
	SETUP(ret_err, lim, 0);
	if (!w || !ret_buf || !ret_len)
		return -EINVAL;
	return pack_common(&w->base, c, ret_buf, ret_len);
}

Wf__V1__Warning *wf_codec_warning_free(Wf__V1__Warning *w)
{
	if (w)
		wf__v1__warning__free_unpacked(w, NULL);
	return NULL;
}

/* Ack, ServiceState, DeadLetter: no normalisation, one pattern. */

#define SIMPLE(T, CT, desc, check, freefn)                                                   \
	int wf_codec_##T##_validate(const CT *m, const struct wf_codec_limits *lim,           \
				    int64_t now_ms, struct wf_codec_error *ret_err)           \
	{                                                                                     \
		SETUP(ret_err, lim, now_ms);                                                  \
		if (!m)                                                                       \
			return -EINVAL;                                                       \
		return check(c, m);                                                           \
	}                                                                                     \
	int wf_codec_##T##_unpack(const void *data, size_t len,                              \
				  const struct wf_codec_limits *lim, int64_t now_ms, CT **ret,   \
				  struct wf_codec_error *ret_err)                                \
	{                                                                                     \
		int r = 0;                                                                    \
		SETUP(ret_err, lim, now_ms);                                                  \
		if (!ret)                                                                     \
			return -EINVAL;                                                       \
		ProtobufCMessage *pm = unpack_common(&desc, data, len, c, &r);                \
		if (!pm)                                                                      \
			return r;                                                             \
		r = check(c, (CT *)pm);                                                       \
		if (r < 0) {                                                                  \
			freefn((CT *)pm, NULL);                                               \
			return r;                                                             \
		}                                                                             \
		*ret = (CT *)pm;                                                              \
		return 0;                                                                     \
	}                                                                                     \
	int wf_codec_##T##_pack(const CT *m, const struct wf_codec_limits *lim, int64_t now_ms, \
				uint8_t **ret_buf, size_t *ret_len,                           \
				struct wf_codec_error *ret_err)                               \
	{                                                                                     \
		SETUP(ret_err, lim, now_ms);                                                  \
		if (!m || !ret_buf || !ret_len)                                               \
			return -EINVAL;                                                       \
		TRY(check(c, m));                                                             \
		return pack_common(&m->base, c, ret_buf, ret_len);                            \
	}                                                                                     \
	CT *wf_codec_##T##_free(CT *m)                                                        \
	{                                                                                     \
		if (m)                                                                        \
			freefn(m, NULL);                                                      \
		return NULL;                                                                  \
	}

SIMPLE(ack, Wf__V1__Ack, wf__v1__ack__descriptor, ack_check, wf__v1__ack__free_unpacked)
SIMPLE(state, Wf__V1__ServiceState, wf__v1__service_state__descriptor, state_check,
       wf__v1__service_state__free_unpacked)
SIMPLE(deadletter, Wf__V1__DeadLetter, wf__v1__dead_letter__descriptor, deadletter_check,
       wf__v1__dead_letter__free_unpacked)
SIMPLE(approval, Wf__V1__Approval, wf__v1__approval__descriptor, approval_check,
       wf__v1__approval__free_unpacked)
SIMPLE(duty_notice, Wf__V1__DutyNotice, wf__v1__duty_notice__descriptor, duty_notice_check,
       wf__v1__duty_notice__free_unpacked)
SIMPLE(duty_ack, Wf__V1__DutyAck, wf__v1__duty_ack__descriptor, duty_ack_check,
       wf__v1__duty_ack__free_unpacked)
SIMPLE(followup, Wf__V1__FollowUp, wf__v1__follow_up__descriptor, followup_check,
       wf__v1__follow_up__free_unpacked)
SIMPLE(silence, Wf__V1__Silence, wf__v1__silence__descriptor, silence_check,
       wf__v1__silence__free_unpacked)
SIMPLE(broadcast_state, Wf__V1__BroadcastState, wf__v1__broadcast_state__descriptor,
       broadcast_state_check, wf__v1__broadcast_state__free_unpacked)

/* --- topic checks --- */

int wf_codec_event_check_topic(const Wf__V1__Event *ev, const struct wf_topic *topic,
			       struct wf_codec_error *ret_err)
{
	struct ctx c_ = { NULL, 0, ret_err, -1 }, *c = &c_;
	err_clear(ret_err);
	if (!ev || !topic)
		return -EINVAL;
	if (topic->kind != WF_TOPIC_EVENT)
		return fail(c, WF_REASON_BAD_TOPIC, "", "not an event topic");
	if (topic->agency != ev->agency)
		return fail(c, WF_REASON_AGENCY_MISMATCH, "agency", "event agency %s, topic agency %s",
			    str(wf_agency_to_string(ev->agency)),
			    str(wf_agency_to_string(topic->agency)));
	const char *r = str(ev->region);
	if (strlen(r) < 6 || strncmp(r, topic->county, 6) != 0)
		return fail(c, WF_REASON_BAD_TOPIC, "region", "region %.12s not under topic county %s",
			    r, topic->county);
	return 0;
}

int wf_codec_warning_check_topic(const Wf__V1__Warning *w, const struct wf_topic *topic,
				 struct wf_codec_error *ret_err)
{
	struct ctx c_ = { NULL, 0, ret_err, -1 }, *c = &c_;
	err_clear(ret_err);
	if (!w || !topic)
		return -EINVAL;
	if (topic->kind != WF_TOPIC_WARNING)
		return fail(c, WF_REASON_BAD_TOPIC, "", "not a warning topic");
	if (topic->hazard != w->hazard)
		return fail(c, WF_REASON_BAD_TOPIC, "hazard", "warning hazard differs from topic");
	for (size_t i = 0; i < w->n_regions; i++) {
		const char *r = str(w->regions[i]);
		if (strlen(r) >= 6 && strncmp(r, topic->county, 6) == 0)
			return 0;
	}
	return fail(c, WF_REASON_BAD_TOPIC, "regions", "no region under topic county %s",
		    topic->county);
}

static int id_topic_check(const char *id, enum wf_topic_kind kind, const char *field,
			  const struct wf_topic *topic, struct wf_codec_error *ret_err)
{
	struct ctx c_ = { NULL, 0, ret_err, -1 }, *c = &c_;
	err_clear(ret_err);
	if (!topic)
		return -EINVAL;
	if (topic->kind != kind)
		return fail(c, WF_REASON_BAD_TOPIC, "", "not a %s topic", wf_topic_kind_to_string(kind));
	if (strcmp(str(id), topic->id) != 0)
		return fail(c, WF_REASON_BAD_TOPIC, field, "%s differs from the topic", field);
	return 0;
}

int wf_codec_ack_check_topic(const Wf__V1__Ack *ack, const struct wf_topic *topic,
			     struct wf_codec_error *ret_err)
{
	if (!ack)
		return -EINVAL;
	return id_topic_check(ack->producer, WF_TOPIC_ACK, "producer", topic, ret_err);
}

int wf_codec_state_check_topic(const Wf__V1__ServiceState *st, const struct wf_topic *topic,
			       struct wf_codec_error *ret_err)
{
	if (!st)
		return -EINVAL;
	return id_topic_check(st->service, WF_TOPIC_STATE, "service", topic, ret_err);
}

int wf_codec_deadletter_check_topic(const Wf__V1__DeadLetter *dl, const struct wf_topic *topic,
				    struct wf_codec_error *ret_err)
{
	if (!dl)
		return -EINVAL;
	return id_topic_check(dl->service, WF_TOPIC_DEADLETTER, "service", topic, ret_err);
}

/* --- dispatch.proto topic checks and the generic control entry --- */

int wf_codec_approval_check_topic(const Wf__V1__Approval *m, const struct wf_topic *topic,
				  struct wf_codec_error *ret_err)
{
	if (!m)
		return -EINVAL;
	return id_topic_check(m->operator_, WF_TOPIC_APPROVAL, "operator", topic, ret_err);
}

int wf_codec_silence_check_topic(const Wf__V1__Silence *m, const struct wf_topic *topic,
				 struct wf_codec_error *ret_err)
{
	if (!m)
		return -EINVAL;
	return id_topic_check(m->operator_, WF_TOPIC_SILENCE, "operator", topic, ret_err);
}

int wf_codec_duty_notice_check_topic(const Wf__V1__DutyNotice *m, const struct wf_topic *topic,
				     struct wf_codec_error *ret_err)
{
	if (!m)
		return -EINVAL;
	return id_topic_check(m->station, WF_TOPIC_DUTY_INBOX, "station", topic, ret_err);
}

int wf_codec_duty_ack_check_topic(const Wf__V1__DutyAck *m, const struct wf_topic *topic,
				  struct wf_codec_error *ret_err)
{
	if (!m)
		return -EINVAL;
	return id_topic_check(m->station, WF_TOPIC_DUTY_ACK, "station", topic, ret_err);
}

int wf_codec_followup_check_topic(const Wf__V1__FollowUp *m, const struct wf_topic *topic,
				  struct wf_codec_error *ret_err)
{
	if (!m)
		return -EINVAL;
	return id_topic_check(m->station, WF_TOPIC_DUTY_FOLLOWUP, "station", topic, ret_err);
}

int wf_codec_broadcast_state_check_topic(const Wf__V1__BroadcastState *m,
					 const struct wf_topic *topic,
					 struct wf_codec_error *ret_err)
{
	struct ctx c_ = { NULL, 0, ret_err, -1 }, *c = &c_;
	err_clear(ret_err);
	if (!m || !topic)
		return -EINVAL;
	if (topic->kind != WF_TOPIC_BROADCAST)
		return fail(c, WF_REASON_BAD_TOPIC, "", "not a broadcast topic");
	const char *r = str(m->region);
	if (strlen(r) != 12 || strncmp(r, topic->county, 6) != 0 || strcmp(r + 6, "000000") != 0)
		return fail(c, WF_REASON_BAD_TOPIC, "region", "region %.12s is not topic county %s",
			    r, topic->county);
	return 0;
}

bool wf_codec_control_kind(enum wf_topic_kind kind)
{
	switch (kind) {
	case WF_TOPIC_APPROVAL:
	case WF_TOPIC_DUTY_INBOX:
	case WF_TOPIC_DUTY_ACK:
	case WF_TOPIC_DUTY_FOLLOWUP:
	case WF_TOPIC_SILENCE:
	case WF_TOPIC_BROADCAST:
		return true;
	default:
		return false;
	}
}

int wf_codec_control_unpack(enum wf_topic_kind kind, const void *data, size_t len,
			    const struct wf_codec_limits *lim, int64_t now_ms,
			    ProtobufCMessage **ret, struct wf_codec_error *ret_err)
{
	if (!ret)
		return -EINVAL;
	switch (kind) {
	case WF_TOPIC_APPROVAL:
		return wf_codec_approval_unpack(data, len, lim, now_ms, (Wf__V1__Approval **)ret,
						ret_err);
	case WF_TOPIC_DUTY_INBOX:
		return wf_codec_duty_notice_unpack(data, len, lim, now_ms,
						   (Wf__V1__DutyNotice **)ret, ret_err);
	case WF_TOPIC_DUTY_ACK:
		return wf_codec_duty_ack_unpack(data, len, lim, now_ms, (Wf__V1__DutyAck **)ret,
						ret_err);
	case WF_TOPIC_DUTY_FOLLOWUP:
		return wf_codec_followup_unpack(data, len, lim, now_ms, (Wf__V1__FollowUp **)ret,
						ret_err);
	case WF_TOPIC_SILENCE:
		return wf_codec_silence_unpack(data, len, lim, now_ms, (Wf__V1__Silence **)ret,
					       ret_err);
	case WF_TOPIC_BROADCAST:
		return wf_codec_broadcast_state_unpack(data, len, lim, now_ms,
						       (Wf__V1__BroadcastState **)ret, ret_err);
	default:
		return -EINVAL;
	}
}

int wf_codec_control_check_topic(enum wf_topic_kind kind, const ProtobufCMessage *m,
				 const struct wf_topic *topic, struct wf_codec_error *ret_err)
{
	switch (kind) {
	case WF_TOPIC_APPROVAL:
		return wf_codec_approval_check_topic((const Wf__V1__Approval *)m, topic, ret_err);
	case WF_TOPIC_DUTY_INBOX:
		return wf_codec_duty_notice_check_topic((const Wf__V1__DutyNotice *)m, topic, ret_err);
	case WF_TOPIC_DUTY_ACK:
		return wf_codec_duty_ack_check_topic((const Wf__V1__DutyAck *)m, topic, ret_err);
	case WF_TOPIC_DUTY_FOLLOWUP:
		return wf_codec_followup_check_topic((const Wf__V1__FollowUp *)m, topic, ret_err);
	case WF_TOPIC_SILENCE:
		return wf_codec_silence_check_topic((const Wf__V1__Silence *)m, topic, ret_err);
	case WF_TOPIC_BROADCAST:
		return wf_codec_broadcast_state_check_topic((const Wf__V1__BroadcastState *)m, topic,
							    ret_err);
	default:
		return -EINVAL;
	}
}

const char *wf_codec_control_producer(enum wf_topic_kind kind, const ProtobufCMessage *m,
				      uint64_t *ret_seq)
{
	uint64_t seq = 0;
	const char *p = NULL;

	if (m) {
		switch (kind) {
		case WF_TOPIC_APPROVAL:
			p = ((const Wf__V1__Approval *)m)->producer;
			seq = ((const Wf__V1__Approval *)m)->seq;
			break;
		case WF_TOPIC_DUTY_ACK:
			p = ((const Wf__V1__DutyAck *)m)->producer;
			seq = ((const Wf__V1__DutyAck *)m)->seq;
			break;
		case WF_TOPIC_DUTY_FOLLOWUP:
			p = ((const Wf__V1__FollowUp *)m)->producer;
			seq = ((const Wf__V1__FollowUp *)m)->seq;
			break;
		case WF_TOPIC_SILENCE:
			p = ((const Wf__V1__Silence *)m)->producer;
			seq = ((const Wf__V1__Silence *)m)->seq;
			break;
		default:
			break;
		}
	}
	if (ret_seq)
		*ret_seq = seq;
	return seq ? p : NULL;
}

ProtobufCMessage *wf_codec_control_free(ProtobufCMessage *m)
{
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
	return NULL;
}

/* --- dead letters --- */

/* Copies IN (LEN bytes, any content) into OUT (SIZE > 0 bytes) as valid
 * single-line UTF-8: malformed bytes and control characters become '?',
 * and the result is cut at a character boundary. */
static void sanitize(const char *in, size_t len, char *out, size_t size)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 1 < size;) {
		size_t k = 1;
		unsigned char ch = (unsigned char)in[i];
		if (ch >= 0x80)
			while (k < 4 && i + k < len && ((unsigned char)in[i + k] & 0xc0) == 0x80)
				k++;
		if (wf_utf8_text_ok(in + i, k, false)) {
			if (o + k + 1 > size)
				break;
			memcpy(out + o, in + i, k);
			o += k;
			i += k;
		} else {
			out[o++] = '?';
			i++;
		}
	}
	out[o] = '\0';
}

int wf_codec_deadletter_make(const char *service, const char *topic, const void *payload,
			     size_t len, const struct wf_codec_error *why, const char *producer,
			     uint64_t seq, int64_t now_ms, uint8_t **ret_buf, size_t *ret_len)
{
	struct wf_codec_limits lim;
	wf_codec_limits_init(&lim);
	char topic_s[257], detail[256], raw[sizeof why->field + sizeof why->detail + 2];
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned md_len = 0;

	if (!wf_topic_id_valid(service) || !why || why->reason <= WF_REASON_UNSPECIFIED ||
	    why->reason >= WF_REASON_MAX || (!payload && len) || !ret_buf || !ret_len)
		return -EINVAL;
	static const uint8_t empty[1];
	if (EVP_Digest(payload ? payload : empty, len, md, &md_len, EVP_sha256(), NULL) != 1 ||
	    md_len != 32)
		return -EIO;
	sanitize(str(topic), strlen(str(topic)), topic_s, sizeof topic_s);
	if (!topic_s[0])
		snprintf(topic_s, sizeof topic_s, "?");
	snprintf(raw, sizeof raw, "%.*s%s%.*s", (int)strnlen(why->field, sizeof why->field),
		 why->field, why->field[0] ? ": " : "", (int)strnlen(why->detail, sizeof why->detail),
		 why->detail);
	sanitize(raw, strlen(raw), detail, sizeof detail);

	Wf__V1__DeadLetter dl = WF__V1__DEAD_LETTER__INIT;
	dl.service = (char *)service;
	dl.topic = topic_s;
	dl.digest.data = md;
	dl.digest.len = 32;
	dl.size = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
	dl.reason = (Wf__V1__Reason)why->reason;
	dl.detail = detail;
	dl.received_ms = now_ms;
	dl.producer = (char *)(wf_topic_id_valid(producer) ? producer : "");
	dl.seq = seq;
	struct wf_codec_error e;
	int r = wf_codec_deadletter_pack(&dl, &lim, now_ms, ret_buf, ret_len, &e);
	return r == -EBADMSG ? -EINVAL : r;
}
