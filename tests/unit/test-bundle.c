/* Unit tests for common/src/bundle.c: bundle topics, build, pack, unpack,
 * and what a receiver refuses. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wf/bundle.h"

#define EV "wf/v1/event/met/41/4101/410102"
#define WB "wf/v1/warning/41/4101/410102"

START_TEST(test_bundle_topics)
{
	char bt[256];

	ck_assert_int_eq(wf_bundle_topic(EV, bt, sizeof bt), 0);
	ck_assert_str_eq(bt, EV);
	ck_assert_int_eq(wf_bundle_topic(WB "/rainstorm", bt, sizeof bt), 0);
	ck_assert_str_eq(bt, WB);
	ck_assert_int_eq(wf_bundle_topic("wf/v1/duty/duty-410102/inbox", bt, sizeof bt), 0);
	ck_assert_str_eq(bt, "wf/v1/duty/duty-410102/inbox");
	/* never bundled: acks, states, controls, retained views, other shapes */
	const char *never[] = { "wf/v1/ack/wf-met-1", "wf/v1/state/wf-fusion-1",
				"wf/v1/approval/op-zhang", "wf/v1/duty/duty-410102/ack",
				"wf/v1/review/W1", WB, "wf/v1/event/met/41/4101",
				"wf/v1/event/met/41/4101/410102/x", "wf/v1/event/met//4101/410102",
				"wf/v1/event/met/41/4101/410102/", "/wf/v1/event/met/41/4101",
				"", "wf/v2/event/met/41/4101/410102" };
	for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
		ck_assert_msg(wf_bundle_topic(never[i], bt, sizeof bt) == -ENOENT, "%s", never[i]);
	ck_assert_int_eq(wf_bundle_topic(EV, bt, 10), -ENAMETOOLONG);
	ck_assert_int_eq(wf_bundle_topic(NULL, bt, sizeof bt), -ENOENT);
}
END_TEST

/* packs B and checks the bundle that comes out against TOPIC and N entries */
static Wf__V1__Bundle *pack_unpack(struct wf_bundle *b, const char *topic, size_t n)
{
	const char *t = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	Wf__V1__Bundle *u = NULL;
	char why[128];

	ck_assert_int_eq(wf_bundle_pack(b, &t, &buf, &len), 0);
	ck_assert_str_eq(t, topic);
	ck_assert(wf_bundle_is(buf, len));
	ck_assert_int_eq(wf_bundle_unpack(t, buf, len, &u, why, sizeof why), 0);
	ck_assert_uint_eq(u->n_entries, n);
	free(buf);
	return u;
}

START_TEST(test_build_pack_unpack)
{
	struct wf_bundle b;
	char payload[64];

	ck_assert_int_eq(wf_bundle_init(&b, 4, 4096), 0);
	ck_assert_uint_eq(wf_bundle_count(&b), 0);
	const char *t;
	uint8_t *buf;
	size_t len;
	ck_assert_int_eq(wf_bundle_pack(&b, &t, &buf, &len), -ENOENT);

	/* one entry: published as itself, no mark */
	ck_assert_int_eq(wf_bundle_add(&b, WB, WB "/rainstorm", "\x0a\x01x", 3), 0);
	ck_assert_int_eq(wf_bundle_pack(&b, &t, &buf, &len), 0);
	ck_assert_str_eq(t, WB "/rainstorm");
	ck_assert_uint_eq(len, 3);
	ck_assert(!wf_bundle_is(buf, len));
	free(buf);

	/* more: in order, with their own topics and payloads */
	const char *hz[] = { "flood", "landslide", "crowd" };
	for (int i = 0; i < 3; i++) {
		char topic[128];
		snprintf(topic, sizeof topic, WB "/%s", hz[i]);
		snprintf(payload, sizeof payload, "\x0a%c%s", (char)strlen(hz[i]), hz[i]);
		ck_assert_int_eq(wf_bundle_add(&b, WB, topic, payload, strlen(payload)), 0);
	}
	/* full at 4; another bundle topic is refused as such */
	ck_assert_int_eq(wf_bundle_add(&b, WB, WB "/fog", "\x0a\x00", 2), -ENOSPC);
	ck_assert_int_eq(wf_bundle_add(&b, EV, EV, "\x0a\x00", 2), -EXDEV);
	Wf__V1__Bundle *u = pack_unpack(&b, WB, 4);
	ck_assert_str_eq(u->entries[0]->topic, WB "/rainstorm");
	ck_assert_uint_eq(u->entries[0]->payload.len, 3);
	ck_assert_mem_eq(u->entries[0]->payload.data, "\x0a\x01x", 3);
	for (int i = 0; i < 3; i++) {
		char topic[128];
		snprintf(topic, sizeof topic, WB "/%s", hz[i]);
		ck_assert_str_eq(u->entries[i + 1]->topic, topic);
		ck_assert_uint_eq(u->entries[i + 1]->payload.len, strlen(hz[i]) + 2);
		ck_assert_mem_eq(u->entries[i + 1]->payload.data + 2, hz[i], strlen(hz[i]));
	}
	wf_bundle_free(u);

	/* cleared: a new bundle topic, empty payloads are entries too */
	wf_bundle_clear(&b);
	ck_assert_uint_eq(wf_bundle_count(&b), 0);
	ck_assert_int_eq(wf_bundle_add(&b, EV, EV, "", 0), 0);
	ck_assert_int_eq(wf_bundle_add(&b, EV, EV, "\x08\x01", 2), 0);
	u = pack_unpack(&b, EV, 2);
	ck_assert_uint_eq(u->entries[0]->payload.len, 0);
	wf_bundle_free(u);
	wf_bundle_destroy(&b);
	wf_bundle_destroy(&b); /* twice is harmless */
}
END_TEST

