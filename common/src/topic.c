/* placeholder: topic module, being written */
#include "wf/topic.h"
