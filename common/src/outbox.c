/* placeholder: outbox module, being written */
#include "wf/outbox.h"
