/* seed-proto: writes seed corpora for the protobuf and JSON targets.
 * Usage: seed-proto OUTDIR [REGIONS]
 * Creates OUTDIR/<target>/<name> for the fuzz-codec-* targets (packed
 * protobuf of a few valid messages, timed around the fuzzers' fixed NOW)
 * and OUTDIR/pbjson/<name> (the selector byte fuzz-pbjson reads, then the
 * JSON). Each message is written from its JSON form with wf_pbjson_parse,
 * checked with the codec (against the region table REGIONS when given,
 * as the fuzz targets do; a seed the codec rejects is reported, so the
 * seeds stay meaningful), and packed with plain protobuf-c. Not a fuzz
 * target; fuzz/run calls it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bundle.pb-c.h"
#include "wf/codec.h"
#include "wf/pbjson.h"

/* 2026-07-20T12:00:00+08:00 (fuzz.h FUZZ_NOW) and a little before it */
#define NOW "1784520000000"
#define T0 "1784519000000"
#define T1 "1784530000000"

struct seed {
	const char *target;                    /* codec target dir */
	const ProtobufCMessageDescriptor *d;
	unsigned pbjson_sel;                    /* fuzz-pbjson's index of D */
	int kind;                               /* control kind, or -1 */
	const char *name;
	const char *json;
};

