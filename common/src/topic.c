/* topic: see wf/topic.h */
#include "wf/topic.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "wf/region.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* --- enum names --- */

static const char *const agency_names[] = {
	[WF__V1__AGENCY__AGENCY_UNSPECIFIED] = "unspecified",
	[WF__V1__AGENCY__AGENCY_MET] = "met",
	[WF__V1__AGENCY__AGENCY_WATER] = "water",
	[WF__V1__AGENCY__AGENCY_GEO] = "geo",
	[WF__V1__AGENCY__AGENCY_FIRE] = "fire",
	[WF__V1__AGENCY__AGENCY_POLICE] = "police",
};

static const char *const hazard_names[] = {
	[WF__V1__HAZARD__HAZARD_UNSPECIFIED] = "unspecified",
	[WF__V1__HAZARD__HAZARD_TYPHOON] = "typhoon",
	[WF__V1__HAZARD__HAZARD_RAINSTORM] = "rainstorm",
	[WF__V1__HAZARD__HAZARD_SNOWSTORM] = "snowstorm",
	[WF__V1__HAZARD__HAZARD_COLD_WAVE] = "cold_wave",
	[WF__V1__HAZARD__HAZARD_GALE] = "gale",
	[WF__V1__HAZARD__HAZARD_SANDSTORM] = "sandstorm",
	[WF__V1__HAZARD__HAZARD_HEAT] = "heat",
	[WF__V1__HAZARD__HAZARD_DROUGHT] = "drought",
	[WF__V1__HAZARD__HAZARD_LIGHTNING] = "lightning",
	[WF__V1__HAZARD__HAZARD_HAIL] = "hail",
	[WF__V1__HAZARD__HAZARD_FROST] = "frost",
	[WF__V1__HAZARD__HAZARD_FOG] = "fog",
	[WF__V1__HAZARD__HAZARD_HAZE] = "haze",
	[WF__V1__HAZARD__HAZARD_ROAD_ICING] = "road_icing",
	[WF__V1__HAZARD__HAZARD_FLOOD] = "flood",
	[WF__V1__HAZARD__HAZARD_LOW_WATER] = "low_water",
	[WF__V1__HAZARD__HAZARD_RESERVOIR] = "reservoir",
	[WF__V1__HAZARD__HAZARD_FLASH_FLOOD] = "flash_flood",
	[WF__V1__HAZARD__HAZARD_LANDSLIDE] = "landslide",
	[WF__V1__HAZARD__HAZARD_DEBRIS_FLOW] = "debris_flow",
	[WF__V1__HAZARD__HAZARD_COLLAPSE] = "collapse",
	[WF__V1__HAZARD__HAZARD_SUBSIDENCE] = "subsidence",
	[WF__V1__HAZARD__HAZARD_GEO_RISK] = "geo_risk",
	[WF__V1__HAZARD__HAZARD_FOREST_FIRE] = "forest_fire",
	[WF__V1__HAZARD__HAZARD_URBAN_FIRE] = "urban_fire",
	[WF__V1__HAZARD__HAZARD_HAZMAT] = "hazmat",
	[WF__V1__HAZARD__HAZARD_EXPLOSION] = "explosion",
	[WF__V1__HAZARD__HAZARD_FIRE_DANGER] = "fire_danger",
	[WF__V1__HAZARD__HAZARD_HOTSPOT] = "hotspot",
	[WF__V1__HAZARD__HAZARD_CROWD] = "crowd",
	[WF__V1__HAZARD__HAZARD_TRAFFIC] = "traffic",
	[WF__V1__HAZARD__HAZARD_PUBLIC_ORDER] = "public_order",
	[WF__V1__HAZARD__HAZARD_MISSING_PERSONS] = "missing_persons",
	[WF__V1__HAZARD__HAZARD_TOXIC_PLUME] = "toxic_plume",
	[WF__V1__HAZARD__HAZARD_MONITORING_GAP] = "monitoring_gap",
};

