/* placeholder: dedupe module, being written */
#include "wf/dedupe.h"
