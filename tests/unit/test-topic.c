/* Unit tests for common/src/topic.c */
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wf/topic.h"

START_TEST(test_build_and_parse_event)
{
	char buf[WF_TOPIC_MAX];
	struct wf_topic t;

	ck_assert_int_eq(wf_topic_event(buf, sizeof buf, WF__V1__AGENCY__AGENCY_MET, "410102001002"), 0);
	ck_assert_str_eq(buf, "wf/v1/event/met/41/4101/410102");
	ck_assert_int_eq(wf_topic_parse(buf, &t), 0);
	ck_assert_int_eq(t.kind, WF_TOPIC_EVENT);
	ck_assert_int_eq(t.agency, WF__V1__AGENCY__AGENCY_MET);
	ck_assert_str_eq(t.county, "410102");

	ck_assert_int_eq(wf_topic_event(buf, sizeof buf, WF__V1__AGENCY__AGENCY_POLICE, "410100"), 0);
	ck_assert_str_eq(buf, "wf/v1/event/police/41/4101/410100");
	ck_assert_int_eq(wf_topic_parse(buf, &t), 0);
	ck_assert_int_eq(t.agency, WF__V1__AGENCY__AGENCY_POLICE);

	/* every agency round-trips */
	for (int a = 1; a <= 5; a++) {
		ck_assert_int_eq(wf_topic_event(buf, sizeof buf, (Wf__V1__Agency)a, "410102"), 0);
		ck_assert_int_eq(wf_topic_parse(buf, &t), 0);
		ck_assert_int_eq(t.agency, a);
	}
}
END_TEST

START_TEST(test_build_and_parse_others)
{
	char buf[WF_TOPIC_MAX];
	struct wf_topic t;

	ck_assert_int_eq(wf_topic_warning(buf, sizeof buf, "410102000000",
					  WF__V1__HAZARD__HAZARD_FLASH_FLOOD), 0);
	ck_assert_str_eq(buf, "wf/v1/warning/41/4101/410102/flash_flood");
	ck_assert_int_eq(wf_topic_parse(buf, &t), 0);
	ck_assert_int_eq(t.kind, WF_TOPIC_WARNING);
	ck_assert_int_eq(t.hazard, WF__V1__HAZARD__HAZARD_FLASH_FLOOD);
	ck_assert_str_eq(t.county, "410102");

	ck_assert_int_eq(wf_topic_ack(buf, sizeof buf, "wf-met-1"), 0);
	ck_assert_str_eq(buf, "wf/v1/ack/wf-met-1");
	ck_assert_int_eq(wf_topic_parse(buf, &t), 0);
	ck_assert_int_eq(t.kind, WF_TOPIC_ACK);
	ck_assert_str_eq(t.id, "wf-met-1");

	ck_assert_int_eq(wf_topic_state(buf, sizeof buf, "wf_fusion.a"), 0);
	ck_assert_str_eq(buf, "wf/v1/state/wf_fusion.a");
	ck_assert_int_eq(wf_topic_parse(buf, &t), 0);
	ck_assert_int_eq(t.kind, WF_TOPIC_STATE);
	ck_assert_str_eq(t.id, "wf_fusion.a");

	ck_assert_int_eq(wf_topic_deadletter(buf, sizeof buf, "wf-fusion"), 0);
	ck_assert_str_eq(buf, "wf/v1/deadletter/wf-fusion");
	ck_assert_int_eq(wf_topic_parse(buf, &t), 0);
	ck_assert_int_eq(t.kind, WF_TOPIC_DEADLETTER);
	ck_assert_str_eq(t.id, "wf-fusion");

	for (int k = 0; k < WF_TOPIC_KIND_MAX; k++)
		ck_assert_ptr_nonnull(wf_topic_kind_to_string((enum wf_topic_kind)k));
	ck_assert_ptr_null(wf_topic_kind_to_string(WF_TOPIC_KIND_INVALID));
}
END_TEST