START_TEST(test_byte_limit)
{
	struct wf_bundle b;
	static uint8_t big[5000];

	ck_assert_int_eq(wf_bundle_init(&b, 1024, 4096), 0);
	/* two of 1,500 bytes fit 4,096, a third does not */
	ck_assert_int_eq(wf_bundle_add(&b, EV, EV, big, 1500), 0);
	ck_assert_int_eq(wf_bundle_add(&b, EV, EV, big, 1500), 0);
	ck_assert_int_eq(wf_bundle_add(&b, EV, EV, big, 1500), -ENOSPC);
	ck_assert_uint_eq(wf_bundle_count(&b), 2);
	/* an empty bundle takes an entry larger than its byte limit */
	wf_bundle_clear(&b);
	ck_assert_int_eq(wf_bundle_add(&b, EV, EV, big, sizeof big), 0);
	ck_assert_int_eq(wf_bundle_add(&b, EV, EV, big, 1), -ENOSPC);
	wf_bundle_destroy(&b);

	ck_assert_int_eq(wf_bundle_init(&b, 1, 4096), -EINVAL);
	ck_assert_int_eq(wf_bundle_init(&b, WF_BUNDLE_MAX_ENTRIES + 1, 4096), -EINVAL);
	ck_assert_int_eq(wf_bundle_init(&b, 8, 100), -EINVAL);
	ck_assert_int_eq(wf_bundle_init(&b, 8, 4096), 0);
	ck_assert_int_eq(wf_bundle_add(&b, "", EV, "", 0), -EINVAL);
	ck_assert_int_eq(wf_bundle_add(&b, EV, "", "", 0), -EINVAL);
	ck_assert_int_eq(wf_bundle_add(&b, EV, EV, NULL, 3), -EINVAL);
	wf_bundle_destroy(&b);
}
END_TEST

/* a bundle packed by hand: ENTRIES topics with PAYLOAD each, with the mark */
static uint8_t *raw_bundle(const char *const *topics, size_t n, const void *payload,
			   size_t plen, size_t *len)
{
	Wf__V1__BundleEntry *e = calloc(n + 1, sizeof *e);
	Wf__V1__BundleEntry **ep = calloc(n + 1, sizeof *ep);
	Wf__V1__Bundle m = WF__V1__BUNDLE__INIT;

	for (size_t i = 0; i < n; i++) {
		wf__v1__bundle_entry__init(&e[i]);
		e[i].topic = (char *)topics[i];
		e[i].payload.data = (uint8_t *)payload;
		e[i].payload.len = plen;
		ep[i] = &e[i];
	}
	m.n_entries = n;
	m.entries = ep;
	size_t sz = wf__v1__bundle__get_packed_size(&m);
	uint8_t *buf = malloc(sz + 2);
	buf[0] = 0;
	buf[1] = 1;
	wf__v1__bundle__pack(&m, buf + 2);
	*len = sz + 2;
	free(e);
	free(ep);
	return buf;
}

