/* placeholder: bus module, being written */
#include "wf/bus.h"