START_TEST(test_too_long_and_bad_parts)
{
	char small[20];
	ck_assert_int_eq(wf_topic_event(small, sizeof small, WF__V1__AGENCY__AGENCY_MET, "410102"),
			 -ENAMETOOLONG);
	ck_assert_str_eq(small, "");
	ck_assert_int_eq(wf_topic_ack(small, 0, "x"), -ENAMETOOLONG);
	char buf[WF_TOPIC_MAX];
	ck_assert_int_eq(wf_topic_ack(buf, 19, "abcdefgh"), 0); /* exactly fits */
	ck_assert_int_eq(wf_topic_ack(buf, 18, "abcdefgh"), -ENAMETOOLONG);

	ck_assert_int_eq(wf_topic_event(buf, sizeof buf, WF__V1__AGENCY__AGENCY_UNSPECIFIED, "410102"),
			 -EINVAL);
	ck_assert_int_eq(wf_topic_event(buf, sizeof buf, (Wf__V1__Agency)9, "410102"), -EINVAL);
	ck_assert_int_eq(wf_topic_event(buf, sizeof buf, WF__V1__AGENCY__AGENCY_MET, "4101"), -EINVAL);
	ck_assert_int_eq(wf_topic_event(buf, sizeof buf, WF__V1__AGENCY__AGENCY_MET, "000000"), -EINVAL);
	ck_assert_int_eq(wf_topic_event(buf, sizeof buf, WF__V1__AGENCY__AGENCY_MET, NULL), -EINVAL);
	ck_assert_int_eq(wf_topic_warning(buf, sizeof buf, "410102", WF__V1__HAZARD__HAZARD_UNSPECIFIED),
			 -EINVAL);
	ck_assert_int_eq(wf_topic_warning(buf, sizeof buf, "410102", (Wf__V1__Hazard)15), -EINVAL);

	static const char *bad_ids[] = { "", "a/b", "a+b", "a#", "a b", "ä", "x\n" };
	for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
		ck_assert_msg(!wf_topic_id_valid(bad_ids[i]), "accepted '%s'", bad_ids[i]);
		ck_assert_int_eq(wf_topic_ack(buf, sizeof buf, bad_ids[i]), -EINVAL);
		ck_assert_int_eq(wf_topic_state(buf, sizeof buf, bad_ids[i]), -EINVAL);
		ck_assert_int_eq(wf_topic_deadletter(buf, sizeof buf, bad_ids[i]), -EINVAL);
	}
	char id[80];
	memset(id, 'a', sizeof id);
	id[64] = '\0';
	ck_assert(wf_topic_id_valid(id));
	ck_assert_int_eq(wf_topic_ack(buf, sizeof buf, id), 0);
	id[64] = 'a';
	id[65] = '\0';
	ck_assert(!wf_topic_id_valid(id));
	ck_assert_int_eq(wf_topic_ack(buf, sizeof buf, id), -EINVAL);
	ck_assert(!wf_topic_id_valid(NULL));
}
END_TEST

START_TEST(test_parse_rejects)
{
	static const char *bad[] = {
		"",
		"wf",
		"wf/v1",
		"wf/v2/event/met/41/4101/410102",
		"xx/v1/event/met/41/4101/410102",
		"wf/v1/event/met/41/4101",
		"wf/v1/event/met/41/4101/410102/x",
		"wf/v1/event/+/41/4101/410102",
		"wf/v1/event/MET/41/4101/410102",
		"wf/v1/event/unspecified/41/4101/410102",
		"wf/v1/event/met/41/4201/420102",
		"wf/v1/event/met/41/4101/410202",
		"wf/v1/event/met/4/4101/410102",
		"wf/v1/event/met/00/0001/000102",
		"wf/v1/event/met/41/41a1/41a102",
		"wf/v1/event/met/41/4101/410102/",
		"/wf/v1/event/met/41/4101/410102",
		"wf//v1/event/met/41/4101/410102",
		"wf/v1/warning/41/4101/410102",
		"wf/v1/warning/41/4101/410102/Rainstorm",
		"wf/v1/warning/41/4101/410102/#",
		"wf/v1/warning/41/4101/410102/unspecified",
		"wf/v1/ack",
		"wf/v1/ack/",
		"wf/v1/ack/a+b",
		"wf/v1/ack/a/b",
		"wf/v1/state/#",
		"wf/v1/deadletter/a b",
		"wf/v1/approval/op+1",  /* approval topics exist since dispatch.proto */
		"wf/v1/approvals/op1",
		"wf/v1/ack/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct wf_topic t = { .kind = WF_TOPIC_KIND_INVALID };
		ck_assert_msg(wf_topic_parse(bad[i], &t) == -EINVAL, "accepted '%s'", bad[i]);
		ck_assert_int_eq(t.kind, WF_TOPIC_KIND_INVALID); /* untouched */
	}
	ck_assert_int_eq(wf_topic_parse(NULL, NULL), -EINVAL);
}
END_TEST

