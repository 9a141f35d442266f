/* Unit tests for common/src/codec.c
 *
 * Every wf_reason except UNSPECIFIED has at least one test below that
 * crafts a bad payload (packed with protobuf-c directly, bypassing the
 * codec's own validation, or by mangling bytes) and asserts that exact
 * reason. Messages are built in static storage: Check forks every test. */
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "wf/codec.h"

#define NOW 1750000000000LL /* 2025-06-15T15:06:40Z */
#define MIN_MS (60 * 1000LL)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS (24 * HOUR_MS)

static struct wf_codec_limits lim;
static Wf__V1__Event ev;
static Wf__V1__Point pt;
static Wf__V1__Measurement meas;
static char *ev_refs[80];

static Wf__V1__Warning w;
static char *w_regions[8];
static char *w_event_ids[4];
static char *w_rule_ids[2];
static char *w_refs[2];

static Wf__V1__Ack ack;
static Wf__V1__SeqRange ranges[2];
static Wf__V1__SeqRange *range_ptrs[2];

static Wf__V1__ServiceState st;

static Wf__V1__DeadLetter dl;
static uint8_t digest[32];

static const char *TEXT = "郑州市气象台2025年6月15日15时发布暴雨橙色预警信号：\n"
			  "预计未来3小时降雨量将达50毫米以上，请注意防范。";

static void setup(void)
{
	wf_codec_limits_init(&lim);

	wf__v1__event__init(&ev);
	wf__v1__point__init(&pt);
	wf__v1__measurement__init(&meas);
	ev.id = "met-20250615-0001";
	ev.agency = WF__V1__AGENCY__AGENCY_MET;
	ev.hazard = WF__V1__HAZARD__HAZARD_RAINSTORM;
	ev.region = "410102000000";
	pt.lat = 34.7472;
	pt.lon = 113.6249;
	ev.point = &pt;
	ev.level = WF__V1__LEVEL__LEVEL_II;
	meas.value = 62.5;
	meas.unit = "mm";
	meas.threshold = 50.0;
	meas.criterion = "rain_3h";
	ev.measurement = &meas;
	ev.certainty = WF__V1__CERTAINTY__CERTAINTY_OBSERVED;
	ev.observed_ms = NOW - MIN_MS;
	ev.issued_ms = NOW - MIN_MS / 2;
	ev.expires_ms = NOW + 6 * HOUR_MS;
	ev.status = WF__V1__STATUS__STATUS_ACTUAL;
	ev.text = (char *)TEXT;
	ev.producer = "wf-met-1";
	ev.seq = 42;
	ev.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_ALERT;
	ev.station = "57083";
	ev.references = ev_refs;
	ev.n_references = 0;

	wf__v1__warning__init(&w);
	w.id = "w-410102-rainstorm-20250615";
	w.version = 1;
	w.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_ALERT;
	w.hazard = WF__V1__HAZARD__HAZARD_RAINSTORM;
	w.level = WF__V1__LEVEL__LEVEL_II;
	w_regions[0] = "410102000000";
	w_regions[1] = "410102001000";
	w.regions = w_regions;
	w.n_regions = 2;
	w.onset_ms = NOW;
	w.expires_ms = NOW + 12 * HOUR_MS;
	w.headline = "中原区暴雨橙色预警";
	w.description = "中原区未来3小时降雨量将达50毫米以上。";
	w.instruction = "停止户外作业；\n远离低洼地带。";
	w_event_ids[0] = "met:met-20250615-0001";
	w_event_ids[1] = "water:h-0042";
	w.event_ids = w_event_ids;
	w.n_event_ids = 2;
	w_rule_ids[0] = "rain-ii";
	w.rule_ids = w_rule_ids;
	w.n_rule_ids = 1;
	w.status = WF__V1__STATUS__STATUS_ACTUAL;
	w.review = WF__V1__REVIEW_STATE__REVIEW_PENDING;
	w.producer = "wf-fusion";
	w.seq = 7;
	w.certainty = WF__V1__CERTAINTY__CERTAINTY_LIKELY;
	w.sent_ms = NOW;
	w.references = w_refs;
	w.n_references = 0;
	w.epoch = 3;

	wf__v1__ack__init(&ack);
	ack.producer = "wf-met-1";
	ack.consumer = "wf-fusion";
	for (int i = 0; i < 2; i++) {
		wf__v1__seq_range__init(&ranges[i]);
		range_ptrs[i] = &ranges[i];
	}
	ranges[0].first = 1;
	ranges[0].last = 10;
	ranges[1].first = 12;
	ranges[1].last = 12;
	ack.ranges = range_ptrs;
	ack.n_ranges = 2;
	ack.sent_ms = NOW;

	wf__v1__service_state__init(&st);
	st.service = "wf-met-1";
	st.kind = "met";
	st.status = WF__V1__SERVICE_STATUS__SERVICE_ONLINE;
	st.version = "0.1.0";
	st.started_ms = NOW - HOUR_MS;
	st.heartbeat_ms = NOW;
	st.heartbeat_interval_s = 30;
	st.pid = 1234;
	st.agency = WF__V1__AGENCY__AGENCY_MET;

	wf__v1__dead_letter__init(&dl);
	memset(digest, 0xab, sizeof digest);
	dl.service = "wf-fusion";
	dl.topic = "wf/v1/event/met/41/4101/410102";
	dl.digest.data = digest;
	dl.digest.len = 32;
	dl.size = 100;
	dl.reason = WF__V1__REASON__REASON_BAD_REGION;
	dl.detail = "region: bad";
	dl.received_ms = NOW;
}

static void teardown(void)
{
}

