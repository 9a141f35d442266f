/* placeholder: region module, being written */
#include "wf/region.h"