static const char *const hazard_names_zh[] = {
	[WF__V1__HAZARD__HAZARD_UNSPECIFIED] = "未指定",
	[WF__V1__HAZARD__HAZARD_TYPHOON] = "台风",
	[WF__V1__HAZARD__HAZARD_RAINSTORM] = "暴雨",
	[WF__V1__HAZARD__HAZARD_SNOWSTORM] = "暴雪",
	[WF__V1__HAZARD__HAZARD_COLD_WAVE] = "寒潮",
	[WF__V1__HAZARD__HAZARD_GALE] = "大风",
	[WF__V1__HAZARD__HAZARD_SANDSTORM] = "沙尘暴",
	[WF__V1__HAZARD__HAZARD_HEAT] = "高温",
	[WF__V1__HAZARD__HAZARD_DROUGHT] = "干旱",
	[WF__V1__HAZARD__HAZARD_LIGHTNING] = "雷电",
	[WF__V1__HAZARD__HAZARD_HAIL] = "冰雹",
	[WF__V1__HAZARD__HAZARD_FROST] = "霜冻",
	[WF__V1__HAZARD__HAZARD_FOG] = "大雾",
	[WF__V1__HAZARD__HAZARD_HAZE] = "霾",
	[WF__V1__HAZARD__HAZARD_ROAD_ICING] = "道路结冰",
	[WF__V1__HAZARD__HAZARD_FLOOD] = "洪水",
	[WF__V1__HAZARD__HAZARD_LOW_WATER] = "枯水",
	[WF__V1__HAZARD__HAZARD_RESERVOIR] = "水库超汛限",
	[WF__V1__HAZARD__HAZARD_FLASH_FLOOD] = "山洪",
	[WF__V1__HAZARD__HAZARD_LANDSLIDE] = "滑坡",
	[WF__V1__HAZARD__HAZARD_DEBRIS_FLOW] = "泥石流",
	[WF__V1__HAZARD__HAZARD_COLLAPSE] = "崩塌",
	[WF__V1__HAZARD__HAZARD_SUBSIDENCE] = "地面塌陷",
	[WF__V1__HAZARD__HAZARD_GEO_RISK] = "地质灾害气象风险",
	[WF__V1__HAZARD__HAZARD_FOREST_FIRE] = "森林(草原)火灾",
	[WF__V1__HAZARD__HAZARD_URBAN_FIRE] = "城市火灾",
	[WF__V1__HAZARD__HAZARD_HAZMAT] = "危化品火灾/泄漏",
	[WF__V1__HAZARD__HAZARD_EXPLOSION] = "爆炸",
	[WF__V1__HAZARD__HAZARD_FIRE_DANGER] = "森林火险",
	[WF__V1__HAZARD__HAZARD_HOTSPOT] = "卫星热点",
	[WF__V1__HAZARD__HAZARD_CROWD] = "人群聚集",
	[WF__V1__HAZARD__HAZARD_TRAFFIC] = "重大交通事故",
	[WF__V1__HAZARD__HAZARD_PUBLIC_ORDER] = "社会治安",
	[WF__V1__HAZARD__HAZARD_MISSING_PERSONS] = "人员失联",
	[WF__V1__HAZARD__HAZARD_TOXIC_PLUME] = "有毒气体扩散",
	[WF__V1__HAZARD__HAZARD_MONITORING_GAP] = "监测中断",
};

static const char *const level_names[] = {
	[WF__V1__LEVEL__LEVEL_NONE] = "none",
	[WF__V1__LEVEL__LEVEL_I] = "I",
	[WF__V1__LEVEL__LEVEL_II] = "II",
	[WF__V1__LEVEL__LEVEL_III] = "III",
	[WF__V1__LEVEL__LEVEL_IV] = "IV",
};

static const char *const level_colours[] = {
	[WF__V1__LEVEL__LEVEL_NONE] = "none",
	[WF__V1__LEVEL__LEVEL_I] = "red",
	[WF__V1__LEVEL__LEVEL_II] = "orange",
	[WF__V1__LEVEL__LEVEL_III] = "yellow",
	[WF__V1__LEVEL__LEVEL_IV] = "blue",
};

static const char *const level_colours_zh[] = {
	[WF__V1__LEVEL__LEVEL_NONE] = "无",
	[WF__V1__LEVEL__LEVEL_I] = "红色",
	[WF__V1__LEVEL__LEVEL_II] = "橙色",
	[WF__V1__LEVEL__LEVEL_III] = "黄色",
	[WF__V1__LEVEL__LEVEL_IV] = "蓝色",
};