/* Packs M with protobuf-c directly: no validation. */
static uint8_t *raw(const ProtobufCMessage *m, size_t *len)
{
	*len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(*len + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(protobuf_c_message_pack(m, buf), *len);
	return buf;
}

/* A sentinel that _unpack must leave untouched on failure. */
#define SENTINEL ((void *)&lim)

static void assert_err(int r, const struct wf_codec_error *err, enum wf_reason want,
		       const char *field, const char *what)
{
	ck_assert_msg(r == -EBADMSG, "%s: returned %d (reason %s)", what, r,
		      wf_reason_to_string(err->reason));
	ck_assert_msg(err->reason == want, "%s: reason %s (%s: %s), want %s", what,
		      wf_reason_to_string(err->reason), err->field, err->detail,
		      wf_reason_to_string(want));
	if (field)
		ck_assert_msg(strcmp(err->field, field) == 0, "%s: field '%s' want '%s'", what,
			      err->field, field);
	ck_assert_msg(err->detail[0] != '\0' || want == WF_REASON_UNSPECIFIED, "%s: no detail", what);
}

/* The current EV, packed raw, is rejected by unpack with WANT (and FIELD
 * if set); pack refuses it with the same reason. */
static void expect_event(enum wf_reason want, const char *field)
{
	size_t len;
	uint8_t *buf = raw(&ev.base, &len);
	struct wf_codec_error err;
	Wf__V1__Event *out = SENTINEL;
	int r = wf_codec_event_unpack(buf, len, &lim, NOW, &out, &err);
	assert_err(r, &err, want, field, "event unpack");
	ck_assert_ptr_eq(out, SENTINEL);
	free(buf);

	uint8_t *pbuf = SENTINEL;
	size_t plen = 99;
	r = wf_codec_event_pack(&ev, &lim, NOW, &pbuf, &plen, &err);
	assert_err(r, &err, want, field, "event pack");
	ck_assert_ptr_eq(pbuf, SENTINEL);
	ck_assert_uint_eq(plen, 99);
}

static void expect_warning(enum wf_reason want, const char *field)
{
	size_t len;
	uint8_t *buf = raw(&w.base, &len);
	struct wf_codec_error err;
	Wf__V1__Warning *out = SENTINEL;
	int r = wf_codec_warning_unpack(buf, len, &lim, NOW, &out, &err);
	assert_err(r, &err, want, field, "warning unpack");
	ck_assert_ptr_eq(out, SENTINEL);
	free(buf);
	uint8_t *pbuf = SENTINEL;
	size_t plen = 99;
	r = wf_codec_warning_pack(&w, &lim, NOW, &pbuf, &plen, &err);
	assert_err(r, &err, want, field, "warning pack");
	ck_assert_ptr_eq(pbuf, SENTINEL);
}

static void expect_ack(enum wf_reason want, const char *field)
{
	size_t len;
	uint8_t *buf = raw(&ack.base, &len);
	struct wf_codec_error err;
	Wf__V1__Ack *out = SENTINEL;
	assert_err(wf_codec_ack_unpack(buf, len, &lim, NOW, &out, &err), &err, want, field,
		   "ack unpack");
	ck_assert_ptr_eq(out, SENTINEL);
	free(buf);
	uint8_t *pbuf = SENTINEL;
	size_t plen;
	assert_err(wf_codec_ack_pack(&ack, &lim, NOW, &pbuf, &plen, &err), &err, want, field,
		   "ack pack");
	ck_assert_ptr_eq(pbuf, SENTINEL);
}

static void expect_state(enum wf_reason want, const char *field)
{
	size_t len;
	uint8_t *buf = raw(&st.base, &len);
	struct wf_codec_error err;
	Wf__V1__ServiceState *out = SENTINEL;
	assert_err(wf_codec_state_unpack(buf, len, &lim, NOW, &out, &err), &err, want, field,
		   "state unpack");
	ck_assert_ptr_eq(out, SENTINEL);
	free(buf);
	uint8_t *pbuf = SENTINEL;
	size_t plen;
	assert_err(wf_codec_state_pack(&st, &lim, NOW, &pbuf, &plen, &err), &err, want, field,
		   "state pack");
}

static void expect_deadletter(enum wf_reason want, const char *field)
{
	size_t len;
	uint8_t *buf = raw(&dl.base, &len);
	struct wf_codec_error err;
	Wf__V1__DeadLetter *out = SENTINEL;
	assert_err(wf_codec_deadletter_unpack(buf, len, &lim, NOW, &out, &err), &err, want, field,
		   "deadletter unpack");
	ck_assert_ptr_eq(out, SENTINEL);
	free(buf);
	uint8_t *pbuf = SENTINEL;
	size_t plen;
	assert_err(wf_codec_deadletter_pack(&dl, &lim, NOW, &pbuf, &plen, &err), &err, want, field,
		   "deadletter pack");
}

/* --- the enum --- */

START_TEST(test_reason_enum_matches_proto)
{
	const ProtobufCEnumDescriptor *d = &wf__v1__reason__descriptor;
	ck_assert_uint_eq(d->n_values, WF_REASON_MAX);
	for (unsigned i = 0; i < d->n_values; i++) {
		int v = d->values[i].value;
		const char *s = wf_reason_to_string((enum wf_reason)v);
		ck_assert_ptr_nonnull(s);
		char tok[64];
		size_t k = 0;
		for (const char *p = d->values[i].name + strlen("REASON_"); *p && k < 63; p++)
			tok[k++] = (char)tolower((unsigned char)*p);
		tok[k] = '\0';
		ck_assert_str_eq(s, tok);
	}
	ck_assert_ptr_null(wf_reason_to_string(WF_REASON_MAX));
	ck_assert_ptr_null(wf_reason_to_string(WF_REASON_INVALID));
	ck_assert_str_eq(wf_service_status_to_string(WF__V1__SERVICE_STATUS__SERVICE_ONLINE), "online");
	ck_assert_ptr_null(wf_service_status_to_string((Wf__V1__ServiceStatus)3));
}
END_TEST

/* --- round trips --- */

START_TEST(test_event_round_trip)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	struct wf_codec_error err;
	ck_assert_int_eq(wf_codec_event_pack(&ev, &lim, NOW, &buf, &len, &err), 0);
	ck_assert_int_eq(err.reason, WF_REASON_UNSPECIFIED);
	Wf__V1__Event *out = NULL;
	ck_assert_int_eq(wf_codec_event_unpack(buf, len, &lim, NOW, &out, &err), 0);
	ck_assert_str_eq(out->id, ev.id);
	ck_assert_int_eq(out->agency, ev.agency);
	ck_assert_int_eq(out->hazard, ev.hazard);
	ck_assert_str_eq(out->region, "410102000000");
	ck_assert_double_eq(out->point->lat, pt.lat);
	ck_assert_double_eq(out->measurement->value, 62.5);
	ck_assert_str_eq(out->measurement->unit, "mm");
	ck_assert_int_eq(out->observed_ms, ev.observed_ms);
	ck_assert_int_eq(out->expires_ms, ev.expires_ms);
	ck_assert_str_eq(out->text, TEXT);
	ck_assert_str_eq(out->producer, "wf-met-1");
	ck_assert_uint_eq(out->seq, 42);
	ck_assert_str_eq(out->station, "57083");
	out = wf_codec_event_free(out);
	ck_assert_ptr_null(out);
	free(buf);

	/* an UPDATE with references, NULL limits (defaults), NULL error */
	ev.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_UPDATE;
	ev.id = "met-20250615-0002";
	ev_refs[0] = "met-20250615-0001";
	ev.n_references = 1;
	ev.point = NULL;
	ev.measurement = NULL;
	ck_assert_int_eq(wf_codec_event_pack(&ev, NULL, NOW, &buf, &len, NULL), 0);
	ck_assert_int_eq(wf_codec_event_unpack(buf, len, NULL, NOW, &out, NULL), 0);
	ck_assert_uint_eq(out->n_references, 1);
	ck_assert_str_eq(out->references[0], "met-20250615-0001");
	ck_assert_ptr_null(out->point);
	wf_codec_event_free(out);
	free(buf);
	ck_assert_ptr_null(wf_codec_event_free(NULL));
}
END_TEST