static const struct seed seeds[] = {
	{ "codec-event", &wf__v1__event__descriptor, 0, -1, "met-alert",
	  "{\"id\":\"met-1\",\"agency\":\"AGENCY_MET\",\"hazard\":\"HAZARD_RAINSTORM\","
	  "\"region\":\"410102000000\",\"level\":\"LEVEL_III\",\"observed_ms\":" T0 ","
	  "\"issued_ms\":" T0 ",\"expires_ms\":" T1 ",\"status\":\"STATUS_ACTUAL\","
	  "\"certainty\":\"CERTAINTY_OBSERVED\",\"text\":\"暴雨黄色预警\","
	  "\"producer\":\"wf-met-1\",\"seq\":1,\"msg_type\":\"MSG_TYPE_ALERT\"}" },
	{ "codec-event", &wf__v1__event__descriptor, 0, -1, "water-update",
	  "{\"id\":\"wat-2\",\"agency\":\"AGENCY_WATER\",\"hazard\":\"HAZARD_FLOOD\","
	  "\"region\":\"410185\",\"level\":\"LEVEL_II\",\"observed_ms\":" T0 ","
	  "\"expires_ms\":" T1 ",\"status\":\"STATUS_ACTUAL\",\"producer\":\"wf-water-1\","
	  "\"seq\":7,\"msg_type\":\"MSG_TYPE_UPDATE\",\"references\":[\"wat-1\"],"
	  "\"point\":{\"lat\":34.405,\"lon\":113.145},\"station\":\"41402650\","
	  "\"measurement\":{\"value\":263.8,\"unit\":\"m\",\"threshold\":263.75,"
	  "\"criterion\":\"stage_guaranteed\"}}" },
	{ "codec-warning", &wf__v1__warning__descriptor, 1, -1, "flood-v2",
	  "{\"id\":\"w-410185-flood-1\",\"version\":2,\"msg_type\":\"MSG_TYPE_UPDATE\","
	  "\"hazard\":\"HAZARD_FLOOD\",\"level\":\"LEVEL_II\","
	  "\"regions\":[\"410185103000\",\"410185105000\"],\"onset_ms\":" T0 ","
	  "\"expires_ms\":" T1 ",\"headline\":\"洪水橙色预警\",\"description\":\"告成站超保证水位\","
	  "\"instruction\":\"转移低洼地带人员\",\"event_ids\":[\"water:wat-2\",\"met:met-1\"],"
	  "\"rule_ids\":[\"rain-flood\"],\"status\":\"STATUS_ACTUAL\",\"review\":\"REVIEW_PENDING\","
	  "\"producer\":\"wf-fusion-1\",\"seq\":3,\"certainty\":\"CERTAINTY_LIKELY\","
	  "\"sent_ms\":" NOW ",\"references\":[\"w-410185-flood-1@1\"],\"epoch\":1}" },
	{ "codec-ack", &wf__v1__ack__descriptor, 2, -1, "ranges",
	  "{\"producer\":\"wf-met-1\",\"consumer\":\"wf-fusion-1\",\"ranges\":[{\"first\":1,"
	  "\"last\":5},{\"first\":7,\"last\":7}],\"sent_ms\":" NOW "}" },
	{ "codec-state", &wf__v1__service_state__descriptor, 3, -1, "online",
	  "{\"service\":\"wf-met-1\",\"kind\":\"met\",\"status\":\"SERVICE_ONLINE\","
	  "\"version\":\"0.1.0\",\"started_ms\":" T0 ",\"heartbeat_ms\":" NOW ","
	  "\"heartbeat_interval_s\":10,\"pid\":1234,\"agency\":\"AGENCY_MET\",\"outbox_floor\":3}" },
	{ "codec-state", &wf__v1__service_state__descriptor, 3, -1, "will",
	  "{\"service\":\"wf-fusion-1\",\"kind\":\"fusion\",\"status\":\"SERVICE_OFFLINE\"}" },
	{ "codec-deadletter", &wf__v1__dead_letter__descriptor, 4, -1, "malformed",
	  "{\"service\":\"wf-fusion-1\",\"topic\":\"wf/v1/event/met/41/4101/410102\","
	  "\"size\":12,\"reason\":\"REASON_MALFORMED\",\"detail\":\"truncated\","
	  "\"received_ms\":" NOW ",\"producer\":\"wf-met-1\",\"seq\":9}" },
	{ "codec-control", &wf__v1__approval__descriptor, 5, WF_TOPIC_APPROVAL, "approval",
	  "{\"operator\":\"op-zhang\",\"warning_id\":\"w-410185-flood-1\",\"version\":2,"
	  "\"decision\":\"DECISION_APPROVE\",\"sent_ms\":" NOW ",\"producer\":\"op-zhang\",\"seq\":1}" },
	{ "codec-control", &wf__v1__approval__descriptor, 5, WF_TOPIC_APPROVAL, "reject",
	  "{\"operator\":\"op-zhang\",\"warning_id\":\"w-410185-flood-1\",\"version\":2,"
	  "\"decision\":\"DECISION_REJECT\",\"reason\":\"水位数据待核实\\n请复核\","
	  "\"sent_ms\":" NOW ",\"producer\":\"op-zhang\",\"seq\":2}" },
	{ "codec-control", &wf__v1__duty_notice__descriptor, 6, WF_TOPIC_DUTY_INBOX, "notice",
	  "{\"station\":\"duty-410185\",\"warning_id\":\"w-410185-flood-1\",\"version\":2,"
	  "\"level\":\"LEVEL_II\",\"hazard\":\"HAZARD_FLOOD\",\"regions\":[\"410185103000\"],"
	  "\"text\":\"洪水橙色预警\",\"pending_review\":true,\"deadline_ms\":" T1 ","
	  "\"kind\":\"NOTICE_KIND_NOTICE\",\"status\":\"STATUS_ACTUAL\","
	  "\"msg_type\":\"MSG_TYPE_UPDATE\",\"producer\":\"wf-dispatch-1\",\"sent_ms\":" NOW "}" },
	{ "codec-control", &wf__v1__duty_ack__descriptor, 7, WF_TOPIC_DUTY_ACK, "duty-ack",
	  "{\"station\":\"duty-410185\",\"warning_id\":\"w-410185-flood-1\",\"version\":2,"
	  "\"operator\":\"李四\",\"acked_ms\":" NOW ",\"producer\":\"duty-410185\",\"seq\":4}" },
	{ "codec-control", &wf__v1__follow_up__descriptor, 8, WF_TOPIC_DUTY_FOLLOWUP, "followup",
	  "{\"station\":\"duty-410185\",\"warning_id\":\"w-410185-flood-1\","
	  "\"text\":\"已转移群众 120 人\",\"operator\":\"李四\",\"sent_ms\":" NOW ","
	  "\"producer\":\"duty-410185\",\"seq\":5}" },
	{ "codec-control", &wf__v1__silence__descriptor, 9, WF_TOPIC_SILENCE, "silence",
	  "{\"id\":\"sms-maint\",\"operator\":\"op-zhang\",\"channel\":\"sms\","
	  "\"region_prefix\":\"4101\",\"hazard\":\"HAZARD_RAINSTORM\",\"expires_ms\":" T1 ","
	  "\"reason\":\"gateway maintenance\",\"sent_ms\":" NOW ",\"producer\":\"op-zhang\","
	  "\"seq\":3}" },
	{ "codec-control", &wf__v1__broadcast_state__descriptor, 10, WF_TOPIC_BROADCAST, "broadcast",
	  "{\"region\":\"410185000000\",\"active\":[{\"warning_id\":\"w-410185-flood-1\","
	  "\"version\":2,\"hazard\":\"HAZARD_FLOOD\",\"level\":\"LEVEL_II\","
	  "\"msg_type\":\"MSG_TYPE_UPDATE\",\"headline\":\"洪水橙色预警\",\"onset_ms\":" T0 ","
	  "\"expires_ms\":" T1 ",\"regions\":[\"410185103000\"]}],\"updated_ms\":" NOW ","
	  "\"producer\":\"wf-dispatch-1\"}" },
};