static const char *const status_names[] = {
	[WF__V1__STATUS__STATUS_UNSPECIFIED] = "unspecified",
	[WF__V1__STATUS__STATUS_ACTUAL] = "actual",
	[WF__V1__STATUS__STATUS_EXERCISE] = "exercise",
	[WF__V1__STATUS__STATUS_TEST] = "test",
};

static const char *const certainty_names[] = {
	[WF__V1__CERTAINTY__CERTAINTY_UNSPECIFIED] = "unspecified",
	[WF__V1__CERTAINTY__CERTAINTY_OBSERVED] = "observed",
	[WF__V1__CERTAINTY__CERTAINTY_LIKELY] = "likely",
	[WF__V1__CERTAINTY__CERTAINTY_POSSIBLE] = "possible",
	[WF__V1__CERTAINTY__CERTAINTY_UNLIKELY] = "unlikely",
	[WF__V1__CERTAINTY__CERTAINTY_UNKNOWN] = "unknown",
};

static const char *const msg_type_names[] = {
	[WF__V1__MSG_TYPE__MSG_TYPE_UNSPECIFIED] = "unspecified",
	[WF__V1__MSG_TYPE__MSG_TYPE_ALERT] = "alert",
	[WF__V1__MSG_TYPE__MSG_TYPE_UPDATE] = "update",
	[WF__V1__MSG_TYPE__MSG_TYPE_CANCEL] = "cancel",
};

static const char *const review_names[] = {
	[WF__V1__REVIEW_STATE__REVIEW_UNSPECIFIED] = "unspecified",
	[WF__V1__REVIEW_STATE__REVIEW_PENDING] = "pending",
	[WF__V1__REVIEW_STATE__REVIEW_APPROVED] = "approved",
	[WF__V1__REVIEW_STATE__REVIEW_REJECTED] = "rejected",
	[WF__V1__REVIEW_STATE__REVIEW_RELEASED] = "released",
	[WF__V1__REVIEW_STATE__REVIEW_AUTO] = "auto",
};

static const char *name_of(const char *const *table, size_t n, int v)
{
	if (v < 0 || (size_t)v >= n)
		return NULL;
	return table[v];
}

static int value_of(const char *const *table, size_t n, const char *s)
{
	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (table[i] && strcmp(table[i], s) == 0)
			return (int)i;
	return -EINVAL;
}

#define NAMES(fn, type, table)                                            \
	const char *wf_##fn##_to_string(type v)                           \
	{                                                                 \
		return name_of(table, N_ELEMS(table), (int)v);            \
	}                                                                 \
	int wf_##fn##_from_string(const char *s)                          \
	{                                                                 \
		return value_of(table, N_ELEMS(table), s);                \
	}

NAMES(agency, Wf__V1__Agency, agency_names)
NAMES(hazard, Wf__V1__Hazard, hazard_names)
NAMES(status, Wf__V1__Status, status_names)
NAMES(certainty, Wf__V1__Certainty, certainty_names)
NAMES(msg_type, Wf__V1__MsgType, msg_type_names)
NAMES(review, Wf__V1__ReviewState, review_names)

const char *wf_hazard_name_zh(Wf__V1__Hazard hazard)
{
	return name_of(hazard_names_zh, N_ELEMS(hazard_names_zh), (int)hazard);
}

const char *wf_level_to_string(Wf__V1__Level level)
{
	return name_of(level_names, N_ELEMS(level_names), (int)level);
}

int wf_level_from_string(const char *s)
{
	int v = value_of(level_names, N_ELEMS(level_names), s);
	return v >= 0 ? v : value_of(level_colours, N_ELEMS(level_colours), s);
}

const char *wf_level_colour(Wf__V1__Level level)
{
	return name_of(level_colours, N_ELEMS(level_colours), (int)level);
}

const char *wf_level_colour_zh(Wf__V1__Level level)
{
	return name_of(level_colours_zh, N_ELEMS(level_colours_zh), (int)level);
}

/* --- topics --- */