START_TEST(test_event_six_digit_region_normalised)
{
	/* raw 6-digit region on the wire: unpack normalises it */
	ev.region = "410102";
	size_t len;
	uint8_t *buf = raw(&ev.base, &len);
	Wf__V1__Event *out = NULL;
	ck_assert_int_eq(wf_codec_event_unpack(buf, len, &lim, NOW, &out, NULL), 0);
	ck_assert_str_eq(out->region, "410102000000");
	wf_codec_event_free(out);
	free(buf);

	/* pack normalises on the wire and leaves the caller's struct alone */
	ck_assert_int_eq(wf_codec_event_validate(&ev, &lim, NOW, NULL), 0);
	ck_assert_int_eq(wf_codec_event_pack(&ev, &lim, NOW, &buf, &len, NULL), 0);
	ck_assert_str_eq(ev.region, "410102");
	Wf__V1__Event *plain = wf__v1__event__unpack(NULL, len, buf);
	ck_assert_ptr_nonnull(plain);
	ck_assert_str_eq(plain->region, "410102000000");
	wf__v1__event__free_unpacked(plain, NULL);
	free(buf);
}
END_TEST

START_TEST(test_warning_round_trip)
{
	w_regions[0] = "410102"; /* normalised, stays sorted */
	uint8_t *buf = NULL;
	size_t len = 0;
	ck_assert_int_eq(wf_codec_warning_pack(&w, &lim, NOW, &buf, &len, NULL), 0);
	Wf__V1__Warning *out = NULL;
	ck_assert_int_eq(wf_codec_warning_unpack(buf, len, &lim, NOW, &out, NULL), 0);
	ck_assert_str_eq(out->id, w.id);
	ck_assert_uint_eq(out->version, 1);
	ck_assert_uint_eq(out->n_regions, 2);
	ck_assert_str_eq(out->regions[0], "410102000000");
	ck_assert_str_eq(out->regions[1], "410102001000");
	ck_assert_str_eq(out->headline, "中原区暴雨橙色预警");
	ck_assert_str_eq(out->event_ids[1], "water:h-0042");
	ck_assert_uint_eq(out->epoch, 3);
	wf_codec_warning_free(out);
	free(buf);

	/* raw 6-digit regions normalised by unpack */
	w.n_regions = 1;
	size_t rlen;
	uint8_t *rbuf = raw(&w.base, &rlen);
	ck_assert_int_eq(wf_codec_warning_unpack(rbuf, rlen, &lim, NOW, &out, NULL), 0);
	ck_assert_str_eq(out->regions[0], "410102000000");
	wf_codec_warning_free(out);
	free(rbuf);

	/* what unpack returned packs as it is, without a second check: the
	 * same bytes as the checked pack (normalised regions included) */
	rbuf = raw(&w.base, &rlen);
	ck_assert_int_eq(wf_codec_warning_unpack(rbuf, rlen, &lim, NOW, &out, NULL), 0);
	uint8_t *cbuf = NULL, *pbuf = NULL;
	size_t clen = 0, plen = 0;
	ck_assert_int_eq(wf_codec_warning_pack_checked(out, &lim, &cbuf, &clen, NULL), 0);
	ck_assert_int_eq(wf_codec_warning_pack(out, &lim, NOW, &pbuf, &plen, NULL), 0);
	ck_assert_uint_eq(clen, plen);
	ck_assert_int_eq(memcmp(cbuf, pbuf, clen), 0);
	free(cbuf);
	free(pbuf);
	/* the size limit still holds */
	struct wf_codec_limits tiny = lim;
	tiny.max_payload = clen - 1;
	struct wf_codec_error err;
	ck_assert_int_eq(wf_codec_warning_pack_checked(out, &tiny, &cbuf, &clen, &err), -EBADMSG);
	ck_assert_int_eq(err.reason, WF_REASON_TOO_LARGE);
	ck_assert_int_eq(wf_codec_warning_pack_checked(NULL, &lim, &cbuf, &clen, NULL), -EINVAL);
	wf_codec_warning_free(out);
	free(rbuf);

	/* an update */
	w.version = 2;
	w.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_UPDATE;
	w_refs[0] = "w-410102-rainstorm-20250615@1";
	w.n_references = 1;
	ck_assert_int_eq(wf_codec_warning_pack(&w, &lim, NOW, &buf, &len, NULL), 0);
	ck_assert_int_eq(wf_codec_warning_unpack(buf, len, &lim, NOW, &out, NULL), 0);
	ck_assert_str_eq(out->references[0], "w-410102-rainstorm-20250615@1");
	wf_codec_warning_free(out);
	free(buf);
}
END_TEST

START_TEST(test_ack_state_round_trip)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	ck_assert_int_eq(wf_codec_ack_pack(&ack, &lim, NOW, &buf, &len, NULL), 0);
	Wf__V1__Ack *a = NULL;
	ck_assert_int_eq(wf_codec_ack_unpack(buf, len, &lim, NOW, &a, NULL), 0);
	ck_assert_str_eq(a->producer, "wf-met-1");
	ck_assert_uint_eq(a->n_ranges, 2);
	ck_assert_uint_eq(a->ranges[0]->last, 10);
	ck_assert_uint_eq(a->ranges[1]->first, 12);
	wf_codec_ack_free(a);
	free(buf);

	ck_assert_int_eq(wf_codec_state_pack(&st, &lim, NOW, &buf, &len, NULL), 0);
	Wf__V1__ServiceState *s = NULL;
	ck_assert_int_eq(wf_codec_state_unpack(buf, len, &lim, NOW, &s, NULL), 0);
	ck_assert_str_eq(s->service, "wf-met-1");
	ck_assert_int_eq(s->status, WF__V1__SERVICE_STATUS__SERVICE_ONLINE);
	ck_assert_uint_eq(s->heartbeat_interval_s, 30);
	wf_codec_state_free(s);
	free(buf);

	/* the will: OFFLINE with zero times is valid */
	st.status = WF__V1__SERVICE_STATUS__SERVICE_OFFLINE;
	st.started_ms = st.heartbeat_ms = 0;
	st.heartbeat_interval_s = 0;
	ck_assert_int_eq(wf_codec_state_pack(&st, &lim, NOW, &buf, &len, NULL), 0);
	ck_assert_int_eq(wf_codec_state_unpack(buf, len, &lim, NOW, &s, NULL), 0);
	ck_assert_int_eq(s->status, WF__V1__SERVICE_STATUS__SERVICE_OFFLINE);
	wf_codec_state_free(s);
	free(buf);
	ck_assert_ptr_null(wf_codec_state_free(NULL));
	ck_assert_ptr_null(wf_codec_ack_free(NULL));
}
END_TEST

