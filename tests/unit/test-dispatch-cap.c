/* Unit tests for CAP 1.2 rendering (services/dispatch/cap.c): every
 * rendered message validates against the OASIS CAP 1.2 XSD (the copy in
 * services/met/schema, identical to ../shared/data/cap) with libxml2's
 * schema validator; Alert, Update and Cancel carry the right msgType and
 * references; Chinese text, geocodes and Beijing time are as documented. */
#include <libxml/parser.h>
#include <libxml/xmlschemas.h>

#include "dispatch-test.h"
#include "cap.h"

static xmlSchemaPtr schema;

static void load_schema(void)
{
	char path[1024];
	const char *root = getenv("WF_SOURCE_ROOT");
	snprintf(path, sizeof path, "%s/services/met/schema/CAP-v1.2.xsd", root ? root : ".");
	xmlSchemaParserCtxtPtr pc = xmlSchemaNewParserCtxt(path);
	ck_assert_ptr_nonnull(pc);
	schema = xmlSchemaParse(pc);
	xmlSchemaFreeParserCtxt(pc);
	ck_assert_msg(schema != NULL, "cannot parse %s", path);
}

static void assert_valid(const char *xml, size_t len)
{
	xmlDocPtr doc = xmlReadMemory(xml, (int)len, "cap.xml", "UTF-8", XML_PARSE_NONET);
	ck_assert_ptr_nonnull(doc);
	xmlSchemaValidCtxtPtr vc = xmlSchemaNewValidCtxt(schema);
	int r = xmlSchemaValidateDoc(vc, doc);
	xmlSchemaFreeValidCtxt(vc);
	xmlFreeDoc(doc);
	ck_assert_msg(r == 0, "CAP not valid against the XSD (%d):\n%s", r, xml);
}

static void setup(void)
{
	load_schema();
	const char *rpath = getenv("WF_REGIONS");
	fx.regions = NULL;
	if (rpath)
		ck_assert_int_eq(wf_region_table_load(rpath, &fx.regions, NULL), 0);
}

static void teardown(void)
{
	xmlSchemaFree(schema);
	fx.regions = wf_region_table_free(fx.regions);
}

START_TEST(test_time_and_identifier)
{
	char buf[40];
	ck_assert_str_eq(dsp_cap_time(T0, buf, sizeof buf), "2025-12-02T18:00:00+08:00");
	ck_assert_str_eq(dsp_cap_time(T0 + 999, buf, sizeof buf), "2025-12-02T18:00:00+08:00");
	ck_assert_int_eq(dsp_cap_identifier("410185-rainstorm-1", 3, buf, sizeof buf), 0);
	ck_assert_str_eq(buf, "410185-rainstorm-1.v3");
	ck_assert_int_eq(dsp_cap_identifier("x", 1, buf, 3), -ENAMETOOLONG);
}
END_TEST

START_TEST(test_alert_valid)
{
	struct dsp_cap_options o = { "warnfuse@410185.example", "登封市应急管理局", fx.regions, NULL };
	Wf__V1__Warning w = mkw("w-cap", 1, WF__V1__LEVEL__LEVEL_II, WF__V1__MSG_TYPE__MSG_TYPE_ALERT,
				WF__V1__STATUS__STATUS_ACTUAL, T0);
	w.onset_ms = T0;
	w.certainty = WF__V1__CERTAINTY__CERTAINTY_LIKELY;
	w.description = "含 <特殊> & \"字符\" 的描述";
	char *xml = NULL;
	size_t len = 0;
	ck_assert_int_eq(dsp_cap_render(&o, &w, NULL, 0, &xml, &len), 0);
	assert_valid(xml, len);
	ck_assert_ptr_nonnull(strstr(xml, "<identifier>w-cap.v1</identifier>"));
	ck_assert_ptr_nonnull(strstr(xml, "<sent>2025-12-02T18:00:00+08:00</sent>"));
	ck_assert_ptr_nonnull(strstr(xml, "<msgType>Alert</msgType>"));
	ck_assert_ptr_nonnull(strstr(xml, "<severity>Severe</severity>"));
	ck_assert_ptr_nonnull(strstr(xml, "<certainty>Likely</certainty>"));
	ck_assert_ptr_nonnull(strstr(xml, "<event>暴雨预警</event>"));
	ck_assert_ptr_nonnull(strstr(xml, "<senderName>登封市应急管理局</senderName>"));
	ck_assert_ptr_nonnull(strstr(xml, "<areaDesc>嵩阳街道、少林街道</areaDesc>"));
	ck_assert_ptr_nonnull(strstr(xml, "<value>410185001000</value>"));
	ck_assert_ptr_nonnull(strstr(xml, "&lt;特殊&gt; &amp;")); /* escaped, not markup */
	ck_assert_ptr_null(strstr(xml, "<references>"));
	free(xml);
}
END_TEST

