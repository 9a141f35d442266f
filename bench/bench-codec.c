/* bench-codec: the cost of validation in the codec.
 *
 *   codec:  wf_codec_T_pack (validate + pack) then wf_codec_T_unpack
 *           (size check + unpack + validate + normalise) and free, for a
 *           realistic Event (Chinese text, point, measurement) and Warning.
 *   raw:    protobuf-c pack + unpack + free of the same messages, no
 *           validation: the in-run baseline.
 *
 * Output (stdout), one "name value" per line:
 *   codec.event_pack_unpack_per_s N
 *   codec.warning_pack_unpack_per_s N
 *   codec.raw_event_pack_unpack_per_s N
 *   codec.raw_warning_pack_unpack_per_s N
 *   ratio.codec_validated_vs_raw R           (event: validated / raw)
 *   ratio.codec_warning_validated_vs_raw R
 * Each phase stops after --count round trips or --time-limit seconds,
 * whichever comes first; the rate uses what was done. With --regions PATH
 * (or WF_REGIONS in the environment) region codes are also looked up in
 * the table. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wf/codec.h"

#define NOW 1750000000000LL

struct cfg {
	long count;
	double time_limit_s;
	const char *regions;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: bench-codec [--count N] [--time-limit SECONDS] [--regions PATH] [--help]\n"
		"Measures round trips per second (pack then unpack):\n"
		"  codec.event_pack_unpack_per_s N        validated, Event\n"
		"  codec.warning_pack_unpack_per_s N      validated, Warning\n"
		"  codec.raw_event_pack_unpack_per_s N    raw protobuf-c, Event\n"
		"  codec.raw_warning_pack_unpack_per_s N  raw protobuf-c, Warning\n"
		"  ratio.codec_validated_vs_raw R         Event validated / raw\n"
		"  ratio.codec_warning_validated_vs_raw R\n"
		"Defaults: --count 100000 --time-limit 10 per phase; --regions from WF_REGIONS.\n");
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static Wf__V1__Point pt = WF__V1__POINT__INIT;
static Wf__V1__Measurement meas = WF__V1__MEASUREMENT__INIT;
static Wf__V1__Event ev = WF__V1__EVENT__INIT;
static Wf__V1__Warning w = WF__V1__WARNING__INIT;
static char *regions[] = { "410102000000", "410102001000", "410102002000", "410103000000" };
static char *event_ids[] = { "met:met-20250615-0001", "water:hyd-410102-0042",
			     "geo:geo-20250615-0007" };
static char *rule_ids[] = { "rain-ii", "chain-rain-landslide" };

static void build(void)
{
	pt.lat = 34.7472;
	pt.lon = 113.6249;
	meas.value = 62.5;
	meas.unit = "mm";
	meas.threshold = 50;
	meas.criterion = "rain_3h";
	ev.id = "met-20250615-0001";
	ev.agency = WF__V1__AGENCY__AGENCY_MET;
	ev.hazard = WF__V1__HAZARD__HAZARD_RAINSTORM;
	ev.region = "410102001000";
	ev.point = &pt;
	ev.level = WF__V1__LEVEL__LEVEL_II;
	ev.measurement = &meas;
	ev.certainty = WF__V1__CERTAINTY__CERTAINTY_OBSERVED;
	ev.observed_ms = NOW - 60000;
	ev.issued_ms = NOW - 30000;
	ev.expires_ms = NOW + 6 * 3600000LL;
	ev.status = WF__V1__STATUS__STATUS_ACTUAL;
	ev.text = "郑州市气象台2025年6月15日15时发布暴雨橙色预警信号：预计未来3小时"
		  "中原区、二七区降雨量将达50毫米以上，请注意防范城市内涝和山洪。";
	ev.producer = "wf-met-1";
	ev.seq = 42;
	ev.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_ALERT;
	ev.station = "57083";

	w.id = "w-410102-rainstorm-20250615";
	w.version = 1;
	w.msg_type = WF__V1__MSG_TYPE__MSG_TYPE_ALERT;
	w.hazard = WF__V1__HAZARD__HAZARD_RAINSTORM;
	w.level = WF__V1__LEVEL__LEVEL_II;
	w.regions = regions;
	w.n_regions = sizeof regions / sizeof regions[0];
	w.onset_ms = NOW;
	w.expires_ms = NOW + 12 * 3600000LL;
	w.headline = "中原区暴雨橙色预警";
	w.description = "中原区未来3小时降雨量将达50毫米以上，局地伴有雷电和短时大风。";
	w.instruction = "停止户外作业；\n远离低洼地带、地下空间和河道。";
	w.event_ids = event_ids;
	w.n_event_ids = sizeof event_ids / sizeof event_ids[0];
	w.rule_ids = rule_ids;
	w.n_rule_ids = sizeof rule_ids / sizeof rule_ids[0];
	w.status = WF__V1__STATUS__STATUS_ACTUAL;
	w.review = WF__V1__REVIEW_STATE__REVIEW_PENDING;
	w.producer = "wf-fusion";
	w.seq = 7;
	w.certainty = WF__V1__CERTAINTY__CERTAINTY_LIKELY;
	w.sent_ms = NOW;
	w.epoch = 3;
}

/* Returns round trips per second, or -1 on a failure. */
static double run_codec(const struct cfg *cfg, const struct wf_codec_limits *lim, bool warning)
{
	double t0 = now_s(), t = t0;
	long i;
	for (i = 0; i < cfg->count; i++) {
		uint8_t *buf;
		size_t len;
		struct wf_codec_error err;
		int r;
		if (warning) {
			Wf__V1__Warning *out;
			r = wf_codec_warning_pack(&w, lim, NOW, &buf, &len, &err);
			if (r == 0) {
				r = wf_codec_warning_unpack(buf, len, lim, NOW, &out, &err);
				free(buf);
				wf_codec_warning_free(r == 0 ? out : NULL);
			}
		} else {
			Wf__V1__Event *out;
			r = wf_codec_event_pack(&ev, lim, NOW, &buf, &len, &err);
			if (r == 0) {
				r = wf_codec_event_unpack(buf, len, lim, NOW, &out, &err);
				free(buf);
				wf_codec_event_free(r == 0 ? out : NULL);
			}
		}
		if (r < 0) {
			fprintf(stderr, "bench-codec: %d %s %s: %s\n", r, wf_reason_to_string(err.reason),
				err.field, err.detail);
			return -1;
		}
		if ((i & 1023) == 1023 && (t = now_s()) - t0 > cfg->time_limit_s) {
			i++;
			break;
		}
	}
	t = now_s();
	return (double)i / (t - t0 > 1e-9 ? t - t0 : 1e-9);
}