START_TEST(test_deadletter_make_round_trip)
{
	static const char payload[] = "\x0a\x03" "abc garbage \xff\xfe";
	struct wf_codec_error why = { .reason = WF_REASON_BAD_REGION };
	snprintf(why.field, sizeof why.field, "region");
	snprintf(why.detail, sizeof why.detail, "'4101' is not a 6 or 12-digit code");
	uint8_t *buf = NULL;
	size_t len = 0;
	ck_assert_int_eq(wf_codec_deadletter_make("wf-fusion", "wf/v1/event/met/\xff\x01x", payload,
						  sizeof payload - 1, &why, "wf-met-1", 42, NOW, &buf,
						  &len), 0);
	Wf__V1__DeadLetter *d = NULL;
	ck_assert_int_eq(wf_codec_deadletter_unpack(buf, len, &lim, NOW, &d, NULL), 0);
	ck_assert_str_eq(d->service, "wf-fusion");
	ck_assert_str_eq(d->topic, "wf/v1/event/met/??x");
	ck_assert_uint_eq(d->size, sizeof payload - 1);
	ck_assert_int_eq(d->reason, WF__V1__REASON__REASON_BAD_REGION);
	ck_assert_str_eq(d->detail, "region: '4101' is not a 6 or 12-digit code");
	ck_assert_str_eq(d->producer, "wf-met-1");
	ck_assert_uint_eq(d->seq, 42);
	ck_assert_int_eq(d->received_ms, NOW);
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	ck_assert_int_eq(EVP_Digest(payload, sizeof payload - 1, md, &mdlen, EVP_sha256(), NULL), 1);
	ck_assert_uint_eq(d->digest.len, 32);
	ck_assert_int_eq(memcmp(d->digest.data, md, 32), 0);
	/* the well-known SHA-256 of "abc" checks we really use SHA-256 */
	wf_codec_deadletter_free(d);
	free(buf);

	ck_assert_int_eq(wf_codec_deadletter_make("wf-fusion", "t", "abc", 3, &why, NULL, 0, NOW, &buf,
						  &len), 0);
	ck_assert_int_eq(wf_codec_deadletter_unpack(buf, len, &lim, NOW, &d, NULL), 0);
	static const uint8_t abc[32] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
		0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
	};
	ck_assert_int_eq(memcmp(d->digest.data, abc, 32), 0);
	ck_assert_str_eq(d->producer, "");
	wf_codec_deadletter_free(d);
	free(buf);

	/* bad arguments */
	ck_assert_int_eq(wf_codec_deadletter_make("a/b", "t", "x", 1, &why, NULL, 0, NOW, &buf, &len),
			 -EINVAL);
	struct wf_codec_error none = { 0 };
	ck_assert_int_eq(wf_codec_deadletter_make("s", "t", "x", 1, &none, NULL, 0, NOW, &buf, &len),
			 -EINVAL);
	ck_assert_int_eq(wf_codec_deadletter_make("s", "t", NULL, 1, &why, NULL, 0, NOW, &buf, &len),
			 -EINVAL);
}
END_TEST

/* --- one test per reason --- */

START_TEST(test_reason_too_large)
{
	size_t len;
	uint8_t *buf = raw(&ev.base, &len);
	struct wf_codec_error err;
	Wf__V1__Event *out = SENTINEL;
	lim.max_payload = len - 1;
	assert_err(wf_codec_event_unpack(buf, len, &lim, NOW, &out, &err), &err, WF_REASON_TOO_LARGE,
		   "", "unpack");
	ck_assert_ptr_eq(out, SENTINEL);
	uint8_t *p = SENTINEL;
	assert_err(wf_codec_event_pack(&ev, &lim, NOW, &p, &len, &err), &err, WF_REASON_TOO_LARGE, "",
		   "pack");
	ck_assert_ptr_eq(p, SENTINEL);
	lim.max_payload = len;
	ck_assert_int_eq(wf_codec_event_unpack(buf, len, &lim, NOW, &out, &err), 0);
	wf_codec_event_free(out);
	free(buf);
}
END_TEST

START_TEST(test_reason_malformed)
{
	size_t len;
	uint8_t *buf = raw(&ev.base, &len);
	struct wf_codec_error err;
	Wf__V1__Event *out = SENTINEL;
	/* truncated inside the last length-delimited field */
	assert_err(wf_codec_event_unpack(buf, len - 1, &lim, NOW, &out, &err), &err,
		   WF_REASON_MALFORMED, "", "truncated");
	ck_assert_ptr_eq(out, SENTINEL);
	/* a length running past the end */
	static const uint8_t over[] = { 0x0a, 0x7f, 'a', 'b' };
	assert_err(wf_codec_event_unpack(over, sizeof over, &lim, NOW, &out, &err), &err,
		   WF_REASON_MALFORMED, NULL, "overlong length");
	/* a field with wire type 7 */
	static const uint8_t badwt[] = { 0x0f, 0x00 };
	assert_err(wf_codec_event_unpack(badwt, sizeof badwt, &lim, NOW, &out, &err), &err,
		   WF_REASON_MALFORMED, NULL, "wire type 7");
	/* the id field (string) sent as a varint */
	static const uint8_t wrongtype[] = { 0x08, 0x01 };
	assert_err(wf_codec_event_unpack(wrongtype, sizeof wrongtype, &lim, NOW, &out, &err), &err,
		   WF_REASON_MALFORMED, NULL, "wrong wire type");
	ck_assert_ptr_eq(out, SENTINEL);
	/* NULL data with a length is an argument error, not a message */
	ck_assert_int_eq(wf_codec_event_unpack(NULL, 3, &lim, NOW, &out, &err), -EINVAL);
	free(buf);
}
END_TEST

START_TEST(test_reason_missing_field_event)
{
	/* empty payload: the first required field */
	struct wf_codec_error err;
	Wf__V1__Event *out = SENTINEL;
	assert_err(wf_codec_event_unpack("", 0, &lim, NOW, &out, &err), &err,
		   WF_REASON_MISSING_FIELD, "id", "empty");
	ck_assert_ptr_eq(out, SENTINEL);

#define MISSING(field, stmt)                              \
	do {                                              \
		setup();                                  \
		stmt;                                     \
		expect_event(WF_REASON_MISSING_FIELD, field); \
	} while (0)
	MISSING("id", ev.id = "");
	MISSING("agency", ev.agency = WF__V1__AGENCY__AGENCY_UNSPECIFIED);
	MISSING("hazard", ev.hazard = WF__V1__HAZARD__HAZARD_UNSPECIFIED);
	MISSING("region", ev.region = "");
	MISSING("observed_ms", ev.observed_ms = 0);
	MISSING("expires_ms", ev.expires_ms = 0);
	MISSING("status", ev.status = WF__V1__STATUS__STATUS_UNSPECIFIED);
	MISSING("producer", ev.producer = "");
	MISSING("seq", ev.seq = 0);
	MISSING("msg_type", ev.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_UNSPECIFIED);
#undef MISSING
}
END_TEST

