/* wf-met CAP: the verdict on every file of ../shared/data/cap/ (SOURCES.md),
 * signature policies, tampering, and the mapping to events. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "met.h"
#include "wf/region.h"

static struct wf_region_table *regions;
static struct wf_adapter_sink *sink;
static char capdir[1024];

static const struct { const char *file; bool valid; } verdicts[] = {
	{ "google-cap-library/43b080713727.xml", true },
	{ "google-cap-library/KAR0-0306112239-SW.xml", true },
	{ "google-cap-library/australia.xml", true },
	{ "google-cap-library/canada.xml", true },
	{ "google-cap-library/canada_errors.xml", false },
	{ "google-cap-library/canada_signed.xml", true },
	{ "google-cap-library/earthquake-iso8859-1.xml", true },
	{ "google-cap-library/earthquake.xml", true },
	{ "google-cap-library/earthquake_signed.xml", true },
	{ "google-cap-library/invalid.xml", false },
	{ "google-cap-library/no_optional_fields.xml", true },
	{ "google-cap-library/noaa_errors.xml", false },
	{ "google-cap-library/thunderstorm.xml", true },
	{ "google-cap-library/wcatwc-warning.xml", true },
	{ "google-cap-library/weather.xml", true },
	{ "google-cap-library/xee.xml", false },
	{ "ibm-cap/cap_amber_alert_example.xml", true },
	{ "oasiscap-rs/google-PAAQ-4-mg5a94.xml", true },
	{ "oasiscap-rs/ipaws-5e6dd964023f1930ef638846.xml", true },
	{ "oasiscap-rs/ipaws-5e6dd9de023f1930ef6548d9.xml", true },
	{ "oasiscap-rs/ipaws-5e6ddbad023f1930ef6c1a5a.xml", true },
	{ "oasiscap-rs/ipaws-5e7e0fc5023f1930efcf3deb.xml", true },
	{ "oasiscap-rs/ipaws-5ea321f39fc226a7b44b6874.xml", true },
	{ "oasiscap-rs/nws-5c2cf27b1f56885d61654dc47fa411d5.xml", true },
	{ "oasiscap-rs/v1dot0_appendix_adot1.xml", false },
	{ "oasiscap-rs/v1dot0_appendix_adot2.xml", false },
	{ "oasiscap-rs/v1dot0_appendix_adot3.xml", false },
	{ "oasiscap-rs/v1dot0_appendix_adot4.xml", false },
	{ "oasiscap-rs/v1dot1_appendix_adot1.xml", true },
	{ "oasiscap-rs/v1dot1_appendix_adot2.xml", true },
	{ "oasiscap-rs/v1dot1_appendix_adot3.xml", true },
	{ "oasiscap-rs/v1dot1_appendix_adot4.xml", true },
	{ "oasiscap-rs/v1dot2_appendix_adot1.xml", true },
	{ "oasiscap-rs/v1dot2_appendix_adot2.xml", true },
	{ "oasiscap-rs/v1dot2_appendix_adot3.xml", true },
	{ "oasiscap-rs/v1dot2_appendix_adot4.xml", true },
};

static void *load_conf(const char *text, int *ret)
{
	char path[] = "/tmp/wf-met-test-XXXXXX";
	char err[512] = "";
	void *s = NULL;
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	int r = met_config_load(path, regions, &s, err, sizeof err);
	unlink(path);
	if (ret)
		*ret = r;
	else
		ck_assert_msg(r == 0, "config: %s", err);
	return s;
}

static uint8_t *slurp(const char *rel, size_t *len)
{
	char path[2048];
	snprintf(path, sizeof path, "%s/%s", capdir, rel);
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "%s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc((size_t)n + 1);
	ck_assert_int_eq(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return b;
}

static int check_buf(void *st, const uint8_t *b, size_t n)
{
	wf_adapter_sink_reset(sink);
	return met_cap_check(st, "x", b, n, 0, sink);
}

static int check_file(void *st, const char *rel)
{
	size_t n;
	uint8_t *b = slurp(rel, &n);
	int r = check_buf(st, b, n);
	free(b);
	return r;
}

static void setup(void)
{
	const char *root = getenv("WF_SOURCE_ROOT");
	snprintf(capdir, sizeof capdir, "%s/../shared/data/cap", root ? root : ".");
	ck_assert_int_eq(wf_region_table_load(getenv("WF_REGIONS"), &regions, NULL), 0);
	sink = wf_adapter_sink_new();
}

static void teardown(void)
{
	wf_adapter_sink_free(sink);
	wf_region_table_free(regions);
}

START_TEST(every_shared_file)
{
	if (access(capdir, R_OK) != 0)
		return; /* the shared data set is not in this checkout */
	void *st = load_conf("[met]\n", NULL);
	for (size_t i = 0; i < sizeof verdicts / sizeof verdicts[0]; i++) {
		int r = check_file(st, verdicts[i].file);
		ck_assert_msg((r == 0) == verdicts[i].valid, "%s: got %s (%s)", verdicts[i].file,
			      r == 0 ? "OK" : "INVALID", wf_adapter_sink_reason_text(sink));
	}
	/* specific reasons */
	check_file(st, "oasiscap-rs/v1dot0_appendix_adot1.xml");
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "CAP 1.0"));
	check_file(st, "google-cap-library/xee.xml");
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "DOCTYPE"));
	check_file(st, "google-cap-library/canada_errors.xml");
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "references"));
	met_config_free(st);
}
END_TEST

