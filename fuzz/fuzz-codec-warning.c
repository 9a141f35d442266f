/* fuzz-codec-warning: wf_codec_warning_unpack on arbitrary bytes, as a consumer
 * receives them from the bus (see fuzz-codec.h for what is checked). */
#include "fuzz-codec.h"

FUZZ_CODEC(warning, Wf__V1__Warning)
