/* topic: the MQTT topic tree of the wire contract (docs/protocol.md), and
 * the lowercase names of the proto enumerations used in topics and logs.
 *
 *   wf/v1/event/<agency>/<pp>/<ppcc>/<ppccdd>      events
 *   wf/v1/warning/<pp>/<ppcc>/<ppccdd>/<hazard>     warning versions
 *   wf/v1/ack/<producer>                            acks to a producer
 *   wf/v1/state/<service>                           retained ServiceState
 *   wf/v1/deadletter/<service>                      dead letters
 *   wf/v1/approval/<operator>                       Approval (operators write)
 *   wf/v1/duty/<station>/inbox                      DutyNotice (dispatcher writes)
 *   wf/v1/duty/<station>/ack                        DutyAck (the station writes)
 *   wf/v1/duty/<station>/followup                   FollowUp (the station writes)
 *   wf/v1/silence/<operator>                        Silence (operators write)
 *   wf/v1/broadcast/<pp>/<ppcc>/<ppccdd>            retained BroadcastState
 *
 * <ppccdd> is the first 6 digits of the message's 12-digit region code (its
 * county, or a coarser unit padded with zeros). Producer and service ids
 * are [A-Za-z0-9._-]{1,64}; so are operator and station ids.
 *
 * Builders write into a caller buffer and return 0, -EINVAL for a bad part
 * or -ENAMETOOLONG if the topic does not fit (the buffer then holds no
 * topic). WF_TOPIC_MAX bytes is always enough. */
#ifndef WF_TOPIC_H
#define WF_TOPIC_H

#include <stdbool.h>
#include <stddef.h>

#include "types.pb-c.h"

#define WF_TOPIC_MAX 128     /* bytes, with the NUL, of any topic built here */
#define WF_TOPIC_ID_MAX 64   /* producer / service id length */

enum wf_topic_kind {
	WF_TOPIC_EVENT = 0,
	WF_TOPIC_WARNING,
	WF_TOPIC_ACK,
	WF_TOPIC_STATE,
	WF_TOPIC_DEADLETTER,
	WF_TOPIC_APPROVAL,      /* id: operator */
	WF_TOPIC_DUTY_INBOX,    /* id: station */
	WF_TOPIC_DUTY_ACK,      /* id: station */
	WF_TOPIC_DUTY_FOLLOWUP, /* id: station */
	WF_TOPIC_SILENCE,       /* id: operator */
	WF_TOPIC_BROADCAST,     /* county */
	WF_TOPIC_KIND_MAX,
	WF_TOPIC_KIND_INVALID = -1,
};

/* A parsed topic. Fields not used by KIND are zero / empty. */
struct wf_topic {
	enum wf_topic_kind kind;
	Wf__V1__Agency agency;      /* EVENT */
	Wf__V1__Hazard hazard;      /* WARNING */
	char county[7];             /* EVENT, WARNING, BROADCAST: <ppccdd> */
	char id[WF_TOPIC_ID_MAX + 1]; /* ACK: producer; STATE, DEADLETTER: service;
				       * APPROVAL, SILENCE: operator; DUTY_*: station */
};

/* "event", "warning", "ack", "state", "deadletter", "approval",
 * "duty_inbox", "duty_ack", "duty_followup", "silence", "broadcast"; NULL
 * otherwise. */
const char *wf_topic_kind_to_string(enum wf_topic_kind kind);

/* True if ID is a valid producer/service id: [A-Za-z0-9._-]{1,64}. */
bool wf_topic_id_valid(const char *id);

/* wf/v1/event/<agency>/<pp>/<ppcc>/<ppccdd> for AGENCY (not UNSPECIFIED)
 * and REGION (6 or 12 digits; its first 6 digits are used). */
int wf_topic_event(char *buf, size_t size, Wf__V1__Agency agency, const char *region);

/* wf/v1/warning/<pp>/<ppcc>/<ppccdd>/<hazard>. */
int wf_topic_warning(char *buf, size_t size, const char *region, Wf__V1__Hazard hazard);

/* wf/v1/ack/<producer>, wf/v1/state/<service>, wf/v1/deadletter/<service>. */
int wf_topic_ack(char *buf, size_t size, const char *producer);
int wf_topic_state(char *buf, size_t size, const char *service);
int wf_topic_deadletter(char *buf, size_t size, const char *service);

/* wf/v1/approval/<operator>, wf/v1/silence/<operator>. */
int wf_topic_approval(char *buf, size_t size, const char *operator_id);
int wf_topic_silence(char *buf, size_t size, const char *operator_id);

