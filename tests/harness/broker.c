/* placeholder */
#include "broker.h"