START_TEST(test_reason_missing_field_others)
{
	w.level = WF__V1__LEVEL__LEVEL_NONE;
	expect_warning(WF_REASON_MISSING_FIELD, "level");
	setup();
	w.n_regions = 0;
	expect_warning(WF_REASON_MISSING_FIELD, "regions");
	setup();
	w.version = 0;
	expect_warning(WF_REASON_MISSING_FIELD, "version");
	setup();
	w.review = WF__V1__REVIEW_STATE__REVIEW_UNSPECIFIED;
	expect_warning(WF_REASON_MISSING_FIELD, "review");
	setup();
	w.sent_ms = 0;
	expect_warning(WF_REASON_MISSING_FIELD, "sent_ms");

	ack.n_ranges = 0;
	expect_ack(WF_REASON_MISSING_FIELD, "ranges");
	setup();
	ack.consumer = "";
	expect_ack(WF_REASON_MISSING_FIELD, "consumer");

	st.heartbeat_interval_s = 0;
	expect_state(WF_REASON_MISSING_FIELD, "heartbeat_interval_s");
	setup();
	st.heartbeat_ms = 0;
	expect_state(WF_REASON_MISSING_FIELD, "heartbeat_ms");

	dl.digest.len = 0;
	expect_deadletter(WF_REASON_MISSING_FIELD, "digest");
	setup();
	dl.reason = WF__V1__REASON__REASON_UNSPECIFIED;
	expect_deadletter(WF_REASON_MISSING_FIELD, "reason");
}
END_TEST

START_TEST(test_reason_bad_enum)
{
	ev.agency = (Wf__V1__Agency)99;
	expect_event(WF_REASON_BAD_ENUM, "agency");
	setup();
	ev.hazard = (Wf__V1__Hazard)15; /* a gap in the numbering */
	expect_event(WF_REASON_BAD_ENUM, "hazard");
	setup();
	ev.level = (Wf__V1__Level)5;
	expect_event(WF_REASON_BAD_ENUM, "level");
	setup();
	ev.certainty = (Wf__V1__Certainty)-1;
	expect_event(WF_REASON_BAD_ENUM, "certainty");
	setup();
	ev.status = (Wf__V1__Status)4;
	expect_event(WF_REASON_BAD_ENUM, "status");
	setup();
	ev.msg_type = (Wf__V1__MsgType)4;
	expect_event(WF_REASON_BAD_ENUM, "msg_type");
	setup();
	w.review = (Wf__V1__ReviewState)6;
	expect_warning(WF_REASON_BAD_ENUM, "review");
	st.status = (Wf__V1__ServiceStatus)3;
	expect_state(WF_REASON_BAD_ENUM, "status");
	setup();
	st.agency = (Wf__V1__Agency)6;
	expect_state(WF_REASON_BAD_ENUM, "agency");
	dl.reason = (Wf__V1__Reason)17;
	expect_deadletter(WF_REASON_BAD_ENUM, "reason");
}
END_TEST

START_TEST(test_reason_bad_utf8)
{
	ev.text = "abc\xff\xfe";
	expect_event(WF_REASON_BAD_UTF8, "text");
	setup();
	ev.text = "overlong \xc0\xaf";
	expect_event(WF_REASON_BAD_UTF8, "text");
	setup();
	ev.text = "surrogate \xed\xa0\x80";
	expect_event(WF_REASON_BAD_UTF8, "text");
	setup();
	ev.text = "truncated \xe6\x9a";
	expect_event(WF_REASON_BAD_UTF8, "text");
	setup();
	ev.text = "bell \x07";
	expect_event(WF_REASON_BAD_UTF8, "text");
	setup();
	ev.text = "C1 \xc2\x85";
	expect_event(WF_REASON_BAD_UTF8, "text");
	setup();
	ev.station = "two\nlines"; /* a label is one line */
	expect_event(WF_REASON_BAD_UTF8, "station");
	setup();
	meas.unit = "m\tm";
	expect_event(WF_REASON_BAD_UTF8, "measurement.unit");
	setup();
	w.headline = "暴雨\n预警";
	expect_warning(WF_REASON_BAD_UTF8, "headline");
	setup();
	w.description = "\x1b[31m red";
	expect_warning(WF_REASON_BAD_UTF8, "description");
	setup();
	st.version = "1.0\x7f";
	expect_state(WF_REASON_BAD_UTF8, "version");

	/* a NUL byte inside a string on the wire (protobuf-c would silently
	 * truncate it): mangle the packed bytes */
	setup();
	ev.text = "before#after";
	size_t len;
	uint8_t *buf = raw(&ev.base, &len);
	uint8_t *hash = memchr(buf, '#', len);
	ck_assert_ptr_nonnull(hash);
	*hash = '\0';
	struct wf_codec_error err;
	Wf__V1__Event *out = SENTINEL;
	assert_err(wf_codec_event_unpack(buf, len, &lim, NOW, &out, &err), &err, WF_REASON_BAD_UTF8,
		   "text", "NUL in text");
	ck_assert_ptr_eq(out, SENTINEL);
	free(buf);
	/* ... and in a nested message's string */
	meas.unit = "m#m";
	buf = raw(&ev.base, &len);
	hash = memchr(buf, '#', len);
	*hash = '\0';
	assert_err(wf_codec_event_unpack(buf, len, &lim, NOW, &out, &err), &err, WF_REASON_BAD_UTF8,
		   "unit", "NUL in measurement.unit");
	free(buf);

	/* valid multi-line text with tabs passes */
	setup();
	ev.text = "第一行\n\t第二行 ✓ 𝄞";
	ck_assert_int_eq(wf_codec_event_validate(&ev, &lim, NOW, &err), 0);
}
END_TEST

START_TEST(test_reason_field_too_long)
{
	static char text[5000];
	memset(text, 'a', 4097);
	text[4097] = '\0';
	ev.text = text;
	expect_event(WF_REASON_FIELD_TOO_LONG, "text");
	text[4096] = '\0';
	ck_assert_int_eq(wf_codec_event_validate(&ev, &lim, NOW, NULL), 0);

	/* configurable */
	lim.max_text = 100;
	expect_event(WF_REASON_FIELD_TOO_LONG, "text");
	setup();
	static char label[300];
	memset(label, 'x', 257);
	label[257] = '\0';
	ev.station = label;
	expect_event(WF_REASON_FIELD_TOO_LONG, "station");

	setup();
	ev.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_UPDATE;
	for (int i = 0; i < 65; i++)
		ev_refs[i] = "met-1";
	ev.n_references = 65;
	expect_event(WF_REASON_FIELD_TOO_LONG, "references");
	lim.max_references = 65;
	ck_assert_int_eq(wf_codec_event_validate(&ev, &lim, NOW, NULL), 0);

	setup();
	lim.max_regions = 1;
	expect_warning(WF_REASON_FIELD_TOO_LONG, "regions");
	setup();
	lim.max_event_ids = 1;
	expect_warning(WF_REASON_FIELD_TOO_LONG, "event_ids");
	setup();
	lim.max_ack_ranges = 1;
	expect_ack(WF_REASON_FIELD_TOO_LONG, "ranges");
}
END_TEST

START_TEST(test_reason_bad_region)
{
	static const char *bad[] = { "41010", "4101020", "41010200100", "4101020010021", "41010x",
				     "000000", "000000000000", " 410102", "410102\n" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		setup();
		ev.region = (char *)bad[i];
		expect_event(WF_REASON_BAD_REGION, "region");
	}
	setup();
	w_regions[0] = "410102001000";
	w_regions[1] = "410102000000"; /* not sorted */
	expect_warning(WF_REASON_BAD_REGION, "regions[1]");
	setup();
	w_regions[1] = "410102"; /* a duplicate once normalised */
	expect_warning(WF_REASON_BAD_REGION, "regions[1]");
	setup();
	w_regions[1] = "4101";
	expect_warning(WF_REASON_BAD_REGION, "regions[1]");
}
END_TEST