START_TEST(test_filters)
{
	char buf[WF_TOPIC_MAX];
#define EF(agency, region, want)                                                         \
	do {                                                                              \
		ck_assert_int_eq(wf_topic_event_filter(buf, sizeof buf, agency, region), 0); \
		ck_assert_str_eq(buf, want);                                              \
	} while (0)
	EF(WF__V1__AGENCY__AGENCY_UNSPECIFIED, "410102", "wf/v1/event/+/41/4101/410102");
	EF(WF__V1__AGENCY__AGENCY_UNSPECIFIED, "410102001002", "wf/v1/event/+/41/4101/410102");
	EF(WF__V1__AGENCY__AGENCY_UNSPECIFIED, "410100", "wf/v1/event/+/41/4101/#");
	EF(WF__V1__AGENCY__AGENCY_UNSPECIFIED, "410000000000", "wf/v1/event/+/41/#");
	EF(WF__V1__AGENCY__AGENCY_WATER, "410100", "wf/v1/event/water/41/4101/#");
	EF(WF__V1__AGENCY__AGENCY_UNSPECIFIED, NULL, "wf/v1/event/#");
	EF(WF__V1__AGENCY__AGENCY_GEO, "", "wf/v1/event/geo/#");
#define WF_(region, hazard, want)                                                           \
	do {                                                                                \
		ck_assert_int_eq(wf_topic_warning_filter(buf, sizeof buf, region, hazard), 0); \
		ck_assert_str_eq(buf, want);                                                \
	} while (0)
	WF_("410102", WF__V1__HAZARD__HAZARD_UNSPECIFIED, "wf/v1/warning/41/4101/410102/#");
	WF_("410102", WF__V1__HAZARD__HAZARD_RAINSTORM, "wf/v1/warning/41/4101/410102/rainstorm");
	WF_("410100", WF__V1__HAZARD__HAZARD_UNSPECIFIED, "wf/v1/warning/41/4101/#");
	WF_("410100", WF__V1__HAZARD__HAZARD_RAINSTORM, "wf/v1/warning/41/4101/+/rainstorm");
	WF_("410000", WF__V1__HAZARD__HAZARD_UNSPECIFIED, "wf/v1/warning/41/#");
	WF_("410000", WF__V1__HAZARD__HAZARD_HEAT, "wf/v1/warning/41/+/+/heat");
	WF_(NULL, WF__V1__HAZARD__HAZARD_UNSPECIFIED, "wf/v1/warning/#");
	WF_(NULL, WF__V1__HAZARD__HAZARD_FOG, "wf/v1/warning/+/+/+/fog");

	ck_assert_int_eq(wf_topic_event_filter(buf, sizeof buf, (Wf__V1__Agency)6, "410102"), -EINVAL);
	ck_assert_int_eq(wf_topic_event_filter(buf, sizeof buf, 0, "41"), -EINVAL);
	ck_assert_int_eq(wf_topic_warning_filter(buf, sizeof buf, "4101x2", 0), -EINVAL);
	ck_assert_int_eq(wf_topic_event_filter(buf, 10, 0, "410102"), -ENAMETOOLONG);
}
END_TEST

/* Lowercase enum value name without PREFIX. */
static void token_of(const char *name, const char *prefix, char *out, size_t size)
{
	size_t pl = strlen(prefix);
	ck_assert_msg(strncmp(name, prefix, pl) == 0, "%s lacks %s", name, prefix);
	size_t i = 0;
	for (const char *p = name + pl; *p && i + 1 < size; p++)
		out[i++] = (char)tolower((unsigned char)*p);
	out[i] = '\0';
}

typedef const char *(*to_string_fn)(int);
typedef int (*from_string_fn)(const char *);

/* Every value of the protobuf-c enum descriptor D has a name that maps
 * back; if PREFIX is set, the name is the lowercase enum name. */
static void check_enum_table(const ProtobufCEnumDescriptor *d, to_string_fn to, from_string_fn from,
			     const char *prefix, const char *unspecified_name)
{
	for (unsigned i = 0; i < d->n_values; i++) {
		int v = d->values[i].value;
		const char *s = to(v);
		ck_assert_msg(s != NULL, "%s: no name for %s", d->name, d->values[i].name);
		ck_assert_msg(from(s) == v, "%s: '%s' does not map back to %d", d->name, s, v);
		if (prefix && strcmp(d->values[i].name, unspecified_name) != 0) {
			char tok[64];
			token_of(d->values[i].name, prefix, tok, sizeof tok);
			ck_assert_str_eq(s, tok);
		}
	}
	/* numbers the contract does not define have no name */
	ck_assert_ptr_null(to(-1));
	ck_assert_ptr_null(to(1000));
	ck_assert_int_eq(from("no-such-name"), -EINVAL);
	ck_assert_int_eq(from(NULL), -EINVAL);
}

