/* fuzz-codec-deadletter: wf_codec_deadletter_unpack on arbitrary bytes, as a consumer
 * receives them from the bus (see fuzz-codec.h for what is checked). */
#include "fuzz-codec.h"

FUZZ_CODEC(deadletter, Wf__V1__DeadLetter)