START_TEST(test_reason_unknown_region)
{
	struct wf_region_table *t = NULL;
	ck_assert_int_eq(wf_region_table_load(getenv("WF_REGIONS"), &t, NULL), 0);
	lim.regions = t;
	/* known codes pass, at every level */
	static const char *good[] = { "410000", "410100", "410102", "410102001000", "410102001002",
				      "410171" };
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		ev.region = (char *)good[i];
		ck_assert_msg(wf_codec_event_validate(&ev, &lim, NOW, NULL) == 0, "%s", good[i]);
	}
	ev.region = "419999000000";
	expect_event(WF_REASON_UNKNOWN_REGION, "region");
	ev.region = "410102001999";
	expect_event(WF_REASON_UNKNOWN_REGION, "region");
	w_regions[1] = "410102999000";
	expect_warning(WF_REASON_UNKNOWN_REGION, "regions[1]");
	/* without a table only syntax is checked */
	lim.regions = NULL;
	ev.region = "419999000000";
	ck_assert_int_eq(wf_codec_event_validate(&ev, &lim, NOW, NULL), 0);
	wf_region_table_free(t);
}
END_TEST

START_TEST(test_reason_time_skew)
{
	ev.observed_ms = NOW + 6 * MIN_MS;
	ev.expires_ms = NOW + 7 * HOUR_MS;
	expect_event(WF_REASON_TIME_SKEW, "observed_ms");
	/* configurable */
	lim.max_future_ms = 10 * MIN_MS;
	ck_assert_int_eq(wf_codec_event_validate(&ev, &lim, NOW, NULL), 0);

	setup();
	ev.observed_ms = NOW - 8 * DAY_MS;
	expect_event(WF_REASON_TIME_SKEW, "observed_ms");
	setup();
	ev.observed_ms = NOW - 7 * DAY_MS; /* exactly at the limit */
	ev.expires_ms = NOW;
	ck_assert_int_eq(wf_codec_event_validate(&ev, &lim, NOW, NULL), 0);
	setup();
	ev.issued_ms = NOW + HOUR_MS;
	expect_event(WF_REASON_TIME_SKEW, "issued_ms");
	setup();
	ev.observed_ms = INT64_MIN; /* no overflow */
	expect_event(WF_REASON_TIME_SKEW, "observed_ms");
	setup();
	ev.observed_ms = INT64_MAX;
	expect_event(WF_REASON_TIME_SKEW, "observed_ms");

	w.sent_ms = NOW - 30 * DAY_MS;
	expect_warning(WF_REASON_TIME_SKEW, "sent_ms");
	ack.sent_ms = NOW + HOUR_MS;
	expect_ack(WF_REASON_TIME_SKEW, "sent_ms");
	st.heartbeat_ms = NOW + HOUR_MS;
	expect_state(WF_REASON_TIME_SKEW, "heartbeat_ms");
	dl.received_ms = 1;
	expect_deadletter(WF_REASON_TIME_SKEW, "received_ms");
}
END_TEST

START_TEST(test_reason_bad_time_order)
{
	ev.expires_ms = ev.observed_ms;
	expect_event(WF_REASON_BAD_TIME_ORDER, "expires_ms");
	setup();
	ev.expires_ms = ev.observed_ms - 1;
	expect_event(WF_REASON_BAD_TIME_ORDER, "expires_ms");
	setup();
	ev.expires_ms = ev.observed_ms + 32 * DAY_MS;
	expect_event(WF_REASON_BAD_TIME_ORDER, "expires_ms");
	setup();
	ev.expires_ms = INT64_MAX;
	expect_event(WF_REASON_BAD_TIME_ORDER, "expires_ms");

	w.expires_ms = w.onset_ms - HOUR_MS;
	expect_warning(WF_REASON_BAD_TIME_ORDER, "expires_ms");
	setup();
	st.started_ms = NOW + MIN_MS;
	expect_state(WF_REASON_BAD_TIME_ORDER, "heartbeat_ms");
}
END_TEST

START_TEST(test_reason_bad_point)
{
	pt.lat = 90.5;
	expect_event(WF_REASON_BAD_POINT, "point.lat");
	setup();
	pt.lat = NAN;
	expect_event(WF_REASON_BAD_POINT, "point.lat");
	setup();
	pt.lon = -180.01;
	expect_event(WF_REASON_BAD_POINT, "point.lon");
	setup();
	pt.lon = INFINITY;
	expect_event(WF_REASON_BAD_POINT, "point.lon");
	setup();
	pt.lat = -90.0;
	pt.lon = 180.0;
	ck_assert_int_eq(wf_codec_event_validate(&ev, &lim, NOW, NULL), 0);
}
END_TEST

START_TEST(test_reason_bad_number)
{
	meas.value = NAN;
	expect_event(WF_REASON_BAD_NUMBER, "measurement.value");
	setup();
	meas.threshold = -INFINITY;
	expect_event(WF_REASON_BAD_NUMBER, "measurement.threshold");
	setup();
	ranges[1].first = 13;
	ranges[1].last = 12;
	expect_ack(WF_REASON_BAD_NUMBER, "ranges[1]");
	setup();
	ranges[0].first = 0;
	expect_ack(WF_REASON_BAD_NUMBER, "ranges[0]");
}
END_TEST