static int write_file(const char *dir, const char *sub, const char *name, const void *a,
		      size_t alen, const void *b, size_t blen)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, sub);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
	FILE *f = fopen(path, "wb");
	if (!f)
		return -errno;
	int ok = fwrite(a, 1, alen, f) == alen && (!blen || fwrite(b, 1, blen, f) == blen);
	return fclose(f) == 0 && ok ? 0 : -EIO;
}

/* fuzz-bundle seeds: the selector byte of the bundle's topic, then a
 * Bundle (without its mark) of PAYLOAD under two entry topics */
static int bundle_seed(const char *dir, const char *name, unsigned char sel, const char *t1,
		       const char *t2, const uint8_t *payload, size_t n)
{
	Wf__V1__BundleEntry e1 = WF__V1__BUNDLE_ENTRY__INIT, e2 = WF__V1__BUNDLE_ENTRY__INIT;
	Wf__V1__BundleEntry *ep[] = { &e1, &e2 };
	Wf__V1__Bundle b = WF__V1__BUNDLE__INIT;

	e1.topic = (char *)t1;
	e2.topic = (char *)t2;
	e1.payload.data = e2.payload.data = (uint8_t *)payload;
	e1.payload.len = e2.payload.len = n;
	b.entries = ep;
	b.n_entries = 2;
	size_t bn = wf__v1__bundle__get_packed_size(&b);
	uint8_t *buf = malloc(bn + 1);
	if (!buf)
		return -1;
	buf[0] = sel;
	wf__v1__bundle__pack(&b, buf + 1);
	int r = write_file(dir, "bundle", name, buf, bn + 1, NULL, 0);
	free(buf);
	return r;
}

