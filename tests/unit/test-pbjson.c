/* Unit tests for common/src/pbjson.c */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "control.pb-c.h"
#include "event.pb-c.h"
#include "warning.pb-c.h"
#include "wf/pbjson.h"

static Wf__V1__Event *parse_event(const char *text, char *err, size_t errsize, int *rc)
{
	ProtobufCMessage *m = NULL;

	*rc = wf_pbjson_parse(&wf__v1__event__descriptor, text, strlen(text), &m, err, errsize);
	return (Wf__V1__Event *)m;
}

START_TEST(test_event_roundtrip)
{
	Wf__V1__Event ev = WF__V1__EVENT__INIT;
	Wf__V1__Measurement me = WF__V1__MEASUREMENT__INIT;
	Wf__V1__Point pt = WF__V1__POINT__INIT;
	char *refs[] = { "a1", "a2" };
	char err[256];
	int rc;

	ev.id = "met:58367:2026-07-01T08:00Z:rain_3h";
	ev.agency = WF__V1__AGENCY__AGENCY_MET;
	ev.hazard = WF__V1__HAZARD__HAZARD_RAINSTORM;
	ev.region = "410102000000";
	ev.level = WF__V1__LEVEL__LEVEL_II;
	me.value = 61.5;
	me.threshold = 50;
	me.unit = "mm";
	me.criterion = "rain_3h";
	ev.measurement = &me;
	pt.lat = 34.75;
	pt.lon = -113.625;
	ev.point = &pt;
	ev.observed_ms = 1782892800000;
	ev.expires_ms = 1782903600000;
	ev.status = WF__V1__STATUS__STATUS_ACTUAL;
	ev.text = "暴雨\n橙色";
	ev.producer = "wf-met-1";
	ev.seq = UINT64_C(18446744073709551615); /* beyond 2^53: a string */
	ev.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_UPDATE;
	ev.n_references = 2;
	ev.references = refs;

	char *line = wf_pbjson_print(&ev.base);
	ck_assert_ptr_nonnull(line);
	ck_assert_ptr_null(strchr(line, '\n'));
	ck_assert_ptr_nonnull(strstr(line, "\"agency\":\"AGENCY_MET\""));
	ck_assert_ptr_nonnull(strstr(line, "\"observed_ms\":1782892800000"));
	ck_assert_ptr_nonnull(strstr(line, "\"seq\":\"18446744073709551615\""));
	ck_assert_ptr_nonnull(strstr(line, "\"references\":[\"a1\",\"a2\"]"));
	/* proto3 defaults are omitted */
	ck_assert_ptr_null(strstr(line, "certainty"));
	ck_assert_ptr_null(strstr(line, "issued_ms"));

	Wf__V1__Event *back = parse_event(line, err, sizeof err, &rc);
	ck_assert_msg(rc == 0, "%s", err);
	ck_assert_str_eq(back->id, ev.id);
	ck_assert_int_eq(back->level, WF__V1__LEVEL__LEVEL_II);
	ck_assert_int_eq(back->observed_ms, ev.observed_ms);
	ck_assert(back->seq == ev.seq);
	ck_assert(back->measurement != NULL && back->measurement->value == 61.5);
	ck_assert_str_eq(back->measurement->unit, "mm");
	ck_assert(back->point != NULL && back->point->lon == -113.625);
	ck_assert_str_eq(back->text, ev.text);
	ck_assert_uint_eq(back->n_references, 2);
	ck_assert_str_eq(back->references[1], "a2");

	/* byte-identical when printed again: deterministic output */
	char *line2 = wf_pbjson_print(&back->base);
	ck_assert_str_eq(line, line2);
	free(line2);
	free(line);
	protobuf_c_message_free_unpacked(&back->base, NULL);
}
END_TEST

