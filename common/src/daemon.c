/* placeholder: daemon module, being written */
#include "wf/daemon.h"