START_TEST(signature_policies)
{
	if (access(capdir, R_OK) != 0)
		return;
	int r;
	/* require without a trust anchor is a configuration error */
	void *bad = load_conf("[met]\nsignature_policy = require\n", &r);
	ck_assert_int_lt(r, 0);
	ck_assert_ptr_null(bad);
	/* require with a certificate that signed none of them: all rejected */
	void *req = load_conf("[met]\nsignature_policy = require\n"
			      "trusted_cert = /etc/ssl/certs/ACCVRAIZ1.pem\n", &r);
	if (r == 0) {
		ck_assert_int_lt(check_file(req, "google-cap-library/earthquake_signed.xml"), 0);
		ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "not trusted"));
		ck_assert_int_lt(check_file(req, "google-cap-library/earthquake.xml"), 0);
		ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "unsigned"));
		met_config_free(req);
	}
	/* verify-if-present: a tampered signed alert is rejected */
	void *vip = load_conf("[met]\nsignature_policy = verify-if-present\n", NULL);
	size_t n;
	uint8_t *b = slurp("google-cap-library/earthquake_signed.xml", &n);
	ck_assert_int_eq(check_buf(vip, b, n), 0);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "signature valid"));
	uint8_t *p = (uint8_t *)strstr((char *)b, "<headline>");
	ck_assert_ptr_nonnull(p);
	p[10] ^= 0x01;
	ck_assert_int_lt(check_buf(vip, b, n), 0);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "INVALID"));
	/* one keys manager serves every verification of a state: after the
	 * tampered copy the genuine file is still valid, twice */
	p[10] ^= 0x01;
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(check_buf(vip, b, n), 0);
		ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "signature valid"));
	}
	p[10] ^= 0x01;
	/* ignore: the same tampered file passes (signature not examined) */
	void *ign = load_conf("[met]\nsignature_policy = ignore\n", NULL);
	ck_assert_int_eq(check_buf(ign, b, n), 0);
	free(b);
	met_config_free(vip);
	met_config_free(ign);
}
END_TEST

#define ALERT \
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" \
	"<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\"><identifier>A1</identifier>" \
	"<sender>s@cma.gov.cn</sender><sent>2021-07-20T16:30:00+08:00</sent><status>Actual</status>" \
	"<msgType>%s</msgType><scope>Public</scope>%s<info><category>Met</category><event>%s</event>" \
	"<urgency>Immediate</urgency><severity>%s</severity><certainty>Observed</certainty>" \
	"<expires>%s</expires><headline>h</headline><area><areaDesc>d</areaDesc>%s" \
	"<geocode><valueName>GB2260</valueName><value>410102</value></geocode></area></info></alert>\n"

static int parse_alert(void *st, const char *mt, const char *refs, const char *event,
		       const char *sev, const char *expires, const char *poly)
{
	char buf[4096];
	snprintf(buf, sizeof buf, ALERT, mt, refs, event, sev, expires, poly);
	wf_adapter_sink_reset(sink);
	return met_cap_parse(st, "a.xml", (const uint8_t *)buf, strlen(buf), 0, sink);
}

