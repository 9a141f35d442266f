/* placeholder: codec module, being written */
#include "wf/codec.h"
