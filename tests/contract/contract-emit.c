/* contract-emit: builds one valid message of each wire type with the codec
 * and writes each packed message to DIR/<type>.bin (event, warning, ack,
 * state, deadletter, approval, notice, bundle: two notices, without the
 * bundle's 0x00 0x01 mark), for test-contract to decode with the stock protoc.
 * Usage: contract-emit DIR */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contract-emit.h"
#include "wf/bundle.h"
#include "wf/codec.h"

#define NOW CONTRACT_NOW /* fixed: the output is deterministic */

static int write_file(const char *dir, const char *name, const uint8_t *buf, size_t len)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s.bin", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f) {
		fprintf(stderr, "contract-emit: %s: %s\n", path, strerror(errno));
		return -1;
	}
	size_t n = fwrite(buf, 1, len, f);
	if (fclose(f) != 0 || n != len) {
		fprintf(stderr, "contract-emit: write %s failed\n", path);
		return -1;
	}
	return 0;
}

static int check(const char *what, int r, const struct wf_codec_error *err)
{
	if (r < 0)
		fprintf(stderr, "contract-emit: %s: %d %s %s: %s\n", what, r,
			wf_reason_to_string(err->reason), err->field, err->detail);
	return r;
}

int contract_emit(const char *dir)
{
	struct wf_codec_limits lim;
	struct wf_codec_error err;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = 1;
	wf_codec_limits_init(&lim);

	Wf__V1__Point pt = WF__V1__POINT__INIT;
	pt.lat = 34.7472;
	pt.lon = 113.6249;
	Wf__V1__Measurement m = WF__V1__MEASUREMENT__INIT;
	m.value = 62.5;
	m.unit = "mm";
	m.threshold = 50;
	m.criterion = "rain_3h";
	Wf__V1__Event ev = WF__V1__EVENT__INIT;
	ev.id = "met-20250615-0001";
	ev.agency = WF__V1__AGENCY__AGENCY_MET;
	ev.hazard = WF__V1__HAZARD__HAZARD_RAINSTORM;
	ev.region = "410102"; /* 6 digits: the codec puts 12 on the wire */
	ev.point = &pt;
	ev.level = WF__V1__LEVEL__LEVEL_II;
	ev.measurement = &m;
	ev.certainty = WF__V1__CERTAINTY__CERTAINTY_OBSERVED;
	ev.observed_ms = NOW - 60000;
	ev.issued_ms = NOW - 30000;
	ev.expires_ms = NOW + 6 * 3600000LL;
	ev.status = WF__V1__STATUS__STATUS_ACTUAL;
	ev.text = "郑州市气象台发布暴雨橙色预警信号";
	ev.producer = "wf-met-1";
	ev.seq = 42;
	ev.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_ALERT;
	ev.station = "57083";
	if (check("event", wf_codec_event_pack(&ev, &lim, NOW, &buf, &len, &err), &err) < 0 ||
	    write_file(dir, "event", buf, len) < 0)
		goto out;
	free(buf);
	buf = NULL;

	char *regions[] = { "410102000000", "410103000000" };
	char *event_ids[] = { "met:met-20250615-0001" };
	char *rule_ids[] = { "rain-ii" };
	Wf__V1__Warning w = WF__V1__WARNING__INIT;
	w.id = "w-4101-rainstorm-20250615";
	w.version = 1;
	w.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_ALERT;
	w.hazard = WF__V1__HAZARD__HAZARD_RAINSTORM;
	w.level = WF__V1__LEVEL__LEVEL_II;
	w.regions = regions;
	w.n_regions = 2;
	w.onset_ms = NOW;
	w.expires_ms = NOW + 12 * 3600000LL;
	w.headline = "中原区、二七区暴雨橙色预警";
	w.description = "未来3小时降雨量将达50毫米以上。";
	w.instruction = "远离低洼地带。";
	w.event_ids = event_ids;
	w.n_event_ids = 1;
	w.rule_ids = rule_ids;
	w.n_rule_ids = 1;
	w.status = WF__V1__STATUS__STATUS_ACTUAL;
	w.review = WF__V1__REVIEW_STATE__REVIEW_PENDING;
	w.producer = "wf-fusion";
	w.seq = 7;
	w.certainty = WF__V1__CERTAINTY__CERTAINTY_LIKELY;
	w.sent_ms = NOW;
	w.epoch = 3;
	if (check("warning", wf_codec_warning_pack(&w, &lim, NOW, &buf, &len, &err), &err) < 0 ||
	    write_file(dir, "warning", buf, len) < 0)
		goto out;
	free(buf);
	buf = NULL;

	Wf__V1__SeqRange r1 = WF__V1__SEQ_RANGE__INIT, r2 = WF__V1__SEQ_RANGE__INIT;
	r1.first = 1;
	r1.last = 10;
	r2.first = 12;
	r2.last = 12;
	Wf__V1__SeqRange *ranges[] = { &r1, &r2 };
	Wf__V1__Ack ack = WF__V1__ACK__INIT;
	ack.producer = "wf-met-1";
	ack.consumer = "wf-fusion";
	ack.ranges = ranges;
	ack.n_ranges = 2;
	ack.sent_ms = NOW;
	if (check("ack", wf_codec_ack_pack(&ack, &lim, NOW, &buf, &len, &err), &err) < 0 ||
	    write_file(dir, "ack", buf, len) < 0)
		goto out;
	free(buf);
	buf = NULL;

	Wf__V1__ServiceState st = WF__V1__SERVICE_STATE__INIT;
	st.service = "wf-met-1";
	st.kind = "met";
	st.status = WF__V1__SERVICE_STATUS__SERVICE_ONLINE;
	st.version = "0.1.0";
	st.started_ms = NOW - 3600000;
	st.heartbeat_ms = NOW;
	st.heartbeat_interval_s = 30;
	st.pid = 4242;
	st.agency = WF__V1__AGENCY__AGENCY_MET;
	if (check("state", wf_codec_state_pack(&st, &lim, NOW, &buf, &len, &err), &err) < 0 ||
	    write_file(dir, "state", buf, len) < 0)
		goto out;
	free(buf);
	buf = NULL;

	struct wf_codec_error why = { .reason = WF_REASON_BAD_REGION };
	snprintf(why.field, sizeof why.field, "region");
	snprintf(why.detail, sizeof why.detail, "'4101' is not a 6 or 12-digit code");
	if (check("deadletter",
		  wf_codec_deadletter_make("wf-fusion", "wf/v1/event/met/41/4101/410102", "abc", 3, &why,
					   "wf-met-1", 43, NOW, &buf, &len),
		  &why) < 0 ||
	    write_file(dir, "deadletter", buf, len) < 0)
		goto out;
	free(buf);
	buf = NULL;

	/* dispatch.proto: an approval and a duty notice */
	Wf__V1__Approval ap = WF__V1__APPROVAL__INIT;
	ap.operator_ = "op-zhang";
	ap.warning_id = "410185-rainstorm-1";
	ap.version = 2;
	ap.decision = WF__V1__DECISION__DECISION_APPROVE;
	ap.reason = "同意发布";
	ap.sent_ms = NOW;
	ap.producer = "wfctl-zhang";
	ap.seq = 5;
	if (check("approval", wf_codec_approval_pack(&ap, &lim, NOW, &buf, &len, &err), &err) < 0 ||
	    write_file(dir, "approval", buf, len) < 0)
		goto out;
	free(buf);
	buf = NULL;
	static char *nregions[] = { "410185001000" };
	Wf__V1__DutyNotice dn = WF__V1__DUTY_NOTICE__INIT;
	dn.station = "duty-410185";
	dn.warning_id = "410185-rainstorm-1";
	dn.version = 2;
	dn.level = WF__V1__LEVEL__LEVEL_II;
	dn.hazard = WF__V1__HAZARD__HAZARD_RAINSTORM;
	dn.regions = nregions;
	dn.n_regions = 1;
	dn.text = "嵩阳街道暴雨橙色预警";
	dn.pending_review = true;
	dn.deadline_ms = NOW + 600000;
	dn.kind = WF__V1__NOTICE_KIND__NOTICE_KIND_ESCALATION;
	dn.status = WF__V1__STATUS__STATUS_ACTUAL;
	dn.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_UPDATE;
	dn.escalated_from = "duty-410185001";
	dn.producer = "wf-dispatch-1";
	dn.sent_ms = NOW;
	if (check("notice", wf_codec_duty_notice_pack(&dn, &lim, NOW, &buf, &len, &err), &err) < 0 ||
	    write_file(dir, "notice", buf, len) < 0)
		goto out;

	/* a bundle of that notice twice, as wf-dispatch sends them to one
	 * inbox: written without its two-byte mark (protoc decodes the rest) */
	struct wf_bundle b;
	const char *btopic;
	uint8_t *bbuf = NULL;
	size_t blen = 0;
	const char *inbox = "wf/v1/duty/duty-410185/inbox";
	if (wf_bundle_init(&b, 16, 4096) < 0 || wf_bundle_add(&b, inbox, inbox, buf, len) < 0 ||
	    wf_bundle_add(&b, inbox, inbox, buf, len) < 0 ||
	    wf_bundle_pack(&b, &btopic, &bbuf, &blen) < 0 || blen < 2 || bbuf[0] != 0 ||
	    bbuf[1] != 1 || strcmp(btopic, inbox) != 0) {
		fprintf(stderr, "contract-emit: bundle failed\n");
		wf_bundle_destroy(&b);
		free(bbuf);
		goto out;
	}
	wf_bundle_destroy(&b);
	int wr = write_file(dir, "bundle", bbuf + 2, blen - 2);
	free(bbuf);
	if (wr < 0)
		goto out;
	rc = 0;
out:
	free(buf);
	return rc;
}

#ifndef CONTRACT_NO_MAIN
int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: contract-emit DIR\n");
		return 2;
	}
	return contract_emit(argv[1]) == 0 ? 0 : 1;
}
#endif
