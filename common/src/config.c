/* placeholder: config module, being written */
#include "wf/config.h"