static const char *const kind_names[WF_TOPIC_KIND_MAX] = {
	[WF_TOPIC_EVENT] = "event",
	[WF_TOPIC_WARNING] = "warning",
	[WF_TOPIC_ACK] = "ack",
	[WF_TOPIC_STATE] = "state",
	[WF_TOPIC_DEADLETTER] = "deadletter",
	[WF_TOPIC_APPROVAL] = "approval",
	[WF_TOPIC_DUTY_INBOX] = "duty_inbox",
	[WF_TOPIC_DUTY_ACK] = "duty_ack",
	[WF_TOPIC_DUTY_FOLLOWUP] = "duty_followup",
	[WF_TOPIC_SILENCE] = "silence",
	[WF_TOPIC_BROADCAST] = "broadcast",
};

const char *wf_topic_kind_to_string(enum wf_topic_kind kind)
{
	return name_of(kind_names, N_ELEMS(kind_names), (int)kind);
}

bool wf_topic_id_valid(const char *id)
{
	if (!id)
		return false;
	size_t n = 0;
	for (; id[n]; n++) {
		char c = id[n];
		if (n >= WF_TOPIC_ID_MAX)
			return false;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return n > 0;
}

__attribute__((format(printf, 3, 4)))
static int put(char *buf, size_t size, const char *fmt, ...)
{
	if (!buf || size == 0)
		return -ENAMETOOLONG;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size) {
		buf[0] = '\0';
		return -ENAMETOOLONG;
	}
	return 0;
}

/* Normalizes REGION into CODE; -EINVAL if it is not a usable code. */
static int region_code(const char *region, char code[13], enum wf_region_level *ret_level)
{
	if (wf_region_normalize(region, code) < 0)
		return -EINVAL;
	enum wf_region_level l = wf_region_level_of_code(code);
	if (l == WF_REGION_LEVEL_INVALID)
		return -EINVAL;
	if (ret_level)
		*ret_level = l;
	return 0;
}

static bool agency_token_ok(Wf__V1__Agency a)
{
	return a != WF__V1__AGENCY__AGENCY_UNSPECIFIED && wf_agency_to_string(a) != NULL;
}

static bool hazard_token_ok(Wf__V1__Hazard h)
{
	return h != WF__V1__HAZARD__HAZARD_UNSPECIFIED && wf_hazard_to_string(h) != NULL;
}

int wf_topic_event(char *buf, size_t size, Wf__V1__Agency agency, const char *region)
{
	char c[13];
	if (!agency_token_ok(agency) || region_code(region, c, NULL) < 0)
		return -EINVAL;
	return put(buf, size, "wf/v1/event/%s/%.2s/%.4s/%.6s", wf_agency_to_string(agency), c, c, c);
}

int wf_topic_warning(char *buf, size_t size, const char *region, Wf__V1__Hazard hazard)
{
	char c[13];
	if (!hazard_token_ok(hazard) || region_code(region, c, NULL) < 0)
		return -EINVAL;
	return put(buf, size, "wf/v1/warning/%.2s/%.4s/%.6s/%s", c, c, c, wf_hazard_to_string(hazard));
}

static int id_topic(char *buf, size_t size, const char *kind, const char *id)
{
	if (!wf_topic_id_valid(id))
		return -EINVAL;
	return put(buf, size, "wf/v1/%s/%s", kind, id);
}

int wf_topic_ack(char *buf, size_t size, const char *producer)
{
	return id_topic(buf, size, "ack", producer);
}

int wf_topic_state(char *buf, size_t size, const char *service)
{
	return id_topic(buf, size, "state", service);
}

int wf_topic_deadletter(char *buf, size_t size, const char *service)
{
	return id_topic(buf, size, "deadletter", service);
}

int wf_topic_approval(char *buf, size_t size, const char *operator_id)
{
	return id_topic(buf, size, "approval", operator_id);
}

int wf_topic_silence(char *buf, size_t size, const char *operator_id)
{
	return id_topic(buf, size, "silence", operator_id);
}

static const char *duty_leaf(enum wf_topic_kind kind)
{
	switch (kind) {
	case WF_TOPIC_DUTY_INBOX:
		return "inbox";
	case WF_TOPIC_DUTY_ACK:
		return "ack";
	case WF_TOPIC_DUTY_FOLLOWUP:
		return "followup";
	default:
		return NULL;
	}
}

