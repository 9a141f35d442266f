/* fuzz-codec-control: wf_codec_control_unpack on arbitrary bytes for every
 * control kind (APPROVAL, DUTY_INBOX, DUTY_ACK, DUTY_FOLLOWUP, SILENCE,
 * BROADCAST), as wf-dispatch and wfctl receive them. Each input is tried
 * as every kind. An accepted message must keep being accepted after a
 * plain protobuf-c repack (these messages are not normalised), its
 * producer is read, its topic check runs against a well-formed topic of
 * its kind, and it prints as JSON; everything is freed (leaks are errors). */
#include <errno.h>

#include "fuzz.h"
#include "wf/codec.h"
#include "wf/pbjson.h"
#include "wf/topic.h"

static const struct {
	enum wf_topic_kind kind;
	const char *topic;
} kinds[] = {
	{ WF_TOPIC_APPROVAL, "wf/v1/approval/op-zhang" },
	{ WF_TOPIC_DUTY_INBOX, "wf/v1/duty/duty-410185/inbox" },
	{ WF_TOPIC_DUTY_ACK, "wf/v1/duty/duty-410185/ack" },
	{ WF_TOPIC_DUTY_FOLLOWUP, "wf/v1/duty/duty-410185/followup" },
	{ WF_TOPIC_SILENCE, "wf/v1/silence/op-zhang" },
	{ WF_TOPIC_BROADCAST, "wf/v1/broadcast/41/4101/410185" },
};

static struct wf_topic topics[sizeof kinds / sizeof kinds[0]];
static int have_topic[sizeof kinds / sizeof kinds[0]];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		if (!wf_codec_control_kind(kinds[i].kind))
			fuzz_die("kind %d is not a control kind", (int)kinds[i].kind);
		have_topic[i] = wf_topic_parse(kinds[i].topic, &topics[i]) == 0 &&
				topics[i].kind == kinds[i].kind;
		if (!have_topic[i])
			fuzz_die("topic %s does not parse as its kind", kinds[i].topic);
	}
	(void)fuzz_regions();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wf_codec_limits lim;

	wf_codec_limits_init(&lim);
	lim.regions = fuzz_regions();
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		struct wf_codec_error err;
		ProtobufCMessage *m = NULL, *again = NULL;
		uint64_t seq = 0;
		int r = wf_codec_control_unpack(kinds[i].kind, data, size, &lim, FUZZ_NOW, &m, &err);

		if (r < 0) {
			if (r != -EBADMSG && r != -ENOMEM)
				fuzz_die("control_unpack(%d): unexpected %d", (int)kinds[i].kind, r);
			if (r == -EBADMSG && wf_reason_to_string(err.reason) == NULL)
				fuzz_die("control_unpack(%d): no valid reason", (int)kinds[i].kind);
			continue;
		}
		(void)wf_codec_control_producer(kinds[i].kind, m, &seq);
		if (have_topic[i])
			(void)wf_codec_control_check_topic(kinds[i].kind, m, &topics[i], &err);

		size_t n = protobuf_c_message_get_packed_size(m);
		uint8_t *buf = malloc(n ? n : 1);
		if (!buf)
			fuzz_die("out of memory");
		protobuf_c_message_pack(m, buf);
		r = wf_codec_control_unpack(kinds[i].kind, buf, n, &lim, FUZZ_NOW, &again, &err);
		if (r < 0 && !(r == -EBADMSG && err.reason == WF_REASON_TOO_LARGE) &&
		    !fuzz_known_repack_bug(m))
			fuzz_die("control(%d): repacked message rejected: %s %s: %s",
				 (int)kinds[i].kind, wf_reason_to_string(err.reason), err.field,
				 err.detail);
		wf_codec_control_free(again);
		free(buf);
		free(wf_pbjson_print(m));
		wf_codec_control_free(m);
	}
	return 0;
}
