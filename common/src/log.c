/* placeholder: log module, being written */
#include "wf/log.h"