START_TEST(rules_and_mapping)
{
	void *st = load_conf("[met]\n", NULL);
	const char *E = "2021-07-21T16:30:00+08:00";
	ck_assert_int_eq(parse_alert(st, "Alert", "", "暴雨", "Extreme", E, ""), 0);
	ck_assert_uint_eq(wf_adapter_sink_count(sink), 1);
	const Wf__V1__Event *ev = wf_adapter_sink_event(sink, 0);
	ck_assert_int_eq(ev->hazard, WF__V1__HAZARD__HAZARD_RAINSTORM);
	ck_assert_int_eq(ev->level, WF__V1__LEVEL__LEVEL_I);
	ck_assert_str_eq(ev->region, "410102000000");
	ck_assert_int_eq(parse_alert(st, "Alert", "", "暴雨", "Minor", E, ""), 0);
	ck_assert_int_eq(wf_adapter_sink_event(sink, 0)->level, WF__V1__LEVEL__LEVEL_IV);
	/* unmapped event: rejected with a reason */
	ck_assert_int_lt(parse_alert(st, "Alert", "", "Volcano", "Minor", E, ""), 0);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "no hazard mapping"));
	/* Update needs references that are earlier */
	ck_assert_int_lt(parse_alert(st, "Update", "", "暴雨", "Severe", E, ""), 0);
	ck_assert_int_lt(parse_alert(st, "Update",
				     "<references>s@cma.gov.cn,A0,2021-07-20T17:30:00+08:00</references>",
				     "暴雨", "Severe", E, ""), 0);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "after this message"));
	ck_assert_int_eq(parse_alert(st, "Update",
				     "<references>s@cma.gov.cn,A0,2021-07-20T15:30:00+08:00</references>",
				     "暴雨", "Severe", E, ""), 0);
	ck_assert_uint_eq(wf_adapter_sink_event(sink, 0)->n_references, 1);
	/* expires before sent */
	ck_assert_int_lt(parse_alert(st, "Alert", "", "暴雨", "Severe", "2021-07-20T15:00:00+08:00", ""), 0);
	/* polygons: open, out of range, too short; a closed one is fine */
	ck_assert_int_lt(parse_alert(st, "Alert", "", "暴雨", "Severe", E,
				     "<polygon>34,113 35,113 35,114 34,114</polygon>"), 0);
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "not closed"));
	ck_assert_int_lt(parse_alert(st, "Alert", "", "暴雨", "Severe", E,
				     "<polygon>34,113 95,113 35,114 34,113</polygon>"), 0);
	ck_assert_int_lt(parse_alert(st, "Alert", "", "暴雨", "Severe", E,
				     "<polygon>34,113 35,113 34,113</polygon>"), 0);
	ck_assert_int_eq(parse_alert(st, "Alert", "", "暴雨", "Severe", E,
				     "<polygon>34,113 35,113 35,114 34,113</polygon>"), 0);
	met_config_free(st);
}
END_TEST

START_TEST(hostile_input)
{
	void *st = load_conf("[met]\n", NULL);
	const char *cases[] = {
		"<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\"><identifier>x",  /* truncated */
		"<html><body/></html>",                                                /* not CAP */
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?><alert>\xD6\xA3</alert>",   /* GBK bytes */
		"<!DOCTYPE a [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><a>&e;</a>",
		"not xml at all",
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		ck_assert_int_lt(check_buf(st, (const uint8_t *)cases[i], strlen(cases[i])), 0);
	check_buf(st, (const uint8_t *)cases[1], strlen(cases[1]));
	ck_assert_ptr_nonnull(strstr(wf_adapter_sink_reason_text(sink), "not a CAP alert"));
	/* deep nesting */
	size_t depth = 5000, n = 0;
	char *deep = malloc(depth * 7 + 1);
	for (size_t i = 0; i < depth; i++)
		n += (size_t)sprintf(deep + n, "<a>");
	ck_assert_int_lt(check_buf(st, (const uint8_t *)deep, n), 0);
	free(deep);
	met_config_free(st);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("met-cap");
	TCase *tc = tcase_create("cap");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, every_shared_file);
	tcase_add_test(tc, signature_policies);
	tcase_add_test(tc, rules_and_mapping);
	tcase_add_test(tc, hostile_input);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