int wf_topic_duty(char *buf, size_t size, const char *station, enum wf_topic_kind kind)
{
	const char *leaf = duty_leaf(kind);

	if (!leaf || !wf_topic_id_valid(station))
		return -EINVAL;
	return put(buf, size, "wf/v1/duty/%s/%s", station, leaf);
}

int wf_topic_broadcast(char *buf, size_t size, const char *region)
{
	char c[13];
	if (region_code(region, c, NULL) < 0)
		return -EINVAL;
	return put(buf, size, "wf/v1/broadcast/%.2s/%.4s/%.6s", c, c, c);
}

int wf_topic_broadcast_filter(char *buf, size_t size, const char *region)
{
	if (!region || !*region)
		return put(buf, size, "wf/v1/broadcast/#");
	char c[13];
	enum wf_region_level l;
	if (region_code(region, c, &l) < 0)
		return -EINVAL;
	switch (l) {
	case WF_REGION_PROVINCE:
		return put(buf, size, "wf/v1/broadcast/%.2s/#", c);
	case WF_REGION_PREFECTURE:
		return put(buf, size, "wf/v1/broadcast/%.2s/%.4s/#", c, c);
	default:
		return put(buf, size, "wf/v1/broadcast/%.2s/%.4s/%.6s", c, c, c);
	}
}

int wf_topic_event_filter(char *buf, size_t size, Wf__V1__Agency agency, const char *region)
{
	const char *a = "+";
	if (agency != WF__V1__AGENCY__AGENCY_UNSPECIFIED) {
		if (!agency_token_ok(agency))
			return -EINVAL;
		a = wf_agency_to_string(agency);
	}
	if (!region || !*region)
		return strcmp(a, "+") == 0 ? put(buf, size, "wf/v1/event/#")
					   : put(buf, size, "wf/v1/event/%s/#", a);
	char c[13];
	enum wf_region_level l;
	if (region_code(region, c, &l) < 0)
		return -EINVAL;
	switch (l) {
	case WF_REGION_PROVINCE:
		return put(buf, size, "wf/v1/event/%s/%.2s/#", a, c);
	case WF_REGION_PREFECTURE:
		return put(buf, size, "wf/v1/event/%s/%.2s/%.4s/#", a, c, c);
	default:
		return put(buf, size, "wf/v1/event/%s/%.2s/%.4s/%.6s", a, c, c, c);
	}
}

int wf_topic_warning_filter(char *buf, size_t size, const char *region, Wf__V1__Hazard hazard)
{
	const char *h = NULL;
	if (hazard != WF__V1__HAZARD__HAZARD_UNSPECIFIED) {
		if (!hazard_token_ok(hazard))
			return -EINVAL;
		h = wf_hazard_to_string(hazard);
	}
	if (!region || !*region)
		return h ? put(buf, size, "wf/v1/warning/+/+/+/%s", h) : put(buf, size, "wf/v1/warning/#");
	char c[13];
	enum wf_region_level l;
	if (region_code(region, c, &l) < 0)
		return -EINVAL;
	switch (l) {
	case WF_REGION_PROVINCE:
		return h ? put(buf, size, "wf/v1/warning/%.2s/+/+/%s", c, h)
			 : put(buf, size, "wf/v1/warning/%.2s/#", c);
	case WF_REGION_PREFECTURE:
		return h ? put(buf, size, "wf/v1/warning/%.2s/%.4s/+/%s", c, c, h)
			 : put(buf, size, "wf/v1/warning/%.2s/%.4s/#", c, c);
	default:
		return h ? put(buf, size, "wf/v1/warning/%.2s/%.4s/%.6s/%s", c, c, c, h)
			 : put(buf, size, "wf/v1/warning/%.2s/%.4s/%.6s/#", c, c, c);
	}
}

/* Splits TOPIC at '/' into at most MAX segments copied into SEG (each up to
 * 64 bytes). Returns the number of segments or -EINVAL. */