/* Adapters with an int signature, to iterate uniformly. */
#define ADAPT(fn, type)                              \
	static const char *fn##_i(int v)             \
	{                                            \
		return wf_##fn##_to_string((type)v); \
	}
ADAPT(agency, Wf__V1__Agency)
ADAPT(hazard, Wf__V1__Hazard)
ADAPT(level, Wf__V1__Level)
ADAPT(status, Wf__V1__Status)
ADAPT(certainty, Wf__V1__Certainty)
ADAPT(msg_type, Wf__V1__MsgType)
ADAPT(review, Wf__V1__ReviewState)

START_TEST(test_enum_tables_complete)
{
	check_enum_table(&wf__v1__agency__descriptor, agency_i, wf_agency_from_string, "AGENCY_",
			 "AGENCY_UNSPECIFIED");
	check_enum_table(&wf__v1__hazard__descriptor, hazard_i, wf_hazard_from_string, "HAZARD_",
			 "HAZARD_UNSPECIFIED");
	check_enum_table(&wf__v1__level__descriptor, level_i, wf_level_from_string, NULL, NULL);
	check_enum_table(&wf__v1__status__descriptor, status_i, wf_status_from_string, "STATUS_",
			 "STATUS_UNSPECIFIED");
	check_enum_table(&wf__v1__certainty__descriptor, certainty_i, wf_certainty_from_string,
			 "CERTAINTY_", "CERTAINTY_UNSPECIFIED");
	check_enum_table(&wf__v1__msg_type__descriptor, msg_type_i, wf_msg_type_from_string,
			 "MSG_TYPE_", "MSG_TYPE_UNSPECIFIED");
	check_enum_table(&wf__v1__review_state__descriptor, review_i, wf_review_from_string,
			 "REVIEW_", "REVIEW_UNSPECIFIED");

	const ProtobufCEnumDescriptor *h = &wf__v1__hazard__descriptor;
	for (unsigned i = 0; i < h->n_values; i++)
		ck_assert_ptr_nonnull(wf_hazard_name_zh((Wf__V1__Hazard)h->values[i].value));
	ck_assert_str_eq(wf_hazard_name_zh(WF__V1__HAZARD__HAZARD_RAINSTORM), "暴雨");
	ck_assert_ptr_null(wf_hazard_name_zh((Wf__V1__Hazard)15));
	/* gaps in the hazard numbering have no token */
	ck_assert_ptr_null(wf_hazard_to_string((Wf__V1__Hazard)15));

	ck_assert_str_eq(wf_level_to_string(WF__V1__LEVEL__LEVEL_I), "I");
	ck_assert_str_eq(wf_level_to_string(WF__V1__LEVEL__LEVEL_IV), "IV");
	ck_assert_str_eq(wf_level_to_string(WF__V1__LEVEL__LEVEL_NONE), "none");
	ck_assert_str_eq(wf_level_colour(WF__V1__LEVEL__LEVEL_I), "red");
	ck_assert_str_eq(wf_level_colour(WF__V1__LEVEL__LEVEL_II), "orange");
	ck_assert_str_eq(wf_level_colour(WF__V1__LEVEL__LEVEL_III), "yellow");
	ck_assert_str_eq(wf_level_colour(WF__V1__LEVEL__LEVEL_IV), "blue");
	ck_assert_str_eq(wf_level_colour_zh(WF__V1__LEVEL__LEVEL_I), "红色");
	ck_assert_ptr_null(wf_level_colour((Wf__V1__Level)5));
	ck_assert_int_eq(wf_level_from_string("orange"), WF__V1__LEVEL__LEVEL_II);
	ck_assert_int_eq(wf_level_from_string("V"), -EINVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("topic");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_build_and_parse_event);
	tcase_add_test(tc, test_build_and_parse_others);
	tcase_add_test(tc, test_too_long_and_bad_parts);
	tcase_add_test(tc, test_parse_rejects);
	tcase_add_test(tc, test_filters);
	tcase_add_test(tc, test_enum_tables_complete);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