/* wf/v1/duty/<station>/inbox|ack|followup: KIND is WF_TOPIC_DUTY_INBOX,
 * _ACK or _FOLLOWUP (else -EINVAL). */
int wf_topic_duty(char *buf, size_t size, const char *station, enum wf_topic_kind kind);

/* wf/v1/broadcast/<pp>/<ppcc>/<ppccdd> of REGION (6 or 12 digits; its
 * county, or the padded coarser unit, as for events). */
int wf_topic_broadcast(char *buf, size_t size, const char *region);

/* Broadcast terminals subscribe by prefix (REGION NULL or "": everywhere):
 *   province 41 -> wf/v1/broadcast/41/#, prefecture 4101 ->
 *   wf/v1/broadcast/41/4101/#, county or finer -> its county's topic. */
int wf_topic_broadcast_filter(char *buf, size_t size, const char *region);

/* Subscription filter for events of AGENCY (AGENCY_UNSPECIFIED = any, '+')
 * within REGION (6 or 12 digits; NULL or "" = everywhere):
 *   province   41             -> wf/v1/event/+/41/#
 *   prefecture 4101           -> wf/v1/event/+/41/4101/#
 *   county     410102         -> wf/v1/event/+/41/4101/410102
 *   township or village       -> its county's topic (finer filtering is the
 *                                subscriber's job: topics stop at the county)
 * Events whose region is coarser than a county are published under a
 * padded county (410100 for 4101, 410000 for 41), which the prefecture and
 * province filters include. */
int wf_topic_event_filter(char *buf, size_t size, Wf__V1__Agency agency, const char *region);

/* Subscription filter for warnings within REGION (as above) of HAZARD
 * (HAZARD_UNSPECIFIED = any):
 *   county 410102, any hazard      -> wf/v1/warning/41/4101/410102/#
 *   prefecture 4101, any hazard    -> wf/v1/warning/41/4101/#
 *   prefecture 4101, rainstorm     -> wf/v1/warning/41/4101/+/rainstorm
 *   everywhere, rainstorm          -> wf/v1/warning/+/+/+/rainstorm
 * The filters without a hazard match the bundles of warnings too, which go
 * to the county topic wf/v1/warning/41/4101/410102 (wf/bundle.h); the ones
 * with a hazard do not: from a producer that bundles, subscribe without a
 * hazard and pick it yourself. */
int wf_topic_warning_filter(char *buf, size_t size, const char *region, Wf__V1__Hazard hazard);

/* Parses a concrete topic (no wildcards). Returns 0 and fills *ret, or
 * -EINVAL for anything that is not exactly one of the shapes above with
 * valid parts (*ret untouched). */
int wf_topic_parse(const char *topic, struct wf_topic *ret);

/* Enum names. _to_string() returns NULL for a value without a name (a
 * number the contract does not define); UNSPECIFIED values are named
 * "unspecified". _from_string() returns the value (>= 0) or -EINVAL.
 *
 * agency: "met", "water", "geo", "fire", "police" (topic tokens)
 * hazard: the enum name without HAZARD_, lowercase ("rainstorm",
 *         "cold_wave", "flash_flood", ...) (topic tokens) */
const char *wf_agency_to_string(Wf__V1__Agency agency);
int wf_agency_from_string(const char *s);
const char *wf_hazard_to_string(Wf__V1__Hazard hazard);
int wf_hazard_from_string(const char *s);
/* Chinese name, e.g. "暴雨" (UTF-8); NULL as above. */
const char *wf_hazard_name_zh(Wf__V1__Hazard hazard);

/* level: "I", "II", "III", "IV", "none". from_string also accepts the
 * colour names. */
const char *wf_level_to_string(Wf__V1__Level level);
int wf_level_from_string(const char *s);
/* "red", "orange", "yellow", "blue" ("none" for LEVEL_NONE). */
const char *wf_level_colour(Wf__V1__Level level);
/* "红色", "橙色", "黄色", "蓝色" ("无" for LEVEL_NONE). */
const char *wf_level_colour_zh(Wf__V1__Level level);

/* "actual", "exercise", "test". */
const char *wf_status_to_string(Wf__V1__Status status);
int wf_status_from_string(const char *s);
/* "observed", "likely", "possible", "unlikely", "unknown". */
const char *wf_certainty_to_string(Wf__V1__Certainty certainty);
int wf_certainty_from_string(const char *s);
/* "alert", "update", "cancel". */
const char *wf_msg_type_to_string(Wf__V1__MsgType msg_type);
int wf_msg_type_from_string(const char *s);
/* "pending", "approved", "rejected", "released", "auto". */
const char *wf_review_to_string(Wf__V1__ReviewState review);
int wf_review_from_string(const char *s);

#endif