START_TEST(test_update_and_cancel_reference)
{
	struct dsp_cap_options o = { "warnfuse@410185.example", NULL, NULL, NULL };
	struct dsp_cap_ref ref = { "w-cap.v1", T0 };
	char *xml = NULL;
	size_t len = 0;
	Wf__V1__Warning w = mkw("w-cap", 2, WF__V1__LEVEL__LEVEL_I, WF__V1__MSG_TYPE__MSG_TYPE_UPDATE,
				WF__V1__STATUS__STATUS_ACTUAL, T0 + MIN);
	ck_assert_int_eq(dsp_cap_render(&o, &w, &ref, 1, &xml, &len), 0);
	assert_valid(xml, len);
	ck_assert_ptr_nonnull(strstr(xml, "<msgType>Update</msgType>"));
	ck_assert_ptr_nonnull(strstr(
		xml, "<references>warnfuse@410185.example,w-cap.v1,2025-12-02T18:00:00+08:00</references>"));
	ck_assert_ptr_nonnull(strstr(xml, "<severity>Extreme</severity>"));
	ck_assert_ptr_nonnull(strstr(xml, "<urgency>Immediate</urgency>"));
	free(xml);

	Wf__V1__Warning c = mkw("w-cap", 3, WF__V1__LEVEL__LEVEL_I, WF__V1__MSG_TYPE__MSG_TYPE_CANCEL,
				WF__V1__STATUS__STATUS_ACTUAL, T0 + 2 * MIN);
	c.headline = NULL;
	struct dsp_cap_ref ref2 = { "w-cap.v2", T0 + MIN };
	ck_assert_int_eq(dsp_cap_render(&o, &c, &ref2, 1, &xml, &len), 0);
	assert_valid(xml, len);
	ck_assert_ptr_nonnull(strstr(xml, "<msgType>Cancel</msgType>"));
	ck_assert_ptr_nonnull(strstr(xml, "<responseType>AllClear</responseType>"));
	ck_assert_ptr_nonnull(strstr(xml, "<headline>解除暴雨红色预警</headline>"));
	ck_assert_ptr_nonnull(strstr(xml, ",w-cap.v2,2025-12-02T18:01:00+08:00</references>"));
	free(xml);
}
END_TEST

/* Every hazard and level renders valid CAP (category and severity maps). */
START_TEST(test_every_hazard_valid)
{
	struct dsp_cap_options o = { NULL, NULL, NULL, NULL };
	for (int h = 1; h <= 61; h++) {
		if (!wf_hazard_to_string((Wf__V1__Hazard)h))
			continue;
		for (int l = 1; l <= 4; l++) {
			Wf__V1__Warning w = mkw("w-h", 1, (Wf__V1__Level)l, WF__V1__MSG_TYPE__MSG_TYPE_ALERT,
						WF__V1__STATUS__STATUS_ACTUAL, T0);
			w.hazard = (Wf__V1__Hazard)h;
			w.headline = NULL;
			w.description = NULL;
			w.instruction = NULL;
			char *xml = NULL;
			size_t len = 0;
			ck_assert_int_eq(dsp_cap_render(&o, &w, NULL, 0, &xml, &len), 0);
			assert_valid(xml, len);
			free(xml);
		}
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dispatch-cap");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_time_and_identifier);
	tcase_add_test(tc, test_alert_valid);
	tcase_add_test(tc, test_update_and_cancel_reference);
	tcase_add_test(tc, test_every_hazard_valid);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
