/* codec: pack, unpack and validate the wire messages (the .proto files in proto/).
 *
 * Every message that crosses the bus goes through here, in both
 * directions: a producer must not emit what consumers reject, so pack
 * validates with the same rules as unpack. The rules and every reason are
 * documented in docs/protocol.md.
 *
 * Return values: 0 on success; -EBADMSG when the message was rejected (the
 * struct wf_codec_error says why); -EINVAL for a bad argument; -ENOMEM.
 * On any failure *ret... is untouched and nothing is leaked.
 *
 * Time: every function that checks timestamps takes NOW_MS (Unix epoch ms)
 * from the caller's clock; the codec never reads the system clock. */
#ifndef WF_CODEC_H
#define WF_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control.pb-c.h"
#include "dispatch.pb-c.h"
#include "event.pb-c.h"
#include "types.pb-c.h"
#include "warning.pb-c.h"
#include "wf/region.h"
#include "wf/topic.h"

/* Why a message was rejected. The numbers are those of the proto enum
 * wf.v1.Reason (codec.c asserts it at compile time). */
enum wf_reason {
	WF_REASON_UNSPECIFIED = 0,
	WF_REASON_TOO_LARGE = 1,
	WF_REASON_MALFORMED = 2,
	WF_REASON_MISSING_FIELD = 3,
	WF_REASON_BAD_ENUM = 4,
	WF_REASON_BAD_UTF8 = 5,
	WF_REASON_FIELD_TOO_LONG = 6,
	WF_REASON_BAD_REGION = 7,
	WF_REASON_UNKNOWN_REGION = 8,
	WF_REASON_TIME_SKEW = 9,
	WF_REASON_BAD_TIME_ORDER = 10,
	WF_REASON_BAD_POINT = 11,
	WF_REASON_BAD_NUMBER = 12,
	WF_REASON_AGENCY_MISMATCH = 13,
	WF_REASON_BAD_ID = 14,
	WF_REASON_BAD_REFERENCE = 15,
	WF_REASON_BAD_TOPIC = 16,
	WF_REASON_MAX,
	WF_REASON_INVALID = -1,
};

/* "too_large", "malformed", ... (the proto name without REASON_,
 * lowercase; "unspecified" for 0); NULL for an unknown value. */
const char *wf_reason_to_string(enum wf_reason reason);

/* "online", "offline" ("unspecified" for 0); NULL for an unknown value. */
const char *wf_service_status_to_string(Wf__V1__ServiceStatus status);

/* Receiver (and producer) limits. Initialise with wf_codec_limits_init()
 * and change what you need. The struct is read, never kept. */
struct wf_codec_limits {
	size_t max_payload;      /* bytes of one packed message (64 KiB) */
	size_t max_text;         /* bytes of a free-text field: Event.text, Warning.headline,
				    description, instruction, DeadLetter.detail (4096) */
	size_t max_label;        /* bytes of a short label: unit, criterion, station,
				    kind, version, DeadLetter.topic (256) */
	size_t max_id;           /* bytes of an event/warning/rule id (128) */
	size_t max_references;   /* entries in references and rule_ids (64) */
	size_t max_regions;      /* entries in Warning.regions (1024) */
	size_t max_event_ids;    /* entries in Warning.event_ids (256) */
	size_t max_ack_ranges;   /* entries in Ack.ranges (1024) */
	int64_t max_future_ms;   /* a timestamp may be this far ahead of now (5 min) */
	int64_t max_past_ms;     /* ... and this far behind (7 days) */
	int64_t max_validity_ms; /* expires - observed/onset/sent at most (31 days) */
	/* Region table for membership checks (UNKNOWN_REGION); NULL skips
	 * them (syntax is still checked). Borrowed for the call. */
	const struct wf_region_table *regions;
};

/* Fills LIM with the defaults above (regions NULL). This function can't
 * fail. */
void wf_codec_limits_init(struct wf_codec_limits *lim);