int main(int argc, char **argv)
{
	struct wf_codec_limits lim;
	int bad = 0;

	struct wf_region_table *regions = NULL;
	if (argc != 2 && argc != 3) {
		fprintf(stderr, "usage: seed-proto OUTDIR [REGIONS]\n");
		return 2;
	}
	if (mkdir(argv[1], 0755) < 0 && errno != EEXIST) {
		perror(argv[1]);
		return 1;
	}
	wf_codec_limits_init(&lim);
	if (argc == 3 && wf_region_table_load(argv[2], &regions, NULL) < 0) {
		fprintf(stderr, "seed-proto: cannot load %s\n", argv[2]);
		return 1;
	}
	lim.regions = regions;
	for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
		const struct seed *s = &seeds[i];
		ProtobufCMessage *m = NULL, *u = NULL;
		struct wf_codec_error why = { 0 };
		char err[256];
		int r;

		if (wf_pbjson_parse(s->d, s->json, strlen(s->json), &m, err, sizeof err) != 0) {
			fprintf(stderr, "seed-proto: %s/%s: %s\n", s->target, s->name, err);
			return 1;
		}
		if (s->d == &wf__v1__dead_letter__descriptor) {
			/* bytes have no JSON form (pbjson.h): the SHA-256 is set here */
			static uint8_t digest[32] = { 0x5e, 0x88, 0x48, 0x98, 0xda, 0x28, 0x04, 0x71 };
			Wf__V1__DeadLetter *dl = (Wf__V1__DeadLetter *)m;
			dl->digest.data = malloc(sizeof digest);
			if (!dl->digest.data)
				return 1;
			memcpy(dl->digest.data, digest, sizeof digest);
			dl->digest.len = sizeof digest;
		}
		size_t n = protobuf_c_message_get_packed_size(m);
		uint8_t *buf = malloc(n ? n : 1);
		if (!buf)
			return 1;
		protobuf_c_message_pack(m, buf);
		/* the codec must accept the seed, else it seeds only the reject path */
		if (s->kind >= 0) {
			r = wf_codec_control_unpack((enum wf_topic_kind)s->kind, buf, n, &lim,
						    1784520000000LL, &u, &why);
			wf_codec_control_free(u);
		} else if (s->d == &wf__v1__event__descriptor) {
			Wf__V1__Event *e = NULL;
			r = wf_codec_event_unpack(buf, n, &lim, 1784520000000LL, &e, &why);
			wf_codec_event_free(e);
		} else if (s->d == &wf__v1__warning__descriptor) {
			Wf__V1__Warning *w = NULL;
			r = wf_codec_warning_unpack(buf, n, &lim, 1784520000000LL, &w, &why);
			wf_codec_warning_free(w);
		} else if (s->d == &wf__v1__ack__descriptor) {
			Wf__V1__Ack *a = NULL;
			r = wf_codec_ack_unpack(buf, n, &lim, 1784520000000LL, &a, &why);
			wf_codec_ack_free(a);
		} else if (s->d == &wf__v1__service_state__descriptor) {
			Wf__V1__ServiceState *st = NULL;
			r = wf_codec_state_unpack(buf, n, &lim, 1784520000000LL, &st, &why);
			wf_codec_state_free(st);
		} else {
			Wf__V1__DeadLetter *dl = NULL;
			r = wf_codec_deadletter_unpack(buf, n, &lim, 1784520000000LL, &dl, &why);
			wf_codec_deadletter_free(dl);
		}
		if (r != 0) {
			fprintf(stderr, "seed-proto: %s/%s rejected by the codec: %s %s: %s\n",
				s->target, s->name, wf_reason_to_string(why.reason), why.field,
				why.detail);
			bad = 1;
		}
		unsigned char sel = (unsigned char)s->pbjson_sel;
		if (write_file(argv[1], s->target, s->name, buf, n, NULL, 0) < 0 ||
		    write_file(argv[1], "pbjson", s->name, &sel, 1, s->json, strlen(s->json)) < 0) {
			fprintf(stderr, "seed-proto: cannot write %s/%s\n", s->target, s->name);
			return 1;
		}
		/* fuzz-bundle: the event and warning seeds inside bundles */
		if ((s->d == &wf__v1__event__descriptor &&
		     bundle_seed(argv[1], s->name, 0, "wf/v1/event/met/41/4101/410102",
				 "wf/v1/event/met/41/4101/410102", buf, n) < 0) ||
		    (s->d == &wf__v1__warning__descriptor &&
		     bundle_seed(argv[1], s->name, 1, "wf/v1/warning/41/4101/410102/rainstorm",
				 "wf/v1/warning/41/4101/410102/flood", buf, n) < 0)) {
			fprintf(stderr, "seed-proto: cannot write bundle/%s\n", s->name);
			return 1;
		}
		free(buf);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	wf_region_table_free(regions);
	return bad;
}
