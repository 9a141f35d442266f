/* placeholder: store module, being written */
#include "wf/store.h"