/* Why a message was rejected. FIELD is the (possibly nested/indexed) field
 * name, e.g. "region", "measurement.value", "regions[2]"; DETAIL a short
 * human-readable explanation. Both are NUL-terminated, possibly truncated. */
struct wf_codec_error {
	enum wf_reason reason;
	char field[32];
	char detail[128];
};

/* For every message type T in {event, warning, ack, state, deadletter}:
 *
 * wf_codec_T_unpack(DATA, LEN, LIM, NOW_MS, &ret, &err)
 *   Checks the size (TOO_LARGE), unpacks (MALFORMED), validates. 6-digit
 *   region codes are normalised to 12 digits in the returned message.
 *   On success *ret is the message; free it with wf_codec_T_free().
 *   LIM NULL means the defaults. RET_ERR may be NULL.
 *
 * wf_codec_T_validate(MSG, LIM, NOW_MS, &err)
 *   Validates MSG (not modified; 6-digit regions are accepted).
 *
 * wf_codec_T_pack(MSG, LIM, NOW_MS, &buf, &len, &err)
 *   Validates MSG, then packs it (regions normalised to 12 digits on the
 *   wire; MSG itself is not modified) into a malloc'd *ret_buf of *ret_len
 *   bytes that the caller frees with free(). TOO_LARGE if the packed size
 *   is over LIM->max_payload.
 *
 * wf_codec_T_free(MSG): frees a message from _unpack (NULL is fine),
 *   returns NULL. Only for messages from _unpack. */

int wf_codec_event_unpack(const void *data, size_t len, const struct wf_codec_limits *lim,
			  int64_t now_ms, Wf__V1__Event **ret, struct wf_codec_error *ret_err);
int wf_codec_event_validate(const Wf__V1__Event *ev, const struct wf_codec_limits *lim,
			    int64_t now_ms, struct wf_codec_error *ret_err);
int wf_codec_event_pack(const Wf__V1__Event *ev, const struct wf_codec_limits *lim, int64_t now_ms,
			uint8_t **ret_buf, size_t *ret_len, struct wf_codec_error *ret_err);
Wf__V1__Event *wf_codec_event_free(Wf__V1__Event *ev);

int wf_codec_warning_unpack(const void *data, size_t len, const struct wf_codec_limits *lim,
			    int64_t now_ms, Wf__V1__Warning **ret, struct wf_codec_error *ret_err);
int wf_codec_warning_validate(const Wf__V1__Warning *w, const struct wf_codec_limits *lim,
			      int64_t now_ms, struct wf_codec_error *ret_err);
int wf_codec_warning_pack(const Wf__V1__Warning *w, const struct wf_codec_limits *lim,
			  int64_t now_ms, uint8_t **ret_buf, size_t *ret_len,
			  struct wf_codec_error *ret_err);
/* Packs W as wf_codec_warning_unpack returned it (checked and normalised
 * already) without checking it again: only the size limit (a consumer
 * storing what it received). */
int wf_codec_warning_pack_checked(const Wf__V1__Warning *w, const struct wf_codec_limits *lim,
				  uint8_t **ret_buf, size_t *ret_len,
				  struct wf_codec_error *ret_err);
Wf__V1__Warning *wf_codec_warning_free(Wf__V1__Warning *w);

int wf_codec_ack_unpack(const void *data, size_t len, const struct wf_codec_limits *lim,
			int64_t now_ms, Wf__V1__Ack **ret, struct wf_codec_error *ret_err);
int wf_codec_ack_validate(const Wf__V1__Ack *ack, const struct wf_codec_limits *lim,
			  int64_t now_ms, struct wf_codec_error *ret_err);
int wf_codec_ack_pack(const Wf__V1__Ack *ack, const struct wf_codec_limits *lim, int64_t now_ms,
		      uint8_t **ret_buf, size_t *ret_len, struct wf_codec_error *ret_err);
Wf__V1__Ack *wf_codec_ack_free(Wf__V1__Ack *ack);

int wf_codec_state_unpack(const void *data, size_t len, const struct wf_codec_limits *lim,
			  int64_t now_ms, Wf__V1__ServiceState **ret,
			  struct wf_codec_error *ret_err);