START_TEST(test_reason_agency_mismatch_and_bad_topic)
{
	struct wf_topic t;
	struct wf_codec_error err;
	ck_assert_int_eq(wf_topic_parse("wf/v1/event/met/41/4101/410102", &t), 0);
	ck_assert_int_eq(wf_codec_event_check_topic(&ev, &t, &err), 0);

	/* a payload from the water topic claiming to be met */
	ck_assert_int_eq(wf_topic_parse("wf/v1/event/water/41/4101/410102", &t), 0);
	assert_err(wf_codec_event_check_topic(&ev, &t, &err), &err, WF_REASON_AGENCY_MISMATCH,
		   "agency", "agency");

	ck_assert_int_eq(wf_topic_parse("wf/v1/event/met/41/4101/410103", &t), 0);
	assert_err(wf_codec_event_check_topic(&ev, &t, &err), &err, WF_REASON_BAD_TOPIC, "region",
		   "county");
	/* a village event goes on its county's topic */
	ev.region = "410102001002";
	ck_assert_int_eq(wf_topic_parse("wf/v1/event/met/41/4101/410102", &t), 0);
	ck_assert_int_eq(wf_codec_event_check_topic(&ev, &t, &err), 0);

	ck_assert_int_eq(wf_topic_parse("wf/v1/ack/wf-met-1", &t), 0);
	assert_err(wf_codec_event_check_topic(&ev, &t, &err), &err, WF_REASON_BAD_TOPIC, "", "kind");
	ck_assert_int_eq(wf_codec_ack_check_topic(&ack, &t, &err), 0);
	ck_assert_int_eq(wf_topic_parse("wf/v1/ack/wf-water-1", &t), 0);
	assert_err(wf_codec_ack_check_topic(&ack, &t, &err), &err, WF_REASON_BAD_TOPIC, "producer",
		   "ack producer");

	ck_assert_int_eq(wf_topic_parse("wf/v1/warning/41/4101/410102/rainstorm", &t), 0);
	ck_assert_int_eq(wf_codec_warning_check_topic(&w, &t, &err), 0);
	ck_assert_int_eq(wf_topic_parse("wf/v1/warning/41/4101/410102/heat", &t), 0);
	assert_err(wf_codec_warning_check_topic(&w, &t, &err), &err, WF_REASON_BAD_TOPIC, "hazard",
		   "warning hazard");
	ck_assert_int_eq(wf_topic_parse("wf/v1/warning/41/4101/410105/rainstorm", &t), 0);
	assert_err(wf_codec_warning_check_topic(&w, &t, &err), &err, WF_REASON_BAD_TOPIC, "regions",
		   "warning county");

	ck_assert_int_eq(wf_topic_parse("wf/v1/state/wf-met-1", &t), 0);
	ck_assert_int_eq(wf_codec_state_check_topic(&st, &t, &err), 0);
	ck_assert_int_eq(wf_topic_parse("wf/v1/state/wf-met-2", &t), 0);
	assert_err(wf_codec_state_check_topic(&st, &t, &err), &err, WF_REASON_BAD_TOPIC, "service",
		   "state");
	ck_assert_int_eq(wf_topic_parse("wf/v1/deadletter/wf-fusion", &t), 0);
	ck_assert_int_eq(wf_codec_deadletter_check_topic(&dl, &t, &err), 0);
	ck_assert_int_eq(wf_topic_parse("wf/v1/state/wf-fusion", &t), 0);
	assert_err(wf_codec_deadletter_check_topic(&dl, &t, &err), &err, WF_REASON_BAD_TOPIC, "",
		   "deadletter kind");
}
END_TEST

START_TEST(test_reason_bad_id)
{
	ev.id = "met 0001";
	expect_event(WF_REASON_BAD_ID, "id");
	setup();
	ev.id = "met/0001";
	expect_event(WF_REASON_BAD_ID, "id");
	setup();
	static char longid[200];
	memset(longid, 'a', 129);
	longid[129] = '\0';
	ev.id = longid;
	expect_event(WF_REASON_BAD_ID, "id");
	longid[128] = '\0';
	ck_assert_int_eq(wf_codec_event_validate(&ev, &lim, NOW, NULL), 0);
	lim.max_id = 64; /* configurable */
	expect_event(WF_REASON_BAD_ID, "id");
	setup();
	ev.producer = "wf/met";
	expect_event(WF_REASON_BAD_ID, "producer");
	setup();
	ev.producer = "wf:met"; /* ':' is fine in event ids, not in topic ids */
	expect_event(WF_REASON_BAD_ID, "producer");
	setup();
	ev.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_CANCEL;
	ev_refs[0] = "bad ref";
	ev.n_references = 1;
	expect_event(WF_REASON_BAD_ID, "references[0]");

	w.id = "w#1";
	expect_warning(WF_REASON_BAD_ID, "id");
	setup();
	w_event_ids[1] = "rain:h-0042"; /* unknown agency */
	expect_warning(WF_REASON_BAD_ID, "event_ids[1]");
	setup();
	w_event_ids[0] = "met-20250615-0001"; /* no agency */
	expect_warning(WF_REASON_BAD_ID, "event_ids[0]");
	setup();
	w_rule_ids[0] = "rain ii";
	expect_warning(WF_REASON_BAD_ID, "rule_ids[0]");
	static const char *bad_refs[] = { "w1", "w1@", "w1@0", "w1@01", "@1", "w 1@1", "w1@1x",
					  "w1@99999999999" };
	for (size_t i = 0; i < sizeof bad_refs / sizeof bad_refs[0]; i++) {
		setup();
		w.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_UPDATE;
		w.version = 2;
		w_refs[0] = (char *)bad_refs[i];
		w.n_references = 1;
		expect_warning(WF_REASON_BAD_ID, "references[0]");
	}

	ack.consumer = "a b";
	expect_ack(WF_REASON_BAD_ID, "consumer");
	st.kind = "met/x";
	expect_state(WF_REASON_BAD_ID, "kind");
	dl.digest.len = 16;
	expect_deadletter(WF_REASON_BAD_ID, "digest");
	setup();
	dl.producer = "p+q";
	expect_deadletter(WF_REASON_BAD_ID, "producer");
}
END_TEST

START_TEST(test_reason_bad_reference)
{
	ev_refs[0] = "met-20250614-0009";
	ev.n_references = 1; /* an ALERT with references */
	expect_event(WF_REASON_BAD_REFERENCE, "references");
	setup();
	ev.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_UPDATE; /* an UPDATE without */
	expect_event(WF_REASON_BAD_REFERENCE, "references");
	setup();
	ev.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_CANCEL;
	ev_refs[0] = ev.id; /* referencing itself */
	ev.n_references = 1;
	expect_event(WF_REASON_BAD_REFERENCE, "references[0]");

	w.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_CANCEL;
	expect_warning(WF_REASON_BAD_REFERENCE, "references");
	setup();
	w_refs[0] = "w-x@1";
	w.n_references = 1;
	expect_warning(WF_REASON_BAD_REFERENCE, "references");
}
END_TEST

/* --- robustness --- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static void mutate(uint8_t *buf, size_t *len, size_t cap)
{
	int n = 1 + (int)(rng() % 4);
	for (int i = 0; i < n; i++) {
		switch (rng() % 5) {
		case 0: /* flip a bit */
			if (*len)
				buf[rng() % *len] ^= (uint8_t)(1u << (rng() % 8));
			break;
		case 1: /* random byte */
			if (*len)
				buf[rng() % *len] = (uint8_t)rng();
			break;
		case 2: /* truncate */
			if (*len)
				*len = rng() % *len;
			break;
		case 3: /* insert a byte */
			if (*len < cap) {
				size_t at = *len ? rng() % *len : 0;
				memmove(buf + at + 1, buf + at, *len - at);
				buf[at] = (uint8_t)rng();
				(*len)++;
			}
			break;
		default: /* interesting values */
			if (*len) {
				static const uint8_t v[] = { 0x00, 0x7f, 0x80, 0xff, 0xc0, 0xed };
				buf[rng() % *len] = v[rng() % sizeof v];
			}
			break;
		}
	}
}