START_TEST(test_input_forms)
{
	char err[256];
	int rc;
	Wf__V1__Event *ev;

	/* numbers for enums, strings for int64, null means default, whitespace */
	ev = parse_event(" {\"agency\": 2, \"observed_ms\": \"-5\", \"text\": null} \n", err,
			 sizeof err, &rc);
	ck_assert_msg(rc == 0, "%s", err);
	ck_assert_int_eq(ev->agency, WF__V1__AGENCY__AGENCY_WATER);
	ck_assert_int_eq(ev->observed_ms, -5);
	protobuf_c_message_free_unpacked(&ev->base, NULL);

	/* empty object: all defaults */
	ev = parse_event("{}", err, sizeof err, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(ev->agency, 0);
	ck_assert_str_eq(ev->id, "");
	protobuf_c_message_free_unpacked(&ev->base, NULL);

	/* a Warning and an Ack work the same way */
	ProtobufCMessage *m = NULL;
	const char *w = "{\"id\":\"w1\",\"version\":3,\"regions\":[\"410102000000\",\"410103000000\"],"
			"\"review\":\"REVIEW_PENDING\"}";
	ck_assert_int_eq(wf_pbjson_parse(&wf__v1__warning__descriptor, w, strlen(w), &m, err,
					 sizeof err), 0);
	Wf__V1__Warning *wa = (Wf__V1__Warning *)m;
	ck_assert_uint_eq(wa->version, 3);
	ck_assert_uint_eq(wa->n_regions, 2);
	ck_assert_int_eq(wa->review, WF__V1__REVIEW_STATE__REVIEW_PENDING);
	protobuf_c_message_free_unpacked(m, NULL);

	const char *a = "{\"producer\":\"p\",\"ranges\":[{\"first\":1,\"last\":9},{\"first\":11,\"last\":11}]}";
	ck_assert_int_eq(wf_pbjson_parse(&wf__v1__ack__descriptor, a, strlen(a), &m, err,
					 sizeof err), 0);
	Wf__V1__Ack *ack = (Wf__V1__Ack *)m;
	ck_assert_uint_eq(ack->n_ranges, 2);
	ck_assert_uint_eq(ack->ranges[1]->first, 11);
	protobuf_c_message_free_unpacked(m, NULL);
}
END_TEST

struct bad_case {
	const char *json;
	const char *needle; /* expected in the error */
};

static const struct bad_case bad[] = {
	{ "", "not JSON" },
	{ "{\"id\":", "not JSON" },
	{ "[1,2]", "expected an object" },
	{ "{} {}", "trailing data" },
	{ "{\"nope\":1}", "unknown field 'nope'" },
	{ "{\"agency\":\"AGENCY_NOPE\"}", "agency: not a value of" },
	{ "{\"agency\":99}", "agency: not a value of" },
	{ "{\"agency\":true}", "agency: expected an enum name" },
	{ "{\"observed_ms\":1.5}", "observed_ms: not an integer" },
	{ "{\"observed_ms\":1e300}", "integer beyond 2^53" },
	{ "{\"observed_ms\":\"12x\"}", "not a decimal integer string" },
	{ "{\"observed_ms\":\"99999999999999999999\"}", "out of range" },
	{ "{\"observed_ms\":\"9223372036854775808\"}", "out of range for int64" },
	{ "{\"seq\":-1}", "seq: out of range for uint64" },
	{ "{\"seq\":\"\"}", "empty integer string" },
	{ "{\"observed_ms\":[1]}", "expected an integer" },
	{ "{\"id\":5}", "id: expected a string" },
	{ "{\"id\":\"a\",\"id\":\"b\"}", "id: given twice" },
	{ "{\"references\":\"a\"}", "references: expected an array" },
	{ "{\"references\":[\"a\",7]}", "references[1]: expected a string" },
	{ "{\"references\":[\"a\"],\"references\":[\"b\"]}", "given twice" },
	{ "{\"measurement\":{\"value\":\"x\"}}", "measurement.value: expected a finite number" },
	{ "{\"measurement\":{\"bogus\":1}}", "unknown field 'bogus'" },
	{ "{\"measurement\":5}", "measurement: expected an object" },
	{ "{\"point\":{\"lat\":1},\"point\":{\"lat\":2}}", "point: given twice" },
};

START_TEST(test_bad_input)
{
	char err[256];
	int rc;
	const struct bad_case *b = &bad[_i];
	Wf__V1__Event *ev = parse_event(b->json, err, sizeof err, &rc);

	ck_assert_ptr_null(ev);
	ck_assert_int_eq(rc, -EINVAL);
	ck_assert_msg(strstr(err, b->needle) != NULL, "case %d '%s': got '%s', want '%s'", _i,
		      b->json, err, b->needle);
}
END_TEST

START_TEST(test_limits)
{
	char err[128];
	ProtobufCMessage *m = NULL;
	int rc;

	/* NUL inside the text */
	rc = wf_pbjson_parse(&wf__v1__event__descriptor, "{}\0x", 4, &m, err, sizeof err);
	ck_assert_int_eq(rc, -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "NUL"));

	/* over the text limit: rejected before parsing */
	rc = wf_pbjson_parse(&wf__v1__event__descriptor, "{}", (size_t)WF_PBJSON_MAX_TEXT + 1, &m,
			     err, sizeof err);
	ck_assert_int_eq(rc, -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "exceeds"));

	/* an array over WF_PBJSON_MAX_ARRAY elements */
	size_t n = WF_PBJSON_MAX_ARRAY + 1;
	char *big = malloc(n * 4 + 32);
	ck_assert_ptr_nonnull(big);
	char *p = big + sprintf(big, "{\"references\":[");
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s\"a\"", i ? "," : "");
	strcpy(p, "]}");
	rc = wf_pbjson_parse(&wf__v1__event__descriptor, big, strlen(big), &m, err, sizeof err);
	ck_assert_int_eq(rc, -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "more than"));
	free(big);

	/* a zero-size error buffer is allowed */
	rc = wf_pbjson_parse(&wf__v1__event__descriptor, "x", 1, &m, err, 0);
	ck_assert_int_eq(rc, -EINVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pbjson");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_event_roundtrip);
	tcase_add_test(tc, test_input_forms);
	tcase_add_loop_test(tc, test_bad_input, 0, (int)(sizeof bad / sizeof bad[0]));
	tcase_add_test(tc, test_limits);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