int wf_codec_state_validate(const Wf__V1__ServiceState *st, const struct wf_codec_limits *lim,
			    int64_t now_ms, struct wf_codec_error *ret_err);
int wf_codec_state_pack(const Wf__V1__ServiceState *st, const struct wf_codec_limits *lim,
			int64_t now_ms, uint8_t **ret_buf, size_t *ret_len,
			struct wf_codec_error *ret_err);
Wf__V1__ServiceState *wf_codec_state_free(Wf__V1__ServiceState *st);

int wf_codec_deadletter_unpack(const void *data, size_t len, const struct wf_codec_limits *lim,
			       int64_t now_ms, Wf__V1__DeadLetter **ret,
			       struct wf_codec_error *ret_err);
int wf_codec_deadletter_validate(const Wf__V1__DeadLetter *dl, const struct wf_codec_limits *lim,
				 int64_t now_ms, struct wf_codec_error *ret_err);
int wf_codec_deadletter_pack(const Wf__V1__DeadLetter *dl, const struct wf_codec_limits *lim,
			     int64_t now_ms, uint8_t **ret_buf, size_t *ret_len,
			     struct wf_codec_error *ret_err);
Wf__V1__DeadLetter *wf_codec_deadletter_free(Wf__V1__DeadLetter *dl);

/* The release-workflow and delivery messages of dispatch.proto, same
 * pattern as above: T in {approval, duty_notice, duty_ack, followup,
 * silence, broadcast_state}. Rules (docs/protocol.md):
 *   Approval: operator (id syntax), warning_id (id), version > 0, decision
 *     (not UNSPECIFIED), reason (multi-line text; required for REJECT),
 *     sent_ms (skew), producer (id syntax), seq > 0.
 *   DutyNotice: station, warning_id, version, level (not NONE), hazard,
 *     regions (>= 1, each a 12-digit code, at most max_regions), text
 *     (multi-line), kind (not UNSPECIFIED), status, msg_type, escalated_from
 *     (optional id syntax), producer, sent_ms (skew); deadline_ms >= 0.
 *   DutyAck: station, warning_id, version, operator (label, required),
 *     acked_ms (skew), producer, seq.
 *   FollowUp: station, warning_id, text (multi-line, required), operator
 *     (label, optional), sent_ms (skew), producer, seq.
 *   Silence: id (id syntax), operator, channel (one of "broadcast", "cap",
 *     "sms"), region_prefix ("" or 2/4/6/9/12 digits), hazard (optional),
 *     sent_ms (skew), expires_ms after sent_ms (at most max_validity_ms),
 *     reason (one line, required), producer, seq.
 *   BroadcastState: region (12-digit county-or-coarser code), active (each
 *     item: warning_id, version, hazard, level, msg_type, headline, expires;
 *     at most max_regions items), updated_ms (skew), producer.
 * Region codes in these messages are not normalised: they must already be
 * 12 digits (6 is BAD_REGION). */
#define WF_CODEC_DECLARE(T, CT)                                                                 \
	int wf_codec_##T##_unpack(const void *data, size_t len, const struct wf_codec_limits *lim, \
				  int64_t now_ms, CT **ret, struct wf_codec_error *ret_err);       \
	int wf_codec_##T##_validate(const CT *m, const struct wf_codec_limits *lim, int64_t now_ms, \
				    struct wf_codec_error *ret_err);                               \
	int wf_codec_##T##_pack(const CT *m, const struct wf_codec_limits *lim, int64_t now_ms,   \
				uint8_t **ret_buf, size_t *ret_len, struct wf_codec_error *ret_err); \
	CT *wf_codec_##T##_free(CT *m);                                                            \
	int wf_codec_##T##_check_topic(const CT *m, const struct wf_topic *topic,                  \
				       struct wf_codec_error *ret_err)

