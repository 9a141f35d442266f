/* fuzz-pbjson: wf_pbjson_parse (JSON text -> any contract message, by
 * reflection; what --replay, dry runs and wfctl read) on arbitrary text.
 * The first byte picks the message type, the rest is the JSON. An accepted
 * message is printed back (wf_pbjson_print), and that text must parse
 * again as the same type; everything is freed (leaks are errors). */
#include "fuzz.h"
#include "wf/pbjson.h"

#include "control.pb-c.h"
#include "dispatch.pb-c.h"
#include "event.pb-c.h"
#include "warning.pb-c.h"

static const ProtobufCMessageDescriptor *const descs[] = {
	&wf__v1__event__descriptor,
	&wf__v1__warning__descriptor,
	&wf__v1__ack__descriptor,
	&wf__v1__service_state__descriptor,
	&wf__v1__dead_letter__descriptor,
	&wf__v1__approval__descriptor,
	&wf__v1__duty_notice__descriptor,
	&wf__v1__duty_ack__descriptor,
	&wf__v1__follow_up__descriptor,
	&wf__v1__silence__descriptor,
	&wf__v1__broadcast_state__descriptor,
};
#define NDESC (sizeof descs / sizeof descs[0])

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ProtobufCMessage *m = NULL, *again = NULL;
	char err[256];

	if (size < 1)
		return 0;
	const ProtobufCMessageDescriptor *d = descs[data[0] % NDESC];
	if (wf_pbjson_parse(d, (const char *)data + 1, size - 1, &m, err, sizeof err) != 0)
		return 0;
	char *text = wf_pbjson_print(m);
	if (!text)
		fuzz_die("print: out of memory");
	if (wf_pbjson_parse(d, text, strlen(text), &again, err, sizeof err) != 0)
		fuzz_die("%s: printed JSON does not parse back: %s\n%s", d->name, err, text);
	protobuf_c_message_free_unpacked(again, NULL);
	protobuf_c_message_free_unpacked(m, NULL);
	free(text);
	return 0;
}
