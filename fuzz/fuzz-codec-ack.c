/* fuzz-codec-ack: wf_codec_ack_unpack on arbitrary bytes, as a consumer
 * receives them from the bus (see fuzz-codec.h for what is checked). */
#include "fuzz-codec.h"

FUZZ_CODEC(ack, Wf__V1__Ack)
