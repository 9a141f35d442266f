/* fuzz-codec-event: wf_codec_event_unpack on arbitrary bytes, as a consumer
 * receives them from the bus (see fuzz-codec.h for what is checked). */
#include "fuzz-codec.h"

FUZZ_CODEC(event, Wf__V1__Event)