START_TEST(test_fuzz_mutations)
{
	size_t elen, wlen;
	uint8_t *eorig = raw(&ev.base, &elen);
	uint8_t *worig = raw(&w.base, &wlen);
	uint8_t buf[2048];
	int ok = 0, rejected = 0;
	int counts[WF_REASON_MAX] = { 0 };
	for (int i = 0; i < 20000; i++) {
		bool is_event = i % 4 != 3;
		size_t len = is_event ? elen : wlen;
		ck_assert_uint_lt(len, sizeof buf / 2);
		memcpy(buf, is_event ? eorig : worig, len);
		mutate(buf, &len, sizeof buf);
		struct wf_codec_error err;
		int r;
		if (is_event) {
			Wf__V1__Event *out = NULL;
			r = wf_codec_event_unpack(buf, len, &lim, NOW, &out, &err);
			if (r == 0) {
				/* whatever was accepted packs again */
				uint8_t *p = NULL;
				size_t plen;
				ck_assert_int_eq(wf_codec_event_pack(out, &lim, NOW, &p, &plen, NULL), 0);
				free(p);
				wf_codec_event_free(out);
			}
		} else {
			Wf__V1__Warning *out = NULL;
			r = wf_codec_warning_unpack(buf, len, &lim, NOW, &out, &err);
			if (r == 0)
				wf_codec_warning_free(out);
		}
		if (r == 0) {
			ok++;
			ck_assert_int_eq(err.reason, WF_REASON_UNSPECIFIED);
		} else {
			ck_assert_int_eq(r, -EBADMSG);
			ck_assert(err.reason > WF_REASON_UNSPECIFIED && err.reason < WF_REASON_MAX);
			counts[err.reason]++;
			rejected++;
		}
	}
	ck_assert_int_eq(ok + rejected, 20000);
	ck_assert_int_gt(ok, 0);
	ck_assert_int_gt(counts[WF_REASON_MALFORMED], 0);
	free(eorig);
	free(worig);
}
END_TEST

START_TEST(test_bad_arguments)
{
	struct wf_codec_error err;
	uint8_t *buf;
	size_t len;
	ck_assert_int_eq(wf_codec_event_unpack("", 0, &lim, NOW, NULL, &err), -EINVAL);
	ck_assert_int_eq(wf_codec_event_pack(NULL, &lim, NOW, &buf, &len, &err), -EINVAL);
	ck_assert_int_eq(wf_codec_event_pack(&ev, &lim, NOW, NULL, &len, &err), -EINVAL);
	ck_assert_int_eq(wf_codec_warning_validate(NULL, &lim, NOW, &err), -EINVAL);
	ck_assert_int_eq(wf_codec_ack_validate(NULL, &lim, NOW, &err), -EINVAL);
	ck_assert_int_eq(wf_codec_event_check_topic(&ev, NULL, &err), -EINVAL);
	/* a message of another type is MALFORMED or fails validation, never OK */
	uint8_t *abuf;
	size_t alen;
	ck_assert_int_eq(wf_codec_ack_pack(&ack, &lim, NOW, &abuf, &alen, NULL), 0);
	Wf__V1__Event *out = SENTINEL;
	ck_assert_int_eq(wf_codec_event_unpack(abuf, alen, &lim, NOW, &out, &err), -EBADMSG);
	ck_assert_ptr_eq(out, SENTINEL);
	free(abuf);
}
END_TEST

/* Fuzzing found (docs/proof.md): an overlong tag varint for field number 0
 * unpacked through protobuf-c into an unknown field that packs back as
 * undecodable bytes. The minimized inputs of tests/fixtures/fuzz/ must be
 * rejected as malformed by every unpack. */
static uint8_t *fixture(const char *rel, size_t *len)
{
	const char *root = getenv("WF_SOURCE_ROOT");
	char path[1024];
	snprintf(path, sizeof path, "%s/tests/fixtures/fuzz/%s", root ? root : "..", rel);
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "%s", path);
	static uint8_t buf[65536];
	*len = fread(buf, 1, sizeof buf, f);
	fclose(f);
	return buf;
}

START_TEST(test_field_number_zero_rejected)
{
	struct wf_codec_limits zl;
	struct wf_codec_error why;
	size_t len;
	uint8_t *b;
	wf_codec_limits_init(&zl);
	int64_t now = 1784520000000; /* 2026-07-20T04:00:00Z, the fuzz targets' time */

	Wf__V1__Event *zev = NULL;
	b = fixture("codec-event/overlong-tag0", &len);
	ck_assert_int_lt(wf_codec_event_unpack(b, len, &zl, now, &zev, &why), 0);
	ck_assert_int_eq(why.reason, WF_REASON_MALFORMED);
	ck_assert_ptr_null(zev);
	Wf__V1__Warning *zw = NULL;
	b = fixture("codec-warning/overlong-tag0", &len);
	ck_assert_int_lt(wf_codec_warning_unpack(b, len, &zl, now, &zw, &why), 0);
	ck_assert_int_eq(why.reason, WF_REASON_MALFORMED);
	Wf__V1__Ack *za = NULL;
	b = fixture("codec-ack/overlong-tag0", &len);
	ck_assert_int_lt(wf_codec_ack_unpack(b, len, &zl, now, &za, &why), 0);
	ck_assert_int_eq(why.reason, WF_REASON_MALFORMED);
	Wf__V1__ServiceState *zst = NULL;
	b = fixture("codec-state/overlong-tag0", &len);
	ck_assert_int_lt(wf_codec_state_unpack(b, len, &zl, now, &zst, &why), 0);
	ck_assert_int_eq(why.reason, WF_REASON_MALFORMED);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("codec");
	TCase *tc = tcase_create("round-trip");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_reason_enum_matches_proto);
	tcase_add_test(tc, test_field_number_zero_rejected);
	tcase_add_test(tc, test_event_round_trip);
	tcase_add_test(tc, test_event_six_digit_region_normalised);
	tcase_add_test(tc, test_warning_round_trip);
	tcase_add_test(tc, test_ack_state_round_trip);
	tcase_add_test(tc, test_deadletter_make_round_trip);
	tcase_add_test(tc, test_bad_arguments);
	suite_add_tcase(s, tc);

	tc = tcase_create("reasons");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_reason_too_large);
	tcase_add_test(tc, test_reason_malformed);
	tcase_add_test(tc, test_reason_missing_field_event);
	tcase_add_test(tc, test_reason_missing_field_others);
	tcase_add_test(tc, test_reason_bad_enum);
	tcase_add_test(tc, test_reason_bad_utf8);
	tcase_add_test(tc, test_reason_field_too_long);
	tcase_add_test(tc, test_reason_bad_region);
	tcase_add_test(tc, test_reason_unknown_region);
	tcase_add_test(tc, test_reason_time_skew);
	tcase_add_test(tc, test_reason_bad_time_order);
	tcase_add_test(tc, test_reason_bad_point);
	tcase_add_test(tc, test_reason_bad_number);
	tcase_add_test(tc, test_reason_agency_mismatch_and_bad_topic);
	tcase_add_test(tc, test_reason_bad_id);
	tcase_add_test(tc, test_reason_bad_reference);
	suite_add_tcase(s, tc);

	tc = tcase_create("robustness");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_fuzz_mutations);
	suite_add_tcase(s, tc);

	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