#define SEG_MAX 8
#define SEG_LEN (WF_TOPIC_ID_MAX + 1)
static int split(const char *topic, char seg[SEG_MAX][SEG_LEN])
{
	int n = 0;
	const char *p = topic;
	for (;;) {
		const char *s = strchr(p, '/');
		size_t l = s ? (size_t)(s - p) : strlen(p);
		if (n == SEG_MAX || l == 0 || l >= SEG_LEN)
			return -EINVAL;
		memcpy(seg[n], p, l);
		seg[n][l] = '\0';
		n++;
		if (!s)
			return n;
		p = s + 1;
	}
}

static bool digits_ok(const char *s, size_t n)
{
	if (strlen(s) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* pp / ppcc / ppccdd: digits, each a prefix of the next, pp not 00 */
static bool region_parts_ok(const char *pp, const char *ppcc, const char *ppccdd)
{
	return digits_ok(pp, 2) && digits_ok(ppcc, 4) && digits_ok(ppccdd, 6) &&
	       strcmp(pp, "00") != 0 && strncmp(pp, ppcc, 2) == 0 && strncmp(ppcc, ppccdd, 4) == 0;
}

int wf_topic_parse(const char *topic, struct wf_topic *ret)
{
	char seg[SEG_MAX][SEG_LEN];
	struct wf_topic t;

	if (!topic || !ret || strlen(topic) >= WF_TOPIC_MAX)
		return -EINVAL;
	int n = split(topic, seg);
	if (n < 3 || strcmp(seg[0], "wf") != 0 || strcmp(seg[1], "v1") != 0)
		return -EINVAL;
	memset(&t, 0, sizeof t);
	if (strcmp(seg[2], "event") == 0 && n == 7) {
		int a = wf_agency_from_string(seg[3]);
		if (a <= 0 || !region_parts_ok(seg[4], seg[5], seg[6]))
			return -EINVAL;
		t.kind = WF_TOPIC_EVENT;
		t.agency = (Wf__V1__Agency)a;
		memcpy(t.county, seg[6], 7);
	} else if (strcmp(seg[2], "warning") == 0 && n == 7) {
		int h = wf_hazard_from_string(seg[6]);
		if (h <= 0 || !region_parts_ok(seg[3], seg[4], seg[5]))
			return -EINVAL;
		t.kind = WF_TOPIC_WARNING;
		t.hazard = (Wf__V1__Hazard)h;
		memcpy(t.county, seg[5], 7);
	} else if (n == 4 && (strcmp(seg[2], "ack") == 0 || strcmp(seg[2], "state") == 0 ||
			      strcmp(seg[2], "deadletter") == 0 || strcmp(seg[2], "approval") == 0 ||
			      strcmp(seg[2], "silence") == 0)) {
		if (!wf_topic_id_valid(seg[3]))
			return -EINVAL;
		t.kind = strcmp(seg[2], "ack") == 0        ? WF_TOPIC_ACK
			 : strcmp(seg[2], "state") == 0    ? WF_TOPIC_STATE
			 : strcmp(seg[2], "approval") == 0 ? WF_TOPIC_APPROVAL
			 : strcmp(seg[2], "silence") == 0  ? WF_TOPIC_SILENCE
							   : WF_TOPIC_DEADLETTER;
		memcpy(t.id, seg[3], strlen(seg[3]) + 1);
	} else if (n == 5 && strcmp(seg[2], "duty") == 0) {
		if (!wf_topic_id_valid(seg[3]))
			return -EINVAL;
		if (strcmp(seg[4], "inbox") == 0)
			t.kind = WF_TOPIC_DUTY_INBOX;
		else if (strcmp(seg[4], "ack") == 0)
			t.kind = WF_TOPIC_DUTY_ACK;
		else if (strcmp(seg[4], "followup") == 0)
			t.kind = WF_TOPIC_DUTY_FOLLOWUP;
		else
			return -EINVAL;
		memcpy(t.id, seg[3], strlen(seg[3]) + 1);
	} else if (n == 6 && strcmp(seg[2], "broadcast") == 0) {
		if (!region_parts_ok(seg[3], seg[4], seg[5]))
			return -EINVAL;
		t.kind = WF_TOPIC_BROADCAST;
		memcpy(t.county, seg[5], 7);
	} else {
		return -EINVAL;
	}
	*ret = t;
	return 0;
}