WF_CODEC_DECLARE(approval, Wf__V1__Approval);
WF_CODEC_DECLARE(duty_notice, Wf__V1__DutyNotice);
WF_CODEC_DECLARE(duty_ack, Wf__V1__DutyAck);
WF_CODEC_DECLARE(followup, Wf__V1__FollowUp);
WF_CODEC_DECLARE(silence, Wf__V1__Silence);
WF_CODEC_DECLARE(broadcast_state, Wf__V1__BroadcastState);

/* Generic entry for the control messages above by topic kind (APPROVAL,
 * DUTY_INBOX, DUTY_ACK, DUTY_FOLLOWUP, SILENCE, BROADCAST): unpacks and
 * validates like wf_codec_T_unpack; *RET is freed with
 * wf_codec_control_free(). -EINVAL for another kind. */
int wf_codec_control_unpack(enum wf_topic_kind kind, const void *data, size_t len,
			    const struct wf_codec_limits *lim, int64_t now_ms,
			    ProtobufCMessage **ret, struct wf_codec_error *ret_err);
/* wf_codec_T_check_topic for a message of KIND. */
int wf_codec_control_check_topic(enum wf_topic_kind kind, const ProtobufCMessage *m,
				 const struct wf_topic *topic, struct wf_codec_error *ret_err);
/* Producer id (borrowed from M) and sequence number of a control message
 * of KIND; NULL and 0 when the kind carries none (BroadcastState has no
 * seq; DutyNotice neither). This function can't fail. */
const char *wf_codec_control_producer(enum wf_topic_kind kind, const ProtobufCMessage *m,
				      uint64_t *ret_seq);
/* True for the kinds wf_codec_control_unpack() accepts. */
bool wf_codec_control_kind(enum wf_topic_kind kind);
ProtobufCMessage *wf_codec_control_free(ProtobufCMessage *m);

/* Checks a validated event against the topic it arrived on (TOPIC from
 * wf_topic_parse()): BAD_TOPIC unless TOPIC is an event topic whose
 * <ppccdd> is the first 6 digits of the event's region; AGENCY_MISMATCH if
 * the topic's agency differs from the event's. Returns 0 or -EBADMSG. */
int wf_codec_event_check_topic(const Wf__V1__Event *ev, const struct wf_topic *topic,
			       struct wf_codec_error *ret_err);

/* A warning topic must carry the warning's hazard, and its <ppccdd> must
 * be the first 6 digits of at least one of the warning's regions
 * (BAD_TOPIC). */
int wf_codec_warning_check_topic(const Wf__V1__Warning *w, const struct wf_topic *topic,
				 struct wf_codec_error *ret_err);

/* An ack topic must name the ack's producer; a state or dead-letter topic
 * its service (BAD_TOPIC). */
int wf_codec_ack_check_topic(const Wf__V1__Ack *ack, const struct wf_topic *topic,
			     struct wf_codec_error *ret_err);
int wf_codec_state_check_topic(const Wf__V1__ServiceState *st, const struct wf_topic *topic,
			       struct wf_codec_error *ret_err);
int wf_codec_deadletter_check_topic(const Wf__V1__DeadLetter *dl, const struct wf_topic *topic,
				    struct wf_codec_error *ret_err);

/* Builds and packs the DeadLetter that SERVICE (a valid service id)
 * publishes for a rejected PAYLOAD of LEN bytes that arrived on TOPIC
 * (any bytes; control characters and invalid UTF-8 are replaced by '?', and
 * it is truncated to the label limit), rejected for WHY (reason must be
 * set; "field: detail" becomes the detail). PRODUCER (NULL or an invalid
 * id: left empty) and SEQ identify the payload if it was decoded far
 * enough. The digest is the SHA-256 of PAYLOAD. received_ms is NOW_MS.
 * Returns 0 and a malloc'd *ret_buf and *ret_len the caller frees, -EINVAL
 * for bad arguments, -ENOMEM, or -EIO if the digest failed. */
int wf_codec_deadletter_make(const char *service, const char *topic, const void *payload,
			     size_t len, const struct wf_codec_error *why, const char *producer,
			     uint64_t seq, int64_t now_ms, uint8_t **ret_buf, size_t *ret_len);

#endif