static void expect_refused(const char *topic, const uint8_t *buf, size_t len, const char *why_has)
{
	Wf__V1__Bundle *u = (Wf__V1__Bundle *)1;
	char why[128];

	ck_assert_int_eq(wf_bundle_unpack(topic, buf, len, &u, why, sizeof why), -EBADMSG);
	ck_assert_ptr_null(u);
	ck_assert_msg(strstr(why, why_has) != NULL, "'%s' lacks '%s'", why, why_has);
}

START_TEST(test_receiver_refuses)
{
	size_t len;
	uint8_t *buf;

	/* not a bundle at all: no mark, or a single Event's bytes */
	expect_refused(EV, (const uint8_t *)"\x0a\x02id", 4, "no 0x00 0x01 mark");
	expect_refused(EV, (const uint8_t *)"\x00", 1, "no 0x00 0x01 mark");
	expect_refused(EV, (const uint8_t *)"\x00\x02", 2, "no 0x00 0x01 mark");
	/* the mark and garbage */
	expect_refused(EV, (const uint8_t *)"\x00\x01\xff\xff\xff", 5, "does not decode");
	/* the mark alone: a Bundle of no entries */
	expect_refused(EV, (const uint8_t *)"\x00\x01", 2, "0 entries");

	/* an entry outside the bundle's topic: another county, another
	 * agency (the ACL checked only the bundle's topic), a state topic */
	const char *other_county[] = { EV, "wf/v1/event/met/41/4101/410103" };
	buf = raw_bundle(other_county, 2, "", 0, &len);
	expect_refused(EV, buf, len, "entry 1: topic is not one of the bundle");
	free(buf);
	const char *other_agency[] = { "wf/v1/event/water/41/4101/410102" };
	buf = raw_bundle(other_agency, 1, "", 0, &len);
	expect_refused(EV, buf, len, "entry 0");
	free(buf);
	const char *state[] = { "wf/v1/state/wf-met-1" };
	buf = raw_bundle(state, 1, "", 0, &len);
	expect_refused("wf/v1/state/wf-met-1", buf, len, "entry 0");
	free(buf);
	/* warnings of another county under a county bundle, or a prefecture
	 * topic as the bundle's */
	const char *w2[] = { WB "/flood", "wf/v1/warning/41/4101/410103/flood" };
	buf = raw_bundle(w2, 2, "", 0, &len);
	expect_refused(WB, buf, len, "entry 1");
	expect_refused("wf/v1/warning/41/4101", buf, len, "entry 0");
	free(buf);
	/* wildcards, empty topics */
	const char *wild[] = { "wf/v1/warning/41/4101/410102/#" };
	buf = raw_bundle(wild, 1, "", 0, &len);
	expect_refused(WB, buf, len, "bad topic");
	free(buf);
	const char *empty[] = { "" };
	buf = raw_bundle(empty, 1, "", 0, &len);
	expect_refused(WB, buf, len, "bad topic");
	free(buf);
	/* a bundle inside a bundle */
	const char *ev[] = { EV };
	buf = raw_bundle(ev, 1, "\x00\x01", 2, &len);
	expect_refused(EV, buf, len, "bundle inside a bundle");
	free(buf);
	/* too many entries */
	const char **many = calloc(WF_BUNDLE_MAX_ENTRIES + 1, sizeof *many);
	for (size_t i = 0; i <= WF_BUNDLE_MAX_ENTRIES; i++)
		many[i] = EV;
	buf = raw_bundle(many, WF_BUNDLE_MAX_ENTRIES + 1, "", 0, &len);
	expect_refused(EV, buf, len, "1025 entries");
	free(buf);
	/* ... and exactly the limit is fine */
	buf = raw_bundle(many, WF_BUNDLE_MAX_ENTRIES, "", 0, &len);
	Wf__V1__Bundle *u = NULL;
	ck_assert_int_eq(wf_bundle_unpack(EV, buf, len, &u, NULL, 0), 0);
	ck_assert_uint_eq(u->n_entries, WF_BUNDLE_MAX_ENTRIES);
	wf_bundle_free(u);
	free(buf);
	free(many);
	ck_assert_int_eq(wf_bundle_unpack(EV, "\x00\x01", 2, NULL, NULL, 0), -EINVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("bundle");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_bundle_topics);
	tcase_add_test(tc, test_build_pack_unpack);
	tcase_add_test(tc, test_byte_limit);
	tcase_add_test(tc, test_receiver_refuses);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
