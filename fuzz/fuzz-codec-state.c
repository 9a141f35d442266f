/* fuzz-codec-state: wf_codec_state_unpack on arbitrary bytes, as a consumer
 * receives them from the bus (see fuzz-codec.h for what is checked). */
#include "fuzz-codec.h"

FUZZ_CODEC(state, Wf__V1__ServiceState)