static double run_raw(const struct cfg *cfg, bool warning)
{
	const ProtobufCMessage *m = warning ? &w.base : &ev.base;
	const ProtobufCMessageDescriptor *d = m->descriptor;
	double t0 = now_s(), t;
	long i;
	for (i = 0; i < cfg->count; i++) {
		size_t len = protobuf_c_message_get_packed_size(m);
		uint8_t *buf = malloc(len);
		if (!buf)
			return -1;
		protobuf_c_message_pack(m, buf);
		ProtobufCMessage *out = protobuf_c_message_unpack(d, NULL, len, buf);
		free(buf);
		if (!out)
			return -1;
		protobuf_c_message_free_unpacked(out, NULL);
		if ((i & 1023) == 1023 && now_s() - t0 > cfg->time_limit_s) {
			i++;
			break;
		}
	}
	t = now_s();
	return (double)i / (t - t0 > 1e-9 ? t - t0 : 1e-9);
}

int main(int argc, char **argv)
{
	struct cfg cfg = { .count = 100000, .time_limit_s = 10, .regions = getenv("WF_REGIONS") };
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "time-limit", required_argument, NULL, 't' },
		{ "regions", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "n:t:r:h", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'n':
			cfg.count = strtol(optarg, &end, 10);
			if (*end || cfg.count <= 0) {
				fprintf(stderr, "bench-codec: --count needs a positive integer\n");
				return 2;
			}
			break;
		case 't':
			cfg.time_limit_s = strtod(optarg, &end);
			if (*end || !(cfg.time_limit_s > 0)) {
				fprintf(stderr, "bench-codec: --time-limit needs positive seconds\n");
				return 2;
			}
			break;
		case 'r':
			cfg.regions = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	struct wf_codec_limits lim;
	wf_codec_limits_init(&lim);
	struct wf_region_table *table = NULL;
	if (cfg.regions && *cfg.regions) {
		struct wf_region_error rerr;
		int r = wf_region_table_load(cfg.regions, &table, &rerr);
		if (r < 0) {
			fprintf(stderr, "bench-codec: %s:%u: %s\n", cfg.regions, rerr.line, rerr.message);
			return 1;
		}
		lim.regions = table;
	} else {
		fprintf(stderr, "bench-codec: no region table (--regions or WF_REGIONS): "
				"membership checks skipped\n");
	}
	build();

	double ev_codec = run_codec(&cfg, &lim, false);
	double w_codec = run_codec(&cfg, &lim, true);
	double ev_raw = run_raw(&cfg, false);
	double w_raw = run_raw(&cfg, true);
	wf_region_table_free(table);
	if (ev_codec < 0 || w_codec < 0 || ev_raw <= 0 || w_raw <= 0) {
		fprintf(stderr, "bench-codec: a round trip failed\n");
		return 1;
	}
	printf("codec.event_pack_unpack_per_s %.0f\n", ev_codec);
	printf("codec.warning_pack_unpack_per_s %.0f\n", w_codec);
	printf("codec.raw_event_pack_unpack_per_s %.0f\n", ev_raw);
	printf("codec.raw_warning_pack_unpack_per_s %.0f\n", w_raw);
	printf("ratio.codec_validated_vs_raw %.2f\n", ev_codec / ev_raw);
	printf("ratio.codec_warning_validated_vs_raw %.2f\n", w_codec / w_raw);
	return 0;
}
